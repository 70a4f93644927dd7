/* import.c - the importer (import.h): notifications from documents into
 * the database, with the same normalization and duplicate rules as the
 * server, written in large transactions so a million events import at
 * storage speed. The command, its options and the walk over folders are
 * in cmd_import.c. */
#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "arena.h"
#include "error.h"
#include "import.h"
#include "jsoncheck.h"
#include "log.h"
#include "ses.h"
#include "sns.h"
#include "store.h"
#include "util.h"

/* A transaction holds up to BATCH events and BATCH_BYTES of their JSON:
 * larger transactions write each index page fewer times; two batches are
 * held at once (one written while the next is read), which bounds memory.
 * An event compressed on the reader drops its text (store_prep_drop_raw)
 * and counts 1/DROP_SHARE of its JSON's size: a batch of them holds twice
 * the events for about the memory the texts took (bench mix: peak RSS
 * unchanged, set by the first batches and the first dictionary's
 * training; 2.9 WAL page writes an event instead of 4.0). A batch that a
 * large event takes past twice BATCH_BYTES is written before reading on. */
#ifndef BATCH
#define BATCH 4000
#endif
#ifndef BATCH_MIB
#define BATCH_MIB 3
#endif
#define BATCH_BYTES ((size_t)BATCH_MIB << 20)
#ifndef DROP_SHARE
#define DROP_SHARE 2
#endif
#define DEFER_MAX 256 /* rejections held while a batch is written */

/* One document at most (an SNS message is at most 256 KB, a DynamoDB item
 * 400 KB, but an event may be logged or exported with a large body of
 * headers); a top-level array is read element by element, so its size is
 * not bounded. Reading one costs about five times its size (the window,
 * the parsed tree, the event's copy and its compressed form): 16 MiB keeps
 * import under 128 MiB. */
#define MAX_DOC_MIB 16
#define MAX_DOC ((size_t)MAX_DOC_MIB << 20)
#define LOG_DOC_MAX ((size_t)1 << 20)        /* JSON printed over lines of a log */
#define CHUNK ((size_t)256 << 10)            /* one read */
#define WINDOW_MAX (2 * MAX_DOC + 4 * CHUNK) /* a document and a resync's look-ahead */
#define MAX_REPORTS 100                      /* rejection lines per file; the rest counted */
#define RESYNC_TRIES 256                     /* candidates parsed after a bad document */
#define SNIFF 4096                           /* bytes that tell text from binary */
#define PROGRESS_TTY_MS 200
#define PROGRESS_LOG_MS 5000

/* A certificate loaded for --verify. */
typedef struct cert_slot {
  char *name;
  sns_cert *cert;
  struct cert_slot *next;
} cert_slot;

/* Where a document was read: for its report when it is rejected, maybe
 * later, when its batch is written. file outlives the import. */
struct where {
  const char *file;
  long line;
  uint64_t offset; /* byte of the document in the (decompressed) input */
  int has_offset;  /* 0 for --from-dynamodb, whose "line" counts items */
};

/* A batch of events: one transaction, written on the writer thread while
 * the next batch is read. */
typedef struct wbatch {
  store_req *req[BATCH];
  struct where at[BATCH]; /* where each event was read */
  size_t n;
  size_t bytes;  /* their original JSON, half of it for a text dropped */
  int rc;        /* store_write of the whole batch */
  size_t failed; /* events refused when written one by one */
} wbatch;

/* A rejection read while a batch is written, reported after that batch's
 * own, in the order of the input (as when nothing overlaps). */
struct deferred {
  struct where at;
  char *why;
};

typedef struct importer {
  store *st;
  int verify;
  char cert_dir[4096];
  cert_slot *certs;
  wbatch batches[2];
  wbatch *filling; /* the batch being read */
  wbatch *flight;  /* the batch handed to the writer, or NULL */
  struct deferred deferred[DEFER_MAX];
  size_t n_deferred;
  int overlap; /* reading a file: batches written while the next is read */
  /* the writer thread: takes job, sets done */
  pthread_t writer;
  int writer_started;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  wbatch *job;
  int done, quit;
  long imported, duplicates, rejected;
  long records;            /* events and rejected documents handed to an outcome */
  long log_lines;          /* Lambda log lines that carry no event */
  long files;              /* files read */
  int files_failed;        /* a file that could not be read whole */
  struct where at;         /* the document being read */
  const char *report_file; /* reports are capped per file */
  long reports, unlisted;
  int db_failed;
  int source_failed; /* --from-dynamodb: the table could not be read whole */
  /* progress */
  int tty;
  int64_t started_ms, shown_ms;
  uint64_t bytes_total, bytes_done; /* of the files, as stored (compressed) */
  gzFile current;                   /* the file being read, for its offset */
  int line_open;                    /* a progress bar is on the terminal */
  /* The top-level document being imported and the text it was parsed
   * from, when that text is its compact print (jsoncheck_compact), while
   * import_text_doc runs: an SES event that is the whole document keeps a
   * copy of its text instead of printing it again. */
  const cJSON *text_doc;
  const char *text;
  size_t text_len;
} importer;

static void clear_progress(importer *im) {
  if (!im->line_open) return;
  fprintf(stderr, "\r%*s\r", 79, "");
  im->line_open = 0;
}

static void report_unlisted(importer *im) {
  if (im->unlisted)
    fprintf(stderr, "%s: %ld more rejected documents not listed\n", im->report_file, im->unlisted);
  im->unlisted = 0;
}

/* Counts a rejected document and reports it as FILE:LINE: why, at most
 * MAX_REPORTS lines a file. */
static void reject_at(importer *im, const struct where *w, const char *why) {
  im->rejected++;
  im->records++;
  if (w->file != im->report_file) {
    report_unlisted(im);
    im->report_file = w->file;
    im->reports = 0;
  }
  if (im->reports++ >= MAX_REPORTS) {
    im->unlisted++;
    return;
  }
  clear_progress(im);
  if (w->has_offset)
    fprintf(stderr, "%s:%ld: at byte %llu: %s\n", w->file, w->line, (unsigned long long)w->offset,
            why);
  else
    fprintf(stderr, "%s:%ld: %s\n", w->file, w->line, why);
}

static void settle(importer *im);

/* Rejects the document being read: reported now, or, while a batch is
 * being written, after that batch's own reports (so the reports come in
 * the order of the input). */
