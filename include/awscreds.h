/* awscreds.h - AWS credentials, found as the AWS tools find them, for every
 * signed request seslog makes (SQS, DynamoDB).
 *
 * The first source that has credentials wins, in the AWS SDKs' order:
 *   1. the environment: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
 *      AWS_SESSION_TOKEN;
 *   2. the shared credentials file (AWS_SHARED_CREDENTIALS_FILE, else
 *      ~/.aws/credentials), then the config file (AWS_CONFIG_FILE, else
 *      ~/.aws/config), profile AWS_PROFILE (else "default");
 *   3. the container credentials endpoint: AWS_CONTAINER_CREDENTIALS_FULL_URI,
 *      or AWS_CONTAINER_CREDENTIALS_RELATIVE_URI under http://169.254.170.2,
 *      with AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE or
 *      AWS_CONTAINER_AUTHORIZATION_TOKEN as the Authorization header;
 *   4. EC2 instance metadata, IMDSv2: a session token from
 *      PUT /latest/api/token, then the role's credentials; the address
 *      http://169.254.169.254 unless AWS_EC2_METADATA_SERVICE_ENDPOINT
 *      says otherwise; off with AWS_EC2_METADATA_DISABLED=true.
 * Sources 3 and 4 give temporary credentials: they are fetched on the loop
 * through outbound and fetched again five minutes before they expire (or
 * halfway, for shorter lives); a failed fetch is retried with backoff while
 * the credentials in hand stay in use until they expire.
 *
 * Secrets never appear in a log line or an error text. */
#ifndef SESLOG_AWSCREDS_H
#define SESLOG_AWSCREDS_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "outbound.h"

typedef struct awscreds awscreds;

/* Chooses the source from the environment and the files. For a static
 * source (environment, files) the credentials are ready on return; for a
 * fetched one the first fetch starts now. ob and loop are borrowed and
 * must outlive the provider. Returns 0; SL_EINVAL with one sentence in err
 * when AWS_PROFILE names a profile without keys, a token file cannot be
 * read or an endpoint variable is not a usable URL; SL_ENOMEM. */
int awscreds_new(uv_loop_t *loop, outbound *ob, awscreds **out, char *err, size_t errlen);

/* The credentials in hand, for a request about to start: userpwd is
 * "KEY:SECRET" (for CURLOPT_USERPWD with CURLOPT_AWS_SIGV4), token_header
 * "x-amz-security-token: ..." or NULL; both valid until the next loop
 * iteration. Returns 0, or SL_EBUSY while none are in hand yet (the first
 * fetch under way, or every fetch failing: awscreds_status says why). */
int awscreds_current(awscreds *c, const char **userpwd, const char **token_header);

/* Where the credentials come from: "environment", "shared-credentials-file",
 * "config-file", "container", "instance-metadata" or "none". */
const char *awscreds_source(const awscreds *c);

/* The access key id in hand (not a secret; for logs and the API), or "". */
const char *awscreds_access_key_id(const awscreds *c);

/* 0 when credentials are in hand; else the last fetch error in why. */
int awscreds_status(const awscreds *c, char *why, size_t n);

/* Stops the refresh timer; a fetch in flight ends with outbound_close. */
void awscreds_close(awscreds *c);

/* Frees the provider (after its handles closed: after the loop ran). */
void awscreds_free(awscreds *c);

#endif
