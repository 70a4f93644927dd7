// dynamodb-lib.mjs - helpers for the DynamoDB tests: a real DynamoDB-compatible
// server (dynalite from npm, tests/node_modules) on a loopback port with an
// on-disk store so it survives its own restart, Debian's aws CLI to look at
// it, a proxy in front of it that can answer for it (UnprocessedItems,
// throttling, errors) and checks every request's SigV4 signature, and the
// item the contract expects for an SES event.

import { spawn, execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import assert from 'node:assert/strict';
import { ROOT, startServer, signEnvelope, post, get, tail, sleep, tempDir } from './lib.mjs';

export const TABLE = 'SesEventMessages';
export const AWS_CLI = '/usr/bin/aws'; // Debian's awscli; a pyenv shim may shadow `aws` on PATH
export const AWS_ENV = {
  AWS_ACCESS_KEY_ID: 'AKIDTESTSESLOG',
  AWS_SECRET_ACCESS_KEY: 'test-secret-Xq9zv7s3kL',
  AWS_REGION: 'us-east-1',
};
const DYNALITE = path.join(ROOT, 'tests', 'node_modules', 'dynalite', 'cli.js');
const SCHEMA = path.join(ROOT, 'schema', 'dynamodb-table.json');

/** Why the DynamoDB tests cannot run here, or null. */
export function missingTools() {
  if (!fs.existsSync(DYNALITE)) return 'dynalite is not installed (scripts/install-deps.sh)';
  if (!fs.existsSync(AWS_CLI)) return `${AWS_CLI} is missing (apt-get install awscli)`;
  return null;
}

/** A free loopback port. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

const running = new Set();
process.on('exit', () => {
  for (const c of running) {
    try { c.kill('SIGKILL'); } catch { /* gone */ }
  }
});

/**
 * dynalite on 127.0.0.1:port with its LevelDB store in dir. start() and
 * stop() may be called again: the same port and data.
 */
export async function startDynalite({ dir = tempDir('seslog-dynalite-'), port } = {}) {
  port ??= await freePort();
  const d = {
    port, dir, url: `http://127.0.0.1:${port}`, child: null, log: '',
    async start() {
      const child = spawn(process.execPath, [DYNALITE, '--host', '127.0.0.1', '--port', String(port),
        '--path', path.join(dir, 'data'), '--createTableMs', '0', '--deleteTableMs', '0',
        '--updateTableMs', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
      running.add(child);
      this.child = child;
      child.stdout.setEncoding('utf8');
      child.stderr.setEncoding('utf8');
      child.stderr.on('data', (s) => { this.log += s; });
      await new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`dynalite did not start: ${this.log}`)), 15000);
        child.stdout.on('data', (s) => {
          this.log += s;
          if (/listening/.test(this.log)) { clearTimeout(timer); resolve(); }
        });
        child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`dynalite exited ${code}: ${this.log}`)); });
      });
    },
    async stop() {
      const child = this.child;
      if (!child) return;
      this.child = null;
      if (child.exitCode === null && child.signalCode === null) {
        const gone = new Promise((r) => child.once('exit', r));
        child.kill('SIGKILL');
        await gone;
      }
      running.delete(child);
    },
  };
  await d.start();
  return d;
}

/** Runs `/usr/bin/aws --endpoint-url URL ARGS --output json`; parsed stdout. */
export function aws(endpoint, args) {
  return new Promise((resolve, reject) => {
    execFile(AWS_CLI, ['--endpoint-url', endpoint, '--output', 'json', ...args], {
      env: { PATH: process.env.PATH, HOME: process.env.HOME, ...AWS_ENV, AWS_PAGER: '',
        AWS_EC2_METADATA_DISABLED: 'true' },
      maxBuffer: 256 << 20,
      timeout: 60000,
    }, (err, stdout, stderr) => {
      if (err) { reject(new Error(`aws ${args.join(' ')}: ${stderr || err.message}`)); return; }
      resolve(stdout.trim() ? JSON.parse(stdout) : {});
    });
  });
}

/** Creates a table from schema/dynamodb-table.json (renamed when name is given). */
export async function createTable(endpoint, name = TABLE) {
  let file = SCHEMA;
  if (name !== TABLE) {
    const def = JSON.parse(fs.readFileSync(SCHEMA, 'utf8'));
    def.TableName = name;
    file = path.join(tempDir('seslog-schema-'), 'table.json');
    fs.writeFileSync(file, JSON.stringify(def));
  }
  return aws(endpoint, ['dynamodb', 'create-table', '--cli-input-json', `file://${file}`]);
}

