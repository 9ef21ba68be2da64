//! Offline verification of an export, trusting nothing but `ledger.vkey` (and, when
//! given, an older checkpoint the auditor kept). Everything is recomputed from the
//! exported bytes: canonical form, entry hashes, the hash chain, stream versions,
//! idempotency keys, key validity, author signatures, content commitments, redactions,
//! the Merkle root against the signed checkpoint and, with a trusted checkpoint, an
//! RFC 9162 consistency proof between the two.
//!
//! Work is split so both cores help: lines are parsed, canonical-checked and hashed in
//! parallel; the order-dependent checks (chain, keys, streams, Merkle) run in one pass;
//! signatures are then batch-verified in parallel, falling back to one-by-one checks
//! only to name the first bad one.

use crate::batch_verify;
use crate::canonical;
use crate::checkpoint::{Checkpoint, SignedNote};
use crate::entry::{
    self, EntryError, Submission, SubmissionRef, CONTENT_DOMAIN, FORMAT_VERSION, LEDGER_AUTHOR,
    SUBMISSION_DOMAIN,
};
use crate::hash::Hash;
use crate::keyring::{KeyRecord, Keyring, OPERATOR_EVENTS};
use crate::keys::VerifierKey;
use crate::merkle::{self, Frontier, NodeId, ProofPlan};
use crate::store::idempotency_digest;
use crate::timestamp;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use ed25519_dalek::VerifyingKey;
use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::Path;

/// Signatures batch-verified together on one background thread.
const SIGNATURE_JOB: usize = 2048;

/// Length of the message an author signs: the domain prefix and a SHA-256 digest.
const MESSAGE_LEN: usize = SUBMISSION_DOMAIN.len() + 32;

/// Signature jobs that may be in flight at once.
const MAX_SIGNATURE_JOBS: usize = 8;

/// Bytes of `entries.jsonl` handled per parallel step (about ten thousand entries).
const BLOCK: usize = 16 << 20;

/// The first thing found wrong, with the sequence number it concerns when there is one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{what}", seq.map(|s| format!("entry {s}: ")).unwrap_or_default())]
pub struct AuditFailure {
    pub seq: Option<u64>,
    pub what: String,
}

fn fail<T>(seq: Option<u64>, what: impl Into<String>) -> Result<T, AuditFailure> {
    Err(AuditFailure {
        seq,
        what: what.into(),
    })
}

/// What a successful audit established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditReport {
    pub origin: String,
    pub entries: u64,
    pub root: Hash,
    pub ledger_key: String,
    pub keys: usize,
    pub redacted: u64,
    /// The size of the trusted checkpoint shown consistent, if one was given.
    pub consistent_with: Option<u64>,
}

/// Progress callbacks, so the command line can draw a bar or print lines.
pub trait Progress {
    fn total(&mut self, _entries: u64) {}
    fn advanced(&mut self, _verified: u64) {}
}

impl Progress for () {}

/// An export line taken apart by the byte ranges the canonical check found: every part
/// is the exact canonical text it is in the line.
struct LineParts<'a> {
    entry: &'a str,
    prev: &'a str,
    recorded_at: &'a str,
    seq: u64,
    signature: &'a str,
    stream_version: u64,
    submission: &'a str,
    v: u64,
    /// The content's salt and body, when the line carries content.
    content: Option<(&'a str, &'a str)>,
}

const LINE_MEMBERS: [&str; 2] = ["content", "entry"];
const ENTRY_MEMBERS: [&str; 7] = [
    "prev",
    "recorded_at",
    "seq",
    "signature",
    "stream_version",
    "submission",
    "v",
];
const CONTENT_MEMBERS: [&str; 2] = ["body", "salt"];

