/* api.h - the API layer: the query API's context, and the job every API
 * request that leaves the loop travels in, with the one mapping of a
 * failed read or write onto an HTTP answer.
 *
 * The endpoints are in api_events.c (events, counts, stats, timeseries),
 * api_suppression.c, api_dnsbl.c and api_admin.c; router.c's route table
 * says which answers what. A request's parameters are checked on the loop
 * (400 at once when one is bad); the query then runs through the readpool
 * (a read-only SQLite connection on the libuv thread pool, under the
 * pool's time limit), and the answer is written back on the loop. A slow
 * query never delays ingestion: the writer has its own connection and WAL
 * readers never block it. */
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

/* The options a was made with (defaults filled in). */
const struct api_opts *api_options(const api *a);

/* The readpool a's queries run on. */
readpool *api_readpool(const api *a);

/* ---- the job ------------------------------------------------------------ */

/* One API request on its way through the readpool or the store. A
 * resource's job embeds it as its first member; the answer is built off
 * the loop (status and body, or an error) and written on the loop. */
typedef struct api_job {
  http_request *req;   /* read and answered on the loop only */
  int status;          /* the answer's status; 0: not decided yet */
  buf body;            /* the JSON answer when status < 400 */
  const char *code;    /* else the error body's code ... */
  char msg[512];       /* ... and message */
  const char *headers; /* extra header lines of a success, or NULL */
  int64_t timeout_ms;  /* the readpool's time limit, for the timeout message */
} api_job;

/* Readies j for req: an empty body of at most body_max bytes. */
void api_job_init(api_job *j, http_request *req, size_t body_max, const char *headers,
                  int64_t timeout_ms);

/* Sets j's answer to the error status, code and message (msg may be
 * j->msg). */
void api_job_fail(api_job *j, int status, const char *code, const char *msg);

/* The one mapping of a failed read or write (SL_EBUSY: the time limit,
 * SL_ETOOBIG, SL_ESHUTDOWN, anything else: the database) onto j's
 * answer. */
void api_job_fail_rc(api_job *j, int rc);

/* Answers j on the loop (its error, or status and body; a job whose
 * status was never set is a database error) and frees its body; the
 * caller frees the job around it. */
void api_job_finish(api_job *j);

/* Calls set(ud, name, value, err) for each parameter of req's query
 * string, after checking that every name is one of allowed (a
 * space-separated list) and given once (type may repeat). On a bad one
 * answers 400 naming it and returns SL_EINVAL. */
int api_each_param(http_request *req, const char *allowed,
                   int (*set)(void *ud, const char *name, const char *v, char *err, size_t n),
                   void *ud);

/* ---- the query endpoints (api_events.c): route handlers, ud the api --- */

/* GET /api/events */
void api_events_list(void *a, http_request *req, const char *tail);
/* GET /api/events/counts */
void api_events_counts(void *a, http_request *req, const char *tail);
/* GET /api/events/{messageId}: tail is the messageId */
void api_events_message(void *a, http_request *req, const char *tail);
/* GET /api/recipients/{address}: tail is the address */
void api_events_recipient(void *a, http_request *req, const char *tail);
/* GET /api/stats */
void api_events_stats(void *a, http_request *req, const char *tail);
/* GET /api/timeseries */
void api_events_timeseries(void *a, http_request *req, const char *tail);

/* 1 when "HOST:PORT" names a loopback address (127.0.0.0/8, ::1,
 * localhost), else 0 (including unparsable text and the empty host). */
int api_is_loopback(const char *hostport);

#endif
