/* rawz.c - the original JSON compressed with zstd dictionaries trained on
 * the database's own events; seslog_raw() to read it back. */
#include "rawz.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zdict.h>
#include <zstd.h>

#include "error.h"
#include "util.h"

#define LEVEL 3               /* zstd level of new rows: fast, and the dictionary does the work */
#define DICT_MAX (64 << 10)   /* largest dictionary trained */
#define MIN_SAMPLES 64        /* fewer events teach a dictionary nothing useful */
#define SAMPLE_MAX (16 << 10) /* a longer event is cut here for training */
#define DICT_MAGIC 0xEC30A437u
#define CACHED_DICTS 8                    /* dictionaries a reading connection keeps ready */
#define TOKEN_FIRST (RAWZ_TOKEN_MARK + 1) /* the token of RAWZ_COLUMNS' first value */
#define TOKEN_MIN 8 /* a shorter value stays: the dictionary predicts it about as well */

struct rawz_dict {
  ZSTD_CDict *cdict; /* digested */
  int64_t id;        /* its raw_dicts.id */
  int samples;       /* events it was trained on */
  atomic_int refs;   /* the encoder's, and one per thread compressing with it */
};

struct rawz_enc {
  ZSTD_CCtx *cctx; /* reused for every row */
  /* The current dictionary (NULL: none): replaced by rawz_enc_load on the
   * writer, taken by other threads through rawz_enc_dict; mu guards the
   * pointer, the reference count the dictionary. */
  pthread_mutex_t mu;
  rawz_dict *cur;
  void *out;  /* the last frame */
  size_t cap; /* bytes at out */
  buf tok;    /* the last tokenized text */
};

int rawz_enc_new(rawz_enc **out) {
  rawz_enc *z = calloc(1, sizeof *z);
  if (!z || !(z->cctx = ZSTD_createCCtx())) {
    free(z);
    return SL_ENOMEM;
  }
  pthread_mutex_init(&z->mu, NULL);
  buf_init(&z->tok, RAWZ_RAW_MAX);
  *out = z;
  return 0;
}

void rawz_dict_release(rawz_dict *d) {
  if (!d || atomic_fetch_sub(&d->refs, 1) != 1) return;
  ZSTD_freeCDict(d->cdict);
  free(d);
}

void rawz_enc_free(rawz_enc *z) {
  if (!z) return;
  ZSTD_freeCCtx(z->cctx);
  rawz_dict_release(z->cur);
  pthread_mutex_destroy(&z->mu);
  free(z->out);
  buf_free(&z->tok);
  free(z);
}

/* Only the thread that loads dictionaries calls these two, so they read
 * z->cur without the lock. */
int64_t rawz_enc_id(const rawz_enc *z) {
  return z->cur ? z->cur->id : 0;
}

int rawz_enc_samples(const rawz_enc *z) {
  return z->cur ? z->cur->samples : 0;
}

rawz_dict *rawz_enc_dict(rawz_enc *z) {
  pthread_mutex_lock(&z->mu);
  rawz_dict *d = z->cur;
  if (d) atomic_fetch_add(&d->refs, 1);
  pthread_mutex_unlock(&z->mu);
  return d;
}

int rawz_enc_load(rawz_enc *z, sqlite3 *db) {
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(db, "SELECT id, dict, samples FROM raw_dicts ORDER BY id DESC LIMIT 1", -1,
                         &st, NULL) != SQLITE_OK)
    return SL_EDB;
  int rc = sqlite3_step(st);
  if (rc == SQLITE_DONE) {
    sqlite3_finalize(st);
    return 0;
  }
  if (rc != SQLITE_ROW) {
    sqlite3_finalize(st);
    return SL_EDB;
  }
  rawz_dict *d = calloc(1, sizeof *d);
  if (d)
    d->cdict =
        ZSTD_createCDict(sqlite3_column_blob(st, 1), (size_t)sqlite3_column_bytes(st, 1), LEVEL);
  if (!d || !d->cdict) {
    free(d);
    sqlite3_finalize(st);
    return SL_ENOMEM;
  }
  d->id = sqlite3_column_int64(st, 0);
  d->samples = sqlite3_column_int(st, 2);
  atomic_init(&d->refs, 1);
  sqlite3_finalize(st);
  pthread_mutex_lock(&z->mu);
  rawz_dict *old = z->cur;
  z->cur = d;
  pthread_mutex_unlock(&z->mu);
  rawz_dict_release(old); /* freed once no other thread compresses with it */
  return 0;
}

