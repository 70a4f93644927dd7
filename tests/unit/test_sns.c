/* test_sns.c - the SNS envelope: the real AWS fixtures verify (and the
 * tampered one does not), the canonical string, the certificate URL rule,
 * parse errors, and sign/verify round trips with a key made in the test. */
#include <cjson/cJSON.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdlib.h>

#include "error.h"
#include "sns.h"
#include "unit.h"
#include "util.h"

#define CERT_7506 "certs/SimpleNotificationService-7506a1e35b36ef5a444dd1a8e7cc3ed8.pem"
#define CERT_6AAD "certs/SimpleNotificationService-6aad65c2f9911b05cd53efda11f913f9.pem"
#define TEST_CERT_URL \
  "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0123456789abcdef.pem"

/* The fixture table of tests/fixtures/PROVENANCE-sns.md. */
static const struct {
  const char *file;
  const char *cert;
  enum sns_type type;
  int expect;
} fixtures[] = {
    {"sns/sns-v1-subscriptionconfirmation-aws-sdk-java-v2.json", CERT_7506,
     SNS_SUBSCRIPTION_CONFIRMATION, 0},
    {"sns/sns-v2-unsubscribeconfirmation-aws-sdk-java-v2.json", CERT_7506,
     SNS_UNSUBSCRIBE_CONFIRMATION, 0},
    {"sns/sns-v1-notification-no-subject-aws-sdk-java-v2.json", CERT_7506, SNS_NOTIFICATION, 0},
    {"sns/sns-v1-notification-with-subject-aws-sdk-java-v2.json", CERT_7506, SNS_NOTIFICATION, 0},
    {"sns/sns-v2-notification-aws-sdk-java-v2.json", CERT_7506, SNS_NOTIFICATION, 0},
    {"sns/sns-v1-notification-sns-verify-clj.json", CERT_6AAD, SNS_NOTIFICATION, 0},
    {"sns/sns-v1-notification-TAMPERED-sns-verify-clj.json", CERT_6AAD, SNS_NOTIFICATION, SL_ESIG},
};
#define N_FIXTURES (sizeof fixtures / sizeof fixtures[0])

/* Parses a fixture; NULL (after printing why) when it does not parse. */
static sns_msg *load_msg(const char *rel) {
  size_t len;
  char *body = unit_read_fixture(rel, &len);
  sns_msg *m = NULL;
  const char *why = NULL;
  int rc = sns_parse(body, len, &m, &why);
  free(body);
  if (rc != 0) fprintf(stderr, "    %s: %s (%s)\n", rel, sl_strerror(rc), why ? why : "");
  return m;
}

static sns_cert *load_cert(const char *rel) {
  size_t len;
  char *pem = unit_read_fixture(rel, &len);
  sns_cert *c = NULL;
  int rc = sns_cert_parse(pem, len, &c);
  free(pem);
  if (rc != 0) fprintf(stderr, "    %s: %s\n", rel, sl_strerror(rc));
  return c;
}

static int replace(char **field, const char *value) {
  char *copy = util_strdup(value);
  if (value && !copy) return -1;
  free(*field);
  *field = copy;
  return 0;
}

/* --- a key and certificate made in memory, so no file is needed --- */

static EVP_PKEY *the_key;

static void free_key(void) {
  EVP_PKEY_free(the_key);
  the_key = NULL;
}

/* One RSA 2048 key for the whole run: generating it is the slow part. */
static EVP_PKEY *test_key(void) {
  if (!the_key) {
    the_key = EVP_RSA_gen(2048);
    if (the_key) atexit(free_key);
  }
  return the_key;
}

/* The key as PEM text (malloc'ed, NUL-terminated). */
static char *key_pem(EVP_PKEY *key, size_t *len) {
  BIO *bio = BIO_new(BIO_s_mem());
  char *out = NULL;
  if (bio && PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL) == 1) {
    char *data;
    long n = BIO_get_mem_data(bio, &data);
    if (n > 0) out = util_strndup(data, (size_t)n);
    *len = (size_t)n;
  }
  BIO_free(bio);
  return out;
}

/* A self-signed certificate for key, valid from nb to na (seconds since
 * the epoch), parsed with sns_cert_parse. */
static sns_cert *test_cert(EVP_PKEY *key, time_t nb, time_t na) {
  X509 *x = X509_new();
  BIO *bio = BIO_new(BIO_s_mem());
  sns_cert *c = NULL;
  if (!x || !bio) goto done;
  X509_NAME *name = X509_get_subject_name(x);
  if (X509_set_version(x, 2) != 1 || ASN1_INTEGER_set(X509_get_serialNumber(x), 1) != 1 ||
      !ASN1_TIME_set(X509_getm_notBefore(x), nb) || !ASN1_TIME_set(X509_getm_notAfter(x), na) ||
      X509_set_pubkey(x, key) != 1 ||
      X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                 (const unsigned char *)"sns.amazonaws.com", -1, -1, 0) != 1 ||
      X509_set_issuer_name(x, name) != 1 || X509_sign(x, key, EVP_sha256()) <= 0 ||
      PEM_write_bio_X509(bio, x) != 1)
    goto done;
  char *data;
  long n = BIO_get_mem_data(bio, &data);
  if (n > 0 && sns_cert_parse(data, (size_t)n, &c) != 0) c = NULL;
done:
  BIO_free(bio);
  X509_free(x);
  return c;
}

/* A Notification (or a SubscriptionConfirmation) with every field but the
 * signature, built by hand. */
static sns_msg *make_msg(enum sns_type type, const char *message, const char *subject,
                         const char *timestamp, const char *version) {
  sns_msg *m = calloc(1, sizeof *m);
  if (!m) return NULL;
  int conf = type != SNS_NOTIFICATION;
  m->type = type;
  m->type_str = util_strdup(conf ? "SubscriptionConfirmation" : "Notification");
  m->message_id = util_strdup("22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324");
  m->topic_arn = util_strdup("arn:aws:sns:us-east-1:123456789012:ses-events");
  m->subject = util_strdup(subject);
  m->message = util_strdup(message);
  m->message_len = strlen(message);
  m->timestamp = util_strdup(timestamp);
  m->signature_version = util_strdup(version);
  m->signing_cert_url = util_strdup(TEST_CERT_URL);
  if (conf) {
    m->token = util_strdup("2336412f37fb687f5d51e6e2425929f5");
    m->subscribe_url = util_strdup(
        "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn=arn:aws:sns:"
        "us-east-1:123456789012:ses-events&Token=2336412f37fb687f5d51e6e2425929f5");
  } else {
    m->unsubscribe_url = util_strdup("https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe");
  }
  if (!m->type_str || !m->message_id || !m->topic_arn || (subject && !m->subject) || !m->message ||
      !m->timestamp || !m->signature_version || !m->signing_cert_url ||
      (conf ? !m->token || !m->subscribe_url : !m->unsubscribe_url)) {
    sns_msg_free(m);
    return NULL;
  }
  return m;
}

/* --- the tests --- */

/* Every AWS fixture verifies with its certificate; the tampered one is a
 * bad signature (not a bad time: its Timestamp is inside the validity). */
