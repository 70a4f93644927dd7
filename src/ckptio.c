/* ckptio.c - the checkpointer's database writes, paced (see ckptio.h).
 *
 * A VFS over the default one: every call goes through, except that the
 * main database file of a connection given a hook (a private file
 * control) notes the offset of each page written, and its xSync first
 * writes those pages back itself, in offset order, CKPTIO_STEP pages at a
 * time (sync_file_range on a descriptor of its own: write-back is per
 * file, whichever descriptor asks), calling the hook before each step. */
#include "ckptio.h"

#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CKPTIO_VFS "seslog-ckptio"
#define FCNTL_HOOK 0x636b7074 /* private file control: sets the hook */

struct hook {
  int (*wait)(void *ud);
  void *ud;
};

typedef struct gfile {
  sqlite3_file base;  /* pMethods = &gated_methods */
  sqlite3_file *real; /* the default VFS's file, right after this struct */
  int main_db;        /* the main database file */
  int fd;             /* of the main database, for write-back; -1 */
  struct hook hook;   /* wait == NULL: no pacing */
  int64_t *offs;      /* pages written since the last sync */
  size_t n_offs, cap_offs;
  int page; /* the size of the last write */
} gfile;

static sqlite3_vfs *real_vfs;
static sqlite3_vfs gated_vfs;
static long steps;
static pthread_mutex_t steps_mu = PTHREAD_MUTEX_INITIALIZER;

long ckptio_steps(void) {
  pthread_mutex_lock(&steps_mu);
  long n = steps;
  pthread_mutex_unlock(&steps_mu);
  return n;
}

