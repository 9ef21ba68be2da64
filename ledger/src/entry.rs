//! What is signed, hashed and stored: the author's *submission*, the sequenced *entry*
//! that wraps it, and the *redactable content* the submission commits to.
//!
//! docs/ledger-format.md is the normative description; this module is its reference
//! implementation. In short:
//!
//! - submission bytes = JCS(submission); the author signs
//!   `"isa-ledger/v1/submission\n" || SHA-256(submission bytes)`.
//! - entry = `{prev, recorded_at, seq, signature, stream_version, submission, v}`;
//!   entry hash = SHA-256(JCS(entry)); Merkle leaf = SHA-256(0x00 || entry hash).
//! - content commitment = SHA-256(`"isa-ledger/v1/content\n"` || salt || JCS(body)).

use crate::canonical::{self, CanonicalError};
use crate::hash::Hash;
use crate::keys::SignerKey;
use crate::timestamp;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;
use std::borrow::Cow;

/// The entry format version, the `v` member of every entry.
pub const FORMAT_VERSION: u64 = 1;
/// The author name the ledger operator signs as (with the ledger key).
pub const LEDGER_AUTHOR: &str = "ledger";
/// Domain separation prefixes: a signature or commitment made for one purpose can never
/// be replayed as another.
pub const SUBMISSION_DOMAIN: &[u8] = b"isa-ledger/v1/submission\n";
pub const CONTENT_DOMAIN: &[u8] = b"isa-ledger/v1/content\n";
pub const POSSESSION_DOMAIN: &[u8] = b"isa-ledger/v1/key-possession\n";

const MAX_STREAM_LEN: usize = 200;
const MAX_IDEMPOTENCY_KEY_LEN: usize = 200;
const MAX_EVENT_TYPE_LEN: usize = 100;

/// Why a submission, entry or content was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    #[error(transparent)]
    Canonical(#[from] CanonicalError),
    #[error("field `{field}` is invalid: {why}")]
    Field { field: &'static str, why: String },
    #[error("the submission is for log {found:?}, but this log is {expected:?}")]
    WrongOrigin { expected: String, found: String },
    #[error("the signature is not 64 bytes of standard base64")]
    MalformedSignature,
    #[error("the redactable content does not match the submission's content_commitment")]
    ContentMismatch,
    #[error("the submission has a content_commitment but no content was supplied")]
    ContentMissing,
    #[error("content was supplied but the submission has no content_commitment")]
    UnexpectedContent,
}

fn field(field: &'static str, why: impl Into<String>) -> EntryError {
    EntryError::Field {
        field,
        why: why.into(),
    }
}

/// What an author states and signs. It cannot know its sequence number or predecessor,
/// which the sequencer adds in the [`Entry`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Submission {
    /// Partner id of the author, or `ledger` for the operator.
    pub author: String,
    /// Hex SHA-256 commitment to redactable content, when there is any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_commitment: Option<String>,
    pub event_type: String,
    pub event_version: u64,
    /// Retrying with the same key returns the first receipt; scoped to the author.
    pub idempotency_key: String,
    /// Hex key id of the author's key that signs this submission.
    pub key_id: String,
    /// When the fact happened (may precede when it was recorded).
    pub occurred_at: String,
    /// The log this submission is for; stops replay into another partnership's log.
    pub origin: String,
    /// The event's fields, a JSON object. No direct identifiers belong here.
    pub payload: Value,
    /// Sequence numbers of earlier entries whose redactable content this entry removes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub redacts: Vec<u64>,
    pub stream: String,
}

impl Submission {
    /// Checks every field's form (not its meaning, which the domain layer owns).
    pub fn validate(&self) -> Result<(), EntryError> {
        self.view_fields(self.payload.is_object()).validate()
    }

