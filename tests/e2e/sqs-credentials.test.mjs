// sqs-credentials.test.mjs - AWS credentials as the AWS tools find them:
// environment, shared credentials and config files with AWS_PROFILE, the
// container credentials endpoint, IMDSv2 with its session token; each with a
// local stand-in, checked through the access key id in the SigV4
// Authorization header of the requests seslog makes (SQS and DynamoDB).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import {
  startServer, signEnvelope, post, tempDir, tail, uniqueBounce, assertStatus, runSeslog,
} from './lib.mjs';
import { awsEnv, waitFor, writeFile } from './sqs-lib.mjs';

const T = { timeout: 60000 };
const QUEUE = 'https://sqs.eu-west-1.amazonaws.com/123456789012/ses-events';

/** An HTTP stand-in on 127.0.0.1: handler(req, body, res); records every request. */
async function standIn(handler) {
  const requests = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      requests.push({ method: req.method, url: req.url, headers: req.headers, body });
      handler(req, body, res);
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${server.address().port}`;
  return {
    url, requests,
    close: () => new Promise((r) => { server.closeAllConnections?.(); server.close(r); }),
  };
}

/** An SQS stand-in: every ReceiveMessage gets no message after 200 ms. */
function sqsStandIn() {
  return standIn((req, body, res) => {
    setTimeout(() => {
      res.writeHead(200, { 'Content-Type': 'application/x-amz-json-1.0' });
      res.end(req.headers['x-amz-target'] === 'AmazonSQS.ReceiveMessage' ? '{"Messages":[]}' : '{}');
    }, 200);
  });
}

/** The access key id and region/service of a SigV4 Authorization header. */
function signedBy(r) {
  const m = /Credential=([^/]+)\/\d{8}\/([^/]+)\/([^/]+)\/aws4_request/.exec(r.headers.authorization ?? '');
  return m ? { key: m[1], region: m[2], service: m[3], token: r.headers['x-amz-security-token'] } : null;
}

async function keyUsed(sqs, srv, want) {
  const r = await waitFor(() => sqs.requests.find((x) => signedBy(x)?.key === want), {
    timeout: 15000,
    what: () => `keys seen: ${JSON.stringify(sqs.requests.map((x) => signedBy(x)))}\n${tail(srv.stderr)}`,
  });
  return signedBy(r);
}

/** Starts seslog polling QUEUE on the stand-in with these variables (none of the runner's). */
async function serveWith(t, sqs, vars) {
  const env = awsEnv({ AWS_ACCESS_KEY_ID: '', AWS_SECRET_ACCESS_KEY: '', ...vars });
  return startServer({ t, env, args: ['--sqs-queue-url', QUEUE, '--sqs-endpoint', sqs.url] });
}

test('environment credentials win over a credentials file; the session token is sent; the region comes from the queue URL', T, async (t) => {
  const sqs = await sqsStandIn();
  t.after(() => sqs.close());
  const dir = tempDir('seslog-creds-');
  const file = writeFile(dir, 'credentials', '[default]\naws_access_key_id = AKIDFROMFILE\naws_secret_access_key = file-secret\n');
  const srv = await serveWith(t, sqs, {
    AWS_ACCESS_KEY_ID: 'AKIDFROMENV', AWS_SECRET_ACCESS_KEY: 'env-secret-value', AWS_SESSION_TOKEN: 'env-session-token',
    AWS_SHARED_CREDENTIALS_FILE: file,
  });
  const s = await keyUsed(sqs, srv, 'AKIDFROMENV');
  assert.deepEqual(s, { key: 'AKIDFROMENV', region: 'eu-west-1', service: 'sqs', token: 'env-session-token' });
  assert.ok(sqs.requests.every((r) => signedBy(r)?.key === 'AKIDFROMENV'));
  const body = JSON.parse(sqs.requests[0].body);
  assert.equal(body.QueueUrl, QUEUE);
  assert.equal(body.WaitTimeSeconds, 20);
  assert.equal(body.MaxNumberOfMessages, 10);
  assert.equal(sqs.requests[0].headers['content-type'], 'application/x-amz-json-1.0');
  await srv.stop();
  assert.doesNotMatch(srv.stderr, /env-secret-value|env-session-token/);
});

test('shared files: AWS_PROFILE picks the profile; the credentials file wins over the config file', T, async (t) => {
  const sqs = await sqsStandIn();
  t.after(() => sqs.close());
  const dir = tempDir('seslog-creds-');
  const creds = writeFile(dir, 'credentials', [
    '[default]', 'aws_access_key_id = AKIDDEFAULT', 'aws_secret_access_key = default-secret', '',
    '[work]', 'aws_access_key_id=AKIDWORKCREDS', 'aws_secret_access_key=work-secret', 'aws_session_token = work-token', '',
  ].join('\n'));
  const config = writeFile(dir, 'config', [
    '[profile work]', 'aws_access_key_id = AKIDWORKCONFIG', 'aws_secret_access_key = x', '',
    '[profile ops]', 'region = eu-west-1', 'aws_access_key_id = AKIDOPSCONFIG', 'aws_secret_access_key = ops-secret', '',
  ].join('\n'));
  let srv = await serveWith(t, sqs, { AWS_SHARED_CREDENTIALS_FILE: creds, AWS_CONFIG_FILE: config, AWS_PROFILE: 'work' });
  assert.equal((await keyUsed(sqs, srv, 'AKIDWORKCREDS')).token, 'work-token');
  const src = (await (await fetch(`${srv.url}/api/sources`)).json()).credentials;
  assert.deepEqual(src, { source: 'shared-credentials-file', accessKeyId: 'AKIDWORKCREDS', error: null });
  await srv.stop();
  sqs.requests.length = 0;
  srv = await serveWith(t, sqs, { AWS_SHARED_CREDENTIALS_FILE: creds, AWS_CONFIG_FILE: config, AWS_PROFILE: 'ops' });
  assert.equal((await keyUsed(sqs, srv, 'AKIDOPSCONFIG')).token, undefined);
  await srv.stop();
  sqs.requests.length = 0;
  // ~/.aws/credentials when no variable names a file
  const home = tempDir('seslog-home-');
  writeFile(dir, 'x', '');
  await import('node:fs').then((fs) => {
    fs.mkdirSync(path.join(home, '.aws'));
    fs.copyFileSync(creds, path.join(home, '.aws', 'credentials'));
  });
  srv = await serveWith(t, sqs, { HOME: home });
  await keyUsed(sqs, srv, 'AKIDDEFAULT');
  await srv.stop();
  // a profile that does not exist stops the start with one line
  const r = await runSeslog(['serve', '--listen', '127.0.0.1:0', '--db', path.join(dir, 'x.db'), '--sqs-queue-url', QUEUE],
    { env: awsEnv({ AWS_ACCESS_KEY_ID: '', AWS_SECRET_ACCESS_KEY: '', AWS_SHARED_CREDENTIALS_FILE: creds, AWS_PROFILE: 'nope' }) });
  assert.equal(r.code, 2, r.stderr);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.match(r.stderr, /AWS_PROFILE nope has no aws_access_key_id/);
});

test('container credentials: the authorization token from its file; fetched again before they expire', T, async (t) => {
  const sqs = await sqsStandIn();
  t.after(() => sqs.close());
  let n = 0;
  const agent = await standIn((req, body, res) => {
    if (req.url !== '/v2/credentials/abc' || req.headers.authorization !== 'Bearer container-token-1') {
      res.writeHead(401);
      res.end('no');
      return;
    }
    n++;
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({
      AccessKeyId: `AKIDCONTAINER${n}`, SecretAccessKey: `container-secret-${n}`, Token: `container-session-${n}`,
      // short lives: refreshed halfway
      Expiration: new Date(Date.now() + 4000).toISOString(),
    }));
  });
  t.after(() => agent.close());
  const dir = tempDir('seslog-creds-');
  const tokenFile = writeFile(dir, 'token', 'Bearer container-token-1\n');
  const srv = await serveWith(t, sqs, {
    AWS_CONTAINER_CREDENTIALS_FULL_URI: `${agent.url}/v2/credentials/abc`,
    AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: tokenFile,
    AWS_CONTAINER_AUTHORIZATION_TOKEN: 'Bearer wrong-token-file-wins',
    AWS_EC2_METADATA_DISABLED: '',
    AWS_EC2_METADATA_SERVICE_ENDPOINT: 'http://127.0.0.1:1', // never asked: the container comes first
  });
  assert.equal((await keyUsed(sqs, srv, 'AKIDCONTAINER1')).token, 'container-session-1');
  assert.equal((await keyUsed(sqs, srv, 'AKIDCONTAINER2')).token, 'container-session-2');
  const src = (await (await fetch(`${srv.url}/api/sources`)).json()).credentials;
  assert.equal(src.source, 'container');
  await srv.stop();
  assert.doesNotMatch(srv.stderr, /container-secret|container-session|container-token/);
});

test('IMDSv2: a session token first, then the role credentials with it; AWS_EC2_METADATA_SERVICE_ENDPOINT; also for DynamoDB', T, async (t) => {
  const sqs = await sqsStandIn();
  t.after(() => sqs.close());
  const ddb = await standIn((req, body, res) => {
    res.writeHead(200, { 'Content-Type': 'application/x-amz-json-1.0' });
    res.end('{"UnprocessedItems":{}}');
  });
  t.after(() => ddb.close());
  const imds = await standIn((req, body, res) => {
    if (req.method === 'PUT' && req.url === '/latest/api/token') {
      if (!req.headers['x-aws-ec2-metadata-token-ttl-seconds']) { res.writeHead(400); res.end(); return; }
      res.writeHead(200);
      res.end('imds-session-token');
      return;
    }
    if (req.headers['x-aws-ec2-metadata-token'] !== 'imds-session-token') { res.writeHead(401); res.end(); return; }
    if (req.url === '/latest/meta-data/iam/security-credentials/') { res.writeHead(200); res.end('seslog-role\n'); return; }
    if (req.url === '/latest/meta-data/iam/security-credentials/seslog-role') {
      res.writeHead(200);
      res.end(JSON.stringify({ Code: 'Success', AccessKeyId: 'AKIDFROMIMDS', SecretAccessKey: 'imds-secret',
        Token: 'imds-role-session', Expiration: new Date(Date.now() + 3600e3).toISOString() }));
      return;
    }
    res.writeHead(404);
    res.end();
  });
  t.after(() => imds.close());
  const env = awsEnv({
    AWS_ACCESS_KEY_ID: '', AWS_SECRET_ACCESS_KEY: '', AWS_EC2_METADATA_DISABLED: '',
    AWS_EC2_METADATA_SERVICE_ENDPOINT: imds.url, AWS_REGION: 'us-east-1', AWS_ENDPOINT_URL_DYNAMODB: ddb.url,
    AWS_ENDPOINT_URL: 'http://127.0.0.1:1', // the service variables win over it
    AWS_ENDPOINT_URL_SQS: sqs.url,
  });
  const srv = await startServer({ t, env, args: ['--sqs-queue-url', QUEUE, '--dynamodb-table', 'SesEventMessages'] });
  const s = await keyUsed(sqs, srv, 'AKIDFROMIMDS');
  assert.equal(s.token, 'imds-role-session');
  assert.equal(imds.requests[0].method, 'PUT', 'IMDSv1 (no session token) was tried first');
  // the first GET without the token would have failed: every GET carried it
  assert.ok(imds.requests.filter((r) => r.method === 'GET').every((r) => r.headers['x-aws-ec2-metadata-token'] === 'imds-session-token'));
  // DynamoDB replication signs with the same credentials
  assertStatus(await post(srv.url, '/sns', signEnvelope({ message: uniqueBounce() })), 'stored');
  const w = await waitFor(() => ddb.requests.find((r) => r.headers['x-amz-target'] === 'DynamoDB_20120810.BatchWriteItem'),
    { timeout: 15000, what: () => tail(srv.stderr) });
  assert.deepEqual(signedBy(w), { key: 'AKIDFROMIMDS', region: 'us-east-1', service: 'dynamodb', token: 'imds-role-session' });
  await srv.stop();
  assert.doesNotMatch(srv.stderr, /imds-secret|imds-role-session|imds-session-token/);
});

test('--sqs-endpoint wins over AWS_ENDPOINT_URL_SQS; half-set environment credentials stop the start', T, async (t) => {
  const sqs = await sqsStandIn();
  t.after(() => sqs.close());
  const srv = await startServer({
    t,
    env: awsEnv({ AWS_ACCESS_KEY_ID: 'AKIDFLAGWINS', AWS_SECRET_ACCESS_KEY: 's', AWS_ENDPOINT_URL_SQS: 'http://127.0.0.1:1' }),
    args: ['--sqs-queue-url', QUEUE, '--sqs-endpoint', sqs.url],
  });
  await keyUsed(sqs, srv, 'AKIDFLAGWINS');
  await srv.stop();
  const dir = tempDir('seslog-creds-');
  const r = await runSeslog(['serve', '--listen', '127.0.0.1:0', '--db', path.join(dir, 'x.db'), '--sqs-queue-url', QUEUE],
    { env: awsEnv({ AWS_SECRET_ACCESS_KEY: '' }) });
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY/);
  const bad = await runSeslog(['serve', '--listen', '127.0.0.1:0', '--db', path.join(dir, 'y.db'), '--sqs-queue-url', 'https://example.com/'],
    { env: awsEnv() });
  assert.equal(bad.code, 2, bad.stderr);
  assert.match(bad.stderr, /not a queue URL/);
  const zero = await runSeslog(['serve', '--listen', '127.0.0.1:0', '--db', path.join(dir, 'z.db'), '--sqs-queue-url', QUEUE, '--sqs-pollers', '0'],
    { env: awsEnv() });
  assert.equal(zero.code, 2, zero.stderr);
  assert.equal(zero.stderr.trim().split('\n').length, 1, zero.stderr);
  const ro = await runSeslog(['serve', '--listen', '127.0.0.1:0', '--db', srv.db, '--sqs-queue-url', QUEUE, '--read-only'],
    { env: awsEnv() });
  assert.equal(ro.code, 2, ro.stderr);
  assert.match(ro.stderr, /--read-only takes no --sqs-queue-url/);
  // bad input changes nothing: no database was created
  for (const f of ['x.db', 'y.db', 'z.db']) assert.ok(!fs.existsSync(path.join(dir, f)), `${f} was created`);
});
