// import-archive.test.mjs - `seslog import` of archives as an investigator
// has them: nothing lost without a word (a cut record among concatenated ones,
// files and folders mixed, a write the database refuses, counts that add up),
// what Kinesis Data Firehose writes to S3 (folders of .gz files of records
// concatenated without separators), a Lambda's CloudWatch log, EventBridge
// events, Lambda SNS events without signatures, one event in several shapes
// stored once, binary garbage, memory bounded on large inputs, progress.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import crypto from 'node:crypto';
import { spawn } from 'node:child_process';
import util from 'node:util';
import {
  BIN, runSeslog, tempDir, signEnvelope, sqlite, countEvents, q, sesFixture, isoMs, defaultCerts,
} from './lib.mjs';
import { genEvent, genFile, genText, pipelineItem, twinEvents, eventTime } from './import-gen.mjs';

const T = { timeout: 180000 };
const SAFE_ENV = { SESLOG_CONNECT_TO: 'sns.us-east-1.amazonaws.com:443:127.0.0.1:1' };

/** The last two stdout lines: "read N files: N records[, N log lines ...]" and the summary. */
function summary(stdout) {
  const lines = stdout.trimEnd().split('\n');
  const m = /^imported (\d+), duplicates (\d+), rejected (\d+)$/.exec(lines[lines.length - 1]);
  assert.ok(m, `last stdout line is not the summary:\n${stdout}`);
  const r = /^read (\d+) files?(?: \(\d+ DynamoDB export manifests? skipped\))?(?: \(\d+ files? of the database itself skipped\))?: (\d+) records?(?:, (\d+) log lines? without an event)?$/.exec(lines[lines.length - 2] ?? '');
  assert.ok(r, `no "read N files: N records" line before the summary:\n${stdout}`);
  const s = {
    imported: Number(m[1]), duplicates: Number(m[2]), rejected: Number(m[3]),
    files: Number(r[1]), records: Number(r[2]), logLines: Number(r[3] ?? 0),
  };
  assert.equal(s.imported + s.duplicates + s.rejected, s.records, `the counts do not add up:\n${stdout}`);
  return s;
}

function newDb() {
  const dir = tempDir('seslog-import-archive-');
  return { dir, db: path.join(dir, 'db', 'seslog.db') };
}

const esc = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

test('a cut record among 100 concatenated ones: the other 99 imported, the bad one reported at its line and byte', T, async () => {
  const { dir, db } = newDb();
  const recs = [];
  for (let i = 0; i < 100; i++) recs.push(JSON.stringify(genEvent(i, `cut-${crypto.randomUUID()}`)));
  const badOffset = Buffer.byteLength(recs.slice(0, 49).join(''));
  const cut = recs[49].slice(0, 300); // inside a string: the next record's quotes flip
  const concat = path.join(dir, 'firehose-records');
  fs.writeFileSync(concat, recs.slice(0, 49).join('') + cut + recs.slice(50).join(''));
  const r = await runSeslog(['import', '--db', db, concat], { env: SAFE_ENV });
  assert.deepEqual(summary(r.stdout), { imported: 99, duplicates: 0, rejected: 1, files: 1, records: 100, logLines: 0 }, r.stderr);
  assert.equal(r.code, 1);
  const reports = r.stderr.split('\n').filter((l) => l.startsWith(concat));
  assert.equal(reports.length, 1, r.stderr);
  assert.match(reports[0], new RegExp(`^${esc(concat)}:1: at byte ${badOffset}: not valid JSON`));
  assert.equal(await countEvents(db), 99);

  // in a file larger than the 16 MiB a document may have, the cut record is no larger document
  const many = [];
  for (let i = 0; i < 16000; i++) many.push(JSON.stringify(genEvent(i, `big-cut-${crypto.randomUUID()}`)));
  const bigOffset = Buffer.byteLength(many.slice(0, 10).join(''));
  many[10] = many[10].slice(0, 500);
  const bigConcat = path.join(dir, 'big-records');
  fs.writeFileSync(bigConcat, many.join(''));
  assert.ok(fs.statSync(bigConcat).size > 17 << 20);
  const { db: dbBig } = newDb();
  const rb = await runSeslog(['import', '--db', dbBig, bigConcat], { env: SAFE_ENV });
  assert.deepEqual(summary(rb.stdout), { imported: 15999, duplicates: 0, rejected: 1, files: 1, records: 16000, logLines: 0 }, rb.stderr);
  assert.match(rb.stderr, new RegExp(`^${esc(bigConcat)}:1: at byte ${bigOffset}: not valid JSON`, 'm'));

  // the same records one a line, the cut one on line 37 (mid-line cuts and a cut between two keys)
  const lines = recs.map((l, i) => (i === 36 ? l.slice(0, 700) : l));
  lines[60] = lines[60].replace(/,"mail":/, ',"mail":{"x":');
  // a Lambda event with a bad value after its record: one rejection, its inner Sns object not taken for a document
  const inner = { Type: 'Notification', MessageId: crypto.randomUUID(), TopicArn: 'arn:aws:sns:us-east-1:123456789012:t',
    Message: recs[79], Timestamp: '2026-11-01T00:00:00.000Z' };
  lines[79] = `{"Records":[{"EventSource":"aws:sns","Sns":${JSON.stringify(inner)}}],"x":tru}`;
  const jsonl = path.join(dir, 'lines.jsonl');
  fs.writeFileSync(jsonl, `${lines.join('\n')}\n`);
  const { db: db2 } = newDb();
  const r2 = await runSeslog(['import', '--db', db2, jsonl], { env: SAFE_ENV });
  assert.deepEqual(summary(r2.stdout), { imported: 97, duplicates: 0, rejected: 3, files: 1, records: 100, logLines: 0 }, r2.stderr);
  assert.match(r2.stderr, new RegExp(`^${esc(jsonl)}:80: at byte \\d+: not valid JSON$`, 'm'));
  assert.match(r2.stderr, new RegExp(`^${esc(jsonl)}:37: at byte \\d+: not valid JSON`, 'm'));
  assert.match(r2.stderr, new RegExp(`^${esc(jsonl)}:61: at byte \\d+: not valid JSON`, 'm'));
});

