/* twin.h - one event stored twice in two shapes: a DynamoDB item and the
 * SES JSON it was made from.
 *
 * The store knows an event again by (messageId, SHA-256 of its SES JSON)
 * whatever wraps it. A DynamoDB item of the original pipeline keeps only
 * columns, so the SES JSON seslog rebuilds from it (ses_from_dynamodb_item)
 * never hashes like the real one: the same event imported from a DynamoDB
 * export and from the SES archive would be stored twice. A twin is found
 * among the rows of the same messageId and notificationType where exactly
 * one of the two was rebuilt from an item (its mail object has neither
 * sendingAccountId nor sourceArn, which SES always writes, and its type's
 * timestamp is mail.timestamp, the item's timeStamp), and they are the same
 * notification: the same SNS Timestamp (timeStamp), or the same SNS
 * MessageId, or, for the types an address receives at most once per mail
 * (Send, Delivery, Bounce, Complaint, Reject), a shared recipient within
 * an hour (a bare SES event's time is its own, an item's the SNS one). */
#ifndef SESLOG_TWIN_H
#define SESLOG_TWIN_H

#include "ses.h"

struct sqlite3;

typedef struct twin_finder twin_finder;

/* The statement that finds twins on the writer's connection db. Returns 0
 * and *out, or SL_EDB / SL_ENOMEM with one sentence in err. */
int twin_open(struct sqlite3 *db, twin_finder **out, char *err, size_t errlen);

/* Sets *found to 1 when e's twin in the other shape is stored, else 0.
 * Returns 0, or SL_EDB / SL_ENOMEM. */
int twin_find(twin_finder *t, const ses_event *e, int *found);

void twin_close(twin_finder *t);

#endif
