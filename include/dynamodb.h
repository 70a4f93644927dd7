/* dynamodb.h - replication into the DynamoDB table SesEventMessages, and
 * reading it back.
 *
 * The sink of the outbox: every replicated event (Bounce and Complaint,
 * other types on request) becomes one item exactly as the original Lambda
 * wrote it (CONTRACT section 8): Bounce {messageId, timeStamp,
 * reportingMTA, destinationAddress, bouncedRecipients (JSON text),
 * notificationType}, Complaint {messageId, timeStamp, complaintFeedbackType,
 * feedbackId, destinationAddress, notificationType}, every attribute an "S",
 * absent (or empty) values left out. Other types carry those of the same
 * attributes that their type has. The item is built on the writer thread,
 * inside the event's transaction, and kept as the outbox row's payload.
 *
 * Delivery: BatchWriteItem requests of up to 25 PutRequests, several in
 * flight at once (rows that would not fill one request wait up to 50 ms
 * from their commit for company), signed with SigV4 by libcurl (CURLOPT_AWS_SIGV4; the
 * session token, when there is one, in x-amz-security-token). Items that
 * DynamoDB leaves in UnprocessedItems are retried alone; throttling
 * (ThrottlingException, ProvisionedThroughputExceededException,
 * RequestLimitExceeded), 5xx and network errors are retried with the
 * outbox's backoff and jitter; any other 4xx is final: the rows are kept
 * as dead with DynamoDB's error. Two rows for the same key (messageId,
 * timeStamp) never share a request (DynamoDB refuses that): the later one
 * waits for the next request, so the table ends as sequential writes
 * would leave it.
 *
 * The key schema (messageId HASH, timeStamp RANGE) lets two distinct events
 * that share both values overwrite each other in DynamoDB (seslog's own
 * database keeps both). The store hook counts such events
 * (seslog_dynamodb_key_collisions_total) and logs them.
 *
 * Scan: the import command reads a table page by page (one Scan segment
 * per caller), retrying throttling, 5xx and network errors.
 *
 * Credentials never appear in a log line, an error text or the database. */
#ifndef SESLOG_DYNAMODB_H
#define SESLOG_DYNAMODB_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "awscreds.h"
#include "outbound.h"
#include "outbox.h"
#include "ses.h"
#include "store.h"
#include "util.h"

/* The SES types, as bits of dynamodb_opts.types. */
#define DYNAMODB_TYPES_DEFAULT 0x3u /* Bounce, Complaint */

struct dynamodb_opts {
  const char *table;             /* required */
  const char *endpoint;          /* URL; NULL: https://dynamodb.<region>.amazonaws.com */
  const char *region;            /* required: signs every request */
  const char *access_key_id;     /* required */
  const char *secret_access_key; /* required */
  const char *session_token;     /* or NULL */
  awscreds *creds;               /* or NULL; when set, the three above are not used: the provider's
                                    credentials at each request (borrowed; outlives the client) */
  unsigned types;                /* bits from dynamodb_parse_types; 0: the default */
  int extra_attributes;          /* 1: items also carry seslog's own attributes */
  int parallel;                  /* BatchWriteItem requests in flight at once; 0: 8 */
};

typedef struct dynamodb dynamodb;

/* Fills region and credentials of o from AWS_REGION (or
 * AWS_DEFAULT_REGION), AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
 * AWS_SESSION_TOKEN (the pointers are the environment's); only the region
 * when o->creds is set. Returns 0, or
 * SL_EINVAL with one sentence in err naming what is missing. */
int dynamodb_env(struct dynamodb_opts *o, char *err, size_t errlen);

/* Parses a comma-separated list of SES types ("Bounce,Complaint",
 * "all"), case-insensitive, into *types. Returns 0, or SL_EINVAL with one
 * sentence in err. */
int dynamodb_parse_types(const char *list, unsigned *types, char *err, size_t errlen);

/* Names the types of a bit set, comma-separated, into out. */
void dynamodb_types_str(unsigned types, char *out, size_t n);

/* Creates the client. loop is needed for Scan retries (may be NULL for a
 * sink only). Copies everything in opts. Returns 0, SL_EINVAL (err says
 * why: a bad endpoint) or SL_ENOMEM. */
int dynamodb_new(uv_loop_t *loop, outbound *ob, const struct dynamodb_opts *opts, dynamodb **out,
                 char *err, size_t errlen);

/* Frees the client; after store_close when its hook was used (the hook
 * runs until then; its statement is the store's, store_stmt). */
void dynamodb_free(dynamodb *d);

/* The endpoint URL requests go to (for the log). */
const char *dynamodb_endpoint(const dynamodb *d);

/* The sink to register with outbox_add_sink. */
struct outbox_sink dynamodb_sink(dynamodb *d);

/* Adds the sink to box and remembers where, for dynamodb_metrics' last
 * success and error times. Returns its index, or outbox_add_sink's
 * negative code. */
int dynamodb_add_sink(dynamodb *d, outbox *box);

/* The store hook that counts key collisions (put in store_opts.hooks). */
struct store_hook dynamodb_hook(dynamodb *d);

/* The item for e in DynamoDB JSON ({"messageId":{"S":"..."},...}),
 * malloc'ed; NULL when e's type is not in types or out of memory. */
char *dynamodb_item(const ses_event *e, unsigned types, int extra_attributes);

/* A /metrics source (metrics_add_source): appends the seslog_dynamodb_*
 * series of the instance ud (a dynamodb *) to b: key collisions,
 * requests by outcome, unprocessed items, and, once the sink was added
 * with dynamodb_add_sink, the last success and error times of its rows.
 * Nothing when ud is NULL (no replication). Returns 0 or the buffer's
 * error. */
int dynamodb_metrics(void *ud, buf *b);

/* Distinct events seen sharing (messageId, timeStamp) with an earlier
 * replicated event, since start; 0 when d is NULL. */
int64_t dynamodb_key_collisions(const dynamodb *d);

/* One page of a Scan. rc is 0 with items (an array) and last_key (NULL on
 * the last page) borrowed for the callback's duration; else a negative
 * code and error, a sentence. */
struct dynamodb_page {
  int rc;
  const char *error;
  const struct cJSON *items;
  const struct cJSON *last_key;
};
typedef void (*dynamodb_page_cb)(void *ud, const struct dynamodb_page *page);

/* Reads one page of segment (0..total-1) of the table, from start_key
 * (NULL: the beginning; copied before return). cb is called exactly once,
 * later, on the loop thread. Throttling, 5xx and network errors are
 * retried (needs the loop given to dynamodb_new). Returns 0, or a negative
 * code without calling cb. */
int dynamodb_scan(dynamodb *d, int segment, int total, const struct cJSON *start_key,
                  dynamodb_page_cb cb, void *ud);

#endif
