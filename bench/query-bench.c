/* query-bench.c - the query benchmark's two halves.
 *
 *   query-bench gen --db PATH [--events N] [--end-ms MS]
 *   query-bench run --port PORT --db PATH [--requests N] [--ingest RATE]
 *   query-bench ingest --port PORT --db PATH --ingest RATE --requests SECONDS
 *
 * `gen` writes N realistic SES events (default 1,000,000) through the
 * storage code (ses_parse + store_write, as `seslog import` does, in
 * transactions of 10,000): mails spread evenly over the 30 days before
 * --end-ms (default now), each a Send, then per recipient a Delivery (97 %)
 * or a Bounce (3 %: Permanent 80 %, a tenth of them OnAccountSuppressionList;
 * Transient 20 %), complaints (0.1 % of delivered recipients, hours later)
 * and opens (20 % of mails). 100,000 recipients over 500 domains whose
 * sizes follow Zipf's law (gmail.com biggest), five senders. Each event is
 * an event-publishing document of the usual size (about 1.5 KB).
 *
 * `run` speaks HTTP/1.1 over one keep-alive connection to a server on that
 * database and times each request (sequentially: latency, not throughput)
 * for each scenario: the first page of /api/events per filter kind, pages
 * 1..100 of a cursor chain, /api/stats, /api/timeseries. With --ingest R it
 * also posts R raw-delivery events a second (Basic auth bench:bench, topic
 * BENCH_TOPIC; start the server with --sns-basic-auth bench:bench
 * --sns-topic-arn BENCH_TOPIC) from 64 threads, one keep-alive connection each,
 * and reports what was committed. Prints one line per scenario and a
 * "RESULT" line per figure for scripts. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "error.h"
#include "ses.h"
#include "store.h"
#include "util.h"

#define RECIPIENTS 100000
#define DOMAINS 500
#define SPAN_MS (30LL * 86400000)
#define BENCH_TOPIC "arn:aws:sns:us-east-1:123456789012:seslog-bench"

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "query-bench: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  exit(1);
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- the population: shared by gen and run ---------------------------- */

