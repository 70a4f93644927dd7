/* cmd_suppression.c - `seslog suppression list|check|add|remove|export|import`:
 * the suppression list from the command line.
 *
 * Reads go over a read-only connection (WAL: they work while a server
 * writes); writes through store_write, a thousand changes to a
 * transaction, with the same functions the API uses, so every change lands
 * in the history with actor "cli". The store is opened first in every case
 * so a new or older database gets the schema. */
#include <errno.h>
#include <poll.h>
#include <sqlite3.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "address.h"
#include "cmd.h"
#include "cmd_suppression.h"
#include "config.h"
#include "csv.h"
#include "error.h"
#include "log.h"
#include "query.h"
#include "readpool.h"
#include "store.h"
#include "suppression.h"
#include "util.h"

#define BATCH 1000    /* changes in one transaction */
#define REPORT_MAX 20 /* bad lines reported one by one, at most */

struct sup_opts {
  char *db;
  char *reason, *domain, *search, *since, *limit, *format, *note;
};

#define O(f) offsetof(struct sup_opts, f)
#define DB_OPT \
  { "db", OPT_STR, O(db), SESLOG_DEFAULT_DB, "PATH", "the SQLite database" }
static const struct opt list_table[] = {
    DB_OPT,
    {"reason", OPT_STR, O(reason), NULL, "REASON", "only BOUNCE, COMPLAINT or MANUAL entries", 1},
    {"domain", OPT_STR, O(domain), NULL, "DOMAIN", "only addresses of this domain", 1},
    {"search", OPT_STR, O(search), NULL, "TEXT", "only addresses containing TEXT (any case)", 1},
    {"since", OPT_STR, O(since), NULL, "TIME",
     "only entries created since: ISO-8601 (2026-03-06T20:00:00Z or 2026-03-06) or back from "
     "now (15m, 24h, 7d), as seslog query --since",
     1},
    {"limit", OPT_STR, O(limit), NULL, "N", "print at most N entries [all]", 1},
    {"format", OPT_STR, O(format), "table", "FORMAT", "table, csv or json", 1},
    {0},
};
static const struct opt check_table[] = {
    DB_OPT,
    {"format", OPT_STR, O(format), "text", "FORMAT",
     "text or json (as POST /api/suppression/check)", 1},
    {0},
};
static const struct opt add_table[] = {
    DB_OPT,
    {"reason", OPT_STR, O(reason), "MANUAL", "REASON", "MANUAL, BOUNCE or COMPLAINT", 1},
    {"note", OPT_STR, O(note), NULL, "TEXT", "why, for the entry and its history", 1},
    {0},
};
static const struct opt remove_table[] = {
    DB_OPT,
    {"note", OPT_STR, O(note), NULL, "TEXT", "why, for the history", 1},
    {0},
};
static const struct opt export_table[] = {
    DB_OPT,
    {"reason", OPT_STR, O(reason), NULL, "REASON", "only BOUNCE, COMPLAINT or MANUAL entries", 1},
    {0},
};
static const struct opt import_table[] = {
    DB_OPT,
    {"note", OPT_STR, O(note), NULL, "TEXT", "note of the new entries [imported from FILE]", 1},
    {0},
};
#undef O
#undef DB_OPT

static const char usage[] =
    "Usage: seslog suppression COMMAND [OPTIONS] [ARGUMENTS]\n"
    "\n"
    "The suppression list: addresses that hard-bounced, complained, soft-bounced repeatedly or\n"
    "were added by hand, which must not be mailed. Addresses compare without case.\n"
    "\n"
    "Commands:\n"
    "  list                 print the entries, newest first\n"
    "  check ADDRESS|FILE|-...\n"
    "                       which of these are suppressed (addresses, or files of them, one a\n"
    "                       line); exit status 0 when none is, 1 when some are\n"
    "  add ADDRESS...       add by hand (or change the reason and note of an entry)\n"
    "  remove ADDRESS...    remove (the history is kept)\n"
    "  export [FILE|-]      write SES's bulk CSV: address,reason lines (MANUAL as BOUNCE)\n"
    "  import FILE|-        read SES's bulk CSV (an EmailAddress,Reason header is allowed);\n"
    "                       addresses already listed are left as they are\n"
    "\n"
    "Every command takes --db PATH and --help (seslog suppression COMMAND --help).\n"
    "Bad input gives one line on stderr and exit status 2.";

static const char list_usage[] =
    "Usage: seslog suppression list [OPTIONS]\n\nPrints the entries that match every filter, "
    "newest first.";
