/* sqs.c - long-polling SQS queues into the ingest path. */
#include "sqs.h"

#include <cjson/cJSON.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api_sns.h"
#include "error.h"
#include "jsoncheck.h"
#include "log.h"
#include "ses.h"

#define WAIT_SECONDS 20
#define MAX_MESSAGES 10
#define RECEIVE_TIMEOUT_MS ((WAIT_SECONDS + 10) * 1000L)
#define CALL_TIMEOUT_MS 15000L
#define RECEIVE_ANSWER_MAX (32u << 20) /* 10 messages of up to 1 MiB, escaped */
#define BACKOFF_MIN_MS 1000
#define BACKOFF_MAX_MS 60000
#define BACKOFF_MAX_VISIBILITY_S 900
#define CLOSE_WAIT_MS 3000
#define RECENT_MAX 100
/* Messages received and not yet committed, per queue: enough to cover the
 * commit latency at full speed, well under the writer's --queue-max. */
#define IN_FLIGHT_MAX 500
#define FLUSH_WAIT_MS 50 /* finished messages wait this long for a full batch of 10 */

enum outcome { OUT_PENDING, OUT_DELETE, OUT_RETRY, OUT_REFUSED, OUT_DROP };

typedef struct queue queue;

/* One received message on its way through ingest or the store. */
typedef struct sqs_msg {
  queue *q;
  char *receipt;         /* ReceiptHandle */
  char message_id[80];   /* SQS MessageId */
  int receives;          /* ApproximateReceiveCount */
  api_sns_envelope *env; /* an envelope handed to ingest, or NULL */
  store_req sreq;        /* a raw event handed to the store */
  enum outcome outcome;  /* set when finished */
  char code[48];         /* refusal code */
  char detail[200];      /* refusal sentence */
  struct sqs_msg *next;  /* the queue's list of finished messages */
} sqs_msg;

/* One refusal, for /api/diagnostics. */
struct refusal {
  int64_t at_ms;
  const queue *q;
  char message_id[80];
  int receives;
  char code[48];
  char detail[200];
};

struct queue {
  sqs *s;
  char *url;      /* the QueueUrl */
  char *name;     /* its last path segment */
  char *endpoint; /* where requests go */
  char *region;
  char *sigv4;    /* "aws:amz:REGION:sqs" */
  char *url_json; /* the QueueUrl as a JSON string literal */
  int raw;
  int polling;        /* receives in flight */
  int in_flight;      /* messages received and not finished */
  int calls;          /* deletes and visibility changes in flight */
  int64_t backoff_ms; /* the next pause after a failed receive */
  uv_timer_t retry;   /* pause before receiving again */
  uv_timer_t flush;   /* sends the finished messages' deletes next iteration */
  sqs_msg *finished;
  int n_finished;
  const char *state; /* "starting", "polling", "retrying", "waiting for credentials", "stopped" */
  int64_t last_receive_ms, last_error_ms;
  int up; /* the last receive succeeded; when not, one receive probes at a time */
  char last_error[256];
  uint64_t received, stored, duplicates, ignored, refused, deleted, retried, receive_errors,
      delete_errors;
  uint64_t requests[3]; /* calls made: receive, delete, visibility */
};

struct sqs {
  uv_loop_t *loop;
  outbound *ob;
  awscreds *creds;
  ingest *in;
  store *st;
  queue *queues;
  size_t n;
  int pollers;
  int backoff_base_s;
  char *auth_header; /* "Basic base64(USER:PASS)" for ingest, a secret, or NULL */
  int stopping, closed;
  uv_timer_t close_timer; /* bounds the wait for the last deletes */
  void (*done)(void *ud);
  void *done_ud;
  struct refusal recent[RECENT_MAX]; /* ring */
  size_t recent_next, recent_n;
};

static void poll_more(queue *q);

/* ---- queue URLs ---- */

/* The region in a queue URL's host: sqs.REGION.amazonaws.com (any suffix
 * after sqs.REGION), REGION.queue.amazonaws.com, or queue.amazonaws.com
 * (us-east-1). NULL when the host does not say. */
static char *region_of_host(const char *host, size_t n) {
  if (n > 4 && strncmp(host, "sqs.", 4) == 0) {
    const char *r = host + 4, *dot = memchr(r, '.', n - 4);
    if (dot && dot > r) return util_strndup(r, (size_t)(dot - r));
  }
  const char *qd = ".queue.amazonaws.com";
  size_t qn = strlen(qd);
  if (n > qn && strncmp(host + n - qn, qd, qn) == 0 && !memchr(host, '.', n - qn))
    return util_strndup(host, n - qn);
  if (n == qn - 1 && strncmp(host, qd + 1, n) == 0) return util_strdup("us-east-1");
  return NULL;
}