static void reject(importer *im, const char *why) {
  if (im->flight && im->n_deferred == DEFER_MAX) settle(im);
  if (im->flight) {
    char *copy = strdup(why);
    if (copy) {
      im->deferred[im->n_deferred++] = (struct deferred){.at = im->at, .why = copy};
      return;
    }
    settle(im);
  }
  reject_at(im, &im->at, why);
}

/* Why the store refused one event. */
static const char *refusal(importer *im, const store_req *req, char *msg, size_t len) {
  if (req->result == SL_ETOOBIG) return "not stored: the event is larger than the database takes";
  char why[256] = "the database did not store it";
  if (req->why[0])
    snprintf(why, sizeof why, "%s", req->why);
  else
    store_health(im->st, why, sizeof why);
  snprintf(msg, len, "not stored: %s", why);
  return msg;
}

/* Writes batch b (on the writer thread, or on the reader's when nothing
 * overlaps). When the batch's transaction fails, each event is written
 * alone, so one event the database refuses is one rejection and the
 * others are stored. */
static void write_batch(store *st, wbatch *b) {
  b->failed = 0;
  b->rc = store_write(st, b->req, b->n);
  if (b->rc)
    for (size_t i = 0; i < b->n; i++) {
      b->req[i]->why[0] = 0;
      if (store_write(st, &b->req[i], 1)) b->failed++;
    }
}

/* Counts every event of written batch b: imported, duplicate or rejected
 * (reported). When every one failed the database takes no writes and the
 * import stops. */
static void complete(importer *im, wbatch *b) {
  char msg[512];
  for (size_t i = 0; i < b->n; i++) {
    int result = b->req[i]->result;
    if (result == STORE_STORED) {
      im->imported++;
      im->records++;
    } else if (result == STORE_DUPLICATE) {
      im->duplicates++;
      im->records++;
    } else {
      reject_at(im, &b->at[i], refusal(im, b->req[i], msg, sizeof msg));
    }
    store_req_free(b->req[i]);
  }
  if (b->rc && b->failed == b->n && !im->db_failed) {
    char why[256] = "";
    store_health(im->st, why, sizeof why);
    clear_progress(im);
    fprintf(stderr,
            "seslog import: the database refused the write (%s); stopping after %s:%ld, "
            "nothing after it was read\n",
            why[0] ? why : sl_strerror(b->rc), im->at.file, im->at.line);
    im->db_failed = 1;
  }
  b->n = 0;
  b->bytes = 0;
}

/* The writer thread: writes each batch handed to it. */
static void *writer_main(void *arg) {
  importer *im = arg;
  pthread_mutex_lock(&im->mu);
  for (;;) {
    while (!im->job && !im->quit) pthread_cond_wait(&im->cv, &im->mu);
    if (!im->job) break;
    wbatch *b = im->job;
    pthread_mutex_unlock(&im->mu);
    write_batch(im->st, b);
    pthread_mutex_lock(&im->mu);
    im->job = NULL;
    im->done = 1;
    pthread_cond_broadcast(&im->cv);
  }
  pthread_mutex_unlock(&im->mu);
  return NULL;
}

/* Waits for the batch being written, counts it, then reports the
 * rejections read meanwhile. Nothing is in flight after it. */
static void settle(importer *im) {
  if (!im->flight) return;
  pthread_mutex_lock(&im->mu);
  while (!im->done) pthread_cond_wait(&im->cv, &im->mu);
  im->done = 0;
  pthread_mutex_unlock(&im->mu);
  wbatch *b = im->flight;
  im->flight = NULL;
  complete(im, b);
  for (size_t i = 0; i < im->n_deferred; i++) {
    reject_at(im, &im->deferred[i].at, im->deferred[i].why);
    free(im->deferred[i].why);
  }
  im->n_deferred = 0;
  if (!im->db_failed) return;
  /* the events read while the failed batch was written: none is written */
  wbatch *f = im->filling;
  for (size_t i = 0; i < f->n; i++) {
    reject_at(im, &f->at[i], "not written: the database stopped taking writes");
    store_req_free(f->req[i]);
  }
  f->n = 0;
  f->bytes = 0;
}

/* Writes the batch being read: on the writer thread while the next one is
 * read when reading a file, else (or for a batch too large to hold two
 * of) before returning. After the database stopped taking writes the
 * batch stays unwritten. */
static void flush(importer *im) {
  settle(im);
  wbatch *b = im->filling;
  if (!b->n || im->db_failed) return;
  /* the first batch teaches a new database its first dictionary before
   * any of it is written: no event of the import is stored plain for want
   * of one (a failure leaves them plain, as the store would) */
  (void)store_train_first(im->st, b->req, b->n);
  if (!im->overlap || !im->writer_started || b->bytes >= 2 * BATCH_BYTES) {
    write_batch(im->st, b);
    complete(im, b);
    return;
  }
  im->filling = b == &im->batches[0] ? &im->batches[1] : &im->batches[0];
  im->flight = b;
  pthread_mutex_lock(&im->mu);
  im->job = b;
  pthread_cond_signal(&im->cv);
  pthread_mutex_unlock(&im->mu);
}

