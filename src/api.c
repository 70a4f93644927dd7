/* api.c - the API layer's core: the query API's context, the job an API
 * request travels in between the loop and the readpool or the store, its
 * one error mapping, and the query-string reader of the endpoints.
 *
 * A job carries one request from its handler (loop) through the work (a
 * readpool function on a pool thread, which touches no libuv handle and no
 * http_request, only the job and its connection; or a store apply on the
 * writer) back to the loop, which answers and frees it. */
#include "api.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "error.h"
#include "query.h"

struct api {
  readpool *rp; /* borrowed: runs the queries */
  struct api_opts opts;
};

int api_new(readpool *rp, const struct api_opts *opts, api **out) {
  api *a = calloc(1, sizeof *a);
  if (!a) return SL_ENOMEM;
  a->rp = rp;
  a->opts = *opts;
  if (a->opts.query_timeout_ms <= 0) a->opts.query_timeout_ms = API_QUERY_TIMEOUT_MS;
  if (a->opts.max_pending <= 0) a->opts.max_pending = 256;
  if (a->opts.bounce_warn <= 0) a->opts.bounce_warn = API_BOUNCE_WARN;
  if (a->opts.bounce_alert <= 0) a->opts.bounce_alert = API_BOUNCE_ALERT;
  if (a->opts.complaint_warn <= 0) a->opts.complaint_warn = API_COMPLAINT_WARN;
  if (a->opts.complaint_alert <= 0) a->opts.complaint_alert = API_COMPLAINT_ALERT;
  *out = a;
  return 0;
}

void api_free(api *a) {
  free(a);
}

int api_is_loopback(const char *hostport) {
  char host[256];
  int port;
  if (config_split_hostport(hostport, host, sizeof host, &port)) return 0;
  if (strcasecmp(host, "localhost") == 0) return 1;
  unsigned char a[16];
  if (inet_pton(AF_INET, host, a) == 1) return a[0] == 127;
  if (inet_pton(AF_INET6, host, a) == 1) {
    static const unsigned char one[16] = {[15] = 1};
    static const unsigned char mapped[12] = {[10] = 0xff, [11] = 0xff};
    if (memcmp(a, one, 16) == 0) return 1;
    return memcmp(a, mapped, 12) == 0 && a[12] == 127; /* ::ffff:127.x.y.z */
  }
  return 0;
}

const struct api_opts *api_options(const api *a) {
  return &a->opts;
}

readpool *api_readpool(const api *a) {
  return a->rp;
}

/* ---- the job ------------------------------------------------------------ */

void api_job_init(api_job *j, http_request *req, size_t body_max, const char *headers,
                  int64_t timeout_ms) {
  j->req = req;
  j->headers = headers;
  j->timeout_ms = timeout_ms;
  buf_init(&j->body, body_max);
}

void api_job_fail(api_job *j, int status, const char *code, const char *msg) {
  j->status = status;
  j->code = code;
  if (msg != j->msg) snprintf(j->msg, sizeof j->msg, "%s", msg);
}

void api_job_fail_rc(api_job *j, int rc) {
  if (rc == SL_EBUSY) {
    char msg[256];
    snprintf(msg, sizeof msg,
             "The query did not finish within %lld ms; narrow it with since and until or a more "
             "specific filter.",
             (long long)j->timeout_ms);
    api_job_fail(j, 503, "query_timeout", msg);
  } else if (rc == SL_ETOOBIG) {
    api_job_fail(j, 500, "too_large", "The answer would be too large; ask for a smaller limit.");
  } else if (rc == SL_ESHUTDOWN) {
    api_job_fail(j, 503, "shutting_down", "The server is stopping.");
  } else {
    api_job_fail(j, 500, "database_error",
                 "The database could not answer this query; see the log.");
  }
}

void api_job_finish(api_job *j) {
  if (!j->status) api_job_fail_rc(j, SL_EDB);
  if (j->status < 400)
    http_respond_buf(j->req, j->status, "application/json", j->headers, &j->body);
  else
    http_respond_error(j->req, j->status, j->code, j->msg);
  buf_free(&j->body);
}

/* ---- the query string --------------------------------------------------- */

int api_each_param(http_request *req, const char *allowed,
                   int (*set)(void *ud, const char *name, const char *v, char *err, size_t n),
                   void *ud) {
  const char *s = req->query ? req->query : "";
  char msg[768], err[400];
  while (*s) {
    const char *amp = strchr(s, '&');
    size_t n = amp ? (size_t)(amp - s) : strlen(s);
    const char *eq = memchr(s, '=', n);
    size_t kl = eq ? (size_t)(eq - s) : n;
    char name[48];
    const char *next = s + n + (amp ? 1 : 0);
    if (kl == 0) { /* "&&" or a bare "=" */
      s = next;
      continue;
    }
    snprintf(name, sizeof name, "%.*s", (int)(kl < 47 ? kl : 47), s);
    /* Known names are plain words: look for " name " in " allowed ". */
    int known = 0;
    for (const char *p = allowed; kl < sizeof name && (p = strstr(p, name)) != NULL; p += kl)
      if ((p == allowed || p[-1] == ' ') && (p[kl] == ' ' || p[kl] == 0)) known = 1;
    if (!known) {
      snprintf(msg, sizeof msg, "Unknown parameter \"%s\"; this endpoint takes: %s.", name,
               allowed);
      http_respond_error(req, 400, "invalid_parameter", msg);
      return SL_EINVAL;
    }
    for (const char *p = req->query; p < s;) { /* given before? */
      const char *a2 = strchr(p, '&');
      size_t n2 = a2 ? (size_t)(a2 - p) : strlen(p);
      const char *e2 = memchr(p, '=', n2);
      size_t k2 = e2 ? (size_t)(e2 - p) : n2;
      /* type may repeat: any of the types given matches. */
      if (k2 == kl && memcmp(p, s, kl) == 0 && strcmp(name, "type") != 0) {
        snprintf(msg, sizeof msg, "Parameter \"%s\" is given more than once.", name);
        http_respond_error(req, 400, "invalid_parameter", msg);
        return SL_EINVAL;
      }
      p += n2 + (a2 ? 1 : 0);
    }
    char v[QUERY_VALUE_MAX + 1];
    /* This occurrence's value (type may come several times). */
    if (http_query_decode(eq ? eq + 1 : s + n, eq ? n - kl - 1 : 0, v, sizeof v) < 0) {
      snprintf(msg, sizeof msg, "Parameter \"%s\" is too long or badly percent-encoded.", name);
      http_respond_error(req, 400, "invalid_parameter", msg);
      return SL_EINVAL;
    }
    if (set(ud, name, v, err, sizeof err)) {
      snprintf(msg, sizeof msg, "Parameter \"%s\" %s.", name, err);
      http_respond_error(req, 400, "invalid_parameter", msg);
      return SL_EINVAL;
    }
    s = next;
  }
  return 0;
}
