//! The views over HTTP: each view's rows with filters and cursor pagination, the
//! deadlines across them, and where each view stands against the log. Every read is
//! limited to what the caller's partner is party to, unless the caller is a regulator.

use super::{number, own_or_asked, query};
use crate::service::access::{decide, Action, Caller};
use crate::service::problem::ApiError;
use crate::service::state::AppState;
use axum::extract::{Path, State};
use axum::http::Uri;
use axum::Json;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ledger::timestamp;
use projections::db::Filter;
use projections::query::{self as views, Record};
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;

const PAGE_DEFAULT: u32 = 100;
const PAGE_LIMIT: u32 = 1000;

/// `GET /v1/views`: every view, how far it has read the log, and whether it stopped.
pub async fn list(
    State(state): State<Arc<AppState>>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    decide(&caller, Action::ReadProofs)?;
    let status = state.projector.status().await.map_err(ApiError::internal)?;
    Ok(Json(json!({ "views": status })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RowQuery {
    /// Only rows this partner must act on.
    partner: Option<String>,
    status: Option<String>,
    subject: Option<String>,
    /// Only rows due by this date or instant.
    due_by: Option<String>,
    cursor: Option<String>,
    limit: Option<String>,
    /// An RFC 3339 instant to judge "overdue" at (default: now).
    at: Option<String>,
}

/// `GET /v1/views/{view}`: rows in key order, a page at a time.
pub async fn rows(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(view): Path<String>,
    uri: Uri,
) -> Result<Json<Value>, ApiError> {
    let names = state.projector.view_names();
    let Some(view) = names.iter().find(|n| **n == view).copied() else {
        return Err(ApiError::NotFound(format!(
            "there is no view {view:?}; the views are {}",
            names.join(", ")
        )));
    };
    let scope = decide(&caller, Action::ReadView { view })?;
    let q: RowQuery = query(&uri)?;
    let now = at(q.at.as_deref())?;
    let filter = Filter {
        party: scope.party,
        partner: q.partner,
        status: q.status,
        subject: q.subject,
        due_by: q.due_by,
        ..Filter::default()
    };
    let (records, next_cursor) = page(&state, view, filter, &q.cursor, &q.limit, now).await?;
    Ok(Json(json!({
        "view": view,
        "items": records,
        "next_cursor": next_cursor,
    })))
}

/// One page of a view's rows under `filter`, after the client's `cursor`, with the
/// cursor of the next page if there is one.
pub async fn page(
    state: &AppState,
    view: &str,
    mut filter: Filter,
    cursor: &Option<String>,
    limit: &Option<String>,
    now: timestamp::Micros,
) -> Result<(Vec<Record>, Option<String>), ApiError> {
    let limit = number("limit", limit.as_deref())?
        .map_or(PAGE_DEFAULT, |n| n.min(u64::from(PAGE_LIMIT)) as u32)
        .max(1);
    filter.after = cursor
        .as_deref()
        .map(|c| {
            URL_SAFE_NO_PAD
                .decode(c)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| ApiError::validation("cursor", "is not a cursor this API gave"))
        })
        .transpose()?;
    // One more than asked, to know whether another page follows.
    filter.limit = limit + 1;
    let mut records = views::read(
        state.projector.db(),
        state.projector.chain_id(),
        view,
        &filter,
        now,
    )
    .await
    .map_err(ApiError::internal)?;
    let more = records.len() > limit as usize;
    records.truncate(limit as usize);
    let next_cursor = more
        .then(|| {
            records
                .last()
                .map(|r| URL_SAFE_NO_PAD.encode(r.key.as_bytes()))
        })
        .flatten();
    Ok((records, next_cursor))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeadlineQuery {
    partner: Option<String>,
    at: Option<String>,
}

/// `GET /v1/deadlines`: everything owed, soonest first. A partner's users see their own
/// partner's; a regulator may ask for any partner's, or all.
pub async fn deadlines(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    uri: Uri,
) -> Result<Json<Value>, ApiError> {
    let scope = decide(&caller, Action::ReadDeadlines)?;
    let q: DeadlineQuery = query(&uri)?;
    let partner = own_or_asked(&caller, scope.party, q.partner)?;
    let now = at(q.at.as_deref())?;
    let items = views::deadlines(
        state.projector.db(),
        state.projector.chain_id(),
        partner.as_deref(),
        now,
    )
    .await
    .map_err(ApiError::internal)?;
    Ok(Json(
        json!({ "at": timestamp::format_micros(now), "items": items }),
    ))
}

fn at(text: Option<&str>) -> Result<timestamp::Micros, ApiError> {
    match text {
        None => Ok(timestamp::now_micros()),
        Some(t) => timestamp::parse_utc(t).ok_or_else(|| {
            ApiError::validation(
                "at",
                format!("{t:?} is not an RFC 3339 UTC instant (2025-07-10T12:00:00Z)"),
            )
        }),
    }
}
