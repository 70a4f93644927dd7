/* topics.h - each SNS topic's ARN stored once (schema version 22).
 *
 * An event row names its topic by topicId, the id of the ARN's row in
 * topics, instead of repeating the ARN. The writer asks for the id of
 * every event's ARN: the ids are cached, so a known topic costs no SQL;
 * a new topic's row is written on the writer's connection, in the
 * transaction of the event that brings it. Until that transaction
 * commits, the new id is only pending: a rollback forgets it (the row is
 * gone, and another writer may give the id to another ARN). Rows of
 * topics are never deleted, so a committed id stays right for good. */
#ifndef SESLOG_TOPICS_H
#define SESLOG_TOPICS_H

#include <stddef.h>
#include <stdint.h>

struct sqlite3;

typedef struct topic_ids topic_ids;

/* The cache of the writer's connection db. Returns 0 and *out, or
 * SL_EDB / SL_ENOMEM with one sentence in err. */
int topics_open(struct sqlite3 *db, topic_ids **out, char *err, size_t errlen);

/* Sets *id to the id of arn in topics, inserting its row when it has
 * none. Call inside the writer's transaction, and topics_end after it.
 * Returns 0, or SL_EDB / SL_ENOMEM (*id untouched). */
int topics_id(topic_ids *t, const char *arn, int64_t *id);

/* The writer's transaction ended: committed (1) keeps the ids it added,
 * else (0) they are forgotten. */
void topics_end(topic_ids *t, int committed);

void topics_close(topic_ids *t);

#endif
