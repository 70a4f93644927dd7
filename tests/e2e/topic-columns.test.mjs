// topic-columns.test.mjs - the SNS envelope's values stored compactly
// (schema version 22): topicArn once per topic in the topics table, each
// event naming it by topicId; snsMessageId as its 16 bytes when it is a
// canonical lower-case UUID, else the text as before. Every reader gives
// back the posted strings: /api/events, /api/events/{id}, `seslog query`
// (jsonl, json, csv, tsv), the sqlite3 shell through the schema comment's
// expressions, and an import of the server's own export. A database in
// the form before version 22 (built here from a new one, or written by the
// binary SESLOG_OLD_BIN names) reads the same before and after migrating,
// and rows of both forms live side by side.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { execFile } from 'node:child_process';
import {
  startServer, post, get, sqlite, sesDocuments, signEnvelope, runSeslog, tempDir, uniqueBounce,
  sesType, BIN, DEFAULT_TOPIC, RECIPIENTS_BEFORE_23_SQL, SUPPRESSION_BEFORE_24_SQL,
} from './lib.mjs';

const T = { timeout: 180000 };
const TOPICS = [DEFAULT_TOPIC, 'arn:aws:sns:eu-west-1:210987654321:ses-bounces',
  'arn:aws:sns:us-west-2:123456789012:ses-events-second'];

/** MessageIds that are not the canonical lower-case UUID: stored as text. */
const ODD_IDS = [
  crypto.randomUUID().toUpperCase(),                 // upper case
  `${crypto.randomUUID()} `,                         // a trailing space
  crypto.randomUUID().replace(/-/g, ''),             // no dashes
  `{${crypto.randomUUID()}}`,                        // braces
  crypto.randomUUID().replace(/^(.{8})-/, '$1_'),    // an underscore for a dash
  crypto.randomUUID().slice(0, 35) + 'g',            // not hex
  'not-a-uuid',
];

/** The documents to post, each with the envelope's TopicArn and MessageId. */
function postings() {
  const out = sesDocuments().map(({ doc }, i) => ({
    doc, topicArn: TOPICS[i % TOPICS.length], messageId: crypto.randomUUID(),
  }));
  ODD_IDS.forEach((id, i) => out.push({ doc: uniqueBounce(`odd-${i}`), topicArn: TOPICS[i % 2], messageId: id }));
  return out;
}

async function postAll(srv, list) {
  for (const p of list) {
    const env = signEnvelope({ message: p.doc, topicArn: p.topicArn, messageId: p.messageId });
    const r = await post(srv.url, '/sns', JSON.stringify(env));
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.status, 'stored', `${p.messageId}: ${r.text}`);
  }
}

function run(bin, args) {
  return new Promise((resolve) => {
    execFile(bin, args, { maxBuffer: 256 << 20, env: { ...process.env, COLUMNS: '200' } }, (err, stdout, stderr) => {
      resolve({ code: err ? (err.code ?? 1) : 0, stdout, stderr });
    });
  });
}

/** Each event's (snsMessageId, topicArn) as `seslog query` prints them in
 * every format that carries them, keyed by the SES messageId and type. */
async function cliViews(bin, db) {
  const q = ['query', '--db', db, '--order', 'asc'];
  const out = {};
  const jsonl = await run(bin, [...q, '--format', 'jsonl']);
  assert.equal(jsonl.code, 0, jsonl.stderr);
  out.jsonl = jsonl.stdout.split('\n').filter((l) => l).map((l) => JSON.parse(l))
    .map((e) => [e.messageId, e.notificationType, e.snsMessageId, e.topicArn]);
  const json = await run(bin, [...q, '--format', 'json']);
  assert.equal(json.code, 0, json.stderr);
  out.json = JSON.parse(json.stdout).items.map((e) => [e.messageId, e.notificationType, e.snsMessageId, e.topicArn]);
  for (const [format, sep, eol] of [['csv', ',', '\r\n'], ['tsv', '\t', '\n']]) {
    const r = await run(bin, [...q, '--format', format]);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.split(eol).filter((l) => l);
    assert.ok(lines[0].endsWith(`snsMessageId${sep}topicArn`), lines[0]);
    // the last two cells: neither value of these events holds sep or a
    // quote (csv quotes a cell with a space in it)
    const unquote = (c) => (format === 'csv' && c.startsWith('"') ? c.slice(1, -1).replace(/""/g, '"') : c);
    out[format] = lines.slice(1).map((l) => l.split(sep).slice(-2).map(unquote));
  }
  return out;
}

