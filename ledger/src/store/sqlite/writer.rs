//! The SQLite writer: the one read-write connection, driven synchronously on a blocking
//! thread through rusqlite rather than sqlx.
//!
//! Why a second SQLite library: a batch is many small inserts, and rusqlite keeps each
//! insert as a prepared statement that is bound, stepped and reset per row. Through
//! sqlx the batch was one multi-row statement parsed afresh each time (its shape
//! changes with the batch), and parsing took about a sixth of the writer thread's time.
//! Reads stay on sqlx's pool (both link the same SQLite library), except the two
//! start-up loads below, which read a row per stream and per entry: sqlx hands rows
//! over one by one across a thread, which made opening a large log take seconds.

use super::super::{
    digest_column, last_leaf, stored_node, stream_position, to_i64, to_u64, Batch, StoreError,
    StreamPosition,
};
use crate::hash::Hash;
use rusqlite::{params, Connection, OpenFlags, TransactionBehavior};
use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

/// Opens the writer connection on a database file whose migrations have been applied.
pub(super) fn open(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(Duration::from_secs(10))?;
    // Per-connection settings: a commit is on disk when it returns (FULL), content
    // deleted by a redaction is overwritten (secure_delete), and the WAL is folded into
    // the main file every 16,384 pages (64 MiB) rather than every 1,000, so pages that
    // many batches rewrite are copied once.
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; \
         PRAGMA synchronous = FULL; \
         PRAGMA foreign_keys = ON; \
         PRAGMA secure_delete = ON; \
         PRAGMA temp_store = MEMORY; \
         PRAGMA cache_size = -8192; \
         PRAGMA wal_autocheckpoint = 16384;",
    )?;
    conn.set_prepared_statement_cache_capacity(32);
    Ok(conn)
}

/// Creates an empty chain and its head row; returns its id.
pub(super) fn create_chain(
    conn: &mut Connection,
    origin: &str,
    created_at: &str,
) -> Result<i64, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let chain_id: i64 = tx.query_row(
        "INSERT INTO chains (origin, created_at) VALUES (?1, ?2) RETURNING chain_id",
        params![origin, created_at],
        |row| row.get(0),
    )?;
    tx.execute(
        "INSERT INTO chain_heads (chain_id, size, last_entry_hash, last_recorded_at) \
         VALUES (?1, 0, ?2, ?3)",
        params![chain_id, Hash::ZERO.0.as_slice(), created_at],
    )?;
    tx.commit()?;
    Ok(chain_id)
}

