/* test_util.c - time parsing and formatting, durations, the capped buffer. */
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
  return 0;
}

static int t_ct_equal(void) {
  ASSERT_TRUE(util_ct_equal("secret", 6, "secret", 6));
  ASSERT_TRUE(!util_ct_equal("secreT", 6, "secret", 6));
  ASSERT_TRUE(!util_ct_equal("secret1", 7, "secret", 6));
  ASSERT_TRUE(!util_ct_equal("", 0, "secret", 6));
  return 0;
}

const struct unit_test util_tests[] = {
    {"iso8601", t_iso8601},
    {"iso8601_strict", t_iso8601_strict},
    {"duration", t_duration},
    {"buf_cap", t_buf_cap},
    {"json_string", t_json_string},
    {"ct_equal", t_ct_equal},
    {0},
};