static uint64_t mix(uint64_t x) { /* splitmix64 */
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

static uint64_t rng_state = 42;
static uint64_t rnd(void) {
  return mix(rng_state++);
}
static double rnd01(void) {
  return (double)(rnd() >> 11) / 9007199254740992.0;
}

static const char *const big_domains[] = {
    "gmail.com",      "yahoo.com", "outlook.com", "hotmail.com", "icloud.com",
    "aol.com",        "gmx.de",    "web.de",      "mail.ru",     "yandex.ru",
    "protonmail.com", "live.com",  "msn.com",     "comcast.net", "orange.fr",
};

static void domain_name(int i, char *out, size_t n) {
  if (i < (int)(sizeof big_domains / sizeof big_domains[0]))
    snprintf(out, n, "%s", big_domains[i]);
  else
    snprintf(out, n, "corp%03d.example", i);
}

static double zipf_cdf[DOMAINS];

static void zipf_init(void) {
  double sum = 0;
  for (int i = 0; i < DOMAINS; i++) sum += 1.0 / (i + 1);
  double acc = 0;
  for (int i = 0; i < DOMAINS; i++) {
    acc += 1.0 / (i + 1) / sum;
    zipf_cdf[i] = acc;
  }
}

/* Recipient k's domain: Zipf over the 500 domains, fixed by k. */
static int domain_of(int k) {
  double u = (double)(mix(0xD0D0u + (uint64_t)k) >> 11) / 9007199254740992.0;
  int lo = 0, hi = DOMAINS - 1;
  while (lo < hi) {
    int mid = (lo + hi) / 2;
    if (zipf_cdf[mid] < u)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

static void address_of(int k, char *out, size_t n) {
  char d[64];
  domain_name(domain_of(k), d, sizeof d);
  snprintf(out, n, "user%05d@%s", k, d);
}

static const char *const sources[] = {
    "news@shop.example", "Shop <orders@shop.example>", "alerts@monitor.example",
    "Billing Team <billing@shop.example>", "noreply@accounts.example"};

/* ---- gen ------------------------------------------------------------- */

typedef struct gen {
  store *st;
  store_req *batch[10000];
  size_t n;
  long written, dups;
  int64_t end_ms;
} gen;

static void flush(gen *g) {
  if (!g->n) return;
  if (store_write(g->st, g->batch, g->n)) die("store_write failed");
  for (size_t i = 0; i < g->n; i++) {
    if (g->batch[i]->result == STORE_STORED)
      g->written++;
    else
      g->dups++;
    store_req_free(g->batch[i]);
  }
  g->n = 0;
}

static void add(gen *g, const char *json) {
  ses_event *ev;
  const char *why = NULL;
  if (ses_parse(json, strlen(json), NULL, &ev, &why)) die("bad generated event: %s\n%s", why, json);
  store_req *r = calloc(1, sizeof *r);
  if (!r) die("out of memory");
  r->ev = ev;
  g->batch[g->n++] = r;
  if (g->n == sizeof g->batch / sizeof g->batch[0]) flush(g);
}

/* The "mail" object of a document. */
static void mail_json(buf *b, const char *mid, int64_t sent, const char *source, char rc[][96],
                      int nrc) {
  char ts[25];
  util_format_iso8601(sent, ts);
  buf_printf(b,
             "\"mail\":{\"timestamp\":\"%s\",\"source\":\"%s\",\"sourceArn\":\"arn:aws:ses:us-east-"
             "1:123456789012:identity/shop.example\",\"sourceIp\":\"192.0.2.10\",\"sendingAccountId"
             "\":\"123456789012\",\"callerIdentity\":\"ses_sender\",\"messageId\":\"%s\","
             "\"destination\":[",
             ts, source, mid);
  for (int i = 0; i < nrc; i++) buf_printf(b, "%s\"%s\"", i ? "," : "", rc[i]);
  buf_printf(
      b,
      "],\"headersTruncated\":false,\"headers\":[{\"name\":\"From\",\"value\":\"%s\"},"
      "{\"name\":\"To\",\"value\":\"%s\"},{\"name\":\"Subject\",\"value\":\"Your order "
      "%s has shipped\"},{\"name\":\"MIME-Version\",\"value\":\"1.0\"},{\"name\":\"Content-"
      "Type\",\"value\":\"multipart/alternative; boundary=\\\"----=_Part_7307378_"
      "1629847660.1516840721503\\\"\"}],\"commonHeaders\":{\"from\":[\"%s\"],\"to\":[\"%s\"],"
      "\"messageId\":\"%s\",\"subject\":\"Your order %s has shipped\"},\"tags\":{\"ses:"
      "configuration-set\":[\"transactional\"],\"ses:source-ip\":[\"192.0.2.10\"],\"ses:"
      "from-domain\":[\"shop.example\"],\"ses:caller-identity\":[\"ses_sender\"],"
      "\"campaign\":[\"c%d\"]}}",
      source, rc[0], mid + 20, source, rc[0], mid, mid + 20, (int)(sent / 86400000 % 97));
}

static int64_t clamp_end(gen *g, int64_t t) {
  return t < g->end_ms ? t : g->end_ms - (t % 1000);
}

static void cmd_gen(const char *db, long events, int64_t end_ms) {
  zipf_init();
  gen *g = calloc(1, sizeof *g);
  if (!g) die("out of memory");
  g->end_ms = end_ms;
  char err[256];
  struct store_opts so = {.busy_timeout_ms = 10000};
  if (store_open(db, &so, &g->st, err, sizeof err)) die("%s", err);
  long mails = (long)(events / 2.22);
  int64_t start = end_ms - SPAN_MS;
  buf b;
  buf_init(&b, 1 << 16);
  long made = 0, last_report = 0;
  double t0 = now_s();
  for (long m = 0; made < events; m++) {
    int64_t sent = start + (int64_t)((double)m * SPAN_MS / (double)mails) + (int64_t)(rnd() % 1000);
    if (sent >= end_ms) sent = end_ms - 1;
    char mid[80];
    snprintf(mid, sizeof mid, "0100018c%08lx-%08llx-%04llx-4e5a-9b1c-%012llx-000000",
             (unsigned long)m, (unsigned long long)(rnd() & 0xffffffff),
             (unsigned long long)(rnd() & 0xffff), (unsigned long long)(rnd() & 0xffffffffffffull));
    double u = rnd01();
    int nrc = u < 0.90 ? 1 : u < 0.97 ? 2 : 3;
    char rc[3][96];
    for (int i = 0; i < nrc; i++) address_of((int)(rnd() % RECIPIENTS), rc[i], sizeof rc[i]);
    const char *source = sources[rnd() % 10 < 5 ? 0 : 1 + rnd() % 4];
    char ts[25];
    /* Send */
    buf_reset(&b);
    buf_appends(&b, "{\"eventType\":\"Send\",");
    mail_json(&b, mid, sent, source, rc, nrc);
    buf_appends(&b, ",\"send\":{}}");
    add(g, b.data);
    made++;
    /* Bounces, then one Delivery of the others */
    char delivered[3][96];
    int nd = 0;
    for (int i = 0; i < nrc && made < events; i++) {
      if (rnd01() >= 0.03) {
        memcpy(delivered[nd++], rc[i], sizeof rc[i]);
        continue;
      }
      int perm = rnd01() < 0.8;
      const char *sub =
          perm ? (rnd01() < 0.1 ? "OnAccountSuppressionList" : "General") : "MailboxFull";
      util_format_iso8601(clamp_end(g, sent + 2000 + (int64_t)(rnd() % 58000)), ts);
      buf_reset(&b);
      buf_printf(&b,
                 "{\"eventType\":\"Bounce\",\"bounce\":{\"bounceType\":\"%s\",\"bounceSubType\":"
                 "\"%s\",\"bouncedRecipients\":[{\"emailAddress\":\"%s\",\"action\":\"failed\","
                 "\"status\":\"%s\",\"diagnosticCode\":\"smtp; %s\"}],\"timestamp\":\"%s\","
                 "\"feedbackId\":\"0100018c-bounce-%ld-%d\",\"reportingMTA\":\"dsn; "
                 "a8-70.smtp-out.amazonses.com\"},",
                 perm ? "Permanent" : "Transient", sub, rc[i], perm ? "5.1.1" : "4.2.2",
                 perm ? "550 5.1.1 The email account that you tried to reach does not exist"
                      : "452 4.2.2 The email account that you tried to reach is over quota",
                 ts, m, i);
      mail_json(&b, mid, sent, source, rc, nrc);
      buf_appends(&b, "}");
      add(g, b.data);
      made++;
    }
    if (nd && made < events) {
      util_format_iso8601(clamp_end(g, sent + 1000 + (int64_t)(rnd() % 4000)), ts);
      buf_reset(&b);
      buf_printf(&b, "{\"eventType\":\"Delivery\",");
      mail_json(&b, mid, sent, source, rc, nrc);
      buf_printf(&b,
                 ",\"delivery\":{\"timestamp\":\"%s\",\"processingTimeMillis\":%d,\"recipients\":[",
                 ts, (int)(rnd() % 5000));
      for (int i = 0; i < nd; i++) buf_printf(&b, "%s\"%s\"", i ? "," : "", delivered[i]);
      buf_appends(&b,
                  "],\"smtpResponse\":\"250 2.6.0 Message received\",\"reportingMTA\":"
                  "\"a8-70.smtp-out.amazonses.com\"}}");
      add(g, b.data);
      made++;
    }
    for (int i = 0; i < nd && made < events; i++) {
      if (rnd01() >= 0.001) continue;
      util_format_iso8601(clamp_end(g, sent + 3600000 + (int64_t)(rnd() % (2 * 86400000LL))), ts);
      buf_reset(&b);
      buf_printf(
          &b,
          "{\"eventType\":\"Complaint\",\"complaint\":{\"complainedRecipients\":[{"
          "\"emailAddress\":\"%s\"}],\"timestamp\":\"%s\",\"feedbackId\":\"0100018c-"
          "complaint-%ld-%d\",\"userAgent\":\"Mozilla/5.0\",\"complaintFeedbackType\":\"%s\","
          "\"arrivalDate\":\"%s\"},",
          delivered[i], ts, m, i, rnd01() < 0.8 ? "abuse" : "not-spam", ts);
      mail_json(&b, mid, sent, source, rc, nrc);
      buf_appends(&b, "}");
      add(g, b.data);
      made++;
    }
    if (nd && made < events && rnd01() < 0.2) {
      util_format_iso8601(clamp_end(g, sent + 60000 + (int64_t)(rnd() % 86400000)), ts);
      buf_reset(&b);
      buf_printf(&b, "{\"eventType\":\"Open\",");
      mail_json(&b, mid, sent, source, rc, nrc);
      buf_printf(
          &b,
          ",\"open\":{\"ipAddress\":\"198.51.100.%d\",\"timestamp\":\"%s\",\"userAgent\":"
          "\"Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15\"}}",
          (int)(rnd() % 250), ts);
      add(g, b.data);
      made++;
    }
    if (made / 50000 != last_report) {
      last_report = made / 50000;
      fprintf(stderr, "\rgenerating: %ld events (%.0f/s)", made, (double)made / (now_s() - t0));
    }
  }
  flush(g);
  fprintf(stderr, "\rgenerated %ld events (%ld duplicates) in %.1f s\n", g->written, g->dups,
          now_s() - t0);
  printf("RESULT gen_events=%ld gen_s=%.1f\n", g->written, now_s() - t0);
  buf_free(&b);
  store_close(g->st);
  free(g);
}

/* ---- an HTTP/1.1 client, one request at a time ------------------------ */

typedef struct client {
  int fd;
  int port;
  char *buf; /* the last answer's body */
  size_t cap, len;
  char in[1 << 16]; /* bytes read past the last answer */
  size_t in_len;
} client;

static void client_connect(client *c) {
  if (c->fd > 0) close(c->fd);
  c->fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)c->port)};
  inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  if (connect(c->fd, (struct sockaddr *)&a, sizeof a)) die("connect: %s", strerror(errno));
  int one = 1;
  setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  c->in_len = 0;
}