/* 1 when text holds a byte that is a token or the mark: never in JSON
 * text, but such a text is stored as it is. */
static int holds_tokens(const char *text, size_t len) {
  for (int c = RAWZ_TOKEN_MARK; c < TOKEN_FIRST + RAWZ_NVALUES; c++) /* memchr: SIMD */
    if (memchr(text, c, len)) return 1;
  return 0;
}

/* Writes into out (reset first) RAWZ_TOKEN_MARK, then text with every
 * occurrence of a value of vals replaced by its token; where two values
 * start at the same byte, the longer. Returns 1 when a value was
 * replaced, 0 when the text stays as it is (no value occurs, or vals is
 * NULL), or SL_ENOMEM. */
static int tokenize(const char *text, size_t len, const rawz_values *vals, buf *out) {
  const char *next[RAWZ_NVALUES] = {0};
  size_t vlen[RAWZ_NVALUES] = {0};
  int any = 0;
  for (int k = 0; vals && k < RAWZ_NVALUES; k++) {
    vlen[k] = vals->v[k] ? strlen(vals->v[k]) : 0;
    if (vlen[k] >= TOKEN_MIN) next[k] = memmem(text, len, vals->v[k], vlen[k]);
    any |= next[k] != NULL;
  }
  if (!any || holds_tokens(text, len)) return 0;
  buf_reset(out);
  unsigned char mark = RAWZ_TOKEN_MARK;
  buf_append(out, &mark, 1);
  const char *p = text, *end = text + len;
  for (;;) {
    int best = -1;
    for (int k = 0; k < RAWZ_NVALUES; k++)
      if (next[k] &&
          (best < 0 || next[k] < next[best] || (next[k] == next[best] && vlen[k] > vlen[best])))
        best = k;
    if (best < 0) break;
    unsigned char token = (unsigned char)(TOKEN_FIRST + best);
    buf_append(out, p, (size_t)(next[best] - p));
    buf_append(out, &token, 1);
    p = next[best] + vlen[best];
    for (int k = 0; k < RAWZ_NVALUES; k++)
      if (next[k] && next[k] < p) next[k] = memmem(p, (size_t)(end - p), vals->v[k], vlen[k]);
  }
  buf_append(out, p, (size_t)(end - p));
  return buf_failed(out) ? SL_ENOMEM : 1;
}

/* Compresses len bytes of text, tokenized with vals into tok, with d into
 * *frame (growing it to *cap) with cctx. Returns the frame's length, or 0
 * when the text should stay plain (no gain, no room). Returns SIZE_MAX
 * when out of memory. */
static size_t compress_with(ZSTD_CCtx *cctx, const rawz_dict *d, const char *text, size_t len,
                            const rawz_values *vals, buf *tok, void **frame, size_t *cap) {
  int t = tokenize(text, len, vals, tok);
  if (t < 0) return SIZE_MAX;
  /* a text of its own starting with the mark (never JSON) stays plain: a
   * frame of it would read as tokenized */
  if (!t && len && (unsigned char)text[0] == RAWZ_TOKEN_MARK) return 0;
  const char *in = t ? tok->data : text;
  size_t inlen = t ? tok->len : len;
  size_t bound = ZSTD_compressBound(inlen);
  if (bound > *cap) {
    void *p = realloc(*frame, bound);
    if (!p) return SIZE_MAX;
    *frame = p;
    *cap = bound;
  }
  size_t n = ZSTD_compress_usingCDict(cctx, *frame, *cap, in, inlen, d->cdict);
  return ZSTD_isError(n) || n >= len ? 0 : n;
}

