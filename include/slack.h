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

/* The sink definition to register with outbox_add_sink; it takes the
 * alerts (alerts_send) and words them. */
struct outbox_sink slack_sink(slack *s);

#endif
