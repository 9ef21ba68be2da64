//! A partner's notices: its inbox (what it must act on), acknowledging an Article 19
//! notice in one request, and a Server-Sent Events stream of notice changes as they
//! happen.

use super::commands::{claim_key, idempotency_key, receipts, refusal};
use super::{own_or_asked, query};
use crate::service::access::{decide, Action, Caller, Role};
use crate::service::delivery::{changes_between, NoticeChange};
use crate::service::problem::ApiError;
use crate::service::state::AppState;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use ledger::timestamp;
use projections::db::Filter;
use projections::views::notices;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InboxQuery {
    /// `pending` (the default), or any stored status, or `all`.
    status: Option<String>,
    /// For a regulator: whose inbox.
    partner: Option<String>,
    cursor: Option<String>,
    limit: Option<String>,
}

/// The partner whose notices the caller reads: its own, or (a regulator) any it names.
fn inbox_partner(caller: &Caller, asked: Option<String>) -> Result<Option<String>, ApiError> {
    let scope = decide(caller, Action::ReadView { view: "notices" })?;
    own_or_asked(caller, scope.party, asked)
}

/// `GET /v1/inbox`: notices the caller's partner must act on (it is the recipient),
/// oldest key first, a page at a time; `status=all` for settled ones too.
pub async fn inbox(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    uri: Uri,
) -> Result<Json<Value>, ApiError> {
    let q: InboxQuery = query(&uri)?;
    let partner = inbox_partner(&caller, q.partner)?;
    let status = match q.status.as_deref() {
        None => Some("pending".to_string()),
        Some("all") => None,
        Some(other) => Some(other.to_string()),
    };
    let filter = Filter {
        partner: partner.clone(),
        status,
        ..Filter::default()
    };
    let (records, next_cursor) = super::views::page(
        &state,
        "notices",
        filter,
        &q.cursor,
        &q.limit,
        timestamp::now_micros(),
    )
    .await?;
    Ok(Json(json!({
        "partner": partner,
        "items": records,
        "next_cursor": next_cursor,
    })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Acknowledgement {
    /// The notice's key, as the inbox lists it (`case/REQ-7#notice-n1`).
    notice: String,
    /// When it was acknowledged, if not now (RFC 3339 UTC).
    at: Option<String>,
}

/// `POST /v1/inbox/acknowledge` `{notice}`: records `NoticeAcknowledged` for an
/// Article 19 notice the caller's partner received, acting as the caller. Without an
/// Idempotency-Key the notice itself is the key, so a repeat returns the same receipt.
pub async fn acknowledge(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let request: Acknowledgement = serde_json::from_slice(&body).map_err(|e| {
        ApiError::validation("notice", format!("expected {{\"notice\": KEY}}: {e}"))
    })?;
    decide(
        &caller,
        Action::Submit {
            partner: &caller.partner,
        },
    )?;
    let found = notices::load(
        state.projector.db(),
        state.projector.chain_id(),
        std::slice::from_ref(&request.notice),
    )
    .await
    .map_err(ApiError::internal)?;
    let Some((_, notice)) = found
        .into_iter()
        .next()
        .filter(|(_, n)| n.issuer == caller.partner || n.recipient == caller.partner)
    else {
        return Err(ApiError::NotFound(format!(
            "{} has no notice {:?} (a notice just issued reaches the inbox within a second)",
            caller.partner, request.notice
        )));
    };
    if notice.recipient != caller.partner {
        return Err(ApiError::Forbidden(format!(
            "notice {:?} is addressed to {}; only its recipient acknowledges it",
            request.notice, notice.recipient
        )));
    }
    if notice.kind != "article-19" {
        let how = match notice.kind.as_str() {
            "sar-consultation" => "answer it with SarConsultationAnswered on its sar stream",
            "onward-sharing-request" => {
                "grant or refuse it with OnwardSharingGranted or OnwardSharingRefused"
            }
            _ => "a breach alert asks for no reply",
        };
        return Err(ApiError::validation(
            "notice",
            format!("a {} notice is not acknowledged: {how}", notice.kind),
        ));
    }
    let at = match request.at {
        Some(at) => timestamp::parse_utc(&at)
            .map(|_| at.clone())
            .ok_or_else(|| {
                ApiError::validation("at", format!("{at:?} is not an RFC 3339 UTC instant"))
            })?,
        None => timestamp::format_micros(timestamp::now_micros() / 1_000_000 * 1_000_000),
    };
    let command = json!({
        "stream": notice.about,
        "by": {
            "partner": caller.partner,
            "user": caller.user,
            "role": match caller.role { Role::Dpo => "data-protection-officer", _ => "practitioner" },
        },
        "at": at,
        "type": "NoticeAcknowledged",
        "notice": notice.id,
    });
    let key = if headers.contains_key("idempotency-key") {
        let key = idempotency_key(&headers, &caller.partner)?;
        claim_key(&state, &headers, &caller.partner, &key, &body).await?;
        key
    } else {
        format!("http:{}:acknowledge:{}", caller.partner, request.notice)
    };
    let signer = state.signer(&caller.partner).await?;
    let submitted = state
        .domain
        .submit(command, &signer, &key)
        .await
        .map_err(refusal)?;
    Ok(receipts(StatusCode::CREATED, &submitted))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StreamQuery {
    /// For a regulator: only this partner's notice changes.
    partner: Option<String>,
}

/// `GET /v1/inbox/stream`: Server-Sent Events, one per notice change concerning the
/// caller's partner (event `notice.issued` or `notice.settled`, id the log entry,
/// data as the webhook payload). Reconnecting with `Last-Event-ID` replays the changes
/// since that entry from the log, so a dropped connection misses nothing.
pub async fn stream(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    let q: StreamQuery = query(&uri)?;
    let partner = inbox_partner(&caller, q.partner)?;
    let since = headers
        .get("last-event-id")
        .map(|v| {
            v.to_str()
                .ok()
                .and_then(|t| t.split_once(':'))
                .and_then(|(seq, idx)| Some((seq.parse::<u64>().ok()?, idx.parse::<u32>().ok()?)))
                .ok_or_else(|| {
                    ApiError::validation(
                        "Last-Event-ID",
                        "must be an event id this stream sent (SEQ:N)",
                    )
                })
        })
        .transpose()?;
    // Subscribed before the replay is read, so nothing falls between the two.
    let live = state.feed.subscribe();
    let feed_at = state
        .webhooks
        .feed_position()
        .await
        .map_err(ApiError::internal)?;
    let (replay, live_from) = match (since, feed_at) {
        (Some(since), Some(to)) => {
            let replay = changes_between(&state, since.0, to)
                .await
                .map_err(ApiError::internal)?
                .into_iter()
                .filter(|c| (c.seq, c.idx) > since)
                .collect();
            // What the replay covered may also arrive live: skip it there.
            (replay, to)
        }
        _ => (Vec::new(), 0),
    };
    let closing = state.closing.subscribe();
    let wanted = move |c: &NoticeChange| partner.as_deref().is_none_or(|p| c.concerns(p));
    let replay: Vec<NoticeChange> = replay.into_iter().filter(|c| wanted(c)).collect();
    let events = futures_util::stream::unfold(
        (replay.into_iter(), live, closing, wanted),
        move |(mut replay, mut live, mut closing, wanted)| async move {
            if let Some(change) = replay.next() {
                return Some((
                    Ok::<Event, std::convert::Infallible>(event(&change)),
                    (replay, live, closing, wanted),
                ));
            }
            loop {
                let next = tokio::select! {
                    next = live.recv() => next,
                    _ = closing.wait_for(|c| *c) => return None,
                };
                match next {
                    Ok(change) if change.seq >= live_from && wanted(&change) => {
                        return Some((
                            Ok::<Event, std::convert::Infallible>(event(&change)),
                            (replay, live, closing, wanted),
                        ));
                    }
                    Ok(_) => continue,
                    // Too far behind: end the stream; the client reconnects with
                    // Last-Event-ID and the log fills the gap.
                    Err(RecvError::Lagged(_)) | Err(RecvError::Closed) => return None,
                }
            }
        },
    );
    let mut response = Sse::new(events)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response();
    response
        .headers_mut()
        .insert("cache-control", HeaderValue::from_static("no-store"));
    Ok(response)
}

fn event(change: &NoticeChange) -> Event {
    Event::default()
        .event(change.event_type)
        .id(format!("{}:{}", change.seq, change.idx))
        .data(change.payload().to_string())
}
