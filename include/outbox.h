/* outbox.h - the durable queue between a commit and the sinks (Slack,
 * DynamoDB): the transactional-outbox pattern.
 *
 * The writer inserts an outbox row in the same transaction as the event
 * that causes it (the store hook), so a crash can lose no alert and no
 * replication. After the commit the rows are handed to the loop, where
 * each sink delivers them (libcurl multi, never blocking) and reports a
 * verdict per row: delivered rows are deleted, failed ones retried with
 * exponential backoff and jitter (or the sink's Retry-After), hopeless ones
 * (a 4xx, too many attempts, too old) moved to the dead state, kept and
 * counted. At start the pending rows are loaded again, so a restart resumes
 * where it stopped. Delivery is at least once: a crash between a sink's
 * acceptance and the commit of its deletion sends that row again. */
#ifndef SESLOG_OUTBOX_H
#define SESLOG_OUTBOX_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "ses.h"
#include "store.h"

#define OUTBOX_MAX_SINKS 4

typedef struct outbox outbox;

struct alert; /* alerts.h */
struct sqlite3;

/* The kind of a row caused by an event (the `kind` column); an alert's
 * rows carry the alert's kind (alert_kind_name). */
#define OUTBOX_KIND_EVENT "event"
/* The kind of a row that summarizes events (outbox_sink.summary_add). */
#define OUTBOX_KIND_SUMMARY "summary"

typedef struct outbox_item {
  int64_t id;               /* outbox.id */
  char *payload;            /* owned; the sink's own format */
  char kind[16];            /* outbox.kind: OUTBOX_KIND_EVENT or an alert's kind */
  int attempts;             /* deliveries tried so far */
  int64_t created_at;       /* ms */
  int64_t next_at;          /* ms; due when <= now */
  int parked;               /* put off by the sink (OUTBOX_LATER with a delay), not failed */
  struct outbox_item *next; /* the sink's queue */
} outbox_item;

enum outbox_verdict {
  OUTBOX_OK = 0, /* delivered: delete */
  OUTBOX_RETRY,  /* failed: try again later */
  OUTBOX_DEAD,   /* will never succeed: keep as dead */
  OUTBOX_LATER   /* not attempted this time (e.g. rate limit) */
};

struct outbox_sink {
  const char *name;   /* "slack", "dynamodb": the `sink` column */
  size_t batch_max;   /* rows handed to deliver at once */
  int max_attempts;   /* then dead */
  int64_t max_age_ms; /* then dead */
  /* Writer thread, inside the event's transaction: the payload this sink
   * wants for e (malloc'ed), or NULL when it wants nothing. */
  char *(*payload)(void *ud, const ses_event *e);
  /* Optional: a sink whose payload can be made again from the event's row
   * (DynamoDB's item). Its rows of kind event are then written with an
   * empty payload (the one made by payload stays in memory only, so the
   * WAL does not carry it twice); a row read back from the database
   * (start, reload) gets its payload from this, on the thread reading it:
   * 0 and *out (malloc'ed) from the event's row event_id of db; SL_EFIELD
   * when there is nothing to deliver any more (the event is gone or no
   * longer wanted: the row is deleted with a log line); SL_EDB or
   * SL_ENOMEM. A row that goes dead is given its payload, for a person. */
  int (*rebuild)(void *ud, struct sqlite3 *db, int64_t event_id, char **out);
  /* Loop thread: deliver items[0..n); call outbox_delivered() once, later
   * (never inside this call). */
  void (*deliver)(void *ud, outbox *ob, int sink, outbox_item **items, size_t n);
  /* Loop thread: the payload of an alert (malloc'ed; NULL on no memory),
   * or NULL for a sink that takes no alerts (alerts_send). */
  char *(*alert_payload)(void *ud, const struct alert *a);
  /* Optional, for a sink that summarizes bursts (Slack's digest): past
   * per_minute rows of kind event in a minute of the writer's clock, an
   * event gets no row of its own. summary_add (writer thread) counts it
   * into *sum (NULL at first) and returns 1, or 0 when the sink wants
   * nothing for it. The counted events share one open row of kind
   * OUTBOX_KIND_SUMMARY, written with summary_payload (malloc'ed; NULL on
   * no memory) once per transaction, so the row commits with the events
   * it counts and survives a crash as their own rows would. The open row
   * is handed to the loop, and stops growing, once no other summary of
   * the sink waits there. summary_free releases a *sum. */
  int per_minute; /* 0: no summaries */
  int (*summary_add)(void *ud, void **sum, const ses_event *e);
  char *(*summary_payload)(void *ud, const void *sum);
  void (*summary_free)(void *ud, void *sum);
  void *ud;
};

