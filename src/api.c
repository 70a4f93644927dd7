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

enum job_kind { J_EVENTS, J_MESSAGE, J_RECIPIENT, J_STATS, J_TIMESERIES, J_COUNTS };

#define COUNTS_LIMIT_DEFAULT 1000 /* groups of /api/events/counts by default */

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
  int64_t since_ms, until_ms; /* timeseries; stats with an explicit range */
  char bucket[32];            /* timeseries: the bucket as asked */
  /* stats: the live monitors (state "" = none) */
  struct api_monitor_live mon[2];
  /* stats: what the range is: the window back from now, since/until as
   * given, or (nothing asked, nothing recent) the stored data's range */
  enum { R_WINDOW, R_EXPLICIT, R_DATA } range;
  int window_given;        /* stats: window= was in the query */
  query_grouping grouping; /* counts: the groupBy fields */
  long max_groups;         /* counts: groups at most */
  int full;                /* counts: the answer outgrew BODY_MAX */
  char *aws;               /* stats: the "aws" object, built on the loop, or NULL */
  int aws_source;          /* timeseries: source=aws */
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
 * and value when given (live->state non-empty, with "windowMs" and
 * "present": false when it judged old events only), else value compared
 * with the thresholds. */
static int add_monitor(buf *b, const struct api_monitor_live *live, double value, double warn,
                       double alert) {
  const char *state = value >= alert ? "alert" : value >= warn ? "warn" : "ok";
  int rc = 0;
  if (live && live->state[0]) {
    state = live->state;
    value = live->value;
    rc = buf_printf(b, "{\"windowMs\":%lld,\"present\":%s,", (long long)live->window_ms,
                    live->present ? "true" : "false");
  } else {
    rc = buf_appends(b, "{");
  }
  if (!rc) rc = buf_printf(b, "\"state\":\"%s\",\"value\":", state);
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

/* Builds the /api/stats answer from the rollups of the range: the window
 * back from now, since/until as given, or, when nothing was asked and the
 * default window holds no event, the whole range of the stored data (an
 * imported archive lives in the past; the monitors then still show the
 * live verdict, with the window it used). Returns 0 with j->status set,
 * or the query's error. */
static int run_stats(job *j, sqlite3 *db) {
  /* The minutes that overlap [now - window, now], or [since, until). */
  int64_t from = floor_minute(j->now_ms - j->span_ms), to = floor_minute(j->now_ms);
  int64_t until_ms = j->now_ms;
  if (j->range == R_EXPLICIT) {
    from = floor_minute(j->since_ms);
    to = floor_minute(j->until_ms - 1);
    until_ms = j->until_ms;
  }
  struct query_counts k;
  int rc = query_rollup_sum(db, from, to, &k);
  int64_t first = 0, last = 0;
  int found = 0;
  if (!rc) rc = query_data_range(db, &first, &last, &found);
  if (rc) return rc;
  if (j->range == R_WINDOW && !j->window_given && k.events == 0 && found) {
    j->range = R_DATA;
    from = first;
    to = last;
    until_ms = (last + 1) * 60000;
    if ((rc = query_rollup_sum(db, from, to, &k))) return rc;
  }
  char since[25], until[25];
  util_format_iso8601(from * 60000, since);
  util_format_iso8601(until_ms, until);
  const struct api_opts *o = &j->a->opts;
  buf *b = &j->body;
  rc = buf_appends(b, "{\"window\":");
  if (!rc) rc = j->range == R_WINDOW ? query_json_string(b, j->window) : buf_appends(b, "null");
  if (!rc) rc = buf_printf(b, ",\"since\":\"%s\",\"until\":\"%s\",", since, until);
  if (!rc) rc = add_rates(b, &k);
  if (!rc) rc = buf_appends(b, ",\"monitors\":{\"bounceRate\":");
  if (!rc) rc = add_monitor(b, &j->mon[0], query_bounce_rate(&k), o->bounce_warn, o->bounce_alert);
  if (!rc) rc = buf_appends(b, ",\"complaintRate\":");
  if (!rc)
    rc =
        add_monitor(b, &j->mon[1], query_complaint_rate(&k), o->complaint_warn, o->complaint_alert);
  static const char *const ranges[] = {"window", "explicit", "data"};
  if (!rc)
    rc =
        buf_printf(b, "},\"events\":%lld,\"range\":\"%s\",", (long long)k.events, ranges[j->range]);
  if (!rc && found) {
    char d0[25], d1[25];
    util_format_iso8601(first * 60000, d0);
    util_format_iso8601((last + 1) * 60000, d1);
    rc = buf_printf(b, "\"dataSince\":\"%s\",\"dataUntil\":\"%s\"", d0, d1);
  } else if (!rc) {
    rc = buf_appends(b, "\"dataSince\":null,\"dataUntil\":null");
  }
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

/* Appends one group: {"key":{FIELD:value,...},"count":N}. */
static int add_group(void *ud, const char *const *keys, int64_t count) {
  job *j = ud;
  buf *b = &j->body;
  int rc = buf_appends(b, j->items++ ? ",{\"key\":{" : "{\"key\":{");
  for (int i = 0; i < j->grouping.n && !rc; i++) {
    rc = i ? buf_appends(b, ",") : 0;
    if (!rc) rc = query_json_string(b, j->grouping.name[i]);
    if (!rc) rc = buf_appends(b, ":");
    if (!rc) rc = query_json_string(b, keys[i]);
  }
  if (!rc) rc = buf_printf(b, "},\"count\":%lld}", (long long)count);
  if (rc) j->full = 1;
  return rc ? 1 : 0;
}

/* Builds the /api/events/counts answer. Returns 0 with j->status set, or
 * the query's error. */
static int run_counts(job *j, sqlite3 *db) {
  buf *b = &j->body;
  int rc = buf_appends(b, "{\"groupBy\":[");
  for (int i = 0; i < j->grouping.n && !rc; i++) {
    rc = i ? buf_appends(b, ",") : 0;
    if (!rc) rc = query_json_string(b, j->grouping.name[i]);
  }
  if (!rc) rc = buf_appends(b, "],\"groups\":[");
  if (rc) return rc;
  int more = 0;
  rc = query_group_counts(db, &j->f, &j->grouping, j->max_groups, add_group, j, &more);
  if (rc) return rc;
  if (j->full) return SL_ETOOBIG; /* add_group stopped: the body is full */
  rc = buf_printf(b, "],\"more\":%s}", more ? "true" : "false");
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
    case J_COUNTS: rc = run_counts(j, db); break;
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
    http_respond_buf(j->req, 200, "application/json", NO_STORE, &j->body);
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
      /* type may repeat: any of the types given matches. */
      if (k2 == kl && memcmp(p, s, kl) == 0 && strcmp(name, "type") != 0) {
        snprintf(msg, sizeof msg, "Parameter \"%s\" is given more than once.", name);
        http_respond_error(j->req, 400, "invalid_parameter", msg);
        return SL_EINVAL;
      }
      p += n2 + (a2 ? 1 : 0);
    }
    char v[QUERY_VALUE_MAX + 1];
    /* This occurrence's value (type may come several times). */
    if (http_query_decode(eq ? eq + 1 : s + n, eq ? n - kl - 1 : 0, v, sizeof v) < 0) {
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
  if (!*v) return 0;
  if (strcmp(name, "window") != 0) { /* since or until: an explicit range */
    int64_t ms;
    if (query_parse_time(v, j->now_ms, &ms, err, n)) return SL_EINVAL;
    if (name[0] == 's')
      j->since_ms = ms;
    else
      j->until_ms = ms;
    j->range = R_EXPLICIT;
    return 0;
  }
  j->window_given = 1;
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
    "type bounceType feedbackType address domain source messageId since until limit cursor order "
    "bounceSubType diagnostic configurationSet tag senderDomain";

/* counts: groupBy and limit (groups at most) are its own; the rest filter. */
static int set_counts(job *j, const char *name, const char *v, char *err, size_t n) {
  if (strcmp(name, "groupBy") == 0) return query_grouping_parse(v, &j->grouping, err, n);
  if (strcmp(name, "limit") == 0) {
    char *end;
    long x = strtol(v, &end, 10);
    if (!*v || *end || x < 1 || x > QUERY_GROUPS_MAX) {
      snprintf(err, n, "must be a whole number from 1 to %d (groups at most)", QUERY_GROUPS_MAX);
      return SL_EINVAL;
    }
    j->max_groups = x;
    return 0;
  }
  return set_filter(j, name, v, err, n);
}

/* Parses the request into j; answers 400 itself and returns SL_EINVAL on a
 * bad parameter. */
static int parse(job *j) {
  char msg[256];
  switch (j->kind) {
    case J_EVENTS: return each_param(j, events_params, set_filter);
    case J_COUNTS:
      j->max_groups = COUNTS_LIMIT_DEFAULT;
      if (each_param(j,
                     "groupBy limit type bounceType feedbackType address domain source messageId "
                     "since until bounceSubType diagnostic configurationSet tag senderDomain",
                     set_counts))
        return SL_EINVAL;
      if (!j->grouping.n) {
        http_respond_error(j->req, 400, "invalid_parameter",
                           "Parameter \"groupBy\" is needed: one to three of day, hour, type, "
                           "domain, bounceType, bounceSubType, diagnostic, source, "
                           "configurationSet, tag:NAME, comma-separated.");
        return SL_EINVAL;
      }
      return 0;
    case J_MESSAGE:
      j->f.asc = 1;
      j->f.limit = QUERY_LIMIT_MAX;
      snprintf(j->f.message_id, sizeof j->f.message_id, "%s", j->key);
      return each_param(j, "limit cursor order", set_filter);
    case J_RECIPIENT:
      j->f.limit = QUERY_LIMIT_MAX;
      snprintf(j->f.address, sizeof j->f.address, "%s", j->key);
      return each_param(j,
                        "type bounceType feedbackType source messageId since until limit cursor "
                        "order bounceSubType diagnostic configurationSet tag senderDomain",
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
      j->since_ms = INT64_MIN;
      j->until_ms = INT64_MIN;
      if (each_param(j, "window since until", set_stats)) return SL_EINVAL;
      if (j->range != R_EXPLICIT) return 0;
      if (j->window_given) {
        http_respond_error(j->req, 400, "invalid_parameter",
                           "Parameter \"window\" and since/until both give the range: use one.");
        return SL_EINVAL;
      }
      if (j->until_ms == INT64_MIN) j->until_ms = j->now_ms;
      if (j->since_ms == INT64_MIN) j->since_ms = j->until_ms - w;
      if (j->since_ms >= j->until_ms) {
        http_respond_error(j->req, 400, "invalid_parameter",
                           "Parameter \"since\" is not before \"until\": the range is empty.");
        return SL_EINVAL;
      }
      return 0;
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
  else if (strcmp(p, "/api/events/counts") == 0)
    kind = J_COUNTS;
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
  if (kind == J_STATS && j->range == R_WINDOW && a->opts.monitor_reading &&
      j->span_ms == a->opts.monitor_window_ms) {
    for (int k = 0; k < 2; k++)
      if (!a->opts.monitor_reading(a->opts.monitor_ud, k, &j->mon[k])) j->mon[k].state[0] = 0;
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
