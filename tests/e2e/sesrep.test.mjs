// sesrep.test.mjs - AWS's own verdict beside seslog's (seslog serve
// --ses-reputation): CloudWatch's Reputation.BounceRate/ComplaintRate and the
// SES v2 account status, asked of a stand-in on loopback (awsstub.mjs) that
// is itself checked with Debian's aws CLI first.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import http from 'node:http';
import { startServer, get, sqlite, tail, tempDir } from './lib.mjs';
import { AWS_CLI, AWS_ENV, waitFor, freePort } from './dynamodb-lib.mjs';
import { startAwsStub, errors } from './awsstub.mjs';
import { awsEnv as sqsAwsEnv, writeFile } from './sqs-lib.mjs';
import { startSlackStub, fetchMetrics, monitorChange } from './slackstub.mjs';

const skip = (await import('node:fs')).existsSync(AWS_CLI) ? false : `${AWS_CLI} is missing`;

/** Runs Debian's aws CLI against url; parsed JSON stdout. */
function awsCli(url, args, env = {}) {
  return new Promise((resolve, reject) => {
    execFile(AWS_CLI, ['--endpoint-url', url, '--output', 'json', ...args], {
      env: { PATH: process.env.PATH, HOME: process.env.HOME, ...AWS_ENV, AWS_PAGER: '',
        AWS_EC2_METADATA_DISABLED: 'true', ...env },
      timeout: 60000,
    }, (err, stdout, stderr) => {
      if (err) { reject(new Error(`aws ${args.join(' ')}: ${stderr || err.message}`)); return; }
      resolve(JSON.parse(stdout));
    });
  });
}

/**
 * The environment seslog gets: the test credentials and nothing of the
 * runner's AWS set-up (no files, no profile, no instance metadata).
 */
function awsEnv(extra = {}) {
  return {
    ...sqsAwsEnv(), ...AWS_ENV, AWS_ENDPOINT_URL_CLOUDWATCH: '', AWS_ENDPOINT_URL_SESV2: '',
    AWS_IGNORE_CONFIGURED_ENDPOINT_URLS: '', ...extra,
  };
}

async function stats(srv) {
  const res = await get(srv.url, '/api/stats');
  assert.equal(res.status, 200, res.text);
  return res.json;
}

function startWatching(stub, { args = [], env = {}, t, dir } = {}) {
  return startServer({
    t, dir,
    args: ['--ses-reputation', '--ses-reputation-interval', '1s', ...args],
    env: awsEnv({ AWS_ENDPOINT_URL: stub.url, ...env }),
  });
}

test('the stand-in answers as AWS does: Debian\'s aws CLI reads GetMetricData (query protocol) and GetAccount', { skip }, async (t) => {
  const stub = await startAwsStub();
  t.after(() => stub.close());
  const now = Date.now();
  stub.setRate('Reputation.BounceRate', 0.031, { now });
  stub.setRate('Reputation.ComplaintRate', 0.0004, { scope: 'configuration-set:marketing', now });
  const queries = JSON.stringify([
    { Id: 'b0', MetricStat: { Metric: { Namespace: 'AWS/SES', MetricName: 'Reputation.BounceRate' }, Period: 60, Stat: 'Average' } },
    { Id: 'c1', MetricStat: { Metric: { Namespace: 'AWS/SES', MetricName: 'Reputation.ComplaintRate',
      Dimensions: [{ Name: 'ses:configuration-set', Value: 'marketing' }] }, Period: 60, Stat: 'Average' } },
  ]);
  const out = await awsCli(stub.url, ['cloudwatch', 'get-metric-data', '--metric-data-queries', queries,
    '--start-time', new Date(now - 10 * 60000).toISOString(), '--end-time', new Date(now + 1000).toISOString()]);
  const byId = Object.fromEntries(out.MetricDataResults.map((r) => [r.Id, r]));
  assert.equal(byId.b0.Values.length, 10, JSON.stringify(out));
  assert.ok(byId.b0.Values.every((v) => v === 0.031));
  assert.equal(byId.c1.Values.length, 10);
  assert.ok(byId.c1.Values.every((v) => v === 0.0004));
  assert.equal(byId.b0.StatusCode, 'Complete');
  assert.equal(new Date(byId.b0.Timestamps[0]).getTime() % 60000, 0, 'timestamps are read as times');
  const cw = stub.requests.find((r) => r.api === 'cloudwatch');
  assert.equal(cw.protocol, 'query', 'the CLI speaks the query protocol');
  assert.equal(cw.sig, null, `the CLI's signature verifies: ${cw.sig}`);

  stub.account.EnforcementStatus = 'PROBATION';
  const acct = await awsCli(stub.url, ['sesv2', 'get-account']);
  assert.equal(acct.EnforcementStatus, 'PROBATION');
  assert.equal(acct.SendingEnabled, true);
  assert.equal(acct.SendQuota.Max24HourSend, 50000);
  const ses = stub.requests.find((r) => r.api === 'sesv2');
  assert.equal(ses.sig, null, `the CLI's signature verifies: ${ses.sig}`);

  // Error shapes the CLI understands as AWS's.
  stub.fail('cloudwatch', errors.cloudwatch.throttle());
  await assert.rejects(awsCli(stub.url, ['cloudwatch', 'get-metric-data', '--metric-data-queries', queries,
    '--start-time', new Date(now - 60000).toISOString(), '--end-time', new Date(now).toISOString()],
  { AWS_MAX_ATTEMPTS: '1' }), /Throttling/);
  stub.fail('sesv2', errors.sesv2.accessDenied());
  await assert.rejects(awsCli(stub.url, ['sesv2', 'get-account'], { AWS_MAX_ATTEMPTS: '1' }), /AccessDenied/);
});

