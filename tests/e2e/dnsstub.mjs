// dnsstub.mjs - a small authoritative DNS server on 127.0.0.1 (UDP, node:dgram)
// standing in for the DNS blocklists' zones, so that the DNSBL tests never
// leave the machine. It records every question (name, type, time) and
// answers per name according to what the test set:
//
//   {a: ['127.0.0.2'], txt: ['reason']}  A and TXT records (either may be
//                 left out: that type then answers NOERROR with no record);
//                 a: or txt: may also be one of the modes below, for that
//                 type only (e.g. {a: ['127.0.0.2'], txt: 'servfail'});
//                 any other type (AAAA, ...) of such a name answers NOERROR
//                 with no record
//   'nxdomain'    RCODE 3 (the default for a name never set)
//   'nodata'      NOERROR, no answer
//   'refused'     RCODE 5
//   'servfail'    RCODE 2
//   'timeout'     never answers
//
// Answers copy the ID and the question, set QR, AA, RA (and RD as asked),
// carry their records with a name pointer to the question (0xC00C) and a
// TTL of 5 s. A TXT string longer than 255 bytes is split into several
// character-strings of one record (as a DNS server publishes it). An OPT
// record in the additional section is ignored (and not echoed). No TCP:
// answers are never truncated, so keep them small.
//
// Names are matched without case and without a trailing dot; the recorded
// names are lower case.

import dgram from 'node:dgram';
import { sleep } from './lib.mjs';

export const TYPES = { A: 1, NS: 2, CNAME: 5, SOA: 6, PTR: 12, MX: 15, TXT: 16, AAAA: 28, SRV: 33, OPT: 41, ANY: 255 };
const TYPE_NAMES = Object.fromEntries(Object.entries(TYPES).map(([k, v]) => [v, k]));
const RCODE = { noerror: 0, formerr: 1, servfail: 2, nxdomain: 3, notimp: 4, refused: 5 };
const MODES = new Set(['nxdomain', 'nodata', 'refused', 'servfail', 'timeout']);
const TTL = 5;

function norm(name) {
  return String(name).toLowerCase().replace(/\.$/, '');
}

/**
 * Parses a query. Returns {id, flags, qname, qnameRaw, qtype, qclass,
 * questionEnd} or throws (too short, bad label, pointer in the question...).
 */
export function parseQuery(buf) {
  if (buf.length < 12) throw new Error('shorter than a header');
  const id = buf.readUInt16BE(0);
  const flags = buf.readUInt16BE(2);
  const qdcount = buf.readUInt16BE(4);
  if (qdcount < 1) throw new Error('no question');
  let off = 12;
  const labels = [];
  for (;;) {
    if (off >= buf.length) throw new Error('name runs past the end');
    const len = buf[off];
    if (len === 0) { off++; break; }
    if ((len & 0xc0) !== 0) throw new Error('compressed or extended label in the question');
    if (off + 1 + len > buf.length) throw new Error('label runs past the end');
    labels.push(buf.subarray(off + 1, off + 1 + len).toString('latin1'));
    off += 1 + len;
    if (off - 12 > 255) throw new Error('name longer than 255 bytes');
  }
  if (off + 4 > buf.length) throw new Error('question without type and class');
  const qtype = buf.readUInt16BE(off);
  const qclass = buf.readUInt16BE(off + 2);
  off += 4;
  const qnameRaw = labels.join('.');
  return { id, flags, qdcount, qname: qnameRaw.toLowerCase(), qnameRaw, qtype, qclass, questionEnd: off };
}

function ipv4Bytes(s) {
  const p = String(s).split('.').map(Number);
  if (p.length !== 4 || p.some((x) => !Number.isInteger(x) || x < 0 || x > 255)) throw new Error(`dnsstub: bad IPv4 ${s}`);
  return Buffer.from(p);
}

function txtRdata(s) {
  const b = Buffer.from(String(s), 'utf8');
  if (b.length === 0) return Buffer.from([0]);
  const parts = [];
  for (let i = 0; i < b.length; i += 255) {
    const chunk = b.subarray(i, i + 255);
    parts.push(Buffer.from([chunk.length]), chunk);
  }
  return Buffer.concat(parts);
}

function rr(type, rdata) {
  const head = Buffer.alloc(12);
  head.writeUInt16BE(0xc00c, 0); // the question's name
  head.writeUInt16BE(type, 2);
  head.writeUInt16BE(1, 4); // IN
  head.writeUInt32BE(TTL, 6);
  head.writeUInt16BE(rdata.length, 10);
  return Buffer.concat([head, rdata]);
}

