/* import.c - `seslog import`: notifications from files into the database,
 * with the same normalization and duplicate rules as the server, written
 * in large transactions so a million events import at storage speed. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "cmd.h"
#include "config.h"
#include "dynamodb.h"
#include "error.h"
#include "log.h"
#include "outbound.h"
#include "ses.h"
#include "sns.h"
#include "store.h"
#include "suppression.h"
#include "util.h"

#define BATCH 1000

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
    "Usage: seslog import [OPTIONS] FILE...   ('-' reads standard input)\n"
    "\n"
    "Loads SES events into the database. Each file holds JSON documents, one after another or\n"
    "one per line (JSON lines). A document may be an SNS envelope, a bare SES notification\n"
    "(notificationType) or event (eventType), a Lambda SNS event ({\"Records\":[...]}), a "
    "DynamoDB\n"
    "item ({\"Item\":{...}} or the bare item, DynamoDB JSON or plain), a line of\n"
    "`seslog query --format jsonl`, or an array of these. Duplicates are recognized as the server\n"
    "does. Ends with `imported N, duplicates N, rejected N`; each rejected document is reported\n"
    "as FILE:LINE: reason. Exit status 0 when nothing was rejected, 1 when something was.\n"
    "\n"
    "       seslog import [OPTIONS] --from-dynamodb TABLE\n"
    "\n"
    "Reads a whole DynamoDB table (Scan, paginated; --segments N in parallel) with the region and\n"
    "credentials of AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN;\n"
    "rejected items are reported as TABLE:N: reason (N counts the items read).";

/* A certificate loaded for --verify. */
typedef struct cert_slot {
  char *name;
  sns_cert *cert;
  struct cert_slot *next;
} cert_slot;

typedef struct importer {
  store *st;
  int verify;
  char cert_dir[4096];
  cert_slot *certs;
  store_req *batch[BATCH];
  size_t n;
  store_req *writing[BATCH]; /* the batch the store writes meanwhile */
  size_t n_writing;
  int sync_rc; /* store_write's result when writing could not be handed over */
  long imported, duplicates, rejected;
  const char *file; /* for reports */
  long line;
  int db_failed;
  int source_failed; /* --from-dynamodb: the table could not be read whole */
} importer;

static void reject(importer *im, const char *why) {
  im->rejected++;
  fprintf(stderr, "%s:%ld: %s\n", im->file, im->line, why);
}

/* Waits for the batch being written and counts its results; a refused
 * write stops the import. */
static int finish_write(importer *im) {
  if (!im->n_writing) return 0;
  int rc = im->sync_rc ? im->sync_rc : store_write_wait(im->st);
  im->sync_rc = 0;
  for (size_t i = 0; i < im->n_writing; i++) {
    if (im->writing[i]->result == STORE_STORED)
      im->imported++;
    else if (im->writing[i]->result == STORE_DUPLICATE)
      im->duplicates++;
    store_req_free(im->writing[i]);
  }
  im->n_writing = 0;
  if (rc && !im->db_failed) {
    fprintf(stderr, "seslog import: the database refused the write (%s); stopping\n",
            sl_strerror(rc));
    im->db_failed = 1;
  }
  return rc;
}

/* Hands the batch to the store, which writes it on a thread of its own
 * while the next one is parsed: one batch in flight. */
static int flush(importer *im) {
  int rc = finish_write(im);
  if (rc || !im->n) return rc;
  memcpy(im->writing, im->batch, im->n * sizeof im->batch[0]);
  im->n_writing = im->n;
  im->n = 0;
  if (store_write_async(im->st, im->writing, im->n_writing)) /* no thread: write it here */
    im->sync_rc = store_write(im->st, im->writing, im->n_writing);
  return 0;
}

static void add_event(importer *im, ses_event *ev) {
  store_req *r = calloc(1, sizeof *r);
  if (!r) {
    ses_event_free(ev);
    reject(im, "out of memory");
    return;
  }
  r->ev = ev;
  im->batch[im->n++] = r;
  if (im->n == BATCH) flush(im);
}

