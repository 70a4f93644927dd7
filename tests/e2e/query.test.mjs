// query.test.mjs - the query API: every filter of GET /api/events alone and
// combined, both orders, small pages that never skip or repeat (also while
// new events are posted), one mail's events with their raw JSON, an
// address's history, /api/stats and /api/timeseries from the rollups
// (empty windows give rate 0), malformed parameters, the time limit, and
// --api-token.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import {
  startServer, runSeslog, tempDir, get, post, signEnvelope, assertError, BIN, sqlite,
  domainSql,
} from './lib.mjs';
import { writeEvents, sortEvents, matchEvents, countsOf, SOURCES } from './query-data.mjs';

const T = { timeout: 60000 };
let srv;
let data;

before(async () => {
  const dir = tempDir('seslog-query-');
  const file = path.join(dir, 'events.jsonl');
  data = writeEvents(file);
  const r = await runSeslog(['import', '--db', path.join(dir, 'seslog.db'), file]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`imported ${data.events.length}, duplicates 0, rejected 0`));
  srv = await startServer({ dir });
});

after(async () => {
  if (srv) await srv.stop();
});

/** A query string; an array value repeats its parameter. */
function qs(params) {
  return new URLSearchParams(Object.entries(params)
    .flatMap(([k, v]) => (Array.isArray(v) ? v.map((x) => [k, x]) : [[k, v]]))).toString();
}

async function getJson(p, headers) {
  const res = await get(srv.url, p, headers);
  assert.equal(res.status, 200, `${p}: ${res.status} ${res.text}`);
  assert.match(res.headers['content-type'], /^application\/json/);
  return res.json;
}

/** Follows nextCursor to the end; returns the items and the page count. */
async function pageAll(params, limit) {
  const items = [];
  let cursor = null;
  let pages = 0;
  for (;;) {
    const p = { ...params, limit: String(limit) };
    if (cursor) p.cursor = cursor;
    const body = await getJson(`/api/events?${qs(p)}`);
    assert.ok(Array.isArray(body.items));
    assert.ok(body.items.length <= limit);
    pages++;
    items.push(...body.items);
    if (body.nextCursor === null) break;
    assert.equal(typeof body.nextCursor, 'string');
    assert.equal(body.items.length, limit, 'a page before the last is full');
    cursor = body.nextCursor;
    assert.ok(pages < 500, 'runaway paging');
  }
  return { items, pages };
}

const keyOf = (item) => `${item.messageId}/${item.notificationType}`;

test('every filter alone and combined, both orders, in pages of 7 and in one page', T, async () => {
  const now = Date.now();
  const some = data.events.find((e) => e.notificationType === 'Bounce' && e.recipients.length === 1);
  const mid = data.events[Math.floor(data.events.length / 2)];
  const cases = [
    {},
    { type: 'Bounce' },
    { type: 'complaint' }, // any case
    { type: 'Delivery' },
    { bounceType: 'Transient' },
    { bounceType: 'Permanent' },
    { feedbackType: 'abuse' },
    { address: some.recipients[0].toUpperCase() },
    { domain: 'gmail.test' },
    { domain: 'YAHOO.test' }, // stored lower case
    { source: SOURCES[1].toUpperCase() },
    { messageId: 'q-0040' },
    { since: mid.timeStamp },
    { until: mid.timeStamp },
    { since: data.events[10].timeStamp, until: mid.timeStamp },
    { since: '1d' },
    { since: '1m' },
    { until: '6h' },
    { type: 'Bounce', domain: 'gmail.test', since: '1d' },
    { type: 'Delivery', domain: 'corp.test', source: SOURCES[0] },
    { address: 'user0@gmail.test', type: 'Send' },
    { messageId: 'q-0000', address: 'second0@gmail.test' },
    { feedbackType: 'not-spam', domain: 'corp.test' },
    { type: 'Open', source: SOURCES[0], until: mid.timeStamp },
    // type given several times: events of any of them
    { type: ['Bounce', 'complaint'] },
    { type: ['Bounce', 'Complaint'], domain: 'gmail.test' },
    { type: ['Open', 'Delivery'], source: SOURCES[0], since: '1d' },
    { type: ['Send', 'Bounce'], address: 'user0@gmail.test' },
  ];
  const cap = (t) => t[0].toUpperCase() + t.slice(1);
  for (const c of cases) {
    const model = { ...c, type: c.type && (Array.isArray(c.type) ? c.type.map(cap) : cap(c.type)) };
    const want = matchEvents(data.events, model, now);
    for (const order of ['desc', 'asc']) {
      const expected = sortEvents(want, order === 'asc').map((e) => e.key);
      const small = await pageAll({ ...c, order }, 7);
      assert.deepEqual(small.items.map(keyOf), expected, `${qs(c)} order=${order} limit=7`);
      assert.equal(small.pages, Math.max(1, Math.ceil(expected.length / 7)));
      const one = await pageAll({ ...c, order }, 1000);
      assert.deepEqual(one.items.map(keyOf), expected, `${qs(c)} order=${order} limit=1000`);
      assert.equal(one.pages, 1);
    }
  }
  // the default: newest first, 50 a page
  const body = await getJson('/api/events');
  assert.equal(body.items.length, 50);
  assert.deepEqual(body.items.map(keyOf), sortEvents(data.events, false).slice(0, 50).map((e) => e.key));
});

