// compression.test.mjs - the original JSON compressed with a zstd dictionary
// trained on the database's own events (schema version 10): every original
// comes back value for value through `seslog query --format jsonl` and
// `/api/events/{messageId}`, the server starts compressing once it has
// learned a dictionary, `seslog vacuum` recompresses old rows, and a database
// of the previous schema (version 9, raw as plain text) is read, migrated
// and recompressed with nothing lost.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import {
  runSeslog, tempDir, startServer, signEnvelope, post, get, sqlite, countEvents, uniqueBounce,
  assertStatus, sesDocuments, ROOT, domainSql,
} from './lib.mjs';
import { writeEvents } from './query-data.mjs';

const T = { timeout: 120000 };

/** Canonical text of a JSON value (key order kept, as seslog keeps it). */
const canon = (v) => JSON.stringify(typeof v === 'string' ? JSON.parse(v) : v);

/** Every SES document among the fixtures (lib.mjs). */
const fixtureDocs = () => sesDocuments().map((d) => d.doc);

async function jsonl(db) {
  const r = await runSeslog(['query', '--db', db, '--format', 'jsonl', '--order', 'asc', '--limit', '100000']);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.split('\n').filter((l) => l).map((l) => JSON.parse(l));
}

/** The multiset of raw values of the rows, as sorted canonical texts. */
const rawSet = (rows) => rows.map((r) => canon(r.raw)).sort();

test('vacuum recompresses every event; jsonl and /api/events/{id} give back each original value for value', T, async (t) => {
  const dir = tempDir('seslog-zraw-');
  const db = path.join(dir, 'seslog.db');
  const file = path.join(dir, 'events.jsonl');
  const data = writeEvents(file);
  const fixtures = fixtureDocs();
  const fixFile = path.join(dir, 'fixtures.jsonl');
  fs.writeFileSync(fixFile, fixtures.map((d) => JSON.stringify(d)).join('\n') + '\n');
  let r = await runSeslog(['import', '--db', db, file, fixFile]);
  assert.equal(r.code, 0, r.stderr);
  const n = await countEvents(db);
  const want = [...data.events.map((e) => canon(e.ses)), ...fixtures.map(canon)].sort();
  // a fixture repeated among the documents is stored once: compare sets
  const wantSet = [...new Set(want)].sort();
  assert.equal(n, wantSet.length, 'one row per distinct document');
  const before = await jsonl(db);
  assert.deepEqual(rawSet(before), wantSet);

  r = await runSeslog(['vacuum', '--db', db]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /recompressed \d+ events with dictionary \d+ \(learned from \d+ events\)/);
  const dicts = await sqlite(db, 'SELECT id, samples, length(dict) AS len FROM raw_dicts ORDER BY id');
  assert.ok(dicts.length >= 1, 'a dictionary is stored');
  const newest = dicts[dicts.length - 1].id;
  const kinds = await sqlite(db, 'SELECT rawDict, typeof(raw) AS t, count(*) AS n, sum(length(CAST(raw AS BLOB))) AS bytes ' +
    'FROM SesEventMessages GROUP BY 1, 2');
  // every row is now a zstd frame of the newest dictionary, and smaller
  assert.deepEqual(kinds.map((k) => [k.rawDict, k.t, k.n]), [[newest, 'blob', n]]);
  const plainBytes = before.reduce((s, e) => s + Buffer.byteLength(JSON.stringify(e.raw)), 0);
  assert.ok(kinds[0].bytes * 3 < plainBytes, `compressed ${kinds[0].bytes} bytes vs ${plainBytes} plain`);

  const after = await jsonl(db);
  assert.deepEqual(rawSet(after), wantSet, 'jsonl gives back every original');
  // the other columns are untouched
  const strip = (rows) => rows.map(({ raw, ...rest }) => rest);
  assert.deepEqual(strip(after), strip(before));

  // the API, from a server reading the compressed rows
  const srv = await startServer({ t, db, dir });
  const byMid = new Map();
  for (const e of after) byMid.set(e.messageId, [...(byMid.get(e.messageId) ?? []), canon(e.raw)]);
  for (const doc of fixtures) {
    const mid = doc.mail.messageId;
    const res = await get(srv.url, `/api/events/${encodeURIComponent(mid)}?limit=1000`);
    assert.equal(res.status, 200, res.text);
    const got = JSON.parse(res.text).items.map((i) => canon(i.raw)).sort();
    assert.deepEqual(got, [...new Set(byMid.get(mid))].sort(), `messageId ${mid}`);
    assert.ok(got.includes(canon(doc)), `the fixture of ${mid} comes back whole`);
  }
  await srv.stop();
});

