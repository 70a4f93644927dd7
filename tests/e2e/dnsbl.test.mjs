// dnsbl.test.mjs - the DNSBL watch (issue 10): seslog looks its IPs and
// domains up in DNS blocklist zones and reports the answers on
// GET /api/dnsbl, /metrics and Slack. The zones are served by our own DNS
// server (dnsstub.mjs) given with --dns-server, so nothing leaves
// 127.0.0.1; Slack is slackstub.mjs.
//
// Covered: the query names (reversed IPv4 octets, IPv6 nibbles, domain
// prefix), IPs only on IP zones and domains only on domain zones, bare zones
// classified, the default zones; listed with its TXT reason, not listed
// (NXDOMAIN, no A record), unknown (REFUSED, SERVFAIL, timeout after 2
// tries, special answers, answers outside 127.0.0.0/8); the API's fields,
// order and summary; the metrics; POST /api/dnsbl/check (started, running,
// disabled); Slack's listed and delisted alerts and none for
// listed -> unknown -> listed; a restart keeps `since` and repeats no alert;
// the environment's lists; --api-token; bad option values exit 2.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {
  startServer, runSeslog, tempDir, get, post, sqlite, assertError, sleep,
} from './lib.mjs';
import { startSlackStub, allText, fetchMetrics } from './slackstub.mjs';
import { startDnsStub, dnsblName } from './dnsstub.mjs';

const T = { timeout: 30000 };
const TIMEOUT_MS = 200;

// ---- helpers ---------------------------------------------------------------

function dnsArgs(dns, extra = []) {
  return ['--dns-server', dns.server, '--dns-timeout', `${TIMEOUT_MS}ms`, '--dnsbl-interval', '1h', ...extra];
}

const flags = (name, values) => values.flatMap((v) => [name, v]);

/** GET /api/dnsbl (fresh connection: servers restart on the same port numbers). */
async function dnsbl(srv, headers = {}) {
  const r = await get(srv.url, '/api/dnsbl', headers, { agent: false });
  assert.equal(r.status, 200, `GET /api/dnsbl: ${r.status} ${r.text}`);
  assert.ok(r.json && typeof r.json === 'object', `GET /api/dnsbl is not JSON: ${r.text}`);
  return r.json;
}

function checkCheck(body, target, zone) {
  const c = body.checks.find((x) => x.target === target && x.zone === zone);
  assert.ok(c, `no check for ${target} on ${zone} in ${JSON.stringify(body.checks.map((x) => `${x.target} ${x.zone}`))}`);
  return c;
}

/**
 * Polls GET /api/dnsbl until a round is over and done(body) holds (default:
 * lastRunAt differs from prevLastRunAt). Throws with the last body at the
 * deadline.
 */
async function waitRound(srv, { prev = null, done, timeout = 10000 } = {}) {
  const end = Date.now() + timeout;
  let body;
  for (;;) {
    body = await dnsbl(srv);
    const over = body.running === false && body.lastRunAt && body.checks.every((c) => c.state !== 'pending');
    const ok = done ? done(body) : body.lastRunAt !== prev;
    if (over && ok) return body;
    if (Date.now() > end) {
      throw new Error(`no finished DNSBL round within ${timeout} ms (prev lastRunAt ${prev}); last GET /api/dnsbl:\n${JSON.stringify(body, null, 1)}`);
    }
    await sleep(50);
  }
}

async function postCheck(srv, headers = {}) {
  return post(srv.url, '/api/dnsbl/check', '', headers, { agent: false });
}

/** The Slack messages about DNSBL, accepted, in arrival order. */
function dnsblMessages(slack) {
  return slack.accepted().filter((m) => /DNSBL/.test(m?.text ?? ''));
}

const iso = (s) => {
  assert.equal(typeof s, 'string', `not a time: ${s}`);
  assert.match(s, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/, `not an ISO 8601 UTC time: ${s}`);
  return Date.parse(s);
};

// ---- lookups, states, API, metrics -----------------------------------------

