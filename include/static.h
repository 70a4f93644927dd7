/* static.h - the log browser's files, read into memory at start so the
 * loop never reads a file while serving. */
#ifndef SESLOG_STATIC_H
#define SESLOG_STATIC_H

#include "http.h"

typedef struct static_files static_files;

/* Loads every regular file under dir (a few levels deep, capped in size).
 * A missing dir gives an empty set and a warning. */
int static_load(const char *dir, static_files **out);

/* The default --web folder, the first that holds index.html of: <folder of
 * the binary>/../web (the repo: build/seslog), <folder of the
 * binary>/../share/seslog/web (installed), ./web; written absolute into
 * out. Returns 0, or SL_EIO with a warning logged and out set to "web". */
int static_default_dir(char *out, size_t n);
void static_free(static_files *s);

/* Answers GET/HEAD of req->path ("/" is "/index.html"); returns 0 when it
 * answered, SL_EINVAL when there is no such file (the caller says 404). */
int static_serve(const static_files *s, http_request *req);

/* 1 when a file is served at path. */
int static_exists(const static_files *s, const char *path);

#endif
