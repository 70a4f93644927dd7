// derived-columns.test.mjs - no column that repeats another column of its
// row (schema version 20): diagnostic is stored NULL when it is the first
// bouncedRecipients entry's diagnosticCode, recipients '' when it is what
// bouncedRecipients or destinationAddress make. Every reader gives the same
// values as a row stored whole: `seslog query` (json, jsonl, csv, tsv,
// table, --diagnostic, --group-by diagnostic and domain), /api/events,
// /api/events/{id}, /api/recipients/{address}, retention (the recipients rows
// and the diagnostic rollup go with the event); the sqlite3 shell gets them
// with the expressions the schema's comment gives. With the previous
// seslog (the binary named by SESLOG_OLD_BIN, when set) a database
// it wrote reads the same in the new one, and both write the same values.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { execFile } from 'node:child_process';
import {
  runSeslog, tempDir, startServer, get, sqlite, fixtureDir, BIN,
} from './lib.mjs';

const T = { timeout: 180000 };
const DAY = 86400000;

/** Every SES document among the fixtures: bare SES JSON and the Message of
 * each untampered SNS notification. */
function fixtureDocs() {
  const docs = [];
  const ses = fixtureDir('ses');
  for (const f of fs.readdirSync(ses).sort()) docs.push(JSON.parse(fs.readFileSync(path.join(ses, f), 'utf8')));
  const sns = fixtureDir('sns');
  for (const f of fs.readdirSync(sns).sort()) {
    if (f.includes('TAMPERED')) continue;
    const env = JSON.parse(fs.readFileSync(path.join(sns, f), 'utf8'));
    if (env.Type !== 'Notification') continue;
    let msg;
    try { msg = JSON.parse(env.Message); } catch { continue; }
    if (msg && (msg.notificationType || msg.eventType)) docs.push(msg);
  }
  return docs;
}

/** A bounce as the bench sends it, with n recipients (entries given). */
function bounce(id, entries, extra = {}) {
  const ts = new Date(Date.now() - DAY).toISOString();
  return {
    notificationType: 'Bounce',
    mail: {
      timestamp: ts, source: 'News <news@shop.example>', messageId: id,
      destination: entries.map((e) => (typeof e === 'object' && e && typeof e.emailAddress === 'string' ? e.emailAddress : 'x@y.example')),
      ...extra.mail,
    },
    bounce: {
      bounceType: 'Permanent', bounceSubType: 'General', timestamp: ts, feedbackId: `fb-${id}`,
      reportingMTA: 'dsn; a.example', bouncedRecipients: entries, ...extra.bounce,
    },
    ...extra.root,
  };
}

function rcpt(addr, diag, more = {}) {
  return { emailAddress: addr, action: 'failed', status: '5.1.1', ...(diag === undefined ? {} : { diagnosticCode: diag }), ...more };
}

function mailEvent(type, id, destination, body = {}) {
  const ts = new Date(Date.now() - DAY).toISOString();
  return { eventType: type, mail: { timestamp: ts, source: 'shop@example.com', messageId: id, destination }, ...body };
}

/** Documents beside the fixtures: the bench's bounces (two and three
 * recipients), and the cases whose values must be stored whole. */
