/* ingest.h - the POST /sns handler: authenticate, parse the envelope,
 * check the topic and the certificate URL, verify the signature, normalize
 * the SES JSON, hand the event to the store and answer after the commit.
 * Every refusal is counted by reason and kept in a short history. */
#ifndef SESLOG_INGEST_H
#define SESLOG_INGEST_H

#include <stdint.h>

#include <uv.h>

#include "certcache.h"
#include "outbound.h"
#include "store.h"
#include "subs.h"

/* The request ingest_handle answers (http.h); declared here so that the
 * modules that only read ingest's counters (metrics, sqs) see no HTTP. */
typedef struct http_request http_request;

/* Why a request to /sns was refused; names are the `reason` label of
 * seslog_sns_rejected_total. */
enum ingest_reason {
  REJ_BAD_JSON,          /* not a JSON object */
  REJ_MISSING_FIELD,     /* a required field missing or malformed */
  REJ_UNKNOWN_TYPE,      /* Type is not one SNS sends */
  REJ_BAD_BASE64,        /* Signature is not base64 */
  REJ_SIGNATURE_VERSION, /* SignatureVersion is not 1 or 2 */
  REJ_BAD_SES_EVENT,     /* a signed SES event without what every event has */
  REJ_CERT_URL,          /* certificate URL refused */
  REJ_SUBSCRIBE_URL,     /* SubscribeURL refused (never fetched) */
  REJ_CONFIRM_FAILED,    /* SubscribeURL fetch failed */
  REJ_CERT_FETCH,        /* certificate could not be fetched */
  REJ_BAD_SIGNATURE,
  REJ_TIMESTAMP,    /* timestamp outside certificate validity */
  REJ_TOPIC,        /* topic not allowed */
  REJ_RAW_DELIVERY, /* raw delivery refused */
  REJ_BASIC_AUTH,   /* basic auth failed */
  REJ_STORAGE,      /* could not be committed */
  /* the SES JSON has an object with a key twice; a string with U+0000 */
  REJ_DUPLICATE_KEY,
  REJ_NUL_IN_STRING,
  REJ_N
};

const char *ingest_reason_name(enum ingest_reason r);

struct ingest_opts {
  char **topic_arns; /* allowlist; empty = any topic */
  size_t n_topic_arns;
  const char *basic_auth; /* "USER:PASS" or NULL */
  /* Optional: each committed notification's latency, arrival to answer. */
  void (*observe_latency)(void *ud, double ms);
  /* Optional: a verified UnsubscribeConfirmation was recorded. */
  void (*on_unsubscribe)(void *ud, const char *topic_arn);
  void *ud;
};

typedef struct ingest ingest;

/* Every module is borrowed and must outlive the ingest. */
int ingest_new(uv_loop_t *loop, store *st, certcache *cc, outbound *ob, subs *sb,
               const struct ingest_opts *opts, ingest **out);
/* At the stop, once nothing more is handed to ingest: closes the loop
 * handle of the verifying workers as soon as their last job is answered
 * (later jobs run on the loop). ingest_free joins the workers. */
void ingest_close(ingest *in);
void ingest_free(ingest *in);

/* Handles one POST /sns; answers req now or after the commit. */
void ingest_handle(ingest *in, http_request *req);

/* One refusal, for /api/diagnostics. */
struct ingest_rejection {
  int64_t at_ms;
  enum ingest_reason reason;
  char detail[160];
  char remote[64];
  char topic_arn[160];
  char message_id[80];
};

/* Counters by reason and the last rejections (newest first, up to max). */
const uint64_t *ingest_rejected_counts(const ingest *in);
size_t ingest_recent_rejections(const ingest *in, struct ingest_rejection *out, size_t max);

/* Notifications accepted: stored, duplicate, ignored. */
struct ingest_counts {
  uint64_t stored, duplicate, ignored, confirmations;
  uint64_t recipients_over; /* recipients past SES_RECIPIENTS_MAX, not taken */
  long cert_fetches;        /* signing certificates fetched */
  long cert_refused;        /* fetches refused by the certificate cache's limits */
};
struct ingest_counts ingest_counts(const ingest *in);

#endif
