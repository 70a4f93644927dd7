#!/usr/bin/env bash
# bench/soak.sh - the soak run (`make soak`; not part of `make test`).
#
# Runs one `seslog serve` on a fresh database for SOAK_SECONDS (default 600)
# under SOAK_RATE (default 5,000) distinct events a second, open loop, with
# Slack alerts and DynamoDB replication going to local stubs; samples the
# server's RSS, open file descriptors, WAL size and outbox backlog every
# SOAK_SAMPLE seconds; prints the curve and PASS/FAIL for:
#
#   rss      RSS flat: the max of the last window is within 10 % of the max
#            of the second window (windows are a minute long, or a fifth of
#            a shorter run)
#   fds      no descriptor leak: the last window's max is at most the second
#            window's max + 8
#   wal      the WAL stays under 64 MiB at every sample (checkpoints work)
#   load     every answer was 200 "stored", the achieved rate is at least
#            95 % of the offered one, and the server never died
#   rows     after a clean stop (SIGTERM, exit 0), the rows stored equal the
#            events acknowledged, and PRAGMA quick_check is ok
#   outbox   the Slack and DynamoDB backlogs do not grow: the last window's
#            max is at most 110 % of the second window's max + 1,000 rows
#
# The curve's columns: seconds since the start, the server's VmRSS, its open
# descriptors, the WAL and database sizes, the pending outbox rows of each
# sink and the write queue (from /metrics), events sent and stored so far,
# and p99_ms: the 99th percentile of the last second's answers counted from
# each event's due time (open loop), so it grows when the server falls behind.
#
# Exit status 0 when every check passed, 1 otherwise (2: could not start).
#
# Why not build/bench/ingest: it posts N pre-signed events (RSA-2048, about
# 1.5 ms each to make) and never repeats one, so 10 minutes at 5,000/s would
# need 3,000,000 of them (11 GB, ~40 min of signing). This script's load
# generator (Node.js, written into the temp folder) makes every event fresh:
# SOAK_SIGNED percent (default 10) are SNS envelopes signed with a 1024-bit
# key whose certificate it puts in the server's --sns-cert-dir (full
# signature path, no fetch); the others use SNS raw message delivery (bare
# SES JSON with --sns-basic-auth), which costs the generator almost nothing
# and the server the same parsing and storage work. The mix of types is
# that of `make bench`: 45 % Delivery, 40 % Bounce, 15 % Complaint.
#
# Knobs (environment):
#   SOAK_SECONDS=600   duration of the load
#   SOAK_RATE=5000     events a second offered
#   SOAK_CONNS=256     keep-alive connections of the generator (one request in flight
#                      each: at 5,000/s and a 20 ms fsync, 100 are busy at once)
#   SOAK_SAMPLE        seconds between samples [10; 2 when SOAK_SECONDS < 300]
#   SOAK_SIGNED=10     percent of events signed (the rest raw delivery)
#   SOAK_KEEP=1        keep the temp folder (database, logs, samples)
#   SESLOG_BIN         the server [build/seslog]
set -u

SESLOG_BIN=${SESLOG_BIN:-build/seslog}
SECONDS_TOTAL=${SOAK_SECONDS:-600}
RATE=${SOAK_RATE:-5000}
CONNS=${SOAK_CONNS:-256}
SIGNED=${SOAK_SIGNED:-10}
if [ "$SECONDS_TOTAL" -lt 300 ]; then SAMPLE=${SOAK_SAMPLE:-2}; else SAMPLE=${SOAK_SAMPLE:-10}; fi
WINDOW=60
if [ "$SECONDS_TOTAL" -lt 300 ]; then WINDOW=$((SECONDS_TOTAL / 5)); fi
[ "$WINDOW" -lt "$SAMPLE" ] && WINDOW=$SAMPLE

for tool in node sqlite3 openssl curl; do
  command -v "$tool" >/dev/null || { echo "soak: $tool is missing" >&2; exit 2; }
done
if [ ! -x "$SESLOG_BIN" ]; then
  echo "soak: $SESLOG_BIN is missing; run make" >&2
  exit 2
fi
SESLOG_BIN=$(cd "$(dirname "$SESLOG_BIN")" && pwd)/$(basename "$SESLOG_BIN")

tmp=$(mktemp -d "${TMPDIR:-/tmp}/seslog-soak.XXXXXX")
server_pid= stubs_pid= gen_pid=

