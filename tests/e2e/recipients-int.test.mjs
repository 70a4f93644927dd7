// recipients-int.test.mjs - the recipients table holds the event's time as
// an integer, ms since the epoch, and its type as a code (schema version
// 23), in its rows and in "recipients-domain". A database of the version before migrates with
// every recipients row kept (a time edited by hand into another form keeps
// its text) and gives the same answers: /api/recipients/{address},
// /api/events?domain=&type=, `seslog query --domain`/`--address`, the
// grouped counts, the transient-bounce rule across the upgrade, and the
// rollups' delete triggers. Pages across many events of one timeStamp
// neither skip nor repeat, in both orders.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {
  ROOT, startServer, runSeslog, sqlite, get, post, signEnvelope, assertStatus, tempDir, q,
  domainSql, RECIPIENTS_BEFORE_23_SQL, SUPPRESSION_BEFORE_24_SQL,
} from './lib.mjs';

const T = { timeout: 180000 };
const DAY = 86400000;
const BASE = Date.parse('2026-05-04T10:00:00.000Z');
const iso = (ms) => new Date(ms).toISOString();
const enc = encodeURIComponent;

/** A bare SES notification: type Delivery, Bounce (Transient or Permanent) or Complaint. */
function ses(type, id, ms, recipients, bounceType = 'Transient') {
  const ts = iso(ms);
  const mail = { timestamp: ts, source: 'shop@example.com', messageId: id, destination: recipients };
  if (type === 'Delivery') {
    return { notificationType: 'Delivery', mail,
      delivery: { timestamp: ts, recipients, smtpResponse: '250 ok', reportingMTA: 'a.example' } };
  }
  if (type === 'Bounce') {
    return { notificationType: 'Bounce', mail,
      bounce: { bounceType, bounceSubType: bounceType === 'Transient' ? 'MailboxFull' : 'General',
        timestamp: ts, feedbackId: `fb-${id}`,
        bouncedRecipients: recipients.map((emailAddress) => ({ emailAddress, diagnosticCode: 'smtp; 452 full' })) } };
  }
  return { notificationType: 'Complaint', mail,
    complaint: { timestamp: ts, feedbackId: `fb-${id}`, complaintFeedbackType: 'abuse',
      complainedRecipients: recipients.map((emailAddress) => ({ emailAddress })) } };
}

/** The events: 40 of one timeStamp at one domain (two recipients there
 * each), times before and after the epoch, soft bounces for the rule. */
function events() {
  const out = [];
  for (let i = 0; i < 40; i++) {
    const type = i % 5 === 4 ? 'Bounce' : 'Delivery';
    out.push(ses(type, `same-${i}`, BASE, [`same@eq.example`, `p${i}@eq.example`, 'x@other.example']));
  }
  for (let i = 0; i < 25; i++) {
    out.push(ses(i % 3 ? 'Delivery' : 'Complaint', `spread-${i}`, BASE - i * 3600e3 + i, [`same@eq.example`, `s${i % 4}@Eq.Example`]));
  }
  out.push(ses('Delivery', 'before-epoch', -1, ['old@eq.example']));
  out.push(ses('Delivery', 'at-epoch', 0, ['old@eq.example']));
  out.push(ses('Delivery', 'year-0', Date.parse('0000-01-01T00:00:00.000Z'), ['old@eq.example']));
  out.push(ses('Bounce', 'soft-1', BASE - 2 * DAY, ['soft@eq.example']));
  out.push(ses('Bounce', 'soft-2', BASE - DAY, ['soft@eq.example', 'once@eq.example']));
  out.push(ses('Bounce', 'soft-old', BASE - 9 * DAY, ['late@eq.example']));
  out.push(ses('Bounce', 'soft-old-2', BASE - 8 * DAY, ['late@eq.example']));
  out.push(ses('Delivery', 'edited', BASE + 5, ['edited@hand.example']));
  return out;
}

