/* jsoncheck.c - duplicate keys and NUL in strings (jsoncheck.h). */
#include "jsoncheck.h"

#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

#define DEPTH_MAX 1100 /* above cJSON's nesting limit of 1000 */
#define FEW_KEYS 12    /* objects up to this size are compared pair by pair */

/* A key as it appears in the text, quotes excluded. */
struct key {
  const char *p;
  size_t n;
  uint32_t hash; /* FNV-1a of the unescaped code points */
};

struct keys {
  struct key *v; /* first the array on the caller's stack, then the heap */
  size_t n, cap;
  int on_heap;
};

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static long hex4(const char *p, size_t left) {
  if (left < 4) return -1;
  long v = 0;
  for (int i = 0; i < 4; i++) {
    int h = hexval(p[i]);
    if (h < 0) return -1;
    v = v * 16 + h;
  }
  return v;
}

/* The next code point of the string body p[*i..n), unescaped (surrogate
 * pairs joined); raw bytes stand for themselves, so two spellings of one
 * key give the same sequence. Advances *i. */
static long next_cp(const char *p, size_t n, size_t *i) {
  unsigned char c = (unsigned char)p[*i];
  if (c != '\\' || *i + 1 >= n) {
    (*i)++;
    if (c < 0x80) return c;
    /* UTF-8: join the sequence so that "é" equals "\u00e9". */
    int more = c >= 0xf0 ? 3 : c >= 0xe0 ? 2 : c >= 0xc0 ? 1 : 0;
    long cp = more == 3 ? c & 7 : more == 2 ? c & 15 : more == 1 ? c & 31 : c;
    for (int k = 0; k < more; k++) {
      if (*i >= n || ((unsigned char)p[*i] & 0xc0) != 0x80) return 0x200000 | c; /* invalid */
      cp = (cp << 6) | ((unsigned char)p[(*i)++] & 0x3f);
    }
    return cp;
  }
  char e = p[*i + 1];
  *i += 2;
  switch (e) {
    case 'b': return '\b';
    case 'f': return '\f';
    case 'n': return '\n';
    case 'r': return '\r';
    case 't': return '\t';
    case 'u': {
      long u = hex4(p + *i, n - *i);
      if (u < 0) return 0x300000; /* cJSON refused it already */
      *i += 4;
      if (u >= 0xd800 && u <= 0xdbff && *i + 6 <= n && p[*i] == '\\' && p[*i + 1] == 'u') {
        long lo = hex4(p + *i + 2, n - *i - 2);
        if (lo >= 0xdc00 && lo <= 0xdfff) {
          *i += 6;
          return 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00);
        }
      }
      return u;
    }
    default: return (unsigned char)e; /* \" \\ \/ */
  }
}

static uint32_t key_hash(const char *p, size_t n) {
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < n;) {
    unsigned char c = (unsigned char)p[i];
    /* ASCII stands for itself: the common case without a call. */
    long cp = c < 0x80 && c != '\\' ? (i++, c) : next_cp(p, n, &i);
    h = (h ^ (uint32_t)cp) * 16777619u;
  }
  return h;
}

/* Compares two keys by their code points: <0, 0, >0. */
static int key_cmp(const struct key *a, const struct key *b) {
  if (a->hash != b->hash) return a->hash < b->hash ? -1 : 1;
  size_t i = 0, j = 0;
  while (i < a->n && j < b->n) {
    long x = next_cp(a->p, a->n, &i), y = next_cp(b->p, b->n, &j);
    if (x != y) return x < y ? -1 : 1;
  }
  return (i < a->n) - (j < b->n);
}

static int key_qcmp(const void *a, const void *b) {
  return key_cmp(a, b);
}

/* 1 when two of the n keys at v are equal; sorts v when there are many. */
static int has_duplicate(struct key *v, size_t n) {
  if (n <= FEW_KEYS) {
    for (size_t i = 0; i < n; i++)
      for (size_t j = i + 1; j < n; j++)
        if (key_cmp(&v[i], &v[j]) == 0) return 1;
    return 0;
  }
  qsort(v, n, sizeof *v, key_qcmp);
  for (size_t i = 1; i < n; i++)
    if (key_cmp(&v[i - 1], &v[i]) == 0) return 1;
  return 0;
}

static int keys_push(struct keys *k, const char *p, size_t n) {
  if (k->n == k->cap) {
    size_t cap = 2 * k->cap;
    struct key *v = k->on_heap ? realloc(k->v, cap * sizeof *v) : malloc(cap * sizeof *v);
    if (!v) return SL_ENOMEM;
    if (!k->on_heap) memcpy(v, k->v, k->n * sizeof *v);
    k->v = v;
    k->cap = cap;
    k->on_heap = 1;
  }
  k->v[k->n++] = (struct key){p, n, key_hash(p, n)};
  return 0;
}

