//! Submitting a command: from the JSON a partner sends to signed entries in the log.
//!
//! 1. Identifiers of data subjects are replaced by their keyed pseudonyms before
//!    anything else reads the command, so no identifier reaches the log.
//! 2. The aggregate is replayed from its stream (and, for a case, the partnership and
//!    the consent relied on from theirs) and decides the command.
//! 3. Each resulting event becomes a submission: its free text moves to the entry's
//!    redactable content, the rest is the signed payload; it is signed by the acting
//!    partner's key and appended with the stream's expected version and an idempotency
//!    key, so a retried command returns the original receipts and writes nothing.
//!    A command's events are appended as one unit: all recorded, or none.
//!
//! The streams a command reads are located with one question to the sequencer, and
//! their aggregates come from memory while the stream has not moved: every wait on the
//! sequencer is a wait behind every other task on a busy machine.

use crate::breach::Breach;
use crate::case::{Case, CaseFact, CaseServices};
use crate::consent::Consent;
use crate::partnership::{self, Partnership};
use crate::pseudonym::{PartnershipSecret, SubjectIdentifiers};
use crate::recorded::{Command, Fact};
use crate::reference::Reference;
use crate::refusal::Refusal;
use crate::requests::{Complaint, FoiRequest};
use crate::sar::Sar;
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use deadlines::Settings;
use ledger::entry::{Content, Entry, SignedSubmission, Submission};
use ledger::keys::SignerKey;
use ledger::pipeline::{AppendError, AppendRequest, ExpectedVersion, Ledger, Receipt};
use ledger::store::{LedgerStore, StreamPosition};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Top-level event fields that may hold personal data: they go to the entry's
/// redactable content, which retention disposal and erasure remove.
pub const NARRATIVE_FIELDS: &[&str] = &[
    "containment",
    "correction",
    "description",
    "findings",
    "likely_consequences",
    "notes",
    "rationale",
    "reason",
    "reasons",
    "reasons_for_delay",
    "without_consent_reason",
];

/// Fields of a subject given by identifiers; such a subject is pseudonymised.
const IDENTIFIER_FIELDS: &[&str] = &[
    "given_name",
    "family_name",
    "date_of_birth",
    "nhs_number",
    "pnc_id",
    "postcode",
];

#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error(transparent)]
    Ledger(#[from] AppendError),
    #[error("the command acts for {acting} but is signed with {signer}'s key")]
    WrongSigner { acting: String, signer: String },
    #[error("entry {seq} of stream {stream} cannot be read as a domain event: {why}")]
    Unreadable {
        stream: String,
        seq: u64,
        why: String,
    },
}

/// The receipts of one accepted command, one per event it recorded.
#[derive(Debug)]
pub struct Submitted {
    pub stream: String,
    pub events: Vec<String>,
    pub receipts: Vec<Receipt>,
}

/// Who signs a command's entries.
enum Signing<'a> {
    /// A key this process holds (a custodial partner key): signed and appended at once.
    Here(&'a SignerKey),
    /// The partner holds its key: the entries are prepared for it to sign.
    Elsewhere { partner: &'a str, key_id: &'a str },
}

impl Signing<'_> {
    fn name(&self) -> &str {
        match self {
            Signing::Here(key) => key.name(),
            Signing::Elsewhere { partner, .. } => partner,
        }
    }

    fn key_id(&self) -> String {
        match self {
            Signing::Here(key) => key.verifier().id_hex(),
            Signing::Elsewhere { key_id, .. } => key_id.to_string(),
        }
    }
}

/// What deciding a command for a partner-held key gives.
#[derive(Debug)]
pub enum Decided {
    /// Already recorded (a retry under the same idempotency key), or recorded now.
    Recorded(Submitted),
    /// Decided; the entries wait for the partner's signatures.
    ToSign(Prepared),
}

/// A decided command's entries, unsigned, in the order they must be recorded.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub stream: String,
    pub author: String,
    pub events: Vec<String>,
    pub entries: Vec<PreparedEntry>,
}

/// One entry to sign: the partner signs [`ledger::entry::submission_message`] of the
/// SHA-256 of the submission's canonical bytes.
#[derive(Debug, Clone)]
pub struct PreparedEntry {
    pub submission: Submission,
    pub expected: ExpectedVersion,
    pub content: Option<Content>,
}

