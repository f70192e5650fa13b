-- Admin level 3 in the gazetteer (issue 16: COD files with ADM3).
ALTER TABLE areas DROP CONSTRAINT areas_level_check;
ALTER TABLE areas ADD CONSTRAINT areas_level_check CHECK (level IN (1, 2, 3));
