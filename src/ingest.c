/* ingest.c - POST /sns. */
#include "ingest.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "error.h"
#include "log.h"
#include "ses.h"
#include "sns.h"
#include "util.h"

#define RECENT_MAX 100

struct ingest {
  store *st;
  certcache *cc;
  char **topics;                 /* allowlist, borrowed from the options */
  size_t n_topics;
  char *basic_auth;              /* "USER:PASS" or NULL */
  uint64_t rejected[REJ_N];
  struct ingest_rejection recent[RECENT_MAX]; /* ring */
  size_t recent_next;            /* next slot */
  size_t recent_n;
  struct ingest_counts counts;
};

/* One request on its way through the certificate fetch and the store. */
typedef struct job {
  ingest *in;
  http_request *req;
  sns_msg *msg;                  /* NULL for raw delivery */
  store_req sreq;                /* the store request, embedded */
} job;

static const char *const reason_names[REJ_N] = {
    "bad_request",   "certificate_url",  "certificate_fetch", "bad_signature",
    "timestamp",     "topic_not_allowed", "raw_delivery",     "basic_auth",
    "body_too_large", "storage"};

const char *ingest_reason_name(enum ingest_reason r) {
  return r < REJ_N ? reason_names[r] : "unknown";
}

int ingest_new(store *st, certcache *cc, const struct ingest_opts *opts, ingest **out) {
  ingest *in = calloc(1, sizeof *in);
  if (!in) return SL_ENOMEM;
  in->st = st;
  in->cc = cc;
  in->topics = opts->topic_arns;
  in->n_topics = opts->n_topic_arns;
  if (opts->basic_auth && !(in->basic_auth = strdup(opts->basic_auth))) {
    free(in);
    return SL_ENOMEM;
  }
  *out = in;
  return 0;
}

void ingest_free(ingest *in) {
  if (!in) return;
  free(in->basic_auth);
  free(in);
}

const uint64_t *ingest_rejected_counts(const ingest *in) { return in->rejected; }

struct ingest_counts ingest_counts(const ingest *in) { return in->counts; }

size_t ingest_recent_rejections(const ingest *in, struct ingest_rejection *out, size_t max) {
  size_t n = 0;
  for (size_t i = 0; i < in->recent_n && n < max; i++) {
    size_t slot = (in->recent_next + RECENT_MAX - 1 - i) % RECENT_MAX;
    out[n++] = in->recent[slot];
  }
  return n;
}

/* Counts and logs a refusal, then answers it. */
static void reject(ingest *in, http_request *req, const sns_msg *m, enum ingest_reason reason,
                   int status, const char *code, const char *message) {
  in->rejected[reason]++;
  struct ingest_rejection *r = &in->recent[in->recent_next];
  in->recent_next = (in->recent_next + 1) % RECENT_MAX;
  if (in->recent_n < RECENT_MAX) in->recent_n++;
  memset(r, 0, sizeof *r);
  r->at_ms = util_now_ms();
  r->reason = reason;
  snprintf(r->detail, sizeof r->detail, "%s", message);
  snprintf(r->remote, sizeof r->remote, "%s", req->remote);
  const char *topic = m ? m->topic_arn : http_header_get(req, "x-amz-sns-topic-arn");
  const char *mid = m ? m->message_id : http_header_get(req, "x-amz-sns-message-id");
  snprintf(r->topic_arn, sizeof r->topic_arn, "%s", topic ? topic : "");
  snprintf(r->message_id, sizeof r->message_id, "%s", mid ? mid : "");
  log_kv(LOG_INFO, "sns message rejected", "reason", reason_names[reason], "remote", req->remote,
         "topic", topic ? topic : "-", "sns_message_id", mid ? mid : "-", "detail", message, NULL);
  http_respond_error_ex(req, status, code, message,
                       status == 401 ? "WWW-Authenticate: Basic realm=\"seslog\"\r\n" : NULL);
}

