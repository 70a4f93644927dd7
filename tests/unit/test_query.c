/* test_query.c - query: cursors, parameters, the SQL of each filter and
 * the indexes it uses, paging without skips or repeats, rows as JSON, the
 * rollup sums and series, the time limit; and the API's loopback rule. */
#include <cjson/cJSON.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "address.h"
#include "api.h"
#include "error.h"
#include "query.h"
#include "rollup.h"
#include "ses.h"
#include "store.h"
#include "unit.h"

#define NOW 1772827226893LL /* 2026-03-06T20:00:26.893Z */

/* ---- a temporary database ---------------------------------------------- */

struct tdb {
  char dir[64];
  char path[128];
  store *st;
  sqlite3 *db; /* read-only */
};

static int tdb_open(struct tdb *t) {
  snprintf(t->dir, sizeof t->dir, "/tmp/seslog-unit-XXXXXX");
  if (!mkdtemp(t->dir)) return -1;
  snprintf(t->path, sizeof t->path, "%s/q.db", t->dir);
  char err[256];
  struct store_opts so = {.busy_timeout_ms = 1000};
  if (store_open(t->path, &so, &t->st, err, sizeof err)) {
    fprintf(stderr, "    store_open: %s\n", err);
    return -1;
  }
  if (query_open(t->path, &t->db, err, sizeof err)) {
    fprintf(stderr, "    query_open: %s\n", err);
    return -1;
  }
  return 0;
}

static void tdb_close(struct tdb *t) {
  sqlite3_close(t->db);
  store_close(t->st);
  char p[160];
  snprintf(p, sizeof p, "%s-wal", t->path);
  unlink(p);
  snprintf(p, sizeof p, "%s-shm", t->path);
  unlink(p);
  unlink(t->path);
  rmdir(t->dir);
}

/* Stores one SES JSON document; returns 0 on STORE_STORED. */
static int put_json(struct tdb *t, const char *json) {
  ses_event *ev;
  const char *why = NULL;
  if (ses_parse(json, strlen(json), NULL, &ev, &why)) {
    fprintf(stderr, "    ses_parse: %s\n%s\n", why ? why : "?", json);
    return -1;
  }
  store_req *r = calloc(1, sizeof *r);
  r->ev = ev;
  int rc = store_write(t->st, &r, 1);
  int ok = !rc && r->result == STORE_STORED;
  store_req_free(r);
  return ok ? 0 : -1;
}

/* A Send (or Bounce) of mail mid at ts to the given recipients. */
static int put_event(struct tdb *t, const char *type, const char *mid, const char *ts,
                     const char *source, const char *rcpts_json) {
  char json[2048];
  if (strcmp(type, "Bounce") == 0) {
    /* bouncedRecipients from the recipients: ["a","b"] -> [{"emailAddress":"a"},...] */
    char br[1024] = "";
    cJSON *a = cJSON_Parse(rcpts_json);
    const cJSON *e;
    size_t n = 0;
    n += (size_t)snprintf(br + n, sizeof br - n, "[");
    int first = 1;
    cJSON_ArrayForEach(e, a) {
      n += (size_t)snprintf(br + n, sizeof br - n, "%s{\"emailAddress\":\"%s\"}", first ? "" : ",",
                            e->valuestring);
      first = 0;
    }
    snprintf(br + n, sizeof br - n, "]");
    cJSON_Delete(a);
    snprintf(json, sizeof json,
             "{\"eventType\":\"Bounce\",\"bounce\":{\"bounceType\":\"Permanent\",\"bounceSubType\":"
             "\"General\",\"bouncedRecipients\":%s,\"timestamp\":\"%s\",\"feedbackId\":\"fb-%s\"},"
             "\"mail\":{\"timestamp\":\"%s\",\"source\":\"%s\",\"messageId\":\"%s\","
             "\"destination\":%s}}",
             br, ts, mid, ts, source, mid, rcpts_json);
  } else {
    snprintf(json, sizeof json,
             "{\"eventType\":\"%s\",\"mail\":{\"timestamp\":\"%s\",\"source\":\"%s\","
             "\"messageId\":\"%s\",\"destination\":%s},\"%s\":{}}",
             type, ts, source, mid, rcpts_json, strcmp(type, "Send") == 0 ? "send" : "open");
  }
  return put_json(t, json);
}

/* ---- cursors ------------------------------------------------------------ */

