// import.test.mjs - `seslog import`: files of JSON and JSON lines holding
// every accepted shape, the summary line, FILE:LINE reports, exit statuses,
// idempotence, stdin, and --verify.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import {
  runSeslog, tempDir, signEnvelope, sqlite, countEvents, q, sesFixture, sesFixtureText, snsFixtureText,
  sesType, isoMs, uniqueBounce, defaultCerts,
} from './lib.mjs';

const T = { timeout: 60000 };

// Protective settings in case import reaches for a certificate: never the network.
const SAFE_ENV = {
  SESLOG_CONNECT_TO: 'sns.us-east-1.amazonaws.com:443:127.0.0.1:1',
};

function summary(stdout) {
  const lines = stdout.trimEnd().split('\n');
  const last = lines[lines.length - 1];
  const m = /^imported (\d+), duplicates (\d+), rejected (\d+)$/.exec(last);
  assert.ok(m, `last stdout line is not the summary: ${JSON.stringify(last)}\nstdout:\n${stdout}`);
  return { imported: Number(m[1]), duplicates: Number(m[2]), rejected: Number(m[3]) };
}

function newDb() {
  const dir = tempDir('seslog-import-');
  return { dir, db: path.join(dir, 'seslog.db') };
}

/** The documents of the main import test and the rows they must become. */
function buildInputs(dir) {
  const expected = [];
  const lines = [];

  // 1: a bare SES event (event publishing): timeStamp is the event's own time
  const complaintEvent = sesFixture('ses-event-complaint-awsdocs');
  lines.push(JSON.stringify(complaintEvent));
  expected.push({ messageId: complaintEvent.mail.messageId, timeStamp: isoMs(complaintEvent.complaint.timestamp),
    notificationType: 'Complaint', complaintFeedbackType: complaintEvent.complaint.complaintFeedbackType,
    feedbackId: complaintEvent.complaint.feedbackId });

  // 2: an SNS envelope: timeStamp is the envelope's Timestamp
  const bounce = sesFixture('ses-notification-bounce-with-dsn-awsdocs');
  const env = signEnvelope({ message: bounce, timestamp: '2026-10-01T08:00:00.123Z' });
  lines.push(JSON.stringify(env));
  expected.push({ messageId: bounce.mail.messageId, timeStamp: '2026-10-01T08:00:00.123Z', notificationType: 'Bounce',
    reportingMTA: bounce.bounce.reportingMTA, bouncedRecipients: JSON.stringify(bounce.bounce.bouncedRecipients),
    destinationAddress: bounce.mail.destination.join(',') });

  // 3: a Lambda SNS event
  const delivery = sesFixture('ses-notification-delivery-awsdocs');
  const inner = signEnvelope({ message: delivery, timestamp: '2026-10-01T09:00:00.000Z' });
  lines.push(JSON.stringify({
    Records: [{
      EventSource: 'aws:sns',
      EventVersion: '1.0',
      EventSubscriptionArn: `${inner.TopicArn}:${crypto.randomUUID()}`,
      Sns: {
        Type: inner.Type, MessageId: inner.MessageId, TopicArn: inner.TopicArn, Subject: null,
        Message: inner.Message, Timestamp: inner.Timestamp, SignatureVersion: inner.SignatureVersion,
        Signature: inner.Signature, SigningCertUrl: inner.SigningCertURL, UnsubscribeUrl: inner.UnsubscribeURL,
        MessageAttributes: {},
      },
    }],
  }));
  expected.push({ messageId: delivery.mail.messageId, timeStamp: '2026-10-01T09:00:00.000Z', notificationType: 'Delivery',
    destinationAddress: delivery.mail.destination.join(',') });

  // 4: a DynamoDB item as in a DynamoDB export ({"Item":{...}}), written by the original Lambda
  const ddbBounce = {
    messageId: 'ddb-bounce-0001', timeStamp: '2025-06-01T10:00:00.000Z', reportingMTA: 'dsn; mta.example.net',
    destinationAddress: 'a@example.net,b@example.net', notificationType: 'Bounce',
    bouncedRecipients: '[{"emailAddress":"a@example.net","action":"failed","status":"5.1.1"}]',
  };
  lines.push(JSON.stringify({ Item: Object.fromEntries(Object.entries(ddbBounce).map(([k, v]) => [k, { S: v }])) }));
  expected.push(ddbBounce);

  // 5: a bare DynamoDB item
  const ddbComplaint = {
    messageId: 'ddb-complaint-0001', timeStamp: '2025-06-02T11:30:00.500Z', complaintFeedbackType: 'abuse',
    feedbackId: 'ddb-feedback-0001', destinationAddress: 'c@example.net', notificationType: 'Complaint',
  };
  lines.push(JSON.stringify(Object.fromEntries(Object.entries(ddbComplaint).map(([k, v]) => [k, { S: v }]))));
  expected.push(ddbComplaint);

  // 6: an array of two bare events
  const open = sesFixture('ses-event-open-awsdocs');
  const click = sesFixture('ses-event-click-awsdocs');
  lines.push(JSON.stringify([open, click]));
  expected.push({ messageId: open.mail.messageId, timeStamp: isoMs(open.open.timestamp), notificationType: 'Open' });
  expected.push({ messageId: click.mail.messageId, timeStamp: isoMs(click.click.timestamp), notificationType: 'Click' });

  // 7: a bad line
  lines.push('{"notificationType": "Bounce", this is not json');
  const badLine = lines.length;

  const jsonl = path.join(dir, 'events.jsonl');
  fs.writeFileSync(jsonl, `${lines.join('\n')}\n`);

  // a second file: one pretty-printed bare SES notification, as in the AWS docs
  const pretty = path.join(dir, 'complaint.json');
  fs.writeFileSync(pretty, sesFixtureText('ses-notification-complaint-with-feedback-awsdocs'));
  const complaint = sesFixture('ses-notification-complaint-with-feedback-awsdocs');
  expected.push({ messageId: complaint.mail.messageId, timeStamp: isoMs(complaint.complaint.timestamp),
    notificationType: 'Complaint', complaintFeedbackType: complaint.complaint.complaintFeedbackType,
    feedbackId: complaint.complaint.feedbackId,
    destinationAddress: complaint.mail.destination.join(',') });

  // a third file: a pretty-printed array spanning many lines
  const bounceEvent = sesFixture('ses-event-bounce-awsdocs');
  const sendEvent = sesFixture('ses-event-send-awsdocs');
  const arr = path.join(dir, 'array.json');
  fs.writeFileSync(arr, JSON.stringify([bounceEvent, sendEvent], null, 2));
  expected.push({ messageId: bounceEvent.mail.messageId, timeStamp: isoMs(bounceEvent.bounce.timestamp),
    notificationType: 'Bounce', feedbackId: bounceEvent.bounce.feedbackId, reportingMTA: bounceEvent.bounce.reportingMTA });
  expected.push({ messageId: sendEvent.mail.messageId, timeStamp: isoMs(sendEvent.mail.timestamp), notificationType: 'Send' });

  return { files: [jsonl, pretty, arr], jsonl, badLine, expected };
}

