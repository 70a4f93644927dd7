/* query.c - filters, keyset cursors, the SQL of a page, rows as JSON, and
 * the rollup counters, over a read-only SQLite connection.
 *
 * A page is driven by one index, the one of the most selective filter
 * given; every other filter is checked on the rows that index yields.
 * All the indexes end in timeStamp (and the row id or eventId), so a page
 * is read in (timeStamp, id) order and stops after limit + 1 rows. */
#include "query.h"

#include <ctype.h>
#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "address.h"
#include "error.h"
#include "rawz.h"
#include "readpool.h"

/* The range util_format_iso8601 can write: 0000-01-01 .. 9999-12-31. */
#define TIME_MIN_MS (-62167219200000LL)
#define TIME_MAX_MS (253402300799999LL)

/* ---- filters ---------------------------------------------------------- */

/* The notificationType values of CONTRACT section 4, as stored. */
static const char *const types[] = {"Bounce",        "Complaint",   "Delivery", "Send",
                                    "Reject",        "Open",        "Click",    "Rendering Failure",
                                    "DeliveryDelay", "Subscription"};
static const char *const bounce_types[] = {"Permanent", "Transient", "Undetermined"};

/* Compares ignoring case, spaces, dashes and underscores, so "bounce",
 * "rendering-failure" and "deliveryDelay" find their canonical names. */
static int loose_equal(const char *a, const char *b) {
  for (;;) {
    while (*a == ' ' || *a == '-' || *a == '_') a++;
    while (*b == ' ' || *b == '-' || *b == '_') b++;
    if (!*a || !*b) return !*a && !*b;
    if (tolower((unsigned char)*a) != tolower((unsigned char)*b)) return 0;
    a++;
    b++;
  }
}

static const char *canonical(const char *const *names, size_t n, const char *v) {
  for (size_t i = 0; i < n; i++)
    if (loose_equal(names[i], v)) return names[i];
  return NULL;
}

const char *query_type_name(int i) {
  return i >= 0 && i < (int)(sizeof types / sizeof types[0]) ? types[i] : NULL;
}

int query_type_code(const char *name) {
  for (int i = 0; name && i < (int)(sizeof types / sizeof types[0]); i++)
    if (strcmp(types[i], name) == 0) return i;
  return -1;
}

/* The number of types in f's type_mask. */
static int type_count(const query_filter *f) {
  int n = 0;
  for (unsigned m = f->type_mask; m; m &= m - 1) n++;
  return n;
}

/* 0 when the date part of an ISO-8601 text (YYYY-MM-DD...) names a day
 * its month does not have (util_parse_iso8601 takes any day up to 31);
 * 1 otherwise, also for text that is no date (the parser refuses it). */
static int real_day(const char *v) {
  static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  static const int pos[] = {0, 1, 2, 3, 5, 6, 8, 9};
  for (size_t i = 0; i < sizeof pos / sizeof pos[0]; i++)
    if (!isdigit((unsigned char)v[pos[i]])) return 1;
  int y = (v[0] - '0') * 1000 + (v[1] - '0') * 100 + (v[2] - '0') * 10 + (v[3] - '0');
  int m = (v[5] - '0') * 10 + (v[6] - '0'), d = (v[8] - '0') * 10 + (v[9] - '0');
  if (m < 1 || m > 12 || d < 1) return 1;
  int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return d <= days[m - 1] + (m == 2 && leap);
}

void query_source_address(const char *source, char *out, size_t outlen) {
  /* As SOURCE_ADDR below computes it in SQL: the part between the first
   * '<' and the first '>' after it, else the text without spaces around. */
  const char *lt = strchr(source, '<'), *gt = strchr(source, '>');
  const char *b = source, *e = source + strlen(source);
  if (lt && gt && gt > lt) {
    b = lt + 1;
    e = gt;
  } else {
    while (b < e && *b == ' ') b++;
    while (e > b && e[-1] == ' ') e--;
  }
  size_t n = (size_t)(e - b) < outlen ? (size_t)(e - b) : outlen - 1;
  memcpy(out, b, n);
  out[n] = 0;
  util_ascii_lower(out);
}

void query_filter_init(query_filter *f) {
  memset(f, 0, sizeof *f);
  f->limit = QUERY_LIMIT_DEFAULT;
}

int query_rcpt_time(const char *ts, int64_t *ms) {
  int64_t v;
  char back[25];
  if (!ts || strlen(ts) != 24 || util_parse_iso8601(ts, &v)) return SL_EINVAL;
  util_format_iso8601(v, back);
  if (memcmp(back, ts, 24) != 0) return SL_EINVAL;
  *ms = v;
  return 0;
}

int query_parse_time(const char *v, int64_t now_ms, int64_t *out_ms, char *err, size_t errlen) {
  int64_t ms;
  size_t n = strlen(v);
  if (n >= 10 && isdigit((unsigned char)v[0]) && v[4] == '-') {
    char full[64];
    if (!real_day(v)) {
      snprintf(err, errlen, "is not a day of the calendar (a month has 28 to 31 days)");
      return SL_EINVAL;
    }
    if (n == 10) { /* a bare date: its midnight UTC */
      snprintf(full, sizeof full, "%sT00:00:00Z", v);
      v = full;
    }
    if (util_parse_iso8601(v, &ms)) {
      snprintf(err, errlen,
               "is not an ISO-8601 UTC time like 2026-03-06T20:00:00Z (or a date, or a "
               "duration back from now like 15m, 24h, 7d)");
      return SL_EINVAL;
    }
  } else {
    int64_t d;
    size_t digits = strspn(v, "0123456789");
    if (digits == n && n > 0) {
      snprintf(err, errlen,
               "is a bare number: give an ISO-8601 time like 2026-03-06T20:00:00Z or a "
               "duration with its unit like 15m, 24h or 7d");
      return SL_EINVAL;
    }
    if (util_parse_duration(v, &d)) {
      snprintf(err, errlen,
               "is neither an ISO-8601 time like 2026-03-06T20:00:00Z nor a duration back from "
               "now like 15m, 24h or 7d");
      return SL_EINVAL;
    }
    ms = d > now_ms - TIME_MIN_MS ? TIME_MIN_MS : now_ms - d;
  }
  if (ms < TIME_MIN_MS) ms = TIME_MIN_MS;
  if (ms > TIME_MAX_MS) ms = TIME_MAX_MS;
  *out_ms = ms;
  return 0;
}

/* Copies v into dst (size n) or says it is too long. */
static int set_str(char *dst, size_t n, const char *v, char *err, size_t errlen) {
  size_t len = strlen(v);
  if (len >= n) {
    snprintf(err, errlen, "is too long (at most %zu bytes)", n - 1);
    return SL_EINVAL;
  }
  memcpy(dst, v, len + 1);
  return 0;
}

static void list_names(const char *const *names, size_t n, char *out, size_t outlen) {
  size_t used = 0;
  out[0] = 0;
  for (size_t i = 0; i < n && used < outlen; i++) {
    int w = snprintf(out + used, outlen - used, "%s%s", i ? ", " : "", names[i]);
    if (w < 0) break;
    used += (size_t)w;
  }
}

/* Sets type (another one adds to the mask) or bounceType, by its
 * canonical spelling. Returns 0 or SL_EINVAL with err set. */
static int set_type(query_filter *f, const char *name, const char *v, char *err, size_t errlen) {
  char names[256];
  if (strcmp(name, "type") == 0) {
    const char *c = canonical(types, sizeof types / sizeof types[0], v);
    if (!c) {
      list_names(types, sizeof types / sizeof types[0], names, sizeof names);
      snprintf(err, errlen, "must be one of %s", names);
      return SL_EINVAL;
    }
    if (!f->type_mask) snprintf(f->type, sizeof f->type, "%s", c);
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
      if (types[i] == c) f->type_mask |= 1u << i;
    return 0;
  }
  const char *c = canonical(bounce_types, 3, v);
  if (!c) {
    list_names(bounce_types, 3, names, sizeof names);
    snprintf(err, errlen, "must be one of %s", names);
    return SL_EINVAL;
  }
  snprintf(f->bounce_type, sizeof f->bounce_type, "%s", c);
  return 0;
}

