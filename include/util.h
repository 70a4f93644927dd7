/* util.h - small helpers shared by every module: time, strings, a capped
 * growable buffer. Nothing here allocates without saying so. */
#ifndef SESLOG_UTIL_H
#define SESLOG_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Parses an ISO-8601 UTC time such as "2026-03-06T20:00:26.893Z" (also
 * without fraction, with up to 9 fraction digits, or with a +hh:mm offset)
 * into milliseconds since the epoch. Strict: the day must exist in its
 * month (leap years counted), seconds 00-59, offsets -23:59..+23:59.
 * Returns 0, or SL_EINVAL. */
int util_parse_iso8601(const char *s, int64_t *out_ms);

/* Formats ms since the epoch as "YYYY-MM-DDTHH:MM:SS.mmmZ" into out
 * (at least 25 bytes). */
void util_format_iso8601(int64_t ms, char out[25]);

/* Current wall-clock time in ms since the epoch. */
int64_t util_now_ms(void);

/* Moves ts us microseconds later (0 <= us), tv_nsec kept below a second:
 * the deadline of a pthread_cond_timedwait. */
void util_timespec_add_us(struct timespec *ts, long us);

/* Parses a duration "15m", "24h", "7d", "30s" or a bare number of seconds
 * into milliseconds. Returns 0, or SL_EINVAL. */
int util_parse_duration(const char *s, int64_t *out_ms);

/* strdup that returns NULL for NULL. */
char *util_strdup(const char *s);
char *util_strndup(const char *s, size_t n);

/* Sets the calling thread's nice value (on Linux nice values are per
 * thread). Best effort: a refusal changes nothing else. */
void util_thread_nice(int nice);

/* Lower-cases ASCII in place. */
void util_ascii_lower(char *s);

/* Constant-time comparison of two byte strings; 1 when equal. */
int util_ct_equal(const void *a, size_t alen, const void *b, size_t blen);

/* A growable byte buffer with a maximum size fixed at creation
 * (curl's dynbuf idea). Always NUL-terminated when len > 0.
 *
 * Failure is sticky: once an append fails (past max, or out of memory)
 * every later append fails with the same code and leaves the content as
 * it was, so a caller may append many pieces unchecked and ask
 * buf_failed() once when the whole is built. buf_reset clears it. */
typedef struct buf {
  char *data; /* owned, NULL until the first append */
  size_t len; /* bytes used, without the NUL */
  size_t cap; /* bytes allocated */
  size_t max; /* appends that would pass this fail with SL_ETOOBIG */
  int err;    /* 0, or the first append's error code (sticky) */
} buf;

void buf_init(buf *b, size_t max);
int buf_append(buf *b, const void *p, size_t n);
int buf_appends(buf *b, const char *s);
/* printf-style append; fails with SL_ETOOBIG past max. */
int buf_printf(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends s as a JSON string literal, quotes included, or null when s is
 * NULL. The one escaping rule of seslog's JSON: '"', '\\' and control
 * characters as JSON requires, and '<', '>', '&', U+2028 and U+2029 as
 * \u escapes, so the text is safe inside HTML and a script. */
int buf_json_string(buf *b, const char *s);
/* Appends s[0..n), JSON text the caller knows is valid (jsoncheck_syntax),
 * as a value: byte for byte, except that '<', '>', '&', U+2028 and U+2029
 * (which JSON text holds only inside strings) become the \u escapes of
 * buf_json_string; the value read back is the same. */
int buf_json_text(buf *b, const char *s, size_t n);
/* Appends ms since the epoch as a JSON ISO-8601 string, or null for 0. */
int buf_json_time(buf *b, int64_t ms);
/* The first append error since init or reset (negative), or 0: nonzero
 * means the content is incomplete and must not be used as a whole. */
int buf_failed(const buf *b);
/* Empties b and clears its failure; keeps the allocation. */
void buf_reset(buf *b);
void buf_free(buf *b);
/* Hands the data to the caller (who frees it) and resets b. */
char *buf_take(buf *b);

#endif
