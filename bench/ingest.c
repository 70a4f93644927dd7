/* ingest.c - the ingest benchmark: a load generator for POST /sns and the
 * bare-SQLite baseline it is compared with.
 *
 *   ingest prepare  --cache-dir DIR --n N --cert-dir DIR
 *   ingest load     --cache-dir DIR --n N --port PORT [--conns 64] [--cert-dir DIR]
 *                   [--rate R --duration S] [--timeout S]
 *   ingest baseline --cache-dir DIR --n N --db PATH [--per-txn 256]
 *   ingest jsonl    --cache-dir DIR --n N --out FILE
 *
 * Every mode first loads DIR/bodies-N.bin, or creates it: an RSA-2048 key,
 * a self-signed certificate valid now, and N distinct SNS Notification
 * envelopes carrying realistic SES JSON (Bounce, Complaint, Delivery, in
 * both the notificationType and the eventType shape), signed with
 * SignatureVersion 2 (90 %) or 1, each stored as the whole HTTP request SNS
 * would send. Signing costs about 1 ms an event, so it runs on two threads
 * and only once per N.
 *
 * `prepare` also writes the certificate into the server's --sns-cert-dir as
 * SimpleNotificationService-<hex>.pem, the name its SigningCertURL ends
 * with, so the server never fetches it.
 *
 * `load` posts the events over keep-alive connections to
 * http://127.0.0.1:PORT/sns, one request in flight per connection, with
 * epoll: as fast as the server answers (saturation), or open-loop at --rate
 * events/s for --duration seconds (each event is due at t0 + i/rate; its
 * latency counts from that moment, so time spent waiting for a free
 * connection is included; the paced run also prints the p99 of each second
 * of its schedule, and how late events were sent: this process's own share).
 * Each answer must be 200 with "status":"stored".
 *
 * `baseline` inserts the same SES messages into a fresh database: one
 * table with the contract's columns, its three indexes and the notification
 * text, --per-txn rows a transaction, WAL, synchronous=FULL: the storage
 * ceiling.
 *
 * Every mode ends with one line "RESULT key=value ..." for bench/run.sh. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "sns.h"
#include "util.h"

#define CACHE_MAGIC "SESLOGBENCH1"
#define CACHE_VERSION 4u
#define SPAN_MS (6LL * 3600 * 1000) /* events spread over the last 6 hours */

/* ---------------------------------------------------------------- clock */

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "ingest: ");
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(1);
}

/* ------------------------------------------------------------ the cache */

typedef struct cache {
  char *file;      /* the whole cache file, read at once */
  size_t n;        /* events */
  int64_t gen_ms;  /* when the events were made */
  const char *key; /* PEM private key, NUL-terminated inside file */
  size_t key_len;
  const char *cert; /* PEM certificate */
  size_t cert_len;
  char hex[33];     /* the certificate's file-name id */
  const char **req; /* n whole HTTP requests */
  uint32_t *req_len;
} cache;

/* ----------------------------------------------------------- generation */

typedef struct rng {
  uint64_t s;
} rng;

