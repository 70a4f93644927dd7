/* test_jsoncheck.c - duplicate keys at any depth and NUL in strings
 * (issue 16, findings 7 and 9). */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "jsoncheck.h"
#include "unit.h"

static int check(const char *json) {
  const char *why = NULL;
  return jsoncheck(json, strlen(json), &why);
}

static int t_duplicates(void) {
  ASSERT_INT_EQ(check("{\"a\":1,\"b\":2}"), 0);
  ASSERT_INT_EQ(check("{\"a\":1,\"a\":2}"), SL_EDUPKEY);
  ASSERT_INT_EQ(check("{\"mail\":{\"x\":[{\"k\":1,\"k\":1}]}}"), SL_EDUPKEY);
  ASSERT_INT_EQ(check("{\"bounce\":{},\"x\":{\"bounce\":{}}}"), 0); /* same key, other objects */
  ASSERT_INT_EQ(check("[{\"a\":1},{\"a\":1}]"), 0);
  ASSERT_INT_EQ(check("{\"a\":{\"b\":1},\"a\":[]}"), SL_EDUPKEY);
  ASSERT_INT_EQ(check("{\"a\":\"a\",\"b\":\"a\"}"), 0); /* values are not keys */
  ASSERT_INT_EQ(check("{\"bounce\":1,\"b\\u006funce\":2}"), SL_EDUPKEY);
  ASSERT_INT_EQ(check("{\"\\u00e9\":1,\"\xc3\xa9\":2}"), SL_EDUPKEY);
  ASSERT_INT_EQ(check("{\"\\ud83d\\ude00\":1,\"\xf0\x9f\x98\x80\":2}"), SL_EDUPKEY);
  ASSERT_INT_EQ(check("{\"a\\\"\":1,\"a\":2}"), 0);
  ASSERT_INT_EQ(check("{\"a\\\\\":1,\"a\\\\\":2}"), SL_EDUPKEY);
  /* a large object: sorted, not compared pair by pair */
  char big[40000];
  size_t at = 0;
  big[at++] = '{';
  for (int i = 0; i < 2000; i++)
    at += (size_t)snprintf(big + at, 20, "%s\"k%d\":0", i ? "," : "", i);
  big[at++] = '}';
  big[at] = 0;
  ASSERT_INT_EQ(check(big), 0);
  big[at - 1] = 0;
  strcat(big, ",\"k1234\":1}");
  ASSERT_INT_EQ(check(big), SL_EDUPKEY);
  return 0;
}

static int t_nul(void) {
  ASSERT_INT_EQ(check("{\"a\":\"victim@example.com\\u0000@attacker.example\"}"), SL_ENUL);
  ASSERT_INT_EQ(check("{\"a\\u0000\":1}"), SL_ENUL);
  ASSERT_INT_EQ(check("[\"\\u0000\"]"), SL_ENUL);
  ASSERT_INT_EQ(check("{\"a\":\"\\\\u0000\"}"), 0); /* an escaped backslash, then text */
  ASSERT_INT_EQ(check("{\"a\":\"\\u0001\"}"), 0);
  ASSERT_INT_EQ(check("{\"\\u0zzz\":1,\"\":2}"), SL_ENUL); /* cJSON reads \u0zzz as NUL */
  return 0;
}

/* jsoncheck_syntax: stored JSON text is embedded in an answer only when it
 * is one JSON value; anything else (a row edited by hand) is written as a
 * string instead. */
static int t_syntax(void) {
  static const char *const good[] = {"[]",
                                     "{}",
                                     " [1, -2.5e+3, \"a\\u00e9\\n\", true, false, null] ",
                                     "{\"a\":{\"b\":[{}]}}",
                                     "\"x\"",
                                     "0",
                                     "-0.1E5"};
  static const char *const bad[] = {"",    "[",        "[1,]",       "{\"a\"}",   "{a:1}",
                                    "01",  "1.",       "\"\\x\"",    "\"\\u12\"", "[1] 2",
                                    "tru", "\"a\nb\"", "{\"a\":1,}", "nul"};
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
    if (!jsoncheck_syntax(good[i], strlen(good[i]))) UNIT_FAIL_("refused: %s", good[i]);
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    if (jsoncheck_syntax(bad[i], strlen(bad[i]))) UNIT_FAIL_("taken: %s", bad[i]);
  /* deeper than 64 levels is refused rather than recursed into */
  char deep[200];
  memset(deep, '[', 100);
  memset(deep + 100, ']', 100);
  ASSERT_INT_EQ(jsoncheck_syntax(deep, sizeof deep), 0);
  ASSERT_INT_EQ(jsoncheck_syntax(deep + 40, 120), 1);
  return 0;
}

