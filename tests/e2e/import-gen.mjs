// import-gen.mjs - generated SES archives for the import tests and for
// measuring `seslog import` (speed, peak memory): events made from the AWS
// documentation fixtures, each with its own messageId, written as JSON lines,
// one JSON array, or records concatenated without separators (as Kinesis Data
// Firehose writes them), optionally gzip-compressed.
//
//   node tests/e2e/import-gen.mjs FILE N [jsonl|array|concat] [gz]

import fs from 'node:fs';
import zlib from 'node:zlib';
import { sesFixture } from './lib.mjs';

const KINDS = ['ses-event-send-awsdocs', 'ses-event-delivery-awsdocs', 'ses-event-open-awsdocs',
  'ses-event-click-awsdocs', 'ses-event-bounce-awsdocs', 'ses-event-complaint-awsdocs'];
const templates = KINDS.map((k) => JSON.stringify(sesFixture(k)));

/** A DynamoDB item of the original pipeline for SES event ev, stored with the SNS Timestamp ts. */
export function pipelineItem(ev, ts) {
  const type = ev.notificationType ?? ev.eventType;
  const obj = ev[type.charAt(0).toLowerCase() + type.slice(1)];
  const item = { messageId: ev.mail.messageId, timeStamp: ts, notificationType: type,
    destinationAddress: ev.mail.destination.join(',') };
  if (obj.reportingMTA) item.reportingMTA = obj.reportingMTA;
  if (type === 'Bounce') item.bouncedRecipients = JSON.stringify(obj.bouncedRecipients);
  if (type === 'Complaint') Object.assign(item, { complaintFeedbackType: obj.complaintFeedbackType, feedbackId: obj.feedbackId });
  return { Item: Object.fromEntries(Object.entries(item).map(([k, v]) => [k, { S: v }])) };
}

/** Four documentation events (deliveries, a bounce, a complaint), each with a messageId of
 * its own made with tag: the twins of the pipeline-item tests. */
export function twinEvents(tag) {
  const names = ['ses-notification-delivery-awsdocs', 'ses-event-bounce-awsdocs', 'ses-event-delivery-awsdocs',
    'ses-notification-complaint-with-feedback-awsdocs'];
  return names.map((n) => {
    const ev = sesFixture(n);
    ev.mail.messageId = `${n}-${tag}`;
    return ev;
  });
}

/** The event's own time (its type object's timestamp), ms since the epoch. */
export function eventTime(ev) {
  const type = ev.notificationType ?? ev.eventType;
  return Date.parse(ev[type.charAt(0).toLowerCase() + type.slice(1)].timestamp);
}

/** Event i of a generated archive: a fixture with a messageId (and feedbackId) of its own. */
export function genEvent(i, tag = 'gen') {
  const ev = JSON.parse(templates[i % templates.length]);
  const id = `${tag}-${String(i).padStart(9, '0')}`;
  ev.mail.messageId = id;
  ev.mail.timestamp = new Date(Date.UTC(2026, 10, 1) + i * 1000).toISOString();
  for (const k of ['bounce', 'complaint']) if (ev[k]?.feedbackId) ev[k].feedbackId = `fb-${id}`;
  return ev;
}

/** The text of n events from first on, in the given layout. */
export function genText(first, n, layout = 'jsonl', tag = 'gen') {
  const parts = [];
  for (let i = first; i < first + n; i++) parts.push(JSON.stringify(genEvent(i, tag)));
  if (layout === 'array') return `[${parts.join(',\n')}]\n`;
  if (layout === 'concat') return parts.join('');
  return `${parts.join('\n')}\n`;
}

/** Writes n events to file in chunks (bounded memory); gzip when gz. */
export function genFile(file, n, layout = 'jsonl', gz = false, tag = 'gen') {
  const fd = fs.openSync(file, 'w');
  // gzip members written one after another are one valid gzip file (zcat reads them all)
  const write = (s) => fs.writeSync(fd, gz ? zlib.gzipSync(s) : s);
  const CH = 10000;
  if (layout === 'array') write('[');
  for (let i = 0; i < n; i += CH) {
    const m = Math.min(CH, n - i);
    const parts = [];
    for (let k = i; k < i + m; k++) parts.push(JSON.stringify(genEvent(k, tag)));
    if (layout === 'array') write((i ? ',\n' : '') + parts.join(',\n'));
    else if (layout === 'concat') write(parts.join(''));
    else write(`${parts.join('\n')}\n`);
  }
  if (layout === 'array') write(']\n');
  fs.closeSync(fd);
}

if (process.argv[1] && process.argv[1].endsWith('import-gen.mjs')) {
  const [file, n, layout = 'jsonl', gz] = process.argv.slice(2);
  genFile(file, Number(n), layout, gz === 'gz');
}