/** Every page of path (limit 7 a page) until nextCursor is null: the items' [messageId, timeStamp]. */
async function pages(url, p, key = 'items') {
  const seen = [];
  let cursor = null;
  for (let n = 0; n < 100; n++) {
    const res = await get(url, `${p}${p.includes('?') ? '&' : '?'}limit=7${cursor ? `&cursor=${enc(cursor)}` : ''}`);
    assert.equal(res.status, 200, res.text);
    const body = JSON.parse(res.text);
    seen.push(...body[key].map((e) => [e.messageId, e.timeStamp]));
    cursor = body.nextCursor;
    if (!cursor) return seen;
  }
  throw new Error(`${p}: more than 100 pages`);
}

/** What the API and the CLI answer on db, for the addresses and domains of events(). */
async function answers(t, db) {
  const srv = await startServer({ t, db });
  const out = {};
  for (const order of ['desc', 'asc']) {
    for (const a of ['same@eq.example', 'soft@eq.example', 'old@eq.example', 's1@eq.example']) {
      out[`rcpt ${a} ${order}`] = await pages(srv.url, `/api/recipients/${enc(a)}?order=${order}`, 'events');
    }
    for (const f of ['domain=eq.example', 'domain=eq.example&type=Delivery', 'domain=eq.example&type=Bounce',
      'domain=eq.example&type=Bounce&type=Complaint', 'address=same@eq.example&type=Complaint',
      `domain=eq.example&since=${iso(BASE - 5 * 3600e3)}&until=${iso(BASE)}`,
      'messageId=same-3&domain=eq.example', 'messageId=same-3&address=p3@eq.example']) {
      out[`events ${f} ${order}`] = await pages(srv.url, `/api/events?${f}&order=${order}`);
    }
  }
  for (const g of ['domain', 'day,domain', 'hour', 'type']) {
    const res = await get(srv.url, `/api/events/counts?groupBy=${g}&domain=eq.example`);
    assert.equal(res.status, 200, res.text);
    out[`counts ${g}`] = JSON.parse(res.text);
  }
  await srv.stop();
  for (const args of [['--domain', 'eq.example'], ['--domain', 'eq.example', '--type', 'Bounce'],
    ['--address', 'same@eq.example', '--order', 'asc'], ['--domain', 'eq.example', '--group-by', 'day,domain']]) {
    const r = await runSeslog(['query', '--db', db, '--format', 'jsonl', ...args]);
    assert.equal(r.code, 0, r.stderr);
    out[`cli ${args.join(' ')}`] = r.stdout;
  }
  return out;
}

/** The newest "-- version N" of the schema file, and the newest before 23. */
function versions() {
  const text = fs.readFileSync(path.join(ROOT, 'schema', 'seslog.sql'), 'utf8');
  const all = [...text.matchAll(/^-- version (\d+)$/gm)].map((m) => Number(m[1]));
  return { newest: Math.max(...all), before: Math.max(...all.filter((v) => v < 23)) };
}

/** The recipients table as seslog wrote it before version 23 (the event's
 * timeStamp and notificationType text), with its index and the delete triggers of versions 11
 * and 17, made from db's rows (and suppression as before version 24);
 * user_version the one before 23. */
function downgradeSql(before) {
  return `${RECIPIENTS_BEFORE_23_SQL}${SUPPRESSION_BEFORE_24_SQL}
PRAGMA user_version = ${before};
`;
}

/** The code of each type in recipients (schema version 23): its place in CONTRACT section 4's list. */
const CODES = ['Bounce', 'Complaint', 'Delivery', 'Send', 'Reject', 'Open', 'Click', 'Rendering Failure',
  'DeliveryDelay', 'Subscription'];

/** The recipients rows with their events; domain: its SQL (a column before version 23). */
const rowsSql = (domain = domainSql('r.')) => `SELECT r.address, r.eventId, ${domain} AS domain, e.notificationType, ` + 'e.messageId, e.timeStamp AS ets, ' +
  'r.timeStamp AS rts, typeof(r.timeStamp) AS kind, r.notificationType AS rtype FROM recipients r JOIN SesEventMessages e ON e.id = r.eventId ' +
  'ORDER BY r.address, r.eventId';

