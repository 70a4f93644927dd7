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

/* The domain part of a checked address (after its '@'). */
const char *address_domain(const char *checked);

/* An SES recipient may come as "Name <addr>": the address inside the
 * brackets (or r itself), trimmed, copied into out (ADDRESS_MAX + 2
 * bytes); one longer than ADDRESS_MAX is cut to ADDRESS_MAX + 1 bytes,
 * so that address_check refuses it. */
void address_unwrap(const char *r, char *out);

#endif