static int t_fixtures_verify(void) {
  for (size_t i = 0; i < N_FIXTURES; i++) {
    sns_msg *m = load_msg(fixtures[i].file);
    sns_cert *c = load_cert(fixtures[i].cert);
    ASSERT_TRUE(m != NULL);
    ASSERT_TRUE(c != NULL);
    ASSERT_INT_EQ(m->type, fixtures[i].type);
    ASSERT_INT_EQ(sns_url_allowed(m->signing_cert_url, 1), 0);
    ASSERT_STR_EQ(sns_cert_file_name(m->signing_cert_url), strrchr(fixtures[i].cert, '/') + 1);
    if (m->subscribe_url) ASSERT_INT_EQ(sns_url_allowed(m->subscribe_url, 0), 0);
    if (m->unsubscribe_url) ASSERT_INT_EQ(sns_url_allowed(m->unsubscribe_url, 0), 0);
    int rc = sns_verify(m, c);
    if (rc != fixtures[i].expect) fprintf(stderr, "    %s\n", fixtures[i].file);
    ASSERT_INT_EQ(rc, fixtures[i].expect);
    sns_msg_free(m);
    sns_cert_free(c);
  }
  return 0;
}

static int t_parse_fields(void) {
  sns_msg *m = load_msg("sns/sns-v1-subscriptionconfirmation-aws-sdk-java-v2.json");
  ASSERT_TRUE(m != NULL);
  ASSERT_INT_EQ(m->type, SNS_SUBSCRIPTION_CONFIRMATION);
  ASSERT_STR_EQ(m->type_str, "SubscriptionConfirmation");
  ASSERT_STR_EQ(m->message_id, "f3f2fc87-c426-4c2f-9044-b55890c0939c");
  ASSERT_STR_EQ(m->topic_arn, "arn:aws:sns:us-west-2:131990247566:dongie-standard-topic");
  ASSERT_NULL(m->subject);
  ASSERT_NULL(m->unsubscribe_url);
  ASSERT_TRUE(m->token && strncmp(m->token, "2336412f37fb", 12) == 0);
  ASSERT_TRUE(m->subscribe_url && strstr(m->subscribe_url, "Action=ConfirmSubscription"));
  /* "\n" in the JSON is a real line break in the Message */
  ASSERT_TRUE(strstr(m->message, "-standard-topic.\nTo confirm") != NULL);
  ASSERT_INT_EQ(m->message_len, strlen(m->message));
  ASSERT_STR_EQ(m->timestamp, "2026-03-06T19:31:32.895Z");
  int64_t ms;
  ASSERT_INT_EQ(util_parse_iso8601("2026-03-06T19:31:32.895Z", &ms), 0);
  ASSERT_INT_EQ(m->timestamp_ms, ms);
  ASSERT_STR_EQ(m->signature_version, "1");
  ASSERT_TRUE(strncmp(m->signature, "Ce2Ax8UbEq0R", 12) == 0);
  sns_msg_free(m);
  return 0;
}

static int check_canonical(const char *file, const char *want) {
  sns_msg *m = load_msg(file);
  ASSERT_TRUE(m != NULL);
  char *s = NULL;
  size_t len = 0;
  ASSERT_INT_EQ(sns_canonical(m, &s, &len), 0);
  ASSERT_STR_EQ(s, want);
  ASSERT_INT_EQ(len, strlen(want));
  free(s);
  sns_msg_free(m);
  return 0;
}

static int t_canonical_with_subject(void) {
  return check_canonical("sns/sns-v1-notification-with-subject-aws-sdk-java-v2.json",
                         "Message\nHello! This message has a subject.\n"
                         "MessageId\n26858270-545e-5848-82a2-e05566af3dcf\n"
                         "Subject\nMy message subject\n"
                         "Timestamp\n2026-03-06T19:53:21.424Z\n"
                         "TopicArn\narn:aws:sns:us-west-2:131990247566:dongie-standard-topic\n"
                         "Type\nNotification\n");
}

static int t_canonical_no_subject(void) {
  return check_canonical("sns/sns-v2-notification-aws-sdk-java-v2.json",
                         "Message\nThis message uses signature version 2.\n"
                         "MessageId\n9d2c5580-b61d-550c-8583-37a582870907\n"
                         "Timestamp\n2026-03-06T20:00:26.893Z\n"
                         "TopicArn\narn:aws:sns:us-west-2:131990247566:dongie-standard-topic\n"
                         "Type\nNotification\n");
}

static int t_canonical_confirmation(void) {
  sns_msg *m = make_msg(SNS_SUBSCRIPTION_CONFIRMATION, "hi", NULL, "2020-06-01T00:00:00.000Z", "1");
  ASSERT_TRUE(m != NULL);
  char *s = NULL;
  size_t len = 0;
  ASSERT_INT_EQ(sns_canonical(m, &s, &len), 0);
  ASSERT_STR_EQ(s,
                "Message\nhi\n"
                "MessageId\n22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324\n"
                "SubscribeURL\nhttps://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription"
                "&TopicArn=arn:aws:sns:us-east-1:123456789012:ses-events"
                "&Token=2336412f37fb687f5d51e6e2425929f5\n"
                "Timestamp\n2020-06-01T00:00:00.000Z\n"
                "Token\n2336412f37fb687f5d51e6e2425929f5\n"
                "TopicArn\narn:aws:sns:us-east-1:123456789012:ses-events\n"
                "Type\nSubscriptionConfirmation\n");
  free(s);
  /* a confirmation without its Token has no canonical string */
  free(m->token);
  m->token = NULL;
  s = NULL;
  ASSERT_INT_EQ(sns_canonical(m, &s, &len), SL_EFIELD);
  ASSERT_NULL(s);
  sns_msg_free(m);
  return 0;
}

/* Removing the Subject of a signed message, or adding one, breaks it. */
static int t_subject_removed_fails(void) {
  sns_msg *m = load_msg("sns/sns-v1-notification-with-subject-aws-sdk-java-v2.json");
  sns_cert *c = load_cert(CERT_7506);
  ASSERT_TRUE(m && c);
  ASSERT_INT_EQ(sns_verify(m, c), 0);
  free(m->subject);
  m->subject = NULL;
  ASSERT_INT_EQ(sns_verify(m, c), SL_ESIG);
  sns_msg_free(m);
  m = load_msg("sns/sns-v1-notification-no-subject-aws-sdk-java-v2.json");
  ASSERT_TRUE(m != NULL);
  ASSERT_INT_EQ(replace(&m->subject, "added"), 0);
  ASSERT_INT_EQ(sns_verify(m, c), SL_ESIG);
  sns_msg_free(m);
  sns_cert_free(c);
  return 0;
}

/* SignatureVersion 1 <-> 2 swapped on every valid fixture: bad signature.
 * Anything but "1" and "2" is an unknown version. */
static int t_version_swapped_fails(void) {
  for (size_t i = 0; i < N_FIXTURES; i++) {
    if (fixtures[i].expect != 0) continue;
    sns_msg *m = load_msg(fixtures[i].file);
    sns_cert *c = load_cert(fixtures[i].cert);
    ASSERT_TRUE(m && c);
    int v1 = strcmp(m->signature_version, "1") == 0;
    ASSERT_INT_EQ(replace(&m->signature_version, v1 ? "2" : "1"), 0);
    ASSERT_INT_EQ(sns_verify(m, c), SL_ESIG);
    static const char *const bad[] = {"3", "0", "", "1 ", " 1", "01", "2.0", "SHA256"};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
      ASSERT_INT_EQ(replace(&m->signature_version, bad[k]), 0);
      ASSERT_INT_EQ(sns_verify(m, c), SL_ESIGVER);
    }
    free(m->signature_version);
    m->signature_version = NULL;
    ASSERT_INT_EQ(sns_verify(m, c), SL_ESIGVER);
    sns_msg_free(m);
    sns_cert_free(c);
  }
  return 0;
}

