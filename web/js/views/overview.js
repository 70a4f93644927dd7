// overview.js - /#/: the state of sending at a glance. The bounce and
// complaint rate against their thresholds (coloured by monitor state), the
// sending chart over 1 h / 24 h / 7 d / 30 d, counts by type, the domains
// that bounce most, subscription health, the DNS blocklists the sending
// IPs and domains are on, and the latest bounces, complaints and refused
// notifications. With --ses-reputation, AWS's own verdict beside seslog's:
// the account's enforcement status at the top, AWS's rate beside each gauge
// and AWS's series in the chart. Refreshes itself every 30 s.

import {
  h, fill, num, pct, card, fmtAgo, timeEl, typeBadge, stateBadge, mailHref, eventsHref,
  errorBox, emptyState, reasonText, splitArn, toast,
} from '../dom.js';
import { api, qs } from '../api.js';
import { gauge, gaugeMark, sendingChart, barList } from '../chart.js';
import { rangePicker, timeMs, dayOf } from '../range.js';

const RANGES = {
  '1h': { label: '1 h', long: 'last hour', bucket: '1m', bucketMs: 60e3, bucketLabel: 'minute' },
  '24h': { label: '24 h', long: 'last 24 hours', bucket: '1h', bucketMs: 3600e3, bucketLabel: 'hour' },
  '7d': { label: '7 d', long: 'last 7 days', bucket: '1h', bucketMs: 3600e3, bucketLabel: 'hour' },
  '30d': { label: '30 d', long: 'last 30 days', bucket: '1d', bucketMs: 86400e3, bucketLabel: 'day' },
};
const TOP_DOMAINS = 6;
const SILENT_MS = 24 * 3600e3; // a confirmed topic with nothing for a day
const REFRESH_MS = 30e3;
const DNSBL_POLL_MS = 1000; // while a round asked for by "Check now" runs
const DNSBL_POLL_MAX = 120;
const DNSBL_LABELS = { listed: 'listed', not_listed: 'not listed', unknown: 'unknown', pending: 'pending' };
const DNSBL_HINT = 'Not watching any IP or domain: start seslog with --dnsbl-ip / --dnsbl-domain';

function windowText(w) {
  const m = /^(\d+)([smhd])$/.exec(String(w || ''));
  if (!m) return String(w || '');
  return `${m[1]} ${{ s: 's', m: 'min', h: 'h', d: 'd' }[m[2]]}`;
}

function msText(ms) {
  if (ms % 86400e3 === 0) return `${ms / 86400e3} d`;
  if (ms % 3600e3 === 0) return `${ms / 3600e3} h`;
  if (ms >= 3600e3) return `${(ms / 3600e3).toFixed(1)} h`;
  return `${Math.round(ms / 60e3)} min`;
}

/**
 * What the page shows: a range back from now (a key of RANGES) or an
 * absolute one (since/until as the API takes them). params are the
 * since/until of the API calls and the links to the events.
 */
function describe(key, abs) {
  if (abs) {
    const s = timeMs(abs.since);
    const u = timeMs(abs.until);
    const span = u - s;
    const [bucket, bucketMs, bucketLabel] = span <= 6 * 3600e3 ? ['1m', 60e3, 'minute']
      : span <= 4 * 86400e3 ? ['1h', 3600e3, 'hour'] : ['1d', 86400e3, 'day'];
    const last = u % 86400e3 === 0 ? u - 86400e3 : u;
    const days = dayOf(s) === dayOf(last) ? dayOf(s) : `${dayOf(s)} to ${dayOf(last)}`;
    return { key: null, label: days, long: `range ${days} (UTC)`, bucket, bucketMs, bucketLabel, params: { since: abs.since, until: abs.until } };
  }
  return { key, ...RANGES[key], params: { since: key } };
}

function plural(n, one, many) { return `${num(n)} ${n === 1 ? one : many}`; }

