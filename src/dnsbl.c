/* dnsbl.c - the DNSBL watch (see dnsbl.h). */
#include "dnsbl.h"

#include <ares.h>
#include <arpa/inet.h>
#include <ctype.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alerts.h"
#include "config.h"
#include "dns.h"
#include "error.h"
#include "log.h"
#include "readpool.h"

#define QTYPE_A 1
#define QTYPE_TXT 16
#define MAX_ANSWERS 8
#define MAX_ACTIVE 32   /* checks in flight at once */
#define MAX_CHANGES 50  /* kept for GET /api/dnsbl */
#define REASON_MAX 1024 /* bytes of TXT kept */
#define TRIES 2

enum state { ST_PENDING = 0, ST_NOT_LISTED, ST_LISTED, ST_UNKNOWN };
static const char *const state_names[] = {"pending", "not_listed", "listed", "unknown"};

/* The default zones, documented with their usage terms in the README. */
static const char *const default_ip_zones[] = {"zen.spamhaus.org", "bl.spamcop.net",
                                               "b.barracudacentral.org", "psbl.surriel.com"};
static const char *const default_domain_zones[] = {"dbl.spamhaus.org", "multi.surbl.org",
                                                   "multi.uribl.com"};

/* What one lookup found. */
struct result {
  enum state state;
  char answers[MAX_ANSWERS][16]; /* the A answers */
  int n_answers;
  char reason[REASON_MAX]; /* TXT */
  char error[160];         /* why unknown */
};

struct check {
  char target[256];
  enum dnsbl_kind kind;
  char zone[256];
  char query[512];
  struct result cur;   /* the last lookup's */
  struct result next;  /* the lookup of the current round */
  enum state definite; /* the last listed / not listed told, or ST_PENDING */
  int64_t since, checked;
};

struct change {
  int64_t at;
  char target[256], zone[256];
  enum state from, to;
  char answers[MAX_ANSWERS * 16];
  char reason[REASON_MAX];
};

struct dnsbl {
  uv_loop_t *loop;
  store *st;
  outbox *ob;
  int64_t interval_ms, timeout_ms;
  struct check *checks;
  int n_checks;
  char zones_desc[1024];
  dns *dns;               /* the resolver; NULL when nothing is watched */
  uv_timer_t round_timer; /* every interval */
  int running;            /* a round is in flight */
  int next_idx;           /* next check to start in the round */
  int active;             /* checks in flight */
  int closing;
  int64_t last_run_ms, next_run_ms;
  struct change changes[MAX_CHANGES]; /* ring, newest at changes_head - 1 */
  int changes_head, n_changes;
  uint64_t lookups[4]; /* by result state */
};

/* ---- names ------------------------------------------------------------- */

int dnsbl_check_name(char *name) {
  size_t n = strlen(name);
  if (n && name[n - 1] == '.') name[--n] = 0;
  if (n == 0 || n > 253) return -1;
  size_t label = 0;
  int dots = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)name[i];
    if (c == '.') {
      if (label == 0) return -1;
      label = 0;
      dots++;
      continue;
    }
    if (!isalnum(c) && c != '-' && c != '_') return -1;
    if (++label > 63) return -1;
    name[i] = (char)tolower(c);
  }
  return label && dots ? 0 : -1;
}

int dnsbl_query_name(const char *target, enum dnsbl_kind kind, const char *zone, char *out,
                     size_t outlen) {
  int w;
  if (kind == DNSBL_DOMAIN) {
    w = snprintf(out, outlen, "%s.%s", target, zone);
  } else {
    unsigned char a[16];
    if (inet_pton(AF_INET, target, a) == 1) {
      w = snprintf(out, outlen, "%u.%u.%u.%u.%s", a[3], a[2], a[1], a[0], zone);
    } else if (inet_pton(AF_INET6, target, a) == 1) {
      static const char hex[] = "0123456789abcdef";
      char nib[65];
      size_t o = 0;
      for (int i = 15; i >= 0; i--) {
        nib[o++] = hex[a[i] & 15];
        nib[o++] = '.';
        nib[o++] = hex[a[i] >> 4];
        nib[o++] = '.';
      }
      nib[o - 1] = 0;
      w = snprintf(out, outlen, "%s.%s", nib, zone);
    } else {
      return -1;
    }
  }
  return w < 0 || (size_t)w >= outlen || w > 253 ? -1 : 0;
}

const char *dnsbl_special_answer(uint32_t a) {
  if ((a >> 24) != 127) return "an answer outside 127.0.0.0/8 (a resolver rewriting NXDOMAIN?)";
  switch (a & 0xffffff) {
    case 0x000001: return "127.0.0.1: the zone refused the query (RFC 5782 reserves it)";
    case 0x0001ff: return "127.0.1.255: the zone refuses this kind of query";
    case 0xfffffc: return "127.255.255.252: the zone name is misspelt (Spamhaus)";
    case 0xfffffe:
      return "127.255.255.254: queries through a public or open resolver are refused (Spamhaus)";
    case 0xffffff: return "127.255.255.255: over the zone's query limit (Spamhaus)";
    default: return NULL;
  }
}

