-- Sign-in throttling (src/domain/lockout.rs): one row per (account name, client address) and one per account
-- name across all addresses (client_addr = '*'). Kept for unknown names too, so a wait does not reveal which
-- names exist. Rows untouched for long are deleted as failures are recorded.
CREATE TABLE login_throttles (
    account         TEXT NOT NULL,
    client_addr     TEXT NOT NULL,
    failures        INTEGER NOT NULL DEFAULT 0,
    window_start    TIMESTAMP,
    blocked_until   TIMESTAMP,
    blocks          INTEGER NOT NULL DEFAULT 0,
    last_success_at TIMESTAMP,
    updated_at      TIMESTAMP NOT NULL,
    PRIMARY KEY (account, client_addr)
);
CREATE INDEX login_throttles_updated ON login_throttles (updated_at);
