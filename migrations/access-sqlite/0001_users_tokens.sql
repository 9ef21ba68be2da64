-- Who may use the HTTP API: users, each bound to one partner and one role, and their
-- bearer tokens, stored only as SHA-256 hashes.
CREATE TABLE users (
    name       TEXT PRIMARY KEY,
    partner    TEXT NOT NULL,
    role       TEXT NOT NULL CHECK (role IN ('practitioner', 'dpo', 'regulator', 'admin')),
    created_at TEXT NOT NULL
);

CREATE TABLE tokens (
    id         TEXT PRIMARY KEY,
    hash       TEXT NOT NULL UNIQUE,
    user_name  TEXT NOT NULL REFERENCES users (name),
    label      TEXT NOT NULL,
    created_at TEXT NOT NULL,
    revoked_at TEXT
);

-- What each Idempotency-Key was first used for (a hash of the request body), so a key
-- reused for a different request is refused rather than answered with another
-- request's receipt.
CREATE TABLE idempotency_keys (
    partner    TEXT NOT NULL,
    key        TEXT NOT NULL,
    body_hash  TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (partner, key)
);
