/* route.c - matching a request against the route table. */
#include "route.h"

#include <string.h>

int route_is_read_method(const char *method) {
  return strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
}

/* The rest of path after pattern when it matches, else NULL. */
static const char *pattern_tail(const char *pattern, const char *path) {
  size_t n = strlen(pattern);
  if (n && pattern[n - 1] == '*') return strncmp(path, pattern, n - 1) == 0 ? path + n - 1 : NULL;
  return strcmp(path, pattern) == 0 ? path + n : NULL;
}

static int method_ok(const char *route_method, const char *method) {
  if (!route_method) return 1;
  if (strcmp(route_method, "GET") == 0) return route_is_read_method(method);
  return strcmp(route_method, method) == 0;
}

int route_match(const struct route *table, size_t n, const char *method, const char *path,
                const struct route **out, const char **tail) {
  const struct route *owner = NULL; /* the first route whose pattern matches */
  for (size_t i = 0; i < n; i++) {
    if (owner ? strcmp(table[i].pattern, owner->pattern) != 0
              : !pattern_tail(table[i].pattern, path))
      continue;
    if (!owner) owner = &table[i];
    if (method_ok(table[i].method, method)) {
      *out = &table[i];
      *tail = pattern_tail(table[i].pattern, path);
      return 200;
    }
  }
  *out = owner;
  *tail = NULL;
  return owner ? 405 : 404;
}
