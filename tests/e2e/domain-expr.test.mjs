// domain-expr.test.mjs - recipients and suppression keep no domain column
// (schema versions 23, 24): "recipients-domain" and "suppression-domain"
// index the schema comment's expression of the address, oddDomain holds
// the domain only where that expression would not give seslog's (an
// address without exactly one '@'). Every reader finds the same rows as
// before, the delete triggers take the rollups back, the shell's
// expression uses the indexes, and a database of the versions before
// migrates with every row and every domain it held.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { execFile } from 'node:child_process';
import {
  ROOT, startServer, runSeslog, sqlite, get, tempDir, q, domainSql,
  RECIPIENTS_BEFORE_23_SQL, SUPPRESSION_BEFORE_24_SQL, reasonSql, supMessageIdSql, supNoteSql, addedBySql,
} from './lib.mjs';

const T = { timeout: 180000 };
const BASE = Date.parse('2026-06-01T12:00:00.000Z');
const iso = (ms) => new Date(ms).toISOString();

/** Recipients of the Delivery events: plain ones, and ones SES may report
 * that are not a single-'@' address. */
const ODD = ['two@at@odd.example', '"q@r"@Quoted.Example', 'noat', 'trailing@', '@lead.example'];
const PLAIN = ['a@plain.example', 'B@Plain.Example', 'ü@idn.exämple'];

/** The domain seslog takes from a recipient (src/rollup.c): after the
 * last '@' of the ASCII-lower-cased address, '' without one. */
function domainOf(a) {
  const l = a.replace(/[A-Z]/g, (c) => c.toLowerCase());
  const at = l.lastIndexOf('@');
  return at < 0 ? '' : l.slice(at + 1);
}

function ses(type, id, ms, recipients) {
  const ts = iso(ms);
  const mail = { timestamp: ts, source: 'shop@example.com', messageId: id, destination: recipients };
  if (type === 'Delivery') {
    return { notificationType: 'Delivery', mail,
      delivery: { timestamp: ts, recipients, smtpResponse: '250 ok', reportingMTA: 'a.example' } };
  }
  return { notificationType: 'Bounce', mail,
    bounce: { bounceType: 'Permanent', bounceSubType: 'General', timestamp: ts, feedbackId: `fb-${id}`,
      bouncedRecipients: recipients.map((emailAddress) => ({ emailAddress, diagnosticCode: 'smtp; 550 no' })) } };
}

function events() {
  const out = [];
  for (let i = 0; i < 6; i++) out.push(ses('Delivery', `d-${i}`, BASE + i * 3600e3, [...PLAIN, ...ODD]));
  out.push(ses('Bounce', 'b-1', BASE + 10, ['a@plain.example', 'Perm@Bounce.Example', 'x@y@odd.example']));
  return out;
}

/** A database made by this seslog from events(). */
async function freshDb(dir) {
  const file = path.join(dir, 'events.jsonl');
  const evs = events();
  fs.writeFileSync(file, evs.map((e) => JSON.stringify(e)).join('\n') + '\n');
  const db = path.join(dir, 'fresh.db');
  const r = await runSeslog(['import', '--db', db, file]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`imported ${evs.length}, duplicates 0, rejected 0`));
  return db;
}

/** The query plan of sql as the sqlite3 shell prints it. */
function plan(db, sql) {
  return new Promise((resolve, reject) => {
    execFile('sqlite3', [db, `EXPLAIN QUERY PLAN ${sql}`], (err, stdout, stderr) => {
      if (err) reject(new Error(`${sql}: ${stderr || err.message}`));
      else resolve(stdout);
    });
  });
}

/** What the API and the CLI answer about the domains of events(). */
async function answers(t, db) {
  const srv = await startServer({ t, db });
  const out = {};
  for (const d of ['plain.example', 'odd.example', 'quoted.example', 'lead.example', 'idn.exämple', 'bounce.example',
    'hand.example']) {
    const res = await get(srv.url, `/api/events?domain=${encodeURIComponent(d)}&limit=100`);
    assert.equal(res.status, 200, res.text);
    out[`events ${d}`] = JSON.parse(res.text).items.map((e) => e.messageId);
  }
  const counts = await get(srv.url, '/api/events/counts?groupBy=domain');
  assert.equal(counts.status, 200, counts.text);
  out.counts = JSON.parse(counts.text).groups;
  const sup = await get(srv.url, '/api/suppression?domain=bounce.example');
  assert.equal(sup.status, 200, sup.text);
  out.suppression = JSON.parse(sup.text).items.map((e) => e.address);
  await srv.stop();
  const cli = await runSeslog(['query', '--db', db, '--format', 'jsonl', '--domain', 'odd.example', '--order', 'asc']);
  assert.equal(cli.code, 0, cli.stderr);
  out.cli = cli.stdout;
  const list = await runSeslog(['suppression', 'list', '--db', db, '--domain', 'plain.example']);
  assert.equal(list.code, 0, list.stderr);
  out.list = list.stdout;
  return out;
}

