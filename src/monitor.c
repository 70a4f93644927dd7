/* monitor.c - rate monitors over the rollup counters. */
#include "monitor.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alerts.h"
#include "error.h"
#include "log.h"
#include "util.h"

#define WIDEN_MAX_MS (7LL * 86400 * 1000) /* SES's representative volume: up to 7 days */
#define HYSTERESIS 0.9
#define PRESENT_MIN_MS (3600LL * 1000) /* traffic this recent is "now" */
#define MAX_SILENT 64

static const char *const state_names[] = {"ok", "warn", "alert"};

struct mon {
  int state; /* the announced state: 0 ok, 1 warn, 2 alert */
  struct monitor_reading r;
};

struct monitor {
  uv_loop_t *loop;
  readpool *rp;
  store *st;
  outbox *ob;
  subs *sb;
  struct monitor_opts o;
  uv_timer_t timer;
  int running; /* an evaluation is on the pool */
  int closing;
  struct mon m[2];
  char silent[MAX_SILENT][160]; /* topics announced silent */
  int n_silent;
};

/* One evaluation, computed on the pool. */
typedef struct eval {
  monitor *mon;
  int64_t now;
  int64_t window_ms, min_volume;
  /* results */
  int64_t sends, perm, complaints, used_ms;
  int present; /* the verdict rests on present traffic */
} eval;

const char *monitor_state_name(int s) {
  return s >= 0 && s <= 2 ? state_names[s] : "ok";
}

const char *monitor_name(enum monitor_kind k) {
  return k == MON_BOUNCE ? "bounceRate" : "complaintRate";
}

int monitor_new(uv_loop_t *loop, readpool *rp, store *st, outbox *ob, subs *sb,
                const struct monitor_opts *opts, monitor **out) {
  monitor *m = calloc(1, sizeof *m);
  if (!m) return SL_ENOMEM;
  m->loop = loop;
  m->rp = rp;
  m->st = st;
  m->ob = ob;
  m->sb = sb;
  m->o = *opts;
  if (m->o.interval_ms <= 0) m->o.interval_ms = 10000;
  if (m->o.window_ms <= 0) m->o.window_ms = 600000;
  for (int k = 0; k < 2; k++) {
    m->m[k].r.state = "ok";
    m->m[k].r.announced = "ok";
    m->m[k].r.present = 1;
    m->m[k].r.warn = k == MON_BOUNCE ? m->o.bounce_warn : m->o.complaint_warn;
    m->m[k].r.alert = k == MON_BOUNCE ? m->o.bounce_alert : m->o.complaint_alert;
    m->m[k].r.window_ms = m->o.window_ms;
  }
  uv_timer_init(loop, &m->timer);
  m->timer.data = m;
  *out = m;
  return 0;
}

int monitor_load(monitor *m, const char *db_path) {
  sqlite3 *db;
  if (readpool_open_conn(db_path, &db, NULL, 0)) return SL_EDB;
  sqlite3_stmt *st;
  int rc = sqlite3_prepare_v2(db,
                              "SELECT monitor, toState, at FROM monitor_changes WHERE id IN "
                              "(SELECT max(id) FROM monitor_changes WHERE monitor IN "
                              "('bounceRate', 'complaintRate') GROUP BY monitor)",
                              -1, &st, NULL);
  if (rc == SQLITE_OK) {
    while (sqlite3_step(st) == SQLITE_ROW) {
      const char *name = (const char *)sqlite3_column_text(st, 0);
      const char *to = (const char *)sqlite3_column_text(st, 1);
      int k = name && strcmp(name, "complaintRate") == 0 ? MON_COMPLAINT : MON_BOUNCE;
      for (int s = 0; s < 3; s++)
        if (to && strcmp(to, state_names[s]) == 0) {
          m->m[k].state = s;
          m->m[k].r.state = state_names[s];
          m->m[k].r.announced = state_names[s];
        }
      m->m[k].r.since_ms = sqlite3_column_int64(st, 2);
    }
    sqlite3_finalize(st);
  }
  sqlite3_close(db);
  return rc == SQLITE_OK ? 0 : SL_EDB;
}

void monitor_get(const monitor *m, enum monitor_kind k, struct monitor_reading *out) {
  *out = m->m[k].r;
}

/* Pool thread: sums the rollups from now back over the window, widening
 * until the sends reach min_volume (or 7 days). The verdict is present
 * unless the window widened and its newest traffic is older than
 * max(window, PRESENT_MIN_MS): then it judges only old (imported) mail. */
