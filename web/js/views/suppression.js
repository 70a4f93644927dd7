// suppression.js - /#/suppression: the addresses seslog says not to mail.
// Search and reason filter (kept in the URL), remove, add, and export as
// SES's bulk CSV (address,reason; MANUAL entries as BOUNCE, as
// `seslog suppression export` writes it).

import {
  h, fill, num, timeEl, reasonBadge, recipientHref, mailHref, errorBox, emptyState, toast,
} from '../dom.js';
import { api, qs, enc } from '../api.js';
import { csvCell } from '../csv.js';

const PAGE = 100;
const REASONS = ['BOUNCE', 'COMPLAINT', 'MANUAL'];

export default async function suppressionView({ root, route, ready, signal }) {
  document.title = 'Suppression list · seslog';
  let search = route.query.get('search') || '';
  let reason = route.query.get('reason') || '';
  let cursor = null;
  let shown = 0;
  let loadCtl = null;

  const searchIn = h('input', { id: 'sup-search', type: 'search', value: search, placeholder: 'Part of an address or domain', autocomplete: 'off', spellcheck: 'false' });
  const reasonSel = h('select', { id: 'sup-filter-reason' }, h('option', { value: '' }, 'All reasons'), REASONS.map((r) => h('option', { value: r }, r)));
  reasonSel.value = reason;
  const exportBtn = h('button', { type: 'button', class: 'btn', id: 'sup-export' }, 'Export CSV');
  const toolbar = h('form', { class: 'filters sup-toolbar', role: 'search' },
    h('div', { class: 'field grow' }, h('label', { for: 'sup-search' }, 'Search'), searchIn),
    h('div', { class: 'field' }, h('label', { for: 'sup-filter-reason' }, 'Reason'), reasonSel),
    h('div', { class: 'field end' }, exportBtn));

  const addAddr = h('input', { id: 'add-address', type: 'email', required: true, placeholder: 'user@example.com', autocomplete: 'off', spellcheck: 'false' });
  const addReason = h('select', { id: 'add-reason' }, REASONS.slice().reverse().map((r) => h('option', { value: r }, r)));
  const addNote = h('input', { id: 'add-note', type: 'text', placeholder: 'Why (optional)', maxlength: '1000' });
  const addForm = h('form', { class: 'add-form', id: 'sup-add-form' },
    h('div', { class: 'field grow' }, h('label', { for: 'add-address' }, 'Address'), addAddr),
    h('div', { class: 'field' }, h('label', { for: 'add-reason' }, 'Reason'), addReason),
    h('div', { class: 'field grow' }, h('label', { for: 'add-note' }, 'Note'), addNote),
    h('div', { class: 'field end' }, h('button', { type: 'submit', class: 'btn primary' }, 'Add')));

  const status = h('p', { class: 'result-status', role: 'status' });
  const errSlot = h('div');
  const tbody = h('tbody');
  const tableSlot = h('div', { class: 'card flush' });
  const table = h('div', { class: 'table-wrap' }, h('table', { class: 'table', id: 'sup-table' },
    h('thead', {}, h('tr', {}, ['Address', 'Reason', 'Added', 'Last event', 'Events', 'Note', ''].map((x, i) => h('th', { scope: 'col', class: i === 4 ? 'num' : undefined }, x)))),
    tbody));
  const more = h('button', { type: 'button', class: 'btn', id: 'load-more' }, 'Load more');
  const foot = h('div', { class: 'table-foot' });

  fill(root,
    h('div', { class: 'page-head' }, h('div', {}, h('h1', {}, 'Suppression list'),
      h('p', { class: 'sub' }, 'Permanent bounces and complaints add their recipients here; applications ask POST /api/suppression/check before they mail.'))),
    h('details', { class: 'card add-card' }, h('summary', {}, 'Add an address'), addForm),
    toolbar, errSlot, status, tableSlot, foot);

  const row = (e) => {
    const remove = h('button', { type: 'button', class: 'btn small danger-ghost', 'aria-label': `Remove ${e.address}` }, 'Remove');
    const tr = h('tr', { dataset: { address: e.address } },
      h('td', {}, h('a', { href: recipientHref(e.address), class: 'addr' }, e.address)),
      h('td', {}, reasonBadge(e.reason), e.ambiguous ? h('span', { class: 'tag', title: 'A complaint that named several recipients' }, 'ambiguous') : null),
      h('td', { class: 'c-time' }, timeEl(e.createdAt)),
      h('td', { class: 'c-time' }, e.lastEventAt ? (e.messageId ? h('a', { href: mailHref(e.messageId) }, timeEl(e.lastEventAt)) : timeEl(e.lastEventAt)) : h('span', { class: 'muted' }, '—')),
      h('td', { class: 'num' }, num(e.events)),
      h('td', { class: 'c-note', title: e.note || '' }, e.note || ''),
      h('td', { class: 'c-act' }, remove));
    let armed = false;
    remove.addEventListener('click', async () => {
      if (!armed) { // two clicks: the first asks
        armed = true;
        remove.textContent = 'Confirm';
        remove.classList.add('armed');
        setTimeout(() => { if (armed && remove.isConnected) { armed = false; remove.textContent = 'Remove'; remove.classList.remove('armed'); } }, 4000);
        return;
      }
      remove.disabled = true;
      try {
        await api(`/api/suppression/${enc(e.address)}`, { method: 'DELETE' });
        tr.remove();
        shown--;
        showStatus();
        toast(`${e.address} was removed from the suppression list.`, 'ok');
      } catch (err) {
        remove.disabled = false;
        toast(err.message, 'bad');
      }
    });
    return tr;
  };

  const showStatus = () => {
    fill(status, `${num(shown)} entr${shown === 1 ? 'y' : 'ies'}${cursor ? ' shown, more below' : ''}${search ? ` matching “${search}”` : ''}`);
    fill(foot, cursor ? more : null);
  };

  const fetchPage = (c, limit = PAGE) => api(`/api/suppression${qs({ search, reason, limit, cursor: c })}`, { signal: loadCtl.signal });

  const load = async () => {
    if (loadCtl) loadCtl.abort();
    loadCtl = new AbortController();
    signal.addEventListener('abort', () => loadCtl.abort(), { once: true });
    fill(errSlot);
    try {
      const body = await fetchPage(null);
      tbody.replaceChildren(...body.items.map(row));
      shown = body.items.length;
      cursor = body.nextCursor;
      fill(tableSlot, shown ? table : emptyState(search || reason ? 'No entry matches.' : 'The suppression list is empty.'));
      showStatus();
    } catch (e) {
      if (e.name === 'AbortError') return;
      fill(tableSlot);
      fill(errSlot, errorBox(e));
    }
  };

  more.addEventListener('click', async () => {
    more.disabled = true;
    try {
      const body = await fetchPage(cursor);
      tbody.append(...body.items.map(row));
      shown += body.items.length;
      cursor = body.nextCursor;
      showStatus();
    } catch (e) {
      if (e.name !== 'AbortError') toast(e.message, 'bad');
    } finally {
      more.disabled = false;
    }
  });

  // Filters go to the URL (replaceState: typing is not history).
  const setUrl = () => {
    const h2 = `#/suppression${qs({ search, reason })}`;
    if (location.hash !== h2) history.replaceState(null, '', h2);
  };
  let debounce = null;
  searchIn.addEventListener('input', () => {
    clearTimeout(debounce);
    debounce = setTimeout(() => { search = searchIn.value.trim(); setUrl(); load(); }, 250);
  });
  toolbar.addEventListener('submit', (e) => { e.preventDefault(); clearTimeout(debounce); search = searchIn.value.trim(); setUrl(); load(); });
  reasonSel.addEventListener('change', () => { reason = reasonSel.value; setUrl(); load(); });

  addForm.addEventListener('submit', async (e) => {
    e.preventDefault();
    const address = addAddr.value.trim();
    if (!address) return;
    const b = { reason: addReason.value };
    if (addNote.value.trim()) b.note = addNote.value.trim();
    try {
      const entry = await api(`/api/suppression/${enc(address)}`, { method: 'PUT', body: b });
      toast(`${entry && entry.address ? entry.address : address} is suppressed.`, 'ok');
      addAddr.value = '';
      addNote.value = '';
      await load();
    } catch (err) {
      toast(err.message, 'bad');
    }
  });

  exportBtn.addEventListener('click', async () => {
    exportBtn.disabled = true;
    exportBtn.textContent = 'Exporting…';
    try {
      const lines = [];
      let c = null;
      do {
        const body = await api(`/api/suppression${qs({ search, reason, limit: 1000, cursor: c })}`, { signal });
        for (const e of body.items) lines.push(`${csvCell(e.address)},${e.reason === 'COMPLAINT' ? 'COMPLAINT' : 'BOUNCE'}`);
        c = body.nextCursor;
      } while (c);
      const blob = new Blob([lines.join('\n') + (lines.length ? '\n' : '')], { type: 'text/csv' });
      const a = h('a', { href: URL.createObjectURL(blob), download: 'suppression-list.csv', hidden: true });
      document.body.appendChild(a);
      a.click();
      setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
      toast(`Exported ${num(lines.length)} addresses in SES's bulk format.`, 'ok');
    } catch (e) {
      if (e.name !== 'AbortError') toast(e.message, 'bad');
    } finally {
      exportBtn.disabled = false;
      exportBtn.textContent = 'Export CSV';
    }
  });

  await load();
  ready();
  return null;
}