static uint64_t rnext(rng *r) {
  /* splitmix64: good enough, and seedable per event */
  uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static uint32_t rbelow(rng *r, uint32_t n) {
  return (uint32_t)(rnext(r) % n);
}

static void rhex(rng *r, char *out, int n) {
  static const char hx[] = "0123456789abcdef";
  for (int i = 0; i < n; i++) out[i] = hx[rnext(r) & 15];
  out[n] = 0;
}

static void ruuid(rng *r, char out[37]) {
  char h[33];
  rhex(r, h, 32);
  h[12] = '4';
  h[16] = "89ab"[rnext(r) & 3];
  snprintf(out, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", h, h + 8, h + 12, h + 16, h + 20);
}

/* An SES id: "010001<10 hex>-<uuid>-000000". */
static void ses_id(rng *r, int64_t ms, char out[64]) {
  char u[37];
  ruuid(r, u);
  snprintf(out, 64, "010001%010llx-%s-000000", (unsigned long long)ms & 0xffffffffffull, u);
}

static void rfc2822(int64_t ms, char out[40]) {
  time_t t = (time_t)(ms / 1000);
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(out, 40, "%a, %d %b %Y %H:%M:%S +0000", &tm);
}

static const char *const first_names[] = {"jane",   "john",  "maria", "wei",    "olga",
                                          "ahmed",  "lucia", "kenji", "fatima", "noah",
                                          "sophie", "raj",   "emma",  "pablo",  "ines"};
static const char *const last_names[] = {"doe",   "smith", "garcia", "chen",  "ivanova", "khan",
                                         "rossi", "sato",  "haddad", "brown", "martin",  "patel"};
static const char *const rcpt_domains[] = {
    "example.com",   "example.org",      "example.net",     "mail.example.de",
    "example.co.uk", "inbox.example.fr", "corp.example.io", "students.example.edu"};
/* A recipient's domain as mail traffic has them: a few large providers
 * take more than half, the rest is a long tail (log-uniform over 5,000
 * domains), so indexes keyed by domain see both hot and scattered keys. */
static const char *rcpt_domain(rng *r, char out[48]) {
  static const int weights[] = {20, 12, 8, 5, 5, 3, 2, 2}; /* percent, sums to 57 */
  uint32_t u = rbelow(r, 100), acc = 0;
  for (size_t k = 0; k < sizeof weights / sizeof *weights; k++) {
    acc += (uint32_t)weights[k];
    if (u < acc) return rcpt_domains[k];
  }
  double x = (double)rbelow(r, 1000000) / 1e6;
  snprintf(out, 48, "mx%u.example.net", (unsigned)exp(x * log(5000.0)));
  return out;
}

static const char *const subjects[] = {
    "Your receipt from Example Store #%u",
    "Reset your password",
    "Weekly digest: 12 new articles picked for you",
    "Your order %u has shipped",
    "Invitation: quarterly planning review (Thu 10:00 - 11:30)",
    "Action required: confirm your email address",
    "Spring sale - up to 40%% off everything, this weekend only",
    "Invoice INV-%u is available",
};
static const struct {
  const char *name, *addr, *domain;
} senders[] = {
    {"Example Store", "orders@shop.example.com", "shop.example.com"},
    {"Example Billing", "billing@example.com", "example.com"},
    {"Example News", "news@news.example.org", "news.example.org"},
    {NULL, "no-reply@accounts.example.com", "accounts.example.com"},
};

struct bounce_kind {
  const char *type, *sub, *status, *action;
  int weight;
};
static const struct bounce_kind bounce_kinds[] = {
    {"Permanent", "General", "5.1.1", "failed", 45},
    {"Permanent", "NoEmail", "5.1.1", "failed", 15},
    {"Permanent", "Suppressed", "5.1.1", "failed", 10},
    {"Permanent", "OnAccountSuppressionList", "5.1.1", "failed", 5},
    {"Transient", "MailboxFull", "5.2.2", "failed", 10},
    {"Transient", "General", "4.4.7", "delayed", 10},
    {"Permanent", "General", "5.7.1", "failed", 5},
};

static char *diagnostic(rng *r, const struct bounce_kind *k, const char *addr) {
  char b[512];
  if (strcmp(k->sub, "Suppressed") == 0 || strcmp(k->sub, "OnAccountSuppressionList") == 0) {
    snprintf(b, sizeof b,
             "Amazon SES did not send the message to this address because it is on the "
             "suppression list for your account.");
  } else if (strcmp(k->status, "5.2.2") == 0) {
    snprintf(b, sizeof b, "smtp; 552 5.2.2 <%s>: Mailbox full - over quota", addr);
  } else if (strcmp(k->status, "4.4.7") == 0) {
    snprintf(b, sizeof b,
             "smtp; 451 4.4.7 Message expired: unable to deliver in 840 minutes.<421 4.4.0 "
             "Unable to lookup DNS for %s>",
             strchr(addr, '@') + 1);
  } else if (strcmp(k->status, "5.7.1") == 0) {
    snprintf(b, sizeof b,
             "smtp; 554 5.7.1 Service unavailable; Client host [54.240.8.%u] blocked using "
             "zen.spamhaus.org; https://www.spamhaus.org/query/ip/54.240.8.%u",
             rbelow(r, 250) + 1, rbelow(r, 250) + 1);
  } else if (rbelow(r, 2)) {
    char h[20];
    rhex(r, h, 16);
    snprintf(b, sizeof b,
             "smtp; 550-5.1.1 The email account that you tried to reach does not exist. Please "
             "try double-checking the recipient's email address for typos or unnecessary spaces. "
             "For more information, go to https://support.google.com/mail/?p=NoSuchUser "
             "%s.%u - gsmtp",
             h, rbelow(r, 1000));
  } else {
    snprintf(b, sizeof b,
             "smtp; 550 5.1.1 <%s>: Recipient address rejected: User unknown in virtual mailbox "
             "table",
             addr);
  }
  return strdup(b);
}

static void add_header(cJSON *headers, const char *name, const char *value) {
  cJSON *h = cJSON_CreateObject();
  cJSON_AddStringToObject(h, "name", name);
  cJSON_AddStringToObject(h, "value", value);
  cJSON_AddItemToArray(headers, h);
}

static cJSON *str_array(const char *const *v, int n) {
  cJSON *a = cJSON_CreateArray();
  for (int i = 0; i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateString(v[i]));
  return a;
}

/* One padding header of the original message, the k-th of the pool. */
static void pad_header(rng *r, cJSON *headers, int k, const char *domain, const char *rcpt,
                       const char *date) {
  char v[600], h1[64], h2[64];
  switch (k % 9) {
    case 0:
      rhex(r, h1, 48);
      rhex(r, h2, 16);
      snprintf(v, sizeof v, "<https://unsub.%s/u/%s>, <mailto:unsubscribe+%s@%s>", domain, h1, h2,
               domain);
      add_header(headers, "List-Unsubscribe", v);
      break;
    case 1: add_header(headers, "List-Unsubscribe-Post", "List-Unsubscribe=One-Click"); break;
    case 2:
      rhex(r, h1, 12);
      snprintf(v, sizeof v,
               "from app-%u.internal.%s (ip-10-0-%u-%u.ec2.internal [10.0.%u.%u]) by "
               "email-smtp.amazonaws.com with SMTP (SimpleEmailService-d-%s) id %s for %s; %s",
               rbelow(r, 20), domain, rbelow(r, 8), rbelow(r, 250), rbelow(r, 8), rbelow(r, 250),
               h1, h1, rcpt, date);
      add_header(headers, "Received", v);
      break;
    case 3: add_header(headers, "X-Mailer", "Example Mailer 4.2.1 (libmail/2.19)"); break;
    case 4:
      snprintf(v, sizeof v, "campaign-%u:%s:%s:ses", rbelow(r, 9000) + 1000,
               rbelow(r, 2) ? "newsletter" : "transactional", domain);
      add_header(headers, "Feedback-ID", v);
      break;
    case 5: {
      char bh[45], b[345];
      rhex(r, bh, 43);
      rhex(r, b, 172);
      snprintf(v, sizeof v,
               "v=1; a=rsa-sha256; q=dns/txt; c=relaxed/simple; s=s%u; d=%s; t=%u; "
               "h=From:Reply-To:To:Subject:Date:Message-ID:MIME-Version:Content-Type; bh=%s=; "
               "b=%s",
               rbelow(r, 4), domain, 1700000000u + rbelow(r, 90000000), bh, b);
      add_header(headers, "DKIM-Signature", v);
      break;
    }
    case 6: {
      char u[37];
      ruuid(r, u);
      add_header(headers, "X-Entity-Ref-ID", u);
      break;
    }
    case 7:
      snprintf(v, sizeof v, "support@%s", domain);
      add_header(headers, "Reply-To", v);
      break;
    default:
      rhex(r, h1, 24);
      snprintf(v, sizeof v, "%s-%d", h1, k);
      add_header(headers, "X-Campaign-Trace", v);
  }
}

/* One event as SES would publish it, plus what the envelope needs. */
typedef struct gen_event {
  char *json;        /* the SES JSON, compact */
  const char *topic; /* TopicArn */
  int64_t sns_ms;    /* SNS Timestamp */
} gen_event;

static void make_event(size_t i, size_t n, int64_t gen_ms, gen_event *out) {
  rng r = {0x5e51095eedull ^ (uint64_t)i * 0x9e3779b97f4a7c15ull};
  rnext(&r);
  /* the type: 45 % Delivery, 40 % Bounce, 15 % Complaint; half the events
   * in the configuration-set (eventType, with tags) shape */
  uint32_t t = rbelow(&r, 100);
  int kind = t < 45 ? 0 : t < 85 ? 1 : 2; /* 0 Delivery, 1 Bounce, 2 Complaint */
  int event_shape = rbelow(&r, 2);
  int target = 1024 + (int)rbelow(&r, 2000);
  /* time: spread over the last hours, roughly in order of i */
  int64_t ev_ms = gen_ms - SPAN_MS + (int64_t)((double)SPAN_MS * (double)i / (double)n) -
                  (int64_t)rbelow(&r, 20000) - 1000;
  int64_t mail_ms = ev_ms - (kind == 0   ? 300 + rbelow(&r, 15000)
                             : kind == 1 ? 1000 + rbelow(&r, 60000)
                                         : 60000 + rbelow(&r, 7200000));
  out->sns_ms = ev_ms + 40 + rbelow(&r, 400);
  char ev_ts[25], mail_ts[25], date[40], arrival[25];
  util_format_iso8601(ev_ms, ev_ts);
  util_format_iso8601(mail_ms, mail_ts);
  util_format_iso8601(ev_ms - 200, arrival);
  rfc2822(mail_ms - 1000, date);

  /* recipients: 1 (70 %), 2 (20 %) or 3, unique to this event */
  int nd = 1 + (rbelow(&r, 10) >= 7) + (rbelow(&r, 10) == 9);
  char dest_buf[3][96];
  const char *dest[3];
  char to_hdr[400] = "", to_common[400] = "";
  for (int k = 0; k < nd; k++) {
    const char *fn = first_names[rbelow(&r, sizeof first_names / sizeof *first_names)];
    const char *ln = last_names[rbelow(&r, sizeof last_names / sizeof *last_names)];
    char dom_buf[48];
    const char *dom = rcpt_domain(&r, dom_buf);
    snprintf(dest_buf[k], sizeof dest_buf[k], "%s.%s%zu@%s", fn, ln, i * 3 + (size_t)k, dom);
    dest[k] = dest_buf[k];
    char one[200];
    snprintf(one, sizeof one, "%s\"%c%s %c%s\" <%s>", k ? ", " : "", fn[0] - 32, fn + 1, ln[0] - 32,
             ln + 1, dest[k]);
    strncat(to_hdr, one, sizeof to_hdr - strlen(to_hdr) - 1);
    snprintf(one, sizeof one, "%s%c%s %c%s <%s>", k ? ", " : "", fn[0] - 32, fn + 1, ln[0] - 32,
             ln + 1, dest[k]);
    strncat(to_common, one, sizeof to_common - strlen(to_common) - 1);
  }
  int si = (int)rbelow(&r, sizeof senders / sizeof *senders);
  char source[160], from_hdr[160];
  if (senders[si].name) {
    snprintf(source, sizeof source, "\"%s\" <%s>", senders[si].name, senders[si].addr);
    snprintf(from_hdr, sizeof from_hdr, "%s <%s>", senders[si].name, senders[si].addr);
  } else {
    snprintf(source, sizeof source, "%s", senders[si].addr);
    snprintf(from_hdr, sizeof from_hdr, "%s", senders[si].addr);
  }
  char subject[200];
  snprintf(subject, sizeof subject, subjects[rbelow(&r, sizeof subjects / sizeof *subjects)],
           100000 + rbelow(&r, 900000));
  char message_id[64], feedback_id[64], hdr_msgid[160];
  ses_id(&r, mail_ms, message_id);
  ses_id(&r, ev_ms, feedback_id);
  {
    char h[33];
    rhex(&r, h, 32);
    snprintf(hdr_msgid, sizeof hdr_msgid, "<%s@%s>", h, senders[si].domain);
  }

  cJSON *root = cJSON_CreateObject();
  cJSON_AddStringToObject(root, event_shape ? "eventType" : "notificationType",
                          kind == 0   ? "Delivery"
                          : kind == 1 ? "Bounce"
                                      : "Complaint");
  cJSON *detail = NULL;
  if (kind == 1) {
    int w = (int)rbelow(&r, 100), acc = 0;
    const struct bounce_kind *bk = &bounce_kinds[0];
    for (size_t k = 0; k < sizeof bounce_kinds / sizeof *bounce_kinds; k++) {
      acc += bounce_kinds[k].weight;
      if (w < acc) {
        bk = &bounce_kinds[k];
        break;
      }
    }
    detail = cJSON_AddObjectToObject(root, "bounce");
    cJSON_AddStringToObject(detail, "feedbackId", feedback_id);
    cJSON_AddStringToObject(detail, "bounceType", bk->type);
    cJSON_AddStringToObject(detail, "bounceSubType", bk->sub);
    cJSON *br = cJSON_AddArrayToObject(detail, "bouncedRecipients");
    int nb = 1 + (int)rbelow(&r, (uint32_t)nd);
    for (int k = 0; k < nb; k++) {
      cJSON *o = cJSON_CreateObject();
      cJSON_AddStringToObject(o, "emailAddress", dest[k]);
      cJSON_AddStringToObject(o, "action", bk->action);
      cJSON_AddStringToObject(o, "status", bk->status);
      char *d = diagnostic(&r, bk, dest[k]);
      cJSON_AddStringToObject(o, "diagnosticCode", d);
      free(d);
      cJSON_AddItemToArray(br, o);
    }
    cJSON_AddStringToObject(detail, "timestamp", ev_ts);
    char ip[32], mta[96];
    snprintf(ip, sizeof ip, "198.51.100.%u", rbelow(&r, 250) + 1);
    cJSON_AddStringToObject(detail, "remoteMtaIp", ip);
    snprintf(mta, sizeof mta, "dsn; e%u-%u.smtp-out.us-east-1.amazonses.com", rbelow(&r, 250) + 1,
             rbelow(&r, 250) + 1);
    cJSON_AddStringToObject(detail, "reportingMTA", mta);
  } else if (kind == 2) {
    detail = cJSON_AddObjectToObject(root, "complaint");
    cJSON_AddStringToObject(detail, "feedbackId", feedback_id);
    if (!event_shape) cJSON_AddNullToObject(detail, "complaintSubType");
    cJSON *cr = cJSON_AddArrayToObject(detail, "complainedRecipients");
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "emailAddress", dest[0]);
    cJSON_AddItemToArray(cr, o);
    cJSON_AddStringToObject(detail, "timestamp", ev_ts);
    uint32_t f = rbelow(&r, 10);
    if (f < 8) {
      static const char *const ua[] = {"Yahoo!-Mail-Feedback/2.0", "Mail.ru FBL/1.2",
                                       "AnyCompany Feedback Loop (V0.01)"};
      static const char *const fbt[] = {"abuse",    "abuse", "abuse", "abuse",
                                        "not-spam", "fraud", "virus", "other"};
      cJSON_AddStringToObject(detail, "userAgent", ua[rbelow(&r, 3)]);
      cJSON_AddStringToObject(detail, "complaintFeedbackType", fbt[f]);
      cJSON_AddStringToObject(detail, "arrivalDate", arrival);
    }
  }
  cJSON *mail = cJSON_AddObjectToObject(root, "mail");
  cJSON_AddStringToObject(mail, "timestamp", mail_ts);
  cJSON_AddStringToObject(mail, "source", source);
  char arn[160], ip[32];
  snprintf(arn, sizeof arn, "arn:aws:ses:us-east-1:123456789012:identity/%s", senders[si].domain);
  cJSON_AddStringToObject(mail, "sourceArn", arn);
  snprintf(ip, sizeof ip, "203.0.113.%u", rbelow(&r, 250) + 1);
  cJSON_AddStringToObject(mail, "sourceIp", ip);
  cJSON_AddStringToObject(mail, "callerIdentity", "app-mailer");
  cJSON_AddStringToObject(mail, "sendingAccountId", "123456789012");
  cJSON_AddStringToObject(mail, "messageId", message_id);
  cJSON_AddItemToObject(mail, "destination", str_array(dest, nd));
  cJSON_AddFalseToObject(mail, "headersTruncated");
  cJSON *headers = cJSON_AddArrayToObject(mail, "headers");
  add_header(headers, "From", source);
  add_header(headers, "To", to_hdr);
  add_header(headers, "Subject", subject);
  add_header(headers, "Message-ID", hdr_msgid);
  add_header(headers, "Date", date);
  add_header(headers, "MIME-Version", "1.0");
  {
    char ct[120], h[24];
    rhex(&r, h, 20);
    snprintf(ct, sizeof ct, "multipart/alternative; boundary=\"----=_Part_%s\"", h);
    add_header(headers, "Content-Type", ct);
  }
  cJSON *common = cJSON_AddObjectToObject(mail, "commonHeaders");
  const char *from1[] = {from_hdr}, *to1[] = {to_common};
  cJSON_AddItemToObject(common, "from", str_array(from1, 1));
  cJSON_AddStringToObject(common, "date", date);
  cJSON_AddItemToObject(common, "to", str_array(to1, 1));
  cJSON_AddStringToObject(common, "messageId", hdr_msgid);
  cJSON_AddStringToObject(common, "subject", subject);
  if (event_shape) {
    cJSON *tags = cJSON_AddObjectToObject(mail, "tags");
    const char *op[] = {"SendEmail"}, *cs[] = {"prod-events"}, *sip[] = {ip},
               *fd[] = {senders[si].domain}, *ci[] = {"app-mailer"};
    char oip[32], camp[48];
    snprintf(oip, sizeof oip, "54.240.8.%u", rbelow(&r, 250) + 1);
    snprintf(camp, sizeof camp, "campaign-%u", rbelow(&r, 50));
    const char *oi[] = {oip}, *cp[] = {camp};
    cJSON_AddItemToObject(tags, "ses:operation", str_array(op, 1));
    cJSON_AddItemToObject(tags, "ses:configuration-set", str_array(cs, 1));
    cJSON_AddItemToObject(tags, "ses:source-ip", str_array(sip, 1));
    cJSON_AddItemToObject(tags, "ses:from-domain", str_array(fd, 1));
    cJSON_AddItemToObject(tags, "ses:caller-identity", str_array(ci, 1));
    cJSON_AddItemToObject(tags, "ses:outgoing-ip", str_array(oi, 1));
    cJSON_AddItemToObject(tags, "campaign", str_array(cp, 1));
  }
  if (kind == 0) {
    detail = cJSON_AddObjectToObject(root, "delivery");
    cJSON_AddStringToObject(detail, "timestamp", ev_ts);
    cJSON_AddNumberToObject(detail, "processingTimeMillis", (double)(ev_ms - mail_ms));
    cJSON_AddItemToObject(detail, "recipients", str_array(dest, nd));
    char resp[400], h[40];
    rhex(&r, h, 32);
    switch (rbelow(&r, 4)) {
      case 0:
        snprintf(resp, sizeof resp, "250 2.0.0 OK  %lld %.14s.%u - gsmtp",
                 (long long)(ev_ms / 1000), h, rbelow(&r, 1000));
        break;
      case 1:
        snprintf(resp, sizeof resp,
                 "250 2.6.0 %s [InternalId=%u%u, Hostname=DM6PR%uMB%u.namprd%u.prod.outlook.com] "
                 "%u bytes in 0.%03u, %u.%03u KB/sec Queued mail for delivery",
                 hdr_msgid, rbelow(&r, 100000), rbelow(&r, 100000), rbelow(&r, 20),
                 rbelow(&r, 9000), rbelow(&r, 20), 4000 + rbelow(&r, 60000), rbelow(&r, 1000),
                 rbelow(&r, 200), rbelow(&r, 1000));
        break;
      case 2: snprintf(resp, sizeof resp, "250 ok dirdel %.8s", h); break;
      default:
        snprintf(resp, sizeof resp, "250 Requested mail action okay, completed: id=%.24s", h);
    }
    cJSON_AddStringToObject(detail, "smtpResponse", resp);
    snprintf(ip, sizeof ip, "198.51.100.%u", rbelow(&r, 250) + 1);
    cJSON_AddStringToObject(detail, "remoteMtaIp", ip);
    char mta[96];
    snprintf(mta, sizeof mta, "a%u-%u.smtp-out.amazonses.com", rbelow(&r, 250) + 1,
             rbelow(&r, 250) + 1);
    cJSON_AddStringToObject(detail, "reportingMTA", mta);
  }
  /* grow the original message's headers to the target size */
  char *json = cJSON_PrintUnformatted(root);
  for (int k = 0; json && (int)strlen(json) < target - 60 && k < 40; k++) {
    free(json);
    pad_header(&r, headers, k, senders[si].domain, dest[0], date);
    json = cJSON_PrintUnformatted(root);
    if (json && strlen(json) > 3000) { /* overshot: take that header back */
      free(json);
      cJSON_DeleteItemFromArray(headers, cJSON_GetArraySize(headers) - 1);
      json = cJSON_PrintUnformatted(root);
      break;
    }
  }
  cJSON_Delete(root);
  if (!json) die("out of memory");
  out->json = json;
  out->topic = kind == 0   ? "arn:aws:sns:us-east-1:123456789012:ses-deliveries"
               : kind == 1 ? "arn:aws:sns:us-east-1:123456789012:ses-bounces"
                           : "arn:aws:sns:us-east-1:123456789012:ses-complaints";
}

/* The whole HTTP request for event i, signed. */
static char *make_request(size_t i, size_t n, int64_t gen_ms, const char *key, size_t key_len,
                          const char *hex, size_t *len) {
  gen_event ge;
  make_event(i, n, gen_ms, &ge);
  rng r = {0xabcdef12345ull ^ (uint64_t)i * 0xd1b54a32d192ed03ull};
  rnext(&r);
  sns_msg *m = calloc(1, sizeof *m);
  char mid[37], sub[37], ts[25], url[200], unsub[300];
  ruuid(&r, mid);
  ruuid(&r, sub);
  util_format_iso8601(ge.sns_ms, ts);
  snprintf(url, sizeof url, "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-%s.pem",
           hex);
  snprintf(unsub, sizeof unsub,
           "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=%s:%s",
           ge.topic, sub);
  m->type = SNS_NOTIFICATION;
  m->type_str = strdup("Notification");
  m->message_id = strdup(mid);
  m->topic_arn = strdup(ge.topic);
  m->message = ge.json;
  m->message_len = strlen(ge.json);
  m->timestamp = strdup(ts);
  m->timestamp_ms = ge.sns_ms;
  m->signature_version = strdup(rbelow(&r, 10) == 0 ? "1" : "2");
  m->signing_cert_url = strdup(url);
  m->unsubscribe_url = strdup(unsub);
  int rc = sns_sign(m, key, key_len);
  if (rc) die("sns_sign failed (%d)", rc);
  char *body = sns_to_json(m);
  if (!body) die("sns_to_json failed");
  size_t blen = strlen(body);
  buf b;
  buf_init(&b, 1 << 20);
  buf_printf(&b,
             "POST /sns HTTP/1.1\r\n"
             "Host: 127.0.0.1\r\n"
             "x-amz-sns-message-type: Notification\r\n"
             "x-amz-sns-message-id: %s\r\n"
             "x-amz-sns-topic-arn: %s\r\n"
             "x-amz-sns-subscription-arn: %s:%s\r\n"
             "Content-Length: %zu\r\n"
             "Content-Type: text/plain; charset=UTF-8\r\n"
             "User-Agent: Amazon Simple Notification Service Agent\r\n"
             "Accept-Encoding: gzip,deflate\r\n"
             "\r\n",
             mid, ge.topic, ge.topic, sub, blen);
  buf_append(&b, body, blen);
  free(body);
  sns_msg_free(m);
  *len = b.len;
  return buf_take(&b);
}

/* A fresh RSA-2048 key and a self-signed certificate valid from 30 days
 * ago for 10 years, both PEM. */
static void make_key_and_cert(char **key, size_t *key_len, char **cert, size_t *cert_len) {
  EVP_PKEY *pk = EVP_RSA_gen(2048);
  if (!pk) die("EVP_RSA_gen failed");
  X509 *x = X509_new();
  X509_set_version(x, 2);
  unsigned char serial[8];
  RAND_bytes(serial, sizeof serial);
  serial[0] &= 0x7f;
  BIGNUM *bn = BN_bin2bn(serial, sizeof serial, NULL);
  BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x));
  BN_free(bn);
  X509_gmtime_adj(X509_getm_notBefore(x), -30L * 86400);
  X509_gmtime_adj(X509_getm_notAfter(x), 3650L * 86400);
  X509_set_pubkey(x, pk);
  X509_NAME *name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "C", MBSTRING_ASC, (const unsigned char *)"US", -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                             (const unsigned char *)"seslog bench (not Amazon)", -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"sns.amazonaws.com",
                             -1, -1, 0);
  X509_set_issuer_name(x, name);
  if (!X509_sign(x, pk, EVP_sha256())) die("X509_sign failed");
  BIO *kb = BIO_new(BIO_s_mem()), *cb = BIO_new(BIO_s_mem());
  if (!PEM_write_bio_PrivateKey(kb, pk, NULL, NULL, 0, NULL, NULL) || !PEM_write_bio_X509(cb, x))
    die("PEM write failed");
  char *p;
  long n = BIO_get_mem_data(kb, &p);
  *key = util_strndup(p, (size_t)n);
  *key_len = (size_t)n;
  n = BIO_get_mem_data(cb, &p);
  *cert = util_strndup(p, (size_t)n);
  *cert_len = (size_t)n;
  BIO_free(kb);
  BIO_free(cb);
  X509_free(x);
  EVP_PKEY_free(pk);
}

