// query-cli.test.mjs - `seslog query`: the filters as options, the four
// formats (table fitting the terminal, json, jsonl, csv), streaming past
// one page, bad options (one line, exit 2), reading while a server writes,
// and the jsonl -> `seslog import` round trip into a fresh database.

import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import {
  runSeslog, tempDir, startServer, post, signEnvelope, sqlite, sesFixture, BIN,
  domainSql,
} from './lib.mjs';
import { writeEvents, sortEvents, matchEvents, SOURCES } from './query-data.mjs';

const T = { timeout: 60000 };
let dir;
let db;
let data;

before(async () => {
  dir = tempDir('seslog-qcli-');
  db = path.join(dir, 'seslog.db');
  const file = path.join(dir, 'events.jsonl');
  data = writeEvents(file);
  const r = await runSeslog(['import', '--db', db, file]);
  assert.equal(r.code, 0, r.stderr);
});

async function query(args, opts = {}) {
  const r = await runSeslog(['query', '--db', opts.db ?? db, ...args], opts);
  return r;
}

async function jsonl(args, opts) {
  const r = await query(['--format', 'jsonl', ...args], opts);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.split('\n').filter((l) => l).map((l) => JSON.parse(l));
}

const keyOf = (item) => `${item.messageId}/${item.notificationType}`;

/** RFC 4180 records (CRLF between records, quotes doubled). */
function parseCsv(text) {
  const rows = [];
  let row = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { field += '"'; i++; } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') { row.push(field); field = ''; } else if (c === '\r' && text[i + 1] === '\n') {
      row.push(field); rows.push(row); row = []; field = ''; i++;
    } else field += c;
  }
  assert.equal(field, '', 'the last record ends with CRLF');
  return rows;
}

test('filters as options give what the model says, both orders', T, async () => {
  const cases = [
    [[], {}],
    [['--type', 'Bounce', '--domain', 'gmail.test'], { type: 'Bounce', domain: 'gmail.test' }],
    [['--address', 'USER3@corp.test'], { address: 'user3@corp.test' }],
    [['--bounce-type', 'permanent'], { bounceType: 'Permanent' }],
    [['--feedback-type', 'abuse'], { feedbackType: 'abuse' }],
    [['--source', SOURCES[1]], { source: SOURCES[1] }],
    [['--message-id', 'q-0020'], { messageId: 'q-0020' }],
    [['--since', data.events[100].timeStamp, '--until', data.events[200].timeStamp],
      { since: data.events[100].timeStamp, until: data.events[200].timeStamp }],
    [['--since', '1d', '--type', 'Open'], { since: '1d', type: 'Open' }],
    [['--since', '1m'], { since: '1m' }],
    // --type given several times: events of any of them, as type= in the API
    [['--type', 'Bounce', '--type', 'complaint'], { type: ['Bounce', 'Complaint'] }],
    [['--type', 'Open', '--type', 'Delivery', '--domain', 'corp.test'],
      { type: ['Open', 'Delivery'], domain: 'corp.test' }],
  ];
  for (const [args, q] of cases) {
    for (const order of ['desc', 'asc']) {
      const got = await jsonl([...args, '--order', order]);
      const want = sortEvents(matchEvents(data.events, q), order === 'asc');
      assert.deepEqual(got.map(keyOf), want.map((e) => e.key), `${args.join(' ')} ${order}`);
    }
  }
  const five = await jsonl(['--limit', '5', '--order', 'asc']);
  assert.deepEqual(five.map(keyOf), sortEvents(data.events, true).slice(0, 5).map((e) => e.key));
});

test('--format jsonl carries the original JSON as raw; json is {"items":[...]} without it', T, async () => {
  const lines = await jsonl([]);
  assert.equal(lines.length, data.events.length);
  const byKey = new Map(data.events.map((e) => [e.key, e]));
  for (const l of lines) assert.deepEqual(l.raw, byKey.get(keyOf(l)).ses);
  const r = await query(['--format', 'json', '--type', 'Complaint']);
  assert.equal(r.code, 0, r.stderr);
  const body = JSON.parse(r.stdout);
  assert.deepEqual(Object.keys(body), ['items']);
  const want = sortEvents(matchEvents(data.events, { type: 'Complaint' }), false);
  assert.deepEqual(body.items.map(keyOf), want.map((e) => e.key));
  assert.ok(body.items.every((i) => i.raw === undefined && Array.isArray(i.recipients)));
  const none = await query(['--format', 'json', '--since', '1m']);
  assert.deepEqual(JSON.parse(none.stdout), { items: [] });
});

