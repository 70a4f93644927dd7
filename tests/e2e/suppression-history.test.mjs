// suppression-history.test.mjs - the history of a suppression entry when
// its "added" row is implicit (schema version 19): a new entry writes no
// history row, and its first change writes the "added" row as it was
// before the change's own row. The API shows the same history as when
// every addition wrote its row (the first test passes on a seslog of
// either kind), the table holds each "added" row once, and a database
// made before version 19 keeps its rows and gets no second "added" row.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import {
  ROOT, startServer, signEnvelope, post, get, request, sqlite, assertStatus, tempDir,
} from './lib.mjs';

const T = { timeout: 120000 };
const enc = encodeURIComponent;

/** An SES Bounce (or Complaint) of `affected`, stamped ts. */
function sesNote({ type = 'Bounce', subType = 'General', affected, ts }) {
  const tag = crypto.randomUUID();
  const mail = { timestamp: ts, messageId: `m-${tag}`, source: 'sender@example.com', destination: affected };
  if (type === 'Bounce') {
    return {
      notificationType: 'Bounce',
      bounce: {
        bounceType: 'Permanent', bounceSubType: subType,
        bouncedRecipients: affected.map((emailAddress) => ({ emailAddress })),
        timestamp: ts, feedbackId: `fb-${tag}`,
      },
      mail,
    };
  }
  return {
    notificationType: 'Complaint',
    complaint: {
      complainedRecipients: affected.map((emailAddress) => ({ emailAddress })),
      complaintFeedbackType: 'abuse', timestamp: ts, feedbackId: `fb-${tag}`,
    },
    mail,
  };
}

/** Posts one signed SES notification; asserts "stored". Returns the SES message. */
async function deliver(srv, opts) {
  const ses = sesNote(opts);
  const res = await post(srv.url, '/sns', signEnvelope({ message: ses, timestamp: opts.ts }));
  assertStatus(res, 'stored');
  return ses;
}

/** The history of address as GET /api/suppression/{address} shows it. */
async function history(srv, address) {
  const res = await get(srv.url, `/api/suppression/${enc(address)}`);
  assert.equal(res.status, 200, res.text);
  return res.json.history;
}

/** The history without its wall-clock times, which no test can know. */
function withoutAt(h) {
  return h.map(({ at, ...rest }) => rest);
}

/** Asserts that the ISO time at lies within [from, to] (ms). */
function assertWithin(at, from, to) {
  const ms = Date.parse(at);
  assert.ok(ms >= from && ms <= to, `${at} within ${new Date(from).toISOString()}..${new Date(to).toISOString()}`);
}

/** The rows of the address in suppression_history, oldest first. */
function tableRows(db, address) {
  return sqlite(db, 'SELECT action, actor, reason, note, messageId, eventAt FROM suppression_history ' +
    `WHERE address = '${address}' ORDER BY id`);
}

