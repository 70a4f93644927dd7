/* store.c - schema, migrations, the writer thread and group commit. */
#include "store.h"

#include <assert.h>
#include <errno.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "address.h"
#include "ckptio.h"
#include "error.h"
#include "log.h"
#include "query.h"
#include "rawz.h"
#include "rollup.h"
#include "topics.h"
#include "twin.h"
#include "util.h"

extern const char schema_sql[]; /* schema/seslog.sql, embedded at build */

#define MAX_MINUTES 64        /* distinct minutes in one batch before flushing */
#define PROBE_SECONDS 2       /* between write probes while unhealthy */
#define COMMIT_DELAY_US 1000  /* how long a loaded writer waits for more events */
#define COMMIT_DELAY_MIN 4    /* the last batch size that counts as load */
#define TRAIN_FIRST 256       /* events stored before the first dictionary is trained */
#define TRAIN_SAMPLES 2048    /* events a dictionary learns from at most (more gain nothing) */
#define TRAIN_GROWTH 10       /* a new dictionary once the events are 10x its samples */
#define TRAIN_FIRST_BATCH 256 /* events of an import's first batch the first one learns from */
#define TRAIN_NICE 10         /* nice of the trainer once a dictionary exists (trainer_main) */
#define CKPT_PAGES 4000       /* WAL pages (16 MiB) from which the checkpointer copies */
#define CKPT_STEP 2000        /* ... each time this many more were written */
#define CKPT_HARD_PAGES 12000 /* past this the writer pauses for one last checkpoint */
#define CKPT_CHASE 6000       /* from here the checkpointer chases the writer (catch_up) */
#define CKPT_TAIL 256         /* frames left uncopied that a short writer pause can finish */
#define CKPT_YIELD_US 4000    /* longest a checkpoint write-back step waits for a commit */

/* Counters of one minute, gathered over a batch and written once. */
struct rollup {
  int64_t minute;
  int64_t c[13]; /* in the order of the columns of rollup_minute */
};

enum {
  R_EVENTS,
  R_SENDS,
  R_DELIVERIES,
  R_BOUNCES,
  R_PERM,
  R_TRANS,
  R_COMPLAINTS,
  R_REJECTS,
  R_OPENS,
  R_CLICKS,
  R_DELAYS,
  R_OTHER,
  R_N
};

/* A statement of store_stmt and the text it was asked for by. */
struct cached_stmt {
  const char *sql; /* the caller's (a literal) */
  sqlite3_stmt *st;
};

struct store {
  char *path;                  /* as given */
  sqlite3 *db;                 /* the write connection */
  sqlite3_stmt *ins_event;     /* INSERT OR IGNORE INTO SesEventMessages */
  sqlite3_stmt *find_same;     /* the same event already stored? */
  sqlite3_stmt *ins_recipient; /* INSERT OR IGNORE INTO recipients */
  sqlite3_stmt *upsert_rollup; /* the rollup counters */
  rollup_batch *groups;        /* the grouped-count rollups (rollup.c) */
  twin_finder *twins;          /* an event stored in its other shape (twin.c) */
  topic_ids *topics;           /* each topic's id in topics (topics.c) */
  struct cached_stmt *stmts;   /* store_stmt's statements */
  int n_stmts, cap_stmts;
  struct store_opts opts;
  rawz_enc *z;       /* compresses raw with the current dictionary */
  int64_t events;    /* the highest event id: about how many events there are */
  int64_t train_at;  /* events at which the next dictionary is trained */
  pthread_t trainer; /* trains a dictionary on its own connection */
  int trainer_started;
  /* what the trainer made, guarded by mu, taken by the writer */
  int training;   /* 1 while the trainer runs */
  int retraining; /* 1: a dictionary exists, the trainer only refines it
                     (set before the trainer starts, read by it) */
  void *trained;  /* a dictionary waiting to be stored; owned */
  size_t trained_len;
  int trained_samples;
  /* The checkpointer: copies the WAL into the database on a connection of
   * its own, beside the writer, so no commit waits for a checkpoint. */
  pthread_t ckpt_thread;
  int ckpt_started;
  sqlite3 *ckpt_db;            /* its connection */
  pthread_cond_t ckpt_cv;      /* guarded by mu */
  pthread_cond_t ckpt_done_cv; /* a checkpoint the writer waits for ended */
  /* guarded by mu: */
  int wal_pages;   /* WAL frames after the last commit */
  int backfilled;  /* frames the last checkpoint copied */
  int ckpt_wanted; /* 1: the checkpointer has work */
  int ckpt_full;   /* 1: the writer waits for a checkpoint of every frame */
  int caught_up;   /* 1: a checkpoint left at most CKPT_TAIL frames uncopied */
  /* The writer's COMMIT in flight, which the checkpointer's write-back
   * steps wait for (yield_to_commit): */
  pthread_mutex_t commit_mu;
  pthread_cond_t commit_cv; /* a COMMIT ended */
  int committing;           /* guarded by commit_mu */
  struct rollup rollups[MAX_MINUTES];
  int n_rollups;
  /* the queue, guarded by mu */
  pthread_mutex_t mu;
  pthread_cond_t cv;
  store_req *q_head, *q_tail; /* waiting for the writer */
  int q_len;
  struct timespec q_since;          /* CLOCK_REALTIME when the queue last stopped being empty */
  store_req *done_head, *done_tail; /* written, waiting for store_complete */
  int stopping;
  int thread_started;
  pthread_t thread;
  /* health, guarded by mu */
  int last_error;
  char last_error_msg[256];
};

static int exec(sqlite3 *db, const char *sql, char *err, size_t errlen) {
  char *msg = NULL;
  if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
    if (err) snprintf(err, errlen, "%s", msg ? msg : sqlite3_errmsg(db));
    sqlite3_free(msg);
    return SL_EDB;
  }
  return 0;
}

/* Creates every missing folder of path's parent (mkdir -p). */
static int make_parent_dirs(const char *path) {
  char *p = strdup(path);
  if (!p) return SL_ENOMEM;
  char *slash = strrchr(p, '/');
  if (slash && slash != p) {
    *slash = 0;
    for (char *q = p + 1; *q; q++) {
      if (*q != '/') continue;
      *q = 0;
      if (mkdir(p, 0755) && errno != EEXIST) break;
      *q = '/';
    }
    if (mkdir(p, 0755) && errno != EEXIST) {
      free(p);
      return SL_EIO;
    }
  }
  free(p);
  return 0;
}

struct section {
  int version;
  const char *body;
  size_t len;
};

static int section_cmp(const void *a, const void *b) {
  return ((const struct section *)a)->version - ((const struct section *)b)->version;
}

/* Sections merged after a later section was released, with a table each
 * creates: a database that a seslog without the section brought to a later
 * version lacks that table, and still needs the section. Version 10
 * (compressed raw JSON) was merged after version 11 (rollups). */
static const struct {
  int version;
  const char *table;
} late_sections[] = {{10, "raw_dicts"}};

/* 1 when the section of version v, at or below the database's version,
 * was skipped (late_sections) and must still run; 0 otherwise. */
static int section_skipped(sqlite3 *db, int v) {
  for (size_t i = 0; i < sizeof late_sections / sizeof late_sections[0]; i++) {
    if (late_sections[i].version != v) continue;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", -1,
                           &st, NULL) != SQLITE_OK)
      return 0;
    sqlite3_bind_text(st, 1, late_sections[i].table, -1, SQLITE_STATIC);
    int missing = sqlite3_step(st) != SQLITE_ROW;
    sqlite3_finalize(st);
    return missing;
  }
  return 0;
}

/* Runs every "-- version N" section of the schema above user_version, in
 * version order (not file order: sections written by parallel work may
 * land out of order), each in its own transaction, and any late section
 * the database skipped (section_skipped). */
