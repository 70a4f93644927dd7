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

-- version 2
-- GET /api/events?source= and `seslog query --source`: the sender's events
-- in time order. Addresses compare without case, as mail systems do.
CREATE INDEX "source-timeStamp-Index" ON SesEventMessages (source COLLATE NOCASE, timeStamp);

-- version 3
-- The suppression list (src/suppression.c): one row per address that must
-- not be mailed. address is the key, folded to lower case; display keeps
-- the form first given. Rule entries are written in the transaction of the
-- event that causes them.
CREATE TABLE IF NOT EXISTS suppression (
  address TEXT PRIMARY KEY,          -- folded (ASCII lower case)
  id INTEGER NOT NULL UNIQUE,        -- insertion order: the listing's order and cursor
  display TEXT NOT NULL,             -- as first given
  domain TEXT NOT NULL,              -- folded domain, for the domain filter
  reason TEXT NOT NULL,              -- BOUNCE, COMPLAINT or MANUAL
  createdAt INTEGER NOT NULL,        -- ms: the first event's timeStamp, or when added by hand
  lastEventAt INTEGER,               -- ms: timeStamp of the latest event that (re)suppressed it
  events INTEGER NOT NULL DEFAULT 0, -- SES events that (re)suppressed it
  messageId TEXT,                    -- mail.messageId of that latest event
  eventId INTEGER,                   -- SesEventMessages.id of that latest event
  note TEXT,
  ambiguous INTEGER NOT NULL DEFAULT 0 -- 1: a complaint that named several recipients
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS "suppression-reason" ON suppression (reason, id);
CREATE INDEX IF NOT EXISTS "suppression-domain" ON suppression (domain, id);

-- Every change of the list, kept after a removal: rules, manual adds,
-- imports and removals.
CREATE TABLE IF NOT EXISTS suppression_history (
  id INTEGER PRIMARY KEY,
  address TEXT NOT NULL,             -- folded
  at INTEGER NOT NULL,               -- ms, wall clock of the change
  action TEXT NOT NULL,              -- added, updated, removed
  actor TEXT NOT NULL,               -- permanent-bounce, complaint, soft-bounce, api, cli
  reason TEXT,                       -- the entry's reason after (or, removed, before) the change
  note TEXT,
  messageId TEXT,                    -- the event's mail.messageId (rules)
  eventId INTEGER,                   -- rules: the event; removed: the newest event id then
  eventAt INTEGER                    -- rules: the event's timeStamp, ms
);
CREATE INDEX IF NOT EXISTS "suppression_history-address" ON suppression_history (address, id);

-- version 4
-- Every change of a monitor's state (bounce rate, complaint rate): the
-- latest row per monitor is its state after a restart.
CREATE TABLE monitor_changes (
  id INTEGER PRIMARY KEY,
  monitor TEXT NOT NULL,             -- 'bounceRate', 'complaintRate'
  fromState TEXT NOT NULL,
  toState TEXT NOT NULL,             -- ok, warn, alert
  value REAL NOT NULL,               -- the rate, a fraction
  threshold REAL NOT NULL,
  sends INTEGER NOT NULL,            -- the denominator
  windowMs INTEGER NOT NULL,         -- the window used
  at INTEGER NOT NULL                -- ms since the epoch
);
CREATE INDEX "monitor_changes-monitor" ON monitor_changes (monitor, id);

-- version 5
-- GET /api/events?domain=...&type=... ("what bounced at gmail.com"): one
-- seek instead of reading a big domain's events until enough match.
CREATE INDEX "recipients-domain-type" ON recipients (domain, notificationType, timeStamp);

-- rollup_minute summed per hour, so /api/stats over 30 days and
-- /api/timeseries in hours read 720 rows, not 43,200. Triggers keep it in
-- step inside the writer's own transaction (the minute's counters change
-- only by INSERT ... ON CONFLICT DO UPDATE, or a delete); the minute table
-- stays the truth and this one can be rebuilt from it at any time.
CREATE TABLE rollup_hour (
  hour INTEGER PRIMARY KEY,          -- ms since the epoch / 3600000 (floor)
  events INTEGER NOT NULL DEFAULT 0,
  sends INTEGER NOT NULL DEFAULT 0,
  deliveries INTEGER NOT NULL DEFAULT 0,
  bounces INTEGER NOT NULL DEFAULT 0,
  permanentBounces INTEGER NOT NULL DEFAULT 0,
  transientBounces INTEGER NOT NULL DEFAULT 0,
  complaints INTEGER NOT NULL DEFAULT 0,
  rejects INTEGER NOT NULL DEFAULT 0,
  opens INTEGER NOT NULL DEFAULT 0,
  clicks INTEGER NOT NULL DEFAULT 0,
  delays INTEGER NOT NULL DEFAULT 0,
  other INTEGER NOT NULL DEFAULT 0
);
INSERT INTO rollup_hour (hour, events, sends, deliveries, bounces, permanentBounces,
    transientBounces, complaints, rejects, opens, clicks, delays, other)
  SELECT (minute - (minute % 60 + 60) % 60) / 60, sum(events), sum(sends), sum(deliveries),
      sum(bounces), sum(permanentBounces), sum(transientBounces), sum(complaints), sum(rejects),
      sum(opens), sum(clicks), sum(delays), sum(other)
  FROM rollup_minute GROUP BY 1;
CREATE TRIGGER "rollup_hour-insert" AFTER INSERT ON rollup_minute BEGIN
  INSERT INTO rollup_hour (hour, events, sends, deliveries, bounces, permanentBounces,
      transientBounces, complaints, rejects, opens, clicks, delays, other)
  VALUES ((NEW.minute - (NEW.minute % 60 + 60) % 60) / 60, NEW.events, NEW.sends, NEW.deliveries,
      NEW.bounces, NEW.permanentBounces, NEW.transientBounces, NEW.complaints, NEW.rejects,
      NEW.opens, NEW.clicks, NEW.delays, NEW.other)
  ON CONFLICT(hour) DO UPDATE SET
    events = events + excluded.events,
    sends = sends + excluded.sends,
    deliveries = deliveries + excluded.deliveries,
    bounces = bounces + excluded.bounces,
    permanentBounces = permanentBounces + excluded.permanentBounces,
    transientBounces = transientBounces + excluded.transientBounces,
    complaints = complaints + excluded.complaints,
    rejects = rejects + excluded.rejects,
    opens = opens + excluded.opens,
    clicks = clicks + excluded.clicks,
    delays = delays + excluded.delays,
    other = other + excluded.other;
