//! The sequencer: the one task that gives entries their order.
//!
//! It sequences each queued submission as it arrives: looks up its idempotency key and
//! stream version, assigns the sequence number, chain link, entry hash and Merkle leaf.
//! Entries accumulate into the next batch while the previous one commits; when that
//! commit returns, the accumulated batch gets one signed checkpoint and goes to the
//! store at once as one transaction, so the store's writer is rarely idle. At most one
//! batch is committing and one is being built. Callers are answered only after their
//! batch is durable.
//!
//! It needs no reads to sequence: every stream's version and a digest of every
//! idempotency key are held in memory (loaded at start); only a digest match is confirmed
//! (in the batches in hand, or in the store). If a commit fails (another writer moved
//! the head, or the database refused), that batch's callers and those of the batch built
//! on top of it are told nothing was written, and the sequencer reloads the durable
//! state from the store before going on.
//!
//! Tried and measured worse here: building the next batch from whatever was queued the
//! moment the previous one was handed over (batches became small and the commit's fixed
//! cost dominated), and lingering for fuller batches (tokio's timer has millisecond
//! granularity).

use super::{AppendError, AppendRequest, ExpectedVersion, PipelineConfig, Receipt, Shared};
use crate::checkpoint::Checkpoint;
use crate::entry::{self, Sequencing, LEDGER_AUTHOR};
use crate::hash::Hash;
use crate::keyring::{self, Keyring};
use crate::merkle::{Frontier, NodeId, ProofPlan};
use crate::store::{
    idempotency_digest, Batch, ChainState, IdempotencyHit, LedgerStore, NewEntry, StoreError,
    StreamPosition,
};
use crate::timestamp;
use serde_json::Value;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// A submission waiting for its receipt.
pub(super) struct Pending {
    pub request: AppendRequest,
    /// The content body's canonical bytes, computed once when the commitment was checked.
    pub content_body: Option<Vec<u8>>,
    pub reply: oneshot::Sender<Result<Receipt, AppendError>>,
}

/// Submissions that are recorded together or not at all (the events of one command):
/// always sequenced into the same batch, consecutively, and if one is refused, none is
/// kept. Most units hold one submission.
pub(super) type Unit = Vec<Pending>;

/// A question for the sequencer: where do these streams stand? Asked for several at
/// once so that a command reading several streams waits for the sequencer only once.
pub(super) type StreamLookup = (Vec<String>, oneshot::Sender<Vec<Option<StreamPosition>>>);

/// What the sequencer receives: submissions to append, and stream lookups (answered
/// from its in-memory map, between batches).
pub(super) struct Inbox {
    pub appends: mpsc::Receiver<Unit>,
    pub lookups: mpsc::Receiver<StreamLookup>,
}

/// Where the log ends: durable, or as it will be once the batch committing and the
/// batch being built are both committed.
#[derive(Clone)]
pub(super) struct Head {
    size: u64,
    last_hash: Hash,
    last_recorded_at: timestamp::Micros,
    frontier: Frontier,
    keyring: Keyring,
}

impl Head {
    pub(super) fn from_state(state: &ChainState, keyring: Keyring) -> Result<Head, StoreError> {
        Ok(Head {
            size: state.size,
            last_hash: state.last_entry_hash,
            last_recorded_at: timestamp::parse_utc(&state.last_recorded_at).unwrap_or(0),
            frontier: Frontier::from_peaks(state.size, state.peaks.clone()).ok_or_else(|| {
                StoreError::Corrupt("frontier does not match the head size".into())
            })?,
            keyring,
        })
    }
}

/// What happens to each pending submission of a batch.
enum Outcome {
    /// Refused before sequencing.
    Refused(AppendError),
    /// A retry of an entry committed earlier.
    Replay(u64),
    /// Sequenced at this position of the batch's new entries (a retry within the same
    /// batch points at the first).
    New(usize),
}

