// duplicates.test.mjs - the same event delivered twice is stored once; two
// different events sharing (messageId, timeStamp) are both kept.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import {
  startServer, signEnvelope, post, sqlite, countEvents, q, sesFixture, uniqueBounce, assertStatus,
} from './lib.mjs';

const T = { timeout: 60000 };

test('the same envelope posted twice: second answer "duplicate", one row', T, async (t) => {
  const srv = await startServer({ t });
  const ses = uniqueBounce();
  const env = signEnvelope({ message: ses });
  assertStatus(await post(srv.url, '/sns', env), 'stored');
  assertStatus(await post(srv.url, '/sns', env), 'duplicate');
  // a third time, on a fresh connection
  assertStatus(await post(srv.url, '/sns', env, {}, { agent: false }), 'duplicate');
  assert.equal(await countEvents(srv.db, `WHERE messageId = ${q(ses.mail.messageId)}`), 1);
  assert.equal(await countEvents(srv.db), 1);
  await srv.stop();
});

test('an SNS retry (same MessageId) of a non-bounce event is a duplicate too', T, async (t) => {
  const srv = await startServer({ t });
  const ses = sesFixture('ses-event-open-awsdocs');
  ses.mail.messageId = `open-${crypto.randomUUID()}`;
  const env = signEnvelope({ message: ses, signatureVersion: '2' });
  assertStatus(await post(srv.url, '/sns', env), 'stored');
  assertStatus(await post(srv.url, '/sns', env), 'duplicate');
  assert.equal(await countEvents(srv.db), 1);
  await srv.stop();
});

test('the same bounce or complaint in a new envelope (new SNS MessageId, new Timestamp) is a duplicate', T, async (t) => {
  const srv = await startServer({ t });
  for (const name of ['ses-notification-bounce-with-dsn-awsdocs', 'ses-notification-complaint-with-feedback-awsdocs',
    'ses-event-bounce-awsdocs']) {
    const ses = sesFixture(name);
    const first = signEnvelope({ message: ses, timestamp: '2026-11-02T10:00:00.000Z' });
    const second = signEnvelope({ message: ses, timestamp: '2026-11-02T10:05:00.000Z', signatureVersion: '2' });
    assert.notEqual(first.MessageId, second.MessageId);
    assertStatus(await post(srv.url, '/sns', first), 'stored');
    assertStatus(await post(srv.url, '/sns', second), 'duplicate');
    const type = ses.notificationType ?? ses.eventType;
    assert.equal(await countEvents(srv.db,
      `WHERE messageId = ${q(ses.mail.messageId)} AND notificationType = ${q(type)}`), 1, name);
  }
  assert.equal(await countEvents(srv.db), 3);
  await srv.stop();
});

test('same feedbackId but a different notificationType is not a duplicate', T, async (t) => {
  const srv = await startServer({ t });
  // The AWS documentation's Bounce and Complaint events share both
  // mail.messageId and feedbackId.
  const bounce = sesFixture('ses-event-bounce-awsdocs');
  const complaint = sesFixture('ses-event-complaint-awsdocs');
  assert.equal(bounce.bounce.feedbackId, complaint.complaint.feedbackId);
  assertStatus(await post(srv.url, '/sns', signEnvelope({ message: bounce })), 'stored');
  assertStatus(await post(srv.url, '/sns', signEnvelope({ message: complaint })), 'stored');
  assert.equal(await countEvents(srv.db), 2);
  await srv.stop();
});

test('two different events sharing messageId and timeStamp are both stored', T, async (t) => {
  const srv = await startServer({ t });
  const ts = '2026-11-03T12:34:56.789Z';
  const delivery = sesFixture('ses-event-delivery-awsdocs');
  const bounce = sesFixture('ses-event-bounce-awsdocs');
  const send = sesFixture('ses-event-send-awsdocs');
  assert.equal(delivery.mail.messageId, bounce.mail.messageId);
  assertStatus(await post(srv.url, '/sns', signEnvelope({ message: send, timestamp: ts })), 'stored');
  assertStatus(await post(srv.url, '/sns', signEnvelope({ message: delivery, timestamp: ts })), 'stored');
  assertStatus(await post(srv.url, '/sns', signEnvelope({ message: bounce, timestamp: ts, signatureVersion: '2' })), 'stored');
  const rows = await sqlite(srv.db, `SELECT notificationType FROM SesEventMessages WHERE messageId = ${q(bounce.mail.messageId)} ` +
    `AND timeStamp = ${q(ts)} ORDER BY notificationType`);
  assert.deepEqual(rows.map((r) => r.notificationType), ['Bounce', 'Delivery', 'Send']);

  // two different bounces (different feedbackId) of the same mail at the same time: both kept
  const other = sesFixture('ses-event-bounce-awsdocs');
  other.bounce.feedbackId = `${other.bounce.feedbackId}-second`;
  other.bounce.bouncedRecipients[0].emailAddress = 'second@example.com';
  assertStatus(await post(srv.url, '/sns', signEnvelope({ message: other, timestamp: ts })), 'stored');
  assert.equal(await countEvents(srv.db, `WHERE messageId = ${q(bounce.mail.messageId)} AND timeStamp = ${q(ts)}`), 4);
  await srv.stop();
});

test('concurrent deliveries of the same envelope store it once', T, async (t) => {
  const srv = await startServer({ t });
  const ses = uniqueBounce();
  const env = signEnvelope({ message: ses });
  const answers = await Promise.all(Array.from({ length: 8 }, () => post(srv.url, '/sns', env, {}, { agent: false })));
  const statuses = answers.map((r) => `${r.status} ${r.json?.status}`).sort();
  assert.deepEqual(statuses, ['200 duplicate', '200 duplicate', '200 duplicate', '200 duplicate',
    '200 duplicate', '200 duplicate', '200 duplicate', '200 stored'].sort());
  assert.equal(await countEvents(srv.db), 1);
  await srv.stop();
});