/** Every item of a table (the CLI follows LastEvaluatedKey). */
export async function scanItems(endpoint, name = TABLE) {
  const out = await aws(endpoint, ['dynamodb', 'scan', '--table-name', name]);
  return out.Items ?? [];
}

/** Items keyed "messageId|timeStamp". */
export function byKey(items) {
  const m = new Map();
  for (const it of items) m.set(`${it.messageId.S}|${it.timeStamp.S}`, it);
  return m;
}

/** The item the contract (section 8) expects for an SES event at timeStamp ts. */
export function expectedItem(ses, ts) {
  const type = ses.notificationType ?? ses.eventType;
  const s = (v) => (v === undefined || v === null || v === '' ? undefined : { S: String(v) });
  const dest = (ses.mail.destination ?? []).join(',');
  let attrs;
  if (type === 'Bounce') {
    attrs = {
      messageId: s(ses.mail.messageId), timeStamp: s(ts), reportingMTA: s(ses.bounce.reportingMTA),
      destinationAddress: s(dest), bouncedRecipients: s(JSON.stringify(ses.bounce.bouncedRecipients)),
      notificationType: s(type),
    };
  } else if (type === 'Complaint') {
    attrs = {
      messageId: s(ses.mail.messageId), timeStamp: s(ts),
      complaintFeedbackType: s(ses.complaint.complaintFeedbackType), feedbackId: s(ses.complaint.feedbackId),
      destinationAddress: s(dest), notificationType: s(type),
    };
  } else {
    attrs = {
      messageId: s(ses.mail.messageId), timeStamp: s(ts),
      reportingMTA: s(ses.delivery?.reportingMTA), destinationAddress: s(dest), notificationType: s(type),
    };
  }
  return Object.fromEntries(Object.entries(attrs).filter(([, v]) => v !== undefined));
}

/** Starts seslog replicating to endpoint (extra args and env on top). */
export function startReplicating(endpoint, { args = [], env = {}, table = TABLE, ...rest } = {}) {
  return startServer({
    ...rest,
    args: ['--dynamodb-table', table, '--dynamodb-endpoint', endpoint, ...args],
    env: { ...AWS_ENV, ...env },
  });
}

/** Posts one signed SES event; asserts it was stored. Returns the SNS Timestamp used. */
export async function postEvent(srv, ses, { timestamp = new Date().toISOString() } = {}) {
  const env = signEnvelope({ message: ses, timestamp });
  const res = await post(srv.url, '/sns', env);
  assert.equal(res.status, 200, `POST /sns: ${res.status} ${res.text}`);
  assert.equal(res.json.status, 'stored', `POST /sns: ${res.text}`);
  return new Date(timestamp).toISOString();
}

/** The "dynamodb" entry of /api/diagnostics' outbox. */
export async function replication(srv) {
  const res = await get(srv.url, '/api/diagnostics');
  assert.equal(res.status, 200, res.text);
  assert.ok(res.json.outbox && res.json.outbox.dynamodb, `no outbox.dynamodb in ${res.text}`);
  return res.json.outbox.dynamodb;
}

/** Waits until fn() returns a truthy value (returned), or fails with what(). */
export async function waitFor(fn, { timeout = 20000, every = 100, what = () => '' } = {}) {
  const until = Date.now() + timeout;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > until) throw new Error(`timed out after ${timeout} ms ${await what()}`);
    await sleep(every);
  }
}

/** Waits until the server has nothing pending for DynamoDB. */
export async function drained(srv, timeout = 20000) {
  let last;
  await waitFor(async () => {
    last = await replication(srv);
    return last.pending === 0;
  }, { timeout, what: () => `for the replication to drain: ${JSON.stringify(last)}\n${tail(srv.stderr, 15)}` });
  return last;
}

/** A metric's value from /metrics (labels as written, e.g. '{outcome="ok"}'). */
export async function metric(srv, name, labels = '') {
  const res = await get(srv.url, '/metrics');
  const line = res.text.split('\n').find((l) => l.startsWith(`${name}${labels} `));
  return line === undefined ? undefined : Number(line.split(' ').pop());
}

// ---- SigV4 ------------------------------------------------------------

function hmac(key, s) {
  return crypto.createHmac('sha256', key).update(s, 'utf8').digest();
}

/**
 * Checks an AWS Signature Version 4 Authorization header the way DynamoDB
 * does (dynalite does not). Returns null when it verifies, else the reason.
 */
