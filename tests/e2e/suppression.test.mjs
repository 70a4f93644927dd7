// suppression.test.mjs - the suppression list end to end: the rules applied
// to signed SNS deliveries (permanent bounces, complaints, not-spam, soft
// bounces with their window, only the affected recipients, ambiguity),
// case-insensitivity, manual PUT/DELETE with history, paging and filters,
// the bulk check, the API token, 400s, and the CLI with SES's bulk CSV.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import {
  startServer, signEnvelope, post, get, request, sqlite, q, assertError, assertStatus, runSeslog,
  tempDir, reasonSql,
} from './lib.mjs';

const T = { timeout: 120000 };
const DAY = 86400000;

/** An SES notification: Bounce or Complaint naming `affected` of a mail sent to `dest`. */
function sesNote({ type = 'Bounce', bounceType = 'Permanent', subType = 'General', feedbackType,
  affected, dest, ts }) {
  const tag = crypto.randomUUID();
  const mail = {
    timestamp: ts, messageId: `m-${tag}`, source: 'sender@example.com',
    destination: dest ?? affected,
  };
  if (type === 'Bounce') {
    return {
      notificationType: 'Bounce',
      bounce: {
        bounceType, bounceSubType: subType,
        bouncedRecipients: affected.map((emailAddress) => ({ emailAddress })),
        timestamp: ts, feedbackId: `fb-${tag}`,
      },
      mail,
    };
  }
  const complaint = {
    complainedRecipients: affected.map((emailAddress) => ({ emailAddress })),
    timestamp: ts, feedbackId: `fb-${tag}`,
  };
  if (feedbackType) complaint.complaintFeedbackType = feedbackType;
  return { notificationType: 'Complaint', complaint, mail };
}

/** Posts one SES notification in a signed envelope stamped ts; asserts "stored". */
async function deliver(srv, opts) {
  const ts = opts.ts ?? new Date().toISOString();
  const ses = sesNote({ ...opts, ts });
  const res = await post(srv.url, '/sns', signEnvelope({ message: ses, timestamp: ts }));
  assertStatus(res, 'stored');
  return ses;
}

function iso(ms) {
  return new Date(ms).toISOString();
}

const enc = encodeURIComponent;

async function entry(srv, address, headers = {}) {
  return get(srv.url, `/api/suppression/${enc(address)}`, headers);
}

