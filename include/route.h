/* route.h - the route table: which handler answers which method and path.
 *
 * A route names a method, a path pattern, its handler and how it is
 * served: whether it needs the API token, whether the SNS-only listener
 * serves it, and where its work runs (on the loop, on the readpool, or on
 * the store's writer: a writer route is refused under serve --read-only).
 * Matching is pure (no I/O), so it is tested on its own. */
#ifndef SESLOG_ROUTE_H
#define SESLOG_ROUTE_H

#include <stddef.h>

#include "http.h"

/* Where a route's work runs. */
enum route_runs {
  ROUTE_LOOP = 0,     /* answered on the loop thread (reads only) */
  ROUTE_READPOOL = 1, /* a read on the readpool */
  ROUTE_WRITER = 2    /* changes the database: refused with --read-only */
};

/* Flags of a route. */
#define ROUTE_TOKEN 1  /* needs Authorization: Bearer <--api-token> */
#define ROUTE_PUBLIC 2 /* served on the --sns-listen listener too, for any Host */

/* The handler: ud is the route's, tail the part of the path the
 * pattern's '*' matched ("" for an exact pattern). */
typedef void (*route_fn)(void *ud, http_request *req, const char *tail);

struct route {
  const char *method;      /* "GET" (HEAD too), "POST", "PUT", "DELETE"; NULL: any (the
                              handler checks the method itself) */
  const char *pattern;     /* the exact path, or a prefix ending in '*' (the rest of the
                              path, possibly empty) */
  route_fn fn;             /* answers the request */
  void *ud;                /* fn's first argument */
  unsigned flags;          /* ROUTE_TOKEN, ROUTE_PUBLIC */
  enum route_runs runs;    /* where the work runs */
  const char *not_allowed; /* the 405 message when the path matches but not the method */
};

/* Finds the route of method and path among the n of table. The first
 * route whose pattern matches the path owns it: only the routes with that
 * same pattern are tried for the method (so an exact path listed before
 * a '*' pattern covering it answers 405, not the '*' route). Returns 200
 * with *out (and *tail, the part of the path after the pattern's '*'),
 * 405 with *out the owner (for its not_allowed message) when none of its
 * routes takes the method, or 404 (*out NULL) when no pattern matches. */
int route_match(const struct route *table, size_t n, const char *method, const char *path,
                const struct route **out, const char **tail);

/* 1 when method is one a GET route takes (GET or HEAD). */
int route_is_read_method(const char *method);

#endif
