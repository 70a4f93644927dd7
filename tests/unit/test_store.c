/* test_store.c - the database: migrations from every schema version, group
 * commit order, and a failed commit that stores nothing and says so. */
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ckptio.h"
#include "error.h"
#include "event_fields.h"
#include "query.h"
#include "rawz.h"
#include "ses.h"
#include "store.h"
#include "unit.h"
#include "util.h"

extern const char schema_sql[]; /* schema/seslog.sql, embedded at build */

/* ---- helpers ----------------------------------------------------------- */

/* A fresh folder under /tmp and the database path inside it. */
static void temp_db(char *dir, size_t dirlen, char *db, size_t dblen) {
  snprintf(dir, dirlen, "/tmp/seslog-unit-XXXXXX");
  if (!mkdtemp(dir)) dir[0] = 0;
  snprintf(db, dblen, "%s/seslog.db", dir);
}

static void temp_db_remove(const char *dir, const char *db) {
  char p[600];
  static const char *tails[] = {"", "-wal", "-shm", "-journal"};
  for (size_t i = 0; i < 4; i++) {
    snprintf(p, sizeof p, "%s%s", db, tails[i]);
    unlink(p);
  }
  rmdir(dir);
}

/* One SQL integer from the database at path (a connection of its own). */
static long long sql_int(const char *path, const char *sql) {
  sqlite3 *db;
  sqlite3_stmt *st;
  long long v = -1;
  if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK &&
      sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
    if (sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
  }
  sqlite3_close(db);
  return v;
}

static int sql_exec(const char *path, const char *sql) {
  sqlite3 *db;
  int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
  /* the schema's sections group diagnostics with seslog_diag */
  if (rc == SQLITE_OK && query_register_functions(db)) rc = SQLITE_ERROR;
  if (rc == SQLITE_OK) rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
  if (rc != SQLITE_OK) fprintf(stderr, "    sql failed: %s\n", sqlite3_errmsg(db));
  sqlite3_close(db);
  return rc == SQLITE_OK ? 0 : -1;
}

/* A distinct Delivery event: message id "m-<n>". */
static ses_event *event_n(int n) {
  char json[600];
  snprintf(json, sizeof json,
           "{\"eventType\":\"Delivery\",\"mail\":{\"timestamp\":\"2026-11-02T10:00:00.000Z\","
           "\"messageId\":\"m-%d\",\"source\":\"app@example.com\",\"destination\":"
           "[\"r%d@example.net\"]},\"delivery\":{\"timestamp\":\"2026-11-02T10:00:01.000Z\","
           "\"recipients\":[\"r%d@example.net\"],\"processingTimeMillis\":1,"
           "\"smtpResponse\":\"250 ok\",\"reportingMTA\":\"a.example.com\"}}",
           n, n, n);
  ses_event *e = NULL;
  const char *why = NULL;
  if (ses_parse(json, strlen(json), NULL, &e, &why)) {
    fprintf(stderr, "    event_n: %s\n", why ? why : "?");
    return NULL;
  }
  return e;
}

/* ---- migrations -------------------------------------------------------- */

struct section {
  int version;
  const char *body;
  size_t len;
};

/* The schema's "-- version N" sections in version order; returns how many. */
static int sections(struct section *sec, int max) {
  const char *marker = "-- version ";
  int n = 0;
  for (const char *p = strstr(schema_sql, marker); p && n < max;) {
    const char *body = strchr(p, '\n');
    if (!body) break;
    const char *next = strstr(body, marker);
    sec[n].version = (int)strtol(p + strlen(marker), NULL, 10);
    sec[n].body = body;
    sec[n].len = next ? (size_t)(next - body) : strlen(body);
    n++;
    p = next;
  }
  for (int i = 1; i < n; i++) /* insertion sort: a handful of sections */
    for (int j = i; j > 0 && sec[j].version < sec[j - 1].version; j--) {
      struct section t = sec[j];
      sec[j] = sec[j - 1];
      sec[j - 1] = t;
    }
  return n;
}

/* Builds the database of an older seslog: the sections up to version v,
 * user_version v, and one event row (with its rollup minute) as that
 * version stored it. */
static int build_at_version(const char *path, const struct section *sec, int n, int v) {
  for (int i = 0; i < n && sec[i].version <= v; i++) {
    char *sql = util_strndup(sec[i].body, sec[i].len);
    int rc = sql ? sql_exec(path, sql) : -1;
    free(sql);
    if (rc) return -1;
  }
  char tail[64];
  snprintf(tail, sizeof tail, "PRAGMA user_version=%d;", v);
  if (sql_exec(path, tail)) return -1;
  if (v == 0) return 0;
  return sql_exec(
      path,
      "INSERT INTO SesEventMessages (messageId, timeStamp, notificationType, "
      "recipients, receivedAt, contentHash, raw, source, destinationAddress) VALUES "
      "('old-1', '2026-01-01T00:00:00.000Z', 'Delivery', '[\"old@example.org\"]', "
      "1767225600000, x'00112233445566778899aabbccddeeff', '{}', 'app@example.com', "
      "'old@example.org');"
      "INSERT INTO rollup_minute (minute, events, deliveries) VALUES (29453760, 1, 1);");
}

