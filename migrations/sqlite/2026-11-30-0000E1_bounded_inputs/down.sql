ALTER TABLE flags DROP COLUMN matched_activities_total;
ALTER TABLE flags DROP COLUMN matched_activities;
DROP INDEX activities_import_key;
ALTER TABLE activities DROP COLUMN import_key;
