/* fuzz_ses.c - libFuzzer target for the SES normalizer (ses.h).
 *
 * The input is an SES JSON document (the Message of an SNS notification)
 * or a DynamoDB item. What is checked:
 *  - ses_parse never crashes and returns a documented code; a parsed event
 *    has its messageId, type and time.
 *  - ses_event_to_json (with and without raw) is JSON that cJSON parses
 *    whole, it is HTML-safe ('<', '>', '&', U+2028, U+2029 escaped), and
 *    its messageId and notificationType are the event's.
 *  - The event's raw JSON parses back to the same columns.
 *  - ses_from_dynamodb_item on the parsed input (and on its "Item", as in
 *    an export): same checks, and, as ses.h promises, its synthesized raw
 *    reads back with ses_parse to the same columns. */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "error.h"
#include "ses.h"

#define CHECK(cond)                                                                        \
  do {                                                                                     \
    if (!(cond)) {                                                                         \
      fprintf(stderr, "fuzz_ses: check failed at %s:%d: %s\n", __FILE__, __LINE__, #cond); \
      abort();                                                                             \
    }                                                                                      \
  } while (0)

static int streq(const char *a, const char *b) {
  if (!a || !b) return a == b;
  return strcmp(a, b) == 0;
}

#define SAME(f)                                                                 \
  do {                                                                          \
    if (!streq(a->f, b->f)) {                                                   \
      fprintf(stderr, "fuzz_ses: %s: %s differs: \"%s\" vs \"%s\"\n", what, #f, \
              a->f ? a->f : "(null)", b->f ? b->f : "(null)");                  \
      abort();                                                                  \
    }                                                                           \
  } while (0)

/* The columns of two events are equal (raw and the envelope fields aside). */
static void same_columns(const char *what, const ses_event *a, const ses_event *b) {
  SAME(message_id);
  SAME(time_stamp);
  SAME(notification_type);
  SAME(reporting_mta);
  SAME(destination_address);
  SAME(bounced_recipients);
  SAME(complaint_feedback_type);
  SAME(feedback_id);
  SAME(bounce_type);
  SAME(bounce_sub_type);
  SAME(complaint_sub_type);
  SAME(source);
  SAME(diagnostic);
  CHECK(a->ts_ms == b->ts_ms);
  if (a->n_recipients != b->n_recipients) {
    fprintf(stderr, "fuzz_ses: %s: %zu recipients vs %zu\n", what, a->n_recipients,
            b->n_recipients);
    abort();
  }
  for (size_t i = 0; i < a->n_recipients; i++) SAME(recipients[i]);
}

static const char *json_str(const cJSON *o, const char *key) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* The API JSON of e is whole JSON, HTML-safe, and carries e's keys. */
static void check_api_json(const ses_event *e, int with_raw) {
  char *text = ses_event_to_json(e, with_raw);
  CHECK(text != NULL);
  for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
    CHECK(*p != '<' && *p != '>' && *p != '&');
    CHECK(!(p[0] == 0xE2 && p[1] == 0x80 && (p[2] == 0xA8 || p[2] == 0xA9)));
  }
  const char *end = NULL;
  cJSON *o = cJSON_ParseWithOpts(text, &end, 1);
  if (!o) {
    fprintf(stderr, "fuzz_ses: ses_event_to_json gave text cJSON does not parse:\n%s\n", text);
    abort();
  }
  CHECK(cJSON_IsObject(o));
  CHECK(streq(json_str(o, "messageId"), e->message_id));
  CHECK(streq(json_str(o, "notificationType"), e->notification_type));
  CHECK(streq(json_str(o, "timeStamp"), e->time_stamp));
  const cJSON *r = cJSON_GetObjectItemCaseSensitive(o, "recipients");
  CHECK(cJSON_IsArray(r) && (size_t)cJSON_GetArraySize(r) == e->n_recipients);
  if (with_raw) CHECK(cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(o, "raw")));
  cJSON_Delete(o);
  free(text);
}

static void check_event(const char *what, const ses_event *e, const char *sns_ts) {
  CHECK(e->message_id && e->message_id[0]);
  CHECK(e->notification_type && e->time_stamp && strlen(e->time_stamp) == 24);
  CHECK(e->raw && e->raw_len == strlen(e->raw));
  for (size_t i = 0; i < e->n_recipients; i++) CHECK(e->recipients[i] && e->recipients[i][0]);
  check_api_json(e, 0);
  check_api_json(e, 1);
  /* raw reads back to the same columns. */
  ses_event *again = NULL;
  const char *why = NULL;
  int rc = ses_parse(e->raw, e->raw_len, sns_ts, &again, &why);
  if (rc != 0) {
    fprintf(stderr, "fuzz_ses: %s: raw does not parse back: %d %s\n%s\n", what, rc, why ? why : "",
            e->raw);
    abort();
  }
  same_columns(what, e, again);
  ses_event_free(again);
}

static void from_item(const cJSON *item) {
  ses_event *e = NULL;
  const char *why = NULL;
  int rc = ses_from_dynamodb_item(item, &e, &why);
  if (rc != 0) {
    CHECK(rc == SL_EFIELD || rc == SL_EJSON || rc == SL_ETYPE || rc == SL_EDUPKEY || rc == SL_ENUL);
    CHECK(e == NULL && why != NULL);
    return;
  }
  /* The item's timeStamp stands for the SNS Timestamp: e->time_stamp is it,
   * normalized. */
  check_event("DynamoDB item", e, e->time_stamp);
  ses_event_free(e);
}

/* raw is cJSON's compact print of the document, whether ses_parse printed
 * it or copied the text that already was that print (jsoncheck_compact). */
static void check_raw_is_print(const ses_event *e, const uint8_t *data, size_t size) {
  cJSON *doc = cJSON_ParseWithLength((const char *)data, size);
  char *printed = doc ? cJSON_PrintUnformatted(doc) : NULL;
  if (!printed || strcmp(printed, e->raw) != 0) {
    fprintf(stderr, "fuzz_ses: raw differs from the compact print:\n%s\n%s\n", e->raw,
            printed ? printed : "(none)");
    abort();
  }
  cJSON_free(printed);
  cJSON_Delete(doc);
}

/* cJSON on the per-thread arenas, as in the binary. */
int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  arena_install_cjson();
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  ses_event *e = NULL;
  const char *why = NULL;
  int rc = ses_parse((const char *)data, size, NULL, &e, &why);
  if (rc == 0) {
    check_event("ses_parse", e, NULL);
    check_raw_is_print(e, data, size);
    ses_event_free(e);
    /* The same document under an SNS Timestamp, as the server parses it. */
    rc = ses_parse((const char *)data, size, "2024-05-01T12:00:00.000Z", &e, &why);
    if (rc == 0) {
      CHECK(strcmp(e->time_stamp, "2024-05-01T12:00:00.000Z") == 0);
      check_event("ses_parse with SNS Timestamp", e, "2024-05-01T12:00:00.000Z");
      ses_event_free(e);
    }
  } else {
    CHECK(rc == SL_EJSON || rc == SL_ENOTSES || rc == SL_EFIELD || rc == SL_ETYPE ||
          rc == SL_EDUPKEY || rc == SL_ENUL);
    CHECK(e == NULL && why != NULL);
  }

  cJSON *root = cJSON_ParseWithLength((const char *)data, size);
  if (!root) return 0;
  from_item(root);
  const cJSON *item = cJSON_GetObjectItemCaseSensitive(root, "Item");
  if (item) from_item(item);
  cJSON_Delete(root);
  return 0;
}