test('an event has the fields of CONTRACT section 5', T, async () => {
  const body = await getJson(`/api/events?${qs({ messageId: 'q-0000', type: 'Bounce' })}`);
  assert.equal(body.items.length, 1);
  const e = body.items[0];
  const model = data.events.find((x) => x.key === 'q-0000/Bounce');
  assert.deepEqual(Object.keys(e), ['messageId', 'timeStamp', 'notificationType', 'reportingMTA',
    'destinationAddress', 'bouncedRecipients', 'complaintFeedbackType', 'feedbackId', 'bounceType',
    'bounceSubType', 'complaintSubType', 'source', 'recipients', 'snsMessageId', 'topicArn', 'diagnostic']);
  assert.equal(e.timeStamp, model.timeStamp);
  assert.equal(e.notificationType, 'Bounce');
  assert.equal(e.destinationAddress, model.ses.mail.destination.join(','));
  assert.deepEqual(e.bouncedRecipients, model.ses.bounce.bouncedRecipients);
  assert.equal(e.bounceType, model.bounceType);
  assert.equal(e.bounceSubType, model.bounceSubType);
  assert.equal(e.feedbackId, 'fb-bounce-0');
  assert.equal(e.source, model.source);
  assert.deepEqual(e.recipients, model.recipients);
  assert.equal(e.diagnostic, model.ses.bounce.bouncedRecipients[0].diagnosticCode);
  assert.equal(e.reportingMTA, 'dsn; a8-70.smtp-out.amazonses.com');
  assert.equal(e.snsMessageId, null);
  assert.equal(e.raw, undefined, 'lists carry no raw');
  // HTML-safe: the source's quotes and the diagnostic's <> are escaped text
  const res = await get(srv.url, `/api/events?${qs({ messageId: 'q-0000', type: 'Bounce' })}`);
  assert.ok(!/[<>&]/.test(res.text), 'no raw <, > or & in the JSON text');
});

test('GET /api/events/{messageId}: every event of the mail in time order with raw; 404 otherwise', T, async () => {
  for (const mid of ['q-0000', 'q-0037', 'q-0159']) {
    const body = await getJson(`/api/events/${mid}`);
    assert.equal(body.messageId, mid);
    const want = sortEvents(data.events.filter((e) => e.messageId === mid), true);
    assert.deepEqual(body.items.map(keyOf), want.map((e) => e.key));
    for (let i = 0; i < want.length; i++) assert.deepEqual(body.items[i].raw, want[i].ses);
  }
  assertError(await get(srv.url, '/api/events/no-such-message'), 404, 'not_found');
  assertError(await get(srv.url, '/api/events/q-0000?limit=0'), 400, 'invalid_parameter');
  assertError(await get(srv.url, '/api/events/q-0000?type=Send'), 400, 'invalid_parameter');
});