int rawz_compress(rawz_enc *z, const char *text, size_t len, const rawz_values *vals,
                  const void **out, size_t *outlen, int64_t *dict_id) {
  size_t n =
      z->cur ? compress_with(z->cctx, z->cur, text, len, vals, &z->tok, &z->out, &z->cap) : 0;
  if (n == SIZE_MAX) return SL_ENOMEM;
  if (n == 0) {
    /* no dictionary, or no gain: the text as it is never fails */
    *out = text;
    *outlen = len;
    *dict_id = 0;
    return 0;
  }
  *out = z->out;
  *outlen = n;
  *dict_id = z->cur->id;
  return 0;
}

/* What each thread that compresses with rawz_dict_compress keeps: a
 * compression context and room for one frame, freed when the thread ends. */
struct thread_enc {
  ZSTD_CCtx *cctx;
  void *frame;
  size_t cap;
  buf tok;
};

static pthread_key_t enc_key;
static pthread_once_t enc_once = PTHREAD_ONCE_INIT;
static int enc_key_ok;

static void free_thread_enc(void *p) {
  struct thread_enc *t = p;
  ZSTD_freeCCtx(t->cctx);
  free(t->frame);
  buf_free(&t->tok);
  free(t);
}

static void make_enc_key(void) {
  enc_key_ok = pthread_key_create(&enc_key, free_thread_enc) == 0;
}

static struct thread_enc *thread_enc(void) {
  pthread_once(&enc_once, make_enc_key);
  if (!enc_key_ok) return NULL;
  struct thread_enc *t = pthread_getspecific(enc_key);
  if (t) return t;
  t = calloc(1, sizeof *t);
  if (t) buf_init(&t->tok, RAWZ_RAW_MAX);
  if (t && (!(t->cctx = ZSTD_createCCtx()) || pthread_setspecific(enc_key, t))) {
    ZSTD_freeCCtx(t->cctx);
    free(t);
    t = NULL;
  }
  return t;
}

int rawz_dict_compress(const rawz_dict *d, const char *text, size_t len, const rawz_values *vals,
                       void **out, size_t *outlen, int64_t *dict_id) {
  *out = NULL;
  *outlen = 0;
  *dict_id = 0;
  if (!d) return 0;
  struct thread_enc *t = thread_enc();
  if (!t) return SL_ENOMEM;
  size_t n = compress_with(t->cctx, d, text, len, vals, &t->tok, &t->frame, &t->cap);
  if (n == SIZE_MAX) return SL_ENOMEM;
  if (n == 0) return 0;
  /* a copy of its own size: frames wait in queues, the bound is ~7x more */
  void *frame = malloc(n);
  if (!frame) return SL_ENOMEM;
  memcpy(frame, t->frame, n);
  *out = frame;
  *outlen = n;
  *dict_id = d->id;
  return 0;
}

/* The samples a dictionary learns from: their texts end to end in b,
 * sizes[i] bytes each; tok is room to tokenize one. */
struct samples {
  buf b, tok;
  size_t *sizes;
  int n, max;
};

/* Room for up to max samples (at least MIN_SAMPLES). Returns 0 or
 * SL_ENOMEM. */
static int samples_init(struct samples *sm, int max) {
  if (max < MIN_SAMPLES) max = MIN_SAMPLES;
  memset(sm, 0, sizeof *sm);
  sm->max = max;
  buf_init(&sm->b, (size_t)max * SAMPLE_MAX);
  buf_init(&sm->tok, RAWZ_RAW_MAX);
  sm->sizes = malloc(sizeof *sm->sizes * (size_t)max);
  return sm->sizes ? 0 : SL_ENOMEM;
}

static void samples_free(struct samples *sm) {
  buf_free(&sm->b);
  buf_free(&sm->tok);
  free(sm->sizes);
}

/* Adds text, tokenized with vals as rawz_compress would, as one sample
 * (cut at SAMPLE_MAX). Returns 1, 0 for an empty text (no sample), or
 * SL_ENOMEM. */
