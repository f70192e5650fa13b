-- Issue 14: the audit chain off the hot path. A use case writes its events unsealed (no chain position, no
-- hashes) inside its own transaction, without the global head lock; the sealer (src/jobs/audit_sealer.rs)
-- gives committed events their chain position `seq`, `prev_hash` and `hash` in the order it sees them, within
-- `audit.seal_interval_ms` (a maximum merge delay, as Certificate Transparency logs have). `event_no` numbers
-- events as written: the stable order of reads, sealed or not. Existing events keep `event_no = seq`.
ALTER TABLE audit_events DROP CONSTRAINT audit_events_pkey;
ALTER TABLE audit_events ADD COLUMN event_no BIGINT;
ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only;
UPDATE audit_events SET event_no = seq;
ALTER TABLE audit_events ENABLE TRIGGER audit_events_append_only;
CREATE SEQUENCE audit_events_event_no_seq OWNED BY audit_events.event_no;
SELECT setval('audit_events_event_no_seq', COALESCE((SELECT MAX(event_no) FROM audit_events), 0) + 1, false);
ALTER TABLE audit_events
    ALTER COLUMN event_no SET DEFAULT nextval('audit_events_event_no_seq'),
    ALTER COLUMN event_no SET NOT NULL,
    ALTER COLUMN seq DROP NOT NULL,
    ALTER COLUMN prev_hash DROP NOT NULL,
    ALTER COLUMN hash DROP NOT NULL,
    ADD PRIMARY KEY (event_no),
    ADD CONSTRAINT audit_events_sealed_whole
        CHECK ((seq IS NULL) = (hash IS NULL) AND (seq IS NULL) = (prev_hash IS NULL));
CREATE UNIQUE INDEX audit_events_seq ON audit_events (seq);
-- The unsealed tail, small by design: what the sealer takes next and what verification reports.
CREATE INDEX audit_events_unsealed ON audit_events (event_no) WHERE seq IS NULL;
-- Reads page on `event_no` (set when written) instead of the chain position (set when sealed).
DROP INDEX audit_events_entity;
DROP INDEX audit_events_actor;
DROP INDEX audit_events_action;
DROP INDEX audit_events_occurred;
CREATE INDEX audit_events_entity ON audit_events (entity_type, entity_id, event_no);
CREATE INDEX audit_events_actor ON audit_events (actor_id, event_no);
CREATE INDEX audit_events_action ON audit_events (action, event_no);
CREATE INDEX audit_events_occurred ON audit_events (occurred_at, event_no);

-- Still append-only, with one exception: sealing an unsealed event sets its seq, prev_hash and hash once,
-- changing nothing else.
CREATE FUNCTION audit_events_seal_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.hash IS NULL AND NEW.hash IS NOT NULL
       AND to_jsonb(NEW) - 'seq' - 'prev_hash' - 'hash' = to_jsonb(OLD) - 'seq' - 'prev_hash' - 'hash' THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
DROP TRIGGER audit_events_append_only ON audit_events;
CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_seal_only();
