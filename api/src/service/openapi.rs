//! The API description, OpenAPI 3.1, at `/openapi.json`, and a readable page of it at
//! `/docs`.
//!
//! Built from the code: the operations from [`ENDPOINTS`](super::routes::ENDPOINTS),
//! the same table the router is built from; the command schemas derived (schemars) from
//! the domain's own command types; the problem types from [`KINDS`]. The response
//! schemas are written here, each with an example, next to the handlers' JSON they
//! describe; a black-box test checks that real answers carry the fields they promise.

use super::problem::KINDS;
use super::routes::{Auth, ENDPOINTS};
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use domain::breach::BreachFact;
use domain::case::CaseFact;
use domain::consent::ConsentFact;
use domain::partnership::PartnershipFact;
use domain::recorded::Command;
use domain::requests::{ComplaintFact, FoiFact};
use domain::sar::SarFact;
use serde_json::{json, Map, Value};
use std::sync::OnceLock;

/// `GET /openapi.json`.
pub async fn document() -> Json<Value> {
    Json(description().clone())
}

/// `GET /docs`: a self-contained page (no scripts from elsewhere) that renders
/// `/openapi.json`.
pub async fn page() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'",
            ),
        ],
        include_str!("docs.html"),
    )
}

/// The description, built once.
pub fn description() -> &'static Value {
    static DESCRIPTION: OnceLock<Value> = OnceLock::new();
    DESCRIPTION.get_or_init(build)
}

fn build() -> Value {
    let mut schemas = components();
    let (commands, defs) = command_schemas();
    schemas.extend(defs);
    schemas.insert("Command".into(), commands);
    let mut paths = Map::new();
    for e in ENDPOINTS {
        let operation = operation(e, &schemas);
        // A catch-all segment (`{*path}`) is an ordinary parameter in OpenAPI.
        let item = paths
            .entry(e.path.replace("{*", "{"))
            .or_insert_with(|| json!({}));
        item[e.method] = operation;
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "ISA Ledger",
            "version": env!("CARGO_PKG_VERSION"),
            "summary": "A tamper-evident audit ledger for information sharing under UK Information Sharing Protocols and Agreements.",
            "description": "Every request, sharing decision, disclosure, consent, rectification, subject access request and breach is a signed entry in one hash-chained, Merkle-proven log. Commands are decided by the protocols' rules; views turn the log into registers, queues and deadlines; regulators verify the log offline.\n\nAuthentication: `Authorization: Bearer TOKEN`, each token bound to a user, a partner and a role (practitioner, dpo, regulator, admin). Need-to-know: a partner sees only what it is party to. Every refusal is RFC 9457 `application/problem+json` with a stable `type`.",
            "license": { "name": "Apache-2.0", "identifier": "Apache-2.0" },
        },
        "jsonSchemaDialect": "https://spec.openapis.org/oas/3.1/dialect/base",
        "servers": [{ "url": "/" }],
        "tags": [
            { "name": "Commands", "description": "Recording what the protocols oblige." },
            { "name": "Notices", "description": "Notices reaching partners: inbox, event stream, webhooks." },
            { "name": "Views", "description": "Registers, queues and deadlines worked out from the log." },
            { "name": "Feeds", "description": "Calendars and spreadsheets." },
            { "name": "Ledger", "description": "Checkpoints, proofs and the export, for verification." },
            { "name": "Administration", "description": "Users, tokens and partners' keys." },
            { "name": "Operations", "description": "Health, metrics and this description." },
        ],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": { "type": "http", "scheme": "bearer", "description": "A token an administrator issued (`isa_…`)." },
            },
        },
    })
}

