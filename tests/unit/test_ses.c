/* test_ses.c - ses: the 15 SES documentation examples, times, errors, the
 * DynamoDB item round trip and the API JSON. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dynamodb.h"
#include "error.h"
#include "ses.h"
#include "unit.h"
#include "util.h"

/* a == b where either may be NULL */
#define ASSERT_STR_OR_NULL(a, b) \
  do {                           \
    const char *e_ = (b);        \
    if (e_)                      \
      ASSERT_STR_EQ((a), e_);    \
    else                         \
      ASSERT_NULL((a));          \
  } while (0)

#define EX_MID "EXAMPLE7c191be45-e9aedb9a-02f9-4d12-a87d-dd0099a07f8a-000000"
#define RCPT "recipient@example.com"
#define JANE "jane@example.com"
#define RICHARD "richard@example.com"
#define THREE "jane@example.com,mary@example.com,richard@example.com"

/* What each documentation example must normalize to (no SNS timestamp). */
struct fx {
  const char *file;
  const char *type;
  const char *message_id;
  const char *time_stamp;
  const char *destination;
  const char *rcpt[4]; /* the affected recipients, NULL-terminated */
  const char *bounce_type, *bounce_sub_type;
  const char *feedback_type, *feedback_id;
  const char *mta;
  const char *bounced; /* bouncedRecipients, compact */
  const char *diagnostic;
  const char *source;
};

static const struct fx fixtures[] = {
    {"ses-event-bounce-awsdocs.json",
     "Bounce",
     EX_MID,
     "2017-08-05T00:41:02.669Z",
     RCPT,
     {RCPT},
     "Permanent",
     "General",
     NULL,
     "01000157c44f053b-61b59c11-9236-11e6-8f96-7be8aexample-000000",
     "dsn; mta.example.com",
     "[{\"emailAddress\":\"recipient@example.com\",\"action\":\"failed\","
     "\"status\":\"5.1.1\",\"diagnosticCode\":\"smtp; 550 5.1.1 user "
     "unknown\"}]",
     "smtp; 550 5.1.1 user unknown",
     "Sender Name <sender@example.com>"},
    {"ses-event-click-awsdocs.json",
     "Click",
     EX_MID,
     "2017-08-09T23:51:25.570Z",
     RCPT,
     {RCPT},
     NULL,
     NULL,
     NULL,
     NULL,
     NULL,
     NULL,
     NULL,
     "sender@example.com"},
    {"ses-event-complaint-awsdocs.json",
     "Complaint",
     EX_MID,
     "2017-08-05T00:41:02.669Z",
     RCPT,
     {RCPT},
     NULL,
     NULL,
     "abuse",
     "01000157c44f053b-61b59c11-9236-11e6-8f96-7be8aexample-000000",
     NULL,
     NULL,
     NULL,
     "Sender Name <sender@example.com>"},
    {"ses-event-delivery-awsdocs.json",
     "Delivery",
     EX_MID,
     "2016-10-19T23:21:04.133Z",
     RCPT,
     {RCPT},
     NULL,
     NULL,
     NULL,
     NULL,
     "mta.example.com",
     NULL,
     NULL,
     "sender@example.com"},
    {"ses-event-deliverydelay-awsdocs.json",
     "DeliveryDelay",
     EX_MID,
     "2020-06-16T00:25:40.095Z",
     RCPT,
     {RCPT},
     NULL,
     NULL,
     NULL,
     NULL,
     NULL,
     NULL,
     "smtp; 421 4.4.1 Unable to connect to remote host",
     "sender@example.com"},
    {"ses-event-open-awsdocs.json",
     "Open",
     EX_MID,
     "2017-08-09T22:00:19.652Z",
     RCPT,
     {RCPT},
     NULL,
     NULL,
     NULL,
     NULL,
     NULL,
     NULL,
     NULL,
     "sender@example.com"},
    /* no reject.timestamp: mail.timestamp */
    {"ses-event-reject-awsdocs.json",
     "Reject",
     EX_MID,
     "2016-10-14T17:38:15.211Z",
     "sender@example.com",
     {"sender@example.com"},
     NULL,
     NULL,
     NULL,
     NULL,
     NULL,
     NULL,
     "Bad content",
     "sender@example.com"},
    {"ses-event-rendering-failure-awsdocs.json",
     "Rendering Failure",
     EX_MID,
     "2018-01-22T18:43:06.197Z",
     RCPT,
     {RCPT},
     NULL,
     NULL,
     NULL,
     NULL,
     NULL,
     NULL,
     "Attribute 'attributeName' is not present in the rendering data.",
     "sender@example.com"},
    {"ses-event-send-awsdocs.json",
     "Send",
     EX_MID,
     "2016-10-14T05:02:16.645Z",
     RCPT,
     {RCPT},
     NULL,
     NULL,
     NULL,
     NULL,
     NULL,
     NULL,
     NULL,
     "sender@example.com"},
    {"ses-event-subscription-awsdocs.json",
     "Subscription",
     "EXAMPLEe4bccb684-777bc8de-afa7-4970-92b0-f515137b1497-000000",
     "2022-01-12T01:00:17.910Z",
     RCPT,
     {RCPT},
     NULL,
     NULL,
     NULL,
     NULL,
     NULL,
     NULL,
     NULL,
     "sender@example.com"},
    /* two of three recipients bounced: only those two are affected */
    {"ses-notification-bounce-no-dsn-multi-recipient-awsdocs.json",
     "Bounce",
     "00000137860315fd-34208509-5b74-41f3-95c5-22c1edc3c924-000000",
     "2016-01-27T14:59:38.237Z",
     THREE,
     {JANE, RICHARD},
     "Permanent",
     "General",
     NULL,
     "00000137860315fd-869464a4-8680-4114-98d3-716fe35851f9-000000",
     NULL,
     "[{\"emailAddress\":\"jane@example.com\"},"
     "{\"emailAddress\":\"richard@example.com\"}]",
     NULL,
     "john@example.com"},
    {"ses-notification-bounce-with-dsn-awsdocs.json",
     "Bounce",
     "00000138111222aa-33322211-cccc-cccc-cccc-ddddaaaa0680-000000",
     "2016-01-27T14:59:38.237Z",
     THREE,
     {JANE},
     "Permanent",
     "General",
     NULL,
     "00000138111222aa-33322211-cccc-cccc-cccc-ddddaaaa068a-000000",
     "dns; email.example.com",
     "[{\"emailAddress\":\"jane@example.com\",\"status\":\"5.1.1\","
     "\"action\":\"failed\",\"diagnosticCode\":\"smtp; 550 5.1.1 "
     "<jane@example.com>... User\"}]",
     "smtp; 550 5.1.1 <jane@example.com>... User",
     "john@example.com"},
    /* one of three complained, and without a feedback type */
    {"ses-notification-complaint-no-feedback-type-awsdocs.json",
     "Complaint",
     "0000013786031775-163e3910-53eb-4c8e-a04a-f29debf88a84-000000",
     "2016-01-27T14:59:38.237Z",
     THREE,
     {RICHARD},
     NULL,
     NULL,
     NULL,
     "0000013786031775-fea503bc-7497-49e1-881b-a0379bb037d3-000000",
     NULL,
     NULL,
     NULL,
     "john@example.com"},
    {"ses-notification-complaint-with-feedback-awsdocs.json",
     "Complaint",
     "000001378603177f-7a5433e7-8edb-42ae-af10-f0181f34d6ee-000000",
     "2016-01-27T14:59:38.237Z",
     THREE,
     {RICHARD},
     NULL,
     NULL,
     "abuse",
     "000001378603177f-18c07c78-fa81-4a58-9dd1-fedc3cb8f49a-000000",
     NULL,
     NULL,
     NULL,
     "john@example.com"},
    {"ses-notification-delivery-awsdocs.json",
     "Delivery",
     "0000014644fe5ef6-9a483358-9170-4cb4-a269-f5dcdf415321-000000",
     "2016-01-27T14:59:38.237Z",
     JANE,
     {JANE},
     NULL,
     NULL,
     NULL,
     NULL,
     "a8-70.smtp-out.amazonses.com",
     NULL,
     NULL,
     "john@example.com"},
};
#define N_FIXTURES (sizeof fixtures / sizeof fixtures[0])

