// answers.test.mjs - an answer that could not be built whole is never sent
// truncated: the /sns answer about a stored event stays valid JSON however
// long the ids it echoes are.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { startServer, signEnvelope, post, sqlite, q, uniqueBounce, assertStatus } from './lib.mjs';

const T = { timeout: 60000 };

test('a 5,000-character mail.messageId: the /sns answer is valid JSON that says "stored"', T, async (t) => {
  const srv = await startServer({ t });
  const ses = uniqueBounce();
  ses.mail.messageId = `long-${crypto.randomUUID()}-`.padEnd(5000, 'x');
  const env = signEnvelope({ message: ses });
  const res = await post(srv.url, '/sns', env);
  assertStatus(res, 'stored');
  assert.equal(res.json.messageId, ses.mail.messageId, 'the answer echoes the whole messageId');
  assert.equal(res.json.snsMessageId, env.MessageId);
  const rows = await sqlite(srv.db, `SELECT length(messageId) AS n FROM SesEventMessages WHERE messageId = ${q(ses.mail.messageId)}`);
  assert.deepEqual(rows, [{ n: 5000 }], 'the event is stored once, its messageId whole');
  // SNS retries an answer it cannot read; the retry is a valid "duplicate".
  const again = await post(srv.url, '/sns', env);
  assertStatus(again, 'duplicate');
  assert.equal(again.json.messageId, ses.mail.messageId);
  await srv.stop();
});

test('ids that escape to six bytes each (control characters) are echoed whole', T, async (t) => {
  const srv = await startServer({ t });
  const ses = uniqueBounce();
  ses.mail.messageId = `ctl-${crypto.randomUUID()}-` + '\u0001<>'.repeat(1500);
  const env = signEnvelope({ message: ses });
  const res = await post(srv.url, '/sns', env);
  assertStatus(res, 'stored');
  assert.equal(res.json.messageId, ses.mail.messageId);
  await srv.stop();
});
