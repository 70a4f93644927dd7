/* outbox.c - durable queue from commits to sinks. See outbox.h.
 *
 * Threads: rows are created on the writer thread (hook, apply requests)
 * and handed to the loop through `inbox` (mutex + uv_async). Everything
 * else - queues, timers, verdicts - lives on the loop. Which rows are in
 * memory is decided on the writer thread alone (mem_upto, overflow), so no
 * row can fall between a reload and new inserts: past MEM_MAX rows in
 * memory, new rows stay only in the database until the loop asks for them
 * (a reload apply request, also run by the writer). */
#include "outbox.h"

#include <assert.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "log.h"
#include "util.h"

#define DUE_GRACE_MS 200  /* see pump */
#define MEM_MAX 20000     /* rows of one sink in memory at most */
#define RELOAD_BATCH 5000 /* rows read back at once */
/* A sink whose rows keep no payload (outbox_sink.rebuild) has each read
 * row's payload made again on the writer, inside the batch it joins (tens
 * of microseconds a row): fewer at once, so one reload holds the events
 * queued behind it for tens of milliseconds, not a fifth of a second. */
#define RELOAD_BATCH_REBUILD 1000
#define BACKOFF_BASE_MS 1000 /* first retry after about this */
#define BACKOFF_MAX_MS (15 * 60 * 1000)

typedef struct sink_state {
  struct outbox_sink def;
  /* loop thread */
  outbox_item *head, *tail; /* in memory, in id order */
  int64_t in_memory;
  int in_flight;       /* a deliver call is out */
  outbox_item **batch; /* the items handed to deliver; freed at the verdict */
  int pump_soon;       /* the timer is set to pump at once */
  int reloading;       /* a reload request is out */
  int acking;          /* outbox_ack_through requests still deleting chunks */
  uv_timer_t timer;    /* next due time */
  int64_t delivered, dead, last_success_ms, last_error_ms;
  char last_error[200];

  int64_t summaries; /* rows of kind OUTBOX_KIND_SUMMARY in memory */
  int sealing;       /* a seal request is out */

  /* writer thread */
  int64_t mem_upto; /* highest id handed to the loop */
  int overflow;     /* rows beyond mem_upto exist only in the database */
  /* the open summary (def.per_minute) */
  int64_t minute;      /* the minute of the writer's clock counted */
  int in_minute;       /* rows of kind event in it */
  void *sum;           /* the open summary's counts; NULL when none is open */
  int64_t sum_id;      /* its row (0 until written) */
  int sum_dirty;       /* events counted since the last write */
  int sum_new;         /* the row was inserted by the open transaction */
  int seal;            /* hand the open summary to the loop at this commit */
  char *sum_written;   /* the payload written by the open transaction */
  char *sum_committed; /* the payload as last committed */
  /* shared */
  atomic_llong staged;         /* rows handed to the loop and not yet gone from memory */
  atomic_llong pending;        /* pending rows in the database: + at commit, - at verdict */
  atomic_llong committed_upto; /* highest id of a committed row */
  atomic_llong open_summary;   /* the committed open summary's row id, 0 when none */
} sink_state;

struct outbox {
  uv_loop_t *loop;
  store *st;
  sink_state sinks[OUTBOX_MAX_SINKS];
  int n_sinks;
  uv_async_t async; /* the writer handed rows over */
  int handles_open;
  int closing;
  void (*closed_cb)(void *);
  void *closed_ud;
  /* writer thread */
  outbox_item *staging[OUTBOX_MAX_SINKS]; /* rows of the open transaction */
  outbox_item *staging_tail[OUTBOX_MAX_SINKS];
  int64_t staged_upto[OUTBOX_MAX_SINKS]; /* mem_upto if the transaction commits */
  int64_t inserted[OUTBOX_MAX_SINKS];    /* rows inserted by the open transaction */
  int64_t last_insert[OUTBOX_MAX_SINKS]; /* its highest id */
  /* shared, under mu */
  pthread_mutex_t mu;
  outbox_item *inbox[OUTBOX_MAX_SINKS];
  outbox_item *inbox_tail[OUTBOX_MAX_SINKS];
};

static void pump(outbox *ob, int sink);

static void item_free(outbox_item *it) {
  if (!it) return;
  free(it->payload);
  free(it);
}

static void free_list(outbox_item *it) {
  while (it) {
    outbox_item *next = it->next;
    item_free(it);
    it = next;
  }
}

static void on_async(uv_async_t *a);
static void on_timer(uv_timer_t *t);

int outbox_new(uv_loop_t *loop, outbox **out) {
  outbox *ob = calloc(1, sizeof *ob);
  if (!ob) return SL_ENOMEM;
  ob->loop = loop;
  pthread_mutex_init(&ob->mu, NULL);
  uv_async_init(loop, &ob->async, on_async);
  ob->async.data = ob;
  ob->handles_open = 1;
  *out = ob;
  return 0;
}

int outbox_add_sink(outbox *ob, const struct outbox_sink *def) {
  if (ob->n_sinks == OUTBOX_MAX_SINKS) return SL_EINVAL;
  int i = ob->n_sinks++;
  sink_state *s = &ob->sinks[i];
  memset(s, 0, sizeof *s);
  s->def = *def;
  if (!s->def.batch_max) s->def.batch_max = 1;
  if (!s->def.max_attempts) s->def.max_attempts = 30;
  if (!s->def.max_age_ms) s->def.max_age_ms = 3LL * 86400 * 1000;
  atomic_init(&s->staged, 0);
  uv_timer_init(ob->loop, &s->timer);
  s->timer.data = ob;
  ob->handles_open++;
  return i;
}

int outbox_sink_count(const outbox *ob) {
  return ob->n_sinks;
}

const char *outbox_sink_name(const outbox *ob, int sink) {
  return ob->sinks[sink].def.name;
}

const struct outbox_sink *outbox_sink_def(const outbox *ob, int sink) {
  return &ob->sinks[sink].def;
}

/* 1 when def's rows of this kind are written without their payload, which
 * def->rebuild makes again from the event when the row is read back. */