test('--format csv: a header row and RFC 4180 quoting', T, async () => {
  const r = await query(['--format', 'csv', '--order', 'asc']);
  assert.equal(r.code, 0, r.stderr);
  const rows = parseCsv(r.stdout);
  const head = rows[0];
  assert.deepEqual(head.slice(0, 5), ['timeStamp', 'notificationType', 'messageId', 'recipients', 'source']);
  assert.equal(rows.length, data.events.length + 1);
  const want = sortEvents(data.events, true);
  const col = (name) => head.indexOf(name);
  for (let i = 0; i < want.length; i++) {
    const row = rows[i + 1];
    assert.equal(row.length, head.length);
    assert.equal(row[col('timeStamp')], want[i].timeStamp);
    assert.equal(row[col('notificationType')], want[i].notificationType);
    assert.equal(row[col('messageId')], want[i].messageId);
    assert.equal(row[col('recipients')], want[i].recipients.join(','));
    assert.equal(row[col('source')], want[i].source); // quotes and a comma survive
    assert.equal(row[col('bounceType')], want[i].bounceType ?? '');
  }
  const empty = await query(['--format', 'csv', '--since', '1m']);
  assert.equal(parseCsv(empty.stdout).length, 1, 'the header alone');
});

test('--format table: aligned columns that fit the terminal, long cells cut with …', T, async () => {
  for (const width of [60, 100, 200]) {
    const r = await query(['--type', 'Bounce'], { env: { COLUMNS: String(width) } });
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trimEnd().split('\n');
    if (width >= 100) assert.match(lines[0], /^TIME\s+TYPE\s+RECIPIENTS\s+SOURCE\s+DETAIL$/);
    else assert.match(lines[0], /^TIME\s+TYPE\s+RECI/);
    assert.equal(lines.length, matchEvents(data.events, { type: 'Bounce' }).length + 1);
    for (const l of lines) assert.ok([...l].length <= width, `${[...l].length} > ${width}: ${l}`);
    // every row's columns start where the header's do
    const starts = ['TYPE', 'RECI', 'SOURCE'].map((h) => lines[0].indexOf(h));
    for (const l of lines.slice(1)) {
      const chars = [...l];
      for (const s of starts) assert.equal(chars[s - 1], ' ', `column at ${s}: ${l}`);
    }
    if (width === 60) assert.ok(lines.some((l) => l.includes('…')));
    if (width === 200) assert.ok(lines.slice(1).some((l) => l.includes('Permanent/General: smtp; 550')));
  }
  const none = await query(['--since', '1m']);
  assert.equal(none.code, 0);
  assert.equal(none.stdout, '');
  assert.match(none.stderr, /no event/);
});

