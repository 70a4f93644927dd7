/* query.h - finding stored events: filters, keyset cursors, the SQL they
 * become, rows as the API's JSON, and the rollup counters behind /api/stats
 * and /api/timeseries. Used by the API (on the libuv thread pool) and by
 * `seslog query` (on the main thread); nothing here touches libuv.
 *
 * Pages are ordered by (timeStamp, id): a cursor names the last event of a
 * page, and the next page starts strictly after it, so paging never skips
 * or repeats an event, also while new events arrive. */
#ifndef SESLOG_QUERY_H
#define SESLOG_QUERY_H

#include <stddef.h>
#include <stdint.h>

#include "event_fields.h"
#include "util.h"

#define QUERY_LIMIT_DEFAULT 50 /* events per page when limit is not given */
#define QUERY_LIMIT_MAX 1000   /* most events per API page */
#define QUERY_VALUE_MAX 512    /* longest filter value accepted */
#define QUERY_CURSOR_MAX 96    /* room for an encoded cursor, NUL included */

/* The filters of GET /api/events. Empty strings mean "any". */
typedef struct query_filter {
  char type[24];                     /* notificationType, canonical spelling */
  unsigned type_mask;                /* every type given (bit i: the i-th of
                                        query_type_name); several match any */
  char bounce_type[16];              /* Permanent, Transient or Undetermined */
  char feedback_type[64];            /* complaintFeedbackType, verbatim */
  char address[QUERY_VALUE_MAX];     /* a recipient, lower case */
  char domain[256];                  /* a recipient's domain, lower case */
  char source[QUERY_VALUE_MAX];      /* mail.source as given */
  char source_addr[QUERY_VALUE_MAX]; /* ... its address (the part in <> of
                                        "Name <addr>"), lower case: what is
                                        compared */
  char message_id[256];              /* mail.messageId, verbatim */
  char since[25];                    /* ISO-8601 ms; timeStamp >= since; "" = open */
  char until[25];                    /* ISO-8601 ms; timeStamp < until; "" = open */
  /* Checked on the rows the driving index yields (never driving): */
  char bounce_sub_type[64];         /* bounceSubType, verbatim */
  char diagnostic[QUERY_VALUE_MAX]; /* in the diagnostic, any case (text
                                       or a status code like 5.1.1) */
  char configuration_set[256];      /* mail.tags "ses:configuration-set" */
  char tag[QUERY_VALUE_MAX];        /* NAME:VALUE, or NAME (has the tag) */
  char sender_domain[256];          /* the domain of mail.source's address */
  char tag_path[160];               /* tag: the JSON path of NAME in raw */
  char tag_value[QUERY_VALUE_MAX];  /* ... and VALUE; "" = any value */
  long limit;                       /* events per page, > 0 */
  int asc;                          /* 1: oldest first; 0: newest first */
  char cursor_ts[25];               /* the last event seen: timeStamp ... */
  int64_t cursor_id;                /* ... and SesEventMessages.id; 0 = no cursor */
  int before_v22;                   /* set by query_events: the database has no
                                       topicId (schema version 22): read
                                       topicArn and snsMessageId as stored */
} query_filter;

/* Empty filter: every event, newest first, QUERY_LIMIT_DEFAULT a page. */
void query_filter_init(query_filter *f);

/* Sets the parameter called name (the API's names: type, bounceType,
 * bounceSubType, feedbackType, address, domain, source, senderDomain,
 * messageId, diagnostic, configurationSet, tag, since, until, limit,
 * cursor, order) from text. source matches the sender's address, also in
 * the "Name <addr>" form. An empty value leaves the filter unchanged.
 * type may be set several times: an event of any of the types matches
 * (type then names the first). since and until take ISO-8601 times (a
 * bare date means its midnight UTC; a day the month does not have is
 * refused) or durations back from now_ms with a unit ("15m", "24h", "7d";
 * a bare number is refused: seconds or an epoch?). limit must lie in
 * 1..max_limit. Returns 0; SL_EINVAL with a sentence for a person in err
 * (it does not repeat the parameter's name); SL_EFIELD when name is not a
 * filter parameter (err untouched). */