function rateCard(id, title, m, stats, countLabel, count, rangeStats, rangeKey, rangeLong) {
  const sends = stats.sends;
  const state = m.state || 'ok';
  // The live monitor says over which window it judged (widened back to
  // enough sends); over old events only it announces nothing.
  const over = m.windowMs ? `over the last ${msText(m.windowMs)}`
    : stats.range === 'window' ? `over the last ${windowText(stats.window)}` : `over the ${rangeLong}`;
  const where = stats.range === 'window' ? `in the last ${windowText(stats.window)}` : `in the ${rangeLong}`;
  return h('section', { class: ['card', 'rate-card', `state-${state}`], id, 'aria-label': title },
    h('header', { class: 'card-head' }, h('h2', {}, title), stateBadge(state, state.toUpperCase())),
    h('div', { class: 'rate-value' }, h('span', { class: 'big' }, pct(m.value)),
      h('span', { class: 'rate-sub' }, over)),
    gauge(m, title),
    m.present === false
      ? h('p', { class: 'rate-old muted small' }, 'Judged on old events only (nothing recent): shown, not announced.')
      : null,
    h('p', { class: 'rate-foot' },
      sends ? `${plural(count, ...countLabel)} of ${plural(sends, 'send', 'sends')}${stats.range === 'window' ? '' : ` ${where}`}` : `No sends ${where}: the rate is 0.`,
      rangeStats && rangeStats !== stats ? h('span', { class: 'muted' }, ` · ${rangeLong}: ${pct(rangeStats[rangeKey])}`) : null));
}

const AWS_STATUS = { HEALTHY: 'ok', PROBATION: 'warn', SHUTDOWN: 'alert' };
const AWS_ERRORS = {
  no_credentials: 'no credentials', access_denied: 'access denied', credentials_rejected: 'credentials rejected',
  throttled: 'throttled', network: 'unreachable', server_error: 'AWS error', client_error: 'refused', bad_response: 'unreadable answer',
};

/** The account's status at the top of the page (GET /api/stats' aws), or nothing when not watched. */
function awsStatusBar(aws, now) {
  if (!aws || !aws.enabled) return null;
  const st = aws.enforcementStatus;
  const parts = [];
  if (aws.sendingEnabled === false) parts.push(h('strong', { class: 'bad-text' }, 'sending disabled'));
  else if (aws.sendingEnabled) parts.push('sending enabled');
  if (aws.productionAccessEnabled === false) parts.push('sandbox');
  const q = aws.sendQuota;
  if (q && q.max24HourSend !== null && q.sentLast24Hours !== null) {
    parts.push(`${num(q.sentLast24Hours)} of ${num(q.max24HourSend)} sent in 24 h (${pct(q.max24HourSend ? q.sentLast24Hours / q.max24HourSend : 0, 1)})`);
  }
  if (q && q.maxSendRate !== null) parts.push(`${num(q.maxSendRate)}/s`);
  if (aws.accountAt) parts.push(h('span', { class: 'muted' }, `asked ${fmtAgo(aws.accountAt, now)}`));
  const errors = (aws.errors || []).map((e) => h('p', { class: 'aws-error bad-text', dataset: { api: e.api, error: e.error } },
    `${e.api === 'cloudwatch' ? 'CloudWatch' : 'SES v2'}: ${AWS_ERRORS[e.error] || e.error} — ${e.message}`,
    e.retryAt ? h('span', { class: 'muted' }, ` · retrying ${fmtAgo(e.retryAt, now)}`) : null));
  const notes = (aws.divergence || []).map((d) => h('p', { class: 'aws-note', dataset: { metric: d.metric } },
    h('strong', {}, `${d.metric === 'bounceRate' ? 'Bounce' : 'Complaint'} rate: seslog ${pct(d.seslog)}, AWS ${pct(d.aws)}. `), d.note));
  const sets = (aws.configurationSets || []).map((c) => h('span', { class: 'aws-set', dataset: { set: c.name } },
    h('span', { class: 'mono' }, c.name), ` bounce ${pct(c.bounceRate)} · complaint ${pct(c.complaintRate)}`));
  const state = st ? (AWS_STATUS[st] || 'alert') : 'pending';
  return h('section', { class: ['card', 'aws-status', `state-${state}`], id: 'aws-status', 'aria-label': 'SES account status' },
    h('div', { class: 'aws-status-row' },
      h('span', { class: 'aws-status-label' }, 'SES account (AWS)'),
      stateBadge(state, st || 'not known yet'),
      h('span', { class: 'aws-status-parts' }, parts.flatMap((x, i) => (i ? [' · ', x] : [x])))),
    sets.length ? h('p', { class: 'aws-sets' }, h('span', { class: 'muted' }, 'Configuration sets (AWS): '),
      sets.flatMap((x, i) => (i ? [' · ', x] : [x]))) : null,
    errors, notes);
}

