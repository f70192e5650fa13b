-- Implementation (DESIGN.md §2, §5): the tranche schedule made at approval, reports, tranche payments and the
-- close-out evaluation.
CREATE TABLE tranches (
    id           TEXT PRIMARY KEY NOT NULL,
    proposal_id  TEXT NOT NULL REFERENCES proposals (id),
    number       INTEGER NOT NULL,
    percent      INTEGER NOT NULL,
    amount_minor BIGINT NOT NULL,
    condition    TEXT NOT NULL,
    status       TEXT NOT NULL,
    paid_minor   BIGINT NOT NULL,
    waive_reason TEXT,
    created_at   TIMESTAMP NOT NULL,
    UNIQUE (proposal_id, number)
);
CREATE INDEX tranches_open ON tranches (status, proposal_id);

CREATE TABLE reports (
    id                TEXT PRIMARY KEY NOT NULL,
    proposal_id       TEXT NOT NULL REFERENCES proposals (id),
    kind              TEXT NOT NULL,
    content           TEXT NOT NULL,
    expenditure_minor BIGINT,
    status            TEXT NOT NULL,
    submitted_by      TEXT NOT NULL,
    submitted_at      TIMESTAMP NOT NULL,
    decided_by        TEXT,
    decided_at        TIMESTAMP,
    decision_reason   TEXT
);
CREATE INDEX reports_proposal ON reports (proposal_id, status);
CREATE INDEX reports_status ON reports (status, submitted_at);

CREATE TABLE tranche_payments (
    transaction_id    TEXT PRIMARY KEY NOT NULL REFERENCES ledger_transactions (id),
    proposal_id       TEXT NOT NULL REFERENCES proposals (id),
    tranche_number    INTEGER NOT NULL,
    amount_minor      BIGINT NOT NULL,
    paid_on           DATE NOT NULL,
    payment_reference TEXT NOT NULL,
    paid_by           TEXT NOT NULL,
    created_at        TIMESTAMP NOT NULL
);
CREATE INDEX tranche_payments_proposal ON tranche_payments (proposal_id, tranche_number);

CREATE TABLE closeouts (
    proposal_id       TEXT PRIMARY KEY NOT NULL REFERENCES proposals (id),
    objectives_met    TEXT NOT NULL,
    confidence_effect TEXT NOT NULL,
    lessons           TEXT NOT NULL,
    closed_by         TEXT NOT NULL,
    closed_at         TIMESTAMP NOT NULL
);
