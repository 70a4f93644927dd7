// sqs.test.mjs - SNS -> SQS -> seslog against a real SQS-compatible server
// (npm fauxqs on 127.0.0.1): signed envelopes stored and deleted, forged
// ones left for the dead-letter queue, raw queues, writer busy, SQS down,
// SIGKILL with messages in flight.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { spawn } from 'node:child_process';
import {
  startServer, signEnvelope, get, countEvents, sqlite, uniqueBounce, sesFixture, tail, DEFAULT_TOPIC,
} from './lib.mjs';
import { startSqs, sqsArgs, awsEnv, waitFor } from './sqs-lib.mjs';

const T = { timeout: 120000 };

async function sources(srv) {
  const r = await get(srv.url, '/api/sources');
  assert.equal(r.status, 200, r.text);
  return r.json;
}

function forged() {
  const env = signEnvelope({ message: uniqueBounce() });
  const m = JSON.parse(env.Message);
  m.bounce.bounceType = 'Transient'; // the signature no longer matches
  env.Message = JSON.stringify(m);
  return env;
}

test('signed envelopes are stored and deleted; a duplicate stored once; a forged one never deleted, moved to the DLQ, counted', T, async (t) => {
  const sqs = await startSqs();
  t.after(() => sqs.stop());
  const q = sqs.createQueueWithDlq('ses-events', { maxReceiveCount: 2, visibility: 1 });
  const srv = await startServer({ t, env: awsEnv(), args: sqsArgs(sqs, { queues: [q.queueUrl] }) });

  const good = [uniqueBounce(), uniqueBounce(), uniqueBounce()].map((m) => signEnvelope({ message: m }));
  for (const e of good) await sqs.send(q.queueUrl, e);
  await sqs.send(q.queueUrl, good[0]); // SNS delivered twice
  const bad = forged();
  await sqs.send(q.queueUrl, bad);

  await waitFor(async () => (await countEvents(srv.db)) === 3, { what: () => tail(srv.stderr) });
  // the forged message ends in the dead-letter queue, never deleted by seslog
  await waitFor(() => sqs.counts(q.dlqName).ready === 1, {
    what: async () => JSON.stringify({ main: sqs.counts('ses-events'), dlq: sqs.counts(q.dlqName) }),
  });
  const dead = sqs.inspect(q.dlqName).messages.ready[0];
  assert.equal(JSON.parse(dead.body ?? dead.message?.body ?? dead.Body).Signature, bad.Signature);
  await waitFor(() => {
    const c = sqs.counts('ses-events');
    return c.ready === 0 && c.inFlight === 0;
  }, { what: () => JSON.stringify(sqs.counts('ses-events')) });

  // a UUID snsMessageId is stored as its 16 bytes (schema version 22)
  const rows = await sqlite(srv.db, `SELECT messageId, CASE WHEN typeof(snsMessageId) = 'blob' THEN
      lower(substr(hex(snsMessageId), 1, 8) || '-' || substr(hex(snsMessageId), 9, 4) || '-' ||
        substr(hex(snsMessageId), 13, 4) || '-' || substr(hex(snsMessageId), 17, 4) || '-' ||
        substr(hex(snsMessageId), 21, 12)) ELSE snsMessageId END AS snsMessageId
    FROM SesEventMessages ORDER BY id`);
  assert.deepEqual(rows.map((r) => r.snsMessageId).sort(), good.map((e) => e.MessageId).sort());

  const s = await waitFor(async () => {
    const j = await sources(srv);
    return j.queues[0].deleted === 4 && j.queues[0].refused >= 2 ? j : null;
  }, { what: async () => JSON.stringify(await sources(srv)) });
  const qs = s.queues[0];
  assert.equal(qs.url, q.queueUrl);
  assert.equal(qs.name, 'ses-events');
  assert.equal(qs.raw, false);
  assert.equal(qs.region, 'us-east-1');
  assert.equal(qs.state, 'polling');
  assert.equal(qs.stored, 3);
  assert.equal(qs.duplicates, 1);
  assert.ok(qs.received >= 6, `received ${qs.received}`);
  assert.ok(Date.parse(qs.lastReceiveAt) > Date.now() - 60000);
  assert.equal(s.credentials.source, 'environment');
  assert.equal(s.credentials.accessKeyId, 'AKIDSQSTESTENVIRON01');

  const d = (await get(srv.url, '/api/diagnostics')).json;
  assert.equal(d.sqs.refusedByQueue[q.queueUrl], qs.refused);
  const refusals = d.sqs.recentRefusals;
  assert.ok(refusals.length >= 2);
  assert.equal(refusals[0].queue, q.queueUrl);
  assert.equal(refusals[0].code, 'bad_signature');
  assert.deepEqual(refusals.map((r) => r.receiveCount).sort(), refusals.map((_, i) => refusals.length - i).sort(),
    `receive counts ${JSON.stringify(refusals)}`);
  assert.equal(d.rejectedByReason.bad_signature, refusals.length);

  const m = (await get(srv.url, '/metrics')).text;
  assert.match(m, /^seslog_sqs_messages_total\{queue="ses-events",outcome="stored"\} 3$/m);
  assert.match(m, /^seslog_sqs_messages_total\{queue="ses-events",outcome="deleted"\} 4$/m);
  assert.match(m, /^seslog_sqs_messages_total\{queue="ses-events",outcome="refused"\} [2-9]$/m);
  assert.match(m, /^seslog_sqs_up\{queue="ses-events"\} 1$/m);
  assert.doesNotMatch(srv.stderr, /sqs-test-secret/);
  await srv.stop();
});

