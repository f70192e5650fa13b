PRAGMA foreign_keys = OFF;
BEGIN;
DELETE FROM areas WHERE level = 3;
CREATE TABLE areas_new (
    pcode        TEXT PRIMARY KEY NOT NULL,
    level        INTEGER NOT NULL CHECK (level IN (1, 2)),
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
COMMIT;
PRAGMA foreign_keys = ON;