static int migrate(sqlite3 *db, char *err, size_t errlen) {
  int current = 0;
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK) {
    snprintf(err, errlen, "%s", sqlite3_errmsg(db));
    return SL_EDB;
  }
  if (sqlite3_step(st) == SQLITE_ROW) current = sqlite3_column_int(st, 0);
  sqlite3_finalize(st);
  struct section sec[64];
  int n = 0, latest = 0;
  const char *marker = "-- version ";
  for (const char *p = strstr(schema_sql, marker); p && n < 64;) {
    const char *body = strchr(p, '\n');
    if (!body) break;
    const char *next = strstr(body, marker);
    sec[n].version = (int)strtol(p + strlen(marker), NULL, 10);
    sec[n].body = body;
    sec[n].len = next ? (size_t)(next - body) : strlen(body);
    if (sec[n].version > latest) latest = sec[n].version;
    n++;
    p = next;
  }
  qsort(sec, (size_t)n, sizeof sec[0], section_cmp);
  if (current > latest) {
    snprintf(err, errlen,
             "the database has schema version %d, newer than this seslog knows (%d); "
             "use a newer seslog",
             current, latest);
    return SL_EDB;
  }
  for (int i = 0; i < n; i++) {
    if (sec[i].version <= current && !section_skipped(db, sec[i].version)) continue;
    char *sql = util_strndup(sec[i].body, sec[i].len);
    if (!sql) return SL_ENOMEM;
    char tail[64];
    snprintf(tail, sizeof tail, "PRAGMA user_version=%d;",
             sec[i].version > current ? sec[i].version : current);
    int rc = exec(db, "BEGIN IMMEDIATE", err, errlen);
    if (!rc) rc = exec(db, sql, err, errlen);
    if (!rc) rc = exec(db, tail, err, errlen);
    if (!rc) rc = exec(db, "COMMIT", err, errlen);
    free(sql);
    if (rc) {
      exec(db, "ROLLBACK", NULL, 0);
      return rc;
    }
    char v[16];
    snprintf(v, sizeof v, "%d", sec[i].version);
    log_kv(LOG_INFO, "database migrated", "version", v, NULL);
  }
  return 0;
}

/* The next size of the table at which a dictionary is trained: the first
 * early, so most rows are compressed, then again on more events until one
 * has learned from TRAIN_SAMPLES. */
static void plan_training(store *s) {
  int samples = rawz_enc_samples(s->z);
  if (samples == 0)
    s->train_at = TRAIN_FIRST;
  else if (samples < TRAIN_SAMPLES)
    s->train_at = (int64_t)samples * TRAIN_GROWTH;
  else
    s->train_at = INT64_MAX;
}

/* The compressor with the newest dictionary, and the table's size. */
static int open_compression(store *s, char *err, size_t errlen) {
  int rc = rawz_enc_new(&s->z);
  if (!rc) rc = rawz_enc_load(s->z, s->db);
  sqlite3_stmt *st = NULL;
  if (!rc && (sqlite3_prepare_v2(s->db, "SELECT coalesce(max(id), 0) FROM SesEventMessages", -1,
                                 &st, NULL) != SQLITE_OK ||
              sqlite3_step(st) != SQLITE_ROW))
    rc = SL_EDB;
  if (!rc) s->events = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  if (rc) {
    snprintf(err, errlen, "cannot read the compression dictionaries: %s",
             rc == SL_EDB ? sqlite3_errmsg(s->db) : sl_strerror(rc));
    return rc;
  }
  plan_training(s);
  return 0;
}

static int insert_sql(char *out, size_t outlen);

int store_open(const char *path, const struct store_opts *opts, store **out, char *err,
               size_t errlen) {
  store *s = calloc(1, sizeof *s);
  if (!s) return SL_ENOMEM;
  s->opts = *opts;
  if (s->opts.queue_max <= 0) s->opts.queue_max = 2048;
  if (s->opts.queue_max > 10000000) s->opts.queue_max = 10000000; /* + OWN_REQ_MARGIN fits */
  if (s->opts.batch_max <= 0) s->opts.batch_max = 2048;
  pthread_mutex_init(&s->mu, NULL);
  pthread_cond_init(&s->cv, NULL);
  pthread_cond_init(&s->ckpt_cv, NULL);
  pthread_cond_init(&s->ckpt_done_cv, NULL);
  pthread_mutex_init(&s->commit_mu, NULL);
  pthread_cond_init(&s->commit_cv, NULL);
  int rc;
  /* seslog_raw() on this connection and on every reader opened later */
  if (rawz_register()) {
    snprintf(err, errlen, "cannot register seslog_raw() with SQLite");
    rc = SL_EDB;
    goto fail;
  }
  s->path = strdup(path);
  rc = s->path ? make_parent_dirs(path) : SL_ENOMEM;
  if (rc) {
    snprintf(err, errlen, "cannot create the folder of %s: %s", path, strerror(errno));
    goto fail;
  }
  if (sqlite3_open_v2(path, &s->db,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                      NULL) != SQLITE_OK) {
    snprintf(err, errlen, "cannot open %s: %s", path, s->db ? sqlite3_errmsg(s->db) : "no memory");
    rc = SL_EDB;
    goto fail;
  }
  sqlite3_busy_timeout(s->db, (int)(opts->busy_timeout_ms > 0 ? opts->busy_timeout_ms : 5000));
  /* WAL lets readers run beside the writer; synchronous=FULL makes each
   * commit durable before the writer reports it. */
  /* A larger page cache keeps the indexes' hot pages out of pread; a
   * checkpoint every 8000 pages (32 MiB of WAL) instead of 1000 lets
   * repeated writes of the same page collapse before they are copied
   * (the command-line tools; the server's checkpointer thread replaces
   * this, see start_checkpointer).
   * When a burst outran the checkpoints (a reader held old frames, a big
   * delete of delivered outbox rows), the WAL file is cut back to 64 MiB
   * once a checkpoint resets it, instead of keeping its largest size. */
  rc = exec(s->db,
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=OFF; "
            "PRAGMA cache_size=-16384; PRAGMA wal_autocheckpoint=8000; "
            "PRAGMA journal_size_limit=67108864;",
            err, errlen);
  /* version 17 groups the stored diagnostics with seslog_diag */
  if (!rc && query_register_functions(s->db)) rc = SL_EDB;
  if (!rc) rc = migrate(s->db, err, errlen);
  if (!rc) rc = rollup_open(s->db, &s->groups, err, errlen);
  if (!rc) rc = twin_open(s->db, &s->twins, err, errlen);
  if (!rc) rc = topics_open(s->db, &s->topics, err, errlen);
  if (!rc) rc = open_compression(s, err, errlen);
  if (rc) goto fail;
  char insert[8192];
  if (insert_sql(insert, sizeof insert) ||
      sqlite3_prepare_v3(s->db, insert, -1, SQLITE_PREPARE_PERSISTENT, &s->ins_event, NULL) !=
          SQLITE_OK ||
      sqlite3_prepare_v3(s->db,
                         "SELECT count(*), coalesce(max(contentHash = ?2), 0) FROM "
                         "SesEventMessages INDEXED BY \"messageId-timeStamp-Index\" "
                         "WHERE messageId = ?1",
                         -1, SQLITE_PREPARE_PERSISTENT, &s->find_same, NULL) != SQLITE_OK ||
      sqlite3_prepare_v3(s->db,
                         "INSERT OR IGNORE INTO recipients (address, timeStamp, eventId, "
                         "oddDomain, notificationType) VALUES (?,?,?,?,?)",
                         -1, SQLITE_PREPARE_PERSISTENT, &s->ins_recipient, NULL) != SQLITE_OK ||
      sqlite3_prepare_v3(s->db,
                         "INSERT INTO rollup_minute (minute, events, sends, deliveries, bounces, "
                         "permanentBounces, transientBounces, complaints, rejects, opens, clicks, "
                         "delays, other) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?) "
                         "ON CONFLICT(minute) DO UPDATE SET events=events+excluded.events, "
                         "sends=sends+excluded.sends, deliveries=deliveries+excluded.deliveries, "
                         "bounces=bounces+excluded.bounces, "
                         "permanentBounces=permanentBounces+excluded.permanentBounces, "
                         "transientBounces=transientBounces+excluded.transientBounces, "
                         "complaints=complaints+excluded.complaints, "
                         "rejects=rejects+excluded.rejects, opens=opens+excluded.opens, "
                         "clicks=clicks+excluded.clicks, delays=delays+excluded.delays, "
                         "other=other+excluded.other",
                         -1, SQLITE_PREPARE_PERSISTENT, &s->upsert_rollup, NULL) != SQLITE_OK) {
    snprintf(err, errlen, "cannot prepare statements: %s", sqlite3_errmsg(s->db));
    rc = SL_EDB;
    goto fail;
  }
  *out = s;
  return 0;
fail:
  store_close(s);
  return rc;
}

