/* dynamodb.c - replication into DynamoDB: options, the key-collision
 * hook and /metrics. See dynamodb.h; dynamodb_client.h says which file
 * holds the rest.
 *
 * Threads: key collisions are counted (hook) on the writer thread; the
 * counters live in the instance and /metrics reads them on the loop
 * thread. */
#include "dynamodb.h"

#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dynamodb_client.h"
#include "error.h"
#include "log.h"

/* The SES types in the order of their bits. */
static const char *const type_names[] = {
    "Bounce", "Complaint", "Delivery",          "Send",          "Reject",
    "Open",   "Click",     "Rendering Failure", "DeliveryDelay", "Subscription"};
#define N_TYPES (sizeof type_names / sizeof type_names[0])
#define ALL_TYPES ((1u << N_TYPES) - 1)

static const char *const outcome_names[] = {"ok", "throttled", "server_error", "client_error",
                                            "network_error"};

/* ---- options ---------------------------------------------------------- */

int dynamodb_type_index(const char *t) {
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

/* ---- key collisions (writer thread) ----------------------------------- */

static int hook_on_event(void *ud, store *sto, const ses_event *e, int64_t event_id, int64_t now) {
  (void)now;
  dynamodb *d = ud;
  int t = dynamodb_type_index(e->notification_type);
  if (t < 0 || !(d->types & (1u << t))) return 0;
  /* messageId-timeStamp-Index answers this with one seek. */
  sqlite3_stmt *st = store_stmt(sto,
                                "SELECT notificationType FROM SesEventMessages "
                                "WHERE messageId = ? AND timeStamp = ? AND id <> ?");
  if (!st) return 0; /* a counter never stops a commit */
  sqlite3_bind_text(st, 1, e->message_id, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, e->time_stamp, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 3, event_id);
  int collides = 0;
  while (!collides && sqlite3_step(st) == SQLITE_ROW) {
    int other = dynamodb_type_index((const char *)sqlite3_column_text(st, 0));
    collides = other >= 0 && (d->types & (1u << other));
  }
  sqlite3_reset(st);
  if (collides) {
    int64_t total = atomic_load(&d->counters.key_collisions) + ++d->batch_collisions;
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
  if (ok && d->batch_collisions) atomic_fetch_add(&d->counters.key_collisions, d->batch_collisions);
  d->batch_collisions = 0;
}

struct store_hook dynamodb_hook(dynamodb *d) {
  return (struct store_hook){.on_event = hook_on_event, .after_commit = hook_after_commit, .ud = d};
}

int64_t dynamodb_key_collisions(const dynamodb *d) {
  return d ? atomic_load(&d->counters.key_collisions) : 0;
}

/* ---- /metrics --------------------------------------------------------- */

int dynamodb_metrics(void *ud, buf *b) {
  dynamodb *d = ud;
  if (!d) return 0;
  buf_printf(b,
             "# HELP seslog_dynamodb_key_collisions_total Replicated events that share messageId "
             "and timeStamp with an earlier one: in DynamoDB the later overwrote the earlier.\n"
             "# TYPE seslog_dynamodb_key_collisions_total counter\n"
             "seslog_dynamodb_key_collisions_total %lld\n",
             (long long)atomic_load(&d->counters.key_collisions));
  buf_appends(b,
              "# HELP seslog_dynamodb_requests_total BatchWriteItem requests, by outcome.\n"
              "# TYPE seslog_dynamodb_requests_total counter\n");
  for (int i = 0; i < OUT_N; i++)
    buf_printf(b, "seslog_dynamodb_requests_total{outcome=\"%s\"} %lld\n", outcome_names[i],
               (long long)atomic_load(&d->counters.requests[i]));
  buf_printf(b,
             "# HELP seslog_dynamodb_unprocessed_items_total Items DynamoDB returned in "
             "UnprocessedItems (retried).\n"
             "# TYPE seslog_dynamodb_unprocessed_items_total counter\n"
             "seslog_dynamodb_unprocessed_items_total %lld\n",
             (long long)atomic_load(&d->counters.unprocessed));
  if (d->box) {
    struct outbox_stats os;
    outbox_stats(d->box, d->sink, &os);
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
  return buf_failed(b);
}
