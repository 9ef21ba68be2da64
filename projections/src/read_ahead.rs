//! Reading the log ahead of a rebuild: while the rebuild folds one page of entries into
//! its views, a task of its own reads the page after next and decodes the next one,
//! each half of a page on a blocking thread of its own, and hands the pages over in
//! order. Decoding (parsing each entry and hashing it) costs more than folding, so a
//! rebuild that decoded and folded in turn waited on the decoding.

use crate::logged::{self, Logged};
use crate::runner::ProjectionError;
use ledger::hash::Hash;
use ledger::store::{LedgerStore, StoreError, StoredEntry};
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// A page of the log, decoded and checked against the entries before it.
pub(crate) struct DecodedPage {
    pub events: Vec<Logged>,
    /// The last event's hash (the next entry's `prev`).
    pub last_hash: Hash,
    /// Whether the log breaks within (or right after) the page: the events before the
    /// break are all there is to take.
    pub broke: bool,
}

/// Decoded pages from entry 0 on, in order, until the log ends or breaks. Dropping it
/// stops the reading.
pub(crate) struct ReadAhead {
    pages: mpsc::Receiver<Result<DecodedPage, ProjectionError>>,
    task: JoinHandle<()>,
}

impl Drop for ReadAhead {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ReadAhead {
    /// Starts reading `limit` entries at a time.
    pub(crate) fn start<S: LedgerStore>(source: Arc<S>, chain_id: i64, limit: u32) -> ReadAhead {
        // Two decoded pages waiting at most: enough to keep the fold busy.
        let (handover, pages) = mpsc::channel(2);
        let task = tokio::spawn(async move {
            let (mut first, mut prev) = (0u64, Hash::ZERO);
            let mut reading = read(&source, chain_id, first, limit);
            loop {
                let stored = match (&mut reading.0).await {
                    Ok(Ok(stored)) => stored,
                    Ok(Err(e)) => {
                        let _ = handover.send(Err(e.into())).await;
                        return;
                    }
                    Err(e) => {
                        let _ = handover.send(Err(failed(first, e))).await;
                        return;
                    }
                };
                if stored.is_empty() {
                    return;
                }
                let after = first + stored.len() as u64;
                reading = read(&source, chain_id, after, limit);
                let page = decode(stored, first, prev).await;
                let stop = match &page {
                    Ok(page) => {
                        first += page.events.len() as u64;
                        prev = page.last_hash;
                        page.broke
                    }
                    Err(_) => true,
                };
                if handover.send(page).await.is_err() || stop {
                    return;
                }
            }
        });
        ReadAhead { pages, task }
    }

