// priority.test.mjs - the threads that verify envelopes run at a lower
// priority (nice 5) than the loop and the writer, so that on a busy machine
// the writer, the one serial stage, is never left waiting behind them.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { startServer, signEnvelope, post, countEvents, uniqueBounce, assertStatus } from './lib.mjs';

/** The nice value of every thread of pid, by thread id (Linux /proc). */
function threadNice(pid) {
  const out = new Map();
  for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
    const stat = fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    // the fields after "(comm)": state is field 3, nice field 19
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    out.set(Number(tid), Number(fields[19 - 3]));
  }
  return out;
}

test('verifying threads run at nice 5; the loop and the writer stay at 0', { timeout: 60000 }, async (t) => {
  const srv = await startServer({ t });
  const before = threadNice(srv.child.pid);
  assert.ok([...before.values()].every((n) => n === 0), `threads before any event: ${[...before]}`);

  // enough envelopes at once that several pool threads verify one
  const res = await Promise.all(Array.from({ length: 32 }, () =>
    post(srv.url, '/sns', signEnvelope({ message: uniqueBounce() }))));
  for (const r of res) assertStatus(r, 'stored');
  assert.equal(await countEvents(srv.db), 32);

  const after = threadNice(srv.child.pid);
  const niced = [...after].filter(([, n]) => n === 5);
  const normal = [...after].filter(([, n]) => n === 0);
  assert.ok(niced.length >= 1, `no thread at nice 5: ${[...after]}`);
  assert.equal(after.get(srv.child.pid), 0, 'the main (loop) thread was niced');
  // the loop, the writer and the checkpointer at least
  assert.ok(normal.length >= 3, `fewer than 3 threads at nice 0: ${[...after]}`);
  assert.equal(niced.length + normal.length, after.size, `a thread at another nice value: ${[...after]}`);
  await srv.stop();
});
