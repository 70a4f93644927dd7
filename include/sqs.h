/* sqs.h - pulling SES events from Amazon SQS queues (SNS -> SQS -> seslog).
 *
 * Each queue is long-polled (ReceiveMessage, WaitTimeSeconds 20, up to 10
 * messages) by a few receives in flight at once, through outbound (libcurl
 * multi in the loop), signed with SigV4 by libcurl, in SQS's JSON protocol
 * (application/x-amz-json-1.0, X-Amz-Target: AmazonSQS.*).
 *
 * A message body is handed to the same path as POST /sns:
 *   - an SNS envelope goes through ingest_handle as a request made here,
 *     so it is verified exactly as on /sns (certificate rules, topic
 *     allowlist, signature, timestamp) and answered after the commit;
 *   - a bare SES event (SNS raw message delivery) or the EventBridge shape
 *     carries no signature: taken only from a queue declared raw, whose
 *     access policy is then the trust boundary, and stored directly.
 * A message is deleted (DeleteMessageBatch) only after its event was
 * committed (or recognised as a duplicate, or as a valid message without an
 * SES event). When the writer cannot take it (503: overload, disk full,
 * a certificate not fetched yet) its visibility is set to a backoff
 * (ChangeMessageVisibilityBatch) so it comes back later. A message that
 * fails verification or parsing is left alone: the queue's redrive policy
 * moves it to the dead-letter queue after maxReceiveCount; it is counted
 * and listed with its queue and ApproximateReceiveCount.
 *
 * A queue that cannot be reached is retried with a growing pause (1 s to
 * 60 s) and its error is shown. Stopping aborts the receives and deletes
 * only what was committed. */
#ifndef SESLOG_SQS_H
#define SESLOG_SQS_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "awscreds.h"
#include "ingest.h"
#include "outbound.h"
#include "store.h"
#include "util.h"

struct sqs_opts {
  char **queue_urls; /* SNS envelopes only */
  size_t n_queue_urls;
  char **raw_queue_urls; /* also bare SES JSON and the EventBridge shape */
  size_t n_raw_queue_urls;
  const char *endpoint;   /* every request goes here; NULL: the queue URL's host */
  int pollers;            /* receives in flight per queue; 0: 2 */
  const char *basic_auth; /* --sns-basic-auth ("USER:PASS"), which ingest demands, or NULL */
  int backoff_base_s;     /* first visibility backoff of a message the writer refused; 0: 5 */
};

typedef struct sqs sqs;

/* Checks the queue URLs (http(s), a path /ACCOUNT/NAME, a region from the
 * host such as sqs.us-east-1.amazonaws.com, else AWS_REGION) and prepares
 * the pollers, touching nothing else (call it before opening the database,
 * so a bad URL changes nothing). Every module is borrowed and must outlive
 * the poller. Returns 0, SL_EINVAL with one sentence in err, or SL_ENOMEM. */
int sqs_new(uv_loop_t *loop, outbound *ob, awscreds *creds, const struct sqs_opts *opts, sqs **out,
            char *err, size_t errlen);

/* Starts the receives, handing envelopes to in and raw events to st (both
 * borrowed, outliving the poller). */
void sqs_start(sqs *s, ingest *in, store *st);

/* No more receives: messages that arrive now are left in the queue. */
void sqs_stop(sqs *s);

/* After the store's last results were completed: sends the deletes of what
 * was committed, waits for them (at most 3 s), closes the timers and calls
 * done (possibly before returning). Receives still in flight end when
 * outbound closes. */
void sqs_close(sqs *s, void (*done)(void *ud), void *ud);

/* Frees everything, after the loop closed the handles. */
void sqs_free(sqs *s);

/* {"queues":[{"url","name","raw","region","state","lastReceiveAt","received",
 * "stored","duplicates","ignored","refused","deleted","retried","inFlight",
 * "receiveErrors","lastError","lastErrorAt"}...],"credentials":{...}} */
void sqs_json(const sqs *s, buf *b);

/* ,"sqs":{"refusedByQueue":{...},"recentRefusals":[{"at","queue",
 * "messageId","receiveCount","code","detail"}...]} for /api/diagnostics
 * (nothing when s is NULL). */
void sqs_diagnostics_json(const sqs *s, buf *b);

/* Appends the seslog_sqs_* series (nothing when s is NULL). */
int sqs_metrics(void *ud, buf *b); /* a metrics_source_fn: ud is the sqs (or NULL) */

#endif
