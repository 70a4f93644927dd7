// lib.mjs - helpers for the end-to-end tests: start the real build/seslog on
// a free port with a temp database, sign SNS envelopes with the test key,
// speak HTTP to it, read its SQLite file with the sqlite3 CLI, and stand in
// for sns.<region>.amazonaws.com with a local HTTPS server.
//
// The binary is $SESLOG_BIN (relative to the repo root or absolute), default
// build/seslog, so the same tests run against the sanitizer build.

import { spawn, execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { after } from 'node:test';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BIN = process.env.SESLOG_BIN
  ? path.resolve(ROOT, process.env.SESLOG_BIN)
  : path.join(ROOT, 'build', 'seslog');
export const FIXTURES = path.join(ROOT, 'tests', 'fixtures');
export const PKI = path.join(FIXTURES, 'pki');

export const SIGNING_CERT_NAME = 'SimpleNotificationService-0123456789abcdef0123456789abcdef.pem';
export const SIGNING_CERT_PATH = path.join(PKI, SIGNING_CERT_NAME);
export const SIGNING_CERT_URL = `https://sns.us-east-1.amazonaws.com/${SIGNING_CERT_NAME}`;
export const SIGNING_KEY = fs.readFileSync(path.join(PKI, 'signing.key'), 'utf8');
export const CA_FILE = path.join(PKI, 'ca.pem');
export const DEFAULT_TOPIC = 'arn:aws:sns:us-east-1:123456789012:ses-events';

// Hosts the tests' envelopes and the AWS fixtures point at. Unless a test
// routes them to its own stand-in server, every server is started with
// these mapped to a closed local port, so that nothing ever leaves
// 127.0.0.1 even if the server fetches when it should not.
export const SNS_HOSTS = ['sns.us-east-1.amazonaws.com', 'sns.us-west-2.amazonaws.com'];
export const BLACKHOLE = SNS_HOSTS.map((h) => `${h}:443:127.0.0.1:1`);

const KEEP = process.env.SESLOG_E2E_KEEP === '1';
const tempDirs = [];
const children = new Set();

// A server a test forgot to stop would keep the test file's process alive
// forever. Once the file's tests and their own after-hooks had time to stop
// their servers (stop() waits up to 15 s), kill what is left. Only under the
// test runner: scripts importing this file get no root test.
if (process.env.NODE_TEST_CONTEXT || /\.test\.m?js$/.test(process.argv[1] ?? '')) {
  after(() => {
    const timer = setTimeout(() => {
      for (const c of children) {
        process.stderr.write(`lib.mjs: killing leftover process ${c.pid} (${c.spawnargs.slice(0, 2).join(' ')}); a test did not stop it\n`);
        try { c.kill('SIGKILL'); } catch { /* gone */ }
      }
    }, 20000);
    timer.unref();
  });
}

process.on('exit', () => {
  for (const c of children) {
    try { c.kill('SIGKILL'); } catch { /* already gone */ }
  }
  if (!KEEP) for (const d of tempDirs) fs.rmSync(d, { recursive: true, force: true });
});

/** A fixture directory under tests/fixtures. */
export function fixtureDir(sub) {
  return path.join(FIXTURES, sub);
}

/** Every SES document among the fixtures, each with its file's name: the
 * bare SES JSON of fixtures/ses and the Message of each untampered SNS
 * notification of fixtures/sns. */
export function sesDocuments() {
  const docs = [];
  const ses = fixtureDir('ses');
  for (const f of fs.readdirSync(ses).sort()) docs.push({ name: f, doc: JSON.parse(fs.readFileSync(path.join(ses, f), 'utf8')) });
  const sns = fixtureDir('sns');
  for (const f of fs.readdirSync(sns).sort()) {
    if (f.includes('TAMPERED')) continue;
    const env = JSON.parse(fs.readFileSync(path.join(sns, f), 'utf8'));
    if (env.Type !== 'Notification') continue;
    let msg;
    try { msg = JSON.parse(env.Message); } catch { continue; }
    if (msg && (msg.notificationType || msg.eventType)) docs.push({ name: f, doc: msg });
  }
  return docs;
}

/** A new temp directory, removed when the test process exits. */
export function tempDir(prefix = 'seslog-e2e-') {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  tempDirs.push(d);
  return d;
}

/** The real AWS certificates of tests/fixtures/certs. */
export function awsCertPaths() {
  const d = fixtureDir('certs');
  return fs.readdirSync(d).filter((f) => f.endsWith('.pem')).sort().map((f) => path.join(d, f));
}

/** Default certificates for a cert dir: the test signing cert and the two AWS certs. */
export function defaultCerts() {
  return [SIGNING_CERT_PATH, ...awsCertPaths()];
}

function childEnv(extra) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith('SESLOG_')) env[k] = v; // never leak the runner's settings
  }
  return { ...env, ...extra };
}