static int fill(client *c) {
  if (c->in_len == sizeof c->in) die("header too large");
  ssize_t n = read(c->fd, c->in + c->in_len, sizeof c->in - c->in_len);
  if (n <= 0) return -1;
  c->in_len += (size_t)n;
  return 0;
}

/* Sends req (a whole request) and reads the answer; returns the status. */
static int exchange(client *c, const char *req, size_t len) {
  for (size_t off = 0; off < len;) {
    ssize_t n = write(c->fd, req + off, len - off);
    if (n <= 0) die("write: %s", strerror(errno));
    off += (size_t)n;
  }
  char *end;
  for (;;) {
    c->in[c->in_len < sizeof c->in ? c->in_len : sizeof c->in - 1] = 0;
    if ((end = strstr(c->in, "\r\n\r\n"))) break;
    if (fill(c)) die("the server closed the connection");
  }
  int status = (int)strtol(c->in + 9, NULL, 10); /* "HTTP/1.1 200" */
  const char *cl = strcasestr(c->in, "\r\nContent-Length:");
  size_t body = cl ? strtoul(cl + 17, NULL, 10) : 0;
  size_t head = (size_t)(end + 4 - c->in);
  if (body + 1 > c->cap) {
    c->cap = body + 1;
    c->buf = realloc(c->buf, c->cap);
  }
  size_t have = c->in_len - head < body ? c->in_len - head : body;
  memcpy(c->buf, c->in + head, have);
  size_t got = have;
  while (got < body) {
    ssize_t n = read(c->fd, c->buf + got, body - got);
    if (n <= 0) die("short body");
    got += (size_t)n;
  }
  c->buf[body] = 0;
  c->len = body;
  size_t used = head + have;
  memmove(c->in, c->in + used, c->in_len - used);
  c->in_len -= used;
  return status;
}

