/* sns.c - the SNS HTTP(S) delivery envelope: parsing, the canonical string
 * SNS signs, the certificate URL rule and signature verification.
 *
 * Everything here is a pure function of its arguments: no globals, no I/O,
 * so sns_verify can run on any thread. Certificates are fetched and cached
 * by certcache.c; this file only judges what it is given.
 *
 * Choices worth knowing (all stricter than "parse what cJSON gives us"):
 *  - A body holding a NUL (a raw 0 byte or a \u0000 escape) is refused with
 *    SL_EJSON: cJSON decodes \u0000 but its strings end at the first NUL, so
 *    we could not verify, store or show such a value faithfully. Hence
 *    message_len is always strlen(message).
 *  - A known key given twice is refused (SL_EJSON): cJSON reads the first,
 *    other parsers (a browser showing the stored envelope) read the last.
 *  - Only Message may hold a line break. The canonical string is
 *    "Key\nvalue\n" without escaping, so a line break in, say, MessageId
 *    could carry a "\nSubject\n..." that was signed as a Subject: refusing
 *    them makes the canonical string unambiguous.
 *  - The region in a certificate URL must look like an AWS region
 *    (letters-...-digits, e.g. us-gov-west-1), not any [a-z0-9-]+ label:
 *    "sns.s3-external-1.amazonaws.com" is the S3 bucket "sns", which anyone
 *    could own, with a valid TLS certificate for *.amazonaws.com. */
#include "sns.h"

#include <cjson/cJSON.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "arena.h"
#include "error.h"
#include "util.h"

#define PKEY_SPARES 8 /* key contexts a certificate keeps per digest: the verifying threads */

struct sns_cert {
  EVP_PKEY *pkey;        /* the RSA public key (owned) */
  int64_t not_before_ms; /* validity start, ms since the epoch */
  int64_t not_after_ms;  /* validity end, ms since the epoch */
  /* Verification contexts made once with the key, SignatureVersion 1
   * (SHA1) and 2 (SHA256), and copied for each message: setting one up
   * (fetching the digest and the signature method, importing the key)
   * costs as much as a third of the verification. NULL: set up each time.
   * Only read after sns_cert_parse, so threads may share them. */
  EVP_MD_CTX *verify[2];
  /* Faster still: the digests fetched once, and key contexts set up for
   * EVP_PKEY_verify of a digest, SHA1 and SHA256, kept between messages.
   * A context serves one thread at a time: a verification takes one from
   * its row (atomic exchange with NULL) or sets one up, and puts it back in
   * an empty slot after (or frees it). NULL digests: the path above. */
  EVP_MD *md[2];
  _Atomic(EVP_PKEY_CTX *) spare[2][PKEY_SPARES];
  atomic_int refs; /* holders: the cache, and each verification in flight */
};

/* The envelope keys we read, with the sentences sns_parse reports. */
enum {
  F_TYPE,
  F_MESSAGE_ID,
  F_TOPIC_ARN,
  F_SUBJECT,
  F_MESSAGE,
  F_TIMESTAMP,
  F_SIGNATURE_VERSION,
  F_SIGNATURE,
  F_SIGNING_CERT_URL,
  F_SUBSCRIBE_URL,
  F_UNSUBSCRIBE_URL,
  F_TOKEN,
  F_COUNT
};

struct field {
  const char *key;        /* the JSON key */
  const char *missing;    /* why, when absent */
  const char *not_string; /* why, when present with another JSON type */
  const char *newline;    /* why, when it holds a line break */
};

#define FIELD(k)                                                         \
  {                                                                      \
    k, "the envelope has no " k, "the envelope's " k " is not a string", \
        "the envelope's " k " contains a line break"                     \
  }

static const struct field fields[F_COUNT] = {
    [F_TYPE] = FIELD("Type"),
    [F_MESSAGE_ID] = FIELD("MessageId"),
    [F_TOPIC_ARN] = FIELD("TopicArn"),
    [F_SUBJECT] = FIELD("Subject"),
    [F_MESSAGE] = FIELD("Message"),
    [F_TIMESTAMP] = FIELD("Timestamp"),
    [F_SIGNATURE_VERSION] = FIELD("SignatureVersion"),
    [F_SIGNATURE] = FIELD("Signature"),
    [F_SIGNING_CERT_URL] = FIELD("SigningCertURL"),
    [F_SUBSCRIBE_URL] = FIELD("SubscribeURL"),
    [F_UNSUBSCRIBE_URL] = FIELD("UnsubscribeURL"),
    [F_TOKEN] = FIELD("Token"),
};

