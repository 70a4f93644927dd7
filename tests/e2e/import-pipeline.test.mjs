// import-pipeline.test.mjs - `seslog import` writes one batch while it reads
// the next (issue 14): over many batches every count still adds up, every
// report comes once and in the order of the input (rejections read while a
// batch is written after that batch's own refusals), and of two events that
// are one (a bounce's feedbackId) the first read is the one stored.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { runSeslog, tempDir, sqlite, countEvents, q } from './lib.mjs';
import { genEvent, genFile, pipelineItem, twinEvents, eventTime } from './import-gen.mjs';
import { mountTmpfs, unmount } from './reliability-lib.mjs';

const T = { timeout: 300000 };
const SAFE_ENV = { SESLOG_CONNECT_TO: 'sns.us-east-1.amazonaws.com:443:127.0.0.1:1' };

test('20,000 lines over many batches: exact counts, reports in input order, the first of two same bounces stored', T, async () => {
  const dir = tempDir('seslog-import-pipeline-');
  const db = path.join(dir, 'db', 'seslog.db');
  const tag = crypto.randomUUID();
  // a database with triggers that refuse some events, so refusals come from
  // the batch being written while later lines are read
  const seed = path.join(dir, 'seed.json');
  fs.writeFileSync(seed, JSON.stringify(genEvent(0, `seed-${tag}`)));
  assert.equal((await runSeslog(['import', '--db', db, seed], { env: SAFE_ENV })).code, 0);
  const refusedIds = [];
  for (let i = 1500; i < 20000; i += 2311) refusedIds.push(`p-${tag}-${String(i).padStart(9, '0')}`);
  await sqlite(db, `CREATE TRIGGER refuse_some BEFORE INSERT ON SesEventMessages
    WHEN NEW.messageId IN (${refusedIds.map(q).join(',')})
    BEGIN SELECT RAISE(ABORT, 'refused by a test trigger'); END;`);

  const lines = [];
  const expected = []; // [line, reason pattern], in input order
  let events = 0;
  let dups = 0;
  let firstBounce = null;
  let lastStored = null;
  for (let i = 0; lines.length < 20000; i++) {
    const n = lines.length + 1;
    if (n % 997 === 0) {
      lines.push(`{"notificationType": "Bounce", cut short ${i}`);
      expected.push([n, 'not valid JSON']);
      continue;
    }
    if (n % 1499 === 0) {
      lines.push(JSON.stringify({ hello: i }));
      expected.push([n, 'not an SNS envelope']);
      continue;
    }
    if (n % 1201 === 0 && lastStored) {
      lines.push(lastStored); // the same event again: a duplicate
      dups++;
      continue;
    }
    const ev = genEvent(i, `p-${tag}`);
    lines.push(JSON.stringify(ev));
    if (refusedIds.includes(ev.mail.messageId)) {
      expected.push([n, 'not stored: .*refused by a test trigger']);
      continue;
    }
    lastStored = lines.at(-1);
    events++;
  }
  // two bounces with one feedbackId, far apart (different batches): the first is kept
  const b1 = genEvent(4, `first-${tag}`);
  const b2 = genEvent(10, `second-${tag}`);
  assert.ok(b1.bounce && b2.bounce, 'genEvent 4 and 10 are bounces');
  b1.bounce.feedbackId = b2.bounce.feedbackId = `fb-shared-${tag}`;
  lines.splice(100, 0, JSON.stringify(b1));
  lines.push(JSON.stringify(b2));
  // the line numbers after the splice
  for (const e of expected) if (e[0] > 100) e[0]++;
  firstBounce = b1.mail.messageId;

  const file = path.join(dir, 'many.jsonl');
  fs.writeFileSync(file, `${lines.join('\n')}\n`);
  const r = await runSeslog(['import', '--db', db, file], { env: SAFE_ENV, timeout: 280e3 });
  assert.equal(r.code, 1, r.stderr);
  const out = r.stdout.trimEnd().split('\n');
  const m = /^imported (\d+), duplicates (\d+), rejected (\d+)$/.exec(out.at(-1));
  assert.ok(m, r.stdout);
  const [imported, duplicates, rejected] = m.slice(1).map(Number);
  assert.match(out.at(-2), new RegExp(`^read 1 file: ${lines.length} records$`));
  assert.equal(imported + duplicates + rejected, lines.length);
  assert.equal(rejected, expected.length, r.stderr);
  assert.equal(duplicates, dups + 1, r.stdout);
  assert.equal(imported, events + 1, r.stdout);

  // every report once, with its line and reason; the documents rejected when
  // read in input order, and the refusals in input order (each reported when
  // its batch was written, after the rejections read before that)
  const reports = r.stderr.split('\n').filter((l) => l.startsWith(`${file}:`));
  assert.equal(reports.length, expected.length, r.stderr);
  const esc = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const lineOf = (l) => Number(l.slice(file.length + 1).split(':')[0]);
  for (const refusals of [false, true]) {
    const want = expected.filter((e) => e[1].startsWith('not stored') === refusals);
    const got = reports.filter((l) => l.includes(': not stored: ') === refusals);
    assert.deepEqual(got.map(lineOf), want.map((e) => e[0]), r.stderr);
    got.forEach((l, k) => assert.match(l, new RegExp(`^${esc(file)}:${want[k][0]}: at byte \\d+: ${want[k][1]}`)));
  }
  assert.ok(refusedIds.length >= 7 && expected.length > 30, 'reports from many batches');

  assert.equal(await countEvents(db, `WHERE messageId LIKE ${q(`p-${tag}-%`)}`), events);
  assert.equal(await countEvents(db, `WHERE messageId = ${q(firstBounce)}`), 1);
  assert.equal(await countEvents(db, `WHERE messageId = ${q(b2.mail.messageId)}`), 0);
});

