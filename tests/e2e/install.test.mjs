// install.test.mjs - seslog away from the repo: `serve` started from another
// folder finds its web files next to the binary (../web, as build/seslog in
// the repo; ../share/seslog/web, as installed), else ./web, and says which;
// `make install DESTDIR=... PREFIX=/usr` lays out the binary, web files,
// schema docs, man page and systemd unit, and the installed binary started
// from / serves the installed web UI; `make uninstall` takes it all away.

import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawn, execFileSync } from 'node:child_process';
import { ROOT, BIN, tempDir, get, tail } from './lib.mjs';

const T = { timeout: 120000 };
const INDEX = fs.readFileSync(path.join(ROOT, 'web', 'index.html'), 'utf8');

/** Starts `bin serve` in cwd on a free port; resolves when it listens. */
function startAt(t, bin, cwd, db) {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SESLOG_')));
  const child = spawn(bin, ['serve', '--listen', '127.0.0.1:0', '--db', db], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const srv = { child, stderr: '' };
  t.after(() => child.kill('SIGKILL'));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no listening line: ${tail(srv.stderr)}`)), 15000);
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d) => {
      srv.stderr += d;
      const m = srv.stderr.match(/msg="?listening"? .*?addr="?127\.0\.0\.1:(\d+)/);
      if (m && !srv.url) {
        clearTimeout(timer);
        srv.url = `http://127.0.0.1:${m[1]}`;
        resolve(srv);
      }
    });
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`exited ${code}: ${tail(srv.stderr)}`)); });
  });
}

async function stop(srv) {
  const done = new Promise((r) => srv.child.once('exit', (code, signal) => r({ code, signal })));
  srv.child.kill('SIGTERM');
  const r = await done;
  assert.equal(r.code, 0, `exit after SIGTERM: ${JSON.stringify(r)}: ${tail(srv.stderr)}`);
}

/** The folder the log line "web files" names, or null. */
function webLine(stderr) {
  const m = stderr.match(/msg="?web files"? dir="?([^" ]+)"? files=(\d+)/);
  return m ? { dir: m[1], files: Number(m[2]) } : null;
}

test('serve from another folder: web files next to the binary (repo layout: build/seslog and web/)', T, async (t) => {
  const tmp = tempDir('seslog-web-');
  const repo = path.join(tmp, 'repo');
  fs.mkdirSync(path.join(repo, 'build'), { recursive: true });
  fs.copyFileSync(BIN, path.join(repo, 'build', 'seslog'));
  fs.chmodSync(path.join(repo, 'build', 'seslog'), 0o755);
  fs.cpSync(path.join(ROOT, 'web'), path.join(repo, 'web'), { recursive: true });
  const elsewhere = path.join(tmp, 'elsewhere');
  fs.mkdirSync(elsewhere);
  const srv = await startAt(t, path.join(repo, 'build', 'seslog'), elsewhere, path.join(tmp, 'seslog.db'));
  const r = await get(srv.url, '/');
  assert.equal(r.status, 200);
  assert.equal(r.text, INDEX);
  assert.equal((await get(srv.url, '/js/app.js')).status, 200);
  assert.deepEqual(webLine(srv.stderr)?.dir, fs.realpathSync(path.join(repo, 'web')), srv.stderr);
  await stop(srv);
});

test('serve: ./web when nothing is next to the binary; a warning and 404 when there is none', T, async (t) => {
  const tmp = tempDir('seslog-web-');
  const lone = path.join(tmp, 'a', 'b');
  fs.mkdirSync(lone, { recursive: true });
  fs.copyFileSync(BIN, path.join(lone, 'seslog'));
  fs.chmodSync(path.join(lone, 'seslog'), 0o755);
  const cwd = path.join(tmp, 'cwd');
  fs.cpSync(path.join(ROOT, 'web'), path.join(cwd, 'web'), { recursive: true });
  let srv = await startAt(t, path.join(lone, 'seslog'), cwd, path.join(tmp, 'one.db'));
  assert.equal((await get(srv.url, '/')).text, INDEX);
  assert.equal(webLine(srv.stderr)?.dir, fs.realpathSync(path.join(cwd, 'web')));
  await stop(srv);

  const empty = path.join(tmp, 'empty');
  fs.mkdirSync(empty);
  srv = await startAt(t, path.join(lone, 'seslog'), empty, path.join(tmp, 'two.db'));
  assert.match(srv.stderr, /level=warn msg="no web files next to the binary \(..\/web, ..\/share\/seslog\/web\) or in .\/web; give --web DIR"/);
  assert.equal((await get(srv.url, '/')).status, 404);
  assert.equal((await get(srv.url, '/healthz')).status, 200);
  await stop(srv);
});