fn operation(e: &super::routes::Endpoint, schemas: &Map<String, Value>) -> Value {
    let mut parameters: Vec<Value> = Vec::new();
    for segment in e.path.split('/') {
        if let Some(name) = segment
            .strip_prefix('{')
            .and_then(|s| s.strip_suffix('}'))
            .map(|s| s.trim_start_matches('*'))
        {
            parameters.push(json!({
                "name": name, "in": "path", "required": true,
                "schema": { "type": "string" },
                "description": path_parameter(e.path, name),
            }));
        }
    }
    for (name, description) in e.query {
        parameters.push(json!({
            "name": name, "in": "query", "required": false,
            "schema": { "type": "string" }, "description": description,
        }));
    }
    if e.request.is_some() && e.method == "post" {
        parameters.push(json!({
            "name": "Idempotency-Key", "in": "header", "required": false,
            "schema": { "type": "string", "maxLength": 200 },
            "description": "Makes a retry safe: the same key with the same body returns the first answer; with another body, 409.",
        }));
    }
    let example_of = |name: &str| {
        schemas
            .get(name)
            .and_then(|s| s.get("examples"))
            .and_then(|x| x.get(0))
            .cloned()
    };
    let mut responses = Map::new();
    let (status, media, schema) = e.ok;
    let mut ok = json!({ "description": "Done." });
    if status != 204 {
        let mut content = json!({});
        match schema {
            Some(name) => {
                content["schema"] = json!({ "$ref": format!("#/components/schemas/{name}") });
                if let Some(example) = example_of(name) {
                    content["example"] = example;
                }
            }
            None => {
                content["schema"] = json!({ "type": "string" });
                content["example"] = unstructured_example(e.path);
            }
        }
        ok["content"] = json!({ media: content });
    }
    responses.insert(status.to_string(), ok);
    for (code, kind) in problems(e) {
        responses.insert(
            code.to_string(),
            json!({
                "description": KINDS.iter().find(|(k, _, _)| *k == kind).map_or("", |(_, title, _)| *title),
                "content": { "application/problem+json": {
                    "schema": { "$ref": "#/components/schemas/Problem" },
                    "example": problem_example(code, kind),
                }},
            }),
        );
    }
    let mut op = json!({
        "operationId": operation_id(e),
        "tags": [e.tag],
        "summary": e.summary,
        "description": e.description,
        "parameters": parameters,
        "responses": responses,
    });
    match e.auth {
        Auth::Bearer => op["security"] = json!([{ "bearer": [] }]),
        Auth::None | Auth::CalendarToken => op["security"] = json!([]),
    }
    if let Some(name) = e.request {
        let mut content = json!({ "schema": { "$ref": format!("#/components/schemas/{name}") } });
        if let Some(example) = example_of(name) {
            content["example"] = example;
        }
        op["requestBody"] = json!({ "required": true, "content": { "application/json": content } });
    }
    op
}

/// The refusals an operation can give.
fn problems(e: &super::routes::Endpoint) -> Vec<(u16, &'static str)> {
    let mut out = Vec::new();
    if e.auth != Auth::None {
        out.push((401, "unauthenticated"));
    }
    if e.auth == Auth::Bearer {
        out.extend([(403, "forbidden"), (429, "rate-limited")]);
    }
    if !e.query.is_empty() || e.request.is_some() || e.path.contains('{') {
        out.push((400, "validation"));
    }
    if e.path.contains('{') {
        out.push((404, "not-found"));
    }
    if e.request.is_some() {
        out.extend([(413, "too-large"), (409, "conflict"), (503, "unavailable")]);
    }
    if e.request == Some("Command")
        || e.path.contains("prepared")
        || e.path.ends_with("acknowledge")
    {
        out.push((
            422,
            if e.path.contains("prepared") {
                "bad-signature"
            } else {
                "rule"
            },
        ));
    }
    out
}

