// verify-pool.test.mjs - SNS envelopes are parsed and verified on workers of
// their own, libuv's thread pool staying the queries' (issue 14): their
// number, clients that hang up while their event is on them, and a stop
// while events are on them.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import {
  startServer, signEnvelope, countEvents, uniqueBounce, post, q, sleep, DEFAULT_TOPIC, assertError,
} from './lib.mjs';

function rawPost(env) {
  const b = Buffer.from(JSON.stringify(env), 'utf8');
  return `POST /sns HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain; charset=UTF-8\r\n` +
    `x-amz-sns-message-type: Notification\r\nContent-Length: ${b.length}\r\n\r\n${b}`;
}

function threads(pid) {
  return fs.readdirSync(`/proc/${pid}/task`).length;
}

// the threads of pid named name
function named(pid, name) {
  return fs.readdirSync(`/proc/${pid}/task`).filter((tid) => {
    try {
      return fs.readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim() === name;
    } catch {
      return false; // ended meanwhile
    }
  }).length;
}

async function storeOne(srv) {
  const ses = uniqueBounce();
  const res = await post(srv.url, '/sns', signEnvelope({ message: ses }));
  assert.equal(res.status, 200, res.text);
  assert.equal(res.json?.status, 'stored', res.text);
  return ses;
}

test('the thread pool has 8 threads unless UV_THREADPOOL_SIZE says otherwise', { timeout: 60000 }, async (t) => {
  // libuv's pool, the queries' (metrics_load runs one at start): the server
  // left to seslog's default has 7 threads more than the one told to use 1.
  // (an undefined value leaves the variable out of the child's environment)
  const dflt = await startServer({ t, env: { UV_THREADPOOL_SIZE: undefined } });
  const one = await startServer({ t, env: { UV_THREADPOOL_SIZE: '1' } });
  await storeOne(dflt);
  await storeOne(one);
  await sleep(200); // threads start as the pool does; give them a moment
  assert.equal(threads(dflt.child.pid) - threads(one.child.pid), 7,
    `threads: default ${threads(dflt.child.pid)}, UV_THREADPOOL_SIZE=1 ${threads(one.child.pid)}`);
  await dflt.stop();
  await one.stop();
});

test('the verifying workers: one per online core (2 to 8), whatever UV_THREADPOOL_SIZE says', { timeout: 60000 }, async (t) => {
  // They start with the first envelope, not before.
  const want = Math.min(8, Math.max(2, os.cpus().length));
  const one = await startServer({ t, env: { UV_THREADPOOL_SIZE: '1' } });
  assert.equal(named(one.child.pid, 'seslog-verify'), 0);
  await storeOne(one);
  await sleep(200);
  assert.equal(named(one.child.pid, 'seslog-verify'), want);
  // a burst of events on them: all stored
  const burst = [];
  for (let i = 0; i < 100; i++) burst.push(uniqueBounce());
  const answers = await Promise.all(burst.map((ses, i) =>
    post(one.url, '/sns', signEnvelope({ message: ses, signatureVersion: String(1 + (i % 2)) }))));
  for (const res of answers) assert.equal(res.json?.status, 'stored', res.text);
  assert.equal(await countEvents(one.db, `WHERE messageId IN (${burst.map((s) => q(s.mail.messageId)).join(',')})`), 100);
  assert.equal(named(one.child.pid, 'seslog-verify'), want);
  await one.stop(); // exit 0: the workers' loop handle closed, no sanitizer report
});

test('clients that hang up while their events are verified: the next ones are answered, the stop is clean', { timeout: 60000 }, async (t) => {
  const srv = await startServer({ t });
  const gone = [];
  for (let i = 0; i < 40; i++) {
    const ses = uniqueBounce();
    gone.push(ses.mail.messageId);
    const sock = net.connect(srv.port, '127.0.0.1');
    await new Promise((r, j) => { sock.once('connect', r); sock.once('error', j); });
    sock.write(rawPost(signEnvelope({ message: ses, signatureVersion: String(1 + (i % 2)) })));
    sock.destroy();
  }
  const after = await storeOne(srv);
  assert.equal(await countEvents(srv.db, `WHERE messageId = ${q(after.mail.messageId)}`), 1);
  // each abandoned event is stored at most once (SNS would retry the rest)
  await sleep(500);
  const abandoned = await countEvents(srv.db,
    `WHERE messageId IN (${gone.map(q).join(',')})`);
  assert.ok(abandoned <= gone.length, `${abandoned} rows for ${gone.length} events`);
  await srv.stop(); // exit 0, no sanitizer report
});