static const char check_usage[] =
    "Usage: seslog suppression check [OPTIONS] [ADDRESS|FILE|-]...\n\nSays for each address "
    "whether "
    "it is suppressed and why, in the order given. An argument\nwithout @ is a FILE of addresses, "
    "one a line (the first field of a CSV line, so an export\nor an SES bulk file works; empty "
    "lines, # comments and a header are skipped); - or no\nargument reads them from standard "
    "input. Exit status 0 when none is suppressed, 1 when\nat least one is, 2 for bad input.";
static const char add_usage[] =
    "Usage: seslog suppression add [OPTIONS] ADDRESS...\n\nAdds the addresses by hand; an address "
    "already listed gets the reason (and note) given.";
static const char remove_usage[] =
    "Usage: seslog suppression remove [OPTIONS] ADDRESS...\n\nRemoves the addresses from the list; "
    "their history is kept. An address that is not\nlisted is reported and skipped.";
static const char export_usage[] =
    "Usage: seslog suppression export [OPTIONS] [FILE|-]\n\nWrites the list in SES's bulk format, "
    "one address,reason line per entry (MANUAL\nentries as BOUNCE), to FILE or standard output; "
    "aws sesv2 create-import-job and the SES\nconsole's bulk upload read it.";
static const char import_usage[] =
    "Usage: seslog suppression import [OPTIONS] FILE|-\n\nReads SES's bulk format: address,reason "
    "lines, reason BOUNCE or COMPLAINT, an optional\nheader line EmailAddress,Reason. Addresses "
    "already listed are left as they are. Bad lines\nare reported as FILE:LINE: reason and "
    "skipped; "
    "exit status 1 when there were any.\nEnds with `imported N, already listed N, rejected N`.";

/* Moves the options of argv[argi..] in front of the positional arguments
 * (so `add a@b.com --note x` works), into a new vector ending with "--"
 * and the positionals. Options that take a value keep it next to them.
 * Returns the new vector (free it, not its strings) and its length, or
 * NULL when out of memory or when the last option lacks its value (a line
 * printed). */
static char **options_first(const char *cmd, const struct opt *table, int argc, char **argv,
                            int argi, int *n_out) {
  char **v = calloc((size_t)(argc - argi) + 2, sizeof *v);
  char **pos = calloc((size_t)(argc - argi) + 1, sizeof *pos);
  if (!v || !pos) {
    free(v);
    free(pos);
    return NULL;
  }
  int n = 0, np = 0;
  for (int i = argi; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--") == 0) {
      while (++i < argc) pos[np++] = argv[i];
      break;
    }
    if (a[0] != '-' || a[1] == 0) {
      pos[np++] = argv[i];
      continue;
    }
    v[n++] = argv[i];
    if (a[1] != '-' || strchr(a, '=')) continue;
    for (const struct opt *o = table; o->name; o++) {
      if (strcmp(o->name, a + 2) != 0 || o->kind == OPT_FLAG) continue;
      if (i + 1 == argc) {
        fprintf(stderr, "seslog %s: --%s needs a value %s\n", cmd, o->name, o->arg);
        free(v);
        free(pos);
        return NULL;
      }
      v[n++] = argv[++i];
    }
  }
  v[n++] = "--";
  for (int i = 0; i < np; i++) v[n++] = pos[i];
  free(pos);
  *n_out = n;
  return v;
}

/* Opens (migrating when needed) and closes the store, then opens a
 * read-only connection. A read never creates a database: a missing file is
 * one line and 2. Returns 0 or 2 with a line printed. */
static int open_read(const char *cmd, const char *db, sqlite3 **out) {
  char err[512];
  store *st;
  if (access(db, F_OK) != 0) {
    fprintf(stderr, "seslog suppression %s: no database at %s (give --db, or serve first)\n", cmd,
            db);
    return 2;
  }
  struct store_opts so = {.busy_timeout_ms = 10000};
  if (store_open(db, &so, &st, err, sizeof err)) {
    fprintf(stderr, "seslog suppression %s: %s\n", cmd, err);
    return 2;
  }
  store_close(st);
  if (readpool_open_conn(db, out, err, sizeof err)) {
    fprintf(stderr, "seslog suppression %s: %s\n", cmd, err);
    return 2;
  }
  sqlite3_busy_timeout(*out, 10000);
  return 0;
}

