// dynamodb-faults.test.mjs - what DynamoDB answers besides "written", made
// with a proxy in front of dynalite that answers for it: UnprocessedItems
// (only those rows are retried), throttling (ThrottlingException,
// ProvisionedThroughputExceededException) and 5xx retried with backoff, a
// ValidationException that kills only the bad row (kept dead with the error),
// and every request signed with SigV4 including the session token.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { uniqueBounce, sqlite, sleep } from './lib.mjs';
import {
  TABLE, AWS_ENV, missingTools, startDynalite, createTable, scanItems, byKey, expectedItem,
  startReplicating, postEvent, drained, replication, metric, startProxy, waitFor,
} from './dynamodb-lib.mjs';

const T = { timeout: 60000 };
const TOKEN = 'FwoGZXIvYXdzEBYaDTestSessionToken+/=abc';
let dyn;
let proxy;
let srv;

before(async () => {
  const missing = missingTools();
  assert.equal(missing, null, `${missing}`);
  dyn = await startDynalite();
  await createTable(dyn.url);
  proxy = await startProxy(dyn.url);
  srv = await startReplicating(proxy.url, { env: { AWS_SESSION_TOKEN: TOKEN } });
});

after(async () => {
  if (srv) await srv.stop();
  if (proxy) await proxy.close();
  if (dyn) await dyn.stop();
});

/** The keys "messageId|timeStamp" a BatchWriteItem request names. */
function keysOf(rec) {
  return (rec.body?.RequestItems?.[TABLE] ?? []).map((r) => `${r.PutRequest.Item.messageId.S}|${r.PutRequest.Item.timeStamp.S}`);
}

/**
 * Holds the next BatchWriteItem until release() is called, so that the rows
 * posted meanwhile go out together in the following request. Returns
 * {held: a promise of the held request, release()}.
 */
function holdNext() {
  let release;
  let seen;
  const gate = new Promise((r) => { release = r; });
  const held = new Promise((r) => { seen = r; });
  let done = false;
  proxy.intercept = async (rec) => {
    if (rec.target !== 'BatchWriteItem' || done) return undefined;
    done = true;
    seen(rec);
    await gate;
    return undefined;
  };
  return { held, release: () => release() };
}

/** Posts one event, then n more while the first is held: returns them all. */
async function postBatch(n, tag) {
  const h = holdNext();
  const first = uniqueBounce(`${tag}-first`);
  const all = [{ ses: first, ts: await postEvent(srv, first) }];
  await h.held;
  const rest = Array.from({ length: n }, (_, i) => uniqueBounce(`${tag}-${i}`));
  const ts = await Promise.all(rest.map((ses) => postEvent(srv, ses)));
  rest.forEach((ses, i) => all.push({ ses, ts: ts[i] }));
  return { all, release: h.release };
}

test('UnprocessedItems: only those rows are retried', T, async () => {
  const { all, release } = await postBatch(8, 'unproc');
  let unprocessed = null;
  const next = proxy.writes().length;
  proxy.intercept = (rec, body) => {
    if (rec.target !== 'BatchWriteItem' || unprocessed || keysOf(rec).length < 2) return undefined;
    const puts = body.RequestItems[TABLE];
    const keep = puts.slice(0, puts.length - 3);
    unprocessed = keysOf({ body: { RequestItems: { [TABLE]: puts.slice(-3) } } });
    return { forward: { RequestItems: { [TABLE]: keep } }, status: 200,
      body: { UnprocessedItems: { [TABLE]: puts.slice(-3) } } };
  };
  release();
  await drained(srv);
  proxy.intercept = null;
  assert.ok(unprocessed, 'a request carried several rows');
  const writes = proxy.writes().slice(next);
  const big = writes.findIndex((w) => keysOf(w).length >= 2);
  // after the answer with UnprocessedItems, only those keys were sent again
  const later = writes.slice(big + 1).flatMap(keysOf);
  assert.deepEqual([...new Set(later)].sort(), [...unprocessed].sort());
  const got = byKey(await scanItems(dyn.url));
  for (const { ses, ts } of all) assert.deepEqual(got.get(`${ses.mail.messageId}|${ts}`), expectedItem(ses, ts));
  assert.equal(await metric(srv, 'seslog_dynamodb_unprocessed_items_total'), 3);
  const rep = await replication(srv);
  assert.equal(rep.dead, 0);
  assert.match(rep.lastError, /DynamoDB left 3 of \d+ items unprocessed/);
});

test('throttling and a 5xx are retried with backoff', T, async () => {
  const answers = [
    { status: 400, body: { __type: 'com.amazonaws.dynamodb.v20120810#ThrottlingException', message: 'Rate of requests exceeds the allowed throughput.' } },
    { status: 400, body: { __type: 'com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException', message: 'The level of configured provisioned throughput for the table was exceeded.' } },
    { status: 500, body: { __type: 'com.amazon.coral.service#InternalFailure' } },
  ];
  const times = [];
  proxy.intercept = (rec) => {
    if (rec.target !== 'BatchWriteItem') return undefined;
    times.push(Date.now());
    return answers.shift();
  };
  const before = {
    throttled: await metric(srv, 'seslog_dynamodb_requests_total', '{outcome="throttled"}'),
    server: await metric(srv, 'seslog_dynamodb_requests_total', '{outcome="server_error"}'),
  };
  const ses = uniqueBounce('throttled');
  const ts = await postEvent(srv, ses);
  await waitFor(() => times.length >= 2, { timeout: 10000 });
  const rep = await replication(srv);
  assert.equal(rep.pending, 1);
  assert.match(rep.lastError, /^DynamoDB answered HTTP 400 (ThrottlingException: Rate of requests|ProvisionedThroughputExceededException: The level)/);
  await drained(srv, 30000);
  proxy.intercept = null;
  assert.equal(times.length, 4, 'three failures, then written');
  // exponential backoff with jitter: about 1 s, 2 s, 4 s (+-25 %)
  const gaps = times.slice(1).map((t, i) => t - times[i]);
  assert.ok(gaps[0] >= 700 && gaps[1] >= 1400 && gaps[2] >= 2900, `gaps ${gaps}`);
  const got = byKey(await scanItems(dyn.url));
  assert.deepEqual(got.get(`${ses.mail.messageId}|${ts}`), expectedItem(ses, ts));
  assert.equal(await metric(srv, 'seslog_dynamodb_requests_total', '{outcome="throttled"}') - before.throttled, 2);
  assert.equal(await metric(srv, 'seslog_dynamodb_requests_total', '{outcome="server_error"}') - before.server, 1);
  assert.equal((await replication(srv)).dead, 0);
});