static int add_sample(struct samples *sm, const char *text, size_t len, const rawz_values *vals) {
  int t = text && len ? tokenize(text, len, vals, &sm->tok) : 0;
  if (t < 0) return t;
  const char *in = t ? sm->tok.data : text;
  size_t n = t ? sm->tok.len : len;
  if (!n || !in) return 0;
  if (n > SAMPLE_MAX) n = SAMPLE_MAX;
  if (buf_append(&sm->b, in, n)) return SL_ENOMEM;
  sm->sizes[sm->n++] = n;
  return 1;
}

/* The SELECT of one event's original and the values of its row that
 * tokenize it: columns 0 and 1 .. RAWZ_NVALUES of rawz_train's and
 * rawz_recompress's statements. */
#define SELECT_ORIGINAL RAWZ_SQL("") ", " RAWZ_COLUMNS("")

/* The values of RAWZ_COLUMNS in st's columns from first on. */
static void column_values(sqlite3_stmt *st, int first, rawz_values *v) {
  for (int k = 0; k < RAWZ_NVALUES; k++) v->v[k] = (const char *)sqlite3_column_text(st, first + k);
}

/* Adds the original of the first event at or after id as a sample
 * (tokenized with its row's columns). Returns 1 with a sample, 0 past
 * the end, SL_EDB or SL_ENOMEM. */
static int read_sample(sqlite3_stmt *st, int64_t id, struct samples *sm) {
  sqlite3_bind_int64(st, 1, id);
  int rc = sqlite3_step(st);
  int out = 0;
  if (rc == SQLITE_ROW) {
    const char *p = (const char *)sqlite3_column_text(st, 0);
    size_t n = (size_t)sqlite3_column_bytes(st, 0);
    rawz_values v;
    column_values(st, 1, &v);
    out = add_sample(sm, p, n, &v);
  } else if (rc != SQLITE_DONE) {
    out = SL_EDB;
  }
  sqlite3_reset(st);
  return out;
}

/* Trains a dictionary on the samples of sm. */
static int train_samples(const struct samples *sm, void **dict, size_t *dictlen, int *samples,
                         char *err, size_t errlen) {
  int n = sm->n;
  if (n < MIN_SAMPLES) {
    snprintf(err, errlen, "%d events are too few to train a dictionary on (%d needed)", n,
             MIN_SAMPLES);
    return SL_EINVAL;
  }
  size_t cap = sm->b.len / 8;
  if (cap > DICT_MAX) cap = DICT_MAX;
  if (cap < 4096) cap = 4096;
  void *d = malloc(cap);
  if (!d) return SL_ENOMEM;
  size_t got = ZDICT_trainFromBuffer(d, cap, sm->b.data, sm->sizes, (unsigned)n);
  if (ZDICT_isError(got) || got < 8) {
    snprintf(err, errlen, "training a dictionary on %d events failed: %s", n,
             ZDICT_isError(got) ? ZDICT_getErrorName(got) : "too small");
    free(d);
    return SL_EINVAL;
  }
  *dict = d;
  *dictlen = got;
  *samples = n;
  return 0;
}

