//! The append pipeline: validation and signature checks run concurrently on the callers'
//! tasks; one sequencer task then takes queued submissions in batches (bounded by count
//! and by time), gives each its sequence number, chain link, entry hash and Merkle leaf,
//! signs one checkpoint for the batch, commits the batch in one transaction (one fsync),
//! and only then answers each caller with a receipt it can check offline.
//!
//! Only the cheap, order-dependent steps are in the sequencer; the expensive ones
//! (canonical form, hashing the submission, Ed25519 verification) are not.

mod receipt;
mod sequencer;
pub mod stats;

pub use receipt::Receipt;

use crate::checkpoint::CheckpointError;
use crate::entry::{self, Content, EntryError, SignedSubmission, Submission, LEDGER_AUTHOR};
use crate::hash::Hash;
use crate::keyring::{self, Custody, KeyRecord, Keyring, KeyringError};
use crate::keys::{SignerKey, VerifierKey};
use crate::merkle::{ProofError, ProofPlan};
use crate::store::{LedgerStore, StoreError};
use crate::store::{StoredEntry, StreamPosition};
use crate::timestamp;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use ed25519_dalek::Signature;
use sequencer::{Head, Known, Pending, StreamLookup, Unit};
use serde_json::{json, Value};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// What the caller believes about the stream before appending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpectedVersion {
    /// Append whatever the stream's state.
    Any,
    /// The stream must not exist yet.
    NoStream,
    /// The stream's current version (its last entry's `stream_version`) must be this.
    Exact(u64),
}

/// One submission to append.
#[derive(Debug, Clone)]
pub struct AppendRequest {
    pub submission: SignedSubmission,
    pub expected: ExpectedVersion,
    pub content: Option<Content>,
}

/// Why an append was refused. Nothing is written when any of these is returned.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    #[error(transparent)]
    Invalid(#[from] EntryError),
    #[error(transparent)]
    Key(#[from] KeyringError),
    #[error("stream {stream:?} is at version {actual:?}, but the append expected {expected:?}")]
    WrongExpectedVersion {
        stream: String,
        expected: ExpectedVersion,
        actual: Option<u64>,
    },
    #[error("idempotency key {key:?} of {author} was already used for entry {seq} with different content")]
    IdempotencyKeyReused {
        author: String,
        key: String,
        seq: u64,
    },
    #[error("entry {target} cannot be redacted: {why}")]
    Redaction { target: u64, why: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Proof(ProofError),
    #[error(transparent)]
    Checkpoint(CheckpointError),
    #[error("the ledger has no chain {0:?}; run `isa-ledger init` first")]
    NoChain(String),
    #[error("the ledger is already initialised for {0:?}")]
    AlreadyInitialised(String),
    #[error("the ledger key does not match the key that initialised this log")]
    WrongLedgerKey,
    #[error("the batch was not committed ({0}); nothing was written, retry")]
    NotCommitted(String),
    #[error("the sequencer has stopped; the service is shutting down")]
    Closed,
}

/// Batching bounds of the sequencer.
#[derive(Debug, Clone, Copy)]
pub struct PipelineConfig {
    /// Most submissions committed in one transaction.
    pub max_batch: usize,
    /// Longest a batch waits for more submissions once it has one.
    pub max_wait: Duration,
    /// Submissions that may queue before callers wait for room.
    pub queue_depth: usize,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            max_batch: 512,
            max_wait: Duration::ZERO,
            queue_depth: 4096,
        }
    }
}

struct Shared<S> {
    store: S,
    origin: String,
    chain_id: i64,
    /// Every ledger signing key this service holds: the current one and, after a
    /// rotation, its successor (the log says which is valid for which entries).
    ledger_keys: RwLock<Vec<SignerKey>>,
    /// Read by callers to check signatures; written by the sequencer after each commit.
    keyring: RwLock<Keyring>,
    stats: stats::PipelineStats,
}

/// The payload of `PartnerKeyRegistered` (or, with the key it replaces,
/// `PartnerKeyRotated`).
fn new_key_payload(
    key: &VerifierKey,
    custody: Custody,
    possession: &Signature,
    replaces: Option<&str>,
) -> Value {
    let mut payload = json!({
        "partner": key.name,
        "key_id": key.id_hex(),
        "public_key": key.public_base64(),
        "custody": custody.as_str(),
        "proof_of_possession": BASE64.encode(possession.to_bytes()),
    });
    if let (Some(old), Some(fields)) = (replaces, payload.as_object_mut()) {
        fields.insert("old_key_id".into(), Value::from(old));
    }
    payload
}