static int http_get(client *c, const char *path) {
  char req[4096];
  int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", path);
  return exchange(c, req, (size_t)n);
}

/* ---- run ------------------------------------------------------------- */

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

struct figure {
  const char *name;
  double target_ms;
  double p50, p99, max;
  int n, errors;
};

static struct figure figures[16];
static int n_figures;

static void report(const char *name, double target, double *ms, int n, int errors) {
  qsort(ms, (size_t)n, sizeof *ms, cmp_double);
  struct figure *f = &figures[n_figures++];
  f->name = name;
  f->target_ms = target;
  f->n = n;
  f->errors = errors;
  f->p50 = n ? ms[n / 2] : 0;
  f->p99 = n ? ms[(int)((n - 1) * 0.99)] : 0;
  f->max = n ? ms[n - 1] : 0;
  printf("  %-34s n=%-5d p50 %7.3f ms  p99 %7.3f ms  max %7.3f ms  target p99 <= %g ms  %s%s\n",
         name, n, f->p50, f->p99, f->max, target, f->p99 <= target && !errors ? "PASS" : "FAIL",
         errors ? "  (errors!)" : "");
  fflush(stdout);
}

/* Times GETs of the paths make(i) gives, after a warm-up. */
static void scenario(client *c, const char *name, double target, int n,
                     void (*make)(int i, char *path, size_t len)) {
  char path[2048];
  for (int i = 0; i < 30; i++) {
    make(n + i, path, sizeof path);
    http_get(c, path);
  }
  double *ms = malloc(sizeof *ms * (size_t)n);
  int errors = 0;
  for (int i = 0; i < n; i++) {
    make(i, path, sizeof path);
    double t = now_s();
    int st = http_get(c, path);
    ms[i] = (now_s() - t) * 1000;
    if (st != 200) {
      if (errors++ < 3) fprintf(stderr, "  %s: %d %s\n", path, st, c->buf);
    }
  }
  report(name, target, ms, n, errors);
  free(ms);
}

