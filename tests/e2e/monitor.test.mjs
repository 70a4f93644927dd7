// monitor.test.mjs - the bounce-rate and complaint-rate monitors (issue 6,
// CONTRACT sections 5 and 6): rates from the per-minute rollups, states
// ok/warn/alert with hysteresis, one Slack announcement per change, rows in
// monitor_changes, /metrics gauges, widening of a thin window, no traffic as
// rate 0, and silent topics. Slack is tests/e2e/slackstub.mjs.
//
// Rates are per recipient: a Send event's mail.destination recipients are
// sends; a permanent bounce's bouncedRecipients are permanent bounces. The
// SNS Timestamp decides an event's minute. Each scenario stamps all its
// events with one time (taken at its start), so the whole scenario sits in
// one minute of the rollups and its rates do not depend on a minute boundary
// passing during the test (with --rate-min-volume 1 an empty current minute
// widens the window back to that minute).

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import http from 'node:http';
import {
  startServer, signEnvelope, post, get, sqlite, sesFixture, uniqueBounce, assertStatus, sleep,
} from './lib.mjs';
import {
  startSlackStub, allText, monitorChange, fetchMetrics, poll,
} from './slackstub.mjs';

const PUBLIC = 'https://seslog.example.com';

const agents = new WeakMap();
function agentFor(srv) {
  if (!agents.has(srv)) agents.set(srv, new http.Agent({ keepAlive: true, maxSockets: 8 }));
  return agents.get(srv);
}

async function postSes(srv, ses, timestamp, topicArn) {
  const env = signEnvelope({ message: ses, timestamp, ...(topicArn ? { topicArn } : {}) });
  const res = await post(srv.url, '/sns', env, {}, { agent: agentFor(srv) });
  assertStatus(res, 'stored');
}

/** A Send event (SES event publishing) to n new recipients. */
async function sends(srv, n, timestamp) {
  const ses = sesFixture('ses-event-send-awsdocs');
  const tag = crypto.randomUUID();
  ses.mail.messageId = `send-${tag}`;
  ses.mail.destination = Array.from({ length: n }, (_, i) => `r${i}-${tag}@send.test`);
  await postSes(srv, ses, timestamp);
}

/** One permanent (General) bounce event with `recipients` bounced recipients. */
async function bounce(srv, timestamp, recipients = 1) {
  const tag = crypto.randomUUID();
  const ses = uniqueBounce(tag);
  const list = Array.from({ length: recipients }, (_, i) => `b${i}-${tag}@bounce.test`);
  ses.mail.destination = list;
  ses.bounce.bouncedRecipients = list.map((a) => ({ emailAddress: a, status: '5.1.1', action: 'failed', diagnosticCode: 'smtp; 550 5.1.1 user unknown' }));
  await postSes(srv, ses, timestamp);
}

async function complaint(srv, timestamp) {
  const ses = sesFixture('ses-notification-complaint-with-feedback-awsdocs');
  const tag = crypto.randomUUID();
  ses.mail.messageId = `complaint-${tag}`;
  ses.complaint.feedbackId = `cf-${tag}`;
  ses.complaint.complainedRecipients = [{ emailAddress: `c-${tag}@complaint.test` }];
  await postSes(srv, ses, timestamp);
}

function monitorMsgs(stub) {
  return stub.accepted().map((m) => ({ m, c: monitorChange(m) })).filter((x) => x.c);
}

function changesText(stub) {
  return JSON.stringify(stub.accepted().map((m) => m.text), null, 1);
}

async function waitChanges(stub, n, what) {
  await stub.waitFor(() => monitorMsgs(stub).length >= n, { timeout: 8000, what });
  return monitorMsgs(stub);
}

async function metricsOf(srv) {
  return fetchMetrics(get, srv);
}

function monitorArgs(stub, extra = []) {
  return [
    ...(stub ? ['--slack-webhook-url', stub.url] : []),
    '--public-url', PUBLIC,
    '--rate-window', '1m', '--rate-min-volume', '1',
    '--bounce-warn', '2.5', '--bounce-alert', '5',
    '--monitor-interval', '200ms', '--slack-max-per-minute', '1000',
    ...extra,
  ];
}

/** Waits until /metrics shows state (0/1/2) and rate (±tolerance) for a monitor. */
async function waitGauge(srv, monitor, state, rate, tol = 1e-4) {
  const rateName = monitor === 'bounceRate' ? 'seslog_bounce_rate' : 'seslog_complaint_rate';
  let last;
  const ok = await poll(async () => {
    last = await metricsOf(srv);
    return last.series.get(`seslog_monitor_state{monitor="${monitor}"}`) === state &&
      Math.abs(last.series.get(rateName) - rate) <= tol;
  }, { timeout: 4000, interval: 100 });
  assert.ok(ok, `${monitor}: expected state ${state} and rate ${rate}; /metrics has state ` +
    `${last.series.get(`seslog_monitor_state{monitor="${monitor}"}`)} and rate ${last.series.get(rateName)}`);
  return last;
}