/* cJSON's compact print of text, or NULL when cJSON does not parse it. */
static char *reprint(const char *text) {
  cJSON *doc = cJSON_ParseWithLength(text, strlen(text));
  char *out = doc ? cJSON_PrintUnformatted(doc) : NULL;
  cJSON_Delete(doc);
  return out;
}

/* jsoncheck_compact says 1 only for a text cJSON prints back byte for
 * byte: the property that lets ses.c copy the text instead of printing. */
static int compact_is(const char *text, int want) {
  int got = jsoncheck_compact(text, strlen(text));
  char *printed = reprint(text);
  if (!printed) UNIT_FAIL_("cJSON does not parse: %s", text);
  int same = strcmp(printed, text) == 0;
  if (got && !same) UNIT_FAIL_("compact, but cJSON prints it as %s: %s", printed, text);
  cJSON_free(printed);
  if (got != want) UNIT_FAIL_("jsoncheck_compact %d, want %d: %s", got, want, text);
  return 0;
}

static int t_compact(void) {
  static const char *const yes[] = {
      "{}",
      "[]",
      "{\"a\":1,\"b\":[true,false,null],\"c\":{\"d\":[]}}",
      "[\"x\\\"y\\\\z\\n\\t\\r\\b\\f\\u001f\\u0001\\u0010/\xc3\xa9\x7f\"]",
      "[0,-5,7,2147483647,2147483648,-2147483648,-2147483649,999999999999999,-123456789012345]",
      "{\"\":\"\",\"k\\\"\":\"v\"}",
      "\"plain\"",
      "12"};
  static const char *const no[] = {" {}",
                                   "{} ",
                                   "{\"a\": 1}",
                                   "[1, 2]",
                                   "{\n\"a\":1}",
                                   "[\"a\\/b\"]",          /* cJSON prints '/' */
                                   "[\"\\u00e9\"]",        /* and U+00E9 as UTF-8 */
                                   "[\"\\u000a\"]",        /* and a line feed as \n */
                                   "[\"\\u001F\"]",        /* and hex in lower case */
                                   "[\"\\ud83d\\ude00\"]", /* and a surrogate pair as UTF-8 */
                                   "[1.5]",
                                   "[1e5]",
                                   "[1E5]",
                                   "[10.0]",
                                   "[-0]",
                                   "[1234567890123456]",
                                   "[\"tab\there\"]", /* a raw control byte: cJSON escapes it */
                                   "{}]",             /* text after the document */
                                   "[1]]"};
  for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
    if (compact_is(yes[i], 1)) return 1;
  for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
    if (compact_is(no[i], 0)) return 1;
  ASSERT_INT_EQ(jsoncheck_compact("", 0), 0);
  ASSERT_INT_EQ(jsoncheck_compact("[\"ab", 4), 0); /* cut inside a string */
  ASSERT_INT_EQ(jsoncheck_compact("[\"\\u00", 7), 0);
  ASSERT_INT_EQ(jsoncheck_compact("{\"a\":1,\"a\":1}", 13), 0); /* refused anyway */
  int compact = 1;
  ASSERT_INT_EQ(jsoncheck_ex("{\"a\": 1}", 8, &compact, NULL), 0);
  ASSERT_INT_EQ(compact, 0);
  ASSERT_INT_EQ(jsoncheck_ex("{\"a\":1}", 7, &compact, NULL), 0);
  ASSERT_INT_EQ(compact, 1);
  /* every SES fixture: its compact print is compact, and the pretty text
   * is not (the fast path is taken for what SNS sends, never wrongly) */
  static const char *const fixtures[] = {"ses-event-bounce-awsdocs.json",
                                         "ses-event-click-awsdocs.json",
                                         "ses-event-complaint-awsdocs.json",
                                         "ses-event-delivery-awsdocs.json",
                                         "ses-event-deliverydelay-awsdocs.json",
                                         "ses-event-open-awsdocs.json",
                                         "ses-event-reject-awsdocs.json",
                                         "ses-event-rendering-failure-awsdocs.json",
                                         "ses-event-send-awsdocs.json",
                                         "ses-event-subscription-awsdocs.json",
                                         "ses-notification-bounce-with-dsn-awsdocs.json",
                                         "ses-notification-delivery-awsdocs.json"};
  for (size_t i = 0; i < sizeof fixtures / sizeof fixtures[0]; i++) {
    char rel[200];
    snprintf(rel, sizeof rel, "ses/%s", fixtures[i]);
    char *text = unit_read_fixture(rel, NULL);
    if (compact_is(text, 0)) return 1;
    char *printed = reprint(text);
    ASSERT_TRUE(printed != NULL);
    if (compact_is(printed, 1)) return 1;
    cJSON_free(printed);
    free(text);
  }
  return 0;
}

