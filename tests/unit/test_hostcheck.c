/* test_hostcheck.c - the Host and Origin rules against DNS rebinding
 * (issue 16, finding 3). */
#include "hostcheck.h"
#include "unit.h"

static int t_host(void) {
  char *names[] = {"seslog.example.com", "Intranet-Box"};
  struct hostcheck hc = {names, 2};
  static const char *ok[] = {
      "127.0.0.1:8490",
      "127.0.0.1",
      "localhost:8490",
      "LOCALHOST",
      "localhost.",
      "app.localhost:3000",
      "[::1]:8490",
      "[::1]",
      "10.1.2.3:8490",
      "seslog.example.com",
      "SESLOG.example.com:443",
      "intranet-box",
  };
  static const char *bad[] = {
      "evil.example",
      "evil.example:8490",
      "127.0.0.1.evil.example",
      "localhost.evil.example",
      "seslog.example.co",
      "",
      ":8490",
      "[::1",
      "[evil]:80",
      "127.0.0.1:x",
      "127.0.0.1:",
      "a b",
      "127.0.0.1:1234567",
      "evil/localhost",
      "example.com@localhost",
  };
  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) ASSERT_TRUE(hostcheck_host_ok(&hc, ok[i]));
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    ASSERT_TRUE(!hostcheck_host_ok(&hc, bad[i]));
  ASSERT_TRUE(hostcheck_host_ok(&hc, NULL));
  ASSERT_TRUE(!hostcheck_host_ok(NULL, "evil.example"));
  return 0;
}

static int t_origin(void) {
  char *names[] = {"seslog.example.com"};
  struct hostcheck hc = {names, 1};
  ASSERT_TRUE(hostcheck_origin_ok(&hc, NULL));
  ASSERT_TRUE(hostcheck_origin_ok(&hc, "http://127.0.0.1:8490"));
  ASSERT_TRUE(hostcheck_origin_ok(&hc, "http://localhost:8490"));
  ASSERT_TRUE(hostcheck_origin_ok(&hc, "https://seslog.example.com"));
  ASSERT_TRUE(!hostcheck_origin_ok(&hc, "https://evil.example"));
  ASSERT_TRUE(!hostcheck_origin_ok(&hc, "null"));
  ASSERT_TRUE(!hostcheck_origin_ok(&hc, "http://127.0.0.1:8490/path"));
  ASSERT_TRUE(!hostcheck_origin_ok(&hc, "http://user@127.0.0.1"));
  ASSERT_TRUE(!hostcheck_origin_ok(&hc, ""));
  char out[64];
  ASSERT_INT_EQ(hostcheck_url_host("https://Seslog.example.com:8443/base/", out, sizeof out), 0);
  ASSERT_STR_EQ(out, "Seslog.example.com");
  ASSERT_INT_EQ(hostcheck_url_host("http://[::1]:8490", out, sizeof out), 0);
  ASSERT_STR_EQ(out, "::1");
  ASSERT_INT_EQ(hostcheck_url_host("not a url", out, sizeof out), -1);
  return 0;
}

const struct unit_test hostcheck_tests[] = {{"host", t_host}, {"origin", t_origin}, {0}};