test('history through the API: a rule-made entry added, updated, changed by hand, removed, added again', T, async (t) => {
  const srv = await startServer({ t });
  const ts1 = '2026-06-01T10:00:00.000Z';
  const ts2 = '2026-06-02T10:00:00.000Z';
  const ts3 = '2026-06-03T10:00:00.000Z';
  const jane = 'jane@example.com';
  const rich = 'richard@example.com';

  const before = Date.now();
  const b1 = await deliver(srv, { affected: [jane, rich], ts: ts1 });
  const after = Date.now();
  const added = {
    action: 'added', actor: 'permanent-bounce', reason: 'BOUNCE', note: 'permanent bounce (General)',
    messageId: b1.mail.messageId, eventAt: ts1,
  };
  let h = await history(srv, jane);
  assert.deepEqual(withoutAt(h), [added]);
  assertWithin(h[0].at, before, after);
  const addedAt = h[0].at;
  assert.deepEqual(withoutAt(await history(srv, rich)), [added]);

  // a complaint re-suppresses jane: updated, after the same "added"
  const c2 = await deliver(srv, { type: 'Complaint', affected: [jane], ts: ts2 });
  const updated = {
    action: 'updated', actor: 'complaint', reason: 'COMPLAINT', note: 'complaint (abuse)',
    messageId: c2.mail.messageId, eventAt: ts2,
  };
  h = await history(srv, jane);
  assert.deepEqual(withoutAt(h), [updated, added]);
  assert.equal(h[1].at, addedAt, 'the "added" row keeps its time');
  // richard is untouched by jane's change
  assert.deepEqual(withoutAt(await history(srv, rich)), [added]);

  // changed by hand, then removed
  let res = await request(srv.url, 'PUT', `/api/suppression/${enc(jane)}`, { reason: 'MANUAL', note: 'checked' });
  assert.equal(res.status, 200, res.text);
  const byHand = { action: 'updated', actor: 'api', reason: 'MANUAL', note: 'checked', messageId: null, eventAt: null };
  h = await history(srv, jane);
  assert.deepEqual(withoutAt(h), [byHand, updated, added]);
  assert.equal(h[2].at, addedAt);
  res = await request(srv.url, 'DELETE', `/api/suppression/${enc(rich)}`);
  assert.equal(res.status, 200, res.text);
  res = await request(srv.url, 'DELETE', `/api/suppression/${enc(jane)}`);
  assert.equal(res.status, 200, res.text);
  assert.equal((await get(srv.url, `/api/suppression/${enc(jane)}`)).status, 404);

  // added again by hand: the new "added" first, the old history after it
  const before2 = Date.now();
  res = await request(srv.url, 'PUT', `/api/suppression/${enc(jane)}`, { note: 'again' });
  assert.equal(res.status, 201, res.text);
  const after2 = Date.now();
  const removed = { action: 'removed', actor: 'api', reason: 'MANUAL', note: null, messageId: null, eventAt: null };
  const addedByHand = { action: 'added', actor: 'api', reason: 'MANUAL', note: 'again', messageId: null, eventAt: null };
  h = await history(srv, jane);
  assert.deepEqual(withoutAt(h), [addedByHand, removed, byHand, updated, added]);
  assertWithin(h[0].at, before2, after2);
  assert.equal(h[4].at, addedAt);
  // a rule re-suppresses the hand-made entry
  const b3 = await deliver(srv, { affected: [jane], ts: ts3 });
  const updated3 = { ...added, action: 'updated', messageId: b3.mail.messageId, eventAt: ts3 };
  const h2 = await history(srv, jane);
  assert.deepEqual(withoutAt(h2), [updated3, addedByHand, removed, byHand, updated, added]);
  assert.equal(h2[1].at, h[0].at, 'the hand-made "added" row keeps its time');

  // richard, removed: added then removed
  res = await request(srv.url, 'PUT', `/api/suppression/${enc(rich)}`, {});
  assert.equal(res.status, 201, res.text);
  h = await history(srv, rich);
  assert.deepEqual(withoutAt(h).slice(1), [{ ...removed, reason: 'BOUNCE' }, added]);
  assert.equal(h[2].at, addedAt);
  await srv.stop();
});

