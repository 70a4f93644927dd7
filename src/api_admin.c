/* api_admin.c - the server's own endpoints: health, diagnostics, the SNS
 * subscriptions, the SQS sources and /metrics. Answered on the loop from
 * what the modules hold in memory. */
#include "api_admin.h"

#include <stdio.h>
#include <string.h>

#include "router.h"
#include "util.h"

void api_admin_healthz(void *ctx, http_request *req, const char *tail) {
  struct router *r = ctx;
  (void)tail;
  char why[256];
  if (r->st && store_health(r->st, why, sizeof why)) { /* no store: --read-only */
    buf b;
    buf_init(&b, 1024);
    buf_appends(&b, "{\"status\":\"error\",\"reason\":");
    buf_json_string(&b, why);
    buf_appends(&b, "}");
    http_respond_buf(req, 503, "application/json", NULL, &b);
    buf_free(&b);
    return;
  }
  http_respond_json(req, 200, "{\"status\":\"ok\"}");
}

/* "outbox":{SINK:{pending, dead, delivered, lastSuccessAt, lastErrorAt,
 * lastError}...}: the state of Slack alerts and DynamoDB replication. */
static void outbox_json(const struct router *r, const outbox *box, buf *b) {
  buf_appends(b, "\"outbox\":{");
  for (int i = 0; box && i < outbox_sink_count(box); i++) {
    struct outbox_stats os;
    outbox_stats(box, i, &os);
    char ok[25], bad[25];
    util_format_iso8601(os.last_success_ms, ok);
    util_format_iso8601(os.last_error_ms, bad);
    buf_printf(b, "%s", i ? "," : "");
    buf_json_string(b, outbox_sink_name(box, i));
    buf_printf(b, ":{\"pending\":%lld,\"dead\":%lld,\"delivered\":%lld,\"lastSuccessAt\":",
               (long long)os.pending, (long long)os.dead, (long long)os.delivered);
    if (os.last_success_ms)
      buf_printf(b, "\"%s\"", ok);
    else
      buf_appends(b, "null");
    buf_appends(b, ",\"lastErrorAt\":");
    if (os.last_error_ms)
      buf_printf(b, "\"%s\"", bad);
    else
      buf_appends(b, "null");
    buf_appends(b, ",\"lastError\":");
    if (os.last_error[0])
      buf_json_string(b, os.last_error);
    else
      buf_appends(b, "null");
    for (int k = 0; k < r->n_sink_fields; k++)
      if (strcmp(outbox_sink_name(box, i), r->sink_fields[k].sink) == 0)
        r->sink_fields[k].fn(r->sink_fields[k].ud, b);
    buf_appends(b, "}");
  }
  buf_appends(b, "}");
}

void api_admin_diagnostics(void *ctx, http_request *req, const char *tail) {
  struct router *r = ctx;
  (void)tail;
  struct ingest_rejection recent[100];
  size_t n = ingest_recent_rejections(r->in, recent, 100);
  const uint64_t *counts = ingest_rejected_counts(r->in);
  buf b;
  buf_init(&b, 1 << 20);
  buf_appends(&b, "{\"rejectedByReason\":{");
  for (int i = 0; i < REJ_N; i++)
    buf_printf(&b, "%s\"%s\":%llu", i ? "," : "", ingest_reason_name((enum ingest_reason)i),
               (unsigned long long)counts[i]);
  buf_printf(&b, "},\"writeQueue\":%d,", r->st ? store_queue_depth(r->st) : 0);
  outbox_json(r, r->metrics.box, &b);
  buf_appends(&b, ",\"sesReputation\":");
  sesrep_diagnostics_json(r->sesrep, &b);
  sqs_diagnostics_json(r->sqs, &b);
  buf_appends(&b, ",\"recentRejections\":[");
  for (size_t i = 0; i < n; i++) {
    char at[25];
    util_format_iso8601(recent[i].at_ms, at);
    buf_printf(&b, "%s{\"at\":\"%s\",\"reason\":\"%s\",\"detail\":", i ? "," : "", at,
               ingest_reason_name(recent[i].reason));
    buf_json_string(&b, recent[i].detail);
    buf_appends(&b, ",\"remote\":");
    buf_json_string(&b, recent[i].remote);
    buf_appends(&b, ",\"topicArn\":");
    buf_json_string(&b, recent[i].topic_arn);
    buf_appends(&b, ",\"snsMessageId\":");
    buf_json_string(&b, recent[i].message_id);
    buf_appends(&b, "}");
  }
  buf_appends(&b, "]}");
  http_respond_buf(req, 200, "application/json", NULL, &b);
  buf_free(&b);
}

void api_admin_subscriptions(void *ctx, http_request *req, const char *tail) {
  struct router *r = ctx;
  (void)tail;
  buf b;
  buf_init(&b, 4 << 20);
  if (subs_json(r->sb, &b)) {
    buf_free(&b);
    http_respond_error(req, 500, "internal", "The subscription list is too large to answer.");
    return;
  }
  http_respond_json(req, 200, b.data);
  buf_free(&b);
}

/* GET /api/sources: the SQS queues (topics are /api/subscriptions). */
void api_admin_sources(void *ctx, http_request *req, const char *tail) {
  struct router *r = ctx;
  (void)tail;
  buf b;
  buf_init(&b, 1 << 20);
  sqs_json(r->sqs, &b);
  http_respond_json(req, 200, b.data ? b.data : "{\"queues\":[]}");
  buf_free(&b);
}

/* The core series, then each module's source (metrics_add_source). */
void api_admin_metrics(void *ctx, http_request *req, const char *tail) {
  struct router *r = ctx;
  (void)tail;
  buf b;
  buf_init(&b, 1 << 20);
  if (metrics_render(&r->metrics, &b)) {
    buf_free(&b);
    http_respond_error(req, 500, "internal", "The metrics are too large to answer.");
    return;
  }
  http_respond_buf(req, 200, "text/plain; version=0.0.4; charset=utf-8", NULL, &b);
  buf_free(&b);
}