fn split_line(line: &str) -> Result<LineParts<'_>, String> {
    let outline = canonical::canonical_outline(line.as_bytes())
        .map_err(|e| format!("not in canonical form (RFC 8785): {e}"))?;
    if !line.starts_with('{') {
        return Err("not a JSON object".into());
    }
    // The members of one object, by name, each from `allowed`.
    fn members<'a, const N: usize>(
        line: &'a str,
        outline: &[canonical::Member],
        parent: Option<usize>,
        allowed: &[&str; N],
        what: &str,
    ) -> Result<[Option<&'a str>; N], String> {
        let mut found = [None; N];
        for m in outline.iter().filter(|m| m.parent == parent) {
            let name = &line[m.name.clone()];
            let slot = allowed
                .iter()
                .position(|a| *a == name)
                .ok_or_else(|| format!("{what} has an unknown member {name:?}"))?;
            found[slot] = Some(&line[m.value.clone()]);
        }
        Ok(found)
    }
    let index_of = |name: &str, parent: Option<usize>| {
        outline
            .iter()
            .position(|m| m.parent == parent && &line[m.name.clone()] == name)
    };
    let top = members(line, &outline, None, &LINE_MEMBERS, "the line")?;
    let entry = top[1].ok_or("the line has no entry")?;
    let entry_at = index_of("entry", None);
    if !entry.starts_with('{') {
        return Err("the entry is not an object".into());
    }
    let e = members(line, &outline, entry_at, &ENTRY_MEMBERS, "the entry")?;
    let need = |i: usize| e[i].ok_or_else(|| format!("the entry has no {}", ENTRY_MEMBERS[i]));
    let content = match top[0] {
        None => None,
        Some(c) if c.starts_with('{') => {
            let parts = members(
                line,
                &outline,
                index_of("content", None),
                &CONTENT_MEMBERS,
                "the content",
            )?;
            let body = parts[0].ok_or("the content has no body")?;
            let salt = plain_string(parts[1].ok_or("the content has no salt")?, "content.salt")?;
            Some((salt, body))
        }
        Some(_) => return Err("the content is not an object".into()),
    };
    let submission = need(5)?;
    if !submission.starts_with('{') {
        return Err("the submission is not an object".into());
    }
    Ok(LineParts {
        entry,
        prev: plain_string(need(0)?, "prev")?,
        recorded_at: plain_string(need(1)?, "recorded_at")?,
        seq: unsigned(need(2)?, "seq")?,
        signature: plain_string(need(3)?, "signature")?,
        stream_version: unsigned(need(4)?, "stream_version")?,
        submission,
        v: unsigned(need(6)?, "v")?,
        content,
    })
}

/// The text of a JSON string value that has no escapes (hex, base64, timestamps).
fn plain_string<'a>(value: &'a str, what: &str) -> Result<&'a str, String> {
    value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .filter(|v| !v.contains('\\'))
        .ok_or_else(|| format!("{what} must be a plain string"))
}

/// A JSON number that is a non-negative integer (canonical form is already checked).
fn unsigned(value: &str, what: &str) -> Result<u64, String> {
    value
        .parse()
        .map_err(|_| format!("{what} must be a non-negative integer"))
}

/// The order-independent facts of one line, computed in parallel.
struct Parsed<'a> {
    seq: u64,
    prev: Hash,
    recorded_at: timestamp::Micros,
    stream_version: u64,
    hash: Hash,
    submission_hash: Hash,
    signature: [u8; 64],
    submission: SubmissionRef<'a>,
    /// The full submission of an operator (key) event, whose payload the keyring reads.
    operator: Option<Submission>,
    idempotency: [u8; 16],
    content: ContentState,
}

enum ContentState {
    None,
    Present,
    Redacted,
}

