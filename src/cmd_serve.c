/* cmd_serve.c - `seslog serve`: the one place that wires the modules together.
 *
 * Start: the whole configuration is checked first (serve_check), before
 * anything is opened; then the application (struct app) is opened in
 * dependency order: the loop, outbound HTTPS with the outbox and its sinks,
 * the watches, the store and its hooks, the modules, the HTTP surface, the
 * listeners (app_open), and run (app_run).
 * Stop (SIGINT/SIGTERM): stop accepting, let the writer commit what is in
 * flight, answer those requests, close every handle, close the database. */
#include <sqlite3.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include <uv.h>

#include "alerts.h"
#include "api.h"
#include "awscreds.h"
#include "certcache.h"
#include "cmd.h"
#include "config.h"
#include "dnsbl.h"
#include "dynamodb.h"
#include "error.h"
#include "hostcheck.h"
#include "ingest.h"
#include "log.h"
#include "metrics.h"
#include "monitor.h"
#include "outbound.h"
#include "outbox.h"
#include "readpool.h"
#include "retention.h"
#include "router.h"
#include "server.h"
#include "sesrep.h"
#include "slack.h"
#include "sqs.h"
#include "static.h"
#include "store.h"
#include "subs.h"
#include "suppression.h"
#include "util.h"
#include "version.h"

struct serve_opts {
  char *db;
  char *listen;
  char *sns_listen;
  char *web;
  char *api_token;
  struct opt_list sns_topic_arn;
  char *sns_cert_dir;
  char *sns_basic_auth;
  char *ca_file;
  struct opt_list connect_to;
  char *log_level;
  long busy_timeout;
  long max_connections;
  long sns_max_connections;
  long queue_max;
  long soft_bounce_limit, soft_bounce_days;
  long query_timeout;
  char *slack_webhook_url;
  char *public_url;
  struct opt_list allowed_host;
  char *slack_mention;
  long slack_max_per_minute;
  char *dynamodb_table;
  char *dynamodb_endpoint;
  char *dynamodb_types;
  int dynamodb_extra_attributes;
  double bounce_warn, bounce_alert, complaint_warn, complaint_alert;
  int64_t rate_window;
  long rate_min_volume;
  int64_t silence_alert;
  int64_t monitor_interval;
  int64_t request_timeout;
  int64_t idle_timeout;
  char *retention;
  int64_t retention_default;
  int64_t retention_interval;
  struct opt_list dnsbl_ip, dnsbl_domain, dnsbl_zone;
  int64_t dnsbl_interval;
  char *dns_server;
  int64_t dns_timeout;
  int ses_reputation;
  int64_t ses_reputation_interval;
  struct opt_list ses_configuration_set;
  int read_only;
  struct opt_list sqs_queue_url, sqs_raw_queue_url;
  char *sqs_endpoint;
  long sqs_pollers;
};

