-- Reference data, pools with versioned QIP policy settings, proposals and their versions (DESIGN.md §2, §4–§6).
CREATE TABLE areas (
    pcode        TEXT PRIMARY KEY NOT NULL,
    level        INTEGER NOT NULL CHECK (level IN (1, 2)),
    name         TEXT NOT NULL,
    parent_pcode TEXT REFERENCES areas (pcode),
    lat          DOUBLE PRECISION,
    lon          DOUBLE PRECISION
);
CREATE INDEX areas_parent ON areas (parent_pcode, pcode);

CREATE TABLE sectors (
    code            TEXT PRIMARY KEY NOT NULL,
    name            TEXT NOT NULL,
    vocabulary      TEXT NOT NULL,
    humanitarian    BOOLEAN NOT NULL
);
-- IASC global clusters: IATI sector vocabulary 10 (HumanitarianGlobalClusters).
INSERT INTO sectors (code, name, vocabulary, humanitarian) VALUES
    ('CCCM', 'Camp Coordination and Camp Management', '10', TRUE),
    ('EDU', 'Education', '10', TRUE),
    ('ERY', 'Early Recovery', '10', TRUE),
    ('FSC', 'Food Security', '10', TRUE),
    ('HEA', 'Health', '10', TRUE),
    ('LOG', 'Logistics', '10', TRUE),
    ('NUT', 'Nutrition', '10', TRUE),
    ('PRO', 'Protection', '10', TRUE),
    ('SHL', 'Emergency Shelter and NFI', '10', TRUE),
    ('TEL', 'Emergency Telecommunications', '10', TRUE),
    ('WSH', 'Water Sanitation Hygiene', '10', TRUE),
-- QIP sectors that are not humanitarian clusters: the reporting organisation's own vocabulary (IATI 99).
    ('QIP-INF', 'Infrastructure', '99', FALSE),
    ('QIP-ROL', 'Rule of law', '99', FALSE),
    ('QIP-GOV', 'Governance', '99', FALSE),
    ('QIP-LIV', 'Livelihoods', '99', FALSE),
    ('QIP-CSE', 'Community security', '99', FALSE),
    ('QIP-CUL', 'Culture and sport', '99', FALSE);

CREATE TABLE pools (
    id               TEXT PRIMARY KEY NOT NULL,
    code             TEXT NOT NULL UNIQUE,
    name             TEXT NOT NULL,
    currency         TEXT NOT NULL,
    funding_start    DATE NOT NULL,
    funding_end      DATE NOT NULL,
    settings_version INTEGER NOT NULL,
    version          BIGINT NOT NULL,
    created_by       TEXT NOT NULL,
    created_at       TIMESTAMP NOT NULL,
    updated_at       TIMESTAMP NOT NULL
);

-- Every version of a pool's QIP policy settings is kept; proposals record the one they were checked against.
CREATE TABLE pool_settings (
    pool_id    TEXT NOT NULL REFERENCES pools (id),
    version    INTEGER NOT NULL,
    settings   TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (pool_id, version)
);

CREATE TABLE proposals (
    id                    TEXT PRIMARY KEY NOT NULL,
    pool_id               TEXT NOT NULL REFERENCES pools (id),
    organization_id       TEXT NOT NULL REFERENCES organizations (id),
    reference             TEXT UNIQUE,
    state                 TEXT NOT NULL,
    current_version       INTEGER NOT NULL,
    version               BIGINT NOT NULL,
    title                 TEXT NOT NULL,
    search_text           TEXT NOT NULL,
    sector_code           TEXT,
    adm1_pcode            TEXT,
    adm2_pcode            TEXT,
    requested_minor       BIGINT,
    pool_settings_version INTEGER,
    created_by            TEXT NOT NULL,
    created_at            TIMESTAMP NOT NULL,
    updated_at            TIMESTAMP NOT NULL,
    first_submitted_at    TIMESTAMP,
    submitted_at          TIMESTAMP,
    submitted_by          TEXT
);
CREATE INDEX proposals_state ON proposals (state, id);
CREATE INDEX proposals_pool ON proposals (pool_id, id);
CREATE INDEX proposals_org ON proposals (organization_id, id);
CREATE INDEX proposals_sector ON proposals (sector_code, id);
CREATE INDEX proposals_adm1 ON proposals (adm1_pcode, id);
CREATE INDEX proposals_adm2 ON proposals (adm2_pcode, id);
CREATE INDEX proposals_submitted ON proposals (first_submitted_at, id);

CREATE TABLE proposal_versions (
    proposal_id           TEXT NOT NULL REFERENCES proposals (id),
    number                INTEGER NOT NULL,
    status                TEXT NOT NULL,
    content               TEXT NOT NULL,
    budget_total_minor    BIGINT,
    requested_minor       BIGINT,
    duration_days         INTEGER,
    waiver_reasons        TEXT,
    pool_settings_version INTEGER,
    created_by            TEXT NOT NULL,
    created_at            TIMESTAMP NOT NULL,
    submitted_by          TEXT,
    submitted_at          TIMESTAMP,
    PRIMARY KEY (proposal_id, number)
);

-- Gap-free reference numbers per pool and year: taken under the row lock in the submitting transaction.
CREATE TABLE reference_counters (
    pool_id TEXT NOT NULL REFERENCES pools (id),
    year    INTEGER NOT NULL,
    last    INTEGER NOT NULL,
    PRIMARY KEY (pool_id, year)
);