test('SIGTERM while events are on the thread pool: every acknowledged event is stored, exit 0', { timeout: 60000 }, async (t) => {
  const srv = await startServer({ t });
  const sent = [];
  const answers = [];
  let answered = 0;
  let stopping = null;
  for (let i = 0; i < 200; i++) {
    const ses = uniqueBounce();
    sent.push(ses.mail.messageId);
    answers.push(post(srv.url, '/sns', signEnvelope({ message: ses, signatureVersion: String(1 + (i % 2)) }))
      .then((res) => {
        if (++answered === 20) stopping = srv.stop(30000);
        return res;
      }, (err) => ({ status: 0, text: String(err) })));
  }
  const results = await Promise.all(answers);
  await (stopping ?? srv.stop(30000));
  const stored = [];
  for (let i = 0; i < results.length; i++) {
    const r = results[i];
    if (r.status === 200) {
      assert.equal(r.json?.status, 'stored', r.text);
      stored.push(sent[i]);
    } else if (r.status !== 0) {
      // refused while stopping: SNS retries it
      assert.equal(r.status, 503, r.text);
    }
  }
  assert.ok(stored.length >= 20, `only ${stored.length} stored`);
  const rows = await countEvents(srv.db, `WHERE messageId IN (${stored.map(q).join(',')})`);
  assert.equal(rows, stored.length);
});

// Once the loop has found a certificate in the cache, a pool thread that
// parses an envelope signed with it verifies it at once (one trip to the
// pool instead of two): every refusal must still be the one the two-trip
// path gives, in the same order of checks, and good events still stored.
test('envelopes verified right after parsing: the same answers as on two trips', { timeout: 60000 }, async (t) => {
  const srv = await startServer({ t, args: ['--sns-topic-arn', DEFAULT_TOPIC] });
  const first = await storeOne(srv); // the certificate is now in the cache
  const refusals = [
    ['a tampered Message', () => {
      const env = signEnvelope({ message: uniqueBounce() });
      env.Message = env.Message.replace('bounce', 'bounc3');
      return env;
    }, 403, 'bad_signature'],
    ['a Timestamp two days ahead', () => signEnvelope({
      message: uniqueBounce(), timestamp: new Date(Date.now() + 2 * 86400e3).toISOString(),
    }), 403, 'timestamp_in_future'],
    ['a topic off the allowlist', () => signEnvelope({
      message: uniqueBounce(), topicArn: 'arn:aws:sns:us-east-1:123456789012:other',
    }), 403, 'topic_not_allowed'],
    ['SignatureVersion 3', () => {
      const env = signEnvelope({ message: uniqueBounce() });
      env.SignatureVersion = '3';
      return env;
    }, 400, 'unsupported_signature_version'],
    ['a Message that is no SES event', () => signEnvelope({ message: { hello: 'world' } }),
      200, null],
  ];
  for (let round = 0; round < 3; round++) {
    for (const [what, make, status, code] of refusals) {
      const res = await post(srv.url, '/sns', make());
      if (code) assertError(res, status, code);
      else assert.equal(res.json?.status, 'ignored', `${what}: ${res.text}`);
    }
    const ok = await post(srv.url, '/sns', signEnvelope({ message: uniqueBounce(), signatureVersion: '2' }));
    assert.equal(ok.json?.status, 'stored', ok.text);
  }
  // the same event again is a duplicate, not a second row
  const again = await post(srv.url, '/sns', signEnvelope({ message: first }));
  assert.equal(again.json?.status, 'duplicate', again.text);
  assert.equal(await countEvents(srv.db), 4);
  await srv.stop(); // exit 0, no sanitizer report
});