/* Fills q's url, name, endpoint, region from a queue URL. */
static int queue_init(queue *q, const char *url, const char *endpoint, char *err, size_t errlen) {
  size_t skip = strncmp(url, "https://", 8) == 0 ? 8 : strncmp(url, "http://", 7) == 0 ? 7 : 0;
  const char *host = url + skip, *slash = skip ? strchr(host, '/') : NULL;
  const char *name = slash ? strrchr(slash, '/') + 1 : NULL;
  if (!skip || !slash || slash == host || !name || !*name || name == slash + 1 ||
      strpbrk(url, " \"\\\r\n?#")) {
    snprintf(err, errlen,
             "%s is not a queue URL such as https://sqs.us-east-1.amazonaws.com/123456789012/NAME",
             url);
    return SL_EINVAL;
  }
  size_t hostlen = (size_t)(slash - host);
  const char *colon = memchr(host, ':', hostlen);
  q->region = region_of_host(host, colon ? (size_t)(colon - host) : hostlen);
  if (!q->region) {
    const char *r = getenv("AWS_REGION");
    if (!r || !*r) r = getenv("AWS_DEFAULT_REGION");
    if (!r || !*r) {
      snprintf(err, errlen,
               "the region of %s is not in its host (sqs.REGION.amazonaws.com); set AWS_REGION",
               url);
      return SL_EINVAL;
    }
    q->region = util_strdup(r);
  }
  q->url = util_strdup(url);
  q->name = util_strdup(name);
  if (endpoint)
    q->endpoint = util_strdup(endpoint);
  else {
    q->endpoint = util_strndup(url, (size_t)(slash - url) + 1); /* "https://host/" */
  }
  buf b;
  buf_init(&b, 8192);
  buf_json_string(&b, url);
  q->url_json = buf_take(&b);
  size_t n = strlen(q->region ? q->region : "") + 32;
  q->sigv4 = malloc(n);
  if (q->sigv4) snprintf(q->sigv4, n, "aws:amz:%s:sqs", q->region ? q->region : "");
  if (!q->url || !q->name || !q->endpoint || !q->url_json || !q->sigv4 || !q->region)
    return SL_ENOMEM;
  q->state = "starting";
  q->backoff_ms = BACKOFF_MIN_MS;
  return 0;
}

/* ---- calls ---- */

typedef void (*call_cb)(queue *q, int ok, const cJSON *answer, const char *error);

/* One SQS call in flight. */
typedef struct call {
  queue *q;
  call_cb cb;
} call;

/* The sentence for a failed call: SQS's error type and message, an HTTP
 * status, or curl's error. */
static void call_error(const outbound_result *res, const cJSON *j, char *out, size_t n) {
  if (res->rc) {
    snprintf(out, n, "%s", res->error ? res->error : "no answer");
    return;
  }
  const cJSON *type = cJSON_GetObjectItemCaseSensitive(j, "__type");
  const cJSON *msg = cJSON_GetObjectItemCaseSensitive(j, "message");
  if (!cJSON_IsString(msg)) msg = cJSON_GetObjectItemCaseSensitive(j, "Message");
  const char *t = cJSON_IsString(type) ? type->valuestring : NULL;
  if (t && strchr(t, '#')) t = strchr(t, '#') + 1;
  snprintf(out, n, "HTTP %ld%s%s%s%s", res->status, t ? " " : "", t ? t : "",
           cJSON_IsString(msg) ? ": " : "", cJSON_IsString(msg) ? msg->valuestring : "");
}

static void on_call_answer(void *ud, const outbound_result *res) {
  call *c = ud;
  queue *q = c->q;
  cJSON *j = res->rc == 0 ? cJSON_ParseWithLength(res->body, res->body_len) : NULL;
  if (res->rc == 0 && res->status == 200 && cJSON_IsObject(j)) {
    c->cb(q, 1, j, NULL);
  } else {
    char why[300];
    if (res->rc == 0 && res->status == 200)
      snprintf(why, sizeof why, "SQS answered with something other than a JSON object");
    else
      call_error(res, j, why, sizeof why);
    c->cb(q, res->rc == SL_ESHUTDOWN ? -1 : 0, NULL, why);
  }
  cJSON_Delete(j);
  free(c);
}

/* Starts AmazonSQS.<action> with a JSON body. Returns 0, SL_EBUSY when no
 * credentials are in hand, or another negative code; cb is not called on
 * failure. */
static int sqs_call(queue *q, const char *action, const buf *body, long timeout_ms, size_t max_body,
                    call_cb cb) {
  const char *userpwd, *token;
  if (awscreds_current(q->s->creds, &userpwd, &token)) return SL_EBUSY;
  char target[64];
  snprintf(target, sizeof target, "X-Amz-Target: AmazonSQS.%s", action);
  const char *headers[] = {"Content-Type: application/x-amz-json-1.0", target, token, NULL};
  call *c = malloc(sizeof *c);
  if (!c) return SL_ENOMEM;
  c->q = q;
  c->cb = cb;
  struct outbound_req req = {.method = "POST",
                             .url = q->endpoint,
                             .headers = headers,
                             .body = body->data,
                             .body_len = body->len,
                             .timeout_ms = timeout_ms,
                             .max_body = max_body,
                             .aws_sigv4 = q->sigv4,
                             .userpwd = userpwd};
  int rc = outbound_request(q->s->ob, &req, on_call_answer, c);
  if (rc) free(c);
  return rc;
}