static int topic_allowed(const ingest *in, const char *arn) {
  if (!in->n_topics) return 1;
  for (size_t i = 0; i < in->n_topics; i++)
    if (arn && strcmp(in->topics[i], arn) == 0) return 1;
  return 0;
}

/* Checks "Authorization: Basic base64(user:pass)" in constant time. */
static int basic_auth_ok(const ingest *in, const http_request *req) {
  const char *h = http_header_get(req, "Authorization");
  if (!h || strncasecmp(h, "Basic ", 6) != 0) return 0;
  const char *b64 = h + 6;
  while (*b64 == ' ') b64++;
  size_t len = strlen(b64);
  if (len == 0 || len > 1024 || len % 4) return 0;
  unsigned char decoded[1024];
  int n = EVP_DecodeBlock(decoded, (const unsigned char *)b64, (int)len);
  if (n < 0) return 0;
  /* EVP_DecodeBlock counts padding bytes as output: drop them. */
  if (len >= 1 && b64[len - 1] == '=') n--;
  if (len >= 2 && b64[len - 2] == '=') n--;
  return util_ct_equal(decoded, (size_t)n, in->basic_auth, strlen(in->basic_auth));
}

static void job_free(job *j) {
  sns_msg_free(j->msg);
  ses_event_free(j->sreq.ev);
  free(j);
}

static void respond_status(http_request *req, const char *status, const sns_msg *m,
                           const ses_event *ev, const char *note) {
  buf b;
  buf_init(&b, 4096);
  buf_appends(&b, "{\"status\":");
  buf_json_string(&b, status);
  if (ev) {
    buf_appends(&b, ",\"messageId\":");
    buf_json_string(&b, ev->message_id);
    buf_appends(&b, ",\"notificationType\":");
    buf_json_string(&b, ev->notification_type);
  }
  const char *smid = m ? m->message_id : ev ? ev->sns_message_id : NULL;
  if (smid) {
    buf_appends(&b, ",\"snsMessageId\":");
    buf_json_string(&b, smid);
  }
  if (note) {
    buf_appends(&b, ",\"note\":");
    buf_json_string(&b, note);
  }
  buf_appends(&b, "}");
  http_respond_json(req, 200, b.data ? b.data : "{}");
  buf_free(&b);
}

/* The store finished with the job's event (on the loop thread). */
static void on_stored(store_req *sr) {
  job *j = sr->ud;
  ingest *in = j->in;
  if (sr->result == STORE_STORED || sr->result == STORE_DUPLICATE) {
    int dup = sr->result == STORE_DUPLICATE;
    if (dup) in->counts.duplicate++;
    else in->counts.stored++;
    respond_status(j->req, dup ? "duplicate" : "stored", j->msg, sr->ev, NULL);
  } else {
    char why[256] = "the database could not commit the event";
    store_health(in->st, why, sizeof why);
    char msg[400];
    snprintf(msg, sizeof msg, "The event could not be stored (%s); SNS will retry.", why);
    reject(in, j->req, j->msg, REJ_STORAGE, 503, "storage_unavailable", msg);
  }
  job_free(j);
}

/* Hands a normalized event to the store; answers on failure. */
static void submit(job *j, ses_event *ev) {
  j->sreq.ev = ev;
  j->sreq.cb = on_stored;
  j->sreq.ud = j;
  int rc = store_submit(j->in->st, &j->sreq);
  if (rc) {
    reject(j->in, j->req, j->msg, REJ_STORAGE, 503, rc == SL_EBUSY ? "overloaded" : "shutting_down",
           rc == SL_EBUSY ? "Too many events are waiting to be written; SNS will retry."
                          : "The server is stopping; SNS will retry.");
    job_free(j);
  }
}

