// app.js - the log browser's shell: hash routing to the views of CONTRACT
// section 5, the header's search, the footer's settings, and the timing of
// each view (performance measures "view:<name>", read by the browser tests).

import { h, fill, settings, errorBox, mailHref, recipientHref, toast } from './dom.js';
import { forgetToken, hasToken } from './api.js';

// Each view is its own module, fetched the first time it is shown: a first
// load fetches only what its view needs.
const lazy = (load) => async (ctx) => (await load()).default(ctx);
const overview = lazy(() => import('./views/overview.js'));
const events = lazy(() => import('./views/events.js'));
const mail = lazy(() => import('./views/mail.js'));
const recipient = lazy(() => import('./views/recipient.js'));
const suppression = lazy(() => import('./views/suppression.js'));
const subscriptions = lazy(() => import('./views/subscriptions.js'));

const main = document.getElementById('main');

/** Parses location.hash into {name, view, arg, query, nav}. */
function route() {
  let hash = location.hash.replace(/^#/, '');
  if (!hash.startsWith('/')) hash = `/${hash}`;
  const qi = hash.indexOf('?');
  const path = qi >= 0 ? hash.slice(0, qi) : hash;
  const query = new URLSearchParams(qi >= 0 ? hash.slice(qi + 1) : '');
  const segs = path.split('/').filter(Boolean);
  const dec = (x) => { try { return decodeURIComponent(x); } catch { return x; } };
  if (segs.length === 0) return { name: 'overview', view: overview, query, nav: 'overview' };
  if (segs[0] === 'events' && segs.length === 1) return { name: 'events', view: events, query, nav: 'events' };
  if (segs[0] === 'events') return { name: 'mail', view: mail, arg: dec(segs.slice(1).join('/')), query, nav: 'events' };
  if (segs[0] === 'recipients' && segs.length > 1) return { name: 'recipient', view: recipient, arg: dec(segs.slice(1).join('/')), query, nav: '' };
  if (segs[0] === 'suppression') return { name: 'suppression', view: suppression, query, nav: 'suppression' };
  if (segs[0] === 'subscriptions') return { name: 'subscriptions', view: subscriptions, query, nav: 'subscriptions' };
  return { name: 'notfound', view: null, query, nav: '' };
}

let current = null; // {name, instance, ctl}
let seq = 0;
let firstLoad = true;

function markReady(name, id, t0) {
  if (id !== seq) return; // a later navigation took over
  const end = performance.now();
  try {
    performance.measure(`view:${name}`, { start: t0, end });
  } catch { /* older browsers */ }
  document.documentElement.dataset.ready = `${name}:${id}`;
  document.documentElement.dataset.readyMs = String(Math.round(end - t0));
}

function setNav(nav) {
  for (const a of document.querySelectorAll('.nav a')) {
    if (a.dataset.nav === nav) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
}

async function navigate() {
  const r = route();
  const id = ++seq;
  const t0 = firstLoad ? 0 : performance.now();
  firstLoad = false;
  document.documentElement.dataset.ready = '';
  setNav(r.nav);
  const ready = () => markReady(r.name, id, t0);

  // Same view, new query (the events filters): let the view update in place.
  if (current && current.name === r.name && current.instance && current.instance.update && r.name !== 'mail' && r.name !== 'recipient') {
    try {
      await current.instance.update({ route: r, ready, signal: current.ctl.signal });
    } catch (e) {
      if (e.name !== 'AbortError') fill(main, errorBox(e));
      ready();
    }
    return;
  }
  if (current) {
    current.ctl.abort();
    if (current.instance && current.instance.dispose) current.instance.dispose();
  }
  const ctl = new AbortController();
  current = { name: r.name, instance: null, ctl };
  main.replaceChildren();
  window.scrollTo(0, 0);
  if (!r.view) {
    document.title = 'Not found · seslog';
    fill(main, h('div', { class: 'page-head' }, h('h1', {}, 'Nothing here')),
      h('p', {}, 'This address is not a view of the log browser. ', h('a', { href: '#/' }, 'Go to the overview.')));
    ready();
    return;
  }
  try {
    current.instance = await r.view({ root: main, route: r, ready, signal: ctl.signal });
  } catch (e) {
    if (e.name === 'AbortError') return;
    console.warn(e); // eslint-disable-line no-console
    main.appendChild(errorBox(e));
    ready();
  }
}

// ---- header search: an address goes to its history, anything else to the mail

document.getElementById('search-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const input = document.getElementById('search-input');
  const v = input.value.trim();
  if (!v) return;
  input.value = '';
  input.blur();
  location.hash = v.includes('@') ? recipientHref(v) : mailHref(v);
});

// "/" focuses the search, as in most log tools
document.addEventListener('keydown', (e) => {
  if (e.key !== '/' || e.ctrlKey || e.metaKey || e.altKey) return;
  const t = e.target;
  if (t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName))) return;
  e.preventDefault();
  document.getElementById('search-input').focus();
});

// ---- footer: time zone and token

const tzBtn = document.getElementById('tz-toggle');
function showTz() {
  const utc = settings.get('tz') === 'utc';
  tzBtn.textContent = utc ? 'Times in UTC' : 'Times in local time';
  tzBtn.setAttribute('aria-pressed', utc ? 'true' : 'false');
}
tzBtn.addEventListener('click', () => {
  settings.set('tz', settings.get('tz') === 'utc' ? 'local' : 'utc');
  showTz();
  current = null; // redraw the view with the new times
  navigate();
});
showTz();

const tokenBtn = document.getElementById('token-forget');
function showToken() { tokenBtn.hidden = !hasToken(); }
tokenBtn.addEventListener('click', () => {
  forgetToken();
  showToken();
  toast('The API token is forgotten in this browser.');
});
showToken();
document.getElementById('token-form').addEventListener('submit', () => setTimeout(showToken, 0));

window.addEventListener('hashchange', navigate);
navigate();