test('AWS\'s rates and the account status reach /api/stats and /metrics; requests signed for monitoring and ses in the region', { skip }, async (t) => {
  const stub = await startAwsStub({ region: 'eu-west-1' });
  t.after(() => stub.close());
  stub.setRate('Reputation.BounceRate', 0.012);
  stub.setRate('Reputation.ComplaintRate', 0.0002);
  stub.setRate('Reputation.BounceRate', 0.04, { scope: 'configuration-set:marketing' });
  stub.account.SendQuota.SentLast24Hours = 4321;
  const srv = await startWatching(stub, {
    t, args: ['--ses-configuration-set', 'marketing'], env: { AWS_REGION: 'eu-west-1' },
  });
  const s = await waitFor(async () => {
    const j = await stats(srv);
    return j.aws.bounceRate !== null && j.aws.enforcementStatus ? j : null;
  }, { what: () => tail(srv.stderr, 20) });
  assert.equal(s.aws.enabled, true);
  assert.equal(s.aws.bounceRate, 0.012);
  assert.equal(s.aws.complaintRate, 0.0002);
  assert.match(s.aws.at, /^\d{4}-\d\d-\d\dT/);
  assert.equal(s.aws.enforcementStatus, 'HEALTHY');
  assert.equal(s.aws.sendingEnabled, true);
  assert.equal(s.aws.productionAccessEnabled, true);
  assert.deepEqual(s.aws.sendQuota, { max24HourSend: 50000, maxSendRate: 14, sentLast24Hours: 4321 });
  assert.equal(s.aws.monitors.bounceRate.state, 'ok');
  assert.equal(s.aws.monitors.bounceRate.value, 0.012);
  assert.equal(s.aws.monitors.bounceRate.warn, 0.025);
  assert.equal(s.aws.monitors.complaintRate.alert, 0.001);
  assert.deepEqual(s.aws.configurationSets, [{ name: 'marketing', bounceRate: 0.04, complaintRate: 0 }]);
  assert.deepEqual(s.aws.errors, []);
  assert.ok(s.monitors.bounceRate, 'seslog\'s own monitors stay');

  // Every request verified: SigV4 over the right service and region.
  const cw = stub.requests.filter((r) => r.api === 'cloudwatch');
  const ses = stub.requests.filter((r) => r.api === 'sesv2');
  assert.ok(cw.length >= 1 && ses.length >= 1);
  for (const r of [...cw, ...ses]) assert.equal(r.sig, null, `${r.api}: ${r.sig}`);
  assert.match(cw[0].headers.authorization, /Credential=AKIDTESTSESLOG\/\d{8}\/eu-west-1\/monitoring\/aws4_request/);
  assert.match(ses[0].headers.authorization, /Credential=AKIDTESTSESLOG\/\d{8}\/eu-west-1\/ses\/aws4_request/);
  assert.equal(cw[0].protocol, 'json');
  assert.equal(cw[0].headers['content-type'], 'application/x-amz-json-1.0');
  // Account level and per configuration set, both metrics, one-minute averages.
  const asked = cw[0].queries.map((q) => `${q.MetricStat.Metric.MetricName}|${JSON.stringify(q.MetricStat.Metric.Dimensions)}|${q.MetricStat.Stat}|${q.MetricStat.Period}`);
  assert.deepEqual(asked.sort(), [
    'Reputation.BounceRate|[]|Average|60',
    'Reputation.BounceRate|[{"Name":"ses:configuration-set","Value":"marketing"}]|Average|60',
    'Reputation.ComplaintRate|[]|Average|60',
    'Reputation.ComplaintRate|[{"Name":"ses:configuration-set","Value":"marketing"}]|Average|60',
  ]);
  assert.ok(cw[0].end - cw[0].start >= 10 * 60000, 'at least the monitor window is asked for');
  assert.doesNotMatch(srv.stderr, /test-secret-Xq9zv7s3kL/, 'the secret is never logged');

  const m = await fetchMetrics(get, srv);
  assert.equal(m.series.get('seslog_ses_reputation_bounce_rate'), 0.012);
  assert.equal(m.series.get('seslog_ses_reputation_complaint_rate'), 0.0002);
  assert.equal(m.series.get('seslog_ses_reputation_bounce_rate{configuration_set="marketing"}'), 0.04);
  assert.equal(m.series.get('seslog_ses_enforcement_status{status="HEALTHY"}'), 1);
  assert.equal(m.series.get('seslog_ses_enforcement_status{status="PROBATION"}'), 0);
  assert.equal(m.types.get('seslog_ses_reputation_bounce_rate'), 'gauge');

  // The samples are kept, and /api/timeseries gives AWS's series.
  const rows = await sqlite(srv.db, "SELECT count(*) AS n FROM ses_reputation_samples WHERE scope = 'account' AND metric = 'bounceRate'");
  assert.ok(rows[0].n >= 10, JSON.stringify(rows));
  const ts = await get(srv.url, '/api/timeseries?source=aws&bucket=1m&since=15m');
  assert.equal(ts.status, 200, ts.text);
  assert.equal(ts.json.source, 'aws');
  const withData = ts.json.points.filter((p) => p.bounceRate !== null);
  assert.ok(withData.length >= 10, ts.text);
  assert.ok(withData.every((p) => p.bounceRate === 0.012 && p.complaintRate === 0.0002 && p.samples === 2));
  for (const q of ['bucket=1m&since=15m', 'bucket=1h', `bucket=1h&since=2026-01-01T00:00:00Z&until=2026-01-01T03:00:00Z`]) {
    const own = await get(srv.url, `/api/timeseries?${q}`);
    const aws = await get(srv.url, `/api/timeseries?${q}&source=aws`);
    assert.deepEqual(aws.json.points.map((p) => p.t), own.json.points.map((p) => p.t), `the same buckets for ${q}`);
  }
  // Samples are kept 400 days: an older one goes at the next round, a younger one stays.
  const day = 86400e3;
  await sqlite(srv.db, `INSERT INTO ses_reputation_samples (t, metric, scope, value) VALUES
    (${Date.now() - 401 * day}, 'bounceRate', 'account', 0.5), (${Date.now() - 399 * day}, 'bounceRate', 'account', 0.25),
    (${Date.now() - 401 * day}, 'bounceRate', 'configuration-set:marketing', 0.5)`);
  const asks = stub.requests.length;
  await waitFor(() => stub.requests.length >= asks + 4);
  await waitFor(async () => (await sqlite(srv.db, 'SELECT count(*) AS n FROM ses_reputation_samples WHERE value = 0.5'))[0].n === 0,
    { what: () => 'the 401-day-old samples are still there' });
  assert.equal((await sqlite(srv.db, 'SELECT count(*) AS n FROM ses_reputation_samples WHERE value = 0.25'))[0].n, 1);
  const bad = await get(srv.url, '/api/timeseries?source=elsewhere');
  assert.equal(bad.status, 400);
  // The health of both APIs in /api/diagnostics.
  const d = (await get(srv.url, '/api/diagnostics')).json.sesReputation;
  assert.equal(d.enabled, true);
  assert.equal(d.endpoints.cloudwatch, `${stub.url}/`);
  assert.equal(d.endpoints.sesv2, `${stub.url}/v2/email/account`);
  assert.equal(d.region, 'eu-west-1');
  assert.match(d.cloudwatch.lastSuccessAt, /^\d{4}-/);
  assert.equal(d.sesv2.error, null);
  await srv.stop();
});

