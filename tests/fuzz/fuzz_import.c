/* fuzz_import.c - libFuzzer target for `seslog import` (cmd.h).
 *
 * import's document splitting and classification are static in
 * src/import.c, so they are fuzzed through the command itself: the input
 * is written to a file and cmd_import runs on it, as
 *   seslog import --db DB [--verify --sns-cert-dir CERTS] FILE
 * where DB is one database made once per process (in /dev/shm when there,
 * so its fsyncs are cheap) and reused by every run, and CERTS holds copies
 * of the fixture certificates. One input in two runs with --verify (chosen
 * by a hash of the input, so a reproducer replays the same way). The exit
 * status must be 0 or 1 (something rejected), or 2 for an input import
 * refuses whole: gzip data (which may be damaged) or binary data (a control
 * character in the first 4096 bytes after a UTF-8 BOM); any other 2 would
 * mean a usage error or a database that refused the write, neither of
 * which an input may cause; every 256 runs the database must pass PRAGMA
 * quick_check. Everything
 * made is removed at exit; folders left by a crashed run are removed by
 * the next one. */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "arena.h"
#include "cmd.h"

#ifndef FUZZ_FIXTURES
#define FUZZ_FIXTURES "tests/fixtures"
#endif

#define CHECK(cond)                                                                           \
  do {                                                                                        \
    if (!(cond)) {                                                                            \
      fprintf(stderr, "fuzz_import: check failed at %s:%d: %s\n", __FILE__, __LINE__, #cond); \
      abort();                                                                                \
    }                                                                                         \
  } while (0)

#define PREFIX "seslog-fuzz-import-"
#define RESET_BYTES (32L << 20) /* start a new database past this size */

static char base[1024];  /* the temp folder holding the dirs below */
static char dir[1200];   /* this process's folder */
static char db[1300];    /* dir/events.db */
static char input[1300]; /* dir/input.json */
static char certs[1300]; /* dir/certs */

static const char *const cert_files[] = {
    "certs/SimpleNotificationService-6aad65c2f9911b05cd53efda11f913f9.pem",
    "certs/SimpleNotificationService-7506a1e35b36ef5a444dd1a8e7cc3ed8.pem",
    "pki/SimpleNotificationService-0123456789abcdef0123456789abcdef.pem",
};

/* Removes a folder of plain files and one level of subfolders. */
static void remove_tree(const char *path) {
  DIR *d = opendir(path);
  if (!d) return;
  struct dirent *de;
  char p[4096];
  while ((de = readdir(d))) {
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
    snprintf(p, sizeof p, "%s/%s", path, de->d_name);
    if (unlink(p) != 0) remove_tree(p);
  }
  closedir(d);
  rmdir(path);
}

static void remove_db(void) {
  static const char *const ext[] = {"", "-wal", "-shm", "-journal"};
  char p[1400];
  for (size_t i = 0; i < sizeof ext / sizeof ext[0]; i++) {
    snprintf(p, sizeof p, "%s%s", db, ext[i]);
    unlink(p);
  }
}

static void cleanup(void) {
  if (dir[0]) remove_tree(dir);
}

/* Folders of runs that crashed (their process is gone). */
static void remove_stale(void) {
  DIR *d = opendir(base);
  if (!d) return;
  struct dirent *de;
  char p[2048];
  while ((de = readdir(d))) {
    if (strncmp(de->d_name, PREFIX, sizeof PREFIX - 1) != 0) continue;
    long pid = strtol(de->d_name + sizeof PREFIX - 1, NULL, 10);
    if (pid <= 0 || pid == (long)getpid() || (kill((pid_t)pid, 0) != 0 && errno == ESRCH)) {
      snprintf(p, sizeof p, "%s/%s", base, de->d_name);
      if (pid != (long)getpid()) remove_tree(p);
    }
  }
  closedir(d);
}

static void copy_file(const char *from, const char *to) {
  FILE *in = fopen(from, "rb");
  if (!in) {
    fprintf(stderr, "fuzz_import: cannot read %s (build with make fuzz)\n", from);
    exit(2);
  }
  FILE *out = fopen(to, "wb");
  CHECK(out);
  char chunk[8192];
  size_t n;
  while ((n = fread(chunk, 1, sizeof chunk, in)) > 0) CHECK(fwrite(chunk, 1, n, out) == n);
  fclose(in);
  CHECK(fclose(out) == 0);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  arena_install_cjson(); /* cJSON on the per-thread arenas, as in the binary */
  struct stat st;
  const char *tmp = getenv("TMPDIR");
  if (stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) && access("/dev/shm", W_OK) == 0)
    tmp = "/dev/shm";
  snprintf(base, sizeof base, "%s", tmp && *tmp ? tmp : "/tmp");
  remove_stale();
  snprintf(dir, sizeof dir, "%s/" PREFIX "%ld", base, (long)getpid());
  remove_tree(dir);
  CHECK(mkdir(dir, 0700) == 0);
  atexit(cleanup);
  snprintf(db, sizeof db, "%s/events.db", dir);
  snprintf(input, sizeof input, "%s/input.json", dir);
  snprintf(certs, sizeof certs, "%s/certs", dir);
  CHECK(mkdir(certs, 0700) == 0);
  for (size_t i = 0; i < sizeof cert_files / sizeof cert_files[0]; i++) {
    char from[2048], to[2048];
    snprintf(from, sizeof from, "%s/%s", FUZZ_FIXTURES, cert_files[i]);
    snprintf(to, sizeof to, "%s/%s", certs, strrchr(cert_files[i], '/') + 1);
    copy_file(from, to);
  }
  /* Flags decide, not the environment of whoever runs the fuzzer. */
  unsetenv("SESLOG_DB");
  unsetenv("SESLOG_VERIFY");
  unsetenv("SESLOG_SNS_CERT_DIR");
  unsetenv("SESLOG_LOG_LEVEL");
  unsetenv("SESLOG_SOFT_BOUNCE_LIMIT");
  unsetenv("SESLOG_SOFT_BOUNCE_DAYS");
  return 0;
}

