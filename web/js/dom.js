// dom.js - building the page from data without ever parsing data as HTML,
// and the formatting every view shares (times, numbers, rates, badges).
//
// Everything the API returns is untrusted (diagnostic codes come from
// remote mail servers): it only ever reaches the page as text nodes or
// attribute values set through the DOM, never through innerHTML.

const SVG_NS = 'http://www.w3.org/2000/svg';

function setAttrs(el, attrs) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.setAttribute('class', Array.isArray(v) ? v.filter(Boolean).join(' ') : v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'style' && typeof v === 'object') Object.assign(el.style, v);
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'text') el.textContent = v;
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

/** An HTML element: h('a', {href, class}, 'text', child, [more]). */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

/** An SVG element, same calling convention as h(). */
export function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

/** Replaces el's children. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

// ---- settings kept in the browser ---------------------------------------

const store = (() => {
  try {
    const k = '__seslog_probe';
    localStorage.setItem(k, '1');
    localStorage.removeItem(k);
    return localStorage;
  } catch {
    const m = new Map();
    return { getItem: (k) => m.get(k) ?? null, setItem: (k, v) => m.set(k, String(v)), removeItem: (k) => m.delete(k) };
  }
})();

export const settings = {
  get(k, dflt = null) { return store.getItem(`seslog.${k}`) ?? dflt; },
  set(k, v) { if (v === null || v === undefined) store.removeItem(`seslog.${k}`); else store.setItem(`seslog.${k}`, v); },
};

// ---- formatting ----------------------------------------------------------

const nf = new Intl.NumberFormat('en-US');
export function num(n) {
  return n === null || n === undefined || Number.isNaN(n) ? '–' : nf.format(n);
}

/** A fraction as a percentage with enough digits to tell thresholds apart. */
export function pct(x, digits) {
  if (x === null || x === undefined || Number.isNaN(x)) return '–';
  const p = x * 100;
  let d = digits;
  if (d === undefined) d = p === 0 ? 0 : p < 0.1 ? 3 : p < 1 ? 2 : p < 10 ? 2 : 1;
  return `${p.toFixed(d)} %`;
}

export function useUtc() { return settings.get('tz') === 'utc'; }

const pad = (n, w = 2) => String(n).padStart(w, '0');
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

function parts(d) {
  const u = useUtc();
  return {
    y: u ? d.getUTCFullYear() : d.getFullYear(),
    mo: u ? d.getUTCMonth() : d.getMonth(),
    d: u ? d.getUTCDate() : d.getDate(),
    h: u ? d.getUTCHours() : d.getHours(),
    mi: u ? d.getUTCMinutes() : d.getMinutes(),
    s: u ? d.getUTCSeconds() : d.getSeconds(),
    ms: u ? d.getUTCMilliseconds() : d.getMilliseconds(),
  };
}

function toDate(t) {
  if (t === null || t === undefined || t === '') return null;
  const d = t instanceof Date ? t : new Date(t);
  return Number.isNaN(d.getTime()) ? null : d;
}

/** "Nov 28 14:03:07" (the year when not this year). */
export function fmtTime(t, { seconds = true, ms = false } = {}) {
  const d = toDate(t);
  if (!d) return '–';
  const p = parts(d);
  const now = parts(new Date());
  const day = `${MONTHS[p.mo]} ${p.d}${p.y !== now.y ? `, ${p.y}` : ''}`;
  let clock = `${pad(p.h)}:${pad(p.mi)}`;
  if (seconds) clock += `:${pad(p.s)}`;
  if (ms) clock += `.${pad(p.ms, 3)}`;
  return `${day} ${clock}`;
}

/** Axis labels: "14:05" or "Nov 28". */
export function fmtAxis(t, span) {
  const d = toDate(t);
  if (!d) return '';
  const p = parts(d);
  if (span > 2 * 86400e3) return `${MONTHS[p.mo]} ${p.d}`;
  return `${pad(p.h)}:${pad(p.mi)}`;
}

