// dynamodb.test.mjs - replication into a real DynamoDB-compatible server
// (dynalite) and back: the table made from schema/dynamodb-table.json, items
// exactly as the original Lambda wrote them (CONTRACT section 8), absent
// values left out, other types on request, seslog's extra attributes on
// request, key collisions counted, start-up errors, no secret in any log,
// and the round trip replicate -> `seslog import --from-dynamodb` (paginated,
// parallel segments) -> the same events.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import path from 'node:path';
import {
  sesFixture, uniqueBounce, sqlite, runSeslog, tempDir, get, countEvents,
} from './lib.mjs';
import {
  TABLE, AWS_ENV, missingTools, startDynalite, createTable, scanItems, byKey, expectedItem, aws,
  startReplicating, postEvent, drained, replication, metric, startProxy,
} from './dynamodb-lib.mjs';

const T = { timeout: 60000 };
let dyn;

before(async () => {
  const missing = missingTools();
  assert.equal(missing, null, `${missing}`);
  dyn = await startDynalite();
  await createTable(dyn.url);
});

after(async () => {
  if (dyn) await dyn.stop();
});

/** A fresh copy of an SES fixture with its own ids. */
function fresh(name, tag = crypto.randomUUID()) {
  const ses = sesFixture(name);
  ses.mail.messageId = `${tag}-${ses.mail.messageId}`.slice(0, 120);
  if (ses.bounce?.feedbackId) ses.bounce.feedbackId = `fb-${tag}`;
  if (ses.complaint?.feedbackId) ses.complaint.feedbackId = `fb-${tag}`;
  return ses;
}

const CONTRACT_COLUMNS = ['messageId', 'timeStamp', 'notificationType', 'reportingMTA', 'destinationAddress',
  'bouncedRecipients', 'complaintFeedbackType', 'feedbackId'];

test('the table from schema/dynamodb-table.json is the original one', T, async () => {
  const { Table: t } = await aws(dyn.url, ['dynamodb', 'describe-table', '--table-name', TABLE]);
  assert.deepEqual(t.KeySchema, [{ AttributeName: 'messageId', KeyType: 'HASH' },
    { AttributeName: 'timeStamp', KeyType: 'RANGE' }]);
  assert.equal(t.BillingModeSummary?.BillingMode, 'PAY_PER_REQUEST');
  const gsis = Object.fromEntries(t.GlobalSecondaryIndexes.map((g) => [g.IndexName, g]));
  assert.deepEqual(Object.keys(gsis).sort(),
    ['complaintFeedbackType-timeStamp-Index', 'notificationType-timeStamp-Index']);
  for (const [name, hash] of [['notificationType-timeStamp-Index', 'notificationType'],
    ['complaintFeedbackType-timeStamp-Index', 'complaintFeedbackType']]) {
    assert.deepEqual(gsis[name].KeySchema, [{ AttributeName: hash, KeyType: 'HASH' },
      { AttributeName: 'timeStamp', KeyType: 'RANGE' }]);
    assert.equal(gsis[name].Projection.ProjectionType, 'KEYS_ONLY');
  }
  for (const a of t.AttributeDefinitions) assert.equal(a.AttributeType, 'S');
});

