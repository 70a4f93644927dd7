/* api_suppression.c - the suppression list's endpoints: listing, the
 * bulk check and one address's entry (read, put, delete). Reads run on
 * the readpool, writes on the store's writer (the entry as committed is
 * read back in the same transaction). */
#include "api_suppression.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "address.h"
#include "api.h"
#include "error.h"
#include "route.h"
#include "util.h"

#define BODY_MAX ((size_t)64 << 20) /* the largest answer: a full bulk check */
#define LIST_MAX 1000               /* limit of one API page, at most */
#define LIST_DEFAULT 50

enum job_kind { JK_LIST, JK_GET, JK_CHECK, JK_PUT, JK_DELETE };

/* One API request on its way through the readpool or the store. */
typedef struct job {
  api_job base; /* the request and its answer */
  struct api_suppression *ctx;
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
} job;

static void job_free(job *j) {
  buf_free(&j->base.body);
  free(j->note);
  free(j);
}

/* Answers j (error or body) and frees it. */
static void finish(job *j) {
  api_job_finish(&j->base);
  job_free(j);
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
  if (rc) api_job_fail_rc(&j->base, rc);
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
  int rc = buf_appends(&c->j->base.body, c->n ? "," : "");
  if (!rc) rc = suppression_row_json(r, &c->j->base.body);
  c->n++;
  c->last_id = r->id;
  return rc;
}

static int list_work(sqlite3 *db, void *arg) {
  job *j = arg;
  struct list_ctx c = {j, 0, 0, 0};
  int rc = buf_appends(&j->base.body, "{\"items\":[");
  read_begin(db);
  if (!rc) rc = suppression_list(db, &j->f, list_row, &c);
  read_end(db);
  if (rc == 1) rc = 0; /* stopped at the page's end */
  if (!rc && c.more)
    rc = buf_printf(&j->base.body, "],\"nextCursor\":\"c%lld\"}", (long long)c.last_id);
  else if (!rc)
    rc = buf_appends(&j->base.body, "],\"nextCursor\":null}");
  if (!rc) j->base.status = 200;
  return rc;
}

/* Parses the query of GET /api/suppression into j->f. Returns 0, or
 * SL_EINVAL with j's answer set. */
static int list_params(job *j) {
  static const char *const known[] = {"limit", "cursor", "reason", "domain", "since", "search"};
  j->f.reason = -1;
  j->f.limit = LIST_DEFAULT;
  for (const char *p = j->base.req->query; p && *p;) {
    const char *amp = strchr(p, '&');
    size_t n = amp ? (size_t)(amp - p) : strlen(p);
    const char *eq = memchr(p, '=', n);
    size_t kl = eq ? (size_t)(eq - p) : n;
    size_t k = 0;
    while (kl && k < sizeof known / sizeof known[0] &&
           !(strlen(known[k]) == kl && strncmp(known[k], p, kl) == 0))
      k++;
    if (kl && k == sizeof known / sizeof known[0]) {
      snprintf(j->base.msg, sizeof j->base.msg,
               "Unknown parameter \"%.*s\"; this endpoint takes: limit, cursor, reason, domain, "
               "since, search.",
               (int)(kl < 64 ? kl : 64), p);
      api_job_fail(&j->base, 400, "invalid_parameter", j->base.msg);
      return SL_EINVAL;
    }
    p += n + (amp ? 1 : 0);
  }
  char v[SUPPRESSION_ADDRESS_MAX + 1];
  for (size_t k = 0; k < sizeof known / sizeof known[0]; k++) {
    const char *name = known[k];
    int got = http_query_param(j->base.req, name, v, sizeof v);
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
      if (strlen(v) >= sizeof j->domain || address_fold(probe, probe, sizeof probe, NULL))
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
      api_job_fail(&j->base, 400, "invalid_parameter", msg);
      return SL_EINVAL;
    }
  }
  j->f.limit++; /* one more row tells whether there is a next page */
  return 0;
}

/* -- GET /api/suppression/{address} -- */

/* The entry of j->folded with its history into j->base.body; *found 0
 * when the address is not listed. */
