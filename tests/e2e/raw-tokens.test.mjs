// raw-tokens.test.mjs - the original JSON stored without the values its
// row's columns hold (schema version 21): `seslog import` compresses from
// its first event on (the first dictionary is learned from the first
// batch), and every fixture - among them a bounce with several recipients
// and complaints, whose bouncedRecipients, messageId and feedbackId are
// left out of the stored frame - comes back byte for byte through
// `seslog query --format jsonl`, /api/events/{id} and as the DynamoDB item,
// also when posted to a server whose database already has a dictionary.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { runSeslog, tempDir, get, sqlite, countEvents, sesDocuments } from './lib.mjs';
import { writeEvents } from './query-data.mjs';
import {
  missingTools, startDynalite, createTable, scanItems, byKey, expectedItem, startReplicating,
  postEvent, drained,
} from './dynamodb-lib.mjs';

const T = { timeout: 120000 };
let dyn;

before(async () => {
  const missing = missingTools();
  assert.equal(missing, null, `${missing}`);
  dyn = await startDynalite();
  await createTable(dyn.url);
});

after(async () => {
  if (dyn) await dyn.stop();
});


/** The original's text as seslog keeps it: compact, keys in their order. */
const text = (v) => JSON.stringify(v);

async function jsonl(db) {
  const r = await runSeslog(['query', '--db', db, '--format', 'jsonl', '--order', 'asc']);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.split('\n').filter((l) => l).map((l) => JSON.parse(l));
}

/** A copy of doc with ids of its own, so it is a new event. */
function fresh(doc, tag = crypto.randomUUID()) {
  const ses = structuredClone(doc);
  ses.mail.messageId = `${tag}-${ses.mail.messageId}`;
  for (const o of [ses.bounce, ses.complaint]) if (o?.feedbackId) o.feedbackId = `${tag}-${o.feedbackId}`;
  return ses;
}

test('import compresses every event from the first; each fixture comes back byte for byte', T, async () => {
  const dir = tempDir('seslog-ztok-');
  const db = path.join(dir, 'seslog.db');
  const file = path.join(dir, 'events.jsonl');
  const data = writeEvents(file);
  const fixtures = sesDocuments();
  assert.ok(fixtures.some((f) => (f.doc.bounce?.bouncedRecipients?.length ?? 0) > 1), 'a bounce of several recipients');
  assert.ok(fixtures.some((f) => f.doc.complaint), 'a complaint');
  const fixFile = path.join(dir, 'fixtures.jsonl');
  fs.writeFileSync(fixFile, fixtures.map((f) => text(f.doc)).join('\n') + '\n');
  const r = await runSeslog(['import', '--db', db, fixFile, file]);
  assert.equal(r.code, 0, r.stderr);
  const n = await countEvents(db);
  assert.ok(n >= data.events.length, `${n} events`);
  // no row waits plain for a dictionary: the first batch taught it
  const kinds = await sqlite(db, "SELECT rawDict != 0 AND typeof(raw) = 'blob' AS packed, count(*) AS n FROM SesEventMessages GROUP BY 1");
  assert.deepEqual(kinds, [{ packed: 1, n }]);
  assert.deepEqual(await sqlite(db, 'PRAGMA user_version').then((v) => v[0].user_version >= 21), true);

  const rows = await jsonl(db);
  const byMid = new Map(rows.map((row) => [row.messageId, row]));
  for (const { name, doc } of fixtures) {
    const row = byMid.get(doc.mail.messageId);
    assert.ok(row, `${name} is stored`);
    // jsonl's raw is the stored text as a value: compared value for value, keys in order
    const same = rows.filter((x) => x.messageId === doc.mail.messageId).map((x) => text(x.raw));
    assert.ok(same.includes(text(doc)), `${name}: jsonl gives the original back`);
  }
  for (const e of data.events) {
    const same = rows.filter((x) => x.messageId === e.ses.mail.messageId).map((x) => text(x.raw));
    assert.ok(same.includes(text(e.ses)), `event ${e.ses.mail.messageId}`);
  }
});

test('a server with a dictionary stores tokenized rows; the API, jsonl and DynamoDB give each fixture back', T, async (t) => {
  const dir = tempDir('seslog-ztok-srv-');
  const db = path.join(dir, 'seslog.db');
  const file = path.join(dir, 'events.jsonl');
  writeEvents(file);
  let r = await runSeslog(['import', '--db', db, file]);
  assert.equal(r.code, 0, r.stderr);
  const dicts = await sqlite(db, 'SELECT count(*) AS n FROM raw_dicts');
  assert.ok(dicts[0].n >= 1, 'the database has a dictionary');
  const mark = (await sqlite(db, 'SELECT max(id) AS m FROM SesEventMessages'))[0].m;

  const srv = await startReplicating(dyn.url, { t, db, dir });
  const sent = [];
  for (const { name, doc } of sesDocuments()) {
    const ses = fresh(doc);
    const ts = await postEvent(srv, ses);
    sent.push({ name, ses, ts });
  }
  await drained(srv);
  const late = await sqlite(db, `SELECT count(*) AS n FROM SesEventMessages WHERE id > ${mark} AND (rawDict = 0 OR typeof(raw) != 'blob')`);
  assert.deepEqual(late, [{ n: 0 }], 'the posted events are compressed');

  const items = byKey(await scanItems(dyn.url));
  for (const { name, ses, ts } of sent) {
    const res = await get(srv.url, `/api/events/${encodeURIComponent(ses.mail.messageId)}`);
    assert.equal(res.status, 200, res.text);
    const got = JSON.parse(res.text).items;
    assert.equal(got.length, 1, name);
    assert.equal(text(got[0].raw), text(ses), `${name}: /api/events/{id} gives the original back`);
    const type = ses.notificationType ?? ses.eventType;
    if (type === 'Bounce' || type === 'Complaint') {
      const item = items.get(`${ses.mail.messageId}|${ts}`);
      assert.ok(item, `${name}: replicated`);
      assert.deepEqual(item, expectedItem(ses, ts), `${name}: the DynamoDB item`);
    }
  }
  await srv.stop();
  const rows = await jsonl(db);
  for (const { name, ses } of sent) {
    const row = rows.find((x) => x.messageId === ses.mail.messageId);
    assert.ok(row, name);
    assert.equal(text(row.raw), text(ses), `${name}: jsonl gives the original back`);
  }
});
