//! Why a command was refused. Every refusal says what is wrong and what would satisfy
//! it; a rule refusal also names the rule by a stable identifier, which the HTTP service
//! will turn into a problem `type` URI and the command line prints as it is.

use serde::Serialize;
use std::fmt;

/// The rules of DESIGN §3 enforced at command time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rule {
    /// A disclosure names an Article 6 (or DPA 2018 Part 3) lawful basis.
    LawfulBasisRequired,
    /// Special category data names an Art 9 condition (and Schedule 1 where Art 9 needs it).
    SpecialCategoryCondition,
    /// Criminal offence data names its Art 10 authorisation: a Schedule 1 condition.
    CriminalOffenceCondition,
    /// Without consent: the reason and who decided.
    ReasonWithoutConsent,
    /// Relying on consent: a consent that is live and covers the recipient and purpose.
    ConsentLiveAndCovering,
    /// Recipients are signatories of the agreement or signed the meeting's declaration.
    RecipientIsSignatory,
    /// A suspended partner receives nothing.
    RecipientNotSuspended,
    /// A recipient passes data on only with the originator's permission.
    OnwardSharingPermission,
    /// An ICO report after the 72-hour deadline carries reasons for the delay.
    LateIcoReportReasons,
    /// A SAR extension is recorded before the first deadline passes.
    SarExtensionBeforeDeadline,
    /// Sharing is necessary, proportionate and limited to the minimum necessary.
    NecessaryAndProportionate,
    /// Nothing is edited: a correction is a new event that references the original.
    CorrectionReferencesOriginal,
    /// The acting partner is one the agreement binds and may act here.
    ActingPartnerIsParty,
    /// The order of a process (e.g. a decision needs a request; nothing after closing).
    ProcessOrder,
}

impl Rule {
    pub fn id(&self) -> &'static str {
        match self {
            Rule::LawfulBasisRequired => "lawful-basis-required",
            Rule::SpecialCategoryCondition => "special-category-condition",
            Rule::CriminalOffenceCondition => "criminal-offence-condition",
            Rule::ReasonWithoutConsent => "reason-without-consent",
            Rule::ConsentLiveAndCovering => "consent-live-and-covering",
            Rule::RecipientIsSignatory => "recipient-is-signatory",
            Rule::RecipientNotSuspended => "recipient-not-suspended",
            Rule::OnwardSharingPermission => "onward-sharing-permission",
            Rule::LateIcoReportReasons => "late-ico-report-reasons",
            Rule::SarExtensionBeforeDeadline => "sar-extension-before-deadline",
            Rule::NecessaryAndProportionate => "necessary-and-proportionate",
            Rule::CorrectionReferencesOriginal => "correction-references-original",
            Rule::ActingPartnerIsParty => "acting-partner-is-party",
            Rule::ProcessOrder => "process-order",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

/// A command refused. Nothing is written when a command is refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Refusal {
    #[error("refused by rule {rule}: {problem}. To proceed: {remedy}")]
    Rule {
        rule: Rule,
        problem: String,
        remedy: String,
    },
    #[error("unknown {kind} {code:?}; valid codes: {}", valid.join(", "))]
    UnknownCode {
        kind: String,
        code: String,
        valid: Vec<String>,
    },
    #[error("field {field}: {problem}")]
    Invalid { field: String, problem: String },
}

impl Refusal {
    pub fn rule(rule: Rule, problem: impl Into<String>, remedy: impl Into<String>) -> Refusal {
        Refusal::Rule {
            rule,
            problem: problem.into(),
            remedy: remedy.into(),
        }
    }

    pub fn invalid(field: &str, problem: impl Into<String>) -> Refusal {
        Refusal::Invalid {
            field: field.to_string(),
            problem: problem.into(),
        }
    }

    /// The rule that refused, if a rule did.
    pub fn rule_id(&self) -> Option<&'static str> {
        match self {
            Refusal::Rule { rule, .. } => Some(rule.id()),
            _ => None,
        }
    }
}

/// Refuses an empty or whitespace-only required text.
pub fn require_text(field: &str, value: &str) -> Result<(), Refusal> {
    if value.trim().is_empty() {
        return Err(Refusal::invalid(field, "must not be empty"));
    }
    Ok(())
}
