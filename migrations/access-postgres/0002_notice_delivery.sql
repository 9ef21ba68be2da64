-- How notices reach partners besides their inbox: where the notice feed stands in the
-- log, the partners' webhook subscriptions, and every webhook delivery with its
-- attempts (the delivery log a DPO reads).
CREATE TABLE notice_feed (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    -- The next log entry the feed reads; every notice change before it is delivered
    -- or queued.
    next_seq BIGINT NOT NULL
);

CREATE TABLE webhooks (
    id          TEXT PRIMARY KEY,
    partner     TEXT NOT NULL,
    url         TEXT NOT NULL,
    -- The Standard Webhooks signing secret (whsec_...). Kept as it is, not hashed:
    -- every delivery is signed with it. This file is readable by the service only.
    secret      TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    disabled_at TEXT
);

CREATE TABLE webhook_deliveries (
    -- The webhook-id header: the same on every attempt, so receivers drop repeats.
    id              TEXT PRIMARY KEY,
    webhook         TEXT NOT NULL REFERENCES webhooks (id),
    -- The log entry that changed the notice, and the change's place among that
    -- entry's: deliveries to one webhook go strictly in this order.
    seq             BIGINT NOT NULL,
    idx             INTEGER NOT NULL,
    event_type      TEXT NOT NULL,
    notice          TEXT NOT NULL,
    payload         TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        INTEGER NOT NULL,
    -- Microseconds since the Unix epoch.
    next_attempt_at BIGINT NOT NULL,
    last_attempt_at TEXT,
    last_status     INTEGER,
    last_error      TEXT,
    delivered_at    TEXT,
    created_at      TEXT NOT NULL,
    UNIQUE (webhook, seq, idx)
);

CREATE INDEX webhook_deliveries_queue ON webhook_deliveries (webhook, status, seq, idx);
