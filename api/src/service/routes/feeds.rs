//! Feeds for the tools DPOs already use: a partner's deadlines as an iCalendar feed
//! (RFC 5545) for their calendars, and any register as CSV for their spreadsheets.
//!
//! A calendar application subscribes to a URL and sends no Authorization header, so a
//! user may issue a *calendar token* (`POST /v1/calendar/feeds`): it is part of the
//! feed's URL, is stored only as a hash, reads that user's deadlines and nothing else,
//! and is revoked like any token.

use super::query;
use crate::service::access::{decide, Action, Caller};
use crate::service::problem::ApiError;
use crate::service::state::AppState;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode, Uri};
use axum::response::IntoResponse;
use axum::Json;
use ledger::timestamp;
use projections::db::Filter;
use projections::query::{self as views, DueItem, Record};
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::fmt::Write;
use std::sync::Arc;

/// `GET /v1/deadlines.ics`: the caller's partner's deadlines, as iCalendar.
pub async fn deadlines_ics(
    State(state): State<Arc<AppState>>,
    caller: Caller,
) -> Result<impl IntoResponse, ApiError> {
    calendar(&state, &caller).await
}

/// `GET /v1/calendar/{token}.ics`: the same, for a calendar application.
pub async fn calendar_feed(
    State(state): State<Arc<AppState>>,
    Path(file): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let token = file.strip_suffix(".ics").unwrap_or(&file);
    let caller = state.calendar_caller(token).await?;
    calendar(&state, &caller).await
}

/// `POST /v1/calendar/feeds`: a calendar token for the caller, and its feed's path
/// (shown once).
pub async fn issue_feed(
    State(state): State<Arc<AppState>>,
    caller: Caller,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    decide(&caller, Action::ReadDeadlines)?;
    let issued = state.access.issue_calendar_token(&caller.user).await?;
    tracing::info!(user = %caller.user, token = %issued.id, "calendar feed issued");
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "id": issued.id,
            "path": format!("/v1/calendar/{}.ics", issued.token),
        })),
    ))
}

