/* dnsbl.h - the DNSBL watch: is a sending IP or domain blocklisted?
 *
 * Every interval each watched target is looked up in each zone of its
 * kind (IPs in IP zones, domains in domain zones) through dns.h (c-ares
 * driven by the loop).
 * An A answer in 127.0.0.0/8 means listed, and a TXT query of the same
 * name gives the reason; NXDOMAIN or no A record means not listed; the
 * special answers zones give for refused, misrouted or over-quota queries,
 * REFUSED, SERVFAIL and timeouts mean unknown, never listed.
 *
 * Each (target, zone) keeps its state, since when, the answers and the
 * reason (table dnsbl_state). A change between listed and not listed is
 * stored (dnsbl_changes) and announced (alerts_send, through the outbox) in
 * one transaction; unknown in between is not news. State is served by
 * GET /api/dnsbl and /metrics. */
#ifndef SESLOG_DNSBL_H
#define SESLOG_DNSBL_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "outbox.h"
#include "store.h"
#include "util.h"

enum dnsbl_kind { DNSBL_IP = 0, DNSBL_DOMAIN = 1 };

struct dnsbl_opts {
  char **ips; /* --dnsbl-ip */
  int n_ips;
  char **domains; /* --dnsbl-domain */
  int n_domains;
  char **zones; /* --dnsbl-zone: "ip:Z", "domain:Z" or "Z"; none: the defaults */
  int n_zones;
  const char *servers; /* --dns-server "HOST:PORT,..." or NULL: the system's */
  int64_t interval_ms; /* between rounds */
  int64_t timeout_ms;  /* per try */
};

typedef struct dnsbl dnsbl;

/* Checks the options and builds the watch (no lookups yet), before the
 * database is opened. On a bad value returns SL_EINVAL with a message
 * naming the option in err. With nothing to watch the result is a
 * disabled watch that answers the API. Alerts go through ob (alerts_send). */
int dnsbl_new(uv_loop_t *loop, outbox *ob, const struct dnsbl_opts *opts, dnsbl **out, char *err,
              size_t errlen);
/* The store its states are written to; before dnsbl_start. */
void dnsbl_attach(dnsbl *d, store *st);
void dnsbl_free(dnsbl *d);

/* Reads the stored states and latest changes (at start, before the
 * writer runs), so a restart keeps "since" and repeats no alert. */
int dnsbl_load(dnsbl *d, const char *db_path);

void dnsbl_start(dnsbl *d); /* the first round now, then every interval */
void dnsbl_close(dnsbl *d); /* cancels lookups, closes the handles */

int dnsbl_enabled(const dnsbl *d);

/* Starts a round now: 0 started, 1 one is running already, SL_EINVAL
 * when nothing is watched. */
int dnsbl_check_now(dnsbl *d);

/* Appends the JSON of GET /api/dnsbl: the states and the recent changes. */
void dnsbl_json(const dnsbl *d, buf *b);

/* The seslog_dnsbl_* lines of /metrics. */
int dnsbl_metrics(void *ud, buf *b); /* a metrics_source_fn: ud is the dnsbl (or NULL) */

/* Pure helpers, for the tests. */

/* The name to query for target in zone: reversed octets (IPv4), reversed
 * nibbles (IPv6), the domain itself. 0, or -1 when it does not fit. */
int dnsbl_query_name(const char *target, enum dnsbl_kind kind, const char *zone, char *out,
                     size_t outlen);

/* Why an A answer (host byte order) is not a listing: a static text, or
 * NULL when it is an ordinary listing code in 127.0.0.0/8. */
const char *dnsbl_special_answer(uint32_t addr);

/* Normalizes a domain or zone name in place (lower case, no trailing
 * dot) and checks its syntax; 0 when valid. */
int dnsbl_check_name(char *name);

#endif
