/* test_rawz.c - the original JSON tokenized with its row's columns: every
 * fixture (the AWS SES examples and the SES messages of the signed SNS
 * notifications) comes back byte for byte through seslog_raw with the
 * row's columns, a tokenized row read without them is an error, and rows
 * of an older seslog (plain text, untokenized frames) read as before and
 * are tokenized by recompression (`seslog vacuum`). */
#include <cJSON.h>
#include <dirent.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "error.h"
#include "rawz.h"
#include "ses.h"
#include "store.h"
#include "unit.h"
#include "util.h"

#define MAX_DOCS 64

/* The fixture events, each with the name of its file. */
struct docs {
  ses_event *ev[MAX_DOCS];
  char name[MAX_DOCS][128];
  int n;
};

static void docs_free(struct docs *d) {
  for (int i = 0; i < d->n; i++) ses_event_free(d->ev[i]);
  d->n = 0;
}

/* Parses json (SNS Timestamp ts or NULL) into d under name; a document
 * that is no SES event (an SNS message of another kind) is skipped. */
static void add_doc(struct docs *d, const char *name, const char *json, size_t len,
                    const char *ts) {
  ses_event *e = NULL;
  const char *why = NULL;
  if (d->n >= MAX_DOCS || ses_parse(json, len, ts, &e, &why)) return;
  d->ev[d->n] = e;
  snprintf(d->name[d->n], sizeof d->name[0], "%s", name);
  d->n++;
}

/* Every SES fixture and the SES message of every untampered SNS
 * notification fixture. */
static int load_docs(struct docs *d) {
  d->n = 0;
  static const char *dirs[] = {"ses", "sns"};
  for (int k = 0; k < 2; k++) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", unit_fixtures, dirs[k]);
    DIR *dir = opendir(path);
    if (!dir) return -1;
    struct dirent *de;
    while ((de = readdir(dir))) {
      if (!strstr(de->d_name, ".json") || strstr(de->d_name, "TAMPERED")) continue;
      char rel[600];
      snprintf(rel, sizeof rel, "%s/%s", dirs[k], de->d_name);
      size_t len;
      char *text = unit_read_fixture(rel, &len);
      if (k == 0) {
        add_doc(d, de->d_name, text, len, NULL);
      } else {
        cJSON *env = cJSON_ParseWithLength(text, len);
        const cJSON *msg = cJSON_GetObjectItemCaseSensitive(env, "Message");
        const cJSON *ts = cJSON_GetObjectItemCaseSensitive(env, "Timestamp");
        if (cJSON_IsString(msg) && cJSON_IsString(ts))
          add_doc(d, de->d_name, msg->valuestring, strlen(msg->valuestring), ts->valuestring);
        cJSON_Delete(env);
      }
      free(text);
    }
    closedir(dir);
  }
  return 0;
}

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

/* Writes d's events into the database at path (store_prepare for every
 * other one), setting ids[i] to each row's id. */
static int write_docs(const char *path, struct docs *d, int64_t *ids) {
  char err[256];
  struct store_opts o = {0};
  store *s = NULL;
  if (store_open(path, &o, &s, err, sizeof err)) {
    fprintf(stderr, "    store_open: %s\n", err);
    return -1;
  }
  store_req reqs[MAX_DOCS] = {0};
  store_req *rs[MAX_DOCS];
  int rc = 0;
  for (int i = 0; i < d->n; i++) {
    rs[i] = &reqs[i];
    reqs[i].ev = d->ev[i];
    if (i % 2 && store_prepare(s, d->ev[i], &reqs[i].prep)) rc = -1;
  }
  if (!rc) rc = store_write(s, rs, (size_t)d->n);
  for (int i = 0; i < d->n; i++) {
    if (!rc && reqs[i].result != STORE_STORED) {
      fprintf(stderr, "    %s: result %d\n", d->name[i], reqs[i].result);
      rc = -1;
    }
    ids[i] = reqs[i].event_id;
    store_prep_free(reqs[i].prep);
  }
  store_close(s);
  return rc;
}

/* A dictionary trained on d's events (each many times over: the fixtures
 * are fewer than training needs), stored in db. */
static int store_dictionary(sqlite3 *db, const struct docs *d, int64_t *id) {
  enum { COPIES = 8 };
  const char *texts[MAX_DOCS * COPIES];
  size_t lens[MAX_DOCS * COPIES];
  size_t n = 0;
  for (int c = 0; c < COPIES; c++)
    for (int i = 0; i < d->n; i++, n++) {
      texts[n] = d->ev[i]->raw;
      lens[n] = d->ev[i]->raw_len;
    }
  void *dict = NULL;
  size_t dlen = 0;
  int samples = 0;
  char err[256] = "";
  int rc = rawz_train_texts(texts, lens, NULL, n, 1000, &dict, &dlen, &samples, err, sizeof err);
  if (!rc) rc = rawz_insert(db, dict, dlen, samples, id);
  if (rc) fprintf(stderr, "    dictionary: %d %s\n", rc, err);
  free(dict);
  return rc;
}

