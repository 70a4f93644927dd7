/* slack.c - Slack incoming-webhook messages from outbox rows. */
#include "slack.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alerts.h"
#include "error.h"
#include "log.h"
#include "ses.h"
#include "util.h"

struct slack {
  outbound *ob;
  char *url;
  char *public_url;    /* without a trailing slash, or NULL */
  const char *mention; /* "<!here> ", "<!channel> " or "" */
  int max_per_minute;
  int64_t minute; /* the minute counted */
  int sent_in_minute;
  int digest_in_minute;  /* a digest went out in this minute */
  int64_t blocked_until; /* Slack said 429: nothing goes out before this */
  /* the delivery in flight */
  outbox *box;
  int sink;
  outbox_item **items;
  size_t n;
  enum outbox_verdict *verdicts;
  enum outbox_verdict on_success; /* for the sent rows */
  int64_t digest_through;         /* a digest in flight covers the rows up to this id */
};

int slack_new(outbound *ob, const struct slack_opts *opts, slack **out) {
  slack *s = calloc(1, sizeof *s);
  if (!s || !(s->url = strdup(opts->webhook_url))) {
    free(s);
    return SL_ENOMEM;
  }
  s->ob = ob;
  if (opts->public_url && *opts->public_url) {
    s->public_url = strdup(opts->public_url);
    size_t l = s->public_url ? strlen(s->public_url) : 0;
    while (l && s->public_url[l - 1] == '/') s->public_url[--l] = 0;
  }
  const char *m = opts->mention ? opts->mention : "here";
  s->mention = strcmp(m, "channel") == 0 ? "<!channel> " : strcmp(m, "none") == 0 ? "" : "<!here> ";
  s->max_per_minute = opts->max_per_minute > 0 ? opts->max_per_minute : 10;
  *out = s;
  return 0;
}

void slack_free(slack *s) {
  if (!s) return;
  free(s->url);
  free(s->public_url);
  free(s->verdicts);
  free(s);
}

/* ---- payloads (writer thread for events) ------------------------------ */

static char *event_payload(void *ud, const ses_event *e) {
  (void)ud;
  if (!ses_is_bounce(e) && !ses_is_complaint(e)) return NULL;
  char *ev = ses_event_to_json(e, 0);
  if (!ev) return NULL;
  buf b;
  buf_init(&b, 1 << 20);
  buf_appends(&b, "{\"kind\":\"event\",\"event\":");
  buf_appends(&b, ev);
  free(ev);
  if (buf_appends(&b, "}")) {
    buf_free(&b);
    return NULL;
  }
  return buf_take(&b);
}

static char *monitor_payload(const char *monitor, const char *from, const char *to, double value,
                             double threshold, const char *window) {
  buf b;
  buf_init(&b, 4096);
  buf_appends(&b, "{\"kind\":\"monitor\",\"monitor\":");
  buf_json_string(&b, monitor);
  buf_appends(&b, ",\"from\":");
  buf_json_string(&b, from);
  buf_appends(&b, ",\"to\":");
  buf_json_string(&b, to);
  buf_printf(&b, ",\"value\":%.6f,\"threshold\":%.6f,\"window\":", value, threshold);
  buf_json_string(&b, window);
  buf_appends(&b, "}");
  return buf_take(&b);
}

static char *enforcement_payload(const char *from, const char *to, int sending_enabled) {
  buf b;
  buf_init(&b, 1024);
  buf_appends(&b, "{\"kind\":\"enforcement\",\"from\":");
  buf_json_string(&b, from ? from : "");
  buf_appends(&b, ",\"to\":");
  buf_json_string(&b, to);
  if (sending_enabled >= 0)
    buf_printf(&b, ",\"sendingEnabled\":%s", sending_enabled ? "true" : "false");
  buf_appends(&b, "}");
  return buf_take(&b);
}

static char *unsubscribe_payload(const char *topic_arn) {
  buf b;
  buf_init(&b, 4096);
  buf_appends(&b, "{\"kind\":\"unsubscribe\",\"topicArn\":");
  buf_json_string(&b, topic_arn);
  buf_appends(&b, "}");
  return buf_take(&b);
}

static char *silence_payload(const char *topic_arn, int64_t last_message_ms, int64_t silent_ms) {
  buf b;
  buf_init(&b, 4096);
  char iso[25];
  util_format_iso8601(last_message_ms, iso);
  buf_appends(&b, "{\"kind\":\"silence\",\"topicArn\":");
  buf_json_string(&b, topic_arn);
  buf_printf(&b, ",\"lastMessageAt\":\"%s\",\"silentMinutes\":%lld}", iso,
             (long long)(silent_ms / 60000));
  return buf_take(&b);
}