static int known_domain_zone(const char *z) {
  for (size_t i = 0; i < sizeof default_domain_zones / sizeof *default_domain_zones; i++)
    if (strcmp(z, default_domain_zones[i]) == 0) return 1;
  return 0;
}

/* Checks --dns-server: HOST:PORT entries, numeric addresses. */
static int check_servers(const char *csv, char *err, size_t errlen) {
  char *copy = util_strdup(csv);
  if (!copy) return SL_ENOMEM;
  int rc = 0;
  char *save = NULL;
  int n = 0;
  for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
    while (*t == ' ') t++;
    char host[256];
    int port = 53;
    unsigned char a[16];
    n++;
    if (strchr(t, ':') && (t[0] == '[' || strchr(t, ':') == strrchr(t, ':'))) {
      if (config_split_hostport(t, host, sizeof host, &port)) rc = SL_EINVAL;
    } else {
      snprintf(host, sizeof host, "%s", t);
    }
    if (!rc && inet_pton(AF_INET, host, a) != 1 && inet_pton(AF_INET6, host, a) != 1)
      rc = SL_EINVAL;
    if (!rc && (port < 1 || port > 65535)) rc = SL_EINVAL;
    if (rc) {
      snprintf(err, errlen,
               "--dns-server %s: expected HOST:PORT with a numeric address, e.g. 127.0.0.1:53 "
               "or [::1]:5353 (several separated by commas)",
               t);
      break;
    }
  }
  if (!rc && !n) {
    snprintf(err, errlen, "--dns-server is empty");
    rc = SL_EINVAL;
  }
  free(copy);
  return rc;
}

/* ---- building ---------------------------------------------------------- */

struct zone {
  char name[256];
  enum dnsbl_kind kind;
};

static int parse_zones(const struct dnsbl_opts *o, struct zone **out, int *nout, char *err,
                       size_t errlen) {
  size_t ndef = sizeof default_ip_zones / sizeof *default_ip_zones +
                sizeof default_domain_zones / sizeof *default_domain_zones;
  size_t cap = o->n_zones ? (size_t)o->n_zones : ndef;
  struct zone *z = calloc(cap, sizeof *z);
  if (!z) return SL_ENOMEM;
  int n = 0;
  if (!o->n_zones) {
    for (size_t i = 0; i < sizeof default_ip_zones / sizeof *default_ip_zones; i++) {
      snprintf(z[n].name, sizeof z[n].name, "%s", default_ip_zones[i]);
      z[n++].kind = DNSBL_IP;
    }
    for (size_t i = 0; i < sizeof default_domain_zones / sizeof *default_domain_zones; i++) {
      snprintf(z[n].name, sizeof z[n].name, "%s", default_domain_zones[i]);
      z[n++].kind = DNSBL_DOMAIN;
    }
  }
  for (int i = 0; i < o->n_zones; i++) {
    const char *s = o->zones[i];
    enum dnsbl_kind kind = DNSBL_IP;
    int explicit = 0;
    if (strncmp(s, "ip:", 3) == 0) {
      s += 3;
      explicit = 1;
    } else if (strncmp(s, "domain:", 7) == 0) {
      s += 7;
      kind = DNSBL_DOMAIN;
      explicit = 1;
    }
    if (strlen(s) >= sizeof z[n].name) s = ""; /* fails the check below */
    snprintf(z[n].name, sizeof z[n].name, "%s", s);
    if (dnsbl_check_name(z[n].name)) {
      snprintf(err, errlen,
               "--dnsbl-zone \"%s\": expected a zone name such as zen.spamhaus.org, "
               "ip:ZONE or domain:ZONE",
               o->zones[i]);
      free(z);
      return SL_EINVAL;
    }
    if (!explicit && known_domain_zone(z[n].name)) kind = DNSBL_DOMAIN;
    z[n].kind = kind;
    int dup = 0;
    for (int j = 0; j < n; j++)
      if (strcmp(z[j].name, z[n].name) == 0 && z[j].kind == kind) dup = 1;
    if (!dup) n++;
  }
  *out = z;
  *nout = n;
  return 0;
}