const char *store_path(const store *s) {
  return s->path;
}

static void bind_text(sqlite3_stmt *st, int i, const char *v) {
  if (v)
    sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
  else
    sqlite3_bind_null(st, i);
}

static int streq(const char *a, const char *b) {
  return a && b && strcmp(a, b) == 0;
}

/* Adds one stored event to the batch's rollup counters. */
static void count_event(store *s, const ses_event *e) {
  int64_t minute = e->ts_ms >= 0 ? e->ts_ms / 60000 : (e->ts_ms - 59999) / 60000;
  struct rollup *r = NULL;
  for (int i = 0; i < s->n_rollups; i++)
    if (s->rollups[i].minute == minute) r = &s->rollups[i];
  if (!r) {
    if (s->n_rollups == MAX_MINUTES) return; /* caller flushes before this */
    r = &s->rollups[s->n_rollups++];
    memset(r, 0, sizeof *r);
    r->minute = minute;
  }
  int64_t n = (int64_t)e->n_recipients;
  const char *t = e->notification_type;
  r->c[R_EVENTS]++;
  if (streq(t, "Send")) {
    r->c[R_SENDS] += n;
  } else if (streq(t, "Delivery")) {
    r->c[R_DELIVERIES] += n;
  } else if (streq(t, "Bounce")) {
    r->c[R_BOUNCES] += n;
    if (streq(e->bounce_type, "Permanent")) {
      if (!streq(e->bounce_sub_type, "OnAccountSuppressionList")) r->c[R_PERM] += n;
    } else {
      r->c[R_TRANS] += n;
    }
  } else if (streq(t, "Complaint")) {
    if (!streq(e->complaint_sub_type, "OnAccountSuppressionList")) r->c[R_COMPLAINTS] += n;
  } else if (streq(t, "Reject")) {
    r->c[R_REJECTS] += n;
  } else if (streq(t, "Open")) {
    r->c[R_OPENS] += n;
  } else if (streq(t, "Click")) {
    r->c[R_CLICKS] += n;
  } else if (streq(t, "DeliveryDelay")) {
    r->c[R_DELAYS] += n;
  } else {
    r->c[R_OTHER] += n;
  }
}

static int flush_rollups(store *s) {
  for (int i = 0; i < s->n_rollups; i++) {
    sqlite3_stmt *st = s->upsert_rollup;
    sqlite3_bind_int64(st, 1, s->rollups[i].minute);
    for (int k = 0; k < R_N; k++) sqlite3_bind_int64(st, k + 2, s->rollups[i].c[k]);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) return SL_EDB;
  }
  s->n_rollups = 0;
  return 0;
}

/* After an INSERT OR IGNORE that changed nothing: sets *dup to 1 when a
 * row with e's (notificationType, feedbackId) exists, the one unique key
 * the INSERT can collide with. Runs rarely, so prepared each time.
 * Returns 0 or SL_EDB. */
static int insert_collided(store *s, const ses_event *e, int *dup) {
  *dup = 0;
  if (!e->feedback_id) return 0;
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(s->db,
                         "SELECT 1 FROM SesEventMessages WHERE notificationType = ? AND "
                         "feedbackId = ? LIMIT 1",
                         -1, &st, NULL) != SQLITE_OK)
    return SL_EDB;
  bind_text(st, 1, e->notification_type);
  bind_text(st, 2, e->feedback_id);
  int rc = sqlite3_step(st);
  sqlite3_finalize(st);
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) return SL_EDB;
  *dup = rc == SQLITE_ROW;
  return 0;
}

/* The INSERT of an event row: the table's columns (event_fields.h), then
 * receivedAt, contentHash, raw, rawDict, topicId, bound in that order by
 * bind_event (diagnostic and recipients stored empty when derivable, see
 * ses_field_sql_write). Returns 0, or SL_ETOOBIG when out is too small. */
static int insert_sql(char *out, size_t outlen) {
  buf b;
  buf_init(&b, outlen - 1);
  buf_appends(&b, "INSERT OR IGNORE INTO SesEventMessages (");
  for (int i = 0; i < SF_N; i++) buf_printf(&b, "%s, ", ses_fields[i].column);
  buf_appends(&b, "receivedAt, contentHash, raw, rawDict, topicId) VALUES (");
  /* ?N is the N-th bound value; a column another holds is stored empty */
  for (int i = 0; i < SF_N; i++) buf_printf(&b, "%s,", ses_field_sql_write(i));
  for (int i = SF_N; i < SF_N + 5; i++) buf_printf(&b, i > SF_N ? ",?%d" : "?%d", i + 1);
  buf_appends(&b, ")");
  int rc = buf_failed(&b);
  if (!rc) memcpy(out, b.data, b.len + 1);
  buf_free(&b);
  return rc;
}

/* *found 1 when an event with e's messageId and content (hash) is
 * stored; *any 1 when any event with e's messageId is (else no twin of e
 * can be either). Returns 0 or SL_EDB.
 *
 * The same event again (an SNS retry, a file imported twice, the bare
 * SES JSON and the same event inside an SNS envelope, a Lambda event or
 * an EventBridge event) has the same messageId and SES content: its
 * identity never depends on the wrapper, whose Timestamp becomes the
 * timeStamp column. Found through the contract's (messageId, timeStamp)
 * index, whose page the insert needs anyway, so no index of its own (a
 * random hash index costs a page write per event). A bounce or complaint
 * through a second channel is caught by the (notificationType,
 * feedbackId) unique index. Two different events sharing (messageId,
 * timeStamp) differ in content and are both kept. */
static int find_same(store *s, const ses_event *e, const unsigned char *hash, int *found,
                     int *any) {
  sqlite3_stmt *st = s->find_same;
  bind_text(st, 1, e->message_id);
  sqlite3_bind_blob(st, 2, hash, 16, SQLITE_STATIC);
  int rc = sqlite3_step(st); /* an aggregate: always one row */
  *any = rc == SQLITE_ROW && sqlite3_column_int64(st, 0) > 0;
  *found = rc == SQLITE_ROW && sqlite3_column_int(st, 1) == 1;
  sqlite3_reset(st);
  return rc == SQLITE_ROW ? 0 : SL_EDB;
}

struct store_prep {
  const ses_event *ev; /* the event it was made from */
  unsigned char hash[SHA256_DIGEST_LENGTH];
  char *lists[SF_N]; /* the JSON text of each LIST field, else NULL */
  int packed;        /* 1: frame and dict_id are decided */
  void *frame;       /* the compressed original, or NULL: its text */
  size_t frame_len;
  int64_t dict_id; /* the dictionary of frame; 0: none */
};

