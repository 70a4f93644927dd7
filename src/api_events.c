/* api_events.c - the query endpoints: GET /api/events,
 * /api/events/counts, /api/events/{messageId}, /api/recipients/{address},
 * /api/stats and /api/timeseries (CONTRACT section 5). Parameters are
 * checked on the loop; the query runs on the readpool. */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "error.h"
#include "log.h"
#include "query.h"
#include "sesrep.h"
#include "suppression.h"
#include "util.h"

#define BODY_MAX (32u << 20) /* the largest answer built */
#define NO_STORE "Cache-Control: no-store\r\n"

enum job_kind { J_EVENTS, J_MESSAGE, J_RECIPIENT, J_STATS, J_TIMESERIES, J_COUNTS };

#define COUNTS_LIMIT_DEFAULT 1000 /* groups of /api/events/counts by default */

/* One API request on its way through the pool. */
typedef struct job {
  api_job base; /* the request and its answer */
  api *a;
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
  long items;              /* rows written so far */
} job;

/* ---- on the pool ------------------------------------------------------ */

/* Appends one event to the list being built. */
static int add_row(void *ud, const query_row *row) {
  job *j = ud;
  int rc = j->items++ ? buf_append(&j->base.body, ",", 1) : 0;
  if (!rc) rc = query_row_json(&j->base.body, row);
  return rc ? 1 : 0;
}

/* Builds the answer of an events, message or recipient job: the page, its
 * nextCursor, the 404 of an unknown messageId. Returns 0 with j->base.status
 * set, or the query's error (SL_ETOOBIG when the body would pass
 * BODY_MAX). */
static int run_events(job *j, sqlite3 *db) {
  buf *b = &j->base.body;
  char next[QUERY_CURSOR_MAX];
  int rc = 0;
  if (j->kind == J_EVENTS) {
    rc = buf_appends(b, "{\"items\":[");
  } else if (j->kind == J_MESSAGE) {
    rc = buf_appends(b, "{\"messageId\":");
    if (!rc) rc = buf_json_string(b, j->key);
    if (!rc) rc = buf_appends(b, ",\"items\":[");
  } else {
    rc = buf_appends(b, "{\"address\":");
    if (!rc) rc = buf_json_string(b, j->key);
    if (!rc) rc = buf_appends(b, ",\"events\":[");
  }
  if (rc) return rc;
  long rows = 0;
  rc = query_events(db, &j->f, j->kind == J_MESSAGE, add_row, j, next, &rows);
  if (rc) return rc;
  if (rows < j->items) return SL_ETOOBIG; /* add_row stopped: the body is full */
  if (j->kind == J_MESSAGE && rows == 0 && !j->f.cursor_id) {
    api_job_fail(&j->base, 404, "not_found", "No event of this messageId is stored.");
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
  if (!rc) rc = next[0] ? buf_json_string(b, next) : buf_appends(b, "null");
  if (!rc) rc = buf_appends(b, "}");
  if (!rc) j->base.status = 200;
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
 * live verdict, with the window it used). Returns 0 with j->base.status set,
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
  const struct api_opts *o = api_options(j->a);
  buf *b = &j->base.body;
  rc = buf_appends(b, "{\"window\":");
  if (!rc) rc = j->range == R_WINDOW ? buf_json_string(b, j->window) : buf_appends(b, "null");
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
  if (!rc) j->base.status = 200;
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
  buf *b = &j->base.body;
  int rc = buf_appends(b, "{\"bucket\":");
  if (!rc) rc = buf_json_string(b, j->bucket);
  if (!rc)
    rc = buf_printf(b, ",\"since\":\"%s\",\"until\":\"%s\",\"source\":\"aws\",", since, until);
  if (!rc) rc = sesrep_series(db, start, j->until_ms, j->span_ms, b);
  if (!rc) rc = buf_appends(b, "}");
  if (!rc) j->base.status = 200;
  return rc;
}

/* Builds the /api/timeseries answer: one point per bucket, zeros where no
 * event fell. Returns 0 with j->base.status set, or the query's error. */
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
  buf *b = &j->base.body;
  rc = buf_appends(b, "{\"bucket\":");
  if (!rc) rc = buf_json_string(b, j->bucket);
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
  if (!rc) j->base.status = 200;
  return rc;
}