/// A batch built and handed to the store, with what is needed to answer its callers.
struct Built {
    pending: Vec<Pending>,
    outcomes: Vec<Outcome>,
    write: Arc<Batch>,
    /// The frontier before this batch: with the batch's own nodes it covers every node
    /// an inclusion proof of the batch's entries needs.
    frontier_before: Frontier,
    note: String,
    /// The keys as they will be once this batch is durable.
    after_keyring: Keyring,
}

/// What the sequencer knows of the whole log without asking the store: every stream's
/// version and a digest of every idempotency key. Loaded once at start; updated as
/// batches are built (speculatively: a failed commit reloads it from the store).
pub(super) struct Known {
    streams: HashMap<String, StreamPosition>,
    /// Digest of (author, idempotency key) → the sequence number of its first use. The
    /// store has no index on idempotency keys; this map is the only way to them.
    keys: HashMap<u128, u64, BuildHasherDefault<DigestHasher>>,
}

/// Hashes an idempotency digest for the in-memory map by taking its low 64 bits: the
/// digest is already a cryptographic hash, so hashing it again (SipHash) only costs
/// time (a sixth of opening a log of a million entries).
#[derive(Default)]
pub(super) struct DigestHasher(u64);

impl Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for (i, b) in bytes.iter().take(8).enumerate() {
            self.0 ^= u64::from(*b) << (8 * i);
        }
    }
    fn write_u128(&mut self, digest: u128) {
        // Truncation is the point: the low 64 bits of a uniformly random digest.
        self.0 = digest as u64;
    }
}

impl Known {
    /// Loads what the first `size` entries (the head just read) say. Anything another
    /// writer appended since is left out: seeing it would point this writer's retries
    /// at entries beyond its head; not seeing it only makes its next commit find the
    /// head moved, and reload.
    pub(super) async fn load<S: LedgerStore>(
        store: &S,
        chain_id: i64,
        size: u64,
    ) -> Result<Known, StoreError> {
        let mut keys = HashMap::default();
        let mut each = |seq: u64, digest: [u8; 16]| {
            keys.insert(u128::from_le_bytes(digest), seq);
        };
        let (streams, ()) = tokio::try_join!(
            store.all_stream_versions(chain_id, size),
            store.all_idempotency_digests(chain_id, size, &mut each)
        )?;
        Ok(Known { streams, keys })
    }
}

/// A batch handed to the store, and the task committing it. The commit runs as a task
/// of its own so that its I/O (PostgreSQL's) goes on while the sequencer is busy
/// sequencing the next batch.
struct InFlight {
    built: Built,
    commit: tokio::task::JoinHandle<Result<(), StoreError>>,
}

impl InFlight {
    fn start<S: LedgerStore>(shared: &Arc<Shared<S>>, built: Built) -> InFlight {
        let shared = shared.clone();
        let batch = built.write.clone();
        InFlight {
            built,
            commit: tokio::spawn(async move { shared.store.commit(batch).await }),
        }
    }
}