test('a database of the version before keeps every recipients row and gives the same answers', T, async (t) => {
  const dir = tempDir('seslog-rcptint-');
  const file = path.join(dir, 'events.jsonl');
  const evs = events();
  fs.writeFileSync(file, evs.map((e) => JSON.stringify(e)).join('\n') + '\n');
  const fresh = path.join(dir, 'fresh.db');
  const r = await runSeslog(['import', '--db', fresh, file]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`imported ${evs.length}, duplicates 0, rejected 0`));
  const { newest, before } = versions();
  assert.ok(newest >= 23 && before < 23, `${newest} ${before}`);

  // written by this seslog: every time an integer, the event's own instant
  const freshRows = await sqlite(fresh, rowsSql());
  assert.ok(freshRows.length > 150, `${freshRows.length} rows`);
  for (const row of freshRows) {
    assert.equal(row.kind, 'integer', JSON.stringify(row));
    assert.equal(row.rts, Date.parse(row.ets), JSON.stringify(row));
    assert.equal(row.rtype, CODES.indexOf(row.notificationType), JSON.stringify(row));
  }
  assert.deepEqual(new Set(freshRows.map((x) => x.rtype)), new Set([0, 1, 2]));
  const want = await answers(t, fresh);
  for (const [k, v] of Object.entries(want)) assert.ok((v.groups ?? v).length > 0, `${k}: some answer`);
  assert.equal(want['rcpt same@eq.example desc'].length, 65);
  assert.equal(want['events messageId=same-3&address=p3@eq.example asc'].length, 1);

  // the same rows as the version before stored them
  const old = path.join(dir, 'old.db');
  await sqlite(fresh, `VACUUM INTO ${q(old)}`);
  const sqlFile = path.join(dir, 'downgrade.sql');
  fs.writeFileSync(sqlFile, downgradeSql(before));
  await sqlite(old, `.read ${sqlFile}`);
  assert.deepEqual(await sqlite(old, 'PRAGMA user_version'), [{ user_version: before }]);
  const oldRows = await sqlite(old, rowsSql('r.domain'));
  assert.equal(oldRows.length, freshRows.length);
  for (const row of oldRows) assert.deepEqual([row.kind, row.rtype], ['text', row.notificationType]);
  // one event whose time was edited by hand into another form, without
  // its milliseconds (its recipients row with it): kept as text, found by
  // its address
  await sqlite(old, "UPDATE SesEventMessages SET timeStamp = '2026-05-04T10:00:00Z' WHERE messageId = 'edited'; " +
    "UPDATE recipients SET timeStamp = '2026-05-04T10:00:00Z' WHERE address = 'edited@hand.example'");

  // upgraded by the first start
  const got = await answers(t, old);
  assert.deepEqual(await sqlite(old, 'PRAGMA user_version'), [{ user_version: newest }]);
  const migrated = await sqlite(old, rowsSql());
  assert.equal(migrated.length, oldRows.length, 'every recipients row kept');
  const key = (x) => [x.address, x.eventId, x.domain, x.notificationType, x.messageId].join(' ');
  assert.deepEqual(migrated.map(key), oldRows.map(key));
  for (const row of migrated) {
    if (row.messageId === 'edited') {
      assert.deepEqual([row.kind, row.rts], ['text', '2026-05-04T10:00:00Z']);
    } else {
      assert.equal(row.kind, 'integer', JSON.stringify(row));
      assert.equal(row.rts, Date.parse(row.ets), JSON.stringify(row));
    }
    assert.equal(row.rtype, CODES.indexOf(row.notificationType), JSON.stringify(row));
  }
  assert.deepEqual(got, want);
  const edited = await runSeslog(['query', '--db', old, '--format', 'jsonl', '--address', 'edited@hand.example']);
  assert.equal(edited.code, 0, edited.stderr);
  assert.deepEqual(edited.stdout.trim().split('\n').map((l) => JSON.parse(l).messageId), ['edited']);
  const schema = await sqlite(old, "SELECT name FROM sqlite_schema WHERE tbl_name = 'recipients' ORDER BY name");
  assert.deepEqual(schema.map((s) => s.name),
    ['recipients', 'recipients-domain', 'rollup_domain_day-delete', 'rollup_recipient-delete']);

  // the delete triggers take the day and hour of the integer: deleting
  // the rows in the sqlite3 shell takes each rollup back to nothing
  const rollups = 'SELECT (SELECT total(recipients) FROM rollup_domain_day) AS dd, ' +
    '(SELECT total(recipients) FROM rollup_recipient_day) AS rd, (SELECT total(recipients) FROM rollup_recipient_hour) AS rh';
  const [full] = await sqlite(old, rollups);
  assert.deepEqual(full, { dd: migrated.length, rd: migrated.length, rh: migrated.length });
  await sqlite(old, "DELETE FROM recipients WHERE address <> 'soft@eq.example'");
  assert.deepEqual((await sqlite(old, rollups))[0], { dd: 2, rd: 2, rh: 2 });
  assert.deepEqual(await sqlite(old, 'SELECT day, domain, recipients FROM rollup_recipient_day WHERE recipients <> 0 ORDER BY day'),
    [{ day: iso(BASE - 2 * DAY).slice(0, 10), domain: 'eq.example', recipients: 1 },
      { day: iso(BASE - DAY).slice(0, 10), domain: 'eq.example', recipients: 1 }]);
  assert.deepEqual(await sqlite(old, 'SELECT hour, recipients FROM rollup_recipient_hour WHERE recipients <> 0 ORDER BY hour'),
    [{ hour: iso(BASE - 2 * DAY).slice(0, 13), recipients: 1 }, { hour: iso(BASE - DAY).slice(0, 13), recipients: 1 }]);

  // the transient-bounce rule counts the rows the upgrade converted: a
  // third soft bounce within 7 days suppresses, a second does not, nor do
  // three over more than 7 days
  const srv = await startServer({ t, db: old });
  const deliver = async (id, ms, rcpt) => {
    const res = await post(srv.url, '/sns', signEnvelope({ message: ses('Bounce', id, ms, rcpt), timestamp: iso(ms) }));
    assertStatus(res, 'stored');
  };
  await deliver('soft-3', BASE, ['soft@eq.example', 'once@eq.example', 'late@eq.example']);
  const entry = async (a) => get(srv.url, `/api/suppression/${enc(a)}`);
  let res = await entry('soft@eq.example');
  assert.equal(res.status, 200, res.text);
  assert.equal(JSON.parse(res.text).history[0].actor, 'soft-bounce');
  assert.equal((await entry('once@eq.example')).status, 404);
  assert.equal((await entry('late@eq.example')).status, 404);
  await srv.stop();
});