END;
CREATE TRIGGER "rollup_hour-update" AFTER UPDATE ON rollup_minute BEGIN
  INSERT INTO rollup_hour (hour, events, sends, deliveries, bounces, permanentBounces,
      transientBounces, complaints, rejects, opens, clicks, delays, other)
  VALUES ((NEW.minute - (NEW.minute % 60 + 60) % 60) / 60, NEW.events - OLD.events,
      NEW.sends - OLD.sends, NEW.deliveries - OLD.deliveries, NEW.bounces - OLD.bounces,
      NEW.permanentBounces - OLD.permanentBounces, NEW.transientBounces - OLD.transientBounces,
      NEW.complaints - OLD.complaints, NEW.rejects - OLD.rejects, NEW.opens - OLD.opens,
      NEW.clicks - OLD.clicks, NEW.delays - OLD.delays, NEW.other - OLD.other)
  ON CONFLICT(hour) DO UPDATE SET
    events = events + excluded.events,
    sends = sends + excluded.sends,
    deliveries = deliveries + excluded.deliveries,
    bounces = bounces + excluded.bounces,
    permanentBounces = permanentBounces + excluded.permanentBounces,
    transientBounces = transientBounces + excluded.transientBounces,
    complaints = complaints + excluded.complaints,
    rejects = rejects + excluded.rejects,
    opens = opens + excluded.opens,
    clicks = clicks + excluded.clicks,
    delays = delays + excluded.delays,
    other = other + excluded.other;
END;
CREATE TRIGGER "rollup_hour-delete" AFTER DELETE ON rollup_minute BEGIN
  INSERT INTO rollup_hour (hour, events, sends, deliveries, bounces, permanentBounces,
      transientBounces, complaints, rejects, opens, clicks, delays, other)
  VALUES ((OLD.minute - (OLD.minute % 60 + 60) % 60) / 60, -OLD.events, -OLD.sends,
      -OLD.deliveries, -OLD.bounces, -OLD.permanentBounces, -OLD.transientBounces, -OLD.complaints,
      -OLD.rejects, -OLD.opens, -OLD.clicks, -OLD.delays, -OLD.other)
  ON CONFLICT(hour) DO UPDATE SET
    events = events + excluded.events,
    sends = sends + excluded.sends,
    deliveries = deliveries + excluded.deliveries,
    bounces = bounces + excluded.bounces,
    permanentBounces = permanentBounces + excluded.permanentBounces,
    transientBounces = transientBounces + excluded.transientBounces,
    complaints = complaints + excluded.complaints,
    rejects = rejects + excluded.rejects,
    opens = opens + excluded.opens,
    clicks = clicks + excluded.clicks,
    delays = delays + excluded.delays,
    other = other + excluded.other;
END;

-- version 6
-- One row the writer rewrites to learn whether the disk takes writes
-- again after a failed commit (disk full, locked), so /healthz recovers
-- without waiting for traffic.
CREATE TABLE health (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  at INTEGER NOT NULL                -- seconds since the epoch
);

-- version 7
-- The domain indexes end in eventId, so a page of a domain's events, in
-- (timeStamp, eventId) order, is read straight off the index: no sort of
-- the events that share a timeStamp (a big domain has hundreds at the
-- same millisecond after a bulk import). An index of a WITHOUT ROWID table
-- already carries the key (address, timeStamp, eventId), so they grow by
-- nothing.
DROP INDEX IF EXISTS "recipients-domain";
CREATE INDEX "recipients-domain" ON recipients (domain, timeStamp, eventId);
DROP INDEX IF EXISTS "recipients-domain-type";
CREATE INDEX "recipients-domain-type" ON recipients (domain, notificationType, timeStamp, eventId);

-- version 8
-- Duplicates are found through "messageId-timeStamp-Index" and the stored
-- contentHash (src/store.c): a unique index on a random hash cost one page
-- write per event, the largest share of each commit.
DROP INDEX IF EXISTS "contentHash-Unique";

-- version 9
-- The DNSBL watch (src/dnsbl.c): the latest answer of each (target, zone),
-- so the log browser shows how long a state has lasted across restarts, and
-- every change between listed and not listed, which is what Slack is told;
-- the latest change of a pair decides whether a new answer is news.
CREATE TABLE dnsbl_state (
  target TEXT NOT NULL,              -- an IP address or a domain
  zone TEXT NOT NULL,
  kind TEXT NOT NULL,                -- 'ip', 'domain'
  state TEXT NOT NULL,               -- listed, not_listed, unknown
  since INTEGER NOT NULL,            -- ms since the epoch: when the state began
  checkedAt INTEGER NOT NULL,        -- ms since the epoch
  answers TEXT,                      -- the A answers, space separated
  reason TEXT,                       -- TXT
  error TEXT,                        -- why unknown
  PRIMARY KEY (target, zone)
) WITHOUT ROWID;
CREATE TABLE dnsbl_changes (
  id INTEGER PRIMARY KEY,
  at INTEGER NOT NULL,               -- ms since the epoch
  target TEXT NOT NULL,
  zone TEXT NOT NULL,
  fromState TEXT NOT NULL,           -- '' (never checked), listed, not_listed
  toState TEXT NOT NULL,             -- listed, not_listed
  answers TEXT,
  reason TEXT
);
CREATE INDEX "dnsbl_changes-pair" ON dnsbl_changes (target, zone, id);

-- version 10
-- The original JSON (SesEventMessages.raw) compressed with zstd and a
-- dictionary trained on the database's own events (src/rawz.c): about a
-- fifth of its size. Each dictionary is kept here for good, so a new one
-- never makes an old row unreadable; raw is then a zstd frame whose header
-- names its dictionary, and rawDict says the same for a person with sqlite3
-- (0: raw is the JSON text itself, as every row written before). seslog
-- reads either form through its SQL function seslog_raw(raw); `seslog
-- vacuum` recompresses old rows with a freshly trained dictionary.
-- Merged after version 11: a database that a seslog without this section
-- brought to version 11 (it has no raw_dicts) gets it too (src/store.c).
CREATE TABLE raw_dicts (
  id INTEGER PRIMARY KEY,            -- the Dictionary_ID in the dictionary's and each frame's header
  dict BLOB NOT NULL,                -- a zstd dictionary
  samples INTEGER NOT NULL,          -- events it was trained on
  createdAt INTEGER NOT NULL         -- ms since the epoch
);
ALTER TABLE SesEventMessages ADD COLUMN rawDict INTEGER NOT NULL DEFAULT 0;
-- Like DynamoDB's GSI, which holds only items that have the attribute, the
-- complaintFeedbackType index holds only complaints with a feedback type:
-- the NULL entry every other event added cost a page write and 35 bytes an
-- event, and a query for a feedback type never reads NULL.
DROP INDEX IF EXISTS "complaintFeedbackType-timeStamp-Index";
CREATE INDEX "complaintFeedbackType-timeStamp-Index"
  ON SesEventMessages (complaintFeedbackType, timeStamp) WHERE complaintFeedbackType IS NOT NULL;