static int t_cursor_roundtrip(void) {
  char c[QUERY_CURSOR_MAX], ts[25];
  int64_t id;
  ASSERT_INT_EQ(query_cursor_encode("2026-03-06T20:00:26.893Z", 12345, c, sizeof c), 0);
  ASSERT_TRUE(strspn(c, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") ==
              strlen(c));
  ASSERT_INT_EQ(query_cursor_decode(c, ts, &id), 0);
  ASSERT_STR_EQ(ts, "2026-03-06T20:00:26.893Z");
  ASSERT_INT_EQ(id, 12345);
  ASSERT_INT_EQ(query_cursor_encode("2026-03-06T20:00:26.893Z", INT64_MAX, c, sizeof c), 0);
  ASSERT_INT_EQ(query_cursor_decode(c, ts, &id), 0);
  ASSERT_INT_EQ(id, INT64_MAX);
  /* every length of id gives a decodable cursor (padding-free base64) */
  for (int64_t v = 1; v < 1000000000; v = v * 10 + 7) {
    ASSERT_INT_EQ(query_cursor_encode("1999-12-31T23:59:59.999Z", v, c, sizeof c), 0);
    ASSERT_INT_EQ(query_cursor_decode(c, ts, &id), 0);
    ASSERT_INT_EQ(id, v);
  }
  ASSERT_INT_EQ(query_cursor_encode("2026-03-06T20:00:26.893Z", 0, c, sizeof c), SL_EINVAL);
  ASSERT_INT_EQ(query_cursor_encode("2026-03-06T20:00:26.893Z", 5, c, 8), SL_EINVAL);
  return 0;
}

/* base64url of text, for building bad cursors. */
static void b64(const char *text, char *out) {
  static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  size_t n = strlen(text), j = 0;
  const unsigned char *p = (const unsigned char *)text;
  for (size_t i = 0; i < n; i += 3) {
    unsigned v = (unsigned)p[i] << 16 | (i + 1 < n ? (unsigned)p[i + 1] << 8 : 0) |
                 (i + 2 < n ? p[i + 2] : 0);
    out[j++] = a[v >> 18 & 63];
    out[j++] = a[v >> 12 & 63];
    if (i + 1 < n) out[j++] = a[v >> 6 & 63];
    if (i + 2 < n) out[j++] = a[v & 63];
  }
  out[j] = 0;
}

static int t_cursor_rejects(void) {
  char ts[25] = "unchanged", c[200];
  int64_t id = 77;
  const char *bad_plain[] = {
      "2026-03-06T20:00:26.893Z|0",
      "2026-03-06T20:00:26.893Z|-1",
      "2026-03-06T20:00:26.893Z|",
      "2026-03-06T20:00:26.893Z|12x",
      "2026-03-06T20:00:26.893Z|012",
      "2026-03-06T20:00:26Z|5",
      "2026-13-06T20:00:26.893Z|5",
      "2026-03-06T20:00:26.893Z|99999999999999999999",
      "x|1",
      "2026-03-06T20:00:26.893Z 5",
      "2026-03-06T20:00:26.893+00:00|5",
  };
  for (size_t i = 0; i < sizeof bad_plain / sizeof bad_plain[0]; i++) {
    b64(bad_plain[i], c);
    if (query_cursor_decode(c, ts, &id) != SL_EINVAL) UNIT_FAIL_("accepted %s", bad_plain[i]);
  }
  const char *bad[] = {"",
                       "abc",
                       "A",
                       "MjAy=",
                       "MjAyNi0wMy0wNlQyMDowMDoyNi44OTNafDE+",
                       "!!!!",
                       "MjAyNi0wMy0wNlQyMDowMDoyNi44OTNafDE2MzI3NDQ0NTU2NzU2NjU1NTU1NTU"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    if (query_cursor_decode(bad[i], ts, &id) != SL_EINVAL) UNIT_FAIL_("accepted \"%s\"", bad[i]);
  ASSERT_STR_EQ(ts, "unchanged"); /* outputs only on success */
  ASSERT_INT_EQ(id, 77);
  return 0;
}

/* ---- parameters --------------------------------------------------------- */

static int t_params(void) {
  query_filter f;
  char err[256];
  query_filter_init(&f);
  ASSERT_INT_EQ(f.limit, QUERY_LIMIT_DEFAULT);
  ASSERT_INT_EQ(f.asc, 0);
  ASSERT_INT_EQ(query_filter_set(&f, "type", "bounce", NOW, 1000, err, sizeof err), 0);
  ASSERT_STR_EQ(f.type, "Bounce");
  query_filter_init(&f);
  ASSERT_INT_EQ(query_filter_set(&f, "type", "rendering-failure", NOW, 1000, err, sizeof err), 0);
  ASSERT_STR_EQ(f.type, "Rendering Failure");
  query_filter_init(&f);
  ASSERT_INT_EQ(query_filter_set(&f, "type", "deliveryDelay", NOW, 1000, err, sizeof err), 0);
  ASSERT_STR_EQ(f.type, "DeliveryDelay");
  ASSERT_INT_EQ(query_filter_set(&f, "type", "Bouncy", NOW, 1000, err, sizeof err), SL_EINVAL);
  ASSERT_TRUE(strstr(err, "Complaint") != NULL);
  ASSERT_STR_EQ(f.type, "DeliveryDelay"); /* unchanged on error */
  ASSERT_INT_EQ(f.type_mask, 1u << 8);
  /* A type given again adds to the set: any of them matches. */
  ASSERT_INT_EQ(query_filter_set(&f, "type", "Bounce", NOW, 1000, err, sizeof err), 0);
  ASSERT_INT_EQ(query_filter_set(&f, "type", "bounce", NOW, 1000, err, sizeof err), 0);
  ASSERT_STR_EQ(f.type, "DeliveryDelay");
  ASSERT_INT_EQ(f.type_mask, (1u << 8) | 1u);
  query_filter g;
  query_filter_init(&g);
  /* Days a month does not have, and bare numbers, are refused. */
  ASSERT_INT_EQ(query_filter_set(&g, "since", "2026-11-31", NOW, 1000, err, sizeof err), SL_EINVAL);
  ASSERT_TRUE(strstr(err, "calendar") != NULL);
  ASSERT_INT_EQ(query_filter_set(&g, "until", "2026-02-29T10:00:00Z", NOW, 1000, err, sizeof err),
                SL_EINVAL);
  ASSERT_INT_EQ(query_filter_set(&g, "since", "2024-02-29", NOW, 1000, err, sizeof err), 0);
  ASSERT_INT_EQ(query_filter_set(&g, "since", "1764547200", NOW, 1000, err, sizeof err), SL_EINVAL);
  ASSERT_TRUE(strstr(err, "bare number") != NULL);
  ASSERT_INT_EQ(query_filter_set(&g, "since", "0", NOW, 1000, err, sizeof err), SL_EINVAL);
  ASSERT_INT_EQ(query_filter_set(&g, "since", "90s", NOW, 1000, err, sizeof err), 0);
  ASSERT_INT_EQ(query_filter_set(&f, "bounceType", "PERMANENT", NOW, 1000, err, sizeof err), 0);
  ASSERT_STR_EQ(f.bounce_type, "Permanent");
  ASSERT_INT_EQ(query_filter_set(&f, "bounceType", "Hard", NOW, 1000, err, sizeof err), SL_EINVAL);
  ASSERT_INT_EQ(query_filter_set(&f, "feedbackType", "abuse", NOW, 1000, err, sizeof err), 0);
  ASSERT_STR_EQ(f.feedback_type, "abuse");
  ASSERT_INT_EQ(
      query_filter_set(&f, "address", " Jane.Doe+x@Example.COM ", NOW, 1000, err, sizeof err), 0);
  ASSERT_STR_EQ(f.address, "jane.doe+x@example.com");
  ASSERT_INT_EQ(query_filter_set(&f, "domain", "@Gmail.com", NOW, 1000, err, sizeof err), 0);
  ASSERT_STR_EQ(f.domain, "gmail.com");
  ASSERT_INT_EQ(
      query_filter_set(&f, "source", "News <news@example.com>", NOW, 1000, err, sizeof err), 0);
  ASSERT_STR_EQ(f.source, "News <news@example.com>");
  ASSERT_INT_EQ(query_filter_set(&f, "messageId", "0100abc", NOW, 1000, err, sizeof err), 0);
  ASSERT_STR_EQ(f.message_id, "0100abc");
  char longv[600];
  memset(longv, 'a', sizeof longv - 1);
  longv[sizeof longv - 1] = 0;
  ASSERT_INT_EQ(query_filter_set(&f, "messageId", longv, NOW, 1000, err, sizeof err), SL_EINVAL);
  ASSERT_TRUE(strstr(err, "too long") != NULL);

  /* times: relative, absolute, a bare date, the empty range */
  ASSERT_INT_EQ(query_filter_set(&f, "since", "15m", NOW, 1000, err, sizeof err), 0);
  ASSERT_STR_EQ(f.since, "2026-03-06T19:45:26.893Z");
  ASSERT_INT_EQ(query_filter_set(&f, "since", "7d", NOW, 1000, err, sizeof err), 0);
  ASSERT_STR_EQ(f.since, "2026-02-27T20:00:26.893Z");
  ASSERT_INT_EQ(
      query_filter_set(&f, "until", "2026-03-06T21:00:00+01:00", NOW, 1000, err, sizeof err), 0);
  ASSERT_STR_EQ(f.until, "2026-03-06T20:00:00.000Z");
  ASSERT_INT_EQ(query_filter_set(&f, "since", "2026-03-01", NOW, 1000, err, sizeof err), 0);
  ASSERT_STR_EQ(f.since, "2026-03-01T00:00:00.000Z");
  ASSERT_INT_EQ(query_filter_set(&f, "since", "2026-03-07", NOW, 1000, err, sizeof err), SL_EINVAL);
  ASSERT_TRUE(strstr(err, "empty") != NULL);
  ASSERT_INT_EQ(query_filter_set(&f, "since", "yesterday", NOW, 1000, err, sizeof err), SL_EINVAL);
  ASSERT_INT_EQ(query_filter_set(&f, "since", "2026-03-06T25:00:00Z", NOW, 1000, err, sizeof err),
                SL_EINVAL);
  ASSERT_INT_EQ(query_filter_set(&f, "until", "-5m", NOW, 1000, err, sizeof err), SL_EINVAL);
  ASSERT_INT_EQ(query_filter_set(&f, "since", "999999999d", NOW, 1000, err, sizeof err), 0);
  ASSERT_STR_EQ(f.since, "0000-01-01T00:00:00.000Z"); /* clamped, still ISO */

  /* limit, order, cursor */
  ASSERT_INT_EQ(query_filter_set(&f, "limit", "1000", NOW, 1000, err, sizeof err), 0);
  ASSERT_INT_EQ(f.limit, 1000);
  const char *bad_limits[] = {"0", "1001", "-1", "ten", "5x", "99999999999999999999"};
  for (size_t i = 0; i < sizeof bad_limits / sizeof bad_limits[0]; i++)
    if (query_filter_set(&f, "limit", bad_limits[i], NOW, 1000, err, sizeof err) != SL_EINVAL)
      UNIT_FAIL_("limit %s accepted", bad_limits[i]);
  ASSERT_INT_EQ(f.limit, 1000);
  ASSERT_INT_EQ(query_filter_set(&f, "order", "asc", NOW, 1000, err, sizeof err), 0);
  ASSERT_INT_EQ(f.asc, 1);
  ASSERT_INT_EQ(query_filter_set(&f, "order", "DESC", NOW, 1000, err, sizeof err), 0);
  ASSERT_INT_EQ(f.asc, 0);
  ASSERT_INT_EQ(query_filter_set(&f, "order", "up", NOW, 1000, err, sizeof err), SL_EINVAL);
  char c[QUERY_CURSOR_MAX];
  query_cursor_encode("2026-03-06T20:00:26.893Z", 9, c, sizeof c);
  ASSERT_INT_EQ(query_filter_set(&f, "cursor", c, NOW, 1000, err, sizeof err), 0);
  ASSERT_STR_EQ(f.cursor_ts, "2026-03-06T20:00:26.893Z");
  ASSERT_INT_EQ(f.cursor_id, 9);
  ASSERT_INT_EQ(query_filter_set(&f, "cursor", "nonsense", NOW, 1000, err, sizeof err), SL_EINVAL);

  /* an empty value changes nothing; an unknown name is not ours */
  ASSERT_INT_EQ(query_filter_set(&f, "type", "", NOW, 1000, err, sizeof err), 0);
  ASSERT_STR_EQ(f.type, "DeliveryDelay");
  ASSERT_INT_EQ(query_filter_set(&f, "window", "10m", NOW, 1000, err, sizeof err), SL_EFIELD);
  return 0;
}

/* ---- SQL ---------------------------------------------------------------- */

static int t_plan_drivers(void) {
  struct {
    const char *params[6][2];
    enum query_driver driver;
    const char *fragment; /* in the SQL */
  } cases[] = {
      /* "timeStamp-Index" keys the integer time (schema version 25) */
      {{{NULL}},
       QD_TIME,
       "WHERE 1 ORDER BY " QUERY_RCPT_TIME_SQL("e.timeStamp") " DESC, e.id DESC"},
      {{{"type", "Delivery"}}, QD_TYPE, " AND e.notificationType = ?"},
      {{{"type", "Complaint"}, {"domain", "x.com"}}, QD_DOMAIN, "AND r.notificationType = ?"},
      {{{"type", "Complaint"}, {"source", "a@b.c"}}, QD_TYPE, "+(lower(CASE WHEN instr(source"},
      {{{"bounceType", "Permanent"}}, QD_TYPE, " AND e.notificationType = ?"},
      {{{"feedbackType", "abuse"}, {"type", "Complaint"}},
       QD_FEEDBACK,
       " AND e.complaintFeedbackType = ? AND +e.notificationType = ?"},
      {{{"source", "a@b.c"}}, QD_SOURCE, " AND lower(CASE WHEN instr(source, '<') > 0"},
      {{{"source", "Ann <A@b.c>"}}, QD_SOURCE, "ELSE trim(source) END) = ?"},
      {{{"source", "a@b.c"}, {"type", "Send"}}, QD_TYPE, "+(lower(CASE WHEN instr(source"},
      {{{"bounceSubType", "General"}, {"diagnostic", "5.1.1"}},
       QD_TIME,
       " AND e.bounceSubType = ? AND instr(lower(coalesce(e.diagnostic, "},
      {{{"configurationSet", "cs"}, {"tag", "campaign:x"}, {"senderDomain", "b.c"}},
       QD_TIME,
       "json_extract(seslog_raw(e.raw, e.messageId, e.destinationAddress, e.bouncedRecipients, "
       "e.feedbackId, e.reportingMTA), '$.mail.tags.\"ses:configuration-set\"[0]') = ?"},
      {{{"messageId", "m1"}, {"address", "a@b.c"}},
       QD_MESSAGE,
       "EXISTS (SELECT 1 FROM recipients r WHERE r.address = ?"},
      {{{"address", "a@b.c"}, {"type", "Bounce"}},
       QD_ADDRESS,
       "WHERE r.address = ? AND r.notificationType = ?"},
      {{{"domain", "b.c"}, {"type", "Bounce"}},
       QD_DOMAIN,
       "WHERE " ADDRESS_DOMAIN_SQL("r.") " = ? AND r.notificationType = ?"},
      {{{"domain", "b.c"}, {"source", "s@b.c"}, {"type", "Send"}},
       QD_DOMAIN,
       "AND +(lower(CASE WHEN instr(source, '<') > 0"},
  };
  char err[256];
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    query_filter f;
    query_filter_init(&f);
    for (int k = 0; k < 6 && cases[i].params[k][0]; k++)
      ASSERT_INT_EQ(query_filter_set(&f, cases[i].params[k][0], cases[i].params[k][1], NOW, 1000,
                                     err, sizeof err),
                    0);
    query_plan p;
    ASSERT_INT_EQ(query_plan_build(&f, 0, &p), 0);
    if (p.driver != cases[i].driver || !strstr(p.sql.data, cases[i].fragment)) {
      fprintf(stderr, "    case %zu: driver %d (want %d)\n    %s\n", i, p.driver, cases[i].driver,
              p.sql.data);
      query_plan_free(&p);
      return 1;
    }
    /* every ? has a bind; the last is limit + 1 */
    int marks = 0;
    for (const char *s = p.sql.data; *s; s++) marks += *s == '?';
    ASSERT_INT_EQ(marks, p.n_binds);
    ASSERT_TRUE(p.binds[p.n_binds - 1].text == NULL);
    ASSERT_INT_EQ(p.binds[p.n_binds - 1].num, f.limit + 1);
    ASSERT_INT_EQ(p.cursor_bind, -1);
    ASSERT_INT_EQ(p.dedupe, cases[i].driver == QD_DOMAIN);
    query_plan_free(&p);
  }
  /* a cursor adds its range, in the page's direction */
  query_filter f;
  query_filter_init(&f);
  query_filter_set(&f, "address", "a@b.c", NOW, 1000, err, sizeof err);
  query_filter_set(&f, "order", "asc", NOW, 1000, err, sizeof err);
  char c[QUERY_CURSOR_MAX];
  query_cursor_encode("2026-03-06T20:00:26.893Z", 42, c, sizeof c);
  query_filter_set(&f, "cursor", c, NOW, 1000, err, sizeof err);
  query_plan p;
  ASSERT_INT_EQ(query_plan_build(&f, 1, &p), 0);
  ASSERT_TRUE(strstr(p.sql.data,
                     "AND r.timeStamp >= ? AND (r.timeStamp > ? OR r.eventId > ?) ORDER BY "
                     "r.timeStamp ASC, r.eventId ASC LIMIT ?") != NULL);
  ASSERT_TRUE(strstr(p.sql.data,
                     ", seslog_raw(e.raw, e.messageId, e.destinationAddress, e.bouncedRecipients, "
                     "e.feedbackId, e.reportingMTA) FROM") != NULL);
  ASSERT_INT_EQ(p.cursor_bind, p.n_binds - 4);
  /* the recipients table holds the time as ms (schema version 23) */
  ASSERT_TRUE(p.binds[p.cursor_bind].text == NULL);
  ASSERT_INT_EQ(p.binds[p.cursor_bind].num, 1772827226893);
  ASSERT_TRUE(p.binds[p.cursor_bind + 1].text == NULL);
  ASSERT_INT_EQ(p.binds[p.cursor_bind + 1].num, 1772827226893);
  ASSERT_INT_EQ(p.binds[p.cursor_bind + 2].num, 42);
  query_plan_free(&p);
  /* a domain's types: their codes in the recipients table, their names
   * in the events' */
  query_filter_init(&f);
  query_filter_set(&f, "domain", "b.c", NOW, 1000, err, sizeof err);
  query_filter_set(&f, "type", "Complaint", NOW, 1000, err, sizeof err);
  ASSERT_INT_EQ(query_plan_build(&f, 0, &p), 0);
  ASSERT_TRUE(strstr(p.sql.data, "r.notificationType = ?") != NULL);
  ASSERT_TRUE(p.binds[1].text == NULL);
  ASSERT_INT_EQ(p.binds[1].num, 1);
  query_plan_free(&p);
  query_filter_set(&f, "type", "Delivery", NOW, 1000, err, sizeof err);
  ASSERT_INT_EQ(query_plan_build(&f, 0, &p), 0);
  ASSERT_TRUE(strstr(p.sql.data, "+r.notificationType IN (?,?)") != NULL);
  ASSERT_INT_EQ(p.binds[1].num, 1);
  ASSERT_INT_EQ(p.binds[2].num, 2);
  query_plan_free(&p);
  query_filter_init(&f);
  query_filter_set(&f, "type", "Complaint", NOW, 1000, err, sizeof err);
  ASSERT_INT_EQ(query_plan_build(&f, 0, &p), 0);
  ASSERT_STR_EQ(p.binds[0].text, "Complaint");
  query_plan_free(&p);
  return 0;
}

/* EXPLAIN QUERY PLAN of each filter kind on the real schema: every loop is
 * a SEARCH of the expected index, never a SCAN, never a sort: the page
 * order (timeStamp, id) is the index's own, so LIMIT stops the read. */
static int t_plan_indexes(void) {
  struct tdb t;
  if (tdb_open(&t)) return 1;
  struct {
    const char *params[4][2];
    const char *index;
  } cases[] = {
      {{{NULL}}, "timeStamp-Index"},
      {{{"since", "24h"}, {"until", "1h"}}, "timeStamp-Index"},
      {{{"type", "Bounce"}}, "notificationType-timeStamp-Index"},
      {{{"bounceType", "Transient"}, {"since", "7d"}}, "notificationType-timeStamp-Index"},
      {{{"feedbackType", "abuse"}}, "complaintFeedbackType-timeStamp-Index"},
      {{{"source", "a@b.c"}}, "sourceAddress-timeStamp-Index"},
      {{{"source", "News <News@b.c>"}, {"since", "30d"}}, "sourceAddress-timeStamp-Index"},
      {{{"messageId", "m"}}, "messageId-timeStamp-Index"},
      {{{"address", "a@b.c"}}, "PRIMARY KEY"},
      {{{"address", "a@b.c"}, {"type", "Bounce"}, {"since", "1d"}}, "PRIMARY KEY"},
      {{{"domain", "b.c"}}, "recipients-domain"},
      {{{"domain", "b.c"}, {"type", "Bounce"}, {"since", "1d"}}, "recipients-domain"},
      {{{"type", "Complaint"}, {"domain", "b.c"}}, "recipients-domain"},
      {{{"type", "Complaint"}, {"source", "b.c"}}, "notificationType-timeStamp-Index"},
      {{{"source", "a@b.c"}, {"type", "Send"}, {"since", "1d"}},
       "notificationType-timeStamp-Index"},
      {{{"source", "a@b.c"}, {"since", "1d"}}, "sourceAddress-timeStamp-Index"},
      /* several types: any of them, checked on the rows of another index */
      {{{"type", "Bounce"}, {"type", "Complaint"}}, "timeStamp-Index"},
      {{{"type", "Bounce"}, {"type", "Complaint"}, {"domain", "b.c"}}, "recipients-domain"},
      {{{"type", "Bounce"}, {"type", "Complaint"}, {"address", "a@b.c"}}, "PRIMARY KEY"},
      {{{"type", "Bounce"}, {"type", "Send"}, {"source", "a@b.c"}},
       "sourceAddress-timeStamp-Index"},
      /* the checks never drive */
      {{{"diagnostic", "5.1.1"}, {"bounceSubType", "General"}}, "timeStamp-Index"},
      {{{"type", "Bounce"}, {"configurationSet", "cs"}, {"tag", "a:b"}},
       "notificationType-timeStamp-Index"},
      {{{"senderDomain", "b.c"}, {"domain", "x.y"}}, "recipients-domain"},
      /* a recipient filter that does not drive probes at the event's own
       * time, the integer of its text (schema version 23) */
      {{{"messageId", "m"}, {"address", "a@b.c"}},
       "PRIMARY KEY (address=? AND timeStamp=? AND eventId=?)"},
      {{{"messageId", "m"}, {"domain", "b.c"}},
       "recipients-domain (<expr>=? AND timeStamp=? AND eventId=?)"},
  };
  char err[256];
  for (int asc = 0; asc < 2; asc++)
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
      query_filter f;
      query_filter_init(&f);
      for (int k = 0; k < 4 && cases[i].params[k][0]; k++)
        query_filter_set(&f, cases[i].params[k][0], cases[i].params[k][1], NOW, 1000, err,
                         sizeof err);
      f.asc = asc;
      char c[QUERY_CURSOR_MAX];
      query_cursor_encode("2026-03-06T20:00:26.893Z", 42, c, sizeof c);
      query_filter_set(&f, "cursor", c, NOW, 1000, err, sizeof err);
      query_plan p;
      ASSERT_INT_EQ(query_plan_build(&f, 0, &p), 0);
      char sql[8300];
      snprintf(sql, sizeof sql, "EXPLAIN QUERY PLAN %s", p.sql.data);
      sqlite3_stmt *st;
      ASSERT_INT_EQ(sqlite3_prepare_v2(t.db, sql, -1, &st, NULL), SQLITE_OK);
      char plan[2048] = "";
      size_t used = 0;
      while (sqlite3_step(st) == SQLITE_ROW)
        used += (size_t)snprintf(plan + used, sizeof plan - used, "%s\n",
                                 (const char *)sqlite3_column_text(st, 3));
      sqlite3_finalize(st);
      int ok = strstr(plan, cases[i].index) != NULL && !strstr(plan, "SCAN ") &&
               !strstr(plan, "TEMP B-TREE");
      if (!ok) {
        fprintf(stderr, "    case %zu (%s) wants %s:\n%s    %s\n", i, asc ? "asc" : "desc",
                cases[i].index, plan, p.sql.data);
        query_plan_free(&p);
        tdb_close(&t);
        return 1;
      }
      query_plan_free(&p);
    }
  tdb_close(&t);
  return 0;
}

