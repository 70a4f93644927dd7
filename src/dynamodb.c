/* dynamodb.c - the DynamoDB sink of the outbox, and Scan. See dynamodb.h.
 *
 * Threads: items are built (payload) and key collisions counted (hook) on
 * the writer thread; deliveries and scans run on the loop thread through
 * outbound (libcurl multi). The process-wide counters below are what
 * /metrics shows; there is one replication per process. */
#include "dynamodb.h"

#include <cjson/cJSON.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "error.h"
#include "log.h"

#define CHUNK 25        /* PutRequests in one BatchWriteItem: DynamoDB's limit */
#define MAX_PARALLEL 32 /* requests in flight at once, at most */
#define REQUEST_TIMEOUT_MS 10000
#define ANSWER_MAX (32u << 20) /* UnprocessedItems may echo every item */
#define ITEM_MAX (16u << 20)   /* DynamoDB refuses past 400 KB; the row is kept dead then */
#define SCAN_TIMEOUT_MS 30000
#define SCAN_ATTEMPTS 10
#define FAIL_LOG_EVERY_MS 60000 /* while failing, one log line a minute */
/* Fewer rows than one full request wait up to this long (from their
 * commit) for more: under load requests then carry 25 items instead of a
 * few, which costs seslog's loop and DynamoDB far less per item. */
#define LINGER_MS 50

/* The SES types in the order of their bits. */
static const char *const type_names[] = {
    "Bounce", "Complaint", "Delivery",          "Send",          "Reject",
    "Open",   "Click",     "Rendering Failure", "DeliveryDelay", "Subscription"};
#define N_TYPES (sizeof type_names / sizeof type_names[0])
#define ALL_TYPES ((1u << N_TYPES) - 1)

enum outcome { OUT_OK, OUT_THROTTLED, OUT_SERVER, OUT_CLIENT, OUT_NETWORK, OUT_N };
static const char *const outcome_names[] = {"ok", "throttled", "server_error", "client_error",
                                            "network_error"};

/* Process-wide counters for /metrics. */
static struct {
  atomic_int configured;       /* a sink was created */
  atomic_llong key_collisions; /* writer thread adds, loop reads */
  atomic_llong requests[OUT_N];
  atomic_llong unprocessed; /* items DynamoDB left unprocessed */
} counters;

struct delivery;

struct dynamodb {
  uv_loop_t *loop; /* for scan retries; may be NULL */
  outbound *ob;
  char *table;
  char *table_json; /* the table name as a JSON string literal */
  char *url;
  char *sigv4;        /* "aws:amz:REGION:dynamodb" */
  char *userpwd;      /* "KEY:SECRET": a secret, never logged */
  char *token_header; /* "x-amz-security-token: ...": a secret, or NULL */
  awscreds *creds;    /* where userpwd and token_header come from, or NULL */
  unsigned types;
  int extra;
  int parallel;
  /* writer thread: the hook */
  sqlite3_stmt *same_key;   /* other rows with the same key */
  sqlite3 *same_key_db;     /* the connection it was prepared on */
  int64_t batch_collisions; /* in the open transaction */
  /* loop thread */
  struct delivery *cur; /* the delivery in flight, or NULL */
  int failing;          /* the last delivery had failures */
  int64_t fail_logged_ms;
};

/* ---- options ---------------------------------------------------------- */

static int type_index(const char *t) {
  for (size_t i = 0; t && i < N_TYPES; i++)
    if (strcmp(type_names[i], t) == 0) return (int)i;
  return -1;
}

