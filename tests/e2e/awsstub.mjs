// awsstub.mjs - a stand-in on 127.0.0.1 for the two AWS APIs the reputation
// watch asks (no local emulator speaks them):
//
//   CloudWatch GetMetricData, POST /
//     - AWS JSON 1.0 (X-Amz-Target: GraniteServiceVersion20100801.GetMetricData,
//       Content-Type: application/x-amz-json-1.0), as seslog sends it;
//     - the query protocol (Action=GetMetricData, form-encoded; XML answer),
//       as Debian's aws CLI sends it.
//   SES v2 GetAccount, GET /v2/email/account (REST-JSON).
//
// Both answer from the same state: series of data points per (metric,
// scope) and an account. Every request is recorded with its API, protocol,
// parsed queries and the result of checking its SigV4 signature (service
// "monitoring" or "ses", the region given). fail(api, ...answers) queues
// error answers that the next requests of that API get first, shaped as AWS
// shapes them (throttle(), accessDenied()), or any {status, raw} body.

import http from 'node:http';
import { sigv4Problem, AWS_ENV } from './dynamodb-lib.mjs';

const CW_TARGET = 'GraniteServiceVersion20100801.GetMetricData';

/** Error answers as each API gives them. */
export const errors = {
  cloudwatch: {
    throttle: () => ({ status: 400, json: { __type: 'Throttling', message: 'Rate exceeded' },
      xml: ['Throttling', 'Rate exceeded'] }),
    accessDenied: () => ({ status: 403, json: { __type: 'AccessDeniedException',
      message: 'User: arn:aws:iam::123456789012:user/seslog is not authorized to perform: cloudwatch:GetMetricData' },
    xml: ['AccessDenied', 'User is not authorized to perform: cloudwatch:GetMetricData'] }),
  },
  sesv2: {
    throttle: () => ({ status: 429, json: { message: 'Too Many Requests' },
      headers: { 'x-amzn-ErrorType': 'TooManyRequestsException:http://internal.amazon.com/coral/com.amazonaws.sesv2/' } }),
    accessDenied: () => ({ status: 403, json: { Message: 'User: arn:aws:iam::123456789012:user/seslog is not authorized to perform: ses:GetAccount' },
      headers: { 'x-amzn-ErrorType': 'AccessDeniedException:http://internal.amazon.com/coral/com.amazon.coral.service/' } }),
  },
};

function scopeOf(dims) {
  const d = (dims ?? []).find((x) => x.Name === 'ses:configuration-set');
  return d ? `configuration-set:${d.Value}` : ((dims ?? []).length ? 'other' : 'account');
}

/** The query protocol's flattened members: prefix.member.N... into arrays. */
function unflatten(params) {
  const root = {};
  for (const [k, v] of params) {
    const parts = k.split('.');
    let o = root;
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i];
      if (p === 'member') continue;
      const last = i === parts.length - 1;
      if (last) { o[p] = v; break; }
      o[p] ??= {};
      o = o[p];
    }
  }
  const arrays = (o) => {
    if (o && typeof o === 'object') {
      const keys = Object.keys(o);
      if (keys.length && keys.every((k) => /^\d+$/.test(k))) {
        return keys.sort((a, b) => a - b).map((k) => arrays(o[k]));
      }
      for (const k of keys) o[k] = arrays(o[k]);
    }
    return o;
  };
  return arrays(root);
}

