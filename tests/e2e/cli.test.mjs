// cli.test.mjs - the command line of CONTRACT.md section 2 as far as serve
// and ingestion go: bad options exit 2, SESLOG_* variables, a flag beats its
// variable, --db folders are created, --sns-listen serves only /sns and /healthz.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {
  startServer, runSeslog, tempDir, signEnvelope, post, get, countEvents, uniqueBounce,
  assertError, assertStatus,
} from './lib.mjs';

const T = { timeout: 60000 };

test('seslog version prints a version and exits 0', T, async () => {
  const r = await runSeslog(['version']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /\d+\.\d+/);
});

test('serve: unknown options and bad values exit 2 with one clear line on stderr', T, async () => {
  const dir = tempDir();
  const db = path.join(dir, 'x.db');
  const cases = [
    ['--no-such-option'],
    ['--busy-timeout', 'abc'],
    ['--listen', 'not-a-host-port'],
    ['--log-level', 'loud'],
    ['--busy-timeout'],
    ['--bounce-warn', 'lots'],
    ['--rate-window', '10 parsecs'],
    ['--listen', '127.0.0.1:99999'],
    ['--sns-listen', 'bogus'],
  ];
  for (const extra of cases) {
    const r = await runSeslog(['serve', '--db', db, '--listen', '127.0.0.1:0', ...extra], { timeout: 15000 });
    assert.equal(r.code, 2, `${extra.join(' ')}: exit ${r.code} (signal ${r.signal})\n${r.stderr}`);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, `${extra.join(' ')}: expected one line on stderr:\n${r.stderr}`);
    assert.ok(lines[0].length > 10, r.stderr);
    // a bad value is found before anything is touched
    assert.equal(fs.existsSync(db), false, `${extra.join(' ')}: the database was created before the options were checked`);
  }
  // the same through the environment
  const r = await runSeslog(['serve', '--db', db, '--listen', '127.0.0.1:0'], { env: { SESLOG_BUSY_TIMEOUT: 'abc' }, timeout: 15000 });
  assert.equal(r.code, 2, `SESLOG_BUSY_TIMEOUT=abc: exit ${r.code}\n${r.stderr}`);
});

// Every rule between options is checked before anything is opened: a bad
// value is named even when another option would have failed later, at
// opening (here DynamoDB without a region or credentials).
test('serve: the rules between options are checked before anything is opened', T, async () => {
  const dir = tempDir();
  const db = path.join(dir, 'sub', 'x.db');
  const noAws = {
    AWS_REGION: '', AWS_DEFAULT_REGION: '', AWS_ACCESS_KEY_ID: '', AWS_SECRET_ACCESS_KEY: '',
    AWS_PROFILE: 'seslog-none', AWS_SHARED_CREDENTIALS_FILE: path.join(dir, 'none'),
    AWS_CONFIG_FILE: path.join(dir, 'none'), AWS_EC2_METADATA_DISABLED: 'true',
    AWS_EC2_METADATA_SERVICE_ENDPOINT: 'http://127.0.0.1:9',
  };
  const cases = [
    [['--queue-max', '0'], /--queue-max must be from 1 to 10000000/],
    [['--soft-bounce-limit', '2000000'], /--soft-bounce-limit must be at most/],
    [['--soft-bounce-days', '0'], /--soft-bounce-days from 1 to 36500/],
    [['--bounce-warn', '9', '--bounce-alert', '5'], /warn threshold is above its alert threshold/],
    [['--dynamodb-types', 'Nope'], /--dynamodb-types/],
    [['--retention', 'Open=forever'], /--retention/],
  ];
  for (const [extra, want] of cases) {
    const args = ['serve', '--db', db, '--listen', '127.0.0.1:0', '--dynamodb-table', 't', ...extra];
    const r = await runSeslog(args, { env: noAws, timeout: 15000 });
    assert.equal(r.code, 2, `${extra.join(' ')}: exit ${r.code}\n${r.stderr}`);
    assert.equal(r.stderr.trim().split('\n').length, 1, `${extra.join(' ')}: one line:\n${r.stderr}`);
    assert.match(r.stderr, want, extra.join(' '));
    assert.equal(fs.existsSync(path.dirname(db)), false, `${extra.join(' ')}: the database folder was created`);
  }
});

