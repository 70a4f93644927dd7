/* awscreds.c - AWS credentials from the environment, the shared files, the
 * container endpoint or IMDSv2. */
#include "awscreds.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "error.h"
#include "log.h"
#include "util.h"

#define REFRESH_MARGIN_MS (5 * 60 * 1000) /* fetch again this long before expiry */
#define RETRY_MIN_MS 1000
#define RETRY_MAX_MS 60000
#define FETCH_TIMEOUT_MS 5000
#define FILE_MAX (1 << 20)

enum source { SRC_NONE, SRC_ENV, SRC_CREDENTIALS_FILE, SRC_CONFIG_FILE, SRC_CONTAINER, SRC_IMDS };

static const char *const source_names[] = {"none",        "environment", "shared-credentials-file",
                                           "config-file", "container",   "instance-metadata"};

struct awscreds {
  uv_loop_t *loop;
  outbound *ob;
  enum source src;
  char *userpwd;      /* "KEY:SECRET": a secret, or NULL before the first fetch */
  char *token_header; /* "x-amz-security-token: ...": a secret, or NULL */
  char key_id[128];   /* the access key id in hand (not secret) */
  int64_t expires_ms; /* 0: never */
  /* fetched sources */
  char *url;         /* container: the credentials URL; IMDS: the base address */
  char *auth_header; /* container: "Authorization: ..." (a secret), or NULL */
  char *imds_token;  /* IMDS: "X-aws-ec2-metadata-token: ..." (a secret) */
  char *role;        /* IMDS: the instance profile's role name */
  int step;          /* IMDS: 0 token, 1 role name, 2 credentials */
  int fetching;      /* a request is in flight */
  int64_t retry_ms;  /* next backoff after a failed fetch */
  char error[256];   /* the last fetch error, or "" */
  uv_timer_t timer;  /* refresh and retry */
  int timer_open;
  int closed;
};

static void free_secret(char *s) {
  if (!s) return;
  volatile char *p = s;
  while (*p) *p++ = 0;
  free(s);
}

static char *printf_dup(const char *fmt, const char *a, const char *b) {
  size_t n = strlen(fmt) + strlen(a) + (b ? strlen(b) : 0) + 1;
  char *s = malloc(n);
  if (s) snprintf(s, n, fmt, a, b ? b : "");
  return s;
}

/* Takes new credentials (copied); 0 or SL_ENOMEM. */
static int set_creds(awscreds *c, const char *key, const char *secret, const char *token,
                     int64_t expires_ms) {
  /* They go into header lines: a line break would add a header. */
  if (strpbrk(key, "\r\n:") || strpbrk(secret, "\r\n") || (token && strpbrk(token, "\r\n")))
    return SL_EINVAL;
  char *up = printf_dup("%s:%s", key, secret);
  char *th = token && *token ? printf_dup("x-amz-security-token: %s%s", token, NULL) : NULL;
  if (!up || (token && *token && !th)) {
    free_secret(up);
    free_secret(th);
    return SL_ENOMEM;
  }
  free_secret(c->userpwd);
  free_secret(c->token_header);
  c->userpwd = up;
  c->token_header = th;
  snprintf(c->key_id, sizeof c->key_id, "%s", key);
  c->expires_ms = expires_ms;
  c->error[0] = 0;
  return 0;
}

static const char *env_nonempty(const char *name) {
  const char *v = getenv(name);
  return v && *v ? v : NULL;
}

/* Reads a whole (small) file; NULL when it cannot. */
static char *read_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  buf b;
  buf_init(&b, FILE_MAX);
  char chunk[4096];
  size_t n;
  int bad = 0;
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
    if (buf_append(&b, chunk, n)) bad = 1;
  if (ferror(f)) bad = 1;
  fclose(f);
  if (bad) {
    buf_free(&b);
    return NULL;
  }
  if (!b.data) return util_strdup("");
  return buf_take(&b);
}

static char *trim(char *s) {
  while (*s == ' ' || *s == '\t') s++;
  size_t n = strlen(s);
  while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
    s[--n] = 0;
  return s;
}

struct profile_keys {
  char key[128], secret[256], token[4096];
};

/* Looks up section in an INI file's text (modified in place) and copies
 * its keys. Returns 1 when the section has an access key and a secret. */
