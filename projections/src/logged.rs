//! A log entry as the projections read it: where it sits in the log, who wrote it, and
//! the domain event it records (payload only; see [`domain::event`]).
//!
//! Decoding also checks the entry against the one before it: its sequence number must
//! be the next one and its `prev` the previous entry's hash. A projection that finds
//! otherwise stops; it never skips ahead (DESIGN §2, "Mechanics").

use domain::event::DomainEvent;
use ledger::hash::Hash;
use ledger::store::StoredEntry;
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;

/// One decoded entry.
#[derive(Debug, Clone)]
pub struct Logged {
    pub seq: u64,
    /// When the ledger recorded it (RFC 3339, UTC).
    pub recorded_at: String,
    /// The partner whose key signed it.
    pub author: String,
    pub stream: String,
    /// Whether it was written with redactable content (still held or since redacted).
    pub has_content: bool,
    /// The domain event, or `None` for the ledger's own entries.
    pub event: Option<DomainEvent>,
}

impl Logged {
    /// The stream's id: `B-17` of `breach/B-17`.
    pub fn stream_id(&self) -> &str {
        self.stream
            .split_once('/')
            .map_or(self.stream.as_str(), |(_, id)| id)
    }
}

/// Why the log cannot be read past an entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Break {
    #[error("entry {found} follows entry {previous}: entries {expected} to {gap_end} are missing")]
    Gap {
        previous: i64,
        expected: u64,
        found: u64,
        gap_end: u64,
    },
    #[error("entry {seq} names {named} as its predecessor's hash, but entry {before} hashes to {actual}")]
    HashMismatch {
        seq: u64,
        before: i64,
        named: String,
        actual: String,
    },
    #[error("entry {seq} cannot be read: {why}")]
    Unreadable { seq: u64, why: String },
}

/// Decodes `stored`, which must be entry `expected` and follow an entry hashing to
/// `prev`. Returns the entry and its own hash (the next entry's `prev`).
pub fn decode(stored: &StoredEntry, expected: u64, prev: &Hash) -> Result<(Logged, Hash), Break> {
    in_place(stored.seq, expected)?;
    let (logged, entry_prev) = decode_entry(stored)?;
    follows(stored.seq, &entry_prev, prev)?;
    Ok((logged, Hash::of(&stored.bytes)))
}

/// Whether the entry stored as `seq` is the one expected next.
pub fn in_place(seq: u64, expected: u64) -> Result<(), Break> {
    if seq == expected {
        return Ok(());
    }
    Err(Break::Gap {
        previous: expected as i64 - 1,
        expected,
        found: seq,
        gap_end: seq.saturating_sub(1),
    })
}

/// Whether entry `seq`, naming `named` as its predecessor's hash, follows an entry
/// hashing to `prev`.
pub fn follows(seq: u64, named: &str, prev: &Hash) -> Result<(), Break> {
    if Hash::from_hex(named).as_ref() == Some(prev) {
        return Ok(());
    }
    Err(Break::HashMismatch {
        seq,
        before: seq as i64 - 1,
        named: named.to_string(),
        actual: prev.to_hex(),
    })
}

/// Decodes `stored` on its own, without checking its place in the chain: for readers
/// that follow a projection which has checked it. Returns the entry and the `prev`
/// hash it names.
pub fn decode_entry(stored: &StoredEntry) -> Result<(Logged, String), Break> {
    let unreadable = |why: String| Break::Unreadable {
        seq: stored.seq,
        why,
    };
    let entry: EntryFields<'_> =
        serde_json::from_slice(&stored.bytes).map_err(|e| unreadable(e.to_string()))?;
    if entry.seq != stored.seq {
        return Err(unreadable(format!(
            "it is stored as entry {} but says it is entry {}",
            stored.seq, entry.seq
        )));
    }
    let submission = entry.submission;
    let event = domain::event::decode_parts(
        &submission.stream,
        &submission.event_type,
        submission.payload,
    )
    .map_err(unreadable)?;
    Ok((
        Logged {
            seq: stored.seq,
            recorded_at: entry.recorded_at,
            author: submission.author,
            stream: submission.stream,
            has_content: submission.content_commitment.is_some(),
            event,
        },
        entry.prev.into_owned(),
    ))
}