test('the service variables win over AWS_ENDPOINT_URL, and AWS_IGNORE_CONFIGURED_ENDPOINT_URLS ignores both', { skip }, async (t) => {
  const general = await startAwsStub({ name: 'general' });
  const cwStub = await startAwsStub({ name: 'cloudwatch' });
  const sesStub = await startAwsStub({ name: 'sesv2' });
  t.after(() => Promise.all([general.close(), cwStub.close(), sesStub.close()]));
  const srv = await startServer({
    t,
    args: ['--ses-reputation', '--ses-reputation-interval', '1s'],
    env: awsEnv({ AWS_ENDPOINT_URL: general.url, AWS_ENDPOINT_URL_CLOUDWATCH: `${cwStub.url}/`,
      AWS_ENDPOINT_URL_SESV2: sesStub.url, AWS_SESSION_TOKEN: 'FQoGZXIvYXdzEXAMPLEtoken' }),
  });
  await waitFor(() => cwStub.requests.length >= 1 && sesStub.requests.length >= 1,
    { what: () => tail(srv.stderr, 20) });
  assert.deepEqual([...new Set(cwStub.requests.map((r) => r.api))], ['cloudwatch']);
  assert.deepEqual([...new Set(sesStub.requests.map((r) => r.api))], ['sesv2']);
  assert.equal(general.requests.length, 0, 'AWS_ENDPOINT_URL is not used when the service has its own');
  assert.equal(cwStub.requests[0].path, '/', 'one slash, not two');
  for (const r of [cwStub.requests[0], sesStub.requests[0]]) {
    assert.equal(r.headers['x-amz-security-token'], 'FQoGZXIvYXdzEXAMPLEtoken', 'temporary credentials carry their token');
    assert.equal(r.sig, null, `${r.api}: ${r.sig}`);
  }
  assert.doesNotMatch(srv.stderr, /FQoGZXIvYXdzEXAMPLEtoken/, 'the token is never logged');
  await srv.stop();

  // Ignoring configured endpoints means the region's AWS endpoints.
  const srv2 = await startServer({
    t,
    args: ['--ses-reputation', '--ses-reputation-interval', '1h'],
    env: awsEnv({ AWS_ENDPOINT_URL: general.url, AWS_IGNORE_CONFIGURED_ENDPOINT_URLS: 'true',
      AWS_REGION: 'ap-southeast-2' }),
    connectTo: ['monitoring.ap-southeast-2.amazonaws.com:443:127.0.0.1:1', 'email.ap-southeast-2.amazonaws.com:443:127.0.0.1:1'],
  });
  const d = (await get(srv2.url, '/api/diagnostics')).json.sesReputation;
  assert.equal(d.endpoints.cloudwatch, 'https://monitoring.ap-southeast-2.amazonaws.com/');
  assert.equal(d.endpoints.sesv2, 'https://email.ap-southeast-2.amazonaws.com/v2/email/account');
  const s = await waitFor(async () => {
    const j = await stats(srv2);
    return j.aws.errors.length === 2 ? j : null;
  }, { what: () => tail(srv2.stderr, 20) });
  assert.deepEqual(s.aws.errors.map((e) => e.error), ['network', 'network']);
  assert.equal(general.requests.length, 0);
  await srv2.stop();

  // A bad endpoint variable is a mistake to fix at start.
  for (const region of ['us-east-1', '']) { // also when there is no region to build the others
    const bad = await startServer({
      args: ['--ses-reputation'], env: awsEnv({ AWS_ENDPOINT_URL_SESV2: 'ftp://127.0.0.1:1', AWS_REGION: region }),
    }).catch((e) => e);
    assert.ok(bad instanceof Error, `started with a bad AWS_ENDPOINT_URL_SESV2 (region "${region}")`);
    assert.match(bad.message, /AWS_ENDPOINT_URL_SESV2 must be an http:\/\/ or https:\/\/ URL/);
    assert.match(bad.message, /code 2/);
  }
});