/* Parses tests/fixtures/ses/<file>; NULL (after printing why) on error. */
static ses_event *parse_fixture(const char *file, const char *sns_ts) {
  char rel[256];
  size_t len;
  snprintf(rel, sizeof rel, "ses/%s", file);
  char *text = unit_read_fixture(rel, &len);
  ses_event *e = NULL;
  const char *why = NULL;
  int rc = ses_parse(text, len, sns_ts, &e, &why);
  free(text);
  if (rc) {
    fprintf(stderr, "    %s: %s (%s)\n", file, sl_strerror(rc), why ? why : "");
    return NULL;
  }
  return e;
}

/* The event's recipients equal the NULL-terminated list want. */
static int check_rcpts(const ses_event *e, const char *const *want) {
  size_t n = 0;
  while (want[n]) n++;
  ASSERT_INT_EQ(e->n_recipients, n);
  for (size_t i = 0; i < n; i++) ASSERT_STR_EQ(e->recipients[i], want[i]);
  return 0;
}

/* Every column of e matches x. */
static int check_event(const ses_event *e, const struct fx *x) {
  ASSERT_STR_EQ(e->notification_type, x->type);
  ASSERT_STR_EQ(e->message_id, x->message_id);
  ASSERT_STR_EQ(e->time_stamp, x->time_stamp);
  ASSERT_STR_OR_NULL(e->destination_address, x->destination);
  if (check_rcpts(e, x->rcpt)) return 1;
  ASSERT_STR_OR_NULL(e->bounce_type, x->bounce_type);
  ASSERT_STR_OR_NULL(e->bounce_sub_type, x->bounce_sub_type);
  ASSERT_STR_OR_NULL(e->complaint_feedback_type, x->feedback_type);
  ASSERT_STR_OR_NULL(e->feedback_id, x->feedback_id);
  ASSERT_STR_OR_NULL(e->reporting_mta, x->mta);
  ASSERT_STR_OR_NULL(e->bounced_recipients, x->bounced);
  ASSERT_STR_OR_NULL(e->diagnostic, x->diagnostic);
  ASSERT_STR_OR_NULL(e->source, x->source);
  ASSERT_NULL(e->complaint_sub_type);
  ASSERT_NULL(e->sns_message_id);
  ASSERT_NULL(e->topic_arn);
  ASSERT_INT_EQ(ses_is_bounce(e), strcmp(x->type, "Bounce") == 0);
  ASSERT_INT_EQ(ses_is_complaint(e), strcmp(x->type, "Complaint") == 0);
  return 0;
}

static int t_fixtures(void) {
  for (size_t i = 0; i < N_FIXTURES; i++) {
    ses_event *e = parse_fixture(fixtures[i].file, NULL);
    ASSERT_TRUE(e != NULL);
    int rc = check_event(e, &fixtures[i]);
    ses_event_free(e);
    if (rc) UNIT_FAIL_("fixture %s", fixtures[i].file);
  }
  return 0;
}

/* raw is the whole document, compact, keys in their order; it parses back
 * to the same columns. */
