DROP TABLE audit_head;
DROP TABLE audit_events;
DROP FUNCTION refuse_append_only_change();
