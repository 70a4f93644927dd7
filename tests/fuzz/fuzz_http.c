/* fuzz_http.c - libFuzzer target for the HTTP request path (http.h).
 *
 * The input is the byte stream a client sends on one connection. It is
 * parsed twice by fresh readers, the way server.c drives them:
 *   1. in one feed, never pausing;
 *   2. in small pieces (sizes drawn from a PRNG seeded by the input), with
 *      on_request pausing after every request, the unparsed rest kept and
 *      fed again after http_reader_resume (server.c's conn_parse and
 *      conn_read_more).
 * Every request is checked (caps, ownership, an error request's answer),
 * its query is probed with http_query_param, it is answered with
 * http_respond and freed. The requests of both runs are summarized and the
 * two summaries must be equal: how the bytes arrive must not change what
 * is parsed. Any difference aborts, so libFuzzer reports it. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "util.h"

#define CHECK(cond)                                                                         \
  do {                                                                                      \
    if (!(cond)) {                                                                          \
      fprintf(stderr, "fuzz_http: check failed at %s:%d: %s\n", __FILE__, __LINE__, #cond); \
      abort();                                                                              \
    }                                                                                       \
  } while (0)

/* One run over the input. */
struct run {
  int max_inflight;   /* on_request pauses when this many are queued */
  http_request *head; /* requests handed over and not handled yet */
  http_request **tail;
  int inflight;
  int requests;   /* requests delivered */
  int errors;     /* error requests delivered (at most one) */
  int continues;  /* on_continue calls */
  int paused;     /* on_request asked to pause during this feed */
  int done_calls; /* on_done calls seen */
  buf summary;    /* what was parsed, for comparing the runs */
};

static void on_done(http_request *req) {
  struct run *r = req->conn;
  r->done_calls++;
}

/* Probes http_query_param with names seen in the query itself and some
 * fixed ones, with several output sizes. */
static void probe_query(const http_request *req) {
  static const char *const fixed[] = {"limit", "q", "type", "a", "", "cursor"};
  static const size_t sizes[] = {1, 2, 8, 64, 4096};
  char out[4096];
  char name[64];
  const char *names[8];
  size_t n = 0;
  for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) names[n++] = fixed[i];
  if (req->query) {
    size_t kl = strcspn(req->query, "=&");
    if (kl < sizeof name) {
      memcpy(name, req->query, kl);
      name[kl] = 0;
      names[n++] = name;
    }
  }
  for (size_t i = 0; i < n; i++) {
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
      memset(out, 'X', sizeof out);
      int rc = http_query_param(req, names[i], out, sizes[s]);
      CHECK(rc == -1 || rc == 0 || rc == 1);
      if (!req->query) CHECK(rc == 0);
      if (rc == 1) {
        CHECK(memchr(out, 0, sizes[s]) != NULL); /* terminated inside the cap */
        CHECK(strlen(out) < sizes[s]);
      }
    }
  }
}

static void summarize(struct run *r, const http_request *req) {
  buf *b = &r->summary;
  if (req->done) {
    /* An error request. How much of the bad request was parsed, and so
     * which error is seen first (a bad byte: 400; the 49th header or 16 KiB:
     * 431), depends on where the pieces end: http-parser reports a field at
     * the end of a piece or of the field. Either answer is right; that an
     * error ends the connection at this point must agree. */
    CHECK(req->status == 400 || req->status == 411 || req->status == 413 || req->status == 431 ||
          req->status == 503 || req->status == 505);
    buf_appends(b, "[error]\n");
    return;
  }
  buf_printf(b, "[%s|%s|%s|%s|%d|%d|%d|", req->method, req->url, req->path,
             req->query ? req->query : "(null)", req->n_headers, req->keep_alive, req->http_minor);
  for (int i = 0; i < req->n_headers; i++)
    buf_printf(b, "%s:%s|", req->headers[i].name, req->headers[i].value);
  buf_printf(b, "%zu|", req->body.len);
  if (req->body.len) buf_append(b, req->body.data, req->body.len);
  buf_appends(b, "]\n");
}