/* SHA-256, looked up once: SHA256() looks the algorithm up in OpenSSL's
 * provider store on every call (1.5 % of import's reader thread). */
static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void fetch_sha256(void) {
  sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

/* The SHA-256 of the len bytes at text into out. */
static void content_hash(const char *text, size_t len, unsigned char out[SHA256_DIGEST_LENGTH]) {
  pthread_once(&sha256_once, fetch_sha256);
  if (!sha256_md || !EVP_Digest(text, len, out, NULL, sha256_md, NULL))
    SHA256((const unsigned char *)text, len, out);
}

/* The content hash and the list fields' texts of e into p. Returns 0 or
 * SL_ENOMEM (p's texts so far are still p's). */
static int prep_fields(store_prep *p, const ses_event *e) {
  p->ev = e;
  content_hash(e->raw, e->raw_len, p->hash);
  for (int i = 0; i < SF_N; i++) {
    if (ses_fields[i].kind != EF_LIST) continue;
    const char *v;
    if (ses_field_text(e, i, &v, &p->lists[i])) return SL_ENOMEM;
  }
  return 0;
}

static void prep_clear(store_prep *p) {
  for (int i = 0; i < SF_N; i++) free(p->lists[i]);
  free(p->frame);
}

void store_prep_free(store_prep *p) {
  if (!p) return;
  prep_clear(p);
  free(p);
}

/* The values of RAWZ_COLUMNS that e's row will store, as bind_event binds
 * them: the original JSON is tokenized with exactly these. */
static void raw_values(const ses_event *e, rawz_values *v) {
  static const int field[RAWZ_NVALUES] = {[RAWZ_MESSAGE_ID] = SF_MESSAGE_ID,
                                          [RAWZ_DESTINATION] = SF_DESTINATION,
                                          [RAWZ_BOUNCED] = SF_BOUNCED_RECIPIENTS,
                                          [RAWZ_FEEDBACK_ID] = SF_FEEDBACK_ID,
                                          [RAWZ_REPORTING_MTA] = SF_REPORTING_MTA};
  for (int k = 0; k < RAWZ_NVALUES; k++) {
    char *none;
    assert(ses_fields[field[k]].kind != EF_LIST); /* else a scratch string to free */
    ses_field_text(e, field[k], &v->v[k], &none); /* TEXT and JSON fields: e's own string */
  }
}

int store_prepare(store *s, const ses_event *e, store_prep **out) {
  *out = NULL;
  store_prep *p = calloc(1, sizeof *p);
  if (!p) return SL_ENOMEM;
  int rc = prep_fields(p, e);
  if (!rc) {
    rawz_values v;
    raw_values(e, &v);
    rawz_dict *d = rawz_enc_dict(s->z); /* held while compressing with it */
    rc = rawz_dict_compress(d, e->raw, e->raw_len, &v, &p->frame, &p->frame_len, &p->dict_id);
    rawz_dict_release(d);
  }
  if (rc) {
    store_prep_free(p);
    return rc;
  }
  p->packed = 1;
  *out = p;
  return 0;
}

/* Binds e to the INSERT of insert_sql (the table's columns, then the
 * rest), steps it and resets it. The list fields' texts and the hash come
 * from p; the raw JSON is p's frame, or when p has none decided,
 * compressed here with the current dictionary. topic_id (0: none) stands
 * for e's topicArn, which is then NULL; snsMessageId is its 16 bytes when
 * it is a canonical UUID (schema version 22). Returns the sqlite3_step
 * code, or SQLITE_NOMEM. */
static int bind_event(store *s, const ses_event *e, int64_t now, const store_prep *p,
                      int64_t topic_id) {
  sqlite3_stmt *st = s->ins_event;
  for (int i = 0; i < SF_N; i++) {
    const char *v = p->lists[i];
    if (ses_fields[i].kind != EF_LIST) {
      char *none;
      ses_field_text(e, i, &v, &none); /* a TEXT or JSON field: e's own string */
    }
    bind_text(st, i + 1, v);
  }
  unsigned char uuid[16];
  if (e->sns_message_id && ses_field_uuid_pack(e->sns_message_id, uuid))
    sqlite3_bind_blob(st, SF_SNS_MESSAGE_ID + 1, uuid, sizeof uuid, SQLITE_STATIC);
  if (topic_id) {
    sqlite3_bind_null(st, SF_TOPIC_ARN + 1);
    sqlite3_bind_int64(st, SF_N + 5, topic_id);
  }
  sqlite3_bind_int64(st, SF_N + 1, now);
  sqlite3_bind_blob(st, SF_N + 2, p->hash, 16, SQLITE_STATIC);
  const void *packed = p->frame;
  size_t packed_len = p->frame_len;
  int64_t dict_id = p->dict_id;
  int rc = SQLITE_OK;
  if (!p->packed) { /* not compressed by store_prepare: here, on the writer */
    rawz_values v;
    raw_values(e, &v);
    if (rawz_compress(s->z, e->raw, e->raw_len, &v, &packed, &packed_len, &dict_id))
      rc = SQLITE_NOMEM;
  }
  if (rc == SQLITE_OK) {
    if (dict_id)
      sqlite3_bind_blob(st, SF_N + 3, packed, (int)packed_len, SQLITE_STATIC);
    else
      sqlite3_bind_text(st, SF_N + 3, e->raw, (int)e->raw_len, SQLITE_STATIC);
    sqlite3_bind_int64(st, SF_N + 4, dict_id);
    rc = sqlite3_step(st);
  }
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
  return rc;
}

/* One recipients row per affected address of the stored event event_id,
 * its time the integer of the event's timeStamp (query_rcpt_time), its
 * type the code (query_type_code) and its domain implied by the address
 * (ADDRESS_DOMAIN_SQL; schema version 23). Returns 0,
 * SL_ENOMEM or SL_EDB. */
static int insert_recipients(store *s, const ses_event *e, int64_t event_id) {
  int64_t ms;
  int as_text = query_rcpt_time(e->time_stamp, &ms) != 0; /* never, as seslog writes it */
  int type = query_type_code(e->notification_type);       /* >= 0: every type SES has */
  for (size_t i = 0; i < e->n_recipients; i++) {
    char stack_addr[256]; /* most addresses: no malloc */
    size_t len = strlen(e->recipients[i]);
    char *addr = len < sizeof stack_addr ? stack_addr : malloc(len + 1);
    if (!addr) return SL_ENOMEM;
    memcpy(addr, e->recipients[i], len + 1);
    util_ascii_lower(addr);
    sqlite3_stmt *st = s->ins_recipient;
    bind_text(st, 1, addr);
    if (as_text)
      bind_text(st, 2, e->time_stamp);
    else
      sqlite3_bind_int64(st, 2, ms);
    sqlite3_bind_int64(st, 3, event_id);
    bind_text(st, 4, address_odd_domain(addr)); /* NULL: ADDRESS_DOMAIN_SQL finds it */
    if (type >= 0)
      sqlite3_bind_int(st, 5, type);
    else
      bind_text(st, 5, e->notification_type);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (addr != stack_addr) free(addr);
    if (rc != SQLITE_DONE) return SL_EDB;
  }
  return 0;
}

int store_prep_drop_raw(const store_prep *p, ses_event *e) {
  if (!p || p->ev != e || !p->packed || !p->dict_id || !e->raw) return 0;
  free(e->raw);
  e->raw = NULL; /* raw_len stays: the size checks read it */
  return 1;
}

/* twin_find for e. When p holds e's original JSON alone
 * (store_prep_drop_raw), the text is decoded from p's frame for the
 * lookup, exactly as seslog_raw reads the stored row, and dropped again.
 * Returns 0, SL_EDB or SL_ENOMEM. */
static int find_twin(store *s, ses_event *e, const store_prep *p, int *twin) {
  if (e->raw) return twin_find(s->twins, e, twin);
  *twin = 0;
  sqlite3_stmt *st = store_stmt(s, "SELECT seslog_raw(?1, ?2, ?3, ?4, ?5, ?6)");
  if (!st) return SL_EDB;
  rawz_values v;
  raw_values(e, &v); /* the values p's frame was tokenized with */
  sqlite3_bind_blob(st, 1, p->frame, (int)p->frame_len, SQLITE_STATIC);
  for (int k = 0; k < RAWZ_NVALUES; k++) bind_text(st, k + 2, v.v[k]);
  int rc = SL_EDB;
  if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) == SQLITE_TEXT) {
    const char *text = (const char *)sqlite3_column_text(st, 0);
    if (text && (size_t)sqlite3_column_bytes(st, 0) == e->raw_len) {
      e->raw = (char *)text; /* valid until the reset below */
      rc = twin_find(s->twins, e, twin);
      e->raw = NULL;
    }
  }
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
  return rc;
}

