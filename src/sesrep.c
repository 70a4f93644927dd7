/* sesrep.c - AWS's reputation metrics and the account's status (see
 * sesrep.h). */
#include "sesrep.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "alerts.h"
#include "error.h"
#include "log.h"
#include "monitor.h"
#include "readpool.h"

#define PERIOD_S 60                        /* GetMetricData's period */
#define FETCH_MAX_MS (3LL * 3600000)       /* samples asked for at most this far back */
#define MAX_POINTS 512                     /* kept per series and round */
#define MAX_CHANGES 20                     /* enforcement changes kept for the API */
#define DIVERGENCE_FACTOR 2.0              /* seslog's and AWS's rates differ by more */
#define ANSWER_MAX (4u << 20)              /* the largest answer read */
#define SAMPLES_KEEP_MS (400LL * 86400000) /* samples older than this are deleted */

enum api_id { API_CW = 0, API_SES = 1 };
static const char *const api_names[] = {"cloudwatch", "sesv2"};
static const char *const api_ops[] = {"CloudWatch GetMetricData", "SES v2 GetAccount"};
enum metric_id { M_BOUNCE = 0, M_COMPLAINT = 1 };
static const char *const metric_names[] = {"bounceRate", "complaintRate"};
static const char *const aws_metric[] = {"Reputation.BounceRate", "Reputation.ComplaintRate"};
static const char *const mon_names[] = {"awsBounceRate", "awsComplaintRate"};

/* Outcomes counted per API for /metrics. */
enum outcome {
  O_OK = 0,
  O_THROTTLED,
  O_DENIED,
  O_CREDS,
  O_SERVER,
  O_CLIENT,
  O_NETWORK,
  O_NO_CREDS,
  O_BAD,
  O_N
};
static const char *const outcome_names[] = {
    "ok",           "throttled", "access_denied",  "credentials_rejected", "server_error",
    "client_error", "network",   "no_credentials", "bad_response"};

/* One API's health. */
struct api_state {
  int64_t last_ok_ms, last_error_ms, next_ms;
  enum outcome error;     /* of the last failure */
  char message[512];      /* AWS's code and message, or curl's sentence */
  int failures;           /* in a row */
  int64_t retry_after_ms; /* AWS's Retry-After of the last failure, or 0 */
  uint64_t outcomes[O_N];
};

/* The rates of one scope: the account (index 0) or a configuration set. */
struct scope {
  char name[72]; /* "" for the account */
  double rate[2];
  int points[2];        /* data points in the window */
  int64_t sample_ms[2]; /* the newest data point, 0 none */
  int have;             /* a GetMetricData answer was read */
};

struct enf_change {
  int64_t at;
  char from[24], to[24];
};

struct sesrep {
  uv_loop_t *loop;
  outbound *ob;
  outbox *box; /* where alerts are queued (alerts_send), or NULL */
  store *st;
  struct sesrep_opts o;
  char *cw_url;          /* ".../" */
  char *ses_url;         /* ".../v2/email/account" */
  char *cw_sigv4;        /* "aws:amz:REGION:monitoring" */
  char *ses_sigv4;       /* "aws:amz:REGION:ses" */
  char setup_error[512]; /* why no request can be made (no region, no provider), or "" */
  uv_timer_t timer;
  int timer_init;
  int in_flight; /* requests out */
  int closing;
  int round_failed;
  int64_t round_start_ms, next_round_ms;
  struct api_state api[2];
  struct scope *scopes; /* 1 + n_config_sets */
  int n_scopes;
  int64_t metrics_at; /* the last GetMetricData answer */
  struct sesrep_account acct;
  int64_t acct_at; /* the last GetAccount answer, 0 none */
  char told[24];   /* the status last recorded in ses_account_changes */
  int64_t told_at;
  struct {
    int state;
    struct monitor_reading r;
  } mon[2];
  struct enf_change changes[MAX_CHANGES]; /* ring, newest at head - 1 */
  int changes_head, n_changes;
};

/* ---- options ------------------------------------------------------------ */

static const char *env_nonempty(const char *name) {
  const char *v = getenv(name);
  return v && *v ? v : NULL;
}

const char *sesrep_region_env(void) {
  const char *r = env_nonempty("AWS_REGION");
  return r ? r : env_nonempty("AWS_DEFAULT_REGION");
}

static int region_ok(const char *r) {
  if (!r || !*r || strlen(r) > 40) return 0;
  for (const char *p = r; *p; p++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-')) return 0;
  return 1;
}

int sesrep_endpoint(const char *svc, const char *host, const char *region, char *out, size_t outlen,
                    char *err, size_t errlen) {
  char name[64];
  snprintf(name, sizeof name, "AWS_ENDPOINT_URL_%s", svc);
  const char *ignore = getenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS");
  int use_env = !(ignore && strcasecmp(ignore, "true") == 0);
  const char *url = use_env ? env_nonempty(name) : NULL;
  const char *from = name;
  if (!url && use_env) {
    url = env_nonempty("AWS_ENDPOINT_URL");
    from = "AWS_ENDPOINT_URL";
  }
  if (!url) {
    if (!region_ok(region)) {
      snprintf(err, errlen, "no region: set AWS_REGION (or AWS_DEFAULT_REGION) to one like %s",
               region ? "us-east-1 (lower case letters, digits and -)" : "us-east-1");
      return SL_EINVAL;
    }
    int w = snprintf(out, outlen, "https://%s.%s.amazonaws.com%s", host, region,
                     strncmp(region, "cn-", 3) == 0 ? ".cn" : "");
    return w < 0 || (size_t)w >= outlen ? SL_EINVAL : 0;
  }
  if (strncmp(url, "http://", 7) && strncmp(url, "https://", 8)) {
    snprintf(err, errlen, "%s must be an http:// or https:// URL", from);
    return SL_EINVAL;
  }
  const char *h = strstr(url, "://") + 3;
  size_t hl = strcspn(h, "/?#");
  if (memchr(h, '@', hl) || !hl || h[hl] == '?' || h[hl] == '#') {
    snprintf(err, errlen, "%s must be a plain URL without user:password@, query or fragment", from);
    return SL_EINVAL;
  }
  size_t n = strlen(url);
  while (n && url[n - 1] == '/') n--;
  if (n >= outlen) {
    snprintf(err, errlen, "%s is too long", from);
    return SL_EINVAL;
  }
  memcpy(out, url, n);
  out[n] = 0;
  return 0;
}

static char *dup_printf2(const char *fmt, const char *a, const char *b) {
  int n = snprintf(NULL, 0, fmt, a, b);
  char *s = n >= 0 ? malloc((size_t)n + 1) : NULL;
  if (s) snprintf(s, (size_t)n + 1, fmt, a, b);
  return s;
}

/* A configuration set name as SES allows it: letters, digits, _ and -,
 * up to 64 characters. */
static int set_name_ok(const char *s) {
  size_t n = strlen(s);
  if (!n || n > 64) return 0;
  for (; *s; s++)
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
          *s == '_' || *s == '-'))
      return 0;
  return 1;
}