/* Sets tag: NAME:VALUE or NAME. Returns 0 or SL_EINVAL with err set. */
static int set_tag(query_filter *f, const char *v, char *err, size_t errlen) {
  const char *colon = strchr(v, ':');
  size_t nl = colon ? (size_t)(colon - v) : strlen(v);
  char tname[128];
  if (nl == 0 || nl >= sizeof tname || memchr(v, '"', nl) || memchr(v, '\\', nl)) {
    snprintf(err, errlen,
             "must be NAME:VALUE or NAME (a tag name of 1 to %zu characters "
             "without quotes or backslashes)",
             sizeof tname - 1);
    return SL_EINVAL;
  }
  memcpy(tname, v, nl);
  tname[nl] = 0;
  if (set_str(f->tag_value, sizeof f->tag_value, colon ? colon + 1 : "", err, errlen))
    return SL_EINVAL;
  snprintf(f->tag_path, sizeof f->tag_path, "$.mail.tags.\"%s\"", tname);
  snprintf(f->tag, sizeof f->tag, "%s", v);
  return 0;
}

/* Sets since, until, limit, cursor or order (any other name). Returns 0
 * or SL_EINVAL with err set. */
static int set_paging(query_filter *f, const char *name, const char *v, int64_t now_ms,
                      long max_limit, char *err, size_t errlen) {
  if (strcmp(name, "since") == 0 || strcmp(name, "until") == 0) {
    int64_t ms;
    if (query_parse_time(v, now_ms, &ms, err, errlen)) return SL_EINVAL;
    util_format_iso8601(ms, name[0] == 's' ? f->since : f->until);
    if (f->since[0] && f->until[0] && strcmp(f->since, f->until) > 0) {
      snprintf(err, errlen, "makes the range empty: since (%s) is after until (%s)", f->since,
               f->until);
      return SL_EINVAL;
    }
    return 0;
  }
  if (strcmp(name, "limit") == 0) {
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (errno || end == v || *end || n < 1 || n > max_limit) {
      snprintf(err, errlen, "must be a whole number from 1 to %ld", max_limit);
      return SL_EINVAL;
    }
    f->limit = n;
    return 0;
  }
  if (strcmp(name, "cursor") == 0) {
    if (query_cursor_decode(v, f->cursor_ts, &f->cursor_id)) {
      snprintf(err, errlen, "is not a cursor this server gave (use nextCursor as it is)");
      return SL_EINVAL;
    }
    return 0;
  }
  /* order */
  if (strcasecmp(v, "desc") == 0)
    f->asc = 0;
  else if (strcasecmp(v, "asc") == 0)
    f->asc = 1;
  else {
    snprintf(err, errlen, "must be desc (newest first) or asc (oldest first)");
    return SL_EINVAL;
  }
  return 0;
}

int query_filter_set(query_filter *f, const char *name, const char *v, int64_t now_ms,
                     long max_limit, char *err, size_t errlen) {
  static const char *const known[] = {"type",          "bounceType", "feedbackType",     "address",
                                      "domain",        "source",     "messageId",        "since",
                                      "until",         "limit",      "cursor",           "order",
                                      "bounceSubType", "diagnostic", "configurationSet", "tag",
                                      "senderDomain"};
  size_t k = 0;
  while (k < sizeof known / sizeof known[0] && strcmp(known[k], name) != 0) k++;
  if (k == sizeof known / sizeof known[0]) return SL_EFIELD;
  if (!*v) return 0;
  if (strcmp(name, "type") == 0 || strcmp(name, "bounceType") == 0)
    return set_type(f, name, v, err, errlen);
  if (strcmp(name, "feedbackType") == 0)
    return set_str(f->feedback_type, sizeof f->feedback_type, v, err, errlen);
  if (strcmp(name, "address") == 0) {
    /* Stored lower case; a leading or trailing space is a paste accident. */
    while (*v == ' ') v++;
    int rc = set_str(f->address, sizeof f->address, v, err, errlen);
    size_t n = strlen(f->address);
    while (n && f->address[n - 1] == ' ') f->address[--n] = 0;
    util_ascii_lower(f->address);
    return rc;
  }
  if (strcmp(name, "domain") == 0) {
    if (*v == '@') v++;
    int rc = set_str(f->domain, sizeof f->domain, v, err, errlen);
    util_ascii_lower(f->domain);
    return rc;
  }
  if (strcmp(name, "source") == 0) {
    int rc = set_str(f->source, sizeof f->source, v, err, errlen);
    if (!rc) query_source_address(v, f->source_addr, sizeof f->source_addr);
    return rc;
  }
  if (strcmp(name, "bounceSubType") == 0)
    return set_str(f->bounce_sub_type, sizeof f->bounce_sub_type, v, err, errlen);
  if (strcmp(name, "diagnostic") == 0)
    return set_str(f->diagnostic, sizeof f->diagnostic, v, err, errlen);
  if (strcmp(name, "configurationSet") == 0)
    return set_str(f->configuration_set, sizeof f->configuration_set, v, err, errlen);
  if (strcmp(name, "senderDomain") == 0) {
    if (*v == '@') v++;
    int rc = set_str(f->sender_domain, sizeof f->sender_domain, v, err, errlen);
    util_ascii_lower(f->sender_domain);
    return rc;
  }
  if (strcmp(name, "tag") == 0) return set_tag(f, v, err, errlen);
  if (strcmp(name, "messageId") == 0)
    return set_str(f->message_id, sizeof f->message_id, v, err, errlen);
  return set_paging(f, name, v, now_ms, max_limit, err, errlen);
}

/* ---- cursors ---------------------------------------------------------- */

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int query_cursor_encode(const char *ts, int64_t id, char *out, size_t outlen) {
  char plain[64];
  int n = snprintf(plain, sizeof plain, "%s|%lld", ts, (long long)id);
  if (n < 0 || (size_t)n >= sizeof plain || id <= 0) return SL_EINVAL;
  size_t need = ((size_t)n * 4 + 2) / 3 + 1;
  if (need > outlen) return SL_EINVAL;
  size_t j = 0;
  const unsigned char *p = (const unsigned char *)plain;
  for (int i = 0; i < n; i += 3) {
    unsigned v = (unsigned)p[i] << 16;
    if (i + 1 < n) v |= (unsigned)p[i + 1] << 8;
    if (i + 2 < n) v |= p[i + 2];
    out[j++] = b64url[(v >> 18) & 63];
    out[j++] = b64url[(v >> 12) & 63];
    if (i + 1 < n) out[j++] = b64url[(v >> 6) & 63];
    if (i + 2 < n) out[j++] = b64url[v & 63];
  }
  out[j] = 0;
  return 0;
}

int query_cursor_decode(const char *cursor, char ts[25], int64_t *id) {
  char plain[64];
  size_t n = strlen(cursor), j = 0;
  if (n == 0 || n > 80 || n % 4 == 1) return SL_EINVAL;
  unsigned v = 0;
  int bits = 0;
  for (size_t i = 0; i < n; i++) {
    const char *c = strchr(b64url, cursor[i]);
    if (!c || !cursor[i]) return SL_EINVAL;
    v = (v << 6) | (unsigned)(c - b64url);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      if (j + 1 >= sizeof plain) return SL_EINVAL;
      plain[j++] = (char)((v >> bits) & 0xff);
    }
  }
  plain[j] = 0;
  if (memchr(plain, 0, j)) return SL_EINVAL;
  char *bar = strchr(plain, '|');
  if (!bar || bar - plain != 24) return SL_EINVAL;
  *bar = 0;
  int64_t ms;
  char canon[25];
  if (util_parse_iso8601(plain, &ms)) return SL_EINVAL;
  util_format_iso8601(ms, canon);
  if (strcmp(canon, plain) != 0) return SL_EINVAL;
  const char *d = bar + 1;
  if (!isdigit((unsigned char)*d) || *d == '0') return SL_EINVAL;
  char *end;
  errno = 0;
  long long num = strtoll(d, &end, 10);
  if (errno || *end || num <= 0) return SL_EINVAL;
  memcpy(ts, canon, 25);
  *id = num;
  return 0;
}

/* ---- SQL -------------------------------------------------------------- */