static int64_t g_end_ms, g_start_ms;

static void rnd_address(char *out, size_t n) {
  address_of((int)(rnd() % RECIPIENTS), out, n);
}

static void rnd_domain(char *out, size_t n) {
  /* half the time one of the big ones, else any */
  int i = rnd() % 2 ? (int)(rnd() % 15) : (int)(rnd() % DOMAINS);
  domain_name(i, out, n);
}

static void iso(int64_t ms, char out[25]) {
  util_format_iso8601(ms, out);
}

static void mk_first(int i, char *p, size_t n) {
  (void)i;
  snprintf(p, n, "/api/events");
}
static void mk_type(int i, char *p, size_t n) {
  static const char *t[] = {"Delivery", "Send", "Open", "Bounce", "Complaint"};
  snprintf(p, n, "/api/events?type=%s", t[i % 5]);
}
static void mk_address(int i, char *p, size_t n) {
  char a[96];
  (void)i;
  rnd_address(a, sizeof a);
  snprintf(p, n, "/api/events?address=%s", a);
}
static void mk_domain(int i, char *p, size_t n) {
  char d[64];
  (void)i;
  rnd_domain(d, sizeof d);
  snprintf(p, n, "/api/events?domain=%s", d);
}
static void mk_time(int i, char *p, size_t n) {
  (void)i;
  int64_t t = g_start_ms + (int64_t)(rnd01() * (double)(g_end_ms - g_start_ms - 3600000));
  char a[25], b[25];
  iso(t, a);
  iso(t + 3600000, b);
  snprintf(p, n, "/api/events?since=%s&until=%s", a, b);
}
static void mk_combined(int i, char *p, size_t n) {
  char d[64], a[96], t[25];
  switch (i % 4) {
    case 0:
      rnd_domain(d, sizeof d);
      snprintf(p, n, "/api/events?type=Bounce&domain=%s&since=7d", d);
      break;
    case 1:
      rnd_address(a, sizeof a);
      snprintf(p, n, "/api/events?address=%s&type=Delivery&order=asc", a);
      break;
    case 2:
      snprintf(p, n, "/api/events?type=Send&source=%s&since=24h",
               i % 8 == 2 ? "news@shop.example" : "alerts@monitor.example");
      break;
    default:
      rnd_domain(d, sizeof d);
      iso(g_start_ms + (int64_t)(rnd01() * (double)(g_end_ms - g_start_ms)), t);
      snprintf(p, n, "/api/events?domain=%s&type=Delivery&until=%s", d, t);
  }
}
static void mk_stats24(int i, char *p, size_t n) {
  (void)i;
  snprintf(p, n, "/api/stats?window=24h");
}
static void mk_stats30(int i, char *p, size_t n) {
  (void)i;
  snprintf(p, n, "/api/stats?window=30d");
}
static void mk_series(int i, char *p, size_t n) {
  (void)i;
  snprintf(p, n, "/api/timeseries?since=30d&bucket=1h");
}

