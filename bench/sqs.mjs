// bench/sqs.mjs - the driver of bench/sqs.sh (issue 15).
//
//   node bench/sqs.mjs server            fauxqs on 127.0.0.1, a free port; prints "port N"
//   node bench/sqs.mjs run CACHE ...     the benchmark (see bench/sqs.sh for the knobs)
//
// run: reads the signed SNS envelopes of bench/ingest's cache (build/bench/
// bodies-N.bin), starts fauxqs in a child process, then
//   1. fills queue "plain" with the N envelopes and drains it with a plain
//      receive-and-delete loop (POLLERS loops, each ReceiveMessage of 10 then
//      DeleteMessageBatch of what it got): the server's own throughput;
//   2. fills queue "seslog" with the same N envelopes and starts seslog on it
//      (--sqs-pollers POLLERS, a fresh database): events/s from the start to
//      the moment every message is stored and deleted;
// and prints both, the ratio (target >= 0.8) and seslog's peak RSS. Checks
// that the database holds N events and both queues are empty.

import fs from 'node:fs';
import path from 'node:path';
import { spawn, execFileSync } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const FAUXQS = path.join(ROOT, 'tests', 'node_modules', 'fauxqs', 'dist', 'app.js');

async function server() {
  const { startFauxqs } = await import(pathToFileURL(FAUXQS));
  const s = await startFauxqs({ port: 0, logger: false, host: 'localhost' });
  process.stdout.write(`port ${s.port}\n`);
  process.on('SIGTERM', async () => { await s.stop(); process.exit(0); });
}

/** The bodies of the cached requests (bench/ingest.c's cache format). */
function readBodies(file, limit) {
  const d = fs.readFileSync(file);
  let at = 12 + 4;
  const n = d.readUInt32LE(at);
  at += 4 + 8;
  const skip = () => { const len = d.readUInt32LE(at); at += 4 + len + 1; };
  skip(); // key
  skip(); // certificate
  at += 32;
  const bodies = [];
  for (let i = 0; i < n && bodies.length < limit; i++) {
    const len = d.readUInt32LE(at);
    const req = d.subarray(at + 4, at + 4 + len);
    at += 4 + len + 1;
    const sep = req.indexOf('\r\n\r\n');
    bodies.push(req.subarray(sep + 4).toString('utf8'));
  }
  return bodies;
}

