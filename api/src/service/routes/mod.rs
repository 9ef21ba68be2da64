//! The API's routes, one module per area. Every handler that touches partners' data
//! takes a [`Caller`](super::access::Caller) and asks [`decide`](super::access::decide)
//! before anything else.

mod admin;
mod commands;
mod feeds;
mod health;
mod ledger;
mod notices;
mod signed;

pub use signed::{Waiting, PREPARED_LIMIT};
mod views;
mod webhooks;

use super::state::AppState;
use axum::routing::{delete, get, post};
use axum::Router;
use std::sync::Arc;

pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .route("/problems/{kind}", get(health::problem_page))
        .route("/v1/commands", post(commands::submit))
        .route("/v1/commands/prepare", post(signed::prepare))
        .route("/v1/commands/prepared/{id}", post(signed::commit))
        .route("/v1/inbox", get(notices::inbox))
        .route("/v1/inbox/acknowledge", post(notices::acknowledge))
        .route("/v1/inbox/stream", get(notices::stream))
        .route("/v1/webhooks", post(webhooks::create).get(webhooks::list))
        .route("/v1/webhooks/{id}", delete(webhooks::disable))
        .route("/v1/webhooks/{id}/deliveries", get(webhooks::deliveries))
        .route("/v1/views", get(views::list))
        .route("/v1/views/{view}", get(views::rows))
        .route("/v1/deadlines", get(views::deadlines))
        .route("/v1/deadlines.ics", get(feeds::deadlines_ics))
        .route("/v1/calendar/feeds", post(feeds::issue_feed))
        .route("/v1/calendar/feeds/{id}", delete(feeds::revoke_feed))
        .route("/v1/calendar/{file}", get(feeds::calendar_feed))
        .route("/v1/registers/{file}", get(feeds::register_csv))
        .route("/v1/ledger/checkpoint", get(ledger::checkpoint))
        .route("/v1/ledger/entries", get(ledger::entries))
        .route("/v1/ledger/proofs/inclusion/{seq}", get(ledger::inclusion))
        .route("/v1/ledger/proofs/consistency", get(ledger::consistency))
        .route("/v1/ledger/export/{file}", get(ledger::export))
        .route("/v1/admin/users", post(admin::create_user))
        .route("/v1/admin/users/{name}/tokens", post(admin::issue_token))
        .route("/v1/admin/tokens/{id}", delete(admin::revoke_token))
        .route(
            "/v1/admin/partners/{partner}/keys",
            post(admin::register_partner_key),
        )
}

/// Parses a query string into `T`, naming the parameter that is wrong.
pub fn query<T: serde::de::DeserializeOwned>(
    uri: &axum::http::Uri,
) -> Result<T, super::problem::ApiError> {
    let text = uri.query().unwrap_or_default();
    serde_urlencoded_like(text)
}

/// Query strings here are flat `name=value` pairs, every value text (numbers are parsed
/// by [`number`], which names the parameter); read through JSON so that an unknown or
/// missing parameter is named.
fn serde_urlencoded_like<T: serde::de::DeserializeOwned>(
    text: &str,
) -> Result<T, super::problem::ApiError> {
    use super::problem::ApiError;
    let mut map = serde_json::Map::new();
    for pair in text.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let name = percent_decode(name)
            .ok_or_else(|| ApiError::validation(name, "is not valid percent-encoding"))?;
        let value = percent_decode(value)
            .ok_or_else(|| ApiError::validation(&name, "is not valid percent-encoding"))?;
        if map
            .insert(name.clone(), serde_json::Value::String(value))
            .is_some()
        {
            return Err(ApiError::validation(&name, "is given more than once"));
        }
    }
    serde_json::from_value(serde_json::Value::Object(map)).map_err(|e| {
        let text = e.to_string();
        let field = text.split('`').nth(1).unwrap_or("query").to_string();
        ApiError::validation(&field, text)
    })
}

/// A query parameter that must be a whole number.
pub fn number(name: &str, value: Option<&str>) -> Result<Option<u64>, super::problem::ApiError> {
    value
        .map(|v| {
            v.parse::<u64>().map_err(|_| {
                super::problem::ApiError::validation(name, format!("{v:?} is not a whole number"))
            })
        })
        .transpose()
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Q {
        from: String,
        name: Option<String>,
    }

    #[test]
    fn query_parameters_are_decoded_and_named_when_wrong() {
        let q: Q = serde_urlencoded_like("from=5&name=a%20b+c").unwrap();
        assert_eq!((q.from.as_str(), q.name.as_deref()), ("5", Some("a b c")));
        let e = number("from", Some("x")).unwrap_err();
        assert!(e.to_string().starts_with("from"), "{e}");
        let e = serde_urlencoded_like::<Q>("from=1&from=2").unwrap_err();
        assert!(e.to_string().contains("more than once"), "{e}");
        let e = serde_urlencoded_like::<Q>("from=1&limt=2").unwrap_err();
        assert!(e.to_string().contains("limt"), "{e}");
    }
}