static int t_bad_base64(void) {
  sns_msg *m = load_msg("sns/sns-v2-notification-aws-sdk-java-v2.json");
  sns_cert *c = load_cert(CERT_7506);
  ASSERT_TRUE(m && c);
  char *good = util_strdup(m->signature);
  ASSERT_TRUE(good != NULL);
  static const char *const bad[] = {
      "", "!!!!", "AAA", "AA=A", "A===", "AAAA AAAA", "=AAA", "AA-_", "AAAAA", "AA==AAAA"};
  for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
    ASSERT_INT_EQ(replace(&m->signature, bad[k]), 0);
    int rc = sns_verify(m, c);
    if (rc != SL_EBASE64) fprintf(stderr, "    signature \"%s\"\n", bad[k]);
    ASSERT_INT_EQ(rc, SL_EBASE64);
  }
  /* well-formed base64 of the wrong bytes is a bad signature */
  ASSERT_INT_EQ(replace(&m->signature, "AAAA"), 0);
  ASSERT_INT_EQ(sns_verify(m, c), SL_ESIG);
  /* the signature with one byte changed */
  good[10] = good[10] == 'A' ? 'B' : 'A';
  ASSERT_INT_EQ(replace(&m->signature, good), 0);
  ASSERT_INT_EQ(sns_verify(m, c), SL_ESIG);
  free(good);
  sns_msg_free(m);
  sns_cert_free(c);
  return 0;
}

/* The Timestamp must lie inside the certificate's validity, bounds
 * included; a signed message is re-signed with a key of our own so the
 * time is tested apart from the signature. */
static int t_timestamp_outside_validity(void) {
  EVP_PKEY *key = test_key();
  ASSERT_TRUE(key != NULL);
  size_t klen = 0;
  char *kpem = key_pem(key, &klen);
  ASSERT_TRUE(kpem != NULL);
  /* 2020-01-01T00:00:00Z .. 2021-01-01T00:00:00Z */
  sns_cert *c = test_cert(key, 1577836800, 1609459200);
  ASSERT_TRUE(c != NULL);
  ASSERT_INT_EQ(sns_cert_not_before(c), 1577836800000LL);
  ASSERT_INT_EQ(sns_cert_not_after(c), 1609459200000LL);
  static const struct {
    const char *ts;
    int expect;
  } cases[] = {
      {"2019-12-31T23:59:59.999Z", SL_ETIME}, {"2020-01-01T00:00:00.000Z", 0},
      {"2020-07-01T12:00:00.000Z", 0},        {"2021-01-01T00:00:00.000Z", 0},
      {"2021-01-01T00:00:00.001Z", SL_ETIME}, {"2026-03-06T20:00:26.893Z", SL_ETIME},
      {"1970-01-01T00:00:00.000Z", SL_ETIME},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    for (int v = 1; v <= 2; v++) {
      sns_msg *m = make_msg(SNS_NOTIFICATION, "{}", NULL, cases[i].ts, v == 1 ? "1" : "2");
      ASSERT_TRUE(m != NULL);
      ASSERT_INT_EQ(sns_sign(m, kpem, klen), 0);
      int rc = sns_verify(m, c);
      if (rc != cases[i].expect) fprintf(stderr, "    Timestamp %s v%d\n", cases[i].ts, v);
      ASSERT_INT_EQ(rc, cases[i].expect);
      sns_msg_free(m);
    }
  }
  free(kpem);
  sns_cert_free(c);
  /* A real message whose Timestamp was moved out of the validity fails on
   * its signature first: the time is only judged for a signed text. */
  sns_msg *m = load_msg("sns/sns-v1-notification-sns-verify-clj.json");
  c = load_cert(CERT_6AAD);
  ASSERT_TRUE(m && c);
  ASSERT_INT_EQ(replace(&m->timestamp, "2021-10-14T02:11:47.508Z"), 0);
  ASSERT_INT_EQ(sns_verify(m, c), SL_ESIG);
  sns_msg_free(m);
  sns_cert_free(c);
  return 0;
}

static int t_cert_parse(void) {
  sns_cert *c = load_cert(CERT_7506);
  ASSERT_TRUE(c != NULL);
  int64_t nb, na;
  ASSERT_INT_EQ(util_parse_iso8601("2025-11-10T00:00:00Z", &nb), 0);
  ASSERT_INT_EQ(util_parse_iso8601("2026-10-14T23:59:59Z", &na), 0);
  ASSERT_INT_EQ(sns_cert_not_before(c), nb);
  ASSERT_INT_EQ(sns_cert_not_after(c), na);
  sns_cert_free(c);
  c = load_cert(CERT_6AAD);
  ASSERT_TRUE(c != NULL);
  ASSERT_INT_EQ(util_parse_iso8601("2019-02-05T00:00:00Z", &nb), 0);
  ASSERT_INT_EQ(util_parse_iso8601("2020-01-23T12:00:00Z", &na), 0);
  ASSERT_INT_EQ(sns_cert_not_before(c), nb);
  ASSERT_INT_EQ(sns_cert_not_after(c), na);
  sns_cert_free(c);
  sns_cert *none = NULL;
  static const char junk[] = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
  ASSERT_INT_EQ(sns_cert_parse(junk, sizeof junk - 1, &none), SL_ECERT);
  ASSERT_INT_EQ(sns_cert_parse("hello", 5, &none), SL_ECERT);
  ASSERT_INT_EQ(sns_cert_parse("", 0, &none), SL_ECERT);
  ASSERT_NULL(none);
  /* a private key is not a certificate */
  EVP_PKEY *key = test_key();
  ASSERT_TRUE(key != NULL);
  size_t klen = 0;
  char *kpem = key_pem(key, &klen);
  ASSERT_TRUE(kpem != NULL);
  ASSERT_INT_EQ(sns_cert_parse(kpem, klen, &none), SL_ECERT);
  ASSERT_NULL(none);
  free(kpem);
  /* a certificate with a non-RSA key is refused */
  EVP_PKEY *ec = EVP_EC_gen("P-256");
  ASSERT_TRUE(ec != NULL);
  X509 *x = X509_new();
  BIO *bio = BIO_new(BIO_s_mem());
  ASSERT_TRUE(x && bio);
  ASSERT_TRUE(ASN1_TIME_set(X509_getm_notBefore(x), 0) != NULL);
  ASSERT_TRUE(ASN1_TIME_set(X509_getm_notAfter(x), 1 << 30) != NULL);
  ASSERT_INT_EQ(X509_set_pubkey(x, ec), 1);
  ASSERT_TRUE(X509_sign(x, ec, EVP_sha256()) > 0);
  ASSERT_INT_EQ(PEM_write_bio_X509(bio, x), 1);
  char *data;
  long n = BIO_get_mem_data(bio, &data);
  ASSERT_INT_EQ(sns_cert_parse(data, (size_t)n, &none), SL_ECERT);
  ASSERT_NULL(none);
  BIO_free(bio);
  X509_free(x);
  EVP_PKEY_free(ec);
  return 0;
}

