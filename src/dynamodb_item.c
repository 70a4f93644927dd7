/* dynamodb_item.c - an event as an item of SesEventMessages in DynamoDB
 * JSON, the attributes chosen by the field table (event_fields.h). Runs on
 * the writer thread (the sink's payload). The other direction, an item
 * back into an event, is ses_from_dynamodb_item (ses.c), which parses the
 * SES JSON it synthesizes like any other. */
#include <string.h>

#include "dynamodb_client.h"
#include "event_fields.h"

/* s as a JSON string, the same bytes as buf_json_string writes (the unit
 * test dynamodb_item_escapes holds them equal), in one pass that appends
 * the runs between escapes whole, where buf_json_string calls a function
 * a byte (12,000 instructions for a long value with one quote). '<', '>',
 * '&', U+2028 and U+2029 are escaped by buf_json_text, which escapes them
 * as buf_json_string does; quotes, backslashes and control characters
 * here, as JSON has them. */
static void put_string(buf *w, const char *s) {
  static const char hex[] = "0123456789abcdef";
  const unsigned char *p = (const unsigned char *)s, *run = p;
  buf_append(w, "\"", 1);
  for (; *p; p++) {
    unsigned c = *p;
    if (c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' && c != 0xE2)
      continue;
    size_t k = 1; /* bytes escaped */
    if (c == 0xE2) {
      if (p[1] != 0x80 || (p[2] != 0xA8 && p[2] != 0xA9)) continue; /* other UTF-8: as it is */
      k = 3;
    }
    buf_append(w, run, (size_t)(p - run));
    if (c == '<' || c == '>' || c == '&' || c == 0xE2) {
      buf_json_text(w, (const char *)p, k);
    } else if (c == '"' || c == '\\' || c == '\n' || c == '\r' || c == '\t') {
      char esc[2] = {'\\', c == '\n' ? 'n' : c == '\r' ? 'r' : c == '\t' ? 't' : (char)c};
      buf_append(w, esc, 2);
    } else {
      char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
      buf_append(w, esc, 6);
    }
    p += k - 1;
    run = p + 1;
  }
  buf_append(w, run, (size_t)(p - run));
  buf_append(w, "\"", 1);
}

/* "name":{"S":"value"} when value is present and not empty (DynamoDB
 * refuses empty strings in index keys; the Lambda left absent values
 * out). */
static void put_s(buf *w, const char *name, const char *value) {
  if (!value || !*value) return;
  if (w->len > 1) buf_append(w, ",", 1);
  put_string(w, name);
  buf_appends(w, ":{\"S\":");
  put_string(w, value);
  buf_append(w, "}", 1);
}

/* "name":{"SS":[...]}: a string set, so without repeats or empty
 * strings; nothing when no entry is left. */
static void put_ss(buf *w, const char *name, char *const *v, size_t n) {
  int any = 0;
  for (size_t i = 0; i < n; i++) {
    const char *r = v[i];
    if (!r || !*r) continue;
    int seen = 0;
    for (size_t j = 0; j < i && !seen; j++) seen = v[j] && strcmp(v[j], r) == 0;
    if (seen) continue;
    if (!any) {
      if (w->len > 1) buf_append(w, ",", 1);
      put_string(w, name);
      buf_appends(w, ":{\"SS\":[");
    } else {
      buf_append(w, ",", 1);
    }
    any = 1;
    put_string(w, r);
  }
  if (any) buf_append(w, "]}", 2);
}

/* The item of e (type index t) into w: the attributes the field table
 * gives an item of that type (as the Lambda wrote it), and with extra
 * seslog's own. */
static void put_item(buf *w, const ses_event *e, int t, int extra) {
  unsigned want = t == 0 ? EF_DDB_BOUNCE : t == 1 ? EF_DDB_COMPLAINT : EF_DDB_OTHER;
  if (extra) want |= EF_DDB_EXTRA;
  buf_append(w, "{", 1);
  for (int i = 0; i < SF_N; i++) {
    const struct ses_field *f = &ses_fields[i];
    if (!f->ddb || !(f->ddb_items & want)) continue;
    if (f->kind == EF_LIST) {
      size_t n;
      char *const *v = ses_field_list(e, i, &n);
      put_ss(w, f->ddb, v, n);
    } else {
      const char *v;
      char *none; /* a TEXT or JSON field needs no scratch */
      ses_field_text(e, i, &v, &none);
      put_s(w, f->ddb, v);
    }
  }
  buf_append(w, "}", 1);
}

char *dynamodb_item(const ses_event *e, unsigned types, int extra) {
  int t = dynamodb_type_index(e->notification_type);
  if (t < 0 || !(types & (1u << t)) || !e->message_id || !*e->message_id || !e->time_stamp ||
      !*e->time_stamp)
    return NULL;
  buf w;
  buf_init(&w, ITEM_MAX);
  put_item(&w, e, t, extra);
  if (buf_failed(&w)) {
    buf_free(&w);
    return NULL;
  }
  return buf_take(&w);
}
