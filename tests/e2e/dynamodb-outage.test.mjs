// dynamodb-outage.test.mjs - a DynamoDB outage with a seslog restart in the
// middle of it: ingest goes on, the replication waits in the durable outbox
// (across the restart), and once DynamoDB is back the table holds every
// replicated event exactly once, with nothing left pending or dead.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { uniqueBounce, sesFixture, sqlite, countEvents } from './lib.mjs';
import {
  missingTools, startDynalite, createTable, scanItems, byKey, expectedItem, startReplicating,
  postEvent, drained, replication, waitFor,
} from './dynamodb-lib.mjs';

function complaint(tag) {
  const ses = sesFixture('ses-notification-complaint-with-feedback-awsdocs');
  ses.mail.messageId = `complaint-${tag}`;
  ses.complaint.feedbackId = `feedback-${tag}`;
  return ses;
}

test('an outage of DynamoDB with seslog restarted during it loses nothing, duplicates nothing', { timeout: 90000 }, async (t) => {
  const missing = missingTools();
  assert.equal(missing, null, `${missing}`);
  const dyn = await startDynalite();
  t.after(() => dyn.stop());
  await createTable(dyn.url);
  let srv = await startReplicating(dyn.url, { t });
  const want = new Map();
  const send = async (n, tag) => {
    for (let i = 0; i < n; i++) {
      const ses = i % 3 === 2 ? complaint(`${tag}-${i}`) : uniqueBounce(`${tag}-${i}`);
      const ts = await postEvent(srv, ses); // ingest never waits for DynamoDB
      want.set(`${ses.mail.messageId}|${ts}`, expectedItem(ses, ts));
    }
  };

  await send(20, 'before');
  await drained(srv);
  assert.equal((await scanItems(dyn.url)).length, 20);

  // DynamoDB goes away
  await dyn.stop();
  await send(30, 'during');
  const failing = await waitFor(async () => {
    const r = await replication(srv);
    return r.lastError && r.pending === 30 ? r : null;
  }, { what: async () => JSON.stringify(await replication(srv)) });
  assert.match(failing.lastError, /^DynamoDB could not be reached/);

  // seslog restarts while it is away; the rows come back from the database
  await srv.stop();
  srv = await startReplicating(dyn.url, { t, dir: srv.dir });
  assert.match(srv.stderr, /outbox: resuming pending deliveries.*sink=dynamodb/);
  assert.equal((await replication(srv)).pending, 30);
  await send(25, 'after-restart');
  assert.equal((await replication(srv)).pending, 55);

  // DynamoDB returns (same port, same data)
  await dyn.start();
  const done = await drained(srv, 45000);
  assert.equal(done.dead, 0);

  const got = byKey(await scanItems(dyn.url));
  assert.equal(got.size, 75);
  assert.deepEqual([...got.keys()].sort(), [...want.keys()].sort(), 'every event, once');
  for (const [k, item] of want) assert.deepEqual(got.get(k), item, k);
  assert.equal(await countEvents(srv.db), 75);
  assert.deepEqual(await sqlite(srv.db, 'SELECT count(*) AS n FROM outbox'), [{ n: 0 }]);
  await srv.stop();
});