/* ---- paging ------------------------------------------------------------- */

struct collect {
  int64_t ids[1024];
  char ts[1024][25];
  int n;
};

static int collect_row(void *ud, const query_row *r) {
  struct collect *c = ud;
  if (c->n >= 1024) return 1;
  snprintf(c->ts[c->n], 25, "%s", r->col[QC_TIME_STAMP]);
  c->ids[c->n++] = r->id;
  return 0;
}

/* Pages through f with limit, appending to out; returns pages read or -1. */
static int page_all(sqlite3 *db, query_filter f, long limit, struct collect *out) {
  f.limit = limit;
  int pages = 0;
  for (;;) {
    char next[QUERY_CURSOR_MAX];
    long rows;
    if (query_events(db, &f, 0, collect_row, out, next, &rows)) return -1;
    pages++;
    if (rows > limit) return -1;
    if (!next[0]) return pages;
    if (rows != limit) return -1; /* a page before the last is full */
    if (query_cursor_decode(next, f.cursor_ts, &f.cursor_id)) return -1;
    if (pages > 2000) return -1;
  }
}

/* Each id once, in order (by timeStamp then id). */
static int check_order(const struct collect *c, int asc) {
  for (int i = 1; i < c->n; i++) {
    int cmp = strcmp(c->ts[i - 1], c->ts[i]);
    if (cmp == 0) cmp = c->ids[i - 1] < c->ids[i] ? -1 : c->ids[i - 1] > c->ids[i] ? 1 : 0;
    if (asc ? cmp >= 0 : cmp <= 0) {
      fprintf(stderr, "    out of order at %d: %s/%lld then %s/%lld\n", i, c->ts[i - 1],
              (long long)c->ids[i - 1], c->ts[i], (long long)c->ids[i]);
      return 1;
    }
  }
  return 0;
}

