/* certcache.h - SNS signing certificates: memory, then the certificate
 * folder (a file named like the URL's last segment), then a fetch over
 * verified HTTPS. Concurrent requests for the same URL share one fetch.
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
 * never inside this call. Returns 0 or a negative code without cb. */
int certcache_fetch(certcache *c, const char *url, certcache_cb cb, void *ud);

/* Fetches made so far (for tests and /metrics). */
long certcache_fetches(const certcache *c);

#endif
