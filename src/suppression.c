/* suppression.c - the suppression list: address rules, the store hook that
 * applies the bounce and complaint rules in each event's transaction,
 * manual writes, reads, their JSON, and the /api/suppression endpoints.
 *
 * Reading order: addresses; the writer's statements; the rules hook; manual
 * writes; reads and JSON; the HTTP endpoints. */
#include "suppression.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "csv.h"
#include "error.h"
#include "log.h"
#include "ses.h"

#define DAY_MS 86400000LL
#define SOFT_ROWS_MAX 10000 /* soft bounces of one address read per event, at most */
#define LIST_MAX 1000       /* limit of one API page, at most */
#define LIST_DEFAULT 50

/* The writer's statements, prepared on first use on the write connection. */
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
  W_N
};

static const char *const w_sql[W_N] = {
    [W_FIND] = "SELECT reason FROM suppression WHERE address = ?1",
    /* Every right-hand side sees the row as it was: an event older than
     * the latest one counts, but does not replace the latest's fields. */
    [W_RULE_UPDATE] =
        "UPDATE suppression SET events = events + 1, "
        "reason = CASE WHEN ?2 >= coalesce(lastEventAt, ?2) THEN ?3 ELSE reason END, "
        "messageId = CASE WHEN ?2 >= coalesce(lastEventAt, ?2) THEN ?4 ELSE messageId END, "
        "eventId = CASE WHEN ?2 >= coalesce(lastEventAt, ?2) THEN ?5 ELSE eventId END, "
        "ambiguous = CASE WHEN ?2 >= coalesce(lastEventAt, ?2) THEN ?6 ELSE ambiguous END, "
        "lastEventAt = max(coalesce(lastEventAt, ?2), ?2) "
        "WHERE address = ?1 RETURNING reason",
    [W_INSERT] =
        "INSERT INTO suppression (address, id, display, domain, reason, createdAt, "
        "lastEventAt, events, messageId, eventId, note, ambiguous) "
        "VALUES (?1, (SELECT coalesce(max(id), 0) + 1 FROM suppression), "
        "?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    [W_MANUAL_UPDATE] =
        "UPDATE suppression SET reason = ?2, note = coalesce(?3, note), "
        "ambiguous = 0 WHERE address = ?1",
    [W_DELETE] = "DELETE FROM suppression WHERE address = ?1 RETURNING reason",
    [W_HISTORY] =
        "INSERT INTO suppression_history (address, at, action, actor, reason, note, "
        "messageId, eventId, eventAt) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    /* The recipients table holds each affected address lower-cased, as the
     * store wrote it; a bounce without a bounceType counts as undetermined. */
    [W_SOFT] =
        "SELECT r.timeStamp FROM recipients r JOIN SesEventMessages e ON e.id = r.eventId "
        "WHERE r.address = ?1 AND r.timeStamp >= ?2 AND r.timeStamp <= ?3 "
        "AND r.notificationType = 'Bounce' AND r.eventId > ?4 "
        "AND coalesce(e.bounceType, '') <> 'Permanent' ORDER BY r.timeStamp LIMIT ?5",
    [W_LAST_REMOVAL] =
        "SELECT max(eventId) FROM suppression_history "
        "WHERE address = ?1 AND action = 'removed'",
    [W_MAX_EVENT] = "SELECT max(id) FROM SesEventMessages",
};

struct suppression {
  struct suppression_opts o; /* copied at creation */
  sqlite3 *wdb;              /* the connection w[] belongs to (writer thread) */
  sqlite3_stmt *w[W_N];      /* writer statements, or NULL until first use */
  store *st;                 /* HTTP writes; NULL until attached */
  readpool *rp;              /* HTTP reads; NULL until attached */
};

static const char *const reason_names[] = {"BOUNCE", "COMPLAINT", "MANUAL"};

static int streq(const char *a, const char *b) {
  return a && b && strcmp(a, b) == 0;
}

/* ---- addresses --------------------------------------------------------- */

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