static const char *type_name(enum sns_type t) {
  switch (t) {
    case SNS_NOTIFICATION: return "Notification";
    case SNS_SUBSCRIPTION_CONFIRMATION: return "SubscriptionConfirmation";
    case SNS_UNSUBSCRIBE_CONFIRMATION: return "UnsubscribeConfirmation";
  }
  return NULL;
}

void sns_msg_free(sns_msg *m) {
  if (!m) return;
  free(m->type_str);
  free(m->message_id);
  free(m->topic_arn);
  free(m->subject);
  free(m->message);
  free(m->timestamp);
  free(m->signature_version);
  free(m->signature);
  free(m->signing_cert_url);
  free(m->subscribe_url);
  free(m->unsubscribe_url);
  free(m->token);
  free(m);
}

/* True when the JSON text holds a NUL: a raw 0 byte or a \u0000 escape.
 * Outside strings a backslash is a syntax error anyway, so pairing every
 * backslash with the character after it finds exactly the escapes: in a
 * run of backslashes the pairs are escaped backslashes, and the text
 * "\u0000" is an escape when an odd number of them end just before its
 * 'u'. Found with memmem, as the text is long and the escape rare. */
static int json_has_nul(const char *s, size_t n) {
  if (memchr(s, 0, n)) return 1;
  const char *end = s + n;
  for (const char *p = s; (p = memmem(p, (size_t)(end - p), "\\u0000", 6)) != NULL; p += 6) {
    size_t run = 1; /* backslashes ending at p */
    while ((size_t)(p - s) >= run && p[-(ptrdiff_t)run] == '\\') run++;
    if (run % 2) return 1;
  }
  return 0;
}

/* The envelope's members of the known keys, found in one pass: the first
 * of each key, and how many times it occurs. */
struct found {
  const cJSON *item[F_COUNT];
  int n[F_COUNT];
};

static void find_fields(const cJSON *root, struct found *fd) {
  memset(fd, 0, sizeof *fd);
  for (const cJSON *c = root->child; c; c = c->next) {
    if (!c->string) continue;
    for (int f = 0; f < F_COUNT; f++) {
      if (c->string[0] == fields[f].key[0] && strcmp(c->string, fields[f].key) == 0) {
        if (!fd->item[f]) fd->item[f] = c;
        fd->n[f]++;
        break;
      }
    }
  }
}

/* Reads one known key of the envelope. *out is a new copy of its string, or
 * NULL when absent or JSON null. Returns 0; SL_EJSON when the key is given
 * twice; SL_EFIELD when it has another JSON type or holds a line break (all
 * keys but Message); SL_ENOMEM. *why is set on failure. */
static int get_string(const struct found *fd, int f, char **out, const char **why) {
  const cJSON *item = fd->item[f];
  int n = fd->n[f];
  *out = NULL;
  if (n > 1) {
    *why = "the envelope has a key twice";
    return SL_EJSON;
  }
  if (!item || cJSON_IsNull(item)) return 0;
  if (!cJSON_IsString(item) || !item->valuestring) {
    *why = fields[f].not_string;
    return SL_EFIELD;
  }
  if (f != F_MESSAGE && strpbrk(item->valuestring, "\r\n")) {
    *why = fields[f].newline;
    return SL_EFIELD;
  }
  *out = util_strdup(item->valuestring);
  if (!*out) {
    *why = "out of memory";
    return SL_ENOMEM;
  }
  return 0;
}

/* True when the n bytes at s are JSON white space only: cJSON stops after
 * the first value, and anything else after it makes the body something
 * other than one JSON document. */
static int only_space(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!memchr(" \t\r\n", s[i], 4)) return 0;
  return 1;
}

/* Sets m->type from m->type_str. Returns 0, SL_EFIELD (no Type) or
 * SL_ETYPE (an unknown one), with *why. */
