//! Liveness, readiness and the pages the problem `type` URIs point at, which answer
//! without a token (they say nothing about partners' data); and the metrics, which
//! need an administrator's or regulator's token.

use crate::service::access::{decide, Action, Caller};
use crate::service::metrics::Gauges;
use crate::service::problem::{ApiError, KINDS};
use crate::service::state::AppState;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use ledger::store::LedgerStore;
use serde_json::{json, Value};
use std::sync::Arc;

/// Views further behind than this make the service not ready.
const READY_LAG_SECONDS: f64 = 5.0;

/// `GET /healthz`: the process is up.
pub async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// `GET /readyz`: the store answers and the views are caught up (within a few seconds).
pub async fn readyz(State(state): State<Arc<AppState>>) -> Result<Json<Value>, ApiError> {
    state
        .ledger()
        .store()
        .chain(state.ledger().origin())
        .await
        .map_err(|e| ApiError::Unavailable(format!("the store does not answer: {e}")))?;
    state
        .access
        .ping()
        .await
        .map_err(|e| ApiError::Unavailable(format!("the access store does not answer: {e}")))?;
    let views = state
        .projector
        .status()
        .await
        .map_err(|e| ApiError::Unavailable(format!("the views do not answer: {e}")))?;
    if let Some(v) = views.iter().find(|v| v.stopped.is_some()) {
        return Err(ApiError::Unavailable(format!(
            "view {} stopped: {}",
            v.view,
            v.stopped.as_deref().unwrap_or_default()
        )));
    }
    if let Some(v) = views.iter().find(|v| v.lag_seconds > READY_LAG_SECONDS) {
        return Err(ApiError::Unavailable(format!(
            "view {} is {:.1} s behind the log",
            v.view, v.lag_seconds
        )));
    }
    let behind: u64 = views.iter().map(|v| v.behind).max().unwrap_or(0);
    Ok(Json(json!({ "status": "ready", "views_behind": behind })))
}

/// `GET /problems/{kind}`: what a refusal means, for the humans who follow its `type`.
pub async fn problem_page(Path(kind): Path<String>) -> Result<impl IntoResponse, ApiError> {
    let (_, title, what) = KINDS
        .iter()
        .find(|(k, _, _)| *k == kind)
        .ok_or_else(|| ApiError::NotFound(format!("there is no problem type {kind:?}")))?;
    Ok((
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{title}\n\n{what}\n"),
    ))
}

/// `GET /metrics`: Prometheus text exposition.
pub async fn metrics(
    State(state): State<Arc<AppState>>,
    caller: Caller,
) -> Result<impl IntoResponse, ApiError> {
    decide(&caller, Action::ReadMetrics)?;
    let views = state.projector.status().await.map_err(ApiError::internal)?;
    let tree_size = state
        .ledger()
        .latest_checkpoint()
        .await
        .map_err(ApiError::internal)?
        .map_or(0, |(size, _)| size);
    let text = state.metrics.render(&Gauges {
        ledger: state.ledger().stats(),
        tree_size,
        views: &views,
    });
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    ))
}
