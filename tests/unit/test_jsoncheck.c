/* test_jsoncheck.c - duplicate keys at any depth and NUL in strings
 * (issue 16, findings 7 and 9). */
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

const struct unit_test jsoncheck_tests[] = {{"duplicates", t_duplicates}, {"nul", t_nul}, {0}};