static int parse_type(sns_msg *m, const char **why) {
  static const enum sns_type types[] = {SNS_NOTIFICATION, SNS_SUBSCRIPTION_CONFIRMATION,
                                        SNS_UNSUBSCRIBE_CONFIRMATION};
  if (!m->type_str) {
    *why = fields[F_TYPE].missing;
    return SL_EFIELD;
  }
  for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
    if (strcmp(m->type_str, type_name(types[i])) == 0) {
      m->type = types[i];
      return 0;
    }
  }
  *why =
      "the envelope's Type is not Notification, SubscriptionConfirmation or "
      "UnsubscribeConfirmation";
  return SL_ETYPE;
}

/* sns_parse inside its arena scope. Checks, in order: JSON object, Type,
 * the fields every Type needs, the confirmation fields, the Timestamp. */
static int parse_envelope(const char *body, size_t len, sns_msg **out, const char **why) {
  if (json_has_nul(body, len)) {
    *why = "the envelope contains a NUL character";
    return SL_EJSON;
  }
  const char *end = NULL;
  cJSON *root = cJSON_ParseWithLengthOpts(body, len, &end, 0);
  if (!root) {
    *why = "the body is not JSON";
    return SL_EJSON;
  }
  int rc = SL_EJSON;
  sns_msg *m = NULL;
  if (!only_space(end, (size_t)(body + len - end))) {
    *why = "the body has text after its JSON value";
    goto fail;
  }
  if (!cJSON_IsObject(root)) {
    *why = "the body is not a JSON object";
    goto fail;
  }
  m = calloc(1, sizeof *m);
  if (!m) {
    *why = "out of memory";
    rc = SL_ENOMEM;
    goto fail;
  }
  char **dst[F_COUNT] = {
      [F_TYPE] = &m->type_str,
      [F_MESSAGE_ID] = &m->message_id,
      [F_TOPIC_ARN] = &m->topic_arn,
      [F_SUBJECT] = &m->subject,
      [F_MESSAGE] = &m->message,
      [F_TIMESTAMP] = &m->timestamp,
      [F_SIGNATURE_VERSION] = &m->signature_version,
      [F_SIGNATURE] = &m->signature,
      [F_SIGNING_CERT_URL] = &m->signing_cert_url,
      [F_SUBSCRIBE_URL] = &m->subscribe_url,
      [F_UNSUBSCRIBE_URL] = &m->unsubscribe_url,
      [F_TOKEN] = &m->token,
  };
  /* Type first, so an unknown Type is reported as such and not as a
   * missing field of some other Type. */
  struct found fd;
  find_fields(root, &fd);
  if ((rc = get_string(&fd, F_TYPE, dst[F_TYPE], why)) != 0) goto fail;
  if ((rc = parse_type(m, why)) != 0) goto fail;
  for (int f = 0; f < F_COUNT; f++) {
    if (f != F_TYPE && (rc = get_string(&fd, f, dst[f], why)) != 0) goto fail;
  }
  static const int required[] = {F_MESSAGE_ID,        F_TOPIC_ARN, F_MESSAGE,         F_TIMESTAMP,
                                 F_SIGNATURE_VERSION, F_SIGNATURE, F_SIGNING_CERT_URL};
  for (size_t i = 0; i < sizeof required / sizeof required[0]; i++) {
    if (!*dst[required[i]]) {
      *why = fields[required[i]].missing;
      rc = SL_EFIELD;
      goto fail;
    }
  }
  if (m->type != SNS_NOTIFICATION) {
    if (!m->token || !m->subscribe_url) {
      *why = fields[m->token ? F_SUBSCRIBE_URL : F_TOKEN].missing;
      rc = SL_EFIELD;
      goto fail;
    }
  }
  if (util_parse_iso8601(m->timestamp, &m->timestamp_ms) != 0) {
    *why = "the envelope's Timestamp is not an ISO-8601 time";
    rc = SL_EFIELD;
    goto fail;
  }
  m->message_len = strlen(m->message);
  cJSON_Delete(root);
  *out = m;
  return 0;

fail:
  sns_msg_free(m);
  cJSON_Delete(root);
  return rc;
}