static int t_raw(void) {
  for (size_t i = 0; i < N_FIXTURES; i++) {
    char rel[256];
    snprintf(rel, sizeof rel, "ses/%s", fixtures[i].file);
    char *text = unit_read_fixture(rel, NULL);
    cJSON *doc = cJSON_Parse(text);
    free(text);
    ASSERT_TRUE(doc != NULL);
    char *compact = cJSON_PrintUnformatted(doc);
    cJSON_Delete(doc);
    ses_event *e = parse_fixture(fixtures[i].file, NULL);
    ASSERT_TRUE(e != NULL && compact != NULL);
    int bad = strcmp(e->raw, compact) != 0 || e->raw_len != strlen(compact);
    free(compact);
    ses_event *again = NULL;
    bad = bad || ses_parse(e->raw, e->raw_len, NULL, &again, NULL) != 0 ||
          check_event(again, &fixtures[i]);
    ses_event_free(again);
    ses_event_free(e);
    if (bad) UNIT_FAIL_("raw of %s", fixtures[i].file);
  }
  return 0;
}

/* The SNS Timestamp wins over the event's own, normalized to ms UTC. */
static int t_sns_timestamp(void) {
  const char *f = "ses-notification-bounce-with-dsn-awsdocs.json";
  ses_event *e = parse_fixture(f, NULL);
  ASSERT_TRUE(e != NULL);
  ASSERT_STR_EQ(e->time_stamp, "2016-01-27T14:59:38.237Z");
  ASSERT_INT_EQ(e->ts_ms, 1453906778237LL);
  ses_event_free(e);

  e = parse_fixture(f, "2016-01-27T14:59:39.500Z");
  ASSERT_TRUE(e != NULL);
  ASSERT_STR_EQ(e->time_stamp, "2016-01-27T14:59:39.500Z");
  ASSERT_INT_EQ(e->ts_ms, 1453906779500LL);
  ses_event_free(e);

  /* no fraction, an offset, extra digits: all normalized */
  e = parse_fixture(f, "2016-01-27T16:59:39+02:00");
  ASSERT_TRUE(e != NULL);
  ASSERT_STR_EQ(e->time_stamp, "2016-01-27T14:59:39.000Z");
  ASSERT_INT_EQ(e->ts_ms, 1453906779000LL);
  ses_event_free(e);
  e = parse_fixture(f, "2016-01-27T14:59:39.5004Z");
  ASSERT_TRUE(e != NULL);
  ASSERT_STR_EQ(e->time_stamp, "2016-01-27T14:59:39.500Z");
  ses_event_free(e);
  return 0;
}

/* Runs ses_parse on a C string; checks the code, that *out is untouched on
 * failure and that a reason is given. */
static int expect_parse_error(const char *json, const char *sns_ts, int want) {
  ses_event *sentinel = (ses_event *)&sentinel, *e = sentinel;
  const char *why = NULL;
  int rc = ses_parse(json, strlen(json), sns_ts, &e, &why);
  if (rc == 0) ses_event_free(e);
  ASSERT_INT_EQ(rc, want);
  ASSERT_TRUE(e == sentinel);
  ASSERT_TRUE(why != NULL && *why);
  return 0;
}

#define MAIL "\"mail\":{\"messageId\":\"m1\",\"timestamp\":\"2020-01-01T00:00:00Z\"}"