static char *dnsbl_payload(const char *target, const char *zone, int listed, const char *answers,
                           const char *reason) {
  buf b;
  buf_init(&b, 8192);
  buf_printf(&b, "{\"kind\":\"dnsbl\",\"listed\":%s,\"target\":", listed ? "true" : "false");
  buf_json_string(&b, target);
  buf_appends(&b, ",\"zone\":");
  buf_json_string(&b, zone);
  buf_appends(&b, ",\"answers\":");
  buf_json_string(&b, answers ? answers : "");
  if (reason) {
    buf_appends(&b, ",\"reason\":");
    buf_json_string(&b, reason);
  }
  buf_appends(&b, "}");
  return buf_take(&b);
}

static const char *jstr(const cJSON *o, const char *k) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
  return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Counts of a digest: types, top domains, top sources. */
struct tally {
  char name[128];
  int n;
};

static void tally_add(struct tally *t, int *nt, int max, const char *name, int n) {
  if (!name) return;
  for (int i = 0; i < *nt; i++)
    if (strcmp(t[i].name, name) == 0) {
      t[i].n += n;
      return;
    }
  if (*nt == max) return;
  snprintf(t[*nt].name, sizeof t[*nt].name, "%s", name);
  t[(*nt)++].n = n;
}

static int tally_cmp(const void *a, const void *b) {
  return ((const struct tally *)b)->n - ((const struct tally *)a)->n;
}

/* What a digest says: how many, by type, domain and source, since when. */
struct digest {
  int64_t total;
  struct tally types[16], domains[256], sources[64];
  int nty, nd, ns;
  char first[40]; /* the oldest timeStamp, "" when none */
};

static void digest_count(struct digest *d, const char *type, const char *sub, const char *source,
                         const char *ts, int n) {
  char label[96];
  snprintf(label, sizeof label, "%s%s%s", type ? type : "?", sub ? " " : "", sub ? sub : "");
  tally_add(d->types, &d->nty, 16, label, n);
  tally_add(d->sources, &d->ns, 64, source, n);
  if (ts && (!d->first[0] || strcmp(ts, d->first) < 0))
    snprintf(d->first, sizeof d->first, "%s", ts);
  d->total += n;
}

static void digest_domain(struct digest *d, const char *addr, int n) {
  const char *at = addr ? strrchr(addr, '@') : NULL;
  if (at) tally_add(d->domains, &d->nd, 256, at + 1, n);
}

/* ---- summaries: a burst's events counted on the writer thread ---------- */

/* The outbox's summary_add: counts a bounce or complaint into *sum. */
static int summary_add(void *ud, void **sum, const ses_event *e) {
  (void)ud;
  if (!ses_is_bounce(e) && !ses_is_complaint(e)) return 0;
  if (!*sum && !(*sum = calloc(1, sizeof(struct digest)))) return 1;
  struct digest *d = *sum;
  digest_count(d, e->notification_type, e->bounce_type, e->source, e->time_stamp, 1);
  for (size_t i = 0; i < e->n_recipients; i++) digest_domain(d, e->recipients[i], 1);
  return 1;
}

static void put_tally_json(buf *b, const char *key, const struct tally *t, int nt) {
  buf_printf(b, ",\"%s\":[", key);
  for (int i = 0; i < nt; i++) {
    buf_appends(b, i ? ",[" : "[");
    buf_json_string(b, t[i].name);
    buf_printf(b, ",%d]", t[i].n);
  }
  buf_appends(b, "]");
}

/* The outbox's summary_payload: {"kind":"summary","total":N,"first":ts,
 * "types":[[label,n],...],"domains":[...],"sources":[...]}. */
static char *summary_payload(void *ud, const void *sum) {
  (void)ud;
  const struct digest *d = sum;
  buf b;
  buf_init(&b, 1 << 20);
  buf_printf(&b, "{\"kind\":\"summary\",\"total\":%lld,\"first\":", (long long)d->total);
  buf_json_string(&b, d->first);
  put_tally_json(&b, "types", d->types, d->nty);
  put_tally_json(&b, "domains", d->domains, d->nd);
  put_tally_json(&b, "sources", d->sources, d->ns);
  if (buf_appends(&b, "}")) {
    buf_free(&b);
    return NULL;
  }
  return buf_take(&b);
}

