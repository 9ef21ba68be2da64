//! The views' database: SQLite (`views.db` in the data directory, beside the ledger's
//! file, so the ledger's writer never waits on a view) or PostgreSQL (schema `views` of
//! the ledger's database). One set of SQL serves both through sqlx's `Any` driver;
//! placeholders are written `?` and numbered for PostgreSQL.
//!
//! Each view has two tables: `view_NAME` (a row per tracked thing, with the columns it is
//! queried by and its body as JSON) and `view_NAME_parties` (who may see it). A rebuild
//! writes `view_NAME__shadow` and its parties table, then swaps them in.

mod writer;

use crate::view::{Columns, StoredRow};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Executor, Row};
use std::collections::{BTreeSet, HashMap};
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("views database: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("views database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("views database migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("views database: {0}")]
    Corrupt(String),
    /// Another process moved the projection on first (two runners on one database).
    #[error("projection {0} was advanced by another process meanwhile")]
    Raced(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// Where a projection stands (one row of `view_checkpoints`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub next_seq: u64,
    pub last_hash: String,
    pub version: u32,
    pub settings: String,
    pub updated_at: String,
    pub last_recorded_at: Option<String>,
    pub stopped: Option<String>,
}

/// Which rows to load.
pub enum Select<'a> {
    Keys(&'a [String]),
    /// Streams' rows and their `STREAM#…` rows.
    Streams(&'a [String]),
    All,
}

/// A query on one view.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only rows this partner is party to.
    pub party: Option<String>,
    /// Only rows this partner must act on.
    pub partner: Option<String>,
    pub status: Option<String>,
    pub subject: Option<String>,
    /// Only rows with a due date (or instant) up to this text, inclusive.
    pub due_by: Option<String>,
    /// Only rows with a due date.
    pub with_due: bool,
    /// Cursor: only keys after this one.
    pub after: Option<String>,
    pub limit: u32,
}

#[derive(Debug, Clone)]
pub struct ViewDb {
    pool: AnyPool,
    dialect: Dialect,
    /// SQLite: the connection a batch's loads and writes go through.
    writer: Option<writer::Writer>,
}

const ROW_COLUMNS: &str = "key, partner, status, due, subject, body";

/// Rows per multi-row statement: 7 parameters each, well under SQLite's limit.
const ROWS_PER_STATEMENT: usize = 500;

impl ViewDb {
    /// Opens (creating) `path` as the SQLite views database.
    pub async fn sqlite(path: &Path) -> Result<ViewDb, DbError> {
        sqlx::any::install_default_drivers();
        // Views hold pseudonyms and partners' dealings: readable by the owner only, as
        // the ledger's file.
        ledger::store::migrations::create_private_file(path)
            .map_err(|e| DbError::Corrupt(format!("cannot create {}: {e}", path.display())))?;
        let url = ledger::store::migrations::sqlite_url(path);
        let pool = AnyPoolOptions::new()
            .max_connections(4)
            .after_connect(|conn, _| {
                Box::pin(async move {
                    // Views are rebuilt from the log, and rows and checkpoint commit
                    // together, so NORMAL (durable at the next checkpoint of the WAL,
                    // never torn) is enough here; the ledger's own file keeps FULL.
                    // 16 KiB pages (on a new file; an existing file keeps its own):
                    // a rebuild writes tens of megabytes of rows at once, and with 4 KiB
                    // pages writing them took twice as long.
                    conn.execute(
                        "PRAGMA busy_timeout = 30000; PRAGMA synchronous = NORMAL; \
                         PRAGMA page_size = 16384; PRAGMA journal_mode = WAL;",
                    )
                    .await?;
                    Ok(())
                })
            })
            .connect(&url)
            .await?;
        crate::migrations::sqlite().run(&pool).await?;
        let file = path.to_path_buf();
        let writer = tokio::task::spawn_blocking(move || writer::Writer::open(&file))
            .await
            .map_err(|e| DbError::Corrupt(format!("the views writer could not start: {e}")))??;
        Ok(ViewDb {
            pool,
            dialect: Dialect::Sqlite,
            writer: Some(writer),
        })
    }

    /// Opens schema `views` of the PostgreSQL database at `url` (the ledger's).
    pub async fn postgres(url: &str) -> Result<ViewDb, DbError> {
        sqlx::any::install_default_drivers();
        let pool = AnyPoolOptions::new()
            // A batch commits each changed view on a connection of its own (see
            // `commit`); readers need a few beside them.
            .max_connections(8)
            .after_connect(|conn, _| {
                Box::pin(async move {
                    // A shadow table grows from empty during a rebuild; a plan cached
                    // while it was small (a sequential scan) would be kept as it grows,
                    // making each batch slower than the last. Plan each statement anew.
                    conn.execute(
                        "SET search_path TO views; SET plan_cache_mode = force_custom_plan",
                    )
                    .await?;
                    Ok(())
                })
            })
            .connect(url)
            .await?;
        sqlx::query("CREATE SCHEMA IF NOT EXISTS views")
            .execute(&pool)
            .await?;
        let db = ViewDb {
            pool,
            dialect: Dialect::Postgres,
            writer: None,
        };
        crate::migrations::postgres().run(&db.pool).await?;
        Ok(db)
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// `sql` with its `?` placeholders numbered for PostgreSQL.
    fn sql(&self, sql: &str) -> String {
        match self.dialect {
            Dialect::Sqlite => sql.to_string(),
            Dialect::Postgres => ledger::store::migrations::numbered_placeholders(sql),
        }
    }

    /// Creates a view's tables if they do not exist; `indexed` adds the query indexes
    /// (a shadow gets them once it is loaded, which loads it faster).
    pub async fn create_tables(&self, table: &str, indexed: bool) -> Result<(), DbError> {
        let mut tx = self.pool.begin().await?;
        for statement in table_ddl(table, indexed, self.dialect) {
            tx.execute(statement.as_str()).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn drop_tables(&self, table: &str) -> Result<(), DbError> {
        let mut tx = self.pool.begin().await?;
        tx.execute(format!("DROP TABLE IF EXISTS {table}").as_str())
            .await?;
        tx.execute(format!("DROP TABLE IF EXISTS {table}_parties").as_str())
            .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn checkpoints(&self, chain_id: i64) -> Result<HashMap<String, Checkpoint>, DbError> {
        let rows = sqlx::query(&self.sql(
            "SELECT projection, next_seq, last_hash, version, settings, updated_at, \
             last_recorded_at, stopped FROM view_checkpoints WHERE chain_id = ?",
        ))
        .bind(chain_id)
        .fetch_all(&self.pool)
        .await?;
        let mut out = HashMap::new();
        for row in rows {
            let name: String = row.try_get(0)?;
            let next_seq: i64 = row.try_get(1)?;
            let version: i64 = row.try_get(3)?;
            out.insert(
                name,
                Checkpoint {
                    next_seq: u64::try_from(next_seq)
                        .map_err(|_| DbError::Corrupt(format!("next_seq {next_seq}")))?,
                    last_hash: row.try_get(2)?,
                    version: u32::try_from(version)
                        .map_err(|_| DbError::Corrupt(format!("version {version}")))?,
                    settings: row.try_get(4)?,
                    updated_at: row.try_get(5)?,
                    last_recorded_at: row.try_get(6)?,
                    stopped: row.try_get(7)?,
                },
            );
        }
        Ok(out)
    }

    /// Sets a projection's checkpoint outright (a new or emptied view).
    pub async fn reset_checkpoint(
        &self,
        chain_id: i64,
        projection: &str,
        checkpoint: &Checkpoint,
    ) -> Result<(), DbError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            &self.sql("DELETE FROM view_checkpoints WHERE chain_id = ? AND projection = ?"),
        )
        .bind(chain_id)
        .bind(projection)
        .execute(&mut *tx)
        .await?;
        self.insert_checkpoint(&mut tx, chain_id, projection, checkpoint)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn insert_checkpoint(
        &self,
        tx: &mut sqlx::AnyConnection,
        chain_id: i64,
        projection: &str,
        c: &Checkpoint,
    ) -> Result<(), DbError> {
        sqlx::query(&self.sql(
            "INSERT INTO view_checkpoints (chain_id, projection, next_seq, last_hash, version, \
             settings, updated_at, last_recorded_at, stopped) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        ))
        .bind(chain_id)
        .bind(projection)
        .bind(c.next_seq as i64)
        .bind(c.last_hash.clone())
        .bind(i64::from(c.version))
        .bind(c.settings.clone())
        .bind(c.updated_at.clone())
        .bind(c.last_recorded_at.clone())
        .bind(c.stopped.clone())
        .execute(&mut *tx)
        .await?;
        Ok(())
    }

    /// Records why a projection stopped (shown by its status until a rebuild).
    pub async fn mark_stopped(
        &self,
        chain_id: i64,
        projection: &str,
        why: &str,
    ) -> Result<(), DbError> {
        sqlx::query(
            &self.sql(
                "UPDATE view_checkpoints SET stopped = ? WHERE chain_id = ? AND projection = ?",
            ),
        )
        .bind(why)
        .bind(chain_id)
        .bind(projection)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The stored bodies of these rows of `table`.
    pub async fn load(
        &self,
        table: &str,
        chain_id: i64,
        select: Select<'_>,
    ) -> Result<Vec<(String, String)>, DbError> {
        if let Some(writer) = &self.writer {
            let (keys, streams) = match select {
                Select::Keys(keys) => (keys.to_vec(), Vec::new()),
                Select::Streams(streams) => (Vec::new(), streams.to_vec()),
                Select::All => (Vec::new(), Vec::new()),
            };
            if !matches!(select, Select::All) {
                return writer
                    .load(table.to_string(), chain_id, keys, streams)
                    .await;
            }
        }
        let mut out = Vec::new();
        match select {
            Select::All => {
                let rows = sqlx::query(
                    &self.sql(&format!("SELECT key, body FROM {table} WHERE chain_id = ?")),
                )
                .bind(chain_id)
                .fetch_all(&self.pool)
                .await?;
                for row in rows {
                    out.push((row.try_get(0)?, row.try_get(1)?));
                }
            }
            Select::Streams(streams) => {
                for stream in streams {
                    // '$' follows '#' in every collation used here, so the range holds
                    // exactly the keys that start with "STREAM#".
                    let sql = self.sql(&format!(
                        "SELECT key, body FROM {table} WHERE chain_id = ? AND \
                         (key = ? OR (key > ? AND key < ?))"
                    ));
                    let rows = sqlx::query(&sql)
                        .bind(chain_id)
                        .bind(stream.clone())
                        .bind(format!("{stream}#"))
                        .bind(format!("{stream}$"))
                        .fetch_all(&self.pool)
                        .await?;
                    for row in rows {
                        out.push((row.try_get(0)?, row.try_get(1)?));
                    }
                }
            }
            Select::Keys(keys) => {
                for chunk in keys.chunks(ROWS_PER_STATEMENT) {
                    let marks = vec!["?"; chunk.len()].join(", ");
                    let sql = self.sql(&format!(
                        "SELECT key, body FROM {table} WHERE chain_id = ? AND key IN ({marks})"
                    ));
                    let mut query = sqlx::query(&sql).bind(chain_id);
                    for key in chunk {
                        query = query.bind(key.clone());
                    }
                    for row in query.fetch_all(&self.pool).await? {
                        out.push((row.try_get(0)?, row.try_get(1)?));
                    }
                }
            }
        }
        Ok(out)
    }

    /// Starts a rebuild's write of its shadows.
    pub fn load_shadows(&self, chain_id: i64) -> Result<ShadowLoad, DbError> {
        let inner = match &self.writer {
            Some(writer) => Loading::Streaming(writer.load_shadows(chain_id)?),
            None => Loading::Gathering {
                db: self.clone(),
                chain_id,
                writes: Vec::new(),
                pending: Vec::new(),
            },
        };
        Ok(ShadowLoad {
            inner,
            writer_stopped: false,
        })
    }

    /// Writes one batch: each view's changed rows and its checkpoint. A checkpoint is
    /// moved only from where this runner found it (`from`); if another process moved it
    /// meanwhile, nothing of that view is written.
    ///
    /// SQLite: every view in one transaction on the writer's connection. PostgreSQL: each
    /// view with changed rows in a transaction of its own, all at once on connections
    /// of their own (and the views whose checkpoint alone moves in one more). A view's
    /// rows and checkpoint still commit together, which is all a view needs: each is
    /// read, and carried on from, at its own checkpoint. Under a load the server's cores
    /// are shared among every busy connection, and one connection writing the views in
    /// turn fell behind the appends (lag 0.7–1.5 s at 4,400–6,600 appends/s; 0.2–0.7 s
    /// this way).
    pub async fn commit(&self, chain_id: i64, writes: Vec<ViewWrite>) -> Result<(), DbError> {
        if let Some(writer) = &self.writer {
            return writer.commit(chain_id, writes).await;
        }
        // Views whose checkpoint alone moves go together: a commit is a flush of the
        // server's log, and most batches change the rows of only a few views.
        let (changed, unchanged): (Vec<ViewWrite>, Vec<ViewWrite>) =
            writes.into_iter().partition(|w| !w.rows.is_empty());
        let mut commits = tokio::task::JoinSet::new();
        for group in changed.into_iter().map(|w| vec![w]).chain([unchanged]) {
            if group.is_empty() {
                continue;
            }
            let db = self.clone();
            commits.spawn(async move { db.commit_views(chain_id, &group).await });
        }
        // Every commit is waited for, so none is still running when this returns.
        let mut failure = None;
        while let Some(done) = commits.join_next().await {
            let outcome = done.unwrap_or_else(|e| {
                Err(DbError::Corrupt(format!(
                    "a view's commit did not finish: {e}"
                )))
            });
            if let Err(e) = outcome {
                failure.get_or_insert(e);
            }
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Views' rows and checkpoints, in one transaction (PostgreSQL).
    async fn commit_views(&self, chain_id: i64, writes: &[ViewWrite]) -> Result<(), DbError> {
        let mut tx = self.pool.begin().await?;
        for write in writes {
            self.upsert_rows(&mut tx, &write.table, chain_id, &write.rows)
                .await?;
            let c = &write.checkpoint;
            let moved = sqlx::query(&self.sql(
                "UPDATE view_checkpoints SET next_seq = ?, last_hash = ?, updated_at = ?, \
                 last_recorded_at = ? WHERE chain_id = ? AND projection = ? AND next_seq = ? \
                 AND last_hash = ?",
            ))
            .bind(c.next_seq as i64)
            .bind(c.last_hash.clone())
            .bind(c.updated_at.clone())
            .bind(c.last_recorded_at.clone())
            .bind(chain_id)
            .bind(write.projection.clone())
            .bind(write.from as i64)
            .bind(write.from_hash.clone())
            .execute(&mut *tx)
            .await?;
            if moved.rows_affected() != 1 {
                return Err(DbError::Raced(write.projection.clone()));
            }
        }
        tx.commit().await?;
        Ok(())
    }

    async fn upsert_rows(
        &self,
        tx: &mut sqlx::AnyConnection,
        table: &str,
        chain_id: i64,
        rows: &[StoredRow],
    ) -> Result<(), DbError> {
        for chunk in rows.chunks(ROWS_PER_STATEMENT) {
            let marks = vec!["(?, ?, ?, ?, ?, ?, ?)"; chunk.len()].join(", ");
            let sql = self.sql(&format!(
                "INSERT INTO {table} (chain_id, {ROW_COLUMNS}) VALUES {marks} \
                 ON CONFLICT (chain_id, key) DO UPDATE SET partner = excluded.partner, \
                 status = excluded.status, due = excluded.due, subject = excluded.subject, \
                 body = excluded.body"
            ));
            let mut query = sqlx::query(&sql);
            for row in chunk {
                let c = &row.columns;
                query = query
                    .bind(chain_id)
                    .bind(row.key.clone())
                    .bind(c.partner.clone())
                    .bind(c.status.clone())
                    .bind(c.due.clone())
                    .bind(c.subject.clone())
                    .bind(row.body.clone());
            }
            query.execute(&mut *tx).await?;
            let parties: Vec<(&str, &str)> = chunk
                .iter()
                .flat_map(|r| {
                    r.new_parties
                        .iter()
                        .map(move |p| (r.key.as_str(), p.as_str()))
                })
                .collect();
            for part in parties.chunks(ROWS_PER_STATEMENT) {
                let marks = vec!["(?, ?, ?)"; part.len()].join(", ");
                let sql = self.sql(&format!(
                    "INSERT INTO {table}_parties (chain_id, key, partner) VALUES {marks} \
                     ON CONFLICT DO NOTHING"
                ));
                let mut query = sqlx::query(&sql);
                for (key, partner) in part {
                    query = query
                        .bind(chain_id)
                        .bind(key.to_string())
                        .bind(partner.to_string());
                }
                query.execute(&mut *tx).await?;
            }
        }
        Ok(())
    }

    /// Replaces each live view with its shadow, all in one transaction: the shadows'
    /// tables take the live names (and get their query indexes), their checkpoints
    /// become the live ones. Readers see the old views until the commit and the new ones
    /// after.
    pub async fn swap(&self, chain_id: i64, pairs: &[(Names, Names)]) -> Result<(), DbError> {
        if let Some(writer) = &self.writer {
            // On the writer's connection, whose cache still holds much of what the
            // rebuild just wrote: building the indexes reads every row.
            return writer.swap(chain_id, pairs.to_vec()).await;
        }
        let mut tx = self.pool.begin().await?;
        for (live, shadow) in pairs {
            for statement in swap_ddl(live, shadow, self.dialect) {
                tx.execute(statement.as_str()).await?;
            }
            sqlx::query(
                &self.sql("DELETE FROM view_checkpoints WHERE chain_id = ? AND projection = ?"),
            )
            .bind(chain_id)
            .bind(live.projection.clone())
            .execute(&mut *tx)
            .await?;
            sqlx::query(&self.sql(
                "UPDATE view_checkpoints SET projection = ? WHERE chain_id = ? AND projection = ?",
            ))
            .bind(live.projection.clone())
            .bind(chain_id)
            .bind(shadow.projection.clone())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// SQLite: starts folding the WAL into the file on a connection of the pool, beside
    /// the writer's connection (PASSIVE: it waits for no one and holds no one up).
    pub fn fold_wal_beside(&self) -> Option<tokio::task::JoinHandle<Result<(), DbError>>> {
        self.writer.as_ref()?;
        let pool = self.pool.clone();
        Some(tokio::spawn(async move {
            sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                .fetch_optional(&pool)
                .await?;
            Ok(())
        }))
    }

    /// SQLite: folds the WAL into the file and empties it, unless someone is reading
    /// (then it leaves it for the next automatic fold, at once). For a command about to
    /// exit: the WAL a rebuild leaves would otherwise be read and copied again by
    /// whoever opens the file next.
    pub async fn fold_wal(&self) -> Result<(), DbError> {
        match &self.writer {
            Some(writer) => writer.fold_wal().await,
            None => Ok(()),
        }
    }

    /// Builds the query indexes of rebuilt shadows before they are swapped in, on
    /// PostgreSQL only (see [`swap_ddl`]): there the swap locks the live tables'
    /// readers out until it commits, and building the indexes inside it held them for
    /// about half a second at 100,000 entries. Reads of the live views go on meanwhile.
    pub async fn index_shadows(&self, shadows: &[Names]) -> Result<(), DbError> {
        if self.dialect != Dialect::Postgres {
            return Ok(());
        }
        for shadow in shadows {
            for statement in index_ddl(&shadow.table) {
                self.pool.execute(statement.as_str()).await?;
            }
        }
        Ok(())
    }

    pub async fn forget_checkpoint(&self, chain_id: i64, projection: &str) -> Result<(), DbError> {
        sqlx::query(
            &self.sql("DELETE FROM view_checkpoints WHERE chain_id = ? AND projection = ?"),
        )
        .bind(chain_id)
        .bind(projection)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Every row and party of a view as text lines, in key order: two views are the same
    /// exactly when their dumps are.
    pub async fn dump(&self, table: &str, chain_id: i64) -> Result<Vec<String>, DbError> {
        let mut out = Vec::new();
        let rows = sqlx::query(&self.sql(&format!(
            "SELECT {ROW_COLUMNS} FROM {table} WHERE chain_id = ? ORDER BY key"
        )))
        .bind(chain_id)
        .fetch_all(&self.pool)
        .await?;
        for row in rows {
            let (key, columns, body) = read_row(&row)?;
            out.push(format!(
                "{key}\t{:?}\t{}\t{:?}\t{:?}\t{body}",
                columns.partner, columns.status, columns.due, columns.subject
            ));
        }
        let parties = sqlx::query(&self.sql(&format!(
            "SELECT key, partner FROM {table}_parties WHERE chain_id = ? ORDER BY key, partner"
        )))
        .bind(chain_id)
        .fetch_all(&self.pool)
        .await?;
        for row in parties {
            let key: String = row.try_get(0)?;
            let partner: String = row.try_get(1)?;
            out.push(format!("party\t{key}\t{partner}"));
        }
        Ok(out)
    }

    /// How many rows a view has (its bookkeeping rows included).
    pub async fn count(&self, table: &str, chain_id: i64) -> Result<u64, DbError> {
        let row =
            sqlx::query(&self.sql(&format!("SELECT COUNT(*) FROM {table} WHERE chain_id = ?")))
                .bind(chain_id)
                .fetch_one(&self.pool)
                .await?;
        let n: i64 = row.try_get(0)?;
        Ok(n.max(0) as u64)
    }

    /// Rows of a view matching `filter`, in key order, with their parties.
    pub async fn list(
        &self,
        table: &str,
        chain_id: i64,
        filter: &Filter,
    ) -> Result<Vec<StoredRow>, DbError> {
        let mut sql = format!("SELECT {ROW_COLUMNS} FROM {table} WHERE chain_id = ?");
        let mut binds: Vec<String> = Vec::new();
        if let Some(party) = &filter.party {
            sql.push_str(&format!(
                " AND key IN (SELECT key FROM {table}_parties WHERE chain_id = ? AND partner = ?)"
            ));
            binds.push(party.clone());
        }
        for (column, value) in [
            ("partner", &filter.partner),
            ("status", &filter.status),
            ("subject", &filter.subject),
        ] {
            if let Some(value) = value {
                sql.push_str(&format!(" AND {column} = ?"));
                binds.push(value.clone());
            }
        }
        if let Some(due_by) = &filter.due_by {
            sql.push_str(" AND due <= ?");
            binds.push(due_by.clone());
        }
        if filter.with_due {
            sql.push_str(" AND due IS NOT NULL");
        }
        if let Some(after) = &filter.after {
            sql.push_str(" AND key > ?");
            binds.push(after.clone());
        }
        sql.push_str(&format!(" ORDER BY key LIMIT {}", filter.limit.max(1)));
        let sql = self.sql(&sql);
        let mut query = sqlx::query(&sql).bind(chain_id);
        for (i, value) in binds.into_iter().enumerate() {
            // The party sub-query binds the chain again before the partner.
            if i == 0 && filter.party.is_some() {
                query = query.bind(chain_id);
            }
            query = query.bind(value);
        }
        let rows = query.fetch_all(&self.pool).await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let (key, columns, body) = read_row(row)?;
            out.push(StoredRow {
                key,
                columns,
                body,
                new_parties: Vec::new(),
            });
        }
        self.fill_parties(table, chain_id, &mut out).await?;
        Ok(out)
    }

    async fn fill_parties(
        &self,
        table: &str,
        chain_id: i64,
        rows: &mut [StoredRow],
    ) -> Result<(), DbError> {
        if rows.is_empty() {
            return Ok(());
        }
        let keys: Vec<String> = rows.iter().map(|r| r.key.clone()).collect();
        let mut parties: HashMap<String, BTreeSet<String>> = HashMap::new();
        for chunk in keys.chunks(ROWS_PER_STATEMENT) {
            let marks = vec!["?"; chunk.len()].join(", ");
            let sql = self.sql(&format!(
                "SELECT key, partner FROM {table}_parties WHERE chain_id = ? AND key IN ({marks})"
            ));
            let mut query = sqlx::query(&sql).bind(chain_id);
            for key in chunk {
                query = query.bind(key.clone());
            }
            for row in query.fetch_all(&self.pool).await? {
                let key: String = row.try_get(0)?;
                parties.entry(key).or_default().insert(row.try_get(1)?);
            }
        }
        for row in rows {
            row.columns.parties = parties.remove(&row.key).unwrap_or_default();
        }
        Ok(())
    }
}

/// A rebuild's write of its shadows, fed view by view as their rows are serialised
/// (see [`ViewDb::load_shadows`]): on SQLite the writer thread writes each piece as it comes;
/// on PostgreSQL the pieces are gathered and written as one batch. Nothing is kept
/// unless [`ShadowLoad::commit`] is reached.
pub struct ShadowLoad {
    inner: Loading,
    writer_stopped: bool,
}

enum Loading {
    Streaming(writer::LoadHandle),
    Gathering {
        db: ViewDb,
        chain_id: i64,
        writes: Vec<ViewWrite>,
        pending: Vec<StoredRow>,
    },
}

impl ShadowLoad {
    /// Whether rows are written as they come (SQLite's writer thread), rather than
    /// gathered and written at [`ShadowLoad::commit`]: only then may a view's rows come
    /// in several pieces between other views' pieces, and a key more than once.
    pub fn streams(&self) -> bool {
        matches!(self.inner, Loading::Streaming(_))
    }

    /// Whether the writer has stopped taking rows (it failed): going on is pointless,
    /// and [`ShadowLoad::commit`] says why.
    pub fn writer_stopped(&self) -> bool {
        self.writer_stopped
    }

    /// More rows of the view whose [`ShadowLoad::view`] comes next (or, if
    /// [`ShadowLoad::streams`], of any view).
    pub fn rows(&mut self, table: &str, rows: Vec<StoredRow>) {
        match &mut self.inner {
            Loading::Streaming(load) => {
                // If the writer has stopped, `commit` reports why.
                if load
                    .pieces
                    .send(writer::Load::Rows {
                        table: table.to_string(),
                        rows,
                    })
                    .is_err()
                {
                    self.writer_stopped = true;
                }
            }
            Loading::Gathering { pending, .. } => pending.extend(rows),
        }
    }

    /// A view's last rows and its checkpoint.
    pub fn view(&mut self, mut write: ViewWrite) {
        match &mut self.inner {
            Loading::Streaming(load) => {
                let _ = load.pieces.send(writer::Load::View(write));
            }
            Loading::Gathering {
                writes, pending, ..
            } => {
                pending.append(&mut write.rows);
                write.rows = std::mem::take(pending);
                writes.push(write);
            }
        }
    }

    pub async fn commit(self) -> Result<(), DbError> {
        match self.inner {
            Loading::Streaming(mut load) => {
                load.abandoned.disarm();
                let _ = load.pieces.send(writer::Load::Commit);
                load.answer
                    .await
                    .map_err(|_| DbError::Corrupt("the views writer thread failed a job".into()))?
            }
            Loading::Gathering {
                db,
                chain_id,
                writes,
                ..
            } => db.commit(chain_id, writes).await,
        }
    }
}

/// One view's share of a batch.
pub struct ViewWrite {
    pub projection: String,
    pub table: String,
    pub rows: Vec<StoredRow>,
    /// Where the checkpoint stood when the batch was read (entry and hash): the commit
    /// moves it only from there.
    pub from: u64,
    pub from_hash: String,
    pub checkpoint: Checkpoint,
}

/// A view's table and checkpoint names (live or shadow).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    pub projection: String,
    pub table: String,
}

impl Names {
    pub fn live(view: &str) -> Names {
        Names {
            projection: view.to_string(),
            table: format!("view_{view}"),
        }
    }
    pub fn shadow(view: &str) -> Names {
        Names {
            projection: format!("{view}__shadow"),
            table: format!("view_{view}__shadow"),
        }
    }
}

fn read_row(row: &AnyRow) -> Result<(String, Columns, String), DbError> {
    Ok((
        row.try_get(0)?,
        Columns {
            partner: row.try_get(1)?,
            status: row.try_get(2)?,
            due: row.try_get(3)?,
            subject: row.try_get(4)?,
            parties: BTreeSet::new(),
        },
        row.try_get(5)?,
    ))
}

/// The tables of one view (names come from the code's view list, never from input).
fn table_ddl(table: &str, indexed: bool, dialect: Dialect) -> Vec<String> {
    // Keys compare byte by byte on both stores (SQLite's default), so the range that
    // selects a stream's `STREAM#…` rows holds under any database collation.
    let key = match dialect {
        Dialect::Sqlite => "key TEXT NOT NULL",
        Dialect::Postgres => "key TEXT COLLATE \"C\" NOT NULL",
    };
    // A parties row is all key: on SQLite it is then one b-tree, not a table and its
    // key's index (a rebuild writes hundreds of thousands of them).
    let key_only = match dialect {
        Dialect::Sqlite => " WITHOUT ROWID",
        Dialect::Postgres => "",
    };
    let mut ddl = vec![
        format!(
            "CREATE TABLE IF NOT EXISTS {table} (chain_id BIGINT NOT NULL, {key}, \
             partner TEXT, status TEXT NOT NULL, due TEXT, subject TEXT, body TEXT NOT NULL, \
             CONSTRAINT {table}_pk PRIMARY KEY (chain_id, key))"
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {table}_parties (chain_id BIGINT NOT NULL, \
             {key}, partner TEXT NOT NULL, \
             CONSTRAINT {table}_parties_pk PRIMARY KEY (chain_id, key, partner)){key_only}"
        ),
    ];
    if indexed {
        ddl.extend(index_ddl(table));
    }
    ddl
}

/// What replaces `live`'s tables with `shadow`'s (view checkpoints aside).
///
/// On PostgreSQL the shadow already has its query indexes ([`ViewDb::index_shadows`]):
/// dropping the live table locks out its readers until the swap commits, so the swap
/// only renames. On SQLite the indexes are built here, on the writer's connection,
/// which is faster (its cache holds the rows just written) and holds no reader up:
/// WAL readers go on seeing the old tables until the commit.
pub(crate) fn swap_ddl(live: &Names, shadow: &Names, dialect: Dialect) -> Vec<String> {
    let mut ddl = Vec::new();
    for suffix in ["", "_parties"] {
        let (l, s) = (
            format!("{}{suffix}", live.table),
            format!("{}{suffix}", shadow.table),
        );
        ddl.push(format!("DROP TABLE IF EXISTS {l}"));
        ddl.push(format!("ALTER TABLE {s} RENAME TO {l}"));
        if dialect == Dialect::Postgres {
            // PostgreSQL keeps a renamed table's constraint (and index) names.
            ddl.push(format!("ALTER INDEX {s}_pk RENAME TO {l}_pk"));
        }
    }
    if dialect == Dialect::Postgres {
        for (name, _, _) in QUERY_INDEXES {
            ddl.push(format!(
                "ALTER INDEX IF EXISTS {}{name} RENAME TO {}{name}",
                shadow.table, live.table
            ));
        }
    }
    // Builds whatever is still missing (every index, on SQLite).
    ddl.extend(index_ddl(&live.table));
    ddl
}

/// The query indexes, each as (name after the table's, table suffix, columns): by
/// status and due date, by the partner who must act, by subject, and parties by
/// partner (need-to-know filtering).
const QUERY_INDEXES: [(&str, &str, &str); 4] = [
    ("_by_due", "", "(chain_id, status, due)"),
    ("_by_partner", "", "(chain_id, partner, due)"),
    ("_by_subject", "", "(chain_id, subject)"),
    (
        "_parties_by_partner",
        "_parties",
        "(chain_id, partner, key)",
    ),
];

fn index_ddl(table: &str) -> Vec<String> {
    QUERY_INDEXES
        .iter()
        .map(|(name, on, columns)| {
            format!("CREATE INDEX IF NOT EXISTS {table}{name} ON {table}{on} {columns}")
        })
        .collect()
}