/* One endpoint into out: the option, else sesrep_endpoint. Without a
 * usable region the reason goes to setup (out empty) and 0 is returned;
 * any other problem returns SL_EINVAL with the reason in why. */
static int resolve(const char *given, const char *svc, const char *host, const char *region,
                   char *out, size_t outlen, char *setup, size_t setuplen, char *why,
                   size_t whylen) {
  if (given) {
    snprintf(out, outlen, "%s", given);
    return 0;
  }
  if (!sesrep_endpoint(svc, host, region, out, outlen, why, whylen)) return 0;
  if (strncmp(why, "no region", 9)) return SL_EINVAL;
  if (!setup[0]) snprintf(setup, setuplen, "%s", why);
  out[0] = 0;
  return 0;
}

int sesrep_new(uv_loop_t *loop, outbound *ob, outbox *box, const struct sesrep_opts *opts,
               sesrep **out, char *err, size_t errlen) {
  if (opts->enabled) {
    if (opts->interval_ms < 1000) {
      snprintf(err, errlen, "--ses-reputation-interval must be at least 1s");
      return SL_EINVAL;
    }
    if (opts->n_config_sets > SESREP_MAX_SETS) {
      snprintf(err, errlen, "--ses-configuration-set: at most %d sets", SESREP_MAX_SETS);
      return SL_EINVAL;
    }
    for (int i = 0; i < opts->n_config_sets; i++)
      if (!set_name_ok(opts->config_sets[i])) {
        snprintf(err, errlen,
                 "--ses-configuration-set %.80s: a name has 1 to 64 letters, digits, _ or -",
                 opts->config_sets[i]);
        return SL_EINVAL;
      }
  }
  sesrep *s = calloc(1, sizeof *s);
  if (!s) return SL_ENOMEM;
  s->loop = loop;
  s->ob = ob;
  s->box = box;
  s->o = *opts;
  if (s->o.window_ms <= 0) s->o.window_ms = 600000;
  if (s->o.retry_base_ms <= 0) s->o.retry_base_ms = 2000;
  for (int k = 0; k < 2; k++) {
    s->mon[k].r.state = s->mon[k].r.announced = "ok";
    s->mon[k].r.present = 1; /* AWS's figures are always about now */
    s->mon[k].r.warn = k == M_BOUNCE ? s->o.bounce_warn : s->o.complaint_warn;
    s->mon[k].r.alert = k == M_BOUNCE ? s->o.bounce_alert : s->o.complaint_alert;
    s->mon[k].r.window_ms = s->o.window_ms;
  }
  if (!opts->enabled) {
    *out = s;
    return 0;
  }
  s->n_scopes = 1 + opts->n_config_sets;
  s->scopes = calloc((size_t)s->n_scopes, sizeof *s->scopes);
  if (!s->scopes) goto nomem;
  for (int i = 1; i < s->n_scopes; i++)
    snprintf(s->scopes[i].name, sizeof s->scopes[i].name, "%s", opts->config_sets[i - 1]);
  const char *region = opts->region;
  char cw[1024], ses[1024], why[256];
  /* A bad endpoint variable is a mistake to fix now; a missing region is
   * a failure to show (and that endpoint stays unknown). */
  if (resolve(opts->cloudwatch_endpoint, "CLOUDWATCH", "monitoring", region, cw, sizeof cw,
              s->setup_error, sizeof s->setup_error, why, sizeof why) ||
      resolve(opts->sesv2_endpoint, "SESV2", "email", region, ses, sizeof ses, s->setup_error,
              sizeof s->setup_error, why, sizeof why)) {
    snprintf(err, errlen, "--ses-reputation: %s", why);
    sesrep_free(s);
    return SL_EINVAL;
  }
  s->cw_url = dup_printf2("%s/%s", cw, "");
  s->ses_url = dup_printf2("%s%s", ses, "/v2/email/account");
  if (!s->cw_url || !s->ses_url) goto nomem;
  if (!s->setup_error[0] && !region_ok(region))
    snprintf(s->setup_error, sizeof s->setup_error,
             "no region: set AWS_REGION (or AWS_DEFAULT_REGION) to one like us-east-1 (it signs "
             "every request)");
  if (!s->setup_error[0] && !opts->creds)
    snprintf(s->setup_error, sizeof s->setup_error, "no credentials: %s",
             opts->creds_error ? opts->creds_error : "no provider");
  if (region_ok(region)) {
    s->cw_sigv4 = dup_printf2("aws:amz:%s:%s", region, "monitoring");
    s->ses_sigv4 = dup_printf2("aws:amz:%s:%s", region, "ses");
    if (!s->cw_sigv4 || !s->ses_sigv4) goto nomem;
  }
  uv_timer_init(loop, &s->timer);
  s->timer.data = s;
  s->timer_init = 1;
  *out = s;
  return 0;
nomem:
  sesrep_free(s);
  return SL_ENOMEM;
}

void sesrep_attach(sesrep *s, store *st) {
  if (s) s->st = st;
}

int sesrep_enabled(const sesrep *s) {
  return s && s->o.enabled;
}

void sesrep_free(sesrep *s) {
  if (!s) return;
  free(s->scopes);
  free(s->cw_url);
  free(s->ses_url);
  free(s->cw_sigv4);
  free(s->ses_sigv4);
  free(s);
}

/* ---- requests and answers ---------------------------------------------- */

char *sesrep_metric_request(int64_t start_s, int64_t end_s, char *const *sets, int n_sets) {
  cJSON *root = cJSON_CreateObject();
  cJSON *qs = cJSON_AddArrayToObject(root, "MetricDataQueries");
  for (int sc = 0; qs && sc <= n_sets; sc++)
    for (int m = 0; m < 2; m++) {
      char id[16];
      snprintf(id, sizeof id, "%c%d", m ? 'c' : 'b', sc);
      cJSON *q = cJSON_CreateObject();
      cJSON_AddItemToArray(qs, q);
      cJSON_AddStringToObject(q, "Id", id);
      cJSON *stat = cJSON_AddObjectToObject(q, "MetricStat");
      cJSON *metric = cJSON_AddObjectToObject(stat, "Metric");
      cJSON_AddStringToObject(metric, "Namespace", "AWS/SES");
      cJSON_AddStringToObject(metric, "MetricName", aws_metric[m]);
      cJSON *dims = cJSON_AddArrayToObject(metric, "Dimensions");
      if (sc > 0) {
        cJSON *d = cJSON_CreateObject();
        cJSON_AddItemToArray(dims, d);
        cJSON_AddStringToObject(d, "Name", "ses:configuration-set");
        cJSON_AddStringToObject(d, "Value", sets[sc - 1]);
      }
      cJSON_AddNumberToObject(stat, "Period", PERIOD_S);
      cJSON_AddStringToObject(stat, "Stat", "Average");
      cJSON_AddBoolToObject(q, "ReturnData", 1);
    }
  cJSON_AddNumberToObject(root, "StartTime", (double)start_s);
  cJSON_AddNumberToObject(root, "EndTime", (double)end_s);
  cJSON_AddStringToObject(root, "ScanBy", "TimestampAscending");
  char *out = cJSON_PrintUnformatted(root);
  cJSON_Delete(root);
  return out;
}

