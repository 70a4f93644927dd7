/* suppression.c - the suppression list: the store hook that applies the
 * bounce and complaint rules in each event's transaction, manual writes,
 * reads, their JSON and the bulk check. The endpoints are in
 * api_suppression.c, the address rules in address.c.
 *
 * Reading order: the writer's statements; the rules hook; manual writes;
 * reads and JSON; the bulk check. SES's CSV format is read by the CLI
 * (cmd_suppression.c). */
#include "suppression.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "address.h"
#include "error.h"
#include "log.h"
#include "ses.h"

#define DAY_MS 86400000LL
#define SOFT_ROWS_MAX 10000 /* soft bounces of one address read per event, at most */

/* Schema version 25: an entry made by a rule stores messageId NULL while
 * it is the messageId of its event (eventId), and then also note NULL
 * while the note is the one the rule derives from that event (a permanent
 * bounce's or a single-recipient complaint's; SUP_NOTE_OF). The values as
 * every reader reads them, t the table prefix ("suppression."); a manual
 * entry (eventId NULL) reads its columns as they are. An entry whose
 * messageId is stored has its note stored too (NULL: none). Retention
 * copies both into the entry before it deletes the event
 * (suppression_keep_event_fields), and a rule's update stores both. */
#define SUP_NOTE_OF(e)                                                                     \
  "CASE WHEN " e "notificationType = 'Bounce' AND " e                                      \
  "bounceType = 'Permanent' "                                                              \
  "THEN 'permanent bounce (' || coalesce(" e "bounceSubType, 'no subtype') || ')' WHEN " e \
  "notificationType = 'Complaint' THEN 'complaint (' || coalesce(" e                       \
  "complaintFeedbackType, "                                                                \
  "'no feedback type') || ')' END"
#define SUP_OF_EVENT_(col, t) "(SELECT " col " FROM SesEventMessages e WHERE e.id = " t "eventId)"
#define SUP_READ_MESSAGE_ID(t) "coalesce(" t "messageId, " SUP_OF_EVENT_("e.messageId", t) ")"
#define SUP_READ_NOTE(t)             \
  "coalesce(" t "note, CASE WHEN " t \
  "messageId IS NULL THEN " SUP_OF_EVENT_(SUP_NOTE_OF("e."), t) " END)"

/* Schema version 25: reason is stored as its code, SUP_BOUNCE (0),
 * SUP_COMPLAINT (1) or SUP_MANUAL (2); its name as readers read it from
 * the column col (any other value, only a hand edit makes one, as it is). */
#define SUP_REASON_NAME(col)                       \
  "CASE " col                                      \
  " WHEN 0 THEN 'BOUNCE' WHEN 1 THEN 'COMPLAINT' " \
  "WHEN 2 THEN 'MANUAL' ELSE " col " END"

/* Schema version 25: addedBy, the actor of an addition, is stored as its
 * code, the position in actor_names (0 and 1 take no byte in a record);
 * any other actor as its text. Its name as readers read it from col. */
#define SUP_ACTOR_NAME(col)                                  \
  "CASE " col                                                \
  " WHEN 0 THEN 'permanent-bounce' WHEN 1 THEN 'complaint' " \
  "WHEN 2 THEN 'soft-bounce' WHEN 3 THEN 'api' WHEN 4 THEN 'cli' ELSE " col " END"
static const char *const actor_names[] = {"permanent-bounce", "complaint", "soft-bounce", "api",
                                          "cli"};

/* The writer's statements, kept by the store (store_stmt). */
enum {
  W_FIND,          /* reason of an entry */
  W_RULE_UPDATE,   /* an event re-suppresses an entry */
  W_INSERT,        /* a new entry */
  W_MANUAL_UPDATE, /* a manual change of an entry */
  W_DELETE,        /* a removal */
  W_HISTORY,       /* one history row */
  W_SOFT,          /* soft bounces of an address around a time */
  W_LAST_REMOVAL,  /* the newest event id when the address was last removed */
  W_MAX_EVENT,     /* the newest event id */
  W_ADDED_ROW,     /* writes an entry's implicit "added" history row */
  W_N
};