test('the table: no row for an unchanged entry; the first change writes "added" once, before its own row', T, async (t) => {
  const srv = await startServer({ t });
  const ann = 'ann@example.com';
  const bob = 'bob@example.com';
  const b1 = await deliver(srv, { affected: [ann, bob], ts: '2026-06-01T10:00:00.000Z' });
  let res = await request(srv.url, 'PUT', '/api/suppression/carl@example.com', { note: 'asked' });
  assert.equal(res.status, 201, res.text);
  assert.deepEqual(await sqlite(srv.db, 'SELECT count(*) AS n FROM suppression_history'), [{ n: 0 }]);
  // the view shows the implicit rows as the API does
  assert.deepEqual(await sqlite(srv.db, 'SELECT address, action, actor, note FROM suppression_history_full ' +
    'WHERE id IS NULL ORDER BY address'), [
    { address: ann, action: 'added', actor: 'permanent-bounce', note: 'permanent bounce (General)' },
    { address: bob, action: 'added', actor: 'permanent-bounce', note: 'permanent bounce (General)' },
    { address: 'carl@example.com', action: 'added', actor: 'api', note: 'asked' },
  ]);

  const b2 = await deliver(srv, { affected: [ann], ts: '2026-06-02T10:00:00.000Z' });
  const addedRow = {
    action: 'added', actor: 'permanent-bounce', reason: 'BOUNCE', note: 'permanent bounce (General)',
    messageId: b1.mail.messageId, eventAt: Date.parse('2026-06-01T10:00:00.000Z'),
  };
  assert.deepEqual(await tableRows(srv.db, ann), [addedRow,
    { ...addedRow, action: 'updated', messageId: b2.mail.messageId, eventAt: Date.parse('2026-06-02T10:00:00.000Z') }]);
  // more changes write no second "added"
  await deliver(srv, { affected: [ann], ts: '2026-06-03T10:00:00.000Z' });
  res = await request(srv.url, 'DELETE', `/api/suppression/${ann}`);
  assert.equal(res.status, 200, res.text);
  assert.deepEqual((await tableRows(srv.db, ann)).map((r) => r.action), ['added', 'updated', 'updated', 'removed']);
  // bob is still unchanged: nothing written; removed: added, then removed
  assert.deepEqual(await tableRows(srv.db, bob), []);
  res = await request(srv.url, 'DELETE', `/api/suppression/${bob}`);
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(await tableRows(srv.db, bob), [addedRow,
    { action: 'removed', actor: 'api', reason: 'BOUNCE', note: null, messageId: null, eventAt: null }]);
  // the implicit row's time is the one written
  const [carl] = await sqlite(srv.db, "SELECT addedAt FROM suppression WHERE address = 'carl@example.com'");
  res = await request(srv.url, 'PUT', '/api/suppression/carl@example.com', { reason: 'COMPLAINT' });
  assert.equal(res.status, 200, res.text);
  const carlRows = await sqlite(srv.db, "SELECT action, actor, at FROM suppression_history WHERE address = 'carl@example.com' ORDER BY id");
  assert.deepEqual(carlRows.map((r) => [r.action, r.actor]), [['added', 'api'], ['updated', 'api']]);
  assert.equal(carlRows[0].at, carl.addedAt);
  assert.ok(carlRows[1].at >= carl.addedAt);
  assert.deepEqual(await sqlite(srv.db, 'SELECT count(*) AS n FROM suppression WHERE addedAt IS NOT NULL OR addedBy IS NOT NULL'),
    [{ n: 0 }], 'every changed entry dropped its implicit row');
  await srv.stop();
});

/** The schema up to (without) the section of version. */
function schemaBefore(version) {
  const text = fs.readFileSync(path.join(ROOT, 'schema', 'seslog.sql'), 'utf8');
  const cut = text.indexOf(`-- version ${version}\n`);
  assert.ok(cut > 0, `schema has a version ${version} section`);
  return text.slice(0, cut);
}

