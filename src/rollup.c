/* rollup.c - the grouped-count rollups, summed per batch by the writer
 * (see rollup.h). */
#include "rollup.h"

#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "error.h"
#include "event_fields.h"
#include "query.h"
#include "util.h"

#define SUM_CAP 1024   /* keys of one table summed before they are written */
#define SUM_SLOTS 2048 /* hash slots of one table: a power of two, twice SUM_CAP */
#define SUM_FIELDS 5   /* key fields of a table at most */

/* One key's sum: its fields, each ending in NUL, one after the other. */
struct sum {
  uint64_t hash;
  int64_t n;
  char *key;
  size_t len;
};

/* The sums of one rollup table and the statement that adds them to it. */
struct sums {
  sqlite3_stmt *upsert; /* the key's fields, then the count */
  int n_fields;
  int n;
  struct sum e[SUM_CAP];
  uint16_t slot[SUM_SLOTS]; /* index in e + 1; 0: free */
};

enum { T_TYPE_HOUR, T_DIAG_HOUR, T_DOMAIN_DAY, T_RCPT_DAY, T_RCPT_HOUR, T_N };

struct rollup_batch {
  sqlite3 *db;
  struct sums t[T_N];
};

/* The rollup tables in the order of the enum: an upsert each, the key's
 * fields first. */
static const struct {
  const char *sql;
  int n_fields;
} tables[T_N] = {
    {"INSERT INTO rollup_type_hour (hour, notificationType, bounceType, bounceSubType, source, "
     "events) VALUES (?,?,?,?,?,?) ON CONFLICT DO UPDATE SET events = events + excluded.events",
     5},
    {"INSERT INTO rollup_diagnostic_hour (hour, notificationType, bounceType, bounceSubType, "
     "diagnostic, events) VALUES (?,?,?,?,?,?) ON CONFLICT DO UPDATE SET events = events + "
     "excluded.events",
     5},
    {"INSERT INTO rollup_domain_day (notificationType, day, domain, bounceType, recipients) "
     "VALUES (?,?,?,?,?) ON CONFLICT DO UPDATE SET recipients = recipients + excluded.recipients",
     4},
    {"INSERT INTO rollup_recipient_day (day, domain, recipients) VALUES (?,?,?) "
     "ON CONFLICT DO UPDATE SET recipients = recipients + excluded.recipients",
     2},
    {"INSERT INTO rollup_recipient_hour (hour, domain, recipients) VALUES (?,?,?) "
     "ON CONFLICT DO UPDATE SET recipients = recipients + excluded.recipients",
     2},
};

/* The deleted row's diagnostic, stored whole or empty (schema version 20). */
#define OLD_DIAG EF_SQL_READ_DIAGNOSTIC("OLD.")

int rollup_attach(sqlite3 *db) {
  if (query_register_functions(db)) return SL_EDB;
  /* TEMP: the sqlite3 shell, which has no seslog_diag, must still be able
   * to delete rows (it then leaves this one rollup counting them). */
  return sqlite3_exec(db,
                      "CREATE TEMP TRIGGER IF NOT EXISTS \"rollup_diagnostic_hour-delete\" "
                      "AFTER DELETE ON main.SesEventMessages BEGIN "
                      "UPDATE rollup_diagnostic_hour SET events = events - 1 "
                      "WHERE hour = substr(OLD.timeStamp, 1, 13) "
                      "AND notificationType = OLD.notificationType "
                      "AND bounceType = coalesce(OLD.bounceType, '') "
                      "AND bounceSubType = coalesce(OLD.bounceSubType, '') "
                      "AND diagnostic = coalesce(seslog_diag(" OLD_DIAG "), ''); END",
                      NULL, NULL, NULL) == SQLITE_OK
             ? 0
             : SL_EDB;
}

int rollup_open(sqlite3 *db, rollup_batch **out, char *err, size_t errlen) {
  rollup_batch *b = calloc(1, sizeof *b);
  if (!b) {
    snprintf(err, errlen, "no memory for the rollups");
    return SL_ENOMEM;
  }
  b->db = db;
  int rc = rollup_attach(db);
  for (int i = 0; i < T_N && !rc; i++) {
    b->t[i].n_fields = tables[i].n_fields;
    if (sqlite3_prepare_v3(db, tables[i].sql, -1, SQLITE_PREPARE_PERSISTENT, &b->t[i].upsert,
                           NULL) != SQLITE_OK)
      rc = SL_EDB;
  }
  if (rc) {
    snprintf(err, errlen, "cannot prepare the rollups: %s", sqlite3_errmsg(db));
    rollup_close(b);
    return rc;
  }
  *out = b;
  return 0;
}

/* Forgets the sums of t. */
static void sums_clear(struct sums *t) {
  for (int i = 0; i < t->n; i++) free(t->e[i].key);
  t->n = 0;
  memset(t->slot, 0, sizeof t->slot);
}

/* Adds the sums of t to its table and forgets them. Returns 0 or SL_EDB. */
static int sums_write(struct sums *t) {
  int err = 0;
  for (int i = 0; i < t->n && !err; i++) {
    const char *f = t->e[i].key;
    for (int k = 0; k < t->n_fields; k++) {
      sqlite3_bind_text(t->upsert, k + 1, f, -1, SQLITE_STATIC);
      f += strlen(f) + 1;
    }
    sqlite3_bind_int64(t->upsert, t->n_fields + 1, t->e[i].n);
    if (sqlite3_step(t->upsert) != SQLITE_DONE) err = SL_EDB;
    sqlite3_reset(t->upsert);
  }
  sqlite3_clear_bindings(t->upsert);
  sums_clear(t);
  return err;
}

