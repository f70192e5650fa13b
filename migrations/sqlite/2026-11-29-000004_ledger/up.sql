-- The pool ledger (DESIGN.md §5): accounts, append-only transactions and entries, a balance row per account,
-- and idempotency records for money-moving requests.
CREATE TABLE ledger_accounts (
    id         TEXT PRIMARY KEY NOT NULL,
    pool_id    TEXT NOT NULL REFERENCES pools (id),
    kind       TEXT NOT NULL CHECK (kind IN ('contributor', 'unallocated', 'commitment', 'disbursed')),
    -- Contributor: the organisation; commitment/disbursed: the proposal; unallocated: ''.
    owner_id   TEXT NOT NULL,
    currency   TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    UNIQUE (pool_id, kind, owner_id)
);

CREATE TABLE ledger_balances (
    account_id    TEXT PRIMARY KEY NOT NULL REFERENCES ledger_accounts (id),
    pool_id       TEXT NOT NULL REFERENCES pools (id),
    kind          TEXT NOT NULL,
    balance_minor BIGINT NOT NULL,
    -- Contributor accounts are the outside world and may be negative; no other account ever is.
    CHECK (kind = 'contributor' OR balance_minor >= 0)
);
CREATE INDEX ledger_balances_pool ON ledger_balances (pool_id, kind);

CREATE TABLE ledger_transactions (
    id                TEXT PRIMARY KEY NOT NULL,
    pool_id           TEXT NOT NULL REFERENCES pools (id),
    kind              TEXT NOT NULL,
    proposal_id       TEXT,
    amount_minor      BIGINT NOT NULL,
    reference         TEXT,
    memo              TEXT,
    contributor_id    TEXT,
    original_currency TEXT,
    original_minor    BIGINT,
    fx_rate           TEXT,
    reversal_of       TEXT UNIQUE REFERENCES ledger_transactions (id),
    idempotency_key   TEXT UNIQUE,
    created_by        TEXT NOT NULL,
    hat               TEXT,
    request_id        TEXT,
    created_at        TIMESTAMP NOT NULL
);
CREATE INDEX ledger_transactions_pool ON ledger_transactions (pool_id, id);
CREATE INDEX ledger_transactions_pool_kind ON ledger_transactions (pool_id, kind, id);
CREATE INDEX ledger_transactions_proposal ON ledger_transactions (proposal_id, id);
CREATE INDEX ledger_transactions_created ON ledger_transactions (pool_id, created_at);

CREATE TABLE ledger_entries (
    transaction_id TEXT NOT NULL REFERENCES ledger_transactions (id),
    leg            INTEGER NOT NULL,
    account_id     TEXT NOT NULL REFERENCES ledger_accounts (id),
    amount_minor   BIGINT NOT NULL CHECK (amount_minor <> 0),
    PRIMARY KEY (transaction_id, leg)
);
CREATE INDEX ledger_entries_account ON ledger_entries (account_id);

CREATE TABLE idempotency_keys (
    user_id         TEXT NOT NULL,
    idem_key        TEXT NOT NULL,
    request_hash    TEXT NOT NULL,
    status          TEXT NOT NULL,
    response_status INTEGER,
    response_body   TEXT,
    transaction_id  TEXT,
    locked_until    TIMESTAMP NOT NULL,
    created_at      TIMESTAMP NOT NULL,
    expires_at      TIMESTAMP NOT NULL,
    PRIMARY KEY (user_id, idem_key)
);
CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at);

CREATE TRIGGER ledger_transactions_no_update BEFORE UPDATE ON ledger_transactions
BEGIN
    SELECT RAISE(ABORT, 'ledger_transactions is append-only: UPDATE refused');
END;
CREATE TRIGGER ledger_transactions_no_delete BEFORE DELETE ON ledger_transactions
BEGIN
    SELECT RAISE(ABORT, 'ledger_transactions is append-only: DELETE refused');
END;
CREATE TRIGGER ledger_entries_no_update BEFORE UPDATE ON ledger_entries
BEGIN
    SELECT RAISE(ABORT, 'ledger_entries is append-only: UPDATE refused');
END;
CREATE TRIGGER ledger_entries_no_delete BEFORE DELETE ON ledger_entries
BEGIN
    SELECT RAISE(ABORT, 'ledger_entries is append-only: DELETE refused');
END;
