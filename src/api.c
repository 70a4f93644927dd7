/* api.c - the query API's handlers: parameters checked on the loop,
 * queries on the libuv thread pool, answers written back on the loop.
 *
 * A job carries one request from api_handle (loop) through work_fn (run by
 * the readpool on a pool thread: it touches no libuv handle and no
 * http_request, only the job and its read-only connection) to done_fn
 * (loop), which answers and frees the job. */
#include "api.h"

#include <arpa/inet.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "error.h"
#include "log.h"
#include "query.h"
#include "sesrep.h"
#include "suppression.h"
#include "util.h"

#define BODY_MAX (32u << 20) /* the largest answer built */
#define NO_STORE "Cache-Control: no-store\r\n"

struct api {
  readpool *rp; /* borrowed: runs the queries */
  struct api_opts opts;
};

enum job_kind { J_EVENTS, J_MESSAGE, J_RECIPIENT, J_STATS, J_TIMESERIES };

/* One API request on its way through the pool. */
typedef struct job {
  api *a;
  http_request *req; /* read and answered on the loop only */
  enum job_kind kind;
  query_filter f;             /* events, message, recipient */
  char key[QUERY_VALUE_MAX];  /* the messageId or address of the path */
  char window[32];            /* stats: the window as asked */
  int64_t now_ms;             /* when the request was parsed */
  int64_t span_ms;            /* stats: the window; timeseries: the bucket */
  int64_t since_ms, until_ms; /* timeseries */
  char bucket[32];            /* timeseries: the bucket as asked */
  char mon_state[2][8];       /* stats: the live monitors' states, or "" */
  double mon_value[2];        /* ... and the rates they judged */
  char *aws;                  /* stats: the "aws" object, built on the loop, or NULL */
  int aws_source;             /* timeseries: source=aws */
  /* the answer, filled on the pool */
  int status;
  buf body;             /* JSON when status is 200 */
  const char *err_code; /* else the error body's code ... */
  char err_msg[256];    /* ... and message */
  long items;           /* rows written so far */
} job;

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

/* ---- on the pool ------------------------------------------------------ */

static void fail(job *j, int status, const char *code, const char *msg) {
  j->status = status;
  j->err_code = code;
  snprintf(j->err_msg, sizeof j->err_msg, "%s", msg);
}

/* Sets the error answer of a failed query (the cause is logged where the
 * connection is at hand). */
static void fail_query(job *j, int rc) {
  if (rc == SL_EBUSY) {
    char msg[256];
    snprintf(msg, sizeof msg,
             "The query did not finish within %lld ms; narrow it with since and until or a more "
             "specific filter.",
             (long long)j->a->opts.query_timeout_ms);
    fail(j, 503, "query_timeout", msg);
  } else if (rc == SL_ETOOBIG) {
    fail(j, 500, "too_large", "The answer would be too large; ask for a smaller limit.");
  } else if (rc == SL_ESHUTDOWN) {
    fail(j, 503, "shutting_down", "The server is stopping.");
  } else {
    fail(j, 500, "database_error", "The database could not answer this query; see the log.");
  }
}

/* Appends one event to the list being built. */
static int add_row(void *ud, const query_row *row) {
  job *j = ud;
  int rc = j->items++ ? buf_append(&j->body, ",", 1) : 0;
  if (!rc) rc = query_row_json(&j->body, row);
  return rc ? 1 : 0;
}

/* Builds the answer of an events, message or recipient job: the page, its
 * nextCursor, the 404 of an unknown messageId. Returns 0 with j->status
 * set, or the query's error (SL_ETOOBIG when the body would pass
 * BODY_MAX). */