function edgeDocs() {
  const ts = new Date(Date.now() - DAY).toISOString();
  return [
    bounce('two', [rcpt('a@gmail.example', 'smtp; 550 5.1.1 <a@gmail.example>: no such user'), rcpt('b@gmail.example', 'smtp; 550 5.1.1 b: no such user')]),
    bounce('three', [rcpt('c@x.example', 'smtp; 552 5.2.2 full'), rcpt('d@x.example', 'smtp; 550'), rcpt('e@x.example', 'smtp; 550')]),
    bounce('four', [rcpt('f@x.example', 'smtp; 550 f'), rcpt('g@x.example'), rcpt('h@x.example'), rcpt('i@x.example')]),
    bounce('later-diag', [rcpt('j@x.example'), rcpt('k@x.example', 'smtp; 550 later')]),
    bounce('number-first', [rcpt('l@x.example', 1), rcpt('m@x.example', 'second')]),
    bounce('number-diag', [rcpt('n@x.example', 550)]),
    bounce('no-recipients', []),
    bounce('odd-entries', ['o@x.example', rcpt('p@x.example', 'smtp; 550 p'), 7]),
    bounce('display-name', [rcpt('Pat <P@X.example>', 'smtp; 550 pat'), rcpt(' q@x.example ', 'smtp; 550 q')]),
    bounce('repeat', [rcpt('r@x.example', 'smtp; 550 r'), rcpt('r@x.example', 'smtp; 550 r')]),
    bounce('quote', [rcpt('"s"@x.example', 'smtp; 550 "quoted" <s> & \u2028 é')]),
    bounce('html', [rcpt('t<u>@x.example', 'smtp; 550 t')]),
    bounce('with-reject', [rcpt('v@x.example')], { root: { reject: { reason: 'Bad content' } } }),
    mailEvent('Send', 'send-two', ['a@x.example', 'B@Y.example'], { send: {} }),
    mailEvent('Send', 'send-comma', ['"Doe, John" <j@x.example>', 'k@x.example'], { send: {} }),
    mailEvent('Send', 'send-name', ['Jo <jo@x.example>'], { send: {} }),
    mailEvent('Send', 'send-repeat', ['a@x.example', 'a@x.example'], { send: {} }),
    mailEvent('Send', 'send-quote', ['a"b@x.example'], { send: {} }),
    mailEvent('Send', 'send-none', [], { send: {} }),
    mailEvent('Delivery', 'delivery-other', ['a@x.example', 'b@x.example'],
      { delivery: { timestamp: ts, recipients: ['b@x.example'], smtpResponse: '250 ok', reportingMTA: 'a.example' } }),
    mailEvent('Complaint', 'complaint-one', ['c@x.example'],
      { complaint: { timestamp: ts, feedbackId: 'fb-complaint-one', complainedRecipients: [{ emailAddress: 'c@x.example' }], complaintFeedbackType: 'abuse' } }),
    mailEvent('Reject', 'reject-one', ['r@x.example'], { reject: { reason: 'Bad content' } }),
    mailEvent('DeliveryDelay', 'delay-one', ['d@x.example'],
      { deliveryDelay: { timestamp: ts, delayType: 'TransientCommunicationFailure', delayedRecipients: [{ emailAddress: 'd@x.example', status: '4.4.1', diagnosticCode: 'smtp; 421 busy' }] } }),
  ];
}

function writeDocs(dir) {
  const file = path.join(dir, 'events.jsonl');
  const docs = [...fixtureDocs(), ...edgeDocs()];
  fs.writeFileSync(file, docs.map((d) => JSON.stringify(d)).join('\n') + '\n');
  return file;
}

function run(bin, args) {
  return new Promise((resolve) => {
    execFile(bin, args, { maxBuffer: 256 << 20, env: { ...process.env, COLUMNS: '200' } }, (err, stdout, stderr) => {
      resolve({ code: err ? (err.code ?? 1) : 0, stdout, stderr });
    });
  });
}

/** What the readers of `bin` print for db: every query format, a
 * diagnostic filter, and the groupings by diagnostic and domain. */
async function cliViews(bin, db) {
  const out = {};
  const q = ['query', '--db', db, '--order', 'asc'];
  for (const format of ['json', 'jsonl', 'csv', 'tsv', 'table']) {
    const r = await run(bin, [...q, '--format', format]);
    assert.equal(r.code, 0, r.stderr);
    out[format] = r.stdout;
  }
  for (const extra of [['--diagnostic', '5.1.1'], ['--diagnostic', 'later'], ['--diagnostic', 'busy'],
    ['--group-by', 'diagnostic'], ['--type', 'Bounce', '--group-by', 'diagnostic'],
    ['--group-by', 'domain'], ['--source', 'news@shop.example', '--group-by', 'domain'],
    ['--domain', 'x.example', '--format', 'jsonl'], ['--address', 'r@x.example', '--format', 'jsonl']]) {
    const r = await run(bin, [...q, '--format', 'jsonl', ...extra]);
    assert.equal(r.code, 0, r.stderr);
    out[extra.join(' ')] = r.stdout;
  }
  return out;
}

