/* router.h - which handler answers which request: the route table, and
 * the checks every request passes first (Host and Origin, the API token,
 * serve --read-only). */
#ifndef SESLOG_ROUTER_H
#define SESLOG_ROUTER_H

#include "api.h"
#include "api_suppression.h"
#include "dnsbl.h"
#include "hostcheck.h"
#include "http.h"
#include "ingest.h"
#include "metrics.h"
#include "readpool.h"
#include "route.h"
#include "sesrep.h"
#include "sqs.h"
#include "static.h"
#include "store.h"
#include "subs.h"
#include "suppression.h"

#define ROUTER_MAX_ROUTES 24     /* routes in the table, at most */
#define ROUTER_MAX_SINK_FIELDS 4 /* outbox sinks with fields of their own in diagnostics */

/* Fields one outbox sink adds to its object in /api/diagnostics: fn
 * appends ",\"name\":value..." to b. */
struct router_sink_fields {
  const char *sink; /* the sink's name (outbox_sink_name) */
  int (*fn)(void *ud, buf *b);
  void *ud;
};

/* Filled by the caller, then router_init. */
struct router {
  ingest *in;                     /* POST /sns */
  store *st;                      /* /healthz; suppression writes; NULL: --read-only */
  readpool *rp;                   /* suppression reads */
  subs *sb;                       /* /api/subscriptions */
  static_files *web;              /* everything else under GET */
  api *api;                       /* the query endpoints under /api/; NULL: none */
  struct metrics_sources metrics; /* GET /metrics */
  suppression *sup;               /* /api/suppression...; NULL: none */
  dnsbl *dnsbl;                   /* /api/dnsbl...; NULL: none */
  sesrep *sesrep;                 /* AWS's reputation in diagnostics; NULL: none */
  sqs *sqs;                       /* /api/sources, SQS diagnostics; NULL: none */
  const char *api_token;          /* NULL: /api and /metrics are open */
  struct hostcheck hosts;         /* names the main listener answers to */
  int read_only;                  /* serve --read-only: every write is refused */
  /* set by router_init and router_add_sink_fields */
  struct route routes[ROUTER_MAX_ROUTES]; /* the table, first match first */
  size_t n_routes;                        /* used entries of routes */
  struct api_suppression sup_api;         /* the suppression endpoints' context */
  struct router_sink_fields sink_fields[ROUTER_MAX_SINK_FIELDS];
  int n_sink_fields; /* used entries of sink_fields */
};

/* Builds r's route table from the modules it was given (an endpoint of a
 * module that is NULL is absent: 404). Call once, before serving. */
void router_init(struct router *r);

/* Adds fields of the outbox sink named f->sink to /api/diagnostics.
 * Returns 0, or SL_ENOMEM past ROUTER_MAX_SINK_FIELDS. */
int router_add_sink_fields(struct router *r, const struct router_sink_fields *f);

/* The server's handler: ud is a struct router made by router_init. */
void router_handle(http_request *req, void *ud);

#endif
