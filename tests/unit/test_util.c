/* test_util.c - time parsing and formatting, durations, deadlines, the capped buffer. */
#include <stdlib.h>

#include "error.h"
#include "unit.h"
#include "util.h"

static int t_iso8601(void) {
  int64_t ms;
  ASSERT_INT_EQ(util_parse_iso8601("2026-03-06T20:00:26.893Z", &ms), 0);
  ASSERT_INT_EQ(ms, 1772827226893LL);
  char out[25];
  util_format_iso8601(ms, out);
  ASSERT_STR_EQ(out, "2026-03-06T20:00:26.893Z");
  ASSERT_INT_EQ(util_parse_iso8601("1970-01-01T00:00:00Z", &ms), 0);
  ASSERT_INT_EQ(ms, 0);
  ASSERT_INT_EQ(util_parse_iso8601("2016-10-19T23:29:41.123456Z", &ms), 0);
  util_format_iso8601(ms, out);
  ASSERT_STR_EQ(out, "2016-10-19T23:29:41.123Z");
  ASSERT_INT_EQ(util_parse_iso8601("2020-02-29T01:00:00.5+01:00", &ms), 0);
  util_format_iso8601(ms, out);
  ASSERT_STR_EQ(out, "2020-02-29T00:00:00.500Z");
  ASSERT_INT_EQ(util_parse_iso8601("2020-13-01T00:00:00Z", &ms), SL_EINVAL);
  ASSERT_INT_EQ(util_parse_iso8601("2020-01-01 00:00", &ms), SL_EINVAL);
  ASSERT_INT_EQ(util_parse_iso8601("2020-01-01T00:00:00", &ms), SL_EINVAL);
  ASSERT_INT_EQ(util_parse_iso8601("2020-01-01T00:00:00.Z", &ms), SL_EINVAL);
  ASSERT_INT_EQ(util_parse_iso8601("2020-01-01T00:00:00Zjunk", &ms), SL_EINVAL);
  return 0;
}