fn parse_line(index: u64, line: &[u8]) -> Result<Parsed<'_>, AuditFailure> {
    let at = Some(index);
    let bad = |what: String| AuditFailure { seq: at, what };
    let line = std::str::from_utf8(line)
        .map_err(|_| bad(format!("line {} is not UTF-8 text", index + 1)))?;
    // One pass proves the whole line is RFC 8785 canonical and finds its parts; after
    // that every part is canonical too, so parts are hashed as the bytes they are.
    let entry = split_line(line).map_err(|e| {
        bad(format!(
            "line {} is not a valid export line: {e}",
            index + 1
        ))
    })?;
    if entry.v != FORMAT_VERSION {
        return Err(bad(format!("unknown entry format version {}", entry.v)));
    }
    let submission: SubmissionRef<'_> = serde_json::from_str(entry.submission)
        .map_err(|e| bad(format!("the submission is malformed: {e}")))?;
    submission
        .fields()
        .validate()
        .map_err(|e| bad(e.to_string()))?;
    let operator = if OPERATOR_EVENTS.contains(&&*submission.event_type) {
        Some(
            serde_json::from_str::<Submission>(entry.submission)
                .map_err(|e| bad(format!("the submission is malformed: {e}")))?,
        )
    } else {
        None
    };
    let prev = Hash::from_hex(entry.prev)
        .ok_or_else(|| bad("prev is not 64 lowercase hex digits".into()))?;
    let recorded_at = timestamp::parse_utc(entry.recorded_at)
        .ok_or_else(|| bad("recorded_at is not an RFC 3339 UTC instant".into()))?;
    let signature = entry::decode_signature(entry.signature).map_err(|e| bad(e.to_string()))?;
    let content = match (entry.content, &submission.content_commitment) {
        (Some((salt, body)), commitment) => {
            let salt = BASE64
                .decode(salt.as_bytes())
                .ok()
                .filter(|s| s.len() == 32)
                .ok_or_else(|| bad("content.salt must be 32 bytes of standard base64".into()))?;
            let digest = Hash::of_parts(&[CONTENT_DOMAIN, &salt, body.as_bytes()]);
            match commitment {
                None => return Err(bad(EntryError::UnexpectedContent.to_string())),
                Some(expected) if Hash::from_hex(expected) != Some(digest) => {
                    return Err(bad(EntryError::ContentMismatch.to_string()))
                }
                Some(_) => ContentState::Present,
            }
        }
        (None, Some(_)) => ContentState::Redacted,
        (None, None) => ContentState::None,
    };
    let idempotency = idempotency_digest(&submission.author, &submission.idempotency_key);
    Ok(Parsed {
        seq: entry.seq,
        prev,
        recorded_at,
        stream_version: entry.stream_version,
        hash: Hash::of(entry.entry.as_bytes()),
        submission_hash: Hash::of(entry.submission.as_bytes()),
        signature,
        submission,
        operator,
        idempotency,
        content,
    })
}

/// The sequential state of the audit.
struct Replay {
    origin: String,
    expected_size: u64,
    next: u64,
    prev: Hash,
    last_recorded: timestamp::Micros,
    frontier: Frontier,
    keyring: Keyring,
    streams: HashMap<String, u64>,
    idempotency: HashSet<[u8; 16]>,
    /// Entries whose content is gone, not yet explained by a later `redacts`.
    unexplained: HashSet<u64>,
    /// Entries that committed to content: their author (interned) and whether the
    /// content is still present, to check who redacts and that redactions were done.
    with_content: HashMap<u64, (u32, bool)>,
    authors: Vec<String>,
    author_index: HashMap<String, u32>,
    redacted: u64,
    /// Merkle nodes needed for the consistency proof to the trusted checkpoint.
    wanted: HashSet<NodeId>,
    found: HashMap<NodeId, Hash>,
}

