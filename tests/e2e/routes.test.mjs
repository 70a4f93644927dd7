// routes.test.mjs - the route table as a client sees it: which path and
// method answer 200, 400, 401, 404 or 405, with the token and without it.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, request } from './lib.mjs';

const T = { timeout: 60000 };
const TOKEN = 's3cret-token';
const auth = { authorization: `Bearer ${TOKEN}` };

// [method, path, status, error code (or undefined for a success)]
const MATRIX = [
  ['GET', '/healthz', 200],
  ['HEAD', '/healthz', 200],
  ['POST', '/healthz', 405, 'method_not_allowed'],
  ['GET', '/sns', 405, 'method_not_allowed'],
  ['GET', '/metrics', 200],
  ['POST', '/metrics', 405, 'method_not_allowed'],
  ['GET', '/api/events', 200],
  ['HEAD', '/api/events', 200],
  ['POST', '/api/events', 405, 'method_not_allowed'],
  ['GET', '/api/events/counts?groupBy=type', 200],
  ['DELETE', '/api/events/counts', 405, 'method_not_allowed'],
  ['GET', '/api/events/', 400, 'invalid_parameter'],
  ['GET', '/api/events/no-such-id', 404, 'not_found'],
  ['GET', '/api/recipients/someone@example.com', 200],
  ['GET', '/api/stats', 200],
  ['GET', '/api/timeseries', 200],
  ['GET', '/api/diagnostics', 200],
  ['GET', '/api/subscriptions', 200],
  ['GET', '/api/sources', 200],
  ['PUT', '/api/sources', 405, 'method_not_allowed'],
  ['GET', '/api/suppression', 200],
  ['POST', '/api/suppression', 405, 'method_not_allowed'],
  ['GET', '/api/suppression/check', 405, 'method_not_allowed'],
  ['GET', '/api/suppression/nobody@example.com', 404, 'not_found'],
  ['GET', '/api/suppression/not-an-address', 400, 'invalid_address'],
  ['POST', '/api/suppression/not-an-address', 400, 'invalid_address'],
  ['PATCH', '/api/suppression/nobody@example.com', 405, 'method_not_allowed'],
  ['DELETE', '/api/suppression/nobody@example.com', 404, 'not_found'],
  ['GET', '/api/dnsbl', 200],
  ['GET', '/api/dnsbl/check', 405, 'method_not_allowed'],
  ['POST', '/api/dnsbl/check', 409, 'dnsbl_disabled'],
  ['GET', '/api/nothing-here', 404, 'not_found'],
  ['POST', '/api/nothing-here', 405, 'method_not_allowed'],
  ['GET', '/api/suppressionx', 404, 'not_found'],
  ['GET', '/no/such/file', 404, 'not_found'],
  ['POST', '/no/such/file', 404, 'not_found'],
];

test('every route answers with the status and code of its method and path', T, async (t) => {
  const srv = await startServer({ t, args: ['--api-token', TOKEN] });
  for (const [method, path, status, code] of MATRIX) {
    const res = await request(srv.url, method, path, undefined, auth);
    const what = `${method} ${path}: ${res.status} ${res.text.slice(0, 200)}`;
    assert.equal(res.status, status, what);
    if (code) assert.equal(res.json?.error?.code, code, what);
  }
  await srv.stop();
});

test('the token guards every /api path and /metrics, known or not, before 404 and 405', T, async (t) => {
  const srv = await startServer({ t, args: ['--api-token', TOKEN] });
  for (const [method, path] of [['GET', '/api/events'], ['GET', '/metrics'], ['GET', '/api/nothing-here'],
    ['POST', '/api/events'], ['DELETE', '/api/suppression/a@b.test'], ['POST', '/api/dnsbl/check']]) {
    const res = await request(srv.url, method, path, undefined, { authorization: 'Bearer wrong' });
    assert.equal(res.status, 401, `${method} ${path}: ${res.text}`);
    assert.match(String(res.headers['www-authenticate']), /^Bearer realm="seslog"/);
  }
  for (const path of ['/healthz', '/index.html']) {
    const res = await request(srv.url, 'GET', path);
    assert.notEqual(res.status, 401, `${path} needs no token`);
  }
  await srv.stop();
});