    fn view_fields(&self, payload_is_object: bool) -> SubmissionFields<'_> {
        SubmissionFields {
            author: &self.author,
            content_commitment: self.content_commitment.as_deref(),
            event_type: &self.event_type,
            event_version: self.event_version,
            idempotency_key: &self.idempotency_key,
            key_id: &self.key_id,
            occurred_at: &self.occurred_at,
            payload_is_object,
            redacts: &self.redacts,
            stream: &self.stream,
        }
    }

    /// The RFC 8785 bytes the author signs (through their hash). Written member by
    /// member in JCS order (all names are ASCII, so byte order is UTF-16 order) because
    /// the auditor does this for every entry; a test pins it to the generic encoder.
    pub fn canonical_bytes(&self) -> Result<Vec<u8>, EntryError> {
        let mut out = Vec::with_capacity(512);
        let member = |out: &mut Vec<u8>, name: &str, first: bool| {
            if !first {
                out.push(b',');
            }
            out.push(b'"');
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b"\":");
        };
        out.push(b'{');
        member(&mut out, "author", true);
        canonical::write_string(&self.author, &mut out);
        if let Some(c) = &self.content_commitment {
            member(&mut out, "content_commitment", false);
            canonical::write_string(c, &mut out);
        }
        member(&mut out, "event_type", false);
        canonical::write_string(&self.event_type, &mut out);
        member(&mut out, "event_version", false);
        write_integer(self.event_version, &mut out)?;
        member(&mut out, "idempotency_key", false);
        canonical::write_string(&self.idempotency_key, &mut out);
        member(&mut out, "key_id", false);
        canonical::write_string(&self.key_id, &mut out);
        member(&mut out, "occurred_at", false);
        canonical::write_string(&self.occurred_at, &mut out);
        member(&mut out, "origin", false);
        canonical::write_string(&self.origin, &mut out);
        member(&mut out, "payload", false);
        canonical::write_canonical(&self.payload, &mut out)?;
        if !self.redacts.is_empty() {
            member(&mut out, "redacts", false);
            out.push(b'[');
            for (i, seq) in self.redacts.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_integer(*seq, &mut out)?;
            }
            out.push(b']');
        }
        member(&mut out, "stream", false);
        canonical::write_string(&self.stream, &mut out);
        out.push(b'}');
        Ok(out)
    }
}

fn write_integer(n: u64, out: &mut Vec<u8>) -> Result<(), EntryError> {
    if n > canonical::MAX_SAFE_INTEGER as u64 {
        return Err(CanonicalError::UnsupportedNumber {
            path: "$".into(),
            number: n.to_string(),
        }
        .into());
    }
    out.extend_from_slice(n.to_string().as_bytes());
    Ok(())
}

/// The fields of a submission that are checked for form, borrowed from either an owned
/// [`Submission`] or one read straight from canonical bytes ([`SubmissionRef`]).
pub struct SubmissionFields<'a> {
    pub author: &'a str,
    pub content_commitment: Option<&'a str>,
    pub event_type: &'a str,
    pub event_version: u64,
    pub idempotency_key: &'a str,
    pub key_id: &'a str,
    pub occurred_at: &'a str,
    pub payload_is_object: bool,
    pub redacts: &'a [u64],
    pub stream: &'a str,
}

impl SubmissionFields<'_> {
    /// Checks every field's form (not its meaning, which the domain layer owns).
    pub fn validate(&self) -> Result<(), EntryError> {
        crate::keys::check_key_name(self.author)
            .map_err(|_| field("author", "must be 1-64 of a-z 0-9 . - _ /"))?;
        if let Some(c) = self.content_commitment {
            Hash::from_hex(c).ok_or_else(|| field("content_commitment", "not 64 lowercase hex"))?;
        }
        let printable = |s: &str| !s.is_empty() && !s.chars().any(char::is_control);
        if !printable(self.event_type)
            || self.event_type.len() > MAX_EVENT_TYPE_LEN
            || !self.event_type.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            return Err(field(
                "event_type",
                "must be 1-100 ASCII letters and digits",
            ));
        }
        if self.event_version == 0 {
            return Err(field("event_version", "starts at 1"));
        }
        if !printable(self.idempotency_key) || self.idempotency_key.len() > MAX_IDEMPOTENCY_KEY_LEN
        {
            return Err(field(
                "idempotency_key",
                "must be 1-200 bytes without control characters",
            ));
        }
        let lower_hex = |b: u8| b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
        if self.key_id.len() != 8 || !self.key_id.bytes().all(lower_hex) {
            return Err(field("key_id", "must be 8 lowercase hex digits"));
        }
        if timestamp::parse_utc(self.occurred_at).is_none() {
            return Err(field(
                "occurred_at",
                "must be an RFC 3339 UTC instant such as 2026-11-23T09:30:00Z",
            ));
        }
        if !self.payload_is_object {
            return Err(field("payload", "must be a JSON object"));
        }
        if !printable(self.stream) || self.stream.len() > MAX_STREAM_LEN {
            return Err(field(
                "stream",
                "must be 1-200 bytes without control characters",
            ));
        }
        if self.redacts.windows(2).any(|w| w[0] >= w[1]) {
            return Err(field(
                "redacts",
                "must be strictly increasing sequence numbers",
            ));
        }
        Ok(())
    }
}

