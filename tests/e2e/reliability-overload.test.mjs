// reliability-overload.test.mjs - overload (issue 9): past --queue-max
// events waiting for the disk, /sns answers 503 "overloaded" at once (SNS
// retries) instead of queueing without limit; the queued ones answer 503
// storage_unavailable when the commit gives up after --busy-timeout; when
// the disk is free again, posts are stored.
//
// How the writer behaves (src/store.c): it takes everything queued into one
// transaction. The first events to arrive form a batch that waits for the
// lock (busy timeout 3 s) and fails; meanwhile the queue fills to
// --queue-max (50) and every further post is refused at once. When the
// first batch fails, the 50 queued form the next batch, which waits 3 s more
// and fails too. So: 200 concurrent posts give about 150 "overloaded" within
// milliseconds and about 50 + (first batch) storage_unavailable after 3 s
// and 6 s.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startServer, post, get, sqlite, countEvents, uniqueBounce, assertError, assertStatus } from './lib.mjs';
import { sign, lockDatabase, until } from './reliability-lib.mjs';

const N = 200;
const QUEUE_MAX = 50;
const BUSY_MS = 3000;

test(`--queue-max ${QUEUE_MAX} with the database locked: ${N} concurrent posts get 503 overloaded quickly, the queued ones 503 storage_unavailable after --busy-timeout; then posts are stored`, { timeout: 60000 }, async (t) => {
  const srv = await startServer({ t, args: ['--queue-max', String(QUEUE_MAX), '--busy-timeout', String(BUSY_MS), '--log-level', 'info'] });
  assertStatus(await post(srv.url, '/sns', sign({ message: uniqueBounce(`overload-warm-${Date.now()}`) })), 'stored');
  const envs = Array.from({ length: N }, (_, i) => sign({ message: uniqueBounce(`overload-${i}-${Date.now()}`) }));
  // one connection each, opened before the clock starts
  const agent = new http.Agent({ keepAlive: true, maxSockets: N });
  t.after(() => agent.destroy());
  await Promise.all(Array.from({ length: N }, () => get(srv.url, '/healthz', {}, { agent })));

  const lock = await lockDatabase(srv.db);
  t.after(() => lock.proc.kill('SIGKILL'));
  const results = await Promise.all(envs.map(async (env) => {
    const t0 = Date.now();
    const res = await post(srv.url, '/sns', env, {}, { agent, timeout: 30000 });
    return { res, ms: Date.now() - t0 };
  }));
  const overloaded = results.filter((r) => r.res.status === 503 && r.res.json?.error?.code === 'overloaded');
  const unavailable = results.filter((r) => r.res.status === 503 && r.res.json?.error?.code === 'storage_unavailable');
  const other = results.filter((r) => !overloaded.includes(r) && !unavailable.includes(r));
  const max = (xs) => Math.max(...xs.map((r) => r.ms));
  const min = (xs) => Math.min(...xs.map((r) => r.ms));
  t.diagnostic(`${overloaded.length} overloaded (slowest ${max(overloaded)} ms), ` +
    `${unavailable.length} storage_unavailable (${min(unavailable)}..${max(unavailable)} ms), ${other.length} other`);
  assert.deepEqual(other.map((r) => `${r.res.status} ${r.res.text}`), [], 'answers other than the two 503s while locked');
  for (const r of [...overloaded, ...unavailable]) assertError(r.res, 503);
  // the queue holds QUEUE_MAX; the first batch took what was queued before
  // it (a few, more on a busy machine, never more than QUEUE_MAX itself)
  assert.ok(unavailable.length >= QUEUE_MAX && unavailable.length <= 2 * QUEUE_MAX,
    `${unavailable.length} waited for the disk; expected ${QUEUE_MAX} queued plus the first batch (at most ${QUEUE_MAX})`);
  assert.equal(overloaded.length, N - unavailable.length);
  assert.ok(max(overloaded) < 500, `"overloaded" answers took up to ${max(overloaded)} ms: not refused at once`);
  assert.ok(min(unavailable) >= BUSY_MS - 100, `a storage_unavailable came after ${min(unavailable)} ms, before --busy-timeout`);
  // the queued batch waited for its own busy timeout after the first one
  assert.ok(max(unavailable) >= 2 * BUSY_MS - 200, `the queued batch answered after ${max(unavailable)} ms`);
  const h = await get(srv.url, '/healthz', {}, { agent: false });
  assert.equal(h.status, 503, `/healthz while locked: ${h.text}`);
  assert.match(h.json?.reason ?? '', /locked/, h.text);

  assert.equal(await lock.release(), 0, `sqlite3: ${lock.stderr()}`);
  assert.equal(await countEvents(srv.db), 1, 'a post answered 503 was stored');
  // SNS retries: now every one is stored
  assert.ok(await until(async () => (await get(srv.url, '/healthz', {}, { agent: false })).status === 200, { timeout: 6000 }),
    '/healthz did not recover after the lock ended');
  let i = 0;
  await Promise.all(Array.from({ length: 16 }, async () => {
    while (i < N) {
      const env = envs[i++];
      assertStatus(await post(srv.url, '/sns', env, {}, { agent }), 'stored');
    }
  }));
  assert.equal(await countEvents(srv.db), N + 1);
  assert.deepEqual((await sqlite(srv.db, 'PRAGMA integrity_check')).map((r) => r.integrity_check), ['ok']);
  agent.destroy();
  await srv.stop();
});
