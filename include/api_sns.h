/* api_sns.h - SNS envelopes that did not come over HTTP (an SQS queue
 * subscribed to the topic) handed to ingest exactly as POST /sns hands
 * them: the same checks, the same answers. The caller sees the answer as
 * a status and its fields, never an HTTP request. */
#ifndef SESLOG_API_SNS_H
#define SESLOG_API_SNS_H

#include <stddef.h>

#include "ingest.h"

/* ingest's answer to one envelope. */
struct api_sns_answer {
  int status;          /* the HTTP status POST /sns would answer */
  const char *outcome; /* 200: "stored", "duplicate", "ignored", ... ("" unknown) */
  const char *code;    /* else the error's code, or NULL */
  const char *message; /* ...and its sentence, or NULL */
};

/* Called once on the loop, inside ingest's callback chain (the strings
 * are valid during the call only). */
typedef void (*api_sns_done)(void *ud, const struct api_sns_answer *a);

typedef struct api_sns_envelope api_sns_envelope;

/* Hands body (len bytes) to in as a POST /sns from remote, with the
 * Authorization header value auth (or NULL). Returns 0 with *out (done
 * is called later, or already was), SL_ETOOBIG when body is over POST
 * /sns's limit, or SL_ENOMEM; done is not called on failure. Free *out
 * with api_sns_free once done has been called. */
int api_sns_submit(ingest *in, const char *body, size_t len, const char *remote, const char *auth,
                   api_sns_done done, void *ud, api_sns_envelope **out);

/* Frees an envelope (NULL is a no-op). */
void api_sns_free(api_sns_envelope *e);

#endif
