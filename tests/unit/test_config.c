/* test_config.c - every option of `seslog serve`, driven by its own table:
 * the default parses, a good value lands in its field (as a flag, as
 * --name=value and from SESLOG_NAME), and a bad or missing value is one
 * error line naming the option and what it expects. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd.h"
#include "config.h"
#include "error.h"
#include "unit.h"

#define FIELD(target, o, type) ((type *)((char *)(target) + (o)->offset))

/* SESLOG_<NAME>, as config.c spells it. */
static void env_of(const struct opt *o, char *out, size_t n) {
  size_t i = snprintf(out, n, "SESLOG_");
  for (const char *c = o->name; *c && i + 1 < n; c++)
    out[i++] = *c == '-' ? '_' : (*c >= 'a' && *c <= 'z') ? (char)(*c - 32) : *c;
  out[i] = 0;
}

/* config_parse over args (without the command name), stderr captured in
 * err. Returns config_parse's result; *rest gets the first positional. */
static int parse(const struct opt *table, void *target, int argc, const char **args, char *err,
                 size_t errlen, int *rest) {
  char *argv[16];
  for (int i = 0; i < argc; i++) argv[i] = (char *)args[i];
  fflush(stderr);
  FILE *tmp = tmpfile();
  int saved = dup(2);
  if (!tmp || saved < 0) return -100;
  dup2(fileno(tmp), 2);
  int argi = 0;
  int rc = config_parse("serve", "usage", table, target, argc, argv, &argi);
  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  rewind(tmp);
  size_t n = fread(err, 1, errlen - 1, tmp);
  err[n] = 0;
  fclose(tmp);
  if (rest) *rest = argi;
  return rc;
}

/* Clears every SESLOG_<NAME> of the table so the run's environment cannot
 * change the results. */
static void clear_env(const struct opt *table) {
  char env[96];
  for (const struct opt *o = table; o->name; o++) {
    env_of(o, env, sizeof env);
    unsetenv(env);
  }
}

/* A good value of each kind, and what the field must then hold. */
static const char *good_value(enum opt_kind k) {
  static const char *v[] = {"some text", "one", "2.5", "90s", "42", "true"};
  return v[k];
}

static int field_is_good(const struct opt *o, void *t) {
  switch (o->kind) {
    case OPT_STR: ASSERT_STR_EQ(*FIELD(t, o, char *), "some text"); break;
    case OPT_LIST:
      ASSERT_INT_EQ(FIELD(t, o, struct opt_list)->n, 1);
      ASSERT_STR_EQ(FIELD(t, o, struct opt_list)->items[0], "one");
      break;
    case OPT_DOUBLE: ASSERT_TRUE(*FIELD(t, o, double) == 2.5); break;
    case OPT_DURATION: ASSERT_INT_EQ(*FIELD(t, o, int64_t), 90000); break;
    case OPT_INT: ASSERT_INT_EQ(*FIELD(t, o, long), 42); break;
    case OPT_FLAG: ASSERT_INT_EQ(*FIELD(t, o, int), 1); break;
  }
  return 0;
}

/* The bad value of each kind and the end of its error line; NULL where
 * any text is valid. */
static const char *bad_value(enum opt_kind k, const char **expect) {
  static const char *v[] = {NULL, NULL, "-1", "10 parsecs", "4x", "maybe"};
  static const char *e[] = {NULL,
                            NULL,
                            "a non-negative number",
                            "a duration like 30s, 10m, 24h or 7d",
                            "a non-negative integer",
                            "true or false"};
  *expect = e[k];
  return v[k];
}

static const struct opt *table_of(size_t *size) {
  const struct opt *t = serve_options(size);
  clear_env(t);
  return t;
}

static int t_defaults(void) {
  size_t size, n = 0;
  const struct opt *table = table_of(&size);
  void *t = calloc(1, size);
  char err[512];
  int rest = -1;
  ASSERT_INT_EQ(parse(table, t, 0, NULL, err, sizeof err, &rest), 0);
  ASSERT_STR_EQ(err, "");
  ASSERT_INT_EQ(rest, 0);
  for (const struct opt *o = table; o->name; o++, n++)
    if (o->def && o->kind == OPT_STR) ASSERT_STR_EQ(*FIELD(t, o, char *), o->def);
  ASSERT_TRUE(n >= 40); /* the table is the serve table, whole */
  config_free(table, t);
  free(t);
  return 0;
}

