// sesrep.test.mjs - AWS's own verdict beside seslog's (seslog serve
// --ses-reputation): CloudWatch's Reputation.BounceRate/ComplaintRate and the
// SES v2 account status, asked of a stand-in on loopback (awsstub.mjs) that
// is itself checked with Debian's aws CLI first.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { startServer, get, sqlite, sleep, tail } from './lib.mjs';
import { AWS_CLI, AWS_ENV, waitFor, freePort } from './dynamodb-lib.mjs';
import { startAwsStub, errors } from './awsstub.mjs';
import { startSlackStub, allText, fetchMetrics } from './slackstub.mjs';

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

/** The environment seslog gets: the test credentials and nothing inherited. */
function awsEnv(extra = {}) {
  return {
    ...AWS_ENV, AWS_SESSION_TOKEN: '', AWS_DEFAULT_REGION: '', AWS_ENDPOINT_URL: '',
    AWS_ENDPOINT_URL_CLOUDWATCH: '', AWS_ENDPOINT_URL_SESV2: '',
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
      AWS_ENDPOINT_URL_SESV2: sesStub.url }),
  });
  await waitFor(() => cwStub.requests.length >= 1 && sesStub.requests.length >= 1,
    { what: () => tail(srv.stderr, 20) });
  assert.deepEqual([...new Set(cwStub.requests.map((r) => r.api))], ['cloudwatch']);
  assert.deepEqual([...new Set(sesStub.requests.map((r) => r.api))], ['sesv2']);
  assert.equal(general.requests.length, 0, 'AWS_ENDPOINT_URL is not used when the service has its own');
  assert.equal(cwStub.requests[0].path, '/', 'one slash, not two');
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
  const bad = await startServer({
    args: ['--ses-reputation'], env: awsEnv({ AWS_ENDPOINT_URL_SESV2: 'ftp://127.0.0.1:1' }),
  }).catch((e) => e);
  assert.ok(bad instanceof Error);
  assert.match(bad.message, /AWS_ENDPOINT_URL_SESV2 must be an http:\/\/ or https:\/\/ URL/);
});
