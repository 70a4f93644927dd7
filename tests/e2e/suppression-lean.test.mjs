// suppression-lean.test.mjs - a suppression entry made by a rule stores
// neither the messageId nor the note its event gives (schema version 25):
// messageId NULL while it is the event's, note NULL while the rule's note is
// the one derived from the event. Every reader gives the same values as
// before: /api/suppression, /api/suppression/{address} (entry and history),
// `seslog suppression list` (csv, json) and the view suppression_history_full.
// The reason and the adding actor are stored as codes (0 BOUNCE, 1 COMPLAINT,
// 2 MANUAL; 0 permanent-bounce ... 4 cli), read as their names, and the table is keyed by id (its indexes do not repeat the address).
// Retention stores both into the entry before it deletes the event, and a
// database of the version before migrates to the lean form, both with the
// same readings.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startServer, get, sqlite, runSeslog, tempDir, sleep, SUPPRESSION_BEFORE_25_SQL } from './lib.mjs';

const T = { timeout: 180000 };
const DAY = 86400000;
const BASE = Date.now() - 100 * DAY; // old enough for a 30d retention

function iso(ms) {
  return new Date(ms).toISOString();
}

/** One SES event (JSON text) of type Bounce or Complaint, minute m after BASE. */
function ses({ id, type = 'Bounce', bounceType = 'Permanent', subType, feedbackType, affected, m }) {
  const ts = iso(BASE + m * 60000);
  const mail = { timestamp: ts, messageId: id, source: 'sender@example.com', destination: affected };
  if (type === 'Bounce') {
    const bounce = { bounceType, bouncedRecipients: affected.map((emailAddress) => ({ emailAddress })),
      timestamp: ts, feedbackId: `fb-${id}` };
    if (subType) bounce.bounceSubType = subType;
    return JSON.stringify({ notificationType: 'Bounce', bounce, mail });
  }
  const complaint = { complainedRecipients: affected.map((emailAddress) => ({ emailAddress })),
    timestamp: ts, feedbackId: `fb-${id}` };
  if (feedbackType) complaint.complaintFeedbackType = feedbackType;
  return JSON.stringify({ notificationType: 'Complaint', complaint, mail });
}

const MID = (k) => `0100018c${k.padEnd(8, '0')}-8a1c2f3e-4b5d-6e7f-8091-a2b3c4d5e6f7-000000`;

// Each address's messageId and note as every reader must give them.
const EXPECT = {
  'a@p.example': { messageId: MID('p3'), note: 'permanent bounce (General)' }, // updated by P3
  'b@p.example': { messageId: MID('p1'), note: 'permanent bounce (General)' },
  'nosub@p.example': { messageId: MID('p2'), note: 'permanent bounce (no subtype)' },
  'c@c.example': { messageId: MID('c1'), note: 'complaint (abuse)' },
  'c2@c.example': { messageId: MID('c2'), note: 'complaint (no feedback type)' },
  'amb1@c.example': { messageId: MID('c3'), note: 'complaint (abuse) naming 2 recipients: SES may have guessed' },
  'amb2@c.example': { messageId: MID('c3'), note: 'complaint (abuse) naming 2 recipients: SES may have guessed' },
  'soft@s.example': { messageId: MID('s3'), note: '3 soft bounces within 7 days' },
  'man@m.example': { messageId: MID('p4'), note: null }, // added by hand without a note, then bounced
  'note@m.example': { messageId: null, note: 'by hand' },
};
const ADDRESSES = Object.keys(EXPECT).sort();

/** Builds the database: rule entries, manual entries, and entries changed later. */
async function build(dir) {
  const db = path.join(dir, 'seslog.db');
  const first = [
    ses({ id: MID('p1'), subType: 'General', affected: ['a@p.example', 'b@p.example'], m: 0 }),
    ses({ id: MID('p2'), affected: ['nosub@p.example'], m: 1 }),
    ses({ id: MID('c1'), type: 'Complaint', feedbackType: 'abuse', affected: ['c@c.example'], m: 2 }),
    ses({ id: MID('c2'), type: 'Complaint', affected: ['c2@c.example'], m: 3 }),
    ses({ id: MID('c3'), type: 'Complaint', feedbackType: 'abuse', affected: ['amb1@c.example', 'amb2@c.example'], m: 4 }),
    ses({ id: MID('s1'), bounceType: 'Transient', subType: 'General', affected: ['soft@s.example'], m: 5 }),
    ses({ id: MID('s2'), bounceType: 'Transient', subType: 'General', affected: ['soft@s.example'], m: 6 }),
    ses({ id: MID('s3'), bounceType: 'Transient', subType: 'General', affected: ['soft@s.example'], m: 7 }),
    ses({ id: MID('p3'), subType: 'Suppressed', affected: ['a@p.example'], m: 8 }),
  ];
  const f1 = path.join(dir, 'one.jsonl');
  fs.writeFileSync(f1, first.join('\n') + '\n');
  let r = await runSeslog(['import', '--db', db, f1]);
  assert.equal(r.code, 0, r.stderr);
  r = await runSeslog(['suppression', 'add', '--db', db, 'man@m.example']);
  assert.equal(r.code, 0, r.stderr);
  r = await runSeslog(['suppression', 'add', '--db', db, '--note', 'by hand', 'note@m.example']);
  assert.equal(r.code, 0, r.stderr);
  const f2 = path.join(dir, 'two.jsonl');
  fs.writeFileSync(f2, ses({ id: MID('p4'), subType: 'General', affected: ['man@m.example'], m: 9 }) + '\n');
  r = await runSeslog(['import', '--db', db, f2]);
  assert.equal(r.code, 0, r.stderr);
  return db;
}

