/* cmd_query.c - `seslog query`: stored events that match filters, printed
 * as a table, JSON, JSON lines or CSV. Reads the database directly over a
 * read-only connection (WAL: works while a server writes), a page at a
 * time, so any number of events streams in bounded memory. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <limits.h>
#include <sqlite3.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "cmd.h"
#include "config.h"
#include "csv.h"
#include "error.h"
#include "query.h"
#include "util.h"

#define PAGE 1000 /* events read per statement */

struct query_opts {
  char *db;
  struct opt_list type;
  char *bounce_type, *feedback_type, *address, *domain, *source, *message_id;
  char *since, *until, *limit, *order;
  char *format;
  char *bounce_sub_type, *diagnostic, *configuration_set, *tag, *sender_domain;
  char *group_by;
};

#define O(f) offsetof(struct query_opts, f)
static const struct opt query_table[] = {
    {"db", OPT_STR, O(db), SESLOG_DEFAULT_DB, "PATH", "the SQLite database"},
    {"type", OPT_LIST, O(type), NULL, "TYPE",
     "Bounce, Complaint, Delivery, Send, Reject, Open, Click, DeliveryDelay, ... (repeatable: "
     "events of any of them)",
     1},
    {"bounce-type", OPT_STR, O(bounce_type), NULL, "TYPE", "Permanent, Transient or Undetermined",
     1},
    {"feedback-type", OPT_STR, O(feedback_type), NULL, "TYPE",
     "complaint feedback type: abuse, fraud, not-spam, virus, other, ...", 1},
    {"address", OPT_STR, O(address), NULL, "ADDRESS", "a recipient (any case)", 1},
    {"domain", OPT_STR, O(domain), NULL, "DOMAIN", "a recipient's domain", 1},
    {"source", OPT_STR, O(source), NULL, "ADDRESS",
     "the sender's address (mail.source, any case; also in the \"Name <addr>\" form)", 1},
    {"sender-domain", OPT_STR, O(sender_domain), NULL, "DOMAIN", "the sender address's domain", 1},
    {"bounce-sub-type", OPT_STR, O(bounce_sub_type), NULL, "SUBTYPE",
     "bounceSubType: General, NoEmail, Suppressed, OnAccountSuppressionList, MailboxFull, ...", 1},
    {"diagnostic", OPT_STR, O(diagnostic), NULL, "TEXT",
     "the diagnostic contains this (any case): words, or a status code like 5.1.1 or 550", 1},
    {"configuration-set", OPT_STR, O(configuration_set), NULL, "NAME",
     "the SES configuration set (mail.tags ses:configuration-set)", 1},
    {"tag", OPT_STR, O(tag), NULL, "NAME[:VALUE]", "has the mail tag NAME (with this VALUE)", 1},
    {"group-by", OPT_STR, O(group_by), NULL, "FIELD[,FIELD]",
     "print counts of the matching events by day, hour, type, domain (counts recipients), "
     "bounceType, bounceSubType, diagnostic (normalized), source, configurationSet or tag:NAME, "
     "instead of the events",
     1},
    {"message-id", OPT_STR, O(message_id), NULL, "ID", "one mail's SES messageId", 1},
    {"since", OPT_STR, O(since), NULL, "TIME",
     "from this time on: ISO-8601 (2026-03-06T20:00:00Z or 2026-03-06) or back from now (15m, "
     "24h, 7d)",
     1},
    {"until", OPT_STR, O(until), NULL, "TIME", "before this time (as --since)", 1},
    {"limit", OPT_STR, O(limit), NULL, "N", "print at most N events [all]", 1},
    {"order", OPT_STR, O(order), "desc", "desc|asc", "newest first or oldest first", 1},
    {"format", OPT_STR, O(format), "table", "FORMAT",
     "table (fits the terminal), json, jsonl (with the original JSON as \"raw\"; `seslog "
     "import` reads it back), csv or tsv (tabs, newlines and backslashes in a value written "
     "\\t, \\n, \\\\: one event a line)",
     1},
    {0},
};
#undef O

