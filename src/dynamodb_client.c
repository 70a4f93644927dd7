/* dynamodb_client.c - the DynamoDB client: the instance, SigV4-signed
 * requests through outbound (libcurl multi, loop thread), DynamoDB's error
 * answers, and the backoff of retries. See dynamodb_client.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "dynamodb_client.h"
#include "error.h"

char *dynamodb_dup_printf(const char *fmt, const char *a, const char *b) {
  size_t n = strlen(fmt) + strlen(a) + (b ? strlen(b) : 0) + 1;
  char *s = malloc(n);
  if (s) snprintf(s, n, fmt, a, b ? b : "");
  return s;
}

int dynamodb_new(uv_loop_t *loop, outbound *ob, const struct dynamodb_opts *o, dynamodb **out,
                 char *err, size_t errlen) {
  if (!o->table || !*o->table || strlen(o->table) > 255) {
    snprintf(err, errlen, "the table name must have 1 to 255 characters");
    return SL_EINVAL;
  }
  if (!o->region || (!o->creds && (!o->access_key_id || !o->secret_access_key))) {
    snprintf(err, errlen, "DynamoDB needs a region and credentials");
    return SL_EINVAL;
  }
  if (o->endpoint && strncmp(o->endpoint, "http://", 7) && strncmp(o->endpoint, "https://", 8)) {
    snprintf(err, errlen, "the DynamoDB endpoint must be an http:// or https:// URL");
    return SL_EINVAL;
  }
  if (o->endpoint) {
    /* It is logged: it must hold no secret. */
    const char *host = strstr(o->endpoint, "://") + 3;
    size_t n = strcspn(host, "/?#");
    if (memchr(host, '@', n)) {
      snprintf(err, errlen,
               "the DynamoDB endpoint must not hold user:password@ (credentials come from the "
               "AWS variables)");
      return SL_EINVAL;
    }
  }
  dynamodb *d = calloc(1, sizeof *d);
  if (!d) return SL_ENOMEM;
  d->loop = loop;
  d->ob = ob;
  d->types = o->types ? o->types : DYNAMODB_TYPES_DEFAULT;
  d->extra = o->extra_attributes;
  d->parallel = o->parallel > 0 ? (o->parallel < MAX_PARALLEL ? o->parallel : MAX_PARALLEL) : 8;
  buf b;
  buf_init(&b, 1024);
  buf_json_string(&b, o->table);
  d->table_json = buf_take(&b);
  d->table = strdup(o->table);
  if (o->endpoint)
    d->url = strdup(o->endpoint);
  else
    d->url = dynamodb_dup_printf(strncmp(o->region, "cn-", 3) == 0
                                     ? "https://dynamodb.%s.amazonaws.com.cn%s"
                                     : "https://dynamodb.%s.amazonaws.com%s",
                                 o->region, NULL);
  d->sigv4 = dynamodb_dup_printf("aws:amz:%s:dynamodb%s", o->region, NULL);
  d->creds = o->creds;
  if (!d->creds) d->userpwd = dynamodb_dup_printf("%s:%s", o->access_key_id, o->secret_access_key);
  if (!d->creds && o->session_token)
    d->token_header = dynamodb_dup_printf("x-amz-security-token: %s%s", o->session_token, NULL);
  if (!d->table_json || !d->table || !d->url || !d->sigv4 || (!d->creds && !d->userpwd) ||
      (!d->creds && o->session_token && !d->token_header)) {
    dynamodb_free(d);
    return SL_ENOMEM;
  }
  *out = d;
  return 0;
}

/* Overwrites a secret before freeing it. */
static void free_secret(char *s) {
  if (!s) return;
  volatile char *p = s;
  while (*p) *p++ = 0;
  free(s);
}

void dynamodb_free(dynamodb *d) {
  if (!d) return;
  free(d->table);
  free(d->table_json);
  free(d->url);
  free(d->sigv4);
  free_secret(d->userpwd);
  free_secret(d->token_header);
  free(d);
}

const char *dynamodb_endpoint(const dynamodb *d) {
  return d->url;
}

/* The credentials for the request about to start: the provider's, or the
 * static keys. Returns 0 or SL_EBUSY while the provider has none. */
static int credentials(dynamodb *d, const char **userpwd, const char **token_header) {
  if (d->creds) return awscreds_current(d->creds, userpwd, token_header);
  *userpwd = d->userpwd;
  *token_header = d->token_header;
  return 0;
}

int dynamodb_post(dynamodb *d, const char *target, const char *body, size_t body_len,
                  long timeout_ms, outbound_cb cb, void *ud) {
  const char *userpwd = NULL, *token = NULL;
  int rc = credentials(d, &userpwd, &token);
  if (rc) return rc;
  char target_header[96];
  snprintf(target_header, sizeof target_header, "X-Amz-Target: DynamoDB_20120810.%s", target);
  const char *headers[] = {"Content-Type: application/x-amz-json-1.0", target_header, token, NULL};
  struct outbound_req req = {.method = "POST",
                             .url = d->url,
                             .headers = headers,
                             .body = body,
                             .body_len = body_len,
                             .timeout_ms = timeout_ms,
                             .max_body = ANSWER_MAX,
                             .aws_sigv4 = d->sigv4,
                             .userpwd = userpwd};
  return outbound_request(d->ob, &req, cb, ud);
}

/* The part of a JSON error type after '#'. */
static const char *short_type(const char *t) {
  const char *h = t ? strrchr(t, '#') : NULL;
  return h ? h + 1 : t;
}

int dynamodb_is_throttling(const char *type) {
  return type && (strcmp(type, "ThrottlingException") == 0 ||
                  strcmp(type, "ProvisionedThroughputExceededException") == 0 ||
                  strcmp(type, "RequestLimitExceeded") == 0);
}

/* Reads DynamoDB's error answer {"__type":"...#Name","message":"..."}. */
void dynamodb_read_error(const outbound_result *res, char *type, size_t tn, char *msg, size_t mn) {
  type[0] = msg[0] = 0;
  cJSON *j = res->body_len ? cJSON_ParseWithLength(res->body, res->body_len) : NULL;
  const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "__type");
  const cJSON *m = cJSON_GetObjectItemCaseSensitive(j, "message");
  if (!cJSON_IsString(m)) m = cJSON_GetObjectItemCaseSensitive(j, "Message");
  if (cJSON_IsString(t)) snprintf(type, tn, "%s", short_type(t->valuestring));
  if (cJSON_IsString(m)) snprintf(msg, mn, "%s", m->valuestring);
  cJSON_Delete(j);
}

int64_t dynamodb_backoff_ms(int attempts) {
  int64_t ms = 100;
  for (int i = 0; i < attempts && ms < 10000; i++) ms *= 2;
  if (ms > 10000) ms = 10000;
  return ms / 2 + random() % (ms / 2 + 1); /* jitter */
}