/** Each event's diagnostic and recipients as /api/events, /api/events/{id}
 * and /api/recipients/{address} give them, from a server on db. */
async function apiViews(t, db, readOnly = true) {
  const srv = await startServer({ t, db, args: readOnly ? ['--read-only'] : [] });
  const out = {};
  const list = await get(srv.url, '/api/events?limit=1000');
  assert.equal(list.status, 200, list.text);
  const events = JSON.parse(list.text).items;
  out.list = events.map((e) => ({ id: e.messageId, diagnostic: e.diagnostic, recipients: e.recipients }))
    .sort((a, b) => (a.id + JSON.stringify(a)).localeCompare(b.id + JSON.stringify(b)));
  for (const id of [...new Set(events.map((e) => e.messageId))].sort()) {
    const r = await get(srv.url, `/api/events/${encodeURIComponent(id)}`);
    assert.equal(r.status, 200, r.text);
    out[`id ${id}`] = JSON.parse(r.text);
  }
  for (const a of ['a@gmail.example', 'r@x.example', 'c@x.example', 'p@x.example', 'b@x.example']) {
    const r = await get(srv.url, `/api/recipients/${encodeURIComponent(a)}`);
    assert.equal(r.status, 200, r.text);
    out[`rcpt ${a}`] = JSON.parse(r.text);
  }
  const diag = await get(srv.url, '/api/events?diagnostic=no%20such%20user');
  out.diagFilter = JSON.parse(diag.text).items.map((e) => e.messageId).sort();
  const counts = await get(srv.url, '/api/events/counts?groupBy=diagnostic');
  out.counts = JSON.parse(counts.text);
  await srv.stop();
  return out;
}

