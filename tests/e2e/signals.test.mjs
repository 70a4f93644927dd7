// signals.test.mjs - SIGTERM stops the server cleanly: exit status 0, a log
// line saying it stopped, and every request it acknowledged is on disk.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import {
  startServer, signEnvelope, post, get, sqlite, countEvents, uniqueBounce, assertStatus,
} from './lib.mjs';

test('SIGTERM: exit 0 and the log says it stopped', { timeout: 60000 }, async (t) => {
  const srv = await startServer({ t });
  assertStatus(await post(srv.url, '/sns', signEnvelope({ message: uniqueBounce() })), 'stored');
  // an idle keep-alive connection must not keep the server alive
  const agent = new http.Agent({ keepAlive: true });
  assert.equal((await get(srv.url, '/healthz', {}, { agent })).status, 200);
  const before = srv.stderr.length;
  const started = Date.now();
  await srv.stop(10000);
  agent.destroy();
  assert.ok(Date.now() - started < 10000);
  const after = srv.stderr.slice(before);
  assert.match(after, /^.*\blevel=info msg="?[^\n]*\bstop/m, `no "stopped" log line after SIGTERM:\n${after}`);
  // each log line is one line of key=value pairs
  for (const line of srv.stderr.split('\n').filter(Boolean)) {
    assert.match(line, /\blevel=(debug|info|warn|error) msg=/, `not a log line: ${line}`);
  }
  assert.equal(await countEvents(srv.db), 1);
});

test('SIGTERM under load: every acknowledged event is on disk, exit 0', { timeout: 60000 }, async (t) => {
  const srv = await startServer({ t });
  const items = Array.from({ length: 300 }, () => uniqueBounce());
  const acked = [];
  let stopping = null;
  const sendAll = items.map((ses, i) => post(srv.url, '/sns', signEnvelope({ message: ses }), {}, { agent: false })
    .then((res) => {
      if (res.status === 200 && res.json?.status === 'stored') acked.push(ses.mail.messageId);
      if (i === 0 || acked.length === 50) stopping ??= srv.stop(15000);
    })
    .catch(() => { /* refused or cut off after SIGTERM */ }));
  await Promise.all(sendAll);
  stopping ??= srv.stop(15000);
  await stopping;
  assert.ok(acked.length > 0);
  const stored = new Set((await sqlite(srv.db, 'SELECT messageId FROM SesEventMessages')).map((r) => r.messageId));
  const lost = acked.filter((id) => !stored.has(id));
  assert.deepEqual(lost, [], `${lost.length} acknowledged events missing after SIGTERM`);
});

test('SIGTERM or SIGINT right after the "listening" line: exit 0 (handlers are in place once it says listening)', { timeout: 60000 }, async (t) => {
  for (const sig of ['SIGTERM', 'SIGINT']) {
    for (let i = 0; i < 5; i++) {
      const srv = await startServer({ t });
      srv.child.kill(sig);
      const r = await srv.exited;
      assert.deepEqual(r, { code: 0, signal: null }, `${sig} #${i + 1} right after listening:\n${srv.stderr}`);
    }
  }
});