/// `DELETE /v1/calendar/feeds/{id}`: the caller's own calendar token, revoked.
pub async fn revoke_feed(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state
        .access
        .revoke_calendar_token(&caller.user, &id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn calendar(state: &AppState, caller: &Caller) -> Result<impl IntoResponse, ApiError> {
    let scope = decide(caller, Action::ReadDeadlines)?;
    let now = timestamp::now_micros();
    let items = views::deadlines(
        state.projector.db(),
        state.projector.chain_id(),
        scope.party.as_deref(),
        now,
    )
    .await
    .map_err(ApiError::internal)?;
    let name = match &scope.party {
        Some(p) => format!("ISA Ledger deadlines: {p}"),
        None => "ISA Ledger deadlines: all partners".to_string(),
    };
    Ok((
        [
            (header::CONTENT_TYPE, "text/calendar; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        ics(&name, &items, now),
    ))
}

/// The iCalendar text: one all-day event per date deadline, a point-in-time event per
/// instant (a breach's 72 hours), each with a reminder. UIDs are stable per deadline,
/// so a calendar updates an event rather than adding another.
pub fn ics(name: &str, items: &[DueItem], now: timestamp::Micros) -> String {
    let stamp = ics_instant(now);
    let mut lines = vec![
        "BEGIN:VCALENDAR".to_string(),
        "VERSION:2.0".to_string(),
        "PRODID:-//ISA Ledger//Deadlines//EN".to_string(),
        "CALSCALE:GREGORIAN".to_string(),
        "METHOD:PUBLISH".to_string(),
        format!("X-WR-CALNAME:{}", text(name)),
        "REFRESH-INTERVAL;VALUE=DURATION:PT1H".to_string(),
    ];
    for item in items {
        let uid = hex::encode(Sha256::digest(
            format!("{}\n{}\n{}", item.view, item.key, item.action).as_bytes(),
        ));
        lines.push("BEGIN:VEVENT".to_string());
        lines.push(format!("UID:{}@isa-ledger", &uid[..32]));
        lines.push(format!("DTSTAMP:{stamp}"));
        match deadlines::Day::parse(&item.due) {
            Some(day) => {
                lines.push(format!("DTSTART;VALUE=DATE:{}", ics_date(day)));
                lines.push(format!(
                    "DTEND;VALUE=DATE:{}",
                    ics_date(deadlines::Day(day.0 + 1))
                ));
            }
            None => {
                let at = timestamp::parse_utc(&item.due).unwrap_or(now);
                lines.push(format!("DTSTART:{}", ics_instant(at)));
                lines.push(format!("DTEND:{}", ics_instant(at)));
            }
        }
        let overdue = if item.overdue { "OVERDUE: " } else { "" };
        lines.push(format!(
            "SUMMARY:{}",
            text(&format!("{overdue}{} ({})", item.action, item.key))
        ));
        lines.push(format!(
            "DESCRIPTION:{}",
            text(&format!(
                "{}\nView: {}\nStatus: {}",
                item.explanation, item.view, item.status
            ))
        ));
        lines.push(format!("CATEGORIES:{}", text(&item.view)));
        lines.push("BEGIN:VALARM".to_string());
        lines.push("ACTION:DISPLAY".to_string());
        lines.push(format!("DESCRIPTION:{}", text(&item.action)));
        lines.push("TRIGGER:-P1D".to_string());
        lines.push("END:VALARM".to_string());
        lines.push("END:VEVENT".to_string());
    }
    lines.push("END:VCALENDAR".to_string());
    let mut out = String::new();
    for line in lines {
        fold(&line, &mut out);
    }
    out
}

fn ics_date(day: deadlines::Day) -> String {
    day.to_string().replace('-', "")
}

fn ics_instant(at: timestamp::Micros) -> String {
    // 2025-01-15T10:00:00.000000Z → 20250115T100000Z
    let text = timestamp::format_micros(at);
    let (date, time) = text.split_once('T').unwrap_or((&text, "00:00:00Z"));
    format!(
        "{}T{}Z",
        date.replace('-', ""),
        time.get(..8).unwrap_or("00:00:00").replace(':', "")
    )
}

/// A TEXT value escaped per RFC 5545 §3.3.11.
fn text(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

/// Writes a content line folded at 75 octets (RFC 5545 §3.1), never inside a character.
fn fold(line: &str, out: &mut String) {
    let mut width = 0;
    for c in line.chars() {
        if width + c.len_utf8() > 75 {
            out.push_str("\r\n ");
            width = 1;
        }
        out.push(c);
        width += c.len_utf8();
    }
    out.push_str("\r\n");
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CsvQuery {
    status: Option<String>,
    /// For a regulator: only rows this partner must act on.
    partner: Option<String>,
}

/// `GET /v1/registers/{view}` (CSV): every row of a view the caller may read, with
/// the view's own fields as columns.
pub async fn register_csv(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(file): Path<String>,
    uri: Uri,
) -> Result<impl IntoResponse, ApiError> {
    let view = file.strip_suffix(".csv").unwrap_or(&file);
    let names = state.projector.view_names();
    let Some(view) = names.iter().find(|n| **n == view).copied() else {
        return Err(ApiError::NotFound(format!(
            "there is no register {view:?}; they are {}",
            names.join(", ")
        )));
    };
    let scope = decide(&caller, Action::ReadView { view })?;
    let q: CsvQuery = query(&uri)?;
    let filter = Filter {
        party: scope.party,
        partner: q.partner,
        status: q.status,
        // The whole register, in one read.
        limit: u32::MAX,
        ..Filter::default()
    };
    let records = views::read(
        state.projector.db(),
        state.projector.chain_id(),
        view,
        &filter,
        timestamp::now_micros(),
    )
    .await
    .map_err(ApiError::internal)?;
    let disposition = format!("attachment; filename=\"{view}.csv\"");
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        csv(&records),
    ))
}

/// The register as CSV (RFC 4180): the reading columns, then every field the rows
/// hold (nested ones as JSON).
pub fn csv(records: &[Record]) -> String {
    let fields: BTreeSet<String> = records
        .iter()
        .filter_map(|r| r.row.as_object())
        .flat_map(|row| row.keys().cloned())
        .collect();
    let mut out = String::new();
    let mut header = vec![
        "key", "status", "due", "overdue", "partner", "subject", "parties",
    ]
    .into_iter()
    .map(str::to_string)
    .collect::<Vec<_>>();
    header.extend(fields.iter().cloned());
    row_line(&header, &mut out);
    for r in records {
        let mut cells = vec![
            r.key.clone(),
            r.status.clone(),
            r.due.clone().unwrap_or_default(),
            r.overdue.to_string(),
            r.partner.clone().unwrap_or_default(),
            r.subject.clone().unwrap_or_default(),
            r.parties.iter().cloned().collect::<Vec<_>>().join(";"),
        ];
        for field in &fields {
            cells.push(match r.row.get(field) {
                None | Some(Value::Null) => String::new(),
                Some(Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
            });
        }
        row_line(&cells, &mut out);
    }
    out
}

fn row_line(cells: &[String], out: &mut String) {
    for (i, cell) in cells.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        // A cell a spreadsheet would run as a formula is written as text.
        let cell = if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
            format!("'{cell}")
        } else {
            cell.clone()
        };
        if cell.contains([',', '"', '\n', '\r']) {
            let _ = write!(out, "\"{}\"", cell.replace('"', "\"\""));
        } else {
            out.push_str(&cell);
        }
    }
    out.push_str("\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lines_fold_and_text_is_escaped() {
        let mut out = String::new();
        fold(&format!("SUMMARY:{}", "é".repeat(60)), &mut out);
        for line in out.split("\r\n").filter(|l| !l.is_empty()) {
            assert!(line.len() <= 75, "{line:?}");
        }
        assert_eq!(text("a,b;c\\d\ne"), "a\\,b\\;c\\\\d\\ne");
        assert_eq!(ics_instant(0), "19700101T000000Z");
    }

    #[test]
    fn csv_quotes_and_defuses_formulas() {
        let mut out = String::new();
        row_line(
            &[
                "plain".into(),
                "a,b".into(),
                "say \"hi\"".into(),
                "=SUM(A1)".into(),
            ],
            &mut out,
        );
        assert_eq!(out, "plain,\"a,b\",\"say \"\"hi\"\"\",'=SUM(A1)\r\n");
    }
}