/* seslog_raw of row id with the SQL expr (over the row's columns):
 * SQLITE_ROW with the text's bytes compared to want (1 when equal) in
 * *same, or the step's error code with its message in msg. */
static int read_raw(sqlite3 *db, const char *expr, int64_t id, const char *want, size_t wlen,
                    int *same, char *msg, size_t msglen) {
  char sql[512];
  snprintf(sql, sizeof sql, "SELECT %s FROM SesEventMessages WHERE id = ?", expr);
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) return SQLITE_ERROR;
  sqlite3_bind_int64(st, 1, id);
  int rc = sqlite3_step(st);
  *same = 0;
  msg[0] = 0;
  if (rc == SQLITE_ROW) {
    const void *p = sqlite3_column_text(st, 0);
    size_t n = (size_t)sqlite3_column_bytes(st, 0);
    *same = p && n == wlen && memcmp(p, want, n) == 0;
  } else {
    snprintf(msg, msglen, "%s", sqlite3_errmsg(db));
  }
  sqlite3_finalize(st);
  return rc;
}

static int is_name(const struct docs *d, int i, const char *part) {
  return strstr(d->name[i], part) != NULL;
}

/* Every fixture stored with a dictionary comes back byte for byte with
 * the row's columns; the several-recipient bounce and the complaints are
 * tokenized (read without the columns: an error, never another text). */
