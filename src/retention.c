/* retention.c - background deletion of expired events. */
#include "retention.h"

#include <cjson/cJSON.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "event_fields.h"
#include "log.h"
#include "query.h"
#include "suppression.h"
#include "util.h"

#define BATCH 500 /* events deleted in one writer transaction */

static const char *const known_types[] = {
    "Bounce", "Complaint", "Delivery",          "Send",          "Reject",
    "Open",   "Click",     "Rendering Failure", "DeliveryDelay", "Subscription"};

struct retention {
  uv_loop_t *loop;
  store *st;
  struct retention_rules rules;
  int64_t interval_ms;
  uv_timer_t timer;
  int busy; /* a request is with the writer */
  int closing;
  int64_t deleted;
};

int retention_parse(const char *spec, struct retention_rules *out, char *err, size_t errlen) {
  struct retention_rules r = {0};
  const char *p = spec;
  while (p && *p) {
    const char *comma = strchr(p, ',');
    size_t len = comma ? (size_t)(comma - p) : strlen(p);
    const char *eq = memchr(p, '=', len);
    if (!eq || eq == p || r.n == RETENTION_MAX_RULES) {
      snprintf(err, errlen, "expected TYPE=DURATION[,TYPE=DURATION...], e.g. Open=30d,Click=30d");
      return SL_EINVAL;
    }
    size_t tl = (size_t)(eq - p);
    char type[32], dur[32];
    if (tl >= sizeof type || len - tl - 1 >= sizeof dur) {
      snprintf(err, errlen, "a rule is too long: %.*s", (int)len, p);
      return SL_EINVAL;
    }
    memcpy(type, p, tl);
    type[tl] = 0;
    memcpy(dur, eq + 1, len - tl - 1);
    dur[len - tl - 1] = 0;
    int known = 0;
    for (size_t i = 0; i < sizeof known_types / sizeof known_types[0]; i++)
      known |= strcmp(type, known_types[i]) == 0;
    if (!known) {
      snprintf(err, errlen,
               "unknown event type \"%s\" (Bounce, Complaint, Delivery, Send, Reject, Open, Click, "
               "Rendering Failure, DeliveryDelay, Subscription)",
               type);
      return SL_EINVAL;
    }
    int64_t ms;
    if (util_parse_duration(dur, &ms) || ms <= 0) {
      snprintf(err, errlen, "\"%s\" is not a duration like 30d", dur);
      return SL_EINVAL;
    }
    snprintf(r.r[r.n].type, sizeof r.r[r.n].type, "%s", type);
    r.r[r.n].keep_ms = ms;
    r.n++;
    p = comma ? comma + 1 : NULL;
  }
  r.default_ms = out->default_ms;
  *out = r;
  return 0;
}

int retention_new(uv_loop_t *loop, store *st, const struct retention_rules *rules,
                  int64_t interval_ms, retention **out) {
  retention *r = calloc(1, sizeof *r);
  if (!r) return SL_ENOMEM;
  r->loop = loop;
  r->st = st;
  r->rules = *rules;
  r->interval_ms = interval_ms > 0 ? interval_ms : 60000;
  uv_timer_init(loop, &r->timer);
  r->timer.data = r;
  *out = r;
  return 0;
}

int64_t retention_deleted(const retention *r) {
  return r->deleted;
}

/* One round's request: deletes up to BATCH expired events. */
typedef struct round {
  store_req req;
  retention *ret;
  int64_t now;
  int deleted;
} round_req;

/* Deletes the events a SELECT yields (id, recipients JSON, timeStamp,
 * notificationType) and their recipients rows; a suppression entry that
 * reads its messageId and note from a bounce or complaint gets them
 * stored first. Returns how many, or SL_EDB. */
static int delete_rows(sqlite3 *db, sqlite3_stmt *sel, int limit) {
  sqlite3_stmt *del_ev = NULL, *del_rc = NULL, *keep = NULL;
  if (sqlite3_prepare_v2(db, "DELETE FROM SesEventMessages WHERE id = ?", -1, &del_ev, NULL) ||
      sqlite3_prepare_v2(
          db, "DELETE FROM recipients WHERE address = ? AND timeStamp = ? AND eventId = ?", -1,
          &del_rc, NULL) ||
      sqlite3_prepare_v2(db, suppression_keep_sql, -1, &keep, NULL)) {
    sqlite3_finalize(del_ev);
    sqlite3_finalize(del_rc);
    return SL_EDB;
  }
  int n = 0, rc;
  while (n < limit && (rc = sqlite3_step(sel)) == SQLITE_ROW) {
    int64_t id = sqlite3_column_int64(sel, 0);
    const char *rcpt = (const char *)sqlite3_column_text(sel, 1);
    const char *ts = (const char *)sqlite3_column_text(sel, 2);
    const char *type = (const char *)sqlite3_column_text(sel, 3);
    int rule_made = type && (strcmp(type, "Bounce") == 0 || strcmp(type, "Complaint") == 0);
    cJSON *arr = rcpt ? cJSON_Parse(rcpt) : NULL;
    const cJSON *a;
    int failed = 0;
    cJSON_ArrayForEach(a, arr) { /* first, before anything of the event goes */
      if (rule_made && cJSON_IsString(a) && suppression_keep_event_fields(keep, a->valuestring, id))
        failed = 1;
    }
    cJSON_ArrayForEach(a, arr) {
      if (failed) break;
      if (!cJSON_IsString(a)) continue;
      char *addr = strdup(a->valuestring);
      if (!addr) break;
      util_ascii_lower(addr);
      sqlite3_bind_text(del_rc, 1, addr, -1, SQLITE_TRANSIENT);
      int64_t ms; /* the recipients row's time (schema version 23) */
      if (query_rcpt_time(ts, &ms))
        sqlite3_bind_text(del_rc, 2, ts, -1, SQLITE_TRANSIENT);
      else
        sqlite3_bind_int64(del_rc, 2, ms);
      sqlite3_bind_int64(del_rc, 3, id);
      sqlite3_step(del_rc);
      sqlite3_reset(del_rc);
      free(addr);
    }
    cJSON_Delete(arr);
    if (failed) {
      n = SL_EDB;
      break;
    }
    sqlite3_bind_int64(del_ev, 1, id);
    int drc = sqlite3_step(del_ev);
    sqlite3_reset(del_ev);
    if (drc != SQLITE_DONE) {
      n = SL_EDB;
      break;
    }
    n++;
  }
  sqlite3_finalize(del_ev);
  sqlite3_finalize(del_rc);
  sqlite3_finalize(keep);
  return n;
}

