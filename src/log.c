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

/* Appends v, quoted and escaped when it holds spaces, quotes, '=' or
 * control characters; CR and LF never reach the output raw. */
static void put_value(buf *b, const char *v) {
  if (!v) v = "";
  int plain = *v != 0;
  for (const char *p = v; *p; p++) {
    unsigned char c = (unsigned char)*p;
    if (c <= ' ' || c == '"' || c == '=' || c == '\\' || c >= 0x7f) {
      plain = 0;
      break;
    }
  }
  if (plain) {
    buf_appends(b, v);
    return;
  }
  buf_append(b, "\"", 1);
  for (const char *p = v; *p; p++) {
    unsigned char c = (unsigned char)*p;
    if (c == '"' || c == '\\') {
      buf_append(b, "\\", 1);
      buf_append(b, p, 1);
    } else if (c < 0x20 || c == 0x7f) {
      buf_printf(b, "\\x%02x", c);
    } else {
      buf_append(b, p, 1);
    }
  }
  buf_append(b, "\"", 1);
}

void log_kv(enum log_level level, const char *msg, ...) {
  static const char *names[] = {"debug", "info", "warn", "error"};
  if (!log_enabled(level)) return;
  char ts[25];
  util_format_iso8601(util_now_ms(), ts);
  buf b;
  buf_init(&b, 8192);
  buf_printf(&b, "time=%s level=%s msg=", ts, names[level]);
  put_value(&b, msg);
  va_list ap;
  va_start(ap, msg);
  for (;;) {
    const char *k = va_arg(ap, const char *);
    if (!k) break;
    const char *v = va_arg(ap, const char *);
    buf_printf(&b, " %s=", k);
    put_value(&b, v);
  }
  va_end(ap);
  buf_append(&b, "\n", 1);
  /* One write per line so lines from several threads never interleave. */
  if (b.data) fwrite(b.data, 1, b.len, stderr);
  buf_free(&b);
}
