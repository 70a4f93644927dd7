// reliability-disk.test.mjs - a full disk (issue 9): the database lives on a
// tmpfs of a few MB made for the test. When it fills, /sns answers 503
// storage_unavailable (SNS retries) and /healthz says why; nothing already
// stored is damaged; when space returns, /healthz recovers by itself (the
// writer probes) and ingestion resumes.
//
// Needs root (mount -t tmpfs); the test fails with a clear message
// otherwise rather than skipping.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { startServer, post, get, sqlite, uniqueBounce, tempDir, assertError, assertStatus, tail } from './lib.mjs';
import { sign, mountTmpfs, unmount, fillDisk, diskSpace, until } from './reliability-lib.mjs';

const FS_KIB = 6 * 1024;

test(`a full disk (${FS_KIB / 1024} MiB tmpfs): 503 storage_unavailable, /healthz says why, nothing stored is damaged, recovery by itself when space returns`, { timeout: 90000 }, async (t) => {
  const mnt = path.join(tempDir('seslog-fulldisk-'), 'fs');
  await mountTmpfs(mnt, FS_KIB);
  let srv;
  t.after(async () => {
    if (srv) await srv.kill();
    await unmount(mnt);
  });
  const db = path.join(mnt, 'seslog.db');
  srv = await startServer({ t, db, args: ['--log-level', 'info'] });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  t.after(() => agent.destroy());
  const send = async (ses) => post(srv.url, '/sns', sign({ message: ses }), {}, { agent, timeout: 20000 });

  const acked = [];
  for (let i = 0; i < 30; i++) {
    const ses = uniqueBounce(`disk-before-${i}-${Date.now()}`);
    assertStatus(await send(ses), 'stored');
    acked.push(ses.mail.messageId);
  }

  // fill the file system but for a little room, then post over 8
  // connections until the disk refuses (the failure hits a batch of several)
  const filler = path.join(mnt, 'filler');
  const size = fillDisk(filler, 1024);
  t.diagnostic(`filler: ${(size / 1024).toFixed(0)} KiB; free now ${diskSpace(mnt).freeKiB} KiB`);
  const refused = [];
  let res;
  let posted = 0;
  const worker = async () => {
    const own = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      while (!res && posted < 3000) {
        posted++;
        const ses = uniqueBounce(`disk-fill-${posted}-${Date.now()}`);
        const r = await post(srv.url, '/sns', sign({ message: ses }), {}, { agent: own, timeout: 20000 });
        if (r.status === 200 && r.json?.status === 'stored') acked.push(ses.mail.messageId);
        else { refused.push(ses.mail.messageId); res ??= r; }
      }
    } finally {
      own.destroy();
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  assert.ok(res, `${posted} posts were stored on a full ${FS_KIB} KiB file system`);
  // and now to the last block
  const size2 = fillDisk(`${filler}2`, 0);
  t.diagnostic(`${posted} posted, ${acked.length} stored in all, ${refused.length} refused; second filler ${(size2 / 1024).toFixed(0)} KiB`);
  assertError(res, 503, 'storage_unavailable');
  t.diagnostic(`${acked.length} stored, then: ${res.status} ${res.text}`);
  assert.ok(await until(() => /commit failed/.test(srv.stderr), { timeout: 3000 }), 'the failed commit is not logged');
  const logged = /^.*commit failed.*$/m.exec(srv.stderr)[0];
  t.diagnostic(`log: ${logged}`);
  // What the operator reads is checked at the end, so that the rest of the
  // behaviour is proven even when a message is wrong.
  const unclear = [];
  if (!/disk|full|space/i.test(logged)) unclear.push(`the log line of the failed commit does not say the disk is full: ${logged}`);
  if (!/disk|full|space/i.test(res.json?.error?.message ?? '')) unclear.push(`the 503 does not say the disk is full: ${res.text}`);

  // /healthz says why
  const h = await get(srv.url, '/healthz', {}, { agent: false });
  assert.equal(h.status, 503, `/healthz on a full disk: ${h.status} ${h.text}`);
  assert.equal(h.json?.status, 'error', h.text);
  if (!/disk|full|space/i.test(h.json?.reason ?? '')) unclear.push(`/healthz's reason does not mention the disk: ${h.text}`);

  // more posts are refused promptly (SNS retries), nothing hangs
  let lastRefused;
  for (let i = 0; i < 3; i++) {
    const ses = uniqueBounce(`disk-full-${i}-${Date.now()}`);
    lastRefused = sign({ message: ses });
    const t0 = Date.now();
    const r = await post(srv.url, '/sns', lastRefused, {}, { agent, timeout: 20000 });
    assertError(r, 503, 'storage_unavailable');
    assert.ok(Date.now() - t0 < 5000, `a 503 on a full disk took ${Date.now() - t0} ms`);
    refused.push(ses.mail.messageId);
  }

  // nothing already stored is damaged; nothing refused is stored
  const check = async (when) => {
    const integrity = await sqlite(db, 'PRAGMA integrity_check');
    assert.deepEqual(integrity.map((r) => r.integrity_check), ['ok'], `integrity_check ${when}`);
    const ids = new Set((await sqlite(db, 'SELECT messageId FROM SesEventMessages')).map((r) => r.messageId));
    const lost = acked.filter((id) => !ids.has(id));
    assert.deepEqual(lost, [], `${when}: acknowledged events missing`);
    const sneaked = refused.filter((id) => ids.has(id));
    assert.deepEqual(sneaked, [], `${when}: events answered 503 are stored`);
    return ids.size;
  };
  assert.equal(await check('on the full disk'), acked.length);

  // space returns: /healthz recovers without any post
  fs.unlinkSync(filler);
  fs.unlinkSync(`${filler}2`);
  const t0 = Date.now();
  const healthy = await until(async () => (await get(srv.url, '/healthz', {}, { agent: false })).status === 200,
    { timeout: 10000, interval: 200 });
  const after = Date.now() - t0;
  assert.ok(healthy, `/healthz still 503 ${after} ms after the disk was freed; stderr:\n${tail(srv.stderr, 10)}`);
  t.diagnostic(`/healthz 200 again ${after} ms after the filler was deleted`);
  assert.ok(await until(() => /takes writes again/.test(srv.stderr), { timeout: 3000 }), 'the recovery is not logged');

  // ingestion resumes: SNS's retry of a refused event is stored now
  assertStatus(await post(srv.url, '/sns', lastRefused, {}, { agent, timeout: 20000 }), 'stored');
  acked.push(refused.pop());
  const again = uniqueBounce(`disk-after-${Date.now()}`);
  assertStatus(await send(again), 'stored');
  acked.push(again.mail.messageId);
  assert.equal(await check('after recovery'), acked.length);
  await srv.stop();
  assert.equal(await check('after a clean stop'), acked.length);
  assert.deepEqual(unclear, [], 'the disk is full, but the server says something else');
});
