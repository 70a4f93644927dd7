/* sesrep.h - AWS's own verdict beside seslog's: the SES reputation metrics
 * and the account's enforcement status.
 *
 * Every interval (and at start) the watcher asks, in the loop through the
 * outbound client and signed with SigV4 by libcurl:
 *  - CloudWatch GetMetricData (AWS JSON 1.0 protocol) for AWS/SES
 *    Reputation.BounceRate and Reputation.ComplaintRate, account level and
 *    per configuration set (dimension ses:configuration-set);
 *  - SES v2 GetAccount (GET /v2/email/account) for EnforcementStatus,
 *    SendingEnabled, ProductionAccessEnabled and SendQuota.
 * The data points are kept (table ses_reputation_samples); the account
 * level rates feed two monitors (awsBounceRate, awsComplaintRate) that
 * judge the average of the last window's points, no point read as zero,
 * through monitor.c's hysteresis, storage and Slack path; a change of the
 * enforcement status is stored (ses_account_changes) and announced at once.
 * A failure (no credentials, access denied, throttling, network) is kept
 * for the API and retried with backoff; it never stops the server.
 * Credentials come from the shared provider (awscreds.h) and never appear
 * in a log line, an error text or the database. */
#ifndef SESLOG_SESREP_H
#define SESLOG_SESREP_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "awscreds.h"
#include "outbound.h"
#include "outbox.h"
#include "store.h"
#include "util.h"

struct sqlite3;

struct sesrep_opts {
  int enabled;         /* --ses-reputation */
  int64_t interval_ms; /* --ses-reputation-interval */
  char **config_sets;  /* --ses-configuration-set */
  int n_config_sets;   /* at most SESREP_MAX_SETS */
  double bounce_warn;  /* thresholds as fractions, as seslog's monitors */
  double bounce_alert; /* ... */
  double complaint_warn;
  double complaint_alert;
  int64_t window_ms;       /* the monitors average over this; 10 minutes */
  const char *region;      /* AWS_REGION (or AWS_DEFAULT_REGION); NULL: shown as a failure */
  awscreds *creds;         /* the credentials provider, borrowed; NULL: none could be set up */
  const char *creds_error; /* ... and why (awscreds_new's sentence) */
  const char *cloudwatch_endpoint; /* base URL, or NULL: from the environment or region */
  const char *sesv2_endpoint;      /* ... */
  int64_t retry_base_ms;           /* first retry after a failure; 0: 2 s */
};

#define SESREP_MAX_SETS 20

typedef struct sesrep sesrep;

/* AWS_REGION, else AWS_DEFAULT_REGION, else NULL (empty counts as unset). */
const char *sesrep_region_env(void);

/* The endpoint of a service as AWS tools find it: AWS_ENDPOINT_URL_<SVC>,
 * then AWS_ENDPOINT_URL (both ignored when
 * AWS_IGNORE_CONFIGURED_ENDPOINT_URLS is true), then
 * https://<host>.<region>.amazonaws.com (.com.cn in China). Written to out
 * without a trailing slash. Returns 0, or SL_EINVAL with one sentence in
 * err (not an http(s) URL, user info in it, no region to build one). */
int sesrep_endpoint(const char *svc, const char *host, const char *region, char *out, size_t outlen,
                    char *err, size_t errlen);

/* Checks the options; a disabled watcher (opts->enabled 0) answers the API
 * and does nothing else. Returns 0, or SL_EINVAL with one sentence naming
 * the option in err, or SL_ENOMEM. box: where alerts are queued, or NULL. */
int sesrep_new(uv_loop_t *loop, outbound *ob, outbox *box, const struct sesrep_opts *opts,
               sesrep **out, char *err, size_t errlen);
/* The store samples and changes are written to; before sesrep_start. */
void sesrep_attach(sesrep *s, store *st);
/* Reads the last told enforcement status and the AWS monitors' states (at
 * start, before the writer runs), so a restart repeats no announcement. */
int sesrep_load(sesrep *s, const char *db_path);
void sesrep_start(sesrep *s); /* the first round now */
void sesrep_close(sesrep *s); /* stops the timer; answers still in flight are dropped */
void sesrep_free(sesrep *s);
int sesrep_enabled(const sesrep *s);

/* The "aws" object of /api/stats. seslog_bounce and seslog_complaint are
 * seslog's own monitor rates (have_own 0 when not evaluated yet), compared
 * with AWS's for the divergence note. */
void sesrep_stats_json(const sesrep *s, buf *b, int have_own, double seslog_bounce,
                       double seslog_complaint);
/* The "sesReputation" object of /api/diagnostics: per API the last
 * success, the last error and the next attempt. */
void sesrep_diagnostics_json(const sesrep *s, buf *b);
/* The seslog_ses_* lines of /metrics. */
int sesrep_metrics(void *ud, buf *b); /* a metrics_source_fn: ud is the sesrep (or NULL) */

/* Pool thread: appends "points":[{"t","bounceRate","complaintRate",
 * "samples"}...] for the account's stored samples, one point per bucket
 * from start (aligned) to until, averages of the samples in the bucket,
 * null where there is none. Returns 0 or a negative code. */
int sesrep_series(struct sqlite3 *db, int64_t start_ms, int64_t until_ms, int64_t bucket_ms,
                  buf *b);

/* Pure helpers, for the tests. */

/* The GetMetricData body (malloc'ed JSON) for [start_s, end_s]. */
char *sesrep_metric_request(int64_t start_s, int64_t end_s, char *const *sets, int n_sets);

/* What GetAccount answered. */
struct sesrep_account {
  char status[24];          /* HEALTHY, PROBATION, SHUTDOWN (as AWS spells it) */
  int sending_enabled;      /* 0, 1; -1 unknown */
  int production;           /* ProductionAccessEnabled: 0, 1; -1 unknown */
  double max_24h, max_rate; /* SendQuota; -1 unknown */
  double sent_24h;
};
int sesrep_parse_account(const char *body, struct sesrep_account *out);

/* Names a failed answer: "throttled", "access_denied",
 * "credentials_rejected", "server_error", "client_error"; the AWS error
 * code and message go to detail. */
const char *sesrep_classify(long status, const char *body, char *detail, size_t detail_len);

#endif