/* Parses an SNS envelope (see sns.h). The tree lives in the thread's arena
 * (arena.h): it never leaves this call, the message's strings are copies. */
int sns_parse(const char *body, size_t len, sns_msg **out, const char **why) {
  const char *dummy;
  if (!why) why = &dummy;
  if (!body || !out) {
    *why = "no body";
    return SL_EINVAL;
  }
  arena_begin();
  int rc = parse_envelope(body, len, out, why);
  arena_end();
  return rc;
}

/* Builds the canonical string (see sns.h). The value of Type is the name of
 * m->type; a type_str that disagrees with it is SL_EFIELD. */
int sns_canonical(const sns_msg *m, char **out, size_t *outlen) {
  if (!m || !out || !outlen) return SL_EINVAL;
  const char *type = type_name(m->type);
  if (!type || (m->type_str && strcmp(m->type_str, type) != 0)) return SL_EFIELD;
  const char *keys[8], *vals[8];
  size_t n = 0;
#define KV(k, v)   \
  do {             \
    keys[n] = (k); \
    vals[n] = (v); \
    n++;           \
  } while (0)
  KV("Message", m->message);
  KV("MessageId", m->message_id);
  if (m->type == SNS_NOTIFICATION) {
    if (m->subject) KV("Subject", m->subject);
  } else {
    KV("SubscribeURL", m->subscribe_url);
  }
  KV("Timestamp", m->timestamp);
  if (m->type != SNS_NOTIFICATION) KV("Token", m->token);
  KV("TopicArn", m->topic_arn);
  KV("Type", type);
#undef KV
  size_t total = 1; /* the final NUL */
  size_t lens[8][2];
  for (size_t i = 0; i < n; i++) {
    if (!vals[i]) return SL_EFIELD;
    lens[i][0] = strlen(keys[i]);
    lens[i][1] = strlen(vals[i]);
    if (lens[i][1] > SIZE_MAX / 2 - total - lens[i][0]) return SL_ENOMEM;
    total += lens[i][0] + lens[i][1] + 2;
  }
  char *s = malloc(total);
  if (!s) return SL_ENOMEM;
  size_t at = 0;
  for (size_t i = 0; i < n; i++) {
    memcpy(s + at, keys[i], lens[i][0]);
    at += lens[i][0];
    s[at++] = '\n';
    memcpy(s + at, vals[i], lens[i][1]);
    at += lens[i][1];
    s[at++] = '\n';
  }
  s[at] = 0;
  *out = s;
  *outlen = at;
  return 0;
}

/* An AWS region name: letter groups joined by dashes, then a dash and a
 * number, at least three parts in all ("us-east-1", "us-gov-west-1",
 * "cn-north-1"). Rejects "s3-external-1", "compute-1" and the like. */
static int region_ok(const char *s, size_t n) {
  if (n == 0 || n > 40) return 0;
  size_t parts = 0, i = 0;
  while (i < n) {
    size_t start = i;
    while (i < n && s[i] != '-') i++;
    size_t plen = i - start;
    if (plen == 0) return 0; /* leading, trailing or double dash */
    int last = i == n;
    for (size_t k = start; k < i; k++) {
      char c = s[k];
      if (last ? !(c >= '0' && c <= '9') : !(c >= 'a' && c <= 'z')) return 0;
    }
    parts++;
    if (!last) {
      i++; /* the dash */
      if (i == n) return 0;
    }
  }
  return parts >= 3;
}

/* The host rule: exactly "sns.<region>.amazonaws.com" or
 * "sns.<region>.amazonaws.com.cn", lower case. Anything else in the host
 * part (user info, port, percent signs, a trailing dot, upper case) fails
 * the comparison. */
static int host_ok(const char *h, size_t n) {
  static const char pre[] = "sns.";
  static const char com[] = ".amazonaws.com";
  static const char cn[] = ".amazonaws.com.cn";
  size_t lpre = sizeof pre - 1;
  if (n <= lpre || memcmp(h, pre, lpre) != 0) return 0;
  size_t suffix;
  if (n > lpre + sizeof cn - 1 && memcmp(h + n - (sizeof cn - 1), cn, sizeof cn - 1) == 0) {
    suffix = sizeof cn - 1;
  } else if (n > lpre + sizeof com - 1 &&
             memcmp(h + n - (sizeof com - 1), com, sizeof com - 1) == 0) {
    suffix = sizeof com - 1;
  } else {
    return 0;
  }
  return region_ok(h + lpre, n - lpre - suffix);
}

