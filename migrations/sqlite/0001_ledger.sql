-- The ledger's own tables. Every row names its chain (one per partnership, named by
-- the checkpoint origin), as in the PostgreSQL schema, but an SQLite file holds one
-- chain: that lets an entry's sequence number be its rowid, so entries and contents
-- need no separate primary-key index (two B-tree pages fewer written per batch each).

CREATE TABLE chains (
    chain_id   INTEGER PRIMARY KEY,
    origin     TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL
);
CREATE TRIGGER one_chain_per_file BEFORE INSERT ON chains
WHEN (SELECT count(*) FROM chains) > 0
BEGIN
    SELECT RAISE(ABORT, 'an SQLite store holds one log; use another data directory');
END;

-- The one row every append locks; the next global sequence number is `size`.
CREATE TABLE chain_heads (
    chain_id         INTEGER PRIMARY KEY REFERENCES chains (chain_id),
    size             INTEGER NOT NULL CHECK (size >= 0),
    last_entry_hash  BLOB NOT NULL,
    last_recorded_at TEXT NOT NULL
);

-- `entry` holds the exact canonical bytes that were hashed; nothing re-serialises them.
-- The other columns are copies for lookup, checked against the bytes by `verify`.
CREATE TABLE entries (
    seq             INTEGER PRIMARY KEY CHECK (seq >= 0),
    chain_id        INTEGER NOT NULL REFERENCES chains (chain_id),
    entry           BLOB NOT NULL,
    entry_hash      BLOB NOT NULL,
    author          TEXT NOT NULL,
    event_type      TEXT NOT NULL,
    stream_id       INTEGER NOT NULL,
    stream_version  INTEGER NOT NULL CHECK (stream_version >= 1),
    idempotency_key TEXT NOT NULL,
    submission_hash BLOB NOT NULL
);
-- A stream is named by the sequence number of its first entry (see `streams`). The
-- streams written at any moment are mostly recent ones, so their rows sit together in
-- this index and a batch touches a few of its pages, not one page per stream.
CREATE UNIQUE INDEX entries_by_stream ON entries (chain_id, stream_id, stream_version);
-- No index on (author, idempotency_key): the sequencer is the only writer (the head
-- guard refuses any other) and it holds a digest of every key with its entry's sequence
-- number, loaded at start. An index here would take a random page per append.

CREATE TRIGGER entries_are_append_only_update BEFORE UPDATE ON entries
BEGIN
    SELECT RAISE(ABORT, 'ledger entries are append-only');
END;
CREATE TRIGGER entries_are_append_only_delete BEFORE DELETE ON entries
BEGIN
    SELECT RAISE(ABORT, 'ledger entries are append-only');
END;

-- Each entry's idempotency digest: the first 16 bytes of SHA-256(author || 0x0A ||
-- idempotency_key). The sequencer reads this narrow table at start to know every key
-- used (instead of scanning every entry); written in sequence order, a batch appends
-- to it on one page.
CREATE TABLE idempotency_digests (
    seq      INTEGER PRIMARY KEY,
    chain_id INTEGER NOT NULL,
    digest   BLOB NOT NULL
);

-- Every stream's name, written once, when its first entry is appended, keyed by the
-- stream's id so that new streams are appended at the end. There is no index on the
-- name: the sequencer holds every name with its id in memory (loaded from here at
-- start) and is the only writer; an index on names took a random page per new stream.
CREATE TABLE streams (
    stream_id INTEGER PRIMARY KEY,
    chain_id  INTEGER NOT NULL,
    stream    TEXT NOT NULL
);

-- Redactable content, bound to its entry only by the salted commitment in the entry.
-- Disposal and erasure delete the row; the entry and the chain are untouched.
CREATE TABLE contents (
    seq      INTEGER PRIMARY KEY REFERENCES entries (seq),
    chain_id INTEGER NOT NULL,
    salt     TEXT NOT NULL,
    body     BLOB NOT NULL
);

-- Every perfect, aligned Merkle subtree of 16 leaves or more (level >= 4); written once.
-- A leaf (level 0) is not stored: it is SHA-256(0x00 || entries.entry_hash); nor is a
-- node of levels 1 to 3, which a proof recomputes from the (at most 8) leaves it covers.
-- Those levels hold seven eighths of all nodes.
-- A node is keyed by the last leaf it covers, then its level: the order in which nodes
-- are completed, so each batch appends at the end of the table. (Keyed by level first,
-- a batch wrote one page per level of the tree.) The node's index within its level is
-- (last_leaf + 1) / 2^level - 1.
CREATE TABLE tree_nodes (
    chain_id  INTEGER NOT NULL,
    last_leaf INTEGER NOT NULL,
    level     INTEGER NOT NULL CHECK (level >= 4),
    hash      BLOB NOT NULL,
    PRIMARY KEY (chain_id, last_leaf, level)
) WITHOUT ROWID;

-- Signed checkpoints (C2SP signed notes), at least one per committed batch.
CREATE TABLE checkpoints (
    chain_id  INTEGER NOT NULL,
    tree_size INTEGER NOT NULL,
    note      TEXT NOT NULL,
    PRIMARY KEY (chain_id, tree_size)
) WITHOUT ROWID;

-- Key validity ranges, derived from the key entries in the same transaction.
CREATE TABLE signing_keys (
    chain_id     INTEGER NOT NULL,
    partner      TEXT NOT NULL,
    key_id       TEXT NOT NULL,
    verifier_key TEXT NOT NULL,
    custody      TEXT NOT NULL CHECK (custody IN ('custodial', 'partner-held')),
    from_seq     INTEGER NOT NULL,
    until_seq    INTEGER,
    PRIMARY KEY (chain_id, partner, key_id)
) WITHOUT ROWID;
