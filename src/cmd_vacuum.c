/* cmd_vacuum.c - `seslog vacuum`: offline compaction of the database.
 *
 * Retention deletes rows but SQLite keeps the freed pages for reuse; VACUUM
 * rewrites the file without them. Before that a dictionary is trained on
 * the whole table and every event's original JSON recompressed with it
 * (rows written before any dictionary existed, or by an older seslog, are
 * plain text until then). VACUUM needs the database to itself: stop the
 * server first (a running server makes it wait, then fail clearly). */
#include <sqlite3.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "cmd.h"
#include "config.h"
#include "error.h"
#include "rawz.h"
#include "store.h"
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
    "Trains a new compression dictionary on the stored events and recompresses every event's\n"
    "original JSON with it, rewrites the database without the space that deleted events left\n"
    "(after --retention), and empties the WAL. Stop the server first: VACUUM needs the\n"
    "database to itself.";

static long long size_of(const char *path, const char *suffix) {
  char p[4200];
  snprintf(p, sizeof p, "%s%s", path, suffix);
  struct stat st;
  return stat(p, &st) == 0 ? (long long)st.st_size : 0;
}

/* Trains a dictionary on db's events, stores it and recompresses every
 * event with it; prints what it did. A database too small to learn from
 * is left as it is. Returns 0 or a negative code after printing why. */
static int recompress(sqlite3 *db) {
  char err[256] = "";
  void *dict = NULL;
  size_t len = 0;
  int samples = 0;
  rawz_enc *z = NULL;
  int rc = rawz_train(db, 4096, &dict, &len, &samples, err, sizeof err);
  if (rc == SL_EINVAL) {
    printf("not recompressed: %s\n", err);
    return 0;
  }
  int64_t id = 0, rows = 0, before = 0, after = 0;
  if (!rc) rc = rawz_enc_new(&z);
  if (!rc && sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) rc = SL_EDB;
  if (!rc) {
    rc = rawz_insert(db, dict, len, samples, &id);
    if (!rc && sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) rc = SL_EDB;
    if (rc) sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
  }
  if (!rc) rc = rawz_enc_load(z, db);
  if (rc == SL_EDB && !err[0]) snprintf(err, sizeof err, "%s", sqlite3_errmsg(db));
  int64_t t0 = util_now_ms();
  if (!rc) rc = rawz_recompress(db, z, &rows, &before, &after, err, sizeof err);
  free(dict);
  rawz_enc_free(z);
  if (rc) {
    fprintf(
        stderr, "seslog vacuum: recompressing failed after %lld events: %s%s\n", (long long)rows,
        err[0] ? err : sl_strerror(rc),
        sqlite3_errcode(db) == SQLITE_BUSY ? " (is a server running on it? stop it first)" : "");
    return rc;
  }
  printf(
      "recompressed %lld events with dictionary %lld (learned from %d events): "
      "%.1f MiB -> %.1f MiB of original JSON in %.1f s\n",
      (long long)rows, (long long)id, samples, (double)before / 1048576.0,
      (double)after / 1048576.0, (double)(util_now_ms() - t0) / 1000.0);
  return 0;
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
  /* store_open migrates a database of an older seslog (raw_dicts) and
   * registers seslog_raw() for the connection below */
  store *sto = NULL;
  char err[512];
  struct store_opts so = {.busy_timeout_ms = o.busy_timeout};
  if (store_open(o.db, &so, &sto, err, sizeof err)) {
    fprintf(stderr, "seslog vacuum: %s\n", err);
    goto out;
  }
  store_close(sto);
  if (sqlite3_open_v2(o.db, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
    fprintf(stderr, "seslog vacuum: cannot open %s: %s\n", o.db, sqlite3_errmsg(db));
    goto out;
  }
  sqlite3_busy_timeout(db, (int)o.busy_timeout);
  int64_t t0 = util_now_ms();
  if (recompress(db)) goto out;
  char *msg = NULL;
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