test('import --help names multi-line log messages and the 16 MiB document cap', T, async () => {
  const r = await runSeslog(['import', '--help']);
  assert.equal(r.code, 0, r.stderr);
  for (const w of ['several lines', 'pretty-printed JSON', 'console.log(event)', '"[Object]"', '16 MiB', '1 MiB'])
    assert.ok(r.stdout.includes(w), `--help lacks ${w}:\n${r.stdout}`);
});

test('a full disk part way (tmpfs): one stop line, every event read counted and reported or listed, exit 2', T, async (t) => {
  const dir = tempDir('seslog-import-pipeline-full-');
  const mnt = path.join(dir, 'fs');
  await mountTmpfs(mnt, 12 * 1024);
  t.after(() => unmount(mnt));
  const file = path.join(dir, 'events.jsonl');
  genFile(file, 30000, 'jsonl', false, `full-${crypto.randomUUID()}`);
  const r = await runSeslog(['import', '--db', path.join(mnt, 'seslog.db'), file], { env: SAFE_ENV, timeout: 280e3 });
  assert.equal(r.code, 2, r.stderr);
  const out = r.stdout.trimEnd().split('\n');
  const m = /^imported (\d+), duplicates (\d+), rejected (\d+)$/.exec(out.at(-1));
  assert.ok(m, r.stdout);
  const [imported, duplicates, rejected] = m.slice(1).map(Number);
  const read = Number(/^read 1 file: (\d+) records$/.exec(out.at(-2))?.[1]);
  assert.equal(imported + duplicates + rejected, read, r.stdout);
  assert.ok(imported > 0 && rejected > 0 && read < 30000, r.stdout);
  const stops = r.stderr.split('\n').filter((l) => l.includes('the database refused the write'));
  assert.equal(stops.length, 1, r.stderr);
  assert.match(stops[0], new RegExp(`stopping after .*events\\.jsonl:${read}, nothing after it was read`));
  // each rejected event is listed, or counted in the "more not listed" line
  const listed = r.stderr.split('\n').filter((l) => l.startsWith(`${file}:`) && !l.includes('more rejected documents')).length;
  const unlisted = Number(/(\d+) more rejected documents not listed/.exec(r.stderr)?.[1] ?? 0);
  assert.equal(listed + unlisted, rejected, r.stderr);
});

test('events whose text the reader dropped once compressed: a DynamoDB item and its SES JSON are still one event', T, async () => {
  // With a compression dictionary the reader keeps only an event's
  // compressed frame; the twin lookup, which reads the text, decodes it.
  const tag = crypto.randomUUID();
  const events = twinEvents(tag);
  const snsTs = (ev) => new Date(eventTime(ev) + 2500).toISOString(); // the SNS Timestamp, 2.5 s later
  const dir = tempDir('seslog-import-pipeline-');
  const items = path.join(dir, 'items.json');
  fs.writeFileSync(items, `${events.map((ev) => JSON.stringify(pipelineItem(ev, snsTs(ev)))).join('\n')}\n`);
  const bare = path.join(dir, 'bare.jsonl');
  fs.writeFileSync(bare, `${events.map((ev) => JSON.stringify(ev)).join('\n')}\n`);
  const seed = path.join(dir, 'seed.jsonl');
  genFile(seed, 600, 'jsonl', false, `seed-${tag}`);
  const n = events.length;
  const imp = async (file, db) => {
    const r = await runSeslog(['import', '--db', db, file], { env: SAFE_ENV });
    assert.equal(r.code, 0, r.stderr);
    return r.stdout.trimEnd().split('\n').pop();
  };
  for (const [first, second] of [[items, bare], [bare, items]]) {
    const db = path.join(tempDir('seslog-import-pipeline-'), 'db', 'seslog.db');
    assert.equal(await imp(seed, db), 'imported 600, duplicates 0, rejected 0');
    assert.ok((await sqlite(db, 'SELECT count(*) AS n FROM raw_dicts'))[0].n >= 1, 'no dictionary was trained');
    assert.equal(await imp(first, db), `imported ${n}, duplicates 0, rejected 0`);
    assert.equal(await imp(second, db), `imported 0, duplicates ${n}, rejected 0`);
    const rows = await sqlite(db, `SELECT count(*) AS n, sum(rawDict > 0) AS packed FROM SesEventMessages
      WHERE messageId LIKE ${q(`%-${tag}`)}`);
    assert.deepEqual(rows[0], { n, packed: n }, 'each stored once, compressed with the dictionary');
  }
});
