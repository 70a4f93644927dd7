// The README's first command on a fresh machine: `make run` must install the libraries and then
// build with the flags pkg-config finds after installing, not the empty ones it found before.
// A stand-in pkg-config finds nothing until the stand-in `deps` step has run, as on a machine
// where the -dev packages are not installed yet.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT } from './lib.mjs';

function run(cmd, args, opts) {
  return new Promise((resolve) => {
    execFile(cmd, args, { ...opts, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err ? (err.code ?? 1) : 0, stdout, stderr });
    });
  });
}

function freshMachine() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'seslog-firstrun-'));
  const bin = path.join(dir, 'bin');
  fs.mkdirSync(bin);
  const marker = path.join(dir, 'installed');
  const real = ['/usr/bin/pkg-config', '/usr/local/bin/pkg-config'].find((p) => fs.existsSync(p));
  assert.ok(real, 'pkg-config is installed by scripts/install-deps.sh');
  fs.writeFileSync(path.join(bin, 'pkg-config'),
    `#!/bin/sh\n[ -e '${marker}' ] || exit 1\nexec ${real} "$@"\n`, { mode: 0o755 });
  const env = { ...process.env, PATH: `${bin}:${process.env.PATH}` };
  delete env.MAKEFLAGS;
  delete env.MAKELEVEL;
  delete env.MFLAGS;
  return { dir, marker, env };
}

test('make run works the first time on a machine whose libraries it installs', { timeout: 600_000 }, async () => {
  const m = freshMachine();
  try {
    const probe = await run('pkg-config', ['--libs', 'libuv'], { env: m.env });
    assert.notEqual(probe.code, 0, 'the stand-in pkg-config finds nothing before deps');
    const r = await run('make', ['-C', ROOT, '--no-print-directory', '-j2', `BUILD=${m.dir}/build`,
      `DEPS_CMD=touch ${m.marker}`, 'RUN_CMD=version', 'run'], { env: m.env });
    assert.equal(r.code, 0, `make run failed:\n${r.stdout}\n${r.stderr}`);
    assert.ok(fs.existsSync(m.marker), 'deps ran');
    assert.match(r.stdout, /seslog \d+\.\d+/);
  } finally {
    fs.rmSync(m.dir, { recursive: true, force: true });
  }
});

test('a build without the libraries says what to do in one line', { timeout: 120_000 }, async () => {
  const m = freshMachine();
  try {
    const r = await run('make', ['-C', ROOT, '--no-print-directory', `BUILD=${m.dir}/build`], { env: m.env });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /pkg-config finds none of: .*run 'make deps'/);
    assert.doesNotMatch(r.stderr, /undefined reference/);
  } finally {
    fs.rmSync(m.dir, { recursive: true, force: true });
  }
});
