// alerts.test.mjs - bounce and complaint alerts to Slack through the outbox
// (issue 6, CONTRACT section 6): one message per event, mentions and links,
// retries with backoff, 429 Retry-After, a hanging Slack, restarts during an
// outage, dead rows, digests for bursts, UnsubscribeConfirmation, /metrics,
// and secrets kept out of the log. Slack is tests/e2e/slackstub.mjs.
//
// The tests run concurrently (each has its own server and stub): most of
// their time is spent waiting for backoff timers and the minute boundary of
// the digest.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import http from 'node:http';
import {
  startServer, signEnvelope, post, get, sqlite, countEvents, sesFixture, uniqueBounce,
  assertStatus, sleep, tail, DEFAULT_TOPIC,
} from './lib.mjs';
import {
  startSlackStub, allText, eventMessageId, digestCount, fetchMetrics, poll,
} from './slackstub.mjs';

const PUBLIC = 'https://seslog.example.com';

/** A permanent bounce of `addresses` (default: one new address). */
function bounceTo(addresses, tag = crypto.randomUUID()) {
  const ses = uniqueBounce(tag);
  const list = addresses ?? [`user-${tag}@example.com`];
  ses.mail.destination = list;
  ses.bounce.bouncedRecipients = list.map((a) => ({
    emailAddress: a, status: '5.1.1', action: 'failed', diagnosticCode: `smtp; 550 5.1.1 <${a}>... User unknown`,
  }));
  return ses;
}

/** A complaint with a new mail.messageId and feedbackId. */
function uniqueComplaint(name = 'ses-notification-complaint-with-feedback-awsdocs') {
  const ses = sesFixture(name);
  const tag = crypto.randomUUID();
  ses.mail.messageId = `complaint-${tag}`;
  ses.complaint.feedbackId = `cfeedback-${tag}`;
  return ses;
}

function withId(name, prefix) {
  const ses = sesFixture(name);
  ses.mail.messageId = `${prefix}-${crypto.randomUUID()}`;
  return ses;
}

// One keep-alive agent per server process: a restarted server may get a
// port an earlier one had, and a pooled socket to the dead one would be
// reset.
const agents = new WeakMap();
function agentFor(srv) {
  if (!agents.has(srv)) agents.set(srv, new http.Agent({ keepAlive: true, maxSockets: 16 }));
  return agents.get(srv);
}

async function store(srv, ses, opts = {}) {
  const res = await postTo(srv, signEnvelope({ message: ses, ...opts }), {}, { agent: agentFor(srv) });
  assertStatus(res, 'stored');
  return ses.mail.messageId;
}

function postTo(srv, body) {
  return post(srv.url, '/sns', body, {}, { agent: agentFor(srv) });
}

function getFrom(srv, p, headers = {}) {
  return get(srv.url, p, headers, { agent: agentFor(srv) });
}

// Only bounces are posted here, so the bounce and complaint rates are
// 100 % (the monitors count bounces as sends when there are no Sends); the
// monitors would announce "alert" among the alerts under test. Thresholds
// no rate reaches keep them quiet; monitor.test.mjs tests them.
const QUIET = ['--bounce-warn', '1000', '--bounce-alert', '1000', '--complaint-warn', '1000', '--complaint-alert', '1000'];

function slackArgs(stub, extra = []) {
  return ['--slack-webhook-url', stub.url, ...QUIET, ...extra];
}

/** Requests of the stub carrying an event message about mid. */
function attemptsOf(stub, mid) {
  return stub.requests.filter((r) => eventMessageId(r.json) === mid);
}

function acceptedIds(stub) {
  return stub.requests.filter((r) => r.status === 200).map((r) => eventMessageId(r.json)).filter(Boolean);
}

function countBy(list) {
  const m = new Map();
  for (const x of list) m.set(x, (m.get(x) ?? 0) + 1);
  return m;
}

async function outboxRows(db) {
  return sqlite(db, 'SELECT id, sink, state, attempts, lastError, nextAttemptAt FROM outbox ORDER BY id');
}

function stubDump(stub) {
  return JSON.stringify(stub.requests.map((r) => ({ at: r.at, mode: r.mode, status: r.status, text: r.json?.text })), null, 1);
}

