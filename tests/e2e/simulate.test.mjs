// simulate.test.mjs - `seslog simulate` fills a running server with signed
// traffic that the server verifies and stores like AWS's.
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startServer, runSeslog, sqlite, get } from './lib.mjs';

const T = { timeout: 60000 };

test('simulate: signed traffic is verified and stored; outcomes and rates as asked', T, async (t) => {
  const srv = await startServer({ t });
  const args = ['simulate', '--url', srv.url, '--sns-cert-dir', srv.certDir, '--rate', '100',
    '--duration', '2s', '--bounce', '20', '--complaint', '5'];
  const r = await runSeslog(args);
  assert.equal(r.code, 0, `simulate failed: ${r.stderr}`);
  const m = r.stdout.match(/simulated (\d+) mails: (\d+) notifications posted \(Send (\d+), Delivery (\d+), Bounce (\d+), Complaint (\d+)\), (\d+) accepted, (\d+) failed/);
  assert.ok(m, `summary line: ${r.stdout}`);
  const [, mails, posted, sends, , bounces, complaints, accepted, failed] = m.map(Number);
  assert.ok(mails >= 150, `about 200 mails expected in 2 s at 100/s, got ${mails}`);
  assert.equal(sends, mails, 'one Send event per mail');
  assert.equal(accepted, posted);
  assert.equal(failed, 0);
  // the development certificate is where the server looks for certificates
  const certs = fs.readdirSync(srv.certDir).filter((f) => /^SimpleNotificationService-5e5109[0-9a-f]+\.pem$/.test(f));
  assert.equal(certs.length, 1, 'the development certificate was written to the cert dir');
  // every notification was stored, with the counts simulate reports
  const rows = await sqlite(srv.db, 'SELECT notificationType AS t, count(*) AS n FROM SesEventMessages GROUP BY 1');
  const by = Object.fromEntries(rows.map((x) => [x.t, x.n]));
  assert.equal(by.Send, sends);
  assert.equal(by.Bounce ?? 0, bounces);
  assert.equal(by.Complaint ?? 0, complaints);
  const total = rows.reduce((a, x) => a + x.n, 0);
  assert.equal(total, posted);
  // about 20 % bounce: a wide band, the draw is random
  assert.ok(bounces > mails * 0.08 && bounces < mails * 0.35, `bounces ${bounces} of ${mails}`);
  // the stats see the simulated sends
  const stats = (await get(srv.url, '/api/stats?window=10m')).json;
  assert.equal(stats.sends, sends);
  assert.ok(stats.bounceRate > 0);
  // a second run reuses the same certificate
  const r2 = await runSeslog([...args.slice(0, -8), '--rate', '20', '--duration', '500ms']);
  assert.equal(r2.code, 0, r2.stderr);
  assert.doesNotMatch(r2.stderr, /wrote a development signing certificate/);
  await srv.stop();
});

test('simulate: bad options exit 2 with one line', T, async () => {
  for (const bad of [['--rate', '0'], ['--url', 'ftp://x'], ['--bounce', '90', '--complaint', '20'], ['--nope']]) {
    const r = await runSeslog(['simulate', ...bad]);
    assert.equal(r.code, 2, `${bad.join(' ')}: ${r.stderr}`);
    assert.equal(r.stderr.trim().split('\n').length, 1, `${bad.join(' ')}: ${r.stderr}`);
  }
});

test('simulate: a server that is not running is reported, exit 1', T, async () => {
  const dir = fs.mkdtempSync(path.join(process.env.TMPDIR ?? '/tmp', 'seslog-sim-'));
  const r = await runSeslog(['simulate', '--url', 'http://127.0.0.1:1', '--sns-cert-dir', dir,
    '--rate', '5', '--duration', '300ms']);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stdout, /0 accepted/);
  assert.match(r.stderr, /last error/);
});

// --history: the past at daily and weekly rhythms, with bad days that cross
// the monitors' alert thresholds, through the same signed /sns path.
const DAY = 86400000;
const weekend = (t) => [0, 6].includes(new Date(t).getUTCDay());