/* Inserts one event, prepared as p says, and everything it implies. Sets
 * req->result. Returns 0, or SL_EDB when the transaction must be rolled
 * back. */
static int insert_prepared(store *s, store_req *req, const store_prep *p, int64_t now) {
  ses_event *e = req->ev;
  int found, any;
  if (find_same(s, e, p->hash, &found, &any)) return SL_EDB;
  if (found) {
    req->result = STORE_DUPLICATE;
    return 0;
  }
  int twin = 0; /* a DynamoDB item and the SES JSON it was made from */
  if (any && find_twin(s, e, p, &twin)) return SL_EDB;
  if (twin) {
    req->result = STORE_DUPLICATE;
    return 0;
  }
  /* An event longer than SQLite takes would bind as NULL and be ignored
   * by the INSERT: refuse it, and leave the rest of the batch alone. */
  if (e->raw_len >= (size_t)sqlite3_limit(s->db, SQLITE_LIMIT_LENGTH, -1)) {
    req->result = SL_ETOOBIG;
    return 0;
  }
  int64_t topic_id = 0; /* the ARN's row is written in this transaction */
  int rc = e->topic_arn ? topics_id(s->topics, e->topic_arn, &topic_id) : 0;
  if (rc) return rc;
  rc = bind_event(s, e, now, p, topic_id);
  if (rc == SQLITE_NOMEM) return SL_ENOMEM;
  /* A row the database refuses (too big, a constraint or trigger that
   * aborts the statement) is this event's failure only: the statement was
   * undone, the transaction goes on. */
  if (rc == SQLITE_TOOBIG || rc == SQLITE_CONSTRAINT) {
    req->result = rc == SQLITE_TOOBIG ? SL_ETOOBIG : SL_EDB;
    snprintf(req->why, sizeof req->why, "%s", sqlite3_errmsg(s->db));
    return 0;
  }
  if (rc != SQLITE_DONE) return SL_EDB;
  if (sqlite3_changes(s->db) == 0) {
    /* A duplicate only when the row it collides with is there; an INSERT
     * that stored nothing for any other reason is a refusal. */
    int dup = 0;
    if (insert_collided(s, e, &dup)) return SL_EDB;
    req->result = dup ? STORE_DUPLICATE : SL_EDB;
    if (!dup) snprintf(req->why, sizeof req->why, "the INSERT stored no row and none collides");
    return 0;
  }
  req->event_id = sqlite3_last_insert_rowid(s->db);
  req->result = STORE_STORED;
  if (req->event_id > s->events) s->events = req->event_id;
  if ((rc = insert_recipients(s, e, req->event_id))) return rc;
  if (s->n_rollups == MAX_MINUTES && flush_rollups(s)) return SL_EDB;
  count_event(s, e);
  if (rollup_add(s->groups, e)) return SL_EDB;
  for (int h = 0; h < s->opts.n_hooks; h++)
    if (s->opts.hooks[h].on_event &&
        s->opts.hooks[h].on_event(s->opts.hooks[h].ud, s, e, req->event_id, now))
      return SL_EDB;
  return 0;
}

/* Inserts one event and everything it implies, with what store_prepare
 * worked out for it, or working that out here. Sets req->result. Returns
 * 0, or SL_EDB when the transaction must be rolled back. */
static int insert_one(store *s, store_req *req, int64_t now) {
  if (req->prep && req->prep->ev == req->ev) return insert_prepared(s, req, req->prep, now);
  store_prep local = {0};
  int rc = prep_fields(&local, req->ev);
  if (!rc) rc = insert_prepared(s, req, &local, now);
  prep_clear(&local);
  return rc;
}

static void set_health(store *s, int err, const char *msg) {
  pthread_mutex_lock(&s->mu);
  s->last_error = err;
  snprintf(s->last_error_msg, sizeof s->last_error_msg, "%s", msg ? msg : "");
  pthread_mutex_unlock(&s->mu);
}

/* The trainer thread: learns a dictionary from the events committed so
 * far, on a connection of its own, and leaves it for the writer. */
static void *trainer_main(void *arg) {
  store *s = arg;
  sqlite3 *db = NULL;
  void *dict = NULL;
  size_t len = 0;
  int samples = 0;
  char err[256] = "";
  int rc = SL_EDB;
  /* The first dictionary is urgent: rows stay plain until it exists. A
   * later one only compresses a little better, and learning from 2,048
   * events takes a quarter of a second of a core, which at normal priority
   * the loop, the writer and the verifying threads had to share with it
   * early in a run. Best effort: a refusal changes nothing else (nice
   * values are per thread on Linux). */
  if (s->retraining) util_thread_nice(TRAIN_NICE);
  if (sqlite3_open_v2(s->path, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) ==
      SQLITE_OK) {
    sqlite3_busy_timeout(db, 1000);
    rc = rawz_train(db, TRAIN_SAMPLES, &dict, &len, &samples, err, sizeof err);
  } else {
    snprintf(err, sizeof err, "%s", db ? sqlite3_errmsg(db) : "no memory");
  }
  sqlite3_close(db);
  if (rc) log_kv(LOG_WARN, "no compression dictionary trained", "error", err, NULL);
  pthread_mutex_lock(&s->mu);
  s->trained = dict;
  s->trained_len = len;
  s->trained_samples = samples;
  s->training = 0;
  pthread_mutex_unlock(&s->mu);
  return NULL;
}

/* Waits for a trainer that has finished (or is about to). */
static void join_trainer(store *s) {
  if (!s->trainer_started) return;
  pthread_join(s->trainer, NULL);
  s->trainer_started = 0;
}

/* Stores dict (freed) as the dictionary new rows use. Returns 0 with *id
 * set, or SL_EDB. */
static int adopt_dictionary(store *s, void *dict, size_t len, int samples, int64_t *id) {
  int rc = exec(s->db, "BEGIN IMMEDIATE", NULL, 0);
  if (!rc) rc = rawz_insert(s->db, dict, len, samples, id);
  if (!rc) rc = exec(s->db, "COMMIT", NULL, 0);
  if (rc) exec(s->db, "ROLLBACK", NULL, 0);
  if (!rc) rc = rawz_enc_load(s->z, s->db);
  free(dict);
  return rc;
}

/* Between transactions: stores a dictionary the trainer made and makes it
 * the one new rows use, or starts the trainer when the table has grown
 * enough. Training reads committed rows on its own connection, so it never
 * holds up a commit; storing the result is one small commit. A failure
 * costs nothing but compression: rows stay plain, and it is tried again
 * on twice the events. */
