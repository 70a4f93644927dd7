/* test_http.c - the request reader through http.h: each case is fed whole
 * and again one byte at a time, and both ways must give the same requests
 * (or the same error answer); pipelining, pausing, 100-continue and the
 * response serializer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "unit.h"

#define MAX_GOT 8

typedef struct got {
  http_request *req[MAX_GOT];
  int n;
  int continues;   /* on_continue calls */
  int pause_after; /* nonzero: pause after this many requests */
} got;

static int on_request(void *ud, http_request *req) {
  got *g = ud;
  if (g->n == MAX_GOT) {
    http_request_free(req);
    return 0;
  }
  g->req[g->n++] = req;
  return g->pause_after && g->n == g->pause_after;
}

static void on_continue(void *ud) {
  ((got *)ud)->continues++;
}

static void got_free(got *g) {
  for (int i = 0; i < g->n; i++) http_request_free(g->req[i]);
  memset(g, 0, sizeof *g);
}

/* Feeds s whole or byte by byte into a new reader; returns the bytes the
 * reader consumed. */
static size_t feed(const char *s, size_t len, int bytewise, got *g) {
  static const http_reader_cbs cbs = {on_request, on_continue};
  http_reader *r = http_reader_new(&cbs, g, "127.0.0.1:1", 0);
  size_t used = 0;
  if (!bytewise) {
    used = http_reader_feed(r, s, len);
  } else {
    for (size_t i = 0; i < len; i++) used += http_reader_feed(r, s + i, 1);
  }
  http_reader_free(r);
  return used;
}

struct http_case {
  const char *name;
  const char *bytes;
  int n_ok;           /* requests parsed before any error */
  int err_status;     /* 0, or the status of the final error request */
  const char *method; /* of the first request, when given */
  const char *path;
  const char *query;
  const char *body;
  int keep_alive;
};

