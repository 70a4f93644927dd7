/* fuzz_text.c - libFuzzer target for the small text parsers and writers of
 * issue 16: strict ISO-8601 times (util.h), the CSV cell writer (csv.h) and
 * the duplicate-key and NUL check of JSON text (jsoncheck.h).
 *
 * The input, NUL-terminated at its first NUL, is used as each of:
 *  - a time: when util_parse_iso8601 accepts it, formatting the result and
 *    parsing that again gives the same instant; an input already in the
 *    canonical form "YYYY-MM-DDTHH:MM:SS.mmmZ" formats back to itself (a
 *    day or second that does not exist would roll over and differ).
 *  - a CSV cell: the cell written by csv_cell has no control byte but TAB,
 *    CR and LF, and those only inside quotes; no cell starts a formula
 *    (= + - @ TAB CR first, also after the opening quote); unquoted and
 *    unguarded it is the input again when the input had no control bytes.
 *  - JSON: when cJSON parses it and jsoncheck finds nothing, no object of
 *    cJSON's tree has two members with the same name; and when
 *    jsoncheck_compact takes it, cJSON prints the tree back to it. */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "csv.h"
#include "error.h"
#include "jsoncheck.h"
#include "util.h"

#define CHECK(cond)                                                                         \
  do {                                                                                      \
    if (!(cond)) {                                                                          \
      fprintf(stderr, "fuzz_text: check failed at %s:%d: %s\n", __FILE__, __LINE__, #cond); \
      abort();                                                                              \
    }                                                                                       \
  } while (0)

static void check_time(const char *s) {
  int64_t ms;
  if (util_parse_iso8601(s, &ms) != 0) return;
  char out[25];
  util_format_iso8601(ms, out);
  int64_t again;
  /* Years outside 0000-9999 (through an offset) are clamped by the formatter. */
  if (strncmp(out, "0000", 4) == 0 || strncmp(out, "9999", 4) == 0) return;
  CHECK(util_parse_iso8601(out, &again) == 0);
  CHECK(again == ms);
  if (strlen(s) == 24 && s[10] == 'T' && s[19] == '.' && s[23] == 'Z') CHECK(strcmp(out, s) == 0);
}

static int formula_start(char c) {
  return c == '=' || c == '+' || c == '-' || c == '@' || c == '\t' || c == '\r';
}

static void check_csv(const char *s) {
  buf b;
  buf_init(&b, 4 * strlen(s) + 8);
  CHECK(csv_cell(&b, s) == 0);
  const char *o = b.data ? b.data : "";
  size_t n = b.len;
  int quoted = n >= 2 && o[0] == '"' && o[n - 1] == '"';
  int controls = 0;
  for (const char *p = s; *p; p++) {
    unsigned char c = (unsigned char)*p;
    if (c < 0x20 || c == 0x7f) controls = 1;
  }
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)o[i];
    CHECK(!(c < 0x20 && c != '\t' && c != '\r' && c != '\n') && c != 0x7f);
    if (c == '\t' || c == '\r' || c == '\n') CHECK(quoted);
  }
  if (n) CHECK(!formula_start(o[0]));
  if (quoted) CHECK(!formula_start(o[1]));
  if (!controls) {
    /* Unquote ("" stands for "), then unguard: the input again. */
    char *plain = malloc(n + 1);
    CHECK(plain != NULL);
    size_t k = 0;
    if (quoted) {
      for (size_t i = 1; i + 1 < n; i++) {
        plain[k++] = o[i];
        if (o[i] == '"') {
          CHECK(o[i + 1] == '"');
          i++;
        }
      }
    } else {
      CHECK(!memchr(o, '"', n) && !memchr(o, ',', n));
      memcpy(plain, o, n);
      k = n;
    }
    plain[k] = 0;
    CHECK(strcmp(csv_unguard(plain), s) == 0);
    free(plain);
  }
  buf_free(&b);
}

/* 1 when an object under item has two members with the same name. */
static int tree_has_duplicate(const cJSON *item, int depth) {
  if (depth > 1100) return 0;
  for (const cJSON *a = item ? item->child : NULL; a; a = a->next) {
    if (cJSON_IsObject(item))
      for (const cJSON *b = a->next; b; b = b->next)
        if (a->string && b->string && strcmp(a->string, b->string) == 0) return 1;
    if (tree_has_duplicate(a, depth + 1)) return 1;
  }
  return 0;
}

static void check_json(const char *s, size_t n) {
  const char *end = NULL;
  cJSON *root = cJSON_ParseWithLengthOpts(s, n, &end, 0);
  if (!root) return;
  const char *why = NULL;
  int rc = jsoncheck(s, (size_t)(end - s), &why);
  CHECK(rc == 0 || rc == SL_EDUPKEY || rc == SL_ENUL || rc == SL_EJSON || rc == SL_ENOMEM);
  CHECK(rc == 0 || why != NULL);
  if (rc == 0) CHECK(!tree_has_duplicate(root, 0));
  /* a text jsoncheck_compact takes is byte for byte cJSON's compact print
   * of it: ses.c stores a copy of it instead of printing */
  size_t len = (size_t)(end - s);
  if (rc == 0 && jsoncheck_compact(s, len)) {
    char *printed = cJSON_PrintUnformatted(root);
    CHECK(printed && strlen(printed) == len && memcmp(printed, s, len) == 0);
    cJSON_free(printed);
  }
  cJSON_Delete(root);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *s = malloc(size + 1);
  if (!s) return 0;
  memcpy(s, data, size);
  s[size] = 0;
  check_time(s);
  check_csv(s);
  check_json((const char *)data, size);
  free(s);
  return 0;
}