static int payload_rebuilt(const struct outbox_sink *def, const char *kind) {
  return def->rebuild && strcmp(kind, OUTBOX_KIND_EVENT) == 0;
}

/* ---- writer thread ---------------------------------------------------- */

/* Inserts one row of a kind, counted for the open transaction; its id
 * into *id. Returns 0 or SL_EDB. */
static int write_row(outbox *ob, int sink, const char *kind, int64_t event_id, const char *payload,
                     int64_t now, int64_t *id) {
  sqlite3_stmt *st = store_stmt(ob->st,
                                "INSERT INTO outbox (sink, eventId, payload, createdAt, "
                                "nextAttemptAt, kind) VALUES (?,?,?,?,?,?)");
  if (!st) return SL_EDB;
  sqlite3_bind_text(st, 1, ob->sinks[sink].def.name, -1, SQLITE_STATIC);
  if (event_id)
    sqlite3_bind_int64(st, 2, event_id);
  else
    sqlite3_bind_null(st, 2);
  /* a payload the sink can make again from the event stays in memory */
  int rebuilt = event_id && payload_rebuilt(&ob->sinks[sink].def, kind);
  sqlite3_bind_text(st, 3, rebuilt ? "" : payload, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 4, now);
  sqlite3_bind_int64(st, 5, now);
  sqlite3_bind_text(st, 6, kind, -1, SQLITE_STATIC);
  int rc = sqlite3_step(st);
  sqlite3_reset(st);
  if (rc != SQLITE_DONE) return SL_EDB;
  *id = sqlite3_last_insert_rowid(sqlite3_db_handle(st));
  ob->inserted[sink]++;
  ob->last_insert[sink] = *id;
  return 0;
}

/* Puts a committed-to-be row into the open transaction's staging list
 * (handed to the loop at the commit). Takes payload; returns 0, or -1 when
 * out of memory (the row stays in the database only). */
static int stage_row(outbox *ob, int sink, int64_t id, const char *kind, char *payload,
                     int64_t now) {
  outbox_item *it = calloc(1, sizeof *it);
  if (!it) {
    free(payload);
    return -1;
  }
  it->id = id;
  it->payload = payload;
  snprintf(it->kind, sizeof it->kind, "%s", kind);
  it->created_at = it->next_at = now;
  if (ob->staging_tail[sink])
    ob->staging_tail[sink]->next = it;
  else
    ob->staging[sink] = it;
  ob->staging_tail[sink] = it;
  if (id > ob->staged_upto[sink]) ob->staged_upto[sink] = id;
  atomic_fetch_add(&ob->sinks[sink].staged, 1);
  return 0;
}

/* Inserts one row of a kind; stages it for the loop unless the sink is in
 * overflow. Takes payload. */
static int insert_row(outbox *ob, int sink, const char *kind, int64_t event_id, char *payload,
                      int64_t now) {
  int64_t id;
  if (write_row(ob, sink, kind, event_id, payload, now, &id)) {
    free(payload);
    return SL_EDB;
  }
  sink_state *s = &ob->sinks[sink];
  if (s->overflow || atomic_load(&s->staged) >= MEM_MAX) {
    s->overflow = 1;
    free(payload);
    return 0;
  }
  /* Out of memory: the row is safe in the database; it comes back with a
   * reload. */
  if (stage_row(ob, sink, id, kind, payload, now)) s->overflow = 1;
  return 0;
}

/* Writer thread: 1 when the sink's next event goes into the open summary
 * rather than a row of its own (past per_minute rows this minute, or a
 * summary already open). */
static int summarizing(sink_state *s, int64_t now) {
  if (!s->def.per_minute || !s->def.summary_add) return 0;
  if (now / 60000 != s->minute) {
    s->minute = now / 60000;
    s->in_minute = 0;
  }
  return s->sum || s->in_minute >= s->def.per_minute;
}

/* Writes the open summary of a sink once per transaction (inserted the
 * first time, then updated in place), and stages it for the loop when a
 * seal was asked and the sink is not in overflow (then every pending row
 * below it is in memory already, so mem_upto may pass it). */
static int write_summary(outbox *ob, int sink, int64_t now) {
  sink_state *s = &ob->sinks[sink];
  if (!s->sum) {
    s->seal = 0;
    return 0;
  }
  if (s->sum_dirty) {
    char *payload = s->def.summary_payload(s->def.ud, s->sum);
    if (!payload) return SL_EDB;
    int rc = 0;
    if (!s->sum_id) {
      rc = write_row(ob, sink, OUTBOX_KIND_SUMMARY, 0, payload, now, &s->sum_id);
      s->sum_new = !rc;
    } else {
      sqlite3_stmt *st = store_stmt(ob->st, "UPDATE outbox SET payload = ? WHERE id = ?");
      if (!st) rc = SL_EDB;
      if (!rc) {
        sqlite3_bind_text(st, 1, payload, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, s->sum_id);
        rc = sqlite3_step(st) == SQLITE_DONE ? 0 : SL_EDB;
        sqlite3_reset(st);
      }
    }
    if (rc) {
      free(payload);
      return rc;
    }
    free(s->sum_written);
    s->sum_written = payload;
    s->sum_dirty = 0;
  }
  if (s->seal && (s->overflow || atomic_load(&s->staged) >= MEM_MAX)) s->seal = 0;
  if (s->seal) {
    const char *p = s->sum_written ? s->sum_written : s->sum_committed;
    char *copy = p ? util_strdup(p) : NULL;
    if (!copy || stage_row(ob, sink, s->sum_id, OUTBOX_KIND_SUMMARY, copy, now)) s->seal = 0;
  }
  return 0;
}

static void summary_close(sink_state *s) {
  if (s->sum) s->def.summary_free(s->def.ud, s->sum);
  s->sum = NULL;
  s->sum_id = 0;
  s->sum_dirty = 0;
  free(s->sum_committed);
  s->sum_committed = NULL;
}