static const sns_cert *cert_for(importer *im, const char *url) {
  const char *name = sns_cert_file_name(url);
  for (cert_slot *c = im->certs; c; c = c->next)
    if (strcmp(c->name, name) == 0) return c->cert;
  char path[8192];
  snprintf(path, sizeof path, "%s/%s", im->cert_dir, name);
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  char data[65536];
  size_t n = fread(data, 1, sizeof data, f);
  fclose(f);
  sns_cert *cert;
  if (sns_cert_parse(data, n, &cert)) return NULL;
  cert_slot *c = calloc(1, sizeof *c);
  if (!c || !(c->name = strdup(name))) {
    free(c);
    sns_cert_free(cert);
    return NULL;
  }
  c->cert = cert;
  c->next = im->certs;
  im->certs = c;
  return cert;
}

/* An SNS envelope as JSON text. */
static void import_envelope_text(importer *im, const char *text) {
  sns_msg *m;
  const char *why = NULL;
  int rc = sns_parse(text, strlen(text), &m, &why);
  if (rc) {
    reject(im, why ? why : sl_strerror(rc));
    return;
  }
  char msg[512];
  if (im->verify) {
    const sns_cert *cert = NULL;
    if (sns_url_allowed(m->signing_cert_url, 1)) {
      reject(im, "SigningCertURL is not an SNS certificate URL");
      goto out;
    }
    if (!(cert = cert_for(im, m->signing_cert_url))) {
      snprintf(msg, sizeof msg, "certificate %s is not in %s (import never fetches)",
               sns_cert_file_name(m->signing_cert_url), im->cert_dir);
      reject(im, msg);
      goto out;
    }
    if ((rc = sns_verify(m, cert))) {
      snprintf(msg, sizeof msg, "signature check failed: %s", sl_strerror(rc));
      reject(im, msg);
      goto out;
    }
  }
  if (m->type != SNS_NOTIFICATION) {
    snprintf(msg, sizeof msg, "a %s carries no SES event", m->type_str);
    reject(im, msg);
    goto out;
  }
  ses_event *ev;
  rc = ses_parse(m->message, m->message_len, m->timestamp, &ev, &why);
  if (rc) {
    snprintf(msg, sizeof msg, "the SNS Message is not an SES event: %s",
             why ? why : sl_strerror(rc));
    reject(im, msg);
    goto out;
  }
  ev->sns_message_id = util_strdup(m->message_id);
  ev->topic_arn = util_strdup(m->topic_arn);
  add_event(im, ev);
out:
  sns_msg_free(m);
}

/* A Lambda record's Sns object uses SigningCertUrl/UnsubscribeUrl: rename
 * them to the HTTP delivery's names and parse it as an envelope. */
static void import_lambda_sns(importer *im, const cJSON *sns) {
  cJSON *copy = cJSON_Duplicate(sns, 1);
  if (!copy) {
    reject(im, "out of memory");
    return;
  }
  static const char *const renames[][2] = {{"SigningCertUrl", "SigningCertURL"},
                                           {"UnsubscribeUrl", "UnsubscribeURL"},
                                           {"SubscribeUrl", "SubscribeURL"}};
  for (size_t i = 0; i < 3; i++) {
    cJSON *item = cJSON_DetachItemFromObjectCaseSensitive(copy, renames[i][0]);
    if (item) cJSON_AddItemToObject(copy, renames[i][1], item);
  }
  /* Lambda gives "Subject": null when there is none, as HTTP does. */
  char *text = cJSON_PrintUnformatted(copy);
  cJSON_Delete(copy);
  if (!text) {
    reject(im, "out of memory");
    return;
  }
  import_envelope_text(im, text);
  free(text);
}

static void import_ses(importer *im, const cJSON *doc, const char *ts, const char *smid,
                       const char *topic) {
  ses_event *ev;
  const char *why = NULL;
  int rc = ses_parse_json(doc, ts, &ev, &why);
  if (rc) {
    char msg[512];
    snprintf(msg, sizeof msg, "not a usable SES event: %s", why ? why : sl_strerror(rc));
    reject(im, msg);
    return;
  }
  ev->sns_message_id = util_strdup(smid);
  ev->topic_arn = util_strdup(topic);
  add_event(im, ev);
}