int rawz_train(sqlite3 *db, int max_samples, void **dict, size_t *dictlen, int *samples, char *err,
               size_t errlen) {
  int64_t lo = 0, hi = 0;
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(db, "SELECT min(id), max(id) FROM SesEventMessages", -1, &st, NULL) !=
          SQLITE_OK ||
      sqlite3_step(st) != SQLITE_ROW) {
    snprintf(err, errlen, "cannot read the events: %s", sqlite3_errmsg(db));
    sqlite3_finalize(st);
    return SL_EDB;
  }
  lo = sqlite3_column_int64(st, 0);
  hi = sqlite3_column_int64(st, 1);
  sqlite3_finalize(st);
  st = NULL;
  struct samples sm;
  int rc = samples_init(&sm, max_samples);
  if (rc) {
    samples_free(&sm);
    return rc;
  }
  max_samples = sm.max;
  if (sqlite3_prepare_v2(db,
                         "SELECT " SELECT_ORIGINAL " FROM SesEventMessages WHERE id >= ? "
                         "ORDER BY id LIMIT 1",
                         -1, &st, NULL) != SQLITE_OK) {
    snprintf(err, errlen, "cannot read the events: %s", sqlite3_errmsg(db));
    rc = SL_EDB;
    goto out;
  }
  /* Spread over the ids, so a dictionary learns from every period of the
   * table, not only its latest minutes. */
  double step = hi >= lo ? (double)(hi - lo + 1) / max_samples : 1;
  if (step < 1) step = 1;
  int64_t prev = lo - 1;
  for (int k = 0; k < max_samples; k++) {
    int64_t id = lo + (int64_t)(step * k);
    if (id <= prev) continue;
    prev = id;
    int got = read_sample(st, id, &sm);
    if (got < 0) {
      if (got == SL_EDB) snprintf(err, errlen, "cannot read the events: %s", sqlite3_errmsg(db));
      rc = got;
      goto out;
    }
    if (got == 0) break;
  }
  rc = train_samples(&sm, dict, dictlen, samples, err, errlen);
out:
  sqlite3_finalize(st);
  samples_free(&sm);
  return rc;
}

int rawz_train_texts(const char *const *texts, const size_t *lens, const rawz_values *vals,
                     size_t n, int max_samples, void **dict, size_t *dictlen, int *samples,
                     char *err, size_t errlen) {
  struct samples sm;
  int rc = samples_init(&sm, max_samples);
  max_samples = sm.max;
  double step = n > (size_t)max_samples ? (double)n / max_samples : 1;
  for (int k = 0; k < max_samples && !rc; k++) {
    size_t i = (size_t)(step * k);
    if (i >= n) break;
    int one = add_sample(&sm, texts[i], lens[i], vals ? &vals[i] : NULL);
    if (one < 0) rc = one;
  }
  if (!rc) rc = train_samples(&sm, dict, dictlen, samples, err, errlen);
  samples_free(&sm);
  return rc;
}

static uint32_t get_le32(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int rawz_insert(sqlite3 *db, void *dict, size_t dictlen, int samples, int64_t *id) {
  unsigned char *d = dict;
  if (dictlen < 8 || get_le32(d) != DICT_MAGIC) return SL_EINVAL;
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(db, "SELECT coalesce(max(id), 0) + 1 FROM raw_dicts", -1, &st, NULL) !=
      SQLITE_OK)
    return SL_EDB;
  int64_t next = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
  sqlite3_finalize(st);
  if (next <= 0 || next > 0x7fffffff) return SL_EDB;
  /* The frame header names its dictionary by the Dictionary_ID of the
   * dictionary's header (RFC 8878, 5): make it the row's id, so a frame
   * alone says which row decodes it. */
  for (int i = 0; i < 4; i++) d[4 + i] = (unsigned char)((uint64_t)next >> (8 * i));
  if (sqlite3_prepare_v2(db,
                         "INSERT INTO raw_dicts (id, dict, samples, createdAt) VALUES (?,?,?,?)",
                         -1, &st, NULL) != SQLITE_OK)
    return SL_EDB;
  sqlite3_bind_int64(st, 1, next);
  sqlite3_bind_blob(st, 2, d, (int)dictlen, SQLITE_STATIC);
  sqlite3_bind_int(st, 3, samples);
  sqlite3_bind_int64(st, 4, util_now_ms());
  int rc = sqlite3_step(st);
  sqlite3_finalize(st);
  if (rc != SQLITE_DONE) return SL_EDB;
  *id = next;
  return 0;
}

/* A reading connection's decoder: one context, the dictionaries it met. */
struct dec {
  ZSTD_DCtx *dctx;
  struct {
    uint32_t id;
    ZSTD_DDict *dd;
  } cache[CACHED_DICTS];
  int n;    /* cached */
  int next; /* the slot replaced next when full */
};