/* Each option given a good value three ways: "--name value" (a flag alone),
 * "--name=value", and SESLOG_NAME. */
static int t_every_option_parses(void) {
  size_t size;
  const struct opt *table = table_of(&size);
  char err[512], flag[96], env[96];
  for (const struct opt *o = table; o->name; o++) {
    for (int way = 0; way < 3; way++) {
      void *t = calloc(1, size);
      const char *v = good_value(o->kind);
      const char *args[3];
      int argc = 0;
      if (way == 0) {
        snprintf(flag, sizeof flag, "--%s", o->name);
        args[argc++] = flag;
        if (o->kind != OPT_FLAG) args[argc++] = v;
      } else if (way == 1) {
        snprintf(flag, sizeof flag, "--%s=%s", o->name, v);
        args[argc++] = flag;
      } else if (!o->no_env) {
        env_of(o, env, sizeof env);
        setenv(env, v, 1);
      }
      args[argc++] = "positional";
      int rest = -1;
      int rc = parse(table, t, argc, args, err, sizeof err, &rest);
      if (way == 2 && !o->no_env) unsetenv(env);
      if (rc) fprintf(stderr, "    option --%s, way %d: %s", o->name, way, err);
      ASSERT_INT_EQ(rc, 0);
      ASSERT_STR_EQ(err, "");
      ASSERT_INT_EQ(rest, argc - 1);
      if (way < 2 || !o->no_env) {
        if (field_is_good(o, t)) {
          fprintf(stderr, "    option --%s, way %d\n", o->name, way);
          return 1;
        }
      }
      config_free(table, t);
      free(t);
    }
  }
  return 0;
}

/* A bad value is one line: who gave it (--name or SESLOG_NAME), the value,
 * what was expected; and the parse fails. */
static int t_every_bad_value(void) {
  size_t size, checked = 0;
  const struct opt *table = table_of(&size);
  char err[512], flag[96], env[96], want[512];
  for (const struct opt *o = table; o->name; o++) {
    const char *expect, *bad = bad_value(o->kind, &expect);
    if (!bad) continue;
    void *t = calloc(1, size);
    snprintf(flag, sizeof flag, "--%s=%s", o->name, bad);
    const char *args[] = {flag};
    ASSERT_INT_EQ(parse(table, t, 1, args, err, sizeof err, NULL), SL_EINVAL);
    snprintf(want, sizeof want, "seslog serve: --%s has a bad value \"%s\": expected %s\n", o->name,
             bad, expect);
    ASSERT_STR_EQ(err, want);
    config_free(table, t);
    if (!o->no_env) {
      env_of(o, env, sizeof env);
      setenv(env, bad, 1);
      int rc = parse(table, t, 0, NULL, err, sizeof err, NULL);
      unsetenv(env);
      ASSERT_INT_EQ(rc, SL_EINVAL);
      snprintf(want, sizeof want, "seslog serve: %s has a bad value \"%s\": expected %s\n", env,
               bad, expect);
      ASSERT_STR_EQ(err, want);
      config_free(table, t);
    }
    free(t);
    checked++;
  }
  ASSERT_TRUE(checked >= 20);
  return 0;
}

/* An option that takes a value, given last without one. */
static int t_every_missing_value(void) {
  size_t size;
  const struct opt *table = table_of(&size);
  char err[512], flag[96], want[512];
  for (const struct opt *o = table; o->name; o++) {
    if (o->kind == OPT_FLAG) continue;
    void *t = calloc(1, size);
    snprintf(flag, sizeof flag, "--%s", o->name);
    const char *args[] = {flag};
    ASSERT_INT_EQ(parse(table, t, 1, args, err, sizeof err, NULL), SL_EINVAL);
    snprintf(want, sizeof want, "seslog serve: --%s needs a value%s%s\n", o->name,
             o->arg ? " " : "", o->arg ? o->arg : "");
    ASSERT_STR_EQ(err, want);
    config_free(table, t);
    free(t);
  }
  return 0;
}

