/* sns.h - the SNS HTTP(S) delivery envelope: parsing, the canonical string
 * that SNS signs, the certificate URL rule, and signature verification.
 *
 * Pure functions: no I/O, no globals. Fetching and caching certificates is
 * the job of certcache.c; this file only judges what it is given. */
#ifndef SESLOG_SNS_H
#define SESLOG_SNS_H

#include <stddef.h>
#include <stdint.h>

enum sns_type { SNS_NOTIFICATION = 1, SNS_SUBSCRIPTION_CONFIRMATION, SNS_UNSUBSCRIBE_CONFIRMATION };

/* One parsed envelope. Every string is owned by the struct (NUL-terminated,
 * JSON escapes already decoded); fields absent from the JSON are NULL. */
typedef struct sns_msg {
  enum sns_type type;
  char *type_str;          /* "Notification", ... */
  char *message_id;        /* MessageId */
  char *topic_arn;         /* TopicArn */
  char *subject;           /* Subject; NULL when absent or JSON null */
  char *message;           /* Message */
  size_t message_len;      /* bytes in message (it may hold \u0000) */
  char *timestamp;         /* Timestamp, as sent */
  int64_t timestamp_ms;    /* Timestamp parsed */
  char *signature_version; /* "1" or "2" */
  char *signature;         /* base64 text */
  char *signing_cert_url;  /* SigningCertURL */
  char *subscribe_url;     /* SubscribeURL (confirmations) */
  char *unsubscribe_url;   /* UnsubscribeURL (notifications) */
  char *token;             /* Token (confirmations) */
} sns_msg;

/* Parses an SNS envelope. On success *out is a new sns_msg the caller frees
 * with sns_msg_free. On failure returns SL_EJSON (not a JSON object),
 * SL_EFIELD (a required field for the Type is missing or not a string; *why
 * names it) or SL_ETYPE (unknown Type); *why, when not NULL, is set to a
 * static sentence for a person. */
int sns_parse(const char *body, size_t len, sns_msg **out, const char **why);
void sns_msg_free(sns_msg *m);

/* Builds the string SNS signs, per the SNS documentation: for Notification
 * the keys Message, MessageId, Subject (only when present), Timestamp,
 * TopicArn, Type; for the confirmations Message, MessageId, SubscribeURL,
 * Timestamp, Token, TopicArn, Type; each as "Key\nvalue\n". *out is
 * malloc'ed (caller frees), *outlen its length. Returns 0, SL_EFIELD or
 * SL_ENOMEM. */
int sns_canonical(const sns_msg *m, char **out, size_t *outlen);

/* The host rule for SigningCertURL, SubscribeURL and UnsubscribeURL:
 * scheme https, host exactly "sns.<region>.amazonaws.com" or
 * "sns.<region>.amazonaws.com.cn" (region: lower-case letters, digits and
 * dashes), no user info, no port, no fragment. When cert is 1 the path must
 * be "/SimpleNotificationService-<hex>.pem" with no query; when 0 any path
 * and query are allowed. Returns 0 or SL_ECERTURL. */
int sns_url_allowed(const char *url, int cert);

/* The file name a certificate is stored under: the last path segment of a
 * SigningCertURL that passed sns_url_allowed(url, 1). Points into url. */
const char *sns_cert_file_name(const char *url);

/* A parsed signing certificate: its public key and validity. */
typedef struct sns_cert sns_cert;

/* Parses a PEM certificate. Returns 0 and a new *out (free with
 * sns_cert_free), or SL_ECERT. */
int sns_cert_parse(const char *pem, size_t len, sns_cert **out);
/* Takes one more reference to c (any thread): a verification on the thread
 * pool holds one, so the cache may forget c meanwhile. Returns c. */
sns_cert *sns_cert_ref(const sns_cert *c);
/* Drops a reference (any thread); the last one frees c. */
void sns_cert_free(sns_cert *c);
/* Validity in ms since the epoch. */
int64_t sns_cert_not_before(const sns_cert *c);
int64_t sns_cert_not_after(const sns_cert *c);

/* Verifies m against cert: SignatureVersion "1" is SHA1withRSA, "2"
 * SHA256withRSA, over sns_canonical(m); the Timestamp must lie inside the
 * certificate's validity. Returns 0, SL_ESIGVER, SL_EBASE64, SL_ESIG,
 * SL_ETIME or SL_ENOMEM. Thread-safe: cert is only read. */
int sns_verify(const sns_msg *m, const sns_cert *cert);

/* For tests, simulate and bench: signs m in place (fills signature using
 * m->signature_version, "1" or "2") with a PEM private key. Returns 0 or a
 * negative code. */
int sns_sign(sns_msg *m, const char *key_pem, size_t key_len);

/* sns_sign with a key already read (an OpenSSL EVP_PKEY, RSA), for callers
 * that sign many messages: reading a PEM key costs more than signing. */
struct evp_pkey_st;
int sns_sign_key(sns_msg *m, struct evp_pkey_st *key);

/* Serializes m as the JSON body SNS would post (keys in SNS's order).
 * Returns a malloc'ed string or NULL. */
char *sns_to_json(const sns_msg *m);

#endif
