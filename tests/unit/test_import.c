/* test_import.c - every document shape `seslog import` reads, through
 * cmd_import itself (the importer has no smaller API): a file of each
 * shape in a temporary folder, imported into a temporary database; the
 * summary line, the exit status, the rejection lines and the stored rows
 * are checked. */
#include <cjson/cJSON.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "cmd.h"
#include "unit.h"
#include "util.h"

static char dir[64], dbpath[128];
static char out_text[8192], err_text[8192];

/* ---- helpers ----------------------------------------------------------- */

static int write_file(const char *name, const char *text) {
  char p[256];
  snprintf(p, sizeof p, "%s/%s", dir, name);
  FILE *f = fopen(p, "w");
  if (!f) return -1;
  fputs(text, f);
  return fclose(f);
}

/* The SES JSON of a Delivery event with mail.messageId id. */
static char *ses_text(const char *id) {
  char *t = malloc(700);
  if (!t) return NULL;
  snprintf(t, 700,
           "{\"eventType\":\"Delivery\",\"mail\":{\"timestamp\":\"2026-11-02T10:00:00.000Z\","
           "\"messageId\":\"%s\",\"source\":\"app@example.com\",\"destination\":"
           "[\"to@example.net\"]},\"delivery\":{\"timestamp\":\"2026-11-02T10:00:01.000Z\","
           "\"recipients\":[\"to@example.net\"],\"processingTimeMillis\":1,"
           "\"smtpResponse\":\"250 ok\",\"reportingMTA\":\"a.example.com\"}}",
           id);
  return t;
}

/* The text of an SNS envelope (unsigned: import checks signatures only
 * with --verify) whose Message is the event id. */
static char *envelope_text(const char *id, int lambda) {
  char *ses = ses_text(id);
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "Type", "Notification");
  cJSON_AddStringToObject(o, "MessageId", "sns-0001");
  cJSON_AddStringToObject(o, "TopicArn", "arn:aws:sns:us-east-1:123456789012:ses-events");
  cJSON_AddStringToObject(o, "Message", ses);
  cJSON_AddStringToObject(o, "Timestamp", "2026-11-02T10:00:02.000Z");
  cJSON_AddStringToObject(o, "SignatureVersion", "1");
  cJSON_AddStringToObject(o, "Signature", "AAAA");
  cJSON_AddStringToObject(o, lambda ? "SigningCertUrl" : "SigningCertURL",
                          "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-x.pem");
  free(ses);
  if (lambda) {
    cJSON *root = cJSON_CreateObject(), *recs = cJSON_AddArrayToObject(root, "Records");
    cJSON *rec = cJSON_CreateObject();
    cJSON_AddStringToObject(rec, "EventSource", "aws:sns");
    cJSON_AddItemToObject(rec, "Sns", o);
    cJSON_AddItemToArray(recs, rec);
    o = root;
  }
  char *t = cJSON_PrintUnformatted(o);
  cJSON_Delete(o);
  return t;
}

/* Runs `seslog import ARGS... FILE` with stdout and stderr captured;
 * returns its exit status. */
static int run_import(const char *file, const char *extra) {
  char path[256];
  snprintf(path, sizeof path, "%s/%s", dir, file);
  char *argv[8];
  int argc = 0;
  argv[argc++] = "import";
  argv[argc++] = "--db";
  argv[argc++] = dbpath;
  if (extra) {
    char *copy = strdup(extra), *sp = strchr(copy, ' ');
    argv[argc++] = copy;
    if (sp) *sp = 0, argv[argc++] = sp + 1;
  }
  argv[argc++] = path;
  fflush(stdout);
  fflush(stderr);
  FILE *o = tmpfile(), *e = tmpfile();
  int so = dup(1), se = dup(2);
  dup2(fileno(o), 1);
  dup2(fileno(e), 2);
  int status = cmd_import(argc, argv, 1);
  fflush(stdout);
  fflush(stderr);
  dup2(so, 1);
  dup2(se, 2);
  close(so);
  close(se);
  rewind(o);
  rewind(e);
  out_text[fread(out_text, 1, sizeof out_text - 1, o)] = 0;
  err_text[fread(err_text, 1, sizeof err_text - 1, e)] = 0;
  fclose(o);
  fclose(e);
  if (extra) free(argv[3]);
  return status;
}