/** AWS's figure for one gauge: its rate and its monitor state, or why it is missing. */
function awsFigure(aws, key, now) {
  if (!aws || !aws.enabled) return null;
  const m = aws.monitors && aws.monitors[key];
  const v = aws[key];
  return h('p', { class: ['aws-figure', m ? `state-${m.state}` : ''], dataset: { metric: key } },
    h('span', { class: 'aws-label' }, 'AWS: '),
    v === null || v === undefined ? h('span', { class: 'muted' }, 'not known yet')
      : [h('strong', { class: 'aws-value' }, pct(v)), ' ', stateBadge(m ? m.state : 'ok', (m ? m.state : 'ok').toUpperCase()),
        h('span', { class: 'muted' }, ` CloudWatch, last ${Math.round((aws.windowSeconds || 600) / 60)} min${aws.at ? `, ${fmtAgo(aws.at, now)}` : ''}`)]);
}

function volumeCard(st, r) {
  const tile = (label, value, cls, href, sub) => h('a', { class: ['tile', cls], href },
    h('span', { class: 'tile-label' }, label), h('span', { class: 'tile-value' }, num(value)),
    sub ? h('span', { class: 'tile-sub' }, sub) : null);
  const p = r.params;
  return h('section', { class: 'card volume-card', id: 'volume', 'aria-label': 'Volume' },
    h('header', { class: 'card-head' }, h('h2', {}, r.key ? `Last ${r.label}` : r.label)),
    h('div', { class: 'tiles' },
      tile('Sends', st.sends, 'c-send', eventsHref({ type: 'Send', ...p })),
      tile('Deliveries', st.deliveries, 'c-delivery', eventsHref({ type: 'Delivery', ...p }),
        st.sends ? pct(st.deliveries / st.sends, 1) : null),
      tile('Bounces', st.bounces, 'c-bounce', eventsHref({ type: 'Bounce', ...p }), `${num(st.permanentBounces)} permanent`),
      tile('Complaints', st.complaints, 'c-complaint', eventsHref({ type: 'Complaint', ...p }),
        st.sends ? pct(st.complaintRate) : null)));
}

function typeCounts(st, r) {
  const since = r.params.since;
  const until = r.params.until;
  const items = [
    { label: 'Send', value: st.sends, cls: 't-send', href: eventsHref({ type: 'Send', since, until }) },
    { label: 'Delivery', value: st.deliveries, cls: 't-delivery', href: eventsHref({ type: 'Delivery', since, until }) },
    { label: 'Bounce', value: st.bounces, cls: 't-bounce', href: eventsHref({ type: 'Bounce', since, until }),
      note: `${num(st.permanentBounces)} permanent${st.transientBounces !== undefined ? ` · ${num(st.transientBounces)} transient` : ''}` },
    { label: 'Complaint', value: st.complaints, cls: 't-complaint', href: eventsHref({ type: 'Complaint', since, until }) },
  ];
  // Counted by the rollups; shown when the server reports them.
  for (const [key, type] of [['delays', 'DeliveryDelay'], ['rejects', 'Reject'], ['opens', 'Open'], ['clicks', 'Click']]) {
    if (typeof st[key] === 'number') items.push({ label: type, value: st[key], cls: `t-${type.toLowerCase()}`, href: eventsHref({ type, since, until }) });
  }
  return card('Recipients by event type', { id: 'type-counts' },
    barList(items),
    h('p', { class: 'card-note' }, `Recipients counted over the ${r.long}; each bar opens those events.`));
}

/** The domains with the most bounced recipients over the whole range
 * (GET /api/events/counts?groupBy=domain), with their permanent ones. */
function domainsCard(all, perm, r) {
  const permOf = new Map(perm.groups.map((g) => [g.key.domain, g.count]));
  const top = all.groups.slice(0, TOP_DOMAINS);
  const total = all.groups.reduce((a, g) => a + g.count, 0);
  const note = `Bounced recipients over the whole ${r.long}${all.more ? ' (the largest domains)' : `: ${num(total)} at ${plural(all.groups.length, 'domain', 'domains')}`}.`;
  return card('Domains that bounce most', { id: 'bounce-domains' },
    top.length
      ? barList(top.map((g) => ({
        label: g.key.domain, value: g.count, cls: 't-bounce', note: `${num(permOf.get(g.key.domain) || 0)} permanent`,
        href: eventsHref({ type: 'Bounce', domain: g.key.domain, ...r.params }),
      })))
      : emptyState('No bounce in this range.'),
    top.length ? h('p', { class: 'card-note' }, note) : null);
}