/** Each event's (snsMessageId, topicArn) as /api/events and
 * /api/events/{id} give them, from a server on db. */
async function apiViews(t, db, args = ['--read-only']) {
  const srv = await startServer({ t, db, args });
  const list = await get(srv.url, '/api/events?limit=1000&order=asc');
  assert.equal(list.status, 200, list.text);
  const items = JSON.parse(list.text).items;
  const out = { list: items.map((e) => [e.messageId, e.notificationType, e.snsMessageId, e.topicArn]) };
  out.byId = {};
  for (const id of [...new Set(items.map((e) => e.messageId))].sort()) {
    const r = await get(srv.url, `/api/events/${encodeURIComponent(id)}`);
    assert.equal(r.status, 200, r.text);
    out.byId[id] = JSON.parse(r.text).items.map((e) => [e.notificationType, e.snsMessageId, e.topicArn])
      .sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
  }
  await srv.stop();
  return out;
}

/** The (messageId, type) -> [snsMessageId, topicArn] that was posted. */
function posted(list) {
  return new Map(list.map((p) => [`${p.doc.mail.messageId} ${sesType(p.doc)}`, [p.messageId, p.topicArn]]));
}

function assertPosted(rows, want, what) {
  assert.equal(rows.length, want.size, `${what}: every event`);
  for (const [mid, type, sns, topic] of rows) {
    assert.deepEqual([sns, topic], want.get(`${mid} ${type}`), `${what}: ${mid} ${type}`);
  }
}

/** The shell's values through the expressions the schema comment gives. */
const SHELL_SQL = `SELECT messageId, notificationType,
    CASE WHEN typeof(snsMessageId) = 'blob' THEN
      lower(substr(hex(snsMessageId), 1, 8) || '-' ||
        substr(hex(snsMessageId), 9, 4) || '-' ||
        substr(hex(snsMessageId), 13, 4) || '-' ||
        substr(hex(snsMessageId), 17, 4) || '-' ||
        substr(hex(snsMessageId), 21, 12))
      ELSE snsMessageId END AS sns,
    coalesce(topicArn, (SELECT arn FROM topics WHERE id = topicId)) AS topic
  FROM SesEventMessages ORDER BY id`;

/** Turns db into the form every seslog before version 22 wrote: the
 * values whole in their columns, no topicId, no topics, recipients and
 * suppression as before versions 23 and 24, user_version 21. */
async function toVersion21(db) {
  await sqlite(db, `BEGIN;
    UPDATE SesEventMessages SET topicArn = coalesce(topicArn, (SELECT arn FROM topics WHERE id = topicId)),
      snsMessageId = CASE WHEN typeof(snsMessageId) = 'blob' THEN
        lower(substr(hex(snsMessageId), 1, 8) || '-' || substr(hex(snsMessageId), 9, 4) || '-' ||
          substr(hex(snsMessageId), 13, 4) || '-' || substr(hex(snsMessageId), 17, 4) || '-' ||
          substr(hex(snsMessageId), 21, 12)) ELSE snsMessageId END;
    ALTER TABLE SesEventMessages DROP COLUMN topicId;
    DROP TABLE topics;
    ${RECIPIENTS_BEFORE_23_SQL}
    ${SUPPRESSION_BEFORE_24_SQL}
    PRAGMA user_version = 21;
    COMMIT;`);
}