static int run_events(job *j, sqlite3 *db) {
  buf *b = &j->body;
  char next[QUERY_CURSOR_MAX];
  int rc = 0;
  if (j->kind == J_EVENTS) {
    rc = buf_appends(b, "{\"items\":[");
  } else if (j->kind == J_MESSAGE) {
    rc = buf_appends(b, "{\"messageId\":");
    if (!rc) rc = query_json_string(b, j->key);
    if (!rc) rc = buf_appends(b, ",\"items\":[");
  } else {
    rc = buf_appends(b, "{\"address\":");
    if (!rc) rc = query_json_string(b, j->key);
    if (!rc) rc = buf_appends(b, ",\"events\":[");
  }
  if (rc) return rc;
  long rows = 0;
  rc = query_events(db, &j->f, j->kind == J_MESSAGE, add_row, j, next, &rows);
  if (rc) return rc;
  if (rows < j->items) return SL_ETOOBIG; /* add_row stopped: the body is full */
  if (j->kind == J_MESSAGE && rows == 0 && !j->f.cursor_id) {
    fail(j, 404, "not_found", "No event of this messageId is stored.");
    return 0;
  }
  rc = buf_appends(b, "],");
  /* The address's suppression entry (or null), read in the same
   * connection as its events. */
  if (!rc && j->kind == J_RECIPIENT) {
    rc = buf_appends(b, "\"suppression\":");
    if (!rc) rc = suppression_entry_json(db, j->key, b);
    if (!rc) rc = buf_appends(b, ",");
  }
  if (!rc) rc = buf_appends(b, "\"nextCursor\":");
  if (!rc) rc = next[0] ? query_json_string(b, next) : buf_appends(b, "null");
  if (!rc) rc = buf_appends(b, "}");
  if (!rc) j->status = 200;
  return rc;
}

/* Appends "sends":N,...,"complaintRate":x (the rate definitions of
 * query.h) without braces. */
static int add_rates(buf *b, const struct query_counts *k) {
  int rc = buf_printf(b, "\"sends\":%lld,\"deliveries\":%lld,\"bounces\":%lld,",
                      (long long)query_sends(k), (long long)k->deliveries, (long long)k->bounces);
  if (!rc)
    rc = buf_printf(b, "\"permanentBounces\":%lld,\"complaints\":%lld,\"bounceRate\":",
                    (long long)k->permanent_bounces, (long long)k->complaints);
  if (!rc) rc = query_json_double(b, query_bounce_rate(k));
  if (!rc) rc = buf_appends(b, ",\"complaintRate\":");
  if (!rc) rc = query_json_double(b, query_complaint_rate(k));
  return rc;
}

/* {"state":...,"value":x,"warn":x,"alert":x}: the live monitor's state
 * and value when given (live non-empty), else value compared with the
 * thresholds. */
static int add_monitor(buf *b, const char *live, double live_value, double value, double warn,
                       double alert) {
  const char *state = value >= alert ? "alert" : value >= warn ? "warn" : "ok";
  if (live && *live) {
    state = live;
    value = live_value;
  }
  int rc = buf_printf(b, "{\"state\":\"%s\",\"value\":", state);
  if (!rc) rc = query_json_double(b, value);
  if (!rc) rc = buf_appends(b, ",\"warn\":");
  if (!rc) rc = query_json_double(b, warn);
  if (!rc) rc = buf_appends(b, ",\"alert\":");
  if (!rc) rc = query_json_double(b, alert);
  if (!rc) rc = buf_appends(b, "}");
  return rc;
}

static int64_t floor_minute(int64_t ms) {
  return ms >= 0 ? ms / 60000 : (ms - 59999) / 60000;
}

/* Builds the /api/stats answer from the rollups of the window. Returns 0
 * with j->status set, or the query's error. */
