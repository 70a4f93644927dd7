/* server.c - libuv listeners and HTTP connections. */
#include "server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "error.h"
#include "log.h"
#include "util.h"

#define READ_CHUNK 65536
#define LINGER_MS 2000              /* discard input this long after an error */
#define LINGER_MAX_BYTES (8u << 20) /* or until this much was discarded */

typedef struct listener {
  uv_tcp_t tcp;
  server *srv;
  int flags;
  int max_conns; /* its cap */
  int n_conns;   /* its connections open now */
  struct listener *next;
} listener;

typedef struct conn {
  uv_tcp_t tcp;     /* the socket */
  uv_timer_t timer; /* idle and request deadlines */
  server *srv;
  http_reader *reader;
  http_request *head; /* requests in flight, oldest first */
  http_request *tail;
  int inflight;        /* requests in the list */
  uv_write_t wreq;     /* the one write in flight */
  int writing;         /* 1 while wreq is in flight */
  int closing;         /* close started; no more reads or writes */
  int handles_open;    /* handles not yet closed */
  int reading;         /* uv_read_start is on */
  int paused;          /* the reader paused for too many in flight */
  buf kept;            /* bytes read but not parsed while paused */
  int64_t deadline_ms; /* when a partial request times out, or 0 */
  int64_t idle_since;  /* the last request or answer: blank lines do not count */
  int64_t write_since; /* when the write in flight began */
  int lingering;       /* answered an error: discarding input until EOF */
  size_t discarded;    /* bytes discarded while lingering */
  uv_shutdown_t shutdown_req;
  char remote[64]; /* peer address */
  int flags;       /* listener flags */
  listener *from;  /* the listener that accepted it (counts it) */
  struct conn *prev, *next;
} conn;

struct server {
  uv_loop_t *loop;
  struct server_opts opts;
  server_handler handler;
  void *ud;
  listener *listeners;
  int listeners_open; /* listener handles not yet closed */
  conn *conns;
  int n_conns;
  int shutting_down;
  void (*shutdown_cb)(void *);
  void *shutdown_ud;
};

static void conn_close_how(conn *c, int reset);
static void conn_close(conn *c) {
  conn_close_how(c, 0);
}
static void conn_flush(conn *c);
static void conn_read_more(conn *c);
static void conn_linger(conn *c);
static void maybe_shutdown_done(server *s);
static void on_timer(uv_timer_t *t);

int server_new(uv_loop_t *loop, const struct server_opts *opts, server_handler h, void *ud,
               server **out) {
  server *s = calloc(1, sizeof *s);
  if (!s) return SL_ENOMEM;
  s->loop = loop;
  s->opts = *opts;
  s->handler = h;
  s->ud = ud;
  *out = s;
  return 0;
}

int server_connections(const server *s) {
  return s->n_conns;
}

/* Frees c once nothing refers to it any more. */
static void conn_maybe_free(conn *c) {
  if (c->handles_open || c->head) return;
  server *s = c->srv;
  if (c->prev)
    c->prev->next = c->next;
  else
    s->conns = c->next;
  if (c->next) c->next->prev = c->prev;
  s->n_conns--;
  c->from->n_conns--;
  http_reader_free(c->reader);
  buf_free(&c->kept);
  free(c);
  maybe_shutdown_done(s);
}

static void on_conn_handle_closed(uv_handle_t *h) {
  conn *c = h->data;
  c->handles_open--;
  conn_maybe_free(c);
}

/* Starts closing: no more reads, writes or timers. Requests still held by
 * handlers stay in the list and are freed as they are answered. Requests
 * already answered but not written are dropped now. */
static void conn_close_how(conn *c, int reset) {
  if (c->closing) return;
  c->closing = 1;
  /* A reset drops what the kernel still holds for a client that stopped
   * reading; a plain close would leave it to the kernel to deliver. */
  if (!reset || uv_tcp_close_reset(&c->tcp, on_conn_handle_closed) != 0)
    uv_close((uv_handle_t *)&c->tcp, on_conn_handle_closed);
  uv_close((uv_handle_t *)&c->timer, on_conn_handle_closed);
  http_request **pp = &c->head;
  c->tail = NULL;
  while (*pp) {
    http_request *r = *pp;
    if (r->done && !(c->writing && r == c->head)) {
      *pp = r->next;
      c->inflight--;
      http_request_free(r);
    } else {
      c->tail = r;
      pp = &r->next;
    }
  }
}