static void add_event(importer *im, ses_event *ev) {
  store_req *r = calloc(1, sizeof *r);
  if (!r) {
    ses_event_free(ev);
    reject(im, "out of memory");
    return;
  }
  r->ev = ev;
  /* the hash, compression and list texts here, on the reader thread,
   * so the writer thread only binds and steps (out of memory: it does) */
  (void)store_prepare(im->st, ev, &r->prep);
  int dropped = store_prep_drop_raw(r->prep, ev); /* compressed: the frame alone is held */
  wbatch *b = im->filling;
  b->at[b->n] = im->at;
  b->req[b->n++] = r;
  b->bytes += dropped ? ev->raw_len / DROP_SHARE : ev->raw_len;
  if (b->n == BATCH || b->bytes >= BATCH_BYTES) flush(im);
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

static const char *str_of(const cJSON *obj, const char *key);

/* A Lambda record's Sns object read without --verify: only Type, Message,
 * Timestamp, MessageId and TopicArn matter, so a record whose signature
 * fields were dropped (as test events and some tools do) is accepted. */
static void import_lambda_sns_unverified(importer *im, const cJSON *sns) {
  const char *type = str_of(sns, "Type");
  const char *message = str_of(sns, "Message");
  char msg[512];
  if (type && strcmp(type, "Notification") != 0) {
    snprintf(msg, sizeof msg, "a %.100s carries no SES event", type);
    reject(im, msg);
    return;
  }
  if (!message) {
    reject(im, "the Lambda record's Sns object has no Message");
    return;
  }
  ses_event *ev;
  const char *why = NULL;
  int rc = ses_parse(message, strlen(message), str_of(sns, "Timestamp"), &ev, &why);
  if (rc) {
    snprintf(msg, sizeof msg, "the SNS Message is not an SES event: %s",
             why ? why : sl_strerror(rc));
    reject(im, msg);
    return;
  }
  ev->sns_message_id = util_strdup(str_of(sns, "MessageId"));
  ev->topic_arn = util_strdup(str_of(sns, "TopicArn"));
  add_event(im, ev);
}

/* A Lambda record's Sns object uses SigningCertUrl/UnsubscribeUrl: rename
 * them to the HTTP delivery's names and parse it as an envelope (with
 * --verify; without, the fields that carry the event are enough). */
static void import_lambda_sns(importer *im, const cJSON *sns) {
  if (!im->verify) {
    import_lambda_sns_unverified(im, sns);
    return;
  }
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
  cJSON_free(text); /* cJSON's: it may be the arena's (arena.h) */
}

static void import_ses(importer *im, const cJSON *doc, const char *ts, const char *smid,
                       const char *topic) {
  ses_event *ev;
  const char *why = NULL;
  int rc = doc == im->text_doc ? ses_parse_json_text(doc, im->text, im->text_len, ts, &ev, &why)
                               : ses_parse_json(doc, ts, &ev, &why);
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
  const cJSON *detail = ses_eventbridge_detail(doc);
  if (detail) {
    import_ses(im, detail, NULL, NULL, NULL);
    return;
  }
  if (str_of(doc, "Type") && cJSON_GetObjectItemCaseSensitive(doc, "Message")) {
    char *text = cJSON_PrintUnformatted(doc);
    if (!text) {
      reject(im, "out of memory");
      return;
    }
    import_envelope_text(im, text);
    cJSON_free(text); /* cJSON's: it may be the arena's (arena.h) */
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
  reject(im,
         "not an SNS envelope, SES notification or event, Lambda SNS event, EventBridge event "
         "or DynamoDB item");
}

/* ---- files: a window over a stream, split into documents --------------- */

/* One input being read, a file or standard input, plain or gzip (zlib
 * tells them apart by the gzip magic, not the name), through a window of
 * at most WINDOW_MAX bytes: memory does not grow with the input. */
typedef struct reader {
  gzFile gz;
  char *buf;       /* the window, buf[0..len) */
  size_t len, cap; /* bytes held, bytes allocated */
  size_t pos;      /* the next unread byte, in buf */
  uint64_t base;   /* offset of buf[0] in the decompressed input */
  long line;       /* the line of buf[pos] */
  char last;       /* the byte before pos ('\n' at the start) */
  int eof;         /* the input has no more bytes */
  char err[256];   /* why the input could not be read to its end, or "" */
} reader;

/* Makes n bytes from r->pos readable when the input has them and returns
 * how many are (fewer at the end of the input, after a read error, or
 * past the window's size). The window may move: keep offsets from pos,
 * never pointers, across calls. */
static size_t avail(reader *r, size_t n) {
  while (r->len - r->pos < n && !r->eof && !r->err[0]) {
    if (r->cap - r->len < CHUNK && r->pos) {
      memmove(r->buf, r->buf + r->pos, r->len - r->pos);
      r->base += r->pos;
      r->len -= r->pos;
      r->pos = 0;
    }
    if (r->cap - r->len < CHUNK) {
      if (r->cap >= WINDOW_MAX) break;
      size_t cap = r->cap ? r->cap * 2 : 4 * CHUNK;
      if (cap > WINDOW_MAX) cap = WINDOW_MAX;
      char *b = realloc(r->buf, cap);
      if (!b) {
        snprintf(r->err, sizeof r->err, "out of memory");
        break;
      }
      r->buf = b;
      r->cap = cap;
    }
    int got = gzread(r->gz, r->buf + r->len, (unsigned)CHUNK);
    int zerr = Z_OK;
    const char *zmsg = got <= 0 ? gzerror(r->gz, &zerr) : NULL;
    if (got < 0 || (got == 0 && zerr != Z_OK)) {
      /* zlib names the file "<fd:N>: "; the report names it already */
      if (zmsg && zmsg[0] == '<' && strstr(zmsg, ">: ")) zmsg = strstr(zmsg, ">: ") + 3;
      snprintf(r->err, sizeof r->err, "%s",
               zerr == Z_ERRNO ? strerror(errno)
               : zmsg          ? zmsg
                               : "read error");
    } else if (got == 0) {
      r->eof = 1;
    } else {
      r->len += (size_t)got;
    }
  }
  return r->len - r->pos;
}

/* Moves pos k bytes on, counting the lines passed. */
static void advance(reader *r, size_t k) {
  const char *p = r->buf + r->pos, *end = p + k;
  while ((p = memchr(p, '\n', (size_t)(end - p)))) {
    r->line++;
    p++;
  }
  if (k) r->last = r->buf[r->pos + k - 1];
  r->pos += k;
}

/* The length of the JSON object or array at offset from (from pos),
 * found by counting brackets outside strings, without parsing it. 0 when
 * it does not end within max bytes or before the input ends. */
static size_t value_len_within(reader *r, size_t from, size_t max) {
  int depth = 0, in_str = 0;
  size_t k = from;
  for (;;) {
    size_t have = avail(r, k + 1);
    if (have <= k) return 0;
    if (have > from + max) have = from + max;
    const char *p = r->buf + r->pos;
    for (; k < have; k++) {
      char c = p[k];
      if (in_str) {
        /* most bytes are inside strings: jump to the next quote, which
         * ends the string unless an odd run of backslashes escapes it */
        const char *q = memchr(p + k, '"', have - k);
        if (!q) {
          k = have - 1;
          continue;
        }
        k = (size_t)(q - p);
        size_t bs = 0;
        while (k - bs > from && p[k - bs - 1] == '\\') bs++;
        if (bs % 2 == 0) in_str = 0;
      } else if (c == '"') {
        in_str = 1;
      } else if (c == '{' || c == '[') {
        depth++;
      } else if ((c == '}' || c == ']') && --depth == 0) {
        return k + 1 - from;
      }
    }
    if (k >= from + max) return 0;
  }
}

/* value_len_within a document's largest size. */
static size_t value_len(reader *r, size_t from) {
  return value_len_within(r, from, MAX_DOC);
}

/* Where a byte of JSON text stands: inside a string (after an escape) or not. */
typedef struct strscan {
  int in_str, esc;
} strscan;

/* Takes the next byte c; 1 when c lies outside every string and is not a
 * quote, so it may be structure (brackets, commas). */
static int outside_string(strscan *s, char c) {
  if (s->in_str) {
    if (s->esc)
      s->esc = 0;
    else if (c == '\\')
      s->esc = 1;
    else if (c == '"')
      s->in_str = 0;
    return 0;
  }
  if (c == '"') {
    s->in_str = 1;
    return 0;
  }
  return 1;
}

/* Moves past a value too large to hold: to the end of its line in a file
 * of lines (JSON lines hold no raw newline), else to its closing bracket,
 * counted as value_len does but without keeping the bytes. */
static void skip_value(reader *r, int lines) {
  int depth = 0;
  strscan ss = {0};
  size_t have;
  while ((have = avail(r, CHUNK))) {
    const char *p = r->buf + r->pos;
    for (size_t k = 0; k < have; k++) {
      char c = p[k];
      if (lines) {
        if (c == '\n') {
          advance(r, k + 1);
          return;
        }
      } else if (outside_string(&ss, c)) {
        if (c == '{' || c == '[') {
          depth++;
        } else if ((c == '}' || c == ']') && --depth == 0) {
          advance(r, k + 1);
          return;
        }
      }
    }
    advance(r, have);
  }
}

/* 1 when doc is one of the shapes import reads at the top of a file (not
 * a part of one, such as an event's "mail" object). */
static int top_level_shape(const cJSON *doc) {
  static const char *const keys[] = {"notificationType", "eventType", "Records", "Item",
                                     "Message",          "raw",       "detail"};
  if (!cJSON_IsObject(doc)) return 0;
  for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
    if (cJSON_GetObjectItemCaseSensitive(doc, keys[i])) return 1;
  return cJSON_GetObjectItemCaseSensitive(doc, "messageId") &&
         cJSON_GetObjectItemCaseSensitive(doc, "timeStamp");
}

/* 1 when the value at offset k is a whole document of a shape import
 * reads, followed by what follows a document (the end, a line break, the
 * next document; in an array a comma or its end), not by what follows a
 * part of one (',' or '}' after an event's "Sns" object): a place to
 * resume after a bad one. */
static int resumes_here(reader *r, size_t k, int in_array) {
  size_t len = value_len(r, k);
  if (!len) return 0;
  size_t e = k + len, have;
  while ((have = avail(r, e + 1)) > e &&
         (r->buf[r->pos + e] == ' ' || r->buf[r->pos + e] == '\t' || r->buf[r->pos + e] == '\r'))
    e++;
  if (have > e && !strchr(in_array ? "\n{[,]" : "\n{[", r->buf[r->pos + e])) return 0;
  cJSON *doc = cJSON_ParseWithLength(r->buf + r->pos + k, len);
  int ok = doc && (cJSON_IsArray(doc) || top_level_shape(doc));
  cJSON_Delete(doc);
  return ok;
}

/* import_doc for a document parsed from text[0..len): SES JSON with a key
 * twice or a NUL in a string is refused here as at POST /sns. */
static void import_text_doc(importer *im, const cJSON *doc, const char *text, size_t len,
                            int in_array) {
  const char *why = NULL;
  int compact;
  if (jsoncheck_ex(text, len, &compact, &why)) {
    reject(im, why ? why : "out of memory");
    return;
  }
  im->text_doc = compact ? doc : NULL;
  im->text = text;
  im->text_len = len;
  import_doc(im, doc, in_array);
  im->text_doc = NULL;
  im->text = NULL;
}

static int is_blank(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* After a bad document at pos: how many bytes to skip to the next
 * document. That is the next '{' (or '[' opening a line) where a whole
 * document of a known shape starts, as in records concatenated without
 * separators; or, in a file of lines, the next line that starts with text
 * (a log line). Lines of a pretty-printed document's remains ("key": ...,
 * closing brackets) are never taken for documents. */
static size_t resync(reader *r, int in_array, int lines) {
  int tries = 0;
  for (size_t k = 1;; k++) {
    if (k >= MAX_DOC || avail(r, k + 1) <= k) return k;
    const char *p = r->buf + r->pos;
    char c = p[k];
    int line_start = p[k - 1] == '\n';
    if (c == '{' || (c == '[' && line_start)) {
      if (tries++ < RESYNC_TRIES && resumes_here(r, k, in_array)) return k;
    } else if (line_start && lines && !in_array &&
               ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))) {
      return k;
    }
  }
}

