/* router.c - dispatch by path and method; authentication of the API. */
#include "router.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "dynamodb.h"
#include "error.h"
#include "server.h"
#include "util.h"

static int is(const http_request *req, const char *method) {
  return strcmp(req->method, method) == 0;
}

static int starts(const char *s, const char *prefix) {
  return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* Bearer token check in constant time; 1 when allowed. */
static int token_ok(const struct router *r, const http_request *req) {
  if (!r->api_token) return 1;
  const char *h = http_header_get(req, "Authorization");
  if (!h || strncasecmp(h, "Bearer ", 7) != 0) return 0;
  const char *t = h + 7;
  while (*t == ' ') t++;
  return util_ct_equal(t, strlen(t), r->api_token, strlen(r->api_token));
}

/* serve --read-only: 1 when req would write (and has been answered so). */
static int refuse_write(struct router *r, http_request *req) {
  if (!r->read_only || is(req, "GET") || is(req, "HEAD")) return 0;
  if (is(req, "POST") && strcmp(req->path, "/api/suppression/check") == 0) return 0; /* a read */
  if (strcmp(req->path, "/sns") == 0) /* 503: SNS retries, nothing is lost */
    http_respond_error(req, 503, "read_only",
                       "This server runs with --read-only and stores nothing; send SNS to a "
                       "server without it.");
  else
    http_respond_error(req, 403, "read_only",
                       "This server runs with --read-only: it changes nothing in the database.");
  return 1;
}

static void healthz(struct router *r, http_request *req) {
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
static void outbox_json(const outbox *box, const dynamodb *ddb, buf *b) {
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
    if (strcmp(outbox_sink_name(box, i), "dynamodb") == 0)
      buf_printf(b, ",\"keyCollisions\":%lld", (long long)dynamodb_key_collisions(ddb));
    buf_appends(b, "}");
  }
  buf_appends(b, "}");
}

static void diagnostics(struct router *r, http_request *req) {
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
  outbox_json(r->metrics.box, r->ddb, &b);
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

static void subscriptions(struct router *r, http_request *req) {
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
static void sources(struct router *r, http_request *req) {
  buf b;
  buf_init(&b, 1 << 20);
  sqs_json(r->sqs, &b);
  http_respond_json(req, 200, b.data ? b.data : "{\"queues\":[]}");
  buf_free(&b);
}

static void serve_metrics(struct router *r, http_request *req) {
  buf b;
  buf_init(&b, 1 << 20);
  metrics_render(&r->metrics, &b);
  dynamodb_metrics(r->ddb, &b);
  dnsbl_metrics(r->dnsbl, &b);
  sesrep_metrics(r->sesrep, &b);
  sqs_metrics(r->sqs, &b);
  http_respond_buf(req, 200, "text/plain; version=0.0.4; charset=utf-8", NULL, &b);
  buf_free(&b);
}

/* Against DNS rebinding (hostcheck.h), on the main listener: a request
 * must name this server in Host (except /healthz and /sns, which the public
 * --sns-listen serves to anyone too), and a state-changing one must not come
 * from a page of another site. Answers and returns 0 when refused. */
static int from_this_site(struct router *r, http_request *req) {
  const char *p = req->path;
  if (req->listener_flags & LISTEN_SNS_ONLY) return 1;
  int open = strcmp(p, "/healthz") == 0 || strcmp(p, "/sns") == 0;
  if (!open && !hostcheck_host_ok(&r->hosts, http_header_get(req, "Host"))) {
    http_respond_error(req, 421, "unknown_host",
                       "The Host header does not name this server; give the name with "
                       "--allowed-host NAME.");
    return 0;
  }
  if (!is(req, "GET") && !is(req, "HEAD") && !is(req, "OPTIONS") &&
      !hostcheck_origin_ok(&r->hosts, http_header_get(req, "Origin"))) {
    http_respond_error(req, 403, "foreign_origin",
                       "A page of another site may not change anything here.");
    return 0;
  }
  return 1;
}

void router_handle(http_request *req, void *ud) {
  struct router *r = ud;
  const char *p = req->path;
  if (!from_this_site(r, req)) return;
  if (strcmp(p, "/sns") == 0) {
    if (!is(req, "POST")) {
      http_respond_error(req, 405, "method_not_allowed", "SNS posts to /sns with POST.");
      return;
    }
    if (refuse_write(r, req)) return;
    ingest_handle(r->in, req);
    return;
  }
  if (strcmp(p, "/healthz") == 0) {
    if (!is(req, "GET") && !is(req, "HEAD")) {
      http_respond_error(req, 405, "method_not_allowed", "Use GET.");
      return;
    }
    healthz(r, req);
    return;
  }
  if (req->listener_flags & LISTEN_SNS_ONLY) {
    http_respond_error(req, 404, "not_found",
                       "This listener serves only POST /sns and GET /healthz.");
    return;
  }
  if (starts(p, "/api/") || strcmp(p, "/metrics") == 0) {
    if (!token_ok(r, req)) {
      http_respond_error_ex(req, 401, "unauthorized",
                            "This endpoint needs the header Authorization: Bearer <--api-token>.",
                            "WWW-Authenticate: Bearer realm=\"seslog\"\r\n");
      return;
    }
    if (refuse_write(r, req)) return;
    if (r->sup && starts(p, "/api/suppression") && (p[16] == 0 || p[16] == '/')) {
      suppression_http(r->sup, req); /* GET, PUT, DELETE, POST .../check */
      return;
    }
    if (r->dnsbl && starts(p, "/api/dnsbl") && (p[10] == 0 || p[10] == '/')) {
      dnsbl_http(r->dnsbl, req); /* GET /api/dnsbl, POST /api/dnsbl/check */
      return;
    }
    if (!is(req, "GET") && !is(req, "HEAD")) {
      http_respond_error(req, 405, "method_not_allowed", "This endpoint answers GET.");
      return;
    }
    if (strcmp(p, "/metrics") == 0)
      serve_metrics(r, req);
    else if (strcmp(p, "/api/diagnostics") == 0)
      diagnostics(r, req);
    else if (strcmp(p, "/api/subscriptions") == 0)
      subscriptions(r, req);
    else if (strcmp(p, "/api/sources") == 0)
      sources(r, req);
    else if (!r->api || api_handle(r->api, req) != 0)
      http_respond_error(req, 404, "not_found", "There is no such API endpoint.");
    return;
  }
  if (is(req, "GET") || is(req, "HEAD")) {
    if (r->web && static_serve(r->web, req) == 0) return;
  } else if (r->web && static_exists(r->web, req->path)) {
    http_respond_error(req, 405, "method_not_allowed", "This path answers GET only.");
    return;
  }
  http_respond_error(req, 404, "not_found", "There is nothing at this path.");
}