/** Slack messages about AWS's rates ("AWS bounce rate ok → alert") and the account status. */
function awsMessages(slack) {
  return slack.accepted().map((m) => m?.text ?? '').filter((x) => /AWS (bounce|complaint) rate|SES account status/.test(x));
}

test('an AWS bounce rate over 5 % alerts through the monitors\' path; back below, it is ok again', { skip }, async (t) => {
  const stub = await startAwsStub();
  const slack = await startSlackStub();
  t.after(() => Promise.all([stub.close(), slack.close()]));
  stub.setRate('Reputation.BounceRate', 0.062);
  stub.setRate('Reputation.ComplaintRate', 0);
  const srv = await startWatching(stub, {
    t, args: ['--slack-webhook-url', `${slack.url}/hook`, '--slack-mention', 'channel'],
  });
  await slack.waitFor(() => awsMessages(slack).some((x) => /AWS bounce rate/.test(x)),
    { what: 'the AWS bounce rate alert' });
  const msg = awsMessages(slack).find((x) => /AWS bounce rate/.test(x));
  assert.match(msg, /^<!channel> AWS bounce rate \(Reputation\.BounceRate\) ok → alert: 6\.200 %/);
  const s = await stats(srv);
  assert.equal(s.aws.monitors.bounceRate.state, 'alert');
  assert.equal(s.aws.monitors.bounceRate.value, 0.062);
  assert.equal(s.aws.monitors.complaintRate.state, 'ok');
  assert.equal(s.monitors.bounceRate.state, 'ok', 'seslog\'s own monitor is a separate one');
  const rows = await sqlite(srv.db, "SELECT monitor, fromState, toState, round(value, 9) AS value, threshold FROM monitor_changes WHERE monitor LIKE 'aws%'");
  assert.deepEqual(rows, [{ monitor: 'awsBounceRate', fromState: 'ok', toState: 'alert', value: 0.062, threshold: 0.05 }]);
  const m = await fetchMetrics(get, srv);
  assert.equal(m.series.get('seslog_ses_reputation_monitor_state{monitor="bounceRate"}'), 2);
  // Several more rounds: no second message while the state holds.
  const rounds = stub.requests.length;
  await waitFor(() => stub.requests.length >= rounds + 6);
  assert.equal(awsMessages(slack).length, 1, awsMessages(slack).join('\n'));

  // A restart remembers the state: nothing is announced again.
  await srv.stop();
  const srv2 = await startWatching(stub, { t, dir: srv.dir, args: ['--slack-webhook-url', `${slack.url}/hook`] });
  const before = stub.requests.length;
  await waitFor(() => stub.requests.length >= before + 4);
  assert.equal(awsMessages(slack).length, 1, awsMessages(slack).join('\n'));
  const after = await stats(srv2);
  assert.equal(after.aws.monitors.bounceRate.state, 'alert');
  assert.equal(after.monitors.bounceRate.state, 'ok', 'AWS\'s stored state is not taken for seslog\'s own');
  assert.deepEqual(slack.accepted().map(monitorChange).filter(Boolean), [], 'seslog\'s own monitors said nothing');

  // The points stop (no data reads as zero, as the original monitor did): ok again.
  stub.setPoints('Reputation.BounceRate', []);
  await slack.waitFor(() => awsMessages(slack).length === 2, { what: 'the way back' });
  assert.match(awsMessages(slack)[1], /^AWS bounce rate \(Reputation\.BounceRate\) alert → ok: 0\.000 %/);
  await srv2.stop();
});

