/* runner.c - the one C unit test binary: runs every suite's table and ends
 * with "unit: N passed, N failed". Usage: unit-tests [FIXTURES_DIR] [FILTER] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "log.h"
#include "unit.h"

/* Weak, so that a listed suite no test file defines still links: the run
 * then reports it as a failure instead of skipping it silently. */
#define SUITE(name) extern const struct unit_test name[] __attribute__((weak));
SUITE(util_tests)
SUITE(sns_tests)
SUITE(ses_tests)
SUITE(store_tests)
SUITE(import_tests)
SUITE(http_tests)
SUITE(config_tests)
SUITE(query_tests)
SUITE(suppression_tests)
SUITE(dnsbl_tests)
SUITE(csv_tests)
SUITE(jsoncheck_tests)
SUITE(hostcheck_tests)
SUITE(sesrep_tests)
SUITE(route_tests)
SUITE(rawz_tests)
SUITE(arena_tests)
#undef SUITE

const char *unit_fixtures = "tests/fixtures";

char *unit_read_fixture(const char *rel, size_t *len) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", unit_fixtures, rel);
  FILE *f = fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "missing fixture %s\n", path);
    exit(2);
  }
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *p = malloc((size_t)n + 1);
  if (!p || fread(p, 1, (size_t)n, f) != (size_t)n) {
    fprintf(stderr, "cannot read fixture %s\n", path);
    exit(2);
  }
  p[n] = 0;
  fclose(f);
  if (len) *len = (size_t)n;
  return p;
}

int main(int argc, char **argv) {
  const struct {
    const char *name;
    const struct unit_test *tests;
  } suites[] = {
      {"util", util_tests},           {"sns", sns_tests},       {"ses", ses_tests},
      {"store", store_tests},         {"import", import_tests}, {"http", http_tests},
      {"config", config_tests},       {"query", query_tests},   {"suppression", suppression_tests},
      {"dnsbl", dnsbl_tests},         {"csv", csv_tests},       {"jsoncheck", jsoncheck_tests},
      {"hostcheck", hostcheck_tests}, {"sesrep", sesrep_tests}, {"route", route_tests},
      {"rawz", rawz_tests},           {"arena", arena_tests},
  };
  log_min_level = LOG_WARN; /* keep the run's output to the results */
  arena_install_cjson();    /* as the binary does: every suite runs on it */
  if (argc > 1)
    unit_fixtures = argv[1];
  else if (getenv("SESLOG_FIXTURES"))
    unit_fixtures = getenv("SESLOG_FIXTURES");
  const char *filter = argc > 2 ? argv[2] : NULL;
  int passed = 0, failed = 0;
  for (size_t s = 0; s < sizeof suites / sizeof suites[0]; s++) {
    if (!suites[s].tests) {
      printf("FAIL %s: the suite is listed but no test file defines %s_tests\n", suites[s].name,
             suites[s].name);
      failed++;
      continue;
    }
    for (const struct unit_test *t = suites[s].tests; t->name; t++) {
      char full[256];
      snprintf(full, sizeof full, "%s.%s", suites[s].name, t->name);
      if (filter && !strstr(full, filter)) continue;
      int rc = t->fn();
      printf("%s %s\n", rc ? "FAIL" : "ok  ", full);
      fflush(stdout);
      if (rc)
        failed++;
      else
        passed++;
    }
  }
  printf("unit: %d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
