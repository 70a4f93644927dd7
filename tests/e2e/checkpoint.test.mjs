// checkpoint.test.mjs - the server copies the WAL into the database on a
// checkpointer thread of its own, beside the writer, from 4,000 WAL pages
// on (SQLite's automatic checkpoint, which runs inside the commit that
// crosses its threshold, is off on the write connection); the WAL stays
// bounded and a restart finds every event.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import {
  startServer, signEnvelope, post, uniqueBounce, assertStatus, countEvents, DEFAULT_TOPIC,
} from './lib.mjs';

const T = { timeout: 180000 };
const PAGE = 4096;

const size = (f) => (fs.existsSync(f) ? fs.statSync(f).size : 0);

test('the checkpointer copies the WAL beside the writer; the WAL stays bounded', T, async (t) => {
  const srv = await startServer({ t });
  const wal = `${srv.db}-wal`;
  let posted = 0;
  const postSome = async (n) => {
    const batch = [];
    for (let i = 0; i < n; i++) batch.push(post(srv.url, '/sns', signEnvelope({ message: uniqueBounce() })));
    for (const r of await Promise.all(batch)) assertStatus(r, 'stored');
    posted += n;
  };
  // until a checkpoint copied pages into the database: it must come
  // before the WAL holds 8,000 pages, where SQLite's automatic checkpoint
  // (inside a commit) would have run; the checkpointer starts at 4,000
  const start = size(srv.db);
  let maxWal = 0;
  while (size(srv.db) < start + 256 * PAGE) {
    await postSome(16);
    maxWal = Math.max(maxWal, size(wal));
    assert.ok(posted < 20000, 'no checkpoint after 20,000 events');
  }
  assert.ok(maxWal > 4000 * PAGE, `the WAL reached ${maxWal / PAGE} pages before the first checkpoint`);
  assert.ok(maxWal < 8000 * PAGE, `the first checkpoint came only at ${maxWal / PAGE} WAL pages`);
  // the WAL file stays bounded (restarted and cut back at 64 MiB), however
  // long the writer goes on
  const more = posted * 2;
  while (posted < more) {
    await postSome(32);
    maxWal = Math.max(maxWal, size(wal));
  }
  assert.ok(maxWal <= 64 * 1024 * 1024 + 64 * PAGE, `WAL grew to ${maxWal} bytes`);
  await srv.stop();
  assert.equal(await countEvents(srv.db), posted);
});

// Under a steady stream the writer never pauses by itself, so the WAL
// starts over only when the writer waits, between two transactions, for a
// checkpoint of the frames left. It waits as soon as the checkpointer,
// chasing the writer from 6,000 WAL pages on (running again at once while
// the writer appended more), has caught up to a few hundred frames: a short
// pause, long before the hard bound of 12,000 pages, where the pause copied
// some 2,000 frames while every commit waited. Raw delivery (no signature
// to make or check) keeps the writer busy.
test('under a steady stream the WAL starts over well before its hard bound', T, async (t) => {
  const srv = await startServer({ t, args: ['--sns-basic-auth', 'u:p'] });
  const wal = `${srv.db}-wal`;
  const headers = {
    authorization: `Basic ${Buffer.from('u:p').toString('base64')}`,
    'x-amz-sns-rawdelivery': 'true',
    'x-amz-sns-topic-arn': DEFAULT_TOPIC,
    'x-amz-sns-message-type': 'Notification',
  };
  const n = 12000;
  let maxWal = 0;
  const watch = setInterval(() => { maxWal = Math.max(maxWal, size(wal)); }, 5);
  let next = 0;
  const worker = async () => {
    while (next < n) {
      next++;
      assertStatus(await post(srv.url, '/sns', uniqueBounce(), headers), 'stored');
    }
  };
  await Promise.all(Array.from({ length: 48 }, worker));
  clearInterval(watch);
  t.diagnostic(`the WAL's largest size: ${Math.round(maxWal / PAGE)} pages`);
  await srv.stop();
  assert.equal(await countEvents(srv.db), n);
  assert.ok(maxWal > 4000 * PAGE, `the WAL reached only ${maxWal / PAGE} pages: too few events for this test`);
  assert.ok(maxWal < 11000 * PAGE, `the WAL grew to ${maxWal / PAGE} pages before it started over`);
});