test('HEALTHY → PROBATION is announced once, and once on the way back', { skip }, async (t) => {
  const stub = await startAwsStub();
  const slack = await startSlackStub();
  t.after(() => Promise.all([stub.close(), slack.close()]));
  const srv = await startWatching(stub, { t, args: ['--slack-webhook-url', `${slack.url}/hook`] });
  await waitFor(async () => (await stats(srv)).aws.enforcementStatus === 'HEALTHY');
  const accountAsks = () => stub.requests.filter((r) => r.api === 'sesv2').length;
  let n = accountAsks();
  await waitFor(() => accountAsks() >= n + 2);
  assert.deepEqual(awsMessages(slack), [], 'the first HEALTHY is no news');

  stub.account.EnforcementStatus = 'PROBATION';
  await slack.waitFor(() => awsMessages(slack).length === 1, { what: 'the PROBATION message' });
  assert.match(awsMessages(slack)[0], /^<!here> SES account status: HEALTHY → PROBATION/);
  const s = await stats(srv);
  assert.equal(s.aws.enforcementStatus, 'PROBATION');
  assert.equal(s.aws.changes[0].from, 'HEALTHY');
  assert.equal(s.aws.changes[0].to, 'PROBATION');
  const m = await fetchMetrics(get, srv);
  assert.equal(m.series.get('seslog_ses_enforcement_status{status="PROBATION"}'), 1);
  assert.equal(m.series.get('seslog_ses_enforcement_status{status="HEALTHY"}'), 0);
  n = accountAsks();
  await waitFor(() => accountAsks() >= n + 3);
  assert.equal(awsMessages(slack).length, 1, 'announced once while it lasts');

  stub.account.EnforcementStatus = 'HEALTHY';
  await slack.waitFor(() => awsMessages(slack).length === 2, { what: 'the way back' });
  assert.match(awsMessages(slack)[1], /^SES account status: PROBATION → HEALTHY/);
  n = accountAsks();
  await waitFor(() => accountAsks() >= n + 3);
  assert.equal(awsMessages(slack).length, 2);
  const rows = await sqlite(srv.db, 'SELECT fromStatus, toStatus, sendingEnabled FROM ses_account_changes ORDER BY id');
  assert.deepEqual(rows, [
    { fromStatus: '', toStatus: 'HEALTHY', sendingEnabled: 1 },
    { fromStatus: 'HEALTHY', toStatus: 'PROBATION', sendingEnabled: 1 },
    { fromStatus: 'PROBATION', toStatus: 'HEALTHY', sendingEnabled: 1 },
  ]);
  await srv.stop();
});