test('one round: query names, IPs only on IP zones and domains on domain zones, every answer mapped to its state, API and metrics', T, async (t) => {
  const reason11 = 'Listed by bl.test, see https://bl.test/lookup?ip=192.0.2.11';
  // one TXT string of 300 bytes: the stub sends it as one record of two
  // character-strings (255 + 45), which make one text
  const long26 = `${'Long reason '.repeat(24)}end.`;
  assert.ok(Buffer.byteLength(long26) > 255);
  const v6 = '2001:db8::1';
  const v6Name = '1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.bl.test';
  assert.equal(dnsblName(v6, 'bl.test'), v6Name); // the helper agrees with the spec's example
  const dns = await startDnsStub({
    records: {
      '11.2.0.192.bl.test': { a: ['127.0.0.2'], txt: [reason11] },
      // 192.0.2.12: NXDOMAIN on bl.test, listed on zz.test
      '12.2.0.192.zz.test': { a: ['127.0.0.5'], txt: ['zz reason'] },
      '13.2.0.192.bl.test': 'refused',
      '14.2.0.192.bl.test': 'timeout',
      '15.2.0.192.bl.test': { a: ['127.255.255.254'], txt: ['public resolver'] },
      '16.2.0.192.bl.test': { a: ['127.0.0.1'] },
      '17.2.0.192.bl.test': 'servfail',
      '18.2.0.192.bl.test': { a: ['10.0.0.1'] },
      '19.2.0.192.bl.test': 'nodata',
      '20.2.0.192.bl.test': { a: ['127.0.0.4', '127.0.0.2'], txt: 'servfail' },
      '21.2.0.192.bl.test': { a: ['127.0.0.2'], txt: ['first part', 'second part'] },
      '22.2.0.192.bl.test': { a: ['127.255.255.252'] },
      '23.2.0.192.bl.test': { a: ['127.255.255.255'] },
      '24.2.0.192.bl.test': { a: ['127.0.1.255'] },
      '25.2.0.192.bl.test': { a: ['127.0.0.2', '127.255.255.254'] },
      '26.2.0.192.bl.test': { a: ['127.0.0.2'], txt: [long26] },
      [v6Name]: { a: ['127.0.0.3'] }, // no TXT record: NOERROR, no answer
      'example.com.dbl.spamhaus.org': { a: ['127.0.1.2'], txt: ['https://www.spamhaus.org/query/domain/example.com'] },
    },
  });
  t.after(() => dns.close());
  const octets = Array.from({ length: 16 }, (_, i) => 11 + i);
  const ips = [...octets.map((o) => `192.0.2.${o}`), v6];
  const domains = ['example.com', 'example.org'];
  // zz.test and dbl.spamhaus.org are bare: an IP zone, a known domain zone
  const ipZones = ['bl.test', 'zz.test'];
  const domainZones = ['dbl.spamhaus.org', 'dbl.test'];
  const srv = await startServer({
    t,
    args: dnsArgs(dns, [
      ...flags('--dnsbl-ip', ips), ...flags('--dnsbl-domain', domains),
      '--dnsbl-zone', 'ip:bl.test', '--dnsbl-zone', 'zz.test', '--dnsbl-zone', 'dbl.spamhaus.org', '--dnsbl-zone', 'domain:dbl.test',
    ]),
  });
  const t0 = Date.now();
  const body = await waitRound(srv);

  // expected state per check; everything not named here is not_listed
  const want = new Map();
  const put = (target, zone, state, extra = {}) => want.set(`${target} ${zone}`, { state, ...extra });
  for (const ip of ips) for (const z of ipZones) put(ip, z, 'not_listed', { answers: [], reason: null, error: null });
  for (const d of domains) for (const z of domainZones) put(d, z, 'not_listed', { answers: [], reason: null, error: null });
  put('192.0.2.11', 'bl.test', 'listed', { answers: ['127.0.0.2'], reason: reason11, error: null });
  put('192.0.2.12', 'zz.test', 'listed', { answers: ['127.0.0.5'], reason: 'zz reason', error: null });
  put('192.0.2.13', 'bl.test', 'unknown', { error: 'refused' });
  put('192.0.2.14', 'bl.test', 'unknown', { error: 'timeout' });
  put('192.0.2.15', 'bl.test', 'unknown', { errorRe: /^special answer 127\.255\.255\.254\b/ });
  put('192.0.2.16', 'bl.test', 'unknown', { errorRe: /^special answer 127\.0\.0\.1\b/ });
  put('192.0.2.17', 'bl.test', 'unknown', { error: 'servfail' });
  put('192.0.2.18', 'bl.test', 'unknown', { errorRe: /10\.0\.0\.1/ });
  // 192.0.2.19: NOERROR without an A record: not listed (the default above)
  put('192.0.2.20', 'bl.test', 'listed', { answers: ['127.0.0.2', '127.0.0.4'], reason: null, error: null });
  put('192.0.2.21', 'bl.test', 'listed', { answers: ['127.0.0.2'], reasons: ['first part second part', 'second part first part'], error: null });
  put('192.0.2.22', 'bl.test', 'unknown', { errorRe: /^special answer 127\.255\.255\.252\b/ });
  put('192.0.2.23', 'bl.test', 'unknown', { errorRe: /^special answer 127\.255\.255\.255\b/ });
  put('192.0.2.24', 'bl.test', 'unknown', { errorRe: /^special answer 127\.0\.1\.255\b/ });
  put('192.0.2.25', 'bl.test', 'unknown', { errorRe: /^special answer 127\.255\.255\.254\b/ });
  put('192.0.2.26', 'bl.test', 'listed', { answers: ['127.0.0.2'], reason: long26, error: null });
  put(v6, 'bl.test', 'listed', { answers: ['127.0.0.3'], reason: null, error: null });
  put('example.com', 'dbl.spamhaus.org', 'listed', { answers: ['127.0.1.2'], reason: 'https://www.spamhaus.org/query/domain/example.com', error: null });

  // the top level
  assert.equal(body.enabled, true);
  assert.equal(body.intervalSeconds, 3600);
  assert.equal(body.running, false);
  const last = iso(body.lastRunAt);
  assert.ok(last >= t0 - 1000 && last <= Date.now() + 1000, `lastRunAt ${body.lastRunAt} is not about now`);
  const next = iso(body.nextRunAt);
  assert.ok(Math.abs(next - (last + 3600e3)) < 120e3, `nextRunAt ${body.nextRunAt} is not lastRunAt + 1h (${body.lastRunAt})`);
  assert.deepEqual(body.changes.map((c) => `${c.target} ${c.zone} ${c.to}`).sort(),
    body.checks.filter((c) => c.state === 'listed').map((c) => `${c.target} ${c.zone} listed`).sort(),
    'a first round\'s changes: every listing (what Slack is told), nothing else');

  // every check, in order: by target, then zone
  const order = [...ips.flatMap((ip) => ipZones.map((z) => `${ip} ${z}`)), ...domains.flatMap((d) => domainZones.map((z) => `${d} ${z}`))];
  assert.deepEqual(body.checks.map((c) => `${c.target} ${c.zone}`), order, 'the checks: each IP on each IP zone, each domain on each domain zone, sorted by target then zone');
  for (const c of body.checks) {
    const key = `${c.target} ${c.zone}`;
    const w = want.get(key);
    const isIp = ips.includes(c.target);
    assert.equal(c.kind, isIp ? 'ip' : 'domain', `${key}: kind`);
    assert.equal(c.query, dnsblName(c.target, c.zone), `${key}: query name`);
    assert.equal(c.state, w.state, `${key}: state (${JSON.stringify(c)})`);
    const since = iso(c.since);
    const checked = iso(c.checkedAt);
    assert.ok(since <= checked && checked >= t0 - 1000, `${key}: since ${c.since}, checkedAt ${c.checkedAt}`);
    assert.ok(Array.isArray(c.answers), `${key}: answers is not an array: ${JSON.stringify(c)}`);
    if (w.answers) assert.deepEqual([...c.answers].sort(), w.answers, `${key}: answers`);
    if ('reason' in w) assert.equal(c.reason, w.reason, `${key}: reason`);
    if (w.reasons) assert.ok(w.reasons.includes(c.reason), `${key}: the TXT strings joined with a space, got ${JSON.stringify(c.reason)}`);
    if ('error' in w) assert.equal(c.error, w.error, `${key}: error`);
    if (w.errorRe) assert.match(String(c.error), w.errorRe, `${key}: error`);
    if (c.state === 'unknown') {
      assert.equal(typeof c.error, 'string', `${key}: an unknown state says why`);
      assert.equal(c.reason, null, `${key}: no reason when unknown`);
    }
  }
  const count = (s) => body.checks.filter((c) => c.state === s).length;
  assert.deepEqual(body.summary, { listed: count('listed'), notListed: count('not_listed'), unknown: count('unknown'), pending: 0 });
  assert.deepEqual(body.summary, { listed: 7, notListed: 21, unknown: 10, pending: 0 });

  // what reached DNS: exactly the A queries of the checks (so no IP on a
  // domain zone, no domain on an IP zone), TXT only for the listed ones
  const aNames = new Set(dns.queries.filter((q) => q.type === 'A').map((q) => q.name));
  assert.deepEqual([...aNames].sort(), body.checks.map((c) => c.query.toLowerCase()).sort(), 'A queries');
  for (const ip of ips) for (const z of domainZones) assert.equal(dns.queriesFor(dnsblName(ip, z)).length, 0, `${ip} was looked up on the domain zone ${z}`);
  for (const d of domains) for (const z of ipZones) assert.equal(dns.queriesFor(`${d}.${z}`).length, 0, `${d} was looked up on the IP zone ${z}`);
  const listedNames = body.checks.filter((c) => c.state === 'listed').map((c) => c.query.toLowerCase()).sort();
  const txtNames = [...new Set(dns.queries.filter((q) => q.type === 'TXT').map((q) => q.name))].sort();
  assert.deepEqual(txtNames, listedNames, 'TXT queries: exactly the listed names');
  assert.deepEqual(dns.queries.filter((q) => q.type !== 'A' && q.type !== 'TXT').map((q) => `${q.type} ${q.name}`), [], 'queries of other types');
  assert.equal(dns.queriesFor('14.2.0.192.bl.test', 'A').length, 2, 'a query that times out is tried twice');
  assert.equal(dns.queriesFor('11.2.0.192.bl.test', 'A').length, 1, 'an answered query is asked once');
  assert.deepEqual(dns.errors, [], 'malformed queries');

  // /metrics
  const m = await fetchMetrics(get, srv);
  for (const c of body.checks) {
    const labels = `{target="${c.target}",zone="${c.zone}"}`;
    assert.equal(m.series.get(`seslog_dnsbl_listed${labels}`), c.state === 'listed' ? 1 : 0, `seslog_dnsbl_listed${labels}`);
    assert.equal(m.series.get(`seslog_dnsbl_unknown${labels}`), c.state === 'unknown' ? 1 : 0, `seslog_dnsbl_unknown${labels}`);
  }
  assert.equal(m.lines.filter((l) => l.startsWith('seslog_dnsbl_listed{')).length, body.checks.length, 'one seslog_dnsbl_listed line per check');
  assert.equal(m.lines.filter((l) => l.startsWith('seslog_dnsbl_unknown{')).length, body.checks.length, 'one seslog_dnsbl_unknown line per check');
  assert.equal(m.types.get('seslog_dnsbl_lookups_total'), 'counter');
  assert.equal(m.series.get('seslog_dnsbl_lookups_total{result="listed"}'), 7);
  assert.equal(m.series.get('seslog_dnsbl_lookups_total{result="not_listed"}'), 21);
  assert.equal(m.series.get('seslog_dnsbl_lookups_total{result="unknown"}'), 10);
  await srv.stop();
});

