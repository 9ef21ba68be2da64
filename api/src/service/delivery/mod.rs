//! Notices reaching partners as they happen, besides their inbox: a Server-Sent Events
//! stream per partner and signed webhooks (see [`webhooks`]).
//!
//! The *feed* follows the log one step behind the notices view. For each entry the view
//! has taken it asks the view which notice rows that entry created or settled
//! ([`notices::changed_keys`]) and reads them from the view, so what a partner is sent
//! is exactly what its inbox shows, worked out once. Each change is queued for the
//! webhooks that want it and the feed's place is saved in the same transaction (a
//! restart neither loses nor repeats a change), then it is broadcast to open streams.

pub mod webhooks;

use super::state::AppState;
use ledger::store::LedgerStore;
use ledger::timestamp;
use projections::logged::decode_entry;
use projections::views::notices::{self, Notice};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast;

/// Entries read per step of the feed.
const FEED_PAGE: u32 = 512;

/// How often the feed looks for entries the notices view has taken.
const FEED_PACE: Duration = Duration::from_millis(100);

/// Changes kept for streams that fall behind; a stream further behind is told to
/// reconnect with `Last-Event-ID`, which replays from the log.
const BROADCAST_CAPACITY: usize = 4096;

/// One change to a notice: issued, or settled (acknowledged, exempted, answered,
/// granted, refused).
#[derive(Debug, Clone)]
pub struct NoticeChange {
    /// The log entry that made the change.
    pub seq: u64,
    /// Its place among that entry's changes.
    pub idx: u32,
    pub event_type: &'static str,
    pub recorded_at: String,
    /// The notice's row key in the notices view.
    pub key: String,
    /// The notice as the view holds it when the change is sent.
    pub notice: Notice,
}

impl NoticeChange {
    /// Who is told: the recipient of a new notice; both sides of a settled one (the
    /// issuer learns it was acted on).
    pub fn audience(&self) -> Vec<&str> {
        match self.event_type {
            ISSUED => vec![self.notice.recipient.as_str()],
            _ => vec![self.notice.issuer.as_str(), self.notice.recipient.as_str()],
        }
    }

    pub fn concerns(&self, partner: &str) -> bool {
        self.audience().contains(&partner)
    }

    /// The message, in the Standard Webhooks shape `{type, timestamp, data}`; the same
    /// JSON is each SSE event's data.
    pub fn payload(&self) -> Value {
        json!({
            "type": self.event_type,
            "timestamp": self.recorded_at,
            "data": {
                "seq": self.seq,
                "key": self.key,
                "notice": self.notice,
            },
        })
    }
}

pub const ISSUED: &str = "notice.issued";
pub const SETTLED: &str = "notice.settled";

/// The feed's live side: open streams subscribe here.
pub struct Feed {
    changes: broadcast::Sender<Arc<NoticeChange>>,
    /// Wakes the webhook sender when something was queued.
    pub queued: tokio::sync::Notify,
}

impl Default for Feed {
    fn default() -> Self {
        Feed {
            changes: broadcast::channel(BROADCAST_CAPACITY).0,
            queued: tokio::sync::Notify::new(),
        }
    }
}