impl Replay {
    /// The checks that depend on order; returns the key the signature must verify with.
    fn step(&mut self, p: &Parsed<'_>) -> Result<VerifyingKey, AuditFailure> {
        let seq = self.next;
        let at = Some(seq);
        let s = &p.submission;
        if p.seq != seq {
            return fail(at, format!(
                "the entry at this position says it is entry {}: entries are missing, duplicated or out of order",
                p.seq
            ));
        }
        if seq >= self.expected_size {
            return fail(at, format!(
                "the export holds more entries than the checkpoint covers ({}); the checkpoint is older than the log",
                self.expected_size
            ));
        }
        if p.prev != self.prev {
            return fail(
                at,
                if seq == 0 {
                    "prev must be 64 zeros for the first entry".to_string()
                } else {
                    format!(
                        "prev does not match the hash of entry {} (entry {} was altered, or this entry's prev)",
                        seq - 1,
                        seq - 1
                    )
                },
            );
        }
        if s.origin != self.origin {
            return fail(
                at,
                format!(
                    "the submission is for log {:?}, not {:?}",
                    s.origin, self.origin
                ),
            );
        }
        if p.recorded_at < self.last_recorded {
            return fail(at, "recorded_at goes back in time");
        }
        let current = self.streams.get_mut(&*s.stream);
        let expected_version = current.as_ref().map_or(1, |v| **v + 1);
        if p.stream_version != expected_version {
            return fail(
                at,
                format!(
                "stream {:?} should be at version {expected_version} here, but the entry says {}",
                s.stream, p.stream_version
            ),
            );
        }
        if !self.idempotency.insert(p.idempotency) {
            return fail(
                at,
                format!(
                    "idempotency key {:?} of {} is used twice",
                    s.idempotency_key, s.author
                ),
            );
        }
        let keyed = |e: crate::keyring::KeyringError| AuditFailure {
            seq: at,
            what: e.to_string(),
        };
        match &p.operator {
            Some(full) => {
                self.keyring.check(seq, full).map_err(keyed)?;
                // The signing key's validity is judged before the entry's own change,
                // except for the genesis entry, which registers the key that signs it.
                if seq > 0 {
                    self.keyring
                        .key_for(&s.author, &s.key_id, seq)
                        .map_err(keyed)?;
                }
                self.keyring.apply(seq, full).map_err(keyed)?;
            }
            None if seq == 0 => return Err(keyed(crate::keyring::KeyringError::Genesis)),
            None => {}
        }
        let key = self
            .keyring
            .key_for(&s.author, &s.key_id, seq)
            .map_err(keyed)?
            .key;
        for &target in &s.redacts {
            if target >= seq {
                return fail(
                    at,
                    format!("redacts entry {target}, which is not an earlier entry"),
                );
            }
            let Some(&(author, present)) = self.with_content.get(&target) else {
                return fail(
                    at,
                    format!("redacts entry {target}, which has no redactable content"),
                );
            };
            if s.author != LEDGER_AUTHOR && self.authors[author as usize] != s.author {
                return fail(at, format!("redacts entry {target}, which only its author or the ledger operator may redact"));
            }
            if present {
                return fail(Some(target), format!("entry {seq} redacts this entry's content, but the content is still in the export"));
            }
            self.unexplained.remove(&target);
        }
        let present = match p.content {
            ContentState::Present => Some(true),
            ContentState::Redacted => {
                self.unexplained.insert(seq);
                self.redacted += 1;
                Some(false)
            }
            ContentState::None => None,
        };
        if let Some(present) = present {
            let next = self.authors.len() as u32;
            let author = *self
                .author_index
                .entry(s.author.to_string())
                .or_insert(next);
            if author == next {
                self.authors.push(s.author.to_string());
            }
            self.with_content.insert(seq, (author, present));
        }
        match current {
            Some(v) => *v = p.stream_version,
            None => {
                self.streams.insert(s.stream.to_string(), p.stream_version);
            }
        }
        let leaf = entry::entry_leaf(&p.hash);
        let wanted = &self.wanted;
        let found = &mut self.found;
        let leaf_id = NodeId {
            level: 0,
            index: seq,
        };
        if wanted.contains(&leaf_id) {
            found.insert(leaf_id, leaf);
        }
        self.frontier.push(leaf, |id, h| {
            if wanted.contains(&id) {
                found.insert(id, h);
            }
        });
        self.prev = p.hash;
        self.last_recorded = p.recorded_at;
        self.next += 1;
        Ok(key)
    }
}

fn read_to_string(path: &Path) -> Result<String, AuditFailure> {
    std::fs::read_to_string(path)
        .or_else(|e| fail(None, format!("cannot read {}: {e}", path.display())))
}

