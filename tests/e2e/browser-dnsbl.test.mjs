// browser-dnsbl.test.mjs - the overview's "Blocklists" card in Debian's
// chromium (playwright-core, see browser-lib.mjs) against the real server,
// whose blocklist zones are served by dnsstub.mjs: a listed zone shows red
// with its reason and since, a clean one green, the header counts the
// listings, "Check now" runs a round and the card follows it; a server
// watching nothing shows the one-line hint. No request leaves 127.0.0.1, no
// console error, no horizontal scroll at 375 px; a screenshot of the card
// goes to tests/artifacts/.
//
// chromium and playwright-core come from scripts/install-deps.sh; when
// either is missing the suite fails, it never skips.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, get, sleep } from './lib.mjs';
import { WEB, launch, watch, load, horizontalOverflow, screenshotPath } from './browser-lib.mjs';
import { startDnsStub } from './dnsstub.mjs';

const T = { timeout: 60000 };
const REASON = 'Listed by bl.test: https://bl.test/q?ip=192.0.2.11 <b>not html</b>';
const HINT = 'Not watching any IP or domain: start seslog with --dnsbl-ip / --dnsbl-domain';

let browser;
let dns;
let watching;
let idle;

async function dnsbl(srv) {
  const r = await get(srv.url, '/api/dnsbl', {}, { agent: false });
  assert.equal(r.status, 200, `GET /api/dnsbl: ${r.status} ${r.text}`);
  return r.json;
}

before(async () => {
  browser = await launch();
  dns = await startDnsStub({
    records: { '11.2.0.192.bl.test': { a: ['127.0.0.2'], txt: [REASON] } },
  });
  [watching, idle] = await Promise.all([
    startServer({
      args: ['--web', WEB, '--dns-server', dns.server, '--dns-timeout', '200ms', '--dnsbl-interval', '1h',
        '--dnsbl-ip', '192.0.2.11', '--dnsbl-domain', 'example.com',
        '--dnsbl-zone', 'ip:bl.test', '--dnsbl-zone', 'ip:zz.test', '--dnsbl-zone', 'domain:dbl.test'],
    }),
    startServer({ args: ['--web', WEB] }),
  ]);
  // the first round, before any page looks
  const end = Date.now() + 10000;
  for (;;) {
    const b = await dnsbl(watching);
    if (b.lastRunAt && !b.running) break;
    assert.ok(Date.now() < end, `no DNSBL round within 10 s: ${JSON.stringify(b)}`);
    await sleep(50);
  }
});

after(async () => {
  if (browser) await browser.close();
  if (watching) await watching.stop();
  if (idle) await idle.stop();
  if (dns) await dns.close();
});

async function newPage(t, { width = 1440, height = 900, scheme = 'light' } = {}) {
  const page = await browser.context.newPage();
  await page.setViewportSize({ width, height });
  await page.emulateMedia({ colorScheme: scheme });
  const w = watch(page);
  t.after(() => page.close().catch(() => {}));
  page.check = () => {
    assert.deepEqual(w.offsite, [], 'requests that left 127.0.0.1');
    assert.deepEqual(w.errors, [], 'console errors');
    assert.deepEqual(w.dialogs, [], 'dialogs opened by the page');
  };
  return page;
}

/** The computed colour of a CSS variable of the page, as getComputedStyle writes colours. */
function cssVarColour(page, name) {
  return page.evaluate((n) => {
    const el = document.createElement('span');
    el.style.color = `var(${n})`;
    document.body.appendChild(el);
    const c = getComputedStyle(el).color;
    el.remove();
    return c;
  }, name);
}

const zoneRow = (page, target, zone) => page.locator(`#dnsbl [data-target="${target}"] [data-zone="${zone}"]`);

