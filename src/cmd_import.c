/* cmd_import.c - `seslog import`: its options, the walk over the paths
 * given (folders recursively, in name order) and the Scan of a DynamoDB
 * table (--from-dynamodb) on a loop of its own, feeding the importer
 * (import.h), then the summary and the exit status. */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "cmd.h"
#include "config.h"
#include "dynamodb.h"
#include "error.h"
#include "import.h"
#include "log.h"
#include "outbound.h"
#include "store.h"
#include "suppression.h"
#include "util.h"

struct import_opts {
  char *db;
  int verify;
  char *sns_cert_dir;
  char *log_level;
  long soft_bounce_limit, soft_bounce_days;
  char *from_dynamodb; /* a table to Scan instead of files */
  char *dynamodb_endpoint;
  long segments;
  char *ca_file;
};

#define O(f) offsetof(struct import_opts, f)
static const struct opt import_table[] = {
    {"db", OPT_STR, O(db), SESLOG_DEFAULT_DB, "PATH",
     "the SQLite database (its folder is created)"},
    {"verify", OPT_FLAG, O(verify), NULL, NULL,
     "check the SNS signature of every envelope (certificates from --sns-cert-dir)", 1},
    {"sns-cert-dir", OPT_STR, O(sns_cert_dir), NULL, "DIR",
     "signing certificates for --verify [<db folder>/sns-certs]"},
    {"log-level", OPT_STR, O(log_level), "warn", "LEVEL", "debug, info, warn or error"},
    {"soft-bounce-limit", OPT_INT, O(soft_bounce_limit), "3", "N",
     "suppression rule, as for serve: soft bounces of an address that suppress it (0: never)"},
    {"soft-bounce-days", OPT_INT, O(soft_bounce_days), "7", "D",
     "...when they fall within this many days"},
    {"from-dynamodb", OPT_STR, O(from_dynamodb), NULL, "TABLE",
     "read every item of this DynamoDB table (Scan) instead of files", 1},
    {"dynamodb-endpoint", OPT_STR, O(dynamodb_endpoint), NULL, "URL",
     "DynamoDB endpoint, e.g. a local DynamoDB-compatible server [the region's]"},
    {"segments", OPT_INT, O(segments), "1", "N", "parallel Scan segments for --from-dynamodb"},
    {"ca-file", OPT_STR, O(ca_file), NULL, "PATH", "CA bundle for HTTPS to DynamoDB"},
    {0},
};
#undef O

static const char import_usage[] =
    "Usage: seslog import [OPTIONS] PATH...   (a file, a folder, or '-' for standard input)\n"
    "\n"
    "Loads SES events into the database. A folder is read whole, recursively, in name order\n"
    "(names starting with '.' and DynamoDB export manifests skipped). A file may be plain or\n"
    "gzip (told by its first bytes) and hold JSON lines, one JSON document (a top-level array\n"
    "is read element by element), documents concatenated without separators (as Kinesis Data\n"
    "Firehose writes them to S3), or a Lambda's CloudWatch log. Each document may be:\n"
    "  an SNS envelope               {\"Type\":\"Notification\",\"Message\":\"{...}\",...}\n"
    "  a bare SES notification/event {\"notificationType\":...} or {\"eventType\":...}\n"
    "  a Lambda SNS event            {\"Records\":[{\"Sns\":{...}}]} (signature fields optional)\n"
    "  an EventBridge event          "
    "{\"source\":\"aws.ses\",\"detail-type\":...,\"detail\":{...}}\n"
    "  a DynamoDB item               {\"Item\":{...}} (an export) or the bare item\n"
    "  a line of `seslog query --format jsonl`\n"
    "  a CloudWatch log line         TIMESTAMP<TAB>REQUEST_ID<TAB>INFO<TAB>{one of the above}\n"
    "  an array of these.\n"
    "A log message may run over several lines: pretty-printed JSON (JSON.stringify(event,\n"
    "null, 2), Python's json.dumps(indent=...)) up to its closing bracket, and Node's\n"
    "console.log(event) (util.inspect: keys without quotes), read as the JSON it stands for;\n"
    "when Node cut the object short past depth 2 (\"[Object]\") it is rejected, never stored\n"
    "in part. A document may be up to 16 MiB (a multi-line log message up to 1 MiB); a larger\n"
    "one is rejected and skipped.\n"
    "The same event in two shapes is stored once. Signatures are checked only with --verify.\n"
    "\n"
    "Each rejected document is reported as FILE:LINE: at byte N: reason, and reading resumes at\n"
    "the next document. Output ends with `read N files: N records` and\n"
    "`imported N, duplicates N, rejected N` (they add up). Exit status 0 when nothing was\n"
    "rejected, 1 when something was, 2 when a path is unreadable, a file is not text or its\n"
    "gzip data is damaged, or the database takes no writes. Progress on standard error.\n"
    "\n"
    "       seslog import [OPTIONS] --from-dynamodb TABLE\n"
    "\n"
    "Reads a whole DynamoDB table (Scan, paginated; --segments N in parallel) with the region and\n"
    "credentials of AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN;\n"
    "rejected items are reported as TABLE:N: reason (N counts the items read).";