pub(super) async fn run<S: LedgerStore>(
    shared: Arc<Shared<S>>,
    head: Head,
    known: Known,
    inbox: Inbox,
    config: PipelineConfig,
) {
    let Inbox {
        appends: mut queue,
        mut lookups,
    } = inbox;
    let mut head = head;
    let mut known = known;
    let mut next = Builder::on(&head);
    let mut in_flight: Option<InFlight> = None;
    let mut open = true;
    // A reload after a failed commit failed too: `head` and `known` may be wrong.
    let mut stale = false;
    let max_batch = config.max_batch.max(1);
    while open || in_flight.is_some() {
        let room = open && next.pending.len() < max_batch;
        let committing = in_flight.is_some();
        let committed = async {
            match in_flight.as_mut() {
                Some(f) => Some((&mut f.commit).await),
                None => None,
            }
        };
        tokio::select! {
            biased;
            joined = committed, if committing => {
                let Some(done) = in_flight.take() else { continue };
                let result = match joined {
                    Some(Ok(result)) => result,
                    _ => Err(StoreError::Corrupt("the commit task failed".into())),
                };
                if !settle(&shared, done.built, result) {
                    // `next` was sequenced on top of the failed batch.
                    next.fail("an earlier batch was not committed; retry");
                    stale = !reload(&shared, &mut head, &mut known).await;
                    next = Builder::on(&head);
                } else if !next.is_empty() {
                    in_flight = launch(&shared, &mut next, &head);
                }
            }
            Some((streams, reply)) = lookups.recv() => {
                // The id never changes once given; the version may be ahead of what
                // is durable, which readers do not use.
                let _ = reply.send(streams.iter().map(|s| known.streams.get(s).copied()).collect());
            }
            received = queue.recv(), if room => {
                let Some(first) = received else {
                    open = false;
                    continue;
                };
                if stale {
                    // Sequencing on a head that may be wrong could refuse or accept
                    // wrongly; read the store again first.
                    stale = !reload(&shared, &mut head, &mut known).await;
                    next = Builder::on(&head);
                    if stale {
                        let why = "the log could not be read back after a failed commit; retry";
                        not_committed(first, why);
                        continue;
                    }
                }
                let busy = in_flight.as_ref().map(|f| f.built.write.clone());
                let busy = busy.as_deref();
                next.add_unit(&shared, &mut head, &mut known, busy, first).await;
                // Whatever else is queued now, without waking up once for each.
                while next.pending.len() < max_batch {
                    let Ok(unit) = queue.try_recv() else { break };
                    next.add_unit(&shared, &mut head, &mut known, busy, unit).await;
                }
                if busy.is_none() {
                    // Nothing is committing: take what arrives within `max_wait` (if
                    // so configured), then commit at once.
                    let room = max_batch - next.pending.len();
                    for unit in gather(&mut queue, room, config.max_wait).await {
                        next.add_unit(&shared, &mut head, &mut known, None, unit).await;
                    }
                    in_flight = launch(&shared, &mut next, &head);
                }
            }
            // No branch can run: the queue is closed and nothing is committing (the
            // loop's condition normally sees to that first). A batch being built always
            // has one committing beneath it, so nothing is left unanswered.
            else => break,
        }
    }
}

/// Hands the batch built so far to the store (leaving an empty one on `head` in its
/// place), or answers it at once if it writes nothing (only refusals, and replays of
/// entries already durable).
fn launch<S: LedgerStore>(
    shared: &Arc<Shared<S>>,
    next: &mut Builder,
    head: &Head,
) -> Option<InFlight> {
    let built = std::mem::replace(next, Builder::on(head)).finish(shared, head);
    if built.write.entries.is_empty() {
        let shared = shared.clone();
        tokio::spawn(async move { answer(&shared, built).await });
        return None;
    }
    Some(InFlight::start(shared, built))
}

/// What is queued now, then what arrives within `max_wait`, up to `room` submissions
/// (a unit is never split, so the last may take a few more).
async fn gather(
    queue: &mut mpsc::Receiver<Unit>,
    room: usize,
    max_wait: std::time::Duration,
) -> Vec<Unit> {
    let mut batch = Vec::new();
    let mut taken = 0;
    let deadline = tokio::time::Instant::now() + max_wait;
    while taken < room {
        match queue.try_recv() {
            Ok(unit) => {
                taken += unit.len();
                batch.push(unit);
            }
            Err(mpsc::error::TryRecvError::Disconnected) => break,
            Err(mpsc::error::TryRecvError::Empty) => {
                if max_wait.is_zero() {
                    break;
                }
                match tokio::time::timeout_at(deadline, queue.recv()).await {
                    Ok(Some(unit)) => {
                        taken += unit.len();
                        batch.push(unit);
                    }
                    _ => break,
                }
            }
        }
    }
    batch
}

