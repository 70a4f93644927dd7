/* cmd_simulate.c - `seslog simulate`: realistic SES traffic for a running
 * server, posted as properly signed SNS notifications.
 *
 * Outcomes follow SES's mailbox simulator (success, bounce, ooto,
 * complaint, suppressionlist at simulator.amazonses.com). The messages are
 * signed with a development key whose certificate simulate writes into the
 * server's certificate folder under a SigningCertURL name, so the server
 * verifies them exactly as it verifies AWS's, without fetching. That
 * certificate is for development: remove it from a production cert dir. */
#include <errno.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <uv.h>

#include "cmd.h"
#include "config.h"
#include "error.h"
#include "log.h"
#include "outbound.h"
#include "sns.h"
#include "util.h"

/* The development certificate's file name: a SigningCertURL's last
 * segment, recognizably not AWS's. */
#define DEV_CERT_HEX "5e5109dede7e1000000000000000dead"
#define DEV_CERT_NAME "SimpleNotificationService-" DEV_CERT_HEX ".pem"
#define DEV_KEY_NAME "seslog-simulate.key"

struct sim_opts {
  char *db;
  char *url;
  double rate;
  int64_t duration;
  double bounce;
  double complaint;
  char *topic_arn;
  char *sns_cert_dir;
  long concurrency;
  char *log_level;
};

#define O(f) offsetof(struct sim_opts, f)
static const struct opt sim_table[] = {
    {"url", OPT_STR, O(url), "http://127.0.0.1:8490", "URL", "the server (its /sns is posted to)"},
    {"rate", OPT_DOUBLE, O(rate), "10", "N", "mails sent per second (each gives 2-3 events)"},
    {"duration", OPT_DURATION, O(duration), "30s", "DURATION", "how long; 0 runs until Ctrl-C"},
    {"bounce", OPT_DOUBLE, O(bounce), "3", "PCT", "percent of mails that hard-bounce"},
    {"complaint", OPT_DOUBLE, O(complaint), "0.2", "PCT", "percent of mails that draw a complaint"},
    {"topic-arn", OPT_STR, O(topic_arn), "arn:aws:sns:us-east-1:000000000000:seslog-simulate",
     "ARN",
     "TopicArn of the notifications (allow it with serve --sns-topic-arn if you use an allowlist)"},
    {"sns-cert-dir", OPT_STR, O(sns_cert_dir), NULL, "DIR",
     "the server's certificate folder; the development certificate goes there "
     "[<db folder>/sns-certs]"},
    {"db", OPT_STR, O(db), SESLOG_DEFAULT_DB, "PATH",
     "the server's database (locates the cert folder)"},
    {"concurrency", OPT_INT, O(concurrency), "8", "N", "requests in flight at most"},
    {"log-level", OPT_STR, O(log_level), "warn", "LEVEL", "debug, info, warn or error"},
    {0},
};
#undef O

static const char sim_usage[] =
    "Usage: seslog simulate [OPTIONS]\n"
    "\n"
    "Posts realistic SES traffic to a running seslog as signed SNS notifications: each mail\n"
    "gives a Send event and its outcome (Delivery; Bounce, permanent or on the suppression\n"
    "list; Delivery then Complaint), like SES's mailbox simulator. The signing certificate is a\n"
    "development one that simulate writes into the server's certificate folder.\n"
    "Example: make run, then in another terminal: build/seslog simulate --rate 20 --duration 1m";

typedef struct sim {
  uv_loop_t loop;
  uv_timer_t timer;
  uv_signal_t sigint;
  outbound *ob;
  struct sim_opts *o;
  char *key_pem;
  char *sns_url;
  int64_t start_ms, end_ms;
  double due; /* mails due so far */
  long mails, sent, ok, failed, in_flight;
  long by_type[4]; /* Send, Delivery, Bounce, Complaint */
  long status[6];  /* 2xx 3xx 4xx 5xx other errors */
  int stopping;
  char last_error[200];
} sim;

