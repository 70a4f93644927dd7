/* alerts.h - what seslog announces besides events: a monitor's state
 * change, a silent topic, an unsubscribe, a change of the SES account's
 * enforcement status, a DNSBL listing. One record for all of them, queued
 * in the outbox for the sink that takes alerts (Slack), which alone knows
 * how to word it. Without such a sink nothing is queued: the alert is
 * logged and kept by its caller. */
#ifndef SESLOG_ALERTS_H
#define SESLOG_ALERTS_H

#include <stdint.h>

#include "outbox.h"

enum alert_kind { ALERT_MONITOR, ALERT_SILENCE, ALERT_UNSUBSCRIBE, ALERT_ENFORCEMENT, ALERT_DNSBL };

/* An alert; which members count depends on kind. Strings are borrowed
 * for the call. */
struct alert {
  enum alert_kind kind;
  const char *subject;     /* the monitor's name, the topic ARN, the DNSBL target */
  const char *from, *to;   /* monitor: states; enforcement: statuses ("" never seen) */
  double value, threshold; /* monitor: fractions (0.05 = 5 %) */
  const char *window;      /* monitor: its window, e.g. "10m" */
  int64_t last_ms;         /* silence: the topic's last message, ms since the epoch */
  int64_t silent_ms;       /* silence: how long it has been silent */
  int flag;                /* enforcement: sending enabled 1, 0, -1 unknown; dnsbl: listed 1/0 */
  const char *zone;        /* dnsbl: the blocklist zone */
  const char *answers;     /* dnsbl: its answers, e.g. "127.0.0.2" (may be NULL) */
  const char *reason;      /* dnsbl: its TXT reason (may be NULL) */
};

/* The kind's name: the outbox row's kind and the payload's "kind". */
const char *alert_kind_name(enum alert_kind kind);

/* Loop thread: queues a for the outbox's alert sink, running extra (may
 * be NULL) in the same transaction, as outbox_enqueue does. Returns 0
 * (extra_arg is the outbox's from then on), 1 when nothing was queued
 * because no sink takes alerts or the alert could not be worded (logged;
 * extra was not run and extra_arg is still the caller's), or a negative
 * code when queueing failed (extra_free already released extra_arg). */
int alerts_send(outbox *box, const struct alert *a, int (*extra)(void *arg, struct sqlite3 *db),
                void *extra_arg, void (*extra_free)(void *arg));

/* 1 when box has a sink that takes alerts. */
int alerts_enabled(const outbox *box);

#endif
