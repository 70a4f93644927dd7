// mail.js - /#/events/<messageId>: one mail. What was sent (from the SES
// mail object), each recipient's outcome, the timeline of every event,
// and each event's raw JSON, pretty-printed and copyable.

import {
  h, fill, card, timeEl, fmtDelta, typeBadge, recipientHref, errorBox, emptyState,
  jsonPre, copyButton, eventsHref, stateBadge,
} from '../dom.js';
import { api, qs, enc } from '../api.js';
import { eventDetail } from '../eventlist.js';

// Which event decides a recipient's outcome: the worst wins.
const RANK = { Complaint: 6, Bounce: 5, Reject: 5, 'Rendering Failure': 5, DeliveryDelay: 3, Delivery: 4, Send: 1 };

function outcomeOf(evs) {
  let best = null;
  for (const e of evs) {
    const r = RANK[e.notificationType] ?? 0;
    if (!best || r > (RANK[best.notificationType] ?? 0) || (r === (RANK[best.notificationType] ?? 0) && e.timeStamp > best.timeStamp)) best = e;
  }
  return best;
}

function outcomeLabel(e) {
  if (!e) return ['unknown', 'No event'];
  switch (e.notificationType) {
    case 'Delivery': return ['ok', 'Delivered'];
    case 'Bounce': return e.bounceType === 'Permanent' ? ['alert', 'Bounced (permanent)'] : ['warn', `Bounced (${(e.bounceType || 'transient').toLowerCase()})`];
    case 'Complaint': return ['alert', 'Complained'];
    case 'DeliveryDelay': return ['warn', 'Delayed'];
    case 'Reject': return ['alert', 'Rejected by SES'];
    case 'Rendering Failure': return ['alert', 'Rendering failed'];
    case 'Send': return ['pending', 'Sent, no outcome yet'];
    default: return ['unknown', e.notificationType];
  }
}

/** The mail object of the first event that carries one. */
function mailOf(items) {
  for (const e of items) if (e.raw && e.raw.mail) return e.raw.mail;
  return null;
}

/** What a raw event adds that the row does not show: SMTP answer, delay, link. */
function rawExtra(e) {
  const r = e.raw || {};
  const out = [];
  const dl = r.delivery;
  if (dl && dl.smtpResponse) out.push(['SMTP response', dl.smtpResponse]);
  if (dl && dl.processingTimeMillis !== undefined) out.push(['Processing time', `${dl.processingTimeMillis} ms`]);
  if (dl && dl.reportingMTA) out.push(['Reporting MTA', dl.reportingMTA]);
  const dd = r.deliveryDelay;
  if (dd && dd.delayType) out.push(['Delay type', dd.delayType]);
  if (dd && dd.expirationTime) out.push(['Expires', dd.expirationTime]);
  const b = r.bounce;
  if (b && Array.isArray(b.bouncedRecipients)) {
    for (const br of b.bouncedRecipients) {
      out.push([br.emailAddress || 'recipient', [br.status, br.action, br.diagnosticCode].filter(Boolean).join(' · ')]);
    }
  }
  const c = r.complaint;
  if (c && c.userAgent) out.push(['Reported by', c.userAgent]);
  if (c && c.arrivalDate) out.push(['Arrived', c.arrivalDate]);
  const rj = r.reject;
  if (rj && rj.reason) out.push(['Reason', rj.reason]);
  const o = r.open || r.click;
  if (o && o.ipAddress) out.push(['From', `${o.ipAddress}${o.userAgent ? ` · ${o.userAgent}` : ''}`]);
  if (r.click && r.click.link) out.push(['Link', r.click.link]);
  const rf = r.failure;
  if (rf && rf.errorMessage) out.push(['Error', rf.errorMessage]);
  return out;
}

/** Open and Click events are about the mail, not one recipient. */
function mailLevel(e) {
  return e.notificationType === 'Open' || e.notificationType === 'Click';
}