static int run_stats(job *j, sqlite3 *db) {
  /* The minutes that overlap [now - window, now]. */
  int64_t from = floor_minute(j->now_ms - j->span_ms), to = floor_minute(j->now_ms);
  struct query_counts k;
  int rc = query_rollup_sum(db, from, to, &k);
  if (rc) return rc;
  char since[25], until[25];
  util_format_iso8601(from * 60000, since);
  util_format_iso8601(j->now_ms, until);
  const struct api_opts *o = &j->a->opts;
  buf *b = &j->body;
  rc = buf_appends(b, "{\"window\":");
  if (!rc) rc = query_json_string(b, j->window);
  if (!rc) rc = buf_printf(b, ",\"since\":\"%s\",\"until\":\"%s\",", since, until);
  if (!rc) rc = add_rates(b, &k);
  if (!rc) rc = buf_appends(b, ",\"monitors\":{\"bounceRate\":");
  if (!rc)
    rc = add_monitor(b, j->mon_state[0], j->mon_value[0], query_bounce_rate(&k), o->bounce_warn,
                     o->bounce_alert);
  if (!rc) rc = buf_appends(b, ",\"complaintRate\":");
  if (!rc)
    rc = add_monitor(b, j->mon_state[1], j->mon_value[1], query_complaint_rate(&k),
                     o->complaint_warn, o->complaint_alert);
  if (!rc) rc = buf_appends(b, "}");
  if (!rc && j->aws) rc = buf_printf(b, ",\"aws\":%s", j->aws);
  if (!rc) rc = buf_appends(b, "}");
  if (!rc) j->status = 200;
  return rc;
}

/* /api/timeseries?source=aws: AWS's stored reputation samples, averaged
 * per bucket (null where AWS gave no point). */
static int run_aws_series(job *j, sqlite3 *db) {
  int64_t start = j->since_ms / j->span_ms * j->span_ms;
  if (start > j->since_ms) start -= j->span_ms;
  char since[25], until[25];
  util_format_iso8601(j->since_ms, since);
  util_format_iso8601(j->until_ms, until);
  buf *b = &j->body;
  int rc = buf_appends(b, "{\"bucket\":");
  if (!rc) rc = query_json_string(b, j->bucket);
  if (!rc)
    rc = buf_printf(b, ",\"since\":\"%s\",\"until\":\"%s\",\"source\":\"aws\",", since, until);
  if (!rc) rc = sesrep_series(db, start, j->until_ms, j->span_ms, b);
  if (!rc) rc = buf_appends(b, "}");
  if (!rc) j->status = 200;
  return rc;
}

/* Builds the /api/timeseries answer: one point per bucket, zeros where no
 * event fell. Returns 0 with j->status set, or the query's error. */
static int run_timeseries(job *j, sqlite3 *db) {
  if (j->aws_source) return run_aws_series(j, db);
  int64_t start;
  struct query_counts *pts;
  size_t n;
  int rc = query_timeseries(db, j->since_ms, j->until_ms, j->span_ms, &start, &pts, &n);
  if (rc) return rc;
  char since[25], until[25];
  util_format_iso8601(j->since_ms, since);
  util_format_iso8601(j->until_ms, until);
  buf *b = &j->body;
  rc = buf_appends(b, "{\"bucket\":");
  if (!rc) rc = query_json_string(b, j->bucket);
  if (!rc) rc = buf_printf(b, ",\"since\":\"%s\",\"until\":\"%s\",\"points\":[", since, until);
  for (size_t i = 0; i < n && !rc; i++) {
    char t[25];
    util_format_iso8601(start + (int64_t)i * j->span_ms, t);
    rc = buf_printf(b, "%s{\"t\":\"%s\",", i ? "," : "", t);
    if (!rc) rc = add_rates(b, &pts[i]);
    if (!rc) rc = buf_appends(b, "}");
  }
  free(pts);
  if (!rc) rc = buf_appends(b, "]}");
  if (!rc) j->status = 200;
  return rc;
}