static const char *const w_sql[W_N] = {
    [W_FIND] = "SELECT " SUP_REASON_NAME("reason") " FROM suppression WHERE address = ?1",
    /* Every right-hand side sees the row as it was: an event older than
     * the latest one counts, but does not replace the latest's fields. */
    [W_RULE_UPDATE] =
        "UPDATE suppression SET events = events + 1, "
        "reason = CASE WHEN ?2 >= coalesce(lastEventAt, ?2) THEN ?3 ELSE reason END, "
        "messageId = CASE WHEN ?2 >= coalesce(lastEventAt, ?2) THEN ?4 ELSE messageId END, "
        /* a new event: both stored, the note as read (version 25) */
        "note = CASE WHEN ?2 >= coalesce(lastEventAt, ?2) THEN " SUP_READ_NOTE(
            "suppression.") " ELSE note END, "
        "eventId = CASE WHEN ?2 >= coalesce(lastEventAt, ?2) THEN ?5 ELSE eventId END, "
        "ambiguous = CASE WHEN ?2 >= coalesce(lastEventAt, ?2) THEN ?6 ELSE ambiguous END, "
        "lastEventAt = max(coalesce(lastEventAt, ?2), ?2), addedAt = NULL, addedBy = NULL "
        "WHERE address = ?1 RETURNING " SUP_REASON_NAME("reason"),
    [W_INSERT] =
        "INSERT INTO suppression (address, id, display, oddDomain, reason, createdAt, "
        "lastEventAt, events, messageId, eventId, note, ambiguous, addedAt, addedBy) "
        "SELECT ?1, (SELECT coalesce(max(id), 0) + 1 FROM suppression), "
        "CASE WHEN ?2 = ?1 THEN '' ELSE ?2 END, ?3, ?4, ?5, ?6, ?7, "
        /* messageId and note NULL where the event gives them (version 25) */
        "CASE WHEN ?8 = x.m AND (?10 IS NOT NULL OR x.d IS NULL) THEN NULL ELSE ?8 END, ?9, "
        "CASE WHEN ?8 = x.m AND ?10 IS x.d THEN NULL ELSE ?10 END, ?11, ?12, ?13 "
        "FROM (SELECT e.messageId AS m, " SUP_NOTE_OF(
            "e.") " AS d FROM (SELECT 1) LEFT JOIN SesEventMessages e ON e.id = ?9) AS x "
        "WHERE 1 ON CONFLICT(address) DO NOTHING",
    [W_MANUAL_UPDATE] =
        "UPDATE suppression SET reason = ?2, note = coalesce(?3, note), "
        "ambiguous = 0, addedAt = NULL, addedBy = NULL WHERE address = ?1",
    [W_DELETE] =
        "DELETE FROM suppression WHERE address = ?1 RETURNING " SUP_REASON_NAME("reason"),
    [W_HISTORY] =
        "INSERT INTO suppression_history (address, at, action, actor, reason, note, "
        "messageId, eventId, eventAt) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    /* The recipients table holds each affected address lower-cased, as the
     * store wrote it, the time in ms and the type's code (0: Bounce, schema
     * version 23); a bounce without a bounceType counts as undetermined. */
    [W_SOFT] =
        "SELECT r.timeStamp FROM recipients r JOIN SesEventMessages e ON e.id = r.eventId "
        "WHERE r.address = ?1 AND r.timeStamp >= ?2 AND r.timeStamp <= ?3 "
        "AND r.notificationType = 0 AND r.eventId > ?4 "
        "AND coalesce(e.bounceType, '') <> 'Permanent' ORDER BY r.timeStamp LIMIT ?5",
    [W_LAST_REMOVAL] =
        "SELECT max(eventId) FROM suppression_history "
        "WHERE address = ?1 AND action = 'removed'",
    [W_MAX_EVENT] = "SELECT max(id) FROM SesEventMessages",
    /* While addedAt is set, the entry's fields are those the "added" row
     * was given (schema version 19): a rule gave eventAt the event's
     * timeStamp, which is lastEventAt; a manual add gave none, nor has
     * the entry a lastEventAt. */
    [W_ADDED_ROW] =
        "INSERT INTO suppression_history (address, at, action, actor, reason, note, "
        "messageId, eventId, eventAt) SELECT address, addedAt, 'added', "
        SUP_ACTOR_NAME("addedBy") ", "
        SUP_REASON_NAME("reason") ", "
        SUP_READ_NOTE("suppression.") ", " SUP_READ_MESSAGE_ID(
            "suppression.") ", eventId, lastEventAt FROM suppression "
        "WHERE address = ?1 AND addedAt IS NOT NULL",
};

struct suppression {
  struct suppression_opts o; /* copied at creation */
};

static const char *const reason_names[] = {"BOUNCE", "COMPLAINT", "MANUAL"};

static int streq(const char *a, const char *b) {
  return a && b && strcmp(a, b) == 0;
}

/* ---- reasons ----------------------------------------------------------- */

const char *suppression_reason_name(int reason) {
  return reason >= 0 && reason <= SUP_MANUAL ? reason_names[reason] : "?";
}

int suppression_reason_parse(const char *s, int *out) {
  for (int i = 0; s && i <= SUP_MANUAL; i++) {
    if (strcasecmp(s, reason_names[i]) == 0) {
      *out = i;
      return 0;
    }
  }
  return SL_EINVAL;
}

/* ---- the module ---------------------------------------------------------- */

int suppression_new(const struct suppression_opts *opts, suppression **out) {
  if (opts->soft_bounce_limit < 0 || (opts->soft_bounce_limit > 0 && opts->soft_bounce_days < 1))
    return SL_EINVAL;
  suppression *s = calloc(1, sizeof *s);
  if (!s) return SL_ENOMEM;
  s->o = *opts;
  *out = s;
  return 0;
}

void suppression_free(suppression *s) {
  if (!s) return;
  free(s);
}

/* The writer statement i (on the store's write connection, cached by the
 * store), reset and unbound, or NULL. */