/// The domain over one log.
pub struct Domain<S: LedgerStore> {
    ledger: Ledger<S>,
    reference: Arc<Reference>,
    secret: PartnershipSecret,
    /// The deadline settings the SAR rules decide with (the views' own).
    settings: Arc<Settings>,
    /// Recently used streams (see [`CachedStream`]).
    streams: std::sync::Mutex<std::collections::HashMap<String, CachedStream>>,
}

/// An aggregate replayed from its stream, with the stream's entries as parsed once.
struct Loaded<A> {
    state: Arc<A>,
    version: u64,
    entries: Arc<Vec<StreamEntry>>,
}

/// One entry of a replayed stream: what the retry and redaction checks need.
#[derive(Clone)]
struct StreamEntry {
    seq: u64,
    author: String,
    idempotency_key: String,
    event_type: String,
    has_content: bool,
}

/// A stream as this process last saw it: its version, its aggregate's state and its
/// entries. Reused while the sequencer reports the same version, so a command on a
/// stream this process just wrote to reads nothing from the store.
struct CachedStream {
    version: u64,
    state: Arc<dyn std::any::Any + Send + Sync>,
    entries: Arc<Vec<StreamEntry>>,
}

/// Streams kept in memory; when full, the cache starts again empty.
const STREAM_CACHE: usize = 16_384;

impl<S: LedgerStore + Clone> Domain<S> {
    pub fn new(ledger: Ledger<S>, reference: Arc<Reference>, secret: PartnershipSecret) -> Self {
        Domain {
            ledger,
            reference,
            secret,
            settings: Arc::new(Settings::default()),
            streams: std::sync::Mutex::new(std::collections::HashMap::new()),
        }
    }

    /// Decides with these deadline settings (`settings.json`) rather than the defaults:
    /// the ones the views compute with, so that a SAR's extension is refused exactly
    /// when its queue shows the first deadline passed.
    pub fn with_settings(mut self, settings: Settings) -> Self {
        self.settings = Arc::new(settings);
        self
    }

    pub fn ledger(&self) -> &Ledger<S> {
        &self.ledger
    }

    /// Decides one command (JSON with `stream`, `by`, `at`, `type` and the fact's
    /// fields) and appends the events it produces, signed with `signer`.
    pub async fn submit(
        &self,
        command: Value,
        signer: &SignerKey,
        idempotency_key: &str,
    ) -> Result<Submitted, SubmitError> {
        match self
            .decide_command(command, &Signing::Here(signer), idempotency_key)
            .await?
        {
            Decided::Recorded(submitted) => Ok(submitted),
            // Signing here never leaves entries for someone else to sign.
            Decided::ToSign(prepared) => Err(SubmitError::WrongSigner {
                acting: prepared.author,
                signer: signer.name().to_string(),
            }),
        }
    }

    /// Decides one command for a partner that holds its own key: the entries it would
    /// record are returned unsigned, for the partner to sign and [`Domain::commit`].
    /// A command already recorded under this idempotency key returns its receipts.
    pub async fn prepare(
        &self,
        command: Value,
        partner: &str,
        key_id: &str,
        idempotency_key: &str,
    ) -> Result<Decided, SubmitError> {
        self.decide_command(
            command,
            &Signing::Elsewhere { partner, key_id },
            idempotency_key,
        )
        .await
    }

    /// Records prepared entries with the partner's signatures, one per entry in order.
    /// The ledger verifies each against the partner's registered key and the stream's
    /// expected version, so a bad signature, or a stream that moved since the command
    /// was decided, writes nothing.
    pub async fn commit(
        &self,
        prepared: Prepared,
        signatures: &[[u8; 64]],
    ) -> Result<Submitted, SubmitError> {
        if signatures.len() != prepared.entries.len() {
            return Err(Refusal::invalid(
                "signatures",
                format!(
                    "{} entries were prepared, so {} signatures are needed, not {}",
                    prepared.entries.len(),
                    prepared.entries.len(),
                    signatures.len()
                ),
            )
            .into());
        }
        let mut requests = Vec::with_capacity(signatures.len());
        for (entry, signature) in prepared.entries.into_iter().zip(signatures) {
            requests.push(AppendRequest {
                submission: SignedSubmission::with_signature(entry.submission, *signature)
                    .map_err(AppendError::from)?,
                expected: entry.expected,
                content: entry.content,
            });
        }
        // This process's copy of the stream is not advanced here; it is read again.
        self.forget(&prepared.stream);
        let receipts = self.ledger.append_all(requests).await?;
        Ok(Submitted {
            stream: prepared.stream,
            events: prepared.events,
            receipts,
        })
    }

