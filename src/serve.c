/* serve.c - `seslog serve`: the one place that wires the modules together.
 *
 * Start: options, the store and its writer thread, the outbound client,
 * the certificate cache, ingest, the web files, the router, the listeners.
 * Stop (SIGINT/SIGTERM): stop accepting, let the writer commit what is in
 * flight, answer those requests, close every handle, close the database. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "certcache.h"
#include "cmd.h"
#include "config.h"
#include "error.h"
#include "ingest.h"
#include "log.h"
#include "outbound.h"
#include "router.h"
#include "server.h"
#include "static.h"
#include "subs.h"
#include "store.h"
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
  long queue_max;
};

#define O(f) offsetof(struct serve_opts, f)
static const struct opt serve_table[] = {
    {"db", OPT_STR, O(db), SESLOG_DEFAULT_DB, "PATH", "the SQLite database (its folder is created)"},
    {"listen", OPT_STR, O(listen), "127.0.0.1:8490", "HOST:PORT",
     "API, web UI, /metrics and /sns"},
    {"sns-listen", OPT_STR, O(sns_listen), NULL, "HOST:PORT",
     "a second listener serving only POST /sns and GET /healthz, to expose publicly"},
    {"web", OPT_STR, O(web), "web", "DIR", "static files of the log browser"},
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
     "open connections at once; more are refused"},
    {"queue-max", OPT_INT, O(queue_max), "20000", "N",
     "events waiting for the disk before /sns answers 503 (SNS retries)"},
    {0},
};
#undef O

static const char serve_usage[] =
    "Usage: seslog serve [OPTIONS]\n"
    "\n"
    "Runs the server: SNS posts SES notifications to POST /sns; each is verified (signature,\n"
    "certificate, topic), stored durably in SQLite, and answered only after the commit.";

typedef struct app {
  uv_loop_t loop;
  uv_async_t store_async;  /* the writer's "results ready" */
  uv_signal_t sigint, sigterm;
  store *st;
  outbound *ob;
  certcache *cc;
  ingest *in;
  subs *sb;
  static_files *web;
  server *srv;
  struct router router;
  int stopping;
} app;

static void on_store_ready(uv_async_t *a) {
  app *ap = a->data;
  store_complete(ap->st);
}

/* Writer thread: wake the loop. */
static void notify_loop(void *ud) { uv_async_send(ud); }

static void on_outbound_closed(void *ud) {
  app *ap = ud;
  uv_close((uv_handle_t *)&ap->store_async, NULL);
  uv_close((uv_handle_t *)&ap->sigint, NULL);
  uv_close((uv_handle_t *)&ap->sigterm, NULL);
}

static void on_server_closed(void *ud) {
  app *ap = ud;
  /* Every request was answered; nothing is queued any more. */
  store_stop(ap->st);
  store_complete(ap->st);
  outbound_close(ap->ob, on_outbound_closed, ap);
}

static void on_signal(uv_signal_t *s, int signum) {
  app *ap = s->data;
  if (ap->stopping) {
    log_kv(LOG_WARN, "second signal: stopping now", NULL);
    exit(1);
  }
  ap->stopping = 1;
  log_kv(LOG_INFO, "stopping: no new connections; finishing the commits in flight", "signal",
         signum == SIGINT ? "SIGINT" : "SIGTERM", NULL);
  server_shutdown(ap->srv, on_server_closed, ap);
}