/* The host and path rule of sns_url_allowed. */
static int t_cert_url_rule(void) {
  static const struct {
    const char *url;
    int cert; /* 1: SigningCertURL, 0: SubscribeURL/UnsubscribeURL */
    int ok;
  } cases[] = {
      /* good certificate URLs */
      {"https://sns.us-east-1.amazonaws.com/SimpleNotificationService-"
       "7506a1e35b36ef5a444dd1a8e7cc3ed8.pem",
       1, 1},
      {"https://sns.us-west-2.amazonaws.com/SimpleNotificationService-"
       "6aad65c2f9911b05cd53efda11f913f9.pem",
       1, 1},
      {"https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-abc123.pem", 1, 1},
      {"https://sns.us-gov-west-1.amazonaws.com/SimpleNotificationService-0.pem", 1, 1},
      {"https://sns.ap-southeast-2.amazonaws.com/SimpleNotificationService-f00d.pem", 1, 1},
      {"https://sns.us-isob-east-1.amazonaws.com/SimpleNotificationService-f00d.pem", 1, 1},
      {"HTTPS://sns.eu-central-1.amazonaws.com/SimpleNotificationService-f00d.pem", 1, 1},
      /* scheme */
      {"http://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem", 1, 0},
      {"ftp://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem", 1, 0},
      {"https:/sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem", 1, 0},
      {"https:///sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem", 1, 0},
      {"//sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem", 1, 0},
      {" https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem", 1, 0},
      {"", 1, 0},
      /* other hosts */
      {"https://s3.amazonaws.com/SimpleNotificationService-abc.pem", 1, 0},
      {"https://sns.amazonaws.com/SimpleNotificationService-abc.pem", 1, 0},
      {"https://sns.evil.com/SimpleNotificationService-abc.pem", 1, 0},
      {"https://evil.com/sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem", 1, 0},
      {"https://sns.us-east-1.amazonaws.com.evil.com/SimpleNotificationService-abc.pem", 1, 0},
      {"https://sns.us-east-1.amazonaws.com.cn.evil.com/SimpleNotificationService-abc.pem", 1, 0},
      {"https://xsns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem", 1, 0},
      {"https://sns.us-east-1.amazonaws.co/SimpleNotificationService-abc.pem", 1, 0},
      {"https://sns.us-east-1.amazonaws.com.c/SimpleNotificationService-abc.pem", 1, 0},
      {"https://evilsns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem", 1, 0},
      {"https://sns.us-east-1.evil.amazonaws.com/SimpleNotificationService-abc.pem", 1, 0},
      /* one-label names under amazonaws.com that are not regions: S3
       * buckets named "sns" and EC2 names */
      {"https://sns.s3.amazonaws.com/SimpleNotificationService-abc.pem", 1, 0},
      {"https://sns.s3-external-1.amazonaws.com/SimpleNotificationService-abc.pem", 1, 0},
      {"https://sns.s3-us-west-2.amazonaws.com/SimpleNotificationService-abc.pem", 1, 0},
      {"https://sns.s3-website-us-east-1.amazonaws.com/SimpleNotificationService-abc.pem", 1, 0},
      {"https://sns.compute-1.amazonaws.com/SimpleNotificationService-abc.pem", 1, 0},
      /* malformed regions */
      {"https://sns..amazonaws.com/SimpleNotificationService-abc.pem", 1, 0},
      {"https://sns.-.amazonaws.com/SimpleNotificationService-abc.pem", 1, 0},
      {"https://sns.us-east-1-.amazonaws.com/SimpleNotificationService-abc.pem", 1, 0},
      {"https://sns.-us-east-1.amazonaws.com/SimpleNotificationService-abc.pem", 1, 0},
      {"https://sns.us--east-1.amazonaws.com/SimpleNotificationService-abc.pem", 1, 0},
      {"https://sns.us_east-1.amazonaws.com/SimpleNotificationService-abc.pem", 1, 0},
      {"https://sns.useast1.amazonaws.com/SimpleNotificationService-abc.pem", 1, 0},
      {"https://sns.us-east.amazonaws.com/SimpleNotificationService-abc.pem", 1, 0},
      /* look-alikes: case, trailing dot, percent-encoding, backslash */
      {"https://SNS.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem", 1, 0},
      {"https://sns.US-EAST-1.amazonaws.com/SimpleNotificationService-abc.pem", 1, 0},
      {"https://sns.us-east-1.AmazonAWS.com/SimpleNotificationService-abc.pem", 1, 0},
      {"https://sns.us-east-1.amazonaws.com./SimpleNotificationService-abc.pem", 1, 0},
      {"https://sns.us-east-1.amazonaws.com.cn./SimpleNotificationService-abc.pem", 1, 0},
      {"https://sns%2eus-east-1.amazonaws.com/SimpleNotificationService-abc.pem", 1, 0},
      {"https://sns.us-east-1.amazonaws%2ecom/SimpleNotificationService-abc.pem", 1, 0},
      {"https://sns.us-east-1.amazonaws.com\\@evil.com/SimpleNotificationService-abc.pem", 1, 0},
      {"https://evil.com\\sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem", 1, 0},
      /* user info, ports, fragments, query strings */
      {"https://user@sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem", 1, 0},
      {"https://sns.us-east-1.amazonaws.com@evil.com/SimpleNotificationService-abc.pem", 1, 0},
      {"https://evil.com#@sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem", 1, 0},
      {"https://sns.us-east-1.amazonaws.com:443/SimpleNotificationService-abc.pem", 1, 0},
      {"https://sns.us-east-1.amazonaws.com:8443/SimpleNotificationService-abc.pem", 1, 0},
      {"https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem#x", 1, 0},
      {"https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem?x=1", 1, 0},
      {"https://sns.us-east-1.amazonaws.com?/SimpleNotificationService-abc.pem", 1, 0},
      {"https://sns.us-east-1.amazonaws.com#/SimpleNotificationService-abc.pem", 1, 0},
      /* the certificate path */
      {"https://sns.us-east-1.amazonaws.com", 1, 0},
      {"https://sns.us-east-1.amazonaws.com/", 1, 0},
      {"https://sns.us-east-1.amazonaws.com/SimpleNotificationService-ABC.pem", 1, 0},
      {"https://sns.us-east-1.amazonaws.com/SimpleNotificationService-.pem", 1, 0},
      {"https://sns.us-east-1.amazonaws.com/SimpleNotificationService-xyz.pem", 1, 0},
      {"https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem.evil", 1, 0},
      {"https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.PEM", 1, 0},
      {"https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.crt", 1, 0},
      {"https://sns.us-east-1.amazonaws.com/simplenotificationservice-abc.pem", 1, 0},
      {"https://sns.us-east-1.amazonaws.com/evil/SimpleNotificationService-abc.pem", 1, 0},
      {"https://sns.us-east-1.amazonaws.com//SimpleNotificationService-abc.pem", 1, 0},
      {"https://sns.us-east-1.amazonaws.com/../SimpleNotificationService-abc.pem", 1, 0},
      {"https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc/../x.pem", 1, 0},
      {"https://sns.us-east-1.amazonaws.com/SimpleNotificationService-ab%63.pem", 1, 0},
      {"https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem%00", 1, 0},
      {"https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem/", 1, 0},
      /* SubscribeURL and UnsubscribeURL: any path and query on the host */
      {"https://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription&TopicArn=arn:aws:sns:"
       "us-west-2:131990247566:t&Token=2336412f",
       0, 1},
      {"https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=arn%3Aaws%3Asns", 0,
       1},
      {"https://sns.cn-northwest-1.amazonaws.com.cn/", 0, 1},
      {"https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem", 0, 1},
      {"https://sns.us-east-1.amazonaws.com", 0, 0},
      {"https://sns.us-east-1.amazonaws.com?Action=Unsubscribe", 0, 0},
      {"http://sns.us-east-1.amazonaws.com/?Action=Unsubscribe", 0, 0},
      {"https://evil.com/?https://sns.us-east-1.amazonaws.com/", 0, 0},
      {"https://sns.us-east-1.amazonaws.com.evil.com/?Action=Unsubscribe", 0, 0},
      {"https://sns.us-east-1.amazonaws.com:443/?Action=Unsubscribe", 0, 0},
      {"https://a@sns.us-east-1.amazonaws.com/?Action=Unsubscribe", 0, 0},
      {"https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe#frag", 0, 0},
      {"https://sns.us-east-1.amazonaws.com/?Action=Un subscribe", 0, 0},
      {"https://sns.us-east-1.amazonaws.com/?a=1\r\nHost: evil.com", 0, 0},
      {"https://sns.us-east-1.amazonaws.com/\\evil.com", 0, 0},
      {"https://sns.s3.amazonaws.com/?Action=Unsubscribe", 0, 0},
  };
  size_t n = sizeof cases / sizeof cases[0];
  ASSERT_TRUE(n >= 25);
  for (size_t i = 0; i < n; i++) {
    int rc = sns_url_allowed(cases[i].url, cases[i].cert);
    int want = cases[i].ok ? 0 : SL_ECERTURL;
    if (rc != want) fprintf(stderr, "    url \"%s\" cert=%d\n", cases[i].url, cases[i].cert);
    ASSERT_INT_EQ(rc, want);
  }
  ASSERT_INT_EQ(sns_url_allowed(NULL, 1), SL_ECERTURL);
  ASSERT_INT_EQ(sns_url_allowed(NULL, 0), SL_ECERTURL);
  /* 128 hex digits pass, 129 do not */
  char url[400];
  char hex[130];
  memset(hex, 'a', 129);
  hex[129] = 0;
  snprintf(url, sizeof url, "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-%s.pem",
           hex);
  ASSERT_INT_EQ(sns_url_allowed(url, 1), SL_ECERTURL);
  hex[128] = 0;
  snprintf(url, sizeof url, "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-%s.pem",
           hex);
  ASSERT_INT_EQ(sns_url_allowed(url, 1), 0);
  return 0;
}