function xmlEscape(s) {
  return String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/**
 * Starts the stand-in. opts.region (default AWS_ENV's) is what signatures
 * must name; opts.key and opts.secret (AWS_ENV's) what they are made with. Returns {port, url, requests, series, account, setRate(),
 * setPoints(), fail(), close()}.
 */
export async function startAwsStub({
  region = AWS_ENV.AWS_REGION, name = 'aws', key = AWS_ENV.AWS_ACCESS_KEY_ID, secret = AWS_ENV.AWS_SECRET_ACCESS_KEY,
} = {}) {
  const state = {
    name,
    region,
    requests: [],
    series: new Map(), // "metric|scope" -> [{t: ms, v}]
    account: {
      DedicatedIpAutoWarmupEnabled: false,
      EnforcementStatus: 'HEALTHY',
      ProductionAccessEnabled: true,
      SendQuota: { Max24HourSend: 50000, MaxSendRate: 14, SentLast24Hours: 1234 },
      SendingEnabled: true,
      SuppressionAttributes: { SuppressedReasons: ['BOUNCE', 'COMPLAINT'] },
    },
    failures: { cloudwatch: [], sesv2: [] },
  };

  /** The points of a series inside [start, end), in the order asked. */
  const points = (metric, scope, startMs, endMs, descending) => {
    const pts = (state.series.get(`${metric}|${scope}`) ?? [])
      .filter((p) => p.t >= startMs && p.t < endMs)
      .sort((a, b) => (descending ? b.t - a.t : a.t - b.t));
    return pts;
  };

  const answer = (res, status, body, headers = {}) => {
    res.writeHead(status, { 'x-amzn-RequestId': '7d1c2b1e-0000-4000-8000-000000000000', ...headers });
    res.end(body);
  };

  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const text = body.toString('utf8');
      const u = new URL(req.url, 'http://x');
      const rec = { at: Date.now(), method: req.method, path: u.pathname, headers: req.headers, text };
      state.requests.push(rec);
      const ctype = req.headers['content-type'] ?? '';
      if (req.method === 'GET' && u.pathname.endsWith('/v2/email/account')) {
        rec.api = 'sesv2';
        rec.protocol = 'rest-json';
        rec.sig = sigv4Problem(req, body, { key, secret, region: state.region, service: 'ses', need: ['host', 'x-amz-date'] });
        if (rec.sig) { answer(res, 403, JSON.stringify({ message: `stand-in: ${rec.sig}` }), { 'x-amzn-ErrorType': 'InvalidSignatureException:' }); return; }
        const f = state.failures.sesv2.shift();
        if (f) { rec.failed = f.status; answer(res, f.status, f.raw ?? JSON.stringify(f.json), { 'content-type': 'application/json', ...(f.headers ?? {}) }); return; }
        answer(res, 200, JSON.stringify(state.account), { 'content-type': 'application/json' });
        return;
      }
      if (req.method === 'POST' && req.headers['x-amz-target'] === CW_TARGET) {
        rec.api = 'cloudwatch';
        rec.protocol = 'json';
        rec.sig = sigv4Problem(req, body, { key, secret, region: state.region, service: 'monitoring', need: ['host', 'x-amz-date', 'x-amz-target', 'content-type'] });
        if (!ctype.startsWith('application/x-amz-json-1.0')) rec.sig ??= `content-type ${ctype}`;
        if (rec.sig) { answer(res, 403, JSON.stringify({ __type: 'InvalidSignatureException', message: `stand-in: ${rec.sig}` }), { 'content-type': 'application/x-amz-json-1.0' }); return; }
        const f = state.failures.cloudwatch.shift();
        if (f) { rec.failed = f.status; answer(res, f.status, f.raw ?? JSON.stringify(f.json), { 'content-type': 'application/x-amz-json-1.0' }); return; }
        let q;
        try { q = JSON.parse(text); } catch { answer(res, 400, JSON.stringify({ __type: 'SerializationException' })); return; }
        rec.queries = q.MetricDataQueries;
        rec.start = q.StartTime * 1000;
        rec.end = q.EndTime * 1000;
        const desc = q.ScanBy !== 'TimestampAscending';
        const results = (q.MetricDataQueries ?? []).map((mq) => {
          const m = mq.MetricStat.Metric;
          const pts = m.Namespace === 'AWS/SES'
            ? points(m.MetricName, scopeOf(m.Dimensions), rec.start, rec.end, desc) : [];
          return {
            Id: mq.Id, Label: m.MetricName, StatusCode: 'Complete',
            Timestamps: pts.map((p) => p.t / 1000), Values: pts.map((p) => p.v),
          };
        });
        answer(res, 200, JSON.stringify({ MetricDataResults: results, Messages: [] }), { 'content-type': 'application/x-amz-json-1.0' });
        return;
      }
      if (req.method === 'POST' && ctype.startsWith('application/x-www-form-urlencoded')) {
        const params = new URLSearchParams(text);
        if (params.get('Action') !== 'GetMetricData') { answer(res, 400, '<ErrorResponse/>'); return; }
        rec.api = 'cloudwatch';
        rec.protocol = 'query';
        rec.sig = sigv4Problem(req, body, { key, secret, region: state.region, service: 'monitoring', need: ['host', 'x-amz-date'] });
        const xmlError = (status, code, message) => answer(res, status,
          `<ErrorResponse xmlns="http://monitoring.amazonaws.com/doc/2010-08-01/"><Error><Type>Sender</Type><Code>${xmlEscape(code)}</Code><Message>${xmlEscape(message)}</Message></Error><RequestId>7d1c2b1e</RequestId></ErrorResponse>`,
          { 'content-type': 'text/xml' });
        if (rec.sig) { xmlError(403, 'SignatureDoesNotMatch', `stand-in: ${rec.sig}`); return; }
        const f = state.failures.cloudwatch.shift();
        if (f) { rec.failed = f.status; xmlError(f.status, ...f.xml); return; }
        const q = unflatten(params);
        rec.queries = q.MetricDataQueries;
        rec.start = Date.parse(q.StartTime);
        rec.end = Date.parse(q.EndTime);
        const desc = q.ScanBy !== 'TimestampAscending';
        const members = (q.MetricDataQueries ?? []).map((mq) => {
          const m = mq.MetricStat.Metric;
          const pts = m.Namespace === 'AWS/SES'
            ? points(m.MetricName, scopeOf(m.Dimensions), rec.start, rec.end, desc) : [];
          return `<member><Id>${xmlEscape(mq.Id)}</Id><Label>${xmlEscape(m.MetricName)}</Label>`
            + `<Timestamps>${pts.map((p) => `<member>${new Date(p.t).toISOString()}</member>`).join('')}</Timestamps>`
            + `<Values>${pts.map((p) => `<member>${p.v}</member>`).join('')}</Values>`
            + '<StatusCode>Complete</StatusCode></member>';
        }).join('');
        answer(res, 200, '<GetMetricDataResponse xmlns="http://monitoring.amazonaws.com/doc/2010-08-01/">'
          + `<GetMetricDataResult><MetricDataResults>${members}</MetricDataResults><Messages/></GetMetricDataResult>`
          + '<ResponseMetadata><RequestId>7d1c2b1e-0000-4000-8000-000000000000</RequestId></ResponseMetadata>'
          + '</GetMetricDataResponse>', { 'content-type': 'text/xml' });
        return;
      }
      rec.api = 'unknown';
      answer(res, 404, JSON.stringify({ message: 'stand-in: no such operation' }));
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    state,
    get requests() { return state.requests; },
    get account() { return state.account; },
    /** Replaces a series by points of value v, one a minute over the last `minutes`. */
    setRate(metric, v, { scope = 'account', minutes = 30, now = Date.now() } = {}) {
      const base = Math.floor(now / 60000) * 60000;
      const pts = [];
      for (let i = minutes - 1; i >= 0; i--) pts.push({ t: base - i * 60000, v });
      state.series.set(`${metric}|${scope}`, pts);
    },
    setPoints(metric, pts, { scope = 'account' } = {}) {
      state.series.set(`${metric}|${scope}`, pts);
    },
    fail(api, ...answers) { state.failures[api].push(...answers); },
    close() {
      server.closeAllConnections?.();
      return new Promise((resolve) => server.close(resolve));
    },
  };
}
