// http.test.mjs - the HTTP surface of POST /sns and friends: health, routing,
// body limits, and every way an envelope is rejected before it is stored.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import {
  startServer, startCertServer, signEnvelope, signInPlace, post, get, countEvents,
  uniqueBounce, assertError, assertStatus, SIGNING_CERT_NAME,
} from './lib.mjs';

const T = { timeout: 60000 };
const MiB = 1024 * 1024;

test('GET /healthz answers 200 {"status":"ok"}', T, async (t) => {
  const srv = await startServer({ t });
  const res = await get(srv.url, '/healthz');
  assert.equal(res.status, 200, res.text);
  assert.match(String(res.headers['content-type']), /application\/json/);
  assert.deepEqual(res.json, { status: 'ok' });
  await srv.stop();
});

test('unknown paths get 404 with the error body, GET /sns gets 405', T, async (t) => {
  const srv = await startServer({ t });
  const r404 = await get(srv.url, '/no-such-path-9f3c');
  assertError(r404, 404);
  const r404b = await post(srv.url, '/sns/extra', '{}');
  assertError(r404b, 404);
  const r405 = await get(srv.url, '/sns');
  assertError(r405, 405);
  await srv.stop();
});

test('400: not JSON, JSON array, missing Signature, unknown Type, bad base64', T, async (t) => {
  const srv = await startServer({ t });

  assertError(await post(srv.url, '/sns', 'this is { not json'), 400, 'invalid_json');
  assertError(await post(srv.url, '/sns', ''), 400);
  assertError(await post(srv.url, '/sns', '[1,2,3]'), 400);
  assertError(await post(srv.url, '/sns', JSON.stringify([signEnvelope({ message: uniqueBounce() })])), 400);
  assertError(await post(srv.url, '/sns', '"a string"'), 400);

  const noSig = signEnvelope({ message: uniqueBounce() });
  delete noSig.Signature;
  assertError(await post(srv.url, '/sns', noSig), 400);

  const noMessage = signEnvelope({ message: uniqueBounce() });
  delete noMessage.Message;
  assertError(await post(srv.url, '/sns', noMessage), 400);

  const noType = signEnvelope({ message: uniqueBounce() });
  delete noType.Type;
  assertError(await post(srv.url, '/sns', noType), 400);

  const unknownType = signEnvelope({ message: uniqueBounce() });
  unknownType.Type = 'Bogus';
  signInPlace(unknownType);
  assertError(await post(srv.url, '/sns', unknownType), 400);

  const badB64 = signEnvelope({ message: uniqueBounce() });
  badB64.Signature = '!!!this is not base64 at all!!!';
  assertError(await post(srv.url, '/sns', badB64), 400);

  // an unknown SignatureVersion is refused (400 or 403), never accepted
  const v3 = signEnvelope({ message: uniqueBounce(), signatureVersion: '3' });
  const r3 = await post(srv.url, '/sns', v3);
  assert.ok([400, 403].includes(r3.status), `SignatureVersion 3: ${r3.status} ${r3.text}`);
  assertError(r3, r3.status);

  const numType = signEnvelope({ message: uniqueBounce() });
  numType.Timestamp = 12345;
  assertError(await post(srv.url, '/sns', numType), 400);

  assert.equal(await countEvents(srv.db), 0, 'a rejected request stored something');
  const health = await get(srv.url, '/healthz');
  assert.equal(health.status, 200);
  await srv.stop();
});

