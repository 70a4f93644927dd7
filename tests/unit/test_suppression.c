/* test_suppression.c - addresses (checks, folding), SES's bulk CSV lines,
 * and the rules, run through a real store: events written with
 * store_write into a temporary database, the list read back. */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "address.h"
#include "cmd_suppression.h"
#include "error.h"
#include "log.h"
#include "readpool.h"
#include "ses.h"
#include "store.h"
#include "suppression.h"
#include "unit.h"
#include "util.h"

/* ---- addresses ------------------------------------------------------- */

static int t_address_check(void) {
  const char *why = NULL;
  ASSERT_INT_EQ(address_check("jane@example.com", &why), 0);
  ASSERT_INT_EQ(address_check("Jane.Doe+tag@mail.example.co.uk", &why), 0);
  ASSERT_INT_EQ(address_check("j\xc3\xa4ne@b\xc3\xbc"
                              "cher.de",
                              &why),
                0);
  static const char *const bad[] = {
      "",
      "jane@x.com/y",
      "jane@x!.com",
      "jane@x.com:25",
      "janeexample.com",
      "jane@@example.com",
      "a@b@c.com",
      "@example.com",
      "jane@",
      "jane doe@x.com",
      "jane@x.com ",
      "jane\t@x.com",
      "jane\x01@x.com",
      "ja,ne@x.com",
      "<jane@x.com>",
      "jane@.x.com",
      "jane@x..com",
      "jane@x.com.",
      "j\xff@x.com",
      "j\xc3@x.com",
      "\"j\"@x.com",
      "ja;ne@x.com",
      "jane@x.com\x7f",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    why = NULL;
    if (address_check(bad[i], &why) != SL_EINVAL)
      UNIT_FAIL_("accepted bad address #%zu \"%s\"", i, bad[i]);
    ASSERT_TRUE(why && *why);
  }
  char big[400];
  memset(big, 'a', sizeof big);
  memcpy(big + 300, "@example.com", 13); /* 312 bytes: fine */
  ASSERT_INT_EQ(address_check(big, &why), 0);
  memset(big, 'a', 310);
  memcpy(big + 310, "@example.com", 13); /* 322 bytes: too long */
  ASSERT_INT_EQ(address_check(big, &why), SL_EINVAL);
  ASSERT_TRUE(strstr(why, "320") != NULL);
  ASSERT_INT_EQ(address_check(NULL, &why), SL_EINVAL);
  return 0;
}

static int t_address_fold(void) {
  char out[SUPPRESSION_ADDRESS_MAX + 1] = "untouched";
  const char *why;
  ASSERT_INT_EQ(address_fold("Jane.DOE@Example.COM", out, sizeof out, &why), 0);
  ASSERT_STR_EQ(out, "jane.doe@example.com");
  /* non-ASCII bytes stay as they are */
  ASSERT_INT_EQ(address_fold("J\xc3\x84@X.de", out, sizeof out, &why), 0);
  ASSERT_STR_EQ(out, "j\xc3\x84@x.de");
  snprintf(out, sizeof out, "untouched");
  ASSERT_INT_EQ(address_fold("no at sign", out, sizeof out, &why), SL_EINVAL);
  ASSERT_STR_EQ(out, "untouched"); /* written only on success */
  char small[8];
  ASSERT_INT_EQ(address_fold("jane@example.com", small, sizeof small, &why), SL_EINVAL);
  return 0;
}