function waitExit(child, ms) {
  return new Promise((resolve, reject) => {
    if (child.exitCode !== null || child.signalCode !== null) {
      resolve({ code: child.exitCode, signal: child.signalCode });
      return;
    }
    const timer = setTimeout(() => reject(new Error(`process ${child.pid} did not exit within ${ms} ms`)), ms);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal });
    });
  });
}

/**
 * Starts `seslog serve` on 127.0.0.1:0 with a temp database and cert dir.
 *
 * opts.args       extra arguments
 * opts.env        extra environment
 * opts.certs      files copied into the cert dir (default: defaultCerts(); [] for empty)
 * opts.connectTo  --connect-to values (default: BLACKHOLE)
 * opts.db         database path (default <dir>/seslog.db)
 * opts.certDirFlag false: no --sns-cert-dir flag (certDir is still filled)
 * opts.dir        reuse this directory (restart on the same db and cert dir)
 * opts.t          a node:test context: the server is killed after the test
 * opts.startTimeout ms to wait for the listening line (default 15000)
 * opts.listeners  how many "listening" lines to wait for (default 1; 2 with --sns-listen)
 *
 * Returns {port, url, ports, listenLines, dir, db, certDir, child, stderr, stdout, stop(), kill(), exited}.
 */
export async function startServer(opts = {}) {
  const { args = [], env = {}, t, startTimeout = 15000 } = opts;
  const dir = opts.dir ?? tempDir();
  const db = opts.db ?? path.join(dir, 'seslog.db');
  const certDir = path.join(dir, 'certs');
  const fresh = !fs.existsSync(certDir);
  fs.mkdirSync(certDir, { recursive: true });
  if (fresh || opts.certs) {
    for (const c of opts.certs ?? defaultCerts()) {
      fs.copyFileSync(c, path.join(certDir, path.basename(c)));
    }
  }
  const connectTo = opts.connectTo ?? BLACKHOLE;
  if (!fs.existsSync(BIN)) throw new Error(`${BIN} does not exist: run make first`);

  const argv = [
    'serve', '--listen', '127.0.0.1:0', '--db', db,
    ...(opts.certDirFlag === false ? [] : ['--sns-cert-dir', certDir]),
    '--log-level', 'debug',
    ...connectTo.flatMap((c) => ['--connect-to', c]),
    ...args,
  ];
  const child = spawn(BIN, argv, { env: childEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => {
    children.delete(child);
    resolve({ code, signal });
  }));

  const srv = {
    child, dir, db, certDir, argv, exited,
    stderr: '', stdout: '',
    port: 0, url: '',
    async stop(ms = 15000) {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const r = await waitExit(child, ms).catch(async (e) => {
        child.kill('SIGKILL');
        await exited;
        throw e;
      });
      assert.equal(r.signal, null, `server killed by ${r.signal}; stderr:\n${tail(srv.stderr)}`);
      assert.equal(r.code, 0, `server exit code ${r.code} after SIGTERM; stderr:\n${tail(srv.stderr)}`);
      assert.doesNotMatch(srv.stderr, /AddressSanitizer|LeakSanitizer|runtime error:/,
        `sanitizer report in the server's stderr:\n${tail(srv.stderr, 80)}`);
      return r;
    },
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      return exited;
    },
  };
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');
  child.stdout.on('data', (d) => { srv.stdout += d; });
  if (t) t.after(() => srv.kill());

  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new Error(`no "listening" log line within ${startTimeout} ms; stderr:\n${tail(srv.stderr)}`));
    }, startTimeout);
    const want = opts.listeners ?? 1;
    const onData = (d) => {
      srv.stderr += d;
      const re = /^.*\blevel=info msg="?listening"? .*?\baddr="?127\.0\.0\.1:(\d+).*$/gm;
      const found = [...srv.stderr.matchAll(re)];
      if (found.length >= want) {
        clearTimeout(timer);
        srv.ports = found.map((m) => Number(m[1]));
        srv.listenLines = found.map((m) => m[0]);
        srv.port = srv.ports[0];
        srv.url = `http://127.0.0.1:${srv.port}`;
        child.off('exit', onExit);
        resolve();
      }
    };
    const onExit = (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`seslog exited (code ${code}, signal ${signal}) before listening; ` +
        `argv: ${argv.join(' ')}\nstderr:\n${tail(srv.stderr)}`));
    };
    child.stderr.on('data', onData);
    child.once('exit', onExit);
    child.once('error', (e) => { clearTimeout(timer); reject(new Error(`cannot start ${BIN}: ${e.message}`)); });
  });
  // keep accumulating after the listening line
  child.stderr.removeAllListeners('data');
  child.stderr.on('data', (d) => { srv.stderr += d; });
  return srv;
}