/* A copy of s fit for one table cell: control characters become spaces. */
static void cell(char *out, size_t n, const char *s) {
  snprintf(out, n, "%s", s ? s : "-");
  for (char *p = out; *p; p++)
    if ((unsigned char)*p < 0x20 || *p == 0x7f) *p = ' ';
}

/* Appends s as a CSV field (csv.h: quoted when it needs to be, guarded
 * against formulas). */
static void csv_out(buf *b, const char *s) {
  csv_cell(b, s);
}

static void iso(int64_t ms, char out[25]) {
  if (ms)
    util_format_iso8601(ms, out);
  else
    snprintf(out, 25, "-");
}

/* ---- list and export ----------------------------------------------------- */

/* Whether out is a pipe or socket whose reader has gone (`| head`): after a
 * failed write, that is the end of the output, not an error. */
static int reader_gone(FILE *out) {
  struct pollfd pfd = {.fd = fileno(out), .events = POLLOUT};
  return poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLERR);
}

enum fmt { F_TABLE, F_CSV, F_JSON, F_SES };

struct printer {
  enum fmt format;
  FILE *out;
  long n;
  buf line;
};

static int print_row(void *ud, const struct suppression_row *r) {
  struct printer *p = ud;
  buf_reset(&p->line);
  char created[25], last[25];
  iso(r->created_at, created);
  iso(r->last_event_at, last);
  switch (p->format) {
    case F_TABLE: {
      char addr[SUPPRESSION_ADDRESS_MAX + 1], note[SUPPRESSION_NOTE_MAX + 1];
      cell(addr, sizeof addr, r->display);
      cell(note, sizeof note, r->note);
      buf_printf(&p->line, "%-40s %-9s %-24s %-24s %6lld %s%s\n", addr, r->reason, created, last,
                 (long long)r->events, r->ambiguous ? "(ambiguous) " : "", note);
      break;
    }
    case F_CSV:
      csv_out(&p->line, r->display);
      buf_printf(&p->line, ",%s,%s,%s,%lld,", r->reason, r->created_at ? created : "",
                 r->last_event_at ? last : "", (long long)r->events);
      csv_out(&p->line, r->message_id);
      buf_appends(&p->line, ",");
      csv_out(&p->line, r->note);
      buf_printf(&p->line, ",%s\n", r->ambiguous ? "true" : "false");
      break;
    case F_JSON:
      buf_appends(&p->line, p->n ? ",\n" : "[\n");
      suppression_row_json(r, &p->line);
      break;
    case F_SES:
      csv_out(&p->line, r->display);
      buf_printf(&p->line, ",%s\n", strcmp(r->reason, "COMPLAINT") == 0 ? "COMPLAINT" : "BOUNCE");
      break;
  }
  p->n++;
  if (p->line.len && fwrite(p->line.data, 1, p->line.len, p->out) != p->line.len) return SL_EIO;
  return 0;
}

