/* suppression.h - the suppression list: addresses the application must not
 * mail any more, with the reason and the history of every change.
 *
 * Rules (store hook, inside the transaction of the event that triggers
 * them): a permanent bounce suppresses the bounced recipients (BOUNCE), a
 * complaint the complained recipients (COMPLAINT) unless its feedback type
 * is "not-spam", and soft_bounce_limit transient or undetermined bounces of
 * one address within soft_bounce_days suppress it (BOUNCE). Only the
 * affected recipients of an event are ever touched, never the other
 * recipients of the same mail. A complaint naming more than one recipient
 * marks its entries ambiguous (SES may have guessed who complained).
 *
 * Addresses are compared case-insensitively: the key is the address folded
 * to lower case (ASCII, address.h), the entry keeps the form first given.
 *
 * Threads: the hook and the write functions run on the writer (the
 * store's thread, or the caller's under store_write) through the store's
 * statements (store_stmt: the store finalizes them, so the module owns no
 * statement and may be freed before or after the store); the read functions on any thread with any
 * connection. The endpoints (api_suppression.c) hand reads to the readpool and writes to the store.
 */
#ifndef SESLOG_SUPPRESSION_H
#define SESLOG_SUPPRESSION_H

#include <stddef.h>
#include <stdint.h>

#include "address.h"
#include "store.h"
#include "util.h"

#define SUPPRESSION_ADDRESS_MAX ADDRESS_MAX /* bytes of an address, at most */
#define SUPPRESSION_NOTE_MAX 1000           /* bytes of a note, at most */
#define SUPPRESSION_CHECK_MAX 10000         /* addresses in one bulk check */
#define SUPPRESSION_HISTORY_MAX 100         /* history rows shown with an entry */

enum suppression_reason { SUP_BOUNCE = 0, SUP_COMPLAINT = 1, SUP_MANUAL = 2 };

typedef struct suppression suppression;

struct suppression_opts {
  int soft_bounce_limit; /* transient/undetermined bounces that suppress; 0: rule off */
  int soft_bounce_days;  /* ...within this many days of each other (>= 1) */
};

/* A new module with opts copied. Returns 0, SL_EINVAL (days < 1 with a
 * limit set, or a negative value) or SL_ENOMEM. */
int suppression_new(const struct suppression_opts *opts, suppression **out);

/* Frees s (it owns no statement); call after store_close of every store
 * it was hooked into, since the hook runs until then. NULL is a no-op. */
void suppression_free(suppression *s);

/* Fills h with the rules hook, for store_opts.hooks before store_open. */
void suppression_hook(suppression *s, struct store_hook *h);

/* "BOUNCE", "COMPLAINT", "MANUAL" (or "?"). */
const char *suppression_reason_name(int reason);
/* Parses a reason name (upper case, as in the contract; lower case is
 * accepted too). Returns 0 or SL_EINVAL. */
int suppression_reason_parse(const char *s, int *out);

/* ---- writes (the writer thread, inside its transaction) ----------------- */

/* One manual or imported change. */
struct suppression_change {
  const char *address; /* as given; checked again here */
  int reason;          /* SUP_* */
  const char *note;    /* NULL: none (an update keeps the old note) */
  const char *actor;   /* "api", "cli", ... for the history */
  int keep_existing;   /* 1: an address already listed is left alone
                          (import); 0: its reason and note are replaced */
};

/* Outcomes of a write. */
enum suppression_outcome {
  SUP_ADDED = 1,     /* a new entry */
  SUP_UPDATED = 2,   /* an existing entry changed */
  SUP_UNCHANGED = 3, /* already listed, left alone (keep_existing) */
  SUP_REMOVED = 4,   /* the entry was deleted */
  SUP_ABSENT = 5     /* there was nothing to delete */
};

/* Adds or updates one entry through st's write connection, inside the
 * caller's transaction (an apply of st's writer), and records the change in the history. now: ms.
 * A new entry holds its own "added" row (addedAt, addedBy) until its first
 * change writes it into suppression_history; every reader shows it.
 * Returns 0 and *outcome (SUP_ADDED, SUP_UPDATED or SUP_UNCHANGED),
 * SL_EINVAL for a bad address (nothing written), or SL_EDB. */
int suppression_put(suppression *s, store *st, const struct suppression_change *c, int64_t now,
                    int *outcome);

