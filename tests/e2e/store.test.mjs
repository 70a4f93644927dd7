// store.test.mjs - signed notifications wrapping the SES fixtures are stored
// as rows of SesEventMessages with the columns of CONTRACT.md section 4.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  startServer, signEnvelope, post, sqlite, countEvents, q, sesFixture, sesFixtureNames,
  sesType, isoMs, uniqueBounce, assertStatus,
} from './lib.mjs';

const T = { timeout: 60000 };

/** The row the contract says an SES document wrapped at envelope time ts becomes. */
function expectedRow(ses, ts) {
  const type = sesType(ses);
  return {
    messageId: ses.mail.messageId,
    timeStamp: isoMs(ts),
    notificationType: type,
    reportingMTA: ses.bounce?.reportingMTA ?? ses.delivery?.reportingMTA ?? null,
    destinationAddress: ses.mail.destination.join(','),
    bouncedRecipients: ses.bounce ? ses.bounce.bouncedRecipients : null,
    complaintFeedbackType: ses.complaint?.complaintFeedbackType ?? null,
    feedbackId: ses.bounce?.feedbackId ?? ses.complaint?.feedbackId ?? null,
  };
}

async function rowFor(db, exp) {
  const rows = await sqlite(db, `SELECT * FROM SesEventMessages WHERE messageId = ${q(exp.messageId)} ` +
    `AND timeStamp = ${q(exp.timeStamp)} AND notificationType = ${q(exp.notificationType)}`);
  assert.equal(rows.length, 1, `rows for ${exp.notificationType} ${exp.messageId} @ ${exp.timeStamp}: ` +
    `${JSON.stringify(rows)}; all rows: ${JSON.stringify(await sqlite(db,
      'SELECT messageId, timeStamp, notificationType FROM SesEventMessages'))}`);
  return rows[0];
}

function checkRow(row, exp, label) {
  for (const col of ['messageId', 'timeStamp', 'notificationType', 'reportingMTA', 'destinationAddress',
    'complaintFeedbackType', 'feedbackId']) {
    assert.ok(col in row, `${label}: column ${col} missing from SesEventMessages`);
    assert.equal(row[col], exp[col], `${label}: column ${col}`);
  }
  assert.ok('bouncedRecipients' in row, `${label}: column bouncedRecipients missing`);
  if (exp.bouncedRecipients === null) {
    assert.equal(row.bouncedRecipients, null, `${label}: bouncedRecipients of a non-bounce`);
  } else {
    assert.equal(typeof row.bouncedRecipients, 'string', `${label}: bouncedRecipients must be JSON text`);
    const parsed = JSON.parse(row.bouncedRecipients);
    assert.deepEqual(parsed, exp.bouncedRecipients, `${label}: bouncedRecipients content`);
    assert.equal(row.bouncedRecipients, JSON.stringify(parsed), `${label}: bouncedRecipients is not compact JSON`);
  }
}

test('every SES fixture wrapped in a signed notification is stored with the contract columns (v1 and v2)', T, async (t) => {
  const srv = await startServer({ t });
  const names = sesFixtureNames();
  assert.ok(names.length >= 15, `expected the 15 SES fixtures, found ${names.length}`);
  const base = Date.parse('2026-11-01T00:00:00.000Z');
  const posted = [];
  for (const [i, name] of names.entries()) {
    const ses = sesFixture(name);
    // a spread of Timestamp spellings; the column always gets milliseconds
    let ts = new Date(base + i * 1000 + 7 * i).toISOString();
    if (i % 5 === 1) ts = ts.replace(/\.\d{3}Z$/, 'Z');
    if (i % 5 === 3) ts = ts.replace(/Z$/, '456Z');
    const signatureVersion = i % 2 === 0 ? '1' : '2';
    const env = signEnvelope({
      message: ses, timestamp: ts, signatureVersion,
      subject: i % 3 === 0 ? 'Amazon SES Email Event Notification' : undefined,
    });
    const res = await post(srv.url, '/sns', env);
    assertStatus(res, 'stored');
    posted.push({ name, exp: expectedRow(ses, ts), signatureVersion });
  }
  assert.ok(posted.some((p) => p.exp.timeStamp.endsWith('.000Z')));
  for (const { name, exp, signatureVersion } of posted) {
    checkRow(await rowFor(srv.db, exp), exp, `${name} (v${signatureVersion})`);
  }
  assert.equal(await countEvents(srv.db), names.length);
  await srv.stop();
});