impl Feed {
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<NoticeChange>> {
        self.changes.subscribe()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    #[error(transparent)]
    Store(#[from] ledger::store::StoreError),
    #[error(transparent)]
    Views(#[from] projections::db::DbError),
    #[error(transparent)]
    Webhooks(#[from] webhooks::WebhookError),
    #[error("entry {seq} cannot be read: {why}")]
    Unreadable { seq: u64, why: String },
}

/// The notice changes made by entries `from..to`, in log order.
pub async fn changes_between(
    state: &AppState,
    from: u64,
    to: u64,
) -> Result<Vec<NoticeChange>, FeedError> {
    let ledger = state.ledger();
    let mut out = Vec::new();
    let mut next = from;
    while next < to {
        let limit = (to - next).min(u64::from(FEED_PAGE)) as u32;
        let stored = ledger
            .store()
            .bare_entries(ledger.chain_id(), next, limit)
            .await?;
        if stored.is_empty() {
            break;
        }
        let mut wanted: Vec<(u64, String, String)> = Vec::new();
        for entry in &stored {
            next = entry.seq + 1;
            // Most entries change no notice; telling which from the bytes spares
            // decoding every entry a second time (the views decoded it already).
            if !notices::may_change(&entry.bytes) {
                continue;
            }
            let (logged, _) = decode_entry(entry).map_err(|e| FeedError::Unreadable {
                seq: entry.seq,
                why: e.to_string(),
            })?;
            for key in notices::changed_keys(&logged) {
                // The case's own index row is bookkeeping, not a notice.
                if key.contains('#') {
                    wanted.push((logged.seq, key, logged.recorded_at.clone()));
                }
            }
        }
        let keys: Vec<String> = wanted.iter().map(|(_, k, _)| k.clone()).collect();
        let found: std::collections::HashMap<String, Notice> =
            notices::load(state.projector.db(), state.projector.chain_id(), &keys)
                .await?
                .into_iter()
                .collect();
        let mut last_seq = None;
        let mut idx = 0;
        for (seq, key, recorded_at) in wanted {
            idx = if last_seq == Some(seq) { idx + 1 } else { 0 };
            last_seq = Some(seq);
            let Some(notice) = found.get(&key) else {
                continue;
            };
            out.push(NoticeChange {
                seq,
                idx,
                event_type: if notice.issued_entry == seq {
                    ISSUED
                } else {
                    SETTLED
                },
                recorded_at,
                key,
                notice: notice.clone(),
            });
        }
    }
    Ok(out)
}

/// Where the notices view stands: every entry below it is in the view.
async fn view_position(state: &AppState) -> Result<u64, FeedError> {
    let checkpoints = state
        .projector
        .db()
        .checkpoints(state.projector.chain_id())
        .await?;
    Ok(checkpoints
        .get(<notices::Notices as projections::view::View>::NAME)
        .map_or(0, |c| c.next_seq))
}

/// Entries the feed may pass over without saving its place, when they changed no
/// notice: a restart reads them again and finds nothing to send, so saving after each
/// step (a synced write, several times a second under load) buys nothing.
const UNSAVED_LIMIT: u64 = 10_000;

/// Where the feed stands: `next` is the first entry not yet looked at; `saved` is the
/// place in the store: at or before `next` with no notice change between them, or
/// ahead of it if another process moved it.
#[derive(Debug, Clone, Copy)]
struct Place {
    next: u64,
    saved: u64,
}

/// Follows the notices view until `stop` resolves. On first start the feed begins at
/// the end of the log: partners are sent what happens from then on.
///
/// A step takes everything the view has taken since the last (up to a page), then the
/// feed waits [`FEED_PACE`] unless the page was full: under load each step takes a few
/// hundred entries rather than one or two, for a delay partners will not notice.
pub async fn follow(state: Arc<AppState>, stop: impl std::future::Future<Output = ()>) {
    tokio::pin!(stop);
    let mut place = None;
    loop {
        match step(&state, &mut place).await {
            Ok(true) => continue,
            Ok(false) => {}
            Err(e) => {
                // Start again from the stored place.
                place = None;
                tracing::error!(error = %e, "notice feed: will retry");
            }
        }
        tokio::select! {
            _ = &mut stop => {
                if let Some(place) = place {
                    save(&state, place).await;
                }
                return;
            }
            _ = tokio::time::sleep(FEED_PACE) => {}
        }
    }
}

/// Saves an unsaved place on the way out, so a restart does not read those entries
/// again; failing that, it will.
async fn save(state: &AppState, place: Place) {
    if place.next > place.saved {
        if let Err(e) = state.webhooks.queue(&[], place.saved, place.next).await {
            tracing::warn!(error = %e, "notice feed: place not saved; a restart reads again from entry {}", place.saved);
        }
    }
}

/// Reads the feed's stored place, starting it at the end of the log if it has none.
async fn stored_place(state: &AppState) -> Result<u64, FeedError> {
    let store = &state.webhooks;
    if let Some(n) = store.feed_position().await? {
        return Ok(n);
    }
    // What the log already holds is history: partners are sent what happens from now
    // on.
    let start = state
        .ledger()
        .latest_checkpoint()
        .await
        .map_err(|e| FeedError::Unreadable {
            seq: 0,
            why: e.to_string(),
        })?
        .map_or(0, |(size, _)| size);
    store.start_feed(start).await?;
    // Another process may have started it first.
    Ok(store.feed_position().await?.unwrap_or(start))
}

/// One step: queues and broadcasts the changes of the entries the view has taken since
/// the last step. Returns whether a whole page was taken (there may be more at once).
async fn step(state: &AppState, place: &mut Option<Place>) -> Result<bool, FeedError> {
    let at = match *place {
        Some(p) => p,
        None => {
            let n = stored_place(state).await?;
            Place { next: n, saved: n }
        }
    };
    *place = Some(at);
    let to = view_position(state)
        .await?
        .min(at.next + u64::from(FEED_PAGE));
    if to <= at.next {
        return Ok(false);
    }
    let changes = changes_between(state, at.next, to).await?;
    let mut moved = Place {
        next: to,
        saved: at.saved,
    };
    // Behind another process's place, this one leaves saving to it.
    let ours = to > at.saved;
    if ours && (!changes.is_empty() || to - at.saved >= UNSAVED_LIMIT) {
        match state.webhooks.queue(&changes, at.saved, to).await? {
            Some(queued) => {
                moved.saved = to;
                if queued > 0 {
                    state.feed.queued.notify_one();
                }
            }
            // Another process moved the feed (and queues these). This process's
            // streams are still sent every change; its place is saved again once it
            // passes the other's.
            None => moved.saved = stored_place(state).await?,
        }
    }
    *place = Some(moved);
    for change in changes {
        state.metrics.notice_changes.inc();
        // No open stream is not an error.
        let _ = state.feed.changes.send(Arc::new(change));
    }
    Ok(to - at.next >= u64::from(FEED_PAGE))
}

/// Now, as the delivery log writes it.
pub fn now_text() -> String {
    timestamp::format_micros(timestamp::now_micros())
}