/* Each option and the API parameter it sets. */
static const struct {
  const char *opt, *param;
  size_t offset;
} filter_opts[] = {
    {"bounce-type", "bounceType", offsetof(struct query_opts, bounce_type)},
    {"feedback-type", "feedbackType", offsetof(struct query_opts, feedback_type)},
    {"address", "address", offsetof(struct query_opts, address)},
    {"domain", "domain", offsetof(struct query_opts, domain)},
    {"source", "source", offsetof(struct query_opts, source)},
    {"message-id", "messageId", offsetof(struct query_opts, message_id)},
    {"sender-domain", "senderDomain", offsetof(struct query_opts, sender_domain)},
    {"bounce-sub-type", "bounceSubType", offsetof(struct query_opts, bounce_sub_type)},
    {"diagnostic", "diagnostic", offsetof(struct query_opts, diagnostic)},
    {"configuration-set", "configurationSet", offsetof(struct query_opts, configuration_set)},
    {"tag", "tag", offsetof(struct query_opts, tag)},
    {"since", "since", offsetof(struct query_opts, since)},
    {"until", "until", offsetof(struct query_opts, until)},
    {"order", "order", offsetof(struct query_opts, order)},
};

static const char query_usage[] =
    "Usage: seslog query [OPTIONS]\n"
    "\n"
    "Prints the stored events that match every filter given, newest first, as GET /api/events\n"
    "finds them. Without --limit it prints every match. It reads the database directly and\n"
    "works while a server writes to it. `seslog query --format jsonl > events.jsonl` exports\n"
    "events without loss: `seslog import events.jsonl` loads them into another database.\n"
    "With --group-by it prints counts instead, as GET /api/events/counts does:\n"
    "  seslog query --type Bounce --group-by day,bounceSubType\n"
    "  seslog query --type Bounce --since 2026-11-01 --group-by domain --limit 20";

enum format { F_TABLE, F_JSON, F_JSONL, F_CSV, F_TSV };
enum { F_WRITE = 1, F_OTHER = 2 }; /* printer.failed */

/* Table columns. */
enum { T_TIME, T_TYPE, T_RCPT, T_SOURCE, T_DETAIL, T_N };
static const char *const t_head[T_N] = {"TIME", "TYPE", "RECIPIENTS", "SOURCE", "DETAIL"};

typedef struct table_row {
  char *cell[T_N];
} table_row;

typedef struct printer {
  enum format format;
  FILE *out;
  long printed;    /* events written */
  buf line;        /* one event's text, reused */
  int failed;      /* F_WRITE or F_OTHER (said on stderr): stop */
  int write_errno; /* why a write failed */
  /* table */
  int width;       /* of the terminal */
  int widths[T_N]; /* fixed after the first page */
  int sized;       /* widths are fixed */
  table_row *held; /* the first page, held to size the columns */
  size_t n_held, cap_held;
} printer;

/* ---- text helpers ----------------------------------------------------- */

/* Columns s takes on a terminal: one per code point. */
static int text_width(const char *s) {
  int w = 0;
  for (; *s; s++)
    if (((unsigned char)*s & 0xC0) != 0x80) w++;
  return w;
}

/* A copy of s fit for one table cell: control characters (C0, DEL and
 * C1, which terminals may obey as commands) become spaces. */
static char *clean_cell(const char *s) {
  char *c = strdup(s ? s : "");
  if (!c) return NULL;
  unsigned char *p = (unsigned char *)c;
  for (size_t i = 0; p[i]; i++) {
    if (p[i] < 0x20 || p[i] == 0x7f) {
      p[i] = ' ';
    } else if (p[i] == 0xC2 && p[i + 1] >= 0x80 && p[i + 1] <= 0x9F) {
      p[i] = ' ';
      p[i + 1] = ' ';
    }
  }
  return c;
}

/* The affected addresses of a row, joined with sep. */
static char *join_recipients(const query_row *r, const char *sep) {
  buf b;
  buf_init(&b, 1 << 20);
  cJSON *a = r->col[QC_RECIPIENTS]
                 ? cJSON_ParseWithLength(r->col[QC_RECIPIENTS], r->len[QC_RECIPIENTS])
                 : NULL;
  const cJSON *e;
  int n = 0;
  cJSON_ArrayForEach(e, a) {
    if (!cJSON_IsString(e)) continue;
    if (n++) buf_appends(&b, sep);
    buf_appends(&b, e->valuestring);
  }
  cJSON_Delete(a);
  return buf_take(&b);
}

/* The DETAIL cell: bounce type and diagnostic, or the complaint's
 * feedback type, or the diagnostic alone. */
