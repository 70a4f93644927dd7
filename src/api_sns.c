/* api_sns.c - an SNS envelope from elsewhere (SQS) handed to ingest as
 * POST /sns: a request built here, its answer read back for the caller. */
#include "api_sns.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "http.h"
#include "util.h"

struct api_sns_envelope {
  http_request *req; /* the request ingest answers */
  api_sns_done done; /* told the answer */
  void *ud;          /* done's first argument */
};

/* ingest answered (inside its callback chain): the status and the JSON
 * body's fields to the caller. */
static void on_done(http_request *req) {
  api_sns_envelope *e = req->conn;
  const char *sep = req->response.data ? strstr(req->response.data, "\r\n\r\n") : NULL;
  cJSON *j = sep ? cJSON_Parse(sep + 4) : NULL;
  const cJSON *st = cJSON_GetObjectItemCaseSensitive(j, "status");
  const cJSON *err = cJSON_GetObjectItemCaseSensitive(j, "error");
  const cJSON *code = cJSON_GetObjectItemCaseSensitive(err, "code");
  const cJSON *msg = cJSON_GetObjectItemCaseSensitive(err, "message");
  struct api_sns_answer a = {
      .status = req->status,
      .outcome = cJSON_IsString(st) ? st->valuestring : "",
      .code = cJSON_IsString(code) ? code->valuestring : NULL,
      .message = cJSON_IsString(msg) ? msg->valuestring : NULL,
  };
  e->done(e->ud, &a);
  cJSON_Delete(j);
}

/* The request of a POST /sns from remote; NULL when out of memory. */
static http_request *new_request(const char *remote, const char *auth) {
  http_request *req = calloc(1, sizeof *req);
  if (!req) return NULL;
  snprintf(req->method, sizeof req->method, "POST");
  req->url = util_strdup("/sns");
  req->path = util_strdup("/sns");
  buf_init(&req->body, HTTP_MAX_BODY);
  buf_init(&req->response, 1 << 20);
  req->keep_alive = 1;
  req->http_minor = 1;
  snprintf(req->remote, sizeof req->remote, "%s", remote);
  req->started_ms = util_now_ms();
  req->on_done = on_done;
  int bad = !req->url || !req->path;
  if (auth) {
    req->headers[0].name = util_strdup("Authorization");
    req->headers[0].value = util_strdup(auth);
    req->n_headers = 1;
    bad = bad || !req->headers[0].name || !req->headers[0].value;
  }
  if (bad) {
    http_request_free(req);
    return NULL;
  }
  return req;
}

int api_sns_submit(ingest *in, const char *body, size_t len, const char *remote, const char *auth,
                   api_sns_done done, void *ud, api_sns_envelope **out) {
  api_sns_envelope *e = calloc(1, sizeof *e);
  if (!e || !(e->req = new_request(remote, auth))) {
    free(e);
    return SL_ENOMEM;
  }
  int rc = buf_append(&e->req->body, body, len);
  if (rc) {
    api_sns_free(e);
    return rc;
  }
  e->done = done;
  e->ud = ud;
  e->req->conn = e;
  *out = e;
  ingest_handle(in, e->req);
  return 0;
}

void api_sns_free(api_sns_envelope *e) {
  if (!e) return;
  http_request_free(e->req);
  free(e);
}