static const char *jstr(const cJSON *o, const char *name) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
  return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int jbool(const cJSON *o, const char *name) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
  return cJSON_IsBool(v) ? cJSON_IsTrue(v) : -1;
}

static double jnum(const cJSON *o, const char *name) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
  return cJSON_IsNumber(v) ? v->valuedouble : -1;
}

int sesrep_parse_account(const char *body, struct sesrep_account *out) {
  cJSON *root = body ? cJSON_Parse(body) : NULL;
  const char *status = jstr(root, "EnforcementStatus");
  if (!cJSON_IsObject(root) || !status || !*status || strlen(status) >= sizeof out->status) {
    cJSON_Delete(root);
    return SL_EJSON;
  }
  struct sesrep_account a;
  snprintf(a.status, sizeof a.status, "%s", status);
  for (char *p = a.status; *p; p++)
    if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
          *p == '_'))
      *p = '_'; /* a name, never markup */
  a.sending_enabled = jbool(root, "SendingEnabled");
  a.production = jbool(root, "ProductionAccessEnabled");
  const cJSON *q = cJSON_GetObjectItemCaseSensitive(root, "SendQuota");
  a.max_24h = jnum(q, "Max24HourSend");
  a.max_rate = jnum(q, "MaxSendRate");
  a.sent_24h = jnum(q, "SentLast24Hours");
  cJSON_Delete(root);
  *out = a;
  return 0;
}

const char *sesrep_classify(long status, const char *body, char *detail, size_t detail_len) {
  cJSON *root = body ? cJSON_Parse(body) : NULL;
  const char *type = jstr(root, "__type");
  if (!type) type = jstr(root, "code");
  if (!type) type = jstr(root, "Code");
  const cJSON *e = cJSON_GetObjectItemCaseSensitive(root, "Error"); /* query-style JSON */
  if (!type && e) type = jstr(e, "Code");
  const char *msg = jstr(root, "message");
  if (!msg) msg = jstr(root, "Message");
  if (!msg && e) msg = jstr(e, "Message");
  if (type && strchr(type, '#')) type = strrchr(type, '#') + 1;
  char t[96];
  snprintf(t, sizeof t, "%s", type ? type : "");
  t[strcspn(t, ":")] = 0; /* "TooManyRequestsException:http://..." */
  snprintf(detail, detail_len, "HTTP %ld%s%s%s%.300s", status, t[0] ? " " : "", t, msg ? ": " : "",
           msg ? msg : "");
  for (char *p = detail; *p; p++)
    if (*p == '\r' || *p == '\n') *p = ' ';
  cJSON_Delete(root);
  if (status == 429 || strstr(t, "Throttl") || strstr(t, "TooManyRequests") ||
      strstr(t, "RequestLimitExceeded"))
    return outcome_names[O_THROTTLED];
  if (strstr(t, "UnrecognizedClient") || strstr(t, "InvalidClientTokenId") ||
      strstr(t, "SignatureDoesNotMatch") || strstr(t, "ExpiredToken") ||
      strstr(t, "IncompleteSignature") || strstr(t, "InvalidSignature"))
    return outcome_names[O_CREDS];
  if (status == 403 || strstr(t, "AccessDenied") || strstr(t, "NotAuthorized"))
    return outcome_names[O_DENIED];
  if (status >= 500) return outcome_names[O_SERVER];
  return outcome_names[O_CLIENT];
}

static enum outcome outcome_of(const char *name) {
  for (int i = 0; i < O_N; i++)
    if (strcmp(outcome_names[i], name) == 0) return (enum outcome)i;
  return O_CLIENT;
}

/* ---- rounds -------------------------------------------------------------- */

static void schedule(sesrep *s);

static void note_failure(sesrep *s, enum api_id a, enum outcome o, const char *message) {
  struct api_state *st = &s->api[a];
  int news = st->failures == 0 || st->error != o;
  st->outcomes[o]++;
  st->failures++;
  st->error = o;
  st->last_error_ms = util_now_ms();
  snprintf(st->message, sizeof st->message, "%s", message);
  s->round_failed = 1;
  if (news)
    log_kv(LOG_WARN, "AWS reputation: request failed; retrying with backoff", "api", api_ops[a],
           "error", outcome_names[o], "detail", st->message, NULL);
}

static void note_success(sesrep *s, enum api_id a) {
  struct api_state *st = &s->api[a];
  if (st->failures)
    log_kv(LOG_INFO, "AWS reputation: request works again", "api", api_ops[a], NULL);
  st->outcomes[O_OK]++;
  st->failures = 0;
  st->retry_after_ms = 0;
  st->last_ok_ms = util_now_ms();
}

/* Handles a non-2xx or failed answer; 1 when it was one. */
static int failed(sesrep *s, enum api_id a, const outbound_result *res) {
  if (res->rc == SL_ESHUTDOWN) return 1;
  if (res->rc) {
    s->api[a].retry_after_ms = 0;
    char m[300];
    snprintf(m, sizeof m, "%s", res->error ? res->error : sl_strerror(res->rc));
    note_failure(s, a, O_NETWORK, m);
    return 1;
  }
  if (res->status >= 200 && res->status < 300) return 0;
  long ra = res->retry_after ? strtol(res->retry_after, NULL, 10) : 0;
  s->api[a].retry_after_ms = ra > 0 && ra < 86400 ? ra * 1000 : 0;
  char detail[512];
  const char *kind = sesrep_classify(res->status, res->body, detail, sizeof detail);
  note_failure(s, a, outcome_of(kind), detail);
  return 1;
}

/* The samples of one GetMetricData answer, written by the writer. */
struct sample {
  int64_t t;
  int metric;
  char scope[80];
  double value;
};
typedef struct samples_write {
  store_req req;
  int64_t cutoff;                       /* older samples of these scopes go */
  char scopes[SESREP_MAX_SETS + 1][80]; /* the scope keys watched */
  int n_scopes;
  size_t n;
  struct sample v[];
} samples_write;

static int apply_samples(store_req *r, sqlite3 *db) {
  samples_write *w = r->ud;
  r->result = STORE_STORED;
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(db,
                         "INSERT OR REPLACE INTO ses_reputation_samples (t, metric, scope, value) "
                         "VALUES (?,?,?,?)",
                         -1, &st, NULL) != SQLITE_OK)
    return SL_EDB;
  int rc = 0;
  for (size_t i = 0; i < w->n && !rc; i++) {
    sqlite3_reset(st);
    sqlite3_bind_int64(st, 1, w->v[i].t);
    sqlite3_bind_text(st, 2, metric_names[w->v[i].metric], -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, w->v[i].scope, -1, SQLITE_STATIC);
    sqlite3_bind_double(st, 4, w->v[i].value);
    if (sqlite3_step(st) != SQLITE_DONE) rc = SL_EDB;
  }
  sqlite3_finalize(st);
  /* Keep the table bounded: the rows past the cutoff, found through the
   * (scope, t) index, a few per round. */
  if (rc || sqlite3_prepare_v2(db, "DELETE FROM ses_reputation_samples WHERE scope = ? AND t < ?",
                               -1, &st, NULL) != SQLITE_OK)
    return rc ? rc : SL_EDB;
  for (int i = 0; !rc && i < w->n_scopes; i++) {
    sqlite3_reset(st);
    sqlite3_bind_text(st, 1, w->scopes[i], -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, w->cutoff);
    if (sqlite3_step(st) != SQLITE_DONE) rc = SL_EDB;
  }
  sqlite3_finalize(st);
  return rc;
}

