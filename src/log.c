/* log.c - logfmt lines on stderr. */
#include "log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "error.h"
#include "util.h"

enum log_level log_min_level = LOG_INFO;

int log_set_level(const char *name) {
  static const char *names[] = {"debug", "info", "warn", "error"};
  for (int i = 0; i < 4; i++)
    if (strcmp(name, names[i]) == 0) {
      log_min_level = (enum log_level)i;
      return 0;
    }
  return SL_EINVAL;
}

#define LOG_LINE_MAX 8192 /* a line, newline included, is never longer */
#define LOG_ROOM 32       /* kept free for a marker, a closing quote and the newline */
#define LOG_CUT "...[truncated]"

/* Appends v, quoted and escaped when it holds spaces, quotes, '=' or
 * control characters; CR and LF never reach the output raw. A value that
 * would take the line past LOG_LINE_MAX - LOG_ROOM is cut at a character
 * boundary inside its quotes and ends with LOG_CUT; returns 1 then, else 0. */
static int put_value(buf *b, const char *v) {
  const size_t limit = LOG_LINE_MAX - LOG_ROOM;
  if (!v) v = "";
  size_t vl = strlen(v);
  int plain = *v != 0 && b->len + vl <= limit;
  for (const char *p = v; plain && *p; p++) {
    unsigned char c = (unsigned char)*p;
    if (c <= ' ' || c == '"' || c == '=' || c == '\\' || c >= 0x7f) plain = 0;
  }
  if (plain) {
    buf_append(b, v, vl);
    return 0;
  }
  buf_append(b, "\"", 1);
  size_t start = b->len;
  for (const char *p = v; *p; p++) {
    unsigned char c = (unsigned char)*p;
    char esc[8];
    size_t n = 1;
    if (c == '"' || c == '\\') {
      esc[0] = '\\', esc[1] = (char)c, n = 2;
    } else if (c < 0x20 || c == 0x7f) {
      snprintf(esc, sizeof esc, "\\x%02x", c);
      n = 4;
    } else {
      esc[0] = (char)c;
    }
    if (b->len + n > limit) {
      /* Do not leave half of a UTF-8 sequence before the marker. */
      while (b->len > start && ((unsigned char)*p & 0xc0) == 0x80) {
        b->len--;
        p--;
      }
      buf_appends(b, LOG_CUT "\"");
      return 1;
    }
    buf_append(b, esc, n);
  }
  buf_append(b, "\"", 1);
  return 0;
}

void log_kv(enum log_level level, const char *msg, ...) {
  static const char *names[] = {"debug", "info", "warn", "error"};
  if (!log_enabled(level)) return;
  char ts[25];
  util_format_iso8601(util_now_ms(), ts);
  buf b;
  buf_init(&b, LOG_LINE_MAX);
  buf_printf(&b, "time=%s level=%s msg=", ts, names[level]);
  int cut = put_value(&b, msg);
  va_list ap;
  va_start(ap, msg);
  while (!cut) {
    const char *k = va_arg(ap, const char *);
    if (!k) break;
    const char *v = va_arg(ap, const char *);
    /* A key that does not fit ends the line (the pairs after it too). */
    if (b.len + strlen(k) + 2 > LOG_LINE_MAX - LOG_ROOM) {
      buf_appends(&b, " " LOG_CUT);
      break;
    }
    buf_printf(&b, " %s=", k);
    cut = put_value(&b, v);
  }
  va_end(ap);
  buf_append(&b, "\n", 1);
  /* One write per line so lines from several threads never interleave. */
  if (b.data) fwrite(b.data, 1, b.len, stderr);
  buf_free(&b);
}