cleanup() {
  for p in $gen_pid $server_pid $stubs_pid; do
    if kill -0 "$p" 2>/dev/null; then kill -TERM "$p" 2>/dev/null; wait "$p" 2>/dev/null; fi
  done
  if [ "${SOAK_KEEP:-0}" = 1 ]; then echo "soak: kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- the stubs: Slack incoming webhook and DynamoDB BatchWriteItem --------
cat >"$tmp/stubs.mjs" <<'EOF'
import http from 'node:http';
import fs from 'node:fs';
const counts = { slackMessages: 0, ddbRequests: 0, ddbItems: 0 };
const slack = http.createServer((req, res) => {
  req.resume();
  req.on('end', () => { counts.slackMessages++; res.writeHead(200, { 'content-type': 'text/plain' }); res.end('ok'); });
});
const ddb = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    counts.ddbRequests++;
    try {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      for (const v of Object.values(body.RequestItems ?? {})) counts.ddbItems += v.length;
    } catch { /* counted as a request only */ }
    res.writeHead(200, { 'content-type': 'application/x-amz-json-1.0' });
    res.end('{"UnprocessedItems":{}}');
  });
});
const listen = (s) => new Promise((r) => s.listen(0, '127.0.0.1', () => r(s.address().port)));
const ports = { slack: await listen(slack), ddb: await listen(ddb) };
fs.writeFileSync(process.argv[2], JSON.stringify(ports));
setInterval(() => fs.writeFileSync(process.argv[3], JSON.stringify(counts)), 1000);
process.on('SIGTERM', () => { fs.writeFileSync(process.argv[3], JSON.stringify(counts)); process.exit(0); });
EOF

# ---- the load generator ----------------------------------------------------
cat >"$tmp/gen.mjs" <<'EOF'
// node gen.mjs PORT RATE SECONDS CONNS SIGNED_PCT KEY CERT_URL STATS
import net from 'node:net';
import crypto from 'node:crypto';
import fs from 'node:fs';
const [port, rate, seconds, nconn, signedPct] = process.argv.slice(2, 7).map(Number);
const [keyFile, certUrl, statsFile] = process.argv.slice(7, 10);
const key = crypto.createPrivateKey(fs.readFileSync(keyFile));
const TOPIC = 'arn:aws:sns:us-east-1:123456789012:seslog-soak';
const AUTH = `Basic ${Buffer.from('soak:soak').toString('base64')}`;
const run = crypto.randomBytes(4).toString('hex');
const domains = ['example.com', 'example.org', 'mail.example.net', 'corp.example', 'shop.example'];

function ses(i, now) {
  const id = `0100${(now).toString(16)}-${run}-${i.toString(16).padStart(8, '0')}-000000`;
  const to = `user${i % 50000}@${domains[i % domains.length]}`;
  const mail = {
    timestamp: now.toISOString(), source: 'sender@shop.example', sourceArn: 'arn:aws:ses:us-east-1:123456789012:identity/shop.example',
    sendingAccountId: '123456789012', messageId: id, destination: [to],
    headersTruncated: false,
    commonHeaders: { from: ['Shop <sender@shop.example>'], to: [to], messageId: id, subject: `Your order ${i}` },
  };
  const k = i % 20;
  if (k < 9) {
    return { notificationType: 'Delivery', mail, delivery: {
      timestamp: now.toISOString(), processingTimeMillis: 420, recipients: [to],
      smtpResponse: '250 2.0.0 OK  1700000000 gsmtp', remoteMtaIp: '198.51.100.7', reportingMTA: 'a8-70.smtp-out.amazonses.com' } };
  }
  if (k < 17) {
    const permanent = k < 15;
    return { notificationType: 'Bounce', mail, bounce: {
      bounceType: permanent ? 'Permanent' : 'Transient', bounceSubType: permanent ? 'General' : 'MailboxFull',
      bouncedRecipients: [{ emailAddress: to, action: 'failed', status: permanent ? '5.1.1' : '4.2.2',
        diagnosticCode: permanent ? `smtp; 550 5.1.1 <${to}>: user unknown` : `smtp; 452 4.2.2 <${to}>: mailbox full` }],
      timestamp: now.toISOString(), feedbackId: `${id}-feedback`, reportingMTA: 'dsn; a8-70.smtp-out.amazonses.com' } };
  }
  return { notificationType: 'Complaint', mail, complaint: {
    complainedRecipients: [{ emailAddress: to }], timestamp: now.toISOString(), feedbackId: `${id}-complaint`,
    userAgent: 'Mozilla/5.0', complaintFeedbackType: 'abuse', arrivalDate: now.toISOString() } };
}