/* Issue 16: times that do not exist are refused, not rolled over. */
static int t_iso8601_strict(void) {
  int64_t ms;
  static const char *bad[] = {
      "2026-02-31T00:00:00Z",      "2026-02-29T00:00:00Z",       "1900-02-29T00:00:00Z",
      "2026-04-31T00:00:00.000Z",  "2026-03-06T20:00:60Z",       "2026-03-06T24:00:00Z",
      "2026-03-06T20:60:00Z",      "2026-03-06T20:00:00+99:99Z", "2026-03-06T20:00:00+99:99",
      "2026-03-06T20:00:00+24:00", "2026-03-06T20:00:00-01:60",  "2026-00-06T20:00:00Z",
      "2026-03-00T20:00:00Z",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    ASSERT_INT_EQ(util_parse_iso8601(bad[i], &ms), SL_EINVAL);
  ASSERT_INT_EQ(util_parse_iso8601("2024-02-29T23:59:59.999Z", &ms), 0);
  ASSERT_INT_EQ(util_parse_iso8601("2000-02-29T00:00:00Z", &ms), 0);
  ASSERT_INT_EQ(util_parse_iso8601("2026-12-31T23:59:59-23:59", &ms), 0);
  ASSERT_INT_EQ(util_parse_iso8601("2026-01-31T00:00:00+23:59", &ms), 0);
  return 0;
}

static int t_duration(void) {
  int64_t ms;
  ASSERT_INT_EQ(util_parse_duration("15m", &ms), 0);
  ASSERT_INT_EQ(ms, 900000);
  ASSERT_INT_EQ(util_parse_duration("7d", &ms), 0);
  ASSERT_INT_EQ(ms, 604800000LL);
  ASSERT_INT_EQ(util_parse_duration("30", &ms), 0);
  ASSERT_INT_EQ(ms, 30000);
  ASSERT_INT_EQ(util_parse_duration("10x", &ms), SL_EINVAL);
  ASSERT_INT_EQ(util_parse_duration("-1m", &ms), SL_EINVAL);
  ASSERT_INT_EQ(util_parse_duration("", &ms), SL_EINVAL);
  return 0;
}

static int t_buf_cap(void) {
  buf b;
  buf_init(&b, 8);
  ASSERT_INT_EQ(buf_appends(&b, "12345"), 0);
  ASSERT_INT_EQ(buf_appends(&b, "678"), 0);
  ASSERT_INT_EQ(buf_appends(&b, "9"), SL_ETOOBIG);
  ASSERT_STR_EQ(b.data, "12345678");
  ASSERT_INT_EQ(buf_printf(&b, "%d", 1), SL_ETOOBIG);
  buf_free(&b);
  buf_init(&b, 1 << 20);
  for (int i = 0; i < 1000; i++) ASSERT_INT_EQ(buf_printf(&b, "%04d", i), 0);
  ASSERT_INT_EQ(b.len, 4000);
  char *p = buf_take(&b);
  ASSERT_TRUE(strncmp(p + 3996, "0999", 4) == 0);
  free(p);
  return 0;
}

static int t_json_string(void) {
  buf b;
  buf_init(&b, 1024);
  ASSERT_INT_EQ(buf_json_string(&b, "a\"b\\c\n<x>\x01"), 0);
  ASSERT_STR_EQ(b.data, "\"a\\\"b\\\\c\\n\\u003cx\\u003e\\u0001\"");
  buf_free(&b);
  /* the one rule: '&' and U+2028/U+2029 too, so the text is safe in a
   * page and a script; NULL is null */
  buf_init(&b, 1024);
  ASSERT_INT_EQ(buf_json_string(&b,
                                "a&b\xe2\x80\xa8"
                                "c\xe2\x80\xa9\xe2\x80\xa7\xc3\xa9"),
                0);
  ASSERT_INT_EQ(buf_json_string(&b, NULL), 0);
  ASSERT_STR_EQ(b.data, "\"a\\u0026b\\u2028c\\u2029\xe2\x80\xa7\xc3\xa9\"null");
  buf_free(&b);
  /* JSON text keeps its bytes, quotes and escapes; only the same five
   * characters change, inside its strings */
  buf_init(&b, 1024);
  const char *text = "{\"a\":\"<b>\\\" & \\u003c\",\"c\":[1,\"\xe2\x80\xa8\"]}";
  ASSERT_INT_EQ(buf_json_text(&b, text, strlen(text)), 0);
  ASSERT_STR_EQ(b.data, "{\"a\":\"\\u003cb\\u003e\\\" \\u0026 \\u003c\",\"c\":[1,\"\\u2028\"]}");
  buf_free(&b);
  return 0;
}

/* Once an append fails, every later one fails too and the content stays
 * what it was: a JSON value cut in the middle can never be closed off and
 * passed as whole. buf_reset starts over. */
static int t_buf_sticky(void) {
  buf b;
  buf_init(&b, 16);
  ASSERT_INT_EQ(buf_failed(&b), 0);
  ASSERT_INT_EQ(buf_appends(&b, "{\"id\":"), 0);
  ASSERT_INT_EQ(buf_json_string(&b, "far too long for the cap"), SL_ETOOBIG);
  ASSERT_INT_EQ(buf_failed(&b), SL_ETOOBIG);
  size_t len = b.len;
  ASSERT_INT_EQ(buf_appends(&b, "}"), SL_ETOOBIG);
  ASSERT_INT_EQ(buf_printf(&b, "%d", 1), SL_ETOOBIG);
  ASSERT_INT_EQ(buf_append(&b, "", 0), SL_ETOOBIG);
  ASSERT_INT_EQ(b.len, len);
  ASSERT_INT_EQ(buf_failed(&b), SL_ETOOBIG);
  buf_reset(&b);
  ASSERT_INT_EQ(buf_failed(&b), 0);
  ASSERT_INT_EQ(buf_appends(&b, "{}"), 0);
  ASSERT_STR_EQ(b.data, "{}");
  /* a printf past the cap through the long path fails sticky too */
  ASSERT_INT_EQ(buf_printf(&b, "%300s", "x"), SL_ETOOBIG);
  ASSERT_INT_EQ(buf_appends(&b, "1"), SL_ETOOBIG);
  char *p = buf_take(&b);
  ASSERT_STR_EQ(p, "{}");
  free(p);
  ASSERT_INT_EQ(buf_failed(&b), 0);
  buf_free(&b);
  return 0;
}

static int t_ct_equal(void) {
  ASSERT_TRUE(util_ct_equal("secret", 6, "secret", 6));
  ASSERT_TRUE(!util_ct_equal("secreT", 6, "secret", 6));
  ASSERT_TRUE(!util_ct_equal("secret1", 7, "secret", 6));
  ASSERT_TRUE(!util_ct_equal("", 0, "secret", 6));
  return 0;
}

/* A deadline moved past the second carries into tv_sec, whole seconds too. */
static int t_timespec_add(void) {
  struct timespec ts = {.tv_sec = 10, .tv_nsec = 999500000L};
  util_timespec_add_us(&ts, 1000);
  ASSERT_INT_EQ(ts.tv_sec, 11);
  ASSERT_INT_EQ(ts.tv_nsec, 500000L);
  util_timespec_add_us(&ts, 2500000);
  ASSERT_INT_EQ(ts.tv_sec, 13);
  ASSERT_INT_EQ(ts.tv_nsec, 500500000L);
  util_timespec_add_us(&ts, 0);
  ASSERT_INT_EQ(ts.tv_sec, 13);
  ASSERT_INT_EQ(ts.tv_nsec, 500500000L);
  return 0;
}

const struct unit_test util_tests[] = {
    {"iso8601", t_iso8601},   {"iso8601_strict", t_iso8601_strict}, {"duration", t_duration},
    {"buf_cap", t_buf_cap},   {"json_string", t_json_string},       {"buf_sticky", t_buf_sticky},
    {"ct_equal", t_ct_equal}, {"timespec_add", t_timespec_add},     {0},
};