static int t_address_odd_domain(void) {
  /* In C: the domain after the last '@' ("" without one); in SQL the
   * schema's expression over the row (address, oddDomain) must give the
   * same bytes, also for text that is not valid UTF-8. */
  static const char *const addrs[] = {"jane@example.com",
                                      "@lead.example",
                                      "trailing@",
                                      "noat",
                                      "",
                                      "a@b@c.example",
                                      "\"q@r\"@q.example",
                                      "@@",
                                      "\xc3@x.example",
                                      "a@\x80"
                                      "b.example",
                                      "\xe2\x82@@d.example",
                                      "\xc3\xa4@\xc3\xbc.example",
                                      "a@b\xf0\x9f"};
  sqlite3 *db;
  sqlite3_stmt *st = NULL;
  ASSERT_INT_EQ(sqlite3_open(":memory:", &db), SQLITE_OK);
  ASSERT_INT_EQ(sqlite3_exec(db, "CREATE TABLE t (address TEXT, oddDomain TEXT)", NULL, NULL, NULL),
                SQLITE_OK);
  ASSERT_INT_EQ(
      sqlite3_prepare_v2(db, "INSERT INTO t VALUES (?1, ?2) RETURNING " ADDRESS_DOMAIN_SQL(""), -1,
                         &st, NULL),
      SQLITE_OK);
  int failed = 0;
  for (size_t i = 0; i < sizeof addrs / sizeof *addrs; i++) {
    const char *a = addrs[i], *last = strrchr(a, '@');
    const char *want = last ? last + 1 : "", *odd = address_odd_domain(a);
    int one = last && strchr(a, '@') == last;
    sqlite3_bind_text(st, 1, a, -1, SQLITE_STATIC);
    if (odd)
      sqlite3_bind_text(st, 2, odd, -1, SQLITE_STATIC);
    else
      sqlite3_bind_null(st, 2);
    const char *got =
        sqlite3_step(st) == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : NULL;
    if ((odd == NULL) != one || !got || strcmp(got, want) != 0) {
      fprintf(stderr, "    case %zu: odd %s, sql gives %s, want %s\n", i, odd ? odd : "NULL",
              got ? got : "(none)", want);
      failed = 1;
    }
    sqlite3_reset(st);
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  return failed;
}

static int t_reason_names(void) {
  int r;
  ASSERT_INT_EQ(suppression_reason_parse("BOUNCE", &r), 0);
  ASSERT_INT_EQ(r, SUP_BOUNCE);
  ASSERT_INT_EQ(suppression_reason_parse("complaint", &r), 0);
  ASSERT_INT_EQ(r, SUP_COMPLAINT);
  ASSERT_INT_EQ(suppression_reason_parse("Manual", &r), 0);
  ASSERT_INT_EQ(r, SUP_MANUAL);
  ASSERT_INT_EQ(suppression_reason_parse("SPAM", &r), SL_EINVAL);
  ASSERT_INT_EQ(suppression_reason_parse(NULL, &r), SL_EINVAL);
  ASSERT_STR_EQ(suppression_reason_name(SUP_COMPLAINT), "COMPLAINT");
  return 0;
}

static int t_csv_line(void) {
  char *addr;
  int reason;
  const char *why;
  char l1[] = "EmailAddress,Reason\r\n";
  ASSERT_INT_EQ(suppression_csv_line(l1, 1, &addr, &reason, &why), 1);
  char l2[] = "address , reason\n";
  ASSERT_INT_EQ(suppression_csv_line(l2, 1, &addr, &reason, &why), 1);
  char l2b[] =
      "\xef\xbb\xbf"
      "EmailAddress,Reason\n";
  ASSERT_INT_EQ(suppression_csv_line(l2b, 1, &addr, &reason, &why), 1);
  char l3[] = "address,reason\n"; /* a header only on the first line */
  ASSERT_INT_EQ(suppression_csv_line(l3, 0, &addr, &reason, &why), SL_EINVAL);
  char l4[] = " Jane@Example.com ,bounce\r\n";
  ASSERT_INT_EQ(suppression_csv_line(l4, 0, &addr, &reason, &why), 0);
  ASSERT_STR_EQ(addr, "Jane@Example.com");
  ASSERT_INT_EQ(reason, SUP_BOUNCE);
  char l5[] = "\"x@y.com\",\"COMPLAINT\"\n";
  ASSERT_INT_EQ(suppression_csv_line(l5, 0, &addr, &reason, &why), 0);
  ASSERT_STR_EQ(addr, "x@y.com");
  ASSERT_INT_EQ(reason, SUP_COMPLAINT);
  char l6[] = "   \r\n";
  ASSERT_INT_EQ(suppression_csv_line(l6, 0, &addr, &reason, &why), 1);
  char l7[] = "x@y.com\n";
  ASSERT_INT_EQ(suppression_csv_line(l7, 0, &addr, &reason, &why), SL_EINVAL);
  char l8[] = "x@y.com,MANUAL\n"; /* SES knows only BOUNCE and COMPLAINT */
  ASSERT_INT_EQ(suppression_csv_line(l8, 0, &addr, &reason, &why), SL_EINVAL);
  char l9[] = "not-an-address,BOUNCE\n";
  ASSERT_INT_EQ(suppression_csv_line(l9, 0, &addr, &reason, &why), SL_EFIELD);
  ASSERT_STR_EQ(addr, "not-an-address");
  char l10[] = "x@y.com,BOUNCE,extra\n";
  ASSERT_INT_EQ(suppression_csv_line(l10, 0, &addr, &reason, &why), SL_EINVAL);
  return 0;
}

/* ---- the rules, through a real store ---------------------------------- */

typedef struct fixture {
  char dir[64];
  char path[128];
  store *st;
  suppression *sup;
  sqlite3 *rd; /* read-only connection */
  int seq;     /* makes each event distinct */
} fixture;

static int fx_open(fixture *f, int soft_limit, int soft_days) {
  memset(f, 0, sizeof *f);
  log_set_level("warn"); /* no "database migrated" lines */
  snprintf(f->dir, sizeof f->dir, "/tmp/seslog-unit-sup-XXXXXX");
  if (!mkdtemp(f->dir)) return 1;
  snprintf(f->path, sizeof f->path, "%s/t.db", f->dir);
  struct suppression_opts so = {.soft_bounce_limit = soft_limit, .soft_bounce_days = soft_days};
  if (suppression_new(&so, &f->sup)) return 1;
  struct store_opts o = {.busy_timeout_ms = 1000};
  suppression_hook(f->sup, &o.hooks[o.n_hooks++]);
  char err[256];
  if (store_open(f->path, &o, &f->st, err, sizeof err)) {
    fprintf(stderr, "    store_open: %s\n", err);
    return 1;
  }
  return readpool_open_conn(f->path, &f->rd, err, sizeof err) ? 1 : 0;
}

static void fx_close(fixture *f) {
  sqlite3_close(f->rd);
  store_close(f->st);
  suppression_free(f->sup);
  char p[160];
  const char *sfx[] = {"", "-wal", "-shm"};
  for (int i = 0; i < 3; i++) {
    snprintf(p, sizeof p, "%s%s", f->path, sfx[i]);
    unlink(p);
  }
  rmdir(f->dir);
}

/* Writes one SES event of type with the given fields; recipients is a
 * JSON array of the affected addresses, dest of the mail's destination.
 * Returns the store result (STORE_STORED). */
static int fx_event(fixture *f, const char *type, const char *subtype_field, const char *ts,
                    const char *recipients, const char *dest) {
  char json[4096];
  int n = ++f->seq;
  if (strcmp(type, "Bounce") == 0) {
    /* subtype_field: "Permanent/General", "Transient/MailboxFull", "Undetermined/Undetermined" */
    char bt[64], bst[64];
    const char *slash = strchr(subtype_field, '/');
    snprintf(bt, sizeof bt, "%.*s", (int)(slash - subtype_field), subtype_field);
    snprintf(bst, sizeof bst, "%s", slash + 1);
    char list[2048] = "";
    /* bouncedRecipients from the plain list */
    const char *p = recipients;
    size_t used = 0;
    while ((p = strchr(p, '"')) != NULL) {
      const char *q = strchr(p + 1, '"');
      used += (size_t)snprintf(list + used, sizeof list - used, "%s{\"emailAddress\":%.*s}",
                               used ? "," : "", (int)(q - p + 1), p);
      p = q + 1;
    }
    snprintf(json, sizeof json,
             "{\"notificationType\":\"Bounce\",\"bounce\":{\"bounceType\":\"%s\","
             "\"bounceSubType\":\"%s\",\"bouncedRecipients\":[%s],\"timestamp\":\"%s\","
             "\"feedbackId\":\"fb-%d\"},\"mail\":{\"timestamp\":\"%s\",\"messageId\":\"m-%d\","
             "\"source\":\"s@x.com\",\"destination\":%s}}",
             bt, bst, list, ts, n, ts, n, dest);
  } else if (strcmp(type, "Complaint") == 0) {
    char list[2048] = "";
    const char *p = recipients;
    size_t used = 0;
    while ((p = strchr(p, '"')) != NULL) {
      const char *q = strchr(p + 1, '"');
      used += (size_t)snprintf(list + used, sizeof list - used, "%s{\"emailAddress\":%.*s}",
                               used ? "," : "", (int)(q - p + 1), p);
      p = q + 1;
    }
    char fbt[128] = "";
    if (subtype_field)
      snprintf(fbt, sizeof fbt, "\"complaintFeedbackType\":\"%s\",", subtype_field);
    snprintf(json, sizeof json,
             "{\"notificationType\":\"Complaint\",\"complaint\":{%s\"complainedRecipients\":[%s],"
             "\"timestamp\":\"%s\",\"feedbackId\":\"fb-%d\"},\"mail\":{\"timestamp\":\"%s\","
             "\"messageId\":\"m-%d\",\"source\":\"s@x.com\",\"destination\":%s}}",
             fbt, list, ts, n, ts, n, dest);
  } else {
    snprintf(json, sizeof json,
             "{\"notificationType\":\"Delivery\",\"delivery\":{\"recipients\":%s,"
             "\"timestamp\":\"%s\"},\"mail\":{\"timestamp\":\"%s\",\"messageId\":\"m-%d\","
             "\"source\":\"s@x.com\",\"destination\":%s}}",
             recipients, ts, ts, n, dest);
  }
  ses_event *ev;
  const char *why = NULL;
  if (ses_parse(json, strlen(json), NULL, &ev, &why)) {
    fprintf(stderr, "    ses_parse: %s\n    %s\n", why ? why : "?", json);
    return -100;
  }
  store_req *r = calloc(1, sizeof *r);
  r->ev = ev;
  int rc = store_write(f->st, &r, 1);
  int result = rc ? rc : r->result;
  store_req_free(r);
  return result;
}

/* A change through store_write, as the CLI and the API make them. */
struct manual {
  store_req req;
  suppression *s;
  store *st;
  struct suppression_change c;
  int remove;
  int outcome;
};

static int manual_apply(store_req *r, sqlite3 *db) {
  struct manual *m = r->ud;
  int rc = m->remove ? suppression_remove(m->s, m->st, m->c.address, m->c.actor, m->c.note,
                                          util_now_ms(), &m->outcome)
                     : suppression_put(m->s, m->st, &m->c, util_now_ms(), &m->outcome);
  if (rc) return rc == SL_EINVAL ? (r->result = SL_EINVAL, 0) : SL_EDB;
  r->result = STORE_STORED;
  return 0;
}

static int fx_manual(fixture *f, const char *addr, int reason, const char *note, int remove) {
  struct manual m = {.s = f->sup,
                     .st = f->st,
                     .c = {.address = addr, .reason = reason, .note = note, .actor = "cli"},
                     .remove = remove};
  m.req.apply = manual_apply;
  m.req.ud = &m;
  store_req *r = &m.req;
  if (store_write(f->st, &r, 1) || m.req.result < 0) return -1;
  return m.outcome;
}

struct got {
  int found;
  char reason[16];
  char display[SUPPRESSION_ADDRESS_MAX + 1];
  int64_t events, created, last;
  int ambiguous;
  char message_id[64];
};

static void got_row(void *ud, const struct suppression_row *r) {
  struct got *g = ud;
  snprintf(g->reason, sizeof g->reason, "%s", r->reason);
  snprintf(g->display, sizeof g->display, "%s", r->display);
  snprintf(g->message_id, sizeof g->message_id, "%s", r->message_id ? r->message_id : "");
  g->events = r->events;
  g->created = r->created_at;
  g->last = r->last_event_at;
  g->ambiguous = r->ambiguous;
}

static struct got fx_get(fixture *f, const char *addr) {
  struct got g = {0};
  char folded[SUPPRESSION_ADDRESS_MAX + 1];
  if (address_fold(addr, folded, sizeof folded, NULL)) return g;
  suppression_get(f->rd, folded, got_row, &g, &g.found);
  return g;
}

static long fx_count(fixture *f, const char *sql) {
  sqlite3_stmt *st;
  long n = -1;
  if (sqlite3_prepare_v2(f->rd, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
    n = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  return n;
}

static const char dest3[] = "[\"jane@example.com\",\"mary@example.com\",\"richard@example.com\"]";

static int t_permanent_bounce_only_affected(void) {
  fixture f;
  ASSERT_INT_EQ(fx_open(&f, 3, 7), 0);
  ASSERT_INT_EQ(fx_event(&f, "Bounce", "Permanent/General", "2026-03-01T10:00:00.000Z",
                         "[\"Jane@Example.com\",\"richard@example.com\"]", dest3),
                STORE_STORED);
  struct got g = fx_get(&f, "jane@example.com");
  ASSERT_INT_EQ(g.found, 1);
  ASSERT_STR_EQ(g.reason, "BOUNCE");
  ASSERT_STR_EQ(g.display, "Jane@Example.com"); /* kept as given */
  ASSERT_INT_EQ(g.events, 1);
  ASSERT_INT_EQ(g.ambiguous, 0);
  ASSERT_STR_EQ(g.message_id, "m-1");
  ASSERT_INT_EQ(fx_get(&f, "RICHARD@example.com").found, 1);
  ASSERT_INT_EQ(fx_get(&f, "mary@example.com").found, 0); /* not bounced: never touched */
  ASSERT_INT_EQ(fx_count(&f, "SELECT count(*) FROM suppression"), 2);
  ASSERT_INT_EQ(fx_count(&f,
                         "SELECT count(*) FROM suppression_history_full WHERE actor = "
                         "'permanent-bounce' AND action = 'added'"),
                2);
  /* the "added" rows are implicit while the entries are unchanged */
  ASSERT_INT_EQ(fx_count(&f, "SELECT count(*) FROM suppression_history"), 0);
  /* OnAccountSuppressionList is a permanent bounce too */
  ASSERT_INT_EQ(fx_event(&f, "Bounce", "Permanent/OnAccountSuppressionList",
                         "2026-03-01T11:00:00.000Z", "[\"mary@example.com\"]", dest3),
                STORE_STORED);
  ASSERT_STR_EQ(fx_get(&f, "mary@example.com").reason, "BOUNCE");
  /* again: the entry is updated, not duplicated */
  ASSERT_INT_EQ(fx_event(&f, "Bounce", "Permanent/General", "2026-03-02T10:00:00.000Z",
                         "[\"jane@EXAMPLE.com\"]", dest3),
                STORE_STORED);
  g = fx_get(&f, "jane@example.com");
  ASSERT_INT_EQ(g.events, 2);
  ASSERT_STR_EQ(g.message_id, "m-3");
  int64_t t1, t2;
  util_parse_iso8601("2026-03-01T10:00:00.000Z", &t1);
  util_parse_iso8601("2026-03-02T10:00:00.000Z", &t2);
  ASSERT_INT_EQ(g.created, t1);
  ASSERT_INT_EQ(g.last, t2);
  ASSERT_INT_EQ(fx_count(&f, "SELECT count(*) FROM suppression"), 3);
  ASSERT_INT_EQ(fx_count(&f,
                         "SELECT count(*) FROM suppression_history WHERE address = "
                         "'jane@example.com' AND action = 'updated'"),
                1);
  /* the update wrote jane's "added" row first, as it was: once */
  ASSERT_INT_EQ(fx_count(&f,
                         "SELECT count(*) FROM suppression_history WHERE address = "
                         "'jane@example.com' AND action = 'added' AND actor = 'permanent-bounce' "
                         "AND messageId = 'm-1' AND eventAt = (SELECT createdAt FROM suppression "
                         "WHERE address = 'jane@example.com') AND id < (SELECT max(id) FROM "
                         "suppression_history WHERE address = 'jane@example.com')"),
                1);
  ASSERT_INT_EQ(fx_count(&f,
                         "SELECT count(*) FROM suppression_history_full WHERE address = "
                         "'jane@example.com'"),
                2);
  /* an older event arriving late counts but leaves the latest's fields */
  ASSERT_INT_EQ(fx_event(&f, "Bounce", "Permanent/General", "2026-02-01T10:00:00.000Z",
                         "[\"jane@example.com\"]", dest3),
                STORE_STORED);
  g = fx_get(&f, "jane@example.com");
  ASSERT_INT_EQ(g.events, 3);
  ASSERT_INT_EQ(g.last, t2);
  ASSERT_STR_EQ(g.message_id, "m-3");
  fx_close(&f);
  return 0;
}

static int t_other_events_do_nothing(void) {
  fixture f;
  ASSERT_INT_EQ(fx_open(&f, 1, 7), 0);
  ASSERT_INT_EQ(fx_event(&f, "Delivery", NULL, "2026-03-01T10:00:00.000Z", dest3, dest3),
                STORE_STORED);
  ASSERT_INT_EQ(fx_count(&f, "SELECT count(*) FROM suppression"), 0);
  ASSERT_INT_EQ(fx_count(&f, "SELECT count(*) FROM suppression_history"), 0);
  fx_close(&f);
  return 0;
}

/* The module owns no statement of the store's connection: store_close
 * really closes the database (the last connection's close checkpoints
 * and removes the WAL file), whenever the module is freed. */
static int t_store_closes_alone(void) {
  fixture f;
  ASSERT_INT_EQ(fx_open(&f, 1, 7), 0);
  ASSERT_INT_EQ(fx_event(&f, "Bounce", "Permanent/General", "2026-03-01T10:00:00.000Z",
                         "[\"jane@example.com\"]", dest3),
                STORE_STORED);
  ASSERT_INT_EQ(fx_manual(&f, "joe@example.com", SUP_MANUAL, NULL, 0), SUP_ADDED);
  ASSERT_INT_EQ(fx_manual(&f, "joe@example.com", SUP_MANUAL, NULL, 1), SUP_REMOVED);
  sqlite3_close(f.rd);
  f.rd = NULL;
  store_close(f.st);
  f.st = NULL;
  char wal[160];
  snprintf(wal, sizeof wal, "%s-wal", f.path);
  ASSERT_INT_EQ(access(wal, F_OK), -1);
  fx_close(&f);
  return 0;
}

static int t_soft_bounces(void) {
  fixture f;
  ASSERT_INT_EQ(fx_open(&f, 3, 7), 0);
  const char *a = "[\"soft@example.com\"]";
  /* two do not suppress */
  ASSERT_INT_EQ(
      fx_event(&f, "Bounce", "Transient/MailboxFull", "2026-03-01T00:00:00.000Z", a, dest3),
      STORE_STORED);
  ASSERT_INT_EQ(
      fx_event(&f, "Bounce", "Undetermined/Undetermined", "2026-03-02T00:00:00.000Z", a, dest3),
      STORE_STORED);
  ASSERT_INT_EQ(fx_get(&f, "soft@example.com").found, 0);
  /* the third, on the 8th day after the first: the first drops out */
  ASSERT_INT_EQ(fx_event(&f, "Bounce", "Transient/General", "2026-03-09T00:00:00.000Z", a, dest3),
                STORE_STORED);
  ASSERT_INT_EQ(fx_get(&f, "soft@example.com").found, 0);
  /* a fourth within 7 days of the 2nd and 3rd: three in one window */
  ASSERT_INT_EQ(fx_event(&f, "Bounce", "Transient/General", "2026-03-08T23:00:00.000Z", a, dest3),
                STORE_STORED);
  struct got g = fx_get(&f, "soft@example.com");
  ASSERT_INT_EQ(g.found, 1);
  ASSERT_STR_EQ(g.reason, "BOUNCE");
  ASSERT_INT_EQ(fx_count(&f,
                         "SELECT count(*) FROM suppression_history_full WHERE actor = "
                         "'soft-bounce'"),
                1);
  /* exactly 7 days apart still counts */
  const char *b = "[\"edge@example.com\"]";
  fx_event(&f, "Bounce", "Transient/General", "2026-04-01T00:00:00.000Z", b, dest3);
  fx_event(&f, "Bounce", "Transient/General", "2026-04-03T00:00:00.000Z", b, dest3);
  ASSERT_INT_EQ(fx_get(&f, "edge@example.com").found, 0);
  fx_event(&f, "Bounce", "Transient/General", "2026-04-08T00:00:00.000Z", b, dest3);
  ASSERT_INT_EQ(fx_get(&f, "edge@example.com").found, 1);
  /* soft bounces of other recipients of the same mails never count */
  ASSERT_INT_EQ(fx_get(&f, "jane@example.com").found, 0);
  /* removal gives a fresh start: one more soft bounce does not re-add */
  ASSERT_INT_EQ(fx_manual(&f, "EDGE@example.com", SUP_MANUAL, "mailbox fixed", 1), SUP_REMOVED);
  fx_event(&f, "Bounce", "Transient/General", "2026-04-08T01:00:00.000Z", b, dest3);
  ASSERT_INT_EQ(fx_get(&f, "edge@example.com").found, 0);
  fx_event(&f, "Bounce", "Transient/General", "2026-04-08T02:00:00.000Z", b, dest3);
  fx_event(&f, "Bounce", "Transient/General", "2026-04-08T03:00:00.000Z", b, dest3);
  ASSERT_INT_EQ(fx_get(&f, "edge@example.com").found, 1);
  fx_close(&f);
  /* limit 0 turns the rule off */
  ASSERT_INT_EQ(fx_open(&f, 0, 7), 0);
  for (int i = 0; i < 5; i++)
    fx_event(&f, "Bounce", "Transient/General", "2026-03-01T00:00:00.000Z", a, dest3);
  ASSERT_INT_EQ(fx_get(&f, "soft@example.com").found, 0);
  fx_close(&f);
  return 0;
}

static int t_complaints(void) {
  fixture f;
  ASSERT_INT_EQ(fx_open(&f, 3, 7), 0);
  ASSERT_INT_EQ(fx_event(&f, "Complaint", "abuse", "2026-03-01T00:00:00.000Z",
                         "[\"richard@example.com\"]", dest3),
                STORE_STORED);
  struct got g = fx_get(&f, "richard@example.com");
  ASSERT_INT_EQ(g.found, 1);
  ASSERT_STR_EQ(g.reason, "COMPLAINT");
  ASSERT_INT_EQ(g.ambiguous, 0);
  ASSERT_INT_EQ(fx_get(&f, "jane@example.com").found, 0);
  /* not-spam suppresses nobody */
  ASSERT_INT_EQ(fx_event(&f, "Complaint", "not-spam", "2026-03-01T01:00:00.000Z",
                         "[\"jane@example.com\"]", dest3),
                STORE_STORED);
  ASSERT_INT_EQ(fx_get(&f, "jane@example.com").found, 0);
  /* no feedback type: a complaint all the same */
  ASSERT_INT_EQ(
      fx_event(&f, "Complaint", NULL, "2026-03-01T02:00:00.000Z", "[\"jane@example.com\"]", dest3),
      STORE_STORED);
  ASSERT_INT_EQ(fx_get(&f, "jane@example.com").found, 1);
  /* a complaint naming two recipients: both, marked ambiguous */
  ASSERT_INT_EQ(fx_event(&f, "Complaint", "abuse", "2026-03-01T03:00:00.000Z",
                         "[\"mary@example.com\",\"bob@example.com\"]",
                         "[\"mary@example.com\",\"bob@example.com\",\"zed@example.com\"]"),
                STORE_STORED);
  ASSERT_INT_EQ(fx_get(&f, "mary@example.com").ambiguous, 1);
  ASSERT_INT_EQ(fx_get(&f, "bob@example.com").ambiguous, 1);
  ASSERT_INT_EQ(fx_get(&f, "zed@example.com").found, 0);
  /* a manual add over a rule entry: the reason changes, the history grows */
  ASSERT_INT_EQ(fx_manual(&f, "Mary@Example.com", SUP_MANUAL, "confirmed by phone", 0),
                SUP_UPDATED);
  g = fx_get(&f, "mary@example.com");
  ASSERT_STR_EQ(g.reason, "MANUAL");
  ASSERT_INT_EQ(g.ambiguous, 0);
  ASSERT_INT_EQ(fx_count(&f,
                         "SELECT count(*) FROM suppression_history WHERE address = "
                         "'mary@example.com'"),
                2);
  fx_close(&f);
  return 0;
}

static int t_manual_and_json(void) {
  fixture f;
  ASSERT_INT_EQ(fx_open(&f, 3, 7), 0);
  ASSERT_INT_EQ(fx_manual(&f, "Someone@Example.org", SUP_MANUAL, "asked \"stop\"", 0), SUP_ADDED);
  ASSERT_INT_EQ(fx_manual(&f, "someone@example.org", SUP_COMPLAINT, NULL, 0), SUP_UPDATED);
  ASSERT_INT_EQ(fx_manual(&f, "not an address", SUP_MANUAL, NULL, 0), -1);
  buf b;
  buf_init(&b, 1 << 16);
  ASSERT_INT_EQ(suppression_entry_json(f.rd, "SOMEONE@example.org", &b), 0);
  ASSERT_TRUE(strstr(b.data, "\"address\":\"Someone@Example.org\"") != NULL);
  ASSERT_TRUE(strstr(b.data, "\"reason\":\"COMPLAINT\"") != NULL);
  ASSERT_TRUE(strstr(b.data, "\"note\":\"asked \\\"stop\\\"\"") != NULL); /* note kept */
  ASSERT_TRUE(strstr(b.data, "\"lastEventAt\":null,\"events\":0,\"messageId\":null") != NULL);
  buf_reset(&b);
  ASSERT_INT_EQ(suppression_entry_json(f.rd, "nobody@example.org", &b), 0);
  ASSERT_STR_EQ(b.data, "null");
  buf_reset(&b);
  ASSERT_INT_EQ(suppression_entry_json(f.rd, "garbage", &b), 0);
  ASSERT_STR_EQ(b.data, "null");
  ASSERT_INT_EQ(fx_manual(&f, "someone@EXAMPLE.org", 0, "done", 1), SUP_REMOVED);
  ASSERT_INT_EQ(fx_manual(&f, "someone@example.org", 0, NULL, 1), SUP_ABSENT);
  buf_reset(&b);
  ASSERT_INT_EQ(suppression_history_json(f.rd, "someone@example.org", 10, &b), 0);
  /* newest first; kept after the removal */
  ASSERT_TRUE(strncmp(b.data, "[{\"at\":", 7) == 0);
  const char *rm = strstr(b.data, "\"action\":\"removed\"");
  const char *up = strstr(b.data, "\"action\":\"updated\"");
  const char *ad = strstr(b.data, "\"action\":\"added\"");
  ASSERT_TRUE(rm && up && ad && rm < up && up < ad);
  ASSERT_TRUE(strstr(b.data, "\"actor\":\"cli\"") != NULL);
  buf_free(&b);
  fx_close(&f);
  return 0;
}

/* One event naming an address twice: the entry is added, then updated by
 * the same event; the implicit "added" row is written before the update's,
 * with the values of the addition. */
static int t_added_row_same_event(void) {
  fixture f;
  ASSERT_INT_EQ(fx_open(&f, 3, 7), 0);
  ASSERT_INT_EQ(fx_event(&f, "Bounce", "Permanent/General", "2026-03-01T10:00:00.000Z",
                         "[\"ann@example.com\",\"ANN@example.com\"]", dest3),
                STORE_STORED);
  ASSERT_INT_EQ(fx_get(&f, "ann@example.com").events, 2);
  ASSERT_INT_EQ(fx_count(&f,
                         "SELECT count(*) FROM suppression_history WHERE address = "
                         "'ann@example.com' AND action = 'added' AND id = 1 AND eventAt IS NOT "
                         "NULL AND actor = 'permanent-bounce' AND reason = 'BOUNCE'"),
                1);
  ASSERT_INT_EQ(fx_count(&f,
                         "SELECT count(*) FROM suppression_history WHERE id = 2 AND action = "
                         "'updated' AND at = (SELECT at FROM suppression_history WHERE id = 1)"),
                1);
  ASSERT_INT_EQ(fx_count(&f, "SELECT count(*) FROM suppression_history_full"), 2);
  buf b;
  buf_init(&b, 1 << 16);
  ASSERT_INT_EQ(suppression_history_json(f.rd, "ann@example.com", 1, &b), 0);
  ASSERT_TRUE(strstr(b.data, "\"action\":\"updated\"") != NULL); /* the newest, alone */
  ASSERT_TRUE(strstr(b.data, "\"action\":\"added\"") == NULL);
  /* a manual add: implicit, and the JSON shows it, newest first, within max */
  ASSERT_INT_EQ(fx_manual(&f, "bob@example.com", SUP_MANUAL, "asked", 0), SUP_ADDED);
  ASSERT_INT_EQ(fx_manual(&f, "bob@example.com", SUP_MANUAL, "gone", 1), SUP_REMOVED);
  ASSERT_INT_EQ(fx_manual(&f, "bob@example.com", SUP_MANUAL, "again", 0), SUP_ADDED);
  buf_reset(&b);
  ASSERT_INT_EQ(suppression_history_json(f.rd, "bob@example.com", 2, &b), 0);
  const char *again = strstr(b.data, "\"note\":\"again\"");
  const char *gone = strstr(b.data, "\"note\":\"gone\"");
  ASSERT_TRUE(again && gone && again < gone);
  ASSERT_TRUE(strstr(b.data, "\"note\":\"asked\"") == NULL); /* beyond max */
  ASSERT_INT_EQ(fx_count(&f,
                         "SELECT count(*) FROM suppression_history WHERE address = "
                         "'bob@example.com'"),
                2);
  buf_free(&b);
  fx_close(&f);
  return 0;
}

static int collect(void *ud, const struct suppression_row *r) {
  buf *b = ud;
  return buf_printf(b, "%s ", r->address);
}

static int t_list_filters(void) {
  fixture f;
  ASSERT_INT_EQ(fx_open(&f, 3, 7), 0);
  fx_manual(&f, "a@one.com", SUP_MANUAL, NULL, 0);
  fx_manual(&f, "b@two.com", SUP_BOUNCE, NULL, 0);
  fx_manual(&f, "cab@one.com", SUP_COMPLAINT, NULL, 0);
  buf b;
  buf_init(&b, 4096);
  struct suppression_filter flt = {.reason = -1};
  ASSERT_INT_EQ(suppression_list(f.rd, &flt, collect, &b), 0);
  ASSERT_STR_EQ(b.data, "cab@one.com b@two.com a@one.com "); /* newest first */
  buf_reset(&b);
  flt.domain = "one.com";
  ASSERT_INT_EQ(suppression_list(f.rd, &flt, collect, &b), 0);
  ASSERT_STR_EQ(b.data, "cab@one.com a@one.com ");
  buf_reset(&b);
  flt = (struct suppression_filter){.reason = SUP_BOUNCE};
  ASSERT_INT_EQ(suppression_list(f.rd, &flt, collect, &b), 0);
  ASSERT_STR_EQ(b.data, "b@two.com ");
  buf_reset(&b);
  flt = (struct suppression_filter){.reason = -1, .search = "ab@"};
  ASSERT_INT_EQ(suppression_list(f.rd, &flt, collect, &b), 0);
  ASSERT_STR_EQ(b.data, "cab@one.com ");
  buf_reset(&b);
  flt = (struct suppression_filter){.reason = -1, .limit = 1, .before_id = 3};
  ASSERT_INT_EQ(suppression_list(f.rd, &flt, collect, &b), 0);
  ASSERT_STR_EQ(b.data, "b@two.com ");
  buf_free(&b);
  fx_close(&f);
  return 0;
}

const struct unit_test suppression_tests[] = {
    {"address_check", t_address_check},
    {"address_fold", t_address_fold},
    {"address_odd_domain", t_address_odd_domain},
    {"reason_names", t_reason_names},
    {"csv_line", t_csv_line},
    {"permanent_bounce_only_affected", t_permanent_bounce_only_affected},
    {"other_events_do_nothing", t_other_events_do_nothing},
    {"store_closes_alone", t_store_closes_alone},
    {"soft_bounces", t_soft_bounces},
    {"complaints", t_complaints},
    {"manual_and_json", t_manual_and_json},
    {"added_row_same_event", t_added_row_same_event},
    {"list_filters", t_list_filters},
    {0},
};