/** "3 min ago", "in 2 h", "just now". */
export function fmtAgo(t, now = Date.now()) {
  const d = toDate(t);
  if (!d) return 'never';
  const sec = Math.round((now - d.getTime()) / 1000);
  const a = Math.abs(sec);
  let v;
  if (a < 45) return 'just now';
  if (a < 90 * 60) v = `${Math.round(a / 60)} min`;
  else if (a < 36 * 3600) v = `${Math.round(a / 3600)} h`;
  else v = `${Math.round(a / 86400)} d`;
  return sec >= 0 ? `${v} ago` : `in ${v}`;
}

/** "+2 min 05 s" between two times. */
export function fmtDelta(ms) {
  if (ms === null || Number.isNaN(ms)) return '';
  const sign = ms < 0 ? '−' : '+';
  let a = Math.round(Math.abs(ms) / 1000);
  if (a < 60) return `${sign}${a} s`;
  const d = Math.floor(a / 86400); a -= d * 86400;
  const hh = Math.floor(a / 3600); a -= hh * 3600;
  const mm = Math.floor(a / 60); const ss = a - mm * 60;
  if (d) return `${sign}${d} d ${hh} h`;
  if (hh) return `${sign}${hh} h ${pad(mm)} min`;
  return `${sign}${mm} min ${pad(ss)} s`;
}

/** A time element: local or UTC text, the exact ISO time on hover. */
export function timeEl(t, opts) {
  const d = toDate(t);
  return h('time', { datetime: d ? d.toISOString() : undefined, title: d ? d.toISOString() : undefined }, fmtTime(t, opts));
}

// ---- event types -----------------------------------------------------------

export const EVENT_TYPES = ['Send', 'Delivery', 'Bounce', 'Complaint', 'DeliveryDelay', 'Reject',
  'Open', 'Click', 'Rendering Failure', 'Subscription'];

export function typeClass(type) {
  return `t-${String(type || 'other').toLowerCase().replace(/[^a-z]+/g, '-')}`;
}

export function typeBadge(type) {
  return h('span', { class: ['badge', 'type', typeClass(type)] }, type || '?');
}

export function stateBadge(state, text) {
  return h('span', { class: ['pill', `s-${String(state || 'unknown').toLowerCase()}`] }, text ?? state ?? 'unknown');
}

export function reasonBadge(reason) {
  return h('span', { class: ['badge', 'reason', `r-${String(reason || '').toLowerCase()}`] }, reason || '?');
}

// ---- links -----------------------------------------------------------------

export function mailHref(messageId) { return `#/events/${encodeURIComponent(messageId)}`; }
export function recipientHref(address) { return `#/recipients/${encodeURIComponent(address)}`; }
export function eventsHref(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, v);
  const qs = q.toString();
  return `#/events${qs ? `?${qs}` : ''}`;
}

export function domainOf(address) {
  const a = String(address || '');
  const at = a.lastIndexOf('@');
  return at >= 0 ? a.slice(at + 1).toLowerCase() : '';
}

// ---- small widgets -----------------------------------------------------------

/** Copies text; falls back on a hidden textarea outside secure contexts. */
export async function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    try {
      await navigator.clipboard.writeText(text);
      return true;
    } catch { /* fall through */ }
  }
  const ta = h('textarea', { class: 'offscreen', readonly: true, 'aria-hidden': 'true' });
  ta.value = text;
  document.body.appendChild(ta);
  ta.select();
  let ok = false;
  try { ok = document.execCommand('copy'); } catch { ok = false; }
  ta.remove();
  return ok;
}

export function copyButton(getText, label = 'Copy') {
  const b = h('button', { type: 'button', class: 'btn small ghost copy' }, label);
  b.addEventListener('click', async (e) => {
    e.stopPropagation();
    const ok = await copyText(typeof getText === 'function' ? getText() : getText);
    b.textContent = ok ? 'Copied' : 'Copy failed';
    setTimeout(() => { b.textContent = label; }, 1500);
  });
  return b;
}

let toastTimer = null;
/** A short message in the page's live region. */
export function toast(text, kind = 'info') {
  const el = document.getElementById('toast');
  if (!el) return;
  el.className = `toast show ${kind}`;
  el.textContent = text;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { el.className = 'toast'; }, 4000);
}