static void tend_dictionary(store *s, int with_events) {
  pthread_mutex_lock(&s->mu);
  int busy = s->training;
  void *dict = s->trained;
  size_t len = s->trained_len;
  int samples = s->trained_samples;
  s->trained = NULL;
  pthread_mutex_unlock(&s->mu);
  if (busy) return;
  join_trainer(s);
  if (dict) {
    int64_t id = 0;
    int rc = adopt_dictionary(s, dict, len, samples, &id);
    if (rc) {
      log_kv(LOG_WARN, "the compression dictionary could not be stored", "error",
             sqlite3_errmsg(s->db), NULL);
      s->train_at = s->events * 2 + TRAIN_FIRST;
      return;
    }
    char ids[24], ns[24];
    snprintf(ids, sizeof ids, "%lld", (long long)id);
    snprintf(ns, sizeof ns, "%d", samples);
    log_kv(LOG_INFO, "compression dictionary trained", "id", ids, "events", ns, NULL);
    plan_training(s);
    return;
  }
  /* only a writer of events trains: a command that writes no events
   * (`seslog suppression add`) would wait for the trainer at its close */
  if (!with_events || s->events < s->train_at) return;
  /* the next try, should this one fail */
  s->train_at = s->events * 2 + TRAIN_FIRST;
  pthread_mutex_lock(&s->mu);
  s->training = 1;
  pthread_mutex_unlock(&s->mu);
  s->retraining = rawz_enc_samples(s->z) > 0;
  if (pthread_create(&s->trainer, NULL, trainer_main, s)) {
    pthread_mutex_lock(&s->mu);
    s->training = 0;
    pthread_mutex_unlock(&s->mu);
    return;
  }
  s->trainer_started = 1;
}

int store_train_first(store *s, store_req **reqs, size_t n) {
  if (rawz_enc_id(s->z) || n == 0) return 0;
  pthread_mutex_lock(&s->mu);
  int busy = s->training || s->trained;
  pthread_mutex_unlock(&s->mu);
  if (busy) return 0;
  const char **texts = calloc(n, sizeof *texts);
  size_t *lens = calloc(n, sizeof *lens);
  rawz_values *vals = calloc(n, sizeof *vals);
  size_t m = 0;
  int rc = texts && lens && vals ? 0 : SL_ENOMEM;
  for (size_t i = 0; i < n && !rc; i++) {
    if (!reqs[i]->ev) continue;
    texts[m] = reqs[i]->ev->raw;
    lens[m] = reqs[i]->ev->raw_len;
    raw_values(reqs[i]->ev, &vals[m++]);
  }
  void *dict = NULL;
  size_t len = 0;
  int samples = 0;
  char err[256] = "";
  if (!rc)
    rc = rawz_train_texts(texts, lens, vals, m, TRAIN_FIRST_BATCH, &dict, &len, &samples, err,
                          sizeof err);
  free(texts);
  free(lens);
  free(vals);
  if (rc) return rc == SL_EINVAL ? 0 : rc; /* too few, or nothing learned: plain, as before */
  int64_t id = 0;
  if ((rc = adopt_dictionary(s, dict, len, samples, &id))) return rc;
  char ids[24], ns[24];
  snprintf(ids, sizeof ids, "%lld", (long long)id);
  snprintf(ns, sizeof ns, "%d", samples);
  log_kv(LOG_INFO, "compression dictionary trained", "id", ids, "events", ns, NULL);
  plan_training(s);
  /* the events prepared without a dictionary: compressed with this one */
  rawz_dict *d = rawz_enc_dict(s->z);
  for (size_t i = 0; i < n && !rc; i++) {
    store_prep *p = reqs[i]->prep;
    if (!reqs[i]->ev || !p || p->ev != reqs[i]->ev || p->dict_id) continue;
    rawz_values v;
    raw_values(p->ev, &v);
    free(p->frame);
    p->frame = NULL;
    rc = rawz_dict_compress(d, p->ev->raw, p->ev->raw_len, &v, &p->frame, &p->frame_len,
                            &p->dict_id);
  }
  rawz_dict_release(d);
  return rc;
}

static void bound_wal(store *s);

/* The writer's COMMIT begins (1) or ended (0): see yield_to_commit. */
static void set_committing(store *s, int on) {
  if (!s->ckpt_started) return;
  pthread_mutex_lock(&s->commit_mu);
  s->committing = on;
  if (!on) pthread_cond_broadcast(&s->commit_cv);
  pthread_mutex_unlock(&s->commit_mu);
}

int store_write(store *s, store_req **reqs, size_t n) {
  int64_t now = util_now_ms();
  char failure[256] = "";
  int with_events = 0;
  for (size_t i = 0; i < n && !with_events; i++) with_events = reqs[i]->ev != NULL;
  tend_dictionary(s, with_events);
  bound_wal(s);
  s->n_rollups = 0;
  rollup_reset(s->groups);
  int rc = sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
  int err = 0;
  if (rc != SQLITE_OK) {
    err = (rc == SQLITE_BUSY || rc == SQLITE_LOCKED) ? SL_EBUSY : SL_EDB;
  } else {
    for (size_t i = 0; i < n && !err; i++) {
      if (reqs[i]->ev)
        err = insert_one(s, reqs[i], now);
      else if (reqs[i]->apply)
        err = reqs[i]->apply(reqs[i], s->db);
      else
        reqs[i]->result = STORE_STORED;
    }
    if (!err) err = flush_rollups(s);
    if (!err) err = rollup_flush(s->groups);
    for (int h = 0; h < s->opts.n_hooks && !err; h++)
      if (s->opts.hooks[h].on_batch)
        err = s->opts.hooks[h].on_batch(s->opts.hooks[h].ud, s, reqs, n, now);
    if (!err) {
      set_committing(s, 1);
      if (sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) err = SL_EDB;
      set_committing(s, 0);
    }
    /* The failing statement's message, before ROLLBACK replaces it (after
     * SQLITE_FULL SQLite has rolled back already, and the ROLLBACK then
     * complains that no transaction is active). */
    if (err) snprintf(failure, sizeof failure, "%s", sqlite3_errmsg(s->db));
    if (err) sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    topics_end(s->topics, !err);
    for (int h = 0; h < s->opts.n_hooks; h++)
      if (s->opts.hooks[h].after_commit) s->opts.hooks[h].after_commit(s->opts.hooks[h].ud, !err);
  }
  if (err) {
    char msg[256];
    snprintf(msg, sizeof msg, "%s", failure[0] ? failure : sqlite3_errmsg(s->db));
    if (err == SL_EBUSY)
      snprintf(msg, sizeof msg, "the database stayed locked by another process for %lld ms",
               (long long)s->opts.busy_timeout_ms);
    log_kv(LOG_ERROR, "commit failed; nothing of this batch was stored", "error", msg, NULL);
    set_health(s, err, msg);
    for (size_t i = 0; i < n; i++) {
      reqs[i]->result = err;
      reqs[i]->event_id = 0;
    }
    return err;
  }
  if (s->last_error) set_health(s, 0, NULL);
  return 0;
}

/* A one-row write that needs a free page: succeeds only when the disk
 * takes writes again. */
static void probe(store *s) {
  char *msg = NULL;
  int rc = sqlite3_exec(s->db,
                        "BEGIN IMMEDIATE; INSERT OR REPLACE INTO health (id, at) "
                        "VALUES (1, strftime('%s','now')); COMMIT;",
                        NULL, NULL, &msg);
  if (rc == SQLITE_OK) {
    log_kv(LOG_INFO, "the database takes writes again", NULL);
    set_health(s, 0, NULL);
  } else {
    sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
  }
  sqlite3_free(msg);
}

