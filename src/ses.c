/* ses.c - SES JSON into event records shaped like SesEventMessages.
 *
 * Two shapes arrive: identity notifications ("notificationType") and event
 * publishing ("eventType"). Both carry a "mail" object and, per type, an
 * object named after the type ("bounce", "complaint", ...). One table below
 * says, per type, where that object is and where its affected recipients
 * are; everything else is read the same way for every type.
 *
 * The file also turns DynamoDB items of the original pipeline back into
 * events (by synthesizing the SES JSON they came from and parsing that, so
 * both paths fill the columns the same way) and events into the API JSON. */
#include "ses.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "error.h"
#include "jsoncheck.h"
#include "util.h"

/* What differs between SES types. */
struct ses_type {
  const char *name;       /* notificationType / eventType, verbatim */
  const char *object;     /* key of the type's own object */
  int object_required;    /* 1: SL_EFIELD when that object is missing */
  const char *rcpt_array; /* key, inside the object, of the affected
                             recipients; NULL: the mail's destination */
  int rcpt_objects;       /* 1: entries are {"emailAddress":...};
                             0: entries are strings */
};

static const struct ses_type ses_types[] = {
    {"Bounce", "bounce", 1, "bouncedRecipients", 1},
    {"Complaint", "complaint", 1, "complainedRecipients", 1},
    {"Delivery", "delivery", 0, "recipients", 0},
    {"DeliveryDelay", "deliveryDelay", 0, "delayedRecipients", 1},
    {"Send", "send", 0, NULL, 0},
    {"Reject", "reject", 0, NULL, 0},
    {"Open", "open", 0, NULL, 0},
    {"Click", "click", 0, NULL, 0},
    {"Rendering Failure", "failure", 0, NULL, 0},
    {"Subscription", "subscription", 0, NULL, 0},
};

/* SNS sends this once to an email subscription's topic; it is not an SES
 * event and must be ignored, not rejected. */
#define SES_SNS_SUBSCRIBED "AmazonSnsSubscriptionSucceeded"

static const struct ses_type *ses_type_find(const char *name) {
  for (size_t i = 0; i < sizeof ses_types / sizeof ses_types[0]; i++)
    if (strcmp(ses_types[i].name, name) == 0) return &ses_types[i];
  return NULL;
}

static int fail_why(const char **why, const char *msg, int code) {
  if (why) *why = msg;
  return code;
}

/* o[key] when o is an object and has it, else NULL. */
static const cJSON *obj_get(const cJSON *o, const char *key) {
  if (!cJSON_IsObject(o)) return NULL;
  return cJSON_GetObjectItemCaseSensitive(o, key);
}

/* o[key] when it is a string, else NULL (JSON null, numbers and a missing
 * key all read as absent). */
