/* dns.h - DNS queries through c-ares, driven by the libuv loop (a uv_poll
 * per socket c-ares opens, one uv_timer for its timeouts), so no lookup
 * ever blocks the loop. A peer of outbound.c, for anything that needs DNS;
 * the caller parses the answers with c-ares's parsers. */
#ifndef SESLOG_DNS_H
#define SESLOG_DNS_H

#include <stdint.h>
#include <uv.h>

typedef struct dns dns;

struct dns_opts {
  const char *servers; /* "HOST[:PORT],..." (c-ares's CSV), or NULL: the system's */
  int64_t timeout_ms;  /* of one try */
  int tries;           /* tries of one query, >= 1 */
  /* 1: a REFUSED or SERVFAIL answer is the answer, handed to the caller,
   * not a sign of a bad server to retry elsewhere */
  int keep_failures;
};

/* The answer of one query, on the loop: status an ARES_* code (ARES_SUCCESS
 * with the raw answer abuf/alen; ARES_EDESTRUCTION when dns_close
 * cancelled it). Like c-ares's ares_callback. */
typedef void (*dns_cb)(void *ud, int status, int timeouts, unsigned char *abuf, int alen);

/* A resolver on loop. Returns 0, or SL_EINVAL with err (c-ares could not
 * start, or servers is unusable); nothing is left to close then. */
int dns_new(uv_loop_t *loop, const struct dns_opts *o, dns **out, char *err, size_t errlen);

/* Queries name (class IN, type: 1 A, 16 TXT, ...); cb is called exactly
 * once, on the loop, perhaps from inside another query's callback. */
void dns_query(dns *r, const char *name, int type, dns_cb cb, void *ud);

/* Cancels every query (their callbacks run now with ARES_EDESTRUCTION)
 * and closes the handles; free with dns_free after the loop has run the
 * close callbacks. NULL is a no-op. */
void dns_close(dns *r);

/* Frees r (closed, or never started on the loop). NULL is a no-op. */
void dns_free(dns *r);

/* A short name of a failure status: "timeout", "refused", "servfail",
 * "connection refused", else c-ares's sentence. */
const char *dns_status_str(int status);

#endif