struct sign_job {
  size_t n, first, step;
  int64_t gen_ms;
  const char *key, *hex;
  size_t key_len;
  char **reqs;
  size_t *lens;
};

static void *sign_thread(void *arg) {
  struct sign_job *j = arg;
  for (size_t i = j->first; i < j->n; i += j->step) {
    j->reqs[i] = make_request(i, j->n, j->gen_ms, j->key, j->key_len, j->hex, &j->lens[i]);
    if (j->first == 0 && i % 10000 == 0 && i)
      fprintf(stderr, "ingest: signed %zu of %zu\n", i, j->n);
  }
  return NULL;
}

static void put32(FILE *f, uint32_t v) {
  fwrite(&v, 4, 1, f);
}

/* Generates the events and writes the cache file atomically. */
static void generate(const char *path, size_t n, int threads) {
  fprintf(stderr, "ingest: creating %zu signed notifications into %s (once; ~%zu s)\n", n, path,
          n * 3 / 2000 / (size_t)threads + 1);
  uint64_t t0 = now_ns();
  char *key, *cert;
  size_t key_len, cert_len;
  make_key_and_cert(&key, &key_len, &cert, &cert_len);
  char hex[33];
  unsigned char rb[16];
  RAND_bytes(rb, sizeof rb);
  for (int i = 0; i < 16; i++) snprintf(hex + 2 * i, 3, "%02x", rb[i]);
  int64_t gen_ms = util_now_ms();
  char **reqs = calloc(n, sizeof *reqs);
  size_t *lens = calloc(n, sizeof *lens);
  if (!reqs || !lens) die("out of memory");
  pthread_t th[8];
  struct sign_job jobs[8];
  for (int t = 0; t < threads; t++) {
    jobs[t] =
        (struct sign_job){n, (size_t)t, (size_t)threads, gen_ms, key, hex, key_len, reqs, lens};
    if (pthread_create(&th[t], NULL, sign_thread, &jobs[t])) die("pthread_create failed");
  }
  for (int t = 0; t < threads; t++) pthread_join(th[t], NULL);
  char tmp[4200];
  snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
  FILE *f = fopen(tmp, "wb");
  if (!f) die("cannot write %s: %s", tmp, strerror(errno));
  fwrite(CACHE_MAGIC, 1, 12, f);
  put32(f, CACHE_VERSION);
  put32(f, (uint32_t)n);
  fwrite(&gen_ms, 8, 1, f);
  put32(f, (uint32_t)key_len);
  fwrite(key, 1, key_len + 1, f);
  put32(f, (uint32_t)cert_len);
  fwrite(cert, 1, cert_len + 1, f);
  fwrite(hex, 1, 32, f);
  size_t total = 0;
  for (size_t i = 0; i < n; i++) {
    put32(f, (uint32_t)lens[i]);
    fwrite(reqs[i], 1, lens[i] + 1, f); /* with its NUL */
    total += lens[i];
    free(reqs[i]);
  }
  if (fclose(f) != 0 || rename(tmp, path) != 0) die("cannot write %s: %s", path, strerror(errno));
  free(reqs);
  free(lens);
  free(key);
  free(cert);
  fprintf(stderr, "ingest: %zu requests, %.0f bytes on average, made in %.1f s\n", n,
          (double)total / (double)n, (double)(now_ns() - t0) / 1e9);
}

