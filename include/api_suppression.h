/* api_suppression.h - the suppression list's endpoints: GET
 * /api/suppression, POST /api/suppression/check and
 * GET|HEAD|PUT|DELETE /api/suppression/{address}. Reads run on the
 * readpool, writes on the store's writer; the loop touches no SQLite. */
#ifndef SESLOG_API_SUPPRESSION_H
#define SESLOG_API_SUPPRESSION_H

#include <stdint.h>

#include "http.h"
#include "readpool.h"
#include "store.h"
#include "suppression.h"

/* The endpoints' context (a route's ud). */
struct api_suppression {
  suppression *s;     /* the rules and the list */
  store *st;          /* writes; NULL: --read-only */
  readpool *rp;       /* reads; NULL: the list is unavailable (503) */
  int64_t timeout_ms; /* the readpool's time limit, for messages */
};

/* GET /api/suppression */
void api_suppression_list(void *ctx, http_request *req, const char *tail);
/* POST /api/suppression/check */
void api_suppression_check(void *ctx, http_request *req, const char *tail);
/* Any method on /api/suppression/{address} (tail the address): checks
 * the address before the method, GET, HEAD, PUT and DELETE answer. */
void api_suppression_entry(void *ctx, http_request *req, const char *tail);

#endif
