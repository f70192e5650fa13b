-- Approval steps (DESIGN.md §4): the pool's approval policy instantiated on a proposal version when it enters
-- review; a snapshot that later policy edits do not change.
CREATE TABLE approval_steps (
    id                        TEXT PRIMARY KEY NOT NULL,
    proposal_id               TEXT NOT NULL REFERENCES proposals (id),
    version_number            INTEGER NOT NULL,
    position                  INTEGER NOT NULL,
    hat                       TEXT NOT NULL,
    reason                    TEXT NOT NULL,
    financial                 BOOLEAN NOT NULL,
    sla_days                  INTEGER NOT NULL,
    status                    TEXT NOT NULL,
    opened_at                 TIMESTAMP,
    due_at                    TIMESTAMP,
    overdue                   BOOLEAN NOT NULL DEFAULT FALSE,
    decided_by                TEXT,
    decided_hat               TEXT,
    acting                    BOOLEAN NOT NULL DEFAULT FALSE,
    decided_at                TIMESTAMP,
    decision                  TEXT,
    comment                   TEXT,
    conditions                TEXT,
    multi_hat_acknowledgement TEXT,
    created_at                TIMESTAMP NOT NULL,
    UNIQUE (proposal_id, version_number, position)
);
CREATE INDEX approval_steps_open ON approval_steps (status, hat, due_at);
CREATE INDEX approval_steps_proposal ON approval_steps (proposal_id, version_number, position);