int query_filter_set(query_filter *f, const char *name, const char *value, int64_t now_ms,
                     long max_limit, char *err, size_t errlen);

/* The sender's address in a mail.source ("Name <addr>" or addr), lower
 * case, as the source filter compares it. Writes into out (size outlen). */
void query_source_address(const char *source, char *out, size_t outlen);

/* The canonical name of the i-th notificationType (0 <= i < 10), or NULL. */
const char *query_type_name(int i);

/* Turns a time parameter (as for since/until) into ms since the epoch.
 * Returns 0 or SL_EINVAL with err set. */
int query_parse_time(const char *value, int64_t now_ms, int64_t *out_ms, char *err, size_t errlen);

/* The opaque cursor of an event: base64url of "timeStamp|id". Writes at
 * most outlen bytes (QUERY_CURSOR_MAX is enough). Returns 0 or SL_EINVAL. */
int query_cursor_encode(const char *ts, int64_t id, char *out, size_t outlen);
/* Reads a cursor back. Returns 0, or SL_EINVAL for anything that
 * query_cursor_encode could not have written. Outputs only on success. */
int query_cursor_decode(const char *cursor, char ts[25], int64_t *id);

/* Which index drives a query: the most selective filter given. */
enum query_driver {
  QD_TIME,     /* "timeStamp-Index" */
  QD_MESSAGE,  /* "messageId-timeStamp-Index" */
  QD_ADDRESS,  /* recipients' primary key (address, timeStamp, eventId) */
  QD_FEEDBACK, /* "complaintFeedbackType-timeStamp-Index" */
  QD_DOMAIN,   /* "recipients-domain" (domain, timeStamp, eventId,
                  notificationType; schema version 18) */
  QD_TYPE,     /* "notificationType-timeStamp-Index" */
  QD_SOURCE    /* "sourceAddress-timeStamp-Index" (schema version 11) */
};

/* One value bound to the SQL of a plan. */
struct query_bind {
  const char *text; /* bound as text when not NULL (points into the filter) */
  int64_t num;      /* else bound as an integer */
};

#define QUERY_MAX_BINDS 32

/* A page's SQL: the columns of enum query_col, in order, for one page of
 * f. The last bind is the LIMIT; the cursor binds are cursor_bind and the
 * two after it (timeStamp, timeStamp, id), or -1 without a cursor. */
typedef struct query_plan {
  enum query_driver driver;
  int dedupe; /* 1: the same event can come twice in a row (domain) */
  buf sql;    /* capped */
  struct query_bind binds[QUERY_MAX_BINDS];
  int n_binds;
  int cursor_bind; /* index in binds of the cursor's timeStamp, or -1 */
} query_plan;

/* Builds the plan of f (f must outlive it; binds point into f). with_raw
 * adds the raw column. Returns 0 or SL_ENOMEM; free with query_plan_free. */
int query_plan_build(const query_filter *f, int with_raw, query_plan *p);
void query_plan_free(query_plan *p);

/* The columns of a row, in the order of the SQL: the id, the fields of
 * the table (event_fields.h; QC_x is SF_x + 1), raw. */
#define QC_ENUM_(id, ...) QC_##id,
enum query_col { QC_ID, SES_EVENT_FIELDS(QC_ENUM_) QC_RAW, QC_N };

/* One stored event, as read. */
typedef struct query_row {
  int64_t id;            /* SesEventMessages.id */
  const char *col[QC_N]; /* text, NULL for SQL NULL (col[QC_ID] unused;
                            col[QC_RAW] NULL unless asked for); valid
                            only during the callback */
  size_t len[QC_N];      /* bytes of each text */
} query_row;

/* Called for each event of a page, in order; return nonzero to stop. */
typedef int (*query_row_fn)(void *ud, const query_row *row);

struct sqlite3;

/* Opens path read-only for a command-line tool (readpool_open_conn) and
 * checks that it is a seslog database. It never creates the file.
 * Returns 0, or SL_EDB with a sentence in err. */
int query_open(const char *path, struct sqlite3 **out, char *err, size_t errlen);