static int cmd_list(struct sup_opts *o, int npos, char **pos, int export) {
  const char *cmd = export ? "export" : "list";
  struct suppression_filter f = {.reason = -1};
  char domain[SUPPRESSION_ADDRESS_MAX + 8], search[SUPPRESSION_ADDRESS_MAX + 1];
  struct printer p = {.format = F_TABLE, .out = stdout};
  if (export) {
    p.format = F_SES;
    if (npos > 1) {
      fprintf(stderr, "seslog suppression export: name one FILE at most (or - for stdout)\n");
      return 2;
    }
  } else if (npos) {
    fprintf(stderr, "seslog suppression list: unexpected argument \"%s\"\n", pos[0]);
    return 2;
  }
  if (o->reason && suppression_reason_parse(o->reason, &f.reason)) {
    fprintf(stderr, "seslog suppression %s: --reason must be BOUNCE, COMPLAINT or MANUAL\n", cmd);
    return 2;
  }
  if (o->domain) {
    snprintf(domain, sizeof domain, "x@%s", o->domain);
    if (strlen(o->domain) > 255 || address_fold(domain, domain, sizeof domain, NULL)) {
      fprintf(stderr, "seslog suppression %s: --domain \"%s\" is not a domain\n", cmd, o->domain);
      return 2;
    }
    f.domain = domain + 2;
  }
  if (o->search) {
    snprintf(search, sizeof search, "%s", o->search);
    util_ascii_lower(search);
    f.search = search;
  }
  if (o->since && *o->since) { /* the forms seslog query --since takes, by its parser */
    int64_t ms;
    char err[200];
    if (query_parse_time(o->since, util_now_ms(), &ms, err, sizeof err)) {
      fprintf(stderr, "seslog suppression %s: --since \"%s\" %s\n", cmd, o->since, err);
      return 2;
    }
    f.since = ms ? ms : 1;
  }
  if (o->limit) {
    char *end;
    errno = 0;
    long n = strtol(o->limit, &end, 10);
    if (errno || *end || end == o->limit || n < 1) {
      fprintf(stderr, "seslog suppression %s: --limit must be a positive whole number\n", cmd);
      return 2;
    }
    f.limit = n;
  }
  if (o->format && !export) {
    if (strcmp(o->format, "table") == 0)
      p.format = F_TABLE;
    else if (strcmp(o->format, "csv") == 0)
      p.format = F_CSV;
    else if (strcmp(o->format, "json") == 0)
      p.format = F_JSON;
    else {
      fprintf(stderr, "seslog suppression list: --format must be table, csv or json\n");
      return 2;
    }
  }
  const char *file = export && npos && strcmp(pos[0], "-") != 0 ? pos[0] : NULL;
  sqlite3 *db;
  if (open_read(cmd, o->db, &db)) return 2;
  if (file && !(p.out = fopen(file, "w"))) {
    fprintf(stderr, "seslog suppression export: cannot write %s: %s\n", file, strerror(errno));
    sqlite3_close(db);
    return 2;
  }
  buf_init(&p.line, 1 << 16);
  if (p.format == F_TABLE)
    printf("%-40s %-9s %-24s %-24s %6s %s\n", "ADDRESS", "REASON", "CREATED", "LAST EVENT",
           "EVENTS", "NOTE");
  if (p.format == F_CSV)
    printf("address,reason,createdAt,lastEventAt,events,messageId,note,ambiguous\n");
  int rc = suppression_list(db, &f, print_row, &p);
  if (p.format == F_JSON) fputs(p.n ? "\n]\n" : "[]\n", p.out);
  buf_free(&p.line);
  sqlite3_close(db);
  int werr = fflush(p.out) != 0 || ferror(p.out);
  if (file) werr |= fclose(p.out) != 0;
  /* A reader that went away (`| head`) is not an error. */
  if (!file && (werr || rc == SL_EIO) && reader_gone(p.out)) return 0;
  if (rc || werr) {
    fprintf(stderr, "seslog suppression %s: %s\n", cmd,
            rc == SL_EIO || werr ? "cannot write the output" : "cannot read the database");
    return 2;
  }
  if (file) fprintf(stderr, "exported %ld addresses to %s\n", p.n, file);
  return 0;
}

/* ---- check --------------------------------------------------------------- */

struct check_state {
  const char *given;
  int json;
  buf *out;
};

static void check_found(void *ud, const struct suppression_row *r) {
  struct check_state *c = ud;
  if (c->json) {
    buf_appends(c->out, "true,\"reason\":");
    buf_json_string(c->out, r->reason);
    buf_appends(c->out, ",\"entry\":");
    suppression_row_json(r, c->out);
    return;
  }
  char since[25], note[SUPPRESSION_NOTE_MAX + 1];
  iso(r->created_at, since);
  cell(note, sizeof note, r->note);
  buf_printf(c->out, "%s: suppressed, %s since %s (%lld event%s%s%s%s)\n", c->given, r->reason,
             since, (long long)r->events, r->events == 1 ? "" : "s",
             r->ambiguous ? ", ambiguous" : "", r->note ? "; " : "", r->note ? note : "");
}

/* The addresses one check reads at most (from arguments and files). */
#define CHECK_MAX 1000000
/* The longest line of an address file. */
#define CHECK_LINE_MAX 4096

/* The addresses to check, in the order given. */
struct addr_list {
  char **items; /* each owned */
  size_t n, cap;
};

static void addr_list_free(struct addr_list *l) {
  for (size_t i = 0; i < l->n; i++) free(l->items[i]);
  free(l->items);
}

/* Appends a copy of a (len bytes) after checking it is an address; where
 * names its origin in the error line. Returns 0 or 2 with a line printed. */