static sqlite3_stmt *wstmt(store *sto, int i) {
  sqlite3_stmt *st = store_stmt(sto, w_sql[i]);
  if (!st) return NULL;
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
  return st;
}

static void bind_text(sqlite3_stmt *st, int i, const char *v) {
  if (v)
    sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT);
  else
    sqlite3_bind_null(st, i);
}

/* Binds actor as addedBy stores it: its code, or its text. */
static void bind_actor(sqlite3_stmt *st, int i, const char *actor) {
  for (int k = 0; k < (int)(sizeof actor_names / sizeof actor_names[0]); k++) {
    if (streq(actor, actor_names[k])) {
      sqlite3_bind_int(st, i, k);
      return;
    }
  }
  bind_text(st, i, actor);
}

/* Steps a statement that returns no row (or ignores it). */
static int step_done(sqlite3_stmt *st) {
  int rc = sqlite3_step(st);
  while (rc == SQLITE_ROW) rc = sqlite3_step(st);
  sqlite3_reset(st);
  return rc == SQLITE_DONE ? 0 : SL_EDB;
}

/* One history row. */
struct hist {
  const char *folded, *action, *actor, *reason, *note, *message_id;
  int64_t at, event_id, event_at; /* 0: NULL */
};

static int add_history(suppression *s, store *sto, const struct hist *h) {
  sqlite3_stmt *st = wstmt(sto, W_HISTORY);
  if (!st) return SL_EDB;
  bind_text(st, 1, h->folded);
  sqlite3_bind_int64(st, 2, h->at);
  bind_text(st, 3, h->action);
  bind_text(st, 4, h->actor);
  bind_text(st, 5, h->reason);
  bind_text(st, 6, h->note);
  bind_text(st, 7, h->message_id);
  if (h->event_id) sqlite3_bind_int64(st, 8, h->event_id);
  if (h->event_at) sqlite3_bind_int64(st, 9, h->event_at);
  return step_done(st);
}

/* Writes the implicit "added" history row of the entry of folded, if it
 * has one still unwritten; the caller then changes or removes the entry
 * (every such statement clears addedAt). Call it before any change. */
static int write_added_row(store *sto, const char *folded) {
  sqlite3_stmt *st = wstmt(sto, W_ADDED_ROW);
  if (!st) return SL_EDB;
  bind_text(st, 1, folded);
  return step_done(st);
}

/* Inserts a new entry, added at now by actor: its "added" history row
 * stays implicit until the entry's first change (write_added_row), so
 * the entry's fields must be the row's (the note, messageId and eventId
 * it would have had; last_event_at its eventAt). last_event_at 0: no
 * event. *inserted 0: folded has an entry already, left as it was. */
static int insert_entry(suppression *s, store *sto, const char *folded, const char *display,
                        int reason, int64_t created_at, int64_t last_event_at, int events,
                        const char *message_id, int64_t event_id, const char *note, int ambiguous,
                        int64_t now, const char *actor, int *inserted) {
  *inserted = 0;
  if (!actor) return SL_EDB; /* as suppression_history's NOT NULL actor would refuse it */
  sqlite3_stmt *st = wstmt(sto, W_INSERT);
  if (!st) return SL_EDB;
  bind_text(st, 1, folded);
  bind_text(st, 2, display);
  bind_text(st, 3, address_odd_domain(folded)); /* NULL: a checked address has one '@' */
  sqlite3_bind_int(st, 4, reason);
  sqlite3_bind_int64(st, 5, created_at);
  if (last_event_at) sqlite3_bind_int64(st, 6, last_event_at);
  sqlite3_bind_int(st, 7, events);
  bind_text(st, 8, message_id);
  if (event_id) sqlite3_bind_int64(st, 9, event_id);
  bind_text(st, 10, note);
  sqlite3_bind_int(st, 11, ambiguous);
  sqlite3_bind_int64(st, 12, now);
  bind_actor(st, 13, actor);
  if (step_done(st)) return SL_EDB;
  *inserted = sqlite3_changes(sqlite3_db_handle(st)) > 0;
  return 0;
}

/* ---- the rules hook ------------------------------------------------------ */

/* Suppresses one affected recipient of event e by rule actor: updates an
 * existing entry or inserts one, and records the change (an addition is
 * recorded by the entry itself). */