test('files and folders mixed: the pending batch is written, every path is read, in order', T, async () => {
  const { dir, db } = newDb();
  const tag = crypto.randomUUID();
  const a = path.join(dir, 'a.jsonl');
  genFile(a, 1403, 'jsonl', false, `a-${tag}`);
  const sub = path.join(dir, 'somedir', 'deeper');
  fs.mkdirSync(sub, { recursive: true });
  genFile(path.join(dir, 'somedir', 'c.json'), 20, 'array', false, `c-${tag}`);
  genFile(path.join(sub, 'd.jsonl.gz'), 30, 'jsonl', true, `d-${tag}`);
  const b = path.join(dir, 'b.jsonl');
  genFile(b, 7, 'jsonl', false, `b-${tag}`);
  const r = await runSeslog(['import', '--db', db, a, path.join(dir, 'somedir'), b], { env: SAFE_ENV });
  assert.deepEqual(summary(r.stdout), { imported: 1460, duplicates: 0, rejected: 0, files: 4, records: 1460, logLines: 0 }, r.stderr);
  assert.equal(r.code, 0, r.stderr);
  for (const [p, n] of [['a', 1403], ['c', 20], ['d', 30], ['b', 7]]) {
    assert.equal(await countEvents(db, `WHERE messageId LIKE ${q(`${p}-${tag}-%`)}`), n, p);
  }
  // the database's own files in a folder walked are not read (seslog import data/ with data/seslog.db)
  const again = await runSeslog(['import', '--db', db, path.dirname(db), b], { env: SAFE_ENV });
  assert.deepEqual(summary(again.stdout), { imported: 0, duplicates: 7, rejected: 0, files: 1, records: 7, logLines: 0 }, again.stderr);
  assert.match(again.stdout, /\(\d+ files? of the database itself skipped\)/);
  assert.equal(again.code, 0, again.stderr);

  // gzip on standard input, as `aws s3 cp s3://... - | seslog import -` gives it
  const gz = zlib.gzipSync(`${JSON.stringify(genEvent(0, `stdin-${tag}`))}\n${JSON.stringify(genEvent(1, `stdin-${tag}`))}`);
  const s = await runSeslog(['import', '--db', db, '-'], { env: SAFE_ENV, input: gz });
  assert.deepEqual(summary(s.stdout), { imported: 2, duplicates: 0, rejected: 0, files: 1, records: 2, logLines: 0 }, s.stderr);
});

