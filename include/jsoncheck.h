/* jsoncheck.h - what cJSON lets through but seslog must not store: a key
 * given twice in one object (cJSON keeps both, the stored columns take the
 * first, a browser's JSON.parse the last) and NUL inside a string (cJSON
 * ends the C string there: "victim@example.com\u0000@attacker.example"
 * would read as victim@example.com). One pass over the text, linear in its
 * length plus n log n in the keys of the largest object. */
#ifndef SESLOG_JSONCHECK_H
#define SESLOG_JSONCHECK_H

#include <stddef.h>

/* Checks the JSON text s (n bytes) that cJSON already parsed (text after the
 * document is not looked at). Returns 0; SL_EDUPKEY when an object, at any
 * depth, has a key twice (compared after unescaping: "a" and "\u0061" are
 * the same key); SL_ENUL when a string or key holds U+0000; SL_ENOMEM. *why
 * (when why is not NULL) then says which, in a static string. */
int jsoncheck(const char *s, size_t n, const char **why);

/* 1 when s[0..n) is one JSON value (blanks around it allowed; at most 64
 * levels deep), else 0. No allocation: stored JSON text is embedded in an
 * answer only when it is JSON, so a database edited by hand cannot break
 * the answer. */
int jsoncheck_syntax(const char *s, size_t n);

/* jsoncheck, and in the same pass *compact = jsoncheck_compact(s, n)
 * (meaningful when it returns 0). */
int jsoncheck_ex(const char *s, size_t n, int *compact, const char **why);

/* 1 when s[0..n), a JSON text cJSON parsed whole that jsoncheck takes, is
 * exactly what cJSON_PrintUnformatted gives back for it: no white space
 * outside strings, strings escaped as cJSON escapes them, numbers integers
 * of at most 15 digits written plainly. Then a copy of the text stands for
 * printing the parsed tree again. 0 when not sure (anything else). */
int jsoncheck_compact(const char *s, size_t n);

#endif