static int t_migrations_from_every_version(void) {
  struct section sec[64];
  int n = sections(sec, 64);
  ASSERT_TRUE(n >= 2);
  int latest = sec[n - 1].version;
  for (int i = -1; i < n; i++) {
    int v = i < 0 ? 0 : sec[i].version;
    char dir[64], path[128], err[256] = "";
    temp_db(dir, sizeof dir, path, sizeof path);
    ASSERT_TRUE(dir[0]);
    if (build_at_version(path, sec, n, v)) {
      fprintf(stderr, "    cannot build version %d\n", v);
      return 1;
    }
    struct store_opts o = {0};
    store *s = NULL;
    int rc = store_open(path, &o, &s, err, sizeof err);
    if (rc) fprintf(stderr, "    from version %d: %s\n", v, err);
    ASSERT_INT_EQ(rc, 0);
    /* the old row is there, and a new event goes in beside it */
    store_req r = {.ev = event_n(v + 1000)};
    store_req *rs[] = {&r};
    ASSERT_TRUE(r.ev != NULL);
    ASSERT_INT_EQ(store_write(s, rs, 1), 0);
    ASSERT_INT_EQ(r.result, STORE_STORED);
    ses_event_free(r.ev);
    store_close(s);
    ASSERT_INT_EQ(sql_int(path, "PRAGMA user_version"), latest);
    ASSERT_INT_EQ(sql_int(path, "SELECT count(*) FROM SesEventMessages WHERE messageId = 'old-1'"),
                  v ? 1 : 0);
    ASSERT_INT_EQ(sql_int(path, "SELECT count(*) FROM SesEventMessages"), v ? 2 : 1);
    if (v)
      ASSERT_INT_EQ(sql_int(path, "SELECT deliveries FROM rollup_minute WHERE minute = 29453760"),
                    1);
    /* opening again migrates nothing and changes nothing */
    ASSERT_INT_EQ(store_open(path, &o, &s, err, sizeof err), 0);
    store_close(s);
    ASSERT_INT_EQ(sql_int(path, "SELECT count(*) FROM SesEventMessages"), v ? 2 : 1);
    temp_db_remove(dir, path);
  }
  return 0;
}

/* Version 16 gives outbox rows a kind: the rows of a version 15 database
 * get the kind their payload names (Slack's alerts), the rest 'event'. */
static int t_outbox_kind_from_v15(void) {
  struct section sec[64];
  int n = sections(sec, 64);
  char dir[64], path[128], err[256] = "";
  temp_db(dir, sizeof dir, path, sizeof path);
  ASSERT_TRUE(dir[0]);
  ASSERT_INT_EQ(build_at_version(path, sec, n, 15), 0);
  ASSERT_INT_EQ(
      sql_int(path, "SELECT count(*) FROM pragma_table_info('outbox') WHERE name = 'kind'"), 0);
  ASSERT_INT_EQ(sql_exec(path,
                         "INSERT INTO outbox (id, sink, payload, createdAt, nextAttemptAt) VALUES "
                         "(1, 'slack', '{\"kind\":\"event\",\"event\":{\"kind\":\"x\"}}', 1, 1),"
                         "(2, 'slack', '{\"kind\":\"monitor\",\"monitor\":\"bounceRate\"}', 1, 1),"
                         "(3, 'slack', '{\"kind\":\"unsubscribe\",\"topicArn\":\"arn\"}', 1, 1),"
                         "(4, 'slack', '{\"kind\":\"dnsbl\",\"listed\":true}', 1, 1),"
                         "(5, 'dynamodb', '{\"kind\":{\"S\":\"monitor\"}}', 1, 1),"
                         "(6, 'dynamodb', '{\"kind\":\"monitor\"}', 1, 1),"
                         "(7, 'slack', 'not json', 1, 1);"),
                0);
  struct store_opts o = {0};
  store *s = NULL;
  int rc = store_open(path, &o, &s, err, sizeof err);
  if (rc) fprintf(stderr, "    %s\n", err);
  ASSERT_INT_EQ(rc, 0);
  store_close(s);
  ASSERT_INT_EQ(sql_int(path, "SELECT count(*) FROM outbox"), 7);
  ASSERT_INT_EQ(sql_int(path,
                        "SELECT group_concat(kind, ' ') = 'event monitor unsubscribe dnsbl "
                        "event event event' FROM (SELECT kind FROM outbox ORDER BY id)"),
                1);
  temp_db_remove(dir, path);
  return 0;
}