test('a DynamoDB export as synced from S3: gzip data files of {"Item":...} lines, manifests skipped', T, async () => {
  const { dir, db } = newDb();
  const tag = crypto.randomUUID();
  const exp = path.join(dir, 'AWSDynamoDB', '01700000000000-abcdef12');
  fs.mkdirSync(path.join(exp, 'data'), { recursive: true });
  fs.writeFileSync(path.join(exp, 'manifest-summary.json'), JSON.stringify({ version: '2020-06-30', itemCount: 6, outputFormat: 'DYNAMODB_JSON' }));
  fs.writeFileSync(path.join(exp, 'manifest-summary.md5'), 'd41d8cd98f00b204e9800998ecf8427e');
  fs.writeFileSync(path.join(exp, 'manifest-files.json'), JSON.stringify({ itemCount: 3, dataFileS3Key: 'data/a.json.gz' }));
  fs.writeFileSync(path.join(exp, 'manifest-files.md5'), 'd41d8cd98f00b204e9800998ecf8427e');
  fs.writeFileSync(path.join(dir, 'AWSDynamoDB', '_started'), '');
  for (const f of ['a', 'b']) {
    const lines = [];
    for (let i = 0; i < 3; i++) {
      const item = { messageId: `ddb-${f}${i}-${tag}`, timeStamp: `2026-11-0${i + 1}T10:00:00.000Z`, notificationType: 'Complaint',
        complaintFeedbackType: 'abuse', feedbackId: `fb-${f}${i}-${tag}`, destinationAddress: 'c@example.net' };
      lines.push(JSON.stringify({ Item: Object.fromEntries(Object.entries(item).map(([k, v]) => [k, { S: v }])) }));
    }
    fs.writeFileSync(path.join(exp, 'data', `${f}.json.gz`), zlib.gzipSync(`${lines.join('\n')}\n`));
  }
  const r = await runSeslog(['import', '--db', db, path.join(dir, 'AWSDynamoDB')], { env: SAFE_ENV });
  assert.deepEqual(summary(r.stdout), { imported: 6, duplicates: 0, rejected: 0, files: 3, records: 6, logLines: 0 }, r.stderr);
  assert.match(r.stdout, /\(4 DynamoDB export manifests skipped\)/);
  assert.equal(r.code, 0, r.stderr);
});

test('import --help teaches the shapes', T, async () => {
  const r = await runSeslog(['import', '--help']);
  assert.equal(r.code, 0);
  for (const w of ['folder', 'gzip', 'Firehose', 'CloudWatch', 'EventBridge', 'Lambda SNS event',
    'DynamoDB item', 'SNS envelope', '--verify', 'read N files']) assert.ok(r.stdout.includes(w), `--help lacks ${w}`);
});

test('a write the database refuses is a rejection with a reason, never a duplicate; so is a document over 16 MiB, not one of 5 MiB', T, async () => {
  const { dir, db } = newDb();
  const tag = crypto.randomUUID();
  const first = path.join(dir, 'first.json');
  fs.writeFileSync(first, JSON.stringify(genEvent(0, `first-${tag}`)));
  assert.equal((await runSeslog(['import', '--db', db, first], { env: SAFE_ENV })).code, 0);
  // real SQLite refusals: a trigger that aborts the INSERT, one that makes it store nothing
  await sqlite(db, `CREATE TRIGGER refuse_abort BEFORE INSERT ON SesEventMessages WHEN NEW.messageId = ${q(`x-${tag}-000000003`)}
    BEGIN SELECT RAISE(ABORT, 'refused by a test trigger'); END;
    CREATE TRIGGER refuse_ignore BEFORE INSERT ON SesEventMessages WHEN NEW.messageId = ${q(`x-${tag}-000000006`)}
    BEGIN SELECT RAISE(IGNORE); END;`);
  const lines = [];
  for (let i = 1; i <= 8; i++) lines.push(JSON.stringify(genEvent(i, `x-${tag}`)));
  const large = genEvent(9, `x-${tag}`);
  large.mail.headers.push({ name: 'X-Padding', value: 'p'.repeat(5 << 20) });
  lines.push(JSON.stringify(large));
  const huge = genEvent(10, `x-${tag}`);
  huge.mail.headers.push({ name: 'X-Padding', value: 'p'.repeat(17 << 20) });
  lines.push(JSON.stringify(huge));
  const file = path.join(dir, 'refused.jsonl');
  fs.writeFileSync(file, `${lines.join('\n')}\n`);
  const r = await runSeslog(['import', '--db', db, file], { env: SAFE_ENV });
  assert.deepEqual(summary(r.stdout), { imported: 7, duplicates: 0, rejected: 3, files: 1, records: 10, logLines: 0 }, r.stderr);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, new RegExp(`^${esc(file)}:3: at byte \\d+: not stored: .*refused by a test trigger`, 'm'));
  assert.match(r.stderr, new RegExp(`^${esc(file)}:6: at byte \\d+: not stored: the INSERT stored no row`, 'm'));
  assert.match(r.stderr, new RegExp(`^${esc(file)}:10: at byte \\d+: a document larger than 16 MiB`, 'm'));
  assert.equal(r.stderr.trim().split('\n').length, 3, r.stderr);
  assert.equal(await countEvents(db, `WHERE messageId LIKE ${q(`x-${tag}-%`)}`), 7);
  // the 5 MiB event is stored whole
  const stored = await runSeslog(['query', '--db', db, '--message-id', `x-${tag}-000000009`, '--format', 'jsonl']);
  assert.equal(stored.code, 0, stored.stderr);
  assert.equal(JSON.parse(stored.stdout).raw.mail.headers.at(-1).value.length, 5 << 20);
});

