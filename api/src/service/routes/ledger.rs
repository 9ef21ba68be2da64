//! The log itself over HTTP: the latest signed checkpoint (C2SP signed note, as text),
//! entries by range (as `isa-ledger export` writes them), and inclusion and consistency
//! proofs, each computed from O(log n) stored nodes.

use super::{number, query};
use crate::service::access::{decide, Action, Caller};
use crate::service::problem::ApiError;
use crate::service::state::AppState;
use axum::extract::{Path, State};
use axum::http::{header, Uri};
use axum::response::IntoResponse;
use axum::Json;
use ledger::hash::Hash;
use ledger::pipeline::AppendError;
use ledger::store::LedgerStore;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;

const ENTRIES_DEFAULT: u32 = 100;
const ENTRIES_LIMIT: u32 = 1000;

/// `GET /v1/ledger/checkpoint` (and `/tlog/checkpoint`): the latest signed checkpoint,
/// `text/plain`.
pub async fn checkpoint(
    State(state): State<Arc<AppState>>,
    caller: Caller,
) -> Result<impl IntoResponse, ApiError> {
    decide(&caller, Action::ReadProofs)?;
    let (_, note) = latest(&state).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        note,
    ))
}

/// The latest checkpoint's size and signed note.
pub(super) async fn latest(state: &AppState) -> Result<(u64, String), ApiError> {
    state
        .ledger()
        .latest_checkpoint()
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::NotFound("the log has no checkpoint yet".into()))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EntriesQuery {
    from: Option<String>,
    limit: Option<String>,
}