static int eval_work(sqlite3 *db, void *arg) {
  eval *e = arg;
  int64_t now_min = e->now / 60000;
  int64_t window_min = (e->window_ms + 59999) / 60000;
  int64_t oldest = now_min - WIDEN_MAX_MS / 60000 + 1;
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(
          db,
          "SELECT minute, sends, deliveries, bounces, permanentBounces, complaints "
          "FROM rollup_minute WHERE minute >= ?1 AND minute <= ?2 ORDER BY minute DESC",
          -1, &st, NULL) != SQLITE_OK)
    return SL_EDB;
  sqlite3_bind_int64(st, 1, oldest);
  sqlite3_bind_int64(st, 2, now_min);
  int64_t send = 0, deliv_bounce = 0, perm = 0, compl = 0, used_min = window_min;
  int64_t newest = -1; /* the newest minute with traffic */
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    int64_t minute = sqlite3_column_int64(st, 0);
    if (newest < 0 &&
        (sqlite3_column_int64(st, 1) || sqlite3_column_int64(st, 2) || sqlite3_column_int64(st, 3)))
      newest = minute;
    int64_t age_min = now_min - minute + 1; /* window length that includes this minute */
    if (age_min > window_min) {
      int64_t eff = send > 0 ? send : deliv_bounce;
      if (eff >= e->min_volume) break; /* representative already */
      used_min = age_min;
    }
    send += sqlite3_column_int64(st, 1);
    deliv_bounce += sqlite3_column_int64(st, 2) + sqlite3_column_int64(st, 3);
    perm += sqlite3_column_int64(st, 4);
    compl += sqlite3_column_int64(st, 5);
  }
  sqlite3_finalize(st);
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) return rc == SQLITE_INTERRUPT ? SL_EBUSY : SL_EDB;
  e->sends = send > 0 ? send : deliv_bounce;
  e->perm = perm;
  e->complaints = compl ;
  e->used_ms = used_min * 60000;
  int64_t present_min = window_min > PRESENT_MIN_MS / 60000 ? window_min : PRESENT_MIN_MS / 60000;
  e->present = used_min == window_min || (newest >= 0 && now_min - newest < present_min);
  return 0;
}

int monitor_next_state(int cur, double v, double warn, double alert) {
  if (v >= alert) return 2;
  if (cur == 2 && v >= alert * HYSTERESIS) return 2;
  if (v >= warn) return 1;
  if (cur >= 1 && v >= warn * HYSTERESIS) return 1;
  return 0;
}

/* The change row, written in the same transaction as the Slack row. */
typedef struct change {
  store_req req; /* used when there is no Slack sink */
  char monitor[32];
  int from, to;
  double value, threshold;
  int64_t sends, window_ms, at;
} change;

static int write_change(void *arg, struct sqlite3 *db) {
  change *c = arg;
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(db,
                         "INSERT INTO monitor_changes (monitor, fromState, toState, value, "
                         "threshold, sends, windowMs, at) VALUES (?,?,?,?,?,?,?,?)",
                         -1, &st, NULL) != SQLITE_OK)
    return SL_EDB;
  sqlite3_bind_text(st, 1, c->monitor, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, state_names[c->from], -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 3, state_names[c->to], -1, SQLITE_STATIC);
  sqlite3_bind_double(st, 4, c->value);
  sqlite3_bind_double(st, 5, c->threshold);
  sqlite3_bind_int64(st, 6, c->sends);
  sqlite3_bind_int64(st, 7, c->window_ms);
  sqlite3_bind_int64(st, 8, c->at);
  int rc = sqlite3_step(st);
  sqlite3_finalize(st);
  return rc == SQLITE_DONE ? 0 : SL_EDB;
}

static int apply_change(store_req *r, struct sqlite3 *db) {
  r->result = STORE_STORED;
  return write_change(r->ud, db);
}

static void on_change_done(store_req *r) {
  if (r->result < 0) log_kv(LOG_ERROR, "a monitor change could not be stored", NULL);
  free(r->ud);
}

void monitor_announce(store *st, outbox *ob, const char *name, int from, int to,
                      const struct monitor_reading *r) {
  change *c = calloc(1, sizeof *c);
  if (!c) return;
  snprintf(c->monitor, sizeof c->monitor, "%s", name);
  c->from = from;
  c->to = to;
  c->value = r->value;
  c->threshold = to == 2 ? r->alert : r->warn;
  c->sends = r->sends;
  c->window_ms = r->window_ms;
  c->at = r->evaluated_ms;
  char pct[32], thr[32], win[32];
  snprintf(pct, sizeof pct, "%.4f%%", r->value * 100);
  snprintf(thr, sizeof thr, "%.4f%%", c->threshold * 100);
  snprintf(win, sizeof win, "%lldm", (long long)(r->window_ms / 60000));
  log_kv(to > from ? LOG_WARN : LOG_INFO, "monitor state changed", "monitor", c->monitor, "from",
         state_names[from], "to", state_names[to], "value", pct, "threshold", thr, "window", win,
         NULL);
  struct alert a = {.kind = ALERT_MONITOR,
                    .subject = c->monitor,
                    .from = state_names[from],
                    .to = state_names[to],
                    .value = r->value,
                    .threshold = c->threshold,
                    .window = win};
  /* The change row rides the alert row's transaction; the outbox request
   * owns c from here on and frees it when done. */
  int rc = alerts_send(ob, &a, write_change, c, free);
  if (rc < 0) log_kv(LOG_ERROR, "a monitor change could not be queued", NULL);
  if (rc <= 0) return;
  c->req.ud = c;
  c->req.apply = apply_change;
  c->req.cb = on_change_done;
  if (store_submit(st, &c->req)) free(c);
}

