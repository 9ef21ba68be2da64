//! SQLite only: a batch's reads and writes go through one rusqlite connection on a
//! thread of its own, with prepared statements, rather than through the async pool.
//! A rebuild writes a row or two per entry, and a round trip through the pool costs
//! more than the row; here a row costs a few microseconds.

use super::{swap_ddl, Checkpoint, DbError, Dialect, Names, ViewWrite};
use crate::view::StoredRow;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};

type Job = Box<dyn FnOnce(&mut Connection) + Send>;

#[derive(Debug, Clone)]
pub struct Writer {
    jobs: mpsc::Sender<Job>,
}

impl Writer {
    pub fn open(path: &Path) -> Result<Writer, DbError> {
        let conn = Connection::open(path)?;
        // As the pool's connections: NORMAL is enough for a rebuildable view whose rows
        // and checkpoint commit together.
        conn.execute_batch(
            "PRAGMA busy_timeout = 30000; PRAGMA synchronous = NORMAL; \
             PRAGMA cache_size = -65536;",
        )?;
        fold_wal_at_64_mib(&conn)?;
        conn.set_prepared_statement_cache_capacity(64);
        let (jobs, incoming) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("views-writer".into())
            .spawn(move || {
                let mut conn = conn;
                for job in incoming {
                    // A panicking job drops its reply (its caller is told); a transaction
                    // it left open rolled back as it unwound.
                    let _ =
                        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&mut conn)));
                }
            })
            .map_err(|e| DbError::Corrupt(format!("cannot start the views writer thread: {e}")))?;
        Ok(Writer { jobs })
    }

    async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce(&mut Connection) -> Result<T, DbError> + Send + 'static,
    ) -> Result<T, DbError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.jobs
            .send(Box::new(move |conn| {
                let _ = reply.send(job(conn));
            }))
            .map_err(|_| DbError::Corrupt("the views writer thread has stopped".into()))?;
        answer
            .await
            .map_err(|_| DbError::Corrupt("the views writer thread failed a job".into()))?
    }

    /// The bodies of these keys (those that exist) and of these streams' rows.
    pub async fn load(
        &self,
        table: String,
        chain_id: i64,
        keys: Vec<String>,
        streams: Vec<String>,
    ) -> Result<Vec<(String, String)>, DbError> {
        self.run(move |conn| {
            let mut out = Vec::with_capacity(keys.len());
            let mut one = conn.prepare_cached(&format!(
                "SELECT body FROM {table} WHERE chain_id = ?1 AND key = ?2"
            ))?;
            for key in keys {
                if let Some(body) = one
                    .query_row(params![chain_id, key], |r| r.get::<_, String>(0))
                    .optional()?
                {
                    out.push((key, body));
                }
            }
            let mut stream_rows = conn.prepare_cached(&format!(
                "SELECT key, body FROM {table} WHERE chain_id = ?1 AND \
                 (key = ?2 OR (key > ?3 AND key < ?4))"
            ))?;
            for stream in streams {
                let rows = stream_rows.query_map(
                    params![chain_id, stream, format!("{stream}#"), format!("{stream}$")],
                    |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)),
                )?;
                for row in rows {
                    out.push(row?);
                }
            }
            Ok(out)
        })
        .await
    }

    /// Writes a batch: rows, new parties and checkpoints in one transaction.
    pub async fn commit(&self, chain_id: i64, writes: Vec<ViewWrite>) -> Result<(), DbError> {
        self.run(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            for write in &writes {
                write_view(&tx, chain_id, write)?;
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    /// Starts writing rows as they come, in one transaction that commits on
    /// [`Load::Commit`] (and rolls back if the sender goes away first). A rebuild
    /// serialises its rows to JSON while this thread writes those already done.
    pub fn load_shadows(&self, chain_id: i64) -> Result<LoadHandle, DbError> {
        let (pieces, incoming) = mpsc::channel::<Load>();
        let (reply, answer) = tokio::sync::oneshot::channel();
        let abandoned = Arc::new(AtomicBool::new(false));
        let seen = Arc::clone(&abandoned);
        self.jobs
            .send(Box::new(move |conn| {
                let _ = reply.send(load_shadows(conn, chain_id, incoming, &seen));
            }))
            .map_err(|_| DbError::Corrupt("the views writer thread has stopped".into()))?;
        Ok(LoadHandle {
            pieces,
            answer,
            abandoned: Abandon(Some(abandoned)),
        })
    }
}

/// How a load ended, once it has.
pub type LoadAnswer = tokio::sync::oneshot::Receiver<Result<(), DbError>>;

/// The sending end of a load (see [`Writer::load_shadows`]).
pub struct LoadHandle {
    // First, so that it is dropped (and the flag set) before the pieces' sender.
    pub abandoned: Abandon,
    pub pieces: mpsc::Sender<Load>,
    pub answer: LoadAnswer,
}

/// Gives a load up when dropped unless [`Abandon::disarm`]ed: the writer then writes
/// none of the pieces still queued (they would be rolled back) and frees the write
/// lock at once, rather than after writing them.
pub struct Abandon(Option<Arc<AtomicBool>>);

impl Abandon {
    pub fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for Abandon {
    fn drop(&mut self) {
        if let Some(flag) = &self.0 {
            flag.store(true, Ordering::Relaxed);
        }
    }
}

/// A piece of a load (see [`Writer::load_shadows`]).
pub enum Load {
    /// Rows for a table, more of that view to come.
    Rows {
        table: String,
        rows: Vec<StoredRow>,
    },
    /// A view's last rows (maybe none) and its checkpoint.
    View(ViewWrite),
    Commit,
}

fn load_shadows(
    conn: &mut Connection,
    chain_id: i64,
    incoming: mpsc::Receiver<Load>,
    given_up: &AtomicBool,
) -> Result<(), DbError> {
    // The write lock is taken with the first piece, not while it is being made.
    let mut pieces = incoming.iter().peekable();
    if pieces.peek().is_none() {
        return Err(abandoned());
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    for piece in pieces {
        if given_up.load(Ordering::Relaxed) {
            break;
        }
        match piece {
            Load::Rows { table, rows } => write_rows(&tx, chain_id, &table, &rows)?,
            Load::View(write) => write_view(&tx, chain_id, &write)?,
            Load::Commit => {
                // The rebuild folds these rows into the file beside the swap (see
                // `ViewDb::fold_wal_beside`), not here, where the swap would wait for it.
                tx.pragma_update(None, "wal_autocheckpoint", 0)?;
                let committed = tx.commit();
                fold_wal_at_64_mib(conn)?;
                committed?;
                return Ok(());
            }
        }
    }
    Err(abandoned())
}

fn abandoned() -> DbError {
    DbError::Corrupt(
        "the rebuild stopped before its rows were all written; nothing was kept".into(),
    )
}

/// A view's rows and its checkpoint, which must still be where the batch found it.
fn write_view(
    tx: &rusqlite::Transaction<'_>,
    chain_id: i64,
    write: &ViewWrite,
) -> Result<(), DbError> {
    write_rows(tx, chain_id, &write.table, &write.rows)?;
    if checkpoint_update(tx, chain_id, write)? != 1 {
        return Err(DbError::Raced(write.projection.clone()));
    }
    Ok(())
}

fn write_rows(
    tx: &rusqlite::Transaction<'_>,
    chain_id: i64,
    table: &str,
    rows: &[StoredRow],
) -> Result<(), DbError> {
    let mut upsert = tx.prepare_cached(&format!(
        "INSERT INTO {table} (chain_id, key, partner, status, due, subject, body) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (chain_id, key) DO UPDATE \
         SET partner = excluded.partner, status = excluded.status, \
         due = excluded.due, subject = excluded.subject, body = excluded.body"
    ))?;
    let mut party = tx.prepare_cached(&format!(
        "INSERT INTO {table}_parties (chain_id, key, partner) VALUES (?1, ?2, ?3) \
         ON CONFLICT DO NOTHING"
    ))?;
    for row in rows {
        let c = &row.columns;
        upsert.execute(params![
            chain_id, row.key, c.partner, c.status, c.due, c.subject, row.body
        ])?;
        for partner in &row.new_parties {
            party.execute(params![chain_id, row.key, partner])?;
        }
    }
    Ok(())
}

impl Writer {
    /// [`super::ViewDb::fold_wal`] on this connection.
    pub async fn fold_wal(&self) -> Result<(), DbError> {
        self.run(|conn| {
            // Emptying the WAL waits for readers; this gives up at once instead.
            conn.busy_timeout(std::time::Duration::ZERO)?;
            let folded = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
            conn.busy_timeout(std::time::Duration::from_secs(30))?;
            Ok(folded?)
        })
        .await
    }

    /// [`super::ViewDb::swap`] on this connection.
    pub async fn swap(&self, chain_id: i64, pairs: Vec<(Names, Names)>) -> Result<(), DbError> {
        self.run(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            for (live, shadow) in &pairs {
                for statement in swap_ddl(live, shadow, Dialect::Sqlite) {
                    tx.execute(&statement, [])?;
                }
                tx.execute(
                    "DELETE FROM view_checkpoints WHERE chain_id = ?1 AND projection = ?2",
                    params![chain_id, live.projection],
                )?;
                tx.execute(
                    "UPDATE view_checkpoints SET projection = ?1 WHERE chain_id = ?2 \
                     AND projection = ?3",
                    params![live.projection, chain_id, shadow.projection],
                )?;
            }
            // Not folded here either: the rows loaded may still be being folded beside.
            tx.pragma_update(None, "wal_autocheckpoint", 0)?;
            let committed = tx.commit();
            fold_wal_at_64_mib(conn)?;
            Ok(committed?)
        })
        .await
    }
}

/// The WAL is folded into the file once it holds 64 MiB, whatever the page size (16 KiB
/// on files made since session 10, 4 KiB before).
fn fold_wal_at_64_mib(conn: &Connection) -> Result<(), DbError> {
    let page_size: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
    conn.pragma_update(None, "wal_autocheckpoint", (64 << 20) / page_size.max(512))?;
    Ok(())
}

fn checkpoint_update(
    tx: &rusqlite::Transaction<'_>,
    chain_id: i64,
    write: &ViewWrite,
) -> Result<usize, DbError> {
    let c: &Checkpoint = &write.checkpoint;
    let mut update = tx.prepare_cached(
        "UPDATE view_checkpoints SET next_seq = ?1, last_hash = ?2, updated_at = ?3, \
         last_recorded_at = ?4 WHERE chain_id = ?5 AND projection = ?6 AND next_seq = ?7 \
         AND last_hash = ?8",
    )?;
    Ok(update.execute(params![
        c.next_seq as i64,
        c.last_hash,
        c.updated_at,
        c.last_recorded_at,
        chain_id,
        write.projection,
        write.from as i64,
        write.from_hash
    ])?)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests fail loudly by design
    use super::*;

    /// A rebuild's load and swap commit without folding the WAL (the fold runs beside
    /// them), but the writer must fold at 64 MiB again afterwards, or the WAL of a
    /// service that rebuilt once would grow without end.
    #[tokio::test]
    async fn after_a_load_and_a_swap_the_wal_is_folded_at_64_mib_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("views.db");
        Connection::open(&path)
            .unwrap()
            .pragma_update(None, "journal_mode", "WAL")
            .unwrap();
        let writer = Writer::open(&path).unwrap();
        let folds_at = || {
            writer.run(|conn| {
                Ok(conn.query_row("PRAGMA wal_autocheckpoint", [], |r| r.get::<_, i64>(0))?)
            })
        };
        // 64 MiB of this file's 4 KiB pages.
        assert_eq!(folds_at().await.unwrap(), 16_384);

        let mut load = writer.load_shadows(1).unwrap();
        load.abandoned.disarm();
        load.pieces.send(Load::Commit).unwrap();
        load.answer.await.unwrap().unwrap();
        assert_eq!(folds_at().await.unwrap(), 16_384, "after the load");

        writer.swap(1, Vec::new()).await.unwrap();
        assert_eq!(folds_at().await.unwrap(), 16_384, "after the swap");
    }
}