/// An entry ([`ledger::entry::Entry`]) as a view reads it: every field must be there
/// and no other (as when the whole entry is parsed), but strings are borrowed from the
/// stored bytes where they can be and the payload stays JSON text until the domain reads
/// it. The signature is not checked here: the ledger checked it on append, and `verify`
/// checks it again.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
// The fields not read are declared so that an entry without them is unreadable.
#[allow(dead_code)]
struct EntryFields<'a> {
    #[serde(borrow)]
    prev: Cow<'a, str>,
    recorded_at: String,
    seq: u64,
    #[serde(borrow)]
    signature: Cow<'a, str>,
    stream_version: u64,
    #[serde(borrow)]
    submission: SubmissionFields<'a>,
    v: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct SubmissionFields<'a> {
    author: String,
    #[serde(default, borrow)]
    content_commitment: Option<Cow<'a, str>>,
    #[serde(borrow)]
    event_type: Cow<'a, str>,
    event_version: u64,
    #[serde(borrow)]
    idempotency_key: Cow<'a, str>,
    #[serde(borrow)]
    key_id: Cow<'a, str>,
    #[serde(borrow)]
    occurred_at: Cow<'a, str>,
    #[serde(borrow)]
    origin: Cow<'a, str>,
    #[serde(borrow)]
    payload: &'a RawValue,
    #[serde(default)]
    redacts: Vec<u64>,
    stream: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENTRY: &str = r#"{"prev":"PREV","recorded_at":"2026-12-01T10:00:00.000001Z","seq":7,"signature":"c2ln","stream_version":0,"submission":{"author":"police","event_type":"BreachDetected","event_version":1,"idempotency_key":"k-1","key_id":"ab","occurred_at":"2026-12-01T09:00:00Z","origin":"test","payload":{"approximate_records":3,"approximate_subjects":2,"at":"2026-12-01T09:00:00Z","became_aware_at":"2026-12-01T09:00:00Z","by":{"partner":"police","role":"dpo","user":"u-1"},"data_categories":["health"],"nature":["confidentiality"],"subject_categories":["victims"]},"stream":"breach/B-1"},"v":1}"#;

    fn stored(text: &str) -> StoredEntry {
        StoredEntry {
            seq: 7,
            bytes: text.replace("PREV", &Hash::ZERO.to_hex()).into_bytes(),
            content: None,
        }
    }

    /// An entry is read only in the form the ledger writes: what parsing the whole
    /// entry refuses, a view refuses too (and the log breaks there).
    #[test]
    fn an_entry_missing_a_field_or_with_an_unknown_one_is_unreadable() {
        let (logged, prev) = decode_entry(&stored(ENTRY)).unwrap();
        assert_eq!((logged.seq, logged.stream_id()), (7, "B-1"));
        assert!(logged.event.is_some() && !logged.has_content);
        assert_eq!(prev, Hash::ZERO.to_hex());
        let altered = [
            ENTRY.replace(r#""signature":"c2ln","#, ""),
            ENTRY.replace(r#""origin":"test","#, ""),
            ENTRY.replace(r#""v":1}"#, r#""v":1,"extra":true}"#),
            ENTRY.replace(
                r#""stream":"breach/B-1"}"#,
                r#""stream":"breach/B-1","x":1}"#,
            ),
            ENTRY.replace(r#""seq":7"#, r#""seq":8"#),
        ];
        for text in altered {
            assert!(
                matches!(
                    decode_entry(&stored(&text)),
                    Err(Break::Unreadable { seq: 7, .. })
                ),
                "{text}"
            );
            // The whole-entry parse agrees.
            let whole = serde_json::from_str::<ledger::entry::Entry>(&text.replace("PREV", "00"));
            assert!(whole.is_err() || text.contains(r#""seq":8"#), "{text}");
        }
    }
}
