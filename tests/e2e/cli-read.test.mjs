// cli-read.test.mjs - the read commands agree with each other and with the
// shell: `query` and `suppression list|check|export` never create a
// database; `suppression list --since` takes what `query --since` takes;
// `suppression check` reads addresses from files and standard input; a
// reader that goes away (`| head -1`) ends them quietly with status 0.

import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { BIN, runSeslog, tempDir } from './lib.mjs';
import { writeEvents } from './query-data.mjs';

const T = { timeout: 60000 };

/** A database with `n` suppressed addresses (user0@bounce.test, ...) added by hand. */
async function suppressionDb(n) {
  const dir = tempDir('seslog-cli-read-');
  const db = path.join(dir, 'seslog.db');
  const csv = path.join(dir, 'list.csv');
  const lines = ['EmailAddress,Reason'];
  for (let i = 0; i < n; i++) lines.push(`user${i}@bounce.test,${i % 7 ? 'BOUNCE' : 'COMPLAINT'}`);
  fs.writeFileSync(csv, `${lines.join('\n')}\n`);
  const r = await runSeslog(['suppression', 'import', '--db', db, csv]);
  assert.equal(r.code, 0, r.stderr);
  return { dir, db };
}

test('read commands never create a database: one line, exit 2, no file', T, async () => {
  const dir = tempDir('seslog-typo-');
  const db = path.join(dir, 'typo.db');
  for (const args of [['query'], ['query', '--format', 'csv'], ['suppression', 'list'],
    ['suppression', 'check', 'jane@example.com'], ['suppression', 'export'], ['suppression', 'export', '-']]) {
    const r = await runSeslog([...args, '--db', db]);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, `${args.join(' ')}: ${r.stderr}`);
    assert.match(lines[0], /no database at .*typo\.db/);
    assert.equal(r.stdout, '');
    assert.deepEqual(fs.readdirSync(dir), [], `${args.join(' ')} created files`);
  }
  // in a folder that does not exist either: nothing is made
  const deep = path.join(dir, 'no', 'such', 'folder', 'seslog.db');
  const r = await runSeslog(['suppression', 'list', '--db', deep]);
  assert.equal(r.code, 2);
  assert.deepEqual(fs.readdirSync(dir), []);
});

test('suppression list --since takes exactly what query --since takes', T, async () => {
  const { db } = await suppressionDb(3);
  const today = new Date().toISOString().slice(0, 10);
  const tomorrow = new Date(Date.now() + 86400e3).toISOString().slice(0, 10);
  // a bare date (its midnight UTC) and the other forms list the entries added today
  for (const since of [today, `${today}T00:00:00Z`, `${today}T00:00:00.000Z`, '24h', '1d']) {
    const r = await runSeslog(['suppression', 'list', '--db', db, '--since', since, '--format', 'json']);
    assert.equal(r.code, 0, `${since}: ${r.stderr}`);
    assert.equal(JSON.parse(r.stdout).length, 3, since);
  }
  const later = await runSeslog(['suppression', 'list', '--db', db, '--since', tomorrow, '--format', 'json']);
  assert.equal(later.code, 0, later.stderr);
  assert.deepEqual(JSON.parse(later.stdout), []);
  // the two commands accept and refuse the same values
  for (const since of [today, `${today}T12:00:00Z`, '2026-03-06T20:00:00.5Z', '15m', '7d', 'yesterday', '2026-13-01',
    '2026-03-06T25:00:00Z', '1733270400', '', 'now']) {
    const q = await runSeslog(['query', '--db', db, '--since', since, '--limit', '1']);
    const s = await runSeslog(['suppression', 'list', '--db', db, '--since', since, '--limit', '1']);
    assert.equal(s.code === 2, q.code === 2, `--since "${since}": query exit ${q.code} (${q.stderr.trim()}), suppression list exit ${s.code} (${s.stderr.trim()})`);
    if (s.code === 2) assert.equal(s.stderr.trim().split('\n').length, 1, s.stderr);
  }
});