    async fn decide_command(
        &self,
        mut command: Value,
        signer: &Signing<'_>,
        idempotency_key: &str,
    ) -> Result<Decided, SubmitError> {
        self.pseudonymise(&mut command)?;
        let Some(fields) = command.as_object_mut() else {
            return Err(Refusal::invalid("$", "a command is a JSON object").into());
        };
        let stream = match fields.remove("stream") {
            Some(Value::String(s)) => s,
            _ => {
                return Err(
                    Refusal::invalid("stream", "name the stream, e.g. \"case/REQ-1\"").into(),
                )
            }
        };
        let kind = check_stream(&stream)?;
        let acting = fields
            .get("by")
            .and_then(|b| b.get("partner"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if acting != signer.name() {
            return Err(SubmitError::WrongSigner {
                acting,
                signer: signer.name().to_string(),
            });
        }
        let key = idempotency_key;
        match kind {
            "partnership" => {
                let cmd = parse::<Command<partnership::PartnershipFact>>(command)?;
                self.decide::<Partnership>(&stream, cmd, self.reference.clone(), signer, key)
                    .await
            }
            "case" => {
                let cmd = parse::<Command<CaseFact>>(command)?;
                // The consent relied on, if any, is read with the case and the
                // partnership: one question to the sequencer for all three.
                let relied_on = match &cmd.action {
                    CaseFact::DisclosureMade {
                        consent: Some(id), ..
                    } => Some((id.clone(), format!("consent/{id}"))),
                    _ => None,
                };
                let mut names = vec![partnership::STREAM, stream.as_str()];
                if let Some((_, consent_stream)) = &relied_on {
                    names.push(consent_stream);
                }
                let positions = self.positions(&names).await?;
                let at = |i: usize| positions.get(i).copied().flatten();
                let partnership = self
                    .load::<Partnership>(partnership::STREAM, at(0))
                    .await?
                    .state;
                let case = self.load::<Case>(&stream, at(1)).await?;
                let mut consents = BTreeMap::new();
                if let Some((id, consent_stream)) = relied_on {
                    let consent = self.load::<Consent>(&consent_stream, at(2)).await?.state;
                    if consent.status != crate::consent::ConsentStatus::Unknown {
                        consents.insert(id, Consent::clone(&consent));
                    }
                }
                let services = CaseServices {
                    reference: self.reference.clone(),
                    partnership,
                    consents,
                };
                self.run::<Case>(&stream, case, cmd, services, signer, key)
                    .await
            }
            "consent" => {
                self.decide::<Consent>(&stream, parse(command)?, (), signer, key)
                    .await
            }
            "sar" => {
                self.decide::<Sar>(&stream, parse(command)?, self.settings.clone(), signer, key)
                    .await
            }
            "breach" => {
                self.decide::<Breach>(
                    &stream,
                    parse(command)?,
                    self.reference.clone(),
                    signer,
                    key,
                )
                .await
            }
            "foi" => {
                self.decide::<FoiRequest>(&stream, parse(command)?, (), signer, key)
                    .await
            }
            _ => {
                self.decide::<Complaint>(&stream, parse(command)?, (), signer, key)
                    .await
            }
        }
    }

    /// Replaces every subject given by identifiers (under `subject` or `subjects`)
    /// with its pseudonyms.
    fn pseudonymise(&self, value: &mut Value) -> Result<(), Refusal> {
        match value {
            Value::Object(map) => {
                for (name, child) in map.iter_mut() {
                    match (name.as_str(), child) {
                        ("subject", subject @ Value::Object(_)) => self.replace_subject(subject)?,
                        ("subjects", Value::Array(subjects)) => {
                            for subject in subjects {
                                self.replace_subject(subject)?;
                            }
                        }
                        (_, other) => self.pseudonymise(other)?,
                    }
                }
            }
            Value::Array(items) => {
                for item in items {
                    self.pseudonymise(item)?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn replace_subject(&self, subject: &mut Value) -> Result<(), Refusal> {
        let given = subject
            .as_object()
            .is_some_and(|m| m.keys().any(|k| IDENTIFIER_FIELDS.contains(&k.as_str())));
        if !given {
            return Ok(());
        }
        let identifiers: SubjectIdentifiers = serde_json::from_value(subject.take())
            .map_err(|e| Refusal::invalid("subject", e.to_string()))?;
        let pseudonyms = self.secret.subject(&identifiers)?;
        *subject = serde_json::to_value(pseudonyms)
            .map_err(|e| Refusal::invalid("subject", e.to_string()))?;
        Ok(())
    }

    /// Where the streams stand, as the sequencer knows them (asked once for all).
    async fn positions(
        &self,
        streams: &[&str],
    ) -> Result<Vec<Option<StreamPosition>>, SubmitError> {
        Ok(self.ledger.stream_positions(streams).await?)
    }

    /// The aggregate of a stream standing at `position`: from memory if the stream has
    /// not moved since this process last saw it, else replayed from the store.
    async fn load<A>(
        &self,
        stream: &str,
        position: Option<StreamPosition>,
    ) -> Result<Loaded<A>, SubmitError>
    where
        A: Aggregate + Send + Sync + 'static,
    {
        let version = position.map_or(0, |p| p.version);
        let hit = self.with_streams(|streams| {
            let cached = streams.get(stream).filter(|c| c.version == version)?;
            let state = cached.state.clone().downcast::<A>().ok()?;
            Some(Loaded {
                state,
                version,
                entries: cached.entries.clone(),
            })
        });
        if let Some(loaded) = hit {
            return Ok(loaded);
        }
        let loaded = self.replay::<A>(stream, position).await?;
        self.remember(stream, &loaded);
        Ok(loaded)
    }

    fn with_streams<T>(
        &self,
        f: impl FnOnce(&mut std::collections::HashMap<String, CachedStream>) -> T,
    ) -> T {
        match self.streams.lock() {
            Ok(mut guard) => f(&mut guard),
            Err(poisoned) => f(&mut poisoned.into_inner()),
        }
    }

    fn remember<A: Send + Sync + 'static>(&self, stream: &str, loaded: &Loaded<A>) {
        self.with_streams(|streams| {
            if streams.len() >= STREAM_CACHE && !streams.contains_key(stream) {
                // Emptied rather than trimmed one by one: removing a map's "first" key
                // again and again makes finding the next one ever slower (measured:
                // a million-event bench ran at 9,400/s instead of 15,000/s); the
                // streams still in use come back with one read each.
                streams.clear();
            }
            streams.insert(
                stream.to_string(),
                CachedStream {
                    version: loaded.version,
                    state: loaded.state.clone(),
                    entries: loaded.entries.clone(),
                },
            );
        });
    }

    fn forget(&self, stream: &str) {
        self.with_streams(|streams| streams.remove(stream));
    }

    /// Replays an aggregate from its stream's durable entries.
    async fn replay<A: Aggregate>(
        &self,
        stream: &str,
        position: Option<StreamPosition>,
    ) -> Result<Loaded<A>, SubmitError> {
        let stored = self.ledger.read_stream_at(position).await?;
        let mut state = A::default();
        let mut entries = Vec::with_capacity(stored.len());
        for stored in stored {
            let unreadable = |why: String| SubmitError::Unreadable {
                stream: stream.to_string(),
                seq: stored.seq,
                why,
            };
            let entry: Entry =
                serde_json::from_slice(&stored.bytes).map_err(|e| unreadable(e.to_string()))?;
            let event = event_value(&entry.submission, stored.content.as_ref());
            let event: A::Event =
                serde_json::from_value(event).map_err(|e| unreadable(e.to_string()))?;
            state.apply(event);
            let s = entry.submission;
            entries.push(StreamEntry {
                seq: stored.seq,
                author: s.author,
                idempotency_key: s.idempotency_key,
                event_type: s.event_type,
                has_content: stored.content.is_some(),
            });
        }
        Ok(Loaded {
            state: Arc::new(state),
            version: entries.len() as u64,
            entries: Arc::new(entries),
        })
    }

    /// Decides a command on a stream that depends on no other stream.
    async fn decide<A>(
        &self,
        stream: &str,
        command: A::Command,
        services: A::Services,
        signer: &Signing<'_>,
        idempotency_key: &str,
    ) -> Result<Decided, SubmitError>
    where
        A: Aggregate<Error = Refusal> + Clone + 'static,
    {
        let position = self.positions(&[stream]).await?.pop().flatten();
        let loaded = self.load::<A>(stream, position).await?;
        self.run::<A>(stream, loaded, command, services, signer, idempotency_key)
            .await
    }

    /// Decides a command against its stream's aggregate and appends the events it
    /// produces as one unit.
    async fn run<A>(
        &self,
        stream: &str,
        loaded: Loaded<A>,
        command: A::Command,
        services: A::Services,
        signer: &Signing<'_>,
        idempotency_key: &str,
    ) -> Result<Decided, SubmitError>
    where
        A: Aggregate<Error = Refusal> + Clone + 'static,
    {
        let Loaded {
            state,
            version,
            entries,
        } = loaded;
        // A retry is answered before the command is decided again: decided against the
        // state that already holds its own events, it would be refused (or doubled).
        if let Some(earlier) = self
            .earlier_receipts(stream, &entries, signer.name(), idempotency_key)
            .await?
        {
            return Ok(Decided::Recorded(earlier));
        }
        let mut state = A::clone(&state);
        let sink = EventSink::<A>::default();
        state.handle(command, &services, &sink).await?;
        let events = sink.collect().await;
        let mut requests = Vec::with_capacity(events.len());
        let mut types = Vec::with_capacity(events.len());
        let mut keys = Vec::with_capacity(events.len());
        for (i, event) in events.iter().enumerate() {
            let value =
                serde_json::to_value(event).map_err(|e| Refusal::invalid("$", e.to_string()))?;
            let event_type = event.event_type();
            let event_version: u64 = event.event_version().parse().unwrap_or(1);
            let key = if i == 0 {
                idempotency_key.to_string()
            } else {
                format!("{idempotency_key}#{i}")
            };
            let redacts = if matches!(event_type.as_str(), "RecordDisposed" | "ErasureApplied") {
                redactable_seqs(&entries, signer.name())
            } else {
                Vec::new()
            };
            let entry = unsigned_entry(
                value,
                SubmissionParts {
                    stream,
                    event_type: &event_type,
                    event_version,
                    origin: self.ledger.origin(),
                    idempotency_key: &key,
                    expected: match version + i as u64 {
                        0 => ExpectedVersion::NoStream,
                        n => ExpectedVersion::Exact(n),
                    },
                    redacts,
                },
                signer,
            )?;
            requests.push(entry);
            types.push(event_type);
            keys.push(key);
        }
        let signer = match signer {
            Signing::Here(key) => *key,
            Signing::Elsewhere { partner, .. } => {
                return Ok(Decided::ToSign(Prepared {
                    stream: stream.to_string(),
                    author: partner.to_string(),
                    events: types,
                    entries: requests,
                }))
            }
        };
        let requests = requests
            .into_iter()
            .map(|entry| {
                Ok(AppendRequest {
                    submission: SignedSubmission::sign(entry.submission, signer)
                        .map_err(AppendError::from)?,
                    expected: entry.expected,
                    content: entry.content,
                })
            })
            .collect::<Result<Vec<_>, SubmitError>>()?;
        let has_content: Vec<bool> = requests.iter().map(|r| r.content.is_some()).collect();
        // The events of one command are recorded together or not at all.
        let receipts = match self.ledger.append_all(requests).await {
            Ok(receipts) => receipts,
            Err(error) => {
                // What this process knows of the stream may now be wrong.
                self.forget(stream);
                return Err(error.into());
            }
        };
        let mut all = Vec::clone(&entries);
        for (((receipt, key), event_type), has_content) in
            receipts.iter().zip(keys).zip(&types).zip(has_content)
        {
            all.push(StreamEntry {
                seq: receipt.seq,
                author: signer.name().to_string(),
                idempotency_key: key,
                event_type: event_type.clone(),
                has_content,
            });
        }
        self.remember(
            stream,
            &Loaded {
                state: Arc::new(state),
                version: version + events.len() as u64,
                entries: Arc::new(all),
            },
        );
        Ok(Decided::Recorded(Submitted {
            stream: stream.to_string(),
            events: types,
            receipts,
        }))
    }
}

impl<S: LedgerStore + Clone> Domain<S> {
    /// The receipts of a command already recorded in this stream under this
    /// idempotency key (its first event's key, and `KEY#n` for the rest).
    async fn earlier_receipts(
        &self,
        stream: &str,
        entries: &[StreamEntry],
        author: &str,
        key: &str,
    ) -> Result<Option<Submitted>, SubmitError> {
        let mut receipts = Vec::new();
        let mut events = Vec::new();
        for stored in entries.iter() {
            let s = stored;
            let ours = s.author == author
                && (s.idempotency_key == key
                    || s.idempotency_key
                        .strip_prefix(key)
                        .and_then(|rest| rest.strip_prefix('#'))
                        .is_some_and(|n| n.parse::<u64>().is_ok()));
            if ours {
                receipts.push(self.ledger.receipt_for(stored.seq).await?);
                events.push(s.event_type.clone());
            }
        }
        Ok((!receipts.is_empty()).then(|| Submitted {
            stream: stream.to_string(),
            events,
            receipts,
        }))
    }
}

/// The stream's kind, if the name is well formed: `partnership`, or `KIND/ID` with ID
/// of letters, digits, `.`, `-` and `_`.
fn check_stream(stream: &str) -> Result<&'static str, Refusal> {
    if stream == partnership::STREAM {
        return Ok("partnership");
    }
    let kinds: [&'static str; 6] = [
        <CaseFact as Fact>::STREAM_KIND,
        <crate::consent::ConsentFact as Fact>::STREAM_KIND,
        <crate::sar::SarFact as Fact>::STREAM_KIND,
        <crate::breach::BreachFact as Fact>::STREAM_KIND,
        <crate::requests::FoiFact as Fact>::STREAM_KIND,
        <crate::requests::ComplaintFact as Fact>::STREAM_KIND,
    ];
    let valid_id = |id: &str| {
        !id.is_empty()
            && id.len() <= 64
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
    };
    match stream.split_once('/') {
        Some((kind, id)) if valid_id(id) => kinds
            .into_iter()
            .find(|k| *k == kind)
            .ok_or_else(|| Refusal::invalid("stream", format!("unknown kind {kind:?}; one of partnership, case/ID, consent/ID, sar/ID, breach/ID, foi/ID, complaint/ID"))),
        _ => Err(Refusal::invalid(
            "stream",
            format!("{stream:?} is not partnership or KIND/ID (ID of letters, digits, '.', '-', '_')"),
        )),
    }
}

fn parse<T: serde::de::DeserializeOwned>(command: Value) -> Result<T, Refusal> {
    serde_json::from_value(command).map_err(|e| Refusal::invalid("$", e.to_string()))
}

/// The event as the aggregate reads it: the payload, its type, and the narrative
/// fields back from the content (absent once redacted).
pub(crate) fn event_value(submission: &Submission, content: Option<&Content>) -> Value {
    let mut fields = match &submission.payload {
        Value::Object(map) => map.clone(),
        _ => Map::new(),
    };
    fields.insert("type".into(), Value::from(submission.event_type.clone()));
    if let Some(Value::Object(narrative)) = content.map(|c| &c.body) {
        for (k, v) in narrative {
            fields.insert(k.clone(), v.clone());
        }
    }
    Value::Object(fields)
}

/// The stream's entries that still hold content and were written by `author` (an
/// author redacts only its own entries).
fn redactable_seqs(entries: &[StreamEntry], author: &str) -> Vec<u64> {
    entries
        .iter()
        .filter(|e| e.has_content && e.author == author)
        .map(|e| e.seq)
        .collect()
}

struct SubmissionParts<'a> {
    stream: &'a str,
    event_type: &'a str,
    event_version: u64,
    origin: &'a str,
    idempotency_key: &'a str,
    expected: ExpectedVersion,
    redacts: Vec<u64>,
}

/// Splits an event into its signed payload and redactable content, not yet signed.
fn unsigned_entry(
    event: Value,
    parts: SubmissionParts<'_>,
    signer: &Signing<'_>,
) -> Result<PreparedEntry, SubmitError> {
    let Value::Object(mut fields) = event else {
        return Err(Refusal::invalid("$", "an event is a JSON object").into());
    };
    fields.remove("type");
    let at = match fields.get("at") {
        Some(Value::String(at)) => at.clone(),
        _ => return Err(Refusal::invalid("at", "missing").into()),
    };
    let mut narrative = Map::new();
    for name in NARRATIVE_FIELDS {
        if let Some(text) = fields.remove(*name) {
            narrative.insert((*name).to_string(), text);
        }
    }
    let content = if narrative.is_empty() {
        None
    } else {
        Some(Content::new(Value::Object(narrative)).map_err(AppendError::from)?)
    };
    let commitment = match &content {
        Some(c) => Some(c.commitment().map_err(AppendError::from)?.to_hex()),
        None => None,
    };
    let submission = Submission {
        author: signer.name().to_string(),
        content_commitment: commitment,
        event_type: parts.event_type.to_string(),
        event_version: parts.event_version,
        idempotency_key: parts.idempotency_key.to_string(),
        key_id: signer.key_id(),
        occurred_at: at,
        origin: parts.origin.to_string(),
        payload: Value::Object(fields),
        redacts: parts.redacts,
        stream: parts.stream.to_string(),
    };
    submission.validate().map_err(AppendError::from)?;
    Ok(PreparedEntry {
        submission,
        expected: parts.expected,
        content,
    })
}