static int rule_suppress(suppression *s, store *sto, const ses_event *e, int64_t event_id,
                         int64_t now, const char *recipient, int reason, const char *actor,
                         const char *note, int ambiguous) {
  char display[SUPPRESSION_ADDRESS_MAX + 2], folded[SUPPRESSION_ADDRESS_MAX + 1];
  const char *why;
  address_unwrap(recipient, display);
  if (address_fold(display, folded, sizeof folded, &why)) {
    log_kv(LOG_WARN, "suppression: an affected recipient is not a usable address; not suppressed",
           "messageId", e->message_id, "why", why, NULL);
    return 0;
  }
  /* A new address (most affected recipients) costs the INSERT alone; for
   * a listed one it changes nothing, and the entry is updated below. */
  int inserted;
  if (insert_entry(s, sto, folded, display, reason, e->ts_ms, e->ts_ms, 1, e->message_id, event_id,
                   note, ambiguous, now, actor, &inserted))
    return SL_EDB;
  if (inserted) return 0;
  if (write_added_row(sto, folded)) return SL_EDB;
  sqlite3_stmt *st = wstmt(sto, W_RULE_UPDATE);
  if (!st) return SL_EDB;
  bind_text(st, 1, folded);
  sqlite3_bind_int64(st, 2, e->ts_ms);
  sqlite3_bind_int(st, 3, reason);
  bind_text(st, 4, e->message_id);
  sqlite3_bind_int64(st, 5, event_id);
  sqlite3_bind_int(st, 6, ambiguous);
  int rc = sqlite3_step(st);
  int existed = rc == SQLITE_ROW;
  char now_reason[16] = "";
  if (existed) snprintf(now_reason, sizeof now_reason, "%s", sqlite3_column_text(st, 0));
  if (step_done(st)) return SL_EDB;
  if (!existed) return SL_EDB; /* the INSERT above found the entry */
  struct hist h = {.folded = folded,
                   .action = "updated",
                   .actor = actor,
                   .reason = now_reason,
                   .note = note,
                   .message_id = e->message_id,
                   .at = now,
                   .event_id = event_id,
                   .event_at = e->ts_ms};
  return add_history(s, sto, &h);
}

/* The soft-bounce rule for one recipient of a transient or undetermined
 * bounce: does a window of soft_bounce_days that contains this event hold
 * soft_bounce_limit such bounces (this one included)? Bounces stored before
 * the address was last removed from the list do not count: a removal gives
 * the address a fresh start. Sets *count to the most found in one window. */
static int soft_count(suppression *s, store *sto, const ses_event *e, const char *recipient,
                      int *count) {
  char key[SUPPRESSION_ADDRESS_MAX * 2];
  snprintf(key, sizeof key, "%s", recipient);
  util_ascii_lower(key); /* as the store wrote it into recipients */
  sqlite3_stmt *st = wstmt(sto, W_LAST_REMOVAL);
  if (!st) return SL_EDB;
  char display[SUPPRESSION_ADDRESS_MAX + 2], folded[SUPPRESSION_ADDRESS_MAX + 1];
  address_unwrap(recipient, display);
  int64_t removed_at_event = 0;
  if (!address_fold(display, folded, sizeof folded, NULL)) {
    bind_text(st, 1, folded);
    if (sqlite3_step(st) == SQLITE_ROW) removed_at_event = sqlite3_column_int64(st, 0);
    if (step_done(st)) return SL_EDB;
  }
  int64_t win = (int64_t)s->o.soft_bounce_days * DAY_MS;
  st = wstmt(sto, W_SOFT);
  if (!st) return SL_EDB;
  bind_text(st, 1, key);
  sqlite3_bind_int64(st, 2, e->ts_ms - win);
  sqlite3_bind_int64(st, 3, e->ts_ms + win);
  sqlite3_bind_int64(st, 4, removed_at_event);
  sqlite3_bind_int(st, 5, SOFT_ROWS_MAX);
  int64_t *t = NULL;
  size_t n = 0, cap = 0;
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    int64_t ms = sqlite3_column_int64(st, 0); /* an integer: in the range bound */
    if (n == cap) {
      size_t ncap = cap ? cap * 2 : 16;
      int64_t *nt = realloc(t, ncap * sizeof *t);
      if (!nt) {
        free(t);
        sqlite3_reset(st);
        return SL_EDB;
      }
      t = nt;
      cap = ncap;
    }
    t[n++] = ms;
  }
  sqlite3_reset(st);
  if (rc != SQLITE_DONE) {
    free(t);
    return SL_EDB;
  }
  /* Rows are in time order: slide a window [t[i], t[i] + win] over them
   * and count, among the windows that contain this event, the fullest. */
  int best = 0;
  for (size_t i = 0, j = 0; i < n; i++) {
    if (t[i] > e->ts_ms) break;
    if (j < i) j = i;
    while (j + 1 < n && t[j + 1] - t[i] <= win) j++;
    if (t[j] >= e->ts_ms && (int)(j - i + 1) > best) best = (int)(j - i + 1);
  }
  free(t);
  *count = best;
  return 0;
}

/* The store hook: called by the writer for every new event, inside its
 * transaction. Events other than bounces and complaints cost two byte
 * comparisons and no SQL. */