test('default zones; lists from SESLOG_* variables; /api/dnsbl needs the --api-token like the rest of /api', T, async (t) => {
  const dns = await startDnsStub();
  t.after(() => dns.close());
  const srv = await startServer({
    t,
    args: ['--api-token', 'sekrit', '--dnsbl-interval', '1h'],
    env: {
      SESLOG_DNSBL_IP: '192.0.2.41,192.0.2.42',
      SESLOG_DNSBL_DOMAIN: 'mail.example.net',
      SESLOG_DNS_SERVER: dns.server,
      SESLOG_DNS_TIMEOUT: `${TIMEOUT_MS}ms`,
    },
  });
  const auth = { authorization: 'Bearer sekrit' };
  assertError(await get(srv.url, '/api/dnsbl', {}, { agent: false }), 401);
  assertError(await postCheck(srv), 401);
  const end = Date.now() + 10000;
  let body;
  for (;;) {
    body = await dnsbl(srv, auth);
    if (body.lastRunAt && !body.running) break;
    assert.ok(Date.now() < end, `no round within 10 s: ${JSON.stringify(body)}`);
    await sleep(50);
  }
  const ipZones = ['b.barracudacentral.org', 'bl.spamcop.net', 'psbl.surriel.com', 'zen.spamhaus.org'];
  const domainZones = ['dbl.spamhaus.org', 'multi.surbl.org', 'multi.uribl.com'];
  const expected = [
    ...['192.0.2.41', '192.0.2.42'].flatMap((ip) => ipZones.map((z) => `${ip} ${z} ip`)),
    ...domainZones.map((z) => `mail.example.net ${z} domain`),
  ];
  assert.deepEqual(body.checks.map((c) => `${c.target} ${c.zone} ${c.kind}`), expected, 'the default zones, both lists from the environment');
  assert.ok(body.checks.every((c) => c.state === 'not_listed'), JSON.stringify(body.checks));
  assert.deepEqual([...new Set(dns.queries.map((q) => q.name))].sort(), body.checks.map((c) => c.query).sort(), 'the queries went to SESLOG_DNS_SERVER');
  const r = await postCheck(srv, auth);
  assert.equal(r.status, 202, r.text);
  await srv.stop();
});

