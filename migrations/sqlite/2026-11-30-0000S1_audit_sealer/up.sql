-- Issue 14: the audit chain off the hot path. A use case writes its events unsealed (no chain position, no
-- hashes) inside its own transaction; the sealer (src/jobs/audit_sealer.rs) gives committed events their chain
-- position `seq`, `prev_hash` and `hash` in commit order, within `audit.seal_interval_ms`. `event_no` numbers
-- events as written: the stable order of reads, sealed or not. Existing events keep `event_no = seq`.
-- SQLite cannot relax NOT NULL or move a primary key in place: the table is rebuilt (DROP TABLE fires no
-- DELETE trigger).
CREATE TABLE audit_events_rebuilt (
    event_no        INTEGER PRIMARY KEY NOT NULL,
    seq             BIGINT UNIQUE,
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
    prev_hash       TEXT,
    hash            TEXT,
    CHECK ((seq IS NULL) = (hash IS NULL) AND (seq IS NULL) = (prev_hash IS NULL))
);
INSERT INTO audit_events_rebuilt (event_no, seq, id, occurred_at, actor_id, actor_username,
    organization_id, hat, acting, action, entity_type, entity_id, request_id, client_addr, outcome, reason,
    before_state, after_state, prev_hash, hash)
SELECT seq, seq, id, occurred_at, actor_id, actor_username, organization_id, hat, acting, action, entity_type,
    entity_id, request_id, client_addr, outcome, reason, before_state, after_state, prev_hash, hash
FROM audit_events ORDER BY seq;
DROP TABLE audit_events;
ALTER TABLE audit_events_rebuilt RENAME TO audit_events;
CREATE INDEX audit_events_unsealed ON audit_events (event_no) WHERE seq IS NULL;
CREATE INDEX audit_events_entity ON audit_events (entity_type, entity_id, event_no);
CREATE INDEX audit_events_actor ON audit_events (actor_id, event_no);
CREATE INDEX audit_events_action ON audit_events (action, event_no);
CREATE INDEX audit_events_occurred ON audit_events (occurred_at, event_no);

-- Still append-only, with one exception: sealing an unsealed event sets its seq, prev_hash and hash once,
-- changing nothing else.
CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
WHEN OLD.hash IS NOT NULL OR NEW.hash IS NULL
    OR NEW.event_no IS NOT OLD.event_no OR NEW.id IS NOT OLD.id OR NEW.occurred_at IS NOT OLD.occurred_at
    OR NEW.actor_id IS NOT OLD.actor_id OR NEW.actor_username IS NOT OLD.actor_username
    OR NEW.organization_id IS NOT OLD.organization_id OR NEW.hat IS NOT OLD.hat OR NEW.acting IS NOT OLD.acting
    OR NEW.action IS NOT OLD.action OR NEW.entity_type IS NOT OLD.entity_type
    OR NEW.entity_id IS NOT OLD.entity_id OR NEW.request_id IS NOT OLD.request_id
    OR NEW.client_addr IS NOT OLD.client_addr OR NEW.outcome IS NOT OLD.outcome OR NEW.reason IS NOT OLD.reason
    OR NEW.before_state IS NOT OLD.before_state OR NEW.after_state IS NOT OLD.after_state
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only: UPDATE refused');
END;
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only: DELETE refused');
END;
