// certfetch.test.mjs - fetching the signing certificate over verified HTTPS
// from a local stand-in for sns.us-east-1.amazonaws.com, caching it in the
// cert dir, and failing safely (no redirects, retryable 503, TLS verified).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import {
  startServer, startCertServer, signEnvelope, post, countEvents, uniqueBounce, assertStatus,
  assertError, SIGNING_CERT_NAME, SIGNING_CERT_PATH, awsCertPaths, get, sleep,
} from './lib.mjs';

const T = { timeout: 60000 };

function fingerprint(pem) {
  return new crypto.X509Certificate(pem).fingerprint256;
}

test('an unknown certificate is fetched once, stored in the cert dir, and reused', T, async (t) => {
  const stand = await startCertServer();
  t.after(() => stand.close());
  const srv = await startServer({ t, certs: [], args: stand.args, connectTo: stand.connectTo });
  const cached = path.join(srv.certDir, SIGNING_CERT_NAME);
  assert.equal(fs.existsSync(cached), false);

  assertStatus(await post(srv.url, '/sns', signEnvelope({ message: uniqueBounce() })), 'stored');
  const gets = stand.certGets();
  assert.equal(gets.length, 1, `cert GETs: ${JSON.stringify(stand.requests)}`);
  assert.equal(gets[0].path, `/${SIGNING_CERT_NAME}`);
  assert.equal(gets[0].host.replace(/:443$/, ''), 'sns.us-east-1.amazonaws.com', 'Host header of the fetch');
  assert.ok(fs.existsSync(cached), 'the fetched certificate was not stored in the cert dir');
  assert.equal(fingerprint(fs.readFileSync(cached)), fingerprint(fs.readFileSync(SIGNING_CERT_PATH)));

  // second notification, both signature versions: no new fetch
  assertStatus(await post(srv.url, '/sns', signEnvelope({ message: uniqueBounce(), signatureVersion: '2' })), 'stored');
  assertStatus(await post(srv.url, '/sns', signEnvelope({ message: uniqueBounce() })), 'stored');
  assert.equal(stand.certGets().length, 1, 'the certificate was fetched again');
  await srv.stop();

  // a restart on the same cert dir uses the stored file
  const again = await startServer({ t, dir: srv.dir, args: stand.args, connectTo: stand.connectTo });
  assertStatus(await post(again.url, '/sns', signEnvelope({ message: uniqueBounce() })), 'stored');
  assert.equal(stand.certGets().length, 1, 'the certificate was fetched again after a restart');
  assert.equal(await countEvents(again.db), 4);
  await again.stop();
});

test('concurrent first notifications share one fetch (or at least all succeed)', T, async (t) => {
  const stand = await startCertServer();
  t.after(() => stand.close());
  const srv = await startServer({ t, certs: [], args: stand.args, connectTo: stand.connectTo });
  const answers = await Promise.all(Array.from({ length: 10 }, () =>
    post(srv.url, '/sns', signEnvelope({ message: uniqueBounce() }), {}, { agent: false })));
  for (const r of answers) assertStatus(r, 'stored');
  assert.ok(stand.certGets().length >= 1);
  assert.equal(await countEvents(srv.db), 10);
  await srv.stop();
});

test('a redirect from the certificate server is not followed', T, async (t) => {
  const stand = await startCertServer({ mode: 'redirect' });
  t.after(() => stand.close());
  const srv = await startServer({ t, certs: [], args: stand.args, connectTo: stand.connectTo });
  const res = await post(srv.url, '/sns', signEnvelope({ message: uniqueBounce() }));
  assert.notEqual(res.status, 200, `a redirected certificate was accepted: ${res.text}`);
  assertError(res, res.status);
  assert.ok(res.status >= 400, String(res.status));
  assert.ok(stand.requests.some((r) => r.path === `/${SIGNING_CERT_NAME}`), 'the certificate was never requested');
  assert.deepEqual(stand.requests.filter((r) => r.path.startsWith('/redirected/')), [], 'the redirect was followed');
  assert.equal(fs.existsSync(path.join(srv.certDir, SIGNING_CERT_NAME)), false);
  assert.equal(await countEvents(srv.db), 0);
  await srv.stop();
});

test('certificate server answering 500: 503 (retryable), nothing stored; a later retry succeeds', T, async (t) => {
  const stand = await startCertServer({ mode: 'fail' });
  t.after(() => stand.close());
  const srv = await startServer({ t, certs: [], args: stand.args, connectTo: stand.connectTo });
  const env = signEnvelope({ message: uniqueBounce() });
  assertError(await post(srv.url, '/sns', env), 503);
  assert.ok(stand.certGets().length >= 1, 'the certificate was never requested');
  assert.equal(fs.existsSync(path.join(srv.certDir, SIGNING_CERT_NAME)), false, 'an error page was stored as certificate');
  assert.equal(await countEvents(srv.db), 0);

  // SNS retries the same envelope once the certificate server is back
  stand.setMode('ok');
  let res;
  for (let i = 0; i < 20; i++) {
    res = await post(srv.url, '/sns', env);
    if (res.status === 200) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  assertStatus(res, 'stored');
  assert.equal(await countEvents(srv.db), 1);
  await srv.stop();
});

test('the certificate server must present a certificate the server trusts (no --ca-file: 503)', T, async (t) => {
  const stand = await startCertServer();
  t.after(() => stand.close());
  // the stand-in's certificate is signed by the test CA, which is not trusted here
  const srv = await startServer({ t, certs: [], connectTo: stand.connectTo });
  assertError(await post(srv.url, '/sns', signEnvelope({ message: uniqueBounce() })), 503);
  assert.equal(stand.certGets().length, 0, 'a GET reached the server despite the untrusted TLS certificate');
  assert.equal(fs.existsSync(path.join(srv.certDir, SIGNING_CERT_NAME)), false);
  assert.equal(await countEvents(srv.db), 0);
  await srv.stop();
});

test('a fetched certificate that does not match the signature is rejected (403) and nothing stored', T, async (t) => {
  // serve the wrong certificate (one of the AWS ones) under the test path
  const aws = fs.readFileSync(awsCertPaths().find((p) => p.endsWith('7506a1e35b36ef5a444dd1a8e7cc3ed8.pem')));
  const stand = await startCertServer({ files: { [`/${SIGNING_CERT_NAME}`]: aws } });
  t.after(() => stand.close());
  const srv = await startServer({ t, certs: [], args: stand.args, connectTo: stand.connectTo });
  const res = await post(srv.url, '/sns', signEnvelope({ message: uniqueBounce(), timestamp: '2026-03-01T00:00:00.000Z' }));
  assertError(res, 403, 'bad_signature');
  assert.equal(await countEvents(srv.db), 0);
  await srv.stop();
});

test('certificate server that hangs: the request fails with 503 in bounded time', { timeout: 90000 }, async (t) => {
  const stand = await startCertServer({ mode: 'hang' });
  t.after(() => stand.close());
  const srv = await startServer({ t, certs: [], args: stand.args, connectTo: stand.connectTo });
  const started = Date.now();
  const pending = post(srv.url, '/sns', signEnvelope({ message: uniqueBounce() }), {}, { agent: false, timeout: 60000 });
  await sleep(500);
  // the server still answers other requests while a fetch hangs
  const health = await get(srv.url, '/healthz', {}, { agent: false, timeout: 5000 });
  assert.equal(health.status, 200, health.text);
  const res = await pending;
  const took = Date.now() - started;
  assertError(res, 503);
  assert.ok(took < 60000, `took ${took} ms`);
  assert.equal(await countEvents(srv.db), 0);
  await srv.stop();
});