-- version 11
-- The sender filter (source= and `seslog query --source`) finds a sender by
-- its address, also in the "Name <addr>" form mail.source often has: an
-- index on that address (built-in functions only, so the sqlite3 shell
-- reads and writes the file as before). src/query.c writes the same
-- expression so SQLite uses it.
-- It replaces "source-timeStamp-Index" (whole values, no query uses it
-- any more): one index a row either way.
DROP INDEX IF EXISTS "source-timeStamp-Index";
CREATE INDEX "sourceAddress-timeStamp-Index" ON SesEventMessages (
  lower(CASE WHEN instr(source, '<') > 0 AND instr(source, '>') > instr(source, '<') THEN
    substr(source, instr(source, '<') + 1, instr(source, '>') - instr(source, '<') - 1)
    ELSE trim(source) END), timeStamp);

-- Grouped counts (GET /api/events/counts, `seslog query --group-by`) over a
-- month answer from these rollups, not from the events: events per UTC
-- hour, type, bounce type and subtype and sender; affected recipients per
-- UTC day, type, domain and bounce type.
-- Triggers keep them in step inside the writer's own transaction (an
-- event row, then its recipients rows, are inserted; retention deletes
-- the recipients rows, then the event), as rollup_hour is kept. '' stands
-- for none (the keys are NOT NULL).
CREATE TABLE rollup_type_hour (
  hour TEXT NOT NULL,                -- YYYY-MM-DDTHH of timeStamp
  notificationType TEXT NOT NULL,
  bounceType TEXT NOT NULL,
  bounceSubType TEXT NOT NULL,
  source TEXT NOT NULL,              -- mail.source as stored
  events INTEGER NOT NULL,
  PRIMARY KEY (hour, notificationType, bounceType, bounceSubType, source)
) WITHOUT ROWID;
INSERT INTO rollup_type_hour (hour, notificationType, bounceType, bounceSubType, source, events)
  SELECT substr(timeStamp, 1, 13), notificationType, coalesce(bounceType, ''),
      coalesce(bounceSubType, ''), coalesce(source, ''), count(*)
  FROM SesEventMessages GROUP BY 1, 2, 3, 4, 5;
CREATE TRIGGER "rollup_type_hour-insert" AFTER INSERT ON SesEventMessages BEGIN
  INSERT INTO rollup_type_hour (hour, notificationType, bounceType, bounceSubType, source, events)
  VALUES (substr(NEW.timeStamp, 1, 13), NEW.notificationType, coalesce(NEW.bounceType, ''),
      coalesce(NEW.bounceSubType, ''), coalesce(NEW.source, ''), 1)
  ON CONFLICT DO UPDATE SET events = events + 1;
END;
CREATE TRIGGER "rollup_type_hour-delete" AFTER DELETE ON SesEventMessages BEGIN
  UPDATE rollup_type_hour SET events = events - 1
  WHERE hour = substr(OLD.timeStamp, 1, 13) AND notificationType = OLD.notificationType
    AND bounceType = coalesce(OLD.bounceType, '') AND bounceSubType = coalesce(OLD.bounceSubType, '')
    AND source = coalesce(OLD.source, '');
END;
CREATE TABLE rollup_domain_day (
  notificationType TEXT NOT NULL,
  day TEXT NOT NULL,                 -- YYYY-MM-DD of the recipient's timeStamp
  domain TEXT NOT NULL,
  bounceType TEXT NOT NULL,
  recipients INTEGER NOT NULL,
  PRIMARY KEY (notificationType, day, domain, bounceType)
) WITHOUT ROWID;
INSERT INTO rollup_domain_day (notificationType, day, domain, bounceType, recipients)
  SELECT r.notificationType, substr(r.timeStamp, 1, 10), r.domain, coalesce(e.bounceType, ''),
      count(*)
  FROM recipients r JOIN SesEventMessages e ON e.id = r.eventId GROUP BY 1, 2, 3, 4;
CREATE TRIGGER "rollup_domain_day-insert" AFTER INSERT ON recipients BEGIN
  INSERT INTO rollup_domain_day (notificationType, day, domain, bounceType, recipients)
  VALUES (NEW.notificationType, substr(NEW.timeStamp, 1, 10), NEW.domain,
      coalesce((SELECT bounceType FROM SesEventMessages WHERE id = NEW.eventId), ''), 1)
  ON CONFLICT DO UPDATE SET recipients = recipients + 1;
END;
CREATE TRIGGER "rollup_domain_day-delete" AFTER DELETE ON recipients BEGIN
  UPDATE rollup_domain_day SET recipients = recipients - 1
  WHERE notificationType = OLD.notificationType AND day = substr(OLD.timeStamp, 1, 10)
    AND domain = OLD.domain
    AND bounceType = coalesce((SELECT bounceType FROM SesEventMessages WHERE id = OLD.eventId), '');