/// Finishes a batch whose commit returned: answer its callers, or tell them nothing was
/// written. Returns whether it was committed.
fn settle<S: LedgerStore>(
    shared: &Arc<Shared<S>>,
    built: Built,
    result: Result<(), StoreError>,
) -> bool {
    match result {
        Ok(()) => {
            shared.stats.committed(built.write.entries.len());
            match shared.keyring.write() {
                Ok(mut guard) => *guard = built.after_keyring.clone(),
                Err(poisoned) => *poisoned.into_inner() = built.after_keyring.clone(),
            }
            // Answering (receipts with their proofs) runs beside the next batch.
            let shared = shared.clone();
            tokio::spawn(async move { answer(&shared, built).await });
            true
        }
        Err(error) => {
            eprintln!("isa-ledger: batch not committed: {error}");
            fail_built(built, &error.to_string());
            false
        }
    }
}

/// Tells every caller of a batch that was not committed that nothing was written. Even
/// a refusal becomes "not committed": it may rest on what an earlier entry of the
/// batch (or of the batch beneath) would have changed, a stream opened or a key used,
/// which now never happened. A retry is decided afresh.
fn fail_built(built: Built, why: &str) {
    not_committed(built.pending, why);
}

/// Tells callers that nothing of theirs was written.
pub(super) fn not_committed(pending: impl IntoIterator<Item = Pending>, why: &str) {
    for p in pending {
        let _ = p
            .reply
            .send(Err(AppendError::NotCommitted(why.to_string())));
    }
}

/// Starts again from what the store holds. Returns whether it could; if not, `head`
/// and `known` are left as they were and must not be trusted.
///
/// The head is read first, and the streams and idempotency keys are loaded as of that
/// head (see [`Known::load`]).
async fn reload<S: LedgerStore>(shared: &Shared<S>, head: &mut Head, known: &mut Known) -> bool {
    let state = match shared.store.chain(&shared.origin).await {
        Ok(Some(state)) => state,
        other => {
            eprintln!("isa-ledger: could not reload the chain head: {other:?}");
            return false;
        }
    };
    let loaded = match Known::load(&shared.store, shared.chain_id, state.size).await {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("isa-ledger: could not reload streams and idempotency keys: {e}");
            return false;
        }
    };
    let records = match shared.store.keys(shared.chain_id).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("isa-ledger: could not reload the keys: {e}");
            return false;
        }
    };
    match Keyring::from_records(&shared.origin, records)
        .map_err(|e| StoreError::Corrupt(e.to_string()))
        .and_then(|ring| Head::from_state(&state, ring))
    {
        Ok(fresh) => {
            match shared.keyring.write() {
                Ok(mut guard) => *guard = fresh.keyring.clone(),
                Err(poisoned) => *poisoned.into_inner() = fresh.keyring.clone(),
            }
            *head = fresh;
            *known = loaded;
            true
        }
        Err(e) => {
            eprintln!("isa-ledger: could not reload the chain head: {e}");
            false
        }
    }
}

/// The next batch, sequenced submission by submission on top of the head.
struct Builder {
    pending: Vec<Pending>,
    outcomes: Vec<Outcome>,
    entries: Vec<NewEntry>,
    nodes: Vec<(NodeId, Hash)>,
    changed_keys: Vec<String>,
    redactions: Vec<u64>,
    base_size: u64,
    base_hash: Hash,
    frontier_before: Frontier,
}

impl Builder {
    fn on(head: &Head) -> Builder {
        Builder {
            pending: Vec::new(),
            outcomes: Vec::new(),
            entries: Vec::new(),
            nodes: Vec::new(),
            changed_keys: Vec::new(),
            redactions: Vec::new(),
            base_size: head.size,
            base_hash: head.last_hash,
            frontier_before: head.frontier.clone(),
        }
    }

    fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Decides the fate of a unit's submissions together: each is sequenced in turn, and
    /// if any is refused, everything the unit changed is undone and all of its callers
    /// are refused.
    async fn add_unit<S: LedgerStore>(
        &mut self,
        shared: &Shared<S>,
        head: &mut Head,
        known: &mut Known,
        committing: Option<&Batch>,
        unit: Unit,
    ) {
        if unit.len() == 1 {
            for p in unit {
                self.add(shared, head, known, committing, p).await;
            }
            return;
        }
        let head_before = head.clone();
        let marks = (
            self.outcomes.len(),
            self.entries.len(),
            self.nodes.len(),
            self.changed_keys.len(),
            self.redactions.len(),
        );
        // What `known` held before each submission touched it, to put back in reverse.
        let mut streams_before = Vec::with_capacity(unit.len());
        let mut new_digests = Vec::new();
        for p in unit {
            let s = p.request.submission.submission();
            streams_before.push((s.stream.clone(), known.streams.get(&s.stream).copied()));
            new_digests.extend(self.add(shared, head, known, committing, p).await);
        }
        let (outcomes, entries, nodes, changed_keys, redactions) = marks;
        let Some(refused) = self.outcomes[outcomes..]
            .iter()
            .position(|o| matches!(o, Outcome::Refused(_)))
        else {
            return;
        };
        *head = head_before;
        self.entries.truncate(entries);
        self.nodes.truncate(nodes);
        self.changed_keys.truncate(changed_keys);
        self.redactions.truncate(redactions);
        for (stream, before) in streams_before.into_iter().rev() {
            match before {
                Some(position) => known.streams.insert(stream, position),
                None => known.streams.remove(&stream),
            };
        }
        for digest in new_digests {
            known.keys.remove(&digest);
        }
        for (i, outcome) in self.outcomes[outcomes..].iter_mut().enumerate() {
            if i != refused {
                *outcome = Outcome::Refused(AppendError::NotCommitted(format!(
                    "submission {} of the same unit was refused",
                    refused + 1
                )));
            }
        }
    }

    /// Decides one submission's fate on top of `head` (which already includes the batch
    /// being committed, `committing`), and moves `head` and `known` on. Returns the
    /// idempotency digest it added to `known`, if it added one.
    async fn add<S: LedgerStore>(
        &mut self,
        shared: &Shared<S>,
        head: &mut Head,
        known: &mut Known,
        committing: Option<&Batch>,
        p: Pending,
    ) -> Option<u128> {
        let s = p.request.submission.submission();
        let digest_bytes = idempotency_digest(&s.author, &s.idempotency_key);
        let digest = u128::from_le_bytes(digest_bytes);
        // Only a key whose digest is known can be a retry; the first use confirms it (a
        // digest collision finds an entry with another key, which is no hit).
        let hit = match known.keys.get(&digest).copied() {
            None => Ok(None),
            Some(seq) => {
                self.first_use(shared, committing, seq, &s.author, &s.idempotency_key)
                    .await
            }
        };
        let outcome = match hit {
            Err(why) => Outcome::Refused(AppendError::NotCommitted(why)),
            Ok(hit) => sequence_one(
                &p.request,
                p.content_body.as_ref(),
                hit,
                digest_bytes,
                &mut known.streams,
                head,
                &mut self.entries,
                &mut self.nodes,
                &mut self.changed_keys,
                &mut self.redactions,
            ),
        };
        let added = match outcome {
            Outcome::New(i) => known
                .keys
                .insert(digest, self.entries[i].seq)
                .is_none()
                .then_some(digest),
            _ => None,
        };
        self.outcomes.push(outcome);
        self.pending.push(p);
        added
    }

    /// The first use of (author, key), whose digest was first seen at `seq`: in this
    /// batch, in the batch being committed, or in the store.
    async fn first_use<S: LedgerStore>(
        &self,
        shared: &Shared<S>,
        committing: Option<&Batch>,
        seq: u64,
        author: &str,
        key: &str,
    ) -> Result<Option<IdempotencyHit>, String> {
        let in_hand = match committing {
            _ if seq >= self.base_size => match self.entries.get((seq - self.base_size) as usize) {
                Some(e) => Some(e),
                // Every digest at or past this batch's start was put there by this
                // batch (digests are loaded only below the head); anything else means
                // the sequencer's view is not the store's.
                None => {
                    return Err(format!(
                        "this writer's view of entry {seq} is out of date; retry"
                    ))
                }
            },
            Some(batch) if seq >= batch.base_size => {
                batch.entries.get((seq - batch.base_size) as usize)
            }
            _ => None,
        };
        if let Some(e) = in_hand {
            return Ok((e.author == author && e.idempotency_key == key).then_some(
                IdempotencyHit {
                    seq,
                    submission_hash: e.submission_hash,
                },
            ));
        }
        let found = shared
            .store
            .idempotency_hits(shared.chain_id, &[seq])
            .await
            .map_err(|e| e.to_string())?;
        Ok(found.get(&(author.to_string(), key.to_string())).copied())
    }