static void set_error(queue *q, const char *why) {
  snprintf(q->last_error, sizeof q->last_error, "%s", why);
  q->last_error_ms = util_now_ms();
}

/* ---- finishing messages ---- */

static void msg_free(sqs_msg *m) {
  api_sns_free(m->env);
  ses_event_free(m->sreq.ev);
  free(m->receipt);
  free(m);
}

static void record_refusal(sqs *s, const sqs_msg *m) {
  struct refusal *r = &s->recent[s->recent_next];
  s->recent_next = (s->recent_next + 1) % RECENT_MAX;
  if (s->recent_n < RECENT_MAX) s->recent_n++;
  r->at_ms = util_now_ms();
  r->q = m->q;
  r->receives = m->receives;
  snprintf(r->message_id, sizeof r->message_id, "%s", m->message_id);
  snprintf(r->code, sizeof r->code, "%s", m->code);
  snprintf(r->detail, sizeof r->detail, "%s", m->detail);
  char rc[16];
  snprintf(rc, sizeof rc, "%d", m->receives);
  log_kv(LOG_INFO, "sqs message refused; left for the queue's redrive policy", "queue", m->q->name,
         "sqs_message_id", m->message_id, "receive_count", rc, "reason", m->code, "detail",
         m->detail, NULL);
}

static void on_flush(uv_timer_t *t);

/* A message is done with: queue it for the next flush, at once when a
 * batch of 10 is full, else after FLUSH_WAIT_MS (a delete of 1 costs the
 * SQS server as much as a delete of 10). Never frees it here (this may
 * run inside ingest's or the store's callback chain). */
static void finish(sqs_msg *m, enum outcome o) {
  queue *q = m->q;
  m->outcome = o;
  m->next = q->finished;
  q->finished = m;
  q->n_finished++;
  q->in_flight--;
  if (q->s->closed) return;
  if (q->n_finished >= MAX_MESSAGES)
    uv_timer_start(&q->flush, on_flush, 0, 0);
  else if (!uv_is_active((uv_handle_t *)&q->flush))
    uv_timer_start(&q->flush, on_flush, FLUSH_WAIT_MS, 0);
}

static void refuse(sqs_msg *m, const char *code, const char *detail) {
  snprintf(m->code, sizeof m->code, "%s", code);
  snprintf(m->detail, sizeof m->detail, "%s", detail);
  finish(m, OUT_REFUSED);
}

/* Calls done once when nothing is in flight any more (or the wait ended). */
static void close_finished(sqs *s) {
  if (!s->done) return;
  void (*done)(void *) = s->done;
  s->done = NULL;
  uv_timer_stop(&s->close_timer);
  uv_close((uv_handle_t *)&s->close_timer, NULL);
  done(s->done_ud);
}

static void on_calls_done(uv_timer_t *t) {
  close_finished(t->data);
}

/* A delete or visibility call ended. This runs inside outbound's callback:
 * done (which may close outbound) is called from a timer, never here. */
static void call_ended(queue *q) {
  q->calls--;
  if (q->s->closed) {
    int busy = 0;
    for (size_t i = 0; i < q->s->n; i++) busy += q->s->queues[i].calls;
    if (!busy && q->s->done) uv_timer_start(&q->s->close_timer, on_calls_done, 0, 0);
    return;
  }
  poll_more(q);
}

static void on_deleted(queue *q, int ok, const cJSON *j, const char *error) {
  if (ok > 0) {
    const cJSON *failed = cJSON_GetObjectItemCaseSensitive(j, "Failed");
    const cJSON *done = cJSON_GetObjectItemCaseSensitive(j, "Successful");
    int nf = cJSON_IsArray(failed) ? cJSON_GetArraySize(failed) : 0;
    q->deleted += (uint64_t)(cJSON_IsArray(done) ? cJSON_GetArraySize(done) : 0);
    if (nf) {
      const cJSON *msg = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(failed, 0), "Message");
      char why[256];
      snprintf(why, sizeof why,
               "DeleteMessageBatch: %d not deleted (%s); they come back and are stored once", nf,
               cJSON_IsString(msg) ? msg->valuestring : "no reason given");
      q->delete_errors += (uint64_t)nf;
      set_error(q, why);
      log_kv(LOG_WARN, "sqs delete failed", "queue", q->name, "error", why, NULL);
    }
  } else {
    char why[400];
    snprintf(why, sizeof why, "DeleteMessageBatch failed: %s", error);
    q->delete_errors++;
    set_error(q, why);
    log_kv(LOG_WARN, "sqs delete failed; the messages come back and are stored once", "queue",
           q->name, "error", error, NULL);
  }
  call_ended(q);
}

