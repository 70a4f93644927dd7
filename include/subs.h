/* subs.h - the SNS topics seen, in memory on the loop thread, for
 * GET /api/subscriptions: state (pending, confirmed, unsubscribed), the
 * SubscriptionArn, when confirmed, first and last message, accepted and
 * rejected counts. The database holds the same (table subscriptions,
 * written by subs_hook in each event's transaction); this mirror is
 * loaded from it at start and kept current as results come back, so the
 * endpoint never reads the database. Rejected counts live only here
 * (since start): refused requests never cause a write. */
#ifndef SESLOG_SUBS_H
#define SESLOG_SUBS_H

#include <stdint.h>

#include "store.h"
#include "util.h"

typedef struct subs subs;

/* max bounds the topics kept; past it new topics are not tracked. */
int subs_new(int max, subs **out);
void subs_free(subs *s);

/* The store hook that writes the subscriptions table: the topic state
 * changes and messages of each batch's requests (store_req's topic_arn,
 * sub_state, sub_arn, counts_as_message, at_ms), in its transaction. */
struct store_hook subs_hook(subs *s);

/* Loads the rows of the subscriptions table (before store_start). */
int subs_load(subs *s, store *st);
/* The same over a read-only connection (serve --read-only has no store).
 * Returns 0 or SL_EDB. */
struct sqlite3;
int subs_load_db(subs *s, struct sqlite3 *db);

/* A message of topic was accepted (committed or ignored) at at_ms. */
void subs_note_accepted(subs *s, const char *topic, int64_t at_ms);
/* A request naming topic was refused; counted only for known topics (an
 * attacker must not grow the table). */
void subs_note_rejected(subs *s, const char *topic);
/* A state change (state is static text); arn may be NULL. */
void subs_set_state(subs *s, const char *topic, const char *state, const char *arn, int64_t at_ms);

/* Calls fn for each topic: its ARN, state and last message time (0 if
 * none). */
void subs_each(const subs *s,
               void (*fn)(void *ud, const char *topic, const char *state, int64_t last_ms),
               void *ud);

/* {"items":[{topicArn, state, subscriptionArn, confirmedAt, firstMessageAt,
 * lastMessageAt, accepted, rejected}...]} into b. */
int subs_json(const subs *s, buf *b);

#endif