/* The sender's address in mail.source, lower case: the expression of
 * "sourceAddress-timeStamp-Index" (schema version 11), written the same so
 * SQLite uses that index; query_source_address computes it in C. */
#define SOURCE_ADDR                                                                           \
  "lower(CASE WHEN instr(source, '<') > 0 AND instr(source, '>') > instr(source, '<') THEN "  \
  "substr(source, instr(source, '<') + 1, instr(source, '>') - instr(source, '<') - 1) ELSE " \
  "trim(source) END)"

/* Appends the columns of enum query_col, in order, raw excepted: the id,
 * then the table's (event_fields.h), a column stored empty or compact
 * read as its value (ses_field_sql_read; before_v22 as it says). */
static int append_columns(buf *b, int before_v22) {
  int rc = buf_appends(b, "e.id");
  for (int i = 0; i < SF_N && !rc; i++) {
    const char *derived = ses_field_sql_read(i, before_v22);
    rc = derived ? buf_printf(b, ", %s", derived) : buf_printf(b, ", e.%s", ses_fields[i].column);
  }
  return rc;
}

/* The most selective filter given, by what mail traffic looks like: one
 * mail's events, one address's, complaints of a feedback type, a domain
 * ("recipients-domain", whose entries hold the type), a type, a sender, then time
 * alone. A type comes before a sender: Bounce or Complaint are a few
 * percent of events, and a busy sender's recent events may all be of
 * another type (a flood of deliveries) while a type's index holds only
 * that type. */
static enum query_driver pick_driver(const query_filter *f) {
  if (f->message_id[0]) return QD_MESSAGE;
  if (f->address[0]) return QD_ADDRESS;
  if (f->feedback_type[0]) return QD_FEEDBACK;
  if (f->domain[0]) return QD_DOMAIN;
  if (type_count(f) == 1 || (!f->type_mask && f->bounce_type[0])) return QD_TYPE;
  if (f->source_addr[0]) return QD_SOURCE;
  return QD_TIME;
}

static void bind_text(query_plan *p, const char *s) {
  p->binds[p->n_binds].text = s;
  p->binds[p->n_binds].num = 0;
  p->n_binds++;
}

static void bind_num(query_plan *p, int64_t v) {
  p->binds[p->n_binds].text = NULL;
  p->binds[p->n_binds].num = v;
  p->n_binds++;
}

/* Binds the time ts as the driving index holds it: the text of the
 * events' timeStamp, or for the recipients table, "timeStamp-Index" and
 * "sourceAddress-timeStamp-Index" (int_time) its integer
 * (query_rcpt_time). */
static void bind_time(query_plan *p, const char *ts, int int_time) {
  int64_t ms;
  if (int_time && !query_rcpt_time(ts, &ms))
    bind_num(p, ms);
  else
    bind_text(p, ts);
}

/* Binds the type name as the driving index holds it: the text, or for
 * the recipients table its code (query_type_code). */
static void bind_type(query_plan *p, const char *name, int by_recipient) {
  int code = by_recipient ? query_type_code(name) : -1;
  if (code >= 0)
    bind_num(p, code);
  else
    bind_text(p, name);
}

/* Several types: " AND <col> IN (?,...)", one bind a type; by_recipient:
 * col is the recipients table's (codes). */
static int append_types_in(query_plan *p, buf *b, const query_filter *f, const char *col,
                           int by_recipient) {
  int rc = buf_printf(b, " AND %s IN (", col);
  int n = 0;
  for (size_t i = 0; i < sizeof types / sizeof types[0] && !rc; i++) {
    if (!(f->type_mask & (1u << i))) continue;
    rc = buf_appends(b, n++ ? ",?" : "?");
    bind_type(p, types[i], by_recipient);
  }
  return rc ? rc : buf_appends(b, ")");
}

/* The filters checked on every row, never driving: bounce subtype,
 * diagnostic text, configuration set, tag, sender domain. */
static int append_checks(query_plan *p, buf *b, const query_filter *f) {
  int rc = 0;
  if (f->bounce_sub_type[0]) {
    rc = rc ? rc : buf_appends(b, " AND e.bounceSubType = ?");
    bind_text(p, f->bounce_sub_type);
  }
  if (f->diagnostic[0]) {
    rc = rc ? rc
            : buf_appends(b, " AND instr(lower(" EF_SQL_READ_DIAGNOSTIC("e.") "), lower(?)) > 0");
    bind_text(p, f->diagnostic);
  }
  /* A tag's values are a list; SES sets one (the first is compared). The
   * raw JSON is checked first: a row edited by hand must not fail the
   * query. */
  if (f->configuration_set[0]) {
    rc = rc ? rc
            : buf_appends(b, " AND json_valid(" RAWZ_SQL_E ") AND json_extract(" RAWZ_SQL_E
                             ", '$.mail.tags.\"ses:configuration-set\"[0]') = ?");
    bind_text(p, f->configuration_set);
  }
  if (f->tag_path[0] && f->tag_value[0]) {
    rc = rc ? rc
            : buf_appends(b, " AND json_valid(" RAWZ_SQL_E ") AND json_extract(" RAWZ_SQL_E
                             ", ? || '[0]') = ?");
    bind_text(p, f->tag_path);
    bind_text(p, f->tag_value);
  } else if (f->tag_path[0]) {
    rc = rc ? rc
            : buf_appends(b, " AND json_valid(" RAWZ_SQL_E ") AND json_type(" RAWZ_SQL_E
                             ", ?) IS NOT NULL");
    bind_text(p, f->tag_path);
  }
  if (f->sender_domain[0]) {
    rc = rc ? rc
            : buf_printf(b, " AND substr(%s, instr(%s, '@') + 1) = ?", SOURCE_ADDR, SOURCE_ADDR);
    bind_text(p, f->sender_domain);
  }
  return rc;
}

/* The SQL of f: "SELECT select FROM <driving> from_extra WHERE <filters>",
 * then for a page the cursor, ORDER BY and LIMIT. by_recipient tells
 * whether the rows are recipients (r) joined to their events (e). */
static int build_sql(const query_filter *f, const char *select, const char *from_extra, int paged,
                     query_plan *p);

int query_plan_build(const query_filter *f, int with_raw, query_plan *p) {
  buf select;
  buf_init(&select, 4096);
  append_columns(&select, f->before_v22);
  buf_appends(&select, with_raw ? ", " RAWZ_SQL_E : ", NULL");
  int rc = buf_failed(&select) ? SL_ENOMEM : build_sql(f, select.data, "", 1, p);
  buf_free(&select);
  return rc;
}

/* The FROM and WHERE of a plan driven by the recipients table (an
 * address or a domain): recipients r joined to their events e. */
static int where_by_recipient(query_plan *p, buf *b, const query_filter *f, const char *from_extra,
                              const char *type, int several) {
  /* CROSS JOIN keeps recipients the outer loop. */
  int rc = buf_appends(b, "recipients r CROSS JOIN SesEventMessages e ON e.id = r.eventId");
  rc = rc ? rc : buf_appends(b, from_extra);
  if (p->driver == QD_ADDRESS) {
    rc = rc ? rc : buf_appends(b, " WHERE r.address = ?");
    bind_text(p, f->address);
    if (f->domain[0]) {
      rc = rc ? rc : buf_appends(b, " AND " ADDRESS_DOMAIN_SQL("r.") " = ?");
      bind_text(p, f->domain);
    }
    if (type) { /* the primary key row holds the type: no lookup */
      rc = rc ? rc : buf_appends(b, " AND r.notificationType = ?");
      bind_type(p, type, 1);
    }
    if (several) rc = rc ? rc : append_types_in(p, b, f, "r.notificationType", 1);
  } else {
    p->dedupe = 1; /* two recipients of one event at the same domain */
    rc = rc ? rc : buf_appends(b, " WHERE " ADDRESS_DOMAIN_SQL("r.") " = ?");
    bind_text(p, f->domain);
    if (type) { /* the index entry holds the type: no lookup of the row */
      rc = rc ? rc : buf_appends(b, " AND r.notificationType = ?");
      bind_type(p, type, 1);
    }
    /* Checked in the index entry too; the + keeps the IN list from
     * becoming seeks, whose rows would need a sort. */
    if (several) rc = rc ? rc : append_types_in(p, b, f, "+r.notificationType", 1);
  }
  if (f->message_id[0]) {
    rc = rc ? rc : buf_appends(b, " AND e.messageId = ?");
    bind_text(p, f->message_id);
  }
  if (f->feedback_type[0]) {
    rc = rc ? rc : buf_appends(b, " AND e.complaintFeedbackType = ?");
    bind_text(p, f->feedback_type);
  }
  if (f->source_addr[0]) {
    rc = rc ? rc : buf_printf(b, " AND +(%s) = ?", SOURCE_ADDR);
    bind_text(p, f->source_addr);
  }
  return rc;
}

