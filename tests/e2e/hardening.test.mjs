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
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import {
  startServer, signEnvelope, post, get, uniqueBounce, assertStatus, sesFixture, tempDir, runSeslog, ROOT,
  sqlite, countEvents, assertError, request, startCertServer,
} from './lib.mjs';
import { startSlackStub, allText, fetchMetrics } from './slackstub.mjs';

const { csvCell } = await import(path.join(ROOT, 'web', 'js', 'csv.js'));

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

  test('a log value over 8 KiB is cut inside its quotes with a marker; every line ends', { timeout: 30000 }, async (t) => {
    const srv = await startServer({ t });
    // Two offsets: one of them cuts inside a two-byte UTF-8 sequence.
    for (const n of [7000, 7001]) {
      const res = await get(srv.url, encodeURI(`/${'a'.repeat(n)}${'é'.repeat(1000)}`));
      assert.equal(res.status, 404);
    }
    assert.equal((await get(srv.url, '/healthz')).status, 200);
    await srv.stop();
    const lines = Buffer.from(srv.stderr, 'utf8').toString('latin1').split('\n');
    assert.equal(lines.pop(), '', 'the log does not end with a newline');
    const cut = lines.filter((l) => l.includes('...[truncated]'));
    assert.ok(cut.length >= 1, 'no line carries the truncation marker');
    for (const l of lines) {
      assert.ok(l.startsWith('time='), `a line glued onto another: ${l.slice(0, 200)}`);
      assert.ok(l.length < 8192, `a line of ${l.length} bytes`);
    }
    for (const l of cut) {
      assert.match(l, /\.\.\.\[truncated\]"( |$)/, 'the marker is not inside the closing quote');
      assert.ok(Buffer.from(l, 'latin1').toString('utf8').indexOf('\ufffd') < 0, 'a UTF-8 sequence was cut in half');
    }
  });

  test('--web serves only files whose real path lies under the folder: links out of it are not followed', { timeout: 30000 }, async (t) => {
    const base = tempDir('seslog-web-');
    const web = path.join(base, 'web');
    const outside = path.join(base, 'outside');
    fs.mkdirSync(web);
    fs.mkdirSync(outside);
    fs.writeFileSync(path.join(web, 'index.html'), '<p>home</p>');
    fs.writeFileSync(path.join(outside, 'secret.txt'), 'the secret');
    fs.symlinkSync(path.join(outside, 'secret.txt'), path.join(web, 'secret.txt'));
    fs.symlinkSync(outside, path.join(web, 'linked'));
    fs.symlinkSync('index.html', path.join(web, 'alias.html'));
    const srv = await startServer({ t, args: ['--web', web] });
    assert.equal((await get(srv.url, '/index.html')).text, '<p>home</p>');
    assert.equal((await get(srv.url, '/alias.html')).text, '<p>home</p>', 'a link inside the folder is served');
    for (const p of ['/secret.txt', '/linked/secret.txt']) {
      const res = await get(srv.url, p);
      assert.equal(res.status, 404, `${p} served through a link out of --web: ${res.text}`);
    }
    await srv.stop();
    assert.match(srv.stderr, /static file skipped \(a link out of the web folder\)/);
  });

  test('times that do not exist are refused with 400: Nov 31, second 60, offset +99:99; a Timestamp a day ahead gets 403', { timeout: 30000 }, async (t) => {
    const srv = await startServer({ t });
    for (const ts of ['2026-11-31T10:00:00.000Z', '2026-12-01T10:00:60.000Z', '2026-12-01T10:00:00.000+99:99', '2026-12-01T25:00:00.000Z']) {
      const res = await post(srv.url, '/sns', signEnvelope({ message: uniqueBounce(), timestamp: ts }));
      assert.equal(res.status, 400, `Timestamp ${ts}: ${res.status} ${res.text}`);
    }
    assertStatus(await post(srv.url, '/sns', signEnvelope({ message: uniqueBounce(), timestamp: '2026-11-30T10:00:00.000Z' })), 'stored');
    // a Timestamp far in the future is refused; a few minutes of clock skew are not
    const future = new Date(Date.now() + 2 * 86400e3).toISOString();
    assertError(await post(srv.url, '/sns', signEnvelope({ message: uniqueBounce(), timestamp: future })), 403, 'timestamp_in_future');
    const skewed = new Date(Date.now() + 10 * 60e3).toISOString();
    assertStatus(await post(srv.url, '/sns', signEnvelope({ message: uniqueBounce(), timestamp: skewed })), 'stored');
    await srv.stop();
  });

  test('CSV: query, suppression list and export guard formulas with a leading \' and quote; no raw ESC; the export re-imports unchanged; the web UI writes the same cells', { timeout: 60000 }, async () => {
    const dir = tempDir('seslog-csv-');
    const db = path.join(dir, 'a.db');
    const bounce = uniqueBounce();
    bounce.mail.source = '=HYPERLINK("https://evil.example","x")@example.com';
    bounce.bounce.bouncedRecipients[0].diagnosticCode = 'smtp; 550 \u001b[2J\u001b]0;owned\u0007 -1+1';
    const file = path.join(dir, 'in.json');
    fs.writeFileSync(file, JSON.stringify(bounce));
    const imp = await runSeslog(['import', '--db', db, file]);
    assert.equal(imp.code, 0, imp.stderr);
    const q = await runSeslog(['query', '--db', db, '--format', 'csv']);
    assert.equal(q.code, 0, q.stderr);
    assert.ok(!q.stdout.includes('\u001b') && !q.stdout.includes('\u0007'), `raw control bytes: ${JSON.stringify(q.stdout)}`);
    assert.ok(q.stdout.includes('"\'=HYPERLINK(""https://evil.example"",""x"")@example.com"'), q.stdout);
    assert.ok(q.stdout.includes('\\x1b[2J'), q.stdout);
    const cells = q.stdout.split('\r\n')[1];
    assert.ok(!/(^|,)[=+\-@]/.test(cells), `a cell starts a formula: ${cells}`);

    const addresses = ['=x@example.com', '-y@example.com', '+z@example.com', "'=w@example.com", "''u@example.com", 'plain@example.com', 'a=b@example.com'];
    const sdb = path.join(dir, 's.db');
    const add = await runSeslog(['suppression', 'add', '--db', sdb, '--', ...addresses]);
    assert.equal(add.code, 0, add.stderr);
    const exp = await runSeslog(['suppression', 'export', '--db', sdb, '-']);
    assert.equal(exp.code, 0, exp.stderr);
    const lines = exp.stdout.trim().split('\n');
    for (const l of lines) assert.ok(!/^[=+\-@\t\r]/.test(l), `export line starts a formula: ${l}`);
    // the web UI's export: the same cell for each address
    const web = addresses.map((a) => `${csvCell(a)},BOUNCE`);
    assert.deepEqual([...lines].sort(), [...web].sort());
    const list = await runSeslog(['suppression', 'list', '--db', sdb, '--format', 'csv']);
    for (const l of list.stdout.trim().split('\n').slice(1)) assert.ok(!/^[=+\-@]/.test(l), l);
    assert.ok(list.stdout.includes('"\'=x@example.com",MANUAL'), list.stdout);
    // re-import into a fresh database: the same addresses
    const csvFile = path.join(dir, 'export.csv');
    fs.writeFileSync(csvFile, exp.stdout);
    const db2 = path.join(dir, 'b.db');
    const back = await runSeslog(['suppression', 'import', '--db', db2, csvFile]);
    assert.equal(back.code, 0, back.stderr + back.stdout);
    const got = JSON.parse((await runSeslog(['suppression', 'list', '--db', db2, '--format', 'json'])).stdout).map((e) => e.address);
    assert.deepEqual(got.sort(), [...addresses].sort());
  });

  test('duplicate keys at any depth and NUL in strings: 400, counted by reason, nothing stored; import rejects them too', { timeout: 60000 }, async (t) => {
    const srv = await startServer({ t });
    const dup = uniqueBounce();
    const dupText = JSON.stringify(dup).replace('"bounce":{', '"bounce":{"bounceType":"Transient",');
    assert.ok(dupText.includes('"bounceType":"Transient"') && dupText.includes('"bounceType":"Permanent"'));
    let res = await post(srv.url, '/sns', signEnvelope({ message: dupText }));
    assertError(res, 400, 'duplicate_key');
    const top = uniqueBounce();
    const topText = JSON.stringify(top).replace(/}$/, ',"notificationType":"Delivery"}');
    assertError(await post(srv.url, '/sns', signEnvelope({ message: topText })), 400, 'duplicate_key');
    const nul = uniqueBounce();
    nul.bounce.bouncedRecipients[0].emailAddress = 'victim@example.com\u0000@attacker.example';
    res = await post(srv.url, '/sns', signEnvelope({ message: nul }));
    assertError(res, 400, 'nul_in_string');
    assert.equal(await countEvents(srv.db), 0);
    assert.equal((await sqlite(srv.db, 'SELECT count(*) AS n FROM suppression'))[0].n, 0, 'an address was suppressed');
    const m = await fetchMetrics(get, srv);
    assert.equal(m.series.get('seslog_sns_rejected_total{reason="duplicate_key"}'), 2);
    assert.equal(m.series.get('seslog_sns_rejected_total{reason="nul_in_string"}'), 1);
    // the same JSON, well formed, is stored
    assertStatus(await post(srv.url, '/sns', signEnvelope({ message: uniqueBounce() })), 'stored');
    await srv.stop();

    const dir = tempDir('seslog-dupimport-');
    const file = path.join(dir, 'events.jsonl');
    const good = uniqueBounce();
    fs.writeFileSync(file, [dupText, JSON.stringify(nul), JSON.stringify(good), JSON.stringify(signEnvelope({ message: dupText }))].join('\n') + '\n');
    const db = path.join(dir, 'i.db');
    const imp = await runSeslog(['import', '--db', db, file]);
    assert.equal(imp.code, 1, imp.stdout + imp.stderr);
    assert.match(imp.stdout + imp.stderr, /imported 1, duplicates 0, rejected 3/);
    assert.match(imp.stderr, /:1: .*same key twice/);
    assert.match(imp.stderr, /:2: .*U\+0000/);
    assert.match(imp.stderr, /:4: .*same key twice/);
  });

  test('recipients past 1,000 in one event are counted, not taken; the original JSON stays whole', { timeout: 60000 }, async (t) => {
    const srv = await startServer({ t });
    const ses = uniqueBounce();
    const list = Array.from({ length: 1500 }, (_, i) => `r${i}@example.com`);
    ses.bounce.bouncedRecipients = list.map((a) => ({ emailAddress: a, status: '5.1.1', action: 'failed' }));
    ses.mail.destination = list;
    assertStatus(await post(srv.url, '/sns', signEnvelope({ message: ses })), 'stored');
    const [{ n }] = await sqlite(srv.db, 'SELECT count(*) AS n FROM recipients');
    assert.equal(n, 1000);
    const m = await fetchMetrics(get, srv);
    assert.equal(m.series.get('seslog_recipients_not_taken_total'), 500);
    assert.match(srv.stderr, /more recipients than seslog takes.*not_taken=500/);
    const [{ raw }] = await sqlite(srv.db, `SELECT bouncedRecipients AS raw FROM SesEventMessages WHERE messageId = '${ses.mail.messageId}'`);
    assert.equal(JSON.parse(raw).length, 1500, 'bouncedRecipients is not kept whole');
    await srv.stop();
  });

  test('connection caps: --sns-max-connections and --max-connections count apart; a flooded SNS listener does not lock out /healthz and the API', { timeout: 60000 }, async (t) => {
    const srv = await startServer({ t, args: ['--sns-listen', '127.0.0.1:0', '--sns-max-connections', '40', '--max-connections', '30'], listeners: 2 });
    const open = [];
    t.after(() => { for (const c of open) c.destroy(); });
    /** Opens n idle connections to port; resolves with how many were refused (503 and closed). */
    async function flood(port, n) {
      const results = await Promise.all(Array.from({ length: n }, () => new Promise((resolve) => {
        const c = net.connect(port, '127.0.0.1');
        open.push(c);
        let data = '';
        c.on('data', (d) => { data += d; });
        c.on('error', () => resolve('error'));
        c.on('close', () => resolve(data.startsWith('HTTP/1.1 503') ? 'refused' : 'closed'));
        setTimeout(() => resolve('open'), 1500);
      })));
      return results.filter((r) => r === 'refused').length;
    }
    // 100 idle connections to the SNS listener: 40 stay, the rest are refused
    const refused = await flood(srv.ports[1], 100);
    assert.equal(refused, 100 - 40, `refused on the SNS listener: ${refused}`);
    // the main listener is untouched: /healthz, the API and the web UI answer
    for (const p of ['/healthz', '/api/stats', '/']) {
      const res = await get(srv.url, p, {}, { agent: false });
      assert.equal(res.status, 200, `${p} while the SNS listener is full: ${res.status} ${res.text.slice(0, 200)}`);
    }
    // and the main listener has its own cap
    assert.equal(await flood(srv.ports[0], 35), 35 - 30);
    for (const c of open) c.destroy();
    await srv.stop();
  });

  test('DNS rebinding: a Host that does not name the server gets 421; a foreign Origin cannot change anything; --allowed-host and --public-url add names', { timeout: 30000 }, async (t) => {
    const srv = await startServer({ t, args: ['--allowed-host', 'seslog.internal', '--public-url', 'https://seslog.example.com/ui/'] });
    const h = (host, extra = {}) => ({ Host: host, ...extra });
    for (const p of ['/api/events', '/api/suppression', '/metrics', '/', '/index.html', '/api/diagnostics']) {
      const res = await get(srv.url, p, h('evil.example'), { agent: false });
      assertError(res, 421, 'unknown_host');
      const rebound = await get(srv.url, p, h(`attacker.example:${srv.port}`), { agent: false });
      assert.equal(rebound.status, 421, `${p} with a rebound name`);
    }
    for (const host of [`127.0.0.1:${srv.port}`, `localhost:${srv.port}`, 'seslog.internal', `SESLOG.example.com:${srv.port}`, '[::1]', 'x.localhost']) {
      const res = await get(srv.url, '/api/events', h(host), { agent: false });
      assert.equal(res.status, 200, `Host ${host}: ${res.status} ${res.text}`);
    }
    // /healthz and /sns are served to anyone, as on --sns-listen
    assert.equal((await get(srv.url, '/healthz', h('evil.example'), { agent: false })).status, 200);
    assertStatus(await post(srv.url, '/sns', signEnvelope({ message: uniqueBounce() }), h('sns.public.example'), { agent: false }), 'stored');
    // a foreign page cannot add or remove an entry, even with a good Host
    const addr = 'rebind-victim@example.com';
    const put = await request(srv.url, 'PUT', `/api/suppression/${addr}`, { reason: 'MANUAL' }, { Origin: 'https://evil.example' }, { agent: false });
    assertError(put, 403, 'foreign_origin');
    const nullOrigin = await request(srv.url, 'PUT', `/api/suppression/${addr}`, { reason: 'MANUAL' }, { Origin: 'null' }, { agent: false });
    assertError(nullOrigin, 403, 'foreign_origin');
    assert.equal((await get(srv.url, `/api/suppression/${addr}`)).status, 404);
    const ours = await request(srv.url, 'PUT', `/api/suppression/${addr}`, { reason: 'MANUAL' }, { Origin: srv.url }, { agent: false });
    assert.equal(ours.status, 201, ours.text);
    const del = await request(srv.url, 'DELETE', `/api/suppression/${addr}`, undefined, { Origin: 'http://evil.example' }, { agent: false });
    assertError(del, 403, 'foreign_origin');
    assert.equal((await get(srv.url, `/api/suppression/${addr}`)).status, 200, 'the entry was removed by a foreign page');
    await srv.stop();
  });

  test('certificate fetches on demand: the same unknown URL five times is one fetch; 200 unknown URLs are not 200 fetches; refusals are counted', { timeout: 60000 }, async (t) => {
    const stand = await startCertServer();
    t.after(() => stand.close());
    const srv = await startServer({ t, certs: [], args: stand.args, connectTo: stand.connectTo });
    const unknown = () => `https://sns.us-east-1.amazonaws.com/SimpleNotificationService-${crypto.randomBytes(16).toString('hex')}.pem`;
    const same = unknown();
    for (let i = 0; i < 5; i++) {
      const res = await post(srv.url, '/sns', signEnvelope({ message: uniqueBounce(), certUrl: same }), {}, { agent: false });
      assertError(res, 503, 'certificate_unavailable');
    }
    assert.equal(stand.certGets().length, 1, `fetches of one unknown URL: ${JSON.stringify(stand.certGets())}`);
    for (let i = 0; i < 200; i += 20) {
      const batch = await Promise.all(Array.from({ length: 20 }, () => post(srv.url, '/sns', signEnvelope({ message: uniqueBounce(), certUrl: unknown() }), {}, { agent: false })));
      for (const res of batch) assertError(res, 503, 'certificate_unavailable');
    }
    const fetches = stand.certGets().length;
    assert.ok(fetches <= 10, `200 unknown URLs made ${fetches} fetches`);
    const m = await fetchMetrics(get, srv);
    assert.equal(m.series.get('seslog_cert_fetches_total'), fetches);
    assert.equal(m.series.get('seslog_cert_fetch_refused_total'), 205 - fetches);
    assert.equal(m.series.get('seslog_sns_rejected_total{reason="certificate_fetch"}'), 205);
    // the known certificate is still fetched and used once the minute allows; a stored file needs no fetch
    fs.copyFileSync(path.join(ROOT, 'tests', 'fixtures', 'pki', 'SimpleNotificationService-0123456789abcdef0123456789abcdef.pem'),
      path.join(srv.certDir, 'SimpleNotificationService-0123456789abcdef0123456789abcdef.pem'));
    assertStatus(await post(srv.url, '/sns', signEnvelope({ message: uniqueBounce() })), 'stored');
    await srv.stop();
  });
});