test('import: every accepted shape, exact counts, FILE:LINE for the bad line, exit 1; again: all duplicates', T, async () => {
  const { dir, db } = newDb();
  const { files, jsonl, badLine, expected } = buildInputs(dir);

  const r1 = await runSeslog(['import', '--db', db, ...files], { env: SAFE_ENV });
  assert.deepEqual(summary(r1.stdout), { imported: expected.length, duplicates: 0, rejected: 1 },
    `stderr:\n${r1.stderr}`);
  assert.equal(r1.code, 1, `exit status with a rejected document; stderr:\n${r1.stderr}`);
  const reports = r1.stderr.split('\n').filter((l) => l.startsWith(`${jsonl}:`));
  assert.equal(reports.length, 1, `expected one FILE:LINE report, stderr:\n${r1.stderr}`);
  assert.match(reports[0], new RegExp(`^${jsonl.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:${badLine}: \\S`));

  for (const exp of expected) {
    const rows = await sqlite(db, `SELECT * FROM SesEventMessages WHERE messageId = ${q(exp.messageId)} ` +
      `AND timeStamp = ${q(exp.timeStamp)} AND notificationType = ${q(exp.notificationType)}`);
    assert.equal(rows.length, 1, `row for ${JSON.stringify(exp)}; have: ${JSON.stringify(await sqlite(db,
      'SELECT messageId, timeStamp, notificationType FROM SesEventMessages'))}`);
    for (const [k, v] of Object.entries(exp)) assert.equal(rows[0][k], v, `${exp.messageId} ${exp.notificationType}: ${k}`);
  }
  assert.equal(await countEvents(db), expected.length);

  const r2 = await runSeslog(['import', '--db', db, ...files], { env: SAFE_ENV });
  assert.deepEqual(summary(r2.stdout), { imported: 0, duplicates: expected.length, rejected: 1 }, `stderr:\n${r2.stderr}`);
  assert.equal(r2.code, 1);
  assert.equal(await countEvents(db), expected.length);
});

