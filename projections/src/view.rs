//! What a view is: a table of rows, one per thing people track (a breach, a notice, a
//! disclosure), each with the partner who must act, a status, a due date and the
//! partners party to it, and a typed body. A view folds events into rows; the runner
//! loads the rows a batch of events touches, applies the events in log order and writes
//! back what changed, with the view's checkpoint, in one transaction. A rebuild may
//! instead fold from entry 0 with every row in memory ([`Fold`]), writing rows as they
//! change (each page's) or all at the end, and commit once.

use crate::logged::Logged;
use crate::settings::Settings;
use deadlines::Calendar;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Which rows an event may change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Touch {
    Nothing,
    Keys(Vec<String>),
    /// The stream's own row (key = the stream) and every row about something within it
    /// (keys `STREAM#…`).
    Stream(String),
    /// Every row of the view (partnership-wide facts such as a suspension).
    All,
}

/// The columns a view is queried by, taken from a row.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Columns {
    /// The partner who must act next (who owns the deadline), if anyone.
    pub partner: Option<String>,
    pub status: String,
    /// `YYYY-MM-DD`, or an RFC 3339 UTC instant (breaches), while something is owed.
    pub due: Option<String>,
    /// The subject pseudonym the row is about, where it is about one.
    pub subject: Option<String>,
    /// Every partner party to the row (need-to-know); parties are only ever added.
    pub parties: BTreeSet<String>,
}

/// What rules and calendars a view computes with.
pub struct Context<'a> {
    pub settings: &'a Settings,
    pub calendar: &'static Calendar,
}

/// The rows a batch works on, by key.
pub struct Rows<R> {
    // Ordered, so that a stream's rows are one range (see `within_mut`).
    rows: BTreeMap<String, (R, bool)>,
    /// The keys of rows marked changed since they were last unchanged, each once: a
    /// rebuild's flush writes these without looking at every row it holds.
    changed: Vec<String>,
}

impl<R> Default for Rows<R> {
    fn default() -> Self {
        Rows {
            rows: BTreeMap::new(),
            changed: Vec::new(),
        }
    }
}

/// Marks a row changed, noting its key the first time.
fn mark(changed: &mut Vec<String>, key: &str, dirty: &mut bool) {
    if !*dirty {
        *dirty = true;
        changed.push(key.to_string());
    }
}

impl<R> Rows<R> {
    pub fn get(&self, key: &str) -> Option<&R> {
        self.rows.get(key).map(|(row, _)| row)
    }

    /// The row, marked changed.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut R> {
        let changed = &mut self.changed;
        self.rows.get_mut(key).map(|(row, dirty)| {
            mark(changed, key, dirty);
            row
        })
    }

    /// The row, or an error naming the event that expected it: the domain only records
    /// an event about something it recorded before, so a missing row means a broken view.
    pub fn expect_mut(&mut self, key: &str, event: &Logged) -> Result<&mut R, String> {
        let seq = event.seq;
        self.get_mut(key)
            .ok_or_else(|| format!("entry {seq} refers to {key:?}, which this view never saw"))
    }

    pub fn insert(&mut self, key: String, row: R) {
        match self.rows.get_mut(&key) {
            Some(held) => {
                let (_, dirty) = held;
                mark(&mut self.changed, &key, dirty);
                held.0 = row;
            }
            None => {
                self.changed.push(key.clone());
                self.rows.insert(key, (row, true));
            }
        }
    }

    /// Every loaded row, unchanged.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &R)> {
        self.rows.iter().map(|(k, (row, _))| (k, row))
    }

    /// The stream's own row and its `STREAM#…` rows, marked changed: what an event
    /// that [`Touch::Stream`]es may change. Only these, whatever else a batch loaded
    /// for its other events.
    pub fn within_mut<'a>(
        &'a mut self,
        stream: &'a str,
    ) -> impl Iterator<Item = (&'a String, &'a mut R)> + 'a {
        // '$' follows '#': the range holds the stream's key and every "STREAM#…" key,
        // and (filtered out) any key that extends the stream's with a byte below '$'.
        let end = format!("{stream}$");
        self.rows
            .range_mut::<str, _>((
                std::ops::Bound::Included(stream),
                std::ops::Bound::Excluded(end.as_str()),
            ))
            .filter(move |(k, _)| {
                k.len() == stream.len() || k.as_bytes().get(stream.len()) == Some(&b'#')
            })
            .map(|(k, (row, dirty))| {
                mark(&mut self.changed, k, dirty);
                (k, row)
            })
    }

    /// Every loaded row (all of the view's rows after [`Touch::All`]), marked changed.
    pub fn all_mut(&mut self) -> impl Iterator<Item = (&String, &mut R)> {
        let changed = &mut self.changed;
        self.rows.iter_mut().map(move |(k, (row, dirty))| {
            mark(changed, k, dirty);
            (k, row)
        })
    }

    /// The keys of the rows changed since the last call, in key order, each now held as
    /// unchanged.
    fn take_changed(&mut self) -> Vec<String> {
        let mut keys = std::mem::take(&mut self.changed);
        keys.sort_unstable();
        for key in &keys {
            if let Some((_, dirty)) = self.rows.get_mut(key) {
                *dirty = false;
            }
        }
        keys
    }
}