static int on_event(void *ud, store *sto, const ses_event *e, int64_t event_id, int64_t now) {
  suppression *s = ud;
  const char *t = e->notification_type;
  if (!t || (t[0] != 'B' && t[0] != 'C')) return 0;
  if (ses_is_bounce(e)) {
    if (streq(e->bounce_type, "Permanent")) {
      char note[128];
      snprintf(note, sizeof note, "permanent bounce (%s)",
               e->bounce_sub_type ? e->bounce_sub_type : "no subtype");
      for (size_t i = 0; i < e->n_recipients; i++)
        if (rule_suppress(s, sto, e, event_id, now, e->recipients[i], SUP_BOUNCE,
                          "permanent-bounce", note, 0))
          return SL_EDB;
      return 0;
    }
    if (s->o.soft_bounce_limit <= 0) return 0;
    for (size_t i = 0; i < e->n_recipients; i++) {
      int count = 0;
      if (soft_count(s, sto, e, e->recipients[i], &count)) return SL_EDB;
      if (count < s->o.soft_bounce_limit) continue;
      char note[128];
      snprintf(note, sizeof note, "%d soft bounces within %d days", count, s->o.soft_bounce_days);
      if (rule_suppress(s, sto, e, event_id, now, e->recipients[i], SUP_BOUNCE, "soft-bounce", note,
                        0))
        return SL_EDB;
    }
    return 0;
  }
  if (ses_is_complaint(e)) {
    if (e->complaint_feedback_type && strcasecmp(e->complaint_feedback_type, "not-spam") == 0)
      return 0;
    int ambiguous = e->n_recipients > 1;
    char note[128];
    if (ambiguous)
      snprintf(note, sizeof note, "complaint (%s) naming %zu recipients: SES may have guessed",
               e->complaint_feedback_type ? e->complaint_feedback_type : "no feedback type",
               e->n_recipients);
    else
      snprintf(note, sizeof note, "complaint (%s)",
               e->complaint_feedback_type ? e->complaint_feedback_type : "no feedback type");
    for (size_t i = 0; i < e->n_recipients; i++)
      if (rule_suppress(s, sto, e, event_id, now, e->recipients[i], SUP_COMPLAINT, "complaint",
                        note, ambiguous))
        return SL_EDB;
  }
  return 0;
}

void suppression_hook(suppression *s, struct store_hook *h) {
  memset(h, 0, sizeof *h);
  h->on_event = on_event;
  h->ud = s;
}

/* Stores the values read from the event (SUP_READ_*) into the entry. */
#define SUP_KEEP_SET \
  "messageId = " SUP_READ_MESSAGE_ID("suppression.") ", note = " SUP_READ_NOTE("suppression.")
const char suppression_keep_sql[] = "UPDATE suppression SET " SUP_KEEP_SET
                                    " WHERE address = ?1 AND eventId = ?2 AND messageId IS NULL";

int suppression_keep_event_fields(sqlite3_stmt *st, const char *recipient, int64_t event_id) {
  char display[SUPPRESSION_ADDRESS_MAX + 2], folded[SUPPRESSION_ADDRESS_MAX + 1];
  address_unwrap(recipient, display);
  if (address_fold(display, folded, sizeof folded, NULL)) return 0; /* never listed by a rule */
  sqlite3_reset(st);
  bind_text(st, 1, folded);
  sqlite3_bind_int64(st, 2, event_id);
  return step_done(st);
}

/* ---- manual writes ------------------------------------------------------- */

/* The reason of the entry of folded into out, *found 1; or *found 0. */
static int find_entry(suppression *s, store *sto, const char *folded, char out[16], int *found) {
  sqlite3_stmt *st = wstmt(sto, W_FIND);
  if (!st) return SL_EDB;
  bind_text(st, 1, folded);
  int rc = sqlite3_step(st);
  *found = rc == SQLITE_ROW;
  if (*found) snprintf(out, 16, "%s", sqlite3_column_text(st, 0));
  return step_done(st);
}

int suppression_put(suppression *s, store *sto, const struct suppression_change *c, int64_t now,
                    int *outcome) {
  char folded[SUPPRESSION_ADDRESS_MAX + 1];
  if (address_fold(c->address, folded, sizeof folded, NULL)) return SL_EINVAL;
  if (c->reason < 0 || c->reason > SUP_MANUAL) return SL_EINVAL;
  char old[16];
  int found;
  if (find_entry(s, sto, folded, old, &found)) return SL_EDB;
  if (found && c->keep_existing) {
    *outcome = SUP_UNCHANGED;
    return 0;
  }
  if (!found) {
    int inserted;
    int rc = insert_entry(s, sto, folded, c->address, c->reason, now, 0, 0, NULL, 0, c->note, 0,
                          now, c->actor, &inserted);
    if (rc) return rc;
    if (!inserted) return SL_EDB; /* not found above: cannot be */
    *outcome = SUP_ADDED;
    return 0;
  }
  if (write_added_row(sto, folded)) return SL_EDB;
  sqlite3_stmt *st = wstmt(sto, W_MANUAL_UPDATE);
  if (!st) return SL_EDB;
  bind_text(st, 1, folded);
  sqlite3_bind_int(st, 2, c->reason);
  bind_text(st, 3, c->note);
  if (step_done(st)) return SL_EDB;
  struct hist h = {.folded = folded,
                   .action = "updated",
                   .actor = c->actor,
                   .reason = suppression_reason_name(c->reason),
                   .note = c->note,
                   .at = now};
  if (add_history(s, sto, &h)) return SL_EDB;
  *outcome = SUP_UPDATED;
  return 0;
}