// ---- rounds on demand and Slack -----------------------------------------------

test('POST /api/dnsbl/check runs a round; Slack: listed, no alert for listed -> unknown -> listed, delisted', T, async (t) => {
  const dns = await startDnsStub({
    records: {
      '31.2.0.192.bl.test': { a: ['127.0.0.2'], txt: ['Listed: see https://bl.test/31'] },
      // 192.0.2.32: NXDOMAIN at first
      '33.2.0.192.bl.test': 'timeout', // every round lasts at least 2 x 200 ms
    },
  });
  t.after(() => dns.close());
  const slack = await startSlackStub();
  t.after(() => slack.close());
  const srv = await startServer({
    t,
    args: dnsArgs(dns, [...flags('--dnsbl-ip', ['192.0.2.31', '192.0.2.32', '192.0.2.33']), '--dnsbl-zone', 'ip:bl.test',
      '--slack-webhook-url', slack.url]),
  });
  const get31 = (b) => checkCheck(b, '192.0.2.31', 'bl.test');
  const get32 = (b) => checkCheck(b, '192.0.2.32', 'bl.test');
  const get33 = (b) => checkCheck(b, '192.0.2.33', 'bl.test');

  // round 1: listed from nothing -> an alert
  const r1 = await waitRound(srv);
  assert.deepEqual([get31(r1).state, get32(r1).state, get33(r1).state], ['listed', 'not_listed', 'unknown']);
  await slack.waitFor(() => dnsblMessages(slack).length >= 1, { what: 'the listed alert' });
  const [m1] = dnsblMessages(slack);
  assert.equal(m1.text, '<!here> DNSBL: 192.0.2.31 is listed on bl.test (127.0.0.2): Listed: see https://bl.test/31');
  assert.ok(Array.isArray(m1.blocks) && m1.blocks.length > 0, `no blocks: ${JSON.stringify(m1)}`);
  const b1 = allText({ blocks: m1.blocks });
  for (const want of ['192.0.2.31', 'bl.test', '127.0.0.2']) assert.ok(b1.includes(want), `the blocks lack ${want}: ${b1}`);
  assert.equal(r1.changes.length, 1, JSON.stringify(r1.changes));
  assert.deepEqual(
    { target: r1.changes[0].target, zone: r1.changes[0].zone, to: r1.changes[0].to, answers: r1.changes[0].answers, reason: r1.changes[0].reason },
    { target: '192.0.2.31', zone: 'bl.test', to: 'listed', answers: ['127.0.0.2'], reason: 'Listed: see https://bl.test/31' });
  iso(r1.changes[0].at);

  // round 2 (on demand): .31 refused -> unknown, .32 listed -> an alert
  dns.set('31.2.0.192.bl.test', 'refused');
  dns.set('32.2.0.192.bl.test', { a: ['127.0.0.3'], txt: ['thirty-two'] });
  let res = await postCheck(srv);
  assert.equal(res.status, 202, res.text);
  assert.deepEqual(res.json, { status: 'started' });
  res = await postCheck(srv);
  assert.equal(res.status, 202, res.text);
  assert.deepEqual(res.json, { status: 'running' }, 'a second POST while the round (at least 400 ms) runs');
  assert.equal((await dnsbl(srv)).running, true, 'running while the round runs');
  const r2 = await waitRound(srv, { prev: r1.lastRunAt });
  assert.equal(get31(r2).state, 'unknown');
  assert.equal(get31(r2).error, 'refused');
  assert.ok(iso(get31(r2).since) > iso(get31(r1).since), 'since moves when the state changes');
  assert.equal(get32(r2).state, 'listed');
  assert.equal(get33(r2).state, 'unknown');
  assert.equal(get33(r2).since, get33(r1).since, 'since stays while the state stays');
  assert.ok(iso(get33(r2).checkedAt) > iso(get33(r1).checkedAt), 'checkedAt moves every round');
  assert.ok(iso(r2.lastRunAt) > iso(r1.lastRunAt));
  await slack.waitFor(() => dnsblMessages(slack).length >= 2, { what: 'the second listed alert' });
  assert.equal(dnsblMessages(slack)[1].text, '<!here> DNSBL: 192.0.2.32 is listed on bl.test (127.0.0.3): thirty-two');
  assert.equal(r2.changes.length, 2, `unknown is not a change: ${JSON.stringify(r2.changes)}`);
  assert.deepEqual([r2.changes[0].target, r2.changes[0].from, r2.changes[0].to], ['192.0.2.32', 'not_listed', 'listed'], 'latest first');

  // round 3: .31 listed again: nothing to say
  dns.set('31.2.0.192.bl.test', { a: ['127.0.0.2'], txt: ['Listed again'] });
  res = await postCheck(srv);
  assert.deepEqual([res.status, res.json?.status], [202, 'started'], res.text);
  const r3 = await waitRound(srv, { prev: r2.lastRunAt });
  assert.equal(get31(r3).state, 'listed');
  assert.equal(get31(r3).reason, 'Listed again');
  assert.equal(r3.changes.length, 2, `listed -> unknown -> listed is no change: ${JSON.stringify(r3.changes)}`);

  // round 4: .31 gone -> delisted
  dns.set('31.2.0.192.bl.test', 'nxdomain');
  res = await postCheck(srv);
  assert.deepEqual([res.status, res.json?.status], [202, 'started'], res.text);
  const r4 = await waitRound(srv, { prev: r3.lastRunAt });
  assert.equal(get31(r4).state, 'not_listed');
  assert.deepEqual(get31(r4).answers, []);
  assert.equal(get31(r4).reason, null);
  assert.equal(r4.changes.length, 3, JSON.stringify(r4.changes));
  assert.deepEqual([r4.changes[0].target, r4.changes[0].from, r4.changes[0].to], ['192.0.2.31', 'listed', 'not_listed']);
  await slack.waitFor(() => dnsblMessages(slack).length >= 3, { what: 'the delisted alert' });
  const msgs = dnsblMessages(slack);
  assert.match(msgs[2].text, /^(<!here> )?DNSBL: 192\.0\.2\.31 is no longer listed on bl\.test$/);
  assert.ok(Array.isArray(msgs[2].blocks) && msgs[2].blocks.length > 0, 'the delisted message has blocks');
  // the alerts of rounds 1, 2 and 4 came in order, so one for round 3 would be among them
  assert.equal(msgs.length, 3, `exactly three DNSBL messages: ${JSON.stringify(msgs.map((x) => x.text))}`);

  const m = await fetchMetrics(get, srv);
  assert.equal(m.series.get('seslog_dnsbl_listed{target="192.0.2.31",zone="bl.test"}'), 0);
  assert.equal(m.series.get('seslog_dnsbl_listed{target="192.0.2.32",zone="bl.test"}'), 1);
  assert.equal(m.series.get('seslog_dnsbl_unknown{target="192.0.2.33",zone="bl.test"}'), 1);
  assert.equal(m.series.get('seslog_dnsbl_unknown{target="192.0.2.31",zone="bl.test"}'), 0);
  await srv.stop();
});

