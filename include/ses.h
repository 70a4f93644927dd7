/* ses.h - SES JSON (identity notifications with "notificationType" and
 * event publishing with "eventType") normalized into event records shaped
 * like the DynamoDB table SesEventMessages.
 *
 * Pure functions: no I/O, no globals. */
#ifndef SESLOG_SES_H
#define SESLOG_SES_H

#include <stddef.h>
#include <stdint.h>

#include "event_fields.h"

/* One SES event, ready to store. Every string is owned (NUL-terminated);
 * NULL when the SES JSON has no such value. The members of the table's
 * rows (event_fields.h) come first, in its order:
 *   message_id          mail.messageId (required)
 *   time_stamp          ISO-8601 UTC with ms: the SNS Timestamp when given
 *                       to ses_parse, else the event's own timestamp
 *                       (bounce.timestamp, ...), else mail.timestamp
 *   notification_type   notificationType or eventType, verbatim
 *   reporting_mta       bounce.reportingMTA / delivery.reportingMTA
 *   destination_address mail.destination joined with ","
 *   bounced_recipients  bounce.bouncedRecipients as compact JSON
 *   complaint_feedback_type, feedback_id (bounce's or complaint's),
 *   bounce_type, bounce_sub_type, complaint_sub_type, source (mail.source)
 *   recipients, n_recipients  the affected addresses: bounced, complained,
 *                       delivered, delayed recipients; for Send, Reject,
 *                       Open, Click, Rendering Failure, Subscription the
 *                       mail's destination; at most SES_RECIPIENTS_MAX
 *   sns_message_id, topic_arn  the envelope's, filled by the caller
 *   diagnostic          first bouncedRecipients[].diagnosticCode, or
 *                       reject.reason, or deliveryDelay's, or the
 *                       failure's errorMessage, or NULL */
typedef struct ses_event {
  SES_EVENT_FIELDS(EF_MEMBER_)
  int64_t ts_ms;          /* time_stamp parsed */
  size_t recipients_over; /* entries past SES_RECIPIENTS_MAX, not taken
                             (raw keeps them all) */
  char *raw;              /* the SES JSON, compact (cJSON unformatted) */
  size_t raw_len;
} ses_event;

/* SES sends one mail to at most 50 recipients; a signed document listing
 * more is taken up to this many (one row each in three tables) and the
 * rest counted, so one 1 MiB message cannot make ~30,000 rows. */
#define SES_RECIPIENTS_MAX 1000

/* Normalizes one SES JSON document. sns_timestamp (may be NULL) is the
 * envelope's Timestamp, used as time_stamp when given. Returns 0 and a new
 * *out (free with ses_event_free); SL_ENOTSES when the JSON is valid but has
 * neither notificationType nor eventType (or is not an object); SL_EJSON
 * when it is not JSON; SL_EFIELD when it is SES-shaped but lacks what every
 * event needs (mail.messageId, a usable time) or a type-specific object
 * (bounce, complaint, ...); SL_ETYPE for an unknown type; SL_EDUPKEY or
 * SL_ENUL when an object has a key twice or a string holds U+0000
 * (jsoncheck.h). *why, when not NULL, gets a static sentence for a person. */
int ses_parse(const char *json, size_t len, const char *sns_timestamp, ses_event **out,
              const char **why);

/* Same, from an already parsed cJSON object (import uses this). */
struct cJSON;
int ses_parse_json(const struct cJSON *root, const char *sns_timestamp, ses_event **out,
                   const char **why);

/* ses_parse_json for a root parsed from the len bytes at text that
 * jsoncheck_compact found to be exactly root's compact print (NULL: not
 * known to be): raw is then a copy of text instead of a new print, the
 * same bytes for less work. */
int ses_parse_json_text(const struct cJSON *root, const char *text, size_t len,
                        const char *sns_timestamp, ses_event **out, const char **why);

void ses_event_free(ses_event *e);

/* The SES event inside an EventBridge event, as SES event destinations send
 * it through EventBridge ({"source":"aws.ses","detail-type":"...",
 * "detail":{SES event}}): the "detail" object, or NULL when doc is not of
 * that shape. The detail is an ordinary SES event for ses_parse_json. */
const struct cJSON *ses_eventbridge_detail(const struct cJSON *doc);

/* 1 when the type counts for the monitors and the suppression rules. */
int ses_is_bounce(const ses_event *e);
int ses_is_complaint(const ses_event *e);

/* Turns an item of the DynamoDB table SesEventMessages back into an event:
 * the item as the original Lambda wrote it (Bounce: messageId, timeStamp,
 * reportingMTA, destinationAddress, bouncedRecipients as JSON text,
 * notificationType; Complaint: messageId, timeStamp, complaintFeedbackType,
 * feedbackId, destinationAddress, notificationType), in DynamoDB JSON
 * ({"messageId":{"S":"..."}}) or as a plain object ({"messageId":"..."}).
 * The {"Item":{...}} wrapper of an export is the caller's to remove.
 * Optional attributes seslog's own replication may add are read too:
 * bounceType, bounceSubType, complaintSubType, feedbackId, source,
 * recipients (list, string set, or comma-separated), snsMessageId,
 * topicArn. Complaint recipients are destinationAddress split on ","
 * unless "recipients" is given. raw is a synthesized SES-like JSON that
 * ses_parse reads back to the same columns. Returns 0 and a new *out;
 * SL_EFIELD when messageId, timeStamp or notificationType is missing or
 * unusable, or bouncedRecipients is not a JSON array; SL_EDUPKEY or
 * SL_ENUL when bouncedRecipients' JSON text has a key twice or U+0000;
 * SL_EJSON when item is not an object; SL_ETYPE for an unknown type;
 * SL_ENOMEM. *why as for ses_parse. */
int ses_from_dynamodb_item(const struct cJSON *item, ses_event **out, const char **why);

/* The API JSON of an event (CONTRACT section 5): messageId, timeStamp,
 * notificationType, reportingMTA, destinationAddress, bouncedRecipients (an
 * array here), complaintFeedbackType, feedbackId, bounceType,
 * bounceSubType, complaintSubType, source, recipients (array), snsMessageId,
 * topicArn, diagnostic, and, when with_raw, "raw" (the original document as
 * an object); absent values are JSON null. The text is compact and
 * HTML-safe: '<', '>', '&', U+2028 and U+2029 are written as \uXXXX
 * escapes, so it can be embedded in a page as is. Returns a malloc'ed
 * string the caller frees, or NULL when out of memory. */
char *ses_event_to_json(const ses_event *e, int with_raw);

#endif