/* Arms the timer for what the connection is waiting for now. */
static void conn_arm_timer(conn *c) {
  if (c->closing) return;
  int64_t now = (int64_t)uv_now(c->srv->loop);
  /* A partial request must complete by a deadline set when it started
   * (trickling bytes does not extend it); an idle connection closes after
   * idle_ms; one waiting for our answers has no timer. */
  if (http_reader_busy(c->reader)) {
    if (!c->deadline_ms) c->deadline_ms = now + c->srv->opts.request_ms;
  } else {
    c->deadline_ms = 0;
  }
  uv_timer_stop(&c->timer);
  int64_t at = 0;
  if (c->deadline_ms) {
    at = c->deadline_ms;
  } else if (c->writing) {
    /* A client that does not read its answers must not hold the
     * connection (and its place under --max-connections) forever. */
    at = c->write_since + c->srv->opts.request_ms;
  } else if (!c->head) {
    at = c->idle_since + c->srv->opts.idle_ms;
  }
  if (at) uv_timer_start(&c->timer, on_timer, at > now ? (uint64_t)(at - now) : 0, 0);
}

static void on_timer(uv_timer_t *t) {
  conn *c = t->data;
  if (c->closing) return;
  if (c->lingering) {
    conn_close(c);
    return;
  }
  if (!c->deadline_ms && c->writing) {
    log_kv(LOG_INFO, "client does not read its answers; connection reset", "remote", c->remote,
           NULL);
    conn_close_how(c, 1);
    return;
  } else if (c->deadline_ms) {
    log_kv(LOG_INFO, "request timed out", "remote", c->remote, NULL);
    /* A partial request that never completed: say so if nothing else is
     * pending, then close. */
    if (!c->head && !c->writing) {
      static const char msg[] =
          "HTTP/1.1 408 Request Timeout\r\nContent-Type: application/json\r\nContent-Length: 75\r\n"
          "Connection: close\r\n\r\n"
          "{\"error\":{\"code\":\"request_timeout\",\"message\":\"The request took too long.\"}}";
      uv_buf_t b = uv_buf_init((char *)msg, sizeof msg - 1);
      uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    }
  } else {
    log_kv(LOG_DEBUG, "idle connection closed", "remote", c->remote, NULL);
  }
  conn_close(c);
}

static void on_write(uv_write_t *w, int status) {
  conn *c = w->data;
  c->writing = 0;
  c->idle_since = (int64_t)uv_now(c->srv->loop);
  http_request *r = c->head;
  c->head = r->next;
  if (!c->head) c->tail = NULL;
  c->inflight--;
  int close_after = r->close_after;
  http_request_free(r);
  if (c->closing) {
    conn_maybe_free(c);
    return;
  }
  if (status >= 0 && close_after && http_reader_failed(c->reader)) {
    conn_linger(c);
    return;
  }
  if (status < 0 || close_after) {
    conn_close(c);
    return;
  }
  if (c->paused && c->inflight < c->srv->opts.max_inflight) conn_read_more(c);
  if (c->closing) return;
  conn_flush(c);
  conn_arm_timer(c);
}

/* Writes the oldest request's response when it is ready. */
static void conn_flush(conn *c) {
  if (c->closing || c->writing || !c->head || !c->head->done) return;
  http_request *r = c->head;
  uv_buf_t b = uv_buf_init(r->response.data, (unsigned)r->response.len);
  c->wreq.data = c;
  c->writing = 1;
  c->write_since = (int64_t)uv_now(c->srv->loop);
  if (log_enabled(LOG_DEBUG)) {
    char st[8], ms[24];
    snprintf(st, sizeof st, "%d", r->status);
    snprintf(ms, sizeof ms, "%lld", (long long)(util_now_ms() - r->started_ms));
    log_kv(LOG_DEBUG, "request", "method", r->method, "path", r->path ? r->path : "-", "status", st,
           "ms", ms, "remote", c->remote, NULL);
  }
  int rc = uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_write);
  if (rc < 0) {
    c->writing = 0;
    conn_close(c);
    return;
  }
  conn_arm_timer(c);
}

/* The handler answered r (maybe after the connection started closing). */
static void on_request_done(http_request *r) {
  conn *c = r->conn;
  if (c->closing) {
    /* Nobody to answer: drop it unless it is being written. */
    if (c->writing && r == c->head) return;
    http_request **pp = &c->head;
    c->tail = NULL;
    for (http_request *x = c->head; x; x = x->next) {
      if (x == r) {
        *pp = x->next;
        c->inflight--;
        http_request_free(x);
        break;
      }
      pp = &x->next;
    }
    for (http_request *x = c->head; x; x = x->next) c->tail = x;
    conn_maybe_free(c);
    return;
  }
  conn_flush(c);
}