static int read_cache(const char *path, size_t want_n, cache *c) {
  FILE *f = fopen(path, "rb");
  if (!f) return -1;
  struct stat sb;
  if (fstat(fileno(f), &sb) || sb.st_size < 64) {
    fclose(f);
    return -1;
  }
  size_t size = (size_t)sb.st_size;
  char *d = malloc(size);
  if (!d || fread(d, 1, size, f) != size) {
    free(d);
    fclose(f);
    return -1;
  }
  fclose(f);
  size_t at = 0;
#define NEED(k)                    \
  do {                             \
    if (size - at < (k)) goto bad; \
  } while (0)
  uint32_t v32;
  NEED(12 + 8 + 8);
  if (memcmp(d, CACHE_MAGIC, 12) != 0) goto bad;
  at = 12;
  memcpy(&v32, d + at, 4);
  at += 4;
  if (v32 != CACHE_VERSION) goto bad;
  memcpy(&v32, d + at, 4);
  at += 4;
  if (v32 != want_n) goto bad;
  c->n = v32;
  memcpy(&c->gen_ms, d + at, 8);
  at += 8;
  NEED(4);
  memcpy(&v32, d + at, 4);
  at += 4;
  NEED((size_t)v32 + 1);
  c->key = d + at;
  c->key_len = v32;
  at += v32 + 1;
  NEED(4);
  memcpy(&v32, d + at, 4);
  at += 4;
  NEED((size_t)v32 + 1 + 32);
  c->cert = d + at;
  c->cert_len = v32;
  at += v32 + 1;
  memcpy(c->hex, d + at, 32);
  c->hex[32] = 0;
  at += 32;
  c->req = calloc(c->n, sizeof *c->req);
  c->req_len = calloc(c->n, sizeof *c->req_len);
  for (size_t i = 0; i < c->n; i++) {
    NEED(4);
    memcpy(&v32, d + at, 4);
    at += 4;
    NEED((size_t)v32 + 1);
    c->req[i] = d + at;
    c->req_len[i] = v32;
    at += v32 + 1;
  }
#undef NEED
  c->file = d;
  return 0;
bad:
  free(d);
  return -1;
}

