/* metrics.h - GET /metrics in the Prometheus text format.
 *
 * Counters that need the writer (events stored, by type) are kept by a
 * store hook and added up after each commit; the starting totals are read
 * once on the thread pool. Everything else is read from the modules that
 * own it when /metrics is asked for. */
#ifndef SESLOG_METRICS_H
#define SESLOG_METRICS_H

#include <stdint.h>

#include "ingest.h"
#include "monitor.h"
#include "outbox.h"
#include "readpool.h"
#include "store.h"
#include "util.h"

typedef struct metrics metrics;

int metrics_new(metrics **out);
void metrics_free(metrics *m);

/* The hook counting committed events by type (put in store_opts). */
struct store_hook metrics_hook(metrics *m);

/* Reads the stored totals by type on the pool (after start). */
void metrics_load(metrics *m, readpool *rp);

/* Ingest latency: from the request's arrival to the answer, in ms. */
void metrics_observe_ingest(metrics *m, double ms);

#define METRICS_SOURCES_MAX 16 /* modules adding lines to /metrics, at most */

/* A module's lines of /metrics: appends them to b; returns 0 or an error
 * code (SL_ETOOBIG). Called on the loop thread. */
typedef int (*metrics_source_fn)(void *ud, buf *b);

/* Adds fn(ud, b) to every /metrics answer, after the core series, in the
 * order added. Returns 0, or SL_ENOMEM past METRICS_SOURCES_MAX. */
int metrics_add_source(metrics *m, metrics_source_fn fn, void *ud);

struct metrics_sources {
  metrics *m;
  ingest *in;
  monitor *mon;
  outbox *box;
  store *st;
  const char *db_path;
};

/* Appends the whole exposition to b: the core series of src, then every
 * source added. Returns 0 or the first source's error. */
int metrics_render(const struct metrics_sources *src, buf *b);

#endif