static const char *str_of(const cJSON *obj, const char *key) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
  return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void import_doc(importer *im, const cJSON *doc, int depth) {
  if (cJSON_IsArray(doc)) {
    if (depth > 2) {
      reject(im, "arrays nested too deep");
      return;
    }
    const cJSON *e;
    cJSON_ArrayForEach(e, doc) import_doc(im, e, depth + 1);
    return;
  }
  if (!cJSON_IsObject(doc)) {
    reject(im, "not a JSON object or array");
    return;
  }
  const cJSON *records = cJSON_GetObjectItemCaseSensitive(doc, "Records");
  if (cJSON_IsArray(records)) {
    const cJSON *rec;
    cJSON_ArrayForEach(rec, records) {
      const cJSON *sns = cJSON_GetObjectItemCaseSensitive(rec, "Sns");
      if (cJSON_IsObject(sns))
        import_lambda_sns(im, sns);
      else
        reject(im, "a Records entry without an Sns object");
    }
    return;
  }
  if (str_of(doc, "Type") && cJSON_GetObjectItemCaseSensitive(doc, "Message")) {
    char *text = cJSON_PrintUnformatted(doc);
    if (!text) {
      reject(im, "out of memory");
      return;
    }
    import_envelope_text(im, text);
    free(text);
    return;
  }
  const cJSON *raw = cJSON_GetObjectItemCaseSensitive(doc, "raw");
  if (cJSON_IsObject(raw) && str_of(doc, "messageId")) {
    /* A line of `seslog query --format jsonl`: the original SES JSON and
     * the envelope fields next to it. */
    import_ses(im, raw, str_of(doc, "timeStamp"), str_of(doc, "snsMessageId"),
               str_of(doc, "topicArn"));
    return;
  }
  const cJSON *item = cJSON_GetObjectItemCaseSensitive(doc, "Item");
  if (!cJSON_IsObject(item) && cJSON_GetObjectItemCaseSensitive(doc, "messageId") &&
      cJSON_GetObjectItemCaseSensitive(doc, "timeStamp") &&
      !cJSON_GetObjectItemCaseSensitive(doc, "mail"))
    item = doc;
  if (cJSON_IsObject(item)) {
    ses_event *ev;
    const char *why = NULL;
    int rc = ses_from_dynamodb_item(item, &ev, &why);
    if (rc) {
      char msg[512];
      snprintf(msg, sizeof msg, "not a usable DynamoDB item: %s", why ? why : sl_strerror(rc));
      reject(im, msg);
      return;
    }
    add_event(im, ev);
    return;
  }
  if (str_of(doc, "notificationType") || str_of(doc, "eventType")) {
    import_ses(im, doc, NULL, NULL, NULL);
    return;
  }
  reject(im, "not an SNS envelope, SES notification or event, Lambda SNS event or DynamoDB item");
}

/* Reads a whole stream into memory (standard input). */
static char *slurp(FILE *f, size_t *len) {
  buf b;
  buf_init(&b, (size_t)1 << 40);
  char chunk[65536];
  size_t n;
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
    if (buf_append(&b, chunk, n)) {
      buf_free(&b);
      return NULL;
    }
  *len = b.len;
  return buf_take(&b);
}

static void progress(const char *file, size_t done, size_t total, long events, int final) {
  if (total < (4u << 20)) return;
  fprintf(stderr, "\r%s: %3d%% %ld events%s", file, (int)(done * 100 / total), events,
          final ? "\n" : "");
}

/* Splits data into JSON documents: each parse starts at the next
 * non-blank byte; after a bad document the rest of its line is skipped. */