export function sigv4Problem(req, body, { key = AWS_ENV.AWS_ACCESS_KEY_ID, secret = AWS_ENV.AWS_SECRET_ACCESS_KEY,
  region = AWS_ENV.AWS_REGION, service = 'dynamodb', need = ['host', 'x-amz-date', 'x-amz-target', 'content-type'] } = {}) {
  const auth = req.headers.authorization ?? '';
  const m = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})$/.exec(auth);
  if (!m) return `malformed Authorization: ${auth}`;
  const [, akid, date, reg, svc, signed, signature] = m;
  if (akid !== key) return `access key ${akid}`;
  if (reg !== region || svc !== service) return `scope ${reg}/${svc}`;
  const amzDate = req.headers['x-amz-date'] ?? '';
  if (!amzDate.startsWith(date)) return `x-amz-date ${amzDate} against ${date}`;
  const names = signed.split(';');
  for (const h of need) {
    if (!names.includes(h)) return `${h} is not signed (${signed})`;
  }
  if (req.headers['x-amz-security-token'] !== undefined && !names.includes('x-amz-security-token')) {
    return 'x-amz-security-token is not signed';
  }
  const canonHeaders = names.map((n) => `${n}:${String(req.headers[n] ?? '').trim().replace(/\s+/g, ' ')}\n`).join('');
  const u = new URL(req.url, 'http://x');
  const canonical = [req.method, u.pathname || '/', u.search.slice(1), canonHeaders, signed,
    crypto.createHash('sha256').update(body).digest('hex')].join('\n');
  const scope = `${date}/${reg}/${svc}/aws4_request`;
  const toSign = ['AWS4-HMAC-SHA256', amzDate, scope,
    crypto.createHash('sha256').update(canonical, 'utf8').digest('hex')].join('\n');
  const k = hmac(hmac(hmac(hmac(`AWS4${secret}`, date), reg), svc), 'aws4_request');
  const want = crypto.createHmac('sha256', k).update(toSign, 'utf8').digest('hex');
  return want === signature ? null : 'signature does not verify';
}

// ---- a proxy in front of dynalite --------------------------------------

/**
 * An HTTP proxy to target (dynalite's URL). For every request it checks the
 * SigV4 signature (failures are collected in .sigProblems), records
 * {target: X-Amz-Target action, body: parsed JSON} in .requests, then asks
 * intercept(rec, body) (settable with .intercept; may be async): it returns nothing to
 * forward as is, {forward: newBody} to forward another body, or
 * {status, body} to answer itself, or {status, body, forward: newBody} to
 * forward newBody and answer this instead.
 */
export async function startProxy(target) {
  const t = new URL(target);
  const state = { requests: [], sigProblems: [], intercept: null };
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', async () => {
      const raw = Buffer.concat(chunks);
      const problem = sigv4Problem(req, raw);
      if (problem) state.sigProblems.push(problem);
      let body;
      try { body = JSON.parse(raw.toString('utf8')); } catch { body = null; }
      const rec = { target: String(req.headers['x-amz-target'] ?? '').split('.').pop(), body,
        token: req.headers['x-amz-security-token'] };
      state.requests.push(rec);
      const action = state.intercept ? await state.intercept(rec, body) : undefined;
      let out = raw;
      if (action && action.forward !== undefined) out = Buffer.from(JSON.stringify(action.forward));
      let upstream = null;
      if (!action || action.forward !== undefined) {
        upstream = await new Promise((resolve) => {
          const headers = { ...req.headers, host: t.host, 'content-length': out.length };
          const up = http.request({ host: t.hostname, port: t.port, method: req.method, path: req.url, headers },
            (r) => {
              const parts = [];
              r.on('data', (c) => parts.push(c));
              r.on('end', () => resolve({ status: r.statusCode, headers: r.headers, body: Buffer.concat(parts) }));
            });
          up.on('error', (e) => resolve({ status: 502, headers: {}, body: Buffer.from(String(e)) }));
          up.end(out);
        });
      }
      if (action && action.status !== undefined) {
        const text = typeof action.body === 'string' ? action.body : JSON.stringify(action.body ?? {});
        res.writeHead(action.status, { 'content-type': 'application/x-amz-json-1.0' });
        res.end(text);
        return;
      }
      res.writeHead(upstream.status, { 'content-type': upstream.headers['content-type'] ?? 'application/x-amz-json-1.0' });
      res.end(upstream.body);
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const port = server.address().port;
  return {
    url: `http://127.0.0.1:${port}`,
    requests: state.requests,
    sigProblems: state.sigProblems,
    set intercept(fn) { state.intercept = fn; },
    writes() { return state.requests.filter((r) => r.target === 'BatchWriteItem'); },
    async close() {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}

export { sleep };
