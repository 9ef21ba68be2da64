//! A subject access request (UK GDPR Art 15; DPA 2018 s45 for Part 3), from receipt to
//! response. Stream `sar/{id}`. The originating partner is consulted before its data is
//! released; a clarification stops the clock; an extension is recorded before the first
//! deadline passes.
//!
//! The deadline here is the calendar one (one month from the latest of receipt and
//! identity verification, clamped to the month's end, plus the days the clock was
//! stopped). Rolling to a working day is the deadline projection's (issue 4) and only
//! ever makes the deadline later, so this rule errs on the side of an early extension.

use crate::pseudonym::SubjectRef;
use crate::recorded::{add_one_month, format_day, london_day, Command, Fact, Recorded};
use crate::refusal::{require_text, Refusal, Rule};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(schemars::JsonSchema, Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConsultationAnswer {
    Release,
    ReleaseRedacted,
    Withhold,
}

#[derive(schemars::JsonSchema, Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", deny_unknown_fields)]
pub enum SarFact {
    SubjectAccessRequestReceived {
        subject: SubjectRef,
        /// Law-enforcement processing (DPA 2018 Part 3) rather than UK GDPR.
        #[serde(default)]
        part_3: bool,
        channel: String,
    },
    SarIdentityVerified {},
    SarClarificationRequested {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        description: Option<String>,
    },
    SarClarificationReceived {},
    SarExtended {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        notice_sent_to_requester: bool,
    },
    SarPartnerConsulted {
        partner: String,
    },
    SarConsultationAnswered {
        answer: ConsultationAnswer,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reasons: Option<String>,
    },
    SarResponded {
        outcome: String,
    },
}

impl Fact for SarFact {
    const STREAM_KIND: &'static str = "sar";
}

pub type SarEvent = Recorded<SarFact>;
pub type SarCommand = Command<SarFact>;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Sar {
    pub controller: Option<String>,
    pub received_day: Option<i64>,
    pub identity_day: Option<i64>,
    pub paused_from: Option<i64>,
    pub paused_days: i64,
    pub extended: bool,
    /// Consulted partners and whether they have answered.
    pub consulted: BTreeMap<String, bool>,
    pub responded: bool,
}

impl Sar {
    /// The first deadline as a day number (see the module comment).
    pub fn first_deadline(&self) -> Option<i64> {
        let start = self
            .received_day?
            .max(self.identity_day.unwrap_or(i64::MIN));
        Some(add_one_month(start) + self.paused_days)
    }
}

fn order(problem: impl Into<String>, remedy: &str) -> Refusal {
    Refusal::rule(Rule::ProcessOrder, problem, remedy.to_string())
}

impl Aggregate for Sar {
    const TYPE: &'static str = "sar";
    type Command = SarCommand;
    type Event = SarEvent;
    type Error = Refusal;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), Refusal> {
        let day = london_day(command.micros()?);
        let actor = command.by.partner.as_str();
        if let SarFact::SubjectAccessRequestReceived {
            subject, channel, ..
        } = &command.action
        {
            if self.controller.is_some() {
                return Err(order("this SAR is already recorded", "use a new SAR id"));
            }
            subject.check_form()?;
            require_text("channel", channel)?;
            sink.write(command.record(command.action.clone()), self)
                .await;
            return Ok(());
        }
        let Some(controller) = self.controller.clone() else {
            return Err(order(
                "no SAR is recorded under this id",
                "record SubjectAccessRequestReceived first",
            ));
        };
        if self.responded {
            return Err(order(
                "the SAR has been answered",
                "nothing is recorded after SarResponded",
            ));
        }
        let is_controller = actor == controller;
        match &command.action {
            SarFact::SubjectAccessRequestReceived { .. } => {}
            SarFact::SarConsultationAnswered { reasons, answer } => {
                match self.consulted.get(actor) {
                    Some(false) => {}
                    Some(true) => {
                        return Err(order(
                            format!("{actor} has already answered"),
                            "one answer per consultation",
                        ))
                    }
                    None => {
                        return Err(Refusal::rule(
                            Rule::ActingPartnerIsParty,
                            format!("{actor} was not consulted on this SAR"),
                            "only a consulted partner answers",
                        ))
                    }
                }
                if *answer != ConsultationAnswer::Release
                    && reasons.as_deref().is_none_or(|r| r.trim().is_empty())
                {
                    return Err(Refusal::invalid(
                        "reasons",
                        "withholding or redacting needs reasons (the exemption relied on)",
                    ));
                }
            }
            _ if !is_controller => {
                return Err(Refusal::rule(
                    Rule::ActingPartnerIsParty,
                    format!("{controller} handles this SAR"),
                    "the controller that received it records its progress",
                ))
            }
            SarFact::SarIdentityVerified {} => {
                if self.identity_day.is_some() {
                    return Err(order("identity is already verified", "nothing to add"));
                }
            }
            SarFact::SarClarificationRequested { .. } => {
                if self.paused_from.is_some() {
                    return Err(order(
                        "a clarification is already awaited",
                        "record SarClarificationReceived first",
                    ));
                }
            }
            SarFact::SarClarificationReceived {} => {
                if self.paused_from.is_none() {
                    return Err(order(
                        "no clarification was requested",
                        "record SarClarificationRequested first",
                    ));
                }
            }
            SarFact::SarExtended {
                reason,
                notice_sent_to_requester,
            } => {
                if self.extended {
                    return Err(order(
                        "the SAR is already extended",
                        "an extension is made once",
                    ));
                }
                if reason.as_deref().is_none_or(|r| r.trim().is_empty())
                    || !notice_sent_to_requester
                {
                    return Err(Refusal::invalid(
                        "reason",
                        "an extension gives its reason and is notified to the requester",
                    ));
                }
                let deadline = self.first_deadline().unwrap_or(i64::MAX);
                if self.paused_from.is_none() && day > deadline {
                    return Err(Refusal::rule(
                        Rule::SarExtensionBeforeDeadline,
                        format!("the first deadline, {}, has passed", format_day(deadline)),
                        "an extension must be recorded on or before the first deadline; respond now",
                    ));
                }
            }
            SarFact::SarPartnerConsulted { partner } => {
                if partner == actor || self.consulted.contains_key(partner) {
                    return Err(Refusal::invalid(
                        "partner",
                        format!("{partner} cannot be consulted (itself, or already consulted)"),
                    ));
                }
            }
            SarFact::SarResponded { outcome } => {
                require_text("outcome", outcome)?;
                if let Some((p, _)) = self.consulted.iter().find(|(_, answered)| !**answered) {
                    return Err(Refusal::rule(
                        Rule::ProcessOrder,
                        format!("{p} was consulted and has not answered"),
                        "the originating partner answers before its data is released",
                    ));
                }
            }
        }
        sink.write(command.record(command.action.clone()), self)
            .await;
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        let day = london_day(event.micros());
        match event.fact {
            SarFact::SubjectAccessRequestReceived { .. } => {
                self.controller = Some(event.by.partner);
                self.received_day = Some(day);
            }
            SarFact::SarIdentityVerified {} => self.identity_day = Some(day),
            SarFact::SarClarificationRequested { .. } => self.paused_from = Some(day),
            SarFact::SarClarificationReceived {} => {
                if let Some(from) = self.paused_from.take() {
                    self.paused_days += day - from;
                }
            }
            SarFact::SarExtended { .. } => self.extended = true,
            SarFact::SarPartnerConsulted { partner } => {
                self.consulted.insert(partner, false);
            }
            SarFact::SarConsultationAnswered { .. } => {
                self.consulted.insert(event.by.partner, true);
            }
            SarFact::SarResponded { .. } => self.responded = true,
        }
    }
}
