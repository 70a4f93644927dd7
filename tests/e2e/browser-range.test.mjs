// browser-range.test.mjs - an archive in the log browser (issue 18): a
// month of traffic that ended 40 days ago, imported, then browsed in
// Debian's chromium (playwright-core). The overview opens on the range of
// the data and says so; the domains that bounce most are ranked over the
// whole range (checked against a count in SQL); the absolute range picker
// (from/to days) drives the overview and the events view and is kept in
// the URL; numbers on the page are those of the API for that range.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startServer, runSeslog, tempDir, get, sqlite, domainSql } from './lib.mjs';
import { WEB, writeTraffic, launch, watch, load, waitReady, readyMark, screenshotPath } from './browser-lib.mjs';

const T = { timeout: 90000 };
const DAY = 86400e3;
const END = Date.now() - 40 * DAY; // the archive's newest events

let srv;
let browser;

async function apiJson(p) {
  const r = await get(srv.url, p);
  assert.equal(r.status, 200, `${p}: ${r.status} ${r.text}`);
  return r.json;
}

before(async () => {
  browser = await launch();
  const dir = tempDir('seslog-brange-');
  const file = path.join(dir, 'traffic.jsonl');
  const traffic = writeTraffic(file, { mails: 1500, now: END });
  const r = await runSeslog(['import', '--db', path.join(dir, 'seslog.db'), file], { timeout: 600e3 });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`imported ${traffic.events}, duplicates 0, rejected 0`));
  fs.rmSync(file);
  srv = await startServer({ dir, args: ['--web', WEB, '--read-only'] });
});

after(async () => {
  if (browser) await browser.close();
  if (srv) await srv.stop();
});

async function newPage(t) {
  const page = await browser.context.newPage();
  await page.setViewportSize({ width: 1440, height: 900 });
  const w = watch(page);
  t.after(() => page.close().catch(() => {}));
  page.check = () => {
    assert.deepEqual(w.offsite, [], 'requests that left 127.0.0.1');
    assert.deepEqual(w.errors, [], 'console errors');
  };
  return page;
}

const text = (page, sel) => page.locator(sel).first().innerText();
const day = (ms) => new Date(ms).toISOString().slice(0, 10);

test('overview on an old archive: the range of the data, said so; domains ranked over the whole range', T, async (t) => {
  const page = await newPage(t);
  await load(page, srv.url, '#/', 'overview');
  const stats = await apiJson('/api/stats');
  assert.equal(stats.range, 'data');
  const note = await text(page, '#range-note');
  assert.match(note, /Nothing arrived recently: showing the stored data/);
  assert.ok(note.includes(stats.since.slice(0, 10)), `${note} names the first day ${stats.since}`);
  // the tiles count the whole archive
  const tiles = await text(page, '#volume');
  assert.ok(tiles.replace(/,/g, '').includes(String(stats.sends)), `${tiles} has ${stats.sends} sends`);
  // the domains that bounce most: recipients of every bounce of the range, not a sample
  const want = await sqlite(srv.db, `SELECT ${domainSql()} AS domain, count(*) n FROM recipients WHERE notificationType = 0 /* Bounce: its code, schema version 23 */ GROUP BY 1 ORDER BY n DESC, domain LIMIT 6`);
  const labels = await page.locator('#bounce-domains .bl-label').allInnerTexts();
  assert.deepEqual(labels, want.map((w) => w.domain));
  assert.match(await text(page, '#bounce-domains'), /over the whole range/);
  // the chart shows the archive's days, not an empty "last 24 hours"
  assert.ok(await page.locator('#chart-card rect.b-send').count() > 5, 'bars in the chart');
  await page.screenshot({ path: screenshotPath('overview-archive-1440-light'), fullPage: true });
  page.check();
});

test('the range picker: the overview and the events view follow it, and the URL keeps it', T, async (t) => {
  const page = await newPage(t);
  await load(page, srv.url, '#/', 'overview');
  const from = day(END - 10 * DAY);
  const to = day(END - 4 * DAY);
  const until = day(Date.parse(`${to}T00:00:00Z`) + DAY); // the last day is included
  let before = await readyMark(page);
  await page.fill('#range-from', from);
  await page.fill('#range-to', to);
  await page.click('#range-apply');
  await waitReady(page, 'overview', before);
  assert.ok(page.url().endsWith(`#/?since=${from}&until=${until}`), page.url());
  const rs = await apiJson(`/api/stats?since=${from}&until=${until}`);
  assert.equal(rs.range, 'explicit');
  const tiles = (await text(page, '#volume')).replace(/,/g, '');
  assert.ok(tiles.includes(String(rs.sends)) && tiles.includes(String(rs.bounces)), `${tiles} vs ${JSON.stringify(rs)}`);
  assert.match(await text(page, '#range-note'), new RegExp(`${from} to ${to}`));
  // links to the events keep the range
  assert.match(await page.locator('#volume a').first().getAttribute('href'), new RegExp(`since=${from}&until=${until}`));
  // a reload keeps it (it lives in the URL); the picker shows the days
  await load(page, srv.url, `#/?since=${from}&until=${until}`, 'overview');
  assert.equal(await page.inputValue('#range-from'), from);
  assert.equal(await page.inputValue('#range-to'), to);
  // a backwards range is refused in the picker, nothing changes
  await page.fill('#range-from', to);
  await page.fill('#range-to', from);
  await page.click('#range-apply');
  assert.match(await text(page, '.range-picker [role="alert"]'), /not after the last/);
  assert.ok(page.url().endsWith(`#/?since=${from}&until=${until}`));

  // the events view: the same picker under "Custom range…"
  await load(page, srv.url, '#/events?type=Bounce', 'events');
  await page.selectOption('#f-range', 'custom');
  before = await readyMark(page);
  await page.fill('#ev-range-from', from);
  await page.fill('#ev-range-to', to);
  await page.click('#ev-range-apply');
  await waitReady(page, 'events', before);
  assert.match(page.url(), new RegExp(`#/events\\?type=Bounce&since=${from}&until=${until}$`));
  const api = await apiJson(`/api/events?type=Bounce&since=${from}&until=${until}&limit=100`);
  const rows = page.locator('table.events-table tbody tr');
  assert.equal(await rows.count(), api.items.length);
  assert.ok(api.items.length > 0);
  assert.equal(await rows.first().getAttribute('data-href'), `#/events/${encodeURIComponent(api.items[0].messageId)}`);
  page.check();
});
