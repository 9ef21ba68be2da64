//! The production backend: PostgreSQL. Each batch is one statement (in one transaction
//! with its key changes and redactions, if any) whose first step moves the chain's head
//! row only if it is where the batch was sequenced from, which locks that row: sequence
//! numbers are gapless and commit in order even with several writers. Rows go in with
//! `UNNEST`, one insert per table, whatever the batch size.

use super::{
    chain_state, derive_nodes, digest_column, hash_column, key_record, last_leaf, migrations,
    node_row, node_sources, sink_page, stored_entry, stored_node, stream_position, to_i64, to_u64,
    Backend, Batch, ChainState, HeadRow, IdempotencyHit, LedgerStore, StoreError, StoredEntry,
    StreamPosition, HEAD_ROWS,
};
use crate::hash::Hash;
use crate::keyring::KeyRecord;
use crate::merkle::NodeId;
use futures_util::TryStreamExt;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::Row;
use std::collections::HashMap;
use std::str::FromStr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
    /// The highest content partition known to exist (see
    /// `migrations/postgres/0002_contents_partitions.sql`); -1 before the first.
    content_partitions: Arc<AtomicI64>,
}

/// Entries per content partition: what one redaction rewrites at most.
const CONTENT_PARTITION: u64 = 65_536;

/// Longest a redaction's rewrite waits for older snapshots to end.
const PURGE_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

impl PostgresStore {
    /// Connects and applies migrations.
    pub async fn connect(url: &str) -> Result<PostgresStore, StoreError> {
        let options =
            PgConnectOptions::from_str(url)?.options([("plan_cache_mode", "force_generic_plan")]);
        let pool = PgPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(std::time::Duration::from_secs(10))
            .connect_with(options)
            .await?;
        migrations::postgres().run(&pool).await?;
        let highest: i64 = sqlx::query_scalar(
            "SELECT COALESCE(MAX(substring(c.relname FROM '^contents_p([0-9]+)$')::bigint), -1) \
             FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
             WHERE i.inhparent = 'contents'::regclass",
        )
        .fetch_one(&pool)
        .await?;
        Ok(PostgresStore {
            pool,
            content_partitions: Arc::new(AtomicI64::new(highest)),
        })
    }

    /// Creates the content partitions up to the one holding `seq`, and the one after it
    /// (so a batch rarely waits on one). Run before the batch's own statement, outside
    /// its transaction: a partition created for a batch that then fails stays, empty.
    async fn ensure_content_partition(&self, seq: u64) -> Result<(), StoreError> {
        let needed = to_i64(seq / CONTENT_PARTITION);
        let highest = self.content_partitions.load(Ordering::Acquire);
        if needed <= highest {
            return Ok(());
        }
        for n in (highest + 1)..=(needed + 1) {
            let from = n * to_i64(CONTENT_PARTITION);
            // Another writer may have made it first: IF NOT EXISTS.
            // Simple protocol: one-off DDL should not fill the prepared-statement cache.
            let create = format!(
                "CREATE TABLE IF NOT EXISTS contents_p{n} PARTITION OF contents \
                 FOR VALUES FROM ({from}) TO ({})",
                from + to_i64(CONTENT_PARTITION)
            );
            sqlx::raw_sql(&create).execute(&self.pool).await?;
        }
        self.content_partitions
            .fetch_max(needed + 1, Ordering::AcqRel);
        Ok(())
    }

