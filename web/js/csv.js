// csv.js - one CSV cell, by the rule of seslog's CSV writer (src/csv.c):
// a cell starting with = + - @ TAB or CR (or with ' before one of those or
// another ') gets a leading ' so a spreadsheet does not read a formula;
// cells with , ; " CR LF TAB, a space at either end, or a guard are quoted;
// other control characters are written as \xNN.

const FORMULA_START = /^[=+\-@\t\r]/;

export function csvNeedsGuard(v) {
  return FORMULA_START.test(v) || /^'[=+\-@\t\r']/.test(v);
}

export function csvCell(value) {
  if (value === null || value === undefined) return '';
  let v = String(value);
  const guard = csvNeedsGuard(v);
  const quote = guard || /[,;"\r\n\t]/.test(v) || /^ | $/.test(v);
  // eslint-disable-next-line no-control-regex
  v = v.replace(/[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
  if (guard) v = `'${v}`;
  return quote ? `"${v.replace(/"/g, '""')}"` : v;
}