test('the /sns rules apply to queued envelopes: topic allowlist; --sns-basic-auth does not lock the queue out', T, async (t) => {
  const sqs = await startSqs();
  t.after(() => sqs.stop());
  const q = sqs.createQueue('ses-rules', { VisibilityTimeout: '30' });
  const srv = await startServer({
    t, env: awsEnv(),
    args: [...sqsArgs(sqs, { queues: [q.queueUrl] }), '--sns-topic-arn', DEFAULT_TOPIC, '--sns-basic-auth', 'sns:s3cret-pass'],
  });
  const mine = uniqueBounce();
  await sqs.send(q.queueUrl, signEnvelope({ message: mine }));
  await sqs.send(q.queueUrl, signEnvelope({ message: uniqueBounce(), topicArn: 'arn:aws:sns:us-east-1:999999999999:not-mine' }));
  await waitFor(async () => (await countEvents(srv.db)) === 1, { what: () => tail(srv.stderr) });
  const s = await waitFor(async () => {
    const j = await sources(srv);
    return j.queues[0].refused === 1 && j.queues[0].deleted === 1 ? j : null;
  }, { what: async () => JSON.stringify(await sources(srv)) });
  assert.equal(s.queues[0].stored, 1);
  const d = (await get(srv.url, '/api/diagnostics')).json;
  assert.equal(d.sqs.recentRefusals[0].code, 'topic_not_allowed');
  assert.equal(d.rejectedByReason.topic_not_allowed, 1);
  assert.equal(d.rejectedByReason.basic_auth, 0);
  assert.doesNotMatch(srv.stderr, /s3cret-pass|c25zOnMzY3JldC1wYXNz/);
  await srv.stop();
});

