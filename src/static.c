/* static.c - in-memory static files. */
#include "static.h"

#include <dirent.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "log.h"
#include "util.h"

#define FILE_MAX (8 * 1024 * 1024)
#define TOTAL_MAX (64 * 1024 * 1024)
#define DEPTH_MAX 4

typedef struct sfile {
  char *path; /* "/index.html" */
  char *data;
  size_t len;
  const char *type; /* Content-Type */
  char etag[24];    /* "\"<hash of data>\"" */
  struct sfile *next;
} sfile;

struct static_files {
  sfile *files;
  size_t total;
};

static const char *content_type(const char *path) {
  static const struct {
    const char *ext, *type;
  } types[] = {
      {".html", "text/html; charset=utf-8"},
      {".js", "text/javascript; charset=utf-8"},
      {".mjs", "text/javascript; charset=utf-8"},
      {".css", "text/css; charset=utf-8"},
      {".svg", "image/svg+xml"},
      {".png", "image/png"},
      {".ico", "image/x-icon"},
      {".json", "application/json"},
      {".txt", "text/plain; charset=utf-8"},
      {".woff2", "font/woff2"},
  };
  const char *dot = strrchr(path, '.');
  for (size_t i = 0; dot && i < sizeof types / sizeof types[0]; i++)
    if (strcmp(dot, types[i].ext) == 0) return types[i].type;
  return "application/octet-stream";
}

/* 1 when the real path of full (symlinks resolved) lies under root, itself
 * a real path: a link pointing out of the web folder is not served. */
static int inside_root(const char *root, const char *full) {
  char real[PATH_MAX];
  if (!realpath(full, real)) return 0;
  size_t n = strlen(root);
  if (n == 1 && root[0] == '/') return 1;
  return strncmp(real, root, n) == 0 && real[n] == '/';
}

static int load_dir(static_files *s, const char *root, const char *dir, const char *prefix,
                    int depth) {
  DIR *d = opendir(dir);
  if (!d) return SL_EIO;
  struct dirent *de;
  while ((de = readdir(d))) {
    if (de->d_name[0] == '.') continue;
    char full[4096], rel[4096];
    snprintf(full, sizeof full, "%s/%s", dir, de->d_name);
    snprintf(rel, sizeof rel, "%s/%s", prefix, de->d_name);
    struct stat st;
    if (stat(full, &st)) continue;
    if (!inside_root(root, full)) {
      log_kv(LOG_WARN, "static file skipped (a link out of the web folder)", "path", full, NULL);
      continue;
    }
    if (S_ISDIR(st.st_mode)) {
      if (depth < DEPTH_MAX) load_dir(s, root, full, rel, depth + 1);
      continue;
    }
    if (!S_ISREG(st.st_mode) || st.st_size > FILE_MAX ||
        s->total + (size_t)st.st_size > TOTAL_MAX) {
      log_kv(LOG_WARN, "static file skipped (too large)", "path", full, NULL);
      continue;
    }
    FILE *f = fopen(full, "rb");
    if (!f) continue;
    sfile *sf = calloc(1, sizeof *sf);
    char *data = malloc((size_t)st.st_size + 1);
    size_t n = data ? fread(data, 1, (size_t)st.st_size, f) : 0;
    fclose(f);
    if (!sf || !data || n != (size_t)st.st_size || !(sf->path = strdup(rel))) {
      free(sf);
      free(data);
      continue;
    }
    sf->data = data;
    sf->len = n;
    sf->type = content_type(rel);
    /* FNV-1a of the content: the file changes only with a restart. */
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)data[i]) * 1099511628211ULL;
    snprintf(sf->etag, sizeof sf->etag, "\"%016llx\"", (unsigned long long)h);
    sf->next = s->files;
    s->files = sf;
    s->total += n;
  }
  closedir(d);
  return 0;
}

int static_load(const char *dir, static_files **out) {
  static_files *s = calloc(1, sizeof *s);
  if (!s) return SL_ENOMEM;
  char root[PATH_MAX];
  if (!realpath(dir, root) || load_dir(s, root, dir, "", 0)) {
    log_kv(LOG_WARN, "web folder not found; the log browser is not served", "dir", dir, NULL);
  } else {
    char count[24];
    size_t n = 0;
    for (const sfile *f = s->files; f; f = f->next) n++;
    snprintf(count, sizeof count, "%zu", n);
    log_kv(LOG_INFO, "web files", "dir", dir, "files", count, NULL);
  }
  *out = s;
  return 0;
}

/* A folder holding index.html, made absolute into out. */
static int is_web_dir(const char *dir, char *out, size_t n) {
  char index[4200], real[4096];
  snprintf(index, sizeof index, "%s/index.html", dir);
  struct stat st;
  if (stat(index, &st) || !S_ISREG(st.st_mode) || !realpath(dir, real)) return 0;
  snprintf(out, n, "%s", real);
  return 1;
}

int static_default_dir(char *out, size_t n) {
  char exe[4096], dir[4200];
  ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (len > 0) {
    exe[len] = 0;
    char *slash = strrchr(exe, '/');
    if (slash) *slash = 0;
    static const char *const rel[] = {"/../web", "/../share/seslog/web"};
    for (size_t i = 0; i < sizeof rel / sizeof rel[0]; i++) {
      snprintf(dir, sizeof dir, "%s%s", exe, rel[i]);
      if (is_web_dir(dir, out, n)) return 0;
    }
  }
  if (is_web_dir("web", out, n)) return 0;
  log_kv(LOG_WARN,
         "no web files next to the binary (../web, ../share/seslog/web) or in ./web; give --web "
         "DIR",
         "exe_dir", len > 0 ? exe : "unknown", NULL);
  snprintf(out, n, "web");
  return SL_EIO;
}

void static_free(static_files *s) {
  if (!s) return;
  while (s->files) {
    sfile *f = s->files;
    s->files = f->next;
    free(f->path);
    free(f->data);
    free(f);
  }
  free(s);
}

static const sfile *find(const static_files *s, const char *path) {
  if (strcmp(path, "/") == 0) path = "/index.html";
  for (const sfile *f = s->files; f; f = f->next)
    if (strcmp(f->path, path) == 0) return f;
  return NULL;
}

int static_exists(const static_files *s, const char *path) {
  return find(s, path) != NULL;
}

int static_serve(const static_files *s, http_request *req) {
  const sfile *f = find(s, req->path);
  if (f) {
    char headers[512];
    snprintf(headers, sizeof headers,
             "Cache-Control: no-cache\r\nETag: %s\r\nX-Content-Type-Options: nosniff\r\n"
             "Content-Security-Policy: default-src 'self'; img-src 'self' data:; "
             "style-src 'self' 'unsafe-inline'\r\n",
             f->etag);
    const char *inm = http_header_get(req, "If-None-Match");
    if (inm && strstr(inm, f->etag)) {
      /* Revalidated: the browser's copy is current. */
      http_respond(req, 304, NULL, headers, NULL, 0);
      return 0;
    }
    http_respond(req, 200, f->type, headers, f->data, f->len);
    return 0;
  }
  return SL_EINVAL;
}
