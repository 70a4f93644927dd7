/* cmd_vacuum.c - `seslog vacuum`: offline compaction of the database.
 *
 * Retention deletes rows but SQLite keeps the freed pages for reuse; VACUUM
 * rewrites the file without them. Before that a dictionary is trained on
 * the whole table and every event's original JSON recompressed with it
 * (rows written before any dictionary existed, or by an older seslog, are
 * plain text until then). VACUUM needs the database to itself: stop the
 * server first (a running server makes it wait, then fail clearly).
 *
 * VACUUM says nothing while it works, which on an archive of gigabytes is
 * minutes: its progress is measured from what it writes. It copies the
 * live pages into a temporary database (SQLite's "etilqs_" file, unlinked
 * but open: found through /proc/self/fd), then writes each page back
 * through the WAL, so the work is about twice the live pages' bytes. A
 * ticker thread looks at those sizes while VACUUM runs (the copy back
 * runs no VM step a progress handler would see). */
#include <dirent.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cmd.h"
#include "config.h"
#include "error.h"
#include "rawz.h"
#include "store.h"
#include "util.h"

struct vacuum_opts {
  char *db;
  long busy_timeout;
  int64_t progress_every;
};

#define O(f) offsetof(struct vacuum_opts, f)
static const struct opt vacuum_table[] = {
    {"db", OPT_STR, O(db), SESLOG_DEFAULT_DB, "PATH", "the SQLite database"},
    {"busy-timeout", OPT_INT, O(busy_timeout), "5000", "MS",
     "how long to wait for another process to release the database"},
    {"progress-every", OPT_DURATION, O(progress_every), "5s", "DURATION",
     "when stderr is not a terminal, a progress line this often (a terminal gets a bar)"},
    {0},
};
#undef O

static const char vacuum_usage[] =
    "Usage: seslog vacuum [--db PATH] [--progress-every DURATION]\n"
    "\n"
    "Trains a new compression dictionary on the stored events and recompresses every event's\n"
    "original JSON with it, rewrites the database without the space that deleted events left\n"
    "(after --retention), and empties the WAL. Stop the server first: VACUUM needs the\n"
    "database to itself. VACUUM's progress goes to stderr: a bar with the time left on a\n"
    "terminal, else a line every --progress-every.";

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

/* ---- progress ---------------------------------------------------------- */

typedef struct vac_progress {
  const char *db;
  long long total;   /* bytes VACUUM writes, about: twice the live pages */
  long long wal0;    /* the WAL's bytes before */
  long long temp;    /* the largest temporary file seen: the first half */
  int tty;           /* stderr is a terminal: a bar redrawn in place */
  int64_t every_ms;  /* else a line this often */
  int64_t t0, shown; /* start; last output */
  int drawn;         /* a bar is on the screen (end it with a newline) */
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int stop; /* under mu: VACUUM returned */
} vac_progress;

/* The bytes of SQLite's open temporary files ("etilqs_*", unlinked), the
 * largest one: VACUUM's copy of the database. */
static long long temp_bytes(void) {
  DIR *d = opendir("/proc/self/fd");
  if (!d) return 0;
  long long best = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    char link[64], target[4096];
    snprintf(link, sizeof link, "/proc/self/fd/%s", e->d_name);
    ssize_t n = readlink(link, target, sizeof target - 1);
    if (n <= 0) continue;
    target[n] = 0;
    struct stat st;
    if (strstr(target, "etilqs_") && stat(link, &st) == 0 && st.st_size > best) best = st.st_size;
  }
  closedir(d);
  return best;
}