function assertEntryShape(e) {
  for (const k of ['address', 'reason', 'createdAt', 'lastEventAt', 'events', 'messageId', 'note',
    'ambiguous']) {
    assert.ok(k in e, `entry lacks "${k}": ${JSON.stringify(e)}`);
  }
  assert.ok(['BOUNCE', 'COMPLAINT', 'MANUAL'].includes(e.reason), JSON.stringify(e));
  assert.equal(typeof e.events, 'number');
  assert.equal(typeof e.ambiguous, 'boolean');
  assert.match(e.createdAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
}

test('permanent bounces suppress only the bounced recipients, OnAccountSuppressionList too; re-suppression counts', T, async (t) => {
  const srv = await startServer({ t });
  const dest = ['jane@example.com', 'mary@example.com', 'richard@example.com'];
  const ts = '2026-05-01T10:00:00.000Z';
  const ses = await deliver(srv, { affected: ['jane@example.com', 'richard@example.com'], dest, ts });

  let res = await entry(srv, 'jane@example.com');
  assert.equal(res.status, 200, res.text);
  assertEntryShape(res.json);
  assert.equal(res.json.address, 'jane@example.com');
  assert.equal(res.json.reason, 'BOUNCE');
  assert.equal(res.json.events, 1);
  assert.equal(res.json.messageId, ses.mail.messageId);
  assert.equal(res.json.createdAt, ts);
  assert.equal(res.json.lastEventAt, ts);
  assert.equal(res.json.ambiguous, false);
  assert.ok(Array.isArray(res.json.history) && res.json.history.length === 1, res.text);
  assert.equal(res.json.history[0].actor, 'permanent-bounce');
  assert.equal(res.json.history[0].action, 'added');
  assert.equal(res.json.history[0].reason, 'BOUNCE');
  assert.equal((await entry(srv, 'richard@example.com')).status, 200);
  // mary was a recipient of the same mail but did not bounce
  assertError(await entry(srv, 'mary@example.com'), 404, 'not_found');

  await deliver(srv, { subType: 'OnAccountSuppressionList', affected: ['mary@example.com'], dest,
    ts: '2026-05-01T11:00:00.000Z' });
  res = await entry(srv, 'mary@example.com');
  assert.equal(res.status, 200);
  assert.equal(res.json.reason, 'BOUNCE');

  // again: the same entry, one more event, the later time
  const ts2 = '2026-05-03T10:00:00.000Z';
  const ses2 = await deliver(srv, { affected: ['jane@example.com'], dest, ts: ts2 });
  res = await entry(srv, 'jane@example.com');
  assert.equal(res.json.events, 2);
  assert.equal(res.json.createdAt, ts);
  assert.equal(res.json.lastEventAt, ts2);
  assert.equal(res.json.messageId, ses2.mail.messageId);
  assert.deepEqual(res.json.history.map((h) => h.action), ['updated', 'added']);
  const list = await get(srv.url, '/api/suppression');
  assert.equal(list.status, 200);
  assert.equal(list.json.items.length, 3);
  assert.equal(list.json.nextCursor, null);

  // Delivery and Send events change nothing
  const deliv = {
    notificationType: 'Delivery',
    delivery: { recipients: ['zoe@example.com'], timestamp: ts },
    mail: { timestamp: ts, messageId: `d-${crypto.randomUUID()}`, source: 's@example.com', destination: ['zoe@example.com'] },
  };
  assertStatus(await post(srv.url, '/sns', signEnvelope({ message: deliv })), 'stored');
  assert.equal((await sqlite(srv.db, 'SELECT count(*) AS n FROM suppression'))[0].n, 3);
  await srv.stop();
});

test('soft bounces: 2 do not suppress, 3 within 7 days do, the 8th day drops out; the limit is configurable', T, async (t) => {
  const srv = await startServer({ t });
  const base = Date.parse('2026-06-01T00:00:00.000Z');
  const soft = (addr, day, bounceType = 'Transient') =>
    deliver(srv, { bounceType, subType: bounceType === 'Transient' ? 'MailboxFull' : 'Undetermined',
      affected: [addr], dest: [addr, 'other@example.com'], ts: iso(base + day * DAY) });

  await soft('two@example.com', 0);
  await soft('two@example.com', 1, 'Undetermined');
  assertError(await entry(srv, 'two@example.com'), 404);
  await soft('two@example.com', 2);
  let res = await entry(srv, 'two@example.com');
  assert.equal(res.status, 200, res.text);
  assert.equal(res.json.reason, 'BOUNCE');
  assert.equal(res.json.history[0].actor, 'soft-bounce');

  // day 0, day 1, day 8: the first is more than 7 days before the third
  await soft('late@example.com', 0);
  await soft('late@example.com', 1);
  await soft('late@example.com', 8);
  assertError(await entry(srv, 'late@example.com'), 404);
  // day 7 exactly is still inside the window
  await soft('edge@example.com', 0);
  await soft('edge@example.com', 3);
  await soft('edge@example.com', 7);
  assert.equal((await entry(srv, 'edge@example.com')).status, 200);
  // the other recipient of those mails never bounced
  assertError(await entry(srv, 'other@example.com'), 404);
  await srv.stop();

  const srv2 = await startServer({ t, args: ['--soft-bounce-limit', '2', '--soft-bounce-days', '1'] });
  const soft2 = (addr, hours) => deliver(srv2, { bounceType: 'Transient', subType: 'General',
    affected: [addr], ts: iso(base + hours * 3600000) });
  await soft2('a@example.com', 0);
  await soft2('a@example.com', 25); // outside one day
  assertError(await entry(srv2, 'a@example.com'), 404);
  await soft2('a@example.com', 26);
  assert.equal((await entry(srv2, 'a@example.com')).status, 200);
  await srv2.stop();

  const bad = await runSeslog(['serve', '--listen', '127.0.0.1:0', '--db', path.join(tempDir(), 'x.db'),
    '--soft-bounce-days', '0']);
  assert.equal(bad.code, 2, bad.stderr);
  assert.match(bad.stderr, /--soft-bounce-days/);

  const srv3 = await startServer({ t, args: ['--soft-bounce-limit', '0'] });
  for (let i = 0; i < 4; i++) {
    await deliver(srv3, { bounceType: 'Transient', affected: ['x@example.com'], ts: iso(base + i) });
  }
  assertError(await entry(srv3, 'x@example.com'), 404);
  await srv3.stop();
});

test('complaints: only the complained recipients; not-spam suppresses nobody; several recipients are ambiguous', T, async (t) => {
  const srv = await startServer({ t });
  const dest = ['jane@example.com', 'mary@example.com', 'richard@example.com'];
  await deliver(srv, { type: 'Complaint', feedbackType: 'abuse', affected: ['richard@example.com'], dest });
  let res = await entry(srv, 'richard@example.com');
  assert.equal(res.status, 200);
  assert.equal(res.json.reason, 'COMPLAINT');
  assert.equal(res.json.ambiguous, false);
  assert.equal(res.json.history[0].actor, 'complaint');
  assertError(await entry(srv, 'jane@example.com'), 404);
  assertError(await entry(srv, 'mary@example.com'), 404);

  await deliver(srv, { type: 'Complaint', feedbackType: 'not-spam', affected: ['jane@example.com'], dest });
  assertError(await entry(srv, 'jane@example.com'), 404);

  await deliver(srv, { type: 'Complaint', affected: ['jane@example.com', 'mary@example.com'],
    dest: [...dest, 'zed@example.com'] });
  for (const a of ['jane@example.com', 'mary@example.com']) {
    res = await entry(srv, a);
    assert.equal(res.status, 200);
    assert.equal(res.json.reason, 'COMPLAINT');
    assert.equal(res.json.ambiguous, true, `${a}: ${res.text}`);
  }
  assertError(await entry(srv, 'zed@example.com'), 404);
  await srv.stop();
});

test('addresses compare without case; the entry keeps the form first given', T, async (t) => {
  const srv = await startServer({ t });
  await deliver(srv, { affected: ['Jane.Doe@Example.COM'] });
  for (const a of ['jane.doe@example.com', 'JANE.DOE@EXAMPLE.COM', 'Jane.Doe@Example.COM']) {
    const res = await entry(srv, a);
    assert.equal(res.status, 200, `${a}: ${res.text}`);
    assert.equal(res.json.address, 'Jane.Doe@Example.COM');
  }
  let res = await request(srv.url, 'PUT', `/api/suppression/${enc('JANE.doe@example.com')}`);
  assert.equal(res.status, 200, 'an existing entry: 200, not 201');
  res = await post(srv.url, '/api/suppression/check', { addresses: ['jane.DOE@example.com'] });
  assert.equal(res.json.results[0].suppressed, true);
  assert.equal((await sqlite(srv.db, 'SELECT count(*) AS n FROM suppression'))[0].n, 1);
  res = await request(srv.url, 'DELETE', `/api/suppression/${enc('JANE.DOE@EXAMPLE.COM')}`);
  assert.equal(res.status, 200);
  assertError(await entry(srv, 'jane.doe@example.com'), 404);
  // "+" in a path is a plus, encoded or not
  res = await request(srv.url, 'PUT', '/api/suppression/Ann+news@Example.com');
  assert.equal(res.status, 201, res.text);
  res = await entry(srv, 'ann+NEWS@example.com');
  assert.equal(res.status, 200, res.text);
  assert.equal(res.json.address, 'Ann+news@Example.com');
  await srv.stop();
});

test('PUT adds by hand (201, then 200), DELETE removes (200, then 404), the history is kept', T, async (t) => {
  const srv = await startServer({ t });
  const p = `/api/suppression/${enc('Someone@Example.org')}`;
  let res = await request(srv.url, 'PUT', p);
  assert.equal(res.status, 201, res.text);
  assertEntryShape(res.json);
  assert.equal(res.json.reason, 'MANUAL');
  assert.equal(res.json.events, 0);
  assert.equal(res.json.lastEventAt, null);
  res = await request(srv.url, 'PUT', p, { reason: 'COMPLAINT', note: 'forwarded by support' });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.json.reason, 'COMPLAINT');
  assert.equal(res.json.note, 'forwarded by support');
  res = await get(srv.url, p);
  assert.deepEqual(res.json.history.map((h) => [h.action, h.actor, h.reason]),
    [['updated', 'api', 'COMPLAINT'], ['added', 'api', 'MANUAL']]);
  assert.equal(res.json.history[0].note, 'forwarded by support');
  res = await request(srv.url, 'DELETE', p);
  assert.equal(res.status, 200, res.text);
  assert.equal(res.json.address, 'Someone@Example.org');
  assertError(await request(srv.url, 'DELETE', p), 404, 'not_found');
  assertError(await get(srv.url, p), 404, 'not_found');
  const hist = await sqlite(srv.db, "SELECT action, actor, reason FROM suppression_history WHERE address = 'someone@example.org' ORDER BY id");
  assert.deepEqual(hist.map((h) => h.action), ['added', 'updated', 'removed']);
  assert.equal(hist[2].reason, 'COMPLAINT');
  // added again later: the old history comes back with it
  res = await request(srv.url, 'PUT', p, { note: 'again' });
  assert.equal(res.status, 201);
  res = await get(srv.url, p);
  assert.deepEqual(res.json.history.map((h) => h.action), ['added', 'removed', 'updated', 'added']);

  // bad input
  assertError(await request(srv.url, 'PUT', p, { reason: 'SPAM' }), 400, 'invalid_body');
  assertError(await request(srv.url, 'PUT', p, 'not json'), 400, 'invalid_body');
  assertError(await request(srv.url, 'PUT', p, { note: 'x'.repeat(1001) }), 400, 'invalid_body');
  for (const bad of ['no-at-sign', 'two@@example.com', 'a b@example.com', '@example.com', 'jane@',
    `${'a'.repeat(320)}@example.com`]) {
    assertError(await request(srv.url, 'PUT', `/api/suppression/${enc(bad)}`), 400, 'invalid_address');
    assertError(await get(srv.url, `/api/suppression/${enc(bad)}`), 400, 'invalid_address');
  }
  assertError(await post(srv.url, p, {}), 405, 'method_not_allowed');
  assertError(await request(srv.url, 'DELETE', '/api/suppression'), 405);
  assertError(await get(srv.url, '/api/suppression/check'), 405);
  await srv.stop();
});

