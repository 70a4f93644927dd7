// lifecycle.test.mjs - the SNS subscription lifecycle and the defences
// around /sns (issue 3): confirmation end to end, unsubscribe, one
// certificate fetch for 50 concurrent requests, refusals with our own key,
// /api/subscriptions and /api/diagnostics, --sns-listen.
import test from 'node:test';
import assert from 'node:assert/strict';
import {
  startServer, startCertServer, signEnvelope, post, get, countEvents, uniqueBounce,
  assertError, assertStatus, DEFAULT_TOPIC,
} from './lib.mjs';

const T = { timeout: 60000 };

test('confirmation end to end: SubscribeURL fetched once, SubscriptionArn recorded and shown', T, async (t) => {
  const stand = await startCertServer();
  t.after(() => stand.close());
  const srv = await startServer({ t, args: [...stand.args, '--sns-topic-arn', DEFAULT_TOPIC], connectTo: stand.connectTo });
  const env = signEnvelope({ type: 'SubscriptionConfirmation', message: 'You have chosen to subscribe.' });
  const res = await post(srv.url, '/sns', env);
  assertStatus(res, 'confirmed');
  assert.match(res.json.subscriptionArn, new RegExp(`^${DEFAULT_TOPIC}:`));
  const visits = stand.requests.filter((r) => r.url.includes('Action=ConfirmSubscription'));
  assert.equal(visits.length, 1);
  assert.ok(visits[0].url.includes(env.Token));
  const subs = (await get(srv.url, '/api/subscriptions')).json.items;
  const mine = subs.find((s) => s.topicArn === DEFAULT_TOPIC);
  assert.equal(mine?.state, 'confirmed');
  assert.equal(mine.subscriptionArn, res.json.subscriptionArn);
  assert.ok(mine.confirmedAt);
  // events follow; the topic's counts move
  assertStatus(await post(srv.url, '/sns', signEnvelope({ message: uniqueBounce() })), 'stored');
  const after = (await get(srv.url, '/api/subscriptions')).json.items.find((s) => s.topicArn === DEFAULT_TOPIC);
  assert.equal(after.accepted, 1);
  assert.ok(after.lastMessageAt);
  // an unsubscribe is recorded and shown
  assertStatus(await post(srv.url, '/sns', signEnvelope({ type: 'UnsubscribeConfirmation', message: 'bye' })), 'ignored');
  const gone = (await get(srv.url, '/api/subscriptions')).json.items.find((s) => s.topicArn === DEFAULT_TOPIC);
  assert.equal(gone.state, 'unsubscribed');
  assert.match(srv.stderr, /unsubscribed/);
  await srv.stop();
  // the state survives a restart (it is in the database)
  const again = await startServer({ t, dir: srv.dir, args: stand.args, connectTo: stand.connectTo });
  const kept = (await get(again.url, '/api/subscriptions')).json.items.find((s) => s.topicArn === DEFAULT_TOPIC);
  assert.equal(kept.state, 'unsubscribed');
  assert.equal(kept.subscriptionArn, res.json.subscriptionArn);
  await again.stop();
});

test('a SubscribeURL on a foreign host is refused (403) and never fetched', T, async (t) => {
  const stand = await startCertServer();
  t.after(() => stand.close());
  const srv = await startServer({ t, args: stand.args, connectTo: stand.connectTo });
  for (const url of ['https://evil.example.com/?Action=ConfirmSubscription&Token=x',
    'http://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&Token=x',
    'https://sns.us-east-1.amazonaws.com.evil.com/?Action=ConfirmSubscription',
    'https://user@sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription',
    'https://sns.us-east-1.amazonaws.com:8443/?Action=ConfirmSubscription']) {
    const env = signEnvelope({ type: 'SubscriptionConfirmation', message: 'x', subscribeUrl: url });
    assertError(await post(srv.url, '/sns', env), 403, 'subscribe_url_not_allowed');
  }
  assert.equal(stand.requests.filter((r) => r.url.includes('ConfirmSubscription')).length, 0);
  const diag = (await get(srv.url, '/api/diagnostics')).json;
  assert.equal(diag.rejectedByReason.subscribe_url, 5);
  await srv.stop();
});

