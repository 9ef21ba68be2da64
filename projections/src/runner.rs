//! The projection runner: brings each view up to the head of the log, in global order,
//! a batch at a time; rebuilds a view from entry 0 into a shadow table and swaps it in;
//! reports how far behind each view is.
//!
//! A batch's rows and checkpoints commit together, so a view is always exactly its
//! checkpoint's prefix of the log (an effect happens once, even across a crash). An entry
//! that is not the next one, or whose `prev` is not the previous entry's hash, stops the
//! views that would take it: they keep serving what they have, their status says why,
//! and nothing is skipped. A rebuild is the way on once the log is repaired.

use crate::db::{Checkpoint, DbError, Names, Select, ViewDb, ViewWrite};
use crate::logged::{self, Break, Logged};
use crate::read_ahead::{DecodedPage, ReadAhead};
use crate::settings::Settings;
use crate::view::{Context, Fold, ProjectError, Projection, Touch};
use deadlines::Calendar;
use ledger::hash::Hash;
use ledger::store::{LedgerStore, StoreError};
use ledger::timestamp;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("reading the log: {0}")]
    Log(#[from] StoreError),
    #[error("projection {view} stopped at entry {seq}: {why}")]
    Stopped { view: String, seq: u64, why: String },
    #[error("no view is called {0:?}; the views are {1}")]
    UnknownView(String, String),
    #[error("the log has no chain {0:?}")]
    NoChain(String),
    /// A rebuild's reading ahead failed (a task panicked or was cancelled): nothing is
    /// wrong with the log, and the next attempt starts again.
    #[error("reading the log for a rebuild failed at entry {seq}: {why}")]
    ReadFailed { seq: u64, why: String },
}

/// How many entries a batch takes.
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    /// While following the log.
    pub live_batch: u32,
    /// While rebuilding.
    pub rebuild_batch: u32,
    /// How long to wait when caught up.
    pub poll: Duration,
}

impl Default for Pace {
    fn default() -> Self {
        Pace {
            live_batch: 2_000,
            rebuild_batch: 10_000,
            poll: Duration::from_millis(100),
        }
    }
}

/// One view's position, as its status reports it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ViewStatus {
    pub view: &'static str,
    /// Entries below this are in the view.
    pub next_seq: u64,
    /// Entries in the log.
    pub log_size: u64,
    pub behind: u64,
    /// Seconds since the oldest entry the view has not taken was recorded (0 when
    /// caught up).
    pub lag_seconds: f64,
    pub updated_at: String,
    /// Why the view stopped, if it did.
    pub stopped: Option<String>,
    /// Built by older view logic or other settings: it will be rebuilt.
    pub stale: bool,
}

/// What a rebuild did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Rebuilt {
    pub view: &'static str,
    pub entries: u64,
    pub rows: u64,
    pub seconds: f64,
}

pub struct Projector<S: LedgerStore> {
    /// Shared with a rebuild's read-ahead task.
    source: Arc<S>,
    origin: String,
    chain_id: i64,
    db: ViewDb,
    views: Vec<Box<dyn Projection>>,
    settings: Settings,
    fingerprint: String,
    calendar: &'static Calendar,
    pace: Pace,
    /// One batch or swap at a time in this process, so a swap never lands between a
    /// live batch's read and its write.
    gate: tokio::sync::Mutex<()>,
}

/// A view and the names it is written under (live or shadow).
struct Target<'a> {
    projection: &'a dyn Projection,
    names: Names,
}

impl<S: LedgerStore> Projector<S> {
    /// Opens the views of the chain `origin` of `source`, creating any that do not
    /// exist yet (empty, at entry 0).
    pub async fn open(
        source: S,
        origin: &str,
        db: ViewDb,
        settings: Settings,
        pace: Pace,
    ) -> Result<Projector<S>, ProjectionError> {
        let chain = source
            .chain(origin)
            .await?
            .ok_or_else(|| ProjectionError::NoChain(origin.to_string()))?;
        let projector = Projector {
            source: Arc::new(source),
            origin: origin.to_string(),
            chain_id: chain.chain_id,
            db,
            views: crate::views::all(),
            fingerprint: settings.fingerprint(),
            settings,
            calendar: Calendar::shipped(),
            pace,
            gate: tokio::sync::Mutex::new(()),
        };
        let checkpoints = projector.db.checkpoints(projector.chain_id).await?;
        for view in &projector.views {
            let names = Names::live(view.name());
            projector.db.create_tables(&names.table, true).await?;
            if !checkpoints.contains_key(&names.projection) {
                projector
                    .db
                    .reset_checkpoint(
                        projector.chain_id,
                        &names.projection,
                        &projector.start(view.as_ref()),
                    )
                    .await?;
            }
        }
        Ok(projector)
    }