/* 1 when the escape at p[0..left) (p[0] is its backslash) is written as
 * cJSON writes one: \" \\ \b \f \n \r \t, or \u00xx in lower case for
 * the other bytes below 0x20. cJSON writes every other byte as it is. */
static int compact_escape(const char *p, size_t left) {
  if (left < 2) return 0;
  char e = p[1];
  if (e == '"' || e == '\\' || e == 'b' || e == 'f' || e == 'n' || e == 'r' || e == 't') return 1;
  if (e != 'u' || left < 6 || p[2] != '0' || p[3] != '0' || (p[4] != '0' && p[4] != '1')) return 0;
  int lo = hexval(p[5]);
  if (lo < 0 || (p[5] >= 'A' && p[5] <= 'F')) return 0;
  int cp = (p[4] - '0') * 16 + lo;
  return cp != 0 && cp != '\b' && cp != '\f' && cp != '\n' && cp != '\r' && cp != '\t';
}

/* The length of the number at s[0..n) when it is an integer cJSON prints
 * back the same (no leading zero, no fraction or exponent, at most 15
 * digits, not -0), else 0. */
static size_t compact_number(const char *s, size_t n) {
  size_t i = s[0] == '-';
  size_t first = i;
  while (i < n && s[i] >= '0' && s[i] <= '9') i++;
  size_t digits = i - first;
  if (digits == 0 || digits > 15) return 0;
  if (s[first] == '0' && (digits > 1 || first)) return 0;
  if (i < n && (s[i] == '.' || s[i] == 'e' || s[i] == 'E' || s[i] == '+' || s[i] == '-')) return 0;
  return i;
}

/* 1 when one of the eight bytes at p may end a stretch of plain string
 * text: a quote, a backslash or a byte below 0x20 (a word test that is
 * exact for "none of them", which is all the callers need). */
static int word_special(const char *p) {
  const uint64_t ones = 0x0101010101010101u, highs = 0x8080808080808080u;
  uint64_t x;
  memcpy(&x, p, 8);
  uint64_t q = x ^ (ones * '"'), b = x ^ (ones * '\\');
  return (((x - ones * 0x20) & ~x) | ((q - ones) & ~q) | ((b - ones) & ~b)) & highs ? 1 : 0;
}

/* Skips a string whose opening quote is at s[*i]; leaves *i after the
 * closing quote. Returns 1 when it holds U+0000 (escaped or raw), or a \u
 * not followed by four hex digits: cJSON reads that as U+0000 too. Clears
 * *compact when a byte or escape in it is not as cJSON writes it. */
static int skip_string(const char *s, size_t n, size_t *i, int *compact) {
  int nul = 0;
  size_t j = *i + 1;
  for (;;) {
    while (j + 8 <= n && !word_special(s + j)) j += 8; /* plain text, eight bytes at a time */
    if (j >= n || s[j] == '"') break;
    if (s[j] == '\\') {
      if (j + 1 < n && s[j + 1] == 'u' && hex4(s + j + 2, n - j - 2) <= 0) nul = 1;
      if (*compact && !compact_escape(s + j, n - j)) *compact = 0;
      j += 2;
    } else {
      if ((unsigned char)s[j] < 0x20) {
        if (s[j] == 0) nul = 1;
        *compact = 0;
      }
      j++;
    }
  }
  if (j >= n) *compact = 0; /* no closing quote */
  *i = j + 1;
  return nul;
}

static int fail(const char **why, const char *msg, int rc) {
  if (why) *why = msg;
  return rc;
}

int jsoncheck(const char *s, size_t n, const char **why) {
  int compact;
  return jsoncheck_ex(s, n, &compact, why);
}

int jsoncheck_compact(const char *s, size_t n) {
  int compact = 0;
  return jsoncheck_ex(s, n, &compact, NULL) == 0 && compact;
}

