/* server.h - listeners and connections on the libuv loop.
 *
 * The server knows sockets, timeouts and limits; what a request means is
 * the handler's business. Responses go out in request order (pipelining),
 * one write in flight per socket. A connection is freed only when its
 * handles are closed and every request handed to the handler has been
 * answered, so a handler may answer after the client went away. */
#ifndef SESLOG_SERVER_H
#define SESLOG_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "http.h"

/* Listener flags, visible to handlers as req->listener_flags. */
#define LISTEN_SNS_ONLY 1 /* serves only POST /sns and GET /healthz */

typedef void (*server_handler)(http_request *req, void *ud);

struct server_opts {
  int max_conns;      /* connections at once on the main listener; more are closed */
  int sns_max_conns;  /* the same for a LISTEN_SNS_ONLY listener (its own count) */
  int max_inflight;   /* requests in flight per connection before reading pauses */
  int64_t idle_ms;    /* keep-alive idle time */
  int64_t request_ms; /* time to receive one whole request */
};

typedef struct server server;

/* Creates a server on loop. Returns 0 and *out, or SL_ENOMEM. */
int server_new(uv_loop_t *loop, const struct server_opts *opts, server_handler h, void *ud,
               server **out);

/* Listens on "HOST:PORT" (port 0 picks one); bound receives "HOST:PORT"
 * as bound. Returns 0, or a negative libuv error code (uv_strerror). */
int server_listen(server *s, const char *hostport, int flags, char *bound, size_t boundlen);

/* Stops accepting: closes the listeners. Connections go on. */
void server_stop_accepting(server *s);

/* Closes every connection once its answered requests are written; calls
 * done when every handle of the server is closed. */
void server_shutdown(server *s, void (*done)(void *ud), void *ud);

/* Frees the server after server_shutdown's callback. */
void server_free(server *s);

/* Connections open now. */
int server_connections(const server *s);

#endif