/* A database from a newer seslog is refused with a sentence, untouched. */
static int t_newer_version_refused(void) {
  char dir[64], path[128], err[256] = "";
  temp_db(dir, sizeof dir, path, sizeof path);
  ASSERT_INT_EQ(sql_exec(path, "PRAGMA user_version=9999;"), 0);
  struct store_opts o = {0};
  store *s = NULL;
  ASSERT_INT_EQ(store_open(path, &o, &s, err, sizeof err), SL_EDB);
  ASSERT_NULL(s);
  ASSERT_TRUE(strstr(err, "newer than this seslog") != NULL);
  ASSERT_INT_EQ(sql_int(path, "PRAGMA user_version"), 9999);
  temp_db_remove(dir, path);
  return 0;
}

/* ---- group commit ------------------------------------------------------ */

#define N_REQS 300

typedef struct order {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int notified;
  int applied[N_REQS + 1]; /* apply order (writer thread) */
  int n_applied;
  int completed[N_REQS + 1]; /* callback order (this thread) */
  int n_completed;
} order;

static order ord;

static void on_notify(void *ud) {
  order *o = ud;
  pthread_mutex_lock(&o->mu);
  o->notified = 1;
  pthread_cond_signal(&o->cv);
  pthread_mutex_unlock(&o->mu);
}

static int apply_mark(store_req *r, sqlite3 *db) {
  (void)db;
  ord.applied[ord.n_applied++] = (int)(intptr_t)r->ud;
  r->result = STORE_STORED;
  return 0;
}

static void on_done(store_req *r) {
  ord.completed[ord.n_completed++] = (int)(intptr_t)r->ud;
}

/* Waits (at most 10 s) until every request came back through its cb. */
static int wait_all(store *s, int want) {
  for (int spins = 0; spins < 1000 && ord.n_completed < want; spins++) {
    pthread_mutex_lock(&ord.mu);
    if (!ord.notified) {
      struct timespec until;
      clock_gettime(CLOCK_REALTIME, &until);
      until.tv_nsec += 10 * 1000 * 1000;
      if (until.tv_nsec >= 1000000000) until.tv_sec++, until.tv_nsec -= 1000000000;
      pthread_cond_timedwait(&ord.cv, &ord.mu, &until);
    }
    ord.notified = 0;
    pthread_mutex_unlock(&ord.mu);
    store_complete(s);
  }
  return ord.n_completed == want ? 0 : -1;
}

/* Requests submitted in one go are applied, stored (ids rising) and
 * answered in submission order, across several batches. */
static int t_group_commit_order(void) {
  char dir[64], path[128], err[256];
  temp_db(dir, sizeof dir, path, sizeof path);
  memset(&ord, 0, sizeof ord);
  pthread_mutex_init(&ord.mu, NULL);
  pthread_cond_init(&ord.cv, NULL);
  struct store_opts o = {
      .batch_max = 64, .queue_max = 4096, .notify = on_notify, .notify_ud = &ord};
  store *s = NULL;
  ASSERT_INT_EQ(store_open(path, &o, &s, err, sizeof err), 0);
  ASSERT_INT_EQ(store_start(s), 0);
  store_req *reqs[N_REQS];
  for (int i = 0; i < N_REQS; i++) {
    store_req *r = calloc(1, sizeof *r);
    ASSERT_TRUE(r != NULL);
    r->ud = (void *)(intptr_t)i;
    r->cb = on_done;
    if (i % 3 == 2) { /* every third one a write of its own */
      r->apply = apply_mark;
      r->ud = (void *)(intptr_t)i;
    } else {
      r->ev = event_n(i);
      ASSERT_TRUE(r->ev != NULL);
    }
    reqs[i] = r;
    ASSERT_INT_EQ(store_submit(s, r), 0);
  }
  ASSERT_INT_EQ(wait_all(s, N_REQS), 0);
  int64_t last_id = 0;
  int k = 0;
  for (int i = 0; i < N_REQS; i++) {
    ASSERT_INT_EQ(ord.completed[i], i);
    ASSERT_INT_EQ(reqs[i]->result, STORE_STORED);
    if (reqs[i]->ev) {
      ASSERT_TRUE(reqs[i]->event_id > last_id);
      last_id = reqs[i]->event_id;
    } else {
      ASSERT_INT_EQ(ord.applied[k++], i);
    }
  }
  ASSERT_INT_EQ(k, ord.n_applied);
  ASSERT_INT_EQ(store_queue_depth(s), 0);
  store_stop(s);
  store_complete(s);
  store_close(s);
  for (int i = 0; i < N_REQS; i++) store_req_free(reqs[i]);
  ASSERT_INT_EQ(sql_int(path, "SELECT count(*) FROM SesEventMessages"), N_REQS - N_REQS / 3);
  /* ids in the order of the message ids' numbers: the submission order */
  ASSERT_INT_EQ(sql_int(path,
                        "SELECT count(*) FROM SesEventMessages a JOIN SesEventMessages b "
                        "ON CAST(substr(a.messageId, 3) AS INTEGER) < "
                        "CAST(substr(b.messageId, 3) AS INTEGER) AND a.id > b.id"),
                0);
  pthread_mutex_destroy(&ord.mu);
  pthread_cond_destroy(&ord.cv);
  temp_db_remove(dir, path);
  return 0;
}

