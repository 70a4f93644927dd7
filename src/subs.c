/* subs.c - the SNS topics seen: the in-memory table the API reads, and
 * the subscriptions table, written by the store hook in each batch's
 * transaction and read back at start. */
#include "subs.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "util.h"

typedef struct topic {
  char *arn;
  const char *state; /* static text */
  char *subscription_arn;
  int64_t confirmed_at, first_at, last_at;
  int64_t accepted, rejected;
} topic;

struct subs {
  topic *t;
  int n, max;
};

int subs_new(int max, subs **out) {
  subs *s = calloc(1, sizeof *s);
  if (!s || !(s->t = calloc((size_t)max, sizeof *s->t))) {
    free(s);
    return SL_ENOMEM;
  }
  s->max = max;
  *out = s;
  return 0;
}

void subs_free(subs *s) {
  if (!s) return;
  for (int i = 0; i < s->n; i++) {
    free(s->t[i].arn);
    free(s->t[i].subscription_arn);
  }
  free(s->t);
  free(s);
}

static const char *static_state(const char *state) {
  static const char *const states[] = {"pending", "confirmed", "unsubscribed"};
  for (int i = 0; i < 3; i++)
    if (state && strcmp(state, states[i]) == 0) return states[i];
  return "confirmed";
}

static topic *find(subs *s, const char *arn, int create) {
  if (!arn) return NULL;
  for (int i = 0; i < s->n; i++)
    if (strcmp(s->t[i].arn, arn) == 0) return &s->t[i];
  if (!create || s->n == s->max) return NULL;
  topic *t = &s->t[s->n];
  memset(t, 0, sizeof *t);
  if (!(t->arn = strdup(arn))) return NULL;
  t->state = "confirmed";
  s->n++;
  return t;
}

static const char load_sql[] =
    "SELECT topicArn, state, subscriptionArn, coalesce(confirmedAt, 0), "
    "coalesce(firstMessageAt, 0), coalesce(lastMessageAt, 0), accepted "
    "FROM subscriptions ORDER BY topicArn";

/* Steps st (load_sql) into the table. Returns 0 or SL_EDB. */
static int load_rows(subs *s, sqlite3_stmt *st) {
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    const char *arn = (const char *)sqlite3_column_text(st, 0);
    const char *state = (const char *)sqlite3_column_text(st, 1);
    topic *t = arn && state ? find(s, arn, 1) : NULL;
    if (!t) continue;
    t->state = static_state(state);
    free(t->subscription_arn);
    t->subscription_arn = util_strdup((const char *)sqlite3_column_text(st, 2));
    t->confirmed_at = sqlite3_column_int64(st, 3);
    t->first_at = sqlite3_column_int64(st, 4);
    t->last_at = sqlite3_column_int64(st, 5);
    t->accepted = sqlite3_column_int64(st, 6);
  }
  return rc == SQLITE_DONE ? 0 : SL_EDB;
}

int subs_load(subs *s, store *st) {
  sqlite3_stmt *q = store_stmt(st, load_sql);
  if (!q) return SL_EDB;
  int rc = load_rows(s, q);
  sqlite3_reset(q);
  return rc;
}

int subs_load_db(subs *s, sqlite3 *db) {
  sqlite3_stmt *q;
  if (sqlite3_prepare_v2(db, load_sql, -1, &q, NULL) != SQLITE_OK) return SL_EDB;
  int rc = load_rows(s, q);
  sqlite3_finalize(q);
  return rc;
}

/* ---- the store hook: the subscriptions table (writer thread) ---------- */

/* A message from a topic proves its subscription is confirmed, whatever
 * was recorded before (e.g. resubscribed after an unsubscribe). */
static const char touch_sql[] =
    "INSERT INTO subscriptions (topicArn, state, firstMessageAt, lastMessageAt, "
    "accepted) VALUES (?1, 'confirmed', ?2, ?3, ?4) ON CONFLICT(topicArn) DO "
    "UPDATE SET state='confirmed', firstMessageAt=coalesce(firstMessageAt, "
    "excluded.firstMessageAt), lastMessageAt=max(coalesce(lastMessageAt, 0), "
    "excluded.lastMessageAt), accepted=accepted+excluded.accepted";

static const char set_state_sql[] =
    "INSERT INTO subscriptions (topicArn, state, subscriptionArn, confirmedAt) "
    "VALUES (?1, ?2, ?3, CASE WHEN ?2 = 'confirmed' THEN ?4 END) "
    "ON CONFLICT(topicArn) DO UPDATE SET state=excluded.state, "
    "subscriptionArn=coalesce(excluded.subscriptionArn, subscriptionArn), "
    "confirmedAt=coalesce(excluded.confirmedAt, confirmedAt)";

static void bind_text(sqlite3_stmt *st, int i, const char *v) {
  if (v)
    sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
  else
    sqlite3_bind_null(st, i);
}

/* Steps a statement of the store to its end and resets it. Returns 0 or
 * SL_EDB. */
static int step_reset(sqlite3_stmt *st) {
  int rc = sqlite3_step(st);
  sqlite3_reset(st);
  return rc == SQLITE_DONE ? 0 : SL_EDB;
}