test('the row is committed before the answer: visible immediately to another process', T, async (t) => {
  const srv = await startServer({ t });
  for (let i = 0; i < 5; i++) {
    const ses = uniqueBounce();
    assertStatus(await post(srv.url, '/sns', signEnvelope({ message: ses })), 'stored');
    assert.equal(await countEvents(srv.db, `WHERE messageId = ${q(ses.mail.messageId)}`), 1);
  }
  await srv.stop();
});

test('non-ASCII text, quotes and backslashes survive signing and storage, also as \\u escapes', T, async (t) => {
  const srv = await startServer({ t });
  const make = (tag) => {
    const ses = uniqueBounce(tag);
    ses.mail.destination = ['jösé@exämple.com', 'x"y\\z@example.com', '日本@example.jp'];
    ses.bounce.bouncedRecipients = [{
      emailAddress: 'jösé@exämple.com', action: 'failed', status: '5.1.1',
      diagnosticCode: 'smtp; 550 5.1.1 «unknown» "user" \\ 😀 \t tab',
    }];
    ses.bounce.reportingMTA = 'dns; mta.exämple.com';
    return ses;
  };
  const plain = make('utf8');
  const envPlain = signEnvelope({ message: plain, subject: 'Sübject ✓', signatureVersion: '2' });
  assertStatus(await post(srv.url, '/sns', JSON.stringify(envPlain)), 'stored');

  const escaped = make('escaped');
  const envEsc = signEnvelope({ message: escaped, subject: 'Sübject ✓' });
  const text = JSON.stringify(envEsc).replace(/[\u007f-\uffff]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  assert.ok(/^[\x00-\x7f]*$/.test(text));
  assertStatus(await post(srv.url, '/sns', text), 'stored');

  for (const [ses, env] of [[plain, envPlain], [escaped, envEsc]]) {
    const exp = expectedRow(ses, env.Timestamp);
    checkRow(await rowFor(srv.db, exp), exp, ses.mail.messageId);
  }
  await srv.stop();
});

test('schema: the table and the indexes of the contract exist', T, async (t) => {
  const srv = await startServer({ t });
  const indexes = await sqlite(srv.db, "SELECT name FROM pragma_index_list('SesEventMessages')");
  const cols = {};
  for (const { name } of indexes) {
    cols[name] = (await sqlite(srv.db, `SELECT name FROM pragma_index_info(${q(name)}) ORDER BY seqno`)).map((r) => r.name);
  }
  assert.deepEqual(cols['notificationType-timeStamp-Index'], ['notificationType', 'timeStamp'], JSON.stringify(cols));
  assert.deepEqual(cols['complaintFeedbackType-timeStamp-Index'], ['complaintFeedbackType', 'timeStamp'], JSON.stringify(cols));
  assert.ok(Object.values(cols).some((c) => c[0] === 'messageId' && c[1] === 'timeStamp'),
    `no index on (messageId, timeStamp): ${JSON.stringify(cols)}`);
  // (messageId, timeStamp) must not be unique: two events may share it
  const uniques = await sqlite(srv.db, "SELECT name FROM pragma_index_list('SesEventMessages') WHERE \"unique\" = 1");
  for (const { name } of uniques) {
    assert.notDeepEqual(cols[name], ['messageId', 'timeStamp'], `unique index ${name} on (messageId, timeStamp)`);
  }
  await srv.stop();
});
