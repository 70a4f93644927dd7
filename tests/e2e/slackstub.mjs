// slackstub.mjs - a local HTTP server on 127.0.0.1 standing in for a Slack
// incoming webhook. It records every request (time, path, headers, body,
// the JSON it carried, the answer it got) and answers according to a mode:
//
//   'ok'          200 "ok" (Slack accepted the message)
//   'fail'        500 "internal_error"
//   'ratelimit'   429 "rate_limited" with Retry-After: <retryAfter> seconds
//   'hang'        never answers (the connection stays open until close())
//   'no_service'  404 "no_service" (the webhook was revoked)
//
// setMode(mode) changes the standing mode; script(m1, m2, ...) queues
// one-shot modes used by the next requests before the standing mode; a
// scripted step may be {mode, delay} to answer only after delay ms.

import http from 'node:http';
import { sleep } from './lib.mjs';

/**
 * Starts the stub. opts.mode (default 'ok'), opts.retryAfter (seconds, for
 * 'ratelimit', default 2), opts.path (default '/hook'; the path is not
 * checked, any path is recorded).
 *
 * Returns {port, url, requests, setMode, script, accepted(), waitFor(), close()}.
 * Each request: {at, path, method, headers, raw, json, mode, status}; status
 * is the answer (null while hanging or never answered).
 */
export async function startSlackStub(opts = {}) {
  const state = {
    mode: opts.mode ?? 'ok',
    retryAfter: opts.retryAfter ?? 2,
    queue: [],
    requests: [],
    hanging: new Set(),
  };
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      let json;
      try { json = JSON.parse(raw); } catch { json = undefined; }
      const step = state.queue.length ? state.queue.shift() : state.mode;
      const mode = typeof step === 'string' ? step : step.mode;
      const delay = typeof step === 'string' ? 0 : (step.delay ?? 0);
      const rec = {
        at: Date.now(), path: req.url, method: req.method, headers: req.headers, raw, json, mode, status: null,
      };
      state.requests.push(rec);
      const answer = (status, body, headers = {}) => {
        const go = () => {
          if (res.destroyed || res.writableEnded) return;
          rec.status = status;
          rec.answeredAt = Date.now();
          res.writeHead(status, { 'content-type': 'text/plain', ...headers });
          res.end(body);
        };
        if (delay > 0) setTimeout(go, delay);
        else go();
      };
      switch (mode) {
        case 'ok': answer(200, 'ok'); break;
        case 'fail': answer(500, 'internal_error'); break;
        case 'ratelimit': answer(429, 'rate_limited', { 'retry-after': String(state.retryAfter) }); break;
        case 'no_service': answer(404, 'no_service'); break;
        case 'hang': state.hanging.add(res); break;
        default: answer(500, `slackstub: unknown mode ${mode}`);
      }
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = server.address().port;
  const p = opts.path ?? '/hook';
  const stub = {
    port,
    url: `http://127.0.0.1:${port}${p}`,
    requests: state.requests,
    setMode(m, { retryAfter } = {}) {
      state.mode = m;
      if (retryAfter !== undefined) state.retryAfter = retryAfter;
    },
    /** One-shot modes for the next requests, in order. */
    script(...modes) { state.queue.push(...modes); },
    /** Bodies (parsed JSON) of the requests answered 200, in arrival order. */
    accepted() { return state.requests.filter((r) => r.status === 200).map((r) => r.json); },
    /** Polls until pred(stub) is truthy; throws with what arrived on timeout. */
    async waitFor(pred, { timeout = 10000, interval = 50, what = 'condition' } = {}) {
      const end = Date.now() + timeout;
      for (;;) {
        const v = pred(stub);
        if (v) return v;
        if (Date.now() > end) {
          throw new Error(`slack stub: ${what} not reached within ${timeout} ms; ` +
            `${state.requests.length} requests: ${JSON.stringify(state.requests.map((r) => ({
              at: r.at, mode: r.mode, status: r.status, text: r.json?.text,
            })), null, 1)}`);
        }
        await sleep(interval);
      }
    },
    /** Answers the hanging requests with status (default: drops them). */
    release(status) {
      for (const res of state.hanging) {
        try {
          if (status) { res.writeHead(status, { 'content-type': 'text/plain' }); res.end('ok'); }
          else res.destroy();
        } catch { /* gone */ }
      }
      state.hanging.clear();
    },
    async close() {
      for (const res of state.hanging) { try { res.destroy(); } catch { /* gone */ } }
      state.hanging.clear();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
  return stub;
}

// ---- reading Slack messages ---------------------------------------------

/** Every mrkdwn/plain text of a message: text and the blocks', joined. */
export function allText(msg) {
  const parts = [];
  if (typeof msg?.text === 'string') parts.push(msg.text);
  const walk = (o) => {
    if (Array.isArray(o)) { o.forEach(walk); return; }
    if (o && typeof o === 'object') {
      if (typeof o.text === 'string') parts.push(o.text);
      for (const [k, v] of Object.entries(o)) if (k !== 'text' || typeof v !== 'string') walk(v);
    }
  };
  walk(msg?.blocks);
  return parts.join('\n');
}

/** The messageId an event message names ("messageId <id>" in its context), or null. */
export function eventMessageId(msg) {
  const m = /messageId ([^\s<>|]+)/.exec(allText(msg));
  return m && m[1] !== '?' ? m[1] : null;
}

/** The count a digest names ("N bounces and complaints"), or null. */
export function digestCount(msg) {
  const m = /(\d+) bounces and complaints/.exec(msg?.text ?? '');
  return m ? Number(m[1]) : null;
}

/** A monitor message: {monitor, from, to} from "Bounce rate ok → warn: ...", or null. */
export function monitorChange(msg) {
  const m = /(Bounce|Complaint) rate (ok|warn|alert) → (ok|warn|alert)/.exec(msg?.text ?? '');
  return m ? { monitor: m[1] === 'Bounce' ? 'bounceRate' : 'complaintRate', from: m[2], to: m[3] } : null;
}

/** Slack's entity decoding of mrkdwn text (&amp; &lt; &gt;). */
export function unescapeMrkdwn(s) {
  return s.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
}

// ---- helpers shared by alerts.test.mjs and monitor.test.mjs --------------

/**
 * Parses Prometheus text: {series: Map('name{labels}' -> number), types:
 * Map(name -> type), lines}. Throws on a sample line that is not
 * `name{labels} value`.
 */
export function parseMetrics(text) {
  const series = new Map();
  const types = new Map();
  const lines = text.split('\n');
  for (const line of lines) {
    if (line === '') continue;
    const ty = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (ty) { types.set(ty[1], ty[2]); continue; }
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?) (\S+)$/.exec(line);
    if (!m) throw new Error(`not a Prometheus sample line: ${JSON.stringify(line)}`);
    series.set(m[1], Number(m[2]));
  }
  return { series, types, lines };
}

/** GET /metrics (lib's get, on a fresh connection) parsed; also .status and .text. */
export async function fetchMetrics(get, srv, headers = {}) {
  const res = await get(srv.url, '/metrics', headers, { agent: false });
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}: ${res.text}`);
  return { ...parseMetrics(res.text), status: res.status, text: res.text, headers: res.headers };
}

/** Polls fn() until it returns a truthy value or timeout ms pass (then returns the last value). */
export async function poll(fn, { timeout = 5000, interval = 50 } = {}) {
  const end = Date.now() + timeout;
  for (;;) {
    const v = await fn();
    if (v || Date.now() > end) return v;
    await sleep(interval);
  }
}