/* GET /api/events/counts: the investigator's first questions over a day,
 * a week and the whole month. */
static void mk_counts(int i, char *p, size_t n) {
  static const char *q[] = {
      "groupBy=day&type=Bounce&since=30d",
      "groupBy=domain&type=Bounce&since=7d",
      "groupBy=bounceType,bounceSubType&type=Bounce&since=30d",
      "groupBy=diagnostic&type=Bounce&since=30d",
      "groupBy=type&since=24h",
      "groupBy=hour&type=Complaint&since=7d",
  };
  snprintf(p, n, "/api/events/counts?%s", q[i % 6]);
}
static void mk_counts_all(int i, char *p, size_t n) {
  static const char *q[] = {"groupBy=day,type&since=30d", "groupBy=domain&since=30d",
                            "groupBy=source&since=30d"};
  snprintf(p, n, "/api/events/counts?%s", q[i % 3]);
}

/* Pages 1..100 of chains, each page timed. */
static void cursor_chains(client *c, int chains) {
  static const char *starts[] = {"/api/events?limit=50", "/api/events?limit=50&type=Delivery",
                                 "/api/events?limit=50&domain=gmail.com",
                                 "/api/events?limit=50&order=asc&since=7d",
                                 "/api/events?limit=50&type=Bounce"};
  double *ms = malloc(sizeof *ms * (size_t)chains * 100);
  int n = 0, errors = 0;
  for (int ch = 0; ch < chains; ch++) {
    char path[1024];
    snprintf(path, sizeof path, "%s", starts[ch % 5]);
    for (int page = 0; page < 100; page++) {
      double t = now_s();
      int st = http_get(c, path);
      ms[n++] = (now_s() - t) * 1000;
      if (st != 200) {
        errors++;
        break;
      }
      const char *k = strstr(c->buf, "\"nextCursor\":\"");
      if (!k) break;
      k += 14;
      const char *q = strchr(k, '"');
      snprintf(path, sizeof path, "%s&cursor=%.*s", starts[ch % 5], (int)(q - k), k);
    }
  }
  report("events: cursor pages 1..100", 5, ms, n, errors);
  free(ms);
}

/* ---- the ingest load --------------------------------------------------- */

/* INGEST_CONNS threads, each with one connection and every
 * INGEST_CONNS-th event of an open-loop schedule at the asked rate: event
 * i is due at t0 + i / rate, and its latency counts from then. */
#define INGEST_CONNS 64

static volatile int ingest_stop;
static double ingest_rate, ingest_t0;
static int ingest_port;
static uint64_t ingest_nonce;

struct poster {
  pthread_t th;
  int idx;
  long ok, err;
  double *lat;
  size_t nlat, cap;
};

