// archive.test.mjs - an imported archive lives in the past (issue 18):
// monitors judge it but announce nothing, /api/stats takes an explicit
// range, and `serve --read-only` browses a database without writing.
//
// Each test imports a small generated archive (bare SES event-publishing
// JSON, stamped days ago) with `seslog import`, then starts the real server
// on it.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import {
  startServer, get, sqlite, sesFixture, tempDir, runSeslog,
} from './lib.mjs';
import { startSlackStub } from './slackstub.mjs';

const DAY = 86400000;

/** JSON lines of `sends` Send events (one recipient each) and `bounces`
 * permanent bounces, all at time `at` (ms), to the domain `domain`. */
function archiveLines(at, sends, bounces, domain = 'archive.test') {
  const ts = new Date(at).toISOString();
  const lines = [];
  for (let i = 0; i < sends; i++) {
    const ses = sesFixture('ses-event-send-awsdocs');
    ses.mail.messageId = `send-${crypto.randomUUID()}`;
    ses.mail.timestamp = ts;
    ses.mail.destination = [`r${i}@${domain}`];
    lines.push(JSON.stringify(ses));
  }
  for (let i = 0; i < bounces; i++) {
    const ses = sesFixture('ses-event-bounce-awsdocs');
    ses.mail.messageId = `bounce-${crypto.randomUUID()}`;
    ses.mail.timestamp = ts;
    ses.mail.destination = [`r${i}@${domain}`];
    ses.bounce.timestamp = ts;
    ses.bounce.feedbackId = `fb-${crypto.randomUUID()}`;
    ses.bounce.bounceType = 'Permanent';
    ses.bounce.bounceSubType = 'General';
    ses.bounce.bouncedRecipients = [{ emailAddress: `r${i}@${domain}`, status: '5.1.1', action: 'failed', diagnosticCode: 'smtp; 550 5.1.1 user unknown' }];
    lines.push(JSON.stringify(ses));
  }
  return lines.join('\n') + '\n';
}

/** A database in a new folder holding the given JSON lines. */
async function importArchive(text) {
  const dir = tempDir('seslog-archive-');
  const db = path.join(dir, 'seslog.db');
  const r = await runSeslog(['import', '--db', db, '-'], { input: text });
  assert.equal(r.code, 0, `import failed: ${r.stderr}`);
  return { dir, db };
}

describe('an archive lives in the past', { concurrency: true }, () => {
  test('serve on an old archive: the monitors show their verdict over the widened window but announce nothing', { timeout: 30000 }, async (t) => {
    // two days ago: 200 sends and 20 permanent bounces = 10 %, far over the alert threshold
    const { dir, db } = await importArchive(archiveLines(Date.now() - 2 * DAY, 200, 20));
    const stub = await startSlackStub();
    t.after(() => stub.close());
    const srv = await startServer({
      t, dir, db,
      args: ['--slack-webhook-url', stub.url, '--monitor-interval', '100ms', '--rate-window', '10m'],
    });
    // the monitors have evaluated many times once the verdict shows
    let stats;
    const deadline = Date.now() + 8000;
    for (;;) {
      stats = (await get(srv.url, '/api/stats')).json;
      if (stats.monitors.bounceRate.state === 'alert' || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const m = stats.monitors.bounceRate;
    assert.equal(m.state, 'alert', `the verdict over the widened window: ${JSON.stringify(stats)}`);
    assert.equal(m.present, false, 'judged on old events only');
    assert.ok(m.windowMs > 2 * DAY - 3600000, `the window widened back to the archive: ${m.windowMs}`);
    assert.ok(Math.abs(m.value - 0.1) < 1e-9, `rate ${m.value}`);
    await new Promise((r) => setTimeout(r, 500)); // more evaluations
    const rows = await sqlite(db, 'SELECT count(*) AS n FROM monitor_changes');
    assert.equal(rows[0].n, 0, 'no monitor_changes row about month-old mail');
    assert.equal(stub.requests.length, 0, `nothing posted to Slack: ${JSON.stringify(stub.requests)}`);
    const outbox = await sqlite(db, 'SELECT count(*) AS n FROM outbox');
    assert.equal(outbox[0].n, 0, 'no outbox row either');
    await srv.stop();
  });
});