static int add_target(dnsbl *d, const char *raw, enum dnsbl_kind kind, const struct zone *z, int nz,
                      char *err, size_t errlen) {
  char t[256];
  if (strlen(raw) >= sizeof t) {
    snprintf(err, errlen, "--dnsbl-%s: \"%.40s...\" is too long", kind ? "domain" : "ip", raw);
    return SL_EINVAL;
  }
  snprintf(t, sizeof t, "%s", raw);
  if (kind == DNSBL_IP) {
    unsigned char a[16];
    char canon[INET6_ADDRSTRLEN];
    if (inet_pton(AF_INET, t, a) == 1)
      inet_ntop(AF_INET, a, canon, sizeof canon);
    else if (inet_pton(AF_INET6, t, a) == 1)
      inet_ntop(AF_INET6, a, canon, sizeof canon);
    else {
      snprintf(err, errlen, "--dnsbl-ip \"%s\": not an IPv4 or IPv6 address", raw);
      return SL_EINVAL;
    }
    snprintf(t, sizeof t, "%s", canon);
  } else if (dnsbl_check_name(t)) {
    snprintf(err, errlen, "--dnsbl-domain \"%s\": not a domain name such as example.com", raw);
    return SL_EINVAL;
  }
  for (int i = 0; i < nz; i++) {
    if (z[i].kind != kind) continue;
    int dup = 0;
    for (int j = 0; j < d->n_checks; j++)
      if (strcmp(d->checks[j].target, t) == 0 && strcmp(d->checks[j].zone, z[i].name) == 0) dup = 1;
    if (dup) continue;
    struct check *c = &d->checks[d->n_checks];
    memset(c, 0, sizeof *c);
    snprintf(c->target, sizeof c->target, "%s", t);
    snprintf(c->zone, sizeof c->zone, "%s", z[i].name);
    c->kind = kind;
    if (dnsbl_query_name(t, kind, z[i].name, c->query, sizeof c->query)) {
      snprintf(err, errlen, "%s in zone %s makes a name longer than DNS allows", t, z[i].name);
      return SL_EINVAL;
    }
    d->n_checks++;
  }
  return 0;
}

static int cmp_check(const void *a, const void *b) {
  const struct check *x = a, *y = b;
  int r = strcmp(x->target, y->target);
  return r ? r : strcmp(x->zone, y->zone);
}

int dnsbl_new(uv_loop_t *loop, outbox *ob, const struct dnsbl_opts *o, dnsbl **out, char *err,
              size_t errlen) {
  *out = NULL;
  if (o->servers && check_servers(o->servers, err, errlen)) return SL_EINVAL;
  if (o->interval_ms < 1000) {
    snprintf(err, errlen, "--dnsbl-interval must be at least 1s");
    return SL_EINVAL;
  }
  if (o->timeout_ms < 10 || o->timeout_ms > 60000) {
    snprintf(err, errlen, "--dns-timeout must be from 10ms to 60s");
    return SL_EINVAL;
  }
  struct zone *z;
  int nz;
  int rc = parse_zones(o, &z, &nz, err, errlen);
  if (rc) return rc;
  dnsbl *d = calloc(1, sizeof *d);
  size_t max = (size_t)(o->n_ips + o->n_domains) * (size_t)nz;
  if (!d || (max && !(d->checks = calloc(max, sizeof *d->checks)))) {
    free(d);
    free(z);
    return SL_ENOMEM;
  }
  d->loop = loop;
  d->ob = ob;
  d->interval_ms = o->interval_ms;
  d->timeout_ms = o->timeout_ms;
  for (int i = 0; !rc && i < o->n_ips; i++)
    rc = add_target(d, o->ips[i], DNSBL_IP, z, nz, err, errlen);
  for (int i = 0; !rc && i < o->n_domains; i++)
    rc = add_target(d, o->domains[i], DNSBL_DOMAIN, z, nz, err, errlen);
  if (!rc && (o->n_ips || o->n_domains) && !d->n_checks) {
    snprintf(err, errlen,
             "no --dnsbl-zone fits the watched targets (IP addresses need an IP zone, domains "
             "a domain: zone)");
    rc = SL_EINVAL;
  }
  size_t off = 0;
  for (int i = 0; !rc && i < nz && off < sizeof d->zones_desc; i++)
    off += (size_t)snprintf(d->zones_desc + off, sizeof d->zones_desc - off, "%s%s:%s",
                            i ? "," : "", z[i].kind ? "domain" : "ip", z[i].name);
  free(z);
  if (rc) {
    dnsbl_free(d);
    return rc;
  }
  if (d->n_checks > 1) qsort(d->checks, (size_t)d->n_checks, sizeof *d->checks, cmp_check);
  uv_timer_init(loop, &d->round_timer);
  d->round_timer.data = d;
  /* A REFUSED or SERVFAIL answer is the answer (unknown, with its
   * reason), not a sign of a bad server to retry elsewhere. */
  struct dns_opts dno = {
      .servers = o->servers, .timeout_ms = o->timeout_ms, .tries = TRIES, .keep_failures = 1};
  if (d->n_checks && dns_new(loop, &dno, &d->dns, err, errlen)) {
    *out = d; /* the caller closes and frees it */
    return SL_EINVAL;
  }
  *out = d;
  return 0;
}

void dnsbl_attach(dnsbl *d, store *st) {
  if (d) d->st = st;
}

int dnsbl_enabled(const dnsbl *d) {
  return d && d->n_checks > 0;
}

/* ---- a round ------------------------------------------------------------ */

struct lookup {
  dnsbl *d;
  int idx; /* into d->checks */
};