test('bounces and complaints become exactly the Lambda\'s items; other types stay home', T, async (t) => {
  const table = 'Items1';
  await createTable(dyn.url, table);
  const srv = await startReplicating(dyn.url, { t, table });
  const events = [
    fresh('ses-notification-bounce-with-dsn-awsdocs'),
    fresh('ses-notification-bounce-no-dsn-multi-recipient-awsdocs'),
    fresh('ses-notification-complaint-with-feedback-awsdocs'),
    fresh('ses-notification-complaint-no-feedback-type-awsdocs'),
    fresh('ses-event-bounce-awsdocs'),
    fresh('ses-event-complaint-awsdocs'),
  ];
  const others = [fresh('ses-notification-delivery-awsdocs'), fresh('ses-event-open-awsdocs'),
    fresh('ses-event-send-awsdocs')];
  const want = new Map();
  for (const ses of events) {
    const ts = await postEvent(srv, ses);
    want.set(`${ses.mail.messageId}|${ts}`, expectedItem(ses, ts));
  }
  for (const ses of others) await postEvent(srv, ses);
  await drained(srv);

  const got = byKey(await scanItems(dyn.url, table));
  assert.deepEqual([...got.keys()].sort(), [...want.keys()].sort(), 'one item per bounce and complaint, nothing else');
  for (const [k, item] of want) assert.deepEqual(got.get(k), item, `item ${k}`);

  // the complaint without a feedback type has no complaintFeedbackType at all
  const noType = events[3];
  const item = [...got.values()].find((i) => i.messageId.S === noType.mail.messageId);
  assert.equal(noType.complaint.complaintFeedbackType, undefined);
  assert.deepEqual(Object.keys(item).sort(),
    ['destinationAddress', 'feedbackId', 'messageId', 'notificationType', 'timeStamp']);

  // replication state: /api/diagnostics and /metrics
  const rep = await replication(srv);
  assert.equal(rep.pending, 0);
  assert.equal(rep.dead, 0);
  assert.equal(rep.delivered, events.length);
  assert.match(rep.lastSuccessAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  assert.equal(rep.lastError, null);
  assert.equal(await metric(srv, 'seslog_outbox_pending', '{sink="dynamodb"}'), 0);
  assert.ok(await metric(srv, 'seslog_dynamodb_requests_total', '{outcome="ok"}') >= 1);
  assert.ok(await metric(srv, 'seslog_dynamodb_last_success_timestamp_seconds') > 0);
  assert.equal(await metric(srv, 'seslog_dynamodb_key_collisions_total'), 0);
  const log = srv.stderr;
  await srv.stop();
  assert.match(log, /msg="replicating to DynamoDB" table=Items1 endpoint=http:\/\/127\.0\.0\.1:\d+ region=us-east-1 types=Bounce,Complaint/);
  assert.ok(!srv.stderr.includes(AWS_ENV.AWS_SECRET_ACCESS_KEY), 'the secret key is never logged');
});

test('--dynamodb-types and --dynamodb-extra-attributes', T, async (t) => {
  const table = 'Items2';
  await createTable(dyn.url, table);
  const srv = await startReplicating(dyn.url, {
    t, table, args: ['--dynamodb-types', 'Bounce, complaint,Delivery,Open', '--dynamodb-extra-attributes'],
  });
  const bounce = fresh('ses-notification-bounce-no-dsn-multi-recipient-awsdocs');
  const complaint = fresh('ses-event-complaint-awsdocs');
  const delivery = fresh('ses-notification-delivery-awsdocs');
  const open = fresh('ses-event-open-awsdocs');
  const send = fresh('ses-event-send-awsdocs');
  const ts = {};
  for (const [name, ses] of Object.entries({ bounce, complaint, delivery, open, send })) ts[name] = await postEvent(srv, ses);
  await drained(srv);
  const items = await scanItems(dyn.url, table);
  const byId = Object.fromEntries(items.map((i) => [i.messageId.S, i]));
  assert.equal(items.length, 4, 'Send is not in the list');
  assert.equal(byId[send.mail.messageId], undefined);

  // the contract's attributes are all there, unchanged, and extras beside them
  for (const [name, ses] of Object.entries({ bounce, complaint, delivery, open })) {
    const item = byId[ses.mail.messageId];
    for (const [k, v] of Object.entries(expectedItem(ses, ts[name]))) assert.deepEqual(item[k], v, `${name}.${k}`);
    for (const v of Object.values(item)) assert.ok(v.S !== undefined || v.SS !== undefined, JSON.stringify(v));
  }
  const b = byId[bounce.mail.messageId];
  assert.deepEqual(b.bounceType, { S: bounce.bounce.bounceType });
  assert.deepEqual(b.bounceSubType, { S: bounce.bounce.bounceSubType });
  assert.deepEqual(b.feedbackId, { S: bounce.bounce.feedbackId });
  assert.deepEqual(b.source, { S: bounce.mail.source });
  assert.deepEqual([...b.recipients.SS].sort(),
    [...new Set(bounce.bounce.bouncedRecipients.map((r) => r.emailAddress))].sort());
  assert.ok(b.snsMessageId.S && b.topicArn.S);
  // other types carry the attributes of their type, named like the rest
  const d = byId[delivery.mail.messageId];
  assert.deepEqual(d.notificationType, { S: 'Delivery' });
  assert.deepEqual(d.reportingMTA, { S: delivery.delivery.reportingMTA });
  assert.equal(byId[open.mail.messageId].notificationType.S, 'Open');
  assert.equal(byId[open.mail.messageId].reportingMTA, undefined);
  assert.match(srv.stderr, /types=Bounce,Complaint,Delivery,Open/);
  await srv.stop();
});

test('two events sharing (messageId, timeStamp) are both kept by seslog and counted', T, async (t) => {
  const table = 'Items3';
  await createTable(dyn.url, table);
  const srv = await startReplicating(dyn.url, { t, table });
  const bounce = fresh('ses-notification-bounce-with-dsn-awsdocs', 'same');
  const complaint = fresh('ses-notification-complaint-with-feedback-awsdocs', 'other');
  complaint.mail.messageId = bounce.mail.messageId;
  const timestamp = '2026-03-01T10:00:00.000Z';
  await postEvent(srv, bounce, { timestamp });
  await postEvent(srv, complaint, { timestamp });
  await drained(srv);
  assert.equal(await countEvents(srv.db, `WHERE messageId = '${bounce.mail.messageId}'`), 2);
  const items = await scanItems(dyn.url, table);
  assert.equal(items.length, 1, 'DynamoDB has room for one');
  assert.deepEqual(items[0], expectedItem(complaint, timestamp), 'the later one wins, as sequential writes');
  assert.equal(await metric(srv, 'seslog_dynamodb_key_collisions_total'), 1);
  assert.equal((await replication(srv)).keyCollisions, 1);
  assert.match(srv.stderr, /two events share messageId and timeStamp/);
  await srv.stop();
});

test('missing region, credentials or a bad type list stop the start with status 2', T, async () => {
  const dir = tempDir('seslog-ddb-start-');
  const base = ['serve', '--listen', '127.0.0.1:0', '--db', path.join(dir, 'x.db'), '--dynamodb-table', TABLE];
  const none = { AWS_REGION: '', AWS_DEFAULT_REGION: '', AWS_ACCESS_KEY_ID: '', AWS_SECRET_ACCESS_KEY: '',
    AWS_SESSION_TOKEN: '' };
  let r = await runSeslog(base, { env: { ...none, AWS_ACCESS_KEY_ID: 'k', AWS_SECRET_ACCESS_KEY: 's' } });
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /AWS_REGION/);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  r = await runSeslog(base, { env: { ...none, AWS_DEFAULT_REGION: 'eu-west-1', AWS_ACCESS_KEY_ID: 'k' } });
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY/);
  r = await runSeslog([...base, '--dynamodb-types', 'Bounce,Bogus'], { env: { ...none, ...AWS_ENV } });
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /--dynamodb-types: unknown type "Bogus"/);
  r = await runSeslog([...base, '--dynamodb-endpoint', 'ftp://x'], { env: { ...none, ...AWS_ENV } });
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /http:\/\/ or https:\/\//);
  r = await runSeslog(['import', '--db', path.join(dir, 'y.db'), '--from-dynamodb', TABLE], { env: none });
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /AWS_REGION/);
});