test('a Firehose tree as `aws s3 sync` leaves it: dated folders of .gz files of concatenated records, exact counts', T, async () => {
  const { dir, db } = newDb();
  const tag = crypto.randomUUID();
  const root = path.join(dir, 'bucket', 'ses-events');
  let n = 0;
  let files = 0;
  for (const day of ['01', '02', '10']) {
    for (const hour of ['00', '07', '23']) {
      const folder = path.join(root, '2026', '11', day, hour);
      fs.mkdirSync(folder, { recursive: true });
      for (let k = 0; k < 2; k++) {
        const count = 50 + ((n * 7) % 40);
        const recs = [];
        for (let i = 0; i < count; i++) recs.push(JSON.stringify(genEvent(n + i, `fh-${tag}`)));
        n += count;
        // Firehose names end in a random id; one in three has no .gz suffix (gzip told by its magic)
        const name = `ses-firehose-1-2026-11-${day}-${hour}-${k}0-00-${crypto.randomUUID()}${files % 3 === 2 ? '' : '.gz'}`;
        fs.writeFileSync(path.join(folder, name), zlib.gzipSync(recs.join('')));
        files++;
      }
    }
  }
  // a plain (uncompressed) file of concatenated records beside them
  const plain = [];
  for (let i = 0; i < 25; i++) plain.push(JSON.stringify(genEvent(n + i, `fh-${tag}`)));
  n += 25;
  fs.writeFileSync(path.join(root, '2026', '11', '10', 'plain-records'), plain.join(''));
  files++;
  const r = await runSeslog(['import', '--db', db, path.join(dir, 'bucket')], { env: SAFE_ENV });
  assert.deepEqual(summary(r.stdout), { imported: n, duplicates: 0, rejected: 0, files, records: n, logLines: 0 }, r.stderr);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(await countEvents(db, `WHERE messageId LIKE ${q(`fh-${tag}-%`)}`), n);
  const again = await runSeslog(['import', '--db', db, path.join(dir, 'bucket')], { env: SAFE_ENV });
  assert.deepEqual(summary(again.stdout), { imported: 0, duplicates: n, rejected: 0, files, records: n, logLines: 0 }, again.stderr);

  // a .gz cut short (an interrupted download): what it held before the cut is read, one line, exit 2
  const recs = [];
  for (let i = 0; i < 2000; i++) recs.push(JSON.stringify(genEvent(i, `trunc-${tag}`)));
  const gz = zlib.gzipSync(recs.join(''));
  const cutFile = path.join(dir, 'cut.gz');
  fs.writeFileSync(cutFile, gz.subarray(0, gz.length >> 1));
  const c = await runSeslog(['import', '--db', db, cutFile], { env: SAFE_ENV });
  assert.equal(c.code, 2, c.stderr);
  const s = summary(c.stdout);
  assert.ok(s.imported > 500 && s.rejected === 1, c.stdout);
  assert.match(c.stderr, new RegExp(`^seslog import: ${esc(cutFile)} could not be read past byte \\d+ \\(unexpected end of file\\)`, 'm'));
  assert.equal(await countEvents(db, `WHERE messageId LIKE ${q(`trunc-${tag}-%`)}`), s.imported);
});

/** A Lambda SNS event around an envelope, signature fields dropped when bare. */
function lambdaEvent(env, { bare = false } = {}) {
  const sns = {
    Type: env.Type, MessageId: env.MessageId, TopicArn: env.TopicArn, Subject: null, Message: env.Message,
    Timestamp: env.Timestamp, SignatureVersion: env.SignatureVersion, Signature: env.Signature,
    SigningCertUrl: env.SigningCertURL, UnsubscribeUrl: env.UnsubscribeURL, MessageAttributes: {},
  };
  if (bare) for (const k of ['SignatureVersion', 'Signature', 'SigningCertUrl', 'UnsubscribeUrl']) delete sns[k];
  return { Records: [{ EventSource: 'aws:sns', EventVersion: '1.0', EventSubscriptionArn: `${env.TopicArn}:${crypto.randomUUID()}`, Sns: sns }] };
}

/** An EventBridge event as an SES event destination sends it. */
function eventBridge(ses) {
  return {
    version: '0', id: crypto.randomUUID(), 'detail-type': `Email ${ses.eventType}`, source: 'aws.ses',
    account: '123456789012', time: ses.mail.timestamp, region: 'us-east-1',
    resources: ['arn:aws:ses:us-east-1:123456789012:configuration-set/my-config-set'], detail: ses,
  };
}

