/* monitor.h - bounce-rate and complaint-rate monitors.
 *
 * Every interval the monitor sums the per-minute rollups over the window
 * (on the thread pool); when the window holds fewer sends than min_volume
 * it is widened back in time until it does, up to 7 days, as SES judges a
 * "representative volume". Rates follow CONTRACT section 5. States ok /
 * warn / alert with hysteresis: a monitor goes back to a lower state only
 * below 90 % of its current state's threshold, so a rate on the line does
 * not flap. Every change is stored (table monitor_changes), logged, and
 * sent to Slack through the outbox when Slack is configured; topics silent
 * for longer than silence_ms are announced once.
 *
 * Alerts are about the present: when the window had to widen and the
 * newest traffic it found is older than an hour (or the window, when that
 * is longer), as in an imported archive, the verdict is shown (state,
 * value and the widened window in monitor_get) but nothing is stored or
 * announced, and the announced state stays as it was. */
#ifndef SESLOG_MONITOR_H
#define SESLOG_MONITOR_H

#include <stdint.h>
#include <uv.h>

#include "outbox.h"
#include "readpool.h"
#include "store.h"
#include "subs.h"

enum monitor_kind { MON_BOUNCE = 0, MON_COMPLAINT = 1 };

struct monitor_opts {
  double bounce_warn, bounce_alert;       /* fractions: 0.025, 0.05 */
  double complaint_warn, complaint_alert; /* 0.0005, 0.001 */
  int64_t window_ms;                      /* 10 minutes */
  int64_t min_volume;                     /* sends; 100 */
  int64_t interval_ms;                    /* between evaluations; 10 s */
  int64_t silence_ms;                     /* 0: off */
};

typedef struct monitor monitor;

/* ob: where alerts are queued (alerts_send), or NULL. */
int monitor_new(uv_loop_t *loop, readpool *rp, store *st, outbox *ob, subs *sb,
                const struct monitor_opts *opts, monitor **out);
void monitor_free(monitor *m);

/* Reads the last recorded state of each monitor (at start, before the
 * writer runs), so a restart announces nothing that was announced. */
int monitor_load(monitor *m, const char *db_path);

void monitor_start(monitor *m);
void monitor_close(monitor *m);

struct monitor_reading {
  const char *state;    /* the verdict: "ok", "warn", "alert" */
  double value;         /* the rate, a fraction */
  double warn, alert;   /* thresholds */
  int64_t sends;        /* the denominator */
  int64_t window_ms;    /* the window used (widened or not) */
  int64_t evaluated_ms; /* when; 0 before the first evaluation */
  int64_t since_ms;     /* when the state began, 0 if unknown */
  /* 1: the verdict rests on present traffic (the window was not widened,
   * or its newest traffic is recent); 0: on old events only, so state is
   * shown but not stored or announced. */
  int present;
  /* The last state stored and announced. */
  const char *announced;
};
void monitor_get(const monitor *m, enum monitor_kind k, struct monitor_reading *out);
const char *monitor_name(enum monitor_kind k); /* "bounceRate", "complaintRate" */
const char *monitor_state_name(int s);         /* 0 "ok", 1 "warn", 2 "alert" */

/* The state (0 ok, 1 warn, 2 alert) a monitor in state cur moves to at
 * value v: up at a threshold, down only below 90 % of the current state's
 * threshold. Other monitors (AWS's rates) judge with it too. */
int monitor_next_state(int cur, double v, double warn, double alert);

/* Records a change of the monitor called name, as every monitor does: a
 * log line and a monitor_changes row, written in the same transaction as
 * the alert when ob has a sink that takes alerts. r gives the value, thresholds,
 * sends, window and time (evaluated_ms). Failures are logged. */
void monitor_announce(store *st, outbox *ob, const char *name, int from, int to,
                      const struct monitor_reading *r);

#endif
