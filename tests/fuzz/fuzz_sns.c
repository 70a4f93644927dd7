/* fuzz_sns.c - libFuzzer target for the SNS envelope (sns.h).
 *
 * The input is a POST /sns body. What is checked:
 *  - sns_parse never crashes; a parsed envelope has what its Type needs.
 *  - sns_canonical succeeds on every parsed envelope and equals the string
 *    rebuilt here from the SNS documentation's key order.
 *  - sns_url_allowed on SigningCertURL, SubscribeURL, UnsubscribeURL and on
 *    the input itself: an allowed URL is one libcurl (which fetches it in
 *    outbound.c) reads with exactly the host we checked, no user info, no
 *    port; a certificate URL's file name (certcache.c and import.c build a
 *    path from it) is a plain "SimpleNotificationService-<hex>.pem".
 *  - sns_to_json round trip: sns_parse(sns_to_json(m)) equals m.
 *  - sns_verify against the fixture certificates (the AWS ones for the
 *    real fixtures, else the test PKI's) returns a documented code; on one
 *    input in eight the envelope is signed with the test key and must then
 *    verify (or fail only on the Timestamp).
 * The certificates are read once from FUZZ_FIXTURES (set by the Makefile). */
#include <curl/curl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "arena.h"
#include "error.h"
#include "sns.h"
#include "util.h"

#ifndef FUZZ_FIXTURES
#define FUZZ_FIXTURES "tests/fixtures"
#endif

#define CHECK(cond)                                                                        \
  do {                                                                                     \
    if (!(cond)) {                                                                         \
      fprintf(stderr, "fuzz_sns: check failed at %s:%d: %s\n", __FILE__, __LINE__, #cond); \
      abort();                                                                             \
    }                                                                                      \
  } while (0)

static const char *const cert_files[] = {
    "certs/SimpleNotificationService-6aad65c2f9911b05cd53efda11f913f9.pem",
    "certs/SimpleNotificationService-7506a1e35b36ef5a444dd1a8e7cc3ed8.pem",
    "pki/SimpleNotificationService-0123456789abcdef0123456789abcdef.pem",
};
#define N_CERTS (sizeof cert_files / sizeof cert_files[0])
#define TEST_CERT (N_CERTS - 1) /* the test PKI's, signed by signing.key */

static sns_cert *certs[N_CERTS];
static char *signing_key;
static size_t signing_key_len;

static char *read_fixture(const char *rel, size_t *len) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", FUZZ_FIXTURES, rel);
  FILE *f = fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "fuzz_sns: cannot read %s (build with make fuzz)\n", path);
    exit(2);
  }
  buf b;
  buf_init(&b, 1 << 20);
  char chunk[4096];
  size_t n;
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) CHECK(buf_append(&b, chunk, n) == 0);
  fclose(f);
  *len = b.len;
  return buf_take(&b);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  arena_install_cjson(); /* cJSON on the per-thread arenas, as in the binary */
  for (size_t i = 0; i < N_CERTS; i++) {
    size_t len;
    char *pem = read_fixture(cert_files[i], &len);
    CHECK(sns_cert_parse(pem, len, &certs[i]) == 0);
    free(pem);
  }
  signing_key = read_fixture("pki/signing.key", &signing_key_len);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  return 0;
}

static int streq(const char *a, const char *b) {
  if (!a || !b) return a == b;
  return strcmp(a, b) == 0;
}

/* The host part of an https URL as we read it: between "://" and '/'. */
static int our_host(const char *url, char *out, size_t outlen) {
  const char *h = url + 8;
  const char *slash = strchr(h, '/');
  size_t n = slash ? (size_t)(slash - h) : strlen(h);
  if (n >= outlen) return -1;
  memcpy(out, h, n);
  out[n] = 0;
  return 0;
}