/* A verified envelope: act on its type. */
static void accept_verified(job *j) {
  sns_msg *m = j->msg;
  if (m->type != SNS_NOTIFICATION) {
    j->in->counts.confirmations++;
    log_kv(LOG_INFO,
           m->type == SNS_SUBSCRIPTION_CONFIRMATION ? "subscription confirmation received"
                                                    : "unsubscribe confirmation received",
           "topic", m->topic_arn, NULL);
    respond_status(j->req, "ignored", m, NULL, "confirmations are not handled yet");
    job_free(j);
    return;
  }
  ses_event *ev;
  const char *why = NULL;
  int rc = ses_parse(m->message, m->message_len, m->timestamp, &ev, &why);
  if (rc == SL_ENOTSES || rc == SL_EJSON || rc == SL_ETYPE) {
    j->in->counts.ignored++;
    log_kv(LOG_INFO, "sns message carries no SES event; ignored", "topic", m->topic_arn,
           "sns_message_id", m->message_id, "detail", why ? why : sl_strerror(rc), NULL);
    respond_status(j->req, "ignored", m, NULL, why ? why : "the Message is not an SES event");
    job_free(j);
    return;
  }
  if (rc) {
    reject(j->in, j->req, m, REJ_BAD_REQUEST, 400, "invalid_ses_event",
           why ? why : "The Message is an SES event with missing fields.");
    job_free(j);
    return;
  }
  ev->sns_message_id = util_strdup(m->message_id);
  ev->topic_arn = util_strdup(m->topic_arn);
  if (!ev->sns_message_id || !ev->topic_arn) {
    ses_event_free(ev);
    reject(j->in, j->req, m, REJ_STORAGE, 503, "overloaded", "Out of memory; SNS will retry.");
    job_free(j);
    return;
  }
  submit(j, ev);
}

static void verify_with(job *j, const sns_cert *cert) {
  int rc = sns_verify(j->msg, cert);
  switch (rc) {
    case 0:
      accept_verified(j);
      return;
    case SL_ESIGVER:
      reject(j->in, j->req, j->msg, REJ_BAD_REQUEST, 400, "unsupported_signature_version",
             "SignatureVersion must be 1 or 2.");
      break;
    case SL_EBASE64:
      reject(j->in, j->req, j->msg, REJ_BAD_REQUEST, 400, "bad_base64",
             "The Signature is not valid base64.");
      break;
    case SL_ETIME:
      reject(j->in, j->req, j->msg, REJ_TIMESTAMP, 403, "timestamp_outside_certificate",
             "The message Timestamp lies outside the signing certificate's validity.");
      break;
    case SL_ENOMEM:
      reject(j->in, j->req, j->msg, REJ_STORAGE, 503, "overloaded", "Out of memory; SNS will retry.");
      break;
    default:
      reject(j->in, j->req, j->msg, REJ_BAD_SIGNATURE, 403, "bad_signature",
             "The signature does not match the message and its signing certificate.");
  }
  job_free(j);
}

static void on_cert(void *ud, int rc, const sns_cert *cert, const char *why) {
  job *j = ud;
  if (rc) {
    char msg[400];
    snprintf(msg, sizeof msg, "%s; SNS will retry.", why && *why ? why : "the certificate is unavailable");
    reject(j->in, j->req, j->msg, REJ_CERT_FETCH, 503, "certificate_unavailable", msg);
    job_free(j);
    return;
  }
  verify_with(j, cert);
}

/* Raw message delivery: the body is the bare SES JSON, unsigned, so it is
 * taken only from a client that knows the basic-auth secret, for an
 * allowed topic. */
