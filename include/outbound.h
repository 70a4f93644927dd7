/* outbound.h - outbound HTTP(S) through libcurl's multi interface, driven
 * by the libuv loop (uv_poll per socket, one uv_timer), so no request ever
 * blocks the loop. Every request gets the server's --ca-file and
 * --connect-to, verified TLS, no redirects, a timeout and a body cap. */
#ifndef SESLOG_OUTBOUND_H
#define SESLOG_OUTBOUND_H

#include <stddef.h>
#include <uv.h>

typedef struct outbound outbound;

struct outbound_opts {
  const char *ca_file; /* CA bundle, or NULL for the system's */
  char **connect_to;   /* "HOST:PORT:HOST2:PORT2" entries */
  size_t n_connect_to;
};

/* The answer to one request. rc is 0 when an HTTP answer arrived (any
 * status), else a negative code (SL_EIO: connection, TLS, timeout;
 * SL_ETOOBIG: body over the cap) with error a sentence. */
typedef struct outbound_result {
  int rc;
  long status;      /* HTTP status, 0 without an answer */
  const char *body; /* NUL-terminated; valid during the callback */
  size_t body_len;
  const char *error;       /* curl's sentence when rc != 0 */
  const char *retry_after; /* the Retry-After header, or NULL */
} outbound_result;

typedef void (*outbound_cb)(void *ud, const outbound_result *res);

struct outbound_req {
  const char *method; /* "GET" (default), "POST", or another without a body */
  const char *url;
  const char *const *headers; /* "Name: value", NULL-terminated, or NULL */
  const char *body;           /* POST body, copied */
  size_t body_len;
  long timeout_ms;       /* whole request; default 10 s */
  size_t max_body;       /* answer cap; default 1 MiB */
  const char *aws_sigv4; /* CURLOPT_AWS_SIGV4 value, or NULL */
  const char *userpwd;   /* "KEY:SECRET" for SigV4, or NULL */
};

int outbound_new(uv_loop_t *loop, const struct outbound_opts *opts, outbound **out);

/* Starts a request; cb is called exactly once, later, on the loop thread
 * (never from inside this call). Returns 0, or a negative code without
 * calling cb. */
int outbound_request(outbound *o, const struct outbound_req *req, outbound_cb cb, void *ud);

/* Cancels every request (their callbacks run with rc SL_ESHUTDOWN) and
 * closes the handles; done is called when all are closed. */
void outbound_close(outbound *o, void (*done)(void *ud), void *ud);
void outbound_free(outbound *o);

/* Requests in flight. */
int outbound_active(const outbound *o);

#endif
