/* event_fields.h - the one table of an SES event's fields.
 *
 * Each row names a field once: its member in ses_event, its SQLite column
 * in SesEventMessages, its key in the API's JSON, its kind, its DynamoDB
 * attribute (and for which types the item carries it), and where ses_parse
 * reads it in the SES JSON. The table drives the event struct, the INSERT
 * of the store, the columns a query reads (enum query_col), the JSON of
 * the API (query_row_json and ses_event_to_json write the same text), and
 * the DynamoDB item in both directions. Adding a column is one row here
 * plus a schema migration (ALTER TABLE ... ADD COLUMN).
 *
 * The raw SES JSON is not a row: it is stored compressed (rawz) and always
 * comes last. */
#ifndef SESLOG_EVENT_FIELDS_H
#define SESLOG_EVENT_FIELDS_H

#include <stddef.h>

#include "util.h"

/* Which DynamoDB items carry the attribute (SesEventMessages as the
 * original Lambda wrote it, CONTRACT section 8). */
#define EF_DDB_BOUNCE 1u    /* a Bounce item */
#define EF_DDB_COMPLAINT 2u /* a Complaint item */
#define EF_DDB_OTHER 4u     /* an item of another type */
#define EF_DDB_EXTRA 8u     /* any item, when seslog's own attributes are on */
#define EF_DDB_ALL (EF_DDB_BOUNCE | EF_DDB_COMPLAINT | EF_DDB_OTHER)

/* Where ses_parse reads a field ("from"): "mail" (the mail object), a
 * space-separated list of type objects ("bounce delivery": the type's own
 * object, for those types only), "envelope" (the SNS envelope: the caller
 * fills it), or NULL (ses.c computes it). "key" is the key there.
 *
 * X(ID, member, kind, column, json, ddb attribute, ddb items, from, key)
 *   ID      suffix of the enum names (SF_ID, QC_ID)
 *   member  the ses_event member
 *   kind    TEXT (a string), JSON (a string holding JSON text, written as
 *           the value it holds), LIST (char **member with size_t
 *           n_member; stored as a JSON array of strings) */
#define SES_EVENT_FIELDS(X)                                                                      \
  X(MESSAGE_ID, message_id, TEXT, "messageId", "messageId", "messageId", EF_DDB_ALL, "mail",     \
    "messageId")                                                                                 \
  X(TIME_STAMP, time_stamp, TEXT, "timeStamp", "timeStamp", "timeStamp", EF_DDB_ALL, NULL, NULL) \
  X(TYPE, notification_type, TEXT, "notificationType", "notificationType", "notificationType",   \
    EF_DDB_ALL, NULL, NULL)                                                                      \
  X(REPORTING_MTA, reporting_mta, TEXT, "reportingMTA", "reportingMTA", "reportingMTA",          \
    EF_DDB_BOUNCE | EF_DDB_OTHER, "bounce delivery", "reportingMTA")                             \
  X(DESTINATION, destination_address, TEXT, "destinationAddress", "destinationAddress",          \
    "destinationAddress", EF_DDB_ALL, NULL, NULL)                                                \
  X(BOUNCED_RECIPIENTS, bounced_recipients, JSON, "bouncedRecipients", "bouncedRecipients",      \
    "bouncedRecipients", EF_DDB_BOUNCE | EF_DDB_OTHER, NULL, NULL)                               \
  X(FEEDBACK_TYPE, complaint_feedback_type, TEXT, "complaintFeedbackType",                       \
    "complaintFeedbackType", "complaintFeedbackType", EF_DDB_COMPLAINT | EF_DDB_OTHER,           \
    "complaint", "complaintFeedbackType")                                                        \
  X(FEEDBACK_ID, feedback_id, TEXT, "feedbackId", "feedbackId", "feedbackId",                    \
    EF_DDB_COMPLAINT | EF_DDB_OTHER | EF_DDB_EXTRA, "bounce complaint", "feedbackId")            \
  X(BOUNCE_TYPE, bounce_type, TEXT, "bounceType", "bounceType", "bounceType", EF_DDB_EXTRA,      \
    "bounce", "bounceType")                                                                      \
  X(BOUNCE_SUB_TYPE, bounce_sub_type, TEXT, "bounceSubType", "bounceSubType", "bounceSubType",   \
    EF_DDB_EXTRA, "bounce", "bounceSubType")                                                     \
  X(COMPLAINT_SUB_TYPE, complaint_sub_type, TEXT, "complaintSubType", "complaintSubType",        \
    "complaintSubType", EF_DDB_EXTRA, "complaint", "complaintSubType")                           \
  X(SOURCE, source, TEXT, "source", "source", "source", EF_DDB_EXTRA, "mail", "source")          \
  X(RECIPIENTS, recipients, LIST, "recipients", "recipients", "recipients", EF_DDB_EXTRA, NULL,  \
    NULL)                                                                                        \
  X(SNS_MESSAGE_ID, sns_message_id, TEXT, "snsMessageId", "snsMessageId", "snsMessageId",        \
    EF_DDB_EXTRA, "envelope", NULL)                                                              \
  X(TOPIC_ARN, topic_arn, TEXT, "topicArn", "topicArn", "topicArn", EF_DDB_EXTRA, "envelope",    \
    NULL)                                                                                        \
  X(DIAGNOSTIC, diagnostic, TEXT, "diagnostic", "diagnostic", NULL, 0, NULL, NULL)

