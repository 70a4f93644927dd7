/* hostcheck.c - the Host and Origin rules (hostcheck.h). */
#include "hostcheck.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define NAME_MAX_LEN 255

/* Splits a Host value into its name (brackets dropped) and checks the port.
 * Returns 0, or -1 when malformed. */
static int split_host(const char *h, size_t len, char *name, size_t cap, int *bracketed) {
  const char *end = h + len;
  const char *name_end;
  *bracketed = 0;
  if (len && h[0] == '[') {
    const char *rb = memchr(h, ']', len);
    if (!rb) return -1;
    *bracketed = 1;
    name_end = rb;
    h++;
    if (rb + 1 < end && rb[1] != ':') return -1;
  } else {
    name_end = memchr(h, ':', len);
    if (!name_end) name_end = end;
  }
  const char *port = name_end + (*bracketed ? 1 : 0);
  if (port < end) {
    if (*port != ':' || port + 1 == end || end - port > 6) return -1;
    for (const char *p = port + 1; p < end; p++)
      if (*p < '0' || *p > '9') return -1;
  }
  size_t n = (size_t)(name_end - h);
  if (n == 0 || n >= cap) return -1;
  memcpy(name, h, n);
  name[n] = 0;
  if (n > 1 && name[n - 1] == '.') name[n - 1] = 0; /* "localhost." */
  return 0;
}

static int name_ok(const struct hostcheck *hc, const char *name, int bracketed) {
  unsigned char a[16];
  if (bracketed) return inet_pton(AF_INET6, name, a) == 1;
  for (const char *p = name; *p; p++) {
    char c = *p;
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
          c == '.' || c == '_'))
      return 0;
  }
  if (inet_pton(AF_INET, name, a) == 1) return 1;
  size_t n = strlen(name);
  if (strcasecmp(name, "localhost") == 0 ||
      (n > 10 && strcasecmp(name + n - 10, ".localhost") == 0))
    return 1;
  for (size_t i = 0; hc && i < hc->n; i++)
    if (hc->names[i] && strcasecmp(hc->names[i], name) == 0) return 1;
  return 0;
}

int hostcheck_host_ok(const struct hostcheck *hc, const char *host) {
  if (!host) return 1;
  char name[NAME_MAX_LEN + 1];
  int bracketed;
  if (split_host(host, strlen(host), name, sizeof name, &bracketed)) return 0;
  return name_ok(hc, name, bracketed);
}

/* The "host[:port]" part of "scheme://host[:port]/..." as a pointer and a
 * length; -1 when there is none. */
static int url_authority(const char *url, const char **at, size_t *len) {
  const char *s = strstr(url, "://");
  if (!s || s == url) return -1;
  for (const char *p = url; p < s; p++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '+' || *p == '-' ||
          *p == '.'))
      return -1;
  s += 3;
  size_t n = strcspn(s, "/?#");
  if (n == 0 || memchr(s, '@', n)) return -1; /* no user info */
  *at = s;
  *len = n;
  return 0;
}

int hostcheck_origin_ok(const struct hostcheck *hc, const char *origin) {
  if (!origin) return 1;
  const char *a;
  size_t n;
  if (url_authority(origin, &a, &n) || a[n] != 0) return 0; /* an Origin has no path */
  char name[NAME_MAX_LEN + 1];
  int bracketed;
  if (split_host(a, n, name, sizeof name, &bracketed)) return 0;
  return name_ok(hc, name, bracketed);
}

int hostcheck_url_host(const char *url, char *out, size_t outlen) {
  const char *a;
  size_t n;
  int bracketed;
  if (!url || url_authority(url, &a, &n)) return -1;
  return split_host(a, n, out, outlen, &bracketed);
}
