//! Bodies over the size limit, refused so the client hears why.
//!
//! A request that declares (`Content-Length`) a body larger than the limit is answered
//! 413 with a problem document without being handled. Most HTTP libraries write the
//! whole body before they read the answer; had the server answered and closed at once,
//! the kernel would reset the connection under them and they would report a broken
//! pipe, not the 413. So the server first reads and discards the declared body, up to
//! [`DRAIN_FACTOR`] times the limit and for at most [`DRAIN_TIME`]; a body declared
//! larger than that is answered at once and the connection closed. A body sent in
//! chunks, with no length declared, is cut off at the limit by the extractor as before.

use super::problem::ApiError;
use super::state::AppState;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use std::sync::Arc;
use std::time::Duration;

/// Declared bodies up to this many times the limit are read to the end before the 413.
const DRAIN_FACTOR: u64 = 8;

/// Longest a refused body is read for.
const DRAIN_TIME: Duration = Duration::from_secs(10);

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
    if declared <= (limit as u64).saturating_mul(DRAIN_FACTOR) {
        let mut body = request.into_body().into_data_stream();
        // Whatever ends the reading (the end, an error, the time), the answer is the same.
        let _ = tokio::time::timeout(DRAIN_TIME, async {
            while let Some(Ok(_)) = body.next().await {}
        })
        .await;
    }
    let mut response = ApiError::TooLarge { limit }.into_response();
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}