test('the server compresses new rows once it has learned a dictionary from its own events', T, async (t) => {
  const srv = await startServer({ t });
  const sent = [];
  const postOne = async () => {
    const ses = uniqueBounce(crypto.randomUUID());
    sent.push(ses);
    assertStatus(await post(srv.url, '/sns', signEnvelope({ message: ses })), 'stored');
  };
  for (let i = 0; i < 300; i++) await postOne();
  // the first dictionary is trained after 256 events, beside the writer
  const deadline = Date.now() + 30000;
  while ((await sqlite(srv.db, 'SELECT count(*) AS n FROM raw_dicts'))[0].n === 0) {
    assert.ok(Date.now() < deadline, 'no dictionary trained within 30 s');
    await new Promise((res) => setTimeout(res, 100));
  }
  const mark = (await sqlite(srv.db, 'SELECT max(id) AS m FROM SesEventMessages'))[0].m;
  for (let i = 0; i < 20; i++) await postOne();
  const late = await sqlite(srv.db, `SELECT rawDict, typeof(raw) AS t FROM SesEventMessages WHERE id > ${mark}`);
  assert.equal(late.length, 20);
  for (const row of late) assert.deepEqual([row.rawDict, row.t], [1, 'blob'], 'rows after the dictionary are compressed');
  const plain = await sqlite(srv.db, `SELECT count(*) AS n FROM SesEventMessages WHERE id <= ${mark} AND rawDict = 0 AND typeof(raw) = 'text'`);
  assert.ok(plain[0].n >= 256, 'rows before it stay as they were');
  // every event, plain or compressed, comes back whole
  for (const ses of [...sent.slice(0, 3), ...sent.slice(-5)]) {
    const res = await get(srv.url, `/api/events/${encodeURIComponent(ses.mail.messageId)}`);
    assert.equal(res.status, 200, res.text);
    const items = JSON.parse(res.text).items;
    assert.equal(items.length, 1);
    assert.deepEqual(items[0].raw, ses);
  }
  await srv.stop();
});

/** The schema as it was before version 10: every section below it. */
function schemaBefore(version) {
  const text = fs.readFileSync(path.join(ROOT, 'schema', 'seslog.sql'), 'utf8');
  const cut = text.indexOf(`-- version ${version}\n`);
  assert.ok(cut > 0, `schema has a version ${version} section`);
  return text.slice(0, cut);
}

/** The text of the schema's section of version, up to the next section. */
function schemaSection(version) {
  const text = fs.readFileSync(path.join(ROOT, 'schema', 'seslog.sql'), 'utf8');
  const at = text.indexOf(`-- version ${version}\n`);
  assert.ok(at > 0, `schema has a version ${version} section`);
  const next = text.indexOf('-- version ', at + 1);
  return text.slice(at, next < 0 ? text.length : next);
}

/** The newest schema version seslog knows. */
function latestVersion() {
  const text = fs.readFileSync(path.join(ROOT, 'schema', 'seslog.sql'), 'utf8');
  return Math.max(...[...text.matchAll(/^-- version (\d+)$/gm)].map((m) => Number(m[1])));
}

test('a database of schema version 9 is read, migrated and recompressed with nothing lost', T, async (t) => {
  await oldDatabase(t, 9, schemaBefore(10));
});

// main's seslog before compression merged went from 9 to 11 without 10
test('a database of schema version 11 without version 10 gets it: migrated and recompressed with nothing lost', T, async (t) => {
  await oldDatabase(t, 11, schemaBefore(10) + schemaSection(11));
});

/** Rewrites every row of db with its original JSON as plain text (raw
 * read back through seslog, rawDict 0), as a seslog before version 10
 * stored it. query's asc order is (timeStamp, id). */
async function plainRows(dir, db) {
  const rows = await jsonl(db);
  const ids = await sqlite(db, 'SELECT id FROM SesEventMessages ORDER BY timeStamp, id');
  assert.equal(ids.length, rows.length);
  const q = (v) => `'${v.replace(/'/g, "''")}'`;
  const sql = ['BEGIN;', 'DELETE FROM raw_dicts;'];
  rows.forEach((row, i) => sql.push(`UPDATE SesEventMessages SET raw = ${q(JSON.stringify(row.raw))}, rawDict = 0 WHERE id = ${ids[i].id};`));
  sql.push('COMMIT;');
  const file = path.join(dir, 'plain.sql');
  fs.writeFileSync(file, sql.join('\n') + '\n');
  await sqlite(db, `.read ${file}`);
}

