//! A subject access request over HTTP, as the police's DPO works it: received and
//! identity verified (the one-month clock), a clarification that stops the clock, an
//! extension that must give reasons, the council consulted (its inbox shows the
//! consultation; the response is refused until it answers), then the response.

use crate::support::{command, first_start, problem, Api};
use reqwest::StatusCode;
use serde_json::{json, Value};

/// The SAR's row once `pred` holds for it.
async fn sar_row(api: &Api, token: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let rows = api
        .rows_until("/v1/views/sars", token, |rows| {
            rows.iter()
                .any(|r| r["key"] == "sar/sar-test-0001" && pred(r))
        })
        .await;
    rows.into_iter()
        .find(|r| r["key"] == "sar/sar-test-0001")
        .unwrap()
}

fn day_number(date: &str) -> i64 {
    // Days since 1970-01-01 of a YYYY-MM-DD date (proleptic Gregorian).
    let y: i64 = date[..4].parse().unwrap();
    let m: i64 = date[5..7].parse().unwrap();
    let d: i64 = date[8..10].parse().unwrap();
    let (y, m) = if m <= 2 { (y - 1, m + 12) } else { (y, m) };
    365 * y + y / 4 - y / 100 + y / 400 + (153 * (m - 3) + 2) / 5 + d - 719469
}

