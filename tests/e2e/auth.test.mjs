// auth.test.mjs - --sns-basic-auth and raw message delivery
// (x-amz-sns-rawdelivery: true, body = the bare SES JSON).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import {
  startServer, signEnvelope, post, get, sqlite, countEvents, q, uniqueBounce, isoMs,
  assertError, assertStatus,
} from './lib.mjs';

const T = { timeout: 60000 };
const TOPIC = 'arn:aws:sns:us-east-1:123456789012:ses-raw';
const basic = (userpass) => `Basic ${Buffer.from(userpass).toString('base64')}`;

function rawHeaders(topic = TOPIC) {
  return {
    'x-amz-sns-rawdelivery': 'true',
    'x-amz-sns-message-type': 'Notification',
    'x-amz-sns-message-id': crypto.randomUUID(),
    'x-amz-sns-topic-arn': topic,
  };
}

test('--sns-basic-auth: /sns needs the credentials (401 with WWW-Authenticate: Basic first)', T, async (t) => {
  const srv = await startServer({ t, args: ['--sns-basic-auth', 'sns:s3cret'] });
  const env = signEnvelope({ message: uniqueBounce() });

  const none = await post(srv.url, '/sns', env);
  assertError(none, 401);
  assert.match(String(none.headers['www-authenticate']), /^Basic\b/i);

  assertError(await post(srv.url, '/sns', env, { authorization: basic('sns:wrong') }), 401);
  assertError(await post(srv.url, '/sns', env, { authorization: basic('other:s3cret') }), 401);
  assertError(await post(srv.url, '/sns', env, { authorization: 'Basic !!!' }), 401);
  assertError(await post(srv.url, '/sns', env, { authorization: 'Bearer s3cret' }), 401);
  assert.equal(await countEvents(srv.db), 0);

  assertStatus(await post(srv.url, '/sns', env, { authorization: basic('sns:s3cret') }), 'stored');
  // /healthz stays open
  assert.equal((await get(srv.url, '/healthz')).status, 200);
  assert.ok(!srv.stderr.includes('s3cret'), 'the password appears in the log');
  await srv.stop();
});

test('raw message delivery without --sns-basic-auth: 403, nothing stored', T, async (t) => {
  const srv = await startServer({ t, args: ['--sns-topic-arn', TOPIC] });
  const res = await post(srv.url, '/sns', JSON.stringify(uniqueBounce()), rawHeaders());
  assertError(res, 403);
  assert.equal(await countEvents(srv.db), 0);
  await srv.stop();
});

test('raw message delivery with basic auth and an allowed topic: stored with the event\'s own timestamp', T, async (t) => {
  const srv = await startServer({ t, args: ['--sns-basic-auth', 'sns:s3cret', '--sns-topic-arn', TOPIC] });
  const ses = uniqueBounce();
  ses.bounce.timestamp = '2026-09-09T09:09:09.9Z';
  const body = JSON.stringify(ses);

  assertError(await post(srv.url, '/sns', body, rawHeaders()), 401);
  assertError(await post(srv.url, '/sns', body, { ...rawHeaders('arn:aws:sns:us-east-1:123456789012:other'),
    authorization: basic('sns:s3cret') }), 403);
  assert.equal(await countEvents(srv.db), 0);

  assertStatus(await post(srv.url, '/sns', body, { ...rawHeaders(), authorization: basic('sns:s3cret') }), 'stored');
  const rows = await sqlite(srv.db, `SELECT * FROM SesEventMessages WHERE messageId = ${q(ses.mail.messageId)}`);
  assert.equal(rows.length, 1);
  assert.equal(rows[0].timeStamp, isoMs(ses.bounce.timestamp));
  assert.equal(rows[0].notificationType, 'Bounce');
  assert.equal(rows[0].feedbackId, ses.bounce.feedbackId);

  // delivered again (same feedbackId): a duplicate
  assertStatus(await post(srv.url, '/sns', body, { ...rawHeaders(), authorization: basic('sns:s3cret') }), 'duplicate');
  // raw bodies that are not SES JSON
  const bad = await post(srv.url, '/sns', 'not json', { ...rawHeaders(), authorization: basic('sns:s3cret') });
  assertError(bad, 400, 'invalid_json');
  assert.equal(await countEvents(srv.db), 1);
  await srv.stop();
});