static void summary_free(void *ud, void *sum) {
  (void)ud;
  free(sum);
}

/* Adds a summary row's counts (its payload, parsed) to d. */
static void digest_add_summary(struct digest *d, const cJSON *p) {
  static const char *const keys[] = {"types", "domains", "sources"};
  for (int k = 0; k < 3; k++) {
    const cJSON *pair;
    cJSON_ArrayForEach(pair, cJSON_GetObjectItemCaseSensitive(p, keys[k])) {
      const cJSON *name = cJSON_GetArrayItem(pair, 0), *n = cJSON_GetArrayItem(pair, 1);
      if (!cJSON_IsString(name) || !cJSON_IsNumber(n)) continue;
      if (k == 0) tally_add(d->types, &d->nty, 16, name->valuestring, n->valueint);
      if (k == 1) tally_add(d->domains, &d->nd, 256, name->valuestring, n->valueint);
      if (k == 2) tally_add(d->sources, &d->ns, 64, name->valuestring, n->valueint);
    }
  }
  const cJSON *total = cJSON_GetObjectItemCaseSensitive(p, "total");
  if (cJSON_IsNumber(total)) d->total += (int64_t)total->valuedouble;
  const char *ts = jstr(p, "first");
  if (ts && *ts && (!d->first[0] || strcmp(ts, d->first) < 0))
    snprintf(d->first, sizeof d->first, "%s", ts);
}

/* Adds an event row's event (its payload, parsed) to d. */
static void digest_add_event(struct digest *d, const cJSON *row) {
  const cJSON *ev = cJSON_GetObjectItemCaseSensitive(row, "event");
  digest_count(d, jstr(ev, "notificationType"), jstr(ev, "bounceType"), jstr(ev, "source"),
               jstr(ev, "timeStamp"), 1);
  const cJSON *x;
  cJSON_ArrayForEach(x, cJSON_GetObjectItemCaseSensitive(ev, "recipients")) {
    if (cJSON_IsString(x)) digest_domain(d, x->valuestring, 1);
  }
}

/* ---- messages (loop thread) ------------------------------------------- */

/* Appends text with Slack's three control characters escaped. */
static void put_mrkdwn(buf *b, const char *s) {
  for (; s && *s; s++) {
    if (*s == '&')
      buf_appends(b, "&amp;");
    else if (*s == '<')
      buf_appends(b, "&lt;");
    else if (*s == '>')
      buf_appends(b, "&gt;");
    else
      buf_append(b, s, 1);
  }
}

/* Appends a percent-encoded URL component. */
static void put_urlpart(buf *b, const char *s) {
  static const char hex[] = "0123456789ABCDEF";
  for (; s && *s; s++) {
    unsigned char c = (unsigned char)*s;
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '_' || c == '.' || c == '~' || c == '@') {
      buf_append(b, s, 1);
    } else {
      char e[3] = {'%', hex[c >> 4], hex[c & 15]};
      buf_append(b, e, 3);
    }
  }
}

/* Builds {"text": fallback, "blocks": [section, context]} from a mrkdwn
 * body and a plain fallback. */
static char *message(const char *fallback, const char *body, const char *context) {
  cJSON *root = cJSON_CreateObject();
  cJSON *blocks = cJSON_AddArrayToObject(root, "blocks");
  cJSON_AddStringToObject(root, "text", fallback);
  cJSON *sec = cJSON_CreateObject();
  cJSON_AddStringToObject(sec, "type", "section");
  cJSON *t = cJSON_AddObjectToObject(sec, "text");
  cJSON_AddStringToObject(t, "type", "mrkdwn");
  cJSON_AddStringToObject(t, "text", body);
  cJSON_AddItemToArray(blocks, sec);
  if (context && *context) {
    cJSON *ctx = cJSON_CreateObject();
    cJSON_AddStringToObject(ctx, "type", "context");
    cJSON *els = cJSON_AddArrayToObject(ctx, "elements");
    cJSON *el = cJSON_CreateObject();
    cJSON_AddStringToObject(el, "type", "mrkdwn");
    cJSON_AddStringToObject(el, "text", context);
    cJSON_AddItemToArray(els, el);
    cJSON_AddItemToArray(blocks, ctx);
  }
  char *out = cJSON_PrintUnformatted(root);
  cJSON_Delete(root);
  return out;
}

