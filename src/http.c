/* http.c - request parsing with http-parser, response serialization.
 *
 * http-parser hands out pointers into the caller's read buffer that are
 * valid only inside each callback, so every piece is copied into the
 * request being built, under the caps of http.h. */
#include "http.h"

#include <http_parser.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "error.h"
#include "util.h"

struct http_reader {
  http_parser parser;
  http_parser_settings settings;
  http_reader_cbs cbs;
  void *ud;
  char remote[64];
  int listener_flags;
  http_request *cur; /* the request being received */
  buf head;          /* url + header bytes of cur, for the cap */
  buf field, value;  /* the header being received */
  int in_value;      /* last callback was a value */
  int error_status;  /* a callback found a cap exceeded */
  int failed;        /* fatal: no more requests on this connection */
  int paused;
  int in_head;    /* the bytes fed next belong to a request head */
  int head_state; /* of the head scanner (enum head_state) */
  int msg_end;    /* the parser paused at the end of a message */
};

/* The head scanner: the framing rules of RFC 9112 that Debian's lenient
 * http-parser lets through. Every request line and header line must end
 * in CRLF (no bare LF), no line may start with a space or tab (obs-fold),
 * a field name is a token followed directly by ':', and no control byte
 * but HTAB stands in a line. Only head bytes are scanned; bodies go to the
 * parser alone. */
enum head_state {
  HS_START,    /* before the request line: empty lines (CRLF) are skipped */
  HS_START_CR, /* an empty line's CR */
  HS_LINE,     /* in the request line */
  HS_LINE_CR,  /* the request line's CR */
  HS_FIELD,    /* at the start of a header line, or of the empty line */
  HS_NAME,     /* in a field name */
  HS_VALUE,    /* in a field value */
  HS_VALUE_CR, /* a header line's CR */
  HS_END_CR,   /* the empty line's CR */
  HS_DONE,     /* the head is complete */
  HS_BAD       /* a rule is broken */
};

static int is_tchar(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         (c && strchr("!#$%&'*+-.^_`|~", c));
}

static int is_ctl(unsigned char c) {
  return (c < 0x20 && c != '\t') || c == 0x7f;
}

static enum head_state head_step(enum head_state st, unsigned char c) {
  switch (st) {
    case HS_START:
      if (c == '\r') return HS_START_CR;
      return c == '\n' || is_ctl(c) || c == ' ' || c == '\t' ? HS_BAD : HS_LINE;
    case HS_START_CR: return c == '\n' ? HS_START : HS_BAD;
    case HS_LINE:
      if (c == '\r') return HS_LINE_CR;
      return c == '\n' || is_ctl(c) || c == '\t' ? HS_BAD : HS_LINE;
    case HS_LINE_CR: return c == '\n' ? HS_FIELD : HS_BAD;
    case HS_FIELD:
      if (c == '\r') return HS_END_CR;
      return is_tchar(c) ? HS_NAME : HS_BAD; /* also SP/HTAB: obs-fold */
    case HS_NAME:
      if (c == ':') return HS_VALUE;
      return is_tchar(c) ? HS_NAME : HS_BAD; /* also "X Y:" and "X :" */
    case HS_VALUE:
      if (c == '\r') return HS_VALUE_CR;
      return c == '\n' || is_ctl(c) ? HS_BAD : HS_VALUE;
    case HS_VALUE_CR: return c == '\n' ? HS_FIELD : HS_BAD;
    case HS_END_CR: return c == '\n' ? HS_DONE : HS_BAD;
    default: return HS_BAD;
  }
}

/* Scans head bytes of data[0..len): returns how many belong to the head
 * (through its final LF once r->head_state is HS_DONE), or stops at the
 * byte that breaks a rule with r->head_state HS_BAD. */
static size_t scan_head(http_reader *r, const char *data, size_t len) {
  enum head_state st = (enum head_state)r->head_state;
  size_t i = 0;
  while (i < len && st != HS_DONE && st != HS_BAD) st = head_step(st, (unsigned char)data[i++]);
  r->head_state = st;
  return i;
}

