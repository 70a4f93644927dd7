// reliability-crash.test.mjs - crash safety, many times (issue 9): rounds
// of signed bounces posted over 8-16 keep-alive connections to the same
// database, each ended by SIGKILL at a random moment. After every kill the
// database passes PRAGMA integrity_check, every acknowledged event is
// stored, and every stored bounce still has its pending Slack alert and
// DynamoDB replication row (Slack answers 500 and DynamoDB is unreachable,
// so nothing was delivered). At the end Slack accepts again and every alert
// arrives exactly once.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startServer, post, sqlite, uniqueBounce, tempDir, tail } from './lib.mjs';
import { startSlackStub, eventMessageId } from './slackstub.mjs';
import { sign, randInt, until } from './reliability-lib.mjs';

const ROUNDS = 8;
const PRESIGNED = 1200;

// Only bounces are posted: thresholds no rate reaches keep the monitors
// from adding their own Slack messages to the outbox.
const QUIET = ['--bounce-warn', '1000', '--bounce-alert', '1000', '--complaint-warn', '1000', '--complaint-alert', '1000'];
const AWS_ENV = { AWS_ACCESS_KEY_ID: 'AKIDTESTSESLOG', AWS_SECRET_ACCESS_KEY: 'test-secret', AWS_REGION: 'us-east-1' };

let serial = 0;
function fresh() {
  const ses = uniqueBounce(`crashloop-${process.pid}-${serial++}-${Date.now()}`);
  return { id: ses.mail.messageId, env: sign({ message: ses, signatureVersion: String(1 + (serial % 2)) }) };
}