static void on_samples_done(store_req *r) {
  if (r->result < 0) log_kv(LOG_ERROR, "AWS reputation samples could not be stored", NULL);
  free(r->ud);
}

/* The scope column of a scope: "account" or "configuration-set:NAME". */
static void scope_key(const struct scope *sc, char *out, size_t n) {
  if (sc->name[0])
    snprintf(out, n, "configuration-set:%s", sc->name);
  else
    snprintf(out, n, "account");
}

/* A CloudWatch timestamp: epoch seconds (the JSON protocol's) or ISO-8601. */
static int point_time(const cJSON *v, int64_t *ms) {
  if (cJSON_IsNumber(v)) {
    /* Between 1970 and about the year 33658: anything else is not a time. */
    if (!isfinite(v->valuedouble) || v->valuedouble < 0 || v->valuedouble > 1e12) return SL_EJSON;
    *ms = (int64_t)llround(v->valuedouble * 1000);
    return 0;
  }
  if (cJSON_IsString(v)) return util_parse_iso8601(v->valuestring, ms);
  return SL_EJSON;
}

static void judge(sesrep *s, int64_t now);

/* Reads GetMetricData's MetricDataResults: the window's average per scope
 * and metric (no point: zero), and every point as a sample. */
static int read_metrics(sesrep *s, const char *body, int64_t now) {
  cJSON *root = cJSON_Parse(body);
  const cJSON *results = cJSON_GetObjectItemCaseSensitive(root, "MetricDataResults");
  if (!cJSON_IsArray(results)) {
    cJSON_Delete(root);
    return SL_EJSON;
  }
  size_t cap = 0; /* the points in the answer, at most MAX_POINTS a series */
  const cJSON *r;
  cJSON_ArrayForEach(r, results) {
    int n = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(r, "Values"));
    cap += (size_t)(n < MAX_POINTS ? n : MAX_POINTS);
  }
  if (cap > (size_t)s->n_scopes * 2 * MAX_POINTS) cap = (size_t)s->n_scopes * 2 * MAX_POINTS;
  samples_write *w = calloc(1, sizeof *w + cap * sizeof w->v[0]);
  if (!w) {
    cJSON_Delete(root);
    return SL_ENOMEM;
  }
  double sum[SESREP_MAX_SETS + 1][2] = {{0}};
  int cnt[SESREP_MAX_SETS + 1][2] = {{0}};
  int64_t newest[SESREP_MAX_SETS + 1][2] = {{0}};
  int bad = 0;
  cJSON_ArrayForEach(r, results) {
    const char *id = jstr(r, "Id");
    if (!id || (id[0] != 'b' && id[0] != 'c')) continue;
    char *end;
    long sc = strtol(id + 1, &end, 10);
    if (end == id + 1 || *end || sc < 0 || sc >= s->n_scopes) continue;
    int m = id[0] == 'c' ? M_COMPLAINT : M_BOUNCE;
    const cJSON *ts = cJSON_GetObjectItemCaseSensitive(r, "Timestamps");
    const cJSON *vs = cJSON_GetObjectItemCaseSensitive(r, "Values");
    if (!cJSON_IsArray(ts) || !cJSON_IsArray(vs) ||
        cJSON_GetArraySize(ts) != cJSON_GetArraySize(vs)) {
      bad = 1;
      continue;
    }
    int n = cJSON_GetArraySize(ts), kept = 0;
    char key[80];
    scope_key(&s->scopes[sc], key, sizeof key);
    for (int i = 0; i < n; i++) {
      int64_t t;
      const cJSON *v = cJSON_GetArrayItem(vs, i);
      if (point_time(cJSON_GetArrayItem(ts, i), &t) || !cJSON_IsNumber(v) ||
          !isfinite(v->valuedouble) || v->valuedouble < 0) {
        bad = 1;
        continue;
      }
      if (t >= now - s->o.window_ms && t <= now + 60000) {
        sum[sc][m] += v->valuedouble;
        cnt[sc][m]++;
      }
      if (t > newest[sc][m]) newest[sc][m] = t;
      if (kept++ < MAX_POINTS && w->n < cap) {
        struct sample *p = &w->v[w->n++];
        p->t = t;
        p->metric = m;
        snprintf(p->scope, sizeof p->scope, "%s", key);
        p->value = v->valuedouble;
      }
    }
  }
  cJSON_Delete(root);
  if (bad) log_kv(LOG_WARN, "AWS reputation: some data points were unreadable; skipped", NULL);
  for (int sc = 0; sc < s->n_scopes; sc++) {
    struct scope *p = &s->scopes[sc];
    for (int m = 0; m < 2; m++) {
      p->rate[m] = cnt[sc][m] ? sum[sc][m] / cnt[sc][m] : 0; /* no data reads as zero */
      p->points[m] = cnt[sc][m];
      if (newest[sc][m] > p->sample_ms[m]) p->sample_ms[m] = newest[sc][m];
    }
    p->have = 1;
  }
  s->metrics_at = now;
  w->cutoff = now - SAMPLES_KEEP_MS;
  w->n_scopes = s->n_scopes;
  for (int i = 0; i < s->n_scopes; i++) scope_key(&s->scopes[i], w->scopes[i], sizeof w->scopes[i]);
  if (w->n && s->st) {
    w->req.ud = w;
    w->req.apply = apply_samples;
    w->req.cb = on_samples_done;
    if (store_submit(s->st, &w->req)) {
      log_kv(LOG_WARN, "AWS reputation samples not stored: the write queue is full", NULL);
      free(w);
    }
  } else {
    free(w);
  }
  judge(s, now);
  return 0;
}

/* The AWS monitors: the account's window averages through the same
 * hysteresis and announcement path as seslog's own. */
static void judge(sesrep *s, int64_t now) {
  for (int k = 0; k < 2; k++) {
    struct monitor_reading *r = &s->mon[k].r;
    r->value = s->scopes[0].rate[k];
    r->sends = s->scopes[0].points[k]; /* the data points averaged */
    r->window_ms = s->o.window_ms;
    r->evaluated_ms = now;
    int to = monitor_next_state(s->mon[k].state, r->value, r->warn, r->alert);
    if (to == s->mon[k].state) continue;
    int from = s->mon[k].state;
    s->mon[k].state = to;
    r->state = r->announced = monitor_state_name(to);
    r->since_ms = now;
    if (s->st) monitor_announce(s->st, s->box, mon_names[k], from, to, r);
  }
}

/* An enforcement change row, with the Slack row when there is one. */
typedef struct enf_write {
  store_req req;
  int64_t at;
  char from[24], to[24];
  int sending, production;
} enf_write;

