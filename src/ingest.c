/* ingest.c - POST /sns. */
#include "ingest.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "error.h"
#include "http.h"
#include "log.h"
#include "ses.h"
#include "sns.h"
#include "util.h"

#define RECENT_MAX 100
#define INGEST_WORKERS_MIN 2 /* verifying workers: the online cores within these bounds */
#define INGEST_WORKERS_MAX 8
#define HINT_SLOTS 4 /* signing certificates remembered for the pool */

#define CONFIRM_ATTEMPTS 3     /* SubscribeURL fetches before answering 503 */
#define CONFIRM_BACKOFF_MS 300 /* doubled after each failed attempt */

struct ingest {
  uv_loop_t *loop;
  store *st;
  certcache *cc;
  outbound *ob;
  subs *sb;
  char **topics; /* allowlist, borrowed from the options */
  size_t n_topics;
  char *basic_auth; /* "USER:PASS" or NULL */
  void (*observe_latency)(void *ud, double ms);
  void (*on_unsubscribe)(void *ud, const char *topic_arn);
  void *cb_ud;
  uint64_t rejected[REJ_N];
  struct ingest_rejection recent[RECENT_MAX]; /* ring */
  size_t recent_next;                         /* next slot */
  size_t recent_n;
  struct ingest_counts counts;
  /* The signing certificates the loop last found in the cache, by URL, so
   * that a pool thread that has just parsed an envelope can verify it at
   * once: one trip to the pool instead of two. The loop alone changes the
   * slots, under hint_mu; the pool reads them under it. The loop accepts
   * such a verification only when the cache still gives that certificate. */
  pthread_mutex_t hint_mu;
  struct {
    char *url;
    sns_cert *cert; /* a reference */
  } hints[HINT_SLOTS];
  size_t hint_next; /* slot replaced next */
  /* The verifying workers (workers_start): the loop queues jobs on todo,
   * the workers put them on done and wake the loop through efd only when
   * done was empty, so that one wake-up carries a batch of results. */
  pthread_mutex_t wq_mu;
  pthread_cond_t wq_cv;  /* todo has a job, or wq_stop */
  struct job *todo_head; /* FIFO, under wq_mu */
  struct job *todo_tail;
  struct job *done_head; /* FIFO, under wq_mu */
  struct job *done_tail;
  int wq_idle; /* workers waiting on wq_cv, under wq_mu */
  int wq_stop; /* under wq_mu */
  pthread_t workers[INGEST_WORKERS_MAX];
  size_t n_workers;   /* started; 0: jobs run inline on the loop */
  int efd;            /* eventfd, -1 until started */
  uv_poll_t wq_poll;  /* efd's readiness, on the loop */
  size_t wq_inflight; /* jobs queued or running, loop only */
  int wq_started;     /* workers_start was tried */
  int wq_closing;     /* ingest_close: close wq_poll once idle */
};

/* One request on its way through the certificate fetch and the store. */
typedef struct job {
  ingest *in;
  http_request *req;
  sns_msg *msg;       /* NULL for raw delivery */
  store_req sreq;     /* the store request, embedded */
  const char *status; /* answer after the commit: "confirmed", ... */
  const char *note;   /* and its note, static, or NULL */
  int fail_status;    /* answer this error after the commit instead */
  uv_timer_t *timer;  /* confirmation retry timer, or NULL */
  int attempts;       /* SubscribeURL fetches made */
  char why[256];      /* last confirmation error */
  /* Parsing and verification run on the verifying workers; these carry
   * their results back to the loop. */
  uv_work_t work;
  sns_cert *cert;      /* a reference, held while verifying */
  int rc;              /* sns_parse's, then sns_verify's result */
  int early;           /* verified with a hinted cert right after parsing */
  const char *rc_why;  /* sns_parse's sentence, static */
  ses_event *ev;       /* the Notification's SES event, parsed after verifying */
  int ses_rc;          /* and ses_parse's result */
  const char *ses_why; /* and its sentence, static */

  /* On the verifying workers (on_pool): */
  uv_work_cb work_cb;        /* what a worker runs on work */
  uv_after_work_cb after_cb; /* and then the loop */
  struct job *wq_next;       /* on the workers' todo or done list */
} job;

#define POOL_NICE 5             /* nice of the verifying threads, see yield_to_writer */
#define INGEST_POOL_THREADS "8" /* UV_THREADPOOL_SIZE unless set */

#define FUTURE_MAX_MS (24 * 3600 * 1000LL) /* a Timestamp ahead of the clock by more: 403 */

