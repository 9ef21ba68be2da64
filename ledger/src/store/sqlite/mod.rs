//! The embedded default: one SQLite file in the data directory, in WAL mode with
//! `synchronous=FULL` (a commit is on disk when it returns), every write transaction
//! opened with `BEGIN IMMEDIATE` so the write lock is taken before the head is read,
//! and `secure_delete` so redacted content is overwritten, not just unlinked.
//!
//! Writes go through one connection driven by [`writer`]; reads through a small pool.

mod readers;
mod writer;

use super::{
    chain_state, derive_nodes, hash_column, key_record, last_leaf, migrations, node_row,
    node_sources, sink_page, stored_entry, to_i64, to_u64, Backend, Batch, ChainState, HeadRow,
    IdempotencyHit, LedgerStore, StoreError, StoredEntry, StreamPosition, HEAD_ROWS,
};
use crate::hash::Hash;
use crate::keyring::KeyRecord;
use crate::merkle::NodeId;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{ConnectOptions, Connection, QueryBuilder, Row, Sqlite};
use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Entries (with their content, unless redacted) from a sequence number on, in order.
///
/// An entry's sequence number is its rowid. `+e.chain_id` keeps SQLite from reading by
/// `entries_by_stream` (which also starts with the chain) and sorting the whole chain
/// for every page: that made an export of a million entries quadratic.
const ENTRIES_FROM: &str = "SELECT e.seq, e.entry, c.salt, c.body FROM entries e \
     LEFT JOIN contents c ON c.seq = e.seq \
     WHERE +e.chain_id = ? AND e.seq >= ? ORDER BY e.seq LIMIT ?";

/// Keys per lookup statement; keeps statements well under SQLite's bound-parameter limit.
const KEYS_PER_LOOKUP: usize = 400;

/// Work for the writer thread.
type WriterJob = Box<dyn FnOnce(&mut rusqlite::Connection) + Send>;

/// The writer thread, named `sqlite-writer`: it runs jobs one at a time, in the order
/// sent, and ends when the last handle to the store is dropped.
#[derive(Debug, Clone)]
struct WriterThread {
    jobs: std::sync::mpsc::Sender<WriterJob>,
}

impl WriterThread {
    fn start(conn: rusqlite::Connection) -> std::io::Result<WriterThread> {
        let (jobs, incoming) = std::sync::mpsc::channel::<WriterJob>();
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || {
                let mut conn = conn;
                for job in incoming {
                    // A job that panics has its caller told (its reply is dropped); an
                    // open transaction was rolled back as it unwound, so the connection
                    // is still sound for the next job.
                    let _ = std::panic::catch_unwind(AssertUnwindSafe(|| job(&mut conn)));
                }
            })?;
        Ok(WriterThread { jobs })
    }
}