test('bare SES JSON and EventBridge events only from a queue declared raw', T, async (t) => {
  const sqs = await startSqs();
  t.after(() => sqs.stop());
  const raw = sqs.createQueue('ses-raw', { VisibilityTimeout: '30' });
  const plain = sqs.createQueue('ses-plain', { VisibilityTimeout: '30' });
  const srv = await startServer({
    t, env: awsEnv(), args: sqsArgs(sqs, { queues: [plain.queueUrl], raw: [raw.queueUrl] }),
  });
  const bare = uniqueBounce();
  const ev = sesFixture('ses-event-bounce-awsdocs');
  ev.mail.messageId = `eb-${crypto.randomUUID()}`;
  const bridged = { version: '0', id: crypto.randomUUID(), 'detail-type': 'Email Bounced', source: 'aws.ses',
    account: '123456789012', time: new Date().toISOString(), region: 'us-east-1', resources: [], detail: ev };
  const signed = uniqueBounce();
  await sqs.send(raw.queueUrl, bare);
  await sqs.send(raw.queueUrl, bridged);
  await sqs.send(raw.queueUrl, signEnvelope({ message: signed })); // envelopes are verified there too
  await sqs.send(raw.queueUrl, { hello: 'not an SES event' }); // valid, no event: deleted, ignored
  // a key twice is refused there as on /sns (the columns would take one, a browser the other)
  const twice = uniqueBounce();
  const twiceText = JSON.stringify(twice).replace('"notificationType":"Bounce"', '"notificationType":"Bounce","notificationType":"Delivery"');
  assert.notEqual(twiceText, JSON.stringify(twice));
  await sqs.send(raw.queueUrl, twiceText);
  const strayBare = uniqueBounce();
  await sqs.send(plain.queueUrl, strayBare);
  await sqs.send(plain.queueUrl, { ...bridged, id: 'x', detail: { ...ev, mail: { ...ev.mail, messageId: 'eb-stray' } } });

  await waitFor(async () => (await countEvents(srv.db)) === 3, { what: () => tail(srv.stderr) });
  const ids = (await sqlite(srv.db, 'SELECT messageId FROM SesEventMessages')).map((r) => r.messageId).sort();
  assert.deepEqual(ids, [bare.mail.messageId, ev.mail.messageId, signed.mail.messageId].sort());
  const s = await waitFor(async () => {
    const j = await sources(srv);
    const p = j.queues.find((x) => x.name === 'ses-plain');
    const r = j.queues.find((x) => x.name === 'ses-raw');
    return p.refused >= 2 && r.deleted === 4 && r.refused >= 1 ? j : null;
  }, { what: async () => JSON.stringify(await sources(srv)) });
  const r = s.queues.find((x) => x.name === 'ses-raw');
  assert.equal(r.raw, true);
  assert.equal(r.stored, 3);
  assert.equal(r.ignored, 1);
  const p = s.queues.find((x) => x.name === 'ses-plain');
  assert.equal(p.raw, false);
  assert.equal(p.stored, 0);
  assert.equal(p.deleted, 0);
  // refused messages stay in the plain queue (in flight until their visibility ends)
  const c = sqs.counts('ses-plain');
  assert.equal(c.ready + c.inFlight, 2);
  const d = (await get(srv.url, '/api/diagnostics')).json;
  assert.ok(d.sqs.recentRefusals.some((x) => x.code === 'raw_not_allowed' && x.queue === plain.queueUrl));
  assert.ok(d.sqs.recentRefusals.some((x) => x.code === 'duplicate_key' && x.queue === raw.queueUrl));
  assert.equal(await countEvents(srv.db, `WHERE messageId = '${twice.mail.messageId}'`), 0);
  assert.equal(await countEvents(srv.db, `WHERE messageId = '${strayBare.mail.messageId}'`), 0);
  await srv.stop();
});

