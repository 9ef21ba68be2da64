//! Submissions signed by the partner itself, for partners that hold their own key
//! (custody `partner-held`): the service never sees that key, so a command is recorded
//! in two steps.
//!
//! 1. `POST /v1/commands/prepare` decides the command exactly as `POST /v1/commands`
//!    does (pseudonyms, the protocol rules, the stream's version) and answers with the
//!    entries it would record, unsigned: each with the bytes to sign.
//! 2. `POST /v1/commands/prepared/{id}` takes one Ed25519 signature per entry. The
//!    ledger verifies each against the partner's registered key and the streams'
//!    expected versions; a bad signature is refused (422, `bad-signature`) and nothing
//!    is written, and the prepared command stays available to sign again.
//!
//! A prepared command lives in this process's memory for [`PREPARED_TTL`]; the decision
//! is never taken from the client, so what is signed is what the rules allowed.

use super::commands::{intake, refusal};
use crate::service::access::{decide, Action, Caller};
use crate::service::problem::ApiError;
use crate::service::state::AppState;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use domain::service::{Decided, Prepared, SubmitError};
use ledger::entry::{submission_message, SignedSubmission};
use ledger::keyring::{Custody, KeyringError};
use ledger::pipeline::AppendError;
use rand_core::{OsRng, RngCore};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a prepared command waits for its signatures.
pub const PREPARED_TTL: Duration = Duration::from_secs(600);

/// Most prepared commands held at once; beyond it the oldest expire first.
pub const PREPARED_LIMIT: usize = 10_000;

/// A decided command waiting for its partner's signatures.
pub struct Waiting {
    pub prepared: Prepared,
    pub expires: Instant,
}

pub async fn prepare(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (command, partner, key) = intake(&state, &caller, &headers, &body).await?;
    let key_id = partner_held_key(&state, &partner)?;
    let decided = state
        .domain
        .prepare(command, &partner, &key_id, &key)
        .await
        .map_err(refusal)?;
    let prepared = match decided {
        // A retry of a command already recorded: its receipts, as POST /v1/commands.
        Decided::Recorded(submitted) => {
            return Ok(super::commands::receipts(StatusCode::OK, &submitted))
        }
        Decided::ToSign(prepared) => prepared,
    };
    let mut entries = Vec::with_capacity(prepared.entries.len());
    for entry in &prepared.entries {
        // The same bytes the ledger will hash: built by the ledger's own encoder.
        let signed = SignedSubmission::with_signature(entry.submission.clone(), [0; 64])
            .map_err(ApiError::internal)?;
        entries.push(json!({
            "submission": entry.submission,
            "canonical": BASE64.encode(signed.canonical()),
            "submission_hash": signed.hash().to_hex(),
            "sign": BASE64.encode(submission_message(&signed.hash())),
            "content": entry.content,
        }));
    }
    let id = prepared_id()?;
    let expires_in = PREPARED_TTL.as_secs();
    let answer = json!({
        "prepared": id,
        "stream": prepared.stream,
        "events": prepared.events,
        "expires_in": expires_in,
        "entries": entries,
        "commit": format!("/v1/commands/prepared/{id}"),
    });
    state.hold_prepared(
        id,
        Waiting {
            prepared,
            expires: Instant::now() + PREPARED_TTL,
        },
    );
    Ok((StatusCode::OK, Json(answer)).into_response())
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signatures {
    /// Standard base64 of each entry's 64-byte Ed25519 signature, in order.
    signatures: Vec<String>,
}

pub async fn commit(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let given: Signatures = serde_json::from_slice(&body).map_err(|e| {
        ApiError::validation(
            "signatures",
            format!("expected {{\"signatures\": [base64, …]}}: {e}"),
        )
    })?;
    let mut signatures = Vec::with_capacity(given.signatures.len());
    for (i, text) in given.signatures.iter().enumerate() {
        let raw = BASE64.decode(text).ok().filter(|raw| raw.len() == 64);
        let signature = raw
            .and_then(|raw| <[u8; 64]>::try_from(raw.as_slice()).ok())
            .ok_or_else(|| {
                ApiError::validation(
                    &format!("signatures[{i}]"),
                    "must be standard base64 of a 64-byte Ed25519 signature",
                )
            })?;
        signatures.push(signature);
    }
    let waiting = state.take_prepared(&id).ok_or_else(|| {
        ApiError::NotFound(format!(
            "no prepared command {id}: it was committed, or it expired after {} s; prepare it again",
            PREPARED_TTL.as_secs()
        ))
    })?;
    // Only the partner it was prepared for may sign it, by the same decision as any
    // submission.
    if let Err(e) = decide(
        &caller,
        Action::Submit {
            partner: &waiting.prepared.author,
        },
    ) {
        state.hold_prepared(id, waiting);
        return Err(e);
    }
    match state
        .domain
        .commit(waiting.prepared.clone(), &signatures)
        .await
    {
        Ok(submitted) => Ok(super::commands::receipts(StatusCode::CREATED, &submitted)),
        Err(e) => {
            let retryable = matches!(
                &e,
                SubmitError::Ledger(AppendError::Key(KeyringError::BadSignature { .. }))
                    | SubmitError::Refused(_)
            );
            if retryable {
                state.hold_prepared(id, waiting);
            }
            Err(match e {
                SubmitError::Ledger(AppendError::Key(e @ KeyringError::BadSignature { .. })) => {
                    ApiError::BadSignature(format!(
                        "{e}; sign each entry's `sign` bytes exactly as given"
                    ))
                }
                other => refusal(other),
            })
        }
    }
}

/// The partner's current key, which must be one it holds itself.
fn partner_held_key(state: &AppState, partner: &str) -> Result<String, ApiError> {
    let current = state.current_key(partner)?;
    match current.custody {
        Custody::PartnerHeld => Ok(current.key_id),
        Custody::Custodial => Err(ApiError::validation(
            "by.partner",
            format!("{partner}'s key is held by this service, which signs for it: submit with POST /v1/commands"),
        )),
    }
}

fn prepared_id() -> Result<String, ApiError> {
    let mut random = [0u8; 16];
    OsRng
        .try_fill_bytes(&mut random)
        .map_err(ApiError::internal)?;
    Ok(format!("prep_{}", hex::encode(random)))
}
