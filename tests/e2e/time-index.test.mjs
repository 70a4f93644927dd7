// time-index.test.mjs - "timeStamp-Index" and
// "sourceAddress-timeStamp-Index" key the event's time as an integer, ms
// since the epoch (schema version 25), as recipients.timeStamp does: the
// listing of every event (no other filter) and a sender's page in
// (time, id) order off those indexes with since, until and the cursor, `seslog query`
// and the counts give the answers the text gives, and a database with the
// index on the text migrates to the same answers.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { startServer, get, sqlite, runSeslog, tempDir } from './lib.mjs';
import { buildEvents } from './query-data.mjs';

const T = { timeout: 120000 };
const TIME_SQL = `(CASE WHEN strftime('%Y-%m-%dT%H:%M:%fZ', timeStamp, '+0 seconds') = timeStamp
  THEN unixepoch(substr(timeStamp, 1, 19)) * 1000 + CAST(substr(timeStamp, 21, 3) AS INTEGER)
  ELSE timeStamp END)`;

/** Every page of /api/events with params, newest first or asc, limit 7. */
async function pages(srv, params) {
  const out = [];
  let cursor = null;
  for (let n = 0; n < 1000; n++) {
    const p = new URLSearchParams({ ...params, limit: '7' });
    if (cursor) p.set('cursor', cursor);
    const r = await get(srv.url, `/api/events?${p}`);
    assert.equal(r.status, 200, r.text);
    const body = JSON.parse(r.text);
    out.push(...body.items.map((e) => `${e.timeStamp} ${e.messageId} ${e.notificationType}`));
    if (body.nextCursor === null) return out;
    cursor = body.nextCursor;
  }
  throw new Error('paging did not end');
}

/** The answers of the readers on db, and the text oracle's. */
async function answers(t, db, t0) {
  const since = new Date(t0 + 30 * 60000).toISOString();
  const until = new Date(t0 + 150 * 60000).toISOString();
  const srv = await startServer({ t, db });
  const out = {
    all: await pages(srv, {}),
    asc: await pages(srv, { order: 'asc' }),
    range: await pages(srv, { since, until }),
    source: await pages(srv, { source: 'Deals@Shop.test' }),
    sourceRange: await pages(srv, { source: 'deals@shop.test', since, until, order: 'asc' }),
  };
  const counts = await get(srv.url, `/api/events/counts?${new URLSearchParams({ since, until, groupBy: 'hour' })}`);
  assert.equal(counts.status, 200, counts.text);
  out.counts = JSON.parse(counts.text);
  await srv.stop();
  const cli = await runSeslog(['query', '--db', db, '--since', since, '--until', until, '--format', 'jsonl']);
  assert.equal(cli.code, 0, cli.stderr);
  out.cli = cli.stdout.trim().split('\n').length;
  const key = "timeStamp || ' ' || messageId || ' ' || notificationType AS k";
  const oracle = {
    all: (await sqlite(db, `SELECT ${key} FROM SesEventMessages ORDER BY timeStamp DESC, id DESC`)).map((r) => r.k),
    asc: (await sqlite(db, `SELECT ${key} FROM SesEventMessages ORDER BY timeStamp, id`)).map((r) => r.k),
    range: (await sqlite(db, `SELECT ${key} FROM SesEventMessages WHERE timeStamp >= '${since}' AND timeStamp < '${until}'
      ORDER BY timeStamp DESC, id DESC`)).map((r) => r.k),
    source: (await sqlite(db, `SELECT ${key} FROM SesEventMessages WHERE source LIKE '%<deals@shop.test>'
      ORDER BY timeStamp DESC, id DESC`)).map((r) => r.k),
    sourceRange: (await sqlite(db, `SELECT ${key} FROM SesEventMessages WHERE source LIKE '%<deals@shop.test>'
      AND timeStamp >= '${since}' AND timeStamp < '${until}' ORDER BY timeStamp, id`)).map((r) => r.k),
  };
  return { out, oracle };
}