describe('rate monitors', { concurrency: true }, () => {
  test('bounce rate over warn, then over alert: exactly two announcements; hovering under a threshold does not flap', { timeout: 60000 }, async (t) => {
    const stub = await startSlackStub();
    t.after(() => stub.close());
    const args = monitorArgs(stub);
    const srv = await startServer({ t, args });
    const ts = new Date().toISOString();

    // nothing yet: rate 0, ok
    await waitGauge(srv, 'bounceRate', 0, 0);

    // 100 sends, 3 permanent bounces: 3 % >= 2.5 % -> warn
    await sends(srv, 100, ts);
    for (let i = 0; i < 3; i++) await bounce(srv, ts);
    let got = await waitChanges(stub, 1, 'the ok -> warn announcement');
    assert.deepEqual(got[0].c, { monitor: 'bounceRate', from: 'ok', to: 'warn' }, changesText(stub));
    await waitGauge(srv, 'bounceRate', 1, 0.03);
    const warnMsg = got[0].m;
    const warnText = allText(warnMsg);
    assert.match(warnMsg.text, /3\.0+ %/, `the value: ${warnMsg.text}`);
    assert.match(warnMsg.text, /2\.50* %/, `the threshold: ${warnMsg.text}`);
    assert.ok(warnMsg.text.startsWith('<!here>'), `a change to warn mentions: ${warnMsg.text}`);
    assert.ok(Array.isArray(warnMsg.blocks) && warnMsg.blocks.length > 0);
    assert.ok(warnText.includes(`${PUBLIC}/#/`), `no link: ${warnText}`);

    // 125 sends: 3/125 = 2.4 %, between 90 % and 100 % of warn: stays warn
    await sends(srv, 25, ts);
    await waitGauge(srv, 'bounceRate', 1, 0.024);
    await sleep(1000); // five evaluations
    assert.equal(monitorMsgs(stub).length, 1, `flapped under the warn threshold: ${changesText(stub)}`);
    await waitGauge(srv, 'bounceRate', 1, 0.024);

    // 7 bounces of 125: 5.6 % >= 5 % -> alert
    for (let i = 0; i < 4; i++) await bounce(srv, ts);
    got = await waitChanges(stub, 2, 'the warn -> alert announcement');
    assert.deepEqual(got[1].c, { monitor: 'bounceRate', from: 'warn', to: 'alert' }, changesText(stub));
    assert.match(got[1].m.text, /5\.60* %/, got[1].m.text);
    assert.match(got[1].m.text, /threshold 5\.0+ %/, got[1].m.text);
    await waitGauge(srv, 'bounceRate', 2, 0.056);

    // 145 sends: 7/145 = 4.83 %, between 4.5 % and 5 %: stays alert
    await sends(srv, 20, ts);
    await waitGauge(srv, 'bounceRate', 2, 7 / 145);
    await sleep(1000);
    const hover = await waitGauge(srv, 'bounceRate', 2, 7 / 145);

    await t.test('exactly two announcements, ok -> warn then warn -> alert', () => {
      const list = monitorMsgs(stub).map((x) => x.c);
      assert.deepEqual(list, [
        { monitor: 'bounceRate', from: 'ok', to: 'warn' },
        { monitor: 'bounceRate', from: 'warn', to: 'alert' },
      ], changesText(stub));
    });
    await t.test('monitor_changes has the two rows', async () => {
      const rows = await sqlite(srv.db, 'SELECT monitor, fromState, toState, value, threshold, sends, windowMs FROM monitor_changes ORDER BY id');
      assert.deepEqual(rows.map((r) => [r.monitor, r.fromState, r.toState]),
        [['bounceRate', 'ok', 'warn'], ['bounceRate', 'warn', 'alert']], JSON.stringify(rows));
      assert.ok(Math.abs(rows[0].value - 0.03) < 1e-9, `value ${rows[0].value}`);
      assert.ok(Math.abs(rows[0].threshold - 0.025) < 1e-9, `threshold ${rows[0].threshold}`);
      assert.equal(rows[0].sends, 100);
      assert.ok(Math.abs(rows[1].value - 0.056) < 1e-9, `value ${rows[1].value}`);
      assert.ok(Math.abs(rows[1].threshold - 0.05) < 1e-9, `threshold ${rows[1].threshold}`);
      assert.equal(rows[1].sends, 125);
      for (const r of rows) assert.ok(r.windowMs >= 60000, `windowMs ${r.windowMs}`);
    });
    await t.test('/metrics: seslog_monitor_state 2, seslog_bounce_rate 0.048, complaint monitor ok', () => {
      assert.equal(hover.series.get('seslog_monitor_state{monitor="bounceRate"}'), 2);
      assert.ok(Math.abs(hover.series.get('seslog_bounce_rate') - 7 / 145) < 1e-4, `seslog_bounce_rate ${hover.series.get('seslog_bounce_rate')}`);
      assert.equal(hover.series.get('seslog_monitor_state{monitor="complaintRate"}'), 0);
      assert.equal(hover.series.get('seslog_complaint_rate'), 0);
    });
    // 160 sends: 7/160 = 4.375 % < 90 % of 5 %: back to warn, announced
    await sends(srv, 15, ts);
    got = await waitChanges(stub, 3, 'the alert -> warn announcement');
    assert.deepEqual(got[2].c, { monitor: 'bounceRate', from: 'alert', to: 'warn' }, changesText(stub));
    await waitGauge(srv, 'bounceRate', 1, 7 / 160);
    await srv.stop();

    // a restart announces nothing already announced
    const again = await startServer({ t, dir: srv.dir, args });
    await waitGauge(again, 'bounceRate', 1, 7 / 160);
    await sleep(1000);
    assert.equal(monitorMsgs(stub).length, 3, `announced again after a restart: ${changesText(stub)}`);
    const rows = await sqlite(again.db, 'SELECT count(*) AS n FROM monitor_changes');
    assert.equal(rows[0].n, 3);
    await again.stop();
    t.diagnostic('de-escalation and restart checked');
  });

  test('/api/stats shows the monitor\'s state (with hysteresis), as monitor_changes and /metrics do', { timeout: 30000 }, async (t) => {
    // issue 6: "every change of state is stored, shown in /api/stats"; the
    // CONTRACT's /api/stats has monitors.bounceRate.state. A rate just under
    // the alert threshold after an alert is still "alert" for the monitor.
    const stub = await startSlackStub();
    t.after(() => stub.close());
    const srv = await startServer({ t, args: monitorArgs(stub) });
    const ts = new Date().toISOString();
    await sends(srv, 100, ts);
    await bounce(srv, ts, 6); // 6 %: alert
    await waitGauge(srv, 'bounceRate', 2, 0.06);
    await sends(srv, 25, ts); // 6/125 = 4.8 %: between 4.5 % and 5 %, the monitor stays in alert
    await waitGauge(srv, 'bounceRate', 2, 0.048);
    const res = await get(srv.url, '/api/stats?window=1m', {}, { agent: false });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.monitors?.bounceRate?.state, 'alert',
      `/api/stats says "${res.json.monitors?.bounceRate?.state}" while the monitor (/metrics, monitor_changes, Slack) is in alert: ${res.text}`);
    await srv.stop();
  });

  test('complaint rate straight over alert: one announcement ok -> alert', { timeout: 30000 }, async (t) => {
    const stub = await startSlackStub();
    t.after(() => stub.close());
    const srv = await startServer({ t, args: monitorArgs(stub, ['--complaint-warn', '0.05', '--complaint-alert', '0.1']) });
    const ts = new Date().toISOString();
    await sends(srv, 800, ts);
    await complaint(srv, ts); // 1/800 = 0.125 %
    const got = await waitChanges(stub, 1, 'the complaint announcement');
    await waitGauge(srv, 'complaintRate', 2, 1 / 800, 1e-6);
    await sleep(800);
    const list = monitorMsgs(stub).map((x) => x.c);
    assert.deepEqual(list, [{ monitor: 'complaintRate', from: 'ok', to: 'alert' }], changesText(stub));
    assert.match(got[0].m.text, /Complaint rate/);
    assert.match(got[0].m.text, /0\.125 %/, got[0].m.text);
    assert.match(got[0].m.text, /threshold 0\.100 %/, got[0].m.text);
    const m = await metricsOf(srv);
    assert.equal(m.series.get('seslog_monitor_state{monitor="bounceRate"}'), 0, 'the bounce monitor moved without bounces');
    const rows = await sqlite(srv.db, 'SELECT monitor, fromState, toState, sends FROM monitor_changes');
    assert.deepEqual(rows, [{ monitor: 'complaintRate', fromState: 'ok', toState: 'alert', sends: 800 }]);
    await srv.stop();
  });

  test('no traffic: rates 0, states ok, nothing announced', { timeout: 20000 }, async (t) => {
    const stub = await startSlackStub();
    t.after(() => stub.close());
    const srv = await startServer({ t, args: monitorArgs(stub) });
    await sleep(1000); // five evaluations
    const m = await waitGauge(srv, 'bounceRate', 0, 0);
    assert.equal(m.series.get('seslog_complaint_rate'), 0);
    assert.equal(m.series.get('seslog_monitor_state{monitor="complaintRate"}'), 0);
    assert.ok(!/level=(warn|error)[^\n]*monitor/.test(srv.stderr), `the monitor complained about an empty database:\n${srv.stderr}`);
    assert.equal(stub.requests.length, 0);
    assert.deepEqual(await sqlite(srv.db, 'SELECT * FROM monitor_changes'), []);
    const stats = await get(srv.url, '/api/stats', {}, { agent: false });
    assert.equal(stats.status, 200, stats.text);
    assert.equal(stats.json.bounceRate, 0);
    assert.equal(stats.json.complaintRate, 0);
    assert.equal(stats.json.monitors.bounceRate.state, 'ok');
    assert.equal(stats.json.monitors.complaintRate.state, 'ok');
    await srv.stop();
  });

  test('a window with fewer sends than --rate-min-volume is widened back in time; a full one is not', { timeout: 30000 }, async (t) => {
    const stub = await startSlackStub();
    t.after(() => stub.close());
    const srv = await startServer({ t, args: monitorArgs(stub, ['--rate-min-volume', '50']) });
    // five minutes ago: 100 sends, 10 permanent bounces (one event) = 10 %
    const old = new Date(Date.now() - 5 * 60000).toISOString();
    await sends(srv, 100, old);
    await bounce(srv, old, 10);
    let got = await waitChanges(stub, 1, 'the announcement over the widened window');
    assert.deepEqual(got.map((x) => x.c), [{ monitor: 'bounceRate', from: 'ok', to: 'alert' }], changesText(stub));
    await waitGauge(srv, 'bounceRate', 2, 0.1);
    const rows = await sqlite(srv.db, 'SELECT windowMs, sends FROM monitor_changes');
    assert.equal(rows[0].sends, 100);
    assert.ok(rows[0].windowMs >= 6 * 60000 && rows[0].windowMs <= 8 * 60000,
      `the window should have been widened to about 6 minutes, was ${rows[0].windowMs} ms`);
    // now 100 sends in the current minute: enough volume, the window stays 1m: rate 0
    await sends(srv, 100, new Date().toISOString());
    got = await waitChanges(stub, 2, 'the alert -> ok announcement');
    assert.deepEqual(got[1].c, { monitor: 'bounceRate', from: 'alert', to: 'ok' }, changesText(stub));
    assert.ok(!/<!(here|channel)>/.test(allText(got[1].m)), `a change back to ok should not mention anyone: ${got[1].m.text}`);
    await waitGauge(srv, 'bounceRate', 0, 0);
    await srv.stop();
  });

  test('--silence-alert: a topic silent for longer is announced once; an unsubscribed one is not', { timeout: 30000 }, async (t) => {
    const stub = await startSlackStub();
    t.after(() => stub.close());
    const quiet = 'arn:aws:sns:us-east-1:123456789012:quiet-topic';
    const gone = 'arn:aws:sns:us-east-1:123456789012:gone-topic';
    const srv = await startServer({
      t,
      args: ['--slack-webhook-url', stub.url, '--silence-alert', '1s', '--monitor-interval', '200ms',
        '--bounce-warn', '1000', '--bounce-alert', '1000', '--complaint-warn', '1000', '--complaint-alert', '1000'],
    });
    const ses = sesFixture('ses-event-delivery-awsdocs');
    ses.mail.messageId = `d-${crypto.randomUUID()}`;
    await postSes(srv, ses, new Date().toISOString(), quiet);
    const ses2 = sesFixture('ses-event-delivery-awsdocs');
    ses2.mail.messageId = `d-${crypto.randomUUID()}`;
    await postSes(srv, ses2, new Date().toISOString(), gone);
    const unsub = signEnvelope({ type: 'UnsubscribeConfirmation', topicArn: gone, message: 'You have chosen to deactivate subscription.' });
    assert.equal((await post(srv.url, '/sns', unsub, {}, { agent: agentFor(srv) })).status, 200);
    const silent = (topic) => stub.accepted().filter((m) => /silent|no message/i.test(allText(m)) && allText(m).includes(topic));
    await stub.waitFor(() => silent(quiet).length >= 1, { timeout: 6000, what: 'the silence announcement' });
    await sleep(1500);
    assert.equal(silent(quiet).length, 1, `announced more than once: ${JSON.stringify(stub.accepted().map((m) => m.text))}`);
    assert.equal(silent(gone).length, 0, 'an unsubscribed topic was announced as silent');
    await srv.stop();
  });
});
