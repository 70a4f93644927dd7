// browser-lib.mjs - what the log browser tests need besides lib.mjs:
// realistic SES traffic with known answers (bare SES events as JSON lines
// for `seslog import`), Debian's chromium driven by playwright-core, and
// helpers to wait for a view of the page to be ready and time it.
//
// The traffic: mails over the last 30 days, denser in the last 24 hours,
// plus a burst in the last few minutes whose bounce rate is over the warn
// threshold and whose complaint rate is over the alert threshold, so the
// overview's monitors are not all green. Recipient domains bounce at
// different rates (tiny-isp.example most). A few mails are planted with
// known ids: one per outcome, several recipients with different outcomes,
// and one whose diagnostic code is HTML.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { ROOT } from './lib.mjs';

export const WEB = path.join(ROOT, 'web');
export const ARTIFACTS = path.join(ROOT, 'tests', 'artifacts');
export const CHROMIUM = process.env.SESLOG_CHROMIUM || '/usr/bin/chromium';

export const XSS_DIAG = 'smtp; 550 5.1.1 <img src=x onerror=alert(1)><script>alert(2)</script> "user" unknown & gone';
export const KNOWN = {
  xssMail: '0100018f-xss0-4bad-html-000000000001-000000',
  xssAddress: 'victim@xss.example',
  multiMail: '0100018f-mult-4a11-8888-000000000002-000000',
  multi: { delivered: 'ada.lovelace@gmail.com', bounced: 'nobody@tiny-isp.example', complained: 'grumpy.cat@yahoo.com' },
  multiSubject: 'Your order #4711 has shipped',
  suppressed: 'gone.user@tiny-isp.example',
  historyAddress: 'ada.lovelace@gmail.com',
  source: 'Acme Shop <news@shop.acme.example>',
};

// ---- a small seeded random generator (mulberry32) ----------------------------

function rng(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  next.pick = (arr) => arr[Math.floor(next() * arr.length)];
  next.weighted = (pairs) => {
    const total = pairs.reduce((s, p) => s + p[1], 0);
    let x = next() * total;
    for (const [v, w] of pairs) { x -= w; if (x < 0) return v; }
    return pairs[pairs.length - 1][0];
  };
  next.hex = (n) => { let s = ''; for (let i = 0; i < n; i++) s += '0123456789abcdef'[Math.floor(next() * 16)]; return s; };
  return next;
}

const DOMAINS = [
  ['gmail.com', 34, 0.012], ['yahoo.com', 14, 0.02], ['outlook.com', 14, 0.015], ['hotmail.com', 8, 0.03],
  ['icloud.com', 7, 0.01], ['corp.example', 8, 0.04], ['tiny-isp.example', 4, 0.32], ['fastmail.example', 4, 0.01],
  ['example.org', 7, 0.05],
];
const NAMES = ['alex', 'sam', 'kim', 'jo', 'lee', 'pat', 'robin', 'max', 'chris', 'dana', 'eli', 'fran', 'gus', 'hana',
  'ivan', 'jun', 'kai', 'lou', 'mia', 'noor', 'omar', 'pia', 'quinn', 'ravi', 'sol', 'tess', 'uma', 'vic', 'wen', 'yara', 'zoe'];
const SOURCES = ['Acme Shop <news@shop.acme.example>', 'billing@acme.example', 'Acme Alerts <alerts@app.acme.example>'];
const SUBJECTS = ['Your weekly digest', 'Receipt for your order', 'Reset your password', 'New sign-in to your account',
  'Spring sale: 20 % off everything', 'Your invoice is ready', 'Confirm your email address', 'Someone mentioned you'];
const PERM = [
  ['General', 50, (a) => `smtp; 550 5.1.1 <${a}>: Recipient address rejected: User unknown in virtual mailbox table`],
  ['NoEmail', 20, () => 'smtp; 550 5.1.1 The email account that you tried to reach does not exist.'],
  ['Suppressed', 15, () => 'Amazon SES has suppressed sending to this address because it has a recent history of bouncing as an invalid address.'],
  ['OnAccountSuppressionList', 15, () => 'Amazon SES did not send the message to this address because it is on the suppression list for your account.'],
];
const TRANSIENT = [
  ['MailboxFull', 50, (a) => `smtp; 552 5.2.2 <${a}>: Mailbox full`],
  ['General', 50, () => 'smtp; 421 4.7.0 Try again later, closing connection.'],
];
const SPAMHAUS = 'smtp; 554 5.7.1 Service unavailable; Client host [54.240.8.12] blocked using zen.spamhaus.org';

const iso = (ms) => new Date(ms).toISOString();