static int64_t now_ms(void) {
  return util_now_ms();
}

static http_request *request_new(http_reader *r) {
  http_request *req = calloc(1, sizeof *req);
  if (!req) return NULL;
  buf_init(&req->body, HTTP_MAX_BODY);
  buf_init(&req->response, 64 * 1024 * 1024);
  snprintf(req->remote, sizeof req->remote, "%s", r->remote);
  req->listener_flags = r->listener_flags;
  return req;
}

void http_request_free(http_request *req) {
  if (!req) return;
  free(req->url);
  free(req->path);
  free(req->query);
  for (int i = 0; i < req->n_headers; i++) {
    free(req->headers[i].name);
    free(req->headers[i].value);
  }
  buf_free(&req->body);
  buf_free(&req->response);
  free(req);
}

static http_reader *reader_of(http_parser *p) {
  return p->data;
}

/* Keeps the running total of request-line and header bytes under the cap. */
static int count_head(http_reader *r, size_t n) {
  if (n > HTTP_MAX_HEADER_BYTES - r->head.len) {
    r->error_status = 431;
    return 1;
  }
  r->head.len += n; /* only the count is used */
  return 0;
}

static int on_message_begin(http_parser *p) {
  http_reader *r = reader_of(p);
  r->cur = request_new(r);
  r->head.len = 0;
  buf_reset(&r->field);
  buf_reset(&r->value);
  r->in_value = 0;
  if (!r->cur) {
    r->error_status = 503;
    return 1;
  }
  return 0;
}

static int on_url(http_parser *p, const char *at, size_t len) {
  http_reader *r = reader_of(p);
  if (count_head(r, len)) return 1;
  size_t old = r->cur->url ? strlen(r->cur->url) : 0;
  char *u = realloc(r->cur->url, old + len + 1);
  if (!u) return 1;
  memcpy(u + old, at, len);
  u[old + len] = 0;
  r->cur->url = u;
  return 0;
}

/* Moves the header collected in field/value into the request. */
static int flush_header(http_reader *r) {
  if (!r->field.len) return 0;
  http_request *req = r->cur;
  if (req->n_headers >= HTTP_MAX_HEADERS) {
    r->error_status = 431;
    return 1;
  }
  const char *v = r->value.data ? r->value.data : "";
  size_t vl = r->value.len;
  while (vl && (v[0] == ' ' || v[0] == '\t')) v++, vl--;
  while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t')) vl--;
  http_header *h = &req->headers[req->n_headers];
  h->name = util_strndup(r->field.data, r->field.len);
  h->value = util_strndup(v, vl);
  if (!h->name || !h->value) {
    free(h->name);
    free(h->value);
    return 1;
  }
  req->n_headers++;
  buf_reset(&r->field);
  buf_reset(&r->value);
  return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len) {
  http_reader *r = reader_of(p);
  if (count_head(r, len)) return 1;
  if (r->in_value) {
    if (flush_header(r)) return 1;
    r->in_value = 0;
  }
  return buf_append(&r->field, at, len) ? 1 : 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len) {
  http_reader *r = reader_of(p);
  if (count_head(r, len)) return 1;
  r->in_value = 1;
  return buf_append(&r->value, at, len) ? 1 : 0;
}

static int hexval(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Percent-decodes n bytes of s into out (cap outlen incl. NUL); plus_space
 * turns '+' into ' ' (query strings). Returns the length or -1. */
static long pct_decode(const char *s, size_t n, char *out, size_t outlen, int plus_space) {
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    int c = (unsigned char)s[i];
    if (c == '%') {
      if (i + 2 >= n) return -1;
      int h = hexval(s[i + 1]), l = hexval(s[i + 2]);
      if (h < 0 || l < 0) return -1;
      c = h * 16 + l;
      if (c == 0) return -1;
      i += 2;
    } else if (c == '+' && plus_space) {
      c = ' ';
    }
    if (o + 1 >= outlen) return -1;
    out[o++] = (char)c;
  }
  out[o] = 0;
  return (long)o;
}

