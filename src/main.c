/* main.c - the seslog binary: picks a command. */
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "arena.h"
#include "cmd.h"
#include "version.h"

static const char usage[] =
    "seslog - receive, verify, store and watch Amazon SES events delivered by SNS\n"
    "\n"
    "Usage: seslog [COMMAND] [OPTIONS]\n"
    "\n"
    "Commands:\n"
    "  serve              run the server (the default when no command is given)\n"
    "  import PATH...     load events from files and folders (JSON, gzip, Firehose, logs; '-' is "
    "stdin)\n"
    "  query              print stored events that match filters (table, json, jsonl, csv)\n"
    "  suppression list|check|add|remove|export|import\n"
    "                     the suppression list: show, check, change, SES bulk CSV\n"
    "  simulate           post realistic signed SES traffic to a running server\n"
    "  vacuum             compact the database offline (after retention deleted events)\n"
    "  version            print the version\n"
    "\n"
    "Every command takes --db PATH (env SESLOG_DB, default ./data/seslog.db) and --help.\n"
    "Quick start: seslog serve, then point an SNS HTTPS subscription at https://<host>/sns.\n";

int main(int argc, char **argv) {
  signal(SIGPIPE, SIG_IGN);
  /* No memory statistics: nothing reads them, and keeping them takes a
   * process-wide mutex on every SQLite allocation, which the writer, the
   * checkpointer and the read pool would contend for. Before any other
   * SQLite call. */
  sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
  /* cJSON's short-lived trees in per-thread arenas; before any thread. */
  arena_install_cjson();
  if (argc < 2 || argv[1][0] == '-') {
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
      fputs(usage, stdout);
      return 0;
    }
    if (argc >= 2 && strcmp(argv[1], "--version") == 0) {
      printf("seslog %s\n", SESLOG_VERSION);
      return 0;
    }
    return cmd_serve(argc, argv, 1);
  }
  const char *cmd = argv[1];
  if (strcmp(cmd, "serve") == 0) return cmd_serve(argc, argv, 2);
  if (strcmp(cmd, "import") == 0) return cmd_import(argc, argv, 2);
  if (strcmp(cmd, "suppression") == 0) return cmd_suppression(argc, argv, 2);
  if (strcmp(cmd, "query") == 0) return cmd_query(argc, argv, 2);
  if (strcmp(cmd, "simulate") == 0) return cmd_simulate(argc, argv, 2);
  if (strcmp(cmd, "vacuum") == 0) return cmd_vacuum(argc, argv, 2);
  if (strcmp(cmd, "version") == 0) {
    printf("seslog %s\n", SESLOG_VERSION);
    return 0;
  }
  if (strcmp(cmd, "help") == 0) {
    fputs(usage, stdout);
    return 0;
  }
  fprintf(stderr, "seslog: unknown command \"%s\" (see seslog --help)\n", cmd);
  return 2;
}