/**
 * Calls emit(sesEventObject) for every event of the traffic, in time order
 * per mail. opts: {now, mails (background mails), seed, lean (smaller mail
 * objects, for the million-event database)}.
 * Returns the expectations: {burst: {sends, permanentBounces, complaints}, mails, events}.
 */
export function generateTraffic(emit, { now = Date.now(), mails = 2500, seed = 42, lean = false } = {}) {
  const r = rng(seed);
  let events = 0;
  const out = (ev) => { events++; emit(ev); };
  const mailObj = (messageId, sent, source, dest, subject) => {
    const m = {
      timestamp: iso(sent), source, sourceArn: 'arn:aws:ses:us-east-1:123456789012:identity/acme.example',
      sendingAccountId: '123456789012', messageId, destination: dest,
    };
    if (!lean) {
      m.headersTruncated = false;
      m.commonHeaders = { from: [source], to: dest, messageId: `<${messageId}@email.amazonses.com>`, subject };
      m.tags = { 'ses:configuration-set': ['transactional'], 'ses:source-ip': ['192.0.2.10'] };
    }
    return m;
  };

  // One mail; outcome per recipient: 'deliver' | 'open' | 'click' | 'complain' |
  // ['perm', sub, diag] | ['trans', sub, diag] | 'delay' | 'reject'.
  // Events that would fall after now are left out (the mail is still in
  // flight); quick mails get their opens and complaints within a minute.
  const mail = (messageId, sent, source, dest, subject, outcomes, quick = false) => {
    if (sent > now - 10e3) sent = now - 10e3;
    const m = mailObj(messageId, sent, source, dest, subject);
    out({ eventType: 'Send', mail: m, send: {} });
    if (outcomes.includes('reject')) {
      out({ eventType: 'Reject', mail: m, reject: { reason: 'Bad content' } });
      return;
    }
    const at = (d) => sent + d;
    const later = (slow) => at(quick ? 20e3 + Math.floor(r() * 20e3) : slow);
    const delivered = dest.filter((a, i) => typeof outcomes[i] === 'string' && outcomes[i] !== 'delay');
    const delayed = dest.filter((a, i) => outcomes[i] === 'delay');
    if (delayed.length) {
      const t = at(900);
      out({
        eventType: 'DeliveryDelay', mail: m,
        deliveryDelay: {
          timestamp: iso(t), delayType: 'TransientCommunicationFailure', expirationTime: iso(sent + 86400e3),
          delayedRecipients: delayed.map((a) => ({ emailAddress: a, status: '4.4.1', diagnosticCode: 'smtp; 421 4.4.1 Connection timed out' })),
        },
      });
      delivered.push(...delayed);
    }
    if (delivered.length) {
      const t = at(1200 + Math.floor(r() * 3000));
      out({
        eventType: 'Delivery', mail: m,
        delivery: { timestamp: iso(t), processingTimeMillis: t - sent, recipients: delivered, smtpResponse: '250 2.0.0 OK  1715000000 ok',
          reportingMTA: 'a8-12.smtp-out.amazonses.com' },
      });
    }
    for (const kind of ['perm', 'trans']) {
      const b = dest.map((a, i) => [a, outcomes[i]]).filter(([, o]) => Array.isArray(o) && o[0] === kind);
      if (!b.length) continue;
      const t = at(1500 + Math.floor(r() * 4000));
      out({
        eventType: 'Bounce', mail: m,
        bounce: {
          bounceType: kind === 'perm' ? 'Permanent' : 'Transient', bounceSubType: b[0][1][1],
          bouncedRecipients: b.map(([a, o]) => ({ emailAddress: a, action: 'failed', status: kind === 'perm' ? '5.1.1' : '4.2.2', diagnosticCode: o[2] })),
          timestamp: iso(t), feedbackId: `${messageId}-${kind}`, reportingMTA: 'dsn; a8-12.smtp-out.amazonses.com',
        },
      });
    }
    dest.forEach((a, i) => {
      const o = outcomes[i];
      if (o === 'open' || o === 'click' || o === 'complain') {
        const t = later(60e3 + Math.floor(r() * 3600e3));
        if (t < now) out({ eventType: 'Open', mail: m, open: { timestamp: iso(t), userAgent: 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X)', ipAddress: '198.51.100.7' } });
        if (o === 'click' && t + 20e3 < now) {
          out({ eventType: 'Click', mail: m, click: { timestamp: iso(t + 20e3), ipAddress: '198.51.100.7', userAgent: 'Mozilla/5.0', link: 'https://acme.example/orders', linkTags: { campaign: ['digest'] } } });
        }
      }
      if (o === 'complain') {
        const t = later(5 * 60e3 + Math.floor(r() * 3600e3));
        if (t < now) out({
          eventType: 'Complaint', mail: m,
          complaint: { complainedRecipients: [{ emailAddress: a }], timestamp: iso(t), feedbackId: `${messageId}-c${i}`,
            complaintFeedbackType: r() < 0.8 ? 'abuse' : 'not-spam', userAgent: 'Yahoo!-Mail-Feedback/2.0', arrivalDate: iso(t - 1000) },
        });
      }
    });
  };

  const outcome = (addr, domRate) => {
    const x = r();
    if (x < domRate) {
      if (addr.endsWith('@tiny-isp.example') && r() < 0.4) return ['perm', 'General', SPAMHAUS];
      if (r() < 0.7) { const [sub, , d] = r.weighted(PERM.map((p) => [p, p[1]])); return ['perm', sub, d(addr)]; }
      const [sub, , d] = r.weighted(TRANSIENT.map((p) => [p, p[1]]));
      return ['trans', sub, d(addr)];
    }
    const y = r();
    if (y < 0.001) return 'complain';
    if (y < 0.006) return 'delay';
    if (y < 0.08) return 'click';
    if (y < 0.35) return 'open';
    return 'deliver';
  };
  const address = () => {
    const [d, , rate] = r.weighted(DOMAINS.map((x) => [x, x[1]]));
    return [`${r.pick(NAMES)}.${r.pick(NAMES)}${Math.floor(r() * 90)}@${d}`, rate];
  };
  const newId = () => `0100018f${r.hex(8)}-${r.hex(8)}-${r.hex(4)}-${r.hex(4)}-${r.hex(4)}-${r.hex(12)}-000000`;

  // background traffic: 35 % over 30 days, 65 % over the last day
  for (let i = 0; i < mails; i++) {
    const sent = i < mails * 0.35 ? now - 86400e3 - r() * 29 * 86400e3 : now - 900e3 - r() * (86400e3 - 900e3);
    const n = r() < 0.9 ? 1 : 2 + Math.floor(r() * 2);
    const dest = [];
    const outs = [];
    for (let k = 0; k < n; k++) {
      const [a, rate] = address();
      dest.push(a);
      outs.push(outcome(a, rate));
    }
    if (r() < 0.002) outs[0] = 'reject';
    mail(newId(), Math.floor(sent), r.pick(SOURCES), dest, r.pick(SUBJECTS), outs);
  }

  // the burst: the last 8 minutes, 200 sends, 7 permanent bounces (3.5 %:
  // warn), 1 complaint (0.5 %: alert)
  const burst = { sends: 200, permanentBounces: 7, complaints: 1 };
  for (let i = 0; i < burst.sends; i++) {
    const sent = now - 8 * 60e3 + Math.floor((i / burst.sends) * 7 * 60e3);
    const [a] = address();
    let o = 'deliver';
    if (i % 29 === 3 && i < 29 * burst.permanentBounces) o = ['perm', 'General', `smtp; 550 5.1.1 <${a}>: Recipient address rejected: User unknown`];
    if (i === 100) o = 'complain';
    mail(newId(), sent, SOURCES[0], [a], 'Flash sale ends tonight', [o], true);
  }

  // planted mails, 2 hours ago
  const t = now - 2 * 3600e3;
  mail(KNOWN.multiMail, t, KNOWN.source, [KNOWN.multi.delivered, KNOWN.multi.bounced, KNOWN.multi.complained], KNOWN.multiSubject,
    ['click', ['perm', 'General', `smtp; 550 5.1.1 <${KNOWN.multi.bounced}>: Recipient address rejected: User unknown`], 'complain']);
  mail('0100018f-xss0-4bad-html-000000000001-000000', t + 60e3, '"<b>Evil</b>" <evil@xss.example>', [KNOWN.xssAddress],
    '<img src=x onerror=alert(3)> subject', [['perm', 'General', XSS_DIAG]]);
  mail('0100018f-gone-4bad-0000-000000000003-000000', t + 120e3, SOURCES[1], [KNOWN.suppressed], 'Receipt for your order',
    [['perm', 'NoEmail', 'smtp; 550 5.1.1 The email account that you tried to reach does not exist.']]);
  for (let k = 0; k < 5; k++) { // a history for ada
    mail(`0100018f-ada${k}-4000-0000-00000000010${k}-000000`, now - (k + 1) * 86400e3 * 3, SOURCES[k % 3], [KNOWN.historyAddress], r.pick(SUBJECTS), ['open']);
  }
  return { burst, mails, events };
}

/** Writes the traffic as JSON lines to file; returns generateTraffic's answer. */
export function writeTraffic(file, opts) {
  const fd = fs.openSync(file, 'w');
  let chunk = [];
  const flush = () => { if (chunk.length) fs.writeSync(fd, chunk.join('')); chunk = []; };
  const res = generateTraffic((ev) => {
    chunk.push(`${JSON.stringify(ev)}\n`);
    if (chunk.length >= 5000) flush();
  }, opts);
  flush();
  fs.closeSync(fd);
  return res;
}

// ---- the browser -----------------------------------------------------------------

/**
 * playwright-core's chromium, or a clear error. Both are installed by
 * scripts/install-deps.sh; a missing one fails the suite, never skips it.
 */
export async function loadChromium() {
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: run scripts/install-deps.sh (apt-get install chromium)`);
  }
  const require = createRequire(path.join(ROOT, 'tests', 'package.json'));
  let pw;
  try {
    pw = require('playwright-core');
  } catch (e) {
    throw new Error(`playwright-core is missing: run scripts/install-deps.sh (npm install in tests/): ${e.message}`);
  }
  return pw.chromium;
}

/** A headless chromium with a fresh profile. Returns {context, dir, close()}. */
export async function launch(opts = {}) {
  const chromium = await loadChromium();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'seslog-chromium-'));
  const context = await chromium.launchPersistentContext(dir, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1440, height: 900 },
    acceptDownloads: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
    ...opts,
  });
  return {
    context,
    dir,
    async close() {
      await context.close().catch(() => {});
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Watches a page: every request must stay on 127.0.0.1 (or be a data: or
 * blob: URL of the page itself), and nothing may reach the console as an
 * error. Returns {requests, offsite, errors, dialogs}.
 */
export function watch(page, { allowConsole = [] } = {}) {
  const w = { requests: [], offsite: [], errors: [], dialogs: [] };
  page.on('request', (req) => {
    const u = req.url();
    w.requests.push(u);
    let ok = false;
    try {
      const url = new URL(u);
      if (url.protocol === 'data:') ok = true;
      else if (url.protocol === 'blob:') ok = new URL(u.slice(5)).hostname === '127.0.0.1';
      else ok = (url.protocol === 'http:' || url.protocol === 'https:') && url.hostname === '127.0.0.1';
    } catch { ok = false; }
    if (!ok) w.offsite.push(u);
  });
  page.on('console', (m) => {
    if (m.type() !== 'error' && m.type() !== 'warning') return;
    const text = m.text();
    if (allowConsole.some((re) => re.test(text))) return;
    w.errors.push(`console.${m.type()}: ${text}`);
  });
  page.on('pageerror', (e) => w.errors.push(`pageerror: ${e.message}`));
  page.on('dialog', (d) => { w.dialogs.push(`${d.type()}: ${d.message()}`); d.dismiss().catch(() => {}); });
  return w;
}

/** "name:seq" of the view last ready, or ''. */
export function readyMark(page) {
  return page.evaluate(() => document.documentElement.dataset.ready || '');
}

/** Waits until the view named `view` is ready after the mark `before`; returns its time in ms. */
export async function waitReady(page, view, before = '', timeout = 15000) {
  await page.waitForFunction(([v, b]) => {
    const r = document.documentElement.dataset.ready || '';
    return r.startsWith(`${v}:`) && r !== b;
  }, [view, before], { timeout });
  return Number(await page.evaluate(() => document.documentElement.dataset.readyMs));
}

/** Navigates inside the page (hash change) and returns the view's time in ms. */
export async function go(page, hash, view) {
  const before = await readyMark(page);
  await page.evaluate((hh) => { location.hash = hh; }, hash);
  return waitReady(page, view, before);
}

/** Loads the page anew at hash; returns the time from navigation start to ready. */
export async function load(page, url, hash, view) {
  await page.goto('about:blank'); // a real load, not a hash change in the same document
  await page.goto(`${url}/${hash}`);
  return waitReady(page, view, '');
}

/** The page has no horizontal scroll (its content fits the viewport's width). */
export function horizontalOverflow(page) {
  return page.evaluate(() => {
    const d = document.documentElement;
    const wide = [];
    if (d.scrollWidth > d.clientWidth) {
      for (const el of document.querySelectorAll('body *')) {
        const r = el.getBoundingClientRect();
        if (r.right > d.clientWidth + 1 && !el.closest('.table-wrap, .chart-data, pre')) {
          wide.push(`${el.tagName.toLowerCase()}${el.id ? `#${el.id}` : ''}.${[...el.classList].join('.')} right=${Math.round(r.right)}`);
          if (wide.length > 5) break;
        }
      }
    }
    return { scrollWidth: d.scrollWidth, clientWidth: d.clientWidth, wide };
  });
}

export function screenshotPath(name) {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  return path.join(ARTIFACTS, `${name}.png`);
}