async function importInto(bin, db, file) {
  const r = await run(bin, ['import', '--db', db, file]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout;
}

/** The stored forms: how many rows keep each column empty. */
async function emptied(db) {
  const rows = await sqlite(db, `SELECT
      sum(diagnostic IS NULL AND bouncedRecipients IS NOT NULL) AS diagNull,
      sum(recipients = '') AS rcptEmpty,
      sum(notificationType = 'Bounce' AND recipients = '') AS bounceRcptEmpty FROM SesEventMessages`);
  return rows[0];
}

const oldBin = process.env.SESLOG_OLD_BIN ?? null;

test('derived columns: stored empty, read the same by every reader as when stored whole', T, async (t) => {
  const dir = tempDir('seslog-cols-');
  const file = writeDocs(dir);
  const db = path.join(dir, 'new.db');
  await importInto(BIN, db, file);

  // the lever works: bounces keep no diagnostic nor recipients of their own
  const e = await emptied(db);
  assert.ok(e.diagNull >= 5, `bounces store diagnostic NULL: ${JSON.stringify(e)}`);
  assert.ok(e.bounceRcptEmpty >= 5, `bounces store recipients '': ${JSON.stringify(e)}`);
  assert.ok(e.rcptEmpty >= 15, `sends and others store recipients '': ${JSON.stringify(e)}`);
  // ... and keeps whole what the derivation would not give byte for byte
  const whole = await sqlite(db, `SELECT messageId, diagnostic, recipients FROM SesEventMessages
      WHERE messageId IN ('four', 'later-diag', 'number-first', 'odd-entries', 'display-name', 'repeat',
        'quote', 'html', 'with-reject', 'send-comma', 'send-name', 'send-repeat', 'send-quote',
        'send-none', 'delivery-other') ORDER BY messageId`);
  const byId = Object.fromEntries(whole.map((r) => [r.messageId, r]));
  for (const id of ['four', 'odd-entries', 'display-name', 'repeat', 'quote', 'html', 'send-comma',
    'send-name', 'send-repeat', 'send-quote', 'send-none', 'delivery-other']) {
    assert.notEqual(byId[id].recipients, '', `${id}: recipients stored whole`);
  }
  assert.equal(byId['later-diag'].diagnostic, 'smtp; 550 later');
  assert.equal(byId['number-first'].diagnostic, 'second');
  assert.equal(byId['with-reject'].diagnostic, 'Bad content');

  // the values every reader gives, from the rows as stored
  const cliNew = await cliViews(BIN, db);
  const apiNew = await apiViews(t, db);

  // the same database with every row stored whole, as seslog wrote them
  // before version 20: the readers' values put back into the columns
  const wholeDb = path.join(dir, 'whole.db');
  fs.copyFileSync(db, wholeDb);
  const lines = cliNew.jsonl.split('\n').filter((l) => l).map((l) => JSON.parse(l));
  const sets = lines.map((r) => `UPDATE SesEventMessages SET diagnostic = ${r.diagnostic === null ? 'NULL' : `'${String(r.diagnostic).replace(/'/g, "''")}'`}, ` +
    `recipients = '${JSON.stringify(r.recipients).replace(/'/g, "''")}' WHERE messageId = '${r.messageId.replace(/'/g, "''")}' AND timeStamp = '${r.timeStamp}' ` +
    `AND notificationType = '${r.notificationType}';`);
  await sqlite(wholeDb, `BEGIN; ${sets.join('\n')} COMMIT;`);
  const w = await emptied(wholeDb);
  assert.equal(w.rcptEmpty, 0, 'every row whole');
  assert.equal((await sqlite(wholeDb, 'SELECT count(*) AS n FROM SesEventMessages GROUP BY messageId, timeStamp, notificationType HAVING n > 1')).length, 0,
    'the UPDATE keys name one row each');
  assert.deepEqual(await cliViews(BIN, wholeDb), cliNew, 'seslog query: whole rows read the same');
  assert.deepEqual(await apiViews(t, wholeDb), apiNew, 'the API: whole rows read the same');

  // independent of seslog's SQL: the values the SES JSON says
  const val = Object.fromEntries(lines.map((r) => [r.messageId, r]));
  assert.equal(val.two.diagnostic, 'smtp; 550 5.1.1 <a@gmail.example>: no such user');
  assert.deepEqual(val.two.recipients, ['a@gmail.example', 'b@gmail.example']);
  assert.deepEqual(val.three.recipients, ['c@x.example', 'd@x.example', 'e@x.example']);
  assert.equal(val['number-diag'].diagnostic, null);
  assert.deepEqual(val['no-recipients'].recipients, []);
  assert.deepEqual(val['send-two'].recipients, ['a@x.example', 'B@Y.example']);
  assert.deepEqual(val['display-name'].recipients, ['P@X.example', 'q@x.example']);
  assert.deepEqual(val['delivery-other'].recipients, ['b@x.example']);
  assert.equal(val['delay-one'].diagnostic, 'smtp; 421 busy');

  // the sqlite3 shell: the schema comment's expressions give the values
  const shell = await sqlite(db, `SELECT messageId, timeStamp, notificationType,
      coalesce(diagnostic, CASE WHEN json_valid(bouncedRecipients) THEN
        CASE WHEN json_type(bouncedRecipients, '$[0].diagnosticCode') = 'text'
        THEN json_extract(bouncedRecipients, '$[0].diagnosticCode') END END) AS d,
      CASE WHEN recipients <> '' THEN recipients
        WHEN bouncedRecipients IS NULL THEN
          '["' || replace(destinationAddress, ',', '","') || '"]'
        WHEN json_valid(bouncedRecipients) THEN
          CASE json_array_length(bouncedRecipients) WHEN 0 THEN '[]'
          WHEN 1 THEN json_array(json_extract(bouncedRecipients, '$[0].emailAddress'))
          WHEN 2 THEN json_array(json_extract(bouncedRecipients, '$[0].emailAddress'),
            json_extract(bouncedRecipients, '$[1].emailAddress'))
          WHEN 3 THEN json_array(json_extract(bouncedRecipients, '$[0].emailAddress'),
            json_extract(bouncedRecipients, '$[1].emailAddress'),
            json_extract(bouncedRecipients, '$[2].emailAddress')) END
      END AS r FROM SesEventMessages`);
  for (const s of shell) {
    const want = lines.find((l) => l.messageId === s.messageId && l.timeStamp === s.timeStamp &&
      l.notificationType === s.notificationType);
    assert.equal(s.d, want.diagnostic, `${s.messageId}: diagnostic in the shell`);
    assert.deepEqual(JSON.parse(s.r), want.recipients, `${s.messageId}: recipients in the shell`);
  }

  if (!oldBin) {
    t.diagnostic('no previous seslog (SESLOG_OLD_BIN): the comparison with it did not run');
    return;
  }
  // the previous seslog writes the same values, and its database reads the
  // same in the new one
  const oldDb = path.join(dir, 'old.db');
  await importInto(oldBin, oldDb, file);
  const o = await emptied(oldDb);
  assert.equal(o.rcptEmpty, 0, 'the previous seslog stores every value whole');
  const cliOld = await cliViews(oldBin, oldDb);
  assert.deepEqual(cliNew, cliOld, 'the new seslog reads its rows as the previous one read its own');
  assert.deepEqual(await cliViews(BIN, oldDb), cliOld, 'the new seslog reads the previous one\'s rows the same');
  // the server migrates it (schema version 20) and reads its rows the same
  assert.deepEqual(await apiViews(t, oldDb, false), apiNew, 'the API: the previous one\'s rows read the same');
  assert.deepEqual(await cliViews(BIN, oldDb), cliOld, 'migrated, the previous one\'s rows read the same');
});