/* Checks a URL against the host rule (see sns.h). Beyond the header: the
 * path and query of a SubscribeURL may hold only printable ASCII without
 * space, backslash or '#'; a certificate's hex is 1 to 128 lower-case
 * digits. */
int sns_url_allowed(const char *url, int cert) {
  static const char scheme[] = "https://";
  if (!url) return SL_ECERTURL;
  size_t ls = sizeof scheme - 1;
  if (strncasecmp(url, scheme, ls) != 0) return SL_ECERTURL;
  const char *host = url + ls;
  const char *path = strchr(host, '/');
  if (!path || !host_ok(host, (size_t)(path - host))) return SL_ECERTURL;
  if (cert) {
    static const char pre[] = "/SimpleNotificationService-";
    static const char ext[] = ".pem";
    size_t lp = sizeof pre - 1;
    if (strncmp(path, pre, lp) != 0) return SL_ECERTURL;
    const char *hex = path + lp;
    size_t nhex = strspn(hex, "0123456789abcdef");
    if (nhex == 0 || nhex > 128 || strcmp(hex + nhex, ext) != 0) return SL_ECERTURL;
    return 0;
  }
  for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
    if (*p <= 0x20 || *p >= 0x7f || *p == '\\' || *p == '#') return SL_ECERTURL;
  }
  return 0;
}

const char *sns_cert_file_name(const char *url) {
  if (!url) return NULL;
  const char *slash = strrchr(url, '/');
  return slash ? slash + 1 : url;
}

/* Days from 1970-01-01 to a civil date (Howard Hinnant's algorithm), so we
 * need neither timegm nor the TZ environment. */