static char *detail(const query_row *r) {
  buf b;
  buf_init(&b, 1 << 16);
  const char *bt = r->col[QC_BOUNCE_TYPE], *bst = r->col[QC_BOUNCE_SUB_TYPE];
  const char *ft = r->col[QC_FEEDBACK_TYPE], *cst = r->col[QC_COMPLAINT_SUB_TYPE];
  const char *diag = r->col[QC_DIAGNOSTIC];
  if (bt)
    buf_printf(&b, "%s%s%s", bt, bst ? "/" : "", bst ? bst : "");
  else if (ft)
    buf_appends(&b, ft);
  else if (cst)
    buf_appends(&b, cst);
  if (diag && *diag) buf_printf(&b, "%s%s", b.len ? ": " : "", diag);
  return buf_take(&b);
}

static int emit(printer *p, const char *s, size_t n) {
  if (p->failed) return p->failed;
  if (n && fwrite(s, 1, n, p->out) != n) {
    p->failed = F_WRITE;
    p->write_errno = errno;
  }
  return p->failed;
}

/* ---- table ------------------------------------------------------------ */

/* Writes s in w columns: cut with an ellipsis when longer, padded with
 * spaces unless it is the last column. */
static void put_cell(buf *b, const char *s, int w, int last) {
  int sw = text_width(s);
  if (sw <= w) {
    buf_appends(b, s);
    if (!last)
      for (int i = sw; i < w; i++) buf_append(b, " ", 1);
    return;
  }
  if (w <= 0) return;
  int cp = 0;
  const char *q = s;
  for (; *q; q++) { /* keep w - 1 code points, then the ellipsis */
    if (((unsigned char)*q & 0xC0) != 0x80 && cp++ == w - 1) break;
  }
  buf_append(b, s, (size_t)(q - s));
  buf_appends(b, "\xE2\x80\xA6"); /* … */
}

static int put_row(printer *p, char *const cell[T_N]) {
  buf_reset(&p->line);
  for (int i = 0; i < T_N; i++) {
    if (i) buf_append(&p->line, "  ", 2);
    put_cell(&p->line, cell[i], p->widths[i], i == T_N - 1);
  }
  /* A row of empty trailing cells leaves spaces: trim them. */
  while (p->line.len && p->line.data[p->line.len - 1] == ' ') p->line.data[--p->line.len] = 0;
  buf_append(&p->line, "\n", 1);
  return emit(p, p->line.data, p->line.len);
}

/* Fixes the column widths from the held rows: TIME and TYPE as wide as
 * they need; the rest of the terminal shared so that narrow columns get
 * all they need and wide ones split what remains. */
static void size_columns(printer *p) {
  int natural[T_N];
  for (int i = 0; i < T_N; i++) natural[i] = text_width(t_head[i]);
  for (size_t r = 0; r < p->n_held; r++)
    for (int i = 0; i < T_N; i++) {
      int w = text_width(p->held[r].cell[i]);
      if (w > natural[i]) natural[i] = w;
    }
  p->widths[T_TIME] = natural[T_TIME];
  p->widths[T_TYPE] = natural[T_TYPE] < 17 ? natural[T_TYPE] : 17;
  int left = p->width - p->widths[T_TIME] - p->widths[T_TYPE] - 2 * (T_N - 1);
  int flex[] = {T_RCPT, T_SOURCE, T_DETAIL}, n = 3, done[T_N] = {0};
  /* Water-filling: the narrowest column under its fair share takes what
   * it needs; repeat; the others split the rest evenly. */
  for (int round = 0; round < 3; round++) {
    int best = -1;
    for (int k = 0; k < 3; k++) {
      int i = flex[k];
      if (done[i]) continue;
      if (best < 0 || natural[i] < natural[best]) best = i;
    }
    int share = n > 0 ? left / n : 0;
    if (best >= 0 && natural[best] <= share) {
      p->widths[best] = natural[best];
      done[best] = 1;
      left -= natural[best];
      n--;
      continue;
    }
    break;
  }
  for (int k = 0; k < 3; k++) {
    int i = flex[k];
    if (done[i]) continue;
    int share = n > 0 ? left / n : 0;
    p->widths[i] = share < 4 ? 4 : share;
    left -= p->widths[i];
    n--;
  }
  p->sized = 1;
}