static int on_reader_request(void *ud, http_request *r) {
  conn *c = ud;
  c->idle_since = (int64_t)uv_now(c->srv->loop);
  r->conn = c;
  r->next = NULL;
  if (c->tail)
    c->tail->next = r;
  else
    c->head = r;
  c->tail = r;
  c->inflight++;
  if (r->done) {
    conn_flush(c); /* an error the reader answered itself */
  } else {
    r->on_done = on_request_done;
    c->srv->handler(r, c->srv->ud);
  }
  return c->inflight >= c->srv->opts.max_inflight;
}

static void on_reader_continue(void *ud) {
  conn *c = ud;
  static const char msg[] = "HTTP/1.1 100 Continue\r\n\r\n";
  uv_buf_t b = uv_buf_init((char *)msg, sizeof msg - 1);
  if (!c->writing && !c->head) uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b) {
  (void)h;
  (void)suggested;
  /* One buffer per read; http-parser's data is copied out, so it is freed
   * right after parsing. */
  b->base = malloc(READ_CHUNK);
  b->len = b->base ? READ_CHUNK : 0;
}

/* Parses data; keeps what the paused reader did not take. */
static void conn_parse(conn *c, const char *data, size_t len) {
  size_t n = http_reader_feed(c->reader, data, len);
  if (c->closing) return;
  if (n < len) {
    if (buf_append(&c->kept, data + n, len - n)) {
      conn_close(c);
      return;
    }
    c->paused = 1;
    if (c->reading) {
      uv_read_stop((uv_stream_t *)&c->tcp);
      c->reading = 0;
    }
  }
  if (http_reader_failed(c->reader) && c->reading) {
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = 0;
  }
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *b) {
  conn *c = st->data;
  if (c->lingering) {
    free(b->base);
    if (nread > 0) c->discarded += (size_t)nread;
    if (nread < 0 || c->discarded > LINGER_MAX_BYTES) conn_close(c);
    return;
  }
  if (nread > 0 && !c->closing) conn_parse(c, b->base, (size_t)nread);
  free(b->base);
  if (c->closing) return;
  if (nread < 0) {
    /* EOF or error: answer what is in flight only if the peer can still
     * read; simplest and safe is to close. */
    if (nread != UV_EOF)
      log_kv(LOG_DEBUG, "read error", "remote", c->remote, "error", uv_strerror((int)nread), NULL);
    if (nread == UV_EOF && c->head) {
      /* Half-closed: finish answering, then close. */
      uv_read_stop(st);
      c->reading = 0;
      c->tail->close_after = 1;
      return;
    }
    conn_close(c);
    return;
  }
  conn_arm_timer(c);
}

/* After an error answer (413, 400, ...) the client may still be sending
 * the request it started: closing at once would reset the connection
 * before it reads the answer. Shut down our side, read and discard for a
 * short while, then close (a "lingering close"). */
static void on_shutdown(uv_shutdown_t *req, int status) {
  (void)req, (void)status;
}

static void conn_linger(conn *c) {
  c->lingering = 1;
  if (uv_shutdown(&c->shutdown_req, (uv_stream_t *)&c->tcp, on_shutdown) < 0) {
    conn_close(c);
    return;
  }
  if (!c->reading && uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0) c->reading = 1;
  uv_timer_stop(&c->timer);
  c->deadline_ms = 0;
  uv_timer_start(&c->timer, on_timer, LINGER_MS, 0);
}

static void conn_read_more(conn *c) {
  c->paused = 0;
  http_reader_resume(c->reader);
  if (c->kept.len) {
    buf old = c->kept;
    buf_init(&c->kept, old.max);
    conn_parse(c, old.data, old.len);
    buf_free(&old);
    if (c->closing || c->paused) return;
  }
  if (!c->reading && !http_reader_failed(c->reader)) {
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0) c->reading = 1;
  }
}