/** What every reader says of the list (the wall-clock `at` of history rows included). */
async function readings(t, db) {
  const out = {};
  const srv = await startServer({ t, db });
  const list = await get(srv.url, '/api/suppression?limit=1000');
  assert.equal(list.status, 200, list.text);
  out.api = JSON.parse(list.text).items.sort((x, y) => (x.address < y.address ? -1 : 1));
  out.one = {};
  for (const a of ADDRESSES) {
    const r = await get(srv.url, `/api/suppression/${encodeURIComponent(a)}`);
    assert.equal(r.status, 200, r.text);
    out.one[a] = JSON.parse(r.text);
  }
  await srv.stop();
  for (const format of ['csv', 'json']) {
    const r = await runSeslog(['suppression', 'list', '--db', db, '--format', format]);
    assert.equal(r.code, 0, r.stderr);
    out[format] = r.stdout;
  }
  out.view = await sqlite(db, `SELECT address, at, action, actor, reason, note, messageId, eventId, eventAt
    FROM suppression_history_full ORDER BY address, coalesce(id, 1e18)`);
  return out;
}

/** The stored form: address, whether messageId and note are stored. */
function storedForm(db) {
  return sqlite(db, `SELECT address, reason, addedBy, messageId IS NOT NULL AS m, note IS NOT NULL AS n,
    eventId IS NOT NULL AS e FROM suppression ORDER BY address`);
}

const LEAN = [ // reason, addedBy: their codes; m: messageId stored, n: note stored, e: has an event
  { address: 'a@p.example', reason: 0, addedBy: null, m: 1, n: 1, e: 1 }, // a later event: both stored
  { address: 'amb1@c.example', reason: 1, addedBy: 1, m: 0, n: 1, e: 1 }, // the note names 2 recipients
  { address: 'amb2@c.example', reason: 1, addedBy: 1, m: 0, n: 1, e: 1 },
  { address: 'b@p.example', reason: 0, addedBy: 0, m: 0, n: 0, e: 1 },
  { address: 'c2@c.example', reason: 1, addedBy: 1, m: 0, n: 0, e: 1 },
  { address: 'c@c.example', reason: 1, addedBy: 1, m: 0, n: 0, e: 1 },
  { address: 'man@m.example', reason: 0, addedBy: null, m: 1, n: 0, e: 1 }, // a NULL note of its own
  { address: 'nosub@p.example', reason: 0, addedBy: 0, m: 0, n: 0, e: 1 },
  { address: 'note@m.example', reason: 2, addedBy: 4, m: 0, n: 1, e: 0 },
  { address: 'soft@s.example', reason: 0, addedBy: 2, m: 0, n: 1, e: 1 }, // a count the event does not hold
];

function checkValues(r) {
  assert.deepEqual(r.api.map((e) => e.address), ADDRESSES);
  for (const e of r.api) {
    assert.deepEqual({ messageId: e.messageId, note: e.note }, EXPECT[e.address], `API list: ${e.address}`);
    const one = r.one[e.address];
    assert.deepEqual({ messageId: one.messageId, note: one.note }, EXPECT[e.address], `API entry: ${e.address}`);
  }
  const csv = r.csv.split('\n');
  for (const a of ADDRESSES) {
    const line = csv.find((l) => l.startsWith(`${a},`));
    assert.ok(line, `csv lists ${a}:\n${r.csv}`);
    if (EXPECT[a].messageId) assert.ok(line.includes(EXPECT[a].messageId), `csv messageId of ${a}: ${line}`);
    if (EXPECT[a].note) assert.ok(line.includes(EXPECT[a].note), `csv note of ${a}: ${line}`);
  }
  // the implicit "added" rows and the written ones: messageId and note of the first event
  const added = Object.fromEntries(r.view.filter((v) => v.action === 'added').map((v) => [v.address, v]));
  assert.equal(added['a@p.example'].messageId, MID('p1'), 'the added row of a@ keeps P1');
  assert.equal(added['a@p.example'].note, 'permanent bounce (General)');
  assert.equal(added['b@p.example'].messageId, MID('p1'));
  assert.equal(added['c@c.example'].note, 'complaint (abuse)');
  assert.equal(added['man@m.example'].messageId, null);
  assert.equal(added['man@m.example'].note, null);
  const hist = r.one['b@p.example'].history;
  assert.equal(hist.length, 1);
  assert.deepEqual([hist[0].action, hist[0].messageId, hist[0].note], ['added', MID('p1'), 'permanent bounce (General)']);
}