static void load_cache(const char *dir, size_t n, cache *c) {
  char path[4096];
  snprintf(path, sizeof path, "%s/bodies-%zu.bin", dir, n);
  memset(c, 0, sizeof *c);
  if (read_cache(path, n, c) == 0) return;
  mkdir(dir, 0755);
  /* One generator at a time: another run may be making the same file. */
  char lock[4200];
  snprintf(lock, sizeof lock, "%s.lock", path);
  int lfd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lfd >= 0) flock(lfd, LOCK_EX);
  if (read_cache(path, n, c) == 0) {
    if (lfd >= 0) close(lfd);
    return;
  }
  generate(path, n, 2);
  if (lfd >= 0) close(lfd);
  if (read_cache(path, n, c) != 0) die("cannot read back %s", path);
}

static void write_cert(const cache *c, const char *cert_dir) {
  mkdir(cert_dir, 0755);
  char path[4200];
  snprintf(path, sizeof path, "%s/SimpleNotificationService-%s.pem", cert_dir, c->hex);
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(c->cert, 1, c->cert_len, f) != c->cert_len || fclose(f) != 0)
    die("cannot write %s: %s", path, strerror(errno));
}

/* ------------------------------------------------------------- the load */

enum { C_IDLE, C_BUSY, C_DEAD };

typedef struct conn {
  int fd;
  int state;
  size_t ev;      /* the event in flight */
  size_t off;     /* bytes of its request written */
  int want_out;   /* EPOLLOUT registered */
  uint64_t t_due; /* when the event was due (paced) or sent */
  char in[16384];
  size_t in_len;
} conn;

typedef struct load {
  const cache *c;
  int port, ep, tfd;
  size_t nconn;
  conn *conns;
  size_t *idle; /* stack of idle connections */
  size_t n_idle;
  size_t total;  /* events to post */
  size_t next;   /* next event to post */
  size_t done;   /* answered or failed */
  size_t ok;     /* 200 "stored" */
  uint64_t rate; /* events/s; 0 = saturation */
  uint64_t t0;
  uint64_t last_progress;
  uint32_t *lat_us; /* per answered event */
  size_t n_lat;
  uint32_t *sec_us; /* paced: per second of the schedule, the answered events' latencies */
  size_t *sec_n;    /* ... how many of them (sec_us holds rate per second) */
  size_t n_secs;
  uint32_t *lag_us; /* paced: per event sent, from its due time to its send */
  size_t n_lag;
  size_t by_status[600];
  size_t not_stored; /* 200 but not "stored" */
  size_t conn_errors;
  char sample_error[300];
  size_t dup_or_other_sample;
} load;

static int connect_one(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
    close(fd);
    return -1;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  return fd;
}

static void conn_register(load *L, size_t i) {
  struct epoll_event e = {.events = EPOLLIN, .data.u64 = i};
  epoll_ctl(L->ep, EPOLL_CTL_ADD, L->conns[i].fd, &e);
}

static void set_out(load *L, conn *k, size_t i, int on) {
  if (k->want_out == on) return;
  struct epoll_event e = {.events = EPOLLIN | (on ? EPOLLOUT : 0), .data.u64 = i};
  epoll_ctl(L->ep, EPOLL_CTL_MOD, k->fd, &e);
  k->want_out = on;
}

static void finish(load *L, conn *k, int status, int stored) {
  uint64_t t = now_ns();
  L->done++;
  L->last_progress = t;
  if (status == 0) {
    L->conn_errors++;
  } else {
    L->by_status[status < 600 && status > 0 ? status : 599]++;
    if (status == 200 && stored) {
      L->ok++;
      L->lat_us[L->n_lat++] = (uint32_t)((t - k->t_due) / 1000);
      if (L->rate) { /* by the second its event was due in */
        size_t sec = k->ev / L->rate;
        if (sec < L->n_secs && L->sec_n[sec] < L->rate)
          L->sec_us[sec * L->rate + L->sec_n[sec]++] = (uint32_t)((t - k->t_due) / 1000);
      }
    } else if (status == 200) {
      L->not_stored++;
    }
  }
}

