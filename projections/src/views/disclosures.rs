//! The disclosure register, per partner: each disclosure with the DPA 2018 s62 log
//! fields (justification, date and time, who, recipients), the lawful basis and
//! gateways, consent or the reason for sharing without it and who decided, and the
//! sharing decision behind it; and each request, including those declined (a decision
//! not to share is recorded too).

use super::{narrative_entry, sub_key, INDEX_STATUS};
use crate::logged::Logged;
use crate::view::{Columns, Context, Rows, Touch, View};
use domain::case::{CaseFact, Decision, OnwardSharing};
use domain::event::DomainEvent;
use domain::recorded::Actor;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

pub struct Disclosures;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "row", rename_all = "kebab-case")]
pub enum RegisterRow {
    Disclosure(Box<DisclosureRow>),
    Request(Box<RequestRow>),
    /// The view's note of the case's latest sharing decision.
    CaseIndex {
        decision: Option<SharingDecision>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SharingDecision {
    pub decision: Decision,
    pub decided_by: String,
    pub necessary: bool,
    pub proportionate: bool,
    pub minimum_necessary: bool,
    pub at: String,
    /// The entry holding the rationale (while its content exists).
    pub rationale_entry: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DisclosureRow {
    pub case: String,
    pub disclosure: String,
    pub entry: u64,
    /// s62: who — the discloser, and the user and role that acted.
    pub discloser: String,
    pub by: Actor,
    /// s62: date and time it was made, and when the ledger recorded it.
    pub disclosed_at: String,
    pub recorded_at: String,
    /// s62: recipients.
    pub recipients: Vec<String>,
    /// s62: justification — the purpose, lawful bases, gateways and the decision.
    pub purpose: String,
    pub agreement: String,
    pub lawful_bases: Vec<String>,
    pub gateways: Vec<String>,
    pub decision: Option<SharingDecision>,
    pub consent: Option<String>,
    pub without_consent_decided_by: Option<String>,
    /// The entry holding the reason for sharing without consent.
    pub without_consent_reason_entry: Option<u64>,
    pub subjects: Vec<String>,
    pub data_categories: Vec<String>,
    pub classification: String,
    pub handled_as: Option<String>,
    pub channel: String,
    pub onward_sharing: OnwardSharing,
    pub review_after_months: u32,
    pub meeting: Option<String>,
    /// Later rights events on the case's data.
    pub restricted: bool,
    pub erased: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestRow {
    pub case: String,
    pub entry: u64,
    pub requester: String,
    pub holder: String,
    pub by: Actor,
    pub requested_at: String,
    pub agreement: String,
    pub purpose: String,
    pub lawful_bases: Vec<String>,
    pub gateways: Vec<String>,
    pub subjects: Vec<String>,
    pub data_categories: Vec<String>,
    pub sub_judice: bool,
    pub decision: Option<SharingDecision>,
}

fn case_event(event: &Logged) -> Option<&domain::recorded::Recorded<CaseFact>> {
    match &event.event {
        Some(DomainEvent::Case(r)) => Some(r),
        _ => None,
    }
}

impl View for Disclosures {
    const NAME: &'static str = "disclosures";
    // 2: a restriction or erasure marks only its own case's disclosures (in version 1 it
    // marked every disclosure its batch had loaded).
    const VERSION: u32 = 2;
    type Row = RegisterRow;

    fn touches(event: &Logged) -> Touch {
        let Some(recorded) = case_event(event) else {
            return Touch::Nothing;
        };
        match &recorded.fact {
            CaseFact::InformationRequested { .. } => Touch::Keys(vec![sub_key(event, "request")]),
            CaseFact::SharingDecisionRecorded { .. } => {
                Touch::Keys(vec![event.stream.clone(), sub_key(event, "request")])
            }
            CaseFact::DisclosureMade { disclosure, .. } => Touch::Keys(vec![
                event.stream.clone(),
                sub_key(event, &format!("disclosure-{disclosure}")),
            ]),
            CaseFact::RestrictionApplied { .. }
            | CaseFact::RestrictionLifted {}
            | CaseFact::ErasureApplied { .. } => Touch::Stream(event.stream.clone()),
            _ => Touch::Nothing,
        }
    }

    fn apply(_: &Context<'_>, event: &Logged, rows: &mut Rows<RegisterRow>) -> Result<(), String> {
        let Some(recorded) = case_event(event) else {
            return Ok(());
        };
        let at = &recorded.at;
        let pseudonyms = |subjects: &[domain::pseudonym::SubjectRef]| {
            subjects
                .iter()
                .map(|s| s.pseudonym.clone())
                .collect::<Vec<_>>()
        };
        match &recorded.fact {
            CaseFact::InformationRequested {
                agreement,
                requester,
                holder,
                subjects,
                data_categories,
                purpose,
                lawful_bases,
                gateways,
                sub_judice,
                ..
            } => rows.insert(
                sub_key(event, "request"),
                RegisterRow::Request(Box::new(RequestRow {
                    case: event.stream.clone(),
                    entry: event.seq,
                    requester: requester.clone(),
                    holder: holder.clone(),
                    by: recorded.by.clone(),
                    requested_at: at.clone(),
                    agreement: agreement.clone(),
                    purpose: purpose.clone(),
                    lawful_bases: lawful_bases.clone(),
                    gateways: gateways.clone(),
                    subjects: pseudonyms(subjects),
                    data_categories: data_categories.clone(),
                    sub_judice: *sub_judice,
                    decision: None,
                })),
            ),
            CaseFact::SharingDecisionRecorded {
                decision,
                decided_by,
                necessary,
                proportionate,
                minimum_necessary,
                ..
            } => {
                let decision = SharingDecision {
                    decision: *decision,
                    decided_by: decided_by.clone(),
                    necessary: *necessary,
                    proportionate: *proportionate,
                    minimum_necessary: *minimum_necessary,
                    at: at.clone(),
                    rationale_entry: narrative_entry(event),
                };
                if let Some(RegisterRow::Request(request)) =
                    rows.get_mut(&sub_key(event, "request"))
                {
                    request.decision = Some(decision.clone());
                }
                rows.insert(
                    event.stream.clone(),
                    RegisterRow::CaseIndex {
                        decision: Some(decision),
                    },
                );
            }
            CaseFact::DisclosureMade {
                disclosure,
                agreement,
                recipients,
                subjects,
                data_categories,
                purpose,
                classification,
                handled_as,
                channel,
                lawful_bases,
                gateways,
                consent,
                without_consent_decided_by,
                onward_sharing,
                review_after_months,
                meeting,
                ..
            } => {
                let decision = match rows.get(&event.stream) {
                    Some(RegisterRow::CaseIndex { decision }) => decision.clone(),
                    _ => None,
                };
                if rows.get(&event.stream).is_none() {
                    rows.insert(
                        event.stream.clone(),
                        RegisterRow::CaseIndex { decision: None },
                    );
                }
                rows.insert(
                    sub_key(event, &format!("disclosure-{disclosure}")),
                    RegisterRow::Disclosure(Box::new(DisclosureRow {
                        case: event.stream.clone(),
                        disclosure: disclosure.clone(),
                        entry: event.seq,
                        discloser: recorded.by.partner.clone(),
                        by: recorded.by.clone(),
                        disclosed_at: at.clone(),
                        recorded_at: event.recorded_at.clone(),
                        recipients: recipients.clone(),
                        purpose: purpose.clone(),
                        agreement: agreement.clone(),
                        lawful_bases: lawful_bases.clone(),
                        gateways: gateways.clone(),
                        decision,
                        consent: consent.clone(),
                        without_consent_decided_by: without_consent_decided_by.clone(),
                        without_consent_reason_entry: if consent.is_none() {
                            narrative_entry(event)
                        } else {
                            None
                        },
                        subjects: pseudonyms(subjects),
                        data_categories: data_categories.clone(),
                        classification: classification.clone(),
                        handled_as: handled_as.clone(),
                        channel: channel.clone(),
                        onward_sharing: *onward_sharing,
                        review_after_months: *review_after_months,
                        meeting: meeting.clone(),
                        restricted: false,
                        erased: false,
                    })),
                );
            }
            fact @ (CaseFact::RestrictionApplied { .. }
            | CaseFact::RestrictionLifted {}
            | CaseFact::ErasureApplied { .. }) => {
                for (_, row) in rows.within_mut(&event.stream) {
                    if let RegisterRow::Disclosure(d) = row {
                        match fact {
                            CaseFact::RestrictionApplied { .. } => d.restricted = true,
                            CaseFact::RestrictionLifted {} => d.restricted = false,
                            _ => d.erased = true,
                        }
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn columns(row: &RegisterRow) -> Columns {
        match row {
            RegisterRow::CaseIndex { .. } => Columns {
                status: INDEX_STATUS.to_string(),
                ..Columns::default()
            },
            RegisterRow::Disclosure(d) => {
                let mut parties: BTreeSet<String> = d.recipients.iter().cloned().collect();
                parties.insert(d.discloser.clone());
                let status = if d.erased {
                    "erased"
                } else if d.restricted {
                    "restricted"
                } else {
                    "disclosed"
                };
                Columns {
                    partner: Some(d.discloser.clone()),
                    status: status.to_string(),
                    due: None,
                    subject: d.subjects.first().cloned(),
                    parties,
                }
            }
            RegisterRow::Request(r) => {
                let status = match r.decision.as_ref().map(|d| d.decision) {
                    None => "awaiting-decision",
                    Some(Decision::Share) => "share",
                    Some(Decision::ShareInPart) => "share-in-part",
                    Some(Decision::Decline) => "declined",
                };
                Columns {
                    partner: Some(r.holder.clone()),
                    status: status.to_string(),
                    due: None,
                    subject: r.subjects.first().cloned(),
                    parties: BTreeSet::from([r.requester.clone(), r.holder.clone()]),
                }
            }
        }
    }
}
