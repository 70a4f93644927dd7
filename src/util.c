/* util.c - time, strings and the capped buffer shared by every module. */
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "error.h"

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar
 * (Howard Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = (unsigned)(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + (int64_t)doe - 719468;
}

static int digits(const char *s, int n, int *out) {
  int v = 0;
  for (int i = 0; i < n; i++) {
    if (!isdigit((unsigned char)s[i])) return SL_EINVAL;
    v = v * 10 + (s[i] - '0');
  }
  *out = v;
  return 0;
}

int util_parse_iso8601(const char *s, int64_t *out_ms) {
  int y, mo, d, h, mi, se, ms = 0;
  if (!s || strlen(s) < 19) return SL_EINVAL;
  if (digits(s, 4, &y) || s[4] != '-' || digits(s + 5, 2, &mo) || s[7] != '-' ||
      digits(s + 8, 2, &d) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
      digits(s + 11, 2, &h) || s[13] != ':' || digits(s + 14, 2, &mi) || s[16] != ':' ||
      digits(s + 17, 2, &se))
    return SL_EINVAL;
  /* Strict: a day the month has, no leap second (SES and SNS never send
   * one), offsets within -23:59..+23:59. */
  static const unsigned char mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 || se > 59)
    return SL_EINVAL;
  if (mo == 2 && d == 29 && (y % 4 || (y % 100 == 0 && y % 400))) return SL_EINVAL;
  const char *p = s + 19;
  if (*p == '.') {
    p++;
    int n = 0;
    while (isdigit((unsigned char)*p)) {
      if (n < 3) ms = ms * 10 + (*p - '0');
      n++;
      p++;
    }
    if (n == 0 || n > 9) return SL_EINVAL;
    for (; n < 3; n++) ms *= 10;
  }
  int64_t offset_min = 0;
  if (*p == 'Z' || *p == 'z') {
    p++;
  } else if (*p == '+' || *p == '-') {
    int oh, om;
    int sign = *p == '-' ? -1 : 1;
    if (digits(p + 1, 2, &oh) || p[3] != ':' || digits(p + 4, 2, &om) || oh > 23 || om > 59)
      return SL_EINVAL;
    offset_min = sign * (oh * 60 + om);
    p += 6;
  } else {
    return SL_EINVAL;
  }
  if (*p) return SL_EINVAL;
  int64_t days = days_from_civil(y, (unsigned)mo, (unsigned)d);
  int64_t secs = days * 86400 + h * 3600 + mi * 60 + se - offset_min * 60;
  *out_ms = secs * 1000 + ms;
  return 0;
}

static char *put_digits(char *p, int v, int n) {
  for (int i = n - 1; i >= 0; i--, v /= 10) p[i] = (char)('0' + v % 10);
  return p + n;
}

void util_format_iso8601(int64_t ms, char out[25]) {
  time_t secs = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
  int frac = (int)(ms - (int64_t)secs * 1000);
  struct tm tm;
  gmtime_r(&secs, &tm);
  int year = tm.tm_year + 1900;
  if (year < 0 || year > 9999) year = year < 0 ? 0 : 9999;
  char *p = put_digits(out, year, 4);
  *p++ = '-';
  p = put_digits(p, tm.tm_mon + 1, 2);
  *p++ = '-';
  p = put_digits(p, tm.tm_mday, 2);
  *p++ = 'T';
  p = put_digits(p, tm.tm_hour, 2);
  *p++ = ':';
  p = put_digits(p, tm.tm_min, 2);
  *p++ = ':';
  p = put_digits(p, tm.tm_sec, 2);
  *p++ = '.';
  p = put_digits(p, frac, 3);
  *p++ = 'Z';
  *p = 0;
}

int64_t util_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void util_timespec_add_us(struct timespec *ts, long us) {
  ts->tv_sec += us / 1000000;
  ts->tv_nsec += us % 1000000 * 1000L;
  if (ts->tv_nsec >= 1000000000L) {
    ts->tv_sec++;
    ts->tv_nsec -= 1000000000L;
  }
}

int util_parse_duration(const char *s, int64_t *out_ms) {
  if (!s || !*s) return SL_EINVAL;
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (errno || end == s || v < 0) return SL_EINVAL;
  int64_t mult;
  if (!*end || strcmp(end, "s") == 0)
    mult = 1000;
  else if (strcmp(end, "ms") == 0)
    mult = 1;
  else if (strcmp(end, "m") == 0)
    mult = 60 * 1000;
  else if (strcmp(end, "h") == 0)
    mult = 3600 * 1000;
  else if (strcmp(end, "d") == 0)
    mult = 86400 * 1000;
  else
    return SL_EINVAL;
  if (v > INT64_MAX / mult) return SL_EINVAL;
  *out_ms = v * mult;
  return 0;
}

char *util_strdup(const char *s) {
  return s ? strdup(s) : NULL;
}

char *util_strndup(const char *s, size_t n) {
  char *p = malloc(n + 1);
  if (!p) return NULL;
  memcpy(p, s, n);
  p[n] = 0;
  return p;
}

void util_thread_nice(int nice) {
  (void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), nice);
}

void util_ascii_lower(char *s) {
  for (; s && *s; s++)
    if (*s >= 'A' && *s <= 'Z') *s = (char)(*s + 32);
}

int util_ct_equal(const void *a, size_t alen, const void *b, size_t blen) {
  const unsigned char *x = a, *y = b;
  unsigned char diff = alen != blen;
  /* Compare over the expected length so timing does not reveal where the
   * first difference is; a length mismatch still compares every byte. */
  for (size_t i = 0; i < blen; i++) diff |= (unsigned char)((i < alen ? x[i] : 0) ^ y[i]);
  return diff == 0;
}

