// subscriptions.js - /#/subscriptions: each SNS topic seen (state, last
// message, counts), each SQS queue polled (GET /api/sources), and the
// notifications refused recently, with reasons (GET /api/diagnostics).

import {
  h, fill, card, num, timeEl, fmtAgo, stateBadge, errorBox, emptyState, reasonText, splitArn,
} from '../dom.js';
import { api } from '../api.js';

const SILENT_MS = 24 * 3600e3;

export default async function subscriptionsView({ root, ready, signal }) {
  document.title = 'Subscriptions · seslog';
  fill(root, h('div', { class: 'page-head' }, h('div', {},
    h('h1', {}, 'Subscriptions'),
    h('p', { class: 'sub' }, 'The SNS topics that post to this server, and every notification it refused.'))));
  let subs;
  let diag;
  let sources;
  try {
    [subs, diag, sources] = await Promise.all([api('/api/subscriptions', { signal }), api('/api/diagnostics', { signal }),
      api('/api/sources', { signal })]);
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    root.appendChild(errorBox(e));
    ready();
    return null;
  }
  const now = Date.now();
  const items = subs.items || [];

  const topicRows = items.map((t) => {
    const a = splitArn(t.topicArn);
    const silent = (t.state === 'confirmed' || t.state === 'notifying') && t.lastMessageAt && now - Date.parse(t.lastMessageAt) > SILENT_MS;
    return h('tr', {},
      h('td', {}, h('div', { class: 'topic-name', title: t.topicArn }, a.name), h('div', { class: 'muted small mono wrap' }, t.topicArn)),
      h('td', {}, stateBadge(t.state), silent ? [' ', stateBadge('silent', 'silent')] : null),
      h('td', { class: 'c-time' }, t.lastMessageAt ? [h('div', {}, fmtAgo(t.lastMessageAt, now)), h('div', { class: 'muted small' }, timeEl(t.lastMessageAt))] : h('span', { class: 'muted' }, 'never')),
      h('td', { class: 'c-time' }, t.confirmedAt ? timeEl(t.confirmedAt) : h('span', { class: 'muted' }, '—')),
      h('td', { class: 'num' }, num(t.accepted)),
      h('td', { class: ['num', t.rejected ? 'bad-text' : ''] }, num(t.rejected)),
      h('td', { class: 'mono small wrap sub-arn' }, t.subscriptionArn || h('span', { class: 'muted' }, '—')));
  });
  const topics = card('Topics', { id: 'topics', class: 'flush' },
    items.length
      ? h('div', { class: 'table-wrap' }, h('table', { class: 'table' },
        h('thead', {}, h('tr', {}, ['Topic', 'State', 'Last message', 'Confirmed', 'Accepted', 'Refused', 'Subscription ARN']
          .map((x, i) => h('th', { scope: 'col', class: i === 4 || i === 5 ? 'num' : undefined }, x)))),
        h('tbody', {}, topicRows)))
      : emptyState('No topic has posted to this server yet.',
        'In SNS, subscribe this server\'s /sns endpoint (HTTPS) to the topic your SES identity or configuration set publishes to; seslog records the topic with its first message.'));

  const counts = Object.entries(diag.rejectedByReason || {}).filter(([, n]) => n > 0).sort((a, b) => b[1] - a[1]);
  const rec = (diag.recentRejections || []).slice().sort((a, b) => (a.at < b.at ? 1 : a.at > b.at ? -1 : 0));
  const rejCard = card('Refused notifications', { id: 'rejections', class: 'flush' },
    h('div', { class: 'pad' },
      counts.length
        ? h('div', { class: 'chips' }, counts.map(([k, n]) => h('span', { class: 'chip', title: k }, h('strong', {}, num(n)), ` ${reasonText(k)}`)))
        : h('p', { class: 'muted' }, 'No notification was refused since the server started.'),
      typeof diag.writeQueue === 'number' ? h('p', { class: 'muted small' }, `Write queue: ${num(diag.writeQueue)} event${diag.writeQueue === 1 ? '' : 's'} waiting for the disk.`) : null),
    rec.length
      ? h('div', { class: 'table-wrap' }, h('table', { class: 'table', id: 'rejection-table' },
        h('thead', {}, h('tr', {}, ['Time', 'Reason', 'Detail', 'From', 'Topic', 'SNS MessageId'].map((x) => h('th', { scope: 'col' }, x)))),
        h('tbody', {}, rec.map((r) => h('tr', {},
          h('td', { class: 'c-time' }, timeEl(r.at)),
          h('td', {}, h('span', { class: 'badge reason-badge', title: r.reason }, reasonText(r.reason))),
          h('td', { class: 'c-detail' }, h('span', { class: 'mono wrap' }, r.detail || '')),
          h('td', { class: 'mono small' }, r.remote || ''),
          h('td', { class: 'small', title: r.topicArn || '' }, r.topicArn ? splitArn(r.topicArn).name : h('span', { class: 'muted' }, '—')),
          h('td', { class: 'mono small wrap' }, r.snsMessageId || ''))))))
      : null);

  const queues = (sources && sources.queues) || [];
  root.append(topics, ...(queues.length ? [queuesCard(queues, sources.credentials, diag.sqs, now)] : []), rejCard,
    outboxCard(diag.outbox, now));
  ready();
  return null;
}