/* The development key and certificate: made once, reused after. */
static int dev_identity(const char *dir, char **key_pem) {
  char key_path[4200], cert_path[4200];
  snprintf(key_path, sizeof key_path, "%s/%s", dir, DEV_KEY_NAME);
  snprintf(cert_path, sizeof cert_path, "%s/%s", dir, DEV_CERT_NAME);
  FILE *kf = fopen(key_path, "rb");
  FILE *cf = fopen(cert_path, "rb");
  if (kf && cf) {
    char text[16384];
    size_t n = fread(text, 1, sizeof text - 1, kf);
    fclose(kf);
    fclose(cf);
    *key_pem = util_strndup(text, n);
    return *key_pem ? 0 : SL_ENOMEM;
  }
  if (kf) fclose(kf);
  if (cf) fclose(cf);
  if (mkdir(dir, 0755) && errno != EEXIST) {
    fprintf(stderr, "seslog simulate: cannot create %s: %s\n", dir, strerror(errno));
    return SL_EIO;
  }
  EVP_PKEY *pkey = EVP_RSA_gen(2048);
  X509 *x = X509_new();
  int rc = SL_ENOMEM;
  if (!pkey || !x) goto out;
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), (long)(util_now_ms() / 1000));
  X509_gmtime_adj(X509_getm_notBefore(x), -86400);
  X509_gmtime_adj(X509_getm_notAfter(x), 86400L * 3650);
  X509_set_pubkey(x, pkey);
  X509_NAME *name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             (const unsigned char *)"seslog simulate (development only)", -1, -1,
                             0);
  X509_set_issuer_name(x, name);
  if (!X509_sign(x, pkey, EVP_sha256())) goto out;
  FILE *f = fopen(key_path, "wb");
  if (!f) {
    fprintf(stderr, "seslog simulate: cannot write %s: %s\n", key_path, strerror(errno));
    rc = SL_EIO;
    goto out;
  }
  chmod(key_path, 0600);
  PEM_write_PrivateKey(f, pkey, NULL, NULL, 0, NULL, NULL);
  fclose(f);
  f = fopen(cert_path, "wb");
  if (!f) {
    fprintf(stderr, "seslog simulate: cannot write %s: %s\n", cert_path, strerror(errno));
    rc = SL_EIO;
    goto out;
  }
  PEM_write_X509(f, x);
  fclose(f);
  BIO *b = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(b, pkey, NULL, NULL, 0, NULL, NULL);
  char *p;
  long n = BIO_get_mem_data(b, &p);
  *key_pem = util_strndup(p, (size_t)n);
  BIO_free(b);
  rc = *key_pem ? 0 : SL_ENOMEM;
  fprintf(stderr, "seslog simulate: wrote a development signing certificate to %s\n", cert_path);
out:
  X509_free(x);
  EVP_PKEY_free(pkey);
  return rc;
}

static void uuid(char out[37]) {
  unsigned char r[16];
  RAND_bytes(r, sizeof r);
  r[6] = (unsigned char)((r[6] & 0x0f) | 0x40);
  r[8] = (unsigned char)((r[8] & 0x3f) | 0x80);
  snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", r[0],
           r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12], r[13], r[14],
           r[15]);
}

static void on_posted(void *ud, const outbound_result *res) {
  sim *s = ud;
  s->in_flight--;
  if (res->rc) {
    s->status[4]++;
    s->failed++;
    snprintf(s->last_error, sizeof s->last_error, "%s", res->error);
  } else {
    int k = res->status >= 200 && res->status < 600 ? (int)(res->status / 100) - 2 : 4;
    s->status[k]++;
    if (res->status == 200)
      s->ok++;
    else {
      s->failed++;
      snprintf(s->last_error, sizeof s->last_error, "HTTP %ld: %.150s", res->status, res->body);
    }
  }
  if (s->stopping && !s->in_flight) uv_stop(&s->loop);
}

