-- Dual control (issue 11 item 3): privileged hat grants wait for a second administrator; administrators hand
-- out single-use setup tokens instead of passwords; a reset ends every access token issued before it.

-- A grant of a privileged hat, waiting for confirmation. `status`: pending, confirmed, refused, cancelled
-- (a pending request past `expires_at` is expired and can only be read). `hat_id` is the grant it became.
CREATE TABLE hat_grant_requests (
    id                    TEXT PRIMARY KEY NOT NULL,
    user_id               TEXT NOT NULL REFERENCES users (id),
    hat                   TEXT NOT NULL,
    scope_organization_id TEXT REFERENCES organizations (id),
    scope_adm1            TEXT,
    valid_from            TIMESTAMP,
    valid_until           TIMESTAMP,
    acting                BOOLEAN NOT NULL DEFAULT FALSE,
    requested_by          TEXT NOT NULL REFERENCES users (id),
    requested_at          TIMESTAMP NOT NULL,
    expires_at            TIMESTAMP NOT NULL,
    status                TEXT NOT NULL,
    decided_by            TEXT,
    decided_via           TEXT,
    decided_at            TIMESTAMP,
    decision_reason       TEXT,
    hat_id                TEXT REFERENCES hats (id)
);
CREATE INDEX hat_grant_requests_status ON hat_grant_requests (status, id);
CREATE INDEX hat_grant_requests_user ON hat_grant_requests (user_id);

-- Single-use tokens with which a user sets their own password (after creation or a reset). Only the SHA-256
-- of the token is stored. `purpose`: create or reset.
CREATE TABLE password_setup_tokens (
    id          TEXT PRIMARY KEY NOT NULL,
    user_id     TEXT NOT NULL REFERENCES users (id),
    token_hash  TEXT NOT NULL UNIQUE,
    purpose     TEXT NOT NULL,
    issued_by   TEXT,
    issued_at   TIMESTAMP NOT NULL,
    expires_at  TIMESTAMP NOT NULL,
    used_at     TIMESTAMP,
    revoked_at  TIMESTAMP
);
CREATE INDEX password_setup_tokens_user ON password_setup_tokens (user_id);

-- Access tokens issued before `sessions_valid_after` are refused (set by a password reset or disabling).
CREATE TABLE session_cutoffs (
    user_id              TEXT PRIMARY KEY NOT NULL REFERENCES users (id),
    sessions_valid_after TIMESTAMP NOT NULL
);