/* A row's recipients JSON, stored whole or empty (schema version 20). */
#define RCPT EF_SQL_READ_RECIPIENTS("")

static int apply_round(store_req *req, sqlite3 *db) {
  round_req *rd = req->ud;
  const struct retention_rules *ru = &rd->ret->rules;
  int left = BATCH;
  req->result = STORE_STORED;
  for (int i = 0; i < ru->n && left > 0; i++) {
    char cutoff[25];
    util_format_iso8601(rd->now - ru->r[i].keep_ms, cutoff);
    sqlite3_stmt *sel;
    /* notificationType-timeStamp-Index finds the oldest of a type. */
    if (sqlite3_prepare_v2(db,
                           "SELECT id, " RCPT ", timeStamp, notificationType FROM SesEventMessages "
                           "WHERE notificationType = ? AND timeStamp < ? LIMIT ?",
                           -1, &sel, NULL))
      return SL_EDB;
    sqlite3_bind_text(sel, 1, ru->r[i].type, -1, SQLITE_STATIC);
    sqlite3_bind_text(sel, 2, cutoff, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(sel, 3, left);
    int n = delete_rows(db, sel, left);
    sqlite3_finalize(sel);
    if (n < 0) return SL_EDB;
    left -= n;
    rd->deleted += n;
  }
  if (ru->default_ms > 0 && left > 0) {
    /* Types with a rule of their own are left to it. "timeStamp-Index"
     * keys the time as an integer (schema version 25): the same
     * expression finds the oldest. */
    buf sql;
    buf_init(&sql, 4096);
    buf_appends(&sql, "SELECT id, " RCPT
                      ", timeStamp, notificationType FROM SesEventMessages "
                      "WHERE " QUERY_RCPT_TIME_SQL("timeStamp") " < ?");
    for (int i = 0; i < ru->n; i++) buf_appends(&sql, " AND notificationType <> ?");
    buf_appends(&sql, " LIMIT ?");
    sqlite3_stmt *sel;
    int prc = sqlite3_prepare_v2(db, sql.data, -1, &sel, NULL);
    buf_free(&sql);
    if (prc) return SL_EDB;
    sqlite3_bind_int64(sel, 1, rd->now - ru->default_ms);
    for (int i = 0; i < ru->n; i++) sqlite3_bind_text(sel, i + 2, ru->r[i].type, -1, SQLITE_STATIC);
    sqlite3_bind_int(sel, ru->n + 2, left);
    int n = delete_rows(db, sel, left);
    sqlite3_finalize(sel);
    if (n < 0) return SL_EDB;
    rd->deleted += n;
  }
  return 0;
}

static void on_tick(uv_timer_t *t);

static void on_round_done(store_req *req) {
  round_req *rd = req->ud;
  retention *r = rd->ret;
  r->busy = 0;
  int full = req->result > 0 && rd->deleted >= BATCH;
  if (req->result > 0 && rd->deleted) {
    r->deleted += rd->deleted;
    char n[24];
    snprintf(n, sizeof n, "%d", rd->deleted);
    log_kv(LOG_DEBUG, "retention: expired events deleted", "count", n, NULL);
  }
  free(rd);
  /* Full batch: more are waiting; go again soon (not at once, so that
   * event batches get the writer in between). */
  if (!r->closing && full) uv_timer_start(&r->timer, on_tick, 50, 0);
}

static void on_tick(uv_timer_t *t) {
  retention *r = t->data;
  if (r->busy || r->closing) return;
  round_req *rd = calloc(1, sizeof *rd);
  if (!rd) return;
  rd->ret = r;
  rd->now = util_now_ms();
  rd->req.ud = rd;
  rd->req.apply = apply_round;
  rd->req.cb = on_round_done;
  if (store_submit(r->st, &rd->req) == 0)
    r->busy = 1;
  else
    free(rd);
  if (!uv_is_active((uv_handle_t *)&r->timer) || uv_timer_get_repeat(&r->timer) == 0)
    uv_timer_start(&r->timer, on_tick, (uint64_t)r->interval_ms, (uint64_t)r->interval_ms);
}

void retention_start(retention *r) {
  if (!r->rules.n && !r->rules.default_ms) return;
  uv_timer_start(&r->timer, on_tick, 1000, (uint64_t)r->interval_ms);
}

void retention_close(retention *r) {
  r->closing = 1;
  uv_timer_stop(&r->timer);
  uv_close((uv_handle_t *)&r->timer, NULL);
}

void retention_free(retention *r) {
  free(r);
}
