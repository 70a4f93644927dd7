// reliability-lib.mjs - helpers of the reliability tests (issue 9):
// raw sockets that speak bytes the Node.js HTTP client would refuse to
// send, a minimal HTTP/1.1 response parser for pipelined answers, the
// server's memory and file descriptors from /proc, a size-limited tmpfs,
// an external sqlite3 holding the write lock, and fast signing.

import { spawn, execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import { SIGNING_KEY, signEnvelope, sleep } from './lib.mjs';

/** The test signing key parsed once: signing with the PEM text re-parses it every time. */
export const SIGNING_KEY_OBJECT = crypto.createPrivateKey(SIGNING_KEY);

/** signEnvelope with the parsed key (about twice as fast). */
export function sign(opts) {
  return signEnvelope({ key: SIGNING_KEY_OBJECT, ...opts });
}

/** The whole request SNS would send for an envelope object, as bytes. */
export function snsRequestBytes(env, { host = '127.0.0.1', extraHeaders = '' } = {}) {
  const body = Buffer.from(JSON.stringify(env), 'utf8');
  const head = 'POST /sns HTTP/1.1\r\n' +
    `Host: ${host}\r\n` +
    'Content-Type: text/plain; charset=UTF-8\r\n' +
    `x-amz-sns-message-type: ${env.Type}\r\n` +
    `x-amz-sns-message-id: ${env.MessageId}\r\n` +
    `x-amz-sns-topic-arn: ${env.TopicArn}\r\n` +
    extraHeaders +
    `Content-Length: ${body.length}\r\n\r\n`;
  return Buffer.concat([Buffer.from(head, 'latin1'), body]);
}

// ---- /proc ---------------------------------------------------------------

/** {rssKiB, hwmKiB} of a process from /proc/PID/status. */
export function memoryOf(pid) {
  const s = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (name) => {
    const m = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(s);
    if (!m) throw new Error(`no ${name} in /proc/${pid}/status`);
    return Number(m[1]);
  };
  return { rssKiB: kib('VmRSS'), hwmKiB: kib('VmHWM') };
}

/** Open file descriptors of a process. */
export function fdCount(pid) {
  return fs.readdirSync(`/proc/${pid}/fd`).length;
}

export const MiB = 1024; // in KiB

// ---- raw sockets -----------------------------------------------------------

/** Connects to 127.0.0.1:port; resolves the socket once connected. */
export function connect(port, { timeout = 10000 } = {}) {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port });
    const timer = setTimeout(() => { s.destroy(); reject(new Error(`connect to ${port}: timeout`)); }, timeout);
    s.once('connect', () => { clearTimeout(timer); s.off('error', reject); resolve(s); });
    s.once('error', (e) => { clearTimeout(timer); reject(e); });
  });
}

/**
 * Watches a socket: collects what arrives and when it closes.
 * Returns {data(): Buffer, closed: Promise<{at, error}>, isClosed(), firstByteAt}.
 */
export function watch(sock) {
  const st = { chunks: [], closedAt: null, error: null, firstByteAt: null };
  const closed = new Promise((resolve) => {
    sock.on('data', (d) => {
      if (st.firstByteAt === null) st.firstByteAt = performance.now();
      st.chunks.push(d);
    });
    sock.on('error', (e) => { st.error = e; });
    sock.on('close', () => {
      st.closedAt = performance.now();
      resolve({ at: st.closedAt, error: st.error });
    });
  });
  return {
    sock,
    closed,
    data: () => Buffer.concat(st.chunks),
    text: () => Buffer.concat(st.chunks).toString('latin1'),
    isClosed: () => st.closedAt !== null,
    get firstByteAt() { return st.firstByteAt; },
    get error() { return st.error; },
  };
}

/** Resolves p, or rejects after ms with what. */
export function within(p, ms, what) {
  let timer;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms); }),
  ]);
}

/**
 * Parses complete HTTP/1.1 responses (Content-Length framed) from buf.
 * headRequests: how many of the answers belong to HEAD requests, by index
 * (a Set of indexes), since those carry a Content-Length but no body.
 * Returns {responses: [{status, headers, body}], rest: Buffer}.
 */
export function parseResponses(buf, { headRequests = new Set() } = {}) {
  const responses = [];
  let off = 0;
  for (;;) {
    const end = buf.indexOf('\r\n\r\n', off, 'latin1');
    if (end < 0) break;
    const head = buf.subarray(off, end).toString('latin1');
    const lines = head.split('\r\n');
    const m = /^HTTP\/1\.[01] (\d{3}) /.exec(lines[0] + ' ');
    if (!m) throw new Error(`not a status line at byte ${off}: ${JSON.stringify(lines[0].slice(0, 200))}`);
    const headers = {};
    for (const l of lines.slice(1)) {
      const i = l.indexOf(':');
      if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
    }
    const isHead = headRequests.has(responses.length);
    const len = isHead || m[1] === '100' ? 0 : Number(headers['content-length'] ?? 0);
    if (buf.length < end + 4 + len) break;
    const body = buf.subarray(end + 4, end + 4 + len).toString('utf8');
    if (m[1] !== '100') responses.push({ status: Number(m[1]), headers, body });
    off = end + 4 + len;
  }
  return { responses, rest: buf.subarray(off) };
}