/** The outcome line of a timeline entry, or null when the row has none to add. */
function timelineDetail(e) {
  if (e.notificationType === 'Bounce' && e.raw && e.raw.bounce && Array.isArray(e.raw.bounce.bouncedRecipients)) {
    // each bounced recipient's code follows in the facts: only the kind here
    return h('div', { class: 'detail' }, h('span', { class: ['tag', e.bounceType === 'Permanent' ? 'tag-bad' : 'tag-soft'] },
      [e.bounceType, e.bounceSubType].filter(Boolean).join(' · ') || 'Bounce'));
  }
  if (e.notificationType === 'Bounce' || e.notificationType === 'Complaint' || e.diagnostic) return h('div', { class: 'detail' }, eventDetail(e));
  return null;
}

export default async function mailView({ root, route, ready, signal }) {
  const id = route.arg;
  document.title = `Mail ${id} · seslog`;
  const title = h('h1', { class: 'wrap' }, 'Mail');
  const head = h('div', { class: 'page-head' },
    h('div', { class: 'min0' },
      h('p', { class: 'crumb' }, h('a', { href: '#/events' }, 'Events'), ' / mail'),
      title,
      h('p', { class: 'msgid' }, h('span', { class: 'muted' }, 'messageId '), h('span', { class: 'mono wrap', id: 'message-id' }, id), ' ',
        copyButton(id, 'Copy'))));
  fill(root, head, h('p', { class: 'muted' }, 'Loading…'));

  let items = [];
  let next = null;
  try {
    const body = await api(`/api/events/${enc(id)}`, { signal, allow: [404] });
    if (!body || body.error) {
      fill(root, head, emptyState('No event of this messageId is stored.',
        'It may belong to another account or be older than this database. Check the id, or search the events.'));
      ready();
      return null;
    }
    items = body.items || [];
    next = body.nextCursor;
    while (next && items.length < 5000) { // more than a page: rare, but keep every event
      const more = await api(`/api/events/${enc(id)}${qs({ cursor: next })}`, { signal });
      items.push(...more.items);
      next = more.nextCursor;
    }
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    fill(root, head, errorBox(e));
    ready();
    return null;
  }

  items.sort((a, b) => (a.timeStamp < b.timeStamp ? -1 : a.timeStamp > b.timeStamp ? 1 : 0));
  const mail = mailOf(items) || {};
  const hdr = mail.commonHeaders || {};
  const sentAt = mail.timestamp || (items[0] && items[0].timeStamp);
  const sentMs = Date.parse(sentAt);
  fill(title, hdr.subject || '(no subject)');
  if (!hdr.subject) title.classList.add('muted');

  // -- the mail
  const tags = mail.tags && typeof mail.tags === 'object' ? mail.tags : {};
  const confSet = tags['ses:configuration-set'];
  const facts = [
    ['Subject', hdr.subject],
    ['From', (hdr.from || []).join(', ') || mail.source || (items[0] && items[0].source)],
    ['Source', mail.source],
    ['To', (hdr.to || []).join(', ')],
    ['Sent', sentAt ? timeEl(sentAt) : null],
    ['Configuration set', Array.isArray(confSet) ? confSet.join(', ') : confSet],
    ['Sending account', mail.sendingAccountId],
    ['Identity', mail.sourceArn],
    ['Caller', mail.callerIdentity],
    ['Sending IP', mail.sourceIp],
  ].filter(([, v]) => v !== undefined && v !== null && v !== '');

  // -- each recipient's outcome
  const dest = Array.isArray(mail.destination) && mail.destination.length
    ? mail.destination
    : [...new Set(items.flatMap((e) => e.recipients || []))];
  const byAddr = new Map(dest.map((a) => [a.toLowerCase(), []]));
  for (const e of items) {
    const affected = e.recipients && e.recipients.length ? e.recipients : dest;
    for (const a of affected) {
      const k = a.toLowerCase();
      if (!byAddr.has(k)) byAddr.set(k, []);
      byAddr.get(k).push(e);
    }
  }
  const displayOf = new Map(dest.map((a) => [a.toLowerCase(), a]));
  const rcptRows = [...byAddr.entries()].map(([k, evs]) => {
    const o = outcomeOf(evs);
    const [state, label] = outcomeLabel(o);
    // SES's Open and Click events name the mail, not the recipient: they
    // say something of a recipient only when the mail had one.
    const seen = new Set(evs.map((e) => e.notificationType));
    const extras = dest.length === 1
      ? ['Open', 'Click'].filter((t) => seen.has(t)).map((t) => h('span', { class: 'tag' }, t === 'Open' ? 'opened' : 'clicked'))
      : [];
    const showDetail = o && o.notificationType !== 'Send' && o.notificationType !== 'Delivery';
    return h('tr', { dataset: { address: displayOf.get(k) || k } },
      h('td', { class: 'c-addr' }, h('a', { href: recipientHref(displayOf.get(k) || k), class: 'addr' }, displayOf.get(k) || k)),
      h('td', { class: 'c-outcome' }, h('div', { class: 'outcome-line' }, stateBadge(state, label), extras),
        showDetail ? h('div', { class: 'detail' }, eventDetail(o)) : null),
      h('td', { class: 'c-time' }, o ? timeEl(o.timeStamp) : '–'));
  });
  const opened = items.filter((e) => e.notificationType === 'Open').length;
  const clicked = items.filter((e) => e.notificationType === 'Click').length;
  if (opened || clicked) {
    facts.push(['Engagement', [opened ? `${opened} open${opened === 1 ? '' : 's'}` : '', clicked ? `${clicked} click${clicked === 1 ? '' : 's'}` : ''].filter(Boolean).join(' · ')]);
  }
  const mailCard = card('Message', { id: 'mail-facts' },
    h('dl', { class: 'facts' }, facts.map(([k, v]) => [h('dt', {}, k), h('dd', { class: k === 'Subject' ? '' : 'wrap' }, v)])));
  const rcptCard = card(`Recipients (${rcptRows.length})`, { id: 'mail-recipients', class: 'flush' },
    h('div', { class: 'table-wrap' }, h('table', { class: 'table' },
      h('thead', {}, h('tr', {}, ['Recipient', 'Outcome', 'When'].map((x) => h('th', { scope: 'col' }, x)))),
      h('tbody', {}, rcptRows))));

  // -- the timeline
  const timeline = h('ol', { class: 'timeline', id: 'timeline' }, items.map((e, i) => {
    const raw = e.raw === undefined ? null : e.raw;
    const extra = rawExtra(e);
    const delta = Number.isNaN(sentMs) ? '' : fmtDelta(Date.parse(e.timeStamp) - sentMs);
    return h('li', { class: ['tl-item', `tl-${String(e.notificationType).toLowerCase().replace(/[^a-z]+/g, '-')}`] },
      h('div', { class: 'tl-dot', 'aria-hidden': 'true' }),
      h('div', { class: 'tl-body' },
        h('div', { class: 'tl-head' },
          typeBadge(e.notificationType),
          h('span', { class: 'tl-time' }, timeEl(e.timeStamp, { ms: true })),
          delta ? h('span', { class: 'muted small' }, `${delta} after sending`) : null),
        mailLevel(e) && dest.length > 1
          ? h('div', { class: 'tl-rcpt muted' }, 'One of the recipients (SES does not say which)')
          : h('div', { class: 'tl-rcpt' }, (e.recipients || []).map((a, k) => [k ? ', ' : '', h('a', { href: recipientHref(a), class: 'addr' }, a)])),
        timelineDetail(e),
        extra.length ? h('dl', { class: 'facts small' }, extra.map(([k, v]) => [h('dt', {}, k), h('dd', { class: 'mono wrap' }, v)])) : null,
        h('details', { class: 'raw', open: i === items.length - 1 && items.length <= 3 ? true : undefined },
          h('summary', {}, 'Raw JSON',
            e.snsMessageId ? h('span', { class: 'muted small' }, ` · SNS ${e.snsMessageId}`) : null),
          h('div', { class: 'raw-tools' }, copyButton(() => JSON.stringify(raw, null, 2), 'Copy JSON')),
          jsonPre(raw))));
  }));

  fill(root, head,
    h('div', { class: 'grid g2 mail-top' }, mailCard, rcptCard),
    card(`Timeline (${items.length} event${items.length === 1 ? '' : 's'})`, {
      id: 'mail-timeline',
      actions: h('span', { class: 'card-actions' },
        copyButton(() => JSON.stringify(items.map((e) => e.raw), null, 2), 'Copy all JSON'),
        h('a', { href: eventsHref({ messageId: id, order: 'asc' }), class: 'card-link' }, 'As a table')),
    }, timeline));
  ready();
  return null;
}
