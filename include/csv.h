/* csv.h - one CSV cell writer for every CSV seslog prints (query, the
 * suppression list and export), so a hostile value cannot become a formula
 * in a spreadsheet or a terminal escape sequence.
 *
 * Rules (the web UI's CSV export follows the same, web/js/csv.js):
 * - a cell starting with = + - @ TAB or CR gets a leading ' (OWASP's
 *   advice against formula injection), and so does a cell starting with '
 *   followed by one of those or by another ', so that csv_unguard undoes the
 *   guard exactly;
 * - a cell is quoted ("" for ") when it holds , ; " CR LF or TAB, starts or
 *   ends with a space, or was guarded;
 * - other control bytes (NUL to 0x1f but TAB, CR, LF; and DEL) are written
 *   as the four characters \xNN: ESC never reaches a terminal raw. */
#ifndef SESLOG_CSV_H
#define SESLOG_CSV_H

#include "util.h"

/* Appends s as one cell to b (nothing for NULL). Returns 0, or the error of
 * the buffer (SL_ETOOBIG, SL_ENOMEM). */
int csv_cell(buf *b, const char *s);

/* 1 when csv_cell puts a ' before s. */
int csv_needs_guard(const char *s);

/* Undoes the guard on a cell already unquoted: returns s + 1 when s is a
 * guarded cell, else s. csv_unguard(cell written for x) is x. */
char *csv_unguard(const char *s);

#endif