static int t_paging(void) {
  struct tdb t;
  if (tdb_open(&t)) return 1;
  /* 60 events over 12 distinct times (5 share each time), 2 recipients
   * each at the same domain, so domain pages see every event twice. */
  char mid[32], ts[32], rc[128];
  for (int i = 0; i < 60; i++) {
    snprintf(mid, sizeof mid, "m%03d", i);
    snprintf(ts, sizeof ts, "2026-03-06T10:%02d:00.000Z", (i * 7) % 12);
    snprintf(rc, sizeof rc, "[\"u%d@Dup.example\",\"v%d@dup.example\",\"w@other.example\"]", i % 4,
             i % 4);
    if (put_event(&t, i % 3 ? "Send" : "Bounce", mid, ts, i % 2 ? "a@s.example" : "b@s.example",
                  rc)) {
      tdb_close(&t);
      return 1;
    }
  }
  struct {
    const char *name, *value;
    int expect;
  } cases[] = {
      {NULL, NULL, 60},         {"domain", "dup.example", 60},     {"domain", "other.example", 60},
      {"type", "Bounce", 20},   {"address", "u1@dup.example", 15}, {"source", "A@S.example", 30},
      {"messageId", "m007", 1},
  };
  char err[256];
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    for (int asc = 0; asc < 2; asc++)
      for (long limit = 1; limit <= 61; limit += limit < 4 ? 1 : 19) {
        query_filter f;
        query_filter_init(&f);
        if (cases[i].name) query_filter_set(&f, cases[i].name, cases[i].value, NOW, 1000, err, 256);
        f.asc = asc;
        struct collect *c = calloc(1, sizeof *c);
        int pages = page_all(t.db, f, limit, c);
        int bad = pages < 0 || c->n != cases[i].expect || check_order(c, asc);
        if (bad)
          fprintf(stderr, "    %s=%s %s limit %ld: %d events in %d pages (want %d)\n",
                  cases[i].name ? cases[i].name : "-", cases[i].value ? cases[i].value : "-",
                  asc ? "asc" : "desc", limit, c->n, pages, cases[i].expect);
        free(c);
        if (bad) {
          tdb_close(&t);
          return 1;
        }
      }
  /* since (inclusive) and until (exclusive) */
  query_filter f;
  query_filter_init(&f);
  query_filter_set(&f, "since", "2026-03-06T10:03:00Z", NOW, 1000, err, sizeof err);
  query_filter_set(&f, "until", "2026-03-06T10:05:00Z", NOW, 1000, err, sizeof err);
  struct collect *c = calloc(1, sizeof *c);
  ASSERT_TRUE(page_all(t.db, f, 3, c) > 0);
  ASSERT_INT_EQ(c->n, 10);
  for (int i = 0; i < c->n; i++)
    ASSERT_TRUE(strcmp(c->ts[i], "2026-03-06T10:03:00.000Z") == 0 ||
                strcmp(c->ts[i], "2026-03-06T10:04:00.000Z") == 0);
  free(c);
  tdb_close(&t);
  return 0;
}

/* A statement interrupted by the time limit (readpool's progress handler)
 * is SL_EBUSY, and the connection works again afterwards. */
static int interrupt_now(void *ud) {
  return ud != NULL;
}