/* Adds n to the sum of the key made of t->n_fields fields (NULL: '').
 * Returns 0, SL_ENOMEM or SL_EDB. */
static int sums_add(struct sums *t, const char *const *fields, int64_t n) {
  size_t len = 0, flen[SUM_FIELDS];
  for (int k = 0; k < t->n_fields; k++) {
    flen[k] = fields[k] ? strlen(fields[k]) : 0;
    len += flen[k] + 1;
  }
  /* Most keys are short and already summed: built on the stack, copied
   * to the heap only when new. */
  char stack_key[256];
  char *key = len <= sizeof stack_key ? stack_key : malloc(len);
  if (!key) return SL_ENOMEM;
  uint64_t h = 1469598103934665603ULL; /* FNV-1a */
  size_t at = 0;
  for (int k = 0; k < t->n_fields; k++) {
    if (flen[k]) memcpy(key + at, fields[k], flen[k]);
    at += flen[k];
    key[at++] = 0;
  }
  for (size_t i = 0; i < len; i++) h = (h ^ (unsigned char)key[i]) * 1099511628211ULL;
  for (int pass = 0; pass < 2; pass++) {
    size_t i = h & (SUM_SLOTS - 1);
    for (; t->slot[i]; i = (i + 1) & (SUM_SLOTS - 1)) {
      struct sum *s = &t->e[t->slot[i] - 1];
      if (s->hash == h && s->len == len && memcmp(s->key, key, len) == 0) {
        s->n += n;
        if (key != stack_key) free(key);
        return 0;
      }
    }
    if (t->n < SUM_CAP) {
      if (key == stack_key) {
        key = malloc(len);
        if (!key) return SL_ENOMEM;
        memcpy(key, stack_key, len);
      }
      t->e[t->n] = (struct sum){.hash = h, .n = n, .key = key, .len = len};
      t->slot[i] = (uint16_t)(++t->n);
      return 0;
    }
    int rc = sums_write(t); /* full: write what was summed, then start again */
    if (rc) {
      if (key != stack_key) free(key);
      return rc;
    }
  }
  if (key != stack_key) free(key);
  return SL_EDB; /* not reached: an empty table has room */
}

/* The first n bytes of s (all of it when shorter), in out (size cap). */
static const char *prefix(const char *s, size_t n, char *out, size_t cap) {
  snprintf(out, cap, "%.*s", (int)n, s ? s : "");
  return out;
}

/* 1 when recipient i of e folds (ASCII lower case) to the same address as
 * an earlier one: the recipients table keeps one row of the two. */
static int seen_before(const ses_event *e, size_t i) {
  for (size_t j = 0; j < i; j++)
    if (strcasecmp(e->recipients[j], e->recipients[i]) == 0) return 1;
  return 0;
}

int rollup_add(rollup_batch *b, const ses_event *e) {
  char hour[16], day[16], diag[128] = "";
  prefix(e->time_stamp, 13, hour, sizeof hour);
  prefix(e->time_stamp, 10, day, sizeof day);
  if (e->diagnostic) query_diagnostic_key(e->diagnostic, diag, sizeof diag);
  const char *type = e->notification_type;
  const char *type_hour[] = {hour, type, e->bounce_type, e->bounce_sub_type, e->source};
  const char *diag_hour[] = {hour, type, e->bounce_type, e->bounce_sub_type, diag};
  int rc = sums_add(&b->t[T_TYPE_HOUR], type_hour, 1);
  if (!rc) rc = sums_add(&b->t[T_DIAG_HOUR], diag_hour, 1);
  for (size_t i = 0; i < e->n_recipients && !rc; i++) {
    if (seen_before(e, i)) continue;
    const char *at = strrchr(e->recipients[i], '@');
    const char *from = at ? at + 1 : "";
    char stack_domain[256]; /* a domain is at most 255 bytes; a longer one: the heap */
    size_t dlen = strlen(from);
    char *domain = dlen < sizeof stack_domain ? stack_domain : malloc(dlen + 1);
    if (!domain) return SL_ENOMEM;
    memcpy(domain, from, dlen + 1);
    util_ascii_lower(domain);
    const char *domain_day[] = {type, day, domain, e->bounce_type};
    const char *rcpt_day[] = {day, domain}, *rcpt_hour[] = {hour, domain};
    rc = sums_add(&b->t[T_DOMAIN_DAY], domain_day, 1);
    if (!rc) rc = sums_add(&b->t[T_RCPT_DAY], rcpt_day, 1);
    if (!rc) rc = sums_add(&b->t[T_RCPT_HOUR], rcpt_hour, 1);
    if (domain != stack_domain) free(domain);
  }
  return rc;
}

int rollup_flush(rollup_batch *b) {
  int rc = 0;
  for (int i = 0; i < T_N && !rc; i++) rc = sums_write(&b->t[i]);
  return rc;
}

void rollup_reset(rollup_batch *b) {
  for (int i = 0; i < T_N; i++) sums_clear(&b->t[i]);
}

void rollup_close(rollup_batch *b) {
  if (!b) return;
  for (int i = 0; i < T_N; i++) {
    sums_clear(&b->t[i]);
    sqlite3_finalize(b->t[i].upsert);
  }
  free(b);
}
