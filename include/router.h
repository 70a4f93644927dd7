/* router.h - which handler answers which request. */
#ifndef SESLOG_ROUTER_H
#define SESLOG_ROUTER_H

#include "api.h"
#include "dnsbl.h"
#include "hostcheck.h"
#include "http.h"
#include "ingest.h"
#include "metrics.h"
#include "sesrep.h"
#include "sqs.h"
#include "static.h"
#include "store.h"
#include "subs.h"
#include "suppression.h"

struct router {
  ingest *in;                     /* POST /sns */
  store *st;                      /* /healthz */
  subs *sb;                       /* /api/subscriptions */
  static_files *web;              /* everything else under GET */
  api *api;                       /* the query endpoints under /api/; NULL: none */
  struct metrics_sources metrics; /* GET /metrics */
  suppression *sup;               /* /api/suppression...; NULL: none */
  dnsbl *dnsbl;                   /* /api/dnsbl...; NULL: none */
  sesrep *sesrep;                 /* AWS's reputation in diagnostics and metrics; NULL: none */
  sqs *sqs;                       /* /api/sources, SQS diagnostics; NULL: none */
  struct dynamodb *ddb;           /* replication metrics, key collisions; NULL: none */
  const char *api_token;          /* NULL: /api and /metrics are open */
  struct hostcheck hosts;         /* names the main listener answers to */
  int read_only;                  /* serve --read-only: every write is refused */
};

/* The server's handler: ud is a struct router. */
void router_handle(http_request *req, void *ud);

#endif