static int addr_add(struct addr_list *l, const char *a, size_t len, const char *where) {
  char *copy = util_strndup(a, len);
  const char *why;
  if (!copy) {
    fprintf(stderr, "seslog suppression check: out of memory\n");
    return 2;
  }
  if (address_check(copy, &why)) {
    fprintf(stderr, "seslog suppression check: %s\"%s\" is not an email address: %s\n", where, copy,
            why);
    free(copy);
    return 2;
  }
  if (l->n == CHECK_MAX) {
    fprintf(stderr, "seslog suppression check: more than %d addresses; split the list\n",
            CHECK_MAX);
    free(copy);
    return 2;
  }
  if (l->n == l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 64;
    char **items = realloc(l->items, cap * sizeof *items);
    if (!items) {
      free(copy);
      fprintf(stderr, "seslog suppression check: out of memory\n");
      return 2;
    }
    l->items = items;
    l->cap = cap;
  }
  l->items[l->n++] = copy;
  return 0;
}

/* Reads the addresses of a file (standard input for "-"), one a line: the
 * first CSV field, trimmed and unquoted; empty lines, # comments and a
 * header (a first line without @) are skipped. Returns 0 or 2 with one line
 * printed (FILE:LINE for a bad address). */
static int read_addresses(const char *name, struct addr_list *l) {
  int is_stdin = strcmp(name, "-") == 0;
  const char *shown = is_stdin ? "stdin" : name;
  FILE *in = is_stdin ? stdin : fopen(name, "r");
  if (!in) {
    fprintf(stderr, "seslog suppression check: cannot read %s: %s\n", name, strerror(errno));
    return 2;
  }
  char *line = NULL;
  size_t cap = 0;
  ssize_t len;
  long lineno = 0, content = 0;
  int rc = 0;
  while (!rc && (len = getline(&line, &cap, in)) >= 0) {
    lineno++;
    if (len > CHECK_LINE_MAX) {
      fprintf(stderr, "seslog suppression check: %s:%ld: the line is longer than %d bytes\n", shown,
              lineno, CHECK_LINE_MAX);
      rc = 2;
      break;
    }
    char *a = line, *end;
    while (*a == ' ' || *a == '\t') a++;
    end = a + strcspn(a, ",\r\n");
    while (end > a && (end[-1] == ' ' || end[-1] == '\t')) end--;
    if (end - a >= 2 && *a == '"' && end[-1] == '"') a++, end--;
    if (end == a || *a == '#') continue;
    if (content++ == 0 && !memchr(a, '@', (size_t)(end - a))) continue; /* a header */
    char where[4200];
    snprintf(where, sizeof where, "%s:%ld: ", shown, lineno);
    rc = addr_add(l, a, (size_t)(end - a), where);
  }
  if (!rc && ferror(in)) {
    fprintf(stderr, "seslog suppression check: cannot read %s: %s\n", name, strerror(errno));
    rc = 2;
  }
  free(line);
  if (!is_stdin) fclose(in);
  return rc;
}

static int cmd_check(struct sup_opts *o, int npos, char **pos) {
  int json = 0;
  if (strcmp(o->format, "json") == 0)
    json = 1;
  else if (strcmp(o->format, "text") != 0) {
    fprintf(stderr, "seslog suppression check: --format must be text or json\n");
    return 2;
  }
  struct addr_list l = {0};
  int status = 2;
  if (!npos && isatty(0)) {
    fprintf(stderr,
            "seslog suppression check: name at least one ADDRESS, a FILE of addresses, or - for "
            "standard input\n");
    return 2;
  }
  if (!npos && read_addresses("-", &l)) goto done;
  for (int i = 0; i < npos; i++) {
    int rc =
        strchr(pos[i], '@') ? addr_add(&l, pos[i], strlen(pos[i]), "") : read_addresses(pos[i], &l);
    if (rc) goto done;
  }
  char folded[SUPPRESSION_ADDRESS_MAX + 1];
  sqlite3 *db;
  if (open_read("check", o->db, &db)) goto done;
  buf out;
  buf_init(&out, (size_t)1 << 30);
  int suppressed = 0, rc = 0;
  if (json) buf_appends(&out, "{\"results\":[");
  sqlite3_exec(db, "BEGIN", NULL, NULL, NULL); /* one snapshot, one lock */
  for (size_t i = 0; i < l.n && !rc; i++) {
    address_fold(l.items[i], folded, sizeof folded, NULL);
    struct check_state c = {l.items[i], json, &out};
    if (json) {
      buf_appends(&out, i ? ",{\"address\":" : "{\"address\":");
      buf_json_string(&out, l.items[i]);
      buf_appends(&out, ",\"suppressed\":");
    }
    int found = 0;
    rc = suppression_get(db, folded, check_found, &c, &found);
    if (!found && json)
      buf_appends(&out, "false,\"reason\":null");
    else if (!found)
      buf_printf(&out, "%s: not suppressed\n", l.items[i]);
    if (json) buf_appends(&out, "}");
    suppressed += found;
  }
  if (json) buf_printf(&out, "],\"checked\":%zu,\"suppressed\":%d}\n", l.n, suppressed);
  sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
  sqlite3_close(db);
  if (rc) {
    fprintf(stderr, "seslog suppression check: cannot read the database\n");
    buf_free(&out);
    goto done;
  }
  int werr = out.len && fwrite(out.data, 1, out.len, stdout) != out.len;
  werr |= fflush(stdout) != 0;
  buf_free(&out);
  if (werr && !reader_gone(stdout)) {
    fprintf(stderr, "seslog suppression check: cannot write the output: %s\n", strerror(errno));
    goto done;
  }
  status = suppressed ? 1 : 0;
done:
  addr_list_free(&l);
  return status;
}

