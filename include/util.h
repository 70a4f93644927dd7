/* util.h - small helpers shared by every module: time, strings, a capped
 * growable buffer. Nothing here allocates without saying so. */
#ifndef SESLOG_UTIL_H
#define SESLOG_UTIL_H

#include <stddef.h>
#include <stdint.h>

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

/* Parses a duration "15m", "24h", "7d", "30s" or a bare number of seconds
 * into milliseconds. Returns 0, or SL_EINVAL. */
int util_parse_duration(const char *s, int64_t *out_ms);

/* strdup that returns NULL for NULL. */
char *util_strdup(const char *s);
char *util_strndup(const char *s, size_t n);

/* Lower-cases ASCII in place. */
void util_ascii_lower(char *s);

/* Constant-time comparison of two byte strings; 1 when equal. */
int util_ct_equal(const void *a, size_t alen, const void *b, size_t blen);

/* A growable byte buffer with a maximum size fixed at creation
 * (curl's dynbuf idea). Always NUL-terminated when len > 0. */
typedef struct buf {
  char *data; /* owned, NULL until the first append */
  size_t len; /* bytes used, without the NUL */
  size_t cap; /* bytes allocated */
  size_t max; /* appends that would pass this fail with SL_ETOOBIG */
} buf;

void buf_init(buf *b, size_t max);
int buf_append(buf *b, const void *p, size_t n);
int buf_appends(buf *b, const char *s);
/* printf-style append; fails with SL_ETOOBIG past max. */
int buf_printf(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends s as a JSON string literal, quotes included. */
int buf_json_string(buf *b, const char *s);
/* Appends ms since the epoch as a JSON ISO-8601 string, or null for 0. */
int buf_json_time(buf *b, int64_t ms);
void buf_reset(buf *b);
void buf_free(buf *b);
/* Hands the data to the caller (who frees it) and resets b. */
char *buf_take(buf *b);

#endif