/* clang-format off */
static const char *const reason_names[REJ_N] = {"bad_json",
                                                "missing_field",
                                                "unknown_type",
                                                "bad_base64",
                                                "signature_version",
                                                "bad_ses_event",
                                                "certificate_url",
                                                "subscribe_url",
                                                "confirmation_failed",
                                                "certificate_fetch",
                                                "bad_signature",
                                                "timestamp",
                                                "topic_not_allowed",
                                                "raw_delivery",
                                                "basic_auth",
                                                "storage",
                                                "duplicate_key",
                                                "nul_in_string"};
/* clang-format on */

const char *ingest_reason_name(enum ingest_reason r) {
  return r < REJ_N ? reason_names[r] : "unknown";
}

int ingest_new(uv_loop_t *loop, store *st, certcache *cc, outbound *ob, subs *sb,
               const struct ingest_opts *opts, ingest **out) {
  ingest *in = calloc(1, sizeof *in);
  if (!in) return SL_ENOMEM;
  in->loop = loop;
  in->st = st;
  in->cc = cc;
  in->ob = ob;
  in->sb = sb;
  in->observe_latency = opts->observe_latency;
  in->on_unsubscribe = opts->on_unsubscribe;
  in->cb_ud = opts->ud;
  in->topics = opts->topic_arns;
  in->n_topics = opts->n_topic_arns;
  /* The read-only queries (readpool.c) run on libuv's thread pool, each
   * for up to --query-timeout: more threads than libuv's 4, as when the
   * envelopes were verified there too (they now have workers of their own,
   * workers_start). Read when the pool starts (its first work), so it is
   * set here, before any; an operator's own setting wins. */
  setenv("UV_THREADPOOL_SIZE", INGEST_POOL_THREADS, 0);
  if (opts->basic_auth && !(in->basic_auth = strdup(opts->basic_auth))) {
    free(in);
    return SL_ENOMEM;
  }
  in->efd = -1;
  if (pthread_mutex_init(&in->hint_mu, NULL)) {
    free(in->basic_auth);
    free(in);
    return SL_ENOMEM;
  }
  if (pthread_mutex_init(&in->wq_mu, NULL)) {
    pthread_mutex_destroy(&in->hint_mu);
    free(in->basic_auth);
    free(in);
    return SL_ENOMEM;
  }
  if (pthread_cond_init(&in->wq_cv, NULL)) {
    pthread_mutex_destroy(&in->wq_mu);
    pthread_mutex_destroy(&in->hint_mu);
    free(in->basic_auth);
    free(in);
    return SL_ENOMEM;
  }
  *out = in;
  return 0;
}

/* Stops and joins the workers (each finishes the jobs still queued
 * first; after ingest_close and the loop's end there are none). */
static void workers_stop(ingest *in) {
  pthread_mutex_lock(&in->wq_mu);
  in->wq_stop = 1;
  pthread_cond_broadcast(&in->wq_cv);
  pthread_mutex_unlock(&in->wq_mu);
  for (size_t i = 0; i < in->n_workers; i++) pthread_join(in->workers[i], NULL);
  in->n_workers = 0;
  if (in->efd >= 0) close(in->efd);
  in->efd = -1;
}

void ingest_free(ingest *in) {
  if (!in) return;
  workers_stop(in);
  pthread_cond_destroy(&in->wq_cv);
  pthread_mutex_destroy(&in->wq_mu);
  for (size_t i = 0; i < HINT_SLOTS; i++) {
    free(in->hints[i].url);
    sns_cert_free(in->hints[i].cert);
  }
  pthread_mutex_destroy(&in->hint_mu);
  free(in->basic_auth);
  free(in);
}

/* On the loop: remembers that url's certificate in the cache is cert. */
static void hint_note(ingest *in, const char *url, const sns_cert *cert) {
  size_t slot = HINT_SLOTS;
  for (size_t i = 0; i < HINT_SLOTS && slot == HINT_SLOTS; i++) {
    if (in->hints[i].url && strcmp(in->hints[i].url, url) == 0) {
      if (in->hints[i].cert == cert) return; /* the usual case: nothing to change */
      slot = i;
    }
  }
  int fresh = slot == HINT_SLOTS;
  if (fresh) slot = in->hint_next;
  char *copy = strdup(url);
  if (!copy) return; /* no hint: the pool verifies on the second trip */
  pthread_mutex_lock(&in->hint_mu);
  char *old_url = in->hints[slot].url;
  sns_cert *old_cert = in->hints[slot].cert;
  in->hints[slot].url = copy;
  in->hints[slot].cert = sns_cert_ref(cert);
  pthread_mutex_unlock(&in->hint_mu);
  if (fresh) in->hint_next = (in->hint_next + 1) % HINT_SLOTS;
  free(old_url);
  sns_cert_free(old_cert);
}

