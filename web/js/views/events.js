// events.js - /#/events?type=Bounce&...: a filter bar mirroring GET
// /api/events (the filters live in the URL, so a view can be shared), a
// dense table, and "load more" through nextCursor.

import { h, fill, num, errorBox, emptyState, EVENT_TYPES } from '../dom.js';
import { api, qs } from '../api.js';
import { eventTable } from '../eventlist.js';
import { rangePicker } from '../range.js';

const FILTERS = ['type', 'bounceType', 'feedbackType', 'address', 'domain', 'source', 'messageId', 'since', 'until', 'order', 'limit'];
const PRESETS = [['', 'Any time'], ['15m', 'Last 15 minutes'], ['1h', 'Last hour'], ['24h', 'Last 24 hours'],
  ['7d', 'Last 7 days'], ['30d', 'Last 30 days'], ['custom', 'Custom range…']];
const BOUNCE_TYPES = ['Permanent', 'Transient', 'Undetermined'];
const FEEDBACK_TYPES = ['abuse', 'auth-failure', 'fraud', 'not-spam', 'other', 'virus'];
const PAGE = 100;

function select(name, label, options, value) {
  const sel = h('select', { id: `f-${name}`, name },
    options.map(([v, t]) => h('option', { value: v }, t)));
  sel.value = value;
  if (sel.value !== value) { // a value from the URL that the list lacks: keep it
    sel.appendChild(h('option', { value }, value));
    sel.value = value;
  }
  return h('div', { class: 'field' }, h('label', { for: `f-${name}` }, label), sel);
}

function input(name, label, value, placeholder, type = 'search') {
  return h('div', { class: 'field' }, h('label', { for: `f-${name}` }, label),
    h('input', { id: `f-${name}`, name, type, value, placeholder, autocomplete: 'off', spellcheck: 'false' }));
}

/** The filters of the URL, only the known ones. */
function filtersOf(query) {
  const f = {};
  for (const k of FILTERS) {
    const v = query.get(k);
    if (v !== null && v !== '') f[k] = v;
  }
  return f;
}