function requestBytes(i) {
  const now = new Date();
  const msg = JSON.stringify(ses(i, now));
  const mid = crypto.randomUUID();
  let body, extra;
  if ((i * 37) % 100 < signedPct) {
    const env = { Type: 'Notification', MessageId: mid, TopicArn: TOPIC, Message: msg, Timestamp: now.toISOString(),
      SignatureVersion: '2', Signature: '', SigningCertURL: certUrl,
      UnsubscribeURL: `https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=${TOPIC}:x` };
    const canon = `Message\n${env.Message}\nMessageId\n${env.MessageId}\nTimestamp\n${env.Timestamp}\nTopicArn\n${env.TopicArn}\nType\n${env.Type}\n`;
    env.Signature = crypto.sign('sha256', Buffer.from(canon, 'utf8'), key).toString('base64');
    body = Buffer.from(JSON.stringify(env), 'utf8');
    extra = '';
  } else {
    body = Buffer.from(msg, 'utf8');
    extra = 'x-amz-sns-rawdelivery: true\r\n';
  }
  const head = `POST /sns HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain; charset=UTF-8\r\nAuthorization: ${AUTH}\r\n` +
    `x-amz-sns-message-type: Notification\r\nx-amz-sns-message-id: ${mid}\r\nx-amz-sns-topic-arn: ${TOPIC}\r\n${extra}` +
    `Content-Length: ${body.length}\r\n\r\n`;
  return Buffer.concat([Buffer.from(head, 'latin1'), body]);
}

const total = Math.floor(rate * seconds);
const st = { sent: 0, ok: 0, errors: {}, firstError: '', lat: [], p50: 0, p99: 0, max: 0, conns: 0, reconnects: 0 };
let next = 0;
let t0 = 0;
const idle = [];
const conns = [];

function addError(kind, text) {
  st.errors[kind] = (st.errors[kind] ?? 0) + 1;
  if (!st.firstError) st.firstError = `${kind} ${text}`.slice(0, 300);
}

function open(c) {
  c.buf = Buffer.alloc(0);
  c.busy = false;
  c.sock = net.connect({ host: '127.0.0.1', port }, () => { c.sock.setNoDelay(true); st.conns++; idle.push(c); });
  c.sock.on('data', (d) => { c.buf = c.buf.length ? Buffer.concat([c.buf, d]) : d; parse(c); });
  c.sock.on('error', () => {});
  c.sock.on('close', () => {
    st.conns--;
    const i = idle.indexOf(c);
    if (i >= 0) idle.splice(i, 1);
    if (c.busy) { addError('connection', 'closed with a request in flight'); st.done++; c.busy = false; }
    if (!stopping) { st.reconnects++; setTimeout(() => open(c), 100); }
  });
}

function parse(c) {
  for (;;) {
    const end = c.buf.indexOf('\r\n\r\n');
    if (end < 0) return;
    const head = c.buf.subarray(0, end).toString('latin1');
    const m = /content-length:\s*(\d+)/i.exec(head);
    const len = m ? Number(m[1]) : 0;
    if (c.buf.length < end + 4 + len) return;
    const status = Number(head.slice(9, 12));
    const body = c.buf.subarray(end + 4, end + 4 + len).toString('utf8');
    c.buf = c.buf.subarray(end + 4 + len);
    if (!c.busy) { addError('unexpected', body); continue; }
    c.busy = false;
    st.done++;
    const lat = performance.now() - c.due;
    if (status === 200 && body.includes('"status":"stored"')) {
      st.ok++;
      st.lat.push(lat);
    } else {
      addError(String(status), body);
    }
    if (/connection: close/i.test(head)) { c.sock.destroy(); continue; }
    idle.push(c);
  }
}

let stopping = false;
st.done = 0;
function issue() {
  const now = performance.now();
  const due = Math.min(total, Math.floor(((now - t0) * rate) / 1000));
  while (next < due && idle.length) {
    const c = idle.pop();
    c.busy = true;
    c.due = t0 + (next * 1000) / rate;
    c.sock.write(requestBytes(next));
    next++;
    st.sent++;
  }
}

