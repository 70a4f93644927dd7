/* dynamodb_scan.c - Scan of the table, page by page, for import; failed
 * pages are retried with backoff on the loop thread. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>

#include "dynamodb_client.h"
#include "error.h"
#include "log.h"

#define SCAN_TIMEOUT_MS 30000
#define SCAN_ATTEMPTS 10

typedef struct scan_req {
  dynamodb *d;
  char *body;
  size_t body_len;
  dynamodb_page_cb cb;
  void *ud;
  int attempts;
  uv_timer_t timer;
  int timer_open;
} scan_req;

static void scan_free(scan_req *s) {
  free(s->body);
  free(s);
}

static void on_scan_timer_closed(uv_handle_t *h) {
  scan_free(h->data);
}

static void scan_done(scan_req *s) {
  if (s->timer_open)
    uv_close((uv_handle_t *)&s->timer, on_scan_timer_closed);
  else
    scan_free(s);
}

static int scan_start(scan_req *s);

static void on_scan_timer(uv_timer_t *t) {
  scan_req *s = t->data;
  int rc = scan_start(s);
  if (rc) {
    struct dynamodb_page page = {.rc = rc, .error = "the request could not be started"};
    s->cb(s->ud, &page);
    scan_done(s);
  }
}

static void on_scan_answer(void *ud, const outbound_result *res) {
  scan_req *s = ud;
  char error[320];
  int retry = 0;
  if (res->rc) {
    snprintf(error, sizeof error, "DynamoDB could not be reached: %s",
             res->error ? res->error : sl_strerror(res->rc));
    retry = res->rc != SL_ESHUTDOWN;
  } else if (res->status == 200) {
    cJSON *j = cJSON_ParseWithLength(res->body, res->body_len);
    const cJSON *items = cJSON_GetObjectItemCaseSensitive(j, "Items");
    const cJSON *last = cJSON_GetObjectItemCaseSensitive(j, "LastEvaluatedKey");
    if (cJSON_IsArray(items)) {
      struct dynamodb_page page = {
          .rc = 0, .items = items, .last_key = cJSON_IsObject(last) ? last : NULL};
      s->cb(s->ud, &page);
      cJSON_Delete(j);
      scan_done(s);
      return;
    }
    cJSON_Delete(j);
    snprintf(error, sizeof error, "DynamoDB answered a Scan without Items");
  } else {
    char type[96], msg[160];
    dynamodb_read_error(res, type, sizeof type, msg, sizeof msg);
    snprintf(error, sizeof error, "DynamoDB answered HTTP %ld%s%s%s%s", res->status,
             type[0] ? " " : "", type, msg[0] ? ": " : "", msg);
    retry = res->status >= 500 || res->status == 429 || res->status == 408 ||
            (res->status == 400 && dynamodb_is_throttling(type));
  }
  if (retry && s->d->loop && s->attempts < SCAN_ATTEMPTS) {
    int64_t ms = dynamodb_backoff_ms(s->attempts);
    if (!s->timer_open) {
      uv_timer_init(s->d->loop, &s->timer);
      s->timer.data = s;
      s->timer_open = 1;
    }
    log_kv(LOG_INFO, "dynamodb: Scan failed; retrying", "error", error, NULL);
    uv_timer_start(&s->timer, on_scan_timer, (uint64_t)ms, 0);
    return;
  }
  struct dynamodb_page page = {.rc = SL_EIO, .error = error};
  s->cb(s->ud, &page);
  scan_done(s);
}

static int scan_start(scan_req *s) {
  s->attempts++;
  return dynamodb_post(s->d, "Scan", s->body, s->body_len, SCAN_TIMEOUT_MS, on_scan_answer, s);
}

int dynamodb_scan(dynamodb *d, int segment, int total, const cJSON *start_key, dynamodb_page_cb cb,
                  void *ud) {
  if (total < 1 || segment < 0 || segment >= total) return SL_EINVAL;
  scan_req *s = calloc(1, sizeof *s);
  if (!s) return SL_ENOMEM;
  s->d = d;
  s->cb = cb;
  s->ud = ud;
  buf b;
  buf_init(&b, 1 << 20);
  buf_appends(&b, "{\"TableName\":");
  buf_appends(&b, d->table_json);
  if (total > 1) buf_printf(&b, ",\"Segment\":%d,\"TotalSegments\":%d", segment, total);
  int rc = 0;
  if (start_key) {
    char *k = cJSON_PrintUnformatted(start_key);
    if (!k)
      rc = SL_ENOMEM;
    else {
      buf_appends(&b, ",\"ExclusiveStartKey\":");
      buf_appends(&b, k);
      free(k);
    }
  }
  if (!rc) rc = buf_appends(&b, "}");
  s->body_len = b.len;
  s->body = buf_take(&b);
  if (!rc && !s->body) rc = SL_ENOMEM;
  if (!rc) rc = scan_start(s);
  if (rc) {
    scan_free(s);
    return rc;
  }
  return 0;
}
