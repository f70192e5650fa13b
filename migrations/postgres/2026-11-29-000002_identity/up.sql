-- Organisations, users, hats (roles with scope, validity and acting flag), refresh tokens (DESIGN.md §1, §8).
CREATE TABLE organizations (
    id         TEXT PRIMARY KEY NOT NULL,
    code       TEXT NOT NULL UNIQUE,
    name       TEXT NOT NULL,
    kind       TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE users (
    id                  TEXT PRIMARY KEY NOT NULL,
    username            TEXT NOT NULL UNIQUE,
    display_name        TEXT NOT NULL,
    email               TEXT NOT NULL,
    organization_id     TEXT NOT NULL REFERENCES organizations (id),
    status              TEXT NOT NULL,
    password_hash       TEXT NOT NULL,
    failed_logins       INTEGER NOT NULL DEFAULT 0,
    failed_window_start TIMESTAMP,
    locked_until        TIMESTAMP,
    lock_count          INTEGER NOT NULL DEFAULT 0,
    created_at          TIMESTAMP NOT NULL,
    updated_at          TIMESTAMP NOT NULL
);
CREATE INDEX users_organization ON users (organization_id, id);

CREATE TABLE hats (
    id                    TEXT PRIMARY KEY NOT NULL,
    user_id               TEXT NOT NULL REFERENCES users (id),
    hat                   TEXT NOT NULL,
    scope_organization_id TEXT REFERENCES organizations (id),
    scope_adm1            TEXT,
    valid_from            TIMESTAMP,
    valid_until           TIMESTAMP,
    acting                BOOLEAN NOT NULL DEFAULT FALSE,
    granted_by            TEXT,
    granted_at            TIMESTAMP NOT NULL,
    revoked_by            TEXT,
    revoked_at            TIMESTAMP
);
CREATE INDEX hats_user ON hats (user_id, revoked_at);
CREATE INDEX hats_hat ON hats (hat, revoked_at);

CREATE TABLE refresh_tokens (
    id          TEXT PRIMARY KEY NOT NULL,
    family_id   TEXT NOT NULL,
    user_id     TEXT NOT NULL REFERENCES users (id),
    token_hash  TEXT NOT NULL UNIQUE,
    issued_at   TIMESTAMP NOT NULL,
    expires_at  TIMESTAMP NOT NULL,
    rotated_at  TIMESTAMP,
    revoked_at  TIMESTAMP
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);