/* Lambda's own lines in its CloudWatch log: no event in them. */
static int lambda_platform_line(const char *s, size_t n) {
  static const char *const prefixes[] = {
      "START RequestId:", "END RequestId:",     "REPORT RequestId:", "INIT_START",
      "INIT_REPORT",      "INIT_RUNTIME_ERROR", "EXTENSION",         "TELEMETRY",
      "RESTORE_START",    "RESTORE_REPORT",     "XRAY TraceId:"};
  for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++) {
    size_t len = strlen(prefixes[i]);
    if (n >= len && memcmp(s, prefixes[i], len) == 0) return 1;
  }
  return 0;
}

/* A line that is not JSON: a line of a Lambda's CloudWatch log
 * (TIMESTAMP<TAB>REQUEST_ID<TAB>LEVEL<TAB>message, or an export's
 * "INGESTED TIMESTAMP..."), whose message may be the event it logged as
 * JSON; Lambda's own lines and log messages without JSON are counted as
 * log lines; anything else is rejected. */
static void import_line(importer *im, const char *s, size_t n) {
  while (n && is_blank(s[n - 1])) n--;
  if (lambda_platform_line(s, n)) {
    im->log_lines++;
    return;
  }
  const char *tab = memchr(s, '\t', n);
  if (!tab) {
    reject(im, "not valid JSON");
    return;
  }
  for (const char *p = tab; p < s + n; p++) {
    if (*p != '{' || (p[-1] != '\t' && p[-1] != ' ')) continue;
    const char *end = NULL;
    arena_begin(); /* as in import_stream */
    cJSON *doc = cJSON_ParseWithLengthOpts(p, (size_t)(s + n - p), &end, 0);
    if (doc && end == s + n) {
      import_text_doc(im, doc, p, (size_t)(end - p), 0);
      cJSON_Delete(doc);
      arena_end();
      return;
    }
    cJSON_Delete(doc);
    arena_end();
    reject(im, "a log line whose JSON is not valid");
    return;
  }
  if ((s[0] >= '0' && s[0] <= '9') || s[0] == '[') {
    im->log_lines++;
    return;
  }
  reject(im, "not valid JSON");
}

