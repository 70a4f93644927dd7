/* cmd_suppression.h - what seslog suppression reads: SES's bulk CSV
 * format (seslog suppression import). */
#ifndef SESLOG_CMD_SUPPRESSION_H
#define SESLOG_CMD_SUPPRESSION_H

/* Reads one line of SES's bulk CSV format, "address,reason" (reason BOUNCE
 * or COMPLAINT, any case; fields may be double-quoted; spaces around them
 * and a trailing CR are ignored). line is modified in place; *addr points
 * into it. first: the line is the file's first, where a header
 * "EmailAddress,Reason" or "address,reason" (any case) may stand. Returns
 * 0 with *addr and *reason, 1 for a line to skip (blank, or that header),
 * SL_EINVAL with *why (static) for a line of the wrong shape, or SL_EFIELD
 * with *addr and *why when the address is not valid. */
int suppression_csv_line(char *line, int first, char **addr, int *reason, const char **why);

#endif
