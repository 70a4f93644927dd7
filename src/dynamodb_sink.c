/* dynamodb_sink.c - the DynamoDB sink of the outbox: rows become
 * BatchWriteItem requests of up to 25 items, several in flight, each
 * item's outcome a verdict for the outbox (written, retried, dead).
 *
 * Threads: payloads are built on the writer thread (dynamodb_item) and
 * kept in memory only (the outbox row's payload stays empty); a row read
 * back from the database gets its item made again from its event
 * (sink_rebuild, on the thread reading it). Deliveries run on the loop
 * thread through the client. */
#include <cjson/cJSON.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dynamodb_client.h"
#include "error.h"
#include "event_fields.h"
#include "log.h"
#include "rawz.h"
#include "util.h"

#define REQUEST_TIMEOUT_MS 10000
#define FAIL_LOG_EVERY_MS 60000 /* while failing, one log line a minute */
/* Fewer rows than one full request wait up to this long (from their
 * commit) for more: under load requests then carry 25 items instead of a
 * few, which costs seslog's loop and DynamoDB far less per item. */
#define LINGER_MS 50

static char *sink_payload(void *ud, const ses_event *e) {
  dynamodb *d = ud;
  return dynamodb_item(e, d->types, d->extra);
}

/* The outbox's rebuild (outbox.h): the item of event row event_id made
 * again as sink_payload made it: the original JSON parsed with the row's
 * timeStamp as the envelope's, plus the envelope's snsMessageId and
 * topicArn kept in the row. */
static int sink_rebuild(void *ud, sqlite3 *db, int64_t event_id, char **out) {
  dynamodb *d = ud;
  sqlite3_stmt *st;
  *out = NULL;
  static const char sql[] = "SELECT " RAWZ_SQL_ROW ", timeStamp, " EF_SQL_READ_SNS_MESSAGE_ID(
      "") ", " EF_SQL_READ_TOPIC_ARN("") " FROM SesEventMessages WHERE id = ?";
  if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) return SL_EDB;
  sqlite3_bind_int64(st, 1, event_id);
  int rc = sqlite3_step(st);
  if (rc != SQLITE_ROW) {
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? SL_EFIELD : SL_EDB;
  }
  const char *raw = (const char *)sqlite3_column_text(st, 0);
  int raw_len = sqlite3_column_bytes(st, 0);
  const char *ts = (const char *)sqlite3_column_text(st, 1);
  const char *sns = (const char *)sqlite3_column_text(st, 2);
  const char *topic = (const char *)sqlite3_column_text(st, 3);
  ses_event *e = NULL;
  rc = raw ? ses_parse(raw, (size_t)raw_len, ts, &e, NULL) : SL_EFIELD;
  if (!rc && ((sns && !(e->sns_message_id = util_strdup(sns))) ||
              (topic && !(e->topic_arn = util_strdup(topic)))))
    rc = SL_ENOMEM;
  if (!rc && !(*out = dynamodb_item(e, d->types, d->extra)))
    rc = SL_EFIELD; /* not replicated any more (the types changed) */
  if (rc && rc != SL_ENOMEM && rc != SL_EDB) rc = SL_EFIELD;
  ses_event_free(e);
  sqlite3_finalize(st);
  return rc;
}

/* ---- delivery (loop thread) ------------------------------------------- */

typedef struct delivery {
  dynamodb *d;
  outbox *box;
  int sink;
  outbox_item **items; /* the outbox's array: valid until outbox_delivered */
  size_t n;
  enum outbox_verdict *verdicts;
  char **keys;  /* "messageId\x01timeStamp" per item; NULL: unreadable */
  int pending;  /* requests not yet answered */
  int stopping; /* some rows wait for the next start */
  size_t n_retry, n_dead, n_unprocessed;
  char error[200]; /* the first failure, for the outbox */
} delivery;