/* Posts one SES event (eventType JSON) wrapped in a signed envelope. */
static void post_event(sim *s, const char *type, const char *mail_id, const char *recipient,
                       const char *detail) {
  char ts[25], now_iso[25], sns_id[37];
  int64_t now = util_now_ms();
  util_format_iso8601(now, now_iso);
  util_format_iso8601(now - 1500, ts);
  uuid(sns_id);
  buf m;
  buf_init(&m, 1 << 16);
  buf_printf(&m,
             "{\"eventType\":\"%s\",\"mail\":{\"timestamp\":\"%s\",\"source\":"
             "\"Example Shop <orders@shop.example.com>\",\"sourceArn\":"
             "\"arn:aws:ses:us-east-1:000000000000:identity/shop.example.com\","
             "\"sendingAccountId\":\"000000000000\",\"messageId\":\"%s\",\"destination\":[",
             type, ts, mail_id);
  buf_json_string(&m, recipient);
  buf_appends(&m,
              "],\"headersTruncated\":false,\"commonHeaders\":{\"from\":"
              "[\"Example Shop <orders@shop.example.com>\"],\"to\":[");
  buf_json_string(&m, recipient);
  buf_appends(&m,
              "],\"subject\":\"Your order has shipped\"},\"tags\":{\"ses:configuration-set\":"
              "[\"transactional\"],\"campaign\":[\"shipping\"]}},");
  if (strcmp(type, "Send") == 0) {
    buf_appends(&m, "\"send\":{}}");
  } else if (strcmp(type, "Delivery") == 0) {
    buf_printf(&m,
               "\"delivery\":{\"timestamp\":\"%s\",\"processingTimeMillis\":1342,"
               "\"recipients\":[",
               now_iso);
    buf_json_string(&m, recipient);
    buf_appends(&m,
                "],\"smtpResponse\":\"250 2.6.0 Message received\","
                "\"reportingMTA\":\"a8-70.smtp-out.amazonses.com\"}}");
  } else if (strcmp(type, "Bounce") == 0) {
    int suppressed = strcmp(detail, "OnAccountSuppressionList") == 0;
    char fb[37];
    uuid(fb);
    buf_printf(&m,
               "\"bounce\":{\"bounceType\":\"Permanent\",\"bounceSubType\":\"%s\","
               "\"bouncedRecipients\":[{\"emailAddress\":",
               detail);
    buf_json_string(&m, recipient);
    buf_printf(&m,
               ",\"action\":\"failed\",\"status\":\"5.1.1\",\"diagnosticCode\":\"%s\"}],"
               "\"timestamp\":\"%s\",\"feedbackId\":\"0100%s-000000\",\"reportingMTA\":"
               "\"dns; amazonses.com\"}}",
               suppressed ? "Amazon SES did not send the message to this address because it is "
                            "on the suppression list for your account."
                          : "smtp; 550 5.1.1 user unknown",
               now_iso, fb);
  } else {
    char fb[37];
    uuid(fb);
    buf_appends(&m, "\"complaint\":{\"complainedRecipients\":[{\"emailAddress\":");
    buf_json_string(&m, recipient);
    buf_printf(&m,
               "}],\"timestamp\":\"%s\",\"feedbackId\":\"0100%s-000000\","
               "\"complaintSubType\":null,\"userAgent\":\"Amazon SES Mailbox Simulator\","
               "\"complaintFeedbackType\":\"abuse\",\"arrivalDate\":\"%s\"}}",
               now_iso, fb, now_iso);
  }
  sns_msg msg = {.type = SNS_NOTIFICATION,
                 .type_str = "Notification",
                 .message_id = sns_id,
                 .topic_arn = s->o->topic_arn,
                 .message = m.data,
                 .message_len = m.len,
                 .timestamp = now_iso,
                 .signature_version = "2",
                 .signing_cert_url = "https://sns.us-east-1.amazonaws.com/" DEV_CERT_NAME,
                 .unsubscribe_url = "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe"};
  char *body = NULL;
  if (sns_sign(&msg, s->key_pem, strlen(s->key_pem)) == 0) body = sns_to_json(&msg);
  free(msg.signature);
  buf_free(&m);
  if (!body) {
    s->failed++;
    return;
  }
  const char *headers[] = {"Content-Type: text/plain; charset=UTF-8",
                           "x-amz-sns-message-type: Notification", NULL};
  struct outbound_req req = {.method = "POST",
                             .url = s->sns_url,
                             .headers = headers,
                             .body = body,
                             .body_len = strlen(body),
                             .timeout_ms = 15000};
  if (outbound_request(s->ob, &req, on_posted, s) == 0) {
    s->in_flight++;
    s->sent++;
    s->by_type[strcmp(type, "Send") == 0       ? 0
               : strcmp(type, "Delivery") == 0 ? 1
               : strcmp(type, "Bounce") == 0   ? 2
                                               : 3]++;
  } else {
    s->failed++;
  }
  free(body);
}

/* One simulated mail: its Send event and its outcome. */
static void one_mail(sim *s) {
  static const char *const outcomes[] = {"success", "ooto"};
  char mail_id[80], id[37], rcpt[128];
  uuid(id);
  snprintf(mail_id, sizeof mail_id, "0100%s-000000", id);
  double roll = (double)(random() % 1000000) / 10000.0; /* percent */
  long n = s->mails++;
  if (roll < s->o->bounce) {
    int suppressed = random() % 5 == 0;
    snprintf(rcpt, sizeof rcpt, "%s+%ld@simulator.amazonses.com",
             suppressed ? "suppressionlist" : "bounce", n);
    post_event(s, "Send", mail_id, rcpt, NULL);
    post_event(s, "Bounce", mail_id, rcpt, suppressed ? "OnAccountSuppressionList" : "General");
  } else if (roll < s->o->bounce + s->o->complaint) {
    snprintf(rcpt, sizeof rcpt, "complaint+%ld@simulator.amazonses.com", n);
    post_event(s, "Send", mail_id, rcpt, NULL);
    post_event(s, "Delivery", mail_id, rcpt, NULL);
    post_event(s, "Complaint", mail_id, rcpt, NULL);
  } else {
    snprintf(rcpt, sizeof rcpt, "%s+%ld@simulator.amazonses.com", outcomes[random() % 2], n);
    post_event(s, "Send", mail_id, rcpt, NULL);
    post_event(s, "Delivery", mail_id, rcpt, NULL);
  }
}

