/* cmd_simulate.c - `seslog simulate`: realistic SES traffic for a running
 * server, posted as properly signed SNS notifications.
 *
 * Outcomes follow SES's mailbox simulator (success, bounce, ooto,
 * complaint, suppressionlist at simulator.amazonses.com). The messages are
 * signed with a development key whose certificate simulate writes into the
 * server's certificate folder under a SigningCertURL name, so the server
 * verifies them exactly as it verifies AWS's, without fetching. That
 * certificate is for development: remove it from a production cert dir.
 *
 * --history DURATION first fills the past: mails spread over working hours
 * and quieter weekends, with a bad bounce day and a bad complaint day, each
 * event stamped with its own past time and posted through the same /sns
 * path. A second development certificate, valid from ten years back, signs
 * them, since SNS timestamps must lie inside the certificate's validity. */
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
#include <unistd.h>
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
/* The history certificate: valid from DEV_HISTORY_DAYS back, so that past
 * timestamps verify; a name of its own, because a running server keeps the
 * first certificate it read under a name in memory. */
#define DEV_HISTORY_HEX "5e5109dede7e10000000000000005157"
#define DEV_HISTORY_CERT_NAME "SimpleNotificationService-" DEV_HISTORY_HEX ".pem"
#define DEV_HISTORY_KEY_NAME "seslog-simulate-history.key"
#define DEV_HISTORY_DAYS 3650L
/* The longest --history; the history certificate covers it with margin. */
#define MAX_HISTORY_MS (366LL * 86400000)

struct sim_opts {
  char *db;
  char *url;
  double rate;
  int64_t duration;
  double bounce;
  double complaint;
  int64_t history;
  long per_day;
  char *topic_arn;
  char *sns_cert_dir;
  long concurrency;
  char *log_level;
};

