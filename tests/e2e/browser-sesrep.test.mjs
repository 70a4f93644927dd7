// browser-sesrep.test.mjs - AWS's verdict on the overview (seslog serve
// --ses-reputation) in Debian's chromium (playwright-core, browser-lib.mjs):
// the account status at the top, AWS's rate beside each gauge with its
// monitor state, the note when seslog's and AWS's rates differ, AWS's series
// in the chart, AWS's failures shown; nothing of it on a server that does
// not watch. AWS is the loopback stand-in of awsstub.mjs; no request leaves
// 127.0.0.1, no console error, no horizontal scroll at 375 px.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, get } from './lib.mjs';
import { WEB, launch, watch, load, horizontalOverflow, screenshotPath } from './browser-lib.mjs';
import { AWS_ENV, waitFor } from './dynamodb-lib.mjs';
import { startAwsStub, errors } from './awsstub.mjs';
import { awsEnv as sqsAwsEnv } from './sqs-lib.mjs';

const T = { timeout: 60000 };
let browser;
let stub;
let denied;
let watching;
let failing;
let idle;

function awsEnv(url) {
  return {
    ...sqsAwsEnv(), ...AWS_ENV, AWS_ENDPOINT_URL: url, AWS_ENDPOINT_URL_CLOUDWATCH: '',
    AWS_ENDPOINT_URL_SESV2: '', AWS_IGNORE_CONFIGURED_ENDPOINT_URLS: '',
  };
}

async function aws(srv) {
  const r = await get(srv.url, '/api/stats', {}, { agent: false });
  assert.equal(r.status, 200, r.text);
  return r.json;
}

before(async () => {
  browser = await launch();
  stub = await startAwsStub();
  stub.setRate('Reputation.BounceRate', 0.031);
  stub.setRate('Reputation.ComplaintRate', 0.0002);
  stub.setRate('Reputation.BounceRate', 0.0123, { scope: 'configuration-set:marketing' });
  stub.account.EnforcementStatus = 'PROBATION';
  stub.account.SendQuota = { Max24HourSend: 50000, MaxSendRate: 14, SentLast24Hours: 1234 };
  denied = await startAwsStub();
  const refusal = () => {
    const e = errors.cloudwatch.accessDenied();
    e.json.message = 'User <b>seslog</b> is not authorized to perform: cloudwatch:GetMetricData';
    return e;
  };
  denied.fail('cloudwatch', ...Array.from({ length: 200 }, refusal));
  [watching, failing, idle] = await Promise.all([
    startServer({ args: ['--web', WEB, '--ses-reputation', '--ses-reputation-interval', '1s', '--ses-configuration-set', 'marketing'], env: awsEnv(stub.url) }),
    startServer({ args: ['--web', WEB, '--ses-reputation', '--ses-reputation-interval', '1h'], env: awsEnv(denied.url) }),
    startServer({ args: ['--web', WEB] }),
  ]);
  await waitFor(async () => {
    const s = await aws(watching);
    return s.aws.bounceRate !== null && s.aws.enforcementStatus && s.aws.divergence.length;
  });
  await waitFor(async () => (await aws(failing)).aws.errors.some((e) => e.api === 'cloudwatch'));
});

after(async () => {
  if (browser) await browser.close();
  for (const s of [watching, failing, idle]) if (s) await s.stop();
  for (const s of [stub, denied]) if (s) await s.close();
});

async function newPage(t, { width = 1440, height = 900, scheme = 'light' } = {}) {
  const page = await browser.context.newPage();
  await page.setViewportSize({ width, height });
  await page.emulateMedia({ colorScheme: scheme });
  const w = watch(page);
  t.after(() => page.close().catch(() => {}));
  page.w = w;
  page.check = () => {
    assert.deepEqual(w.offsite, [], 'requests that left 127.0.0.1');
    assert.deepEqual(w.errors, [], 'console errors');
    assert.deepEqual(w.dialogs, [], 'dialogs opened by the page');
  };
  return page;
}

/** The text of an element as one line (flex layout puts line breaks in innerText). */
async function line(loc) {
  return (await loc.textContent()).replace(/\s+/g, ' ').trim();
}

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