test('shapes: a Lambda\'s CloudWatch log, EventBridge events, a Lambda SNS event without signature fields', T, async () => {
  const { dir, db } = newDb();
  const tag = crypto.randomUUID();
  const e = (i) => genEvent(i, `shape-${tag}`);
  const req = () => crypto.randomUUID();
  const log = [
    `2026-11-03T10:00:00.000Z\tINIT_START Runtime Version: nodejs:20.v30`,
    `START RequestId: ${req()} Version: $LATEST`,
    `2026-11-03T10:00:00.100Z\t${req()}\tINFO\t${JSON.stringify(lambdaEvent(signEnvelope({ message: e(0) })))}`,
    `2026-11-03T10:00:00.200Z\t${req()}\tINFO\tstoring the event`,
    `END RequestId: ${req()}`,
    `REPORT RequestId: ${req()}\tDuration: 12.34 ms\tBilled Duration: 13 ms`,
    `2026-11-03T10:00:01.000Z\t${req()}\tINFO\t${JSON.stringify(e(1))}`,
    // a CloudWatch export to S3 puts the ingestion time first
    `2026-11-03T10:00:02.500Z 2026-11-03T10:00:02.000Z\t${req()}\tINFO\t${JSON.stringify(e(2))}`,
    `[INFO]\t2026-11-03T10:00:03.000Z\t${req()}\t${JSON.stringify(e(3))}`,
    `2026-11-03T10:00:04.000Z\t${req()}\tINFO\t{"eventType":"Send", cut`,
  ];
  const cw = path.join(dir, 'cloudwatch.log');
  fs.writeFileSync(cw, `${log.join('\n')}\n`);
  const eb = path.join(dir, 'eventbridge.jsonl');
  fs.writeFileSync(eb, `${[4, 5, 6].map((i) => JSON.stringify(eventBridge(e(i)))).join('\n')}\n`);
  const lam = path.join(dir, 'lambda.json');
  fs.writeFileSync(lam, JSON.stringify(lambdaEvent(signEnvelope({ message: e(7), timestamp: '2026-11-03T11:00:00.000Z' }), { bare: true })));

  const r = await runSeslog(['import', '--db', db, cw, eb, lam], { env: SAFE_ENV });
  assert.deepEqual(summary(r.stdout), { imported: 8, duplicates: 0, rejected: 1, files: 3, records: 9, logLines: 5 }, r.stderr);
  assert.match(r.stderr, new RegExp(`^${esc(cw)}:10: at byte \\d+: a log line whose JSON is not valid`, 'm'));
  for (let i = 0; i < 8; i++) assert.equal(await countEvents(db, `WHERE messageId = ${q(e(i).mail.messageId)}`), 1, `event ${i}`);
  const [row] = await sqlite(db, `SELECT timeStamp, notificationType FROM SesEventMessages WHERE messageId = ${q(e(7).mail.messageId)}`);
  assert.deepEqual(row, { timeStamp: '2026-11-03T11:00:00.000Z', notificationType: e(7).eventType });

  // --verify refuses the Lambda event without a signature
  const { db: db2, dir: dir2 } = newDb();
  const certDir = path.join(dir2, 'certs');
  fs.mkdirSync(certDir);
  for (const c of defaultCerts()) fs.copyFileSync(c, path.join(certDir, path.basename(c)));
  const v = await runSeslog(['import', '--db', db2, '--verify', '--sns-cert-dir', certDir, lam], { env: SAFE_ENV });
  assert.deepEqual(summary(v.stdout), { imported: 0, duplicates: 0, rejected: 1, files: 1, records: 1, logLines: 0 }, v.stderr);
  assert.equal(v.code, 1);
});