/* Appends one group: {"key":{FIELD:value,...},"count":N}. */
static int add_group(void *ud, const char *const *keys, int64_t count) {
  job *j = ud;
  buf *b = &j->base.body;
  int rc = buf_appends(b, j->items++ ? ",{\"key\":{" : "{\"key\":{");
  for (int i = 0; i < j->grouping.n && !rc; i++) {
    rc = i ? buf_appends(b, ",") : 0;
    if (!rc) rc = buf_json_string(b, j->grouping.name[i]);
    if (!rc) rc = buf_appends(b, ":");
    if (!rc) rc = buf_json_string(b, keys[i]);
  }
  if (!rc) rc = buf_printf(b, "},\"count\":%lld}", (long long)count);
  if (rc) j->full = 1;
  return rc ? 1 : 0;
}

/* Builds the /api/events/counts answer. Returns 0 with j->base.status set, or
 * the query's error. */
static int run_counts(job *j, sqlite3 *db) {
  buf *b = &j->base.body;
  int rc = buf_appends(b, "{\"groupBy\":[");
  for (int i = 0; i < j->grouping.n && !rc; i++) {
    rc = i ? buf_appends(b, ",") : 0;
    if (!rc) rc = buf_json_string(b, j->grouping.name[i]);
  }
  if (!rc) rc = buf_appends(b, "],\"groups\":[");
  if (rc) return rc;
  int more = 0;
  rc = query_group_counts(db, &j->f, &j->grouping, j->max_groups, add_group, j, &more);
  if (rc) return rc;
  if (j->full) return SL_ETOOBIG; /* add_group stopped: the body is full */
  rc = buf_printf(b, "],\"more\":%s}", more ? "true" : "false");
  if (!rc) j->base.status = 200;
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

static void job_free(job *j) {
  buf_free(&j->base.body);
  free(j->aws);
  free(j);
}

/* The loop: answers and frees the job. */
static void done_fn(void *arg, int rc) {
  job *j = arg;
  if (rc) api_job_fail_rc(&j->base, rc);
  api_job_finish(&j->base);
  job_free(j);
}

/* ---- on the loop: parameters ------------------------------------------ */

static int each_param(job *j, const char *allowed,
                      int (*set)(void *ud, const char *name, const char *v, char *err, size_t n)) {
  return api_each_param(j->base.req, allowed, set, j);
}

static int set_filter(void *ud, const char *name, const char *v, char *err, size_t n) {
  job *j = ud;
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

static int set_stats(void *ud, const char *name, const char *v, char *err, size_t n) {
  job *j = ud;
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

static int set_timeseries(void *ud, const char *name, const char *v, char *err, size_t n) {
  job *j = ud;
  if (!*v) return 0;
  if (strcmp(name, "source") == 0) {
    if (strcmp(v, "seslog") && strcmp(v, "aws")) {
      snprintf(err, n, "must be seslog or aws");
      return SL_EINVAL;
    }
    if (v[0] == 'a' && !api_options(j->a)->aws_series) {
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
static int set_counts(void *ud, const char *name, const char *v, char *err, size_t n) {
  job *j = ud;
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

/* counts: the groupBy fields and the filters; groupBy is needed. */
static int parse_counts(job *j) {
  j->max_groups = COUNTS_LIMIT_DEFAULT;
  if (each_param(j,
                 "groupBy limit type bounceType feedbackType address domain source messageId "
                 "since until bounceSubType diagnostic configurationSet tag senderDomain",
                 set_counts))
    return SL_EINVAL;
  if (!j->grouping.n) {
    http_respond_error(j->base.req, 400, "invalid_parameter",
                       "Parameter \"groupBy\" is needed: one to three of day, hour, type, "
                       "domain, bounceType, bounceSubType, diagnostic, source, "
                       "configurationSet, tag:NAME, comma-separated.");
    return SL_EINVAL;
  }
  return 0;
}

/* stats: the monitors' window by default (10 minutes unless configured),
 * or window=, or since/until. */
static int parse_stats(job *j) {
  int64_t w =
      api_options(j->a)->monitor_window_ms > 0 ? api_options(j->a)->monitor_window_ms : 600000;
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
    http_respond_error(j->base.req, 400, "invalid_parameter",
                       "Parameter \"window\" and since/until both give the range: use one.");
    return SL_EINVAL;
  }
  if (j->until_ms == INT64_MIN) j->until_ms = j->now_ms;
  if (j->since_ms == INT64_MIN) j->since_ms = j->until_ms - w;
  if (j->since_ms >= j->until_ms) {
    http_respond_error(j->base.req, 400, "invalid_parameter",
                       "Parameter \"since\" is not before \"until\": the range is empty.");
    return SL_EINVAL;
  }
  return 0;
}

/* timeseries: the last day in hours by default; at most QUERY_MAX_POINTS. */
static int parse_timeseries(job *j) {
  char msg[256];
  snprintf(j->bucket, sizeof j->bucket, "1h");
  j->span_ms = 3600000;
  j->until_ms = j->now_ms;
  j->since_ms = INT64_MIN;
  if (each_param(j, "since until bucket source", set_timeseries)) return SL_EINVAL;
  if (j->since_ms == INT64_MIN) j->since_ms = j->until_ms - 86400000;
  if (j->since_ms > j->until_ms) {
    http_respond_error(j->base.req, 400, "invalid_parameter",
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
    http_respond_error(j->base.req, 400, "invalid_parameter", msg);
    return SL_EINVAL;
  }
  return 0;
}

/* Parses the request into j; answers 400 itself and returns SL_EINVAL on a
 * bad parameter. */
static int parse(job *j) {
  switch (j->kind) {
    case J_EVENTS: return each_param(j, events_params, set_filter);
    case J_COUNTS: return parse_counts(j);
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
    case J_STATS: return parse_stats(j);
    case J_TIMESERIES: return parse_timeseries(j);
  }
  return 0;
}

/* The path's key (the tail after the route's prefix), trimmed; SL_EINVAL
 * when it does not fit n. */
static int path_key(const char *tail, char *out, size_t n) {
  const char *s = tail;
  while (*s == ' ') s++;
  size_t len = strlen(s);
  while (len && s[len - 1] == ' ') len--;
  if (len >= n) return SL_EINVAL;
  memcpy(out, s, len);
  out[len] = 0;
  return 0;
}

/* The key of /api/events/{messageId} or /api/recipients/{address} into
 * j; answers 400 and returns SL_EINVAL when it is empty or too long. */
static int take_key(job *j, const char *tail) {
  size_t cap = j->kind == J_MESSAGE ? sizeof j->f.message_id : sizeof j->f.address;
  if (path_key(tail, j->key, cap) || !j->key[0]) {
    http_respond_error(j->base.req, 400, "invalid_parameter",
                       j->kind == J_MESSAGE ? "Name a messageId: /api/events/{messageId}."
                                            : "Name an address: /api/recipients/{address}.");
    return SL_EINVAL;
  }
  if (j->kind == J_RECIPIENT) util_ascii_lower(j->key);
  return 0;
}

/* stats: what the live monitors and AWS say now, on the loop. */
static void stats_live(job *j) {
  const struct api_opts *o = api_options(j->a);
  if (j->range == R_WINDOW && o->monitor_reading && j->span_ms == o->monitor_window_ms) {
    for (int k = 0; k < 2; k++)
      if (!o->monitor_reading(o->monitor_ud, k, &j->mon[k])) j->mon[k].state[0] = 0;
  }
  if (o->aws_json) {
    buf aws;
    buf_init(&aws, 1 << 20);
    o->aws_json(o->monitor_ud, &aws);
    j->aws = buf_take(&aws);
  }
}

/* Checks the request of kind and queues its query; every outcome answers
 * req (now: 400, 503 when too many queries wait; or later, from the
 * pool). */
static void start(api *a, http_request *req, enum job_kind kind, const char *tail) {
  const struct api_opts *o = api_options(a);
  if (readpool_active(api_readpool(a)) >= o->max_pending) {
    http_respond_error_ex(req, 503, "busy", "Too many queries are waiting; try again shortly.",
                          "Retry-After: 1\r\n");
    return;
  }
  job *j = calloc(1, sizeof *j);
  if (!j) {
    http_respond_error(req, 503, "out_of_memory", "The server is out of memory.");
    return;
  }
  api_job_init(&j->base, req, BODY_MAX, NO_STORE, o->query_timeout_ms);
  j->a = a;
  j->kind = kind;
  j->now_ms = util_now_ms();
  query_filter_init(&j->f);
  if (((kind == J_MESSAGE || kind == J_RECIPIENT) && take_key(j, tail)) || parse(j)) {
    job_free(j);
    return;
  }
  if (kind == J_STATS) stats_live(j);
  if (readpool_run(api_readpool(a), work_fn, done_fn, j)) {
    http_respond_error(req, 503, "busy", "The query could not be queued; try again shortly.");
    job_free(j);
  }
}

void api_events_list(void *a, http_request *req, const char *tail) {
  start(a, req, J_EVENTS, tail);
}

void api_events_counts(void *a, http_request *req, const char *tail) {
  start(a, req, J_COUNTS, tail);
}

void api_events_message(void *a, http_request *req, const char *tail) {
  start(a, req, J_MESSAGE, tail);
}

void api_events_recipient(void *a, http_request *req, const char *tail) {
  start(a, req, J_RECIPIENT, tail);
}

void api_events_stats(void *a, http_request *req, const char *tail) {
  start(a, req, J_STATS, tail);
}

void api_events_timeseries(void *a, http_request *req, const char *tail) {
  start(a, req, J_TIMESERIES, tail);
}