/* A batch whose transaction fails (here a trigger refuses its rollup row,
 * as a full disk would refuse a page) stores nothing: every request of it
 * gets the error (ingest answers them 503), store_health names the cause;
 * the next batch after the cause is gone is stored and health clears. */
static int t_failed_commit(void) {
  char dir[64], path[128], err[256], why[256] = "";
  temp_db(dir, sizeof dir, path, sizeof path);
  struct store_opts o = {0};
  store *s = NULL;
  ASSERT_INT_EQ(store_open(path, &o, &s, err, sizeof err), 0);
  ASSERT_INT_EQ(sql_exec(path,
                         "CREATE TRIGGER no_room BEFORE INSERT ON rollup_minute "
                         "BEGIN SELECT RAISE(ABORT, 'no room left'); END;"),
                0);
  store_req a = {.ev = event_n(1)}, b = {.ev = event_n(2)};
  store_req *rs[] = {&a, &b};
  ASSERT_INT_EQ(store_write(s, rs, 2), SL_EDB);
  ASSERT_INT_EQ(a.result, SL_EDB);
  ASSERT_INT_EQ(b.result, SL_EDB);
  ASSERT_INT_EQ(a.event_id, 0);
  ASSERT_INT_EQ(store_health(s, why, sizeof why), SL_EDB);
  ASSERT_TRUE(strstr(why, "no room left") != NULL);
  ASSERT_INT_EQ(sql_int(path, "SELECT count(*) FROM SesEventMessages"), 0);
  ASSERT_INT_EQ(sql_int(path, "SELECT count(*) FROM recipients"), 0);
  ASSERT_INT_EQ(sql_exec(path, "DROP TRIGGER no_room;"), 0);
  ASSERT_INT_EQ(store_write(s, rs, 2), 0);
  ASSERT_INT_EQ(a.result, STORE_STORED);
  ASSERT_INT_EQ(b.result, STORE_STORED);
  ASSERT_INT_EQ(store_health(s, NULL, 0), 0);
  ses_event_free(a.ev);
  ses_event_free(b.ev);
  store_close(s);
  ASSERT_INT_EQ(sql_int(path, "SELECT count(*) FROM SesEventMessages"), 2);
  temp_db_remove(dir, path);
  return 0;
}

/* A topic first seen in a batch whose commit fails is forgotten with the
 * batch: its id may then go to another topic (here another writer's), and
 * the event stored later names its own ARN, not the id it was given once.
 * The snsMessageId of a canonical UUID is stored as its 16 bytes. */
static int t_failed_commit_forgets_topic(void) {
  char dir[64], path[128], err[256];
  temp_db(dir, sizeof dir, path, sizeof path);
  struct store_opts o = {0};
  store *s = NULL;
  ASSERT_INT_EQ(store_open(path, &o, &s, err, sizeof err), 0);
  ASSERT_INT_EQ(sql_exec(path,
                         "CREATE TRIGGER no_room BEFORE INSERT ON rollup_minute "
                         "BEGIN SELECT RAISE(ABORT, 'no room left'); END;"),
                0);
  store_req a = {.ev = event_n(1)};
  ASSERT_TRUE(a.ev != NULL);
  a.ev->topic_arn = util_strdup("arn:aws:sns:us-east-1:123456789012:first");
  a.ev->sns_message_id = util_strdup("0f8c1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b");
  store_req *rs[] = {&a};
  ASSERT_INT_EQ(store_write(s, rs, 1), SL_EDB);
  ASSERT_INT_EQ(sql_int(path, "SELECT count(*) FROM topics"), 0);
  ASSERT_INT_EQ(sql_exec(path,
                         "DROP TRIGGER no_room; INSERT INTO topics (arn) "
                         "VALUES ('arn:aws:sns:us-east-1:123456789012:other');"),
                0);
  ASSERT_INT_EQ(store_write(s, rs, 1), 0);
  ASSERT_INT_EQ(a.result, STORE_STORED);
  store_close(s);
  ASSERT_INT_EQ(
      sql_int(path,
              "SELECT count(*) FROM SesEventMessages e WHERE e.topicArn IS NULL "
              "AND " EF_SQL_READ_TOPIC_ARN("e.") " = 'arn:aws:sns:us-east-1:123456789012:first'"),
      1);
  ASSERT_INT_EQ(sql_int(path,
                        "SELECT count(*) FROM SesEventMessages e WHERE length(snsMessageId) "
                        "= 16 AND " EF_SQL_READ_SNS_MESSAGE_ID(
                            "e.") " = '0f8c1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b'"),
                1);
  ses_event_free(a.ev);
  temp_db_remove(dir, path);
  return 0;
}