test('AWS failing or silent during a confirmation: 503 so SNS retries, topic pending; then confirmed', T, async (t) => {
  const stand = await startCertServer({ mode: 'fail' });
  t.after(() => stand.close());
  // the signing certificate is in the cert dir, so only the SubscribeURL meets the failing server
  const srv = await startServer({ t, args: stand.args, connectTo: stand.connectTo });
  const env = signEnvelope({ type: 'SubscriptionConfirmation', message: 'x' });
  const t0 = Date.now();
  const res = await post(srv.url, '/sns', env);
  assertError(res, 503, 'confirmation_failed');
  const attempts = stand.requests.filter((r) => r.url.includes('ConfirmSubscription')).length;
  assert.equal(attempts, 3, 'retried with backoff before giving up');
  assert.ok(Date.now() - t0 >= 800, 'the retries are spaced');
  const pending = (await get(srv.url, '/api/subscriptions')).json.items.find((s) => s.topicArn === DEFAULT_TOPIC);
  assert.equal(pending.state, 'pending');
  stand.setMode('ok');
  assertStatus(await post(srv.url, '/sns', env), 'confirmed');
  await srv.stop();
});

test('the certificate is fetched once for 50 concurrent first requests', T, async (t) => {
  const stand = await startCertServer();
  t.after(() => stand.close());
  const srv = await startServer({ t, certs: [], args: stand.args, connectTo: stand.connectTo });
  const answers = await Promise.all(Array.from({ length: 50 }, () =>
    post(srv.url, '/sns', signEnvelope({ message: uniqueBounce() }), {}, { agent: false })));
  for (const r of answers) assertStatus(r, 'stored');
  assert.equal(stand.certGets().length, 1, 'one fetch shared by every waiting request');
  assert.equal(await countEvents(srv.db), 50);
  await srv.stop();
});

test('refusals with our own key: swapped version, Subject removed, wrong credentials, topic; all counted', T, async (t) => {
  const topic = DEFAULT_TOPIC;
  const srv = await startServer({ t, args: ['--sns-topic-arn', topic, '--sns-basic-auth', 'sns:s3cret'] });
  const auth = { authorization: `Basic ${Buffer.from('sns:s3cret').toString('base64')}` };
  const wrong = { authorization: `Basic ${Buffer.from('sns:guess').toString('base64')}` };
  // signed as version 1, announced as version 2
  const swapped = signEnvelope({ message: uniqueBounce(), signatureVersion: '1' });
  swapped.SignatureVersion = '2';
  assertError(await post(srv.url, '/sns', swapped, auth), 403, 'bad_signature');
  // a Subject signed, then removed
  const nosubj = signEnvelope({ message: uniqueBounce(), subject: 'Amazon SES Email Event Notification' });
  delete nosubj.Subject;
  assertError(await post(srv.url, '/sns', nosubj, auth), 403, 'bad_signature');
  // wrong and missing credentials
  const good = signEnvelope({ message: uniqueBounce() });
  const r401 = await post(srv.url, '/sns', good, wrong);
  assertError(r401, 401);
  assert.match(r401.headers['www-authenticate'] ?? '', /^Basic realm="seslog"/);
  assertError(await post(srv.url, '/sns', good), 401);
  // another topic, correctly signed
  assertError(await post(srv.url, '/sns', signEnvelope({ message: uniqueBounce(), topicArn: `${topic}-other` }), auth), 403, 'topic_not_allowed');
  // a raw delivery of another topic
  assertError(await post(srv.url, '/sns', uniqueBounce(), { ...auth, 'x-amz-sns-rawdelivery': 'true', 'x-amz-sns-topic-arn': `${topic}-other` }), 403, 'topic_not_allowed');
  // and the good one passes
  assertStatus(await post(srv.url, '/sns', good, auth), 'stored');
  assert.equal(await countEvents(srv.db), 1);
  const diag = (await get(srv.url, '/api/diagnostics')).json;
  assert.equal(diag.rejectedByReason.bad_signature, 2);
  assert.equal(diag.rejectedByReason.basic_auth, 2);
  assert.equal(diag.rejectedByReason.topic_not_allowed, 2);
  assert.ok(diag.recentRejections.length >= 6);
  const last = diag.recentRejections[0];
  assert.equal(last.reason, 'topic_not_allowed');
  assert.match(last.remote, /^127\.0\.0\.1:/);
  const metrics = (await get(srv.url, '/metrics')).text;
  assert.match(metrics, /seslog_sns_rejected_total\{reason="bad_signature"\} 2/);
  assert.doesNotMatch(srv.stderr, /s3cret/, 'the basic-auth secret reached the log');
  await srv.stop();
});

test('without an allowlist the log warns that any topic is accepted', T, async (t) => {
  const srv = await startServer({ t });
  for (let i = 0; i < 40 && !/seslog started/.test(srv.stderr); i++) await new Promise((r) => setTimeout(r, 50));
  assert.match(srv.stderr, /level=warn .*any SNS topic/);
  await srv.stop();
});
