-- Append-only, hash-chained audit trail (DESIGN.md §7).
CREATE TABLE audit_events (
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
CREATE INDEX audit_events_entity ON audit_events (entity_type, entity_id, seq);
CREATE INDEX audit_events_actor ON audit_events (actor_id, seq);
CREATE INDEX audit_events_action ON audit_events (action, seq);
CREATE INDEX audit_events_occurred ON audit_events (occurred_at, seq);

-- The chain head: one row, updated under the write lock by every append.
CREATE TABLE audit_head (
    id   INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    seq  BIGINT NOT NULL,
    hash TEXT NOT NULL
);
INSERT INTO audit_head (id, seq, hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only: UPDATE refused');
END;
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only: DELETE refused');
END;