function report(final = false) {
  const l = st.lat.sort((a, b) => a - b);
  const q = (p) => (l.length ? l[Math.min(l.length - 1, Math.floor(p * l.length))] : 0);
  const out = { t: ((performance.now() - t0) / 1000).toFixed(1), sent: st.sent, ok: st.ok, done: st.done,
    behind: Math.max(0, Math.min(total, Math.floor(((performance.now() - t0) * rate) / 1000)) - next),
    p50: q(0.5).toFixed(2), p99: q(0.99).toFixed(2), max: (l.at(-1) ?? 0).toFixed(2),
    errors: st.errors, firstError: st.firstError, conns: st.conns, reconnects: st.reconnects, final };
  st.lat = [];
  fs.writeFileSync(statsFile, JSON.stringify(out));
  return out;
}

for (let i = 0; i < nconn; i++) { const c = {}; conns.push(c); open(c); }
await new Promise((r) => { const w = () => (idle.length === nconn ? r() : setTimeout(w, 10)); w(); });
t0 = performance.now();
const ticker = setInterval(issue, 1);
const reporter = setInterval(() => report(), 1000);
// the run lasts SECONDS whatever happens: what the server could not take is not sent
await new Promise((r) => { const w = () => (next >= total || performance.now() - t0 >= seconds * 1000 ? r() : setTimeout(w, 50)); w(); });
clearInterval(ticker);
const end = Date.now() + 30000;
await new Promise((r) => { const w = () => (st.done >= st.sent || Date.now() > end ? r() : setTimeout(w, 20)); w(); });
clearInterval(reporter);
stopping = true;
const secs = (performance.now() - t0) / 1000;
const out = report(true);
for (const c of conns) c.sock.destroy();
console.log(JSON.stringify({ ...out, offered: rate, seconds: secs.toFixed(1), achieved: Math.round(st.ok / Math.max(secs, seconds)), total, notSent: total - next }));
EOF

# ---- signing key and certificate (the server never fetches it) -------------
mkdir -p "$tmp/certs"
hex=$(openssl rand -hex 16)
cert_name="SimpleNotificationService-$hex.pem"
if ! openssl req -x509 -newkey rsa:1024 -nodes -keyout "$tmp/signing.key" -out "$tmp/certs/$cert_name" \
    -days 2 -subj "/CN=sns.amazonaws.com/O=seslog soak" >/dev/null 2>&1; then
  echo "soak: openssl could not make a signing certificate" >&2
  exit 2
fi
cert_url="https://sns.us-east-1.amazonaws.com/$cert_name"

# ---- stubs, server --------------------------------------------------------
node "$tmp/stubs.mjs" "$tmp/stub-ports.json" "$tmp/stub-counts.json" 2>"$tmp/stubs.log" &
stubs_pid=$!
for _ in $(seq 1 100); do [ -s "$tmp/stub-ports.json" ] && break; sleep 0.1; done
[ -s "$tmp/stub-ports.json" ] || { echo "soak: the stubs did not start" >&2; cat "$tmp/stubs.log" >&2; exit 2; }
slack_port=$(sed -n 's/.*"slack":\([0-9]*\).*/\1/p' "$tmp/stub-ports.json")
ddb_port=$(sed -n 's/.*"ddb":\([0-9]*\).*/\1/p' "$tmp/stub-ports.json")

db="$tmp/seslog.db"
AWS_ACCESS_KEY_ID=AKIDSOAK AWS_SECRET_ACCESS_KEY=soak-secret AWS_REGION=us-east-1 \
  "$SESLOG_BIN" serve --listen 127.0.0.1:0 --db "$db" --sns-cert-dir "$tmp/certs" \
  --sns-basic-auth soak:soak --sns-topic-arn arn:aws:sns:us-east-1:123456789012:seslog-soak \
  --slack-webhook-url "http://127.0.0.1:$slack_port/services/T000/B000/soak" \
  --dynamodb-table SesEventMessages --dynamodb-endpoint "http://127.0.0.1:$ddb_port" \
  --max-connections 4096 --log-level info 2>"$tmp/server.log" &
server_pid=$!
port=
for _ in $(seq 1 100); do
  port=$(sed -n 's/.*msg=listening addr=127\.0\.0\.1:\([0-9]*\).*/\1/p' "$tmp/server.log" | head -1)
  [ -n "$port" ] && break
  kill -0 "$server_pid" 2>/dev/null || break
  sleep 0.1
done
if [ -z "$port" ]; then
  echo "soak: the server did not start; its log:" >&2
  tail -20 "$tmp/server.log" >&2
  exit 2