static int64_t days_from_civil(int64_t y, int m, int d) {
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  int64_t yoe = y - era * 400;
  int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

static int asn1_time_ms(const ASN1_TIME *t, int64_t *out) {
  struct tm tm;
  if (!t || ASN1_TIME_to_tm(t, &tm) != 1) return SL_ECERT;
  int64_t days = days_from_civil((int64_t)tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
  *out = ((days * 24 + tm.tm_hour) * 60 + tm.tm_min) * 60000 + (int64_t)tm.tm_sec * 1000;
  return 0;
}

/* Parses the first certificate of a PEM text (see sns.h). Only RSA keys are
 * accepted: SNS signs with RSA and sns_verify assumes it. */
/* A context ready for EVP_DigestVerify with pkey, md and PKCS #1 v1.5
 * padding, or NULL. */
static EVP_MD_CTX *verify_ctx(EVP_PKEY *pkey, const char *md) {
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  EVP_PKEY_CTX *pctx = NULL;
  if (ctx && EVP_DigestVerifyInit_ex(ctx, &pctx, md, NULL, NULL, pkey, NULL) == 1 &&
      EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) > 0)
    return ctx;
  EVP_MD_CTX_free(ctx);
  return NULL;
}

int sns_cert_parse(const char *pem, size_t len, sns_cert **out) {
  if (!pem || !out || len == 0 || len > INT32_MAX) return SL_ECERT;
  int rc = SL_ECERT;
  X509 *x = NULL;
  sns_cert *c = NULL;
  BIO *bio = BIO_new_mem_buf(pem, (int)len);
  if (!bio) {
    rc = SL_ENOMEM;
    goto done;
  }
  x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
  if (!x) goto done;
  c = calloc(1, sizeof *c);
  if (!c) {
    rc = SL_ENOMEM;
    goto done;
  }
  atomic_init(&c->refs, 1);
  c->pkey = X509_get_pubkey(x);
  if (!c->pkey || EVP_PKEY_get_base_id(c->pkey) != EVP_PKEY_RSA) goto done;
  if (asn1_time_ms(X509_get0_notBefore(x), &c->not_before_ms) != 0 ||
      asn1_time_ms(X509_get0_notAfter(x), &c->not_after_ms) != 0)
    goto done;
  c->verify[0] = verify_ctx(c->pkey, "SHA1");
  c->verify[1] = verify_ctx(c->pkey, "SHA256");
  c->md[0] = EVP_MD_fetch(NULL, "SHA1", NULL);
  c->md[1] = EVP_MD_fetch(NULL, "SHA256", NULL);
  for (int k = 0; k < 2; k++)
    for (int i = 0; i < PKEY_SPARES; i++) atomic_init(&c->spare[k][i], NULL);
  *out = c;
  c = NULL;
  rc = 0;
done:
  sns_cert_free(c);
  X509_free(x);
  BIO_free(bio);
  ERR_clear_error(); /* leave this thread's OpenSSL error queue empty */
  return rc;
}

sns_cert *sns_cert_ref(const sns_cert *c) {
  sns_cert *m = (sns_cert *)c; /* the count is not part of the value */
  atomic_fetch_add(&m->refs, 1);
  return m;
}

void sns_cert_free(sns_cert *c) {
  if (!c || atomic_fetch_sub(&c->refs, 1) > 1) return;
  EVP_MD_CTX_free(c->verify[0]);
  EVP_MD_CTX_free(c->verify[1]);
  for (int k = 0; k < 2; k++) {
    for (int i = 0; i < PKEY_SPARES; i++) EVP_PKEY_CTX_free(atomic_load(&c->spare[k][i]));
    EVP_MD_free(c->md[k]);
  }
  EVP_PKEY_free(c->pkey);
  free(c);
}

int64_t sns_cert_not_before(const sns_cert *c) {
  return c->not_before_ms;
}

int64_t sns_cert_not_after(const sns_cert *c) {
  return c->not_after_ms;
}

static const char *digest_name(const char *version) {
  if (!version) return NULL;
  if (strcmp(version, "1") == 0) return "SHA1";
  if (strcmp(version, "2") == 0) return "SHA256";
  return NULL;
}

/* The value of each byte as a base64 digit, -1 for none: one load per
 * digit instead of a chain of comparisons. */
/* clang-format off */
static const signed char b64_values[256] = {
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 62, -1, -1, -1, 63,
    52, 53, 54, 55, 56, 57, 58, 59, 60, 61, -1, -1, -1, -1, -1, -1,
    -1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14,
    15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, -1, -1, -1, -1, -1,
    -1, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40,
    41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
};
/* clang-format on */

static int b64_value(unsigned char c) {
  return b64_values[c];
}

/* Strict standard base64: length a multiple of 4, at least one block, '='
 * only as the last one or two characters, no white space. *out is
 * malloc'ed. Returns 0, SL_EBASE64 or SL_ENOMEM. */
static int b64_decode(const char *s, unsigned char **out, size_t *outlen) {
  size_t n = strlen(s);
  if (n == 0 || n % 4 != 0) return SL_EBASE64;
  size_t pad = 0;
  if (s[n - 1] == '=') pad = s[n - 2] == '=' ? 2 : 1;
  unsigned char *d = malloc(n / 4 * 3);
  if (!d) return SL_ENOMEM;
  size_t at = 0;
  for (size_t i = 0; i < n; i += 4) {
    uint32_t v = 0;
    int last = i + 4 == n;
    for (size_t k = 0; k < 4; k++) {
      int x;
      if (last && k >= 4 - pad) {
        x = 0;
      } else if ((x = b64_value((unsigned char)s[i + k])) < 0) {
        free(d);
        return SL_EBASE64;
      }
      v = v << 6 | (uint32_t)x;
    }
    d[at++] = (unsigned char)(v >> 16);
    if (!last || pad < 2) d[at++] = (unsigned char)(v >> 8);
    if (!last || pad < 1) d[at++] = (unsigned char)v;
  }
  *out = d;
  *outlen = at;
  return 0;
}

/* A key context of cert ready for EVP_PKEY_verify of a digest k (0 SHA1,
 * 1 SHA256) with PKCS #1 v1.5 padding, this thread's until pkey_ctx_put:
 * a spare one, else a new one; NULL when none can be set up. */
static EVP_PKEY_CTX *pkey_ctx_take(sns_cert *cert, int k) {
  for (int i = 0; i < PKEY_SPARES; i++) {
    EVP_PKEY_CTX *p = atomic_exchange(&cert->spare[k][i], NULL);
    if (p) return p;
  }
  EVP_PKEY_CTX *p = EVP_PKEY_CTX_new_from_pkey(NULL, cert->pkey, NULL);
  if (p && EVP_PKEY_verify_init(p) == 1 && EVP_PKEY_CTX_set_rsa_padding(p, RSA_PKCS1_PADDING) > 0 &&
      EVP_PKEY_CTX_set_signature_md(p, cert->md[k]) > 0)
    return p;
  EVP_PKEY_CTX_free(p);
  return NULL;
}

/* Gives p back to cert's spares (frees it when they are full). */
static void pkey_ctx_put(sns_cert *cert, int k, EVP_PKEY_CTX *p) {
  for (int i = 0; i < PKEY_SPARES; i++) {
    EVP_PKEY_CTX *none = NULL;
    if (atomic_compare_exchange_strong(&cert->spare[k][i], &none, p)) return;
  }
  EVP_PKEY_CTX_free(p);
}

/* 1 when sig is cert's signature of tbs with digest k, 0 when it is not,
 * -1 when this way cannot tell (no digest or key context: the caller
 * verifies the other way). The digest is made once, then checked with a
 * kept key context: no context copied per message. */
static int verify_digest(const sns_cert *cert, int k, const unsigned char *sig, size_t siglen,
                         const char *tbs, size_t tbslen) {
  sns_cert *c = (sns_cert *)cert; /* the spares are not part of the value */
  unsigned char dg[EVP_MAX_MD_SIZE];
  unsigned int dglen = 0;
  if (!c->md[k] || EVP_Digest(tbs, tbslen, dg, &dglen, c->md[k], NULL) != 1) return -1;
  EVP_PKEY_CTX *p = pkey_ctx_take(c, k);
  if (!p) return -1;
  int ok = EVP_PKEY_verify(p, sig, siglen, dg, dglen);
  if (ok < 0) { /* an error, not a mismatch: this context is not trusted again */
    EVP_PKEY_CTX_free(p);
    return 0;
  }
  pkey_ctx_put(c, k, p);
  return ok == 1;
}

/* Verifies m against cert (see sns.h). The signature is checked first, then
 * the time; the time is read from m->timestamp (the signed text), not from
 * m->timestamp_ms. A key context taken from the cert's spares for this
 * call alone (or a fresh EVP_MD_CTX) keeps this safe on any thread. */
int sns_verify(const sns_msg *m, const sns_cert *cert) {
  if (!m || !cert) return SL_EINVAL;
  const char *md = digest_name(m->signature_version);
  if (!md) return SL_ESIGVER;
  if (!m->signature) return SL_EBASE64;
  unsigned char *sig = NULL;
  size_t siglen = 0;
  char *tbs = NULL;
  size_t tbslen = 0;
  EVP_MD_CTX *ctx = NULL;
  EVP_PKEY_CTX *pctx = NULL;
  int rc = b64_decode(m->signature, &sig, &siglen);
  if (rc != 0) goto done;
  if ((rc = sns_canonical(m, &tbs, &tbslen)) != 0) goto done;
  rc = SL_ESIG;
  int k = strcmp(md, "SHA1") == 0 ? 0 : 1;
  int ok = verify_digest(cert, k, sig, siglen, tbs, tbslen);
  if (ok == 0) goto done;
  if (ok < 0) {
    ctx = EVP_MD_CTX_new();
    if (!ctx) {
      rc = SL_ENOMEM;
      goto done;
    }
    const EVP_MD_CTX *ready = cert->verify[k];
    if (ready ? EVP_MD_CTX_copy_ex(ctx, ready) != 1
              : (EVP_DigestVerifyInit_ex(ctx, &pctx, md, NULL, NULL, cert->pkey, NULL) != 1 ||
                 EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) <= 0))
      goto done;
    if (EVP_DigestVerify(ctx, sig, siglen, (const unsigned char *)tbs, tbslen) != 1) goto done;
  }
  int64_t ts;
  if (util_parse_iso8601(m->timestamp, &ts) != 0 || ts < cert->not_before_ms ||
      ts > cert->not_after_ms) {
    rc = SL_ETIME;
    goto done;
  }
  rc = 0;
done:
  EVP_MD_CTX_free(ctx); /* also frees pctx */
  free(tbs);
  free(sig);
  ERR_clear_error();
  return rc;
}

