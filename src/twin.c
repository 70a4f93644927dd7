/* twin.c - an event stored in one shape found again in the other (see
 * twin.h). */
#include "twin.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "event_fields.h"
#include "rawz.h"
#include "util.h"

struct twin_finder {
  sqlite3 *db;
  sqlite3_stmt *find;
};

/* The object of each notificationType in the SES JSON, and whether an
 * address receives it at most once per mail. */
static const struct {
  const char *type, *path; /* path: JSON path of the object's timestamp */
  int once;
} kinds[] = {
    {"Bounce", "$.bounce.timestamp", 1},
    {"Complaint", "$.complaint.timestamp", 1},
    {"Delivery", "$.delivery.timestamp", 1},
    {"Send", "$.send.timestamp", 1},
    {"Reject", "$.reject.timestamp", 1},
    {"Open", "$.open.timestamp", 0},
    {"Click", "$.click.timestamp", 0},
    {"DeliveryDelay", "$.deliveryDelay.timestamp", 0},
    {"Rendering Failure", "$.failure.timestamp", 0},
    {"Subscription", "$.subscription.timestamp", 0},
};

int twin_open(sqlite3 *db, twin_finder **out, char *err, size_t errlen) {
  twin_finder *t = calloc(1, sizeof *t);
  if (!t) {
    snprintf(err, errlen, "no memory for the twin finder");
    return SL_ENOMEM;
  }
  t->db = db;
  /* ?1 messageId, ?2 notificationType, ?3 the new event's SES JSON, ?4
   * the JSON path of its type's timestamp, ?5 timeStamp, ?6 snsMessageId
   * (?9 its 16 bytes, when it is a canonical UUID: schema version 22),
   * ?7 1 for a type an address receives once per mail, ?8 its recipients
   * (a JSON array). The rows of one messageId are few: the index's. */
  if (sqlite3_prepare_v3(
          db,
          "SELECT 1 FROM SesEventMessages INDEXED BY \"messageId-timeStamp-Index\" "
          "WHERE messageId = ?1 AND notificationType = ?2 "
          "AND coalesce(json_extract(?3, '$.mail.timestamp') = json_extract(?3, ?4) AND "
          "json_type(?3, '$.mail.sendingAccountId') IS NULL AND json_type(?3, '$.mail.sourceArn') "
          "IS NULL, 0) != coalesce((SELECT CASE WHEN json_valid(j) THEN json_extract(j, "
          "'$.mail.timestamp') = json_extract(j, ?4) AND json_type(j, '$.mail.sendingAccountId') "
          "IS NULL AND json_type(j, '$.mail.sourceArn') IS NULL END FROM (SELECT " RAWZ_SQL_ROW
          " AS j)), 0) "
          "AND (timeStamp = ?5 OR snsMessageId IN (?6, ?9) OR (?7 AND abs(julianday(timeStamp) - "
          "julianday(?5)) <= 1.0 / 24 AND EXISTS (SELECT 1 FROM json_each(?8) r WHERE "
          "instr(lower(" EF_SQL_READ_RECIPIENTS("") "), lower(json_quote(r.value))) > 0))) LIMIT 1",
          -1, SQLITE_PREPARE_PERSISTENT, &t->find, NULL) != SQLITE_OK) {
    snprintf(err, errlen, "cannot prepare the twin finder: %s", sqlite3_errmsg(db));
    free(t);
    return SL_EDB;
  }
  *out = t;
  return 0;
}

/* e's recipients as a JSON array, or NULL when out of memory. */
static char *recipients_array(const ses_event *e) {
  buf b;
  buf_init(&b, 1 << 20);
  int rc = buf_append(&b, "[", 1);
  for (size_t i = 0; i < e->n_recipients && !rc; i++) {
    if (i) rc = buf_append(&b, ",", 1);
    if (!rc) rc = buf_json_string(&b, e->recipients[i]);
  }
  if (!rc) rc = buf_append(&b, "]", 1);
  if (rc) {
    buf_free(&b);
    return NULL;
  }
  return buf_take(&b);
}

int twin_find(twin_finder *t, const ses_event *e, int *found) {
  *found = 0;
  size_t k = 0;
  while (k < sizeof kinds / sizeof kinds[0] && strcmp(kinds[k].type, e->notification_type) != 0)
    k++;
  if (k == sizeof kinds / sizeof kinds[0] || !e->message_id || !e->time_stamp) return 0;
  char *rcpt = recipients_array(e);
  if (!rcpt) return SL_ENOMEM;
  sqlite3_stmt *st = t->find;
  sqlite3_bind_text(st, 1, e->message_id, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, e->notification_type, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 3, e->raw, (int)e->raw_len, SQLITE_STATIC);
  sqlite3_bind_text(st, 4, kinds[k].path, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 5, e->time_stamp, -1, SQLITE_STATIC);
  unsigned char uuid[16]; /* the form rows written from schema version 22 store */
  if (e->sns_message_id)
    sqlite3_bind_text(st, 6, e->sns_message_id, -1, SQLITE_STATIC);
  else
    sqlite3_bind_null(st, 6);
  if (e->sns_message_id && ses_field_uuid_pack(e->sns_message_id, uuid))
    sqlite3_bind_blob(st, 9, uuid, sizeof uuid, SQLITE_STATIC);
  else
    sqlite3_bind_null(st, 9);
  sqlite3_bind_int(st, 7, kinds[k].once);
  sqlite3_bind_text(st, 8, rcpt, -1, SQLITE_STATIC);
  int rc = sqlite3_step(st);
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
  free(rcpt);
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) return SL_EDB;
  *found = rc == SQLITE_ROW;
  return 0;
}

void twin_close(twin_finder *t) {
  if (!t) return;
  sqlite3_finalize(t->find);
  free(t);
}
