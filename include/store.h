/* store.h - the SQLite database: schema, the one writer, group commit.
 *
 * One connection writes, on its own thread in the server (store_start) or
 * on the caller's thread for the command-line tools (store_write). Each
 * batch of events is one transaction holding everything the events imply:
 * the event rows, their recipients, the per-minute rollup counters and the
 * outbox rows. A request learns its result only after the commit is
 * durable (WAL, synchronous=FULL). */
#ifndef SESLOG_STORE_H
#define SESLOG_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "ses.h"

struct sqlite3;

enum store_result {
  STORE_STORED = 1,   /* a new event */
  STORE_DUPLICATE = 2 /* the same event was already stored */
};

typedef struct store store;

/* What the writer would otherwise work out from an event alone, worked out
 * beforehand on the thread that made the event (store_prepare). */
typedef struct store_prep store_prep;

/* One event on its way to the disk. The caller allocates it, sets ev (taken
 * by the store: freed with the request by store_req_free) and cb, and gets
 * it back through cb with result set. */
typedef struct store_req {
  ses_event *ev; /* the event; owned; NULL for a request
                    that only records a topic's state */
  /* Subscription bookkeeping, written in the same transaction by the
   * subscriptions' hook (subs_hook). An event counts as a message of
   * ev->topic_arn; a request without an event names its topic here. */
  char *topic_arn;       /* owned; used when ev is NULL */
  const char *sub_state; /* static "pending", "confirmed",
                            "unsubscribed", or NULL: no change */
  char *sub_arn;         /* owned SubscriptionArn, or NULL */
  int counts_as_message; /* 1: a message of the topic arrived */
  int64_t at_ms;         /* when (arrival), for the topic */
  /* Any other write: called by the writer inside the batch transaction,
   * in queue order, with the write connection. It sets req->result
   * (STORE_STORED, or a negative code for a refusal that leaves the batch
   * alone) and returns 0, or SL_EDB to roll the whole batch back. */
  int (*apply)(struct store_req *req, struct sqlite3 *db);
  int result;                     /* STORE_* or a negative sl_err */
  int64_t event_id;               /* SesEventMessages.id when stored */
  void (*cb)(struct store_req *); /* called by store_complete */
  void *ud;                       /* the caller's data, for apply and cb alike: the one way to
                                     reach it (e.g. the struct the request is embedded in) */
  struct store_req *next;         /* queue link, the store's */
  char why[160];                  /* a refused event's reason (SQLite's), or "" */
  store_prep *prep;               /* owned; ev prepared by store_prepare, or NULL:
                                     the writer works it out itself */
} store_req;

/* Work that every stored event implies (suppression rules, outbox rows),
 * done by the writer inside the event's transaction. */
struct store_hook {
  /* A new event was inserted with id event_id: writes what it implies
   * through st's statements (store_stmt).
   * Returns 0, or SL_EDB to roll the batch back. */
  int (*on_event)(void *ud, struct store *st, const ses_event *e, int64_t event_id, int64_t now);
  /* Every request of the batch was applied (results set): writes what
   * the batch implies as a whole, through st's statements (store_stmt).
   * Returns 0, or SL_EDB to roll the batch back. May be NULL. */
  int (*on_batch)(void *ud, struct store *st, struct store_req **reqs, size_t n, int64_t now);
  /* The batch's transaction ended: committed (ok 1) or rolled back. */
  void (*after_commit)(void *ud, int ok);
  void *ud;
};

#define STORE_MAX_HOOKS 8

struct store_opts {
  struct store_hook hooks[STORE_MAX_HOOKS];
  int n_hooks;
  int64_t busy_timeout_ms;  /* wait for a locked database, then fail */
  int queue_max;            /* events waiting before submit says SL_EBUSY */
  int batch_max;            /* events in one transaction at most */
  void (*notify)(void *ud); /* writer thread: results are ready */
  void *notify_ud;
};

/* Opens (creating the folder and file when needed) and migrates the
 * database. On failure returns a negative code and writes one sentence
 * into err. */
int store_open(const char *path, const struct store_opts *opts, store **out, char *err,
               size_t errlen);

/* Starts the writer thread. Returns 0 or SL_ENOMEM. */
int store_start(store *s);

/* Queues req for the writer; thread-safe. Returns 0, SL_EBUSY when the
 * queue is full or SL_ESHUTDOWN after store_close began; on failure req is
 * still the caller's. */
int store_submit(store *s, store_req *req);

/* Calls cb of every request whose transaction finished; call it on the
 * thread that should see results, when notify fired. */
void store_complete(store *s);

/* Writes n events in one transaction on the calling thread (no writer
 * thread may be running). Sets each req->result. Returns 0 or the error
 * every request got. */
int store_write(store *s, store_req **reqs, size_t n);

/* Stops the writer after it wrote everything queued, completes what is
 * left (call store_complete once more after), and closes the database. */
void store_stop(store *s);
void store_close(store *s);

/* 0 when the last write succeeded; else the error and *why a sentence. */
int store_health(store *s, char *why, size_t whylen);

/* Events waiting for the writer. */
int store_queue_depth(store *s);

void store_req_free(store_req *req);

/* Works out, on the calling thread, what writing e needs but the database
 * does not: the content hash, the original JSON compressed with the
 * dictionary current at this moment (the row names the one it used, so a
 * dictionary trained meanwhile changes nothing), and the texts of its list
 * fields. Put the result in the event's request (req->prep, with req->ev
 * e): the writer then only binds and steps, and stores the same row it
 * would have made itself. e must not change afterwards (but see
 * store_prep_drop_raw). Thread-safe.
 * Returns 0, or SL_ENOMEM (nothing prepared: the writer does it). */
int store_prepare(store *s, const ses_event *e, store_prep **out);

void store_prep_free(store_prep *p);

/* Frees e's original JSON (e->raw NULL, raw_len kept) when p, made from
 * e by store_prepare, holds it compressed with a dictionary: that frame is
 * all the writer stores, and the one lookup that reads the text (a twin,
 * for an event whose messageId is stored already: twin.h) decodes it from
 * p again. A batch of events waiting for the writer then takes about half
 * the memory. Call it on the thread that owns e, before the writer has
 * it. Returns 1 when freed, 0 when e keeps its text. */
int store_prep_drop_raw(const store_prep *p, ses_event *e);

/* For a writer of many events at once (seslog import), before it writes
 * the first of reqs (nothing else writing meanwhile): when the database
 * has no compression dictionary yet, trains the first one on the n
 * events of reqs, held in memory, stores it and compresses their
 * prepared originals with it, so no row of the import waits plain for a
 * dictionary trained on committed rows. Does nothing when a dictionary
 * exists or the events are too few. Returns 0, SL_EDB or SL_ENOMEM (the
 * events are written as prepared either way). */
int store_train_first(store *s, store_req **reqs, size_t n);

/* Writer connection (the writer thread, or the caller before store_start):
 * the statement of sql, prepared on first use and kept by the store, which
 * finalizes it in store_close, so modules that write through the store
 * (its hooks, its requests) own no statement of its connection. sql must
 * live as long as the store (a string literal). Reset it after use.
 * Returns NULL, logged, when it cannot be prepared. */
struct sqlite3_stmt *store_stmt(store *s, const char *sql);

/* The database path given to store_open. */
const char *store_path(const store *s);

#endif
