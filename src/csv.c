/* csv.c - the CSV cell writer (csv.h). */
#include "csv.h"

#include <stdio.h>
#include <string.h>

/* The first characters a spreadsheet may read as the start of a formula. */
static int formula_start(char c) {
  return c == '=' || c == '+' || c == '-' || c == '@' || c == '\t' || c == '\r';
}

int csv_needs_guard(const char *s) {
  if (!s || !*s) return 0;
  return formula_start(s[0]) || (s[0] == '\'' && (formula_start(s[1]) || s[1] == '\''));
}

char *csv_unguard(const char *s) {
  /* Like strchr, a pointer into the caller's string: writable when s was. */
  return (char *)(s && s[0] == '\'' && (formula_start(s[1]) || s[1] == '\'') ? s + 1 : s);
}

static int is_control(unsigned char c) {
  return (c < 0x20 && c != '\t' && c != '\r' && c != '\n') || c == 0x7f;
}

int csv_cell(buf *b, const char *s) {
  if (!s) return 0;
  size_t n = strlen(s);
  int guard = csv_needs_guard(s);
  int quote = guard || strpbrk(s, ",;\"\r\n\t") != NULL || (n && (s[0] == ' ' || s[n - 1] == ' '));
  int rc = 0;
  if (quote) rc = buf_append(b, "\"", 1);
  if (!rc && guard) rc = buf_append(b, "'", 1);
  const char *run = s; /* bytes not yet written that need no change */
  for (const char *p = s; !rc && *p; p++) {
    unsigned char c = (unsigned char)*p;
    if (c != '"' && !is_control(c)) continue;
    rc = buf_append(b, run, (size_t)(p - run));
    if (rc) break;
    if (c == '"') {
      rc = buf_append(b, "\"\"", 2);
    } else {
      char esc[5];
      snprintf(esc, sizeof esc, "\\x%02x", c);
      rc = buf_append(b, esc, 4);
    }
    run = p + 1;
  }
  if (!rc) rc = buf_append(b, run, strlen(run));
  if (!rc && quote) rc = buf_append(b, "\"", 1);
  return rc;
}