test('bad options and values: one line on stderr, exit 2', T, async () => {
  const cases = [
    ['--type', 'Bouncy'], ['--bounce-type', 'hard'], ['--limit', '0'], ['--limit', 'x'],
    ['--format', 'xml'], ['--since', 'yesterday'], ['--until', '2026-02-30T99:00:00Z'],
    ['--order', 'up'], ['--frobnicate'], ['extra-argument'], ['--type'],
    ['--since', '2026-03-02', '--until', '2026-03-01'],
    ['--since', '2026-11-31'], ['--until', '2026-02-29'], ['--since', '1764547200'],
    ['--type', 'Bounce', '--type', 'Bouncy'], ['--format', 'tsvx'],
  ];
  for (const args of cases) {
    const r = await query(args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.code} ${r.stderr}`);
    assert.equal(r.stdout, '');
    const lines = r.stderr.trimEnd().split('\n');
    assert.equal(lines.length, 1, `${args.join(' ')}: ${r.stderr}`);
    assert.match(lines[0], /^seslog query: /);
  }
  const missing = await query([], { db: path.join(dir, 'nope', 'none.db') });
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /no database/);
  assert.ok(!fs.existsSync(path.join(dir, 'nope')), 'query never creates a database');
  const help = await runSeslog(['query', '--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /--format/);
});

test('without --limit every match streams, past the internal page; a closed pipe is fine', T, async () => {
  const d = tempDir('seslog-qcli-big-');
  const bigDb = path.join(d, 'seslog.db');
  const lines = [];
  for (let i = 0; i < 2600; i++) {
    lines.push(JSON.stringify({
      eventType: 'Send',
      mail: { timestamp: new Date(Date.parse('2026-01-01T00:00:00Z') + Math.floor(i / 3) * 1000).toISOString(),
        source: 's@big.test', messageId: `big-${i}`, destination: [`u${i % 50}@big.test`] },
      send: {},
    }));
  }
  fs.writeFileSync(path.join(d, 'big.jsonl'), lines.join('\n'));
  assert.equal((await runSeslog(['import', '--db', bigDb, path.join(d, 'big.jsonl')])).code, 0);
  for (const order of ['desc', 'asc']) {
    const all = await jsonl(['--order', order], { db: bigDb });
    assert.equal(all.length, 2600);
    assert.equal(new Set(all.map((e) => e.messageId)).size, 2600);
  }
  assert.equal((await jsonl(['--limit', '1500'], { db: bigDb })).length, 1500);
  assert.equal((await jsonl(['--domain', 'big.test', '--limit', '1001'], { db: bigDb })).length, 1001);

  // a reader that stops early (`| head -1`): exit 0, nothing on stderr
  const child = spawn(BIN, ['query', '--db', bigDb, '--format', 'jsonl'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.on('data', (x) => { err += x; });
  await new Promise((resolve) => child.stdout.once('data', resolve));
  child.stdout.destroy();
  const code = await new Promise((resolve) => child.on('close', resolve));
  assert.equal(code, 0, err);
  assert.equal(err, '');
});

test('reads while a server writes to the same database', T, async (t) => {
  const srv = await startServer({ t, dir });
  let posting = true;
  let posted = 0;
  const poster = (async () => {
    while (posting) {
      const ts = new Date().toISOString();
      const ses = { eventType: 'Send', mail: { timestamp: ts, source: 'live@shop.test',
        messageId: `live-${posted}`, destination: ['live@gmail.test'] }, send: {} };
      const res = await post(srv.url, '/sns', signEnvelope({ message: ses, timestamp: ts }));
      assert.equal(res.status, 200, res.text);
      posted++;
    }
  })();
  let last = 0;
  for (let i = 0; i < 5; i++) {
    const rows = await jsonl([]);
    assert.ok(rows.length >= data.events.length && rows.length >= last);
    assert.equal(new Set(rows.map((r) => `${keyOf(r)}/${r.timeStamp}`)).size, rows.length);
    last = rows.length;
  }
  posting = false;
  await poster;
  await srv.stop();
  assert.ok(posted > 0);
  const after = await jsonl(['--source', 'live@shop.test']);
  assert.equal(after.length, posted);
  assert.ok(after.every((e) => e.snsMessageId && e.topicArn));
});

test('query --format jsonl | import into a fresh database: the same rows', T, async () => {
  // the database now also holds events that came through SNS (snsMessageId, topicArn)
  const d = tempDir('seslog-qcli-rt-');
  const exported = path.join(d, 'export.jsonl');
  const r = await query(['--format', 'jsonl']);
  assert.equal(r.code, 0, r.stderr);
  fs.writeFileSync(exported, r.stdout);
  const n = r.stdout.split('\n').filter((l) => l).length;
  const fresh = path.join(d, 'fresh.db');
  const imp = await runSeslog(['import', '--db', fresh, exported]);
  assert.equal(imp.code, 0, imp.stderr);
  assert.match(imp.stdout, new RegExp(`imported ${n}, duplicates 0, rejected 0`));
  const cols = 'messageId, timeStamp, notificationType, reportingMTA, destinationAddress, bouncedRecipients, ' +
    'complaintFeedbackType, feedbackId, bounceType, bounceSubType, complaintSubType, source, diagnostic, ' +
    'recipients, snsMessageId, topicArn, hex(contentHash) AS hash';
  const order = 'ORDER BY timeStamp, messageId, notificationType, hash';
  const a = await sqlite(db, `SELECT ${cols} FROM SesEventMessages ${order}`);
  const b = await sqlite(fresh, `SELECT ${cols} FROM SesEventMessages ${order}`);
  assert.equal(a.length, n);
  assert.deepEqual(b, a);
  // raw as stored differs (compressed with each database's own dictionary,
  // or plain before one was trained): the JSON it holds is the same
  const back = await query(['--format', 'jsonl'], { db: fresh });
  assert.equal(back.code, 0, back.stderr);
  const raws = (text) => text.split('\n').filter((l) => l).map((l) => JSON.parse(l))
    .map((e) => JSON.stringify([e.messageId, e.timeStamp, e.notificationType, e.raw])).sort();
  assert.deepEqual(raws(back.stdout), raws(r.stdout));
  const rq = `SELECT r.address, r.timeStamp, ${domainSql('r.')} AS domain, r.notificationType, e.messageId FROM recipients r ` +
    'JOIN SesEventMessages e ON e.id = r.eventId ORDER BY 1, 2, 4, 5';
  assert.deepEqual(await sqlite(fresh, rq), await sqlite(db, rq));
  const ro = 'SELECT * FROM rollup_minute ORDER BY minute';
  assert.deepEqual(await sqlite(fresh, ro), await sqlite(db, ro));
  // and loading it again changes nothing
  const again = await runSeslog(['import', '--db', fresh, exported]);
  assert.match(again.stdout, new RegExp(`imported 0, duplicates ${n}, rejected 0`));
});

test('--format tsv: one event a line, tabs, newlines and backslashes in values escaped', T, async () => {
  const tdir = tempDir('seslog-qtsv-');
  const tdb = path.join(tdir, 'seslog.db');
  const ses = sesFixture('ses-event-bounce-awsdocs');
  ses.mail.messageId = 'tsv-multiline';
  const diag = 'smtp; 550-5.1.1 The email account does not exist.\r\n550-5.1.1 Please try\tagain \\ later\n550 5.1.1 end';
  ses.bounce.bouncedRecipients[0].diagnosticCode = diag;
  const r0 = await runSeslog(['import', '--db', tdb, '-'], { input: `${JSON.stringify(ses)}\n` });
  assert.equal(r0.code, 0, r0.stderr);
  const r = await query(['--format', 'tsv'], { db: tdb });
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.split('\n');
  assert.equal(lines.pop(), '', 'ends with a newline');
  assert.equal(lines.length, 2, `a header and one line for the one event:\n${r.stdout}`);
  const head = lines[0].split('\t');
  const row = lines[1].split('\t');
  assert.equal(row.length, head.length);
  assert.equal(row[head.indexOf('messageId')], 'tsv-multiline');
  const unescape = (s) => s.replace(/\\([tnr\\])/g, (_, c) => ({ t: '\t', n: '\n', r: '\r', '\\': '\\' }[c]));
  assert.equal(unescape(row[head.indexOf('diagnostic')]), diag);
  assert.equal(row[head.indexOf('notificationType')], 'Bounce');
});

test('--group-by: counts as GET /api/events/counts gives them, checked against SQL, in every format', T, async () => {
  const sql = "SELECT substr(timeStamp, 1, 10) d, notificationType t, count(*) n FROM SesEventMessages WHERE notificationType IN ('Bounce', 'Complaint') GROUP BY 1, 2 ORDER BY 1, 2";
  const want = (await sqlite(db, sql)).map((r) => ({ key: { day: r.d, type: r.t }, count: r.n }));
  assert.ok(want.length > 1);
  const args = ['--group-by', 'day,type', '--type', 'Bounce', '--type', 'Complaint'];
  const lines = await jsonl(args);
  assert.deepEqual(lines, want);
  const json = await query([...args, '--format', 'json']);
  assert.deepEqual(JSON.parse(json.stdout), { groupBy: ['day', 'type'], groups: want, more: false });
  const csv = parseCsv((await query([...args, '--format', 'csv'])).stdout);
  assert.deepEqual(csv[0], ['day', 'type', 'count']);
  assert.deepEqual(csv.slice(1), want.map((g) => [g.key.day, g.key.type, String(g.count)]));
  const tsv = (await query([...args, '--format', 'tsv'])).stdout.trimEnd().split('\n').map((l) => l.split('\t'));
  assert.deepEqual(tsv.slice(1), want.map((g) => [g.key.day, g.key.type, String(g.count)]));
  const table = await query(args);
  assert.equal(table.code, 0, table.stderr);
  const rows = table.stdout.trimEnd().split('\n');
  assert.match(rows[0], /^DAY\s+TYPE\s+COUNT$/);
  assert.equal(rows.length, want.length + 1);
  // the largest domains of bounces, recipients counted
  const dom = await jsonl(['--group-by', 'domain', '--type', 'Bounce', '--limit', '2']);
  const wantDom = (await sqlite(db, `SELECT ${domainSql()} AS domain, count(*) n FROM recipients WHERE notificationType = 0 /* Bounce: its code, schema version 23 */ GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 2`))
    .map((r) => ({ key: { domain: r.domain }, count: r.n }));
  assert.deepEqual(dom, wantDom);
  const bad = await query(['--group-by', 'day,nope']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /^seslog query: --group-by "day,nope" has an unknown field "nope"/);
});