#define O(f) offsetof(struct serve_opts, f)
static const struct opt serve_table[] = {
    {"db", OPT_STR, O(db), SESLOG_DEFAULT_DB, "PATH",
     "the SQLite database (its folder is created)"},
    {"listen", OPT_STR, O(listen), "127.0.0.1:8490", "HOST:PORT", "API, web UI, /metrics and /sns"},
    {"sns-listen", OPT_STR, O(sns_listen), NULL, "HOST:PORT",
     "a second listener serving only POST /sns and GET /healthz, to expose publicly"},
    {"web", OPT_STR, O(web), NULL, "DIR",
     "static files of the log browser [<binary's folder>/../web, else "
     "<binary's folder>/../share/seslog/web, else ./web]"},
    {"api-token", OPT_STR, O(api_token), NULL, "TOKEN",
     "require Authorization: Bearer TOKEN on /api/* and /metrics"},
    {"sns-topic-arn", OPT_LIST, O(sns_topic_arn), NULL, "ARN",
     "accept only these topics (repeatable; env comma-separated)"},
    {"sns-cert-dir", OPT_STR, O(sns_cert_dir), NULL, "DIR",
     "signing certificates by file name; fetched ones are stored here [<db folder>/sns-certs]"},
    {"sns-basic-auth", OPT_STR, O(sns_basic_auth), NULL, "USER:PASS",
     "require HTTP Basic auth on /sns (needed for raw message delivery)"},
    {"ca-file", OPT_STR, O(ca_file), NULL, "PATH", "CA bundle for outbound HTTPS"},
    {"connect-to", OPT_LIST, O(connect_to), NULL, "HOST:PORT:HOST2:PORT2",
     "connect to HOST2:PORT2 instead of HOST:PORT for outbound HTTPS (repeatable)"},
    {"log-level", OPT_STR, O(log_level), "info", "LEVEL", "debug, info, warn or error"},
    {"busy-timeout", OPT_INT, O(busy_timeout), "5000", "MS",
     "how long a commit waits for a database locked by another process before answering 503"},
    {"max-connections", OPT_INT, O(max_connections), "4096", "N",
     "open connections at once on --listen; more are refused (loopback clients get a few more)"},
    {"sns-max-connections", OPT_INT, O(sns_max_connections), "4096", "N",
     "the same for --sns-listen, counted apart, so a flood there cannot lock out --listen"},
    {"queue-max", OPT_INT, O(queue_max), "2048", "N",
     "events waiting for the disk before /sns answers 503 (SNS retries); past about 1,000 "
     "more waiting adds latency, not throughput (bench/queue.sh)"},
    {"request-timeout", OPT_DURATION, O(request_timeout), "30s", "DURATION",
     "a request must arrive whole within this (slow clients are cut off with 408)"},
    {"idle-timeout", OPT_DURATION, O(idle_timeout), "60s", "DURATION",
     "an idle keep-alive connection is closed after this"},
    {"soft-bounce-limit", OPT_INT, O(soft_bounce_limit), "3", "N",
     "transient or undetermined bounces of an address that suppress it (0: never)"},
    {"soft-bounce-days", OPT_INT, O(soft_bounce_days), "7", "D",
     "...when they fall within this many days"},
    {"slack-webhook-url", OPT_STR, O(slack_webhook_url), NULL, "URL",
     "Slack incoming webhook for bounce, complaint and monitor alerts (a secret: never logged)"},
    {"public-url", OPT_STR, O(public_url), NULL, "URL",
     "base URL of the web UI, for links in alerts (its host is an allowed Host)"},
    {"allowed-host", OPT_LIST, O(allowed_host), NULL, "NAME",
     "a name --listen answers to besides localhost and IP addresses, e.g. behind a proxy "
     "(repeatable; env comma-separated); other Host headers get 421 (DNS rebinding)"},
    {"slack-mention", OPT_STR, O(slack_mention), "here", "here|channel|none",
     "who an alert notifies"},
    {"slack-max-per-minute", OPT_INT, O(slack_max_per_minute), "10", "N",
     "bounce and complaint messages a minute; past it, one digest a minute"},
    {"dynamodb-table", OPT_STR, O(dynamodb_table), NULL, "NAME",
     "replicate to this DynamoDB table (region and credentials from the AWS_* variables)"},
    {"dynamodb-endpoint", OPT_STR, O(dynamodb_endpoint), NULL, "URL",
     "DynamoDB endpoint, e.g. a local DynamoDB-compatible server [the region's]"},
    {"dynamodb-types", OPT_STR, O(dynamodb_types), "Bounce,Complaint", "LIST",
     "SES types replicated (comma-separated, or all)"},
    {"dynamodb-extra-attributes", OPT_FLAG, O(dynamodb_extra_attributes), NULL, NULL,
     "items also carry bounceType, bounceSubType, source, recipients, ... (beyond the Lambda's)"},
    {"bounce-warn", OPT_DOUBLE, O(bounce_warn), "2.5", "PCT",
     "bounce rate warning threshold, percent"},
    {"bounce-alert", OPT_DOUBLE, O(bounce_alert), "5", "PCT",
     "bounce rate alert threshold, percent"},
    {"complaint-warn", OPT_DOUBLE, O(complaint_warn), "0.05", "PCT",
     "complaint rate warning threshold, percent"},
    {"complaint-alert", OPT_DOUBLE, O(complaint_alert), "0.1", "PCT",
     "complaint rate alert threshold, percent"},
    {"rate-window", OPT_DURATION, O(rate_window), "10m", "DURATION",
     "monitor window (s, m, h, d suffixes)"},
    {"rate-min-volume", OPT_INT, O(rate_min_volume), "100", "N",
     "sends a window needs; fewer widen it back in time, up to 7 days"},
    {"silence-alert", OPT_DURATION, O(silence_alert), "0", "DURATION",
     "announce a topic silent for this long (0: off)"},
    {"monitor-interval", OPT_DURATION, O(monitor_interval), "10s", "DURATION",
     "how often the monitors evaluate"},
    {"retention", OPT_STR, O(retention), NULL, "TYPE=DURATION,...",
     "delete events of a type older than this, e.g. Open=30d,Click=30d,Delivery=90d"},
    {"retention-default", OPT_DURATION, O(retention_default), "0", "DURATION",
     "delete events of the other types older than this (0: keep forever)"},
    {"retention-interval", OPT_DURATION, O(retention_interval), "1m", "DURATION",
     "how often expired events are looked for"},
    {"dnsbl-ip", OPT_LIST, O(dnsbl_ip), NULL, "ADDR",
     "watch this sending IP (v4 or v6) on DNS blocklists (repeatable)"},
    {"dnsbl-domain", OPT_LIST, O(dnsbl_domain), NULL, "NAME",
     "watch this sending or MAIL FROM domain on domain blocklists (repeatable)"},
    {"dnsbl-zone", OPT_LIST, O(dnsbl_zone), NULL, "[ip:|domain:]ZONE",
     "blocklist zones to ask (repeatable) [zen.spamhaus.org, bl.spamcop.net, "
     "b.barracudacentral.org, psbl.surriel.com; domain: dbl.spamhaus.org, multi.surbl.org, "
     "multi.uribl.com]"},
    {"dnsbl-interval", OPT_DURATION, O(dnsbl_interval), "1h", "DURATION",
     "how often the blocklists are asked"},
    {"dns-server", OPT_STR, O(dns_server), NULL, "HOST:PORT[,...]",
     "DNS resolvers for the blocklist lookups [the system's]"},
    {"dns-timeout", OPT_DURATION, O(dns_timeout), "2s", "DURATION",
     "a DNS try without an answer is given up after this (2 tries a lookup)"},
    {"ses-reputation", OPT_FLAG, O(ses_reputation), NULL, NULL,
     "watch AWS's own verdict: CloudWatch Reputation.BounceRate/ComplaintRate and the SES "
     "account's enforcement status (AWS_* credentials and region)"},
    {"ses-reputation-interval", OPT_DURATION, O(ses_reputation_interval), "5m", "DURATION",
     "how often AWS is asked"},
    {"ses-configuration-set", OPT_LIST, O(ses_configuration_set), NULL, "NAME",
     "also watch this configuration set's reputation metrics (repeatable)"},
    {"sqs-queue-url", OPT_LIST, O(sqs_queue_url), NULL, "URL",
     "pull SNS envelopes from this SQS queue (repeatable; env comma-separated)"},
    {"sqs-raw-queue-url", OPT_LIST, O(sqs_raw_queue_url), NULL, "URL",
     "an SQS queue that may also carry bare SES JSON (SNS raw delivery) or EventBridge events; "
     "its access policy is the trust boundary (repeatable)"},
    {"sqs-endpoint", OPT_STR, O(sqs_endpoint), NULL, "URL",
     "SQS endpoint, e.g. a local SQS-compatible server [AWS_ENDPOINT_URL_SQS, AWS_ENDPOINT_URL, "
     "else the queue URL's host]"},
    {"sqs-pollers", OPT_INT, O(sqs_pollers), "2", "N", "receives in flight per SQS queue"},
    {"query-timeout", OPT_INT, O(query_timeout), "2000", "MS",
     "time limit of one API query; past it the query stops and the API answers 503"},
    {"read-only", OPT_FLAG, O(read_only), NULL, NULL,
     "browse a database (an imported archive) without writing to it: no monitors, alerts, "
     "outbox, replication, retention or DNSBL; writes answer 403 read_only (POST /sns 503)"},
    {0},
};
#undef O