export function tail(s, n = 40) {
  return s.split('\n').slice(-n).join('\n');
}

/** The string SNS signs (SNS documentation, "Verifying the signatures"). */
export function canonicalString(env) {
  const keys = env.Type === 'Notification'
    ? ['Message', 'MessageId', 'Subject', 'Timestamp', 'TopicArn', 'Type']
    : ['Message', 'MessageId', 'SubscribeURL', 'Timestamp', 'Token', 'TopicArn', 'Type'];
  let s = '';
  for (const k of keys) {
    if (k === 'Subject' && (env.Subject === undefined || env.Subject === null)) continue;
    s += `${k}\n${env[k]}\n`;
  }
  return s;
}

/** Signs env (an envelope object) in place with signing.key, returns it. */
export function signInPlace(env, key = SIGNING_KEY) {
  const algo = String(env.SignatureVersion) === '2' ? 'sha256' : 'sha1';
  env.Signature = crypto.sign(algo, Buffer.from(canonicalString(env), 'utf8'), key).toString('base64');
  return env;
}

/**
 * Builds and signs an SNS envelope (an object, keys in SNS's order).
 * message may be an object (JSON-encoded) or a string.
 */
export function signEnvelope({
  type = 'Notification',
  message,
  topicArn = DEFAULT_TOPIC,
  subject,
  timestamp = new Date().toISOString(),
  messageId = crypto.randomUUID(),
  signatureVersion = '1',
  certUrl = SIGNING_CERT_URL,
  token,
  subscribeUrl,
  unsubscribeUrl,
  key = SIGNING_KEY,
} = {}) {
  const msg = typeof message === 'string' ? message : JSON.stringify(message);
  const host = new URL(certUrl).host;
  const env = { Type: type, MessageId: messageId };
  if (type !== 'Notification') {
    env.Token = token ?? crypto.randomBytes(64).toString('hex');
  }
  env.TopicArn = topicArn;
  if (type === 'Notification' && subject !== undefined) env.Subject = subject;
  env.Message = msg;
  if (type !== 'Notification') {
    env.SubscribeURL = subscribeUrl ??
      `https://${host}/?Action=ConfirmSubscription&TopicArn=${topicArn}&Token=${env.Token}`;
  }
  env.Timestamp = timestamp;
  env.SignatureVersion = String(signatureVersion);
  env.Signature = '';
  env.SigningCertURL = certUrl;
  if (type === 'Notification') {
    env.UnsubscribeURL = unsubscribeUrl ??
      `https://${host}/?Action=Unsubscribe&SubscriptionArn=${topicArn}:${crypto.randomUUID()}`;
  }
  return signInPlace(env, key);
}

export const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

/**
 * One HTTP request. body: object (JSON-encoded), string or Buffer.
 * Envelope objects also get the x-amz-sns-* headers SNS sends.
 * Returns {status, headers, text, json}; json is undefined when the body is not JSON.
 */