test('a Node Lambda\'s log: events printed over many lines by console.log, as JSON or as util.inspect', T, async () => {
  const { dir, db } = newDb();
  const tag = crypto.randomUUID();
  const e = (i) => genEvent(i, `node-${tag}`);
  const bounce = e(4); // a template of each type; 4 is a bounce
  assert.equal(bounce.eventType, 'Bounce');
  const req = () => crypto.randomUUID();
  const at = (s) => `2026-11-03T10:00:${String(s).padStart(2, '0')}.000Z\t${req()}\tINFO\t`;
  const log = [
    `START RequestId: ${req()} Version: $LATEST`,
    // console.log('Received event:', JSON.stringify(event, null, 2))
    `${at(1)}Received event: ${JSON.stringify(lambdaEvent(signEnvelope({ message: e(0) })), null, 2)}`,
    // console.log(JSON.stringify(event, null, 4)), lines ending in \r\n
    `${at(2)}${JSON.stringify(e(1), null, 4).replace(/\n/g, '\r\n')}`,
    // console.log(event) with util.inspect's whole depth: keys bare, strings in ' quotes
    `${at(3)}${util.inspect(e(2), { depth: null })}`,
    `${at(4)}${util.inspect(bounce, { depth: null, breakLength: 40 })}`,
    `${at(5)}done`,
    // console.log(event) as Lambda prints it: util.inspect stops at depth 2 ([Object], [Array])
    `${at(6)}${util.inspect(lambdaEvent(signEnvelope({ message: e(3) })))}`,
    `END RequestId: ${req()}`,
    `REPORT RequestId: ${req()}\tDuration: 12.34 ms\tBilled Duration: 13 ms`,
  ];
  assert.ok(log[3].split('\n').length > 10 && log[4].includes("eventType: '") && log[6].includes('[Object]'), log.join('\n'));
  const file = path.join(dir, 'node-lambda.log');
  fs.writeFileSync(file, `${log.join('\n')}\n`);
  const r = await runSeslog(['import', '--db', db, file], { env: SAFE_ENV });
  assert.deepEqual(summary(r.stdout), { imported: 4, duplicates: 0, rejected: 1, files: 1, records: 5, logLines: 4 }, r.stderr);
  const cutLine = log.slice(0, 6).join('\n').split('\n').length + 1;
  assert.match(r.stderr, new RegExp(`^${esc(file)}:${cutLine}: at byte \\d+: Node's console.log printed this object cut short`, 'm'));
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  for (const ev of [e(0), e(1), e(2), bounce]) {
    const [row] = await sqlite(db, `SELECT count(*) n, min(notificationType) t, min(recipients) r FROM SesEventMessages WHERE messageId = ${q(ev.mail.messageId)}`);
    assert.equal(row.n, 1, ev.mail.messageId);
    assert.equal(row.t, ev.eventType);
  }
  // the bounce read from util.inspect's text is the event: recipients, diagnostic, raw JSON
  const out = await runSeslog(['query', '--db', db, '--message-id', bounce.mail.messageId, '--format', 'jsonl']);
  const got = JSON.parse(out.stdout);
  assert.deepEqual(got.raw, bounce);
  assert.deepEqual(got.recipients, bounce.bounce.bouncedRecipients.map((b) => b.emailAddress));
  // the same events as JSON lines are all duplicates
  const again = path.join(dir, 'again.jsonl');
  fs.writeFileSync(again, `${[e(1), e(2), bounce].map((ev) => JSON.stringify(ev)).join('\n')}\n`);
  const r2 = await runSeslog(['import', '--db', db, again], { env: SAFE_ENV });
  assert.deepEqual(summary(r2.stdout), { imported: 0, duplicates: 3, rejected: 0, files: 1, records: 3, logLines: 0 }, r2.stderr);
});

test('one event in several shapes is stored once: bare SES JSON, SNS envelope, Lambda event, EventBridge', T, async () => {
  const { dir, db } = newDb();
  const tag = crypto.randomUUID();
  const names = ['ses-event-send-awsdocs', 'ses-event-delivery-awsdocs', 'ses-event-open-awsdocs',
    'ses-event-click-awsdocs', 'ses-event-bounce-awsdocs', 'ses-notification-delivery-awsdocs',
    'ses-notification-complaint-with-feedback-awsdocs'];
  const events = names.map((n) => {
    const ev = sesFixture(n);
    ev.mail.messageId = `${n}-${tag}`;
    return ev;
  });
  const bare = path.join(dir, 'bare.jsonl');
  fs.writeFileSync(bare, `${events.map((ev) => JSON.stringify(ev)).join('\n')}\n`);
  const r1 = await runSeslog(['import', '--db', db, bare], { env: SAFE_ENV });
  assert.deepEqual(summary(r1.stdout), { imported: events.length, duplicates: 0, rejected: 0, files: 1, records: events.length, logLines: 0 }, r1.stderr);

  const wrapped = [];
  events.forEach((ev, i) => {
    const env = signEnvelope({ message: ev, timestamp: `2026-11-0${1 + (i % 5)}T08:00:00.${String(i).padStart(3, '0')}Z` });
    wrapped.push(JSON.stringify(env));
    wrapped.push(JSON.stringify(lambdaEvent(signEnvelope({ message: ev, timestamp: '2026-11-20T00:00:00.000Z' }))));
    if (ev.eventType) wrapped.push(JSON.stringify(eventBridge(ev)));
  });
  const wrappedFile = path.join(dir, 'wrapped.jsonl');
  fs.writeFileSync(wrappedFile, `${wrapped.join('\n')}\n`);
  const r2 = await runSeslog(['import', '--db', db, wrappedFile], { env: SAFE_ENV });
  assert.deepEqual(summary(r2.stdout), { imported: 0, duplicates: wrapped.length, rejected: 0, files: 1, records: wrapped.length, logLines: 0 }, r2.stderr);
  assert.equal(await countEvents(db, `WHERE messageId LIKE ${q(`%-${tag}`)}`), events.length);
  // the first copy's timeStamp stays: the bare event's own time
  const send = events[0];
  const [row] = await sqlite(db, `SELECT timeStamp FROM SesEventMessages WHERE messageId = ${q(send.mail.messageId)}`);
  assert.equal(row.timeStamp, isoMs(send.mail.timestamp));

  // two different events sharing (messageId, timeStamp) are both kept
  const other = JSON.parse(JSON.stringify(events[1]));
  other.delivery.smtpResponse = '250 2.0.0 OK (a different event)';
  const diff = path.join(dir, 'different.json');
  fs.writeFileSync(diff, JSON.stringify(other));
  const r3 = await runSeslog(['import', '--db', db, diff], { env: SAFE_ENV });
  assert.deepEqual(summary(r3.stdout), { imported: 1, duplicates: 0, rejected: 0, files: 1, records: 1, logLines: 0 }, r3.stderr);
});

