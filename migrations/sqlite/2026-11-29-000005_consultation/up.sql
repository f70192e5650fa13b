-- Humanitarian consultation (DESIGN.md §3): the 3W activity registry, consultation rules, rounds, consultees,
-- responses and conflict flags.
CREATE TABLE activities (
    id              TEXT PRIMARY KEY NOT NULL,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    title           TEXT NOT NULL,
    sector_code     TEXT NOT NULL REFERENCES sectors (code),
    adm1_pcode      TEXT NOT NULL REFERENCES areas (pcode),
    adm2_pcode      TEXT NOT NULL REFERENCES areas (pcode),
    lat             DOUBLE,
    lon             DOUBLE,
    start_date      DATE NOT NULL,
    end_date        DATE,
    status          TEXT NOT NULL,
    version         BIGINT NOT NULL,
    created_by      TEXT NOT NULL,
    created_at      TIMESTAMP NOT NULL,
    updated_at      TIMESTAMP NOT NULL
);
CREATE INDEX activities_screening ON activities (sector_code, status);
CREATE INDEX activities_org ON activities (organization_id, id);

CREATE TABLE consultation_rules (
    id              TEXT PRIMARY KEY NOT NULL,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    sector_code     TEXT REFERENCES sectors (code),
    adm1_pcode      TEXT REFERENCES areas (pcode),
    always_consult  BOOLEAN NOT NULL,
    created_by      TEXT NOT NULL,
    created_at      TIMESTAMP NOT NULL
);

CREATE TABLE consultation_rounds (
    id             TEXT PRIMARY KEY NOT NULL,
    proposal_id    TEXT NOT NULL REFERENCES proposals (id),
    version_number INTEGER NOT NULL,
    round_number   INTEGER NOT NULL,
    opened_at      TIMESTAMP NOT NULL,
    deadline       TIMESTAMP NOT NULL,
    silence_is_consent BOOLEAN NOT NULL,
    closed_at      TIMESTAMP,
    closed_by      TEXT,
    outcome        TEXT,
    UNIQUE (proposal_id, round_number)
);
CREATE INDEX consultation_rounds_open ON consultation_rounds (closed_at, deadline);

CREATE TABLE consultees (
    round_id        TEXT NOT NULL REFERENCES consultation_rounds (id),
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    reasons         TEXT NOT NULL,
    status          TEXT NOT NULL,
    responded_by    TEXT,
    responded_at    TIMESTAMP,
    comment         TEXT,
    PRIMARY KEY (round_id, organization_id)
);
CREATE INDEX consultees_org ON consultees (organization_id, status);

CREATE TABLE consultation_responses (
    id              TEXT PRIMARY KEY NOT NULL,
    round_id        TEXT NOT NULL REFERENCES consultation_rounds (id),
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    responded_by    TEXT NOT NULL,
    kind            TEXT NOT NULL,
    comment         TEXT,
    unsolicited     BOOLEAN NOT NULL,
    created_at      TIMESTAMP NOT NULL
);
CREATE INDEX consultation_responses_round ON consultation_responses (round_id, created_at);

CREATE TABLE flags (
    id                TEXT PRIMARY KEY NOT NULL,
    proposal_id       TEXT NOT NULL REFERENCES proposals (id),
    round_id          TEXT NOT NULL REFERENCES consultation_rounds (id),
    version_number    INTEGER NOT NULL,
    organization_id   TEXT REFERENCES organizations (id),
    raised_by         TEXT,
    system_raised     BOOLEAN NOT NULL,
    category          TEXT NOT NULL,
    severity          TEXT NOT NULL,
    description       TEXT NOT NULL,
    confidential_note TEXT,
    activity_id       TEXT,
    status            TEXT NOT NULL,
    ended_by          TEXT,
    ended_at          TIMESTAMP,
    end_justification TEXT,
    created_at        TIMESTAMP NOT NULL
);
CREATE INDEX flags_proposal ON flags (proposal_id, status, severity);