/* Returns 0 to go on, -1 to fail: for this callback http-parser reads 1
 * as "no body follows", not as an error. */
static int on_headers_complete(http_parser *p) {
  http_reader *r = reader_of(p);
  http_request *req = r->cur;
  if (r->in_value && flush_header(r)) return -1;
  r->in_value = 0;
  snprintf(req->method, sizeof req->method, "%s", http_method_str((enum http_method)p->method));
  req->http_minor = p->http_minor;
  /* HTTP/1.0 and 1.1 only: other versions get 505 (RFC 9110 15.6.6). */
  if (p->http_major != 1 || p->http_minor > 1) {
    r->error_status = 505;
    return -1;
  }
  /* RFC 9112 3.2: an HTTP/1.1 request without Host, or with more than
   * one, is answered 400. */
  int hosts = 0;
  for (int i = 0; i < req->n_headers; i++)
    if (strcasecmp(req->headers[i].name, "Host") == 0) hosts++;
  if (hosts > 1 || (hosts == 0 && p->http_minor == 1)) {
    r->error_status = 400;
    return -1;
  }
  /* No protocol switch (WebSocket, h2c, CONNECT) is served. http-parser
   * sets `upgrade` before this callback; refusing here, before any body,
   * answers the same 400 however the bytes arrive. */
  if (!req->url || p->upgrade) {
    r->error_status = 400;
    return -1;
  }
  struct http_parser_url u;
  http_parser_url_init(&u);
  if (http_parser_parse_url(req->url, strlen(req->url), p->method == HTTP_CONNECT, &u) != 0 ||
      !(u.field_set & (1 << UF_PATH))) {
    r->error_status = 400;
    return -1;
  }
  size_t plen = u.field_data[UF_PATH].len;
  req->path = malloc(plen + 1);
  if (!req->path ||
      pct_decode(req->url + u.field_data[UF_PATH].off, plen, req->path, plen + 1, 0) < 0) {
    r->error_status = 400;
    return -1;
  }
  if (u.field_set & (1 << UF_QUERY)) {
    req->query = util_strndup(req->url + u.field_data[UF_QUERY].off, u.field_data[UF_QUERY].len);
    if (!req->query) return -1;
  }
  /* Debian's http-parser is built lenient: it does not check the CRLF
   * after each chunk, so a chunked body could hide a second request from
   * a proxy in front (request smuggling). SNS and every API client send a
   * Content-Length; chunked request bodies are refused. */
  if (p->flags & F_CHUNKED) {
    r->error_status = 411;
    return -1;
  }
  /* Refuse an announced body over the cap before reading any of it. */
  if (p->content_length != ULLONG_MAX && p->content_length > HTTP_MAX_BODY) {
    r->error_status = 413;
    return -1;
  }
  /* 100 Continue only for an HTTP/1.1 request announcing a body: a GET
   * without one has nothing to continue with (RFC 9110 10.1.1). */
  const char *expect = http_header_get(req, "Expect");
  if (expect && strcasecmp(expect, "100-continue") == 0 && r->cbs.on_continue &&
      p->http_minor == 1 && p->content_length != ULLONG_MAX && p->content_length > 0)
    r->cbs.on_continue(r->ud);
  return 0;
}

static int on_body(http_parser *p, const char *at, size_t len) {
  http_reader *r = reader_of(p);
  int rc = buf_append(&r->cur->body, at, len);
  if (rc == SL_ETOOBIG) r->error_status = 413;
  return rc ? 1 : 0;
}

static int on_message_complete(http_parser *p) {
  http_reader *r = reader_of(p);
  http_request *req = r->cur;
  r->cur = NULL;
  req->keep_alive = http_should_keep_alive(p);
  req->started_ms = now_ms();
  /* Stop at the end of every message: the head scanner takes the bytes
   * of the next one (http_reader_feed resumes at once unless paused). */
  http_parser_pause(p, 1);
  r->msg_end = 1;
  if (r->cbs.on_request(r->ud, req)) r->paused = 1;
  return 0;
}

