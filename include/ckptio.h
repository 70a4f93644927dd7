/* ckptio.h - the checkpointer's database writes, paced around the writer's commits.
 *
 * A checkpoint copies WAL frames into the database file (into the page
 * cache: no disk I/O yet), then syncs the file: megabytes reach the disk
 * at once, and a commit whose WAL sync runs meanwhile waits behind them
 * (about twice as long as one that runs alone). A connection opened with
 * ckptio_open writes those pages back in steps of at most CKPTIO_STEP
 * pages before SQLite's own sync, and calls wait(ud) before each step, so
 * its owner can hold a step back while a commit is in flight. SQLite's
 * own sync still follows every step, so durability is SQLite's. */
#ifndef SESLOG_CKPTIO_H
#define SESLOG_CKPTIO_H

struct sqlite3;

#define CKPTIO_STEP 64 /* pages written back per step (256 KiB of 4 KiB pages) */

/* Opens path read-write like sqlite3_open_v2 (SQLITE_OPEN_NOMUTEX), on a
 * VFS that writes the database file's pages back in steps as above;
 * wait(ud) is called on the syncing thread before each step and before the
 * sync (it may block for a while; it must not use this connection); when
 * it returns nonzero, the sync writes the remaining pages back at once.
 * Returns an SQLite result code; *db as sqlite3_open_v2 leaves it. */
int ckptio_open(const char *path, struct sqlite3 **db, int (*wait)(void *ud), void *ud);

/* Steps written back so far by every ckptio connection (for tests). */
long ckptio_steps(void);

#endif