/* Appends up to ten recipients, escaped. */
static void join_recipients(buf *b, const cJSON *ev) {
  const cJSON *r = cJSON_GetObjectItemCaseSensitive(ev, "recipients");
  const cJSON *x;
  int i = 0;
  cJSON_ArrayForEach(x, r) {
    if (!cJSON_IsString(x)) continue;
    if (i == 10) {
      buf_printf(b, " and %d more", cJSON_GetArraySize(r) - 10);
      break;
    }
    if (i++) buf_appends(b, ", ");
    put_mrkdwn(b, x->valuestring);
  }
}

static char *event_message(const slack *s, const cJSON *ev) {
  const char *type = jstr(ev, "notificationType");
  int bounce = type && strcmp(type, "Bounce") == 0;
  const char *kind1 = bounce ? jstr(ev, "bounceType") : jstr(ev, "complaintFeedbackType");
  const char *kind2 = bounce ? jstr(ev, "bounceSubType") : NULL;
  const char *diag = jstr(ev, "diagnostic");
  const char *source = jstr(ev, "source");
  const char *mid = jstr(ev, "messageId");
  buf fb, body, ctx;
  buf_init(&fb, 8192);
  buf_init(&body, 16384);
  buf_init(&ctx, 4096);
  /* plain fallback (notifications, screen readers) */
  /* Slack reads <...> in the top-level text too (what a phone shows): every
   * value from the event is escaped there as in the blocks, so the only
   * mention is the one --slack-mention asked for. */
  buf_appends(&fb, s->mention);
  put_mrkdwn(&fb, type ? type : "Event");
  if (kind1) {
    buf_appends(&fb, " (");
    put_mrkdwn(&fb, kind1);
    if (kind2) {
      buf_appends(&fb, "/");
      put_mrkdwn(&fb, kind2);
    }
    buf_appends(&fb, ")");
  }
  buf_appends(&fb, " for ");
  join_recipients(&fb, ev);
  if (source) {
    buf_appends(&fb, " from ");
    put_mrkdwn(&fb, source);
  }
  /* Block Kit body */
  buf_printf(&body, "%s*%s*", s->mention, bounce ? "Bounce" : "Complaint");
  if (kind1) {
    buf_appends(&body, " — ");
    put_mrkdwn(&body, kind1);
    if (kind2) {
      buf_appends(&body, " / ");
      put_mrkdwn(&body, kind2);
    }
  } else if (!bounce) {
    buf_appends(&body, " — no feedback type");
  }
  buf_appends(&body, "\n*Recipients:* ");
  join_recipients(&body, ev);
  if (source) {
    buf_appends(&body, "\n*Source:* ");
    put_mrkdwn(&body, source);
  }
  if (diag) {
    buf_appends(&body, "\n*Diagnostic:* `");
    char clipped[401];
    snprintf(clipped, sizeof clipped, "%s", diag);
    for (char *p = clipped; *p; p++)
      if (*p == '`') *p = '\'';
    put_mrkdwn(&body, clipped);
    buf_appends(&body, "`");
  }
  if (s->public_url && mid) {
    buf_printf(&ctx, "<%s/#/events/", s->public_url);
    put_urlpart(&ctx, mid);
    buf_appends(&ctx, "|Open the mail in seslog> · ");
  }
  buf_appends(&ctx, "messageId ");
  put_mrkdwn(&ctx, mid ? mid : "?");
  char *out = message(fb.data ? fb.data : "", body.data ? body.data : "", ctx.data);
  buf_free(&fb);
  buf_free(&body);
  buf_free(&ctx);
  return out;
}

/* A monitor's state change (seslog's own or AWS's reputation metrics). Fallback text into fb,
 * mrkdwn into body. */