impl<S> Shared<S> {
    /// The held signing key matching `verifier`, or the first held key when there is
    /// none yet (before the genesis entry). The list is never empty: `open` starts it.
    fn ledger_signer(&self, verifier: Option<&VerifierKey>) -> SignerKey {
        let keys = match self.ledger_keys.read() {
            Ok(k) => k,
            Err(poisoned) => poisoned.into_inner(),
        };
        verifier
            .and_then(|v| keys.iter().find(|k| k.verifier() == v))
            .or_else(|| keys.first())
            .cloned()
            .unwrap_or_else(|| unreachable!("open() starts the ledger key list with one key"))
    }
}

/// A handle to one log. Cheap to clone; all clones feed the same sequencer.
pub struct Ledger<S: LedgerStore> {
    shared: Arc<Shared<S>>,
    queue: mpsc::Sender<Unit>,
    lookups: mpsc::Sender<StreamLookup>,
}

impl<S: LedgerStore> Clone for Ledger<S> {
    fn clone(&self) -> Self {
        Ledger {
            shared: self.shared.clone(),
            queue: self.queue.clone(),
            lookups: self.lookups.clone(),
        }
    }
}

impl<S: LedgerStore + Clone> Ledger<S> {
    /// Creates the chain and writes its genesis entry (`LedgerInitialised`).
    pub async fn init(
        store: S,
        ledger_key: SignerKey,
        config: PipelineConfig,
    ) -> Result<Ledger<S>, AppendError> {
        let origin = ledger_key.name().to_string();
        if store.chain(&origin).await?.is_some() {
            return Err(AppendError::AlreadyInitialised(origin));
        }
        let now = timestamp::format_micros(timestamp::now_micros());
        store.create_chain(&origin, &now).await?;
        let ledger = Ledger::open(store, ledger_key, config).await?;
        let genesis = ledger.operator_submission(
            keyring::LEDGER_INITIALISED,
            "ledger",
            json!({ "ledger_key": ledger.ledger_verifier().to_string() }),
        )?;
        ledger
            .append(AppendRequest {
                submission: genesis,
                expected: ExpectedVersion::NoStream,
                content: None,
            })
            .await?;
        Ok(ledger)
    }

    /// Opens an existing chain (named by the ledger key) and starts its sequencer.
    pub async fn open(
        store: S,
        ledger_key: SignerKey,
        config: PipelineConfig,
    ) -> Result<Ledger<S>, AppendError> {
        let origin = ledger_key.name().to_string();
        let state = store
            .chain(&origin)
            .await?
            .ok_or_else(|| AppendError::NoChain(origin.clone()))?;
        let keyring = Keyring::from_records(&origin, store.keys(state.chain_id).await?)?;
        if state.size > 0 && keyring.ledger_key_for(state.size) != Some(ledger_key.verifier()) {
            return Err(AppendError::WrongLedgerKey);
        }
        let head = Head::from_state(&state, keyring.clone())?;
        let known = Known::load(&store, state.chain_id, state.size).await?;
        let shared = Arc::new(Shared {
            store,
            origin,
            chain_id: state.chain_id,
            ledger_keys: RwLock::new(vec![ledger_key]),
            keyring: RwLock::new(keyring),
            stats: stats::PipelineStats::default(),
        });
        let (queue, receiver) = mpsc::channel(config.queue_depth.max(1));
        let (lookups, lookup_receiver) = mpsc::channel(64);
        tokio::spawn(sequencer::run(
            shared.clone(),
            head,
            known,
            sequencer::Inbox {
                appends: receiver,
                lookups: lookup_receiver,
            },
            config,
        ));
        Ok(Ledger {
            shared,
            queue,
            lookups,
        })
    }

    pub fn origin(&self) -> &str {
        &self.shared.origin
    }

    pub fn store(&self) -> &S {
        &self.shared.store
    }

    pub fn chain_id(&self) -> i64 {
        self.shared.chain_id
    }

    /// The ledger's current verifier key: what signs checkpoints from now on.
    pub fn ledger_verifier(&self) -> VerifierKey {
        self.current_ledger_key().verifier().clone()
    }

    /// The ledger signing key the log says is current (before genesis, the one given).
    fn current_ledger_key(&self) -> SignerKey {
        let current = self.keyring().ledger_key_for(u64::MAX).cloned();
        self.shared.ledger_signer(current.as_ref())
    }