/* On the pool: a reference to url's hinted certificate, or NULL. */
static sns_cert *hint_find(ingest *in, const char *url) {
  sns_cert *cert = NULL;
  pthread_mutex_lock(&in->hint_mu);
  for (size_t i = 0; i < HINT_SLOTS && !cert; i++)
    if (in->hints[i].url && strcmp(in->hints[i].url, url) == 0)
      cert = sns_cert_ref(in->hints[i].cert);
  pthread_mutex_unlock(&in->hint_mu);
  return cert;
}

const uint64_t *ingest_rejected_counts(const ingest *in) {
  return in->rejected;
}

struct ingest_counts ingest_counts(const ingest *in) {
  struct ingest_counts c = in->counts;
  c.cert_fetches = certcache_fetches(in->cc);
  c.cert_refused = certcache_refused(in->cc);
  return c;
}

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
  if (topic) subs_note_rejected(in->sb, topic);
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

static void on_timer_closed(uv_handle_t *h) {
  free(h);
}

static void job_free(job *j) {
  sns_msg_free(j->msg);
  sns_cert_free(j->cert);
  ses_event_free(j->ev);
  ses_event_free(j->sreq.ev);
  store_prep_free(j->sreq.prep);
  free(j->sreq.topic_arn);
  free(j->sreq.sub_arn);
  if (j->timer) uv_close((uv_handle_t *)j->timer, on_timer_closed);
  free(j);
}

/* The bytes a JSON string literal of s can take at most (every byte
 * escaped as \u00XX, plus the quotes); 0 for NULL. */
static size_t json_room(const char *s) {
  return s ? 6 * strlen(s) + 2 : 0;
}

/* Answers 200 {"status":...} with the ids the request carried. The buffer's
 * cap is worked out from those ids, however long (they come from a body of
 * at most 1 MiB), so the answer about a stored event is always whole: if
 * even that fails (out of memory) the answer is the status alone, still
 * valid, because a 500 would have SNS retry an event that is already
 * stored (the retry would only be a duplicate, but the 500 would be a lie). */
static void respond_status(http_request *req, const char *status, const sns_msg *m,
                           const ses_event *ev, const char *sub_arn, const char *note) {
  const char *smid = m ? m->message_id : ev ? ev->sns_message_id : NULL;
  size_t room = 128 + json_room(status) + json_room(smid) + json_room(sub_arn) + json_room(note);
  if (ev) room += json_room(ev->message_id) + json_room(ev->notification_type);
  buf b;
  buf_init(&b, room);
  buf_appends(&b, "{\"status\":");
  buf_json_string(&b, status);
  if (ev) {
    buf_appends(&b, ",\"messageId\":");
    buf_json_string(&b, ev->message_id);
    buf_appends(&b, ",\"notificationType\":");
    buf_json_string(&b, ev->notification_type);
  }
  if (smid) {
    buf_appends(&b, ",\"snsMessageId\":");
    buf_json_string(&b, smid);
  }
  if (sub_arn) {
    buf_appends(&b, ",\"subscriptionArn\":");
    buf_json_string(&b, sub_arn);
  }
  if (note) {
    buf_appends(&b, ",\"note\":");
    buf_json_string(&b, note);
  }
  buf_appends(&b, "}");
  if (buf_failed(&b)) {
    log_kv(LOG_ERROR, "the answer's ids could not be echoed: answered the status alone", "status",
           status, "error", sl_strerror(buf_failed(&b)), NULL);
    buf_reset(&b);
    buf_appends(&b, "{\"status\":");
    buf_json_string(&b, status);
    buf_appends(&b, "}");
  }
  http_respond_json(req, 200, b.data ? b.data : "{}");
  buf_free(&b);
}

