/* import.h - the importer: SES events from documents (files, standard
 * input, DynamoDB items) into the store, with the server's normalization
 * and duplicate rules, in large transactions. Rejected documents are
 * reported on stderr with where they were read; progress too.
 * cmd_import.c (the `seslog import` command) drives it. */
#ifndef SESLOG_IMPORT_H
#define SESLOG_IMPORT_H

#include <stdint.h>

#include "store.h"

struct cJSON;

typedef struct importer importer;

/* What an import did, for its last lines. */
struct import_counts {
  long files;      /* files read */
  long records;    /* documents and events handed to an outcome, or left unwritten */
  long log_lines;  /* Lambda log lines that carry no event */
  long imported;   /* events stored */
  long duplicates; /* events stored before */
  long rejected;   /* documents rejected, with the events left unwritten */
  int failed;      /* a file, the source or the database failed part way */
};

/* An importer writing into st (opened by the caller, which closes it
 * after import_free). verify: check SNS signatures with certificates
 * from cert_dir. bytes_total: the size of the files to read, for the
 * progress. Returns 0 and *out, or SL_ENOMEM. */
int import_new(store *st, int verify, const char *cert_dir, uint64_t bytes_total, importer **out);

/* Reads one file (plain or gzip; "-" for standard input) whole. Returns 0,
 * or -1 when it could not be read whole (reported on stderr; the import
 * then counts as failed). */
int import_path(importer *im, const char *path);

/* Names the source of the items that follow (a DynamoDB table): reports
 * read "NAME:N: reason". */
void import_set_source(importer *im, const char *name);

/* The n-th item read from the source: stored, or rejected and reported. */
void import_dynamodb_item(importer *im, long n, const struct cJSON *item);

/* The source could not be read whole (already reported on stderr). */
void import_source_failed(importer *im);

/* 1 when the database stopped taking writes: reading more is useless. */
int import_stopped(const importer *im);

/* Writes what is batched, ends the progress and fills *out. */
void import_finish(importer *im, struct import_counts *out);

/* Frees im and the events it still holds (not the store). NULL is a no-op. */
void import_free(importer *im);

#endif