test('topicArn and snsMessageId: stored compactly, every reader gives back the posted text', T, async (t) => {
  const list = postings();
  const want = posted(list);
  assert.equal(want.size, list.length, 'each posting is its own event');
  const srv = await startServer({ t });
  await postAll(srv, list);
  // the same notification again (an SNS retry) is still a duplicate
  const again = signEnvelope({ message: list[0].doc, topicArn: list[0].topicArn, messageId: list[0].messageId });
  const dup = await post(srv.url, '/sns', JSON.stringify(again));
  assert.equal(dup.json?.status, 'duplicate', dup.text);
  const api = await get(srv.url, '/api/events?limit=1000&order=asc');
  const items = JSON.parse(api.text).items;
  assertPosted(items.map((e) => [e.messageId, e.notificationType, e.snsMessageId, e.topicArn]), want, '/api/events');
  for (const p of list.slice(0, 5).concat(list.slice(-ODD_IDS.length))) {
    const r = await get(srv.url, `/api/events/${encodeURIComponent(p.doc.mail.messageId)}`);
    const e = JSON.parse(r.text).items.find((x) => x.notificationType === sesType(p.doc));
    assert.deepEqual([e.snsMessageId, e.topicArn], [p.messageId, p.topicArn], `/api/events/{id} of ${p.doc.mail.messageId}`);
  }
  // the topics an event names are listed by /api/subscriptions as before
  const subs = JSON.parse((await get(srv.url, '/api/subscriptions')).text).items.map((s) => s.topicArn).sort();
  assert.deepEqual(subs, [...TOPICS].sort());
  await srv.stop();

  // the stored forms: each ARN once, no event repeats it; the canonical ids 16 bytes
  const forms = (await sqlite(srv.db, `SELECT count(*) AS n, sum(topicArn IS NULL AND topicId IS NOT NULL) AS byId,
      sum(typeof(snsMessageId) = 'blob' AND length(snsMessageId) = 16) AS blobs,
      sum(typeof(snsMessageId) = 'text') AS texts,
      (SELECT count(*) FROM topics) AS topics FROM SesEventMessages`))[0];
  assert.deepEqual(forms, { n: list.length, byId: list.length, blobs: list.length - ODD_IDS.length,
    texts: ODD_IDS.length, topics: TOPICS.length });
  const oddStored = await sqlite(srv.db, `SELECT snsMessageId FROM SesEventMessages WHERE typeof(snsMessageId) = 'text' ORDER BY id`);
  assert.deepEqual(oddStored.map((r) => r.snsMessageId), ODD_IDS, 'any other text kept byte for byte');

  // seslog query, every format
  const cli = await cliViews(BIN, srv.db);
  assertPosted(cli.jsonl, want, 'query --format jsonl');
  assertPosted(cli.json, want, 'query --format json');
  assert.deepEqual(cli.csv, cli.jsonl.map((r) => r.slice(2)), 'query --format csv');
  assert.deepEqual(cli.tsv, cli.jsonl.map((r) => r.slice(2)), 'query --format tsv');

  // the sqlite3 shell, with the schema comment's expressions
  const shell = await sqlite(srv.db, SHELL_SQL);
  assertPosted(shell.map((r) => [r.messageId, r.notificationType, r.sns, r.topic]), want, 'the sqlite3 shell');

  // the server's own export imported into another database keeps them
  const dir = tempDir('seslog-topics-');
  const exported = path.join(dir, 'export.jsonl');
  fs.writeFileSync(exported, (await run(BIN, ['query', '--db', srv.db, '--format', 'jsonl'])).stdout);
  const db2 = path.join(dir, 'copy.db');
  const imp = await runSeslog(['import', '--db', db2, exported]);
  assert.equal(imp.code, 0, imp.stderr);
  assert.match(imp.stdout, new RegExp(`imported ${list.length}, duplicates 0, rejected 0`));
  assertPosted((await cliViews(BIN, db2)).jsonl, want, 'the export imported again');
  const again2 = await runSeslog(['import', '--db', db2, exported]);
  assert.match(again2.stdout, new RegExp(`imported 0, duplicates ${list.length}, rejected 0`), 'imported twice: duplicates');
});