/* The offset in the log line s[0..n) (one with a tab) of the '{' that
 * begins its message's JSON (after a tab or a space), or -1. */
static long log_json_start(const char *s, size_t n) {
  const char *tab = memchr(s, '\t', n);
  if (!tab) return -1;
  for (const char *p = tab; p < s + n; p++)
    if (*p == '{' && (p[-1] == '\t' || p[-1] == ' ')) return (long)(p - s);
  return -1;
}

static int read_node_inspect(importer *im, reader *r, size_t at);

/* The line at pos, n bytes, when it is a log line whose message is JSON
 * printed over several lines (Node's console.log of JSON.stringify(event,
 * null, 2), Python's json.dumps(event, indent=2)): the JSON runs from the
 * line's '{' to its closing bracket on a later line, where only blanks
 * follow it. Imports the document and moves past its last line: 1. 0 when
 * the line is not one (its JSON ends on the line, or no valid JSON ends
 * within LOG_DOC_MAX), having moved nothing. */
static int read_multiline_log(importer *im, reader *r, size_t n) {
  long at = log_json_start(r->buf + r->pos, n);
  if (at < 0 || lambda_platform_line(r->buf + r->pos, n)) return 0;
  if (read_node_inspect(im, r, (size_t)at)) return 1;
  size_t len = value_len_within(r, (size_t)at, LOG_DOC_MAX);
  if (!len || (size_t)at + len <= n) return 0;
  size_t e = (size_t)at + len, have;
  while ((have = avail(r, e + 1)) > e && strchr(" \t\r", r->buf[r->pos + e])) e++;
  if (have > e && r->buf[r->pos + e] != '\n') return 0;
  cJSON *doc = cJSON_ParseWithLength(r->buf + r->pos + at, len);
  if (!doc) return 0;
  import_text_doc(im, doc, r->buf + r->pos + at, len, 0);
  cJSON_Delete(doc);
  advance(r, have > e ? e + 1 : e);
  return 1;
}

/* ---- Node's console.log of an object (util.inspect) ---------------------- */

/* The length of the JavaScript object literal at offset from (from pos),
 * as util.inspect prints one: brackets counted outside strings in ', " or
 * ` quotes. 0 when it does not end within max bytes. */
static size_t js_value_len(reader *r, size_t from, size_t max) {
  int depth = 0;
  char quote = 0, esc = 0;
  for (size_t k = from; k < from + max; k++) {
    if (avail(r, k + 1) <= k) return 0;
    char c = r->buf[r->pos + k];
    if (quote) {
      if (esc)
        esc = 0;
      else if (c == '\\')
        esc = 1;
      else if (c == quote)
        quote = 0;
    } else if (c == '\'' || c == '"' || c == '`') {
      quote = c;
    } else if (c == '{' || c == '[') {
      depth++;
    } else if ((c == '}' || c == ']') && --depth == 0) {
      return k + 1 - from;
    }
  }
  return 0;
}

