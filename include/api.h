/* api.h - the query API of CONTRACT section 5: GET /api/events,
 * /api/events/{messageId}, /api/recipients/{address}, /api/stats and
 * /api/timeseries.
 *
 * A request's parameters are checked on the loop (400 at once when one is
 * bad); the query then runs through the readpool (a read-only SQLite
 * connection on the libuv thread pool, under the pool's time limit), and
 * the answer is written back on the loop. A slow query never delays
 * ingestion: the writer has its own connection and WAL readers never block
 * it. */
#ifndef SESLOG_API_H
#define SESLOG_API_H

#include <stdint.h>

#include "http.h"
#include "readpool.h"
#include "util.h"

/* Monitor thresholds as fractions (CONTRACT section 2 gives them in
 * percent: 2.5, 5, 0.05, 0.1). */
#define API_BOUNCE_WARN 0.025
#define API_BOUNCE_ALERT 0.05
#define API_COMPLAINT_WARN 0.0005
#define API_COMPLAINT_ALERT 0.001
#define API_QUERY_TIMEOUT_MS 2000 /* default time limit of one query */

/* What a live monitor judged, for /api/stats. */
struct api_monitor_live {
  char state[8];     /* the verdict: "ok", "warn", "alert"; "" = none */
  double value;      /* the rate judged */
  int64_t window_ms; /* over this window (widened or not) */
  int present;       /* 0: judged on old events only, not announced */
};

struct api_opts {
  int64_t query_timeout_ms;               /* the readpool's limit, for messages; <= 0: default */
  int max_pending;                        /* queries queued or running before 503; <= 0: 256 */
  double bounce_warn, bounce_alert;       /* fractions; <= 0: API_BOUNCE_* */
  double complaint_warn, complaint_alert; /* fractions; <= 0: API_COMPLAINT_* */
  /* The live monitors, or NULL. When /api/stats is asked for exactly
   * monitor_window_ms, each monitor shows what this gives for it (the
   * monitor's own state, with hysteresis, and the rate it judged, perhaps
   * over a window widened to a representative volume) instead of the
   * window's rate compared with the thresholds. It returns 1 and fills
   * live, or 0 (not evaluated yet: the comparison stays). Called on the
   * loop thread. */
  int (*monitor_reading)(void *ud, int complaint, struct api_monitor_live *live);
  void *monitor_ud;
  int64_t monitor_window_ms; /* also /api/stats' default window; <= 0: 10m */
  /* AWS's verdict (sesrep.h), or NULL: appends the "aws" object of
   * /api/stats to b, called with monitor_ud on the loop thread when the
   * request arrives (the answer shows AWS as it stood then). */
  void (*aws_json)(void *ud, buf *b);
  /* 1: /api/timeseries?source=aws reads the stored AWS samples. */
  int aws_series;
};

typedef struct api api;

/* Creates the API; its queries run on rp, which must outlive it. Returns
 * 0 or SL_ENOMEM. */
int api_new(readpool *rp, const struct api_opts *opts, api **out);

/* Frees the API; call when no query is in flight (readpool_active is 0,
 * as after the loop ran to its end). NULL is a no-op. */
void api_free(api *a);

/* Handles a GET or HEAD of one of the endpoints above; the answer comes
 * now (400, 404, 503 when too many queries wait) or later from the
 * thread pool. Returns 0 when req is taken, SL_EINVAL when req->path is
 * not one of these endpoints (req untouched: the caller answers 404). */
int api_handle(api *a, http_request *req);

/* 1 when "HOST:PORT" names a loopback address (127.0.0.0/8, ::1,
 * localhost), else 0 (including unparsable text and the empty host). */
int api_is_loopback(const char *hostport);

#endif