    /// The next page; `None` once the log has no more.
    pub(crate) async fn next(&mut self) -> Option<Result<DecodedPage, ProjectionError>> {
        self.pages.recv().await
    }
}

fn read<S: LedgerStore>(source: &Arc<S>, chain_id: i64, first: u64, limit: u32) -> Reading {
    let source = Arc::clone(source);
    Reading(tokio::spawn(async move {
        source.bare_entries(chain_id, first, limit).await
    }))
}

fn failed(seq: u64, e: tokio::task::JoinError) -> ProjectionError {
    ProjectionError::ReadFailed {
        seq,
        why: e.to_string(),
    }
}

/// The read of the next page, stopped if the reading ahead stops first (a dropped
/// handle would leave it running).
struct Reading(JoinHandle<Result<Vec<StoredEntry>, StoreError>>);

impl Drop for Reading {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Decodes `stored`, which should be entries `first`, `first + 1`, … following an entry
/// hashing to `prev`, up to the first break: each half on a blocking thread, then the
/// links between them checked in order.
async fn decode(
    mut stored: Vec<StoredEntry>,
    first: u64,
    prev: Hash,
) -> Result<DecodedPage, ProjectionError> {
    let back = stored.split_off(stored.len() / 2);
    let (front, back) = tokio::join!(
        tokio::task::spawn_blocking(move || decode_each(stored)),
        tokio::task::spawn_blocking(move || decode_each(back)),
    );
    let front = front.map_err(|e| failed(first, e))?;
    let back = back.map_err(|e| failed(first, e))?;
    Ok(link(front.into_iter().chain(back), first, prev))
}

/// One entry decoded on its own: its place as stored, the event and the `prev` it
/// names (or why it cannot be read), and its own hash.
type Unlinked = (u64, Option<(Logged, String)>, Hash);

fn decode_each(stored: Vec<StoredEntry>) -> Vec<Unlinked> {
    stored
        .into_iter()
        .map(|entry| {
            let decoded = logged::decode_entry(&entry).ok();
            (entry.seq, decoded, Hash::of(&entry.bytes))
        })
        .collect()
}

/// The entries up to the first that is not the next one, cannot be read, or does not
/// name the hash of the one before: [`logged::decode`]'s checks, after the decoding.
fn link(decoded: impl Iterator<Item = Unlinked>, first: u64, mut prev: Hash) -> DecodedPage {
    let mut events = Vec::with_capacity(decoded.size_hint().0);
    for (seq, entry, hash) in decoded {
        let linked = logged::in_place(seq, first + events.len() as u64).is_ok()
            && entry
                .as_ref()
                .is_some_and(|(_, named)| logged::follows(seq, named, &prev).is_ok());
        let Some((event, _)) = entry.filter(|_| linked) else {
            return DecodedPage {
                events,
                last_hash: prev,
                broke: true,
            };
        };
        prev = hash;
        events.push(event);
    }
    DecodedPage {
        events,
        last_hash: prev,
        broke: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logged(seq: u64) -> Logged {
        Logged {
            seq,
            recorded_at: "2026-12-01T10:00:00Z".into(),
            author: "police".into(),
            stream: "breach/B-1".into(),
            has_content: false,
            event: None,
        }
    }

    /// Entries `first..first + n`, each naming the hash of the one before.
    fn chain(first: u64, n: u64, prev: Hash) -> Vec<Unlinked> {
        let mut out = Vec::new();
        let mut named = prev;
        for seq in first..first + n {
            let hash = Hash::of(format!("entry {seq}").as_bytes());
            out.push((seq, Some((logged(seq), named.to_hex())), hash));
            named = hash;
        }
        out
    }

    fn taken(page: &DecodedPage) -> Vec<u64> {
        page.events.iter().map(|e| e.seq).collect()
    }

    #[test]
    fn a_page_is_taken_up_to_its_first_break() {
        let prev = Hash::of(b"entry 9");
        let whole = link(chain(10, 4, prev).into_iter(), 10, prev);
        assert_eq!(taken(&whole), [10, 11, 12, 13]);
        assert!(!whole.broke);
        assert_eq!(whole.last_hash, Hash::of(b"entry 13"));

        // A missing entry: 12 is followed by 14.
        let mut gap = chain(10, 3, prev);
        gap.push((
            14,
            Some((logged(14), Hash::of(b"entry 12").to_hex())),
            Hash::ZERO,
        ));
        let page = link(gap.into_iter(), 10, prev);
        assert_eq!(taken(&page), [10, 11, 12]);
        assert!(page.broke);
        assert_eq!(page.last_hash, Hash::of(b"entry 12"));

        // Entry 11 names another predecessor.
        let mut forked = chain(10, 3, prev);
        forked[1].1 = Some((logged(11), Hash::of(b"elsewhere").to_hex()));
        let page = link(forked.into_iter(), 10, prev);
        assert_eq!(taken(&page), [10]);
        assert!(page.broke);
        assert_eq!(page.last_hash, Hash::of(b"entry 10"));

        // The first entry cannot be read; the page starts from the wrong place.
        let mut unreadable = chain(10, 2, prev);
        unreadable[0].1 = None;
        let page = link(unreadable.into_iter(), 10, prev);
        assert!(page.events.is_empty() && page.broke);
        assert_eq!(page.last_hash, prev);
        let page = link(chain(10, 2, prev).into_iter(), 9, prev);
        assert!(page.events.is_empty() && page.broke);
    }
}
