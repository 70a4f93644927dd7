/* retention.h - deleting old events in the background.
 *
 * Rules per type ("Open=30d,Click=30d,Delivery=90d") and a default for the
 * other types. Every interval the loop asks the writer to delete up to a
 * small batch of expired events (and their recipients rows) inside its
 * next transaction, so ingestion never pauses for long; while batches come
 * back full it asks again at once. Rollup counters are kept: rates and
 * charts of the past stay true after the events are gone. */
#ifndef SESLOG_RETENTION_H
#define SESLOG_RETENTION_H

#include <stdint.h>
#include <uv.h>

#include "store.h"

#define RETENTION_MAX_RULES 16

struct retention_rule {
  char type[32];   /* notificationType, or "" for the default */
  int64_t keep_ms; /* events older than this go */
};

struct retention_rules {
  struct retention_rule r[RETENTION_MAX_RULES];
  int n;
  int64_t default_ms; /* 0: keep other types forever */
};

/* Parses "Type=DURATION,..." into rules. Returns 0, or SL_EINVAL with a
 * sentence in err. */
int retention_parse(const char *spec, struct retention_rules *out, char *err, size_t errlen);

typedef struct retention retention;

/* interval_ms: between rounds when there is nothing to delete. */
int retention_new(uv_loop_t *loop, store *st, const struct retention_rules *rules,
                  int64_t interval_ms, retention **out);
void retention_start(retention *r);
void retention_close(retention *r);
void retention_free(retention *r);

/* Events deleted since start. */
int64_t retention_deleted(const retention *r);

#endif