export function request(url, method, p, body, headers = {}, opts = {}) {
  return new Promise((resolve, reject) => {
    let data = null;
    const h = { ...headers };
    if (body !== undefined && body !== null) {
      if (Buffer.isBuffer(body)) data = body;
      else if (typeof body === 'string') data = Buffer.from(body, 'utf8');
      else {
        data = Buffer.from(JSON.stringify(body), 'utf8');
        if (body && typeof body === 'object' && !Array.isArray(body) && body.Type) {
          h['x-amz-sns-message-type'] ??= String(body.Type);
          if (body.MessageId) h['x-amz-sns-message-id'] ??= String(body.MessageId);
          if (body.TopicArn) h['x-amz-sns-topic-arn'] ??= String(body.TopicArn);
        }
      }
      h['content-type'] ??= 'text/plain; charset=UTF-8';
      if (!opts.chunked) h['content-length'] = data.length;
    }
    let answered = false;
    const req = http.request(new URL(p, url), {
      method,
      headers: h,
      agent: opts.agent === undefined ? agent : opts.agent,
      timeout: opts.timeout ?? 30000,
    }, (res) => {
      answered = true;
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json;
        try { json = JSON.parse(text); } catch { json = undefined; }
        resolve({ status: res.statusCode, headers: res.headers, text, json });
      });
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${p}: no answer within ${opts.timeout ?? 30000} ms`)));
    req.on('error', (e) => { if (!answered) reject(e); });
    if (data) {
      if (opts.chunked) {
        const step = 64 * 1024;
        for (let i = 0; i < data.length; i += step) req.write(data.subarray(i, i + step));
      } else {
        req.write(data);
      }
    }
    req.end();
  });
}

export function post(url, p, body, headers = {}, opts = {}) {
  return request(url, 'POST', p, body, headers, opts);
}

export function get(url, p, headers = {}, opts = {}) {
  return request(url, 'GET', p, undefined, headers, opts);
}

/** Runs `sqlite3 -json db sql` and returns the parsed rows ([] for none). */
export function sqlite(db, sql) {
  return new Promise((resolve, reject) => {
    execFile('sqlite3', ['-json', '-cmd', '.timeout 5000', db, sql], { maxBuffer: 256 << 20 },
      (err, stdout, stderr) => {
        if (err) {
          reject(new Error(`sqlite3 ${db} "${sql}" failed: ${stderr || err.message}`));
          return;
        }
        const out = stdout.trim();
        resolve(out === '' ? [] : JSON.parse(out));
      });
  });
}

/** count(*) of SesEventMessages (optionally with a WHERE clause). */
export async function countEvents(db, where = '') {
  const rows = await sqlite(db, `SELECT count(*) AS n FROM SesEventMessages ${where}`);
  return rows[0].n;
}

/** SQL string literal. */
export function q(s) {
  return `'${String(s).replace(/'/g, "''")}'`;
}

/** tests/fixtures/ses/NAME parsed (".json" optional). */
export function sesFixture(name) {
  return JSON.parse(sesFixtureText(name));
}

export function sesFixtureText(name) {
  const f = name.endsWith('.json') ? name : `${name}.json`;
  return fs.readFileSync(path.join(fixtureDir('ses'), f), 'utf8');
}

export function snsFixtureText(name) {
  const f = name.endsWith('.json') ? name : `${name}.json`;
  return fs.readFileSync(path.join(fixtureDir('sns'), f), 'utf8');
}

export function snsFixtureNames() {
  return fs.readdirSync(fixtureDir('sns')).filter((f) => f.endsWith('.json')).sort();
}

export function sesFixtureNames() {
  return fs.readdirSync(fixtureDir('ses')).filter((f) => f.endsWith('.json')).sort();
}

/** The type an SES document carries. */
export function sesType(ses) {
  return ses.notificationType ?? ses.eventType;
}

/** "YYYY-MM-DDTHH:MM:SS.mmmZ" of any ISO-8601 time. */
export function isoMs(s) {
  const d = new Date(s);
  if (Number.isNaN(d.getTime())) throw new Error(`bad time ${s}`);
  return d.toISOString();
}

/** A distinct bounce notification (new mail.messageId and feedbackId). */
export function uniqueBounce(tag = crypto.randomUUID()) {
  const ses = sesFixture('ses-notification-bounce-with-dsn-awsdocs');
  ses.mail.messageId = `bounce-${tag}`;
  ses.bounce.feedbackId = `feedback-${tag}`;
  return ses;
}

