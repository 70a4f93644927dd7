/* hostcheck.h - the Host and Origin rules against DNS rebinding.
 *
 * A web page can rebind its own name to 127.0.0.1 and then read seslog's
 * API as same-origin: the browser still sends that name in Host. A request
 * is answered only when its Host names this server: a loopback name
 * (localhost, *.localhost), an IP address (a page cannot rebind an address),
 * or one of the allowed names (--allowed-host, the host of --public-url, the
 * --listen host). A state-changing request whose Origin is another site is
 * refused too (a form or fetch from a foreign page). */
#ifndef SESLOG_HOSTCHECK_H
#define SESLOG_HOSTCHECK_H

#include <stddef.h>

/* The names allowed besides loopback names and addresses, compared without
 * case; borrowed, not copied. */
struct hostcheck {
  char *const *names;
  size_t n;
};

/* 1 when the Host header value ("name", "name:port", "[v6]:port") names
 * this server; 0 otherwise (also when it is malformed). NULL (no Host, as
 * HTTP/1.0 allows) is 1: browsers always send one. */
int hostcheck_host_ok(const struct hostcheck *hc, const char *host);

/* 1 when an Origin header ("scheme://host[:port]") is absent or names this
 * server by the rule of hostcheck_host_ok; "null" and malformed ones are 0. */
int hostcheck_origin_ok(const struct hostcheck *hc, const char *origin);

/* Copies the host of an http(s) URL ("https://name:port/path") into out
 * (without port or brackets). Returns 0, or -1 when there is none or it does
 * not fit. */
int hostcheck_url_host(const char *url, char *out, size_t outlen);

#endif
