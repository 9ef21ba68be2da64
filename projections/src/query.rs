//! Reading the views with "now" applied: a row whose due date has passed reads as
//! overdue (a live consent past its expiry as expired), a breach shows the time left on
//! its 72-hour clock; and the deadlines of every view in one list, soonest first.
//!
//! Views store only what the log says; the clock is the reader's, so the same view read
//! at two times gives two honest answers and a rebuild changes neither.

use crate::db::{DbError, Filter, Names, ViewDb};
use crate::views::INDEX_STATUS;
use deadlines::{london, Day};
use ledger::timestamp::{self, Micros};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeSet;

/// One row as a reader sees it.
#[derive(Debug, Clone, Serialize)]
pub struct Record {
    pub view: String,
    pub key: String,
    /// The partner who must act next.
    pub partner: Option<String>,
    /// The stored status, or `overdue` / `expired` once "now" has passed the due date.
    pub status: String,
    pub stored_status: String,
    pub due: Option<String>,
    pub overdue: bool,
    /// Seconds until the due point (negative once passed).
    pub seconds_left: Option<i64>,
    pub subject: Option<String>,
    pub parties: BTreeSet<String>,
    pub row: Value,
}

/// One deadline across the views.
#[derive(Debug, Clone, Serialize)]
pub struct DueItem {
    pub due: String,
    pub overdue: bool,
    pub seconds_left: i64,
    pub view: String,
    pub key: String,
    pub partner: Option<String>,
    pub status: String,
    /// What the partner has to do.
    pub action: String,
    /// Why the date is what it is (the deadline's own sentence).
    pub explanation: String,
    /// The stored deadline: rule, versions, inputs.
    pub deadline: Value,
}

/// The instant a due text ends: a date at 23:59:59.999999 London time, an instant as is.
pub fn due_end(due: &str) -> Option<Micros> {
    if let Some(day) = Day::parse(due) {
        const DAY_US: Micros = 86_400_000_000;
        let next_midnight_utc = (day.0 + 1) * DAY_US;
        // Clocks change at 01:00 UTC, so the offset an hour before UTC midnight is the
        // offset at London midnight.
        let offset = london::offset(next_midnight_utc - 3_600_000_000);
        return Some(next_midnight_utc - offset - 1);
    }
    timestamp::parse_utc(due)
}

/// Reads rows of a view with `now` applied. `name` must be a view's name.
pub async fn read(
    db: &ViewDb,
    chain_id: i64,
    name: &str,
    filter: &Filter,
    now: Micros,
) -> Result<Vec<Record>, DbError> {
    let table = Names::live(name).table;
    let mut out = Vec::new();
    let mut filter = filter.clone();
    // Bookkeeping rows are skipped; keep paging until the page is full or the view ends.
    loop {
        let rows = db.list(&table, chain_id, &filter).await?;
        let count = rows.len();
        for stored in rows {
            filter.after = Some(stored.key.clone());
            if stored.columns.status == INDEX_STATUS {
                continue;
            }
            let row: Value = serde_json::from_str(&stored.body)
                .map_err(|e| DbError::Corrupt(format!("row {:?}: {e}", stored.key)))?;
            let end = stored.columns.due.as_deref().and_then(due_end);
            let overdue = end.is_some_and(|end| now > end);
            let status = match (overdue, name) {
                (true, "consents") => "expired".to_string(),
                (true, _) => "overdue".to_string(),
                (false, _) => stored.columns.status.clone(),
            };
            out.push(Record {
                view: name.to_string(),
                key: stored.key,
                partner: stored.columns.partner,
                status,
                stored_status: stored.columns.status,
                due: stored.columns.due,
                overdue,
                seconds_left: end.map(|end| (end - now).div_euclid(1_000_000)),
                subject: stored.columns.subject,
                parties: stored.columns.parties,
                row,
            });
            if out.len() as u32 >= filter.limit.max(1) {
                return Ok(out);
            }
        }
        if (count as u32) < filter.limit.max(1) {
            return Ok(out);
        }
    }
}

/// What each view's due date asks of the partner, and where the row keeps the deadline.
const DEADLINES: &[(&str, &str, &str)] = &[
    (
        "breaches",
        "report the breach to the ICO (72 hours)",
        "deadline",
    ),
    ("sars", "respond to the subject access request", "deadline"),
    ("foi", "respond to the information request", "deadline"),
    ("complaints", "acknowledge the complaint", "deadline"),
    (
        "retention",
        "review the retention of the case's data",
        "review",
    ),
    ("notices", "answer the notice", "response"),
    ("agreements", "review the agreement", "next_review"),
];

/// Everything with a due date, across the views, soonest first; `partner` keeps only
/// what that partner must act on.
pub async fn deadlines(
    db: &ViewDb,
    chain_id: i64,
    partner: Option<&str>,
    now: Micros,
) -> Result<Vec<DueItem>, DbError> {
    let mut out = Vec::new();
    for (view, action, field) in DEADLINES {
        let filter = Filter {
            partner: partner.map(str::to_string),
            with_due: true,
            limit: 10_000,
            ..Filter::default()
        };
        let mut filter = filter;
        loop {
            let page = read(db, chain_id, view, &filter, now).await?;
            let full = page.len() as u32 >= filter.limit;
            filter.after = page.last().map(|r| r.key.clone());
            for record in page {
                let (Some(due), Some(seconds_left)) = (record.due.clone(), record.seconds_left)
                else {
                    continue;
                };
                let deadline = record.row.get(*field).cloned().unwrap_or(Value::Null);
                let explanation = deadline
                    .get("explanation")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                let action = match (*view, record.row.get("kind").and_then(Value::as_str)) {
                    ("notices", Some("sar-consultation")) => "answer the SAR consultation",
                    ("notices", Some("onward-sharing-request")) => "grant or refuse onward sharing",
                    ("notices", Some("article-19")) => "acknowledge the Article 19 notice",
                    _ => action,
                };
                out.push(DueItem {
                    due,
                    overdue: record.overdue,
                    seconds_left,
                    view: view.to_string(),
                    key: record.key,
                    partner: record.partner,
                    status: record.status,
                    action: action.to_string(),
                    explanation,
                    deadline,
                });
            }
            if !full {
                break;
            }
        }
    }
    out.sort_by(|a, b| (a.seconds_left, &a.view, &a.key).cmp(&(b.seconds_left, &b.view, &b.key)));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_date_ends_at_midnight_london_time() {
        // Winter: 23:59:59 GMT; summer: 22:59:59 UTC.
        let winter = due_end("2025-01-15").unwrap();
        assert_eq!(
            timestamp::format_micros(winter),
            "2025-01-15T23:59:59.999999Z"
        );
        let summer = due_end("2025-07-15").unwrap();
        assert_eq!(
            timestamp::format_micros(summer),
            "2025-07-15T22:59:59.999999Z"
        );
        let instant = due_end("2026-03-30T16:30:00Z").unwrap();
        assert_eq!(
            timestamp::format_micros(instant),
            "2026-03-30T16:30:00.000000Z"
        );
    }
}