static int t_time_limit(void) {
  struct tdb t;
  if (tdb_open(&t)) return 1;
  char mid[32];
  for (int i = 0; i < 300; i++) {
    snprintf(mid, sizeof mid, "t%d", i);
    if (put_event(&t, "Send", mid, "2026-03-06T10:00:00.000Z", "s@x.example", "[\"a@x.example\"]"))
      return 1;
  }
  query_filter f;
  query_filter_init(&f);
  char err[256], next[QUERY_CURSOR_MAX];
  /* driven by the domain: 300 events read to find no such sender */
  query_filter_set(&f, "domain", "x.example", NOW, 1000, err, sizeof err);
  query_filter_set(&f, "source", "nobody@x.example", NOW, 1000, err, sizeof err);
  sqlite3_progress_handler(t.db, 10, interrupt_now, (void *)1);
  ASSERT_INT_EQ(query_events(t.db, &f, 0, NULL, NULL, next, NULL), SL_EBUSY);
  struct query_counts k;
  ASSERT_INT_EQ(query_rollup_sum(t.db, 0, INT64_MAX / 2, &k), SL_EBUSY);
  sqlite3_progress_handler(t.db, 0, NULL, NULL);
  long rows = -1;
  ASSERT_INT_EQ(query_events(t.db, &f, 0, NULL, NULL, next, &rows), 0);
  ASSERT_INT_EQ(rows, 0);
  ASSERT_STR_EQ(next, "");
  tdb_close(&t);
  return 0;
}

/* ---- JSON --------------------------------------------------------------- */

struct json_cmp {
  buf b;
};

static int json_row(void *ud, const query_row *r) {
  struct json_cmp *c = ud;
  buf_reset(&c->b);
  return query_row_json(&c->b, r);
}

/* The row JSON is byte for byte what ses_event_to_json writes, for every
 * documented SES example, with and without raw. */
static int t_row_json_matches_ses(void) {
  const char *files[] = {
      "ses/ses-event-bounce-awsdocs.json",
      "ses/ses-event-click-awsdocs.json",
      "ses/ses-event-complaint-awsdocs.json",
      "ses/ses-event-delivery-awsdocs.json",
      "ses/ses-event-deliverydelay-awsdocs.json",
      "ses/ses-event-open-awsdocs.json",
      "ses/ses-event-reject-awsdocs.json",
      "ses/ses-event-rendering-failure-awsdocs.json",
      "ses/ses-event-send-awsdocs.json",
      "ses/ses-event-subscription-awsdocs.json",
      "ses/ses-notification-bounce-no-dsn-multi-recipient-awsdocs.json",
      "ses/ses-notification-bounce-with-dsn-awsdocs.json",
      "ses/ses-notification-complaint-no-feedback-type-awsdocs.json",
      "ses/ses-notification-complaint-with-feedback-awsdocs.json",
      "ses/ses-notification-delivery-awsdocs.json",
  };
  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
    struct tdb t;
    if (tdb_open(&t)) return 1;
    size_t len;
    char *json = unit_read_fixture(files[i], &len);
    ses_event *ev;
    ASSERT_INT_EQ(ses_parse(json, len, "2026-03-06T20:00:26.893Z", &ev, NULL), 0);
    ev->sns_message_id = strdup("sns-<id>&");
    ev->topic_arn = strdup("arn:aws:sns:us-east-1:123456789012:t");
    store_req *r = calloc(1, sizeof *r);
    r->ev = ev;
    ASSERT_INT_EQ(store_write(t.st, &r, 1), 0);
    for (int raw = 0; raw < 2; raw++) {
      char *want = ses_event_to_json(ev, raw);
      struct json_cmp c;
      buf_init(&c.b, 1 << 20);
      query_filter f;
      query_filter_init(&f);
      char next[QUERY_CURSOR_MAX];
      long rows;
      ASSERT_INT_EQ(query_events(t.db, &f, raw, json_row, &c, next, &rows), 0);
      ASSERT_INT_EQ(rows, 1);
      if (strcmp(c.b.data, want) != 0) {
        fprintf(stderr, "    %s (raw %d):\n    got  %s\n    want %s\n", files[i], raw, c.b.data,
                want);
        return 1;
      }
      free(want);
      buf_free(&c.b);
    }
    store_req_free(r);
    free(json);
    tdb_close(&t);
  }
  return 0;
}

/* A row edited by hand into bad JSON still gives valid JSON. */
static int t_row_json_bad_stored_json(void) {
  struct tdb t;
  if (tdb_open(&t)) return 1;
  ASSERT_INT_EQ(
      put_event(&t, "Bounce", "m1", "2026-03-06T10:00:00.000Z", "s@x.example", "[\"a@x.example\"]"),
      0);
  sqlite3 *w;
  ASSERT_INT_EQ(sqlite3_open(t.path, &w), SQLITE_OK);
  ASSERT_INT_EQ(sqlite3_exec(w,
                             "UPDATE SesEventMessages SET bouncedRecipients = '[{\"a\":', "
                             "recipients = 'nope', raw = '{\"x\":1}}', source = '<b>\"&\"\n'",
                             NULL, NULL, NULL),
                SQLITE_OK);
  sqlite3_close(w);
  struct json_cmp c;
  buf_init(&c.b, 1 << 20);
  query_filter f;
  query_filter_init(&f);
  char next[QUERY_CURSOR_MAX];
  ASSERT_INT_EQ(query_events(t.db, &f, 1, json_row, &c, next, NULL), 0);
  cJSON *o = cJSON_Parse(c.b.data);
  ASSERT_TRUE(o != NULL);
  ASSERT_STR_EQ(cJSON_GetObjectItem(o, "bouncedRecipients")->valuestring, "[{\"a\":");
  ASSERT_TRUE(cJSON_IsArray(cJSON_GetObjectItem(o, "recipients")));
  ASSERT_STR_EQ(cJSON_GetObjectItem(o, "raw")->valuestring, "{\"x\":1}}");
  ASSERT_STR_EQ(cJSON_GetObjectItem(o, "source")->valuestring, "<b>\"&\"\n");
  ASSERT_TRUE(strchr(c.b.data, '<') == NULL && strchr(c.b.data, '&') == NULL);
  cJSON_Delete(o);
  buf_free(&c.b);
  tdb_close(&t);
  return 0;
}

static int t_json_numbers(void) {
  buf b;
  buf_init(&b, 256);
  query_json_double(&b, 0.025);
  buf_appends(&b, " ");
  query_json_double(&b, 1.0 / 3);
  buf_appends(&b, " ");
  query_json_double(&b, 0);
  buf_appends(&b, " ");
  query_json_double(&b, 0.0 / 0.0);
  ASSERT_STR_EQ(b.data, "0.025 0.3333333333 0 0");
  buf_free(&b);
  return 0;
}

/* ---- rollups -------------------------------------------------------------- */

