/* test_dnsbl.c - the DNSBL watch's pure parts: query names, answers, names. */
#include <stdlib.h>

#include "dnsbl.h"
#include "unit.h"

static int t_query_name_ipv4(void) {
  char q[512];
  ASSERT_INT_EQ(dnsbl_query_name("192.0.2.1", DNSBL_IP, "zen.spamhaus.org", q, sizeof q), 0);
  ASSERT_STR_EQ(q, "1.2.0.192.zen.spamhaus.org");
  ASSERT_INT_EQ(dnsbl_query_name("127.0.0.2", DNSBL_IP, "bl.example", q, sizeof q), 0);
  ASSERT_STR_EQ(q, "2.0.0.127.bl.example");
  ASSERT_INT_EQ(dnsbl_query_name("192.0.2", DNSBL_IP, "bl.example", q, sizeof q), -1);
  ASSERT_INT_EQ(dnsbl_query_name("192.0.2.1", DNSBL_IP, "bl.example", q, 10), -1);
  return 0;
}

static int t_query_name_ipv6(void) {
  char q[512];
  /* RFC 5782 section 2.4's example. */
  ASSERT_INT_EQ(
      dnsbl_query_name("2001:db8:1:2:3:4:567:89ab", DNSBL_IP, "ugly.example.com", q, sizeof q), 0);
  ASSERT_STR_EQ(q,
                "b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2.ugly.example.com");
  ASSERT_INT_EQ(dnsbl_query_name("2001:db8::1", DNSBL_IP, "z.example", q, sizeof q), 0);
  ASSERT_STR_EQ(q, "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.z.example");
  return 0;
}

static int t_query_name_domain(void) {
  char q[512];
  ASSERT_INT_EQ(dnsbl_query_name("mail.example.com", DNSBL_DOMAIN, "dbl.spamhaus.org", q, sizeof q),
                0);
  ASSERT_STR_EQ(q, "mail.example.com.dbl.spamhaus.org");
  char long_name[300];
  memset(long_name, 'a', 250);
  long_name[250] = 0;
  ASSERT_INT_EQ(dnsbl_query_name(long_name, DNSBL_DOMAIN, "dbl.spamhaus.org", q, sizeof q), -1);
  return 0;
}

static int t_special_answers(void) {
  ASSERT_NULL(dnsbl_special_answer(0x7f000002)); /* 127.0.0.2: listed */
  ASSERT_NULL(dnsbl_special_answer(0x7f00000a)); /* 127.0.0.10: PBL */
  ASSERT_NULL(dnsbl_special_answer(0x7f000102)); /* 127.0.1.2: DBL spam domain */
  ASSERT_TRUE(dnsbl_special_answer(0x7f000001) != NULL);
  ASSERT_TRUE(dnsbl_special_answer(0x7f0001ff) != NULL);
  ASSERT_TRUE(dnsbl_special_answer(0x7ffffffc) != NULL);
  ASSERT_TRUE(dnsbl_special_answer(0x7ffffffe) != NULL);
  ASSERT_TRUE(dnsbl_special_answer(0x7fffffff) != NULL);
  ASSERT_TRUE(dnsbl_special_answer(0xc0000201) != NULL); /* 192.0.2.1: not a DNSBL code */
  return 0;
}

static int t_check_name(void) {
  char a[] = "Example.COM.";
  ASSERT_INT_EQ(dnsbl_check_name(a), 0);
  ASSERT_STR_EQ(a, "example.com");
  char b[] = "nodot";
  ASSERT_INT_EQ(dnsbl_check_name(b), -1);
  char c[] = "a..b";
  ASSERT_INT_EQ(dnsbl_check_name(c), -1);
  char d[] = "bad name.com";
  ASSERT_INT_EQ(dnsbl_check_name(d), -1);
  char e[] = "";
  ASSERT_INT_EQ(dnsbl_check_name(e), -1);
  char f[80];
  memset(f, 'x', 64);
  strcpy(f + 64, ".com");
  ASSERT_INT_EQ(dnsbl_check_name(f), -1); /* a label over 63 */
  return 0;
}

const struct unit_test dnsbl_tests[] = {
    {"query_name_ipv4", t_query_name_ipv4},
    {"query_name_ipv6", t_query_name_ipv6},
    {"query_name_domain", t_query_name_domain},
    {"special_answers", t_special_answers},
    {"check_name", t_check_name},
    {0},
};
