/* rawz.h - the original JSON of each event, compressed with zstd and a
 * dictionary trained on the database's own events.
 *
 * SesEventMessages.raw holds either the JSON text as received (rows written
 * before a dictionary existed, or by an older seslog) or a zstd frame made
 * with one of the dictionaries of the raw_dicts table; the frame's header
 * names that dictionary (its Dictionary_ID is the row's id), and the column
 * rawDict repeats it for a person with sqlite3 (0: plain text). A new
 * dictionary never makes an old row unreadable: rows keep the one they were
 * written with until `seslog vacuum` recompresses them.
 *
 * Every connection opened after rawz_register gets the SQL function
 * seslog_raw(raw), which gives back the JSON text of either form. */
#ifndef SESLOG_RAWZ_H
#define SESLOG_RAWZ_H

#include <stddef.h>
#include <stdint.h>

struct sqlite3;

/* Largest original JSON accepted back from a frame (the /sns body cap is
 * smaller). */
#define RAWZ_RAW_MAX (8u << 20)

/* Registers seslog_raw() for every SQLite connection opened from now on in
 * this process (sqlite3_auto_extension; calling it again does nothing).
 * Returns 0 or SL_EDB. */
int rawz_register(void);

/* A compressor with the dictionary new rows use; one per writing thread. */
typedef struct rawz_enc rawz_enc;

/* Returns 0 or SL_ENOMEM. Without a dictionary it leaves text plain. */
int rawz_enc_new(rawz_enc **out);
void rawz_enc_free(rawz_enc *z);

/* Uses the newest dictionary of db's raw_dicts table (none: plain).
 * Returns 0, SL_EDB or SL_ENOMEM; on failure z is unchanged. */
int rawz_enc_load(rawz_enc *z, struct sqlite3 *db);

/* The id of the dictionary new rows are compressed with; 0: none. */
int64_t rawz_enc_id(const rawz_enc *z);

/* How many events the current dictionary was trained on (0: none). */
int rawz_enc_samples(const rawz_enc *z);

/* Compresses len bytes of text with the current dictionary. On success
 * *out points to the frame (valid until the next call on z) and *dict_id
 * is the dictionary's id; without a dictionary *out is text itself and
 * *dict_id 0. Returns 0 or SL_ENOMEM. */
int rawz_compress(rawz_enc *z, const char *text, size_t len, const void **out, size_t *outlen,
                  int64_t *dict_id);

/* A dictionary new rows are compressed with, shared by the thread that
 * loads dictionaries (the writer) and the threads that compress events
 * before handing them to it. Reference-counted: the writer may load a new
 * one while another thread still compresses with the old. */
typedef struct rawz_dict rawz_dict;

/* z's current dictionary with a reference taken for the caller, or NULL
 * when there is none. Thread-safe against rawz_enc_load. */
rawz_dict *rawz_enc_dict(rawz_enc *z);

/* Drops a reference taken by rawz_enc_dict (NULL: nothing). */
void rawz_dict_release(rawz_dict *d);

/* Compresses len bytes of text with d on any thread (each thread keeps a
 * compression context of its own), giving the same frame rawz_compress
 * gives with that dictionary. On success *out is the frame (malloc'd, the
 * caller frees) and *dict_id d's id; when d is NULL or compression gains
 * nothing, *out is NULL and *dict_id 0: the row keeps the text itself.
 * Returns 0 or SL_ENOMEM. */
int rawz_dict_compress(const rawz_dict *d, const char *text, size_t len, void **out, size_t *outlen,
                       int64_t *dict_id);

/* Trains a dictionary on up to max_samples events of db (read through
 * seslog_raw, spread evenly over the table's ids). *dict (malloc'd, the
 * caller frees) is a zstd dictionary whose id rawz_insert sets; *samples
 * how many events it learned from. Returns 0; SL_EINVAL when db holds too
 * few events to learn from or training failed, SL_EDB or SL_ENOMEM, each
 * with a sentence in err. Reads only; any connection will do. */
int rawz_train(struct sqlite3 *db, int max_samples, void **dict, size_t *dictlen, int *samples,
               char *err, size_t errlen);

/* Stores dict in raw_dicts under the next free id, written into the
 * dictionary's own header, inside the caller's transaction. Sets *id.
 * Returns 0 or SL_EDB. */
int rawz_insert(struct sqlite3 *db, void *dict, size_t dictlen, int samples, int64_t *id);

/* Rewrites the raw column of every event not compressed with z's current
 * dictionary, in transactions of a few thousand rows (a row compressed
 * with another dictionary is decompressed first; one that does not shrink
 * stays plain text). Adds the rows rewritten to *rows and the bytes of
 * their JSON before and after to *before and *after. Returns 0, SL_EDB
 * (err says why; rows already rewritten stay so) or SL_ENOMEM. */
int rawz_recompress(struct sqlite3 *db, rawz_enc *z, int64_t *rows, int64_t *before, int64_t *after,
                    char *err, size_t errlen);

#endif
