//! The SAR queue: each subject access request with its start, due date (one month, or
//! three when extended, from the latest of request and identity; clarification pauses
//! added), when the extension notice is due by, the partners consulted and their
//! answers, and the response.

use super::{day_of, request_inputs, DeadlineRecord};
use crate::logged::Logged;
use crate::view::{Columns, Context, Rows, Touch, View};
use deadlines::{Day, Rule};
use domain::event::DomainEvent;
use domain::sar::{ConsultationAnswer, SarFact};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

pub struct Sars;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SarRow {
    pub sar: String,
    pub received_by: String,
    pub subject: String,
    pub part_3: bool,
    pub channel: String,
    pub received_at: String,
    pub received_on: String,
    pub identity_verified_on: Option<String>,
    pub pauses: Vec<Pause>,
    pub extended: Option<Extension>,
    pub consultations: Vec<Consultation>,
    pub responded: Option<Responded>,
    pub deadline: DeadlineRecord,
    /// The first month's deadline: an extension must be recorded and notified by then.
    pub extension_notice_due: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pause {
    /// Clarification requested (inclusive).
    pub from: String,
    /// Clarification received (inclusive); open while `None`.
    pub to: Option<String>,
    pub request_entry: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Extension {
    pub at: String,
    pub notice_sent_to_requester: bool,
    pub reason_entry: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Consultation {
    pub partner: String,
    pub consulted_at: String,
    pub answer: Option<ConsultationAnswer>,
    pub answered_at: Option<String>,
    pub reasons_entry: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Responded {
    pub at: String,
    pub outcome: String,
}

impl SarRow {
    pub fn status(&self) -> &'static str {
        if self.responded.is_some() {
            "responded"
        } else if self.pauses.iter().any(|p| p.to.is_none()) {
            "paused"
        } else {
            "open"
        }
    }

    /// Works the deadline out again from everything known so far. An open pause is left
    /// out until it closes (the date then moves by its length).
    fn recompute(&mut self, ctx: &Context<'_>) {
        let rule = if self.part_3 {
            Rule::SarPart3
        } else {
            Rule::Sar
        };
        let received = Day::parse(&self.received_on).unwrap_or(Day(0));
        let mut inputs = request_inputs(ctx, &self.received_by, received);
        inputs.identity_received = self.identity_verified_on.as_deref().and_then(Day::parse);
        inputs.paused = self
            .pauses
            .iter()
            .filter_map(|p| Some((Day::parse(&p.from)?, Day::parse(p.to.as_deref()?)?)))
            .collect();
        let first = DeadlineRecord::computed(rule, &inputs, ctx);
        self.extension_notice_due = first.due.clone();
        if self.extended.is_some() {
            inputs.extended = true;
            self.deadline = DeadlineRecord::computed(rule, &inputs, ctx);
        } else {
            self.deadline = first;
        }
    }
}

impl View for Sars {
    const NAME: &'static str = "sars";
    const VERSION: u32 = 1;
    type Row = SarRow;

    fn touches(event: &Logged) -> Touch {
        match &event.event {
            Some(DomainEvent::Sar(_)) => Touch::Keys(vec![event.stream.clone()]),
            _ => Touch::Nothing,
        }
    }

    fn apply(ctx: &Context<'_>, event: &Logged, rows: &mut Rows<SarRow>) -> Result<(), String> {
        let Some(DomainEvent::Sar(recorded)) = &event.event else {
            return Ok(());
        };
        let at = recorded.at.clone();
        let actor = recorded.by.partner.clone();
        if let SarFact::SubjectAccessRequestReceived {
            subject,
            part_3,
            channel,
        } = &recorded.fact
        {
            let mut row = SarRow {
                sar: event.stream_id().to_string(),
                received_by: actor,
                subject: subject.pseudonym.clone(),
                part_3: *part_3,
                channel: channel.clone(),
                received_on: day_of(&at).to_string(),
                received_at: at,
                identity_verified_on: None,
                pauses: Vec::new(),
                extended: None,
                consultations: Vec::new(),
                responded: None,
                deadline: DeadlineRecord {
                    rule: String::new(),
                    due: None,
                    explanation: String::new(),
                    rule_version: String::new(),
                    calendar_version: None,
                    inputs: serde_json::Value::Null,
                },
                extension_notice_due: None,
            };
            row.recompute(ctx);
            rows.insert(event.stream.clone(), row);
            return Ok(());
        }
        let row = rows.expect_mut(&event.stream, event)?;
        match &recorded.fact {
            SarFact::SubjectAccessRequestReceived { .. } => {}
            SarFact::SarIdentityVerified {} => {
                row.identity_verified_on = Some(day_of(&at).to_string());
            }
            SarFact::SarClarificationRequested { .. } => row.pauses.push(Pause {
                from: day_of(&at).to_string(),
                to: None,
                request_entry: event.seq,
            }),
            SarFact::SarClarificationReceived {} => {
                if let Some(open) = row.pauses.iter_mut().find(|p| p.to.is_none()) {
                    open.to = Some(day_of(&at).to_string());
                }
            }
            SarFact::SarExtended {
                notice_sent_to_requester,
                ..
            } => {
                row.extended = Some(Extension {
                    at,
                    notice_sent_to_requester: *notice_sent_to_requester,
                    reason_entry: super::narrative_entry(event),
                })
            }
            SarFact::SarPartnerConsulted { partner } => row.consultations.push(Consultation {
                partner: partner.clone(),
                consulted_at: at,
                answer: None,
                answered_at: None,
                reasons_entry: None,
            }),
            SarFact::SarConsultationAnswered { answer, .. } => {
                let open = row
                    .consultations
                    .iter_mut()
                    .find(|c| c.partner == actor && c.answer.is_none())
                    .ok_or_else(|| format!("{actor} answers a consultation it was not sent"))?;
                open.answer = Some(*answer);
                open.answered_at = Some(at);
                open.reasons_entry = super::narrative_entry(event);
            }
            SarFact::SarResponded { outcome } => {
                row.responded = Some(Responded {
                    at,
                    outcome: outcome.clone(),
                })
            }
        }
        row.recompute(ctx);
        Ok(())
    }

    fn columns(row: &SarRow) -> Columns {
        let mut parties: BTreeSet<String> = row
            .consultations
            .iter()
            .map(|c| c.partner.clone())
            .collect();
        parties.insert(row.received_by.clone());
        let status = row.status();
        Columns {
            partner: Some(row.received_by.clone()),
            status: status.to_string(),
            // While clarification is awaited the clock is stopped: nothing is due (the
            // date moves by the pause's length once it ends).
            due: (status == "open")
                .then(|| row.deadline.due.clone())
                .flatten(),
            subject: Some(row.subject.clone()),
            parties,
        }
    }
}
