/* test_csv.c - the CSV cell writer (issue 16: formula injection, control
 * bytes) and the guard that suppression import undoes. */
#include <stdio.h>
#include <stdlib.h>

#include "csv.h"
#include "unit.h"
#include "util.h"

static int cell_is(const char *in, const char *want) {
  buf b;
  buf_init(&b, 1024);
  ASSERT_INT_EQ(csv_cell(&b, in), 0);
  ASSERT_STR_EQ(b.data ? b.data : "", want);
  buf_free(&b);
  return 0;
}

static int t_cells(void) {
  static const char *cases[][2] = {
      {"plain@example.com", "plain@example.com"},
      {"", ""},
      {"=HYPERLINK(\"http://x\")", "\"'=HYPERLINK(\"\"http://x\"\")\""},
      {"+1", "\"'+1\""},
      {"-2+3", "\"'-2+3\""},
      {"@SUM(A1)", "\"'@SUM(A1)\""},
      {"\t=1", "\"'\t=1\""},
      {"\r=1", "\"'\r=1\""},
      {"a,b", "\"a,b\""},
      {"a;=b", "\"a;=b\""},
      {"say \"hi\"", "\"say \"\"hi\"\"\""},
      {" lead", "\" lead\""},
      {"two\nlines", "\"two\nlines\""},
      {"esc\x1b[31mred", "esc\\x1b[31mred"},
      {"del\x7f", "del\\x7f"},
      {"'=x", "\"''=x\""},
      {"''", "\"'''\""},
      {"'quoted'", "'quoted'"},
      {"a=b", "a=b"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    if (cell_is(cases[i][0], cases[i][1])) return 1;
  buf b;
  buf_init(&b, 16);
  ASSERT_INT_EQ(csv_cell(&b, NULL), 0);
  ASSERT_INT_EQ((int)b.len, 0);
  ASSERT_TRUE(csv_cell(&b, "a value longer than sixteen bytes") != 0);
  buf_free(&b);
  return 0;
}

/* What csv_cell guarded, csv_unguard gives back; nothing else changes. */
static int t_unguard(void) {
  static const char *values[] = {"=x@example.com",
                                 "-a@example.com",
                                 "+b@example.com",
                                 "'=c@example.com",
                                 "''d",
                                 "'e@example.com",
                                 "f@example.com",
                                 "@g",
                                 "'",
                                 ""};
  for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
    const char *v = values[i];
    char cell[64];
    snprintf(cell, sizeof cell, "%s%s", csv_needs_guard(v) ? "'" : "", v);
    ASSERT_STR_EQ(csv_unguard(cell), v);
  }
  return 0;
}

const struct unit_test csv_tests[] = {{"cells", t_cells}, {"unguard", t_unguard}, {0}};