/// A submission read from canonical bytes without copying: strings borrowed where they
/// have no escapes, the payload left as its raw canonical text. The auditor uses it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubmissionRef<'a> {
    #[serde(borrow)]
    pub author: Cow<'a, str>,
    #[serde(borrow, default, deserialize_with = "present_string")]
    pub content_commitment: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub event_type: Cow<'a, str>,
    pub event_version: u64,
    #[serde(borrow)]
    pub idempotency_key: Cow<'a, str>,
    #[serde(borrow)]
    pub key_id: Cow<'a, str>,
    #[serde(borrow)]
    pub occurred_at: Cow<'a, str>,
    #[serde(borrow)]
    pub origin: Cow<'a, str>,
    #[serde(borrow)]
    pub payload: &'a RawValue,
    #[serde(default, deserialize_with = "non_empty_list")]
    pub redacts: Vec<u64>,
    #[serde(borrow)]
    pub stream: Cow<'a, str>,
}

impl SubmissionRef<'_> {
    pub fn fields(&self) -> SubmissionFields<'_> {
        SubmissionFields {
            author: &self.author,
            content_commitment: self.content_commitment.as_deref(),
            event_type: &self.event_type,
            event_version: self.event_version,
            idempotency_key: &self.idempotency_key,
            key_id: &self.key_id,
            occurred_at: &self.occurred_at,
            payload_is_object: self.payload.get().starts_with('{'),
            redacts: &self.redacts,
            stream: &self.stream,
        }
    }
}

/// An optional member that, when present, must be a string: the canonical form omits
/// an absent commitment rather than writing `null`.
fn present_string<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Cow<'de, str>>, D::Error> {
    <Cow<'de, str> as Deserialize>::deserialize(d).map(Some)
}

/// An optional list that, when present, is not empty: the canonical form omits it.
fn non_empty_list<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u64>, D::Error> {
    let list = Vec::<u64>::deserialize(d)?;
    if list.is_empty() {
        return Err(serde::de::Error::custom("redacts is omitted, never empty"));
    }
    Ok(list)
}

/// The exact message an author's Ed25519 key signs for a submission.
pub fn submission_message(submission_hash: &Hash) -> Vec<u8> {
    [SUBMISSION_DOMAIN, &submission_hash.0].concat()
}

/// A validated submission with its canonical bytes, their hash and the author signature.
/// Read-only once made, so the bytes that are signed and stored cannot drift from the
/// fields the ledger indexes.
#[derive(Debug, Clone)]
pub struct SignedSubmission {
    pub(crate) submission: Submission,
    pub(crate) canonical: Vec<u8>,
    pub(crate) hash: Hash,
    pub(crate) signature: [u8; 64],
    /// The public key that signed it, when the signing happened in this process (a
    /// custodial or operator key): that signature is valid by construction.
    pub(crate) signed_here_by: Option<[u8; 32]>,
}

impl SignedSubmission {
    /// Signs a submission with a key the service holds (custodial or the ledger's own).
    pub fn sign(submission: Submission, key: &SignerKey) -> Result<SignedSubmission, EntryError> {
        submission.validate()?;
        let canonical = submission.canonical_bytes()?;
        let hash = Hash::of(&canonical);
        let signature = key.sign(&submission_message(&hash)).to_bytes();
        Ok(SignedSubmission {
            submission,
            canonical,
            hash,
            signature,
            signed_here_by: Some(*key.verifier().key.as_bytes()),
        })
    }

    /// A submission signed elsewhere with `signature`, given as fields. The signature
    /// is checked later, against the key valid when the entry is sequenced.
    pub fn with_signature(
        submission: Submission,
        signature: [u8; 64],
    ) -> Result<SignedSubmission, EntryError> {
        submission.validate()?;
        let canonical = submission.canonical_bytes()?;
        let hash = Hash::of(&canonical);
        Ok(SignedSubmission {
            submission,
            canonical,
            hash,
            signature,
            signed_here_by: None,
        })
    }

    pub fn message(&self) -> Vec<u8> {
        submission_message(&self.hash)
    }

    pub fn submission(&self) -> &Submission {
        &self.submission
    }

    /// The RFC 8785 bytes of the submission.
    pub fn canonical(&self) -> &[u8] {
        &self.canonical
    }

