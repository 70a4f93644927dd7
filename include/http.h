/* http.h - HTTP/1.1 requests and responses. The only user of http-parser:
 * everything that knows its API lives in http.c, so it can be swapped for
 * llhttp without touching the server or the handlers.
 *
 * A reader turns bytes from one connection into complete requests (headers
 * and a capped body, copied out of the parser's buffers); the server keeps
 * them in order and writes each response when its handler is done. */
#ifndef SESLOG_HTTP_H
#define SESLOG_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "util.h"

#define HTTP_MAX_HEADERS 48
#define HTTP_MAX_HEADER_BYTES (16 * 1024) /* request line + headers */
#define HTTP_MAX_BODY (1024 * 1024)       /* CONTRACT: over 1 MiB -> 413 */

typedef struct http_header {
  char *name;  /* as sent */
  char *value; /* as sent, leading/trailing spaces removed */
} http_header;

typedef struct http_request http_request;

/* Called when a handler has answered a request (the response is in
 * req->response); set by the server. */
typedef void (*http_done_fn)(http_request *req);

struct http_request {
  char method[12]; /* "GET", "POST", ... */
  char *url;       /* raw request target, owned */
  char *path;      /* percent-decoded path, owned */
  char *query;     /* raw query after '?', owned, or NULL */
  http_header headers[HTTP_MAX_HEADERS];
  int n_headers;
  buf body;       /* capped at HTTP_MAX_BODY */
  int keep_alive; /* from the version and Connection header */
  int http_minor;
  char remote[64];    /* peer address, for logs and diagnostics */
  int listener_flags; /* the listener's flags (server.h) */
  int64_t started_ms; /* when the request was complete */
  /* response state */
  buf response;         /* serialized status line, headers and body */
  int status;           /* status code answered */
  int done;             /* response ready */
  int close_after;      /* close the connection after writing it */
  http_done_fn on_done; /* server hook */
  void *conn;           /* the server's connection */
  http_request *next;   /* the connection's FIFO of requests in flight */
};

/* Header value by case-insensitive name, or NULL. */
const char *http_header_get(const http_request *req, const char *name);

/* Answers req: serializes status, headers, the body, and calls on_done.
 * extra_headers is "Name: value\r\n..." or NULL. A response can be given
 * once; later calls are ignored. */
void http_respond(http_request *req, int status, const char *content_type,
                  const char *extra_headers, const char *body, size_t len);
/* A JSON body. */
void http_respond_json(http_request *req, int status, const char *json);
/* The error body of CONTRACT section 3:
 * {"error":{"code":"<code>","message":"<message>"}} */
void http_respond_error(http_request *req, int status, const char *code, const char *message);
/* Same, with extra headers ("Name: value\r\n..."). */
void http_respond_error_ex(http_request *req, int status, const char *code, const char *message,
                           const char *extra_headers);

const char *http_status_text(int status);

void http_request_free(http_request *req);

/* Query parameter by name, percent-decoded into out (capped); returns 1
 * when present, 0 when absent, -1 when too long or badly encoded. */
int http_query_param(const http_request *req, const char *name, char *out, size_t outlen);

/* Percent-decodes the n bytes of one query value at v ('+' is a space)
 * into out (capped); returns 0, or -1 when too long or badly encoded. */
int http_query_decode(const char *v, size_t n, char *out, size_t outlen);

/* One connection's parser state. */
typedef struct http_reader http_reader;

typedef struct http_reader_cbs {
  /* A complete request; ownership passes to the callee. Return nonzero to
   * pause parsing (too many requests in flight); resume with
   * http_reader_resume. */
  int (*on_request)(void *ud, http_request *req);
  /* The client sent "Expect: 100-continue". */
  void (*on_continue)(void *ud);
  /* The bytes are not a valid request, or exceed a cap: the reader made
   * a final request carrying the error response (status 400, 413, 431, ...)
   * with close_after set; it is delivered through on_request. */
} http_reader_cbs;

http_reader *http_reader_new(const http_reader_cbs *cbs, void *ud, const char *remote,
                             int listener_flags);
void http_reader_free(http_reader *r);

/* Feeds bytes. Returns the number consumed: less than len when paused or
 * after a fatal error (the caller keeps the rest for http_reader_resume, or
 * stops reading). */
size_t http_reader_feed(http_reader *r, const char *data, size_t len);
/* Unpauses; the caller then feeds the kept bytes again. */
void http_reader_resume(http_reader *r);
/* 1 after a fatal parse error: read no more from this connection. */
int http_reader_failed(const http_reader *r);
/* 1 while a request is partly received (headers or body under way). */
int http_reader_busy(const http_reader *r);

#endif