/** A database at version from made with schemaSql, rows as plain text:
 * read, then migrated by vacuum, recompressed, written to. */
async function oldDatabase(t, from, schemaSql) {
  const dir = tempDir('seslog-zmig-');
  // the events with every column as seslog writes them, raw as plain text
  // (import compresses from its first batch on: each row's raw is put back
  // as the original's text, as an older seslog stored it)
  const scratch = path.join(dir, 'scratch.db');
  const file = path.join(dir, 'events.jsonl');
  const data = writeEvents(file);
  let r = await runSeslog(['import', '--db', scratch, file]);
  assert.equal(r.code, 0, r.stderr);
  await plainRows(dir, scratch);
  assert.deepEqual(await sqlite(scratch, "SELECT count(*) AS n FROM SesEventMessages WHERE rawDict != 0 OR typeof(raw) != 'text'"), [{ n: 0 }]);
  // the old database: the schema of version 9, the same rows
  const db = path.join(dir, 'old.db');
  const cols = 'id, messageId, timeStamp, notificationType, reportingMTA, destinationAddress, bouncedRecipients, ' +
    'complaintFeedbackType, feedbackId, bounceType, bounceSubType, complaintSubType, source, diagnostic, ' +
    'recipients, snsMessageId, topicArn, receivedAt, contentHash, raw';
  const sql = `${schemaSql}\nPRAGMA user_version = ${from};\nATTACH '${scratch}' AS s;\n` +
    `INSERT INTO SesEventMessages (${cols}) SELECT ${cols} FROM s.SesEventMessages;\n` +
    // recipients rows as an old seslog wrote them: the event's timeStamp and type as text
    `INSERT INTO recipients SELECT r.address, e.timeStamp, r.eventId, ${domainSql('r.')}, e.notificationType ` +
    'FROM s.recipients r JOIN s.SesEventMessages e ON e.id = r.eventId;\n' +
    'INSERT INTO rollup_minute SELECT * FROM s.rollup_minute;\n';
  const sqlFile = path.join(dir, 'old.sql');
  fs.writeFileSync(sqlFile, sql);
  await sqlite(db, `.read ${sqlFile}`);
  assert.deepEqual(await sqlite(db, 'PRAGMA user_version'), [{ user_version: from }]);
  assert.deepEqual(await sqlite(db, "SELECT count(*) AS n FROM sqlite_schema WHERE name = 'raw_dicts'"), [{ n: 0 }]);
  const oldCols = await sqlite(db, `SELECT ${cols.replace(', contentHash, raw', ', hex(contentHash) AS h')} FROM SesEventMessages ORDER BY id`);
  const want = data.events.map((e) => canon(e.ses)).sort();

  // read as it is, before anything migrated it
  assert.deepEqual(rawSet(await jsonl(db)), want);
  // vacuum migrates it forward and recompresses every old row
  r = await runSeslog(['vacuum', '--db', db]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /recompressed \d+ events/);
  assert.deepEqual(await sqlite(db, 'PRAGMA user_version'), [{ user_version: latestVersion() }]);
  // the feedback type index holds only events with a feedback type, as the GSI
  const [idx] = await sqlite(db, "SELECT sql FROM sqlite_schema WHERE name = 'complaintFeedbackType-timeStamp-Index'");
  assert.match(idx.sql, /\(complaintFeedbackType, timeStamp\) WHERE complaintFeedbackType IS NOT NULL/);
  const newCols = await sqlite(db, `SELECT ${cols.replace(', contentHash, raw', ', hex(contentHash) AS h')} FROM SesEventMessages ORDER BY id`);
  assert.deepEqual(newCols, oldCols, 'every column as it was');
  assert.deepEqual(await sqlite(db, "SELECT count(*) AS n FROM SesEventMessages WHERE rawDict = 0 OR typeof(raw) != 'blob'"), [{ n: 0 }]);
  assert.deepEqual(rawSet(await jsonl(db)), want, 'every original JSON as it was');
  // and the server takes more events on it, the old ones still duplicates
  const srv = await startServer({ t, db, dir });
  const ses = uniqueBounce();
  assertStatus(await post(srv.url, '/sns', signEnvelope({ message: ses })), 'stored');
  await srv.stop();
  r = await runSeslog(['import', '--db', db, file]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout + r.stderr, new RegExp(`imported 0, duplicates ${data.events.length}`));
  assert.equal(await countEvents(db), data.events.length + 1);
}