END;
-- version 15
-- AWS's own verdict beside seslog's (src/sesrep.c): the data points of the
-- CloudWatch metrics AWS/SES Reputation.BounceRate and
-- Reputation.ComplaintRate as GetMetricData returned them (a point is
-- asked for again while it is recent: the same key replaces it), and every
-- change of the account's enforcement status (SES v2 GetAccount), which
-- is what Slack is told; the latest row decides whether an answer is news.
CREATE TABLE ses_reputation_samples (
  t INTEGER NOT NULL,                -- ms since the epoch: the start of the point's period
  metric TEXT NOT NULL,              -- 'bounceRate', 'complaintRate'
  scope TEXT NOT NULL,               -- 'account' or 'configuration-set:NAME'
  value REAL NOT NULL,               -- a fraction (0.05 = 5 %)
  PRIMARY KEY (scope, metric, t)
) WITHOUT ROWID;
CREATE INDEX "ses_reputation_samples-t" ON ses_reputation_samples (scope, t);
CREATE TABLE ses_account_changes (
  id INTEGER PRIMARY KEY,
  at INTEGER NOT NULL,               -- ms since the epoch
  fromStatus TEXT NOT NULL,          -- '' (never seen), HEALTHY, PROBATION, SHUTDOWN
  toStatus TEXT NOT NULL,
  sendingEnabled INTEGER,            -- 1, 0, NULL unknown
  productionAccessEnabled INTEGER
);
-- version 16
-- The kind of each outbox row: 'event' for the rows an event caused, the
-- alert's kind for an alert's ('monitor', 'silence', 'unsubscribe',
-- 'enforcement', 'dnsbl'), so rows are chosen by kind (Slack's digest
-- acknowledges only events), never by the text of their payload. Rows
-- written before are given the kind their payload names (alerts go to
-- Slack only; every other sink's rows are events).
ALTER TABLE outbox ADD COLUMN kind TEXT NOT NULL DEFAULT 'event';
UPDATE outbox SET kind = json_extract(payload, '$.kind')
  WHERE sink = 'slack' AND json_valid(payload) AND json_type(payload, '$.kind') = 'text';

-- version 17
-- The grouped-count rollups are kept by the writer in C (src/rollup.c):
-- it sums a batch's events per key and writes each key once, in the
-- events' transaction, so they are exact; the insert triggers of version
-- 11 cost imports a fifth of their speed. The delete triggers stay
-- (retention deletes a row at a time).
DROP TRIGGER IF EXISTS "rollup_type_hour-insert";
DROP TRIGGER IF EXISTS "rollup_domain_day-insert";
-- Events per UTC hour, type, bounce type and subtype and normalized
-- diagnostic (seslog_diag: status codes and words without addresses and
-- ids, src/query.c), for GET /api/events/counts?groupBy=diagnostic. ''
-- stands for none. Its delete trigger needs seslog_diag, which only seslog
-- has: it is a TEMP trigger of the writer's connection (rollup_attach).
CREATE TABLE rollup_diagnostic_hour (
  hour TEXT NOT NULL,                -- YYYY-MM-DDTHH of timeStamp
  notificationType TEXT NOT NULL,
  bounceType TEXT NOT NULL,
  bounceSubType TEXT NOT NULL,
  diagnostic TEXT NOT NULL,          -- seslog_diag(diagnostic)
  events INTEGER NOT NULL,
  PRIMARY KEY (hour, notificationType, bounceType, bounceSubType, diagnostic)
) WITHOUT ROWID;
INSERT INTO rollup_diagnostic_hour (hour, notificationType, bounceType, bounceSubType,
    diagnostic, events)
  SELECT substr(timeStamp, 1, 13), notificationType, coalesce(bounceType, ''),
      coalesce(bounceSubType, ''), coalesce(seslog_diag(diagnostic), ''), count(*)
  FROM SesEventMessages GROUP BY 1, 2, 3, 4, 5;
-- Affected recipients per domain over every type, per UTC day and per UTC
-- hour: a month grouped by domain reads the whole days from the first and
-- the hours at either end from the second (rollup_domain_day, split by
-- type, is for a type's domains).
CREATE TABLE rollup_recipient_day (
  day TEXT NOT NULL,                 -- YYYY-MM-DD of the recipient's timeStamp
  domain TEXT NOT NULL,
  recipients INTEGER NOT NULL,
  PRIMARY KEY (day, domain)
) WITHOUT ROWID;
CREATE TABLE rollup_recipient_hour (
  hour TEXT NOT NULL,                -- YYYY-MM-DDTHH of the recipient's timeStamp
  domain TEXT NOT NULL,
  recipients INTEGER NOT NULL,
  PRIMARY KEY (hour, domain)
) WITHOUT ROWID;
INSERT INTO rollup_recipient_hour (hour, domain, recipients)
  SELECT substr(timeStamp, 1, 13), domain, count(*) FROM recipients GROUP BY 1, 2;
INSERT INTO rollup_recipient_day (day, domain, recipients)
  SELECT substr(hour, 1, 10), domain, sum(recipients) FROM rollup_recipient_hour GROUP BY 1, 2;
CREATE TRIGGER "rollup_recipient-delete" AFTER DELETE ON recipients BEGIN
  UPDATE rollup_recipient_day SET recipients = recipients - 1
  WHERE day = substr(OLD.timeStamp, 1, 10) AND domain = OLD.domain;
  UPDATE rollup_recipient_hour SET recipients = recipients - 1
  WHERE hour = substr(OLD.timeStamp, 1, 13) AND domain = OLD.domain;
END;
-- version 18
-- One recipients-by-domain index instead of two: "recipients-domain" gets
-- notificationType as its last column and "recipients-domain-type" goes.
-- A domain's page still reads in (timeStamp, eventId) order straight off
-- the index, and a domain-and-type page checks the type in the same index
-- entry (no lookup of the row); each recipient costs one b-tree insert
-- and about 100 bytes less.
DROP INDEX IF EXISTS "recipients-domain-type";
DROP INDEX IF EXISTS "recipients-domain";
CREATE INDEX "recipients-domain" ON recipients (domain, timeStamp, eventId, notificationType);
-- version 19
-- A new suppression entry writes no "added" row into suppression_history:
-- while the entry is unchanged, that row is implicit (about 120 bytes and
-- an index entry less per suppressed address). The entry keeps what the
-- row would have said and the entry does not hold otherwise: the wall
-- clock of the addition and who added it; its reason, note, messageId,
-- eventId and lastEventAt (the row's eventAt) are still the row's values.
-- The first change of the entry (an update, a removal) writes the implicit
-- row first, with those values, and sets both columns to NULL. NULL means
-- the "added" row is in suppression_history: so it is for every entry that
-- existed before this version.
ALTER TABLE suppression ADD COLUMN addedAt INTEGER; -- ms, wall clock; NULL: row written
ALTER TABLE suppression ADD COLUMN addedBy TEXT;    -- the actor of the addition
-- The whole history as suppression_history held it before this version:
-- the written rows, and each implicit "added" row (its id NULL: not yet
-- written; it is the newest row of its address).
CREATE VIEW suppression_history_full AS
  SELECT id, address, at, action, actor, reason, note, messageId, eventId, eventAt
  FROM suppression_history
  UNION ALL
  SELECT NULL, address, addedAt, 'added', addedBy, reason, note, messageId, eventId, lastEventAt
  FROM suppression WHERE addedAt IS NOT NULL;
-- version 20
-- No column that repeats another column of its row. Rows written from
-- this version on store:
--  * diagnostic NULL when it is the first bouncedRecipients entry's
--    diagnosticCode (a Bounce's usual case); NULL still means "none" when
--    that derivation gives NULL too. Its value in the sqlite3 shell:
--      coalesce(diagnostic, CASE WHEN json_valid(bouncedRecipients) THEN
--        CASE WHEN json_type(bouncedRecipients, '$[0].diagnosticCode') = 'text'
--        THEN json_extract(bouncedRecipients, '$[0].diagnosticCode') END END)
--  * recipients '' (the column is NOT NULL) when it is the JSON array of
--    the bouncedRecipients entries' emailAddress values (a Bounce, up to 3
--    entries), or, for a row without bouncedRecipients, destinationAddress
--    split at ','. Its value in the sqlite3 shell:
--      CASE WHEN recipients <> '' THEN recipients
--        WHEN bouncedRecipients IS NULL THEN
--          '["' || replace(destinationAddress, ',', '","') || '"]'
--        WHEN json_valid(bouncedRecipients) THEN
--          CASE json_array_length(bouncedRecipients) WHEN 0 THEN '[]'
--          WHEN 1 THEN json_array(json_extract(bouncedRecipients, '$[0].emailAddress'))
--          WHEN 2 THEN json_array(json_extract(bouncedRecipients, '$[0].emailAddress'),
--            json_extract(bouncedRecipients, '$[1].emailAddress'))
--          WHEN 3 THEN json_array(json_extract(bouncedRecipients, '$[0].emailAddress'),
--            json_extract(bouncedRecipients, '$[1].emailAddress'),
--            json_extract(bouncedRecipients, '$[2].emailAddress')) END
--      END
-- seslog's INSERT runs these same expressions on the row's values and
-- stores the empty form only when they give the value byte for byte (and,
-- for recipients, the value has no escape: no '\' in it, so any SQLite
-- writes the same text); any other value (an address with a quote, a comma
-- inside a display name, a fourth bounced recipient, a diagnostic from a
-- later entry) is stored whole. Rows written before
-- keep their values; both forms read the same through these expressions
-- (src/event_fields.c, ses_field_sql_read). No schema change.

-- version 21
-- The original JSON in a zstd frame (version 10) may leave out the values
-- its row's columns already hold: a frame whose text starts with the byte
-- 0x01 has each occurrence of messageId, destinationAddress,
-- bouncedRecipients, feedbackId and reportingMTA (the row's values, byte
-- for byte) replaced by one byte, 0x02 to 0x06 in that order; JSON text
-- never holds those bytes itself (src/rawz.c). seslog reads it back with
--   seslog_raw(raw, messageId, destinationAddress, bouncedRecipients,
--              feedbackId, reportingMTA)
-- which is an error, never a different text, when a value it needs is not
-- given. Editing one of those columns by hand changes the row's original
-- JSON with it. Nothing changes in the tables: this section only marks the
-- databases an older seslog must not read.

-- version 22
-- The SNS envelope's two values in fewer bytes. Rows written from now on
-- store:
--  * topicArn NULL and topicId, the id of the ARN in topics: a topic's
--    ARN (about 48 bytes) once instead of in every event. topics is its
--    own table, not subscriptions, whose key is the ARN text (its rowid
--    could change with a VACUUM). The writer caches the ids and writes a
--    new topic's row in the event's transaction; topics rows are never
--    deleted, so an id never names another ARN. Rows written before keep
--    their text (topicId NULL). The value in the sqlite3 shell:
--      coalesce(topicArn, (SELECT arn FROM topics WHERE id = topicId))
--  * snsMessageId as its 16 bytes (a BLOB) when the text is a canonical
--    lower-case UUID (8-4-4-4-12 hex digits, as SNS writes MessageIds),
--    which the form below gives back byte for byte; any other text is
--    stored as text, as every row written before. The value in the
--    sqlite3 shell:
--      CASE WHEN typeof(snsMessageId) = 'blob' THEN
--        lower(substr(hex(snsMessageId), 1, 8) || '-' ||
--          substr(hex(snsMessageId), 9, 4) || '-' ||
--          substr(hex(snsMessageId), 13, 4) || '-' ||
--          substr(hex(snsMessageId), 17, 4) || '-' ||
--          substr(hex(snsMessageId), 21, 12))
--        ELSE snsMessageId END
-- seslog reads both forms through these same expressions
-- (src/event_fields.c, ses_field_sql_read).
CREATE TABLE topics (
  id INTEGER PRIMARY KEY,            -- SesEventMessages.topicId
  arn TEXT NOT NULL UNIQUE           -- the SNS TopicArn, as received
);
ALTER TABLE SesEventMessages ADD COLUMN topicId INTEGER; -- topics.id; NULL: topicArn holds it

-- version 23
-- recipients.timeStamp is the event's time as an integer, ms since the
-- epoch (6 bytes instead of 24 of text, in the table and in
-- "recipients-domain"): the address history, the domain filters and the
-- transient-bounce rule only sort and compare it. The event row keeps the
-- text. Its value from SesEventMessages.timeStamp (always written
-- 'YYYY-MM-DDTHH:MM:SS.mmmZ' by seslog), and back, in the sqlite3 shell:
--   unixepoch(substr(timeStamp, 1, 19)) * 1000 + CAST(substr(timeStamp, 21, 3) AS INTEGER)
--   strftime('%Y-%m-%dT%H:%M:%fZ', timeStamp / 1000.0, 'unixepoch')
-- A text that is not in that form (an event edited by hand) is kept as it
-- is: the column is not STRICT, and such a row sorts after every integer.
-- recipients.notificationType is a small integer too (0 or 1 take no byte
-- in a record, the others one, instead of 4 to 17 bytes of text), the
-- position of the type in CONTRACT section 4's list, from 0:
--   0 Bounce, 1 Complaint, 2 Delivery, 3 Send, 4 Reject, 5 Open, 6 Click,
--   7 Rendering Failure, 8 DeliveryDelay, 9 Subscription
-- (any other text, which seslog never stores, is kept as it is). In the
-- sqlite3 shell, the name of a code:
--   CASE notificationType
--     WHEN 0 THEN 'Bounce' WHEN 1 THEN 'Complaint' WHEN 2 THEN 'Delivery' WHEN 3 THEN 'Send'
--     WHEN 4 THEN 'Reject' WHEN 5 THEN 'Open' WHEN 6 THEN 'Click' WHEN 7 THEN 'Rendering Failure'
--     WHEN 8 THEN 'DeliveryDelay' WHEN 9 THEN 'Subscription' ELSE notificationType END
-- recipients.domain is gone: it repeated the address's part after its
-- '@' (about 15 bytes a row). "recipients-domain" indexes the domain as
-- this expression, which is what to write in the sqlite3 shell (seslog's
-- queries write it the same way, so SQLite uses the index):
--   coalesce(oddDomain, substr(address, instr(address, '@') + 1))
-- e.g. SELECT count(*) FROM recipients
--      WHERE coalesce(oddDomain, substr(address, instr(address, '@') + 1)) = 'gmail.com';
-- oddDomain is NULL but for an address that has not exactly one '@' (SES
-- may report any text as a recipient): there it holds the domain seslog
-- takes, the part after the last '@' ('' without one), as the old column
-- did; it keeps any old value that differs from the expression. The
-- index ends in oddDomain (one byte, NULL) so that it holds every column
-- the expression reads: a domain's page reads no row of the table.
-- The table is rebuilt with every row; the delete triggers of versions 11
-- and 17 take the day and hour from the integer time, the type's name
-- from its code and the domain from that expression.
CREATE TABLE "recipients-v23" (
  address TEXT NOT NULL,
  timeStamp INTEGER NOT NULL,        -- ms since the epoch of the event's timeStamp
  eventId INTEGER NOT NULL,          -- SesEventMessages.id
  notificationType INTEGER NOT NULL, -- the event's type: 0 Bounce ... 9 Subscription (above)
  oddDomain TEXT,                    -- NULL: the domain is the address's part after its '@'
  PRIMARY KEY (address, timeStamp, eventId)
) WITHOUT ROWID;
INSERT INTO "recipients-v23" (address, timeStamp, eventId, notificationType, oddDomain)
  SELECT address,
      CASE WHEN strftime('%Y-%m-%dT%H:%M:%fZ', timeStamp, '+0 seconds') = timeStamp
        THEN unixepoch(substr(timeStamp, 1, 19)) * 1000 + CAST(substr(timeStamp, 21, 3) AS INTEGER)
        ELSE timeStamp END,
      eventId,
      CASE notificationType WHEN 'Bounce' THEN 0 WHEN 'Complaint' THEN 1 WHEN 'Delivery' THEN 2
        WHEN 'Send' THEN 3 WHEN 'Reject' THEN 4 WHEN 'Open' THEN 5 WHEN 'Click' THEN 6
        WHEN 'Rendering Failure' THEN 7 WHEN 'DeliveryDelay' THEN 8 WHEN 'Subscription' THEN 9
        ELSE notificationType END,
      CASE WHEN domain = substr(address, instr(address, '@') + 1) THEN NULL ELSE domain END
  FROM recipients;
DROP TABLE recipients;
ALTER TABLE "recipients-v23" RENAME TO recipients;
CREATE INDEX "recipients-domain" ON recipients
  (coalesce(oddDomain, substr(address, instr(address, '@') + 1)), timeStamp, eventId,
   notificationType, oddDomain);
CREATE TRIGGER "rollup_domain_day-delete" AFTER DELETE ON recipients BEGIN
  UPDATE rollup_domain_day SET recipients = recipients - 1
  WHERE notificationType = CASE OLD.notificationType
      WHEN 0 THEN 'Bounce' WHEN 1 THEN 'Complaint' WHEN 2 THEN 'Delivery' WHEN 3 THEN 'Send'
      WHEN 4 THEN 'Reject' WHEN 5 THEN 'Open' WHEN 6 THEN 'Click' WHEN 7 THEN 'Rendering Failure'
      WHEN 8 THEN 'DeliveryDelay' WHEN 9 THEN 'Subscription' ELSE OLD.notificationType END
    AND day = CASE WHEN typeof(OLD.timeStamp) = 'integer'
      THEN strftime('%Y-%m-%d', OLD.timeStamp / 1000.0, 'unixepoch')
      ELSE substr(OLD.timeStamp, 1, 10) END
    AND domain = coalesce(OLD.oddDomain, substr(OLD.address, instr(OLD.address, '@') + 1))
    AND bounceType = coalesce((SELECT bounceType FROM SesEventMessages WHERE id = OLD.eventId), '');
END;
CREATE TRIGGER "rollup_recipient-delete" AFTER DELETE ON recipients BEGIN
  UPDATE rollup_recipient_day SET recipients = recipients - 1
  WHERE day = CASE WHEN typeof(OLD.timeStamp) = 'integer'
      THEN strftime('%Y-%m-%d', OLD.timeStamp / 1000.0, 'unixepoch')
      ELSE substr(OLD.timeStamp, 1, 10) END
    AND domain = coalesce(OLD.oddDomain, substr(OLD.address, instr(OLD.address, '@') + 1));
  UPDATE rollup_recipient_hour SET recipients = recipients - 1
  WHERE hour = CASE WHEN typeof(OLD.timeStamp) = 'integer'
      THEN strftime('%Y-%m-%dT%H', OLD.timeStamp / 1000.0, 'unixepoch')
      ELSE substr(OLD.timeStamp, 1, 13) END
    AND domain = coalesce(OLD.oddDomain, substr(OLD.address, instr(OLD.address, '@') + 1));
END;

-- version 24
-- A suppression entry's display (the address as first given) is '' when
-- it is the folded address itself byte for byte, the usual case (SES
-- writes addresses in lower case): the address is kept once. '' and not
-- NULL because display is NOT NULL (version 3), and a given address is
-- never empty. Entries written before keep their text; both read the
-- same in the sqlite3 shell as
--   coalesce(nullif(display, ''), address)
-- which is what seslog reads (src/suppression.c).
-- suppression.domain is gone too: it repeated the address's part after
-- its '@' (every address seslog lists has exactly one, src/address.c).
-- "suppression-domain" indexes the domain as the same expression as
-- "recipients-domain" (version 23), which is what to write in the
-- sqlite3 shell (src/suppression.c writes it the same way):
--   coalesce(oddDomain, substr(address, instr(address, '@') + 1))
-- oddDomain is NULL but in a row whose old domain differed from the
-- address's part after its '@' (only a hand edit made one): there it
-- keeps that value. The table is rebuilt with every row, its columns
-- and their order otherwise unchanged, and the view of version 19 with
-- it (a view on the table must not exist while it is renamed).
DROP VIEW suppression_history_full;
CREATE TABLE "suppression-v24" (
  address TEXT PRIMARY KEY,          -- folded (ASCII lower case)
  id INTEGER NOT NULL UNIQUE,        -- insertion order: the listing's order and cursor
  display TEXT NOT NULL,             -- as first given; '' when it is address itself
  reason TEXT NOT NULL,              -- BOUNCE, COMPLAINT or MANUAL
  createdAt INTEGER NOT NULL,        -- ms: the first event's timeStamp, or when added by hand
  lastEventAt INTEGER,               -- ms: timeStamp of the latest event that (re)suppressed it
  events INTEGER NOT NULL DEFAULT 0, -- SES events that (re)suppressed it
  messageId TEXT,                    -- mail.messageId of that latest event
  eventId INTEGER,                   -- SesEventMessages.id of that latest event
  note TEXT,
  ambiguous INTEGER NOT NULL DEFAULT 0, -- 1: a complaint that named several recipients
  addedAt INTEGER,                   -- ms, wall clock; NULL: row written (version 19)
  addedBy TEXT,                      -- the actor of the addition
  oddDomain TEXT                     -- NULL: the domain is the address's part after its '@'
) WITHOUT ROWID;
INSERT INTO "suppression-v24" (address, id, display, reason, createdAt, lastEventAt, events,
    messageId, eventId, note, ambiguous, addedAt, addedBy, oddDomain)
  SELECT address, id, display, reason, createdAt, lastEventAt, events, messageId, eventId, note,
      ambiguous, addedAt, addedBy,
      CASE WHEN domain = substr(address, instr(address, '@') + 1) THEN NULL ELSE domain END
  FROM suppression;
DROP TABLE suppression;
ALTER TABLE "suppression-v24" RENAME TO suppression;
CREATE INDEX "suppression-reason" ON suppression (reason, id);
CREATE INDEX "suppression-domain" ON suppression
  (coalesce(oddDomain, substr(address, instr(address, '@') + 1)), id);
CREATE VIEW suppression_history_full AS
  SELECT id, address, at, action, actor, reason, note, messageId, eventId, eventAt
  FROM suppression_history
  UNION ALL
  SELECT NULL, address, addedAt, 'added', addedBy, reason, note, messageId, eventId, lastEventAt
  FROM suppression WHERE addedAt IS NOT NULL;

-- version 25
-- An entry made by a rule no longer repeats what its event (eventId)
-- holds, about 85 bytes an entry: messageId is NULL while it is the
-- event's messageId, and then note is NULL too while it is the note the
-- rule derives from the event (a permanent bounce's, a complaint's that
-- names one recipient). An entry whose messageId is stored keeps its note
-- as stored (NULL: none); a manual entry (eventId NULL) is read as it is.
-- Their values, as every reader of seslog reads them, in the sqlite3 shell:
--   coalesce(s.messageId,
--     (SELECT e.messageId FROM SesEventMessages e WHERE e.id = s.eventId))
--   coalesce(s.note, CASE WHEN s.messageId IS NULL THEN
--     (SELECT CASE WHEN e.notificationType = 'Bounce' AND e.bounceType = 'Permanent'
--        THEN 'permanent bounce (' || coalesce(e.bounceSubType, 'no subtype') || ')'
--        WHEN e.notificationType = 'Complaint'
--        THEN 'complaint (' || coalesce(e.complaintFeedbackType, 'no feedback type') || ')' END
--      FROM SesEventMessages e WHERE e.id = s.eventId) END)
-- (FROM suppression s). Retention stores both into the entry before it
-- deletes the event, as does a later event that updates the entry; an
-- event deleted by hand should get the same first:
--   UPDATE suppression AS s SET messageId = <the first>, note = <the second>
--   WHERE s.eventId = <the event's id> AND s.messageId IS NULL;
-- Existing entries get the same form where it reads the same values; the
-- view of version 19 reads the values so.
UPDATE suppression SET messageId = NULL,
    note = CASE WHEN note IS (SELECT CASE WHEN e.notificationType = 'Bounce'
        AND e.bounceType = 'Permanent'
        THEN 'permanent bounce (' || coalesce(e.bounceSubType, 'no subtype') || ')'
        WHEN e.notificationType = 'Complaint'
        THEN 'complaint (' || coalesce(e.complaintFeedbackType, 'no feedback type') || ')' END
      FROM SesEventMessages e WHERE e.id = suppression.eventId) THEN NULL ELSE note END
  WHERE eventId IS NOT NULL
    AND messageId = (SELECT e.messageId FROM SesEventMessages e WHERE e.id = suppression.eventId)
    AND (note IS NOT NULL OR (SELECT CASE WHEN e.notificationType = 'Bounce'
        AND e.bounceType = 'Permanent' THEN 1 WHEN e.notificationType = 'Complaint' THEN 1 END
      FROM SesEventMessages e WHERE e.id = suppression.eventId) IS NULL);
-- reason is stored as a code (a record holds 0 and 1 in no byte, instead
-- of 6 to 9 bytes of text, in the table and in "suppression-reason"):
--   0 BOUNCE, 1 COMPLAINT, 2 MANUAL
-- (any other text, which seslog never stores, is kept as it is). Its name
-- in the sqlite3 shell:
--   CASE reason WHEN 0 THEN 'BOUNCE' WHEN 1 THEN 'COMPLAINT' WHEN 2 THEN 'MANUAL'
--     ELSE reason END
-- e.g. SELECT count(*) FROM suppression WHERE reason = 1; -- complaints
-- addedBy (version 19: the actor of an addition whose "added" history row
-- is not written yet) is a code too: 0 permanent-bounce, 1 complaint,
-- 2 soft-bounce, 3 api, 4 cli (another actor as its text); its name:
--   CASE addedBy WHEN 0 THEN 'permanent-bounce' WHEN 1 THEN 'complaint'
--     WHEN 2 THEN 'soft-bounce' WHEN 3 THEN 'api' WHEN 4 THEN 'cli' ELSE addedBy END
-- The table is keyed by id (its rowid) instead of address: each index
-- entry of a table WITHOUT ROWID repeated the address (about 30 bytes)
-- to find its row, where the rowid takes 2 or 3; address is UNIQUE (its
-- index replaces the one of id), "suppression-reason" and
-- "suppression-domain" index the reason and the domain alone, in id order
-- as every index of a rowid table is.
-- The table is rebuilt with every row (reason and addedBy now INTEGER), its columns
-- and their order otherwise unchanged, and the view of version 19 with it,
-- reading the values as above. suppression_history keeps the names.
DROP VIEW suppression_history_full;
CREATE TABLE "suppression-v25" (
  address TEXT NOT NULL UNIQUE,      -- folded (ASCII lower case)
  id INTEGER PRIMARY KEY,            -- insertion order: the listing's order and cursor
  display TEXT NOT NULL,             -- as first given; '' when it is address itself
  reason INTEGER NOT NULL,           -- 0 BOUNCE, 1 COMPLAINT, 2 MANUAL
  createdAt INTEGER NOT NULL,        -- ms: the first event's timeStamp, or when added by hand
  lastEventAt INTEGER,               -- ms: timeStamp of the latest event that (re)suppressed it
  events INTEGER NOT NULL DEFAULT 0, -- SES events that (re)suppressed it
  messageId TEXT,                    -- mail.messageId of that latest event; NULL: the event's
  eventId INTEGER,                   -- SesEventMessages.id of that latest event
  note TEXT,                         -- NULL with messageId NULL: the rule's, from the event
  ambiguous INTEGER NOT NULL DEFAULT 0, -- 1: a complaint that named several recipients
  addedAt INTEGER,                   -- ms, wall clock; NULL: row written (version 19)
  addedBy INTEGER,                   -- the actor of the addition: 0 permanent-bounce ... 4 cli
  oddDomain TEXT                     -- NULL: the domain is the address's part after its '@'
);
INSERT INTO "suppression-v25" (address, id, display, reason, createdAt, lastEventAt, events,
    messageId, eventId, note, ambiguous, addedAt, addedBy, oddDomain)
  SELECT address, id, display,
      CASE reason WHEN 'BOUNCE' THEN 0 WHEN 'COMPLAINT' THEN 1 WHEN 'MANUAL' THEN 2
        ELSE reason END,
      createdAt, lastEventAt, events, messageId, eventId, note, ambiguous, addedAt,
      CASE addedBy WHEN 'permanent-bounce' THEN 0 WHEN 'complaint' THEN 1
        WHEN 'soft-bounce' THEN 2 WHEN 'api' THEN 3 WHEN 'cli' THEN 4 ELSE addedBy END,
      oddDomain
  FROM suppression;
DROP TABLE suppression;
ALTER TABLE "suppression-v25" RENAME TO suppression;
CREATE INDEX "suppression-reason" ON suppression (reason);
CREATE INDEX "suppression-domain" ON suppression
  (coalesce(oddDomain, substr(address, instr(address, '@') + 1)));
CREATE VIEW suppression_history_full AS
  SELECT id, address, at, action, actor, reason, note, messageId, eventId, eventAt
  FROM suppression_history
  UNION ALL
  SELECT NULL, s.address, s.addedAt, 'added',
    CASE s.addedBy WHEN 0 THEN 'permanent-bounce' WHEN 1 THEN 'complaint'
      WHEN 2 THEN 'soft-bounce' WHEN 3 THEN 'api' WHEN 4 THEN 'cli' ELSE s.addedBy END,
    CASE s.reason WHEN 0 THEN 'BOUNCE' WHEN 1 THEN 'COMPLAINT' WHEN 2 THEN 'MANUAL'
      ELSE s.reason END,
    coalesce(s.note, CASE WHEN s.messageId IS NULL THEN
      (SELECT CASE WHEN e.notificationType = 'Bounce' AND e.bounceType = 'Permanent'
         THEN 'permanent bounce (' || coalesce(e.bounceSubType, 'no subtype') || ')'
         WHEN e.notificationType = 'Complaint'
         THEN 'complaint (' || coalesce(e.complaintFeedbackType, 'no feedback type') || ')' END
       FROM SesEventMessages e WHERE e.id = s.eventId) END),
    coalesce(s.messageId,
      (SELECT e.messageId FROM SesEventMessages e WHERE e.id = s.eventId)),
    s.eventId, s.lastEventAt
  FROM suppression s WHERE s.addedAt IS NOT NULL;
-- "timeStamp-Index" and "sourceAddress-timeStamp-Index" (not contract
-- names) key the event's time as the integer recipients.timeStamp holds
-- (version 23), about 20 bytes an event less than the text in each: the
-- listing of every event (no other filter) and of a sender's only sort
-- and compare it. A text not in seslog's form (an event edited
-- by hand) is kept as it is, and sorts after every integer. In the
-- sqlite3 shell, write the same expression to use it:
--   SELECT count(*) FROM SesEventMessages WHERE (CASE WHEN strftime('%Y-%m-%dT%H:%M:%fZ',
--     timeStamp, '+0 seconds') = timeStamp THEN unixepoch(substr(timeStamp, 1, 19)) * 1000
--     + CAST(substr(timeStamp, 21, 3) AS INTEGER) ELSE timeStamp END) >= 1780000000000;
DROP INDEX "timeStamp-Index";
CREATE INDEX "timeStamp-Index" ON SesEventMessages ((CASE WHEN strftime('%Y-%m-%dT%H:%M:%fZ',
    timeStamp, '+0 seconds') = timeStamp THEN unixepoch(substr(timeStamp, 1, 19)) * 1000
    + CAST(substr(timeStamp, 21, 3) AS INTEGER) ELSE timeStamp END));
DROP INDEX "sourceAddress-timeStamp-Index";
CREATE INDEX "sourceAddress-timeStamp-Index" ON SesEventMessages (
  lower(CASE WHEN instr(source, '<') > 0 AND instr(source, '>') > instr(source, '<') THEN
    substr(source, instr(source, '<') + 1, instr(source, '>') - instr(source, '<') - 1)
    ELSE trim(source) END),
  (CASE WHEN strftime('%Y-%m-%dT%H:%M:%fZ', timeStamp, '+0 seconds') = timeStamp
    THEN unixepoch(substr(timeStamp, 1, 19)) * 1000 + CAST(substr(timeStamp, 21, 3) AS INTEGER)
    ELSE timeStamp END));