/* One BatchWriteItem request: rows of the delivery. */
typedef struct chunk {
  delivery *dl;
  size_t rows[CHUNK]; /* indexes into dl->items */
  size_t n;
} chunk;

static void chunk_send(chunk *c);

/* "messageId\x01timeStamp" of a DynamoDB JSON item, malloc'ed, or NULL. */
static char *item_key(const cJSON *item) {
  const cJSON *m = cJSON_GetObjectItemCaseSensitive(item, "messageId");
  const cJSON *t = cJSON_GetObjectItemCaseSensitive(item, "timeStamp");
  m = cJSON_GetObjectItemCaseSensitive(m, "S");
  t = cJSON_GetObjectItemCaseSensitive(t, "S");
  if (!cJSON_IsString(m) || !cJSON_IsString(t)) return NULL;
  return dynamodb_dup_printf("%s\x01%s", m->valuestring, t->valuestring);
}

/* The key of an outbox row. Rows made by dynamodb_item start with
 * {"messageId":{"S":"..."},"timeStamp":{"S":"..."}: values without escapes
 * are read in place; anything else goes through cJSON. */
static char *payload_key(const char *p) {
  static const char a[] = "{\"messageId\":{\"S\":\"";
  static const char b[] = "\"},\"timeStamp\":{\"S\":\"";
  if (strncmp(p, a, sizeof a - 1) == 0) {
    const char *m = p + sizeof a - 1, *me = strpbrk(m, "\"\\");
    if (me && *me == '"' && strncmp(me, b, sizeof b - 1) == 0) {
      const char *t = me + sizeof b - 1, *te = strpbrk(t, "\"\\");
      if (te && *te == '"') {
        size_t mn = (size_t)(me - m), tn = (size_t)(te - t);
        char *k = malloc(mn + tn + 2);
        if (!k) return NULL;
        memcpy(k, m, mn);
        k[mn] = '\x01';
        memcpy(k + mn + 1, t, tn);
        k[mn + 1 + tn] = 0;
        return k;
      }
    }
  }
  cJSON *item = cJSON_Parse(p);
  char *k = item_key(item);
  cJSON_Delete(item);
  return k;
}

/* Keeps the first failure of a delivery. */
static void set_error(delivery *dl, const char *msg) {
  if (!dl->error[0]) snprintf(dl->error, sizeof dl->error, "%s", msg);
}

static void finish(delivery *dl) {
  dynamodb *d = dl->d;
  int64_t now = util_now_ms();
  if (dl->n_retry || dl->n_dead) {
    if (!d->failing || now - d->fail_logged_ms >= FAIL_LOG_EVERY_MS) {
      char counts[96];
      snprintf(counts, sizeof counts, "%zu retried, %zu dead, %zu unprocessed", dl->n_retry,
               dl->n_dead, dl->n_unprocessed);
      log_kv(LOG_WARN,
             d->failing ? "dynamodb: replication still failing"
                        : "dynamodb: replication failing; retrying with backoff",
             "error", dl->error, "rows", counts, NULL);
      d->fail_logged_ms = now;
    }
    d->failing = 1;
  } else if (d->failing && !dl->stopping) {
    log_kv(LOG_INFO, "dynamodb: replication recovered", NULL);
    d->failing = 0;
  }
  /* outbox_delivered may start the next delivery at once: let go first. */
  d->cur = NULL;
  outbox_item **items = dl->items;
  enum outbox_verdict *verdicts = dl->verdicts;
  char **keys = dl->keys;
  size_t n = dl->n;
  outbox *box = dl->box;
  int sink = dl->sink;
  char error[sizeof dl->error];
  memcpy(error, dl->error, sizeof error);
  int64_t retry_after = dl->stopping ? 1000 : 0;
  free(dl);
  outbox_delivered(box, sink, items, n, verdicts, retry_after, error[0] ? error : NULL);
  for (size_t i = 0; i < n; i++) free(keys[i]);
  free(keys);
  free(verdicts);
}

