// range.js - an absolute time range (from, to) for the overview and the
// events views. The URL keeps it as since/until, which the API takes as
// they are: since = the first day at 00:00 UTC, until = the day after the
// last one (days are UTC, "to" is included).

import { h } from './dom.js';

const DAY_MS = 86400e3;
const DATE_RE = /^\d{4}-\d\d-\d\d$/;

/** An API time (bare date or ISO-8601) as ms, or NaN. */
export function timeMs(v) {
  if (!v) return NaN;
  return Date.parse(DATE_RE.test(v) ? `${v}T00:00:00Z` : v);
}

/** YYYY-MM-DD (UTC) of ms. */
export function dayOf(ms) {
  return new Date(ms).toISOString().slice(0, 10);
}

/** The picker's days of a since/until pair: from = since's day; to = the
 * day before until when until is a midnight, else until's day. */
export function daysOf(since, until) {
  const s = timeMs(since);
  const u = timeMs(until);
  const from = Number.isNaN(s) ? '' : dayOf(s);
  let to = '';
  if (!Number.isNaN(u)) to = dayOf(u % DAY_MS === 0 ? u - DAY_MS : u);
  return { from, to };
}

/** The since/until of picked days (to included), or null when incomplete
 * or backwards. */
export function rangeOf(from, to) {
  if (!DATE_RE.test(from || '') || !DATE_RE.test(to || '')) return null;
  const s = timeMs(from);
  const u = timeMs(to) + DAY_MS;
  if (Number.isNaN(s) || Number.isNaN(u) || u <= s) return null;
  return { since: from, until: dayOf(u) };
}

/**
 * A from/to picker: two date inputs (ids range-from, range-to) and an
 * Apply button (range-apply). onApply({since, until}) gets the range; a
 * backwards or incomplete one shows an error in the picker instead.
 */
export function rangePicker({ since, until, onApply, idPrefix = 'range' }) {
  const d = daysOf(since, until);
  const from = h('input', { type: 'date', id: `${idPrefix}-from`, value: d.from, 'aria-label': 'From (UTC day)' });
  const to = h('input', { type: 'date', id: `${idPrefix}-to`, value: d.to, 'aria-label': 'To (UTC day, included)' });
  const err = h('span', { class: 'bad-text small', role: 'alert' });
  const apply = h('button', { type: 'button', class: 'btn small', id: `${idPrefix}-apply` }, 'Apply');
  apply.addEventListener('click', () => {
    const r = rangeOf(from.value, to.value);
    if (!r) {
      err.textContent = 'Pick a first and a last day, the first not after the last.';
      return;
    }
    err.textContent = '';
    onApply(r);
  });
  return h('div', { class: 'range-picker', role: 'group', 'aria-label': 'Date range (UTC)' },
    h('label', { for: `${idPrefix}-from` }, 'From'), from,
    h('label', { for: `${idPrefix}-to` }, 'to'), to, apply, err);
}
