//! Read connections driven through rusqlite on tokio's blocking threads, for reads that
//! return many rows: pages of entries for the views, the notice feed and a rebuild.
//!
//! sqlx's driver steps a statement on its connection's own thread and hands each row
//! across a channel, copying it into a row object whose columns are then copied again;
//! a rebuild's reads of 1,000 entries took about 23 ms that way. Here a page is read
//! and turned into entries in one go on one thread.

use super::super::{to_i64, to_u64, StoreError, StoredEntry};
use rusqlite::{params, Connection, OpenFlags};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Reads at a time, and connections kept open between them (as the sqlx pool's four).
const CONNECTIONS: usize = 4;

/// Entries from a sequence number on, in order, without their content. `+e.chain_id`
/// keeps SQLite on the rowid (the sequence number), as in `ENTRIES_FROM`.
const BARE_ENTRIES_FROM: &str =
    "SELECT e.seq, e.entry FROM entries e WHERE +e.chain_id = ?1 AND e.seq >= ?2 \
     ORDER BY e.seq LIMIT ?3";

#[derive(Debug, Clone)]
pub(super) struct Readers {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    /// Bounds the connections open at once.
    permits: Arc<tokio::sync::Semaphore>,
}

impl Readers {
    pub(super) fn new(path: PathBuf) -> Readers {
        Readers {
            shared: Arc::new(Shared {
                path,
                idle: Mutex::new(Vec::new()),
                permits: Arc::new(tokio::sync::Semaphore::new(CONNECTIONS)),
            }),
        }
    }

    /// Up to `limit` entries from `from_seq` on, without their content.
    pub(super) async fn bare_entries(
        &self,
        chain_id: i64,
        from_seq: u64,
        limit: u32,
    ) -> Result<Vec<StoredEntry>, StoreError> {
        let from = to_i64(from_seq);
        self.read(move |conn| {
            let mut page = conn.prepare_cached(BARE_ENTRIES_FROM)?;
            let mut rows = page.query(params![chain_id, from, i64::from(limit)])?;
            let mut out = Vec::with_capacity(limit.min(4096) as usize);
            while let Some(row) = rows.next()? {
                out.push(StoredEntry {
                    seq: to_u64(row.get(0)?, "seq")?,
                    bytes: row.get(1)?,
                    content: None,
                });
            }
            Ok(out)
        })
        .await
    }

    /// Runs `job` on a blocking thread with an idle connection (or a new one).
    async fn read<T: Send + 'static>(
        &self,
        job: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let shared = Arc::clone(&self.shared);
        let permit = Arc::clone(&shared.permits)
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Corrupt("the ledger's readers have closed".into()))?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let conn = match shared.take() {
                Some(conn) => conn,
                None => open(&shared)?,
            };
            let result = job(&conn);
            // A connection whose read failed is dropped rather than reused: whatever
            // went wrong (a full disk, a corrupt page) it holds no state worth keeping.
            if result.is_ok() {
                shared.put_back(conn);
            }
            result
        })
        .await
        .map_err(|e| StoreError::Corrupt(format!("a read of the ledger failed: {e}")))?
    }
}

impl Shared {
    fn take(&self) -> Option<Connection> {
        // A poisoned lock only means another read panicked while holding it; the list
        // of idle connections is still sound.
        self.idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .pop()
    }

    fn put_back(&self, conn: Connection) {
        let mut idle = self
            .idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if idle.len() < CONNECTIONS {
            idle.push(conn);
        }
    }
}

fn open(shared: &Shared) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        &shared.path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(Duration::from_secs(10))?;
    // As the pool's connections, but never writing: `query_only` refuses any statement
    // that would change the file.
    conn.execute_batch(
        "PRAGMA query_only = ON; \
         PRAGMA cache_size = -16384; \
         PRAGMA mmap_size = 268435456;",
    )?;
    conn.set_prepared_statement_cache_capacity(8);
    Ok(conn)
}