static void word_monitor(const slack *s, const cJSON *p, buf *fb, buf *body) {
  const char *mon = jstr(p, "monitor"), *from = jstr(p, "from"), *to = jstr(p, "to");
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(p, "value");
  const cJSON *th = cJSON_GetObjectItemCaseSensitive(p, "threshold");
  int aws = mon && strncmp(mon, "aws", 3) == 0; /* AWS's reputation metrics (sesrep.c) */
  int complaint = mon && strcmp(mon + (aws ? 3 : 0), aws ? "ComplaintRate" : "complaintRate") == 0;
  const char *name = aws         ? (complaint ? "AWS complaint rate (Reputation.ComplaintRate)"
                                              : "AWS bounce rate (Reputation.BounceRate)")
                     : complaint ? "Complaint rate"
                                 : "Bounce rate";
  double value = cJSON_IsNumber(v) ? v->valuedouble * 100 : 0;
  double thr = cJSON_IsNumber(th) ? th->valuedouble * 100 : 0;
  const char *w = jstr(p, "window");
  const char *m = to && strcmp(to, "ok") ? s->mention : "";
  buf_printf(fb, "%s%s ", m, name);
  put_mrkdwn(fb, from ? from : "?");
  buf_appends(fb, " → ");
  put_mrkdwn(fb, to ? to : "?");
  buf_printf(fb, ": %.3f %% (threshold %.3f %%, window ", value, thr);
  put_mrkdwn(fb, w ? w : "?");
  buf_appends(fb, ")");
  buf_printf(body, "%s*%s is ", m, name);
  put_mrkdwn(body, to ? to : "?");
  buf_appends(body, "* (was ");
  put_mrkdwn(body, from ? from : "?");
  buf_printf(body, ")\n*Value:* %.3f %% over ", value);
  put_mrkdwn(body, w ? w : "?");
  buf_printf(body, "\n*Threshold:* %.3f %%", thr);
  if (s->public_url) buf_printf(body, "\n<%s/#/|Open the overview>", s->public_url);
}

/* A DNSBL listing or delisting. Fallback text into fb, mrkdwn into body. */
static void word_dnsbl(const slack *s, const cJSON *p, buf *fb, buf *body) {
  const char *target = jstr(p, "target"), *zone = jstr(p, "zone");
  const char *answers = jstr(p, "answers"), *reason = jstr(p, "reason");
  if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(p, "listed"))) {
    buf_printf(fb, "%sDNSBL: ", s->mention);
    put_mrkdwn(fb, target ? target : "?");
    buf_appends(fb, " is listed on ");
    put_mrkdwn(fb, zone ? zone : "?");
    if (answers && *answers) {
      buf_appends(fb, " (");
      put_mrkdwn(fb, answers);
      buf_appends(fb, ")");
    }
    if (reason) {
      buf_appends(fb, ": ");
      put_mrkdwn(fb, reason);
    }
    buf_printf(body, "%s*Blocklisted:* ", s->mention);
    put_mrkdwn(body, target ? target : "?");
    buf_appends(body, " is listed on ");
    put_mrkdwn(body, zone ? zone : "?");
    if (answers && *answers) {
      buf_appends(body, " (");
      put_mrkdwn(body, answers);
      buf_appends(body, ")");
    }
    if (reason) {
      buf_appends(body, "\n*Reason:* ");
      put_mrkdwn(body, reason);
    }
    buf_appends(body, "\nReceivers that use this list may refuse or junk the mail.");
  } else {
    buf_appends(fb, "DNSBL: ");
    put_mrkdwn(fb, target ? target : "?");
    buf_appends(fb, " is no longer listed on ");
    put_mrkdwn(fb, zone ? zone : "?");
    buf_appends(body, "*Delisted:* ");
    put_mrkdwn(body, target ? target : "?");
    buf_appends(body, " is no longer listed on ");
    put_mrkdwn(body, zone ? zone : "?");
  }
  if (s->public_url) buf_printf(body, "\n<%s/#/|Open the overview>", s->public_url);
}

/* A change of the SES account's enforcement status. Fallback text into fb, mrkdwn into body. */
static void word_enforcement(const slack *s, const cJSON *p, buf *fb, buf *body) {
  const char *from = jstr(p, "from"), *to = jstr(p, "to");
  int healthy = to && strcmp(to, "HEALTHY") == 0;
  const cJSON *se = cJSON_GetObjectItemCaseSensitive(p, "sendingEnabled");
  buf_printf(fb, "%sSES account status: %s → %s", healthy ? "" : s->mention,
             from && *from ? from : "unknown", to ? to : "?");
  buf_printf(body, "%s*SES account status is %s* (was %s)", healthy ? "" : s->mention,
             to ? to : "?", from && *from ? from : "unknown");
  if (cJSON_IsBool(se))
    buf_printf(body, "\n*Sending:* %s", cJSON_IsTrue(se) ? "enabled" : "disabled");
  if (!healthy)
    buf_appends(body,
                "\nAWS reviews this account: see the SES console's Reputation metrics "
                "and the case AWS opened.");
  if (s->public_url) buf_printf(body, "\n<%s/#/|Open the overview>", s->public_url);
}