static int t_errors(void) {
  const char *ok_bounce = "{\"notificationType\":\"Bounce\"," MAIL ",\"bounce\":{}}";
  struct {
    const char *json, *sns_ts;
    int want;
  } cases[] = {
      {"", NULL, SL_EJSON},
      {"{", NULL, SL_EJSON},
      {"not json", NULL, SL_EJSON},
      {"{} trailing", NULL, SL_EJSON},
      {"[1,2]", NULL, SL_ENOTSES},
      {"\"Bounce\"", NULL, SL_ENOTSES},
      {"{}", NULL, SL_ENOTSES},
      {"{\"Type\":\"Notification\",\"Message\":\"hi\"}", NULL, SL_ENOTSES},
      {"{\"notificationType\":\"AmazonSnsSubscriptionSucceeded\","
       "\"message\":\"You have successfully subscribed\"}",
       NULL, SL_ENOTSES},
      {"{\"eventType\":\"Bogus\"," MAIL "}", NULL, SL_ETYPE},
      {"{\"eventType\":\"bounce\"," MAIL ",\"bounce\":{}}", NULL, SL_ETYPE},
      {"{\"eventType\":7," MAIL "}", NULL, SL_EFIELD},
      {"{\"eventType\":\"Send\"}", NULL, SL_EFIELD},
      {"{\"eventType\":\"Send\",\"mail\":{\"timestamp\":"
       "\"2020-01-01T00:00:00Z\"}}",
       NULL, SL_EFIELD},
      {"{\"eventType\":\"Send\",\"mail\":{\"messageId\":\"\",\"timestamp\":"
       "\"2020-01-01T00:00:00Z\"}}",
       NULL, SL_EFIELD},
      {"{\"eventType\":\"Send\",\"mail\":{\"messageId\":5}}", NULL, SL_EFIELD},
      {"{\"notificationType\":\"Bounce\"," MAIL "}", NULL, SL_EFIELD},
      {"{\"notificationType\":\"Complaint\"," MAIL "}", NULL, SL_EFIELD},
      {"{\"notificationType\":\"Bounce\"," MAIL ",\"bounce\":[]}", NULL, SL_EFIELD},
      {"{\"notificationType\":\"Bounce\"," MAIL ",\"bounce\":{\"bouncedRecipients\":{}}}", NULL,
       SL_EFIELD},
      {ok_bounce, "yesterday", SL_EFIELD},
      {ok_bounce, "2020-13-01T00:00:00Z", SL_EFIELD},
      {ok_bounce, "", SL_EFIELD},
      {"{\"notificationType\":\"Bounce\"," MAIL ",\"bounce\":{\"timestamp\":\"2020-01-01\"}}", NULL,
       SL_EFIELD},
      {"{\"eventType\":\"Send\",\"mail\":{\"messageId\":\"m1\","
       "\"timestamp\":\"Jan 1 2020\"}}",
       NULL, SL_EFIELD},
      {"{\"eventType\":\"Send\",\"mail\":{\"messageId\":\"m1\"}}", NULL, SL_EFIELD},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    if (expect_parse_error(cases[i].json, cases[i].sns_ts, cases[i].want))
      UNIT_FAIL_("case %zu: %s", i, cases[i].json);

  /* the good twin of the cases above parses */
  ses_event *e = NULL;
  ASSERT_INT_EQ(ses_parse(ok_bounce, strlen(ok_bounce), NULL, &e, NULL), 0);
  ASSERT_STR_EQ(e->time_stamp, "2020-01-01T00:00:00.000Z");
  ASSERT_INT_EQ(e->n_recipients, 0);
  ASSERT_NULL(e->bounced_recipients);
  ses_event_free(e);
  ASSERT_INT_EQ(ses_parse(NULL, 0, NULL, &e, NULL), SL_EINVAL);

  /* ses_parse_json: not an object */
  cJSON *arr = cJSON_CreateArray();
  ASSERT_INT_EQ(ses_parse_json(arr, NULL, &e, NULL), SL_ENOTSES);
  cJSON_Delete(arr);
  return 0;
}

/* Send without its (empty) send object is tolerated; trailing blanks after
 * the document are fine. */
static int t_send_without_object(void) {
  const char *j = "{\"eventType\":\"Send\"," MAIL "} \n";
  ses_event *e = NULL;
  ASSERT_INT_EQ(ses_parse(j, strlen(j), NULL, &e, NULL), 0);
  ASSERT_STR_EQ(e->notification_type, "Send");
  ASSERT_NULL(e->destination_address);
  ASSERT_INT_EQ(e->n_recipients, 0);
  ses_event_free(e);
  return 0;
}

/* Display names are dropped from recipients, not from destinationAddress;
 * case is kept; duplicates listed once. */
static int t_recipients_shape(void) {
  const char *j =
      "{\"eventType\":\"Send\",\"mail\":{\"messageId\":\"m1\",\"timestamp\":"
      "\"2020-01-01T00:00:00Z\",\"destination\":[\"Jane Doe "
      "<Jane@Example.COM>\",\" bob@example.com \",\"\\\"Doe, R\\\" "
      "<r@example.com>\",\"bob@example.com\",\"<>\",7]}}";
  ses_event *e = NULL;
  ASSERT_INT_EQ(ses_parse(j, strlen(j), NULL, &e, NULL), 0);
  static const char *const want[] = {"Jane@Example.COM", "bob@example.com", "r@example.com", NULL};
  if (check_rcpts(e, want)) return 1;
  ASSERT_STR_EQ(e->destination_address,
                "Jane Doe <Jane@Example.COM>, bob@example.com ,\"Doe, R\" "
                "<r@example.com>,bob@example.com,<>");
  ses_event_free(e);

  /* complaint with subtype, JSON null feedback type */
  const char *c = "{\"notificationType\":\"Complaint\"," MAIL
                  ",\"complaint\":{\"complainedRecipients\":[{\"emailAddress\":"
                  "\"A <a@example.com>\"},{\"no\":1}],\"complaintSubType\":"
                  "\"OnAccountSuppressionList\",\"complaintFeedbackType\":null}}";
  ASSERT_INT_EQ(ses_parse(c, strlen(c), NULL, &e, NULL), 0);
  static const char *const want_c[] = {"a@example.com", NULL};
  if (check_rcpts(e, want_c)) return 1;
  ASSERT_STR_EQ(e->complaint_sub_type, "OnAccountSuppressionList");
  ASSERT_NULL(e->complaint_feedback_type);
  ses_event_free(e);
  return 0;
}

/* ---- DynamoDB items ---- */

/* Adds name:s to item as {"S":s} (typed) or a plain string; nothing when s
 * is NULL ("absent values left out"). */
static void item_add(cJSON *item, int typed, const char *name, const char *s) {
  if (!s) return;
  if (typed) {
    cJSON *av = cJSON_AddObjectToObject(item, name);
    cJSON_AddStringToObject(av, "S", s);
  } else {
    cJSON_AddStringToObject(item, name, s);
  }
}

/* The item the original Lambda wrote for e (CONTRACT section 8). */
static cJSON *lambda_item(const ses_event *e, int typed) {
  cJSON *item = cJSON_CreateObject();
  item_add(item, typed, "messageId", e->message_id);
  item_add(item, typed, "timeStamp", e->time_stamp);
  if (ses_is_bounce(e)) {
    item_add(item, typed, "reportingMTA", e->reporting_mta);
    item_add(item, typed, "destinationAddress", e->destination_address);
    item_add(item, typed, "bouncedRecipients", e->bounced_recipients);
  } else {
    item_add(item, typed, "complaintFeedbackType", e->complaint_feedback_type);
    item_add(item, typed, "feedbackId", e->feedback_id);
    item_add(item, typed, "destinationAddress", e->destination_address);
  }
  item_add(item, typed, "notificationType", e->notification_type);
  return item;
}

/* An event read back from an item has the item's columns, and its raw
 * parses back to the same columns. */
static int check_item_event(const ses_event *orig, const ses_event *e) {
  ASSERT_STR_EQ(e->message_id, orig->message_id);
  ASSERT_STR_EQ(e->time_stamp, orig->time_stamp);
  ASSERT_INT_EQ(e->ts_ms, orig->ts_ms);
  ASSERT_STR_EQ(e->notification_type, orig->notification_type);
  ASSERT_STR_OR_NULL(e->destination_address, orig->destination_address);
  if (ses_is_bounce(orig)) {
    ASSERT_STR_OR_NULL(e->reporting_mta, orig->reporting_mta);
    ASSERT_STR_OR_NULL(e->bounced_recipients, orig->bounced_recipients);
    ASSERT_STR_OR_NULL(e->diagnostic, orig->diagnostic);
    ASSERT_NULL(e->feedback_id); /* not in the Lambda's Bounce item */
    ASSERT_NULL(e->bounce_type); /* nor is the bounce type */
    ASSERT_INT_EQ(e->n_recipients, orig->n_recipients);
    for (size_t i = 0; i < e->n_recipients; i++)
      ASSERT_STR_EQ(e->recipients[i], orig->recipients[i]);
  } else {
    ASSERT_STR_OR_NULL(e->complaint_feedback_type, orig->complaint_feedback_type);
    ASSERT_STR_EQ(e->feedback_id, orig->feedback_id);
    ASSERT_NULL(e->reporting_mta);
  }
  ses_event *again = NULL;
  ASSERT_INT_EQ(ses_parse(e->raw, e->raw_len, NULL, &again, NULL), 0);
  int bad = strcmp(again->time_stamp, e->time_stamp) || strcmp(again->message_id, e->message_id) ||
            strcmp(again->notification_type, e->notification_type) ||
            again->n_recipients != e->n_recipients ||
            (e->bounced_recipients && strcmp(again->bounced_recipients, e->bounced_recipients)) ||
            (e->feedback_id && strcmp(again->feedback_id, e->feedback_id)) ||
            (e->complaint_feedback_type &&
             strcmp(again->complaint_feedback_type, e->complaint_feedback_type));
  ses_event_free(again);
  ASSERT_TRUE(!bad);
  return 0;
}

/* fixture -> event -> Lambda item (typed and plain) -> event -> API JSON */
static int t_dynamodb_round_trip(void) {
  static const char *const files[] = {
      "ses-notification-bounce-with-dsn-awsdocs.json",
      "ses-notification-bounce-no-dsn-multi-recipient-awsdocs.json",
      "ses-event-bounce-awsdocs.json",
      "ses-notification-complaint-with-feedback-awsdocs.json",
      "ses-notification-complaint-no-feedback-type-awsdocs.json",
  };
  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
    for (int typed = 0; typed <= 1; typed++) {
      ses_event *orig = parse_fixture(files[i], "2016-01-27T14:59:39.001Z");
      ASSERT_TRUE(orig != NULL);
      cJSON *item = lambda_item(orig, typed);
      ses_event *e = NULL;
      const char *why = NULL;
      int rc = ses_from_dynamodb_item(item, &e, &why);
      cJSON_Delete(item);
      if (rc) fprintf(stderr, "    why: %s\n", why ? why : "");
      int bad = rc != 0 || check_item_event(orig, e);
      char *json = bad ? NULL : ses_event_to_json(e, 1);
      cJSON *api = json ? cJSON_Parse(json) : NULL;
      bad = bad || !api || !cJSON_IsString(cJSON_GetObjectItem(api, "messageId")) ||
            strcmp(cJSON_GetObjectItem(api, "messageId")->valuestring, orig->message_id) != 0 ||
            !cJSON_IsArray(cJSON_GetObjectItem(api, "recipients")) ||
            !cJSON_IsObject(cJSON_GetObjectItem(api, "raw")) ||
            (ses_is_bounce(orig) && !cJSON_IsArray(cJSON_GetObjectItem(api, "bouncedRecipients")));
      cJSON_Delete(api);
      free(json);
      ses_event_free(e);
      ses_event_free(orig);
      if (bad) UNIT_FAIL_("%s (%s)", files[i], typed ? "typed" : "plain");
    }
  }
  return 0;
}