/* The connection broke: the event in flight failed; reconnect. */
static void conn_broken(load *L, size_t i) {
  conn *k = &L->conns[i];
  if (k->state == C_BUSY) finish(L, k, 0, 0);
  epoll_ctl(L->ep, EPOLL_CTL_DEL, k->fd, NULL);
  close(k->fd);
  k->in_len = 0;
  k->want_out = 0;
  k->fd = connect_one(L->port);
  if (k->fd < 0) {
    k->state = C_DEAD;
    return;
  }
  conn_register(L, i);
  k->state = C_IDLE;
  L->idle[L->n_idle++] = i;
}

static void flush_out(load *L, size_t i) {
  conn *k = &L->conns[i];
  const char *p = L->c->req[k->ev];
  size_t len = L->c->req_len[k->ev];
  while (k->off < len) {
    ssize_t w = send(k->fd, p + k->off, len - k->off, MSG_NOSIGNAL);
    if (w > 0) {
      k->off += (size_t)w;
      continue;
    }
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      set_out(L, k, i, 1);
      return;
    }
    conn_broken(L, i);
    return;
  }
  set_out(L, k, i, 0);
}

static uint64_t due_time(const load *L, size_t ev) {
  return L->t0 + (uint64_t)((double)ev * 1e9 / (double)L->rate);
}

/* Hands every due event to an idle connection. */
static void issue(load *L) {
  uint64_t t = now_ns();
  while (L->n_idle && L->next < L->total) {
    if (L->rate && due_time(L, L->next) > t) break;
    size_t i = L->idle[--L->n_idle];
    conn *k = &L->conns[i];
    k->state = C_BUSY;
    k->ev = L->next++;
    k->off = 0;
    k->t_due = L->rate ? due_time(L, k->ev) : now_ns();
    if (L->rate) L->lag_us[L->n_lag++] = (uint32_t)((now_ns() - k->t_due) / 1000);
    flush_out(L, i);
  }
  if (L->rate && L->next < L->total && L->n_idle) {
    uint64_t at = due_time(L, L->next);
    struct itimerspec its = {.it_value = {.tv_sec = (time_t)(at / 1000000000ull),
                                          .tv_nsec = (long)(at % 1000000000ull)}};
    timerfd_settime(L->tfd, TFD_TIMER_ABSTIME, &its, NULL);
  }
}

/* Parses every complete answer in the connection's input. Returns 0, or
 * -1 when the connection must be dropped. */
static int parse_answers(load *L, size_t i) {
  conn *k = &L->conns[i];
  for (;;) {
    k->in[k->in_len] = 0;
    char *end = strstr(k->in, "\r\n\r\n");
    if (!end) return k->in_len >= sizeof k->in - 1 ? -1 : 0;
    size_t hlen = (size_t)(end - k->in) + 4;
    int status = 0;
    if (sscanf(k->in, "HTTP/1.%*d %d", &status) != 1) return -1;
    size_t clen = 0;
    int close_after = 0;
    for (char *line = strstr(k->in, "\r\n"); line && line < end; line = strstr(line + 2, "\r\n")) {
      if (strncasecmp(line + 2, "Content-Length:", 15) == 0)
        clen = strtoul(line + 17, NULL, 10);
      else if (strncasecmp(line + 2, "Connection: close", 17) == 0)
        close_after = 1;
    }
    if (hlen + clen >= sizeof k->in) return -1;
    if (k->in_len < hlen + clen) return 0;
    if (status == 100) { /* 100 Continue: skip it */
      memmove(k->in, k->in + hlen, k->in_len - hlen);
      k->in_len -= hlen;
      continue;
    }
    if (k->state != C_BUSY) return -1; /* an answer nobody asked for */
    char save = k->in[hlen + clen];
    k->in[hlen + clen] = 0;
    int stored = strstr(k->in + hlen, "\"status\":\"stored\"") != NULL;
    if ((status != 200 || !stored) && !L->sample_error[0])
      snprintf(L->sample_error, sizeof L->sample_error, "%d %s", status, k->in + hlen);
    k->in[hlen + clen] = save;
    finish(L, k, status, stored);
    memmove(k->in, k->in + hlen + clen, k->in_len - hlen - clen);
    k->in_len -= hlen + clen;
    k->state = C_IDLE;
    if (close_after) {
      k->state = C_IDLE;
      return -1; /* reconnect */
    }
    L->idle[L->n_idle++] = i;
  }
}

static void on_readable(load *L, size_t i) {
  conn *k = &L->conns[i];
  for (;;) {
    ssize_t r = recv(k->fd, k->in + k->in_len, sizeof k->in - 1 - k->in_len, 0);
    if (r > 0) {
      k->in_len += (size_t)r;
      if (parse_answers(L, i)) {
        /* drop it from the idle stack if parse_answers pushed it */
        for (size_t j = 0; j < L->n_idle; j++)
          if (L->idle[j] == i) L->idle[j] = L->idle[--L->n_idle];
        conn_broken(L, i);
        return;
      }
      if (k->in_len < sizeof k->in - 1) continue;
    }
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (r == 0 || r < 0) {
      for (size_t j = 0; j < L->n_idle; j++)
        if (L->idle[j] == i) L->idle[j] = L->idle[--L->n_idle];
      conn_broken(L, i);
      return;
    }
  }
}

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

static double pct(const uint32_t *v, size_t n, double p) {
  if (!n) return 0;
  size_t idx = (size_t)(p / 100.0 * (double)(n - 1) + 0.5);
  return v[idx] / 1000.0;
}