/* An SNS topic that unsubscribed seslog. Fallback text into fb, mrkdwn into body. */
static void word_unsubscribe(const slack *s, const cJSON *p, buf *fb, buf *body) {
  const char *topic = jstr(p, "topicArn");
  buf_printf(fb, "%sSNS topic unsubscribed: ", s->mention);
  put_mrkdwn(fb, topic ? topic : "?");
  buf_printf(body, "%s*SNS subscription removed*\nseslog receives nothing more from ", s->mention);
  put_mrkdwn(body, topic ? topic : "?");
  buf_appends(body, " until it is subscribed again.");
}

/* An SNS topic silent for longer than --silence-alert. Fallback text into fb, mrkdwn into body. */
static void word_silence(const slack *s, const cJSON *p, buf *fb, buf *body) {
  const char *topic = jstr(p, "topicArn");
  const cJSON *m = cJSON_GetObjectItemCaseSensitive(p, "silentMinutes");
  int mins = cJSON_IsNumber(m) ? m->valueint : 0;
  buf_printf(fb, "%sNo message from ", s->mention);
  put_mrkdwn(fb, topic ? topic : "?");
  buf_printf(fb, " for %d minutes", mins);
  buf_printf(body, "%s*Silent SNS topic*\nNo message from ", s->mention);
  put_mrkdwn(body, topic ? topic : "?");
  buf_printf(body, " for %d minutes (last at ", mins);
  put_mrkdwn(body, jstr(p, "lastMessageAt") ? jstr(p, "lastMessageAt") : "?");
  buf_appends(body, ").");
}
/* The message of a row that is not an event: an alert (alerts.h). */
static char *other_message(const slack *s, const cJSON *p, const char *kind) {
  static const struct {
    const char *kind;
    void (*word)(const slack *s, const cJSON *p, buf *fb, buf *body);
  } words[] = {{"monitor", word_monitor},
               {"dnsbl", word_dnsbl},
               {"enforcement", word_enforcement},
               {"unsubscribe", word_unsubscribe}};
  void (*word)(const slack *, const cJSON *, buf *, buf *) = word_silence;
  for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
    if (strcmp(kind, words[i].kind) == 0) word = words[i].word;
  buf fb, body;
  buf_init(&fb, 4096);
  buf_init(&body, 8192);
  word(s, p, &fb, &body);
  char *out = message(fb.data ? fb.data : "", body.data ? body.data : "", NULL);
  buf_free(&fb);
  buf_free(&body);
  return out;
}

static void put_top(buf *b, struct tally *t, int nt, const char *title) {
  if (!nt) return;
  qsort(t, (size_t)nt, sizeof *t, tally_cmp);
  buf_printf(b, "\n*%s:* ", title);
  for (int i = 0; i < nt && i < 5; i++) {
    if (i) buf_appends(b, ", ");
    put_mrkdwn(b, t[i].name);
    buf_printf(b, " (%d)", t[i].n);
  }
}

/* The digest of d; total (>= d->total) counts also events beyond what d
 * breaks down. */
static char *digest_message(const slack *s, struct digest *d, int64_t total) {
  buf fb, body;
  buf_init(&fb, 4096);
  buf_init(&body, 16384);
  if (total < d->total) total = d->total;
  buf_printf(&fb, "%s%lld bounces and complaints since the last message", s->mention,
             (long long)total);
  buf_printf(&body,
             "%s*%lld bounces and complaints* arrived faster than %d a minute; this digest "
             "covers them all.",
             s->mention, (long long)total, s->max_per_minute);
  if (total > d->total) buf_printf(&body, " Breakdown of the latest %lld:", (long long)d->total);
  put_top(&body, d->types, d->nty, "By type");
  put_top(&body, d->domains, d->nd, "Top recipient domains");
  put_top(&body, d->sources, d->ns, "Top sources");
  if (s->public_url) {
    buf_printf(&body, "\n<%s/#/events?type=Bounce", s->public_url);
    if (d->first[0]) {
      buf_appends(&body, "&since=");
      put_urlpart(&body, d->first);
    }
    buf_appends(&body, "|Open the bounces in seslog>");
  }
  char *out = message(fb.data ? fb.data : "", body.data ? body.data : "", NULL);
  buf_free(&fb);
  buf_free(&body);
  return out;
}

/* ---- delivery ---------------------------------------------------------- */