static void start_more(dnsbl *d);
static void finish_check(dnsbl *d, int idx);

static void on_txt(void *arg, int status, int timeouts, unsigned char *abuf, int alen) {
  struct lookup *l = arg;
  dnsbl *d = l->d;
  int idx = l->idx;
  free(l);
  (void)timeouts;
  if (status == ARES_EDESTRUCTION || status == ARES_ECANCELLED || d->closing) return;
  struct check *c = &d->checks[idx];
  struct ares_txt_ext *txt = NULL;
  if (status == ARES_SUCCESS && ares_parse_txt_reply_ext(abuf, alen, &txt) == ARES_SUCCESS) {
    size_t o = 0;
    for (struct ares_txt_ext *t = txt; t; t = t->next) {
      if (t->record_start && o && o < sizeof c->next.reason - 1) c->next.reason[o++] = ' ';
      for (size_t i = 0; i < t->length && o < sizeof c->next.reason - 1; i++) {
        unsigned char ch = t->txt[i];
        c->next.reason[o++] = ch < 0x20 || ch == 0x7f ? ' ' : (char)ch;
      }
    }
    c->next.reason[o] = 0;
    ares_free_data(txt);
  }
  finish_check(d, idx);
}

static void on_a(void *arg, int status, int timeouts, unsigned char *abuf, int alen) {
  struct lookup *l = arg;
  dnsbl *d = l->d;
  int idx = l->idx;
  (void)timeouts;
  if (status == ARES_EDESTRUCTION || status == ARES_ECANCELLED || d->closing) {
    free(l);
    return;
  }
  struct check *c = &d->checks[idx];
  if (status == ARES_ENOTFOUND || status == ARES_ENODATA) {
    c->next.state = ST_NOT_LISTED;
  } else if (status != ARES_SUCCESS) {
    c->next.state = ST_UNKNOWN;
    snprintf(c->next.error, sizeof c->next.error, "%s", dns_status_str(status));
  } else {
    struct ares_addrttl at[MAX_ANSWERS];
    int n = MAX_ANSWERS;
    int pr = ares_parse_a_reply(abuf, alen, NULL, at, &n);
    if (pr == ARES_ENODATA || (pr == ARES_SUCCESS && n == 0)) {
      c->next.state = ST_NOT_LISTED;
    } else if (pr != ARES_SUCCESS) {
      c->next.state = ST_UNKNOWN;
      snprintf(c->next.error, sizeof c->next.error, "unreadable answer: %s", ares_strerror(pr));
    } else {
      c->next.state = ST_LISTED;
      for (int i = 0; i < n; i++) {
        uint32_t a = ntohl(at[i].ipaddr.s_addr);
        inet_ntop(AF_INET, &at[i].ipaddr, c->next.answers[c->next.n_answers],
                  sizeof c->next.answers[0]);
        c->next.n_answers++;
        const char *why = dnsbl_special_answer(a);
        if (why && c->next.state != ST_UNKNOWN) {
          c->next.state = ST_UNKNOWN;
          if ((a >> 24) == 127)
            snprintf(c->next.error, sizeof c->next.error, "special answer %s", why);
          else
            snprintf(c->next.error, sizeof c->next.error, "special answer %s: %s",
                     c->next.answers[c->next.n_answers - 1], why);
        }
      }
    }
  }
  if (c->next.state == ST_LISTED) {
    /* The reason; the lookup goes on with the same record. */
    dns_query(d->dns, c->query, QTYPE_TXT, on_txt, l);
    return;
  }
  free(l);
  finish_check(d, idx);
}

static void start_check(dnsbl *d, int idx) {
  struct check *c = &d->checks[idx];
  c->next = (struct result){.state = ST_UNKNOWN};
  struct lookup *l = malloc(sizeof *l);
  if (!l) {
    snprintf(c->next.error, sizeof c->next.error, "out of memory");
    d->active++;
    finish_check(d, idx);
    return;
  }
  l->d = d;
  l->idx = idx;
  d->active++;
  dns_query(d->dns, c->query, QTYPE_A, on_a, l);
}

static void start_more(dnsbl *d) {
  while (!d->closing && d->active < MAX_ACTIVE && d->next_idx < d->n_checks)
    start_check(d, d->next_idx++);
}

static void answers_str(const char (*a)[16], int n, char *out, size_t outlen) {
  size_t o = 0;
  out[0] = 0;
  for (int i = 0; i < n && o < outlen; i++)
    o += (size_t)snprintf(out + o, outlen - o, "%s%s", i ? " " : "", a[i]);
}

/* The rows of one check's new state (and its change, if any), written by
 * the writer; the Slack row rides the same transaction when there is one. */
typedef struct state_write {
  store_req req;
  char target[256], zone[256], kind[8];
  enum state state, from;
  int changed;
  int64_t since, checked;
  char answers[MAX_ANSWERS * 16];
  char reason[REASON_MAX];
  char error[160];
} state_write;

