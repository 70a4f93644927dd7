// browser.test.mjs - the log browser in Debian's chromium (playwright-core)
// against the real server, filled by `seslog import` of generated SES
// traffic and by signed posts to /sns: every view shows the data the API
// holds; the events filters change the URL and the table; paging loads
// more; a suppression is removed and added (recipient page and list);
// a diagnostic code made of HTML is shown as text; no request leaves
// 127.0.0.1; no console error; no horizontal scroll at 375 px; light and
// dark screenshots of each view in tests/artifacts/; the time each view
// takes to be ready, printed (SESLOG_BROWSER_MAILS=400000 builds a
// database of about a million events for the figures of issue 5).
//
// chromium and playwright-core come from scripts/install-deps.sh; when
// either is missing the suite fails, it never skips.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {
  startServer, runSeslog, tempDir, get, post, request, signEnvelope, uniqueBounce, DEFAULT_TOPIC,
} from './lib.mjs';
import {
  WEB, KNOWN, XSS_DIAG, writeTraffic, launch, watch, go, load, waitReady, readyMark, horizontalOverflow, screenshotPath,
} from './browser-lib.mjs';

const T = { timeout: 90000 };
const MAILS = Number(process.env.SESLOG_BROWSER_MAILS || 2500);
const BIG = MAILS > 20000;
const PENDING_TOPIC = 'arn:aws:sns:eu-west-1:123456789012:ses-pending';
// A view is ready in this many ms on the test's database; the issue's
// target (300 ms on a million events) is checked when SESLOG_BROWSER_MAILS
// builds one.
const LIMIT_MS = BIG ? 300 : 1500;

let srv;
let browser;
let traffic;
let posted;
const timings = [];

async function apiJson(p) {
  const r = await get(srv.url, p);
  assert.equal(r.status, 200, `${p}: ${r.status} ${r.text}`);
  return r.json;
}

before(async () => {
  // The browser first: without it nothing else is worth building.
  browser = await launch();
  const dir = tempDir('seslog-browser-');
  const file = path.join(dir, 'traffic.jsonl');
  const t0 = Date.now();
  traffic = writeTraffic(file, { mails: MAILS, lean: BIG });
  const r = await runSeslog(['import', '--db', path.join(dir, 'seslog.db'), file], { timeout: 1800e3 });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`imported ${traffic.events}, duplicates 0, rejected 0`));
  fs.rmSync(file);
  console.log(`# browser: ${traffic.events} events imported in ${Date.now() - t0} ms`);
  srv = await startServer({ dir, args: ['--web', WEB], t: undefined });

  // Through /sns: a topic that notifies, one that asks to be confirmed (the
  // confirmation cannot be fetched here), and a forged signature.
  const ses = uniqueBounce('browser');
  let res = await post(srv.url, '/sns', signEnvelope({ message: ses }));
  assert.equal(res.status, 200, res.text);
  res = await post(srv.url, '/sns', signEnvelope({ type: 'SubscriptionConfirmation', topicArn: PENDING_TOPIC, message: 'You have chosen to subscribe to the topic.' }));
  const bad = signEnvelope({ message: uniqueBounce('forged') });
  bad.Signature = `AAAA${bad.Signature.slice(4)}`;
  res = await post(srv.url, '/sns', bad);
  assert.equal(res.status, 403, res.text);
  posted = { ses };
});

after(async () => {
  if (browser) await browser.close();
  if (srv) await srv.stop();
  if (timings.length) {
    const rows = timings.map((t) => `#   ${t.view.padEnd(14)} ${t.how.padEnd(26)} ${String(t.ms).padStart(5)} ms`);
    console.log(`# browser: view ready times (${traffic ? traffic.events : '?'} events; limit ${LIMIT_MS} ms)\n${rows.join('\n')}`);
  }
});

/** A new page in the shared browser, watched; check() asserts it stayed clean. */
async function newPage(t, { width = 1440, height = 900, scheme = 'light', allowConsole } = {}) {
  const page = await browser.context.newPage();
  await page.setViewportSize({ width, height });
  await page.emulateMedia({ colorScheme: scheme });
  const w = watch(page, { allowConsole });
  t.after(() => page.close().catch(() => {}));
  page.check = () => {
    assert.deepEqual(w.offsite, [], 'requests that left 127.0.0.1');
    assert.deepEqual(w.errors, [], 'console errors');
    assert.deepEqual(w.dialogs, [], 'dialogs opened by the page');
  };
  page.w = w;
  return page;
}