    pub fn db(&self) -> &ViewDb {
        &self.db
    }

    pub fn chain_id(&self) -> i64 {
        self.chain_id
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The views' names, in the order they run.
    pub fn view_names(&self) -> Vec<&'static str> {
        self.views.iter().map(|v| v.name()).collect()
    }

    fn view(&self, name: &str) -> Result<&dyn Projection, ProjectionError> {
        self.views
            .iter()
            .find(|v| v.name() == name)
            .map(|v| v.as_ref())
            .ok_or_else(|| {
                ProjectionError::UnknownView(name.to_string(), self.view_names().join(", "))
            })
    }

    /// An empty view's checkpoint.
    fn start(&self, view: &dyn Projection) -> Checkpoint {
        Checkpoint {
            next_seq: 0,
            last_hash: Hash::ZERO.to_hex(),
            version: view.version(),
            settings: self.fingerprint.clone(),
            updated_at: now(),
            last_recorded_at: None,
            stopped: None,
        }
    }

    fn is_stale(&self, view: &dyn Projection, checkpoint: &Checkpoint) -> bool {
        checkpoint.version != view.version() || checkpoint.settings != self.fingerprint
    }

    /// Brings every live view up to the head of the log. A view built by older logic or
    /// under other settings is rebuilt first (the old rows serve meanwhile). Returns the
    /// entries taken; a view that stops is reported as an error after the others moved.
    pub async fn catch_up(&self) -> Result<u64, ProjectionError> {
        let checkpoints = self.db.checkpoints(self.chain_id).await?;
        let mut stale = Vec::new();
        let mut targets = Vec::new();
        for view in &self.views {
            let names = Names::live(view.name());
            match checkpoints.get(&names.projection) {
                Some(c) if c.stopped.is_some() => {}
                Some(c) if self.is_stale(view.as_ref(), c) => stale.push(view.name()),
                _ => targets.push(Target {
                    projection: view.as_ref(),
                    names,
                }),
            }
        }
        // A stale view is rebuilt before it is fed again. If its rebuild cannot finish
        // (the log is broken where the old rows were built), the live view is marked
        // stopped with the reason, so it is not rebuilt again and again, and the other
        // views still move.
        let mut failure = None;
        for name in stale {
            let view = self.view(name)?;
            if let Err(e) = self.rebuild_views(&[view]).await {
                if let ProjectionError::Stopped { seq, why, .. } = &e {
                    self.stop(name, *seq, &format!("rebuilding it: {why}"))
                        .await?;
                }
                failure = Some(e);
            }
        }
        let mut taken = 0;
        loop {
            let n = self.advance(&targets, self.pace.live_batch, true).await?;
            taken += n;
            // A part batch read up to the head as it was: going round again at once
            // would take the few entries appended meanwhile, one costly commit each.
            if n < u64::from(self.pace.live_batch) {
                return match failure {
                    Some(e) => Err(e),
                    None => Ok(taken),
                };
            }
        }
    }