static int hook_on_event(void *ud, store *st, const ses_event *e, int64_t event_id, int64_t now) {
  outbox *ob = ud;
  (void)st; /* rows go through store_stmt on ob->st */
  for (int i = 0; i < ob->n_sinks; i++) {
    sink_state *s = &ob->sinks[i];
    if (!s->def.payload) continue;
    if (summarizing(s, now)) {
      if (s->def.summary_add(s->def.ud, &s->sum, e)) s->sum_dirty = 1;
      if (s->sum_dirty && !s->sum) return SL_EDB; /* no memory for the counts */
      continue;
    }
    char *payload = s->def.payload(s->def.ud, e);
    if (!payload) continue;
    if (insert_row(ob, i, OUTBOX_KIND_EVENT, event_id, payload, now)) return SL_EDB;
    s->in_minute++;
  }
  return 0;
}

static int hook_on_batch(void *ud, store *st, store_req **reqs, size_t n, int64_t now) {
  outbox *ob = ud;
  (void)st;
  (void)reqs;
  (void)n;
  for (int i = 0; i < ob->n_sinks; i++)
    if (write_summary(ob, i, now)) return SL_EDB;
  return 0;
}

/* The open summary at the end of a transaction. Committed: its payload is
 * the committed one, and a sealed summary is closed (the next event opens
 * another). Rolled back: its counts include events that do not exist, so
 * it is closed; a row committed earlier is handed to the loop as committed
 * when no row beyond mem_upto can be skipped by that, otherwise it waits
 * in the database for a reload or a restart. */
static void summary_after_commit(outbox *ob, int sink, int ok) {
  sink_state *s = &ob->sinks[sink];
  if (ok) {
    if (s->sum_written) {
      free(s->sum_committed);
      s->sum_committed = s->sum_written;
      s->sum_written = NULL;
    }
    if (s->seal) summary_close(s);
  } else {
    free(s->sum_written);
    s->sum_written = NULL;
    if (s->sum && !s->sum_new && s->sum_committed && !s->overflow) {
      char *copy = util_strdup(s->sum_committed);
      if (copy) stage_row(ob, sink, s->sum_id, OUTBOX_KIND_SUMMARY, copy, util_now_ms());
    }
    summary_close(s);
  }
  s->seal = 0;
  s->sum_new = 0;
  atomic_store(&s->open_summary, s->sum ? s->sum_id : 0);
}

static void hook_after_commit(void *ud, int ok) {
  outbox *ob = ud;
  int any = 0;
  for (int i = 0; i < ob->n_sinks; i++) {
    sink_state *s = &ob->sinks[i];
    if (ok) atomic_fetch_add(&s->pending, ob->inserted[i]);
    if (ok && ob->last_insert[i]) atomic_store(&s->committed_upto, ob->last_insert[i]);
    ob->last_insert[i] = 0;
    ob->inserted[i] = 0;
    if (!ok) {
      /* Rolled back: the rows do not exist. */
      for (outbox_item *it = ob->staging[i]; it; it = it->next) atomic_fetch_sub(&s->staged, 1);
      free_list(ob->staging[i]);
      ob->staging[i] = ob->staging_tail[i] = NULL;
      ob->staged_upto[i] = s->mem_upto;
    }
    int64_t was_open = atomic_load(&s->open_summary);
    summary_after_commit(ob, i, ok); /* after a rollback it may stage a committed summary */
    if (atomic_load(&s->open_summary) != was_open) any = 1;
    outbox_item *list = ob->staging[i];
    ob->staging[i] = ob->staging_tail[i] = NULL;
    if (!list) continue;
    s->mem_upto = ob->staged_upto[i];
    outbox_item *tail = list;
    while (tail->next) tail = tail->next;
    pthread_mutex_lock(&ob->mu);
    if (ob->inbox_tail[i])
      ob->inbox_tail[i]->next = list;
    else
      ob->inbox[i] = list;
    ob->inbox_tail[i] = tail;
    pthread_mutex_unlock(&ob->mu);
    any = 1;
  }
  if (any) uv_async_send(&ob->async);
}

struct store_hook outbox_hook(outbox *ob) {
  return (struct store_hook){.on_event = hook_on_event,
                             .on_batch = hook_on_batch,
                             .after_commit = hook_after_commit,
                             .ud = ob};
}

/* The payload of a row read back: its own, or for a row of a sink that
 * rebuilds payloads (written empty) the one made again from its event.
 * Sets *gone (and returns 0) when the row has nothing left to deliver.
 * Returns 0, SL_EDB or SL_ENOMEM. */
static int row_payload(sqlite3 *db, const struct outbox_sink *def, sqlite3_stmt *st, char **out,
                       int *gone) {
  const char *p = (const char *)sqlite3_column_text(st, 1);
  *gone = 0;
  if (def->rebuild && (!p || !*p) && sqlite3_column_type(st, 6) == SQLITE_INTEGER) {
    int64_t event_id = sqlite3_column_int64(st, 6);
    int rc = def->rebuild(def->ud, db, event_id, out);
    if (rc == SL_EFIELD) {
      char id[24];
      snprintf(id, sizeof id, "%lld", (long long)event_id);
      log_kv(LOG_WARN, "outbox: a pending row's event is gone (retention?); the row is dropped",
             "sink", def->name, "eventId", id, NULL);
      *gone = 1;
      return 0;
    }
    return rc;
  }
  *out = util_strdup(p ? p : "");
  return *out ? 0 : SL_ENOMEM;
}

/* Deletes a row whose event is gone (row_payload). Returns 0 or SL_EDB. */
static int drop_row(sqlite3 *db, int64_t id) {
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(db, "DELETE FROM outbox WHERE id = ?", -1, &st, NULL) != SQLITE_OK)
    return SL_EDB;
  sqlite3_bind_int64(st, 1, id);
  int rc = sqlite3_step(st);
  sqlite3_finalize(st);
  return rc == SQLITE_DONE ? 0 : SL_EDB;
}

/* Reads up to limit pending rows of a sink with id > after into a list;
 * rows whose event is gone are deleted instead, counted in *dropped.
 * Returns the count of rows read, dropped ones included (0..limit), or
 * SL_EDB. */
