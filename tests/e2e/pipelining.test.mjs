// pipelining.test.mjs - keep-alive and HTTP/1.1 pipelining over a raw socket:
// requests sent in one write are answered in order, on the same connection.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import {
  startServer, signEnvelope, countEvents, uniqueBounce, q,
} from './lib.mjs';

function postText(body) {
  const b = Buffer.from(body, 'utf8');
  return `POST /sns HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain; charset=UTF-8\r\n` +
    `x-amz-sns-message-type: Notification\r\nContent-Length: ${b.length}\r\n\r\n${body}`;
}

const HEALTHZ = 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n';

/** Reads HTTP/1.1 responses from a socket, in order. */
class ResponseReader {
  constructor(sock) {
    this.buf = Buffer.alloc(0);
    this.waiters = [];
    this.closed = false;
    sock.on('data', (d) => { this.buf = Buffer.concat([this.buf, d]); this.pump(); });
    sock.on('close', () => { this.closed = true; this.pump(); });
    sock.on('error', () => { /* reported through close */ });
  }

  next(ms = 15000) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no complete response within ${ms} ms; have: ${this.buf.toString('latin1').slice(0, 300)}`)), ms);
      this.waiters.push({ resolve: (r) => { clearTimeout(timer); resolve(r); }, reject: (e) => { clearTimeout(timer); reject(e); } });
      this.pump();
    });
  }

  pump() {
    while (this.waiters.length) {
      const r = this.parse();
      if (!r) {
        if (this.closed) this.waiters.shift().reject(new Error(`connection closed; left: ${this.buf.toString('latin1')}`));
        else return;
        continue;
      }
      this.waiters.shift().resolve(r);
    }
  }

  parse() {
    const end = this.buf.indexOf('\r\n\r\n');
    if (end < 0) return null;
    const head = this.buf.subarray(0, end).toString('latin1');
    const [statusLine, ...lines] = head.split('\r\n');
    const m = /^HTTP\/1\.1 (\d{3}) /.exec(statusLine);
    if (!m) throw new Error(`bad status line: ${statusLine}`);
    const headers = {};
    for (const l of lines) {
      const i = l.indexOf(':');
      headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
    }
    let body;
    let rest;
    if (headers['transfer-encoding']?.toLowerCase() === 'chunked') {
      let pos = end + 4;
      const parts = [];
      for (;;) {
        const le = this.buf.indexOf('\r\n', pos);
        if (le < 0) return null;
        const size = parseInt(this.buf.subarray(pos, le).toString('latin1'), 16);
        if (this.buf.length < le + 2 + size + 2) return null;
        if (size === 0) { pos = le + 4; break; }
        parts.push(this.buf.subarray(le + 2, le + 2 + size));
        pos = le + 2 + size + 2;
      }
      body = Buffer.concat(parts);
      rest = this.buf.subarray(pos);
    } else {
      const len = Number(headers['content-length'] ?? 0);
      if (this.buf.length < end + 4 + len) return null;
      body = this.buf.subarray(end + 4, end + 4 + len);
      rest = this.buf.subarray(end + 4 + len);
    }
    this.buf = Buffer.from(rest);
    const text = body.toString('utf8');
    let json;
    try { json = JSON.parse(text); } catch { json = undefined; }
    return { status: Number(m[1]), headers, text, json };
  }
}

test('two POST /sns and a GET /healthz in one write: three responses, in order, same connection', { timeout: 60000 }, async (t) => {
  const srv = await startServer({ t });
  const sock = net.connect(srv.port, '127.0.0.1');
  t.after(() => sock.destroy());
  await new Promise((r, j) => { sock.once('connect', r); sock.once('error', j); });
  const reader = new ResponseReader(sock);

  const a = uniqueBounce();
  const b = uniqueBounce();
  const envA = signEnvelope({ message: a });
  // the second is badly signed: a server that answers whatever finishes
  // first (a fast 403 before a committed 200) fails here
  const envB = signEnvelope({ message: b });
  envB.Message = envB.Message.replace('Permanent', 'Transient');
  sock.write(postText(JSON.stringify(envA)) + postText(JSON.stringify(envB)) + HEALTHZ);

  const r1 = await reader.next();
  const r2 = await reader.next();
  const r3 = await reader.next();
  assert.equal(r1.status, 200, r1.text);
  assert.equal(r1.json?.status, 'stored', r1.text);
  assert.equal(r2.status, 403, r2.text);
  assert.equal(r2.json?.error?.code, 'bad_signature', r2.text);
  assert.equal(r3.status, 200, r3.text);
  assert.deepEqual(r3.json, { status: 'ok' });

  // the connection is still usable: three valid posts pipelined, then a fourth alone
  const c = [uniqueBounce(), uniqueBounce(), uniqueBounce()];
  sock.write(c.map((s, i) => postText(JSON.stringify(signEnvelope({ message: s, signatureVersion: String(1 + (i % 2)) })))).join(''));
  for (let i = 0; i < 3; i++) {
    const r = await reader.next();
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json?.status, 'stored', r.text);
  }
  sock.write(HEALTHZ);
  const r4 = await reader.next();
  assert.equal(r4.status, 200);

  assert.equal(await countEvents(srv.db, `WHERE messageId = ${q(a.mail.messageId)}`), 1);
  assert.equal(await countEvents(srv.db, `WHERE messageId = ${q(b.mail.messageId)}`), 0);
  assert.equal(await countEvents(srv.db), 4);
  sock.destroy();
  await srv.stop();
});

test('a request split across many small writes is parsed correctly', { timeout: 60000 }, async (t) => {
  const srv = await startServer({ t });
  const sock = net.connect(srv.port, '127.0.0.1');
  sock.setNoDelay(true);
  t.after(() => sock.destroy());
  await new Promise((r, j) => { sock.once('connect', r); sock.once('error', j); });
  const reader = new ResponseReader(sock);
  const text = Buffer.from(postText(JSON.stringify(signEnvelope({ message: uniqueBounce() }))) + HEALTHZ);
  for (let i = 0; i < text.length; i += 97) {
    sock.write(text.subarray(i, i + 97));
    if (i % (97 * 8) === 0) await new Promise((r) => setTimeout(r, 2));
  }
  const r1 = await reader.next();
  assert.equal(r1.status, 200, r1.text);
  assert.equal(r1.json?.status, 'stored');
  const r2 = await reader.next();
  assert.deepEqual(r2.json, { status: 'ok' });
  sock.destroy();
  await srv.stop();
});
