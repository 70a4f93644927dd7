/* event_fields.c - the table of an SES event's fields, and the API's JSON
 * of an event written from it. See event_fields.h. */
#include "event_fields.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "jsoncheck.h"
#include "ses.h"

#define EF_COUNT_TEXT(m) 0
#define EF_COUNT_JSON(m) 0
#define EF_COUNT_LIST(m) offsetof(ses_event, n_##m)
#define EF_ROW_(id, m, kind, column, json, ddb, items, from, key) \
  {#m, EF_##kind, column, json, ddb, items, from, key, offsetof(ses_event, m), EF_COUNT_##kind(m)},

const struct ses_field ses_fields[SF_N] = {SES_EVENT_FIELDS(EF_ROW_)};

char *const *ses_field_list(const ses_event *e, int i, size_t *n) {
  const char *base = (const char *)e;
  *n = *(const size_t *)(base + ses_fields[i].count_offset);
  return *(char **const *)(base + ses_fields[i].offset);
}

/* The JSON array text of a list of strings. Returns NULL when out of
 * memory. */
static char *list_json(char *const *v, size_t n) {
  buf b;
  buf_init(&b, (size_t)1 << 30);
  buf_append(&b, "[", 1);
  for (size_t i = 0; i < n; i++) {
    if (i) buf_append(&b, ",", 1);
    buf_json_string(&b, v[i]);
  }
  if (buf_append(&b, "]", 1)) {
    buf_free(&b);
    return NULL;
  }
  return buf_take(&b);
}

int ses_field_text(const ses_event *e, int i, const char **out, char **scratch) {
  *scratch = NULL;
  if (ses_fields[i].kind != EF_LIST) {
    *out = *(char *const *)((const char *)e + ses_fields[i].offset);
    return 0;
  }
  size_t n;
  char *const *v = ses_field_list(e, i, &n);
  *scratch = list_json(v, n);
  *out = *scratch;
  return *scratch ? 0 : SL_ENOMEM;
}

int ses_field_in_object(int i, const char *obj) {
  const char *from = ses_fields[i].from;
  size_t n = strlen(obj);
  while (from && *from) {
    const char *sp = strchr(from, ' ');
    size_t len = sp ? (size_t)(sp - from) : strlen(from);
    if (len == n && memcmp(from, obj, n) == 0) return 1;
    from = sp ? sp + 1 : NULL;
  }
  return 0;
}

/* The INSERT binds field i to ?(i + 1) (src/store.c). */
_Static_assert(SF_DESTINATION == 4 && SF_BOUNCED_RECIPIENTS == 5 && SF_RECIPIENTS == 12 &&
                   SF_DIAGNOSTIC == 15,
               "ses_field_sql_write's parameters: ?5 destinationAddress, ?6 bouncedRecipients, "
               "?13 recipients, ?16 diagnostic");

const char *ses_field_sql_read(int i, int before_v22) {
  if (i == SF_DIAGNOSTIC) return EF_SQL_READ_DIAGNOSTIC("e.");
  if (i == SF_RECIPIENTS) return EF_SQL_READ_RECIPIENTS("e.");
  if (i == SF_TOPIC_ARN && !before_v22) return EF_SQL_READ_TOPIC_ARN("e.");
  if (i == SF_SNS_MESSAGE_ID && !before_v22) return EF_SQL_READ_SNS_MESSAGE_ID("e.");
  return NULL;
}

/* The value 0-15 of the lower-case hex digit c, or -1. */
static int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

int ses_field_uuid_pack(const char *s, unsigned char out[16]) {
  unsigned char v[16];
  int n = 0;
  for (int k = 0; k < 36; k++) {
    if (k == 8 || k == 13 || k == 18 || k == 23) {
      if (s[k] != '-') return 0;
      continue;
    }
    int hi = hex_digit(s[k]);
    int lo = hi < 0 ? -1 : hex_digit(s[k + 1]);
    if (lo < 0) return 0;
    v[n++] = (unsigned char)(hi << 4 | lo);
    k++;
  }
  if (s[36]) return 0;
  memcpy(out, v, sizeof v);
  return 1;
}

const char *ses_field_sql_write(int i) {
  static const char *const params[] = {"?1",  "?2",  "?3",  "?4",  "?5",  "?6",  "?7",  "?8",
                                       "?9",  "?10", "?11", "?12", "?13", "?14", "?15", "?16",
                                       "?17", "?18", "?19", "?20", "?21", "?22", "?23", "?24"};
  _Static_assert(SF_N <= sizeof params / sizeof params[0], "a parameter for every field");
  if (i == SF_DIAGNOSTIC)
    return "CASE WHEN ?16 = (" EF_SQL_DIAGNOSTIC_OF("?6") ") THEN NULL ELSE ?16 END";
  if (i == SF_RECIPIENTS) /* with no escape in it, the text is the same whatever SQLite writes */
    return "CASE WHEN instr(?13, '\\') = 0 AND ?13 = (" EF_SQL_RECIPIENTS_OF(
        "?6", "?5") ") THEN '' ELSE ?13 END";
  return params[i];
}

/* Appends stored JSON text as a value: itself when it is JSON, else as a
 * string; null for NULL. */
static int json_value(buf *b, const char *s, size_t n) {
  if (!s) return buf_append(b, "null", 4);
  if (!jsoncheck_syntax(s, n)) return buf_json_string(b, s);
  return buf_json_text(b, s, n);
}

int ses_fields_json(buf *b, const char *const vals[SF_N], const size_t lens[SF_N], const char *raw,
                    size_t raw_len) {
  buf_append(b, "{", 1);
  for (int i = 0; i < SF_N; i++) {
    const char *v = vals[i];
    buf_printf(b, "%s\"%s\":", i ? "," : "", ses_fields[i].json);
    if (ses_fields[i].kind == EF_TEXT)
      buf_json_string(b, v);
    else if (ses_fields[i].kind == EF_JSON)
      json_value(b, v, lens[i]);
    else if (!v || !jsoncheck_syntax(v, lens[i]))
      buf_append(b, "[]", 2);
    else
      buf_json_text(b, v, lens[i]);
  }
  if (raw) {
    buf_appends(b, ",\"raw\":");
    json_value(b, raw, raw_len);
  }
  return buf_append(b, "}", 1);
}