/* The FROM and WHERE of a plan driven by an index of the events table. */
static int where_by_event(query_plan *p, buf *b, const query_filter *f, const char *from_extra,
                          const char *type, int several) {
  int rc = buf_printf(b, "SesEventMessages e%s WHERE 1", from_extra);
  /* The driving column bare, every other one behind a unary + so
   * SQLite cannot pick its index instead. */
  if (f->message_id[0]) {
    rc = rc ? rc : buf_printf(b, " AND %se.messageId = ?", p->driver == QD_MESSAGE ? "" : "+");
    bind_text(p, f->message_id);
  }
  if (f->feedback_type[0]) {
    rc = rc ? rc
            : buf_printf(b, " AND %se.complaintFeedbackType = ?",
                         p->driver == QD_FEEDBACK ? "" : "+");
    bind_text(p, f->feedback_type);
  }
  if (type) {
    rc = rc ? rc : buf_printf(b, " AND %se.notificationType = ?", p->driver == QD_TYPE ? "" : "+");
    bind_text(p, type);
  }
  if (several) rc = rc ? rc : append_types_in(p, b, f, "+e.notificationType", 0);
  if (f->source_addr[0]) {
    /* "+(...)" is another expression than the index's: it cannot drive. */
    rc = rc ? rc
            : buf_printf(b, p->driver == QD_SOURCE ? " AND %s = ?" : " AND +(%s) = ?", SOURCE_ADDR);
    bind_text(p, f->source_addr);
  }
  /* A recipient filter that does not drive: one probe of the recipients
   * index at the event's own (timeStamp, id). */
  if (f->address[0]) {
    rc = rc ? rc
            : buf_appends(
                  b,
                  " AND EXISTS (SELECT 1 FROM recipients r WHERE r.address = ? AND "
                  "r.timeStamp = " QUERY_RCPT_TIME_SQL("e.timeStamp") " AND r.eventId = e.id)");
    bind_text(p, f->address);
  }
  if (f->domain[0]) {
    rc = rc ? rc
            : buf_appends(
                  b,
                  " AND EXISTS (SELECT 1 FROM recipients r WHERE " ADDRESS_DOMAIN_SQL(
                      "r.") " = ? AND "
                  "r.timeStamp = " QUERY_RCPT_TIME_SQL("e.timeStamp") " AND r.eventId = e.id)");
    bind_text(p, f->domain);
  }
  return rc;
}

static int build_sql(const query_filter *f, const char *select, const char *from_extra, int paged,
                     query_plan *p) {
  memset(p, 0, sizeof *p);
  buf_init(&p->sql, 16384);
  p->cursor_bind = -1;
  p->driver = pick_driver(f);
  buf *b = &p->sql;
  int rc = buf_printf(b, "SELECT %s FROM ", select);
  const char *dir = f->asc ? "ASC" : "DESC";
  int several = type_count(f) > 1; /* any of them: checked, never driving */
  const char *type = several ? NULL : f->type[0] ? f->type : f->bounce_type[0] ? "Bounce" : NULL;
  int by_recipient = p->driver == QD_ADDRESS || p->driver == QD_DOMAIN;
  /* k is the key of the driving index: timeStamp then the event's id.
   * "timeStamp-Index" and "sourceAddress-timeStamp-Index" key the time as
   * recipients.timeStamp holds it, the integer of the text (schema
   * version 25): the same expression. */
  int int_key = p->driver == QD_TIME || p->driver == QD_SOURCE;
  int int_time = by_recipient || int_key;
  const char *kts = by_recipient ? "r.timeStamp"
                    : int_key    ? QUERY_RCPT_TIME_SQL("e.timeStamp")
                                 : "e.timeStamp";
  const char *kid = by_recipient ? "r.eventId" : "e.id";
  if (by_recipient)
    rc = rc ? rc : where_by_recipient(p, b, f, from_extra, type, several);
  else
    rc = rc ? rc : where_by_event(p, b, f, from_extra, type, several);
  rc = rc ? rc : append_checks(p, b, f);
  if (f->bounce_type[0]) {
    rc = rc ? rc : buf_appends(b, " AND e.bounceType = ?");
    bind_text(p, f->bounce_type);
  }
  if (f->since[0]) {
    rc = rc ? rc : buf_printf(b, " AND %s >= ?", kts);
    bind_time(p, f->since, int_time);
  }
  if (f->until[0]) {
    rc = rc ? rc : buf_printf(b, " AND %s < ?", kts);
    bind_time(p, f->until, int_time);
  }
  if (!paged) {
    if (rc) query_plan_free(p);
    return rc == SL_ETOOBIG ? SL_ENOMEM : rc;
  }
  if (f->cursor_id > 0) {
    /* Strictly after the cursor in page order. The first comparison is a
     * range on the index; the second breaks ties on timeStamp. */
    const char *le = f->asc ? ">=" : "<=", *lt = f->asc ? ">" : "<";
    rc =
        rc ? rc : buf_printf(b, " AND %s %s ? AND (%s %s ? OR %s %s ?)", kts, le, kts, lt, kid, lt);
    p->cursor_bind = p->n_binds;
    bind_time(p, f->cursor_ts, int_time);
    bind_time(p, f->cursor_ts, int_time);
    bind_num(p, f->cursor_id);
  }
  rc = rc ? rc : buf_printf(b, " ORDER BY %s %s, %s %s LIMIT ?", kts, dir, kid, dir);
  bind_num(p, f->limit + 1);
  if (rc) {
    query_plan_free(p);
    return rc == SL_ETOOBIG ? SL_ENOMEM : rc;
  }
  return 0;
}

void query_plan_free(query_plan *p) {
  buf_free(&p->sql);
}

/* ---- connections ------------------------------------------------------ */

int query_open(const char *path, sqlite3 **out, char *err, size_t errlen) {
  sqlite3 *db;
  if (readpool_open_conn(path, &db, err, errlen)) return SL_EDB;
  /* Opening is lazy: read the schema now so that a file which is not a
   * seslog database fails here, once, with a clear message. */
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(db, "SELECT 1 FROM SesEventMessages, rollup_minute LIMIT 0", -1, &st,
                         NULL) != SQLITE_OK) {
    snprintf(err, errlen, "%s is not a seslog database (%s)", path, sqlite3_errmsg(db));
    sqlite3_finalize(st);
    sqlite3_close(db);
    return SL_EDB;
  }
  sqlite3_finalize(st);
  *out = db;
  return 0;
}

/* The sl_err of a failed step or prepare. */
static int sql_error(int rc) {
  if (rc == SQLITE_INTERRUPT || rc == SQLITE_BUSY || rc == SQLITE_LOCKED) return SL_EBUSY;
  if (rc == SQLITE_NOMEM) return SL_ENOMEM;
  return SL_EDB;
}

/* Prepares sql. Returns 0 or the sl_err of the failure. */
static int prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st) {
  int rc = sqlite3_prepare_v2(db, sql, -1, st, NULL);
  return rc == SQLITE_OK ? 0 : sql_error(rc);
}

/* ---- events ----------------------------------------------------------- */

static void read_row(sqlite3_stmt *st, query_row *r) {
  r->id = sqlite3_column_int64(st, 0);
  r->col[QC_ID] = NULL;
  r->len[QC_ID] = 0;
  for (int i = 1; i < QC_N; i++) {
    r->col[i] = (const char *)sqlite3_column_text(st, i);
    r->len[i] = r->col[i] ? (size_t)sqlite3_column_bytes(st, i) : 0;
  }
}