static void on_visibility(queue *q, int ok, const cJSON *j, const char *error) {
  (void)j;
  if (ok <= 0) {
    char why[400];
    snprintf(why, sizeof why, "ChangeMessageVisibilityBatch failed: %s", error);
    set_error(q, why);
  }
  call_ended(q);
}

/* Sends one batch (up to 10) of deletes or visibility changes. */
static void send_batch(queue *q, sqs_msg **ms, int n, int retry) {
  buf b;
  buf_init(&b, 1 << 20);
  buf_appends(&b, "{\"QueueUrl\":");
  buf_appends(&b, q->url_json);
  buf_appends(&b, ",\"Entries\":[");
  for (int i = 0; i < n; i++) {
    buf_printf(&b, "%s{\"Id\":\"m%d\",\"ReceiptHandle\":", i ? "," : "", i);
    buf_json_string(&b, ms[i]->receipt);
    if (retry) {
      /* Longer each time the writer could not take it. */
      int shift = ms[i]->receives > 1 ? ms[i]->receives - 1 : 0;
      long v = shift > 10 ? BACKOFF_MAX_VISIBILITY_S : (long)q->s->backoff_base_s << shift;
      if (v > BACKOFF_MAX_VISIBILITY_S) v = BACKOFF_MAX_VISIBILITY_S;
      buf_printf(&b, ",\"VisibilityTimeout\":%ld", v);
    }
    buf_appends(&b, "}");
  }
  int rc = buf_appends(&b, "]}");
  if (!rc)
    rc = sqs_call(q, retry ? "ChangeMessageVisibilityBatch" : "DeleteMessageBatch", &b,
                  CALL_TIMEOUT_MS, 1 << 20, retry ? on_visibility : on_deleted);
  buf_free(&b);
  if (rc == 0) {
    q->calls++;
    q->requests[retry ? 2 : 1]++;
  } else if (!retry) {
    q->delete_errors += (uint64_t)n;
    set_error(q, rc == SL_EBUSY ? "DeleteMessageBatch: no AWS credentials in hand"
                                : "DeleteMessageBatch could not start");
  }
}

/* Acts on every finished message: deletes, visibility backoffs,
 * refusals; frees them. */
static void flush_queue(queue *q) {
  sqs_msg *list = q->finished;
  q->finished = NULL;
  q->n_finished = 0;
  sqs_msg *del[MAX_MESSAGES], *ret[MAX_MESSAGES], *all = list;
  int nd = 0, nr = 0;
  for (sqs_msg *m = list; m; m = m->next) {
    if (m->outcome == OUT_DELETE) {
      del[nd++] = m;
      if (nd == MAX_MESSAGES) send_batch(q, del, nd, 0), nd = 0;
    } else if (m->outcome == OUT_RETRY) {
      q->retried++;
      ret[nr++] = m;
      if (nr == MAX_MESSAGES) send_batch(q, ret, nr, 1), nr = 0;
    } else if (m->outcome == OUT_REFUSED) {
      q->refused++;
      record_refusal(q->s, m);
    }
  }
  if (nd) send_batch(q, del, nd, 0);
  if (nr) send_batch(q, ret, nr, 1);
  while (all) {
    sqs_msg *next = all->next;
    msg_free(all);
    all = next;
  }
  poll_more(q);
}

static void on_flush(uv_timer_t *t) {
  flush_queue(t->data);
}

/* ---- handing messages in ---- */

/* ingest answered the envelope (inside its callback chain). */
static void on_ingest_done(void *ud, const struct api_sns_answer *a) {
  sqs_msg *m = ud;
  queue *q = m->q;
  if (a->status == 200) {
    if (strcmp(a->outcome, "stored") == 0)
      q->stored++;
    else if (strcmp(a->outcome, "duplicate") == 0)
      q->duplicates++;
    else
      q->ignored++;
    finish(m, OUT_DELETE);
  } else if (a->status >= 500) {
    finish(m, OUT_RETRY);
  } else {
    refuse(m, a->code ? a->code : "refused", a->message ? a->message : "The envelope was refused.");
  }
}

/* Hands an SNS envelope to ingest as if SNS had posted it to /sns. */
static void hand_to_ingest(sqs_msg *m, const char *body, size_t len) {
  queue *q = m->q;
  char remote[64];
  snprintf(remote, sizeof remote, "sqs:%s", q->name);
  int rc =
      api_sns_submit(q->s->in, body, len, remote, q->s->auth_header, on_ingest_done, m, &m->env);
  if (rc == SL_ETOOBIG)
    refuse(m, "too_large", "The message body is over 1 MiB, the limit of POST /sns.");
  else if (rc)
    finish(m, OUT_RETRY);
}