test('GET /api/suppression pages without skipping or repeating; filters reason, domain, since, search', T, async (t) => {
  const srv = await startServer({ t });
  const made = [];
  for (let i = 0; i < 7; i++) {
    const a = `user${i}@${i % 2 ? 'odd' : 'even'}.example`;
    const reason = ['MANUAL', 'BOUNCE', 'COMPLAINT'][i % 3];
    const res = await request(srv.url, 'PUT', `/api/suppression/${a}`, { reason });
    assert.equal(res.status, 201);
    made.push(a);
  }
  const seen = [];
  let cursor = null;
  let pages = 0;
  do {
    const res = await get(srv.url, `/api/suppression?limit=3${cursor ? `&cursor=${enc(cursor)}` : ''}`);
    assert.equal(res.status, 200, res.text);
    assert.ok(res.json.items.length <= 3);
    seen.push(...res.json.items.map((e) => e.address));
    cursor = res.json.nextCursor;
    pages++;
    if (pages === 1) {
      // an entry added while paging appears on no later page twice
      await request(srv.url, 'PUT', '/api/suppression/late@late.example');
    }
  } while (cursor);
  assert.equal(pages, 3);
  assert.deepEqual(seen, [...made].reverse(), 'newest first, each once');

  let res = await get(srv.url, '/api/suppression?reason=BOUNCE');
  assert.deepEqual(res.json.items.map((e) => e.address), ['user4@even.example', 'user1@odd.example']);
  res = await get(srv.url, '/api/suppression?domain=ODD.example');
  assert.deepEqual(res.json.items.map((e) => e.address).sort(), ['user1@odd.example', 'user3@odd.example', 'user5@odd.example']);
  res = await get(srv.url, '/api/suppression?search=ER6');
  assert.deepEqual(res.json.items.map((e) => e.address), ['user6@even.example']);
  res = await get(srv.url, '/api/suppression?since=1h');
  assert.equal(res.json.items.length, 8);
  res = await get(srv.url, `/api/suppression?since=${iso(Date.now() + DAY)}`);
  assert.equal(res.json.items.length, 0);
  res = await get(srv.url, '/api/suppression?since=2020-01-01T00:00:00Z&reason=MANUAL&limit=1000');
  assert.equal(res.json.items.length, 4);

  for (const bad of ['limit=0', 'limit=1001', 'limit=x', 'cursor=zzz', 'reason=SPAM', 'since=yesterday',
    'domain=a@b', 'color=red']) {
    assertError(await get(srv.url, `/api/suppression?${bad}`), 400, 'invalid_parameter');
  }
  await srv.stop();
});