/* Runs one page of f on db (a read-only connection; the caller sets any
 * time limit with a progress handler, as readpool does): calls fn for
 * each of up to f->limit events; sets next_cursor to the cursor of the
 * page's last event when more follow, else to "". Returns 0; SL_EBUSY
 * when the statement was interrupted (time limit) or the database stayed
 * locked; SL_EDB when SQLite failed (sqlite3_errmsg says why); SL_ENOMEM.
 * *rows, when not NULL, gets the number of events given to fn. Every
 * statement is reset before returning: no read transaction stays open. */
int query_events(struct sqlite3 *db, const query_filter *f, int with_raw, query_row_fn fn, void *ud,
                 char next_cursor[QUERY_CURSOR_MAX], long *rows);

/* Appends the API JSON of row (CONTRACT section 5; "raw" as an object when
 * the row has it): the same text ses_event_to_json writes for the event,
 * compact and HTML-safe. Returns 0 or SL_ETOOBIG / SL_ENOMEM. */
int query_row_json(buf *b, const query_row *row);

/* Appends a double as JSON ("%.10g"; never nan or inf: those become 0). */
int query_json_double(buf *b, double v);

/* Recipient counts from rollup_minute. */
struct query_counts {
  int64_t events; /* events of any type (not recipients) */
  int64_t sends;  /* recipients of Send events */
  int64_t deliveries;
  int64_t bounces;           /* every bounced recipient */
  int64_t permanent_bounces; /* Permanent, not OnAccountSuppressionList */
  int64_t complaints;        /* not OnAccountSuppressionList */
};

/* The counters of the minutes [from_minute, to_minute] (minutes since the
 * epoch), summed. Returns 0, SL_EBUSY or SL_EDB. */
int query_rollup_sum(struct sqlite3 *db, int64_t from_minute, int64_t to_minute,
                     struct query_counts *out);

/* The minutes (since the epoch) of the oldest and newest rollup rows:
 * the range of the stored data. Returns 0 with *found 1 and both set, or
 * *found 0 on an empty database; SL_EBUSY or SL_EDB. */
int query_data_range(struct sqlite3 *db, int64_t *first_minute, int64_t *last_minute, int *found);

/* The rate definitions of CONTRACT section 5: the sends a rate divides by
 * (recipients of Send events, or when there are none, of Delivery and
 * Bounce events), bounceRate = permanent bounces / sends, complaintRate =
 * complaints / sends; 0 without sends. */
int64_t query_sends(const struct query_counts *k);
double query_bounce_rate(const struct query_counts *k);
double query_complaint_rate(const struct query_counts *k);

#define QUERY_MAX_POINTS 10000 /* points of one timeseries at most */

/* Counters per bucket: the buckets of bucket_ms (a whole number of
 * minutes) aligned to the epoch, from the one holding since_ms up to the
 * one holding until_ms - 1. points[i] is bucket start_ms + i * bucket_ms,
 * zero when no event fell in it. Returns 0 and a malloc'ed *points of
 * *n entries (caller frees); SL_EINVAL when there would be more than
 * QUERY_MAX_POINTS; SL_EBUSY, SL_EDB, SL_ENOMEM. */
int query_timeseries(struct sqlite3 *db, int64_t since_ms, int64_t until_ms, int64_t bucket_ms,
                     int64_t *start_ms, struct query_counts **points, size_t *n);

/* ---- counts grouped by fields ---------------------------------------- */

#define QUERY_GROUP_MAX 3      /* fields of one grouping at most */
#define QUERY_GROUPS_MAX 10000 /* groups of one answer at most */

enum query_group_field {
  QG_DAY,         /* "day": YYYY-MM-DD of timeStamp */
  QG_HOUR,        /* "hour": YYYY-MM-DDTHH:00 */
  QG_TYPE,        /* "type": notificationType */
  QG_DOMAIN,      /* "domain": an affected recipient's domain (counts
                     recipients, not events) */
  QG_BOUNCE_TYPE, /* "bounceType" */
  QG_BOUNCE_SUB,  /* "bounceSubType" */
  QG_DIAGNOSTIC,  /* "diagnostic": query_diagnostic_key of it */
  QG_SOURCE,      /* "source": mail.source */
  QG_CONFIG_SET,  /* "configurationSet": mail.tags ses:configuration-set */
  QG_TAG          /* "tag:NAME": the first value of mail.tags NAME */
};

