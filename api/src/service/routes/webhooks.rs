//! A partner's webhooks: its DPO registers an address (the signing secret is shown
//! once), lists and stops them, and reads each one's delivery log.

use super::{number, query};
use crate::service::access::{decide, Action, Caller};
use crate::service::problem::ApiError;
use crate::service::state::AppState;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewWebhook {
    url: String,
    /// For an administrator: whose webhook. A DPO's is its own partner's.
    partner: Option<String>,
}

/// `POST /v1/webhooks` `{url}`: the webhook, with its `whsec_` secret shown this once.
pub async fn create(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let request: NewWebhook = serde_json::from_slice(&body).map_err(|e| {
        ApiError::validation("url", format!("expected {{\"url\": \"http://…\"}}: {e}"))
    })?;
    let partner = request.partner.unwrap_or_else(|| caller.partner.clone());
    decide(&caller, Action::ManageWebhooks { partner: &partner })?;
    let url = reqwest::Url::parse(&request.url)
        .map_err(|e| ApiError::validation("url", format!("not a URL: {e}")))?;
    match url.scheme() {
        "http" => {}
        "https" => {
            return Err(ApiError::validation(
                "url",
                "this build delivers over plain HTTP only: give the address of a relay on your network that forwards over TLS",
            ))
        }
        other => {
            return Err(ApiError::validation(
                "url",
                format!("{other}: is not an HTTP address"),
            ))
        }
    }
    if url.host_str().is_none() || !url.username().is_empty() || url.password().is_some() {
        return Err(ApiError::validation(
            "url",
            "give a host, and no user name or password (the signature authenticates each delivery)",
        ));
    }
    let (webhook, secret) = state
        .webhooks
        .create(&partner, url.as_str(), &caller.user)
        .await?;
    tracing::info!(webhook = %webhook.id, partner = %partner, by = %caller.user, "webhook registered");
    Ok((
        StatusCode::CREATED,
        Json(json!({ "webhook": webhook, "secret": secret })),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    partner: Option<String>,
}

/// `GET /v1/webhooks`: the caller's partner's webhooks (an administrator or regulator:
/// everyone's, or `?partner=`).
pub async fn list(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    uri: Uri,
) -> Result<Json<Value>, ApiError> {
    let q: ListQuery = query(&uri)?;
    let partner = q.partner.clone().unwrap_or_else(|| caller.partner.clone());
    let scope = decide(&caller, Action::ReadDeliveries { partner: &partner })?;
    let only = scope.party.or(q.partner);
    let webhooks = state.webhooks.list(only.as_deref()).await?;
    Ok(Json(json!({ "items": webhooks })))
}

async fn owned(
    state: &AppState,
    caller: &Caller,
    id: &str,
    manage: bool,
) -> Result<crate::service::delivery::webhooks::Webhook, ApiError> {
    let webhook = state
        .webhooks
        .get(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("there is no webhook {id:?}")))?;
    let action = if manage {
        Action::ManageWebhooks {
            partner: &webhook.partner,
        }
    } else {
        Action::ReadDeliveries {
            partner: &webhook.partner,
        }
    };
    decide(caller, action).map_err(|e| match e {
        // Another partner's webhook is not there, as far as this caller knows.
        ApiError::Forbidden(_) if caller.partner != webhook.partner => {
            ApiError::NotFound(format!("there is no webhook {id:?}"))
        }
        other => other,
    })?;
    Ok(webhook)
}

/// `DELETE /v1/webhooks/{id}`: no more deliveries; the log of past ones stays.
pub async fn disable(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    owned(&state, &caller, &id, true).await?;
    state.webhooks.disable(&id).await?;
    tracing::info!(webhook = %id, by = %caller.user, "webhook stopped");
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeliveryQuery {
    /// Only deliveries after this one (`SEQ:N`, a delivery's `seq` and `idx`).
    after: Option<String>,
    limit: Option<String>,
}

/// `GET /v1/webhooks/{id}/deliveries`: every delivery in order, with its attempts,
/// the receiver's last answer and why it failed.
pub async fn deliveries(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
    uri: Uri,
) -> Result<Json<Value>, ApiError> {
    let webhook = owned(&state, &caller, &id, false).await?;
    let q: DeliveryQuery = query(&uri)?;
    let limit = number("limit", q.limit.as_deref())?.map_or(100, |n| n.clamp(1, 1000)) as u32;
    let after = q
        .after
        .as_deref()
        .map(|a| {
            a.split_once(':')
                .and_then(|(s, i)| Some((s.parse().ok()?, i.parse().ok()?)))
                .ok_or_else(|| ApiError::validation("after", "must be SEQ:N of a delivery"))
        })
        .transpose()?;
    let items = state.webhooks.deliveries(&id, after, limit).await?;
    let next = (items.len() == limit as usize)
        .then(|| items.last().map(|d| format!("{}:{}", d.seq, d.idx)))
        .flatten();
    Ok(Json(
        json!({ "webhook": webhook, "items": items, "next_after": next }),
    ))
}
