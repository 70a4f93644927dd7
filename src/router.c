/* router.c - the route table, and the checks every request passes before
 * its handler: Host and Origin, the API token, serve --read-only. */
#include "router.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "api_admin.h"
#include "api_dnsbl.h"
#include "error.h"
#include "server.h"
#include "util.h"

#define ONLY_GET "This endpoint answers GET."

static int starts(const char *s, const char *prefix) {
  return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* POST /sns: ud is the ingest. */
static void sns_route(void *ud, http_request *req, const char *tail) {
  (void)tail;
  ingest_handle(ud, req);
}

static void add(struct router *r, const struct route *rt) {
  if (r->n_routes < ROUTER_MAX_ROUTES) r->routes[r->n_routes++] = *rt;
}

/* The endpoints of the modules r has; the first pattern that matches a
 * path owns it (an exact path before the pattern with '*' below it). */
void router_init(struct router *r) {
  const unsigned T = ROUTE_TOKEN, P = ROUTE_PUBLIC;
  r->n_routes = 0;
  add(r, &(struct route){"POST", "/sns", sns_route, r->in, P, ROUTE_WRITER,
                         "SNS posts to /sns with POST."});
  add(r, &(struct route){"GET", "/healthz", api_admin_healthz, r, P, ROUTE_LOOP, "Use GET."});
  add(r, &(struct route){"GET", "/metrics", api_admin_metrics, r, T, ROUTE_LOOP, ONLY_GET});
  add(r, &(struct route){"GET", "/api/diagnostics", api_admin_diagnostics, r, T, ROUTE_LOOP,
                         ONLY_GET});
  add(r, &(struct route){"GET", "/api/subscriptions", api_admin_subscriptions, r, T, ROUTE_LOOP,
                         ONLY_GET});
  add(r, &(struct route){"GET", "/api/sources", api_admin_sources, r, T, ROUTE_LOOP, ONLY_GET});
  if (r->sup) {
    r->sup_api = (struct api_suppression){
        .s = r->sup,
        .st = r->st,
        .rp = r->rp,
        .timeout_ms = r->api ? api_options(r->api)->query_timeout_ms : API_QUERY_TIMEOUT_MS};
    void *s = &r->sup_api;
    add(r, &(struct route){"GET", "/api/suppression", api_suppression_list, s, T, ROUTE_READPOOL,
                           "/api/suppression answers GET."});
    add(r, &(struct route){"POST", "/api/suppression/check", api_suppression_check, s, T,
                           ROUTE_READPOOL, "/api/suppression/check answers POST."});
    add(r, &(struct route){NULL, "/api/suppression/*", api_suppression_entry, s, T, ROUTE_WRITER,
                           NULL});
  }
  if (r->dnsbl) {
    add(r, &(struct route){"GET", "/api/dnsbl", api_dnsbl_get, r->dnsbl, T, ROUTE_LOOP, ONLY_GET});
    add(r, &(struct route){"POST", "/api/dnsbl/check", api_dnsbl_check, r->dnsbl, T, ROUTE_WRITER,
                           "Start a round with POST."});
  }
  if (r->api) {
    static const struct {
      const char *pattern;
      route_fn fn;
    } q[] = {{"/api/events", api_events_list},      {"/api/events/counts", api_events_counts},
             {"/api/events/*", api_events_message}, {"/api/recipients/*", api_events_recipient},
             {"/api/stats", api_events_stats},      {"/api/timeseries", api_events_timeseries}};
    for (size_t i = 0; i < sizeof q / sizeof q[0]; i++)
      add(r, &(struct route){"GET", q[i].pattern, q[i].fn, r->api, T, ROUTE_READPOOL, ONLY_GET});
  }
}

int router_add_sink_fields(struct router *r, const struct router_sink_fields *f) {
  if (r->n_sink_fields == ROUTER_MAX_SINK_FIELDS) return SL_ENOMEM;
  r->sink_fields[r->n_sink_fields++] = *f;
  return 0;
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

/* serve --read-only: 1 when req would write (and has been answered so):
 * any method but GET and HEAD, except on a route that only reads. */
static int refuse_write(struct router *r, http_request *req, const struct route *rt, int found) {
  if (!r->read_only || route_is_read_method(req->method)) return 0;
  if (found == 200 && rt->runs != ROUTE_WRITER) return 0; /* POST .../check reads */
  if (strcmp(req->path, "/sns") == 0)                     /* 503: SNS retries, nothing is lost */
    http_respond_error(req, 503, "read_only",
                       "This server runs with --read-only and stores nothing; send SNS to a "
                       "server without it.");
  else
    http_respond_error(req, 403, "read_only",
                       "This server runs with --read-only: it changes nothing in the database.");
  return 1;
}

/* Against DNS rebinding (hostcheck.h), on the main listener: a request
 * must name this server in Host (except on the public routes, /healthz and
 * /sns, which --sns-listen serves to anyone too), and a state-changing one must not come
 * from a page of another site. Answers and returns 0 when refused. */
static int from_this_site(struct router *r, http_request *req, const struct route *rt) {
  if (req->listener_flags & LISTEN_SNS_ONLY) return 1;
  int open = rt && (rt->flags & ROUTE_PUBLIC);
  if (!open && !hostcheck_host_ok(&r->hosts, http_header_get(req, "Host"))) {
    http_respond_error(req, 421, "unknown_host",
                       "The Host header does not name this server; give the name with "
                       "--allowed-host NAME.");
    return 0;
  }
  if (!route_is_read_method(req->method) && strcmp(req->method, "OPTIONS") != 0 &&
      !hostcheck_origin_ok(&r->hosts, http_header_get(req, "Origin"))) {
    http_respond_error(req, 403, "foreign_origin",
                       "A page of another site may not change anything here.");
    return 0;
  }
  return 1;
}

/* A path under /api/ (or /metrics) no route took: 405 for a method no
 * API endpoint takes, else 404. */
static void api_unrouted(http_request *req, const struct route *rt, int found) {
  if (found == 405)
    http_respond_error(req, 405, "method_not_allowed", rt->not_allowed);
  else if (!route_is_read_method(req->method))
    http_respond_error(req, 405, "method_not_allowed", ONLY_GET);
  else
    http_respond_error(req, 404, "not_found", "There is no such API endpoint.");
}

/* A path of the web files: GET serves it, another method on one is 405. */
static void web(struct router *r, http_request *req) {
  if (route_is_read_method(req->method)) {
    if (r->web && static_serve(r->web, req) == 0) return;
  } else if (r->web && static_exists(r->web, req->path)) {
    http_respond_error(req, 405, "method_not_allowed", "This path answers GET only.");
    return;
  }
  http_respond_error(req, 404, "not_found", "There is nothing at this path.");
}

void router_handle(http_request *req, void *ud) {
  struct router *r = ud;
  const struct route *rt;
  const char *tail;
  int found = route_match(r->routes, r->n_routes, req->method, req->path, &rt, &tail);
  int public = rt && (rt->flags & ROUTE_PUBLIC);
  if (!from_this_site(r, req, rt)) return;
  if (public && found == 405) {
    http_respond_error(req, 405, "method_not_allowed", rt->not_allowed);
    return;
  }
  if (!public && (req->listener_flags & LISTEN_SNS_ONLY)) {
    http_respond_error(req, 404, "not_found",
                       "This listener serves only POST /sns and GET /healthz.");
    return;
  }
  int api_path = rt || starts(req->path, "/api/");
  if (!api_path) {
    web(r, req);
    return;
  }
  if ((!rt || (rt->flags & ROUTE_TOKEN)) && !token_ok(r, req)) {
    http_respond_error_ex(req, 401, "unauthorized",
                          "This endpoint needs the header Authorization: Bearer <--api-token>.",
                          "WWW-Authenticate: Bearer realm=\"seslog\"\r\n");
    return;
  }
  if (refuse_write(r, req, rt, found)) return;
  if (found == 200)
    rt->fn(rt->ud, req, tail);
  else
    api_unrouted(req, rt, found);
}