/* The files to read, in order. */
typedef struct file_list {
  char **v;
  size_t n, cap;
  long manifests; /* DynamoDB export manifests skipped in folders */
  struct {        /* the database's own files (-wal, -shm, -journal) */
    dev_t dev;
    ino_t ino;
  } own[4];
  int n_own;
  long own_skipped; /* of them, found in a folder and skipped */
} file_list;

/* Notes the database's files, which a folder walked may hold (`seslog
 * import data/` with the default --db data/seslog.db): never read them. */
static void note_own_files(file_list *l, const char *db) {
  static const char *const ext[] = {"", "-wal", "-shm", "-journal"};
  char path[4200];
  struct stat st;
  for (size_t i = 0; i < 4; i++) {
    snprintf(path, sizeof path, "%s%s", db, ext[i]);
    if (stat(path, &st) == 0) {
      l->own[l->n_own].dev = st.st_dev;
      l->own[l->n_own].ino = st.st_ino;
      l->n_own++;
    }
  }
}

static int is_own_file(const file_list *l, const struct stat *st) {
  for (int i = 0; i < l->n_own; i++)
    if (l->own[i].dev == st->st_dev && l->own[i].ino == st->st_ino) return 1;
  return 0;
}

static int list_add(file_list *l, const char *path) {
  if (l->n == l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 64;
    char **v = realloc(l->v, cap * sizeof *v);
    if (!v) return SL_ENOMEM;
    l->v = v;
    l->cap = cap;
  }
  if (!(l->v[l->n] = strdup(path))) return SL_ENOMEM;
  l->n++;
  return 0;
}

static void list_free(file_list *l) {
  for (size_t i = 0; i < l->n; i++) free(l->v[i]);
  free(l->v);
}

static int by_name(const struct dirent **a, const struct dirent **b) {
  return strcmp((*a)->d_name, (*b)->d_name);
}

static int not_hidden(const struct dirent *d) {
  return d->d_name[0] != '.';
}

/* Adds path to l: a file, or every file under a directory, recursively,
 * in name order (byte order, as `aws s3 sync` names sort by date);
 * names starting with '.', DynamoDB export manifests and the database's
 * own files are skipped. Adds to *bytes the files'
 * sizes. Returns 0, or 2 after one line on stderr (unreadable, not a file). */
static int collect(file_list *l, const char *path, int depth, uint64_t *bytes) {
  struct stat st;
  if (strcmp(path, "-") == 0) return list_add(l, path) ? 2 : 0;
  if (stat(path, &st) != 0) {
    fprintf(stderr, "seslog import: cannot read %s: %s\n", path, strerror(errno));
    return 2;
  }
  if (S_ISREG(st.st_mode)) {
    if (depth > 0 && is_own_file(l, &st)) {
      l->own_skipped++;
      return 0;
    }
    if (access(path, R_OK) != 0) {
      fprintf(stderr, "seslog import: cannot read %s: %s\n", path, strerror(errno));
      return 2;
    }
    *bytes += (uint64_t)st.st_size;
    return list_add(l, path) ? 2 : 0;
  }
  if (!S_ISDIR(st.st_mode)) {
    fprintf(stderr, "seslog import: cannot read %s: not a file or directory\n", path);
    return 2;
  }
  if (depth > 32) {
    fprintf(stderr, "seslog import: %s: folders nested deeper than 32 (a link loop?)\n", path);
    return 2;
  }
  struct dirent **names;
  int n = scandir(path, &names, not_hidden, by_name);
  if (n < 0) {
    fprintf(stderr, "seslog import: cannot read %s: %s\n", path, strerror(errno));
    return 2;
  }
  int rc = 0;
  for (int i = 0; i < n; i++) {
    /* A DynamoDB export's manifest-summary.json, manifest-files.json and
     * their .md5 describe the export, not events. */
    if (strncmp(names[i]->d_name, "manifest-", 9) == 0) {
      l->manifests++;
    } else if (!rc) {
      size_t len = strlen(path);
      size_t size = len + strlen(names[i]->d_name) + 2;
      char *child = malloc(size);
      if (!child) {
        fprintf(stderr, "seslog import: out of memory\n");
        rc = 2;
      } else {
        snprintf(child, size, "%s%s%s", path, len && path[len - 1] == '/' ? "" : "/",
                 names[i]->d_name);
        rc = collect(l, child, depth + 1, bytes);
        free(child);
      }
    }
    free(names[i]);
  }
  free(names);
  return rc;
}