int suppression_remove(suppression *s, store *sto, const char *address, const char *actor,
                       const char *note, int64_t now, int *outcome) {
  char folded[SUPPRESSION_ADDRESS_MAX + 1];
  if (address_fold(address, folded, sizeof folded, NULL)) return SL_EINVAL;
  if (write_added_row(sto, folded)) return SL_EDB;
  sqlite3_stmt *st = wstmt(sto, W_DELETE);
  if (!st) return SL_EDB;
  bind_text(st, 1, folded);
  int rc = sqlite3_step(st);
  int found = rc == SQLITE_ROW;
  char old[16] = "";
  if (found) snprintf(old, sizeof old, "%s", sqlite3_column_text(st, 0));
  if (step_done(st)) return SL_EDB;
  if (!found) {
    *outcome = SUP_ABSENT;
    return 0;
  }
  /* The newest event id now: the soft-bounce rule counts only later ones. */
  int64_t max_event = 0;
  st = wstmt(sto, W_MAX_EVENT);
  if (!st) return SL_EDB;
  if (sqlite3_step(st) == SQLITE_ROW) max_event = sqlite3_column_int64(st, 0);
  if (step_done(st)) return SL_EDB;
  struct hist h = {.folded = folded,
                   .action = "removed",
                   .actor = actor,
                   .reason = old,
                   .note = note,
                   .at = now,
                   .event_id = max_event};
  if (add_history(s, sto, &h)) return SL_EDB;
  *outcome = SUP_REMOVED;
  return 0;
}

/* ---- reads and JSON ------------------------------------------------------ */

/* display is '' when it is the address (schema version 24) */
#define ROW_COLUMNS \
  "id, address, coalesce(nullif(display, ''), address), " SUP_REASON_NAME("reason") ", createdAt, " \
  "coalesce(lastEventAt, 0), events, " SUP_READ_MESSAGE_ID("suppression.") ", " SUP_READ_NOTE( \
      "suppression.") ", ambiguous"

static int db_err(int rc) {
  return rc == SQLITE_INTERRUPT ? SL_EBUSY : SL_EDB;
}

static void read_row(sqlite3_stmt *st, struct suppression_row *r) {
  r->id = sqlite3_column_int64(st, 0);
  r->address = (const char *)sqlite3_column_text(st, 1);
  r->display = (const char *)sqlite3_column_text(st, 2);
  r->reason = (const char *)sqlite3_column_text(st, 3);
  r->created_at = sqlite3_column_int64(st, 4);
  r->last_event_at = sqlite3_column_int64(st, 5);
  r->events = sqlite3_column_int64(st, 6);
  r->message_id = (const char *)sqlite3_column_text(st, 7);
  r->note = (const char *)sqlite3_column_text(st, 8);
  r->ambiguous = sqlite3_column_int(st, 9);
}

int suppression_list(sqlite3 *db, const struct suppression_filter *f,
                     int (*fn)(void *ud, const struct suppression_row *row), void *ud) {
  /* The SQL is built from fixed pieces; every value is bound. */
  buf sql;
  buf_init(&sql, 16384);
  buf_appends(&sql, "SELECT " ROW_COLUMNS " FROM suppression WHERE 1");
  if (f->reason >= 0) buf_appends(&sql, " AND reason = ?1");
  if (f->domain) buf_appends(&sql, " AND " ADDRESS_DOMAIN_SQL("") " = ?2");
  if (f->since) buf_appends(&sql, " AND createdAt >= ?3");
  if (f->search) buf_appends(&sql, " AND instr(address, ?4) > 0");
  if (f->before_id) buf_appends(&sql, " AND id < ?5");
  buf_appends(&sql, " ORDER BY id DESC");
  if (f->limit > 0) buf_appends(&sql, " LIMIT ?6");
  int rc = buf_failed(&sql);
  if (rc) {
    buf_free(&sql);
    return rc;
  }
  sqlite3_stmt *st;
  rc = sqlite3_prepare_v2(db, sql.data, -1, &st, NULL);
  buf_free(&sql);
  if (rc != SQLITE_OK) return db_err(rc);
  if (f->reason >= 0) sqlite3_bind_int(st, 1, f->reason);
  if (f->domain) bind_text(st, 2, f->domain);
  if (f->since) sqlite3_bind_int64(st, 3, f->since);
  if (f->search) bind_text(st, 4, f->search);
  if (f->before_id) sqlite3_bind_int64(st, 5, f->before_id);
  if (f->limit > 0) sqlite3_bind_int64(st, 6, f->limit);
  int out = 0;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    struct suppression_row r;
    read_row(st, &r);
    if ((out = fn(ud, &r)) != 0) break;
  }
  if (!out && rc != SQLITE_DONE) out = db_err(rc);
  sqlite3_finalize(st);
  return out;
}