/* ---- prepared events ---------------------------------------------------- */

static const char *const ses_fixtures[] = {
    "ses-event-bounce-awsdocs.json",
    "ses-event-click-awsdocs.json",
    "ses-event-complaint-awsdocs.json",
    "ses-event-delivery-awsdocs.json",
    "ses-event-deliverydelay-awsdocs.json",
    "ses-event-open-awsdocs.json",
    "ses-event-reject-awsdocs.json",
    "ses-event-rendering-failure-awsdocs.json",
    "ses-event-send-awsdocs.json",
    "ses-event-subscription-awsdocs.json",
    "ses-notification-bounce-no-dsn-multi-recipient-awsdocs.json",
    "ses-notification-bounce-with-dsn-awsdocs.json",
    "ses-notification-complaint-no-feedback-type-awsdocs.json",
    "ses-notification-complaint-with-feedback-awsdocs.json",
    "ses-notification-delivery-awsdocs.json",
};
#define N_SES_FIXTURES (sizeof ses_fixtures / sizeof ses_fixtures[0])

static ses_event *fixture_event(const char *name) {
  char rel[200];
  snprintf(rel, sizeof rel, "ses/%s", name);
  size_t len;
  char *text = unit_read_fixture(rel, &len);
  ses_event *e = NULL;
  const char *why = NULL;
  if (ses_parse(text, len, NULL, &e, &why)) fprintf(stderr, "    %s: %s\n", name, why ? why : "?");
  free(text);
  return e;
}

/* A database at path with 200 events and a dictionary trained on them. */
static int db_with_dictionary(const char *path) {
  char err[256];
  struct store_opts o = {0};
  store *s = NULL;
  if (store_open(path, &o, &s, err, sizeof err)) return -1;
  int rc = 0;
  for (int i = 0; i < 200 && !rc; i++) {
    store_req r = {.ev = event_n(i)};
    store_req *rs[] = {&r};
    rc = r.ev ? store_write(s, rs, 1) : -1;
    ses_event_free(r.ev);
  }
  store_close(s);
  sqlite3 *db = NULL;
  void *dict = NULL;
  size_t dlen = 0;
  int samples = 0;
  int64_t id = 0;
  if (!rc) rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK ? 0 : -1;
  if (!rc) rc = rawz_train(db, 200, &dict, &dlen, &samples, err, sizeof err);
  if (!rc) rc = rawz_insert(db, dict, dlen, samples, &id);
  if (rc) fprintf(stderr, "    dictionary: %s\n", err);
  free(dict);
  sqlite3_close(db);
  return rc;
}

/* Writes every SES fixture into the database at path, in one batch,
 * prepared with store_prepare or not. */
static int write_fixtures(const char *path, int prepared) {
  char err[256];
  struct store_opts o = {0};
  store *s = NULL;
  if (store_open(path, &o, &s, err, sizeof err)) return -1;
  store_req reqs[N_SES_FIXTURES] = {0};
  store_req *rs[N_SES_FIXTURES];
  int rc = 0;
  for (size_t i = 0; i < N_SES_FIXTURES; i++) {
    rs[i] = &reqs[i];
    reqs[i].ev = fixture_event(ses_fixtures[i]);
    if (!reqs[i].ev) rc = -1;
    if (!rc && prepared && store_prepare(s, reqs[i].ev, &reqs[i].prep)) rc = -1;
  }
  if (!rc) rc = store_write(s, rs, N_SES_FIXTURES);
  for (size_t i = 0; i < N_SES_FIXTURES; i++) {
    if (!rc && reqs[i].result != STORE_STORED) {
      fprintf(stderr, "    %s: result %d\n", ses_fixtures[i], reqs[i].result);
      rc = -1;
    }
    ses_event_free(reqs[i].ev);
    store_prep_free(reqs[i].prep);
  }
  store_close(s);
  return rc;
}

