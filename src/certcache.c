/* certcache.c - the signing-certificate cache. */
#include "certcache.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "log.h"
#include "util.h"

#define CERT_MAX_BYTES (64 * 1024)
/* Fetches happen on demand, for unauthenticated requests: bounded so that
 * naming many unknown certificates cannot turn seslog into a fetch pump.
 * SNS signs with a handful of certificates, rotated rarely. */
#define FETCH_INFLIGHT_MAX 4  /* different URLs being fetched at once */
#define FETCH_PER_MINUTE 10   /* fetches started in one minute */
#define FAILED_MAX 256        /* failed URLs remembered */
#define FAILED_FIRST_MS 5000  /* a failed URL is not fetched again for this long, */
#define FAILED_LAST_MS 300000 /* doubling on each failure up to this */

/* A URL whose fetch failed, and until when it is not tried again. */
typedef struct failed {
  char *url;
  int64_t until_ms;
  int failures; /* in a row */
} failed;

typedef struct waiter {
  certcache_cb cb;
  void *ud;
  struct waiter *next;
} waiter;

typedef struct entry {
  char *url;       /* the key */
  sns_cert *cert;  /* NULL while fetching */
  waiter *waiters; /* while fetching */
  uint64_t used;   /* last use, for eviction */
  struct entry *next;
} entry;

struct certcache {
  outbound *ob;
  char *dir;
  int max_entries;
  int n;
  entry *entries;
  uint64_t clock;
  long fetches;
  long refused;              /* fetches not made: failed recently, or over a limit */
  int inflight;              /* fetches under way */
  int64_t minute_start;      /* the minute counted by started_in_minute */
  int started_in_minute;     /* fetches started since minute_start */
  failed failed[FAILED_MAX]; /* recent failures; url NULL when free */
};

int certcache_new(outbound *ob, const char *dir, int max_entries, certcache **out) {
  certcache *c = calloc(1, sizeof *c);
  if (!c) return SL_ENOMEM;
  c->ob = ob;
  c->dir = strdup(dir);
  c->max_entries = max_entries > 0 ? max_entries : 64;
  if (!c->dir) {
    free(c);
    return SL_ENOMEM;
  }
  *out = c;
  return 0;
}

static void entry_free(entry *e) {
  sns_cert_free(e->cert);
  free(e->url);
  free(e);
}

void certcache_free(certcache *c) {
  if (!c) return;
  while (c->entries) {
    entry *e = c->entries;
    c->entries = e->next;
    entry_free(e);
  }
  for (int i = 0; i < FAILED_MAX; i++) free(c->failed[i].url);
  free(c->dir);
  free(c);
}

long certcache_fetches(const certcache *c) {
  return c->fetches;
}

long certcache_refused(const certcache *c) {
  return c->refused;
}

static failed *failed_find(certcache *c, const char *url) {
  for (int i = 0; i < FAILED_MAX; i++)
    if (c->failed[i].url && strcmp(c->failed[i].url, url) == 0) return &c->failed[i];
  return NULL;
}

/* Remembers that url failed: not tried again for a while, longer after
 * each failure in a row. Takes the slot expiring first when all are used. */
static void failed_note(certcache *c, const char *url) {
  int64_t now = util_now_ms();
  failed *f = failed_find(c, url);
  if (!f) {
    f = &c->failed[0];
    for (int i = 0; i < FAILED_MAX; i++) {
      if (!c->failed[i].url) {
        f = &c->failed[i];
        break;
      }
      if (c->failed[i].until_ms < f->until_ms) f = &c->failed[i];
    }
    free(f->url);
    f->url = strdup(url);
    f->failures = 0;
    if (!f->url) return;
  }
  int64_t wait = FAILED_FIRST_MS;
  for (int i = 0; i < f->failures && wait < FAILED_LAST_MS; i++) wait *= 2;
  f->failures++;
  f->until_ms = now + (wait < FAILED_LAST_MS ? wait : FAILED_LAST_MS);
}

/* 0 when a new fetch of url may start now, else SL_ECERT (it failed a
 * moment ago) or SL_EBUSY (too many fetches under way or this minute). */
static int fetch_allowed(certcache *c, const char *url) {
  int64_t now = util_now_ms();
  failed *f = failed_find(c, url);
  if (f && now < f->until_ms) return SL_ECERT;
  if (c->inflight >= FETCH_INFLIGHT_MAX) return SL_EBUSY;
  if (now - c->minute_start >= 60000) {
    c->minute_start = now;
    c->started_in_minute = 0;
  }
  if (c->started_in_minute >= FETCH_PER_MINUTE) return SL_EBUSY;
  return 0;
}

static entry *find(certcache *c, const char *url) {
  for (entry *e = c->entries; e; e = e->next)
    if (strcmp(e->url, url) == 0) return e;
  return NULL;
}

static void unlink_entry(certcache *c, entry *victim) {
  for (entry **pp = &c->entries; *pp; pp = &(*pp)->next)
    if (*pp == victim) {
      *pp = victim->next;
      c->n--;
      return;
    }
}

/* Makes room for one more entry by forgetting the least recently used
 * certificate (never one being fetched). */
static void evict(certcache *c) {
  while (c->n >= c->max_entries) {
    entry *old = NULL;
    for (entry *e = c->entries; e; e = e->next)
      if (e->cert && (!old || e->used < old->used)) old = e;
    if (!old) return;
    unlink_entry(c, old);
    entry_free(old);
  }
}

static entry *add(certcache *c, const char *url, sns_cert *cert) {
  evict(c);
  entry *e = calloc(1, sizeof *e);
  if (!e || !(e->url = strdup(url))) {
    free(e);
    return NULL;
  }
  e->cert = cert;
  e->used = ++c->clock;
  e->next = c->entries;
  c->entries = e;
  c->n++;
  return e;
}

