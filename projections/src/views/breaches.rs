//! The breach board: each personal-data breach with its 72-hour clock (UK GDPR Art 33,
//! DPA 2018 s67), assessed risk, partners alerted, ICO reports (late ones with whether
//! reasons for delay were given), subjects notified (Art 34), investigation and closure.

use super::{narrative_entry, DeadlineRecord};
use crate::logged::Logged;
use crate::view::{Columns, Context, Rows, Touch, View};
use deadlines::rules::{From, Inputs, Rule};
use domain::breach::{BreachFact, BreachNature, IcoReportKind, Risk};
use domain::event::DomainEvent;
use ledger::timestamp::parse_utc;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

pub struct Breaches;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BreachRow {
    pub breach: String,
    /// The controller that detected it and must report it.
    pub reported_by: String,
    pub detected_entry: u64,
    pub became_aware_at: String,
    pub occurred_at: Option<String>,
    pub nature: Vec<BreachNature>,
    pub data_categories: Vec<String>,
    pub subject_categories: Vec<String>,
    pub approximate_subjects: u64,
    pub approximate_records: u64,
    /// When the ICO must have been told: became aware + 72 hours.
    pub deadline: DeadlineRecord,
    pub risk: Option<Risk>,
    pub assessed_at: Option<String>,
    pub alerts: Vec<Alert>,
    pub ico_reports: Vec<IcoReport>,
    pub decided_not_to_report: Option<NotReported>,
    pub subjects_notified: Option<SubjectsNotified>,
    pub investigation_concluded_at: Option<String>,
    pub closed_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    pub partner: String,
    pub at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IcoReport {
    pub report: IcoReportKind,
    pub ico_reference: String,
    pub at: String,
    /// Made after the 72-hour deadline.
    pub late: bool,
    /// The entry holding the reasons for delay, if given (while its content exists).
    pub reasons_for_delay_entry: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NotReported {
    pub at: String,
    pub rationale_entry: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubjectsNotified {
    pub at: String,
    pub method: String,
    pub subjects_notified: u64,
    /// Art 34 sets no fixed period; the board shows how long it took.
    pub hours_after_aware: f64,
}

impl BreachRow {
    pub fn status(&self) -> &'static str {
        if self.closed_at.is_some() {
            "closed"
        } else if self
            .ico_reports
            .iter()
            .any(|r| r.report == IcoReportKind::Initial)
        {
            "reported"
        } else if self.decided_not_to_report.is_some() {
            "not-reportable"
        } else {
            "awaiting-report"
        }
    }
}

fn breach_event(event: &Logged) -> Option<&BreachFact> {
    match &event.event {
        Some(DomainEvent::Breach(r)) => Some(&r.fact),
        _ => None,
    }
}

fn hours_between(from: &str, to: &str) -> f64 {
    match (parse_utc(from), parse_utc(to)) {
        (Some(a), Some(b)) => ((b - a) as f64 / 3.6e9 * 100.0).round() / 100.0,
        _ => 0.0,
    }
}

impl View for Breaches {
    const NAME: &'static str = "breaches";
    const VERSION: u32 = 1;
    type Row = BreachRow;

    fn touches(event: &Logged) -> Touch {
        match breach_event(event) {
            Some(_) => Touch::Keys(vec![event.stream.clone()]),
            None => Touch::Nothing,
        }
    }

    fn apply(ctx: &Context<'_>, event: &Logged, rows: &mut Rows<BreachRow>) -> Result<(), String> {
        let Some(DomainEvent::Breach(recorded)) = &event.event else {
            return Ok(());
        };
        let at = recorded.at.clone();
        let key = &event.stream;
        if let BreachFact::BreachDetected {
            became_aware_at,
            occurred_at,
            nature,
            data_categories,
            subject_categories,
            approximate_subjects,
            approximate_records,
            ..
        } = &recorded.fact
        {
            let aware = parse_utc(became_aware_at).unwrap_or(0);
            let deadline =
                DeadlineRecord::computed(Rule::Breach, &Inputs::new(From::Instant(aware)), ctx);
            rows.insert(
                key.clone(),
                BreachRow {
                    breach: event.stream_id().to_string(),
                    reported_by: recorded.by.partner.clone(),
                    detected_entry: event.seq,
                    became_aware_at: became_aware_at.clone(),
                    occurred_at: occurred_at.clone(),
                    nature: nature.clone(),
                    data_categories: data_categories.clone(),
                    subject_categories: subject_categories.clone(),
                    approximate_subjects: *approximate_subjects,
                    approximate_records: *approximate_records,
                    deadline,
                    risk: None,
                    assessed_at: None,
                    alerts: Vec::new(),
                    ico_reports: Vec::new(),
                    decided_not_to_report: None,
                    subjects_notified: None,
                    investigation_concluded_at: None,
                    closed_at: None,
                },
            );
            return Ok(());
        }
        let row = rows.expect_mut(key, event)?;
        match &recorded.fact {
            BreachFact::BreachDetected { .. } => {}
            BreachFact::BreachAssessed { risk, .. } => {
                row.risk = Some(*risk);
                row.assessed_at = Some(at);
            }
            BreachFact::BreachPartnersAlerted { partners } => {
                for partner in partners {
                    row.alerts.push(Alert {
                        partner: partner.clone(),
                        at: at.clone(),
                    });
                }
            }
            BreachFact::BreachReportedToIco {
                report,
                ico_reference,
                ..
            } => {
                // Only the initial report has the 72-hour deadline; follow-ups come
                // as the investigation finds more.
                let late = *report == IcoReportKind::Initial
                    && match (&row.deadline.due, parse_utc(&at)) {
                        (Some(due), Some(at)) => parse_utc(due).is_some_and(|due| at > due),
                        _ => false,
                    };
                row.ico_reports.push(IcoReport {
                    report: *report,
                    ico_reference: ico_reference.clone(),
                    at,
                    late,
                    reasons_for_delay_entry: narrative_entry(event),
                });
            }
            BreachFact::BreachDecidedNotToReport { .. } => {
                row.decided_not_to_report = Some(NotReported {
                    at,
                    rationale_entry: narrative_entry(event),
                });
            }
            BreachFact::BreachSubjectsNotified {
                method,
                subjects_notified,
            } => {
                row.subjects_notified = Some(SubjectsNotified {
                    hours_after_aware: hours_between(&row.became_aware_at, &at),
                    at,
                    method: method.clone(),
                    subjects_notified: *subjects_notified,
                });
            }
            BreachFact::BreachInvestigationConcluded { .. } => {
                row.investigation_concluded_at = Some(at);
            }
            BreachFact::BreachClosed {} => row.closed_at = Some(at),
        }
        Ok(())
    }

    fn columns(row: &BreachRow) -> Columns {
        let status = row.status();
        let mut parties: BTreeSet<String> = row.alerts.iter().map(|a| a.partner.clone()).collect();
        parties.insert(row.reported_by.clone());
        Columns {
            partner: Some(row.reported_by.clone()),
            status: status.to_string(),
            due: (status == "awaiting-report")
                .then(|| row.deadline.due.clone())
                .flatten(),
            subject: None,
            parties,
        }
    }
}
