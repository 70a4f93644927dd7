// archive.test.mjs - an imported archive lives in the past (issue 18):
// monitors judge it but announce nothing, /api/stats takes an explicit
// range, and `serve --read-only` browses a database without writing.
//
// Each test imports a small generated archive (bare SES event-publishing
// JSON, stamped days ago) with `seslog import`, then starts the real server
// on it.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import {
  startServer, get, post, request, sqlite, sesFixture, tempDir, runSeslog, signEnvelope,
  uniqueBounce, assertStatus, assertError, DEFAULT_TOPIC,
} from './lib.mjs';
import { startSlackStub } from './slackstub.mjs';

const DAY = 86400000;

/** JSON lines of `sends` Send events (one recipient each) and `bounces`
 * permanent bounces, all at time `at` (ms), to the domain `domain`. */
function archiveLines(at, sends, bounces, domain = 'archive.test') {
  const ts = new Date(at).toISOString();
  const lines = [];
  for (let i = 0; i < sends; i++) {
    const ses = sesFixture('ses-event-send-awsdocs');
    ses.mail.messageId = `send-${crypto.randomUUID()}`;
    ses.mail.timestamp = ts;
    ses.mail.destination = [`r${i}@${domain}`];
    lines.push(JSON.stringify(ses));
  }
  for (let i = 0; i < bounces; i++) {
    const ses = sesFixture('ses-event-bounce-awsdocs');
    ses.mail.messageId = `bounce-${crypto.randomUUID()}`;
    ses.mail.timestamp = ts;
    ses.mail.destination = [`r${i}@${domain}`];
    ses.bounce.timestamp = ts;
    ses.bounce.feedbackId = `fb-${crypto.randomUUID()}`;
    ses.bounce.bounceType = 'Permanent';
    ses.bounce.bounceSubType = 'General';
    ses.bounce.bouncedRecipients = [{ emailAddress: `r${i}@${domain}`, status: '5.1.1', action: 'failed', diagnosticCode: 'smtp; 550 5.1.1 user unknown' }];
    lines.push(JSON.stringify(ses));
  }
  return lines.join('\n') + '\n';
}

/** A database in a new folder holding the given JSON lines. */
async function importArchive(text) {
  const dir = tempDir('seslog-archive-');
  const db = path.join(dir, 'seslog.db');
  const r = await runSeslog(['import', '--db', db, '-'], { input: text });
  assert.equal(r.code, 0, `import failed: ${r.stderr}`);
  return { dir, db };
}