static void bind_opt(sqlite3_stmt *st, int i, const char *s) {
  if (s && *s)
    sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
  else
    sqlite3_bind_null(st, i);
}

static int write_rows(void *arg, sqlite3 *db) {
  state_write *w = arg;
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(db,
                         "INSERT OR REPLACE INTO dnsbl_state (target, zone, kind, state, since, "
                         "checkedAt, answers, reason, error) VALUES (?,?,?,?,?,?,?,?,?)",
                         -1, &st, NULL) != SQLITE_OK)
    return SL_EDB;
  sqlite3_bind_text(st, 1, w->target, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, w->zone, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 3, w->kind, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 4, state_names[w->state], -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 5, w->since);
  sqlite3_bind_int64(st, 6, w->checked);
  bind_opt(st, 7, w->answers);
  bind_opt(st, 8, w->reason);
  bind_opt(st, 9, w->error);
  int rc = sqlite3_step(st);
  sqlite3_finalize(st);
  if (rc != SQLITE_DONE) return SL_EDB;
  if (!w->changed) return 0;
  if (sqlite3_prepare_v2(db,
                         "INSERT INTO dnsbl_changes (at, target, zone, fromState, toState, "
                         "answers, reason) VALUES (?,?,?,?,?,?,?)",
                         -1, &st, NULL) != SQLITE_OK)
    return SL_EDB;
  sqlite3_bind_int64(st, 1, w->checked);
  sqlite3_bind_text(st, 2, w->target, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 3, w->zone, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 4, w->from == ST_PENDING ? "" : state_names[w->from], -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 5, state_names[w->state], -1, SQLITE_STATIC);
  bind_opt(st, 6, w->answers);
  bind_opt(st, 7, w->reason);
  rc = sqlite3_step(st);
  sqlite3_finalize(st);
  return rc == SQLITE_DONE ? 0 : SL_EDB;
}

static int apply_write(store_req *r, sqlite3 *db) {
  r->result = STORE_STORED;
  return write_rows(r->ud, db);
}

static void on_write_done(store_req *r) {
  if (r->result < 0) log_kv(LOG_ERROR, "a DNSBL state could not be stored", NULL);
  free(r->ud);
}

static void remember_change(dnsbl *d, const state_write *w) {
  struct change *ch = &d->changes[d->changes_head];
  d->changes_head = (d->changes_head + 1) % MAX_CHANGES;
  if (d->n_changes < MAX_CHANGES) d->n_changes++;
  memset(ch, 0, sizeof *ch);
  ch->at = w->checked;
  snprintf(ch->target, sizeof ch->target, "%s", w->target);
  snprintf(ch->zone, sizeof ch->zone, "%s", w->zone);
  ch->from = w->from;
  ch->to = w->state;
  snprintf(ch->answers, sizeof ch->answers, "%s", w->answers);
  snprintf(ch->reason, sizeof ch->reason, "%s", w->reason);
}

/* Returns 0 when the write was queued, -1 when it was dropped. */
static int record(dnsbl *d, struct check *c, int changed, enum state from) {
  state_write *w = calloc(1, sizeof *w);
  if (!w) {
    log_kv(LOG_ERROR, "out of memory: a DNSBL state is not stored", NULL);
    return -1;
  }
  snprintf(w->target, sizeof w->target, "%s", c->target);
  snprintf(w->zone, sizeof w->zone, "%s", c->zone);
  snprintf(w->kind, sizeof w->kind, "%s", c->kind ? "domain" : "ip");
  w->state = c->cur.state;
  w->from = from;
  w->changed = changed;
  w->since = c->since;
  w->checked = c->checked;
  answers_str((const char(*)[16])c->cur.answers, c->cur.n_answers, w->answers, sizeof w->answers);
  snprintf(w->reason, sizeof w->reason, "%s", c->cur.reason);
  snprintf(w->error, sizeof w->error, "%s", c->cur.error);
  if (changed) remember_change(d, w);
  if (changed) {
    struct alert a = {.kind = ALERT_DNSBL,
                      .subject = c->target,
                      .zone = c->zone,
                      .flag = c->cur.state == ST_LISTED,
                      .answers = w->answers,
                      .reason = w->reason[0] ? w->reason : NULL};
    /* The rows ride the alert row's transaction; the outbox owns w. */
    int rc = alerts_send(d->ob, &a, write_rows, w, free);
    if (rc < 0)
      log_kv(LOG_ERROR, "a DNSBL alert could not be queued; the next round tries again", "target",
             c->target, "zone", c->zone, NULL);
    if (rc <= 0) return rc ? -1 : 0;
  }
  w->req.ud = w;
  w->req.apply = apply_write;
  w->req.cb = on_write_done;
  if (store_submit(d->st, &w->req)) {
    free(w);
    return -1;
  }
  return 0;
}

