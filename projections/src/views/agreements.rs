//! Agreements: each protocol, ISA or DSA with what it permits, its signatories and
//! liaison officers, the meetings held under it, when its next review is due, whether it
//! was terminated, and which partners are suspended in the partnership (a suspended
//! partner receives nothing under any agreement).

use super::{day_of, review_due, review_set, DeadlineRecord};
use crate::logged::Logged;
use crate::view::{Columns, Context, Rows, Touch, View};
use domain::event::DomainEvent;
use domain::partnership::{AgreementKind, PartnershipFact, RetentionRule, TerminationObligation};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

pub struct Agreements;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgreementRow {
    pub agreement: String,
    pub kind: AgreementKind,
    pub title: String,
    pub under: Option<String>,
    pub adopted_by: String,
    pub adopted_at: String,
    pub purposes: Vec<String>,
    pub lawful_bases: Vec<String>,
    pub gateways: Vec<String>,
    pub data_categories: Vec<String>,
    pub retention: Vec<RetentionRule>,
    pub review_interval_months: u32,
    pub signatories: Vec<Signatory>,
    /// Partner → its liaison officer (the latest designation).
    pub liaison_officers: BTreeMap<String, LiaisonOfficer>,
    pub meetings: Vec<Meeting>,
    pub last_reviewed_at: Option<String>,
    pub next_review: Option<DeadlineRecord>,
    pub terminated: Option<Terminated>,
    /// Partners currently suspended in the partnership.
    pub suspended: BTreeSet<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Signatory {
    pub partner: String,
    pub signed_as: String,
    pub at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LiaisonOfficer {
    pub officer: String,
    pub officer_role: String,
    pub at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Meeting {
    pub meeting: String,
    pub chair: String,
    pub classification: String,
    pub at: String,
    pub declarations_signed_by: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Terminated {
    pub at: String,
    pub obligation: TerminationObligation,
}

fn fact(event: &Logged) -> Option<&domain::recorded::Recorded<PartnershipFact>> {
    match &event.event {
        Some(DomainEvent::Partnership(r)) => Some(r),
        _ => None,
    }
}

impl View for Agreements {
    const NAME: &'static str = "agreements";
    const VERSION: u32 = 1;
    type Row = AgreementRow;

    fn touches(event: &Logged) -> Touch {
        let Some(recorded) = fact(event) else {
            return Touch::Nothing;
        };
        match &recorded.fact {
            // A new agreement inherits the partnership's suspensions, read from the others.
            PartnershipFact::AgreementAdopted { .. } => Touch::All,
            PartnershipFact::AgreementSigned { agreement, .. }
            | PartnershipFact::AgreementReviewed { agreement, .. }
            | PartnershipFact::AgreementTerminated { agreement, .. }
            | PartnershipFact::LiaisonOfficerDesignated { agreement, .. }
            | PartnershipFact::MeetingHeld { agreement, .. } => {
                Touch::Keys(vec![agreement.clone()])
            }
            PartnershipFact::PartnerSuspended { .. }
            | PartnershipFact::PartnerReinstated { .. } => Touch::All,
            _ => Touch::Nothing,
        }
    }

    fn apply(_: &Context<'_>, event: &Logged, rows: &mut Rows<AgreementRow>) -> Result<(), String> {
        let Some(recorded) = fact(event) else {
            return Ok(());
        };
        let at = recorded.at.clone();
        match &recorded.fact {
            PartnershipFact::AgreementAdopted {
                agreement,
                kind,
                title,
                under,
                purposes,
                lawful_bases,
                gateways,
                data_categories,
                retention,
                review_interval_months,
            } => {
                let suspended = rows
                    .iter()
                    .next()
                    .map(|(_, r)| r.suspended.clone())
                    .unwrap_or_default();
                rows.insert(
                    agreement.clone(),
                    AgreementRow {
                        agreement: agreement.clone(),
                        kind: *kind,
                        title: title.clone(),
                        under: under.clone(),
                        adopted_by: recorded.by.partner.clone(),
                        next_review: Some(review_due(
                            day_of(&at),
                            *review_interval_months,
                            "adoption",
                        )),
                        adopted_at: at,
                        purposes: purposes.clone(),
                        lawful_bases: lawful_bases.clone(),
                        gateways: gateways.clone(),
                        data_categories: data_categories.clone(),
                        retention: retention.clone(),
                        review_interval_months: *review_interval_months,
                        signatories: Vec::new(),
                        liaison_officers: BTreeMap::new(),
                        meetings: Vec::new(),
                        last_reviewed_at: None,
                        terminated: None,
                        suspended,
                    },
                );
            }
            PartnershipFact::AgreementSigned {
                agreement,
                signatory,
                signed_as,
            } => rows
                .expect_mut(agreement, event)?
                .signatories
                .push(Signatory {
                    partner: signatory.clone(),
                    signed_as: signed_as.clone(),
                    at,
                }),
            PartnershipFact::AgreementReviewed {
                agreement,
                next_review_due,
                ..
            } => {
                let row = rows.expect_mut(agreement, event)?;
                row.next_review = Some(review_set(next_review_due, &at));
                row.last_reviewed_at = Some(at);
            }
            PartnershipFact::AgreementTerminated {
                agreement,
                obligation,
                ..
            } => {
                let row = rows.expect_mut(agreement, event)?;
                row.terminated = Some(Terminated {
                    at,
                    obligation: *obligation,
                });
            }
            PartnershipFact::LiaisonOfficerDesignated {
                agreement,
                partner,
                officer,
                officer_role,
            } => {
                rows.expect_mut(agreement, event)?.liaison_officers.insert(
                    partner.clone(),
                    LiaisonOfficer {
                        officer: officer.clone(),
                        officer_role: officer_role.clone(),
                        at,
                    },
                );
            }
            PartnershipFact::MeetingHeld {
                meeting,
                agreement,
                chair,
                classification,
                declarations_signed_by,
            } => rows.expect_mut(agreement, event)?.meetings.push(Meeting {
                meeting: meeting.clone(),
                chair: chair.clone(),
                classification: classification.clone(),
                at,
                declarations_signed_by: declarations_signed_by.clone(),
            }),
            PartnershipFact::PartnerSuspended { partner, .. } => {
                for (_, row) in rows.all_mut() {
                    row.suspended.insert(partner.clone());
                }
            }
            PartnershipFact::PartnerReinstated { partner, .. } => {
                for (_, row) in rows.all_mut() {
                    row.suspended.remove(partner);
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn columns(row: &AgreementRow) -> Columns {
        let mut parties: BTreeSet<String> =
            row.signatories.iter().map(|s| s.partner.clone()).collect();
        parties.insert(row.adopted_by.clone());
        let active = row.terminated.is_none();
        Columns {
            partner: Some(row.adopted_by.clone()),
            status: if active { "active" } else { "terminated" }.to_string(),
            due: if active {
                row.next_review.as_ref().and_then(|r| r.due.clone())
            } else {
                None
            },
            subject: None,
            parties,
        }
    }
}
