//! Bodies over the size limit, refused so the client hears why.
//!
//! A request that declares (`Content-Length`) a body larger than the limit is answered
//! 413 with a problem document without being handled. Most HTTP libraries write the
//! whole body before they read the answer; had the server answered and closed at once,
//! the kernel would reset the connection under them and they would report a broken
//! pipe, not the 413. So for a known caller (a valid token within its rate) the server
//! first reads and discards the declared body: up to [`DRAIN_FACTOR`] times the limit,
//! for at most [`DRAIN_TIME`] (or half the request timeout), [`DRAINS_AT_ONCE`]
//! requests at a time. Anyone else, a client that sent `Expect: 100-continue` (it
//! waits for the server's word before sending, so refusing at once costs it nothing),
//! and a body declared larger still are answered at once and the connection closed. A
//! body sent in chunks, with no length declared, is cut off at the limit by the
//! extractor as before.

use super::access::Caller;
use super::problem::ApiError;
use super::state::AppState;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// Declared bodies up to this many times the limit are read to the end before the 413.
const DRAIN_FACTOR: u64 = 8;

/// Longest a refused body is read for.
const DRAIN_TIME: Duration = Duration::from_secs(10);

/// Refused bodies read at once: beyond this, callers are answered at once.
const DRAINS_AT_ONCE: usize = 4;

static DRAINS: Semaphore = Semaphore::const_new(DRAINS_AT_ONCE);

/// Answers a request whose declared body is over the limit with a 413; passes every
/// other request on.
pub async fn refuse_oversized(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let limit = state.config.body_limit;
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let Some(declared) = declared.filter(|n| *n > limit as u64) else {
        return next.run(request).await;
    };
    let (mut parts, body) = request.into_parts();
    // Only a known caller has its body read: nobody else can make the server take in
    // megabytes to throw away. The check also takes one of the token's requests.
    if let Err(refusal) = Caller::from_request_parts(&mut parts, &state).await {
        return closing(refusal.into_response());
    }
    let expects_continue = parts
        .headers
        .get(header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    let mut drained = false;
    if !expects_continue && declared <= (limit as u64).saturating_mul(DRAIN_FACTOR) {
        if let Ok(_permit) = DRAINS.try_acquire() {
            // Within the request timeout, so the 413 is what the caller gets.
            let within = DRAIN_TIME.min(state.config.request_timeout / 2);
            let mut chunks = body.into_data_stream();
            drained = tokio::time::timeout(within, async {
                while let Some(chunk) = chunks.next().await {
                    if chunk.is_err() {
                        return false;
                    }
                }
                true
            })
            .await
            .unwrap_or(false);
        }
    }
    let response = ApiError::TooLarge { limit }.into_response();
    // Read to its end, the connection can serve the next request.
    if drained {
        response
    } else {
        closing(response)
    }
}

fn closing(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}