static void handle_raw(ingest *in, http_request *req) {
  const char *topic = http_header_get(req, "x-amz-sns-topic-arn");
  if (!in->basic_auth) {
    reject(in, req, NULL, REJ_RAW_DELIVERY, 403, "raw_delivery_not_allowed",
           "Raw message delivery carries no signature; configure --sns-basic-auth and put the "
           "credentials in the subscription's endpoint URL, or turn raw delivery off.");
    return;
  }
  if (!topic || !topic_allowed(in, topic)) {
    reject(in, req, NULL, REJ_TOPIC, 403, "topic_not_allowed",
           topic ? "The x-amz-sns-topic-arn is not on the --sns-topic-arn allowlist."
                 : "Raw delivery needs the x-amz-sns-topic-arn header.");
    return;
  }
  ses_event *ev;
  const char *why = NULL;
  int rc = ses_parse(req->body.data ? req->body.data : "", req->body.len, NULL, &ev, &why);
  if (rc == SL_ENOTSES || rc == SL_ETYPE) {
    in->counts.ignored++;
    respond_status(req, "ignored", NULL, NULL, why ? why : "the body is not an SES event");
    return;
  }
  if (rc) {
    reject(in, req, NULL, REJ_BAD_REQUEST, 400, rc == SL_EJSON ? "invalid_json" : "invalid_ses_event",
           why ? why : "The body is not a valid SES event.");
    return;
  }
  const char *mid = http_header_get(req, "x-amz-sns-message-id");
  ev->sns_message_id = util_strdup(mid);
  ev->topic_arn = util_strdup(topic);
  job *j = calloc(1, sizeof *j);
  if (!j) {
    ses_event_free(ev);
    reject(in, req, NULL, REJ_STORAGE, 503, "overloaded", "Out of memory; SNS will retry.");
    return;
  }
  j->in = in;
  j->req = req;
  submit(j, ev);
}

void ingest_handle(ingest *in, http_request *req) {
  if (in->basic_auth && !basic_auth_ok(in, req)) {
    reject(in, req, NULL, REJ_BASIC_AUTH, 401, "unauthorized",
           "This endpoint needs HTTP Basic credentials (--sns-basic-auth).");
    return;
  }
  const char *raw = http_header_get(req, "x-amz-sns-rawdelivery");
  if (raw && strcasecmp(raw, "true") == 0) {
    handle_raw(in, req);
    return;
  }
  sns_msg *m;
  const char *why = NULL;
  int rc = sns_parse(req->body.data ? req->body.data : "", req->body.len, &m, &why);
  if (rc) {
    const char *code = rc == SL_EJSON ? "invalid_json" : rc == SL_ETYPE ? "unknown_type" : "missing_field";
    const char *msg = why ? why
                      : rc == SL_EJSON ? "The body is not a JSON object."
                      : rc == SL_ETYPE ? "Type must be Notification, SubscriptionConfirmation or "
                                         "UnsubscribeConfirmation."
                                       : "The envelope lacks a required field.";
    reject(in, req, NULL, REJ_BAD_REQUEST, 400, code, msg);
    return;
  }
  if (!topic_allowed(in, m->topic_arn)) {
    reject(in, req, m, REJ_TOPIC, 403, "topic_not_allowed",
           "The TopicArn is not on the --sns-topic-arn allowlist.");
    sns_msg_free(m);
    return;
  }
  if (sns_url_allowed(m->signing_cert_url, 1)) {
    reject(in, req, m, REJ_CERT_URL, 403, "certificate_url_not_allowed",
           "SigningCertURL must be https://sns.<region>.amazonaws.com/SimpleNotificationService-<hex>.pem.");
    sns_msg_free(m);
    return;
  }
  job *j = calloc(1, sizeof *j);
  if (!j) {
    reject(in, req, m, REJ_STORAGE, 503, "overloaded", "Out of memory; SNS will retry.");
    sns_msg_free(m);
    return;
  }
  j->in = in;
  j->req = req;
  j->msg = m;
  const sns_cert *cert = certcache_lookup(in->cc, m->signing_cert_url);
  if (cert) {
    verify_with(j, cert);
    return;
  }
  rc = certcache_fetch(in->cc, m->signing_cert_url, on_cert, j);
  if (rc) {
    reject(in, req, m, REJ_CERT_FETCH, 503, "certificate_unavailable",
           "The signing certificate could not be fetched; SNS will retry.");
    job_free(j);
  }
}