static const char *obj_str(const cJSON *o, const char *key) {
  const cJSON *v = obj_get(o, key);
  return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* *dst = a copy of s, or NULL when s is NULL. Returns 0 or SL_ENOMEM. */
static int dup_opt(char **dst, const char *s) {
  if (!s) {
    *dst = NULL;
    return 0;
  }
  *dst = util_strdup(s);
  return *dst ? 0 : SL_ENOMEM;
}

static int is_space(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* The bare address of one recipient entry: surrounding blanks trimmed and a
 * display name dropped ("Jane <jane@example.com>" -> "jane@example.com").
 * The case is kept. *out is a new string, or NULL when nothing is left.
 * Returns 0 or SL_ENOMEM. */
static int addr_dup(const char *s, size_t n, char **out) {
  size_t a = 0, b = n;
  while (a < b && is_space(s[a])) a++;
  while (b > a && is_space(s[b - 1])) b--;
  if (b > a && s[b - 1] == '>') {
    size_t lt = b - 1;
    while (lt > a && s[lt - 1] != '<') lt--;
    if (lt > a) { /* s[lt - 1] is the last '<' */
      a = lt;
      b--;
      while (a < b && is_space(s[a])) a++;
      while (b > a && is_space(s[b - 1])) b--;
    }
  }
  if (a == b) {
    *out = NULL;
    return 0;
  }
  *out = util_strndup(s + a, b - a);
  return *out ? 0 : SL_ENOMEM;
}

/* SES sends to at most 50 recipients; past this many entries duplicates are
 * kept rather than paying a quadratic scan on a hostile document. */
#define SES_DEDUP_MAX 256

/* Appends addr (taken) to the recipients of e unless an equal one is
 * already there; e->recipients has room for every entry. */
static void rcpt_add_take(ses_event *e, char *addr, int dedup) {
  for (size_t i = 0; dedup && i < e->n_recipients; i++) {
    if (strcmp(e->recipients[i], addr) == 0) {
      free(addr);
      return;
    }
  }
  e->recipients[e->n_recipients++] = addr;
}

/* Fills e->recipients from a JSON array of address strings (objects == 0)
 * or of {"emailAddress":...} objects (objects == 1); entries of another
 * shape and empty addresses are skipped, exact duplicates listed once
 * (up to SES_DEDUP_MAX entries); entries past SES_RECIPIENTS_MAX are
 * counted in e->recipients_over. Returns 0 or SL_ENOMEM. */
static int rcpt_fill(ses_event *e, const cJSON *arr, int objects) {
  int n = cJSON_GetArraySize(arr);
  if (!cJSON_IsArray(arr) || n <= 0) return 0;
  e->recipients =
      calloc((size_t)(n < SES_RECIPIENTS_MAX ? n : SES_RECIPIENTS_MAX), sizeof *e->recipients);
  if (!e->recipients) return SL_ENOMEM;
  const cJSON *it;
  cJSON_ArrayForEach(it, arr) {
    const char *s =
        objects ? obj_str(it, "emailAddress") : (cJSON_IsString(it) ? it->valuestring : NULL);
    if (!s) continue;
    if (e->n_recipients == SES_RECIPIENTS_MAX) {
      e->recipients_over++;
      continue;
    }
    char *addr;
    if (addr_dup(s, strlen(s), &addr)) return SL_ENOMEM;
    if (addr) rcpt_add_take(e, addr, n <= SES_DEDUP_MAX);
  }
  return 0;
}

/* The string entries of a JSON array joined with ",", or NULL (*out) when
 * there is none. Returns 0 or SL_ENOMEM. */
static int join_strings(const cJSON *arr, char **out) {
  size_t total = 0, count = 0;
  const cJSON *it;
  *out = NULL;
  if (!cJSON_IsArray(arr)) return 0;
  cJSON_ArrayForEach(it, arr) {
    if (!cJSON_IsString(it)) continue;
    total += strlen(it->valuestring) + 1;
    count++;
  }
  if (count == 0) return 0;
  char *p = malloc(total);
  if (!p) return SL_ENOMEM;
  size_t at = 0;
  cJSON_ArrayForEach(it, arr) {
    if (!cJSON_IsString(it)) continue;
    size_t n = strlen(it->valuestring);
    if (at) p[at++] = ',';
    memcpy(p + at, it->valuestring, n);
    at += n;
  }
  p[at] = 0;
  *out = p;
  return 0;
}

/* The first diagnosticCode string among the entries of arr, or NULL. */
static const char *first_diagnostic(const cJSON *arr) {
  const cJSON *it;
  if (!cJSON_IsArray(arr)) return NULL;
  cJSON_ArrayForEach(it, arr) {
    const char *s = obj_str(it, "diagnosticCode");
    if (s) return s;
  }
  return NULL;
}

/* Reads the event's time: the SNS Timestamp when given, else the type
 * object's "timestamp", else mail.timestamp; the first one present decides
 * (a present but unparsable time is an error, not a reason to look
 * further). Fills e->time_stamp normalized to ms UTC and e->ts_ms. Returns
 * 0, SL_EFIELD (with *why) or SL_ENOMEM. */
static int read_time(ses_event *e, const char *sns_timestamp, const cJSON *tobj, const cJSON *mail,
                     const char **why) {
  const char *s = sns_timestamp;
  const char *bad = "the SNS Timestamp is not an ISO-8601 time";
  if (!s) {
    const cJSON *v = obj_get(tobj, "timestamp");
    bad = "the event's timestamp is not an ISO-8601 time";
    if (!v) {
      v = obj_get(mail, "timestamp");
      bad = "mail.timestamp is not an ISO-8601 time";
    }
    if (!v) return fail_why(why, "the SES event has no timestamp", SL_EFIELD);
    s = cJSON_IsString(v) ? v->valuestring : NULL;
  }
  int64_t ms;
  if (!s || util_parse_iso8601(s, &ms) != 0) return fail_why(why, bad, SL_EFIELD);
  char text[25];
  util_format_iso8601(ms, text);
  e->time_stamp = util_strdup(text);
  if (!e->time_stamp) return SL_ENOMEM;
  e->ts_ms = ms;
  return 0;
}

/* The member of field i in e. */
static char **field_slot(ses_event *e, int i) {
  return (char **)((char *)e + ses_fields[i].offset);
}

/* Fills the fields whose row says where they are: a key of the mail
 * object or of the type's own object (for the types the row names).
 * Returns 0 or SL_ENOMEM. */
static int fill_plain_fields(ses_event *e, const cJSON *mail, const struct ses_type *t,
                             const cJSON *tobj) {
  for (int i = 0; i < SF_N; i++) {
    const struct ses_field *f = &ses_fields[i];
    if (f->kind != EF_TEXT || !f->from || !f->key) continue;
    const cJSON *o = strcmp(f->from, "mail") == 0        ? mail
                     : ses_field_in_object(i, t->object) ? tobj
                                                         : NULL;
    if (o && dup_opt(field_slot(e, i), obj_str(o, f->key))) return SL_ENOMEM;
  }
  return 0;
}

/* e->raw: root printed compact, or a copy of text when given (the len
 * bytes root was parsed from, already exactly that print), which costs a
 * fraction of printing. Returns 0 or SL_ENOMEM. */
static int fill_raw(ses_event *e, const cJSON *root, const char *text, size_t len) {
  if (text) {
    e->raw = util_strndup(text, len);
    e->raw_len = len;
    return e->raw ? 0 : SL_ENOMEM;
  }
  /* printed in ses_parse's arena scope: kept, so copied out of it */
  e->raw = arena_take(cJSON_PrintUnformatted(root));
  if (!e->raw) return SL_ENOMEM;
  e->raw_len = strlen(e->raw);
  return 0;
}

/* Fills the columns of e from root, a JSON object whose type is t, parsed
 * from text (see fill_raw). Returns 0, SL_EFIELD (with *why) or SL_ENOMEM;
 * e is left partly filled on error (the caller frees it). */
static int fill_event(ses_event *e, const cJSON *root, const char *text, size_t len,
                      const char *type_name, const struct ses_type *t, const char *sns_timestamp,
                      const char **why) {
  int rc;
  const cJSON *mail = obj_get(root, "mail");
  if (!cJSON_IsObject(mail)) return fail_why(why, "the SES event has no mail object", SL_EFIELD);
  const char *mid = obj_str(mail, "messageId");
  if (!mid || !*mid) return fail_why(why, "the SES event has no mail.messageId", SL_EFIELD);
  const cJSON *tobj = obj_get(root, t->object);
  if (cJSON_IsNull(tobj)) tobj = NULL;
  if (tobj && !cJSON_IsObject(tobj))
    return fail_why(why, "the SES event's type object is not an object", SL_EFIELD);
  if (!tobj && t->object_required)
    return fail_why(why,
                    strcmp(t->object, "bounce") == 0 ? "the Bounce has no bounce object"
                                                     : "the Complaint has no complaint object",
                    SL_EFIELD);

  if ((rc = read_time(e, sns_timestamp, tobj, mail, why))) return rc;
  if ((rc = dup_opt(&e->notification_type, type_name))) return rc;
  if ((rc = join_strings(obj_get(mail, "destination"), &e->destination_address))) return rc;
  if ((rc = fill_plain_fields(e, mail, t, tobj))) return rc;

  const cJSON *bounce = strcmp(t->object, "bounce") == 0 ? tobj : NULL;
  const cJSON *bounced = obj_get(bounce, "bouncedRecipients");
  if (bounced) {
    if (!cJSON_IsArray(bounced))
      return fail_why(why, "bounce.bouncedRecipients is not an array", SL_EFIELD);
    e->bounced_recipients = arena_take(cJSON_PrintUnformatted(bounced));
    if (!e->bounced_recipients) return SL_ENOMEM;
  }

  const char *diag = first_diagnostic(bounced);
  if (!diag) diag = obj_str(obj_get(root, "reject"), "reason");
  if (!diag) diag = first_diagnostic(obj_get(obj_get(root, "deliveryDelay"), "delayedRecipients"));
  if (!diag) diag = obj_str(obj_get(root, "failure"), "errorMessage");
  if ((rc = dup_opt(&e->diagnostic, diag))) return rc;

  /* Bounces and complaints list only the recipients they are about: the
   * other recipients of the same mail were not affected. */
  const cJSON *rcpts = t->rcpt_array ? obj_get(tobj, t->rcpt_array) : obj_get(mail, "destination");
  if ((rc = rcpt_fill(e, rcpts, t->rcpt_array ? t->rcpt_objects : 0))) return rc;

  return fill_raw(e, root, text, len);
}

/* Reads the type of root: 0 and *name and *t for a known type; SL_ENOTSES when
 * root is not an object, has no type key, or is SNS's subscription notice;
 * SL_EFIELD when the type is not a string; SL_ETYPE when it is unknown. */
static int read_type(const cJSON *root, const char **name, const struct ses_type **t,
                     const char **why) {
  if (!cJSON_IsObject(root)) return fail_why(why, "the JSON is not an object", SL_ENOTSES);
  const cJSON *v = obj_get(root, "notificationType");
  const char *key = "notificationType";
  if (!v) {
    v = obj_get(root, "eventType");
    key = "eventType";
  }
  if (!v) return fail_why(why, "the JSON has neither notificationType nor eventType", SL_ENOTSES);
  if (!cJSON_IsString(v))
    return fail_why(
        why, key[0] == 'n' ? "notificationType is not a string" : "eventType is not a string",
        SL_EFIELD);
  if (strcmp(v->valuestring, SES_SNS_SUBSCRIBED) == 0)
    return fail_why(why, "an SNS subscription notice, not an SES event", SL_ENOTSES);
  *t = ses_type_find(v->valuestring);
  if (!*t) return fail_why(why, "unknown SES event type", SL_ETYPE);
  *name = v->valuestring;
  return 0;
}

/* See ses.h. */
int ses_parse_json_text(const cJSON *root, const char *text, size_t len, const char *sns_timestamp,
                        ses_event **out, const char **why) {
  const char *name = NULL;
  const struct ses_type *t = NULL;
  int rc = read_type(root, &name, &t, why);
  if (rc) return rc;
  ses_event *e = calloc(1, sizeof *e);
  if (!e) return fail_why(why, "out of memory", SL_ENOMEM);
  rc = fill_event(e, root, text, len, name, t, sns_timestamp, why);
  if (rc) goto fail;
  *out = e;
  return 0;
fail:
  if (rc == SL_ENOMEM) fail_why(why, "out of memory", rc);
  ses_event_free(e);
  return rc;
}

int ses_parse_json(const cJSON *root, const char *sns_timestamp, ses_event **out,
                   const char **why) {
  return ses_parse_json_text(root, NULL, 0, sns_timestamp, out, why);
}

/* ses_parse inside its arena scope. Trailing non-blank text after the
 * document makes it "not JSON": a truncated or concatenated body must not
 * pass as one event. */
static int parse_text(const char *json, size_t len, const char *sns_timestamp, ses_event **out,
                      const char **why) {
  const char *end = NULL;
  cJSON *root = cJSON_ParseWithLengthOpts(json, len, &end, 0);
  if (!root) return fail_why(why, "the SES message is not JSON", SL_EJSON);
  while (end && end < json + len && is_space(*end)) end++;
  if (!end || end != json + len) {
    cJSON_Delete(root);
    return fail_why(why, "the SES message has text after its JSON", SL_EJSON);
  }
  /* What cJSON lets through but would be stored ambiguously; and whether
   * the text is already the compact print raw keeps. */
  int compact;
  int rc = jsoncheck_ex(json, len, &compact, why);
  if (rc) {
    cJSON_Delete(root);
    return rc;
  }
  rc = ses_parse_json_text(root, compact ? json : NULL, len, sns_timestamp, out, why);
  cJSON_Delete(root);
  return rc;
}

/* See ses.h. The tree lives in the thread's arena (arena.h): it never
 * leaves this call, and the event's strings are malloc'ed. */
int ses_parse(const char *json, size_t len, const char *sns_timestamp, ses_event **out,
              const char **why) {
  if (!json) return fail_why(why, "no SES JSON", SL_EINVAL);
  arena_begin();
  int rc = parse_text(json, len, sns_timestamp, out, why);
  arena_end();
  return rc;
}

void ses_event_free(ses_event *e) {
  if (!e) return;
  /* cJSON_Print* memory comes from cJSON's hooks, malloc by default. */
  for (int i = 0; i < SF_N; i++) {
    if (ses_fields[i].kind == EF_LIST) {
      size_t n;
      char *const *v = ses_field_list(e, i, &n);
      for (size_t j = 0; j < n; j++) free(v[j]);
      free((void *)v);
      continue;
    }
    free(*field_slot(e, i));
  }
  free(e->raw);
  free(e);
}

int ses_is_bounce(const ses_event *e) {
  return e && e->notification_type && strcmp(e->notification_type, "Bounce") == 0;
}

int ses_is_complaint(const ses_event *e) {
  return e && e->notification_type && strcmp(e->notification_type, "Complaint") == 0;
}

/* ---- EventBridge ------------------------------------------------------- */

const cJSON *ses_eventbridge_detail(const cJSON *doc) {
  if (!cJSON_IsObject(doc)) return NULL;
  const cJSON *src = cJSON_GetObjectItemCaseSensitive(doc, "source");
  const cJSON *kind = cJSON_GetObjectItemCaseSensitive(doc, "detail-type");
  const cJSON *detail = cJSON_GetObjectItemCaseSensitive(doc, "detail");
  if (!cJSON_IsString(src) || strcmp(src->valuestring, "aws.ses") != 0) return NULL;
  if (!cJSON_IsString(kind) || !cJSON_IsObject(detail)) return NULL;
  return detail;
}

/* ---- DynamoDB items ---------------------------------------------------- */

/* 1 when v looks like a DynamoDB AttributeValue: an object with exactly one
 * member named after a DynamoDB type. */
static int ddb_is_typed(const cJSON *v) {
  static const char *const types[] = {"S", "N", "B", "BOOL", "NULL", "SS", "NS", "BS", "L", "M"};
  if (!cJSON_IsObject(v) || !v->child || v->child->next) return 0;
  for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
    if (v->child->string && strcmp(v->child->string, types[i]) == 0) return 1;
  return 0;
}

/* A number of DynamoDB's "N" (a decimal string) as a new cJSON number.
 * Returns 0, SL_EFIELD when it is not a number, or SL_ENOMEM. */
static int ddb_number(const char *s, cJSON **out) {
  char *end;
  errno = 0;
  double d = strtod(s, &end);
  if (end == s || *end || errno) return SL_EFIELD;
  *out = cJSON_CreateNumber(d);
  return *out ? 0 : SL_ENOMEM;
}

/* *out = a new plain cJSON value for the DynamoDB AttributeValue v (S, N,
 * B, BOOL, NULL, SS, NS, BS, L, M, nested); a value that is not typed is
 * copied as it is. Returns 0, SL_EFIELD when v is malformed, or
 * SL_ENOMEM. */
static int ddb_to_plain(const cJSON *v, cJSON **out) {
  if (!ddb_is_typed(v)) {
    *out = cJSON_Duplicate(v, 1);
    return *out ? 0 : SL_ENOMEM;
  }
  const cJSON *a = v->child;
  const char *k = a->string;
  int is_map = strcmp(k, "M") == 0;
  int is_list =
      strcmp(k, "L") == 0 || strcmp(k, "SS") == 0 || strcmp(k, "NS") == 0 || strcmp(k, "BS") == 0;
  *out = NULL;
  if (strcmp(k, "S") == 0 || strcmp(k, "B") == 0) {
    if (!cJSON_IsString(a)) return SL_EFIELD;
    *out = cJSON_CreateString(a->valuestring);
  } else if (strcmp(k, "N") == 0) {
    return cJSON_IsString(a) ? ddb_number(a->valuestring, out) : SL_EFIELD;
  } else if (strcmp(k, "BOOL") == 0) {
    if (!cJSON_IsBool(a)) return SL_EFIELD;
    *out = cJSON_CreateBool(cJSON_IsTrue(a));
  } else if (strcmp(k, "NULL") == 0) {
    *out = cJSON_CreateNull();
  }
  if (!is_map && !is_list) return *out ? 0 : SL_ENOMEM;
  if (is_map ? !cJSON_IsObject(a) : !cJSON_IsArray(a)) return SL_EFIELD;
  cJSON *c = is_map ? cJSON_CreateObject() : cJSON_CreateArray();
  if (!c) return SL_ENOMEM;
  const cJSON *it;
  int rc = 0;
  cJSON_ArrayForEach(it, a) {
    cJSON *x = NULL;
    if (strcmp(k, "SS") == 0 || strcmp(k, "BS") == 0) {
      if (!cJSON_IsString(it))
        rc = SL_EFIELD;
      else if (!(x = cJSON_CreateString(it->valuestring)))
        rc = SL_ENOMEM;
    } else if (strcmp(k, "NS") == 0) {
      rc = cJSON_IsString(it) ? ddb_number(it->valuestring, &x) : SL_EFIELD;
    } else {
      rc = ddb_to_plain(it, &x);
    }
    if (rc) break;
    if (!(is_map ? cJSON_AddItemToObject(c, it->string, x) : cJSON_AddItemToArray(c, x))) {
      cJSON_Delete(x);
      rc = SL_ENOMEM;
      break;
    }
  }
  if (rc) {
    cJSON_Delete(c);
    return rc;
  }
  *out = c;
  return 0;
}

/* Adds a copy of s under key to obj when s is not NULL. Returns 0 or
 * SL_ENOMEM. */
static int add_str_opt(cJSON *obj, const char *key, const char *s) {
  if (!s) return 0;
  return cJSON_AddStringToObject(obj, key, s) ? 0 : SL_ENOMEM;
}

/* Adds to arr one entry per address in the comma-separated text s (blank
 * entries skipped): a string, or {"emailAddress":...} when objects. Returns
 * 0 or SL_ENOMEM. */
static int add_split(cJSON *arr, const char *s, int objects) {
  while (s && *s) {
    const char *comma = strchr(s, ',');
    size_t n = comma ? (size_t)(comma - s) : strlen(s);
    char *addr;
    if (addr_dup(s, n, &addr)) return SL_ENOMEM;
    if (addr) {
      cJSON *c = objects ? cJSON_CreateObject() : cJSON_CreateString(addr);
      if (c && objects && !cJSON_AddStringToObject(c, "emailAddress", addr)) {
        cJSON_Delete(c);
        c = NULL;
      }
      free(addr);
      if (!c) return SL_ENOMEM;
      if (!cJSON_AddItemToArray(arr, c)) {
        cJSON_Delete(c);
        return SL_ENOMEM;
      }
    }
    s = comma ? comma + 1 : NULL;
  }
  return 0;
}

/* Adds to arr the addresses of list (a plain array of strings, or a
 * comma-separated string), as strings or {"emailAddress":...} objects.
 * Returns 0 or SL_ENOMEM. */
static int add_list(cJSON *arr, const cJSON *list, int objects) {
  if (cJSON_IsString(list)) return add_split(arr, list->valuestring, objects);
  const cJSON *it;
  cJSON_ArrayForEach(it, list) {
    if (!cJSON_IsString(it)) continue;
    int rc = add_split(arr, it->valuestring, objects);
    if (rc) return rc;
  }
  return 0;
}

/* The plain item's bouncedRecipients as a new JSON array: JSON text (as the
 * Lambda wrote it) or an array. *out is NULL when the attribute is absent.
 * Returns 0, SL_EFIELD or SL_ENOMEM. */
static int ddb_bounced(const cJSON *plain, cJSON **out) {
  const cJSON *v = obj_get(plain, "bouncedRecipients");
  *out = NULL;
  if (!v || cJSON_IsNull(v)) return 0;
  cJSON *arr;
  if (cJSON_IsString(v)) {
    arr = cJSON_Parse(v->valuestring);
    if (!arr || !cJSON_IsArray(arr)) {
      cJSON_Delete(arr);
      return SL_EFIELD;
    }
    /* JSON inside a string: the rule of ses_parse holds for it too. */
    int rc = jsoncheck(v->valuestring, strlen(v->valuestring), NULL);
    if (rc) {
      cJSON_Delete(arr);
      return rc;
    }
  } else if (cJSON_IsArray(v)) {
    arr = cJSON_Duplicate(v, 1);
    if (!arr) return SL_ENOMEM;
  } else {
    return SL_EFIELD;
  }
  *out = arr;
  return 0;
}

/* Adds to mail and tobj the fields of the table read from there (see
 * fill_plain_fields) that the item has and they lack yet. Returns 0 or
 * SL_ENOMEM. */
static int synth_other_fields(const cJSON *plain, cJSON *mail, cJSON *tobj,
                              const struct ses_type *t) {
  for (int i = 0; i < SF_N; i++) {
    const struct ses_field *f = &ses_fields[i];
    if (f->kind != EF_TEXT || !f->ddb || !f->from || !f->key) continue;
    cJSON *o = strcmp(f->from, "mail") == 0        ? mail
               : ses_field_in_object(i, t->object) ? tobj
                                                   : NULL;
    if (o && !obj_get(o, f->key) && add_str_opt(o, f->key, obj_str(plain, f->ddb)))
      return SL_ENOMEM;
  }
  return 0;
}

/* Builds the SES JSON an item of type t came from, in the identity
 * notification shape and SES's key order, from the plain item. *out is
 * new. Returns 0, SL_EFIELD (with *why) or SL_ENOMEM. */
static int ddb_synthesize(const cJSON *plain, const char *type, const struct ses_type *t,
                          cJSON **out, const char **why) {
  const char *ts = obj_str(plain, "timeStamp");
  const char *dest = obj_str(plain, "destinationAddress");
  const cJSON *recipients = obj_get(plain, "recipients");
  int is_bounce = strcmp(t->object, "bounce") == 0;
  int is_complaint = strcmp(t->object, "complaint") == 0;
  cJSON *bounced = NULL;
  int rc = ddb_bounced(plain, &bounced);
  if (rc == SL_EFIELD) return fail_why(why, "bouncedRecipients is not a JSON array", rc);
  if (rc == SL_EDUPKEY || rc == SL_ENUL)
    return fail_why(why, "bouncedRecipients has an object with a key twice, or U+0000", rc);
  if (rc) return fail_why(why, "out of memory", rc);
  cJSON *doc = cJSON_CreateObject();
  cJSON *mail = NULL, *tobj = NULL, *arr = NULL;
  if (!doc || add_str_opt(doc, "notificationType", type) ||
      !(mail = cJSON_AddObjectToObject(doc, "mail")) || add_str_opt(mail, "timestamp", ts) ||
      add_str_opt(mail, "messageId", obj_str(plain, "messageId")) ||
      add_str_opt(mail, "source", obj_str(plain, "source")) ||
      !(arr = cJSON_AddArrayToObject(mail, "destination")) || add_split(arr, dest, 0) ||
      !(tobj = cJSON_AddObjectToObject(doc, t->object)))
    goto nomem;
  if (is_bounce) {
    if (add_str_opt(tobj, "bounceType", obj_str(plain, "bounceType")) ||
        add_str_opt(tobj, "bounceSubType", obj_str(plain, "bounceSubType")))
      goto nomem;
    if (!bounced && recipients) {
      /* never the destination: the other recipients did not bounce */
      if (!(bounced = cJSON_CreateArray()) || add_list(bounced, recipients, 1)) goto nomem;
    }
    if (bounced) {
      if (!cJSON_AddItemToObject(tobj, "bouncedRecipients", bounced)) goto nomem;
      bounced = NULL; /* tobj owns it now */
    }
  } else if (t->rcpt_array) {
    /* Complaint, Delivery, DeliveryDelay: the item keeps no recipient list
     * of its own, so its destination stands in unless seslog added one. */
    if (!(arr = cJSON_AddArrayToObject(tobj, t->rcpt_array)) ||
        (recipients ? add_list(arr, recipients, t->rcpt_objects)
                    : add_split(arr, dest, t->rcpt_objects)))
      goto nomem;
  }
  if ((is_bounce || strcmp(t->object, "delivery") == 0) &&
      add_str_opt(tobj, "reportingMTA", obj_str(plain, "reportingMTA")))
    goto nomem;
  if (add_str_opt(tobj, "timestamp", ts)) goto nomem;
  if ((is_bounce || is_complaint) && add_str_opt(tobj, "feedbackId", obj_str(plain, "feedbackId")))
    goto nomem;
  if (is_complaint &&
      (add_str_opt(tobj, "complaintFeedbackType", obj_str(plain, "complaintFeedbackType")) ||
       add_str_opt(tobj, "complaintSubType", obj_str(plain, "complaintSubType"))))
    goto nomem;
  /* The keys above keep the order earlier versions wrote (the content hash
   * of an item imported again must not change); any other field the table
   * places in the mail or the type's object follows. */
  if (synth_other_fields(plain, mail, tobj, t)) goto nomem;
  /* Only a Bounce keeps bouncedRecipients; for other types it is unused. */
  cJSON_Delete(bounced);
  *out = doc;
  return 0;
nomem:
  cJSON_Delete(bounced);
  cJSON_Delete(doc);
  return fail_why(why, "out of memory", SL_ENOMEM);
}

/* See ses.h. The item is first made plain (DynamoDB JSON or not), then the
 * SES JSON it came from is rebuilt and parsed like any other, with the
 * item's timeStamp standing for the SNS Timestamp. */
int ses_from_dynamodb_item(const cJSON *item, ses_event **out, const char **why) {
  if (!cJSON_IsObject(item)) return fail_why(why, "the DynamoDB item is not an object", SL_EJSON);
  int rc;
  cJSON *plain = cJSON_CreateObject();
  cJSON *doc = NULL;
  ses_event *e = NULL;
  if (!plain) return fail_why(why, "out of memory", SL_ENOMEM);
  const cJSON *it;
  cJSON_ArrayForEach(it, item) {
    cJSON *v;
    rc = ddb_to_plain(it, &v);
    if (rc == SL_EFIELD) continue; /* a malformed value reads as absent */
    if (rc) goto nomem;
    if (!cJSON_AddItemToObject(plain, it->string, v)) {
      cJSON_Delete(v);
      goto nomem;
    }
  }
  const char *type = obj_str(plain, "notificationType");
  const char *mid = obj_str(plain, "messageId");
  const char *ts = obj_str(plain, "timeStamp");
  rc = SL_EFIELD;
  if (!mid || !*mid) {
    fail_why(why, "the DynamoDB item has no messageId", rc);
    goto fail;
  }
  if (!ts) {
    fail_why(why, "the DynamoDB item has no timeStamp", rc);
    goto fail;
  }
  if (!type) {
    fail_why(why, "the DynamoDB item has no notificationType", rc);
    goto fail;
  }
  const struct ses_type *t = ses_type_find(type);
  if (!t) {
    rc = fail_why(why, "unknown notificationType in the DynamoDB item", SL_ETYPE);
    goto fail;
  }
  int64_t ms;
  if (util_parse_iso8601(ts, &ms) != 0) {
    fail_why(why, "the DynamoDB item's timeStamp is not an ISO-8601 time", rc);
    goto fail;
  }
  if ((rc = ddb_synthesize(plain, type, t, &doc, why))) goto fail;
  if ((rc = ses_parse_json(doc, ts, &e, why))) goto fail;
  /* A value copied from the item (a bouncedRecipients list of objects) may
   * hold a key twice: raw must read back as /sns would read it. */
  if ((rc = jsoncheck(e->raw, e->raw_len, why))) goto fail;
  /* What the SNS envelope gave, which the SES JSON does not hold. */
  for (int i = 0; i < SF_N; i++)
    if (ses_fields[i].ddb && ses_fields[i].from && strcmp(ses_fields[i].from, "envelope") == 0 &&
        dup_opt(field_slot(e, i), obj_str(plain, ses_fields[i].ddb)))
      goto nomem;
  cJSON_Delete(doc);
  cJSON_Delete(plain);
  *out = e;
  return 0;
nomem:
  rc = fail_why(why, "out of memory", SL_ENOMEM);
fail:
  ses_event_free(e);
  cJSON_Delete(doc);
  cJSON_Delete(plain);
  return rc;
}

/* ---- API JSON ---------------------------------------------------------- */

/* See ses.h. The text is the one query_row_json writes for the stored
 * row: both come from ses_fields_json. */
char *ses_event_to_json(const ses_event *e, int with_raw) {
  if (!e) return NULL;
  const char *vals[SF_N];
  size_t lens[SF_N];
  char *scratch[SF_N] = {0};
  int rc = 0;
  for (int i = 0; i < SF_N && !rc; i++) {
    rc = ses_field_text(e, i, &vals[i], &scratch[i]);
    lens[i] = !rc && vals[i] ? strlen(vals[i]) : 0;
  }
  buf b;
  buf_init(&b, (size_t)1 << 30);
  if (!rc) rc = ses_fields_json(&b, vals, lens, with_raw ? e->raw : NULL, e->raw_len);
  for (int i = 0; i < SF_N; i++) free(scratch[i]);
  if (rc || buf_failed(&b)) {
    buf_free(&b);
    return NULL;
  }
  return buf_take(&b);
}
