-- Web console sessions (src/console/session.rs). The browser's cookie holds only a random secret; this row is
-- found by its SHA-256 and links the console to one API sign-in (refresh-token family). The API tokens of that
-- sign-in are kept sealed with a key derived from the cookie's secret, so the table alone opens nothing.
-- `version` moves on every refresh: requests racing on an expired access token refresh once, under the row.
CREATE TABLE console_sessions (
    id               TEXT PRIMARY KEY NOT NULL,
    secret_hash      TEXT NOT NULL UNIQUE,
    user_id          TEXT NOT NULL REFERENCES users(id),
    family_id        TEXT NOT NULL,
    sealed_tokens    TEXT NOT NULL,
    access_expires_at TIMESTAMP NOT NULL,
    csrf_token       TEXT NOT NULL,
    version          BIGINT NOT NULL DEFAULT 1,
    created_at       TIMESTAMP NOT NULL,
    last_seen_at     TIMESTAMP NOT NULL,
    expires_at       TIMESTAMP NOT NULL
);
CREATE INDEX console_sessions_family ON console_sessions (family_id);
CREATE INDEX console_sessions_user ON console_sessions (user_id);
CREATE INDEX console_sessions_expires ON console_sessions (expires_at);