fi

echo "soak: ${SECONDS_TOTAL} s at ${RATE} events/s over ${CONNS} connections (${SIGNED} % signed), server pid $server_pid on port $port"
echo "soak: Slack stub :$slack_port, DynamoDB stub :$ddb_port, folder $tmp"

node "$tmp/gen.mjs" "$port" "$RATE" "$SECONDS_TOTAL" "$CONNS" "$SIGNED" "$tmp/signing.key" "$cert_url" \
  "$tmp/gen-stats.json" >"$tmp/gen-result.json" 2>"$tmp/gen.log" &
gen_pid=$!

# ---- sampling ----------------------------------------------------------------
metric() { # metric NAME{LABELS} from the last /metrics text
  grep -F "$1 " "$tmp/metrics.txt" 2>/dev/null | tail -1 | awk '{print $2}' | sed 's/\..*//'
}
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
json_field() { sed -n "s/.*\"$1\":\"\{0,1\}\([^,\"}]*\).*/\1/p" "$2" 2>/dev/null; }

samples="$tmp/samples.tsv"
printf 't\trss_kib\tfds\twal_kib\tdb_mib\tslack_pending\tddb_pending\tqueue\tsent\tok\tp99_ms\n' >"$samples"
printf '\n%6s %9s %5s %9s %8s %11s %11s %6s %9s %9s %8s %s\n' \
  t_s rss_MiB fds wal_MiB db_MiB slack_pend ddb_pend queue sent stored p99_ms errors
died=0
start=$(date +%s.%N)
n=0
while kill -0 "$gen_pid" 2>/dev/null; do
  n=$((n + 1))
  delay=$(awk -v s="$start" -v n="$n" -v d="$SAMPLE" -v now="$(date +%s.%N)" 'BEGIN { x = s + n * d - now; printf "%.3f", (x > 0 ? x : 0) }')
  sleep "$delay"
  kill -0 "$gen_pid" 2>/dev/null || break
  if ! kill -0 "$server_pid" 2>/dev/null; then died=1; break; fi
  t=$(awk -v s="$start" -v now="$(date +%s.%N)" 'BEGIN { printf "%.0f", now - s }')
  rss=$(awk '/^VmRSS:/{print $2}' "/proc/$server_pid/status" 2>/dev/null)
  fds=$(ls "/proc/$server_pid/fd" 2>/dev/null | wc -l)
  wal=$(( $(stat -c %s "$db-wal" 2>/dev/null || echo 0) / 1024 ))
  dbm=$(( $(stat -c %s "$db" 2>/dev/null || echo 0) / 1048576 ))
  curl -s -m 5 "http://127.0.0.1:$port/metrics" >"$tmp/metrics.txt" || : >"$tmp/metrics.txt"
  sp=$(metric 'seslog_outbox_pending{sink="slack"}')
  dp=$(metric 'seslog_outbox_pending{sink="dynamodb"}')
  qd=$(metric 'seslog_write_queue_depth')
  sent=$(json_field sent "$tmp/gen-stats.json")
  ok=$(json_field ok "$tmp/gen-stats.json")
  p99=$(json_field p99 "$tmp/gen-stats.json")
  errs=$(sed -n 's/.*"errors":\({[^}]*}\).*/\1/p' "$tmp/gen-stats.json" 2>/dev/null)
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$t" "${rss:-0}" "$fds" "$wal" "$dbm" "${sp:-0}" "${dp:-0}" \
    "${qd:-0}" "${sent:-0}" "${ok:-0}" "${p99:-0}" >>"$samples"
  printf '%6s %9s %5s %9s %8s %11s %11s %6s %9s %9s %8s %s\n' "$t" "$(mib "${rss:-0}")" "$fds" \
    "$(mib "$wal")" "$dbm" "${sp:-?}" "${dp:-?}" "${qd:-?}" "${sent:-0}" "${ok:-0}" "${p99:-?}" "${errs:-{\}}"
done
wait "$gen_pid"
gen_pid=
kill -0 "$server_pid" 2>/dev/null || died=1

echo
echo "generator: $(cat "$tmp/gen-result.json" 2>/dev/null)"
[ -s "$tmp/gen.log" ] && { echo "generator stderr:"; tail -5 "$tmp/gen.log"; }
echo "stubs: $(cat "$tmp/stub-counts.json" 2>/dev/null)"