int query_events(sqlite3 *db, const query_filter *f, int with_raw, query_row_fn fn, void *ud,
                 char next_cursor[QUERY_CURSOR_MAX], long *rows) {
  query_filter g = *f; /* its cursor moves when duplicates fill a batch */
  /* a database the previous release wrote, read without migrating it */
  g.before_v22 = sqlite3_table_column_metadata(db, "main", "SesEventMessages", "topicId", NULL,
                                               NULL, NULL, NULL, NULL) != SQLITE_OK;
  long emitted = 0;
  int more = 0, stop = 0, rc = 0;
  char last_ts[25] = "";
  int64_t last_id = 0, prev_id = 0;
  next_cursor[0] = 0;
  for (;;) {
    query_plan p;
    sqlite3_stmt *st;
    if ((rc = query_plan_build(&g, with_raw, &p))) break;
    if ((rc = prepare(db, p.sql.data, &st))) {
      query_plan_free(&p);
      break;
    }
    for (int i = 0; i < p.n_binds; i++) {
      if (p.binds[i].text)
        sqlite3_bind_text(st, i + 1, p.binds[i].text, -1, SQLITE_STATIC);
      else
        sqlite3_bind_int64(st, i + 1, p.binds[i].num);
    }
    long n = 0, fetch = g.limit + 1;
    char seen_ts[25] = "";
    int64_t seen_id = 0;
    int src;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
      n++;
      int64_t id = sqlite3_column_int64(st, 0);
      const char *ts = (const char *)sqlite3_column_text(st, 2);
      snprintf(seen_ts, sizeof seen_ts, "%s", ts ? ts : "");
      seen_id = id;
      if (p.dedupe && id == prev_id) continue;
      prev_id = id;
      if (emitted == f->limit) {
        more = 1;
        break;
      }
      query_row r;
      read_row(st, &r);
      if (fn && fn(ud, &r)) {
        stop = 1;
        break;
      }
      emitted++;
      memcpy(last_ts, seen_ts, sizeof last_ts);
      last_id = id;
    }
    if (src != SQLITE_ROW && src != SQLITE_DONE) rc = sql_error(src);
    sqlite3_finalize(st); /* ends the read transaction */
    int dedupe = p.dedupe;
    query_plan_free(&p);
    if (rc || more || stop || n < fetch || !dedupe) break;
    /* A whole batch went by with duplicates in it: go on after its last
     * row (every duplicate of that event is at the same key). */
    memcpy(g.cursor_ts, seen_ts, sizeof g.cursor_ts);
    g.cursor_id = seen_id;
  }
  if (rc) return rc;
  if (more && query_cursor_encode(last_ts, last_id, next_cursor, QUERY_CURSOR_MAX))
    return SL_EDB; /* a stored timeStamp that is not ISO-8601 ms */
  if (rows) *rows = emitted;
  return 0;
}

/* ---- JSON ------------------------------------------------------------- */

int query_json_double(buf *b, double v) {
  if (!(v == v) || v > 1e300 || v < -1e300) v = 0;
  return buf_printf(b, "%.10g", v);
}

int query_row_json(buf *b, const query_row *r) {
  /* QC_x is SF_x + 1: the row's columns are the table's, after the id. */
  return ses_fields_json(b, r->col + 1, r->len + 1, r->col[QC_RAW], r->len[QC_RAW]);
}

/* ---- rollups ---------------------------------------------------------- */

int64_t query_sends(const struct query_counts *k) {
  return k->sends > 0 ? k->sends : k->deliveries + k->bounces;
}

double query_bounce_rate(const struct query_counts *k) {
  int64_t s = query_sends(k);
  return s > 0 ? (double)k->permanent_bounces / (double)s : 0;
}

double query_complaint_rate(const struct query_counts *k) {
  int64_t s = query_sends(k);
  return s > 0 ? (double)k->complaints / (double)s : 0;
}

static int64_t floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

int query_rollup_sum(sqlite3 *db, int64_t from_minute, int64_t to_minute,
                     struct query_counts *out) {
  /* Whole hours from rollup_hour, the minutes at either end from
   * rollup_minute: a 30-day window reads about 840 rows, not 43,200. */
  int64_t h0 = floor_div(from_minute + 59, 60), h1 = floor_div(to_minute + 1, 60);
  if (h1 < h0) h1 = h0;
  sqlite3_stmt *st;
  int rc = prepare(db,
                   "SELECT total(s), total(d), total(b), total(p), total(c), total(e) FROM ("
                   "SELECT sends s, deliveries d, bounces b, permanentBounces p, complaints c, "
                   "events e FROM rollup_minute WHERE minute >= ?1 AND minute < ?2 UNION ALL "
                   "SELECT sends, deliveries, bounces, permanentBounces, complaints, events "
                   "FROM rollup_hour WHERE hour >= ?3 AND hour < ?4 UNION ALL "
                   "SELECT sends, deliveries, bounces, permanentBounces, complaints, events "
                   "FROM rollup_minute WHERE minute >= ?5 AND minute <= ?6)",
                   &st);
  if (rc) return rc;
  int64_t split = h0 < h1 ? h0 * 60 : to_minute + 1; /* minutes before the first hour */
  sqlite3_bind_int64(st, 1, from_minute);
  sqlite3_bind_int64(st, 2, split);
  sqlite3_bind_int64(st, 3, h0);
  sqlite3_bind_int64(st, 4, h1);
  sqlite3_bind_int64(st, 5, h0 < h1 ? h1 * 60 : to_minute + 1);
  sqlite3_bind_int64(st, 6, to_minute);
  int err = 0;
  rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    struct query_counts k = {
        .sends = (int64_t)sqlite3_column_double(st, 0),
        .deliveries = (int64_t)sqlite3_column_double(st, 1),
        .bounces = (int64_t)sqlite3_column_double(st, 2),
        .permanent_bounces = (int64_t)sqlite3_column_double(st, 3),
        .complaints = (int64_t)sqlite3_column_double(st, 4),
        .events = (int64_t)sqlite3_column_double(st, 5),
    };
    *out = k;
  } else {
    err = sql_error(rc);
  }
  sqlite3_finalize(st);
  return err;
}

int query_data_range(sqlite3 *db, int64_t *first_minute, int64_t *last_minute, int *found) {
  sqlite3_stmt *st;
  /* min() and max() of the primary key: two index probes. */
  int rc = prepare(db, "SELECT min(minute), max(minute) FROM rollup_minute", &st);
  if (rc) return rc;
  rc = sqlite3_step(st);
  int err = rc == SQLITE_ROW ? 0 : sql_error(rc);
  if (!err) {
    *found = sqlite3_column_type(st, 0) != SQLITE_NULL;
    if (*found) {
      *first_minute = sqlite3_column_int64(st, 0);
      *last_minute = sqlite3_column_int64(st, 1);
    }
  }
  sqlite3_finalize(st);
  return err;
}

int query_timeseries(sqlite3 *db, int64_t since_ms, int64_t until_ms, int64_t bucket_ms,
                     int64_t *start_ms, struct query_counts **points, size_t *n) {
  if (bucket_ms < 60000 || bucket_ms % 60000 || until_ms < since_ms) return SL_EINVAL;
  int64_t start = floor_div(since_ms, bucket_ms) * bucket_ms;
  int64_t count = until_ms > start ? (until_ms - start + bucket_ms - 1) / bucket_ms : 0;
  if (count > QUERY_MAX_POINTS) return SL_EINVAL;
  struct query_counts *pts = calloc(count ? (size_t)count : 1, sizeof *pts);
  if (!pts) return SL_ENOMEM;
  /* Buckets of whole hours (always aligned to hours) read rollup_hour. */
  int64_t unit = bucket_ms % 3600000 == 0 ? 3600000 : 60000;
  sqlite3_stmt *st;
  int rc = prepare(db,
                   unit == 60000
                       ? "SELECT minute, sends, deliveries, bounces, permanentBounces, complaints "
                         "FROM rollup_minute WHERE minute >= ? AND minute < ? ORDER BY minute"
                       : "SELECT hour, sends, deliveries, bounces, permanentBounces, complaints "
                         "FROM rollup_hour WHERE hour >= ? AND hour < ? ORDER BY hour",
                   &st);
  if (rc) {
    free(pts);
    return rc;
  }
  int64_t per = bucket_ms / unit, first = start / unit;
  sqlite3_bind_int64(st, 1, first);
  sqlite3_bind_int64(st, 2, first + count * per);
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    int64_t i = (sqlite3_column_int64(st, 0) - first) / per;
    if (i < 0 || i >= count) continue;
    pts[i].sends += sqlite3_column_int64(st, 1);
    pts[i].deliveries += sqlite3_column_int64(st, 2);
    pts[i].bounces += sqlite3_column_int64(st, 3);
    pts[i].permanent_bounces += sqlite3_column_int64(st, 4);
    pts[i].complaints += sqlite3_column_int64(st, 5);
  }
  int err = rc == SQLITE_DONE ? 0 : sql_error(rc);
  sqlite3_finalize(st);
  if (err) {
    free(pts);
    return err;
  }
  *start_ms = start;
  *points = pts;
  *n = (size_t)count;
  return 0;
}

