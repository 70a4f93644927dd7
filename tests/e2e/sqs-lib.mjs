// sqs-lib.mjs - a real SQS-compatible server (npm fauxqs, in this process, on
// 127.0.0.1) and the SQS JSON protocol calls the tests make to it.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { sleep, tempDir } from './lib.mjs';

/** Credentials the tests hand seslog through the environment. */
export const TEST_KEY = 'AKIDSQSTESTENVIRON01';
export const TEST_SECRET = 'sqs-test-secret-not-a-real-one';

/**
 * The environment for a seslog that reads SQS with test credentials and
 * nothing from the runner's AWS set-up (HOME points at an empty folder).
 */
export function awsEnv(extra = {}) {
  return {
    HOME: tempDir('seslog-home-'),
    AWS_ACCESS_KEY_ID: TEST_KEY,
    AWS_SECRET_ACCESS_KEY: TEST_SECRET,
    AWS_SESSION_TOKEN: '',
    AWS_PROFILE: '',
    AWS_DEFAULT_PROFILE: '',
    AWS_SHARED_CREDENTIALS_FILE: '',
    AWS_CONFIG_FILE: '',
    AWS_CONTAINER_CREDENTIALS_FULL_URI: '',
    AWS_CONTAINER_CREDENTIALS_RELATIVE_URI: '',
    AWS_CONTAINER_AUTHORIZATION_TOKEN: '',
    AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: '',
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_EC2_METADATA_SERVICE_ENDPOINT: '',
    AWS_ENDPOINT_URL: '',
    AWS_ENDPOINT_URL_SQS: '',
    AWS_ENDPOINT_URL_DYNAMODB: '',
    AWS_REGION: '',
    AWS_DEFAULT_REGION: '',
    ...extra,
  };
}

/**
 * Starts fauxqs on 127.0.0.1 (a free port). Returns {server, endpoint, port,
 * call(action, body), createQueue(name, attrs), send(url, body), inspect(name), stop()}.
 * port: reuse a port (restart after stop()).
 */
export async function startSqs({ port = 0 } = {}) {
  const { startFauxqs } = await import('fauxqs');
  const server = await startFauxqs({ port, logger: false, host: 'localhost' });
  const endpoint = `http://127.0.0.1:${server.port}`;
  const sqs = {
    server,
    endpoint,
    port: server.port,
    call: (action, body) => sqsCall(endpoint, action, body),
    /** Creates a queue (attrs as SQS attributes); returns {queueUrl, queueArn}. */
    createQueue(name, attributes = {}) {
      return server.createQueue(name, { attributes });
    },
    /** Creates a queue and its dead-letter queue after maxReceiveCount receives. */
    createQueueWithDlq(name, { maxReceiveCount = 2, visibility = 1 } = {}) {
      const dlq = server.createQueue(`${name}-dlq`);
      const q = server.createQueue(name, {
        attributes: {
          VisibilityTimeout: String(visibility),
          RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlq.queueArn, maxReceiveCount: String(maxReceiveCount) }),
        },
      });
      return { ...q, dlqUrl: dlq.queueUrl, dlqName: `${name}-dlq` };
    },
    async send(queueUrl, body) {
      const r = await sqsCall(endpoint, 'SendMessage', {
        QueueUrl: queueUrl,
        MessageBody: typeof body === 'string' ? body : JSON.stringify(body),
      });
      assert.equal(r.status, 200, `SendMessage: ${r.text}`);
      return r.json.MessageId;
    },
    /** Sends many bodies, 10 to a SendMessageBatch. */
    async sendBatch(queueUrl, bodies) {
      for (let i = 0; i < bodies.length; i += 10) {
        const Entries = bodies.slice(i, i + 10).map((b, k) => ({
          Id: `e${k}`, MessageBody: typeof b === 'string' ? b : JSON.stringify(b),
        }));
        const r = await sqsCall(endpoint, 'SendMessageBatch', { QueueUrl: queueUrl, Entries });
        assert.equal(r.status, 200, `SendMessageBatch: ${r.text}`);
        assert.equal((r.json.Failed ?? []).length, 0, `SendMessageBatch failed: ${r.text}`);
      }
    },
    /** Messages by state, without receiving them: {ready, inFlight, delayed} counts. */
    counts(name) {
      const s = server.inspectQueue(name);
      const n = (x) => (Array.isArray(x) ? x.length : 0);
      return { ready: n(s?.messages?.ready), inFlight: n(s?.messages?.inflight ?? s?.messages?.inFlight), delayed: n(s?.messages?.delayed) };
    },
    inspect: (name) => server.inspectQueue(name),
    stop: () => server.stop(),
  };
  return sqs;
}

/** One call of SQS's JSON protocol, unsigned (fauxqs does not check). */
export async function sqsCall(endpoint, action, body) {
  const res = await fetch(endpoint + '/', {
    method: 'POST',
    headers: {
      'Content-Type': 'application/x-amz-json-1.0',
      'X-Amz-Target': `AmazonSQS.${action}`,
    },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  let json;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: res.status, text, json };
}

/** Polls fn until it returns something truthy; fails with what() after timeout. */
export async function waitFor(fn, { timeout = 30000, every = 100, what = () => '' } = {}) {
  const end = Date.now() + timeout;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) assert.fail(`timed out after ${timeout} ms: ${await what()}`);
    await sleep(every);
  }
}

/** The seslog arguments for these queues on this server. */
export function sqsArgs(sqs, { queues = [], raw = [], pollers } = {}) {
  return [
    '--sqs-endpoint', sqs.endpoint,
    ...queues.flatMap((u) => ['--sqs-queue-url', u]),
    ...raw.flatMap((u) => ['--sqs-raw-queue-url', u]),
    ...(pollers ? ['--sqs-pollers', String(pollers)] : []),
  ];
}

export function writeFile(dir, name, text) {
  const p = path.join(dir, name);
  fs.writeFileSync(p, text);
  return p;
}