static void chunk_verdict(chunk *c, enum outbox_verdict v) {
  for (size_t i = 0; i < c->n; i++) c->dl->verdicts[c->rows[i]] = v;
  if (v == OUTBOX_RETRY) c->dl->n_retry += c->n;
  if (v == OUTBOX_DEAD) c->dl->n_dead += c->n;
}

/* A 200: rows in UnprocessedItems are retried, the others are written. */
static void chunk_written(chunk *c, const outbound_result *res) {
  delivery *dl = c->dl;
  dynamodb *d = dl->d;
  cJSON *j = cJSON_ParseWithLength(res->body, res->body_len);
  if (!cJSON_IsObject(j)) {
    cJSON_Delete(j);
    set_error(dl, "DynamoDB answered HTTP 200 with something that is not JSON");
    chunk_verdict(c, OUTBOX_RETRY);
    atomic_fetch_add(&c->dl->d->counters.requests[OUT_SERVER], 1);
    return;
  }
  atomic_fetch_add(&c->dl->d->counters.requests[OUT_OK], 1);
  for (size_t i = 0; i < c->n; i++) dl->verdicts[c->rows[i]] = OUTBOX_OK;
  const cJSON *un = cJSON_GetObjectItemCaseSensitive(
      cJSON_GetObjectItemCaseSensitive(j, "UnprocessedItems"), d->table);
  const cJSON *req;
  size_t left = 0;
  cJSON_ArrayForEach(req, un) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(req, "PutRequest"), "Item");
    char *key = item_key(item);
    if (!key) continue;
    for (size_t i = 0; i < c->n; i++) {
      size_t r = c->rows[i];
      if (dl->verdicts[r] == OUTBOX_OK && dl->keys[r] && strcmp(dl->keys[r], key) == 0) {
        dl->verdicts[r] = OUTBOX_RETRY;
        left++;
        break;
      }
    }
    free(key);
  }
  cJSON_Delete(j);
  if (left) {
    dl->n_retry += left;
    dl->n_unprocessed += left;
    atomic_fetch_add(&c->dl->d->counters.unprocessed, (long long)left);
    char msg[96];
    snprintf(msg, sizeof msg, "DynamoDB left %zu of %zu items unprocessed", left, c->n);
    set_error(dl, msg);
  }
}

static void on_chunk_answer(void *ud, const outbound_result *res) {
  chunk *c = ud;
  delivery *dl = c->dl;
  if (res->rc == SL_ESHUTDOWN) {
    chunk_verdict(c, OUTBOX_LATER);
    dl->stopping = 1;
  } else if (res->rc) {
    atomic_fetch_add(&c->dl->d->counters.requests[OUT_NETWORK], 1);
    char msg[200];
    snprintf(msg, sizeof msg, "DynamoDB could not be reached: %s",
             res->error ? res->error : sl_strerror(res->rc));
    set_error(dl, msg);
    chunk_verdict(c, OUTBOX_RETRY);
  } else if (res->status >= 200 && res->status < 300) {
    chunk_written(c, res);
  } else {
    char type[96], msg[160];
    dynamodb_read_error(res, type, sizeof type, msg, sizeof msg);
    int throttled = res->status == 429 || (res->status == 400 && dynamodb_is_throttling(type));
    char text[200];
    snprintf(text, sizeof text, "DynamoDB answered HTTP %ld%s%s%s%s", res->status,
             type[0] ? " " : "", type, msg[0] ? ": " : "", msg);
    set_error(dl, text);
    if (throttled || res->status >= 500 || res->status == 408) {
      atomic_fetch_add(&c->dl->d->counters.requests[throttled ? OUT_THROTTLED : OUT_SERVER], 1);
      chunk_verdict(c, OUTBOX_RETRY);
    } else {
      atomic_fetch_add(&c->dl->d->counters.requests[OUT_CLIENT], 1);
      if (c->n > 1 && (strcmp(type, "ValidationException") == 0 ||
                       strcmp(type, "SerializationException") == 0)) {
        /* One bad item refuses the whole request: send each alone, so only
         * the bad one is kept dead. */
        for (size_t i = 0; i < c->n; i++) {
          chunk *one = calloc(1, sizeof *one);
          if (!one) {
            dl->verdicts[c->rows[i]] = OUTBOX_RETRY;
            dl->n_retry++;
            continue;
          }
          one->dl = dl;
          one->rows[0] = c->rows[i];
          one->n = 1;
          dl->pending++;
          chunk_send(one);
        }
      } else {
        chunk_verdict(c, OUTBOX_DEAD);
      }
    }
  }
  free(c);
  if (--dl->pending == 0) finish(dl);
}