    /// Rewrites the content partitions that held redacted content, so that its bytes
    /// leave the table files (PostgreSQL otherwise keeps a deleted row's bytes until the
    /// space is reused). Runs after the batch is committed: a failure here cannot undo
    /// the redaction, which already hides the content, so it is reported for the
    /// operator to repeat rather than returned as a failed commit.
    ///
    /// A deleted row that some open snapshot could still see is kept by `VACUUM FULL`
    /// (MVCC), so the rewrite first waits, up to [`PURGE_WAIT`], until no session's
    /// snapshot predates the delete. (Seeing other roles' sessions in
    /// `pg_stat_activity` needs `pg_read_all_stats`; see `docs/operations.md`.)
    async fn purge_redacted(&self, redactions: &[u64], deleted_by: Option<&str>) {
        let mut partitions: Vec<u64> = redactions.iter().map(|s| s / CONTENT_PARTITION).collect();
        partitions.sort_unstable();
        partitions.dedup();
        // Twice: a session that is still starting up can hold a snapshot that
        // pg_stat_activity does not show yet, which makes the first rewrite keep the
        // rows; measured in the test suite, about one redaction in twenty-five.
        for _ in 0..2 {
            if let Some(xid) = deleted_by {
                self.wait_for_snapshots_older_than(xid).await;
            }
            for n in &partitions {
                let statement = format!("VACUUM (FULL) contents_p{n}");
                if let Err(e) = sqlx::raw_sql(&statement).execute(&self.pool).await {
                    eprintln!(
                        "isa-ledger: redacted content is hidden but its bytes may remain on \
                         disk until `{statement}` succeeds: {e}"
                    );
                }
            }
        }
    }