/// Examples of the answers that are not JSON documents of a schema.
fn unstructured_example(path: &str) -> Value {
    let text = match path {
        "/openapi.json" => return json!({ "openapi": "3.1.0", "info": { "title": "ISA Ledger", "version": env!("CARGO_PKG_VERSION") }, "paths": {} }),
        "/v1/inbox/stream" => "event: notice.issued\nid: 120:0\ndata: {\"type\":\"notice.issued\",\"timestamp\":\"2025-03-20T10:00:00.512000Z\",\"data\":{\"seq\":120,\"key\":\"case/asb-2025-0005#notice-n1\",\"notice\":{…}}}\n\n",
        "/v1/deadlines.ics" | "/v1/calendar/{file}" => "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//ISA Ledger//Deadlines//EN\r\nBEGIN:VEVENT\r\nUID:5d41402abc4b2a76b9719d911017c592@isa-ledger\r\nDTSTART;VALUE=DATE:20250403\r\nDTEND;VALUE=DATE:20250404\r\nSUMMARY:acknowledge the Article 19 notice (case/asb-2025-0005#notice-n1)\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
        "/v1/registers/{file}" => "key,status,due,overdue,partner,subject,parties,breach\r\nbreach/br-2025-0001,reported,,false,council,,council;housing;police,br-2025-0001\r\n",
        "/v1/ledger/checkpoint" | "/tlog/checkpoint" => "isa-ledger.local/partnership\n42\nq0F8…=\n\n— isa-ledger.local/partnership 3XkAbC…=\n",
        "/tlog/tile/{*path}" => "(binary: 32-byte hashes)",
        "/v1/ledger/export/{file}" => "{\"entry\":{\"seq\":0,…}}\n",
        "/metrics" => "# HELP isa_ledger_tree_size Entries in the log (the latest checkpoint's size).\n# TYPE isa_ledger_tree_size gauge\nisa_ledger_tree_size 42\n",
        "/problems/{kind}" => "The request is not valid\n\nCorrect the field named in `field` and send the request again.\n",
        "/docs" => "<!doctype html>…",
        _ => "",
    };
    json!(text)
}

fn problem_example(status: u16, kind: &str) -> Value {
    let mut body = json!({
        "type": format!("/problems/{kind}"),
        "title": KINDS.iter().find(|(k, _, _)| *k == kind).map_or("", |(_, t, _)| *t),
        "status": status,
        "detail": match kind {
            "validation" => "by.partner: the acting partner's code is required",
            "rule" => "refused by rule late-ico-report-reasons: the report is made after the 72 hours. To proceed: give reasons_for_delay",
            "bad-signature" => "the author signature does not verify against police's key 1a2b3c4d",
            "conflict" => "stream \"breach/br-2025-0099\" is at version 2, but the append expected 1; read the stream again and decide again",
            "unauthenticated" => "a bearer token is needed: send `Authorization: Bearer TOKEN`",
            "forbidden" => "pc-1234 acts for police, not for council",
            "not-found" => "there is no view \"breachs\"; the views are breaches, sars, …",
            "too-large" => "the request body is larger than 1048576 bytes",
            "rate-limited" => "too many requests for this token; retry after 1 s",
            _ => "the service is shutting down; retry with the same Idempotency-Key",
        },
    });
    match kind {
        "validation" => body["field"] = json!("by.partner"),
        "rule" => body["rule"] = json!("late-ico-report-reasons"),
        "rate-limited" => body["retry_after"] = json!(1),
        _ => {}
    }
    body
}

fn path_parameter(path: &str, name: &str) -> &'static str {
    match (name, path) {
        ("view", _) => "a view: breaches, sars, foi, complaints, retention, notices, disclosures, consents, agreements",
        ("file", p) if p.starts_with("/v1/registers") => "`VIEW.csv`",
        ("file", p) if p.starts_with("/v1/calendar") => "`TOKEN.ics`, the calendar token's feed",
        ("file", _) => "`checkpoint`, `entries.jsonl`, `keys.jsonl` or `ledger.vkey`",
        ("seq", _) => "an entry's sequence number",
        ("id", p) if p.contains("prepared") => "the `prepared` id that preparation gave",
        ("id", p) if p.contains("webhooks") => "a webhook's id (`wh_…`)",
        ("id", _) => "a token's id (`tok_…`), never the token",
        ("name", _) => "a user's name",
        ("partner", _) => "a partner's code",
        ("kind", _) => "a problem type's last segment",
        ("path", _) => "`<L>/<N>[.p/<W>]` or `entries/<N>[.p/<W>]`",
        _ => "",
    }
}

fn operation_id(e: &super::routes::Endpoint) -> String {
    let mut id = e.method.to_string();
    for part in e.path.split(['/', '.', '{', '}', '-']) {
        if part.is_empty() || part == "v1" {
            continue;
        }
        let mut chars = part.chars();
        if let Some(first) = chars.next() {
            id.push(first.to_ascii_uppercase());
            id.extend(chars);
        }
    }
    id
}

