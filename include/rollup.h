/* rollup.h - the grouped-count rollups, kept by the writer in C.
 *
 * GET /api/events/counts and `seslog query --group-by` answer whole hours
 * and days from rollup tables (schema versions 11 and 17): events per hour,
 * type, bounce type, subtype and sender (rollup_type_hour) and per
 * normalized diagnostic (rollup_diagnostic_hour); affected recipients per
 * day, type, domain and bounce type (rollup_domain_day) and per domain
 * over every type, per day and per hour (rollup_recipient_day,
 * rollup_recipient_hour). The writer adds each stored event to a batch
 * (rollup_add), which sums it per key in memory and writes each key once
 * (rollup_flush) inside the events' transaction: the rollups always equal
 * a count over the events. Deletes are followed by triggers. */
#ifndef SESLOG_ROLLUP_H
#define SESLOG_ROLLUP_H

#include "ses.h"

struct sqlite3;

typedef struct rollup_batch rollup_batch;

/* Makes db fit to delete events with the rollups kept: registers
 * seslog_diag and creates the TEMP trigger that takes a deleted event out
 * of rollup_diagnostic_hour (a persistent trigger could not call a
 * function only seslog has). Any connection that deletes events calls it.
 * Returns 0 or SL_EDB. */
int rollup_attach(struct sqlite3 *db);

/* A batch of sums for the writer's connection db (migrated to version 17;
 * rollup_attach is called on it). Returns 0 and *out, or SL_EDB / SL_ENOMEM
 * with one sentence in err. */
int rollup_open(struct sqlite3 *db, rollup_batch **out, char *err, size_t errlen);

/* Adds the stored event e to the sums (writing them first when a table of
 * sums is full). Returns 0, or SL_EDB / SL_ENOMEM: roll the batch back. */
int rollup_add(rollup_batch *b, const ses_event *e);

/* Writes the sums and empties them: call it before the commit. Returns 0,
 * or SL_EDB: roll the batch back. */
int rollup_flush(rollup_batch *b);

/* Forgets the sums not written (at the start of a transaction, so a rolled
 * back batch leaves nothing behind). */
void rollup_reset(rollup_batch *b);

void rollup_close(rollup_batch *b);

#endif