/* Removes address (any case) and records it in the history (the history
 * of the address is kept). Returns 0 and *outcome (SUP_REMOVED or
 * SUP_ABSENT), SL_EINVAL for a bad address, or SL_EDB. */
int suppression_remove(suppression *s, store *st, const char *address, const char *actor,
                       const char *note, int64_t now, int *outcome);

/* Before the event event_id is deleted (retention): the entry of one of
 * its affected recipients (as the event lists it) that reads its
 * messageId and note from the event (schema version 25) gets them stored.
 * st: prepared from suppression_keep_sql on the writer's connection.
 * Returns 0 or SL_EDB. */
extern const char suppression_keep_sql[];
int suppression_keep_event_fields(struct sqlite3_stmt *st, const char *recipient, int64_t event_id);

/* ---- reads (any connection) --------------------------------------------- */

/* One entry, as read; strings valid until the next row. */
struct suppression_row {
  int64_t id;             /* insertion order */
  const char *address;    /* folded key */
  const char *display;    /* the form first given */
  const char *reason;     /* "BOUNCE", "COMPLAINT", "MANUAL" */
  int64_t created_at;     /* ms */
  int64_t last_event_at;  /* ms; 0 when no event (re)suppressed it */
  int64_t events;         /* SES events that (re)suppressed it */
  const char *message_id; /* of the latest such event, or NULL */
  const char *note;       /* or NULL */
  int ambiguous;          /* set by a complaint naming several recipients */
};

/* Filters of a listing; zero/NULL fields do not filter. */
struct suppression_filter {
  int reason;         /* SUP_*, or -1: any */
  const char *domain; /* folded domain, exact */
  int64_t since;      /* createdAt >= since (ms); 0: no bound */
  const char *search; /* folded substring of the address */
  int64_t before_id;  /* keyset cursor: only ids below; 0: from the newest */
  long limit;         /* rows at most; 0: every row */
};

/* Calls fn for each matching entry, newest first (by id). fn returns 0 to
 * go on, nonzero to stop (that value is returned). Returns 0, the value
 * fn stopped with, SL_EBUSY when the statement was interrupted, or SL_EDB. */
int suppression_list(struct sqlite3 *db, const struct suppression_filter *f,
                     int (*fn)(void *ud, const struct suppression_row *row), void *ud);

/* Looks up address (folded by the caller) and calls fn once when it is
 * listed. Returns 0 (and *found), SL_EBUSY or SL_EDB. */
int suppression_get(struct sqlite3 *db, const char *folded,
                    void (*fn)(void *ud, const struct suppression_row *row), void *ud, int *found);

/* Appends the API JSON of one entry: {"address","reason","createdAt",
 * "lastEventAt","events","messageId","note","ambiguous"}. Returns 0 or
 * SL_ETOOBIG. */
int suppression_row_json(const struct suppression_row *row, buf *out);

/* Appends the entry of folded as suppression_row_json does when it is
 * listed (*found 1); appends nothing when not. Returns 0, SL_ETOOBIG,
 * SL_EBUSY or SL_EDB. */
int suppression_get_json(struct sqlite3 *db, const char *folded, buf *out, int *found);

/* The bulk check of the n addresses (each checked by
 * address_check already, any case): appends
 * {"results":[{"address":as given,"suppressed":true,"reason":...,
 * "entry":{...}} or {...,"suppressed":false,"reason":null}...],
 * "checked":n,"suppressed":N}, in the order given. Returns 0, SL_ENOMEM,
 * SL_ETOOBIG, SL_EBUSY or SL_EDB. */
int suppression_check_json(struct sqlite3 *db, const char *const *addresses, int n, buf *out);

/* For other endpoints (GET /api/recipients/{address}): appends the entry
 * of address (any case) as suppression_row_json does, or `null` when it is
 * not listed or not a valid address. Returns 0, SL_ETOOBIG, SL_EBUSY or
 * SL_EDB. */
int suppression_entry_json(struct sqlite3 *db, const char *address, buf *out);

/* Appends the history of address (folded), newest first, at most max rows,
 * as a JSON array of {"at","action","actor","reason","note","messageId",
 * "eventAt"}. Returns 0, SL_ETOOBIG, SL_EBUSY or SL_EDB. */
int suppression_history_json(struct sqlite3 *db, const char *folded, int max, buf *out);

#endif