/* Length of the valid UTF-8 sequence at p (n bytes left), or 0. */
static size_t utf8_len(const unsigned char *p, size_t n) {
  unsigned char c = p[0];
  size_t len;
  unsigned min;
  unsigned cp;
  if (c < 0x80) return 1;
  if (c >= 0xc2 && c <= 0xdf)
    len = 2, min = 0x80, cp = c & 0x1f;
  else if (c >= 0xe0 && c <= 0xef)
    len = 3, min = 0x800, cp = c & 0x0f;
  else if (c >= 0xf0 && c <= 0xf4)
    len = 4, min = 0x10000, cp = c & 0x07;
  else
    return 0;
  if (len > n) return 0;
  for (size_t i = 1; i < len; i++) {
    if ((p[i] & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (p[i] & 0x3f);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
  return len;
}

/* ASCII that cannot stand unquoted in an address (or in a CSV field). */
static const unsigned char special[128] = {[','] = 1, [';'] = 1, ['<'] = 1, ['>'] = 1, ['"'] = 1,
                                           ['('] = 1, [')'] = 1, ['['] = 1, [']'] = 1, ['\\'] = 1};

/* ASCII allowed in a domain (other bytes are UTF-8 of an IDN). */
static const unsigned char domain_char[128] = {
    ['-'] = 1, ['.'] = 1, ['_'] = 1, ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1,
    ['5'] = 1, ['6'] = 1, ['7'] = 1, ['8'] = 1, ['9'] = 1, ['A'] = 1, ['B'] = 1, ['C'] = 1,
    ['D'] = 1, ['E'] = 1, ['F'] = 1, ['G'] = 1, ['H'] = 1, ['I'] = 1, ['J'] = 1, ['K'] = 1,
    ['L'] = 1, ['M'] = 1, ['N'] = 1, ['O'] = 1, ['P'] = 1, ['Q'] = 1, ['R'] = 1, ['S'] = 1,
    ['T'] = 1, ['U'] = 1, ['V'] = 1, ['W'] = 1, ['X'] = 1, ['Y'] = 1, ['Z'] = 1, ['a'] = 1,
    ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1, ['h'] = 1, ['i'] = 1,
    ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1, ['o'] = 1, ['p'] = 1, ['q'] = 1,
    ['r'] = 1, ['s'] = 1, ['t'] = 1, ['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1, ['y'] = 1,
    ['z'] = 1};

int suppression_address_check(const char *addr, const char **why) {
  const char *w = NULL;
  size_t n = addr ? strlen(addr) : 0;
  const char *at = addr ? strchr(addr, '@') : NULL;
  if (!n)
    w = "it is empty";
  else if (n > SUPPRESSION_ADDRESS_MAX)
    w = "it is longer than 320 bytes";
  else if (!at)
    w = "it has no @";
  else if (strchr(at + 1, '@'))
    w = "it has more than one @";
  else if (at == addr)
    w = "the part before the @ is empty";
  else if (!at[1])
    w = "the domain after the @ is empty";
  else if (at[1] == '.' || addr[n - 1] == '.' || strstr(at, ".."))
    w = "the domain has an empty label (a dot at its start or end, or two dots in a row)";
  for (size_t i = 0; !w && i < n;) {
    unsigned char c = (unsigned char)addr[i];
    if (c <= 0x20 || c == 0x7f) {
      w = c == ' ' ? "it contains a space" : "it contains a control character";
    } else if (c < 0x80 && special[c]) {
      w = "it contains one of , ; < > \" ( ) [ ] \\";
    } else if (addr + i > at && c < 0x80 && !domain_char[c]) {
      w = "the domain may hold only letters, digits, dots, hyphens and underscores";
    } else {
      size_t len = utf8_len((const unsigned char *)addr + i, n - i);
      if (!len) w = "it is not valid UTF-8";
      i += len ? len : 1;
    }
  }
  if (w) {
    if (why) *why = w;
    return SL_EINVAL;
  }
  return 0;
}

int suppression_address_fold(const char *addr, char *out, size_t outlen, const char **why) {
  int rc = suppression_address_check(addr, why);
  if (rc) return rc;
  size_t n = strlen(addr);
  if (n + 1 > outlen) {
    if (why) *why = "it is too long";
    return SL_EINVAL;
  }
  for (size_t i = 0; i <= n; i++) {
    char c = addr[i];
    out[i] = c >= 'A' && c <= 'Z' ? (char)(c + 32) : c;
  }
  return 0;
}

/* The domain part of a checked, folded address. */
static const char *domain_of(const char *folded) {
  return strchr(folded, '@') + 1;
}

/* An SES recipient may come as "Name <addr>": the address inside the
 * brackets, copied into out (SUPPRESSION_ADDRESS_MAX + 1 bytes). */
static void bare_address(const char *r, char *out) {
  const char *lt = strrchr(r, '<');
  const char *gt = lt ? strchr(lt, '>') : NULL;
  size_t n = lt && gt ? (size_t)(gt - lt - 1) : strlen(r);
  const char *p = lt && gt ? lt + 1 : r;
  while (n && *p == ' ') p++, n--;
  while (n && p[n - 1] == ' ') n--;
  if (n > SUPPRESSION_ADDRESS_MAX) n = SUPPRESSION_ADDRESS_MAX + 1; /* fails the check */
  snprintf(out, SUPPRESSION_ADDRESS_MAX + 2, "%.*s", (int)n, p);
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

static void finalize_writer(suppression *s) {
  for (int i = 0; i < W_N; i++) {
    sqlite3_finalize(s->w[i]);
    s->w[i] = NULL;
  }
  s->wdb = NULL;
}

void suppression_free(suppression *s) {
  if (!s) return;
  finalize_writer(s);
  free(s);
}

void suppression_attach(suppression *s, store *st, readpool *rp) {
  s->st = st;
  s->rp = rp;
}

/* The writer statement i on db, reset and unbound, or NULL. A different
 * connection than last time (a new store) drops the old statements. */
static sqlite3_stmt *wstmt(suppression *s, sqlite3 *db, int i) {
  if (s->wdb != db) {
    finalize_writer(s);
    s->wdb = db;
  }
  if (!s->w[i] && sqlite3_prepare_v3(db, w_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &s->w[i], NULL) !=
                      SQLITE_OK) {
    log_kv(LOG_ERROR, "suppression: cannot prepare a statement", "error", sqlite3_errmsg(db), NULL);
    return NULL;
  }
  sqlite3_reset(s->w[i]);
  sqlite3_clear_bindings(s->w[i]);
  return s->w[i];
}

static void bind_text(sqlite3_stmt *st, int i, const char *v) {
  if (v)
    sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT);
  else
    sqlite3_bind_null(st, i);
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

static int add_history(suppression *s, sqlite3 *db, const struct hist *h) {
  sqlite3_stmt *st = wstmt(s, db, W_HISTORY);
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

/* Inserts a new entry. last_event_at 0: no event. */
static int insert_entry(suppression *s, sqlite3 *db, const char *folded, const char *display,
                        int reason, int64_t created_at, int64_t last_event_at, int events,
                        const char *message_id, int64_t event_id, const char *note, int ambiguous) {
  sqlite3_stmt *st = wstmt(s, db, W_INSERT);
  if (!st) return SL_EDB;
  bind_text(st, 1, folded);
  bind_text(st, 2, display);
  bind_text(st, 3, domain_of(folded));
  bind_text(st, 4, suppression_reason_name(reason));
  sqlite3_bind_int64(st, 5, created_at);
  if (last_event_at) sqlite3_bind_int64(st, 6, last_event_at);
  sqlite3_bind_int(st, 7, events);
  bind_text(st, 8, message_id);
  if (event_id) sqlite3_bind_int64(st, 9, event_id);
  bind_text(st, 10, note);
  sqlite3_bind_int(st, 11, ambiguous);
  return step_done(st);
}

/* ---- the rules hook ------------------------------------------------------ */

/* Suppresses one affected recipient of event e by rule actor: updates an
 * existing entry or inserts one, and records the change. */
static int rule_suppress(suppression *s, sqlite3 *db, const ses_event *e, int64_t event_id,
                         int64_t now, const char *recipient, int reason, const char *actor,
                         const char *note, int ambiguous) {
  char display[SUPPRESSION_ADDRESS_MAX + 2], folded[SUPPRESSION_ADDRESS_MAX + 1];
  const char *why;
  bare_address(recipient, display);
  if (suppression_address_fold(display, folded, sizeof folded, &why)) {
    log_kv(LOG_WARN, "suppression: an affected recipient is not a usable address; not suppressed",
           "messageId", e->message_id, "why", why, NULL);
    return 0;
  }
  sqlite3_stmt *st = wstmt(s, db, W_RULE_UPDATE);
  if (!st) return SL_EDB;
  bind_text(st, 1, folded);
  sqlite3_bind_int64(st, 2, e->ts_ms);
  bind_text(st, 3, suppression_reason_name(reason));
  bind_text(st, 4, e->message_id);
  sqlite3_bind_int64(st, 5, event_id);
  sqlite3_bind_int(st, 6, ambiguous);
  int rc = sqlite3_step(st);
  int existed = rc == SQLITE_ROW;
  char now_reason[16] = "";
  if (existed) snprintf(now_reason, sizeof now_reason, "%s", sqlite3_column_text(st, 0));
  if (step_done(st)) return SL_EDB;
  if (!existed) {
    if (insert_entry(s, db, folded, display, reason, e->ts_ms, e->ts_ms, 1, e->message_id, event_id,
                     note, ambiguous))
      return SL_EDB;
  }
  struct hist h = {.folded = folded,
                   .action = existed ? "updated" : "added",
                   .actor = actor,
                   .reason = existed ? now_reason : suppression_reason_name(reason),
                   .note = note,
                   .message_id = e->message_id,
                   .at = now,
                   .event_id = event_id,
                   .event_at = e->ts_ms};
  return add_history(s, db, &h);
}

/* The soft-bounce rule for one recipient of a transient or undetermined
 * bounce: does a window of soft_bounce_days that contains this event hold
 * soft_bounce_limit such bounces (this one included)? Bounces stored before
 * the address was last removed from the list do not count: a removal gives
 * the address a fresh start. Sets *count to the most found in one window. */
static int soft_count(suppression *s, sqlite3 *db, const ses_event *e, const char *recipient,
                      int *count) {
  char key[SUPPRESSION_ADDRESS_MAX * 2];
  snprintf(key, sizeof key, "%s", recipient);
  util_ascii_lower(key); /* as the store wrote it into recipients */
  sqlite3_stmt *st = wstmt(s, db, W_LAST_REMOVAL);
  if (!st) return SL_EDB;
  char display[SUPPRESSION_ADDRESS_MAX + 2], folded[SUPPRESSION_ADDRESS_MAX + 1];
  bare_address(recipient, display);
  int64_t removed_at_event = 0;
  if (!suppression_address_fold(display, folded, sizeof folded, NULL)) {
    bind_text(st, 1, folded);
    if (sqlite3_step(st) == SQLITE_ROW) removed_at_event = sqlite3_column_int64(st, 0);
    if (step_done(st)) return SL_EDB;
  }
  int64_t win = (int64_t)s->o.soft_bounce_days * DAY_MS;
  char lo[25], hi[25];
  util_format_iso8601(e->ts_ms - win, lo);
  util_format_iso8601(e->ts_ms + win, hi);
  st = wstmt(s, db, W_SOFT);
  if (!st) return SL_EDB;
  bind_text(st, 1, key);
  bind_text(st, 2, lo);
  bind_text(st, 3, hi);
  sqlite3_bind_int64(st, 4, removed_at_event);
  sqlite3_bind_int(st, 5, SOFT_ROWS_MAX);
  int64_t *t = NULL;
  size_t n = 0, cap = 0;
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    int64_t ms;
    if (util_parse_iso8601((const char *)sqlite3_column_text(st, 0), &ms)) continue;
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
static int on_event(void *ud, sqlite3 *db, const ses_event *e, int64_t event_id, int64_t now) {
  suppression *s = ud;
  const char *t = e->notification_type;
  if (!t || (t[0] != 'B' && t[0] != 'C')) return 0;
  if (ses_is_bounce(e)) {
    if (streq(e->bounce_type, "Permanent")) {
      char note[128];
      snprintf(note, sizeof note, "permanent bounce (%s)",
               e->bounce_sub_type ? e->bounce_sub_type : "no subtype");
      for (size_t i = 0; i < e->n_recipients; i++)
        if (rule_suppress(s, db, e, event_id, now, e->recipients[i], SUP_BOUNCE, "permanent-bounce",
                          note, 0))
          return SL_EDB;
      return 0;
    }
    if (s->o.soft_bounce_limit <= 0) return 0;
    for (size_t i = 0; i < e->n_recipients; i++) {
      int count = 0;
      if (soft_count(s, db, e, e->recipients[i], &count)) return SL_EDB;
      if (count < s->o.soft_bounce_limit) continue;
      char note[128];
      snprintf(note, sizeof note, "%d soft bounces within %d days", count, s->o.soft_bounce_days);
      if (rule_suppress(s, db, e, event_id, now, e->recipients[i], SUP_BOUNCE, "soft-bounce", note,
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
      if (rule_suppress(s, db, e, event_id, now, e->recipients[i], SUP_COMPLAINT, "complaint", note,
                        ambiguous))
        return SL_EDB;
  }
  return 0;
}

void suppression_hook(suppression *s, struct store_hook *h) {
  memset(h, 0, sizeof *h);
  h->on_event = on_event;
  h->ud = s;
}

/* ---- manual writes ------------------------------------------------------- */

/* The reason of the entry of folded into out, *found 1; or *found 0. */
static int find_entry(suppression *s, sqlite3 *db, const char *folded, char out[16], int *found) {
  sqlite3_stmt *st = wstmt(s, db, W_FIND);
  if (!st) return SL_EDB;
  bind_text(st, 1, folded);
  int rc = sqlite3_step(st);
  *found = rc == SQLITE_ROW;
  if (*found) snprintf(out, 16, "%s", sqlite3_column_text(st, 0));
  return step_done(st);
}

int suppression_put(suppression *s, sqlite3 *db, const struct suppression_change *c, int64_t now,
                    int *outcome) {
  char folded[SUPPRESSION_ADDRESS_MAX + 1];
  if (suppression_address_fold(c->address, folded, sizeof folded, NULL)) return SL_EINVAL;
  if (c->reason < 0 || c->reason > SUP_MANUAL) return SL_EINVAL;
  char old[16];
  int found;
  if (find_entry(s, db, folded, old, &found)) return SL_EDB;
  if (found && c->keep_existing) {
    *outcome = SUP_UNCHANGED;
    return 0;
  }
  if (found) {
    sqlite3_stmt *st = wstmt(s, db, W_MANUAL_UPDATE);
    if (!st) return SL_EDB;
    bind_text(st, 1, folded);
    bind_text(st, 2, suppression_reason_name(c->reason));
    bind_text(st, 3, c->note);
    if (step_done(st)) return SL_EDB;
  } else if (insert_entry(s, db, folded, c->address, c->reason, now, 0, 0, NULL, 0, c->note, 0)) {
    return SL_EDB;
  }
  struct hist h = {.folded = folded,
                   .action = found ? "updated" : "added",
                   .actor = c->actor,
                   .reason = suppression_reason_name(c->reason),
                   .note = c->note,
                   .at = now};
  if (add_history(s, db, &h)) return SL_EDB;
  *outcome = found ? SUP_UPDATED : SUP_ADDED;
  return 0;
}

int suppression_remove(suppression *s, sqlite3 *db, const char *address, const char *actor,
                       const char *note, int64_t now, int *outcome) {
  char folded[SUPPRESSION_ADDRESS_MAX + 1];
  if (suppression_address_fold(address, folded, sizeof folded, NULL)) return SL_EINVAL;
  sqlite3_stmt *st = wstmt(s, db, W_DELETE);
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
  st = wstmt(s, db, W_MAX_EVENT);
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
  if (add_history(s, db, &h)) return SL_EDB;
  *outcome = SUP_REMOVED;
  return 0;
}

/* ---- reads and JSON ------------------------------------------------------ */

#define ROW_COLUMNS                                                                        \
  "id, address, display, reason, createdAt, coalesce(lastEventAt, 0), events, messageId, " \
  "note, ambiguous"

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
  char sql[512];
  int n = snprintf(sql, sizeof sql, "SELECT " ROW_COLUMNS " FROM suppression WHERE 1");
  if (f->reason >= 0) n += snprintf(sql + n, sizeof sql - (size_t)n, " AND reason = ?1");
  if (f->domain) n += snprintf(sql + n, sizeof sql - (size_t)n, " AND domain = ?2");
  if (f->since) n += snprintf(sql + n, sizeof sql - (size_t)n, " AND createdAt >= ?3");
  if (f->search) n += snprintf(sql + n, sizeof sql - (size_t)n, " AND instr(address, ?4) > 0");
  if (f->before_id) n += snprintf(sql + n, sizeof sql - (size_t)n, " AND id < ?5");
  n += snprintf(sql + n, sizeof sql - (size_t)n, " ORDER BY id DESC");
  if (f->limit > 0) snprintf(sql + n, sizeof sql - (size_t)n, " LIMIT ?6");
  sqlite3_stmt *st;
  int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
  if (rc != SQLITE_OK) return db_err(rc);
  if (f->reason >= 0) bind_text(st, 1, suppression_reason_name(f->reason));
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

int suppression_entry_json(sqlite3 *db, const char *address, buf *out) {
  char folded[SUPPRESSION_ADDRESS_MAX + 1];
  if (!address || suppression_address_fold(address, folded, sizeof folded, NULL))
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
  int rc = sqlite3_prepare_v2(db,
                              "SELECT at, action, actor, reason, note, messageId, eventAt "
                              "FROM suppression_history WHERE address = ?1 ORDER BY id DESC "
                              "LIMIT ?2",
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

/* ---- the HTTP endpoints -------------------------------------------------- */

#define PREFIX "/api/suppression"
#define BODY_MAX ((size_t)64 << 20) /* the largest answer: a full bulk check */

enum job_kind { JK_LIST, JK_GET, JK_CHECK, JK_PUT, JK_DELETE };

/* One API request on its way through the readpool or the store. */
typedef struct job {
  suppression *s;
  http_request *req;
  enum job_kind kind;
  char folded[SUPPRESSION_ADDRESS_MAX + 1];  /* GET/PUT/DELETE: the key */
  char display[SUPPRESSION_ADDRESS_MAX + 1]; /* ...as given */
  struct suppression_filter f;               /* list */
  char domain[256];                          /* f.domain points here */
  char search[SUPPRESSION_ADDRESS_MAX + 1];  /* f.search points here */
  int reason;                                /* PUT */
  char *note;                                /* PUT, owned, or NULL */
  int outcome;                               /* PUT/DELETE: SUP_* */
  store_req sreq;                            /* PUT/DELETE, embedded */
  buf out;                                   /* the answer's body */
  int status;                                /* the answer's status */
  const char *code;                          /* error code when status >= 400 */
  char msg[512];                             /* error message */
} job;

static void job_free(job *j) {
  buf_free(&j->out);
  free(j->note);
  free(j);
}

static void set_error(job *j, int status, const char *code, const char *msg) {
  j->status = status;
  j->code = code;
  if (msg != j->msg) snprintf(j->msg, sizeof j->msg, "%s", msg);
}

/* Answers j (error or body) and frees it. */
static void finish(job *j) {
  if (j->status >= 400)
    http_respond_error(j->req, j->status, j->code, j->msg);
  else
    http_respond_buf(j->req, j->status, "application/json", NULL, &j->out);
  job_free(j);
}

/* Maps a read or write failure onto j's answer. */
static void db_failure(job *j, int rc) {
  if (rc == SL_EBUSY)
    set_error(j, 503, "query_timeout", "The query took too long; try again or narrow it.");
  else if (rc == SL_ETOOBIG)
    set_error(j, 500, "too_large", "The answer is too large.");
  else if (rc == SL_ESHUTDOWN)
    set_error(j, 503, "shutting_down", "The server is stopping.");
  else
    set_error(j, 500, "database_error", "The database could not answer.");
}

/* One read transaction around the statements of a pool run: a single
 * snapshot, and one lock instead of one per statement (which, for 10,000
 * lookups, costs more than the lookups). */
static void read_begin(sqlite3 *db) {
  sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
}

static void read_end(sqlite3 *db) {
  if (!sqlite3_get_autocommit(db)) sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
}

/* Readpool: done on the loop. */
static void read_done(void *arg, int rc) {
  job *j = arg;
  if (rc) db_failure(j, rc);
  finish(j);
}

/* -- GET /api/suppression -- */

struct list_ctx {
  job *j;
  long n;          /* rows rendered */
  int64_t last_id; /* id of the last row rendered */
  int more;        /* a row past the page exists */
};

static int list_row(void *ud, const struct suppression_row *r) {
  struct list_ctx *c = ud;
  if (c->n == c->j->f.limit - 1) { /* f.limit is the page + 1 */
    c->more = 1;
    return 1;
  }
  int rc = buf_appends(&c->j->out, c->n ? "," : "");
  if (!rc) rc = suppression_row_json(r, &c->j->out);
  c->n++;
  c->last_id = r->id;
  return rc;
}

static int list_work(sqlite3 *db, void *arg) {
  job *j = arg;
  struct list_ctx c = {j, 0, 0, 0};
  int rc = buf_appends(&j->out, "{\"items\":[");
  read_begin(db);
  if (!rc) rc = suppression_list(db, &j->f, list_row, &c);
  read_end(db);
  if (rc == 1) rc = 0; /* stopped at the page's end */
  if (!rc && c.more)
    rc = buf_printf(&j->out, "],\"nextCursor\":\"c%lld\"}", (long long)c.last_id);
  else if (!rc)
    rc = buf_appends(&j->out, "],\"nextCursor\":null}");
  if (!rc) j->status = 200;
  return rc;
}

/* Parses the query of GET /api/suppression into j->f. Returns 0, or
 * SL_EINVAL with j's answer set. */
static int list_params(job *j) {
  static const char *const known[] = {"limit", "cursor", "reason", "domain", "since", "search"};
  j->f.reason = -1;
  j->f.limit = LIST_DEFAULT;
  for (const char *p = j->req->query; p && *p;) {
    const char *amp = strchr(p, '&');
    size_t n = amp ? (size_t)(amp - p) : strlen(p);
    const char *eq = memchr(p, '=', n);
    size_t kl = eq ? (size_t)(eq - p) : n;
    size_t k = 0;
    while (kl && k < sizeof known / sizeof known[0] &&
           !(strlen(known[k]) == kl && strncmp(known[k], p, kl) == 0))
      k++;
    if (kl && k == sizeof known / sizeof known[0]) {
      snprintf(j->msg, sizeof j->msg,
               "Unknown parameter \"%.*s\"; this endpoint takes: limit, cursor, reason, domain, "
               "since, search.",
               (int)(kl < 64 ? kl : 64), p);
      set_error(j, 400, "invalid_parameter", j->msg);
      return SL_EINVAL;
    }
    p += n + (amp ? 1 : 0);
  }
  char v[SUPPRESSION_ADDRESS_MAX + 1];
  for (size_t k = 0; k < sizeof known / sizeof known[0]; k++) {
    const char *name = known[k];
    int got = http_query_param(j->req, name, v, sizeof v);
    if (got == 0 || (got == 1 && !*v)) continue;
    const char *bad = NULL;
    if (got < 0) {
      bad = "is too long or badly percent-encoded";
    } else if (strcmp(name, "limit") == 0) {
      char *end;
      errno = 0;
      long n = strtol(v, &end, 10);
      if (errno || *end || end == v || n < 1 || n > LIST_MAX)
        bad = "must be a whole number from 1 to 1000";
      else
        j->f.limit = n;
    } else if (strcmp(name, "cursor") == 0) {
      char *end;
      errno = 0;
      long long id = v[0] == 'c' ? strtoll(v + 1, &end, 10) : 0;
      if (v[0] != 'c' || errno || *end || end == v + 1 || id < 1)
        bad = "is not a cursor this server gave (use nextCursor as it is)";
      else
        j->f.before_id = id;
    } else if (strcmp(name, "reason") == 0) {
      if (suppression_reason_parse(v, &j->f.reason)) bad = "must be BOUNCE, COMPLAINT or MANUAL";
    } else if (strcmp(name, "domain") == 0) {
      char probe[SUPPRESSION_ADDRESS_MAX + 8];
      snprintf(probe, sizeof probe, "x@%s", v);
      if (strlen(v) >= sizeof j->domain ||
          suppression_address_fold(probe, probe, sizeof probe, NULL))
        bad = "is not a domain";
      else
        snprintf(j->domain, sizeof j->domain, "%s", probe + 2), j->f.domain = j->domain;
    } else if (strcmp(name, "since") == 0) {
      int64_t ms, d;
      if (util_parse_iso8601(v, &ms) == 0)
        j->f.since = ms;
      else if (util_parse_duration(v, &d) == 0)
        j->f.since = util_now_ms() - d;
      else
        bad = "must be an ISO-8601 time or a duration like 15m, 24h or 7d";
      if (!bad && j->f.since == 0) j->f.since = 1; /* 0 means no bound */
    } else if (strcmp(name, "search") == 0) {
      snprintf(j->search, sizeof j->search, "%s", v);
      util_ascii_lower(j->search);
      j->f.search = j->search;
    }
    if (bad) {
      char msg[256];
      snprintf(msg, sizeof msg, "Parameter \"%s\" %s.", name, bad);
      set_error(j, 400, "invalid_parameter", msg);
      return SL_EINVAL;
    }
  }
  j->f.limit++; /* one more row tells whether there is a next page */
  return 0;
}

/* -- GET /api/suppression/{address} -- */

/* The entry of j->folded with its history into j->out; *found 0 when the
 * address is not listed. */
static int get_entry_history(sqlite3 *db, job *j, int *found) {
  struct render x = {&j->out, 0};
  int rc = suppression_get(db, j->folded, render_row, &x, found);
  if (rc || !*found) return rc;
  if (x.rc) return x.rc;
  /* The entry's closing brace becomes the history's field. */
  j->out.len--;
  rc = buf_appends(&j->out, ",\"history\":");
  if (!rc) rc = suppression_history_json(db, j->folded, SUPPRESSION_HISTORY_MAX, &j->out);
  if (!rc) rc = buf_appends(&j->out, "}");
  return rc;
}

static int get_work(sqlite3 *db, void *arg) {
  job *j = arg;
  int found = 0;
  read_begin(db);
  int rc = get_entry_history(db, j, &found);
  read_end(db);
  if (rc) return rc;
  if (!found) {
    snprintf(j->msg, sizeof j->msg, "%s is not on the suppression list.", j->display);
    set_error(j, 404, "not_found", j->msg);
    return 0;
  }
  j->status = 200;
  return 0;
}

/* -- POST /api/suppression/check -- */

/* One address of a bulk check. */
struct probe {
  const char *given;  /* as in the body (the cJSON's string) */
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

/* Looks up the n (checked) addresses of list and appends the answer.
 * The lookups go in key order, so neighbouring keys share B-tree pages;
 * the answer keeps the order of the request. */
static int check_lookup(sqlite3 *db, const cJSON *list, int n, buf *out) {
  struct probe *probes = calloc((size_t)n + 1, sizeof *probes);
  struct probe **sorted = calloc((size_t)n + 1, sizeof *sorted);
  buf arena;
  buf_init(&arena, (size_t)HTTP_MAX_BODY * 2);
  int rc = probes && sorted ? 0 : SL_ENOMEM;
  size_t *offs = calloc((size_t)n + 1, sizeof *offs);
  if (!offs) rc = SL_ENOMEM;
  int i = 0;
  const cJSON *a;
  cJSON_ArrayForEach(a, list) {
    if (rc) break;
    char folded[SUPPRESSION_ADDRESS_MAX + 1];
    suppression_address_fold(a->valuestring, folded, sizeof folded, NULL);
    offs[i] = arena.len;
    probes[i].given = a->valuestring;
    rc = buf_append(&arena, folded, strlen(folded) + 1);
    i++;
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

/* Parses the body, checks every address, looks each one up. Everything
 * runs here on the pool: a 10,000-address body costs the loop nothing. */
static int check_work(sqlite3 *db, void *arg) {
  job *j = arg;
  const buf *body = &j->req->body;
  cJSON *root = body->len ? cJSON_ParseWithLength(body->data, body->len) : NULL;
  const cJSON *list = cJSON_GetObjectItemCaseSensitive(root, "addresses");
  if (!cJSON_IsArray(list)) {
    cJSON_Delete(root);
    set_error(j, 400, "invalid_body",
              "The body must be a JSON object {\"addresses\":[\"a@example.com\", ...]}.");
    return 0;
  }
  int n = cJSON_GetArraySize(list);
  if (n > SUPPRESSION_CHECK_MAX) {
    cJSON_Delete(root);
    snprintf(j->msg, sizeof j->msg, "The body names %d addresses; one check takes at most 10000.",
             n);
    set_error(j, 400, "too_many_addresses", j->msg);
    return 0;
  }
  int i = 0;
  const cJSON *a;
  cJSON_ArrayForEach(a, list) {
    const char *why = "it is not a string";
    if (!cJSON_IsString(a) || suppression_address_check(a->valuestring, &why)) {
      char shown[80] = "";
      if (cJSON_IsString(a)) snprintf(shown, sizeof shown, " \"%.60s\"", a->valuestring);
      snprintf(j->msg, sizeof j->msg, "addresses[%d]%s is not an email address: %s.", i, shown,
               why);
      for (char *p = j->msg; *p; p++)
        if ((unsigned char)*p < 0x20) *p = ' ';
      cJSON_Delete(root);
      set_error(j, 400, "invalid_address", j->msg);
      return 0;
    }
    i++;
  }
  read_begin(db);
  int rc = check_lookup(db, list, n, &j->out);
  read_end(db);
  cJSON_Delete(root);
  if (!rc) j->status = 200;
  return rc;
}

/* -- PUT and DELETE /api/suppression/{address}: the writer's side -- */

static int put_apply(store_req *r, sqlite3 *db) {
  job *j = r->ud;
  struct suppression_change c = {
      .address = j->display, .reason = j->reason, .note = j->note, .actor = "api"};
  int rc = suppression_put(j->s, db, &c, util_now_ms(), &j->outcome);
  if (rc == SL_EINVAL) {
    r->result = SL_EINVAL;
    return 0;
  }
  if (rc) return SL_EDB;
  /* The answer is the entry as committed: read it in the same
   * transaction, on the write connection (this is the writer thread). */
  struct render x = {&j->out, 0};
  int found = 0;
  rc = suppression_get(db, j->folded, render_row, &x, &found);
  if (rc || !found || x.rc) return SL_EDB;
  r->result = STORE_STORED;
  return 0;
}

static int delete_apply(store_req *r, sqlite3 *db) {
  job *j = r->ud;
  /* The entry as it was, for the answer. */
  struct render x = {&j->out, 0};
  int found = 0;
  int rc = suppression_get(db, j->folded, render_row, &x, &found);
  if (rc || x.rc) return SL_EDB;
  rc = suppression_remove(j->s, db, j->display, "api", j->note, util_now_ms(), &j->outcome);
  if (rc) return SL_EDB;
  r->result = STORE_STORED;
  return 0;
}

/* The store committed (or not): on the loop. */
static void write_done(store_req *r) {
  job *j = r->ud;
  if (r->result < 0) {
    set_error(j, 503, "storage_unavailable", "The change could not be committed; try again.");
  } else if (j->kind == JK_PUT) {
    j->status = j->outcome == SUP_ADDED ? 201 : 200;
  } else if (j->outcome == SUP_ABSENT) {
    snprintf(j->msg, sizeof j->msg, "%s is not on the suppression list.", j->display);
    set_error(j, 404, "not_found", j->msg);
  } else {
    j->status = 200;
  }
  finish(j);
}

/* Reads the optional body of a PUT. Returns 0, or SL_EINVAL with j's
 * answer set. */
static int put_body(job *j) {
  j->reason = SUP_MANUAL;
  const buf *body = &j->req->body;
  size_t i = 0;
  while (i < body->len && strchr(" \t\r\n", body->data[i])) i++;
  if (i == body->len) return 0;
  cJSON *root = cJSON_ParseWithLength(body->data, body->len);
  const char *bad = NULL;
  if (!cJSON_IsObject(root)) {
    bad =
        "The body must be a JSON object like {\"reason\":\"MANUAL\",\"note\":\"...\"} (or empty).";
  } else {
    const cJSON *reason = cJSON_GetObjectItemCaseSensitive(root, "reason");
    const cJSON *note = cJSON_GetObjectItemCaseSensitive(root, "note");
    if (reason && !cJSON_IsNull(reason) &&
        (!cJSON_IsString(reason) || suppression_reason_parse(reason->valuestring, &j->reason)))
      bad = "\"reason\" must be MANUAL, BOUNCE or COMPLAINT.";
    else if (note && !cJSON_IsNull(note) && !cJSON_IsString(note))
      bad = "\"note\" must be a string.";
    else if (cJSON_IsString(note) && strlen(note->valuestring) > SUPPRESSION_NOTE_MAX)
      bad = "\"note\" is longer than 1000 bytes.";
    else if (cJSON_IsString(note) && !(j->note = strdup(note->valuestring)))
      bad = "Out of memory.";
  }
  cJSON_Delete(root);
  if (bad) {
    set_error(j, 400, "invalid_body", bad);
    return SL_EINVAL;
  }
  return 0;
}

/* -- dispatch -- */

static int is(const http_request *req, const char *m) {
  return strcmp(req->method, m) == 0;
}

void suppression_http(suppression *s, http_request *req) {
  const char *p = req->path + strlen(PREFIX);
  job *j = calloc(1, sizeof *j);
  if (!j) {
    http_respond_error(req, 503, "overloaded", "The server is out of memory.");
    return;
  }
  j->s = s;
  j->req = req;
  buf_init(&j->out, BODY_MAX);
  if (!s->rp) {
    set_error(j, 503, "unavailable", "The suppression list is not available.");
    finish(j);
    return;
  }
  readpool_fn work = NULL;
  int reading = is(req, "GET") || is(req, "HEAD");
  if (*p == 0) {
    if (!reading) {
      set_error(j, 405, "method_not_allowed", "/api/suppression answers GET.");
    } else if (!list_params(j)) {
      j->kind = JK_LIST;
      work = list_work;
    }
  } else if (strcmp(p, "/check") == 0) {
    if (!is(req, "POST")) {
      set_error(j, 405, "method_not_allowed", "/api/suppression/check answers POST.");
    } else {
      j->kind = JK_CHECK;
      work = check_work;
    }
  } else {
    const char *addr = p + 1, *why = NULL;
    if (suppression_address_fold(addr, j->folded, sizeof j->folded, &why)) {
      char shown[80];
      snprintf(shown, sizeof shown, "%.60s", addr);
      for (char *c = shown; *c; c++)
        if ((unsigned char)*c < 0x20) *c = ' ';
      snprintf(j->msg, sizeof j->msg, "\"%s\" is not an email address: %s.", shown, why);
      set_error(j, 400, "invalid_address", j->msg);
      finish(j);
      return;
    }
    snprintf(j->display, sizeof j->display, "%s", addr);
    if (reading) {
      j->kind = JK_GET;
      work = get_work;
    } else if (is(req, "PUT") || is(req, "DELETE")) {
      j->kind = is(req, "PUT") ? JK_PUT : JK_DELETE;
      if (j->kind == JK_PUT && put_body(j)) {
        finish(j);
        return;
      }
      j->sreq.apply = j->kind == JK_PUT ? put_apply : delete_apply;
      j->sreq.cb = write_done;
      j->sreq.ud = j;
      if (!s->st) { /* serve --read-only (the router refuses first) */
        set_error(j, 403, "read_only", "This server runs with --read-only.");
        finish(j);
        return;
      }
      int rc = store_submit(s->st, &j->sreq);
      if (rc) {
        if (rc == SL_EBUSY)
          set_error(j, 503, "overloaded", "Too many writes are waiting; try again.");
        else
          db_failure(j, rc);
        finish(j);
      }
      return;
    } else {
      set_error(j, 405, "method_not_allowed",
                "/api/suppression/{address} answers GET, PUT and DELETE.");
    }
  }
  if (!work) {
    finish(j);
    return;
  }
  if (readpool_run(s->rp, work, read_done, j)) {
    set_error(j, 503, "overloaded", "The server is out of memory.");
    finish(j);
  }
}

/* ---- SES's bulk CSV format ---------------------------------------------- */

/* Trims spaces (and a CR) around a field and one pair of double quotes
 * ("" inside stands for "). */
static char *csv_field(char *s) {
  while (*s == ' ' || *s == '\t') s++;
  size_t n = strlen(s);
  while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n')) n--;
  s[n] = 0;
  if (n >= 2 && s[0] == '"' && s[n - 1] == '"') {
    s[n - 1] = 0;
    s++;
    char *w = s;
    for (char *r = s; *r; r++) {
      *w++ = *r;
      if (r[0] == '"' && r[1] == '"') r++;
    }
    *w = 0;
  }
  return s;
}

int suppression_csv_line(char *line, int first, char **addr, int *reason, const char **why) {
  if (first && (unsigned char)line[0] == 0xef && (unsigned char)line[1] == 0xbb &&
      (unsigned char)line[2] == 0xbf)
    line += 3; /* a byte-order mark, as spreadsheets write */
  char *comma = strchr(line, ',');
  if (!comma) {
    if (!*csv_field(line)) return 1;
    *why = "expected address,reason";
    return SL_EINVAL;
  }
  *comma = 0;
  /* csv_unguard: a cell seslog's export guarded against formulas. */
  char *a = csv_unguard(csv_field(line)), *r = csv_field(comma + 1);
  if (first && (strcasecmp(a, "EmailAddress") == 0 || strcasecmp(a, "address") == 0) &&
      strcasecmp(r, "Reason") == 0)
    return 1;
  int k;
  if (suppression_reason_parse(r, &k) || k == SUP_MANUAL) {
    *why = strchr(r, ',') ? "expected two fields, address,reason"
                          : "the reason must be BOUNCE or COMPLAINT";
    return SL_EINVAL;
  }
  *addr = a;
  if (suppression_address_check(a, why)) return SL_EFIELD;
  *reason = k;
  return 0;
}