test('a database of schema version 18 keeps its history: one "added" row per entry, none written again', T, async (t) => {
  const dir = tempDir('seslog-suphist-');
  const db = path.join(dir, 'seslog.db');
  // as seslog wrote them before version 19: every addition has its row
  const t0 = Date.parse('2026-05-01T08:00:00.000Z');
  // seslog_diag exists only inside seslog; over the empty events table of
  // this database its one use (filling a rollup) reads nothing
  const schema = schemaBefore(19).replaceAll('seslog_diag(diagnostic)', 'diagnostic');
  const sql = `${schema}\nPRAGMA user_version = 18;\n` +
    'INSERT INTO suppression (address, id, display, domain, reason, createdAt, lastEventAt, events, messageId, eventId, note, ambiguous) VALUES ' +
    `('old@example.com', 1, 'Old@example.com', 'example.com', 'BOUNCE', ${t0}, ${t0}, 1, 'm-old', 7, 'permanent bounce (General)', 0), ` +
    `('twice@example.com', 2, 'twice@example.com', 'example.com', 'BOUNCE', ${t0}, ${t0 + 1000}, 2, 'm-twice-2', 9, 'permanent bounce (General)', 0), ` +
    `('hand@example.com', 3, 'hand@example.com', 'example.com', 'MANUAL', ${t0 + 5000}, NULL, 0, NULL, NULL, 'asked', 0);\n` +
    'INSERT INTO suppression_history (address, at, action, actor, reason, note, messageId, eventId, eventAt) VALUES ' +
    `('old@example.com', ${t0 + 10}, 'added', 'permanent-bounce', 'BOUNCE', 'permanent bounce (General)', 'm-old', 7, ${t0}), ` +
    `('twice@example.com', ${t0 + 20}, 'added', 'permanent-bounce', 'BOUNCE', 'permanent bounce (General)', 'm-twice-1', 8, ${t0}), ` +
    `('twice@example.com', ${t0 + 1020}, 'updated', 'permanent-bounce', 'BOUNCE', 'permanent bounce (General)', 'm-twice-2', 9, ${t0 + 1000}), ` +
    `('hand@example.com', ${t0 + 5000}, 'added', 'cli', 'MANUAL', 'asked', NULL, NULL, NULL);\n`;
  const sqlFile = path.join(dir, 'old.sql');
  fs.writeFileSync(sqlFile, sql);
  await sqlite(db, `.read ${sqlFile}`);
  assert.deepEqual(await sqlite(db, 'PRAGMA user_version'), [{ user_version: 18 }]);

  const srv = await startServer({ t, dir, db });
  // migrated to the newest section of the schema file (19, which this test is about, or later)
  const schemaText = fs.readFileSync(path.join(ROOT, 'schema', 'seslog.sql'), 'utf8');
  const newest = Math.max(...[...schemaText.matchAll(/^-- version (\d+)$/gm)].map((m) => Number(m[1])));
  assert.ok(newest >= 19, `newest schema section ${newest}`);
  assert.deepEqual(await sqlite(db, 'PRAGMA user_version'), [{ user_version: newest }]);
  assert.deepEqual(await sqlite(db, 'SELECT count(*) AS n FROM suppression WHERE addedAt IS NOT NULL OR addedBy IS NOT NULL'), [{ n: 0 }]);
  const iso = (ms) => new Date(ms).toISOString();
  const oldAdded = { at: iso(t0 + 10), action: 'added', actor: 'permanent-bounce', reason: 'BOUNCE',
    note: 'permanent bounce (General)', messageId: 'm-old', eventAt: iso(t0) };
  assert.deepEqual(await history(srv, 'old@example.com'), [oldAdded]);
  assert.deepEqual((await history(srv, 'twice@example.com')).map((r) => [r.action, r.messageId, r.at]),
    [['updated', 'm-twice-2', iso(t0 + 1020)], ['added', 'm-twice-1', iso(t0 + 20)]]);
  const handAdded = { at: iso(t0 + 5000), action: 'added', actor: 'cli', reason: 'MANUAL', note: 'asked', messageId: null, eventAt: null };
  assert.deepEqual(await history(srv, 'hand@example.com'), [handAdded]);

  // changes after the upgrade write no second "added"
  const b = await deliver(srv, { affected: ['old@example.com'], ts: '2026-06-01T10:00:00.000Z' });
  let res = await request(srv.url, 'DELETE', '/api/suppression/hand@example.com');
  assert.equal(res.status, 200, res.text);
  await deliver(srv, { affected: ['twice@example.com'], ts: '2026-06-01T11:00:00.000Z' });
  assert.deepEqual(await sqlite(db, "SELECT address, count(*) AS n FROM suppression_history WHERE action = 'added' GROUP BY address ORDER BY address"),
    [{ address: 'hand@example.com', n: 1 }, { address: 'old@example.com', n: 1 }, { address: 'twice@example.com', n: 1 }]);
  const h = await history(srv, 'old@example.com');
  assert.deepEqual(h.map((r) => [r.action, r.messageId]), [['updated', b.mail.messageId], ['added', 'm-old']]);
  assert.deepEqual(h[1], oldAdded);
  assert.deepEqual((await tableRows(db, 'hand@example.com')).map((r) => [r.action, r.actor]), [['added', 'cli'], ['removed', 'api']]);
  // a new entry in the upgraded database: implicit until changed
  await deliver(srv, { affected: ['new@example.com'], ts: '2026-06-01T12:00:00.000Z' });
  assert.deepEqual(await tableRows(db, 'new@example.com'), []);
  assert.deepEqual((await history(srv, 'new@example.com')).map((r) => r.action), ['added']);
  await srv.stop();
});