    /// Signs the checkpoint for `head` (the tree as this batch leaves it) and packs the
    /// batch for the store.
    fn finish<S: LedgerStore>(self, shared: &Shared<S>, head: &Head) -> Built {
        let checkpoint = Checkpoint {
            origin: shared.origin.clone(),
            size: head.size,
            root: head.frontier.root(),
        };
        // The checkpoint of size n is signed by the ledger key valid for entry n: after a
        // rotation in this batch, already the incoming key.
        let signer = shared.ledger_signer(head.keyring.ledger_key_for(head.size));
        let note = checkpoint.sign(&signer).to_string();
        let write = Batch {
            chain_id: shared.chain_id,
            base_size: self.base_size,
            base_hash: self.base_hash,
            entries: self.entries,
            nodes: self.nodes,
            last_recorded_at: timestamp::format_micros(head.last_recorded_at),
            checkpoint_note: note.clone(),
            keys: head
                .keyring
                .records()
                .filter(|r| self.changed_keys.contains(&r.partner))
                .cloned()
                .collect(),
            redactions: self.redactions,
        };
        Built {
            pending: self.pending,
            outcomes: self.outcomes,
            write: Arc::new(write),
            frontier_before: self.frontier_before,
            note,
            after_keyring: head.keyring.clone(),
        }
    }

    /// Tells every caller of this batch that nothing was written (refusals included,
    /// as in [`fail_built`]).
    fn fail(&mut self, why: &str) {
        self.outcomes.clear();
        not_committed(self.pending.drain(..), why);
    }
}