static int cmp_off(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

/* Writes back the pages noted since the last sync, CKPTIO_STEP at a time
 * in offset order, each step after hook.wait, and forgets them; a wait
 * that returns nonzero leaves the rest to the sync. Best effort: SQLite's
 * own sync, after this, is what makes them durable. */
static void write_back(gfile *g) {
  if (!g->n_offs) return;
  qsort(g->offs, g->n_offs, sizeof *g->offs, cmp_off);
  size_t i = 0;
  while (i < g->n_offs) {
    size_t end = i + CKPTIO_STEP < g->n_offs ? i + CKPTIO_STEP : g->n_offs;
    if (g->hook.wait(g->hook.ud)) break;
    int64_t from = g->offs[i], to = g->offs[end - 1] + g->page;
    sync_file_range(
        g->fd, from, to - from,
        SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER);
    pthread_mutex_lock(&steps_mu);
    steps++;
    pthread_mutex_unlock(&steps_mu);
    i = end;
  }
  g->n_offs = 0;
}

static int g_close(sqlite3_file *f) {
  gfile *g = (gfile *)f;
  int rc = g->real->pMethods->xClose(g->real);
  if (g->fd >= 0) close(g->fd);
  free(g->offs);
  return rc;
}

static int g_read(sqlite3_file *f, void *buf, int n, sqlite3_int64 off) {
  gfile *g = (gfile *)f;
  return g->real->pMethods->xRead(g->real, buf, n, off);
}

/* Notes the page (when paced); a note that cannot be kept (no memory)
 * only leaves that page to SQLite's sync. */
static int g_write(sqlite3_file *f, const void *buf, int n, sqlite3_int64 off) {
  gfile *g = (gfile *)f;
  int rc = g->real->pMethods->xWrite(g->real, buf, n, off);
  if (rc == SQLITE_OK && g->hook.wait && g->fd >= 0) {
    if (g->n_offs == g->cap_offs) {
      size_t cap = g->cap_offs ? g->cap_offs * 2 : 1024;
      int64_t *p = realloc(g->offs, cap * sizeof *p);
      if (!p) return rc;
      g->offs = p;
      g->cap_offs = cap;
    }
    g->offs[g->n_offs++] = off;
    if (n > g->page) g->page = n;
  }
  return rc;
}

static int g_truncate(sqlite3_file *f, sqlite3_int64 size) {
  gfile *g = (gfile *)f;
  return g->real->pMethods->xTruncate(g->real, size);
}

static int g_sync(sqlite3_file *f, int flags) {
  gfile *g = (gfile *)f;
  if (g->hook.wait && g->fd >= 0) {
    write_back(g);
    (void)g->hook.wait(g->hook.ud);
  }
  return g->real->pMethods->xSync(g->real, flags);
}

static int g_file_size(sqlite3_file *f, sqlite3_int64 *size) {
  gfile *g = (gfile *)f;
  return g->real->pMethods->xFileSize(g->real, size);
}

static int g_lock(sqlite3_file *f, int level) {
  gfile *g = (gfile *)f;
  return g->real->pMethods->xLock(g->real, level);
}

static int g_unlock(sqlite3_file *f, int level) {
  gfile *g = (gfile *)f;
  return g->real->pMethods->xUnlock(g->real, level);
}

static int g_check_reserved(sqlite3_file *f, int *out) {
  gfile *g = (gfile *)f;
  return g->real->pMethods->xCheckReservedLock(g->real, out);
}

static int g_file_control(sqlite3_file *f, int op, void *arg) {
  gfile *g = (gfile *)f;
  if (op == FCNTL_HOOK) {
    if (!g->main_db || g->fd < 0) return SQLITE_NOTFOUND;
    g->hook = *(const struct hook *)arg;
    return SQLITE_OK;
  }
  return g->real->pMethods->xFileControl(g->real, op, arg);
}

static int g_sector_size(sqlite3_file *f) {
  gfile *g = (gfile *)f;
  return g->real->pMethods->xSectorSize(g->real);
}

static int g_device_characteristics(sqlite3_file *f) {
  gfile *g = (gfile *)f;
  return g->real->pMethods->xDeviceCharacteristics(g->real);
}

static int g_shm_map(sqlite3_file *f, int region, int size, int extend, void volatile **out) {
  gfile *g = (gfile *)f;
  return g->real->pMethods->xShmMap(g->real, region, size, extend, out);
}

static int g_shm_lock(sqlite3_file *f, int offset, int n, int flags) {
  gfile *g = (gfile *)f;
  return g->real->pMethods->xShmLock(g->real, offset, n, flags);
}

static void g_shm_barrier(sqlite3_file *f) {
  gfile *g = (gfile *)f;
  g->real->pMethods->xShmBarrier(g->real);
}

static int g_shm_unmap(sqlite3_file *f, int del) {
  gfile *g = (gfile *)f;
  return g->real->pMethods->xShmUnmap(g->real, del);
}

static int g_fetch(sqlite3_file *f, sqlite3_int64 off, int n, void **out) {
  gfile *g = (gfile *)f;
  return g->real->pMethods->xFetch(g->real, off, n, out);
}

static int g_unfetch(sqlite3_file *f, sqlite3_int64 off, void *p) {
  gfile *g = (gfile *)f;
  return g->real->pMethods->xUnfetch(g->real, off, p);
}

static const sqlite3_io_methods gated_methods = {
    3,
    g_close,
    g_read,
    g_write,
    g_truncate,
    g_sync,
    g_file_size,
    g_lock,
    g_unlock,
    g_check_reserved,
    g_file_control,
    g_sector_size,
    g_device_characteristics,
    g_shm_map,
    g_shm_lock,
    g_shm_barrier,
    g_shm_unmap,
    g_fetch,
    g_unfetch,
};

/* Opens the default VFS's file behind a gated one. A file whose methods
 * are older than version 3 (no WAL, no mmap) is handed out as it is. */
static int g_open(sqlite3_vfs *vfs, sqlite3_filename name, sqlite3_file *f, int flags,
                  int *out_flags) {
  (void)vfs;
  gfile *g = (gfile *)f;
  memset(g, 0, sizeof *g);
  g->real = (sqlite3_file *)(g + 1);
  g->fd = -1;
  int rc = real_vfs->xOpen(real_vfs, name, g->real, flags, out_flags);
  if (rc != SQLITE_OK || !g->real->pMethods) {
    g->base.pMethods = NULL;
    return rc;
  }
  if (g->real->pMethods->iVersion < 3) {
    g->real->pMethods->xClose(g->real);
    return SQLITE_CANTOPEN;
  }
  g->main_db = (flags & SQLITE_OPEN_MAIN_DB) != 0;
  if (g->main_db && name) g->fd = open(name, O_RDONLY | O_CLOEXEC);
  g->base.pMethods = &gated_methods;
  return SQLITE_OK;
}

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int registered_rc = SQLITE_ERROR;

static void register_vfs(void) {
  real_vfs = sqlite3_vfs_find(NULL);
  if (!real_vfs) return;
  gated_vfs = *real_vfs;
  gated_vfs.pNext = NULL;
  gated_vfs.zName = CKPTIO_VFS;
  /* the gated file, padded to 8 bytes, then the real one */
  gated_vfs.szOsFile = (int)((sizeof(gfile) + 7) / 8 * 8) + real_vfs->szOsFile;
  gated_vfs.xOpen = g_open;
  registered_rc = sqlite3_vfs_register(&gated_vfs, 0);
}

int ckptio_open(const char *path, sqlite3 **db, int (*wait)(void *ud), void *ud) {
  pthread_once(&once, register_vfs);
  if (registered_rc != SQLITE_OK) {
    *db = NULL;
    return registered_rc;
  }
  int rc = sqlite3_open_v2(path, db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, CKPTIO_VFS);
  if (rc != SQLITE_OK) return rc;
  struct hook h = {wait, ud};
  if (wait) sqlite3_file_control(*db, "main", FCNTL_HOOK, &h);
  return SQLITE_OK;
}