test('import: exit 0 when nothing is rejected; "-" reads stdin', T, async () => {
  const { dir, db } = newDb();
  const file = path.join(dir, 'one.json');
  const a = uniqueBounce();
  fs.writeFileSync(file, JSON.stringify(a));
  const r1 = await runSeslog(['import', '--db', db, file], { env: SAFE_ENV });
  assert.deepEqual(summary(r1.stdout), { imported: 1, duplicates: 0, rejected: 0 }, r1.stderr);
  assert.equal(r1.code, 0, r1.stderr);

  const b = uniqueBounce();
  const c = sesFixture('ses-event-delivery-awsdocs');
  c.mail.messageId = `stdin-${crypto.randomUUID()}`;
  const input = `${JSON.stringify(b)}\n${JSON.stringify(signEnvelope({ message: c }))}\n${JSON.stringify(a)}\n`;
  const r2 = await runSeslog(['import', '--db', db, '-'], { env: SAFE_ENV, input });
  assert.deepEqual(summary(r2.stdout), { imported: 2, duplicates: 1, rejected: 0 }, r2.stderr);
  assert.equal(r2.code, 0, r2.stderr);
  for (const id of [a.mail.messageId, b.mail.messageId, c.mail.messageId]) {
    assert.equal(await countEvents(db, `WHERE messageId = ${q(id)}`), 1, id);
  }

  // a rejected line on stdin is reported as -:LINE
  const r3 = await runSeslog(['import', '--db', db, '-'], { env: SAFE_ENV, input: `${JSON.stringify(uniqueBounce())}\nnot json at all\n` });
  assert.deepEqual(summary(r3.stdout), { imported: 1, duplicates: 0, rejected: 1 }, r3.stderr);
  assert.equal(r3.code, 1);
  assert.match(r3.stderr, /^(-|<stdin>|stdin):2: \S/m);
});

test('import: SESLOG_DB is used when --db is absent', T, async () => {
  const { dir, db } = newDb();
  const file = path.join(dir, 'one.json');
  const a = uniqueBounce();
  fs.writeFileSync(file, JSON.stringify(a));
  const r = await runSeslog(['import', file], { env: { ...SAFE_ENV, SESLOG_DB: db } });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(await countEvents(db, `WHERE messageId = ${q(a.mail.messageId)}`), 1);
});

test('import: unreadable file and unknown option exit 2 with one line on stderr', T, async () => {
  const { dir, db } = newDb();
  const missing = path.join(dir, 'no-such-file.jsonl');
  const r1 = await runSeslog(['import', '--db', db, missing], { env: SAFE_ENV });
  assert.equal(r1.code, 2, `stdout:\n${r1.stdout}\nstderr:\n${r1.stderr}`);
  assert.ok(r1.stderr.includes(missing), `stderr does not name the file: ${r1.stderr}`);
  assert.equal(r1.stderr.trim().split('\n').length, 1, `more than one line: ${r1.stderr}`);

  const r2 = await runSeslog(['import', '--db', db, '--no-such-option', missing], { env: SAFE_ENV });
  assert.equal(r2.code, 2, r2.stderr);
  assert.match(r2.stderr, /no-such-option/);
  assert.equal(r2.stderr.trim().split('\n').length, 1, `more than one line: ${r2.stderr}`);

  // a directory is walked (import-archive.test.mjs); a path that is neither file nor folder is not
  const r3 = await runSeslog(['import', '--db', db, '/dev/null'], { env: SAFE_ENV });
  assert.equal(r3.code, 2, `a device as FILE: exit ${r3.code}`);
  assert.equal(r3.stderr.trim().split('\n').length, 1, `more than one line: ${r3.stderr}`);
});

test('import --verify: checks signatures (the tampered AWS fixture and a tampered envelope are rejected)', T, async () => {
  const { dir, db } = newDb();
  // the default cert dir is <db folder>/sns-certs
  const certDir = path.join(dir, 'sns-certs');
  fs.mkdirSync(certDir);
  for (const c of defaultCerts()) fs.copyFileSync(c, path.join(certDir, path.basename(c)));

  const good = uniqueBounce();
  const bad = uniqueBounce();
  const badEnv = signEnvelope({ message: bad });
  badEnv.Message = badEnv.Message.replace('Permanent', 'Transient');
  const file = path.join(dir, 'verify.jsonl');
  fs.writeFileSync(file, [
    JSON.stringify(signEnvelope({ message: good, signatureVersion: '2' })),
    JSON.stringify(JSON.parse(snsFixtureText('sns-v1-notification-TAMPERED-sns-verify-clj'))),
    JSON.stringify(badEnv),
  ].join('\n'));
  const r = await runSeslog(['import', '--db', db, '--verify', file], { env: { ...SAFE_ENV, SESLOG_SNS_CERT_DIR: certDir } });
  assert.deepEqual(summary(r.stdout), { imported: 1, duplicates: 0, rejected: 2 }, r.stderr);
  assert.equal(r.code, 1);
  assert.match(r.stderr, new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:2: \\S`, 'm'));
  assert.match(r.stderr, new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:3: \\S`, 'm'));
  assert.equal(await countEvents(db, `WHERE messageId = ${q(good.mail.messageId)}`), 1);
  assert.equal(await countEvents(db, `WHERE messageId = ${q(bad.mail.messageId)}`), 0);

  // without --verify the tampered envelope's SES event is imported
  const r2 = await runSeslog(['import', '--db', db, file], { env: SAFE_ENV });
  assert.equal(await countEvents(db, `WHERE messageId = ${q(bad.mail.messageId)}`), 1, r2.stderr);
});
