//! The retention review queue: for each case, each partner holding its data (the
//! discloser and every recipient) and when its copy is due for review — the disclosure
//! date plus the agreement's period for that data, then whatever date each review sets —
//! until the holder confirms disposal.

use super::{day_of, narrative_entry, review_due, review_set, sub_key, DeadlineRecord};
use crate::logged::Logged;
use crate::view::{Columns, Context, Rows, Touch, View};
use domain::case::{CaseFact, RetentionOutcome};
use domain::event::DomainEvent;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

pub struct Retention;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetentionRow {
    pub case: String,
    pub holder: String,
    /// The disclosures this holder's copy came from (or, for the discloser, went out in).
    pub disclosures: Vec<HeldDisclosure>,
    /// Partners that disclosed this case's data to the holder.
    pub received_from: BTreeSet<String>,
    pub review: Option<DeadlineRecord>,
    pub reviews: Vec<Review>,
    pub disposed: Option<Disposed>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeldDisclosure {
    pub disclosure: String,
    pub on: String,
    pub review_after_months: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Review {
    pub at: String,
    pub outcome: RetentionOutcome,
    pub next_review_due: Option<String>,
    pub reason_entry: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Disposed {
    pub at: String,
    pub method: String,
}

impl RetentionRow {
    fn status(&self) -> &'static str {
        if self.disposed.is_some() {
            return "disposed";
        }
        match self.reviews.last().map(|r| r.outcome) {
            None => "awaiting-review",
            Some(RetentionOutcome::Keep) => "kept",
            Some(RetentionOutcome::Restrict) => "restricted",
            Some(RetentionOutcome::Dispose) => "awaiting-disposal",
        }
    }

    fn new(case: &str, holder: &str) -> RetentionRow {
        RetentionRow {
            case: case.to_string(),
            holder: holder.to_string(),
            disclosures: Vec::new(),
            received_from: BTreeSet::new(),
            review: None,
            reviews: Vec::new(),
            disposed: None,
        }
    }
}

fn case_event(event: &Logged) -> Option<&domain::recorded::Recorded<CaseFact>> {
    match &event.event {
        Some(DomainEvent::Case(r)) => Some(r),
        _ => None,
    }
}

impl View for Retention {
    const NAME: &'static str = "retention";
    const VERSION: u32 = 1;
    type Row = RetentionRow;

    fn touches(event: &Logged) -> Touch {
        let Some(recorded) = case_event(event) else {
            return Touch::Nothing;
        };
        let actor = &recorded.by.partner;
        match &recorded.fact {
            CaseFact::DisclosureMade { recipients, .. } => Touch::Keys(
                std::iter::once(actor)
                    .chain(recipients)
                    .map(|p| sub_key(event, p))
                    .collect(),
            ),
            CaseFact::RetentionReviewed { .. } | CaseFact::RecordDisposed { .. } => {
                Touch::Keys(vec![sub_key(event, actor)])
            }
            _ => Touch::Nothing,
        }
    }

    fn apply(_: &Context<'_>, event: &Logged, rows: &mut Rows<RetentionRow>) -> Result<(), String> {
        let Some(recorded) = case_event(event) else {
            return Ok(());
        };
        let actor = &recorded.by.partner;
        let at = &recorded.at;
        let row_of = |rows: &mut Rows<RetentionRow>, holder: &str| {
            let key = sub_key(event, holder);
            if rows.get(&key).is_none() {
                rows.insert(key.clone(), RetentionRow::new(&event.stream, holder));
            }
            key
        };
        match &recorded.fact {
            CaseFact::DisclosureMade {
                disclosure,
                recipients,
                review_after_months,
                ..
            } => {
                let on = day_of(at);
                for holder in std::iter::once(actor).chain(recipients) {
                    let key = row_of(rows, holder);
                    let Some(row) = rows.get_mut(&key) else {
                        continue;
                    };
                    if holder != actor {
                        row.received_from.insert(actor.clone());
                    }
                    row.disclosures.push(HeldDisclosure {
                        disclosure: disclosure.clone(),
                        on: on.to_string(),
                        review_after_months: *review_after_months,
                    });
                    // The earliest review outstanding stands: older data is reviewed first.
                    let due = review_due(
                        on,
                        *review_after_months,
                        &format!("disclosure {disclosure}"),
                    );
                    let earlier = match &row.review {
                        Some(current) => due.due < current.due,
                        None => true,
                    };
                    if earlier && row.disposed.is_none() {
                        row.review = Some(due);
                    }
                }
            }
            CaseFact::RetentionReviewed {
                outcome,
                next_review_due,
                ..
            } => {
                let key = row_of(rows, actor);
                let row = rows.expect_mut(&key, event)?;
                row.reviews.push(Review {
                    at: at.clone(),
                    outcome: *outcome,
                    next_review_due: next_review_due.clone(),
                    reason_entry: narrative_entry(event),
                });
                row.review = next_review_due.as_deref().map(|d| review_set(d, at));
            }
            CaseFact::RecordDisposed { method } => {
                let key = row_of(rows, actor);
                let row = rows.expect_mut(&key, event)?;
                row.disposed = Some(Disposed {
                    at: at.clone(),
                    method: method.clone(),
                });
                row.review = None;
            }
            _ => {}
        }
        Ok(())
    }

    fn columns(row: &RetentionRow) -> Columns {
        let mut parties = row.received_from.clone();
        parties.insert(row.holder.clone());
        Columns {
            partner: Some(row.holder.clone()),
            status: row.status().to_string(),
            due: row.review.as_ref().and_then(|r| r.due.clone()),
            subject: None,
            parties,
        }
    }
}