function timed(view, how, ms) {
  timings.push({ view, how, ms });
  assert.ok(ms < LIMIT_MS, `${view} (${how}) took ${ms} ms, more than ${LIMIT_MS} ms`);
}

const text = (page, sel) => page.locator(sel).first().innerText();

function fmtPct(x) { // as the page writes a rate
  const p = x * 100;
  const d = p === 0 ? 0 : p < 0.1 ? 3 : p < 10 ? 2 : 1;
  return `${p.toFixed(d)} %`;
}

test('overview: rates against thresholds coloured by monitor state, chart, counts, domains, subscriptions, refusals', T, async (t) => {
  const page = await newPage(t);
  timed('overview', 'first load', await load(page, srv.url, '#/', 'overview'));
  const stats = await apiJson('/api/stats');
  const day = await apiJson('/api/stats?window=24h');

  // the burst puts the bounce rate over warn and the complaint rate over alert
  assert.equal(stats.monitors.bounceRate.state, 'warn');
  assert.equal(stats.monitors.complaintRate.state, 'alert');
  for (const [id, m] of [['#bounce-rate', stats.monitors.bounceRate], ['#complaint-rate', stats.monitors.complaintRate]]) {
    const card = page.locator(id);
    assert.match(await card.getAttribute('class'), new RegExp(`state-${m.state}\\b`));
    assert.equal(await card.locator('.big').innerText(), fmtPct(m.value));
    assert.match(await card.locator('.pill').innerText(), new RegExp(m.state, 'i'));
    const ticks = await card.locator('.gauge-ticks').innerText();
    assert.match(ticks, new RegExp(`warn ${fmtPct(m.warn).replace('.', '\\.')}`));
    assert.match(ticks, new RegExp(`alert ${fmtPct(m.alert).replace('.', '\\.')}`));
  }
  assert.match(await text(page, '#bounce-rate .rate-foot'), new RegExp(`${stats.permanentBounces} permanent bounces of ${stats.sends} sends`));

  // volume tiles and counts by type: the 24 h stats
  const tiles = await text(page, '#volume');
  for (const n of [day.sends, day.deliveries, day.bounces, day.complaints]) {
    assert.ok(tiles.includes(n.toLocaleString('en-US')), `volume shows ${n}: ${tiles}`);
  }
  const types = await text(page, '#type-counts');
  assert.match(types, new RegExp(`Bounce\\s+${day.bounces.toLocaleString('en-US')}`));

  // the chart: a bar per hour with sends, the rate lines and the threshold lines
  const ts = await apiJson('/api/timeseries?since=24h&bucket=1h');
  const withSends = ts.points.filter((p) => p.sends > 0).length;
  assert.equal(await page.locator('#chart-card rect.b-send').count(), ts.points.filter((p) => Math.max(p.sends, p.deliveries + p.bounces) > 0).length);
  assert.ok(withSends > 10);
  assert.equal(await page.locator('#chart-card .thr').count(), 4);
  assert.equal(await page.locator('#chart-card .r-bounce path.line').count(), 1);
  // hovering a bucket shows its numbers
  const box = await page.locator('#chart-card rect.hit').boundingBox();
  await page.mouse.move(box.x + box.width - 3, box.y + 40);
  const tip = await text(page, '.chart-tip.show');
  const last = ts.points[ts.points.length - 1];
  assert.match(tip, new RegExp(`sends\\s*${last.sends.toLocaleString('en-US')}`));

  // tiny-isp.example bounces most
  const domains = page.locator('#bounce-domains .bl-label');
  assert.equal(await domains.first().innerText(), 'tiny-isp.example');
  assert.match(await page.locator('#bounce-domains a').first().getAttribute('href'), /type=Bounce&domain=tiny-isp\.example&since=24h/);

  // subscriptions: the notifying topic and the pending one
  const subs = await text(page, '#subs-health');
  assert.match(subs, /ses-events/);
  assert.match(subs, /last message/);
  // the refused forgery
  assert.match(await text(page, '#recent-rejections'), /Bad signature/);
  // latest bounces and complaints: the posted one is the newest bounce
  assert.match(await text(page, '#recent-events'), new RegExp(posted.ses.bounce.bouncedRecipients[0].emailAddress.replace(/[.+]/g, '\\$&')));

  await page.screenshot({ path: screenshotPath('overview-1440-light'), fullPage: true });

  // ranges: the URL changes, the chart redraws with the range's buckets
  for (const [range, bucket] of [['1h', '1m'], ['7d', '1h'], ['30d', '1d']]) {
    const before = await readyMark(page);
    await page.locator(`.seg a[href="#/?range=${range}"]`).click();
    timed('overview', `range ${range}`, await waitReady(page, 'overview', before));
    assert.ok(page.url().endsWith(`#/?range=${range}`));
    const pts = (await apiJson(`/api/timeseries?since=${range}&bucket=${bucket}`)).points;
    const bars = await page.locator('#chart-card rect.b-send').count();
    assert.ok(Math.abs(bars - pts.filter((p) => Math.max(p.sends, p.deliveries + p.bounces) > 0).length) <= 1, `${range}: ${bars} bars`);
  }
  await page.screenshot({ path: screenshotPath('overview-30d-1440-light') });
  page.check();
});