http_reader *http_reader_new(const http_reader_cbs *cbs, void *ud, const char *remote,
                             int listener_flags) {
  http_reader *r = calloc(1, sizeof *r);
  if (!r) return NULL;
  http_parser_init(&r->parser, HTTP_REQUEST);
  r->parser.data = r;
  http_parser_settings_init(&r->settings);
  r->settings.on_message_begin = on_message_begin;
  r->settings.on_url = on_url;
  r->settings.on_header_field = on_header_field;
  r->settings.on_header_value = on_header_value;
  r->settings.on_headers_complete = on_headers_complete;
  r->settings.on_body = on_body;
  r->settings.on_message_complete = on_message_complete;
  r->cbs = *cbs;
  r->ud = ud;
  snprintf(r->remote, sizeof r->remote, "%s", remote ? remote : "");
  r->listener_flags = listener_flags;
  r->in_head = 1;
  r->head_state = HS_START;
  buf_init(&r->head, HTTP_MAX_HEADER_BYTES);
  buf_init(&r->field, HTTP_MAX_HEADER_BYTES);
  buf_init(&r->value, HTTP_MAX_HEADER_BYTES);
  return r;
}

void http_reader_free(http_reader *r) {
  if (!r) return;
  http_request_free(r->cur);
  buf_free(&r->field);
  buf_free(&r->value);
  free(r);
}

int http_reader_failed(const http_reader *r) {
  return r->failed;
}

int http_reader_busy(const http_reader *r) {
  return r->cur != NULL;
}

void http_reader_resume(http_reader *r) {
  if (!r->paused) return;
  r->paused = 0;
  http_parser_pause(&r->parser, 0);
}

/* Turns a parse failure into a final error request delivered in order
 * after everything already parsed, so pipelined answers stay in order. */
static void fail(http_reader *r, int status) {
  r->failed = 1;
  http_request *req = r->cur ? r->cur : request_new(r);
  r->cur = NULL;
  if (!req) return;
  if (!req->method[0]) snprintf(req->method, sizeof req->method, "-");
  req->keep_alive = 0;
  req->started_ms = now_ms();
  req->close_after = 1;
  /* The request carries its own answer; the server writes it in turn. */
  static const struct {
    int status;
    const char *code, *msg;
  } errs[] = {
      {400, "bad_request", "The request is not valid HTTP/1.1."},
      {411, "length_required",
       "Send the body with a Content-Length; chunked request bodies are not accepted."},
      {413, "body_too_large", "The request body is larger than 1 MiB."},
      {431, "headers_too_large", "The request line and headers are larger than 16 KiB."},
      {503, "overloaded", "The server is out of memory for this request; try again."},
      {505, "http_version_not_supported", "Only HTTP/1.0 and HTTP/1.1 are served."},
  };
  size_t i = 0;
  while (i < sizeof errs / sizeof errs[0] - 1 && errs[i].status != status) i++;
  if (errs[i].status != status) i = 0;
  /* Marked done before the server sees it: on_done is not set yet, so
   * http_respond only serializes. */
  http_respond_error(req, errs[i].status, errs[i].code, errs[i].msg);
  req->close_after = 1;
  r->cbs.on_request(r->ud, req);
}

size_t http_reader_feed(http_reader *r, const char *data, size_t len) {
  if (r->failed) return len;
  size_t off = 0;
  while (off < len) {
    /* A head goes to the parser only as far as the scanner passed it; a
     * body (the parser knows its length) goes whole. */
    size_t chunk = len - off;
    if (r->in_head) {
      chunk = scan_head(r, data + off, len - off);
      if (r->head_state == HS_BAD) {
        fail(r, 400);
        return len;
      }
      if (r->head_state == HS_DONE) r->in_head = 0;
    }
    size_t n = http_parser_execute(&r->parser, &r->settings, data + off, chunk);
    off += n;
    enum http_errno e = HTTP_PARSER_ERRNO(&r->parser);
    /* An upgrade is refused in on_headers_complete; this check stays as a
     * backstop, whether or not the parser also paused. */
    if (r->parser.upgrade) {
      fail(r, 400);
      return len;
    }
    if (e == HPE_PAUSED && r->msg_end) {
      r->msg_end = 0;
      r->in_head = 1;
      r->head_state = HS_START;
      if (r->paused) return off; /* too many in flight: resumed later */
      http_parser_pause(&r->parser, 0);
      continue;
    }
    if (e != HPE_OK) {
      fail(r, r->error_status ? r->error_status : 400);
      return len;
    }
    if (n < chunk) { /* not expected without an error; never loop on it */
      fail(r, 400);
      return len;
    }
  }
  return off;
}