/* The topic a request speaks of, or NULL. */
static const char *req_topic(const store_req *r) {
  return r->ev && r->ev->topic_arn ? r->ev->topic_arn : r->topic_arn;
}

/* The explicit state changes of a batch, in order. */
static int write_states(store *st, store_req **reqs, size_t n, int64_t now) {
  for (size_t i = 0; i < n; i++) {
    store_req *r = reqs[i];
    if (!r->sub_state || !req_topic(r)) continue;
    sqlite3_stmt *q = store_stmt(st, set_state_sql);
    if (!q) return SL_EDB;
    bind_text(q, 1, req_topic(r));
    bind_text(q, 2, r->sub_state);
    bind_text(q, 3, r->sub_arn);
    sqlite3_bind_int64(q, 4, r->at_ms ? r->at_ms : now);
    if (step_reset(q)) return SL_EDB;
  }
  return 0;
}

/* Messages per topic, gathered over the batch (batches hold few topics),
 * then one row update per topic. */
struct topic_count {
  const char *topic;
  int64_t count, first, last;
};

static int write_counts(store *st, const struct topic_count *topics, size_t nt) {
  for (size_t x = 0; x < nt; x++) {
    sqlite3_stmt *q = store_stmt(st, touch_sql);
    if (!q) return SL_EDB;
    bind_text(q, 1, topics[x].topic);
    sqlite3_bind_int64(q, 2, topics[x].first);
    sqlite3_bind_int64(q, 3, topics[x].last);
    sqlite3_bind_int64(q, 4, topics[x].count);
    if (step_reset(q)) return SL_EDB;
  }
  return 0;
}

/* The hook's on_batch: explicit state changes in order, then one row
 * update per topic for the messages it sent. */
static int on_batch(void *ud, store *st, store_req **reqs, size_t n, int64_t now) {
  (void)ud;
  if (write_states(st, reqs, n, now)) return SL_EDB;
  struct topic_count topics[16];
  size_t nt = 0;
  for (size_t i = 0; i < n; i++) {
    store_req *r = reqs[i];
    const char *t = req_topic(r);
    if (!t || !r->counts_as_message || r->result != STORE_STORED) continue;
    size_t k = 0;
    while (k < nt && strcmp(topics[k].topic, t) != 0) k++;
    if (k == nt && nt == sizeof topics / sizeof topics[0]) {
      /* the table is full: write what was gathered */
      if (write_counts(st, topics, nt)) return SL_EDB;
      nt = k = 0;
    }
    int64_t at = r->at_ms ? r->at_ms : now;
    if (k == nt) topics[nt++] = (struct topic_count){t, 0, at, at};
    topics[k].count++;
    if (at < topics[k].first) topics[k].first = at;
    if (at > topics[k].last) topics[k].last = at;
  }
  return write_counts(st, topics, nt);
}

struct store_hook subs_hook(subs *s) {
  return (struct store_hook){.on_batch = on_batch, .ud = s};
}

void subs_note_accepted(subs *s, const char *arn, int64_t at_ms) {
  topic *t = find(s, arn, 1);
  if (!t) return;
  t->accepted++;
  t->state = "confirmed";
  if (!t->first_at || at_ms < t->first_at) t->first_at = at_ms;
  if (at_ms > t->last_at) t->last_at = at_ms;
}

void subs_note_rejected(subs *s, const char *arn) {
  topic *t = find(s, arn, 0);
  if (t) t->rejected++;
}

void subs_set_state(subs *s, const char *arn, const char *state, const char *sub_arn,
                    int64_t at_ms) {
  topic *t = find(s, arn, 1);
  if (!t) return;
  t->state = static_state(state);
  if (sub_arn) {
    free(t->subscription_arn);
    t->subscription_arn = strdup(sub_arn);
  }
  if (strcmp(t->state, "confirmed") == 0) t->confirmed_at = at_ms;
}

void subs_each(const subs *s,
               void (*fn)(void *ud, const char *topic, const char *state, int64_t last_ms),
               void *ud) {
  for (int i = 0; i < s->n; i++) fn(ud, s->t[i].arn, s->t[i].state, s->t[i].last_at);
}

static void put_time(buf *b, const char *key, int64_t ms) {
  buf_printf(b, ",\"%s\":", key);
  buf_json_time(b, ms);
}

int subs_json(const subs *s, buf *b) {
  buf_appends(b, "{\"items\":[");
  for (int i = 0; i < s->n; i++) {
    const topic *t = &s->t[i];
    buf_appends(b, i ? ",{\"topicArn\":" : "{\"topicArn\":");
    buf_json_string(b, t->arn);
    buf_appends(b, ",\"state\":");
    buf_json_string(b, t->state);
    buf_appends(b, ",\"subscriptionArn\":");
    if (t->subscription_arn)
      buf_json_string(b, t->subscription_arn);
    else
      buf_appends(b, "null");
    put_time(b, "confirmedAt", t->confirmed_at);
    put_time(b, "firstMessageAt", t->first_at);
    put_time(b, "lastMessageAt", t->last_at);
    buf_printf(b, ",\"accepted\":%lld,\"rejected\":%lld}", (long long)t->accepted,
               (long long)t->rejected);
  }
  return buf_appends(b, "]}");
}