const QUEUE_STATE = { polling: 'ok', retrying: 'alert', 'waiting for credentials': 'warn', starting: 'pending', stopped: 'pending' };

/** The SQS queues polled (SNS -> SQS -> seslog): state, counts, last error, refusals. */
function queuesCard(queues, creds, sqsDiag, now) {
  const refusals = (sqsDiag && sqsDiag.recentRefusals) || [];
  const name = (url) => (queues.find((q) => q.url === url) || { name: url }).name;
  return card('Queues', { id: 'queues', class: 'flush' },
    h('div', { class: 'table-wrap' }, h('table', { class: 'table', id: 'queue-table' },
      h('thead', {}, h('tr', {}, ['Queue', 'State', 'Last receive', 'Received', 'Stored', 'Duplicates', 'Refused', 'Last error']
        .map((x, i) => h('th', { scope: 'col', class: i >= 3 && i <= 6 ? 'num' : undefined }, x)))),
      h('tbody', {}, queues.map((q) => h('tr', { 'data-queue': q.name },
        h('td', {}, h('div', { class: 'topic-name', title: q.url }, q.name, q.raw ? [' ', h('span', { class: 'badge', title: 'bare SES JSON and EventBridge events accepted: the queue policy is the trust boundary' }, 'raw')] : null),
          h('div', { class: 'muted small mono wrap' }, q.url)),
        h('td', {}, stateBadge(QUEUE_STATE[q.state] || q.state, q.state)),
        h('td', { class: 'c-time' }, q.lastReceiveAt ? [h('div', {}, fmtAgo(q.lastReceiveAt, now)), h('div', { class: 'muted small' }, timeEl(q.lastReceiveAt))] : h('span', { class: 'muted' }, 'never')),
        h('td', { class: 'num' }, num(q.received)),
        h('td', { class: 'num' }, num(q.stored)),
        h('td', { class: 'num' }, num(q.duplicates)),
        h('td', { class: ['num', q.refused ? 'bad-text' : ''] }, num(q.refused)),
        h('td', { class: 'c-detail' }, q.lastError
          ? [h('div', {}, timeEl(q.lastErrorAt)), h('div', { class: 'mono small wrap' }, q.lastError)]
          : h('span', { class: 'muted' }, 'none'))))))),
    creds ? h('p', { class: 'pad muted small' }, `AWS credentials: ${creds.source}${creds.accessKeyId ? ` (${creds.accessKeyId})` : ''}${creds.error ? ` — ${creds.error}` : ''}.`) : null,
    refusals.length
      ? h('div', { class: 'table-wrap' }, h('table', { class: 'table', id: 'queue-refusals' },
        h('thead', {}, h('tr', {}, ['Time', 'Queue', 'Reason', 'Detail', 'Receives', 'SQS MessageId'].map((x) => h('th', { scope: 'col' }, x)))),
        h('tbody', {}, refusals.map((r) => h('tr', {},
          h('td', { class: 'c-time' }, timeEl(r.at)),
          h('td', { class: 'small' }, name(r.queue)),
          h('td', {}, h('span', { class: 'badge reason-badge', title: r.code }, reasonText(r.code))),
          h('td', { class: 'c-detail' }, h('span', { class: 'mono wrap' }, r.detail || '')),
          h('td', { class: 'num' }, num(r.receiveCount)),
          h('td', { class: 'mono small wrap' }, r.messageId || ''))))))
      : null);
}

export const SINK_NAMES = { slack: 'Slack alerts', dynamodb: 'DynamoDB replication' };

/** Where alerts and replicas stand: one row per sink of the outbox. */
function outboxCard(outbox, now) {
  const sinks = outbox && typeof outbox === 'object' ? Object.entries(outbox) : [];
  return card('Alerts and replication', { id: 'outbox', class: 'flush' },
    sinks.length
      ? h('div', { class: 'table-wrap' }, h('table', { class: 'table' },
        h('thead', {}, h('tr', {}, ['Sink', 'Pending', 'Given up', 'Delivered', 'Last success', 'Last error']
          .map((x, i) => h('th', { scope: 'col', class: i >= 1 && i <= 3 ? 'num' : undefined }, x)))),
        h('tbody', {}, sinks.map(([name, s]) => h('tr', {},
          h('td', {}, h('strong', {}, SINK_NAMES[name] || name)),
          h('td', { class: ['num', s.pending ? 'warn-text' : ''] }, num(s.pending)),
          h('td', { class: ['num', s.dead ? 'bad-text' : ''] }, num(s.dead)),
          h('td', { class: 'num' }, num(s.delivered)),
          h('td', { class: 'c-time' }, s.lastSuccessAt ? [fmtAgo(s.lastSuccessAt, now), h('div', { class: 'muted small' }, timeEl(s.lastSuccessAt))] : h('span', { class: 'muted' }, 'never')),
          h('td', { class: 'c-detail' }, s.lastErrorAt
            ? [h('div', {}, timeEl(s.lastErrorAt)), h('div', { class: 'mono small wrap' }, s.lastError || '')]
            : h('span', { class: 'muted' }, 'none')))))))
      : h('p', { class: 'pad muted' }, 'No Slack webhook or DynamoDB table is configured (--slack-webhook-url, --dynamodb-table).'));
}