static int copy_file(const char *from, const char *to) {
  FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
  char b[65536];
  size_t n;
  int rc = in && out ? 0 : -1;
  while (!rc && (n = fread(b, 1, sizeof b, in)) > 0)
    if (fwrite(b, 1, n, out) != n) rc = -1;
  if (in) fclose(in);
  if (out && fclose(out)) rc = -1;
  return rc;
}

/* Events prepared off the writer (store_prepare) make the same rows, byte
 * for byte, as the writer makes on its own: every column of the event
 * (the compressed original, its dictionary, the content hash, the list
 * fields' JSON) and every recipients row, for every SES fixture. */
static int t_prepared_rows_identical(void) {
  char dir[64], a[128], b[200];
  temp_db(dir, sizeof dir, a, sizeof a);
  snprintf(b, sizeof b, "%s/prepared.db", dir);
  ASSERT_INT_EQ(db_with_dictionary(a), 0);
  ASSERT_INT_EQ(copy_file(a, b), 0);
  ASSERT_INT_EQ(write_fixtures(a, 0), 0);
  ASSERT_INT_EQ(write_fixtures(b, 1), 0);
  char sql[600];
  snprintf(sql, sizeof sql,
           "ATTACH '%s' AS p; UPDATE SesEventMessages SET receivedAt = 0; "
           "UPDATE p.SesEventMessages SET receivedAt = 0;",
           b);
  ASSERT_INT_EQ(sql_exec(a, sql), 0);
  /* compressed with the dictionary, so the prepared frames were compared */
  ASSERT_INT_EQ(sql_int(a, "SELECT count(*) FROM SesEventMessages WHERE id > 200 AND rawDict > 0"),
                (long long)N_SES_FIXTURES);
  ASSERT_INT_EQ(sql_int(b, "SELECT count(*) FROM SesEventMessages WHERE id > 200"),
                (long long)N_SES_FIXTURES);
  static const char *const diffs[] = {
      "SELECT * FROM main.SesEventMessages EXCEPT SELECT * FROM p.SesEventMessages",
      "SELECT * FROM p.SesEventMessages EXCEPT SELECT * FROM main.SesEventMessages",
      "SELECT * FROM main.recipients EXCEPT SELECT * FROM p.recipients",
      "SELECT * FROM p.recipients EXCEPT SELECT * FROM main.recipients",
  };
  for (size_t i = 0; i < 4; i++) {
    snprintf(sql, sizeof sql, "SELECT count(*) FROM (%s)", diffs[i]);
    sqlite3 *db;
    sqlite3_stmt *st;
    long long n = -1;
    ASSERT_INT_EQ(sqlite3_open_v2(a, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    char att[300];
    snprintf(att, sizeof att, "ATTACH '%s' AS p", b);
    ASSERT_INT_EQ(sqlite3_exec(db, att, NULL, NULL, NULL), SQLITE_OK);
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
      if (sqlite3_step(st) == SQLITE_ROW) n = sqlite3_column_int64(st, 0);
      sqlite3_finalize(st);
    }
    sqlite3_close(db);
    ASSERT_INT_EQ(n, 0);
  }
  ASSERT_TRUE(sql_int(a, "SELECT count(*) FROM recipients") > 200);
  temp_db_remove(dir, b);
  temp_db_remove(dir, a);
  return 0;
}

/* A dictionary the encoder replaced stays usable by a thread that took it
 * before: its frame names it and reads back as the original. */
static int t_replaced_dictionary_lives_on(void) {
  char dir[64], path[128];
  temp_db(dir, sizeof dir, path, sizeof path);
  ASSERT_INT_EQ(db_with_dictionary(path), 0);
  sqlite3 *db;
  ASSERT_INT_EQ(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
  rawz_enc *z = NULL;
  ASSERT_INT_EQ(rawz_enc_new(&z), 0);
  ASSERT_INT_EQ(rawz_enc_load(z, db), 0);
  int64_t first = rawz_enc_id(z);
  ASSERT_TRUE(first > 0);
  rawz_dict *old = rawz_enc_dict(z);
  ASSERT_TRUE(old != NULL);
  /* a second dictionary, made the current one */
  char err[256];
  void *dict = NULL;
  size_t dlen = 0;
  int samples = 0;
  int64_t second = 0;
  ASSERT_INT_EQ(rawz_train(db, 200, &dict, &dlen, &samples, err, sizeof err), 0);
  ASSERT_INT_EQ(rawz_insert(db, dict, dlen, samples, &second), 0);
  free(dict);
  ASSERT_INT_EQ(rawz_enc_load(z, db), 0);
  ASSERT_TRUE(rawz_enc_id(z) == second && second != first);
  ses_event *e = event_n(7);
  ASSERT_TRUE(e != NULL);
  void *frame = NULL;
  size_t flen = 0;
  int64_t used = 0;
  ASSERT_INT_EQ(rawz_dict_compress(old, e->raw, e->raw_len, NULL, &frame, &flen, &used), 0);
  rawz_dict_release(old);
  ASSERT_TRUE(used == first && frame != NULL && flen < e->raw_len);
  /* the same frame the encoder makes with that dictionary */
  const void *zframe;
  size_t zlen;
  int64_t zused;
  ASSERT_INT_EQ(rawz_compress(z, e->raw, e->raw_len, NULL, &zframe, &zlen, &zused), 0);
  ASSERT_TRUE(zused == second);
  sqlite3_stmt *st;
  ASSERT_INT_EQ(sqlite3_prepare_v2(db, "SELECT seslog_raw(?)", -1, &st, NULL), SQLITE_OK);
  sqlite3_bind_blob(st, 1, frame, (int)flen, SQLITE_STATIC);
  ASSERT_INT_EQ(sqlite3_step(st), SQLITE_ROW);
  ASSERT_INT_EQ(sqlite3_column_bytes(st, 0), (long long)e->raw_len);
  ASSERT_TRUE(memcmp(sqlite3_column_text(st, 0), e->raw, e->raw_len) == 0);
  sqlite3_finalize(st);
  free(frame);
  ses_event_free(e);
  rawz_enc_free(z);
  sqlite3_close(db);
  temp_db_remove(dir, path);
  return 0;
}

/* ---- rollups ----------------------------------------------------------- */

/* A permanent bounce of message "d-<n>" whose diagnostic names word w. */
static ses_event *bounce_n(int n, const char *w) {
  char json[900];
  snprintf(json, sizeof json,
           "{\"eventType\":\"Bounce\",\"mail\":{\"timestamp\":\"2026-11-02T10:00:00.000Z\","
           "\"messageId\":\"d-%d\",\"source\":\"app@example.com\",\"destination\":"
           "[\"r%d@example.net\"]},\"bounce\":{\"bounceType\":\"Permanent\",\"bounceSubType\":"
           "\"General\",\"feedbackId\":\"f-%d\",\"timestamp\":\"2026-11-02T10:00:01.000Z\","
           "\"bouncedRecipients\":[{\"emailAddress\":\"r%d@example.net\",\"action\":\"failed\","
           "\"status\":\"5.1.1\",\"diagnosticCode\":\"smtp; 550 5.1.1 <r%d@example.net> %s "
           "mailbox unavailable\"}]}}",
           n, n, n, n, n, w);
  ses_event *e = NULL;
  const char *why = NULL;
  if (ses_parse(json, strlen(json), NULL, &e, &why)) {
    fprintf(stderr, "    bounce_n: %s\n", why ? why : "?");
    return NULL;
  }
  return e;
}

/* The diagnostic rollup, summed per batch by the writer, counts each
 * bounce under its diagnostic's key: many texts, repeated out of order
 * over several batches, match the keys computed from the stored rows. */
static int t_rollup_diagnostic_keys(void) {
  static const char *words[] = {"alpha", "bravo",  "charlie", "delta",  "echo",  "foxtrot",
                                "golf",  "hotel",  "india",   "juliet", "kilo",  "lima",
                                "mike",  "oscar",  "papa",    "quebec", "romeo", "sierra",
                                "tango", "victor", "whiskey", "xray",   "yankee"};
  enum { N_WORDS = sizeof words / sizeof words[0], N_EVENTS = 150, PER_BATCH = 25 };
  char dir[64], path[128], err[256];
  temp_db(dir, sizeof dir, path, sizeof path);
  struct store_opts o = {.batch_max = 64, .queue_max = 64};
  store *s = NULL;
  ASSERT_INT_EQ(store_open(path, &o, &s, err, sizeof err), 0);
  store_req *reqs[N_EVENTS];
  for (int i = 0; i < N_EVENTS; i++) {
    reqs[i] = calloc(1, sizeof *reqs[i]);
    ASSERT_TRUE(reqs[i] != NULL);
    reqs[i]->ev = bounce_n(i, words[(i * 7) % N_WORDS]);
    ASSERT_TRUE(reqs[i]->ev != NULL);
  }
  for (int i = 0; i < N_EVENTS; i += PER_BATCH)
    ASSERT_INT_EQ(store_write(s, reqs + i, PER_BATCH), 0);
  for (int i = 0; i < N_EVENTS; i++) {
    ASSERT_INT_EQ(reqs[i]->result, STORE_STORED);
    store_req_free(reqs[i]);
  }
  store_close(s);
  ASSERT_INT_EQ(sql_int(path, "SELECT count(DISTINCT diagnostic) FROM rollup_diagnostic_hour"),
                N_WORDS);
  ASSERT_INT_EQ(sql_int(path, "SELECT sum(events) FROM rollup_diagnostic_hour"), N_EVENTS);
  /* every key and count as the rows say (seslog_diag: query_diagnostic_key) */
  ASSERT_INT_EQ(sql_exec(path,
                         "CREATE TABLE diag_check AS SELECT count(*) AS n FROM "
                         "(SELECT seslog_diag(" EF_SQL_READ_DIAGNOSTIC(
                             "") ") AS d, "
                                 "count(*) AS c FROM SesEventMessages GROUP BY 1) e "
                                 "JOIN rollup_diagnostic_hour r ON r.diagnostic = e.d "
                                 "AND r.events = e.c"),
                0);
  ASSERT_INT_EQ(sql_int(path, "SELECT n FROM diag_check"), N_WORDS);
  temp_db_remove(dir, path);
  return 0;
}

/* ---- the checkpointer's paced write-back (ckptio) ---------------------- */

struct step_count {
  int calls;
};

static int count_step(void *ud) {
  ((struct step_count *)ud)->calls++;
  return 0;
}

/* A checkpoint on a ckptio connection copies every frame as a plain one
 * does, asks its hook before each step of CKPTIO_STEP pages and before the
 * sync (so a 1,000-page checkpoint asks at least 1000/64 + 1 times), and
 * leaves a database that reopens whole. */
static int t_ckptio_paced_write_back(void) {
  char dir[64], path[128];
  temp_db(dir, sizeof dir, path, sizeof path);
  sqlite3 *w = NULL, *ck = NULL;
  ASSERT_INT_EQ(sqlite3_open(path, &w), SQLITE_OK);
  ASSERT_INT_EQ(sqlite3_exec(w,
                             "PRAGMA journal_mode=WAL; PRAGMA wal_autocheckpoint=0; "
                             "CREATE TABLE t (id INTEGER PRIMARY KEY, b BLOB);",
                             NULL, NULL, NULL),
                SQLITE_OK);
  struct step_count c = {0};
  long before = ckptio_steps();
  ASSERT_INT_EQ(ckptio_open(path, &ck, count_step, &c), SQLITE_OK);
  ASSERT_INT_EQ(sqlite3_exec(ck, "SELECT count(*) FROM sqlite_schema", NULL, NULL, NULL),
                SQLITE_OK);
  /* 1,000 rows of 3,000 bytes: about 1,000 pages, in 10 transactions */
  for (int t = 0; t < 10; t++) {
    ASSERT_INT_EQ(sqlite3_exec(w,
                               "BEGIN; WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 "
                               "FROM n WHERE i < 100) INSERT INTO t (b) SELECT randomblob(3000) "
                               "FROM n; COMMIT;",
                               NULL, NULL, NULL),
                  SQLITE_OK);
  }
  int log = 0, done = 0;
  ASSERT_INT_EQ(sqlite3_wal_checkpoint_v2(ck, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &done),
                SQLITE_OK);
  ASSERT_TRUE(log >= 1000);
  ASSERT_INT_EQ(done, log);
  ASSERT_TRUE(c.calls >= 1000 / CKPTIO_STEP + 1);
  ASSERT_TRUE(ckptio_steps() - before >= 1000 / CKPTIO_STEP);
  /* the next checkpoint has nothing new to write back: only its sync asks */
  int calls = c.calls;
  ASSERT_INT_EQ(sqlite3_wal_checkpoint_v2(ck, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &done),
                SQLITE_OK);
  ASSERT_TRUE(c.calls - calls <= 1);
  sqlite3_close(ck);
  sqlite3_close(w);
  ASSERT_INT_EQ(sql_int(path, "SELECT count(*) FROM t WHERE length(b) = 3000"), 1000);
  ASSERT_INT_EQ(sql_int(path,
                        "SELECT count(*) FROM pragma_integrity_check WHERE "
                        "integrity_check = 'ok'"),
                1);
  temp_db_remove(dir, path);
  return 0;
}

const struct unit_test store_tests[] = {
    {"migrations_from_every_version", t_migrations_from_every_version},
    {"newer_version_refused", t_newer_version_refused},
    {"outbox_kind_from_v15", t_outbox_kind_from_v15},
    {"group_commit_order", t_group_commit_order},
    {"failed_commit", t_failed_commit},
    {"failed_commit_forgets_topic", t_failed_commit_forgets_topic},
    {"prepared_rows_identical", t_prepared_rows_identical},
    {"replaced_dictionary_lives_on", t_replaced_dictionary_lives_on},
    {"rollup_diagnostic_keys", t_rollup_diagnostic_keys},
    {"ckptio_paced_write_back", t_ckptio_paced_write_back},
    {0},
};