test('suppression check reads addresses from files and standard input', T, async () => {
  const { dir, db } = await suppressionDb(10);
  // an export file (address,reason lines) checks as it is
  const exported = path.join(dir, 'export.csv');
  let r = await runSeslog(['suppression', 'export', '--db', db, exported]);
  assert.equal(r.code, 0, r.stderr);
  r = await runSeslog(['suppression', 'check', '--db', db, exported]);
  assert.equal(r.code, 1, r.stderr);
  assert.equal(r.stdout.trim().split('\n').length, 10);
  assert.ok(r.stdout.trim().split('\n').every((l) => /: suppressed, (BOUNCE|COMPLAINT) since /.test(l)), r.stdout);

  // a file with a header, blank lines, comments and spaces; then an argument; in the order given
  const list = path.join(dir, 'addresses.txt');
  fs.writeFileSync(list, 'address\n\n# to check\n  USER3@bounce.test  \nnew@example.com\r\n"user4@bounce.test",x\n');
  r = await runSeslog(['suppression', 'check', '--db', db, '--format', 'json', list, 'other@example.com']);
  assert.equal(r.code, 1, r.stderr);
  const j = JSON.parse(r.stdout);
  assert.deepEqual(j.results.map((x) => [x.address, x.suppressed]),
    [['USER3@bounce.test', true], ['new@example.com', false], ['user4@bounce.test', true], ['other@example.com', false]]);
  assert.equal(j.checked, 4);
  assert.equal(j.suppressed, 2);

  // standard input: with "-" and with no argument at all
  for (const args of [['-'], []]) {
    r = await runSeslog(['suppression', 'check', '--db', db, ...args], { input: 'nobody@example.com\nuser9@bounce.test\n' });
    assert.equal(r.code, 1, r.stderr);
    assert.deepEqual(r.stdout.trim().split('\n').map((l) => l.split(':')[0]), ['nobody@example.com', 'user9@bounce.test']);
  }
  r = await runSeslog(['suppression', 'check', '--db', db], { input: 'nobody@example.com\n' });
  assert.equal(r.code, 0, 'none suppressed: exit 0');
  assert.equal(r.stdout, 'nobody@example.com: not suppressed\n');

  // a bad line: FILE:LINE, exit 2, nothing printed on stdout
  fs.writeFileSync(list, 'jane@example.com\nnot an address\n');
  r = await runSeslog(['suppression', 'check', '--db', db, list]);
  assert.equal(r.code, 2);
  assert.equal(r.stdout, '');
  assert.match(r.stderr, /addresses\.txt:2: "not an address" is not an email address/);
  assert.equal(r.stderr.trim().split('\n').length, 1);
  r = await runSeslog(['suppression', 'check', '--db', db, path.join(dir, 'missing.txt')]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /cannot read .*missing\.txt/);
});

test('a closed pipe (| head -1) ends suppression list, export and query quietly with status 0', T, async () => {
  const { dir, db } = await suppressionDb(20000); // far more than a pipe holds
  const events = path.join(dir, 'events.jsonl');
  writeEvents(events);
  const imp = await runSeslog(['import', '--db', db, events]);
  assert.equal(imp.code, 0, imp.stderr);
  for (const args of [['suppression', 'list'], ['suppression', 'list', '--format', 'csv'], ['suppression', 'list', '--format', 'json'],
    ['suppression', 'export'], ['query'], ['query', '--format', 'json'], ['query', '--format', 'csv']]) {
    const r = spawnSync('bash', ['-c', `set -o pipefail; "$0" "$@" --db "${db}" | head -1`, BIN, ...args], { encoding: 'utf8' });
    assert.equal(r.status, 0, `${args.join(' ')}: exit ${r.status}; ${r.stderr}`);
    assert.equal(r.stderr, '', `${args.join(' ')}: ${r.stderr}`);
    if (args[0] === 'suppression') assert.equal(r.stdout.split('\n').length, 2, `${args.join(' ')}: one line`);
  }
  // a big check into a closed pipe: its answer (1: some are suppressed) and no noise
  const input = Array.from({ length: 20000 }, (_, i) => `user${i}@bounce.test`).join('\n');
  const r = spawnSync('bash', ['-c', `set -o pipefail; "$0" suppression check --db "${db}" | head -1`, BIN], { encoding: 'utf8', input });
  assert.equal(r.status, 1, r.stderr);
  assert.equal(r.stderr, '');
});
