// dynamodb-rebuild.test.mjs - the outbox rows of DynamoDB replication hold
// no payload: the item lives in memory for the live path, and a row read
// back from the database (after a SIGKILL) gets its item made again from its
// event. The restarted server must send items equal, attribute by
// attribute, to those the live path sent; a row whose event is gone is
// dropped with a log line; a row that goes dead keeps its item.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { sesFixture, sqlite } from './lib.mjs';
import {
  missingTools, startDynalite, createTable, scanItems, byKey, expectedItem, startReplicating,
  postEvent, drained, replication, waitFor, startProxy,
} from './dynamodb-lib.mjs';

const FIXTURES = [
  'ses-notification-bounce-no-dsn-multi-recipient-awsdocs',
  'ses-notification-bounce-with-dsn-awsdocs',
  'ses-notification-complaint-with-feedback-awsdocs',
  'ses-notification-complaint-no-feedback-type-awsdocs',
  'ses-event-bounce-awsdocs',
  'ses-event-complaint-awsdocs',
  'ses-notification-delivery-awsdocs',
  'ses-event-open-awsdocs',
];

function fresh(name, tag) {
  const ses = sesFixture(name);
  ses.mail.messageId = `${tag}-${ses.mail.messageId}`.slice(0, 120);
  if (ses.bounce?.feedbackId) ses.bounce.feedbackId = `fb-${tag}`;
  if (ses.complaint?.feedbackId) ses.complaint.feedbackId = `fb-${tag}`;
  return ses;
}

/** The items of the BatchWriteItem requests the proxy saw, keyed. */
function sentItems(proxy, table) {
  const out = new Map();
  for (const r of proxy.writes()) {
    for (const req of r.body?.RequestItems?.[table] ?? []) {
      const it = req.PutRequest.Item;
      out.set(`${it.messageId.S}|${it.timeStamp.S}`, it);
    }
  }
  return out;
}

test('rows without payload: after a SIGKILL the items are made again, equal to the live ones', { timeout: 90000 }, async (t) => {
  const missing = missingTools();
  assert.equal(missing, null, `${missing}`);
  const dyn = await startDynalite();
  t.after(() => dyn.stop());
  const table = 'Rebuilt';
  await createTable(dyn.url, table);
  const proxy = await startProxy(dyn.url);
  t.after(() => proxy.close());
  const args = ['--dynamodb-types', 'Bounce,Complaint,Delivery,Open', '--dynamodb-extra-attributes'];
  // every write fails at first: the live path's items are seen, none is written
  proxy.intercept = (rec) => (rec.target === 'BatchWriteItem'
    ? { status: 500, body: { __type: 'com.amazonaws.dynamodb#InternalServerError', message: 'down' } }
    : undefined);
  let srv = await startReplicating(proxy.url, { t, table, args });
  const posted = [];
  for (let round = 0; round < 3; round++) {
    for (const name of FIXTURES) {
      const ses = fresh(name, `${round}-${crypto.randomUUID().slice(0, 8)}`);
      posted.push({ ses, ts: await postEvent(srv, ses) });
    }
  }
  const n = posted.length;
  await waitFor(async () => {
    const live = sentItems(proxy, table);
    return live.size === n ? live : null;
  }, { what: () => `live items: ${sentItems(proxy, table).size} of ${n}` });
  const live = sentItems(proxy, table);
  for (const { ses, ts } of posted) {
    const item = live.get(`${ses.mail.messageId}|${ts}`);
    assert.ok(item, `live item of ${ses.mail.messageId}`);
    for (const [k, v] of Object.entries(expectedItem(ses, ts))) assert.deepEqual(item[k], v, k);
  }

  // the database holds the rows, none with its item
  const rows = await sqlite(srv.db, "SELECT kind, length(payload) AS len, eventId FROM outbox WHERE sink = 'dynamodb'");
  assert.equal(rows.length, n);
  for (const r of rows) {
    assert.equal(r.kind, 'event');
    assert.equal(r.len, 0, 'a dynamodb row keeps its item in memory only');
    assert.ok(r.eventId > 0);
  }

  // a crash with every row pending; one event is gone before the restart
  await srv.kill();
  const gone = posted[1];
  await sqlite(srv.db, `DELETE FROM SesEventMessages WHERE messageId = '${gone.ses.mail.messageId}'`);
  proxy.intercept = null;
  const before = proxy.writes().length;
  srv = await startReplicating(proxy.url, { t, table, args, dir: srv.dir });
  const done = await drained(srv, 30000);
  assert.equal(done.dead, 0);
  assert.match(srv.stderr, /outbox: a pending row's event is gone.*sink=dynamodb/);

  const again = new Map();
  for (const r of proxy.writes().slice(before)) {
    for (const req of r.body?.RequestItems?.[table] ?? []) {
      const it = req.PutRequest.Item;
      again.set(`${it.messageId.S}|${it.timeStamp.S}`, it);
    }
  }
  const goneKey = `${gone.ses.mail.messageId}|${gone.ts}`;
  assert.equal(again.size, n - 1);
  assert.equal(again.get(goneKey), undefined, 'the row of a deleted event is dropped');
  const stored = byKey(await scanItems(dyn.url, table));
  for (const [k, item] of live) {
    if (k === goneKey) continue;
    assert.deepEqual(again.get(k), item, `rebuilt item ${k}`);
    assert.deepEqual(stored.get(k), item, `stored item ${k}`);
  }
  assert.deepEqual(await sqlite(srv.db, "SELECT count(*) AS n FROM outbox WHERE sink = 'dynamodb'"), [{ n: 0 }]);

  // a row that goes dead is given its item, for a person
  proxy.intercept = (rec) => (rec.target === 'BatchWriteItem'
    ? { status: 400, body: { __type: 'com.amazonaws.dynamodb.v20120810#ResourceNotFoundException', message: 'no table' } }
    : undefined);
  const last = fresh(FIXTURES[0], `dead-${crypto.randomUUID().slice(0, 8)}`);
  await postEvent(srv, last);
  await waitFor(async () => (await replication(srv)).dead === 1);
  const dead = await sqlite(srv.db, "SELECT payload, state FROM outbox WHERE sink = 'dynamodb'");
  assert.equal(dead.length, 1);
  assert.equal(dead[0].state, 'dead');
  assert.equal(JSON.parse(dead[0].payload).messageId.S, last.mail.messageId);
  await srv.stop();
});