static void free_held(printer *p) {
  for (size_t r = 0; r < p->n_held; r++)
    for (int i = 0; i < T_N; i++) free(p->held[r].cell[i]);
  free(p->held);
  p->held = NULL;
  p->n_held = p->cap_held = 0;
}

/* Prints the held rows under the header; later rows print at once. */
static int flush_table(printer *p) {
  if (p->sized) return p->failed;
  size_columns(p);
  if (p->n_held) put_row(p, (char *const *)t_head);
  for (size_t r = 0; r < p->n_held && !p->failed; r++) put_row(p, p->held[r].cell);
  free_held(p);
  return p->failed;
}

/* Prints a row, or holds it while the first page sizes the columns. */
static int table_row_add(printer *p, const query_row *r) {
  table_row t;
  char *rcpt = join_recipients(r, ", "), *det = detail(r);
  t.cell[T_TIME] = clean_cell(r->col[QC_TIME_STAMP]);
  t.cell[T_TYPE] = clean_cell(r->col[QC_TYPE]);
  t.cell[T_RCPT] = clean_cell(rcpt);
  t.cell[T_SOURCE] = clean_cell(r->col[QC_SOURCE]);
  t.cell[T_DETAIL] = clean_cell(det);
  free(rcpt);
  free(det);
  int ok = 1;
  for (int i = 0; i < T_N; i++) ok &= t.cell[i] != NULL;
  if (ok && p->sized) {
    put_row(p, t.cell);
    ok = 0; /* printed: free the cells below */
  } else if (ok) {
    if (p->n_held == p->cap_held) {
      size_t cap = p->cap_held ? p->cap_held * 2 : 64;
      table_row *h = realloc(p->held, cap * sizeof *h);
      if (h) {
        p->held = h;
        p->cap_held = cap;
      }
    }
    if (p->n_held < p->cap_held) {
      p->held[p->n_held++] = t;
      return 0;
    }
  }
  for (int i = 0; i < T_N; i++) free(t.cell[i]);
  if (!p->sized && !p->failed) {
    fprintf(stderr, "seslog query: out of memory\n");
    p->failed = F_OTHER;
  }
  return p->failed;
}

/* ---- csv -------------------------------------------------------------- */

static void csv_field(buf *b, const char *s) {
  csv_cell(b, s); /* a value too large shows as an error when the line ends */
}

static const char csv_header[] =
    "timeStamp,notificationType,messageId,recipients,source,bounceType,bounceSubType,"
    "complaintFeedbackType,complaintSubType,diagnostic,reportingMTA,destinationAddress,"
    "feedbackId,snsMessageId,topicArn\r\n";

/* Prints one event as a line of csv or tsv: the header's columns, -1 the
 * recipients joined with ",", each cell written by field, sep between. */
static int delimited_row(printer *p, const query_row *r, const char *sep, const char *eol,
                         void (*field)(buf *, const char *)) {
  static const int cols[] = {QC_TIME_STAMP,
                             QC_TYPE,
                             QC_MESSAGE_ID,
                             -1,
                             QC_SOURCE,
                             QC_BOUNCE_TYPE,
                             QC_BOUNCE_SUB_TYPE,
                             QC_FEEDBACK_TYPE,
                             QC_COMPLAINT_SUB_TYPE,
                             QC_DIAGNOSTIC,
                             QC_REPORTING_MTA,
                             QC_DESTINATION,
                             QC_FEEDBACK_ID,
                             QC_SNS_MESSAGE_ID,
                             QC_TOPIC_ARN};
  buf_reset(&p->line);
  for (size_t i = 0; i < sizeof cols / sizeof cols[0]; i++) {
    if (i) buf_appends(&p->line, sep);
    if (cols[i] < 0) {
      char *rcpt = join_recipients(r, ",");
      field(&p->line, rcpt);
      free(rcpt);
    } else {
      field(&p->line, r->col[cols[i]]);
    }
  }
  if (buf_appends(&p->line, eol)) {
    fprintf(stderr, "seslog query: an event is too large to print\n");
    return p->failed = F_OTHER;
  }
  return emit(p, p->line.data, p->line.len);
}

static int csv_row(printer *p, const query_row *r) {
  return delimited_row(p, r, ",", "\r\n", csv_field);
}

/* ---- tsv -------------------------------------------------------------- */

