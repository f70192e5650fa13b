DELETE FROM areas WHERE level = 3;
ALTER TABLE areas DROP CONSTRAINT areas_level_check;
ALTER TABLE areas ADD CONSTRAINT areas_level_check CHECK (level IN (1, 2));
