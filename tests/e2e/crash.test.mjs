// crash.test.mjs - "answers only after the event is committed to disk":
// SIGKILL the server under load; every acknowledged event survives.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import {
  startServer, signEnvelope, post, sqlite, uniqueBounce,
} from './lib.mjs';

const TOTAL = 2000;
const CONNECTIONS = 16;

test(`SIGKILL during ${TOTAL} posts over ${CONNECTIONS} keep-alive connections loses no acknowledged event`, { timeout: 120000 }, async (t) => {
  const srv = await startServer({ t });
  const items = Array.from({ length: TOTAL }, (_, i) => {
    const ses = uniqueBounce(`crash-${i}-${process.pid}`);
    return { id: ses.mail.messageId, env: signEnvelope({ message: ses, signatureVersion: String(1 + (i % 2)) }) };
  });

  const acked = new Set();
  const others = [];
  let next = 0;
  let killed = false;
  const killAt = Math.floor(TOTAL / 2);
  const agents = [];
  async function worker() {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    agents.push(agent);
    while (!killed && next < items.length) {
      const it = items[next++];
      let res;
      try {
        res = await post(srv.url, '/sns', it.env, {}, { agent, timeout: 30000 });
      } catch {
        if (killed) return;
        throw new Error(`request failed before the kill (${acked.size} acknowledged)`);
      }
      if (res.status === 200 && res.json?.status === 'stored') {
        acked.add(it.id);
        if (!killed && acked.size >= killAt) {
          killed = true;
          srv.child.kill('SIGKILL');
        }
      } else {
        others.push(`${res.status} ${res.text}`);
      }
    }
  }
  await Promise.all(Array.from({ length: CONNECTIONS }, worker));
  for (const a of agents) a.destroy();
  assert.deepEqual(others, [], 'answers other than 200 "stored" before the kill');
  assert.ok(killed, `all ${TOTAL} were answered before the kill point; the test proved nothing`);
  const exit = await srv.exited;
  assert.equal(exit.signal, 'SIGKILL');

  // restart on the same database
  const again = await startServer({ t, dir: srv.dir });
  const integrity = await sqlite(again.db, 'PRAGMA integrity_check');
  assert.deepEqual(integrity.map((r) => r.integrity_check), ['ok']);
  const stored = new Set((await sqlite(again.db, 'SELECT messageId FROM SesEventMessages')).map((r) => r.messageId));
  const lost = [...acked].filter((id) => !stored.has(id));
  t.diagnostic(`acknowledged before SIGKILL: ${acked.size}; rows after restart: ${stored.size}`);
  assert.deepEqual(lost, [], `${lost.length} of ${acked.size} acknowledged events are missing after SIGKILL`);

  // SNS redelivers everything not acknowledged: each is stored or a duplicate, never lost or doubled
  for (const it of items) {
    if (acked.has(it.id)) continue;
    const res = await post(again.url, '/sns', it.env);
    assert.equal(res.status, 200, res.text);
    assert.ok(['stored', 'duplicate'].includes(res.json?.status), res.text);
  }
  const rows = await sqlite(again.db, 'SELECT messageId, count(*) AS n FROM SesEventMessages GROUP BY messageId HAVING n > 1');
  assert.deepEqual(rows, [], 'events stored twice');
  const total = await sqlite(again.db, 'SELECT count(*) AS n FROM SesEventMessages');
  assert.equal(total[0].n, TOTAL);
  await again.stop();
});
