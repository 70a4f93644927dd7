/* fuzz_rawz.c - libFuzzer target for the stored original JSON (rawz.h):
 * tokenizing with the row's column values, compressing, and seslog_raw.
 *
 * The input is split at its NUL bytes: the first part is the text, the
 * next up to RAWZ_NVALUES parts the row's values (missing: NULL). Checks:
 *  - a frame made of the text with those values (rawz_dict_compress, a
 *    dictionary trained at start-up) reads back through seslog_raw with
 *    the same values as the text itself, byte for byte;
 *  - read with no values, it is that text again or an error, never
 *    another text;
 *  - the whole input given to seslog_raw as a stored blob, with the
 *    values, never crashes (any answer or an error). */
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "rawz.h"

#define CHECK(cond)                                                                         \
  do {                                                                                      \
    if (!(cond)) {                                                                          \
      fprintf(stderr, "fuzz_rawz: check failed at %s:%d: %s\n", __FILE__, __LINE__, #cond); \
      abort();                                                                              \
    }                                                                                       \
  } while (0)

static sqlite3 *db;
static rawz_dict *dict;
static sqlite3_stmt *read_all, *read_bare;

/* A database in memory with one dictionary learned from SES-like texts. */
static void setup(void) {
  CHECK(rawz_register() == 0);
  CHECK(sqlite3_open(":memory:", &db) == SQLITE_OK);
  CHECK(sqlite3_exec(db,
                     "CREATE TABLE raw_dicts (id INTEGER PRIMARY KEY, dict BLOB NOT NULL, "
                     "samples INTEGER NOT NULL, createdAt INTEGER NOT NULL)",
                     NULL, NULL, NULL) == SQLITE_OK);
  enum { N = 200 };
  static char texts[N][512];
  const char *ptrs[N];
  size_t lens[N];
  for (int i = 0; i < N; i++) {
    snprintf(texts[i], sizeof texts[i],
             "{\"notificationType\":\"%s\",\"mail\":{\"messageId\":\"0100%08x-%04x\","
             "\"source\":\"s%d@example.com\",\"destination\":[\"r%d@example.net\"]},"
             "\"bounce\":{\"bouncedRecipients\":[{\"emailAddress\":\"r%d@example.net\"}],"
             "\"feedbackId\":\"fb-%d\",\"reportingMTA\":\"dsn; a%d.example.com\"}}",
             i % 3 ? "Bounce" : "Delivery", (unsigned)i * 2654435761u, i, i % 7, i, i, i, i % 5);
    ptrs[i] = texts[i];
    lens[i] = strlen(texts[i]);
  }
  void *d = NULL;
  size_t dlen = 0;
  int samples = 0;
  int64_t id = 0;
  char err[256];
  CHECK(rawz_train_texts(ptrs, lens, NULL, N, N, &d, &dlen, &samples, err, sizeof err) == 0);
  CHECK(rawz_insert(db, d, dlen, samples, &id) == 0);
  free(d);
  rawz_enc *z = NULL;
  CHECK(rawz_enc_new(&z) == 0);
  CHECK(rawz_enc_load(z, db) == 0);
  dict = rawz_enc_dict(z);
  CHECK(dict != NULL);
  rawz_enc_free(z); /* dict holds its own reference */
  CHECK(sqlite3_prepare_v2(db, "SELECT seslog_raw(?1, ?2, ?3, ?4, ?5, ?6)", -1, &read_all, NULL) ==
        SQLITE_OK);
  CHECK(sqlite3_prepare_v2(db, "SELECT seslog_raw(?1)", -1, &read_bare, NULL) == SQLITE_OK);
}

/* Steps st (bound already): 1 with the answer's bytes in *out, *outlen;
 * 0 for an error (or NULL). */
static int answer(sqlite3_stmt *st, char **out, size_t *outlen) {
  *out = NULL;
  *outlen = 0;
  int got = 0;
  if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
    const void *p = sqlite3_column_blob(st, 0);
    *outlen = (size_t)sqlite3_column_bytes(st, 0);
    *out = malloc(*outlen + 1);
    CHECK(*out != NULL);
    if (*outlen) memcpy(*out, p, *outlen);
    got = 1;
  }
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
  return got;
}

static void bind_values(sqlite3_stmt *st, const rawz_values *v) {
  for (int k = 0; k < RAWZ_NVALUES; k++)
    if (v->v[k]) sqlite3_bind_text(st, 2 + k, v->v[k], -1, SQLITE_TRANSIENT);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!db) setup();
  if (size > 1 << 16) return 0;
  char *copy = malloc(size + 1);
  CHECK(copy != NULL);
  memcpy(copy, data, size);
  copy[size] = 0;
  /* the text, then the values, at the NULs */
  const char *text = copy;
  size_t len = strlen(copy);
  rawz_values v = {{0}};
  const char *p = copy + len;
  for (int k = 0; k < RAWZ_NVALUES && p < copy + size; k++) {
    p++;
    v.v[k] = p;
    p += strlen(p);
  }

  void *frame = NULL;
  size_t flen = 0;
  int64_t used = 0;
  CHECK(rawz_dict_compress(dict, text, len, &v, &frame, &flen, &used) == 0);
  if (frame) {
    char *out;
    size_t outlen;
    sqlite3_bind_blob(read_all, 1, frame, (int)flen, SQLITE_STATIC);
    bind_values(read_all, &v);
    CHECK(answer(read_all, &out, &outlen) == 1);
    CHECK(outlen == len && memcmp(out, text, len) == 0);
    free(out);
    sqlite3_bind_blob(read_bare, 1, frame, (int)flen, SQLITE_STATIC);
    if (answer(read_bare, &out, &outlen)) CHECK(outlen == len && memcmp(out, text, len) == 0);
    free(out);
  }
  free(frame);

  /* anything at all as a stored row */
  char *out;
  size_t outlen;
  sqlite3_bind_blob(read_all, 1, data, (int)size, SQLITE_STATIC);
  bind_values(read_all, &v);
  (void)answer(read_all, &out, &outlen);
  free(out);
  free(copy);
  return 0;
}