/* A TSV cell: tab, newline, carriage return and backslash written as
 * \t, \n, \r and \\ (as PostgreSQL's COPY and MySQL write them), so a
 * multi-line diagnostic stays on its event's line. */
static void tsv_field(buf *b, const char *s) {
  for (const char *q = s ? s : ""; *q; q++) {
    const char *esc = *q == '\t'   ? "\\t"
                      : *q == '\n' ? "\\n"
                      : *q == '\r' ? "\\r"
                      : *q == '\\' ? "\\\\"
                                   : NULL;
    if (esc)
      buf_append(b, esc, 2);
    else
      buf_append(b, q, 1);
  }
}

static const char tsv_header[] =
    "timeStamp\tnotificationType\tmessageId\trecipients\tsource\tbounceType\tbounceSubType\t"
    "complaintFeedbackType\tcomplaintSubType\tdiagnostic\treportingMTA\tdestinationAddress\t"
    "feedbackId\tsnsMessageId\ttopicArn\n";

static int tsv_row(printer *p, const query_row *r) {
  return delimited_row(p, r, "\t", "\n", tsv_field);
}

/* ---- the row callback ------------------------------------------------- */

static int on_row(void *ud, const query_row *r) {
  printer *p = ud;
  if (p->failed) return 1;
  switch (p->format) {
    case F_TABLE: table_row_add(p, r); break;
    case F_CSV: csv_row(p, r); break;
    case F_TSV: tsv_row(p, r); break;
    case F_JSON:
    case F_JSONL:
      buf_reset(&p->line);
      if (p->format == F_JSON) buf_appends(&p->line, p->printed ? ",\n" : "\n");
      if (query_row_json(&p->line, r)) {
        fprintf(stderr, "seslog query: an event is too large to print\n");
        p->failed = F_OTHER;
        break;
      }
      if (p->format == F_JSONL) buf_append(&p->line, "\n", 1);
      emit(p, p->line.data, p->line.len);
      break;
  }
  if (!p->failed) p->printed++;
  return p->failed;
}

/* ---- --group-by --------------------------------------------------------- */

struct group_printer {
  printer *p;
  const query_grouping *g;
  int widths[QUERY_GROUP_MAX];
  long n;
};

/* Prints one group in the chosen format (the table's columns are as wide
 * as the field names, or 24, and longer keys run on). */
static int on_group(void *ud, const char *const *keys, int64_t count) {
  struct group_printer *gp = ud;
  printer *p = gp->p;
  buf *b = &p->line;
  buf_reset(b);
  char num[32];
  snprintf(num, sizeof num, "%lld", (long long)count);
  switch (p->format) {
    case F_TABLE:
      for (int i = 0; i < gp->g->n; i++) {
        char *c = clean_cell(keys[i] ? keys[i] : "-");
        if (!c) return p->failed = F_OTHER;
        put_cell(b, c, text_width(c) > gp->widths[i] ? text_width(c) : gp->widths[i], 0);
        buf_append(b, "  ", 2);
        free(c);
      }
      buf_appends(b, num);
      buf_append(b, "\n", 1);
      break;
    case F_CSV:
    case F_TSV:
      for (int i = 0; i < gp->g->n; i++) {
        if (p->format == F_CSV)
          csv_field(b, keys[i]);
        else
          tsv_field(b, keys[i]);
        buf_append(b, p->format == F_CSV ? "," : "\t", 1);
      }
      buf_appends(b, num);
      buf_appends(b, p->format == F_CSV ? "\r\n" : "\n");
      break;
    case F_JSON:
    case F_JSONL:
      if (p->format == F_JSON) buf_appends(b, gp->n ? ",\n" : "\n");
      buf_appends(b, "{\"key\":{");
      for (int i = 0; i < gp->g->n; i++) {
        if (i) buf_append(b, ",", 1);
        buf_json_string(b, gp->g->name[i]);
        buf_append(b, ":", 1);
        buf_json_string(b, keys[i]);
      }
      buf_printf(b, "},\"count\":%s}", num);
      if (p->format == F_JSONL) buf_append(b, "\n", 1);
      break;
  }
  gp->n++;
  return emit(p, b->data, b->len);
}

/* Prints the counts of f's events grouped by g: a header (table, csv,
 * tsv), the groups, the closing of json. Returns 0, or the exit status. */