int dynamodb_env(struct dynamodb_opts *o, char *err, size_t errlen) {
  const char *region = getenv("AWS_REGION");
  if (!region || !*region) region = getenv("AWS_DEFAULT_REGION");
  const char *key = getenv("AWS_ACCESS_KEY_ID");
  const char *secret = getenv("AWS_SECRET_ACCESS_KEY");
  const char *token = getenv("AWS_SESSION_TOKEN");
  if (!region || !*region) {
    snprintf(err, errlen, "DynamoDB needs a region: set AWS_REGION (or AWS_DEFAULT_REGION)");
    return SL_EINVAL;
  }
  for (const char *p = region; *p; p++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-')) {
      snprintf(err, errlen, "AWS_REGION must look like us-east-1");
      return SL_EINVAL;
    }
  if (o->creds) {
    o->region = region; /* credentials come from the provider */
    return 0;
  }
  if (!key || !*key || !secret || !*secret) {
    snprintf(err, errlen,
             "DynamoDB needs credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
             "(and AWS_SESSION_TOKEN for temporary ones)");
    return SL_EINVAL;
  }
  if (strchr(key, ':')) {
    snprintf(err, errlen, "AWS_ACCESS_KEY_ID must not contain ':'");
    return SL_EINVAL;
  }
  for (const char *s = token; s && *s; s++)
    if (*s == '\r' || *s == '\n') {
      snprintf(err, errlen, "AWS_SESSION_TOKEN must be one line");
      return SL_EINVAL;
    }
  o->region = region;
  o->access_key_id = key;
  o->secret_access_key = secret;
  o->session_token = token && *token ? token : NULL;
  return 0;
}

int dynamodb_parse_types(const char *list, unsigned *types, char *err, size_t errlen) {
  unsigned out = 0;
  const char *s = list ? list : "";
  while (*s) {
    const char *comma = strchr(s, ',');
    size_t n = comma ? (size_t)(comma - s) : strlen(s);
    while (n && (*s == ' ' || *s == '\t')) s++, n--;
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t')) n--;
    if (n) {
      int found = -1;
      if (n == 3 && strncasecmp(s, "all", 3) == 0) {
        out |= ALL_TYPES;
        found = 0;
      }
      for (size_t i = 0; found < 0 && i < N_TYPES; i++)
        if (strlen(type_names[i]) == n && strncasecmp(type_names[i], s, n) == 0) {
          out |= 1u << i;
          found = (int)i;
        }
      if (found < 0) {
        snprintf(err, errlen,
                 "unknown type \"%.*s\"; expected a comma-separated list of Bounce, Complaint, "
                 "Delivery, Send, Reject, Open, Click, Rendering Failure, DeliveryDelay, "
                 "Subscription, or all",
                 (int)(n > 64 ? 64 : n), s);
        return SL_EINVAL;
      }
    }
    s = comma ? comma + 1 : s + strlen(s);
  }
  if (!out) {
    snprintf(err, errlen, "name at least one type, e.g. Bounce,Complaint");
    return SL_EINVAL;
  }
  *types = out;
  return 0;
}

void dynamodb_types_str(unsigned types, char *out, size_t n) {
  size_t used = 0;
  if (n) out[0] = 0;
  for (size_t i = 0; i < N_TYPES; i++) {
    if (!(types & (1u << i))) continue;
    int w = snprintf(out + used, n > used ? n - used : 0, "%s%s", used ? "," : "", type_names[i]);
    if (w < 0 || (size_t)w >= n - used) break;
    used += (size_t)w;
  }
}

static char *dup_printf(const char *fmt, const char *a, const char *b) {
  size_t n = strlen(fmt) + strlen(a) + (b ? strlen(b) : 0) + 1;
  char *s = malloc(n);
  if (s) snprintf(s, n, fmt, a, b ? b : "");
  return s;
}