static void on_raw_stored(store_req *sr) {
  sqs_msg *m = sr->ud;
  if (sr->result == STORE_STORED || sr->result == STORE_DUPLICATE) {
    if (sr->result == STORE_STORED)
      m->q->stored++;
    else
      m->q->duplicates++;
    finish(m, OUT_DELETE);
  } else {
    finish(m, OUT_RETRY);
  }
}

/* A body without a signature, from a queue declared raw: a bare SES event
 * or the EventBridge shape. */
static void store_raw(sqs_msg *m, const cJSON *doc) {
  const cJSON *detail = ses_eventbridge_detail(doc);
  ses_event *ev;
  const char *why = NULL;
  int rc = ses_parse_json(detail ? detail : doc, NULL, &ev, &why);
  if (rc == SL_ENOTSES || rc == SL_ETYPE) {
    m->q->ignored++;
    log_kv(LOG_INFO, "sqs message carries no SES event; deleted", "queue", m->q->name,
           "sqs_message_id", m->message_id, "detail", why ? why : sl_strerror(rc), NULL);
    finish(m, OUT_DELETE);
    return;
  }
  if (rc) {
    refuse(m, rc == SL_ENOMEM ? "out_of_memory" : "invalid_ses_event",
           why ? why : "The body is not a valid SES event.");
    return;
  }
  m->sreq.ev = ev;
  m->sreq.at_ms = util_now_ms();
  m->sreq.cb = on_raw_stored;
  m->sreq.ud = m;
  if (store_submit(m->q->s->st, &m->sreq)) finish(m, OUT_RETRY);
}

/* 1 when doc looks like an SNS envelope (what ingest verifies). */
static int is_envelope(const cJSON *doc) {
  return cJSON_IsString(cJSON_GetObjectItemCaseSensitive(doc, "Type")) &&
         (cJSON_GetObjectItemCaseSensitive(doc, "Signature") ||
          cJSON_GetObjectItemCaseSensitive(doc, "TopicArn"));
}

static void handle_message(queue *q, const cJSON *msg) {
  const cJSON *body = cJSON_GetObjectItemCaseSensitive(msg, "Body");
  const cJSON *rh = cJSON_GetObjectItemCaseSensitive(msg, "ReceiptHandle");
  const cJSON *mid = cJSON_GetObjectItemCaseSensitive(msg, "MessageId");
  const cJSON *attrs = cJSON_GetObjectItemCaseSensitive(msg, "Attributes");
  const cJSON *rc = cJSON_GetObjectItemCaseSensitive(attrs, "ApproximateReceiveCount");
  if (!cJSON_IsString(rh) || !*rh->valuestring) {
    set_error(q, "ReceiveMessage answered a message without a ReceiptHandle");
    return;
  }
  sqs_msg *m = calloc(1, sizeof *m);
  if (!m || !(m->receipt = util_strdup(rh->valuestring))) {
    free(m);
    return; /* it comes back after the visibility timeout */
  }
  m->q = q;
  snprintf(m->message_id, sizeof m->message_id, "%s", cJSON_IsString(mid) ? mid->valuestring : "");
  m->receives = cJSON_IsString(rc) ? atoi(rc->valuestring) : 1;
  q->received++;
  q->in_flight++;
  if (!cJSON_IsString(body)) {
    refuse(m, "missing_body", "The SQS message has no Body.");
    return;
  }
  const char *text = body->valuestring;
  size_t len = strlen(text);
  cJSON *doc = cJSON_ParseWithLength(text, len);
  const char *why = NULL;
  int bad;
  if (!cJSON_IsObject(doc)) {
    refuse(m, "invalid_json", "The message body is not a JSON object.");
  } else if (is_envelope(doc)) {
    hand_to_ingest(m, text, len);
  } else if (q->raw && (bad = jsoncheck(text, len, &why)) != 0) {
    /* As on /sns and in import: nothing stored ambiguously. */
    refuse(m,
           bad == SL_EDUPKEY ? "duplicate_key"
           : bad == SL_ENUL  ? "nul_in_string"
                             : "refused",
           why ? why : "The body cannot be checked.");
  } else if (q->raw) {
    store_raw(m, doc);
  } else {
    refuse(m, "raw_not_allowed",
           "The body is not a signed SNS envelope; bare SES JSON and EventBridge events are "
           "taken only from a queue named with --sqs-raw-queue-url.");
  }
  cJSON_Delete(doc);
}

/* ---- receiving ---- */

static void on_retry_timer(uv_timer_t *t) {
  poll_more(t->data);
}

static void pause_queue(queue *q) {
  if (q->s->closed || uv_is_active((uv_handle_t *)&q->retry)) return;
  uv_timer_start(&q->retry, on_retry_timer, (uint64_t)q->backoff_ms, 0);
  q->backoff_ms = q->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : q->backoff_ms * 2;
}

