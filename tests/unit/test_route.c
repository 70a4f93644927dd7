/* test_route.c - the route table: which route a method and path find,
 * and 404 against 405, on the table router_init builds. */
#include <string.h>

#include "api.h"
#include "router.h"
#include "suppression.h"
#include "unit.h"

/* A router with every module that adds routes (the dnsbl is never
 * touched by router_init: any non-NULL pointer stands for it). */
static int with_router(struct router *r, api **a, suppression **s) {
  static int fake_dnsbl;
  struct api_opts ao = {0};
  struct suppression_opts so = {0};
  if (api_new(NULL, &ao, a) || suppression_new(&so, s)) return -1;
  memset(r, 0, sizeof *r);
  r->api = *a;
  r->sup = *s;
  r->dnsbl = (dnsbl *)&fake_dnsbl;
  router_init(r);
  return 0;
}

/* The status of method path; *rt and *tail as route_match gives them. */
static int find(const struct router *r, const char *method, const char *path,
                const struct route **rt, const char **tail) {
  return route_match(r->routes, r->n_routes, method, path, rt, tail);
}

static int t_match(void) {
  struct router r;
  api *a;
  suppression *s;
  ASSERT_INT_EQ(with_router(&r, &a, &s), 0);
  const struct route *rt;
  const char *tail;
  ASSERT_INT_EQ(find(&r, "GET", "/api/events", &rt, &tail), 200);
  ASSERT_TRUE(rt->fn == api_events_list);
  ASSERT_INT_EQ(find(&r, "HEAD", "/api/stats", &rt, &tail), 200);
  ASSERT_TRUE(rt->fn == api_events_stats);
  ASSERT_INT_EQ(find(&r, "GET", "/api/events/counts", &rt, &tail), 200);
  ASSERT_TRUE(rt->fn == api_events_counts);
  ASSERT_INT_EQ(find(&r, "GET", "/api/events/abc@x", &rt, &tail), 200);
  ASSERT_TRUE(rt->fn == api_events_message);
  ASSERT_STR_EQ(tail, "abc@x");
  ASSERT_INT_EQ(find(&r, "GET", "/api/events/", &rt, &tail), 200); /* the handler answers 400 */
  ASSERT_STR_EQ(tail, "");
  ASSERT_INT_EQ(find(&r, "GET", "/api/recipients/Jane@Example.com", &rt, &tail), 200);
  ASSERT_TRUE(rt->fn == api_events_recipient);
  ASSERT_STR_EQ(tail, "Jane@Example.com");
  ASSERT_INT_EQ(find(&r, "DELETE", "/api/suppression/a@b.c", &rt, &tail), 200);
  ASSERT_TRUE(rt->fn == api_suppression_entry);
  ASSERT_STR_EQ(tail, "a@b.c");
  ASSERT_INT_EQ(rt->runs, ROUTE_WRITER);
  ASSERT_INT_EQ(find(&r, "POST", "/api/suppression/check", &rt, &tail), 200);
  ASSERT_TRUE(rt->fn == api_suppression_check);
  ASSERT_INT_EQ(rt->runs, ROUTE_READPOOL); /* a read: allowed with --read-only */
  ASSERT_INT_EQ(find(&r, "POST", "/api/dnsbl/check", &rt, &tail), 200);
  ASSERT_INT_EQ(rt->runs, ROUTE_WRITER);
  ASSERT_INT_EQ(find(&r, "POST", "/sns", &rt, &tail), 200);
  ASSERT_TRUE(rt->flags & ROUTE_PUBLIC);
  ASSERT_TRUE(!(rt->flags & ROUTE_TOKEN));
  ASSERT_INT_EQ(find(&r, "GET", "/metrics", &rt, &tail), 200);
  ASSERT_TRUE(rt->flags & ROUTE_TOKEN);
  api_free(a);
  suppression_free(s);
  return 0;
}

static int t_not_found_not_allowed(void) {
  struct router r;
  api *a;
  suppression *s;
  ASSERT_INT_EQ(with_router(&r, &a, &s), 0);
  const struct route *rt;
  const char *tail;
  ASSERT_INT_EQ(find(&r, "GET", "/api/nothing", &rt, &tail), 404);
  ASSERT_NULL(rt);
  ASSERT_INT_EQ(find(&r, "GET", "/api/suppressionx", &rt, &tail), 404);
  ASSERT_INT_EQ(find(&r, "GET", "/index.html", &rt, &tail), 404);
  ASSERT_INT_EQ(find(&r, "POST", "/api/events", &rt, &tail), 405);
  ASSERT_STR_EQ(rt->not_allowed, "This endpoint answers GET.");
  ASSERT_INT_EQ(find(&r, "GET", "/sns", &rt, &tail), 405);
  ASSERT_STR_EQ(rt->not_allowed, "SNS posts to /sns with POST.");
  ASSERT_INT_EQ(find(&r, "POST", "/healthz", &rt, &tail), 405);
  ASSERT_INT_EQ(find(&r, "PUT", "/api/suppression", &rt, &tail), 405);
  ASSERT_STR_EQ(rt->not_allowed, "/api/suppression answers GET.");
  /* The exact path owns it: not the address route's '*'. */
  ASSERT_INT_EQ(find(&r, "GET", "/api/suppression/check", &rt, &tail), 405);
  ASSERT_STR_EQ(rt->not_allowed, "/api/suppression/check answers POST.");
  ASSERT_INT_EQ(find(&r, "POST", "/api/events/counts", &rt, &tail), 405);
  ASSERT_INT_EQ(find(&r, "GET", "/api/dnsbl/check", &rt, &tail), 405);
  ASSERT_STR_EQ(rt->not_allowed, "Start a round with POST.");
  api_free(a);
  suppression_free(s);
  return 0;
}

/* A module left out leaves its paths unrouted (404 and the router's
 * fallback), as before the table. */
static int t_absent_module(void) {
  struct router r = {0};
  router_init(&r);
  const struct route *rt;
  const char *tail;
  ASSERT_INT_EQ(find(&r, "GET", "/api/events", &rt, &tail), 404);
  ASSERT_INT_EQ(find(&r, "GET", "/api/suppression", &rt, &tail), 404);
  ASSERT_INT_EQ(find(&r, "POST", "/api/dnsbl/check", &rt, &tail), 404);
  ASSERT_INT_EQ(find(&r, "GET", "/api/diagnostics", &rt, &tail), 200);
  ASSERT_INT_EQ(find(&r, "GET", "/healthz", &rt, &tail), 200);
  return 0;
}

const struct unit_test route_tests[] = {{"match", t_match},
                                        {"not_found_not_allowed", t_not_found_not_allowed},
                                        {"absent_module", t_absent_module},
                                        {0}};