/* The pool thread: runs the job's query; touches only j and db. */
static int work_fn(sqlite3 *db, void *arg) {
  job *j = arg;
  int rc;
  switch (j->kind) {
    case J_STATS: rc = run_stats(j, db); break;
    case J_TIMESERIES: rc = run_timeseries(j, db); break;
    default: rc = run_events(j, db);
  }
  if (rc == SL_EDB) log_kv(LOG_ERROR, "query failed", "error", sqlite3_errmsg(db), NULL);
  return rc;
}

/* The loop: answers and frees the job. */
static void done_fn(void *arg, int rc) {
  job *j = arg;
  if (rc || !j->status) fail_query(j, rc ? rc : SL_EDB);
  if (j->status == 200)
    http_respond(j->req, 200, "application/json", NO_STORE, j->body.data ? j->body.data : "{}",
                 j->body.len);
  else
    http_respond_error(j->req, j->status, j->err_code, j->err_msg);
  buf_free(&j->body);
  free(j->aws);
  free(j);
}

/* ---- on the loop: parameters ------------------------------------------ */

/* Calls set(j, name, value, err) for each parameter of the query string,
 * after checking that every name is one of allowed (a space-separated
 * list) and given once. On a bad one answers 400 naming it and returns
 * SL_EINVAL. */
static int each_param(job *j, const char *allowed,
                      int (*set)(job *j, const char *name, const char *v, char *err, size_t n)) {
  const char *s = j->req->query ? j->req->query : "";
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
      http_respond_error(j->req, 400, "invalid_parameter", msg);
      return SL_EINVAL;
    }
    for (const char *p = j->req->query; p < s;) { /* given before? */
      const char *a2 = strchr(p, '&');
      size_t n2 = a2 ? (size_t)(a2 - p) : strlen(p);
      const char *e2 = memchr(p, '=', n2);
      size_t k2 = e2 ? (size_t)(e2 - p) : n2;
      if (k2 == kl && memcmp(p, s, kl) == 0) {
        snprintf(msg, sizeof msg, "Parameter \"%s\" is given more than once.", name);
        http_respond_error(j->req, 400, "invalid_parameter", msg);
        return SL_EINVAL;
      }
      p += n2 + (a2 ? 1 : 0);
    }
    char v[QUERY_VALUE_MAX + 1];
    if (http_query_param(j->req, name, v, sizeof v) < 0) {
      snprintf(msg, sizeof msg, "Parameter \"%s\" is too long or badly percent-encoded.", name);
      http_respond_error(j->req, 400, "invalid_parameter", msg);
      return SL_EINVAL;
    }
    if (set(j, name, v, err, sizeof err)) {
      snprintf(msg, sizeof msg, "Parameter \"%s\" %s.", name, err);
      http_respond_error(j->req, 400, "invalid_parameter", msg);
      return SL_EINVAL;
    }
    s = next;
  }
  return 0;
}

static int set_filter(job *j, const char *name, const char *v, char *err, size_t n) {
  char fixed[QUERY_VALUE_MAX + 1];
  if (strcmp(name, "address") == 0 && strchr(v, ' ')) {
    /* An unencoded '+' (a+tag@example.com) arrives as a space, and an
     * address has no spaces: give the plus back. */
    snprintf(fixed, sizeof fixed, "%s", v);
    char *p = fixed;
    while (*p == ' ') p++;
    memmove(fixed, p, strlen(p) + 1);
    size_t len = strlen(fixed);
    while (len && fixed[len - 1] == ' ') fixed[--len] = 0;
    for (p = fixed; *p; p++)
      if (*p == ' ') *p = '+';
    v = fixed;
  }
  return query_filter_set(&j->f, name, v, j->now_ms, QUERY_LIMIT_MAX, err, n) ? SL_EINVAL : 0;
}

static int set_stats(job *j, const char *name, const char *v, char *err, size_t n) {
  /* name is "window" */
  if (!*v) return 0;
  int64_t ms;
  if (util_parse_duration(v, &ms) || ms <= 0 || ms > 400LL * 86400000) {
    snprintf(err, n, "must be a duration like 10m, 24h or 30d (at most 400d)");
    return SL_EINVAL;
  }
  if (strlen(v) >= sizeof j->window) {
    snprintf(err, n, "is too long");
    return SL_EINVAL;
  }
  snprintf(j->window, sizeof j->window, "%s", v);
  j->span_ms = ms;
  return 0;
}

