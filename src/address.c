/* address.c - email addresses as the suppression list keeps them:
 * checked, folded to a key, unwrapped from "Name <addr>". */
#include "address.h"

#include <stdio.h>
#include <string.h>

#include "error.h"

/* Length of the valid UTF-8 sequence at p (n bytes left), or 0. */
static size_t utf8_len(const unsigned char *p, size_t n) {
  unsigned char c = p[0];
  size_t len;
  unsigned min;
  unsigned cp;
  if (c < 0x80) return 1;
  if (c >= 0xc2 && c <= 0xdf)
    len = 2, min = 0x80, cp = c & 0x1f;
  else if (c >= 0xe0 && c <= 0xef)
    len = 3, min = 0x800, cp = c & 0x0f;
  else if (c >= 0xf0 && c <= 0xf4)
    len = 4, min = 0x10000, cp = c & 0x07;
  else
    return 0;
  if (len > n) return 0;
  for (size_t i = 1; i < len; i++) {
    if ((p[i] & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (p[i] & 0x3f);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
  return len;
}

/* ASCII that cannot stand unquoted in an address (or in a CSV field). */
static const unsigned char special[128] = {[','] = 1, [';'] = 1, ['<'] = 1, ['>'] = 1, ['"'] = 1,
                                           ['('] = 1, [')'] = 1, ['['] = 1, [']'] = 1, ['\\'] = 1};

/* ASCII allowed in a domain (other bytes are UTF-8 of an IDN). */
static const unsigned char domain_char[128] = {
    ['-'] = 1, ['.'] = 1, ['_'] = 1, ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1,
    ['5'] = 1, ['6'] = 1, ['7'] = 1, ['8'] = 1, ['9'] = 1, ['A'] = 1, ['B'] = 1, ['C'] = 1,
    ['D'] = 1, ['E'] = 1, ['F'] = 1, ['G'] = 1, ['H'] = 1, ['I'] = 1, ['J'] = 1, ['K'] = 1,
    ['L'] = 1, ['M'] = 1, ['N'] = 1, ['O'] = 1, ['P'] = 1, ['Q'] = 1, ['R'] = 1, ['S'] = 1,
    ['T'] = 1, ['U'] = 1, ['V'] = 1, ['W'] = 1, ['X'] = 1, ['Y'] = 1, ['Z'] = 1, ['a'] = 1,
    ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1, ['h'] = 1, ['i'] = 1,
    ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1, ['o'] = 1, ['p'] = 1, ['q'] = 1,
    ['r'] = 1, ['s'] = 1, ['t'] = 1, ['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1, ['y'] = 1,
    ['z'] = 1};

int address_check(const char *addr, const char **why) {
  const char *w = NULL;
  size_t n = addr ? strlen(addr) : 0;
  const char *at = addr ? strchr(addr, '@') : NULL;
  if (!n)
    w = "it is empty";
  else if (n > ADDRESS_MAX)
    w = "it is longer than 320 bytes";
  else if (!at)
    w = "it has no @";
  else if (strchr(at + 1, '@'))
    w = "it has more than one @";
  else if (at == addr)
    w = "the part before the @ is empty";
  else if (!at[1])
    w = "the domain after the @ is empty";
  else if (at[1] == '.' || addr[n - 1] == '.' || strstr(at, ".."))
    w = "the domain has an empty label (a dot at its start or end, or two dots in a row)";
  for (size_t i = 0; !w && i < n;) {
    unsigned char c = (unsigned char)addr[i];
    if (c <= 0x20 || c == 0x7f) {
      w = c == ' ' ? "it contains a space" : "it contains a control character";
    } else if (c < 0x80 && special[c]) {
      w = "it contains one of , ; < > \" ( ) [ ] \\";
    } else if (addr + i > at && c < 0x80 && !domain_char[c]) {
      w = "the domain may hold only letters, digits, dots, hyphens and underscores";
    } else {
      size_t len = utf8_len((const unsigned char *)addr + i, n - i);
      if (!len) w = "it is not valid UTF-8";
      i += len ? len : 1;
    }
  }
  if (w) {
    if (why) *why = w;
    return SL_EINVAL;
  }
  return 0;
}

int address_fold(const char *addr, char *out, size_t outlen, const char **why) {
  int rc = address_check(addr, why);
  if (rc) return rc;
  size_t n = strlen(addr);
  if (n + 1 > outlen) {
    if (why) *why = "it is too long";
    return SL_EINVAL;
  }
  for (size_t i = 0; i <= n; i++) {
    char c = addr[i];
    out[i] = c >= 'A' && c <= 'Z' ? (char)(c + 32) : c;
  }
  return 0;
}

const char *address_odd_domain(const char *folded) {
  const char *first = strchr(folded, '@'), *last = strrchr(folded, '@');
  if (first && first == last) return NULL;
  return last ? last + 1 : "";
}

void address_unwrap(const char *r, char *out) {
  const char *lt = strrchr(r, '<');
  const char *gt = lt ? strchr(lt, '>') : NULL;
  size_t n = lt && gt ? (size_t)(gt - lt - 1) : strlen(r);
  const char *p = lt && gt ? lt + 1 : r;
  while (n && *p == ' ') p++, n--;
  while (n && p[n - 1] == ' ') n--;
  if (n > ADDRESS_MAX) n = ADDRESS_MAX + 1; /* fails the check */
  snprintf(out, ADDRESS_MAX + 2, "%.*s", (int)n, p);
}