/// Verifies the export in `dir`.
pub fn verify_export(
    dir: &Path,
    trusted_checkpoint: Option<&str>,
    progress: &mut dyn Progress,
) -> Result<AuditReport, AuditFailure> {
    let vkey_text = read_to_string(&dir.join("ledger.vkey"))?;
    let ledger_key = VerifierKey::parse(vkey_text.strip_suffix('\n').unwrap_or(&vkey_text))
        .or_else(|e| fail(None, format!("ledger.vkey: {e}")))?;
    let note = SignedNote::parse(&read_to_string(&dir.join("checkpoint"))?)
        .or_else(|e| fail(None, format!("checkpoint: {e}")))?;
    let claimed = Checkpoint::parse_body(&note.text).ok();
    let checkpoint = note.verify_checkpoint(&ledger_key).or_else(|e| {
        fail(
            claimed.as_ref().and_then(|c| c.size.checked_sub(1)),
            format!("the checkpoint is forged or altered: {e}"),
        )
    })?;
    if checkpoint.origin != ledger_key.name {
        return fail(None, "the checkpoint's origin is not the ledger key's name");
    }
    let trusted = match trusted_checkpoint {
        Some(text) => Some(
            SignedNote::parse(text)
                .and_then(|n| Checkpoint::parse_body(&n.text).map(|c| (n, c)))
                .or_else(|e| fail(None, format!("trusted checkpoint: {e}")))?,
        ),
        None => None,
    };
    if let Some((_, t)) = &trusted {
        if t.origin != checkpoint.origin {
            return fail(
                None,
                format!(
                    "the trusted checkpoint is for log {:?}, not {:?}",
                    t.origin, checkpoint.origin
                ),
            );
        }
        if t.size > checkpoint.size {
            return fail(Some(checkpoint.size), format!(
                "the trusted checkpoint covers {} entries but this export only {}: the log was truncated or rolled back",
                t.size, checkpoint.size
            ));
        }
    }

    progress.total(checkpoint.size);
    let consistency_plan = match &trusted {
        Some((_, t)) if t.size > 0 && t.size < checkpoint.size => Some(
            ProofPlan::consistency(t.size, checkpoint.size)
                .or_else(|e| fail(None, e.to_string()))?,
        ),
        _ => None,
    };
    let mut replay = Replay {
        origin: checkpoint.origin.clone(),
        expected_size: checkpoint.size,
        next: 0,
        prev: Hash::ZERO,
        last_recorded: i64::MIN,
        frontier: Frontier::new(),
        keyring: Keyring::new(&checkpoint.origin),
        streams: HashMap::new(),
        idempotency: HashSet::new(),
        unexplained: HashSet::new(),
        with_content: HashMap::new(),
        authors: Vec::new(),
        author_index: HashMap::new(),
        redacted: 0,
        wanted: consistency_plan
            .as_ref()
            .map(|p| p.nodes().into_iter().collect())
            .unwrap_or_default(),
        found: HashMap::new(),
    };
    let mut trusted_root_seen: Option<Hash> = None;

    let path = dir.join("entries.jsonl");
    let file = std::fs::File::open(&path)
        .or_else(|e| fail(None, format!("cannot read {}: {e}", path.display())))?;
    // One parse worker more than there are cores, so a core that a background signature
    // job gives up finds parsing to do (measured: about 4% faster on two cores).
    let threads = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .max(1)
        + 1;
    // Blocks are read on their own thread, one ahead of the one being verified. Each
    // block's buffer goes back to the reader when verified: a fresh 17 MiB buffer per
    // block meant the kernel zeroing and faulting in every page of it first (measured:
    // about a tenth of the audit's time).
    let (blocks, incoming) = std::sync::mpsc::sync_channel::<std::io::Result<Vec<u8>>>(1);
    let (recycle, recycled) = std::sync::mpsc::channel::<Vec<u8>>();
    std::thread::spawn(move || {
        let mut reader = LineReader {
            reader: file,
            carry: Vec::new(),
            eof: false,
        };
        loop {
            let mut block = recycled
                .try_recv()
                .unwrap_or_else(|_| Vec::with_capacity(BLOCK + (1 << 20)));
            let read = reader.next_block(&mut block);
            let done = read.is_err() || block.is_empty();
            // A closed channel means the audit ended early; stop reading.
            if blocks.send(read.map(|()| block)).is_err() || done {
                break;
            }
        }
    });
    // A block's signatures are checked in the background while the next block is read
    // and parsed, so both cores stay busy.
    let mut signatures_in_flight: Vec<SignatureJob> = Vec::new();
    for block in incoming {
        let block = block
            .or_else(|e| fail(Some(replay.next), format!("cannot read entries.jsonl: {e}")))?;
        if block.is_empty() {
            break;
        }
        // memchr, not a byte-by-byte split: this runs on one thread before the parallel
        // parse, over every byte of the export.
        let mut lines: Vec<&[u8]> = Vec::with_capacity(BLOCK / 1024);
        let mut start = 0;
        for end in memchr::memchr_iter(b'\n', &block) {
            lines.push(&block[start..end]);
            start = end + 1;
        }
        if start < block.len() {
            lines.push(&block[start..]);
        }
        let base = replay.next;
        let parsed = parallel_parse(base, &lines, threads)?;
        // Signature checks run on behind the parsing; only the oldest are waited for,
        // to bound the memory they hold. Failures are reported lowest sequence number
        // first, so every job is finished before any failure is returned.
        while signatures_in_flight.len() > MAX_SIGNATURE_JOBS {
            let job = signatures_in_flight.remove(0);
            let checked = job.base;
            job.finish()?;
            progress.advanced(checked);
        }
        let mut ok = Vec::with_capacity(parsed.len());
        let mut line_failure = None;
        for result in parsed {
            match result {
                Ok(p) => ok.push(p),
                Err(failure) => {
                    line_failure = Some(failure);
                    break;
                }
            }
        }
        let parsed = ok;
        let mut keys = Vec::with_capacity(SIGNATURE_JOB);
        let mut job_start = 0;
        let mut broken: Option<AuditFailure> = None;
        for (i, p) in parsed.iter().enumerate() {
            match replay.step(p) {
                Ok(key) => keys.push(key),
                Err(failure) => {
                    broken = Some(failure);
                    break;
                }
            }
            if let Some((_, t)) = &trusted {
                if replay.next == t.size {
                    trusted_root_seen = Some(replay.frontier.root());
                }
            }
            // Hand signatures to the other core while this one goes on stepping.
            if keys.len() == SIGNATURE_JOB {
                let range = job_start..=i;
                signatures_in_flight.push(SignatureJob::spawn(
                    base + job_start as u64,
                    &parsed[range],
                    std::mem::take(&mut keys),
                    1,
                ));
                job_start = i + 1;
            }
        }
        if !keys.is_empty() {
            let end = job_start + keys.len();
            signatures_in_flight.push(SignatureJob::spawn(
                base + job_start as u64,
                &parsed[job_start..end],
                keys,
                1,
            ));
        }
        if let Some(failure) = broken.or(line_failure) {
            for job in signatures_in_flight.drain(..) {
                job.finish()?;
            }
            return Err(failure);
        }
        drop(parsed);
        drop(lines);
        // The reader may have finished; then the buffer is simply freed.
        let _ = recycle.send(block);
    }
    for job in signatures_in_flight.drain(..) {
        job.finish()?;
    }
    progress.advanced(replay.next);

    if replay.next < checkpoint.size {
        return fail(
            Some(replay.next),
            format!(
            "missing: the checkpoint covers {} entries but the export ends after {} (truncated)",
            checkpoint.size, replay.next
        ),
        );
    }
    let root = replay.frontier.root();
    if root != checkpoint.root {
        return fail(
            checkpoint.size.checked_sub(1),
            "the Merkle root of the entries does not match the signed checkpoint",
        );
    }
    if let Some(&seq) = replay.unexplained.iter().min() {
        return fail(
            Some(seq),
            "the entry's redactable content is missing, and no later entry redacts it",
        );
    }
    let signer = replay.keyring.ledger_key_for(checkpoint.size).cloned();
    if signer.as_ref() != Some(&ledger_key) {
        return fail(
            None,
            "ledger.vkey is not the ledger key the log says is current at the checkpoint",
        );
    }
    check_keys_file(&dir.join("keys.jsonl"), replay.keyring.records())?;

    let mut consistent_with = None;
    if let Some((trusted_note, t)) = &trusted {
        let key = replay
            .keyring
            .ledger_key_for(t.size)
            .ok_or_else(|| AuditFailure {
                seq: None,
                what: "no ledger key is valid at the trusted checkpoint's size".into(),
            })?;
        trusted_note
            .verify_checkpoint(key)
            .or_else(|e| fail(None, format!("trusted checkpoint: {e}")))?;
        let old_root = if t.size == 0 {
            Some(merkle::empty_root())
        } else {
            trusted_root_seen
        };
        if old_root != Some(t.root) {
            return fail(
                t.size.checked_sub(1),
                format!(
                "the first {} entries do not match the trusted checkpoint: the log was rewritten",
                t.size
            ),
            );
        }
        if let Some(plan) = &consistency_plan {
            let proof = plan
                .assemble(&replay.found)
                .or_else(|e| fail(None, e.to_string()))?;
            merkle::verify_consistency(t.size, checkpoint.size, &proof, &t.root.0, &root.0)
                .or_else(|e| {
                    fail(
                        None,
                        format!("consistency proof {} -> {}: {e}", t.size, checkpoint.size),
                    )
                })?;
        }
        consistent_with = Some(t.size);
    }
    Ok(AuditReport {
        origin: checkpoint.origin,
        entries: checkpoint.size,
        root,
        ledger_key: ledger_key.to_string(),
        keys: replay.keyring.records().count(),
        redacted: replay.redacted,
        consistent_with,
    })
}