    /// Replaces the ledger key: a `LedgerKeyRotated` entry signed by the outgoing key and
    /// carrying the incoming key's proof of possession. From the entry after it on,
    /// operator entries and checkpoints (including this batch's) use the new key.
    pub async fn rotate_ledger_key(&self, incoming: SignerKey) -> Result<Receipt, AppendError> {
        if incoming.name() != self.shared.origin {
            return Err(EntryError::Field {
                field: "ledger_key",
                why: format!("the new ledger key must be named {:?}", self.shared.origin),
            }
            .into());
        }
        let text = incoming.verifier().to_string();
        let possession = incoming.sign(&keyring::possession_message(&text, &self.shared.origin));
        match self.shared.ledger_keys.write() {
            Ok(mut keys) => keys.push(incoming),
            Err(poisoned) => poisoned.into_inner().push(incoming),
        }
        let submission = self.operator_submission(
            keyring::LEDGER_KEY_ROTATED,
            "ledger",
            json!({
                "ledger_key": text,
                "proof_of_possession": BASE64.encode(possession.to_bytes()),
            }),
        )?;
        self.append_operator(submission).await
    }

    /// A snapshot of every key and its validity.
    /// Entries and batches committed by this process, and the batches' sizes.
    pub fn stats(&self) -> stats::StatsSnapshot {
        self.shared.stats.snapshot()
    }

    /// `partner`'s current key (the one with no end), read without copying the
    /// keyring: asked on every submission.
    pub fn current_key(&self, partner: &str) -> Option<KeyRecord> {
        let ring = match self.shared.keyring.read() {
            Ok(ring) => ring,
            Err(poisoned) => poisoned.into_inner(),
        };
        let current = ring
            .records()
            .find(|r| r.partner == partner && r.until_seq.is_none())
            .cloned();
        current
    }

