/* config.c - one table of options per command: parsing and --help. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "util.h"

#define FIELD(target, o, type) ((type *)((char *)(target) + (o)->offset))

static void env_name(const struct opt *o, char *out, size_t n) {
  size_t i = 0, j = 0;
  const char *pre = "SESLOG_";
  for (; pre[j] && i + 1 < n; j++) out[i++] = pre[j];
  for (j = 0; o->name[j] && i + 1 < n; j++) {
    char c = o->name[j];
    out[i++] = c == '-' ? '_' : (c >= 'a' && c <= 'z') ? (char)(c - 32) : c;
  }
  out[i] = 0;
}

static int list_add(struct opt_list *l, const char *v, size_t len) {
  char **items = realloc(l->items, (l->n + 1) * sizeof *items);
  if (!items) return SL_ENOMEM;
  l->items = items;
  if (!(items[l->n] = util_strndup(v, len))) return SL_ENOMEM;
  l->n++;
  return 0;
}

static void list_clear(struct opt_list *l) {
  for (size_t i = 0; i < l->n; i++) free(l->items[i]);
  free(l->items);
  l->items = NULL;
  l->n = 0;
}

/* Stores text v into the option's field; from_env splits lists on commas.
 * On a bad value prints one line naming the source and returns SL_EINVAL. */
static int set_value(const char *cmd, const struct opt *o, void *target, const char *v,
                     const char *source) {
  char *end;
  switch (o->kind) {
    case OPT_STR: {
      char **p = FIELD(target, o, char *);
      free(*p);
      *p = strdup(v);
      return *p ? 0 : SL_ENOMEM;
    }
    case OPT_LIST: {
      struct opt_list *l = FIELD(target, o, struct opt_list);
      if (strncmp(source, "SESLOG_", 7) == 0 || strcmp(source, "default") == 0) {
        const char *s = v;
        while (*s) {
          const char *c = strchr(s, ',');
          size_t n = c ? (size_t)(c - s) : strlen(s);
          if (n && list_add(l, s, n)) return SL_ENOMEM;
          s += n + (c ? 1 : 0);
        }
        return 0;
      }
      return list_add(l, v, strlen(v));
    }
    case OPT_DOUBLE: {
      errno = 0;
      double d = strtod(v, &end);
      if (errno || end == v || *end || d < 0) break;
      *FIELD(target, o, double) = d;
      return 0;
    }
    case OPT_DURATION: {
      int64_t ms;
      if (util_parse_duration(v, &ms)) break;
      *FIELD(target, o, int64_t) = ms;
      return 0;
    }
    case OPT_INT: {
      errno = 0;
      long n = strtol(v, &end, 10);
      if (errno || end == v || *end || n < 0) break;
      *FIELD(target, o, long) = n;
      return 0;
    }
    case OPT_FLAG:
      if (!strcmp(v, "1") || !strcmp(v, "true") || !strcmp(v, "yes")) {
        *FIELD(target, o, int) = 1;
        return 0;
      }
      if (!strcmp(v, "0") || !strcmp(v, "false") || !strcmp(v, "no") || !*v) {
        *FIELD(target, o, int) = 0;
        return 0;
      }
      break;
  }
  static const char *want[] = {"",
                               "",
                               "a non-negative number",
                               "a duration like 30s, 10m, 24h or 7d",
                               "a non-negative integer",
                               "true or false"};
  fprintf(stderr, "seslog %s: %s%s has a bad value \"%s\": expected %s\n", cmd,
          strncmp(source, "SESLOG_", 7) == 0 ? "" : "--", source, v, want[o->kind]);
  return SL_EINVAL;
}

void config_help(const char *cmd, const char *usage, const struct opt *table) {
  printf("%s\n\nOptions (each also from the environment variable shown):\n", usage);
  for (const struct opt *o = table; o->name; o++) {
    char flag[96], env[64];
    snprintf(flag, sizeof flag, "--%s%s%s", o->name, o->arg ? " " : "", o->arg ? o->arg : "");
    env_name(o, env, sizeof env);
    printf("  %-34s %s", flag, o->help);
    if (o->def && *o->def) printf(" [%s]", o->def);
    if (!o->no_env) printf(" (%s)", env);
    printf("\n");
  }
  printf("  %-34s %s\n", "--help", "show this help");
  (void)cmd;
}