test('a database in the form before version 22 reads the same before and after migrating', T, async (t) => {
  const list = postings();
  const want = posted(list);
  const srv = await startServer({ t });
  await postAll(srv, list);
  await srv.stop();
  const cliNew = await cliViews(BIN, srv.db);
  const apiNew = await apiViews(t, srv.db);

  const dir = tempDir('seslog-topics-old-');
  const old = path.join(dir, 'old.db');
  fs.copyFileSync(srv.db, old);
  await toVersion21(old);
  const cols = (await sqlite(old, 'PRAGMA table_info(SesEventMessages)')).map((c) => c.name);
  assert.ok(!cols.includes('topicId'), 'the old form has no topicId');
  assert.equal((await sqlite(old, `SELECT count(*) AS n FROM SesEventMessages WHERE typeof(snsMessageId) = 'blob' OR topicArn IS NULL`))[0].n, 0);

  // seslog query reads it as it is, without migrating it
  assert.deepEqual(await cliViews(BIN, old), cliNew, 'seslog query on the unmigrated database');
  assert.equal((await sqlite(old, 'PRAGMA user_version'))[0].user_version, 21, 'query left it as it was');

  // the server migrates it, and reads the old rows the same
  const apiOld = await apiViews(t, old, []);
  assert.deepEqual(apiOld, apiNew, 'the API on the migrated database');
  assert.deepEqual(await cliViews(BIN, old), cliNew, 'seslog query on the migrated database');
  assert.ok((await sqlite(old, 'PRAGMA user_version'))[0].user_version >= 22, 'migrated');

  // new events beside the old rows: compact, and all read back
  const more = TOPICS.map((topicArn, i) => ({ doc: uniqueBounce(`after-migration-${i}`), topicArn, messageId: crypto.randomUUID() }));
  more.push({ doc: uniqueBounce('after-migration-odd'), topicArn: 'arn:aws:sns:ap-south-1:111111111111:new-topic', messageId: 'Not-A-UUID' });
  const srv2 = await startServer({ t, db: old });
  await postAll(srv2, more);
  await srv2.stop();
  const both = new Map([...want, ...posted(more)]);
  assertPosted((await cliViews(BIN, old)).jsonl, both, 'old and new rows together');
  const forms = (await sqlite(old, `SELECT sum(topicArn IS NOT NULL AND topicId IS NULL) AS oldRows,
      sum(topicArn IS NULL AND topicId IS NOT NULL) AS newRows FROM SesEventMessages`))[0];
  assert.deepEqual(forms, { oldRows: list.length, newRows: more.length });
  const shell = await sqlite(old, SHELL_SQL);
  assertPosted(shell.map((r) => [r.messageId, r.notificationType, r.sns, r.topic]), both, 'the shell over both forms');

  const oldBin = process.env.SESLOG_OLD_BIN;
  if (!oldBin) {
    t.diagnostic('no previous seslog (SESLOG_OLD_BIN): its own database was not compared');
    return;
  }
  // a database the previous seslog wrote (its import of the same envelopes)
  const prevDb = path.join(dir, 'prev.db');
  const p = await new Promise((resolve) => {
    execFile(oldBin, ['import', '--db', prevDb, '-'], (err, stdout, stderr) => resolve({ err, stdout, stderr }))
      .stdin.end(list.map((x) => JSON.stringify(signEnvelope({ message: x.doc, topicArn: x.topicArn, messageId: x.messageId }))).join('\n') + '\n');
  });
  assert.equal(p.err, null, p.stderr);
  const prevCli = await cliViews(oldBin, prevDb);
  assertPosted(prevCli.jsonl, want, 'the previous seslog reads its own rows');
  assert.deepEqual((await cliViews(BIN, prevDb)).jsonl, prevCli.jsonl, 'the new seslog reads them the same, unmigrated');
  await apiViews(t, prevDb, []);
  assert.deepEqual((await cliViews(BIN, prevDb)).jsonl, prevCli.jsonl, 'and migrated');
});

test('a DynamoDB item is known as the twin of an event by its snsMessageId, in either stored form', T, async (t) => {
  const open = sesDocuments().find(({ name }) => name === 'ses-event-open-awsdocs.json').doc;
  const sns = crypto.randomUUID();
  const srv = await startServer({ t });
  await postAll(srv, [{ doc: open, topicArn: TOPICS[1], messageId: sns }]);
  await srv.stop();
  assert.equal((await sqlite(srv.db, `SELECT typeof(snsMessageId) AS k FROM SesEventMessages`))[0].k, 'blob');

  // the item the original Lambda (with seslog's own attributes) wrote of it:
  // an Open is matched by its SNS MessageId only (its timeStamp differs)
  const item = (id) => JSON.stringify({ Item: Object.fromEntries(Object.entries({
    messageId: open.mail.messageId, timeStamp: '2016-01-01T00:00:00.000Z', notificationType: 'Open',
    destinationAddress: open.mail.destination.join(','), snsMessageId: id, topicArn: TOPICS[1],
  }).map(([k, v]) => [k, { S: v }])) }) + '\n';
  const dir = tempDir('seslog-topics-twin-');
  const twinFile = path.join(dir, 'twin.jsonl');
  fs.writeFileSync(twinFile, item(sns));
  const otherFile = path.join(dir, 'other.jsonl');
  fs.writeFileSync(otherFile, item(crypto.randomUUID()));

  const old = path.join(dir, 'old.db');
  fs.copyFileSync(srv.db, old);
  await toVersion21(old);
  for (const [db, form] of [[srv.db, '16 bytes'], [old, 'text (before version 22)']]) {
    const r = await runSeslog(['import', '--db', db, twinFile]);
    assert.match(r.stdout, /imported 0, duplicates 1, rejected 0/, `${form}: ${r.stdout} ${r.stderr}`);
  }
  // another SNS MessageId: another notification, stored
  const r = await runSeslog(['import', '--db', srv.db, otherFile]);
  assert.match(r.stdout, /imported 1, duplicates 0, rejected 0/, r.stdout + r.stderr);
});