static void on_connection(uv_stream_t *ls, int status) {
  listener *l = ls->data;
  server *s = l->srv;
  if (status < 0) return;
  conn *c = calloc(1, sizeof *c);
  if (!c) return;
  c->srv = s;
  c->flags = l->flags;
  c->from = l;
  c->idle_since = (int64_t)uv_now(s->loop);
  buf_init(&c->kept, 2 * HTTP_MAX_BODY);
  uv_tcp_init(s->loop, &c->tcp);
  uv_timer_init(s->loop, &c->timer);
  c->tcp.data = c->timer.data = c;
  c->handles_open = 2;
  c->next = s->conns;
  if (s->conns) s->conns->prev = c;
  s->conns = c;
  s->n_conns++;
  l->n_conns++;
  if (uv_accept(ls, (uv_stream_t *)&c->tcp) < 0) {
    conn_close(c);
    return;
  }
  struct sockaddr_storage ss;
  int sl = sizeof ss;
  char host[48] = "?";
  int port = 0;
  if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &sl) == 0) {
    if (ss.ss_family == AF_INET) {
      uv_ip4_name((struct sockaddr_in *)&ss, host, sizeof host);
      port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    } else {
      uv_ip6_name((struct sockaddr_in6 *)&ss, host, sizeof host);
      port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    }
  }
  snprintf(c->remote, sizeof c->remote, "%s:%d", host, port);
  /* Each listener counts its own: a flood of the public one cannot lock
   * out the API, the web UI and /healthz. */
  if (l->n_conns > l->max_conns || s->shutting_down) {
    log_kv(LOG_WARN, "connection refused: too many connections", "remote", c->remote, NULL);
    static const char msg[] =
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
        "Content-Length: 90\r\nConnection: close\r\n\r\n"
        "{\"error\":{\"code\":\"too_many_connections\",\"message\":\"The server has too many "
        "connections.\"}}";
    uv_buf_t b = uv_buf_init((char *)msg, sizeof msg - 1);
    uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    conn_close(c);
    return;
  }
  static const http_reader_cbs cbs = {on_reader_request, on_reader_continue};
  c->reader = http_reader_new(&cbs, c, c->remote, c->flags);
  if (!c->reader) {
    conn_close(c);
    return;
  }
  uv_tcp_nodelay(&c->tcp, 1);
  if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0) c->reading = 1;
  conn_arm_timer(c);
}

int server_listen(server *s, const char *hostport, int flags, char *bound, size_t boundlen) {
  char host[256];
  int port;
  if (config_split_hostport(hostport, host, sizeof host, &port)) return UV_EINVAL;
  if (strcmp(host, "localhost") == 0) snprintf(host, sizeof host, "127.0.0.1");
  struct sockaddr_storage addr;
  int rc = strchr(host, ':') ? uv_ip6_addr(host, port, (struct sockaddr_in6 *)&addr)
                             : uv_ip4_addr(host, port, (struct sockaddr_in *)&addr);
  if (rc) return rc;
  listener *l = calloc(1, sizeof *l);
  if (!l) return UV_ENOMEM;
  l->srv = s;
  l->flags = flags;
  l->max_conns = flags & LISTEN_SNS_ONLY ? s->opts.sns_max_conns : s->opts.max_conns;
  uv_tcp_init(s->loop, &l->tcp);
  l->tcp.data = l;
  s->listeners_open++;
  l->next = s->listeners;
  s->listeners = l;
  rc = uv_tcp_bind(&l->tcp, (struct sockaddr *)&addr, 0);
  if (!rc) rc = uv_listen((uv_stream_t *)&l->tcp, 1024, on_connection);
  if (rc) return rc; /* closed with the others at shutdown */
  struct sockaddr_storage got;
  int gl = sizeof got;
  uv_tcp_getsockname(&l->tcp, (struct sockaddr *)&got, &gl);
  char name[64] = "";
  if (got.ss_family == AF_INET) {
    uv_ip4_name((struct sockaddr_in *)&got, name, sizeof name);
    snprintf(bound, boundlen, "%s:%d", name, ntohs(((struct sockaddr_in *)&got)->sin_port));
  } else {
    uv_ip6_name((struct sockaddr_in6 *)&got, name, sizeof name);
    snprintf(bound, boundlen, "[%s]:%d", name, ntohs(((struct sockaddr_in6 *)&got)->sin6_port));
  }
  return 0;
}

static void on_listener_closed(uv_handle_t *h) {
  listener *l = h->data;
  server *s = l->srv;
  s->listeners_open--;
  maybe_shutdown_done(s);
}

void server_stop_accepting(server *s) {
  for (listener *l = s->listeners; l; l = l->next)
    if (!uv_is_closing((uv_handle_t *)&l->tcp))
      uv_close((uv_handle_t *)&l->tcp, on_listener_closed);
}

static void maybe_shutdown_done(server *s) {
  if (!s->shutting_down || s->listeners_open || s->conns || !s->shutdown_cb) return;
  void (*cb)(void *) = s->shutdown_cb;
  s->shutdown_cb = NULL;
  cb(s->shutdown_ud);
}

void server_shutdown(server *s, void (*done)(void *ud), void *ud) {
  s->shutting_down = 1;
  s->shutdown_cb = done;
  s->shutdown_ud = ud;
  server_stop_accepting(s);
  for (conn *c = s->conns, *next; c; c = next) {
    next = c->next;
    /* Connections with nothing in flight close now; the others close as
     * soon as their last answer is written (close_after). */
    if (!c->head) {
      conn_close(c);
    } else {
      c->tail->close_after = 1;
      if (c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = 0;
      }
    }
  }
  maybe_shutdown_done(s);
}

void server_free(server *s) {
  if (!s) return;
  while (s->listeners) {
    listener *l = s->listeners;
    s->listeners = l->next;
    free(l);
  }
  free(s);
}