/** Asserts an error answer: status, and a body {"error":{"code","message"}}. */
export function assertError(res, status, code) {
  assert.equal(res.status, status, `expected ${status}, got ${res.status}: ${res.text}`);
  assert.ok(res.json && typeof res.json === 'object', `error body is not JSON: ${res.text}`);
  assert.ok(res.json.error && typeof res.json.error === 'object', `no "error" object: ${res.text}`);
  const e = res.json.error;
  assert.equal(typeof e.code, 'string', `error.code missing: ${res.text}`);
  assert.match(e.code, /^[a-z][a-z0-9]*(_[a-z0-9]+)*$/, `error.code not snake_case: ${res.text}`);
  assert.equal(typeof e.message, 'string', `error.message missing: ${res.text}`);
  assert.ok(e.message.trim().length > 0, `error.message empty: ${res.text}`);
  assert.ok(!/[\r\n]/.test(e.message), `error.message has CR/LF: ${res.text}`);
  if (code !== undefined) assert.equal(e.code, code, `error code: ${res.text}`);
}

/** Asserts 200 with {"status": status}. */
export function assertStatus(res, status) {
  assert.equal(res.status, 200, `expected 200 "${status}", got ${res.status}: ${res.text}`);
  assert.ok(res.json && typeof res.json === 'object', `body is not JSON: ${res.text}`);
  assert.equal(res.json.status, status, `status field: ${res.text}`);
}

/**
 * A local HTTPS server standing in for sns.<region>.amazonaws.com, with
 * server.pem/server.key. It serves the test signing cert at its path and
 * answers ConfirmSubscription/Unsubscribe GETs. mode: 'ok' | 'fail' (500)
 * | 'hang' (never answers) | 'redirect' (302 to another path that would
 * serve the cert). Every request is recorded in .requests.
 *
 * Returns {port, requests, setMode(m), connectTo (args for seslog), args, close()}.
 */
export async function startCertServer({ mode = 'ok', files } = {}) {
  const served = files ?? { [`/${SIGNING_CERT_NAME}`]: fs.readFileSync(SIGNING_CERT_PATH) };
  const state = { mode, requests: [], hanging: new Set() };
  const server = https.createServer({
    cert: fs.readFileSync(path.join(PKI, 'server.pem')),
    key: fs.readFileSync(path.join(PKI, 'server.key')),
  }, (req, res) => {
    const u = new URL(req.url, 'https://stand-in');
    state.requests.push({ method: req.method, path: u.pathname, url: req.url, host: req.headers.host, mode: state.mode });
    req.resume();
    if (u.pathname.startsWith('/redirected/')) {
      // only reached when a client follows the redirect
      const body = served[u.pathname.slice('/redirected'.length)];
      if (body) { res.writeHead(200, { 'content-type': 'application/x-pem-file' }); res.end(body); return; }
    }
    if (state.mode === 'fail') {
      res.writeHead(500, { 'content-type': 'text/plain' });
      res.end('internal error\n');
      return;
    }
    if (state.mode === 'hang') {
      state.hanging.add(res);
      return;
    }
    if (state.mode === 'redirect' && served[u.pathname]) {
      res.writeHead(302, { location: `https://${req.headers.host}/redirected${u.pathname}` });
      res.end();
      return;
    }
    if (served[u.pathname]) {
      res.writeHead(200, { 'content-type': 'application/x-pem-file' });
      res.end(served[u.pathname]);
      return;
    }
    const action = u.searchParams.get('Action');
    if (u.pathname === '/' && action === 'ConfirmSubscription') {
      const topic = u.searchParams.get('TopicArn') ?? 'arn:aws:sns:us-east-1:123456789012:unknown';
      res.writeHead(200, { 'content-type': 'text/xml' });
      res.end(`<ConfirmSubscriptionResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/">
  <ConfirmSubscriptionResult><SubscriptionArn>${topic}:${crypto.randomUUID()}</SubscriptionArn></ConfirmSubscriptionResult>
  <ResponseMetadata><RequestId>${crypto.randomUUID()}</RequestId></ResponseMetadata>
</ConfirmSubscriptionResponse>`);
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('not found\n');
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = server.address().port;
  const connectTo = SNS_HOSTS.map((h) => `${h}:443:127.0.0.1:${port}`);
  return {
    port,
    requests: state.requests,
    connectTo,
    args: ['--ca-file', CA_FILE],
    setMode(m) { state.mode = m; },
    certGets() {
      return state.requests.filter((r) => r.method === 'GET' && r.path.endsWith('.pem'));
    },
    async close() {
      for (const r of state.hanging) r.destroy();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** Resolves after ms. */
export function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * Runs `seslog ARGS` (not serve) to completion. input: text for stdin.
 * Returns {code, signal, stdout, stderr}.
 */
export function runSeslog(args, { input, env = {}, timeout = 60000 } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(BIN, args, { env: childEnv(env), stdio: ['pipe', 'pipe', 'pipe'] });
    children.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`seslog ${args.join(' ')} did not finish within ${timeout} ms; stderr:\n${tail(stderr)}`));
    }, timeout);
    child.on('error', (e) => { clearTimeout(timer); reject(e); });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      children.delete(child);
      resolve({ code, signal, stdout, stderr });
    });
    child.stdin.on('error', () => { /* the child may exit without reading */ });
    if (input !== undefined) child.stdin.end(input);
    else child.stdin.end();
  });
}

