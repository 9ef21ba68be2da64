//! Receipts: what a caller gets back for an append, and can check offline with the
//! ledger's verifier key and the author's public key.

use super::{AppendError, Shared};
use crate::checkpoint::SignedNote;
use crate::entry::{self, EntryError};
use crate::hash::Hash;
use crate::keyring::KeyringError;
use crate::keys::VerifierKey;
use crate::merkle::{ProofError, ProofPlan};
use crate::store::{LedgerStore, StoreError};
use ed25519_dalek::Signature;
use serde_json::Value;

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
        let mut out = Vec::new();
        self.write_json(&mut out);
        // write_json writes valid JSON (see there); Null would only hide a bug from the
        // caller, never a malformed receipt from a verifier.
        serde_json::from_slice(&out).unwrap_or(Value::Null)
    }

    /// Writes the receipt as a JSON object to `out`, keys in sorted order (as
    /// `serde_json` would write them): `checkpoint`, `entry`, `entry_hash`,
    /// `inclusion_proof`, `seq`, `tree_size`. The entry's canonical bytes are copied in
    /// as they are, only checked to be JSON (`null` if a damaged store gave bytes that
    /// are not): building a JSON tree of them to write it out again cost a service
    /// answering thousands of appends a second about a twentieth of its time.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"checkpoint\":");
        // A String always serializes.
        let _ = serde_json::to_writer(&mut *out, &self.checkpoint);
        out.extend_from_slice(b",\"entry\":");
        if serde_json::from_slice::<serde::de::IgnoredAny>(&self.entry).is_ok() {
            out.extend_from_slice(&self.entry);
        } else {
            out.extend_from_slice(b"null");
        }
        out.extend_from_slice(b",\"entry_hash\":\"");
        out.extend_from_slice(self.entry_hash.to_hex().as_bytes());
        out.extend_from_slice(b"\",\"inclusion_proof\":[");
        for (i, hash) in self.inclusion_proof.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.push(b'"');
            out.extend_from_slice(hash.to_base64().as_bytes());
            out.push(b'"');
        }
        out.extend_from_slice(
            format!("],\"seq\":{},\"tree_size\":{}}}", self.seq, self.tree_size).as_bytes(),
        );
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

/// The receipt of a committed entry, exactly as first issued: the proof against the
/// checkpoint of the batch that committed it.
pub(super) async fn stored_receipt<S: LedgerStore>(
    shared: &Shared<S>,
    seq: u64,
) -> Result<Receipt, AppendError> {
    let store = &shared.store;
    let chain = shared.chain_id;
    let stored = store.entries(chain, seq, 1).await?;
    let stored = stored
        .into_iter()
        .next()
        .filter(|e| e.seq == seq)
        .ok_or(AppendError::Proof(ProofError::IndexOutOfRange {
            index: seq,
            size: 0,
        }))?;
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
