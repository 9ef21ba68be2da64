//! Users, tokens and partners' keys, for administrators. A token is shown once, when issued; only its
//! hash is kept.

use crate::service::access::{decide, Action, Caller, Role};
use crate::service::problem::ApiError;
use crate::service::state::AppState;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use ed25519_dalek::Signature;
use ledger::entry::decode_signature;
use ledger::keyring::Custody;
use ledger::keys::VerifierKey;
use ledger::pipeline::AppendError;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUser {
    name: String,
    partner: String,
    role: String,
}

fn body<T: serde::de::DeserializeOwned>(bytes: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| {
        let text = e.to_string();
        let field = text.split('`').nth(1).unwrap_or("body").to_string();
        ApiError::validation(&field, text)
    })
}

/// `POST /v1/admin/users` `{name, partner, role}`.
pub async fn create_user(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    bytes: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    decide(&caller, Action::Administer)?;
    let user: NewUser = body(&bytes)?;
    let role = Role::parse(&user.role).ok_or_else(|| {
        ApiError::validation("role", "must be practitioner, dpo, regulator or admin")
    })?;
    if user.name.is_empty()
        || user.name.len() > 100
        || !user
            .name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.@".contains(&b))
    {
        return Err(ApiError::validation(
            "name",
            "must be 1 to 100 letters, digits and - _ . @",
        ));
    }
    // Practitioners and DPOs act for a partner the log knows (one with a registered
    // key). A regulator (the ICO, an auditor) or an administrator (the operator) writes
    // nothing, so may belong to an organisation outside the partnership.
    let writes = matches!(role, Role::Practitioner | Role::Dpo);
    let known = state
        .ledger()
        .keyring()
        .records()
        .any(|r| r.partner == user.partner);
    if user.partner.is_empty() || (writes && !known) {
        return Err(ApiError::validation(
            "partner",
            format!("{:?} has no registered key in this log", user.partner),
        ));
    }
    state
        .access
        .create_user(&user.name, &user.partner, role)
        .await?;
    tracing::info!(user = %user.name, partner = %user.partner, role = role.as_str(), by = %caller.user, "user created");
    Ok((
        StatusCode::CREATED,
        Json(json!({ "name": user.name, "partner": user.partner, "role": role })),
    ))
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct NewToken {
    label: Option<String>,
}

/// `POST /v1/admin/users/{name}/tokens` `{label}`: the token, shown this once.
pub async fn issue_token(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(name): Path<String>,
    bytes: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    decide(&caller, Action::Administer)?;
    let request: NewToken = if bytes.is_empty() {
        NewToken::default()
    } else {
        body(&bytes)?
    };
    let issued = state
        .access
        .issue_token(&name, request.label.as_deref().unwrap_or(""))
        .await?;
    tracing::info!(user = %name, token = %issued.id, by = %caller.user, "token issued");
    Ok((
        StatusCode::CREATED,
        Json(json!({ "id": issued.id, "user": name, "token": issued.token })),
    ))
}

/// `DELETE /v1/admin/tokens/{id}`.
pub async fn revoke_token(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    decide(&caller, Action::Administer)?;
    state.access.revoke_token(&id).await?;
    state.forget_callers();
    tracing::info!(token = %id, by = %caller.user, "token revoked");
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewPartnerKey {
    /// Verifier-key text `PARTNER+KEYID+BASE64`.
    public_key: String,
    /// Base64 Ed25519 signature by the new key over its proof-of-possession message.
    possession: String,
}

/// `POST /v1/admin/partners/{partner}/keys` `{public_key, possession}`: a key the
/// partner holds itself from now on. Registered if the partner has no current key,
/// else the current one is rotated to it; either way an operator entry in the log.
/// The partner then signs its own submissions (`/v1/commands/prepare`).
pub async fn register_partner_key(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(partner): Path<String>,
    bytes: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    decide(&caller, Action::Administer)?;
    let request: NewPartnerKey = body(&bytes)?;
    let key = VerifierKey::parse(&request.public_key)
        .map_err(|e| ApiError::validation("public_key", e.to_string()))?;
    if key.name != partner {
        return Err(ApiError::validation(
            "public_key",
            format!("the key is named {:?}, not {partner:?}", key.name),
        ));
    }
    let possession = decode_signature(&request.possession)
        .map(|raw| Signature::from_bytes(&raw))
        .map_err(|_| {
            ApiError::validation(
                "possession",
                "must be standard base64 of a 64-byte Ed25519 signature",
            )
        })?;
    let current = state.ledger().current_key(&partner).map(|r| r.key_id);
    let ledger = state.ledger();
    let receipt = match &current {
        Some(old) => {
            ledger
                .rotate_partner_key(old, &key, Custody::PartnerHeld, &possession)
                .await
        }
        None => {
            ledger
                .register_partner_key(&key, Custody::PartnerHeld, &possession)
                .await
        }
    }
    .map_err(|e| match e {
        AppendError::Key(e) => ApiError::validation("possession", e.to_string()),
        other => ApiError::internal(other),
    })?;
    tracing::info!(partner = %partner, key = %key.id_hex(), by = %caller.user, "partner-held key registered");
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "partner": partner,
            "key_id": key.id_hex(),
            "custody": Custody::PartnerHeld,
            "replaces": current,
            "receipt": receipt.to_json(),
        })),
    ))
}