static void *writer_main(void *arg) {
  store *s = arg;
  store_req **batch = malloc(sizeof *batch * (size_t)s->opts.batch_max);
  int prev_batch = 0; /* events in the last transaction */
  for (;;) {
    pthread_mutex_lock(&s->mu);
    while (!s->q_head && !s->stopping) {
      if (!s->last_error) {
        pthread_cond_wait(&s->cv, &s->mu);
        continue;
      }
      /* Unhealthy and idle: try a small write every few seconds, so the
       * health (and /healthz) recovers by itself when space returns or
       * the lock ends, not only when SNS retries. */
      struct timespec until;
      clock_gettime(CLOCK_REALTIME, &until);
      until.tv_sec += PROBE_SECONDS;
      if (pthread_cond_timedwait(&s->cv, &s->mu, &until) == ETIMEDOUT && !s->q_head &&
          !s->stopping) {
        pthread_mutex_unlock(&s->mu);
        probe(s);
        pthread_mutex_lock(&s->mu);
      }
    }
    if (!s->q_head && s->stopping) {
      pthread_mutex_unlock(&s->mu);
      break;
    }
    /* Under load (the last batch was not small), give the clients that
     * are just now sending up to COMMIT_DELAY_US to join this commit, as
     * PostgreSQL's commit_delay does: a commit rewrites about a hundred
     * pages whatever its size, so fuller commits are cheaper per event.
     * The wait counts from when the first waiting event was queued, not
     * from now: events that queued up during the last commit (a steady
     * stream, where they arrive whatever the writer does) have waited
     * long enough and go at once; the wait is for events that arrive
     * only once the last commit was answered (a busy client sends its
     * next when it has the answer). An idle server commits each event at
     * once. */
    if (prev_batch >= COMMIT_DELAY_MIN && s->q_len < prev_batch && !s->stopping) {
      struct timespec until = s->q_since;
      util_timespec_add_us(&until, COMMIT_DELAY_US);
      while (s->q_len < prev_batch && !s->stopping &&
             pthread_cond_timedwait(&s->cv, &s->mu, &until) != ETIMEDOUT) {
      }
    }
    /* Everything waiting goes into this transaction (up to batch_max):
     * under load batches grow by themselves, idle each event commits
     * alone. */
    size_t n = 0;
    store_req *first = s->q_head, *last = NULL;
    while (s->q_head && (int)n < s->opts.batch_max) {
      last = s->q_head;
      batch[n++] = last;
      s->q_head = last->next;
    }
    if (!s->q_head) s->q_tail = NULL;
    s->q_len -= (int)n;
    /* The wait above ends with a request queued (or returns when stopping),
     * and q_len counts exactly the requests linked from q_head. */
    assert(n > 0 && last);
    assert(s->q_len >= 0 && (s->q_len == 0) == (s->q_head == NULL));
    prev_batch = (int)n;
    pthread_mutex_unlock(&s->mu);
    last->next = NULL;
    if (batch) {
      store_write(s, batch, n);
    } else {
      for (store_req *r = first; r; r = r->next) r->result = SL_ENOMEM;
    }
    pthread_mutex_lock(&s->mu);
    if (s->done_tail)
      s->done_tail->next = first;
    else
      s->done_head = first;
    s->done_tail = last;
    pthread_mutex_unlock(&s->mu);
    if (s->opts.notify) s->opts.notify(s->opts.notify_ud);
  }
  free(batch);
  return NULL;
}

/* After every commit of the write connection (SQLite's WAL hook, which
 * replaces its automatic checkpoint): wakes the checkpointer once the WAL
 * holds CKPT_PAGES, and again after each CKPT_STEP more. */
static int on_wal_commit(void *ud, sqlite3 *db, const char *name, int pages) {
  store *s = ud;
  pthread_mutex_lock(&s->mu);
  if (pages < s->wal_pages) { /* the WAL started over */
    s->backfilled = 0;
    s->caught_up = 0;
  }
  s->wal_pages = pages;
  if (pages >= CKPT_PAGES && pages - s->backfilled >= CKPT_STEP && !s->ckpt_wanted) {
    s->ckpt_wanted = 1;
    pthread_cond_signal(&s->ckpt_cv);
  }
  pthread_mutex_unlock(&s->mu);
  return SQLITE_OK;
}

/* After a passive checkpoint that copied up to frame done (-1: it
 * failed), with mu held, once the WAL holds CKPT_CHASE frames: while the
 * writer appended more frames than a short pause copies, checkpoint again
 * at once (each run copies what the writer wrote during the last, so the
 * runs shorten); once at most CKPT_TAIL frames are left, tell the writer
 * (bound_wal), which pauses for those few so that the WAL starts over.
 * Every restart costs a pause of at least a sync of the database, so the
 * chase waits for a WAL of CKPT_CHASE frames rather than starting at
 * CKPT_PAGES. A run that copied nothing new (a reader holds old frames)
 * ends the chase until the next trigger, so the thread never spins. */
static void catch_up(store *s, int done) {
  if (done <= s->backfilled || s->wal_pages < CKPT_CHASE) return;
  if (s->wal_pages - done <= CKPT_TAIL) {
    s->caught_up = 1;
  } else {
    s->ckpt_wanted = 1;
  }
}

/* The checkpointer thread: a PASSIVE checkpoint whenever the WAL passed
 * CKPT_PAGES. It never takes the write lock, so the writer commits on
 * while pages are copied and synced; the WAL starts over at the writer's
 * next transaction once a checkpoint caught up with it. */
static void *ckpt_main(void *arg) {
  store *s = arg;
  pthread_mutex_lock(&s->mu);
  for (;;) {
    while (!s->ckpt_wanted && !s->stopping) pthread_cond_wait(&s->ckpt_cv, &s->mu);
    if (s->stopping) break;
    s->ckpt_wanted = 0;
    int full = s->ckpt_full; /* the writer is paused: this one copies every frame */
    pthread_mutex_unlock(&s->mu);
    int log = 0, done = 0;
    int rc = sqlite3_wal_checkpoint_v2(s->ckpt_db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &done);
    if (rc != SQLITE_OK && rc != SQLITE_BUSY)
      log_kv(LOG_WARN, "checkpoint failed", "error", sqlite3_errmsg(s->ckpt_db), NULL);
    pthread_mutex_lock(&s->mu);
    if (!full) catch_up(s, rc == SQLITE_OK ? done : -1);
    if (rc == SQLITE_OK && done > s->backfilled) s->backfilled = done;
    if (full) {
      /* every frame, or as far as readers of old frames allow: go on */
      s->ckpt_full = 0;
      pthread_cond_broadcast(&s->ckpt_done_cv);
    }
  }
  s->ckpt_full = 0;
  pthread_cond_broadcast(&s->ckpt_done_cv);
  pthread_mutex_unlock(&s->mu);
  return NULL;
}

/* Before each step of the checkpointer's write-back of database pages,
 * and before its sync (ckptio): while the writer's COMMIT is in flight,
 * wait until it ends, at most CKPT_YIELD_US, so the COMMIT's WAL sync
 * does not queue behind a checkpoint's megabytes on the disk. Steps run
 * while the writer builds its next batch. Returns 1 (no more steps, the
 * sync writes the rest at once) when the writer is paused for this
 * checkpoint (bound_wal): it commits nothing meanwhile and waits. */
static int yield_to_commit(void *ud) {
  store *s = ud;
  pthread_mutex_lock(&s->mu);
  int full = s->ckpt_full;
  pthread_mutex_unlock(&s->mu);
  if (full) return 1;
  pthread_mutex_lock(&s->commit_mu);
  if (s->committing) {
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    util_timespec_add_us(&until, CKPT_YIELD_US);
    while (s->committing && pthread_cond_timedwait(&s->commit_cv, &s->commit_mu, &until) == 0) {
    }
  }
  pthread_mutex_unlock(&s->commit_mu);
  return 0;
}

