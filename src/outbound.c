/* outbound.c - libcurl multi_socket inside the libuv loop.
 *
 * curl tells us which sockets to watch (socket callback) and when to call
 * it back (timer callback); libuv tells curl when a socket is ready. A
 * transfer's callback runs from check_done(), never from inside
 * outbound_request(). */
#include "outbound.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "error.h"
#include "log.h"
#include "util.h"
#include "version.h"

typedef struct transfer {
  CURL *easy;
  outbound *o;
  outbound_cb cb;
  void *ud;
  buf body; /* the answer, capped */
  struct curl_slist *headers;
  char *post; /* copy of the request body */
  char *retry_after;
  char errbuf[CURL_ERROR_SIZE];
  int too_big;
  struct transfer *prev, *next;
} transfer;

/* One watched socket. */
typedef struct sock {
  uv_poll_t poll; /* first: the handle is the sock */
  curl_socket_t fd;
  outbound *o;
  struct sock *prev, *next; /* the outbound's open socks */
} sock;

struct outbound {
  uv_loop_t *loop;
  CURLM *multi;
  uv_timer_t timer;
  struct curl_slist *connect_to;
  char *ca_file;
  transfer *transfers;
  sock *socks; /* watched sockets not yet closing */
  int active;
  int handles_open; /* timer + polls not yet closed */
  int closing;
  void (*closed_cb)(void *);
  void *closed_ud;
};

static void check_done(outbound *o);
static void on_handle_closed_(uv_handle_t *h);

static void maybe_closed(outbound *o) {
  if (!o->closing || o->handles_open || !o->closed_cb) return;
  void (*cb)(void *) = o->closed_cb;
  o->closed_cb = NULL;
  cb(o->closed_ud);
}

static void sock_close(sock *s) {
  outbound *o = s->o;
  if (s->prev)
    s->prev->next = s->next;
  else
    o->socks = s->next;
  if (s->next) s->next->prev = s->prev;
  uv_poll_stop(&s->poll);
  uv_close((uv_handle_t *)&s->poll, on_handle_closed_);
}

static void on_handle_closed_(uv_handle_t *h) {
  outbound *o = h->data;
  if ((void *)h != (void *)&o->timer) {
    /* a sock: h->data is the outbound, the sock is the container */
    free((sock *)h);
  }
  o->handles_open--;
  maybe_closed(o);
}

static void on_poll(uv_poll_t *p, int status, int events) {
  sock *s = (sock *)p;
  outbound *o = s->o;
  int flags = 0;
  if (status < 0) flags = CURL_CSELECT_ERR;
  if (events & UV_READABLE) flags |= CURL_CSELECT_IN;
  if (events & UV_WRITABLE) flags |= CURL_CSELECT_OUT;
  int running;
  curl_multi_socket_action(o->multi, s->fd, flags, &running);
  check_done(o);
}

static int on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp) {
  (void)easy;
  outbound *o = userp;
  sock *s = socketp;
  if (what == CURL_POLL_REMOVE) {
    if (s) {
      curl_multi_assign(o->multi, fd, NULL);
      sock_close(s);
    }
    return 0;
  }
  if (!s) {
    s = calloc(1, sizeof *s);
    if (!s) return -1;
    s->fd = fd;
    s->o = o;
    if (uv_poll_init_socket(o->loop, &s->poll, fd) < 0) {
      free(s);
      return -1;
    }
    s->poll.data = o;
    o->handles_open++;
    s->next = o->socks;
    if (o->socks) o->socks->prev = s;
    o->socks = s;
    curl_multi_assign(o->multi, fd, s);
  }
  int events = 0;
  if (what & CURL_POLL_IN) events |= UV_READABLE;
  if (what & CURL_POLL_OUT) events |= UV_WRITABLE;
  uv_poll_start(&s->poll, events, on_poll);
  return 0;
}

static void on_timer(uv_timer_t *t) {
  outbound *o = t->data;
  int running;
  curl_multi_socket_action(o->multi, CURL_SOCKET_TIMEOUT, 0, &running);
  check_done(o);
}

static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp) {
  (void)multi;
  outbound *o = userp;
  if (timeout_ms < 0)
    uv_timer_stop(&o->timer);
  else
    uv_timer_start(&o->timer, on_timer, (uint64_t)timeout_ms, 0);
  return 0;
}

static size_t on_data(char *p, size_t size, size_t n, void *ud) {
  transfer *t = ud;
  if (buf_append(&t->body, p, size * n)) {
    t->too_big = 1;
    return 0; /* aborts the transfer */
  }
  return size * n;
}

static size_t on_header(char *p, size_t size, size_t n, void *ud) {
  transfer *t = ud;
  size_t len = size * n;
  static const char name[] = "retry-after:";
  if (len > sizeof name - 1 && strncasecmp(p, name, sizeof name - 1) == 0) {
    const char *v = p + sizeof name - 1;
    size_t vl = len - (sizeof name - 1);
    while (vl && (*v == ' ' || *v == '\t')) v++, vl--;
    while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' ')) vl--;
    free(t->retry_after);
    t->retry_after = util_strndup(v, vl);
  }
  return len;
}

static void transfer_free(transfer *t) {
  if (t->prev)
    t->prev->next = t->next;
  else
    t->o->transfers = t->next;
  if (t->next) t->next->prev = t->prev;
  t->o->active--;
  curl_easy_cleanup(t->easy);
  curl_slist_free_all(t->headers);
  buf_free(&t->body);
  free(t->post);
  free(t->retry_after);
  free(t);
}