/* Looks up folded with a prepared statement st (reset here). */
static int get_with(sqlite3_stmt *st, const char *folded,
                    void (*fn)(void *ud, const struct suppression_row *row), void *ud, int *found) {
  sqlite3_reset(st);
  sqlite3_bind_text(st, 1, folded, -1, SQLITE_STATIC);
  int rc = sqlite3_step(st);
  *found = rc == SQLITE_ROW;
  if (*found) {
    struct suppression_row r;
    read_row(st, &r);
    fn(ud, &r);
    rc = SQLITE_DONE;
  }
  sqlite3_reset(st);
  return rc == SQLITE_DONE ? 0 : db_err(rc);
}

static const char get_sql[] = "SELECT " ROW_COLUMNS " FROM suppression WHERE address = ?1";

int suppression_get(sqlite3 *db, const char *folded,
                    void (*fn)(void *ud, const struct suppression_row *row), void *ud, int *found) {
  sqlite3_stmt *st;
  int rc = sqlite3_prepare_v2(db, get_sql, -1, &st, NULL);
  if (rc != SQLITE_OK) return db_err(rc);
  rc = get_with(st, folded, fn, ud, found);
  sqlite3_finalize(st);
  return rc;
}

/* A JSON string, or null. */
static int json_str(buf *b, const char *s) {
  return s ? buf_json_string(b, s) : buf_appends(b, "null");
}

/* An ISO-8601 time of ms, or null for 0. */
static int json_time(buf *b, int64_t ms) {
  if (!ms) return buf_appends(b, "null");
  char t[25];
  util_format_iso8601(ms, t);
  return buf_printf(b, "\"%s\"", t);
}

int suppression_row_json(const struct suppression_row *r, buf *out) {
  int rc = buf_appends(out, "{\"address\":");
  if (!rc) rc = json_str(out, r->display);
  if (!rc) rc = buf_appends(out, ",\"reason\":");
  if (!rc) rc = json_str(out, r->reason);
  if (!rc) rc = buf_appends(out, ",\"createdAt\":");
  if (!rc) rc = json_time(out, r->created_at);
  if (!rc) rc = buf_appends(out, ",\"lastEventAt\":");
  if (!rc) rc = json_time(out, r->last_event_at);
  if (!rc) rc = buf_printf(out, ",\"events\":%lld,\"messageId\":", (long long)r->events);
  if (!rc) rc = json_str(out, r->message_id);
  if (!rc) rc = buf_appends(out, ",\"note\":");
  if (!rc) rc = json_str(out, r->note);
  if (!rc) rc = buf_printf(out, ",\"ambiguous\":%s}", r->ambiguous ? "true" : "false");
  return rc;
}

/* fn of suppression_get that renders the row into the buf ud. */
struct render {
  buf *out;
  int rc;
};

static void render_row(void *ud, const struct suppression_row *r) {
  struct render *x = ud;
  x->rc = suppression_row_json(r, x->out);
}

int suppression_get_json(sqlite3 *db, const char *folded, buf *out, int *found) {
  struct render x = {out, 0};
  int rc = suppression_get(db, folded, render_row, &x, found);
  return rc ? rc : x.rc;
}

int suppression_entry_json(sqlite3 *db, const char *address, buf *out) {
  char folded[SUPPRESSION_ADDRESS_MAX + 1];
  if (!address || address_fold(address, folded, sizeof folded, NULL))
    return buf_appends(out, "null");
  struct render x = {out, 0};
  int found = 0;
  int rc = suppression_get(db, folded, render_row, &x, &found);
  if (rc) return rc;
  if (!found) return buf_appends(out, "null");
  return x.rc;
}

int suppression_history_json(sqlite3 *db, const char *folded, int max, buf *out) {
  sqlite3_stmt *st;
  /* The implicit "added" row (see W_ADDED_ROW), when there is one, is
   * the newest of the address: its id sorts after every written one. Both
   * sides come in id order (the history off its index), merged unsorted. */
  int rc = sqlite3_prepare_v2(db,
                              "SELECT addedAt, 'added', " SUP_ACTOR_NAME("addedBy") ", " SUP_REASON_NAME("reason") ", " SUP_READ_NOTE(
                                  "suppression.") ", " SUP_READ_MESSAGE_ID("suppression.") ", "
                              "lastEventAt, 9223372036854775807 AS id FROM suppression "
                              "WHERE address = ?1 AND addedAt IS NOT NULL UNION ALL "
                              "SELECT at, action, actor, reason, note, messageId, eventAt, id "
                              "FROM suppression_history WHERE address = ?1 "
                              "ORDER BY id DESC LIMIT ?2",
                              -1, &st, NULL);
  if (rc != SQLITE_OK) return db_err(rc);
  sqlite3_bind_text(st, 1, folded, -1, SQLITE_STATIC);
  sqlite3_bind_int(st, 2, max);
  int err = buf_appends(out, "[");
  int first = 1;
  while (!err && (rc = sqlite3_step(st)) == SQLITE_ROW) {
    if (!first) err = buf_appends(out, ",");
    first = 0;
    if (!err) err = buf_appends(out, "{\"at\":");
    if (!err) err = json_time(out, sqlite3_column_int64(st, 0));
    if (!err) err = buf_appends(out, ",\"action\":");
    if (!err) err = json_str(out, (const char *)sqlite3_column_text(st, 1));
    if (!err) err = buf_appends(out, ",\"actor\":");
    if (!err) err = json_str(out, (const char *)sqlite3_column_text(st, 2));
    if (!err) err = buf_appends(out, ",\"reason\":");
    if (!err) err = json_str(out, (const char *)sqlite3_column_text(st, 3));
    if (!err) err = buf_appends(out, ",\"note\":");
    if (!err) err = json_str(out, (const char *)sqlite3_column_text(st, 4));
    if (!err) err = buf_appends(out, ",\"messageId\":");
    if (!err) err = json_str(out, (const char *)sqlite3_column_text(st, 5));
    if (!err) err = buf_appends(out, ",\"eventAt\":");
    if (!err) err = json_time(out, sqlite3_column_int64(st, 6));
    if (!err) err = buf_appends(out, "}");
  }
  if (!err && rc != SQLITE_DONE) err = db_err(rc);
  sqlite3_finalize(st);
  if (!err) err = buf_appends(out, "]");
  return err;
}

