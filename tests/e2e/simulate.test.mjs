// simulate.test.mjs - `seslog simulate` fills a running server with signed
// traffic that the server verifies and stores like AWS's.
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startServer, runSeslog, sqlite, get } from './lib.mjs';

const T = { timeout: 60000 };

test('simulate: signed traffic is verified and stored; outcomes and rates as asked', T, async (t) => {
  const srv = await startServer({ t });
  const args = ['simulate', '--url', srv.url, '--sns-cert-dir', srv.certDir, '--rate', '100',
    '--duration', '2s', '--bounce', '20', '--complaint', '5'];
  const r = await runSeslog(args);
  assert.equal(r.code, 0, `simulate failed: ${r.stderr}`);
  const m = r.stdout.match(/simulated (\d+) mails: (\d+) notifications posted \(Send (\d+), Delivery (\d+), Bounce (\d+), Complaint (\d+)\), (\d+) accepted, (\d+) failed/);
  assert.ok(m, `summary line: ${r.stdout}`);
  const [, mails, posted, sends, , bounces, complaints, accepted, failed] = m.map(Number);
  assert.ok(mails >= 150, `about 200 mails expected in 2 s at 100/s, got ${mails}`);
  assert.equal(sends, mails, 'one Send event per mail');
  assert.equal(accepted, posted);
  assert.equal(failed, 0);
  // the development certificate is where the server looks for certificates
  const certs = fs.readdirSync(srv.certDir).filter((f) => /^SimpleNotificationService-5e5109[0-9a-f]+\.pem$/.test(f));
  assert.equal(certs.length, 1, 'the development certificate was written to the cert dir');
  // every notification was stored, with the counts simulate reports
  const rows = await sqlite(srv.db, 'SELECT notificationType AS t, count(*) AS n FROM SesEventMessages GROUP BY 1');
  const by = Object.fromEntries(rows.map((x) => [x.t, x.n]));
  assert.equal(by.Send, sends);
  assert.equal(by.Bounce ?? 0, bounces);
  assert.equal(by.Complaint ?? 0, complaints);
  const total = rows.reduce((a, x) => a + x.n, 0);
  assert.equal(total, posted);
  // about 20 % bounce: a wide band, the draw is random
  assert.ok(bounces > mails * 0.08 && bounces < mails * 0.35, `bounces ${bounces} of ${mails}`);
  // the stats see the simulated sends
  const stats = (await get(srv.url, '/api/stats?window=10m')).json;
  assert.equal(stats.sends, sends);
  assert.ok(stats.bounceRate > 0);
  // a second run reuses the same certificate
  const r2 = await runSeslog([...args.slice(0, -8), '--rate', '20', '--duration', '500ms']);
  assert.equal(r2.code, 0, r2.stderr);
  assert.doesNotMatch(r2.stderr, /wrote a development signing certificate/);
  await srv.stop();
});

test('simulate: bad options exit 2 with one line', T, async () => {
  for (const bad of [['--rate', '0'], ['--url', 'ftp://x'], ['--bounce', '90', '--complaint', '20'], ['--nope']]) {
    const r = await runSeslog(['simulate', ...bad]);
    assert.equal(r.code, 2, `${bad.join(' ')}: ${r.stderr}`);
    assert.equal(r.stderr.trim().split('\n').length, 1, `${bad.join(' ')}: ${r.stderr}`);
  }
});

test('simulate: a server that is not running is reported, exit 1', T, async () => {
  const dir = fs.mkdtempSync(path.join(process.env.TMPDIR ?? '/tmp', 'seslog-sim-'));
  const r = await runSeslog(['simulate', '--url', 'http://127.0.0.1:1', '--sns-cert-dir', dir,
    '--rate', '5', '--duration', '300ms']);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stdout, /0 accepted/);
  assert.match(r.stderr, /last error/);
});