static int t_unknown_option(void) {
  size_t size;
  const struct opt *table = table_of(&size);
  void *t = calloc(1, size);
  char err[512];
  const char *a1[] = {"--no-such-thing=1"};
  ASSERT_INT_EQ(parse(table, t, 1, a1, err, sizeof err, NULL), SL_EINVAL);
  ASSERT_STR_EQ(err, "seslog serve: unknown option --no-such-thing (see seslog serve --help)\n");
  config_free(table, t);
  const char *a2[] = {"-x"};
  ASSERT_INT_EQ(parse(table, t, 1, a2, err, sizeof err, NULL), SL_EINVAL);
  ASSERT_STR_EQ(err, "seslog serve: unknown option -x (see seslog serve --help)\n");
  config_free(table, t);
  /* "--" ends the options, "-" is a positional (stdin) */
  const char *a3[] = {"--", "--listen"};
  int rest = -1;
  ASSERT_INT_EQ(parse(table, t, 2, a3, err, sizeof err, &rest), 0);
  ASSERT_INT_EQ(rest, 1);
  config_free(table, t);
  const char *a4[] = {"-"};
  ASSERT_INT_EQ(parse(table, t, 1, a4, err, sizeof err, &rest), 0);
  ASSERT_INT_EQ(rest, 0);
  config_free(table, t);
  free(t);
  return 0;
}

/* Lists: the environment splits on commas; flags repeat and replace the
 * environment's list instead of adding to it. */
static int t_lists(void) {
  size_t size, n = 0;
  const struct opt *table = table_of(&size);
  char err[512], flag[96], env[96];
  for (const struct opt *o = table; o->name; o++) {
    if (o->kind != OPT_LIST) continue;
    n++;
    void *t = calloc(1, size);
    struct opt_list *l = FIELD(t, o, struct opt_list);
    if (!o->no_env) {
      env_of(o, env, sizeof env);
      setenv(env, "a,,b", 1);
      ASSERT_INT_EQ(parse(table, t, 0, NULL, err, sizeof err, NULL), 0);
      ASSERT_INT_EQ(l->n, 2);
      ASSERT_STR_EQ(l->items[1], "b");
      config_free(table, t);
    }
    snprintf(flag, sizeof flag, "--%s", o->name);
    const char *args[] = {flag, "x,y", flag, "z"};
    ASSERT_INT_EQ(parse(table, t, 4, args, err, sizeof err, NULL), 0);
    if (!o->no_env) unsetenv(env);
    ASSERT_INT_EQ(l->n, 2);
    ASSERT_STR_EQ(l->items[0], "x,y"); /* a flag's value is one item, commas and all */
    ASSERT_STR_EQ(l->items[1], "z");
    config_free(table, t);
    free(t);
  }
  ASSERT_TRUE(n >= 3);
  return 0;
}

static int t_hostport(void) {
  char host[64];
  int port = -1;
  ASSERT_INT_EQ(config_split_hostport("127.0.0.1:8490", host, sizeof host, &port), 0);
  ASSERT_STR_EQ(host, "127.0.0.1");
  ASSERT_INT_EQ(port, 8490);
  ASSERT_INT_EQ(config_split_hostport("[::1]:0", host, sizeof host, &port), 0);
  ASSERT_STR_EQ(host, "::1");
  ASSERT_INT_EQ(port, 0);
  const char *bad[] = {"nohost", ":80", "h:", "h:65536", "h:-1", "[::1]80", "h:8x"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    ASSERT_INT_EQ(config_split_hostport(bad[i], host, sizeof host, &port), SL_EINVAL);
  return 0;
}

const struct unit_test config_tests[] = {
    {"defaults", t_defaults},
    {"every_option_parses", t_every_option_parses},
    {"every_bad_value", t_every_bad_value},
    {"every_missing_value", t_every_missing_value},
    {"unknown_option", t_unknown_option},
    {"lists", t_lists},
    {"hostport", t_hostport},
    {0},
};