test('simulate --history: a month in the past, weekdays busier than weekends, bad days over the thresholds', { timeout: 180000 }, async (t) => {
  const srv = await startServer({ t });
  const t0 = Date.now();
  const r = await runSeslog(['simulate', '--url', srv.url, '--sns-cert-dir', srv.certDir,
    '--history', '30d', '--per-day', '300'], { timeout: 170000 });
  const took = Date.now() - t0;
  assert.equal(r.code, 0, `simulate failed: ${r.stderr}`);
  const h = r.stdout.match(/^history from (\S+) to (\S+): (\d+) of (\d+) mails; bad days: bounces (\d{4}-\d\d-\d\d), complaints (\d{4}-\d\d-\d\d)$/m);
  assert.ok(h, `history line: ${r.stdout}`);
  const m = r.stdout.match(/simulated (\d+) mails: (\d+) notifications posted .* (\d+) accepted, (\d+) failed/);
  assert.ok(m, r.stdout);
  const [, mails, posted, accepted, failed] = m.map(Number);
  assert.equal(Number(h[3]), mails, 'every planned mail was made');
  assert.equal(Number(h[4]), mails);
  assert.equal(failed, 0);
  assert.equal(accepted, posted);
  // not a terminal: a progress line every few seconds, the last at 100 %
  assert.match(r.stderr, /history 100%: \d+ of \d+ mails, \d+ events posted, \d+ events\/s/);
  console.log(`# simulate --history 30d --per-day 300: ${mails} mails, ${posted} events in ${took} ms`);

  // everything stored, spread over the 30 days, nothing in the future
  const [span] = await sqlite(srv.db, 'SELECT count(*) AS n, min(timeStamp) AS lo, max(timeStamp) AS hi FROM SesEventMessages');
  assert.equal(span.n, posted);
  const lo = Date.parse(span.lo);
  const hi = Date.parse(span.hi);
  assert.ok(lo >= t0 - 30 * DAY - 60000 && lo < t0 - 29 * DAY, `oldest event ${span.lo}`);
  assert.ok(hi <= Date.now() + 1000 && hi > t0 - DAY, `newest event ${span.hi}`);

  // the rhythm: every full weekday above every full weekend day, on average twice as busy
  const since = new Date(Math.ceil((t0 - 30 * DAY) / DAY) * DAY).toISOString();
  const until = new Date(Math.floor(t0 / DAY) * DAY).toISOString();
  const pts = (await get(srv.url, `/api/timeseries?since=${since}&until=${until}&bucket=1d`)).json.points;
  assert.ok(pts.length >= 28, `${pts.length} full days`);
  const wd = pts.filter((p) => !weekend(Date.parse(p.t))).map((p) => p.sends);
  const we = pts.filter((p) => weekend(Date.parse(p.t))).map((p) => p.sends);
  const mean = (a) => a.reduce((x, y) => x + y, 0) / a.length;
  assert.ok(we.length >= 6 && wd.length >= 18);
  assert.ok(Math.min(...wd) > Math.max(...we), `weekdays ${wd} vs weekends ${we}`);
  assert.ok(mean(wd) > 2 * mean(we), `weekday mean ${mean(wd)} vs weekend mean ${mean(we)}`);
  // working hours busier than nights (UTC)
  const hours = await sqlite(srv.db, "SELECT CAST(strftime('%H', timeStamp) AS INT) AS h, count(*) AS n FROM SesEventMessages WHERE notificationType = 'Send' GROUP BY 1");
  const byHour = Object.fromEntries(hours.map((x) => [x.h, x.n]));
  assert.ok(byHour[10] > 4 * byHour[3], `10:00 ${byHour[10]} vs 03:00 ${byHour[3]}`);

  // the bad days cross the alert thresholds (5 % bounces, 0.1 % complaints)
  const stats = (await get(srv.url, '/api/stats')).json;
  const bounceAlert = stats.monitors.bounceRate.alert;
  const complaintAlert = stats.monitors.complaintRate.alert;
  const day = (d) => pts.find((p) => p.t.startsWith(d));
  const bad = day(h[5]);
  const badC = day(h[6]);
  assert.ok(bad && badC, `bad days ${h[5]} ${h[6]} inside the range`);
  assert.ok(!weekend(Date.parse(h[5])) && !weekend(Date.parse(h[6])), 'bad days are weekdays');
  assert.ok(bad.bounceRate > bounceAlert, `bad day bounce rate ${bad.bounceRate}`);
  assert.ok(badC.complaintRate > complaintAlert, `bad day complaint rate ${badC.complaintRate}`);
  // ordinary days together stay under the bounce warning, and each under the bad day
  const ordinary = pts.filter((p) => p !== bad && p.sends > 0);
  const sum = (k) => ordinary.reduce((x, p) => x + p[k], 0);
  assert.ok(sum('permanentBounces') / sum('sends') < stats.monitors.bounceRate.warn,
    `ordinary bounce rate ${sum('permanentBounces') / sum('sends')}`);
  assert.ok(ordinary.every((p) => p.bounceRate < bad.bounceRate), 'the bad day stands out');
  await srv.stop();
});

test('simulate --history with --duration: live traffic follows the history', { timeout: 60000 }, async (t) => {
  const srv = await startServer({ t });
  const t0 = Date.now();
  const r = await runSeslog(['simulate', '--url', srv.url, '--sns-cert-dir', srv.certDir,
    '--history', '6h', '--per-day', '200', '--rate', '20', '--duration', '1s']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^history from /m);
  const [old] = await sqlite(srv.db, `SELECT count(*) AS n FROM SesEventMessages WHERE timeStamp < '${new Date(t0 - 60000).toISOString()}'`);
  const [live] = await sqlite(srv.db, `SELECT count(*) AS n FROM SesEventMessages WHERE notificationType = 'Send' AND timeStamp >= '${new Date(t0).toISOString()}'`);
  assert.ok(old.n > 0, 'history written');
  assert.ok(live.n >= 10, `live sends after the history: ${live.n}`);
  assert.match(r.stderr, /posting 20 mails\/s/);
  await srv.stop();
});

test('simulate --history: bad values exit 2 with one line', T, async () => {
  for (const bad of [['--history', '400d'], ['--history', 'soon'], ['--history', '1d', '--per-day', '0']]) {
    const r = await runSeslog(['simulate', ...bad]);
    assert.equal(r.code, 2, `${bad.join(' ')}: ${r.stderr}`);
    assert.equal(r.stderr.trim().split('\n').length, 1, `${bad.join(' ')}: ${r.stderr}`);
  }
});