test('a ValidationException keeps only the bad row dead, with the error', T, async () => {
  const { all, release } = await postBatch(5, 'valid');
  const poison = `${all[3].ses.mail.messageId}|${all[3].ts}`;
  proxy.intercept = (rec) => {
    if (rec.target === 'BatchWriteItem' && keysOf(rec).includes(poison)) {
      return { status: 400, body: { __type: 'com.amazon.coral.validate#ValidationException',
        message: 'One or more parameter values were invalid: an attribute value is too large' } };
    }
    return undefined;
  };
  release();
  await drained(srv);
  proxy.intercept = null;
  const rep = await replication(srv);
  assert.equal(rep.dead, 1);
  assert.match(rep.lastError, /HTTP 400 ValidationException: One or more parameter values were invalid/);
  const got = byKey(await scanItems(dyn.url));
  for (const { ses, ts } of all) {
    const k = `${ses.mail.messageId}|${ts}`;
    if (k === poison) assert.equal(got.get(k), undefined);
    else assert.deepEqual(got.get(k), expectedItem(ses, ts), k);
  }
  const dead = await sqlite(srv.db, "SELECT payload, lastError, state FROM outbox WHERE sink = 'dynamodb'");
  assert.equal(dead.length, 1, 'the written rows are gone, the dead one is kept');
  assert.equal(dead[0].state, 'dead');
  assert.match(dead[0].lastError, /ValidationException/);
  assert.equal(JSON.parse(dead[0].payload).messageId.S, all[3].ses.mail.messageId);
  assert.equal(await metric(srv, 'seslog_outbox_dead_total', '{sink="dynamodb"}'), 1);

  // another 4xx (not throttling) is final at once
  proxy.intercept = (rec) => (rec.target === 'BatchWriteItem'
    ? { status: 400, body: { __type: 'com.amazonaws.dynamodb.v20120810#ResourceNotFoundException', message: 'Requested resource not found' } }
    : undefined);
  await postEvent(srv, uniqueBounce('notfound'));
  await drained(srv);
  proxy.intercept = null;
  const rep2 = await replication(srv);
  assert.equal(rep2.dead, 2);
  assert.match(rep2.lastError, /ResourceNotFoundException/);
});

test('every request is signed (SigV4) with the session token; no secret is logged or stored', T, async () => {
  await sleep(50);
  assert.ok(proxy.requests.length > 5);
  assert.deepEqual(proxy.sigProblems, []);
  for (const r of proxy.requests) assert.equal(r.token, TOKEN);
  const stored = await sqlite(srv.db, "SELECT coalesce(group_concat(lastError || payload), '') AS t FROM outbox");
  for (const secret of [AWS_ENV.AWS_SECRET_ACCESS_KEY, TOKEN]) {
    assert.ok(!srv.stderr.includes(secret), 'secret in the log');
    assert.ok(!stored[0].t.includes(secret), 'secret in the database');
  }
  const diag = await (await fetch(`${srv.url}/api/diagnostics`)).text();
  assert.ok(!diag.includes(AWS_ENV.AWS_SECRET_ACCESS_KEY) && !diag.includes(TOKEN));
});

test('a stop while a request hangs exits cleanly; the row goes out after the restart', T, async (t) => {
  let held = null;
  const seen = new Promise((r) => { held = r; });
  proxy.intercept = async (rec) => {
    if (rec.target !== 'BatchWriteItem') return undefined;
    held();
    await new Promise(() => {}); // never answers
    return undefined;
  };
  let other = await startReplicating(proxy.url, { t, env: { AWS_SESSION_TOKEN: TOKEN } });
  const ses = uniqueBounce('hang');
  const ts = await postEvent(other, ses);
  await seen;
  await other.stop(); // asserts exit status 0 (and, under ASan, no leak)
  proxy.intercept = null;
  other = await startReplicating(proxy.url, { t, dir: other.dir, env: { AWS_SESSION_TOKEN: TOKEN } });
  await drained(other);
  const got = byKey(await scanItems(dyn.url));
  assert.deepEqual(got.get(`${ses.mail.messageId}|${ts}`), expectedItem(ses, ts));
  await other.stop();
});

test('a stop while rows wait to fill a request exits cleanly; they go out after the restart', T, async (t) => {
  proxy.intercept = null;
  let other = await startReplicating(proxy.url, { t });
  const ses = uniqueBounce('linger');
  const ts = await postEvent(other, ses);
  await other.stop(); // within the 50 ms a lone row waits for company
  other = await startReplicating(proxy.url, { t, dir: other.dir });
  await drained(other);
  const got = byKey(await scanItems(dyn.url));
  assert.deepEqual(got.get(`${ses.mail.messageId}|${ts}`), expectedItem(ses, ts));
  await other.stop();
});