static int print_groups(printer *p, sqlite3 *db, const query_filter *f, const query_grouping *g,
                        long limit) {
  struct group_printer gp = {.p = p, .g = g};
  buf *b = &p->line;
  buf_reset(b);
  for (int i = 0; i < g->n; i++)
    gp.widths[i] = text_width(g->name[i]) > 24 ? text_width(g->name[i]) : 24;
  if (p->format == F_JSON) {
    buf_appends(b, "{\"groupBy\":[");
    for (int i = 0; i < g->n; i++) {
      if (i) buf_append(b, ",", 1);
      buf_json_string(b, g->name[i]);
    }
    buf_appends(b, "],\"groups\":[");
  } else if (p->format != F_JSONL) {
    for (int i = 0; i < g->n; i++) {
      if (p->format == F_TABLE) {
        char *up = strdup(g->name[i]);
        if (!up) return 1;
        for (char *c = up; *c; c++)
          if (*c >= 'a' && *c <= 'z') *c = (char)(*c - 32);
        put_cell(b, up, gp.widths[i], 0);
        buf_append(b, "  ", 2);
        free(up);
      } else {
        buf_appends(b, g->name[i]);
        buf_append(b, p->format == F_CSV ? "," : "\t", 1);
      }
    }
    buf_appends(b, p->format == F_TABLE ? "COUNT\n" : p->format == F_CSV ? "count\r\n" : "count\n");
  }
  emit(p, b->data, b->len);
  int more = 0;
  int rc = query_group_counts(db, f, g, limit > 0 ? limit : 1000000000L, on_group, &gp, &more);
  if (rc) {
    fprintf(stderr, "seslog query: the database could not answer: %s\n",
            rc == SL_EDB ? sqlite3_errmsg(db) : sl_strerror(rc));
    return 1;
  }
  if (p->format == F_JSON) {
    buf_reset(b);
    buf_printf(b, "%s],\"more\":%s}\n", gp.n ? "\n" : "", more ? "true" : "false");
    emit(p, b->data, b->len);
  }
  if (p->format == F_TABLE && gp.n == 0 && !p->failed)
    fprintf(stderr, "seslog query: no event matches\n");
  p->printed = gp.n;
  return 0;
}

static int terminal_width(void) {
  const char *c = getenv("COLUMNS");
  if (c && *c) {
    char *end;
    long n = strtol(c, &end, 10);
    if (!*end && n >= 20 && n <= 10000) return (int)n;
  }
  struct winsize ws;
  if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 20) return ws.ws_col;
  return 120;
}

/* The format named by --format into p. Returns 0, or -1 after a line on
 * stderr. */
static int read_format(printer *p, const char *name) {
  static const struct {
    const char *name;
    enum format format;
  } formats[] = {
      {"table", F_TABLE}, {"json", F_JSON}, {"jsonl", F_JSONL}, {"csv", F_CSV}, {"tsv", F_TSV}};
  for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++) {
    if (strcmp(name, formats[i].name) == 0) {
      p->format = formats[i].format;
      return 0;
    }
  }
  fprintf(stderr, "seslog query: --format must be table, json, jsonl, csv or tsv\n");
  return -1;
}

/* The filters, --limit (*remaining: -1 for every match) and --group-by of
 * o into f, *remaining and g. Returns 0, or -1 after a line on stderr. */
static int read_filters(const struct query_opts *o, query_filter *f, long *remaining,
                        query_grouping *g) {
  query_filter_init(f);
  int64_t now = util_now_ms();
  char err[400];
  for (size_t i = 0; i < o->type.n; i++) {
    if (query_filter_set(f, "type", o->type.items[i], now, LONG_MAX, err, sizeof err)) {
      fprintf(stderr, "seslog query: --type \"%s\" %s\n", o->type.items[i], err);
      return -1;
    }
  }
  for (size_t i = 0; i < sizeof filter_opts / sizeof filter_opts[0]; i++) {
    const char *v = *(char *const *)((const char *)o + filter_opts[i].offset);
    if (!v) continue;
    if (query_filter_set(f, filter_opts[i].param, v, now, LONG_MAX, err, sizeof err)) {
      fprintf(stderr, "seslog query: --%s \"%s\" %s\n", filter_opts[i].opt, v, err);
      return -1;
    }
  }
  *remaining = -1; /* every match */
  if (o->limit) {
    char *end;
    errno = 0;
    *remaining = strtol(o->limit, &end, 10);
    if (errno || end == o->limit || *end || *remaining < 1) {
      fprintf(stderr, "seslog query: --limit \"%s\" must be a whole number of 1 or more\n",
              o->limit);
      return -1;
    }
  }
  memset(g, 0, sizeof *g);
  if (o->group_by && query_grouping_parse(o->group_by, g, err, sizeof err)) {
    fprintf(stderr, "seslog query: --group-by \"%s\" %s\n", o->group_by, err);
    return -1;
  }
  return 0;
}

