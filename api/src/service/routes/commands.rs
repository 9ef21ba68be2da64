//! `POST /v1/commands`: one domain command, decided by the domain's rules and recorded,
//! signed with the acting partner's custodial key. Answers with the receipts (entry,
//! inclusion proof, signed checkpoint), enough to check the record offline.

use crate::service::access::{decide, Action, Caller};
use crate::service::problem::ApiError;
use crate::service::state::AppState;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use domain::refusal::Refusal;
use domain::service::{SubmitError, Submitted};
use ledger::pipeline::AppendError;
use rand_core::{OsRng, RngCore};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// Longest Idempotency-Key accepted.
const KEY_LIMIT: usize = 200;

pub async fn submit(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (command, partner, key) = intake(&state, &caller, &headers, &body).await?;
    let signer = state.signer(&partner).await?;
    let submitted = state
        .domain
        .submit(command, &signer, &key)
        .await
        .map_err(refusal)?;
    Ok(receipts(StatusCode::CREATED, &submitted))
}

/// What every command request starts with: the command parsed, the partner it acts
/// for allowed to this caller, and the key it is recorded under, claimed for this body.
pub(super) async fn intake(
    state: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(Value, String, String), ApiError> {
    let command: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::validation("body", format!("not JSON: {e}")))?;
    let partner = acting_partner(&command)?;
    decide(caller, Action::Submit { partner: &partner })?;
    let key = idempotency_key(headers, &partner)?;
    claim_key(state, headers, &partner, &key, body).await?;
    Ok((command, partner, key))
}

/// The partner a command acts for, `by.partner`.
fn acting_partner(command: &Value) -> Result<String, ApiError> {
    Ok(command
        .get("by")
        .and_then(|by| by.get("partner"))
        .and_then(Value::as_str)
        .ok_or_else(|| {
            ApiError::validation(
                "by.partner",
                "the acting partner's code is required: \"by\": {\"partner\": …, \"user\": …, \"role\": …}",
            )
        })?
        .to_string())
}

/// Binds a client's Idempotency-Key to this request's body; a reuse for another body
/// is a conflict.
pub(super) async fn claim_key(
    state: &AppState,
    headers: &HeaderMap,
    partner: &str,
    key: &str,
    body: &[u8],
) -> Result<(), ApiError> {
    if !headers.contains_key("idempotency-key") {
        return Ok(());
    }
    let body_hash = hex::encode(Sha256::digest(body));
    if state
        .access
        .claim_idempotency_key(partner, key, &body_hash)
        .await?
    {
        Ok(())
    } else {
        Err(ApiError::Conflict(
            "this Idempotency-Key was first used for a different request; use a new key for a new request".into(),
        ))
    }
}

/// The answer to a recorded command: `{events, receipts, stream}`, written straight
/// to bytes (see [`ledger::pipeline::Receipt::write_json`]).
pub(super) fn receipts(status: StatusCode, submitted: &Submitted) -> Response {
    let mut out = Vec::with_capacity(2048 * submitted.receipts.len());
    out.extend_from_slice(b"{\"events\":");
    // Strings always serialize.
    let _ = serde_json::to_writer(&mut out, &submitted.events);
    out.extend_from_slice(b",\"receipts\":[");
    for (i, receipt) in submitted.receipts.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        receipt.write_json(&mut out);
    }
    out.extend_from_slice(b"],\"stream\":");
    let _ = serde_json::to_writer(&mut out, &submitted.stream);
    out.push(b'}');
    (status, [(header::CONTENT_TYPE, "application/json")], out).into_response()
}

/// The key the ledger records the command under: the client's, scoped to its partner so
/// two partners' keys never collide; without one, a fresh random key (the request is
/// then not safely retryable). A key stays bound to the first body sent with it, even
/// if that request was refused: a corrected command needs a new key.
pub(super) fn idempotency_key(headers: &HeaderMap, partner: &str) -> Result<String, ApiError> {
    match headers.get("idempotency-key") {
        Some(value) => {
            let text = value
                .to_str()
                .ok()
                .filter(|t| {
                    !t.is_empty() && t.len() <= KEY_LIMIT && t.bytes().all(|b| b.is_ascii_graphic())
                })
                .ok_or_else(|| {
                    ApiError::validation(
                        "Idempotency-Key",
                        format!("must be 1 to {KEY_LIMIT} visible ASCII characters"),
                    )
                })?;
            Ok(format!("http:{partner}:{text}"))
        }
        None => {
            let mut random = [0u8; 16];
            OsRng
                .try_fill_bytes(&mut random)
                .map_err(ApiError::internal)?;
            Ok(format!("http:{partner}:auto-{}", hex::encode(random)))
        }
    }
}

/// Maps the domain's and the ledger's refusals to problems; nothing was written.
pub(super) fn refusal(e: SubmitError) -> ApiError {
    match e {
        SubmitError::Refused(Refusal::Rule {
            rule,
            problem,
            remedy,
        }) => ApiError::Rule {
            rule: rule.id().to_string(),
            detail: format!("{problem}. To proceed: {remedy}"),
        },
        SubmitError::Refused(Refusal::Invalid { field, problem }) => ApiError::Validation {
            field,
            detail: problem,
        },
        SubmitError::Refused(Refusal::UnknownCode { kind, code, valid }) => ApiError::Validation {
            field: kind.clone(),
            detail: Refusal::UnknownCode { kind, code, valid }.to_string(),
        },
        SubmitError::Ledger(e @ AppendError::WrongExpectedVersion { .. }) => {
            ApiError::Conflict(format!("{e}; read the stream again and decide again"))
        }
        SubmitError::Ledger(e @ AppendError::IdempotencyKeyReused { .. }) => {
            ApiError::Conflict(e.to_string())
        }
        SubmitError::Ledger(e @ AppendError::Invalid(_)) => {
            ApiError::validation("body", e.to_string())
        }
        SubmitError::WrongSigner { .. } => ApiError::Forbidden(e.to_string()),
        other => ApiError::internal(other),
    }
}