test('timeStamp-Index holds the integer time; every listing reads it, the answers are the text\'s', T, async (t) => {
  const dir = tempDir('seslog-timeidx-');
  const { t0, lines } = buildEvents();
  const file = path.join(dir, 'events.jsonl');
  fs.writeFileSync(file, lines);
  const db = path.join(dir, 'seslog.db');
  const r = await runSeslog(['import', '--db', db, file]);
  assert.equal(r.code, 0, r.stderr);

  const cols = await sqlite(db, "SELECT cid, name FROM pragma_index_xinfo('timeStamp-Index') WHERE key");
  assert.deepEqual(cols, [{ cid: -2, name: null }], 'one expression, not the text column');
  assert.deepEqual(await sqlite(db, "SELECT cid FROM pragma_index_xinfo('sourceAddress-timeStamp-Index') WHERE key"),
    [{ cid: -2 }, { cid: -2 }], 'the sender and the time, both expressions');
  const ints = await sqlite(db, `SELECT count(*) AS n, sum(typeof(${TIME_SQL}) = 'integer') AS i FROM SesEventMessages`);
  assert.equal(ints[0].i, ints[0].n, 'every time seslog writes is an integer in the index');
  const detail = execFileSync('sqlite3', [db, `EXPLAIN QUERY PLAN SELECT id FROM SesEventMessages
    WHERE ${TIME_SQL} >= 0 ORDER BY ${TIME_SQL} DESC, id DESC LIMIT 5`], { encoding: 'utf8' });
  assert.match(detail, /timeStamp-Index/, detail);
  assert.doesNotMatch(detail, /SCAN|TEMP B-TREE/, detail);

  const { out, oracle } = await answers(t, db, t0);
  assert.ok(oracle.all.length > 300 && oracle.range.length > 50);
  assert.deepEqual(out.all, oracle.all, 'newest first, across pages');
  assert.deepEqual(out.asc, oracle.asc, 'oldest first');
  assert.deepEqual(out.range, oracle.range, 'since and until');
  assert.ok(oracle.source.length > 100 && oracle.sourceRange.length > 20);
  assert.deepEqual(out.source, oracle.source, 'a sender, newest first');
  assert.deepEqual(out.sourceRange, oracle.sourceRange, 'a sender, since and until, oldest first');
  assert.equal(out.cli, oracle.range.length, 'seslog query --since --until');
  const total = out.counts.groups ? out.counts.groups.reduce((s, g) => s + g.count, 0) : out.counts.total;
  assert.equal(total, oracle.range.length, `counts: ${JSON.stringify(out.counts).slice(0, 300)}`);

  // the index on the text, as every seslog before version 25 made it
  const old = path.join(tempDir('seslog-timeidx-old-'), 'seslog.db');
  fs.copyFileSync(db, old);
  const version = (await sqlite(old, 'PRAGMA user_version'))[0].user_version;
  assert.ok(version >= 25);
  await sqlite(old, `DROP INDEX "timeStamp-Index"; CREATE INDEX "timeStamp-Index" ON SesEventMessages (timeStamp);
    DROP INDEX "sourceAddress-timeStamp-Index";
    CREATE INDEX "sourceAddress-timeStamp-Index" ON SesEventMessages (
      lower(CASE WHEN instr(source, '<') > 0 AND instr(source, '>') > instr(source, '<') THEN
        substr(source, instr(source, '<') + 1, instr(source, '>') - instr(source, '<') - 1)
        ELSE trim(source) END), timeStamp);
    PRAGMA user_version = 24;`);
  assert.deepEqual(await sqlite(old, "SELECT cid FROM pragma_index_xinfo('timeStamp-Index') WHERE key"), [{ cid: 2 }]);
  const migrated = await answers(t, old, t0);
  assert.deepEqual(await sqlite(old, "SELECT cid FROM pragma_index_xinfo('timeStamp-Index') WHERE key"), [{ cid: -2 }]);
  assert.deepEqual(await sqlite(old, "SELECT cid FROM pragma_index_xinfo('sourceAddress-timeStamp-Index') WHERE key"),
    [{ cid: -2 }, { cid: -2 }]);
  assert.deepEqual(migrated.out, out, 'the same answers after migrating');
});
