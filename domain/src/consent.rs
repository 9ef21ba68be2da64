//! Consent to share: given (with its scope of recipients and purposes), withdrawn, or
//! refused. One stream per consent (`consent/{id}`); a disclosure relying on consent
//! names it, and the disclosure's rules read it.

use crate::pseudonym::SubjectRef;
use crate::recorded::{parse_day, Command, Fact, Recorded};
use crate::refusal::{Refusal, Rule};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};

#[derive(schemars::JsonSchema, Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GivenBy {
    Subject,
    Parent,
    Guardian,
    Carer,
    Attorney,
}

#[derive(schemars::JsonSchema, Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", deny_unknown_fields)]
pub enum ConsentFact {
    ConsentRecorded {
        consent: String,
        subject: SubjectRef,
        recipients: Vec<String>,
        purposes: Vec<String>,
        given_by: GivenBy,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        witnessed_by: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expires_on: Option<String>,
    },
    ConsentWithdrawn {
        consent: String,
    },
    ConsentRefused {
        consent: String,
        subject: SubjectRef,
        recipients: Vec<String>,
        purposes: Vec<String>,
    },
}

impl Fact for ConsentFact {
    const STREAM_KIND: &'static str = "consent";
}

pub type ConsentEvent = Recorded<ConsentFact>;
pub type ConsentCommand = Command<ConsentFact>;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConsentStatus {
    #[default]
    Unknown,
    Live,
    Withdrawn,
    Refused,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Consent {
    pub id: String,
    pub status: ConsentStatus,
    pub subject: Option<SubjectRef>,
    pub recipients: Vec<String>,
    pub purposes: Vec<String>,
    pub expires_day: Option<i64>,
    pub recorded_by: String,
}

impl Consent {
    /// Is this consent live on `day` and does it cover `recipient` for `purpose`?
    pub fn check_covers(&self, recipient: &str, purpose: &str, day: i64) -> Result<(), Refusal> {
        let id = &self.id;
        let refuse = |problem: String, remedy: &str| {
            Err(Refusal::rule(
                Rule::ConsentLiveAndCovering,
                problem,
                remedy.to_string(),
            ))
        };
        match self.status {
            ConsentStatus::Live => {}
            ConsentStatus::Unknown => {
                return refuse(format!("no consent {id:?} is recorded"), "record the consent first, or share without consent giving the reason and who decided")
            }
            ConsentStatus::Withdrawn => {
                return refuse(format!("consent {id:?} was withdrawn"), "do not rely on it; share without consent only if a reason and a decision-maker allow it")
            }
            ConsentStatus::Refused => {
                return refuse(format!("consent {id:?} was refused"), "share without consent only if a reason and a decision-maker allow it")
            }
        }
        if self.expires_day.is_some_and(|end| day > end) {
            return refuse(
                format!("consent {id:?} has expired"),
                "record a fresh consent",
            );
        }
        if !self.recipients.iter().any(|r| r == recipient) {
            return refuse(
                format!(
                    "consent {id:?} does not cover recipient {recipient} (covers {})",
                    self.recipients.join(", ")
                ),
                "record a consent whose scope includes this recipient",
            );
        }
        if !self.purposes.iter().any(|p| p == purpose) {
            return refuse(
                format!("consent {id:?} does not cover the purpose {purpose:?}"),
                "record a consent whose scope includes this purpose",
            );
        }
        Ok(())
    }
}

impl Aggregate for Consent {
    const TYPE: &'static str = "consent";
    type Command = ConsentCommand;
    type Event = ConsentEvent;
    type Error = Refusal;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), Refusal> {
        command.micros()?;
        match &command.action {
            ConsentFact::ConsentRecorded {
                subject,
                recipients,
                purposes,
                ..
            }
            | ConsentFact::ConsentRefused {
                subject,
                recipients,
                purposes,
                ..
            } if self.status == ConsentStatus::Unknown => {
                subject.check_form()?;
                if recipients.is_empty() || purposes.is_empty() {
                    return Err(Refusal::invalid(
                        "recipients",
                        "a consent's scope names recipients and purposes",
                    ));
                }
                if let ConsentFact::ConsentRecorded {
                    expires_on: Some(day),
                    ..
                } = &command.action
                {
                    parse_day("expires_on", day)?;
                }
            }
            ConsentFact::ConsentWithdrawn { .. } if self.status == ConsentStatus::Live => {}
            _ => {
                return Err(Refusal::rule(
                    Rule::ProcessOrder,
                    format!("consent {:?} is {:?}", self.id, self.status),
                    "record a consent once; withdraw only a live one",
                ))
            }
        }
        sink.write(command.record(command.action.clone()), self)
            .await;
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event.fact {
            ConsentFact::ConsentRecorded {
                consent,
                subject,
                recipients,
                purposes,
                expires_on,
                ..
            } => {
                *self = Consent {
                    id: consent,
                    status: ConsentStatus::Live,
                    subject: Some(subject),
                    recipients,
                    purposes,
                    expires_day: expires_on.and_then(|d| parse_day("expires_on", &d).ok()),
                    recorded_by: event.by.partner,
                }
            }
            ConsentFact::ConsentWithdrawn { .. } => self.status = ConsentStatus::Withdrawn,
            ConsentFact::ConsentRefused {
                consent, subject, ..
            } => {
                self.id = consent;
                self.subject = Some(subject);
                self.status = ConsentStatus::Refused;
            }
        }
    }
}