/* ---- --from-dynamodb: a Scan of the table, page by page ---------------- */

struct ddb_segment;

typedef struct ddb_import {
  importer *im;
  dynamodb *d;
  uv_loop_t *loop;
  const char *table;
  int total;   /* segments */
  int running; /* segments still reading */
  long items;  /* items read */
  int tty;
  int64_t shown_ms; /* progress last drawn */
} ddb_import;

typedef struct ddb_segment {
  ddb_import *di;
  int index;
} ddb_segment;

static void ddb_progress(ddb_import *di, int final) {
  if (!di->tty) return;
  int64_t now = util_now_ms();
  if (!final && now - di->shown_ms < 250) return;
  di->shown_ms = now;
  fprintf(stderr, "\r%s: %ld items read, %d of %d segments done%s", di->table, di->items,
          di->total - di->running, di->total, final ? "\n" : "");
}

/* One page of one segment: its items into the batch, then the next page. */
static void on_ddb_page(void *ud, const struct dynamodb_page *page) {
  ddb_segment *sg = ud;
  ddb_import *di = sg->di;
  importer *im = di->im;
  if (page->rc) {
    fprintf(stderr, "%sseslog import: reading DynamoDB table %s failed (segment %d): %s\n",
            di->tty ? "\n" : "", di->table, sg->index, page->error);
    import_source_failed(im);
  } else {
    const cJSON *item;
    cJSON_ArrayForEach(item, page->items) {
      if (import_stopped(im)) break;
      import_dynamodb_item(im, ++di->items, item);
    }
    if (page->last_key && !import_stopped(im)) {
      int rc = dynamodb_scan(di->d, sg->index, di->total, page->last_key, on_ddb_page, sg);
      if (rc == 0) {
        ddb_progress(di, 0);
        return;
      }
      fprintf(stderr, "seslog import: cannot continue reading %s: %s\n", di->table,
              sl_strerror(rc));
      import_source_failed(im);
    }
  }
  di->running--;
  ddb_progress(di, 0);
  /* curl keeps its connections open: stop the loop when every segment is done. */
  if (di->running == 0) uv_stop(di->loop);
}

/* Reads the whole table into im with a loop and an outbound client of its
 * own. Failures are reported on stderr and mark the source failed. */
static void import_dynamodb(importer *im, const struct import_opts *o,
                            const struct dynamodb_opts *ddo) {
  uv_loop_t loop;
  outbound *ob = NULL;
  dynamodb *d = NULL;
  ddb_segment *segs = calloc((size_t)o->segments, sizeof *segs);
  char err[256];
  int lrc = uv_loop_init(&loop);
  if (lrc) {
    fprintf(stderr, "seslog import: cannot start an event loop: %s\n", uv_strerror(lrc));
    import_source_failed(im);
    free(segs);
    return;
  }
  struct outbound_opts oo = {.ca_file = o->ca_file};
  ddb_import di = {.im = im,
                   .loop = &loop,
                   .table = o->from_dynamodb,
                   .total = (int)o->segments,
                   .tty = isatty(2)};
  import_set_source(im, o->from_dynamodb);
  if (!segs || outbound_new(&loop, &oo, &ob)) {
    fprintf(stderr, "seslog import: out of memory\n");
    import_source_failed(im);
    goto out;
  }
  if (dynamodb_new(&loop, ob, ddo, &d, err, sizeof err)) {
    fprintf(stderr, "seslog import: --from-dynamodb %s: %s\n", o->from_dynamodb, err);
    import_source_failed(im);
    goto out;
  }
  di.d = d;
  for (int s = 0; s < di.total; s++) {
    segs[s] = (ddb_segment){.di = &di, .index = s};
    int rc = dynamodb_scan(d, s, di.total, NULL, on_ddb_page, &segs[s]);
    if (rc) {
      fprintf(stderr, "seslog import: cannot read %s: %s\n", o->from_dynamodb, sl_strerror(rc));
      import_source_failed(im);
      continue;
    }
    di.running++;
  }
  if (di.running) uv_run(&loop, UV_RUN_DEFAULT);
  ddb_progress(&di, 1);
out:
  if (ob) outbound_close(ob, NULL, NULL);
  uv_run(&loop, UV_RUN_DEFAULT); /* until every handle is closed */
  outbound_free(ob);
  dynamodb_free(d);
  if (uv_loop_close(&loop)) log_kv(LOG_WARN, "import: the event loop did not close", NULL);
  free(segs);
}

/* Checks the options against the positional arguments and fills the
 * DynamoDB options of --from-dynamodb. Returns 0 or -1 after one line on
 * stderr. */
