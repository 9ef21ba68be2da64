//! The append pipeline: validation and signature checks run concurrently on the callers'
//! tasks; one sequencer task then takes queued submissions in batches (bounded by count
//! and by time), gives each its sequence number, chain link, entry hash and Merkle leaf,
//! signs one checkpoint for the batch, commits the batch in one transaction (one fsync),
//! and only then answers each caller with a receipt it can check offline.
//!
//! Only the cheap, order-dependent steps are in the sequencer; the expensive ones
//! (canonical form, hashing the submission, Ed25519 verification) are not.

use crate::checkpoint::{Checkpoint, CheckpointError, SignedNote};
use crate::entry::{
    self, Content, EntryError, Sequencing, SignedSubmission, Submission, LEDGER_AUTHOR,
};
use crate::hash::Hash;
use crate::keyring::{self, Custody, Keyring, KeyringError};
use crate::keys::{SignerKey, VerifierKey};
use crate::merkle::{Frontier, NodeId, ProofError, ProofPlan};
use crate::store::{Batch, ChainState, LedgerStore, NewEntry, StoreError};
use crate::timestamp;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use ed25519_dalek::Signature;
use serde_json::{json, Value};
use std::collections::HashMap;
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

/// Proof that an entry is in the log, checkable offline with the ledger's verifier key
/// and the author's public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub seq: u64,
    /// The entry's canonical bytes.
    pub entry: Vec<u8>,
    pub entry_hash: Hash,
    pub tree_size: u64,
    pub inclusion_proof: Vec<Hash>,
    /// The signed checkpoint (C2SP signed note) for `tree_size`.
    pub checkpoint: String,
}

impl Receipt {
    /// The receipt as JSON, the entry embedded as an object.
    pub fn to_json(&self) -> Value {
        let entry: Value = serde_json::from_slice(&self.entry).unwrap_or(Value::Null);
        json!({
            "seq": self.seq,
            "entry": entry,
            "entry_hash": self.entry_hash.to_hex(),
            "tree_size": self.tree_size,
            "inclusion_proof": self.inclusion_proof.iter().map(Hash::to_base64).collect::<Vec<_>>(),
            "checkpoint": self.checkpoint,
        })
    }

    /// Checks the receipt offline: the checkpoint's signature by the ledger key, the
    /// inclusion proof against its root, and the author's signature on the submission.
    pub fn verify(
        &self,
        ledger_key: &VerifierKey,
        author_key: &VerifierKey,
    ) -> Result<(), AppendError> {
        let note = SignedNote::parse(&self.checkpoint).map_err(AppendError::Checkpoint)?;
        let checkpoint = note
            .verify_checkpoint(ledger_key)
            .map_err(AppendError::Checkpoint)?;
        if checkpoint.size != self.tree_size || Hash::of(&self.entry) != self.entry_hash {
            return Err(AppendError::Proof(ProofError::RootMismatch));
        }
        crate::merkle::verify_inclusion(
            self.seq,
            self.tree_size,
            &entry::entry_leaf(&self.entry_hash).0,
            &self.inclusion_proof,
            &checkpoint.root.0,
        )
        .map_err(AppendError::Proof)?;
        let parsed: entry::Entry = serde_json::from_slice(&self.entry).map_err(|e| {
            AppendError::Invalid(EntryError::Field {
                field: "entry",
                why: e.to_string(),
            })
        })?;
        let submission_bytes = parsed
            .submission
            .canonical_bytes()
            .map_err(AppendError::Invalid)?;
        let signature = Signature::from_bytes(
            &entry::decode_signature(&parsed.signature).map_err(AppendError::Invalid)?,
        );
        if !author_key.verify(
            &entry::submission_message(&Hash::of(&submission_bytes)),
            &signature,
        ) {
            return Err(AppendError::Key(KeyringError::BadSignature {
                author: parsed.submission.author,
                key_id: parsed.submission.key_id,
            }));
        }
        Ok(())
    }
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
            max_wait: Duration::from_micros(500),
            queue_depth: 4096,
        }
    }
}

