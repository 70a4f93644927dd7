-- seslog's SQLite schema. Applied at start by src/store.c: each section
-- "-- version N" runs once, in order, when PRAGMA user_version is below N,
-- inside one transaction, and then user_version becomes N. Migrations only
-- go forward: never edit a released section, add a new one.

-- version 1
-- One row per SES event, shaped like the DynamoDB table of the original
-- pipeline (messageId HASH, timeStamp RANGE, two GSIs); the names of the
-- first columns and of the three indexes are part of the contract.
CREATE TABLE SesEventMessages (
  id INTEGER PRIMARY KEY,            -- insertion order; cursor tiebreak
  messageId TEXT NOT NULL,           -- SES mail.messageId
  timeStamp TEXT NOT NULL,           -- SNS Timestamp (or the event's), ISO-8601 UTC, ms
  notificationType TEXT NOT NULL,    -- notificationType or eventType, verbatim
  reportingMTA TEXT,
  destinationAddress TEXT,           -- mail.destination joined with ','
  bouncedRecipients TEXT,            -- JSON array, compact
  complaintFeedbackType TEXT,
  feedbackId TEXT,
  bounceType TEXT,
  bounceSubType TEXT,
  complaintSubType TEXT,
  source TEXT,                       -- mail.source
  diagnostic TEXT,                   -- first diagnostic code / reason
  recipients TEXT NOT NULL,          -- JSON array of the affected addresses
  snsMessageId TEXT,                 -- SNS MessageId when it came through SNS
  topicArn TEXT,
  receivedAt INTEGER NOT NULL,       -- ms since the epoch, when stored
  contentHash BLOB NOT NULL,         -- SHA-256 (16 bytes) of raw: duplicates
  raw TEXT NOT NULL                  -- the SES JSON as received, compact
);
CREATE INDEX "messageId-timeStamp-Index" ON SesEventMessages (messageId, timeStamp);
CREATE INDEX "notificationType-timeStamp-Index" ON SesEventMessages (notificationType, timeStamp);
CREATE INDEX "complaintFeedbackType-timeStamp-Index"
  ON SesEventMessages (complaintFeedbackType, timeStamp);
CREATE INDEX "timeStamp-Index" ON SesEventMessages (timeStamp);
-- The same event twice: an SNS retry carries the same Message (same hash);
-- a bounce or complaint seen through a second channel the same feedbackId.
CREATE UNIQUE INDEX "contentHash-Unique" ON SesEventMessages (contentHash);
CREATE UNIQUE INDEX "feedbackId-Unique" ON SesEventMessages (notificationType, feedbackId)
  WHERE feedbackId IS NOT NULL;

-- Every affected recipient of every event, folded to lower case: the
-- per-address history, the domain filters and the suppression rules.
CREATE TABLE recipients (
  address TEXT NOT NULL,
  timeStamp TEXT NOT NULL,
  eventId INTEGER NOT NULL,          -- SesEventMessages.id
  domain TEXT NOT NULL,
  notificationType TEXT NOT NULL,
  PRIMARY KEY (address, timeStamp, eventId)
) WITHOUT ROWID;
CREATE INDEX "recipients-domain" ON recipients (domain, timeStamp);

-- Per-minute counters over the events' timeStamp, written in the event's
-- transaction; the monitors and /api/stats read these, never the events.
-- Counts are of recipients, as SES counts them.
CREATE TABLE rollup_minute (
  minute INTEGER PRIMARY KEY,        -- ms since the epoch / 60000
  events INTEGER NOT NULL DEFAULT 0, -- events of any type
  sends INTEGER NOT NULL DEFAULT 0,
  deliveries INTEGER NOT NULL DEFAULT 0,
  bounces INTEGER NOT NULL DEFAULT 0,           -- every bounced recipient
  permanentBounces INTEGER NOT NULL DEFAULT 0,  -- Permanent, not OnAccountSuppressionList
  transientBounces INTEGER NOT NULL DEFAULT 0,
  complaints INTEGER NOT NULL DEFAULT 0,        -- not OnAccountSuppressionList
  rejects INTEGER NOT NULL DEFAULT 0,
  opens INTEGER NOT NULL DEFAULT 0,
  clicks INTEGER NOT NULL DEFAULT 0,
  delays INTEGER NOT NULL DEFAULT 0,
  other INTEGER NOT NULL DEFAULT 0
);

-- Transactional outbox: work for the sinks (Slack, DynamoDB), written in
-- the same transaction as the event that causes it, deleted or marked
-- 'sent' when the sink accepted it.
CREATE TABLE outbox (
  id INTEGER PRIMARY KEY,
  sink TEXT NOT NULL,                -- 'slack', 'dynamodb'
  eventId INTEGER,
  payload TEXT NOT NULL,
  createdAt INTEGER NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  nextAttemptAt INTEGER NOT NULL,
  state TEXT NOT NULL DEFAULT 'pending', -- pending, dead
  lastError TEXT
);
CREATE INDEX "outbox-due" ON outbox (sink, state, nextAttemptAt);

-- Each SNS topic seen, for /api/subscriptions.
CREATE TABLE subscriptions (
  topicArn TEXT PRIMARY KEY,
  state TEXT NOT NULL,               -- pending, confirmed, unsubscribed, notifying
  subscriptionArn TEXT,
  confirmedAt INTEGER,
  firstMessageAt INTEGER,
  lastMessageAt INTEGER,
  accepted INTEGER NOT NULL DEFAULT 0,
  rejected INTEGER NOT NULL DEFAULT 0
);