/* ---- SES's bulk CSV format ---------------------------------------------- */

/* Trims spaces (and a CR) around a field and one pair of double quotes
 * ("" inside stands for "). */
static char *csv_field(char *s) {
  while (*s == ' ' || *s == '\t') s++;
  size_t n = strlen(s);
  while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n')) n--;
  s[n] = 0;
  if (n >= 2 && s[0] == '"' && s[n - 1] == '"') {
    s[n - 1] = 0;
    s++;
    char *w = s;
    for (char *r = s; *r; r++) {
      *w++ = *r;
      if (r[0] == '"' && r[1] == '"') r++;
    }
    *w = 0;
  }
  return s;
}

int suppression_csv_line(char *line, int first, char **addr, int *reason, const char **why) {
  if (first && (unsigned char)line[0] == 0xef && (unsigned char)line[1] == 0xbb &&
      (unsigned char)line[2] == 0xbf)
    line += 3; /* a byte-order mark, as spreadsheets write */
  char *comma = strchr(line, ',');
  if (!comma) {
    if (!*csv_field(line)) return 1;
    *why = "expected address,reason";
    return SL_EINVAL;
  }
  *comma = 0;
  /* csv_unguard: a cell seslog's export guarded against formulas. */
  char *a = csv_unguard(csv_field(line)), *r = csv_field(comma + 1);
  if (first && (strcasecmp(a, "EmailAddress") == 0 || strcasecmp(a, "address") == 0) &&
      strcasecmp(r, "Reason") == 0)
    return 1;
  int k;
  if (suppression_reason_parse(r, &k) || k == SUP_MANUAL) {
    *why = strchr(r, ',') ? "expected two fields, address,reason"
                          : "the reason must be BOUNCE or COMPLAINT";
    return SL_EINVAL;
  }
  *addr = a;
  if (address_check(a, why)) return SL_EFIELD;
  *reason = k;
  return 0;
}

/* ---- add, remove, import: writes ---------------------------------------- */

/* One change on its way through store_write. */
struct change {
  store_req req; /* apply request; embedded */
  suppression *s;
  store *st; /* whose writer applies it */
  struct suppression_change c;
  int remove;  /* 1: remove c.address */
  int outcome; /* SUP_* after the commit */
  long line;   /* import: the line it came from */
  char *owned; /* import: the address, owned */
};

static int change_apply(store_req *r, sqlite3 *db) {
  struct change *x = r->ud;
  int64_t now = util_now_ms();
  int rc = x->remove
               ? suppression_remove(x->s, x->st, x->c.address, "cli", x->c.note, now, &x->outcome)
               : suppression_put(x->s, x->st, &x->c, now, &x->outcome);
  if (rc == SL_EINVAL) {
    r->result = SL_EINVAL;
    return 0;
  }
  if (rc) return SL_EDB;
  r->result = STORE_STORED;
  return 0;
}

/* Writes n changes in one transaction. Returns 0 or 2 with a line printed. */
static int write_changes(const char *cmd, store *st, struct change *xs, size_t n) {
  store_req *reqs[BATCH];
  for (size_t i = 0; i < n; i++) {
    xs[i].req.apply = change_apply;
    xs[i].req.ud = &xs[i];
    xs[i].st = st;
    reqs[i] = &xs[i].req;
  }
  if (n && store_write(st, reqs, n)) {
    char why[256] = "";
    store_health(st, why, sizeof why);
    fprintf(stderr, "seslog suppression %s: the database refused the write (%s)\n", cmd, why);
    return 2;
  }
  return 0;
}