/* Appends code point cp as UTF-8 to out (at least 4 bytes free). */
static size_t put_utf8(char *out, unsigned cp) {
  if (cp < 0x80) {
    out[0] = (char)cp;
    return 1;
  }
  if (cp < 0x800) {
    out[0] = (char)(0xC0 | cp >> 6);
    out[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    out[0] = (char)(0xE0 | cp >> 12);
    out[1] = (char)(0x80 | (cp >> 6 & 0x3F));
    out[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
  }
  out[0] = (char)(0xF0 | cp >> 18);
  out[1] = (char)(0x80 | (cp >> 12 & 0x3F));
  out[2] = (char)(0x80 | (cp >> 6 & 0x3F));
  out[3] = (char)(0x80 | (cp & 0x3F));
  return 4;
}

/* The value of n hex digits at p, or -1. */
static long hex_value(const char *p, const char *end, int n) {
  long v = 0;
  for (int i = 0; i < n; i++) {
    if (p + i >= end || !isxdigit((unsigned char)p[i])) return -1;
    v = v * 16 + (isdigit((unsigned char)p[i]) ? p[i] - '0' : (tolower(p[i]) - 'a' + 10));
  }
  return v;
}

/* Decodes the JavaScript string literal at *pp (its quote first) into
 * out (NUL-terminated, at most the literal's size plus one), moving *pp
 * past it. Returns 0, or -1 when it is not one (or holds a NUL). */
static int js_string(const char **pp, const char *end, char *out, size_t *outlen) {
  const char *p = *pp;
  char quote = *p++;
  size_t n = 0;
  while (p < end && *p != quote) {
    char c = *p++;
    if (c != '\\') {
      out[n++] = c;
      continue;
    }
    if (p >= end) return -1;
    c = *p++;
    long cp = -1;
    switch (c) {
      case 'n': out[n++] = '\n'; break;
      case 't': out[n++] = '\t'; break;
      case 'r': out[n++] = '\r'; break;
      case 'b': out[n++] = '\b'; break;
      case 'f': out[n++] = '\f'; break;
      case 'v': out[n++] = '\v'; break;
      case 'x': cp = hex_value(p, end, 2), p += 2; break;
      case 'u':
        cp = hex_value(p, end, 4), p += 4;
        if (cp >= 0xD800 && cp < 0xDC00 && p + 1 < end && p[0] == '\\' && p[1] == 'u') {
          long lo = hex_value(p + 2, end, 4);
          if (lo >= 0xDC00 && lo < 0xE000) {
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            p += 6;
          }
        }
        break;
      default: out[n++] = c; break; /* \' \" \` \\ and the like */
    }
    if (c == 'x' || c == 'u') {
      if (cp <= 0) return -1;
      n += put_utf8(out + n, (unsigned)cp);
    }
  }
  if (p >= end) return -1;
  out[n] = 0;
  *outlen = n;
  *pp = p + 1;
  return 0;
}

/* Writes the object literal text[0..len), as util.inspect prints it
 * (unquoted keys, strings in ', " or ` quotes, split strings joined with
 * +), as JSON into out. *cut is set when it holds what util.inspect
 * prints in place of what it left out ([Object], [Array], "... N more
 * items", [Circular]). Returns 0, or -1 when the text is not such a
 * literal (or SL_ENOMEM). */
static int inspect_to_json(const char *text, size_t len, buf *out, int *cut) {
  const char *p = text, *end = text + len;
  char *str = malloc(len * 2 + 8); /* a decoded string: escapes only shrink, \u at most 4:6 */
  if (!str) return SL_ENOMEM;
  int rc = 0;
  *cut = 0;
  while (p < end && !rc) {
    char c = *p;
    if (is_blank(c) || c == ',' || c == ':' || c == '{' || c == '}' || c == ']') {
      rc = is_blank(c) ? 0 : buf_append(out, p, 1);
      p++;
    } else if (c == '[') {
      static const char *const left_out[] = {"[Object]", "[Array]", "[Circular", "[Function",
                                             "[Getter",  "[class",  "[Symbol"};
      size_t k = 0;
      while (k < sizeof left_out / sizeof left_out[0] &&
             ((size_t)(end - p) < strlen(left_out[k]) ||
              memcmp(p, left_out[k], strlen(left_out[k])) != 0))
        k++;
      if (k < sizeof left_out / sizeof left_out[0]) {
        *cut = 1;
        const char *q = memchr(p, ']', (size_t)(end - p));
        p = q ? q + 1 : end;
        rc = buf_appends(out, "null");
      } else {
        rc = buf_append(out, p++, 1);
      }
    } else if (c == '\'' || c == '"' || c == '`') {
      /* a string, or several joined with + (util.inspect splits long ones) */
      size_t used = 0, n;
      for (;;) {
        if (js_string(&p, end, str + used, &n)) {
          rc = -1;
          break;
        }
        used += n;
        const char *q = p;
        while (q < end && is_blank(*q)) q++;
        if (q >= end || *q != '+') break;
        q++;
        while (q < end && is_blank(*q)) q++;
        if (q >= end || (*q != '\'' && *q != '"' && *q != '`')) {
          rc = -1;
          break;
        }
        p = q;
      }
      if (!rc) rc = buf_json_string(out, str);
    } else if (c == '.' && end - p >= 3 && memcmp(p, "...", 3) == 0) {
      *cut = 1; /* "... 12 more items" */
      while (p < end && *p != '\n' && *p != ']' && *p != '}') p++;
      if (out->len && out->data[out->len - 1] == ',') out->len--;
    } else if (c == '<' && end - p >= 5 && memcmp(p, "<ref ", 5) == 0) {
      const char *q = memchr(p, '>', (size_t)(end - p)); /* names a target of [Circular] */
      p = q ? q + 1 : end;
    } else if (isalpha((unsigned char)c) || c == '_' || c == '$') {
      const char *w = p;
      while (p < end && (isalnum((unsigned char)*p) || *p == '_' || *p == '$')) p++;
      size_t n = (size_t)(p - w);
      const char *q = p;
      while (q < end && is_blank(*q)) q++;
      if (q < end && *q == ':') {
        memcpy(str, w, n);
        str[n] = 0;
        rc = buf_json_string(out, str);
      } else if ((n == 4 && memcmp(w, "true", 4) == 0) || (n == 5 && memcmp(w, "false", 5) == 0) ||
                 (n == 4 && memcmp(w, "null", 4) == 0)) {
        rc = buf_append(out, w, n);
      } else if (n == 9 && memcmp(w, "undefined", 9) == 0) {
        rc = buf_appends(out, "null");
      } else {
        rc = -1;
      }
    } else if (c == '-' || isdigit((unsigned char)c)) {
      const char *w = p;
      while (p < end && (isalnum((unsigned char)*p) || strchr("-+.", *p))) p++;
      rc = buf_append(out, w, (size_t)(p - w));
    } else {
      rc = -1;
    }
  }
  free(str);
  return rc == SL_ETOOBIG ? SL_ENOMEM : rc;
}

/* The log message at offset at of the line at pos, when util.inspect
 * printed it (Node's console.log(event): keys without quotes, over as
 * many lines as it takes): imported as the JSON it stands for, or one
 * rejection when util.inspect left parts out (it stops at depth 2, where
 * an SES event's recipients lie). Moves past its last line: 1; 0 when it
 * is not such a literal, having moved nothing. */
static int read_node_inspect(importer *im, reader *r, size_t at) {
  /* JSON quotes its keys; util.inspect writes them bare or in ' quotes */
  size_t k = at + 1, have;
  while ((have = avail(r, k + 1)) > k && is_blank(r->buf[r->pos + k])) k++;
  if (have <= k) return 0;
  char c = r->buf[r->pos + k];
  if (!(isalpha((unsigned char)c) || c == '_' || c == '$' || c == '\'')) return 0;
  size_t len = js_value_len(r, at, LOG_DOC_MAX);
  if (!len) return 0;
  size_t e = at + len;
  while ((have = avail(r, e + 1)) > e && strchr(" \t\r", r->buf[r->pos + e])) e++;
  if (have > e && r->buf[r->pos + e] != '\n') return 0;
  buf json;
  buf_init(&json, 2 * LOG_DOC_MAX);
  int cut = 0;
  int rc = inspect_to_json(r->buf + r->pos + at, len, &json, &cut);
  cJSON *doc = NULL;
  if (!rc && !cut && !(doc = cJSON_ParseWithLength(json.data, json.len))) rc = -1;
  if (rc == -1) {
    buf_free(&json);
    return 0;
  }
  if (rc)
    reject(im, "out of memory");
  else if (cut)
    reject(im,
           "Node's console.log printed this object cut short (\"[Object]\" past depth 2): no "
           "whole event in it (log JSON.stringify(event) instead)");
  else
    import_text_doc(im, doc, json.data, json.len, 0);
  cJSON_Delete(doc);
  buf_free(&json);
  advance(r, have > e ? e + 1 : e);
  return 1;
}

/* The line at pos: passes it to import_line (or, with the lines of its
 * JSON, to read_multiline_log) and moves past it. A line longer than
 * MAX_DOC is rejected and skipped. */
static void read_line(importer *im, reader *r) {
  size_t have = avail(r, 1), scanned = 0;
  for (;;) {
    const char *nl = memchr(r->buf + r->pos + scanned, '\n', have - scanned);
    if (nl || have < scanned + 1 || r->eof || r->err[0] || have >= MAX_DOC) {
      size_t n = nl ? (size_t)(nl - (r->buf + r->pos)) : have;
      if (nl || have < MAX_DOC) {
        int ends_line = nl != NULL; /* nl points into a window that may move */
        if (ends_line && read_multiline_log(im, r, n)) return;
        import_line(im, r->buf + r->pos, n);
        advance(r, ends_line ? n + 1 : n);
        return;
      }
      break;
    }
    scanned = have;
    have = avail(r, have + CHUNK);
    if (have == scanned) {
      import_line(im, r->buf + r->pos, have);
      advance(r, have);
      return;
    }
  }
  char why[80];
  snprintf(why, sizeof why, "a line longer than %d MiB that is not JSON", MAX_DOC_MIB);
  reject(im, why);
  for (;;) { /* skip to its end */
    const char *nl = memchr(r->buf + r->pos, '\n', have);
    if (nl) {
      advance(r, (size_t)(nl - (r->buf + r->pos)) + 1);
      return;
    }
    advance(r, have);
    if (!(have = avail(r, CHUNK))) return;
  }
}

/* A value inside a top-level array that is not an object or array: up to
 * the next ',' or ']' outside a string, rejected. */
static void read_scalar(importer *im, reader *r) {
  strscan ss = {0};
  size_t k = 0;
  for (;;) {
    size_t have = avail(r, k + 1);
    if (have <= k || k >= MAX_DOC) break;
    char c = r->buf[r->pos + k];
    if (outside_string(&ss, c) && (c == ',' || c == ']' || c == '\n')) break;
    k++;
  }
  reject(im, "not a JSON object or array");
  advance(r, k ? k : 1);
}

/* 1 when the first bytes are not text: a NUL or another control
 * character that JSON text and log lines never hold unescaped. At offset
 * *at. */
static int looks_binary(const char *p, size_t n, size_t *at) {
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)p[i];
    if (c < 0x20 && c != '\t' && c != '\n' && c != '\r') {
      *at = i;
      return 1;
    }
  }
  return 0;
}