    /// SHA-256 of the canonical bytes.
    pub fn hash(&self) -> Hash {
        self.hash
    }

    pub fn signature(&self) -> &[u8; 64] {
        &self.signature
    }
}

pub fn decode_signature(text: &str) -> Result<[u8; 64], EntryError> {
    let raw = BASE64
        .decode(text)
        .map_err(|_| EntryError::MalformedSignature)?;
    <[u8; 64]>::try_from(raw.as_slice()).map_err(|_| EntryError::MalformedSignature)
}

/// The fields the sequencer adds around a submission.
#[derive(Debug, Clone, Copy)]
pub struct Sequencing<'a> {
    pub seq: u64,
    pub prev: &'a Hash,
    pub recorded_at: &'a str,
    pub stream_version: u64,
}

/// Builds JCS(entry) without re-serialising the already-canonical submission bytes.
/// Member names are ASCII, so their UTF-16 order is the byte order written here.
pub fn entry_bytes(seq: &Sequencing<'_>, signed: &SignedSubmission) -> Vec<u8> {
    let mut out = Vec::with_capacity(signed.canonical.len() + 300);
    out.extend_from_slice(b"{\"prev\":\"");
    out.extend_from_slice(seq.prev.to_hex().as_bytes());
    out.extend_from_slice(b"\",\"recorded_at\":");
    canonical::write_string(seq.recorded_at, &mut out);
    out.extend_from_slice(b",\"seq\":");
    out.extend_from_slice(seq.seq.to_string().as_bytes());
    out.extend_from_slice(b",\"signature\":\"");
    out.extend_from_slice(BASE64.encode(signed.signature).as_bytes());
    out.extend_from_slice(b"\",\"stream_version\":");
    out.extend_from_slice(seq.stream_version.to_string().as_bytes());
    out.extend_from_slice(b",\"submission\":");
    out.extend_from_slice(&signed.canonical);
    out.extend_from_slice(b",\"v\":");
    out.extend_from_slice(FORMAT_VERSION.to_string().as_bytes());
    out.push(b'}');
    out
}

/// A sequenced entry, as parsed back from its canonical bytes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub prev: String,
    pub recorded_at: String,
    pub seq: u64,
    pub signature: String,
    pub stream_version: u64,
    pub submission: Submission,
    pub v: u64,
}

/// The Merkle leaf of an entry: SHA-256(0x00 || entry hash).
pub fn entry_leaf(entry_hash: &Hash) -> Hash {
    crate::merkle::leaf_hash(&entry_hash.0)
}

/// Redactable content: free text that may identify people, kept beside the entry and
/// bound to it only through the salted commitment in the submission.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Content {
    /// 32 random bytes, standard base64; stops guessing short content from its hash.
    pub salt: String,
    pub body: Value,
}

impl Content {
    /// Wraps a body with a fresh random salt.
    pub fn new(body: Value) -> Result<Content, EntryError> {
        let mut salt = [0u8; 32];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut salt);
        let content = Content {
            salt: BASE64.encode(salt),
            body,
        };
        content.commitment()?;
        Ok(content)
    }

    pub fn commitment(&self) -> Result<Hash, EntryError> {
        self.commitment_and_body().map(|(hash, _)| hash)
    }

    /// The commitment and the body's canonical bytes (which the store keeps).
    fn commitment_and_body(&self) -> Result<(Hash, Vec<u8>), EntryError> {
        let salt = BASE64
            .decode(&self.salt)
            .ok()
            .filter(|s| s.len() == 32)
            .ok_or_else(|| field("content.salt", "must be 32 bytes of standard base64"))?;
        let body = canonical::to_canonical(&self.body)?;
        Ok((Hash::of_parts(&[CONTENT_DOMAIN, &salt, &body]), body))
    }

    /// Checks this content against a submission's commitment.
    pub fn check_against(&self, submission: &Submission) -> Result<(), EntryError> {
        self.checked_body(submission).map(|_| ())
    }

    /// Checks this content against a submission's commitment and returns the body's
    /// canonical bytes, so they are computed once per append.
    pub fn checked_body(&self, submission: &Submission) -> Result<Vec<u8>, EntryError> {
        let Some(expected) = &submission.content_commitment else {
            return Err(EntryError::UnexpectedContent);
        };
        let (hash, body) = self.commitment_and_body()?;
        if Hash::from_hex(expected) != Some(hash) {
            return Err(EntryError::ContentMismatch);
        }
        Ok(body)
    }
}

