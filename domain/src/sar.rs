//! A subject access request (UK GDPR Art 15; DPA 2018 s45 for Part 3), from receipt to
//! response. Stream `sar/{id}`. The originating partner is consulted before its data is
//! released; a clarification stops the clock; an extension is recorded before the first
//! deadline passes.
//!
//! The first deadline is the one the SAR queue shows as `extension_notice_due`, worked
//! out by the same rule (`deadlines`) under the same settings: one month from the
//! latest of receipt and identity verification (the day after for a Part 3 SAR if the
//! settings say so), clamped to the month's end, plus the days the clock was stopped
//! (both ends counted), rolled to a working day in the controller's division. Where
//! no deadline can be worked out (a date outside the bank-holiday calendar's years),
//! the queue shows none and the extension is not refused: the log records what was
//! done, and the queue explains why it has no date.

use crate::pseudonym::SubjectRef;
use crate::recorded::{format_day, london_day, Command, Fact, Recorded};
use crate::refusal::{require_text, Refusal, Rule};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use deadlines::rules::{self, From, Inputs};
use deadlines::{Calendar, Day, Due, Settings};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

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
    /// Law-enforcement processing (DPA 2018 Part 3).
    pub part_3: bool,
    pub received_day: Option<i64>,
    pub identity_day: Option<i64>,
    pub paused_from: Option<i64>,
    /// Closed clarification pauses, both days counted.
    pub pauses: Vec<(i64, i64)>,
    pub extended: bool,
    /// Consulted partners and whether they have answered.
    pub consulted: BTreeMap<String, bool>,
    pub responded: bool,
}

impl Sar {
    /// The first deadline (see the module comment) as a day number, with the rule's
    /// explanation of it, counting closed pauses only; `None` before the SAR is
    /// received or where the rule cannot work it out (as the SAR queue shows it).
    pub fn first_deadline(&self, settings: &Settings) -> Option<(i64, String)> {
        let (Some(controller), Some(received)) = (&self.controller, self.received_day) else {
            return None;
        };
        let rule = if self.part_3 {
            rules::Rule::SarPart3
        } else {
            rules::Rule::Sar
        };
        let mut inputs = Inputs::new(From::Day(Day(received)));
        inputs.division = settings.division(controller);
        inputs.part3_start = settings.part3_start;
        inputs.identity_received = self.identity_day.map(Day);
        inputs.paused = self.pauses.iter().map(|&(a, b)| (Day(a), Day(b))).collect();
        let deadline = rules::compute(rule, &inputs, Calendar::shipped()).ok()?;
        match deadline.due {
            Due::Day(day) => Some((day.0, deadline.explanation)),
            // Unreachable: a rights request's rule always ends on a day.
            Due::Instant(_) => None,
        }
    }
}

/// What a SAR's rules need beyond its own stream: the partnership's deadline settings.
pub type SarServices = Arc<Settings>;

fn order(problem: impl Into<String>, remedy: &str) -> Refusal {
    Refusal::rule(Rule::ProcessOrder, problem, remedy.to_string())
}

impl Aggregate for Sar {
    const TYPE: &'static str = "sar";
    type Command = SarCommand;
    type Event = SarEvent;
    type Error = Refusal;
    type Services = SarServices;

    async fn handle(
        &mut self,
        command: Self::Command,
        settings: &SarServices,
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
                if self.received_day.is_some_and(|received| day < received) {
                    return Err(order(
                        "a clarification cannot be requested before the SAR was received",
                        "date the request on or after the day the SAR arrived",
                    ));
                }
                if self.paused_from.is_some() {
                    return Err(order(
                        "a clarification is already awaited",
                        "record SarClarificationReceived first",
                    ));
                }
            }
            SarFact::SarClarificationReceived {} => match self.paused_from {
                None => {
                    return Err(order(
                        "no clarification was requested",
                        "record SarClarificationRequested first",
                    ))
                }
                Some(from) if day < from => {
                    return Err(order(
                        format!(
                            "the clarification was requested on {}, after {}",
                            format_day(from),
                            format_day(day)
                        ),
                        "a clarification is received on or after the day it was requested",
                    ))
                }
                Some(_) => {}
            },
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
                // While a clarification is awaited the clock is stopped: what counts is
                // whether it had run out on the day it stopped. (Once the pause closes,
                // its days move the deadline past the day it closed, so an extension
                // made during the pause stays in time.)
                if let Some((deadline, why)) = self.first_deadline(settings) {
                    let (counted, stopped) = match self.paused_from {
                        Some(from) => (
                            from,
                            format!(" when the clock stopped on {}", format_day(from)),
                        ),
                        None => (day, String::new()),
                    };
                    if counted > deadline {
                        return Err(Refusal::rule(
                            Rule::SarExtensionBeforeDeadline,
                            format!(
                                "the first deadline, {}, had passed{stopped} ({why})",
                                format_day(deadline)
                            ),
                            "an extension must be recorded on or before the first deadline; respond now",
                        ));
                    }
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
            SarFact::SubjectAccessRequestReceived { part_3, .. } => {
                self.controller = Some(event.by.partner);
                self.part_3 = part_3;
                self.received_day = Some(day);
            }
            SarFact::SarIdentityVerified {} => self.identity_day = Some(day),
            SarFact::SarClarificationRequested { .. } => self.paused_from = Some(day),
            SarFact::SarClarificationReceived {} => {
                if let Some(from) = self.paused_from.take() {
                    self.pauses.push((from, day));
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