/* The Lambda's Complaint item has no complainedRecipients: the destination
 * stands in (a known loss of the original table); seslog's own "recipients"
 * attribute (a string set) restores the precise list. Optional attributes
 * come back too. */
static int t_dynamodb_item_details(void) {
  const char *typed =
      "{\"messageId\":{\"S\":\"m-1\"},\"timeStamp\":{\"S\":"
      "\"2016-01-27T14:59:38.237Z\"},\"complaintFeedbackType\":{\"S\":"
      "\"abuse\"},\"feedbackId\":{\"S\":\"f-1\"},\"destinationAddress\":{\"S\":"
      "\"jane@example.com,mary@example.com,richard@example.com\"},"
      "\"notificationType\":{\"S\":\"Complaint\"}}";
  cJSON *item = cJSON_Parse(typed);
  ses_event *e = NULL;
  ASSERT_INT_EQ(ses_from_dynamodb_item(item, &e, NULL), 0);
  static const char *const three[] = {JANE, "mary@example.com", RICHARD, NULL};
  if (check_rcpts(e, three)) return 1;
  ASSERT_STR_EQ(e->complaint_feedback_type, "abuse");
  ASSERT_STR_EQ(e->feedback_id, "f-1");
  ASSERT_NULL(e->bounced_recipients);
  ses_event_free(e);

  cJSON *rs = cJSON_AddObjectToObject(item, "recipients");
  cJSON *ss = cJSON_AddArrayToObject(rs, "SS");
  cJSON_AddItemToArray(ss, cJSON_CreateString(RICHARD));
  item_add(item, 1, "snsMessageId", "sns-1");
  item_add(item, 1, "topicArn", "arn:aws:sns:us-east-1:123456789012:ses");
  item_add(item, 1, "source", "john@example.com");
  item_add(item, 1, "complaintSubType", "OnAccountSuppressionList");
  ASSERT_INT_EQ(ses_from_dynamodb_item(item, &e, NULL), 0);
  cJSON_Delete(item);
  static const char *const one[] = {RICHARD, NULL};
  if (check_rcpts(e, one)) return 1;
  ASSERT_STR_EQ(e->sns_message_id, "sns-1");
  ASSERT_STR_EQ(e->topic_arn, "arn:aws:sns:us-east-1:123456789012:ses");
  ASSERT_STR_EQ(e->source, "john@example.com");
  ASSERT_STR_EQ(e->complaint_sub_type, "OnAccountSuppressionList");
  ses_event_free(e);

  /* plain Bounce with bouncedRecipients as an array, and a bounceType */
  const char *plain =
      "{\"messageId\":\"m-2\",\"timeStamp\":\"2016-01-27T14:59:38Z\","
      "\"notificationType\":\"Bounce\",\"bounceType\":\"Transient\","
      "\"bounceSubType\":\"MailboxFull\",\"feedbackId\":\"f-2\","
      "\"destinationAddress\":\"a@example.com,b@example.com\","
      "\"bouncedRecipients\":[{\"emailAddress\":\"b@example.com\"}]}";
  item = cJSON_Parse(plain);
  ASSERT_INT_EQ(ses_from_dynamodb_item(item, &e, NULL), 0);
  cJSON_Delete(item);
  static const char *const b[] = {"b@example.com", NULL};
  if (check_rcpts(e, b)) return 1;
  ASSERT_STR_EQ(e->time_stamp, "2016-01-27T14:59:38.000Z");
  ASSERT_STR_EQ(e->bounce_type, "Transient");
  ASSERT_STR_EQ(e->bounce_sub_type, "MailboxFull");
  ASSERT_STR_EQ(e->feedback_id, "f-2");
  ASSERT_STR_EQ(e->bounced_recipients, "[{\"emailAddress\":\"b@example.com\"}]");
  ASSERT_STR_EQ(e->destination_address, "a@example.com,b@example.com");
  ses_event_free(e);

  /* a Bounce without bouncedRecipients lists nobody: never the destination */
  const char *bare =
      "{\"messageId\":\"m-3\",\"timeStamp\":\"2016-01-27T14:59:38Z\","
      "\"notificationType\":\"Bounce\",\"destinationAddress\":"
      "\"a@example.com\"}";
  item = cJSON_Parse(bare);
  ASSERT_INT_EQ(ses_from_dynamodb_item(item, &e, NULL), 0);
  cJSON_Delete(item);
  ASSERT_INT_EQ(e->n_recipients, 0);
  ses_event_free(e);
  return 0;
}