static void finish(slack *s, enum outbox_verdict sent_verdict, int64_t retry_after_ms,
                   const char *error) {
  for (size_t i = 0; i < s->n; i++)
    if (s->verdicts[i] == OUTBOX_OK) s->verdicts[i] = sent_verdict;
  outbox *box = s->box;
  outbox_item **items = s->items;
  size_t n = s->n;
  enum outbox_verdict *v = s->verdicts;
  s->verdicts = NULL;
  s->items = NULL;
  outbox_delivered(box, s->sink, items, n, v, retry_after_ms, error);
  free(v);
}

static void on_posted(void *ud, const outbound_result *res) {
  slack *s = ud;
  int64_t through = s->digest_through;
  s->digest_through = 0;
  if (res->rc == 0 && res->status >= 200 && res->status < 300) {
    outbox *box = s->box;
    int sink = s->sink;
    finish(s, OUTBOX_OK, 0, NULL);
    /* The digest spoke for every row up to `through`, also those beyond
     * this batch and those still only in the database. */
    if (through) outbox_ack_through(box, sink, through, OUTBOX_KIND_EVENT);
    return;
  }
  char err[200];
  int64_t retry_ms = 0;
  enum outbox_verdict v = OUTBOX_RETRY;
  if (res->rc) {
    snprintf(err, sizeof err, "Slack could not be reached: %s", res->error);
  } else {
    /* Slack's error bodies are short words ("no_service", "invalid_payload"). */
    char word[64] = "";
    size_t k = 0;
    for (size_t i = 0; i < res->body_len && k < sizeof word - 1; i++) {
      char c = res->body[i];
      if ((c >= 'a' && c <= 'z') || c == '_' || (c >= '0' && c <= '9'))
        word[k++] = c;
      else if (k)
        break;
    }
    word[k] = 0;
    snprintf(err, sizeof err, "Slack answered HTTP %ld%s%s", res->status, k ? ": " : "", word);
    if (res->status == 429) {
      long secs = res->retry_after ? strtol(res->retry_after, NULL, 10) : 0;
      retry_ms = (secs > 0 && secs < 3600 ? secs : 30) * 1000;
      /* The limit is the webhook's, not the message's: hold back all. */
      s->blocked_until = util_now_ms() + retry_ms;
    } else if (res->status >= 400 && res->status < 500 && res->status != 408) {
      v = OUTBOX_DEAD;
    }
  }
  log_kv(LOG_WARN, "slack delivery failed", "error", err, NULL);
  finish(s, v, retry_ms, err);
}

static void post(slack *s, char *body) {
  static const char *const headers[] = {"Content-Type: application/json", NULL};
  struct outbound_req req = {.method = "POST",
                             .url = s->url,
                             .headers = headers,
                             .body = body,
                             .body_len = strlen(body),
                             .timeout_ms = 10000,
                             .max_body = 64 * 1024};
  int rc = outbound_request(s->ob, &req, on_posted, s);
  free(body);
  if (rc) {
    outbound_result res = {.rc = rc, .error = sl_strerror(rc), .body = ""};
    on_posted(s, &res);
  }
}

/* The digest of the batch's event and summary rows (their verdicts LATER
 * until now, OK from now). A digest speaks for the rows it was handed.
 * Only when the backlog is larger than a batch (rows beyond memory,
 * thousands a minute) does it speak for every event row committed so far,
 * acknowledged in one statement after Slack took it. */
static char *digest_of_batch(slack *s, outbox *box, int sink, cJSON **parsed, size_t n) {
  struct digest *d = calloc(1, sizeof *d);
  if (!d) return NULL;
  size_t rows = 0;
  for (size_t i = 0; i < n; i++) {
    if (s->verdicts[i] != OUTBOX_LATER) continue;
    const char *kind = jstr(parsed[i], "kind");
    if (strcmp(kind, OUTBOX_KIND_SUMMARY) == 0)
      digest_add_summary(d, parsed[i]);
    else
      digest_add_event(d, parsed[i]);
    s->verdicts[i] = OUTBOX_OK;
    rows++;
  }
  struct outbox_stats st;
  outbox_stats(box, sink, &st);
  int backlog = st.pending > (int64_t)rows + (int64_t)slack_sink(s).batch_max;
  /* beyond the batch: event rows, an event each */
  int64_t total = backlog ? d->total + st.pending - (int64_t)rows : d->total;
  if (backlog) s->digest_through = outbox_committed_upto(box, sink);
  char *body = digest_message(s, d, total);
  free(d);
  return body;
}