/* Starts the checkpointer and takes checkpoints off the write connection.
 * Without it (no connection, no thread) SQLite's own automatic checkpoint
 * stays. Returns 0 or SL_EDB / SL_ENOMEM. */
static int start_checkpointer(store *s) {
  if (ckptio_open(s->path, &s->ckpt_db, yield_to_commit, s) != SQLITE_OK) {
    sqlite3_close(s->ckpt_db);
    s->ckpt_db = NULL;
    return SL_EDB;
  }
  /* A connection opens the file lazily: read the schema once, so it
   * knows the database is in WAL mode (else a checkpoint does nothing). */
  if (exec(s->ckpt_db, "SELECT count(*) FROM sqlite_schema", NULL, 0)) {
    sqlite3_close(s->ckpt_db);
    s->ckpt_db = NULL;
    return SL_EDB;
  }
  if (pthread_create(&s->ckpt_thread, NULL, ckpt_main, s)) {
    sqlite3_close(s->ckpt_db);
    s->ckpt_db = NULL;
    return SL_ENOMEM;
  }
  s->ckpt_started = 1;
  sqlite3_wal_hook(s->db, on_wal_commit, s);
  return 0;
}

/* Between transactions: the WAL starts over only when a transaction
 * begins after a checkpoint copied every frame, which a writer that never
 * pauses does not allow. So the writer waits, between two transactions,
 * for one checkpoint of the frames the checkpointer has not copied yet:
 * as soon as the checkpointer caught up to within CKPT_TAIL frames (the
 * pause copies a few hundred frames and syncs), and in any case past
 * CKPT_HARD_PAGES, so the WAL stays bounded. (A pause only at the hard
 * bound copied some 2,000 frames while every commit waited, about three
 * times a second at 5,000 events/s.) */
static void bound_wal(store *s) {
  if (!s->ckpt_started) return;
  pthread_mutex_lock(&s->mu);
  if ((s->caught_up || s->wal_pages >= CKPT_HARD_PAGES) && !s->stopping) {
    s->caught_up = 0;
    s->ckpt_full = 1;
    s->ckpt_wanted = 1;
    pthread_cond_signal(&s->ckpt_cv);
    while (s->ckpt_full) pthread_cond_wait(&s->ckpt_done_cv, &s->mu);
  }
  pthread_mutex_unlock(&s->mu);
}

int store_start(store *s) {
  if (start_checkpointer(s))
    log_kv(LOG_WARN, "no checkpointer thread; commits checkpoint the WAL themselves", NULL);
  if (pthread_create(&s->thread, NULL, writer_main, s)) return SL_ENOMEM;
  s->thread_started = 1;
  return 0;
}

/* --queue-max caps events: past it /sns answers 503 and SNS retries. The
 * server's own requests (outbox verdicts, alerts, monitor and DNSBL
 * changes) are few and have no one to retry them, so a burst of events
 * must not crowd them out: they may go this far past the cap. */
#define OWN_REQ_MARGIN 16384

int store_submit(store *s, store_req *req) {
  req->next = NULL;
  pthread_mutex_lock(&s->mu);
  int rc = 0;
  if (s->stopping)
    rc = SL_ESHUTDOWN;
  else if (s->q_len >= s->opts.queue_max + (req->ev ? 0 : OWN_REQ_MARGIN))
    rc = SL_EBUSY;
  if (!rc) {
    if (s->q_tail) {
      s->q_tail->next = req;
    } else {
      s->q_head = req;
      clock_gettime(CLOCK_REALTIME, &s->q_since);
    }
    s->q_tail = req;
    s->q_len++;
    pthread_cond_signal(&s->cv);
  }
  pthread_mutex_unlock(&s->mu);
  return rc;
}

int store_queue_depth(store *s) {
  pthread_mutex_lock(&s->mu);
  int n = s->q_len;
  pthread_mutex_unlock(&s->mu);
  return n;
}

void store_complete(store *s) {
  pthread_mutex_lock(&s->mu);
  store_req *r = s->done_head;
  s->done_head = s->done_tail = NULL;
  pthread_mutex_unlock(&s->mu);
  while (r) {
    store_req *next = r->next;
    r->next = NULL;
    r->cb(r); /* may free r */
    r = next;
  }
}

/* Stops the checkpointer; the writer's close checkpoints what is left. */
static void stop_checkpointer(store *s) {
  if (!s->ckpt_started) return;
  pthread_mutex_lock(&s->mu);
  s->stopping = 1;
  pthread_cond_signal(&s->ckpt_cv);
  pthread_mutex_unlock(&s->mu);
  pthread_join(s->ckpt_thread, NULL);
  s->ckpt_started = 0;
  sqlite3_close(s->ckpt_db);
  s->ckpt_db = NULL;
}

void store_stop(store *s) {
  if (!s || !s->thread_started) return;
  pthread_mutex_lock(&s->mu);
  s->stopping = 1;
  pthread_cond_signal(&s->cv);
  pthread_mutex_unlock(&s->mu);
  pthread_join(s->thread, NULL);
  s->thread_started = 0;
  stop_checkpointer(s);
}

void store_close(store *s) {
  if (!s) return;
  store_stop(s);
  stop_checkpointer(s);
  join_trainer(s);
  free(s->trained);
  rawz_enc_free(s->z);
  sqlite3_finalize(s->ins_event);
  sqlite3_finalize(s->find_same);
  sqlite3_finalize(s->ins_recipient);
  sqlite3_finalize(s->upsert_rollup);
  rollup_close(s->groups);
  twin_close(s->twins);
  topics_close(s->topics);
  for (int i = 0; i < s->n_stmts; i++) sqlite3_finalize(s->stmts[i].st);
  free(s->stmts);
  if (s->db) {
    /* A clean close checkpoints and removes the WAL. close_v2: a module
     * that still finalizes a statement of its own may do it after this. */
    sqlite3_close_v2(s->db);
  }
  pthread_mutex_destroy(&s->mu);
  pthread_cond_destroy(&s->cv);
  pthread_cond_destroy(&s->ckpt_cv);
  pthread_cond_destroy(&s->ckpt_done_cv);
  pthread_mutex_destroy(&s->commit_mu);
  pthread_cond_destroy(&s->commit_cv);
  free(s->path);
  free(s);
}

int store_health(store *s, char *why, size_t whylen) {
  pthread_mutex_lock(&s->mu);
  int err = s->last_error;
  if (err && why) snprintf(why, whylen, "%s", s->last_error_msg);
  pthread_mutex_unlock(&s->mu);
  return err;
}

void store_req_free(store_req *req) {
  if (!req) return;
  ses_event_free(req->ev);
  store_prep_free(req->prep);
  free(req->topic_arn);
  free(req->sub_arn);
  free(req);
}

sqlite3_stmt *store_stmt(store *s, const char *sql) {
  for (int i = 0; i < s->n_stmts; i++) /* callers pass literals: the pointer finds it */
    if (s->stmts[i].sql == sql) return s->stmts[i].st;
  for (int i = 0; i < s->n_stmts; i++)
    if (strcmp(s->stmts[i].sql, sql) == 0) return s->stmts[i].st;
  if (s->n_stmts == s->cap_stmts) {
    int cap = s->cap_stmts ? s->cap_stmts * 2 : 16;
    struct cached_stmt *v = realloc(s->stmts, (size_t)cap * sizeof *v);
    if (!v) return NULL;
    s->stmts = v;
    s->cap_stmts = cap;
  }
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK) {
    log_kv(LOG_ERROR, "cannot prepare a statement", "error", sqlite3_errmsg(s->db), NULL);
    return NULL;
  }
  s->stmts[s->n_stmts++] = (struct cached_stmt){.sql = sql, .st = st};
  return st;
}