/** The contract's columns (and optionally more) of the replicated events, keyed. */
// recipients as schema version 20 says to read it (stored '' when derivable)
const RECIPIENTS_SQL = `CASE WHEN recipients <> '' THEN recipients
  WHEN bouncedRecipients IS NULL THEN '["' || replace(destinationAddress, ',', '","') || '"]'
  WHEN json_valid(bouncedRecipients) THEN CASE json_array_length(bouncedRecipients) WHEN 0 THEN '[]'
    WHEN 1 THEN json_array(json_extract(bouncedRecipients, '$[0].emailAddress'))
    WHEN 2 THEN json_array(json_extract(bouncedRecipients, '$[0].emailAddress'), json_extract(bouncedRecipients, '$[1].emailAddress'))
    WHEN 3 THEN json_array(json_extract(bouncedRecipients, '$[0].emailAddress'), json_extract(bouncedRecipients, '$[1].emailAddress'),
      json_extract(bouncedRecipients, '$[2].emailAddress')) END END`;

async function rows(db, columns, where = "notificationType IN ('Bounce','Complaint')") {
  const list = await sqlite(db, `SELECT ${columns.map((c) => (c === 'recipients' ? `${RECIPIENTS_SQL} AS recipients` : c)).join(', ')} ` +
    `FROM SesEventMessages WHERE ${where}`);
  return new Map(list.map((r) => [`${r.messageId}|${r.timeStamp}`, r]));
}