const char *http_header_get(const http_request *req, const char *name) {
  for (int i = 0; i < req->n_headers; i++)
    if (strcasecmp(req->headers[i].name, name) == 0) return req->headers[i].value;
  return NULL;
}

const char *http_status_text(int status) {
  switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 421: return "Misdirected Request";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
  }
  return "Unknown";
}

void http_respond(http_request *req, int status, const char *content_type,
                  const char *extra_headers, const char *body, size_t len) {
  if (req->done) return;
  buf *b = &req->response;
  buf_reset(b);
  int head_only = strcmp(req->method, "HEAD") == 0;
  int rc = buf_printf(b, "HTTP/1.1 %d %s\r\n", status, http_status_text(status));
  /* 204 and 304 have no body and, here, no Content-Length. */
  if (!rc && status != 204 && status != 304) rc = buf_printf(b, "Content-Length: %zu\r\n", len);
  if (!rc && content_type) rc = buf_printf(b, "Content-Type: %s\r\n", content_type);
  if (!rc && extra_headers) rc = buf_appends(b, extra_headers);
  if (!rc && (!req->keep_alive || req->close_after)) rc = buf_appends(b, "Connection: close\r\n");
  if (!rc) rc = buf_appends(b, "\r\n");
  if (!rc && !head_only && len) rc = buf_append(b, body, len);
  if (rc) {
    /* Only a response over 64 MiB gets here; answer with a short 500. */
    buf_reset(b);
    buf_appends(
        b, "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    req->close_after = 1;
    status = 500;
  }
  if (!req->keep_alive) req->close_after = 1;
  req->status = status;
  req->done = 1;
  if (req->on_done) req->on_done(req);
}

void http_respond_json(http_request *req, int status, const char *json) {
  http_respond(req, status, "application/json", NULL, json, strlen(json));
}

void http_respond_error(http_request *req, int status, const char *code, const char *message) {
  http_respond_error_ex(req, status, code, message,
                        status == 405 ? "Allow: GET, HEAD, POST, PUT, DELETE\r\n" : NULL);
}

void http_respond_error_ex(http_request *req, int status, const char *code, const char *message,
                           const char *extra_headers) {
  buf b;
  buf_init(&b, 4096);
  buf_appends(&b, "{\"error\":{\"code\":");
  buf_json_string(&b, code);
  buf_appends(&b, ",\"message\":");
  buf_json_string(&b, message);
  buf_appends(&b, "}}");
  http_respond(req, status, "application/json", extra_headers, b.data ? b.data : "{}", b.len);
  buf_free(&b);
}

int http_query_param(const http_request *req, const char *name, char *out, size_t outlen) {
  if (!req->query) return 0;
  size_t nl = strlen(name);
  const char *s = req->query;
  while (*s) {
    const char *amp = strchr(s, '&');
    size_t n = amp ? (size_t)(amp - s) : strlen(s);
    const char *eq = memchr(s, '=', n);
    size_t kl = eq ? (size_t)(eq - s) : n;
    if (kl == nl && strncmp(s, name, nl) == 0) {
      const char *v = eq ? eq + 1 : s + n;
      size_t vl = eq ? n - kl - 1 : 0;
      return pct_decode(v, vl, out, outlen, 1) < 0 ? -1 : 1;
    }
    s += n + (amp ? 1 : 0);
  }
  return 0;
}

int http_query_decode(const char *v, size_t n, char *out, size_t outlen) {
  return pct_decode(v, n, out, outlen, 1) < 0 ? -1 : 0;
}