static int t_cert_file_name(void) {
  ASSERT_STR_EQ(
      sns_cert_file_name("https://sns.us-west-2.amazonaws.com/"
                         "SimpleNotificationService-7506a1e35b36ef5a444dd1a8e7cc3ed8.pem"),
      "SimpleNotificationService-7506a1e35b36ef5a444dd1a8e7cc3ed8.pem");
  ASSERT_STR_EQ(sns_cert_file_name(TEST_CERT_URL),
                "SimpleNotificationService-0123456789abcdef.pem");
  ASSERT_NULL(sns_cert_file_name(NULL));
  return 0;
}

/* A valid Notification body with one key replaced ("KEY":VALUE text, or
 * removed when value is NULL). */
static char *body_with(const char *key, const char *value) {
  cJSON *root = cJSON_CreateObject();
  if (!root) return NULL;
  static const char *const kv[][2] = {
      {"Type", "Notification"},
      {"MessageId", "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324"},
      {"TopicArn", "arn:aws:sns:us-east-1:123456789012:ses-events"},
      {"Subject", "s"},
      {"Message", "m"},
      {"Timestamp", "2020-06-01T00:00:00.000Z"},
      {"SignatureVersion", "1"},
      {"Signature", "AAAA"},
      {"SigningCertURL", TEST_CERT_URL},
      {"UnsubscribeURL", "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe"},
  };
  for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++) {
    if (key && strcmp(kv[i][0], key) == 0) {
      if (!value) continue;
      cJSON *v = cJSON_Parse(value);
      if (!v) {
        cJSON_Delete(root);
        return NULL;
      }
      cJSON_AddItemToObject(root, key, v);
    } else {
      cJSON_AddStringToObject(root, kv[i][0], kv[i][1]);
    }
  }
  char *s = cJSON_PrintUnformatted(root);
  cJSON_Delete(root);
  return s;
}

static int parse_rc(const char *body, const char **why) {
  sns_msg *m = NULL;
  int rc = sns_parse(body, strlen(body), &m, why);
  if (rc == 0)
    sns_msg_free(m);
  else if (m)
    return 99; /* *out must not be set on failure */
  return rc;
}