#[derive(Debug, Clone)]
pub struct SqliteStore {
    /// The thread owning the one connection every write goes through, held directly
    /// rather than pooled: its page cache stays warm (each SQLite connection has its
    /// own, invalidated by other connections' writes) and no pool check precedes each
    /// batch.
    writer: WriterThread,
    /// Connections for reads, which WAL lets run beside the writer.
    pool: SqlitePool,
    /// Read connections without sqlx, for pages of entries.
    readers: readers::Readers,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and applies migrations.
    pub async fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        // The file holds redactable content (personal data): readable by its owner only.
        migrations::create_private_file(path)
            .map_err(|e| StoreError::Corrupt(format!("cannot create {}: {e}", path.display())))?;
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10))
            .pragma("secure_delete", "on")
            // Statement journals and sorts of the read connections stay in memory.
            .pragma("temp_store", "memory")
            .pragma("cache_size", "-65536")
            .pragma("mmap_size", "268435456")
            .pragma("wal_autocheckpoint", "16384")
            .statement_cache_capacity(400)
            // A page of entries (the views read up to 2,000 at a time while following)
            // comes back through a channel from the connection's thread; at sqlx's
            // default of 50 rows, that thread and the reader woke each other about once
            // a row.
            .row_buffer_size(1024);
        let mut migrator = options.connect().await?;
        migrations::sqlite().run(&mut migrator).await?;
        migrator.close().await?;
        let file = path.to_path_buf();
        let writer = tokio::task::spawn_blocking(move || writer::open(&file))
            .await
            .map_err(|e| StoreError::Corrupt(format!("the writer could not start: {e}")))??;
        let writer = WriterThread::start(writer).map_err(|e| {
            StoreError::Corrupt(format!("cannot start the SQLite writer thread: {e}"))
        })?;
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        Ok(SqliteStore {
            writer,
            pool,
            readers: readers::Readers::new(path.to_path_buf()),
        })
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Runs `job` with the writer connection on the writer thread.
    async fn write<T: Send + 'static>(
        &self,
        job: impl FnOnce(&mut rusqlite::Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (done, result) = tokio::sync::oneshot::channel();
        self.writer
            .jobs
            .send(Box::new(move |conn| {
                let _ = done.send(job(conn));
            }))
            .map_err(|_| StoreError::Corrupt("the SQLite writer thread has stopped".into()))?;
        result.await.map_err(|_| {
            StoreError::Corrupt("the SQLite writer thread failed during a write".into())
        })?
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

impl LedgerStore for SqliteStore {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    async fn chain(&self, origin: &str) -> Result<Option<ChainState>, StoreError> {
        self.chain_where("WHERE c.origin = ?", Some(origin)).await
    }

    async fn sole_chain(&self) -> Result<Option<ChainState>, StoreError> {
        self.chain_where("", None).await
    }

    async fn create_chain(&self, origin: &str, created_at: &str) -> Result<i64, StoreError> {
        let (origin, created_at) = (origin.to_string(), created_at.to_string());
        self.write(move |conn| writer::create_chain(conn, &origin, &created_at))
            .await
    }

    async fn commit(&self, batch: Arc<Batch>) -> Result<(), StoreError> {
        self.write(move |conn| writer::commit(conn, &batch)).await
    }

    // The two loads below read every stream and every entry's digest once, at start.
    // They go through the writer's connection: sqlx hands rows one by one across a
    // thread, which made opening a log of a million entries take seconds.

    async fn all_stream_versions(
        &self,
        chain_id: i64,
        below: u64,
    ) -> Result<HashMap<String, StreamPosition>, StoreError> {
        self.write(move |conn| writer::all_stream_versions(conn, chain_id, below))
            .await
    }

    async fn all_idempotency_digests(
        &self,
        chain_id: i64,
        below: u64,
        each: &mut (dyn FnMut(u64, [u8; 16]) + Send),
    ) -> Result<(), StoreError> {
        let digests = self
            .write(move |conn| writer::all_idempotency_digests(conn, chain_id, below))
            .await?;
        for (seq, digest) in digests {
            each(seq, digest);
        }
        Ok(())
    }

    async fn idempotency_hits(
        &self,
        chain_id: i64,
        seqs: &[u64],
    ) -> Result<HashMap<(String, String), IdempotencyHit>, StoreError> {
        let mut hits = HashMap::new();
        for chunk in seqs.chunks(KEYS_PER_LOOKUP) {
            let mut q: QueryBuilder<Sqlite> = QueryBuilder::new(
                "SELECT author, idempotency_key, seq, submission_hash FROM entries WHERE +chain_id = ",
            );
            q.push_bind(chain_id).push(" AND seq IN (");
            let mut list = q.separated(", ");
            for seq in chunk {
                list.push_bind(to_i64(*seq));
            }
            q.push(")");
            for row in q.build().fetch_all(&self.pool).await? {
                hits.insert(
                    (row.get(0), row.get(1)),
                    IdempotencyHit {
                        seq: to_u64(row.get(2), "seq")?,
                        submission_hash: hash_column(row.get::<&[u8], _>(3), "submission_hash")?,
                    },
                );
            }
        }
        Ok(hits)
    }

    async fn nodes(
        &self,
        chain_id: i64,
        ids: &[NodeId],
    ) -> Result<HashMap<NodeId, Hash>, StoreError> {
        let sources = node_sources(ids);
        let mut found = HashMap::with_capacity(sources.len());
        for chunk in sources.chunks(KEYS_PER_LOOKUP) {
            let mut q: QueryBuilder<Sqlite> =
                QueryBuilder::new("WITH k(level, last_leaf) AS (VALUES ");
            let mut list = q.separated(", ");
            for id in chunk {
                list.push("(")
                    .push_bind_unseparated(i64::from(id.level))
                    .push_unseparated(", ")
                    .push_bind_unseparated(last_leaf(id))
                    .push_unseparated(")");
            }
            q.push(
                ") SELECT t.level, t.last_leaf, t.hash FROM k JOIN tree_nodes t ON t.chain_id = ",
            );
            q.push_bind(chain_id)
                .push(" AND t.last_leaf = k.last_leaf AND t.level = k.level");
            // Leaves come from their entries' hashes.
            q.push(
                " UNION ALL SELECT 0, e.seq, e.entry_hash FROM k JOIN entries e ON +e.chain_id = ",
            );
            q.push_bind(chain_id)
                .push(" AND k.level = 0 AND e.seq = k.last_leaf");
            for row in q.build().fetch_all(&self.pool).await? {
                let (id, hash) = node_row(row.get(0), row.get(1), row.get::<&[u8], _>(2))?;
                found.insert(id, hash);
            }
        }
        Ok(derive_nodes(ids, &found))
    }

    async fn entries(
        &self,
        chain_id: i64,
        from_seq: u64,
        limit: u32,
    ) -> Result<Vec<StoredEntry>, StoreError> {
        let rows = sqlx::query(ENTRIES_FROM)
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
        self.readers.bare_entries(chain_id, from_seq, limit).await
    }

    async fn stream_entries(
        &self,
        chain_id: i64,
        stream_id: u64,
    ) -> Result<Vec<StoredEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT e.seq, e.entry, c.salt, c.body FROM entries e \
             LEFT JOIN contents c ON c.seq = e.seq \
             WHERE e.chain_id = ? AND e.stream_id = ? ORDER BY e.stream_version",
        )
        .bind(chain_id)
        .bind(to_i64(stream_id))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|row| stored_entry(row.get(0), row.get(1), row.get(2), row.get(3)))
            .collect()
    }

    async fn snapshot(
        &self,
        chain_id: i64,
        sink: &mut (dyn FnMut(StoredEntry) -> Result<(), String> + Send),
    ) -> Result<Option<(u64, String)>, StoreError> {
        // In WAL mode a read transaction sees one snapshot from its first read on.
        let mut tx = self.pool.begin().await?;
        let latest = sqlx::query(
            "SELECT tree_size, note FROM checkpoints WHERE chain_id = ? ORDER BY tree_size DESC LIMIT 1",
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
            let rows = sqlx::query(ENTRIES_FROM)
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
        Ok(
            sqlx::query_scalar("SELECT note FROM checkpoints WHERE chain_id = ? AND tree_size = ?")
                .bind(chain_id)
                .bind(to_i64(tree_size))
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    async fn checkpoint_covering(
        &self,
        chain_id: i64,
        seq: u64,
    ) -> Result<Option<(u64, String)>, StoreError> {
        let row = sqlx::query(
            "SELECT tree_size, note FROM checkpoints WHERE chain_id = ? AND tree_size > ? \
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
            "SELECT tree_size, note FROM checkpoints WHERE chain_id = ? ORDER BY tree_size DESC LIMIT 1",
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
             WHERE chain_id = ? ORDER BY from_seq, partner, key_id",
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads by sequence number must walk the rowid, never scan and sort the chain.
    #[tokio::test]
    async fn entry_reads_go_by_rowid() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("ledger.db"))
            .await
            .unwrap();
        let plans: Vec<String> = sqlx::query(&format!("EXPLAIN QUERY PLAN {ENTRIES_FROM}"))
            .bind(1_i64)
            .bind(0_i64)
            .bind(10_i64)
            .fetch_all(store.pool())
            .await
            .unwrap()
            .iter()
            .map(|row| row.get::<String, _>(3))
            .collect();
        assert!(
            plans
                .iter()
                .any(|p| p.contains("INTEGER PRIMARY KEY (rowid>?)")),
            "{plans:?}"
        );
        assert!(
            !plans.iter().any(|p| p.contains("TEMP B-TREE")),
            "{plans:?}"
        );
    }
}