const struct opt *serve_options(size_t *target_size) {
  *target_size = sizeof(struct serve_opts);
  return serve_table;
}

static const char serve_usage[] =
    "Usage: seslog serve [OPTIONS]\n"
    "\n"
    "Runs the server: SNS posts SES notifications to POST /sns; each is verified (signature,\n"
    "certificate, topic), stored durably in SQLite, and answered only after the commit.";

/* The whole configuration of a start, checked before anything is opened
 * (serve_check): the options and what is derived from them. */
typedef struct serve_config {
  struct serve_opts o;
  int ro;                    /* --read-only */
  char ro_name[8192];        /* --read-only: the name the read connections open */
  char cert_dir[4096];       /* --sns-cert-dir or its default */
  char *host_names[3 + 64];  /* the names --listen answers to (borrowed) */
  char public_host[256];     /* --public-url's host */
  char listen_host[256];     /* --listen's host */
  struct hostcheck hosts;    /* over host_names */
  struct retention_rules rr; /* --retention, --retention-default */
  unsigned dynamodb_types;   /* --dynamodb-types */
  char creds_err[512];       /* why there are no AWS credentials, for the reputation watch */
} serve_config;

typedef struct app {
  uv_loop_t loop;
  int loop_ok;            /* uv_loop_init succeeded */
  int handles_ok;         /* store_async and the signal handles are initialized */
  int ran;                /* the loop ran and the stop closed every handle */
  uv_async_t store_async; /* the writer's "results ready" */
  uv_signal_t sigint, sigterm;
  store *st;
  outbound *ob;
  certcache *cc;
  ingest *in;
  subs *sb;
  outbox *box;
  slack *sl;
  dynamodb *ddb;   /* replication to DynamoDB, or NULL */
  awscreds *creds; /* AWS credentials for SQS, or NULL */
  sqs *sqs;        /* the SQS pollers, or NULL */
  monitor *mon;
  metrics *mx;
  retention *ret;
  dnsbl *dnsbl;     /* the DNSBL watch (disabled when nothing is watched) */
  readpool *rp;     /* read-only queries on the thread pool */
  api *api;         /* GET /api/events, /api/stats, ... */
  suppression *sup; /* the suppression rules and /api/suppression */
  static_files *web;
  server *srv;
  struct router router;
  int stopping;
  sesrep *sesrep; /* AWS's reputation metrics and account status (disabled unless asked) */
  struct dynamodb_opts ddo; /* the replication's options, for the start's log line */
} app;

/* The DynamoDB sink's own field in /api/diagnostics. */
static int ddb_fields(void *ud, buf *b) {
  return buf_printf(b, ",\"keyCollisions\":%lld", (long long)dynamodb_key_collisions(ud));
}

static void observe_latency(void *ud, double ms) {
  app *ap = ud;
  metrics_observe_ingest(ap->mx, ms);
}

static void announce_unsubscribe(void *ud, const char *topic) {
  app *ap = ud;
  alerts_send(ap->box, &(struct alert){.kind = ALERT_UNSUBSCRIBE, .subject = topic}, NULL, NULL,
              NULL);
}

/* /api/stats over the monitors' window shows their state (hysteresis). */
static int api_monitor_reading(void *ud, int complaint, struct api_monitor_live *live) {
  app *ap = ud;
  if (!ap->mon) return 0;
  struct monitor_reading r;
  monitor_get(ap->mon, complaint ? MON_COMPLAINT : MON_BOUNCE, &r);
  if (!r.evaluated_ms) return 0;
  snprintf(live->state, sizeof live->state, "%s", r.state);
  live->value = r.value;
  live->window_ms = r.window_ms;
  live->present = r.present;
  return 1;
}

/* The "aws" object of /api/stats, beside seslog's own monitors. */
static void api_aws_json(void *ud, buf *b) {
  app *ap = ud;
  struct monitor_reading r[2];
  int have = 0;
  if (ap->mon) {
    monitor_get(ap->mon, MON_BOUNCE, &r[0]);
    monitor_get(ap->mon, MON_COMPLAINT, &r[1]);
    have = r[0].evaluated_ms != 0;
  }
  sesrep_stats_json(ap->sesrep, b, have, have ? r[0].value : 0, have ? r[1].value : 0);
}

/* Descriptors kept for everything but client connections: the database
 * and its read pool, outbound HTTPS, certificates, DNS, the log. */
#define FD_SPARE 256

/* Every connection is a descriptor. Raises the soft RLIMIT_NOFILE to the
 * hard one; when both caps would not fit under it, lowers the SNS
 * listener's cap (the public one) first, so the loopback listener always
 * has room for its own connections. Says so in the log. */
static void fit_connection_caps(long *main_cap, long *sns_cap, int has_sns) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
  if (rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) getrlimit(RLIMIT_NOFILE, &rl);
  }
  if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > 100000000) return;
  long budget = (long)rl.rlim_cur - FD_SPARE;
  if (budget < 32) budget = 32;
  long want_main = *main_cap, want_sns = has_sns ? *sns_cap : 0;
  if (want_main + want_sns <= budget) return;
  if (has_sns) {
    long main_share = want_main < budget / 2 ? want_main : budget / 2;
    *sns_cap = budget - main_share < want_sns ? budget - main_share : want_sns;
    *main_cap = budget - *sns_cap < want_main ? budget - *sns_cap : want_main;
  } else {
    *main_cap = budget;
  }
  char lim[24], m[24], sn[24];
  snprintf(lim, sizeof lim, "%llu", (unsigned long long)rl.rlim_cur);
  snprintf(m, sizeof m, "%ld", *main_cap);
  snprintf(sn, sizeof sn, "%ld", has_sns ? *sns_cap : 0);
  log_kv(LOG_WARN, "connection caps lowered to fit the open-file limit (ulimit -n)", "limit", lim,
         "max_connections", m, "sns_max_connections", sn, NULL);
}

static void on_store_ready(uv_async_t *a) {
  app *ap = a->data;
  store_complete(ap->st);
}

/* Writer thread: wake the loop. */
static void notify_loop(void *ud) {
  uv_async_send(ud);
}

static void on_outbox_closed(void *ud) {
  (void)ud;
}