/* ---- counts grouped by fields ----------------------------------------- */

int query_grouping_parse(const char *spec, query_grouping *g, char *err, size_t errlen) {
  static const struct {
    const char *name;
    enum query_group_field field;
  } names[] = {{"day", QG_DAY},
               {"hour", QG_HOUR},
               {"type", QG_TYPE},
               {"domain", QG_DOMAIN},
               {"bounceType", QG_BOUNCE_TYPE},
               {"bounceSubType", QG_BOUNCE_SUB},
               {"diagnostic", QG_DIAGNOSTIC},
               {"source", QG_SOURCE},
               {"configurationSet", QG_CONFIG_SET}};
  query_grouping out;
  memset(&out, 0, sizeof out);
  const char *s = spec;
  if (!*s) {
    snprintf(err, errlen, "must name one to %d fields, comma-separated", QUERY_GROUP_MAX);
    return SL_EINVAL;
  }
  for (;;) {
    const char *comma = strchr(s, ',');
    size_t n = comma ? (size_t)(comma - s) : strlen(s);
    if (out.n == QUERY_GROUP_MAX) {
      snprintf(err, errlen, "names more than %d fields", QUERY_GROUP_MAX);
      return SL_EINVAL;
    }
    char name[140];
    if (n == 0 || n >= sizeof name) {
      snprintf(err, errlen, "has an empty or too long field");
      return SL_EINVAL;
    }
    memcpy(name, s, n);
    name[n] = 0;
    int i = out.n, known = 0;
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++)
      if (strcmp(names[k].name, name) == 0) {
        out.field[i] = names[k].field;
        known = 1;
      }
    if (!known && strncmp(name, "tag:", 4) == 0 && name[4] && !strpbrk(name + 4, "\"\\'")) {
      out.field[i] = QG_TAG;
      snprintf(out.path[i], sizeof out.path[i], "$.mail.tags.\"%s\"[0]", name + 4);
      known = 1;
    }
    if (!known) {
      snprintf(err, errlen,
               "has an unknown field \"%.60s\" (day, hour, type, domain, bounceType, "
               "bounceSubType, diagnostic, source, configurationSet or tag:NAME)",
               name);
      return SL_EINVAL;
    }
    if (out.field[i] == QG_CONFIG_SET)
      snprintf(out.path[i], sizeof out.path[i], "$.mail.tags.\"ses:configuration-set\"[0]");
    for (int j = 0; j < i; j++)
      if (strcmp(out.name[j], name) == 0) {
        snprintf(err, errlen, "names \"%.60s\" twice", name);
        return SL_EINVAL;
      }
    memcpy(out.name[i], name, n + 1);
    out.n++;
    if (!comma) break;
    s = comma + 1;
  }
  *g = out;
  return 0;
}

/* The SQL of one field's key; by_recipient: the rows are recipients (r).
 * Days and hours come from the event's text, also for recipients rows
 * (their integer time is the same instant, schema version 23). */
static int group_key_sql(buf *b, const query_grouping *g, int i, int by_recipient) {
  const char *ts = "e.timeStamp";
  switch (g->field[i]) {
    case QG_DAY: return buf_printf(b, "substr(%s, 1, 10)", ts);
    case QG_HOUR: return buf_printf(b, "substr(%s, 1, 13) || ':00'", ts);
    case QG_TYPE: return buf_appends(b, "e.notificationType");
    case QG_DOMAIN:
      return buf_appends(b, by_recipient ? ADDRESS_DOMAIN_SQL("r.")
                                         : "lower(substr(j.value, instr(j.value, '@') + 1))");
    case QG_BOUNCE_TYPE: return buf_appends(b, "e.bounceType");
    case QG_BOUNCE_SUB: return buf_appends(b, "e.bounceSubType");
    case QG_DIAGNOSTIC: return buf_appends(b, "seslog_diag(" EF_SQL_READ_DIAGNOSTIC("e.") ")");
    case QG_SOURCE: return buf_appends(b, "e.source");
    case QG_CONFIG_SET:
    case QG_TAG:
      /* The path holds no quote (query_grouping_parse). */
      return buf_printf(
          b, "CASE WHEN json_valid(" RAWZ_SQL_E ") THEN json_extract(" RAWZ_SQL_E ", '%s') END",
          g->path[i]);
  }
  return SL_EINVAL;
}

/* 1 when every field of g is one of the bits of allowed. */
static int fields_in(const query_grouping *g, unsigned allowed) {
  for (int i = 0; i < g->n; i++)
    if (!(allowed & (1u << g->field[i]))) return 0;
  return 1;
}

const char *query_group_source(const query_filter *f, const query_grouping *g) {
  /* The rollups know types, bounce types and subtypes, senders, hours and
   * days, and the recipients' domains: any other filter needs the events. */
  if (f->message_id[0] || f->address[0] || f->feedback_type[0] || f->domain[0] ||
      f->source_addr[0] || f->diagnostic[0] || f->configuration_set[0] || f->tag_path[0] ||
      f->sender_domain[0])
    return "events";
  int by_domain = 0, by_diag = 0;
  for (int i = 0; i < g->n; i++) {
    by_domain |= g->field[i] == QG_DOMAIN;
    by_diag |= g->field[i] == QG_DIAGNOSTIC;
  }
  int typed = f->type[0] || f->bounce_type[0] || f->bounce_sub_type[0];
  if (by_domain && !typed && fields_in(g, 1u << QG_DAY | 1u << QG_DOMAIN))
    return "rollup_recipient_day";
  if (by_domain)
    return fields_in(g, 1u << QG_DAY | 1u << QG_TYPE | 1u << QG_DOMAIN | 1u << QG_BOUNCE_TYPE) &&
                   !f->bounce_sub_type[0]
               ? "rollup_domain_day"
               : "events";
  if (by_diag)
    return fields_in(g, 1u << QG_DAY | 1u << QG_HOUR | 1u << QG_TYPE | 1u << QG_BOUNCE_TYPE |
                            1u << QG_BOUNCE_SUB | 1u << QG_DIAGNOSTIC)
               ? "rollup_diagnostic_hour"
               : "events";
  return fields_in(g, 1u << QG_DAY | 1u << QG_HOUR | 1u << QG_TYPE | 1u << QG_BOUNCE_TYPE |
                          1u << QG_BOUNCE_SUB | 1u << QG_SOURCE)
             ? "rollup_type_hour"
             : "events";
}

/* A rollup table and the length of its time unit. */
struct tier {
  const char *table;
  int64_t unit_ms;
};

/* The rollups that answer the whole units of a range of the source
 * query_group_source named, coarsest first; the time the last one leaves
 * at either end is read from the events. Returns how many. */
static int source_tiers(const char *src, struct tier t[2]) {
  if (strcmp(src, "rollup_recipient_day") == 0) {
    t[0] = (struct tier){src, 86400000};
    t[1] = (struct tier){"rollup_recipient_hour", 3600000};
    return 2;
  }
  t[0] = (struct tier){src, strcmp(src, "rollup_domain_day") == 0 ? 86400000 : 3600000};
  return 1;
}