test('403: bad signature, SigningCertURL not allowed, Timestamp outside the certificate', T, async (t) => {
  const evil = ['evil.example.com', 'sns.us-east-1.amazonaws.com.evil.example.com', 'sns.us-east-1.amazonaws.com'];
  // Map any host a buggy server might fetch from to a closed local port.
  const connectTo = [...evil.map((h) => `${h}:443:127.0.0.1:1`), 'evil.example.com:80:127.0.0.1:1',
    'sns.us-east-1.amazonaws.com:8443:127.0.0.1:1', 'sns.us-east-1.amazonaws.com:80:127.0.0.1:1',
    'sns.us-west-2.amazonaws.com:443:127.0.0.1:1'];
  const srv = await startServer({ t, connectTo });

  // altered after signing
  const tampered = signEnvelope({ message: uniqueBounce() });
  tampered.Message = tampered.Message.replace('Permanent', 'Transient');
  assertError(await post(srv.url, '/sns', tampered), 403, 'bad_signature');

  // signed with SHA1 but labelled version 2 (and the other way round)
  const wrongVersion = signEnvelope({ message: uniqueBounce(), signatureVersion: '1' });
  wrongVersion.SignatureVersion = '2';
  assertError(await post(srv.url, '/sns', wrongVersion), 403, 'bad_signature');
  const wrongVersion2 = signEnvelope({ message: uniqueBounce(), signatureVersion: '2' });
  wrongVersion2.SignatureVersion = '1';
  assertError(await post(srv.url, '/sns', wrongVersion2), 403, 'bad_signature');

  // valid base64 of random bytes
  const randomSig = signEnvelope({ message: uniqueBounce() });
  randomSig.Signature = Buffer.alloc(256, 7).toString('base64');
  assertError(await post(srv.url, '/sns', randomSig), 403, 'bad_signature');

  const badUrls = [
    `https://evil.example.com/${SIGNING_CERT_NAME}`,
    `https://sns.us-east-1.amazonaws.com.evil.example.com/${SIGNING_CERT_NAME}`,
    `http://sns.us-east-1.amazonaws.com/${SIGNING_CERT_NAME}`,
    `https://sns.us-east-1.amazonaws.com:8443/${SIGNING_CERT_NAME}`,
    `https://user@sns.us-east-1.amazonaws.com/${SIGNING_CERT_NAME}`,
    `https://sns.us-east-1.amazonaws.com/${SIGNING_CERT_NAME}?x=1`,
    `https://sns.us-east-1.amazonaws.com/certs/${SIGNING_CERT_NAME}`,
    'https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0123456789abcdef0123456789abcdef.txt',
    'https://sns.us-east-1.amazonaws.com/SimpleNotificationService-../../etc/passwd.pem',
  ];
  for (const certUrl of badUrls) {
    const env = signEnvelope({ message: uniqueBounce(), certUrl });
    const res = await post(srv.url, '/sns', env);
    assert.equal(res.status, 403, `SigningCertURL ${certUrl}: expected 403, got ${res.status} ${res.text}`);
    assertError(res, 403);
  }

  // the signing cert is valid from 2020-01-01T00:00:00Z to 2099-12-31T23:59:59Z
  for (const timestamp of ['2019-12-31T23:59:59.999Z', '2100-01-01T00:00:00.000Z']) {
    const env = signEnvelope({ message: uniqueBounce(), timestamp });
    const res = await post(srv.url, '/sns', env);
    assert.equal(res.status, 403, `Timestamp ${timestamp}: expected 403, got ${res.status} ${res.text}`);
    assertError(res, 403);
  }
  // just inside the validity period
  assertStatus(await post(srv.url, '/sns', signEnvelope({ message: uniqueBounce(), timestamp: '2020-01-01T00:00:00.000Z' })), 'stored');

  assert.equal(await countEvents(srv.db), 1, 'only the one valid notification may be stored');
  await srv.stop();
});

test('a valid notification whose Message is not SES JSON is ignored', T, async (t) => {
  const srv = await startServer({ t });
  for (const message of ['hello', '{"foo":1}', '[]', 'null']) {
    const res = await post(srv.url, '/sns', signEnvelope({ message, subject: 'test' }));
    assertStatus(res, 'ignored');
  }
  assert.equal(await countEvents(srv.db), 0);
  await srv.stop();
});

test('SubscriptionConfirmation and UnsubscribeConfirmation signed correctly: 200, nothing stored', T, async (t) => {
  const certs = await startCertServer();
  t.after(() => certs.close());
  const srv = await startServer({ t, args: certs.args, connectTo: certs.connectTo });
  for (const signatureVersion of ['1', '2']) {
    const sub = signEnvelope({ type: 'SubscriptionConfirmation', signatureVersion, message: 'You have chosen to subscribe to the topic.' });
    const before = certs.requests.length;
    const res = await post(srv.url, '/sns', sub);
    assert.equal(res.status, 200, res.text);
    assert.ok(['ignored', 'confirmed'].includes(res.json?.status), `status: ${res.text}`);
    if (res.json.status === 'confirmed') {
      // then the server must really have visited the SubscribeURL
      const visits = certs.requests.slice(before).filter((r) => r.url.includes('Action=ConfirmSubscription'));
      assert.equal(visits.length, 1, `"confirmed" without exactly one GET of the SubscribeURL: ${JSON.stringify(certs.requests)}`);
      assert.ok(visits[0].url.includes(encodeURIComponent(sub.Token)) || visits[0].url.includes(sub.Token));
    }
    const unsub = signEnvelope({ type: 'UnsubscribeConfirmation', signatureVersion, message: 'You have chosen to deactivate the subscription.' });
    assertStatus(await post(srv.url, '/sns', unsub), 'ignored');
  }
  // a tampered confirmation is rejected like a notification
  const bad = signEnvelope({ type: 'SubscriptionConfirmation', message: 'x' });
  bad.SubscribeURL = 'https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&Token=other';
  const before = certs.requests.length;
  assertError(await post(srv.url, '/sns', bad), 403, 'bad_signature');
  assert.equal(certs.requests.length, before, 'a badly signed confirmation made an outbound request');
  assert.equal(await countEvents(srv.db), 0);
  await srv.stop();
});