static const struct http_case cases[] = {
    {"get", "GET /api/events?limit=5&x=a%20b HTTP/1.1\r\nHost: h\r\n\r\n", 1, 0, "GET",
     "/api/events", "limit=5&x=a%20b", "", 1},
    {"post_body", "POST /sns HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello", 1, 0, "POST",
     "/sns", NULL, "hello", 1},
    {"pipelined",
     "GET /a HTTP/1.1\r\nHost: h\r\n\r\nPOST /b HTTP/1.1\r\nHost: h\r\n"
     "Content-Length: 2\r\n\r\nhiGET /c HTTP/1.1\r\nHost: h\r\n\r\n",
     3, 0, "GET", "/a", NULL, "", 1},
    {"http10_no_host", "GET / HTTP/1.0\r\n\r\n", 1, 0, "GET", "/", NULL, "", 0},
    {"connection_close", "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", 1, 0, "GET", "/",
     NULL, "", 0},
    {"pct_path", "GET /a%20b/%C3%A9 HTTP/1.1\r\nHost: h\r\n\r\n", 1, 0, "GET", "/a b/\xc3\xa9",
     NULL, "", 1},
    {"head", "HEAD /x HTTP/1.1\r\nHost: h\r\n\r\n", 1, 0, "HEAD", "/x", NULL, "", 1},
    {"missing_host_11", "GET / HTTP/1.1\r\n\r\n", 0, 400},
    {"two_hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 0, 400},
    {"http20", "GET / HTTP/2.0\r\nHost: h\r\n\r\n", 0, 505},
    {"http12", "GET / HTTP/1.2\r\nHost: h\r\n\r\n", 0, 505},
    {"chunked",
     "POST /sns HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
     0, 411},
    {"body_over_cap", "POST /sns HTTP/1.1\r\nHost: h\r\nContent-Length: 1048577\r\n\r\n", 0, 413},
    {"upgrade", "GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", 0,
     400},
    {"nul_in_path", "GET /a%00b HTTP/1.1\r\nHost: h\r\n\r\n", 0, 400},
    {"bad_pct", "GET /a%zz HTTP/1.1\r\nHost: h\r\n\r\n", 0, 400},
    {"garbage", "HELLO THERE\r\n\r\n", 0, 400},
    {"bad_content_length", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: x\r\n\r\n", 0, 400},
    {"two_content_lengths",
     "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 0, 400},
    {"ok_then_bad", "GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET / HTTP/1.1\r\n\r\n", 1, 400, "GET", "/a",
     NULL, "", 1},
    {0},
};

/* Checks what one feeding gave against the case. */
static int check_case(const struct http_case *c, const got *g) {
  ASSERT_INT_EQ(g->n, c->n_ok + (c->err_status ? 1 : 0));
  for (int i = 0; i < c->n_ok; i++) ASSERT_INT_EQ(g->req[i]->done, 0);
  if (c->err_status) {
    const http_request *e = g->req[g->n - 1];
    ASSERT_INT_EQ(e->done, 1);
    ASSERT_INT_EQ(e->status, c->err_status);
    ASSERT_INT_EQ(e->close_after, 1);
    ASSERT_TRUE(e->response.data && strstr(e->response.data, "{\"error\":{\"code\":"));
  }
  if (c->method) {
    const http_request *r = g->req[0];
    ASSERT_STR_EQ(r->method, c->method);
    ASSERT_STR_EQ(r->path, c->path);
    if (c->query)
      ASSERT_STR_EQ(r->query, c->query);
    else
      ASSERT_NULL(r->query);
    ASSERT_INT_EQ(r->body.len, strlen(c->body));
    if (r->body.len) ASSERT_TRUE(memcmp(r->body.data, c->body, r->body.len) == 0);
    ASSERT_INT_EQ(r->keep_alive, c->keep_alive);
  }
  return 0;
}

static int t_cases_whole_and_bytewise(void) {
  for (const struct http_case *c = cases; c->name; c++) {
    for (int bytewise = 0; bytewise < 2; bytewise++) {
      got g = {0};
      feed(c->bytes, strlen(c->bytes), bytewise, &g);
      int rc = check_case(c, &g);
      got_free(&g);
      if (rc) {
        fprintf(stderr, "    case %s, fed %s\n", c->name, bytewise ? "byte by byte" : "whole");
        return 1;
      }
    }
  }
  return 0;
}

/* Every piece of the pipelined case is the same request however split. */
static int t_pipelined_order(void) {
  const char *s = cases[2].bytes;
  for (int bytewise = 0; bytewise < 2; bytewise++) {
    got g = {0};
    ASSERT_INT_EQ(feed(s, strlen(s), bytewise, &g), strlen(s));
    ASSERT_INT_EQ(g.n, 3);
    ASSERT_STR_EQ(g.req[1]->method, "POST");
    ASSERT_STR_EQ(g.req[1]->path, "/b");
    ASSERT_STR_EQ(g.req[1]->body.data, "hi");
    ASSERT_STR_EQ(g.req[2]->path, "/c");
    ASSERT_INT_EQ(g.req[2]->body.len, 0);
    got_free(&g);
  }
  return 0;
}

static int t_headers(void) {
  const char *s =
      "GET /?a=1&b=x%2By+z&c=%zz&d HTTP/1.1\r\nHost: h\r\nX-Spaced:   v a l  \r\n"
      "x-empty:\r\nACCEPT: */*\r\n\r\n";
  for (int bytewise = 0; bytewise < 2; bytewise++) {
    got g = {0};
    feed(s, strlen(s), bytewise, &g);
    ASSERT_INT_EQ(g.n, 1);
    http_request *r = g.req[0];
    ASSERT_INT_EQ(r->n_headers, 4);
    ASSERT_STR_EQ(r->headers[1].name, "X-Spaced");
    ASSERT_STR_EQ(http_header_get(r, "x-spaced"), "v a l");
    ASSERT_STR_EQ(http_header_get(r, "X-Empty"), "");
    ASSERT_STR_EQ(http_header_get(r, "accept"), "*/*");
    ASSERT_NULL(http_header_get(r, "missing"));
    char v[16];
    ASSERT_INT_EQ(http_query_param(r, "a", v, sizeof v), 1);
    ASSERT_STR_EQ(v, "1");
    ASSERT_INT_EQ(http_query_param(r, "b", v, sizeof v), 1);
    ASSERT_STR_EQ(v, "x+y z");
    ASSERT_INT_EQ(http_query_param(r, "c", v, sizeof v), -1);
    ASSERT_INT_EQ(http_query_param(r, "d", v, sizeof v), 1);
    ASSERT_STR_EQ(v, "");
    ASSERT_INT_EQ(http_query_param(r, "e", v, sizeof v), 0);
    ASSERT_INT_EQ(http_query_param(r, "b", v, 3), -1); /* too long for out */
    got_free(&g);
  }
  return 0;
}

/* A head just over 16 KiB, or more than HTTP_MAX_HEADERS headers: 431. */
static int t_head_caps(void) {
  buf b;
  buf_init(&b, 1 << 20);
  buf_appends(&b, "GET / HTTP/1.1\r\nHost: h\r\nX-Big: ");
  for (int i = 0; i < HTTP_MAX_HEADER_BYTES; i++) buf_append(&b, "a", 1);
  buf_appends(&b, "\r\n\r\n");
  buf many;
  buf_init(&many, 1 << 20);
  buf_appends(&many, "GET / HTTP/1.1\r\nHost: h\r\n");
  for (int i = 0; i < HTTP_MAX_HEADERS; i++) buf_printf(&many, "X-%d: v\r\n", i);
  buf_appends(&many, "\r\n");
  ASSERT_INT_EQ(buf_failed(&b) || buf_failed(&many), 0);
  for (int bytewise = 0; bytewise < 2; bytewise++) {
    for (int which = 0; which < 2; which++) {
      const buf *in = which ? &many : &b;
      got g = {0};
      ASSERT_INT_EQ(feed(in->data, in->len, bytewise, &g), in->len);
      ASSERT_INT_EQ(g.n, 1);
      ASSERT_INT_EQ(g.req[0]->done, 1);
      ASSERT_INT_EQ(g.req[0]->status, 431);
      got_free(&g);
    }
  }
  buf_free(&b);
  buf_free(&many);
  return 0;
}

/* A body of exactly 1 MiB is taken; Expect: 100-continue is announced once
 * and only for an HTTP/1.1 request with a body. */
static int t_body_cap_and_continue(void) {
  buf b;
  buf_init(&b, 2 << 20);
  buf_printf(&b,
             "POST /sns HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n",
             HTTP_MAX_BODY);
  for (int i = 0; i < HTTP_MAX_BODY; i++) buf_append(&b, "x", 1);
  ASSERT_INT_EQ(buf_failed(&b), 0);
  got g = {0};
  ASSERT_INT_EQ(feed(b.data, b.len, 0, &g), b.len);
  ASSERT_INT_EQ(g.n, 1);
  ASSERT_INT_EQ(g.req[0]->done, 0);
  ASSERT_INT_EQ(g.req[0]->body.len, HTTP_MAX_BODY);
  ASSERT_INT_EQ(g.continues, 1);
  got_free(&g);
  buf_free(&b);
  const char *get = "GET / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n\r\n";
  feed(get, strlen(get), 1, &g);
  ASSERT_INT_EQ(g.n, 1);
  ASSERT_INT_EQ(g.continues, 0);
  got_free(&g);
  return 0;
}

/* A callee that pauses keeps the next request's bytes unread until
 * http_reader_resume; then they parse as usual. */
static int t_pause_resume(void) {
  const char *s = cases[2].bytes;
  size_t len = strlen(s);
  static const http_reader_cbs cbs = {on_request, on_continue};
  got g = {.pause_after = 1};
  http_reader *r = http_reader_new(&cbs, &g, "127.0.0.1:1", 0);
  size_t used = http_reader_feed(r, s, len);
  ASSERT_INT_EQ(g.n, 1);
  ASSERT_TRUE(used < len);
  ASSERT_INT_EQ(used, strlen("GET /a HTTP/1.1\r\nHost: h\r\n\r\n"));
  ASSERT_INT_EQ(http_reader_busy(r), 0);
  http_reader_resume(r);
  g.pause_after = 0;
  ASSERT_INT_EQ(http_reader_feed(r, s + used, len - used), len - used);
  ASSERT_INT_EQ(g.n, 3);
  ASSERT_STR_EQ(g.req[2]->path, "/c");
  ASSERT_INT_EQ(http_reader_failed(r), 0);
  /* half a request: busy until the rest comes */
  const char *half = "GET /d HTTP/1.1\r\nHo";
  http_reader_feed(r, half, strlen(half));
  ASSERT_INT_EQ(http_reader_busy(r), 1);
  http_reader_feed(r, "st: h\r\n\r\n", 9);
  ASSERT_INT_EQ(g.n, 4);
  ASSERT_INT_EQ(http_reader_busy(r), 0);
  /* after an error the reader takes nothing more */
  const char *bad = "NOT HTTP\r\n\r\n";
  http_reader_feed(r, bad, strlen(bad));
  ASSERT_INT_EQ(http_reader_failed(r), 1);
  ASSERT_INT_EQ(g.n, 5);
  http_reader_feed(r, cases[0].bytes, strlen(cases[0].bytes));
  ASSERT_INT_EQ(g.n, 5);
  http_reader_free(r);
  got_free(&g);
  return 0;
}

/* The serializer: Content-Length, Connection: close, HEAD without a body,
 * one answer only; a buffer that failed answers 500, never its part. */
static int t_respond(void) {
  got g = {0};
  const char *s = "HEAD /x HTTP/1.1\r\nHost: h\r\n\r\nGET /y HTTP/1.0\r\n\r\n";
  feed(s, strlen(s), 0, &g);
  ASSERT_INT_EQ(g.n, 2);
  http_respond_json(g.req[0], 200, "{\"a\":1}");
  ASSERT_STR_EQ(g.req[0]->response.data,
                "HTTP/1.1 200 OK\r\nContent-Length: 7\r\nContent-Type: application/json\r\n\r\n");
  http_respond_json(g.req[0], 500, "{}"); /* a second answer is ignored */
  ASSERT_INT_EQ(g.req[0]->status, 200);
  buf body;
  buf_init(&body, 8);
  buf_appends(&body, "{\"long\":");
  buf_json_string(&body, "does not fit");
  buf_appends(&body, "}");
  ASSERT_TRUE(buf_failed(&body) != 0);
  http_respond_buf(g.req[1], 200, "application/json", NULL, &body);
  buf_free(&body);
  ASSERT_INT_EQ(g.req[1]->status, 500);
  ASSERT_INT_EQ(g.req[1]->close_after, 1);
  const char *resp = g.req[1]->response.data;
  ASSERT_TRUE(strncmp(resp, "HTTP/1.1 500 Internal Server Error\r\n", 36) == 0);
  ASSERT_TRUE(strstr(resp, "Connection: close\r\n") != NULL);
  ASSERT_TRUE(strstr(resp, "{\"error\":{\"code\":\"internal\"") != NULL);
  ASSERT_NULL(strstr(resp, "does not"));
  got_free(&g);
  return 0;
}

/* An error message longer than 4 KiB once escaped is answered whole. */
static int t_long_error_message(void) {
  got g = {0};
  const char *s = "GET / HTTP/1.1\r\nHost: h\r\n\r\n";
  feed(s, strlen(s), 0, &g);
  ASSERT_INT_EQ(g.n, 1);
  char msg[3001];
  for (int i = 0; i < 3000; i++) msg[i] = i % 2 ? '<' : 'x'; /* '<' escapes to 6 bytes */
  msg[3000] = 0;
  http_respond_error(g.req[0], 400, "invalid_parameter", msg);
  const char *resp = g.req[0]->response.data;
  ASSERT_INT_EQ(g.req[0]->status, 400);
  const char *body = strstr(resp, "\r\n\r\n");
  ASSERT_TRUE(body != NULL);
  body += 4;
  ASSERT_INT_EQ(strlen(body), 51 + 1500 + 1500 * 6); /* 51: the JSON around the message */
  ASSERT_TRUE(strncmp(body + strlen(body) - 3, "\"}}", 3) == 0);
  got_free(&g);
  return 0;
}

const struct unit_test http_tests[] = {
    {"cases_whole_and_bytewise", t_cases_whole_and_bytewise},
    {"pipelined_order", t_pipelined_order},
    {"headers", t_headers},
    {"head_caps", t_head_caps},
    {"body_cap_and_continue", t_body_cap_and_continue},
    {"pause_resume", t_pause_resume},
    {"respond", t_respond},
    {"long_error_message", t_long_error_message},
    {0},
};
