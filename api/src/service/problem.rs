//! Every refusal the HTTP API gives, as RFC 9457 `application/problem+json`.
//!
//! Each kind of refusal has a stable `type` URI, `/problems/KIND`, relative to the
//! service (RFC 9457 §3.1.1 allows a relative reference); the service answers it with a
//! page saying what the refusal means and what to do. Handlers return [`ApiError`];
//! axum's own refusals (unknown route, wrong method, oversized body) are rewritten into
//! the same form by [`problem_for_bare_errors`], so a client parses one format only.

use axum::body::Body;
use axum::http::{header, HeaderValue, Response, StatusCode};
use axum::response::IntoResponse;
use serde_json::{json, Value};

pub const PROBLEM_JSON: &str = "application/problem+json";

/// One refusal, named by what a client must change.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed: a field is missing, of the wrong type or out of range.
    #[error("{field}: {detail}")]
    Validation { field: String, detail: String },
    /// A domain rule refused the command; nothing was written.
    #[error("refused by rule {rule}: {detail}")]
    Rule { rule: String, detail: String },
    /// A partner-signed submission whose author signature does not verify against the
    /// partner's registered key; nothing was written.
    #[error("{0}")]
    BadSignature(String),
    /// The stream moved on (expected version), or an idempotency key was reused for
    /// something else.
    #[error("{0}")]
    Conflict(String),
    #[error("a bearer token is needed: send `Authorization: Bearer TOKEN`")]
    Unauthenticated,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("the request body is larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("too many requests for this token; retry after {retry_after} s")]
    RateLimited { retry_after: u64 },
    #[error("{0}")]
    Unavailable(String),
    /// Something failed that is not the client's doing; its detail goes to the log,
    /// not to the client.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn validation(field: &str, detail: impl Into<String>) -> ApiError {
        ApiError::Validation {
            field: field.to_string(),
            detail: detail.into(),
        }
    }

    pub fn internal(error: impl std::fmt::Display) -> ApiError {
        ApiError::Internal(error.to_string())
    }

    /// The kind's slug, the last segment of its `type` URI.
    pub fn kind(&self) -> &'static str {
        match self {
            ApiError::Validation { .. } => "validation",
            ApiError::Rule { .. } => "rule",
            ApiError::BadSignature(_) => "bad-signature",
            ApiError::Conflict(_) => "conflict",
            ApiError::Unauthenticated => "unauthenticated",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not-found",
            ApiError::MethodNotAllowed(_) => "method-not-allowed",
            ApiError::TooLarge { .. } => "too-large",
            ApiError::RateLimited { .. } => "rate-limited",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Internal(_) => "internal",
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Validation { .. } => StatusCode::BAD_REQUEST,
            ApiError::Rule { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::BadSignature(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Unauthenticated => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The problem document.
    pub fn body(&self) -> Value {
        let kind = self.kind();
        let detail = match self {
            // Internal details (paths, SQL) stay in the log.
            ApiError::Internal(_) => {
                "the service could not complete the request; it has been logged".to_string()
            }
            other => other.to_string(),
        };
        let mut body = json!({
            "type": format!("/problems/{kind}"),
            "title": title(kind),
            "status": self.status().as_u16(),
            "detail": detail,
        });
        match self {
            ApiError::Validation { field, .. } => body["field"] = json!(field),
            ApiError::Rule { rule, .. } => body["rule"] = json!(rule),
            ApiError::RateLimited { retry_after } => body["retry_after"] = json!(retry_after),
            _ => {}
        }
        body
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> axum::response::Response {
        if let ApiError::Internal(why) = &self {
            tracing::error!(error = %why, "internal error");
        }
        let mut response = problem_response(self.status(), &self.body());
        match &self {
            ApiError::Unauthenticated => {
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"isa-ledger\""),
                );
            }
            ApiError::RateLimited { retry_after } => {
                if let Ok(v) = HeaderValue::from_str(&retry_after.to_string()) {
                    response.headers_mut().insert(header::RETRY_AFTER, v);
                }
            }
            _ => {}
        }
        response
    }
}

fn problem_response(status: StatusCode, body: &Value) -> axum::response::Response {
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    response
}

/// Every kind, with its title and what a client should do: served at `/problems/KIND`
/// and listed in the API description.
pub const KINDS: &[(&str, &str, &str)] = &[
    ("validation", "The request is not valid", "Correct the field named in `field` and send the request again."),
    ("rule", "A protocol rule refused the command", "Nothing was recorded. `rule` names the rule; `detail` says what would satisfy it."),
    ("bad-signature", "The author signature does not verify", "Nothing was recorded. Sign the `sign` bytes of each prepared entry, exactly as given, with the partner's current registered key, and send the base64 signatures in order."),
    ("conflict", "The request conflicts with what is recorded", "The stream changed since you read it, or the idempotency key was used for a different request. Read again and decide again."),
    ("unauthenticated", "No valid bearer token", "Send `Authorization: Bearer TOKEN` with a token an administrator issued."),
    ("forbidden", "Your role or partner may not do this", "Ask your DPO or the administrator; need-to-know limits what each partner sees."),
    ("not-found", "No such thing", "Check the path, the identifier or the sequence number."),
    ("method-not-allowed", "The resource does not take this method", "Use a method the `Allow` header lists."),
    ("too-large", "The request body is too large", "Send a smaller body; large narratives belong in several events."),
    ("rate-limited", "Too many requests", "Wait the number of seconds in `Retry-After` and retry."),
    ("unavailable", "The service cannot take this now", "It is shutting down or not ready; retry shortly, with the same Idempotency-Key."),
    ("internal", "The service failed", "Nothing you sent was lost or altered by the failure; retry with the same Idempotency-Key and report it if it persists."),
];

fn title(kind: &str) -> &'static str {
    KINDS
        .iter()
        .find(|(k, _, _)| *k == kind)
        .map_or("Error", |(_, title, _)| title)
}

/// Rewrites a refusal that is not already a problem document (axum's 404 for an
/// unknown route, 405, 413 from the body limit, 415) into one.
pub async fn problem_for_bare_errors(
    axum::extract::State(state): axum::extract::State<std::sync::Arc<super::state::AppState>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let path = request.uri().path().to_string();
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(PROBLEM_JSON.as_bytes()));
    if is_problem {
        return response;
    }
    let error = match status {
        StatusCode::NOT_FOUND => ApiError::NotFound(format!("there is no resource at {path}")),
        StatusCode::METHOD_NOT_ALLOWED => {
            ApiError::MethodNotAllowed(format!("{path} does not take this method; see Allow"))
        }
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::TooLarge {
            limit: state.config.body_limit,
        },
        StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            ApiError::validation("content-type", "send `Content-Type: application/json`")
        }
        StatusCode::REQUEST_TIMEOUT | StatusCode::GATEWAY_TIMEOUT => {
            ApiError::Unavailable("the request took too long and was abandoned".into())
        }
        s if s.is_client_error() => ApiError::validation("request", s.to_string()),
        s => ApiError::Internal(format!("{s} from {path}")),
    };
    let mut out = error.into_response();
    // Keep headers such as Allow and Retry-After.
    for (name, value) in response.headers() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            out.headers_mut().insert(name.clone(), value.clone());
        }
    }
    out
}