static void on_received(queue *q, int ok, const cJSON *j, const char *error) {
  q->polling--;
  if (ok < 0) return; /* stopping */
  if (!ok) {
    q->receive_errors++;
    q->up = 0;
    char why[400];
    snprintf(why, sizeof why, "ReceiveMessage failed: %s", error);
    set_error(q, why);
    if (!q->s->stopping) {
      q->state = "retrying";
      log_kv(LOG_WARN, "sqs receive failed; retrying", "queue", q->name, "error", error, NULL);
      pause_queue(q);
    }
    return;
  }
  q->last_receive_ms = util_now_ms();
  q->up = 1;
  q->backoff_ms = BACKOFF_MIN_MS;
  if (q->s->stopping) return; /* not handed in: left for the next run */
  q->state = "polling";
  const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(j, "Messages");
  const cJSON *m;
  cJSON_ArrayForEach(m, msgs) handle_message(q, m);
  poll_more(q);
}

/* Starts receives up to the pollers, while the messages in hand leave
 * room for another full batch each. */
static void poll_more(queue *q) {
  sqs *s = q->s;
  int cap = IN_FLIGHT_MAX;
  int pollers = q->up ? s->pollers : 1;
  while (!s->stopping && !s->closed && q->polling < pollers &&
         q->in_flight + (q->polling + 1) * MAX_MESSAGES <= cap &&
         !uv_is_active((uv_handle_t *)&q->retry)) {
    buf b;
    buf_init(&b, 16384);
    buf_appends(&b, "{\"QueueUrl\":");
    buf_appends(&b, q->url_json);
    buf_printf(&b,
               ",\"MaxNumberOfMessages\":%d,\"WaitTimeSeconds\":%d,"
               "\"AttributeNames\":[\"ApproximateReceiveCount\"],"
               "\"MessageSystemAttributeNames\":[\"ApproximateReceiveCount\"]}",
               MAX_MESSAGES, WAIT_SECONDS);
    int rc = sqs_call(q, "ReceiveMessage", &b, RECEIVE_TIMEOUT_MS, RECEIVE_ANSWER_MAX, on_received);
    buf_free(&b);
    if (rc == SL_EBUSY) {
      char why[300];
      awscreds_status(s->creds, why, sizeof why);
      q->state = "waiting for credentials";
      set_error(q, why);
      pause_queue(q);
      return;
    }
    if (rc) {
      set_error(q, "ReceiveMessage could not start");
      pause_queue(q);
      return;
    }
    q->polling++;
    q->requests[0]++;
  }
}

/* ---- life cycle ---- */

static void queue_free(queue *q) {
  free(q->url);
  free(q->name);
  free(q->endpoint);
  free(q->region);
  free(q->sigv4);
  free(q->url_json);
  while (q->finished) {
    sqs_msg *m = q->finished;
    q->finished = m->next;
    msg_free(m);
  }
}

/* "Basic base64(user:pass)"; NULL when out of memory. */
static char *basic_header(const char *userpass) {
  size_t n = strlen(userpass);
  char *out = malloc(6 + 4 * ((n + 2) / 3) + 1);
  if (!out) return NULL;
  memcpy(out, "Basic ", 6);
  EVP_EncodeBlock((unsigned char *)out + 6, (const unsigned char *)userpass, (int)n);
  return out;
}

int sqs_new(uv_loop_t *loop, outbound *ob, awscreds *creds, const struct sqs_opts *o, sqs **out,
            char *err, size_t errlen) {
  sqs *s = calloc(1, sizeof *s);
  size_t n = o->n_queue_urls + o->n_raw_queue_urls;
  if (!s || !(s->queues = calloc(n ? n : 1, sizeof *s->queues))) {
    free(s);
    return SL_ENOMEM;
  }
  s->loop = loop;
  s->ob = ob;
  s->creds = creds;
  s->pollers = o->pollers > 0 ? o->pollers : 2;
  s->backoff_base_s = o->backoff_base_s > 0 ? o->backoff_base_s : 5;
  int rc = 0;
  if (o->basic_auth && !(s->auth_header = basic_header(o->basic_auth))) rc = SL_ENOMEM;
  for (size_t i = 0; i < n && !rc; i++) {
    int raw = i >= o->n_queue_urls;
    const char *url = raw ? o->raw_queue_urls[i - o->n_queue_urls] : o->queue_urls[i];
    for (size_t k = 0; k < s->n && !rc; k++)
      if (strcmp(s->queues[k].url, url) == 0) {
        snprintf(err, errlen, "%s is named twice", url);
        rc = SL_EINVAL;
      }
    if (rc) break;
    queue *q = &s->queues[s->n++];
    q->s = s;
    q->raw = raw;
    rc = queue_init(q, url, o->endpoint, err, errlen);
    if (rc == SL_ENOMEM) snprintf(err, errlen, "out of memory");
  }
  if (rc) {
    for (size_t i = 0; i < s->n; i++) queue_free(&s->queues[i]);
    free(s->queues);
    free(s->auth_header);
    free(s);
    return rc;
  }
  for (size_t i = 0; i < s->n; i++) {
    queue *q = &s->queues[i];
    uv_timer_init(loop, &q->retry);
    uv_timer_init(loop, &q->flush);
    q->retry.data = q->flush.data = q;
  }
  *out = s;
  return 0;
}