/* Prints the events of f, page by page, up to remaining of them (-1:
 * every one). Returns the exit status so far: 0, or 1 when the database
 * failed. */
static int print_events(printer *p, sqlite3 *db, query_filter *f, long remaining) {
  if (p->format == F_JSON) emit(p, "{\"items\":[", 10);
  if (p->format == F_CSV) emit(p, csv_header, sizeof csv_header - 1);
  if (p->format == F_TSV) emit(p, tsv_header, sizeof tsv_header - 1);
  int status = 0;
  for (;;) {
    f->limit = remaining < 0 || remaining > PAGE ? PAGE : remaining;
    char next[QUERY_CURSOR_MAX];
    long rows = 0;
    int rc = query_events(db, f, p->format == F_JSONL, on_row, p, next, &rows);
    if (rc) {
      fprintf(stderr, "seslog query: the database could not answer: %s\n",
              rc == SL_EDB ? sqlite3_errmsg(db) : sl_strerror(rc));
      status = 1;
      break;
    }
    if (p->failed) break;
    if (p->format == F_TABLE && !p->sized) flush_table(p);
    if (remaining > 0) remaining -= rows;
    if (!next[0] || remaining == 0) break;
    query_cursor_decode(next, f->cursor_ts, &f->cursor_id);
  }
  if (p->format == F_TABLE && !p->failed) flush_table(p);
  if (p->format == F_JSON) emit(p, p->printed ? "\n]}\n" : "]}\n", p->printed ? 4 : 3);
  return status;
}

/* Flushes stdout and turns what went wrong while printing into the exit
 * status (status so far given). */
static int finish_output(printer *p, int status, int grouped) {
  if (!p->failed && fflush(stdout) != 0) {
    p->failed = F_WRITE;
    p->write_errno = errno;
  }
  if (p->failed == F_OTHER) status = 1;
  /* A reader that went away (`| head`) is not an error. */
  if (p->failed == F_WRITE && p->write_errno != EPIPE) {
    fprintf(stderr, "seslog query: cannot write the output: %s\n", strerror(p->write_errno));
    status = 1;
  }
  if (status == 0 && p->format == F_TABLE && p->printed == 0 && !grouped)
    fprintf(stderr, "seslog query: no event matches\n");
  return status;
}

int cmd_query(int argc, char **argv, int argi) {
  struct query_opts o = {0};
  int rc = config_parse("query", query_usage, query_table, &o, argc, argv, &argi);
  if (rc) {
    config_free(query_table, &o);
    return rc == 1 ? 0 : 2;
  }
  int status = 2;
  sqlite3 *db = NULL;
  printer p = {.out = stdout};
  buf_init(&p.line, 64u << 20);
  query_filter f;
  query_grouping grouping;
  long remaining;
  char err[400];
  if (argi < argc) {
    fprintf(stderr, "seslog query: unexpected argument \"%s\" (see seslog query --help)\n",
            argv[argi]);
    goto out;
  }
  if (read_format(&p, o.format) || read_filters(&o, &f, &remaining, &grouping)) goto out;
  if (access(o.db, F_OK) != 0) {
    fprintf(stderr, "seslog query: no database at %s (give --db, or import or serve first)\n",
            o.db);
    goto out;
  }
  if (query_open(o.db, &db, err, sizeof err)) {
    fprintf(stderr, "seslog query: %s\n", err);
    goto out;
  }
  static char obuf[1 << 16];
  setvbuf(stdout, obuf, _IOFBF, sizeof obuf);
  p.width = terminal_width();
  if (o.group_by)
    status = print_groups(&p, db, &f, &grouping, remaining);
  else
    status = print_events(&p, db, &f, remaining);
  status = finish_output(&p, status, o.group_by != NULL);
out:
  free_held(&p);
  buf_free(&p.line);
  sqlite3_close(db);
  config_free(query_table, &o);
  return status;
}