/// One view: its table, how events change its rows, and its columns.
pub trait View: Send + Sync + 'static {
    /// The table's name (`view_` + this) and the name `rebuild` takes.
    const NAME: &'static str;
    /// Bumped when the view's logic changes: the stored rows are then rebuilt.
    const VERSION: u32;
    type Row: Serialize + DeserializeOwned + Send;

    fn touches(event: &Logged) -> Touch;
    fn apply(ctx: &Context<'_>, event: &Logged, rows: &mut Rows<Self::Row>) -> Result<(), String>;
    fn columns(row: &Self::Row) -> Columns;
}

/// A row as written to (and read from) the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRow {
    pub key: String,
    pub columns: Columns,
    /// The row as JSON.
    pub body: String,
    /// Parties the row did not have when it was loaded (what a write must add).
    pub new_parties: Vec<String>,
}

/// A view with its row type erased, so the runner can hold them all in one list.
pub trait Projection: Send + Sync {
    fn name(&self) -> &'static str;
    fn version(&self) -> u32;
    fn touches(&self, event: &Logged) -> Touch;
    /// Applies `events` in order to the `loaded` rows (key → JSON body) and returns the
    /// rows that changed.
    fn project(
        &self,
        ctx: &Context<'_>,
        loaded: Vec<(String, String)>,
        events: &[&Logged],
    ) -> Result<Vec<StoredRow>, ProjectError>;
    /// An empty in-memory fold of this view, for a rebuild.
    fn fold(&self) -> Box<dyn Fold>;
}

/// A view's failure on one entry.
#[derive(Debug, Clone, thiserror::Error)]
#[error("entry {seq}: {why}")]
pub struct ProjectError {
    pub seq: u64,
    pub why: String,
}

struct Erased<V>(std::marker::PhantomData<V>);

/// The view `V` as a [`Projection`].
pub fn projection<V: View>() -> Box<dyn Projection> {
    Box::new(Erased::<V>(std::marker::PhantomData))
}

impl<V: View> Projection for Erased<V> {
    fn name(&self) -> &'static str {
        V::NAME
    }
    fn version(&self) -> u32 {
        V::VERSION
    }
    fn touches(&self, event: &Logged) -> Touch {
        V::touches(event)
    }
    fn project(
        &self,
        ctx: &Context<'_>,
        loaded: Vec<(String, String)>,
        events: &[&Logged],
    ) -> Result<Vec<StoredRow>, ProjectError> {
        let mut rows = Rows::default();
        let mut had_parties = HashMap::with_capacity(loaded.len());
        for (key, body) in loaded {
            let row: V::Row = serde_json::from_str(&body).map_err(|e| ProjectError {
                seq: events.first().map_or(0, |e| e.seq),
                why: format!("stored row {key:?} of view {} cannot be read: {e}", V::NAME),
            })?;
            had_parties.insert(key.clone(), V::columns(&row).parties);
            rows.rows.insert(key, (row, false));
        }
        for event in events {
            V::apply(ctx, event, &mut rows).map_err(|why| ProjectError {
                seq: event.seq,
                why,
            })?;
        }
        let mut changed = Vec::new();
        for (key, (row, dirty)) in rows.rows {
            if !dirty {
                continue;
            }
            let body = serde_json::to_string(&row).map_err(|e| ProjectError {
                seq: events.last().map_or(0, |e| e.seq),
                why: format!("row {key:?} cannot be written: {e}"),
            })?;
            let columns = V::columns(&row);
            let new_parties = match had_parties.get(&key) {
                Some(had) => columns.parties.difference(had).cloned().collect(),
                None => columns.parties.iter().cloned().collect(),
            };
            changed.push(StoredRow {
                columns,
                key,
                body,
                new_parties,
            });
        }
        // In key order (the map's), so that two runs write the same statements.
        Ok(changed)
    }

    fn fold(&self) -> Box<dyn Fold> {
        Box::new(InMemory::<V> {
            rows: Rows::default(),
        })
    }
}