test('tag and configuration-set filters and group-by read compressed rows (query, the API, --read-only)', T, async (t) => {
  const dir = tempDir('seslog-zraw-tags-');
  const db = path.join(dir, 'seslog.db');
  const file = path.join(dir, 'tagged.jsonl');
  const sets = ['cs-a', 'cs-b'];
  const campaigns = ['x', 'y', 'z'];
  const docs = [];
  for (let i = 0; i < 90; i++) {
    const ses = uniqueBounce(`tagged-${i}`);
    ses.mail.tags = { 'ses:configuration-set': [sets[i % 2]], campaign: [campaigns[i % 3]] };
    docs.push(ses);
  }
  fs.writeFileSync(file, docs.map((d) => JSON.stringify(d)).join('\n') + '\n');
  let r = await runSeslog(['import', '--db', db, file]);
  assert.equal(r.code, 0, r.stderr);
  const tally = (key) => {
    const m = new Map();
    for (const d of docs) m.set(key(d), (m.get(key(d)) ?? 0) + 1);
    return [...m.entries()].sort();
  };
  const wantSets = tally((d) => d.mail.tags['ses:configuration-set'][0]);
  const wantCampaigns = tally((d) => d.mail.tags.campaign[0]);
  const wantX = docs.filter((d) => d.mail.tags.campaign[0] === 'x').length;
  const wantXA = docs.filter((d) => d.mail.tags.campaign[0] === 'x' && d.mail.tags['ses:configuration-set'][0] === 'cs-a').length;
  const pairs = (groups) => groups.map((g) => [Object.values(g.key)[0], g.count]).sort();

  async function viaCli(label) {
    const q = async (args) => {
      const res = await runSeslog(['query', '--db', db, ...args]);
      assert.equal(res.code, 0, res.stderr);
      return res.stdout;
    };
    assert.deepEqual(pairs(JSON.parse(await q(['--group-by', 'configurationSet', '--format', 'json'])).groups), wantSets, `${label}: group-by configurationSet`);
    assert.deepEqual(pairs(JSON.parse(await q(['--group-by', 'tag:campaign', '--format', 'json'])).groups), wantCampaigns, `${label}: group-by tag:campaign`);
    const lines = (await q(['--tag', 'campaign:x', '--format', 'jsonl', '--limit', '1000'])).split('\n').filter((l) => l);
    assert.equal(lines.length, wantX, `${label}: --tag campaign:x`);
    const both = (await q(['--tag', 'campaign:x', '--configuration-set', 'cs-a', '--format', 'jsonl', '--limit', '1000'])).split('\n').filter((l) => l);
    assert.equal(both.length, wantXA, `${label}: --tag with --configuration-set`);
  }
  async function viaApi(srv, label) {
    const counts = async (q) => {
      const res = await get(srv.url, `/api/events/counts?${q}`);
      assert.equal(res.status, 200, res.text);
      return pairs(res.json.groups);
    };
    assert.deepEqual(await counts('groupBy=configurationSet'), wantSets, `${label}: groupBy=configurationSet`);
    assert.deepEqual(await counts('groupBy=tag:campaign'), wantCampaigns, `${label}: groupBy=tag:campaign`);
    assert.deepEqual(await counts('groupBy=configurationSet&tag=campaign:x'), [['cs-a', wantXA], ['cs-b', wantX - wantXA]], `${label}: tag filter`);
    const res = await get(srv.url, '/api/events?tag=campaign:x&limit=1000');
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.items.length, wantX, `${label}: /api/events?tag=campaign:x`);
  }

  await viaCli('plain rows');
  r = await runSeslog(['vacuum', '--db', db]);
  assert.equal(r.code, 0, r.stderr);
  const kinds = await sqlite(db, "SELECT count(*) AS n FROM SesEventMessages WHERE rawDict > 0 AND typeof(raw) = 'blob'");
  assert.equal(kinds[0].n, docs.length, 'every row is compressed');
  await viaCli('compressed rows');
  const srv = await startServer({ t, db, dir });
  await viaApi(srv, 'server');
  await srv.stop();
  // a cleanly closed archive is opened immutable by --read-only
  const ro = await startServer({ t, db, dir, args: ['--read-only'] });
  await viaApi(ro, 'read-only');
  await ro.stop();
});