    pub fn keyring(&self) -> Keyring {
        match self.shared.keyring.read() {
            Ok(ring) => ring.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Where the stream named `stream` stands, as the sequencer knows it: its id, and
    /// its version counting appends accepted but perhaps not yet durable. `None` if no
    /// entry was ever sequenced for it.
    pub async fn stream_position(
        &self,
        stream: &str,
    ) -> Result<Option<StreamPosition>, AppendError> {
        let mut positions = self.stream_positions(&[stream]).await?;
        Ok(positions.pop().flatten())
    }

    /// [`Ledger::stream_position`] of several streams, asked in one question.
    pub async fn stream_positions(
        &self,
        streams: &[&str],
    ) -> Result<Vec<Option<StreamPosition>>, AppendError> {
        let (reply, answer) = oneshot::channel();
        let names = streams.iter().map(|s| s.to_string()).collect();
        self.lookups
            .send((names, reply))
            .await
            .map_err(|_| AppendError::Closed)?;
        answer.await.map_err(|_| AppendError::Closed)
    }

    /// Every durable entry of the stream named `stream`, in stream order (empty if the
    /// stream does not exist). The store has no index on stream names (the sequencer
    /// alone needs them, and keeps them in memory), so the sequencer is asked for the
    /// stream's id, and the entries are read by it.
    pub async fn read_stream(&self, stream: &str) -> Result<Vec<StoredEntry>, AppendError> {
        let position = self.stream_position(stream).await?;
        self.read_stream_at(position).await
    }

    /// [`Ledger::read_stream`] of a stream already located (by
    /// [`Ledger::stream_positions`]); `None` is a stream with no entries.
    pub async fn read_stream_at(
        &self,
        position: Option<StreamPosition>,
    ) -> Result<Vec<StoredEntry>, AppendError> {
        let Some(position) = position else {
            return Ok(Vec::new());
        };
        Ok(self
            .shared
            .store
            .stream_entries(self.shared.chain_id, position.id)
            .await?)
    }

    /// Appends one submission and waits until it is durable.
    pub async fn append(&self, request: AppendRequest) -> Result<Receipt, AppendError> {
        let mut receipts = self.append_all(vec![request]).await?;
        receipts.pop().ok_or(AppendError::Closed)
    }

    /// Appends submissions as one unit, in order and with consecutive sequence numbers,
    /// in one transaction: all become durable, or none is written (the error is that of
    /// the first submission refused). Each is checked against the stream as the ones
    /// before it leave it, so a command's second event expects the version its first
    /// creates.
    pub async fn append_all(
        &self,
        requests: Vec<AppendRequest>,
    ) -> Result<Vec<Receipt>, AppendError> {
        let mut unit = Vec::with_capacity(requests.len());
        let mut answers = Vec::with_capacity(requests.len());
        for request in requests {
            let content_body = self.precheck(&request).await?;
            let (reply, answer) = oneshot::channel();
            unit.push(Pending {
                request,
                content_body,
                reply,
            });
            answers.push(answer);
        }
        if unit.is_empty() {
            return Ok(Vec::new());
        }
        self.queue
            .send(unit)
            .await
            .map_err(|_| AppendError::Closed)?;
        let mut receipts = Vec::with_capacity(answers.len());
        let mut refusal: Option<AppendError> = None;
        for answer in answers {
            match answer.await.map_err(|_| AppendError::Closed)? {
                Ok(receipt) => receipts.push(receipt),
                // The submission that was refused says why; the others only that they
                // went with it.
                Err(e) => {
                    let says_why = match &refusal {
                        None => true,
                        Some(AppendError::NotCommitted(_)) => {
                            !matches!(e, AppendError::NotCommitted(_))
                        }
                        Some(_) => false,
                    };
                    if says_why {
                        refusal = Some(e);
                    }
                }
            }
        }
        match refusal {
            Some(e) => Err(e),
            None => Ok(receipts),
        }
    }

    /// The checks that need no sequence number: origin, content, signature, redactions.
    /// Returns the redactable content's canonical body bytes, if there is content.
    async fn precheck(&self, request: &AppendRequest) -> Result<Option<Vec<u8>>, AppendError> {
        let signed = &request.submission;
        let submission = &signed.submission;
        if submission.origin != self.shared.origin {
            return Err(EntryError::WrongOrigin {
                expected: self.shared.origin.clone(),
                found: submission.origin.clone(),
            }
            .into());
        }
        let content_body = match (&request.content, &submission.content_commitment) {
            (Some(content), _) => Some(content.checked_body(submission)?),
            (None, Some(_)) => return Err(EntryError::ContentMissing.into()),
            (None, None) => None,
        };
        let found = {
            // Looked up under the read lock, without copying the keyring.
            let ring = match self.shared.keyring.read() {
                Ok(ring) => ring,
                Err(poisoned) => poisoned.into_inner(),
            };
            if ring.records().next().is_none() && submission.author == LEDGER_AUTHOR {
                None
            } else {
                // Currently valid: the sequencer re-checks validity at the entry's seq.
                Some(
                    ring.key_for(&submission.author, &submission.key_id, u64::MAX)
                        .cloned(),
                )
            }
        };
        let key = match found {
            Some(key) => key?,
            // Only the genesis entry comes before any key is registered; it is signed by
            // the ledger key it registers.
            None => self.current_ledger_key().verifier().clone(),
        };
        // A signature made in this process by the very key registered for the author is
        // valid by construction; any other is verified.
        let made_here = signed.signed_here_by == Some(*key.key.as_bytes());
        if !made_here && !key.verify(&signed.message(), &Signature::from_bytes(&signed.signature)) {
            return Err(KeyringError::BadSignature {
                author: submission.author.clone(),
                key_id: submission.key_id.clone(),
            }
            .into());
        }
        for &target in &submission.redacts {
            self.check_redaction(submission, target).await?;
        }
        Ok(content_body)
    }

    async fn check_redaction(
        &self,
        submission: &Submission,
        target: u64,
    ) -> Result<(), AppendError> {
        let refuse = |why: &str| AppendError::Redaction {
            target,
            why: why.to_string(),
        };
        let stored = self
            .shared
            .store
            .entries(self.shared.chain_id, target, 1)
            .await?;
        let Some(stored) = stored.into_iter().next().filter(|e| e.seq == target) else {
            return Err(refuse("there is no such entry"));
        };
        let entry: entry::Entry = serde_json::from_slice(&stored.bytes)
            .map_err(|e| StoreError::Corrupt(format!("entry {target}: {e}")))?;
        if entry.submission.content_commitment.is_none() {
            return Err(refuse("it has no redactable content"));
        }
        if submission.author != LEDGER_AUTHOR && submission.author != entry.submission.author {
            return Err(refuse(
                "only its author or the ledger operator may redact it",
            ));
        }
        Ok(())
    }

    /// A submission authored and signed by the ledger operator.
    pub fn operator_submission(
        &self,
        event_type: &str,
        stream: &str,
        payload: Value,
    ) -> Result<SignedSubmission, EntryError> {
        let now = timestamp::format_micros(timestamp::now_micros());
        let signer = self.current_ledger_key();
        let submission = Submission {
            author: LEDGER_AUTHOR.to_string(),
            content_commitment: None,
            event_type: event_type.to_string(),
            event_version: 1,
            idempotency_key: format!(
                "{event_type}/{}",
                Hash::of(payload.to_string().as_bytes()).to_hex()
            ),
            key_id: signer.verifier().id_hex(),
            occurred_at: now,
            origin: self.shared.origin.clone(),
            payload,
            redacts: vec![],
            stream: stream.to_string(),
        };
        SignedSubmission::sign(submission, &signer)
    }

    /// Registers a partner's public key (custodial or partner-held). `possession` is the
    /// new key's signature over [`keyring::possession_message`].
    pub async fn register_partner_key(
        &self,
        key: &VerifierKey,
        custody: Custody,
        possession: &Signature,
    ) -> Result<Receipt, AppendError> {
        let submission = self.operator_submission(
            keyring::PARTNER_KEY_REGISTERED,
            &format!("partner-keys/{}", key.name),
            new_key_payload(key, custody, possession, None),
        )?;
        self.append_operator(submission).await
    }

    /// Replaces a partner's current key with a new one in one entry.
    pub async fn rotate_partner_key(
        &self,
        old_key_id: &str,
        key: &VerifierKey,
        custody: Custody,
        possession: &Signature,
    ) -> Result<Receipt, AppendError> {
        let submission = self.operator_submission(
            keyring::PARTNER_KEY_ROTATED,
            &format!("partner-keys/{}", key.name),
            new_key_payload(key, custody, possession, Some(old_key_id)),
        )?;
        self.append_operator(submission).await
    }

    /// Ends a partner key's validity from the next entry on.
    pub async fn revoke_partner_key(
        &self,
        partner: &str,
        key_id: &str,
        reason: &str,
    ) -> Result<Receipt, AppendError> {
        let submission = self.operator_submission(
            keyring::PARTNER_KEY_REVOKED,
            &format!("partner-keys/{partner}"),
            json!({ "partner": partner, "key_id": key_id, "reason": reason }),
        )?;
        self.append_operator(submission).await
    }

    async fn append_operator(&self, submission: SignedSubmission) -> Result<Receipt, AppendError> {
        self.append(AppendRequest {
            submission,
            expected: ExpectedVersion::Any,
            content: None,
        })
        .await
    }

    /// The signed checkpoint with the largest tree size.
    pub async fn latest_checkpoint(&self) -> Result<Option<(u64, String)>, AppendError> {
        Ok(self
            .shared
            .store
            .latest_checkpoint(self.shared.chain_id)
            .await?)
    }

    /// An inclusion proof for entry `seq` in the tree of `tree_size` entries.
    pub async fn inclusion_proof(
        &self,
        seq: u64,
        tree_size: u64,
    ) -> Result<Vec<Hash>, AppendError> {
        let plan = ProofPlan::inclusion(seq, tree_size).map_err(AppendError::Proof)?;
        self.assemble(&plan, tree_size).await
    }

    /// A consistency proof between two tree sizes.
    pub async fn consistency_proof(
        &self,
        first: u64,
        second: u64,
    ) -> Result<Vec<Hash>, AppendError> {
        let plan = ProofPlan::consistency(first, second).map_err(AppendError::Proof)?;
        self.assemble(&plan, second).await
    }

    /// The root hash of the tree of `tree_size` entries.
    pub async fn root(&self, tree_size: u64) -> Result<Hash, AppendError> {
        let plan = ProofPlan::root(tree_size);
        Ok(self
            .assemble(&plan, tree_size)
            .await?
            .first()
            .copied()
            .unwrap_or_else(crate::merkle::empty_root))
    }

    async fn assemble(&self, plan: &ProofPlan, tree_size: u64) -> Result<Vec<Hash>, AppendError> {
        let size = self
            .shared
            .store
            .latest_checkpoint(self.shared.chain_id)
            .await?
            .map_or(0, |c| c.0);
        if tree_size > size {
            return Err(AppendError::Proof(ProofError::IndexOutOfRange {
                index: tree_size,
                size,
            }));
        }
        let nodes = self
            .shared
            .store
            .nodes(self.shared.chain_id, &plan.nodes())
            .await?;
        plan.assemble(&nodes).map_err(AppendError::Proof)
    }

    /// The receipt of an existing entry, exactly as first issued: the proof against the
    /// checkpoint of the batch that committed it.
    pub async fn receipt_for(&self, seq: u64) -> Result<Receipt, AppendError> {
        receipt::stored_receipt(&self.shared, seq).await
    }
}