static int run_load(const cache *c, int port, size_t nconn, size_t total, uint64_t rate,
                    double timeout_s) {
  load L = {0};
  L.c = c;
  L.port = port;
  L.nconn = nconn;
  L.total = total;
  L.rate = rate;
  L.conns = calloc(nconn, sizeof *L.conns);
  L.idle = calloc(nconn, sizeof *L.idle);
  L.lat_us = calloc(total, sizeof *L.lat_us);
  if (!L.conns || !L.idle || !L.lat_us) die("out of memory");
  if (rate) {
    L.n_secs = (size_t)((total + rate - 1) / rate);
    L.sec_us = calloc(L.n_secs * rate, sizeof *L.sec_us);
    L.sec_n = calloc(L.n_secs, sizeof *L.sec_n);
    L.lag_us = calloc(total, sizeof *L.lag_us);
    if (!L.sec_us || !L.sec_n || !L.lag_us) die("out of memory");
  }
  L.ep = epoll_create1(EPOLL_CLOEXEC);
  L.tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  struct epoll_event te = {.events = EPOLLIN, .data.u64 = UINT64_MAX};
  epoll_ctl(L.ep, EPOLL_CTL_ADD, L.tfd, &te);
  for (size_t i = 0; i < nconn; i++) {
    L.conns[i].fd = connect_one(port);
    if (L.conns[i].fd < 0) die("cannot connect to 127.0.0.1:%d: %s", port, strerror(errno));
    conn_register(&L, i);
    L.idle[L.n_idle++] = nconn - 1 - i;
  }
  L.t0 = now_ns() + 1000000; /* a millisecond from now */
  while (now_ns() < L.t0) {
  }
  L.last_progress = L.t0;
  struct epoll_event evs[256];
  int stalled = 0;
  while (L.done < L.total) {
    issue(&L);
    int n = epoll_wait(L.ep, evs, 256, 1000);
    for (int e = 0; e < n; e++) {
      if (evs[e].data.u64 == UINT64_MAX) {
        uint64_t x;
        if (read(L.tfd, &x, sizeof x) < 0) { /* nothing: spurious */
        }
        continue;
      }
      size_t i = (size_t)evs[e].data.u64;
      conn *k = &L.conns[i];
      if (k->state == C_DEAD) continue;
      if ((evs[e].events & EPOLLOUT) && k->state == C_BUSY) flush_out(&L, i);
      if (k->state != C_DEAD && (evs[e].events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
        on_readable(&L, i);
    }
    size_t alive = 0;
    for (size_t i = 0; i < nconn; i++) alive += L.conns[i].state != C_DEAD;
    if (!alive) {
      fprintf(stderr, "ingest: every connection failed (server gone?)\n");
      stalled = 1;
      break;
    }
    if ((double)(now_ns() - L.last_progress) / 1e9 > timeout_s) {
      fprintf(stderr, "ingest: no answer for %.0f s; giving up\n", timeout_s);
      stalled = 1;
      break;
    }
  }
  uint64_t t_end = now_ns();
  double secs = (double)(t_end - L.t0) / 1e9;
  qsort(L.lat_us, L.n_lat, sizeof *L.lat_us, cmp_u32);
  double p50 = pct(L.lat_us, L.n_lat, 50), p90 = pct(L.lat_us, L.n_lat, 90),
         p99 = pct(L.lat_us, L.n_lat, 99), mx = L.n_lat ? L.lat_us[L.n_lat - 1] / 1000.0 : 0;
  char errs[512] = "";
  size_t nerr = 0;
  for (int s = 0; s < 600; s++) {
    if (!L.by_status[s] || s == 200) continue;
    char one[40];
    snprintf(one, sizeof one, "%s%d:%zu", errs[0] ? "," : "", s, L.by_status[s]);
    strncat(errs, one, sizeof errs - strlen(errs) - 1);
    nerr += L.by_status[s];
  }
  if (L.not_stored) {
    char one[40];
    snprintf(one, sizeof one, "%s200-not-stored:%zu", errs[0] ? "," : "", L.not_stored);
    strncat(errs, one, sizeof errs - strlen(errs) - 1);
    nerr += L.not_stored;
  }
  if (L.conn_errors) {
    char one[40];
    snprintf(one, sizeof one, "%sconnection:%zu", errs[0] ? "," : "", L.conn_errors);
    strncat(errs, one, sizeof errs - strlen(errs) - 1);
    nerr += L.conn_errors;
  }
  if (L.done < L.total) {
    char one[40];
    snprintf(one, sizeof one, "%sunanswered:%zu", errs[0] ? "," : "", L.total - L.done);
    strncat(errs, one, sizeof errs - strlen(errs) - 1);
    nerr += L.total - L.done;
  }
  const char *mode = rate ? "paced" : "saturation";
  printf("ingest %s: %zu events over %zu connections%s\n", mode, total, nconn,
         rate ? " (open loop; latency counted from each event's due time)" : "");
  if (rate) printf("  offered           %llu events/s\n", (unsigned long long)rate);
  printf("  committed         %zu events in %.2f s = %.0f events/s\n", L.ok, secs,
         (double)L.ok / secs);
  printf("  latency ms        p50 %.2f  p90 %.2f  p99 %.2f  max %.2f\n", p50, p90, p99, mx);
  /* Where the tail lies: a run's p99 can come from one second (a fresh
   * server's first, say) or from all of them alike. The headline figures
   * above count every event. */
  if (rate && L.n_secs > 1) {
    printf("  p99 ms by second ");
    for (size_t sec = 0; sec < L.n_secs; sec++) {
      uint32_t *v = L.sec_us + sec * rate;
      qsort(v, L.sec_n[sec], sizeof *v, cmp_u32);
      printf(" %.1f", pct(v, L.sec_n[sec], 99));
    }
    printf("\n");
    /* The load generator's own part of the latency: an event sent late
     * (no free connection, or this process not scheduled) counts from its
     * due time all the same. */
    qsort(L.lag_us, L.n_lag, sizeof *L.lag_us, cmp_u32);
    printf("  sent late ms      p50 %.2f  p99 %.2f  max %.2f (due time to send)\n",
           pct(L.lag_us, L.n_lag, 50), pct(L.lag_us, L.n_lag, 99),
           L.n_lag ? L.lag_us[L.n_lag - 1] / 1000.0 : 0);
  }
  printf("  errors            %s\n", errs[0] ? errs : "none");
  if (L.sample_error[0]) printf("  first error       %s\n", L.sample_error);
  printf(
      "RESULT mode=%s events=%zu ok=%zu seconds=%.3f eps=%.0f p50=%.3f p90=%.3f p99=%.3f "
      "max=%.3f errors=%zu error_kinds=%s\n",
      mode, total, L.ok, secs, (double)L.ok / secs, p50, p90, p99, mx, nerr,
      errs[0] ? errs : "none");
  fflush(stdout);
  for (size_t i = 0; i < nconn; i++)
    if (L.conns[i].state != C_DEAD) close(L.conns[i].fd);
  close(L.ep);
  close(L.tfd);
  free(L.conns);
  free(L.idle);
  free(L.lat_us);
  free(L.sec_us);
  free(L.sec_n);
  free(L.lag_us);
  return stalled ? 1 : 0;
}

/* -------------------------------------------------------- the baseline */

enum { COL_MID, COL_TS, COL_TYPE, COL_MTA, COL_DEST, COL_BR, COL_CFT, COL_FID, COL_TEXT, NCOL };

static char *str_of(const cJSON *o, const char *k) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
  return cJSON_IsString(v) ? strdup(v->valuestring) : NULL;
}

/* The contract's columns of one SES message, as the server derives them. */
static void extract(const char *req, size_t len, char *cols[NCOL]) {
  const char *body = strstr(req, "\r\n\r\n");
  if (!body) die("a cached request has no body");
  body += 4;
  sns_msg *m;
  const char *why;
  if (sns_parse(body, len - (size_t)(body - req), &m, &why)) die("a cached body: %s", why);
  cJSON *root = cJSON_ParseWithLength(m->message, m->message_len);
  if (!root) die("a cached Message is not JSON");
  const cJSON *mail = cJSON_GetObjectItemCaseSensitive(root, "mail");
  const cJSON *bounce = cJSON_GetObjectItemCaseSensitive(root, "bounce");
  const cJSON *complaint = cJSON_GetObjectItemCaseSensitive(root, "complaint");
  const cJSON *delivery = cJSON_GetObjectItemCaseSensitive(root, "delivery");
  cols[COL_MID] = str_of(mail, "messageId");
  cols[COL_TS] = strdup(m->timestamp);
  cols[COL_TYPE] = str_of(root, "notificationType");
  if (!cols[COL_TYPE]) cols[COL_TYPE] = str_of(root, "eventType");
  cols[COL_MTA] = bounce ? str_of(bounce, "reportingMTA") : str_of(delivery, "reportingMTA");
  buf b;
  buf_init(&b, 1 << 20);
  const cJSON *d;
  cJSON_ArrayForEach(d, cJSON_GetObjectItemCaseSensitive(mail, "destination")) {
    if (b.len) buf_append(&b, ",", 1);
    if (cJSON_IsString(d)) buf_appends(&b, d->valuestring);
  }
  cols[COL_DEST] = b.len ? buf_take(&b) : NULL;
  buf_free(&b);
  const cJSON *br = cJSON_GetObjectItemCaseSensitive(bounce, "bouncedRecipients");
  cols[COL_BR] = br ? cJSON_PrintUnformatted(br) : NULL;
  cols[COL_CFT] = str_of(complaint, "complaintFeedbackType");
  cols[COL_FID] = bounce ? str_of(bounce, "feedbackId") : str_of(complaint, "feedbackId");
  cols[COL_TEXT] = util_strndup(m->message, m->message_len);
  cJSON_Delete(root);
  sns_msg_free(m);
}

static void sqlok(sqlite3 *db, int rc, const char *what) {
  if (rc != SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW)
    die("sqlite (%s): %s", what, sqlite3_errmsg(db));
}

static int run_baseline(const cache *c, size_t n, const char *path, size_t per_txn) {
  char *(*rows)[NCOL] = calloc(n, sizeof *rows);
  if (!rows) die("out of memory");
  size_t bytes = 0;
  for (size_t i = 0; i < n; i++) {
    extract(c->req[i], c->req_len[i], rows[i]);
    bytes += strlen(rows[i][COL_TEXT]);
  }
  char side[4200];
  unlink(path);
  snprintf(side, sizeof side, "%s-wal", path);
  unlink(side);
  snprintf(side, sizeof side, "%s-shm", path);
  unlink(side);
  sqlite3 *db;
  if (sqlite3_open(path, &db) != SQLITE_OK) die("cannot open %s", path);
  sqlok(db,
        sqlite3_exec(db,
                     "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                     "CREATE TABLE SesEventMessages (messageId TEXT NOT NULL, timeStamp TEXT NOT "
                     "NULL, notificationType TEXT NOT NULL, reportingMTA TEXT, destinationAddress "
                     "TEXT, bouncedRecipients TEXT, complaintFeedbackType TEXT, feedbackId TEXT, "
                     "notification TEXT NOT NULL);"
                     "CREATE INDEX \"messageId-timeStamp-Index\" ON SesEventMessages (messageId, "
                     "timeStamp);"
                     "CREATE INDEX \"notificationType-timeStamp-Index\" ON SesEventMessages "
                     "(notificationType, timeStamp);"
                     "CREATE INDEX \"complaintFeedbackType-timeStamp-Index\" ON SesEventMessages "
                     "(complaintFeedbackType, timeStamp);",
                     NULL, NULL, NULL),
        "schema");
  sqlite3_stmt *st;
  sqlok(db,
        sqlite3_prepare_v2(db,
                           "INSERT INTO SesEventMessages (messageId, timeStamp, notificationType, "
                           "reportingMTA, destinationAddress, bouncedRecipients, "
                           "complaintFeedbackType, feedbackId, notification) VALUES "
                           "(?,?,?,?,?,?,?,?,?)",
                           -1, &st, NULL),
        "prepare");
  uint64_t t0 = now_ns();
  size_t txns = 0;
  for (size_t i = 0; i < n; i += per_txn) {
    sqlok(db, sqlite3_exec(db, "BEGIN", NULL, NULL, NULL), "begin");
    for (size_t j = i; j < n && j < i + per_txn; j++) {
      for (int k = 0; k < NCOL; k++) {
        if (rows[j][k])
          sqlite3_bind_text(st, k + 1, rows[j][k], -1, SQLITE_STATIC);
        else
          sqlite3_bind_null(st, k + 1);
      }
      sqlok(db, sqlite3_step(st), "insert");
      sqlite3_reset(st);
    }
    sqlok(db, sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), "commit");
    txns++;
  }
  double secs = (double)(now_ns() - t0) / 1e9;
  sqlite3_finalize(st);
  sqlite3_close(db);
  printf(
      "baseline: %zu rows (%.0f bytes of SES JSON on average), %zu rows a transaction, WAL, "
      "synchronous=FULL\n",
      n, (double)bytes / (double)n, per_txn);
  printf("  %.2f s = %.0f rows/s (%zu commits, %.0f commits/s)\n", secs, (double)n / secs, txns,
         (double)txns / secs);
  printf("RESULT mode=baseline rows=%zu seconds=%.3f rows_per_s=%.0f\n", n, secs, (double)n / secs);
  for (size_t i = 0; i < n; i++)
    for (int k = 0; k < NCOL; k++) free(rows[i][k]);
  free(rows);
  return 0;
}

/* ------------------------------------------------------ the JSON lines */

/* Writes the SES message of each cached event as one JSON line (what
 * `seslog import` reads; the same documents the baseline inserts). */
static int run_jsonl(const cache *c, size_t n, const char *path) {
  FILE *f = fopen(path, "w");
  if (!f) die("cannot write %s", path);
  size_t bytes = 0;
  for (size_t i = 0; i < n; i++) {
    const char *body = strstr(c->req[i], "\r\n\r\n");
    if (!body) die("a cached request has no body");
    body += 4;
    sns_msg *m;
    const char *why;
    if (sns_parse(body, c->req_len[i] - (size_t)(body - c->req[i]), &m, &why))
      die("a cached body: %s", why);
    if (memchr(m->message, '\n', m->message_len)) die("a cached Message spans lines");
    if (fwrite(m->message, 1, m->message_len, f) != m->message_len || fputc('\n', f) == EOF)
      die("cannot write %s", path);
    bytes += m->message_len + 1;
    sns_msg_free(m);
  }
  if (fclose(f)) die("cannot write %s", path);
  printf("RESULT mode=jsonl lines=%zu bytes=%zu\n", n, bytes);
  return 0;
}

/* ----------------------------------------------------------------- main */

static void usage(void) {
  fprintf(stderr,
          "usage: ingest prepare  --cache-dir DIR --n N --cert-dir DIR\n"
          "       ingest load     --cache-dir DIR --n N --port PORT [--conns 64] [--cert-dir DIR]\n"
          "                       [--rate EVENTS_PER_S --duration S] [--timeout S]\n"
          "       ingest baseline --cache-dir DIR --n N --db PATH [--per-txn 256]\n"
          "       ingest jsonl    --cache-dir DIR --n N --out FILE\n");
  exit(2);
}

int main(int argc, char **argv) {
  if (argc < 2) usage();
  const char *mode = argv[1];
  const char *cache_dir = NULL, *cert_dir = NULL, *db = NULL, *out = NULL;
  size_t n = 100000, nconn = 64, per_txn = 256;
  int port = 0;
  double rate = 0, duration = 0, timeout_s = 30;
  static const struct option opts[] = {
      {"cache-dir", required_argument, NULL, 'c'}, {"n", required_argument, NULL, 'n'},
      {"cert-dir", required_argument, NULL, 'C'},  {"port", required_argument, NULL, 'p'},
      {"conns", required_argument, NULL, 'k'},     {"rate", required_argument, NULL, 'r'},
      {"duration", required_argument, NULL, 'd'},  {"timeout", required_argument, NULL, 't'},
      {"db", required_argument, NULL, 'D'},        {"per-txn", required_argument, NULL, 'T'},
      {"out", required_argument, NULL, 'O'},       {NULL, 0, NULL, 0}};
  optind = 2;
  int o;
  while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (o) {
      case 'c': cache_dir = optarg; break;
      case 'n': n = strtoul(optarg, NULL, 10); break;
      case 'C': cert_dir = optarg; break;
      case 'p': port = atoi(optarg); break;
      case 'k': nconn = strtoul(optarg, NULL, 10); break;
      case 'r': rate = atof(optarg); break;
      case 'd': duration = atof(optarg); break;
      case 't': timeout_s = atof(optarg); break;
      case 'D': db = optarg; break;
      case 'T': per_txn = strtoul(optarg, NULL, 10); break;
      case 'O': out = optarg; break;
      default: usage();
    }
  }
  if (!cache_dir || n == 0 || n > 10000000) usage();
  signal(SIGPIPE, SIG_IGN);
  cache c;
  load_cache(cache_dir, n, &c);
  if (strcmp(mode, "prepare") == 0) {
    if (!cert_dir) usage();
    write_cert(&c, cert_dir);
    printf("RESULT mode=prepare events=%zu cert=SimpleNotificationService-%s.pem\n", c.n, c.hex);
    return 0;
  }
  if (strcmp(mode, "load") == 0) {
    if (port <= 0 || nconn == 0) usage();
    if (cert_dir) write_cert(&c, cert_dir); /* the certificate of exactly these events */
    size_t total = n;
    if (rate > 0) {
      if (duration <= 0) usage();
      total = (size_t)(rate * duration);
      if (total > n) die("--rate x --duration = %zu events, more than the %zu made", total, n);
    }
    if (nconn > total) nconn = total;
    return run_load(&c, port, nconn, total, (uint64_t)rate, timeout_s);
  }
  if (strcmp(mode, "baseline") == 0) {
    if (!db || per_txn == 0) usage();
    return run_baseline(&c, n, db, per_txn);
  }
  if (strcmp(mode, "jsonl") == 0) {
    if (!out) usage();
    return run_jsonl(&c, n, out);
  }
  usage();
}
