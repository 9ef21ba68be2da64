//! A sharing case: one request (or one proactive disclosure) and everything that follows
//! from it: the decision to share or not, disclosures, onward sharing, retention review
//! and disposal, the data subject rights applied to what was shared (rectification,
//! erasure, restriction, objection) and the Article 19 notices they raise to every
//! recipient, and corrections. Stream `case/{id}`.
//!
//! The disclosure rules need more than the case: the partnership (signatories,
//! suspensions, meetings) and the consent a disclosure relies on. Those are handed in as
//! [`CaseServices`], read from their own streams just before the command is decided.

use crate::consent::Consent;
use crate::partnership::Partnership;
use crate::pseudonym::SubjectRef;
use crate::recorded::{london_day, parse_day, Command, Fact, Recorded};
use crate::reference::Reference;
use crate::refusal::{require_text, Refusal, Rule};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

#[derive(schemars::JsonSchema, Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Decision {
    Share,
    ShareInPart,
    Decline,
}

#[derive(schemars::JsonSchema, Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnwardSharing {
    /// The recipient may pass the data on only with the originator's permission.
    NotWithoutPermission,
    /// The originator allows onward sharing within the agreement.
    PermittedWithinAgreement,
}

#[derive(schemars::JsonSchema, Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RetentionOutcome {
    Keep,
    Restrict,
    Dispose,
}

/// What an Article 19 notice tells a recipient.
#[derive(schemars::JsonSchema, Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NoticeKind {
    Rectification,
    Erasure,
    Restriction,
    RestrictionLifted,
    Objection,
}

