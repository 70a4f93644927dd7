// browser-sqs.test.mjs - the Subscriptions view's "Queues" card in Debian's
// chromium (playwright-core, see browser-lib.mjs) against the real server
// polling a real SQS-compatible server (fauxqs): the queue with its state,
// counts and the refused message with its receive count; a server without
// queues shows no card. No request leaves 127.0.0.1, no console error, no
// horizontal scroll at 375 px.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, signEnvelope, countEvents, uniqueBounce, get } from './lib.mjs';
import { WEB, launch, watch, load, horizontalOverflow, screenshotPath } from './browser-lib.mjs';
import { startSqs, sqsArgs, awsEnv, waitFor } from './sqs-lib.mjs';

const T = { timeout: 60000 };

let browser;
let sqs;
let srv;
let q;

before(async () => {
  browser = await launch();
  sqs = await startSqs();
  q = sqs.createQueue('ses-browser', { VisibilityTimeout: '60' });
  srv = await startServer({ env: awsEnv(), args: ['--web', WEB, ...sqsArgs(sqs, { queues: [q.queueUrl] })] });
  await sqs.send(q.queueUrl, signEnvelope({ message: uniqueBounce() }));
  await sqs.send(q.queueUrl, uniqueBounce()); // unsigned, on a queue not declared raw
  await waitFor(async () => (await countEvents(srv.db)) === 1);
  await waitFor(async () => (await get(srv.url, '/api/sources')).json.queues[0].refused === 1);
});

after(async () => {
  if (browser) await browser.close();
  if (srv) await srv.stop();
  if (sqs) await sqs.stop();
});

test('subscriptions: the Queues card shows the queue, its counts and the refused message', T, async (t) => {
  for (const width of [1440, 375]) {
    const page = await browser.context.newPage();
    t.after(() => page.close().catch(() => {}));
    await page.setViewportSize({ width, height: 900 });
    const w = watch(page);
    await load(page, srv.url, '#/subscriptions', 'subscriptions');
    const row = page.locator('#queue-table tr[data-queue="ses-browser"]');
    assert.equal(await row.count(), 1);
    const cells = await row.locator('td').allInnerTexts();
    assert.match(cells[0], /ses-browser/);
    assert.match(cells[0], new RegExp(q.queueUrl.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
    assert.equal(cells[1].trim(), 'polling');
    assert.deepEqual(cells.slice(3, 7).map((x) => x.trim()), ['2', '1', '0', '1']);
    const ref = await page.locator('#queue-refusals tbody tr td').allInnerTexts();
    assert.equal(ref[1].trim(), 'ses-browser');
    assert.equal(ref[2].trim(), 'raw_not_allowed');
    assert.equal(ref[4].trim(), '1');
    assert.match(await page.locator('#queues').innerText(), /AWS credentials: environment \(AKIDSQSTESTENVIRON01\)/);
    const o = await horizontalOverflow(page);
    assert.ok(o.scrollWidth <= o.clientWidth, `horizontal scroll at ${width} px: ${JSON.stringify(o)}`);
    if (width === 1440) await page.locator('#queues').screenshot({ path: screenshotPath('subscriptions-queues-1440') });
    assert.deepEqual(w.offsite, [], 'requests that left 127.0.0.1');
    assert.deepEqual(w.errors, [], 'console errors');
  }
});

test('subscriptions: no Queues card without --sqs-queue-url', T, async (t) => {
  const plain = await startServer({ t, args: ['--web', WEB] });
  const page = await browser.context.newPage();
  t.after(() => page.close().catch(() => {}));
  const w = watch(page);
  await load(page, plain.url, '#/subscriptions', 'subscriptions');
  assert.equal(await page.locator('#queues').count(), 0);
  assert.equal(await page.locator('#topics').count(), 1);
  assert.deepEqual(w.errors, [], 'console errors');
  await plain.stop();
});