static long long count_where(const char *where) {
  char sql[512];
  snprintf(sql, sizeof sql, "SELECT count(*) FROM SesEventMessages WHERE %s", where);
  sqlite3 *db;
  sqlite3_stmt *st;
  long long v = -1;
  if (sqlite3_open_v2(dbpath, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
      sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
    if (sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
  }
  sqlite3_close(db);
  return v;
}

static int setup(void) {
  snprintf(dir, sizeof dir, "/tmp/seslog-unit-import-XXXXXX");
  if (!mkdtemp(dir)) return -1;
  snprintf(dbpath, sizeof dbpath, "%s/db/seslog.db", dir);
  return 0;
}

static void teardown(void) {
  char cmd[200];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) fprintf(stderr, "    could not remove %s\n", dir);
}

/* ---- the shapes -------------------------------------------------------- */

struct shape {
  const char *name; /* also the file name */
  char *(*make)(void);
  const char *ids; /* the messageIds it holds, comma-separated */
};

static char *one(const char *id) {
  return ses_text(id);
}
static char *mk_ses_document(void) {
  return one("doc-1");
}
static char *mk_ses_notification(void) {
  return util_strdup(
      "{\"notificationType\":\"Bounce\",\"mail\":{\"timestamp\":\"2026-11-02T10:00:00.000Z\","
      "\"messageId\":\"notif-1\",\"source\":\"app@example.com\",\"destination\":"
      "[\"gone@example.net\"]},\"bounce\":{\"bounceType\":\"Permanent\",\"bounceSubType\":"
      "\"General\",\"bouncedRecipients\":[{\"emailAddress\":\"gone@example.net\"}],"
      "\"timestamp\":\"2026-11-02T10:00:01.000Z\",\"feedbackId\":\"fb-notif-1\"}}");
}
static char *mk_json_lines(void) {
  char *a = one("line-1"), *b = one("line-2");
  size_t n = strlen(a) + strlen(b) + 8;
  char *t = malloc(n);
  snprintf(t, n, "%s\n\n%s\n", a, b);
  free(a);
  free(b);
  return t;
}
static char *mk_concatenated(void) { /* Kinesis Data Firehose: no separator */
  char *a = one("cat-1"), *b = one("cat-2");
  size_t n = strlen(a) + strlen(b) + 1;
  char *t = malloc(n);
  snprintf(t, n, "%s%s", a, b);
  free(a);
  free(b);
  return t;
}
static char *mk_array(void) {
  char *a = one("arr-1"), *b = one("arr-2");
  size_t n = strlen(a) + strlen(b) + 8;
  char *t = malloc(n);
  snprintf(t, n, "[%s,\n%s]", a, b);
  free(a);
  free(b);
  return t;
}
static char *mk_envelope(void) {
  return envelope_text("env-1", 0);
}
static char *mk_lambda(void) {
  return envelope_text("lambda-1", 1);
}
static char *mk_eventbridge(void) {
  char *d = one("eb-1");
  size_t n = strlen(d) + 200;
  char *t = malloc(n);
  snprintf(t, n,
           "{\"version\":\"0\",\"source\":\"aws.ses\",\"detail-type\":\"Email Delivered\","
           "\"detail\":%s}",
           d);
  free(d);
  return t;
}
static char *mk_query_jsonl(void) { /* a line of `seslog query --format jsonl` */
  char *d = one("jsonl-1");
  size_t n = strlen(d) + 200;
  char *t = malloc(n);
  snprintf(t, n,
           "{\"messageId\":\"jsonl-1\",\"timeStamp\":\"2026-11-02T10:00:01.000Z\","
           "\"snsMessageId\":\"sns-9\",\"raw\":%s}\n",
           d);
  free(d);
  return t;
}
static char *mk_ddb_item(void) { /* a DynamoDB export line and a bare item */
  return util_strdup(
      "{\"Item\":{\"messageId\":{\"S\":\"ddb-1\"},\"timeStamp\":{\"S\":\"2025-06-01T10:00:00."
      "000Z\"},"
      "\"notificationType\":{\"S\":\"Bounce\"},\"destinationAddress\":{\"S\":\"a@example.net\"},"
      "\"bouncedRecipients\":{\"S\":\"[{\\\"emailAddress\\\":\\\"a@example.net\\\"}]\"}}}\n"
      "{\"messageId\":{\"S\":\"ddb-2\"},\"timeStamp\":{\"S\":\"2025-06-02T11:30:00.500Z\"},"
      "\"notificationType\":{\"S\":\"Complaint\"},\"feedbackId\":{\"S\":\"ddb-fb-2\"},"
      "\"destinationAddress\":{\"S\":\"c@example.net\"}}\n");
}

static const struct shape shapes[] = {
    {"ses-event.json", mk_ses_document, "doc-1"},
    {"ses-notification.json", mk_ses_notification, "notif-1"},
    {"lines.jsonl", mk_json_lines, "line-1,line-2"},
    {"firehose-concatenated", mk_concatenated, "cat-1,cat-2"},
    {"array.json", mk_array, "arr-1,arr-2"},
    {"sns-envelope.json", mk_envelope, "env-1"},
    {"lambda-sns.json", mk_lambda, "lambda-1"},
    {"eventbridge.json", mk_eventbridge, "eb-1"},
    {"query.jsonl", mk_query_jsonl, "jsonl-1"},
    {"dynamodb.json", mk_ddb_item, "ddb-1,ddb-2"},
    {0},
};

/* Each stored row has its messageId; returns how many ids were listed. */
static int ids_stored(const char *ids, long long want_each) {
  char copy[256], where[300];
  snprintf(copy, sizeof copy, "%s", ids);
  int n = 0;
  for (char *save = NULL, *id = strtok_r(copy, ",", &save); id; id = strtok_r(NULL, ",", &save)) {
    snprintf(where, sizeof where, "messageId = '%s'", id);
    if (count_where(where) != want_each) {
      fprintf(stderr, "    messageId %s: %lld rows, expected %lld\n", id, count_where(where),
              want_each);
      return -1;
    }
    n++;
  }
  return n;
}

static int t_every_shape(void) {
  ASSERT_INT_EQ(setup(), 0);
  int total = 0;
  for (const struct shape *s = shapes; s->name; s++) {
    char *text = s->make();
    ASSERT_TRUE(text != NULL);
    ASSERT_INT_EQ(write_file(s->name, text), 0);
    free(text);
    int status = run_import(s->name, NULL);
    int n = ids_stored(s->ids, 1);
    char want[64];
    snprintf(want, sizeof want, "imported %d, duplicates 0, rejected 0\n", n);
    if (status || n < 0 || !strstr(out_text, want)) {
      fprintf(stderr, "    shape %s: status %d\n    stdout: %s    stderr: %s\n", s->name, status,
              out_text, err_text);
      return 1;
    }
    total += n;
    /* the same file again: all duplicates, nothing new */
    ASSERT_INT_EQ(run_import(s->name, NULL), 0);
    snprintf(want, sizeof want, "imported 0, duplicates %d, rejected 0\n", n);
    ASSERT_TRUE(strstr(out_text, want) != NULL);
    ASSERT_INT_EQ(ids_stored(s->ids, 1), n);
  }
  ASSERT_INT_EQ(count_where("1"), total);
  teardown();
  return 0;
}

/* gzip (told by its magic, not its name) and a folder walked in name
 * order, hidden files skipped. */
static int t_gzip_and_folder(void) {
  ASSERT_INT_EQ(setup(), 0);
  char p[256];
  snprintf(p, sizeof p, "%s/tree", dir);
  ASSERT_INT_EQ(mkdir(p, 0700), 0);
  snprintf(p, sizeof p, "%s/tree/sub", dir);
  ASSERT_INT_EQ(mkdir(p, 0700), 0);
  snprintf(p, sizeof p, "%s/tree/sub/events.bin", dir);
  gzFile gz = gzopen(p, "wb");
  ASSERT_TRUE(gz != NULL);
  char *a = mk_json_lines();
  ASSERT_TRUE(gzputs(gz, a) > 0);
  free(a);
  ASSERT_INT_EQ(gzclose(gz), Z_OK);
  char *b = mk_eventbridge();
  ASSERT_INT_EQ(write_file("tree/eb.json", b), 0);
  ASSERT_INT_EQ(write_file("tree/.hidden.json", b), 0); /* same event: would be a duplicate */
  free(b);
  ASSERT_INT_EQ(run_import("tree", NULL), 0);
  ASSERT_TRUE(strstr(out_text, "read 2 files: 3 records\n") != NULL);
  ASSERT_TRUE(strstr(out_text, "imported 3, duplicates 0, rejected 0\n") != NULL);
  ASSERT_INT_EQ(ids_stored("line-1,line-2,eb-1", 1), 3);
  teardown();
  return 0;
}

/* What import cannot use is rejected with its file and line, the rest of
 * the file still imported, and the status is 1. */
static int t_rejected_shapes(void) {
  ASSERT_INT_EQ(setup(), 0);
  char *good = one("good-1");
  size_t n = strlen(good) + 400;
  char *text = malloc(n);
  snprintf(text, n,
           "{\"hello\":1}\n"
           "{\"notificationType\":\"Bounce\", this is not json\n"
           "%s\n"
           "{\"Records\":[{\"NotSns\":{}}]}\n"
           "\"a string\"\n",
           good);
  free(good);
  ASSERT_INT_EQ(write_file("mixed.jsonl", text), 0);
  free(text);
  ASSERT_INT_EQ(run_import("mixed.jsonl", NULL), 1);
  ASSERT_TRUE(strstr(out_text, "imported 1, duplicates 0, rejected 4\n") != NULL);
  ASSERT_TRUE(strstr(err_text, "mixed.jsonl:1: at byte 0: not an SNS envelope") != NULL);
  ASSERT_TRUE(strstr(err_text, "mixed.jsonl:2: at byte 12: not valid JSON") != NULL);
  ASSERT_TRUE(strstr(err_text,
                     "mixed.jsonl:4: at byte 377: a Records entry without an Sns object") != NULL);
  ASSERT_TRUE(strstr(err_text, "mixed.jsonl:5: at byte 405: not valid JSON") != NULL);
  ASSERT_INT_EQ(ids_stored("good-1", 1), 1);
  teardown();
  return 0;
}

/* --verify: a real AWS-signed envelope passes the signature check (and is
 * then refused as carrying no SES event); the tampered copy fails it. */
static int t_verify_real_signatures(void) {
  ASSERT_INT_EQ(setup(), 0);
  static const char *files[] = {"sns-v1-notification-sns-verify-clj.json",
                                "sns-v1-notification-TAMPERED-sns-verify-clj.json"};
  static const char *why[] = {"the SNS Message is not an SES event", "signature check failed"};
  for (int i = 0; i < 2; i++) {
    char rel[128];
    snprintf(rel, sizeof rel, "sns/%s", files[i]);
    char *text = unit_read_fixture(rel, NULL);
    ASSERT_INT_EQ(write_file(files[i], text), 0);
    free(text);
    char extra[300];
    snprintf(extra, sizeof extra, "--verify --sns-cert-dir=%s/certs", unit_fixtures);
    ASSERT_INT_EQ(run_import(files[i], extra), 1);
    if (!strstr(err_text, why[i])) {
      fprintf(stderr, "    %s: stderr: %s\n", files[i], err_text);
      return 1;
    }
  }
  teardown();
  return 0;
}

const struct unit_test import_tests[] = {
    {"every_shape", t_every_shape},
    {"gzip_and_folder", t_gzip_and_folder},
    {"rejected_shapes", t_rejected_shapes},
    {"verify_real_signatures", t_verify_real_signatures},
    {0},
};