/* Sends one BatchWriteItem; its answer comes to on_chunk_answer. The
 * caller counted it in dl->pending; a request that cannot start is
 * answered at once (rows wait for a later delivery). */
static void chunk_send(chunk *c) {
  delivery *dl = c->dl;
  dynamodb *d = dl->d;
  buf b;
  buf_init(&b, (size_t)CHUNK * ITEM_MAX + 4096);
  buf_appends(&b, "{\"RequestItems\":{");
  buf_appends(&b, d->table_json);
  buf_appends(&b, ":[");
  for (size_t i = 0; i < c->n; i++) {
    buf_appends(&b, i ? ",{\"PutRequest\":{\"Item\":" : "{\"PutRequest\":{\"Item\":");
    buf_appends(&b, dl->items[c->rows[i]]->payload);
    buf_appends(&b, "}}");
  }
  int rc = buf_appends(&b, "]}}");
  if (!rc)
    rc = dynamodb_post(d, "BatchWriteItem", b.data, b.len, REQUEST_TIMEOUT_MS, on_chunk_answer, c);
  buf_free(&b);
  if (rc) {
    /* Not sent (stopping, or out of memory): answered like a request cut
     * by a stop, so the rows wait a second without counting an attempt. */
    outbound_result res = {.rc = SL_ESHUTDOWN, .body = ""};
    on_chunk_answer(c, &res);
  }
}

/* FNV-1a, for the key set of one delivery. */
static uint64_t hash_key(const char *s) {
  uint64_t h = 1469598103934665603ull;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return h;
}

/* Rows held back for LINGER_MS (see deliver). */
typedef struct hold {
  uv_timer_t timer;
  outbox *box;
  int sink;
  outbox_item **items;
  size_t n;
} hold;

static void on_hold_closed(uv_handle_t *h) {
  free(h->data);
}

/* The wait is over: the rows go back to the outbox, due, and come straight
 * back with whatever arrived meanwhile. */
static void on_hold_timer(uv_timer_t *t) {
  hold *h = t->data;
  enum outbox_verdict later[CHUNK];
  for (size_t i = 0; i < h->n; i++) later[i] = OUTBOX_LATER;
  outbox_delivered(h->box, h->sink, h->items, h->n, later, 0, NULL);
  uv_close((uv_handle_t *)&h->timer, on_hold_closed);
}

/* Holds a delivery of fewer than CHUNK young rows until the oldest is
 * LINGER_MS old. Returns 1 when it did (outbox_delivered comes later). */
static int linger(dynamodb *d, outbox *box, int sink, outbox_item **items, size_t n) {
  if (!d->loop || n >= CHUNK) return 0;
  int64_t oldest = INT64_MAX;
  for (size_t i = 0; i < n; i++)
    if (items[i]->created_at < oldest) oldest = items[i]->created_at;
  int64_t age = util_now_ms() - oldest;
  if (age >= LINGER_MS || age < 0) return 0;
  hold *h = calloc(1, sizeof *h);
  if (!h) return 0;
  *h = (hold){.box = box, .sink = sink, .items = items, .n = n};
  uv_timer_init(d->loop, &h->timer);
  h->timer.data = h;
  uv_timer_start(&h->timer, on_hold_timer, (uint64_t)(LINGER_MS - age), 0);
  return 1;
}