static void import_data(importer *im, const char *data, size_t len, int show_progress) {
  size_t pos = 0;
  long line = 1;
  int64_t last = 0;
  while (pos < len && !im->db_failed) {
    while (pos < len &&
           (data[pos] == ' ' || data[pos] == '\t' || data[pos] == '\n' || data[pos] == '\r')) {
      if (data[pos] == '\n') line++;
      pos++;
    }
    if (pos >= len) break;
    im->line = line;
    const char *end = NULL;
    cJSON *doc = cJSON_ParseWithLengthOpts(data + pos, len - pos, &end, 0);
    size_t next;
    if (!doc) {
      reject(im, "not valid JSON");
      const char *nl = memchr(data + pos, '\n', len - pos);
      next = nl ? (size_t)(nl - data) : len;
    } else {
      import_doc(im, doc, 0);
      cJSON_Delete(doc);
      next = (size_t)(end - data);
    }
    for (size_t i = pos; i < next; i++)
      if (data[i] == '\n') line++;
    pos = next;
    if (show_progress) {
      int64_t now = util_now_ms();
      if (now - last > 250) {
        progress(im->file, pos, len, im->imported + im->duplicates + (long)im->n, 0);
        last = now;
      }
    }
  }
  if (show_progress) progress(im->file, len, len, im->imported + im->duplicates + (long)im->n, 1);
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
    im->source_failed = 1;
  } else {
    const cJSON *item;
    cJSON_ArrayForEach(item, page->items) {
      if (im->db_failed) break;
      im->line = ++di->items;
      ses_event *ev;
      const char *why = NULL;
      int rc = ses_from_dynamodb_item(item, &ev, &why);
      if (rc) {
        const cJSON *mid = cJSON_GetObjectItemCaseSensitive(item, "messageId");
        if (cJSON_IsObject(mid)) mid = cJSON_GetObjectItemCaseSensitive(mid, "S");
        char msg[512];
        snprintf(msg, sizeof msg, "not a usable DynamoDB item%s%.200s%s: %s",
                 cJSON_IsString(mid) ? " (messageId " : "",
                 cJSON_IsString(mid) ? mid->valuestring : "", cJSON_IsString(mid) ? ")" : "",
                 why ? why : sl_strerror(rc));
        reject(im, msg);
        continue;
      }
      add_event(im, ev);
    }
    if (page->last_key && !im->db_failed) {
      int rc = dynamodb_scan(di->d, sg->index, di->total, page->last_key, on_ddb_page, sg);
      if (rc == 0) {
        ddb_progress(di, 0);
        return;
      }
      fprintf(stderr, "seslog import: cannot continue reading %s: %s\n", di->table,
              sl_strerror(rc));
      im->source_failed = 1;
    }
  }
  di->running--;
  ddb_progress(di, 0);
  /* curl keeps its connections open: stop the loop when every segment is done. */
  if (di->running == 0) uv_stop(di->loop);
}

/* Reads the whole table into im with a loop and an outbound client of its
 * own. Failures are reported on stderr and set im->source_failed. */