static void *poster_main(void *arg) {
  struct poster *p = arg;
  client c = {.port = ingest_port};
  client_connect(&c);
  char body[4096], req[6144];
  for (long i = p->idx; !ingest_stop; i += INGEST_CONNS) {
    double due = ingest_t0 + (double)i / ingest_rate, now = now_s();
    if (due > now) {
      struct timespec ts = {(time_t)(due - now),
                            (long)((due - now - (double)(time_t)(due - now)) * 1e9)};
      nanosleep(&ts, NULL);
    }
    char ts[25], a[96];
    util_format_iso8601(util_now_ms(), ts);
    address_of((int)(mix(ingest_nonce + (uint64_t)i) % RECIPIENTS), a, sizeof a);
    int bl = snprintf(body, sizeof body,
                      "{\"eventType\":\"Delivery\",\"mail\":{\"timestamp\":\"%s\",\"source\":"
                      "\"news@shop.example\",\"messageId\":\"ingest-%llx-%ld\",\"destination\":"
                      "[\"%s\"],\"headersTruncated\":false,\"commonHeaders\":{\"subject\":\"Your "
                      "order has shipped\"}},\"delivery\":{\"timestamp\":\"%s\","
                      "\"processingTimeMillis\":900,\"recipients\":[\"%s\"],\"smtpResponse\":\"250 "
                      "ok\",\"reportingMTA\":\"a8-70.smtp-out.amazonses.com\"}}",
                      ts, (unsigned long long)ingest_nonce, i, a, ts, a);
    int rl = snprintf(req, sizeof req,
                      "POST /sns HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\n"
                      "x-amz-sns-rawdelivery: true\r\nx-amz-sns-topic-arn: %s\r\n"
                      "x-amz-sns-message-id: ingest-%llx-%ld\r\n"
                      "Authorization: Basic YmVuY2g6YmVuY2g=\r\nContent-Length: %d\r\n\r\n%s",
                      BENCH_TOPIC, (unsigned long long)ingest_nonce, i, bl, body);
    int st = exchange(&c, req, (size_t)rl);
    if (p->nlat < p->cap) p->lat[p->nlat++] = (now_s() - due) * 1000;
    if (st == 200 && strstr(c.buf, "\"stored\""))
      p->ok++;
    else if (p->err++ < 2)
      fprintf(stderr, "ingest: %d %s\n", st, c.buf);
  }
  close(c.fd);
  free(c.buf);
  return NULL;
}

static struct poster posters[INGEST_CONNS];

static void ingest_start(int port, double rate) {
  ingest_port = port;
  ingest_rate = rate;
  ingest_nonce = (uint64_t)time(NULL) * 1000003u;
  ingest_t0 = now_s();
  for (int i = 0; i < INGEST_CONNS; i++) {
    posters[i].idx = i;
    posters[i].cap = 1 << 20;
    posters[i].lat = malloc(sizeof(double) * posters[i].cap);
    pthread_create(&posters[i].th, NULL, poster_main, &posters[i]);
  }
}

/* Issue 14: the ingest p99 while the query benchmark runs at 2,000 events/s. */
#define INGEST_P99_TARGET_MS 50.0

/* Stops the posters and prints their figures; returns 1 when the p99 misses
 * its target or an event failed, else 0. */
static int ingest_finish(void) {
  ingest_stop = 1;
  double secs = now_s() - ingest_t0;
  long ok = 0, err = 0;
  size_t n = 0;
  for (int i = 0; i < INGEST_CONNS; i++) {
    pthread_join(posters[i].th, NULL);
    ok += posters[i].ok;
    err += posters[i].err;
    n += posters[i].nlat;
  }
  double *all = malloc(sizeof *all * (n ? n : 1));
  size_t k = 0;
  for (int i = 0; i < INGEST_CONNS; i++) {
    memcpy(all + k, posters[i].lat, sizeof *all * posters[i].nlat);
    k += posters[i].nlat;
    free(posters[i].lat);
  }
  qsort(all, n, sizeof *all, cmp_double);
  double p50 = n ? all[n / 2] : 0, p99 = n ? all[(size_t)((double)(n - 1) * 0.99)] : 0;
  free(all);
  int fail = p99 > INGEST_P99_TARGET_MS || err > 0;
  printf(
      "  ingest meanwhile: %.0f events/s committed (asked %.0f), latency p50 %.1f ms p99 %.1f ms, "
      "%ld errors  target p99 <= %.0f ms  %s\n",
      (double)ok / secs, ingest_rate, p50, p99, err, INGEST_P99_TARGET_MS, fail ? "FAIL" : "PASS");
  printf("RESULT ingest_eps=%.0f ingest_p50=%.1f ingest_p99=%.1f ingest_errors=%ld\n",
         (double)ok / secs, p50, p99, err);
  return fail;
}