static void deliver(void *ud, outbox *box, int sink, outbox_item **items, size_t n) {
  dynamodb *d = ud;
  if (linger(d, box, sink, items, n)) return;
  delivery *dl = calloc(1, sizeof *dl);
  size_t cap = 64;
  while (cap < 2 * n) cap *= 2;
  const char **seen = calloc(cap, sizeof *seen);
  if (dl) {
    dl->verdicts = calloc(n, sizeof *dl->verdicts);
    dl->keys = calloc(n, sizeof *dl->keys);
  }
  if (!dl || !seen || !dl->verdicts || !dl->keys) {
    enum outbox_verdict later[1024]; /* n <= batch_max <= 1024 */
    for (size_t i = 0; i < n; i++) later[i] = OUTBOX_LATER;
    if (dl) {
      free(dl->verdicts);
      free(dl->keys);
    }
    free(dl);
    free(seen);
    outbox_delivered(box, sink, items, n, later, 1000, "out of memory");
    return;
  }
  dl->d = d;
  dl->box = box;
  dl->sink = sink;
  dl->items = items;
  dl->n = n;
  d->cur = dl;
  chunk *chunks[(1024 + CHUNK - 1) / CHUNK];
  size_t n_chunks = 0;
  dl->pending = 1; /* held until every request is out */
  for (size_t i = 0; i < n; i++) {
    dl->keys[i] = payload_key(items[i]->payload);
    if (!dl->keys[i]) {
      /* unreadable: can never be written */
      dl->verdicts[i] = OUTBOX_DEAD;
      dl->n_dead++;
      set_error(dl, "an outbox row is not a DynamoDB item");
      continue;
    }
    /* A key already in this delivery waits for the next one: DynamoDB
     * refuses a request naming a key twice, and parallel requests would
     * write in no particular order. */
    size_t h = (size_t)hash_key(dl->keys[i]) & (cap - 1);
    int dup = 0;
    while (seen[h] && !(dup = strcmp(seen[h], dl->keys[i]) == 0)) h = (h + 1) & (cap - 1);
    if (dup) {
      dl->verdicts[i] = OUTBOX_LATER;
      continue;
    }
    seen[h] = dl->keys[i];
    chunk *c = n_chunks ? chunks[n_chunks - 1] : NULL;
    if (!c || c->n == CHUNK) {
      c = calloc(1, sizeof *c);
      if (!c) {
        dl->verdicts[i] = OUTBOX_LATER;
        dl->stopping = 1;
        continue;
      }
      c->dl = dl;
      chunks[n_chunks++] = c;
    }
    c->rows[c->n++] = i;
  }
  free(seen);
  dl->pending += (int)n_chunks;
  for (size_t k = 0; k < n_chunks; k++) chunk_send(chunks[k]);
  if (--dl->pending == 0) finish(dl);
}

struct outbox_sink dynamodb_sink(dynamodb *d) {
  return (struct outbox_sink){.name = "dynamodb",
                              .batch_max = (size_t)d->parallel * CHUNK,
                              /* an outage of days loses nothing: backoff tops
                               * out at 15 minutes, so this is about 5 days */
                              .max_attempts = 500,
                              .max_age_ms = 14LL * 86400 * 1000,
                              .payload = sink_payload,
                              .rebuild = sink_rebuild,
                              .deliver = deliver,
                              .ud = d};
}

int dynamodb_add_sink(dynamodb *d, outbox *box) {
  struct outbox_sink sink = dynamodb_sink(d);
  int i = outbox_add_sink(box, &sink);
  if (i >= 0) {
    d->box = box;
    d->sink = i;
  }
  return i;
}