static int get_entry_history(sqlite3 *db, job *j, int *found) {
  int rc = suppression_get_json(db, j->folded, &j->base.body, found);
  if (rc || !*found) return rc;
  /* The entry's closing brace becomes the history's field. */
  j->base.body.len--;
  rc = buf_appends(&j->base.body, ",\"history\":");
  if (!rc) rc = suppression_history_json(db, j->folded, SUPPRESSION_HISTORY_MAX, &j->base.body);
  if (!rc) rc = buf_appends(&j->base.body, "}");
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
    snprintf(j->base.msg, sizeof j->base.msg, "%s is not on the suppression list.", j->display);
    api_job_fail(&j->base, 404, "not_found", j->base.msg);
    return 0;
  }
  j->base.status = 200;
  return 0;
}

/* -- POST /api/suppression/check -- */

/* Parses the body, checks every address, looks each one up. Everything
 * runs here on the pool: a 10,000-address body costs the loop nothing. */
static int check_work(sqlite3 *db, void *arg) {
  job *j = arg;
  const buf *body = &j->base.req->body;
  cJSON *root = body->len ? cJSON_ParseWithLength(body->data, body->len) : NULL;
  const cJSON *list = cJSON_GetObjectItemCaseSensitive(root, "addresses");
  if (!cJSON_IsArray(list)) {
    cJSON_Delete(root);
    api_job_fail(&j->base, 400, "invalid_body",
                 "The body must be a JSON object {\"addresses\":[\"a@example.com\", ...]}.");
    return 0;
  }
  int n = cJSON_GetArraySize(list);
  if (n > SUPPRESSION_CHECK_MAX) {
    cJSON_Delete(root);
    snprintf(j->base.msg, sizeof j->base.msg,
             "The body names %d addresses; one check takes at most 10000.", n);
    api_job_fail(&j->base, 400, "too_many_addresses", j->base.msg);
    return 0;
  }
  int i = 0;
  const cJSON *a;
  cJSON_ArrayForEach(a, list) {
    const char *why = "it is not a string";
    if (!cJSON_IsString(a) || address_check(a->valuestring, &why)) {
      char shown[80] = "";
      if (cJSON_IsString(a)) snprintf(shown, sizeof shown, " \"%.60s\"", a->valuestring);
      snprintf(j->base.msg, sizeof j->base.msg, "addresses[%d]%s is not an email address: %s.", i,
               shown, why);
      for (char *p = j->base.msg; *p; p++)
        if ((unsigned char)*p < 0x20) *p = ' ';
      cJSON_Delete(root);
      api_job_fail(&j->base, 400, "invalid_address", j->base.msg);
      return 0;
    }
    i++;
  }
  const char **given = calloc((size_t)n + 1, sizeof *given);
  int rc = given ? 0 : SL_ENOMEM;
  if (given) {
    i = 0;
    cJSON_ArrayForEach(a, list) given[i++] = a->valuestring;
  }
  read_begin(db);
  if (!rc) rc = suppression_check_json(db, given, n, &j->base.body);
  read_end(db);
  free(given);
  cJSON_Delete(root);
  if (!rc) j->base.status = 200;
  return rc;
}

/* -- PUT and DELETE /api/suppression/{address}: the writer's side -- */

static int put_apply(store_req *r, sqlite3 *db) {
  job *j = r->ud;
  struct suppression_change c = {
      .address = j->display, .reason = j->reason, .note = j->note, .actor = "api"};
  int rc = suppression_put(j->ctx->s, j->ctx->st, &c, util_now_ms(), &j->outcome);
  if (rc == SL_EINVAL) {
    r->result = SL_EINVAL;
    return 0;
  }
  if (rc) return SL_EDB;
  /* The answer is the entry as committed: read it in the same
   * transaction, on the write connection (this is the writer thread). */
  int found = 0;
  rc = suppression_get_json(db, j->folded, &j->base.body, &found);
  if (rc || !found) return SL_EDB;
  r->result = STORE_STORED;
  return 0;
}

static int delete_apply(store_req *r, sqlite3 *db) {
  job *j = r->ud;
  /* The entry as it was, for the answer. */
  int found = 0;
  int rc = suppression_get_json(db, j->folded, &j->base.body, &found);
  if (rc) return SL_EDB;
  rc = suppression_remove(j->ctx->s, j->ctx->st, j->display, "api", j->note, util_now_ms(),
                          &j->outcome);
  if (rc) return SL_EDB;
  r->result = STORE_STORED;
  return 0;
}