/** The domain of a recipients or suppression row as the schema comment
 * (versions 23, 24) gives it to sqlite3 users; t: the alias with its dot. */
export function domainSql(t = '') {
  return `coalesce(${t}oddDomain, substr(${t}address, instr(${t}address, '@') + 1))`;
}

/** The name of a suppression entry's reason from its stored code (schema
 * version 25), as the schema's comment gives it; t prefixes the column. */
export function reasonSql(t = '') {
  return `CASE ${t}reason WHEN 0 THEN 'BOUNCE' WHEN 1 THEN 'COMPLAINT' WHEN 2 THEN 'MANUAL' ELSE ${t}reason END`;
}

/** A suppression entry's messageId and note as seslog reads them (schema
 * version 25: NULL where its event gives them), as the schema's comment
 * gives them; t is the suppression table's alias with its dot. */
export function supMessageIdSql(t = 'suppression.') {
  return `coalesce(${t}messageId, (SELECT e.messageId FROM SesEventMessages e WHERE e.id = ${t}eventId))`;
}
export function supNoteSql(t = 'suppression.') {
  return `coalesce(${t}note, CASE WHEN ${t}messageId IS NULL THEN (SELECT CASE
    WHEN e.notificationType = 'Bounce' AND e.bounceType = 'Permanent'
    THEN 'permanent bounce (' || coalesce(e.bounceSubType, 'no subtype') || ')'
    WHEN e.notificationType = 'Complaint'
    THEN 'complaint (' || coalesce(e.complaintFeedbackType, 'no feedback type') || ')' END
    FROM SesEventMessages e WHERE e.id = ${t}eventId) END)`;
}

/** The name of the actor of a suppression entry's addition from its stored
 * code (schema version 25); t prefixes the column. */
export function addedBySql(t = '') {
  return `CASE ${t}addedBy WHEN 0 THEN 'permanent-bounce' WHEN 1 THEN 'complaint' WHEN 2 THEN 'soft-bounce' ` +
    `WHEN 3 THEN 'api' WHEN 4 THEN 'cli' ELSE ${t}addedBy END`;
}

/** The view of schema version 19 over a suppression table whose columns
 * hold their values whole (every version before 25). */
const SUPPRESSION_VIEW_19 = `CREATE VIEW suppression_history_full AS
  SELECT id, address, at, action, actor, reason, note, messageId, eventId, eventAt
  FROM suppression_history
  UNION ALL
  SELECT NULL, address, addedAt, 'added', addedBy, reason, note, messageId, eventId, lastEventAt
  FROM suppression WHERE addedAt IS NOT NULL;
`;

/** SQL that turns the suppression table of this seslog back into the shape
 * every seslog before schema version 25 wrote: reason and addedBy as text, messageId and
 * note stored whole (as they read), the view of version 24. user_version is
 * left to the caller. */