/** Opens sqlite3 on db and takes an exclusive lock; resolves once it holds it. */
function lockDatabase(db) {
  return new Promise((resolve, reject) => {
    const p = spawn('sqlite3', [db], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.setEncoding('utf8');
    p.stdout.on('data', (d) => {
      out += d;
      if (out.includes('locked-now')) {
        resolve({
          proc: p,
          release: () => new Promise((res) => { p.once('exit', res); p.stdin.end('COMMIT;\n'); }),
        });
      }
    });
    p.on('exit', (code) => reject(new Error(`sqlite3 exited ${code}`)));
    p.stdin.write('.timeout 5000\nBEGIN EXCLUSIVE;\nSELECT \'locked-now\';\n');
  });
}

test('writer busy: the message is not deleted, its visibility backs off, and it is stored when it comes back', T, async (t) => {
  const sqs = await startSqs();
  t.after(() => sqs.stop());
  const q = sqs.createQueue('ses-busy', { VisibilityTimeout: '60' });
  const srv = await startServer({
    t, env: awsEnv(), args: [...sqsArgs(sqs, { queues: [q.queueUrl] }), '--busy-timeout', '200'],
  });
  const warm = uniqueBounce();
  await sqs.send(q.queueUrl, signEnvelope({ message: warm }));
  await waitFor(async () => (await countEvents(srv.db)) === 1);

  const lock = await lockDatabase(srv.db);
  t.after(() => lock.proc.kill('SIGKILL'));
  const ses = uniqueBounce();
  await sqs.send(q.queueUrl, signEnvelope({ message: ses }));
  const s = await waitFor(async () => {
    const j = await sources(srv);
    return j.queues[0].retried >= 1 ? j : null;
  }, { what: async () => JSON.stringify(await sources(srv)) });
  assert.equal(s.queues[0].deleted, 1);
  // still in the queue, invisible for the backoff (5 s), not the queue's 60 s
  const inflight = sqs.inspect('ses-busy').messages.inflight;
  assert.equal(inflight.length, 1);
  const left = inflight[0].visibilityDeadline - Date.now();
  assert.ok(left > 0 && left <= 6000, `visible again in ${left} ms`);
  await lock.release();
  await waitFor(async () => (await countEvents(srv.db)) === 2, { timeout: 20000, what: () => tail(srv.stderr) });
  await waitFor(async () => (await sources(srv)).queues[0].deleted === 2);
  assert.equal(sqs.counts('ses-busy').ready + sqs.counts('ses-busy').inFlight, 0);
  await srv.stop();
});

test('a stopped SQS server is retried with backoff and reported; receiving resumes when it is back', T, async (t) => {
  let sqs = await startSqs();
  const port = sqs.port;
  let q = sqs.createQueue('ses-down');
  const srv = await startServer({ t, env: awsEnv(), args: sqsArgs(sqs, { queues: [q.queueUrl] }) });
  await waitFor(async () => (await sources(srv)).queues[0].lastReceiveAt !== null);
  await sqs.stop();
  const s = await waitFor(async () => {
    const j = await sources(srv);
    return j.queues[0].receiveErrors >= 2 ? j : null;
  }, { timeout: 60000, what: async () => JSON.stringify(await sources(srv)) });
  assert.equal(s.queues[0].state, 'retrying');
  assert.match(s.queues[0].lastError, /ReceiveMessage failed/);
  assert.ok(s.queues[0].lastErrorAt);
  const m = (await get(srv.url, '/metrics')).text;
  assert.match(m, /^seslog_sqs_up\{queue="ses-down"\} 0$/m);
  assert.match(m, /^seslog_sqs_errors_total\{queue="ses-down",call="receive"\} [1-9]\d*$/m);
  // backoff: a few attempts over a few seconds, not hundreds
  const before = (await sources(srv)).queues[0].receiveErrors;
  await new Promise((r) => setTimeout(r, 3000));
  const after = (await sources(srv)).queues[0].receiveErrors;
  assert.ok(after - before <= 3, `${after - before} receives failed in 3 s`);

  sqs = await startSqs({ port });
  t.after(() => sqs.stop());
  // back, but without the queue: SQS's error is shown
  await waitFor(async () => /QueueDoesNotExist|NonExistentQueue/.test((await sources(srv)).queues[0].lastError ?? ''),
    { timeout: 90000, what: async () => JSON.stringify(await sources(srv)) });
  q = sqs.createQueue('ses-down');
  const ses = uniqueBounce();
  await sqs.send(q.queueUrl, signEnvelope({ message: ses }));
  await waitFor(async () => (await countEvents(srv.db)) === 1, { timeout: 90000, what: () => tail(srv.stderr) });
  await waitFor(async () => (await sources(srv)).queues[0].state === 'polling');
  await srv.stop();
});

test('SIGTERM with messages in flight: exit 0, every deleted message was stored; queues from SESLOG_SQS_QUEUE_URL', T, async (t) => {
  const sqs = await startSqs();
  t.after(() => sqs.stop());
  const a = sqs.createQueue('ses-term-a', { VisibilityTimeout: '2' });
  const b = sqs.createQueue('ses-term-b', { VisibilityTimeout: '2' });
  const N = 600;
  const envs = Array.from({ length: N }, () => signEnvelope({ message: uniqueBounce() }));
  await sqs.sendBatch(a.queueUrl, envs.slice(0, N / 2));
  await sqs.sendBatch(b.queueUrl, envs.slice(N / 2));
  const env = awsEnv({ SESLOG_SQS_QUEUE_URL: `${a.queueUrl},${b.queueUrl}`, SESLOG_SQS_ENDPOINT: sqs.endpoint });
  const srv = await startServer({ t, env });
  await waitFor(async () => (await countEvents(srv.db)) > 0, { every: 5 });
  await srv.stop(); // SIGTERM: exit status 0 asserted
  const left = sqs.counts('ses-term-a').ready + sqs.counts('ses-term-a').inFlight +
    sqs.counts('ses-term-b').ready + sqs.counts('ses-term-b').inFlight;
  const stored = await countEvents(srv.db);
  assert.ok(N - left <= stored, `${N - left} deleted but only ${stored} stored`);
  assert.ok(left > 0, 'everything was drained before the stop: the test proves nothing');
  const again = await startServer({ t, env, dir: srv.dir });
  await waitFor(async () => (await countEvents(again.db)) === N, { timeout: 60000, what: () => tail(again.stderr) });
  const j = (await get(again.url, '/api/sources')).json;
  assert.deepEqual(j.queues.map((x) => x.name), ['ses-term-a', 'ses-term-b']);
  await again.stop();
});

test('SIGKILL with messages in flight: after a restart every message is stored exactly once', T, async (t) => {
  const sqs = await startSqs();
  t.after(() => sqs.stop());
  const q = sqs.createQueue('ses-kill', { VisibilityTimeout: '2' });
  const N = 400;
  const envs = Array.from({ length: N }, () => signEnvelope({ message: uniqueBounce() }));
  await sqs.sendBatch(q.queueUrl, envs);
  const args = sqsArgs(sqs, { queues: [q.queueUrl], pollers: 4 });
  const srv = await startServer({ t, env: awsEnv(), args });
  await waitFor(async () => (await countEvents(srv.db)) > 0, { every: 5 });
  await srv.kill();
  const partial = await countEvents(srv.db);
  const c = sqs.counts('ses-kill');
  assert.ok(partial < N, `all ${N} stored before the kill: the test proves nothing`);
  assert.ok(c.ready + c.inFlight > 0);

  const again = await startServer({ t, env: awsEnv(), args, dir: srv.dir });
  await waitFor(async () => {
    const k = sqs.counts('ses-kill');
    return k.ready + k.inFlight === 0;
  }, { timeout: 60000, what: () => JSON.stringify(sqs.counts('ses-kill')) });
  const rows = await sqlite(again.db, 'SELECT snsMessageId, count(*) AS n FROM SesEventMessages GROUP BY snsMessageId');
  assert.equal(rows.length, N, `stored ${rows.length} of ${N} (${partial} before the kill)`);
  assert.ok(rows.every((r) => r.n === 1), 'an event stored twice');
  await again.stop();
});