/* The store committed (or not): on the loop. */
static void write_done(store_req *r) {
  job *j = r->ud;
  if (r->result < 0) {
    api_job_fail(&j->base, 503, "storage_unavailable",
                 "The change could not be committed; try again.");
  } else if (j->kind == JK_PUT) {
    j->base.status = j->outcome == SUP_ADDED ? 201 : 200;
  } else if (j->outcome == SUP_ABSENT) {
    snprintf(j->base.msg, sizeof j->base.msg, "%s is not on the suppression list.", j->display);
    api_job_fail(&j->base, 404, "not_found", j->base.msg);
  } else {
    j->base.status = 200;
  }
  finish(j);
}

/* Reads the optional body of a PUT. Returns 0, or SL_EINVAL with j's
 * answer set. */
static int put_body(job *j) {
  j->reason = SUP_MANUAL;
  const buf *body = &j->base.req->body;
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
    api_job_fail(&j->base, 400, "invalid_body", bad);
    return SL_EINVAL;
  }
  return 0;
}

/* -- the route handlers -- */

/* A job for req, or NULL (answered 503). */
static job *job_new(struct api_suppression *ctx, http_request *req, enum job_kind kind) {
  job *j = calloc(1, sizeof *j);
  if (!j) {
    http_respond_error(req, 503, "overloaded", "The server is out of memory.");
    return NULL;
  }
  api_job_init(&j->base, req, BODY_MAX, NULL, ctx->timeout_ms);
  j->ctx = ctx;
  j->kind = kind;
  if (!ctx->rp) {
    api_job_fail(&j->base, 503, "unavailable", "The suppression list is not available.");
    finish(j);
    return NULL;
  }
  return j;
}

/* Runs j's read on the pool; answers it either way. */
static void run_read(job *j, readpool_fn work) {
  if (readpool_run(j->ctx->rp, work, read_done, j)) {
    api_job_fail(&j->base, 503, "overloaded", "The server is out of memory.");
    finish(j);
  }
}

void api_suppression_list(void *ctx, http_request *req, const char *tail) {
  (void)tail;
  job *j = job_new(ctx, req, JK_LIST);
  if (!j) return;
  if (list_params(j))
    finish(j);
  else
    run_read(j, list_work);
}

void api_suppression_check(void *ctx, http_request *req, const char *tail) {
  (void)tail;
  job *j = job_new(ctx, req, JK_CHECK);
  if (j) run_read(j, check_work);
}

/* Hands a PUT or DELETE to the writer; answers it either way. */
static void submit_write(job *j) {
  if (j->kind == JK_PUT && put_body(j)) {
    finish(j);
    return;
  }
  j->sreq.apply = j->kind == JK_PUT ? put_apply : delete_apply;
  j->sreq.cb = write_done;
  j->sreq.ud = j;
  if (!j->ctx->st) { /* serve --read-only (the router refuses first) */
    api_job_fail(&j->base, 403, "read_only", "This server runs with --read-only.");
    finish(j);
    return;
  }
  int rc = store_submit(j->ctx->st, &j->sreq);
  if (rc) {
    if (rc == SL_EBUSY)
      api_job_fail(&j->base, 503, "overloaded", "Too many writes are waiting; try again.");
    else
      api_job_fail_rc(&j->base, rc);
    finish(j);
  }
}

void api_suppression_entry(void *ctx, http_request *req, const char *tail) {
  job *j = job_new(ctx, req, JK_GET);
  if (!j) return;
  const char *why = NULL;
  if (address_fold(tail, j->folded, sizeof j->folded, &why)) {
    char shown[80];
    snprintf(shown, sizeof shown, "%.60s", tail);
    for (char *c = shown; *c; c++)
      if ((unsigned char)*c < 0x20) *c = ' ';
    snprintf(j->base.msg, sizeof j->base.msg, "\"%s\" is not an email address: %s.", shown, why);
    api_job_fail(&j->base, 400, "invalid_address", j->base.msg);
    finish(j);
    return;
  }
  snprintf(j->display, sizeof j->display, "%s", tail);
  if (route_is_read_method(req->method)) {
    run_read(j, get_work);
  } else if (strcmp(req->method, "PUT") == 0 || strcmp(req->method, "DELETE") == 0) {
    j->kind = req->method[0] == 'P' ? JK_PUT : JK_DELETE;
    submit_write(j);
  } else {
    api_job_fail(&j->base, 405, "method_not_allowed",
                 "/api/suppression/{address} answers GET, PUT and DELETE.");
    finish(j);
  }
}