/* Signs m in place (see sns.h). m->signature is replaced only on success.
 * Returns 0, SL_ESIGVER, SL_EINVAL (no usable RSA key in key_pem),
 * SL_EFIELD (m lacks a canonical field) or SL_ENOMEM. */
int sns_sign(sns_msg *m, const char *key_pem, size_t key_len) {
  if (!m || !key_pem || key_len == 0 || key_len > INT32_MAX) return SL_EINVAL;
  BIO *bio = BIO_new_mem_buf(key_pem, (int)key_len);
  if (!bio) return SL_ENOMEM;
  EVP_PKEY *key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
  BIO_free(bio);
  int rc = key ? sns_sign_key(m, key) : SL_EINVAL;
  EVP_PKEY_free(key);
  ERR_clear_error();
  return rc;
}

int sns_sign_key(sns_msg *m, struct evp_pkey_st *key) {
  if (!m || !key) return SL_EINVAL;
  const char *md = digest_name(m->signature_version);
  if (!md) return SL_ESIGVER;
  int rc = SL_EINVAL;
  char *tbs = NULL, *text = NULL;
  size_t tbslen = 0, siglen = 0;
  unsigned char *sig = NULL;
  EVP_MD_CTX *ctx = NULL;
  EVP_PKEY_CTX *pctx = NULL;
  if (EVP_PKEY_get_base_id(key) != EVP_PKEY_RSA) goto done;
  if ((rc = sns_canonical(m, &tbs, &tbslen)) != 0) goto done;
  rc = SL_ENOMEM;
  if (!(ctx = EVP_MD_CTX_new())) goto done;
  rc = SL_EINVAL;
  if (EVP_DigestSignInit_ex(ctx, &pctx, md, NULL, NULL, key, NULL) != 1 ||
      EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) <= 0 ||
      EVP_DigestSign(ctx, NULL, &siglen, (const unsigned char *)tbs, tbslen) != 1)
    goto done;
  rc = SL_ENOMEM;
  if (siglen == 0 || siglen > INT32_MAX / 2 || !(sig = malloc(siglen))) goto done;
  rc = SL_EINVAL;
  if (EVP_DigestSign(ctx, sig, &siglen, (const unsigned char *)tbs, tbslen) != 1) goto done;
  rc = SL_ENOMEM;
  if (!(text = malloc((siglen + 2) / 3 * 4 + 1))) goto done;
  EVP_EncodeBlock((unsigned char *)text, sig, (int)siglen); /* no line breaks */
  free(m->signature);
  m->signature = text;
  text = NULL;
  rc = 0;