test('POST /api/suppression/check: 10,000 addresses answered in order; over 10,000 or malformed is 400', T, async (t) => {
  const srv = await startServer({ t });
  await request(srv.url, 'PUT', '/api/suppression/listed@example.com', { reason: 'COMPLAINT' });
  await deliver(srv, { affected: ['bounced@example.com'] });
  const addresses = [];
  for (let i = 0; i < 10000; i++) addresses.push(`user${i}@campaign.example`);
  addresses[17] = 'LISTED@example.com';
  addresses[9999] = 'bounced@EXAMPLE.com';
  const t0 = Date.now();
  let res = await post(srv.url, '/api/suppression/check', { addresses });
  const ms = Date.now() - t0;
  assert.equal(res.status, 200, res.text.slice(0, 300));
  assert.equal(res.json.results.length, 10000);
  assert.equal(res.json.checked, 10000);
  assert.equal(res.json.suppressed, 2);
  res.json.results.forEach((r, i) => assert.equal(r.address, addresses[i]));
  const hit = res.json.results[17];
  assert.equal(hit.suppressed, true);
  assert.equal(hit.reason, 'COMPLAINT');
  assert.equal(hit.entry.address, 'listed@example.com');
  assert.equal(res.json.results[9999].reason, 'BOUNCE');
  assert.deepEqual(res.json.results[0], { address: 'user0@campaign.example', suppressed: false, reason: null });
  assert.ok(ms < 5000, `10,000 addresses took ${ms} ms`);

  assertError(await post(srv.url, '/api/suppression/check', { addresses: [...addresses, 'one@more.example'] }),
    400, 'too_many_addresses');
  assertError(await post(srv.url, '/api/suppression/check', 'not json'), 400, 'invalid_body');
  assertError(await post(srv.url, '/api/suppression/check', { list: [] }), 400, 'invalid_body');
  assertError(await post(srv.url, '/api/suppression/check', { addresses: [42] }), 400, 'invalid_address');
  res = await post(srv.url, '/api/suppression/check', { addresses: ['ok@example.com', 'bad address'] });
  assertError(res, 400, 'invalid_address');
  assert.match(res.json.error.message, /addresses\[1\]/);
  res = await post(srv.url, '/api/suppression/check', { addresses: [] });
  assert.equal(res.status, 200);
  assert.deepEqual(res.json.results, []);
  await srv.stop();
});

