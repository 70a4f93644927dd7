/* bench/suppression.c - load for the suppression list benchmark (run by
 * bench/suppression.sh).
 *
 *   suppression csv N             prints N addresses in SES's bulk CSV format
 *                                 (address i is user<i>@d<i % 1000>.example)
 *   suppression load PORT N_LISTED [GETS] [CHECKS] [SERVER_PID]
 *                                 GETS sequential GET /api/suppression/{address}
 *                                 (half listed, half not) over one keep-alive
 *                                 connection, then CHECKS POST
 *                                 /api/suppression/check of 10,000 addresses
 *                                 (a tenth listed); prints p50/p99/max of each
 *                                 and a RESULT line. With SERVER_PID, also the
 *                                 server's CPU time per request (user + system,
 *                                 from /proc): a figure that other load on the
 *                                 machine does not inflate the way it does
 *                                 latency.
 *
 * A plain blocking HTTP/1.1 client: one request at a time, as an
 * application checking before it sends would ask. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CHECK_N 10000

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* xorshift: the same sequence every run. */
static uint64_t rng = 88172645463325252ULL;
static uint64_t next_rand(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

static int connect_to(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect(fd, (struct sockaddr *)&a, sizeof a)) {
    close(fd);
    return -1;
  }
  return fd;
}