test('access denied and throttling are shown and retried with backoff; never fatal', { skip }, async (t) => {
  const stub = await startAwsStub();
  t.after(() => stub.close());
  stub.setRate('Reputation.BounceRate', 0.01);
  stub.fail('cloudwatch', errors.cloudwatch.accessDenied(), errors.cloudwatch.accessDenied());
  const throttle = errors.sesv2.throttle();
  throttle.headers['Retry-After'] = '3';
  stub.fail('sesv2', throttle);
  const srv = await startWatching(stub, { t, args: ['--ses-reputation-interval', '1h'] });
  const s = await waitFor(async () => {
    const j = await stats(srv);
    return j.aws.errors.length === 2 ? j : null;
  }, { what: () => tail(srv.stderr, 20) });
  const byApi = Object.fromEntries(s.aws.errors.map((e) => [e.api, e]));
  assert.equal(byApi.cloudwatch.error, 'access_denied');
  assert.match(byApi.cloudwatch.message, /HTTP 403 AccessDeniedException: User: .* not authorized to perform: cloudwatch:GetMetricData/);
  assert.equal(byApi.sesv2.error, 'throttled');
  assert.match(byApi.sesv2.message, /HTTP 429/);
  assert.match(byApi.cloudwatch.retryAt, /^\d{4}-/);
  const retryIn = Date.parse(byApi.cloudwatch.retryAt) - Date.now();
  assert.ok(retryIn < 10000, `retried soon, not after the 1h interval (${retryIn} ms)`);
  const d = (await get(srv.url, '/api/diagnostics')).json.sesReputation;
  assert.equal(d.cloudwatch.error, 'access_denied');
  assert.equal(d.sesv2.error, 'throttled');
  assert.match(srv.stderr, /AWS reputation: request failed; retrying with backoff.*access_denied/);

  // The second denial doubles the wait; then the answers come.
  const ok = await waitFor(async () => {
    const j = await stats(srv);
    return j.aws.errors.length === 0 && j.aws.bounceRate === 0.01 ? j : null;
  }, { timeout: 20000, what: () => tail(srv.stderr, 20) });
  assert.equal(ok.aws.enforcementStatus, 'HEALTHY');
  const cw = stub.requests.filter((r) => r.api === 'cloudwatch');
  assert.equal(cw.length, 3, 'two denials, then success; no more rounds within the hour');
  const gap1 = cw[1].at - cw[0].at;
  const gap2 = cw[2].at - cw[1].at;
  assert.ok(gap1 >= 2900 && gap1 < 5000, `first retry after SES's Retry-After of 3 s (more than the 2 s backoff): ${gap1}`);
  assert.ok(gap2 >= 3900 && gap2 < 9000, `second after about 4 s: ${gap2}`);
  const m = await fetchMetrics(get, srv);
  assert.equal(m.series.get('seslog_ses_reputation_requests_total{api="cloudwatch",outcome="access_denied"}'), 2);
  assert.equal(m.series.get('seslog_ses_reputation_requests_total{api="sesv2",outcome="throttled"}'), 1);
  assert.match(srv.stderr, /AWS reputation: request works again/);
  await srv.stop();
});