int cmd_serve(int argc, char **argv, int argi) {
  struct serve_opts o = {0};
  int rc = config_parse("serve", serve_usage, serve_table, &o, argc, argv, &argi);
  if (rc) {
    config_free(serve_table, &o);
    return rc == 1 ? 0 : 2;
  }
  if (argi < argc) {
    fprintf(stderr, "seslog serve: unexpected argument \"%s\" (see seslog serve --help)\n", argv[argi]);
    config_free(serve_table, &o);
    return 2;
  }
  if (log_set_level(o.log_level)) {
    fprintf(stderr, "seslog serve: --log-level must be debug, info, warn or error\n");
    config_free(serve_table, &o);
    return 2;
  }
  if (o.sns_basic_auth && !strchr(o.sns_basic_auth, ':')) {
    fprintf(stderr, "seslog serve: --sns-basic-auth must be USER:PASS\n");
    config_free(serve_table, &o);
    return 2;
  }
  char cert_dir[4096];
  if (o.sns_cert_dir) snprintf(cert_dir, sizeof cert_dir, "%s", o.sns_cert_dir);
  else config_default_cert_dir(o.db, cert_dir, sizeof cert_dir);

  app ap;
  memset(&ap, 0, sizeof ap);
  int status = 2;
  uv_loop_init(&ap.loop);
  uv_async_init(&ap.loop, &ap.store_async, on_store_ready);
  ap.store_async.data = &ap;
  uv_signal_init(&ap.loop, &ap.sigint);
  uv_signal_init(&ap.loop, &ap.sigterm);
  ap.sigint.data = ap.sigterm.data = &ap;

  char err[512];
  struct store_opts so = {.busy_timeout_ms = o.busy_timeout,
                          .queue_max = (int)o.queue_max,
                          .batch_max = 2048,
                          .notify = notify_loop,
                          .notify_ud = &ap.store_async};
  if (store_open(o.db, &so, &ap.st, err, sizeof err)) {
    fprintf(stderr, "seslog serve: %s\n", err);
    goto early_fail;
  }
  struct outbound_opts oo = {.ca_file = o.ca_file,
                             .connect_to = o.connect_to.items,
                             .n_connect_to = o.connect_to.n};
  struct ingest_opts io = {.topic_arns = o.sns_topic_arn.items,
                           .n_topic_arns = o.sns_topic_arn.n,
                           .basic_auth = o.sns_basic_auth};
  if (outbound_new(&ap.loop, &oo, &ap.ob) || certcache_new(ap.ob, cert_dir, 64, &ap.cc) ||
      subs_new(1000, &ap.sb) ||
      ingest_new(&ap.loop, ap.st, ap.cc, ap.ob, ap.sb, &io, &ap.in) ||
      static_load(o.web, &ap.web)) {
    fprintf(stderr, "seslog serve: out of memory at start\n");
    goto early_fail;
  }
  if (subs_load(ap.sb, ap.st)) log_kv(LOG_WARN, "cannot read the subscriptions table", NULL);
  ap.router = (struct router){
      .in = ap.in, .st = ap.st, .sb = ap.sb, .web = ap.web, .api_token = o.api_token};
  struct server_opts svo = {.max_conns = (int)o.max_connections,
                            .max_inflight = 64,
                            .idle_ms = 60000,
                            .request_ms = 30000};
  server_new(&ap.loop, &svo, router_handle, &ap.router, &ap.srv);
  char bound[128];
  const char *listens[2] = {o.listen, o.sns_listen};
  for (int i = 0; i < 2; i++) {
    if (!listens[i]) continue;
    rc = server_listen(ap.srv, listens[i], i ? LISTEN_SNS_ONLY : 0, bound, sizeof bound);
    if (rc) {
      fprintf(stderr, "seslog serve: cannot listen on %s (--%s): %s\n", listens[i],
              i ? "sns-listen" : "listen", rc == UV_EINVAL ? "expected HOST:PORT" : uv_strerror(rc));
      server_shutdown(ap.srv, NULL, NULL);
      goto early_fail;
    }
    log_kv(LOG_INFO, "listening", "addr", bound, "serves", i ? "POST /sns, GET /healthz" : "all",
           NULL);
  }
  if (store_start(ap.st)) goto early_fail;
  if (!o.sns_topic_arn.n)
    log_kv(LOG_WARN, "no --sns-topic-arn allowlist: signed messages from any SNS topic are accepted",
           NULL);
  log_kv(LOG_INFO, "seslog started", "version", SESLOG_VERSION, "db", o.db, "cert_dir", cert_dir,
         NULL);
  uv_signal_start(&ap.sigint, on_signal, SIGINT);
  uv_signal_start(&ap.sigterm, on_signal, SIGTERM);
  uv_run(&ap.loop, UV_RUN_DEFAULT);
  status = 0;
  log_kv(LOG_INFO, "stopped", NULL);
  goto done;

early_fail:
  /* Close whatever was opened, run the loop until the handles are gone. */
  if (ap.ob) outbound_close(ap.ob, NULL, NULL);
  uv_close((uv_handle_t *)&ap.store_async, NULL);
  uv_close((uv_handle_t *)&ap.sigint, NULL);
  uv_close((uv_handle_t *)&ap.sigterm, NULL);
  uv_run(&ap.loop, UV_RUN_DEFAULT);
done:
  server_free(ap.srv);
  ingest_free(ap.in);
  subs_free(ap.sb);
  certcache_free(ap.cc);
  outbound_free(ap.ob);
  static_free(ap.web);
  store_close(ap.st);
  uv_loop_close(&ap.loop);
  config_free(serve_table, &o);
  return status;
}