static int t_rollups(void) {
  struct tdb t;
  if (tdb_open(&t)) return 1;
  /* minute 10:00: a Send to 3 and a bounce of 1; 10:01: nothing;
   * 10:02: deliveries to 2 (no Send); 11:30: a Send to 1 */
  ASSERT_INT_EQ(put_event(&t, "Send", "a", "2026-03-06T10:00:10.000Z", "s@x",
                          "[\"a@x.example\",\"b@x.example\",\"c@x.example\"]"),
                0);
  ASSERT_INT_EQ(
      put_event(&t, "Bounce", "a", "2026-03-06T10:00:50.000Z", "s@x", "[\"a@x.example\"]"), 0);
  ASSERT_INT_EQ(put_json(&t,
                         "{\"eventType\":\"Delivery\",\"mail\":{\"timestamp\":\"2026-03-06T10:"
                         "02:00.000Z\",\"messageId\":\"d\",\"destination\":[\"b@x.example\","
                         "\"c@x.example\"]},\"delivery\":{\"timestamp\":\"2026-03-06T10:02:"
                         "00.000Z\",\"recipients\":[\"b@x.example\",\"c@x.example\"]}}"),
                0);
  ASSERT_INT_EQ(put_event(&t, "Send", "e", "2026-03-06T11:30:00.000Z", "s@x", "[\"d@x.example\"]"),
                0);
  int64_t m0;
  util_parse_iso8601("2026-03-06T10:00:00Z", &m0);
  m0 /= 60000;
  struct query_counts k;
  ASSERT_INT_EQ(query_rollup_sum(t.db, m0, m0, &k), 0);
  ASSERT_INT_EQ(k.sends, 3);
  ASSERT_INT_EQ(k.bounces, 1);
  ASSERT_INT_EQ(k.permanent_bounces, 1);
  ASSERT_INT_EQ(query_sends(&k), 3);
  ASSERT_TRUE(query_bounce_rate(&k) > 0.3333 && query_bounce_rate(&k) < 0.3334);
  ASSERT_INT_EQ(query_rollup_sum(t.db, m0 + 1, m0 + 2, &k), 0); /* no Send: deliveries count */
  ASSERT_INT_EQ(k.sends, 0);
  ASSERT_INT_EQ(k.deliveries, 2);
  ASSERT_INT_EQ(query_sends(&k), 2);
  ASSERT_TRUE(query_bounce_rate(&k) == 0);
  ASSERT_INT_EQ(query_rollup_sum(t.db, m0 + 3, m0 + 50, &k), 0); /* nothing: rates 0 */
  ASSERT_INT_EQ(query_sends(&k), 0);
  ASSERT_TRUE(query_bounce_rate(&k) == 0 && query_complaint_rate(&k) == 0);

  /* hourly series from 09:30 to 12:00: 09, 10, 11 */
  int64_t start;
  struct query_counts *pts;
  size_t n;
  ASSERT_INT_EQ(
      query_timeseries(t.db, (m0 - 30) * 60000, (m0 + 120) * 60000, 3600000, &start, &pts, &n), 0);
  ASSERT_INT_EQ(n, 3);
  ASSERT_INT_EQ(start, (m0 - 60) * 60000);
  ASSERT_INT_EQ(pts[0].sends + pts[0].deliveries, 0);
  ASSERT_INT_EQ(pts[1].sends, 3);
  ASSERT_INT_EQ(pts[1].deliveries, 2);
  ASSERT_INT_EQ(pts[1].bounces, 1);
  ASSERT_INT_EQ(pts[2].sends, 1);
  free(pts);
  /* per minute: every minute present */
  ASSERT_INT_EQ(query_timeseries(t.db, m0 * 60000, (m0 + 3) * 60000, 60000, &start, &pts, &n), 0);
  ASSERT_INT_EQ(n, 3);
  ASSERT_INT_EQ(pts[0].sends, 3);
  ASSERT_INT_EQ(pts[1].sends + pts[1].deliveries, 0);
  ASSERT_INT_EQ(pts[2].deliveries, 2);
  free(pts);
  ASSERT_INT_EQ(query_timeseries(t.db, 0, 10001LL * 60000, 60000, &start, &pts, &n), SL_EINVAL);
  ASSERT_INT_EQ(query_timeseries(t.db, 0, 10000LL * 60000, 60000, &start, &pts, &n), 0);
  ASSERT_INT_EQ(n, 10000);
  free(pts);
  ASSERT_INT_EQ(query_timeseries(t.db, 0, 60000, 90000, &start, &pts, &n), SL_EINVAL);
  tdb_close(&t);
  return 0;
}

/* rollup_hour (kept by triggers) sums rollup_minute; sums over any range
 * of minutes, hours inside it or not, match a plain sum of the minutes. */
static int t_rollup_hours(void) {
  struct tdb t;
  if (tdb_open(&t)) return 1;
  char mid[32], ts[32];
  int64_t base;
  util_parse_iso8601("2026-03-06T07:00:00Z", &base);
  for (int i = 0; i < 120; i++) { /* every 13 minutes over 13 hours, twice: the
                                      second round updates minutes (late events) */
    int64_t at = base + (int64_t)((i % 60) * 13) * 60000 + (i % 5) * 1000;
    util_format_iso8601(at, ts);
    snprintf(mid, sizeof mid, "h%d", i);
    if (put_event(&t, i % 4 ? "Send" : "Bounce", mid, ts, "s@x",
                  i % 3 ? "[\"a@x.example\"]" : "[\"a@x.example\",\"b@x.example\"]"))
      return 1;
  }
  sqlite3_stmt *st;
  ASSERT_INT_EQ(sqlite3_prepare_v2(t.db,
                                   "SELECT count(*) FROM rollup_hour h WHERE sends != (SELECT "
                                   "total(sends) FROM rollup_minute WHERE minute / 60 = h.hour) "
                                   "OR bounces != (SELECT total(bounces) FROM rollup_minute "
                                   "WHERE minute / 60 = h.hour)",
                                   -1, &st, NULL),
                SQLITE_OK);
  ASSERT_INT_EQ(sqlite3_step(st), SQLITE_ROW);
  ASSERT_INT_EQ(sqlite3_column_int(st, 0), 0);
  sqlite3_finalize(st);
  ASSERT_INT_EQ(sqlite3_prepare_v2(t.db,
                                   "SELECT total(sends), total(bounces), total(permanentBounces) "
                                   "FROM rollup_minute WHERE minute BETWEEN ? AND ?",
                                   -1, &st, NULL),
                SQLITE_OK);
  int64_t m0 = base / 60000;
  for (int64_t from = m0 - 70; from < m0 + 900; from += 37)
    for (int64_t len = 0; len < 800; len += 53) {
      struct query_counts k;
      ASSERT_INT_EQ(query_rollup_sum(t.db, from, from + len, &k), 0);
      sqlite3_bind_int64(st, 1, from);
      sqlite3_bind_int64(st, 2, from + len);
      ASSERT_INT_EQ(sqlite3_step(st), SQLITE_ROW);
      if (k.sends != (int64_t)sqlite3_column_double(st, 0) ||
          k.bounces != (int64_t)sqlite3_column_double(st, 1) ||
          k.permanent_bounces != (int64_t)sqlite3_column_double(st, 2))
        UNIT_FAIL_("minutes %lld..%lld: %lld sends, want %.0f", (long long)from,
                   (long long)(from + len), (long long)k.sends, sqlite3_column_double(st, 0));
      sqlite3_reset(st);
    }
  sqlite3_finalize(st);
  /* hourly and 2-hourly series agree with the per-minute one */
  int64_t start, s2;
  struct query_counts *by_min, *by_hour;
  size_t nm, nh;
  ASSERT_INT_EQ(
      query_timeseries(t.db, base - 3600000, base + 15 * 3600000, 60000, &start, &by_min, &nm), 0);
  ASSERT_INT_EQ(
      query_timeseries(t.db, base - 3600000, base + 15 * 3600000, 7200000, &s2, &by_hour, &nh), 0);
  ASSERT_INT_EQ(nh, 8);
  for (size_t h = 0; h < nh; h++) {
    int64_t sends = 0;
    for (size_t i = 0; i < nm; i++)
      if ((start + (int64_t)i * 60000 - s2) / 7200000 == (int64_t)h) sends += by_min[i].sends;
    ASSERT_INT_EQ(by_hour[h].sends, sends);
  }
  free(by_min);
  free(by_hour);
  tdb_close(&t);
  return 0;
}

/* ---- the API's loopback rule ------------------------------------------ */

static int t_loopback(void) {
  const char *yes[] = {"127.0.0.1:8490", "127.1.2.3:0", "[::1]:8490",
                       "localhost:80",   "LOCALHOST:1", "[::ffff:127.0.0.1]:5"};
  const char *no[] = {"0.0.0.0:8490", "10.0.0.1:80", "[::]:8490", "192.168.1.1:1", "example.com:80",
                      ":8490",        "garbage",     "[::2]:1",   "128.0.0.1:1"};
  for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
    if (!api_is_loopback(yes[i])) UNIT_FAIL_("%s is loopback", yes[i]);
  for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
    if (api_is_loopback(no[i])) UNIT_FAIL_("%s is not loopback", no[i]);
  return 0;
}

/* ---- grouped counts ------------------------------------------------------ */

static int t_diagnostic_key(void) {
  struct {
    const char *in, *want;
  } cases[] = {
      {"smtp; 550 5.1.1 <jane.doe@example.com>: Recipient address rejected: User unknown",
       "550 5.1.1 recipient address rejected user unknown"},
      {"smtp; 550 5.1.1 <bob@example.org>: Recipient address rejected: User unknown",
       "550 5.1.1 recipient address rejected user unknown"},
      {"smtp; 554 5.7.1 Service unavailable; Client host [198.51.100.7] blocked using "
       "zen.spamhaus.org; https://www.spamhaus.org/query/ip/198.51.100.7",
       "554 5.7.1 service unavailable client host blocked using zen.spamhaus.org"},
      {"452-4.2.2 The email account that you tried to reach is over quota. ID 4f3a9c1b2d7e",
       "452 4.2.2 the email account that you tried to reach is over quota id"},
      {"Amazon SES did not send the message", "amazon ses did not send the message"},
      {"", ""},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char out[128];
    query_diagnostic_key(cases[i].in, out, sizeof out);
    if (strncmp(out, cases[i].want, strlen(cases[i].want)) != 0)
      UNIT_FAIL_("case %zu: \"%s\" != \"%s\"", i, out, cases[i].want);
  }
  char small[8];
  query_diagnostic_key("550 5.1.1 user unknown", small, sizeof small);
  ASSERT_TRUE(strlen(small) < sizeof small);
  return 0;
}