export const SUPPRESSION_BEFORE_25_SQL = `
DROP VIEW suppression_history_full;
ALTER TABLE suppression RENAME TO s25;
CREATE TABLE suppression (
  address TEXT PRIMARY KEY, id INTEGER NOT NULL UNIQUE, display TEXT NOT NULL,
  reason TEXT NOT NULL, createdAt INTEGER NOT NULL, lastEventAt INTEGER,
  events INTEGER NOT NULL DEFAULT 0, messageId TEXT, eventId INTEGER, note TEXT,
  ambiguous INTEGER NOT NULL DEFAULT 0, addedAt INTEGER, addedBy TEXT, oddDomain TEXT
) WITHOUT ROWID;
INSERT INTO suppression SELECT address, id, display, ${reasonSql('s.')}, createdAt, lastEventAt,
  events, ${supMessageIdSql('s.')}, eventId, ${supNoteSql('s.')}, ambiguous, addedAt,
  ${addedBySql('s.')}, oddDomain FROM s25 AS s;
DROP TABLE s25;
CREATE INDEX "suppression-reason" ON suppression (reason, id);
CREATE INDEX "suppression-domain" ON suppression
  (coalesce(oddDomain, substr(address, instr(address, '@') + 1)), id);
${SUPPRESSION_VIEW_19}
`;

/** SQL that turns the suppression table of this seslog back into the shape
 * every seslog before schema version 24 wrote: its domain in a column,
 * "suppression-domain" on that column (the view of version 19 with it).
 * user_version is left to the caller. */
export const SUPPRESSION_BEFORE_24_SQL = `${SUPPRESSION_BEFORE_25_SQL}
DROP VIEW suppression_history_full;
ALTER TABLE suppression RENAME TO s24;
CREATE TABLE suppression (
  address TEXT PRIMARY KEY, id INTEGER NOT NULL UNIQUE, display TEXT NOT NULL,
  domain TEXT NOT NULL, reason TEXT NOT NULL, createdAt INTEGER NOT NULL, lastEventAt INTEGER,
  events INTEGER NOT NULL DEFAULT 0, messageId TEXT, eventId INTEGER, note TEXT,
  ambiguous INTEGER NOT NULL DEFAULT 0, addedAt INTEGER, addedBy TEXT
) WITHOUT ROWID;
INSERT INTO suppression SELECT address, id, display, ${domainSql()}, reason, createdAt,
  lastEventAt, events, messageId, eventId, note, ambiguous, addedAt, addedBy FROM s24;
DROP TABLE s24;
CREATE INDEX "suppression-reason" ON suppression (reason, id);
CREATE INDEX "suppression-domain" ON suppression (domain, id);
${SUPPRESSION_VIEW_19}
`;

/** SQL that turns the recipients table of this seslog back into the shape
 * every seslog before schema version 23 wrote: the event's timeStamp and
 * notificationType as text, its domain in a column, the index and the
 * delete triggers of versions 11 and 17. user_version is left to the
 * caller. */
export const RECIPIENTS_BEFORE_23_SQL = `
ALTER TABLE recipients RENAME TO r23;
CREATE TABLE recipients (
  address TEXT NOT NULL,
  timeStamp TEXT NOT NULL,
  eventId INTEGER NOT NULL,
  domain TEXT NOT NULL,
  notificationType TEXT NOT NULL,
  PRIMARY KEY (address, timeStamp, eventId)
) WITHOUT ROWID;
INSERT INTO recipients SELECT r.address, e.timeStamp, r.eventId, ${domainSql('r.')}, e.notificationType
  FROM r23 r JOIN SesEventMessages e ON e.id = r.eventId;
DROP TABLE r23;
CREATE INDEX "recipients-domain" ON recipients (domain, timeStamp, eventId, notificationType);
CREATE TRIGGER "rollup_domain_day-delete" AFTER DELETE ON recipients BEGIN
  UPDATE rollup_domain_day SET recipients = recipients - 1
  WHERE notificationType = OLD.notificationType AND day = substr(OLD.timeStamp, 1, 10)
    AND domain = OLD.domain
    AND bounceType = coalesce((SELECT bounceType FROM SesEventMessages WHERE id = OLD.eventId), '');
END;
CREATE TRIGGER "rollup_recipient-delete" AFTER DELETE ON recipients BEGIN
  UPDATE rollup_recipient_day SET recipients = recipients - 1
  WHERE day = substr(OLD.timeStamp, 1, 10) AND domain = OLD.domain;
  UPDATE rollup_recipient_hour SET recipients = recipients - 1
  WHERE hour = substr(OLD.timeStamp, 1, 13) AND domain = OLD.domain;
END;
`;