static int set_timeseries(job *j, const char *name, const char *v, char *err, size_t n) {
  if (!*v) return 0;
  if (strcmp(name, "source") == 0) {
    if (strcmp(v, "seslog") && strcmp(v, "aws")) {
      snprintf(err, n, "must be seslog or aws");
      return SL_EINVAL;
    }
    if (v[0] == 'a' && !j->a->opts.aws_series) {
      snprintf(err, n,
               "is aws, but AWS's reputation is not watched (seslog serve --ses-reputation)");
      return SL_EINVAL;
    }
    j->aws_source = v[0] == 'a';
    return 0;
  }
  if (strcmp(name, "bucket") == 0) {
    int64_t ms;
    if (util_parse_duration(v, &ms) || ms < 60000 || ms % 60000 || ms > 366LL * 86400000 ||
        strlen(v) >= sizeof j->bucket) {
      snprintf(err, n, "must be 1m, 1h or 1d (or another whole number of minutes)");
      return SL_EINVAL;
    }
    snprintf(j->bucket, sizeof j->bucket, "%s", v);
    j->span_ms = ms;
    return 0;
  }
  int64_t ms;
  if (query_parse_time(v, j->now_ms, &ms, err, n)) return SL_EINVAL;
  if (name[0] == 's')
    j->since_ms = ms;
  else
    j->until_ms = ms;
  return 0;
}

static const char events_params[] =
    "type bounceType feedbackType address domain source messageId since until limit cursor order";

/* Parses the request into j; answers 400 itself and returns SL_EINVAL on a
 * bad parameter. */
static int parse(job *j) {
  char msg[256];
  switch (j->kind) {
    case J_EVENTS: return each_param(j, events_params, set_filter);
    case J_MESSAGE:
      j->f.asc = 1;
      j->f.limit = QUERY_LIMIT_MAX;
      snprintf(j->f.message_id, sizeof j->f.message_id, "%s", j->key);
      return each_param(j, "limit cursor order", set_filter);
    case J_RECIPIENT:
      j->f.limit = QUERY_LIMIT_MAX;
      snprintf(j->f.address, sizeof j->f.address, "%s", j->key);
      return each_param(
          j, "type bounceType feedbackType source messageId since until limit cursor order",
          set_filter);
    case J_STATS: {
      /* The monitors' window by default (10 minutes unless configured). */
      int64_t w = j->a->opts.monitor_window_ms > 0 ? j->a->opts.monitor_window_ms : 600000;
      static const struct {
        int64_t ms;
        const char *unit;
      } units[] = {{86400000, "d"}, {3600000, "h"}, {60000, "m"}, {1000, "s"}, {1, "ms"}};
      size_t u = 0;
      while (w % units[u].ms) u++;
      snprintf(j->window, sizeof j->window, "%lld%s", (long long)(w / units[u].ms), units[u].unit);
      j->span_ms = w;
      return each_param(j, "window", set_stats);
    }
    case J_TIMESERIES: {
      snprintf(j->bucket, sizeof j->bucket, "1h");
      j->span_ms = 3600000;
      j->until_ms = j->now_ms;
      j->since_ms = INT64_MIN;
      if (each_param(j, "since until bucket source", set_timeseries)) return SL_EINVAL;
      if (j->since_ms == INT64_MIN) j->since_ms = j->until_ms - 86400000;
      if (j->since_ms > j->until_ms) {
        http_respond_error(j->req, 400, "invalid_parameter",
                           "Parameter \"since\" is after \"until\": the range is empty.");
        return SL_EINVAL;
      }
      int64_t start = j->since_ms / j->span_ms * j->span_ms;
      if (start > j->since_ms) start -= j->span_ms;
      int64_t points = (j->until_ms - start + j->span_ms - 1) / j->span_ms;
      if (points > QUERY_MAX_POINTS) {
        snprintf(msg, sizeof msg,
                 "Parameter \"bucket\" gives %lld points over this range; at most %d: choose a "
                 "larger bucket or a shorter range.",
                 (long long)points, QUERY_MAX_POINTS);
        http_respond_error(j->req, 400, "invalid_parameter", msg);
        return SL_EINVAL;
      }
      return 0;
    }
  }
  return 0;
}

