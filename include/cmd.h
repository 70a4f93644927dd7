/* cmd.h - the commands of the seslog binary; main.c dispatches to them.
 * Each returns the process exit status: 0 success, 1 partial failure
 * (import rejected something), 2 usage or setup error. */
#ifndef SESLOG_CMD_H
#define SESLOG_CMD_H

#include <stddef.h>

int cmd_serve(int argc, char **argv, int argi);
int cmd_import(int argc, char **argv, int argi);
int cmd_suppression(int argc, char **argv, int argi);
int cmd_query(int argc, char **argv, int argi);
int cmd_simulate(int argc, char **argv, int argi);
int cmd_vacuum(int argc, char **argv, int argi);

struct opt;
/* serve's option table (config.h) and the size of the struct it fills:
 * for tests that parse every option the way cmd_serve does. */
const struct opt *serve_options(size_t *target_size);

/* The default database path: $SESLOG_DB, else ./data/seslog.db. */
#define SESLOG_DEFAULT_DB "./data/seslog.db"

#endif