test('--db: missing folders are created', T, async (t) => {
  const dir = tempDir();
  const db = path.join(dir, 'a', 'b', 'c', 'seslog.db');
  const srv = await startServer({ t, dir, db });
  assertStatus(await post(srv.url, '/sns', signEnvelope({ message: uniqueBounce() })), 'stored');
  assert.ok(fs.existsSync(db));
  assert.equal(await countEvents(db), 1);
  await srv.stop();
});

test('SESLOG_SNS_TOPIC_ARN is comma-separated, and a flag wins over its variable', T, async (t) => {
  const a = 'arn:aws:sns:us-east-1:123456789012:topic-a';
  const b = 'arn:aws:sns:us-east-1:123456789012:topic-b';
  const c = 'arn:aws:sns:us-east-1:123456789012:topic-c';
  const srv = await startServer({ t, env: { SESLOG_SNS_TOPIC_ARN: `${a},${b}` } });
  assertStatus(await post(srv.url, '/sns', signEnvelope({ topicArn: a, message: uniqueBounce() })), 'stored');
  assertStatus(await post(srv.url, '/sns', signEnvelope({ topicArn: b, message: uniqueBounce() })), 'stored');
  assertError(await post(srv.url, '/sns', signEnvelope({ topicArn: c, message: uniqueBounce() })), 403);
  await srv.stop();

  const srv2 = await startServer({ t, env: { SESLOG_SNS_TOPIC_ARN: a }, args: ['--sns-topic-arn', c] });
  assertError(await post(srv2.url, '/sns', signEnvelope({ topicArn: a, message: uniqueBounce() })), 403);
  assertStatus(await post(srv2.url, '/sns', signEnvelope({ topicArn: c, message: uniqueBounce() })), 'stored');
  await srv2.stop();
});

test('SESLOG_SNS_CERT_DIR is read when the flag is absent; the flag wins over it', T, async (t) => {
  // Certificates are only where the variable (or the flag) points; a fetch would
  // fail (SNS hosts map to a closed port), so "stored" proves where it looked.
  const srv = await startServer({ t, certDirFlag: false });
  const env = { SESLOG_SNS_CERT_DIR: srv.certDir };
  await srv.stop();
  const viaEnv = await startServer({ t, dir: srv.dir, certDirFlag: false, env });
  assertStatus(await post(viaEnv.url, '/sns', signEnvelope({ message: uniqueBounce() })), 'stored');
  await viaEnv.stop();

  const empty = tempDir();
  const flagWins = await startServer({ t, dir: srv.dir, env: { SESLOG_SNS_CERT_DIR: empty } });
  assertStatus(await post(flagWins.url, '/sns', signEnvelope({ message: uniqueBounce() })), 'stored');
  await flagWins.stop();
  assert.deepEqual(fs.readdirSync(empty), []);
});

test('--sns-listen: a second listener that serves only POST /sns and GET /healthz', T, async (t) => {
  const srv = await startServer({ t, args: ['--sns-listen', '127.0.0.1:0'], listeners: 2 });
  assert.equal(srv.ports.length, 2);
  assert.notEqual(srv.ports[0], srv.ports[1]);
  const snsUrl = `http://127.0.0.1:${srv.ports[1]}`;
  assertStatus(await post(snsUrl, '/sns', signEnvelope({ message: uniqueBounce() })), 'stored');
  const h = await get(snsUrl, '/healthz');
  assert.equal(h.status, 200);
  assert.deepEqual(h.json, { status: 'ok' });
  for (const p of ['/api/events', '/metrics', '/', '/api/stats']) {
    const r = await get(snsUrl, p);
    assert.equal(r.status, 404, `GET ${p} on the SNS-only listener: ${r.status}`);
  }
  assertError(await get(snsUrl, '/sns'), 405);
  // the main listener serves the API
  const api = await get(srv.url, '/api/events');
  assert.equal(api.status, 200, api.text);
  assert.equal(await countEvents(srv.db), 1);
  await srv.stop();
});
