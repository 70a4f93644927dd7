// suppression-display.test.mjs - a suppression entry keeps the address as
// first given (display) only when it differs from the folded address
// (schema version 24): '' otherwise. Every reader gives the form first given:
// /api/suppression, /api/suppression/{address}, `seslog suppression list`
// and `export`, and the sqlite3 shell through the schema comment's
// expression; entries written before (display whole) read the same after
// migrating.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {
  startServer, post, get, request, sqlite, signEnvelope, runSeslog, tempDir, uniqueBounce,
  SUPPRESSION_BEFORE_24_SQL,
} from './lib.mjs';

const T = { timeout: 120000 };
const BOUNCED = ['plain@bounce.example', 'Mixed.Case@Bounce.example'];
const MANUAL = ['lower@manual.example', 'Upper@Manual.example'];
const GIVEN = [...BOUNCED, ...MANUAL];

/** Each entry's address as the API lists it and as it gives it alone. */
async function apiView(t, db) {
  const srv = await startServer({ t, db });
  const list = await get(srv.url, '/api/suppression?limit=1000');
  assert.equal(list.status, 200, list.text);
  const out = { list: JSON.parse(list.text).items.map((e) => e.address).sort() };
  out.one = [];
  for (const a of GIVEN) {
    const r = await get(srv.url, `/api/suppression/${encodeURIComponent(a.toLowerCase())}`);
    assert.equal(r.status, 200, r.text);
    out.one.push(JSON.parse(r.text).address);
  }
  await srv.stop();
  return out;
}

async function cliView(db) {
  const list = await runSeslog(['suppression', 'list', '--db', db]);
  assert.equal(list.code, 0, list.stderr);
  const exp = await runSeslog(['suppression', 'export', '--db', db]);
  assert.equal(exp.code, 0, exp.stderr);
  return { list: list.stdout, export: exp.stdout.split(/\r?\n/).filter((l) => l).sort() };
}

test('suppression display: stored empty when it is the address, read as first given', T, async (t) => {
  const srv = await startServer({ t });
  const b = uniqueBounce('display');
  b.mail.destination = BOUNCED;
  b.bounce.bouncedRecipients = BOUNCED.map((a) => ({ emailAddress: a, action: 'failed', status: '5.1.1' }));
  const r = await post(srv.url, '/sns', JSON.stringify(signEnvelope({ message: b })));
  assert.equal(r.json?.status, 'stored', r.text);
  for (const a of MANUAL) {
    const res = await request(srv.url, 'PUT', `/api/suppression/${encodeURIComponent(a)}`);
    assert.ok(res.status === 200 || res.status === 201, res.text);
  }
  await srv.stop();

  const stored = await sqlite(srv.db, 'SELECT address, display FROM suppression ORDER BY address');
  assert.deepEqual(stored, [
    { address: 'lower@manual.example', display: '' },
    { address: 'mixed.case@bounce.example', display: 'Mixed.Case@Bounce.example' },
    { address: 'plain@bounce.example', display: '' },
    { address: 'upper@manual.example', display: 'Upper@Manual.example' },
  ], 'display kept only when it differs from the address');
  const shell = await sqlite(srv.db, `SELECT coalesce(nullif(display, ''), address) AS a FROM suppression ORDER BY a`);
  assert.deepEqual(shell.map((x) => x.a), [...GIVEN].sort(), 'the schema comment\'s expression');

  const api = await apiView(t, srv.db);
  assert.deepEqual(api, { list: [...GIVEN].sort(), one: GIVEN });
  const cli = await cliView(srv.db);
  for (const a of GIVEN) assert.ok(cli.list.includes(a), `suppression list shows ${a}:\n${cli.list}`);
  assert.deepEqual(cli.export.filter((l) => !/^email/i.test(l)).map((l) => l.split(',')[0]).sort(), [...GIVEN].sort());

  // entries as seslog wrote them before version 24: the same readings
  const old = path.join(tempDir('seslog-display-'), 'old.db');
  fs.copyFileSync(srv.db, old);
  const version = (await sqlite(old, 'PRAGMA user_version'))[0].user_version;
  await sqlite(old, `UPDATE suppression SET display = address WHERE display = ''; ${SUPPRESSION_BEFORE_24_SQL} PRAGMA user_version = 23;`);
  assert.deepEqual(await cliView(old), cli, 'seslog suppression on whole displays');
  assert.deepEqual(await apiView(t, old), api, 'the API on the migrated database');
  assert.equal((await sqlite(old, 'PRAGMA user_version'))[0].user_version, version, 'migrated');
});