/// Reads `entries.jsonl` in blocks of whole lines, so lines are slices, not copies.
struct LineReader<R> {
    reader: R,
    /// The start of a line that the previous block cut off.
    carry: Vec<u8>,
    eof: bool,
}

impl<R: Read> LineReader<R> {
    /// Fills `block` with about [`BLOCK`] bytes of whole lines (the file's last line is
    /// passed on even without its final newline and checked like any other line).
    fn next_block(&mut self, block: &mut Vec<u8>) -> std::io::Result<()> {
        block.clear();
        block.append(&mut self.carry);
        while !self.eof && block.len() < BLOCK {
            let start = block.len();
            block.resize(start + (1 << 20), 0);
            let n = self.reader.read(&mut block[start..])?;
            block.truncate(start + n);
            self.eof = n == 0;
        }
        if !self.eof {
            match memchr::memrchr(b'\n', block) {
                Some(end) => {
                    self.carry = block[end + 1..].to_vec();
                    block.truncate(end + 1);
                }
                // One line longer than a block: keep reading into it.
                None => {
                    self.carry = std::mem::take(block);
                    return self.next_block(block);
                }
            }
        }
        Ok(())
    }
}

/// Parses a block's lines on `threads` threads that take small runs of lines in turn,
/// so a thread slowed by the background signature checks does not hold the others up.
fn parallel_parse<'a>(
    base: u64,
    lines: &[&'a [u8]],
    threads: usize,
) -> Result<Vec<Result<Parsed<'a>, AuditFailure>>, AuditFailure> {
    const RUN: usize = 256;
    let next_run = std::sync::atomic::AtomicUsize::new(0);
    let runs = lines.len().div_ceil(RUN);
    let mut done: Vec<(usize, Vec<Result<Parsed<'a>, AuditFailure>>)> =
        std::thread::scope(|scope| {
            let workers: Vec<_> = (0..threads)
                .map(|_| {
                    let next_run = &next_run;
                    scope.spawn(move || {
                        let mut mine = Vec::new();
                        loop {
                            let run = next_run.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            if run >= runs {
                                return mine;
                            }
                            let start = run * RUN;
                            let parsed = lines[start..(start + RUN).min(lines.len())]
                                .iter()
                                .enumerate()
                                .map(|(j, line)| parse_line(base + (start + j) as u64, line))
                                .collect::<Vec<_>>();
                            mine.push((run, parsed));
                        }
                    })
                })
                .collect();
            workers
                .into_iter()
                .flat_map(|w| w.join().unwrap_or_default())
                .collect()
        });
    if done.len() != runs {
        return fail(Some(base), "a verifier thread failed");
    }
    done.sort_unstable_by_key(|(run, _)| *run);
    Ok(done.into_iter().flat_map(|(_, parsed)| parsed).collect())
}