/** The answer to one parsed query: a Buffer, or null for no answer at all. */
function buildResponse(buf, q, answer) {
  // What this name says for this type: a mode string or a list of records.
  let mode;
  let records = [];
  if (typeof answer === 'string') {
    mode = answer;
  } else if (answer && typeof answer === 'object') {
    const key = q.qtype === TYPES.A ? 'a' : q.qtype === TYPES.TXT ? 'txt' : null;
    const v = key ? answer[key] : undefined;
    if (typeof v === 'string') mode = v;
    else if (Array.isArray(v)) {
      mode = 'noerror';
      if (key === 'a') records = v.map((x) => rr(TYPES.A, ipv4Bytes(x)));
      else records = v.map((x) => rr(TYPES.TXT, txtRdata(x)));
    } else mode = 'nodata';
  } else {
    mode = 'nxdomain';
  }
  if (mode === 'timeout') return null;
  if (mode === 'nodata') mode = 'noerror';
  if (!(mode in RCODE)) throw new Error(`dnsstub: unknown answer mode ${mode}`);
  const header = Buffer.alloc(12);
  header.writeUInt16BE(q.id, 0);
  const opcode = (q.flags >> 11) & 0xf;
  const rd = q.flags & 0x0100;
  // QR | opcode | AA | RD (as asked) | RA | RCODE
  header.writeUInt16BE(0x8000 | (opcode << 11) | 0x0400 | rd | 0x0080 | RCODE[mode], 2);
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(records.length, 6);
  header.writeUInt16BE(0, 8);
  header.writeUInt16BE(0, 10);
  return Buffer.concat([header, buf.subarray(12, q.questionEnd), ...records]);
}

function formerr(buf) {
  const header = Buffer.alloc(12);
  header.writeUInt16BE(buf.readUInt16BE(0), 0);
  header.writeUInt16BE(0x8000 | (buf.readUInt16BE(2) & 0x7900) | 0x0080 | RCODE.formerr, 2);
  return header;
}

/**
 * Starts the stub. opts.records: {name: answer} (see the top of the file);
 * opts.fallback: the answer for names not set (default 'nxdomain').
 *
 * Returns {port, server ('127.0.0.1:PORT'), queries, set(name, answer),
 * unset(name), get(name), clearQueries(), queriesFor(name, type),
 * waitFor(pred, opts), close()}. Each query: {name, raw, type ('A', 'TXT',
 * ... or the number), qtype, at, answered (rcode name, or 'timeout')}.
 */
export async function startDnsStub(opts = {}) {
  const records = new Map();
  for (const [k, v] of Object.entries(opts.records ?? {})) records.set(norm(k), v);
  let fallback = opts.fallback ?? 'nxdomain';
  const queries = [];
  const errors = [];
  const sock = dgram.createSocket({ type: 'udp4' });
  sock.on('message', (buf, rinfo) => {
    let q;
    try {
      q = parseQuery(buf);
    } catch (e) {
      errors.push({ at: Date.now(), error: e.message, bytes: buf.toString('hex') });
      if (buf.length >= 12) sock.send(formerr(buf), rinfo.port, rinfo.address);
      return;
    }
    const answer = records.has(q.qname) ? records.get(q.qname) : fallback;
    const rec = {
      name: q.qname, raw: q.qnameRaw, type: TYPE_NAMES[q.qtype] ?? q.qtype, qtype: q.qtype, at: Date.now(), answered: null,
    };
    queries.push(rec);
    let out;
    try {
      out = buildResponse(buf, q, answer);
    } catch (e) {
      errors.push({ at: Date.now(), error: e.message });
      out = buildResponse(buf, q, 'servfail');
    }
    if (!out) { rec.answered = 'timeout'; return; }
    const rcode = out.readUInt16BE(2) & 0xf;
    rec.answered = Object.keys(RCODE).find((k) => RCODE[k] === rcode);
    sock.send(out, rinfo.port, rinfo.address);
  });
  await new Promise((resolve, reject) => {
    sock.once('error', reject);
    sock.bind(0, '127.0.0.1', () => { sock.off('error', reject); resolve(); });
  });
  const port = sock.address().port;
  const stub = {
    port,
    server: `127.0.0.1:${port}`,
    queries,
    errors,
    set(name, answer) { records.set(norm(name), answer); },
    unset(name) { records.delete(norm(name)); },
    get(name) { return records.get(norm(name)); },
    setFallback(answer) { fallback = answer; },
    clearQueries() { queries.length = 0; },
    /** The recorded queries for name (any case, trailing dot or not), of type ('A', 'TXT', ...) if given. */
    queriesFor(name, type) {
      const n = norm(name);
      return queries.filter((x) => x.name === n && (type === undefined || x.type === type));
    },
    /** Polls until pred(stub) is truthy; throws with the queries seen on timeout. */
    async waitFor(pred, { timeout = 5000, interval = 25, what = 'condition' } = {}) {
      const end = Date.now() + timeout;
      for (;;) {
        const v = pred(stub);
        if (v) return v;
        if (Date.now() > end) {
          throw new Error(`dns stub: ${what} not reached within ${timeout} ms; ${queries.length} queries: ` +
            JSON.stringify(queries.slice(-40).map((x) => `${x.type} ${x.name} -> ${x.answered}`), null, 1));
        }
        await sleep(interval);
      }
    },
    async close() {
      await new Promise((resolve) => sock.close(resolve));
    },
  };
  return stub;
}

/** The DNSBL query name of an IPv4 or IPv6 address (or a domain) in zone. */
export function dnsblName(target, zone) {
  if (/^\d+\.\d+\.\d+\.\d+$/.test(target)) return `${target.split('.').reverse().join('.')}.${zone}`;
  if (target.includes(':')) {
    const [head, tail = ''] = target.split('::');
    const h = head ? head.split(':') : [];
    const t = tail ? tail.split(':') : [];
    const groups = target.includes('::') ? [...h, ...Array(8 - h.length - t.length).fill('0'), ...t] : h;
    const hex = groups.map((g) => g.padStart(4, '0')).join('');
    return `${hex.split('').reverse().join('.')}.${zone}`;
  }
  return `${target}.${zone}`;
}