test('a listed IP: its zone red with the reason and since, the clean ones green, the count in the header; Check now follows a round', T, async (t) => {
  const page = await newPage(t);
  await load(page, watching.url, '#/', 'overview');
  const card = page.locator('#dnsbl');
  await card.waitFor();
  assert.match(await card.locator('h2').innerText(), /^Blocklists$/);
  assert.equal((await page.locator('#dnsbl-count').innerText()).trim(), '1 listed');

  const listed = zoneRow(page, '192.0.2.11', 'bl.test');
  assert.equal(await listed.count(), 1, 'one row for 192.0.2.11 on bl.test');
  assert.equal(await listed.getAttribute('data-state'), 'listed');
  const pill = listed.locator('.pill');
  assert.equal((await pill.innerText()).trim(), 'listed');
  const rowText = await listed.innerText();
  assert.ok(rowText.includes(REASON), `the reason, as text: ${rowText}`);
  assert.ok(rowText.includes('127.0.0.2'), `the answer: ${rowText}`);
  assert.match(rowText, /since /);
  assert.equal(await listed.locator('b').count(), 0, 'the reason is never parsed as HTML');
  const alert = await cssVarColour(page, '--alert');
  const ok = await cssVarColour(page, '--ok');
  assert.notEqual(alert, ok);
  assert.equal(await pill.evaluate((e) => getComputedStyle(e).color), alert, 'listed is red');

  const clean = zoneRow(page, '192.0.2.11', 'zz.test');
  assert.equal(await clean.getAttribute('data-state'), 'not_listed');
  assert.equal((await clean.locator('.pill').innerText()).trim(), 'not listed');
  assert.equal(await clean.locator('.pill').evaluate((e) => getComputedStyle(e).color), ok, 'not listed is green');
  const domain = zoneRow(page, 'example.com', 'dbl.test');
  assert.equal(await domain.getAttribute('data-state'), 'not_listed', 'the domain on its domain zone');
  assert.equal(await page.locator('#dnsbl [data-target="192.0.2.11"] [data-zone="dbl.test"]').count(), 0, 'no IP row on a domain zone');
  await card.screenshot({ path: screenshotPath('overview-dnsbl-listed') });

  // the list drops the IP; "Check now" runs a round and the card shows it
  dns.set('11.2.0.192.bl.test', 'nxdomain');
  const before = (await dnsbl(watching)).lastRunAt;
  await page.locator('#dnsbl-check').click();
  await page.waitForFunction(() => {
    const row = document.querySelector('#dnsbl [data-target="192.0.2.11"] [data-zone="bl.test"]');
    return row && row.dataset.state === 'not_listed';
  }, null, { timeout: 15000 });
  assert.notEqual((await dnsbl(watching)).lastRunAt, before, 'the button started a round');
  assert.equal((await page.locator('#dnsbl-count').innerText()).trim(), 'none listed');
  assert.equal(await zoneRow(page, '192.0.2.11', 'bl.test').locator('.pill').evaluate((e) => getComputedStyle(e).color), ok);
  page.check();
  dns.set('11.2.0.192.bl.test', { a: ['127.0.0.2'], txt: [REASON] });
});

test('the card fits a 375 px screen, dark too', T, async (t) => {
  const page = await newPage(t, { width: 375, height: 800, scheme: 'dark' });
  await load(page, watching.url, '#/', 'overview');
  await page.locator('#dnsbl [data-zone="bl.test"]').waitFor();
  const o = await horizontalOverflow(page);
  assert.ok(o.scrollWidth <= o.clientWidth, `horizontal scroll at 375 px: ${JSON.stringify(o)}`);
  await page.locator('#dnsbl').screenshot({ path: screenshotPath('overview-dnsbl-375-dark') });
  page.check();
});

test('nothing watched: the card says how to start watching', T, async (t) => {
  const page = await newPage(t);
  await load(page, idle.url, '#/', 'overview');
  const hint = page.locator('#dnsbl #dnsbl-hint');
  await hint.waitFor();
  assert.equal((await hint.innerText()).trim(), HINT);
  assert.equal(await page.locator('#dnsbl .dnsbl-zone').count(), 0);
  assert.equal(await page.locator('#dnsbl-check').count(), 0, 'no Check now button when nothing is watched');
  page.check();
});