static int ini_profile(char *text, const char *section, struct profile_keys *k) {
  int in = 0;
  memset(k, 0, sizeof *k);
  for (char *line = text; line && *line;) {
    char *nl = strchr(line, '\n');
    if (nl) *nl = 0;
    char *s = trim(line);
    if (*s == '[') {
      char *end = strchr(s, ']');
      if (end) {
        *end = 0;
        in = strcmp(trim(s + 1), section) == 0;
      }
    } else if (in && *s != '#' && *s != ';') {
      char *eq = strchr(s, '=');
      if (eq) {
        *eq = 0;
        const char *name = trim(s), *val = trim(eq + 1);
        if (strcasecmp(name, "aws_access_key_id") == 0)
          snprintf(k->key, sizeof k->key, "%s", val);
        else if (strcasecmp(name, "aws_secret_access_key") == 0)
          snprintf(k->secret, sizeof k->secret, "%s", val);
        else if (strcasecmp(name, "aws_session_token") == 0)
          snprintf(k->token, sizeof k->token, "%s", val);
      }
    }
    line = nl ? nl + 1 : NULL;
  }
  return k->key[0] && k->secret[0];
}

/* The profile's keys from one file (config: "[profile NAME]", except
 * "[default]"). Returns 1 when found. */
static int file_profile(const char *path, const char *profile, int config, struct profile_keys *k) {
  char *text = read_file(path);
  if (!text) return 0;
  char section[300];
  if (config && strcmp(profile, "default") != 0)
    snprintf(section, sizeof section, "profile %s", profile);
  else
    snprintf(section, sizeof section, "%s", profile);
  int found = ini_profile(text, section, k);
  volatile char *p = text; /* the file holds secrets */
  while (*p) *p++ = 0;
  free(text);
  return found;
}

/* Sources 1 and 2. Returns 1 when one of them has credentials, 0 when
 * not, or a negative code with err set. */
static int static_source(awscreds *c, char *err, size_t errlen) {
  int rc;
  const char *key = env_nonempty("AWS_ACCESS_KEY_ID");
  const char *secret = env_nonempty("AWS_SECRET_ACCESS_KEY");
  if (!key != !secret) {
    snprintf(err, errlen,
             "set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or neither (then a profile, "
             "the container endpoint or instance metadata is used)");
    return SL_EINVAL;
  }
  if (key && strchr(key, ':')) {
    snprintf(err, errlen, "AWS_ACCESS_KEY_ID must not contain ':'");
    return SL_EINVAL;
  }
  if (key && secret) {
    c->src = SRC_ENV;
    rc = set_creds(c, key, secret, getenv("AWS_SESSION_TOKEN"), 0);
    if (rc == SL_EINVAL)
      snprintf(err, errlen, "the AWS_* credential variables must not hold line breaks");
    return rc ? rc : 1;
  }
  const char *named = env_nonempty("AWS_PROFILE");
  if (!named) named = env_nonempty("AWS_DEFAULT_PROFILE");
  const char *profile = named ? named : "default";
  const char *home = env_nonempty("HOME");
  char cred_path[4096], conf_path[4096];
  if (env_nonempty("AWS_SHARED_CREDENTIALS_FILE"))
    snprintf(cred_path, sizeof cred_path, "%s", getenv("AWS_SHARED_CREDENTIALS_FILE"));
  else
    snprintf(cred_path, sizeof cred_path, "%s/.aws/credentials", home ? home : "");
  if (env_nonempty("AWS_CONFIG_FILE"))
    snprintf(conf_path, sizeof conf_path, "%s", getenv("AWS_CONFIG_FILE"));
  else
    snprintf(conf_path, sizeof conf_path, "%s/.aws/config", home ? home : "");
  struct profile_keys *k = calloc(1, sizeof *k);
  if (!k) return SL_ENOMEM;
  rc = 0;
  if (file_profile(cred_path, profile, 0, k))
    c->src = SRC_CREDENTIALS_FILE;
  else if (file_profile(conf_path, profile, 1, k))
    c->src = SRC_CONFIG_FILE;
  if (c->src != SRC_NONE) {
    rc = set_creds(c, k->key, k->secret, k->token, 0);
    if (rc == SL_EINVAL) snprintf(err, errlen, "profile %s holds a malformed key", profile);
    rc = rc ? rc : 1;
  } else if (named) {
    snprintf(err, errlen,
             "AWS_PROFILE %s has no aws_access_key_id and aws_secret_access_key in %s or %s "
             "(only static keys are read from profiles)",
             named, cred_path, conf_path);
    rc = SL_EINVAL;
  }
  volatile char *p = (volatile char *)k;
  for (size_t i = 0; i < sizeof *k; i++) p[i] = 0;
  free(k);
  return rc;
}

