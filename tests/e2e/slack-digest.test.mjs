// slack-digest.test.mjs - Slack's digest mode without an outbox row per
// event (issue 14): past --slack-max-per-minute bounces in a minute, the
// events share one summary row, rewritten in each transaction. The row
// commits with the events it counts, so a SIGKILL between the commit and
// the delivery loses no alert: after a restart the digest counts them all.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { startServer, signEnvelope, post, sqlite, uniqueBounce, tempDir } from './lib.mjs';
import { startSlackStub, digestCount, eventMessageId } from './slackstub.mjs';

const QUIET = ['--bounce-warn', '1000', '--bounce-alert', '1000', '--complaint-warn', '1000', '--complaint-alert', '1000'];

function bounce(i) {
  const ses = uniqueBounce(`digest-${i}-${crypto.randomUUID()}`);
  ses.bounce.bouncedRecipients = [{ emailAddress: `r${i}@d${i % 3}.test` }];
  ses.mail.destination = [`r${i}@d${i % 3}.test`];
  return signEnvelope({ message: ses });
}

test('digest mode: a burst makes a few outbox rows, not one per bounce; SIGKILL before delivery loses none of them', { timeout: 60000 }, async (t) => {
  // Slack holds the first request: nothing is delivered before the kill
  // (one delivery at a time), and the summary is still open.
  const stub = await startSlackStub({ mode: 'hang' });
  t.after(() => stub.close());
  const dir = tempDir('seslog-digest-');
  const args = ['--slack-webhook-url', stub.url, '--slack-max-per-minute', '3', ...QUIET];
  const N = 120;
  let srv = await startServer({ t, dir, args });
  let next = 0;
  const worker = async () => {
    while (next < N) {
      const res = await post(srv.url, '/sns', bounce(next++));
      assert.equal(res.status, 200, res.text);
      assert.equal(res.json?.status, 'stored', res.text);
    }
  };
  await Promise.all(Array.from({ length: 6 }, worker));
  const [{ n: stored }] = await sqlite(srv.db, "SELECT count(*) AS n FROM SesEventMessages WHERE notificationType = 'Bounce'");
  assert.equal(stored, N);
  // Nothing was delivered: everything is pending.
  const kinds = await sqlite(srv.db, "SELECT kind, count(*) AS n, coalesce(sum(json_extract(payload, '$.total')), 0) AS total FROM outbox WHERE sink = 'slack' GROUP BY kind");
  const rows = JSON.stringify(kinds);
  const byKind = Object.fromEntries(kinds.map((r) => [r.kind, r]));
  const eventRows = byKind.event?.n ?? 0;
  const summaryRows = byKind.summary?.n ?? 0;
  // 3 a minute get their own row (6 if the burst crossed a minute); the
  // rest share summary rows: one for each time the loop took one, a few.
  assert.ok(eventRows <= 6, `event rows: ${eventRows} (${rows})`);
  assert.ok(summaryRows >= 1 && summaryRows <= 10, `summary rows: ${summaryRows} (${rows})`);
  const counted = byKind.summary?.total ?? 0;
  assert.equal(counted + eventRows, N, `summaries count ${counted} + ${eventRows} event rows`);

  await srv.kill();
  stub.setMode('ok');
  srv = await startServer({ t, dir, args });
  const covered = () => {
    let n = 0;
    for (const m of stub.accepted()) n += digestCount(m) ?? (eventMessageId(m) ? 1 : 0);
    return n;
  };
  // after the restart every row is due at once: the first digest covers
  // all of them (rows not yet tried; a retried one would wait a minute)
  await stub.waitFor(() => covered() >= N, { timeout: 20000, what: `all ${N} bounces announced` });
  assert.equal(covered(), N);
  const digest = stub.accepted().find((m) => digestCount(m) !== null);
  assert.match(JSON.stringify(digest.blocks), /Bounce Permanent \(\d+\)/);
  assert.match(JSON.stringify(digest.blocks), /d0\.test \(\d+\)/);
  await new Promise((r) => setTimeout(r, 500));
  const [{ n: left }] = await sqlite(srv.db, "SELECT count(*) AS n FROM outbox WHERE sink = 'slack'");
  assert.equal(left, 0);
  await srv.stop();
});