/* Opens the store and a module for writes. Returns 0 or 2 with a line. */
static int open_write(const char *cmd, const char *db, store **st, suppression **s) {
  char err[512];
  struct suppression_opts so0 = {0};
  if (suppression_new(&so0, s)) {
    fprintf(stderr, "seslog suppression %s: out of memory\n", cmd);
    return 2;
  }
  struct store_opts so = {.busy_timeout_ms = 10000};
  if (store_open(db, &so, st, err, sizeof err)) {
    fprintf(stderr, "seslog suppression %s: %s\n", cmd, err);
    suppression_free(*s);
    return 2;
  }
  return 0;
}

static int cmd_add_remove(struct sup_opts *o, int npos, char **pos, int remove) {
  const char *cmd = remove ? "remove" : "add";
  int reason = SUP_MANUAL;
  if (!remove && suppression_reason_parse(o->reason, &reason)) {
    fprintf(stderr, "seslog suppression add: --reason must be MANUAL, BOUNCE or COMPLAINT\n");
    return 2;
  }
  if (o->note && strlen(o->note) > SUPPRESSION_NOTE_MAX) {
    fprintf(stderr, "seslog suppression %s: --note is longer than 1000 bytes\n", cmd);
    return 2;
  }
  if (!npos) {
    fprintf(stderr, "seslog suppression %s: name at least one ADDRESS\n", cmd);
    return 2;
  }
  for (int i = 0; i < npos; i++) {
    const char *why;
    if (address_check(pos[i], &why)) {
      fprintf(stderr, "seslog suppression %s: \"%s\" is not an email address: %s\n", cmd, pos[i],
              why);
      return 2;
    }
  }
  store *st;
  suppression *s;
  if (open_write(cmd, o->db, &st, &s)) return 2;
  struct change *xs = calloc(BATCH, sizeof *xs);
  int status = xs ? 0 : 2;
  for (int i = 0; i < npos && !status; i += BATCH) {
    size_t n = (size_t)(npos - i < BATCH ? npos - i : BATCH);
    memset(xs, 0, n * sizeof *xs);
    for (size_t k = 0; k < n; k++) {
      xs[k].s = s;
      xs[k].remove = remove;
      xs[k].c = (struct suppression_change){
          .address = pos[i + (int)k], .reason = reason, .note = o->note, .actor = "cli"};
    }
    if ((status = write_changes(cmd, st, xs, n))) break;
    for (size_t k = 0; k < n; k++) {
      const char *a = xs[k].c.address;
      switch (xs[k].outcome) {
        case SUP_ADDED: printf("added %s (%s)\n", a, suppression_reason_name(reason)); break;
        case SUP_UPDATED: printf("updated %s (%s)\n", a, suppression_reason_name(reason)); break;
        case SUP_REMOVED: printf("removed %s\n", a); break;
        default: printf("%s was not on the list\n", a); break;
      }
    }
  }
  free(xs);
  store_close(st);
  suppression_free(s);
  return status;
}