describe('an archive lives in the past', { concurrency: true }, () => {
  test('serve on an old archive: the monitors show their verdict over the widened window but announce nothing', { timeout: 30000 }, async (t) => {
    // two days ago: 200 sends and 20 permanent bounces = 10 %, far over the alert threshold
    const { dir, db } = await importArchive(archiveLines(Date.now() - 2 * DAY, 200, 20));
    const stub = await startSlackStub();
    t.after(() => stub.close());
    const srv = await startServer({
      t, dir, db,
      args: ['--slack-webhook-url', stub.url, '--monitor-interval', '100ms', '--rate-window', '10m'],
    });
    // the monitors have evaluated many times once the verdict shows
    let stats;
    const deadline = Date.now() + 8000;
    for (;;) {
      stats = (await get(srv.url, '/api/stats?window=10m')).json;
      if (stats.monitors.bounceRate.state === 'alert' || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const m = stats.monitors.bounceRate;
    assert.equal(m.state, 'alert', `the verdict over the widened window: ${JSON.stringify(stats)}`);
    assert.equal(m.present, false, 'judged on old events only');
    assert.ok(m.windowMs > 2 * DAY - 3600000, `the window widened back to the archive: ${m.windowMs}`);
    assert.ok(Math.abs(m.value - 0.1) < 1e-9, `rate ${m.value}`);
    await new Promise((r) => setTimeout(r, 500)); // more evaluations
    const rows = await sqlite(db, 'SELECT count(*) AS n FROM monitor_changes');
    assert.equal(rows[0].n, 0, 'no monitor_changes row about month-old mail');
    assert.equal(stub.requests.length, 0, `nothing posted to Slack: ${JSON.stringify(stub.requests)}`);
    const outbox = await sqlite(db, 'SELECT count(*) AS n FROM outbox');
    assert.equal(outbox[0].n, 0, 'no outbox row either');
    await srv.stop();
  });
});

/** sha256 and mtime of each database file there is (db, -wal, -shm aside). */
function fileState(db) {
  const out = {};
  for (const suffix of ['', '-wal']) {
    const f = db + suffix;
    if (!fs.existsSync(f)) { out[suffix || 'db'] = null; continue; }
    const st = fs.statSync(f);
    out[suffix || 'db'] = {
      sha: crypto.createHash('sha256').update(fs.readFileSync(f)).digest('hex'),
      mtimeMs: st.mtimeMs, size: st.size,
    };
  }
  return out;
}

/** Everything a read-only server must refuse or leave alone, and what it
 * must still answer. */
async function browseReadOnly(srv, { events }) {
  const all = await get(srv.url, '/api/events?limit=1000');
  assert.equal(all.status, 200, all.text);
  assert.equal(all.json.items.length, events, 'every stored event, WAL included');
  const stats = await get(srv.url, '/api/stats');
  assert.equal(stats.status, 200, stats.text);
  assert.equal((await get(srv.url, '/healthz')).status, 200);
  assert.equal((await get(srv.url, '/metrics')).status, 200);
  assert.equal((await get(srv.url, '/api/suppression')).status, 200);
  const check = await post(srv.url, '/api/suppression/check', JSON.stringify({ addresses: ['x@y.test'] }));
  assert.equal(check.status, 200, `checking is a read: ${check.text}`);
  // writes: one clear error each
  const env = signEnvelope({ message: uniqueBounce() });
  const sns = await post(srv.url, '/sns', env);
  assertError(sns, 503, 'read_only');
  assertError(await request(srv.url, 'PUT', '/api/suppression/new@x.test', JSON.stringify({ reason: 'manual' })), 403, 'read_only');
  assertError(await request(srv.url, 'DELETE', '/api/suppression/new@x.test'), 403, 'read_only');
  assertError(await post(srv.url, '/api/dnsbl/check', ''), 403, 'read_only');
}

describe('serve --read-only', { concurrency: false }, () => {
  test('a cleanly closed database: nothing written, no -wal or -shm created, writes refused', { timeout: 30000 }, async (t) => {
    const { dir, db } = await importArchive(archiveLines(Date.now() - 2 * DAY, 50, 10));
    const before = fileState(db);
    assert.equal(before['-wal'], null, 'import leaves no WAL behind');
    const stub = await startSlackStub();
    t.after(() => stub.close());
    await new Promise((r) => setTimeout(r, 20)); // an mtime change would show
    const srv = await startServer({
      t, dir, db,
      args: ['--read-only', '--slack-webhook-url', stub.url, '--monitor-interval', '100ms',
        '--dnsbl-ip', '192.0.2.1', '--retention-default', '1d', '--retention-interval', '100ms'],
    });
    await browseReadOnly(srv, { events: 60 });
    await new Promise((r) => setTimeout(r, 400)); // monitor and retention intervals pass
    const m = (await get(srv.url, '/api/stats?window=10m')).json.monitors.bounceRate;
    assert.equal(m.present, undefined, 'no live monitor runs');
    await srv.stop();
    assert.match(srv.stderr, /read-only: browsing without writing/);
    assert.deepEqual(fileState(db), before, 'the database file is untouched');
    assert.ok(!fs.existsSync(`${db}-wal`) && !fs.existsSync(`${db}-shm`), 'no -wal or -shm created');
    assert.equal(stub.requests.length, 0, 'nothing sent to Slack');
    assert.equal(fs.existsSync(path.join(dir, 'sns-certs')), false, 'no certificate folder created');
    assert.equal((await sqlite(db, 'SELECT count(*) AS n FROM SesEventMessages'))[0].n, 60, 'retention deleted nothing');
  });

  test('a database with a WAL holding commits (its writer was killed): read, not checkpointed', { timeout: 30000 }, async (t) => {
    const { dir, db } = await importArchive(archiveLines(Date.now() - 2 * DAY, 20, 0));
    // a server stores 3 more events in the WAL and dies without a checkpoint
    const w = await startServer({ t, dir, db });
    for (let i = 0; i < 3; i++) {
      const res = await post(w.url, '/sns', signEnvelope({ message: uniqueBounce() }));
      assertStatus(res, 'stored');
    }
    await w.kill();
    const before = fileState(db);
    assert.ok(before['-wal'] && before['-wal'].size > 0, 'the WAL holds the commits');
    await new Promise((r) => setTimeout(r, 20));
    const srv = await startServer({ t, dir, db, args: ['--read-only'] });
    await browseReadOnly(srv, { events: 23 });
    // the topics the archive heard from, read from its subscriptions table
    const subs = await get(srv.url, '/api/subscriptions');
    assert.equal(subs.status, 200, subs.text);
    assert.deepEqual(subs.json.items.map((x) => x.topicArn), [DEFAULT_TOPIC]);
    await srv.stop();
    assert.deepEqual(fileState(db), before, 'the database and its WAL are untouched');
  });

  test('no database, or not a seslog database: one line, exit 2, nothing created', { timeout: 30000 }, async () => {
    const dir = tempDir('seslog-ro-');
    const missing = path.join(dir, 'none.db');
    let r = await runSeslog(['serve', '--read-only', '--db', missing, '--listen', '127.0.0.1:0']);
    assert.equal(r.code, 2, JSON.stringify(r));
    assert.match(r.stderr, /^seslog serve: --read-only: no database at /);
    assert.equal(fs.existsSync(missing), false);
    const junk = path.join(dir, 'junk.db');
    fs.writeFileSync(junk, 'not a database at all, just text '.repeat(100));
    const sum = crypto.createHash('sha256').update(fs.readFileSync(junk)).digest('hex');
    r = await runSeslog(['serve', '--read-only', '--db', junk, '--listen', '127.0.0.1:0']);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /not a seslog database|cannot open/);
    assert.equal(crypto.createHash('sha256').update(fs.readFileSync(junk)).digest('hex'), sum);
  });
});

describe('seslog vacuum shows its progress', () => {
  test('not on a terminal: a line every --progress-every with the percentage, then 100 %', { timeout: 120000 }, async () => {
    // about 40 MB of events: VACUUM takes long enough for a few lines
    const { db } = await importArchive(archiveLines(Date.now() - 3 * DAY, 12000, 3000));
    const r = await runSeslog(['vacuum', '--db', db, '--progress-every', '1ms'], { timeout: 110000 });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^vacuumed .* MiB -> .* MiB in [\d.]+ s\n$/);
    const lines = r.stderr.trimEnd().split('\n');
    assert.ok(lines.length >= 2, `progress lines:\n${r.stderr}`);
    for (const l of lines) assert.match(l, /^vacuum: \d{1,3}% of [\d.]+ MiB live after \d+:\d\d(, about \d+:\d\d left)?$/);
    assert.match(lines[lines.length - 1], /^vacuum: 100% /);
    const pcts = lines.map((l) => Number(/(\d+)%/.exec(l)[1]));
    assert.deepEqual(pcts, [...pcts].sort((a, b) => a - b), 'the percentage only grows');
    // the default: a line every 5 s at most, so a short run prints the result alone
    const quiet = await runSeslog(['vacuum', '--db', db]);
    assert.equal(quiet.code, 0, quiet.stderr);
    const t = Number(/in ([\d.]+) s/.exec(quiet.stdout)[1]);
    if (t < 4) assert.equal(quiet.stderr, '');
  });
});