test(`${ROUNDS} rounds of SIGKILL at a random moment under load: integrity ok, nothing acknowledged lost, alerts and replication still pending, then delivered exactly once`, { timeout: 150000 }, async (t) => {
  const stub = await startSlackStub({ mode: 'fail' });
  t.after(() => stub.close());
  const dir = tempDir('seslog-crashloop-');
  const args = ['--slack-webhook-url', stub.url, '--slack-max-per-minute', '1000000', ...QUIET,
    '--dynamodb-table', 'SesEventMessages', '--dynamodb-endpoint', 'http://127.0.0.1:1',
    '--log-level', 'info'];

  // Signing costs ~2 ms an event: sign a stock first, more on demand.
  const pool = Array.from({ length: PRESIGNED }, fresh);
  const acked = new Set();
  const summary = [];

  for (let round = 1; round <= ROUNDS; round++) {
    const srv = await startServer({ t, dir, args, env: AWS_ENV });
    const conns = randInt(8, 16);
    const killAfter = randInt(50, 400);
    let killed = false;
    let posted = 0;
    let roundAcks = 0;
    const others = [];
    const agents = [];
    const worker = async () => {
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      agents.push(agent);
      while (!killed) {
        const it = pool.pop() ?? fresh();
        posted++;
        let res;
        try {
          res = await post(srv.url, '/sns', it.env, {}, { agent, timeout: 20000 });
        } catch (e) {
          if (killed) return;
          others.push(`request error before the kill: ${e.message}`);
          return;
        }
        // "duplicate": stored by a round whose answer the kill cut off
        if (res.status === 200 && (res.json?.status === 'stored' || res.json?.status === 'duplicate')) {
          acked.add(it.id);
          roundAcks++;
        } else {
          others.push(`${res.status} ${res.text}`);
          pool.unshift(it);
        }
      }
    };
    const timer = setTimeout(() => { killed = true; srv.child.kill('SIGKILL'); }, killAfter);
    const workers = Array.from({ length: conns }, worker);
    const exit = await srv.exited;
    killed = true;
    clearTimeout(timer);
    await Promise.all(workers);
    for (const a of agents) a.destroy();
    assert.equal(exit.signal, 'SIGKILL', `round ${round}: the server ended by itself (${JSON.stringify(exit)}) before the kill; stderr:\n${tail(srv.stderr)}`);
    assert.deepEqual(others, [], `round ${round}: answers other than 200 stored before the kill`);

    // the database as the kill left it (no server attached)
    const integrity = await sqlite(srv.db, 'PRAGMA integrity_check');
    assert.deepEqual(integrity.map((r) => r.integrity_check), ['ok'], `round ${round}: integrity_check`);
    const stored = new Set((await sqlite(srv.db, 'SELECT messageId FROM SesEventMessages')).map((r) => r.messageId));
    const lost = [...acked].filter((id) => !stored.has(id));
    assert.deepEqual(lost, [], `round ${round}: ${lost.length} of ${acked.size} acknowledged events are missing after SIGKILL`);
    const [c] = await sqlite(srv.db, `SELECT
        (SELECT count(*) FROM SesEventMessages WHERE notificationType = 'Bounce') AS bounces,
        (SELECT count(*) FROM outbox WHERE sink = 'slack') AS slack,
        (SELECT count(*) FROM outbox WHERE sink = 'slack' AND state = 'pending') AS slackPending,
        (SELECT count(*) FROM outbox WHERE sink = 'dynamodb') AS dynamodb,
        (SELECT count(*) FROM SesEventMessages e WHERE NOT EXISTS
           (SELECT 1 FROM outbox o WHERE o.sink = 'slack' AND o.eventId = e.id)) AS noAlert,
        (SELECT count(*) FROM SesEventMessages e WHERE NOT EXISTS
           (SELECT 1 FROM outbox o WHERE o.sink = 'dynamodb' AND o.eventId = e.id)) AS noReplication`);
    assert.equal(c.bounces, stored.size, `round ${round}: only bounces were posted`);
    assert.equal(c.slack, c.bounces, `round ${round}: ${c.bounces} stored bounces but ${c.slack} Slack outbox rows`);
    assert.equal(c.slackPending, c.bounces, `round ${round}: Slack rows not pending: ${JSON.stringify(c)}`);
    assert.equal(c.noAlert, 0, `round ${round}: ${c.noAlert} stored bounces without their Slack outbox row`);
    assert.equal(c.dynamodb, c.bounces, `round ${round}: ${c.bounces} stored bounces but ${c.dynamodb} DynamoDB outbox rows`);
    assert.equal(c.noReplication, 0, `round ${round}: ${c.noReplication} stored bounces without their DynamoDB outbox row`);
    assert.equal(stub.accepted().length, 0, 'Slack accepted a message while it answered 500');
    summary.push(`round ${round}: ${conns} connections, SIGKILL after ${killAfter} ms, ${posted} posted, ${roundAcks} acknowledged, ${stored.size} stored in all`);
  }
  for (const line of summary) t.diagnostic(line);
  assert.ok(acked.size >= ROUNDS, `only ${acked.size} events acknowledged over ${ROUNDS} rounds: the test proved little`);

  // Slack is back: one more start, and every stored bounce is announced exactly once.
  stub.setMode('ok');
  const srv = await startServer({ t, dir, args, env: AWS_ENV });
  const want = new Set((await sqlite(srv.db, 'SELECT messageId FROM SesEventMessages')).map((r) => r.messageId));
  const done = await until(async () => {
    const got = new Set(stub.accepted().map(eventMessageId));
    return [...want].every((id) => got.has(id));
  }, { timeout: 60000, interval: 250 });
  const counts = new Map();
  for (const m of stub.accepted()) {
    const id = eventMessageId(m);
    counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  const missing = [...want].filter((id) => !counts.has(id));
  assert.ok(done, `${missing.length} of ${want.size} alerts never reached Slack, e.g. ${missing.slice(0, 3).join(', ')}`);
  const twice = [...counts].filter(([, n]) => n > 1);
  assert.deepEqual(twice, [], 'alerts delivered more than once');
  const strange = [...counts.keys()].filter((id) => !want.has(id));
  assert.deepEqual(strange, [], 'alerts about events that are not stored');
  assert.ok(await until(async () => (await sqlite(srv.db, "SELECT count(*) AS n FROM outbox WHERE sink = 'slack'"))[0].n === 0),
    'Slack outbox rows remain after every alert was accepted');
  await srv.stop();
  const [d] = await sqlite(srv.db, "SELECT count(*) AS n FROM outbox WHERE sink = 'dynamodb'");
  assert.equal(d.n, want.size, 'DynamoDB rows must still be pending: the endpoint never answered');
});