test('a restart on the same database keeps since and the changes, and repeats no alert', T, async (t) => {
  const dns = await startDnsStub({ records: { '61.2.0.192.bl.test': { a: ['127.0.0.2'], txt: ['sixty-one'] } } });
  t.after(() => dns.close());
  const slack = await startSlackStub();
  t.after(() => slack.close());
  const dir = tempDir();
  const args = dnsArgs(dns, [...flags('--dnsbl-ip', ['192.0.2.61', '192.0.2.62']), '--dnsbl-zone', 'ip:bl.test',
    '--slack-webhook-url', slack.url, '--slack-mention', 'none']);
  let srv = await startServer({ t, dir, args });
  const r1 = await waitRound(srv);
  await slack.waitFor(() => dnsblMessages(slack).length >= 1, { what: 'the listed alert' });
  assert.equal(dnsblMessages(slack)[0].text, 'DNSBL: 192.0.2.61 is listed on bl.test (127.0.0.2): sixty-one', '--slack-mention none: no mention');
  const c61 = checkCheck(r1, '192.0.2.61', 'bl.test');
  assert.equal(c61.state, 'listed');
  await srv.stop();
  const tables = (await sqlite(srv.db, "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'dnsbl%' ORDER BY name")).map((r) => r.name);
  assert.deepEqual(tables.filter((n) => n === 'dnsbl_state' || n === 'dnsbl_changes'), ['dnsbl_changes', 'dnsbl_state']);

  // .62 becomes listed meanwhile: its alert after the restart marks the
  // point by which a repeated alert for .61 would have come too
  dns.set('62.2.0.192.bl.test', { a: ['127.0.0.4'], txt: ['sixty-two'] });
  const started = Date.now();
  srv = await startServer({ t, dir, args });
  const r2 = await waitRound(srv, {
    done: (b) => {
      const c = checkCheck(b, '192.0.2.61', 'bl.test');
      return c.checkedAt && Date.parse(c.checkedAt) > Date.parse(c61.checkedAt);
    },
  });
  const d61 = checkCheck(r2, '192.0.2.61', 'bl.test');
  assert.equal(d61.state, 'listed');
  assert.equal(d61.since, c61.since, 'since is kept across the restart');
  assert.ok(iso(d61.checkedAt) >= started - 1000);
  assert.equal(checkCheck(r2, '192.0.2.62', 'bl.test').state, 'listed');
  await slack.waitFor(() => dnsblMessages(slack).length >= 2, { what: 'the alert for 192.0.2.62' });
  const texts = dnsblMessages(slack).map((m) => m.text);
  assert.deepEqual(texts, [
    'DNSBL: 192.0.2.61 is listed on bl.test (127.0.0.2): sixty-one',
    'DNSBL: 192.0.2.62 is listed on bl.test (127.0.0.4): sixty-two',
  ], 'no repeated alert for 192.0.2.61 after the restart');
  assert.deepEqual(r2.changes.map((c) => `${c.target} ${c.to}`), ['192.0.2.62 listed', '192.0.2.61 listed'], 'the changes are kept across the restart');
  await srv.stop();
});

