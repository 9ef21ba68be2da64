//! The FOI/EIR queue (20 working days, a bank holiday anywhere in the UK not counting)
//! and complaint acknowledgements (DPA 2018 s164A: 30 days, rolled to a working day).

use super::{day_of, request_inputs, DeadlineRecord};
use crate::logged::Logged;
use crate::view::{Columns, Context, Rows, Touch, View};
use deadlines::Rule;
use domain::event::DomainEvent;
use domain::requests::{ComplaintFact, FoiFact, Regime};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

pub struct FoiRequests;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FoiRow {
    pub request: String,
    pub regime: Regime,
    pub received_by: String,
    pub channel: String,
    pub received_at: String,
    pub received_on: String,
    pub deadline: DeadlineRecord,
    pub responded: Option<FoiResponse>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FoiResponse {
    pub at: String,
    pub outcome: String,
    pub exemptions: Vec<String>,
    /// Answered after the deadline.
    pub late: bool,
}

fn single_party(partner: &str) -> BTreeSet<String> {
    BTreeSet::from([partner.to_string()])
}

/// Whether something done at instant `at` came after a date deadline (which ends at
/// the end of its day, London time).
fn after_day(at: &str, due: Option<&str>) -> bool {
    match due {
        Some(due) => day_of(at).to_string().as_str() > due,
        None => false,
    }
}

impl View for FoiRequests {
    const NAME: &'static str = "foi";
    const VERSION: u32 = 1;
    type Row = FoiRow;

    fn touches(event: &Logged) -> Touch {
        match &event.event {
            Some(DomainEvent::Foi(_)) => Touch::Keys(vec![event.stream.clone()]),
            _ => Touch::Nothing,
        }
    }

    fn apply(ctx: &Context<'_>, event: &Logged, rows: &mut Rows<FoiRow>) -> Result<(), String> {
        let Some(DomainEvent::Foi(recorded)) = &event.event else {
            return Ok(());
        };
        let at = recorded.at.clone();
        match &recorded.fact {
            FoiFact::FoiRequestReceived { regime, channel } => {
                let received = day_of(&at);
                let rule = match regime {
                    Regime::Foi => Rule::Foi,
                    Regime::Eir => Rule::Eir,
                };
                let inputs = request_inputs(ctx, &recorded.by.partner, received);
                rows.insert(
                    event.stream.clone(),
                    FoiRow {
                        request: event.stream_id().to_string(),
                        regime: *regime,
                        received_by: recorded.by.partner.clone(),
                        channel: channel.clone(),
                        received_on: received.to_string(),
                        received_at: at,
                        deadline: DeadlineRecord::computed(rule, &inputs, ctx),
                        responded: None,
                    },
                );
            }
            FoiFact::FoiResponded {
                outcome,
                exemptions,
            } => {
                let row = rows.expect_mut(&event.stream, event)?;
                row.responded = Some(FoiResponse {
                    late: after_day(&at, row.deadline.due.as_deref()),
                    at,
                    outcome: outcome.clone(),
                    exemptions: exemptions.clone(),
                });
            }
        }
        Ok(())
    }

    fn columns(row: &FoiRow) -> Columns {
        let open = row.responded.is_none();
        Columns {
            partner: Some(row.received_by.clone()),
            status: if open { "open" } else { "responded" }.to_string(),
            due: if open { row.deadline.due.clone() } else { None },
            subject: None,
            parties: single_party(&row.received_by),
        }
    }
}

pub struct Complaints;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComplaintRow {
    pub complaint: String,
    pub received_by: String,
    pub channel: String,
    pub received_at: String,
    pub received_on: String,
    /// Acknowledgement due (30 days).
    pub deadline: DeadlineRecord,
    pub acknowledged_at: Option<String>,
    pub acknowledged_late: bool,
    pub resolved: Option<Resolved>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resolved {
    pub at: String,
    pub outcome: String,
}

impl ComplaintRow {
    fn status(&self) -> &'static str {
        if self.resolved.is_some() {
            "resolved"
        } else if self.acknowledged_at.is_some() {
            "acknowledged"
        } else {
            "awaiting-acknowledgement"
        }
    }
}

impl View for Complaints {
    const NAME: &'static str = "complaints";
    const VERSION: u32 = 1;
    type Row = ComplaintRow;

    fn touches(event: &Logged) -> Touch {
        match &event.event {
            Some(DomainEvent::Complaint(_)) => Touch::Keys(vec![event.stream.clone()]),
            _ => Touch::Nothing,
        }
    }

    fn apply(
        ctx: &Context<'_>,
        event: &Logged,
        rows: &mut Rows<ComplaintRow>,
    ) -> Result<(), String> {
        let Some(DomainEvent::Complaint(recorded)) = &event.event else {
            return Ok(());
        };
        let at = recorded.at.clone();
        match &recorded.fact {
            ComplaintFact::ComplaintReceived { channel, .. } => {
                let received = day_of(&at);
                let inputs = request_inputs(ctx, &recorded.by.partner, received);
                rows.insert(
                    event.stream.clone(),
                    ComplaintRow {
                        complaint: event.stream_id().to_string(),
                        received_by: recorded.by.partner.clone(),
                        channel: channel.clone(),
                        received_on: received.to_string(),
                        received_at: at,
                        deadline: DeadlineRecord::computed(Rule::Complaint, &inputs, ctx),
                        acknowledged_at: None,
                        acknowledged_late: false,
                        resolved: None,
                    },
                );
            }
            ComplaintFact::ComplaintAcknowledged {} => {
                let row = rows.expect_mut(&event.stream, event)?;
                row.acknowledged_late = after_day(&at, row.deadline.due.as_deref());
                row.acknowledged_at = Some(at);
            }
            ComplaintFact::ComplaintResolved { outcome, .. } => {
                let row = rows.expect_mut(&event.stream, event)?;
                row.resolved = Some(Resolved {
                    at,
                    outcome: outcome.clone(),
                });
            }
        }
        Ok(())
    }

    fn columns(row: &ComplaintRow) -> Columns {
        let status = row.status();
        Columns {
            partner: Some(row.received_by.clone()),
            status: status.to_string(),
            due: (status == "awaiting-acknowledgement")
                .then(|| row.deadline.due.clone())
                .flatten(),
            subject: None,
            parties: single_party(&row.received_by),
        }
    }
}