/* What a handler does: checks the request, answers it, frees it. */
static void handle(struct run *r, http_request *req) {
  CHECK(req->n_headers >= 0 && req->n_headers <= HTTP_MAX_HEADERS);
  CHECK(req->body.len <= HTTP_MAX_BODY);
  CHECK(req->method[0] != 0);
  for (int i = 0; i < req->n_headers; i++) {
    CHECK(req->headers[i].name && req->headers[i].value);
    CHECK(http_header_get(req, req->headers[i].name) != NULL);
  }
  if (req->done) {
    /* An error the reader answered itself: 4xx/5xx, and the connection ends. */
    CHECK(req->close_after);
    CHECK(req->status >= 400 && req->status <= 599);
    CHECK(req->response.len > 12 && memcmp(req->response.data, "HTTP/1.1 ", 9) == 0);
    CHECK(strstr(req->response.data, "\r\n\r\n") != NULL);
  } else {
    CHECK(req->url && req->path);
    CHECK(strlen(req->path) <= strlen(req->url));
    probe_query(req);
    (void)http_header_get(req, "Content-Type");
  }
  summarize(r, req);
  if (!req->done) {
    /* Answer like a handler: the second answer must be ignored. */
    int before = r->done_calls;
    req->conn = r;
    req->on_done = on_done;
    if (req->path[0] && req->path[1] == 'e')
      http_respond_error(req, 405, "method_not_allowed", "Not here.");
    else
      http_respond_json(req, 200, "{\"status\":\"ok\"}");
    http_respond_json(req, 500, "{}");
    CHECK(r->done_calls == before + 1);
    CHECK(req->done && req->status != 500);
    CHECK(memcmp(req->response.data, "HTTP/1.1 ", 9) == 0);
    if (!req->keep_alive) CHECK(req->close_after);
  }
  http_request_free(req);
}

static int on_request(void *ud, http_request *req) {
  struct run *r = ud;
  CHECK(req != NULL);
  CHECK(r->errors == 0); /* nothing after the final error request */
  if (req->done) r->errors++;
  r->requests++;
  req->next = NULL;
  *r->tail = req;
  r->tail = &req->next;
  r->inflight++;
  int pause = r->max_inflight > 0 && r->inflight >= r->max_inflight;
  if (pause) r->paused = 1;
  return pause;
}

static void on_continue(void *ud) {
  struct run *r = ud;
  r->continues++;
}

static void drain(struct run *r) {
  while (r->head) {
    http_request *req = r->head;
    r->head = req->next;
    r->inflight--;
    handle(r, req);
  }
  r->tail = &r->head;
}

/* Tiny deterministic PRNG (xorshift32) for the piece sizes. */
static uint32_t next_rand(uint32_t *s) {
  uint32_t x = *s;
  x ^= x << 13;
  x ^= x >> 17;
  x ^= x << 5;
  return *s = x;
}

static void run_reader(struct run *r, const uint8_t *data, size_t size, int pieces) {
  static const http_reader_cbs cbs = {on_request, on_continue};
  r->tail = &r->head;
  buf_init(&r->summary, 64 * 1024 * 1024);
  http_reader *reader = http_reader_new(&cbs, r, "127.0.0.1:1", 0);
  CHECK(reader != NULL);
  uint32_t seed = 0x9e3779b9u ^ (uint32_t)size;
  for (size_t i = 0; i < size && i < 16; i++) seed = seed * 31 + data[i];
  if (!seed) seed = 1;
  size_t pos = 0;
  int stalls = 0;
  while (pos < size) {
    size_t len = size - pos;
    if (pieces) {
      size_t want = 1 + next_rand(&seed) % 24;
      if (want < len) len = want;
    }
    r->paused = 0;
    size_t n = http_reader_feed(reader, (const char *)data + pos, len);
    CHECK(n <= len);
    /* Less than given only when on_request asked to pause. */
    if (n < len) CHECK(r->paused);
    if (http_reader_failed(reader)) CHECK(n == len);
    pos += n;
    drain(r); /* the handlers answer: in flight drops to zero */
    if (r->paused) {
      http_reader_resume(reader);
      /* A paused parse consumed a whole request, so progress is certain
       * unless the reader is stuck. */
      stalls = n == 0 ? stalls + 1 : 0;
      CHECK(stalls < 3);
    }
    if (http_reader_failed(reader)) {
      /* Later bytes are swallowed without a request. */
      int before = r->requests;
      CHECK(http_reader_feed(reader, "GET / HTTP/1.1\r\n\r\n", 18) == 18);
      CHECK(r->requests == before);
      break;
    }
  }
  (void)http_reader_busy(reader);
  http_reader_free(reader);
  drain(r);
  CHECK(r->inflight == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct run whole = {.max_inflight = 0};
  struct run split = {.max_inflight = 1};
  run_reader(&whole, data, size, 0);
  run_reader(&split, data, size, 1);
  /* Both runs saw the same requests, errors and 100-continue requests. */
  if (whole.summary.len != split.summary.len ||
      (whole.summary.len && memcmp(whole.summary.data, split.summary.data, whole.summary.len))) {
    fprintf(stderr,
            "fuzz_http: one feed and small pieces parse differently\n--- one feed:\n%.*s\n"
            "--- pieces:\n%.*s\n",
            (int)(whole.summary.len > 4000 ? 4000 : whole.summary.len),
            whole.summary.data ? whole.summary.data : "",
            (int)(split.summary.len > 4000 ? 4000 : split.summary.len),
            split.summary.data ? split.summary.data : "");
    abort();
  }
  CHECK(whole.requests == split.requests);
  CHECK(whole.errors == split.errors);
  CHECK(whole.continues == split.continues);
  buf_free(&whole.summary);
  buf_free(&split.summary);
  return 0;
}
