/* metrics.c - Prometheus text exposition. */
#include "metrics.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "error.h"

static const char *const types[] = {"Bounce",        "Complaint",   "Delivery", "Send",
                                    "Reject",        "Open",        "Click",    "Rendering Failure",
                                    "DeliveryDelay", "Subscription"};
#define N_TYPES (sizeof types / sizeof types[0])
#define N_OTHER N_TYPES /* index of "other" */

/* Latency buckets, ms (le). */
static const double buckets[] = {1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000};
#define N_BUCKETS (sizeof buckets / sizeof buckets[0])

struct metrics {
  atomic_llong events[N_TYPES + 1]; /* committed, by type */
  int64_t batch[N_TYPES + 1];       /* writer thread: the open transaction's */
  /* loop thread */
  uint64_t lat_counts[N_BUCKETS + 1];
  double lat_sum;
  uint64_t lat_n;
  struct {
    metrics_source_fn fn; /* appends its lines */
    void *ud;             /* fn's first argument */
  } sources[METRICS_SOURCES_MAX];
  int n_sources; /* used entries of sources */
};

int metrics_new(metrics **out) {
  metrics *m = calloc(1, sizeof *m);
  if (!m) return SL_ENOMEM;
  for (size_t i = 0; i <= N_TYPES; i++) atomic_init(&m->events[i], 0);
  *out = m;
  return 0;
}

void metrics_free(metrics *m) {
  free(m);
}

static size_t type_index(const char *t) {
  for (size_t i = 0; t && i < N_TYPES; i++)
    if (strcmp(types[i], t) == 0) return i;
  return N_OTHER;
}

static int on_event(void *ud, store *st, const ses_event *e, int64_t id, int64_t now) {
  metrics *m = ud;
  m->batch[type_index(e->notification_type)]++;
  return 0;
}

static void after_commit(void *ud, int ok) {
  metrics *m = ud;
  for (size_t i = 0; i <= N_TYPES; i++) {
    if (ok && m->batch[i]) atomic_fetch_add(&m->events[i], m->batch[i]);
    m->batch[i] = 0;
  }
}

struct store_hook metrics_hook(metrics *m) {
  return (struct store_hook){.on_event = on_event, .after_commit = after_commit, .ud = m};
}

typedef struct load {
  metrics *m;
  int64_t totals[N_TYPES + 1];
  int64_t before[N_TYPES + 1]; /* the hook's counts when the read began */
} load;

static int load_work(sqlite3 *db, void *arg) {
  load *l = arg;
  sqlite3_stmt *st;
  /* Uses notificationType-timeStamp-Index: a scan of the index only. */
  if (sqlite3_prepare_v2(db, "SELECT notificationType, count(*) FROM SesEventMessages GROUP BY 1",
                         -1, &st, NULL) != SQLITE_OK)
    return SL_EDB;
  /* The hook has been counting commits since start; the query sees the
   * commits before its snapshot, which begins with its first step. What
   * the hook counted before that is in both: remember it. */
  for (size_t i = 0; i <= N_TYPES; i++) l->before[i] = atomic_load(&l->m->events[i]);
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW)
    l->totals[type_index((const char *)sqlite3_column_text(st, 0))] += sqlite3_column_int64(st, 1);
  sqlite3_finalize(st);
  return rc == SQLITE_DONE ? 0 : SL_EDB;
}

static void load_done(void *arg, int rc) {
  load *l = arg;
  if (rc == 0)
    for (size_t i = 0; i <= N_TYPES; i++)
      atomic_fetch_add(&l->m->events[i], l->totals[i] - l->before[i]);
  free(l);
}

void metrics_load(metrics *m, readpool *rp) {
  load *l = calloc(1, sizeof *l);
  if (!l) return;
  l->m = m;
  /* A generous time limit: on tens of millions of rows the scan takes a
   * few seconds, and it runs once. */
  if (readpool_run(rp, load_work, load_done, l)) free(l);
}

int metrics_add_source(metrics *m, metrics_source_fn fn, void *ud) {
  if (m->n_sources == METRICS_SOURCES_MAX) return SL_ENOMEM;
  m->sources[m->n_sources].fn = fn;
  m->sources[m->n_sources].ud = ud;
  m->n_sources++;
  return 0;
}