static void finish_check(dnsbl *d, int idx) {
  struct check *c = &d->checks[idx];
  int64_t now = util_now_ms();
  enum state was = c->cur.state;
  d->lookups[c->next.state]++;
  c->cur = c->next;
  c->checked = now;
  if (c->cur.state != was || !c->since) c->since = now;
  /* News: listed, first or after not listed; not listed after listed.
   * Unknown in between changes nothing. */
  int changed = 0;
  enum state from = c->definite;
  if (c->cur.state == ST_LISTED && c->definite != ST_LISTED) changed = 1;
  if (c->cur.state == ST_NOT_LISTED && c->definite == ST_LISTED) changed = 1;
  if (c->cur.state == ST_LISTED || c->cur.state == ST_NOT_LISTED) c->definite = c->cur.state;
  if (changed) {
    char ans[MAX_ANSWERS * 16];
    answers_str((const char(*)[16])c->cur.answers, c->cur.n_answers, ans, sizeof ans);
    if (c->cur.state == ST_LISTED)
      log_kv(LOG_WARN, "DNSBL: listed", "target", c->target, "zone", c->zone, "answers", ans,
             "reason", c->cur.reason, NULL);
    else
      log_kv(LOG_INFO, "DNSBL: no longer listed", "target", c->target, "zone", c->zone, NULL);
  } else if (c->cur.state == ST_UNKNOWN && was != ST_UNKNOWN) {
    log_kv(LOG_WARN, "DNSBL: lookup failed; state unknown", "target", c->target, "zone", c->zone,
           "query", c->query, "error", c->cur.error, NULL);
  }
  /* A change that could not be queued is news again next round. */
  if (record(d, c, changed, from) && changed) c->definite = from;
  d->active--;
  if (d->active == 0 && d->next_idx >= d->n_checks) {
    d->running = 0;
    d->last_run_ms = now;
    int listed = 0, unknown = 0;
    for (int i = 0; i < d->n_checks; i++) {
      listed += d->checks[i].cur.state == ST_LISTED;
      unknown += d->checks[i].cur.state == ST_UNKNOWN;
    }
    char nl[16], nu[16], nc[16];
    snprintf(nl, sizeof nl, "%d", listed);
    snprintf(nu, sizeof nu, "%d", unknown);
    snprintf(nc, sizeof nc, "%d", d->n_checks);
    log_kv(listed ? LOG_WARN : LOG_INFO, "DNSBL round done", "checks", nc, "listed", nl, "unknown",
           nu, NULL);
    return;
  }
  start_more(d);
}

static void start_round(dnsbl *d) {
  if (d->running || d->closing || !d->n_checks) return;
  d->running = 1;
  d->next_idx = 0;
  d->active = 0;
  start_more(d);
}

static void on_round_timer(uv_timer_t *t) {
  dnsbl *d = t->data;
  d->next_run_ms = util_now_ms() + d->interval_ms;
  start_round(d);
}

void dnsbl_start(dnsbl *d) {
  if (!d || !d->n_checks) return;
  d->next_run_ms = util_now_ms();
  uv_timer_start(&d->round_timer, on_round_timer, 0, (uint64_t)d->interval_ms);
  char n[16];
  snprintf(n, sizeof n, "%d", d->n_checks);
  char iv[32];
  snprintf(iv, sizeof iv, "%llds", (long long)(d->interval_ms / 1000));
  log_kv(LOG_INFO, "DNSBL watch started", "checks", n, "zones", d->zones_desc, "interval", iv,
         NULL);
}

int dnsbl_check_now(dnsbl *d) {
  if (!dnsbl_enabled(d)) return SL_EINVAL;
  if (d->running || d->closing) return 1;
  /* The next scheduled round comes an interval after this one. */
  uv_timer_again(&d->round_timer);
  d->next_run_ms = util_now_ms() + d->interval_ms;
  start_round(d);
  return 0;
}

void dnsbl_close(dnsbl *d) {
  if (!d || d->closing) return;
  d->closing = 1;
  uv_timer_stop(&d->round_timer);
  dns_close(d->dns); /* the lookups' callbacks see ARES_EDESTRUCTION */
  uv_close((uv_handle_t *)&d->round_timer, NULL);
}

void dnsbl_free(dnsbl *d) {
  if (!d) return;
  dns_free(d->dns);
  free(d->checks);
  free(d);
}

/* ---- stored state ------------------------------------------------------- */

static enum state state_of(const char *s) {
  for (int i = 0; s && i < 4; i++)
    if (strcmp(s, state_names[i]) == 0) return (enum state)i;
  return ST_PENDING;
}

static struct check *find(dnsbl *d, const char *target, const char *zone) {
  for (int i = 0; target && zone && i < d->n_checks; i++)
    if (strcmp(d->checks[i].target, target) == 0 && strcmp(d->checks[i].zone, zone) == 0)
      return &d->checks[i];
  return NULL;
}

static void copy_col(sqlite3_stmt *st, int col, char *out, size_t n) {
  const char *s = (const char *)sqlite3_column_text(st, col);
  snprintf(out, n, "%s", s ? s : "");
}