test('round trip: replicate, then import --from-dynamodb (paginated, 3 segments) gives the same events', T, async (t) => {
  const table = 'Trip';
  await createTable(dyn.url, table);
  for (const extra of [false, true]) {
    const name = extra ? `${table}X` : table;
    if (extra) await createTable(dyn.url, name);
    const srv = await startReplicating(dyn.url, { t, table: name, args: extra ? ['--dynamodb-extra-attributes'] : [] });
    const names = ['ses-notification-bounce-with-dsn-awsdocs', 'ses-notification-bounce-no-dsn-multi-recipient-awsdocs',
      'ses-notification-complaint-with-feedback-awsdocs', 'ses-notification-complaint-no-feedback-type-awsdocs',
      'ses-event-bounce-awsdocs', 'ses-event-complaint-awsdocs', 'ses-notification-delivery-awsdocs'];
    for (let i = 0; i < 24; i++) await postEvent(srv, fresh(names[i % names.length]));
    await drained(srv);
    await srv.stop();

    // Scan through a proxy that asks for pages of 3 items, so every segment pages.
    const proxy = await startProxy(dyn.url);
    proxy.intercept = (rec, body) => (rec.target === 'Scan' ? { forward: { ...body, Limit: 3 } } : undefined);
    const dir = tempDir('seslog-ddb-import-');
    const db = path.join(dir, 'copy.db');
    const args = ['import', '--db', db, '--from-dynamodb', name, '--segments', '3'];
    const r = await runSeslog(args, { env: { ...AWS_ENV, SESLOG_DYNAMODB_ENDPOINT: proxy.url } });
    await proxy.close();
    assert.equal(r.code, 0, r.stderr);
    const want = 21; // 24 events, 3 of them Delivery (not replicated)
    assert.equal(r.stdout.trim().split('\n').pop(), `imported ${want}, duplicates 0, rejected 0`);
    const scans = proxy.requests.filter((q) => q.target === 'Scan');
    assert.deepEqual([...new Set(scans.map((q) => q.body.Segment))].sort(), [0, 1, 2]);
    assert.ok(scans.every((q) => q.body.TotalSegments === 3 && q.body.TableName === name));
    assert.ok(scans.filter((q) => q.body.ExclusiveStartKey).length >= 5, 'pages follow LastEvaluatedKey');
    assert.deepEqual(proxy.sigProblems, []);

    // the same events: the contract's columns (a bounce's feedbackId is not in the
    // Lambda's item, so it comes back only with the extra attributes)
    const extraCols = ['bounceType', 'bounceSubType', 'source', 'snsMessageId', 'topicArn', 'recipients'];
    const cols = extra ? [...CONTRACT_COLUMNS, ...extraCols] : CONTRACT_COLUMNS;
    const src = await rows(srv.db, cols);
    const copy = await rows(db, cols);
    assert.equal(copy.size, want);
    assert.deepEqual([...copy.keys()].sort(), [...src.keys()].sort());
    for (const [k, s] of src) {
      const c = copy.get(k);
      if (!extra && s.notificationType === 'Bounce') s.feedbackId = null;
      if (extra) {
        // a string set has no order
        s.recipients = JSON.stringify(JSON.parse(s.recipients).sort());
        c.recipients = JSON.stringify(JSON.parse(c.recipients).sort());
      }
      assert.deepEqual(c, s, `event ${k}`);
    }
    // importing again adds nothing
    const again = await runSeslog(args, { env: { ...AWS_ENV, SESLOG_DYNAMODB_ENDPOINT: dyn.url } });
    assert.equal(again.code, 0, again.stderr);
    assert.equal(again.stdout.trim().split('\n').pop(), `imported 0, duplicates ${want}, rejected 0`);
    assert.equal(await countEvents(db), want);
  }
});