/* The fields' indexes in the table: SF_MESSAGE_ID, ... */
#define EF_ENUM_(id, ...) SF_##id,
enum ses_field_id { SES_EVENT_FIELDS(EF_ENUM_) SF_N };

/* The ses_event members of one row (used inside struct ses_event). */
#define EF_MEMBER_TEXT(m) char *m;
#define EF_MEMBER_JSON(m) char *m;
#define EF_MEMBER_LIST(m) \
  char **m;               \
  size_t n_##m;
#define EF_MEMBER_(id, member, kind, ...) EF_MEMBER_##kind(member)

enum ef_kind { EF_TEXT, EF_JSON, EF_LIST };

/* One row, as data. */
struct ses_field {
  const char *member; /* the ses_event member's name */
  enum ef_kind kind;
  const char *column;  /* SesEventMessages column */
  const char *json;    /* key in the API's JSON */
  const char *ddb;     /* DynamoDB attribute, or NULL */
  unsigned ddb_items;  /* EF_DDB_* */
  const char *from;    /* see above */
  const char *key;     /* key in "from", or NULL */
  size_t offset;       /* of the member in ses_event */
  size_t count_offset; /* LIST: of n_member; else 0 */
};

extern const struct ses_field ses_fields[SF_N];

struct ses_event;

/* The text of field i of e: the string (TEXT, JSON), or for a LIST the
 * JSON array text of its entries, built into *scratch (the caller frees
 * it; NULL for other kinds). *out is NULL when absent. Returns 0 or
 * SL_ENOMEM. */
int ses_field_text(const struct ses_event *e, int i, const char **out, char **scratch);

/* The entries of the LIST field i of e, and their count. */
char *const *ses_field_list(const struct ses_event *e, int i, size_t *n);

/* 1 when the field i is read from the type object named obj ("bounce"),
 * as its row's "from" says. */
int ses_field_in_object(int i, const char *obj);

/* Columns stored empty when another column of the row holds them (schema
 * version 20): diagnostic is NULL when it is the first bouncedRecipients
 * entry's diagnosticCode, recipients is '' when it is the array that
 * bouncedRecipients' emailAddress values make (a Bounce, up to 3 of them)
 * or, for a row without bouncedRecipients, destinationAddress split at
 * ','. The INSERT stores the empty form only when the derivation, run by
 * SQLite on the values being inserted, gives the same bytes; readers run
 * the same derivation. Built-in SQL functions only (the sqlite3 shell has
 * them), never an error whatever the text, no table scanned (the query
 * plans stay the indexes' own).
 *
 * EF_SQL_DIAGNOSTIC_OF(b): the diagnostic of b (SQL of a
 * bouncedRecipients value, a string literal): the first entry's
 * diagnosticCode when it is a string, else NULL. */
#define EF_SQL_DIAGNOSTIC_OF(b)                             \
  "CASE WHEN json_valid(" b ") THEN CASE WHEN json_type(" b \
  ", '$[0].diagnosticCode') = "                             \
  "'text' THEN json_extract(" b ", '$[0].diagnosticCode') END END"

/* EF_SQL_RECIPIENTS_OF(b, d): the recipients of b and d (SQL of a
 * bouncedRecipients and a destinationAddress value): with no b, d split
 * at ',' as a JSON array; else the array of b's entries' emailAddress
 * values when there are at most 3; else NULL. */