static void dec_free(void *p) {
  struct dec *d = p;
  if (!d) return;
  for (int i = 0; i < d->n; i++) ZSTD_freeDDict(d->cache[i].dd);
  ZSTD_freeDCtx(d->dctx);
  free(d);
}

/* The digested dictionary id, read from raw_dicts through the connection
 * of ctx on first use. NULL with an error set on ctx. */
static ZSTD_DDict *dec_dict(struct dec *d, sqlite3_context *ctx, uint32_t id) {
  for (int i = 0; i < d->n; i++)
    if (d->cache[i].id == id) return d->cache[i].dd;
  sqlite3 *db = sqlite3_context_db_handle(ctx);
  sqlite3_stmt *st;
  ZSTD_DDict *dd = NULL;
  if (sqlite3_prepare_v2(db, "SELECT dict FROM raw_dicts WHERE id = ?", -1, &st, NULL) !=
      SQLITE_OK) {
    sqlite3_result_error(ctx, "seslog_raw: the database has no raw_dicts table", -1);
    return NULL;
  }
  sqlite3_bind_int64(st, 1, id);
  if (sqlite3_step(st) == SQLITE_ROW)
    dd = ZSTD_createDDict(sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0));
  sqlite3_finalize(st);
  if (!dd) {
    char msg[96];
    snprintf(msg, sizeof msg, "seslog_raw: dictionary %u is missing from raw_dicts", id);
    sqlite3_result_error(ctx, msg, -1);
    return NULL;
  }
  int slot;
  if (d->n < CACHED_DICTS) {
    slot = d->n++;
  } else {
    slot = d->next;
    d->next = (d->next + 1) % CACHED_DICTS;
    ZSTD_freeDDict(d->cache[slot].dd);
  }
  d->cache[slot].id = id;
  d->cache[slot].dd = dd;
  return dd;
}

/* The JSON text of a tokenized text (its mark first) with each token
 * replaced by its value among the SQL function's arguments after raw, set
 * as ctx's result; an error when a value it needs is not given. */
static void detokenize(sqlite3_context *ctx, int argc, sqlite3_value **argv, const char *in,
                       size_t len) {
  const char *val[RAWZ_NVALUES] = {0};
  size_t vlen[RAWZ_NVALUES] = {0};
  size_t total = 0;
  for (size_t i = 1; i < len; i++) {
    unsigned c = (unsigned char)in[i];
    if (c < TOKEN_FIRST || c >= TOKEN_FIRST + RAWZ_NVALUES) {
      total++;
      continue;
    }
    int k = (int)(c - TOKEN_FIRST);
    if (!val[k]) {
      if (k + 1 >= argc || sqlite3_value_type(argv[k + 1]) == SQLITE_NULL ||
          !(val[k] = (const char *)sqlite3_value_text(argv[k + 1]))) {
        sqlite3_result_error(ctx,
                             "seslog_raw: this event's JSON needs its row's columns: "
                             "seslog_raw(raw, " RAWZ_COLUMNS("") ")",
                             -1);
        return;
      }
      vlen[k] = (size_t)sqlite3_value_bytes(argv[k + 1]);
    }
    total += vlen[k];
  }
  if (total > RAWZ_RAW_MAX) {
    sqlite3_result_error_toobig(ctx);
    return;
  }
  char *out = sqlite3_malloc64(total + 1);
  if (!out) {
    sqlite3_result_error_nomem(ctx);
    return;
  }
  size_t o = 0;
  for (size_t i = 1; i < len; i++) {
    unsigned c = (unsigned char)in[i];
    if (c < TOKEN_FIRST || c >= TOKEN_FIRST + RAWZ_NVALUES) {
      out[o++] = in[i];
    } else {
      memcpy(out + o, val[c - TOKEN_FIRST], vlen[c - TOKEN_FIRST]);
      o += vlen[c - TOKEN_FIRST];
    }
  }
  out[o] = 0;
  sqlite3_result_text64(ctx, out, o, sqlite3_free, SQLITE_UTF8);
}

/* seslog_raw(raw, messageId, ...): text as it is; a zstd frame
 * decompressed with the dictionary its header names, its tokens replaced
 * by the row's values given after raw. NULL stays NULL. */
