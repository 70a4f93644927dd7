/* readpool.c - read-only connections on the libuv thread pool. */
#include "readpool.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "error.h"
#include "util.h"

typedef struct conn {
  sqlite3 *db;
  struct conn *next;
} conn;

struct readpool {
  uv_loop_t *loop;
  char *path;
  int limit_ms;
  pthread_mutex_t mu;
  conn *idle; /* connections not in use, guarded by mu */
  int active; /* runs queued or running (loop thread only) */
};

typedef struct run {
  uv_work_t work;
  readpool *p;
  readpool_fn fn;
  readpool_done done;
  void *arg;
  int rc;
} run;

int readpool_open_conn(const char *db_path, sqlite3 **out, char *err, size_t errlen) {
  sqlite3 *db = NULL;
  if (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_URI,
                      NULL) != SQLITE_OK) {
    if (err)
      snprintf(err, errlen, "cannot open %s: %s", db_path, db ? sqlite3_errmsg(db) : "no memory");
    sqlite3_close(db);
    return SL_EDB;
  }
  /* A reader waits briefly if a checkpoint holds a lock it needs. */
  sqlite3_busy_timeout(db, 1000);
  /* Memory-mapped reads skip a copy per page: a quarter of a bulk
   * suppression check's CPU. Read-only, so a stray write cannot go
   * through the map. */
  sqlite3_exec(db, "PRAGMA mmap_size=268435456", NULL, NULL, NULL);
  *out = db;
  return 0;
}

int readpool_new(uv_loop_t *loop, const char *db_path, int limit_ms, readpool **out) {
  readpool *p = calloc(1, sizeof *p);
  if (!p || !(p->path = strdup(db_path))) {
    free(p);
    return SL_ENOMEM;
  }
  p->loop = loop;
  p->limit_ms = limit_ms > 0 ? limit_ms : 2000;
  pthread_mutex_init(&p->mu, NULL);
  *out = p;
  return 0;
}

void readpool_free(readpool *p) {
  if (!p) return;
  while (p->idle) {
    conn *c = p->idle;
    p->idle = c->next;
    sqlite3_close(c->db);
    free(c);
  }
  pthread_mutex_destroy(&p->mu);
  free(p->path);
  free(p);
}

int readpool_active(const readpool *p) {
  return p->active;
}

/* Interrupts a statement that ran past the run's deadline. */
static int on_progress(void *ud) {
  return util_now_ms() > *(int64_t *)ud;
}

static void work_cb(uv_work_t *w) {
  run *r = w->data;
  readpool *p = r->p;
  pthread_mutex_lock(&p->mu);
  conn *c = p->idle;
  if (c) p->idle = c->next;
  pthread_mutex_unlock(&p->mu);
  if (!c) {
    c = calloc(1, sizeof *c);
    if (!c || readpool_open_conn(p->path, &c->db, NULL, 0)) {
      free(c);
      r->rc = SL_EDB;
      return;
    }
  }
  int64_t deadline = util_now_ms() + p->limit_ms;
  sqlite3_progress_handler(c->db, 1000, on_progress, &deadline);
  r->rc = r->fn(c->db, r->arg);
  sqlite3_progress_handler(c->db, 0, NULL, NULL);
  pthread_mutex_lock(&p->mu);
  c->next = p->idle;
  p->idle = c;
  pthread_mutex_unlock(&p->mu);
}

static void after_cb(uv_work_t *w, int status) {
  run *r = w->data;
  r->p->active--;
  r->done(r->arg, status == UV_ECANCELED ? SL_ESHUTDOWN : r->rc);
  free(r);
}

int readpool_run(readpool *p, readpool_fn fn, readpool_done done, void *arg) {
  run *r = calloc(1, sizeof *r);
  if (!r) return SL_ENOMEM;
  r->p = p;
  r->fn = fn;
  r->done = done;
  r->arg = arg;
  r->work.data = r;
  if (uv_queue_work(p->loop, &r->work, work_cb, after_cb)) {
    free(r);
    return SL_ENOMEM;
  }
  p->active++;
  return 0;
}

int readpool_archive_uri(const char *path, char *out, size_t outlen) {
  char wal[4096];
  struct stat sb;
  if (snprintf(wal, sizeof wal, "%s-wal", path) >= (int)sizeof wal) return SL_ETOOBIG;
  if (stat(wal, &sb) == 0 && sb.st_size > 0) {
    if (strlen(path) >= outlen) return SL_ETOOBIG;
    memcpy(out, path, strlen(path) + 1);
    return 0;
  }
  /* file:PATH?immutable=1 with the characters a URI gives meaning to
   * percent-encoded. */
  static const char hex[] = "0123456789ABCDEF";
  size_t j = 0;
  const char *head = "file:";
  for (const char *h = head; *h; h++) {
    if (j + 1 >= outlen) return SL_ETOOBIG;
    out[j++] = *h;
  }
  for (const unsigned char *c = (const unsigned char *)path; *c; c++) {
    int plain = isalnum(*c) || strchr("/._-~", *c);
    if (j + (plain ? 1 : 3) >= outlen) return SL_ETOOBIG;
    if (plain) {
      out[j++] = (char)*c;
    } else {
      out[j++] = '%';
      out[j++] = hex[*c >> 4];
      out[j++] = hex[*c & 15];
    }
  }
  const char *tail = "?immutable=1";
  if (j + strlen(tail) >= outlen) return SL_ETOOBIG;
  memcpy(out + j, tail, strlen(tail) + 1);
  return 0;
}