static int read_pending(sqlite3 *db, const struct outbox_sink *def, int64_t after, int limit,
                        outbox_item **head, int64_t *last_id, int64_t *dropped) {
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(db,
                         "SELECT id, payload, attempts, createdAt, nextAttemptAt, kind, eventId "
                         "FROM outbox WHERE sink = ? AND state = 'pending' AND id > ? ORDER BY id "
                         "LIMIT ?",
                         -1, &st, NULL) != SQLITE_OK)
    return SL_EDB;
  sqlite3_bind_text(st, 1, def->name, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, after);
  sqlite3_bind_int(st, 3, limit);
  outbox_item *tail = NULL;
  int n = 0, rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    char *payload = NULL;
    int gone = 0;
    int prc = row_payload(db, def, st, &payload, &gone);
    if (!prc && gone) {
      *last_id = sqlite3_column_int64(st, 0);
      n++;
      if (drop_row(db, *last_id)) {
        rc = SQLITE_ERROR;
        break;
      }
      (*dropped)++;
      continue;
    }
    outbox_item *it = prc ? NULL : calloc(1, sizeof *it);
    if (!it) {
      free(payload);
      rc = prc == SL_EDB ? SQLITE_ERROR : SQLITE_NOMEM;
      break;
    }
    it->payload = payload;
    it->id = sqlite3_column_int64(st, 0);
    it->attempts = sqlite3_column_int(st, 2);
    it->created_at = sqlite3_column_int64(st, 3);
    it->next_at = sqlite3_column_int64(st, 4);
    const char *kind = (const char *)sqlite3_column_text(st, 5);
    snprintf(it->kind, sizeof it->kind, "%s", kind ? kind : "");
    if (tail)
      tail->next = it;
    else
      *head = it;
    tail = it;
    *last_id = it->id;
    n++;
  }
  sqlite3_finalize(st);
  return rc == SQLITE_DONE ? n : SL_EDB;
}

static int64_t max_id(sqlite3 *db, const char *sink) {
  sqlite3_stmt *st;
  int64_t n = 0;
  if (sqlite3_prepare_v2(db, "SELECT coalesce(max(id), 0) FROM outbox WHERE sink = ?", -1, &st,
                         NULL) != SQLITE_OK)
    return 0;
  sqlite3_bind_text(st, 1, sink, -1, SQLITE_STATIC);
  if (sqlite3_step(st) == SQLITE_ROW) n = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  return n;
}

static int64_t count_rows(sqlite3 *db, const char *sink, const char *state) {
  sqlite3_stmt *st;
  int64_t n = 0;
  if (sqlite3_prepare_v2(db, "SELECT count(*) FROM outbox WHERE sink = ? AND state = ?", -1, &st,
                         NULL) != SQLITE_OK)
    return 0;
  sqlite3_bind_text(st, 1, sink, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, state, -1, SQLITE_STATIC);
  if (sqlite3_step(st) == SQLITE_ROW) n = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  return n;
}

/* A reload: the writer reads the next rows beyond mem_upto and stages
 * them like new rows (they reach the loop after this batch commits). */
typedef struct reload_req {
  store_req req;
  outbox *ob;
  int sink;
} reload_req;

static int apply_reload(store_req *r, sqlite3 *db) {
  reload_req *rr = r->ud;
  outbox *ob = rr->ob;
  sink_state *s = &ob->sinks[rr->sink];
  outbox_item *list = NULL;
  int64_t last = s->mem_upto, dropped = 0;
  int max = s->def.rebuild ? RELOAD_BATCH_REBUILD : RELOAD_BATCH;
  int n = read_pending(db, &s->def, s->mem_upto, max, &list, &last, &dropped);
  atomic_fetch_sub(&s->pending, dropped); /* deleted in this batch */
  if (n < 0) {
    free_list(list);
    r->result = SL_EDB;
    return 0; /* a failed read leaves the batch alone */
  }
  if (n < max) s->overflow = 0;
  /* Rows inserted earlier in this batch are in staging already; the read
   * saw them too (same connection): keep only the older ones from it. */
  outbox_item **pp = &list;
  int64_t staged_first = ob->staging[rr->sink] ? ob->staging[rr->sink]->id : INT64_MAX;
  while (*pp) {
    /* the open summary is not due yet: it reaches the loop when sealed */
    if ((*pp)->id >= staged_first || (s->sum_id && (*pp)->id == s->sum_id)) {
      outbox_item *dup = *pp;
      *pp = dup->next;
      item_free(dup);
    } else {
      atomic_fetch_add(&s->staged, 1);
      pp = &(*pp)->next;
    }
  }
  if (list) {
    outbox_item *tail = list;
    while (tail->next) tail = tail->next;
    tail->next = ob->staging[rr->sink];
    if (!ob->staging[rr->sink]) {
      ob->staging_tail[rr->sink] = tail;
      ob->staged_upto[rr->sink] = last;
    }
    ob->staging[rr->sink] = list;
  }
  r->result = STORE_STORED;
  return 0;
}

static void on_reload_done(store_req *r) {
  reload_req *rr = r->ud;
  rr->ob->sinks[rr->sink].reloading = 0;
  free(rr);
}

/* ---- loop thread ------------------------------------------------------ */