/* ---- the bulk check ------------------------------------------------------ */

/* One address of a bulk check. */
struct probe {
  const char *given;  /* as the caller gave it */
  const char *folded; /* in the arena */
  char *answer;       /* "true,\"reason\":...,\"entry\":{...}" when listed, owned */
};

static int probe_cmp(const void *a, const void *b) {
  return strcmp((*(struct probe *const *)a)->folded, (*(struct probe *const *)b)->folded);
}

static void probe_row(void *ud, const struct suppression_row *r) {
  struct probe *p = ud;
  buf b;
  buf_init(&b, 1 << 16);
  int rc = buf_appends(&b, "true,\"reason\":");
  if (!rc) rc = json_str(&b, r->reason);
  if (!rc) rc = buf_appends(&b, ",\"entry\":");
  if (!rc) rc = suppression_row_json(r, &b);
  if (rc)
    buf_free(&b);
  else
    p->answer = buf_take(&b);
}

/* The lookups go in key order, so neighbouring keys share B-tree pages;
 * the answer keeps the order of the request. */
int suppression_check_json(sqlite3 *db, const char *const *addresses, int n, buf *out) {
  struct probe *probes = calloc((size_t)n + 1, sizeof *probes);
  struct probe **sorted = calloc((size_t)n + 1, sizeof *sorted);
  buf arena;
  buf_init(&arena, (size_t)n * (SUPPRESSION_ADDRESS_MAX + 1) + 1);
  int rc = probes && sorted ? 0 : SL_ENOMEM;
  size_t *offs = calloc((size_t)n + 1, sizeof *offs);
  if (!offs) rc = SL_ENOMEM;
  for (int i = 0; !rc && i < n; i++) {
    char folded[SUPPRESSION_ADDRESS_MAX + 1];
    address_fold(addresses[i], folded, sizeof folded, NULL);
    offs[i] = arena.len;
    probes[i].given = addresses[i];
    rc = buf_append(&arena, folded, strlen(folded) + 1);
  }
  for (int k = 0; !rc && k < n; k++) {
    probes[k].folded = arena.data + offs[k]; /* the arena no longer moves */
    sorted[k] = &probes[k];
  }
  free(offs);
  sqlite3_stmt *st = NULL;
  if (!rc) {
    qsort(sorted, (size_t)n, sizeof *sorted, probe_cmp);
    int prc = sqlite3_prepare_v2(db, get_sql, -1, &st, NULL);
    if (prc != SQLITE_OK) rc = db_err(prc);
  }
  for (int k = 0; !rc && k < n; k++) {
    struct probe *p = sorted[k];
    if (k && strcmp(p->folded, sorted[k - 1]->folded) == 0) { /* asked twice */
      if (sorted[k - 1]->answer && !(p->answer = strdup(sorted[k - 1]->answer))) rc = SL_ENOMEM;
      continue;
    }
    int found = 0;
    rc = get_with(st, p->folded, probe_row, p, &found);
    if (!rc && found && !p->answer) rc = SL_ENOMEM;
  }
  sqlite3_finalize(st);
  int suppressed = 0;
  if (!rc) rc = buf_appends(out, "{\"results\":[");
  for (int k = 0; !rc && k < n; k++) {
    rc = buf_appends(out, k ? ",{\"address\":" : "{\"address\":");
    if (!rc) rc = buf_json_string(out, probes[k].given);
    if (!rc) rc = buf_appends(out, ",\"suppressed\":");
    if (!rc) rc = buf_appends(out, probes[k].answer ? probes[k].answer : "false,\"reason\":null");
    if (!rc) rc = buf_appends(out, "}");
    suppressed += probes[k].answer != NULL;
  }
  if (!rc) rc = buf_printf(out, "],\"checked\":%d,\"suppressed\":%d}", n, suppressed);
  for (int k = 0; probes && k < n; k++) free(probes[k].answer);
  free(probes);
  free(sorted);
  buf_free(&arena);
  return rc;
}