static int write_enf(void *arg, sqlite3 *db) {
  enf_write *w = arg;
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(db,
                         "INSERT INTO ses_account_changes (at, fromStatus, toStatus, "
                         "sendingEnabled, productionAccessEnabled) VALUES (?,?,?,?,?)",
                         -1, &st, NULL) != SQLITE_OK)
    return SL_EDB;
  sqlite3_bind_int64(st, 1, w->at);
  sqlite3_bind_text(st, 2, w->from, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 3, w->to, -1, SQLITE_STATIC);
  if (w->sending >= 0)
    sqlite3_bind_int(st, 4, w->sending);
  else
    sqlite3_bind_null(st, 4);
  if (w->production >= 0)
    sqlite3_bind_int(st, 5, w->production);
  else
    sqlite3_bind_null(st, 5);
  int rc = sqlite3_step(st);
  sqlite3_finalize(st);
  return rc == SQLITE_DONE ? 0 : SL_EDB;
}

static int apply_enf(store_req *r, sqlite3 *db) {
  r->result = STORE_STORED;
  return write_enf(r->ud, db);
}

static void on_enf_done(store_req *r) {
  if (r->result < 0) log_kv(LOG_ERROR, "an SES account status change could not be stored", NULL);
  free(r->ud);
}

static void remember_change(sesrep *s, int64_t at, const char *from, const char *to) {
  struct enf_change *c = &s->changes[s->changes_head];
  s->changes_head = (s->changes_head + 1) % MAX_CHANGES;
  if (s->n_changes < MAX_CHANGES) s->n_changes++;
  c->at = at;
  snprintf(c->from, sizeof c->from, "%s", from);
  snprintf(c->to, sizeof c->to, "%s", to);
}

/* A new enforcement status: stored, logged and announced, except the first
 * HEALTHY ever seen, which is only stored (nothing happened). */
static void status_seen(sesrep *s, int64_t now) {
  const char *to = s->acct.status;
  if (strcmp(to, s->told) == 0 || !s->st) return;
  enf_write *w = calloc(1, sizeof *w);
  if (!w) return;
  w->at = now;
  snprintf(w->from, sizeof w->from, "%s", s->told);
  snprintf(w->to, sizeof w->to, "%s", to);
  w->sending = s->acct.sending_enabled;
  w->production = s->acct.production;
  int healthy = strcmp(to, "HEALTHY") == 0;
  int news = s->told[0] || !healthy;
  int sending = w->sending;
  /* The row first: a change that cannot be queued is news again at the
   * next answer, so nothing is told without being kept. */
  int rc = 1;
  if (news) {
    struct alert a = {.kind = ALERT_ENFORCEMENT, .from = w->from, .to = w->to, .flag = w->sending};
    rc = alerts_send(s->box, &a, write_enf, w, free); /* owns w unless 1 */
  }
  if (rc == 1) {
    w->req.ud = w;
    w->req.apply = apply_enf;
    w->req.cb = on_enf_done;
    rc = store_submit(s->st, &w->req);
    if (rc) free(w);
  }
  if (rc) {
    log_kv(LOG_ERROR,
           "an SES account status change could not be queued; the next answer tries again", "to",
           to, NULL);
    return;
  }
  if (news)
    log_kv(healthy ? LOG_INFO : LOG_WARN, "SES account enforcement status changed", "from",
           s->told[0] ? s->told : "unknown", "to", to, "sending",
           sending == 1   ? "enabled"
           : sending == 0 ? "disabled"
                          : "unknown",
           NULL);
  remember_change(s, now, s->told, to);
  snprintf(s->told, sizeof s->told, "%s", to);
  s->told_at = now;
}

static void round_step_done(sesrep *s) {
  if (--s->in_flight > 0 || s->closing) return;
  schedule(s);
}

static void on_metrics(void *ud, const outbound_result *res) {
  sesrep *s = ud;
  if (s->closing || res->rc == SL_ESHUTDOWN) {
    s->in_flight--;
    return;
  }
  if (!failed(s, API_CW, res)) {
    int rc = read_metrics(s, res->body ? res->body : "", util_now_ms());
    if (rc)
      note_failure(s, API_CW, O_BAD,
                   "the answer is not GetMetricData's JSON (MetricDataResults missing)");
    else
      note_success(s, API_CW);
  }
  round_step_done(s);
}

static void on_account(void *ud, const outbound_result *res) {
  sesrep *s = ud;
  if (s->closing || res->rc == SL_ESHUTDOWN) {
    s->in_flight--;
    return;
  }
  if (!failed(s, API_SES, res)) {
    struct sesrep_account a;
    if (sesrep_parse_account(res->body, &a)) {
      note_failure(s, API_SES, O_BAD, "the answer is not GetAccount's JSON (no EnforcementStatus)");
    } else {
      s->acct = a;
      s->acct_at = util_now_ms();
      note_success(s, API_SES);
      status_seen(s, s->acct_at);
    }
  }
  round_step_done(s);
}

static void start_round(sesrep *s) {
  if (s->closing || s->in_flight) return;
  s->round_failed = 0;
  s->round_start_ms = util_now_ms();
  if (s->setup_error[0]) {
    for (int a = 0; a < 2; a++) note_failure(s, (enum api_id)a, O_NO_CREDS, s->setup_error);
    schedule(s);
    return;
  }
  const char *userpwd = NULL, *token_header = NULL;
  if (awscreds_current(s->o.creds, &userpwd, &token_header)) {
    char why[400], m[512];
    awscreds_status(s->o.creds, why, sizeof why);
    snprintf(m, sizeof m, "no credentials (%s): %s", awscreds_source(s->o.creds), why);
    for (int a = 0; a < 2; a++) note_failure(s, (enum api_id)a, O_NO_CREDS, m);
    schedule(s);
    return;
  }
  int64_t now = s->round_start_ms;
  int64_t span = s->o.window_ms;
  if (2 * s->o.interval_ms > span) span = 2 * s->o.interval_ms;
  if (span > FETCH_MAX_MS) span = FETCH_MAX_MS;
  char *body = sesrep_metric_request((now - span) / 1000 / PERIOD_S * PERIOD_S, now / 1000 + 1,
                                     s->o.config_sets, s->o.n_config_sets);
  const char *const cw_headers[] = {"Content-Type: application/x-amz-json-1.0",
                                    "X-Amz-Target: GraniteServiceVersion20100801.GetMetricData",
                                    token_header, NULL};
  const char *const ses_headers[] = {"Accept: application/json", token_header, NULL};
  s->in_flight = 2; /* both callbacks come later, or are counted off here */
  struct outbound_req cw = {.method = "POST",
                            .url = s->cw_url,
                            .headers = cw_headers,
                            .body = body,
                            .body_len = body ? strlen(body) : 0,
                            .timeout_ms = 20000,
                            .max_body = ANSWER_MAX,
                            .aws_sigv4 = s->cw_sigv4,
                            .userpwd = userpwd};
  if (!body || outbound_request(s->ob, &cw, on_metrics, s)) {
    note_failure(s, API_CW, O_NETWORK, "the request could not be started (out of memory)");
    s->in_flight--;
  }
  free(body);
  struct outbound_req ses = {.method = "GET",
                             .url = s->ses_url,
                             .headers = ses_headers,
                             .timeout_ms = 20000,
                             .max_body = ANSWER_MAX,
                             .aws_sigv4 = s->ses_sigv4,
                             .userpwd = userpwd};
  if (outbound_request(s->ob, &ses, on_account, s)) {
    note_failure(s, API_SES, O_NETWORK, "the request could not be started (out of memory)");
    s->in_flight--;
  }
  if (!s->in_flight) schedule(s);
}

