-- Admin level 3 in the gazetteer (issue 16: COD files with ADM3). SQLite's table rebuild procedure
-- (https://sqlite.org/lang_altertable.html#otheralter): foreign keys off, copy, swap, check, foreign keys on.
PRAGMA foreign_keys = OFF;
BEGIN;
CREATE TABLE areas_new (
    pcode        TEXT PRIMARY KEY NOT NULL,
    level        INTEGER NOT NULL CHECK (level IN (1, 2, 3)),
    name         TEXT NOT NULL,
    parent_pcode TEXT REFERENCES areas (pcode),
    lat          DOUBLE,
    lon          DOUBLE
);
INSERT INTO areas_new (pcode, level, name, parent_pcode, lat, lon)
    SELECT pcode, level, name, parent_pcode, lat, lon FROM areas;
DROP TABLE areas;
ALTER TABLE areas_new RENAME TO areas;
CREATE INDEX areas_parent ON areas (parent_pcode, pcode);
PRAGMA foreign_key_check;
COMMIT;
PRAGMA foreign_keys = ON;
