/* dynamodb_client.h - what the DynamoDB files share, and nothing else
 * includes: the instance (its options, its counters for /metrics, its
 * state on each thread) and the client that signs and sends requests.
 *
 *   dynamodb.c         options, the instance, the key-collision hook, /metrics
 *   dynamodb_client.c  SigV4 requests, DynamoDB's error answers, backoff
 *   dynamodb_item.c    an event as an item (driven by event_fields.h; the
 *                      other direction is ses_from_dynamodb_item)
 *   dynamodb_sink.c    the outbox sink: BatchWriteItem deliveries
 *   dynamodb_scan.c    Scan, for import */
#ifndef SESLOG_DYNAMODB_CLIENT_H
#define SESLOG_DYNAMODB_CLIENT_H

#include <sqlite3.h>
#include <stdatomic.h>

#include "dynamodb.h"

#define CHUNK 25               /* PutRequests in one BatchWriteItem: DynamoDB's limit */
#define MAX_PARALLEL 32        /* requests in flight at once, at most */
#define ANSWER_MAX (32u << 20) /* UnprocessedItems may echo every item */
#define ITEM_MAX (16u << 20)   /* DynamoDB refuses past 400 KB; the row is kept dead then */

/* How a BatchWriteItem request ended, for /metrics. */
enum dynamodb_outcome { OUT_OK, OUT_THROTTLED, OUT_SERVER, OUT_CLIENT, OUT_NETWORK, OUT_N };

/* What /metrics shows; written on the writer and loop threads, read on the
 * loop thread. */
struct dynamodb_counters {
  atomic_llong key_collisions; /* writer thread adds, loop reads */
  atomic_llong requests[OUT_N];
  atomic_llong unprocessed; /* items DynamoDB left unprocessed */
};

struct delivery;

struct dynamodb {
  uv_loop_t *loop; /* for scan retries; may be NULL */
  outbound *ob;
  char *table;
  char *table_json; /* the table name as a JSON string literal */
  char *url;
  char *sigv4;        /* "aws:amz:REGION:dynamodb" */
  char *userpwd;      /* "KEY:SECRET": a secret, never logged */
  char *token_header; /* "x-amz-security-token: ...": a secret, or NULL */
  awscreds *creds;    /* where userpwd and token_header come from, or NULL */
  unsigned types;
  int extra;
  int parallel;
  struct dynamodb_counters counters;
  outbox *box; /* where the sink was added (dynamodb_add_sink), or NULL */
  int sink;    /* its index there */
  /* writer thread: the hook */
  int64_t batch_collisions; /* in the open transaction */
  /* loop thread */
  struct delivery *cur; /* the delivery in flight, or NULL */
  int failing;          /* the last delivery had failures */
  int64_t fail_logged_ms;
};

/* The bit of an SES type in dynamodb_opts.types, or -1. */
int dynamodb_type_index(const char *type);

/* A new string of fmt with up to two %s (b may be NULL when fmt has one
 * and a "%s" at its end for it), or NULL when out of memory. */
char *dynamodb_dup_printf(const char *fmt, const char *a, const char *b);

/* POSTs body to DynamoDB as the operation target ("BatchWriteItem",
 * "Scan"), signed with SigV4 and the current credentials; the answer
 * comes to cb on the loop thread. Returns 0, SL_EBUSY while the
 * credential provider has none, or outbound_request's error (cb is then
 * not called). */
int dynamodb_post(dynamodb *d, const char *target, const char *body, size_t body_len,
                  long timeout_ms, outbound_cb cb, void *ud);

/* Reads DynamoDB's error answer {"__type":"...#Name","message":"..."}:
 * the Name into type, the message into msg (both "" when absent). */
void dynamodb_read_error(const outbound_result *res, char *type, size_t tn, char *msg, size_t mn);

/* 1 when the error type says the request was throttled. */
int dynamodb_is_throttling(const char *type);

/* The wait before retry number attempts (1, 2, ...): doubling from 100 ms
 * up to 10 s, with jitter (half to all of it). */
int64_t dynamodb_backoff_ms(int attempts);

#endif