static void cmd_run(int port, const char *db, int n, double rate) {
  zipf_init();
  /* the time span of the data */
  sqlite3 *s;
  if (sqlite3_open_v2(db, &s, SQLITE_OPEN_READONLY, NULL)) die("cannot open %s", db);
  sqlite3_stmt *st;
  sqlite3_prepare_v2(s, "SELECT min(timeStamp), max(timeStamp), count(*) FROM SesEventMessages", -1,
                     &st, NULL);
  if (sqlite3_step(st) != SQLITE_ROW || !sqlite3_column_text(st, 1)) die("an empty database");
  util_parse_iso8601((const char *)sqlite3_column_text(st, 0), &g_start_ms);
  util_parse_iso8601((const char *)sqlite3_column_text(st, 1), &g_end_ms);
  sqlite3_finalize(st);
  sqlite3_close(s);
  rng_state = (uint64_t)time(NULL);

  client c = {.port = port};
  client_connect(&c);
  if (rate > 0) {
    ingest_start(port, rate);
    usleep(500000);
  }
  scenario(&c, "events: first page, no filter", 5, n, mk_first);
  scenario(&c, "events: type", 5, n, mk_type);
  scenario(&c, "events: address", 5, n, mk_address);
  scenario(&c, "events: domain", 5, n, mk_domain);
  scenario(&c, "events: time range (1 h)", 5, n, mk_time);
  scenario(&c, "events: combined filters", 5, n, mk_combined);
  cursor_chains(&c, n / 100 > 5 ? n / 100 : 5);
  scenario(&c, "stats: window=24h", 5, n, mk_stats24);
  scenario(&c, "stats: window=30d", 5, n, mk_stats30);
  scenario(&c, "timeseries: 30 days in hours", 20, n / 2, mk_series);
  scenario(&c, "counts: bounces/complaints grouped", 50, n / 2, mk_counts);
  scenario(&c, "counts: every event of 30 d grouped", 50, n / 10 > 10 ? n / 10 : 10, mk_counts_all);
  int fails = rate > 0 ? ingest_finish() : 0;
  for (int i = 0; i < n_figures; i++) {
    printf("RESULT name=\"%s\" p50=%.3f p99=%.3f target=%g errors=%d\n", figures[i].name,
           figures[i].p50, figures[i].p99, figures[i].target_ms, figures[i].errors);
    fails += figures[i].p99 > figures[i].target_ms || figures[i].errors;
  }
  printf("RESULT failed=%d\n", fails);
  close(c.fd);
  free(c.buf);
}

int main(int argc, char **argv) {
  if (argc < 2) goto usage;
  const char *mode = argv[1], *db = NULL;
  long events = 1000000, n = 1000;
  int64_t end_ms = util_now_ms();
  int port = 0;
  double rate = 0;
  static const struct option longs[] = {
      {"db", 1, 0, 'd'},       {"events", 1, 0, 'e'}, {"end-ms", 1, 0, 't'}, {"port", 1, 0, 'p'},
      {"requests", 1, 0, 'n'}, {"ingest", 1, 0, 'i'}, {0, 0, 0, 0}};
  int ch;
  optind = 2;
  while ((ch = getopt_long(argc, argv, "", longs, NULL)) != -1) {
    switch (ch) {
      case 'd': db = optarg; break;
      case 'e': events = strtol(optarg, NULL, 10); break;
      case 't': end_ms = strtoll(optarg, NULL, 10); break;
      case 'p': port = (int)strtol(optarg, NULL, 10); break;
      case 'n': n = strtol(optarg, NULL, 10); break;
      case 'i': rate = strtod(optarg, NULL); break;
      default: goto usage;
    }
  }
  if (!db) goto usage;
  if (strcmp(mode, "gen") == 0 && events > 0) {
    cmd_gen(db, events, end_ms);
    return 0;
  }
  if (strcmp(mode, "ingest") == 0 && port > 0 && rate > 0) { /* the load alone, n seconds */
    zipf_init();
    ingest_start(port, rate);
    sleep((unsigned)n);
    return ingest_finish();
  }
  if (strcmp(mode, "run") == 0 && port > 0 && n >= 100) {
    cmd_run(port, db, (int)n, rate);
    return 0;
  }
usage:
  fprintf(stderr,
          "usage: query-bench gen --db PATH [--events N] [--end-ms MS]\n"
          "       query-bench run --port PORT --db PATH [--requests N] [--ingest RATE]\n"
          "       query-bench ingest --port PORT --db PATH --ingest RATE --requests SECONDS\n");
  return 2;
}