static void split_answers(const char *s, struct check *c) {
  c->cur.n_answers = 0;
  while (s && *s && c->cur.n_answers < MAX_ANSWERS) {
    size_t l = strcspn(s, " ");
    if (l && l < sizeof c->cur.answers[0]) {
      memcpy(c->cur.answers[c->cur.n_answers], s, l);
      c->cur.answers[c->cur.n_answers++][l] = 0;
    }
    s += l;
    while (*s == ' ') s++;
  }
}

int dnsbl_load(dnsbl *d, const char *db_path) {
  if (!dnsbl_enabled(d)) return 0;
  sqlite3 *db;
  if (readpool_open_conn(db_path, &db, NULL, 0)) return SL_EDB;
  int ok = 1;
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(db,
                         "SELECT target, zone, state, since, checkedAt, answers, reason, error "
                         "FROM dnsbl_state",
                         -1, &st, NULL) == SQLITE_OK) {
    while (sqlite3_step(st) == SQLITE_ROW) {
      struct check *c = find(d, (const char *)sqlite3_column_text(st, 0),
                             (const char *)sqlite3_column_text(st, 1));
      if (!c) continue;
      c->cur.state = state_of((const char *)sqlite3_column_text(st, 2));
      c->since = sqlite3_column_int64(st, 3);
      c->checked = sqlite3_column_int64(st, 4);
      split_answers((const char *)sqlite3_column_text(st, 5), c);
      copy_col(st, 6, c->cur.reason, sizeof c->cur.reason);
      copy_col(st, 7, c->cur.error, sizeof c->cur.error);
    }
    sqlite3_finalize(st);
  } else {
    ok = 0;
  }
  /* The latest change of each pair is what was told. */
  if (sqlite3_prepare_v2(db,
                         "SELECT target, zone, toState FROM dnsbl_changes WHERE id IN "
                         "(SELECT max(id) FROM dnsbl_changes GROUP BY target, zone)",
                         -1, &st, NULL) == SQLITE_OK) {
    while (sqlite3_step(st) == SQLITE_ROW) {
      struct check *c = find(d, (const char *)sqlite3_column_text(st, 0),
                             (const char *)sqlite3_column_text(st, 1));
      if (c) c->definite = state_of((const char *)sqlite3_column_text(st, 2));
    }
    sqlite3_finalize(st);
  } else {
    ok = 0;
  }
  /* A pair whose only answer so far was "not listed" told nothing, but
   * a later listing changes from not listed. */
  for (int i = 0; i < d->n_checks; i++)
    if (d->checks[i].definite == ST_PENDING && d->checks[i].cur.state == ST_NOT_LISTED)
      d->checks[i].definite = ST_NOT_LISTED;
  if (sqlite3_prepare_v2(db,
                         "SELECT at, target, zone, fromState, toState, answers, reason FROM "
                         "dnsbl_changes ORDER BY id DESC LIMIT 50",
                         -1, &st, NULL) == SQLITE_OK) {
    struct change tmp[MAX_CHANGES];
    int n = 0;
    while (n < MAX_CHANGES && sqlite3_step(st) == SQLITE_ROW) {
      struct change *ch = &tmp[n++];
      memset(ch, 0, sizeof *ch);
      ch->at = sqlite3_column_int64(st, 0);
      copy_col(st, 1, ch->target, sizeof ch->target);
      copy_col(st, 2, ch->zone, sizeof ch->zone);
      ch->from = state_of((const char *)sqlite3_column_text(st, 3));
      ch->to = state_of((const char *)sqlite3_column_text(st, 4));
      copy_col(st, 5, ch->answers, sizeof ch->answers);
      copy_col(st, 6, ch->reason, sizeof ch->reason);
    }
    sqlite3_finalize(st);
    /* oldest first into the ring */
    for (int i = n - 1; i >= 0; i--) {
      d->changes[d->changes_head] = tmp[i];
      d->changes_head = (d->changes_head + 1) % MAX_CHANGES;
      if (d->n_changes < MAX_CHANGES) d->n_changes++;
    }
  } else {
    ok = 0;
  }
  sqlite3_close(db);
  return ok ? 0 : SL_EDB;
}

/* ---- API and metrics ---------------------------------------------------- */

static void json_opt(buf *b, const char *s) {
  if (s && *s)
    buf_json_string(b, s);
  else
    buf_appends(b, "null");
}

static void json_answers(buf *b, const char (*a)[16], int n) {
  buf_appends(b, "[");
  for (int i = 0; i < n; i++) buf_printf(b, "%s\"%s\"", i ? "," : "", a[i]);
  buf_appends(b, "]");
}