void metrics_observe_ingest(metrics *m, double ms) {
  size_t i = 0;
  while (i < N_BUCKETS && ms > buckets[i]) i++;
  m->lat_counts[i]++;
  m->lat_sum += ms;
  m->lat_n++;
}

static int64_t file_size(const char *path, const char *suffix) {
  char p[4200];
  snprintf(p, sizeof p, "%s%s", path, suffix);
  struct stat st;
  return stat(p, &st) == 0 ? (int64_t)st.st_size : 0;
}

/* seslog_events_total by type. */
static void render_events(const metrics *m, buf *b) {
  buf_appends(b,
              "# HELP seslog_events_total SES events stored, by type.\n"
              "# TYPE seslog_events_total counter\n");
  for (size_t i = 0; i <= N_TYPES; i++)
    buf_printf(b, "seslog_events_total{type=\"%s\"} %lld\n", i < N_TYPES ? types[i] : "other",
               (long long)atomic_load(&m->events[i]));
}

/* The rates and states of the live monitors (none with --read-only). */
static void render_monitors(const struct metrics_sources *src, buf *b) {
  for (int k = 0; k < 2 && src->mon; k++) {
    struct monitor_reading r;
    monitor_get(src->mon, (enum monitor_kind)k, &r);
    const char *name = k == MON_BOUNCE ? "bounce" : "complaint";
    buf_printf(b,
               "# HELP seslog_%s_rate The %s rate over the monitor window, a fraction.\n"
               "# TYPE seslog_%s_rate gauge\nseslog_%s_rate %.6f\n",
               name, name, name, name, r.value);
  }
  if (src->mon) {
    buf_appends(b,
                "# HELP seslog_monitor_state Monitor state: 0 ok, 1 warn, 2 alert.\n"
                "# TYPE seslog_monitor_state gauge\n");
    for (int k = 0; k < 2; k++) {
      struct monitor_reading r;
      monitor_get(src->mon, (enum monitor_kind)k, &r);
      int v = strcmp(r.state, "alert") == 0 ? 2 : strcmp(r.state, "warn") == 0 ? 1 : 0;
      buf_printf(b, "seslog_monitor_state{monitor=\"%s\"} %d\n", monitor_name((enum monitor_kind)k),
                 v);
    }
  }
}

/* What ingest accepted and refused. */
static void render_ingest(const struct metrics_sources *src, buf *b) {
  if (src->in) {
    struct ingest_counts c = ingest_counts(src->in);
    buf_printf(b,
               "# HELP seslog_sns_messages_total SNS messages accepted, by outcome.\n"
               "# TYPE seslog_sns_messages_total counter\n"
               "seslog_sns_messages_total{outcome=\"stored\"} %llu\n"
               "seslog_sns_messages_total{outcome=\"duplicate\"} %llu\n"
               "seslog_sns_messages_total{outcome=\"ignored\"} %llu\n"
               "seslog_sns_messages_total{outcome=\"confirmation\"} %llu\n",
               (unsigned long long)c.stored, (unsigned long long)c.duplicate,
               (unsigned long long)c.ignored, (unsigned long long)c.confirmations);
    buf_printf(b,
               "# HELP seslog_recipients_not_taken_total Recipients past the 1,000 taken from one "
               "event (kept only in its raw JSON).\n"
               "# TYPE seslog_recipients_not_taken_total counter\n"
               "seslog_recipients_not_taken_total %llu\n"
               "# HELP seslog_cert_fetches_total Signing certificates fetched.\n"
               "# TYPE seslog_cert_fetches_total counter\n"
               "seslog_cert_fetches_total %ld\n"
               "# HELP seslog_cert_fetch_refused_total Certificate fetches not made: the URL "
               "failed a moment ago, or too many fetches in flight or this minute.\n"
               "# TYPE seslog_cert_fetch_refused_total counter\n"
               "seslog_cert_fetch_refused_total %ld\n",
               (unsigned long long)c.recipients_over, c.cert_fetches, c.cert_refused);
    buf_appends(b,
                "# HELP seslog_sns_rejected_total Requests to /sns refused, by reason.\n"
                "# TYPE seslog_sns_rejected_total counter\n");
    const uint64_t *counts = ingest_rejected_counts(src->in);
    for (int i = 0; i < REJ_N; i++)
      buf_printf(b, "seslog_sns_rejected_total{reason=\"%s\"} %llu\n",
                 ingest_reason_name((enum ingest_reason)i), (unsigned long long)counts[i]);
  }
}

