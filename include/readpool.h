/* readpool.h - read-only SQLite work off the loop thread.
 *
 * readpool_run() runs fn on a libuv thread-pool thread with a read-only
 * connection of its own (opened lazily, kept for reuse; WAL lets it read
 * while the writer writes), then done on the loop thread. fn touches no
 * libuv handle. Every run has a time limit: past it SQLite interrupts the
 * statement and fn sees SQLITE_INTERRUPT (return SL_EBUSY then). */
#ifndef SESLOG_READPOOL_H
#define SESLOG_READPOOL_H

#include <sqlite3.h>
#include <uv.h>

typedef struct readpool readpool;

/* limit_ms bounds each run (0: 2000). Returns 0 or SL_ENOMEM. */
int readpool_new(uv_loop_t *loop, const char *db_path, int limit_ms, readpool **out);

/* Closes every connection; call when no run is in flight. */
void readpool_free(readpool *p);

typedef int (*readpool_fn)(sqlite3 *db, void *arg); /* pool thread */
typedef void (*readpool_done)(void *arg, int rc);   /* loop thread */

/* Queues fn(arg); done(arg, rc) follows on the loop with fn's return
 * value, or SL_EDB when no connection could be opened. Returns 0 or
 * SL_ENOMEM (then done is not called). */
int readpool_run(readpool *p, readpool_fn fn, readpool_done done, void *arg);

/* Runs in flight (for a clean stop). */
int readpool_active(const readpool *p);

/* For command-line tools: opens one read-only connection with the same
 * settings. db_path may be a "file:" URI (readpool_archive_uri). Returns
 * 0 or SL_EDB with a sentence in err. */
int readpool_open_conn(const char *db_path, sqlite3 **out, char *err, size_t errlen);

/* The name to open path by for reading without writing anything at all
 * (`serve --read-only`): without a WAL file (or with an empty one) a
 * "file:" URI with immutable=1, so SQLite takes no lock and creates no
 * -wal or -shm file; with a WAL file holding commits, path itself (read
 * only: the WAL is read, never checkpointed, so the database and WAL
 * files stay as they are; SQLite may create or update the -shm index).
 * Writes at most outlen bytes. Returns 0, or SL_ETOOBIG. */
int readpool_archive_uri(const char *path, char *out, size_t outlen);

#endif
