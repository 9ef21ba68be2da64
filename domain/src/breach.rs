//! A personal-data breach (UK GDPR Art 33/34; DPA 2018 s67/s68), from detection to
//! closure. Stream `breach/{id}`. The 72-hour clock runs from when the controller became
//! aware; a report to the ICO after it must say why it is late.

use crate::recorded::{Command, Fact, Recorded};
use crate::reference::Reference;
use crate::refusal::{require_text, Refusal, Rule};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use ledger::timestamp::{self, Micros};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Art 33(1): without undue delay and, where feasible, not later than 72 hours.
pub const ICO_DEADLINE_MICROS: Micros = 72 * 3_600 * 1_000_000;

#[derive(schemars::JsonSchema, Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Risk {
    NoRisk,
    Risk,
    HighRisk,
}

#[derive(schemars::JsonSchema, Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BreachNature {
    Confidentiality,
    Integrity,
    Availability,
}

#[derive(schemars::JsonSchema, Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IcoReportKind {
    Initial,
    FollowUp,
}

#[derive(schemars::JsonSchema, Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", deny_unknown_fields)]
pub enum BreachFact {
    BreachDetected {
        became_aware_at: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        occurred_at: Option<String>,
        nature: Vec<BreachNature>,
        data_categories: Vec<String>,
        subject_categories: Vec<String>,
        approximate_subjects: u64,
        approximate_records: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        description: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        likely_consequences: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        containment: Option<String>,
    },
    BreachAssessed {
        risk: Risk,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rationale: Option<String>,
    },
    BreachPartnersAlerted {
        partners: Vec<String>,
    },
    BreachReportedToIco {
        report: IcoReportKind,
        ico_reference: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reasons_for_delay: Option<String>,
    },
    BreachDecidedNotToReport {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rationale: Option<String>,
    },
    BreachSubjectsNotified {
        method: String,
        subjects_notified: u64,
    },
    BreachInvestigationConcluded {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        findings: Option<String>,
    },
    BreachClosed {},
}

impl Fact for BreachFact {
    const STREAM_KIND: &'static str = "breach";
}

pub type BreachEvent = Recorded<BreachFact>;
pub type BreachCommand = Command<BreachFact>;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Breach {
    pub controller: Option<String>,
    pub became_aware: Option<Micros>,
    pub risk: Option<Risk>,
    pub reported: bool,
    pub decided_not_to_report: bool,
    pub closed: bool,
}

fn order(problem: impl Into<String>, remedy: &str) -> Refusal {
    Refusal::rule(Rule::ProcessOrder, problem, remedy.to_string())
}

fn missing(value: &Option<String>) -> bool {
    value.as_deref().is_none_or(|v| v.trim().is_empty())
}

impl Aggregate for Breach {
    const TYPE: &'static str = "breach";
    type Command = BreachCommand;
    type Event = BreachEvent;
    type Error = Refusal;
    type Services = Arc<Reference>;

