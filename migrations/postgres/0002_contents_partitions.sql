-- Redactable content, partitioned by sequence number (65,536 entries a partition).
--
-- PostgreSQL leaves a deleted row's bytes in the table's file until the space happens
-- to be reused. A redaction must remove personal data physically, so after deleting
-- content the store rewrites the partitions that held it (VACUUM FULL: a new file is
-- written and the old one truncated). Partitioning bounds that rewrite to at most
-- 65,536 entries' content, however long the log grows, and leaves the partition new
-- entries go to alone unless the redacted content is recent.
--
-- Partitions are named contents_pN and cover [N * 65536, (N + 1) * 65536); the store
-- creates each before the first entry that needs it.
ALTER TABLE contents RENAME TO contents_unpartitioned;

CREATE TABLE contents (
    chain_id BIGINT NOT NULL,
    seq      BIGINT NOT NULL,
    salt     TEXT NOT NULL,
    body     BYTEA NOT NULL,
    PRIMARY KEY (chain_id, seq),
    FOREIGN KEY (chain_id, seq) REFERENCES entries (chain_id, seq)
) PARTITION BY RANGE (seq);

DO $$
DECLARE
    last_partition BIGINT;
BEGIN
    SELECT COALESCE(MAX(seq), 0) / 65536 INTO last_partition FROM contents_unpartitioned;
    FOR n IN 0..last_partition LOOP
        EXECUTE format(
            'CREATE TABLE contents_p%s PARTITION OF contents FOR VALUES FROM (%s) TO (%s)',
            n, n * 65536, (n + 1) * 65536);
    END LOOP;
END $$;

INSERT INTO contents (chain_id, seq, salt, body)
    SELECT chain_id, seq, salt, body FROM contents_unpartitioned;

-- Dropping truncates the old file, so content redacted before this migration (whose
-- bytes could linger there) is gone too.
DROP TABLE contents_unpartitioned;