/// Writes a batch in one `BEGIN IMMEDIATE` transaction: one commit, one fsync. The head
/// row is moved first, and only if it is where the batch was sequenced from; otherwise
/// nothing is written and the caller learns where the head is.
pub(super) fn commit(conn: &mut Connection, batch: &Batch) -> Result<(), StoreError> {
    let Some(last) = batch.entries.last() else {
        return Ok(());
    };
    let chain = batch.chain_id;
    // Dropping the transaction without committing rolls it back.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let moved = tx
        .prepare_cached(
            "UPDATE chain_heads SET size = ?1, last_entry_hash = ?2, last_recorded_at = ?3 \
             WHERE chain_id = ?4 AND size = ?5 AND last_entry_hash = ?6",
        )?
        .execute(params![
            to_i64(batch.new_size()),
            last.hash.0.as_slice(),
            batch.last_recorded_at,
            chain,
            to_i64(batch.base_size),
            batch.base_hash.0.as_slice()
        ])?;
    if moved != 1 {
        let found: i64 = tx.query_row(
            "SELECT size FROM chain_heads WHERE chain_id = ?1",
            [chain],
            |row| row.get(0),
        )?;
        return Err(StoreError::HeadMoved {
            expected: batch.base_size,
            found: to_u64(found, "size")?,
        });
    }
    {
        let mut entry = tx.prepare_cached(
            "INSERT INTO entries (chain_id, seq, entry, entry_hash, author, event_type, \
             stream_id, stream_version, idempotency_key, submission_hash) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        )?;
        let mut stream = tx.prepare_cached(
            "INSERT INTO streams (chain_id, stream, stream_id) VALUES (?1, ?2, ?3)",
        )?;
        let mut digest = tx.prepare_cached(
            "INSERT INTO idempotency_digests (seq, chain_id, digest) VALUES (?1, ?2, ?3)",
        )?;
        let mut content = tx.prepare_cached(
            "INSERT INTO contents (chain_id, seq, salt, body) VALUES (?1, ?2, ?3, ?4)",
        )?;
        for e in &batch.entries {
            entry
                .execute(params![
                    chain,
                    to_i64(e.seq),
                    e.bytes,
                    e.hash.0.as_slice(),
                    e.author,
                    e.event_type,
                    to_i64(e.stream_id),
                    to_i64(e.stream_version),
                    e.idempotency_key,
                    e.submission_hash.0.as_slice(),
                ])
                .map_err(StoreError::from_rusqlite)?;
            digest.execute(params![to_i64(e.seq), chain, e.key_digest.as_slice()])?;
            if e.opens_stream {
                stream
                    .execute(params![chain, e.stream, to_i64(e.stream_id)])
                    .map_err(StoreError::from_rusqlite)?;
            }
            if let Some((salt, body)) = &e.content {
                content.execute(params![chain, to_i64(e.seq), salt, body])?;
            }
        }
    }
    {
        // Leaves and the lowest levels are not stored (see `stored_node`).
        let mut node = tx.prepare_cached(
            "INSERT INTO tree_nodes (chain_id, last_leaf, level, hash) VALUES (?1, ?2, ?3, ?4)",
        )?;
        for (id, hash) in batch.nodes.iter().filter(|(id, _)| stored_node(id)) {
            node.execute(params![
                chain,
                last_leaf(id),
                i64::from(id.level),
                hash.0.as_slice()
            ])?;
        }
    }
    tx.prepare_cached("INSERT INTO checkpoints (chain_id, tree_size, note) VALUES (?1, ?2, ?3)")?
        .execute(params![
            chain,
            to_i64(batch.new_size()),
            batch.checkpoint_note
        ])?;
    for key in &batch.keys {
        tx.execute(
            "INSERT INTO signing_keys \
             (chain_id, partner, key_id, verifier_key, custody, from_seq, until_seq) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
             ON CONFLICT (chain_id, partner, key_id) DO UPDATE SET until_seq = excluded.until_seq",
            params![
                chain,
                key.partner,
                key.key_id,
                key.verifier_key,
                key.custody.as_str(),
                to_i64(key.from_seq),
                key.until_seq.map(to_i64)
            ],
        )?;
    }
    for seq in &batch.redactions {
        // Not counted: a target whose content an earlier entry already removed.
        tx.execute(
            "DELETE FROM contents WHERE chain_id = ?1 AND seq = ?2",
            params![chain, to_i64(*seq)],
        )?;
    }
    tx.commit()?;
    if !batch.redactions.is_empty() {
        // The WAL still holds the pages as they were before the delete; fold it into the
        // main file (where secure_delete zeroed the content) and truncate it.
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    }
    Ok(())
}

/// Every stream's id and version as of the first `below` entries.
pub(super) fn all_stream_versions(
    conn: &mut Connection,
    chain_id: i64,
    below: u64,
) -> Result<HashMap<String, StreamPosition>, StoreError> {
    let mut query = conn.prepare(
        "SELECT s.stream, s.stream_id, (SELECT MAX(e.stream_version) FROM entries e \
         WHERE e.chain_id = s.chain_id AND e.stream_id = s.stream_id AND e.seq < ?2) \
         FROM streams s WHERE s.chain_id = ?1 AND s.stream_id < ?2",
    )?;
    let mut rows = query.query(params![chain_id, to_i64(below)])?;
    let mut streams = HashMap::new();
    while let Some(row) = rows.next()? {
        let (name, position) = stream_position(row.get(0)?, row.get(1)?, row.get(2)?)?;
        streams.insert(name, position);
    }
    Ok(streams)
}

/// The idempotency digest of each of the first `below` entries, with its sequence number.
pub(super) fn all_idempotency_digests(
    conn: &mut Connection,
    chain_id: i64,
    below: u64,
) -> Result<Vec<(u64, [u8; 16])>, StoreError> {
    let mut query = conn
        .prepare("SELECT seq, digest FROM idempotency_digests WHERE chain_id = ?1 AND seq < ?2")?;
    let mut rows = query.query(params![chain_id, to_i64(below)])?;
    let mut digests = Vec::new();
    while let Some(row) = rows.next()? {
        let digest: Vec<u8> = row.get(1)?;
        digests.push((to_u64(row.get(0)?, "seq")?, digest_column(&digest)?));
    }
    Ok(digests)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The durability settings the store promises hold on the connection every write
    /// goes through (they are per connection, so the pool's settings say nothing).
    #[tokio::test]
    async fn the_writer_commits_durably_and_erases_deleted_content() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.db");
        super::super::SqliteStore::open(&path).await.unwrap();
        let conn = open(&path).unwrap();
        let pragma = |name: &str| -> String {
            conn.query_row(&format!("PRAGMA {name}"), [], |row| {
                row.get::<_, rusqlite::types::Value>(0)
            })
            .map(|v| match v {
                rusqlite::types::Value::Integer(i) => i.to_string(),
                rusqlite::types::Value::Text(t) => t,
                other => format!("{other:?}"),
            })
            .unwrap()
        };
        assert_eq!(pragma("journal_mode"), "wal");
        assert_eq!(pragma("synchronous"), "2", "FULL");
        assert_eq!(pragma("secure_delete"), "1");
        assert_eq!(pragma("foreign_keys"), "1");
    }
}