static void deliver(void *ud, outbox *box, int sink, outbox_item **items, size_t n) {
  slack *s = ud;
  s->box = box;
  s->sink = sink;
  s->items = items;
  s->n = n;
  s->verdicts = calloc(n, sizeof *s->verdicts);
  if (!s->verdicts) {
    enum outbox_verdict later[1024]; /* n <= batch_max <= 1024 */
    for (size_t i = 0; i < n; i++) later[i] = OUTBOX_LATER;
    s->items = NULL;
    outbox_delivered(box, sink, items, n, later, 1000, "out of memory");
    return;
  }
  int64_t now = util_now_ms();
  if (now < s->blocked_until) {
    finish(s, OUTBOX_LATER, s->blocked_until - now, NULL);
    return;
  }
  if (now / 60000 != s->minute) {
    s->minute = now / 60000;
    s->sent_in_minute = 0;
    s->digest_in_minute = 0;
  }
  int64_t to_next_minute = 60000 - now % 60000 + 50;
  cJSON **parsed = calloc(n, sizeof *parsed);
  if (!parsed) {
    finish(s, OUTBOX_LATER, 1000, "out of memory");
    return;
  }
  size_t n_events = 0, n_summaries = 0;
  ssize_t other = -1; /* first alert row: always sent alone, never digested */
  for (size_t i = 0; i < n; i++) {
    parsed[i] = cJSON_Parse(items[i]->payload);
    const char *kind = parsed[i] ? jstr(parsed[i], "kind") : NULL;
    if (!kind) {
      s->verdicts[i] = OUTBOX_DEAD; /* unreadable: can never be sent */
      continue;
    }
    s->verdicts[i] = OUTBOX_LATER;
    if (strcmp(kind, "event") == 0)
      n_events++;
    else if (strcmp(kind, OUTBOX_KIND_SUMMARY) == 0)
      n_summaries++;
    else if (other < 0)
      other = (ssize_t)i;
  }
  char *body = NULL;
  if (other >= 0) {
    body = other_message(s, parsed[other], jstr(parsed[other], "kind"));
    s->verdicts[other] = OUTBOX_OK;
  } else if (n_events && !n_summaries && s->sent_in_minute + (int)n_events <= s->max_per_minute) {
    for (size_t i = 0; i < n && !body; i++)
      if (s->verdicts[i] == OUTBOX_LATER) {
        body = event_message(s, cJSON_GetObjectItemCaseSensitive(parsed[i], "event"));
        s->verdicts[i] = OUTBOX_OK;
      }
    s->sent_in_minute++;
  } else if ((n_events || n_summaries) && !s->digest_in_minute) {
    body = digest_of_batch(s, box, sink, parsed, n);
    s->digest_in_minute = 1;
    s->sent_in_minute = s->max_per_minute;
  }
  for (size_t i = 0; i < n; i++) cJSON_Delete(parsed[i]);
  free(parsed);
  if (!body) {
    /* Nothing may go out now: wait for the next minute. */
    finish(s, OUTBOX_LATER, to_next_minute, NULL);
    return;
  }
  post(s, body);
}

/* The sink's alert_payload: the alert as the JSON that deliver words. */
static char *alert_payload(void *ud, const struct alert *a) {
  (void)ud;
  switch (a->kind) {
    case ALERT_MONITOR:
      return monitor_payload(a->subject, a->from, a->to, a->value, a->threshold, a->window);
    case ALERT_SILENCE: return silence_payload(a->subject, a->last_ms, a->silent_ms);
    case ALERT_UNSUBSCRIBE: return unsubscribe_payload(a->subject);
    case ALERT_ENFORCEMENT: return enforcement_payload(a->from, a->to, a->flag);
    case ALERT_DNSBL: return dnsbl_payload(a->subject, a->zone, a->flag, a->answers, a->reason);
  }
  return NULL;
}

struct outbox_sink slack_sink(slack *s) {
  return (struct outbox_sink){.name = "slack",
                              .batch_max = 1000,
                              .max_attempts = 50,
                              .max_age_ms = 2LL * 86400 * 1000,
                              .payload = event_payload,
                              .deliver = deliver,
                              .alert_payload = alert_payload,
                              .per_minute = s->max_per_minute,
                              .summary_add = summary_add,
                              .summary_payload = summary_payload,
                              .summary_free = summary_free,
                              .ud = s};
}