/* The SQL of f grouped by g over the rollup table query_group_source
 * named: the keys, the summed count, the filters.
 * GROUP BY and the rest follow (run_groups). Returns 0 or SL_ENOMEM. */
static int rollup_sql(const query_filter *f, const query_grouping *g, const char *table,
                      query_plan *p) {
  int days = strcmp(table, "rollup_domain_day") == 0 || strcmp(table, "rollup_recipient_day") == 0;
  int domains = days || strcmp(table, "rollup_recipient_hour") == 0;
  memset(p, 0, sizeof *p);
  buf_init(&p->sql, 8192);
  p->cursor_bind = -1;
  buf *b = &p->sql;
  int rc = buf_appends(b, "SELECT ");
  for (int i = 0; i < g->n && !rc; i++) {
    const char *k = "NULL";
    switch (g->field[i]) {
      case QG_DAY: k = days ? "day" : "substr(hour, 1, 10)"; break;
      case QG_HOUR: k = "hour || ':00'"; break;
      case QG_TYPE: k = "notificationType"; break;
      case QG_DOMAIN: k = "domain"; break;
      case QG_SOURCE: k = "nullif(source, '')"; break;
      case QG_BOUNCE_TYPE: k = "nullif(bounceType, '')"; break;
      case QG_BOUNCE_SUB: k = "nullif(bounceSubType, '')"; break;
      case QG_DIAGNOSTIC: k = "nullif(diagnostic, '')"; break;
      default: break;
    }
    rc = buf_printf(b, "%s%s AS k%d", i ? ", " : "", k, i);
  }
  if (!rc)
    rc = buf_printf(b, ", sum(%s) AS n FROM %s WHERE 1", domains ? "recipients" : "events", table);
  int several = type_count(f) > 1;
  const char *type = several ? NULL : f->type[0] ? f->type : f->bounce_type[0] ? "Bounce" : NULL;
  if (type) {
    rc = rc ? rc : buf_appends(b, " AND notificationType = ?");
    bind_text(p, type);
  }
  if (several) rc = rc ? rc : append_types_in(p, b, f, "notificationType", 0);
  if (f->bounce_type[0]) {
    rc = rc ? rc : buf_appends(b, " AND bounceType = ?");
    bind_text(p, f->bounce_type);
  }
  if (f->bounce_sub_type[0]) {
    rc = rc ? rc : buf_appends(b, " AND bounceSubType = ?");
    bind_text(p, f->bounce_sub_type);
  }
  const char *col = days ? "day" : "hour";
  int unit = days ? 10 : 13;
  if (f->since[0]) {
    rc = rc ? rc : buf_printf(b, " AND %s >= substr(?, 1, %d)", col, unit);
    bind_text(p, f->since);
  }
  if (f->until[0]) {
    rc = rc ? rc : buf_printf(b, " AND %s < substr(?, 1, %d)", col, unit);
    bind_text(p, f->until);
  }
  if (rc) query_plan_free(p);
  return rc == SL_ETOOBIG ? SL_ENOMEM : rc;
}

/* The SQL of f's events grouped by g (the indexes of a page drive it):
 * "SELECT k0.., n FROM ... WHERE ..." without GROUP BY. Returns 0 or an
 * sl_err. */
static int events_sql(const query_filter *f, const query_grouping *g, query_plan *p) {
  int by_domain = 0;
  for (int i = 0; i < g->n; i++) by_domain |= g->field[i] == QG_DOMAIN;
  enum query_driver d = pick_driver(f);
  int by_recipient = d == QD_ADDRESS || d == QD_DOMAIN;
  buf sel;
  buf_init(&sel, 4096);
  int rc = 0;
  for (int i = 0; i < g->n && !rc; i++) {
    if (i) rc = buf_appends(&sel, ", ");
    if (!rc) rc = group_key_sql(&sel, g, i, by_recipient);
    if (!rc) rc = buf_printf(&sel, " AS k%d", i);
  }
  /* Events are counted once each; grouped by domain, recipients are. A
   * domain-driven query has a row per recipient of that domain. */
  /* From the JSON of the recipients, an address given twice (in any
   * case) is one, as in the recipients table. */
  if (!rc)
    rc = buf_appends(&sel, by_domain && !by_recipient ? ", count(DISTINCT e.id || ' ' || "
                                                        "lower(j.value)) AS n"
                           : by_domain || d == QD_TIME || !by_recipient
                               ? ", count(*) AS n"
                               : ", count(DISTINCT e.id) AS n");
  const char *extra = by_domain && !by_recipient
                          ? ", json_each(CASE WHEN json_valid(" EF_SQL_READ_RECIPIENTS(
                                "e.") ") THEN " EF_SQL_READ_RECIPIENTS("e.") " ELSE '[]' END) j"
                          : "";
  if (!rc) rc = build_sql(f, sel.data, extra, 0, p);
  buf_free(&sel);
  return rc;
}

/* Appends part's SQL, grouped, to whole as one branch of a UNION ALL, and
 * its binds; frees part. Returns 0 or SL_ENOMEM. */
static int add_part(query_plan *whole, query_plan *part, const query_grouping *g) {
  int rc = buf_appends(&whole->sql, whole->sql.len ? " UNION ALL " : "");
  if (!rc) rc = buf_append(&whole->sql, part->sql.data, part->sql.len);
  if (!rc) rc = buf_appends(&whole->sql, " GROUP BY ");
  for (int i = 0; i < g->n && !rc; i++) rc = buf_printf(&whole->sql, "%s%d", i ? ", " : "", i + 1);
  for (int i = 0; i < part->n_binds && !rc; i++) {
    if (whole->n_binds == QUERY_MAX_BINDS) {
      rc = SL_ENOMEM;
      break;
    }
    whole->binds[whole->n_binds++] = part->binds[i];
  }
  query_plan_free(part);
  return rc == SL_ETOOBIG ? SL_ENOMEM : rc;
}

/* Runs the grouped SQL of p (branches of a UNION ALL, each giving k0..,
 * n), summing the branches: the order (time keys ascending, else count
 * descending, then keys) and the LIMIT; calls fn per group; frees p.
 * A group whose rows sum to 0 (rollup rows left by deletions) is none. */
static int run_groups(sqlite3 *db, query_plan *p, const query_grouping *g, long max_groups,
                      query_group_fn fn, void *ud, int *more) {
  buf outer;
  buf_init(&outer, 65536);
  int rc = buf_appends(&outer, "SELECT ");
  for (int i = 0; i < g->n && !rc; i++) rc = buf_printf(&outer, "k%d, ", i);
  if (!rc) rc = buf_printf(&outer, "sum(n) FROM (%s) GROUP BY ", p->sql.data);
  for (int i = 0; i < g->n && !rc; i++) rc = buf_printf(&outer, "%s%d", i ? ", " : "", i + 1);
  if (!rc) rc = buf_printf(&outer, " HAVING sum(n) > 0");
  int by_time = g->field[0] == QG_DAY || g->field[0] == QG_HOUR;
  if (!rc)
    rc = by_time ? buf_appends(&outer, " ORDER BY ")
                 : buf_printf(&outer, " ORDER BY %d DESC, ", g->n + 1);
  for (int i = 0; i < g->n && !rc; i++) rc = buf_printf(&outer, "%s%d", i ? ", " : "", i + 1);
  if (!rc) rc = buf_appends(&outer, " LIMIT ?");
  if (!rc && p->n_binds == QUERY_MAX_BINDS) rc = SL_ENOMEM;
  if (!rc) bind_num(p, max_groups + 1);
  sqlite3_stmt *st = NULL;
  if (!rc) rc = query_register_functions(db); /* seslog_diag, on any connection */
  if (!rc) rc = prepare(db, outer.data, &st);
  buf_free(&outer);
  if (rc) {
    query_plan_free(p);
    return rc == SL_ETOOBIG ? SL_ENOMEM : rc;
  }
  for (int i = 0; i < p->n_binds; i++) {
    if (p->binds[i].text)
      sqlite3_bind_text(st, i + 1, p->binds[i].text, -1, SQLITE_STATIC);
    else
      sqlite3_bind_int64(st, i + 1, p->binds[i].num);
  }
  long n = 0;
  int src;
  *more = 0;
  while ((src = sqlite3_step(st)) == SQLITE_ROW) {
    if (n++ == max_groups) {
      *more = 1;
      break;
    }
    const char *keys[QUERY_GROUP_MAX];
    for (int i = 0; i < g->n; i++) keys[i] = (const char *)sqlite3_column_text(st, i);
    if (fn(ud, keys, sqlite3_column_int64(st, g->n))) break;
  }
  int err = src == SQLITE_ROW || src == SQLITE_DONE ? 0 : sql_error(src);
  sqlite3_finalize(st);
  query_plan_free(p);
  return err;
}