test('--api-token guards every suppression endpoint', T, async (t) => {
  const srv = await startServer({ t, args: ['--api-token', 's3cret'] });
  const auth = { authorization: 'Bearer s3cret' };
  assertError(await get(srv.url, '/api/suppression'), 401, 'unauthorized');
  assertError(await request(srv.url, 'PUT', '/api/suppression/a@example.com'), 401, 'unauthorized');
  assertError(await request(srv.url, 'DELETE', '/api/suppression/a@example.com'), 401, 'unauthorized');
  assertError(await post(srv.url, '/api/suppression/check', { addresses: [] }), 401, 'unauthorized');
  assertError(await get(srv.url, '/api/suppression', { authorization: 'Bearer wrong' }), 401);
  assert.equal((await sqlite(srv.db, 'SELECT count(*) AS n FROM suppression'))[0].n, 0);
  let res = await request(srv.url, 'PUT', '/api/suppression/a@example.com', undefined, auth);
  assert.equal(res.status, 201);
  res = await get(srv.url, '/api/suppression', auth);
  assert.equal(res.status, 200);
  assert.equal(res.json.items.length, 1);
  res = await post(srv.url, '/api/suppression/check', { addresses: ['a@example.com'] }, auth);
  assert.equal(res.json.results[0].suppressed, true);
  await srv.stop();
});