/* An allowed URL must mean to libcurl what it means to us. */
static void check_allowed_url(const char *url, int cert) {
  CHECK(strncasecmp(url, "https://", 8) == 0);
  char host[512];
  CHECK(our_host(url, host, sizeof host) == 0);
  CHECK(strncmp(host, "sns.", 4) == 0);
  for (const char *p = host; *p; p++)
    CHECK((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' || *p == '.');
  for (const unsigned char *p = (const unsigned char *)url; *p; p++)
    CHECK(*p > 0x20 && *p < 0x7f && *p != '\\' && *p != '#');
  if (cert) {
    const char *name = sns_cert_file_name(url);
    CHECK(name && strncmp(name, "SimpleNotificationService-", 26) == 0);
    CHECK(!strchr(name, '/') && !strchr(name, '\\') && !strstr(name, ".."));
    CHECK(!strchr(url, '?'));
    CHECK(sns_url_allowed(url, 0) == 0); /* a certificate URL is an allowed URL */
  }
  CURLU *u = curl_url();
  CHECK(u);
  if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK) {
    char *chost = NULL, *cuser = NULL, *cport = NULL, *cscheme = NULL;
    CHECK(curl_url_get(u, CURLUPART_HOST, &chost, 0) == CURLUE_OK);
    if (strcmp(chost, host) != 0) {
      fprintf(stderr, "fuzz_sns: URL %s: we checked host \"%s\", libcurl connects to \"%s\"\n", url,
              host, chost);
      abort();
    }
    CHECK(curl_url_get(u, CURLUPART_USER, &cuser, 0) == CURLUE_NO_USER);
    CHECK(curl_url_get(u, CURLUPART_PORT, &cport, 0) == CURLUE_NO_PORT);
    CHECK(curl_url_get(u, CURLUPART_SCHEME, &cscheme, 0) == CURLUE_OK);
    CHECK(strcmp(cscheme, "https") == 0);
    curl_free(chost);
    curl_free(cuser);
    curl_free(cport);
    curl_free(cscheme);
  }
  curl_url_cleanup(u);
}

static void probe_url(const char *url) {
  if (!url) {
    CHECK(sns_url_allowed(NULL, 0) == SL_ECERTURL);
    return;
  }
  for (int cert = 0; cert <= 1; cert++) {
    int rc = sns_url_allowed(url, cert);
    CHECK(rc == 0 || rc == SL_ECERTURL);
    if (rc == 0) check_allowed_url(url, cert);
  }
}

/* The canonical string per the SNS documentation, built independently. */
static void check_canonical(const sns_msg *m) {
  char *s = NULL;
  size_t len = 0;
  int rc = sns_canonical(m, &s, &len);
  CHECK(rc == 0); /* sns_parse guarantees every field the Type signs */
  buf b;
  buf_init(&b, (size_t)1 << 30);
#define KV(k, v) \
  CHECK(buf_appends(&b, k "\n") == 0 && buf_appends(&b, v) == 0 && buf_appends(&b, "\n") == 0)
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
  KV("Type", m->type_str);
#undef KV
  CHECK(len == b.len && memcmp(s, b.data, len) == 0 && s[len] == 0);
  /* Only Message may hold a line break, so the string splits one way. */
  const char *others[] = {m->message_id,        m->subject,        m->subscribe_url,
                          m->timestamp,         m->token,          m->topic_arn,
                          m->type_str,          m->signature,      m->signing_cert_url,
                          m->signature_version, m->unsubscribe_url};
  for (size_t i = 0; i < sizeof others / sizeof others[0]; i++)
    CHECK(!others[i] || !strpbrk(others[i], "\r\n"));
  buf_free(&b);
  free(s);
}

static void check_round_trip(const sns_msg *m) {
  char *json = sns_to_json(m);
  CHECK(json != NULL);
  sns_msg *m2 = NULL;
  const char *why = NULL;
  int rc = sns_parse(json, strlen(json), &m2, &why);
  if (rc != 0) {
    fprintf(stderr, "fuzz_sns: sns_parse(sns_to_json(m)) failed: %d %s\n%s\n", rc, why ? why : "",
            json);
    abort();
  }
  CHECK(m2->type == m->type);
  CHECK(streq(m2->type_str, m->type_str));
  CHECK(streq(m2->message_id, m->message_id));
  CHECK(streq(m2->topic_arn, m->topic_arn));
  CHECK(streq(m2->subject, m->subject));
  CHECK(m2->message_len == m->message_len);
  CHECK(memcmp(m2->message, m->message, m->message_len) == 0);
  CHECK(streq(m2->timestamp, m->timestamp));
  CHECK(m2->timestamp_ms == m->timestamp_ms);
  CHECK(streq(m2->signature_version, m->signature_version));
  CHECK(streq(m2->signature, m->signature));
  CHECK(streq(m2->signing_cert_url, m->signing_cert_url));
  CHECK(streq(m2->subscribe_url, m->subscribe_url));
  CHECK(streq(m2->unsubscribe_url, m->unsubscribe_url));
  CHECK(streq(m2->token, m->token));
  sns_msg_free(m2);
  free(json);
}

static const sns_cert *cert_for(const sns_msg *m) {
  const char *name = sns_cert_file_name(m->signing_cert_url);
  for (size_t i = 0; i < N_CERTS; i++) {
    const char *fname = strrchr(cert_files[i], '/') + 1;
    if (name && strcmp(name, fname) == 0) return certs[i];
  }
  return certs[TEST_CERT];
}

static uint32_t fnv1a(const uint8_t *d, size_t n) {
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < n; i++) h = (h ^ d[i]) * 16777619u;
  return h;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  /* The input as a URL too: a NUL-terminated copy. */
  char *text = malloc(size + 1);
  CHECK(text);
  memcpy(text, data, size);
  text[size] = 0;
  probe_url(text);
  free(text);

  /* The exact bytes, unterminated, so ASan sees any read past the end. */
  sns_msg *m = NULL;
  const char *why = NULL;
  int rc = sns_parse((const char *)data, size, &m, &why);
  if (rc != 0) {
    CHECK(rc == SL_EJSON || rc == SL_EFIELD || rc == SL_ETYPE);
    CHECK(why != NULL && m == NULL);
    return 0;
  }
  CHECK(m->type == SNS_NOTIFICATION || m->type == SNS_SUBSCRIPTION_CONFIRMATION ||
        m->type == SNS_UNSUBSCRIBE_CONFIRMATION);
  CHECK(m->message_id && m->topic_arn && m->message && m->timestamp && m->signature_version &&
        m->signature && m->signing_cert_url && m->type_str);
  CHECK(m->message_len == strlen(m->message));
  if (m->type != SNS_NOTIFICATION) CHECK(m->token && m->subscribe_url);

  check_canonical(m);
  probe_url(m->signing_cert_url);
  probe_url(m->subscribe_url);
  probe_url(m->unsubscribe_url);
  (void)sns_cert_file_name(m->signing_cert_url);
  check_round_trip(m);

  rc = sns_verify(m, cert_for(m));
  CHECK(rc == 0 || rc == SL_ESIGVER || rc == SL_EBASE64 || rc == SL_ESIG || rc == SL_ETIME ||
        rc == SL_ENOMEM);

  /* Signing is slow (RSA 2048): one input in eight. */
  if (fnv1a(data, size) % 8 == 0) {
    rc = sns_sign(m, signing_key, signing_key_len);
    if (rc == 0) {
      rc = sns_verify(m, certs[TEST_CERT]);
      int64_t nb = sns_cert_not_before(certs[TEST_CERT]), na = sns_cert_not_after(certs[TEST_CERT]);
      if (m->timestamp_ms >= nb && m->timestamp_ms <= na)
        CHECK(rc == 0);
      else
        CHECK(rc == SL_ETIME);
      check_round_trip(m);
    } else {
      CHECK(rc == SL_ESIGVER);
    }
  }
  sns_msg_free(m);
  return 0;
}