static int t_parse_errors(void) {
  const char *why = NULL;
  /* not JSON, or not one JSON object */
  static const char *const not_object[] = {"",
                                           "not json",
                                           "{",
                                           "[]",
                                           "\"Notification\"",
                                           "null",
                                           "42",
                                           "{\"Type\":\"Notification\"",
                                           "{} {}",
                                           "{}x"};
  for (size_t i = 0; i < sizeof not_object / sizeof not_object[0]; i++) {
    int rc = parse_rc(not_object[i], &why);
    if (rc != SL_EJSON) fprintf(stderr, "    body \"%s\"\n", not_object[i]);
    ASSERT_INT_EQ(rc, SL_EJSON);
  }
  /* the body is bounded by len, not by a NUL */
  sns_msg *m = NULL;
  char *ok = body_with(NULL, NULL);
  ASSERT_TRUE(ok != NULL);
  ASSERT_INT_EQ(sns_parse(ok, strlen(ok) - 1, &m, &why), SL_EJSON);
  ASSERT_NULL(m);
  ASSERT_INT_EQ(parse_rc(ok, &why), 0);
  free(ok);
  /* each required field, missing or not a string */
  static const char *const required[] = {"Type",      "MessageId",     "TopicArn",
                                         "Message",   "Timestamp",     "SignatureVersion",
                                         "Signature", "SigningCertURL"};
  for (size_t i = 0; i < sizeof required / sizeof required[0]; i++) {
    char want[100];
    char *b = body_with(required[i], NULL);
    ASSERT_TRUE(b != NULL);
    ASSERT_INT_EQ(parse_rc(b, &why), SL_EFIELD);
    snprintf(want, sizeof want, "the envelope has no %s", required[i]);
    ASSERT_STR_EQ(why, want);
    free(b);
    static const char *const wrong[] = {"null", "1", "true", "{}", "[\"x\"]"};
    for (size_t k = 0; k < sizeof wrong / sizeof wrong[0]; k++) {
      b = body_with(required[i], wrong[k]);
      ASSERT_TRUE(b != NULL);
      ASSERT_INT_EQ(parse_rc(b, &why), SL_EFIELD);
      ASSERT_TRUE(strstr(why, required[i]) != NULL);
      free(b);
    }
  }
  /* unknown Type */
  static const char *const types[] = {"\"notification\"", "\"Notification \"", "\"\"",
                                      "\"SubscriptionConfirmed\"", "\"Unknown\""};
  for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
    char *b = body_with("Type", types[i]);
    ASSERT_TRUE(b != NULL);
    ASSERT_INT_EQ(parse_rc(b, &why), SL_ETYPE);
    free(b);
  }
  /* Subject: JSON null is absent, another type is an error */
  char *b = body_with("Subject", "null");
  ASSERT_TRUE(b != NULL);
  ASSERT_INT_EQ(sns_parse(b, strlen(b), &m, &why), 0);
  ASSERT_NULL(m->subject);
  sns_msg_free(m);
  free(b);
  b = body_with("Subject", "7");
  ASSERT_INT_EQ(parse_rc(b, &why), SL_EFIELD);
  ASSERT_STR_EQ(why, "the envelope's Subject is not a string");
  free(b);
  /* Timestamp that is not a time */
  static const char *const times[] = {"\"yesterday\"", "\"2020-06-01\"", "\"\"",
                                      "\"2020-06-01T00:00:00\""};
  for (size_t i = 0; i < sizeof times / sizeof times[0]; i++) {
    b = body_with("Timestamp", times[i]);
    ASSERT_INT_EQ(parse_rc(b, &why), SL_EFIELD);
    ASSERT_STR_EQ(why, "the envelope's Timestamp is not an ISO-8601 time");
    free(b);
  }
  /* a line break anywhere but in Message */
  b = body_with("MessageId", "\"id\\nSubject\\nx\"");
  ASSERT_INT_EQ(parse_rc(b, &why), SL_EFIELD);
  ASSERT_STR_EQ(why, "the envelope's MessageId contains a line break");
  free(b);
  b = body_with("Subject", "\"a\\r\"");
  ASSERT_INT_EQ(parse_rc(b, &why), SL_EFIELD);
  free(b);
  b = body_with("Message", "\"line 1\\nline 2\"");
  ASSERT_INT_EQ(parse_rc(b, &why), 0);
  free(b);
  /* a NUL, escaped or raw, is refused; an escaped backslash before u0000
   * is just text */
  static const char nul_escape[] =
      "{\"Type\":\"Notification\",\"MessageId\":\"i\",\"TopicArn\":\"t\",\"Message\":\"a\\u0000b\","
      "\"Timestamp\":\"2020-06-01T00:00:00Z\",\"SignatureVersion\":\"1\",\"Signature\":\"AAAA\","
      "\"SigningCertURL\":\"u\"}";
  ASSERT_INT_EQ(parse_rc(nul_escape, &why), SL_EJSON);
  ASSERT_STR_EQ(why, "the envelope contains a NUL character");
  b = body_with("Message", "\"a\\\\u0000b\"");
  ASSERT_INT_EQ(sns_parse(b, strlen(b), &m, &why), 0);
  ASSERT_STR_EQ(m->message, "a\\u0000b");
  sns_msg_free(m);
  free(b);
  /* three backslashes: an escaped one, then the escape; and escapes that
   * begin the string or follow one another (the envelope's text as is:
   * body_with would print the NUL away) */
  static const char *const runs[] = {"a\\\\\\u0000b", "\\u0000", "\\u0001\\u0000",
                                     "\\\\\\\\\\u0000", "\\\\\\\\u0000"};
  for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++) {
    char env[512];
    snprintf(env, sizeof env,
             "{\"Type\":\"Notification\",\"MessageId\":\"i\",\"TopicArn\":\"t\",\"Message\":\"%s\","
             "\"Timestamp\":\"2020-06-01T00:00:00Z\",\"SignatureVersion\":\"1\",\"Signature\":"
             "\"AAAA\",\"SigningCertURL\":\"u\"}",
             runs[i]);
    int want = i == 4 ? 0 : SL_EJSON; /* four backslashes: two escaped ones, then text */
    if (parse_rc(env, &why) != want) UNIT_FAIL_("%s: not %d", runs[i], want);
  }
  static const char raw_nul[] = "{\"Type\":\"Notification\"\0}";
  ASSERT_INT_EQ(sns_parse(raw_nul, sizeof raw_nul - 1, &m, &why), SL_EJSON);
  /* a key given twice */
  ok = body_with(NULL, NULL);
  ASSERT_TRUE(ok != NULL);
  size_t n = strlen(ok);
  char twice[1024];
  snprintf(twice, sizeof twice, "%.*s,\"Message\":\"other\"}", (int)(n - 1), ok);
  ASSERT_INT_EQ(parse_rc(twice, &why), SL_EJSON);
  ASSERT_STR_EQ(why, "the envelope has a key twice");
  /* unknown keys and other-case keys are ignored */
  snprintf(twice, sizeof twice, "%.*s,\"message\":\"other\",\"Extra\":[1]}", (int)(n - 1), ok);
  ASSERT_INT_EQ(sns_parse(twice, strlen(twice), &m, &why), 0);
  ASSERT_STR_EQ(m->message, "m");
  sns_msg_free(m);
  free(ok);
  /* a confirmation needs Token and SubscribeURL */
  static const char conf[] =
      "{\"Type\":\"SubscriptionConfirmation\",\"MessageId\":\"i\",\"TopicArn\":\"t\","
      "\"Message\":\"m\",\"Timestamp\":\"2020-06-01T00:00:00Z\",\"SignatureVersion\":\"1\","
      "\"Signature\":\"AAAA\",\"SigningCertURL\":\"u\"";
  char cb[1024];
  snprintf(cb, sizeof cb, "%s,\"SubscribeURL\":\"https://x/\"}", conf);
  ASSERT_INT_EQ(parse_rc(cb, &why), SL_EFIELD);
  ASSERT_STR_EQ(why, "the envelope has no Token");
  snprintf(cb, sizeof cb, "%s,\"Token\":\"abc\"}", conf);
  ASSERT_INT_EQ(parse_rc(cb, &why), SL_EFIELD);
  ASSERT_STR_EQ(why, "the envelope has no SubscribeURL");
  snprintf(cb, sizeof cb, "%s,\"Token\":\"abc\",\"SubscribeURL\":\"https://x/\"}", conf);
  ASSERT_INT_EQ(parse_rc(cb, &why), 0);
  /* a NULL why is allowed */
  ASSERT_INT_EQ(parse_rc("[]", NULL), SL_EJSON);
  return 0;
}

/* Sign with a key made here, serialize, parse back, verify; then any
 * change to a signed field breaks the signature. */