test('CLI: add, check (exit 0/1/2), remove, list formats, SES CSV export/import round trip', T, async () => {
  const dir = tempDir();
  const db = path.join(dir, 'a.db');
  let r = await runSeslog(['suppression', 'add', 'Ann@Example.com', 'bob@example.com', '--note', 'asked', '--db', db]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /added Ann@Example.com \(MANUAL\)/);
  r = await runSeslog(['suppression', 'add', '--reason', 'COMPLAINT', 'carl@example.com', '--db', db]);
  assert.equal(r.code, 0, r.stderr);
  r = await runSeslog(['suppression', 'add', '--reason', 'bounce', 'dora@example.com', '--db', db]);
  assert.equal(r.code, 0, r.stderr);

  r = await runSeslog(['suppression', 'check', 'ann@example.com', 'nobody@example.com', '--db', db]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stdout, /^ann@example.com: suppressed, MANUAL/m);
  assert.match(r.stdout, /^nobody@example.com: not suppressed$/m);
  r = await runSeslog(['suppression', 'check', 'nobody@example.com', '--db', db]);
  assert.equal(r.code, 0);
  r = await runSeslog(['suppression', 'check', '--format', 'json', 'CARL@example.com', '--db', db]);
  assert.equal(r.code, 1);
  assert.equal(JSON.parse(r.stdout).results[0].reason, 'COMPLAINT');
  for (const args of [['check', 'not-an-address'], ['add', 'x y@example.com'], ['remove', '@x'],
    ['add', '--reason', 'SPAM', 'a@example.com'], ['list', '--format', 'xml'], ['frobnicate'],
    ['add', 'a@example.com', '--bogus'], ['import'], ['import', path.join(dir, 'missing.csv')]]) {
    r = await runSeslog(['suppression', ...args, '--db', db]);
    assert.equal(r.code, 2, `${args.join(' ')}: exit ${r.code}\n${r.stderr}`);
    assert.equal(r.stderr.trim().split('\n').length, 1, `${args.join(' ')}: one line: ${r.stderr}`);
  }

  r = await runSeslog(['suppression', 'list', '--format', 'json', '--db', db]);
  assert.equal(r.code, 0, r.stderr);
  const items = JSON.parse(r.stdout);
  assert.deepEqual(items.map((e) => [e.address, e.reason]),
    [['dora@example.com', 'BOUNCE'], ['carl@example.com', 'COMPLAINT'], ['bob@example.com', 'MANUAL'],
      ['Ann@Example.com', 'MANUAL']]);
  r = await runSeslog(['suppression', 'list', '--reason', 'MANUAL', '--format', 'csv', '--db', db]);
  assert.equal(r.stdout.split('\n')[0], 'address,reason,createdAt,lastEventAt,events,messageId,note,ambiguous');
  assert.equal(r.stdout.trim().split('\n').length, 3);
  r = await runSeslog(['suppression', 'list', '--db', db]);
  assert.match(r.stdout, /^ADDRESS\s+REASON/);
  assert.match(r.stdout, /carl@example.com\s+COMPLAINT/);

  // export: SES's format, MANUAL as BOUNCE
  const csv = path.join(dir, 'list.csv');
  r = await runSeslog(['suppression', 'export', csv, '--db', db]);
  assert.equal(r.code, 0, r.stderr);
  const lines = fs.readFileSync(csv, 'utf8').trim().split('\n').sort();
  assert.deepEqual(lines, ['Ann@Example.com,BOUNCE', 'bob@example.com,BOUNCE', 'carl@example.com,COMPLAINT',
    'dora@example.com,BOUNCE']);
  r = await runSeslog(['suppression', 'export', '--db', db]);
  assert.deepEqual(r.stdout.trim().split('\n').sort(), lines);

  // import into a fresh database: the same addresses and reasons
  const db2 = path.join(dir, 'b.db');
  r = await runSeslog(['suppression', 'import', csv, '--db', db2]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim(), 'imported 4, already listed 0, rejected 0');
  r = await runSeslog(['suppression', 'export', '-', '--db', db2]);
  assert.deepEqual(r.stdout.trim().split('\n').sort(), lines);
  const hist = await sqlite(db2, 'SELECT DISTINCT actor, action FROM suppression_history_full');
  assert.deepEqual(hist, [{ actor: 'cli', action: 'added' }]);
  // again: nothing new
  r = await runSeslog(['suppression', 'import', csv, '--db', db2]);
  assert.equal(r.stdout.trim(), 'imported 0, already listed 4, rejected 0');

  // a header, CRLF, quotes, stdin, and bad lines reported as FILE:LINE
  r = await runSeslog(['suppression', 'import', '-', '--db', db2], {
    input: 'EmailAddress,Reason\r\nnew@example.com,BOUNCE\r\n"q@example.com",COMPLAINT\r\nbroken\r\nx@example.com,MANUAL\r\nbad address,BOUNCE\r\n',
  });
  assert.equal(r.code, 1, r.stderr);
  assert.equal(r.stdout.trim(), 'imported 2, already listed 0, rejected 3');
  assert.match(r.stderr, /^-:4: /m);
  assert.match(r.stderr, /^-:5: .*BOUNCE or COMPLAINT/m);
  assert.match(r.stderr, /^-:6: "bad address" is not an email address/m);

  // remove keeps the history; removing an absent address is reported, not an error
  r = await runSeslog(['suppression', 'remove', 'ANN@example.com', 'ghost@example.com', '--note', 'fixed', '--db', db]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^removed ANN@example.com$/m);
  assert.match(r.stdout, /^ghost@example.com was not on the list$/m);
  const h = await sqlite(db, "SELECT action, actor, note FROM suppression_history WHERE address = 'ann@example.com' ORDER BY id");
  assert.deepEqual(h, [{ action: 'added', actor: 'cli', note: 'asked' }, { action: 'removed', actor: 'cli', note: 'fixed' }]);
  r = await runSeslog(['suppression', 'check', 'ann@example.com', '--db', db]);
  assert.equal(r.code, 0);
});