    /// Follows the log until `shutdown` resolves: catches up, waits, catches up again.
    /// Errors are reported loudly and retried; a stopped view stays stopped.
    pub async fn run(&self, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut reported = BTreeSet::new();
        loop {
            // Caught up (the last batch was part full), it waits a poll before looking
            // again even if entries came in meanwhile: under a steady load each batch
            // then takes a poll's worth of entries, not the handful appended during the
            // last commit, and the views lag by about a poll more.
            let wait = match self.catch_up().await {
                Ok(_) => self.pace.poll,
                Err(e) => {
                    let text = e.to_string();
                    if reported.insert(text.clone()) {
                        eprintln!("ERROR projections: {text}");
                    }
                    self.pace.poll.max(Duration::from_secs(1))
                }
            };
            tokio::select! {
                _ = &mut shutdown => return,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Rebuilds one view from entry 0 into a shadow table while the live one keeps
    /// serving, then swaps it in.
    pub async fn rebuild(&self, name: &str) -> Result<Rebuilt, ProjectionError> {
        let view = self.view(name)?;
        // One view in, one report out.
        Ok(self.rebuild_views(&[view]).await?.remove(0))
    }

    /// Rebuilds every view, in one pass over the log.
    pub async fn rebuild_all(&self) -> Result<Vec<Rebuilt>, ProjectionError> {
        let views: Vec<&dyn Projection> = self.views.iter().map(|v| v.as_ref()).collect();
        self.rebuild_views(&views).await
    }

    /// Builds shadows of `views` from entry 0, reading the log once for all of them,
    /// then swaps each in. Readers see the old rows until each swap commits.
    async fn rebuild_views(
        &self,
        views: &[&dyn Projection],
    ) -> Result<Vec<Rebuilt>, ProjectionError> {
        let started = std::time::Instant::now();
        let mut targets = Vec::with_capacity(views.len());
        for view in views {
            let shadow = Names::shadow(view.name());
            self.db.drop_tables(&shadow.table).await?;
            self.db.create_tables(&shadow.table, false).await?;
            self.db
                .reset_checkpoint(self.chain_id, &shadow.projection, &self.start(*view))
                .await?;
            targets.push(Target {
                projection: *view,
                names: shadow,
            });
        }
        let mut entries = self.fold_from_start(&targets).await?;
        // SQLite: the rows just loaded are copied from the WAL into the file on another
        // connection while the writer builds the indexes and swaps. The writer's own
        // commit used to do it, and the swap waited for it (a third of a second at
        // 100,000 entries, much of it waiting for the disk).
        let folding = self.db.fold_wal_beside();
        loop {
            let n = self
                .advance(&targets, self.pace.rebuild_batch, false)
                .await?;
            entries += n;
            if n == 0 {
                break;
            }
        }
        let shadows: Vec<Names> = targets.iter().map(|t| t.names.clone()).collect();
        self.db.index_shadows(&shadows).await?;
        // The last few entries and the swaps, with live batches held off.
        let _held = self.gate.lock().await;
        loop {
            let n = self
                .advance_locked(&targets, self.pace.rebuild_batch)
                .await?;
            entries += n;
            if n == 0 {
                break;
            }
        }
        let pairs: Vec<(Names, Names)> = targets
            .iter()
            .map(|t| (Names::live(t.projection.name()), t.names.clone()))
            .collect();
        self.db.swap(self.chain_id, &pairs).await?;
        if let Some(folding) = folding {
            // Counted in the rebuild's time. If it failed, the next automatic fold
            // does its work; the views are in either way.
            let _ = folding.await;
        }
        let mut out = Vec::with_capacity(views.len());
        for target in &targets {
            let live = Names::live(target.projection.name());
            out.push(Rebuilt {
                view: target.projection.name(),
                entries,
                rows: self.db.count(&live.table, self.chain_id).await?,
                seconds: started.elapsed().as_secs_f64(),
            });
        }
        Ok(out)
    }

    /// Folds the log from entry 0 into `targets`' (empty) shadows with every row in
    /// memory, writing the rows as it goes (SQLite) or at the end (PostgreSQL), and
    /// commits them with each shadow's checkpoint in one transaction. Returns the
    /// entries taken. It ends early, keeping what it has, at a break in the log or when
    /// holding [`FOLD_ROW_LIMIT`] rows: the batch path goes on from there and reports
    /// the break as it always does. If a view refuses an event, nothing is kept: the
    /// batch path meets the refusal itself and stops that view.
    async fn fold_from_start(&self, targets: &[Target<'_>]) -> Result<u64, ProjectionError> {
        let ctx = Context {
            settings: &self.settings,
            calendar: self.calendar,
        };
        let mut folds: Vec<Box<dyn Fold>> = targets.iter().map(|t| t.projection.fold()).collect();
        let page = self.pace.rebuild_batch;
        let mut at = Position {
            next_seq: 0,
            last_hash: Hash::ZERO,
            last_recorded_at: None,
        };
        // Rows are turned into JSON here while the writer writes those already done.
        // Where the writer takes rows as they come (SQLite), the rows each page changed
        // go to it as the fold goes on; otherwise all of them at the end. Nothing is
        // kept unless the load commits.
        let mut load = self.db.load_shadows(self.chain_id)?;
        // Later pages are read and decoded while this one is folded.
        let mut pages = ReadAhead::start(Arc::clone(&self.source), self.chain_id, page);
        while let Some(page) = pages.next().await {
            let page = page?;
            if let Err(ProjectError { seq, why }) = fold_page(&ctx, &mut folds, &page, &mut at) {
                eprintln!("rebuild: entry {seq} refused ({why}); building batch by batch");
                return Ok(0);
            }
            if page.broke || folds.iter().map(|f| f.rows()).sum::<usize>() >= FOLD_ROW_LIMIT {
                break;
            }
            if load.streams() {
                for (target, fold) in targets.iter().zip(folds.iter_mut()) {
                    let table = &target.names.table;
                    fold.flush(LOAD_PIECE, &mut |rows| load.rows(table, rows))
                        .map_err(|e| unwritable(target, at.next_seq, e))?;
                }
                if load.writer_stopped() {
                    // `commit` below reports why.
                    break;
                }
            }
        }
        drop(pages);
        if at.next_seq == 0 {
            return Ok(0);
        }
        for (target, fold) in targets.iter().zip(folds) {
            let table = &target.names.table;
            fold.finish(LOAD_PIECE, &mut |rows| load.rows(table, rows))
                .map_err(|e| unwritable(target, at.next_seq, e))?;
            load.view(ViewWrite {
                projection: target.names.projection.clone(),
                table: table.clone(),
                rows: Vec::new(),
                from: 0,
                from_hash: Hash::ZERO.to_hex(),
                checkpoint: Checkpoint {
                    next_seq: at.next_seq,
                    last_hash: at.last_hash.to_hex(),
                    last_recorded_at: at.last_recorded_at.clone(),
                    ..self.start(target.projection)
                },
            });
        }
        load.commit().await?;
        Ok(at.next_seq)
    }

    /// See [`ViewDb::fold_wal`].
    pub async fn fold_wal(&self) -> Result<(), ProjectionError> {
        Ok(self.db.fold_wal().await?)
    }

    /// Where each view stands against the head of the log.
    pub async fn status(&self) -> Result<Vec<ViewStatus>, ProjectionError> {
        let size = self
            .source
            .chain(&self.origin)
            .await?
            .ok_or_else(|| ProjectionError::NoChain(self.origin.clone()))?
            .size;
        let checkpoints = self.db.checkpoints(self.chain_id).await?;
        let now_us = timestamp::now_micros();
        let mut out = Vec::new();
        for view in &self.views {
            let Some(c) = checkpoints.get(view.name()) else {
                continue;
            };
            let behind = size.saturating_sub(c.next_seq);
            let lag_seconds = if behind == 0 {
                0.0
            } else {
                let next = self
                    .source
                    .bare_entries(self.chain_id, c.next_seq, 1)
                    .await?;
                next.first()
                    .and_then(|e| serde_json::from_slice::<ledger::entry::Entry>(&e.bytes).ok())
                    .and_then(|e| timestamp::parse_utc(&e.recorded_at))
                    .map_or(0.0, |at| (now_us - at).max(0) as f64 / 1e6)
            };
            out.push(ViewStatus {
                view: view.name(),
                next_seq: c.next_seq,
                log_size: size,
                behind,
                lag_seconds,
                updated_at: c.updated_at.clone(),
                stopped: c.stopped.clone(),
                stale: self.is_stale(view.as_ref(), c),
            });
        }
        Ok(out)
    }

    /// Every row of a live view, as text, in key order (see [`ViewDb::dump`]).
    pub async fn dump(&self, name: &str) -> Result<Vec<String>, ProjectionError> {
        let view = self.view(name)?;
        Ok(self
            .db
            .dump(&Names::live(view.name()).table, self.chain_id)
            .await?)
    }

    async fn advance(
        &self,
        targets: &[Target<'_>],
        page: u32,
        gated: bool,
    ) -> Result<u64, ProjectionError> {
        if gated {
            let _held = self.gate.lock().await;
            self.advance_locked(targets, page).await
        } else {
            self.advance_locked(targets, page).await
        }
    }

    /// Takes one batch of entries into `targets`. Returns how many entries were read.
    async fn advance_locked(
        &self,
        targets: &[Target<'_>],
        page: u32,
    ) -> Result<u64, ProjectionError> {
        if targets.is_empty() {
            return Ok(0);
        }
        let checkpoints = self.db.checkpoints(self.chain_id).await?;
        let mut positions = Vec::with_capacity(targets.len());
        for target in targets {
            let c = checkpoints
                .get(&target.names.projection)
                .cloned()
                .ok_or_else(|| {
                    DbError::Corrupt(format!("no checkpoint for {}", target.names.projection))
                })?;
            positions.push(c);
        }
        let from = positions.iter().map(|c| c.next_seq).min().unwrap_or(0);
        let stored = self.source.bare_entries(self.chain_id, from, page).await?;
        if stored.is_empty() {
            return Ok(0);
        }
        // Decode in order, each entry against the one before; stop at the first break.
        let lowest = positions
            .iter()
            .find(|c| c.next_seq == from)
            .map(|c| c.last_hash.clone())
            .unwrap_or_default();
        let mut prev = Hash::from_hex(&lowest)
            .ok_or_else(|| DbError::Corrupt(format!("checkpoint hash {lowest:?} is not a hash")))?;
        let mut decoded: Vec<(Logged, Hash)> = Vec::with_capacity(stored.len());
        let mut broken: Option<(u64, Break)> = None;
        for (i, entry) in stored.iter().enumerate() {
            let expected = from + i as u64;
            match logged::decode(entry, expected, &prev) {
                Ok((event, hash)) => {
                    prev = hash;
                    decoded.push((event, hash));
                }
                Err(why) => {
                    broken = Some((expected, why));
                    break;
                }
            }
        }
        let ctx = Context {
            settings: &self.settings,
            calendar: self.calendar,
        };
        let mut writes = Vec::with_capacity(targets.len());
        let mut stops: Vec<(String, u64, String)> = Vec::new();
        for (target, at) in targets.iter().zip(&positions) {
            let skip = (at.next_seq - from) as usize;
            // Every view must have been built on the entries the log now has: the hash
            // its checkpoint names for entry next_seq - 1 is the one decoding found (the
            // page was decoded from one view's hash; another at the same place may differ).
            let found = match skip {
                0 => Some(lowest.clone()),
                s if s <= decoded.len() => Some(decoded[s - 1].1.to_hex()),
                _ => None,
            };
            if let Some(found) = found.filter(|h| *h != at.last_hash) {
                stops.push((
                    target.names.projection.clone(),
                    at.next_seq,
                    format!(
                        "its checkpoint names {} as the hash of entry {}, but the log has {found}",
                        at.last_hash,
                        at.next_seq as i64 - 1,
                    ),
                ));
                continue;
            }
            let events: Vec<&Logged> = decoded.iter().skip(skip).map(|(e, _)| e).collect();
            if let Some((seq, why)) = &broken {
                if *seq >= at.next_seq {
                    stops.push((target.names.projection.clone(), *seq, why.to_string()));
                }
            }
            let Some((last, last_hash)) = decoded.get(skip..).and_then(|d| d.last()) else {
                continue;
            };
            let rows = match self.project(target, &ctx, &events).await {
                Ok(rows) => rows,
                Err(ProjectionError::Stopped { view, seq, why }) => {
                    self.stop(&view, seq, &why).await?;
                    return Err(ProjectionError::Stopped { view, seq, why });
                }
                Err(e) => return Err(e),
            };
            writes.push(ViewWrite {
                projection: target.names.projection.clone(),
                table: target.names.table.clone(),
                rows,
                from: at.next_seq,
                from_hash: at.last_hash.clone(),
                checkpoint: Checkpoint {
                    next_seq: last.seq + 1,
                    last_hash: last_hash.to_hex(),
                    updated_at: now(),
                    last_recorded_at: Some(last.recorded_at.clone()),
                    ..at.clone()
                },
            });
        }
        self.db.commit(self.chain_id, writes).await?;
        for (projection, seq, why) in &stops {
            self.stop(projection, *seq, why).await?;
        }
        // Each stopped view records its own reason; the first is returned.
        if let Some((view, seq, why)) = stops.into_iter().next() {
            return Err(ProjectionError::Stopped { view, seq, why });
        }
        Ok(decoded.len() as u64)
    }

    /// Stops a view at an entry it cannot take, loudly: its status shows why until a
    /// rebuild, and the runner no longer feeds it.
    async fn stop(&self, projection: &str, seq: u64, why: &str) -> Result<(), ProjectionError> {
        eprintln!("ERROR projection {projection} stopped at entry {seq}: {why}");
        self.db
            .mark_stopped(self.chain_id, projection, &format!("entry {seq}: {why}"))
            .await?;
        Ok(())
    }

    /// Loads the rows `events` touch and applies the events to them.
    async fn project(
        &self,
        target: &Target<'_>,
        ctx: &Context<'_>,
        events: &[&Logged],
    ) -> Result<Vec<crate::view::StoredRow>, ProjectionError> {
        let mut keys = BTreeSet::new();
        let mut streams = BTreeSet::new();
        let mut all = false;
        for event in events {
            match target.projection.touches(event) {
                Touch::Nothing => {}
                Touch::Keys(k) => keys.extend(k),
                Touch::Stream(s) => {
                    streams.insert(s);
                }
                Touch::All => all = true,
            }
        }
        if keys.is_empty() && streams.is_empty() && !all {
            return Ok(Vec::new());
        }
        let table = &target.names.table;
        let mut loaded = if all {
            self.db.load(table, self.chain_id, Select::All).await?
        } else {
            let keys: Vec<String> = keys.into_iter().collect();
            let streams: Vec<String> = streams.into_iter().collect();
            let mut loaded = self
                .db
                .load(table, self.chain_id, Select::Keys(&keys))
                .await?;
            if !streams.is_empty() {
                loaded.extend(
                    self.db
                        .load(table, self.chain_id, Select::Streams(&streams))
                        .await?,
                );
            }
            loaded
        };
        loaded.sort_unstable();
        loaded.dedup();
        target
            .projection
            .project(ctx, loaded, events)
            .map_err(|ProjectError { seq, why }| ProjectionError::Stopped {
                view: target.names.projection.clone(),
                seq,
                why,
            })
    }
}

/// Most rows a rebuild holds in memory, over all its views (each a few hundred bytes),
/// before it writes them and goes on a batch at a time.
const FOLD_ROW_LIMIT: usize = 2_000_000;

/// Rows a rebuild hands the writer at a time.
const LOAD_PIECE: usize = 5_000;

/// How far an in-memory fold has read.
struct Position {
    next_seq: u64,
    last_hash: Hash,
    last_recorded_at: Option<String>,
}

/// A view whose rows cannot be turned into JSON is stopped.
fn unwritable(target: &Target<'_>, seq: u64, e: ProjectError) -> ProjectionError {
    ProjectionError::Stopped {
        view: target.names.projection.clone(),
        seq,
        why: e.why,
    }
}

/// Folds a decoded page into every view.
fn fold_page(
    ctx: &Context<'_>,
    folds: &mut [Box<dyn Fold>],
    page: &DecodedPage,
    at: &mut Position,
) -> Result<(), ProjectError> {
    for fold in folds.iter_mut() {
        fold.apply(ctx, &page.events)?;
    }
    if let Some(last) = page.events.last() {
        at.next_seq = last.seq + 1;
        at.last_hash = page.last_hash;
        at.last_recorded_at = Some(last.recorded_at.clone());
    }
    Ok(())
}

fn now() -> String {
    timestamp::format_micros(timestamp::now_micros())
}