/// Decides one submission's fate and, if it is accepted, appends its entry to the batch.
#[allow(clippy::too_many_arguments)]
fn sequence_one(
    request: &AppendRequest,
    content_body: Option<&Vec<u8>>,
    hit: Option<IdempotencyHit>,
    key_digest: [u8; 16],
    versions: &mut HashMap<String, StreamPosition>,
    after: &mut Head,
    entries: &mut Vec<NewEntry>,
    nodes: &mut Vec<(NodeId, Hash)>,
    changed_keys: &mut Vec<String>,
    redactions: &mut Vec<u64>,
) -> Outcome {
    let signed = &request.submission;
    let s = signed.submission();
    let batch_start = after.size - entries.len() as u64;
    if let Some(hit) = hit {
        return if hit.submission_hash != signed.hash() {
            Outcome::Refused(AppendError::IdempotencyKeyReused {
                author: s.author.clone(),
                key: s.idempotency_key.clone(),
                seq: hit.seq,
            })
        } else if hit.seq >= batch_start {
            // A retry of an entry earlier in this same batch.
            match usize::try_from(hit.seq - batch_start) {
                Ok(i) if i < entries.len() => Outcome::New(i),
                _ => Outcome::Refused(AppendError::NotCommitted(format!(
                    "this writer's view of entry {} is out of date; retry",
                    hit.seq
                ))),
            }
        } else {
            Outcome::Replay(hit.seq)
        };
    }
    let seq = after.size;
    let position = versions.get(&s.stream).copied();
    let actual = position.map(|p| p.version);
    let version_ok = match request.expected {
        ExpectedVersion::Any => true,
        ExpectedVersion::NoStream => actual.is_none(),
        ExpectedVersion::Exact(n) => actual == Some(n),
    };
    if !version_ok {
        return Outcome::Refused(AppendError::WrongExpectedVersion {
            stream: s.stream.clone(),
            expected: request.expected,
            actual,
        });
    }
    let content = match (&request.content, content_body) {
        (Some(c), Some(body)) => Some((c.salt.clone(), body.clone())),
        _ => None,
    };
    // The signature was checked against this same (author, key id) before queueing;
    // left to check is the key's validity at this exact sequence number.
    let ring = &mut after.keyring;
    let key_check = ring.check(seq, s).and_then(|()| match seq {
        0 => Ok(()),
        _ => ring.key_for(&s.author, &s.key_id, seq).map(|_| ()),
    });
    if let Err(e) = key_check {
        return Outcome::Refused(e.into());
    }
    if keyring::OPERATOR_EVENTS.contains(&s.event_type.as_str()) {
        if let Err(e) = ring.apply(seq, s) {
            return Outcome::Refused(e.into());
        }
        let partner = s.payload.get("partner").and_then(Value::as_str);
        changed_keys.push(partner.unwrap_or(LEDGER_AUTHOR).to_string());
    }
    let stream = StreamPosition {
        id: position.map_or(seq, |p| p.id),
        version: actual.map_or(1, |v| v + 1),
    };
    let stream_version = stream.version;
    versions.insert(s.stream.clone(), stream);
    after.last_recorded_at = after.last_recorded_at.max(timestamp::now_micros());
    let recorded_at = timestamp::format_micros(after.last_recorded_at);
    let bytes = entry::entry_bytes(
        &Sequencing {
            seq,
            prev: &after.last_hash,
            recorded_at: &recorded_at,
            stream_version,
        },
        signed,
    );
    let hash = Hash::of(&bytes);
    let leaf = entry::entry_leaf(&hash);
    nodes.push((
        NodeId {
            level: 0,
            index: seq,
        },
        leaf,
    ));
    after.frontier.push(leaf, |id, h| nodes.push((id, h)));
    after.last_hash = hash;
    after.size += 1;
    redactions.extend_from_slice(&s.redacts);
    entries.push(NewEntry {
        seq,
        bytes,
        hash,
        author: s.author.clone(),
        event_type: s.event_type.clone(),
        stream: s.stream.clone(),
        stream_id: stream.id,
        opens_stream: position.is_none(),
        stream_version,
        idempotency_key: s.idempotency_key.clone(),
        key_digest,
        submission_hash: signed.hash(),
        content,
    });
    Outcome::New(entries.len() - 1)
}

/// Answers a committed batch's callers. New entries' receipts come from memory: their
/// proof nodes are the frontier before the batch or nodes the batch created.
async fn answer<S: LedgerStore>(shared: &Arc<Shared<S>>, built: Built) {
    let written = &built.write;
    let mut known: HashMap<NodeId, Hash> = Frontier::peak_ids(built.frontier_before.size())
        .into_iter()
        .zip(built.frontier_before.peaks().iter().copied())
        .collect();
    known.extend(written.nodes.iter().copied());
    let new_size = written.new_size();
    let receipt_of = |index: usize| -> Result<Receipt, AppendError> {
        let e = &written.entries[index];
        let plan = ProofPlan::inclusion(e.seq, new_size).map_err(AppendError::Proof)?;
        Ok(Receipt {
            seq: e.seq,
            entry: e.bytes.clone(),
            entry_hash: e.hash,
            tree_size: new_size,
            inclusion_proof: plan.assemble(&known).map_err(AppendError::Proof)?,
            checkpoint: built.note.clone(),
        })
    };
    let mut replays = Vec::new();
    for (pending, outcome) in built.pending.into_iter().zip(built.outcomes) {
        match outcome {
            Outcome::Refused(e) => {
                let _ = pending.reply.send(Err(e));
            }
            Outcome::New(i) => {
                let _ = pending.reply.send(receipt_of(i));
            }
            Outcome::Replay(seq) => replays.push((pending, seq)),
        }
    }
    if !replays.is_empty() {
        // Replays read the store; keep that off the sequencer's path.
        let shared = shared.clone();
        tokio::spawn(async move {
            for (pending, seq) in replays {
                let _ = pending
                    .reply
                    .send(super::receipt::stored_receipt(&shared, seq).await);
            }
        });
    }
}
