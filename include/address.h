/* address.h - email addresses as seslog keys them: the check an address
 * must pass to be listed, its folded form (the key compared
 * case-insensitively), and the address inside an SES recipient of the
 * form "Name <addr>". Pure functions, usable anywhere. */
#ifndef SESLOG_ADDRESS_H
#define SESLOG_ADDRESS_H

#include <stddef.h>

#define ADDRESS_MAX 320 /* bytes of an address, at most */

/* Checks addr: exactly one '@', a non-empty local part and domain, no
 * spaces, control characters or any of  , ; < > " ( ) [ ] \  (which cannot
 * appear unquoted and would break the CSV format), a domain of letters,
 * digits, '.', '-', '_' (or UTF-8) without empty labels, valid UTF-8, at
 * most ADDRESS_MAX bytes. Returns 0, or SL_EINVAL with *why (static, when
 * why is not NULL) naming the problem. */
int address_check(const char *addr, const char **why);

/* Checks addr and writes its folded form (ASCII lower case) into out
 * (at least ADDRESS_MAX + 1 bytes). Returns 0 or SL_EINVAL with *why; out
 * is written only on success. addr and out may be the same. */
int address_fold(const char *addr, char *out, size_t outlen, const char **why);

/* The SQL of the folded domain of a recipients or suppression row, t its
 * table's alias with the dot ("r.") or "": the part after the address's
 * first '@', unless the row's oddDomain holds the domain (schema versions
 * 23, 24: the tables keep no domain column, and "recipients-domain" and
 * "suppression-domain" index this very expression, so a query must write
 * it the same way for SQLite to use them). instr and substr step over
 * UTF-8 characters but never into an '@' byte, so this is the bytes after
 * the first '@', also in text that is not valid UTF-8. */
#define ADDRESS_DOMAIN_SQL(t) \
  "coalesce(" t "oddDomain, substr(" t "address, instr(" t "address, '@') + 1))"

/* What a row of address (folded) stores in oddDomain: NULL when the
 * address has exactly one '@' (ADDRESS_DOMAIN_SQL finds its domain);
 * otherwise its domain as seslog takes it, the part after its last '@'
 * ("" without one), which ADDRESS_DOMAIN_SQL alone would not give. */
const char *address_odd_domain(const char *folded);

/* An SES recipient may come as "Name <addr>": the address inside the
 * brackets (or r itself), trimmed, copied into out (ADDRESS_MAX + 2
 * bytes); one longer than ADDRESS_MAX is cut to ADDRESS_MAX + 1 bytes,
 * so that address_check refuses it. */
void address_unwrap(const char *r, char *out);

#endif
