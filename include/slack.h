/* slack.h - the Slack sink of the outbox: an incoming webhook, one message
 * per bounce or complaint (Block Kit with a plain-text fallback), or one
 * digest a minute when more arrive than --slack-max-per-minute; monitor
 * state changes, unsubscribes and silent topics are announced too. Slack's
 * 429 Retry-After is honoured; 5xx and network errors are retried by the
 * outbox; other 4xx answers are final (dead). The webhook URL is a secret
 * and never logged. */
#ifndef SESLOG_SLACK_H
#define SESLOG_SLACK_H

#include "outbound.h"
#include "outbox.h"

struct slack_opts {
  const char *webhook_url; /* required */
  const char *public_url;  /* base URL of the web UI for links, or NULL */
  const char *mention;     /* "here", "channel" or "none" */
  int max_per_minute;      /* individual messages a minute before digests */
};

typedef struct slack slack;

int slack_new(outbound *ob, const struct slack_opts *opts, slack **out);
void slack_free(slack *s);

/* The sink definition to register with outbox_add_sink. */
struct outbox_sink slack_sink(slack *s);

/* Payloads for outbox_enqueue (malloc'ed JSON; NULL on no memory). */
char *slack_monitor_payload(const char *monitor, const char *from, const char *to, double value,
                            double threshold, const char *window);
char *slack_unsubscribe_payload(const char *topic_arn);
/* A change of the SES account's enforcement status (from "" when it was
 * never seen); sending_enabled 0, 1 or -1 unknown. Mentions unless the new
 * status is HEALTHY. */
char *slack_enforcement_payload(const char *from, const char *to, int sending_enabled);
char *slack_silence_payload(const char *topic_arn, int64_t last_message_ms, int64_t silent_ms);
/* A DNSBL change: listed 1 (answers "127.0.0.2 ...", reason may be NULL)
 * or 0 (delisted). */
char *slack_dnsbl_payload(const char *target, const char *zone, int listed, const char *answers,
                          const char *reason);

#endif
