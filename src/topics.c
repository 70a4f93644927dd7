/* topics.c - each SNS topic's ARN stored once. See topics.h. */
#include "topics.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "util.h"

/* Topics are few (one or two per AWS account and region); past this many
 * a new topic's id is looked up in SQL each time instead of cached. */
#define MAX_CACHED 256

struct topic {
  char *arn;   /* owned */
  int64_t id;  /* topics.id */
  int pending; /* 1: its row was written in the open transaction */
};

struct topic_ids {
  sqlite3 *db;       /* the writer's connection */
  sqlite3_stmt *get; /* the id of an ARN */
  sqlite3_stmt *add; /* a new ARN's row */
  struct topic *v;   /* the cache, MAX_CACHED entries */
  int n;
  int last; /* the entry found last: one topic is the usual case */
};

int topics_open(sqlite3 *db, topic_ids **out, char *err, size_t errlen) {
  topic_ids *t = calloc(1, sizeof *t);
  if (!t || !(t->v = calloc(MAX_CACHED, sizeof *t->v))) {
    free(t);
    snprintf(err, errlen, "no memory for the topics cache");
    return SL_ENOMEM;
  }
  t->db = db;
  if (sqlite3_prepare_v3(db, "SELECT id FROM topics WHERE arn = ?", -1, SQLITE_PREPARE_PERSISTENT,
                         &t->get, NULL) != SQLITE_OK ||
      sqlite3_prepare_v3(db, "INSERT INTO topics (arn) VALUES (?)", -1, SQLITE_PREPARE_PERSISTENT,
                         &t->add, NULL) != SQLITE_OK) {
    snprintf(err, errlen, "cannot prepare the topics statements: %s", sqlite3_errmsg(db));
    topics_close(t);
    return SL_EDB;
  }
  *out = t;
  return 0;
}

/* The id of arn from SQL, its row added when missing; *added says whether
 * it was. Returns 0 or SL_EDB. */
static int lookup(topic_ids *t, const char *arn, int64_t *id, int *added) {
  sqlite3_bind_text(t->get, 1, arn, -1, SQLITE_STATIC);
  int rc = sqlite3_step(t->get);
  if (rc == SQLITE_ROW) *id = sqlite3_column_int64(t->get, 0);
  sqlite3_reset(t->get);
  sqlite3_clear_bindings(t->get);
  if (rc == SQLITE_ROW) {
    *added = 0;
    return 0;
  }
  if (rc != SQLITE_DONE) return SL_EDB;
  sqlite3_bind_text(t->add, 1, arn, -1, SQLITE_STATIC);
  rc = sqlite3_step(t->add);
  sqlite3_reset(t->add);
  sqlite3_clear_bindings(t->add);
  if (rc != SQLITE_DONE) return SL_EDB;
  *id = sqlite3_last_insert_rowid(t->db);
  *added = 1;
  return 0;
}

int topics_id(topic_ids *t, const char *arn, int64_t *id) {
  if (t->n && strcmp(t->v[t->last].arn, arn) == 0) {
    *id = t->v[t->last].id;
    return 0;
  }
  for (int i = 0; i < t->n; i++)
    if (strcmp(t->v[i].arn, arn) == 0) {
      t->last = i;
      *id = t->v[i].id;
      return 0;
    }
  int64_t found;
  int added;
  if (lookup(t, arn, &found, &added)) return SL_EDB;
  if (t->n < MAX_CACHED) {
    char *copy = util_strdup(arn);
    if (!copy) return SL_ENOMEM;
    t->v[t->n] = (struct topic){.arn = copy, .id = found, .pending = added};
    t->last = t->n++;
  }
  *id = found;
  return 0;
}

void topics_end(topic_ids *t, int committed) {
  int kept = 0;
  for (int i = 0; i < t->n; i++) {
    if (t->v[i].pending && !committed) {
      free(t->v[i].arn);
      continue;
    }
    t->v[i].pending = 0;
    t->v[kept++] = t->v[i];
  }
  t->n = kept;
  t->last = 0;
}

void topics_close(topic_ids *t) {
  if (!t) return;
  sqlite3_finalize(t->get);
  sqlite3_finalize(t->add);
  for (int i = 0; i < t->n; i++) free(t->v[i].arn);
  free(t->v);
  free(t);
}