test('GET /api/recipients/{address}: the whole history, any case, suppression field', T, async () => {
  const addr = 'user0@gmail.test';
  const body = await getJson(`/api/recipients/${encodeURIComponent('USER0@Gmail.Test')}`);
  assert.equal(body.address, addr);
  const want = sortEvents(matchEvents(data.events, { address: addr }), false);
  assert.ok(want.length > 3);
  assert.deepEqual(body.events.map(keyOf), want.map((e) => e.key));
  assert.ok('suppression' in body, 'the suppression field is there');
  assert.equal(body.nextCursor, null);
  const none = await getJson('/api/recipients/nobody@nowhere.test');
  assert.deepEqual(none.events, []);
  // filters narrow it; paging works there too
  const bounces = await getJson(`/api/recipients/${addr}?type=Bounce&limit=1`);
  assert.ok(bounces.events.every((e) => e.notificationType === 'Bounce'));
  assertError(await get(srv.url, `/api/recipients/${addr}?address=x@y`), 400, 'invalid_parameter');
});

test('GET /api/stats from the rollups: counts, rates, monitors; an empty window is 0', T, async () => {
  const k = countsOf(data.events);
  assert.ok(k.sendsRaw > 0 && k.permanentBounces > 0 && k.complaints > 0);
  const s = await getJson('/api/stats?window=6h');
  assert.equal(s.window, '6h');
  assert.match(s.since, /^\d{4}-\d\d-\d\dT\d\d:\d\d:00\.000Z$/);
  assert.match(s.until, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  assert.ok(Date.parse(s.until) - Date.parse(s.since) >= 6 * 3600e3);
  assert.equal(s.sends, k.sendsRaw);
  assert.equal(s.deliveries, k.deliveries);
  assert.equal(s.bounces, k.bounces);
  assert.equal(s.permanentBounces, k.permanentBounces);
  assert.equal(s.complaints, k.complaints);
  assert.ok(Math.abs(s.bounceRate - k.bounceRate) < 1e-9, `${s.bounceRate} vs ${k.bounceRate}`);
  assert.ok(Math.abs(s.complaintRate - k.complaintRate) < 1e-9);
  const state = (v, w, a) => (v >= a ? 'alert' : v >= w ? 'warn' : 'ok');
  assert.deepEqual(s.monitors.bounceRate, { state: state(s.bounceRate, 0.025, 0.05), value: s.bounceRate, warn: 0.025, alert: 0.05 });
  assert.deepEqual(s.monitors.complaintRate, { state: state(s.complaintRate, 0.0005, 0.001), value: s.complaintRate, warn: 0.0005, alert: 0.001 });
  assert.deepEqual(Object.keys(s), ['window', 'since', 'until', 'sends', 'deliveries', 'bounces',
    'permanentBounces', 'complaints', 'bounceRate', 'complaintRate', 'monitors', 'events', 'range',
    'dataSince', 'dataUntil', 'aws']);
  assert.deepEqual(s.aws, { enabled: false }, 'AWS\'s verdict only with --ses-reputation (sesrep.test.mjs)');
  assert.equal(s.events, data.events.length);
  assert.equal(s.range, 'window');
  const first = Math.min(...data.events.map((e) => e.ms));
  const last = Math.max(...data.events.map((e) => e.ms));
  assert.equal(s.dataSince, new Date(Math.floor(first / 60e3) * 60e3).toISOString());
  assert.equal(s.dataUntil, new Date(Math.floor(last / 60e3) * 60e3 + 60e3).toISOString());

  // an explicit range: the minutes of [since, until), rates against the thresholds
  for (const [a, b] of [[data.t0, data.t0 + 5 * 3600e3], [data.t0 + 3600e3, data.t0 + 2 * 3600e3]]) {
    const since = new Date(Math.floor(a / 60e3) * 60e3).toISOString();
    const until = new Date(Math.floor(b / 60e3) * 60e3).toISOString();
    const r = await getJson(`/api/stats?${qs({ since, until })}`);
    const inRange = data.events.filter((e) => e.ms >= Date.parse(since) && e.ms < Date.parse(until));
    const kr = countsOf(inRange);
    assert.equal(r.window, null);
    assert.equal(r.range, 'explicit');
    assert.equal(r.since, since);
    assert.equal(r.until, until);
    assert.equal(r.events, inRange.length);
    assert.equal(r.sends, kr.sends);
    assert.equal(r.permanentBounces, kr.permanentBounces);
    assert.equal(r.complaints, kr.complaints);
    assert.ok(Math.abs(r.bounceRate - kr.bounceRate) < 1e-9);
    assert.deepEqual(r.monitors.bounceRate, { state: state(r.bounceRate, 0.025, 0.05), value: r.bounceRate, warn: 0.025, alert: 0.05 });
  }

  // nothing in the monitors' window and nothing asked: the range of the data, said so
  const d = await getJson('/api/stats');
  assert.equal(d.range, 'data');
  assert.equal(d.window, null);
  assert.equal(d.since, s.dataSince);
  assert.equal(d.until, s.dataUntil);
  assert.equal(d.events, data.events.length);
  assert.equal(d.sends, k.sendsRaw);
  assert.equal(d.permanentBounces, k.permanentBounces);

  for (const p of ['/api/stats?window=10m', '/api/stats?window=30s']) {
    const e = await getJson(p);
    assert.equal(e.window, p.includes('=') ? p.split('=')[1] : '10m');
    for (const f of ['sends', 'deliveries', 'bounces', 'permanentBounces', 'complaints', 'bounceRate', 'complaintRate']) {
      assert.equal(e[f], 0, `${p} ${f}`);
    }
    if (p.endsWith('30s')) { // not the monitors' window: the window's rate against the thresholds
      assert.deepEqual(e.monitors.bounceRate, { state: 'ok', value: 0, warn: 0.025, alert: 0.05 });
      assert.deepEqual(e.monitors.complaintRate, { state: 'ok', value: 0, warn: 0.0005, alert: 0.001 });
    } else { // --rate-window (10m): the live monitor, which may widen its window to enough sends
      assert.match(e.monitors.bounceRate.state, /^(ok|warn|alert)$/);
      assert.equal(typeof e.monitors.bounceRate.value, 'number');
    }
  }
  for (const bad of ['window=abc', 'window=0', 'window=-5m', 'window=500d', 'since=soon', 'window=1h&window=2h',
    'window=1h&since=2h', 'since=2026-11-31', 'until=1764547200', 'since=1h&until=2h', 'since=1h&since=2h']) {
    assertError(await get(srv.url, `/api/stats?${bad}`), 400, 'invalid_parameter');
  }
});

test('GET /api/timeseries: every bucket present, sums and rates per bucket', T, async () => {
  const since = new Date(data.t0).toISOString();
  const until = new Date(data.t0 + 5 * 3600e3).toISOString();
  for (const [bucket, ms] of [['1h', 3600e3], ['1m', 60e3], ['15m', 900e3]]) {
    const body = await getJson(`/api/timeseries?${qs({ since, until, bucket })}`);
    assert.equal(body.bucket, bucket);
    // buckets are aligned to the epoch (UTC hours, days): from the one
    // holding since to the one holding until - 1
    const first = Math.floor(data.t0 / ms) * ms;
    const n = Math.ceil((data.t0 + 5 * 3600e3 - first) / ms);
    assert.equal(body.points.length, n);
    for (let i = 0; i < n; i++) {
      const p = body.points[i];
      const start = first + i * ms;
      assert.equal(p.t, new Date(start).toISOString());
      const k = countsOf(data.events.filter((e) => e.ms >= start && e.ms < start + ms));
      assert.equal(p.sends, k.sends, `${bucket} ${p.t} sends`);
      assert.equal(p.deliveries, k.deliveries);
      assert.equal(p.bounces, k.bounces);
      assert.equal(p.complaints, k.complaints);
      assert.ok(Math.abs(p.bounceRate - k.bounceRate) < 1e-9);
      assert.ok(Math.abs(p.complaintRate - k.complaintRate) < 1e-9);
    }
    if (bucket === '1m') {
      // a minute of deliveries and bounces without Send events counts those as sends
      const fallback = body.points.filter((p) => p.deliveries > 0);
      assert.ok(fallback.length > 0 && fallback.every((p) => p.sends === p.deliveries + p.bounces));
    }
  }
  const day = await getJson('/api/timeseries?bucket=1d&since=3d');
  assert.ok(day.points.length === 3 || day.points.length === 4);
  assert.ok(day.points.every((p) => p.t.endsWith('T00:00:00.000Z')));
  const def = await getJson('/api/timeseries');
  assert.equal(def.bucket, '1h');
  assert.ok(def.points.length === 24 || def.points.length === 25);
  // Each hour counts Delivery and Bounce recipients as sends when it has no Send event (the
  // contract's fallback), so the expected sum is taken hour by hour: where the hours fall in
  // the data depends on the time of day the test runs.
  const hourly = def.points.map((p) => {
    const start = Date.parse(p.t);
    return countsOf(data.events.filter((e) => e.ms >= start && e.ms < start + 3600e3)).sends;
  });
  assert.equal(def.points.reduce((a, p) => a + p.sends, 0), hourly.reduce((a, n) => a + n, 0));
  for (const bad of ['bucket=2x', 'bucket=30s', 'bucket=90s', `since=400d&bucket=1m`,
    `since=${until}&until=${since}`, 'since=soon', 'window=1h']) {
    assertError(await get(srv.url, `/api/timeseries?${bad}`), 400, 'invalid_parameter');
  }
});

test('malformed parameters: 400 invalid_parameter naming the parameter', T, async () => {
  const bad = {
    'type=Bouncy': 'type', 'bounceType=Hard': 'bounceType', 'limit=0': 'limit', 'limit=1001': 'limit',
    'limit=ten': 'limit', 'limit=5.5': 'limit', 'order=up': 'order', 'cursor=xyz': 'cursor',
    'cursor=MjAyNnwx': 'cursor', 'since=yesterday': 'since', 'until=2026-13-01T00:00:00Z': 'until',
    'since=2026-03-02&until=2026-03-01': 'until', 'typ=Bounce': 'typ', 'type=Bounce&type=Bouncy': 'type',
    'since=2026-11-31': 'since', 'until=1764547200': 'until', 'limit=5&limit=6': 'limit',
    'messageId=%zz': 'messageId', [`address=${'a'.repeat(600)}`]: 'address',
  };
  for (const [q, name] of Object.entries(bad)) {
    const res = await get(srv.url, `/api/events?${q}`);
    assertError(res, 400, 'invalid_parameter');
    assert.ok(res.json.error.message.includes(`"${name}"`), `${q}: ${res.json.error.message}`);
  }
  assertError(await get(srv.url, '/api/nothing'), 404, 'not_found');
  assertError(await post(srv.url, '/api/events', '{}'), 405);
  // an empty value is no filter; a '+' left unencoded in an address is a plus
  const all = await getJson('/api/events?type=&limit=1000');
  assert.equal(all.items.length, data.events.length);
  const plus = await getJson('/api/events?address=a+tag@x.test');
  assert.deepEqual(plus.items, []);
});

/** The rows of sql as {key, count} sorted by key, for comparing answers. */
async function sqlGroups(sql, fields) {
  const rows = await sqlite(srv.db, sql);
  return rows.map((r) => ({ key: Object.fromEntries(fields.map((f, i) => [f, r[`k${i}`] ?? null])), count: r.n }))
    .sort((a, b) => JSON.stringify(a.key).localeCompare(JSON.stringify(b.key)));
}
const byKey = (groups) => [...groups].sort((a, b) => JSON.stringify(a.key).localeCompare(JSON.stringify(b.key)));

test('GET /api/events/counts: groups checked against a count in SQL', T, async () => {
  const src = 'news@shop.test';
  const sorted = sortEvents(data.events, true);
  // cut inside an hour at both ends (the test data's times are relative to now, so an event
  // may fall on a whole hour: take the nearest one that does not)
  const inside = (e) => !e.timeStamp.endsWith(':00:00.000Z');
  const cut = {
    a: sorted.slice(7).find(inside).timeStamp,
    b: sorted.slice(0, sorted.length - 8).reverse().find(inside).timeStamp,
  };
  assert.ok(!cut.a.endsWith(':00:00.000Z') && !cut.b.endsWith(':00:00.000Z') &&
    Date.parse(cut.b) - Date.parse(cut.a) > 2 * 3600e3, JSON.stringify(cut));
  // recipients.timeStamp is ms since the epoch (schema version 23): its text as the schema says
  const rts = "strftime('%Y-%m-%dT%H:%M:%fZ', timeStamp / 1000.0, 'unixepoch')";
  const cases = [
    [{ groupBy: 'day,type' }, ['day', 'type'],
      'SELECT substr(timeStamp, 1, 10) k0, notificationType k1, count(*) n FROM SesEventMessages GROUP BY 1, 2'],
    [{ groupBy: 'hour', type: 'Bounce' }, ['hour'],
      "SELECT substr(timeStamp, 1, 13) || ':00' k0, count(*) n FROM SesEventMessages WHERE notificationType = 'Bounce' GROUP BY 1"],
    [{ groupBy: 'domain', type: 'Bounce' }, ['domain'],
      `SELECT ${domainSql()} k0, count(*) n FROM recipients WHERE notificationType = 0 /* Bounce: its code, schema version 23 */ GROUP BY 1`],
    [{ groupBy: 'domain' }, ['domain'], `SELECT ${domainSql()} k0, count(*) n FROM recipients GROUP BY 1`],
    [{ groupBy: 'bounceType,bounceSubType', type: 'Bounce' }, ['bounceType', 'bounceSubType'],
      "SELECT bounceType k0, bounceSubType k1, count(*) n FROM SesEventMessages WHERE notificationType = 'Bounce' GROUP BY 1, 2"],
    [{ groupBy: 'type', domain: 'gmail.test', type: ['Bounce', 'Delivery'] }, ['type'],
      `SELECT e.notificationType k0, count(DISTINCT e.id) n FROM SesEventMessages e JOIN recipients r ON r.eventId = e.id WHERE ${domainSql('r.')} = 'gmail.test' AND e.notificationType IN ('Bounce', 'Delivery') GROUP BY 1`],
    [{ groupBy: 'source', source: src.toUpperCase() }, ['source'],
      `SELECT source k0, count(*) n FROM SesEventMessages WHERE lower(source) = '${src}' OR lower(source) LIKE '%<${src}>' GROUP BY 1`],
    [{ groupBy: 'source,type', type: ['Bounce', 'Complaint'] }, ['source', 'type'],
      "SELECT source k0, notificationType k1, count(*) n FROM SesEventMessages WHERE notificationType IN ('Bounce', 'Complaint') GROUP BY 1, 2"],
    [{ groupBy: 'day', senderDomain: 'shop.test', bounceSubType: 'General' }, ['day'],
      "SELECT substr(timeStamp, 1, 10) k0, count(*) n FROM SesEventMessages WHERE lower(source) LIKE '%@shop.test%' AND bounceSubType = 'General' GROUP BY 1"],
    // a range that starts and ends inside hours and days: its whole hours
    // (days) from the rollups, its ends from the events
    [{ groupBy: 'domain', type: 'Bounce', since: cut.a, until: cut.b }, ['domain'],
      `SELECT ${domainSql()} k0, count(*) n FROM recipients WHERE notificationType = 0 /* Bounce: its code, schema version 23 */ AND ${rts} >= '${cut.a}' AND ${rts} < '${cut.b}' GROUP BY 1`],
    [{ groupBy: 'domain', since: cut.a, until: cut.b }, ['domain'],
      `SELECT ${domainSql()} k0, count(*) n FROM recipients WHERE ${rts} >= '${cut.a}' AND ${rts} < '${cut.b}' GROUP BY 1`],
    [{ groupBy: 'day,domain' }, ['day', 'domain'],
      `SELECT substr(${rts}, 1, 10) k0, ${domainSql()} k1, count(*) n FROM recipients GROUP BY 1, 2`],
    [{ groupBy: 'hour,type', since: cut.a, until: cut.b }, ['hour', 'type'],
      `SELECT substr(timeStamp, 1, 13) || ':00' k0, notificationType k1, count(*) n FROM SesEventMessages WHERE timeStamp >= '${cut.a}' AND timeStamp < '${cut.b}' GROUP BY 1, 2`],
    [{ groupBy: 'type', diagnostic: '5.1.1' }, ['type'],
      // the diagnostic as the schema (version 20) says to read it
      "SELECT notificationType k0, count(*) n FROM SesEventMessages WHERE coalesce(diagnostic, " +
      "CASE WHEN json_valid(bouncedRecipients) THEN CASE WHEN json_type(bouncedRecipients, '$[0].diagnosticCode') = 'text' " +
      "THEN json_extract(bouncedRecipients, '$[0].diagnosticCode') END END) LIKE '%5.1.1%' GROUP BY 1"],
  ];
  for (const [params, fields, sql] of cases) {
    const body = await getJson(`/api/events/counts?${qs(params)}`);
    assert.deepEqual(body.groupBy, fields);
    assert.equal(body.more, false);
    const want = await sqlGroups(sql, fields);
    assert.ok(want.length > 0, `${sql}: the data should have some`);
    assert.deepEqual(byKey(body.groups), want, qs(params));
    // ordered: by time keys ascending, else by count, largest first
    const counts = body.groups.map((g) => g.count);
    if (fields[0] === 'day' || fields[0] === 'hour') {
      const keys = body.groups.map((g) => g.key[fields[0]]);
      assert.deepEqual(keys, [...keys].sort());
    } else assert.deepEqual(counts, [...counts].sort((a, b) => b - a));
  }
  // diagnostics grouped: every bounce counted once, keys without addresses
  const diag = await getJson('/api/events/counts?groupBy=diagnostic&type=Bounce');
  const bounces = (await sqlite(srv.db, "SELECT count(*) n FROM SesEventMessages WHERE notificationType = 'Bounce'"))[0].n;
  assert.equal(diag.groups.reduce((a, g) => a + g.count, 0), bounces);
  assert.ok(diag.groups.every((g) => g.key.diagnostic === null || !/@/.test(g.key.diagnostic)), JSON.stringify(diag.groups));
  // diagnostics from their rollup (whole hours; the ends of a range from the
  // events) as from the events alone: every sender here is of shop.test, and
  // that filter makes the answer come from the events
  for (const range of [{}, { since: cut.a, until: cut.b }]) {
    for (const groupBy of ['diagnostic', 'type,diagnostic', 'day,diagnostic']) {
      const fromRollup = await getJson(`/api/events/counts?${qs({ groupBy, ...range })}`);
      const fromEvents = await getJson(`/api/events/counts?${qs({ groupBy, senderDomain: 'shop.test', ...range })}`);
      assert.ok(fromRollup.groups.some((g) => g.key.diagnostic), JSON.stringify(fromRollup.groups));
      assert.deepEqual(byKey(fromRollup.groups), byKey(fromEvents.groups), groupBy);
    }
  }
  // limit caps the groups and says there were more
  const two = await getJson('/api/events/counts?groupBy=day,type&limit=2');
  assert.equal(two.groups.length, 2);
  assert.equal(two.more, true);
  for (const bad of ['', 'groupBy=', 'groupBy=dy', 'groupBy=day,day', 'groupBy=day&limit=0', 'groupBy=day&cursor=x',
    'groupBy=day&since=2026-11-31', 'groupBy=tag:']) {
    assertError(await get(srv.url, `/api/events/counts?${bad}`), 400, 'invalid_parameter');
  }
});

test('paging never skips or repeats while new events are posted', T, async () => {
  const before = new Set(data.events.map((e) => e.key));
  const middle = sortEvents(data.events, true)[Math.floor(data.events.length / 2)];
  let posted = 0;
  const postOne = async (timestamp) => {
    const ses = {
      eventType: 'Send',
      mail: { timestamp, source: 'late@shop.test', messageId: `late-${posted++}-${Date.now()}`,
        destination: ['late@gmail.test'] },
      send: {},
    };
    const res = await post(srv.url, '/sns', signEnvelope({ message: ses, timestamp }));
    assert.equal(res.status, 200, res.text);
  };
  for (const order of ['desc', 'asc']) {
    const seen = [];
    let cursor = null;
    for (let page = 0; ; page++) {
      const p = { limit: '9', order };
      if (cursor) p.cursor = cursor;
      const body = await getJson(`/api/events?${qs(p)}`);
      seen.push(...body.items);
      // between pages: a new event now, and one at an existing event's very
      // millisecond (an SNS retry landing in the past)
      await postOne(new Date().toISOString());
      await postOne(middle.timeStamp);
      if (!body.nextCursor) break;
      cursor = body.nextCursor;
    }
    const keys = seen.map(keyOf);
    assert.equal(new Set(keys).size, keys.length, `${order}: an event came twice`);
    for (const k of before) assert.ok(keys.includes(k), `${order}: ${k} was skipped`);
    for (let i = 1; i < seen.length; i++) {
      const a = seen[i - 1].timeStamp;
      const b = seen[i].timeStamp;
      assert.ok(order === 'asc' ? a <= b : a >= b, `${order}: out of order at ${i}`);
    }
  }
  assert.ok(posted > 40);
});

test('a query past the time limit answers 503 and the server goes on', T, async () => {
  const dir = tempDir('seslog-query-slow-');
  const lines = [];
  for (let i = 0; i < 20000; i++) {
    lines.push(JSON.stringify({
      eventType: 'Delivery',
      mail: { timestamp: '2026-01-01T00:00:00.000Z', source: 'bulk@shop.test', messageId: `slow-${i}`,
        destination: [`u${i}@bulk.test`] },
      delivery: { timestamp: new Date(Date.parse('2026-01-01T00:00:00Z') + i * 1000).toISOString(),
        recipients: [`u${i}@bulk.test`] },
    }));
  }
  const file = path.join(dir, 'slow.jsonl');
  fs.writeFileSync(file, lines.join('\n'));
  const r = await runSeslog(['import', '--db', path.join(dir, 'seslog.db'), file]);
  assert.equal(r.code, 0, r.stderr);
  const slow = await startServer({ dir, args: ['--query-timeout', '1'] });
  try {
    // driven by the domain's index, every event read to find no such sender
    const res = await get(slow.url, '/api/events?domain=bulk.test&source=nobody@shop.test');
    assertError(res, 503, 'query_timeout');
    assert.match(res.json.error.message, /1 ms/);
    const h = await get(slow.url, '/healthz');
    assert.equal(h.status, 200);
  } finally {
    await slow.stop();
  }
});

test('--api-token: /api/* and /metrics need the bearer token', T, async (t) => {
  const s = await startServer({ t, args: ['--api-token', 's3cret-token'] });
  for (const p of ['/api/events', '/api/stats', '/api/timeseries', '/api/events/x', '/api/recipients/a@b.c', '/metrics']) {
    assertError(await get(s.url, p), 401, 'unauthorized');
    assertError(await get(s.url, p, { authorization: 'Bearer wrong' }), 401, 'unauthorized');
  }
  for (const p of ['/api/events', '/api/stats', '/api/timeseries', '/metrics']) {
    const res = await get(s.url, p, { authorization: 'Bearer s3cret-token' });
    assert.equal(res.status, 200, `${p}: ${res.text}`);
  }
  assert.equal((await get(s.url, '/healthz')).status, 200);
  await s.stop();
});

test('--listen off loopback without --api-token is refused; with a token it starts', T, async () => {
  const dir = tempDir('seslog-query-listen-');
  const db = path.join(dir, 'seslog.db');
  for (const listen of ['0.0.0.0:0', '[::]:0', '192.0.2.1:0']) {
    const r = await runSeslog(['serve', '--listen', listen, '--db', db], { timeout: 10000 });
    assert.equal(r.code, 2, `${listen}: ${r.stderr}`);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0], /not a loopback address/);
    assert.match(lines[0], /--api-token/);
  }
  const r = await runSeslog(['serve', '--listen', '0.0.0.0:0', '--db', db], {
    timeout: 10000, env: { SESLOG_API_TOKEN: '' },
  });
  assert.equal(r.code, 2);
  // with a token (flag or environment) it starts
  const s = await startServer({ args: ['--api-token', 'tok'] });
  await s.stop();
  // --sns-listen serves only /sns and /healthz: it may be public without a token
  await runSeslogUntilListening(['serve', '--listen', '127.0.0.1:0', '--sns-listen', '0.0.0.0:0', '--db', db], {});
  const viaEnv = await runSeslogUntilListening(['serve', '--listen', '0.0.0.0:0', '--db', db], { SESLOG_API_TOKEN: 'tok' });
  assert.match(viaEnv, /addr="?0\.0\.0\.0:\d+/);
});

/** Starts seslog, waits for its "listening" line, stops it; returns stderr. */
async function runSeslogUntilListening(args, env) {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SESLOG_')));
  const child = spawn(BIN, args, { env: { ...clean, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr.setEncoding('utf8');
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`no listening line: ${err}`)); }, 10000);
    child.stderr.on('data', (d) => {
      err += d;
      if (/msg="?listening/.test(err)) { clearTimeout(timer); resolve(); }
    });
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`exited ${code}: ${err}`)); });
  });
  child.removeAllListeners('exit');
  const done = new Promise((resolve) => child.on('exit', resolve));
  child.kill('SIGTERM');
  assert.equal(await done, 0);
  return err;
}
