/* verify.c - signature verifications per second with the certificate in
 * memory, on one core: the cost the security path adds to every event.
 * Usage: verify [SECONDS]   (prints "verify: N verifications/s (v1 ..., v2 ...)") */
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sns.h"
#include "util.h"

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A fresh RSA-2048 key and a self-signed certificate valid around now,
 * as PEM texts. */
static int make_key(char **key_pem, char **cert_pem) {
  EVP_PKEY *pkey = EVP_RSA_gen(2048);
  X509 *x = X509_new();
  if (!pkey || !x) return -1;
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
  X509_gmtime_adj(X509_getm_notBefore(x), -86400);
  X509_gmtime_adj(X509_getm_notAfter(x), 86400L * 365);
  X509_set_pubkey(x, pkey);
  X509_NAME *name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"sns.amazonaws.com",
                             -1, -1, 0);
  X509_set_issuer_name(x, name);
  X509_sign(x, pkey, EVP_sha256());
  BIO *kb = BIO_new(BIO_s_mem()), *cb = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(kb, pkey, NULL, NULL, 0, NULL, NULL);
  PEM_write_bio_X509(cb, x);
  char *p;
  long n = BIO_get_mem_data(kb, &p);
  *key_pem = util_strndup(p, (size_t)n);
  n = BIO_get_mem_data(cb, &p);
  *cert_pem = util_strndup(p, (size_t)n);
  BIO_free(kb);
  BIO_free(cb);
  X509_free(x);
  EVP_PKEY_free(pkey);
  return 0;
}

static double rate(sns_msg *m, const sns_cert *cert, double seconds) {
  long n = 0;
  double start = now_s(), end;
  do {
    for (int i = 0; i < 200; i++)
      if (sns_verify(m, cert) != 0) {
        fprintf(stderr, "verify: a correctly signed message did not verify\n");
        exit(1);
      }
    n += 200;
    end = now_s();
  } while (end - start < seconds);
  return (double)n / (end - start);
}

int main(int argc, char **argv) {
  double seconds = argc > 1 ? strtod(argv[1], NULL) : 2.0;
  char *key, *pem;
  if (make_key(&key, &pem)) return 1;
  sns_cert *cert;
  if (sns_cert_parse(pem, strlen(pem), &cert)) return 1;
  char ts[25];
  util_format_iso8601(util_now_ms(), ts);
  /* A 2 KB message, as SES bounces are. */
  char body[2048];
  memset(body, 'x', sizeof body - 1);
  body[sizeof body - 1] = 0;
  sns_msg m = {.type = SNS_NOTIFICATION,
               .type_str = "Notification",
               .message_id = "0b71e34e-42c3-486a-9e32-b1928ec994b5",
               .topic_arn = "arn:aws:sns:us-east-1:123456789012:ses-events",
               .message = body,
               .message_len = sizeof body - 1,
               .timestamp = ts,
               .signing_cert_url =
                   "https://sns.us-east-1.amazonaws.com/"
                   "SimpleNotificationService-0123456789abcdef.pem"};
  double r[2];
  for (int v = 0; v < 2; v++) {
    m.signature_version = v ? "2" : "1";
    m.signature = NULL;
    if (sns_sign(&m, key, strlen(key))) return 1;
    r[v] = rate(&m, cert, seconds);
    free(m.signature);
  }
  printf(
      "verify: %.0f verifications/s on one core (SignatureVersion 1: %.0f/s, 2: %.0f/s; "
      "target >= 20000/s)\n",
      r[1] < r[0] ? r[1] : r[0], r[0], r[1]);
  sns_cert_free(cert);
  free(key);
  free(pem);
  return 0;
}