test('make install DESTDIR PREFIX=/usr: the layout, the man page, the unit; the installed binary serves from /', T, async (t) => {
  const dest = tempDir('seslog-install-');
  const build = path.relative(ROOT, path.dirname(BIN));
  const make = (target) => execFileSync('make', ['--no-print-directory', target, `BUILD=${build}`, `DESTDIR=${dest}`, 'PREFIX=/usr'],
    { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  make('install');
  const files = (dir) => fs.readdirSync(dir, { recursive: true }).filter((f) => fs.statSync(path.join(dir, f)).isFile()).sort();
  const got = files(dest);
  for (const f of ['usr/bin/seslog', 'usr/share/man/man1/seslog.1', 'usr/lib/systemd/system/seslog.service',
    'usr/share/doc/seslog/schema/seslog.sql', 'usr/share/doc/seslog/README.md', 'usr/share/doc/seslog/seslog.env.example']) {
    assert.ok(got.includes(f), `${f} installed: ${got.join(' ')}`);
  }
  for (const f of files(path.join(ROOT, 'web'))) {
    assert.ok(got.includes(`usr/share/seslog/web/${f}`), `web/${f} installed`);
  }
  assert.ok(fs.statSync(path.join(dest, 'usr/bin/seslog')).mode & 0o111, 'the binary is executable');

  // the man page is made from the --help texts of every command
  const man = fs.readFileSync(path.join(dest, 'usr/share/man/man1/seslog.1'), 'utf8');
  assert.match(man, /^\.TH SESLOG 1 /m);
  for (const c of ['serve', 'import', 'query', 'simulate', 'vacuum', 'suppression', 'suppression check']) {
    assert.match(man, new RegExp(`^\\.SS "seslog ${c}"$`, 'm'), c);
  }
  assert.match(man, /^\.B \\-\\-history DURATION$/m);
  assert.match(man, /^\.B \\-\\-sns\\-topic\\-arn ARN$/m);

  // the unit names the installed binary and the state folder; systemd accepts it
  const unit = fs.readFileSync(path.join(dest, 'usr/lib/systemd/system/seslog.service'), 'utf8');
  assert.match(unit, /^ExecStart=\/usr\/bin\/seslog serve --db \/var\/lib\/seslog\/seslog\.db$/m);
  for (const k of ['DynamicUser=yes', 'StateDirectory=seslog', 'ProtectSystem=strict', 'NoNewPrivileges=yes',
    'PrivateTmp=yes', 'ProtectHome=yes', 'SystemCallFilter=@system-service', 'EnvironmentFile=-/etc/seslog/seslog.env']) {
    assert.ok(unit.split('\n').includes(k), k);
  }
  assert.match(unit, /^RestrictAddressFamilies=/m);
  // systemd-analyze checks that ExecStart is executable: point it at the DESTDIR copy
  const check = path.join(dest, 'seslog.service');
  fs.writeFileSync(check, unit.replace('ExecStart=/usr/bin/seslog', `ExecStart=${dest}/usr/bin/seslog`));
  const verify = execFileSync('systemd-analyze', ['verify', '--man=no', check], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  assert.equal(verify.trim(), '');
  fs.rmSync(check);

  // started from /, the installed binary serves the installed web UI
  const db = path.join(tempDir('seslog-installed-'), 'seslog.db');
  const srv = await startAt(t, path.join(dest, 'usr/bin/seslog'), '/', db);
  assert.equal(webLine(srv.stderr)?.dir, path.join(fs.realpathSync(dest), 'usr/share/seslog/web'));
  const r = await get(srv.url, '/');
  assert.equal(r.status, 200);
  assert.equal(r.text, INDEX);
  assert.equal((await get(srv.url, '/style.css')).status, 200);
  await stop(srv);

  make('uninstall');
  assert.deepEqual(files(dest), [], 'make uninstall removes every installed file');
});