test('--sns-topic-arn: another topic gets 403 and is never confirmed', T, async (t) => {
  const certs = await startCertServer();
  t.after(() => certs.close());
  const allowed = 'arn:aws:sns:us-east-1:123456789012:allowed-topic';
  const srv = await startServer({ t, args: [...certs.args, '--sns-topic-arn', allowed], connectTo: certs.connectTo });
  const other = 'arn:aws:sns:us-east-1:123456789012:other-topic';
  assertError(await post(srv.url, '/sns', signEnvelope({ type: 'SubscriptionConfirmation', topicArn: other, message: 'x' })), 403);
  assert.equal(certs.requests.filter((r) => r.url.includes('ConfirmSubscription')).length, 0,
    'the SubscribeURL of a topic not on the allowlist was fetched');
  assertError(await post(srv.url, '/sns', signEnvelope({ topicArn: other, message: uniqueBounce() })), 403);
  assertStatus(await post(srv.url, '/sns', signEnvelope({ topicArn: allowed, message: uniqueBounce() })), 'stored');
  assert.equal(await countEvents(srv.db), 1);
  await srv.stop();
});

/** A signed envelope JSON text padded with spaces to exactly `size` bytes. */
function paddedEnvelope(size) {
  const text = JSON.stringify(signEnvelope({ message: uniqueBounce() }));
  assert.ok(text.length < size);
  // whitespace between JSON tokens is insignificant
  return `{${' '.repeat(size - text.length)}${text.slice(1)}`;
}

test('413: a body of 1 MiB + 1 byte is refused; exactly 1 MiB is accepted; the server stays healthy', T, async (t) => {
  const srv = await startServer({ t });
  const exact = paddedEnvelope(MiB);
  assert.equal(Buffer.byteLength(exact), MiB);
  assertStatus(await post(srv.url, '/sns', exact, {}, { agent: false }), 'stored');

  const over = paddedEnvelope(MiB + 1);
  assert.equal(Buffer.byteLength(over), MiB + 1);
  assertError(await post(srv.url, '/sns', over, {}, { agent: false }), 413, 'body_too_large');

  // without Content-Length (chunked): refused before any of the body is read,
  // since the lenient http-parser cannot frame chunks safely (see http.c)
  const overChunked = paddedEnvelope(2 * MiB);
  assertError(await post(srv.url, '/sns', overChunked, {}, { agent: false, chunked: true }), 411, 'length_required');

  // a huge declared Content-Length is refused without waiting for the body
  const declared = await rawExchange(srv.port,
    `POST /sns HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\nContent-Length: ${100 * MiB}\r\n\r\n{"Type":`);
  assert.match(declared, /^HTTP\/1\.1 413 /, `declared 100 MiB: ${declared.slice(0, 200)}`);

  const health = await get(srv.url, '/healthz', {}, { agent: false });
  assert.equal(health.status, 200);
  assert.deepEqual(health.json, { status: 'ok' });
  assert.equal(await countEvents(srv.db), 1, 'only the 1 MiB notification may be stored');
  await srv.stop();
});

/** Writes raw bytes and returns what comes back until the server closes or 10 s pass. */
function rawExchange(port, text, ms = 10000) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    let got = '';
    const timer = setTimeout(() => { sock.destroy(); resolve(got); }, ms);
    sock.setEncoding('utf8');
    sock.on('data', (d) => {
      got += d;
      // one complete response is enough
      const m = /\r\ncontent-length: *(\d+)\r\n/i.exec(got);
      const end = got.indexOf('\r\n\r\n');
      if (m && end >= 0 && got.length >= end + 4 + Number(m[1])) {
        clearTimeout(timer);
        sock.destroy();
        resolve(got);
      }
    });
    sock.on('error', (e) => { clearTimeout(timer); if (got) resolve(got); else reject(e); });
    sock.on('close', () => { clearTimeout(timer); resolve(got); });
    sock.write(text);
  });
}

/**
 * Writes text whole, or one byte at a time (each byte its own write, a
 * moment apart), and returns everything the server sent until it closed
 * or ms passed.
 */