static int t_grouping_parse(void) {
  query_grouping g;
  char err[256];
  ASSERT_INT_EQ(query_grouping_parse("day,type", &g, err, sizeof err), 0);
  ASSERT_INT_EQ(g.n, 2);
  ASSERT_INT_EQ(g.field[0], QG_DAY);
  ASSERT_INT_EQ(g.field[1], QG_TYPE);
  ASSERT_INT_EQ(query_grouping_parse("tag:campaign,configurationSet", &g, err, sizeof err), 0);
  ASSERT_INT_EQ(g.field[0], QG_TAG);
  ASSERT_STR_EQ(g.path[0], "$.mail.tags.\"campaign\"[0]");
  ASSERT_STR_EQ(g.name[0], "tag:campaign");
  const char *bad[] = {"", "dy", "day,", "day,day", "tag:", "tag:a'b", "day,hour,type,source"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    if (query_grouping_parse(bad[i], &g, err, sizeof err) != SL_EINVAL)
      UNIT_FAIL_("\"%s\" accepted", bad[i]);
  return 0;
}

struct groups {
  char text[4096];
  size_t used;
  int n; /* fields */
};

static int collect_group(void *ud, const char *const *keys, int64_t count) {
  struct groups *g = ud;
  g->used += (size_t)snprintf(g->text + g->used, sizeof g->text - g->used, "%s|%s=%lld;",
                              keys[0] ? keys[0] : "-", g->n > 1 && keys[1] ? keys[1] : "-",
                              (long long)count);
  return 0;
}

/* Answers against the events stored; the "Name <addr>" sender form. */
static int t_group_counts(void) {
  struct tdb t;
  if (tdb_open(&t)) return 1;
  ASSERT_INT_EQ(put_event(&t, "Send", "m1", "2026-03-01T10:00:00.000Z", "News <news@shop.test>",
                          "[\"a@x.test\",\"b@x.test\",\"c@y.test\"]"),
                0);
  ASSERT_INT_EQ(put_event(&t, "Bounce", "m1", "2026-03-01T10:05:00.000Z", "News <news@shop.test>",
                          "[\"a@x.test\",\"c@y.test\"]"),
                0);
  ASSERT_INT_EQ(
      put_event(&t, "Send", "m2", "2026-03-02T09:00:00.000Z", "news@shop.test", "[\"d@x.test\"]"),
      0);
  ASSERT_INT_EQ(
      put_event(&t, "Open", "m3", "2026-03-02T09:30:00.000Z", "other@shop.test", "[\"d@x.test\"]"),
      0);
  query_grouping g;
  char err[256];
  struct {
    const char *group;
    const char *params[3][2];
    const char *want;
  } cases[] = {
      {"day,type",
       {{NULL}},
       "2026-03-01|Bounce=1;2026-03-01|Send=1;2026-03-02|Open=1;2026-03-02|Send=1;"},
      {"domain", {{NULL}}, "x.test|-=5;y.test|-=2;"},
      {"domain", {{"type", "Bounce"}}, "x.test|-=1;y.test|-=1;"},
      {"type", {{"domain", "x.test"}}, "Send|-=2;Bounce|-=1;Open|-=1;"},
      {"source", {{"source", "NEWS@shop.test"}}, "News <news@shop.test>|-=2;news@shop.test|-=1;"},
      {"type", {{"source", "Someone <news@shop.test>"}, {"type", "Send"}}, "Send|-=2;"},
      {"type", {{"senderDomain", "SHOP.test"}, {"until", "2026-03-02"}}, "Bounce|-=1;Send|-=1;"},
      {"bounceSubType", {{"type", "Bounce"}}, "General|-=1;"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    query_filter f;
    query_filter_init(&f);
    for (int k = 0; k < 3 && cases[i].params[k][0]; k++)
      ASSERT_INT_EQ(query_filter_set(&f, cases[i].params[k][0], cases[i].params[k][1], NOW, 1000,
                                     err, sizeof err),
                    0);
    ASSERT_INT_EQ(query_grouping_parse(cases[i].group, &g, err, sizeof err), 0);
    struct groups got = {.used = 0, .n = g.n};
    got.text[0] = 0;
    int more = 0;
    ASSERT_INT_EQ(query_group_counts(t.db, &f, &g, 100, collect_group, &got, &more), 0);
    ASSERT_INT_EQ(more, 0);
    if (strcmp(got.text, cases[i].want) != 0)
      UNIT_FAIL_("case %zu (%s): %s != %s", i, cases[i].group, got.text, cases[i].want);
  }
  /* Diagnostics: one with an address, one with nothing left to group by
   * (none, as no diagnostic); a recipient given twice in two cases is one
   * recipients row. */
  ASSERT_INT_EQ(
      put_json(&t,
               "{\"eventType\":\"Bounce\",\"bounce\":{\"bounceType\":\"Transient\","
               "\"bounceSubType\":\"MailboxFull\",\"bouncedRecipients\":[{\"emailAddress\":"
               "\"e@x.test\",\"diagnosticCode\":\"smtp; 452 4.2.2 <e@x.test> over quota\"}],"
               "\"timestamp\":\"2026-03-01T11:00:00.000Z\",\"feedbackId\":\"fb-m4\"},"
               "\"mail\":{\"timestamp\":\"2026-03-01T11:00:00.000Z\",\"source\":"
               "\"news@shop.test\",\"messageId\":\"m4\",\"destination\":[\"e@x.test\"]}}"),
      0);
  ASSERT_INT_EQ(
      put_json(&t,
               "{\"eventType\":\"Bounce\",\"bounce\":{\"bounceType\":\"Permanent\","
               "\"bounceSubType\":\"General\",\"bouncedRecipients\":[{\"emailAddress\":"
               "\"f@y.test\",\"diagnosticCode\":\"12345\"}],"
               "\"timestamp\":\"2026-03-01T12:00:00.000Z\",\"feedbackId\":\"fb-m5\"},"
               "\"mail\":{\"timestamp\":\"2026-03-01T12:00:00.000Z\",\"source\":"
               "\"news@shop.test\",\"messageId\":\"m5\",\"destination\":[\"f@y.test\"]}}"),
      0);
  ASSERT_INT_EQ(put_event(&t, "Send", "m6", "2026-03-03T08:00:00.000Z", "news@shop.test",
                          "[\"G@z.test\",\"g@Z.test\",\"h@z.test\"]"),
                0);
  /* The rollups answer what they can, and as the events do: a range of
   * whole days from the rollups alone, and one that starts inside the
   * first day (its start from the events, the rest of that day from the
   * hour rollups when there are, the rest from the day rollups) give the
   * same groups, also after an event is deleted as retention does. */
  static const char *const both[] = {
      "day,type",      "hour",        "type,bounceType", "bounceSubType",
      "domain",        "domain,type", "day,domain",      "source",
      "type,source",   "diagnostic",  "type,diagnostic", "source,bounceSubType",
      "day,diagnostic"};
  for (int round = 0; round < 2; round++) {
    if (round == 1) {
      sqlite3 *w;
      ASSERT_INT_EQ(sqlite3_open(t.path, &w), SQLITE_OK);
      ASSERT_INT_EQ(rollup_attach(w), 0); /* as the writer's connection is */
      ASSERT_INT_EQ(sqlite3_exec(w,
                                 "DELETE FROM recipients WHERE eventId IN (SELECT id FROM "
                                 "SesEventMessages WHERE notificationType = 'Bounce');"
                                 "DELETE FROM SesEventMessages WHERE notificationType = 'Bounce';",
                                 NULL, NULL, NULL),
                    SQLITE_OK);
      sqlite3_close(w);
    }
    for (size_t i = 0; i < sizeof both / sizeof both[0]; i++) {
      ASSERT_INT_EQ(query_grouping_parse(both[i], &g, err, sizeof err), 0);
      struct groups a = {.used = 0, .n = g.n}, b = {.used = 0, .n = g.n};
      a.text[0] = b.text[0] = 0;
      query_filter f1, f2;
      query_filter_init(&f1);
      query_filter_init(&f2);
      ASSERT_INT_EQ(query_filter_set(&f1, "since", "2026-02-01", NOW, 1000, err, sizeof err), 0);
      ASSERT_INT_EQ(
          query_filter_set(&f2, "since", "2026-03-01T09:59:59.999Z", NOW, 1000, err, sizeof err),
          0);
      ASSERT_TRUE(strncmp(query_group_source(&f1, &g), "rollup_", 7) == 0);
      ASSERT_STR_EQ(query_group_source(&f1, &g), query_group_source(&f2, &g));
      int more = 0;
      ASSERT_INT_EQ(query_group_counts(t.db, &f1, &g, 100, collect_group, &a, &more), 0);
      ASSERT_INT_EQ(query_group_counts(t.db, &f2, &g, 100, collect_group, &b, &more), 0);
      /* and as the events alone do */
      struct groups c = {.used = 0, .n = g.n};
      c.text[0] = 0;
      query_filter f3 = f1;
      /* every sender here is of shop.test: all the events, from the events */
      ASSERT_INT_EQ(query_filter_set(&f3, "senderDomain", "shop.test", NOW, 1000, err, sizeof err),
                    0);
      ASSERT_STR_EQ(query_group_source(&f3, &g), "events");
      ASSERT_INT_EQ(query_group_counts(t.db, &f3, &g, 100, collect_group, &c, &more), 0);
      if (strcmp(a.text, c.text) != 0)
        UNIT_FAIL_("round %d, %s: rollup %s != events alone %s", round, both[i], a.text, c.text);
      if (strcmp(a.text, b.text) != 0)
        UNIT_FAIL_("round %d, %s: rollup %s != events %s", round, both[i], a.text, b.text);
      if (round == 1 && strstr(a.text, "Bounce"))
        UNIT_FAIL_("%s: a deleted bounce: %s", both[i], a.text);
    }
  }
  /* filters or fields the rollups do not know: the events */
  query_filter h;
  query_filter_init(&h);
  ASSERT_INT_EQ(query_grouping_parse("type", &g, err, sizeof err), 0);
  ASSERT_INT_EQ(query_filter_set(&h, "until", "2026-03-02T10:30:00Z", NOW, 1000, err, sizeof err),
                0);
  ASSERT_STR_EQ(query_group_source(&h, &g), "rollup_type_hour");
  ASSERT_INT_EQ(query_filter_set(&h, "diagnostic", "5.1.1", NOW, 1000, err, sizeof err), 0);
  ASSERT_STR_EQ(query_group_source(&h, &g), "events");
  query_filter_init(&h);
  ASSERT_INT_EQ(query_grouping_parse("domain,bounceSubType", &g, err, sizeof err), 0);
  ASSERT_STR_EQ(query_group_source(&h, &g), "events");
  ASSERT_INT_EQ(query_grouping_parse("source,domain", &g, err, sizeof err), 0);
  ASSERT_STR_EQ(query_group_source(&h, &g), "events");
  ASSERT_INT_EQ(query_grouping_parse("source,bounceType", &g, err, sizeof err), 0);
  ASSERT_STR_EQ(query_group_source(&h, &g), "rollup_type_hour");
  ASSERT_INT_EQ(query_grouping_parse("domain,day", &g, err, sizeof err), 0);
  ASSERT_STR_EQ(query_group_source(&h, &g), "rollup_recipient_day");
  ASSERT_INT_EQ(query_grouping_parse("diagnostic,type", &g, err, sizeof err), 0);
  ASSERT_STR_EQ(query_group_source(&h, &g), "rollup_diagnostic_hour");
  ASSERT_INT_EQ(query_grouping_parse("diagnostic,source", &g, err, sizeof err), 0);
  ASSERT_STR_EQ(query_group_source(&h, &g), "events");
  ASSERT_INT_EQ(query_filter_set(&h, "type", "Bounce", NOW, 1000, err, sizeof err), 0);
  ASSERT_INT_EQ(query_grouping_parse("domain,day", &g, err, sizeof err), 0);
  ASSERT_STR_EQ(query_group_source(&h, &g), "rollup_domain_day");

  /* a cap on the groups */
  query_filter f;
  query_filter_init(&f);
  ASSERT_INT_EQ(query_grouping_parse("day,type", &g, err, sizeof err), 0);
  struct groups got = {.used = 0, .n = g.n};
  int more = 0;
  ASSERT_INT_EQ(query_group_counts(t.db, &f, &g, 2, collect_group, &got, &more), 0);
  ASSERT_INT_EQ(more, 1);
  ASSERT_STR_EQ(got.text, "2026-03-01|Send=1;2026-03-02|Open=1;"); /* the bounce is gone */
  tdb_close(&t);
  return 0;
}

/* The recipients table's time (schema version 23): the C conversion the
 * writer, retention and cursors use gives what the SQL of the migration
 * and of the probes gives, the integer for the text seslog writes, the
 * text itself for anything else; and the integer reads back as the text. */
static int t_rcpt_time(void) {
  static const char *const texts[] = {"2026-03-06T20:00:26.893Z",
                                      "1969-12-31T23:59:59.999Z",
                                      "1970-01-01T00:00:00.000Z",
                                      "0000-01-01T00:00:00.000Z",
                                      "9999-12-31T23:59:59.999Z",
                                      "2024-02-29T23:59:59.001Z",
                                      "2023-02-29T00:00:00.000Z",
                                      "2024-04-31T00:00:00.000Z",
                                      "2024-01-01T24:00:00.000Z",
                                      "2024-01-01T00:00:00Z",
                                      "2024-01-01 00:00:00.000Z",
                                      "2024-01-01T00:00:00.000+00:00",
                                      "2024-01-01T00:00:60.000Z",
                                      "2024-1-01T00:00:00.000Z",
                                      "garbage",
                                      ""};
  sqlite3 *db;
  ASSERT_INT_EQ(sqlite3_open(":memory:", &db), SQLITE_OK);
  sqlite3_stmt *st;
  ASSERT_INT_EQ(
      sqlite3_prepare_v2(
          db,
          "SELECT " QUERY_RCPT_TIME_SQL(
              "?1") ", strftime('%Y-%m-%dT%H:%M:%fZ', " QUERY_RCPT_TIME_SQL("?1") " / 1000.0, "
                                                                                  "'unixepoch')",
          -1, &st, NULL),
      SQLITE_OK);
  int ints = 0;
  for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
    sqlite3_bind_text(st, 1, texts[i], -1, SQLITE_STATIC);
    ASSERT_INT_EQ(sqlite3_step(st), SQLITE_ROW);
    int64_t ms = -7;
    int c = query_rcpt_time(texts[i], &ms);
    if (c == 0) {
      ints++;
      ASSERT_INT_EQ(sqlite3_column_type(st, 0), SQLITE_INTEGER);
      ASSERT_INT_EQ(sqlite3_column_int64(st, 0), ms);
      ASSERT_STR_EQ((const char *)sqlite3_column_text(st, 1), texts[i]);
    } else {
      ASSERT_INT_EQ(c, SL_EINVAL);
      ASSERT_INT_EQ(ms, -7); /* untouched */
      ASSERT_INT_EQ(sqlite3_column_type(st, 0), SQLITE_TEXT);
      ASSERT_STR_EQ((const char *)sqlite3_column_text(st, 0), texts[i]);
    }
    sqlite3_reset(st);
  }
  ASSERT_INT_EQ(ints, 6);
  /* the type's code: its place in the contract's list, as the schema says */
  for (int i = 0; query_type_name(i); i++) ASSERT_INT_EQ(query_type_code(query_type_name(i)), i);
  ASSERT_INT_EQ(query_type_code("Bounce"), 0);
  ASSERT_INT_EQ(query_type_code("Subscription"), 9);
  ASSERT_INT_EQ(query_type_code("bounce"), -1);
  ASSERT_INT_EQ(query_type_code(NULL), -1);
  int64_t ms;
  ASSERT_INT_EQ(query_rcpt_time("2026-03-06T20:00:26.893Z", &ms), 0);
  ASSERT_INT_EQ(ms, 1772827226893);
  ASSERT_INT_EQ(query_rcpt_time(NULL, &ms), SL_EINVAL);
  sqlite3_finalize(st);
  sqlite3_close(db);
  return 0;
}

const struct unit_test query_tests[] = {
    {"rcpt_time", t_rcpt_time},
    {"cursor_roundtrip", t_cursor_roundtrip},
    {"cursor_rejects", t_cursor_rejects},
    {"params", t_params},
    {"plan_drivers", t_plan_drivers},
    {"plan_indexes", t_plan_indexes},
    {"paging", t_paging},
    {"time_limit", t_time_limit},
    {"row_json_matches_ses", t_row_json_matches_ses},
    {"row_json_bad_stored_json", t_row_json_bad_stored_json},
    {"json_numbers", t_json_numbers},
    {"rollups", t_rollups},
    {"rollup_hours", t_rollup_hours},
    {"loopback", t_loopback},
    {"diagnostic_key", t_diagnostic_key},
    {"grouping_parse", t_grouping_parse},
    {"group_counts", t_group_counts},
    {0},
};