function subsCard(subs, now) {
  const items = subs.items || [];
  const health = (t) => {
    if (t.state === 'confirmed' || t.state === 'notifying') {
      if (!t.lastMessageAt) return 'confirmed';
      return now - Date.parse(t.lastMessageAt) > SILENT_MS ? 'silent' : 'confirmed';
    }
    return t.state || 'unknown';
  };
  const counts = {};
  for (const t of items) counts[health(t)] = (counts[health(t)] || 0) + 1;
  const order = ['confirmed', 'pending', 'silent', 'unsubscribed'];
  return card('Subscriptions', { id: 'subs-health', actions: h('a', { href: '#/subscriptions', class: 'card-link' }, 'Details') },
    items.length
      ? [
        h('div', { class: 'sub-summary' }, order.filter((k) => counts[k]).map((k) => h('span', { class: 'sub-count' }, stateBadge(k, `${counts[k]} ${k}`))),
          Object.keys(counts).filter((k) => !order.includes(k)).map((k) => stateBadge(k, `${counts[k]} ${k}`))),
        h('ul', { class: 'topic-list' }, items.slice(0, 6).map((t) => {
          const a = splitArn(t.topicArn);
          const hs = health(t);
          return h('li', {},
            h('span', { class: ['dot', `s-${hs}`], title: hs }),
            h('span', { class: 'topic-name', title: t.topicArn }, a.name),
            h('span', { class: 'topic-last muted', title: t.lastMessageAt || '' },
              t.lastMessageAt ? `last message ${fmtAgo(t.lastMessageAt, now)}` : hs === 'pending' ? 'awaiting confirmation' : 'no message yet'));
        })),
      ]
      : emptyState('No SNS topic has reached this server yet.', 'Subscribe its /sns endpoint to the topic your SES identity or configuration set publishes to.'));
}

function fmtInterval(sec) {
  if (!sec) return '';
  if (sec % 86400 === 0) return `${sec / 86400} d`;
  if (sec % 3600 === 0) return `${sec / 3600} h`;
  if (sec % 60 === 0) return `${sec / 60} min`;
  return `${sec} s`;
}

/**
 * The blocklists (GET /api/dnsbl): per watched IP or domain its zones, each
 * with its state (listed red, not listed green, unknown grey, pending),
 * since when, and the list's reason or why the answer is unknown.
 * bl is the API's answer or {error}; onCheck starts a round.
 */