/* The filters of the parts of one grouped count: the plan's binds point
 * into them, so they outlive it. */
#define MAX_PARTS 8
struct parts {
  query_filter f[MAX_PARTS];
  int n;
};

/* Adds to whole the parts that count f's range grouped by g: its whole
 * units of the first of the n tiers from that rollup, the rest at either
 * end from the next tiers, and what no tier covers from the events.
 * Returns 0 or an sl_err. */
static int add_range(struct parts *ps, query_plan *whole, const query_filter *f,
                     const query_grouping *g, const struct tier *t, int n) {
  if (ps->n == MAX_PARTS) return SL_ENOMEM;
  int64_t s = 0, u = 0;
  int has_s = f->since[0] && !util_parse_iso8601(f->since, &s);
  int has_u = f->until[0] && !util_parse_iso8601(f->until, &u);
  int64_t lo = n && has_s ? floor_div(s + t->unit_ms - 1, t->unit_ms) * t->unit_ms : 0;
  int64_t hi = n && has_u ? floor_div(u, t->unit_ms) * t->unit_ms : 0;
  if (n && has_s && has_u && hi <= lo) /* not one whole unit */
    return add_range(ps, whole, f, g, t + 1, n - 1);
  query_filter *part = &ps->f[ps->n++];
  *part = *f;
  query_plan p;
  if (!n) {
    int rc = events_sql(part, g, &p);
    return rc ? rc : add_part(whole, &p, g);
  }
  if (has_s) util_format_iso8601(lo, part->since);
  if (has_u) util_format_iso8601(hi, part->until);
  int rc = rollup_sql(part, g, t->table, &p);
  if (!rc) rc = add_part(whole, &p, g);
  if (!rc && has_s && lo != s) {
    query_filter head = *f;
    memcpy(head.until, part->since, sizeof head.until);
    rc = add_range(ps, whole, &head, g, t + 1, n - 1);
  }
  if (!rc && has_u && hi != u) {
    query_filter tail = *f;
    memcpy(tail.since, part->until, sizeof tail.since);
    rc = add_range(ps, whole, &tail, g, t + 1, n - 1);
  }
  return rc;
}

int query_group_counts(sqlite3 *db, const query_filter *f, const query_grouping *g, long max_groups,
                       query_group_fn fn, void *ud, int *more) {
  /* The rollups answer the whole hours (days) of the range, the events
   * its ends: [since, first boundary) and [last boundary, until). */
  struct tier tiers[2];
  const char *src = query_group_source(f, g);
  int n_tiers = strcmp(src, "events") == 0 ? 0 : source_tiers(src, tiers);
  struct parts *ps = malloc(sizeof *ps);
  if (!ps) return SL_ENOMEM;
  ps->n = 0;
  query_plan whole;
  memset(&whole, 0, sizeof whole);
  buf_init(&whole.sql, 1 << 20);
  whole.cursor_bind = -1;
  int rc = add_range(ps, &whole, f, g, tiers, n_tiers);
  if (rc) {
    query_plan_free(&whole);
    free(ps);
    return rc == SL_ETOOBIG ? SL_ENOMEM : rc;
  }
  rc = run_groups(db, &whole, g, max_groups, fn, ud, more);
  free(ps);
  return rc;
}

/* ---- normalized diagnostics ------------------------------------------- */

/* 1 when the word w (n bytes) is an address, a number or an id: anything
 * with '@', a digit, or '=' / '<' / '>' in it, or a run of hex of 8 or
 * more. Those differ between alike bounces. */
static int noise_word(const char *w, size_t n) {
  size_t hexrun = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)w[i];
    if (c == '@' || c == '=' || c == '<' || c == '>' || isdigit(c)) return 1;
    hexrun = isxdigit(c) ? hexrun + 1 : 0;
    if (hexrun >= 8) return 1;
  }
  return 0;
}

/* Finds the SMTP reply code (3 digits, 2xx-5xx) and the enhanced status
 * code (N.N.N) in s. */
static void status_codes(const char *s, char reply[4], char enhanced[16]) {
  reply[0] = enhanced[0] = 0;
  for (const char *p = s; *p; p++) {
    if (p > s && (isalnum((unsigned char)p[-1]) || p[-1] == '.')) continue;
    if (!enhanced[0] && strchr("245", *p) && p[1] == '.' && isdigit((unsigned char)p[2])) {
      const char *q = p + 2;
      while (isdigit((unsigned char)*q) && q - p < 6) q++;
      if (*q == '.' && isdigit((unsigned char)q[1])) {
        const char *r = q + 1;
        while (isdigit((unsigned char)*r) && r - p < 12) r++;
        if (!isalnum((unsigned char)*r)) {
          snprintf(enhanced, 16, "%.*s", (int)(r - p), p);
          continue;
        }
      }
    }
    if (!reply[0] && strchr("245", *p) && isdigit((unsigned char)p[1]) &&
        isdigit((unsigned char)p[2]) && !isalnum((unsigned char)p[3]) && p[3] != '.')
      snprintf(reply, 4, "%.3s", p);
  }
}

void query_diagnostic_key(const char *diag, char *out, size_t outlen) {
  char reply[4], enhanced[16];
  size_t used = 0, cap = outlen < 121 ? outlen : 121;
  out[0] = 0;
  if (!diag || cap == 0) return;
  status_codes(diag, reply, enhanced);
  if (reply[0]) used += (size_t)snprintf(out + used, cap - used, "%s", reply);
  if (enhanced[0] && used < cap)
    used += (size_t)snprintf(out + used, cap - used, "%s%s", used ? " " : "", enhanced);
  if (used >= cap) used = cap - 1;
  /* The words: runs of letters and the few signs words carry. */
  const char *p = diag;
  /* "smtp;" and the like name the diagnostic's type, not the cause. */
  if (strncasecmp(p, "smtp;", 5) == 0) p += 5;
  while (*p && used + 1 < cap) {
    while (*p && isspace((unsigned char)*p)) p++;
    const char *w = p;
    while (*p && !isspace((unsigned char)*p)) p++;
    size_t n = (size_t)(p - w);
    if (!n || noise_word(w, n)) continue;
    /* Keep letters, '-', '\'' and '.' inside a word; drop the rest. */
    char word[64];
    size_t k = 0;
    for (size_t i = 0; i < n && k + 1 < sizeof word; i++) {
      unsigned char c = (unsigned char)w[i];
      if (isalpha(c) || c >= 0x80 || ((c == '-' || c == '\'' || c == '.') && k))
        word[k++] = (char)tolower(c);
    }
    while (k && (word[k - 1] == '.' || word[k - 1] == '-')) k--;
    if (!k) continue;
    if (used + 1 + k >= cap) break;
    if (used) out[used++] = ' ';
    memcpy(out + used, word, k);
    used += k;
    out[used] = 0;
  }
}

static void sql_diag(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  const char *d = (const char *)sqlite3_value_text(argv[0]);
  if (!d) {
    sqlite3_result_null(ctx);
    return;
  }
  char key[128];
  query_diagnostic_key(d, key, sizeof key);
  /* nothing left to group by is no diagnostic, as in the rollup ('') */
  if (!key[0])
    sqlite3_result_null(ctx);
  else
    sqlite3_result_text(ctx, key, -1, SQLITE_TRANSIENT);
}

int query_register_functions(sqlite3 *db) {
  return sqlite3_create_function(db, "seslog_diag", 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL,
                                 sql_diag, NULL, NULL) == SQLITE_OK
             ? 0
             : SL_EDB;
}