void dnsbl_json(const dnsbl *d, buf *b) {
  int counts[4] = {0};
  for (int i = 0; i < d->n_checks; i++) counts[d->checks[i].cur.state]++;
  buf_printf(b, "{\"enabled\":%s,\"intervalSeconds\":%lld,\"running\":%s,\"lastRunAt\":",
             d->n_checks ? "true" : "false", (long long)(d->interval_ms / 1000),
             d->running ? "true" : "false");
  buf_json_time(b, d->last_run_ms);
  buf_appends(b, ",\"nextRunAt\":");
  buf_json_time(b, d->n_checks && !d->closing ? d->next_run_ms : 0);
  buf_printf(b,
             ",\"summary\":{\"listed\":%d,\"notListed\":%d,\"unknown\":%d,\"pending\":%d},"
             "\"checks\":[",
             counts[ST_LISTED], counts[ST_NOT_LISTED], counts[ST_UNKNOWN], counts[ST_PENDING]);
  for (int i = 0; i < d->n_checks; i++) {
    const struct check *c = &d->checks[i];
    buf_appends(b, i ? ",{\"target\":" : "{\"target\":");
    buf_json_string(b, c->target);
    buf_printf(b, ",\"kind\":\"%s\",\"zone\":", c->kind ? "domain" : "ip");
    buf_json_string(b, c->zone);
    buf_appends(b, ",\"query\":");
    buf_json_string(b, c->query);
    buf_printf(b, ",\"state\":\"%s\",\"since\":", state_names[c->cur.state]);
    buf_json_time(b, c->cur.state == ST_PENDING ? 0 : c->since);
    buf_appends(b, ",\"checkedAt\":");
    buf_json_time(b, c->checked);
    buf_appends(b, ",\"answers\":");
    json_answers(b, (const char(*)[16])c->cur.answers, c->cur.n_answers);
    buf_appends(b, ",\"reason\":");
    json_opt(b, c->cur.reason);
    buf_appends(b, ",\"error\":");
    json_opt(b, c->cur.state == ST_UNKNOWN ? c->cur.error : NULL);
    buf_appends(b, "}");
  }
  buf_appends(b, "],\"changes\":[");
  for (int i = 0; i < d->n_changes; i++) {
    const struct change *ch =
        &d->changes[(d->changes_head - 1 - i + 2 * MAX_CHANGES) % MAX_CHANGES];
    buf_appends(b, i ? ",{\"at\":" : "{\"at\":");
    buf_json_time(b, ch->at);
    buf_appends(b, ",\"target\":");
    buf_json_string(b, ch->target);
    buf_appends(b, ",\"zone\":");
    buf_json_string(b, ch->zone);
    buf_appends(b, ",\"from\":");
    json_opt(b, ch->from == ST_PENDING ? NULL : state_names[ch->from]);
    buf_printf(b, ",\"to\":\"%s\",\"answers\":[", state_names[ch->to]);
    const char *s = ch->answers;
    int k = 0;
    while (*s) {
      size_t l = strcspn(s, " ");
      buf_printf(b, "%s\"%.*s\"", k++ ? "," : "", (int)l, s);
      s += l;
      while (*s == ' ') s++;
    }
    buf_appends(b, "],\"reason\":");
    json_opt(b, ch->reason);
    buf_appends(b, "}");
  }
  buf_appends(b, "]}");
}

/* Prometheus label values escape backslash, quote and newline. */
static void label(buf *b, const char *s) {
  for (; *s; s++) {
    if (*s == '\\' || *s == '"')
      buf_printf(b, "\\%c", *s);
    else if (*s == '\n')
      buf_appends(b, "\\n");
    else
      buf_append(b, s, 1);
  }
}

int dnsbl_metrics(void *ud, buf *b) {
  const dnsbl *d = ud;
  if (!dnsbl_enabled(d)) return 0;
  static const char *const names[] = {"seslog_dnsbl_listed", "seslog_dnsbl_unknown"};
  static const char *const help[] = {
      "1 when the target is listed on the zone, 0 otherwise (not listed, unknown, not yet checked)",
      "1 when the last lookup of the target on the zone failed or was refused"};
  for (int k = 0; k < 2; k++) {
    buf_printf(b, "# HELP %s %s\n# TYPE %s gauge\n", names[k], help[k], names[k]);
    for (int i = 0; i < d->n_checks; i++) {
      const struct check *c = &d->checks[i];
      buf_printf(b, "%s{target=\"", names[k]);
      label(b, c->target);
      buf_appends(b, "\",zone=\"");
      label(b, c->zone);
      buf_printf(b, "\"} %d\n", c->cur.state == (k ? ST_UNKNOWN : ST_LISTED));
    }
  }
  buf_appends(b,
              "# HELP seslog_dnsbl_lookups_total DNSBL lookups since start, by result\n"
              "# TYPE seslog_dnsbl_lookups_total counter\n");
  for (int s = ST_NOT_LISTED; s <= ST_UNKNOWN; s++)
    buf_printf(b, "seslog_dnsbl_lookups_total{result=\"%s\"} %llu\n", state_names[s],
               (unsigned long long)d->lookups[s]);
  return 0;
}