static void on_tick(uv_timer_t *t) {
  sim *s = t->data;
  int64_t now = util_now_ms();
  if (s->end_ms && now >= s->end_ms) {
    s->stopping = 1;
    uv_timer_stop(t);
    if (!s->in_flight) uv_stop(&s->loop);
    return;
  }
  s->due = (double)(now - s->start_ms) / 1000.0 * s->o->rate;
  while ((double)s->mails < s->due && s->in_flight < s->o->concurrency * 3) one_mail(s);
}

static void on_sigint(uv_signal_t *h, int signum) {
  sim *s = h->data;
  (void)signum;
  s->stopping = 1;
  uv_timer_stop(&s->timer);
  if (!s->in_flight) uv_stop(&s->loop);
}

static void on_closed(void *ud) {
  (void)ud;
}

int cmd_simulate(int argc, char **argv, int argi) {
  struct sim_opts o = {0};
  int rc = config_parse("simulate", sim_usage, sim_table, &o, argc, argv, &argi);
  if (rc) {
    config_free(sim_table, &o);
    return rc == 1 ? 0 : 2;
  }
  int status = 2;
  sim *s = calloc(1, sizeof *s);
  if (!s) goto out;
  if (argi < argc) {
    fprintf(stderr, "seslog simulate: unexpected argument \"%s\"\n", argv[argi]);
    goto out;
  }
  if (log_set_level(o.log_level) || o.rate <= 0 || o.rate > 5000 || o.bounce + o.complaint > 100 ||
      o.concurrency < 1) {
    fprintf(stderr,
            "seslog simulate: --rate must be in (0, 5000], --bounce + --complaint at most "
            "100, --concurrency at least 1\n");
    goto out;
  }
  if (strncmp(o.url, "http://", 7) && strncmp(o.url, "https://", 8)) {
    fprintf(stderr, "seslog simulate: --url must start with http:// or https://\n");
    goto out;
  }
  char dir[4096];
  if (o.sns_cert_dir)
    snprintf(dir, sizeof dir, "%s", o.sns_cert_dir);
  else
    config_default_cert_dir(o.db, dir, sizeof dir);
  if (dev_identity(dir, &s->key_pem)) goto out;
  buf u;
  buf_init(&u, 4096);
  buf_appends(&u, o.url);
  while (u.len && u.data[u.len - 1] == '/') u.data[--u.len] = 0;
  buf_appends(&u, "/sns");
  s->sns_url = buf_take(&u);
  s->o = &o;
  srandom((unsigned)util_now_ms());
  uv_loop_init(&s->loop);
  struct outbound_opts oo = {0};
  if (outbound_new(&s->loop, &oo, &s->ob)) goto out;
  uv_timer_init(&s->loop, &s->timer);
  s->timer.data = s;
  uv_signal_init(&s->loop, &s->sigint);
  s->sigint.data = s;
  uv_signal_start(&s->sigint, on_sigint, SIGINT);
  s->start_ms = util_now_ms();
  s->end_ms = o.duration ? s->start_ms + o.duration : 0;
  fprintf(stderr, "seslog simulate: posting %.0f mails/s to %s%s\n", o.rate, s->sns_url,
          o.duration ? "" : " until Ctrl-C");
  uv_timer_start(&s->timer, on_tick, 0, 20);
  uv_run(&s->loop, UV_RUN_DEFAULT);
  printf(
      "simulated %ld mails: %ld notifications posted (Send %ld, Delivery %ld, Bounce %ld, "
      "Complaint %ld), %ld accepted, %ld failed\n",
      s->mails, s->sent, s->by_type[0], s->by_type[1], s->by_type[2], s->by_type[3], s->ok,
      s->failed);
  if (s->failed) fprintf(stderr, "seslog simulate: last error: %s\n", s->last_error);
  status = s->failed ? 1 : 0;
  outbound_close(s->ob, on_closed, NULL);
  uv_close((uv_handle_t *)&s->timer, NULL);
  uv_close((uv_handle_t *)&s->sigint, NULL);
  uv_run(&s->loop, UV_RUN_DEFAULT);
  uv_loop_close(&s->loop);
out:
  if (s) {
    outbound_free(s->ob);
    free(s->key_pem);
    free(s->sns_url);
    free(s);
  }
  config_free(sim_table, &o);
  return status;
}
