// retention.test.mjs - --retention deletes expired events in the
// background (recipients rows with them, rollups kept); seslog vacuum
// compacts the file offline.
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startServer, runSeslog, sqlite, sleep, tempDir, domainSql } from './lib.mjs';

const T = { timeout: 60000 };
const DAY = 86400000;

function sesEvent(type, id, ageDays, recipient) {
  const ts = new Date(Date.now() - ageDays * DAY).toISOString();
  const mail = { timestamp: ts, source: 'shop@example.com', messageId: id, destination: [recipient] };
  const body = { eventType: type, mail };
  if (type === 'Open') body.open = { timestamp: ts, userAgent: 'x', ipAddress: '192.0.2.1' };
  if (type === 'Delivery') body.delivery = { timestamp: ts, recipients: [recipient], smtpResponse: '250 ok', reportingMTA: 'a.example' };
  if (type === 'Bounce') {
    body.bounce = { bounceType: 'Permanent', bounceSubType: 'General', timestamp: ts, feedbackId: `fb-${id}`,
      bouncedRecipients: [{ emailAddress: recipient, diagnosticCode: 'smtp; 550' }] };
  }
  return JSON.stringify(body);
}

async function fill(dir) {
  const lines = [];
  // old: 40 days (Open older than its 30d rule; others inside the 60d default)
  for (let i = 0; i < 30; i++) lines.push(sesEvent('Open', `open-old-${i}`, 40, `o${i}@old.example`));
  for (let i = 0; i < 20; i++) lines.push(sesEvent('Delivery', `del-mid-${i}`, 40, `d${i}@mid.example`));
  // very old: 90 days (past the 60d default)
  for (let i = 0; i < 1200; i++) lines.push(sesEvent('Delivery', `del-old-${i}`, 90, `v${i}@old.example`));
  for (let i = 0; i < 10; i++) lines.push(sesEvent('Bounce', `b-old-${i}`, 90, `b${i}@old.example`));
  // recent
  for (let i = 0; i < 15; i++) lines.push(sesEvent('Open', `open-new-${i}`, 1, `n${i}@new.example`));
  const file = path.join(dir, 'events.jsonl');
  fs.writeFileSync(file, lines.join('\n') + '\n');
  const db = path.join(dir, 'seslog.db');
  const r = await runSeslog(['import', '--db', db, file]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /imported 1275, duplicates 0, rejected 0/);
  return db;
}

async function counts(db) {
  const rows = await sqlite(db, `SELECT
      (SELECT count(*) FROM SesEventMessages WHERE messageId LIKE 'open-old-%') AS openOld,
      (SELECT count(*) FROM SesEventMessages WHERE messageId LIKE 'open-new-%') AS openNew,
      (SELECT count(*) FROM SesEventMessages WHERE messageId LIKE 'del-mid-%') AS delMid,
      (SELECT count(*) FROM SesEventMessages WHERE messageId LIKE 'del-old-%') AS delOld,
      (SELECT count(*) FROM SesEventMessages WHERE messageId LIKE 'b-old-%') AS bOld,
      (SELECT count(*) FROM recipients WHERE ${domainSql()} = 'old.example') AS rcptOld,
      (SELECT count(*) FROM recipients WHERE ${domainSql()} = 'new.example') AS rcptNew,
      (SELECT coalesce(sum(deliveries), 0) FROM rollup_minute) AS rollDeliveries`);
  return rows[0];
}

test('retention: expired events and their recipients go in batches; rollups stay', T, async (t) => {
  const dir = tempDir();
  const db = await fill(dir);
  const before = await counts(db);
  assert.deepEqual([before.openOld, before.delOld, before.bOld, before.rollDeliveries], [30, 1200, 10, 1220]);
  const srv = await startServer({ t, dir, args: ['--retention', 'Open=30d', '--retention-default', '60d',
    '--retention-interval', '200ms'] });
  let c;
  for (let i = 0; i < 100; i++) {
    await sleep(100);
    c = await counts(db);
    if (c.openOld === 0 && c.delOld === 0 && c.bOld === 0) break;
  }
  assert.equal(c.openOld, 0, 'Open older than 30d deleted');
  assert.equal(c.delOld, 0, 'Delivery older than the 60d default deleted (more than one batch)');
  assert.equal(c.bOld, 0, 'Bounce older than the 60d default deleted');
  assert.equal(c.delMid, 20, 'Delivery of 40 days kept (default is 60d)');
  assert.equal(c.openNew, 15, 'recent Opens kept');
  assert.equal(c.rcptOld, 0, 'recipients rows of deleted events deleted');
  assert.equal(c.rcptNew, 15);
  assert.equal(c.rollDeliveries, 1220, 'rollup counters are kept');
  await srv.stop();

  // vacuum compacts offline
  const v = await runSeslog(['vacuum', '--db', db]);
  assert.equal(v.code, 0, v.stderr);
  assert.match(v.stdout, /vacuumed .* MiB -> .* MiB/);
  const ic = await sqlite(db, 'PRAGMA integrity_check');
  assert.equal(ic[0].integrity_check, 'ok');
});

test('retention: bad rules refuse to start, exit 2, database untouched', T, async () => {
  const dir = tempDir();
  const db = path.join(dir, 'seslog.db');
  for (const spec of ['Opens=30d', 'Open=30x', 'Open', '=30d']) {
    const r = await runSeslog(['serve', '--db', db, '--listen', '127.0.0.1:0', '--retention', spec], { timeout: 10000 });
    assert.equal(r.code, 2, `${spec}: ${r.stderr}`);
    assert.match(r.stderr, /--retention/);
  }
  assert.equal(fs.existsSync(db), false, 'a refused start created the database');
});

test('vacuum: a missing database is a clear error', T, async () => {
  const r = await runSeslog(['vacuum', '--db', path.join(tempDir(), 'nope.db')]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /no database/);
});