int dynamodb_new(uv_loop_t *loop, outbound *ob, const struct dynamodb_opts *o, dynamodb **out,
                 char *err, size_t errlen) {
  if (!o->table || !*o->table || strlen(o->table) > 255) {
    snprintf(err, errlen, "the table name must have 1 to 255 characters");
    return SL_EINVAL;
  }
  if (!o->region || (!o->creds && (!o->access_key_id || !o->secret_access_key))) {
    snprintf(err, errlen, "DynamoDB needs a region and credentials");
    return SL_EINVAL;
  }
  if (o->endpoint && strncmp(o->endpoint, "http://", 7) && strncmp(o->endpoint, "https://", 8)) {
    snprintf(err, errlen, "the DynamoDB endpoint must be an http:// or https:// URL");
    return SL_EINVAL;
  }
  if (o->endpoint) {
    /* It is logged: it must hold no secret. */
    const char *host = strstr(o->endpoint, "://") + 3;
    size_t n = strcspn(host, "/?#");
    if (memchr(host, '@', n)) {
      snprintf(err, errlen,
               "the DynamoDB endpoint must not hold user:password@ (credentials come from the "
               "AWS variables)");
      return SL_EINVAL;
    }
  }
  dynamodb *d = calloc(1, sizeof *d);
  if (!d) return SL_ENOMEM;
  d->loop = loop;
  d->ob = ob;
  d->types = o->types ? o->types : DYNAMODB_TYPES_DEFAULT;
  d->extra = o->extra_attributes;
  d->parallel = o->parallel > 0 ? (o->parallel < MAX_PARALLEL ? o->parallel : MAX_PARALLEL) : 8;
  buf b;
  buf_init(&b, 1024);
  buf_json_string(&b, o->table);
  d->table_json = buf_take(&b);
  d->table = strdup(o->table);
  if (o->endpoint)
    d->url = strdup(o->endpoint);
  else
    d->url = dup_printf(strncmp(o->region, "cn-", 3) == 0 ? "https://dynamodb.%s.amazonaws.com.cn%s"
                                                          : "https://dynamodb.%s.amazonaws.com%s",
                        o->region, NULL);
  d->sigv4 = dup_printf("aws:amz:%s:dynamodb%s", o->region, NULL);
  d->creds = o->creds;
  if (!d->creds) d->userpwd = dup_printf("%s:%s", o->access_key_id, o->secret_access_key);
  if (!d->creds && o->session_token)
    d->token_header = dup_printf("x-amz-security-token: %s%s", o->session_token, NULL);
  if (!d->table_json || !d->table || !d->url || !d->sigv4 || (!d->creds && !d->userpwd) ||
      (!d->creds && o->session_token && !d->token_header)) {
    dynamodb_free(d);
    return SL_ENOMEM;
  }
  *out = d;
  return 0;
}

/* Overwrites a secret before freeing it. */
static void free_secret(char *s) {
  if (!s) return;
  volatile char *p = s;
  while (*p) *p++ = 0;
  free(s);
}

void dynamodb_free(dynamodb *d) {
  if (!d) return;
  sqlite3_finalize(d->same_key);
  free(d->table);
  free(d->table_json);
  free(d->url);
  free(d->sigv4);
  free_secret(d->userpwd);
  free_secret(d->token_header);
  free(d);
}

const char *dynamodb_endpoint(const dynamodb *d) {
  return d->url;
}

/* ---- items (writer thread) -------------------------------------------- */

/* "name":{"S":"value"} when value is present and not empty (DynamoDB
 * refuses empty strings in index keys; the Lambda left absent values
 * out). */
static void put_s(buf *w, const char *name, const char *value) {
  if (!value || !*value) return;
  if (w->len > 1) buf_append(w, ",", 1);
  buf_json_string(w, name);
  buf_appends(w, ":{\"S\":");
  buf_json_string(w, value);
  buf_append(w, "}", 1);
}

/* "name":{"SS":[...]}: a string set, so without repeats or empty
 * strings; nothing when no entry is left. */
static void put_ss(buf *w, const char *name, char *const *v, size_t n) {
  int any = 0;
  for (size_t i = 0; i < n; i++) {
    const char *r = v[i];
    if (!r || !*r) continue;
    int seen = 0;
    for (size_t j = 0; j < i && !seen; j++) seen = v[j] && strcmp(v[j], r) == 0;
    if (seen) continue;
    if (!any) {
      if (w->len > 1) buf_append(w, ",", 1);
      buf_json_string(w, name);
      buf_appends(w, ":{\"SS\":[");
    } else {
      buf_append(w, ",", 1);
    }
    any = 1;
    buf_json_string(w, r);
  }
  if (any) buf_append(w, "]}", 2);
}