typedef struct query_grouping {
  int n; /* fields, 1..QUERY_GROUP_MAX */
  enum query_group_field field[QUERY_GROUP_MAX];
  char name[QUERY_GROUP_MAX][140]; /* each field as asked ("tag:x") */
  char path[QUERY_GROUP_MAX][160]; /* tags: the JSON path in raw */
} query_grouping;

/* Reads "FIELD[,FIELD]" (day, hour, type, domain, bounceType,
 * bounceSubType, diagnostic, source, configurationSet, tag:NAME).
 * Returns 0, or SL_EINVAL with a sentence in err. */
int query_grouping_parse(const char *spec, query_grouping *g, char *err, size_t errlen);

/* Called for each group, in order: keys[i] is the value of field i (NULL
 * when the events have none), count the events (recipients when grouped
 * by domain). Return nonzero to stop. */
typedef int (*query_group_fn)(void *ud, const char *const *keys, int64_t count);

/* Counts the events matching f (its limit, cursor and order ignored) in
 * the groups of g, from the rollups where they can (query_group_source): ordered by the keys when
 * the first field is day or hour, else by count, largest first. At most max_groups groups (and
 * *more set to 1 when there were more). Returns 0, SL_EBUSY, SL_EDB or
 * SL_ENOMEM, as query_events. */
int query_group_counts(struct sqlite3 *db, const query_filter *f, const query_grouping *g,
                       long max_groups, query_group_fn fn, void *ud, int *more);

/* What answers f grouped by g: "rollup_type_hour" (fields among day,
 * hour, type, bounceType, bounceSubType, source; filters among type,
 * bounceType, bounceSubType, since, until), "rollup_domain_day" (grouped
 * by domain, with day, type, bounceType; filters among type, bounceType,
 * since, until) or "events" (the indexes of the events, as a page is
 * found). From a rollup, the whole UTC hours (days) of the range are read
 * there and its ends, if any, from the events. Schema version 11. */
const char *query_group_source(const query_filter *f, const query_grouping *g);

/* The normalized diagnostic that groups alike bounces: the SMTP reply code
 * and enhanced status code it holds, then its words without addresses,
 * numbers, ids and punctuation runs, lower case, at most 120 bytes
 * ("550 5.1.1 user unknown"). Writes into out (size outlen). */
void query_diagnostic_key(const char *diag, char *out, size_t outlen);

/* The time of a recipients row (schema version 23): the event's
 * timeStamp text ts as ms since the epoch when ts is in the form seslog
 * writes ('YYYY-MM-DDTHH:MM:SS.mmmZ', a day the calendar has), else ts
 * itself. QUERY_RCPT_TIME_SQL is the same in SQL (built-in functions only)
 * of a column or bind ts; query_rcpt_time gives 0 and *ms for the first
 * case, SL_EINVAL (the row holds the text) for the second. The SQL holds
 * '%': append it, never use it as a format. */
#define QUERY_RCPT_TIME_SQL(ts)                                           \
  "(CASE WHEN strftime('%Y-%m-%dT%H:%M:%fZ', " ts ", '+0 seconds') = " ts \
  " THEN unixepoch(substr(" ts ", 1, 19)) * 1000 + CAST(substr(" ts       \
  ", 21, 3) AS INTEGER) ELSE " ts " END)"
int query_rcpt_time(const char *ts, int64_t *ms);

/* The code of a recipients row's notificationType (schema version 23):
 * the type's position, from 0, in CONTRACT section 4's list (the order of
 * query_type_name); -1 for a name not in it (the row holds the text). */
int query_type_code(const char *name);

/* Registers seslog_diag(text) (query_diagnostic_key) on db, for grouping
 * (query_group_counts does it itself). Returns 0 or SL_EDB. */
int query_register_functions(struct sqlite3 *db);

#endif
