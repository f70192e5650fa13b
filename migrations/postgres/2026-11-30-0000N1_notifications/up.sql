-- Notifications (issue 17, docs/NOTIFICATIONS.md): a transactional outbox written in the same transaction as
-- the audit event it comes from, deliveries per recipient and channel, the in-app feed, email preferences and
-- the organisations' webhook endpoints.
CREATE TABLE notification_events (
    id              TEXT PRIMARY KEY,          -- uuid v7, stable: the `webhook-id` of every delivery
    kind            TEXT NOT NULL,             -- e.g. consultation.requested
    audit_event_id  TEXT,                      -- the audit event it was captured from (reminders: none)
    dedupe_key      TEXT UNIQUE,               -- reminders: one per round/report/step and kind
    entity_type     TEXT NOT NULL,
    entity_id       TEXT,
    proposal_id     TEXT,
    summary         TEXT NOT NULL,             -- neutral, never confidential text
    link            TEXT NOT NULL,             -- API path of the resource
    payload         TEXT NOT NULL,             -- JSON `data` of webhook bodies
    created_at      TIMESTAMP NOT NULL
);
CREATE INDEX notification_events_created ON notification_events (created_at);

CREATE TABLE notification_deliveries (
    id                TEXT PRIMARY KEY,
    event_id          TEXT NOT NULL REFERENCES notification_events (id),
    channel           TEXT NOT NULL,           -- email | webhook
    user_id           TEXT,                    -- email: the reader
    webhook_id        TEXT,                    -- webhook: the endpoint
    reason            TEXT NOT NULL,           -- why this recipient got it
    digest            BOOLEAN NOT NULL DEFAULT FALSE,
    status            TEXT NOT NULL,           -- pending | delivered | dead
    attempts          INTEGER NOT NULL DEFAULT 0,
    next_attempt_at   TIMESTAMP NOT NULL,
    locked_until      TIMESTAMP,
    locked_by         TEXT,
    last_error        TEXT,
    last_status_code  INTEGER,
    delivered_at      TIMESTAMP,
    created_at        TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX notification_deliveries_once_email ON notification_deliveries (event_id, user_id) WHERE channel = 'email';
CREATE UNIQUE INDEX notification_deliveries_once_webhook ON notification_deliveries (event_id, webhook_id) WHERE channel = 'webhook';
CREATE INDEX notification_deliveries_due ON notification_deliveries (status, next_attempt_at);
CREATE INDEX notification_deliveries_by_webhook ON notification_deliveries (webhook_id, created_at);

CREATE TABLE notifications (
    id          TEXT PRIMARY KEY,              -- uuid v7: the feed's cursor order
    user_id     TEXT NOT NULL REFERENCES users (id),
    event_id    TEXT NOT NULL REFERENCES notification_events (id),
    kind        TEXT NOT NULL,
    summary     TEXT NOT NULL,
    reason      TEXT NOT NULL,
    link        TEXT NOT NULL,
    read_at     TIMESTAMP,
    created_at  TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX notifications_once ON notifications (user_id, event_id);
CREATE INDEX notifications_feed ON notifications (user_id, id);

CREATE TABLE notification_preferences (
    user_id     TEXT PRIMARY KEY REFERENCES users (id),
    email_mode  TEXT NOT NULL,                 -- immediate | daily_digest | off
    updated_at  TIMESTAMP NOT NULL
);

CREATE TABLE webhook_endpoints (
    id               TEXT PRIMARY KEY,
    organization_id  TEXT NOT NULL REFERENCES organizations (id),
    url              TEXT NOT NULL,
    description      TEXT NOT NULL,
    secret           TEXT NOT NULL,            -- whsec_…: needed to sign, so kept; shown once
    active           BOOLEAN NOT NULL,
    version          BIGINT NOT NULL,
    created_by       TEXT NOT NULL,
    created_at       TIMESTAMP NOT NULL,
    updated_at       TIMESTAMP NOT NULL
);
CREATE INDEX webhook_endpoints_org ON webhook_endpoints (organization_id);