/* The item of e (type index t) into w: the attributes the field table
 * gives an item of that type (as the Lambda wrote it), and with extra
 * seslog's own. */
static void put_item(buf *w, const ses_event *e, int t, int extra) {
  unsigned want = t == 0 ? EF_DDB_BOUNCE : t == 1 ? EF_DDB_COMPLAINT : EF_DDB_OTHER;
  if (extra) want |= EF_DDB_EXTRA;
  buf_append(w, "{", 1);
  for (int i = 0; i < SF_N; i++) {
    const struct ses_field *f = &ses_fields[i];
    if (!f->ddb || !(f->ddb_items & want)) continue;
    if (f->kind == EF_LIST) {
      size_t n;
      char *const *v = ses_field_list(e, i, &n);
      put_ss(w, f->ddb, v, n);
    } else {
      const char *v;
      char *none; /* a TEXT or JSON field needs no scratch */
      ses_field_text(e, i, &v, &none);
      put_s(w, f->ddb, v);
    }
  }
  buf_append(w, "}", 1);
}

char *dynamodb_item(const ses_event *e, unsigned types, int extra) {
  int t = type_index(e->notification_type);
  if (t < 0 || !(types & (1u << t)) || !e->message_id || !*e->message_id || !e->time_stamp ||
      !*e->time_stamp)
    return NULL;
  buf w;
  buf_init(&w, ITEM_MAX);
  put_item(&w, e, t, extra);
  if (buf_failed(&w)) {
    buf_free(&w);
    return NULL;
  }
  return buf_take(&w);
}

static char *sink_payload(void *ud, const ses_event *e) {
  dynamodb *d = ud;
  return dynamodb_item(e, d->types, d->extra);
}

/* ---- key collisions (writer thread) ----------------------------------- */

static int hook_on_event(void *ud, sqlite3 *db, const ses_event *e, int64_t event_id, int64_t now) {
  (void)now;
  dynamodb *d = ud;
  int t = type_index(e->notification_type);
  if (t < 0 || !(d->types & (1u << t))) return 0;
  if (!d->same_key || d->same_key_db != db) {
    sqlite3_finalize(d->same_key);
    d->same_key = NULL;
    /* messageId-timeStamp-Index answers this with one seek. */
    if (sqlite3_prepare_v3(db,
                           "SELECT notificationType FROM SesEventMessages "
                           "WHERE messageId = ? AND timeStamp = ? AND id <> ?",
                           -1, SQLITE_PREPARE_PERSISTENT, &d->same_key, NULL) != SQLITE_OK)
      return 0; /* a counter never stops a commit */
    d->same_key_db = db;
  }
  sqlite3_stmt *st = d->same_key;
  sqlite3_bind_text(st, 1, e->message_id, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, e->time_stamp, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 3, event_id);
  int collides = 0;
  while (!collides && sqlite3_step(st) == SQLITE_ROW) {
    int other = type_index((const char *)sqlite3_column_text(st, 0));
    collides = other >= 0 && (d->types & (1u << other));
  }
  sqlite3_reset(st);
  if (collides) {
    int64_t total = atomic_load(&counters.key_collisions) + ++d->batch_collisions;
    if (total <= 20 || total % 1000 == 0)
      log_kv(LOG_WARN,
             "dynamodb: two events share messageId and timeStamp; in DynamoDB the later "
             "overwrites the earlier (both stay in seslog's database)",
             "messageId", e->message_id, "timeStamp", e->time_stamp, "type", e->notification_type,
             NULL);
  }
  return 0;
}

static void hook_after_commit(void *ud, int ok) {
  dynamodb *d = ud;
  if (ok && d->batch_collisions) atomic_fetch_add(&counters.key_collisions, d->batch_collisions);
  d->batch_collisions = 0;
}

struct store_hook dynamodb_hook(dynamodb *d) {
  return (struct store_hook){.on_event = hook_on_event, .after_commit = hook_after_commit, .ud = d};
}