/* The path's last segment after prefix, trimmed and, for addresses, lower
 * case; "" when empty. */
static int path_key(const char *path, const char *prefix, char *out, size_t n) {
  const char *s = path + strlen(prefix);
  while (*s == ' ') s++;
  size_t len = strlen(s);
  while (len && s[len - 1] == ' ') len--;
  if (len >= n) return SL_EINVAL;
  memcpy(out, s, len);
  out[len] = 0;
  return 0;
}

int api_handle(api *a, http_request *req) {
  enum job_kind kind;
  const char *p = req->path;
  if (strcmp(p, "/api/events") == 0)
    kind = J_EVENTS;
  else if (strncmp(p, "/api/events/", 12) == 0)
    kind = J_MESSAGE;
  else if (strncmp(p, "/api/recipients/", 16) == 0)
    kind = J_RECIPIENT;
  else if (strcmp(p, "/api/stats") == 0)
    kind = J_STATS;
  else if (strcmp(p, "/api/timeseries") == 0)
    kind = J_TIMESERIES;
  else
    return SL_EINVAL;
  if (readpool_active(a->rp) >= a->opts.max_pending) {
    http_respond_error_ex(req, 503, "busy", "Too many queries are waiting; try again shortly.",
                          "Retry-After: 1\r\n");
    return 0;
  }
  job *j = calloc(1, sizeof *j);
  if (!j) {
    http_respond_error(req, 503, "out_of_memory", "The server is out of memory.");
    return 0;
  }
  j->a = a;
  j->req = req;
  j->kind = kind;
  j->now_ms = util_now_ms();
  buf_init(&j->body, BODY_MAX);
  query_filter_init(&j->f);
  if (kind == J_MESSAGE || kind == J_RECIPIENT) {
    const char *prefix = kind == J_MESSAGE ? "/api/events/" : "/api/recipients/";
    size_t cap = kind == J_MESSAGE ? sizeof j->f.message_id : sizeof j->f.address;
    if (path_key(p, prefix, j->key, cap) || !j->key[0]) {
      http_respond_error(req, 400, "invalid_parameter",
                         kind == J_MESSAGE ? "Name a messageId: /api/events/{messageId}."
                                           : "Name an address: /api/recipients/{address}.");
      free(j);
      return 0;
    }
    if (kind == J_RECIPIENT) util_ascii_lower(j->key);
  }
  if (parse(j)) {
    free(j);
    return 0;
  }
  if (kind == J_STATS && a->opts.monitor_reading && j->span_ms == a->opts.monitor_window_ms) {
    for (int k = 0; k < 2; k++)
      if (!a->opts.monitor_reading(a->opts.monitor_ud, k, j->mon_state[k], &j->mon_value[k]))
        j->mon_state[k][0] = 0;
  }
  if (kind == J_STATS && a->opts.aws_json) {
    buf aws;
    buf_init(&aws, 1 << 20);
    a->opts.aws_json(a->opts.monitor_ud, &aws);
    j->aws = buf_take(&aws);
  }
  if (readpool_run(a->rp, work_fn, done_fn, j)) {
    http_respond_error(req, 503, "busy", "The query could not be queued; try again shortly.");
    free(j->aws);
    free(j);
  }
  return 0;
}