void buf_init(buf *b, size_t max) {
  b->data = NULL;
  b->len = b->cap = 0;
  b->max = max;
  b->err = 0;
}

static int buf_grow(buf *b, size_t need) {
  if (need > b->max) return SL_ETOOBIG;
  if (need + 1 <= b->cap) return 0;
  size_t cap = b->cap ? b->cap : 256;
  while (cap < need + 1) cap *= 2;
  if (cap > b->max + 1) cap = b->max + 1;
  char *p = realloc(b->data, cap);
  if (!p) return SL_ENOMEM;
  b->data = p;
  b->cap = cap;
  return 0;
}

/* Remembers the first failure; every append returns through here. */
static int buf_fail(buf *b, int rc) {
  if (!b->err) b->err = rc;
  return b->err;
}

int buf_failed(const buf *b) {
  return b->err;
}

int buf_append(buf *b, const void *p, size_t n) {
  if (b->err) return b->err;
  if (n > b->max - b->len) return buf_fail(b, SL_ETOOBIG);
  int rc = buf_grow(b, b->len + n);
  if (rc) return buf_fail(b, rc);
  if (n) memcpy(b->data + b->len, p, n);
  b->len += n;
  b->data[b->len] = 0;
  return 0;
}

int buf_appends(buf *b, const char *s) {
  return buf_append(b, s, strlen(s));
}

int buf_printf(buf *b, const char *fmt, ...) {
  if (b->err) return b->err;
  va_list ap;
  va_start(ap, fmt);
  char small[256];
  int n = vsnprintf(small, sizeof small, fmt, ap);
  va_end(ap);
  if (n < 0) return buf_fail(b, SL_EINVAL);
  if ((size_t)n < sizeof small) return buf_append(b, small, (size_t)n);
  if ((size_t)n > b->max - b->len) return buf_fail(b, SL_ETOOBIG);
  int rc = buf_grow(b, b->len + (size_t)n);
  if (rc) return buf_fail(b, rc);
  va_start(ap, fmt);
  vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
  return 0;
}

int buf_json_time(buf *b, int64_t ms) {
  if (!ms) return buf_appends(b, "null");
  char iso[25];
  util_format_iso8601(ms, iso);
  return buf_printf(b, "\"%s\"", iso);
}

/* The one escaping rule of seslog's JSON: the escape of c, the byte at p
 * (with p[1], p[2] readable up to end), written into esc; returns its
 * length and sets *skip to the bytes it stands for, or returns 0 when the
 * byte is written as it is. '<', '>', '&' and the JavaScript line breaks
 * U+2028/U+2029 are \u escapes so the text can sit inside HTML and a
 * script. With quote, s is string content: '"', '\\' and control
 * characters are escaped too; without it, s is JSON text, where those
 * bytes are syntax and the others only occur inside strings (where the
 * escape means the same character). */
static size_t json_escape(const unsigned char *p, const unsigned char *end, int quote, char esc[6],
                          size_t *skip) {
  static const char hex[] = "0123456789abcdef";
  unsigned c = *p, code;
  *skip = 1;
  if (c == '<' || c == '>' || c == '&') {
    code = c;
  } else if (c == 0xE2 && end - p >= 3 && p[1] == 0x80 && (p[2] == 0xA8 || p[2] == 0xA9)) {
    code = p[2] == 0xA8 ? 0x2028 : 0x2029;
    *skip = 3;
  } else if (!quote || (c >= 0x20 && c != '"' && c != '\\')) {
    return 0;
  } else if (c == '"' || c == '\\' || c == '\n' || c == '\r' || c == '\t') {
    esc[0] = '\\';
    esc[1] = c == '\n' ? 'n' : c == '\r' ? 'r' : c == '\t' ? 't' : (char)c;
    return 2;
  } else {
    code = c; /* the other control characters */
  }
  esc[0] = '\\';
  esc[1] = 'u';
  esc[2] = hex[(code >> 12) & 15];
  esc[3] = hex[(code >> 8) & 15];
  esc[4] = hex[(code >> 4) & 15];
  esc[5] = hex[code & 15];
  return 6;
}

/* Appends s[0..n) with json_escape's rule. */
static int json_append_escaped(buf *b, const char *s, size_t n, int quote) {
  const unsigned char *p = (const unsigned char *)s, *end = p + n, *run = p;
  int rc = 0;
  while (p < end && !rc) {
    char esc[6];
    size_t skip, len = json_escape(p, end, quote, esc, &skip);
    if (!len) {
      p++;
      continue;
    }
    rc = buf_append(b, run, (size_t)(p - run));
    if (!rc) rc = buf_append(b, esc, len);
    p += skip;
    run = p;
  }
  if (!rc && run < end) rc = buf_append(b, run, (size_t)(end - run));
  return rc;
}

int buf_json_string(buf *b, const char *s) {
  if (!s) return buf_append(b, "null", 4);
  int rc = buf_append(b, "\"", 1);
  if (!rc) rc = json_append_escaped(b, s, strlen(s), 1);
  if (!rc) rc = buf_append(b, "\"", 1);
  return rc;
}

int buf_json_text(buf *b, const char *s, size_t n) {
  return json_append_escaped(b, s, n, 0);
}

void buf_reset(buf *b) {
  b->len = 0;
  b->err = 0;
  if (b->data) b->data[0] = 0;
}

void buf_free(buf *b) {
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
  b->err = 0;
}

char *buf_take(buf *b) {
  char *p = b->data;
  if (!p) p = calloc(1, 1);
  b->data = NULL;
  b->len = b->cap = 0;
  b->err = 0;
  return p;
}