int64_t dynamodb_key_collisions(void) {
  return atomic_load(&counters.key_collisions);
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
  return dup_printf("%s\x01%s", m->valuestring, t->valuestring);
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

/* The part of a JSON error type after '#'. */
static const char *short_type(const char *t) {
  const char *h = t ? strrchr(t, '#') : NULL;
  return h ? h + 1 : t;
}

static int is_throttling(const char *type) {
  return type && (strcmp(type, "ThrottlingException") == 0 ||
                  strcmp(type, "ProvisionedThroughputExceededException") == 0 ||
                  strcmp(type, "RequestLimitExceeded") == 0);
}

/* Reads DynamoDB's error answer {"__type":"...#Name","message":"..."}. */
static void read_error(const outbound_result *res, char *type, size_t tn, char *msg, size_t mn) {
  type[0] = msg[0] = 0;
  cJSON *j = res->body_len ? cJSON_ParseWithLength(res->body, res->body_len) : NULL;
  const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "__type");
  const cJSON *m = cJSON_GetObjectItemCaseSensitive(j, "message");
  if (!cJSON_IsString(m)) m = cJSON_GetObjectItemCaseSensitive(j, "Message");
  if (cJSON_IsString(t)) snprintf(type, tn, "%s", short_type(t->valuestring));
  if (cJSON_IsString(m)) snprintf(msg, mn, "%s", m->valuestring);
  cJSON_Delete(j);
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
    atomic_fetch_add(&counters.requests[OUT_SERVER], 1);
    return;
  }
  atomic_fetch_add(&counters.requests[OUT_OK], 1);
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
    atomic_fetch_add(&counters.unprocessed, (long long)left);
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
    atomic_fetch_add(&counters.requests[OUT_NETWORK], 1);
    char msg[200];
    snprintf(msg, sizeof msg, "DynamoDB could not be reached: %s",
             res->error ? res->error : sl_strerror(res->rc));
    set_error(dl, msg);
    chunk_verdict(c, OUTBOX_RETRY);
  } else if (res->status >= 200 && res->status < 300) {
    chunk_written(c, res);
  } else {
    char type[96], msg[160];
    read_error(res, type, sizeof type, msg, sizeof msg);
    int throttled = res->status == 429 || (res->status == 400 && is_throttling(type));
    char text[200];
    snprintf(text, sizeof text, "DynamoDB answered HTTP %ld%s%s%s%s", res->status,
             type[0] ? " " : "", type, msg[0] ? ": " : "", msg);
    set_error(dl, text);
    if (throttled || res->status >= 500 || res->status == 408) {
      atomic_fetch_add(&counters.requests[throttled ? OUT_THROTTLED : OUT_SERVER], 1);
      chunk_verdict(c, OUTBOX_RETRY);
    } else {
      atomic_fetch_add(&counters.requests[OUT_CLIENT], 1);
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
/* The credentials for the request about to start: the provider's, or the
 * static keys. Returns 0 or SL_EBUSY while the provider has none. */
static int credentials(dynamodb *d, const char **userpwd, const char **token_header) {
  if (d->creds) return awscreds_current(d->creds, userpwd, token_header);
  *userpwd = d->userpwd;
  *token_header = d->token_header;
  return 0;
}

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
  const char *userpwd = NULL, *token = NULL;
  if (!rc) rc = credentials(d, &userpwd, &token);
  const char *headers[] = {"Content-Type: application/x-amz-json-1.0",
                           "X-Amz-Target: DynamoDB_20120810.BatchWriteItem", token, NULL};
  struct outbound_req req = {.method = "POST",
                             .url = d->url,
                             .headers = headers,
                             .body = b.data,
                             .body_len = b.len,
                             .timeout_ms = REQUEST_TIMEOUT_MS,
                             .max_body = ANSWER_MAX,
                             .aws_sigv4 = d->sigv4,
                             .userpwd = userpwd};
  if (!rc) rc = outbound_request(d->ob, &req, on_chunk_answer, c);
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
  atomic_store(&counters.configured, 1);
  return (struct outbox_sink){.name = "dynamodb",
                              .batch_max = (size_t)d->parallel * CHUNK,
                              /* an outage of days loses nothing: backoff tops
                               * out at 15 minutes, so this is about 5 days */
                              .max_attempts = 500,
                              .max_age_ms = 14LL * 86400 * 1000,
                              .payload = sink_payload,
                              .deliver = deliver,
                              .ud = d};
}

/* ---- /metrics --------------------------------------------------------- */

void dynamodb_metrics(const outbox *box, buf *b) {
  if (!atomic_load(&counters.configured)) return;
  buf_printf(b,
             "# HELP seslog_dynamodb_key_collisions_total Replicated events that share messageId "
             "and timeStamp with an earlier one: in DynamoDB the later overwrote the earlier.\n"
             "# TYPE seslog_dynamodb_key_collisions_total counter\n"
             "seslog_dynamodb_key_collisions_total %lld\n",
             (long long)atomic_load(&counters.key_collisions));
  buf_appends(b,
              "# HELP seslog_dynamodb_requests_total BatchWriteItem requests, by outcome.\n"
              "# TYPE seslog_dynamodb_requests_total counter\n");
  for (int i = 0; i < OUT_N; i++)
    buf_printf(b, "seslog_dynamodb_requests_total{outcome=\"%s\"} %lld\n", outcome_names[i],
               (long long)atomic_load(&counters.requests[i]));
  buf_printf(b,
             "# HELP seslog_dynamodb_unprocessed_items_total Items DynamoDB returned in "
             "UnprocessedItems (retried).\n"
             "# TYPE seslog_dynamodb_unprocessed_items_total counter\n"
             "seslog_dynamodb_unprocessed_items_total %lld\n",
             (long long)atomic_load(&counters.unprocessed));
  for (int i = 0; box && i < outbox_sink_count(box); i++) {
    if (strcmp(outbox_sink_name(box, i), "dynamodb") != 0) continue;
    struct outbox_stats os;
    outbox_stats(box, i, &os);
    buf_printf(b,
               "# HELP seslog_dynamodb_last_success_timestamp_seconds When an item was last "
               "written (0: not since start).\n"
               "# TYPE seslog_dynamodb_last_success_timestamp_seconds gauge\n"
               "seslog_dynamodb_last_success_timestamp_seconds %.3f\n"
               "# HELP seslog_dynamodb_last_error_timestamp_seconds When a write last failed (0: "
               "not since start).\n"
               "# TYPE seslog_dynamodb_last_error_timestamp_seconds gauge\n"
               "seslog_dynamodb_last_error_timestamp_seconds %.3f\n",
               (double)os.last_success_ms / 1000, (double)os.last_error_ms / 1000);
  }
}

/* ---- Scan ------------------------------------------------------------- */

typedef struct scan_req {
  dynamodb *d;
  char *body;
  size_t body_len;
  dynamodb_page_cb cb;
  void *ud;
  int attempts;
  uv_timer_t timer;
  int timer_open;
} scan_req;

static void scan_free(scan_req *s) {
  free(s->body);
  free(s);
}

static void on_scan_timer_closed(uv_handle_t *h) {
  scan_free(h->data);
}

static void scan_done(scan_req *s) {
  if (s->timer_open)
    uv_close((uv_handle_t *)&s->timer, on_scan_timer_closed);
  else
    scan_free(s);
}

static int scan_start(scan_req *s);

static void on_scan_timer(uv_timer_t *t) {
  scan_req *s = t->data;
  int rc = scan_start(s);
  if (rc) {
    struct dynamodb_page page = {.rc = rc, .error = "the request could not be started"};
    s->cb(s->ud, &page);
    scan_done(s);
  }
}

static void on_scan_answer(void *ud, const outbound_result *res) {
  scan_req *s = ud;
  char error[320];
  int retry = 0;
  if (res->rc) {
    snprintf(error, sizeof error, "DynamoDB could not be reached: %s",
             res->error ? res->error : sl_strerror(res->rc));
    retry = res->rc != SL_ESHUTDOWN;
  } else if (res->status == 200) {
    cJSON *j = cJSON_ParseWithLength(res->body, res->body_len);
    const cJSON *items = cJSON_GetObjectItemCaseSensitive(j, "Items");
    const cJSON *last = cJSON_GetObjectItemCaseSensitive(j, "LastEvaluatedKey");
    if (cJSON_IsArray(items)) {
      struct dynamodb_page page = {
          .rc = 0, .items = items, .last_key = cJSON_IsObject(last) ? last : NULL};
      s->cb(s->ud, &page);
      cJSON_Delete(j);
      scan_done(s);
      return;
    }
    cJSON_Delete(j);
    snprintf(error, sizeof error, "DynamoDB answered a Scan without Items");
  } else {
    char type[96], msg[160];
    read_error(res, type, sizeof type, msg, sizeof msg);
    snprintf(error, sizeof error, "DynamoDB answered HTTP %ld%s%s%s%s", res->status,
             type[0] ? " " : "", type, msg[0] ? ": " : "", msg);
    retry = res->status >= 500 || res->status == 429 || res->status == 408 ||
            (res->status == 400 && is_throttling(type));
  }
  if (retry && s->d->loop && s->attempts < SCAN_ATTEMPTS) {
    int64_t ms = 100;
    for (int i = 0; i < s->attempts && ms < 10000; i++) ms *= 2;
    if (ms > 10000) ms = 10000;
    ms = ms / 2 + random() % (ms / 2 + 1); /* jitter */
    if (!s->timer_open) {
      uv_timer_init(s->d->loop, &s->timer);
      s->timer.data = s;
      s->timer_open = 1;
    }
    log_kv(LOG_INFO, "dynamodb: Scan failed; retrying", "error", error, NULL);
    uv_timer_start(&s->timer, on_scan_timer, (uint64_t)ms, 0);
    return;
  }
  struct dynamodb_page page = {.rc = SL_EIO, .error = error};
  s->cb(s->ud, &page);
  scan_done(s);
}

static int scan_start(scan_req *s) {
  dynamodb *d = s->d;
  s->attempts++;
  const char *userpwd, *token;
  int rc = credentials(d, &userpwd, &token);
  if (rc) return rc;
  const char *headers[] = {"Content-Type: application/x-amz-json-1.0",
                           "X-Amz-Target: DynamoDB_20120810.Scan", token, NULL};
  struct outbound_req req = {.method = "POST",
                             .url = d->url,
                             .headers = headers,
                             .body = s->body,
                             .body_len = s->body_len,
                             .timeout_ms = SCAN_TIMEOUT_MS,
                             .max_body = ANSWER_MAX,
                             .aws_sigv4 = d->sigv4,
                             .userpwd = userpwd};
  return outbound_request(d->ob, &req, on_scan_answer, s);
}

int dynamodb_scan(dynamodb *d, int segment, int total, const cJSON *start_key, dynamodb_page_cb cb,
                  void *ud) {
  if (total < 1 || segment < 0 || segment >= total) return SL_EINVAL;
  scan_req *s = calloc(1, sizeof *s);
  if (!s) return SL_ENOMEM;
  s->d = d;
  s->cb = cb;
  s->ud = ud;
  buf b;
  buf_init(&b, 1 << 20);
  buf_appends(&b, "{\"TableName\":");
  buf_appends(&b, d->table_json);
  if (total > 1) buf_printf(&b, ",\"Segment\":%d,\"TotalSegments\":%d", segment, total);
  int rc = 0;
  if (start_key) {
    char *k = cJSON_PrintUnformatted(start_key);
    if (!k)
      rc = SL_ENOMEM;
    else {
      buf_appends(&b, ",\"ExclusiveStartKey\":");
      buf_appends(&b, k);
      free(k);
    }
  }
  if (!rc) rc = buf_appends(&b, "}");
  s->body_len = b.len;
  s->body = buf_take(&b);
  if (!rc && !s->body) rc = SL_ENOMEM;
  if (!rc) rc = scan_start(s);
  if (rc) {
    scan_free(s);
    return rc;
  }
  return 0;
}
