// browser-lists.test.mjs - the paged lists of the events and suppression
// views (web/js/pagedlist.js) in Debian's chromium: a reload aborts the one
// before without adding a listener to the view's signal each time (they
// piled up, one per filter change, for as long as the view was open), and
// "Load more" still pages through without a repeat.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startServer, runSeslog, tempDir, request } from './lib.mjs';
import { WEB, writeTraffic, launch, watch, load, waitReady, readyMark } from './browser-lib.mjs';

const T = { timeout: 120000 };
let srv;
let browser;

before(async () => {
  browser = await launch();
  const dir = tempDir('seslog-lists-');
  const file = path.join(dir, 'traffic.jsonl');
  const traffic = writeTraffic(file, { mails: 300 });
  const r = await runSeslog(['import', '--db', path.join(dir, 'seslog.db'), file], { timeout: 300e3 });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`imported ${traffic.events},`));
  fs.rmSync(file);
  srv = await startServer({ dir, args: ['--web', WEB] });
  // enough suppression entries for three pages of 100
  for (let i = 0; i < 230; i++) {
    const res = await request(srv.url, 'PUT', `/api/suppression/list-${String(i).padStart(3, '0')}%40pages.example`,
      { reason: 'MANUAL' }, { 'content-type': 'application/json' });
    assert.ok(res.status === 200 || res.status === 201, `PUT: ${res.status} ${res.text}`);
  }
});

after(async () => {
  if (srv) await srv.stop();
  if (browser) await browser.close();
});

/** A page whose AbortSignals count the 'abort' listeners added to each. */
async function countingPage(t) {
  const page = await browser.context.newPage();
  const w = watch(page);
  t.after(() => page.close().catch(() => {}));
  await page.addInitScript(() => {
    const counts = new WeakMap();
    let max = 0;
    const add = EventTarget.prototype.addEventListener;
    EventTarget.prototype.addEventListener = function (type, ...rest) {
      if (type === 'abort' && this instanceof AbortSignal) {
        const n = (counts.get(this) || 0) + 1;
        counts.set(this, n);
        if (n > max) max = n;
      }
      return add.call(this, type, ...rest);
    };
    window.maxAbortListeners = () => max;
  });
  page.check = () => {
    assert.deepEqual(w.offsite, [], 'requests that left 127.0.0.1');
    assert.deepEqual(w.errors, [], 'console errors');
  };
  return page;
}

test('events: ten filter changes add no abort listener; load more pages without a repeat', T, async (t) => {
  const page = await countingPage(t);
  await load(page, srv.url, '#/events', 'events');
  const first = await page.evaluate(() => window.maxAbortListeners());
  assert.ok(first >= 1, 'the view listens to its signal');
  const types = ['Bounce', 'Delivery', 'Send', 'Complaint', 'Open'];
  for (let i = 0; i < 10; i++) {
    const b = await readyMark(page);
    await page.evaluate((ty) => { location.hash = `#/events?type=${ty}`; }, types[i % types.length]);
    await waitReady(page, 'events', b);
  }
  assert.equal(await page.evaluate(() => window.maxAbortListeners()), first,
    'listeners on one signal grew with the reloads');

  const b = await readyMark(page);
  await page.evaluate(() => { location.hash = '#/events'; });
  await waitReady(page, 'events', b);
  const rows = page.locator('table.events-table tbody tr');
  assert.equal(await rows.count(), 100);
  await page.click('#load-more');
  await page.waitForFunction(() => document.querySelectorAll('table.events-table tbody tr').length === 200);
  assert.equal(await page.locator('#load-more').innerText(), 'Load more');
  const hrefs = await rows.evaluateAll((trs) => trs.map((tr) => tr.dataset.href));
  const api2 = [];
  let cursor = null;
  for (let i = 0; i < 2; i++) {
    const res = await request(srv.url, 'GET', `/api/events?limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    api2.push(...res.json.items);
    cursor = res.json.nextCursor;
  }
  assert.deepEqual(hrefs, api2.map((e) => `#/events/${encodeURIComponent(e.messageId)}`),
    'two pages, in order, none skipped or repeated');
  assert.match(await page.locator('.result-status').innerText(), /^200 events shown, more below/);
  page.check();
});

test('suppression: reason changes add no abort listener; load more reaches the end', T, async (t) => {
  const page = await countingPage(t);
  await load(page, srv.url, '#/suppression?search=pages.example', 'suppression');
  const rows = page.locator('#sup-table tbody tr');
  assert.equal(await rows.count(), 100);
  const first = await page.evaluate(() => window.maxAbortListeners());
  for (let i = 0; i < 10; i++) {
    await page.selectOption('#sup-filter-reason', i % 2 ? '' : 'MANUAL');
    await page.waitForFunction(() => !document.querySelector('#sup-table') || document.querySelectorAll('#sup-table tbody tr').length === 100);
  }
  assert.equal(await page.evaluate(() => window.maxAbortListeners()), first,
    'listeners on one signal grew with the reloads');
  await page.click('#load-more');
  await page.waitForFunction(() => document.querySelectorAll('#sup-table tbody tr').length === 200);
  await page.click('#load-more');
  await page.waitForFunction(() => document.querySelectorAll('#sup-table tbody tr').length === 230);
  assert.equal(await page.locator('#load-more').count(), 0, 'no "Load more" at the end');
  const addrs = await page.locator('#sup-table tbody td a.addr').allInnerTexts();
  assert.equal(new Set(addrs).size, 230);
  assert.match(await page.locator('.result-status').innerText(), /^230 entries matching/);
  page.check();
});