/* The first of AWS_ENDPOINT_URL_<SERVICE> and AWS_ENDPOINT_URL that is
 * set, for a service whose flag was not given; else NULL. */
static const char *aws_endpoint_env(const char *service) {
  char name[64];
  snprintf(name, sizeof name, "AWS_ENDPOINT_URL_%s", service);
  const char *v = getenv(name);
  if (!v || !*v) v = getenv("AWS_ENDPOINT_URL");
  return v && *v ? v : NULL;
}

static void on_outbound_closed(void *ud) {
  app *ap = ud;
  if (ap->box) outbox_close(ap->box, on_outbox_closed, ap);
  ingest_close(ap->in);
  uv_close((uv_handle_t *)&ap->store_async, NULL);
  uv_close((uv_handle_t *)&ap->sigint, NULL);
  uv_close((uv_handle_t *)&ap->sigterm, NULL);
}

/* The last SQS deletes were sent: close outbound (which aborts the
 * receives still waiting). */
static void on_sqs_closed(void *ud) {
  app *ap = ud;
  awscreds_close(ap->creds);
  outbound_close(ap->ob, on_outbound_closed, ap);
}

static void on_server_closed(void *ud) {
  app *ap = ud;
  /* Every request was answered; nothing is queued any more. */
  if (ap->st) { /* NULL with --read-only */
    store_stop(ap->st);
    store_complete(ap->st);
  }
  if (ap->sqs)
    sqs_close(ap->sqs, on_sqs_closed, ap); /* deletes what was committed */
  else
    on_sqs_closed(ap);
}

/* The stop: no new connections, the commits in flight finished and
 * answered, then every handle closed (on_server_closed and after), which
 * ends the loop app_run runs. A second signal exits at once. */
static void app_stop(app *ap, int signum) {
  if (ap->stopping) {
    log_kv(LOG_WARN, "second signal: stopping now", NULL);
    exit(1);
  }
  ap->stopping = 1;
  log_kv(LOG_INFO, "stopping: no new connections; finishing the commits in flight", "signal",
         signum == SIGINT ? "SIGINT" : "SIGTERM", NULL);
  if (ap->mon) monitor_close(ap->mon);
  if (ap->ret) retention_close(ap->ret);
  dnsbl_close(ap->dnsbl);
  sesrep_close(ap->sesrep);
  sqs_stop(ap->sqs);
  server_shutdown(ap->srv, on_server_closed, ap);
}

static void on_signal(uv_signal_t *s, int signum) {
  app_stop(s->data, signum);
}

extern const char schema_sql[]; /* schema/seslog.sql, embedded at build */

/* --read-only: checks that path is a seslog database at the schema
 * version this seslog writes (an older one needs the migration a normal
 * start does), opened by name (readpool_archive_uri). Returns 0, or
 * SL_EDB with a sentence in err. */
static int check_archive(const char *path, const char *name, char *err, size_t errlen) {
  int latest = 0;
  for (const char *p = strstr(schema_sql, "-- version "); p; p = strstr(p + 1, "-- version ")) {
    int v = (int)strtol(p + 11, NULL, 10);
    if (v > latest) latest = v;
  }
  sqlite3 *db;
  if (readpool_open_conn(name, &db, err, errlen)) return SL_EDB;
  sqlite3_stmt *st = NULL;
  int version = -1;
  if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK &&
      sqlite3_step(st) == SQLITE_ROW)
    version = sqlite3_column_int(st, 0);
  sqlite3_finalize(st);
  st = NULL;
  int ok = version >= 0 && sqlite3_prepare_v2(db, "SELECT 1 FROM SesEventMessages, rollup_minute",
                                              -1, &st, NULL) == SQLITE_OK;
  sqlite3_finalize(st);
  if (!ok)
    snprintf(err, errlen, "%s is not a seslog database (%s)", path, sqlite3_errmsg(db));
  else if (version != latest)
    snprintf(err, errlen,
             "%s has schema version %d and this seslog reads version %d: start it once without "
             "--read-only to migrate it (or use the seslog that wrote it)",
             path, version, latest);
  sqlite3_close(db);
  return ok && version == latest ? 0 : SL_EDB;
}

/* ---- the configuration, checked whole before anything is opened -------- */

