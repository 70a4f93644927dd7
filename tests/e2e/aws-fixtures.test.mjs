// aws-fixtures.test.mjs - the real messages signed by AWS (tests/fixtures/sns)
// against the real AWS certificates (tests/fixtures/certs) in the cert dir.
// None carries SES JSON: the valid ones are "ignored", the tampered one 403.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  startServer, startCertServer, post, countEvents, snsFixtureNames, snsFixtureText,
  assertError, awsCertPaths,
} from './lib.mjs';

test('real AWS-signed fixtures: valid ones 200 "ignored", the tampered one 403, nothing stored', { timeout: 60000 }, async (t) => {
  // The SNS hosts go to a local stand-in, so a SubscribeURL visit (or a
  // certificate fetch that should not happen) never reaches the network.
  const stand = await startCertServer();
  t.after(() => stand.close());
  const srv = await startServer({ t, args: stand.args, connectTo: stand.connectTo, certs: awsCertPaths() });

  const names = snsFixtureNames();
  assert.ok(names.length >= 7, `expected the 7 SNS fixtures, found ${names.length}`);
  for (const name of names) {
    const text = snsFixtureText(name);
    const env = JSON.parse(text);
    // post the file byte for byte, as SNS sent it (pretty-printed)
    const res = await post(srv.url, '/sns', text, {
      'x-amz-sns-message-type': env.Type,
      'x-amz-sns-message-id': env.MessageId,
      'x-amz-sns-topic-arn': env.TopicArn,
    });
    if (name.includes('TAMPERED')) {
      assertError(res, 403, 'bad_signature');
      continue;
    }
    assert.equal(res.status, 200, `${name}: ${res.status} ${res.text}`);
    if (env.Type === 'SubscriptionConfirmation') {
      assert.ok(['ignored', 'confirmed'].includes(res.json?.status), `${name}: ${res.text}`);
      if (res.json.status === 'confirmed') {
        const visits = stand.requests.filter((r) => r.url.includes('Action=ConfirmSubscription'));
        assert.equal(visits.length, 1, `${name}: "confirmed" without a GET of its SubscribeURL`);
        assert.equal(visits[0].host, new URL(env.SubscribeURL).host);
      }
    } else {
      assert.equal(res.json?.status, 'ignored', `${name}: ${res.text}`);
    }
  }
  assert.deepEqual(stand.certGets(), [], 'a certificate present in the cert dir was fetched');
  assert.equal(await countEvents(srv.db), 0);
  await srv.stop();
});

test('real AWS fixtures: without their certificate and with the SNS host unreachable, nothing is accepted', { timeout: 60000 }, async (t) => {
  // An empty cert dir; the SNS hosts map to a closed port: the fetch fails, SNS should retry.
  const srv = await startServer({ t, certs: [] });
  const text = snsFixtureText('sns-v2-notification-aws-sdk-java-v2');
  const res = await post(srv.url, '/sns', text);
  assertError(res, 503);
  assert.equal(await countEvents(srv.db), 0);
  await srv.stop();
});