void sqs_start(sqs *s, ingest *in, store *st) {
  s->in = in;
  s->st = st;
  for (size_t i = 0; i < s->n; i++) {
    queue *q = &s->queues[i];
    log_kv(LOG_INFO, "polling sqs queue", "queue", q->url, "endpoint", q->endpoint, "region",
           q->region, "raw", q->raw ? "yes" : "no", "credentials", awscreds_source(s->creds), NULL);
    poll_more(q);
  }
}

void sqs_stop(sqs *s) {
  if (!s) return;
  s->stopping = 1;
  for (size_t i = 0; i < s->n; i++) {
    s->queues[i].state = "stopped";
    uv_timer_stop(&s->queues[i].retry);
  }
}

static void on_close_timer(uv_timer_t *t) {
  log_kv(LOG_WARN,
         "sqs deletes still in flight at stop; those messages come back and are stored once", NULL);
  close_finished(t->data);
}

void sqs_close(sqs *s, void (*done)(void *ud), void *ud) {
  s->stopping = 1;
  int busy = 0;
  for (size_t i = 0; i < s->n; i++) {
    queue *q = &s->queues[i];
    uv_timer_stop(&q->flush);
    flush_queue(q);
    busy += q->calls;
  }
  s->closed = 1;
  for (size_t i = 0; i < s->n; i++) {
    uv_close((uv_handle_t *)&s->queues[i].retry, NULL);
    uv_close((uv_handle_t *)&s->queues[i].flush, NULL);
  }
  uv_timer_init(s->loop, &s->close_timer);
  s->close_timer.data = s;
  s->done = done ? done : NULL;
  s->done_ud = ud;
  if (busy && done) {
    uv_timer_start(&s->close_timer, on_close_timer, CLOSE_WAIT_MS, 0);
    return;
  }
  uv_close((uv_handle_t *)&s->close_timer, NULL);
  s->done = NULL;
  if (done) done(ud);
}

void sqs_free(sqs *s) {
  if (!s) return;
  for (size_t i = 0; i < s->n; i++) queue_free(&s->queues[i]);
  free(s->queues);
  if (s->auth_header) {
    volatile char *p = s->auth_header;
    while (*p) *p++ = 0;
    free(s->auth_header);
  }
  free(s);
}

/* ---- reporting ---- */

void sqs_json(const sqs *s, buf *b) {
  buf_appends(b, "{\"queues\":[");
  for (size_t i = 0; s && i < s->n; i++) {
    const queue *q = &s->queues[i];
    buf_appends(b, i ? ",{\"url\":" : "{\"url\":");
    buf_appends(b, q->url_json);
    buf_appends(b, ",\"name\":");
    buf_json_string(b, q->name);
    buf_printf(b, ",\"raw\":%s,\"region\":", q->raw ? "true" : "false");
    buf_json_string(b, q->region);
    buf_appends(b, ",\"endpoint\":");
    buf_json_string(b, q->endpoint);
    buf_appends(b, ",\"state\":");
    buf_json_string(b, q->state);
    buf_appends(b, ",\"lastReceiveAt\":");
    buf_json_time(b, q->last_receive_ms);
    buf_printf(b,
               ",\"received\":%llu,\"stored\":%llu,\"duplicates\":%llu,\"ignored\":%llu,"
               "\"refused\":%llu,\"deleted\":%llu,\"retried\":%llu,\"inFlight\":%d,"
               "\"receiveErrors\":%llu,\"deleteErrors\":%llu,\"lastError\":",
               (unsigned long long)q->received, (unsigned long long)q->stored,
               (unsigned long long)q->duplicates, (unsigned long long)q->ignored,
               (unsigned long long)q->refused, (unsigned long long)q->deleted,
               (unsigned long long)q->retried, q->in_flight, (unsigned long long)q->receive_errors,
               (unsigned long long)q->delete_errors);
    if (q->last_error[0])
      buf_json_string(b, q->last_error);
    else
      buf_appends(b, "null");
    buf_appends(b, ",\"lastErrorAt\":");
    buf_json_time(b, q->last_error_ms);
    buf_appends(b, "}");
  }
  buf_appends(b, "]");
  if (s) {
    buf_appends(b, ",\"credentials\":{\"source\":");
    buf_json_string(b, awscreds_source(s->creds));
    buf_appends(b, ",\"accessKeyId\":");
    buf_json_string(b, awscreds_access_key_id(s->creds));
    char why[300];
    buf_appends(b, ",\"error\":");
    if (awscreds_status(s->creds, why, sizeof why))
      buf_json_string(b, why);
    else
      buf_appends(b, "null");
    buf_appends(b, "}");
  }
  buf_appends(b, "}");
}