static void on_timer(uv_timer_t *t) {
  start_round(t->data);
}

/* The next round: an interval after this one's start, or sooner after a
 * failure (retry_base doubling per failure in a row, with jitter, never
 * later than the interval). */
static void schedule(sesrep *s) {
  if (s->closing) return;
  int64_t now = util_now_ms();
  int64_t delay = s->o.interval_ms - (now - s->round_start_ms);
  if (s->round_failed) {
    int f = s->api[API_CW].failures > s->api[API_SES].failures ? s->api[API_CW].failures
                                                               : s->api[API_SES].failures;
    int64_t back = s->o.retry_base_ms;
    for (int i = 1; i < f && back < s->o.interval_ms; i++) back *= 2;
    back += back * (rand() % 21) / 100; /* up to 20 % jitter */
    for (int a = 0; a < 2; a++)         /* AWS's own Retry-After, when it gave one, is the least */
      if (s->api[a].failures && s->api[a].retry_after_ms > back) back = s->api[a].retry_after_ms;
    if (back < delay) delay = back;
  }
  if (delay < 0) delay = 0;
  s->next_round_ms = now + delay;
  for (int a = 0; a < 2; a++) s->api[a].next_ms = s->next_round_ms;
  uv_timer_start(&s->timer, on_timer, (uint64_t)delay, 0);
}

void sesrep_start(sesrep *s) {
  if (!sesrep_enabled(s)) return;
  char iv[32], sets[16];
  snprintf(iv, sizeof iv, "%llds", (long long)(s->o.interval_ms / 1000));
  snprintf(sets, sizeof sets, "%d", s->o.n_config_sets);
  log_kv(LOG_INFO, "AWS reputation watch started", "cloudwatch", s->cw_url, "sesv2", s->ses_url,
         "region", s->o.region ? s->o.region : "", "credentials",
         s->o.creds ? awscreds_source(s->o.creds) : "none", "interval", iv, "configuration_sets",
         sets, NULL);
  if (s->setup_error[0])
    log_kv(LOG_WARN, "AWS reputation: cannot ask AWS", "reason", s->setup_error, NULL);
  s->next_round_ms = util_now_ms();
  uv_timer_start(&s->timer, on_timer, 0, 0);
}

void sesrep_close(sesrep *s) {
  if (!s || s->closing) return;
  s->closing = 1;
  if (s->timer_init) {
    uv_timer_stop(&s->timer);
    uv_close((uv_handle_t *)&s->timer, NULL);
  }
}

/* ---- stored state -------------------------------------------------------- */

int sesrep_load(sesrep *s, const char *db_path) {
  if (!sesrep_enabled(s)) return 0;
  sqlite3 *db;
  if (readpool_open_conn(db_path, &db, NULL, 0)) return SL_EDB;
  int ok = 1;
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(db,
                         "SELECT at, fromStatus, toStatus FROM ses_account_changes "
                         "ORDER BY id DESC LIMIT 20",
                         -1, &st, NULL) == SQLITE_OK) {
    struct enf_change tmp[MAX_CHANGES];
    int n = 0;
    while (n < MAX_CHANGES && sqlite3_step(st) == SQLITE_ROW) {
      const char *f = (const char *)sqlite3_column_text(st, 1);
      const char *t = (const char *)sqlite3_column_text(st, 2);
      tmp[n].at = sqlite3_column_int64(st, 0);
      snprintf(tmp[n].from, sizeof tmp[n].from, "%s", f ? f : "");
      snprintf(tmp[n].to, sizeof tmp[n].to, "%s", t ? t : "");
      n++;
    }
    sqlite3_finalize(st);
    if (n) {
      snprintf(s->told, sizeof s->told, "%s", tmp[0].to);
      s->told_at = tmp[0].at;
    }
    for (int i = n - 1; i >= 0; i--) remember_change(s, tmp[i].at, tmp[i].from, tmp[i].to);
  } else {
    ok = 0;
  }
  if (sqlite3_prepare_v2(db,
                         "SELECT monitor, toState, at FROM monitor_changes WHERE id IN "
                         "(SELECT max(id) FROM monitor_changes WHERE monitor IN "
                         "('awsBounceRate', 'awsComplaintRate') GROUP BY monitor)",
                         -1, &st, NULL) == SQLITE_OK) {
    while (sqlite3_step(st) == SQLITE_ROW) {
      const char *name = (const char *)sqlite3_column_text(st, 0);
      const char *to = (const char *)sqlite3_column_text(st, 1);
      int k = name && strcmp(name, mon_names[M_COMPLAINT]) == 0 ? M_COMPLAINT : M_BOUNCE;
      for (int v = 0; v < 3; v++)
        if (to && strcmp(to, monitor_state_name(v)) == 0) {
          s->mon[k].state = v;
          s->mon[k].r.state = s->mon[k].r.announced = monitor_state_name(v);
        }
      s->mon[k].r.since_ms = sqlite3_column_int64(st, 2);
    }
    sqlite3_finalize(st);
  } else {
    ok = 0;
  }
  sqlite3_close(db);
  return ok ? 0 : SL_EDB;
}

/* ---- API and metrics ----------------------------------------------------- */

static void json_rate(buf *b, int have, double v) {
  if (have)
    buf_printf(b, "%.6g", v);
  else
    buf_appends(b, "null");
}

static void json_bool(buf *b, int v) {
  buf_appends(b, v < 0 ? "null" : v ? "true" : "false");
}

static void json_num(buf *b, double v) {
  if (v < 0)
    buf_appends(b, "null");
  else
    buf_printf(b, "%.15g", v);
}

/* Why seslog's rate and AWS's may differ, when they differ by more than
 * DIVERGENCE_FACTOR and one of them is worth a look (at least half the
 * warning threshold). */
static const char *divergence(double own, double aws, double warn) {
  if (own < warn / 2 && aws < warn / 2) return NULL;
  if (aws > own * DIVERGENCE_FACTOR)
    return "AWS counts a higher rate than seslog sees: some events may not reach seslog (an "
           "identity or configuration set without this SNS topic, a subscription not confirmed, "
           "SNS deliveries failing), and AWS judges a longer, representative volume of sending.";
  if (own > aws * DIVERGENCE_FACTOR)
    return "seslog sees a higher rate than AWS: seslog's window is short and holds only what "
           "reached it, while AWS averages a larger recent volume and its metrics lag.";
  return NULL;
}