/// The author signatures of one block, being batch-verified on background threads.
struct SignatureJob {
    base: u64,
    parts: Vec<std::thread::JoinHandle<Option<usize>>>,
}

impl SignatureJob {
    /// Starts verifying `parsed[i]`'s signature against `keys[i]`, split over threads.
    fn spawn(
        base: u64,
        parsed: &[Parsed<'_>],
        keys: Vec<VerifyingKey>,
        threads: usize,
    ) -> SignatureJob {
        let per = parsed.len().div_ceil(threads).max(1);
        let mut parts = Vec::new();
        let mut keys = keys.into_iter();
        for (n, chunk) in parsed.chunks(per).enumerate() {
            let messages: Vec<[u8; MESSAGE_LEN]> = chunk
                .iter()
                .map(|p| {
                    let mut m = [0u8; MESSAGE_LEN];
                    m[..SUBMISSION_DOMAIN.len()].copy_from_slice(SUBMISSION_DOMAIN);
                    m[SUBMISSION_DOMAIN.len()..].copy_from_slice(&p.submission_hash.0);
                    m
                })
                .collect();
            let signatures: Vec<[u8; 64]> = chunk.iter().map(|p| p.signature).collect();
            let keys: Vec<VerifyingKey> = keys.by_ref().take(chunk.len()).collect();
            let offset = n * per;
            parts.push(std::thread::spawn(move || {
                let refs: Vec<&[u8]> = messages.iter().map(|m| m.as_slice()).collect();
                if batch_verify::verify_batch(&refs, &signatures, &keys) {
                    return None;
                }
                (0..refs.len())
                    .find(|&i| !batch_verify::verify_one(refs[i], &signatures[i], &keys[i]))
                    // The batch failed but every single check passed: treat the
                    // first as bad rather than pass anything unproven.
                    .or(Some(0))
                    .map(|i| offset + i)
            }));
        }
        SignatureJob { base, parts }
    }

    /// Waits for the check; names the first entry whose signature does not verify.
    fn finish(self) -> Result<(), AuditFailure> {
        let mut first_bad: Option<usize> = None;
        for part in self.parts {
            let bad = part.join().unwrap_or(Some(0));
            if let Some(i) = bad {
                first_bad = Some(first_bad.map_or(i, |f| f.min(i)));
            }
        }
        match first_bad {
            Some(i) => fail(
                Some(self.base + i as u64),
                "the author signature does not verify against the key the log says was valid for this entry",
            ),
            None => Ok(()),
        }
    }
}

fn check_keys_file<'a>(
    path: &Path,
    derived: impl Iterator<Item = &'a KeyRecord>,
) -> Result<(), AuditFailure> {
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|mut f| f.read_to_string(&mut text))
        .or_else(|e| fail(None, format!("cannot read {}: {e}", path.display())))?;
    let listed: Vec<KeyRecord> = text
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()
        .or_else(|e| fail(None, format!("keys.jsonl: {e}")))?;
    let derived: Vec<&KeyRecord> = derived.collect();
    for record in &derived {
        if !listed.contains(record) {
            return fail(
                Some(record.from_seq.saturating_sub(1)),
                format!(
                    "keys.jsonl does not list {}'s key {} as the log registers it",
                    record.partner, record.key_id
                ),
            );
        }
    }
    if listed.len() != derived.len() {
        return fail(None, "keys.jsonl lists keys that the log never registered");
    }
    Ok(())
}
