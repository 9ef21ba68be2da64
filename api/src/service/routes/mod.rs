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
mod tiles;
mod views;
mod webhooks;

pub use signed::{Waiting, PREPARED_LIMIT};

use super::state::AppState;
use axum::routing::{delete, get, post, MethodRouter};
use axum::Router;
use std::sync::Arc;

/// Who may call an endpoint, as the API description states it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// No token: says nothing about partners' data.
    None,
    /// `Authorization: Bearer TOKEN`; `decide` then judges the role and partner.
    Bearer,
    /// A calendar token in the path.
    CalendarToken,
}

/// One operation: where it is, what answers it, and what the API description says of
/// it. The router and `/openapi.json` are both built from [`ENDPOINTS`], so neither can
/// list an operation the other lacks.
pub struct Endpoint {
    pub method: &'static str,
    pub path: &'static str,
    pub handler: fn() -> MethodRouter<Arc<AppState>>,
    pub tag: &'static str,
    pub summary: &'static str,
    pub description: &'static str,
    pub auth: Auth,
    /// Query parameters: name, description.
    pub query: &'static [(&'static str, &'static str)],
    /// The request body's schema (a component name), if it takes one.
    pub request: Option<&'static str>,
    /// The success status, its media type and schema (component name; `None` for no
    /// body or a non-JSON body).
    pub ok: (u16, &'static str, Option<&'static str>),
}

const JSON: &str = "application/json";

macro_rules! endpoint {
    ($method:ident $path:literal => $handler:path, $tag:literal, $auth:ident,
     $summary:literal, $description:literal, query: $query:expr, request: $request:expr,
     ok: ($status:literal, $media:expr, $schema:expr)) => {
        Endpoint {
            method: stringify!($method),
            path: $path,
            handler: || $method($handler),
            tag: $tag,
            summary: $summary,
            description: $description,
            auth: Auth::$auth,
            query: $query,
            request: $request,
            ok: ($status, $media, $schema),
        }
    };
}

