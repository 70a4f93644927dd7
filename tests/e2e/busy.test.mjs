// busy.test.mjs - a database locked by another process longer than
// --busy-timeout: the server answers 503 (SNS retries), stores nothing, and
// recovers when the lock ends.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import {
  startServer, signEnvelope, post, get, countEvents, uniqueBounce, assertStatus, assertError, q,
} from './lib.mjs';

/** Opens sqlite3 on db and takes an exclusive lock; resolves once it holds it. */
function lockDatabase(db) {
  return new Promise((resolve, reject) => {
    const p = spawn('sqlite3', [db], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    const timer = setTimeout(() => reject(new Error(`sqlite3 did not lock within 10 s: ${err}`)), 10000);
    p.stdout.setEncoding('utf8');
    p.stderr.setEncoding('utf8');
    p.stderr.on('data', (d) => { err += d; });
    p.stdout.on('data', (d) => {
      out += d;
      if (out.includes('locked-now')) {
        clearTimeout(timer);
        resolve({
          proc: p,
          stderr: () => err,
          release() {
            return new Promise((res) => {
              p.once('exit', (code) => res(code));
              p.stdin.end('COMMIT;\n');
            });
          },
        });
      }
    });
    p.on('exit', (code) => { clearTimeout(timer); reject(new Error(`sqlite3 exited ${code}: ${err}`)); });
    p.stdin.write('.timeout 5000\nBEGIN EXCLUSIVE;\nSELECT \'locked-now\';\n');
  });
}

test('database locked by another process: 503 storage_unavailable, nothing stored; then 200 stored', { timeout: 60000 }, async (t) => {
  const srv = await startServer({ t, args: ['--busy-timeout', '200'] });
  // the schema is in place and the server works
  const warm = uniqueBounce();
  assertStatus(await post(srv.url, '/sns', signEnvelope({ message: warm })), 'stored');

  const lock = await lockDatabase(srv.db);
  t.after(() => lock.proc.kill('SIGKILL'));

  const ses = uniqueBounce();
  const env = signEnvelope({ message: ses });
  const started = Date.now();
  const res = await post(srv.url, '/sns', env, {}, { timeout: 20000 });
  const took = Date.now() - started;
  assertError(res, 503, 'storage_unavailable');
  assert.ok(took < 10000, `503 took ${took} ms with --busy-timeout 200`);
  // a 503 must be retryable: the connection may stay open but nothing was stored
  const code = await lock.release();
  assert.equal(code, 0, `sqlite3: ${lock.stderr()}`);

  assert.equal(await countEvents(srv.db, `WHERE messageId = ${q(ses.mail.messageId)}`), 0, 'a 503 stored the event');
  assert.equal(await countEvents(srv.db), 1);

  // SNS retries the same envelope: now stored (not "duplicate": nothing was kept)
  assertStatus(await post(srv.url, '/sns', env), 'stored');
  assert.equal(await countEvents(srv.db, `WHERE messageId = ${q(ses.mail.messageId)}`), 1);
  const health = await get(srv.url, '/healthz');
  assert.equal(health.status, 200);
  await srv.stop();
});
