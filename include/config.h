/* config.h - command-line options from one table: flag, environment
 * variable, default, help. A flag wins over SESLOG_<NAME>, which wins over
 * the default. Every command describes its options with such a table. */
#ifndef SESLOG_CONFIG_H
#define SESLOG_CONFIG_H

#include <stddef.h>
#include <stdint.h>

enum opt_kind {
  OPT_STR,      /* char * */
  OPT_LIST,     /* struct opt_list; repeatable; env comma-separated */
  OPT_DOUBLE,   /* double */
  OPT_DURATION, /* int64_t milliseconds, "10m" */
  OPT_INT,      /* long, >= 0 */
  OPT_FLAG      /* int, set to 1 by the flag; env "1"/"true" */
};

struct opt_list {
  char **items; /* owned */
  size_t n;
};

struct opt {
  const char *name; /* "listen" for --listen and SESLOG_LISTEN */
  enum opt_kind kind;
  size_t offset;    /* into the command's options struct */
  const char *def;  /* default as text, or NULL */
  const char *arg;  /* placeholder in --help, e.g. "HOST:PORT" */
  const char *help; /* one line */
  int no_env;       /* 1: no environment variable */
};

/* Parses argv[*argi..] against table into target: defaults first, then the
 * environment, then flags, stopping at the first argument that is not an
 * option (or after "--"). On success *argi points at the first positional
 * argument. Returns 0, 1 when --help was given (help already printed to
 * stdout), or SL_EINVAL with one line already printed on stderr. */
int config_parse(const char *cmd, const char *usage, const struct opt *table, void *target,
                 int argc, char **argv, int *argi);

/* Prints the help text of a table to stdout. */
void config_help(const char *cmd, const char *usage, const struct opt *table);

/* Frees every string and list config_parse set in target. */
void config_free(const struct opt *table, void *target);

/* Splits "HOST:PORT" (HOST may be [v6]) into host (copied) and port.
 * Returns 0 or SL_EINVAL. */
int config_split_hostport(const char *s, char *host, size_t hostlen, int *port);

/* The default --sns-cert-dir: "<folder of db>/sns-certs". */
void config_default_cert_dir(const char *db, char *out, size_t n);

#endif