/* The ingest latency histogram. */
static void render_latency(const metrics *m, buf *b) {
  buf_appends(b,
              "# HELP seslog_ingest_latency_ms Time from a notification's arrival to its "
              "answer (after the commit).\n# TYPE seslog_ingest_latency_ms histogram\n");
  uint64_t cum = 0;
  for (size_t i = 0; i < N_BUCKETS; i++) {
    cum += m->lat_counts[i];
    buf_printf(b, "seslog_ingest_latency_ms_bucket{le=\"%g\"} %llu\n", buckets[i],
               (unsigned long long)cum);
  }
  cum += m->lat_counts[N_BUCKETS];
  buf_printf(
      b,
      "seslog_ingest_latency_ms_bucket{le=\"+Inf\"} %llu\nseslog_ingest_latency_ms_sum %.3f\n"
      "seslog_ingest_latency_ms_count %llu\n",
      (unsigned long long)cum, m->lat_sum, (unsigned long long)m->lat_n);
}

/* The outbox's sinks: pending, dead, delivered. */
static void render_outbox(const struct metrics_sources *src, buf *b) {
  if (src->box && outbox_sink_count(src->box)) {
    buf_appends(b,
                "# HELP seslog_outbox_pending Alerts and replications waiting for their sink.\n"
                "# TYPE seslog_outbox_pending gauge\n");
    struct outbox_stats os;
    for (int i = 0; i < outbox_sink_count(src->box); i++) {
      outbox_stats(src->box, i, &os);
      buf_printf(b, "seslog_outbox_pending{sink=\"%s\"} %lld\n", outbox_sink_name(src->box, i),
                 (long long)os.pending);
    }
    buf_appends(b,
                "# HELP seslog_outbox_dead_total Rows given up on (kept in the outbox table).\n"
                "# TYPE seslog_outbox_dead_total counter\n");
    for (int i = 0; i < outbox_sink_count(src->box); i++) {
      outbox_stats(src->box, i, &os);
      buf_printf(b, "seslog_outbox_dead_total{sink=\"%s\"} %lld\n", outbox_sink_name(src->box, i),
                 (long long)os.dead);
    }
    buf_appends(b,
                "# HELP seslog_outbox_delivered_total Rows delivered since start.\n"
                "# TYPE seslog_outbox_delivered_total counter\n");
    for (int i = 0; i < outbox_sink_count(src->box); i++) {
      outbox_stats(src->box, i, &os);
      buf_printf(b, "seslog_outbox_delivered_total{sink=\"%s\"} %lld\n",
                 outbox_sink_name(src->box, i), (long long)os.delivered);
    }
  } else {
    /* The contract names this gauge; with no sink configured it is 0. */
    buf_appends(b,
                "# HELP seslog_outbox_pending Alerts and replications waiting for their sink.\n"
                "# TYPE seslog_outbox_pending gauge\nseslog_outbox_pending{sink=\"slack\"} 0\n");
  }
}

/* The writer's queue and the database's size. */
static void render_store(const struct metrics_sources *src, buf *b) {
  if (src->st)
    buf_printf(b,
               "# HELP seslog_write_queue_depth Events waiting for the writer.\n"
               "# TYPE seslog_write_queue_depth gauge\nseslog_write_queue_depth %d\n",
               store_queue_depth(src->st));
  if (src->db_path)
    buf_printf(b,
               "# HELP seslog_database_bytes Size of the database file and its WAL.\n"
               "# TYPE seslog_database_bytes gauge\nseslog_database_bytes{file=\"db\"} %lld\n"
               "seslog_database_bytes{file=\"wal\"} %lld\n",
               (long long)file_size(src->db_path, ""), (long long)file_size(src->db_path, "-wal"));
}

int metrics_render(const struct metrics_sources *src, buf *b) {
  render_events(src->m, b);
  render_monitors(src, b);
  render_ingest(src, b);
  render_latency(src->m, b);
  render_outbox(src, b);
  render_store(src, b);
  int rc = 0;
  for (int i = 0; i < src->m->n_sources && !rc; i++)
    rc = src->m->sources[i].fn(src->m->sources[i].ud, b);
  return rc;
}