void sqs_diagnostics_json(const sqs *s, buf *b) {
  if (!s) return;
  buf_appends(b, ",\"sqs\":{\"refusedByQueue\":{");
  for (size_t i = 0; i < s->n; i++) {
    buf_appends(b, i ? "," : "");
    buf_appends(b, s->queues[i].url_json);
    buf_printf(b, ":%llu", (unsigned long long)s->queues[i].refused);
  }
  buf_appends(b, "},\"recentRefusals\":[");
  for (size_t i = 0; i < s->recent_n; i++) {
    const struct refusal *r = &s->recent[(s->recent_next + RECENT_MAX - 1 - i) % RECENT_MAX];
    buf_appends(b, i ? ",{\"at\":" : "{\"at\":");
    buf_json_time(b, r->at_ms);
    buf_appends(b, ",\"queue\":");
    buf_appends(b, r->q->url_json);
    buf_appends(b, ",\"messageId\":");
    buf_json_string(b, r->message_id);
    buf_printf(b, ",\"receiveCount\":%d,\"code\":", r->receives);
    buf_json_string(b, r->code);
    buf_appends(b, ",\"detail\":");
    buf_json_string(b, r->detail);
    buf_appends(b, "}");
  }
  buf_appends(b, "]}");
}

/* A Prometheus label value: the queue name is [A-Za-z0-9_-] in SQS, but
 * escape anyway. */
static void label(buf *b, const char *s) {
  for (; *s; s++) {
    if (*s == '"' || *s == '\\') buf_append(b, "\\", 1);
    if (*s == '\n')
      buf_appends(b, "\\n");
    else
      buf_append(b, s, 1);
  }
}

int sqs_metrics(void *ud, buf *b) {
  const sqs *s = ud;
  if (!s || !s->n) return 0;
  static const char *const outcomes[] = {"received", "stored",  "duplicate", "ignored",
                                         "refused",  "deleted", "retried"};
  buf_appends(b,
              "# HELP seslog_sqs_messages_total SQS messages by outcome: received, stored, "
              "duplicate, ignored (no SES event), refused (left for the redrive policy), "
              "deleted, retried (visibility backoff).\n# TYPE seslog_sqs_messages_total "
              "counter\n");
  for (size_t i = 0; i < s->n; i++) {
    const queue *q = &s->queues[i];
    const uint64_t v[] = {q->received, q->stored,  q->duplicates, q->ignored,
                          q->refused,  q->deleted, q->retried};
    for (size_t k = 0; k < sizeof v / sizeof v[0]; k++) {
      buf_appends(b, "seslog_sqs_messages_total{queue=\"");
      label(b, q->name);
      buf_printf(b, "\",outcome=\"%s\"} %llu\n", outcomes[k], (unsigned long long)v[k]);
    }
  }
  buf_appends(b,
              "# HELP seslog_sqs_requests_total SQS calls made, by call.\n"
              "# TYPE seslog_sqs_requests_total counter\n");
  static const char *const calls[] = {"receive", "delete", "visibility"};
  for (size_t i = 0; i < s->n; i++)
    for (int k = 0; k < 3; k++) {
      buf_appends(b, "seslog_sqs_requests_total{queue=\"");
      label(b, s->queues[i].name);
      buf_printf(b, "\",call=\"%s\"} %llu\n", calls[k],
                 (unsigned long long)s->queues[i].requests[k]);
    }
  struct {
    const char *name, *type, *help;
  } series[] = {
      {"seslog_sqs_errors_total", "counter", "Failed SQS calls, by call."},
      {"seslog_sqs_in_flight", "gauge", "Messages received and not yet finished."},
      {"seslog_sqs_up", "gauge", "1 when the last receive from the queue succeeded."},
      {"seslog_sqs_last_receive_timestamp_seconds", "gauge",
       "When a receive from the queue last succeeded (0: never)."},
  };
  for (size_t k = 0; k < sizeof series / sizeof series[0]; k++) {
    buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", series[k].name, series[k].help, series[k].name,
               series[k].type);
    for (size_t i = 0; i < s->n; i++) {
      const queue *q = &s->queues[i];
      if (k == 0) {
        buf_appends(b, "seslog_sqs_errors_total{queue=\"");
        label(b, q->name);
        buf_printf(b, "\",call=\"receive\"} %llu\n", (unsigned long long)q->receive_errors);
        buf_appends(b, "seslog_sqs_errors_total{queue=\"");
        label(b, q->name);
        buf_printf(b, "\",call=\"delete\"} %llu\n", (unsigned long long)q->delete_errors);
        continue;
      }
      buf_printf(b, "%s{queue=\"", series[k].name);
      label(b, q->name);
      if (k == 1)
        buf_printf(b, "\"} %d\n", q->in_flight);
      else if (k == 2)
        buf_printf(b, "\"} %d\n", q->up);
      else
        buf_printf(b, "\"} %.3f\n", (double)q->last_receive_ms / 1000.0);
    }
  }
  return 0;
}