/* The store finished with the job's event (on the loop thread). */
static void on_stored(store_req *sr) {
  job *j = sr->ud;
  ingest *in = j->in;
  const char *topic = sr->ev ? sr->ev->topic_arn : sr->topic_arn;
  if (sr->result == STORE_STORED) {
    if (sr->counts_as_message) subs_note_accepted(in->sb, topic, sr->at_ms);
    if (sr->sub_state) subs_set_state(in->sb, topic, sr->sub_state, sr->sub_arn, sr->at_ms);
  }
  if (sr->result > 0 && j->fail_status) {
    reject(in, j->req, j->msg, REJ_CONFIRM_FAILED, j->fail_status, "confirmation_failed", j->why);
  } else if (sr->result > 0 && !sr->ev) {
    respond_status(j->req, j->status, j->msg, NULL, sr->sub_arn, j->note);
  } else if (sr->result == STORE_STORED || sr->result == STORE_DUPLICATE) {
    int dup = sr->result == STORE_DUPLICATE;
    if (in->observe_latency)
      in->observe_latency(in->cb_ud, (double)(util_now_ms() - j->req->started_ms));
    if (dup)
      in->counts.duplicate++;
    else
      in->counts.stored++;
    respond_status(j->req, dup ? "duplicate" : "stored", j->msg, sr->ev, NULL, NULL);
  } else {
    char why[256] = "the database could not commit the event";
    store_health(in->st, why, sizeof why);
    char msg[400];
    snprintf(msg, sizeof msg, "The event could not be stored (%s); SNS will retry.", why);
    reject(in, j->req, j->msg, REJ_STORAGE, 503, "storage_unavailable", msg);
  }
  job_free(j);
}

/* Hands a normalized event (or, with ev NULL, the topic bookkeeping set
 * in j->sreq) to the store; answers on failure. */