/* 1 when url may carry container credentials: https, or plain http to a
 * loopback address or the container agents' link-local ones. */
static int container_url_ok(const char *url) {
  if (strncmp(url, "https://", 8) == 0) return 1;
  if (strncmp(url, "http://", 7) != 0) return 0;
  const char *h = url + 7;
  static const char *const hosts[] = {"127.",          "localhost",      "[::1]",
                                      "169.254.170.2", "169.254.170.23", "[fd00:ec2::23]"};
  for (size_t i = 0; i < sizeof hosts / sizeof hosts[0]; i++) {
    size_t n = strlen(hosts[i]);
    if (strncmp(h, hosts[i], n) == 0) {
      char next = h[n];
      if (hosts[i][n - 1] == '.' || next == 0 || next == ':' || next == '/') return 1;
    }
  }
  return 0;
}

/* Source 3, configured from the environment. Returns 1 when configured, 0
 * when not, or a negative code with err set. */
static int container_source(awscreds *c, char *err, size_t errlen) {
  const char *full = env_nonempty("AWS_CONTAINER_CREDENTIALS_FULL_URI");
  const char *rel = env_nonempty("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
  if (!full && !rel) return 0;
  if (rel)
    c->url = printf_dup("http://169.254.170.2%s%s", rel, NULL);
  else
    c->url = util_strdup(full);
  if (!c->url) return SL_ENOMEM;
  if (!rel && !container_url_ok(c->url)) {
    snprintf(err, errlen,
             "AWS_CONTAINER_CREDENTIALS_FULL_URI must be https, or http to a loopback address or "
             "169.254.170.2/169.254.170.23");
    return SL_EINVAL;
  }
  const char *token_file = env_nonempty("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
  const char *token = env_nonempty("AWS_CONTAINER_AUTHORIZATION_TOKEN");
  if (token_file) {
    char *t = read_file(token_file);
    if (!t) {
      snprintf(err, errlen, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE %s cannot be read", token_file);
      return SL_EINVAL;
    }
    c->auth_header = printf_dup("Authorization: %s%s", trim(t), NULL);
    free_secret(t);
  } else if (token) {
    c->auth_header = printf_dup("Authorization: %s%s", token, NULL);
  }
  if ((token_file || token) && !c->auth_header) return SL_ENOMEM;
  if (c->auth_header && strpbrk(c->auth_header, "\r\n")) {
    snprintf(err, errlen, "the container authorization token holds a line break");
    return SL_EINVAL;
  }
  c->src = SRC_CONTAINER;
  return 1;
}

/* Source 4. Returns 1 when IMDS is to be asked, 0 when it is disabled. */
static int imds_source(awscreds *c) {
  const char *off = getenv("AWS_EC2_METADATA_DISABLED");
  if (off && strcasecmp(off, "true") == 0) return 0;
  const char *ep = env_nonempty("AWS_EC2_METADATA_SERVICE_ENDPOINT");
  c->url = util_strdup(ep ? ep : "http://169.254.169.254");
  if (!c->url) return SL_ENOMEM;
  size_t n = strlen(c->url);
  while (n && c->url[n - 1] == '/') c->url[--n] = 0; /* paths start with '/' */
  c->src = SRC_IMDS;
  return 1;
}

static void fetch(awscreds *c);

static void on_timer(uv_timer_t *t) {
  fetch(t->data);
}

static void schedule(awscreds *c, int64_t delay_ms) {
  if (c->closed || !c->timer_open) return;
  uv_timer_start(&c->timer, on_timer, (uint64_t)(delay_ms < 0 ? 0 : delay_ms), 0);
}

/* A fetch failed: keep what is in hand while it is valid, retry later. */
static void fetch_failed(awscreds *c, const char *what) {
  c->fetching = 0;
  c->step = 0;
  snprintf(c->error, sizeof c->error, "%s credentials: %s", source_names[c->src], what);
  log_kv(LOG_WARN, "cannot fetch AWS credentials; retrying", "source", source_names[c->src],
         "error", what, NULL);
  if (c->expires_ms && c->expires_ms <= util_now_ms()) {
    free_secret(c->userpwd);
    free_secret(c->token_header);
    c->userpwd = c->token_header = NULL;
    c->key_id[0] = 0;
  }
  schedule(c, c->retry_ms);
  c->retry_ms = c->retry_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : c->retry_ms * 2;
}

/* The JSON both the container endpoint and IMDS answer. */
static void take_json(awscreds *c, const char *body) {
  cJSON *j = cJSON_Parse(body);
  const cJSON *key = cJSON_GetObjectItemCaseSensitive(j, "AccessKeyId");
  const cJSON *secret = cJSON_GetObjectItemCaseSensitive(j, "SecretAccessKey");
  const cJSON *token = cJSON_GetObjectItemCaseSensitive(j, "Token");
  const cJSON *exp = cJSON_GetObjectItemCaseSensitive(j, "Expiration");
  int64_t exp_ms = 0;
  if (!cJSON_IsString(key) || !cJSON_IsString(secret) || !*key->valuestring ||
      !*secret->valuestring ||
      (cJSON_IsString(exp) && util_parse_iso8601(exp->valuestring, &exp_ms))) {
    cJSON_Delete(j);
    fetch_failed(c, "the answer has no AccessKeyId, SecretAccessKey and valid Expiration");
    return;
  }
  int first = c->userpwd == NULL;
  int rc = set_creds(c, key->valuestring, secret->valuestring,
                     cJSON_IsString(token) ? token->valuestring : NULL, exp_ms);
  cJSON_Delete(j);
  if (rc) {
    fetch_failed(c, rc == SL_EINVAL ? "the answer holds a malformed key" : "out of memory");
    return;
  }
  c->fetching = 0;
  c->step = 0;
  c->retry_ms = RETRY_MIN_MS;
  char at[25] = "never";
  if (exp_ms) util_format_iso8601(exp_ms, at);
  log_kv(first ? LOG_INFO : LOG_DEBUG, "AWS credentials fetched", "source", source_names[c->src],
         "access_key_id", c->key_id, "expires", at, NULL);
  if (!exp_ms) return;
  int64_t left = exp_ms - util_now_ms();
  int64_t delay = left - REFRESH_MARGIN_MS;
  if (delay < left / 2) delay = left / 2;
  if (delay < RETRY_MIN_MS) delay = RETRY_MIN_MS;
  schedule(c, delay);
}

static void on_answer(void *ud, const outbound_result *res);

static void request(awscreds *c, const char *method, const char *url, const char *h1,
                    const char *h2) {
  const char *headers[3] = {h1, h1 ? h2 : NULL, NULL};
  struct outbound_req req = {.method = method,
                             .url = url,
                             .headers = headers,
                             .timeout_ms = FETCH_TIMEOUT_MS,
                             .max_body = 64 * 1024};
  c->fetching = 1;
  if (outbound_request(c->ob, &req, on_answer, c)) fetch_failed(c, "the request cannot start");
}

/* Starts the next request of the current source. */
static void fetch(awscreds *c) {
  if (c->closed || c->fetching) return;
  if (c->src == SRC_CONTAINER) {
    request(c, "GET", c->url, c->auth_header, NULL);
    return;
  }
  char url[1024];
  if (c->step == 0) {
    snprintf(url, sizeof url, "%s/latest/api/token", c->url);
    request(c, "PUT", url, "X-aws-ec2-metadata-token-ttl-seconds: 21600", NULL);
  } else if (c->step == 1) {
    snprintf(url, sizeof url, "%s/latest/meta-data/iam/security-credentials/", c->url);
    request(c, "GET", url, c->imds_token, NULL);
  } else {
    snprintf(url, sizeof url, "%s/latest/meta-data/iam/security-credentials/%s", c->url, c->role);
    request(c, "GET", url, c->imds_token, NULL);
  }
}

/* IMDS: keep the answer of step 0 (token) or 1 (role), go on. */
static void imds_step(awscreds *c, const char *body) {
  char line[512];
  snprintf(line, sizeof line, "%s", body);
  char *s = trim(line);
  char *nl = strchr(s, '\n');
  if (nl) *nl = 0;
  s = trim(s);
  if (!*s || strpbrk(s, "\r\n/")) {
    fetch_failed(c, c->step == 0 ? "empty session token" : "no instance profile role");
    return;
  }
  if (c->step == 0) {
    free_secret(c->imds_token);
    c->imds_token = printf_dup("X-aws-ec2-metadata-token: %s%s", s, NULL);
  } else {
    free(c->role);
    c->role = util_strdup(s);
  }
  if ((c->step == 0 && !c->imds_token) || (c->step == 1 && !c->role)) {
    fetch_failed(c, "out of memory");
    return;
  }
  c->step++;
  c->fetching = 0;
  fetch(c);
}

static void on_answer(void *ud, const outbound_result *res) {
  awscreds *c = ud;
  if (res->rc == SL_ESHUTDOWN || c->closed) {
    c->fetching = 0;
    return;
  }
  char what[160];
  if (res->rc) {
    snprintf(what, sizeof what, "%s", res->error ? res->error : "no answer");
    fetch_failed(c, what);
    return;
  }
  if (res->status != 200) {
    snprintf(what, sizeof what, "HTTP %ld from the %s", res->status,
             c->src == SRC_CONTAINER ? "container credentials endpoint" : "instance metadata");
    /* A 401 from IMDS: the session token expired; start over. */
    if (c->src == SRC_IMDS) c->step = 0;
    fetch_failed(c, what);
    return;
  }
  if (c->src == SRC_IMDS && c->step < 2)
    imds_step(c, res->body);
  else
    take_json(c, res->body);
}

int awscreds_new(uv_loop_t *loop, outbound *ob, awscreds **out, char *err, size_t errlen) {
  awscreds *c = calloc(1, sizeof *c);
  if (!c) return SL_ENOMEM;
  c->loop = loop;
  c->ob = ob;
  c->retry_ms = RETRY_MIN_MS;
  int rc = static_source(c, err, errlen);
  if (rc == 0) rc = container_source(c, err, errlen);
  if (rc == 0) rc = imds_source(c);
  if (rc == 0) {
    snprintf(err, errlen,
             "none found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE with "
             "a shared credentials file, or run where the container endpoint or instance "
             "metadata gives them (AWS_EC2_METADATA_DISABLED is set)");
    rc = SL_EINVAL;
  }
  if (rc < 0) {
    awscreds_free(c);
    return rc;
  }
  uv_timer_init(loop, &c->timer);
  c->timer.data = c;
  c->timer_open = 1;
  if (c->src == SRC_CONTAINER || c->src == SRC_IMDS) fetch(c);
  *out = c;
  return 0;
}

int awscreds_current(awscreds *c, const char **userpwd, const char **token_header) {
  if (!c->userpwd || (c->expires_ms && c->expires_ms <= util_now_ms())) {
    if (!c->fetching && (c->src == SRC_CONTAINER || c->src == SRC_IMDS) &&
        !uv_is_active((uv_handle_t *)&c->timer))
      fetch(c);
    return SL_EBUSY;
  }
  *userpwd = c->userpwd;
  *token_header = c->token_header;
  return 0;
}

const char *awscreds_source(const awscreds *c) {
  return source_names[c->src];
}

const char *awscreds_access_key_id(const awscreds *c) {
  return c->key_id;
}

int awscreds_status(const awscreds *c, char *why, size_t n) {
  if (c->userpwd && !(c->expires_ms && c->expires_ms <= util_now_ms())) return 0;
  snprintf(why, n, "%s", c->error[0] ? c->error : "AWS credentials are being fetched");
  return SL_EBUSY;
}

void awscreds_close(awscreds *c) {
  if (!c || c->closed) return;
  c->closed = 1;
  if (c->timer_open) uv_close((uv_handle_t *)&c->timer, NULL);
}

void awscreds_free(awscreds *c) {
  if (!c) return;
  free_secret(c->userpwd);
  free_secret(c->token_header);
  free_secret(c->auth_header);
  free_secret(c->imds_token);
  free(c->url);
  free(c->role);
  free(c);
}