/* Runs ses_from_dynamodb_item on JSON text; checks the code and that the
 * reason names what (when not NULL). */
static int expect_item_error(const char *json, int want, const char *what) {
  cJSON *item = cJSON_Parse(json);
  ASSERT_TRUE(item != NULL);
  ses_event *sentinel = (ses_event *)&sentinel, *e = sentinel;
  const char *why = NULL;
  int rc = ses_from_dynamodb_item(item, &e, &why);
  cJSON_Delete(item);
  if (rc == 0) ses_event_free(e);
  ASSERT_INT_EQ(rc, want);
  ASSERT_TRUE(e == sentinel);
  ASSERT_TRUE(why != NULL);
  if (what) ASSERT_TRUE(strstr(why, what) != NULL);
  return 0;
}

static int t_dynamodb_errors(void) {
  struct {
    const char *json;
    int want;
    const char *what;
  } cases[] = {
      {"[]", SL_EJSON, NULL},
      {"{\"timeStamp\":{\"S\":\"2016-01-27T14:59:38Z\"},"
       "\"notificationType\":{\"S\":\"Bounce\"}}",
       SL_EFIELD, "messageId"},
      {"{\"messageId\":{\"S\":\"m\"},\"notificationType\":{\"S\":\"Bounce\"}}", SL_EFIELD,
       "timeStamp"},
      {"{\"messageId\":\"m\",\"timeStamp\":\"2016-01-27T14:59:38Z\"}", SL_EFIELD,
       "notificationType"},
      {"{\"messageId\":{\"N\":\"1\"},\"timeStamp\":\"2016-01-27T14:59:38Z\","
       "\"notificationType\":\"Bounce\"}",
       SL_EFIELD, "messageId"},
      {"{\"messageId\":\"m\",\"timeStamp\":\"tomorrow\","
       "\"notificationType\":\"Bounce\"}",
       SL_EFIELD, "timeStamp"},
      {"{\"messageId\":\"m\",\"timeStamp\":\"2016-01-27T14:59:38Z\","
       "\"notificationType\":\"Bounce\",\"bouncedRecipients\":\"not json\"}",
       SL_EFIELD, "bouncedRecipients"},
      {"{\"messageId\":\"m\",\"timeStamp\":\"2016-01-27T14:59:38Z\","
       "\"notificationType\":\"Bounce\",\"bouncedRecipients\":{\"S\":"
       "\"{}\"}}",
       SL_EFIELD, "bouncedRecipients"},
      {"{\"messageId\":\"m\",\"timeStamp\":\"2016-01-27T14:59:38Z\","
       "\"notificationType\":\"Nope\"}",
       SL_ETYPE, NULL},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    if (expect_item_error(cases[i].json, cases[i].want, cases[i].what))
      UNIT_FAIL_("case %zu: %s", i, cases[i].json);
  return 0;
}

/* ---- API JSON ---- */

/* Absent values are null; bouncedRecipients and recipients are arrays; raw
 * only when asked for. */
static int t_to_json(void) {
  ses_event *e = parse_fixture("ses-notification-bounce-no-dsn-multi-recipient-awsdocs.json", NULL);
  ASSERT_TRUE(e != NULL);
  char *json = ses_event_to_json(e, 0);
  ASSERT_TRUE(json != NULL);
  cJSON *o = cJSON_Parse(json);
  free(json);
  ASSERT_TRUE(o != NULL);
  static const char *const keys[] = {"messageId",
                                     "timeStamp",
                                     "notificationType",
                                     "reportingMTA",
                                     "destinationAddress",
                                     "bouncedRecipients",
                                     "complaintFeedbackType",
                                     "feedbackId",
                                     "bounceType",
                                     "bounceSubType",
                                     "source",
                                     "recipients",
                                     "snsMessageId",
                                     "topicArn",
                                     "diagnostic"};
  int bad = 0;
  for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
    if (!cJSON_GetObjectItemCaseSensitive(o, keys[i])) {
      fprintf(stderr, "    missing %s\n", keys[i]);
      bad = 1;
    }
  const cJSON *br = cJSON_GetObjectItemCaseSensitive(o, "bouncedRecipients");
  const cJSON *rc = cJSON_GetObjectItemCaseSensitive(o, "recipients");
  bad = bad || !cJSON_IsArray(br) || cJSON_GetArraySize(br) != 2 || !cJSON_IsArray(rc) ||
        cJSON_GetArraySize(rc) != 2 ||
        strcmp(cJSON_GetArrayItem(rc, 1)->valuestring, RICHARD) != 0 ||
        !cJSON_IsNull(cJSON_GetObjectItem(o, "reportingMTA")) ||
        !cJSON_IsNull(cJSON_GetObjectItem(o, "complaintFeedbackType")) ||
        !cJSON_IsNull(cJSON_GetObjectItem(o, "snsMessageId")) ||
        strcmp(cJSON_GetObjectItem(o, "bounceType")->valuestring, "Permanent") != 0 ||
        strcmp(cJSON_GetObjectItem(o, "timeStamp")->valuestring, "2016-01-27T14:59:38.237Z") != 0 ||
        cJSON_GetObjectItem(o, "raw") != NULL;
  cJSON_Delete(o);
  ASSERT_TRUE(!bad);

  /* a Send: no bouncedRecipients, and with raw */
  ses_event_free(e);
  e = parse_fixture("ses-event-send-awsdocs.json", NULL);
  ASSERT_TRUE(e != NULL);
  json = ses_event_to_json(e, 1);
  ASSERT_TRUE(json != NULL);
  o = cJSON_Parse(json);
  free(json);
  ASSERT_TRUE(o != NULL);
  const cJSON *raw = cJSON_GetObjectItem(o, "raw");
  bad = !cJSON_IsNull(cJSON_GetObjectItem(o, "bouncedRecipients")) || !cJSON_IsObject(raw) ||
        strcmp(cJSON_GetObjectItem(raw, "eventType")->valuestring, "Send") != 0;
  cJSON_Delete(o);
  ses_event_free(e);
  ASSERT_TRUE(!bad);
  ASSERT_NULL(ses_event_to_json(NULL, 0));
  return 0;
}

/* A hostile diagnostic code: the API JSON is valid, carries the same
 * string back, and has no raw '<', '>', '&', control bytes or U+2028. */
static int t_json_escaping(void) {
  static const char diag[] =
      "smtp; 550 \"quoted\" <script>alert('x')</script> & \\ \x01\x1f\n\t"
      "\xe2\x80\xa8 end";
  cJSON *doc = cJSON_CreateObject();
  cJSON_AddStringToObject(doc, "notificationType", "Bounce");
  cJSON *mail = cJSON_AddObjectToObject(doc, "mail");
  cJSON_AddStringToObject(mail, "messageId", "m<1>");
  cJSON_AddStringToObject(mail, "timestamp", "2020-01-01T00:00:00Z");
  cJSON *bounce = cJSON_AddObjectToObject(doc, "bounce");
  cJSON *br = cJSON_AddArrayToObject(bounce, "bouncedRecipients");
  cJSON *r = cJSON_CreateObject();
  cJSON_AddStringToObject(r, "emailAddress", "x@example.com");
  cJSON_AddStringToObject(r, "diagnosticCode", diag);
  cJSON_AddItemToArray(br, r);
  ses_event *e = NULL;
  int rc = ses_parse_json(doc, NULL, &e, NULL);
  cJSON_Delete(doc);
  ASSERT_INT_EQ(rc, 0);
  ASSERT_STR_EQ(e->diagnostic, diag);
  char *json = ses_event_to_json(e, 1);
  ASSERT_TRUE(json != NULL);
  int bad = 0;
  for (const unsigned char *p = (const unsigned char *)json; *p; p++)
    if (*p < 0x20 || *p == '<' || *p == '>' || *p == '&' ||
        (p[0] == 0xe2 && p[1] == 0x80 && p[2] == 0xa8))
      bad = 1;
  bad = bad || !strstr(json, "\\u003cscript\\u003e") || !strstr(json, "\\\"quoted\\\"");
  cJSON *o = cJSON_Parse(json);
  free(json);
  ASSERT_TRUE(!bad && o != NULL);
  const cJSON *d = cJSON_GetObjectItem(o, "diagnostic");
  const cJSON *m = cJSON_GetObjectItem(o, "messageId");
  const cJSON *raw_br = cJSON_GetObjectItem(
      cJSON_GetObjectItem(cJSON_GetObjectItem(o, "raw"), "bounce"), "bouncedRecipients");
  const cJSON *raw_d = cJSON_GetObjectItem(cJSON_GetArrayItem(raw_br, 0), "diagnosticCode");
  bad = !cJSON_IsString(d) || strcmp(d->valuestring, diag) != 0 || !cJSON_IsString(m) ||
        strcmp(m->valuestring, "m<1>") != 0 || !cJSON_IsString(raw_d) ||
        strcmp(raw_d->valuestring, diag) != 0;
  cJSON_Delete(o);
  ses_event_free(e);
  ASSERT_TRUE(!bad);
  return 0;
}

/* Every row of the field table that names where the SES JSON holds its
 * field is read from there: a row added to event_fields.h is parsed, and
 * written in the API's JSON, with no other code. */
static const char *first_object(const char *from, char *out, size_t n) {
  size_t len = strcspn(from, " ");
  snprintf(out, n, "%.*s", (int)len, from);
  return out;
}

static int t_field_table(void) {
  static const struct {
    const char *object, *type;
  } types[] = {{"bounce", "Bounce"}, {"complaint", "Complaint"}, {"delivery", "Delivery"}};
  for (int i = 0; i < SF_N; i++) {
    const struct ses_field *f = &ses_fields[i];
    if (!f->from || !f->key || strcmp(f->from, "envelope") == 0) continue;
    char obj[32];
    first_object(f->from, obj, sizeof obj);
    const char *type = "Bounce";
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++)
      if (strcmp(types[t].object, obj) == 0) type = types[t].type;
    char value[96];
    snprintf(value, sizeof value, "v-%s", f->key);
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "notificationType", type);
    cJSON *mail = cJSON_AddObjectToObject(doc, "mail");
    cJSON_AddStringToObject(mail, "timestamp", "2016-01-27T14:59:38.237Z");
    if (strcmp(obj, "mail") != 0 || strcmp(f->key, "messageId") != 0)
      cJSON_AddStringToObject(mail, "messageId", "m-1");
    cJSON *tobj = cJSON_AddObjectToObject(doc, strcmp(obj, "mail") == 0 ? "bounce" : obj);
    cJSON_AddStringToObject(strcmp(obj, "mail") == 0 ? mail : tobj, f->key, value);
    ses_event *e = NULL;
    int rc = ses_parse_json(doc, NULL, &e, NULL);
    cJSON_Delete(doc);
    ASSERT_INT_EQ(rc, 0);
    const char *got;
    char *scratch;
    ASSERT_INT_EQ(ses_field_text(e, i, &got, &scratch), 0);
    ASSERT_STR_EQ(got, value);
    free(scratch);
    char *json = ses_event_to_json(e, 0);
    cJSON *api = cJSON_Parse(json);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(api, f->json);
    int ok = cJSON_IsString(v) && strcmp(v->valuestring, value) == 0;
    cJSON_Delete(api);
    free(json);
    ses_event_free(e);
    if (!ok) UNIT_FAIL_("%s is not in the API's JSON as read", f->json);
  }
  return 0;
}