    async fn handle(
        &mut self,
        command: Self::Command,
        reference: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Refusal> {
        let at = command.micros()?;
        let actor = command.by.partner.as_str();
        if let BreachFact::BreachDetected {
            became_aware_at,
            occurred_at,
            nature,
            data_categories,
            subject_categories,
            ..
        } = &command.action
        {
            if self.controller.is_some() {
                return Err(order(
                    "this breach is already recorded",
                    "record a new breach id",
                ));
            }
            let aware = timestamp::parse_utc(became_aware_at).ok_or_else(|| {
                Refusal::invalid("became_aware_at", "not an RFC 3339 UTC instant")
            })?;
            if let Some(o) = occurred_at {
                let occurred = timestamp::parse_utc(o).ok_or_else(|| {
                    Refusal::invalid("occurred_at", "not an RFC 3339 UTC instant")
                })?;
                if occurred > aware {
                    return Err(Refusal::invalid(
                        "occurred_at",
                        "a breach cannot occur after the controller became aware of it",
                    ));
                }
            }
            if aware > at {
                return Err(Refusal::invalid(
                    "became_aware_at",
                    "later than the detection being recorded",
                ));
            }
            if nature.is_empty() || subject_categories.is_empty() {
                return Err(Refusal::invalid(
                    "nature",
                    "say what kind of breach and which categories of subject",
                ));
            }
            for c in data_categories {
                reference.data_categories.check(c)?;
            }
            sink.write(command.record(command.action.clone()), self)
                .await;
            return Ok(());
        }
        let Some(controller) = self.controller.clone() else {
            return Err(order(
                "no breach is recorded under this id",
                "record BreachDetected first",
            ));
        };
        if self.closed {
            return Err(order(
                "the breach is closed",
                "nothing is recorded after BreachClosed; open a new breach if needed",
            ));
        }
        let aware = self.became_aware.unwrap_or(at);
        match &command.action {
            BreachFact::BreachDetected { .. } => {}
            BreachFact::BreachAssessed { rationale, .. } => {
                if missing(rationale) {
                    return Err(Refusal::invalid(
                        "rationale",
                        "an assessment records why the risk is what it is",
                    ));
                }
            }
            BreachFact::BreachPartnersAlerted { partners } => {
                if partners.is_empty() || partners.iter().any(|p| p == actor) {
                    return Err(Refusal::invalid(
                        "partners",
                        "name the affected partners alerted (not the controller itself)",
                    ));
                }
            }
            BreachFact::BreachReportedToIco {
                report,
                ico_reference,
                reasons_for_delay,
            } => {
                require_text("ico_reference", ico_reference)?;
                if actor != controller {
                    return Err(Refusal::rule(
                        Rule::ActingPartnerIsParty,
                        format!("the controller {controller} reports its breach"),
                        "the controller records its report",
                    ));
                }
                if *report == IcoReportKind::Initial {
                    if self.reported {
                        return Err(order(
                            "the initial report is already recorded",
                            "record a follow-up report",
                        ));
                    }
                    if at > aware + ICO_DEADLINE_MICROS && missing(reasons_for_delay) {
                        let hours = (at - aware) / 3_600_000_000;
                        return Err(Refusal::rule(
                            Rule::LateIcoReportReasons,
                            format!("the report is made {hours} hours after the controller became aware, past the 72-hour deadline"),
                            "give reasons_for_delay (UK GDPR Art 33(1))",
                        ));
                    }
                } else if !self.reported {
                    return Err(order(
                        "no initial report yet",
                        "record the initial report first",
                    ));
                }
            }
            BreachFact::BreachDecidedNotToReport { rationale } => {
                if self.reported {
                    return Err(order(
                        "the breach was already reported",
                        "a reported breach is not un-reported",
                    ));
                }
                if missing(rationale) {
                    return Err(Refusal::invalid(
                        "rationale",
                        "Art 33(5): a decision not to report records its reasoning",
                    ));
                }
                if self.risk != Some(Risk::NoRisk) {
                    return Err(Refusal::rule(
                        Rule::ProcessOrder,
                        "only a breach assessed as unlikely to result in a risk is not reported",
                        "record BreachAssessed with risk no-risk first, or report to the ICO",
                    ));
                }
            }
            BreachFact::BreachSubjectsNotified { method, .. } => require_text("method", method)?,
            BreachFact::BreachInvestigationConcluded { findings } => {
                if missing(findings) {
                    return Err(Refusal::invalid(
                        "findings",
                        "record what the investigation found",
                    ));
                }
            }
            BreachFact::BreachClosed {} => {
                if !self.reported && !self.decided_not_to_report {
                    return Err(order(
                        "the breach was neither reported nor decided not reportable",
                        "record BreachReportedToIco or BreachDecidedNotToReport first",
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
            BreachFact::BreachDetected {
                became_aware_at, ..
            } => {
                self.controller = Some(event.by.partner);
                self.became_aware = timestamp::parse_utc(&became_aware_at);
            }
            BreachFact::BreachAssessed { risk, .. } => self.risk = Some(risk),
            BreachFact::BreachReportedToIco { .. } => self.reported = true,
            BreachFact::BreachDecidedNotToReport { .. } => self.decided_not_to_report = true,
            BreachFact::BreachClosed {} => self.closed = true,
            _ => {}
        }
    }
}