test('a DynamoDB item and the same event as SES JSON are one event, whichever came first', T, async () => {
  const tag = crypto.randomUUID();
  const events = twinEvents(tag);
  const own = eventTime; // the event's own time, and the SNS Timestamp 2.5 s later
  const snsTs = (ev) => new Date(own(ev) + 2500).toISOString();
  const { dir, db } = newDb();
  const items = path.join(dir, 'items.json');
  fs.writeFileSync(items, `${events.map((ev) => JSON.stringify(pipelineItem(ev, snsTs(ev)))).join('\n')}\n`);
  const envelopes = path.join(dir, 'envelopes.jsonl');
  fs.writeFileSync(envelopes, `${events.map((ev) => JSON.stringify(signEnvelope({ message: ev, timestamp: snsTs(ev) }))).join('\n')}\n`);
  const bare = path.join(dir, 'bare.jsonl');
  fs.writeFileSync(bare, `${events.map((ev) => JSON.stringify(ev)).join('\n')}\n`);
  const n = events.length;
  const imp = async (file, database) => summary((await runSeslog(['import', '--db', database, file], { env: SAFE_ENV })).stdout);
  const all = (database) => countEvents(database, `WHERE messageId LIKE ${q(`%-${tag}`)}`);

  // SNS envelopes first (the same SNS Timestamp), then the DynamoDB export, then the bare events
  assert.deepEqual(await imp(envelopes, db), { imported: n, duplicates: 0, rejected: 0, files: 1, records: n, logLines: 0 });
  assert.deepEqual(await imp(items, db), { imported: 0, duplicates: n, rejected: 0, files: 1, records: n, logLines: 0 });
  assert.deepEqual(await imp(bare, db), { imported: 0, duplicates: n, rejected: 0, files: 1, records: n, logLines: 0 });
  assert.equal(await all(db), n);

  // the DynamoDB export first, then the bare events (their own time, not the SNS one), then the envelopes
  const { db: db2 } = newDb();
  assert.deepEqual(await imp(items, db2), { imported: n, duplicates: 0, rejected: 0, files: 1, records: n, logLines: 0 });
  assert.deepEqual(await imp(bare, db2), { imported: 0, duplicates: n, rejected: 0, files: 1, records: n, logLines: 0 });
  assert.deepEqual(await imp(envelopes, db2), { imported: 0, duplicates: n, rejected: 0, files: 1, records: n, logLines: 0 });
  assert.equal(await all(db2), n);

  // what is not the same event is kept: a second delivery of the mail (another item, another
  // time), an item of another type for the mail, a delivery a day later
  const d = events[0];
  const more = [pipelineItem(d, new Date(own(d) + 60000).toISOString()),
    pipelineItem({ ...d, notificationType: 'Complaint', complaint: { complaintFeedbackType: 'abuse', feedbackId: `fb-${tag}` } }, snsTs(d))];
  const later = JSON.parse(JSON.stringify(d));
  later.delivery.timestamp = new Date(own(d) + 86400e3).toISOString();
  const moreFile = path.join(dir, 'more.json');
  fs.writeFileSync(moreFile, `${more.map((x) => JSON.stringify(x)).join('\n')}\n${JSON.stringify(later)}\n`);
  assert.deepEqual(await imp(moreFile, db2), { imported: 3, duplicates: 0, rejected: 0, files: 1, records: 3, logLines: 0 });
});

test('10 MB of binary garbage: one error line, exit 2', T, async () => {
  const { dir, db } = newDb();
  const file = path.join(dir, 'garbage.bin');
  fs.writeFileSync(file, crypto.randomBytes(10 << 20));
  const r = await runSeslog(['import', '--db', db, file], { env: SAFE_ENV });
  assert.equal(r.code, 2, r.stderr);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `stderr:\n${r.stderr.slice(0, 2000)}`);
  assert.match(lines[0], new RegExp(`${esc(file)} is not JSON text`));
  assert.equal(summary(r.stdout).records, 0);
});