int outbox_attach(outbox *ob, store *st) {
  ob->st = st;
  sqlite3 *db = NULL;
  char err[256];
  /* At start, before the writer runs, read with a connection of our own
   * (it deletes the rows whose event is gone: see read_pending). */
  if (sqlite3_open_v2(store_path(st), &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
    sqlite3_close(db);
    return SL_EDB;
  }
  (void)err;
  int rc = 0;
  for (int i = 0; i < ob->n_sinks && !rc; i++) {
    sink_state *s = &ob->sinks[i];
    outbox_item *list = NULL;
    int64_t last = 0, dropped = 0;
    int n = read_pending(db, &s->def, 0, MEM_MAX, &list, &last, &dropped);
    if (n < 0) {
      free_list(list);
      rc = SL_EDB;
      break;
    }
    n -= (int)dropped; /* the rows in memory */
    int64_t pending = count_rows(db, s->def.name, "pending");
    atomic_store(&s->committed_upto, max_id(db, s->def.name));
    atomic_store(&s->pending, pending);
    s->dead = count_rows(db, s->def.name, "dead");
    s->mem_upto = last;
    s->overflow = pending > n;
    atomic_store(&s->staged, n);
    s->head = list;
    for (outbox_item *it = list; it; it = it->next) {
      s->tail = it;
      if (strcmp(it->kind, OUTBOX_KIND_SUMMARY) == 0) s->summaries++;
    }
    s->in_memory = n;
    if (n)
      log_kv(LOG_INFO, "outbox: resuming pending deliveries", "sink", s->def.name, "pending",
             n == MEM_MAX ? "20000+" : "some", NULL);
  }
  sqlite3_close(db);
  for (int i = 0; i < ob->n_sinks; i++) pump(ob, i);
  return rc;
}

static void on_async(uv_async_t *a) {
  outbox *ob = a->data;
  for (int i = 0; i < ob->n_sinks; i++) {
    pthread_mutex_lock(&ob->mu);
    outbox_item *list = ob->inbox[i], *tail = ob->inbox_tail[i];
    ob->inbox[i] = ob->inbox_tail[i] = NULL;
    pthread_mutex_unlock(&ob->mu);
    sink_state *s = &ob->sinks[i];
    if (!list) {
      /* A summary opened with nothing else to pump for: the seal waits on
       * a pump. */
      if (atomic_load(&s->open_summary) && !s->summaries && !s->sealing) pump(ob, i);
      continue;
    }
    if (s->tail)
      s->tail->next = list;
    else
      s->head = list;
    s->tail = tail;
    for (outbox_item *it = list; it; it = it->next) {
      s->in_memory++;
      if (strcmp(it->kind, OUTBOX_KIND_SUMMARY) == 0) s->summaries++;
    }
    pump(ob, i);
  }
}

static void on_timer(uv_timer_t *t) {
  outbox *ob = t->data;
  for (int i = 0; i < ob->n_sinks; i++)
    if (t == &ob->sinks[i].timer) pump(ob, i);
}

/* Hands the due rows of a sink to its deliver function, or arms the timer
 * for the next due row; asks the writer for more rows when memory ran low
 * and the database holds more. */
static int cmp_item_id(const void *a, const void *b) {
  int64_t x = (*(outbox_item *const *)a)->id, y = (*(outbox_item *const *)b)->id;
  return x < y ? -1 : x > y;
}

/* A seal: the writer hands the open summary to the loop at the next
 * commit (write_summary). */
typedef struct seal_req {
  store_req req;
  outbox *ob;
  int sink;
} seal_req;

static int apply_seal(store_req *r, sqlite3 *db) {
  seal_req *q = r->ud;
  (void)db;
  q->ob->sinks[q->sink].seal = 1;
  r->result = STORE_STORED;
  return 0;
}

/* The sealed summary reached the inbox at the commit, before this
 * callback: take it in now, so the pump that follows delivers it with the
 * summaries that waited for it. */
static void on_seal_done(store_req *r) {
  seal_req *q = r->ud;
  outbox *ob = q->ob;
  int sink = q->sink;
  ob->sinks[sink].sealing = 0;
  free(q);
  if (ob->closing) return;
  on_async(&ob->async); /* pumps the sinks that got rows */
  pump(ob, sink);       /* and this one in any case: nothing else may */
}

/* 1 when a summary in memory is due now. */
static int summary_due(const sink_state *s, int64_t now) {
  for (const outbox_item *it = s->head; it; it = it->next)
    if (it->next_at <= now && strcmp(it->kind, OUTBOX_KIND_SUMMARY) == 0) return 1;
  return 0;
}

/* Asks for the open summary when none waits in memory, or when one waiting
 * there is due: a summary grows while the one before it waits for its
 * delivery (Slack: the next minute), and goes with it. A burst makes one
 * row a delivery, not one a commit. */
static void maybe_seal(outbox *ob, int sink) {
  sink_state *s = &ob->sinks[sink];
  if (ob->closing || s->sealing || s->in_flight || !atomic_load(&s->open_summary)) return;
  if (s->summaries && !summary_due(s, util_now_ms())) return;
  seal_req *q = calloc(1, sizeof *q);
  if (!q) return;
  q->ob = ob;
  q->sink = sink;
  q->req.ud = q;
  q->req.apply = apply_seal;
  q->req.cb = on_seal_done;
  if (store_submit(ob->st, &q->req) == 0)
    s->sealing = 1;
  else
    free(q);
}

static void pump(outbox *ob, int sink) {
  sink_state *s = &ob->sinks[sink];
  maybe_seal(ob, sink);
  /* a seal out: its callback pumps */
  if (ob->closing || s->in_flight || s->sealing || !s->def.deliver) return;
  int64_t now = util_now_ms();
  size_t max = s->def.batch_max < 1024 ? s->def.batch_max : 1024, n = 0;
  /* The array lives until outbox_delivered: a sink may keep it while its
   * request is out. */
  outbox_item **batch = malloc(max * sizeof *batch);
  if (!batch) {
    uv_timer_start(&s->timer, on_timer, 1000, 0);
    return;
  }
  int64_t next_due = INT64_MAX;
  /* Two passes: the rows due now; then, only when some are, parked rows
   * due within DUE_GRACE_MS ride along. Rows put off to the same moment by
   * different batches (Slack's next minute) differ by a few ms, and a
   * straggler must not wait for the next round alone; failed rows keep
   * their backoff to the ms, and nothing is taken early on its own. */
  size_t first_pass = 0;
  for (int pass = 0; pass < 2; pass++) {
    int64_t horizon = pass ? now + DUE_GRACE_MS : now;
    if (pass && !n) break;
    first_pass = n;
    outbox_item **pp = &s->head, *prev = NULL;
    while (*pp && n < max) {
      outbox_item *it = *pp;
      if (it->next_at <= now || (pass && it->parked && it->next_at <= horizon)) {
        *pp = it->next;
        if (s->tail == it) s->tail = prev;
        it->next = NULL;
        batch[n++] = it;
      } else {
        if (!pass && it->next_at < next_due) next_due = it->next_at;
        prev = it;
        pp = &it->next;
      }
    }
  }
  /* The batch in id order, as the queue was (returned rows go back first). */
  if (n > first_pass && first_pass) qsort(batch, n, sizeof *batch, cmp_item_id);
  if (n) {
    assert(!s->batch); /* one delivery at a time: pump returns early while in flight */
    s->in_flight = 1;
    s->batch = batch;
    s->def.deliver(s->def.ud, ob, sink, batch, n);
    return;
  }
  free(batch);
  if (next_due != INT64_MAX) uv_timer_start(&s->timer, on_timer, (uint64_t)(next_due - now), 0);
  /* Not while a digest's rows are being deleted chunk by chunk: a reload
   * would read rows the digest covered and send them again. */
  if (!s->head && s->in_memory == 0 && !s->reloading && !s->acking &&
      atomic_load(&s->pending) > 0) {
    /* Memory is empty but the database says rows remain: read them. */
    reload_req *rr = calloc(1, sizeof *rr);
    if (!rr) return;
    rr->ob = ob;
    rr->sink = sink;
    rr->req.ud = rr;
    rr->req.apply = apply_reload;
    rr->req.cb = on_reload_done;
    if (store_submit(ob->st, &rr->req) == 0)
      s->reloading = 1;
    else
      free(rr);
  }
}

/* The database side of a batch of verdicts, applied by the writer. */
struct row_update {
  int64_t id, next_at;
  int attempts, dead;
  char *payload; /* owned; a dead row's payload the database lacks, else NULL */
};

typedef struct verdict_req {
  store_req req;
  outbox *ob;
  int64_t *del_ids;
  size_t n_del;
  struct row_update *upd;
  size_t n_upd;
  char error[200];
} verdict_req;

static int cmp_int64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x < y ? -1 : x > y;
}

