// query-data.mjs - a few hundred SES events with known answers, for the
// query API and `seslog query` tests: bare SES events (event publishing
// shape) written as JSON lines for `seslog import`, and a model of each
// event as the API must report it, in import (= id) order.
//
// Layout (T0 is minute-aligned, 5 h before the tests start): mail m is
// sent at T0 + floor(m/2) * 3 min, so mails 2k and 2k+1 share the same
// millisecond (ties on timeStamp); deliveries and bounces come 2 minutes
// later (a minute without Send events: the rate falls back on deliveries
// and bounces), complaints 5 minutes, opens 10 minutes later. The last
// event is 50 minutes before the tests start: a 10-minute window is empty.

import fs from 'node:fs';

export const DOMAINS = ['gmail.test', 'Yahoo.test', 'corp.test'];
export const SOURCES = ['news@shop.test', '"Shop \\"Deals\\", Inc" <deals@shop.test>'];
export const MAILS = 160;

function iso(ms) {
  return new Date(ms).toISOString();
}

/**
 * Builds the events. Returns {t0, events, lines}: events in file order,
 * each {key, messageId, timeStamp, ms, notificationType, recipients (as
 * written), rcptLower, domains, source, bounceType, bounceSubType,
 * complaintFeedbackType, ses (the document)}; lines is the JSONL text.
 */
export function buildEvents(now = Date.now()) {
  const t0 = Math.floor((now - 5 * 3600e3) / 60000) * 60000;
  const events = [];
  for (let m = 0; m < MAILS; m++) {
    const sent = t0 + Math.floor(m / 2) * 180e3;
    const domain = DOMAINS[m % 3];
    const rcpts = [`User${m % 37}@${domain}`];
    if (m % 5 === 0) rcpts.push(`Second${m % 7}@${domain}`); // same domain twice
    const source = SOURCES[m % 2];
    const messageId = `q-${String(m).padStart(4, '0')}`;
    const mail = {
      timestamp: iso(sent),
      source,
      sourceArn: 'arn:aws:ses:us-east-1:123456789012:identity/shop.test',
      sendingAccountId: '123456789012',
      messageId,
      destination: rcpts,
      headersTruncated: false,
      commonHeaders: { from: [source], to: rcpts, subject: `Offer <${m}> & more` },
    };
    const add = (type, ms, ses, affected, extra = {}) => {
      events.push({
        key: `${messageId}/${type}`,
        messageId,
        timeStamp: iso(ms),
        ms,
        notificationType: type,
        recipients: affected,
        rcptLower: affected.map((a) => a.toLowerCase()),
        domains: affected.map((a) => a.toLowerCase().split('@')[1]),
        source,
        bounceType: null,
        bounceSubType: null,
        complaintFeedbackType: null,
        complaintSubType: null,
        ses,
        ...extra,
      });
    };
    add('Send', sent, { eventType: 'Send', mail, send: {} }, rcpts);
    const bounced = m % 9 === 0 ? [rcpts[0]] : [];
    const delivered = rcpts.filter((r) => !bounced.includes(r));
    const later = sent + 120e3;
    if (delivered.length) {
      add('Delivery', later, {
        eventType: 'Delivery', mail,
        delivery: { timestamp: iso(later), processingTimeMillis: 500, recipients: delivered,
          smtpResponse: '250 2.6.0 Message received', reportingMTA: 'a8-70.smtp-out.amazonses.com' },
      }, delivered);
    }
    if (bounced.length) {
      const bounceType = m % 27 === 0 ? 'Transient' : 'Permanent';
      const bounceSubType = bounceType === 'Permanent' && m % 18 === 0 ? 'OnAccountSuppressionList' : 'General';
      add('Bounce', later + (m % 2), {
        eventType: 'Bounce', mail,
        bounce: {
          bounceType, bounceSubType,
          bouncedRecipients: bounced.map((r) => ({ emailAddress: r, action: 'failed', status: '5.1.1',
            diagnosticCode: `smtp; 550 5.1.1 <${r}>: "user unknown", sorry` })),
          timestamp: iso(later + (m % 2)),
          feedbackId: `fb-bounce-${m}`,
          reportingMTA: 'dsn; a8-70.smtp-out.amazonses.com',
        },
      }, bounced, { bounceType, bounceSubType });
    }
    if (m % 20 === 0) {
      const at = sent + 300e3;
      const fb = m % 40 === 0 ? 'abuse' : 'not-spam';
      add('Complaint', at, {
        eventType: 'Complaint', mail,
        complaint: { complainedRecipients: [{ emailAddress: rcpts[0] }], timestamp: iso(at),
          feedbackId: `fb-complaint-${m}`, complaintFeedbackType: fb, userAgent: 'ExampleCorp' },
      }, [rcpts[0]], { complaintFeedbackType: fb });
    }
    if (m % 4 === 0) {
      const at = sent + 600e3;
      add('Open', at, {
        eventType: 'Open', mail,
        open: { timestamp: iso(at), userAgent: 'Mozilla/5.0', ipAddress: '192.0.2.1' },
      }, rcpts);
    }
  }
  const lines = events.map((e) => JSON.stringify(e.ses)).join('\n') + '\n';
  return { t0, events, lines };
}

