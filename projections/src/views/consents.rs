//! Consent state per subject pseudonym and scope: each consent recorded (or refused),
//! whom and what it covers, who gave it, and whether it is live, withdrawn or refused.
//! A consent past its expiry date reads as expired ([`crate::query`] applies "now").

use crate::logged::Logged;
use crate::view::{Columns, Context, Rows, Touch, View};
use domain::consent::{ConsentFact, GivenBy};
use domain::event::DomainEvent;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

pub struct Consents;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConsentRow {
    pub consent: String,
    pub recorded_by: String,
    pub subject: String,
    pub linked: Vec<String>,
    pub recipients: Vec<String>,
    pub purposes: Vec<String>,
    pub given_by: Option<GivenBy>,
    pub witnessed_by: Option<String>,
    pub expires_on: Option<String>,
    pub recorded_at: String,
    pub entry: u64,
    /// live, withdrawn or refused.
    pub state: String,
    pub withdrawn_at: Option<String>,
}

impl View for Consents {
    const NAME: &'static str = "consents";
    const VERSION: u32 = 1;
    type Row = ConsentRow;

    fn touches(event: &Logged) -> Touch {
        match &event.event {
            Some(DomainEvent::Consent(_)) => Touch::Keys(vec![event.stream.clone()]),
            _ => Touch::Nothing,
        }
    }

    fn apply(_: &Context<'_>, event: &Logged, rows: &mut Rows<ConsentRow>) -> Result<(), String> {
        let Some(DomainEvent::Consent(recorded)) = &event.event else {
            return Ok(());
        };
        let row = |subject: &domain::pseudonym::SubjectRef,
                   recipients: &[String],
                   purposes: &[String],
                   state: &str| ConsentRow {
            consent: event.stream_id().to_string(),
            recorded_by: recorded.by.partner.clone(),
            subject: subject.pseudonym.clone(),
            linked: subject.linked.clone(),
            recipients: recipients.to_vec(),
            purposes: purposes.to_vec(),
            given_by: None,
            witnessed_by: None,
            expires_on: None,
            recorded_at: recorded.at.clone(),
            entry: event.seq,
            state: state.to_string(),
            withdrawn_at: None,
        };
        match &recorded.fact {
            ConsentFact::ConsentRecorded {
                subject,
                recipients,
                purposes,
                given_by,
                witnessed_by,
                expires_on,
                ..
            } => {
                let mut r = row(subject, recipients, purposes, "live");
                r.given_by = Some(*given_by);
                r.witnessed_by = witnessed_by.clone();
                r.expires_on = expires_on.clone();
                rows.insert(event.stream.clone(), r);
            }
            ConsentFact::ConsentRefused {
                subject,
                recipients,
                purposes,
                ..
            } => rows.insert(
                event.stream.clone(),
                row(subject, recipients, purposes, "refused"),
            ),
            ConsentFact::ConsentWithdrawn { .. } => {
                let r = rows.expect_mut(&event.stream, event)?;
                r.state = "withdrawn".to_string();
                r.withdrawn_at = Some(recorded.at.clone());
            }
        }
        Ok(())
    }

    fn columns(row: &ConsentRow) -> Columns {
        let mut parties: BTreeSet<String> = row.recipients.iter().cloned().collect();
        parties.insert(row.recorded_by.clone());
        Columns {
            partner: Some(row.recorded_by.clone()),
            status: row.state.clone(),
            due: (row.state == "live")
                .then(|| row.expires_on.clone())
                .flatten(),
            subject: Some(row.subject.clone()),
            parties,
        }
    }
}