/* Strings are skipped eight bytes at a time where plain: a quote,
 * backslash, control byte or NUL at any place of a long string, and keys
 * long enough to span words, are all still seen. */
static int t_long_strings(void) {
  static const struct {
    const char *in; /* what is put in the string */
    int rc, compact;
  } special[] = {{"\\\"", 0, 1}, {"\\\\", 0, 1},          {"\x01", 0, 0},
                 {"\x1f", 0, 0}, {"\\u0000", SL_ENUL, 0}, {"\xc3\xa9", 0, 1},
                 {"\\/", 0, 0},  {"\\u001f", 0, 1},       {"\x7f\xff", 0, 1}};
  char text[128];
  for (size_t k = 0; k < sizeof special / sizeof special[0]; k++) {
    for (size_t at = 0; at < 40; at++) {
      for (size_t after = 0; after < 20; after += 3) {
        size_t n = 0;
        text[n++] = '[';
        text[n++] = '"';
        memset(text + n, 'a', at);
        n += at;
        memcpy(text + n, special[k].in, strlen(special[k].in));
        n += strlen(special[k].in);
        memset(text + n, 'b', after);
        n += after;
        text[n++] = '"';
        text[n++] = ']';
        int compact = -1;
        int rc = jsoncheck_ex(text, n, &compact, NULL);
        if (rc != special[k].rc || (!rc && compact != special[k].compact))
          UNIT_FAIL_("case %zu at %zu after %zu: rc %d compact %d", k, at, after, rc, compact);
      }
    }
  }
  /* a raw NUL byte inside a long string */
  static const char raw_nul[] = "[\"aaaaaaaaaaaa\0aaaaaaaaaaaaaaa\"]";
  ASSERT_INT_EQ(jsoncheck(raw_nul, sizeof raw_nul - 1, NULL), SL_ENUL);
  /* long keys: the same key twice is found, however it is spelled */
  ASSERT_INT_EQ(check("{\"abcdefghijklmnopqrstuvwxyz\":1,\"abcdefghijklmnopqrstuvwxyz\":2}"),
                SL_EDUPKEY);
  ASSERT_INT_EQ(check("{\"abcdefghijklm\\u006eopqrstuvwxyz\":1,\"abcdefghijklmnopqrstuvwxyz\":2}"),
                SL_EDUPKEY);
  ASSERT_INT_EQ(check("{\"abcdefghijklm\\\"opqrstuvwxyz\":1,\"abcdefghijklm\\\"opqrstuvwxyZ\":2}"),
                0);
  /* a string cut short at the end of the text */
  int compact = 1;
  ASSERT_INT_EQ(jsoncheck_ex("[\"abcdefghijklmnopqrstuvwxyz", 28, &compact, NULL), 0);
  ASSERT_INT_EQ(compact, 0);
  ASSERT_INT_EQ(jsoncheck_ex("[\"abcdefghijklmnop\\", 20, &compact, NULL), 0);
  ASSERT_INT_EQ(compact, 0);
  return 0;
}

const struct unit_test jsoncheck_tests[] = {{"duplicates", t_duplicates},
                                            {"nul", t_nul},
                                            {"syntax", t_syntax},
                                            {"compact", t_compact},
                                            {"long_strings", t_long_strings},
                                            {0}};