static int cmd_import_csv(struct sup_opts *o, int npos, char **pos) {
  if (npos != 1) {
    fprintf(stderr, "seslog suppression import: name one FILE (or - for standard input)\n");
    return 2;
  }
  const char *name = pos[0];
  int is_stdin = strcmp(name, "-") == 0;
  FILE *in = is_stdin ? stdin : fopen(name, "r");
  if (!in) {
    fprintf(stderr, "seslog suppression import: cannot read %s: %s\n", name, strerror(errno));
    return 2;
  }
  if (o->note && strlen(o->note) > SUPPRESSION_NOTE_MAX) {
    fprintf(stderr, "seslog suppression import: --note is longer than 1000 bytes\n");
    if (!is_stdin) fclose(in);
    return 2;
  }
  char note[SUPPRESSION_NOTE_MAX + 1];
  snprintf(note, sizeof note, "%s%s", o->note ? "" : "imported from ",
           o->note ? o->note : (is_stdin ? "standard input" : name));
  store *st;
  suppression *s;
  if (open_write("import", o->db, &st, &s)) {
    if (!is_stdin) fclose(in);
    return 2;
  }
  struct change *xs = calloc(BATCH, sizeof *xs);
  long imported = 0, kept = 0, rejected = 0, lineno = 0;
  int status = xs ? 0 : 2;
  size_t n = 0;
  char *line = NULL;
  size_t cap = 0;
  for (;;) {
    ssize_t got = xs ? getline(&line, &cap, in) : -1;
    if (got >= 0) {
      lineno++;
      char *addr;
      int reason;
      const char *why;
      int rc = suppression_csv_line(line, lineno == 1, &addr, &reason, &why);
      if (rc == 1) continue;
      if (rc) {
        rejected++;
        if (rejected <= REPORT_MAX) {
          char shown[80];
          cell(shown, sizeof shown, rc == SL_EFIELD ? addr : "");
          if (rc == SL_EFIELD)
            fprintf(stderr, "%s:%ld: \"%s\" is not an email address: %s\n", name, lineno, shown,
                    why);
          else
            fprintf(stderr, "%s:%ld: %s\n", name, lineno, why);
        }
        continue;
      }
      struct change *x = &xs[n++];
      memset(x, 0, sizeof *x);
      if (!(x->owned = strdup(addr))) {
        status = 2;
        break;
      }
      x->s = s;
      x->line = lineno;
      x->c = (struct suppression_change){
          .address = x->owned, .reason = reason, .note = note, .actor = "cli", .keep_existing = 1};
    }
    if (n == BATCH || (got < 0 && n)) {
      status = write_changes("import", st, xs, n);
      for (size_t k = 0; k < n; k++) {
        if (xs[k].outcome == SUP_ADDED)
          imported++;
        else
          kept++;
        free(xs[k].owned);
      }
      n = 0;
      if (status) break;
    }
    if (got < 0) break;
  }
  for (size_t k = 0; k < n; k++) free(xs[k].owned);
  if (!status && ferror(in)) {
    fprintf(stderr, "seslog suppression import: cannot read %s\n", name);
    status = 2;
  }
  if (rejected > REPORT_MAX)
    fprintf(stderr, "%s: %ld more bad lines not shown\n", name, rejected - REPORT_MAX);
  free(line);
  free(xs);
  if (!is_stdin) fclose(in);
  store_close(st);
  suppression_free(s);
  printf("imported %ld, already listed %ld, rejected %ld\n", imported, kept, rejected);
  return status ? status : rejected ? 1 : 0;
}

/* ---- dispatch ------------------------------------------------------------ */

int cmd_suppression(int argc, char **argv, int argi) {
  static const struct {
    const char *name;
    const struct opt *table;
    const char *usage;
  } cmds[] = {{"list", list_table, list_usage},       {"check", check_table, check_usage},
              {"add", add_table, add_usage},          {"remove", remove_table, remove_usage},
              {"export", export_table, export_usage}, {"import", import_table, import_usage}};
  if (argi >= argc) {
    fprintf(stderr,
            "seslog suppression: name a command: list, check, add, remove, export or "
            "import (see seslog suppression --help)\n");
    return 2;
  }
  if (strcmp(argv[argi], "--help") == 0 || strcmp(argv[argi], "-h") == 0 ||
      strcmp(argv[argi], "help") == 0) {
    puts(usage);
    return 0;
  }
  log_set_level("warn"); /* "database migrated" and the like are not news here */
  size_t k = 0;
  while (k < sizeof cmds / sizeof cmds[0] && strcmp(cmds[k].name, argv[argi]) != 0) k++;
  if (k == sizeof cmds / sizeof cmds[0]) {
    fprintf(stderr,
            "seslog suppression: unknown command \"%s\" (list, check, add, remove, export, "
            "import; see seslog suppression --help)\n",
            argv[argi]);
    return 2;
  }
  char cmdname[32];
  snprintf(cmdname, sizeof cmdname, "suppression %s", cmds[k].name);
  int n;
  char **v = options_first(cmdname, cmds[k].table, argc, argv, argi + 1, &n);
  if (!v) return 2;
  struct sup_opts o = {0};
  int i = 0;
  int rc = config_parse(cmdname, cmds[k].usage, cmds[k].table, &o, n, v, &i);
  int status;
  if (rc) {
    status = rc == 1 ? 0 : 2;
  } else {
    char **pos = v + i;
    int npos = n - i;
    switch (k) {
      case 0: status = cmd_list(&o, npos, pos, 0); break;
      case 1: status = cmd_check(&o, npos, pos); break;
      case 2: status = cmd_add_remove(&o, npos, pos, 0); break;
      case 3: status = cmd_add_remove(&o, npos, pos, 1); break;
      case 4: status = cmd_list(&o, npos, pos, 1); break;
      default: status = cmd_import_csv(&o, npos, pos); break;
    }
  }
  config_free(cmds[k].table, &o);
  free(v);
  return status;
}
