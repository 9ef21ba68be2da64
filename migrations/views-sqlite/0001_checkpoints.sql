-- Where each projection stands in each chain's log. A view's rows and its checkpoint
-- are written in one transaction, so a crash leaves them consistent; the view tables
-- themselves (view_NAME, view_NAME_parties, and their __shadow copies during a rebuild)
-- are created by the projections crate from one template, because a rebuild makes a
-- second copy of each under another name.
CREATE TABLE view_checkpoints (
    chain_id   INTEGER NOT NULL,
    projection TEXT    NOT NULL,
    -- The next entry to read; every entry below it is in the view.
    next_seq   INTEGER NOT NULL,
    -- The hash of entry next_seq - 1 (zeros at the start): the next entry must name it.
    last_hash  TEXT    NOT NULL,
    -- The view's logic version and the settings it was built under; when either differs
    -- from the running code's, the view is rebuilt.
    version    INTEGER NOT NULL,
    settings   TEXT    NOT NULL,
    -- When the view last took entries, and the recorded_at of the last entry it took.
    updated_at TEXT    NOT NULL,
    last_recorded_at TEXT,
    -- Set when the projection stopped on an entry it cannot take (a gap, a hash that
    -- does not match); cleared by a rebuild.
    stopped    TEXT,
    PRIMARY KEY (chain_id, projection)
);