/** Writes the JSONL to file and returns the build. */
export function writeEvents(file, now) {
  const b = buildEvents(now);
  fs.writeFileSync(file, b.lines);
  return b;
}

/** The API order: (timeStamp, id); id is the import order. */
export function sortEvents(events, asc) {
  const idx = new Map(events.map((e, i) => [e, i]));
  const s = [...events].sort((a, b) => (a.ms - b.ms) || (idx.get(a) - idx.get(b)));
  return asc ? s : s.reverse();
}

/** The events that match API-style filters (values as the API takes them). */
export function matchEvents(events, q, now = Date.now()) {
  const rel = (v) => {
    const m = /^(\d+)([smhd])$/.exec(v);
    if (!m) return new Date(v.length === 10 ? `${v}T00:00:00Z` : v).getTime();
    return now - Number(m[1]) * { s: 1e3, m: 60e3, h: 3600e3, d: 86400e3 }[m[2]];
  };
  return events.filter((e) => {
    if (q.type && ![].concat(q.type).includes(e.notificationType)) return false; // several: any
    if (q.bounceType && e.bounceType !== q.bounceType) return false;
    if (q.feedbackType && e.complaintFeedbackType !== q.feedbackType) return false;
    if (q.address && !e.rcptLower.includes(q.address.toLowerCase())) return false;
    if (q.domain && !e.domains.includes(q.domain.toLowerCase())) return false;
    if (q.source && e.source.toLowerCase() !== q.source.toLowerCase()) return false;
    if (q.messageId && e.messageId !== q.messageId) return false;
    if (q.since && e.ms < rel(q.since)) return false;
    if (q.until && e.ms >= rel(q.until)) return false;
    return true;
  });
}

/** Recipient counts of events as the rollups keep them. */
export function countsOf(events) {
  const k = { sendsRaw: 0, deliveries: 0, bounces: 0, permanentBounces: 0, complaints: 0 };
  for (const e of events) {
    const n = e.recipients.length;
    if (e.notificationType === 'Send') k.sendsRaw += n;
    if (e.notificationType === 'Delivery') k.deliveries += n;
    if (e.notificationType === 'Bounce') {
      k.bounces += n;
      if (e.bounceType === 'Permanent' && e.bounceSubType !== 'OnAccountSuppressionList') k.permanentBounces += n;
    }
    if (e.notificationType === 'Complaint' && e.complaintSubType !== 'OnAccountSuppressionList') k.complaints += n;
  }
  k.sends = k.sendsRaw > 0 ? k.sendsRaw : k.deliveries + k.bounces;
  k.bounceRate = k.sends ? k.permanentBounces / k.sends : 0;
  k.complaintRate = k.sends ? k.complaints / k.sends : 0;
  return k;
}
