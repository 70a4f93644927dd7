/* api_admin.h - the server's own endpoints: GET /healthz,
 * /api/diagnostics, /api/subscriptions, /api/sources and /metrics. Each
 * handler's ctx is the struct router (router.h). */
#ifndef SESLOG_API_ADMIN_H
#define SESLOG_API_ADMIN_H

#include "http.h"

void api_admin_healthz(void *ctx, http_request *req, const char *tail);
void api_admin_diagnostics(void *ctx, http_request *req, const char *tail);
void api_admin_subscriptions(void *ctx, http_request *req, const char *tail);
void api_admin_sources(void *ctx, http_request *req, const char *tail);
void api_admin_metrics(void *ctx, http_request *req, const char *tail);

#endif
