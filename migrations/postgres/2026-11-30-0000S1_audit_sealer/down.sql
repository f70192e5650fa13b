-- Back to the synchronous chain. Seal every event first (`qip-pool audit verify --seal`): unsealed rows
-- cannot satisfy the NOT NULL constraints restored here.
DROP TRIGGER audit_events_append_only ON audit_events;
CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION refuse_append_only_change();
DROP FUNCTION audit_events_seal_only();
DROP INDEX audit_events_entity;
DROP INDEX audit_events_actor;
DROP INDEX audit_events_action;
DROP INDEX audit_events_occurred;
DROP INDEX audit_events_unsealed;
DROP INDEX audit_events_seq;
ALTER TABLE audit_events
    DROP CONSTRAINT audit_events_sealed_whole,
    DROP CONSTRAINT audit_events_pkey,
    ALTER COLUMN seq SET NOT NULL,
    ALTER COLUMN prev_hash SET NOT NULL,
    ALTER COLUMN hash SET NOT NULL,
    ADD PRIMARY KEY (seq);
ALTER TABLE audit_events DROP COLUMN event_no;
CREATE INDEX audit_events_entity ON audit_events (entity_type, entity_id, seq);
CREATE INDEX audit_events_actor ON audit_events (actor_id, seq);
CREATE INDEX audit_events_action ON audit_events (action, seq);
CREATE INDEX audit_events_occurred ON audit_events (occurred_at, seq);