async function call(endpoint, action, body) {
  const res = await fetch(endpoint + '/', {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-amz-json-1.0', 'X-Amz-Target': `AmazonSQS.${action}` },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`${action}: HTTP ${res.status} ${text.slice(0, 200)}`);
  return JSON.parse(text);
}

async function fill(endpoint, url, bodies) {
  let next = 0;
  const worker = async () => {
    while (next < bodies.length) {
      const i = next;
      next += 10;
      const Entries = bodies.slice(i, i + 10).map((b, k) => ({ Id: `e${k}`, MessageBody: b }));
      const r = await call(endpoint, 'SendMessageBatch', { QueueUrl: url, Entries });
      if ((r.Failed ?? []).length) throw new Error(`SendMessageBatch: ${JSON.stringify(r.Failed[0])}`);
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
}

async function depth(endpoint, url) {
  const r = await call(endpoint, 'GetQueueAttributes', {
    QueueUrl: url, AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
  });
  return Number(r.Attributes.ApproximateNumberOfMessages) + Number(r.Attributes.ApproximateNumberOfMessagesNotVisible);
}

/**
 * Drains url with `pollers` loops of ReceiveMessage (the request seslog
 * makes: 10 messages, WaitTimeSeconds `wait`, the receive count) then
 * DeleteMessageBatch. Returns the seconds it took.
 */
async function plainLoop(endpoint, url, n, pollers, wait) {
  let done = 0;
  const loop = async () => {
    while (done < n) {
      const r = await call(endpoint, 'ReceiveMessage', {
        QueueUrl: url, MaxNumberOfMessages: 10, WaitTimeSeconds: wait,
        AttributeNames: ['ApproximateReceiveCount'], MessageSystemAttributeNames: ['ApproximateReceiveCount'],
      });
      const msgs = r.Messages ?? [];
      if (!msgs.length) continue;
      const del = await call(endpoint, 'DeleteMessageBatch', {
        QueueUrl: url, Entries: msgs.map((m, k) => ({ Id: `d${k}`, ReceiptHandle: m.ReceiptHandle })),
      });
      done += (del.Successful ?? []).length;
    }
  };
  const t0 = process.hrtime.bigint();
  await Promise.all(Array.from({ length: pollers }, loop));
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

function sqliteCount(db) {
  try {
    return Number(execFileSync('sqlite3', [db, 'SELECT count(*) FROM SesEventMessages'], { encoding: 'utf8' }).trim());
  } catch {
    return -1;
  }
}

/** CPU seconds (user + system) a process used so far. */
function cpuSeconds(pid) {
  try {
    const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(f[11]) + Number(f[12])) / 100; // clock ticks of 10 ms
  } catch {
    return NaN;
  }
}

function vmHwm(pid) {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

async function run([cache, tmp, certDir, bin, nText, pollersText]) {
  const n = Number(nText);
  const pollers = Number(pollersText);
  const bodies = readBodies(cache, n);
  if (bodies.length !== n) throw new Error(`the cache has ${bodies.length} events, not ${n}`);

  const child = spawn(process.execPath, ['--max-old-space-size=8192', fileURLToPath(import.meta.url), 'server'],
    { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      const m = /port (\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.once('exit', (c) => reject(new Error(`fauxqs exited ${c}`)));
  });
  const endpoint = `http://127.0.0.1:${port}`;
  const mk = async (name) => (await call(endpoint, 'CreateQueue', { QueueName: name, Attributes: { VisibilityTimeout: '120' } })).QueueUrl;
  let status = 0;
  let seslog;
  try {
    // The reference: the same receives as seslog (WaitTimeSeconds 20). For
    // context, short polls too: fauxqs answers a long-poll receive several
    // times slower than a short one even with messages waiting (real SQS
    // answers a long poll at once when messages are there).
    let plainRate = 0;
    let shortRate = 0;
    let cpu0;
    let t;
    for (const wait of [20, 0]) {
      const plainUrl = await mk(`plain-${wait}`);
      t = Date.now();
      await fill(endpoint, plainUrl, bodies);
      console.log(`filled queue "plain-${wait}" with ${n} envelopes in ${((Date.now() - t) / 1000).toFixed(1)} s`);
      cpu0 = cpuSeconds(child.pid);
      const plainS = await plainLoop(endpoint, plainUrl, n, pollers, wait);
      if (wait === 20) plainRate = n / plainS;
      else shortRate = n / plainS;
      console.log(`plain receive-and-delete loop (${pollers} loops, WaitTimeSeconds ${wait}${wait === 20 ? ', as seslog' : ', for context'}): ${n} messages in ${plainS.toFixed(1)} s = ${Math.round(n / plainS)} messages/s; SQS server CPU ${(cpuSeconds(child.pid) - cpu0).toFixed(1)} s`);
      if (await depth(endpoint, plainUrl) !== 0) { console.log('plain: the queue is not empty'); status = 1; }
    }

    const url = await mk('seslog');
    t = Date.now();
    await fill(endpoint, url, bodies);
    console.log(`filled queue "seslog" with ${n} envelopes in ${((Date.now() - t) / 1000).toFixed(1)} s`);
    const db = path.join(tmp, 'seslog.db');
    const env = { ...process.env, AWS_ACCESS_KEY_ID: 'bench', AWS_SECRET_ACCESS_KEY: 'bench-secret', AWS_EC2_METADATA_DISABLED: 'true' };
    for (const k of Object.keys(env)) if (k.startsWith('SESLOG_')) delete env[k];
    cpu0 = cpuSeconds(child.pid);
    const t0 = process.hrtime.bigint();
    seslog = spawn(bin, ['serve', '--listen', '127.0.0.1:0', '--db', db, '--sns-cert-dir', certDir, '--log-level', 'info',
      '--sqs-queue-url', url, '--sqs-endpoint', endpoint, '--sqs-pollers', String(pollers)],
    { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    seslog.stderr.on('data', (d) => { stderr += d; });
    let hwm = 0;
    let left = n;
    const inflight = [];
    const deadline = Date.now() + 30 * 60e3;
    while (left > 0) {
      await new Promise((r) => setTimeout(r, 200));
      hwm = Math.max(hwm, vmHwm(seslog.pid) || 0);
      left = await depth(endpoint, url);
      const port = /msg="?listening"? .*?addr="?127\.0\.0\.1:(\d+)/.exec(stderr)?.[1];
      if (port) {
        const m = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
        const f = /^seslog_sqs_in_flight\{queue="seslog"\} (\d+)$/m.exec(m);
        if (f) inflight.push(Number(f[1]));
      }
      if (seslog.exitCode !== null) throw new Error(`seslog exited ${seslog.exitCode}: ${stderr.slice(-2000)}`);
      if (Date.now() > deadline) throw new Error(`${left} messages left after 30 minutes`);
    }
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    const cpuSqs = cpuSeconds(child.pid) - cpu0;
    const cpuSeslog = cpuSeconds(seslog.pid);
    const port = /msg="?listening"? .*?addr="?127\.0\.0\.1:(\d+)/.exec(stderr)?.[1];
    if (port) {
      const m = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      const calls = [...m.matchAll(/^seslog_sqs_requests_total\{queue="seslog",call="(\w+)"\} (\d+)$/gm)].map((x) => `${x[1]} ${x[2]}`);
      console.log(`seslog's SQS calls: ${calls.join(', ')}; messages in flight (sampled every 200 ms): mean ${Math.round(inflight.reduce((a, b) => a + b, 0) / (inflight.length || 1))}, max ${Math.max(0, ...inflight)}`);
    }
    seslog.kill('SIGTERM');
    await new Promise((r) => seslog.once('exit', r));
    const stored = sqliteCount(db);
    const rate = n / s;
    console.log(`seslog (--sqs-pollers ${pollers}): ${n} messages stored and deleted in ${s.toFixed(1)} s = ${Math.round(rate)} events/s; peak RSS ${hwm.toFixed(0)} MiB; CPU: seslog ${cpuSeslog.toFixed(1)} s, SQS server ${cpuSqs.toFixed(1)} s`);
    console.log(`ratio seslog / plain loop: ${(rate / plainRate).toFixed(2)} (target >= 0.8); ` +
      `against the short-poll loop (context): ${(rate / shortRate).toFixed(2)}`);
    if (stored !== n) { console.log(`seslog stored ${stored} events, not ${n}`); status = 1; }
    if (/level=(warn|error)/.test(stderr)) console.log(`seslog warned:\n${stderr.split('\n').filter((l) => /level=(warn|error)/.test(l)).slice(0, 5).join('\n')}`);
  } finally {
    if (seslog && seslog.exitCode === null) seslog.kill('SIGKILL');
    child.kill('SIGTERM');
  }
  process.exitCode = status;
}

const [mode, ...rest] = process.argv.slice(2);
if (mode === 'server') await server();
else if (mode === 'run') await run(rest);
else {
  console.error('usage: node bench/sqs.mjs server | run CACHE TMP CERT_DIR SESLOG N POLLERS');
  process.exit(2);
}
