// recipient.js - /#/recipients/<address>: everything that happened to one
// address, and its suppression entry with remove and add buttons.

import {
  h, fill, card, num, timeEl, fmtAgo, reasonBadge, mailHref, errorBox, emptyState, toast,
  copyButton, eventsHref, typeBadge, domainOf,
} from '../dom.js';
import { api, qs, enc } from '../api.js';
import { eventTable } from '../eventlist.js';

const PAGE = 100;

/** The suppression entry and its history; null when not suppressed. */
async function suppressionOf(address, signal) {
  const chk = await api('/api/suppression/check', { method: 'POST', body: { addresses: [address] }, signal });
  const r = chk && chk.results && chk.results[0];
  if (!r || !r.suppressed) return null;
  const full = await api(`/api/suppression/${enc(address)}`, { signal, allow: [404] });
  return full && !full.error ? full : r.entry || { reason: r.reason };
}

function suppressionCard(address, entry, onChange) {
  const body = h('div', { class: 'sup-body' });
  const actions = h('div', { class: 'sup-actions' });
  if (entry) {
    body.append(
      h('p', { class: 'sup-state bad' }, h('strong', {}, 'Suppressed'), ' — seslog answers "do not mail" for this address.'),
      h('dl', { class: 'facts' },
        h('dt', {}, 'Reason'), h('dd', {}, reasonBadge(entry.reason)),
        h('dt', {}, 'Since'), h('dd', {}, timeEl(entry.createdAt)),
        entry.lastEventAt ? [h('dt', {}, 'Last event'), h('dd', {}, timeEl(entry.lastEventAt))] : null,
        entry.events !== undefined ? [h('dt', {}, 'Events'), h('dd', {}, num(entry.events))] : null,
        entry.messageId ? [h('dt', {}, 'Mail'), h('dd', {}, h('a', { href: mailHref(entry.messageId), class: 'mono' }, entry.messageId))] : null,
        entry.note ? [h('dt', {}, 'Note'), h('dd', {}, entry.note)] : null));
    const remove = h('button', { type: 'button', class: 'btn danger', id: 'sup-remove' }, 'Remove from suppression list');
    const confirmBtn = h('button', { type: 'button', class: 'btn danger', id: 'sup-remove-confirm', hidden: true }, `Yes, remove ${address}`);
    const cancel = h('button', { type: 'button', class: 'btn ghost', hidden: true }, 'Cancel');
    remove.addEventListener('click', () => { remove.hidden = true; confirmBtn.hidden = false; cancel.hidden = false; confirmBtn.focus(); });
    cancel.addEventListener('click', () => { remove.hidden = false; confirmBtn.hidden = true; cancel.hidden = true; remove.focus(); });
    confirmBtn.addEventListener('click', async () => {
      confirmBtn.disabled = true;
      try {
        await api(`/api/suppression/${enc(address)}`, { method: 'DELETE' });
        toast(`${address} was removed from the suppression list.`, 'ok');
        onChange();
      } catch (e) {
        confirmBtn.disabled = false;
        toast(e.message, 'bad');
      }
    });
    actions.append(remove, confirmBtn, cancel);
  } else {
    body.append(h('p', { class: 'sup-state ok' }, h('strong', {}, 'Not suppressed'), ' — mail to this address is allowed.'));
    const reason = h('select', { id: 'sup-reason', 'aria-label': 'Reason' },
      ['MANUAL', 'BOUNCE', 'COMPLAINT'].map((r) => h('option', { value: r }, r)));
    const note = h('input', { id: 'sup-note', type: 'text', placeholder: 'Note (optional)', 'aria-label': 'Note', maxlength: '1000' });
    const add = h('button', { type: 'submit', class: 'btn', id: 'sup-add' }, 'Add to suppression list');
    const form = h('form', { class: 'inline-form' }, reason, note, add);
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      add.disabled = true;
      try {
        const b = { reason: reason.value };
        if (note.value.trim()) b.note = note.value.trim();
        await api(`/api/suppression/${enc(address)}`, { method: 'PUT', body: b });
        toast(`${address} is now suppressed.`, 'ok');
        onChange();
      } catch (err) {
        add.disabled = false;
        toast(err.message, 'bad');
      }
    });
    actions.append(form);
  }
  const history = entry && Array.isArray(entry.history) && entry.history.length
    ? h('details', { class: 'sup-history' }, h('summary', {}, `Changes (${entry.history.length})`),
      h('ul', { class: 'plain' }, entry.history.map((c) => h('li', {},
        timeEl(c.at), ' ', h('strong', {}, c.action), c.reason ? [' ', reasonBadge(c.reason)] : null,
        c.actor ? h('span', { class: 'muted' }, ` by ${c.actor}`) : null,
        c.note ? h('span', { class: 'muted' }, ` — ${c.note}`) : null))))
    : null;
  return card('Suppression', { id: 'suppression-entry', class: entry ? 'sup-on' : 'sup-off' }, body, actions, history);
}

