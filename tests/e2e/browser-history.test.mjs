// browser-history.test.mjs - the first screen after `seslog simulate
// --history 30d`: the overview's 30-day chart shows a bar for every day
// of the month (not one bar), and the bad bounce day stands out.
//
// chromium and playwright-core come from scripts/install-deps.sh; when
// either is missing the test fails, it never skips.

import test from 'node:test';
import assert from 'node:assert/strict';
import { startServer, runSeslog, get } from './lib.mjs';
import { WEB, launch, watch, load, screenshotPath } from './browser-lib.mjs';

test('overview after simulate --history 30d: the 30 d chart shows the month', { timeout: 180000 }, async (t) => {
  const browser = await launch();
  t.after(() => browser.close());
  const srv = await startServer({ t, args: ['--web', WEB] });
  const r = await runSeslog(['simulate', '--url', srv.url, '--sns-cert-dir', srv.certDir,
    '--history', '30d', '--per-day', '200'], { timeout: 170000 });
  assert.equal(r.code, 0, r.stderr);
  const bad = r.stdout.match(/bad days: bounces (\d{4}-\d\d-\d\d)/)[1];

  const page = await browser.context.newPage();
  await page.setViewportSize({ width: 1440, height: 900 });
  const w = watch(page);
  await load(page, srv.url, '#/?range=30d', 'overview');
  const pts = (await get(srv.url, '/api/timeseries?since=30d&bucket=1d')).json.points;
  const days = pts.filter((p) => p.sends > 0).length;
  assert.ok(days >= 30, `${days} days with sends`);
  const bars = await page.locator('#chart-card rect.b-send').count();
  assert.ok(bars >= 29 && Math.abs(bars - days) <= 1, `30 d chart: ${bars} bars for ${days} days`);
  // the bad day's bounces are drawn: its bounce bar is the tallest
  const bounceBars = await page.locator('#chart-card rect.b-bounce').evaluateAll((els) => els.map((e) => Number(e.getAttribute('height'))));
  assert.ok(bounceBars.length >= 10, `${bounceBars.length} bounce bars`);
  const sorted = [...bounceBars].sort((x, y) => x - y);
  assert.ok(sorted.at(-1) > 2 * sorted[Math.floor(sorted.length / 2)], `bounce bar heights ${bounceBars}`);
  const badPoint = pts.find((p) => p.t.startsWith(bad));
  assert.ok(badPoint.bounces === Math.max(...pts.map((p) => p.bounces)), `the bad day ${bad} has the most bounces`);
  await page.screenshot({ path: screenshotPath('overview-history-30d-1440-light') });
  assert.deepEqual(w.offsite, []);
  assert.deepEqual(w.errors, []);
  await page.close();
  await srv.stop();
});