test('no domain column: the expression gives every recipient its domain, readers and triggers agree', T, async (t) => {
  const dir = tempDir('seslog-domexpr-');
  const db = await freshDb(dir);
  for (const table of ['recipients', 'suppression']) {
    const cols = (await sqlite(db, `PRAGMA table_info(${table})`)).map((c) => c.name);
    assert.ok(!cols.includes('domain') && cols.includes('oddDomain'), `${table}: ${cols}`);
  }
  // oddDomain only where the address has not exactly one '@'
  const rows = await sqlite(db, `SELECT address, oddDomain, ${domainSql()} AS domain FROM recipients`);
  assert.equal(rows.length, 6 * (PLAIN.length + ODD.length) + 3);
  for (const r of rows) {
    const one = r.address.split('@').length === 2;
    assert.equal(r.oddDomain, one ? null : domainOf(r.address), JSON.stringify(r));
    assert.equal(r.domain, domainOf(r.address), JSON.stringify(r));
  }
  assert.deepEqual(new Set(rows.map((r) => r.domain)),
    new Set([...PLAIN, ...ODD, 'perm@bounce.example', 'x@y@odd.example'].map(domainOf)));
  // the same domains as the rollups seslog writes in C
  const byDomain = `SELECT ${domainSql()} AS domain, count(*) AS n FROM recipients GROUP BY 1 ORDER BY 1`;
  assert.deepEqual(await sqlite(db, byDomain),
    await sqlite(db, 'SELECT domain, sum(recipients) AS n FROM rollup_recipient_day GROUP BY 1 ORDER BY 1'));
  // suppression: the address's domain, no oddDomain (a listed address has one '@')
  assert.deepEqual(await sqlite(db, `SELECT address, oddDomain, ${domainSql()} AS domain FROM suppression ORDER BY address`),
    [{ address: 'a@plain.example', oddDomain: null, domain: 'plain.example' },
      { address: 'perm@bounce.example', oddDomain: null, domain: 'bounce.example' }]);

  const want = await answers(t, db);
  assert.deepEqual(want['events odd.example'], ['d-5', 'd-4', 'd-3', 'd-2', 'd-1', 'b-1', 'd-0']);
  assert.deepEqual(want['events quoted.example'], ['d-5', 'd-4', 'd-3', 'd-2', 'd-1', 'd-0']);
  assert.deepEqual(want['events lead.example'], want['events quoted.example']);
  assert.deepEqual(want['events idn.exämple'], want['events quoted.example']);
  assert.deepEqual(want['events bounce.example'], ['b-1']);
  assert.deepEqual(want['events plain.example'], ['d-5', 'd-4', 'd-3', 'd-2', 'd-1', 'b-1', 'd-0']);
  const counted = Object.fromEntries(want.counts.map((g) => [g.key.domain, g.count]));
  assert.equal(counted['odd.example'], 7);
  assert.equal(counted['plain.example'], 13);
  assert.equal(counted[''], 12, 'noat and trailing@: the empty domain');
  assert.deepEqual(want.suppression, ['Perm@Bounce.Example']);
  assert.match(want.list, /a@plain\.example/);
  assert.doesNotMatch(want.list, /bounce\.example/i);
  assert.equal(want.cli.trim().split('\n').length, 7);

  // the schema comment's expression, as a sqlite3 user writes it, uses the indexes
  assert.match(await plan(db, `SELECT count(*) FROM recipients WHERE ${domainSql()} = 'odd.example'`),
    /USING COVERING INDEX recipients-domain \(<expr>=\?\)/);
  assert.match(await plan(db, `SELECT address FROM suppression WHERE ${domainSql()} = 'plain.example' ORDER BY id DESC`),
    /USING INDEX suppression-domain \(<expr>=\?\)/);
  assert.doesNotMatch(await plan(db, `SELECT address FROM suppression WHERE ${domainSql()} = 'plain.example' ORDER BY id DESC`),
    /TEMP B-TREE|SCAN/);

  // the delete triggers find each row's domain, odd ones too
  await sqlite(db, 'DELETE FROM recipients');
  assert.deepEqual(await sqlite(db, 'SELECT (SELECT total(recipients) FROM rollup_domain_day) AS dd, ' +
    '(SELECT total(recipients) FROM rollup_recipient_day) AS rd, (SELECT total(recipients) FROM rollup_recipient_hour) AS rh'),
  [{ dd: 0, rd: 0, rh: 0 }]);
});

