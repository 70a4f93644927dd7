/* dns.c - c-ares on the libuv loop (see dns.h). */
#include "dns.h"

#include <ares.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

#define QCLASS_IN 1

/* One socket c-ares watches. */
struct sockpoll {
  uv_poll_t h;           /* its readiness */
  ares_socket_t fd;      /* the socket */
  dns *r;                /* the resolver */
  struct sockpoll *next; /* the resolver's list */
};

struct dns {
  uv_loop_t *loop;        /* borrowed */
  ares_channel channel;   /* c-ares's state */
  uv_timer_t timer;       /* c-ares's own timeouts */
  struct sockpoll *polls; /* one per open socket */
  int closing;            /* dns_close ran */
};

static void arm_timer(dns *r);

static void on_poll_closed(uv_handle_t *h) {
  free(h->data);
}

static void on_poll(uv_poll_t *h, int status, int events) {
  struct sockpoll *p = h->data;
  dns *r = p->r;
  ares_socket_t fd = p->fd;
  if (status < 0) events = UV_READABLE | UV_WRITABLE; /* let c-ares see the error */
  ares_process_fd(r->channel, (events & UV_READABLE) ? fd : ARES_SOCKET_BAD,
                  (events & UV_WRITABLE) ? fd : ARES_SOCKET_BAD);
  arm_timer(r);
}

static void close_poll(struct sockpoll **pp) {
  struct sockpoll *p = *pp;
  *pp = p->next;
  uv_poll_stop(&p->h);
  uv_close((uv_handle_t *)&p->h, on_poll_closed);
}

/* c-ares opens, watches and closes its sockets through this. */
static void sock_state(void *data, ares_socket_t fd, int readable, int writable) {
  dns *r = data;
  struct sockpoll **pp = &r->polls;
  while (*pp && (*pp)->fd != fd) pp = &(*pp)->next;
  if (!readable && !writable) {
    if (*pp) close_poll(pp);
    return;
  }
  struct sockpoll *p = *pp;
  if (!p) {
    p = calloc(1, sizeof *p);
    if (!p) return; /* the query times out */
    if (uv_poll_init_socket(r->loop, &p->h, fd)) {
      free(p);
      return;
    }
    p->fd = fd;
    p->r = r;
    p->h.data = p;
    p->next = r->polls;
    r->polls = p;
  }
  uv_poll_start(&p->h, (readable ? UV_READABLE : 0) | (writable ? UV_WRITABLE : 0), on_poll);
}

static void on_timer(uv_timer_t *t) {
  dns *r = t->data;
  ares_process_fd(r->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
  arm_timer(r);
}

/* The timer to c-ares's next timeout, or stopped when nothing waits. */
static void arm_timer(dns *r) {
  if (r->closing) return;
  struct timeval tv, *tvp = ares_timeout(r->channel, NULL, &tv);
  if (!tvp) {
    uv_timer_stop(&r->timer);
    return;
  }
  uint64_t ms = (uint64_t)tvp->tv_sec * 1000 + (uint64_t)tvp->tv_usec / 1000;
  uv_timer_start(&r->timer, on_timer, ms ? ms : 1, 0);
}

int dns_new(uv_loop_t *loop, const struct dns_opts *o, dns **out, char *err, size_t errlen) {
  dns *r = calloc(1, sizeof *r);
  if (!r) {
    snprintf(err, errlen, "cannot start the DNS resolver: out of memory");
    return SL_EINVAL;
  }
  struct ares_options ao;
  memset(&ao, 0, sizeof ao);
  ao.sock_state_cb = sock_state;
  ao.sock_state_cb_data = r;
  ao.timeout = (int)o->timeout_ms;
  ao.tries = o->tries;
  ao.flags = o->keep_failures ? ARES_FLAG_NOCHECKRESP : 0;
  int ar = ares_library_init(ARES_LIB_INIT_ALL);
  if (ar != ARES_SUCCESS) {
    snprintf(err, errlen, "cannot start the DNS resolver: %s", ares_strerror(ar));
    free(r);
    return SL_EINVAL;
  }
  ar = ares_init_options(
      &r->channel, &ao,
      ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_FLAGS);
  if (ar == ARES_SUCCESS && o->servers) {
    ar = ares_set_servers_ports_csv(r->channel, o->servers);
    if (ar != ARES_SUCCESS) ares_destroy(r->channel);
  }
  if (ar != ARES_SUCCESS) {
    snprintf(err, errlen, "cannot start the DNS resolver: %s", ares_strerror(ar));
    ares_library_cleanup();
    free(r);
    return SL_EINVAL;
  }
  r->loop = loop;
  uv_timer_init(loop, &r->timer);
  r->timer.data = r;
  *out = r;
  return 0;
}

void dns_query(dns *r, const char *name, int type, dns_cb cb, void *ud) {
  ares_query(r->channel, name, QCLASS_IN, type, cb, ud);
  arm_timer(r);
}

void dns_close(dns *r) {
  if (!r || r->closing) return;
  r->closing = 1;
  uv_timer_stop(&r->timer);
  ares_destroy(r->channel); /* callbacks see ARES_EDESTRUCTION */
  while (r->polls) close_poll(&r->polls);
  uv_close((uv_handle_t *)&r->timer, NULL);
}

void dns_free(dns *r) {
  if (!r) return;
  if (!r->closing) ares_destroy(r->channel);
  ares_library_cleanup();
  free(r);
}

const char *dns_status_str(int status) {
  switch (status) {
    case ARES_ETIMEOUT: return "timeout";
    case ARES_EREFUSED: return "refused";
    case ARES_ESERVFAIL: return "servfail";
    case ARES_ECONNREFUSED: return "connection refused";
    default: return ares_strerror(status);
  }
}