export function emptyState(title, text) {
  return h('div', { class: 'empty' }, h('p', { class: 'empty-title' }, title), text ? h('p', {}, text) : null);
}

export function errorBox(err) {
  const msg = err && err.message ? err.message : String(err);
  return h('div', { class: 'error-box', role: 'alert' },
    h('strong', {}, err && err.status ? `Error ${err.status}` : 'Error'), ' ', msg);
}

export function card(title, attrs, ...body) {
  const { actions, class: cls, ...rest } = attrs || {};
  return h('section', { class: ['card', cls], ...rest },
    title || actions ? h('header', { class: 'card-head' }, title ? h('h2', {}, title) : null, actions || null) : null,
    ...body);
}

/** Pretty JSON as a <pre>, with keys, strings and numbers told apart by colour. */
export function jsonPre(value) {
  const pre = h('pre', { class: 'json', tabindex: '0' });
  const walk = (v, indent) => {
    const pad2 = '  '.repeat(indent);
    if (v === null) { pre.appendChild(h('span', { class: 'j-null' }, 'null')); return; }
    if (Array.isArray(v)) {
      if (!v.length) { pre.appendChild(document.createTextNode('[]')); return; }
      pre.appendChild(document.createTextNode('[\n'));
      v.forEach((x, i) => {
        pre.appendChild(document.createTextNode(`${pad2}  `));
        walk(x, indent + 1);
        pre.appendChild(document.createTextNode(i < v.length - 1 ? ',\n' : '\n'));
      });
      pre.appendChild(document.createTextNode(`${pad2}]`));
      return;
    }
    if (typeof v === 'object') {
      const keys = Object.keys(v);
      if (!keys.length) { pre.appendChild(document.createTextNode('{}')); return; }
      pre.appendChild(document.createTextNode('{\n'));
      keys.forEach((k, i) => {
        pre.appendChild(document.createTextNode(`${pad2}  `));
        pre.appendChild(h('span', { class: 'j-key' }, JSON.stringify(k)));
        pre.appendChild(document.createTextNode(': '));
        walk(v[k], indent + 1);
        pre.appendChild(document.createTextNode(i < keys.length - 1 ? ',\n' : '\n'));
      });
      pre.appendChild(document.createTextNode(`${pad2}}`));
      return;
    }
    const cls = typeof v === 'string' ? 'j-str' : typeof v === 'number' ? 'j-num' : 'j-bool';
    pre.appendChild(h('span', { class: cls }, JSON.stringify(v)));
  };
  walk(value, 0);
  return pre;
}

// ---- SNS refusals ------------------------------------------------------------

const REJECTION_REASONS = {
  bad_json: 'Body is not JSON',
  missing_field: 'Envelope field missing',
  unknown_type: 'Unknown message Type',
  bad_base64: 'Signature is not base64',
  signature_version: 'Unsupported SignatureVersion',
  bad_ses_event: 'Message is not an SES event',
  certificate_url: 'Certificate URL not allowed',
  subscribe_url: 'SubscribeURL not allowed',
  confirmation_failed: 'Subscription confirmation failed',
  certificate_fetch: 'Certificate could not be fetched',
  bad_signature: 'Bad signature',
  timestamp: 'Timestamp outside certificate validity',
  topic_not_allowed: 'Topic not in the allowlist',
  raw_delivery: 'Raw delivery not allowed',
  basic_auth: 'Basic auth missing or wrong',
  storage: 'Could not be stored',
};

/** A person's words for a rejection reason code (the code itself when unknown). */
export function reasonText(code) {
  return REJECTION_REASONS[code] || String(code || 'unknown');
}

/** "arn:aws:sns:us-east-1:123:topic" -> {name: "topic", where: "us-east-1 · 123"}. */
export function splitArn(arn) {
  const p = String(arn || '').split(':');
  if (p.length >= 6 && p[0] === 'arn') return { name: p.slice(5).join(':'), where: `${p[3]} · ${p[4]}` };
  return { name: String(arn || '?'), where: '' };
}