/// One schema per stream kind's commands, derived from the domain's types, as one
/// `oneOf`; and the definitions they refer to.
fn command_schemas() -> (Value, Map<String, Value>) {
    let mut settings = schemars::generate::SchemaSettings::draft2020_12();
    settings.definitions_path = "/components/schemas/".into();
    let mut generator = settings.into_generator();
    let kinds: Vec<(&str, &str, Value)> = vec![
        (
            "partnership",
            "partnership",
            generator
                .subschema_for::<Command<PartnershipFact>>()
                .to_value(),
        ),
        (
            "case",
            "case/ID",
            generator.subschema_for::<Command<CaseFact>>().to_value(),
        ),
        (
            "consent",
            "consent/ID",
            generator.subschema_for::<Command<ConsentFact>>().to_value(),
        ),
        (
            "sar",
            "sar/ID",
            generator.subschema_for::<Command<SarFact>>().to_value(),
        ),
        (
            "breach",
            "breach/ID",
            generator.subschema_for::<Command<BreachFact>>().to_value(),
        ),
        (
            "foi",
            "foi/ID",
            generator.subschema_for::<Command<FoiFact>>().to_value(),
        ),
        (
            "complaint",
            "complaint/ID",
            generator
                .subschema_for::<Command<ComplaintFact>>()
                .to_value(),
        ),
    ];
    let mut defs = Map::new();
    for (name, schema) in generator.take_definitions(true) {
        defs.insert(component_name(&name), rename_refs(schema));
    }
    // A command may name its subject by identifiers; they are pseudonymised first.
    if let Some(subject) = defs.get_mut("SubjectRef") {
        let pseudonyms = subject.take();
        *subject = json!({
            "description": "A data subject: identifiers (replaced by keyed pseudonyms before anything is stored) or, from a partner that computes them itself, the pseudonyms.",
            "anyOf": [{ "$ref": "#/components/schemas/SubjectIdentifiers" }, pseudonyms],
        });
    }
    if !defs.contains_key("SubjectIdentifiers") {
        let mut generator = schemars::generate::SchemaSettings::draft2020_12().into_generator();
        let s = generator
            .root_schema_for::<domain::pseudonym::SubjectIdentifiers>()
            .to_value();
        let mut s = s;
        if let Some(o) = s.as_object_mut() {
            o.remove("$schema");
        }
        defs.insert("SubjectIdentifiers".into(), s);
    }
    let one_of: Vec<Value> = kinds
        .into_iter()
        .map(|(kind, stream, schema)| {
            let schema = rename_refs(schema);
            json!({
                "title": format!("{kind} command"),
                "allOf": [
                    schema,
                    { "type": "object", "required": ["stream"], "properties": {
                        "stream": { "type": "string", "description": format!("`{stream}`") },
                    }},
                ],
            })
        })
        .collect();
    let command = json!({
        "description": "One domain command: `stream` (the aggregate: `partnership`, `case/ID`, `consent/ID`, `sar/ID`, `breach/ID`, `foi/ID`, `complaint/ID`), `by` (partner, user, role), `at` (when it happened, RFC 3339 UTC), `type` (the event to record) and that event's fields. docs/events.md describes every event.",
        "oneOf": one_of,
        "examples": [{
            "stream": "breach/br-2025-0099",
            "by": { "partner": "police", "user": "police-dpo", "role": "data-protection-officer" },
            "at": "2025-09-01T10:00:00Z",
            "type": "BreachDetected",
            "became_aware_at": "2025-09-01T09:00:00Z",
            "nature": ["confidentiality"],
            "data_categories": ["personal"],
            "subject_categories": ["victims"],
            "approximate_subjects": 3,
            "approximate_records": 3,
            "description": "A victim statement was sent to the wrong address.",
        }],
    });
    (command, defs)
}

