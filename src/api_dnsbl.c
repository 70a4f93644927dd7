/* api_dnsbl.c - GET /api/dnsbl and POST /api/dnsbl/check, answered on the
 * loop from the DNSBL watch's memory. */
#include "api_dnsbl.h"

#include "dnsbl.h"
#include "util.h"

void api_dnsbl_get(void *ctx, http_request *req, const char *tail) {
  (void)tail;
  buf b;
  buf_init(&b, 16 << 20);
  dnsbl_json(ctx, &b);
  http_respond_buf(req, 200, "application/json", NULL, &b);
  buf_free(&b);
}

void api_dnsbl_check(void *ctx, http_request *req, const char *tail) {
  (void)tail;
  int rc = dnsbl_check_now(ctx);
  if (rc < 0) {
    http_respond_error(req, 409, "dnsbl_disabled",
                       "Nothing is watched: start seslog with --dnsbl-ip or --dnsbl-domain.");
    return;
  }
  http_respond_json(req, 202, rc ? "{\"status\":\"running\"}" : "{\"status\":\"started\"}");
}