/** The JSON of a body, or undefined. */
export function json(body) {
  try { return JSON.parse(body); } catch { return undefined; }
}

/**
 * Sends bytes on a new connection and reads until the server closes it or
 * `count` responses arrived (then closes). Returns {responses, raw, closedByServer, ms}.
 */
export async function exchange(port, bytes, { count = Infinity, timeout = 15000, headRequests } = {}) {
  const sock = await connect(port);
  const w = watch(sock);
  const t0 = performance.now();
  sock.on('error', () => { /* reported through watch */ });
  sock.write(bytes);
  const deadline = t0 + timeout;
  let parsed = { responses: [] };
  while (performance.now() < deadline) {
    parsed = parseResponses(w.data(), { headRequests });
    if (parsed.responses.length >= count || w.isClosed()) break;
    await sleep(10);
  }
  parsed = parseResponses(w.data(), { headRequests });
  const closedByServer = w.isClosed();
  if (!closedByServer) sock.destroy();
  return { responses: parsed.responses, raw: w.data(), closedByServer, ms: performance.now() - t0, error: w.error };
}

// ---- storage faults --------------------------------------------------------

/** Mounts a tmpfs of sizeKiB on dir (root only). Throws a clear error otherwise. */
export async function mountTmpfs(dir, sizeKiB) {
  fs.mkdirSync(dir, { recursive: true });
  await new Promise((resolve, reject) => {
    execFile('mount', ['-t', 'tmpfs', '-o', `size=${sizeKiB}k,mode=0755`, 'tmpfs', dir], (err, _o, stderr) => {
      if (err) {
        reject(new Error(`cannot mount a ${sizeKiB} KiB tmpfs on ${dir} (the full-disk test needs root ` +
          `and mount(8)): ${stderr || err.message}`));
      } else resolve();
    });
  });
}

/** Unmounts dir (lazily, so an open file cannot make it fail). */
export function unmount(dir) {
  return new Promise((resolve) => {
    execFile('umount', ['-l', dir], () => resolve());
  });
}

/** {totalKiB, freeKiB} of the file system holding dir. */
export function diskSpace(dir) {
  const s = fs.statfsSync(dir);
  return { totalKiB: (s.blocks * s.bsize) / 1024, freeKiB: (s.bavail * s.bsize) / 1024 };
}

/**
 * Writes a filler file until the file system has at most leaveKiB free
 * (0: write until ENOSPC). Returns its size in bytes.
 */
export function fillDisk(file, leaveKiB = 0) {
  const fd = fs.openSync(file, 'w');
  const chunk = Buffer.alloc(4096, 0x5a);
  let size = 0;
  try {
    for (;;) {
      if (leaveKiB > 0 && diskSpace(file.replace(/\/[^/]*$/, '')).freeKiB <= leaveKiB) break;
      try {
        fs.writeSync(fd, chunk);
        size += chunk.length;
      } catch (e) {
        if (e.code === 'ENOSPC') break;
        throw e;
      }
    }
  } finally {
    fs.closeSync(fd);
  }
  return size;
}

/** Opens sqlite3 on db and takes an exclusive lock; resolves once it holds it. */
export function lockDatabase(db) {
  return new Promise((resolve, reject) => {
    const p = spawn('sqlite3', [db], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    const timer = setTimeout(() => reject(new Error(`sqlite3 did not lock within 10 s: ${err}`)), 10000);
    p.stdout.setEncoding('utf8');
    p.stderr.setEncoding('utf8');
    p.stderr.on('data', (d) => { err += d; });
    const onExit = (code) => { clearTimeout(timer); reject(new Error(`sqlite3 exited ${code}: ${err}`)); };
    p.on('exit', onExit);
    p.stdout.on('data', (d) => {
      out += d;
      if (out.includes('locked-now')) {
        clearTimeout(timer);
        p.off('exit', onExit);
        resolve({
          proc: p,
          stderr: () => err,
          release() {
            return new Promise((res) => {
              if (p.exitCode !== null) { res(p.exitCode); return; }
              p.once('exit', (code) => res(code));
              p.stdin.end('COMMIT;\n');
            });
          },
        });
      }
    });
    p.stdin.write('.timeout 5000\nBEGIN EXCLUSIVE;\nSELECT \'locked-now\';\n');
  });
}

/** Polls fn() until truthy or timeout; returns the last value. */
export async function until(fn, { timeout = 10000, interval = 100 } = {}) {
  const end = performance.now() + timeout;
  for (;;) {
    const v = await fn();
    if (v || performance.now() > end) return v;
    await sleep(interval);
  }
}

/** A uniform random integer in [lo, hi]. */
export function randInt(lo, hi) {
  return lo + Math.floor(Math.random() * (hi - lo + 1));
}