test('without credentials or region the server runs and says why', { skip }, async (t) => {
  const srv = await startServer({
    t, args: ['--ses-reputation'],
    env: awsEnv({ AWS_ACCESS_KEY_ID: '', AWS_SECRET_ACCESS_KEY: '' }),
  });
  const s = await waitFor(async () => {
    const j = await stats(srv);
    return j.aws.errors.length === 2 ? j : null;
  });
  assert.deepEqual(s.aws.errors.map((e) => e.error), ['no_credentials', 'no_credentials']);
  assert.match(s.aws.errors[0].message, /^no credentials: none found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY/);
  assert.equal((await get(srv.url, '/api/diagnostics')).json.sesReputation.credentials.source, 'none');
  assert.equal(s.aws.bounceRate, null);
  assert.equal(s.aws.enforcementStatus, null);
  const m = await fetchMetrics(get, srv);
  assert.equal(m.series.has('seslog_ses_reputation_bounce_rate'), false, 'no made-up zero');
  await srv.stop();

  const srv2 = await startServer({ t, args: ['--ses-reputation'], env: awsEnv({ AWS_REGION: '' }) });
  const s2 = await waitFor(async () => {
    const j = await stats(srv2);
    return j.aws.errors.length === 2 ? j : null;
  });
  assert.match(s2.aws.errors[0].message, /no region: set AWS_REGION/);
  await srv2.stop();

  // Off by default: the object says so and nothing is asked.
  const off = await startServer({ t });
  assert.deepEqual((await stats(off)).aws, { enabled: false });
  assert.equal((await get(off.url, '/api/timeseries?source=aws')).status, 400);
  await off.stop();
});