static void file_path(const certcache *c, const char *url, char *out, size_t n) {
  snprintf(out, n, "%s/%s", c->dir, sns_cert_file_name(url));
}

/* Reads a certificate file of at most CERT_MAX_BYTES. */
static int read_cert_file(const char *path, sns_cert **out) {
  FILE *f = fopen(path, "rb");
  if (!f) return SL_EIO;
  char *data = malloc(CERT_MAX_BYTES + 1);
  size_t n = data ? fread(data, 1, CERT_MAX_BYTES + 1, f) : 0;
  fclose(f);
  int rc = SL_ECERT;
  if (data && n > 0 && n <= CERT_MAX_BYTES) rc = sns_cert_parse(data, n, out);
  free(data);
  return rc;
}

const sns_cert *certcache_lookup(certcache *c, const char *url) {
  entry *e = find(c, url);
  if (e) {
    if (!e->cert) return NULL;
    e->used = ++c->clock;
    return e->cert;
  }
  char path[4096];
  file_path(c, url, path, sizeof path);
  sns_cert *cert;
  int rc = read_cert_file(path, &cert);
  if (rc == SL_EIO) return NULL;
  if (rc) {
    log_kv(LOG_WARN, "certificate file unreadable; fetching it instead", "path", path, NULL);
    return NULL;
  }
  e = add(c, url, cert);
  if (!e) {
    sns_cert_free(cert);
    return NULL;
  }
  return e->cert;
}

/* Stores a fetched certificate in the folder: a temporary file renamed
 * into place, so a reader never sees half a file. */
static void save(certcache *c, const char *url, const char *pem, size_t len) {
  char path[4096], tmp[4200];
  file_path(c, url, path, sizeof path);
  snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
  mkdir(c->dir, 0755);
  FILE *f = fopen(tmp, "wb");
  if (!f || fwrite(pem, 1, len, f) != len || fclose(f) != 0) {
    if (f) fclose(f);
    log_kv(LOG_WARN, "cannot store a fetched certificate", "path", path, "error", strerror(errno),
           NULL);
    unlink(tmp);
    return;
  }
  if (rename(tmp, path) != 0) unlink(tmp);
}

typedef struct fetch {
  certcache *c;
  entry *e;
} fetch;

static void on_fetched(void *ud, const outbound_result *res) {
  fetch *f = ud;
  certcache *c = f->c;
  entry *e = f->e;
  free(f);
  c->inflight--;
  sns_cert *cert = NULL;
  char why[256] = "";
  int rc = 0;
  if (res->rc) {
    rc = SL_ECERT;
    snprintf(why, sizeof why, "the signing certificate could not be fetched: %s", res->error);
  } else if (res->status != 200) {
    rc = SL_ECERT;
    snprintf(why, sizeof why, "the signing certificate could not be fetched: HTTP %ld%s",
             res->status,
             res->status >= 300 && res->status < 400 ? " (redirects are not followed)" : "");
  } else if (sns_cert_parse(res->body, res->body_len, &cert)) {
    rc = SL_ECERT;
    snprintf(why, sizeof why, "the fetched signing certificate is not a valid PEM certificate");
  }
  waiter *w = e->waiters;
  e->waiters = NULL;
  if (rc) {
    log_kv(LOG_WARN, "certificate fetch failed", "url", e->url, "error", why, NULL);
    failed_note(c, e->url);
    unlink_entry(c, e);
    entry_free(e);
  } else {
    log_kv(LOG_INFO, "certificate fetched", "url", e->url, NULL);
    failed *fl = failed_find(c, e->url);
    if (fl) {
      free(fl->url);
      memset(fl, 0, sizeof *fl);
    }
    save(c, e->url, res->body, res->body_len);
    e->cert = cert;
    e->used = ++c->clock;
  }
  while (w) {
    waiter *next = w->next;
    w->cb(w->ud, rc, cert, why);
    free(w);
    w = next;
  }
  /* e may still be in use by the waiters above only during their calls. */
}

int certcache_fetch(certcache *c, const char *url, certcache_cb cb, void *ud) {
  waiter *w = calloc(1, sizeof *w);
  if (!w) return SL_ENOMEM;
  w->cb = cb;
  w->ud = ud;
  entry *e = find(c, url);
  if (e && !e->cert) {
    /* A fetch is under way: wait for it. */
    w->next = e->waiters;
    e->waiters = w;
    return 0;
  }
  int allowed = fetch_allowed(c, url);
  if (allowed) {
    c->refused++;
    free(w);
    return allowed;
  }
  if (e) {
    /* Loaded meanwhile: callers use certcache_lookup first; treat as a
     * fresh fetch to keep one code path for the callback. */
    unlink_entry(c, e);
    entry_free(e);
  }
  e = add(c, url, NULL);
  fetch *f = calloc(1, sizeof *f);
  if (!e || !f) {
    free(f);
    free(w);
    if (e) {
      unlink_entry(c, e);
      entry_free(e);
    }
    return SL_ENOMEM;
  }
  f->c = c;
  f->e = e;
  e->waiters = w;
  struct outbound_req req = {.url = url, .timeout_ms = 10000, .max_body = CERT_MAX_BYTES};
  int rc = outbound_request(c->ob, &req, on_fetched, f);
  if (rc) {
    e->waiters = NULL;
    unlink_entry(c, e);
    entry_free(e);
    free(f);
    free(w);
    return rc;
  }
  c->fetches++;
  c->inflight++;
  c->started_in_minute++;
  return 0;
}
