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
    let kind = match submission.stream.split_once('/') {
        _ if submission.stream == partnership::STREAM => partnership::STREAM,
        Some((kind, _)) => kind,
        None => return Ok(None),
    };
    let event = crate::service::event_value(submission, None);
    fn read<F: Fact>(event: serde_json::Value) -> Result<Recorded<F>, String>
    where
        Recorded<F>: DeserializeOwned,
    {
        serde_json::from_value(event).map_err(|e| e.to_string())
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