test('bad options: one line, exit 2', { skip }, async () => {
  for (const [args, re] of [
    [['--ses-reputation', '--ses-configuration-set', 'bad name'], /--ses-configuration-set bad name: a name has 1 to 64 letters/],
    [['--ses-reputation', '--ses-reputation-interval', '0'], /--ses-reputation-interval must be at least 1s/],
  ]) {
    const e = await startServer({ args, env: awsEnv() }).catch((x) => x);
    assert.ok(e instanceof Error, `${args.join(' ')} started`);
    assert.match(e.message, re);
    assert.match(e.message, /code 2/);
  }
  // --read-only browses a database without writing: the watch, which stores AWS's figures, is refused.
  const made = await startServer({ env: awsEnv() });
  await made.stop();
  const ro = await startServer({ dir: made.dir, args: ['--read-only', '--ses-reputation'], env: awsEnv() }).catch((x) => x);
  assert.ok(ro instanceof Error, '--read-only --ses-reputation started');
  assert.match(ro.message, /--read-only takes no --ses-reputation: it stores AWS's figures/);
  assert.match(ro.message, /code 2/);
});

test('answers that are not what AWS sends are refused as bad_response and change nothing', { skip }, async (t) => {
  const stub = await startAwsStub();
  t.after(() => stub.close());
  stub.setRate('Reputation.BounceRate', 0.02);
  const now = Math.floor(Date.now() / 60000) * 60000;
  stub.fail('cloudwatch',
    { status: 200, raw: 'not json at all' },
    { status: 200, raw: '{"MetricDataResults":"no"}' },
    // Mismatched arrays, a negative value, a string time, null: skipped points, the rest kept.
    { status: 200, raw: JSON.stringify({ MetricDataResults: [
      { Id: 'b0', Timestamps: [now / 1000, (now - 60000) / 1000], Values: [0.5] },
      { Id: 'c0', Timestamps: [now / 1000, 'yesterday', null, 1e300, new Date(now - 60000).toISOString()], Values: [-1, 0.1, 0.1, 0.1, 0.0004] },
      { Id: 'c', Timestamps: [now / 1000], Values: [0.9] },
      { Id: 'x9', Timestamps: [now / 1000], Values: [1] },
      { Id: 'b77', Timestamps: [now / 1000], Values: [1] },
    ] }) });
  stub.fail('sesv2', { status: 200, raw: '{}' }, { status: 200, raw: '[1,2' });
  const srv = await startWatching(stub, { t, args: ['--ses-reputation-interval', '1h'] });
  const first = await waitFor(async () => {
    const j = await stats(srv);
    return j.aws.errors.length === 2 ? j : null;
  }, { what: () => tail(srv.stderr, 20) });
  assert.deepEqual(first.aws.errors.map((e) => e.error), ['bad_response', 'bad_response']);
  assert.equal(first.aws.bounceRate, null, 'nothing taken from an unreadable answer');
  assert.equal(first.aws.enforcementStatus, null);
  // The third CloudWatch answer is readable in part: its good point counts, the bad ones do not.
  const third = await waitFor(async () => {
    const j = await stats(srv);
    return j.aws.complaintRate !== null ? j : null;
  }, { timeout: 20000, what: () => tail(srv.stderr, 20) });
  assert.equal(third.aws.complaintRate, 0.0004);
  assert.equal(third.aws.bounceRate, 0, 'no readable bounce point in the window reads as zero');
  assert.match(srv.stderr, /some data points were unreadable; skipped/);
  const rows = await sqlite(srv.db, 'SELECT metric, value FROM ses_reputation_samples ORDER BY metric');
  assert.deepEqual(rows, [{ metric: 'complaintRate', value: 0.0004 }]);
  // That round read both APIs: no error left, and the next round waits for the interval.
  const ok = await waitFor(async () => {
    const j = await stats(srv);
    return j.aws.errors.length === 0 && j.aws.enforcementStatus ? j : null;
  }, { timeout: 10000, what: () => tail(srv.stderr, 20) });
  assert.equal(ok.aws.enforcementStatus, 'HEALTHY');
  assert.equal(stub.requests.filter((r) => r.api === 'cloudwatch').length, 3);
  await srv.stop();
});

test('credentials come from the shared chain: a profile\'s file, and IMDSv2\'s temporary ones with their token', { skip }, async (t) => {
  const dir = tempDir('seslog-sesrep-creds-');
  const file = writeFile(dir, 'credentials', `[reports]\naws_access_key_id = AKIDFROMFILE\naws_secret_access_key = file-secret-value\n`);
  const stub = await startAwsStub({ key: 'AKIDFROMFILE', secret: 'file-secret-value' });
  t.after(() => stub.close());
  const srv = await startWatching(stub, {
    t, env: { AWS_ACCESS_KEY_ID: '', AWS_SECRET_ACCESS_KEY: '', AWS_SHARED_CREDENTIALS_FILE: file, AWS_PROFILE: 'reports' },
  });
  await waitFor(async () => (await stats(srv)).aws.enforcementStatus === 'HEALTHY', { what: () => tail(srv.stderr, 20) });
  assert.ok(stub.requests.every((r) => r.sig === null), JSON.stringify(stub.requests.map((r) => r.sig)));
  const d = (await get(srv.url, '/api/diagnostics')).json.sesReputation;
  assert.deepEqual(d.credentials, { source: 'shared-credentials-file', accessKeyId: 'AKIDFROMFILE' });
  await srv.stop();

  // IMDSv2: a session token, then the role's temporary credentials.
  const imds = http.createServer((req, res) => {
    if (req.method === 'PUT' && req.url === '/latest/api/token') { res.end('imds-session-token'); return; }
    if (req.headers['x-aws-ec2-metadata-token'] !== 'imds-session-token') { res.writeHead(401); res.end(); return; }
    if (req.url === '/latest/meta-data/iam/security-credentials/') { res.end('seslog-role'); return; }
    res.end(JSON.stringify({ Code: 'Success', AccessKeyId: 'AKIDFROMIMDS', SecretAccessKey: 'imds-secret-value',
      Token: 'imds-role-session', Expiration: new Date(Date.now() + 3600e3).toISOString() }));
  });
  await new Promise((r) => imds.listen(0, '127.0.0.1', r));
  t.after(() => new Promise((r) => { imds.closeAllConnections?.(); imds.close(r); }));
  const stub2 = await startAwsStub({ key: 'AKIDFROMIMDS', secret: 'imds-secret-value' });
  t.after(() => stub2.close());
  const srv2 = await startWatching(stub2, {
    t, env: { AWS_ACCESS_KEY_ID: '', AWS_SECRET_ACCESS_KEY: '', AWS_EC2_METADATA_DISABLED: '',
      AWS_EC2_METADATA_SERVICE_ENDPOINT: `http://127.0.0.1:${imds.address().port}` },
  });
  await waitFor(async () => (await stats(srv2)).aws.enforcementStatus === 'HEALTHY', { what: () => tail(srv2.stderr, 20) });
  const signed = stub2.requests.filter((r) => r.api === 'sesv2' || r.api === 'cloudwatch');
  assert.ok(signed.length >= 2);
  for (const r of signed) {
    assert.equal(r.sig, null, `${r.api}: ${r.sig}`);
    assert.equal(r.headers['x-amz-security-token'], 'imds-role-session');
  }
  assert.doesNotMatch(srv2.stderr, /imds-secret-value|imds-role-session/, 'no secret in the log');
  await srv2.stop();
});