/// One line of `entries.jsonl`: JCS({"content"?: Content, "entry": Entry}). Because the
/// whole line is canonical, the entry's canonical bytes appear in it verbatim.
pub fn export_line(entry_bytes: &[u8], content: Option<&Content>) -> Result<Vec<u8>, EntryError> {
    let mut out = Vec::with_capacity(entry_bytes.len() + 64);
    out.push(b'{');
    if let Some(content) = content {
        out.extend_from_slice(b"\"content\":");
        let value = serde_json::to_value(content).map_err(|e| field("content", e.to_string()))?;
        canonical::write_canonical(&value, &mut out)?;
        out.push(b',');
    }
    out.extend_from_slice(b"\"entry\":");
    out.extend_from_slice(entry_bytes);
    out.push(b'}');
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    pub(crate) fn sample_submission() -> Submission {
        Submission {
            author: "lancs-police".into(),
            content_commitment: None,
            event_type: "DisclosureMade".into(),
            event_version: 1,
            idempotency_key: "req-1".into(),
            key_id: "00000000".into(),
            occurred_at: "2026-11-23T09:30:00Z".into(),
            origin: "isa-ledger.example/test".into(),
            payload: json!({"recipients": ["blackpool-council"], "classification": "OFFICIAL-SENSITIVE"}),
            redacts: vec![],
            stream: "disclosure/1".into(),
        }
    }

    #[test]
    fn hand_built_entry_bytes_are_the_canonical_form() {
        let key = SignerKey::from_seed("lancs-police", [3; 32]).unwrap();
        let mut submission = sample_submission();
        submission.key_id = key.verifier().id_hex();
        let signed = SignedSubmission::sign(submission, &key).unwrap();
        let prev = Hash::of(b"previous");
        let bytes = entry_bytes(
            &Sequencing {
                seq: 7,
                prev: &prev,
                recorded_at: "2026-11-23T09:31:00.000001Z",
                stream_version: 2,
            },
            &signed,
        );
        let parsed = canonical::parse_canonical(&bytes).expect("entry bytes are canonical");
        let entry: Entry = serde_json::from_value(parsed).unwrap();
        assert_eq!(entry.seq, 7);
        assert_eq!(entry.submission, signed.submission);
        assert_eq!(entry.prev, prev.to_hex());
    }

    #[test]
    fn hand_written_submission_bytes_match_the_generic_encoder() {
        let mut s = sample_submission();
        let generic =
            |s: &Submission| canonical::to_canonical(&serde_json::to_value(s).unwrap()).unwrap();
        assert_eq!(s.canonical_bytes().unwrap(), generic(&s));
        s.content_commitment = Some(Hash::of(b"c").to_hex());
        s.redacts = vec![1, 5];
        s.stream = "quote\" and \u{1F600} and \n".into();
        assert_eq!(s.canonical_bytes().unwrap(), generic(&s));
    }

    #[test]
    fn content_commitment_binds_salt_and_body() {
        let content = Content::new(json!({"rationale": "risk to a child"})).unwrap();
        let mut submission = sample_submission();
        submission.content_commitment = Some(content.commitment().unwrap().to_hex());
        content.check_against(&submission).unwrap();
        let mut altered = content.clone();
        altered.body = json!({"rationale": "risk to an adult"});
        assert_eq!(
            altered.check_against(&submission),
            Err(EntryError::ContentMismatch)
        );
    }

    #[test]
    fn malformed_fields_are_named() {
        let mut s = sample_submission();
        s.occurred_at = "yesterday".into();
        assert!(matches!(
            s.validate(),
            Err(EntryError::Field {
                field: "occurred_at",
                ..
            })
        ));
        let mut s = sample_submission();
        s.payload = json!([1]);
        assert!(matches!(
            s.validate(),
            Err(EntryError::Field {
                field: "payload",
                ..
            })
        ));
        let mut s = sample_submission();
        s.author = "Lancs Police".into();
        assert!(matches!(
            s.validate(),
            Err(EntryError::Field {
                field: "author",
                ..
            })
        ));
    }

    #[test]
    fn export_line_is_canonical_and_contains_the_entry_verbatim() {
        let content = Content::new(json!({"note": "x"})).unwrap();
        let entry = br#"{"a":1}"#;
        let line = export_line(entry, Some(&content)).unwrap();
        canonical::parse_canonical(&line).unwrap();
        assert!(line.ends_with(br#","entry":{"a":1}}"#));
    }
}
