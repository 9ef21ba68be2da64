//! Black-box tests of `isa-ledger serve`: the real binary on a random port, over real
//! HTTP, on SQLite and on a throwaway PostgreSQL database. They walk what users do:
//! an administrator issuing tokens; who may see and do what (role × endpoint × party);
//! a breach from detection through its 72-hour clock to a late ICO report, refused
//! until it gives its reasons; retries with an Idempotency-Key; bad input answered with
//! problem documents; a graceful stop and a restart that keeps everything.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

#[path = "service/feeds.rs"]
mod feeds;
#[path = "service/notices.rs"]
mod notices;
#[path = "service/openapi.rs"]
mod openapi;
#[path = "service/partner_signed.rs"]
mod partner_signed;
#[path = "service/sar.rs"]
mod sar;
#[path = "service/support.rs"]
mod support;
#[path = "service/tiles.rs"]
mod tiles;

use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};
use std::process::Command;
use support::{command, first_start, keys, problem, problem_status, Api, Server};

async fn journeys(url: Option<String>) {
    let data = tempfile::tempdir().unwrap();
    let (server, admin, api) = first_start(data.path(), url.as_deref(), &[]);

    // Unauthenticated: liveness only.
    let (s, v, _) = api.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v, h) = api
        .call(Method::GET, "/v1/views/breaches", None, None)
        .await;
    problem(s, &v, StatusCode::UNAUTHORIZED, "unauthenticated");
    assert!(h.get("www-authenticate").is_some());
    assert_eq!(h.get("content-type").unwrap(), "application/problem+json");
    let (s, v) = api.get("/v1/views/breaches", "isa_not-a-token").await;
    problem(s, &v, StatusCode::UNAUTHORIZED, "unauthenticated");

    let police_pc = api.user(&admin, "pc-1234", "police", "practitioner").await;
    let police_dpo = api.user(&admin, "police-dpo", "police", "dpo").await;
    let council_dpo = api.user(&admin, "council-dpo", "council", "dpo").await;
    let housing_dpo = api.user(&admin, "housing-dpo", "housing", "dpo").await;
    let ico = api.user(&admin, "ico-auditor", "ico", "regulator").await;
    let (s, v) = api
        .post(
            "/v1/admin/users",
            &admin,
            &json!({"name": "x", "partner": "nobody", "role": "dpo"}),
        )
        .await;
    problem(s, &v, StatusCode::BAD_REQUEST, "validation");
    assert_eq!(v["field"], "partner");
    let (s, v) = api
        .post(
            "/v1/admin/users",
            &admin,
            &json!({"name": "police-dpo", "partner": "police", "role": "dpo"}),
        )
        .await;
    problem(s, &v, StatusCode::CONFLICT, "conflict");

    // Need-to-know over the demo's two breaches: br-0001 (council's, alerting police
    // and housing) and br-0002 (housing's alone).
    let all = api
        .rows_until("/v1/views/breaches", &ico, |rows| rows.len() == 2)
        .await;
    assert_eq!(keys(&all), ["breach/br-2025-0001", "breach/br-2025-0002"]);
    for (token, expected) in [
        (&police_dpo, vec!["breach/br-2025-0001"]),
        (&council_dpo, vec!["breach/br-2025-0001"]),
        (
            &housing_dpo,
            vec!["breach/br-2025-0001", "breach/br-2025-0002"],
        ),
    ] {
        let (s, v) = api.get("/v1/views/breaches", token).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(keys(v["items"].as_array().unwrap()), expected);
    }

    // Role × endpoint: who may do what at all.
    let own_breach = command(
        "police",
        "breach/br-test-9",
        "2025-09-01T10:00:00Z",
        json!({
            "type": "BreachDetected", "became_aware_at": "2025-09-01T09:00:00Z",
            "nature": ["confidentiality"], "data_categories": ["personal"], "subject_categories": ["victims"],
            "approximate_subjects": 3, "approximate_records": 3,
            "description": "A victim statement was sent to the wrong address.",
        }),
    );
    let councils_breach = command(
        "council",
        "breach/br-test-10",
        "2025-09-01T10:00:00Z",
        own_breach
            .as_object()
            .unwrap()
            .iter()
            .filter(|(k, _)| !["stream", "by", "at"].contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    );
    let empty = json!({});
    type Case<'a> = (
        &'a str,
        &'a str,
        Method,
        &'a str,
        Option<&'a Value>,
        StatusCode,
    );
    let matrix: Vec<Case<'_>> = vec![
        (
            "practitioner",
            &police_pc,
            Method::GET,
            "/v1/views/disclosures",
            None,
            StatusCode::OK,
        ),
        (
            "practitioner",
            &police_pc,
            Method::GET,
            "/v1/views/breaches",
            None,
            StatusCode::FORBIDDEN,
        ),
        (
            "practitioner",
            &police_pc,
            Method::GET,
            "/v1/ledger/entries",
            None,
            StatusCode::FORBIDDEN,
        ),
        (
            "practitioner",
            &police_pc,
            Method::POST,
            "/v1/commands",
            Some(&councils_breach),
            StatusCode::FORBIDDEN,
        ),
        (
            "practitioner",
            &police_pc,
            Method::POST,
            "/v1/admin/users",
            Some(&empty),
            StatusCode::FORBIDDEN,
        ),
        (
            "dpo",
            &police_dpo,
            Method::GET,
            "/v1/views/breaches",
            None,
            StatusCode::OK,
        ),
        (
            "dpo",
            &police_dpo,
            Method::GET,
            "/v1/deadlines",
            None,
            StatusCode::OK,
        ),
        (
            "dpo",
            &police_dpo,
            Method::GET,
            "/v1/deadlines?partner=council",
            None,
            StatusCode::FORBIDDEN,
        ),
        (
            "dpo",
            &police_dpo,
            Method::GET,
            "/v1/ledger/entries",
            None,
            StatusCode::FORBIDDEN,
        ),
        (
            "dpo",
            &police_dpo,
            Method::POST,
            "/v1/commands",
            Some(&councils_breach),
            StatusCode::FORBIDDEN,
        ),
        (
            "regulator",
            &ico,
            Method::GET,
            "/v1/views/breaches",
            None,
            StatusCode::OK,
        ),
        (
            "regulator",
            &ico,
            Method::GET,
            "/v1/deadlines?partner=council",
            None,
            StatusCode::OK,
        ),
        (
            "regulator",
            &ico,
            Method::GET,
            "/v1/ledger/entries",
            None,
            StatusCode::OK,
        ),
        (
            "regulator",
            &ico,
            Method::POST,
            "/v1/commands",
            Some(&own_breach),
            StatusCode::FORBIDDEN,
        ),
        (
            "regulator",
            &ico,
            Method::POST,
            "/v1/admin/users",
            Some(&empty),
            StatusCode::FORBIDDEN,
        ),
        (
            "admin",
            &admin,
            Method::GET,
            "/v1/views/disclosures",
            None,
            StatusCode::FORBIDDEN,
        ),
        (
            "admin",
            &admin,
            Method::POST,
            "/v1/commands",
            Some(&own_breach),
            StatusCode::FORBIDDEN,
        ),
        (
            "admin",
            &admin,
            Method::GET,
            "/v1/ledger/checkpoint",
            None,
            StatusCode::OK,
        ),
    ];
    for (role, token, method, path, body, expected) in matrix {
        let (s, v, _) = api.call(method.clone(), path, Some(token), body).await;
        assert_eq!(s, expected, "{role} {method} {path}: {v}");
        if expected == StatusCode::FORBIDDEN {
            assert_eq!(v["type"], "/problems/forbidden", "{role} {path}: {v}");
        }
    }
    // Nothing the refused requests carried was recorded.
    let (_, v) = api.get("/v1/ledger/entries?from=0&limit=1000", &ico).await;
    let recorded = v["entries"].to_string();
    assert!(!recorded.contains("br-test-9") && !recorded.contains("br-test-10"));

    // A breach: detected, on its 72-hour clock, reported late — refused until the report
    // says why — with its receipt.
    let b = "breach/br-2025-0099";
    let detected = command(
        "police",
        b,
        "2025-09-01T10:00:00Z",
        json!({
            "type": "BreachDetected", "became_aware_at": "2025-09-01T09:00:00Z",
            "nature": ["confidentiality"], "data_categories": ["personal"], "subject_categories": ["victims"],
            "approximate_subjects": 3, "approximate_records": 3,
            "description": "A victim statement was sent to the wrong address.",
        }),
    );
    let (s, v, _) = api
        .call(
            Method::POST,
            "/v1/commands",
            Some(&police_dpo),
            Some(&detected),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let receipt = &v["receipts"][0];
    let seq = receipt["seq"].as_u64().unwrap();
    assert!(receipt["checkpoint"]
        .as_str()
        .unwrap()
        .contains("isa-ledger.local/partnership"));
    assert!(receipt["tree_size"].as_u64().unwrap() > seq);
    let rows = api
        .rows_until(
            "/v1/views/breaches?at=2025-09-04T10:00:00Z",
            &police_dpo,
            |rows| keys(rows).contains(&b),
        )
        .await;
    let row = rows.iter().find(|r| r["key"] == b).unwrap();
    assert_eq!(
        row["due"], "2025-09-04T09:00:00Z",
        "72 hours from awareness: {row}"
    );
    assert_eq!(row["status"], "overdue", "an hour past the deadline: {row}");
    let (_, before) = api
        .get("/v1/views/breaches?at=2025-09-03T09:00:00Z", &police_dpo)
        .await;
    let before = before["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["key"] == b)
        .unwrap()
        .clone();
    assert_ne!(
        before["status"], "overdue",
        "a day before the deadline: {before}"
    );
    assert_eq!(before["seconds_left"], 86_400, "{before}");
    // Another partner is not party to it.
    let (_, v) = api.get("/v1/views/breaches", &council_dpo).await;
    assert!(!keys(v["items"].as_array().unwrap()).contains(&b));

    let late = command(
        "police",
        b,
        "2025-09-05T12:00:00Z",
        json!({
            "type": "BreachReportedToIco", "report": "initial", "ico_reference": "IC-2025-009900",
        }),
    );
    let (s, v) = api.post("/v1/commands", &police_dpo, &late).await;
    problem(s, &v, StatusCode::UNPROCESSABLE_ENTITY, "rule");
    assert_eq!(v["rule"], "late-ico-report-reasons", "{v}");
    assert!(
        v["detail"].as_str().unwrap().contains("reasons_for_delay"),
        "{v}"
    );
    let mut with_reasons = late.clone();
    with_reasons["reasons_for_delay"] =
        json!("The misdirected statement was only reported back to us on 4 September.");
    let (s, v, _) = api
        .call(
            Method::POST,
            "/v1/commands",
            Some(&police_dpo),
            Some(&with_reasons),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let reported_seq = v["receipts"][0]["seq"].as_u64().unwrap();
    api.rows_until("/v1/views/breaches", &police_dpo, |rows| {
        rows.iter().any(|r| {
            r["key"] == b
                && r["row"]["ico_reports"]
                    .as_array()
                    .is_some_and(|a| !a.is_empty())
        })
    })
    .await;

    // Retrying with the same Idempotency-Key records nothing twice; reusing the key for
    // something else is a conflict.
    let followup = command(
        "police",
        b,
        "2025-09-06T12:00:00Z",
        json!({
            "type": "BreachReportedToIco", "report": "follow-up", "ico_reference": "IC-2025-009900",
        }),
    );
    let with_key = |command: &Value| {
        api.http
            .post(format!("{}/v1/commands", api.base))
            .bearer_auth(&police_dpo)
            .header("Idempotency-Key", "follow-up-1")
            .json(command)
            .send()
    };
    let mut seqs = Vec::new();
    for _ in 0..2 {
        let response = with_key(&followup).await.unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        let v: Value = response.json().await.unwrap();
        seqs.push(v["receipts"][0]["seq"].as_u64().unwrap());
    }
    assert_eq!(seqs[0], seqs[1], "a retry returns the original receipt");
    assert!(seqs[0] > reported_seq);
    let mut other = followup.clone();
    other["ico_reference"] = json!("IC-2025-009901");
    let response = with_key(&other).await.unwrap();
    assert_eq!(response.status(), StatusCode::CONFLICT);

    // Proofs for the receipt, against the latest checkpoint.
    let (s, v) = api
        .get(&format!("/v1/ledger/proofs/inclusion/{seq}"), &police_dpo)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(!v["proof"].as_array().unwrap().is_empty());
    let (s, v) = api
        .get(
            &format!("/v1/ledger/proofs/consistency?from={seq}"),
            &police_dpo,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");

    // Bad input: named, never a 500, nothing written.
    let (_, before) = api.get("/v1/ledger/entries?from=0&limit=1", &ico).await;
    let size_before = before["tree_size"].as_u64().unwrap();
    let raw = |body: &'static str| {
        api.http
            .post(format!("{}/v1/commands", api.base))
            .bearer_auth(&police_dpo)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let r = raw("{not json").await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["field"], "body");
    let r = raw(r#"{"stream": "breach/x"}"#).await.unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["field"], "by.partner", "{v}");
    let mut unknown = detected.clone();
    unknown["stream"] = json!("breach/br-2025-0100");
    unknown["nature"] = json!(["telepathy"]);
    let (s, v) = api.post("/v1/commands", &police_dpo, &unknown).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    // A client that writes its whole body before reading (reqwest does) hears the 413;
    // one declaring far more is answered at once and the connection closed.
    let r = Client::new()
        .post(format!("{}/v1/commands", api.base))
        .bearer_auth(&police_dpo)
        .body("x".repeat(8 * 1024 * 1024))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["type"], "/problems/too-large");
    assert_eq!(v["detail"], "the request body is larger than 1048576 bytes");
    let (s, v) = api
        .post_oversized("/v1/commands", &police_dpo, 64 * 1024 * 1024)
        .await;
    assert_eq!(s, 413, "{v}");
    assert_eq!(v["type"], "/problems/too-large");
    // Nobody's body is read before it is known whose it is.
    let (s, v) = api
        .post_oversized("/v1/commands", "isa_not-a-token", 2 * 1024 * 1024)
        .await;
    assert_eq!(s, 401, "{v}");
    assert_eq!(v["type"], "/problems/unauthenticated");
    for (path, field) in [
        ("/v1/views/breaches?limit=many", "limit"),
        ("/v1/views/breaches?cursor=%%%", "cursor"),
        ("/v1/views/breaches?colour=red", "colour"),
        ("/v1/deadlines?at=tomorrow", "at"),
        ("/v1/ledger/proofs/inclusion/999999", ""),
    ] {
        let (s, v) = api.get(path, &police_dpo).await;
        assert!(s.is_client_error(), "{path}: {s} {v}");
        assert!(
            v["type"].as_str().unwrap().starts_with("/problems/"),
            "{path}: {v}"
        );
        if !field.is_empty() {
            assert_eq!(v["field"], field, "{path}: {v}");
        }
    }
    let (s, v, _) = api.call(Method::GET, "/v1/nowhere", Some(&ico), None).await;
    problem(s, &v, StatusCode::NOT_FOUND, "not-found");
    let (s, v, _) = api
        .call(Method::DELETE, "/v1/commands", Some(&ico), None)
        .await;
    problem(s, &v, StatusCode::METHOD_NOT_ALLOWED, "method-not-allowed");
    let (_, after) = api.get("/v1/ledger/entries?from=0&limit=1", &ico).await;
    assert_eq!(
        after["tree_size"].as_u64().unwrap(),
        size_before,
        "bad input wrote nothing"
    );

    // Pagination walks every row once.
    let mut seen = Vec::new();
    let mut path = "/v1/views/disclosures?limit=2".to_string();
    loop {
        let (s, v) = api.get(&path, &ico).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        seen.extend(
            keys(v["items"].as_array().unwrap())
                .into_iter()
                .map(String::from),
        );
        match v["next_cursor"].as_str() {
            Some(c) => path = format!("/v1/views/disclosures?limit=2&cursor={c}"),
            None => break,
        }
    }
    let (_, whole) = api.get("/v1/views/disclosures?limit=1000", &ico).await;
    let whole: Vec<String> = keys(whole["items"].as_array().unwrap())
        .into_iter()
        .map(String::from)
        .collect();
    assert!(whole.len() > 2);
    assert_eq!(seen, whole);

    // A revoked token is refused at once.
    let (s, v) = api
        .post("/v1/admin/users/pc-1234/tokens", &admin, &json!({}))
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (spare, spare_id) = (
        v["token"].as_str().unwrap().to_string(),
        v["id"].as_str().unwrap().to_string(),
    );
    assert_eq!(
        api.get("/v1/views/disclosures", &spare).await.0,
        StatusCode::OK
    );
    let (s, _, _) = api
        .call(
            Method::DELETE,
            &format!("/v1/admin/tokens/{spare_id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    problem_status(
        api.get("/v1/views/disclosures", &spare).await,
        StatusCode::UNAUTHORIZED,
    );

    // A regulator exports the log over HTTP and verifies it offline with the real
    // verifier; a partner's DPO may not export.
    let (s, v) = api
        .get("/v1/ledger/export/entries.jsonl", &police_dpo)
        .await;
    problem(s, &v, StatusCode::FORBIDDEN, "forbidden");
    let export = tempfile::tempdir().unwrap();
    api.export_and_verify(&ico, export.path()).await;
    // A tampered copy does not.
    let entries = std::fs::read_to_string(export.path().join("entries.jsonl")).unwrap();
    let tampered = entries.replacen("IC-2025-009900", "IC-2025-000000", 1);
    assert_ne!(tampered, entries);
    std::fs::write(export.path().join("entries.jsonl"), tampered).unwrap();
    let refused = Command::new(env!("CARGO_BIN_EXE_isa-ledger"))
        .arg("verify")
        .arg(export.path())
        .output()
        .unwrap();
    assert!(!refused.status.success());

    // A graceful stop, then a restart that keeps everything and prints no new token.
    let status = server.stop();
    assert!(status.success(), "serve exits 0 on SIGTERM: {status}");
    let server = Server::start(data.path(), url.as_deref());
    assert!(
        server.admin_token.is_none(),
        "the admin token is printed once only"
    );
    let api = Api {
        http: Client::new(),
        base: server.base.clone(),
    };
    let rows = api
        .rows_until("/v1/views/breaches", &police_dpo, |rows| {
            keys(rows).contains(&b)
        })
        .await;
    assert_eq!(rows.len(), 2);
    assert!(server.stop().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn journeys_on_sqlite() {
    journeys(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn journeys_on_postgres() {
    let Some(url) = testkit::postgres_url().await else {
        return;
    };
    journeys(Some(url)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partner_signed_submissions_on_sqlite() {
    partner_signed::journey(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partner_signed_submissions_on_postgres() {
    let Some(url) = testkit::postgres_url().await else {
        return;
    };
    partner_signed::journey(Some(url)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notices_reach_partners_on_sqlite() {
    notices::journey(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notices_reach_partners_on_postgres() {
    let Some(url) = testkit::postgres_url().await else {
        return;
    };
    notices::journey(Some(url)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notices_survive_restarts_on_sqlite() {
    notices::restarts(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notices_survive_restarts_on_postgres() {
    let Some(url) = testkit::postgres_url().await else {
        return;
    };
    notices::restarts(Some(url)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feeds_on_sqlite() {
    feeds::journey(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feeds_on_postgres() {
    let Some(url) = testkit::postgres_url().await else {
        return;
    };
    feeds::journey(Some(url)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subject_access_request_on_sqlite() {
    sar::journey(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sar_extension_is_due_by_the_deadline_the_queue_shows_on_sqlite() {
    sar::extension_deadline_follows_the_settings(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sar_extension_is_due_by_the_deadline_the_queue_shows_on_postgres() {
    let Some(url) = testkit::postgres_url().await else {
        return;
    };
    sar::extension_deadline_follows_the_settings(Some(url)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subject_access_request_on_postgres() {
    let Some(url) = testkit::postgres_url().await else {
        return;
    };
    sar::journey(Some(url)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_description_on_sqlite() {
    openapi::journey(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tlog_tiles_on_sqlite() {
    tiles::journey(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tlog_tiles_on_postgres() {
    let Some(url) = testkit::postgres_url().await else {
        return;
    };
    tiles::journey(Some(url)).await;
}