test('events: filters go to the URL and the table; load more pages on; a row opens the mail', T, async (t) => {
  const page = await newPage(t);
  timed('events', 'first load', await load(page, srv.url, '#/events', 'events'));
  const rows = page.locator('table.events-table tbody tr');
  assert.equal(await rows.count(), 100);
  const all = await apiJson('/api/events?limit=100');
  assert.equal(await rows.first().getAttribute('data-href'), `#/events/${encodeURIComponent(all.items[0].messageId)}`);

  // type: Bounce
  let before = await readyMark(page);
  await page.selectOption('#f-type', 'Bounce');
  timed('events', 'filter type', await waitReady(page, 'events', before));
  assert.match(page.url(), /#\/events\?type=Bounce$/);
  const badges = await page.locator('table.events-table tbody .badge.type').allInnerTexts();
  assert.ok(badges.length > 0 && badges.every((b) => b === 'Bounce'), badges.join(','));

  // + domain (typed, Enter)
  before = await readyMark(page);
  await page.fill('#f-domain', 'tiny-isp.example');
  await page.press('#f-domain', 'Enter');
  timed('events', 'filter domain', await waitReady(page, 'events', before));
  assert.match(page.url(), /type=Bounce&domain=tiny-isp\.example/);
  const api = await apiJson('/api/events?type=Bounce&domain=tiny-isp.example&limit=100');
  assert.equal(await rows.count(), api.items.length);
  for (const r of await page.locator('table.events-table tbody td.c-rcpt').allInnerTexts()) {
    assert.match(r, /tiny-isp\.example/);
  }
  await page.screenshot({ path: screenshotPath('events-1440-light') });
  // + bounce type, time range
  before = await readyMark(page);
  await page.selectOption('#f-bounceType', 'Permanent');
  await waitReady(page, 'events', before);
  before = await readyMark(page);
  await page.selectOption('#f-range', '7d');
  await waitReady(page, 'events', before);
  assert.match(page.url(), /bounceType=Permanent/);
  assert.match(page.url(), /since=7d/);
  const perm = await apiJson('/api/events?type=Bounce&bounceType=Permanent&domain=tiny-isp.example&since=7d&limit=100');
  assert.equal(await rows.count(), perm.items.length);
  assert.ok((await page.locator('table.events-table tbody .tag-bad').count()) === perm.items.length);

  // a shared link opens with the same filters
  const shared = page.url();
  const page2 = await newPage(t);
  await page2.goto(shared);
  await waitReady(page2, 'events', '');
  assert.equal(await page2.locator('#f-domain').inputValue(), 'tiny-isp.example');
  assert.equal(await page2.locator('#f-type').inputValue(), 'Bounce');
  assert.equal(await page2.locator('table.events-table tbody tr').count(), perm.items.length);
  page2.check();

  // clear; paging through three pages without a repeat
  before = await readyMark(page);
  await page.click('#clear-filters');
  await waitReady(page, 'events', before);
  assert.match(page.url(), /#\/events$/);
  await page.click('#load-more');
  await page.waitForFunction(() => document.querySelectorAll('table.events-table tbody tr').length === 200);
  await page.click('#load-more');
  await page.waitForFunction(() => document.querySelectorAll('table.events-table tbody tr').length === 300);
  const hrefs = await rows.evaluateAll((trs) => trs.map((tr) => tr.dataset.href));
  const api3 = [];
  let cursor = null;
  for (let i = 0; i < 3; i++) {
    const b = await apiJson(`/api/events?limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    api3.push(...b.items);
    cursor = b.nextCursor;
  }
  assert.deepEqual(hrefs, api3.map((e) => `#/events/${encodeURIComponent(e.messageId)}`), 'three pages, in order, none skipped or repeated');
  assert.match(await text(page, '.result-status'), /300 events shown, more below/);

  // a click on a row (not on a link) opens its mail
  before = await readyMark(page);
  const target = await rows.nth(5).getAttribute('data-href');
  await rows.nth(5).locator('td.c-src').click();
  timed('mail', 'row click', await waitReady(page, 'mail', before));
  assert.equal(new URL(page.url()).hash, target);
  page.check();
});

test('mail: each recipient outcome, the timeline, raw JSON pretty-printed and copied', T, async (t) => {
  await browser.context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: srv.url });
  const page = await newPage(t);
  timed('mail', 'first load', await load(page, srv.url, `#/events/${KNOWN.multiMail}`, 'mail'));
  const body = await apiJson(`/api/events/${KNOWN.multiMail}`);
  assert.equal(await text(page, 'h1'), KNOWN.multiSubject);
  assert.equal(await text(page, '#message-id'), KNOWN.multiMail);
  const outcome = async (a) => text(page, `#mail-recipients tr[data-address="${a}"] .c-outcome .pill`);
  assert.equal(await outcome(KNOWN.multi.delivered), 'Delivered');
  assert.equal(await outcome(KNOWN.multi.bounced), 'Bounced (permanent)');
  assert.equal(await outcome(KNOWN.multi.complained), 'Complained');
  assert.match(await text(page, `#mail-recipients tr[data-address="${KNOWN.multi.bounced}"]`), /550 5\.1\.1/);
  assert.equal(await page.locator('#timeline > li').count(), body.items.length);
  const types = await page.locator('#timeline .tl-head .badge.type').allInnerTexts();
  assert.deepEqual(types, body.items.map((e) => e.notificationType)); // the API's order: by time
  assert.equal(types[0], 'Send');

  // raw JSON: opened, pretty-printed, copied
  const bounceItem = page.locator('#timeline > li.tl-bounce');
  await bounceItem.locator('details.raw summary').click();
  const pre = await bounceItem.locator('pre.json').innerText();
  const raw = body.items.find((e) => e.notificationType === 'Bounce').raw;
  assert.deepEqual(JSON.parse(pre), raw);
  assert.ok(pre.includes('\n  "bounce": {'), 'indented by two spaces');
  await bounceItem.locator('button.copy').click();
  await page.waitForFunction(() => [...document.querySelectorAll('button.copy')].some((b) => b.textContent === 'Copied'));
  const clip = await page.evaluate(() => navigator.clipboard.readText());
  assert.deepEqual(JSON.parse(clip), raw);
  await page.screenshot({ path: screenshotPath('mail-1440-light'), fullPage: true });

  // a recipient link leads to its page
  const before = await readyMark(page);
  await page.locator(`#mail-recipients a[href="#/recipients/${encodeURIComponent(KNOWN.multi.bounced)}"]`).click();
  timed('recipient', 'link from mail', await waitReady(page, 'recipient', before));
  page.check();
});

test('untrusted text: a diagnostic code made of HTML is shown as text, nothing runs', T, async (t) => {
  const page = await newPage(t);
  await load(page, srv.url, `#/events?address=${encodeURIComponent(KNOWN.xssAddress)}`, 'events');
  const cell = page.locator('table.events-table tbody td.c-detail .diag');
  assert.equal(await cell.innerText(), XSS_DIAG);
  assert.equal(await page.locator('table.events-table img, table.events-table script, table.events-table b').count(), 0);
  assert.equal(await page.locator('table.events-table tbody td.c-src').first().innerText(), '"<b>Evil</b>" <evil@xss.example>');
  await go(page, `#/events/${KNOWN.xssMail}`, 'mail');
  assert.equal(await text(page, 'h1'), '<img src=x onerror=alert(3)> subject');
  assert.match(await text(page, '#timeline'), /<img src=x onerror=alert\(1\)><script>alert\(2\)<\/script>/);
  assert.equal(await page.locator('main img, main script, main b').count(), 0);
  await go(page, '#/', 'overview');
  assert.equal(await page.locator('main img, main script').count(), 0);
  await page.waitForTimeout(200);
  page.check(); // no dialog: alert() never ran
});

test('recipient: history and the suppression entry, removed and added again', T, async (t) => {
  const page = await newPage(t);
  const addr = KNOWN.suppressed;
  timed('recipient', 'first load', await load(page, srv.url, `#/recipients/${encodeURIComponent(addr)}`, 'recipient'));
  const hist = await apiJson(`/api/recipients/${encodeURIComponent(addr)}`);
  assert.equal(await page.locator('table.events-table tbody tr').count(), hist.events.length);
  const entry = page.locator('#suppression-entry');
  assert.match(await entry.innerText(), /Suppressed/);
  assert.match(await entry.innerText(), /BOUNCE/);
  await page.screenshot({ path: screenshotPath('recipient-1440-light'), fullPage: true });

  await page.click('#sup-remove');
  await page.click('#sup-remove-confirm');
  await page.waitForSelector('#suppression-entry.sup-off');
  assert.equal((await get(srv.url, `/api/suppression/${encodeURIComponent(addr)}`)).status, 404);

  await page.selectOption('#sup-reason', 'MANUAL');
  await page.fill('#sup-note', 'asked by support');
  await page.click('#sup-add');
  await page.waitForSelector('#suppression-entry.sup-on');
  const e = await apiJson(`/api/suppression/${encodeURIComponent(addr)}`);
  assert.equal(e.reason, 'MANUAL');
  assert.equal(e.note, 'asked by support');
  assert.match(await entry.innerText(), /asked by support/);

  // a history that pages: ada has mails on several days
  await go(page, `#/recipients/${encodeURIComponent(KNOWN.historyAddress)}`, 'recipient');
  const ada = await apiJson(`/api/recipients/${encodeURIComponent(KNOWN.historyAddress)}`);
  assert.equal(await page.locator('table.events-table tbody tr').count(), ada.events.length);
  assert.match(await page.locator('#suppression-entry').innerText(), /Not suppressed/);
  page.check();
});

test('suppression list: search and reason in the URL, remove, add, export CSV', T, async (t) => {
  const page = await newPage(t);
  timed('suppression', 'first load', await load(page, srv.url, '#/suppression', 'suppression'));
  const list = await apiJson('/api/suppression?limit=100');
  assert.equal(await page.locator('#sup-table tbody tr').count(), list.items.length);

  await page.selectOption('#sup-filter-reason', 'COMPLAINT');
  await page.waitForFunction(() => location.hash.includes('reason=COMPLAINT'));
  const complaints = await apiJson('/api/suppression?reason=COMPLAINT&limit=100');
  await page.waitForFunction((n) => document.querySelectorAll('#sup-table tbody tr').length === n || (n === 0 && document.querySelector('.empty')), complaints.items.length);
  for (const r of await page.locator('#sup-table tbody .badge.reason').allInnerTexts()) assert.equal(r, 'COMPLAINT');

  await page.selectOption('#sup-filter-reason', '');
  await page.fill('#sup-search', 'tiny-isp');
  await page.waitForFunction(() => location.hash.includes('search=tiny-isp'));
  const tiny = await apiJson('/api/suppression?search=tiny-isp&limit=100');
  await page.waitForFunction((n) => document.querySelectorAll('#sup-table tbody tr').length === n, tiny.items.length);
  for (const a of await page.locator('#sup-table tbody td a.addr').allInnerTexts()) assert.match(a, /tiny-isp/);

  // remove the first one (two clicks)
  const victim = tiny.items[0].address;
  const row = page.locator(`#sup-table tbody tr[data-address="${victim}"]`);
  await row.locator('button').click();
  await row.locator('button', { hasText: 'Confirm' }).click();
  await page.waitForFunction((a) => !document.querySelector(`#sup-table tbody tr[data-address="${a}"]`), victim);
  assert.equal((await get(srv.url, `/api/suppression/${encodeURIComponent(victim)}`)).status, 404);

  // add it back by hand
  await page.click('details.add-card summary');
  await page.fill('#add-address', victim);
  await page.selectOption('#add-reason', 'COMPLAINT');
  await page.fill('#add-note', 'put back');
  await page.click('#sup-add-form button[type=submit]');
  await page.waitForFunction((a) => !!document.querySelector(`#sup-table tbody tr[data-address="${a}"]`), victim);
  assert.equal((await apiJson(`/api/suppression/${encodeURIComponent(victim)}`)).reason, 'COMPLAINT');
  await page.screenshot({ path: screenshotPath('suppression-1440-light'), fullPage: true });

  // export: SES's bulk CSV of what the filter shows; an address that a
  // spreadsheet would read as a formula is guarded with ' (issue 16)
  const formula = '=tiny-isp-formula@example.com';
  assert.equal((await request(srv.url, 'PUT', `/api/suppression/${encodeURIComponent(formula)}`, {})).status, 201);
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#sup-export')]);
  const csv = fs.readFileSync(await download.path(), 'utf8');
  const lines = csv.trim().split('\n');
  const now = await apiJson('/api/suppression?search=tiny-isp&limit=1000');
  assert.equal(lines.length, now.items.length);
  assert.ok(lines.includes(`${victim},COMPLAINT`), csv);
  assert.ok(lines.includes(`"'${formula}",BOUNCE`), csv);
  for (const l of lines) assert.match(l, /^[^,]+@[^,]+,(BOUNCE|COMPLAINT)$/);
  for (const l of lines) assert.doesNotMatch(l, /^[=+\-@]/);
  page.check();
});

test('subscriptions: topics with state and last message, refusals with reasons', T, async (t) => {
  const page = await newPage(t);
  timed('subscriptions', 'first load', await load(page, srv.url, '#/subscriptions', 'subscriptions'));
  const subs = await apiJson('/api/subscriptions');
  const topics = await text(page, '#topics');
  for (const s of subs.items) {
    assert.ok(topics.includes(s.topicArn), `${s.topicArn} shown`);
  }
  assert.ok(subs.items.some((s) => s.topicArn === DEFAULT_TOPIC));
  assert.match(topics, /just now|min ago/);
  const rej = await text(page, '#rejections');
  assert.match(rej, /Bad signature/);
  const diag = await apiJson('/api/diagnostics');
  assert.equal(await page.locator('#rejection-table tbody tr').count(), diag.recentRejections.length);
  await page.screenshot({ path: screenshotPath('subscriptions-1440-light'), fullPage: true });
  page.check();
});

test('keyboard: "/" searches, Tab reaches a row, Enter opens it', T, async (t) => {
  const page = await newPage(t);
  await load(page, srv.url, '#/events?type=Complaint', 'events');
  await page.keyboard.press('/');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'search-input');
  let before = await readyMark(page);
  await page.keyboard.type(KNOWN.historyAddress);
  await page.keyboard.press('Enter');
  await waitReady(page, 'recipient', before);
  assert.equal(decodeURIComponent(new URL(page.url()).hash), `#/recipients/${KNOWN.historyAddress}`);

  await go(page, '#/events?type=Complaint', 'events');
  await page.evaluate(() => document.getElementById('clear-filters').focus());
  let found = false;
  for (let i = 0; i < 10 && !found; i++) {
    await page.keyboard.press('Tab');
    found = await page.evaluate(() => document.activeElement.classList.contains('rowlink'));
  }
  assert.ok(found, 'a row link is reachable by Tab');
  const href = await page.evaluate(() => document.activeElement.getAttribute('href'));
  before = await readyMark(page);
  await page.keyboard.press('Enter');
  await waitReady(page, 'mail', before);
  assert.equal(new URL(page.url()).hash, href);
  page.check();
});

test('every view at 375 px and in dark mode: no horizontal scroll, screenshots', T, async (t) => {
  const views = [
    ['overview', '#/'],
    ['events', '#/events?type=Bounce'],
    ['mail', `#/events/${KNOWN.multiMail}`],
    ['recipient', `#/recipients/${encodeURIComponent(KNOWN.suppressed)}`],
    ['suppression', '#/suppression'],
    ['subscriptions', '#/subscriptions'],
  ];
  const narrow = await newPage(t, { width: 375, height: 812 });
  for (const [view, hash] of views) {
    timed(view, 'first load, 375 px', await load(narrow, srv.url, hash, view));
    await narrow.waitForTimeout(50); // the chart draws on the next frame
    const o = await horizontalOverflow(narrow);
    assert.ok(o.scrollWidth <= o.clientWidth, `${view} at 375 px scrolls sideways: ${JSON.stringify(o)}`);
    await narrow.screenshot({ path: screenshotPath(`${view}-375-light`), fullPage: true });
  }
  narrow.check();

  const dark = await newPage(t, { scheme: 'dark' });
  for (const [view, hash] of views) {
    await load(dark, srv.url, hash, view);
    const [away, awayView] = view === 'suppression' ? ['#/subscriptions', 'subscriptions'] : ['#/suppression', 'suppression'];
    await go(dark, away, awayView);
    timed(view, 'in-page navigation', await go(dark, hash, view));
    const bg = await dark.evaluate(() => getComputedStyle(document.body).backgroundColor);
    const [r, g, b] = bg.match(/\d+/g).map(Number);
    assert.ok(r + g + b < 120, `${view}: dark background, got ${bg}`);
    await dark.screenshot({ path: screenshotPath(`${view}-1440-dark`), fullPage: view !== 'events' });
  }
  const narrowDark = await newPage(t, { width: 375, height: 812, scheme: 'dark' });
  await load(narrowDark, srv.url, '#/', 'overview');
  await narrowDark.screenshot({ path: screenshotPath('overview-375-dark'), fullPage: true });
  dark.check();
  narrowDark.check();
});

test('--api-token: the page asks once, keeps the token, and is refused a wrong one', T, async (t) => {
  const dir = tempDir('seslog-browser-token-');
  const tok = await startServer({ dir, args: ['--web', WEB, '--api-token', 's3cret-token'], t });
  const b = await launch();
  t.after(() => b.close());
  const page = await b.context.newPage();
  // The 401s before the token is given are the server's expected answer.
  const w = watch(page, { allowConsole: [/status of 401/] });
  await page.goto(`${tok.url}/#/`);
  await page.waitForSelector('#token-dialog[open]');
  await page.screenshot({ path: screenshotPath('token-dialog') });
  await page.fill('#token-input', 'wrong');
  await page.click('#token-form button[type=submit]');
  await page.waitForFunction(() => document.getElementById('token-dialog').open && /refused/.test(document.getElementById('token-msg').textContent));
  await page.fill('#token-input', 's3cret-token');
  await page.click('#token-form button[type=submit]');
  await waitReady(page, 'overview', '');
  assert.equal(await page.locator('#token-dialog[open]').count(), 0);
  assert.equal(await page.evaluate(() => localStorage.getItem('seslog.token')), 's3cret-token');
  assert.match(await text(page, '#bounce-rate'), /Bounce rate/);
  // asked once: a new load goes straight to the view
  await page.reload();
  await waitReady(page, 'overview', '');
  assert.equal(await page.locator('#token-dialog[open]').count(), 0);
  await go(page, '#/suppression', 'suppression');
  assert.deepEqual(w.offsite, []);
  assert.deepEqual(w.errors, []);
  assert.deepEqual(w.dialogs, []);
});