export default async function eventsView({ root, route, ready, signal }) {
  document.title = 'Events · seslog';
  let filters = filtersOf(route.query);
  let loadCtl = null;
  let cursor = null;
  let shown = 0;

  const form = h('form', { class: 'filters', id: 'filters', 'aria-label': 'Filters' });
  const status = h('p', { class: 'result-status', role: 'status' });
  const errorSlot = h('div');
  const tableSlot = h('div', { class: 'card flush' });
  const moreBtn = h('button', { type: 'button', class: 'btn', id: 'load-more' }, 'Load more');
  const footer = h('div', { class: 'table-foot' });

  fill(root,
    h('div', { class: 'page-head' },
      h('div', {}, h('h1', {}, 'Events'), h('p', { class: 'sub' }, 'Every stored SES event, newest first. Filters are kept in the address bar: share the link.'))),
    form, errorSlot, status, tableSlot, footer);

  const buildForm = () => {
    const since = filters.since || '';
    const preset = filters.until || (since && !PRESETS.some(([v]) => v === since)) ? 'custom' : since;
    // Days picked (UTC, the last included) become since/until in the URL.
    const customRow = h('div', { class: 'custom-range', hidden: preset !== 'custom' },
      rangePicker({
        since, until: filters.until, idPrefix: 'ev-range',
        onApply: (r) => {
          form.elements.since.value = r.since;
          form.elements.until.value = r.until;
          submit();
        },
      }),
      input('since', 'Since', since, 'e.g. 2h or 2024-05-01T00:00:00Z', 'text'),
      input('until', 'Until', filters.until || '', 'e.g. 30m or an ISO-8601 time', 'text'));
    const presetSel = select('range', 'Time', PRESETS, preset);
    presetSel.querySelector('select').addEventListener('change', (e) => {
      const v = e.target.value;
      customRow.hidden = v !== 'custom';
      if (v === 'custom') { customRow.querySelector('input').focus(); return; }
      submit();
    });
    // On a phone the filters fold away behind a summary of what is active.
    const active = Object.keys(filters).filter((k) => k !== 'limit' && k !== 'order').length;
    const wasOpen = form.querySelector('details') ? form.querySelector('details').open : window.innerWidth > 760;
    fill(form, h('details', { class: 'filter-fold', open: wasOpen || undefined },
      h('summary', {}, 'Filters', active ? h('span', { class: 'count' }, ` · ${active} active`) : null),
      h('div', { class: 'filter-grid' },
        select('type', 'Type', [['', 'All types'], ...EVENT_TYPES.map((t) => [t, t])], filters.type || ''),
        select('bounceType', 'Bounce type', [['', 'Any'], ...BOUNCE_TYPES.map((t) => [t, t])], filters.bounceType || ''),
        select('feedbackType', 'Feedback type', [['', 'Any'], ...FEEDBACK_TYPES.map((t) => [t, t])], filters.feedbackType || ''),
        input('address', 'Recipient', filters.address || '', 'user@example.com'),
        input('domain', 'Recipient domain', filters.domain || '', 'example.com'),
        input('source', 'Source', filters.source || '', 'sender@example.com'),
        input('messageId', 'Message ID', filters.messageId || '', 'SES messageId'),
        presetSel,
        select('order', 'Order', [['', 'Newest first'], ['asc', 'Oldest first']], filters.order === 'asc' ? 'asc' : ''),
        h('div', { class: 'field filter-actions' },
          h('button', { type: 'submit', class: 'btn primary' }, 'Apply'),
          h('a', { href: '#/events', class: 'btn ghost', id: 'clear-filters' }, 'Clear'))),
      customRow));
    for (const name of ['type', 'bounceType', 'feedbackType', 'order']) {
      form.elements[name].addEventListener('change', () => submit());
    }
  };

  const submit = () => {
    const q = {};
    const val = (n) => (form.elements[n] ? form.elements[n].value.trim() : '');
    for (const n of ['type', 'bounceType', 'feedbackType', 'address', 'domain', 'source', 'messageId', 'order']) q[n] = val(n);
    const preset = val('range');
    if (preset === 'custom') { q.since = val('since'); q.until = val('until'); } else q.since = preset;
    if (filters.limit) q.limit = filters.limit;
    const next = `#/events${qs(q)}`;
    if (location.hash === next) load(); // same filters: load again
    else location.hash = next;
  };
  form.addEventListener('submit', (e) => { e.preventDefault(); submit(); });

  let table = null;
  const page = async () => {
    const params = { ...filters, limit: filters.limit || PAGE };
    if (cursor) params.cursor = cursor;
    return api(`/api/events${qs(params)}`, { signal: loadCtl.signal });
  };

  const showStatus = () => {
    fill(status, shown ? `${num(shown)} event${shown === 1 ? '' : 's'}${cursor ? ' shown, more below' : ''}` : '');
    fill(footer, cursor ? moreBtn : shown ? h('span', { class: 'muted' }, 'End of the results.') : null);
  };

  const load = async () => {
    if (loadCtl) loadCtl.abort();
    loadCtl = new AbortController();
    signal.addEventListener('abort', () => loadCtl.abort(), { once: true });
    cursor = null;
    shown = 0;
    fill(errorSlot);
    fill(status, 'Loading…');
    fill(footer);
    root.classList.add('loading');
    try {
      const body = await page();
      table = eventTable({ caption: 'Events' });
      table.add(body.items);
      shown = body.items.length;
      cursor = body.nextCursor;
      if (!shown) {
        fill(tableSlot, emptyState('No event matches these filters.',
          Object.keys(filters).length ? 'Widen the time range or clear a filter.' : 'Nothing is stored yet: subscribe seslog to your SES topic, or load a file with seslog import.'));
      } else fill(tableSlot, table.el);
      showStatus();
    } catch (e) {
      if (e.name === 'AbortError') return;
      fill(tableSlot);
      fill(status);
      fill(errorSlot, errorBox(e));
    } finally {
      root.classList.remove('loading');
    }
  };

  moreBtn.addEventListener('click', async () => {
    moreBtn.disabled = true;
    moreBtn.textContent = 'Loading…';
    try {
      const body = await page();
      table.add(body.items);
      shown += body.items.length;
      cursor = body.nextCursor;
      showStatus();
    } catch (e) {
      if (e.name !== 'AbortError') fill(errorSlot, errorBox(e));
    } finally {
      moreBtn.disabled = false;
      moreBtn.textContent = 'Load more';
    }
  });

  buildForm();
  await load();
  ready();

  return {
    async update({ route: r, ready: rdy }) {
      filters = filtersOf(r.query);
      const focused = document.activeElement && document.activeElement.id;
      buildForm();
      if (focused && document.getElementById(focused) && form.contains(document.getElementById(focused))) {
        document.getElementById(focused).focus();
      }
      await load();
      rdy();
    },
  };
}