/// A view folded from entry 0 with every row in memory: a rebuild's fast path, as the
/// rebuild is the only writer of its shadow table, so the rows it holds are all there
/// are and none need reading back. An event sees every row, which is what the batch
/// path gives it too, as long as views reach rows only by key, by [`Rows::within_mut`]
/// or (for a [`Touch::All`] event) all of them; the rebuild tests compare the two.
pub trait Fold: Send {
    fn apply(&mut self, ctx: &Context<'_>, events: &[Logged]) -> Result<(), ProjectError>;
    /// Rows held so far.
    fn rows(&self) -> usize;
    /// The rows changed since the last flush (every row, the first time), in key order,
    /// handed to `sink` as [`Fold::finish`] does, then held as unchanged. A rebuild
    /// writes them while it folds on, when the writer would otherwise wait for the
    /// fold's end; a row that changes again is written again (an upsert; its parties
    /// are all handed again, and those already written are skipped).
    fn flush(
        &mut self,
        piece: usize,
        sink: &mut dyn FnMut(Vec<StoredRow>),
    ) -> Result<(), ProjectError>;
    /// Every row changed since the last flush (every row, without one), in key order,
    /// handed to `sink` in pieces of up to `piece` rows (none if there are none).
    fn finish(
        self: Box<Self>,
        piece: usize,
        sink: &mut dyn FnMut(Vec<StoredRow>),
    ) -> Result<(), ProjectError>;
}

struct InMemory<V: View> {
    rows: Rows<V::Row>,
}

impl<V: View> Fold for InMemory<V> {
    fn apply(&mut self, ctx: &Context<'_>, events: &[Logged]) -> Result<(), ProjectError> {
        for event in events {
            // What the batch path would load nothing for, it would not apply either.
            if V::touches(event) == Touch::Nothing {
                continue;
            }
            V::apply(ctx, event, &mut self.rows).map_err(|why| ProjectError {
                seq: event.seq,
                why,
            })?;
        }
        Ok(())
    }

    fn rows(&self) -> usize {
        self.rows.rows.len()
    }

    fn flush(
        &mut self,
        piece: usize,
        sink: &mut dyn FnMut(Vec<StoredRow>),
    ) -> Result<(), ProjectError> {
        let keys = self.rows.take_changed();
        let rows = &self.rows;
        write_out::<V>(
            keys.iter()
                .filter_map(|key| Some((key.as_str(), rows.get(key)?))),
            piece,
            sink,
        )
    }

    fn finish(
        mut self: Box<Self>,
        piece: usize,
        sink: &mut dyn FnMut(Vec<StoredRow>),
    ) -> Result<(), ProjectError> {
        self.flush(piece, sink)
    }
}

/// Serialises `rows` for an upsert, handing them to `sink` in pieces of up to `piece`
/// (none if there are no rows: an empty piece would only take the write lock early).
fn write_out<'a, V: View>(
    rows: impl Iterator<Item = (&'a str, &'a V::Row)>,
    piece: usize,
    sink: &mut dyn FnMut(Vec<StoredRow>),
) -> Result<(), ProjectError> {
    let piece = piece.max(1);
    let mut out = Vec::with_capacity(piece.min(1_024));
    for (key, row) in rows {
        if out.len() == piece {
            sink(std::mem::replace(&mut out, Vec::with_capacity(piece)));
        }
        let body = serde_json::to_string(row).map_err(|e| ProjectError {
            seq: 0,
            why: format!("row {key:?} cannot be written: {e}"),
        })?;
        let columns = V::columns(row);
        out.push(StoredRow {
            new_parties: columns.parties.iter().cloned().collect(),
            columns,
            key: key.to_string(),
            body,
        });
    }
    if !out.is_empty() {
        sink(out);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flush_takes_the_rows_changed_since_the_last_once_each_in_key_order() {
        let mut rows = Rows::default();
        for key in ["case/C-2", "case/C-1", "case/C-1#d-1"] {
            rows.insert(key.to_string(), 0);
        }
        rows.insert("case/C-2".to_string(), 1);
        assert_eq!(
            rows.take_changed(),
            ["case/C-1", "case/C-1#d-1", "case/C-2"]
        );
        assert!(rows.take_changed().is_empty(), "nothing changed since");
        *rows.get_mut("case/C-2").unwrap() += 1;
        for (_, row) in rows.within_mut("case/C-1") {
            *row += 1;
        }
        *rows.get_mut("case/C-2").unwrap() += 1;
        assert_eq!(
            rows.take_changed(),
            ["case/C-1", "case/C-1#d-1", "case/C-2"]
        );
        rows.insert("case/C-0".to_string(), 5);
        for _ in rows.all_mut() {}
        assert_eq!(
            rows.take_changed(),
            ["case/C-0", "case/C-1", "case/C-1#d-1", "case/C-2"]
        );
    }

    #[test]
    fn a_stream_fact_reaches_only_that_streams_rows() {
        let mut rows = Rows::default();
        for key in [
            "case/C-1",
            "case/C-1#d-1",
            "case/C-10",
            "case/C-10#d-1",
            "case/C-1!x",
        ] {
            rows.insert(key.to_string(), 0);
        }
        for (_, row) in rows.within_mut("case/C-1") {
            *row += 1;
        }
        let touched: Vec<&str> = rows
            .iter()
            .filter(|(_, r)| **r == 1)
            .map(|(k, _)| k.as_str())
            .collect();
        assert_eq!(touched, ["case/C-1", "case/C-1#d-1"]);
    }
}
