/* certcache.h - SNS signing certificates: memory, then the certificate
 * folder (a file named like the URL's last segment), then a fetch over
 * verified HTTPS. Concurrent requests for the same URL share one fetch;
 * failures are remembered for a while and fetches are limited in flight
 * and per minute.
 * Bounded: the least recently used certificates are forgotten first. */
#ifndef SESLOG_CERTCACHE_H
#define SESLOG_CERTCACHE_H

#include <uv.h>

#include "outbound.h"
#include "sns.h"

typedef struct certcache certcache;

int certcache_new(outbound *ob, const char *dir, int max_entries, certcache **out);
void certcache_free(certcache *c);

/* The certificate of url from memory or the folder, or NULL. url must
 * have passed sns_url_allowed(url, 1). The pointer is valid until control
 * returns to the loop. */
const sns_cert *certcache_lookup(certcache *c, const char *url);

/* Called once per certcache_fetch: rc 0 and cert (valid during the call),
 * or a negative code and a sentence. */
typedef void (*certcache_cb)(void *ud, int rc, const sns_cert *cert, const char *why);

/* Fetches url (or joins a fetch under way). cb runs later on the loop,
 * never inside this call. Returns 0, or a negative code without cb:
 * SL_ECERT when url failed a moment ago (5 s, doubling per failure in a
 * row up to 5 min), SL_EBUSY when 4 fetches are under way or 10 started
 * this minute (each such refusal counted), SL_ENOMEM. */
int certcache_fetch(certcache *c, const char *url, certcache_cb cb, void *ud);

/* Fetches made so far (for tests and /metrics). */
long certcache_fetches(const certcache *c);

/* Fetches refused so far by the limits of certcache_fetch. */
long certcache_refused(const certcache *c);

#endif