/* Creates the outbox; store is set later (outbox_set_store) because the
 * store is opened with the outbox's hook. */
int outbox_new(uv_loop_t *loop, outbox **out);
void outbox_free(outbox *ob);

/* Adds a sink before the store opens; returns its index or a negative
 * code. */
int outbox_add_sink(outbox *ob, const struct outbox_sink *sink);

/* The hook to put in store_opts.hooks. */
struct store_hook outbox_hook(outbox *ob);

/* After store_open, before store_start: remembers the store and loads
 * the pending rows. Returns 0 or SL_EDB. */
int outbox_attach(outbox *ob, store *st);

/* Loop thread: a verdict for each delivered item (verdicts[i] for
 * items[i]); retry_after_ms > 0 overrides the backoff of RETRY and LATER
 * rows; error is kept with failed rows (no secrets in it). */
void outbox_delivered(outbox *ob, int sink, outbox_item **items, size_t n,
                      const enum outbox_verdict *verdicts, int64_t retry_after_ms,
                      const char *error);

/* Loop thread: queues a payload for a sink that no event caused (monitor
 * state changes, unsubscribe warnings; see alerts_send): written durably
 * through the writer as a row of the given kind (under 16 bytes; SL_EINVAL
 * otherwise), then delivered. Also runs extra (may be NULL) in the same
 * transaction, e.g. to record the state change itself. extra_arg is the
 * request's from then on: extra_free (may be NULL) releases it once the
 * request is done, whether or not it was queued. */
int outbox_enqueue(outbox *ob, int sink, const char *kind, const char *payload,
                   int (*extra)(void *arg, struct sqlite3 *db), void *extra_arg,
                   void (*extra_free)(void *arg));

/* Stops delivering (timers closed); in-flight deliveries still report.
 * done is called when the outbox's handles are closed. */
void outbox_close(outbox *ob, void (*done)(void *ud), void *ud);

/* Loop thread: the highest id of a committed row of the sink (rows up to
 * it exist or were delivered). */
int64_t outbox_committed_upto(const outbox *ob, int sink);

/* Loop thread: marks every pending row of the sink with id <= through
 * of the given kind as delivered, in memory and in the
 * database (beyond the rows in memory too), except rows out for delivery,
 * which get their own verdict. For a sink that summarizes a backlog in one
 * message (Slack's digest of events, which must not swallow other kinds). */
void outbox_ack_through(outbox *ob, int sink, int64_t through, const char *kind);

struct outbox_stats {
  int64_t pending;         /* rows waiting (in memory and beyond) */
  int64_t dead;            /* rows in the dead state */
  int64_t delivered;       /* since start */
  int64_t last_success_ms; /* 0 = never */
  int64_t last_error_ms;
  char last_error[200];
};
void outbox_stats(const outbox *ob, int sink, struct outbox_stats *out);
int outbox_sink_count(const outbox *ob);
const char *outbox_sink_name(const outbox *ob, int sink);
/* The definition a sink was added with. */
const struct outbox_sink *outbox_sink_def(const outbox *ob, int sink);

#endif