test('import --from-dynamodb: a missing table and an unusable item', T, async () => {
  const dir = tempDir('seslog-ddb-import2-');
  const env = { ...AWS_ENV, SESLOG_DYNAMODB_ENDPOINT: dyn.url };
  let r = await runSeslog(['import', '--db', path.join(dir, 'a.db'), '--from-dynamodb', 'NoSuchTable'], { env });
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /reading DynamoDB table NoSuchTable failed.*ResourceNotFoundException/);
  assert.equal(r.stdout.trim(), 'imported 0, duplicates 0, rejected 0');

  const table = 'Odd';
  await createTable(dyn.url, table);
  const put = (item) => aws(dyn.url, ['dynamodb', 'put-item', '--table-name', table, '--item', JSON.stringify(item)]);
  await put({ messageId: { S: 'good-1' }, timeStamp: { S: '2026-01-02T03:04:05.678Z' }, notificationType: { S: 'Complaint' },
    destinationAddress: { S: 'a@example.com' }, feedbackId: { S: 'fb-good-1' } });
  await put({ messageId: { S: 'bad-1' }, timeStamp: { S: 'yesterday' }, notificationType: { S: 'Bounce' } });
  r = await runSeslog(['import', '--db', path.join(dir, 'b.db'), '--from-dynamodb', table], { env });
  assert.equal(r.code, 1, r.stderr);
  assert.equal(r.stdout.trim(), 'imported 1, duplicates 0, rejected 1');
  assert.match(r.stderr, /^Odd:\d+: not a usable DynamoDB item \(messageId bad-1\): .*timeStamp/m);
  const [row] = await sqlite(path.join(dir, 'b.db'), 'SELECT messageId, timeStamp, notificationType, destinationAddress, feedbackId FROM SesEventMessages');
  assert.deepEqual(row, { messageId: 'good-1', timeStamp: '2026-01-02T03:04:05.678Z', notificationType: 'Complaint',
    destinationAddress: 'a@example.com', feedbackId: 'fb-good-1' });
});

test('/api/diagnostics shows the outbox without replication too', T, async (t) => {
  const { startServer } = await import('./lib.mjs');
  const srv = await startServer({ t });
  const res = await get(srv.url, '/api/diagnostics');
  assert.equal(res.status, 200);
  assert.deepEqual(res.json.outbox, {});
  const m = await get(srv.url, '/metrics');
  assert.ok(!m.text.includes('seslog_dynamodb_'), 'no replication series without --dynamodb-table');
  await srv.stop();
});
