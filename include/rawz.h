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
 * A frame may hold the JSON tokenized: a first byte RAWZ_TOKEN_MARK, then
 * the text with each occurrence of a value that a column of the same row
 * holds (RAWZ_COLUMNS) replaced by one byte, RAWZ_TOKEN_MARK + 1 + the
 * column's place in RAWZ_COLUMNS. JSON text never holds a byte below 0x09
 * outside an escape, so these bytes are never the text's own.
 *
 * Every connection opened after rawz_register gets the SQL function
 * seslog_raw(raw, messageId, destinationAddress, ...), which gives back
 * the JSON text of any form; a tokenized one needs the row's columns
 * (RAWZ_SQL writes the call), without them it is an error, never a
 * different text. */
#ifndef SESLOG_RAWZ_H
#define SESLOG_RAWZ_H

#include <stddef.h>
#include <stdint.h>

struct sqlite3;

/* The columns of SesEventMessages whose values a tokenized original
 * leaves out, in the order seslog_raw takes them after raw; t is the
 * table's alias with its dot ("e.") or "". */
/* clang-format off */
#define RAWZ_COLUMNS(t) \
  t "messageId, " t "destinationAddress, " t "bouncedRecipients, " t "feedbackId, " \
  t "reportingMTA"
/* clang-format on */
/* The SQL expression that reads the original JSON of a row of alias t. */
#define RAWZ_SQL(t) "seslog_raw(" t "raw, " RAWZ_COLUMNS(t) ")"
#define RAWZ_SQL_ROW RAWZ_SQL("") /* the row's own columns */
#define RAWZ_SQL_E RAWZ_SQL("e.") /* the columns of alias e */

#define RAWZ_TOKEN_MARK 0x01 /* first byte of a tokenized text */

/* An event's values of RAWZ_COLUMNS, as its row stores them (NULL: the
 * column is NULL). */
enum {
  RAWZ_MESSAGE_ID,
  RAWZ_DESTINATION,
  RAWZ_BOUNCED,
  RAWZ_FEEDBACK_ID,
  RAWZ_REPORTING_MTA,
  RAWZ_NVALUES
};
typedef struct rawz_values {
  const char *v[RAWZ_NVALUES];
} rawz_values;

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

/* Compresses len bytes of text with the current dictionary, tokenized
 * with vals (the values its row will store; NULL: none). On success
 * *out points to the frame (valid until the next call on z) and *dict_id
 * is the dictionary's id; without a dictionary *out is text itself and
 * *dict_id 0. Returns 0 or SL_ENOMEM. */
int rawz_compress(rawz_enc *z, const char *text, size_t len, const rawz_values *vals,
                  const void **out, size_t *outlen, int64_t *dict_id);

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

/* Compresses len bytes of text, tokenized with vals (NULL: none), with d
 * on any thread (each thread keeps a
 * compression context of its own), giving the same frame rawz_compress
 * gives with that dictionary. On success *out is the frame (malloc'd, the
 * caller frees) and *dict_id d's id; when d is NULL or compression gains
 * nothing, *out is NULL and *dict_id 0: the row keeps the text itself.
 * Returns 0 or SL_ENOMEM. */
int rawz_dict_compress(const rawz_dict *d, const char *text, size_t len, const rawz_values *vals,
                       void **out, size_t *outlen, int64_t *dict_id);

/* Trains a dictionary on up to max_samples events of db (read through
 * seslog_raw, spread evenly over the table's ids, tokenized as they are
 * compressed). *dict (malloc'd, the
 * caller frees) is a zstd dictionary whose id rawz_insert sets; *samples
 * how many events it learned from. Returns 0; SL_EINVAL when db holds too
 * few events to learn from or training failed, SL_EDB or SL_ENOMEM, each
 * with a sentence in err. Reads only; any connection will do. */
int rawz_train(struct sqlite3 *db, int max_samples, void **dict, size_t *dictlen, int *samples,
               char *err, size_t errlen);

/* Trains a dictionary as rawz_train does, on n events held in memory:
 * texts[i] (lens[i] bytes) tokenized with vals[i] (vals NULL: none), up
 * to max_samples of them spread evenly. Returns 0, SL_EINVAL (too few,
 * or training failed; err says why) or SL_ENOMEM. */
int rawz_train_texts(const char *const *texts, const size_t *lens, const rawz_values *vals,
                     size_t n, int max_samples, void **dict, size_t *dictlen, int *samples,
                     char *err, size_t errlen);

/* Stores dict in raw_dicts under the next free id, written into the
 * dictionary's own header, inside the caller's transaction. Sets *id.
 * Returns 0 or SL_EDB. */
int rawz_insert(struct sqlite3 *db, void *dict, size_t dictlen, int samples, int64_t *id);

/* Rewrites the raw column of every event not compressed with z's current
 * dictionary, in transactions of a few thousand rows (a row compressed
 * with another dictionary is decompressed first; each is tokenized with
 * its row's columns; one that does not shrink stays plain text). Adds the rows rewritten to *rows
 * and the bytes of their JSON before and after to *before and *after. Returns 0, SL_EDB (err says
 * why; rows already rewritten stay so) or SL_ENOMEM. */
int rawz_recompress(struct sqlite3 *db, rawz_enc *z, int64_t *rows, int64_t *before, int64_t *after,
                    char *err, size_t errlen);

#endif