function feed(port, text, { byByte = false, ms = 3000 } = {}) {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    sock.setNoDelay(true);
    let got = '';
    const done = () => { clearTimeout(timer); sock.destroy(); resolve(got); };
    const timer = setTimeout(done, ms);
    sock.setEncoding('latin1');
    sock.on('data', (d) => { got += d; });
    sock.on('error', done);
    sock.on('close', done);
    sock.on('connect', async () => {
      if (!byByte) { sock.write(text, 'latin1'); return; }
      for (const ch of text) {
        if (sock.destroyed) return;
        sock.write(ch, 'latin1');
        await new Promise((r) => setTimeout(r, 1));
      }
    });
  });
}

test('RFC 9112 framing: bare LF, folded headers, "X Y:" names, missing or duplicate Host get 400; HTTP/1.2 and 9.9 get 505; GET with Expect gets no 100 Continue; each fed whole and byte by byte', { timeout: 120000 }, async (t) => {
  const srv = await startServer({ t });
  const H = 'Host: 127.0.0.1';
  const cases = [
    ['bare LF line ends', `GET /healthz HTTP/1.1\n${H}\n\n`, 400],
    ['a bare LF after the request line', `GET /healthz HTTP/1.1\n${H}\r\n\r\n`, 400],
    ['a bare LF after a header', `GET /healthz HTTP/1.1\r\n${H}\nX-A: b\r\n\r\n`, 400],
    ['a bare LF ending the head', `GET /healthz HTTP/1.1\r\n${H}\r\n\n`, 400],
    ['a folded header (obs-fold)', `GET /healthz HTTP/1.1\r\n${H}\r\nX-A: a\r\n  b\r\n\r\n`, 400],
    ['a folded header with a tab', `GET /healthz HTTP/1.1\r\n${H}\r\nX-A: a\r\n\tb\r\n\r\n`, 400],
    ['a space inside a field name', `GET /healthz HTTP/1.1\r\n${H}\r\nX Y: z\r\n\r\n`, 400],
    ['a space before the colon', `GET /healthz HTTP/1.1\r\n${H}\r\nX-A : z\r\n\r\n`, 400],
    ['a NUL in a field value', `GET /healthz HTTP/1.1\r\n${H}\r\nX-A: a\0b\r\n\r\n`, 400],
    ['no Host in HTTP/1.1', 'GET /healthz HTTP/1.1\r\n\r\n', 400],
    ['two Host headers', `GET /healthz HTTP/1.1\r\n${H}\r\nhost: 127.0.0.1\r\n\r\n`, 400],
    ['HTTP/1.2', `GET /healthz HTTP/1.2\r\n${H}\r\n\r\n`, 505],
    ['HTTP/9.9', `GET /healthz HTTP/9.9\r\n${H}\r\n\r\n`, 505],
    ['HTTP/1.0 without Host (allowed)', 'GET /healthz HTTP/1.0\r\n\r\n', 200],
    ['a well-formed request', `GET /healthz HTTP/1.1\r\n${H}\r\nConnection: close\r\n\r\n`, 200],
  ];
  for (const [what, text, want] of cases) {
    for (const byByte of [false, true]) {
      const got = await feed(srv.port, text, { byByte });
      const status = Number(/^HTTP\/1\.1 (\d{3}) /.exec(got)?.[1]);
      assert.equal(status, want, `${what} (${byByte ? 'byte by byte' : 'whole'}): ${JSON.stringify(got.slice(0, 120))}`);
      if (want === 505) assert.match(got, /"code":"http_version_not_supported"/);
    }
  }
  // Expect: 100-continue on a GET (no body): the answer comes without a 100 first
  for (const byByte of [false, true]) {
    const get1 = await feed(srv.port, `GET /healthz HTTP/1.1\r\n${H}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n`, { byByte });
    assert.match(get1, /^HTTP\/1\.1 200 /, `GET with Expect (${byByte ? 'byte by byte' : 'whole'}): ${JSON.stringify(get1.slice(0, 80))}`);
    assert.ok(!get1.includes('100 Continue'), get1);
  }
  // ...while a POST announcing a body does get one
  const post1 = await feed(srv.port, `POST /sns HTTP/1.1\r\n${H}\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n`, { ms: 1000 });
  assert.match(post1, /^HTTP\/1\.1 100 Continue\r\n\r\n/, JSON.stringify(post1));
  // pipelined: a good request, then a bad one: the first is answered, then 400
  const piped = await feed(srv.port, `GET /healthz HTTP/1.1\r\n${H}\r\n\r\nGET /healthz HTTP/1.1\n${H}\n\n`);
  assert.deepEqual([...piped.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => m[1]), ['200', '400']);
  assert.equal((await get(srv.url, '/healthz')).status, 200);
  await srv.stop();
});