static void fn_raw(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  if (argc < 1) {
    sqlite3_result_error(ctx, "seslog_raw: no raw column given", -1);
    return;
  }
  sqlite3_value *v = argv[0];
  if (sqlite3_value_type(v) != SQLITE_BLOB) {
    sqlite3_result_value(ctx, v);
    return;
  }
  struct dec *d = sqlite3_user_data(ctx);
  const void *src = sqlite3_value_blob(v);
  size_t n = (size_t)sqlite3_value_bytes(v);
  unsigned long long size = src ? ZSTD_getFrameContentSize(src, n) : ZSTD_CONTENTSIZE_ERROR;
  if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN || size > RAWZ_RAW_MAX) {
    sqlite3_result_error(ctx, "seslog_raw: not a zstd frame of a stored event", -1);
    return;
  }
  if (!d->dctx && !(d->dctx = ZSTD_createDCtx())) {
    sqlite3_result_error_nomem(ctx);
    return;
  }
  unsigned id = ZSTD_getDictID_fromFrame(src, n);
  ZSTD_DDict *dd = id ? dec_dict(d, ctx, id) : NULL;
  if (id && !dd) return;
  char *out = sqlite3_malloc64(size + 1);
  if (!out) {
    sqlite3_result_error_nomem(ctx);
    return;
  }
  size_t got = dd ? ZSTD_decompress_usingDDict(d->dctx, out, size, src, n, dd)
                  : ZSTD_decompressDCtx(d->dctx, out, size, src, n);
  if (ZSTD_isError(got) || got != size) {
    sqlite3_free(out);
    sqlite3_result_error(ctx, "seslog_raw: a stored event does not decompress", -1);
    return;
  }
  if (got && (unsigned char)out[0] == RAWZ_TOKEN_MARK) {
    detokenize(ctx, argc, argv, out, got);
    sqlite3_free(out);
    return;
  }
  out[got] = 0;
  sqlite3_result_text64(ctx, out, got, sqlite3_free, SQLITE_UTF8);
}

static int ext_init(sqlite3 *db, char **errmsg, const struct sqlite3_api_routines *api) {
  struct dec *d = calloc(1, sizeof *d);
  if (!d) return SQLITE_NOMEM;
  return sqlite3_create_function_v2(db, "seslog_raw", -1, SQLITE_UTF8 | SQLITE_DETERMINISTIC, d,
                                    fn_raw, NULL, NULL, dec_free);
}

int rawz_register(void) {
  return sqlite3_auto_extension((void (*)(void))ext_init) == SQLITE_OK ? 0 : SL_EDB;
}

/* One row read for recompression. */
struct row {
  int64_t id;
  char *text; /* malloc'd JSON */
  size_t len;
  size_t stored;              /* bytes of raw as found */
  char *values[RAWZ_NVALUES]; /* malloc'd: the row's RAWZ_COLUMNS (NULL: NULL) */
};

static void row_clear(struct row *r) {
  free(r->text);
  for (int k = 0; k < RAWZ_NVALUES; k++) free(r->values[k]);
  memset(r, 0, sizeof *r);
}

/* Copies the row's values of RAWZ_COLUMNS from sel's columns from first
 * on. Returns 0 or SL_ENOMEM. */
static int copy_values(sqlite3_stmt *sel, int first, struct row *r) {
  rawz_values v;
  column_values(sel, first, &v);
  for (int k = 0; k < RAWZ_NVALUES; k++)
    if (v.v[k] && !(r->values[k] = strdup(v.v[k]))) return SL_ENOMEM;
  return 0;
}

#define RECOMPRESS_ROWS 2000 /* rows a transaction of rawz_recompress */

/* Reads the next rows after *after_id that z's dictionary did not write.
 * Returns how many (0: done) or SL_EDB / SL_ENOMEM. */