/// Component names must match `^[a-zA-Z0-9._-]+$`.
fn component_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || ".-_".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn rename_refs(mut value: Value) -> Value {
    fn walk(v: &mut Value) {
        match v {
            Value::Object(map) => {
                for (k, child) in map.iter_mut() {
                    if k == "$ref" {
                        if let Value::String(r) = child {
                            if let Some(name) = r.strip_prefix("#/components/schemas/") {
                                *r = format!("#/components/schemas/{}", component_name(name));
                            }
                        }
                    } else {
                        walk(child);
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(walk),
            _ => {}
        }
    }
    walk(&mut value);
    value
}

/// The response and request bodies the handlers write, each with an example.
fn components() -> Map<String, Value> {
    let receipt = json!({
        "seq": 41,
        "entry": { "seq": 41, "prev": "9f2c…", "recorded_at": "2025-09-01T10:00:01.204113Z", "submission": { "author": "police", "event_type": "BreachDetected", "stream": "breach/br-2025-0099", "…": "…" }, "signature": "base64…" },
        "entry_hash": "5be1…",
        "tree_size": 42,
        "inclusion_proof": ["0K6v…", "c2Vx…"],
        "checkpoint": "isa-ledger.local/partnership\n42\nq0F8…\n\n— isa-ledger.local/partnership 3Xk…\n",
    });
    let record = json!({
        "view": "breaches", "key": "breach/br-2025-0099", "partner": "police",
        "status": "open", "stored_status": "open", "due": "2025-09-04T09:00:00Z",
        "overdue": false, "seconds_left": 250000, "subject": null,
        "parties": ["police"], "row": { "breach": "br-2025-0099", "…": "…" },
    });
    let notice = json!({
        "kind": "article-19", "article_19": "rectification", "about": "case/asb-2025-0005",
        "id": "n1", "issuer": "police", "recipient": "council",
        "issued_at": "2025-03-20T10:00:00Z", "issued_entry": 120,
        "response": { "due": "2025-04-03", "explanation": "10 working days in england-and-wales" },
        "status": "pending", "settled_at": null, "reasons_entry": null,
    });
    let webhook = json!({
        "id": "wh_1f2e3d4c5b6a7988", "partner": "council", "url": "http://relay.council.internal/isa",
        "created_by": "council-dpo", "created_at": "2025-04-01T09:00:00.000000Z", "disabled_at": null,
    });
    let schemas = json!({
        "Problem": {
            "type": "object", "required": ["type", "title", "status", "detail"],
            "description": "RFC 9457 problem details. `type` is stable per kind of refusal: ".to_string()
                + &KINDS.iter().map(|(k, t, _)| format!("`/problems/{k}` ({t})")).collect::<Vec<_>>().join(", "),
            "properties": {
                "type": { "type": "string" }, "title": { "type": "string" },
                "status": { "type": "integer" }, "detail": { "type": "string" },
                "field": { "type": "string", "description": "validation: the field to correct" },
                "rule": { "type": "string", "description": "rule: the protocol rule that refused" },
                "retry_after": { "type": "integer", "description": "rate-limited: seconds to wait" },
            },
            "examples": [problem_example(400, "validation")],
        },
        "Receipt": {
            "type": "object", "required": ["seq", "entry", "entry_hash", "tree_size", "inclusion_proof", "checkpoint"],
            "description": "Proof that an entry is in the log: the entry, its hash, its inclusion proof (base64 hashes, RFC 9162) in the tree of `tree_size`, and that tree's signed checkpoint (C2SP signed note). Checkable offline with the ledger's verifier key.",
            "properties": {
                "seq": { "type": "integer" }, "entry": { "type": "object" },
                "entry_hash": { "type": "string" }, "tree_size": { "type": "integer" },
                "inclusion_proof": { "type": "array", "items": { "type": "string" } },
                "checkpoint": { "type": "string" },
            },
            "examples": [receipt],
        },
        "Recorded": {
            "type": "object", "required": ["stream", "events", "receipts"],
            "properties": {
                "stream": { "type": "string" },
                "events": { "type": "array", "items": { "type": "string" }, "description": "the event types recorded, in order" },
                "receipts": { "type": "array", "items": { "$ref": "#/components/schemas/Receipt" } },
            },
            "examples": [{ "stream": "breach/br-2025-0099", "events": ["BreachDetected"], "receipts": [receipt] }],
        },
        "Prepared": {
            "type": "object", "required": ["prepared", "stream", "events", "expires_in", "entries", "commit"],
            "properties": {
                "prepared": { "type": "string" }, "stream": { "type": "string" },
                "events": { "type": "array", "items": { "type": "string" } },
                "expires_in": { "type": "integer", "description": "seconds" },
                "commit": { "type": "string", "description": "where to POST the signatures" },
                "entries": { "type": "array", "items": { "type": "object", "required": ["submission", "canonical", "submission_hash", "sign"], "properties": {
                    "submission": { "type": "object", "description": "what the entry states, as docs/ledger-format.md defines it" },
                    "canonical": { "type": "string", "description": "base64 of its RFC 8785 bytes" },
                    "submission_hash": { "type": "string", "description": "hex SHA-256 of `canonical`" },
                    "sign": { "type": "string", "description": "base64 of the exact message to sign with Ed25519" },
                    "content": { "type": ["object", "null"], "description": "the redactable content (salt and narrative) the submission commits to" },
                }}},
            },
            "examples": [{ "prepared": "prep_4f0e…", "stream": "breach/br-signed-1", "events": ["BreachDetected"], "expires_in": 600, "commit": "/v1/commands/prepared/prep_4f0e…", "entries": [{ "submission": { "author": "police", "…": "…" }, "canonical": "eyJhdXRob3Ii…", "submission_hash": "7d1c…", "sign": "aXNhLWxlZGdlci9zdWJtaXNzaW9u…", "content": { "salt": "…", "body": { "description": "…" } } }] }],
        },
        "Signatures": {
            "type": "object", "required": ["signatures"], "additionalProperties": false,
            "properties": { "signatures": { "type": "array", "items": { "type": "string" }, "description": "standard base64 of each 64-byte Ed25519 signature, in entry order" } },
            "examples": [{ "signatures": ["3q2+7w…=="] }],
        },
        "Acknowledgement": {
            "type": "object", "required": ["notice"], "additionalProperties": false,
            "properties": {
                "notice": { "type": "string", "description": "the notice's key, as the inbox lists it" },
                "at": { "type": "string", "description": "when, if not now (RFC 3339 UTC)" },
            },
            "examples": [{ "notice": "case/asb-2025-0005#notice-n1" }],
        },
        "Record": {
            "type": "object", "required": ["view", "key", "status", "stored_status", "overdue", "parties", "row"],
            "description": "One row of a view, read with \"now\" applied: `status` is `overdue` (consents: `expired`) once the due point has passed.",
            "properties": {
                "view": { "type": "string" }, "key": { "type": "string" },
                "partner": { "type": ["string", "null"], "description": "who must act next" },
                "status": { "type": "string" }, "stored_status": { "type": "string" },
                "due": { "type": ["string", "null"] }, "overdue": { "type": "boolean" },
                "seconds_left": { "type": ["integer", "null"] },
                "subject": { "type": ["string", "null"], "description": "a subject pseudonym" },
                "parties": { "type": "array", "items": { "type": "string" } },
                "row": { "type": "object", "description": "the view's own fields (docs/projections.md)" },
            },
            "examples": [record],
        },
        "Page": {
            "type": "object", "required": ["items", "next_cursor"],
            "properties": {
                "view": { "type": "string" }, "partner": { "type": ["string", "null"] },
                "items": { "type": "array", "items": { "$ref": "#/components/schemas/Record" } },
                "next_cursor": { "type": ["string", "null"], "description": "pass as `cursor` for the next page; null on the last" },
            },
            "examples": [{ "view": "breaches", "items": [record], "next_cursor": null }],
        },
        "Deadlines": {
            "type": "object", "required": ["at", "items"],
            "properties": {
                "at": { "type": "string" },
                "items": { "type": "array", "items": { "type": "object", "required": ["due", "overdue", "seconds_left", "view", "key", "status", "action", "explanation", "deadline"], "properties": {
                    "due": { "type": "string" }, "overdue": { "type": "boolean" }, "seconds_left": { "type": "integer" },
                    "view": { "type": "string" }, "key": { "type": "string" }, "partner": { "type": ["string", "null"] },
                    "status": { "type": "string" }, "action": { "type": "string" },
                    "explanation": { "type": "string" }, "deadline": { "type": "object" },
                }}},
            },
            "examples": [{ "at": "2025-09-02T12:00:00.000000Z", "items": [{ "due": "2025-09-04T09:00:00Z", "overdue": false, "seconds_left": 162000, "view": "breaches", "key": "breach/br-2025-0099", "partner": "police", "status": "open", "action": "report the breach to the ICO (72 hours)", "explanation": "72 hours from awareness at 2025-09-01T09:00:00Z", "deadline": { "rule": "breach-72h", "…": "…" } }] }],
        },
        "NoticeChange": {
            "type": "object", "required": ["type", "timestamp", "data"],
            "description": "An SSE event's data and a webhook's body (Standard Webhooks shape).",
            "properties": {
                "type": { "enum": ["notice.issued", "notice.settled"] },
                "timestamp": { "type": "string" },
                "data": { "type": "object", "required": ["seq", "key", "notice"], "properties": {
                    "seq": { "type": "integer" }, "key": { "type": "string" }, "notice": { "type": "object" },
                }},
            },
            "examples": [{ "type": "notice.issued", "timestamp": "2025-03-20T10:00:00.512000Z", "data": { "seq": 120, "key": "case/asb-2025-0005#notice-n1", "notice": notice } }],
        },
        "NewWebhook": {
            "type": "object", "required": ["url"], "additionalProperties": false,
            "properties": { "url": { "type": "string", "description": "an http:// address" }, "partner": { "type": "string", "description": "administrator: whose" } },
            "examples": [{ "url": "http://relay.council.internal/isa" }],
        },
        "Webhook": {
            "type": "object", "required": ["id", "partner", "url", "created_by", "created_at"],
            "properties": {
                "id": { "type": "string" }, "partner": { "type": "string" }, "url": { "type": "string" },
                "created_by": { "type": "string" }, "created_at": { "type": "string" }, "disabled_at": { "type": ["string", "null"] },
            },
            "examples": [webhook],
        },
        "WebhookCreated": {
            "type": "object", "required": ["webhook", "secret"],
            "properties": { "webhook": { "$ref": "#/components/schemas/Webhook" }, "secret": { "type": "string", "description": "`whsec_` + base64 key; shown once" } },
            "examples": [{ "webhook": webhook, "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" }],
        },
        "WebhookList": {
            "type": "object", "required": ["items"],
            "properties": { "items": { "type": "array", "items": { "$ref": "#/components/schemas/Webhook" } } },
            "examples": [{ "items": [webhook] }],
        },
        "DeliveryPage": {
            "type": "object", "required": ["webhook", "items", "next_after"],
            "properties": {
                "webhook": { "$ref": "#/components/schemas/Webhook" },
                "next_after": { "type": ["string", "null"] },
                "items": { "type": "array", "items": { "type": "object", "required": ["id", "seq", "idx", "event_type", "notice", "status", "attempts"], "properties": {
                    "id": { "type": "string", "description": "the webhook-id header" }, "webhook": { "type": "string" },
                    "seq": { "type": "integer" }, "idx": { "type": "integer" },
                    "event_type": { "type": "string" }, "notice": { "type": "string" },
                    "status": { "enum": ["pending", "delivered", "failed"] }, "attempts": { "type": "integer" },
                    "next_attempt_at": { "type": ["string", "null"] }, "last_attempt_at": { "type": ["string", "null"] },
                    "last_status": { "type": ["integer", "null"] }, "last_error": { "type": ["string", "null"] },
                    "delivered_at": { "type": ["string", "null"] }, "created_at": { "type": "string" },
                }}},
            },
            "examples": [{ "webhook": webhook, "next_after": null, "items": [{ "id": "msg_5d41402abc4b2a76b9719d911017c592", "webhook": "wh_1f2e3d4c5b6a7988", "seq": 120, "idx": 0, "event_type": "notice.issued", "notice": "case/asb-2025-0005#notice-n1", "status": "delivered", "attempts": 3, "next_attempt_at": null, "last_attempt_at": "2025-03-20T10:00:26.101000Z", "last_status": 204, "last_error": null, "delivered_at": "2025-03-20T10:00:26.101000Z", "created_at": "2025-03-20T10:00:00.700000Z" }] }],
        },
        "ViewStatusList": {
            "type": "object", "required": ["views"],
            "properties": { "views": { "type": "array", "items": { "type": "object", "properties": {
                "view": { "type": "string" }, "next_seq": { "type": "integer" }, "log_size": { "type": "integer" },
                "behind": { "type": "integer" }, "lag_seconds": { "type": "number" }, "updated_at": { "type": "string" },
                "stopped": { "type": ["string", "null"] }, "stale": { "type": "boolean" },
            }}}},
            "examples": [{ "views": [{ "view": "breaches", "next_seq": 42, "log_size": 42, "behind": 0, "lag_seconds": 0.0, "updated_at": "2025-09-02T12:00:00.000000Z", "stopped": null, "stale": false }] }],
        },
        "CalendarFeed": {
            "type": "object", "required": ["id", "path"],
            "properties": { "id": { "type": "string" }, "path": { "type": "string", "description": "the feed's path; holds the token, shown once" } },
            "examples": [{ "id": "tok_0a1b2c3d4e5f", "path": "/v1/calendar/isacal_7f3e….ics" }],
        },
        "Entries": {
            "type": "object", "required": ["tree_size", "from", "entries"],
            "properties": {
                "tree_size": { "type": "integer" }, "from": { "type": "integer" },
                "entries": { "type": "array", "items": { "type": "object" }, "description": "export lines: the entry and its content while held" },
                "next": { "type": ["integer", "null"] },
            },
            "examples": [{ "tree_size": 42, "from": 0, "entries": [{ "entry": { "seq": 0, "…": "…" } }], "next": 1 }],
        },
        "InclusionProof": {
            "type": "object", "required": ["seq", "tree_size", "root", "proof"],
            "properties": { "seq": { "type": "integer" }, "tree_size": { "type": "integer" }, "root": { "type": "string" }, "proof": { "type": "array", "items": { "type": "string" } } },
            "examples": [{ "seq": 41, "tree_size": 42, "root": "q0F8…", "proof": ["0K6v…", "c2Vx…"] }],
        },
        "ConsistencyProof": {
            "type": "object", "required": ["from", "to", "proof"],
            "properties": { "from": { "type": "integer" }, "to": { "type": "integer" }, "proof": { "type": "array", "items": { "type": "string" } } },
            "examples": [{ "from": 30, "to": 42, "proof": ["Yk9v…"] }],
        },
        "NewUser": {
            "type": "object", "required": ["name", "partner", "role"], "additionalProperties": false,
            "properties": { "name": { "type": "string" }, "partner": { "type": "string" }, "role": { "enum": ["practitioner", "dpo", "regulator", "admin"] } },
            "examples": [{ "name": "police-dpo", "partner": "police", "role": "dpo" }],
        },
        "User": {
            "type": "object", "required": ["name", "partner", "role"],
            "properties": { "name": { "type": "string" }, "partner": { "type": "string" }, "role": { "type": "string" } },
            "examples": [{ "name": "police-dpo", "partner": "police", "role": "dpo" }],
        },
        "NewToken": {
            "type": "object", "additionalProperties": false,
            "properties": { "label": { "type": "string" } },
            "examples": [{ "label": "laptop" }],
        },
        "IssuedToken": {
            "type": "object", "required": ["id", "user", "token"],
            "properties": { "id": { "type": "string" }, "user": { "type": "string" }, "token": { "type": "string", "description": "shown once" } },
            "examples": [{ "id": "tok_0a1b2c3d4e5f", "user": "police-dpo", "token": "isa_9c1d…" }],
        },
        "PartnerKey": {
            "type": "object", "required": ["public_key", "possession"], "additionalProperties": false,
            "properties": {
                "public_key": { "type": "string", "description": "verifier key text `PARTNER+KEYID+BASE64`" },
                "possession": { "type": "string", "description": "base64 Ed25519 signature by the new key over its proof-of-possession message" },
            },
            "examples": [{ "public_key": "police+1a2b3c4d+AQ…", "possession": "3q2+7w…==" }],
        },
        "PartnerKeyRegistered": {
            "type": "object", "required": ["partner", "key_id", "custody", "receipt"],
            "properties": {
                "partner": { "type": "string" }, "key_id": { "type": "string" }, "custody": { "const": "partner-held" },
                "replaces": { "type": ["string", "null"] }, "receipt": { "$ref": "#/components/schemas/Receipt" },
            },
            "examples": [{ "partner": "police", "key_id": "1a2b3c4d", "custody": "partner-held", "replaces": "9f8e7d6c", "receipt": receipt }],
        },
        "Status": {
            "type": "object", "required": ["status"],
            "properties": { "status": { "type": "string" }, "views_behind": { "type": "integer" } },
            "examples": [{ "status": "ready", "views_behind": 0 }],
        },
    });
    match schemas {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}