/* dynamodb_item writes a string without escapes in one piece and any other
 * through buf_json_string: every value comes out as buf_json_string writes
 * it ('<', '>', '&', U+2028/U+2029, quotes, backslashes and control
 * characters escaped; other UTF-8, U+2019 with its 0xE2 lead byte among
 * it, as it is), one special byte at a time. */
static int t_dynamodb_item_escapes(void) {
  static const char *const special[] = {"",
                                        "<",
                                        ">",
                                        "&",
                                        "\"",
                                        "\\",
                                        "\t",
                                        "\n",
                                        "\x01",
                                        "\x1f",
                                        "\xe2\x80\xa8",
                                        "\xe2\x80\xa9",
                                        "\xe2\x80\x99",
                                        "caf\xc3\xa9",
                                        "\r",
                                        "<<&>>",
                                        "x <y@example.com> & z",
                                        "\xe2",
                                        "\xe2\x80",
                                        "\xe2\xe2\x80\xa8",
                                        "\xe2\x80\xa8\xe2\x80\xa9",
                                        "<\"",
                                        "\xe2\x80\xa8\\"};
  size_t n_special = sizeof special / sizeof *special;
  for (size_t i = 0; i < n_special + 0x1f; i++) {
    char value[32], control[2] = {(char)(i - n_special + 1), 0}; /* then each of 0x01-0x1f */
    snprintf(value, sizeof value, "a%sb", i < n_special ? special[i] : control);
    ses_event e = {0};
    e.notification_type = (char *)"Bounce";
    e.message_id = value;
    e.time_stamp = (char *)"2016-01-27T14:59:38.237Z";
    e.reporting_mta = value;
    buf want;
    buf_init(&want, 4096);
    buf_appends(&want, "{\"messageId\":{\"S\":");
    buf_json_string(&want, value);
    buf_appends(&want,
                "},\"timeStamp\":{\"S\":\"2016-01-27T14:59:38.237Z\"},"
                "\"notificationType\":{\"S\":\"Bounce\"},\"reportingMTA\":{\"S\":");
    buf_json_string(&want, value);
    buf_appends(&want, "}}");
    char *item = dynamodb_item(&e, ~0u, 0);
    int same = item && want.data && strcmp(item, want.data) == 0;
    if (!same) fprintf(stderr, "    got  %s\n    want %s\n", item ? item : "(null)", want.data);
    free(item);
    buf_free(&want);
    if (!same) UNIT_FAIL_("the item of a value with special byte %zu", i);
  }
  return 0;
}

const struct unit_test ses_tests[] = {
    {"fixtures", t_fixtures},
    {"field_table", t_field_table},
    {"raw", t_raw},
    {"sns_timestamp", t_sns_timestamp},
    {"errors", t_errors},
    {"send_without_object", t_send_without_object},
    {"recipients_shape", t_recipients_shape},
    {"dynamodb_round_trip", t_dynamodb_round_trip},
    {"dynamodb_item_details", t_dynamodb_item_details},
    {"dynamodb_errors", t_dynamodb_errors},
    {"dynamodb_item_escapes", t_dynamodb_item_escapes},
    {"to_json", t_to_json},
    {"json_escaping", t_json_escaping},
    {0},
};