static int roundtrip(enum sns_type type, const char *version, const char *subject) {
  EVP_PKEY *key = test_key();
  ASSERT_TRUE(key != NULL);
  size_t klen = 0;
  char *kpem = key_pem(key, &klen);
  ASSERT_TRUE(kpem != NULL);
  sns_cert *c = test_cert(key, 1577836800, 4102444800); /* 2020 .. 2100 */
  ASSERT_TRUE(c != NULL);
  sns_msg *m =
      make_msg(type, "{\"eventType\":\"Send\"}", subject, "2020-06-01T12:34:56.789Z", version);
  ASSERT_TRUE(m != NULL);
  ASSERT_INT_EQ(sns_sign(m, kpem, klen), 0);
  ASSERT_TRUE(m->signature != NULL);
  ASSERT_TRUE(strpbrk(m->signature, "\r\n") == NULL);
  ASSERT_INT_EQ(strlen(m->signature), 344); /* 256 bytes in base64 */
  ASSERT_INT_EQ(sns_verify(m, c), 0);
  char *json = sns_to_json(m);
  ASSERT_TRUE(json != NULL);
  sns_msg *p = NULL;
  const char *why = NULL;
  ASSERT_INT_EQ(sns_parse(json, strlen(json), &p, &why), 0);
  free(json);
  ASSERT_INT_EQ(sns_verify(p, c), 0);
  ASSERT_STR_EQ(p->message, m->message);
  /* each signed field, changed */
  char **signed_fields[] = {&p->message,
                            &p->message_id,
                            &p->timestamp,
                            &p->topic_arn,
                            type == SNS_NOTIFICATION ? &p->subject : &p->token,
                            type == SNS_NOTIFICATION ? NULL : &p->subscribe_url};
  for (size_t i = 0; i < sizeof signed_fields / sizeof signed_fields[0]; i++) {
    if (!signed_fields[i] || !*signed_fields[i]) continue;
    char *saved = *signed_fields[i];
    *signed_fields[i] =
        (char *)(strcmp(saved, "2020-06-01T12:34:56.788Z") == 0 ? "2020-06-01T12:34:56.789Z"
                                                                : "2020-06-01T12:34:56.788Z");
    int rc = sns_verify(p, c);
    *signed_fields[i] = saved;
    ASSERT_INT_EQ(rc, SL_ESIG);
  }
  ASSERT_INT_EQ(sns_verify(p, c), 0);
  /* fields outside the canonical string are not signed */
  ASSERT_INT_EQ(replace(&p->signing_cert_url, TEST_CERT_URL "x"), 0);
  ASSERT_INT_EQ(sns_verify(p, c), 0);
  /* the other Type over the same fields is another string */
  p->type = type == SNS_NOTIFICATION ? SNS_UNSUBSCRIBE_CONFIRMATION : SNS_NOTIFICATION;
  ASSERT_INT_EQ(replace(&p->type_str, NULL), 0);
  if (!p->token) ASSERT_INT_EQ(replace(&p->token, "t"), 0);
  if (!p->subscribe_url) ASSERT_INT_EQ(replace(&p->subscribe_url, "https://x/"), 0);
  ASSERT_INT_EQ(sns_verify(p, c), SL_ESIG);
  /* another key does not verify */
  EVP_PKEY *other = EVP_RSA_gen(1024);
  ASSERT_TRUE(other != NULL);
  sns_cert *oc = test_cert(other, 1577836800, 4102444800);
  ASSERT_TRUE(oc != NULL);
  ASSERT_INT_EQ(sns_verify(m, oc), SL_ESIG);
  sns_cert_free(oc);
  EVP_PKEY_free(other);
  sns_msg_free(p);
  sns_msg_free(m);
  sns_cert_free(c);
  free(kpem);
  return 0;
}

static int t_sign_verify_v1(void) {
  if (roundtrip(SNS_NOTIFICATION, "1", "Amazon SES Email Event Notification")) return 1;
  if (roundtrip(SNS_NOTIFICATION, "1", NULL)) return 1;
  return roundtrip(SNS_SUBSCRIPTION_CONFIRMATION, "1", NULL);
}

static int t_sign_verify_v2(void) {
  if (roundtrip(SNS_NOTIFICATION, "2", "Amazon SES Email Event Notification")) return 1;
  if (roundtrip(SNS_NOTIFICATION, "2", NULL)) return 1;
  return roundtrip(SNS_SUBSCRIPTION_CONFIRMATION, "2", NULL);
}

static int t_sign_errors(void) {
  sns_msg *m = make_msg(SNS_NOTIFICATION, "m", NULL, "2020-06-01T00:00:00Z", "3");
  ASSERT_TRUE(m != NULL);
  EVP_PKEY *key = test_key();
  ASSERT_TRUE(key != NULL);
  size_t klen = 0;
  char *kpem = key_pem(key, &klen);
  ASSERT_TRUE(kpem != NULL);
  ASSERT_INT_EQ(sns_sign(m, kpem, klen), SL_ESIGVER);
  ASSERT_INT_EQ(replace(&m->signature_version, "2"), 0);
  ASSERT_INT_EQ(sns_sign(m, "not a key", 9), SL_EINVAL);
  ASSERT_NULL(m->signature);
  size_t clen;
  char *cert = unit_read_fixture(CERT_7506, &clen);
  ASSERT_INT_EQ(sns_sign(m, cert, clen), SL_EINVAL);
  free(cert);
  free(m->topic_arn);
  m->topic_arn = NULL;
  ASSERT_INT_EQ(sns_sign(m, kpem, klen), SL_EFIELD);
  ASSERT_NULL(m->signature);
  free(kpem);
  sns_msg_free(m);
  return 0;
}

/* JSON escapes are decoded before signing: "\/" is "/", a surrogate pair
 * is one 4-byte UTF-8 character. A body that keeps the escapes verifies
 * with a signature made over the decoded text. */
static int t_json_escapes(void) {
  static const char fmt[] =
      "{\"Type\":\"Notification\",\"MessageId\":\"e\\u0073c-1\",\"TopicArn\":"
      "\"arn:aws:sns:us-east-1:123456789012:ses-events\",\"Subject\":\"caf\\u00e9 \\/ "
      "\\ud83d\\ude00\",\"Message\":\"{\\\"a\\\":\\\"x\\/y \\ud83d\\ude00 \\u00e9\\\"}\\n\\t\","
      "\"Timestamp\":\"2020-06-01T00:00:00.000Z\",\"SignatureVersion\":\"%s\","
      "\"Signature\":\"%s\",\"SigningCertURL\":\"https:\\/\\/sns.us-east-1.amazonaws.com\\/"
      "SimpleNotificationService-0123456789abcdef.pem\"}";
  EVP_PKEY *key = test_key();
  ASSERT_TRUE(key != NULL);
  size_t klen = 0;
  char *kpem = key_pem(key, &klen);
  ASSERT_TRUE(kpem != NULL);
  sns_cert *c = test_cert(key, 1577836800, 4102444800);
  ASSERT_TRUE(c != NULL);
  for (int v = 1; v <= 2; v++) {
    const char *ver = v == 1 ? "1" : "2";
    char body[2048];
    snprintf(body, sizeof body, fmt, ver, "AAAA");
    sns_msg *m = NULL;
    const char *why = NULL;
    ASSERT_INT_EQ(sns_parse(body, strlen(body), &m, &why), 0);
    ASSERT_STR_EQ(m->message, "{\"a\":\"x/y \xF0\x9F\x98\x80 \xC3\xA9\"}\n\t");
    ASSERT_INT_EQ(m->message_len, 21);
    ASSERT_STR_EQ(m->subject, "caf\xC3\xA9 / \xF0\x9F\x98\x80");
    ASSERT_STR_EQ(m->message_id, "esc-1");
    ASSERT_STR_EQ(m->signing_cert_url, TEST_CERT_URL);
    ASSERT_INT_EQ(sns_url_allowed(m->signing_cert_url, 1), 0);
    ASSERT_INT_EQ(sns_verify(m, c), SL_ESIG);
    ASSERT_INT_EQ(sns_sign(m, kpem, klen), 0);
    ASSERT_INT_EQ(sns_verify(m, c), 0);
    /* the escaped body with the new signature */
    snprintf(body, sizeof body, fmt, ver, m->signature);
    sns_msg *e = NULL;
    ASSERT_INT_EQ(sns_parse(body, strlen(body), &e, &why), 0);
    ASSERT_INT_EQ(sns_verify(e, c), 0);
    sns_msg_free(e);
    /* and through sns_to_json, which writes the characters unescaped */
    char *json = sns_to_json(m);
    ASSERT_TRUE(json != NULL);
    ASSERT_TRUE(strstr(json, "\xF0\x9F\x98\x80") != NULL);
    ASSERT_INT_EQ(sns_parse(json, strlen(json), &e, &why), 0);
    free(json);
    ASSERT_INT_EQ(sns_verify(e, c), 0);
    sns_msg_free(e);
    sns_msg_free(m);
  }
  /* a lone surrogate is not JSON cJSON accepts */
  char bad[2048];
  snprintf(bad, sizeof bad, fmt, "1", "AAAA");
  char *p = strstr(bad, "\\ude00");
  ASSERT_TRUE(p != NULL);
  memcpy(p, "\\u0041", 6);
  ASSERT_INT_EQ(parse_rc(bad, NULL), SL_EJSON);
  sns_cert_free(c);
  free(kpem);
  return 0;
}

