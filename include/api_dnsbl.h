/* api_dnsbl.h - the DNSBL endpoints: GET /api/dnsbl (the states and
 * recent changes) and POST /api/dnsbl/check (start a round now). */
#ifndef SESLOG_API_DNSBL_H
#define SESLOG_API_DNSBL_H

#include "http.h"

/* GET /api/dnsbl; ctx is the dnsbl. */
void api_dnsbl_get(void *ctx, http_request *req, const char *tail);
/* POST /api/dnsbl/check: 202, or 409 when nothing is watched. */
void api_dnsbl_check(void *ctx, http_request *req, const char *tail);

#endif