pub const ENDPOINTS: &[Endpoint] = &[
    endpoint!(post "/v1/commands" => commands::submit, "Commands", Bearer,
        "Record a domain command",
        "Decides one command by the protocols' rules and records its events, signed with the acting partner's custodial key. The subject's identifiers are replaced by keyed pseudonyms before anything is stored. Send `Idempotency-Key` to make a retry return the original receipts; a key reused for a different body is 409. Practitioners and DPOs act for their own partner only.",
        query: &[], request: Some("Command"), ok: (201, JSON, Some("Recorded"))),
    endpoint!(post "/v1/commands/prepare" => signed::prepare, "Commands", Bearer,
        "Prepare a command for a partner-held key",
        "For a partner that holds its own key: decides the command as `POST /v1/commands` does and returns its entries unsigned, each with the exact bytes to sign. Nothing is recorded until the signatures are sent to the `commit` address within 10 minutes. A command already recorded under the same Idempotency-Key returns its receipts instead (200, `Recorded`).",
        query: &[], request: Some("Command"), ok: (200, JSON, Some("Prepared"))),
    endpoint!(post "/v1/commands/prepared/{id}" => signed::commit, "Commands", Bearer,
        "Record a prepared command with the partner's signatures",
        "One base64 Ed25519 signature per prepared entry, in order. Each is verified against the partner's registered key; a bad one is 422 `bad-signature` and nothing is written (the prepared command can be signed again). A stream that moved since preparation is 409.",
        query: &[], request: Some("Signatures"), ok: (201, JSON, Some("Recorded"))),
    endpoint!(get "/v1/inbox" => notices::inbox, "Notices", Bearer,
        "A partner's inbox",
        "Notices the caller's partner received and must act on: Article 19 notices to acknowledge, SAR consultations to answer, onward-sharing requests to grant or refuse, breach alerts. Pending ones by default.",
        query: &[("status", "`pending` (default), `all`, or a stored status"), ("partner", "a regulator: whose inbox"), ("cursor", "the `next_cursor` of the previous page"), ("limit", "rows per page, at most 1000 (default 100)")],
        request: None, ok: (200, JSON, Some("Page"))),
    endpoint!(post "/v1/inbox/acknowledge" => notices::acknowledge, "Notices", Bearer,
        "Acknowledge an Article 19 notice",
        "Records `NoticeAcknowledged` on the notice's case, acting as the caller for its partner (the recipient). Without an Idempotency-Key the notice is the key, so a repeat returns the same receipt.",
        query: &[], request: Some("Acknowledgement"), ok: (201, JSON, Some("Recorded"))),
    endpoint!(get "/v1/inbox/stream" => notices::stream, "Notices", Bearer,
        "Notice changes as Server-Sent Events",
        "One event per notice change concerning the caller's partner: `notice.issued` (to its recipient) and `notice.settled` (to its issuer and recipient). Each event's `id` is `SEQ:N`; reconnect with `Last-Event-ID` and the changes since are replayed from the log. Each event's data is a `NoticeChange`.",
        query: &[("partner", "a regulator: only this partner's changes")],
        request: None, ok: (200, "text/event-stream", None)),
    endpoint!(post "/v1/webhooks" => webhooks::create, "Notices", Bearer,
        "Register a webhook",
        "A partner's DPO (or the administrator) registers an `http://` address. Every notice change for the partner is POSTed to it, signed per Standard Webhooks (`webhook-id`, `webhook-timestamp`, `webhook-signature: v1,BASE64(HMAC-SHA256(secret, ID.TIMESTAMP.BODY))`), in log order, retried with backoff. The `whsec_` secret is shown once.",
        query: &[], request: Some("NewWebhook"), ok: (201, JSON, Some("WebhookCreated"))),
    endpoint!(get "/v1/webhooks" => webhooks::list, "Notices", Bearer,
        "List webhooks",
        "The caller's partner's webhooks (administrator and regulator: everyone's, or `partner`'s). Secrets are never shown again.",
        query: &[("partner", "administrator or regulator: only this partner's")],
        request: None, ok: (200, JSON, Some("WebhookList"))),
    endpoint!(delete "/v1/webhooks/{id}" => webhooks::disable, "Notices", Bearer,
        "Stop a webhook",
        "No more deliveries; its delivery log stays readable.",
        query: &[], request: None, ok: (204, JSON, None)),
    endpoint!(get "/v1/webhooks/{id}/deliveries" => webhooks::deliveries, "Notices", Bearer,
        "A webhook's delivery log",
        "Every delivery in order: its attempts, the receiver's last answer, why it failed, when it was delivered.",
        query: &[("after", "`SEQ:N` of the last delivery of the previous page"), ("limit", "at most 1000 (default 100)")],
        request: None, ok: (200, JSON, Some("DeliveryPage"))),
    endpoint!(get "/v1/views" => views::list, "Views", Bearer,
        "Where each view stands",
        "Each view's position against the log, its lag, and whether it stopped.",
        query: &[], request: None, ok: (200, JSON, Some("ViewStatusList"))),
    endpoint!(get "/v1/views/{view}" => views::rows, "Views", Bearer,
        "A view's rows",
        "Rows in key order, a page at a time, only those the caller's partner is party to (a regulator: all). Views: breaches, sars, foi, complaints, retention, notices, disclosures, consents, agreements. Practitioners read disclosures, notices, consents and agreements.",
        query: &[("partner", "only rows this partner must act on"), ("status", "only rows in this status"), ("subject", "only rows about this subject pseudonym"), ("due_by", "only rows due by this date or instant"), ("at", "judge `overdue` at this RFC 3339 instant (default now)"), ("cursor", "the `next_cursor` of the previous page"), ("limit", "at most 1000 (default 100)")],
        request: None, ok: (200, JSON, Some("Page"))),
    endpoint!(get "/v1/deadlines" => views::deadlines, "Views", Bearer,
        "Everything owed, soonest first",
        "Deadlines across every view: breach reports (72 hours), SAR, FOI and complaint responses, retention reviews, notice responses, agreement reviews, each with the rule's explanation.",
        query: &[("partner", "a regulator: only this partner's"), ("at", "judge at this RFC 3339 instant (default now)")],
        request: None, ok: (200, JSON, Some("Deadlines"))),
    endpoint!(get "/v1/deadlines.ics" => feeds::deadlines_ics, "Feeds", Bearer,
        "Deadlines as iCalendar",
        "The same deadlines as an RFC 5545 calendar: all-day events for dates, a point in time for an instant, a reminder the day before; UIDs stable per deadline.",
        query: &[], request: None, ok: (200, "text/calendar", None)),
    endpoint!(post "/v1/calendar/feeds" => feeds::issue_feed, "Feeds", Bearer,
        "Issue a calendar feed",
        "A calendar token for the caller and the feed's path, shown once. Calendar applications subscribe to a URL and send no header; the token in the path opens that feed and nothing else, and is stored only as a hash.",
        query: &[], request: None, ok: (201, JSON, Some("CalendarFeed"))),
    endpoint!(delete "/v1/calendar/feeds/{id}" => feeds::revoke_feed, "Feeds", Bearer,
        "Revoke a calendar feed",
        "The caller's own calendar token stops working at once.",
        query: &[], request: None, ok: (204, JSON, None)),
    endpoint!(get "/v1/calendar/{file}" => feeds::calendar_feed, "Feeds", CalendarToken,
        "A calendar feed",
        "`TOKEN.ics`: the deadlines of the calendar token's user, as `GET /v1/deadlines.ics` gives them.",
        query: &[], request: None, ok: (200, "text/calendar", None)),
    endpoint!(get "/v1/registers/{file}" => feeds::register_csv, "Feeds", Bearer,
        "A register as CSV",
        "`VIEW.csv`: every row of a view the caller may read, the view's fields as columns (nested ones as JSON; cells a spreadsheet would run as formulas are written as text).",
        query: &[("status", "only rows in this status"), ("partner", "only rows this partner must act on")],
        request: None, ok: (200, "text/csv", None)),
    endpoint!(get "/v1/ledger/checkpoint" => ledger::checkpoint, "Ledger", Bearer,
        "The latest signed checkpoint",
        "A C2SP signed note carrying a tlog-checkpoint (origin, tree size, root hash), signed by the ledger key. Verify it with the key from `/v1/ledger/export/ledger.vkey`.",
        query: &[], request: None, ok: (200, "text/plain", None)),
    endpoint!(get "/v1/ledger/entries" => ledger::entries, "Ledger", Bearer,
        "Entries by range",
        "Entries as `isa-ledger export` writes them, each with its redactable content while it is held (regulator only).",
        query: &[("from", "the first sequence number (default 0)"), ("limit", "at most 1000 (default 100)")],
        request: None, ok: (200, JSON, Some("Entries"))),
    endpoint!(get "/v1/ledger/proofs/inclusion/{seq}" => ledger::inclusion, "Ledger", Bearer,
        "Inclusion proof",
        "RFC 9162 inclusion proof of entry `seq` in the tree of `tree_size` (default: the latest), with that tree's root. Hashes only.",
        query: &[("tree_size", "the tree to prove against (default the latest)")],
        request: None, ok: (200, JSON, Some("InclusionProof"))),
    endpoint!(get "/v1/ledger/proofs/consistency" => ledger::consistency, "Ledger", Bearer,
        "Consistency proof",
        "RFC 9162 consistency proof that the tree of size `from` is a prefix of the tree of size `to`.",
        query: &[("from", "the older tree size"), ("to", "the newer tree size (default the latest)")],
        request: None, ok: (200, JSON, Some("ConsistencyProof"))),
    endpoint!(get "/v1/ledger/export/{file}" => ledger::export, "Ledger", Bearer,
        "The export, file by file",
        "`checkpoint`, `entries.jsonl` (streamed), `keys.jsonl`, `ledger.vkey`: the files of `isa-ledger export`, for `isa-ledger verify` or an auditor's own verifier (regulator only). Fetch `checkpoint` first and pass its size as `tree_size` to the others.",
        query: &[("tree_size", "the tree the files describe (default the latest)")],
        request: None, ok: (200, "application/octet-stream", None)),
    endpoint!(get "/tlog/checkpoint" => ledger::checkpoint, "Ledger", Bearer,
        "tlog-tiles: the checkpoint",
        "The C2SP tlog-tiles read API, for standard transparency-log clients: the latest signed checkpoint.",
        query: &[], request: None, ok: (200, "text/plain", None)),
    endpoint!(get "/tlog/tile/{*path}" => tiles::tile, "Ledger", Bearer,
        "tlog-tiles: a tile or an entry bundle",
        "`<L>/<N>[.p/<W>]`: the 32-byte hashes of the tree's nodes at height 8·L, 256 per tile (W in a partial tile), N as `x001/x234/067`. `entries/<N>[.p/<W>]`: entry bundles; the tlog entry of this log is the 32-byte entry hash (leaf = SHA-256(0x00 ‖ entry hash)), each prefixed by its big-endian uint16 length. Full tiles are immutable.",
        query: &[], request: None, ok: (200, "application/octet-stream", None)),
    endpoint!(post "/v1/admin/users" => admin::create_user, "Administration", Bearer,
        "Create a user",
        "A user bound to one partner and one role (practitioner, dpo, regulator, admin). Practitioners and DPOs belong to a partner with a registered key.",
        query: &[], request: Some("NewUser"), ok: (201, JSON, Some("User"))),
    endpoint!(post "/v1/admin/users/{name}/tokens" => admin::issue_token, "Administration", Bearer,
        "Issue a token",
        "A bearer token for the user, shown once; only its SHA-256 is kept.",
        query: &[], request: Some("NewToken"), ok: (201, JSON, Some("IssuedToken"))),
    endpoint!(delete "/v1/admin/tokens/{id}" => admin::revoke_token, "Administration", Bearer,
        "Revoke a token",
        "Refused from the next request on.",
        query: &[], request: None, ok: (204, JSON, None)),
    endpoint!(post "/v1/admin/partners/{partner}/keys" => admin::register_partner_key, "Administration", Bearer,
        "Hand a partner its own key",
        "Registers a key the partner holds (or rotates its current key to it), with a proof of possession: the new key's signature over `isa-ledger/key-possession/v1` framing of the key and the log's origin (see docs/ledger-format.md). An operator entry in the log. The partner then signs its own submissions.",
        query: &[], request: Some("PartnerKey"), ok: (201, JSON, Some("PartnerKeyRegistered"))),
    endpoint!(get "/healthz" => health::healthz, "Operations", None,
        "Liveness",
        "The process is up.",
        query: &[], request: None, ok: (200, JSON, Some("Status"))),
    endpoint!(get "/readyz" => health::readyz, "Operations", None,
        "Readiness",
        "The stores answer and every view is within 5 seconds of the log; 503 otherwise.",
        query: &[], request: None, ok: (200, JSON, Some("Status"))),
    endpoint!(get "/metrics" => health::metrics, "Operations", Bearer,
        "Prometheus metrics",
        "Text exposition format 0.0.4: appends and batch sizes, view lag, requests and latency by route, notice changes, webhook failures (administrator, regulator).",
        query: &[], request: None, ok: (200, "text/plain", None)),
    endpoint!(get "/problems/{kind}" => health::problem_page, "Operations", None,
        "What a problem type means",
        "The page each problem document's `type` points at.",
        query: &[], request: None, ok: (200, "text/plain", None)),
    endpoint!(get "/openapi.json" => super::openapi::document, "Operations", None,
        "This API description",
        "OpenAPI 3.1, built from the same table as the router.",
        query: &[], request: None, ok: (200, JSON, None)),
    endpoint!(get "/docs" => super::openapi::page, "Operations", None,
        "The API, readable",
        "An HTML page rendering this description.",
        query: &[], request: None, ok: (200, "text/html", None)),
];

pub fn router() -> Router<Arc<AppState>> {
    ENDPOINTS.iter().fold(Router::new(), |router, e| {
        router.route(e.path, (e.handler)())
    })
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

/// The partner whose data a read is about: the caller's own (naming another is
/// refused), or for a caller who sees everything, the one it names, if any.
pub fn own_or_asked(
    caller: &super::access::Caller,
    own: Option<String>,
    asked: Option<String>,
) -> Result<Option<String>, super::problem::ApiError> {
    match (own, asked) {
        (Some(own), Some(asked)) if own != asked => Err(super::problem::ApiError::Forbidden(
            format!("{} sees {own}'s, not {asked}'s", caller.user),
        )),
        (Some(own), _) => Ok(Some(own)),
        (None, asked) => Ok(asked),
    }
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
