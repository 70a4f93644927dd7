/* cmd_vacuum.c - `seslog vacuum`: offline compaction of the database.
 *
 * Retention deletes rows but SQLite keeps the freed pages for reuse; VACUUM
 * rewrites the file without them. It needs the database to itself: stop
 * the server first (a running server makes it wait, then fail clearly). */
#include <sqlite3.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/stat.h>

#include "cmd.h"
#include "config.h"
#include "util.h"

struct vacuum_opts {
  char *db;
  long busy_timeout;
};

#define O(f) offsetof(struct vacuum_opts, f)
static const struct opt vacuum_table[] = {
    {"db", OPT_STR, O(db), SESLOG_DEFAULT_DB, "PATH", "the SQLite database"},
    {"busy-timeout", OPT_INT, O(busy_timeout), "5000", "MS",
     "how long to wait for another process to release the database"},
    {0},
};
#undef O

static const char vacuum_usage[] =
    "Usage: seslog vacuum [--db PATH]\n"
    "\n"
    "Rewrites the database without the space that deleted events left (after --retention),\n"
    "and empties the WAL. Stop the server first: VACUUM needs the database to itself.";

static long long size_of(const char *path, const char *suffix) {
  char p[4200];
  snprintf(p, sizeof p, "%s%s", path, suffix);
  struct stat st;
  return stat(p, &st) == 0 ? (long long)st.st_size : 0;
}

int cmd_vacuum(int argc, char **argv, int argi) {
  struct vacuum_opts o = {0};
  int rc = config_parse("vacuum", vacuum_usage, vacuum_table, &o, argc, argv, &argi);
  if (rc) {
    config_free(vacuum_table, &o);
    return rc == 1 ? 0 : 2;
  }
  int status = 2;
  sqlite3 *db = NULL;
  struct stat st;
  if (argi < argc) {
    fprintf(stderr, "seslog vacuum: unexpected argument \"%s\"\n", argv[argi]);
    goto out;
  }
  if (stat(o.db, &st) != 0) {
    fprintf(stderr, "seslog vacuum: no database at %s\n", o.db);
    goto out;
  }
  long long before = size_of(o.db, "") + size_of(o.db, "-wal");
  if (sqlite3_open_v2(o.db, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
    fprintf(stderr, "seslog vacuum: cannot open %s: %s\n", o.db, sqlite3_errmsg(db));
    goto out;
  }
  sqlite3_busy_timeout(db, (int)o.busy_timeout);
  char *msg = NULL;
  int64_t t0 = util_now_ms();
  if (sqlite3_exec(db, "VACUUM; PRAGMA wal_checkpoint(TRUNCATE);", NULL, NULL, &msg) != SQLITE_OK) {
    fprintf(
        stderr, "seslog vacuum: %s%s\n", msg ? msg : sqlite3_errmsg(db),
        sqlite3_errcode(db) == SQLITE_BUSY ? " (is a server running on it? stop it first)" : "");
    sqlite3_free(msg);
    goto out;
  }
  sqlite3_close(db);
  db = NULL;
  long long after = size_of(o.db, "") + size_of(o.db, "-wal");
  printf("vacuumed %s: %.1f MiB -> %.1f MiB in %.1f s\n", o.db, (double)before / 1048576.0,
         (double)after / 1048576.0, (double)(util_now_ms() - t0) / 1000.0);
  status = 0;
out:
  sqlite3_close(db);
  config_free(vacuum_table, &o);
  return status;
}