function dnsblCard(bl, now, onCheck) {
  const attrs = { id: 'dnsbl', class: 'dnsbl-card', 'aria-label': 'Blocklists' };
  if (!bl || bl.error) {
    return card('Blocklists', attrs, errorBox(bl ? bl.error : new Error('no answer')));
  }
  if (!bl.enabled) {
    return card('Blocklists', attrs, h('p', { class: 'muted dnsbl-hint', id: 'dnsbl-hint' }, DNSBL_HINT));
  }
  const checks = bl.checks || [];
  const sum = bl.summary || {};
  const listed = typeof sum.listed === 'number' ? sum.listed : checks.filter((c) => c.state === 'listed').length;
  const groups = [];
  for (const c of checks) {
    const last = groups[groups.length - 1];
    if (last && last.target === c.target) last.checks.push(c);
    else groups.push({ target: c.target, kind: c.kind, checks: [c] });
  }
  const btn = h('button', { type: 'button', class: 'btn small', id: 'dnsbl-check', disabled: !!bl.running }, bl.running ? 'Checking…' : 'Check now');
  btn.addEventListener('click', () => { btn.disabled = true; btn.textContent = 'Checking…'; onCheck(); });
  const count = h('span', { id: 'dnsbl-count' }, stateBadge(listed ? 'listed' : 'not_listed', listed ? `${num(listed)} listed` : 'none listed'));
  const zoneRow = (c) => {
    const state = DNSBL_LABELS[c.state] ? c.state : 'unknown';
    const answers = (c.answers || []).join(', ');
    let detail = null;
    if (state === 'listed') detail = [answers, c.reason].filter(Boolean).join(' · ');
    else if (state === 'unknown') detail = c.error || null;
    return h('li', { class: ['dnsbl-zone', `z-${state}`], dataset: { zone: c.zone, state } },
      stateBadge(state, DNSBL_LABELS[state]),
      h('span', { class: 'dnsbl-zone-name', title: c.query || '' }, c.zone),
      h('span', { class: 'dnsbl-since muted' }, c.since ? ['since ', timeEl(c.since, { seconds: false })] : 'not checked yet'),
      detail ? h('span', { class: ['dnsbl-detail', state === 'listed' ? 'dnsbl-reason' : 'muted'] }, detail) : null);
  };
  const parts = [];
  parts.push(`every ${fmtInterval(bl.intervalSeconds)}`);
  if (bl.running) parts.push('a round is running');
  else if (bl.lastRunAt) parts.push(`last round ${fmtAgo(bl.lastRunAt, now)}`);
  else parts.push('first round not finished yet');
  if (bl.nextRunAt && !bl.running) parts.push(`next ${fmtAgo(bl.nextRunAt, now)}`);
  return card('Blocklists', { ...attrs, actions: h('div', { class: 'card-actions' }, count, btn) },
    groups.length
      ? h('div', { class: 'dnsbl-targets' }, groups.map((g) => {
        const n = g.checks.filter((c) => c.state === 'listed').length;
        return h('div', { class: ['dnsbl-target', n ? 'is-listed' : ''], dataset: { target: g.target } },
          h('div', { class: 'dnsbl-target-head' },
            h('span', { class: 'dnsbl-target-name mono' }, g.target),
            h('span', { class: 'muted small' }, g.kind === 'domain' ? 'domain' : 'IP'),
            n ? h('span', { class: 'bad-text small' }, `on ${n} of ${g.checks.length}`) : null),
          h('ul', { class: 'dnsbl-zones' }, g.checks.map(zoneRow)));
      }))
      : emptyState('No blocklist zone to check.'),
    h('p', { class: 'card-note' }, `DNS blocklists, checked ${parts.join(' · ')}.`));
}

function recentCard(bounces, complaints) {
  const list = [...bounces.items.slice(0, 8), ...complaints.items]
    .sort((a, b) => (a.timeStamp < b.timeStamp ? 1 : a.timeStamp > b.timeStamp ? -1 : 0))
    .slice(0, 8);
  return card('Latest bounces and complaints', {
    id: 'recent-events',
    actions: h('a', { href: eventsHref({ type: 'Bounce' }), class: 'card-link' }, 'All bounces'),
  },
  list.length
    ? h('ul', { class: 'feed' }, list.map((e) => h('li', {},
      h('a', { href: mailHref(e.messageId), class: 'feed-row' },
        h('span', { class: 'feed-time' }, timeEl(e.timeStamp)),
        typeBadge(e.notificationType),
        h('span', { class: 'feed-main' },
          h('span', { class: 'addr' }, (e.recipients || [])[0] || e.destinationAddress || ''),
          h('span', { class: 'feed-detail mono' },
            e.notificationType === 'Bounce'
              ? [e.bounceType, e.bounceSubType].filter(Boolean).join(' · ') + (e.diagnostic ? ` — ${e.diagnostic}` : '')
              : e.complaintFeedbackType || 'no feedback type'))))))
    : emptyState('No bounce or complaint is stored.'));
}