/* Prints "seslog serve: MSG" and returns -1, for the checks below. */
static int refuse(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int refuse(const char *fmt, ...) {
  va_list ap;
  fputs("seslog serve: ", stderr);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  return -1;
}

/* --listen, --sns-listen, --api-token, --allowed-host, --public-url and
 * the rule that the API is never on the network unguarded; fills the
 * allowed host names and the certificate folder. Returns 0 or -1 after
 * one line on stderr. */
static int check_listeners(serve_config *c) {
  struct serve_opts *o = &c->o;
  if (o->sns_basic_auth && !strchr(o->sns_basic_auth, ':'))
    return refuse("--sns-basic-auth must be USER:PASS");
  const char *addrs[2] = {o->listen, o->sns_listen};
  for (int i = 0; i < 2; i++) {
    char host[256];
    int port;
    struct sockaddr_in6 sa;
    if (!addrs[i]) continue;
    if (config_split_hostport(addrs[i], host, sizeof host, &port) ||
        (strcmp(host, "localhost") && uv_ip4_addr(host, port, (struct sockaddr_in *)&sa) &&
         uv_ip6_addr(host, port, &sa)))
      return refuse(
          "--%s %s: expected HOST:PORT with a numeric address, e.g. "
          "127.0.0.1:8490, localhost:8490 or [::1]:8490",
          i ? "sns-listen" : "listen", addrs[i]);
  }
  if (o->api_token && !*o->api_token) return refuse("--api-token must not be empty");
  c->hosts = (struct hostcheck){c->host_names, 0};
  for (size_t i = 0; i < o->allowed_host.n; i++) {
    const char *h = o->allowed_host.items[i];
    if (c->hosts.n == 64 || !*h || strcspn(h, ":/[]@ ") != strlen(h))
      return refuse(
          "--allowed-host %s: expected a host name without port, like "
          "seslog.example.com (at most 64)",
          h);
    c->host_names[c->hosts.n++] = o->allowed_host.items[i];
  }
  if (o->public_url &&
      hostcheck_url_host(o->public_url, c->public_host, sizeof c->public_host) == 0)
    c->host_names[c->hosts.n++] = c->public_host;
  int listen_port;
  if (config_split_hostport(o->listen, c->listen_host, sizeof c->listen_host, &listen_port) == 0)
    c->host_names[c->hosts.n++] = c->listen_host;
  /* The API serves every stored address: never to the network unguarded.
   * (--sns-listen serves only /sns and /healthz, so it may be public.) */
  if (!o->api_token && c->listen_host[0] && !api_is_loopback(o->listen))
    return refuse(
        "--listen %s is not a loopback address and no --api-token is set, so "
        "anyone who reaches it could read every stored event; set --api-token (or "
        "SESLOG_API_TOKEN), or listen on 127.0.0.1 and expose only --sns-listen",
        o->listen);
  if (o->sns_cert_dir)
    snprintf(c->cert_dir, sizeof c->cert_dir, "%s", o->sns_cert_dir);
  else
    config_default_cert_dir(o->db, c->cert_dir, sizeof c->cert_dir);
  return 0;
}

/* --read-only: the database exists and is an archive at this schema
 * version, and nothing asked for would write to it. Returns 0 or -1
 * after one line on stderr. */
static int check_read_only(serve_config *c) {
  struct serve_opts *o = &c->o;
  char err[512];
  if (!c->ro) return 0;
  if (access(o->db, F_OK) != 0) return refuse("--read-only: no database at %s", o->db);
  if (readpool_archive_uri(o->db, c->ro_name, sizeof c->ro_name) ||
      check_archive(o->db, c->ro_name, err, sizeof err))
    return refuse("--read-only: %s", c->ro_name[0] ? err : "the database path is too long");
  if (o->sqs_queue_url.n || o->sqs_raw_queue_url.n)
    return refuse("--read-only takes no --sqs-queue-url: it stores nothing");
  if (o->ses_reputation)
    return refuse("--read-only takes no --ses-reputation: it stores AWS's figures");
  return 0;
}

/* Thresholds, ranges and the rules between options. Returns 0 or -1
 * after one line on stderr. */
static int check_rules(serve_config *c) {
  struct serve_opts *o = &c->o;
  char err[512];
  if (o->bounce_warn > o->bounce_alert || o->complaint_warn > o->complaint_alert)
    return refuse("a warn threshold is above its alert threshold");
  if (o->slack_mention && strcmp(o->slack_mention, "here") && strcmp(o->slack_mention, "channel") &&
      strcmp(o->slack_mention, "none"))
    return refuse("--slack-mention must be here, channel or none");
  c->rr = (struct retention_rules){.default_ms = o->retention_default};
  if (o->retention && retention_parse(o->retention, &c->rr, err, sizeof err))
    return refuse("--retention: %s", err);
  if ((o->sqs_queue_url.n || o->sqs_raw_queue_url.n) &&
      (o->sqs_pollers < 1 || o->sqs_pollers > 100))
    return refuse("--sqs-pollers must be from 1 to 100");
  if (o->dynamodb_table && !c->ro &&
      dynamodb_parse_types(o->dynamodb_types, &c->dynamodb_types, err, sizeof err))
    return refuse("--dynamodb-types: %s", err);
  if (o->queue_max < 1 || o->queue_max > 10000000)
    return refuse("--queue-max must be from 1 to 10000000");
  if (o->soft_bounce_limit > 1000000 || o->soft_bounce_days > 36500 ||
      (o->soft_bounce_limit && o->soft_bounce_days < 1))
    return refuse(
        "--soft-bounce-limit must be at most 1000000 and "
        "--soft-bounce-days from 1 to 36500");
  return 0;
}

/* The whole configuration. Returns 0 or -1 after one line on stderr. */
static int serve_check(serve_config *c) {
  if (log_set_level(c->o.log_level))
    return refuse("--log-level must be debug, info, warn or error");
  c->ro = c->o.read_only;
  if (check_listeners(c) || check_read_only(c) || check_rules(c)) return -1;
  return 0;
}

/* ---- the application: open, run, stop, close ---------------------------- */

/* The loop and the handles the application owns. Returns 0 or -1 after
 * one line on stderr. */
static int app_open_loop(app *ap) {
  int rc = uv_loop_init(&ap->loop);
  if (rc) return refuse("cannot start the event loop: %s", uv_strerror(rc));
  ap->loop_ok = 1;
  if ((rc = uv_async_init(&ap->loop, &ap->store_async, on_store_ready)) ||
      (rc = uv_signal_init(&ap->loop, &ap->sigint)) ||
      (rc = uv_signal_init(&ap->loop, &ap->sigterm))) {
    /* Close the ones that were initialized (libuv sets .loop on success). */
    if (ap->store_async.loop) uv_close((uv_handle_t *)&ap->store_async, NULL);
    if (ap->sigint.loop) uv_close((uv_handle_t *)&ap->sigint, NULL);
    uv_run(&ap->loop, UV_RUN_DEFAULT);
    return refuse("cannot start the event loop: %s", uv_strerror(rc));
  }
  ap->handles_ok = 1;
  ap->store_async.data = ap;
  ap->sigint.data = ap->sigterm.data = ap;
  return 0;
}

/* Outbound HTTPS, the outbox and its sinks (Slack, DynamoDB), the AWS
 * credentials and the SQS pollers. Returns 0 or -1 after one line. */
static int app_open_outbound(app *ap, serve_config *c) {
  struct serve_opts *o = &c->o;
  char err[512];
  struct outbound_opts oo = {
      .ca_file = o->ca_file, .connect_to = o->connect_to.items, .n_connect_to = o->connect_to.n};
  if (outbound_new(&ap->loop, &oo, &ap->ob) || outbox_new(&ap->loop, &ap->box))
    return refuse("out of memory at start");
  if (o->slack_webhook_url && !c->ro) {
    struct slack_opts slo = {.webhook_url = o->slack_webhook_url,
                             .public_url = o->public_url,
                             .mention = o->slack_mention,
                             .max_per_minute = (int)o->slack_max_per_minute};
    struct outbox_sink sink = {0};
    if (slack_new(ap->ob, &slo, &ap->sl) || !(sink = slack_sink(ap->sl)).name ||
        outbox_add_sink(ap->box, &sink) < 0)
      return refuse("out of memory at start");
  }
  /* One credentials provider for every AWS service (SQS, DynamoDB, the
   * reputation watch). The watch alone never stops the start: it shows why
   * it has none. */
  int need_creds = !c->ro && (o->dynamodb_table || o->sqs_queue_url.n || o->sqs_raw_queue_url.n);
  if ((need_creds || o->ses_reputation) &&
      awscreds_new(&ap->loop, ap->ob, &ap->creds, c->creds_err, sizeof c->creds_err)) {
    if (need_creds) return refuse("AWS credentials: %s", c->creds_err);
    ap->creds = NULL;
  }
  /* Before the database is opened: a bad queue changes nothing. */
  if (o->sqs_queue_url.n || o->sqs_raw_queue_url.n) {
    struct sqs_opts qo = {.queue_urls = o->sqs_queue_url.items,
                          .n_queue_urls = o->sqs_queue_url.n,
                          .raw_queue_urls = o->sqs_raw_queue_url.items,
                          .n_raw_queue_urls = o->sqs_raw_queue_url.n,
                          .endpoint = o->sqs_endpoint ? o->sqs_endpoint : aws_endpoint_env("SQS"),
                          .pollers = (int)o->sqs_pollers,
                          .basic_auth = o->sns_basic_auth};
    if (sqs_new(&ap->loop, ap->ob, ap->creds, &qo, &ap->sqs, err, sizeof err))
      return refuse("--sqs-queue-url: %s", err);
  }
  ap->ddo = (struct dynamodb_opts){
      .table = o->dynamodb_table,
      .endpoint = o->dynamodb_endpoint ? o->dynamodb_endpoint : aws_endpoint_env("DYNAMODB"),
      .extra_attributes = o->dynamodb_extra_attributes,
      .creds = ap->creds,
      .types = c->dynamodb_types};
  if (o->dynamodb_table && !c->ro) {
    if (dynamodb_env(&ap->ddo, err, sizeof err) ||
        dynamodb_new(&ap->loop, ap->ob, &ap->ddo, &ap->ddb, err, sizeof err))
      return refuse("--dynamodb-table %s: %s", o->dynamodb_table, err);
    if (dynamodb_add_sink(ap->ddb, ap->box) < 0) return refuse("too many outbox sinks");
  }
  return 0;
}

/* The DNSBL watch and AWS's reputation watch (both disabled when nothing
 * asks for them). Returns 0 or -1 after one line on stderr. */
static int app_open_watches(app *ap, serve_config *c) {
  struct serve_opts *o = &c->o;
  char err[512];
  struct dnsbl_opts dno = {.ips = o->dnsbl_ip.items,
                           .n_ips = c->ro ? 0 : (int)o->dnsbl_ip.n,
                           .domains = o->dnsbl_domain.items,
                           .n_domains = c->ro ? 0 : (int)o->dnsbl_domain.n,
                           .zones = o->dnsbl_zone.items,
                           .n_zones = (int)o->dnsbl_zone.n,
                           .servers = o->dns_server,
                           .interval_ms = o->dnsbl_interval,
                           .timeout_ms = o->dns_timeout};
  if (dnsbl_new(&ap->loop, ap->box, &dno, &ap->dnsbl, err, sizeof err)) return refuse("%s", err);
  struct sesrep_opts sro = {.enabled = o->ses_reputation,
                            .interval_ms = o->ses_reputation_interval,
                            .config_sets = o->ses_configuration_set.items,
                            .n_config_sets = (int)o->ses_configuration_set.n,
                            .bounce_warn = o->bounce_warn / 100,
                            .bounce_alert = o->bounce_alert / 100,
                            .complaint_warn = o->complaint_warn / 100,
                            .complaint_alert = o->complaint_alert / 100,
                            .window_ms = o->rate_window,
                            .region = sesrep_region_env(),
                            .creds = ap->creds,
                            .creds_error = c->creds_err};
  if (sesrep_new(&ap->loop, ap->ob, ap->box, &sro, &ap->sesrep, err, sizeof err))
    return refuse("%s", err);
  return 0;
}

/* The store with its hooks (outbox, metrics, suppression, DynamoDB's
 * collision check, the subscriptions table) and the outbox's rows; nothing with --read-only but
 * the hooks' modules. Returns 0 or -1 after one line on stderr. */
static int app_open_store(app *ap, serve_config *c) {
  struct serve_opts *o = &c->o;
  char err[512];
  struct store_opts so = {.busy_timeout_ms = o->busy_timeout,
                          .queue_max = (int)o->queue_max,
                          .batch_max = 2048,
                          .notify = notify_loop,
                          .notify_ud = &ap->store_async};
  struct suppression_opts spo = {.soft_bounce_limit = (int)o->soft_bounce_limit,
                                 .soft_bounce_days = (int)o->soft_bounce_days};
  if (metrics_new(&ap->mx) || suppression_new(&spo, &ap->sup) || subs_new(1000, &ap->sb))
    return refuse("out of memory at start");
  so.hooks[so.n_hooks++] = outbox_hook(ap->box);
  so.hooks[so.n_hooks++] = metrics_hook(ap->mx);
  suppression_hook(ap->sup, &so.hooks[so.n_hooks++]);
  if (ap->ddb) so.hooks[so.n_hooks++] = dynamodb_hook(ap->ddb);
  so.hooks[so.n_hooks++] = subs_hook(ap->sb);
  if (c->ro) return 0;
  if (store_open(o->db, &so, &ap->st, err, sizeof err)) return refuse("%s", err);
  if (outbox_attach(ap->box, ap->st)) return refuse("cannot read the outbox of %s", o->db);
  return 0;
}

/* The web files, the API and the router over every module: the HTTP
 * surface in one place. Returns 0 or -1 after one line on stderr. */
static int app_open_http(app *ap, serve_config *c) {
  struct serve_opts *o = &c->o;
  char web_dir[4096];
  if (!o->web) static_default_dir(web_dir, sizeof web_dir);
  if (static_load(o->web ? o->web : web_dir, &ap->web) ||
      api_new(ap->rp,
              &(struct api_opts){.query_timeout_ms = o->query_timeout,
                                 .bounce_warn = o->bounce_warn / 100,
                                 .bounce_alert = o->bounce_alert / 100,
                                 .complaint_warn = o->complaint_warn / 100,
                                 .complaint_alert = o->complaint_alert / 100,
                                 .monitor_reading = api_monitor_reading,
                                 .monitor_ud = ap,
                                 .monitor_window_ms = o->rate_window,
                                 .aws_json = api_aws_json,
                                 .aws_series = sesrep_enabled(ap->sesrep)},
              &ap->api))
    return refuse("out of memory at start");
  ap->router = (struct router){.in = ap->in,
                               .st = ap->st,
                               .rp = ap->rp,
                               .sb = ap->sb,
                               .web = ap->web,
                               .api = ap->api,
                               .api_token = o->api_token,
                               .hosts = c->hosts,
                               .read_only = c->ro,
                               .sup = ap->sup,
                               .dnsbl = ap->dnsbl,
                               .sesrep = ap->sesrep,
                               .sqs = ap->sqs,
                               .metrics = {.m = ap->mx,
                                           .in = ap->in,
                                           .mon = ap->mon,
                                           .box = ap->box,
                                           .st = ap->st,
                                           .db_path = o->db}};
  router_init(&ap->router);
  router_add_sink_fields(&ap->router,
                         &(struct router_sink_fields){"dynamodb", ddb_fields, ap->ddb});
  metrics_add_source(ap->mx, dynamodb_metrics, ap->ddb);
  metrics_add_source(ap->mx, dnsbl_metrics, ap->dnsbl);
  metrics_add_source(ap->mx, sesrep_metrics, ap->sesrep);
  metrics_add_source(ap->mx, sqs_metrics, ap->sqs);
  return 0;
}

/* Reads the SNS topics seen (an archive's by a connection of its own). */
static void app_load_subs(app *ap, serve_config *c) {
  if (!c->ro) {
    if (subs_load(ap->sb, ap->st)) log_kv(LOG_WARN, "cannot read the subscriptions table", NULL);
    return;
  }
  sqlite3 *rdb = NULL;
  if (readpool_open_conn(c->ro_name, &rdb, NULL, 0) || subs_load_db(ap->sb, rdb))
    log_kv(LOG_WARN, "cannot read the subscriptions table", NULL);
  sqlite3_close(rdb);
}

/* Certificates, subscriptions, ingest, the read pool, the monitors and
 * retention, attached to the store. Returns 0 or -1 after one line. */
static int app_open_modules(app *ap, serve_config *c) {
  struct serve_opts *o = &c->o;
  struct ingest_opts io = {.topic_arns = o->sns_topic_arn.items,
                           .n_topic_arns = o->sns_topic_arn.n,
                           .basic_auth = o->sns_basic_auth,
                           .observe_latency = observe_latency,
                           .on_unsubscribe = alerts_enabled(ap->box) ? announce_unsubscribe : NULL,
                           .ud = ap};
  struct monitor_opts mo = {.bounce_warn = o->bounce_warn / 100,
                            .bounce_alert = o->bounce_alert / 100,
                            .complaint_warn = o->complaint_warn / 100,
                            .complaint_alert = o->complaint_alert / 100,
                            .window_ms = o->rate_window,
                            .min_volume = o->rate_min_volume,
                            .interval_ms = o->monitor_interval,
                            .silence_ms = o->silence_alert};
  if (certcache_new(ap->ob, c->cert_dir, 64, &ap->cc) ||
      ingest_new(&ap->loop, ap->st, ap->cc, ap->ob, ap->sb, &io, &ap->in) ||
      readpool_new(&ap->loop, c->ro ? c->ro_name : o->db, (int)o->query_timeout, &ap->rp) ||
      (!c->ro && (monitor_new(&ap->loop, ap->rp, ap->st, ap->box, ap->sb, &mo, &ap->mon) ||
                  retention_new(&ap->loop, ap->st, &c->rr, o->retention_interval, &ap->ret))))
    return refuse("out of memory at start");
  app_load_subs(ap, c);
  if (!c->ro) dnsbl_attach(ap->dnsbl, ap->st);
  sesrep_attach(ap->sesrep, ap->st);
  return 0;
}

/* The server, the signal handlers and the listeners. Returns 0 or -1
 * after one line on stderr. */
static int app_listen(app *ap, serve_config *c) {
  struct serve_opts *o = &c->o;
  fit_connection_caps(&o->max_connections, &o->sns_max_connections, o->sns_listen != NULL);
  struct server_opts svo = {.max_conns = (int)o->max_connections,
                            .sns_max_conns = (int)o->sns_max_connections,
                            .max_inflight = 64,
                            .idle_ms = o->idle_timeout > 0 ? o->idle_timeout : 60000,
                            .request_ms = o->request_timeout > 0 ? o->request_timeout : 30000};
  if (server_new(&ap->loop, &svo, router_handle, &ap->router, &ap->srv))
    return refuse("out of memory at start");
  /* Handlers first: once the log says "listening", a signal stops cleanly. */
  uv_signal_start(&ap->sigint, on_signal, SIGINT);
  uv_signal_start(&ap->sigterm, on_signal, SIGTERM);
  char bound[128];
  const char *listens[2] = {o->listen, o->sns_listen};
  for (int i = 0; i < 2; i++) {
    if (!listens[i]) continue;
    int rc = server_listen(ap->srv, listens[i], i ? LISTEN_SNS_ONLY : 0, bound, sizeof bound);
    if (rc)
      return refuse("cannot listen on %s (--%s): %s", listens[i], i ? "sns-listen" : "listen",
                    rc == UV_EINVAL ? "expected HOST:PORT" : uv_strerror(rc));
    log_kv(LOG_INFO, "listening", "addr", bound, "serves", i ? "POST /sns, GET /healthz" : "all",
           NULL);
  }
  return 0;
}

/* Everything, in dependency order, from a checked configuration. Returns
 * 0, or -1 after one line on stderr; app_close frees what was opened. */
static int app_open(app *ap, serve_config *c) {
  if (app_open_loop(ap) || app_open_outbound(ap, c) || app_open_watches(ap, c) ||
      app_open_store(ap, c) || app_open_modules(ap, c) || app_open_http(ap, c) || app_listen(ap, c))
    return -1;
  return 0;
}

/* The start's log lines: what runs and what is not configured. */
static void app_log_start(app *ap, serve_config *c) {
  struct serve_opts *o = &c->o;
  if (!o->slack_webhook_url && !c->ro)
    log_kv(LOG_INFO, "no --slack-webhook-url: alerts are logged and kept, not sent", NULL);
  if (ap->ddb) {
    char types[200];
    dynamodb_types_str(ap->ddo.types ? ap->ddo.types : DYNAMODB_TYPES_DEFAULT, types, sizeof types);
    log_kv(LOG_INFO, "replicating to DynamoDB", "table", o->dynamodb_table, "endpoint",
           dynamodb_endpoint(ap->ddb), "region", ap->ddo.region, "types", types, "credentials",
           awscreds_source(ap->creds), NULL);
  }
  if (!o->sns_topic_arn.n && !c->ro)
    log_kv(LOG_WARN,
           "no --sns-topic-arn allowlist: signed messages from any SNS topic are accepted", NULL);
  log_kv(LOG_INFO, "seslog started", "version", SESLOG_VERSION, "db", o->db, "cert_dir",
         c->cert_dir, NULL);
}

/* Loads the stored states, starts the writer and the timers, and runs the
 * loop until a signal's stop has closed every handle. Returns 0, or -1
 * when the writer cannot start. */
static int app_run(app *ap, serve_config *c) {
  struct serve_opts *o = &c->o;
  if (!c->ro) {
    if (monitor_load(ap->mon, o->db)) log_kv(LOG_WARN, "cannot read the monitor states", NULL);
    if (dnsbl_load(ap->dnsbl, o->db)) log_kv(LOG_WARN, "cannot read the DNSBL states", NULL);
    if (sesrep_load(ap->sesrep, o->db))
      log_kv(LOG_WARN, "cannot read the SES account status and AWS monitor states", NULL);
    if (store_start(ap->st)) return refuse("cannot start the database writer");
    monitor_start(ap->mon);
    retention_start(ap->ret);
    dnsbl_start(ap->dnsbl);
    sesrep_start(ap->sesrep);
  } else {
    log_kv(LOG_INFO,
           "read-only: browsing without writing; no monitors, alerts, outbox, replication, "
           "retention or DNSBL",
           "db", o->db, NULL);
  }
  metrics_load(ap->mx, ap->rp);
  if (ap->sqs) sqs_start(ap->sqs, ap->in, ap->st);
  app_log_start(ap, c);
  uv_run(&ap->loop, UV_RUN_DEFAULT);
  ap->ran = 1;
  log_kv(LOG_INFO, "stopped", NULL);
  return 0;
}

/* A handle still open when the loop should be empty: named in the log. */
static void log_open_handle(uv_handle_t *h, void *arg) {
  (void)arg;
  log_kv(LOG_WARN, "a handle is still open at exit", "type", uv_handle_type_name(h->type),
         "closing", uv_is_closing(h) ? "yes" : "no", NULL);
}

/* A start that failed: closes whatever was opened and runs the loop until
 * its handles are gone (after a run, the stop did this). */
static void app_close_handles(app *ap) {
  if (ap->srv) server_shutdown(ap->srv, NULL, NULL);
  if (ap->ob) outbound_close(ap->ob, NULL, NULL);
  if (ap->box) outbox_close(ap->box, NULL, NULL);
  if (ap->mon) monitor_close(ap->mon);
  if (ap->ret) retention_close(ap->ret);
  dnsbl_close(ap->dnsbl);
  sesrep_close(ap->sesrep);
  if (ap->sqs) sqs_close(ap->sqs, NULL, NULL);
  awscreds_close(ap->creds);
  ingest_close(ap->in);
  if (ap->handles_ok) {
    uv_close((uv_handle_t *)&ap->store_async, NULL);
    uv_close((uv_handle_t *)&ap->sigint, NULL);
    uv_close((uv_handle_t *)&ap->sigterm, NULL);
  }
  uv_run(&ap->loop, UV_RUN_DEFAULT);
}

/* Frees every module (the hooks' owners after the store they hooked) and
 * closes the loop, naming in the log any handle left open. */
static void app_close(app *ap) {
  if (ap->loop_ok && !ap->ran) app_close_handles(ap);
  server_free(ap->srv);
  ingest_free(ap->in);
  subs_free(ap->sb);
  monitor_free(ap->mon);
  metrics_free(ap->mx);
  retention_free(ap->ret);
  dnsbl_free(ap->dnsbl);
  sesrep_free(ap->sesrep);
  slack_free(ap->sl);
  api_free(ap->api);
  readpool_free(ap->rp);
  certcache_free(ap->cc);
  outbound_free(ap->ob);
  static_free(ap->web);
  store_close(ap->st);
  sqs_free(ap->sqs);
  awscreds_free(ap->creds);
  dynamodb_free(ap->ddb); /* after store_close: its hook runs until then */
  suppression_free(ap->sup);
  outbox_free(ap->box);
  if (!ap->loop_ok) return;
  int rc = uv_loop_close(&ap->loop);
  if (rc) {
    log_kv(LOG_WARN, "the event loop did not close", "error", uv_strerror(rc), NULL);
    uv_walk(&ap->loop, log_open_handle, NULL);
  }
}

int cmd_serve(int argc, char **argv, int argi) {
  serve_config *c = calloc(1, sizeof *c);
  app *ap = calloc(1, sizeof *ap);
  int status = 2;
  if (!c || !ap) {
    fprintf(stderr, "seslog serve: out of memory\n");
    goto out;
  }
  int rc = config_parse("serve", serve_usage, serve_table, &c->o, argc, argv, &argi);
  if (rc) {
    status = rc == 1 ? 0 : 2;
    goto out;
  }
  if (argi < argc) {
    refuse("unexpected argument \"%s\" (see seslog serve --help)", argv[argi]);
    goto out;
  }
  if (serve_check(c)) goto out;
  if (app_open(ap, c) == 0 && app_run(ap, c) == 0) status = 0;
  app_close(ap);
out:
  if (c) config_free(serve_table, &c->o);
  free(c);
  free(ap);
  return status;
}