done:
  free(text);
  free(sig);
  free(tbs);
  EVP_MD_CTX_free(ctx);
  ERR_clear_error();
  return rc;
}

/* Serializes m (see sns.h): the present fields in the order SNS posts
 * them. The string comes from cJSON_PrintUnformatted, i.e. from malloc as
 * long as nobody installs other cJSON hooks. */
char *sns_to_json(const sns_msg *m) {
  if (!m) return NULL;
  const char *type = m->type_str ? m->type_str : type_name(m->type);
  const struct {
    const char *key;
    const char *val;
  } kv[] = {
      {"Type", type},
      {"MessageId", m->message_id},
      {"Token", m->token},
      {"TopicArn", m->topic_arn},
      {"Subject", m->subject},
      {"Message", m->message},
      {"SubscribeURL", m->subscribe_url},
      {"Timestamp", m->timestamp},
      {"SignatureVersion", m->signature_version},
      {"Signature", m->signature},
      {"SigningCertURL", m->signing_cert_url},
      {"UnsubscribeURL", m->unsubscribe_url},
  };
  cJSON *root = cJSON_CreateObject();
  if (!root) return NULL;
  for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++) {
    if (kv[i].val && !cJSON_AddStringToObject(root, kv[i].key, kv[i].val)) {
      cJSON_Delete(root);
      return NULL;
    }
  }
  char *s = cJSON_PrintUnformatted(root);
  cJSON_Delete(root);
  return s;
}