static void format_bytes(uint64_t n, char *out, size_t len) {
  if (n >= (uint64_t)1 << 30)
    snprintf(out, len, "%.1f GB", (double)n / (1 << 30));
  else
    snprintf(out, len, "%.0f MB", (double)n / (1 << 20));
}

/* Progress on standard error: on a terminal a bar with events/s and the
 * time left, redrawn a few times a second; otherwise one line every few
 * seconds (for logs). final ends a bar's line. */
static void progress(importer *im, int final) {
  int64_t now = util_now_ms();
  if (!final && now - im->shown_ms < (im->tty ? PROGRESS_TTY_MS : PROGRESS_LOG_MS)) return;
  if (final && !im->line_open) return;
  im->shown_ms = now;
  long events = im->records + (long)im->filling->n + (im->flight ? (long)im->flight->n : 0);
  double secs = (double)(now - im->started_ms) / 1000;
  double rate = secs > 0 ? events / secs : 0;
  uint64_t done = im->bytes_done + (im->current ? (uint64_t)gzoffset(im->current) : 0);
  if (done > im->bytes_total) done = im->bytes_total;
  double frac = im->bytes_total ? (double)done / (double)im->bytes_total : 0;
  char eta[32] = "";
  if (frac > 0.001 && secs > 1) {
    long left = (long)(secs / frac - secs);
    snprintf(eta, sizeof eta, "%ld:%02ld", left / 60, left % 60);
  }
  if (im->tty) {
    char bar[31];
    int fill = (int)(frac * 30);
    for (int i = 0; i < 30; i++) bar[i] = i < fill ? '#' : '-';
    bar[30] = 0;
    fprintf(stderr, "\r[%s] %3d%%  %ld events  %.0f/s%s%s   %s", bar, (int)(frac * 100), events,
            rate, eta[0] ? "  ETA " : "", eta, final ? "\n" : "");
    im->line_open = !final;
  } else if (!final) {
    char total[32];
    format_bytes(im->bytes_total, total, sizeof total);
    fprintf(stderr, "seslog import: %d%% of %s read, %ld events, %.0f/s%s%s\n", (int)(frac * 100),
            total, events, rate, eta[0] ? ", time left " : "", eta);
  }
  fflush(stderr);
}

/* Reads every document of one input: JSON lines, one document, documents
 * concatenated without separators, a top-level array (element by
 * element), and log lines. A bad document is rejected with its line and
 * byte, and reading resumes at the next document. Returns 0, or -1 when
 * the input could not be read to its end (reported). */
static int import_stream(importer *im, reader *r, const char *name) {
  int in_array = 0;
  int lines = 1; /* every document so far began a line: a file of lines */
  r->line = 1;
  size_t at = 0;
  size_t have = avail(r, SNIFF);
  if (have >= 3 && memcmp(r->buf + r->pos, "\xEF\xBB\xBF", 3) == 0) r->pos += 3; /* UTF-8 BOM */
  if (looks_binary(r->buf + r->pos, have < SNIFF ? have : SNIFF, &at)) {
    clear_progress(im);
    fprintf(stderr,
            "seslog import: %s is not JSON text (binary data at byte %zu); the file was not "
            "read\n",
            name, at);
    return -1;
  }
  unsigned tick = 0;
  while (!im->db_failed) {
    /* blanks, and between an array's elements their commas */
    for (;;) {
      if (!avail(r, 1)) break;
      char c = r->buf[r->pos];
      if (c == '\n' || c == ' ' || c == '\t' || c == '\r' || (in_array && c == ','))
        advance(r, 1);
      else
        break;
    }
    if (!avail(r, 1)) break;
    char c = r->buf[r->pos];
    im->at =
        (struct where){.file = name, .line = r->line, .offset = r->base + r->pos, .has_offset = 1};
    int line_start = r->last == '\n';
    if (in_array && c == ']') {
      in_array = 0;
      advance(r, 1);
      continue;
    }
    int text = 0; /* a line of text, such as "[INFO]..." */
    if (!in_array && c == '[') {
      /* a top-level array is read element by element */
      size_t k = 1, n;
      while ((n = avail(r, k + 1)) > k && is_blank(r->buf[r->pos + k])) k++;
      char d = n > k ? r->buf[r->pos + k] : ']';
      if (strchr("{[]\"-0123456789tfn", d)) {
        in_array = 1;
        advance(r, 1);
        continue;
      }
      text = 1;
    }
    if (!text && (c == '{' || c == '[')) {
      size_t len = value_len(r, 0);
      /* The document's tree, and every cJSON string made from it, live in
       * this thread's arena until its events are made (arena.h). */
      arena_begin();
      cJSON *doc = len ? cJSON_ParseWithLength(r->buf + r->pos, len) : NULL;
      if (doc) {
        import_text_doc(im, doc, r->buf + r->pos, len, in_array);
        cJSON_Delete(doc);
        arena_end();
        advance(r, len);
      } else {
        arena_end();
        size_t skip = resync(r, in_array, lines && line_start);
        int at_end = avail(r, skip + 1) <= skip;
        if (!len && !at_end && skip >= MAX_DOC) {
          /* no end within MAX_DOC and no document after it: a document
           * too large to hold, skipped whole */
          uint64_t from = r->base + r->pos;
          skip_value(r, lines && line_start);
          char big[160];
          snprintf(big, sizeof big, "a document larger than %d MiB (%llu bytes, not read)",
                   MAX_DOC_MIB, (unsigned long long)(r->base + r->pos - from));
          reject(im, big);
          continue;
        }
        char msg[160];
        if (len)
          snprintf(msg, sizeof msg, "not valid JSON");
        else if (at_end)
          snprintf(msg, sizeof msg, "not valid JSON (cut short by the end of the input)");
        else
          snprintf(msg, sizeof msg,
                   "not valid JSON (cut short or damaged; the next document begins at byte %llu)",
                   (unsigned long long)(r->base + r->pos + skip));
        reject(im, msg);
        advance(r, skip);
      }
      if (!line_start) lines = 0;
    } else if (in_array) {
      read_scalar(im, r);
    } else {
      read_line(im, r);
    }
    if (!(++tick & 63)) progress(im, 0);
  }
  if (r->err[0]) {
    settle(im);
    clear_progress(im);
    fprintf(stderr,
            "seslog import: %s could not be read past byte %llu (%s); what came before was "
            "read\n",
            name, (unsigned long long)(r->base + r->len), r->err);
    return -1;
  }
  return 0;
}