static int check_import(struct import_opts *o, int paths, struct dynamodb_opts *ddo) {
  if (log_set_level(o->log_level)) {
    fprintf(stderr, "seslog import: --log-level must be debug, info, warn or error\n");
    return -1;
  }
  if (o->soft_bounce_limit > 1000000 || o->soft_bounce_days > 36500) {
    fprintf(stderr,
            "seslog import: --soft-bounce-limit must be at most 1000000 and "
            "--soft-bounce-days from 1 to 36500\n");
    return -1;
  }
  *ddo = (struct dynamodb_opts){.table = o->from_dynamodb, .endpoint = o->dynamodb_endpoint};
  if (!o->from_dynamodb) {
    if (paths) return 0;
    fprintf(stderr, "seslog import: name at least one FILE, or - for standard input\n");
    return -1;
  }
  char derr[256];
  if (paths) {
    fprintf(stderr, "seslog import: give FILEs or --from-dynamodb, not both\n");
    return -1;
  }
  if (o->segments < 1 || o->segments > 1000) {
    fprintf(stderr, "seslog import: --segments must be from 1 to 1000\n");
    return -1;
  }
  if (dynamodb_env(ddo, derr, sizeof derr)) {
    fprintf(stderr, "seslog import: --from-dynamodb %s: %s\n", o->from_dynamodb, derr);
    return -1;
  }
  return 0;
}

/* Prints the last lines: `read N files: N records` (files only) and
 * `imported N, duplicates N, rejected N`. */
static void print_summary(const struct import_counts *n, const file_list *files, int from_files) {
  if (from_files) {
    char logs[96] = "", manifests[160] = "";
    if (n->log_lines)
      snprintf(logs, sizeof logs, ", %ld log line%s without an event", n->log_lines,
               n->log_lines == 1 ? "" : "s");
    if (files->manifests)
      snprintf(manifests, sizeof manifests, " (%ld DynamoDB export manifest%s skipped)",
               files->manifests, files->manifests == 1 ? "" : "s");
    if (files->own_skipped)
      snprintf(manifests + strlen(manifests), sizeof manifests - strlen(manifests),
               " (%ld file%s of the database itself skipped)", files->own_skipped,
               files->own_skipped == 1 ? "" : "s");
    printf("read %ld file%s%s: %ld record%s%s\n", n->files, n->files == 1 ? "" : "s", manifests,
           n->records, n->records == 1 ? "" : "s", logs);
  }
  printf("imported %ld, duplicates %ld, rejected %ld\n", n->imported, n->duplicates, n->rejected);
}

int cmd_import(int argc, char **argv, int argi) {
  struct import_opts o = {0};
  int rc = config_parse("import", import_usage, import_table, &o, argc, argv, &argi);
  if (rc) {
    config_free(import_table, &o);
    return rc == 1 ? 0 : 2;
  }
  int status = 2;
  file_list files = {0};
  uint64_t bytes = 0;
  suppression *sup = NULL; /* the suppression rules, applied to imported events */
  store *st = NULL;
  importer *im = NULL;
  struct dynamodb_opts ddo;
  if (check_import(&o, argi < argc, &ddo)) goto out;
  note_own_files(&files, o.db);
  for (int i = argi; i < argc; i++)
    if (collect(&files, argv[i], 0, &bytes)) goto out;
  char cert_dir[4096], err[512];
  if (o.sns_cert_dir)
    snprintf(cert_dir, sizeof cert_dir, "%s", o.sns_cert_dir);
  else
    config_default_cert_dir(o.db, cert_dir, sizeof cert_dir);
  struct store_opts so = {.busy_timeout_ms = 10000};
  struct suppression_opts spo = {.soft_bounce_limit = (int)o.soft_bounce_limit,
                                 .soft_bounce_days = (int)o.soft_bounce_days};
  if (suppression_new(&spo, &sup)) {
    fprintf(stderr,
            "seslog import: --soft-bounce-limit must be at most 1000000 and "
            "--soft-bounce-days from 1 to 36500\n");
    goto out;
  }
  suppression_hook(sup, &so.hooks[so.n_hooks++]);
  if (store_open(o.db, &so, &st, err, sizeof err)) {
    fprintf(stderr, "seslog import: %s\n", err);
    goto out;
  }
  if (import_new(st, o.verify, cert_dir, bytes, &im)) {
    fprintf(stderr, "seslog import: out of memory\n");
    goto out;
  }
  if (o.from_dynamodb) import_dynamodb(im, &o, &ddo);
  for (size_t i = 0; i < files.n && !import_stopped(im); i++) import_path(im, files.v[i]);
  struct import_counts n;
  import_finish(im, &n);
  print_summary(&n, &files, !o.from_dynamodb);
  status = n.failed ? 2 : n.rejected ? 1 : 0;
out:
  import_free(im);
  store_close(st);
  suppression_free(sup); /* after store_close: its hook runs until then */
  list_free(&files);
  config_free(import_table, &o);
  return status;
}