// Under AddressSanitizer (make asan sets SESLOG_ASAN) shadow memory and the quarantine multiply
// the footprint: the cap there only proves that memory does not grow with the input.
const RSS_CAP_KIB = (process.env.SESLOG_ASAN ? 640 : 128) * 1024;

/** Runs seslog under /usr/bin/time; resolves {code, stdout, stderr, maxRssKb}. */
function runMeasured(args) {
  return new Promise((resolve, reject) => {
    const child = spawn('/usr/bin/time', ['-f', 'maxrss=%M', BIN, ...args], { env: { ...process.env, ...SAFE_ENV }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    child.on('error', reject);
    child.on('close', (code) => {
      const m = /maxrss=(\d+)/.exec(stderr);
      resolve({ code, stdout, stderr: stderr.replace(/maxrss=\d+\n?/, ''), maxRssKb: m ? Number(m[1]) : NaN });
    });
  });
}

test('memory stays under 128 MiB: a 160 MB JSON-lines file and a JSON array of 30,000 events', { timeout: 600000 }, async () => {
  const { dir, db } = newDb();
  const jsonl = path.join(dir, 'big.jsonl');
  genFile(jsonl, 120000, 'jsonl', false, `big-${crypto.randomUUID()}`);
  assert.ok(fs.statSync(jsonl).size > 150e6);
  const r = await runMeasured(['import', '--db', db, jsonl]);
  fs.rmSync(jsonl);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(summary(r.stdout).imported, 120000);
  assert.ok(r.maxRssKb < RSS_CAP_KIB, `peak RSS ${r.maxRssKb} KiB`);
  assert.ok(!r.stderr.includes('\r'), 'no terminal bar when not a terminal');

  const arr = path.join(dir, 'array.json');
  genFile(arr, 30000, 'array', false, `arr-${crypto.randomUUID()}`);
  const a = await runMeasured(['import', '--db', path.join(dir, 'arr.db'), arr]);
  assert.equal(a.code, 0, a.stderr);
  assert.equal(summary(a.stdout).imported, 30000);
  assert.ok(a.maxRssKb < RSS_CAP_KIB, `peak RSS ${a.maxRssKb} KiB`);

  // a document just under the 16 MiB it may have
  const one = path.join(dir, 'one.json');
  const ev = genEvent(0, `one-${crypto.randomUUID()}`);
  ev.mail.headers.push({ name: 'X-Padding', value: 'p'.repeat(15 << 20) });
  fs.writeFileSync(one, JSON.stringify(ev, null, 2));
  const o = await runMeasured(['import', '--db', path.join(dir, 'one.db'), one]);
  assert.equal(o.code, 0, o.stderr);
  assert.equal(summary(o.stdout).imported, 1);
  assert.ok(o.maxRssKb < RSS_CAP_KIB, `peak RSS ${o.maxRssKb} KiB`);
});

test('not on a terminal: a progress line every few seconds, not a bar', T, async () => {
  // events arriving on standard input for 7 s, so the import lasts longer
  // than the 5 s between two lines however fast it reads
  const { db } = newDb();
  const child = spawn(BIN, ['import', '--db', db, '-'], { env: { ...process.env, ...SAFE_ENV }, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => { stdout += d; });
  child.stderr.on('data', (d) => { stderr += d; });
  const closed = new Promise((resolve) => child.on('close', resolve));
  const tag = `slow-${crypto.randomUUID()}`;
  for (let i = 0; i < 14; i++) {
    child.stdin.write(genText(i * 100, 100, 'jsonl', tag));
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  child.stdin.end();
  assert.equal(await closed, 0, stderr);
  assert.equal(summary(stdout).imported, 1400);
  assert.match(stderr, /^seslog import: \d+% of \d+ MB read, \d+ events, \d+\/s/m);
  assert.ok(!stderr.includes('\r'), 'no terminal bar when not a terminal');
});

test('on a terminal: a progress bar with events/s', T, async () => {
  const { dir, db } = newDb();
  const file = path.join(dir, 'tty.jsonl');
  genFile(file, 20000, 'jsonl', false, `tty-${crypto.randomUUID()}`);
  // script(1) gives the command a pseudo-terminal
  const out = await new Promise((resolve, reject) => {
    const child = spawn('script', ['-qfec', `${BIN} import --db ${db} ${file}`, '/dev/null'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let s = '';
    child.stdout.on('data', (d) => { s += d; });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, s }));
  });
  assert.equal(out.code, 0, out.s);
  assert.match(out.s, /\r\[[#-]{30}\] +\d+% +\d+ events +\d+\/s/);
  assert.match(out.s, /imported 20000, duplicates 0, rejected 0/);
});