#[derive(schemars::JsonSchema, Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", deny_unknown_fields)]
pub enum CaseFact {
    InformationRequested {
        agreement: String,
        requester: String,
        holder: String,
        subjects: Vec<SubjectRef>,
        data_categories: Vec<String>,
        purpose: String,
        lawful_bases: Vec<String>,
        #[serde(default)]
        gateways: Vec<String>,
        #[serde(default)]
        sub_judice: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        description: Option<String>,
    },
    SharingDecisionRecorded {
        decision: Decision,
        decided_by: String,
        /// The checklist's answers: is sharing necessary for the purpose, proportionate
        /// to it, and limited to the minimum necessary?
        necessary: bool,
        proportionate: bool,
        minimum_necessary: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rationale: Option<String>,
    },
    DisclosureMade {
        disclosure: String,
        agreement: String,
        recipients: Vec<String>,
        subjects: Vec<SubjectRef>,
        data_categories: Vec<String>,
        purpose: String,
        classification: String,
        /// For a legacy marking, the current one it is handled as (set when recorded).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        handled_as: Option<String>,
        channel: String,
        lawful_bases: Vec<String>,
        #[serde(default)]
        gateways: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        consent: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        without_consent_decided_by: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        without_consent_reason: Option<String>,
        onward_sharing: OnwardSharing,
        review_after_months: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        meeting: Option<String>,
    },
    OnwardSharingRequested {
        onward: String,
        to: Vec<String>,
        purpose: String,
    },
    OnwardSharingGranted {
        onward: String,
    },
    OnwardSharingRefused {
        onward: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    RetentionReviewed {
        outcome: RetentionOutcome,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        next_review_due: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    RecordDisposed {
        method: String,
    },
    RectificationApplied {
        fields: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        description: Option<String>,
    },
    ErasureApplied {
        grounds: String,
    },
    RestrictionApplied {
        grounds: String,
    },
    RestrictionLifted {},
    ObjectionReceived {
        grounds: String,
    },
    NoticeIssued {
        notice: String,
        kind: NoticeKind,
        recipient: String,
    },
    NoticeAcknowledged {
        notice: String,
    },
    NoticeExempted {
        notice: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reasons: Option<String>,
    },
    CorrectionRecorded {
        /// The stream version of the event corrected (it stays as it was).
        corrects_version: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        correction: Option<String>,
    },
}

impl Fact for CaseFact {
    const STREAM_KIND: &'static str = "case";
}

pub type CaseEvent = Recorded<CaseFact>;
pub type CaseCommand = Command<CaseFact>;

/// What the case rules read besides the case.
pub struct CaseServices {
    pub reference: Arc<Reference>,
    pub partnership: Arc<Partnership>,
    /// The consent a disclosure names, read from its stream (absent if none recorded).
    pub consents: BTreeMap<String, Consent>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Onward {
    pub from: String,
    pub to: Vec<String>,
    pub granted: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notice {
    pub issuer: String,
    pub recipient: String,
    pub open: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Case {
    /// Events applied: the stream version of the last one.
    pub version: u64,
    pub agreement: Option<String>,
    pub requester: Option<String>,
    pub holder: Option<String>,
    /// The partner whose data this is: the request's holder, or the first discloser.
    pub originator: Option<String>,
    pub decision: Option<Decision>,
    pub disclosures: BTreeSet<String>,
    /// Every partner that received data in this case, and from whom.
    pub received: BTreeMap<String, BTreeSet<String>>,
    pub onward: BTreeMap<String, Onward>,
    pub notices: BTreeMap<String, Notice>,
    pub restricted: bool,
    pub erased: bool,
    pub disposed: bool,
}

fn refuse_order(problem: impl Into<String>, remedy: &str) -> Refusal {
    Refusal::rule(Rule::ProcessOrder, problem, remedy.to_string())
}

impl Case {
    fn holds_data(&self, partner: &str) -> bool {
        self.originator.as_deref() == Some(partner) || self.received.contains_key(partner)
    }

    /// The notice facts a rights event raises: one per partner that received data from
    /// the acting partner in this case.
    fn notices_for(&self, kind: NoticeKind, issuer: &str) -> Vec<CaseFact> {
        let mut n = self.notices.len();
        self.received
            .iter()
            .filter(|(_, from)| from.contains(issuer))
            .map(|(recipient, _)| {
                n += 1;
                CaseFact::NoticeIssued {
                    notice: format!("n{n}"),
                    kind,
                    recipient: recipient.clone(),
                }
            })
            .collect()
    }

    fn check_disclosure(
        &self,
        command: &CaseCommand,
        services: &CaseServices,
    ) -> Result<Option<String>, Refusal> {
        let CaseFact::DisclosureMade {
            disclosure,
            agreement,
            recipients,
            subjects,
            data_categories,
            purpose,
            classification,
            channel,
            lawful_bases,
            gateways,
            consent,
            without_consent_decided_by,
            without_consent_reason,
            review_after_months,
            meeting,
            ..
        } = &command.action
        else {
            return Ok(None);
        };
        let reference = &services.reference;
        let partnership = &services.partnership;
        let discloser = command.by.partner.as_str();
        require_text("disclosure", disclosure)?;
        if self.disclosures.contains(disclosure) {
            return Err(Refusal::invalid(
                "disclosure",
                format!("{disclosure:?} already recorded in this case"),
            ));
        }
        if self.erased || self.disposed {
            return Err(refuse_order(
                "this case's data was erased or disposed of",
                "nothing more is disclosed from it",
            ));
        }
        if self.restricted {
            return Err(refuse_order(
                "processing of this case's data is restricted",
                "record RestrictionLifted first",
            ));
        }
        match (&self.decision, self.requester.as_deref()) {
            (_, None) => {}
            (None, Some(_)) => {
                return Err(refuse_order(
                    "the request has no sharing decision yet",
                    "record SharingDecisionRecorded first",
                ))
            }
            (Some(Decision::Decline), Some(_)) => {
                return Err(refuse_order(
                    "the holder decided not to share",
                    "a declined request is not disclosed; record a new decision via a new request",
                ))
            }
            _ => {}
        }
        if let Some(a) = &self.agreement {
            if a != agreement {
                return Err(Refusal::invalid(
                    "agreement",
                    format!("this case is under {a:?}"),
                ));
            }
        }
        partnership.check_party(agreement, discloser)?;
        require_text("purpose", purpose)?;
        require_text("channel", channel)?;
        if subjects.is_empty() {
            return Err(Refusal::invalid(
                "subjects",
                "name at least one subject (as pseudonyms)",
            ));
        }
        for s in subjects {
            s.check_form()?;
        }
        if data_categories.is_empty() {
            return Err(Refusal::invalid("data_categories", "name at least one"));
        }
        for c in data_categories {
            reference.data_categories.check(c)?;
        }
        let marking = reference.classifications.check(classification)?;
        if let Some(m) = meeting {
            if !partnership.meetings.contains_key(m) {
                return Err(Refusal::invalid(
                    "meeting",
                    format!("no meeting {m:?} is recorded"),
                ));
            }
        }
        if !(1..=600).contains(review_after_months) {
            return Err(Refusal::invalid("review_after_months", "must be 1 to 600"));
        }
        for g in gateways {
            reference.gateways.check(g)?;
        }
        // Lawful basis: Art 6, or DPA 2018 Part 3 for law-enforcement processing.
        let mut groups = BTreeSet::new();
        for code in lawful_bases {
            let entry = reference.lawful_bases.check(code)?;
            groups.insert(entry.group.clone().unwrap_or_default());
        }
        let has = |g: &str| groups.contains(g);
        let part3 = has("part-3");
        if !has("article-6") && !part3 {
            return Err(Refusal::rule(
                Rule::LawfulBasisRequired,
                "the disclosure names no lawful basis for processing",
                "name an Article 6(1) basis (e.g. uk-gdpr-6-1-e) or, for law enforcement, a DPA 2018 s35(2) basis",
            ));
        }
        let needs_sch1 = lawful_bases
            .iter()
            .filter_map(|c| reference.lawful_bases.get(c))
            .any(|e| e.needs_schedule_1);
        let needs_sch8 = lawful_bases
            .iter()
            .filter_map(|c| reference.lawful_bases.get(c))
            .any(|e| e.needs_schedule_8);
        if data_categories.iter().any(|c| c == "special-category") {
            let ok = if part3 {
                has("part-3-sensitive")
            } else {
                has("article-9")
            };
            if !ok {
                return Err(Refusal::rule(
                    Rule::SpecialCategoryCondition,
                    "special category data is disclosed without its extra condition",
                    if part3 {
                        "name DPA 2018 s35(4) or s35(5) (sensitive processing)"
                    } else {
                        "name an Article 9(2) condition (e.g. uk-gdpr-9-2-g)"
                    },
                ));
            }
        }
        if needs_sch1 && !has("schedule-1") {
            return Err(Refusal::rule(
                Rule::SpecialCategoryCondition,
                "the Article 9(2) condition named needs a DPA 2018 Schedule 1 condition too",
                "name the Schedule 1 condition relied on (e.g. dpa-2018-sch-1-para-10 or para-18)",
            ));
        }
        if needs_sch8 && !has("schedule-8") {
            return Err(Refusal::rule(
                Rule::SpecialCategoryCondition,
                "sensitive processing under s35(5) needs a DPA 2018 Schedule 8 condition",
                "name the Schedule 8 condition relied on (e.g. dpa-2018-sch-8-para-1)",
            ));
        }
        if data_categories.iter().any(|c| c == "criminal-offence") && !part3 && !has("schedule-1") {
            return Err(Refusal::rule(
                Rule::CriminalOffenceCondition,
                "criminal offence data is disclosed without its Article 10 authorisation",
                "name a DPA 2018 Schedule 1 condition (e.g. dpa-2018-sch-1-para-10), or use DPA 2018 Part 3 for law enforcement",
            ));
        }
        // Consent, or the reason and who decided without it.
        let day = london_day(command.micros()?);
        match consent {
            Some(id) => {
                let found = services.consents.get(id).cloned().unwrap_or(Consent {
                    id: id.clone(),
                    ..Consent::default()
                });
                for r in recipients {
                    found.check_covers(r, purpose, day)?;
                }
                if let Some(subject) = &found.subject {
                    if !subjects.iter().any(|s| s.matches(subject)) {
                        return Err(Refusal::rule(
                            Rule::ConsentLiveAndCovering,
                            format!("consent {id:?} was given for another subject"),
                            "name the consent of a subject of this disclosure",
                        ));
                    }
                }
            }
            None => {
                let reason = without_consent_reason
                    .as_deref()
                    .map(str::trim)
                    .unwrap_or("");
                let by = without_consent_decided_by
                    .as_deref()
                    .map(str::trim)
                    .unwrap_or("");
                if reason.is_empty() || by.is_empty() {
                    return Err(Refusal::rule(
                        Rule::ReasonWithoutConsent,
                        "a disclosure without consent must say why and who decided",
                        "give without_consent_reason and without_consent_decided_by, or name a consent",
                    ));
                }
            }
        }
        // Recipients: signatories (or declared at the meeting), not suspended.
        if recipients.is_empty() {
            return Err(Refusal::invalid(
                "recipients",
                "name at least one recipient",
            ));
        }
        for r in recipients {
            if r == discloser {
                return Err(Refusal::invalid(
                    "recipients",
                    "a partner does not disclose to itself",
                ));
            }
            partnership.check_recipient(agreement, meeting.as_deref(), r)?;
        }
        // Onward sharing: a partner that received this data passes it on only with the
        // originator's permission for those recipients.
        let originator = self.originator.as_deref();
        if originator.is_some_and(|o| o != discloser) {
            if !self.received.contains_key(discloser) {
                return Err(Refusal::rule(
                    Rule::ActingPartnerIsParty,
                    format!("{discloser} holds no data in this case"),
                    "only the originator or a recipient discloses from a case",
                ));
            }
            for r in recipients {
                let granted = self
                    .onward
                    .values()
                    .any(|o| o.from == discloser && o.granted == Some(true) && o.to.contains(r));
                if !granted {
                    return Err(Refusal::rule(
                        Rule::OnwardSharingPermission,
                        format!(
                            "{discloser} received this data from {} and has no permission to pass it to {r}",
                            originator.unwrap_or_default()
                        ),
                        "record OnwardSharingRequested, and the originator's OnwardSharingGranted, first",
                    ));
                }
            }
        }
        Ok((marking.current == Some(false))
            .then(|| marking.maps_to.clone())
            .flatten())
    }
}

impl Aggregate for Case {
    const TYPE: &'static str = "case";
    type Command = CaseCommand;
    type Event = CaseEvent;
    type Error = Refusal;
    type Services = CaseServices;

    async fn handle(
        &mut self,
        command: Self::Command,
        services: &CaseServices,
        sink: &EventSink<Self>,
    ) -> Result<(), Refusal> {
        let at = command.micros()?;
        let actor = command.by.partner.clone();
        let partnership = &services.partnership;
        let reference = &services.reference;
        let mut extra = Vec::new();
        let mut fact = command.action.clone();
        match &command.action {
            CaseFact::InformationRequested {
                agreement,
                requester,
                holder,
                subjects,
                data_categories,
                purpose,
                lawful_bases,
                gateways,
                ..
            } => {
                if self.version > 0 {
                    return Err(refuse_order(
                        "this case already exists",
                        "open a new case for a new request",
                    ));
                }
                if *requester != actor {
                    return Err(Refusal::rule(
                        Rule::ActingPartnerIsParty,
                        format!("{actor} cannot request on behalf of {requester}"),
                        "the requester records its own request",
                    ));
                }
                partnership.check_party(agreement, requester)?;
                partnership.check_party(agreement, holder)?;
                if holder == requester {
                    return Err(Refusal::invalid(
                        "holder",
                        "a partner does not request from itself",
                    ));
                }
                require_text("purpose", purpose)?;
                if subjects.is_empty() {
                    return Err(Refusal::invalid("subjects", "name at least one subject"));
                }
                for s in subjects {
                    s.check_form()?;
                }
                for c in data_categories {
                    reference.data_categories.check(c)?;
                }
                if lawful_bases.is_empty() {
                    return Err(Refusal::rule(
                        Rule::LawfulBasisRequired,
                        "the request cites no lawful basis",
                        "cite the basis the requester relies on (e.g. uk-gdpr-6-1-e, dpa-2018-s35-2-b)",
                    ));
                }
                for c in lawful_bases {
                    reference.lawful_bases.check(c)?;
                }
                for g in gateways {
                    reference.gateways.check(g)?;
                }
            }
            CaseFact::SharingDecisionRecorded {
                decision,
                decided_by,
                necessary,
                proportionate,
                minimum_necessary,
                rationale,
            } => {
                let Some(holder) = &self.holder else {
                    return Err(refuse_order(
                        "there is no request to decide",
                        "record InformationRequested first",
                    ));
                };
                if self.decision.is_some() {
                    return Err(Refusal::rule(
                        Rule::CorrectionReferencesOriginal,
                        "this request already has a decision, and decisions are not edited",
                        "record CorrectionRecorded referencing the decision's version",
                    ));
                }
                if *holder != actor {
                    return Err(Refusal::rule(
                        Rule::ActingPartnerIsParty,
                        format!("only the holder {holder} decides"),
                        "the holder records its own decision",
                    ));
                }
                require_text("decided_by", decided_by)?;
                if rationale.as_deref().is_none_or(|r| r.trim().is_empty()) {
                    return Err(Refusal::invalid(
                        "rationale",
                        "a decision, to share or not, records its rationale",
                    ));
                }
                if *decision != Decision::Decline
                    && !(*necessary && *proportionate && *minimum_necessary)
                {
                    return Err(Refusal::rule(
                        Rule::NecessaryAndProportionate,
                        "sharing is recorded as not necessary, not proportionate or more than the minimum",
                        "decline, or share only what is necessary and proportionate",
                    ));
                }
            }
            CaseFact::DisclosureMade { .. } => {
                let handled_as = self.check_disclosure(&command, services)?;
                if let CaseFact::DisclosureMade { handled_as: h, .. } = &mut fact {
                    *h = handled_as;
                }
            }
            CaseFact::OnwardSharingRequested {
                onward,
                to,
                purpose,
            } => {
                require_text("onward", onward)?;
                require_text("purpose", purpose)?;
                if self.onward.contains_key(onward) {
                    return Err(Refusal::invalid(
                        "onward",
                        format!("{onward:?} already recorded"),
                    ));
                }
                if !self.received.contains_key(&actor) {
                    return Err(Refusal::rule(
                        Rule::ActingPartnerIsParty,
                        format!("{actor} received nothing in this case"),
                        "only a recipient asks to pass data on",
                    ));
                }
                if to.is_empty() {
                    return Err(Refusal::invalid("to", "name the intended recipients"));
                }
                for p in to {
                    partnership.partner("to", p)?;
                }
            }
            CaseFact::OnwardSharingGranted { onward }
            | CaseFact::OnwardSharingRefused { onward, .. } => {
                let Some(o) = self.onward.get(onward) else {
                    return Err(refuse_order(
                        format!("no onward-sharing request {onward:?}"),
                        "record OnwardSharingRequested first",
                    ));
                };
                if o.granted.is_some() {
                    return Err(refuse_order(
                        "this onward-sharing request was already answered",
                        "record a new request",
                    ));
                }
                if self.originator.as_deref() != Some(actor.as_str()) {
                    return Err(Refusal::rule(
                        Rule::OnwardSharingPermission,
                        format!(
                            "only the originator ({}) answers",
                            self.originator.clone().unwrap_or_default()
                        ),
                        "the originator records its answer",
                    ));
                }
            }
            CaseFact::RetentionReviewed {
                outcome,
                next_review_due,
                reason,
            } => {
                if !self.holds_data(&actor) {
                    return Err(Refusal::rule(
                        Rule::ActingPartnerIsParty,
                        format!("{actor} holds no data in this case"),
                        "the holder reviews its own records",
                    ));
                }
                if let Some(d) = next_review_due {
                    parse_day("next_review_due", d)?;
                }
                if *outcome == RetentionOutcome::Keep
                    && (reason.as_deref().is_none_or(|r| r.trim().is_empty())
                        || next_review_due.is_none())
                {
                    return Err(Refusal::invalid(
                        "reason",
                        "keeping data past its review needs a reason and a next review date",
                    ));
                }
            }
            CaseFact::RecordDisposed { method } => {
                require_text("method", method)?;
                if !self.holds_data(&actor) || self.disposed {
                    return Err(refuse_order(
                        "nothing of this case is held here to dispose of",
                        "dispose of records you hold",
                    ));
                }
            }
            CaseFact::RectificationApplied { fields, .. } => {
                if fields.is_empty() {
                    return Err(Refusal::invalid("fields", "name what was rectified"));
                }
                self.require_originator(&actor)?;
                extra = self.notices_for(NoticeKind::Rectification, &actor);
            }
            CaseFact::ErasureApplied { grounds }
            | CaseFact::ObjectionReceived { grounds }
            | CaseFact::RestrictionApplied { grounds } => {
                require_text("grounds", grounds)?;
                self.require_originator(&actor)?;
                let kind = match &command.action {
                    CaseFact::ErasureApplied { .. } => NoticeKind::Erasure,
                    CaseFact::RestrictionApplied { .. } => NoticeKind::Restriction,
                    _ => NoticeKind::Objection,
                };
                if kind == NoticeKind::Erasure && self.erased {
                    return Err(refuse_order("already erased", "nothing left to erase"));
                }
                extra = self.notices_for(kind, &actor);
            }
            CaseFact::RestrictionLifted {} => {
                self.require_originator(&actor)?;
                if !self.restricted {
                    return Err(refuse_order(
                        "processing is not restricted",
                        "lift only a restriction in force",
                    ));
                }
                extra = self.notices_for(NoticeKind::RestrictionLifted, &actor);
            }
            CaseFact::NoticeIssued { .. } => {
                return Err(Refusal::invalid(
                    "type",
                    "notices are issued by the rights events (RectificationApplied, ErasureApplied, RestrictionApplied, RestrictionLifted, ObjectionReceived)",
                ));
            }
            CaseFact::NoticeAcknowledged { notice } | CaseFact::NoticeExempted { notice, .. } => {
                let Some(n) = self.notices.get(notice) else {
                    return Err(Refusal::invalid(
                        "notice",
                        format!("no notice {notice:?} in this case"),
                    ));
                };
                if !n.open {
                    return Err(refuse_order(
                        format!("notice {notice:?} is already settled"),
                        "nothing more to record",
                    ));
                }
                let acknowledging = matches!(command.action, CaseFact::NoticeAcknowledged { .. });
                let who = if acknowledging {
                    &n.recipient
                } else {
                    &n.issuer
                };
                if *who != actor {
                    return Err(Refusal::rule(
                        Rule::ActingPartnerIsParty,
                        format!("only {who} may record this for notice {notice:?}"),
                        if acknowledging {
                            "the recipient acknowledges"
                        } else {
                            "the issuer records an exemption, with reasons"
                        },
                    ));
                }
                if let CaseFact::NoticeExempted { reasons, .. } = &command.action {
                    if reasons.as_deref().is_none_or(|r| r.trim().is_empty()) {
                        return Err(Refusal::invalid("reasons", "an Article 19 exemption (impossible or disproportionate effort) records its reasons"));
                    }
                }
            }
            CaseFact::CorrectionRecorded {
                corrects_version,
                correction,
            } => {
                if *corrects_version == 0 || *corrects_version > self.version {
                    return Err(Refusal::rule(
                        Rule::CorrectionReferencesOriginal,
                        format!(
                            "this case has no event at version {corrects_version} (it is at {})",
                            self.version
                        ),
                        "reference the stream version of the event being corrected",
                    ));
                }
                if correction.as_deref().is_none_or(|c| c.trim().is_empty()) {
                    return Err(Refusal::invalid(
                        "correction",
                        "say what the correct record is",
                    ));
                }
                if !self.holds_data(&actor) && self.requester.as_deref() != Some(actor.as_str()) {
                    return Err(Refusal::rule(
                        Rule::ActingPartnerIsParty,
                        format!("{actor} is not party to this case"),
                        "a party corrects its own records",
                    ));
                }
            }
        }
        let _ = at;
        sink.write(command.record(fact), self).await;
        for notice in extra {
            sink.write(command.record(notice), self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        self.version += 1;
        let actor = event.by.partner;
        match event.fact {
            CaseFact::InformationRequested {
                agreement,
                requester,
                holder,
                ..
            } => {
                self.agreement = Some(agreement);
                self.requester = Some(requester);
                self.originator = Some(holder.clone());
                self.holder = Some(holder);
            }
            CaseFact::SharingDecisionRecorded { decision, .. } => self.decision = Some(decision),
            CaseFact::DisclosureMade {
                disclosure,
                agreement,
                recipients,
                ..
            } => {
                self.agreement.get_or_insert(agreement);
                self.originator.get_or_insert(actor.clone());
                self.disclosures.insert(disclosure);
                for r in recipients {
                    self.received.entry(r).or_default().insert(actor.clone());
                }
            }
            CaseFact::OnwardSharingRequested { onward, to, .. } => {
                self.onward.insert(
                    onward,
                    Onward {
                        from: actor,
                        to,
                        granted: None,
                    },
                );
            }
            CaseFact::OnwardSharingGranted { onward } => {
                if let Some(o) = self.onward.get_mut(&onward) {
                    o.granted = Some(true);
                }
            }
            CaseFact::OnwardSharingRefused { onward, .. } => {
                if let Some(o) = self.onward.get_mut(&onward) {
                    o.granted = Some(false);
                }
            }
            CaseFact::RecordDisposed { .. } => self.disposed = true,
            CaseFact::ErasureApplied { .. } => self.erased = true,
            CaseFact::RestrictionApplied { .. } => self.restricted = true,
            CaseFact::RestrictionLifted {} => self.restricted = false,
            CaseFact::NoticeIssued {
                notice, recipient, ..
            } => {
                self.notices.insert(
                    notice,
                    Notice {
                        issuer: actor,
                        recipient,
                        open: true,
                    },
                );
            }
            CaseFact::NoticeAcknowledged { notice } | CaseFact::NoticeExempted { notice, .. } => {
                if let Some(n) = self.notices.get_mut(&notice) {
                    n.open = false;
                }
            }
            CaseFact::RetentionReviewed { .. }
            | CaseFact::RectificationApplied { .. }
            | CaseFact::ObjectionReceived { .. }
            | CaseFact::CorrectionRecorded { .. } => {}
        }
    }
}

impl Case {
    fn require_originator(&self, actor: &str) -> Result<(), Refusal> {
        if self.originator.as_deref() != Some(actor) {
            return Err(Refusal::rule(
                Rule::ActingPartnerIsParty,
                format!("{actor} is not the controller whose data this is"),
                format!(
                    "the originator ({}) applies data subject rights and notifies recipients",
                    self.originator.clone().unwrap_or_default()
                ),
            ));
        }
        Ok(())
    }
}