static void json_monitor(buf *b, const sesrep *s, int k) {
  const struct monitor_reading *r = &s->mon[k].r;
  buf_printf(b, "{\"state\":\"%s\",\"value\":", r->state);
  json_rate(b, r->evaluated_ms != 0, r->value);
  buf_printf(b, ",\"warn\":%.6g,\"alert\":%.6g,\"dataPoints\":%lld,\"since\":", r->warn, r->alert,
             (long long)r->sends);
  buf_json_time(b, r->since_ms);
  buf_appends(b, "}");
}

/* The "errors" and "changes" arrays of sesrep_stats_json, after the
 * divergence array (whose "]" they close). */
static void json_errors_changes(buf *b, const sesrep *s) {
  buf_appends(b, "],\"errors\":[");
  int ne = 0;
  for (int a = 0; a < 2; a++) {
    const struct api_state *st = &s->api[a];
    if (!st->failures) continue;
    buf_printf(b, "%s{\"api\":\"%s\",\"error\":\"%s\",\"message\":", ne++ ? "," : "", api_names[a],
               outcome_names[st->error]);
    buf_json_string(b, st->message);
    buf_printf(b, ",\"failures\":%d,\"at\":", st->failures);
    buf_json_time(b, st->last_error_ms);
    buf_appends(b, ",\"retryAt\":");
    buf_json_time(b, s->closing ? 0 : st->next_ms);
    buf_appends(b, "}");
  }
  buf_appends(b, "],\"changes\":[");
  for (int i = 0; i < s->n_changes; i++) {
    const struct enf_change *c =
        &s->changes[(s->changes_head - 1 - i + 2 * MAX_CHANGES) % MAX_CHANGES];
    buf_appends(b, i ? ",{\"at\":" : "{\"at\":");
    buf_json_time(b, c->at);
    buf_appends(b, ",\"from\":");
    if (c->from[0])
      buf_json_string(b, c->from);
    else
      buf_appends(b, "null");
    buf_appends(b, ",\"to\":");
    buf_json_string(b, c->to);
    buf_appends(b, "}");
  }
}

void sesrep_stats_json(const sesrep *s, buf *b, int have_own, double seslog_bounce,
                       double seslog_complaint) {
  if (!sesrep_enabled(s)) {
    buf_appends(b, "{\"enabled\":false}");
    return;
  }
  const struct scope *acc = &s->scopes[0];
  buf_appends(b, "{\"enabled\":true,\"bounceRate\":");
  json_rate(b, acc->have, acc->rate[M_BOUNCE]);
  buf_appends(b, ",\"complaintRate\":");
  json_rate(b, acc->have, acc->rate[M_COMPLAINT]);
  buf_appends(b, ",\"at\":");
  buf_json_time(b, s->metrics_at);
  int64_t newest = acc->sample_ms[0] > acc->sample_ms[1] ? acc->sample_ms[0] : acc->sample_ms[1];
  buf_appends(b, ",\"sampleAt\":");
  buf_json_time(b, newest);
  buf_printf(b,
             ",\"windowSeconds\":%lld,\"enforcementStatus\":", (long long)(s->o.window_ms / 1000));
  if (s->acct_at)
    buf_json_string(b, s->acct.status);
  else if (s->told[0])
    buf_json_string(b, s->told); /* the last known, until AWS answers */
  else
    buf_appends(b, "null");
  buf_appends(b, ",\"enforcementSince\":");
  buf_json_time(b, s->told_at);
  buf_appends(b, ",\"accountAt\":");
  buf_json_time(b, s->acct_at);
  buf_appends(b, ",\"sendingEnabled\":");
  json_bool(b, s->acct_at ? s->acct.sending_enabled : -1);
  buf_appends(b, ",\"productionAccessEnabled\":");
  json_bool(b, s->acct_at ? s->acct.production : -1);
  buf_appends(b, ",\"sendQuota\":");
  if (s->acct_at) {
    buf_appends(b, "{\"max24HourSend\":");
    json_num(b, s->acct.max_24h);
    buf_appends(b, ",\"maxSendRate\":");
    json_num(b, s->acct.max_rate);
    buf_appends(b, ",\"sentLast24Hours\":");
    json_num(b, s->acct.sent_24h);
    buf_appends(b, "}");
  } else {
    buf_appends(b, "null");
  }
  buf_appends(b, ",\"monitors\":{\"bounceRate\":");
  json_monitor(b, s, M_BOUNCE);
  buf_appends(b, ",\"complaintRate\":");
  json_monitor(b, s, M_COMPLAINT);
  buf_appends(b, "},\"configurationSets\":[");
  for (int i = 1; i < s->n_scopes; i++) {
    const struct scope *sc = &s->scopes[i];
    buf_appends(b, i > 1 ? ",{\"name\":" : "{\"name\":");
    buf_json_string(b, sc->name);
    buf_appends(b, ",\"bounceRate\":");
    json_rate(b, sc->have, sc->rate[M_BOUNCE]);
    buf_appends(b, ",\"complaintRate\":");
    json_rate(b, sc->have, sc->rate[M_COMPLAINT]);
    buf_appends(b, "}");
  }
  buf_appends(b, "],\"divergence\":[");
  int nd = 0;
  for (int k = 0; have_own && acc->have && k < 2; k++) {
    double own = k ? seslog_complaint : seslog_bounce;
    const char *why = divergence(own, acc->rate[k], s->mon[k].r.warn);
    if (!why) continue;
    buf_printf(b, "%s{\"metric\":\"%s\",\"seslog\":%.6g,\"aws\":%.6g,\"note\":", nd++ ? "," : "",
               metric_names[k], own, acc->rate[k]);
    buf_json_string(b, why);
    buf_appends(b, "}");
  }
  json_errors_changes(b, s);
  buf_appends(b, "]}");
}

void sesrep_diagnostics_json(const sesrep *s, buf *b) {
  if (!sesrep_enabled(s)) {
    buf_appends(b, "{\"enabled\":false}");
    return;
  }
  buf_appends(b, "{\"enabled\":true,\"endpoints\":{\"cloudwatch\":");
  buf_json_string(b, s->cw_url);
  buf_appends(b, ",\"sesv2\":");
  buf_json_string(b, s->ses_url);
  buf_printf(b, "},\"region\":");
  if (s->o.region)
    buf_json_string(b, s->o.region);
  else
    buf_appends(b, "null");
  buf_appends(b, ",\"credentials\":{\"source\":");
  buf_json_string(b, s->o.creds ? awscreds_source(s->o.creds) : "none");
  buf_appends(b, ",\"accessKeyId\":");
  const char *akid = s->o.creds ? awscreds_access_key_id(s->o.creds) : "";
  if (akid && *akid)
    buf_json_string(b, akid);
  else
    buf_appends(b, "null");
  buf_appends(b, "}");
  buf_printf(b, ",\"intervalSeconds\":%lld,\"nextRunAt\":", (long long)(s->o.interval_ms / 1000));
  buf_json_time(b, s->closing ? 0 : s->next_round_ms);
  for (int a = 0; a < 2; a++) {
    const struct api_state *st = &s->api[a];
    buf_printf(b, ",\"%s\":{\"lastSuccessAt\":", api_names[a]);
    buf_json_time(b, st->last_ok_ms);
    buf_appends(b, ",\"lastErrorAt\":");
    buf_json_time(b, st->last_error_ms);
    buf_appends(b, ",\"error\":");
    if (st->failures)
      buf_printf(b, "\"%s\"", outcome_names[st->error]);
    else
      buf_appends(b, "null");
    buf_appends(b, ",\"lastError\":");
    if (st->last_error_ms)
      buf_json_string(b, st->message);
    else
      buf_appends(b, "null");
    buf_printf(b, ",\"failuresInARow\":%d,\"requests\":{", st->failures);
    for (int o = 0; o < O_N; o++)
      buf_printf(b, "%s\"%s\":%llu", o ? "," : "", outcome_names[o],
                 (unsigned long long)st->outcomes[o]);
    buf_appends(b, "}}");
  }
  buf_appends(b, "}");
}

