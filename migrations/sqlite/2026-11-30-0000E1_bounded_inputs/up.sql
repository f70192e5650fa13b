-- Bounded inputs (issue 11 item 5).
-- A 3W row's natural key within its organisation: the file's activity id (`#activity+code`/`#activity+id`) or a
-- hash of the row's normalised content. Re-importing a file finds its rows again instead of duplicating them.
-- Activities registered one by one have none (NULLs never collide).
ALTER TABLE activities ADD COLUMN import_key TEXT;
CREATE UNIQUE INDEX activities_import_key ON activities (organization_id, import_key);

-- The one system duplication flag of a proposal lists the overlapping activities (nearest first, bounded) and
-- counts them all.
ALTER TABLE flags ADD COLUMN matched_activities TEXT;
ALTER TABLE flags ADD COLUMN matched_activities_total INTEGER;