static int write_all(int fd, const char *p, size_t n) {
  while (n) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/* A response read into a growable buffer. */
static char *rbuf;
static size_t rcap;

/* Sends req (with body) and reads one response; returns the status, or -1. */
static int roundtrip(int fd, const char *head, const char *body, size_t body_len,
                     size_t *resp_len) {
  if (write_all(fd, head, strlen(head)) || (body_len && write_all(fd, body, body_len))) return -1;
  size_t have = 0, need = 0, header_end = 0;
  for (;;) {
    if (have + 65536 > rcap) {
      rcap = (have + 65536) * 2;
      rbuf = realloc(rbuf, rcap);
      if (!rbuf) return -1;
    }
    ssize_t r = read(fd, rbuf + have, rcap - have - 1);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return -1;
    have += (size_t)r;
    rbuf[have] = 0;
    if (!header_end) {
      char *e = strstr(rbuf, "\r\n\r\n");
      if (!e) continue;
      header_end = (size_t)(e - rbuf) + 4;
      char *cl = strcasestr(rbuf, "\r\nContent-Length:");
      if (!cl || cl > e) return -1;
      need = header_end + strtoul(cl + 17, NULL, 10);
    }
    if (have >= need) break;
  }
  if (resp_len) *resp_len = need - header_end;
  return (int)strtol(rbuf + 9, NULL, 10);
}

/* CPU time (user + system) of process pid in ms, or -1. */
static double cpu_ms(long pid) {
  if (pid <= 0) return -1;
  char path[64], line[1024];
  snprintf(path, sizeof path, "/proc/%ld/stat", pid);
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  size_t n = fread(line, 1, sizeof line - 1, f);
  fclose(f);
  line[n] = 0;
  char *p = strrchr(line, ')'); /* the command may hold spaces */
  if (!p) return -1;
  unsigned long long ut = 0, st = 0;
  /* after ")": state(3) ... utime(14) stime(15) */
  if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
    return -1;
  return (double)(ut + st) * 1000.0 / (double)sysconf(_SC_CLK_TCK);
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double pct(double *v, int n, double p) {
  int i = (int)(p * (n - 1) + 0.5);
  return v[i < n ? i : n - 1];
}

static void address(long i, char *out, size_t n) {
  snprintf(out, n, "user%ld@d%ld.example", i, i % 1000);
}

int main(int argc, char **argv) {
  if (argc >= 3 && strcmp(argv[1], "csv") == 0) {
    long n = strtol(argv[2], NULL, 10);
    char a[64];
    for (long i = 0; i < n; i++) {
      address(i, a, sizeof a);
      printf("%s,%s\n", a, i % 5 == 0 ? "COMPLAINT" : "BOUNCE");
    }
    return 0;
  }
  if (argc < 4 || strcmp(argv[1], "load") != 0) {
    fprintf(stderr, "usage: suppression csv N | suppression load PORT N_LISTED [GETS] [CHECKS]\n");
    return 2;
  }
  int port = (int)strtol(argv[2], NULL, 10);
  long listed = strtol(argv[3], NULL, 10);
  int gets = argc > 4 ? (int)strtol(argv[4], NULL, 10) : 20000;
  int checks = argc > 5 ? (int)strtol(argv[5], NULL, 10) : 100;
  long server_pid = argc > 6 ? strtol(argv[6], NULL, 10) : 0;
  int fd = connect_to(port);
  if (fd < 0) {
    fprintf(stderr, "bench: cannot connect to 127.0.0.1:%d\n", port);
    return 1;
  }
  char head[1024], a[64];
  /* warm-up: the first requests open the pool's connections */
  for (int i = 0; i < 200; i++) {
    address((long)(next_rand() % (uint64_t)listed), a, sizeof a);
    snprintf(head, sizeof head, "GET /api/suppression/%s HTTP/1.1\r\nHost: b\r\n\r\n", a);
    if (roundtrip(fd, head, NULL, 0, NULL) != 200) {
      fprintf(stderr, "bench: GET %s did not answer 200\n", a);
      return 1;
    }
  }
  double *lat = malloc(sizeof *lat * (size_t)(gets > checks ? gets : checks));
  int found = 0, errors = 0;
  double cpu0 = cpu_ms(server_pid);
  for (int i = 0; i < gets; i++) {
    long k = (long)(next_rand() % (uint64_t)listed);
    if (i % 2) k += listed; /* not listed */
    address(k, a, sizeof a);
    snprintf(head, sizeof head, "GET /api/suppression/%s HTTP/1.1\r\nHost: b\r\n\r\n", a);
    double t0 = now_ms();
    int st = roundtrip(fd, head, NULL, 0, NULL);
    lat[i] = now_ms() - t0;
    if (st == 200)
      found++;
    else if (st != 404)
      errors++;
  }
  double cpu1 = cpu_ms(server_pid);
  qsort(lat, (size_t)gets, sizeof *lat, cmp_double);
  double g50 = pct(lat, gets, 0.5), g99 = pct(lat, gets, 0.99), gmax = lat[gets - 1];
  double gcpu = cpu0 >= 0 && cpu1 >= 0 ? (cpu1 - cpu0) / gets : -1;
  printf(
      "  GET /api/suppression/{address}: %d requests (%d found), p50 %.3f ms, p99 %.3f ms, "
      "max %.3f ms, errors %d; server CPU %.3f ms a request\n",
      gets, found, g50, g99, gmax, errors, gcpu);

  /* the bulk check: 10,000 addresses, a tenth of them listed */
  size_t cap = (size_t)CHECK_N * 48 + 64;
  char *body = malloc(cap);
  int bad = 0;
  size_t resp = 0;
  for (int r = 0; r < checks; r++) {
    size_t n = (size_t)snprintf(body, cap, "{\"addresses\":[");
    for (int i = 0; i < CHECK_N; i++) {
      long k = (long)(next_rand() % (uint64_t)listed);
      if (i % 10) k += listed;
      address(k, a, sizeof a);
      n += (size_t)snprintf(body + n, cap - n, "%s\"%s\"", i ? "," : "", a);
    }
    n += (size_t)snprintf(body + n, cap - n, "]}");
    snprintf(head, sizeof head,
             "POST /api/suppression/check HTTP/1.1\r\nHost: b\r\nContent-Type: application/json\r\n"
             "Content-Length: %zu\r\n\r\n",
             n);
    double t0 = now_ms();
    int st = roundtrip(fd, head, body, n, &resp);
    lat[r] = now_ms() - t0;
    if (st != 200) bad++;
  }
  double cpu2 = cpu_ms(server_pid);
  qsort(lat, (size_t)checks, sizeof *lat, cmp_double);
  double c50 = pct(lat, checks, 0.5), c99 = pct(lat, checks, 0.99), cmax = lat[checks - 1];
  double ccpu = cpu1 >= 0 && cpu2 >= 0 ? (cpu2 - cpu1) / checks : -1;
  printf(
      "  POST /api/suppression/check (10,000 addresses, %zu KiB answer): %d requests, p50 %.1f "
      "ms, p99 %.1f ms, max %.1f ms, errors %d; server CPU %.1f ms a request\n",
      resp / 1024, checks, c50, c99, cmax, bad, ccpu);
  printf(
      "RESULT get_p50=%.3f get_p99=%.3f check_p50=%.1f check_p99=%.1f get_cpu=%.3f "
      "check_cpu=%.1f errors=%d\n",
      g50, g99, c50, c99, gcpu, ccpu, errors + bad);
  free(body);
  free(lat);
  free(rbuf);
  close(fd);
  return errors + bad ? 1 : 0;
}
