/* alerts.c - one record for every alert, queued for the sink that takes
 * alerts (alerts.h). The wording belongs to that sink (slack.c). */
#include <stdlib.h>

#include "alerts.h"
#include "log.h"

const char *alert_kind_name(enum alert_kind kind) {
  switch (kind) {
    case ALERT_MONITOR: return "monitor";
    case ALERT_SILENCE: return "silence";
    case ALERT_UNSUBSCRIBE: return "unsubscribe";
    case ALERT_ENFORCEMENT: return "enforcement";
    case ALERT_DNSBL: return "dnsbl";
  }
  return "alert";
}

/* The index of the sink that takes alerts, or -1. */
static int alert_sink(const outbox *box) {
  for (int i = 0; box && i < outbox_sink_count(box); i++)
    if (outbox_sink_def(box, i)->alert_payload) return i;
  return -1;
}

int alerts_enabled(const outbox *box) {
  return alert_sink(box) >= 0;
}

int alerts_send(outbox *box, const struct alert *a, int (*extra)(void *arg, struct sqlite3 *db),
                void *extra_arg, void (*extra_free)(void *arg)) {
  int sink = alert_sink(box);
  if (sink < 0) return 1;
  const struct outbox_sink *def = outbox_sink_def(box, sink);
  char *payload = def->alert_payload(def->ud, a);
  if (!payload) {
    log_kv(LOG_ERROR, "an alert could not be worded (out of memory); it is kept, not sent", "kind",
           alert_kind_name(a->kind), NULL);
    return 1;
  }
  int rc =
      outbox_enqueue(box, sink, alert_kind_name(a->kind), payload, extra, extra_arg, extra_free);
  free(payload);
  return rc;
}