# ---- clean stop and the database ------------------------------------------
stop_ok=0
if [ "$died" = 0 ]; then
  kill -TERM "$server_pid"
  wait "$server_pid"
  code=$?
  server_pid=
  [ "$code" = 0 ] && stop_ok=1
  echo "server: stopped with exit status $code"
else
  echo "server: DIED during the run; its log:"
  tail -20 "$tmp/server.log"
fi
rows=$(sqlite3 "$db" 'SELECT count(*) FROM SesEventMessages' 2>&1)
qc=$(sqlite3 "$db" 'PRAGMA quick_check' 2>&1 | head -3 | tr '\n' ' ')
echo "database: $rows rows, quick_check: $qc, $(du -m "$db" | cut -f1) MiB"

# ---- verdicts ----------------------------------------------------------------
ack=$(json_field ok "$tmp/gen-result.json")
achieved=$(json_field achieved "$tmp/gen-result.json")
gen_errors=$(sed -n 's/.*"errors":\({[^}]*}\).*/\1/p' "$tmp/gen-result.json")
first_error=$(json_field firstError "$tmp/gen-result.json")

T=$(awk -F'\t' 'NR > 1 { t = $1 } END { print t + 0 }' "$samples")
awk -F'\t' -v W="$WINDOW" -v T="$T" '
  NR == 1 { next }
  { t = $1 + 0
    if (t > W && t <= 2 * W) { if ($2 > rss2) rss2 = $2; if ($3 > fd2) fd2 = $3; if ($6 > sp2) sp2 = $6; if ($7 > dp2) dp2 = $7 }
    if (t > T - W) { if ($2 > rssL) rssL = $2; if ($3 > fdL) fdL = $3; if ($6 > spL) spL = $6; if ($7 > dpL) dpL = $7 }
    if ($4 > walmax) walmax = $4
  }
  END { printf "%d %d %d %d %d %d %d %d %d\n", rss2, rssL, fd2, fdL, walmax, sp2, spL, dp2, dpL }
' "$samples" >"$tmp/verdict.txt"
read -r rss2 rssL fd2 fdL walmax sp2 spL dp2 dpL <"$tmp/verdict.txt"

fail=0
verdict() { # verdict NAME OK(0/1) TEXT
  if [ "$2" = 1 ]; then echo "PASS $1: $3"; else echo "FAIL $1: $3"; fail=1; fi
}
echo
echo "windows: second = (${WINDOW}, $((2 * WINDOW))] s, last = ($((T - WINDOW)), ${T}] s"
ok=0; [ "$rss2" -gt 0 ] && [ "$rssL" -le $((rss2 * 110 / 100)) ] && ok=1
verdict rss $ok "max RSS $(mib "$rss2") MiB in the second window, $(mib "$rssL") MiB in the last (limit +10 %)"
ok=0; [ "$fd2" -gt 0 ] && [ "$fdL" -le $((fd2 + 8)) ] && ok=1
verdict fds $ok "max $fd2 open descriptors in the second window, $fdL in the last (limit +8)"
ok=0; [ "$walmax" -lt $((64 * 1024)) ] && ok=1
verdict wal $ok "largest WAL $(mib "$walmax") MiB (limit 64 MiB)"
ok=0
if [ "$died" = 0 ] && [ "$gen_errors" = "{}" ] && [ -n "$achieved" ] && [ "$achieved" -ge $((RATE * 95 / 100)) ]; then ok=1; fi
verdict load $ok "achieved ${achieved:-?} events/s of $RATE offered, errors ${gen_errors:-?}${first_error:+ (first: $first_error)}, server $([ "$died" = 0 ] && echo alive || echo DIED)"
ok=0; [ "$stop_ok" = 1 ] && [ "$rows" = "$ack" ] && [ "$qc" = "ok " ] && ok=1
verdict rows $ok "$rows rows stored, $ack acknowledged, quick_check ${qc:-?}, clean stop $([ "$stop_ok" = 1 ] && echo yes || echo no)"
ok=0
if [ "$spL" -le $((sp2 * 110 / 100 + 1000)) ] && [ "$dpL" -le $((dp2 * 110 / 100 + 1000)) ]; then ok=1; fi
verdict outbox $ok "pending Slack alerts: max $sp2 in the second window, $spL in the last; DynamoDB: $dp2, $dpL"
echo
if [ "$fail" = 0 ]; then echo "soak: PASS"; else echo "soak: FAIL"; fi
exit "$fail"
