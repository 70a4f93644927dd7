/* subs.c - the in-memory table of SNS topics. */
#include "subs.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

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

static void load_row(void *ud, const struct store_subscription *row) {
  subs *s = ud;
  topic *t = find(s, row->topic_arn, 1);
  if (!t) return;
  t->state = static_state(row->state);
  free(t->subscription_arn);
  t->subscription_arn = util_strdup(row->subscription_arn);
  t->confirmed_at = row->confirmed_at;
  t->first_at = row->first_message_at;
  t->last_at = row->last_message_at;
  t->accepted = row->accepted;
}

int subs_load(subs *s, store *st) {
  return store_each_subscription(st, load_row, s);
}

int subs_load_db(subs *s, sqlite3 *db) {
  return store_db_each_subscription(db, load_row, s);
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