/* sns_to_json writes the present keys in SNS's order. */
static int t_to_json_order(void) {
  sns_msg *m = load_msg("sns/sns-v1-subscriptionconfirmation-aws-sdk-java-v2.json");
  ASSERT_TRUE(m != NULL);
  ASSERT_INT_EQ(replace(&m->subject, "s"), 0);
  ASSERT_INT_EQ(replace(&m->unsubscribe_url, "https://sns.us-west-2.amazonaws.com/?u"), 0);
  char *json = sns_to_json(m);
  ASSERT_TRUE(json != NULL);
  cJSON *root = cJSON_Parse(json);
  ASSERT_TRUE(root != NULL);
  static const char *const order[] = {"Type",         "MessageId",      "Token",
                                      "TopicArn",     "Subject",        "Message",
                                      "SubscribeURL", "Timestamp",      "SignatureVersion",
                                      "Signature",    "SigningCertURL", "UnsubscribeURL"};
  size_t i = 0;
  for (cJSON *it = root->child; it; it = it->next, i++) {
    ASSERT_TRUE(i < sizeof order / sizeof order[0]);
    ASSERT_STR_EQ(it->string, order[i]);
  }
  ASSERT_INT_EQ(i, 12);
  cJSON_Delete(root);
  free(json);
  /* absent fields are left out; the result still verifies */
  sns_msg_free(m);
  m = load_msg("sns/sns-v2-notification-aws-sdk-java-v2.json");
  ASSERT_TRUE(m != NULL);
  json = sns_to_json(m);
  ASSERT_TRUE(json != NULL);
  static const char start[] = "{\"Type\":\"Notification\",\"MessageId\":";
  ASSERT_TRUE(strncmp(json, start, sizeof start - 1) == 0);
  ASSERT_TRUE(strstr(json, "Subject") == NULL && strstr(json, "Token") == NULL);
  sns_msg *p = NULL;
  ASSERT_INT_EQ(sns_parse(json, strlen(json), &p, NULL), 0);
  sns_cert *c = load_cert(CERT_7506);
  ASSERT_TRUE(c != NULL);
  ASSERT_INT_EQ(sns_verify(p, c), 0);
  sns_cert_free(c);
  sns_msg_free(p);
  free(json);
  sns_msg_free(m);
  return 0;
}

/* sns_verify from several threads over shared messages and certificates. */
struct verify_job {
  sns_msg *msgs[N_FIXTURES];
  sns_cert *certs[N_FIXTURES];
  int failures;
};

static void *verify_thread(void *arg) {
  struct verify_job *job = arg;
  for (int round = 0; round < 20; round++) {
    for (size_t i = 0; i < N_FIXTURES; i++) {
      if (sns_verify(job->msgs[i], job->certs[i]) != fixtures[i].expect)
        __atomic_add_fetch(&job->failures, 1, __ATOMIC_RELAXED);
    }
  }
  return NULL;
}

static int t_verify_threads(void) {
  struct verify_job job = {.failures = 0};
  for (size_t i = 0; i < N_FIXTURES; i++) {
    job.msgs[i] = load_msg(fixtures[i].file);
    job.certs[i] = load_cert(fixtures[i].cert);
    ASSERT_TRUE(job.msgs[i] && job.certs[i]);
  }
  /* more threads than a certificate keeps key contexts (8): some are set
   * up for one message and freed */
  pthread_t th[12];
  for (int t = 0; t < 12; t++) ASSERT_INT_EQ(pthread_create(&th[t], NULL, verify_thread, &job), 0);
  for (int t = 0; t < 12; t++) pthread_join(th[t], NULL);
  ASSERT_INT_EQ(job.failures, 0);
  for (size_t i = 0; i < N_FIXTURES; i++) {
    sns_msg_free(job.msgs[i]);
    sns_cert_free(job.certs[i]);
  }
  return 0;
}

/* A certificate's kept key contexts give the right answer after a good
 * signature, a changed one, one of the wrong length and one of the other
 * digest, in every order: a context reused after a mismatch or an error
 * judges the next message alone. */
static int t_verify_reuse(void) {
  sns_msg *v1 = load_msg("sns/sns-v1-notification-with-subject-aws-sdk-java-v2.json");
  sns_msg *v2 = load_msg("sns/sns-v2-notification-aws-sdk-java-v2.json");
  sns_msg *changed = load_msg("sns/sns-v2-notification-aws-sdk-java-v2.json");
  sns_msg *shortsig = load_msg("sns/sns-v2-notification-aws-sdk-java-v2.json");
  sns_msg *swapped = load_msg("sns/sns-v1-notification-with-subject-aws-sdk-java-v2.json");
  sns_cert *c = load_cert(CERT_7506);
  ASSERT_TRUE(v1 && v2 && changed && shortsig && swapped && c);
  changed->signature[10] = changed->signature[10] == 'A' ? 'B' : 'A';
  ASSERT_INT_EQ(replace(&shortsig->signature, "AAAA"), 0);
  ASSERT_INT_EQ(replace(&swapped->signature_version, "2"), 0);
  struct {
    sns_msg *m;
    int expect;
  } seq[] = {{v2, 0},
             {changed, SL_ESIG},
             {v2, 0},
             {shortsig, SL_ESIG},
             {v2, 0},
             {v1, 0},
             {swapped, SL_ESIG},
             {v1, 0},
             {changed, SL_ESIG},
             {shortsig, SL_ESIG},
             {v1, 0},
             {v2, 0},
             {swapped, SL_ESIG},
             {v2, 0}};
  for (int round = 0; round < 20; round++)
    for (size_t i = 0; i < sizeof seq / sizeof seq[0]; i++) {
      int rc = sns_verify(seq[i].m, c);
      if (rc != seq[i].expect) fprintf(stderr, "    round %d, step %zu: %d\n", round, i, rc);
      ASSERT_INT_EQ(rc, seq[i].expect);
    }
  sns_msg_free(v1);
  sns_msg_free(v2);
  sns_msg_free(changed);
  sns_msg_free(shortsig);
  sns_msg_free(swapped);
  sns_cert_free(c);
  return 0;
}

const struct unit_test sns_tests[] = {
    {"fixtures_verify", t_fixtures_verify},
    {"parse_fields", t_parse_fields},
    {"canonical_with_subject", t_canonical_with_subject},
    {"canonical_no_subject", t_canonical_no_subject},
    {"canonical_confirmation", t_canonical_confirmation},
    {"subject_removed_fails", t_subject_removed_fails},
    {"version_swapped_fails", t_version_swapped_fails},
    {"bad_base64", t_bad_base64},
    {"timestamp_outside_validity", t_timestamp_outside_validity},
    {"cert_parse", t_cert_parse},
    {"cert_url_rule", t_cert_url_rule},
    {"cert_file_name", t_cert_file_name},
    {"parse_errors", t_parse_errors},
    {"sign_verify_v1", t_sign_verify_v1},
    {"sign_verify_v2", t_sign_verify_v2},
    {"sign_errors", t_sign_errors},
    {"json_escapes", t_json_escapes},
    {"to_json_order", t_to_json_order},
    {"verify_threads", t_verify_threads},
    {"verify_reuse", t_verify_reuse},
    {0},
};