test('retention: an event whose recipients are stored empty takes its recipients rows and diagnostic rollup with it', T, async (t) => {
  const dir = tempDir('seslog-cols-ret-');
  const old = new Date(Date.now() - 90 * DAY).toISOString();
  const docs = [];
  for (let i = 0; i < 20; i++) {
    const b = bounce(`ret-b-${i}`, [rcpt(`b${i}@old.example`, 'smtp; 550 5.1.1 gone'), rcpt(`c${i}@old.example`, 'smtp; 550 5.1.1 gone')]);
    b.mail.timestamp = old;
    b.bounce.timestamp = old;
    docs.push(b);
    docs.push(mailEvent('Send', `ret-s-${i}`, [`s${i}@old.example`], { send: {} }));
    docs[docs.length - 1].mail.timestamp = old;
  }
  const file = path.join(dir, 'events.jsonl');
  fs.writeFileSync(file, docs.map((d) => JSON.stringify(d)).join('\n') + '\n');
  const db = path.join(dir, 'seslog.db');
  await importInto(BIN, db, file);
  const before = await sqlite(db, `SELECT (SELECT count(*) FROM recipients) AS rcpt,
      (SELECT sum(recipients = '') FROM SesEventMessages) AS empty,
      (SELECT sum(events) FROM rollup_diagnostic_hour WHERE diagnostic <> '') AS diag`);
  assert.deepEqual(before[0], { rcpt: 60, empty: 40, diag: 20 });
  const srv = await startServer({ t, db, args: ['--retention', 'Send=30d', '--retention-default', '60d',
    '--retention-interval', '200ms'] });
  let after;
  for (let i = 0; i < 100; i++) {
    after = (await sqlite(db, `SELECT (SELECT count(*) FROM SesEventMessages) AS events,
        (SELECT count(*) FROM recipients) AS rcpt,
        (SELECT coalesce(sum(events), 0) FROM rollup_diagnostic_hour WHERE diagnostic <> '') AS diag`))[0];
    if (after.events === 0) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  await srv.stop();
  assert.deepEqual(after, { events: 0, rcpt: 0, diag: 0 }, 'no recipients row nor diagnostic count left behind');
});