pub async fn journey(url: Option<String>) {
    let data = tempfile::tempdir().unwrap();
    let (server, admin, api) = first_start(data.path(), url.as_deref(), &[]);
    let police = api.user(&admin, "police-dpo", "police", "dpo").await;
    let council = api.user(&admin, "council-dpo", "council", "dpo").await;
    let housing = api.user(&admin, "housing-dpo", "housing", "dpo").await;
    let sar = "sar/sar-test-0001";
    let post = async |token: &str, at: &str, fact: Value, partner: &str| {
        api.post("/v1/commands", token, &command(partner, sar, at, fact))
            .await
    };

    let (s, v) = post(
        &police,
        "2025-05-01T10:00:00Z",
        json!({"type": "SubjectAccessRequestReceived", "channel": "email",
               "subject": {"given_name": "Sam", "family_name": "Requester", "date_of_birth": "1985-05-05"}}),
        "police",
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert!(
        !v.to_string().contains("Requester"),
        "the subject is pseudonymised before it reaches the log: {v}"
    );
    let (s, v) = post(
        &police,
        "2025-05-02T10:00:00Z",
        json!({"type": "SarIdentityVerified"}),
        "police",
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let row = sar_row(&api, &police, |r| {
        r["row"]["identity_verified_on"].is_string()
    })
    .await;
    let first_due = row["due"].as_str().unwrap().to_string();
    assert!(
        first_due.starts_with("2025-06-0"),
        "a month from verification: {row}"
    );

    // A clarification stops the clock for as long as the requester takes.
    let (s, v) = post(
        &police,
        "2025-05-05T10:00:00Z",
        json!({"type": "SarClarificationRequested", "description": "Which years of records?"}),
        "police",
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let row = sar_row(&api, &police, |r| r["stored_status"] == "paused").await;
    assert!(row["due"].is_null(), "no due date while paused: {row}");
    let (s, v) = post(
        &police,
        "2025-05-12T10:00:00Z",
        json!({"type": "SarClarificationReceived"}),
        "police",
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let row = sar_row(&api, &police, |r| {
        r["stored_status"] == "open" && r["row"]["pauses"][0]["to"].is_string()
    })
    .await;
    let paused_due = row["due"].as_str().unwrap().to_string();
    let moved = day_number(&paused_due) - day_number(&first_due);
    assert!(
        (6..=9).contains(&moved),
        "the clock stopped for the pause: {first_due} -> {paused_due}"
    );

    // An extension must say why; then the deadline moves two months on.
    let (s, v) = post(
        &police,
        "2025-05-20T10:00:00Z",
        json!({"type": "SarExtended", "notice_sent_to_requester": true}),
        "police",
    )
    .await;
    problem(s, &v, StatusCode::BAD_REQUEST, "validation");
    assert_eq!(v["field"], "reason", "{v}");
    let (s, v) = post(&police, "2025-05-20T10:00:00Z", json!({"type": "SarExtended", "notice_sent_to_requester": true, "reason": "Records held across three systems."}), "police").await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let row = sar_row(&api, &police, |r| r["row"]["extended"].is_object()).await;
    let extended_due = row["due"].as_str().unwrap().to_string();
    assert!(
        day_number(&extended_due) - day_number(&paused_due) >= 58,
        "{paused_due} -> {extended_due}"
    );

    // The council, whose data it holds, is consulted: its inbox shows it, and it is
    // answered, not acknowledged.
    let (s, v) = post(
        &police,
        "2025-05-21T10:00:00Z",
        json!({"type": "SarPartnerConsulted", "partner": "council"}),
        "police",
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let consultation = format!("{sar}#consult-council");
    let inbox = api
        .rows_until("/v1/inbox", &council, |rows| {
            rows.iter().any(|r| r["key"] == consultation.as_str())
        })
        .await;
    let item = inbox
        .iter()
        .find(|r| r["key"] == consultation.as_str())
        .unwrap();
    assert_eq!(item["row"]["kind"], "sar-consultation");
    let (s, v) = api
        .post(
            "/v1/inbox/acknowledge",
            &council,
            &json!({"notice": consultation}),
        )
        .await;
    problem(s, &v, StatusCode::BAD_REQUEST, "validation");
    assert!(
        v["detail"]
            .as_str()
            .unwrap()
            .contains("SarConsultationAnswered"),
        "{v}"
    );
    // Housing is not party to this SAR.
    let (_, v) = api.get("/v1/views/sars", &housing).await;
    assert!(!v.to_string().contains(sar), "{v}");

    // Responding before the council answers is refused by the process-order rule.
    let (s, v) = post(
        &police,
        "2025-05-22T10:00:00Z",
        json!({"type": "SarResponded", "outcome": "disclosed"}),
        "police",
    )
    .await;
    problem(s, &v, StatusCode::UNPROCESSABLE_ENTITY, "rule");
    assert_eq!(v["rule"], "process-order");
    let (s, v) = post(&council, "2025-05-23T10:00:00Z", json!({"type": "SarConsultationAnswered", "answer": "release-redacted", "reasons": "Third-party details to be redacted."}), "council").await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, v) = post(
        &police,
        "2025-05-27T10:00:00Z",
        json!({"type": "SarResponded", "outcome": "disclosed-redacted"}),
        "police",
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let row = sar_row(&api, &police, |r| r["stored_status"] == "responded").await;
    assert_eq!(row["row"]["consultations"][0]["answer"], "release-redacted");
    assert!(row["due"].is_null(), "nothing owed once responded: {row}");
    let inbox = api
        .rows_until("/v1/inbox?status=all", &council, |rows| {
            rows.iter()
                .any(|r| r["key"] == consultation.as_str() && r["stored_status"] == "answered")
        })
        .await;
    assert!(!inbox.is_empty());
    assert!(server.stop().success());
}

/// The last day for an extension is the one the SAR queue shows, worked out under the
/// partnership's `settings.json`: a Scottish controller's first deadline of Friday
/// 2 January 2026 (a Scottish bank holiday) is Monday 5 January, an English one's is the
/// Friday, and the service accepts and refuses an extension on the Monday accordingly.
pub async fn extension_deadline_follows_the_settings(url: Option<String>) {
    let data = tempfile::tempdir().unwrap();
    std::fs::write(
        data.path().join("settings.json"),
        r#"{"divisions": {"police": "scotland"}}"#,
    )
    .unwrap();
    let (server, admin, api) = first_start(data.path(), url.as_deref(), &[]);
    let police = api.user(&admin, "police-dpo", "police", "dpo").await;
    let council = api.user(&admin, "council-dpo", "council", "dpo").await;
    let received = json!({"type": "SubjectAccessRequestReceived", "channel": "letter",
        "subject": {"given_name": "Alex", "family_name": "Requester", "date_of_birth": "1990-01-01"}});
    let extension = json!({"type": "SarExtended", "notice_sent_to_requester": true,
        "reason": "Records held across three systems."});
    for (token, partner, sar) in [
        (&police, "police", "sar/scot-0001"),
        (&council, "council", "sar/eng-0001"),
    ] {
        let c = command(partner, sar, "2025-12-02T10:00:00Z", received.clone());
        let (s, v) = api.post("/v1/commands", token, &c).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }
    for (token, sar, last_day) in [
        (&police, "sar/scot-0001", "2026-01-05"),
        (&council, "sar/eng-0001", "2026-01-02"),
    ] {
        let rows = api
            .rows_until("/v1/views/sars", token, |rows| {
                rows.iter().any(|r| r["key"] == sar)
            })
            .await;
        let row = rows.iter().find(|r| r["key"] == sar).unwrap();
        assert_eq!(row["row"]["extension_notice_due"], last_day, "{row}");
    }
    let at = "2026-01-05T10:00:00Z";
    let c = command("police", "sar/scot-0001", at, extension.clone());
    let (s, v) = api.post("/v1/commands", &police, &c).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let c = command("council", "sar/eng-0001", at, extension);
    let (s, v) = api.post("/v1/commands", &council, &c).await;
    problem(s, &v, StatusCode::UNPROCESSABLE_ENTITY, "rule");
    assert_eq!(v["rule"], "sar-extension-before-deadline", "{v}");
    assert!(v.to_string().contains("2026-01-02"), "{v}");
    assert!(server.stop().success());
}