    /// Waits, up to [`PURGE_WAIT`], until no other session holds a snapshot taken
    /// before transaction `xid` ended (nor a replication slot an older xmin).
    async fn wait_for_snapshots_older_than(&self, xid: &str) {
        let deadline = tokio::time::Instant::now() + PURGE_WAIT;
        loop {
            let clear: Result<bool, sqlx::Error> = sqlx::query_scalar(
                "SELECT NOT EXISTS (SELECT 1 FROM pg_stat_activity \
                     WHERE pid <> pg_backend_pid() AND backend_xmin IS NOT NULL \
                     AND age(backend_xmin) >= age($1::xid)) \
                 AND NOT EXISTS (SELECT 1 FROM pg_replication_slots \
                     WHERE xmin IS NOT NULL AND age(xmin) >= age($1::xid))",
            )
            .bind(xid)
            .fetch_one(&self.pool)
            .await;
            // An error (no right to read the views) is no reason to hold the rewrite.
            if matches!(clear, Ok(true) | Err(_)) {
                return;
            }
            if tokio::time::Instant::now() >= deadline {
                eprintln!(
                    "isa-ledger: a session has held a snapshot older than a redaction for \
                     {}s; rewriting anyway: repeat VACUUM (FULL) on the content partition \
                     once it ends",
                    PURGE_WAIT.as_secs()
                );
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    async fn chain_where(
        &self,
        clause: &str,
        origin: Option<&str>,
    ) -> Result<Option<ChainState>, StoreError> {
        let sql = format!("{HEAD_ROWS} {clause}");
        let mut query = sqlx::query(&sql);
        if let Some(origin) = origin {
            query = query.bind(origin);
        }
        let rows = query.fetch_all(&self.pool).await?;
        let rows = rows
            .into_iter()
            .map(|row| HeadRow {
                chain_id: row.get(0),
                origin: row.get(1),
                size: row.get(2),
                last_entry_hash: row.get(3),
                last_recorded_at: row.get(4),
            })
            .collect();
        chain_state(self, rows).await
    }
}

impl PostgresStore {
    /// A batch's head move and inserts as one statement, which PostgreSQL runs
    /// atomically: on its own (the usual batch) it is one round trip and one WAL flush.
    /// Its first step updates the chain's head row only if the head is where this batch
    /// was sequenced from, which locks that row until the transaction ends; every insert
    /// depends on that update having happened, so a moved head writes nothing.
    async fn write_batch(
        conn: &mut PgConnection,
        batch: &Batch,
        last_hash: Hash,
    ) -> Result<(), StoreError> {
        let e = &batch.entries;
        let opened: Vec<_> = e.iter().filter(|e| e.opens_stream).collect();
        let with_content: Vec<_> = e
            .iter()
            .filter_map(|e| e.content.as_ref().map(|c| (e.seq, c)))
            .collect();
        // Leaves and the lowest levels are not stored (see `stored_node`).
        let n: Vec<_> = batch
            .nodes
            .iter()
            .filter(|(id, _)| stored_node(id))
            .collect();
        let moved: i64 = sqlx::query_scalar(
            "WITH head AS ( \
                 UPDATE chain_heads SET size = $2, last_entry_hash = $3, last_recorded_at = $4 \
                 WHERE chain_id = $1 AND size = $5 AND last_entry_hash = $25 RETURNING size \
             ), new_entries AS ( \
                 INSERT INTO entries (chain_id, seq, entry, entry_hash, author, event_type, stream_id, \
                     stream_version, idempotency_key, submission_hash) \
                 SELECT $1, u.* FROM UNNEST($6::bigint[], $7::bytea[], $8::bytea[], $9::text[], \
                     $10::text[], $11::bigint[], $12::bigint[], $13::text[], $14::bytea[]) AS u \
                 WHERE EXISTS (SELECT 1 FROM head) RETURNING 1 \
             ), new_digests AS ( \
                 INSERT INTO idempotency_digests (chain_id, seq, digest) \
                 SELECT $1, u.* FROM UNNEST($6::bigint[], $24::bytea[]) AS u \
                 WHERE EXISTS (SELECT 1 FROM head) RETURNING 1 \
             ), new_streams AS ( \
                 INSERT INTO streams (chain_id, stream, stream_id) \
                 SELECT $1, u.* FROM UNNEST($22::text[], $23::bigint[]) AS u \
                 WHERE EXISTS (SELECT 1 FROM head) RETURNING 1 \
             ), new_contents AS ( \
                 INSERT INTO contents (chain_id, seq, salt, body) \
                 SELECT $1, u.* FROM UNNEST($15::bigint[], $16::text[], $17::bytea[]) AS u \
                 WHERE EXISTS (SELECT 1 FROM head) RETURNING 1 \
             ), new_nodes AS ( \
                 INSERT INTO tree_nodes (chain_id, last_leaf, level, hash) \
                 SELECT $1, u.* FROM UNNEST($18::bigint[], $19::smallint[], $20::bytea[]) AS u \
                 WHERE EXISTS (SELECT 1 FROM head) RETURNING 1 \
             ), new_checkpoint AS ( \
                 INSERT INTO checkpoints (chain_id, tree_size, note) \
                 SELECT $1, $2, $21 WHERE EXISTS (SELECT 1 FROM head) RETURNING 1 \
             ) \
             SELECT count(*) FROM head",
        )
        .bind(batch.chain_id)
        .bind(to_i64(batch.new_size()))
        .bind(last_hash.0.as_slice())
        .bind(batch.last_recorded_at.as_str())
        .bind(to_i64(batch.base_size))
        .bind(e.iter().map(|e| to_i64(e.seq)).collect::<Vec<_>>())
        .bind(e.iter().map(|e| e.bytes.as_slice()).collect::<Vec<_>>())
        .bind(e.iter().map(|e| e.hash.0.as_slice()).collect::<Vec<_>>())
        .bind(e.iter().map(|e| e.author.as_str()).collect::<Vec<_>>())
        .bind(e.iter().map(|e| e.event_type.as_str()).collect::<Vec<_>>())
        .bind(e.iter().map(|e| to_i64(e.stream_id)).collect::<Vec<_>>())
        .bind(e.iter().map(|e| to_i64(e.stream_version)).collect::<Vec<_>>())
        .bind(e.iter().map(|e| e.idempotency_key.as_str()).collect::<Vec<_>>())
        .bind(e.iter().map(|e| e.submission_hash.0.as_slice()).collect::<Vec<_>>())
        .bind(with_content.iter().map(|(s, _)| to_i64(*s)).collect::<Vec<_>>())
        .bind(with_content.iter().map(|(_, c)| c.0.as_str()).collect::<Vec<_>>())
        .bind(with_content.iter().map(|(_, c)| c.1.as_slice()).collect::<Vec<_>>())
        .bind(n.iter().map(|(id, _)| last_leaf(id)).collect::<Vec<_>>())
        .bind(n.iter().map(|(id, _)| i16::from(id.level)).collect::<Vec<_>>())
        .bind(n.iter().map(|(_, h)| h.0.as_slice()).collect::<Vec<_>>())
        .bind(batch.checkpoint_note.as_str())
        .bind(opened.iter().map(|e| e.stream.as_str()).collect::<Vec<_>>())
        .bind(opened.iter().map(|e| to_i64(e.stream_id)).collect::<Vec<_>>())
        .bind(e.iter().map(|e| e.key_digest.as_slice()).collect::<Vec<_>>())
        .bind(batch.base_hash.0.as_slice())
        .fetch_one(&mut *conn)
        .await
        .map_err(StoreError::from_sqlx)?;
        if moved != 1 {
            let found: i64 = sqlx::query_scalar("SELECT size FROM chain_heads WHERE chain_id = $1")
                .bind(batch.chain_id)
                .fetch_one(&mut *conn)
                .await?;
            return Err(StoreError::HeadMoved {
                expected: batch.base_size,
                found: to_u64(found, "size")?,
            });
        }
        Ok(())
    }
}

impl LedgerStore for PostgresStore {
    fn backend(&self) -> Backend {
        Backend::Postgres
    }

    async fn chain(&self, origin: &str) -> Result<Option<ChainState>, StoreError> {
        self.chain_where("WHERE c.origin = $1", Some(origin)).await
    }

    async fn sole_chain(&self) -> Result<Option<ChainState>, StoreError> {
        self.chain_where("", None).await
    }

    async fn create_chain(&self, origin: &str, created_at: &str) -> Result<i64, StoreError> {
        let mut tx = self.pool.begin().await?;
        let chain_id: i64 = sqlx::query_scalar(
            "INSERT INTO chains (origin, created_at) VALUES ($1, $2) RETURNING chain_id",
        )
        .bind(origin)
        .bind(created_at)
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO chain_heads (chain_id, size, last_entry_hash, last_recorded_at) VALUES ($1, 0, $2, $3)",
        )
        .bind(chain_id)
        .bind(Hash::ZERO.0.as_slice())
        .bind(created_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(chain_id)
    }

    async fn commit(&self, batch: Arc<Batch>) -> Result<(), StoreError> {
        let batch = &*batch;
        let Some(last) = batch.entries.last() else {
            return Ok(());
        };
        if let Some(seq) = batch
            .entries
            .iter()
            .rev()
            .find(|e| e.content.is_some())
            .map(|e| e.seq)
        {
            self.ensure_content_partition(seq).await?;
        }
        if batch.keys.is_empty() && batch.redactions.is_empty() {
            let mut conn = self.pool.acquire().await?;
            return Self::write_batch(&mut conn, batch, last.hash).await;
        }
        // Key changes and redactions join the batch's statement in one transaction.
        let mut tx = self.pool.begin().await?;
        Self::write_batch(&mut tx, batch, last.hash).await?;
        for key in &batch.keys {
            sqlx::query(
                "INSERT INTO signing_keys (chain_id, partner, key_id, verifier_key, custody, from_seq, until_seq) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 ON CONFLICT (chain_id, partner, key_id) DO UPDATE SET until_seq = excluded.until_seq",
            )
            .bind(batch.chain_id)
            .bind(key.partner.as_str())
            .bind(key.key_id.as_str())
            .bind(key.verifier_key.as_str())
            .bind(key.custody.as_str())
            .bind(to_i64(key.from_seq))
            .bind(key.until_seq.map(to_i64))
            .execute(&mut *tx)
            .await?;
        }
        if !batch.redactions.is_empty() {
            sqlx::query("DELETE FROM contents WHERE chain_id = $1 AND seq = ANY($2)")
                .bind(batch.chain_id)
                .bind(
                    batch
                        .redactions
                        .iter()
                        .map(|s| to_i64(*s))
                        .collect::<Vec<_>>(),
                )
                .execute(&mut *tx)
                .await?;
        }
        // The transaction id of the delete: the rewrite below waits until no snapshot
        // that could still see the deleted rows remains.
        let deleted_by: Option<String> = if batch.redactions.is_empty() {
            None
        } else {
            sqlx::query_scalar(
                "SELECT backend_xid::text FROM pg_stat_activity WHERE pid = pg_backend_pid()",
            )
            .fetch_one(&mut *tx)
            .await?
        };
        tx.commit().await?;
        if !batch.redactions.is_empty() {
            self.purge_redacted(&batch.redactions, deleted_by.as_deref())
                .await;
        }
        Ok(())
    }

    async fn all_stream_versions(
        &self,
        chain_id: i64,
        below: u64,
    ) -> Result<HashMap<String, StreamPosition>, StoreError> {
        let rows = sqlx::query(
            "SELECT s.stream, s.stream_id, (SELECT MAX(e.stream_version) FROM entries e \
             WHERE e.chain_id = s.chain_id AND e.stream_id = s.stream_id AND e.seq < $2) \
             FROM streams s WHERE s.chain_id = $1 AND s.stream_id < $2",
        )
        .bind(chain_id)
        .bind(to_i64(below))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|row| stream_position(row.get(0), row.get(1), row.get(2)))
            .collect()
    }

    async fn all_idempotency_digests(
        &self,
        chain_id: i64,
        below: u64,
        each: &mut (dyn FnMut(u64, [u8; 16]) + Send),
    ) -> Result<(), StoreError> {
        let mut rows = sqlx::query(
            "SELECT seq, digest FROM idempotency_digests WHERE chain_id = $1 AND seq < $2",
        )
        .bind(chain_id)
        .bind(to_i64(below))
        .fetch(&self.pool);
        while let Some(row) = rows.try_next().await? {
            each(to_u64(row.get(0), "seq")?, digest_column(row.get(1))?);
        }
        Ok(())
    }

    async fn idempotency_hits(
        &self,
        chain_id: i64,
        seqs: &[u64],
    ) -> Result<HashMap<(String, String), IdempotencyHit>, StoreError> {
        let rows = sqlx::query(
            "SELECT author, idempotency_key, seq, submission_hash FROM entries \
             WHERE chain_id = $1 AND seq = ANY($2)",
        )
        .bind(chain_id)
        .bind(seqs.iter().map(|s| to_i64(*s)).collect::<Vec<_>>())
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|row| {
                Ok((
                    (row.get(0), row.get(1)),
                    IdempotencyHit {
                        seq: to_u64(row.get(2), "seq")?,
                        submission_hash: hash_column(row.get::<&[u8], _>(3), "submission_hash")?,
                    },
                ))
            })
            .collect()
    }

    async fn nodes(
        &self,
        chain_id: i64,
        ids: &[NodeId],
    ) -> Result<HashMap<NodeId, Hash>, StoreError> {
        let sources = node_sources(ids);
        let rows = sqlx::query(
            "WITH k AS (SELECT * FROM UNNEST($2::smallint[], $3::bigint[]) AS k(level, last_leaf)) \
             SELECT t.level, t.last_leaf, t.hash FROM k \
             JOIN tree_nodes t ON t.chain_id = $1 AND t.last_leaf = k.last_leaf AND t.level = k.level \
             UNION ALL \
             SELECT 0::smallint, e.seq, e.entry_hash FROM k \
             JOIN entries e ON e.chain_id = $1 AND k.level = 0 AND e.seq = k.last_leaf",
        )
        .bind(chain_id)
        .bind(sources.iter().map(|id| i16::from(id.level)).collect::<Vec<_>>())
        .bind(sources.iter().map(last_leaf).collect::<Vec<_>>())
        .fetch_all(&self.pool)
        .await?;
        let read = rows
            .into_iter()
            .map(|row| {
                let level: i16 = row.get(0);
                node_row(i64::from(level), row.get(1), row.get::<&[u8], _>(2))
            })
            .collect::<Result<HashMap<_, _>, _>>()?;
        Ok(derive_nodes(ids, &read))
    }

    async fn stream_entries(
        &self,
        chain_id: i64,
        stream_id: u64,
    ) -> Result<Vec<StoredEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT e.seq, e.entry, c.salt, c.body FROM entries e \
             LEFT JOIN contents c ON c.chain_id = e.chain_id AND c.seq = e.seq \
             WHERE e.chain_id = $1 AND e.stream_id = $2 ORDER BY e.stream_version",
        )
        .bind(chain_id)
        .bind(to_i64(stream_id))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|row| stored_entry(row.get(0), row.get(1), row.get(2), row.get(3)))
            .collect()
    }

    async fn entries(
        &self,
        chain_id: i64,
        from_seq: u64,
        limit: u32,
    ) -> Result<Vec<StoredEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT e.seq, e.entry, c.salt, c.body FROM entries e \
             LEFT JOIN contents c ON c.chain_id = e.chain_id AND c.seq = e.seq \
             WHERE e.chain_id = $1 AND e.seq >= $2 ORDER BY e.seq LIMIT $3",
        )
        .bind(chain_id)
        .bind(to_i64(from_seq))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|row| stored_entry(row.get(0), row.get(1), row.get(2), row.get(3)))
            .collect()
    }

    async fn bare_entries(
        &self,
        chain_id: i64,
        from_seq: u64,
        limit: u32,
    ) -> Result<Vec<StoredEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, entry FROM entries WHERE chain_id = $1 AND seq >= $2 \
             ORDER BY seq LIMIT $3",
        )
        .bind(chain_id)
        .bind(to_i64(from_seq))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|row| stored_entry(row.get(0), row.get(1), None, None))
            .collect()
    }

    async fn snapshot(
        &self,
        chain_id: i64,
        sink: &mut (dyn FnMut(StoredEntry) -> Result<(), String> + Send),
    ) -> Result<Option<(u64, String)>, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await?;
        let latest = sqlx::query(
            "SELECT tree_size, note FROM checkpoints WHERE chain_id = $1 ORDER BY tree_size DESC LIMIT 1",
        )
        .bind(chain_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(latest) = latest else {
            return Ok(None);
        };
        let size = to_u64(latest.get(0), "tree_size")?;
        let mut next = 0u64;
        while next < size {
            let rows = sqlx::query(
                "SELECT e.seq, e.entry, c.salt, c.body FROM entries e \
                 LEFT JOIN contents c ON c.chain_id = e.chain_id AND c.seq = e.seq \
                 WHERE e.chain_id = $1 AND e.seq >= $2 ORDER BY e.seq LIMIT $3",
            )
            .bind(chain_id)
            .bind(to_i64(next))
            .bind(super::SNAPSHOT_PAGE)
            .fetch_all(&mut *tx)
            .await?;
            let page = rows
                .into_iter()
                .map(|row| stored_entry(row.get(0), row.get(1), row.get(2), row.get(3)));
            if !sink_page(page, size, &mut next, sink)? {
                break;
            }
        }
        tx.rollback().await?;
        Ok(Some((size, latest.get(1))))
    }

    async fn checkpoint(
        &self,
        chain_id: i64,
        tree_size: u64,
    ) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT note FROM checkpoints WHERE chain_id = $1 AND tree_size = $2",
        )
        .bind(chain_id)
        .bind(to_i64(tree_size))
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn checkpoint_covering(
        &self,
        chain_id: i64,
        seq: u64,
    ) -> Result<Option<(u64, String)>, StoreError> {
        let row = sqlx::query(
            "SELECT tree_size, note FROM checkpoints WHERE chain_id = $1 AND tree_size > $2 \
             ORDER BY tree_size LIMIT 1",
        )
        .bind(chain_id)
        .bind(to_i64(seq))
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| Ok((to_u64(r.get(0), "tree_size")?, r.get(1))))
            .transpose()
    }

    async fn latest_checkpoint(&self, chain_id: i64) -> Result<Option<(u64, String)>, StoreError> {
        let row = sqlx::query(
            "SELECT tree_size, note FROM checkpoints WHERE chain_id = $1 ORDER BY tree_size DESC LIMIT 1",
        )
        .bind(chain_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| Ok((to_u64(r.get(0), "tree_size")?, r.get(1))))
            .transpose()
    }

    async fn keys(&self, chain_id: i64) -> Result<Vec<KeyRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT partner, key_id, verifier_key, custody, from_seq, until_seq FROM signing_keys \
             WHERE chain_id = $1 ORDER BY from_seq, partner, key_id",
        )
        .bind(chain_id)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|row| {
                let custody: String = row.get(3);
                key_record(
                    row.get(0),
                    row.get(1),
                    row.get(2),
                    &custody,
                    row.get(4),
                    row.get(5),
                )
            })
            .collect()
    }
}
