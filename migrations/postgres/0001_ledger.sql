-- The ledger's own tables. Every table is keyed by its chain (one per partnership,
-- named by the checkpoint origin) so deployments can later shard by chain (e.g. Citus).

CREATE TABLE chains (
    chain_id   BIGINT PRIMARY KEY GENERATED ALWAYS AS IDENTITY,
    origin     TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL
);

-- The one row every append locks (by updating it); the next global sequence
-- number is `size`. No SEQUENCE: those leave gaps and commit out of order.
CREATE TABLE chain_heads (
    chain_id         BIGINT PRIMARY KEY REFERENCES chains (chain_id),
    size             BIGINT NOT NULL CHECK (size >= 0),
    last_entry_hash  BYTEA NOT NULL,
    last_recorded_at TEXT NOT NULL
);

-- `entry` holds the exact canonical bytes that were hashed; nothing re-serialises them.
CREATE TABLE entries (
    chain_id        BIGINT NOT NULL REFERENCES chains (chain_id),
    seq             BIGINT NOT NULL CHECK (seq >= 0),
    entry           BYTEA NOT NULL,
    entry_hash      BYTEA NOT NULL,
    author          TEXT NOT NULL,
    event_type      TEXT NOT NULL,
    stream_id       BIGINT NOT NULL,
    stream_version  BIGINT NOT NULL CHECK (stream_version >= 1),
    idempotency_key TEXT NOT NULL,
    submission_hash BYTEA NOT NULL,
    PRIMARY KEY (chain_id, seq)
);
-- A stream is named by the sequence number of its first entry (see `streams`). The
-- streams written at any moment are mostly recent ones, so their rows sit together in
-- this index and a batch touches a few of its pages, not one page per stream.
CREATE UNIQUE INDEX entries_by_stream ON entries (chain_id, stream_id, stream_version);
-- No index on (author, idempotency_key): the sequencer is the only writer (the head
-- guard refuses any other) and it holds a digest of every key with its entry's sequence
-- number, loaded at start. An index here would take a random page per append.

CREATE FUNCTION refuse_entry_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger entries are append-only';
END;
$$;
CREATE TRIGGER entries_are_append_only BEFORE UPDATE OR DELETE ON entries
    FOR EACH ROW EXECUTE FUNCTION refuse_entry_change();

-- Each entry's idempotency digest: the first 16 bytes of SHA-256(author || 0x0A ||
-- idempotency_key). The sequencer reads this narrow table at start to know every key
-- used (instead of scanning every entry).
CREATE TABLE idempotency_digests (
    chain_id BIGINT NOT NULL,
    seq      BIGINT NOT NULL,
    digest   BYTEA NOT NULL,
    PRIMARY KEY (chain_id, seq)
);

-- Every stream's name, written once, when its first entry is appended, keyed by the
-- stream's id so that new streams are appended at the end. There is no index on the
-- name: the sequencer holds every name with its id in memory (loaded from here at
-- start) and is the only writer; an index on names took a random page per new stream.
CREATE TABLE streams (
    chain_id  BIGINT NOT NULL,
    stream_id BIGINT NOT NULL,
    stream    TEXT NOT NULL,
    PRIMARY KEY (chain_id, stream_id)
);

-- Redactable content, bound to its entry only by the salted commitment in the entry.
CREATE TABLE contents (
    chain_id BIGINT NOT NULL,
    seq      BIGINT NOT NULL,
    salt     TEXT NOT NULL,
    body     BYTEA NOT NULL,
    PRIMARY KEY (chain_id, seq),
    FOREIGN KEY (chain_id, seq) REFERENCES entries (chain_id, seq)
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
    chain_id  BIGINT NOT NULL,
    last_leaf BIGINT NOT NULL,
    level     SMALLINT NOT NULL CHECK (level >= 4),
    hash      BYTEA NOT NULL,
    PRIMARY KEY (chain_id, last_leaf, level)
);

-- Signed checkpoints (C2SP signed notes), at least one per committed batch.
CREATE TABLE checkpoints (
    chain_id  BIGINT NOT NULL,
    tree_size BIGINT NOT NULL,
    note      TEXT NOT NULL,
    PRIMARY KEY (chain_id, tree_size)
);

-- Key validity ranges, derived from the key entries in the same transaction.
CREATE TABLE signing_keys (
    chain_id     BIGINT NOT NULL,
    partner      TEXT NOT NULL,
    key_id       TEXT NOT NULL,
    verifier_key TEXT NOT NULL,
    custody      TEXT NOT NULL CHECK (custody IN ('custodial', 'partner-held')),
    from_seq     BIGINT NOT NULL,
    until_seq    BIGINT,
    PRIMARY KEY (chain_id, partner, key_id)
);