// ---- disabled, bad options -----------------------------------------------------

test('nothing watched: enabled false, no checks, POST /api/dnsbl/check 409, no DNS query, no metric lines', T, async (t) => {
  const dns = await startDnsStub();
  t.after(() => dns.close());
  const srv = await startServer({ t, args: ['--dns-server', dns.server, '--dnsbl-zone', 'ip:bl.test'] });
  const body = await dnsbl(srv);
  assert.equal(body.enabled, false);
  assert.equal(body.intervalSeconds, 3600, 'the default interval is 1 h');
  assert.deepEqual(body.checks, []);
  assert.deepEqual(body.changes, []);
  assert.deepEqual(body.summary, { listed: 0, notListed: 0, unknown: 0, pending: 0 });
  assert.equal(body.nextRunAt, null);
  assert.equal(body.lastRunAt ?? null, null);
  const res = await postCheck(srv);
  assertError(res, 409, 'dnsbl_disabled');
  const m = await fetchMetrics(get, srv);
  assert.deepEqual(m.lines.filter((l) => /^seslog_dnsbl_(listed|unknown)\{/.test(l)), []);
  await sleep(300); // a round, were one started, would have asked by now
  assert.deepEqual(dns.queries, []);
  await srv.stop();
});

test('bad --dnsbl-ip, --dnsbl-domain, --dnsbl-zone, --dns-server values exit 2 with one line naming the option', T, async () => {
  const dir = tempDir();
  const db = path.join(dir, 'x.db');
  const cases = [
    ['--dnsbl-ip', 'nonsense'],
    ['--dnsbl-ip', '192.0.2.300'],
    ['--dnsbl-ip', '2001:db8:::1'],
    ['--dnsbl-domain', 'bad..example'],
    ['--dnsbl-domain', 'exa mple.com'],
    ['--dnsbl-zone', ''],
    ['--dnsbl-zone', 'ip:'],
    ['--dns-server', 'bad'],
    ['--dns-server', '127.0.0.1:99999'],
    ['--dns-timeout', 'soon'],
    ['--dnsbl-interval', 'often'],
  ];
  // every case is run, and every problem reported at once
  const problems = [];
  for (const [opt, value] of cases) {
    const r = await runSeslog(['serve', '--db', db, '--listen', '127.0.0.1:0', '--dnsbl-ip', '192.0.2.1', opt, value], { timeout: 10000 });
    const what = `${opt} ${JSON.stringify(value)}`;
    const lines = r.stderr.trim().split('\n');
    const last = lines[lines.length - 1];
    if (r.code !== 2) problems.push(`${what}: exit ${r.code} (signal ${r.signal}), not 2`);
    if (!last.includes(opt)) problems.push(`${what}: the message does not name ${opt}: ${last}`);
    if (opt === '--dnsbl-ip' && !new RegExp(`^seslog serve: --dnsbl-ip "?${value.replace(/[.]/g, '\\.')}"?: .+`).test(last)) {
      problems.push(`${what}: not "seslog serve: --dnsbl-ip ${value}: ...": ${last}`);
    }
    if (lines.length !== 1) problems.push(`${what}: ${lines.length} lines on stderr, not one; the first: ${lines[0]}`);
    if (fs.existsSync(db)) {
      problems.push(`${what}: the database was created (and migrated) before the options were checked`);
      fs.rmSync(dir, { recursive: true, force: true });
      fs.mkdirSync(dir);
    }
  }
  assert.ok(problems.length === 0, `bad values:\n${problems.join('\n')}`);
  // the same through the environment
  const r = await runSeslog(['serve', '--db', db, '--listen', '127.0.0.1:0'], { env: { SESLOG_DNSBL_IP: '192.0.2.1,nonsense' }, timeout: 10000 });
  assert.equal(r.code, 2, `SESLOG_DNSBL_IP=192.0.2.1,nonsense: exit ${r.code}\n${r.stderr}`);
  assert.match(r.stderr, /DNSBL_IP|dnsbl-ip/i);
});