int config_parse(const char *cmd, const char *usage, const struct opt *table, void *target,
                 int argc, char **argv, int *argi) {
  for (const struct opt *o = table; o->name; o++)
    if (o->def && set_value(cmd, o, target, o->def, "default")) return SL_EINVAL;
  for (const struct opt *o = table; o->name; o++) {
    if (o->no_env) continue;
    char env[64];
    env_name(o, env, sizeof env);
    const char *v = getenv(env);
    if (!v) continue;
    if (o->kind == OPT_LIST) list_clear(FIELD(target, o, struct opt_list));
    if (set_value(cmd, o, target, v, env)) return SL_EINVAL;
  }
  /* A flag given on the command line replaces a list from the environment
   * or the default instead of adding to it. */
  unsigned char flagged_list[64] = {0};
  int i = *argi;
  while (i < argc) {
    const char *a = argv[i];
    if (strcmp(a, "--") == 0) {
      i++;
      break;
    }
    if (a[0] != '-' || a[1] == 0) break; /* "-" is stdin, a positional */
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      config_help(cmd, usage, table);
      return 1;
    }
    if (a[1] != '-') {
      fprintf(stderr, "seslog %s: unknown option %s (see seslog %s --help)\n", cmd, a, cmd);
      return SL_EINVAL;
    }
    const char *name = a + 2, *eq = strchr(name, '=');
    size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
    const struct opt *o = table;
    for (; o->name; o++)
      if (strlen(o->name) == nlen && strncmp(o->name, name, nlen) == 0) break;
    if (!o->name) {
      fprintf(stderr, "seslog %s: unknown option --%.*s (see seslog %s --help)\n", cmd, (int)nlen,
              name, cmd);
      return SL_EINVAL;
    }
    const char *v;
    if (eq) {
      v = eq + 1;
    } else if (o->kind == OPT_FLAG) {
      v = "1";
    } else if (i + 1 < argc) {
      v = argv[++i];
    } else {
      fprintf(stderr, "seslog %s: --%s needs a value%s%s\n", cmd, o->name, o->arg ? " " : "",
              o->arg ? o->arg : "");
      return SL_EINVAL;
    }
    size_t idx = (size_t)(o - table);
    if (o->kind == OPT_LIST && idx < sizeof flagged_list && !flagged_list[idx]) {
      list_clear(FIELD(target, o, struct opt_list));
      flagged_list[idx] = 1;
    }
    if (set_value(cmd, o, target, v, o->name)) return SL_EINVAL;
    i++;
  }
  *argi = i;
  return 0;
}

void config_free(const struct opt *table, void *target) {
  for (const struct opt *o = table; o->name; o++) {
    if (o->kind == OPT_STR) {
      char **p = FIELD(target, o, char *);
      free(*p);
      *p = NULL;
    } else if (o->kind == OPT_LIST) {
      list_clear(FIELD(target, o, struct opt_list));
    }
  }
}

int config_split_hostport(const char *s, char *host, size_t hostlen, int *port) {
  const char *colon;
  const char *h = s;
  size_t hl;
  if (*s == '[') {
    const char *close = strchr(s, ']');
    if (!close || close[1] != ':') return SL_EINVAL;
    h = s + 1;
    hl = (size_t)(close - h);
    colon = close + 1;
  } else {
    colon = strrchr(s, ':');
    if (!colon) return SL_EINVAL;
    hl = (size_t)(colon - s);
  }
  if (hl == 0 || hl >= hostlen) return SL_EINVAL;
  char *end;
  errno = 0;
  long p = strtol(colon + 1, &end, 10);
  if (errno || end == colon + 1 || *end || p < 0 || p > 65535) return SL_EINVAL;
  memcpy(host, h, hl);
  host[hl] = 0;
  *port = (int)p;
  return 0;
}

void config_default_cert_dir(const char *db, char *out, size_t n) {
  const char *slash = strrchr(db, '/');
  if (!slash)
    snprintf(out, n, "sns-certs");
  else if (slash == db)
    snprintf(out, n, "/sns-certs");
  else
    snprintf(out, n, "%.*s/sns-certs", (int)(slash - db), db);
}