static uint32_t fnv1a(const uint8_t *d, size_t n) {
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < n; i++) h = (h ^ d[i]) * 16777619u;
  return h;
}

/* The database is still sound and holds what import says it stores. */
static void check_db(void) {
  sqlite3 *h = NULL;
  CHECK(sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK);
  sqlite3_stmt *st = NULL;
  CHECK(sqlite3_prepare_v2(h, "PRAGMA quick_check", -1, &st, NULL) == SQLITE_OK);
  CHECK(sqlite3_step(st) == SQLITE_ROW);
  const char *r = (const char *)sqlite3_column_text(st, 0);
  if (!r || strcmp(r, "ok") != 0) {
    fprintf(stderr, "fuzz_import: quick_check: %s\n", r ? r : "(null)");
    abort();
  }
  sqlite3_finalize(st);
  sqlite3_close(h);
}

/* 1 when import may refuse the whole input (exit 2): gzip, or not text. */
static int refused_whole(const uint8_t *d, size_t n) {
  if (n >= 2 && d[0] == 0x1f && d[1] == 0x8b) return 1;
  if (n >= 3 && d[0] == 0xEF && d[1] == 0xBB && d[2] == 0xBF) d += 3, n -= 3;
  for (size_t i = 0; i < n && i < 4096; i++)
    if (d[i] < 0x20 && d[i] != '\t' && d[i] != '\n' && d[i] != '\r') return 1;
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static unsigned long runs;
  struct stat st;
  if (stat(db, &st) == 0 && st.st_size > RESET_BYTES) remove_db();

  FILE *f = fopen(input, "wb");
  CHECK(f);
  CHECK(fwrite(data, 1, size, f) == size);
  CHECK(fclose(f) == 0);

  int verify = fnv1a(data, size) & 1;
  char *argv[16];
  int argc = 0;
  argv[argc++] = "seslog";
  argv[argc++] = "import";
  argv[argc++] = "--db";
  argv[argc++] = db;
  argv[argc++] = "--log-level";
  argv[argc++] = "error";
  if (verify) {
    argv[argc++] = "--verify";
    argv[argc++] = "--sns-cert-dir";
    argv[argc++] = certs;
  }
  argv[argc++] = input;
  argv[argc] = NULL;
  int rc = cmd_import(argc, argv, 2);
  if (rc != 0 && rc != 1 && !(rc == 2 && refused_whole(data, size))) {
    fprintf(stderr, "fuzz_import: seslog import exited %d\n", rc);
    abort();
  }
  if (++runs % 256 == 1) check_db();
  return 0;
}