static void check_silence(monitor *m, int64_t now);

static void eval_done(void *arg, int rc) {
  eval *e = arg;
  monitor *m = e->mon;
  m->running = 0;
  if (rc) {
    if (rc != SL_ESHUTDOWN)
      log_kv(LOG_WARN, "monitor evaluation failed", "error", sl_strerror(rc), NULL);
    free(e);
    return;
  }
  double rates[2] = {e->sends ? (double)e->perm / (double)e->sends : 0,
                     e->sends ? (double)e->complaints / (double)e->sends : 0};
  for (int k = 0; k < 2; k++) {
    struct mon *mo = &m->m[k];
    mo->r.value = rates[k];
    mo->r.sends = e->sends;
    mo->r.window_ms = e->used_ms;
    mo->r.evaluated_ms = e->now;
    mo->r.present = e->present;
    int to = monitor_next_state(mo->state, rates[k], mo->r.warn, mo->r.alert);
    mo->r.state = state_names[to];
    if (!e->present) {
      /* Old mail only: show the verdict, announce nothing. */
      if (to != mo->state)
        log_kv(LOG_DEBUG, "monitor verdict on old events only: not announced", "monitor",
               monitor_name((enum monitor_kind)k), "state", state_names[to], NULL);
      continue;
    }
    if (to != mo->state) {
      int from = mo->state;
      mo->state = to;
      mo->r.announced = state_names[to];
      mo->r.since_ms = e->now;
      if (!m->closing)
        monitor_announce(m->st, m->ob, monitor_name((enum monitor_kind)k), from, to, &mo->r);
    }
  }
  if (!m->closing) check_silence(m, e->now);
  free(e);
}

static void on_tick(uv_timer_t *t) {
  monitor *m = t->data;
  if (m->running || m->closing) return;
  eval *e = calloc(1, sizeof *e);
  if (!e) return;
  e->mon = m;
  e->now = util_now_ms();
  e->window_ms = m->o.window_ms;
  e->min_volume = m->o.min_volume;
  if (readpool_run(m->rp, eval_work, eval_done, e) == 0)
    m->running = 1;
  else
    free(e);
}

struct silence_ctx {
  monitor *m;
  int64_t now;
};

static void silence_topic(void *ud, const char *topic, const char *state, int64_t last_ms) {
  struct silence_ctx *c = ud;
  monitor *m = c->m;
  int known = -1;
  for (int i = 0; i < m->n_silent; i++)
    if (strcmp(m->silent[i], topic) == 0) known = i;
  int silent = strcmp(state, "confirmed") == 0 && last_ms && c->now - last_ms > m->o.silence_ms;
  if (!silent) {
    if (known >= 0) m->silent[known][0] = 0; /* spoke again: may be announced again */
    return;
  }
  if (known >= 0 && m->silent[known][0]) return;
  if (known < 0) {
    if (m->n_silent == MAX_SILENT) return;
    known = m->n_silent++;
  }
  snprintf(m->silent[known], sizeof m->silent[known], "%s", topic);
  log_kv(LOG_WARN, "SNS topic silent", "topic", topic, NULL);
  struct alert a = {
      .kind = ALERT_SILENCE, .subject = topic, .last_ms = last_ms, .silent_ms = c->now - last_ms};
  alerts_send(m->ob, &a, NULL, NULL, NULL);
}

static void check_silence(monitor *m, int64_t now) {
  if (m->o.silence_ms <= 0 || !m->sb) return;
  struct silence_ctx c = {m, now};
  subs_each(m->sb, silence_topic, &c);
}

void monitor_start(monitor *m) {
  uv_timer_start(&m->timer, on_tick, 0, (uint64_t)m->o.interval_ms);
}

void monitor_close(monitor *m) {
  m->closing = 1;
  uv_timer_stop(&m->timer);
  uv_close((uv_handle_t *)&m->timer, NULL);
}

void monitor_free(monitor *m) {
  free(m);
}