test('seslog import applies the same rules (and the soft-bounce options)', T, async () => {
  const dir = tempDir();
  const file = path.join(dir, 'events.jsonl');
  const base = Date.parse('2026-07-01T00:00:00.000Z');
  const docs = [
    sesNote({ affected: ['hard@example.com'], dest: ['hard@example.com', 'cc@example.com'], ts: iso(base) }),
    sesNote({ type: 'Complaint', feedbackType: 'not-spam', affected: ['fine@example.com'], ts: iso(base) }),
    sesNote({ bounceType: 'Transient', affected: ['soft@example.com'], ts: iso(base + DAY) }),
    sesNote({ bounceType: 'Transient', affected: ['soft@example.com'], ts: iso(base) }),
  ];
  fs.writeFileSync(file, docs.map((d) => JSON.stringify(d)).join('\n'));
  const db = path.join(dir, 'i.db');
  let r = await runSeslog(['import', '--soft-bounce-limit', '2', '--db', db, file]);
  assert.equal(r.code, 0, r.stderr);
  const rows = await sqlite(db, `SELECT address, ${reasonSql()} AS reason FROM suppression ORDER BY address`);
  assert.deepEqual(rows, [{ address: 'hard@example.com', reason: 'BOUNCE' }, { address: 'soft@example.com', reason: 'BOUNCE' }]);
  r = await runSeslog(['import', '--soft-bounce-days', '0', '--db', db, file]);
  assert.equal(r.code, 2);
});

test('GET /api/recipients/{address} carries the suppression entry, or null', T, async (t) => {
  const srv = await startServer({ t });
  const before = await request(srv.url, 'GET', '/api/recipients/Someone@Example.com');
  assert.equal(before.status, 200, before.text);
  assert.equal(before.json.suppression, null);
  const put = await request(srv.url, 'PUT', '/api/suppression/someone@example.COM',
    JSON.stringify({ note: 'asked to stop' }), { 'content-type': 'application/json' });
  assert.ok([200, 201].includes(put.status), put.text);
  const after = await request(srv.url, 'GET', '/api/recipients/SOMEONE@example.com');
  assert.equal(after.status, 200, after.text);
  assert.equal(after.json.suppression?.reason, 'MANUAL');
  assert.equal(after.json.suppression?.note, 'asked to stop');
  await srv.stop();
});