test('a database of the versions before keeps every row and every domain it held', T, async (t) => {
  const dir = tempDir('seslog-domexpr-old-');
  const fresh = await freshDb(dir);
  const want = await answers(t, fresh);
  const text = fs.readFileSync(path.join(ROOT, 'schema', 'seslog.sql'), 'utf8');
  const all = [...text.matchAll(/^-- version (\d+)$/gm)].map((m) => Number(m[1]));
  const newest = Math.max(...all);
  const before = Math.max(...all.filter((v) => v < 23));

  // the shape of the versions before 23 and 24: a domain column in each table
  const old = path.join(dir, 'old.db');
  await sqlite(fresh, `VACUUM INTO ${q(old)}`);
  const sqlFile = path.join(dir, 'downgrade.sql');
  fs.writeFileSync(sqlFile, `${RECIPIENTS_BEFORE_23_SQL}${SUPPRESSION_BEFORE_24_SQL}PRAGMA user_version = ${before};\n`);
  await sqlite(old, `.read ${sqlFile}`);
  const rcpt = 'SELECT address, eventId, domain FROM recipients ORDER BY address, eventId';
  const oldRcpt = await sqlite(old, rcpt);
  assert.equal(oldRcpt.length, 6 * (PLAIN.length + ODD.length) + 3);
  // a domain edited by hand, in each table: kept as it was
  await sqlite(old, "UPDATE recipients SET domain = 'hand.example' WHERE address = 'a@plain.example' AND eventId = 1; " +
    "UPDATE suppression SET domain = 'hand.example' WHERE address = 'a@plain.example'");
  const sup = 'SELECT address, id, display, domain, reason, createdAt, lastEventAt, events, messageId, eventId, note, ' +
    'ambiguous, addedAt, addedBy FROM suppression ORDER BY address';
  const oldSup = await sqlite(old, sup);
  const oldRcptEdited = await sqlite(old, rcpt);

  const got = await answers(t, old);
  assert.deepEqual(await sqlite(old, 'PRAGMA user_version'), [{ user_version: newest }]);
  assert.deepEqual(await sqlite(old, rcpt.replace('domain', `${domainSql()} AS domain`)), oldRcptEdited, 'every recipients row, its domain');
  // read as seslog reads them (schema version 25: reason and addedBy codes, messageId and note from the event)
  const supRead = sup.replace('domain', `${domainSql()} AS domain`).replace('reason', `${reasonSql()} AS reason`)
    .replace('messageId', `${supMessageIdSql()} AS messageId`).replace('note', `${supNoteSql()} AS note`)
    .replace('addedBy', `${addedBySql()} AS addedBy`);
  assert.deepEqual(await sqlite(old, supRead), oldSup, 'every suppression row, its domain');
  assert.deepEqual(await sqlite(old, 'SELECT address, oddDomain FROM suppression WHERE oddDomain IS NOT NULL'),
    [{ address: 'a@plain.example', oddDomain: 'hand.example' }]);
  // the answers are the fresh database's, but for the hand-edited entry
  // (listed under the domain it was given) and its recipients row
  assert.equal(got.list.includes('a@plain.example'), false);
  const list = await runSeslog(['suppression', 'list', '--db', old, '--domain', 'hand.example']);
  assert.equal(list.code, 0, list.stderr);
  assert.match(list.stdout, /a@plain\.example/);
  for (const k of ['events odd.example', 'events quoted.example', 'events bounce.example', 'suppression', 'cli']) {
    assert.deepEqual(got[k], want[k], k);
  }
  assert.deepEqual(got['events hand.example'], ['d-0']);
  assert.deepEqual(want['events hand.example'], []);
  const schema = await sqlite(old, "SELECT name FROM sqlite_schema WHERE tbl_name IN ('recipients', 'suppression') AND type = 'index' AND name NOT LIKE 'sqlite_%' ORDER BY name");
  assert.deepEqual(schema.map((s) => s.name), ['recipients-domain', 'suppression-domain', 'suppression-reason']);
});