static int read_rows(sqlite3_stmt *sel, int64_t after_id, int64_t dict, struct row *rows) {
  sqlite3_bind_int64(sel, 1, after_id);
  sqlite3_bind_int64(sel, 2, dict);
  int n = 0, rc;
  while (n < RECOMPRESS_ROWS && (rc = sqlite3_step(sel)) == SQLITE_ROW) {
    const char *t = (const char *)sqlite3_column_text(sel, 1);
    size_t len = (size_t)sqlite3_column_bytes(sel, 1);
    rows[n].id = sqlite3_column_int64(sel, 0);
    rows[n].stored = (size_t)sqlite3_column_int64(sel, 2);
    rows[n].text = t ? util_strndup(t, len) : NULL;
    rows[n].len = len;
    if (!rows[n].text || copy_values(sel, 3, &rows[n])) {
      sqlite3_reset(sel);
      for (int i = 0; i <= n; i++) row_clear(&rows[i]);
      return t ? SL_ENOMEM : SL_EDB;
    }
    n++;
  }
  int failed = n < RECOMPRESS_ROWS && rc != SQLITE_DONE;
  sqlite3_reset(sel);
  if (failed) {
    for (int i = 0; i < n; i++) row_clear(&rows[i]);
    return SL_EDB;
  }
  return n;
}

int rawz_recompress(sqlite3 *db, rawz_enc *z, int64_t *rows_done, int64_t *before, int64_t *after,
                    char *err, size_t errlen) {
  sqlite3_stmt *sel = NULL, *upd = NULL;
  struct row *rows = calloc(RECOMPRESS_ROWS, sizeof *rows);
  int rc = 0;
  if (errlen) err[0] = 0;
  if (!rows) return SL_ENOMEM;
  if (sqlite3_prepare_v2(
          db,
          "SELECT id, " RAWZ_SQL("") ", length(CAST(raw AS BLOB)), " RAWZ_COLUMNS(
              "") " FROM SesEventMessages WHERE id > ?1 AND rawDict != ?2 ORDER BY id",
          -1, &sel, NULL) != SQLITE_OK ||
      sqlite3_prepare_v2(db, "UPDATE SesEventMessages SET raw = ?, rawDict = ? WHERE id = ?", -1,
                         &upd, NULL) != SQLITE_OK) {
    rc = SL_EDB;
    goto out;
  }
  int64_t last = INT64_MIN;
  for (;;) {
    int n = read_rows(sel, last, rawz_enc_id(z), rows);
    if (n <= 0) {
      rc = n;
      break;
    }
    int64_t b = 0, a = 0;
    if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) rc = SL_EDB;
    for (int i = 0; i < n && !rc; i++) {
      const void *p;
      size_t len;
      int64_t id;
      rawz_values v;
      for (int k = 0; k < RAWZ_NVALUES; k++) v.v[k] = rows[i].values[k];
      rc = rawz_compress(z, rows[i].text, rows[i].len, &v, &p, &len, &id);
      if (rc) break;
      if (id)
        sqlite3_bind_blob(upd, 1, p, (int)len, SQLITE_STATIC);
      else
        sqlite3_bind_text(upd, 1, rows[i].text, (int)rows[i].len, SQLITE_STATIC);
      sqlite3_bind_int64(upd, 2, id);
      sqlite3_bind_int64(upd, 3, rows[i].id);
      if (sqlite3_step(upd) != SQLITE_DONE) rc = SL_EDB;
      sqlite3_reset(upd);
      b += (int64_t)rows[i].stored;
      a += (int64_t)len;
    }
    if (!rc && sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) rc = SL_EDB;
    if (rc) {
      snprintf(err, errlen, "%s", sqlite3_errmsg(db));
      sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    } else {
      *rows_done += n;
      *before += b;
      *after += a;
    }
    last = rows[n - 1].id;
    for (int i = 0; i < n; i++) row_clear(&rows[i]);
    if (rc) break;
  }
out:
  if (rc == SL_EDB && !err[0]) snprintf(err, errlen, "%s", sqlite3_errmsg(db));
  sqlite3_finalize(sel);
  sqlite3_finalize(upd);
  free(rows);
  return rc;
}