test('the account status at the top, AWS\'s rate beside each gauge, the divergence note, AWS\'s series in the chart', T, async (t) => {
  const page = await newPage(t);
  await load(page, watching.url, '#/?range=1h', 'overview');
  const bar = page.locator('#aws-status');
  await bar.waitFor();
  const pill = bar.locator('.pill');
  assert.equal((await pill.innerText()).trim(), 'PROBATION');
  assert.equal(await pill.evaluate((e) => getComputedStyle(e).color), await cssVarColour(page, '--warn'), 'probation is amber');
  const text = await bar.innerText();
  assert.match(text, /SES account \(AWS\)/);
  assert.match(text, /sending enabled/);
  assert.match(text, /1,234 of 50,000 sent in 24 h/);
  // seslog saw nothing (rate 0) while AWS says 3.1 %: the page says why that may be.
  const note = bar.locator('.aws-note[data-metric="bounceRate"]');
  assert.match(await note.innerText(), /seslog 0 %, AWS 3\.10 %\. AWS counts a higher rate than seslog sees: some events may not reach seslog/);
  assert.equal(await bar.locator('.aws-note[data-metric="complaintRate"]').count(), 0, 'the complaint rates are both far below the threshold');
  assert.equal(await line(bar.locator('.aws-set[data-set="marketing"]')), 'marketing bounce 1.23 % · complaint 0 %');

  const bounce = page.locator('#bounce-rate .aws-figure');
  assert.match(await line(bounce), /^AWS: 3\.10 % WARN CloudWatch, last 10 min/);
  assert.equal(await bounce.locator('.pill').evaluate((e) => getComputedStyle(e).color), await cssVarColour(page, '--warn'));
  assert.match(await line(page.locator('#complaint-rate .aws-figure')), /^AWS: 0\.020 % OK/);
  // AWS's figure marked on the gauge's own scale (0 to twice the alert threshold: 3.1 % of 10 %).
  const mark = page.locator('#bounce-rate .gauge-track .mark.other');
  assert.equal(await mark.getAttribute('title'), 'AWS 3.10 %');
  assert.match(await mark.getAttribute('style'), /left: 31(\.0+\d*)?%/);

  const path = page.locator('#chart-card .r-bounce path.line.aws');
  await path.waitFor({ state: 'attached' });
  const d = await path.getAttribute('d');
  assert.ok((d.match(/[ML]/g) || []).length >= 10, `AWS's bounce series has its points: ${d}`);
  assert.equal(await page.locator('#chart-card .r-complaint path.line.aws').count(), 1);
  assert.ok(page.w.requests.some((u) => u.includes('/api/timeseries') && u.includes('source=aws')));
  assert.match(await page.locator('#chart-card .card-note').innerText(), /AWS's own rate/);
  await page.locator('#aws-status').screenshot({ path: screenshotPath('overview-aws-status') });
  await page.locator('#rates').screenshot({ path: screenshotPath('overview-aws-gauges') });
  await page.locator('#chart-card').screenshot({ path: screenshotPath('overview-aws-chart') });
  page.check();
});

test('AWS refusing is shown on the page, as text', T, async (t) => {
  const page = await newPage(t);
  await load(page, failing.url, '#/', 'overview');
  const err = page.locator('#aws-status .aws-error[data-api="cloudwatch"]');
  await err.waitFor();
  const text = await err.innerText();
  assert.match(text, /^CloudWatch: access denied — HTTP 403 AccessDeniedException: User <b>seslog<\/b> is not authorized/);
  assert.match(text, /retrying/);
  assert.equal(await err.locator('b').count(), 0, 'AWS\'s message is never parsed as HTML');
  assert.match(await line(page.locator('#bounce-rate .aws-figure')), /AWS: not known yet/);
  page.check();
});

test('a server that does not watch AWS shows none of it', T, async (t) => {
  const page = await newPage(t);
  await load(page, idle.url, '#/', 'overview');
  await page.locator('#bounce-rate').waitFor();
  assert.equal(await page.locator('#aws-status').count(), 0);
  assert.equal(await page.locator('.aws-figure').count(), 0);
  assert.equal(await page.locator('path.line.aws').count(), 0);
  assert.ok(!page.w.requests.some((u) => u.includes('source=aws')), 'AWS\'s series is not asked for');
  page.check();
});

test('the status and figures fit a 375 px screen, dark too', T, async (t) => {
  const page = await newPage(t, { width: 375, height: 800, scheme: 'dark' });
  await load(page, watching.url, '#/', 'overview');
  await page.locator('#aws-status').waitFor();
  const o = await horizontalOverflow(page);
  assert.ok(o.scrollWidth <= o.clientWidth, `horizontal scroll at 375 px: ${JSON.stringify(o)}`);
  await page.locator('#aws-status').screenshot({ path: screenshotPath('overview-aws-375-dark') });
  page.check();
});