/// `GET /v1/ledger/entries?from=N&limit=M`: entries in order, each as its export line
/// (`{"content":…,"entry":…}`), within the latest checkpoint.
pub async fn entries(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    uri: Uri,
) -> Result<Json<Value>, ApiError> {
    decide(&caller, Action::ReadEntries)?;
    let q: EntriesQuery = query(&uri)?;
    let from = number("from", q.from.as_deref())?.unwrap_or(0);
    let limit = number("limit", q.limit.as_deref())?.map_or(ENTRIES_DEFAULT, |n| {
        n.clamp(1, u64::from(ENTRIES_LIMIT)) as u32
    });
    let (size, _) = latest(&state).await?;
    let limit = limit.min(size.saturating_sub(from).min(u64::from(u32::MAX)) as u32);
    let stored = if limit == 0 {
        Vec::new()
    } else {
        state
            .ledger()
            .store()
            .entries(state.ledger().chain_id(), from, limit)
            .await
            .map_err(ApiError::internal)?
    };
    let mut lines = Vec::with_capacity(stored.len());
    for entry in &stored {
        let line = ledger::entry::export_line(&entry.bytes, entry.content.as_ref())
            .map_err(ApiError::internal)?;
        lines.push(serde_json::from_slice::<Value>(&line).map_err(ApiError::internal)?);
    }
    let next = from + lines.len() as u64;
    Ok(Json(json!({
        "tree_size": size,
        "from": from,
        "entries": lines,
        "next": (next < size).then_some(next),
    })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InclusionQuery {
    tree_size: Option<String>,
}

/// `GET /v1/ledger/proofs/inclusion/{seq}?tree_size=N` (default: the latest size).
pub async fn inclusion(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(seq): Path<String>,
    uri: Uri,
) -> Result<Json<Value>, ApiError> {
    decide(&caller, Action::ReadProofs)?;
    let seq = number("seq", Some(&seq))?.unwrap_or(0);
    let q: InclusionQuery = query(&uri)?;
    let (latest_size, _) = latest(&state).await?;
    let size = number("tree_size", q.tree_size.as_deref())?.unwrap_or(latest_size);
    if seq >= size {
        return Err(ApiError::NotFound(format!(
            "entry {seq} is not in a tree of {size} entries"
        )));
    }
    let proof = state
        .ledger()
        .inclusion_proof(seq, size)
        .await
        .map_err(|e| proof_error("tree_size", e))?;
    Ok(Json(json!({
        "seq": seq,
        "tree_size": size,
        "root": state.ledger().root(size).await.map_err(ApiError::internal)?.to_base64(),
        "proof": proof.iter().map(Hash::to_base64).collect::<Vec<_>>(),
    })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConsistencyQuery {
    from: Option<String>,
    to: Option<String>,
}

/// `GET /v1/ledger/proofs/consistency?from=M&to=N` (`to` defaults to the latest size).
pub async fn consistency(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    uri: Uri,
) -> Result<Json<Value>, ApiError> {
    decide(&caller, Action::ReadProofs)?;
    let q: ConsistencyQuery = query(&uri)?;
    let from = number("from", q.from.as_deref())?
        .ok_or_else(|| ApiError::validation("from", "the older tree size is required"))?;
    let (latest_size, _) = latest(&state).await?;
    let to = number("to", q.to.as_deref())?.unwrap_or(latest_size);
    if from > to {
        return Err(ApiError::validation(
            "from",
            format!("{from} is larger than to ({to})"),
        ));
    }
    let proof = state
        .ledger()
        .consistency_proof(from, to)
        .await
        .map_err(|e| proof_error("to", e))?;
    Ok(Json(json!({
        "from": from,
        "to": to,
        "proof": proof.iter().map(Hash::to_base64).collect::<Vec<_>>(),
    })))
}

/// A size beyond the log is the caller's mistake; anything else is ours.
fn proof_error(field: &str, e: AppendError) -> ApiError {
    match e {
        AppendError::Proof(p) => ApiError::validation(field, p.to_string()),
        other => ApiError::internal(other),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExportQuery {
    tree_size: Option<String>,
}

/// `GET /v1/ledger/export/{file}?tree_size=N`: the files of `isa-ledger export`, for a
/// regulator to verify offline. Fetch `checkpoint` first and pass its tree size to the
/// others, so all four describe the same log while appends go on; `entries.jsonl` is
/// streamed a page at a time, never held whole.
pub async fn export(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(file): Path<String>,
    uri: Uri,
) -> Result<axum::response::Response, ApiError> {
    decide(&caller, Action::ReadEntries)?;
    let q: ExportQuery = query(&uri)?;
    let (latest_size, note) = latest(&state).await?;
    let size = number("tree_size", q.tree_size.as_deref())?.unwrap_or(latest_size);
    if size > latest_size {
        return Err(ApiError::validation(
            "tree_size",
            format!("the log has {latest_size} entries under its latest checkpoint"),
        ));
    }
    let text = [(header::CONTENT_TYPE, "text/plain; charset=utf-8")];
    let jsonl = [(header::CONTENT_TYPE, "application/jsonl")];
    let chain_id = state.ledger().chain_id();
    match file.as_str() {
        "checkpoint" => {
            if size != latest_size {
                return Err(ApiError::validation(
                    "tree_size",
                    "only the latest checkpoint is served; fetch it first and pass its size to the other files",
                ));
            }
            Ok((text, note).into_response())
        }
        "keys.jsonl" | "ledger.vkey" => {
            let (keys, vkey) = ledger::export::keys_at(
                state.ledger().store(),
                chain_id,
                state.ledger().origin(),
                size,
            )
            .await
            .map_err(ApiError::internal)?;
            Ok(if file == "keys.jsonl" {
                (jsonl, keys).into_response()
            } else {
                (text, vkey).into_response()
            })
        }
        "entries.jsonl" => {
            let pages = futures_util::stream::unfold(Some(0u64), move |from| {
                let state = state.clone();
                async move {
                    let from = from.filter(|f| *f < size)?;
                    let limit = ledger::export::EXPORT_PAGE.min((size - from) as u32);
                    let page = match state.ledger().store().entries(chain_id, from, limit).await {
                        Ok(page) if !page.is_empty() => page,
                        Ok(_) => return None,
                        Err(e) => return Some((Err(std::io::Error::other(e.to_string())), None)),
                    };
                    let next = page.last().map(|e| e.seq + 1);
                    let mut chunk = Vec::with_capacity(page.len() * 2048);
                    for entry in &page {
                        match ledger::entry::export_line(&entry.bytes, entry.content.as_ref()) {
                            Ok(line) => {
                                chunk.extend_from_slice(&line);
                                chunk.push(b'\n');
                            }
                            Err(e) => {
                                // Headers are gone by now: end the stream with an
                                // error, which the client sees as a broken transfer.
                                tracing::error!(seq = entry.seq, error = %e, "export: corrupt entry");
                                return Some((Err(std::io::Error::other(e.to_string())), None));
                            }
                        }
                    }
                    Some((Ok(axum::body::Bytes::from(chunk)), next))
                }
            });
            Ok((jsonl, axum::body::Body::from_stream(pages)).into_response())
        }
        other => Err(ApiError::NotFound(format!(
            "an export has checkpoint, entries.jsonl, keys.jsonl and ledger.vkey, not {other:?}"
        ))),
    }
}