#define O(f) offsetof(struct sim_opts, f)
static const struct opt sim_table[] = {
    {"url", OPT_STR, O(url), "http://127.0.0.1:8490", "URL", "the server (its /sns is posted to)"},
    {"rate", OPT_DOUBLE, O(rate), "10", "N", "mails sent per second (each gives 2-3 events)"},
    {"duration", OPT_DURATION, O(duration), NULL, "DURATION",
     "how long live traffic runs; 0 runs until Ctrl-C [30s; with --history: none]"},
    {"bounce", OPT_DOUBLE, O(bounce), NULL, "PCT",
     "percent of mails that hard-bounce [3; on ordinary --history days: 1]"},
    {"complaint", OPT_DOUBLE, O(complaint), NULL, "PCT",
     "percent of mails that draw a complaint [0.2; on ordinary --history days: 0.01]"},
    {"history", OPT_DURATION, O(history), NULL, "DURATION",
     "first fill this much of the past (e.g. 30d, at most 366d) with daily and weekly rhythms "
     "and a bad day or two, then end unless --duration is given"},
    {"per-day", OPT_INT, O(per_day), "1000", "N",
     "mails on an ordinary weekday of --history (weekends and nights are quieter)"},
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
    "With --history, it first writes that much of the past (working hours busier than nights,\n"
    "weekdays than weekends, one day of heavy bounces and one of complaints), then ends unless\n"
    "--duration asks for live traffic after it.\n"
    "Example: make run, then in another terminal: build/seslog simulate --rate 20 --duration 1m\n"
    "         build/seslog simulate --history 30d   (a month of history in seconds)";

typedef struct sim {
  uv_loop_t loop;
  uv_timer_t timer;
  uv_signal_t sigint;
  outbound *ob;
  struct sim_opts *o;
  char *key_pem;      /* the live certificate's key */
  char *hist_key_pem; /* the history certificate's key, with --history */
  EVP_PKEY *key;      /* key_pem read once: reading costs more than signing */
  EVP_PKEY *hist_key; /* hist_key_pem read once */
  char *sns_url;
  int64_t start_ms, end_ms;
  double due;     /* live mails due so far */
  long live_from; /* mails made before live traffic began (the history's) */
  long mails, sent, ok, failed, in_flight;
  long by_type[4]; /* Send, Delivery, Bounce, Complaint */
  long status[6];  /* 2xx 3xx 4xx 5xx other errors */
  int stopping;
  char last_error[200];
  struct history *h; /* --history in progress, or NULL */
} sim;

/* A development key and certificate, files key_name and cert_name in dir,
 * valid from days_back days ago: made once, reused after. On success
 * *key_pem is the key (malloc'ed); on failure one line is printed. */
static int dev_identity(const char *dir, const char *key_name, const char *cert_name,
                        long days_back, char **key_pem) {
  char key_path[4200], cert_path[4200];
  snprintf(key_path, sizeof key_path, "%s/%s", dir, key_name);
  snprintf(cert_path, sizeof cert_path, "%s/%s", dir, cert_name);
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
  X509_gmtime_adj(X509_getm_notBefore(x), -86400L * days_back);
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

/* Reads a PEM private key once; on failure prints one line naming dir. */
static int read_key(const char *pem, const char *dir, EVP_PKEY **out) {
  BIO *b = BIO_new_mem_buf(pem, -1);
  EVP_PKEY *k = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
  BIO_free(b);
  if (!k) {
    fprintf(stderr, "seslog simulate: the development key in %s cannot be read; delete it\n", dir);
    return SL_EINVAL;
  }
  *out = k;
  return 0;
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

/* When and how one mail's events are stamped and signed. */
struct mail_time {
  int64_t mail_ms;  /* mail.timestamp */
  int64_t at_ms[4]; /* each event's time, by enum ev_type */
  EVP_PKEY *key;    /* the signing key */
  char *cert_url;   /* the SigningCertURL (a literal) */
};

enum ev_type { EV_SEND, EV_DELIVERY, EV_BOUNCE, EV_COMPLAINT };

/* Posts one SES event (eventType JSON) wrapped in a signed envelope, stamped
 * with the times of mt. */
static void post_event(sim *s, const struct mail_time *mt, enum ev_type ev, const char *mail_id,
                       const char *recipient, const char *detail) {
  static const char *const types[] = {"Send", "Delivery", "Bounce", "Complaint"};
  const char *type = types[ev];
  char ts[25], now_iso[25], sns_id[37];
  util_format_iso8601(mt->at_ms[ev], now_iso);
  util_format_iso8601(mt->mail_ms, ts);
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
                 .signing_cert_url = mt->cert_url,
                 .unsubscribe_url = "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe"};
  char *body = NULL;
  if (sns_sign_key(&msg, mt->key) == 0) body = sns_to_json(&msg);
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
    s->by_type[ev]++;
  } else {
    s->failed++;
  }
  free(body);
}

enum outcome { OUT_DELIVERED, OUT_BOUNCE, OUT_SUPPRESSED, OUT_COMPLAINT };

/* A random outcome for bounce and complaint percentages. */
static enum outcome draw_outcome(double bounce, double complaint) {
  double roll = (double)(random() % 1000000) / 10000.0; /* percent */
  if (roll < bounce) return random() % 5 == 0 ? OUT_SUPPRESSED : OUT_BOUNCE;
  if (roll < bounce + complaint) return OUT_COMPLAINT;
  return OUT_DELIVERED;
}

/* One simulated mail: its Send event and its outcome's events. */
static void one_mail(sim *s, const struct mail_time *mt, enum outcome out) {
  static const char *const outcomes[] = {"success", "ooto"};
  char mail_id[80], id[37], rcpt[128];
  uuid(id);
  snprintf(mail_id, sizeof mail_id, "0100%s-000000", id);
  long n = s->mails++;
  if (out == OUT_BOUNCE || out == OUT_SUPPRESSED) {
    int suppressed = out == OUT_SUPPRESSED;
    snprintf(rcpt, sizeof rcpt, "%s+%ld@simulator.amazonses.com",
             suppressed ? "suppressionlist" : "bounce", n);
    post_event(s, mt, EV_SEND, mail_id, rcpt, NULL);
    post_event(s, mt, EV_BOUNCE, mail_id, rcpt,
               suppressed ? "OnAccountSuppressionList" : "General");
  } else if (out == OUT_COMPLAINT) {
    snprintf(rcpt, sizeof rcpt, "complaint+%ld@simulator.amazonses.com", n);
    post_event(s, mt, EV_SEND, mail_id, rcpt, NULL);
    post_event(s, mt, EV_DELIVERY, mail_id, rcpt, NULL);
    post_event(s, mt, EV_COMPLAINT, mail_id, rcpt, NULL);
  } else {
    snprintf(rcpt, sizeof rcpt, "%s+%ld@simulator.amazonses.com", outcomes[random() % 2], n);
    post_event(s, mt, EV_SEND, mail_id, rcpt, NULL);
    post_event(s, mt, EV_DELIVERY, mail_id, rcpt, NULL);
  }
}

/* One live mail: every event stamped now, the mail 1.5 s before. */
static void live_mail(sim *s) {
  int64_t now = util_now_ms();
  struct mail_time mt = {.mail_ms = now - 1500,
                         .at_ms = {now, now, now, now},
                         .key = s->key,
                         .cert_url = "https://sns.us-east-1.amazonaws.com/" DEV_CERT_NAME};
  one_mail(s, &mt, draw_outcome(s->o->bounce, s->o->complaint));
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
  while ((double)s->mails - (double)s->live_from < s->due && s->in_flight < s->o->concurrency * 3)
    live_mail(s);
}

/* --history: the past written hour by hour, as fast as the server takes it. */
struct history {
  int64_t start_ms, end_ms; /* the range filled: [now - --history, now) */
  int64_t first_hour_ms;    /* start_ms rounded down to the hour */
  long n_hours;
  long *per_hour;           /* mails of each hour, drawn up front */
  long total;               /* their sum */
  long hour;                /* the hour being written */
  long left;                /* its mails still to make */
  long made;                /* mails made so far */
  int64_t day;              /* the UTC day (days since the epoch) of the last mail */
  long day_mails;           /* mails made on that day, for the bad days' patterns */
  int64_t bad_bounce;       /* UTC day on which every 10th mail bounces, or -1 */
  int64_t bad_complaint;    /* UTC day on which every 100th mail draws a complaint, or -1 */
  double bounce, complaint; /* percentages of the ordinary days */
  EVP_PKEY *key;            /* the history certificate's key (owned by sim) */
  uv_timer_t pump;
  int64_t began_ms, progress_ms; /* wall clock: start, last progress line */
  int tty;                       /* stderr is a terminal: a bar, else a line every few s */
  int made_all;                  /* every mail made (some may still be in flight) */
};

#define HOUR_MS 3600000LL
#define DAY_MS 86400000LL

/* Relative mail volume by UTC hour: quiet nights, busy working hours. */
static const double hour_weight[24] = {0.15, 0.12, 0.1, 0.1, 0.12, 0.2, 0.4, 0.8,
                                       1.5,  1.7,  1.7, 1.6, 1.2,  1.5, 1.6, 1.5,
                                       1.3,  1.0,  0.7, 0.6, 0.5,  0.4, 0.3, 0.2};

/* Saturday or Sunday, for a UTC day number (day 0 was a Thursday). */
static int is_weekend(int64_t day) {
  int wd = (int)((day + 4) % 7); /* 0 Sunday */
  return wd == 0 || wd == 6;
}

static double uniform01(void) {
  return (double)random() / ((double)RAND_MAX + 1.0);
}

/* The first weekday at or after day within [first, last], else the last one
 * before it, else day itself. */
static int64_t weekday_near(int64_t day, int64_t first, int64_t last) {
  for (int64_t d = day; d <= last; d++)
    if (!is_weekend(d)) return d;
  for (int64_t d = day - 1; d >= first; d--)
    if (!is_weekend(d)) return d;
  return day;
}

/* Draws the mails of every hour of [start_ms, end_ms): per_day on an ordinary
 * weekday spread by hour_weight, a third of that on weekends, each day
 * 15 % up or down. Picks the bad days (a weekday about 40 % and one about
 * 70 % into the range). Returns 0 or SL_ENOMEM. */
static int history_plan(struct history *h, long per_day) {
  double wsum = 0;
  for (int i = 0; i < 24; i++) wsum += hour_weight[i];
  h->first_hour_ms = h->start_ms - h->start_ms % HOUR_MS;
  h->n_hours = (long)((h->end_ms - h->first_hour_ms + HOUR_MS - 1) / HOUR_MS);
  h->per_hour = calloc((size_t)h->n_hours, sizeof *h->per_hour);
  if (!h->per_hour) return SL_ENOMEM;
  int64_t day = -1;
  double day_factor = 1;
  for (long i = 0; i < h->n_hours; i++) {
    int64_t from = h->first_hour_ms + i * HOUR_MS, to = from + HOUR_MS;
    if (from / DAY_MS != day) {
      day = from / DAY_MS;
      day_factor = (is_weekend(day) ? 0.35 : 1.0) * (0.85 + 0.3 * uniform01());
    }
    if (from < h->start_ms) from = h->start_ms;
    if (to > h->end_ms) to = h->end_ms;
    double share = (double)(to - from) / (double)HOUR_MS;
    int hour_of_day = (int)((h->first_hour_ms / HOUR_MS + i) % 24);
    double expect = (double)per_day * hour_weight[hour_of_day] / wsum * day_factor * share;
    h->per_hour[i] = (long)(expect + uniform01());
    h->total += h->per_hour[i];
  }
  int64_t first = h->start_ms / DAY_MS, last = (h->end_ms - 1) / DAY_MS, n = last - first + 1;
  h->bad_bounce = weekday_near(first + n * 2 / 5, first, last);
  h->bad_complaint = n >= 2 ? weekday_near(first + n * 7 / 10, first, last) : -1;
  if (h->bad_complaint == h->bad_bounce) h->bad_complaint = -1;
  h->day = -1;
  h->hour = -1;
  return 0;
}

/* A bad day's outcome by the mail's place in its day, else a random one. */
static enum outcome history_outcome(struct history *h, int64_t day) {
  if (day != h->day) {
    h->day = day;
    h->day_mails = 0;
  }
  long i = h->day_mails++;
  if (day == h->bad_bounce && i % 10 == 0) return OUT_BOUNCE;
  if (day == h->bad_complaint && i % 100 == 0) return OUT_COMPLAINT;
  return draw_outcome(h->bounce, h->complaint);
}

/* Makes the next mail of the history; returns 0 when every mail is made. */
static int history_next(sim *s) {
  struct history *h = s->h;
  while (h->left == 0) {
    if (++h->hour >= h->n_hours) return 0;
    h->left = h->per_hour[h->hour];
  }
  h->left--;
  h->made++;
  int64_t from = h->first_hour_ms + h->hour * HOUR_MS, to = from + HOUR_MS;
  if (from < h->start_ms) from = h->start_ms;
  if (to > h->end_ms) to = h->end_ms;
  int64_t t = from + (int64_t)(uniform01() * (double)(to - from));
  struct mail_time mt = {.mail_ms = t,
                         .at_ms = {t, t + 1000 + random() % 3000, t + 500 + random() % 2500,
                                   t + 300000 + random() % (3 * HOUR_MS)},
                         .key = h->key,
                         .cert_url = "https://sns.us-east-1.amazonaws.com/" DEV_HISTORY_CERT_NAME};
  for (int i = 1; i < 4; i++)
    if (mt.at_ms[i] > h->end_ms) mt.at_ms[i] = h->end_ms;
  one_mail(s, &mt, history_outcome(h, t / DAY_MS));
  return 1;
}

/* The progress: a bar on a terminal (redrawn at most 5 times a second),
 * else one line every 2 s; final ends the bar's line. */
static void history_progress(sim *s, int final) {
  struct history *h = s->h;
  int64_t now = util_now_ms();
  if (!final && now - h->progress_ms < (h->tty ? 200 : 2000)) return;
  h->progress_ms = now;
  double secs = (double)(now - h->began_ms) / 1000.0;
  double frac = h->total ? (double)h->made / (double)h->total : 1;
  double rate = secs > 0 ? (double)s->sent / secs : 0;
  double mail_rate = secs > 0 ? (double)h->made / secs : 0;
  long eta = mail_rate > 0 ? (long)((double)(h->total - h->made) / mail_rate + 0.5) : 0;
  if (h->tty) {
    char bar[31];
    int full = (int)(frac * 30);
    for (int i = 0; i < 30; i++) bar[i] = i < full ? '#' : '-';
    bar[30] = 0;
    fprintf(stderr, "\rhistory [%s] %3d%%  %ld events  %.0f/s  ETA %lds   %s", bar,
            (int)(frac * 100), s->sent, rate, final ? 0 : eta, final ? "\n" : "");
  } else {
    fprintf(stderr,
            "seslog simulate: history %d%%: %ld of %ld mails, %ld events posted, %.0f events/s, "
            "ETA %lds\n",
            (int)(frac * 100), h->made, h->total, s->sent, rate, final ? 0 : eta);
  }
}

static void on_tick(uv_timer_t *t);

/* Every mail of the history answered: live traffic when --duration asked
 * for it, else the end. */
static void history_finished(sim *s) {
  uv_timer_stop(&s->h->pump);
  history_progress(s, 1);
  if (s->o->duration < 0 || s->stopping) {
    s->stopping = 1;
    uv_stop(&s->loop);
    return;
  }
  s->live_from = s->mails;
  s->start_ms = util_now_ms();
  s->end_ms = s->o->duration ? s->start_ms + s->o->duration : 0;
  fprintf(stderr, "seslog simulate: posting %.0f mails/s to %s%s\n", s->o->rate, s->sns_url,
          s->o->duration ? "" : " until Ctrl-C");
  uv_timer_start(&s->timer, on_tick, 0, 20);
}

/* Keeps up to 8 x --concurrency requests in flight while mails remain. */
static void on_pump(uv_timer_t *t) {
  sim *s = t->data;
  struct history *h = s->h;
  while (!h->made_all && !s->stopping && s->in_flight < s->o->concurrency * 8)
    if (!history_next(s)) h->made_all = 1;
  history_progress(s, 0);
  if ((h->made_all || s->stopping) && !s->in_flight) history_finished(s);
}

/* Plans the history of the last span_ms and starts posting it. Returns 0,
 * or SL_ENOMEM with one line printed. */
static int history_start(sim *s, int64_t span_ms, double bounce, double complaint) {
  struct history *h = s->h;
  h->end_ms = util_now_ms();
  h->start_ms = h->end_ms - span_ms;
  h->bounce = bounce;
  h->complaint = complaint;
  h->key = s->hist_key;
  h->tty = isatty(2);
  if (history_plan(h, s->o->per_day)) {
    fprintf(stderr, "seslog simulate: out of memory\n");
    return SL_ENOMEM;
  }
  char from[25], to[25];
  util_format_iso8601(h->start_ms, from);
  util_format_iso8601(h->end_ms, to);
  fprintf(stderr, "seslog simulate: writing the history from %s to %s (%ld mails) to %s\n", from,
          to, h->total, s->sns_url);
  h->began_ms = h->progress_ms = util_now_ms();
  uv_timer_init(&s->loop, &h->pump);
  h->pump.data = s;
  uv_timer_start(&h->pump, on_pump, 0, 1);
  return 0;
}

/* One line on stdout: the range written and its bad days. */
static void history_summary(sim *s) {
  struct history *h = s->h;
  char from[25], to[25], b[25], c[25];
  util_format_iso8601(h->start_ms, from);
  util_format_iso8601(h->end_ms, to);
  util_format_iso8601(h->bad_bounce * DAY_MS, b);
  util_format_iso8601(h->bad_complaint * DAY_MS, c);
  printf("history from %s to %s: %ld of %ld mails; bad days: bounces %.10s%s%.10s\n", from, to,
         h->made, h->total, b, h->bad_complaint >= 0 ? ", complaints " : "",
         h->bad_complaint >= 0 ? c : "");
}

static void on_sigint(uv_signal_t *h, int signum) {
  sim *s = h->data;
  (void)signum;
  s->stopping = 1;
  uv_timer_stop(&s->timer);
  if (s->h) {
    uv_timer_stop(&s->h->pump);
    if (s->h->tty && !s->h->made_all) fputc('\n', stderr); /* end the bar's line */
  }
  if (!s->in_flight) uv_stop(&s->loop);
}

static void on_closed(void *ud) {
  (void)ud;
}

/* Checks the options left after parsing and gives the unset ones the
 * live mode's defaults; *hist_bounce and *hist_complaint get the history
 * mode's rates. Returns 0, or -1 after one line on stderr. */
static int check_options(struct sim_opts *o, int argc, char **argv, int argi, double *hist_bounce,
                         double *hist_complaint) {
  if (argi < argc) {
    fprintf(stderr, "seslog simulate: unexpected argument \"%s\"\n", argv[argi]);
    return -1;
  }
  if (o->history < 0 || o->history > MAX_HISTORY_MS || o->per_day < 1 || o->per_day > 100000) {
    fprintf(stderr, "seslog simulate: --history must be at most 366d, --per-day in [1, 100000]\n");
    return -1;
  }
  *hist_bounce = o->bounce >= 0 ? o->bounce : 1;
  *hist_complaint = o->complaint >= 0 ? o->complaint : 0.01;
  if (o->bounce < 0) o->bounce = 3;
  if (o->complaint < 0) o->complaint = 0.2;
  if (o->duration < 0 && !o->history) o->duration = 30000;
  if (log_set_level(o->log_level) || o->rate <= 0 || o->rate > 5000 ||
      o->bounce + o->complaint > 100 || o->concurrency < 1) {
    fprintf(stderr,
            "seslog simulate: --rate must be in (0, 5000], --bounce + --complaint at most "
            "100, --concurrency at least 1\n");
    return -1;
  }
  if (strncmp(o->url, "http://", 7) && strncmp(o->url, "https://", 8)) {
    fprintf(stderr, "seslog simulate: --url must start with http:// or https://\n");
    return -1;
  }
  return 0;
}

/* Loads (making them when missing) the signing identities, the history
 * mode's too when asked, and sets the /sns URL. Returns 0 or -1. */
static int open_identities(sim *s, const struct sim_opts *o) {
  char dir[4096];
  if (o->sns_cert_dir)
    snprintf(dir, sizeof dir, "%s", o->sns_cert_dir);
  else
    config_default_cert_dir(o->db, dir, sizeof dir);
  if (dev_identity(dir, DEV_KEY_NAME, DEV_CERT_NAME, 1, &s->key_pem) ||
      read_key(s->key_pem, dir, &s->key))
    return -1;
  if (o->history) {
    s->h = calloc(1, sizeof *s->h);
    if (!s->h ||
        dev_identity(dir, DEV_HISTORY_KEY_NAME, DEV_HISTORY_CERT_NAME, DEV_HISTORY_DAYS,
                     &s->hist_key_pem) ||
        read_key(s->hist_key_pem, dir, &s->hist_key))
      return -1;
  }
  buf u;
  buf_init(&u, 4096);
  buf_appends(&u, o->url);
  while (u.len && u.data[u.len - 1] == '/') u.data[--u.len] = 0;
  buf_appends(&u, "/sns");
  s->sns_url = buf_take(&u);
  return 0;
}

/* Posts until the mode is done (or Ctrl-C), prints the summary and
 * closes the loop. Returns the exit status: 0, 1 (some posts failed) or
 * 2 (could not start). */
static int sim_run(sim *s, struct sim_opts *o, double hist_bounce, double hist_complaint) {
  int status = 2;
  s->o = o;
  srandom((unsigned)util_now_ms());
  uv_loop_init(&s->loop);
  struct outbound_opts oo = {0};
  if (outbound_new(&s->loop, &oo, &s->ob)) return 2;
  uv_timer_init(&s->loop, &s->timer);
  s->timer.data = s;
  uv_signal_init(&s->loop, &s->sigint);
  s->sigint.data = s;
  uv_signal_start(&s->sigint, on_sigint, SIGINT);
  s->start_ms = util_now_ms();
  if (s->h) {
    if (history_start(s, o->history, hist_bounce, hist_complaint)) goto close;
  } else {
    s->end_ms = o->duration ? s->start_ms + o->duration : 0;
    fprintf(stderr, "seslog simulate: posting %.0f mails/s to %s%s\n", o->rate, s->sns_url,
            o->duration ? "" : " until Ctrl-C");
    uv_timer_start(&s->timer, on_tick, 0, 20);
  }
  uv_run(&s->loop, UV_RUN_DEFAULT);
  if (s->h) history_summary(s);
  printf(
      "simulated %ld mails: %ld notifications posted (Send %ld, Delivery %ld, Bounce %ld, "
      "Complaint %ld), %ld accepted, %ld failed\n",
      s->mails, s->sent, s->by_type[0], s->by_type[1], s->by_type[2], s->by_type[3], s->ok,
      s->failed);
  if (s->failed) fprintf(stderr, "seslog simulate: last error: %s\n", s->last_error);
  status = s->failed ? 1 : 0;
close:
  outbound_close(s->ob, on_closed, NULL);
  uv_close((uv_handle_t *)&s->timer, NULL);
  uv_close((uv_handle_t *)&s->sigint, NULL);
  if (s->h && s->h->pump.loop) uv_close((uv_handle_t *)&s->h->pump, NULL);
  uv_run(&s->loop, UV_RUN_DEFAULT);
  uv_loop_close(&s->loop);
  return status;
}

static void sim_free(sim *s) {
  if (!s) return;
  outbound_free(s->ob);
  if (s->h) free(s->h->per_hour);
  free(s->h);
  free(s->hist_key_pem);
  EVP_PKEY_free(s->key);
  EVP_PKEY_free(s->hist_key);
  free(s->key_pem);
  free(s->sns_url);
  free(s);
}

int cmd_simulate(int argc, char **argv, int argi) {
  /* -1: not given, so that each mode takes its own default */
  struct sim_opts o = {.duration = -1, .bounce = -1, .complaint = -1};
  int rc = config_parse("simulate", sim_usage, sim_table, &o, argc, argv, &argi);
  if (rc) {
    config_free(sim_table, &o);
    return rc == 1 ? 0 : 2;
  }
  int status = 2;
  double hist_bounce, hist_complaint;
  sim *s = calloc(1, sizeof *s);
  if (s && !check_options(&o, argc, argv, argi, &hist_bounce, &hist_complaint) &&
      !open_identities(s, &o))
    status = sim_run(s, &o, hist_bounce, hist_complaint);
  sim_free(s);
  config_free(sim_table, &o);
  return status;
}
