//! Reading a log entry back as a domain event, for readers outside the aggregates (the
//! projections): the stream's kind says which catalogue the entry belongs to.
//!
//! Readers get the signed payload only, never the redactable content: a view built from
//! these events cannot hold free text that erasure or disposal would have to chase.
//! Narrative fields therefore always read as absent; whether an entry had any is
//! [`ledger::entry::Submission::content_commitment`].

use crate::breach::BreachFact;
use crate::case::CaseFact;
use crate::consent::ConsentFact;
use crate::partnership::{self, PartnershipFact};
use crate::recorded::{Fact, Recorded};
use crate::requests::{ComplaintFact, FoiFact};
use crate::sar::SarFact;
use ledger::entry::Submission;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// One event of the catalogue, by the stream kind it was recorded on.
#[derive(Debug, Clone, PartialEq)]
pub enum DomainEvent {
    Partnership(Recorded<PartnershipFact>),
    Case(Recorded<CaseFact>),
    Consent(Recorded<ConsentFact>),
    Sar(Recorded<SarFact>),
    Breach(Recorded<BreachFact>),
    Foi(Recorded<FoiFact>),
    Complaint(Recorded<ComplaintFact>),
}

/// The domain event an entry records, or `None` for the ledger's own entries (its
/// initialisation, keys). An entry on a domain stream that does not parse is an error:
/// the command that wrote it was validated, so something is wrong with the log or the
/// reader's version.
pub fn decode(submission: &Submission) -> Result<Option<DomainEvent>, String> {
    let Some(kind) = stream_kind(&submission.stream) else {
        return Ok(None);
    };
    read_kind(
        kind,
        Event::Value(crate::service::event_value(submission, None)),
    )
}

/// As [`decode`], from the parts of a submission a reader needs: its stream, event
/// type and payload as the JSON text stored in the entry. The views decode every entry
/// of the log on a rebuild; this spares building the payload as a `Value`, copying it
/// to add the type, and reading the copy.
pub fn decode_parts(
    stream: &str,
    event_type: &str,
    payload: &RawValue,
) -> Result<Option<DomainEvent>, String> {
    let Some(kind) = stream_kind(stream) else {
        return Ok(None);
    };
    let event = match with_type(event_type, payload.get()) {
        Some(text) => Event::Text(text),
        // A payload that is not an object, or that may name a type of its own: as
        // `decode` does, the entry's event type wins.
        None => {
            let mut fields = match serde_json::from_str(payload.get()) {
                Ok(Value::Object(fields)) => fields,
                Ok(_) => Map::new(),
                Err(e) => return Err(e.to_string()),
            };
            fields.insert("type".into(), Value::from(event_type));
            Event::Value(Value::Object(fields))
        }
    };
    read_kind(kind, event)
}

/// The kind of a domain stream (`breach` of `breach/B-17`), or `None` for the ledger's
/// own streams.
fn stream_kind(stream: &str) -> Option<&str> {
    match stream.split_once('/') {
        _ if stream == partnership::STREAM => Some(partnership::STREAM),
        Some((kind, _)) => Some(kind),
        None => None,
    }
}

/// The event as the domain reads it: the payload's fields and `type`.
enum Event {
    Value(Value),
    Text(String),
}

/// `payload` (an object with no `type` key) with `"type": event_type` added, as JSON
/// text; `None` for any other payload. Stored payloads are canonical JSON (no repeated
/// keys); one that may spell `type` with escapes also goes the `Value` way.
fn with_type(event_type: &str, payload: &str) -> Option<String> {
    let fields = payload.trim_start().strip_prefix('{')?;
    if payload.contains("\"type\"") || payload.contains("\\u") {
        return None;
    }
    let event_type = serde_json::to_string(event_type).ok()?;
    let mut text = String::with_capacity(payload.len() + event_type.len() + 9);
    text.push_str("{\"type\":");
    text.push_str(&event_type);
    if !fields.trim_start().starts_with('}') {
        text.push(',');
    }
    text.push_str(fields);
    Some(text)
}