#define EF_SQL_RCPT_(b, k) "json_extract(" b ", '$[" #k "].emailAddress')"
#define EF_SQL_RECIPIENTS_OF(b, d) \
  "CASE WHEN " b " IS NULL THEN '[\"' || replace(" d ", ',', '\",\"') || '\"]' WHEN json_valid(" b \
  ") THEN CASE json_array_length(" b ") WHEN 0 THEN '[]' WHEN 1 THEN json_array(" EF_SQL_RCPT_( \
      b, 0) ") WHEN 2 THEN json_array(" EF_SQL_RCPT_(b, 0) ", " EF_SQL_RCPT_(                   \
      b, 1) ") WHEN 3 THEN json_array(" EF_SQL_RCPT_(b, 0) ", " EF_SQL_RCPT_(b, 1) ", "         \
      EF_SQL_RCPT_(b, 2) ") END END"

/* The value of diagnostic and of recipients as readers read them from a
 * row, stored whole or empty; p prefixes the columns ("e.", "OLD.", ""). */
#define EF_SQL_READ_DIAGNOSTIC(p) \
  "coalesce(" p "diagnostic, " EF_SQL_DIAGNOSTIC_OF(p "bouncedRecipients") ")"
#define EF_SQL_READ_RECIPIENTS(p)           \
  "CASE WHEN " p "recipients <> '' THEN " p \
  "recipients ELSE " EF_SQL_RECIPIENTS_OF(p "bouncedRecipients", p "destinationAddress") " END"

/* Schema version 22: the envelope's values stored compactly. topicArn is
 * NULL and topicId names the ARN's row in topics; snsMessageId is a
 * 16-byte BLOB when the text was a canonical lower-case UUID. Rows
 * written before hold the text. The value as readers read it, from either
 * form (built-in SQL only, as the schema's comment gives it); p prefixes
 * the columns ("e.", ""). */
#define EF_SQL_READ_TOPIC_ARN(p) \
  "coalesce(" p "topicArn, (SELECT arn FROM topics WHERE id = " p "topicId))"
#define EF_SQL_UUID_PART_(p, from, n) "substr(hex(" p "snsMessageId), " #from ", " #n ")"
#define EF_SQL_READ_SNS_MESSAGE_ID(p) \
  "CASE WHEN typeof(" p "snsMessageId) = 'blob' THEN lower(" EF_SQL_UUID_PART_(p, 1, 8)     \
  " || '-' || " EF_SQL_UUID_PART_(p, 9, 4) " || '-' || " EF_SQL_UUID_PART_(                  \
      p, 13, 4) " || '-' || " EF_SQL_UUID_PART_(p, 17, 4) " || '-' || " EF_SQL_UUID_PART_(p, \
                                                                                     21, 12) \
  ") ELSE " p "snsMessageId END"

/* The SQL that reads field i's value from a row of alias "e" when it is
 * not the column itself: EF_SQL_READ_*("e.") for diagnostic, recipients,
 * topicArn and snsMessageId; NULL for every other field (read e.column).
 * before_v22: the database predates schema version 22 (no topicId, no
 * topics, every value text): topicArn and snsMessageId read as stored. */
const char *ses_field_sql_read(int i, int before_v22);

/* 1 when s is a canonical lower-case UUID (36 characters, 8-4-4-4-12
 * lower-case hex digits), with its 16 bytes in out; else 0 (out
 * untouched). EF_SQL_READ_SNS_MESSAGE_ID gives s back from out. */
int ses_field_uuid_pack(const char *s, unsigned char out[16]);

/* The SQL of the value the INSERT stores for field i, whose value is the
 * parameter ?(i + 1), as every field's: the parameter, or for diagnostic
 * and recipients the empty form when the row's other parameters give the
 * same value. */
const char *ses_field_sql_write(int i);

/* Appends the API's JSON of an event (CONTRACT section 5) from the
 * fields' texts in table order: vals[i] (NULL: JSON null), lens[i] its
 * bytes; then "raw" when raw is not NULL. TEXT is a string; JSON the
 * value its text holds when that is JSON, else a string; LIST an array
 * ([] when absent or not JSON). Compact and HTML-safe, as buf_json_string
 * and buf_json_text write. Returns 0 or the buffer's error. */
int ses_fields_json(buf *b, const char *const vals[SF_N], const size_t lens[SF_N], const char *raw,
                    size_t raw_len);

#endif