static void fmt_secs(double s, char *out, size_t n) {
  long t = (long)(s + 0.5);
  if (t >= 3600)
    snprintf(out, n, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
  else
    snprintf(out, n, "%ld:%02ld", t / 60, t % 60);
}

/* Prints where VACUUM is: a bar with the bytes and an ETA on a terminal,
 * redrawn at most 5 times a second; else one line every every_ms. */
static void vac_show(vac_progress *p, int final) {
  int64_t now = util_now_ms();
  if (!final && now - p->shown < (p->tty ? 200 : p->every_ms)) return;
  p->shown = now;
  long long t = temp_bytes();
  if (t > p->temp) p->temp = t;
  long long wal = size_of(p->db, "-wal") - p->wal0;
  long long done = p->temp + (wal > 0 ? wal : 0);
  if (done > p->total) done = p->total;
  double frac = final ? 1.0 : p->total > 0 ? (double)done / (double)p->total : 0;
  if (!final && frac > 0.99) frac = 0.99; /* the end is the commit, not a byte count */
  double el = (double)(now - p->t0) / 1000.0;
  char eta[32] = "", elapsed[32];
  fmt_secs(el, elapsed, sizeof elapsed);
  if (!final && frac > 0.02) fmt_secs(el * (1 - frac) / frac, eta, sizeof eta);
  double mib = (double)p->total / 2 / 1048576.0;
  if (p->tty) {
    char bar[31];
    int fill = (int)(frac * 30);
    for (int i = 0; i < 30; i++) bar[i] = i < fill ? '#' : '-';
    bar[30] = 0;
    fprintf(stderr, "\rvacuum [%s] %3d%%  %.1f MiB live  %s elapsed%s%s  ", bar, (int)(frac * 100),
            mib, elapsed, eta[0] ? ", about " : "", eta[0] ? eta : "");
    if (eta[0]) fputs("left", stderr);
    fputs(final ? "\n" : "\033[K", stderr);
    p->drawn = !final;
  } else {
    fprintf(stderr, "vacuum: %d%% of %.1f MiB live after %s%s%s%s\n", (int)(frac * 100), mib,
            elapsed, eta[0] ? ", about " : "", eta[0] ? eta : "", eta[0] ? " left" : "");
  }
  fflush(stderr);
}

/* The ticker thread: shows the progress until stop is set. It looks every
 * 100 ms, or every --progress-every when that is shorter (after
 * recompression a VACUUM can be over in less than 100 ms). */
static void *vac_ticker(void *arg) {
  vac_progress *p = arg;
  long step_ms = !p->tty && p->every_ms < 100 ? (long)p->every_ms : 100;
  pthread_mutex_lock(&p->mu);
  while (!p->stop) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    util_timespec_add_us(&ts, step_ms * 1000L);
    pthread_cond_timedwait(&p->cv, &p->mu, &ts);
    if (!p->stop) vac_show(p, 0);
  }
  pthread_mutex_unlock(&p->mu);
  return NULL;
}

/* The bytes of the pages in use (page_count - freelist_count). */
static long long live_bytes(sqlite3 *db) {
  long long v[3] = {0, 0, 0};
  const char *sql[3] = {"PRAGMA page_count", "PRAGMA freelist_count", "PRAGMA page_size"};
  for (int i = 0; i < 3; i++) {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql[i], -1, &st, NULL) != SQLITE_OK) return 0;
    if (sqlite3_step(st) == SQLITE_ROW) v[i] = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
  }
  return (v[0] - v[1]) * v[2];
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
  int64_t tv = util_now_ms(); /* VACUUM's own start, for its progress */
  vac_progress prog = {.db = o.db,
                       .total = 2 * live_bytes(db),
                       .wal0 = size_of(o.db, "-wal"),
                       .tty = isatty(STDERR_FILENO),
                       .every_ms = o.progress_every > 0 ? o.progress_every : 5000,
                       .t0 = tv,
                       .shown = tv};
  pthread_mutex_init(&prog.mu, NULL);
  pthread_cond_init(&prog.cv, NULL);
  pthread_t ticker;
  int ticking = pthread_create(&ticker, NULL, vac_ticker, &prog) == 0;
  int vrc = sqlite3_exec(db, "VACUUM", NULL, NULL, &msg);
  if (ticking) {
    pthread_mutex_lock(&prog.mu);
    prog.stop = 1;
    pthread_cond_signal(&prog.cv);
    pthread_mutex_unlock(&prog.mu);
    pthread_join(ticker, NULL);
  }
  pthread_mutex_destroy(&prog.mu);
  pthread_cond_destroy(&prog.cv);
  if (vrc == SQLITE_OK && (prog.tty || util_now_ms() - tv >= prog.every_ms))
    vac_show(&prog, 1); /* 100 %; a bar ends its line */
  else if (prog.drawn)
    fputc('\n', stderr); /* before the error */
  if (vrc != SQLITE_OK ||
      sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE);", NULL, NULL, &msg) != SQLITE_OK) {
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