describe('Slack alerts', { concurrency: true }, () => {
  // The longest test first: it waits for the next minute's digest.
  test('a burst of 200 bounces with --slack-max-per-minute 10 becomes a few messages: individual ones, then one digest a minute', { timeout: 100000 }, async (t) => {
    const stub = await startSlackStub();
    t.after(() => stub.close());
    const srv = await startServer({ t, args: slackArgs(stub, ['--slack-max-per-minute', '10', '--public-url', PUBLIC]) });
    const N = 200;
    const domainOf = (i) => (i % 10 < 6 ? 'alpha.test' : i % 10 < 9 ? 'beta.test' : 'gamma.test');
    // signed one at a time between posts: signing all first would block
    // this process's event loop, and with it the stubs of concurrent tests
    let next = 0;
    const worker = async () => {
      while (next < N) {
        const i = next++;
        const env = signEnvelope({ message: bounceTo([`r${i}@${domainOf(i)}`], `burst-${i}-${crypto.randomUUID()}`) });
        assertStatus(await postTo(srv, env), 'stored');
      }
    };
    const burstStart = Date.now();
    await Promise.all(Array.from({ length: 8 }, worker));
    const burstEnd = Date.now();
    assert.equal(await countEvents(srv.db, "WHERE notificationType = 'Bounce'"), N);

    const covered = () => {
      let n = 0;
      for (const m of stub.accepted()) n += digestCount(m) ?? (eventMessageId(m) ? 1 : 0);
      return n;
    };
    await stub.waitFor(() => covered() >= N, { timeout: 75000, what: `all ${N} bounces announced` });
    await sleep(1000); // nothing more may come
    const msgs = stub.accepted();
    assert.equal(covered(), N, `individual messages plus digest counts must be exactly ${N}; got ${covered()}`);
    assert.equal(stub.requests.length, msgs.length, 'every request was answered 200, so none may be repeated');
    const individual = msgs.filter((m) => digestCount(m) === null);
    const digests = stub.requests.filter((r) => digestCount(r.json) !== null);
    assert.ok(msgs.length <= 20, `far fewer than ${N} messages expected, got ${msgs.length}`);
    assert.ok(digests.length >= 1, 'no digest arrived');
    // individual ones are distinct events
    const ids = individual.map(eventMessageId);
    assert.ok(ids.every(Boolean), 'a non-digest message without a messageId');
    assert.equal(new Set(ids).size, ids.length, 'an event was announced twice');
    // per minute: at most 10 individual messages and at most one digest
    const minuteOf = (r) => Math.floor((r.at - 20) / 60000);
    const perMinute = countBy(stub.requests.filter((r) => digestCount(r.json) === null).map(minuteOf));
    for (const [m, n] of perMinute) assert.ok(n <= 10, `${n} individual messages in minute ${m}`);
    const digestMinutes = countBy(digests.map(minuteOf));
    for (const [m, n] of digestMinutes) assert.ok(n <= 1, `${n} digests in minute ${m}`);
    // a digest soon after the burst (not only at the next minute)
    assert.ok(digests[0].at - burstEnd < 5000,
      `the first digest came ${digests[0].at - burstEnd} ms after the burst (burst took ${burstEnd - burstStart} ms)`);
    // what a digest says
    for (const d of digests) {
      const n = digestCount(d.json);
      const text = allText(d.json);
      assert.ok(Array.isArray(d.json.blocks) && d.json.blocks.length > 0, `digest without blocks: ${d.raw}`);
      assert.match(text, new RegExp(`Bounce Permanent \\(${n}\\)`), `digest of ${n} does not count them by type: ${text}`);
      assert.match(text, /Top recipient domains/, text);
      const dm = /\*Top recipient domains:\* ([^\n]*)/.exec(text);
      assert.ok(dm, `no domain list: ${text}`);
      const listed = [...dm[1].matchAll(/([a-z.]+) \((\d+)\)/g)].map((x) => ({ d: x[1], n: Number(x[2]) }));
      assert.ok(listed.length >= 1, `no domains counted: ${dm[1]}`);
      for (const x of listed) assert.ok(['alpha.test', 'beta.test', 'gamma.test'].includes(x.d), `unknown domain ${x.d}`);
      assert.equal(listed.reduce((a, x) => a + x.n, 0), n, `the domains of a digest of ${n} (one recipient each) must add up: ${dm[1]}`);
      if (n >= 30) assert.equal(listed[0].d, 'alpha.test', `the top domain must come first: ${dm[1]}`);
      assert.match(text, new RegExp(`john@example\\.com \\(${n}\\)`), `top sources missing: ${text}`);
      assert.ok(text.includes(`${PUBLIC}/#/events?type=Bounce`), `no link to the filtered view: ${text}`);
      assert.ok(d.json.text.startsWith('<!here>'), `digest without the mention: ${d.json.text}`);
    }
    assert.ok(await poll(async () => (await outboxRows(srv.db)).length === 0),
      `the outbox still holds ${(await outboxRows(srv.db)).length} rows after every alert was accepted ` +
      `(server ${srv.child.exitCode === null && srv.child.signalCode === null ? 'running' : `exited: ${srv.child.signalCode ?? srv.child.exitCode}`})`);
    await srv.stop();
  });

  test('each Bounce and Complaint is one Slack message (text + blocks, type, recipients, source, kind, diagnostic, link); Delivery and Send none', { timeout: 30000 }, async (t) => {
    const stub = await startSlackStub();
    t.after(() => stub.close());
    const srv = await startServer({ t, args: slackArgs(stub, ['--public-url', `${PUBLIC}/`]) });
    await store(srv, withId('ses-event-delivery-awsdocs', 'delivery'));
    await store(srv, withId('ses-event-send-awsdocs', 'send'));
    await store(srv, withId('ses-notification-delivery-awsdocs', 'ndelivery'));
    const committed = new Map(); // messageId -> when /sns answered (after the commit)
    const storeTimed = async (ses) => {
      const mid = await store(srv, ses);
      committed.set(mid, Date.now());
      return mid;
    };
    const m1 = await storeTimed(uniqueBounce());
    const m2 = await storeTimed(uniqueComplaint());
    const many = Array.from({ length: 12 }, (_, i) => `many${i}@example.org`);
    const m3 = await storeTimed(bounceTo(many));
    const m4 = await storeTimed(uniqueComplaint('ses-notification-complaint-no-feedback-type-awsdocs'));
    await store(srv, withId('ses-event-delivery-awsdocs', 'delivery'));
    await stub.waitFor((s) => s.accepted().length >= 4, { what: '4 messages' });
    await sleep(700);
    const msgs = stub.accepted();
    assert.equal(msgs.length, 4, `exactly the 2 bounces and 2 complaints, nothing for deliveries and sends: ${stubDump(stub)}`);
    assert.deepEqual(msgs.map(eventMessageId), [m1, m2, m3, m4], 'one message per event, in commit order');
    // issue 6's target is 1 s (p99); 2 s leaves room for a loaded test machine
    for (const r of stub.requests) {
      const lag = r.at - committed.get(eventMessageId(r.json));
      assert.ok(lag < 2000, `an alert reached Slack ${lag} ms after its commit`);
    }
    for (const r of stub.requests) {
      assert.equal(r.method, 'POST');
      assert.match(r.headers['content-type'] ?? '', /^application\/json/);
      assert.equal(typeof r.json?.text, 'string', `no plain "text" fallback: ${r.raw}`);
      assert.ok(r.json.text.length > 0);
      assert.ok(Array.isArray(r.json.blocks) && r.json.blocks.length > 0, `no blocks: ${r.raw}`);
      for (const b of r.json.blocks) assert.equal(typeof b.type, 'string', `a block without type: ${r.raw}`);
      assert.ok(r.json.text.startsWith('<!here>'), `the default mention is <!here>: ${r.json.text}`);
    }
    // the bounce
    const t1 = allText(msgs[0]);
    for (const want of ['Bounce', 'jane@example.com', 'john@example.com', 'Permanent', 'General', '550 5.1.1']) {
      assert.ok(t1.includes(want), `bounce message lacks ${want}: ${t1}`);
    }
    assert.ok(msgs[0].text.includes('jane@example.com') && msgs[0].text.includes('Bounce'), `plain fallback: ${msgs[0].text}`);
    assert.ok(t1.includes(`<${PUBLIC}/#/events/${m1}|`), `no link to the mail (trailing slash of --public-url dropped): ${t1}`);
    // the complaint
    const t2 = allText(msgs[1]);
    for (const want of ['Complaint', 'richard@example.com', 'john@example.com', 'abuse']) {
      assert.ok(t2.includes(want), `complaint message lacks ${want}: ${t2}`);
    }
    assert.ok(t2.includes(`${PUBLIC}/#/events/${m2}`), t2);
    // twelve recipients: the first ten and "2 more"
    const t3 = allText(msgs[2]);
    assert.ok(t3.includes('many0@example.org') && t3.includes('many9@example.org'), t3);
    assert.ok(!t3.includes('many10@example.org'), `more than ten recipients listed: ${t3}`);
    assert.match(t3, /and 2 more/, t3);
    // a complaint without a feedback type still says what it is
    const t4 = allText(msgs[3]);
    assert.ok(t4.includes('Complaint') && t4.includes('richard@example.com'), t4);
    assert.equal(await sqlite(srv.db, 'SELECT count(*) AS n FROM outbox').then((r) => r[0].n), 0, 'delivered rows stay in the outbox');
    await srv.stop();
  });

  test('--slack-mention here|channel|none: <!here>, <!channel>, nothing', { timeout: 30000 }, async (t) => {
    const cases = [['here', '<!here>'], ['channel', '<!channel>'], ['none', null]];
    await Promise.all(cases.map(async ([mention, want]) => {
      const stub = await startSlackStub();
      t.after(() => stub.close());
      const srv = await startServer({ t, args: slackArgs(stub, ['--slack-mention', mention]) });
      const mid = await store(srv, uniqueBounce());
      const [msg] = await stub.waitFor((s) => s.accepted().length >= 1 && s.accepted(), { what: 'a message' });
      assert.equal(eventMessageId(msg), mid);
      const text = allText(msg);
      if (want) {
        assert.ok(msg.text.startsWith(want), `--slack-mention ${mention}: ${msg.text}`);
        assert.ok(msg.blocks[0].text.text.startsWith(want), `--slack-mention ${mention} in blocks: ${msg.blocks[0].text.text}`);
      } else {
        assert.ok(!/<!(here|channel|everyone)>/.test(text), `--slack-mention none still mentions: ${text}`);
        assert.ok(msg.text.startsWith('Bounce'), msg.text);
      }
      await srv.stop();
    }));
    // and a bad value is refused at start
    const stub = await startSlackStub();
    t.after(() => stub.close());
    await assert.rejects(startServer({ t, args: slackArgs(stub, ['--slack-mention', 'everyone']) }), /exited \(code 2/);
  });

  test('Slack answering 500, then up again: retries back off (~1 s, ~2 s), every alert arrives exactly once', { timeout: 40000 }, async (t) => {
    const stub = await startSlackStub({ mode: 'fail' });
    t.after(() => stub.close());
    const srv = await startServer({ t, args: slackArgs(stub, ['--slack-max-per-minute', '100']) });
    const ids = [];
    for (let i = 0; i < 3; i++) ids.push(await store(srv, uniqueBounce()));
    await stub.waitFor(() => ids.every((id) => attemptsOf(stub, id).length >= 3), { timeout: 15000, what: '3 attempts of each alert' });
    for (const id of ids) {
      const at = attemptsOf(stub, id).map((r) => r.at);
      const g1 = at[1] - at[0];
      const g2 = at[2] - at[1];
      assert.ok(g1 >= 720 && g1 <= 2000, `first retry ${g1} ms after the first attempt (expected ~1 s ±25 %)`);
      assert.ok(g2 >= 1450 && g2 <= 3500, `second retry ${g2} ms after the first retry (expected ~2 s ±25 %)`);
    }
    // the rows wait in the database with their error
    const rows = await poll(async () => {
      const r = await outboxRows(srv.db);
      return r.length === 3 && r.every((x) => x.attempts >= 2) && r;
    });
    assert.ok(rows, `outbox rows: ${JSON.stringify(await outboxRows(srv.db))}`);
    for (const r of rows) {
      assert.equal(r.sink, 'slack');
      assert.equal(r.state, 'pending');
      assert.match(r.lastError ?? '', /500/, `lastError: ${r.lastError}`);
    }
    const m = await fetchMetrics(get, srv);
    assert.equal(m.series.get('seslog_outbox_pending{sink="slack"}'), 3, 'pending gauge during the outage');

    stub.setMode('ok');
    await stub.waitFor(() => ids.every((id) => acceptedIds(stub).includes(id)), { timeout: 12000, what: 'every alert accepted after recovery' });
    await sleep(1500);
    const counts = countBy(acceptedIds(stub));
    for (const id of ids) assert.equal(counts.get(id), 1, `alert ${id} accepted ${counts.get(id)} times`);
    for (const id of ids) {
      const list = attemptsOf(stub, id);
      assert.equal(list[list.length - 1].status, 200, `alert ${id} was sent again after Slack accepted it`);
    }
    assert.ok(await poll(async () => (await outboxRows(srv.db)).length === 0), 'the outbox is not empty after delivery');
    const after = await fetchMetrics(get, srv);
    assert.equal(after.series.get('seslog_outbox_pending{sink="slack"}'), 0);
    assert.equal(after.series.get('seslog_outbox_delivered_total{sink="slack"}'), 3);
    await srv.stop();
  });

  test('429 with Retry-After: 2: the next attempt comes no sooner than 2 s later', { timeout: 30000 }, async (t) => {
    const stub = await startSlackStub();
    t.after(() => stub.close());
    stub.script('ratelimit');
    stub.setMode('ok', { retryAfter: 2 });
    const srv = await startServer({ t, args: slackArgs(stub) });
    const mid = await store(srv, uniqueBounce());
    await stub.waitFor(() => acceptedIds(stub).includes(mid), { timeout: 10000, what: 'the alert after the 429' });
    await sleep(500);
    assert.equal(stub.requests.length, 2, stubDump(stub));
    assert.equal(stub.requests[0].status, 429);
    const gap = stub.requests[1].at - stub.requests[0].at;
    assert.ok(gap >= 1900, `retried ${gap} ms after a 429 with Retry-After: 2`);
    assert.ok(gap <= 4000, `retried only ${gap} ms after a 429 with Retry-After: 2`);
    await srv.stop();
  });

  test('429 with Retry-After: 2 holds back the alerts queued behind it too', { timeout: 30000 }, async (t) => {
    // Slack's rate limit is per webhook: after a 429 no request may go out
    // before Retry-After, whichever alert it carries.
    const stub = await startSlackStub();
    t.after(() => stub.close());
    stub.script({ mode: 'ratelimit', delay: 400 });
    stub.setMode('ok', { retryAfter: 2 });
    const srv = await startServer({ t, args: slackArgs(stub) });
    const a = await store(srv, uniqueBounce());
    await stub.waitFor((s) => s.requests.length >= 1, { what: 'the first request' });
    const b = await store(srv, uniqueBounce()); // committed while the first request waits for its 429
    await stub.waitFor(() => [a, b].every((id) => acceptedIds(stub).includes(id)), { timeout: 10000, what: 'both alerts' });
    const r429 = stub.requests[0];
    assert.equal(r429.status, 429);
    const next = stub.requests[1];
    const gap = next.at - r429.answeredAt;
    assert.ok(gap >= 1900,
      `a request (for ${eventMessageId(next.json) === b ? 'the queued alert' : 'the limited alert'}) went out ${gap} ms ` +
      `after Slack answered 429 with Retry-After: 2: ${stubDump(stub)}`);
    await srv.stop();
  });

  test('Slack hanging: ingest is not slowed; the request times out and the alert arrives later', { timeout: 40000 }, async (t) => {
    const stub = await startSlackStub();
    t.after(() => stub.close());
    stub.script('hang');
    const srv = await startServer({ t, args: slackArgs(stub) });
    const a = await store(srv, uniqueBounce());
    await stub.waitFor((s) => s.requests.length >= 1, { what: 'the first (hanging) request' });
    const t0 = Date.now();
    const b = await store(srv, uniqueBounce());
    const more = [];
    for (let i = 0; i < 20; i++) more.push(await store(srv, withId('ses-event-delivery-awsdocs', 'delivery')));
    const took = Date.now() - t0;
    assert.ok(took < 3000, `21 posts took ${took} ms while Slack hangs`);
    await stub.waitFor(() => [a, b].every((id) => acceptedIds(stub).includes(id)), { timeout: 25000, what: 'both alerts after the hang' });
    const retryA = stub.requests.find((r, i) => i > 0 && eventMessageId(r.json) === a);
    assert.ok(retryA.at - stub.requests[0].at >= 5000, `the hanging request was given up after only ${retryA.at - stub.requests[0].at} ms`);
    await sleep(500);
    const counts = countBy(acceptedIds(stub));
    assert.equal(counts.get(a), 1);
    assert.equal(counts.get(b), 1);
    await srv.stop();
  });

  test('restart during an outage: every alert arrives exactly once after it; the outbox ends empty', { timeout: 40000 }, async (t) => {
    const stub = await startSlackStub({ mode: 'fail' });
    t.after(() => stub.close());
    const args = slackArgs(stub, ['--slack-max-per-minute', '100']);
    const srv = await startServer({ t, args });
    const ids = [];
    for (let i = 0; i < 3; i++) ids.push(await store(srv, uniqueBounce()));
    ids.push(await store(srv, uniqueComplaint()));
    await stub.waitFor(() => ids.every((id) => attemptsOf(stub, id).length >= 1), { what: 'a first attempt of each' });
    await srv.stop();
    const rows = await outboxRows(srv.db);
    assert.equal(rows.length, 4, `rows after the stop: ${JSON.stringify(rows)}`);
    assert.ok(rows.every((r) => r.state === 'pending'), JSON.stringify(rows));
    const before = stub.requests.length;
    stub.setMode('ok');
    const again = await startServer({ t, dir: srv.dir, args });
    await stub.waitFor(() => ids.every((id) => acceptedIds(stub).includes(id)), { timeout: 15000, what: 'every alert after the restart' });
    await sleep(1500);
    const counts = countBy(acceptedIds(stub));
    for (const id of ids) assert.equal(counts.get(id), 1, `alert ${id} accepted ${counts.get(id) ?? 0} times`);
    assert.equal(stub.requests.length - before, 4, `requests after the restart: ${stubDump(stub)}`);
    assert.ok(await poll(async () => (await outboxRows(again.db)).length === 0),
      `the outbox is not empty: ${JSON.stringify(await outboxRows(again.db))}`);
    await again.stop();
  });

  test('an alert Slack accepted before a restart is not sent again after it', { timeout: 30000 }, async (t) => {
    const stub = await startSlackStub();
    t.after(() => stub.close());
    const args = slackArgs(stub);
    const srv = await startServer({ t, args });
    const a = await store(srv, uniqueBounce());
    await stub.waitFor(() => acceptedIds(stub).includes(a), { what: 'the alert' });
    await srv.stop(); // right after Slack's 200
    const again = await startServer({ t, dir: srv.dir, args });
    const b = await store(again, uniqueBounce()); // proves the new server sends
    await stub.waitFor(() => acceptedIds(stub).includes(b), { what: 'the second alert' });
    await sleep(1500);
    assert.equal(attemptsOf(stub, a).length, 1, `the accepted alert was sent again after the restart: ${stubDump(stub)}`);
    assert.equal(stub.requests.length, 2, stubDump(stub));
    assert.equal((await outboxRows(again.db)).length, 0);
    await again.stop();
  });

  test('SIGTERM while Slack hangs with 1000 alerts queued: clean exit; after a restart each arrives exactly once', { timeout: 90000 }, async (t) => {
    const stub = await startSlackStub({ mode: 'hang' });
    t.after(() => stub.close());
    const args = slackArgs(stub, ['--slack-max-per-minute', '100000']);
    const srv = await startServer({ t, args });
    const N = 1000;
    const ids = [];
    let next = 0;
    await Promise.all(Array.from({ length: 8 }, async () => {
      while (next < N) {
        const ses = bounceTo(undefined, `q-${next++}-${crypto.randomUUID()}`);
        ids.push(ses.mail.messageId);
        assertStatus(await postTo(srv, signEnvelope({ message: ses })), 'stored');
      }
    }));
    assert.ok(stub.requests.length >= 1 && stub.requests.every((r) => r.status === null), 'Slack answered nothing');
    srv.child.kill('SIGTERM');
    const r = await srv.exited;
    assert.equal(r.signal, null, `server died of ${r.signal} on SIGTERM with ${N} alerts queued; stderr:\n${tail(srv.stderr, 15)}`);
    assert.equal(r.code, 0, `exit code ${r.code}; stderr:\n${tail(srv.stderr, 15)}`);
    assert.equal((await outboxRows(srv.db)).length, N);
    stub.release();
    stub.setMode('ok');
    const again = await startServer({ t, dir: srv.dir, args });
    await stub.waitFor(() => acceptedIds(stub).length >= N, { timeout: 60000, interval: 250, what: `${N} alerts after the restart` });
    await sleep(1000);
    const counts = countBy(acceptedIds(stub));
    const missing = ids.filter((id) => !counts.has(id));
    const twice = ids.filter((id) => counts.get(id) > 1);
    assert.deepEqual(missing, [], 'alerts lost');
    assert.deepEqual(twice, [], 'alerts sent twice');
    assert.ok(await poll(async () => (await outboxRows(again.db)).length === 0, { timeout: 5000 }));
    await again.stop();
  });

  test('404 no_service: the row becomes dead, is counted in /metrics and never retried (also after a restart)', { timeout: 30000 }, async (t) => {
    const stub = await startSlackStub({ mode: 'no_service' });
    t.after(() => stub.close());
    const args = slackArgs(stub);
    const srv = await startServer({ t, args });
    const a = await store(srv, uniqueBounce());
    await stub.waitFor((s) => s.requests.length >= 1, { what: 'the request' });
    const rows = await poll(async () => {
      const r = await outboxRows(srv.db);
      return r.length === 1 && r[0].state === 'dead' && r;
    });
    assert.ok(rows, `outbox: ${JSON.stringify(await outboxRows(srv.db))}`);
    assert.match(rows[0].lastError ?? '', /404/);
    assert.match(rows[0].lastError ?? '', /no_service/);
    const m = await fetchMetrics(get, srv);
    assert.equal(m.series.get('seslog_outbox_dead_total{sink="slack"}'), 1, m.text);
    assert.equal(m.series.get('seslog_outbox_pending{sink="slack"}'), 0, m.text);
    await sleep(2500);
    assert.equal(stub.requests.length, 1, `a dead row was retried: ${stubDump(stub)}`);
    assert.equal(eventMessageId(stub.requests[0].json), a);
    await srv.stop();

    stub.setMode('ok');
    const again = await startServer({ t, dir: srv.dir, args });
    const b = await store(again, uniqueBounce());
    await stub.waitFor(() => acceptedIds(stub).includes(b), { what: 'a new alert after the restart' });
    await sleep(1500);
    assert.equal(attemptsOf(stub, a).length, 1, `the dead row was sent after the restart: ${stubDump(stub)}`);
    const m2 = await fetchMetrics(get, again);
    assert.equal(m2.series.get('seslog_outbox_dead_total{sink="slack"}'), 1, 'the dead count after a restart');
    const dead = await sqlite(again.db, "SELECT count(*) AS n FROM outbox WHERE state = 'dead'");
    assert.equal(dead[0].n, 1, 'the dead row is kept');
    await again.stop();
  });

  test('a dead outbox row is shown in /api/diagnostics', { timeout: 20000 }, async (t) => {
    // issue 6: "moves a row to a dead state that /api/diagnostics and
    // /metrics show"; CONTRACT 5: diagnostics has the "outbox ... state".
    const stub = await startSlackStub({ mode: 'no_service' });
    t.after(() => stub.close());
    const srv = await startServer({ t, args: slackArgs(stub) });
    await store(srv, uniqueBounce());
    assert.ok(await poll(async () => (await sqlite(srv.db, "SELECT count(*) AS n FROM outbox WHERE state = 'dead'"))[0].n === 1));
    const res = await getFrom(srv, '/api/diagnostics');
    assert.equal(res.status, 200, res.text);
    const outboxKey = Object.keys(res.json).find((k) => /outbox/i.test(k));
    assert.ok(outboxKey, `/api/diagnostics has no outbox state: ${res.text}`);
    const text = JSON.stringify(res.json[outboxKey]);
    assert.match(text, /slack/, `the outbox state does not name the slack sink: ${text}`);
    assert.match(text, /"dead[A-Za-z]*":1\b/, `the outbox state does not count the dead row: ${text}`);
    await srv.stop();
  });

  test('UnsubscribeConfirmation: a Slack message naming the topic', { timeout: 20000 }, async (t) => {
    const stub = await startSlackStub();
    t.after(() => stub.close());
    const srv = await startServer({ t, args: slackArgs(stub) });
    const topic = 'arn:aws:sns:us-east-1:123456789012:ses-bounces-eu';
    const env = signEnvelope({ type: 'UnsubscribeConfirmation', topicArn: topic, message: 'You have chosen to deactivate subscription.' });
    const res = await postTo(srv, env);
    assert.equal(res.status, 200, res.text);
    const [msg] = await stub.waitFor((s) => s.accepted().length >= 1 && s.accepted(), { what: 'the unsubscribe message' });
    const text = allText(msg);
    assert.ok(text.includes(topic), `the message does not name the topic: ${text}`);
    assert.match(text, /unsubscri|subscription removed/i, text);
    assert.ok(Array.isArray(msg.blocks) && typeof msg.text === 'string');
    assert.ok(msg.text.startsWith('<!here>'), msg.text);
    assert.equal(await countEvents(srv.db), 0);
    // a tampered one is refused and announces nothing
    const bad = signEnvelope({ type: 'UnsubscribeConfirmation', topicArn: topic, message: 'x' });
    bad.Message = 'y';
    assert.equal((await postTo(srv, bad)).status, 403);
    await sleep(700);
    assert.equal(stub.requests.length, 1, stubDump(stub));
    await srv.stop();
  });

  test('/metrics: events by type, rates, monitor states, refusals by reason, outbox pending, ingest latency histogram, database size', { timeout: 30000 }, async (t) => {
    const stub = await startSlackStub();
    t.after(() => stub.close());
    const args = slackArgs(stub);
    const srv = await startServer({ t, args });
    for (let i = 0; i < 3; i++) await store(srv, uniqueBounce());
    await store(srv, uniqueComplaint());
    await store(srv, withId('ses-event-delivery-awsdocs', 'delivery'));
    await store(srv, withId('ses-event-send-awsdocs', 'send'));
    const bad = signEnvelope({ message: uniqueBounce() });
    bad.Message = bad.Message.replace('Permanent', 'Transient');
    assert.equal((await postTo(srv, bad)).status, 403);
    assert.equal((await postTo(srv, '{"Type":')).status, 400);
    assert.equal((await postTo(srv, { ...signEnvelope({ message: uniqueBounce() }), TopicArn: DEFAULT_TOPIC, SigningCertURL: 'https://evil.example.com/x.pem' })).status, 403);
    await stub.waitFor((s) => s.accepted().length >= 4, { what: '4 alerts' });

    const res = await getFrom(srv, '/metrics');
    assert.equal(res.status, 200);
    assert.match(res.headers['content-type'] ?? '', /^text\/plain/);
    const m = await poll(async () => {
      const x = await fetchMetrics(get, srv);
      return x.series.get('seslog_outbox_pending{sink="slack"}') === 0 && x;
    });
    assert.ok(m, 'outbox pending never reached 0');
    const s = m.series;
    assert.equal(s.get('seslog_events_total{type="Bounce"}'), 3, m.text);
    assert.equal(s.get('seslog_events_total{type="Complaint"}'), 1);
    assert.equal(s.get('seslog_events_total{type="Delivery"}'), 1);
    assert.equal(s.get('seslog_events_total{type="Send"}'), 1);
    assert.equal(s.get('seslog_events_total{type="Bounce"}'), await countEvents(srv.db, "WHERE notificationType = 'Bounce'"));
    for (const g of ['seslog_bounce_rate', 'seslog_complaint_rate']) {
      assert.ok(s.has(g), `${g} missing`);
      assert.ok(s.get(g) >= 0 && s.get(g) <= 1, `${g} = ${s.get(g)}`);
      assert.equal(m.types.get(g), 'gauge');
    }
    assert.ok(s.has('seslog_monitor_state{monitor="bounceRate"}') && s.has('seslog_monitor_state{monitor="complaintRate"}'), m.text);
    assert.equal(s.get('seslog_sns_rejected_total{reason="bad_signature"}'), 1, m.text);
    assert.equal(s.get('seslog_sns_rejected_total{reason="bad_json"}'), 1, m.text);
    assert.equal(s.get('seslog_sns_rejected_total{reason="certificate_url"}'), 1, m.text);
    assert.equal(m.types.get('seslog_sns_rejected_total'), 'counter');
    assert.equal(m.types.get('seslog_events_total'), 'counter');
    assert.equal(s.get('seslog_outbox_pending{sink="slack"}'), 0);
    assert.equal(s.get('seslog_outbox_dead_total{sink="slack"}'), 0);
    // the latency histogram
    const hist = [...m.types].find(([name, type]) => type === 'histogram' && /ingest/.test(name));
    assert.ok(hist, `no ingest latency histogram: ${[...m.types].join(' ')}`);
    const h = hist[0];
    const buckets = [...s].filter(([k]) => k.startsWith(`${h}_bucket{`));
    assert.ok(buckets.length >= 5, 'too few buckets');
    for (let i = 1; i < buckets.length; i++) assert.ok(buckets[i][1] >= buckets[i - 1][1], `buckets not cumulative: ${buckets.join(' ')}`);
    const inf = s.get(`${h}_bucket{le="+Inf"}`);
    assert.equal(inf, s.get(`${h}_count`));
    assert.ok(inf >= 6, `${inf} ingest observations for 6 stored notifications`);
    assert.ok(s.get(`${h}_sum`) > 0);
    // the database size
    const dbSize = [...s].find(([k]) => /^seslog_database.*bytes/.test(k));
    assert.ok(dbSize && dbSize[1] > 0, `no database size: ${m.text}`);
    // every sample belongs to a declared family
    for (const k of s.keys()) {
      const name = k.replace(/\{.*$/, '');
      const fam = [...m.types.keys()].find((f) => name === f || name.startsWith(`${f}_`));
      assert.ok(fam, `${name} has no # TYPE line`);
    }
    await srv.stop();

    // the event counts survive a restart (counted from the table)
    const again = await startServer({ t, dir: srv.dir, args });
    const m2 = await poll(async () => {
      const x = await fetchMetrics(get, again);
      return x.series.get('seslog_events_total{type="Bounce"}') === 3 && x;
    }, { timeout: 5000 });
    assert.ok(m2, `after a restart: ${(await fetchMetrics(get, again)).text}`);
    assert.equal(m2.series.get('seslog_events_total{type="Complaint"}'), 1);
    await again.stop();
  });

  test('/metrics without Slack still has seslog_outbox_pending{sink="slack"} 0; with --api-token it needs the token', { timeout: 20000 }, async (t) => {
    const srv = await startServer({ t, args: ['--api-token', 'metrics-token-1'] });
    assert.equal((await getFrom(srv, '/metrics')).status, 401);
    assert.equal((await getFrom(srv, '/metrics', { authorization: 'Bearer wrong' })).status, 401);
    const m = await fetchMetrics(get, srv, { authorization: 'Bearer metrics-token-1' });
    assert.equal(m.series.get('seslog_outbox_pending{sink="slack"}'), 0, m.text);
    await srv.stop();
  });

  test('secrets never reach the log: the webhook URL and the API token', { timeout: 40000 }, async (t) => {
    const SECRET_PATH = '/services/T000/B000/SECRETXYZ';
    const TOKEN = 'tok-SECRETTOKEN-4711';
    const stub = await startSlackStub({ path: SECRET_PATH, mode: 'fail' });
    t.after(() => stub.close());
    const logs = [];
    // 1: flags; Slack fails (500), then 404 no_service, then 429
    const srv = await startServer({ t, args: ['--slack-webhook-url', stub.url, '--api-token', TOKEN] });
    const auth = { authorization: `Bearer ${TOKEN}` };
    await store(srv, uniqueBounce());
    await stub.waitFor((s) => s.requests.length >= 2, { what: 'two failed attempts' });
    assert.equal(stub.requests[0].path, SECRET_PATH, 'the webhook was called on another path');
    stub.script('ratelimit');
    stub.setMode('no_service', { retryAfter: 1 });
    await store(srv, uniqueBounce());
    await sleep(2500);
    assert.equal((await getFrom(srv, '/metrics', auth)).status, 200);
    assert.equal((await getFrom(srv, '/api/diagnostics', auth)).status, 200);
    assert.equal((await getFrom(srv, '/metrics', { authorization: 'Bearer tok-SECRETTOKEN-wrong' })).status, 401);
    assert.equal((await getFrom(srv, `/api/events?x=1`, { authorization: `Basic ${Buffer.from(`u:${TOKEN}`).toString('base64')}` })).status, 401);
    await srv.stop();
    logs.push(['flags', srv.stderr + srv.stdout]);

    // 2: the environment; the webhook unreachable (connection refused)
    const closed = http.createServer();
    await new Promise((r) => closed.listen(0, '127.0.0.1', r));
    const deadPort = closed.address().port;
    await new Promise((r) => closed.close(r));
    const srv2 = await startServer({
      t,
      env: { SESLOG_SLACK_WEBHOOK_URL: `http://127.0.0.1:${deadPort}${SECRET_PATH}`, SESLOG_API_TOKEN: TOKEN },
    });
    await store(srv2, uniqueBounce());
    assert.equal((await getFrom(srv2, '/metrics')).status, 401, 'SESLOG_API_TOKEN not applied');
    await poll(async () => /slack|outbox/i.test(srv2.stderr) && /level=warn[^\n]*(slack|deliver)/i.test(srv2.stderr), { timeout: 5000 });
    await sleep(1500);
    await srv2.stop();
    logs.push(['env', srv2.stderr + srv2.stdout]);

    for (const [name, log] of logs) {
      for (const secret of ['SECRETXYZ', 'T000/B000', TOKEN, 'SECRETTOKEN']) {
        assert.ok(!log.includes(secret), `the ${name} server logged "${secret}":\n` +
          log.split('\n').filter((l) => l.includes(secret)).join('\n'));
      }
    }
    // the failures were logged, just without the secrets
    assert.match(logs[0][1], /level=warn[^\n]*slack/i, 'a failed Slack delivery is not logged at all');
  });
});