/* Imports one file ("-": standard input). Returns 0 or -1 (reported). */
static int import_file(importer *im, const char *path) {
  int fd = strcmp(path, "-") == 0 ? dup(0) : open(path, O_RDONLY);
  gzFile gz = fd >= 0 ? gzdopen(fd, "rb") : NULL;
  if (!gz) {
    clear_progress(im);
    fprintf(stderr, "seslog import: cannot read %s: %s\n", path,
            fd < 0 ? strerror(errno) : "out of memory");
    if (fd >= 0) close(fd);
    return -1;
  }
  gzbuffer(gz, 128 * 1024);
  reader r = {.gz = gz, .last = '\n'};
  im->current = gz;
  im->files++;
  im->overlap = 1;
  int rc = import_stream(im, &r, path);
  settle(im); /* what follows the file reports after it */
  im->overlap = 0;
  if (im->report_file == path) report_unlisted(im);
  im->bytes_done += (uint64_t)gzoffset(gz);
  im->current = NULL;
  gzclose(gz);
  free(r.buf);
  return rc;
}

/* ---- the importer's interface (import.h) ------------------------------- */

int import_new(store *st, int verify, const char *cert_dir, uint64_t bytes_total, importer **out) {
  importer *im = calloc(1, sizeof *im);
  if (!im) return SL_ENOMEM;
  im->st = st;
  im->verify = verify;
  snprintf(im->cert_dir, sizeof im->cert_dir, "%s", cert_dir);
  im->bytes_total = bytes_total;
  im->tty = isatty(2);
  im->started_ms = im->shown_ms = util_now_ms();
  im->filling = &im->batches[0];
  /* without a writer thread every batch is written before reading on */
  if (pthread_mutex_init(&im->mu, NULL) == 0) {
    if (pthread_cond_init(&im->cv, NULL) == 0) {
      im->writer_started = pthread_create(&im->writer, NULL, writer_main, im) == 0;
      if (!im->writer_started) pthread_cond_destroy(&im->cv);
    }
    if (!im->writer_started) pthread_mutex_destroy(&im->mu);
  }
  *out = im;
  return 0;
}

int import_path(importer *im, const char *path) {
  if (import_file(im, path) == 0) return 0;
  im->files_failed = 1;
  return -1;
}

void import_set_source(importer *im, const char *name) {
  im->at = (struct where){.file = name};
}

void import_dynamodb_item(importer *im, long n, const cJSON *item) {
  im->at.line = n;
  ses_event *ev;
  const char *why = NULL;
  int rc = ses_from_dynamodb_item(item, &ev, &why);
  if (rc) {
    const cJSON *mid = cJSON_GetObjectItemCaseSensitive(item, "messageId");
    if (cJSON_IsObject(mid)) mid = cJSON_GetObjectItemCaseSensitive(mid, "S");
    char msg[512];
    snprintf(msg, sizeof msg, "not a usable DynamoDB item%s%.200s%s: %s",
             cJSON_IsString(mid) ? " (messageId " : "", cJSON_IsString(mid) ? mid->valuestring : "",
             cJSON_IsString(mid) ? ")" : "", why ? why : sl_strerror(rc));
    reject(im, msg);
    return;
  }
  add_event(im, ev);
}

void import_source_failed(importer *im) {
  im->source_failed = 1;
}

int import_stopped(const importer *im) {
  return im->db_failed;
}

void import_finish(importer *im, struct import_counts *out) {
  if (!im->db_failed) flush(im);
  settle(im);
  progress(im, 1);
  /* events read but not written when the database stopped taking writes */
  long pending = (long)im->filling->n;
  *out = (struct import_counts){.files = im->files,
                                .records = im->records + pending,
                                .log_lines = im->log_lines,
                                .imported = im->imported,
                                .duplicates = im->duplicates,
                                .rejected = im->rejected + pending,
                                .failed = im->db_failed || im->source_failed || im->files_failed};
}

void import_free(importer *im) {
  if (!im) return;
  settle(im);
  if (im->writer_started) {
    pthread_mutex_lock(&im->mu);
    im->quit = 1;
    pthread_cond_signal(&im->cv);
    pthread_mutex_unlock(&im->mu);
    pthread_join(im->writer, NULL);
    pthread_cond_destroy(&im->cv);
    pthread_mutex_destroy(&im->mu);
  }
  for (size_t i = 0; i < im->filling->n; i++) store_req_free(im->filling->req[i]);
  while (im->certs) {
    cert_slot *c = im->certs;
    im->certs = c->next;
    free(c->name);
    sns_cert_free(c->cert);
    free(c);
  }
  free(im);
}
