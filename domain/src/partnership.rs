//! Governance: the partners, the agreements they sign, their liaison officers, the
//! meetings where information is shared, non-compliance and suspension.
//!
//! One aggregate per log (stream `partnership`): governance changes are few, and every
//! sharing rule reads them (is the recipient a signatory? suspended?), so they are kept
//! together and replayed whole.

use crate::recorded::{Command, Fact, Recorded};
use crate::reference::Reference;
use crate::refusal::{require_text, Refusal, Rule};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

pub const STREAM: &str = "partnership";

/// Retention of one data category under an agreement.
#[derive(schemars::JsonSchema, Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionRule {
    pub data_category: String,
    /// Review (or dispose of) records this many months after they were received.
    pub review_after_months: u32,
}

#[derive(schemars::JsonSchema, Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AgreementKind {
    /// The overarching information sharing protocol.
    Protocol,
    /// An information sharing agreement under a protocol.
    Isa,
    /// A data sharing agreement (one-off or bulk).
    Dsa,
}

#[derive(schemars::JsonSchema, Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TerminationObligation {
    ReturnData,
    DeleteData,
    RetainUnderOwnPolicy,
}

/// The governance facts.
#[derive(schemars::JsonSchema, Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", deny_unknown_fields)]
pub enum PartnershipFact {
    PartnerRegistered {
        partner: String,
        organisation: String,
        kind: String,
        ico_registration: String,
        /// A role mailbox, not a person's address.
        dpo_contact: String,
    },
    AgreementAdopted {
        agreement: String,
        kind: AgreementKind,
        title: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        under: Option<String>,
        purposes: Vec<String>,
        lawful_bases: Vec<String>,
        #[serde(default)]
        gateways: Vec<String>,
        data_categories: Vec<String>,
        retention: Vec<RetentionRule>,
        review_interval_months: u32,
    },
    AgreementSigned {
        agreement: String,
        signatory: String,
        signed_as: String,
    },
    AgreementReviewed {
        agreement: String,
        next_review_due: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        notes: Option<String>,
    },
    AgreementTerminated {
        agreement: String,
        obligation: TerminationObligation,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        notes: Option<String>,
    },
    LiaisonOfficerDesignated {
        agreement: String,
        partner: String,
        officer: String,
        officer_role: String,
    },
    MeetingHeld {
        meeting: String,
        agreement: String,
        chair: String,
        classification: String,
        /// Partners whose attendees signed the confidentiality declaration.
        declarations_signed_by: Vec<String>,
    },
    NonComplianceReported {
        report: String,
        partner: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        description: Option<String>,
    },
    NonComplianceFinding {
        report: String,
        upheld: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        findings: Option<String>,
    },
    PartnerSuspended {
        partner: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        report: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    PartnerReinstated {
        partner: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
}

impl Fact for PartnershipFact {
    const STREAM_KIND: &'static str = "partnership";
}

pub type PartnershipEvent = Recorded<PartnershipFact>;
/// Commands ask for the facts themselves to be recorded; the aggregate checks them.
pub type PartnershipCommand = Command<PartnershipFact>;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Partner {
    pub kind: String,
    pub suspended: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Agreement {
    pub purposes: Vec<String>,
    pub lawful_bases: Vec<String>,
    pub data_categories: Vec<String>,
    pub retention: Vec<RetentionRule>,
    pub signatories: BTreeSet<String>,
    pub terminated: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Meeting {
    pub agreement: String,
    pub declarations_signed_by: BTreeSet<String>,
}

/// The governance state every sharing rule reads.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Partnership {
    pub partners: BTreeMap<String, Partner>,
    pub agreements: BTreeMap<String, Agreement>,
    pub meetings: BTreeMap<String, Meeting>,
    pub reports: BTreeMap<String, String>,
}

impl Partnership {
    /// A registered partner, or a refusal naming the registered ones.
    pub fn partner(&self, field: &str, partner: &str) -> Result<&Partner, Refusal> {
        self.partners.get(partner).ok_or_else(|| {
            Refusal::invalid(
                field,
                format!(
                    "{partner:?} is not a registered partner; registered: {}",
                    self.partners.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            )
        })
    }

    /// A live (adopted, not terminated) agreement.
    pub fn agreement(&self, agreement: &str) -> Result<&Agreement, Refusal> {
        let found = self.agreements.get(agreement).ok_or_else(|| {
            Refusal::invalid(
                "agreement",
                format!(
                    "{agreement:?} is not an adopted agreement; adopted: {}",
                    self.agreements
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        })?;
        if found.terminated {
            return Err(Refusal::rule(
                Rule::ProcessOrder,
                format!("agreement {agreement:?} has been terminated"),
                "share under a live agreement",
            ));
        }
        Ok(found)
    }

    /// The acting partner is registered, not suspended, and has signed the agreement.
    pub fn check_party(&self, agreement: &str, partner: &str) -> Result<(), Refusal> {
        let a = self.agreement(agreement)?;
        self.partner("by.partner", partner)?;
        if !a.signatories.contains(partner) {
            return Err(Refusal::rule(
                Rule::ActingPartnerIsParty,
                format!("{partner} has not signed agreement {agreement:?}"),
                format!("record AgreementSigned for {partner} first"),
            ));
        }
        Ok(())
    }

    /// May `recipient` receive data under `agreement` (or at `meeting`)?
    pub fn check_recipient(
        &self,
        agreement: &str,
        meeting: Option<&str>,
        recipient: &str,
    ) -> Result<(), Refusal> {
        let a = self.agreement(agreement)?;
        let partner = self.partner("recipients", recipient)?;
        if partner.suspended {
            return Err(Refusal::rule(
                Rule::RecipientNotSuspended,
                format!("{recipient} is suspended from the partnership"),
                format!("share with {recipient} only after PartnerReinstated is recorded"),
            ));
        }
        if a.signatories.contains(recipient) {
            return Ok(());
        }
        let signed_at_meeting = meeting.is_some_and(|m| {
            self.meetings.get(m).is_some_and(|m| {
                m.agreement == agreement && m.declarations_signed_by.contains(recipient)
            })
        });
        if signed_at_meeting {
            return Ok(());
        }
        Err(Refusal::rule(
            Rule::RecipientIsSignatory,
            format!(
                "{recipient} has not signed agreement {agreement:?}{}",
                meeting.map_or(String::new(), |m| format!(
                    " nor the confidentiality declaration of meeting {m:?}"
                ))
            ),
            format!(
                "record AgreementSigned by {recipient}, or share at a meeting whose declaration {recipient} signed"
            ),
        ))
    }
}

fn check_codes(
    field: &str,
    codes: &[String],
    list: &crate::reference::Codes,
) -> Result<(), Refusal> {
    if codes.is_empty() {
        return Err(Refusal::invalid(field, "must name at least one"));
    }
    for code in codes {
        list.check(code)?;
    }
    Ok(())
}

impl Aggregate for Partnership {
    const TYPE: &'static str = "partnership";
    type Command = PartnershipCommand;
    type Event = PartnershipEvent;
    type Error = Refusal;
    type Services = Arc<Reference>;

    async fn handle(
        &mut self,
        command: Self::Command,
        reference: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Refusal> {
        command.micros()?;
        let actor = command.by.partner.as_str();
        // Anyone may register the first partner (the lead, bootstrapping the
        // partnership); after that only a registered, unsuspended partner acts here.
        if !self.partners.is_empty() {
            let acting = self.partner("by.partner", actor)?;
            if acting.suspended {
                return Err(Refusal::rule(
                    Rule::ActingPartnerIsParty,
                    format!("{actor} is suspended"),
                    "a partner acts again only once reinstated",
                ));
            }
        }
        match &command.action {
            PartnershipFact::PartnerRegistered {
                partner,
                organisation,
                kind,
                ico_registration,
                dpo_contact,
            } => {
                ledger::keys::check_key_name(partner)
                    .map_err(|e| Refusal::invalid("partner", e.to_string()))?;
                if self.partners.contains_key(partner) {
                    return Err(Refusal::invalid(
                        "partner",
                        format!("{partner} is already registered"),
                    ));
                }
                if self.partners.is_empty() && partner != actor {
                    return Err(Refusal::rule(
                        Rule::ActingPartnerIsParty,
                        "the first partner registers itself",
                        format!("register {actor} first"),
                    ));
                }
                require_text("organisation", organisation)?;
                require_text("ico_registration", ico_registration)?;
                require_text("dpo_contact", dpo_contact)?;
                reference.partner_kinds.check(kind)?;
            }
            PartnershipFact::AgreementAdopted {
                agreement,
                title,
                under,
                kind,
                purposes,
                lawful_bases,
                gateways,
                data_categories,
                retention,
                review_interval_months,
            } => {
                require_text("agreement", agreement)?;
                require_text("title", title)?;
                if self.agreements.contains_key(agreement) {
                    return Err(Refusal::invalid(
                        "agreement",
                        format!("{agreement:?} already adopted"),
                    ));
                }
                match (kind, under) {
                    (AgreementKind::Protocol, Some(_)) => {
                        return Err(Refusal::invalid(
                            "under",
                            "a protocol is the top of the hierarchy",
                        ))
                    }
                    (_, Some(parent)) => {
                        self.agreement(parent)?;
                    }
                    _ => {}
                }
                if purposes.iter().any(|p| p.trim().is_empty()) || purposes.is_empty() {
                    return Err(Refusal::invalid("purposes", "name at least one purpose"));
                }
                check_codes("lawful_bases", lawful_bases, &reference.lawful_bases)?;
                for g in gateways {
                    reference.gateways.check(g)?;
                }
                check_codes(
                    "data_categories",
                    data_categories,
                    &reference.data_categories,
                )?;
                for rule in retention {
                    if !data_categories.contains(&rule.data_category) {
                        return Err(Refusal::invalid(
                            "retention",
                            format!(
                                "{:?} is not among the agreement's data categories",
                                rule.data_category
                            ),
                        ));
                    }
                }
                if !(1..=60).contains(review_interval_months) {
                    return Err(Refusal::invalid(
                        "review_interval_months",
                        "must be 1 to 60",
                    ));
                }
            }
            PartnershipFact::AgreementSigned {
                agreement,
                signatory,
                signed_as,
            } => {
                self.agreement(agreement)?;
                self.partner("signatory", signatory)?;
                require_text("signed_as", signed_as)?;
                if signatory != actor {
                    return Err(Refusal::rule(
                        Rule::ActingPartnerIsParty,
                        format!("{actor} cannot sign for {signatory}"),
                        format!("{signatory} records its own signature"),
                    ));
                }
            }
            PartnershipFact::AgreementReviewed {
                agreement,
                next_review_due,
                ..
            } => {
                self.check_party(agreement, actor)?;
                crate::recorded::parse_day("next_review_due", next_review_due)?;
            }
            PartnershipFact::AgreementTerminated { agreement, .. } => {
                self.check_party(agreement, actor)?;
            }
            PartnershipFact::LiaisonOfficerDesignated {
                agreement,
                partner,
                officer,
                officer_role,
            } => {
                self.check_party(agreement, actor)?;
                if partner != actor {
                    return Err(Refusal::rule(
                        Rule::ActingPartnerIsParty,
                        format!("{actor} cannot designate {partner}'s liaison officer"),
                        format!("{partner} designates its own"),
                    ));
                }
                require_text("officer", officer)?;
                require_text("officer_role", officer_role)?;
            }
            PartnershipFact::MeetingHeld {
                meeting,
                agreement,
                chair,
                classification,
                declarations_signed_by,
            } => {
                require_text("meeting", meeting)?;
                if self.meetings.contains_key(meeting) {
                    return Err(Refusal::invalid(
                        "meeting",
                        format!("{meeting:?} already recorded"),
                    ));
                }
                self.check_party(agreement, actor)?;
                self.partner("chair", chair)?;
                reference.classifications.check(classification)?;
                if declarations_signed_by.is_empty() {
                    return Err(Refusal::invalid(
                        "declarations_signed_by",
                        "list the partners whose attendees signed the confidentiality declaration",
                    ));
                }
                for p in declarations_signed_by {
                    self.partner("declarations_signed_by", p)?;
                }
            }
            PartnershipFact::NonComplianceReported {
                report, partner, ..
            } => {
                require_text("report", report)?;
                if self.reports.contains_key(report) {
                    return Err(Refusal::invalid(
                        "report",
                        format!("{report:?} already recorded"),
                    ));
                }
                self.partner("partner", partner)?;
            }
            PartnershipFact::NonComplianceFinding { report, .. } => {
                if !self.reports.contains_key(report) {
                    return Err(Refusal::rule(
                        Rule::ProcessOrder,
                        format!("no non-compliance report {report:?}"),
                        "record NonComplianceReported first",
                    ));
                }
            }
            PartnershipFact::PartnerSuspended { partner, .. } => {
                let p = self.partner("partner", partner)?;
                if partner == actor || p.suspended {
                    return Err(Refusal::invalid(
                        "partner",
                        format!("{partner} cannot be suspended (already suspended, or suspending itself)"),
                    ));
                }
            }
            PartnershipFact::PartnerReinstated { partner, .. } => {
                if !self.partner("partner", partner)?.suspended {
                    return Err(Refusal::rule(
                        Rule::ProcessOrder,
                        format!("{partner} is not suspended"),
                        "only a suspended partner is reinstated",
                    ));
                }
            }
        }
        sink.write(command.record(command.action.clone()), self)
            .await;
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event.fact {
            PartnershipFact::PartnerRegistered { partner, kind, .. } => {
                self.partners.insert(
                    partner,
                    Partner {
                        kind,
                        suspended: false,
                    },
                );
            }
            PartnershipFact::AgreementAdopted {
                agreement,
                purposes,
                lawful_bases,
                data_categories,
                retention,
                ..
            } => {
                self.agreements.insert(
                    agreement,
                    Agreement {
                        purposes,
                        lawful_bases,
                        data_categories,
                        retention,
                        ..Agreement::default()
                    },
                );
            }
            PartnershipFact::AgreementSigned {
                agreement,
                signatory,
                ..
            } => {
                if let Some(a) = self.agreements.get_mut(&agreement) {
                    a.signatories.insert(signatory);
                }
            }
            PartnershipFact::AgreementTerminated { agreement, .. } => {
                if let Some(a) = self.agreements.get_mut(&agreement) {
                    a.terminated = true;
                }
            }
            PartnershipFact::MeetingHeld {
                meeting,
                agreement,
                declarations_signed_by,
                ..
            } => {
                self.meetings.insert(
                    meeting,
                    Meeting {
                        agreement,
                        declarations_signed_by: declarations_signed_by.into_iter().collect(),
                    },
                );
            }
            PartnershipFact::NonComplianceReported {
                report, partner, ..
            } => {
                self.reports.insert(report, partner);
            }
            PartnershipFact::PartnerSuspended { partner, .. } => {
                if let Some(p) = self.partners.get_mut(&partner) {
                    p.suspended = true;
                }
            }
            PartnershipFact::PartnerReinstated { partner, .. } => {
                if let Some(p) = self.partners.get_mut(&partner) {
                    p.suspended = false;
                }
            }
            PartnershipFact::AgreementReviewed { .. }
            | PartnershipFact::LiaisonOfficerDesignated { .. }
            | PartnershipFact::NonComplianceFinding { .. } => {}
        }
    }
}