static void finish(transfer *t, CURLcode code) {
  outbound_result res = {0};
  if (code == CURLE_OK) {
    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &res.status);
  } else {
    res.rc = t->too_big ? SL_ETOOBIG : SL_EIO;
    res.error = t->too_big ? "the answer is larger than allowed"
                           : (t->errbuf[0] ? t->errbuf : curl_easy_strerror(code));
  }
  res.body = t->body.data ? t->body.data : "";
  res.body_len = t->body.len;
  res.retry_after = t->retry_after;
  curl_multi_remove_handle(t->o->multi, t->easy);
  outbound_cb cb = t->cb;
  void *ud = t->ud;
  cb(ud, &res);
  transfer_free(t);
}

static void check_done(outbound *o) {
  CURLMsg *m;
  int left;
  while ((m = curl_multi_info_read(o->multi, &left))) {
    if (m->msg != CURLMSG_DONE) continue;
    transfer *t;
    curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&t);
    finish(t, m->data.result);
  }
}

int outbound_new(uv_loop_t *loop, const struct outbound_opts *opts, outbound **out) {
  static int global_done;
  if (!global_done) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    global_done = 1;
  }
  outbound *o = calloc(1, sizeof *o);
  if (!o) return SL_ENOMEM;
  o->loop = loop;
  o->multi = curl_multi_init();
  if (!o->multi) {
    free(o);
    return SL_ENOMEM;
  }
  curl_multi_setopt(o->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
  curl_multi_setopt(o->multi, CURLMOPT_SOCKETDATA, o);
  curl_multi_setopt(o->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
  curl_multi_setopt(o->multi, CURLMOPT_TIMERDATA, o);
  uv_timer_init(loop, &o->timer);
  o->timer.data = o;
  o->handles_open = 1;
  if (opts->ca_file) o->ca_file = strdup(opts->ca_file);
  for (size_t i = 0; i < opts->n_connect_to; i++)
    o->connect_to = curl_slist_append(o->connect_to, opts->connect_to[i]);
  *out = o;
  return 0;
}

int outbound_request(outbound *o, const struct outbound_req *req, outbound_cb cb, void *ud) {
  if (o->closing) return SL_ESHUTDOWN;
  transfer *t = calloc(1, sizeof *t);
  if (!t) return SL_ENOMEM;
  t->easy = curl_easy_init();
  if (!t->easy) {
    free(t);
    return SL_ENOMEM;
  }
  t->o = o;
  t->cb = cb;
  t->ud = ud;
  buf_init(&t->body, req->max_body ? req->max_body : 1024 * 1024);
  CURL *e = t->easy;
  curl_easy_setopt(e, CURLOPT_URL, req->url);
  curl_easy_setopt(e, CURLOPT_PRIVATE, t);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->errbuf);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_data);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, t);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, t);
  curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, req->timeout_ms ? req->timeout_ms : 10000L);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
  curl_easy_setopt(e, CURLOPT_USERAGENT, "seslog/" SESLOG_VERSION);
  if (o->ca_file) curl_easy_setopt(e, CURLOPT_CAINFO, o->ca_file);
  if (o->connect_to) curl_easy_setopt(e, CURLOPT_CONNECT_TO, o->connect_to);
  if (req->headers)
    for (const char *const *h = req->headers; *h; h++)
      t->headers = curl_slist_append(t->headers, *h);
  if (req->method && strcmp(req->method, "POST") == 0) {
    t->post = util_strndup(req->body ? req->body : "", req->body_len);
    if (!t->post) goto nomem;
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, t->post);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)req->body_len);
    /* No "Expect: 100-continue" round trip. */
    t->headers = curl_slist_append(t->headers, "Expect:");
  } else if (req->method && strcmp(req->method, "GET") != 0) {
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, req->method); /* PUT without a body (IMDSv2) */
  }
  if (t->headers) curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->headers);
  if (req->aws_sigv4) curl_easy_setopt(e, CURLOPT_AWS_SIGV4, req->aws_sigv4);
  if (req->userpwd) curl_easy_setopt(e, CURLOPT_USERPWD, req->userpwd);
  if (curl_multi_add_handle(o->multi, e) != CURLM_OK) goto nomem;
  t->next = o->transfers;
  if (o->transfers) o->transfers->prev = t;
  o->transfers = t;
  o->active++;
  return 0;
nomem:
  curl_easy_cleanup(e);
  curl_slist_free_all(t->headers);
  buf_free(&t->body);
  free(t->post);
  free(t);
  return SL_ENOMEM;
}

int outbound_active(const outbound *o) {
  return o->active;
}

void outbound_close(outbound *o, void (*done)(void *ud), void *ud) {
  o->closing = 1;
  o->closed_cb = done;
  o->closed_ud = ud;
  while (o->transfers) {
    transfer *t = o->transfers;
    curl_multi_remove_handle(o->multi, t->easy);
    outbound_result res = {.rc = SL_ESHUTDOWN, .error = "the server is stopping"};
    res.body = "";
    t->cb(t->ud, &res);
    transfer_free(t);
  }
  /* Cleaning up the multi handle closes cached connections; whatever
   * sockets curl did not report removed are closed here. */
  curl_multi_cleanup(o->multi);
  o->multi = NULL;
  while (o->socks) sock_close(o->socks);
  uv_timer_stop(&o->timer);
  uv_close((uv_handle_t *)&o->timer, on_handle_closed_);
  maybe_closed(o);
}

void outbound_free(outbound *o) {
  if (!o) return;
  if (o->multi) curl_multi_cleanup(o->multi);
  curl_slist_free_all(o->connect_to);
  free(o->ca_file);
  free(o);
}