struct Pending {
    request: AppendRequest,
    reply: oneshot::Sender<Result<Receipt, AppendError>>,
}

/// State only the sequencer changes.
struct Head {
    size: u64,
    last_hash: Hash,
    last_recorded_at: timestamp::Micros,
    frontier: Frontier,
}

struct Shared<S> {
    store: S,
    origin: String,
    chain_id: i64,
    ledger_key: SignerKey,
    /// Read by callers to check signatures; written by the sequencer after each commit.
    keyring: RwLock<Keyring>,
}

/// A handle to one log. Cheap to clone; all clones feed the same sequencer.
pub struct Ledger<S: LedgerStore> {
    shared: Arc<Shared<S>>,
    queue: mpsc::Sender<Pending>,
}

impl<S: LedgerStore> Clone for Ledger<S> {
    fn clone(&self) -> Self {
        Ledger {
            shared: self.shared.clone(),
            queue: self.queue.clone(),
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
            json!({ "ledger_key": ledger.shared.ledger_key.verifier().to_string() }),
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
        let head = head_from(&state)?;
        let shared = Arc::new(Shared {
            store,
            origin,
            chain_id: state.chain_id,
            ledger_key,
            keyring: RwLock::new(keyring),
        });
        let (queue, receiver) = mpsc::channel(config.queue_depth.max(1));
        tokio::spawn(sequencer(shared.clone(), head, receiver, config));
        Ok(Ledger { shared, queue })
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

    pub fn ledger_verifier(&self) -> &VerifierKey {
        self.shared.ledger_key.verifier()
    }

    /// A snapshot of every key and its validity.
    pub fn keyring(&self) -> Keyring {
        match self.shared.keyring.read() {
            Ok(ring) => ring.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Appends one submission and waits until it is durable.
    pub async fn append(&self, request: AppendRequest) -> Result<Receipt, AppendError> {
        self.precheck(&request).await?;
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Pending { request, reply })
            .await
            .map_err(|_| AppendError::Closed)?;
        answer.await.map_err(|_| AppendError::Closed)?
    }

    /// The checks that need no sequence number: origin, content, signature, redactions.
    async fn precheck(&self, request: &AppendRequest) -> Result<(), AppendError> {
        let signed = &request.submission;
        let submission = &signed.submission;
        if submission.origin != self.shared.origin {
            return Err(EntryError::WrongOrigin {
                expected: self.shared.origin.clone(),
                found: submission.origin.clone(),
            }
            .into());
        }
        match (&request.content, &submission.content_commitment) {
            (Some(content), _) => content.check_against(submission)?,
            (None, Some(_)) => return Err(EntryError::ContentMissing.into()),
            (None, None) => {}
        }
        let key = {
            let ring = self.keyring();
            if ring.records().next().is_none() && submission.author == LEDGER_AUTHOR {
                // Only the genesis entry comes before any key is registered; it is
                // signed by the ledger key it registers.
                self.shared.ledger_key.verifier().clone()
            } else {
                // Currently valid: the sequencer re-checks validity at the entry's seq.
                ring.key_for(&submission.author, &submission.key_id, u64::MAX)?
                    .clone()
            }
        };
        if !key.verify(&signed.message(), &Signature::from_bytes(&signed.signature)) {
            return Err(KeyringError::BadSignature {
                author: submission.author.clone(),
                key_id: submission.key_id.clone(),
            }
            .into());
        }
        for &target in &submission.redacts {
            self.check_redaction(submission, target).await?;
        }
        Ok(())
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
        let submission = Submission {
            author: LEDGER_AUTHOR.to_string(),
            content_commitment: None,
            event_type: event_type.to_string(),
            event_version: 1,
            idempotency_key: format!(
                "{event_type}/{}",
                Hash::of(payload.to_string().as_bytes()).to_hex()
            ),
            key_id: self.shared.ledger_key.verifier().id_hex(),
            occurred_at: now,
            origin: self.shared.origin.clone(),
            payload,
            redacts: vec![],
            stream: stream.to_string(),
        };
        SignedSubmission::sign(submission, &self.shared.ledger_key)
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
            json!({
                "partner": key.name,
                "key_id": key.id_hex(),
                "public_key": key.public_base64(),
                "custody": custody.as_str(),
                "proof_of_possession": BASE64.encode(possession.to_bytes()),
            }),
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
            json!({
                "partner": key.name,
                "old_key_id": old_key_id,
                "key_id": key.id_hex(),
                "public_key": key.public_base64(),
                "custody": custody.as_str(),
                "proof_of_possession": BASE64.encode(possession.to_bytes()),
            }),
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
        replay(&self.shared, seq).await
    }
}

fn head_from(state: &ChainState) -> Result<Head, StoreError> {
    Ok(Head {
        size: state.size,
        last_hash: state.last_entry_hash,
        last_recorded_at: timestamp::parse_utc(&state.last_recorded_at).unwrap_or(0),
        frontier: Frontier::from_peaks(state.size, state.peaks.clone())
            .ok_or_else(|| StoreError::Corrupt("frontier does not match the head size".into()))?,
    })
}

async fn sequencer<S: LedgerStore>(
    shared: Arc<Shared<S>>,
    mut head: Head,
    mut queue: mpsc::Receiver<Pending>,
    config: PipelineConfig,
) {
    while let Some(first) = queue.recv().await {
        let mut batch = vec![first];
        let deadline = tokio::time::Instant::now() + config.max_wait;
        while batch.len() < config.max_batch {
            match queue.try_recv() {
                Ok(p) => batch.push(p),
                Err(mpsc::error::TryRecvError::Disconnected) => break,
                Err(mpsc::error::TryRecvError::Empty) => {
                    if config.max_wait.is_zero() {
                        break;
                    }
                    match tokio::time::timeout_at(deadline, queue.recv()).await {
                        Ok(Some(p)) => batch.push(p),
                        _ => break,
                    }
                }
            }
        }
        if let Err(error) = commit_batch(&shared, &mut head, batch).await {
            // The batch was not written (its callers were told). Reload the head so the
            // next batch continues from what is really durable.
            eprintln!("isa-ledger: batch not committed: {error}");
            match shared.store.chain(&shared.origin).await {
                Ok(Some(state)) => {
                    if let Ok(h) = head_from(&state) {
                        head = h;
                    }
                    if let Ok(records) = shared.store.keys(shared.chain_id).await {
                        if let Ok(ring) = Keyring::from_records(&shared.origin, records) {
                            if let Ok(mut guard) = shared.keyring.write() {
                                *guard = ring;
                            }
                        }
                    }
                }
                _ => eprintln!("isa-ledger: could not reload the chain head after a failed batch"),
            }
        }
    }
}

/// What happens to each pending submission of a batch.
enum Outcome {
    /// Refused before sequencing.
    Refused(AppendError),
    /// A retry of an entry committed earlier.
    Replay(u64),
    /// A retry of a submission earlier in this same batch.
    SameAs(usize),
    /// Sequenced at this position of the batch's new entries.
    New(usize),
}

async fn commit_batch<S: LedgerStore>(
    shared: &Shared<S>,
    head: &mut Head,
    batch: Vec<Pending>,
) -> Result<(), StoreError> {
    let store = &shared.store;
    let chain_id = shared.chain_id;
    let keys: Vec<(&str, &str)> = batch
        .iter()
        .map(|p| {
            let s = &p.request.submission.submission;
            (s.author.as_str(), s.idempotency_key.as_str())
        })
        .collect();
    let streams: Vec<&str> = batch
        .iter()
        .map(|p| p.request.submission.submission.stream.as_str())
        .collect();
    let (hits, mut versions) = match tokio::try_join!(
        store.idempotency_hits(chain_id, &keys),
        store.stream_versions(chain_id, &streams)
    ) {
        Ok(found) => found,
        Err(e) => {
            fail_all(batch, &e);
            return Err(e);
        }
    };

    let mut ring = match shared.keyring.read() {
        Ok(r) => r.clone(),
        Err(p) => p.into_inner().clone(),
    };
    let base_size = head.size;
    let mut frontier = head.frontier.clone();
    let mut nodes: Vec<(NodeId, Hash)> = Vec::with_capacity(batch.len() * 2);
    let mut entries: Vec<NewEntry> = Vec::with_capacity(batch.len());
    let mut outcomes = Vec::with_capacity(batch.len());
    let mut in_batch: HashMap<(String, String), (usize, Hash)> = HashMap::new();
    let mut prev = head.last_hash;
    let mut recorded_at = head.last_recorded_at.max(timestamp::now_micros());
    let mut changed_keys: Vec<String> = Vec::new();
    let mut redactions = Vec::new();

    for pending in &batch {
        let request = &pending.request;
        let signed = &request.submission;
        let s = &signed.submission;
        let id = (s.author.clone(), s.idempotency_key.clone());
        if let Some(hit) = hits.get(&id) {
            outcomes.push(if hit.submission_hash == signed.hash {
                Outcome::Replay(hit.seq)
            } else {
                Outcome::Refused(AppendError::IdempotencyKeyReused {
                    author: id.0,
                    key: id.1,
                    seq: hit.seq,
                })
            });
            continue;
        }
        if let Some(&(first, hash)) = in_batch.get(&id) {
            outcomes.push(if hash == signed.hash {
                Outcome::SameAs(first)
            } else {
                Outcome::Refused(AppendError::IdempotencyKeyReused {
                    author: id.0,
                    key: id.1,
                    seq: base_size + first as u64,
                })
            });
            continue;
        }
        let seq = base_size + entries.len() as u64;
        let actual = versions.get(&s.stream).copied();
        let version_ok = match request.expected {
            ExpectedVersion::Any => true,
            ExpectedVersion::NoStream => actual.is_none(),
            ExpectedVersion::Exact(n) => actual == Some(n),
        };
        if !version_ok {
            outcomes.push(Outcome::Refused(AppendError::WrongExpectedVersion {
                stream: s.stream.clone(),
                expected: request.expected,
                actual,
            }));
            continue;
        }
        let content = match &request.content {
            Some(c) => match crate::canonical::to_canonical(&c.body) {
                Ok(body) => Some((c.salt.clone(), body)),
                Err(e) => {
                    outcomes.push(Outcome::Refused(EntryError::from(e).into()));
                    continue;
                }
            },
            None => None,
        };
        // The signature was checked against this same (author, key id) before queueing;
        // here only the key's validity at this exact sequence number is left to check.
        let key_check = ring.check(seq, s).and_then(|()| match seq {
            0 => Ok(()),
            _ => ring.key_for(&s.author, &s.key_id, seq).map(|_| ()),
        });
        if let Err(e) = key_check {
            outcomes.push(Outcome::Refused(e.into()));
            continue;
        }
        if keyring::OPERATOR_EVENTS.contains(&s.event_type.as_str()) {
            if let Err(e) = ring.apply(seq, s) {
                outcomes.push(Outcome::Refused(e.into()));
                continue;
            }
            let partner = s.payload.get("partner").and_then(Value::as_str);
            changed_keys.push(partner.unwrap_or(LEDGER_AUTHOR).to_string());
        }
        let stream_version = actual.map_or(1, |v| v + 1);
        versions.insert(s.stream.clone(), stream_version);
        recorded_at = recorded_at.max(timestamp::now_micros());
        let recorded_text = timestamp::format_micros(recorded_at);
        let bytes = entry::entry_bytes(
            &Sequencing {
                seq,
                prev: &prev,
                recorded_at: &recorded_text,
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
        frontier.push(leaf, |id, h| nodes.push((id, h)));
        prev = hash;
        redactions.extend_from_slice(&s.redacts);
        in_batch.insert(id, (entries.len(), signed.hash));
        outcomes.push(Outcome::New(entries.len()));
        entries.push(NewEntry {
            seq,
            bytes,
            hash,
            author: s.author.clone(),
            event_type: s.event_type.clone(),
            stream: s.stream.clone(),
            stream_version,
            idempotency_key: s.idempotency_key.clone(),
            submission_hash: signed.hash,
            content,
        });
    }

    let new_size = base_size + entries.len() as u64;
    let checkpoint = Checkpoint {
        origin: shared.origin.clone(),
        size: new_size,
        root: frontier.root(),
    };
    let note = checkpoint.sign(&shared.ledger_key).to_string();
    if !entries.is_empty() {
        let batch_write = Batch {
            chain_id,
            base_size,
            entries,
            nodes,
            last_recorded_at: timestamp::format_micros(recorded_at),
            checkpoint_note: note.clone(),
            keys: ring
                .records()
                .filter(|r| changed_keys.contains(&r.partner))
                .cloned()
                .collect(),
            redactions,
        };
        if let Err(e) = store.commit(&batch_write).await {
            fail_all(batch, &e);
            return Err(e);
        }
        // Durable: advance the in-memory head and publish the new keys.
        head.size = new_size;
        head.last_hash = prev;
        head.last_recorded_at = recorded_at;
        let old_frontier = std::mem::replace(&mut head.frontier, frontier);
        match shared.keyring.write() {
            Ok(mut guard) => *guard = ring,
            Err(poisoned) => *poisoned.into_inner() = ring,
        }
        answer(shared, batch, outcomes, &batch_write, &old_frontier, note).await;
    } else {
        answer_without_commit(shared, batch, outcomes).await;
    }
    Ok(())
}

fn fail_all(batch: Vec<Pending>, error: &StoreError) {
    for p in batch {
        let _ = p
            .reply
            .send(Err(AppendError::NotCommitted(error.to_string())));
    }
}

/// Builds each new entry's receipt from memory: the proof nodes of a batch's entries are
/// either the frontier before the batch or nodes the batch created.
async fn answer<S: LedgerStore>(
    shared: &Shared<S>,
    batch: Vec<Pending>,
    outcomes: Vec<Outcome>,
    written: &Batch,
    old_frontier: &Frontier,
    note: String,
) {
    let mut known: HashMap<NodeId, Hash> = Frontier::peak_ids(old_frontier.size())
        .into_iter()
        .zip(old_frontier.peaks().iter().copied())
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
            checkpoint: note.clone(),
        })
    };
    for (pending, outcome) in batch.into_iter().zip(outcomes) {
        let result = match outcome {
            Outcome::Refused(e) => Err(e),
            Outcome::New(i) | Outcome::SameAs(i) => receipt_of(i),
            Outcome::Replay(seq) => replay(shared, seq).await,
        };
        let _ = pending.reply.send(result);
    }
}

async fn answer_without_commit<S: LedgerStore>(
    shared: &Shared<S>,
    batch: Vec<Pending>,
    outcomes: Vec<Outcome>,
) {
    for (pending, outcome) in batch.into_iter().zip(outcomes) {
        let result = match outcome {
            Outcome::Refused(e) => Err(e),
            Outcome::Replay(seq) => replay(shared, seq).await,
            // Unreachable: without new entries nothing can be `New` or `SameAs`.
            Outcome::New(_) | Outcome::SameAs(_) => Err(AppendError::Closed),
        };
        let _ = pending.reply.send(result);
    }
}

async fn replay<S: LedgerStore>(shared: &Shared<S>, seq: u64) -> Result<Receipt, AppendError> {
    let store = &shared.store;
    let chain = shared.chain_id;
    let stored = store.entries(chain, seq, 1).await?;
    let stored = stored
        .into_iter()
        .next()
        .filter(|e| e.seq == seq)
        .ok_or_else(|| {
            StoreError::Corrupt(format!("idempotency key points at missing entry {seq}"))
        })?;
    let (tree_size, checkpoint) = store
        .checkpoint_covering(chain, seq)
        .await?
        .ok_or_else(|| StoreError::Corrupt(format!("no checkpoint covers entry {seq}")))?;
    let plan = ProofPlan::inclusion(seq, tree_size).map_err(AppendError::Proof)?;
    let nodes = store.nodes(chain, &plan.nodes()).await?;
    Ok(Receipt {
        seq,
        entry_hash: Hash::of(&stored.bytes),
        entry: stored.bytes,
        tree_size,
        inclusion_proof: plan.assemble(&nodes).map_err(AppendError::Proof)?,
        checkpoint,
    })
}