test('pages across many events of one timeStamp neither skip nor repeat, by address and by domain, both orders', T, async (t) => {
  const dir = tempDir('seslog-rcptpage-');
  const file = path.join(dir, 'events.jsonl');
  const evs = events();
  fs.writeFileSync(file, evs.map((e) => JSON.stringify(e)).join('\n') + '\n');
  const db = path.join(dir, 'seslog.db');
  const r = await runSeslog(['import', '--db', db, file]);
  assert.equal(r.code, 0, r.stderr);
  const srv = await startServer({ t, db });
  // what each filter must give, from the events: newest first, ties by
  // insertion order (the import keeps the file's order)
  const order = new Map(evs.map((e, i) => [e.mail.messageId, i]));
  const expect = (pred, asc) => evs.filter(pred)
    .map((e) => [e.mail.messageId, iso(Date.parse(e.mail.timestamp))])
    .sort((a, b) => (Date.parse(a[1]) - Date.parse(b[1])) || (order.get(a[0]) - order.get(b[0])))
    [asc ? 'slice' : 'reverse']();
  const to = (e, a) => e.mail.destination.map((d) => d.toLowerCase()).includes(a);
  const at = (e, d) => e.mail.destination.some((x) => x.toLowerCase().endsWith(`@${d}`));
  for (const asc of [false, true]) {
    const o = asc ? 'asc' : 'desc';
    const byAddr = await pages(srv.url, `/api/recipients/same@eq.example?order=${o}`, 'events');
    assert.deepEqual(byAddr, expect((e) => to(e, 'same@eq.example'), asc));
    const byDomain = await pages(srv.url, `/api/events?domain=eq.example&order=${o}`);
    assert.deepEqual(byDomain, expect((e) => at(e, 'eq.example'), asc));
    const typed = await pages(srv.url, `/api/events?domain=eq.example&type=Delivery&order=${o}`);
    assert.deepEqual(typed, expect((e) => at(e, 'eq.example') && e.notificationType === 'Delivery', asc));
    assert.equal(new Set(byDomain.map((x) => x[0])).size, byDomain.length, 'no event twice');
  }
  await srv.stop();
});