/* Deletes the delivered rows ids[0..n) (sorted here): one statement per
 * run of consecutive ids, which a delivery's rows mostly are. Every id of
 * such a run is one of the given rows, so the range deletes exactly them,
 * walking the table once instead of seeking each row. Returns 0 or SL_EDB. */
static int delete_rows(outbox *ob, int64_t *ids, size_t n) {
  sqlite3_stmt *del = store_stmt(ob->st, "DELETE FROM outbox WHERE id BETWEEN ? AND ?");
  if (!del) return SL_EDB;
  qsort(ids, n, sizeof *ids, cmp_int64);
  int rc = 0;
  for (size_t i = 0, j; !rc && i < n; i = j) {
    j = i + 1;
    while (j < n && ids[j] == ids[j - 1] + 1) j++; /* ids[i..j) is one run */
    sqlite3_bind_int64(del, 1, ids[i]);
    sqlite3_bind_int64(del, 2, ids[j - 1]);
    if (sqlite3_step(del) != SQLITE_DONE) rc = SL_EDB;
    sqlite3_reset(del);
  }
  return rc;
}

static int apply_verdicts(store_req *r, sqlite3 *db) {
  verdict_req *v = r->ud;
  (void)db;
  sqlite3_stmt *upd = NULL;
  int rc = v->n_del ? delete_rows(v->ob, v->del_ids, v->n_del) : 0;
  if (!rc && v->n_upd &&
      !(upd = store_stmt(v->ob->st,
                         "UPDATE outbox SET attempts = ?, nextAttemptAt = ?, lastError = ?, "
                         "state = CASE WHEN ? THEN 'dead' ELSE state END, "
                         "payload = coalesce(?, payload) WHERE id = ?")))
    rc = SL_EDB;
  for (size_t i = 0; !rc && i < v->n_upd; i++) {
    sqlite3_bind_int(upd, 1, v->upd[i].attempts);
    sqlite3_bind_int64(upd, 2, v->upd[i].next_at);
    sqlite3_bind_text(upd, 3, v->error, -1, SQLITE_STATIC);
    sqlite3_bind_int(upd, 4, v->upd[i].dead);
    sqlite3_bind_text(upd, 5, v->upd[i].payload, -1, SQLITE_STATIC);
    sqlite3_bind_int64(upd, 6, v->upd[i].id);
    if (sqlite3_step(upd) != SQLITE_DONE) rc = SL_EDB;
    sqlite3_reset(upd);
  }
  r->result = STORE_STORED;
  return rc;
}

static void on_verdicts_done(store_req *r) {
  verdict_req *v = r->ud;
  if (r->result < 0)
    log_kv(LOG_WARN, "outbox: recording deliveries failed; they may be sent again after a restart",
           "error", sl_strerror(r->result), NULL);
  free(v->del_ids);
  for (size_t i = 0; i < v->n_upd; i++) free(v->upd[i].payload);
  free(v->upd);
  free(v);
}

/* Exponential backoff with jitter: base * 2^(attempts-1), capped, +-25 %. */
static int64_t backoff_ms(int attempts) {
  int64_t ms = BACKOFF_BASE_MS;
  for (int i = 1; i < attempts && ms < BACKOFF_MAX_MS; i++) ms *= 2;
  if (ms > BACKOFF_MAX_MS) ms = BACKOFF_MAX_MS;
  int64_t jitter = ms / 4;
  return ms - jitter + (int64_t)(random() % (2 * jitter + 1));
}