static void submit(job *j, ses_event *ev) {
  if (ev && ev->recipients_over) {
    char taken[24], over[24];
    snprintf(taken, sizeof taken, "%zu", ev->n_recipients);
    snprintf(over, sizeof over, "%zu", ev->recipients_over);
    j->in->counts.recipients_over += ev->recipients_over;
    log_kv(LOG_WARN,
           "an event lists more recipients than seslog takes; the rest are only in its JSON",
           "message_id", ev->message_id, "taken", taken, "not_taken", over, NULL);
  }
  j->sreq.ev = ev;
  j->sreq.counts_as_message = j->sreq.counts_as_message || ev != NULL;
  if (!j->sreq.at_ms) j->sreq.at_ms = util_now_ms();
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

/* Commits a topic's bookkeeping (state may be NULL), then answers
 * status with note. Takes j. */
static void record_topic(job *j, const char *state, const char *sub_arn, const char *status,
                         const char *note) {
  j->sreq.topic_arn = util_strdup(j->msg->topic_arn);
  j->sreq.sub_state = state;
  if (sub_arn) j->sreq.sub_arn = strdup(sub_arn);
  j->status = status;
  j->note = note;
  if (!j->sreq.topic_arn || (sub_arn && !j->sreq.sub_arn)) {
    reject(j->in, j->req, j->msg, REJ_STORAGE, 503, "overloaded", "Out of memory; SNS will retry.");
    job_free(j);
    return;
  }
  submit(j, NULL);
}

/* The SubscriptionArn of SNS's ConfirmSubscription answer (XML), copied
 * into out when it is plain printable text. */
static int subscription_arn(const char *xml, char *out, size_t n) {
  const char *open = strstr(xml, "<SubscriptionArn>");
  if (!open) return SL_EINVAL;
  open += strlen("<SubscriptionArn>");
  const char *close = strstr(open, "</SubscriptionArn>");
  if (!close || (size_t)(close - open) >= n || close == open) return SL_EINVAL;
  for (const char *p = open; p < close; p++)
    if (*p < 0x21 || *p > 0x7e || *p == '<' || *p == '&') return SL_EINVAL;
  memcpy(out, open, (size_t)(close - open));
  out[close - open] = 0;
  return 0;
}

static void confirm_attempt(job *j);

static void on_confirm_timer(uv_timer_t *t) {
  confirm_attempt(t->data);
}

static void on_confirmed(void *ud, const outbound_result *res) {
  job *j = ud;
  char arn[300];
  if (res->rc == 0 && res->status == 200 && subscription_arn(res->body, arn, sizeof arn) == 0) {
    j->in->counts.confirmations++;
    log_kv(LOG_INFO, "subscription confirmed", "topic", j->msg->topic_arn, "subscription_arn", arn,
           NULL);
    record_topic(j, "confirmed", arn, "confirmed", NULL);
    return;
  }
  if (res->rc)
    snprintf(j->why, sizeof j->why, "Confirming the subscription failed: %s.", res->error);
  else if (res->status == 200)
    snprintf(j->why, sizeof j->why, "SNS's answer to the confirmation has no SubscriptionArn.");
  else
    snprintf(j->why, sizeof j->why, "SNS answered the confirmation with HTTP %ld%s.", res->status,
             res->status >= 300 && res->status < 400 ? " (redirects are not followed)" : "");
  /* Retry what may pass: no answer, or a 5xx / 429 from AWS. */
  int retry = res->rc == SL_EIO || res->status >= 500 || res->status == 429;
  if (retry && res->rc != SL_ESHUTDOWN && j->attempts < CONFIRM_ATTEMPTS) {
    if (!j->timer) {
      j->timer = malloc(sizeof *j->timer);
      if (j->timer) {
        uv_timer_init(j->in->loop, j->timer);
        j->timer->data = j;
      }
    }
    if (j->timer) {
      uv_timer_start(j->timer, on_confirm_timer, (uint64_t)CONFIRM_BACKOFF_MS << (j->attempts - 1),
                     0);
      return;
    }
  }
  log_kv(LOG_WARN, "subscription confirmation failed; SNS will send it again", "topic",
         j->msg->topic_arn, "error", j->why, NULL);
  /* Record the topic as pending, then answer 503 so SNS retries. */
  j->fail_status = 503;
  record_topic(j, "pending", NULL, NULL, NULL);
}

static void confirm_attempt(job *j) {
  j->attempts++;
  struct outbound_req req = {
      .url = j->msg->subscribe_url, .timeout_ms = 5000, .max_body = 64 * 1024};
  if (outbound_request(j->in->ob, &req, on_confirmed, j)) {
    snprintf(j->why, sizeof j->why, "The confirmation could not be started.");
    j->fail_status = 503;
    record_topic(j, "pending", NULL, NULL, NULL);
  }
}

/* A verified SubscriptionConfirmation of an allowed topic: fetch its
 * SubscribeURL (only on the SNS host rule), retrying when AWS does not
 * answer; record the SubscriptionArn. */
static void confirm(job *j) {
  if (sns_url_allowed(j->msg->subscribe_url, 0)) {
    reject(j->in, j->req, j->msg, REJ_SUBSCRIBE_URL, 403, "subscribe_url_not_allowed",
           "SubscribeURL must be an https://sns.<region>.amazonaws.com/ address; it was not "
           "fetched.");
    job_free(j);
    return;
  }
  log_kv(LOG_INFO, "confirming subscription", "topic", j->msg->topic_arn, NULL);
  confirm_attempt(j);
}

/* A verified envelope: act on its type. */
static void accept_verified(job *j) {
  sns_msg *m = j->msg;
  if (m->type == SNS_SUBSCRIPTION_CONFIRMATION) {
    confirm(j);
    return;
  }
  if (m->type == SNS_UNSUBSCRIBE_CONFIRMATION) {
    j->in->counts.confirmations++;
    log_kv(LOG_WARN,
           "the SNS subscription was unsubscribed: seslog receives nothing more from this topic "
           "until it is subscribed again",
           "topic", m->topic_arn, NULL);
    if (j->in->on_unsubscribe) j->in->on_unsubscribe(j->in->cb_ud, m->topic_arn);
    record_topic(j, "unsubscribed", NULL, "ignored",
                 "unsubscribe confirmation recorded; this topic no longer delivers to seslog");
    return;
  }
  /* The Message was parsed on the thread pool after the signature passed. */
  ses_event *ev = j->ev;
  j->ev = NULL;
  const char *why = j->ses_why;
  int rc = j->ses_rc;
  if (rc == SL_ENOTSES || rc == SL_EJSON || rc == SL_ETYPE) {
    j->in->counts.ignored++;
    log_kv(LOG_INFO, "sns message carries no SES event; ignored", "topic", m->topic_arn,
           "sns_message_id", m->message_id, "detail", why ? why : sl_strerror(rc), NULL);
    j->sreq.counts_as_message = 1;
    record_topic(j, NULL, NULL, "ignored", "the Message is not an SES event");
    return;
  }
  if (rc == SL_EDUPKEY || rc == SL_ENUL) {
    reject(j->in, j->req, m, rc == SL_EDUPKEY ? REJ_DUPLICATE_KEY : REJ_NUL_IN_STRING, 400,
           rc == SL_EDUPKEY ? "duplicate_key" : "nul_in_string", why);
    job_free(j);
    return;
  }
  if (rc) {
    reject(j->in, j->req, m, REJ_BAD_SES_EVENT, 400, "invalid_ses_event",
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

/* A worker: runs the queued jobs' work_cb, oldest first, and puts them on
 * the done list; writes efd only when that list was empty (the loop has
 * not yet been woken for it), so one wake-up carries every result that
 * came in meanwhile. */
static void yield_to_writer(void);

static void *worker_main(void *arg) {
  ingest *in = arg;
  pthread_setname_np(pthread_self(), "seslog-verify");
  yield_to_writer();
  pthread_mutex_lock(&in->wq_mu);
  for (;;) {
    while (!in->todo_head && !in->wq_stop) {
      in->wq_idle++;
      pthread_cond_wait(&in->wq_cv, &in->wq_mu);
      in->wq_idle--;
    }
    job *j = in->todo_head;
    if (!j) break; /* stopping, nothing left */
    if (!(in->todo_head = j->wq_next)) in->todo_tail = NULL;
    pthread_mutex_unlock(&in->wq_mu);
    j->work_cb(&j->work);
    j->wq_next = NULL;
    pthread_mutex_lock(&in->wq_mu);
    int wake = !in->done_head;
    if (in->done_tail)
      in->done_tail->wq_next = j;
    else
      in->done_head = j;
    in->done_tail = j;
    if (wake) {
      pthread_mutex_unlock(&in->wq_mu);
      uint64_t one = 1;
      ssize_t n = write(in->efd, &one, sizeof one); /* fails only when the counter is full */
      (void)n;
      pthread_mutex_lock(&in->wq_mu);
    }
  }
  pthread_mutex_unlock(&in->wq_mu);
  return NULL;
}

/* On the loop: efd is readable; runs the after_cb of every finished job.
 * efd is read before the list is taken, so a result put on the list after
 * the take writes efd again. */
static void on_workers_done(uv_poll_t *p, int status, int events) {
  (void)status;
  (void)events;
  ingest *in = p->data;
  uint64_t v;
  ssize_t n = read(in->efd, &v, sizeof v); /* EAGAIN when another wake-up took them */
  (void)n;
  pthread_mutex_lock(&in->wq_mu);
  job *j = in->done_head;
  in->done_head = in->done_tail = NULL;
  pthread_mutex_unlock(&in->wq_mu);
  while (j) {
    job *next = j->wq_next;
    in->wq_inflight--;
    j->after_cb(&j->work, 0); /* may queue the job again, or free it */
    j = next;
  }
  if (in->wq_inflight) return;
  if (in->wq_closing)
    uv_close((uv_handle_t *)&in->wq_poll, NULL);
  else
    uv_unref((uv_handle_t *)&in->wq_poll); /* idle workers keep no loop running */
}

/* Starts the workers, once, at the first job: as many as the cores online
 * (within INGEST_WORKERS_MIN..MAX). They are plain threads, not libuv's
 * pool: that pool wakes the loop through one uv_async per result, and on
 * two cores the loop often spun on the async while the thread that sent it
 * was preempted; the queries (readpool.c) keep that pool to themselves.
 * Returns the workers started (0: jobs run inline). */
static size_t workers_start(ingest *in) {
  if (in->wq_started) return in->n_workers;
  in->wq_started = 1;
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  size_t want = cores < INGEST_WORKERS_MIN   ? INGEST_WORKERS_MIN
                : cores > INGEST_WORKERS_MAX ? INGEST_WORKERS_MAX
                                             : (size_t)cores;
  in->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (in->efd < 0 || uv_poll_init(in->loop, &in->wq_poll, in->efd)) {
    if (in->efd >= 0) close(in->efd);
    in->efd = -1;
    log_kv(LOG_WARN, "cannot start the verifying workers; envelopes are verified on the loop",
           NULL);
    return 0;
  }
  in->wq_poll.data = in;
  uv_poll_start(&in->wq_poll, UV_READABLE, on_workers_done);
  uv_unref((uv_handle_t *)&in->wq_poll);
  while (in->n_workers < want &&
         pthread_create(&in->workers[in->n_workers], NULL, worker_main, in) == 0)
    in->n_workers++;
  if (!in->n_workers) {
    log_kv(LOG_WARN, "cannot start the verifying workers; envelopes are verified on the loop",
           NULL);
    uv_close((uv_handle_t *)&in->wq_poll, NULL);
  }
  return in->n_workers;
}

void ingest_close(ingest *in) {
  if (!in || in->wq_closing) return;
  in->wq_closing = 1;
  if (in->n_workers && !in->wq_inflight) uv_close((uv_handle_t *)&in->wq_poll, NULL);
}

/* Runs work(j) on a worker, then after(j) on the loop; both inline when
 * there is no worker (none could start, or the ingest is closing). */
static void on_pool(job *j, uv_work_cb work, uv_after_work_cb after) {
  ingest *in = j->in;
  j->work.data = j;
  if (!in->wq_closing && workers_start(in)) {
    j->work_cb = work;
    j->after_cb = after;
    j->wq_next = NULL;
    if (!in->wq_inflight++) uv_ref((uv_handle_t *)&in->wq_poll);
    pthread_mutex_lock(&in->wq_mu);
    if (in->todo_tail)
      in->todo_tail->wq_next = j;
    else
      in->todo_head = j;
    in->todo_tail = j;
    int idle = in->wq_idle;
    pthread_mutex_unlock(&in->wq_mu);
    if (idle) pthread_cond_signal(&in->wq_cv);
    return;
  }
  work(&j->work);
  after(&j->work, 0);
}

/* Lowers the calling pool thread's priority, once per thread (Linux nice
 * values are per thread). The writer is the one serial stage of ingest:
 * when the verifying threads, the loop and the writer share two cores,
 * the writer must not wait behind verifications whose events could only
 * queue up for it. Measured under other load: 4,200 -> 6,200 events/s at
 * saturation; on an idle machine no change. Best effort: a refusal
 * changes nothing else. */
static void yield_to_writer(void) {
  static __thread int niced;
  if (niced) return;
  niced = 1;
  util_thread_nice(POOL_NICE);
}

/* On the pool: the signature, then (a Notification whose signature holds)
 * its SES event. */
static void verify_work(uv_work_t *w) {
  job *j = w->data;
  yield_to_writer();
  j->rc = sns_verify(j->msg, j->cert);
  if (j->rc == 0 && j->msg->type == SNS_NOTIFICATION)
    j->ses_rc =
        ses_parse(j->msg->message, j->msg->message_len, j->msg->timestamp, &j->ev, &j->ses_why);
  /* what the writer needs from the event alone, worked out here rather
   * than on the writer (out of memory: the writer works it out) */
  if (j->rc == 0 && j->ses_rc == 0 && j->ev) (void)store_prepare(j->in->st, j->ev, &j->sreq.prep);
}

/* On the loop: act on sns_verify's result in j->rc. */
static void after_verify(uv_work_t *w, int status) {
  job *j = w->data;
  sns_cert_free(j->cert);
  j->cert = NULL;
  if (status) {
    reject(j->in, j->req, j->msg, REJ_STORAGE, 503, "shutting_down",
           "The server is stopping; SNS will retry.");
    job_free(j);
    return;
  }
  switch (j->rc) {
    case 0: accept_verified(j); return;
    case SL_ESIGVER:
      reject(j->in, j->req, j->msg, REJ_SIGNATURE_VERSION, 400, "unsupported_signature_version",
             "SignatureVersion must be 1 or 2.");
      break;
    case SL_EBASE64:
      reject(j->in, j->req, j->msg, REJ_BAD_BASE64, 400, "bad_base64",
             "The Signature is not valid base64.");
      break;
    case SL_ETIME:
      reject(j->in, j->req, j->msg, REJ_TIMESTAMP, 403, "timestamp_outside_certificate",
             "The message Timestamp lies outside the signing certificate's validity.");
      break;
    case SL_ENOMEM:
      reject(j->in, j->req, j->msg, REJ_STORAGE, 503, "overloaded",
             "Out of memory; SNS will retry.");
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
    snprintf(msg, sizeof msg, "%s; SNS will retry.",
             why && *why ? why : "the certificate is unavailable");
    reject(j->in, j->req, j->msg, REJ_CERT_FETCH, 503, "certificate_unavailable", msg);
    job_free(j);
    return;
  }
  j->cert = sns_cert_ref(cert);
  on_pool(j, verify_work, after_verify);
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
    respond_status(req, "ignored", NULL, NULL, NULL, why ? why : "the body is not an SES event");
    return;
  }
  if (rc == SL_EDUPKEY || rc == SL_ENUL) {
    reject(in, req, NULL, rc == SL_EDUPKEY ? REJ_DUPLICATE_KEY : REJ_NUL_IN_STRING, 400,
           rc == SL_EDUPKEY ? "duplicate_key" : "nul_in_string", why);
    return;
  }
  if (rc) {
    reject(in, req, NULL, rc == SL_EJSON ? REJ_BAD_JSON : REJ_BAD_SES_EVENT, 400,
           rc == SL_EJSON ? "invalid_json" : "invalid_ses_event",
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

/* 1 when the parsed envelope m passes what after_parse checks before it
 * looks up the certificate (the same checks, so a refusal is reported the
 * same way whichever trip finds it). Pure: any thread. */
static int passes_envelope_checks(const ingest *in, const sns_msg *m) {
  return m->timestamp_ms <= util_now_ms() + FUTURE_MAX_MS && topic_allowed(in, m->topic_arn) &&
         sns_url_allowed(m->signing_cert_url, 1) == 0;
}

/* Undoes an early verification the loop does not accept. */
static void drop_early(job *j) {
  sns_cert_free(j->cert);
  j->cert = NULL;
  ses_event_free(j->ev);
  j->ev = NULL;
  store_prep_free(j->sreq.prep);
  j->sreq.prep = NULL;
  j->rc = j->ses_rc = 0;
  j->ses_why = NULL;
  j->early = 0;
}

/* On the pool: the envelope; and when its certificate is one the loop
 * found in the cache lately, its verification (verify_work) right away. */
static void parse_work(uv_work_t *w) {
  job *j = w->data;
  http_request *req = j->req;
  j->rc = sns_parse(req->body.data ? req->body.data : "", req->body.len, &j->msg, &j->rc_why);
  if (j->rc || !passes_envelope_checks(j->in, j->msg)) return;
  if (!(j->cert = hint_find(j->in, j->msg->signing_cert_url))) return;
  j->early = 1;
  verify_work(w);
}

/* On the loop: check the parsed envelope, then verify it with its
 * certificate (from the cache, or once fetched). */
static void after_parse(uv_work_t *w, int status) {
  job *j = w->data;
  ingest *in = j->in;
  http_request *req = j->req;
  int rc = status ? SL_ESHUTDOWN : j->early ? 0 : j->rc; /* early: j->rc is sns_verify's */
  const char *why = j->rc_why;
  if (rc == SL_ESHUTDOWN || rc == SL_ENOMEM) {
    reject(in, req, NULL, REJ_STORAGE, 503, rc == SL_ENOMEM ? "overloaded" : "shutting_down",
           rc == SL_ENOMEM ? "Out of memory; SNS will retry."
                           : "The server is stopping; SNS will retry.");
    job_free(j);
    return;
  }
  if (rc) {
    const char *code = rc == SL_EJSON   ? "invalid_json"
                       : rc == SL_ETYPE ? "unknown_type"
                                        : "missing_field";
    const char *msg = why              ? why
                      : rc == SL_EJSON ? "The body is not a JSON object."
                      : rc == SL_ETYPE ? "Type must be Notification, SubscriptionConfirmation or "
                                         "UnsubscribeConfirmation."
                                       : "The envelope lacks a required field.";
    reject(in, req, NULL,
           rc == SL_EJSON   ? REJ_BAD_JSON
           : rc == SL_ETYPE ? REJ_UNKNOWN_TYPE
                            : REJ_MISSING_FIELD,
           400, code, msg);
    job_free(j);
    return;
  }
  sns_msg *m = j->msg;
  /* SNS stamps a message when it is published: a Timestamp a day ahead of
   * this clock is not one SNS sent now (and would count in future minutes). */
  if (m->timestamp_ms > util_now_ms() + FUTURE_MAX_MS) {
    reject(in, req, m, REJ_TIMESTAMP, 403, "timestamp_in_future",
           "The Timestamp is more than a day ahead of this server's clock.");
    job_free(j);
    return;
  }
  if (!topic_allowed(in, m->topic_arn)) {
    reject(in, req, m, REJ_TOPIC, 403, "topic_not_allowed",
           "The TopicArn is not on the --sns-topic-arn allowlist.");
    job_free(j);
    return;
  }
  if (sns_url_allowed(m->signing_cert_url, 1)) {
    reject(in, req, m, REJ_CERT_URL, 403, "certificate_url_not_allowed",
           "SigningCertURL must be "
           "https://sns.<region>.amazonaws.com/SimpleNotificationService-<hex>.pem.");
    job_free(j);
    return;
  }
  const sns_cert *cert = certcache_lookup(in->cc, m->signing_cert_url);
  if (cert) hint_note(in, m->signing_cert_url, cert);
  if (cert && j->early && j->cert == cert) {
    after_verify(w, 0); /* verified with the very certificate the cache gives */
    return;
  }
  if (j->early) drop_early(j);
  if (cert) {
    j->cert = sns_cert_ref(cert);
    on_pool(j, verify_work, after_verify);
    return;
  }
  rc = certcache_fetch(in->cc, m->signing_cert_url, on_cert, j);
  if (rc) {
    reject(in, req, m, REJ_CERT_FETCH, 503, "certificate_unavailable",
           rc == SL_ECERT   ? "The signing certificate could not be fetched a moment ago; SNS "
                              "will retry."
           : rc == SL_EBUSY ? "Too many signing certificates are being fetched; SNS will retry."
                            : "The signing certificate could not be fetched; SNS will retry.");
    job_free(j);
  }
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
  job *j = calloc(1, sizeof *j);
  if (!j) {
    reject(in, req, NULL, REJ_STORAGE, 503, "overloaded", "Out of memory; SNS will retry.");
    return;
  }
  j->in = in;
  j->req = req;
  on_pool(j, parse_work, after_parse);
}
