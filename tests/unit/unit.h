/* unit.h - the C unit test runner's interface.
 *
 * Each test file defines a NULL-terminated table of named tests, e.g.
 *   const struct unit_test sns_tests[] = {{"canonical_v1", t_canonical}, {0}};
 * and runner.c lists the tables. ASSERT_* macros print both sides and
 * return from the test on failure. */
#ifndef SESLOG_UNIT_H
#define SESLOG_UNIT_H

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

struct unit_test {
  const char *name;
  int (*fn)(void); /* 0 = pass */
};

/* Path of the tests/fixtures folder (set by the runner from argv or
 * SESLOG_FIXTURES). */
extern const char *unit_fixtures;

/* Reads tests/fixtures/<rel> into a malloc'ed NUL-terminated buffer; aborts
 * the whole run when the file is missing (a missing fixture is a bug). */
char *unit_read_fixture(const char *rel, size_t *len);

#define UNIT_FAIL_(fmt, ...)                                                  \
  do {                                                                        \
    fprintf(stderr, "    %s:%d: " fmt "\n", __FILE__, __LINE__, __VA_ARGS__); \
    return 1;                                                                 \
  } while (0)

#define ASSERT_TRUE(c)                                \
  do {                                                \
    if (!(c)) UNIT_FAIL_("expected true: %s", #c);    \
  } while (0)

#define ASSERT_INT_EQ(a, b)                                                 \
  do {                                                                      \
    long long a_ = (long long)(a), b_ = (long long)(b);                     \
    if (a_ != b_) UNIT_FAIL_("%s == %s: %lld != %lld", #a, #b, a_, b_);     \
  } while (0)

#define ASSERT_STR_EQ(a, b)                                                 \
  do {                                                                      \
    const char *a_ = (a), *b_ = (b);                                        \
    if (!a_ || !b_ || strcmp(a_, b_) != 0)                                  \
      UNIT_FAIL_("%s == %s: \"%s\" != \"%s\"", #a, #b, a_ ? a_ : "(null)",  \
                 b_ ? b_ : "(null)");                                       \
  } while (0)

#define ASSERT_NULL(a)                                                      \
  do {                                                                      \
    const void *a_ = (a);                                                   \
    if (a_) UNIT_FAIL_("expected NULL: %s", #a);                            \
  } while (0)

#endif