fn read_kind(kind: &str, event: Event) -> Result<Option<DomainEvent>, String> {
    fn read<F: Fact>(event: Event) -> Result<Recorded<F>, String>
    where
        Recorded<F>: DeserializeOwned,
    {
        match event {
            Event::Value(value) => serde_json::from_value(value).map_err(|e| e.to_string()),
            Event::Text(text) => serde_json::from_str(&text).map_err(|e| {
                // The position is in the text built here, not in the stored entry.
                let why = e.to_string();
                let at = format!(" at line {} column {}", e.line(), e.column());
                why.strip_suffix(&at).map_or(why.clone(), str::to_string)
            }),
        }
    }
    Ok(Some(match kind {
        k if k == <PartnershipFact as Fact>::STREAM_KIND => DomainEvent::Partnership(read(event)?),
        k if k == <CaseFact as Fact>::STREAM_KIND => DomainEvent::Case(read(event)?),
        k if k == <ConsentFact as Fact>::STREAM_KIND => DomainEvent::Consent(read(event)?),
        k if k == <SarFact as Fact>::STREAM_KIND => DomainEvent::Sar(read(event)?),
        k if k == <BreachFact as Fact>::STREAM_KIND => DomainEvent::Breach(read(event)?),
        k if k == <FoiFact as Fact>::STREAM_KIND => DomainEvent::Foi(read(event)?),
        k if k == <ComplaintFact as Fact>::STREAM_KIND => DomainEvent::Complaint(read(event)?),
        _ => return Ok(None),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn submission(stream: &str, event_type: &str, payload: &str) -> Submission {
        Submission {
            author: "police".into(),
            content_commitment: None,
            event_type: event_type.into(),
            event_version: 1,
            idempotency_key: "k-1".into(),
            key_id: "00".repeat(32),
            occurred_at: "2026-11-02T10:00:00Z".into(),
            origin: "test".into(),
            payload: serde_json::from_str(payload).unwrap(),
            redacts: Vec::new(),
            stream: stream.into(),
        }
    }

    /// The views read entries through `decode_parts`; it must read every payload as
    /// `decode` does, errors included.
    #[test]
    fn decoding_from_parts_reads_as_decoding_the_submission() {
        let detected = r#"{"approximate_records":3,"approximate_subjects":2,"at":"2026-11-02T10:00:00Z","became_aware_at":"2026-11-02T09:30:00Z","by":{"partner":"police","role":"dpo","user":"u-1"},"data_categories":["health"],"nature":["confidentiality"],"subject_categories":["victims"]}"#;
        let cases = [
            ("breach/B-1", "BreachDetected", detected),
            // A payload naming a type of its own: the entry's event type wins.
            (
                "breach/B-1",
                "BreachDetected",
                &detected.replacen('{', r#"{"type":"BreachClosed","#, 1),
            ),
            ("breach/B-1", "BreachDetected", "{}"),
            ("breach/B-1", "NoSuchEvent", detected),
            ("breach/B-1", "BreachDetected", "[]"),
            ("ledger", "LedgerInitialised", r#"{"a":1}"#),
        ];
        for (stream, event_type, payload) in cases {
            let whole = decode(&submission(stream, event_type, payload));
            let raw: Box<RawValue> = serde_json::from_str(payload).unwrap();
            let parts = decode_parts(stream, event_type, &raw);
            assert_eq!(parts, whole, "{stream} {event_type} {payload}");
        }
        let raw: Box<RawValue> = serde_json::from_str(detected).unwrap();
        match decode_parts("breach/B-1", "BreachDetected", &raw) {
            Ok(Some(DomainEvent::Breach(event))) => assert_eq!(event.by.user, "u-1"),
            other => panic!("not a detected breach: {other:?}"),
        }
    }
}