function rejectionsCard(diag, now) {
  const rec = (diag.recentRejections || []).slice().sort((a, b) => (a.at < b.at ? 1 : -1));
  const changes = Array.isArray(diag.monitorChanges) ? diag.monitorChanges.slice(0, 5) : [];
  const slack = diag.outbox && diag.outbox.slack;
  const slackLine = slack
    ? h('p', { class: ['sink-line', slack.dead || slack.pending > 10 ? 'bad' : ''], id: 'slack-state' },
      h('strong', {}, 'Slack'), ` ${num(slack.delivered)} sent · ${num(slack.pending)} waiting`,
      slack.dead ? ` · ${num(slack.dead)} given up` : '',
      slack.lastErrorAt && (!slack.lastSuccessAt || slack.lastErrorAt > slack.lastSuccessAt)
        ? h('span', { class: 'bad-text' }, ` · failing since ${fmtAgo(slack.lastErrorAt, now)}: ${slack.lastError || ''}`)
        : slack.lastSuccessAt ? h('span', { class: 'muted' }, ` · last ${fmtAgo(slack.lastSuccessAt, now)}`) : null)
    : h('p', { class: 'sink-line muted', id: 'slack-state' }, 'Slack alerts are off (no --slack-webhook-url).');
  return card('Alerts and refused notifications', {
    id: 'recent-rejections',
    actions: h('a', { href: '#/subscriptions', class: 'card-link' }, 'All refusals'),
  },
  slackLine,
  changes.length ? h('ul', { class: 'feed' }, changes.map((c) => h('li', {}, h('div', { class: 'feed-row' },
    h('span', { class: 'feed-time' }, timeEl(c.at)), stateBadge(c.to || c.toState),
    h('span', { class: 'feed-main' }, `${c.monitor}: ${c.from || c.fromState} → ${c.to || c.toState} at ${pct(c.value)}`))))) : null,
  rec.length
    ? h('ul', { class: 'feed' }, rec.slice(0, 6).map((r) => h('li', {}, h('div', { class: 'feed-row' },
      h('span', { class: 'feed-time' }, timeEl(r.at)),
      h('span', { class: 'badge reason-badge' }, reasonText(r.reason)),
      h('span', { class: 'feed-main' },
        h('span', { class: 'feed-detail mono' }, r.detail || ''),
        r.remote ? h('span', { class: 'muted small' }, ` from ${r.remote}`) : null)))))
    : emptyState('No notification was refused since the server started.'));
}