/* Prometheus label values escape backslash, quote and newline (a set name
 * has none, but the rule is cheap). */
static void label(buf *b, const char *v) {
  for (; *v; v++) {
    if (*v == '\\' || *v == '"')
      buf_printf(b, "\\%c", *v);
    else if (*v == '\n')
      buf_appends(b, "\\n");
    else
      buf_append(b, v, 1);
  }
}

int sesrep_metrics(void *ud, buf *b) {
  const sesrep *s = ud;
  if (!sesrep_enabled(s)) return 0;
  static const char *const names[] = {"seslog_ses_reputation_bounce_rate",
                                      "seslog_ses_reputation_complaint_rate"};
  static const char *const help[] = {
      "AWS/SES Reputation.BounceRate, the average of the monitor window's data points (a "
      "fraction; no point reads as 0); per configuration set with a label",
      "AWS/SES Reputation.ComplaintRate, as the bounce rate"};
  for (int m = 0; m < 2; m++) {
    if (!s->scopes[0].have) break; /* nothing known yet: no series rather than a false 0 */
    buf_printf(b, "# HELP %s %s\n# TYPE %s gauge\n", names[m], help[m], names[m]);
    for (int i = 0; i < s->n_scopes; i++) {
      const struct scope *sc = &s->scopes[i];
      if (!sc->have) continue;
      if (!sc->name[0]) {
        buf_printf(b, "%s %.6g\n", names[m], sc->rate[m]);
        continue;
      }
      buf_printf(b, "%s{configuration_set=\"", names[m]);
      label(b, sc->name);
      buf_printf(b, "\"} %.6g\n", sc->rate[m]);
    }
  }
  if (s->acct_at) {
    static const char *const known[] = {"HEALTHY", "PROBATION", "SHUTDOWN"};
    buf_appends(b,
                "# HELP seslog_ses_enforcement_status The SES account's enforcement status "
                "(GetAccount): 1 for the current one\n"
                "# TYPE seslog_ses_enforcement_status gauge\n");
    int listed = 0;
    for (int i = 0; i < 3; i++) {
      int cur = strcmp(s->acct.status, known[i]) == 0;
      listed |= cur;
      buf_printf(b, "seslog_ses_enforcement_status{status=\"%s\"} %d\n", known[i], cur);
    }
    if (!listed) buf_printf(b, "seslog_ses_enforcement_status{status=\"%s\"} 1\n", s->acct.status);
    buf_printf(b,
               "# HELP seslog_ses_sending_enabled 1 when SES may send for this account\n"
               "# TYPE seslog_ses_sending_enabled gauge\n"
               "seslog_ses_sending_enabled %d\n",
               s->acct.sending_enabled == 1);
  }
  buf_appends(b,
              "# HELP seslog_ses_reputation_monitor_state AWS's rates judged by seslog: 0 ok, 1 "
              "warn, 2 alert\n# TYPE seslog_ses_reputation_monitor_state gauge\n");
  for (int k = 0; k < 2; k++)
    buf_printf(b, "seslog_ses_reputation_monitor_state{monitor=\"%s\"} %d\n", metric_names[k],
               s->mon[k].state);
  buf_appends(b,
              "# HELP seslog_ses_reputation_requests_total Requests to AWS by API and outcome\n"
              "# TYPE seslog_ses_reputation_requests_total counter\n");
  for (int a = 0; a < 2; a++)
    for (int o = 0; o < O_N; o++)
      buf_printf(b, "seslog_ses_reputation_requests_total{api=\"%s\",outcome=\"%s\"} %llu\n",
                 api_names[a], outcome_names[o], (unsigned long long)s->api[a].outcomes[o]);
  return 0;
}

/* ---- series (pool thread) ------------------------------------------------ */

int sesrep_series(sqlite3 *db, int64_t start_ms, int64_t until_ms, int64_t bucket_ms, buf *b) {
  if (bucket_ms <= 0 || until_ms < start_ms) return SL_EINVAL;
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(db,
                         "SELECT (t - ?1) / ?3 AS k, metric, avg(value), count(*) "
                         "FROM ses_reputation_samples WHERE scope = 'account' AND t >= ?1 "
                         "AND t <= ?2 GROUP BY k, metric ORDER BY k",
                         -1, &st, NULL) != SQLITE_OK)
    return SL_EDB;
  sqlite3_bind_int64(st, 1, start_ms);
  sqlite3_bind_int64(st, 2, until_ms);
  sqlite3_bind_int64(st, 3, bucket_ms);
  int rc = buf_appends(b, "\"points\":[");
  int64_t n = (until_ms - start_ms + bucket_ms - 1) / bucket_ms; /* as /api/timeseries */
  int step = sqlite3_step(st);
  for (int64_t i = 0; i < n && !rc; i++) {
    double v[2] = {0, 0};
    int have[2] = {0, 0};
    int64_t count = 0;
    while (step == SQLITE_ROW && sqlite3_column_int64(st, 0) <= i) {
      if (sqlite3_column_int64(st, 0) == i) {
        const char *m = (const char *)sqlite3_column_text(st, 1);
        int k = m && strcmp(m, "complaintRate") == 0 ? M_COMPLAINT : M_BOUNCE;
        v[k] = sqlite3_column_double(st, 2);
        have[k] = 1;
        count += sqlite3_column_int64(st, 3);
      }
      step = sqlite3_step(st);
    }
    char t[25];
    util_format_iso8601(start_ms + i * bucket_ms, t);
    rc = buf_printf(b, "%s{\"t\":\"%s\",\"bounceRate\":", i ? "," : "", t);
    if (!rc) {
      json_rate(b, have[0], v[0]);
      buf_appends(b, ",\"complaintRate\":");
      json_rate(b, have[1], v[1]);
      rc = buf_printf(b, ",\"samples\":%lld}", (long long)count);
    }
  }
  if (step != SQLITE_ROW && step != SQLITE_DONE) rc = step == SQLITE_INTERRUPT ? SL_EBUSY : SL_EDB;
  sqlite3_finalize(st);
  if (!rc) rc = buf_appends(b, "]");
  return rc;
}