function summary(events) {
  const by = {};
  for (const e of events) by[e.notificationType] = (by[e.notificationType] || 0) + 1;
  const first = events.length ? events[events.length - 1].timeStamp : null;
  const last = events.length ? events[0].timeStamp : null;
  return h('div', { class: 'chips', id: 'recipient-summary' },
    Object.entries(by).sort((a, b) => b[1] - a[1]).map(([t, n]) => h('span', { class: 'chip' }, typeBadge(t), ` ${num(n)}`)),
    last ? h('span', { class: 'chip muted' }, 'last ', h('span', { title: last }, fmtAgo(last))) : null,
    first ? h('span', { class: 'chip muted' }, 'first ', timeEl(first)) : null);
}

export default async function recipientView({ root, route, ready, signal }) {
  const address = route.arg;
  document.title = `${address} · seslog`;
  const supSlot = h('div');
  const sumSlot = h('div');
  const histSlot = h('div', { class: 'card flush' });
  const foot = h('div', { class: 'table-foot' });
  fill(root,
    h('div', { class: 'page-head' },
      h('div', { class: 'min0' },
        h('p', { class: 'crumb' }, 'Recipient · ', h('a', { href: eventsHref({ domain: domainOf(address) }) }, domainOf(address))),
        h('h1', { class: 'wrap' }, address)),
      copyButton(address, 'Copy address')),
    supSlot, h('h2', { class: 'section-title' }, 'History'), sumSlot, histSlot, foot);

  const loadSup = async () => {
    try {
      const entry = await suppressionOf(address, signal);
      fill(supSlot, suppressionCard(address, entry, () => loadSup()));
    } catch (e) {
      if (e.name === 'AbortError') throw e;
      fill(supSlot, errorBox(e));
    }
  };

  let cursor = null;
  const all = [];
  const table = eventTable({ linkRecipients: false, caption: `Events of ${address}` });
  const more = h('button', { type: 'button', class: 'btn', id: 'load-more' }, 'Load more');
  const page = async () => {
    const body = await api(`/api/recipients/${enc(address)}${qs({ limit: PAGE, cursor })}`, { signal });
    const evs = body.events || [];
    table.add(evs);
    all.push(...evs);
    cursor = body.nextCursor || null;
    fill(sumSlot, summary(all));
    fill(foot, cursor ? more : all.length ? h('span', { class: 'muted' }, `${num(all.length)} events, all shown.`) : null);
    return evs;
  };
  more.addEventListener('click', async () => {
    more.disabled = true;
    try { await page(); } catch (e) { if (e.name !== 'AbortError') toast(e.message, 'bad'); } finally { more.disabled = false; }
  });

  const hist = (async () => {
    try {
      await page();
      fill(histSlot, all.length ? table.el : emptyState('No event is stored for this address.'));
    } catch (e) {
      if (e.name === 'AbortError') throw e;
      fill(histSlot, errorBox(e));
    }
  })();
  await Promise.all([loadSup(), hist]);
  ready();
  return null;
}