export default async function overviewView({ root, route, ready, signal }) {
  document.title = 'Overview · seslog';
  // A range back from now (?range=24h), or an absolute one (?since=&until=);
  // with neither, and nothing recent, the range of the stored data.
  const absOf = (q) => (q.get('since') && q.get('until') ? { since: q.get('since'), until: q.get('until') } : null);
  const keyOf = (q) => (RANGES[q.get('range')] ? q.get('range') : '24h');
  let range = keyOf(route.query);
  let abs = absOf(route.query);
  let asked = !!(route.query.get('range') || abs); // else the data's range may be shown
  let chart = null;
  let timer = null;
  let loading = false;

  const tabs = h('div', { class: 'seg', role: 'group', 'aria-label': 'Chart range' });
  const rateRow = h('div', { class: 'grid g3', id: 'rates' });
  const chartBody = h('div', { class: 'chart-body' });
  const chartNote = h('p', { class: 'card-note' });
  const row3 = h('div', { class: 'grid g3' });
  const row4 = h('div', { class: 'grid g2' });
  const dnsblSlot = h('div', { id: 'dnsbl-slot' });
  let dnsblPoll = null;
  const updated = h('span', { class: 'muted small', id: 'updated' });
  const errSlot = h('div');
  const awsSlot = h('div', { id: 'aws-slot' });
  const noteSlot = h('div', { id: 'range-note-slot' });
  const pickerSlot = h('span');

  // shown: the absolute range on the page (abs, or the data's), or null.
  const showTabs = (shown = abs) => {
    fill(tabs, Object.entries(RANGES).map(([k, r]) => h('a', {
      href: `#/?range=${k}`, class: 'seg-btn', 'aria-current': !shown && k === range ? 'true' : undefined,
    }, r.label)));
    fill(pickerSlot, rangePicker({
      since: shown && shown.since, until: shown && shown.until,
      onApply: (r) => { location.hash = `#/${qs(r)}`; },
    }));
  };
  showTabs();
  rateRow.append(h('p', { class: 'muted' }, 'Loading…'));

  fill(root,
    h('div', { class: 'page-head' },
      h('div', {}, h('h1', {}, 'Overview'), h('p', { class: 'sub' }, 'Bounce and complaint rates as SES counts them: permanent bounces and complaints per recipient sent.')),
      updated),
    errSlot,
    awsSlot,
    noteSlot,
    rateRow,
    card('Sending', { id: 'chart-card', actions: h('div', { class: 'chart-actions' }, tabs, pickerSlot) }, chartBody, chartNote),
    row3, dnsblSlot, row4);

  // The blocklists never fail the whole page: a server without them, or
  // one failing, shows its error in the card.
  const fetchDnsbl = (o) => api('/api/dnsbl', o).catch((e) => {
    if (e.name === 'AbortError') throw e;
    return { error: e };
  });
  const showDnsbl = (bl) => fill(dnsblSlot, dnsblCard(bl, Date.now(), checkNow));
  // "Check now": start a round, then follow it until it is over.
  async function checkNow() {
    clearTimeout(dnsblPoll);
    let before = null;
    try {
      const cur = await api('/api/dnsbl', { signal });
      before = cur && cur.lastRunAt;
      await api('/api/dnsbl/check', { method: 'POST', signal });
    } catch (e) {
      if (e.name === 'AbortError') return;
      toast(e.message, 'bad');
      showDnsbl(await fetchDnsbl({ signal }).catch(() => null));
      return;
    }
    let n = 0;
    const step = async () => {
      let bl;
      try { bl = await fetchDnsbl({ signal }); } catch { return; } // aborted: the view is gone
      showDnsbl(bl);
      if (bl.error || (!bl.running && bl.lastRunAt && bl.lastRunAt !== before) || ++n >= DNSBL_POLL_MAX) return;
      dnsblPoll = setTimeout(step, DNSBL_POLL_MS);
    };
    step();
  }

  const load = async (first) => {
    if (loading) return;
    loading = true;
    const o = { signal };
    try {
      // Nothing asked and nothing recent: the stored data's range (the
      // server says so with range "data"), said on the page.
      const now = await api('/api/stats', o);
      const dataMode = !asked && now.range === 'data';
      const r = describe(range, dataMode ? { since: now.since, until: now.until } : abs);
      if (dataMode && first) showTabs(r.params);
      fill(noteSlot, dataMode
        ? h('p', { class: 'range-note', id: 'range-note' },
          `Nothing arrived recently: showing the stored data, ${r.label} (UTC). `,
          'Pick other days, or a range back from now.')
        : abs ? h('p', { class: 'range-note', id: 'range-note' }, `Showing the ${r.long}; rates and counts are of that range.`) : null);
      const [rs, ts, domAll, domPerm, bounces, complaints, subs, diag, bl] = await Promise.all([
        dataMode ? now : api(`/api/stats${qs(r.key ? { window: r.key } : r.params)}`, o),
        api(`/api/timeseries${qs({ ...r.params, bucket: r.bucket })}`, o),
        api(`/api/events/counts${qs({ groupBy: 'domain', type: 'Bounce', ...r.params, limit: 100 })}`, o),
        api(`/api/events/counts${qs({ groupBy: 'domain', type: 'Bounce', bounceType: 'Permanent', ...r.params, limit: 1000 })}`, o),
        api(`/api/events${qs({ type: 'Bounce', ...r.params, limit: 8 })}`, o),
        api(`/api/events${qs({ type: 'Complaint', limit: 8 })}`, o),
        api('/api/subscriptions', o),
        api('/api/diagnostics', o),
        fetchDnsbl(o),
      ]);
      // AWS's series only when it is watched (else the API answers 400).
      const awsTs = now.aws && now.aws.enabled
        ? await api(`/api/timeseries${qs({ ...r.params, bucket: r.bucket, source: 'aws' })}`, o) : null;
      const t = Date.now();
      fill(errSlot);
      fill(awsSlot, awsStatusBar(now.aws, t));
      // Over an absolute range the cards show that range; the monitors'
      // own verdict (live, from now back) stays in the rate cards.
      const head = r.key ? now : { ...rs, monitors: now.monitors.bounceRate.windowMs ? now.monitors : rs.monitors };
      const bounceCard = rateCard('bounce-rate', 'Bounce rate', head.monitors.bounceRate, r.key ? now : rs, ['permanent bounce', 'permanent bounces'], (r.key ? now : rs).permanentBounces, rs, 'bounceRate', r.long);
      const complaintCard = rateCard('complaint-rate', 'Complaint rate', head.monitors.complaintRate, r.key ? now : rs, ['complaint', 'complaints'], (r.key ? now : rs).complaints, rs, 'complaintRate', r.long);
      // AWS's figures are about now, as the monitors' verdict in the cards.
      if (now.aws && now.aws.enabled) {
        bounceCard.append(awsFigure(now.aws, 'bounceRate', t) || '');
        complaintCard.append(awsFigure(now.aws, 'complaintRate', t) || '');
        gaugeMark(bounceCard.querySelector('.gauge'), head.monitors.bounceRate, now.aws.bounceRate, 'AWS');
        gaugeMark(complaintCard.querySelector('.gauge'), head.monitors.complaintRate, now.aws.complaintRate, 'AWS');
      }
      fill(rateRow, bounceCard, complaintCard, volumeCard(rs, r));
      if (chart && chart.dispose) chart.dispose();
      const points = ts.points || [];
      chart = sendingChart({
        points, bucketLabel: r.bucketLabel, bucketMs: r.bucketMs, aws: awsTs ? awsTs.points : null,
        since: Date.parse(ts.since), until: Date.parse(ts.until),
        thresholds: {
          bounce: { warn: now.monitors.bounceRate.warn, alert: now.monitors.bounceRate.alert },
          complaint: { warn: now.monitors.complaintRate.warn, alert: now.monitors.complaintRate.alert },
        },
      });
      const wasOpen = !!chartBody.querySelector('details[open]'); // a refresh keeps the data table open
      const table = chartTable(points, r);
      table.open = wasOpen;
      fill(chartBody, chart, table);
      fill(chartNote, `${num(points.reduce((a, p) => a + p.sends, 0))} sends in the ${r.long}, per ${r.bucketLabel}. ` +
        'Rates are drawn only where there were sends; dashed lines are the warn and alert thresholds.' +
        (awsTs ? ' The dotted line marked AWS is AWS\'s own rate (CloudWatch Reputation metrics), where AWS gave a figure.' : ''));
      fill(row3, typeCounts(rs, r), domainsCard(domAll, domPerm, r), subsCard(subs, t));
      showDnsbl(bl);
      fill(row4, recentCard(bounces, complaints), rejectionsCard(diag, t));
      fill(updated, `Updated ${new Date(t).toLocaleTimeString()}`);
    } catch (e) {
      if (e.name === 'AbortError') return;
      fill(errSlot, errorBox(e));
      if (first) throw e;
    } finally {
      loading = false;
    }
  };

  await load(true);
  ready();
  timer = setInterval(() => { if (!document.hidden) load(false); }, REFRESH_MS);
  signal.addEventListener('abort', () => { clearInterval(timer); clearTimeout(dnsblPoll); }, { once: true });

  return {
    async update({ route: r, ready: rdy }) {
      const next = keyOf(r.query);
      const nextAbs = absOf(r.query);
      if (next !== range || JSON.stringify(nextAbs) !== JSON.stringify(abs)) {
        range = next;
        abs = nextAbs;
        asked = true;
        showTabs();
        await load(false);
      }
      rdy();
    },
    dispose() {
      clearInterval(timer);
      clearTimeout(dnsblPoll);
      if (chart && chart.dispose) chart.dispose();
    },
  };
}

/** The chart's numbers as a table, for screen readers and for copying. */
function chartTable(points, r) {
  const rows = points.filter((p) => p.sends || p.deliveries || p.bounces || p.complaints);
  return h('details', { class: 'chart-data' },
    h('summary', {}, `Data (${rows.length} ${r.bucketLabel}${rows.length === 1 ? '' : 's'} with traffic)`),
    h('div', { class: 'table-wrap' }, h('table', { class: 'table compact' },
      h('thead', {}, h('tr', {}, ['Start', 'Sends', 'Deliveries', 'Bounces', 'Complaints', 'Bounce rate', 'Complaint rate'].map((x) => h('th', { scope: 'col' }, x)))),
      h('tbody', {}, rows.map((p) => h('tr', {},
        h('td', {}, timeEl(p.t, { seconds: false })), h('td', { class: 'num' }, num(p.sends)), h('td', { class: 'num' }, num(p.deliveries)),
        h('td', { class: 'num' }, num(p.bounces)), h('td', { class: 'num' }, num(p.complaints)),
        h('td', { class: 'num' }, p.sends ? pct(p.bounceRate) : '–'), h('td', { class: 'num' }, p.sends ? pct(p.complaintRate) : '–')))))));
}