void outbox_delivered(outbox *ob, int sink, outbox_item **items, size_t n,
                      const enum outbox_verdict *verdicts, int64_t retry_after_ms,
                      const char *error) {
  sink_state *s = &ob->sinks[sink];
  /* A verdict answers the one delivery out, on the array pump handed over
   * (outbox.h); anything else means a sink called twice or for another. */
  assert(sink >= 0 && sink < ob->n_sinks);
  assert(s->in_flight && items == s->batch);
  s->in_flight = 0;
  outbox_item **batch = s->batch;
  s->batch = NULL;
  int64_t now = util_now_ms();
  verdict_req *v = calloc(1, sizeof *v);
  if (v) {
    v->del_ids = calloc(n, sizeof *v->del_ids);
    v->upd = calloc(n, sizeof *v->upd);
    snprintf(v->error, sizeof v->error, "%s", error ? error : "");
  }
  int ok = v && v->del_ids && v->upd;
  outbox_item *keep = NULL, *keep_tail = NULL;
  for (size_t i = 0; i < n; i++) {
    outbox_item *it = items[i];
    enum outbox_verdict vd = verdicts[i];
    if (vd == OUTBOX_RETRY) {
      it->attempts++;
      if (it->attempts >= s->def.max_attempts || now - it->created_at > s->def.max_age_ms)
        vd = OUTBOX_DEAD;
    }
    if (vd == OUTBOX_OK || vd == OUTBOX_DEAD) {
      if (vd == OUTBOX_OK) {
        s->delivered++;
        s->last_success_ms = now;
        if (ok) v->del_ids[v->n_del++] = it->id;
      } else {
        s->dead++;
        s->last_error_ms = now;
        snprintf(s->last_error, sizeof s->last_error, "%s", error ? error : "gave up");
        log_kv(LOG_WARN, "outbox: delivery abandoned; the row is kept as dead", "sink", s->def.name,
               "error", error ? error : "too many attempts", NULL);
        if (ok) {
          /* a row written without its payload keeps it now, for a person */
          char *p = payload_rebuilt(&s->def, it->kind) ? it->payload : NULL;
          if (p) it->payload = NULL;
          v->upd[v->n_upd++] = (struct row_update){it->id, now, it->attempts, 1, p};
        }
      }
      /* The row was counted in memory and staged when it reached the loop. */
      assert(s->in_memory > 0);
      s->in_memory--;
      if (strcmp(it->kind, OUTBOX_KIND_SUMMARY) == 0) s->summaries--;
      atomic_fetch_sub(&s->pending, 1);
      long long was_staged = atomic_fetch_sub(&s->staged, 1);
      assert(was_staged > 0);
      (void)was_staged;
      item_free(it);
      continue;
    }
    if (vd == OUTBOX_RETRY) {
      s->last_error_ms = now;
      snprintf(s->last_error, sizeof s->last_error, "%s", error ? error : "failed");
      it->next_at = now + (retry_after_ms > 0 ? retry_after_ms : backoff_ms(it->attempts));
      it->parked = 0;
      if (ok) v->upd[v->n_upd++] = (struct row_update){it->id, it->next_at, it->attempts, 0, NULL};
    } else if (retry_after_ms > 0) {
      it->next_at = now + retry_after_ms;
      it->parked = 1;
    }
    /* back into the queue, keeping id order among the returned rows */
    it->next = NULL;
    if (keep_tail)
      keep_tail->next = it;
    else
      keep = it;
    keep_tail = it;
  }
  if (keep) {
    /* Returned rows are older than everything queued: put them first. */
    keep_tail->next = s->head;
    s->head = keep;
    if (!s->tail) s->tail = keep_tail;
  }
  if (ok && (v->n_del || v->n_upd)) {
    v->ob = ob;
    v->req.ud = v;
    v->req.apply = apply_verdicts;
    v->req.cb = on_verdicts_done;
    int rc = store_submit(ob->st, &v->req);
    if (rc) {
      log_kv(rc == SL_ESHUTDOWN ? LOG_INFO : LOG_WARN,
             rc == SL_ESHUTDOWN
                 ? "outbox: stopping; deliveries not yet recorded are repeated after a restart"
                 : "outbox: the write queue is full; a delivery will be repeated after a restart",
             NULL);
      on_verdicts_done(&v->req);
    }
  } else if (v) {
    free(v->del_ids);
    free(v->upd);
    free(v);
  }
  free(batch);
  /* Not pump() here: a sink that fails at once would recurse through
   * deliver and this function once per row. The timer breaks the chain. */
  if (!ob->closing) uv_timer_start(&s->timer, on_timer, 0, 0);
}

/* outbox_enqueue's request: the row and the caller's extra write. */
typedef struct enqueue_req {
  store_req req;
  outbox *ob;
  int sink;
  char kind[16]; /* the row's kind */
  char *payload;
  int (*extra)(void *arg, sqlite3 *db);
  void *extra_arg;
  void (*extra_free)(void *arg);
} enqueue_req;

static int apply_enqueue(store_req *r, sqlite3 *db) {
  enqueue_req *e = r->ud;
  if (e->extra && e->extra(e->extra_arg, db)) return SL_EDB;
  char *payload = e->payload;
  e->payload = NULL;
  int rc = insert_row(e->ob, e->sink, e->kind, 0, payload, util_now_ms());
  r->result = STORE_STORED;
  return rc;
}

static void on_enqueue_done(store_req *r) {
  enqueue_req *e = r->ud;
  if (r->result < 0)
    log_kv(LOG_ERROR, "outbox: a notification could not be stored", "sink",
           e->ob->sinks[e->sink].def.name, "error", sl_strerror(r->result), NULL);
  if (e->extra_free) e->extra_free(e->extra_arg);
  free(e->payload);
  free(e);
}

int outbox_enqueue(outbox *ob, int sink, const char *kind, const char *payload,
                   int (*extra)(void *arg, sqlite3 *db), void *extra_arg,
                   void (*extra_free)(void *arg)) {
  enqueue_req *e = NULL;
  int rc = SL_EINVAL;
  if (sink < 0 || sink >= ob->n_sinks || strlen(kind) >= sizeof e->kind) goto fail;
  rc = SL_ENOMEM;
  e = calloc(1, sizeof *e);
  if (!e || !(e->payload = strdup(payload))) goto fail;
  e->ob = ob;
  e->sink = sink;
  snprintf(e->kind, sizeof e->kind, "%s", kind);
  e->extra = extra;
  e->extra_arg = extra_arg;
  e->extra_free = extra_free;
  e->req.ud = e;
  e->req.apply = apply_enqueue;
  e->req.cb = on_enqueue_done;
  rc = store_submit(ob->st, &e->req);
  if (rc == 0) return 0;
fail:
  if (e) free(e->payload);
  free(e);
  if (extra_free) extra_free(extra_arg);
  return rc;
}