test('suppression lean: messageId and note read from the event; retention stores them first', T, async (t) => {
  const dir = tempDir('seslog-suplean-');
  const db = await build(dir);
  assert.deepEqual(await storedForm(db), LEAN, 'stored only what the event does not give');
  const before = await readings(t, db);
  checkValues(before);

  // the same from a copy whose events retention deletes
  const kept = path.join(tempDir('seslog-suplean-ret-'), 'seslog.db');
  fs.copyFileSync(db, kept);
  const srv = await startServer({ t, db: kept, args: ['--retention-default', '30d', '--retention-interval', '200ms'] });
  let left;
  for (let i = 0; i < 100; i++) {
    await sleep(100);
    left = (await sqlite(kept, 'SELECT count(*) AS n FROM SesEventMessages'))[0].n;
    if (left === 0) break;
  }
  await srv.stop();
  assert.equal(left, 0, 'retention deleted every event');
  const form = await storedForm(kept);
  assert.deepEqual(form.filter((r) => r.e && (!r.m || !r.n) && r.address !== 'man@m.example'), [],
    'every entry with an event holds its messageId and note now');
  assert.deepEqual(await readings(t, kept), before, 'the same readings without the events');
});

test('suppression lean: a database of the version before migrates with the same readings', T, async (t) => {
  const dir = tempDir('seslog-suplean-mig-');
  const db = await build(dir);
  const before = await readings(t, db);
  const version = (await sqlite(db, 'PRAGMA user_version'))[0].user_version;
  assert.ok(version >= 25);
  // the entries and the view as seslog wrote them before version 25
  const old = path.join(tempDir('seslog-suplean-old-'), 'seslog.db');
  fs.copyFileSync(db, old);
  const rows = await sqlite(old, 'SELECT address, id, display, reason, createdAt, lastEventAt, events, eventId, ambiguous, addedAt, addedBy FROM suppression ORDER BY address');
  await sqlite(old, `${SUPPRESSION_BEFORE_25_SQL} PRAGMA user_version = 24;`);
  const whole = await storedForm(old);
  assert.deepEqual(whole.filter((r) => r.e && !r.m), [], 'the old form stores every messageId');
  assert.deepEqual([...new Set(whole.map((r) => r.reason))].sort(), ['BOUNCE', 'COMPLAINT', 'MANUAL'], 'and reasons as text');
  assert.deepEqual([...new Set(whole.map((r) => String(r.addedBy)))].sort(), ['cli', 'complaint', 'null', 'permanent-bounce', 'soft-bounce'],
    'and actors as text');
  const after = await readings(t, old);
  assert.deepEqual(after, before, 'every reader gives the same values after migrating');
  // a@p's messageId is its latest event's: stored by the update, lean after migrating
  const migrated = LEAN.map((r) => (r.address === 'a@p.example' ? { ...r, m: 0 } : r));
  assert.deepEqual(await storedForm(old), migrated, 'migrated entries are lean where the event gives the values');
  assert.deepEqual(await sqlite(old, 'SELECT address, id, display, reason, createdAt, lastEventAt, events, eventId, ambiguous, addedAt, addedBy FROM suppression ORDER BY address'),
    rows, 'every other column unchanged');
  assert.ok((await sqlite(old, 'PRAGMA user_version'))[0].user_version >= 25);
  // keyed by id (a rowid table): the indexes hold the reason or the domain and the id alone
  const [{ sql }] = await sqlite(old, "SELECT sql FROM sqlite_schema WHERE name = 'suppression'");
  assert.doesNotMatch(sql, /WITHOUT ROWID/i);
  assert.match(sql, /id INTEGER PRIMARY KEY/);
  assert.deepEqual(await sqlite(old, "SELECT name FROM pragma_index_info('suppression-reason')"), [{ name: 'reason' }]);
  assert.equal((await sqlite(old, "SELECT count(*) AS n FROM pragma_index_info('suppression-domain')"))[0].n, 1);
});
