-- Back to the synchronous chain. Seal every event first (`qip-pool audit verify --seal`): unsealed rows
-- cannot satisfy the NOT NULL constraints restored here.
CREATE TABLE audit_events_chained (
    seq             BIGINT PRIMARY KEY NOT NULL,
    id              TEXT NOT NULL UNIQUE,
    occurred_at     TIMESTAMP NOT NULL,
    actor_id        TEXT,
    actor_username  TEXT,
    organization_id TEXT,
    hat             TEXT,
    acting          BOOLEAN NOT NULL DEFAULT FALSE,
    action          TEXT NOT NULL,
    entity_type     TEXT NOT NULL,
    entity_id       TEXT,
    request_id      TEXT,
    client_addr     TEXT,
    outcome         TEXT NOT NULL,
    reason          TEXT,
    before_state    TEXT,
    after_state     TEXT,
    prev_hash       TEXT NOT NULL,
    hash            TEXT NOT NULL
);
INSERT INTO audit_events_chained SELECT seq, id, occurred_at, actor_id, actor_username, organization_id, hat,
    acting, action, entity_type, entity_id, request_id, client_addr, outcome, reason, before_state, after_state,
    prev_hash, hash
FROM audit_events ORDER BY seq;
DROP TABLE audit_events;
ALTER TABLE audit_events_chained RENAME TO audit_events;
CREATE INDEX audit_events_entity ON audit_events (entity_type, entity_id, seq);
CREATE INDEX audit_events_actor ON audit_events (actor_id, seq);
CREATE INDEX audit_events_action ON audit_events (action, seq);
CREATE INDEX audit_events_occurred ON audit_events (occurred_at, seq);
CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only: UPDATE refused');
END;
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only: DELETE refused');
END;