static void import_dynamodb(importer *im, const struct import_opts *o,
                            const struct dynamodb_opts *ddo) {
  uv_loop_t loop;
  outbound *ob = NULL;
  dynamodb *d = NULL;
  ddb_segment *segs = calloc((size_t)o->segments, sizeof *segs);
  char err[256];
  uv_loop_init(&loop);
  struct outbound_opts oo = {.ca_file = o->ca_file};
  ddb_import di = {.im = im,
                   .loop = &loop,
                   .table = o->from_dynamodb,
                   .total = (int)o->segments,
                   .tty = isatty(2)};
  if (!segs || outbound_new(&loop, &oo, &ob)) {
    fprintf(stderr, "seslog import: out of memory\n");
    im->source_failed = 1;
    goto out;
  }
  if (dynamodb_new(&loop, ob, ddo, &d, err, sizeof err)) {
    fprintf(stderr, "seslog import: --from-dynamodb %s: %s\n", o->from_dynamodb, err);
    im->source_failed = 1;
    goto out;
  }
  di.d = d;
  for (int s = 0; s < di.total; s++) {
    segs[s] = (ddb_segment){.di = &di, .index = s};
    int rc = dynamodb_scan(d, s, di.total, NULL, on_ddb_page, &segs[s]);
    if (rc) {
      fprintf(stderr, "seslog import: cannot read %s: %s\n", o->from_dynamodb, sl_strerror(rc));
      im->source_failed = 1;
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
  uv_loop_close(&loop);
  free(segs);
}

int cmd_import(int argc, char **argv, int argi) {
  struct import_opts o = {0};
  int rc = config_parse("import", import_usage, import_table, &o, argc, argv, &argi);
  if (rc) {
    config_free(import_table, &o);
    return rc == 1 ? 0 : 2;
  }
  int status = 2;
  suppression *sup = NULL; /* the suppression rules, applied to imported events */
  importer *im = calloc(1, sizeof *im);
  if (!im) goto out;
  if (log_set_level(o.log_level)) {
    fprintf(stderr, "seslog import: --log-level must be debug, info, warn or error\n");
    goto out;
  }
  struct dynamodb_opts ddo = {.table = o.from_dynamodb, .endpoint = o.dynamodb_endpoint};
  if (o.from_dynamodb) {
    char derr[256];
    if (argi < argc) {
      fprintf(stderr, "seslog import: give FILEs or --from-dynamodb, not both\n");
      goto out;
    }
    if (o.segments < 1 || o.segments > 1000) {
      fprintf(stderr, "seslog import: --segments must be from 1 to 1000\n");
      goto out;
    }
    if (dynamodb_env(&ddo, derr, sizeof derr)) {
      fprintf(stderr, "seslog import: --from-dynamodb %s: %s\n", o.from_dynamodb, derr);
      goto out;
    }
  } else if (argi >= argc) {
    fprintf(stderr, "seslog import: name at least one FILE, or - for standard input\n");
    goto out;
  }
  for (int i = argi; i < argc; i++) {
    if (strcmp(argv[i], "-") == 0) continue;
    if (access(argv[i], R_OK) != 0) {
      fprintf(stderr, "seslog import: cannot read %s: %s\n", argv[i], strerror(errno));
      goto out;
    }
  }
  if (o.sns_cert_dir)
    snprintf(im->cert_dir, sizeof im->cert_dir, "%s", o.sns_cert_dir);
  else
    config_default_cert_dir(o.db, im->cert_dir, sizeof im->cert_dir);
  im->verify = o.verify;
  char err[512];
  struct store_opts so = {.busy_timeout_ms = 10000};
  struct suppression_opts spo = {.soft_bounce_limit = (int)o.soft_bounce_limit,
                                 .soft_bounce_days = (int)o.soft_bounce_days};
  if (o.soft_bounce_limit > 1000000 || o.soft_bounce_days > 36500 || suppression_new(&spo, &sup)) {
    fprintf(stderr,
            "seslog import: --soft-bounce-limit must be at most 1000000 and "
            "--soft-bounce-days from 1 to 36500\n");
    goto out;
  }
  suppression_hook(sup, &so.hooks[so.n_hooks++]);
  if (store_open(o.db, &so, &im->st, err, sizeof err)) {
    fprintf(stderr, "seslog import: %s\n", err);
    goto out;
  }
  int tty = isatty(2);
  if (o.from_dynamodb) {
    im->file = o.from_dynamodb;
    import_dynamodb(im, &o, &ddo);
  }
  for (int i = argi; i < argc && !im->db_failed; i++) {
    im->file = strcmp(argv[i], "-") == 0 ? "-" : argv[i];
    if (strcmp(argv[i], "-") == 0) {
      size_t len;
      char *data = slurp(stdin, &len);
      if (!data) {
        fprintf(stderr, "seslog import: cannot read standard input\n");
        continue;
      }
      import_data(im, data, len, 0);
      free(data);
      continue;
    }
    int fd = open(argv[i], O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) || !S_ISREG(st.st_mode)) {
      fprintf(stderr, "seslog import: cannot read %s: not a regular file\n", argv[i]);
      if (fd >= 0) close(fd);
      status = 2;
      im->db_failed = 1;
      break;
    }
    if (st.st_size == 0) {
      close(fd);
      continue;
    }
    /* Mapped, not read: a file of millions of events costs no heap. */
    char *data = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (data == MAP_FAILED) {
      fprintf(stderr, "seslog import: cannot map %s: %s\n", argv[i], strerror(errno));
      im->db_failed = 1;
      break;
    }
    madvise(data, (size_t)st.st_size, MADV_SEQUENTIAL);
    import_data(im, data, (size_t)st.st_size, tty);
    munmap(data, (size_t)st.st_size);
  }
  if (!im->db_failed) flush(im);
  finish_write(im);
  printf("imported %ld, duplicates %ld, rejected %ld\n", im->imported, im->duplicates,
         im->rejected);
  status = im->db_failed || im->source_failed ? 2 : im->rejected ? 1 : 0;
out:
  if (im) {
    finish_write(im);
    for (size_t i = 0; i < im->n; i++) store_req_free(im->batch[i]);
    while (im->certs) {
      cert_slot *c = im->certs;
      im->certs = c->next;
      free(c->name);
      sns_cert_free(c->cert);
      free(c);
    }
    store_close(im->st);
    free(im);
  }
  suppression_free(sup); /* after store_close: its statements lived on that connection */
  config_free(import_table, &o);
  return status;
}
