// eventlist.js - the dense event table shared by the events, recipient and
// overview views: time, type, recipients, source, and what matters of the
// outcome (bounce type and diagnostic code, feedback type, reporting MTA).

import { h, timeEl, typeBadge, mailHref, recipientHref } from './dom.js';

/** The outcome cell of one event. */
export function eventDetail(e) {
  const parts = [];
  const diag = e.diagnostic ? h('span', { class: 'diag mono', title: e.diagnostic }, e.diagnostic) : null;
  switch (e.notificationType) {
    case 'Bounce':
      parts.push(h('span', { class: ['tag', e.bounceType === 'Permanent' ? 'tag-bad' : 'tag-soft'] },
        [e.bounceType, e.bounceSubType].filter(Boolean).join(' · ') || 'Bounce'));
      if (diag) parts.push(diag);
      break;
    case 'Complaint':
      parts.push(h('span', { class: 'tag tag-complaint' }, e.complaintFeedbackType || 'no feedback type'));
      if (e.complaintSubType) parts.push(h('span', { class: 'tag' }, e.complaintSubType));
      if (diag) parts.push(diag);
      break;
    case 'Delivery':
      if (e.reportingMTA) parts.push(h('span', { class: 'muted mono' }, e.reportingMTA));
      break;
    default:
      if (diag) parts.push(diag);
      else if (e.reportingMTA) parts.push(h('span', { class: 'muted mono' }, e.reportingMTA));
  }
  return parts.length ? parts : [h('span', { class: 'muted' }, '—')];
}

function recipientsCell(e, linkRecipients) {
  const list = Array.isArray(e.recipients) && e.recipients.length
    ? e.recipients
    : String(e.destinationAddress || '').split(',').filter(Boolean);
  if (!list.length) return h('span', { class: 'muted' }, '—');
  const first = linkRecipients
    ? h('a', { href: recipientHref(list[0]), class: 'addr' }, list[0])
    : h('span', { class: 'addr' }, list[0]);
  const more = list.length > 1 ? h('span', { class: 'more', title: list.slice(1).join(', ') }, ` +${list.length - 1}`) : null;
  return [first, more];
}

/**
 * A table of events. opts: {linkRecipients (default true), caption}.
 * Returns {el, add(items)}: add appends rows (for "load more").
 */
export function eventTable(opts = {}) {
  const { linkRecipients = true, caption } = opts;
  const tbody = h('tbody');
  const table = h('table', { class: 'table events-table' },
    caption ? h('caption', { class: 'sr-only' }, caption) : null,
    h('thead', {}, h('tr', {},
      h('th', { scope: 'col', class: 'c-time' }, 'Time'),
      h('th', { scope: 'col', class: 'c-type' }, 'Type'),
      h('th', { scope: 'col', class: 'c-rcpt' }, 'Recipients'),
      h('th', { scope: 'col', class: 'c-src' }, 'Source'),
      h('th', { scope: 'col', class: 'c-detail' }, 'Outcome'))),
    tbody);
  // A click anywhere on a row opens the mail, unless it was on a link or
  // the user is selecting text. Keyboard users have the time link.
  tbody.addEventListener('click', (ev) => {
    if (ev.target.closest('a, button')) return;
    if (String(window.getSelection ? window.getSelection() : '').length) return;
    const tr = ev.target.closest('tr[data-href]');
    if (tr) location.hash = tr.dataset.href;
  });
  const add = (items) => {
    const frag = document.createDocumentFragment();
    for (const e of items) {
      const href = mailHref(e.messageId);
      frag.appendChild(h('tr', { dataset: { href }, class: 'clickable' },
        h('td', { class: 'c-time' }, h('a', { href, class: 'rowlink', title: `Mail ${e.messageId}` }, timeEl(e.timeStamp))),
        h('td', { class: 'c-type' }, typeBadge(e.notificationType)),
        h('td', { class: 'c-rcpt' }, recipientsCell(e, linkRecipients)),
        h('td', { class: 'c-src', title: e.source || '' }, e.source || h('span', { class: 'muted' }, '—')),
        h('td', { class: 'c-detail' }, h('div', { class: 'detail' }, eventDetail(e)))));
    }
    tbody.appendChild(frag);
  };
  const el = h('div', { class: 'table-wrap' }, table);
  return { el, add, tbody };
}