int64_t outbox_committed_upto(const outbox *ob, int sink) {
  return atomic_load(&ob->sinks[sink].committed_upto);
}

/* outbox_ack_through's database side: DELETEs over the id range, ACK_CHUNK
 * ids a request, each its own store request. One statement over a
 * minute's backlog (150,000 rows at 5,000 events/s) held the writer for
 * seconds and grew the WAL by hundreds of MiB. */
#define ACK_CHUNK 4096

typedef struct ack_req {
  store_req req;
  outbox *ob;
  int sink;
  int64_t from; /* ids > from */
  int64_t through;
  char kind[16]; /* the rows' kind */
  int64_t deleted;
} ack_req;

static int apply_ack(store_req *r, sqlite3 *db) {
  ack_req *a = r->ud;
  sqlite3_stmt *st;
  if (a->from < 0) {
    /* The first chunk starts below the sink's oldest pending row. */
    if (!(st = store_stmt(a->ob->st,
                          "SELECT coalesce(min(id), 0) - 1 FROM outbox WHERE sink = "
                          "?1 AND state = 'pending'")))
      return SL_EDB;
    sqlite3_bind_text(st, 1, a->ob->sinks[a->sink].def.name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    a->from = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    if (rc != SQLITE_ROW) return SL_EDB;
  }
  if (!(st = store_stmt(a->ob->st,
                        "DELETE FROM outbox WHERE id > ?4 AND id <= ?2 AND +sink = ?1 "
                        "AND +state = 'pending' AND +kind = ?3")))
    return SL_EDB;
  int64_t upto = a->from + ACK_CHUNK < a->through ? a->from + ACK_CHUNK : a->through;
  sqlite3_bind_text(st, 1, a->ob->sinks[a->sink].def.name, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, upto);
  sqlite3_bind_text(st, 3, a->kind, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 4, a->from);
  int rc = sqlite3_step(st);
  sqlite3_reset(st);
  if (rc != SQLITE_DONE) return SL_EDB;
  a->deleted = sqlite3_changes(db);
  a->from = upto;
  r->result = STORE_STORED;
  return 0;
}

static void on_ack_done(store_req *r) {
  ack_req *a = r->ud;
  sink_state *s = &a->ob->sinks[a->sink];
  if (r->result > 0) {
    atomic_fetch_sub(&s->pending, a->deleted);
    s->delivered += a->deleted;
    if (a->from < a->through && !a->ob->closing) {
      /* The next chunk, behind whatever is queued now. */
      memset(&a->req, 0, sizeof a->req);
      a->req.ud = a;
      a->req.apply = apply_ack;
      a->req.cb = on_ack_done;
      a->deleted = 0;
      if (store_submit(a->ob->st, &a->req) == 0) return;
      log_kv(LOG_WARN, "outbox: a digest's rows could not all be cleared; they are sent again",
             NULL);
    }
  }
  /* Done (or given up): rows beyond memory may be read again. */
  s->acking--;
  if (!a->ob->closing) uv_timer_start(&s->timer, on_timer, 0, 0);
  free(a);
}

void outbox_ack_through(outbox *ob, int sink, int64_t through, const char *kind) {
  sink_state *s = &ob->sinks[sink];
  /* In memory: drop the covered rows that are not out for delivery. */
  outbox_item **pp = &s->head, *prev = NULL;
  while (*pp) {
    outbox_item *it = *pp;
    if (it->id <= through && strcmp(it->kind, kind) == 0) {
      *pp = it->next;
      if (s->tail == it) s->tail = prev;
      s->in_memory--;
      atomic_fetch_sub(&s->staged, 1);
      item_free(it);
    } else {
      prev = it;
      pp = &it->next;
    }
  }
  ack_req *a = calloc(1, sizeof *a);
  if (!a) return;
  snprintf(a->kind, sizeof a->kind, "%s", kind);
  a->ob = ob;
  a->sink = sink;
  a->from = -1;
  a->through = through;
  a->req.ud = a;
  a->req.apply = apply_ack;
  a->req.cb = on_ack_done;
  if (store_submit(ob->st, &a->req)) {
    free(a);
    return;
  }
  s->acking++;
}

void outbox_stats(const outbox *ob, int sink, struct outbox_stats *out) {
  const sink_state *s = &ob->sinks[sink];
  memset(out, 0, sizeof *out);
  out->pending = atomic_load(&s->pending);
  out->dead = s->dead;
  out->delivered = s->delivered;
  out->last_success_ms = s->last_success_ms;
  out->last_error_ms = s->last_error_ms;
  snprintf(out->last_error, sizeof out->last_error, "%s", s->last_error);
}

static void on_closed(uv_handle_t *h) {
  outbox *ob = h->data;
  if (--ob->handles_open == 0 && ob->closed_cb) ob->closed_cb(ob->closed_ud);
}

void outbox_close(outbox *ob, void (*done)(void *ud), void *ud) {
  ob->closing = 1;
  ob->closed_cb = done;
  ob->closed_ud = ud;
  for (int i = 0; i < ob->n_sinks; i++) uv_close((uv_handle_t *)&ob->sinks[i].timer, on_closed);
  uv_close((uv_handle_t *)&ob->async, on_closed);
}

void outbox_free(outbox *ob) {
  if (!ob) return;
  for (int i = 0; i < ob->n_sinks; i++) {
    free(ob->sinks[i].batch);
    free_list(ob->sinks[i].head);
    free_list(ob->inbox[i]);
    free_list(ob->staging[i]);
    summary_close(&ob->sinks[i]);
    free(ob->sinks[i].sum_written);
  }
  pthread_mutex_destroy(&ob->mu);
  free(ob);
}