int jsoncheck_ex(const char *s, size_t n, int *compact, const char **why) {
  /* Per open container: 1 for an object, and where its keys start. */
  static _Thread_local struct frame {
    unsigned char object;
    size_t first_key;
  } stack[DEPTH_MAX];
  size_t depth = 0;
  int expect_key = 0; /* the next string in this object is a key */
  struct key on_stack[64];
  struct keys k = {on_stack, 0, 64, 0};
  int rc = 0;
  *compact = n > 0;
  for (size_t i = 0; i < n && !rc;) {
    char c = s[i];
    if (c == '"') {
      size_t start = i + 1;
      if (skip_string(s, n, &i, compact)) {
        rc = fail(why, "a JSON string holds U+0000 (NUL)", SL_ENUL);
      } else if (expect_key) {
        rc = keys_push(&k, s + start, i - 1 - start);
        expect_key = 0;
      }
      continue;
    }
    if (c == '{' || c == '[') {
      if (depth == DEPTH_MAX) {
        rc = fail(why, "the JSON is nested too deeply", SL_EJSON);
        break;
      }
      stack[depth].object = c == '{';
      stack[depth].first_key = k.n;
      depth++;
      expect_key = c == '{';
    } else if (c == '}' || c == ']') {
      if (!depth) { /* past the document */
        *compact = 0;
        break;
      }
      depth--;
      if (stack[depth].object) {
        size_t first = stack[depth].first_key;
        if (k.n - first > 1 && has_duplicate(k.v + first, k.n - first))
          rc = fail(why, "a JSON object has the same key twice", SL_EDUPKEY);
        k.n = first;
      }
      expect_key = 0;
    } else if (c == ',') {
      expect_key = depth && stack[depth - 1].object;
    } else if (*compact && c != ':') {
      /* a number, true, false, null, or what cJSON does not write */
      if (c == '-' || (c >= '0' && c <= '9')) {
        size_t len = compact_number(s + i, n - i);
        if (len) {
          i += len;
          continue;
        }
        *compact = 0;
      } else if (c != 't' && c != 'r' && c != 'u' && c != 'e' && c != 'f' && c != 'a' && c != 'l' &&
                 c != 's' && c != 'n') {
        *compact = 0; /* white space, among others */
      }
    }
    i++;
  }
  if (k.on_heap) free(k.v);
  return rc;
}

/* ---- syntax ------------------------------------------------------------ */

/* The JSON syntax check of jsoncheck_syntax, without allocation: each
 * returns the position after the value, or NULL. */
static const char *syn_skip_ws(const char *p, const char *end) {
  while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
  return p;
}

static const char *syn_json_value(const char *p, const char *end, int depth);

static const char *syn_json_string(const char *p, const char *end) {
  if (p >= end || *p != '"') return NULL;
  for (p++; p < end; p++) {
    unsigned char c = (unsigned char)*p;
    if (c == '"') return p + 1;
    if (c < 0x20) return NULL;
    if (c == '\\') {
      if (++p >= end) return NULL;
      if (*p == 'u') {
        for (int i = 0; i < 4; i++)
          if (++p >= end || !isxdigit((unsigned char)*p)) return NULL;
      } else if (!strchr("\"\\/bfnrt", *p) || !*p) {
        return NULL;
      }
    }
  }
  return NULL;
}

static const char *syn_json_number(const char *p, const char *end) {
  if (p < end && *p == '-') p++;
  if (p >= end || !isdigit((unsigned char)*p)) return NULL;
  if (*p == '0')
    p++;
  else
    while (p < end && isdigit((unsigned char)*p)) p++;
  if (p < end && *p == '.') {
    p++;
    if (p >= end || !isdigit((unsigned char)*p)) return NULL;
    while (p < end && isdigit((unsigned char)*p)) p++;
  }
  if (p < end && (*p == 'e' || *p == 'E')) {
    p++;
    if (p < end && (*p == '+' || *p == '-')) p++;
    if (p >= end || !isdigit((unsigned char)*p)) return NULL;
    while (p < end && isdigit((unsigned char)*p)) p++;
  }
  return p;
}

static const char *syn_json_value(const char *p, const char *end, int depth) {
  p = syn_skip_ws(p, end);
  if (p >= end || depth > 64) return NULL;
  switch (*p) {
    case '"': return syn_json_string(p, end);
    case '{':
    case '[': {
      char close = *p == '{' ? '}' : ']';
      int object = *p == '{';
      p = syn_skip_ws(p + 1, end);
      if (p < end && *p == close) return p + 1;
      for (;;) {
        if (object) {
          p = syn_json_string(syn_skip_ws(p, end), end);
          if (!p) return NULL;
          p = syn_skip_ws(p, end);
          if (p >= end || *p != ':') return NULL;
          p++;
        }
        p = syn_json_value(p, end, depth + 1);
        if (!p) return NULL;
        p = syn_skip_ws(p, end);
        if (p < end && *p == ',') {
          p++;
          continue;
        }
        if (p < end && *p == close) return p + 1;
        return NULL;
      }
    }
    case 't': return end - p >= 4 && memcmp(p, "true", 4) == 0 ? p + 4 : NULL;
    case 'f': return end - p >= 5 && memcmp(p, "false", 5) == 0 ? p + 5 : NULL;
    case 'n': return end - p >= 4 && memcmp(p, "null", 4) == 0 ? p + 4 : NULL;
    default: return syn_json_number(p, end);
  }
}

int jsoncheck_syntax(const char *s, size_t n) {
  const char *end = s + n, *p = syn_json_value(s, end, 0);
  return p && syn_skip_ws(p, end) == end;
}