static int t_fixtures_tokenized(void) {
  struct docs d;
  ASSERT_INT_EQ(load_docs(&d), 0);
  ASSERT_TRUE(d.n >= 15);
  char dir[64], path[128];
  temp_db(dir, sizeof dir, path, sizeof path);
  /* the schema, then a dictionary, then the events */
  char err[256];
  struct store_opts o = {0};
  store *s = NULL;
  ASSERT_INT_EQ(store_open(path, &o, &s, err, sizeof err), 0);
  store_close(s);
  sqlite3 *db;
  ASSERT_INT_EQ(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
  int64_t dict = 0;
  ASSERT_INT_EQ(store_dictionary(db, &d, &dict), 0);
  int64_t ids[MAX_DOCS];
  ASSERT_INT_EQ(write_docs(path, &d, ids), 0);
  int tokenized = 0, bounces = 0;
  for (int i = 0; i < d.n; i++) {
    const ses_event *e = d.ev[i];
    int same;
    char msg[256];
    /* the bounce's column is the compact JSON text of raw's array */
    if (e->bounced_recipients) {
      ASSERT_TRUE(
          memmem(e->raw, e->raw_len, e->bounced_recipients, strlen(e->bounced_recipients)) != NULL);
      bounces++;
    }
    ASSERT_INT_EQ(read_raw(db, "rawDict", ids[i], "", 0, &same, msg, sizeof msg), SQLITE_ROW);
    ASSERT_INT_EQ(read_raw(db, RAWZ_SQL_ROW, ids[i], e->raw, e->raw_len, &same, msg, sizeof msg),
                  SQLITE_ROW);
    if (!same) fprintf(stderr, "    %s differs\n", d.name[i]);
    ASSERT_TRUE(same);
    int rc = read_raw(db, "seslog_raw(raw)", ids[i], e->raw, e->raw_len, &same, msg, sizeof msg);
    if (rc == SQLITE_ROW) {
      ASSERT_TRUE(same); /* not tokenized: the text itself */
    } else {
      ASSERT_TRUE(strstr(msg, "needs its row's columns") != NULL);
      tokenized++;
      /* two of its columns are not enough either */
      ASSERT_TRUE(read_raw(db, "seslog_raw(raw, messageId)", ids[i], e->raw, e->raw_len, &same, msg,
                           sizeof msg) != SQLITE_ROW ||
                  same);
    }
    if (is_name(&d, i, "multi-recipient") || is_name(&d, i, "complaint-with-feedback") ||
        is_name(&d, i, "bounce-with-dsn"))
      ASSERT_TRUE(rc != SQLITE_ROW);
  }
  ASSERT_TRUE(bounces >= 2);
  ASSERT_TRUE(tokenized >= d.n - 2);
  /* every row is a frame of the dictionary */
  sqlite3_stmt *st;
  ASSERT_INT_EQ(sqlite3_prepare_v2(db, "SELECT count(*) FROM SesEventMessages WHERE rawDict = ?",
                                   -1, &st, NULL),
                SQLITE_OK);
  sqlite3_bind_int64(st, 1, dict);
  ASSERT_INT_EQ(sqlite3_step(st), SQLITE_ROW);
  ASSERT_INT_EQ(sqlite3_column_int(st, 0), d.n);
  sqlite3_finalize(st);
  sqlite3_close(db);
  docs_free(&d);
  temp_db_remove(dir, path);
  return 0;
}

/* Rows of an older seslog: plain text, and frames made without tokens.
 * Both read as before (with or without the columns); recompression with a
 * new dictionary tokenizes them and keeps every text. */
static int t_old_rows_and_recompression(void) {
  struct docs d;
  ASSERT_INT_EQ(load_docs(&d), 0);
  char dir[64], path[128];
  temp_db(dir, sizeof dir, path, sizeof path);
  int64_t ids[MAX_DOCS];
  ASSERT_INT_EQ(write_docs(path, &d, ids), 0); /* no dictionary: plain text */
  sqlite3 *db;
  ASSERT_INT_EQ(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
  int64_t first = 0;
  ASSERT_INT_EQ(store_dictionary(db, &d, &first), 0);
  rawz_enc *z = NULL;
  ASSERT_INT_EQ(rawz_enc_new(&z), 0);
  ASSERT_INT_EQ(rawz_enc_load(z, db), 0);
  /* every other row becomes a frame as the previous seslog wrote it */
  sqlite3_stmt *upd;
  ASSERT_INT_EQ(
      sqlite3_prepare_v2(db, "UPDATE SesEventMessages SET raw = ?, rawDict = ? WHERE id = ?", -1,
                         &upd, NULL),
      SQLITE_OK);
  for (int i = 0; i < d.n; i += 2) {
    const void *frame;
    size_t flen;
    int64_t used;
    ASSERT_INT_EQ(rawz_compress(z, d.ev[i]->raw, d.ev[i]->raw_len, NULL, &frame, &flen, &used), 0);
    ASSERT_TRUE(used == first);
    sqlite3_bind_blob(upd, 1, frame, (int)flen, SQLITE_TRANSIENT);
    sqlite3_bind_int64(upd, 2, used);
    sqlite3_bind_int64(upd, 3, ids[i]);
    ASSERT_INT_EQ(sqlite3_step(upd), SQLITE_DONE);
    sqlite3_reset(upd);
  }
  sqlite3_finalize(upd);
  for (int i = 0; i < d.n; i++) {
    int same;
    char msg[256];
    ASSERT_INT_EQ(read_raw(db, "seslog_raw(raw)", ids[i], d.ev[i]->raw, d.ev[i]->raw_len, &same,
                           msg, sizeof msg),
                  SQLITE_ROW);
    ASSERT_TRUE(same);
    ASSERT_INT_EQ(
        read_raw(db, RAWZ_SQL_ROW, ids[i], d.ev[i]->raw, d.ev[i]->raw_len, &same, msg, sizeof msg),
        SQLITE_ROW);
    ASSERT_TRUE(same);
  }
  /* `seslog vacuum`: a new dictionary, trained on the tokenized texts,
   * and every row recompressed with it */
  char err[256] = "";
  void *dict = NULL;
  size_t dlen = 0;
  int samples = 0;
  int64_t second = 0;
  ASSERT_INT_EQ(rawz_train(db, 1000, &dict, &dlen, &samples, err, sizeof err) == SL_EINVAL, 1);
  ASSERT_INT_EQ(store_dictionary(db, &d, &second), 0);
  free(dict);
  ASSERT_INT_EQ(rawz_enc_load(z, db), 0);
  int64_t rows = 0, before = 0, after = 0;
  ASSERT_INT_EQ(rawz_recompress(db, z, &rows, &before, &after, err, sizeof err), 0);
  ASSERT_INT_EQ(rows, d.n);
  int tokenized = 0;
  for (int i = 0; i < d.n; i++) {
    int same;
    char msg[256];
    ASSERT_INT_EQ(
        read_raw(db, RAWZ_SQL_ROW, ids[i], d.ev[i]->raw, d.ev[i]->raw_len, &same, msg, sizeof msg),
        SQLITE_ROW);
    ASSERT_TRUE(same);
    if (read_raw(db, "seslog_raw(raw)", ids[i], "", 0, &same, msg, sizeof msg) != SQLITE_ROW)
      tokenized++;
  }
  ASSERT_TRUE(tokenized >= d.n - 2);
  rawz_enc_free(z);
  sqlite3_close(db);
  docs_free(&d);
  temp_db_remove(dir, path);
  return 0;
}

const struct unit_test rawz_tests[] = {
    {"fixtures_tokenized", t_fixtures_tokenized},
    {"old_rows_and_recompression", t_old_rows_and_recompression},
    {0},
};
