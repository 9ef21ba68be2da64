//! Notices reaching partners: a police disclosure to the council and housing is
//! rectified; each recipient finds its notice in its inbox, on its event stream and
//! (the council) at its webhook, a real HTTP receiver here that refuses the first
//! attempts; the council acknowledges, the police learn of it; the delivery log shows
//! every attempt; the metrics count the failures.

use crate::support::{command, first_start, problem, Api, Server};
use axum::http::{HeaderMap, StatusCode as AxumStatus};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use hmac::{Hmac, Mac};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sha2::Sha256;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Received {
    id: String,
    timestamp: String,
    signature: String,
    body: String,
    answered: u16,
}

/// A webhook receiver on a random port. It refuses the first `refusals` requests it
/// gets with 500, then takes everything.
async fn receiver(refusals: usize) -> (String, Arc<Mutex<Vec<Received>>>) {
    receiver_refusing(move |seen| seen < refusals).await
}

/// A webhook receiver that answers 500 while `refuse(requests seen so far)` holds,
/// else 204.
async fn receiver_refusing(
    refuse: impl Fn(usize) -> bool + Clone + Send + Sync + 'static,
) -> (String, Arc<Mutex<Vec<Received>>>) {
    let log: Arc<Mutex<Vec<Received>>> = Arc::default();
    let seen = log.clone();
    let app = axum::Router::new().route(
        "/hooks/council",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let seen = seen.clone();
            let refuse = refuse.clone();
            async move {
                let header = |name: &str| {
                    headers
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_string()
                };
                let mut seen = seen.lock().unwrap();
                let id = header("webhook-id");
                let answered = if refuse(seen.len()) { 500 } else { 204 };
                seen.push(Received {
                    id,
                    timestamp: header("webhook-timestamp"),
                    signature: header("webhook-signature"),
                    body,
                    answered,
                });
                AxumStatus::from_u16(answered).unwrap()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://127.0.0.1:{port}/hooks/council"), log)
}

/// Checks a delivery's signature as a receiver would, per Standard Webhooks.
fn signed_by(secret: &str, r: &Received) -> bool {
    let key = BASE64
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{}.{}.{}", r.id, r.timestamp, r.body).as_bytes());
    let expected = format!("v1,{}", BASE64.encode(mac.finalize().into_bytes()));
    r.signature.split(' ').any(|s| s == expected)
}

/// An open Server-Sent Events stream, read event by event.
struct Events {
    response: reqwest::Response,
    buffer: String,
}

impl Events {
    async fn open(api: &Api, token: &str, last_event_id: Option<&str>) -> Events {
        let mut request = api
            .http
            .get(format!("{}/v1/inbox/stream", api.base))
            .bearer_auth(token);
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()["content-type"].to_str().unwrap(),
            "text/event-stream"
        );
        Events {
            response,
            buffer: String::new(),
        }
    }

    /// The next event: (event, id, data).
    async fn next(&mut self) -> (String, String, Value) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let field = |name: &str| {
                    block
                        .lines()
                        .find_map(|l| l.strip_prefix(&format!("{name}:")))
                        .map(|v| v.trim_start().to_string())
                };
                // Keep-alive comments carry no event.
                if let Some(data) = field("data") {
                    return (
                        field("event").unwrap_or_default(),
                        field("id").unwrap_or_default(),
                        serde_json::from_str(&data).unwrap(),
                    );
                }
                continue;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let chunk = tokio::time::timeout(left, self.response.chunk())
                .await
                .expect("an event within 20 s")
                .unwrap()
                .expect("the stream stays open");
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
}

async fn until<T>(what: &str, mut probe: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(found) = probe().await {
            return found;
        }
        assert!(Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A police disclosure on `case` to `recipients`, without consent, as the protocols
/// allow for crime and disorder.
fn police_disclosure(case: &str, id: &str, at: &str, recipients: &[&str], subject: Value) -> Value {
    command(
        "police",
        case,
        at,
        json!({
            "type": "DisclosureMade", "disclosure": id, "agreement": "csp-isa-asb-2025",
            "recipients": recipients, "subjects": [subject],
            "data_categories": ["personal"],
            "purpose": "prevention and reduction of crime, disorder and anti-social behaviour",
            "classification": "OFFICIAL-SENSITIVE", "channel": "secure email",
            "lawful_bases": ["uk-gdpr-6-1-e"], "gateways": ["cda-1998-s115"],
            "onward_sharing": "not-without-permission", "review_after_months": 12,
            "without_consent_decided_by": "police-inspector-0042",
            "without_consent_reason": "Managing a risk of harm to neighbours.",
        }),
    )
}

/// The deliveries the receiver took (answered 204), in the order they came.
fn taken(received: &Mutex<Vec<Received>>) -> Vec<Received> {
    received
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.answered == 204)
        .cloned()
        .collect()
}

pub async fn journey(url: Option<String>) {
    let data = tempfile::tempdir().unwrap();
    let (server, admin, api) = first_start(
        data.path(),
        url.as_deref(),
        &["--webhook-backoff-ms", "200", "--webhook-attempts", "5"],
    );
    let police = api.user(&admin, "police-dpo", "police", "dpo").await;
    let council = api.user(&admin, "council-dpo", "council", "dpo").await;
    let council_pc = api
        .user(&admin, "council-pc", "council", "practitioner")
        .await;
    let housing = api.user(&admin, "housing-dpo", "housing", "dpo").await;

    // The council's DPO registers a webhook; its secret is shown once.
    let (hook_url, received) = receiver(2).await;
    let (s, v) = api
        .post("/v1/webhooks", &council_pc, &json!({"url": hook_url}))
        .await;
    problem(s, &v, StatusCode::FORBIDDEN, "forbidden");
    let (s, v) = api
        .post(
            "/v1/webhooks",
            &council,
            &json!({"url": "https://example.org/hook"}),
        )
        .await;
    problem(s, &v, StatusCode::BAD_REQUEST, "validation");
    let (s, v) = api
        .post("/v1/webhooks", &council, &json!({"url": hook_url}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let secret = v["secret"].as_str().unwrap().to_string();
    let hook = v["webhook"]["id"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_"));
    let (_, listed) = api.get("/v1/webhooks", &council).await;
    assert_eq!(listed["items"][0]["id"], hook.as_str());
    assert!(
        !listed.to_string().contains(&secret),
        "the secret is shown once only"
    );

    // Housing's DPO watches its stream.
    let mut housing_events = Events::open(&api, &housing, None).await;

    // The police disclose to the council and housing, then rectify what they sent.
    let case = "case/asb-test-0001";
    let subject =
        json!({"given_name": "Alex", "family_name": "Testcase", "date_of_birth": "1990-01-01"});
    let disclosure = police_disclosure(
        case,
        "asb-test-0001-d1",
        "2025-04-01T10:00:00Z",
        &["council", "housing"],
        subject,
    );
    let (s, v) = api.post("/v1/commands", &police, &disclosure).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let rectified = command(
        "police",
        case,
        "2025-04-02T10:00:00Z",
        json!({"type": "RectificationApplied", "fields": ["address"], "description": "The address was a previous one."}),
    );
    let (s, v) = api.post("/v1/commands", &police, &rectified).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert!(
        v["events"].as_array().unwrap().len() >= 3,
        "the rectification issues a notice to each recipient: {v}"
    );

    // Each recipient's inbox holds its notice, pending, with a response date; the
    // police, who issued them, have nothing to act on.
    let council_notice = format!("{case}#notice-n1");
    let inbox = until("the council's notice reaches its inbox", async || {
        let (_, v) = api.get("/v1/inbox", &council).await;
        let items = v["items"].as_array().cloned().unwrap_or_default();
        items
            .iter()
            .any(|i| i["key"] == council_notice.as_str())
            .then_some(items)
    })
    .await;
    let item = inbox
        .iter()
        .find(|i| i["key"] == council_notice.as_str())
        .unwrap();
    assert_eq!(item["stored_status"], "pending", "{item}");
    assert_eq!(item["row"]["recipient"], "council");
    assert!(item["due"].is_string(), "{item}");
    let (_, v) = api.get("/v1/inbox", &police).await;
    assert!(
        !v["items"].to_string().contains(case),
        "the issuer's inbox does not hold the recipients' notices: {v}"
    );
    let (s, v) = api.get("/v1/inbox?partner=council", &housing).await;
    problem(s, &v, StatusCode::FORBIDDEN, "forbidden");

    // Housing's stream brings its own notice, and only its own.
    let (event, housing_id, data) = housing_events.next().await;
    assert_eq!(event, "notice.issued");
    assert_eq!(data["type"], "notice.issued");
    assert_eq!(data["data"]["key"], format!("{case}#notice-n2"));
    assert_eq!(data["data"]["notice"]["recipient"], "housing");

    // The council acknowledges; a repeat records nothing more. Housing is not party to
    // the council's notice (need-to-know: it is not there for housing); the police
    // issued it, so may not acknowledge it.
    let ack = json!({"notice": council_notice});
    let (s, v) = api.post("/v1/inbox/acknowledge", &housing, &ack).await;
    problem(s, &v, StatusCode::NOT_FOUND, "not-found");
    let (s, v) = api.post("/v1/inbox/acknowledge", &police, &ack).await;
    problem(s, &v, StatusCode::FORBIDDEN, "forbidden");
    let (s, first) = api.post("/v1/inbox/acknowledge", &council_pc, &ack).await;
    assert_eq!(s, StatusCode::CREATED, "{first}");
    assert_eq!(first["events"], json!(["NoticeAcknowledged"]));
    let (s, again) = api.post("/v1/inbox/acknowledge", &council_pc, &ack).await;
    assert_eq!(s, StatusCode::CREATED, "{again}");
    assert_eq!(again["receipts"][0]["seq"], first["receipts"][0]["seq"]);
    let (s, v) = api
        .post(
            "/v1/inbox/acknowledge",
            &council,
            &json!({"notice": "case/nope#notice-n1"}),
        )
        .await;
    problem(s, &v, StatusCode::NOT_FOUND, "not-found");
    until("the acknowledgement reaches the inbox", async || {
        let (_, v) = api.get("/v1/inbox", &council).await;
        (!v["items"].to_string().contains(&council_notice)).then_some(())
    })
    .await;

    // The webhook: the issued notice, refused twice and delivered on the third attempt
    // under one id, then its settlement, in that order, each signed with the secret.
    let delivered = until(
        "both changes are delivered to the council's webhook",
        async || {
            let got = received.lock().unwrap().clone();
            (got.iter().filter(|r| r.answered == 204).count() >= 2).then_some(got)
        },
    )
    .await;
    let issued: Vec<&Received> = delivered
        .iter()
        .filter(|r| r.body.contains("notice.issued"))
        .collect();
    assert_eq!(
        issued.len(),
        3,
        "two refusals then a delivery: {delivered:?}"
    );
    assert!(issued.iter().all(|r| r.id == issued[0].id));
    assert_eq!(
        issued.iter().map(|r| r.answered).collect::<Vec<_>>(),
        [500, 500, 204]
    );
    let settled_at = delivered
        .iter()
        .position(|r| r.body.contains("notice.settled"))
        .unwrap();
    let issued_done = delivered.iter().position(|r| r.answered == 204).unwrap();
    assert!(issued_done < settled_at, "in log order: {delivered:?}");
    for r in &delivered {
        assert!(signed_by(&secret, r), "signature of {r:?}");
        assert!(r.timestamp.parse::<i64>().is_ok());
        let body: Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(body["data"]["key"], council_notice.as_str());
    }
    let settled: Value = serde_json::from_str(&delivered[settled_at].body).unwrap();
    assert_eq!(settled["data"]["notice"]["status"], "acknowledged");
    let forged = Received {
        body: delivered[settled_at]
            .body
            .replace("acknowledged", "exempted"),
        ..delivered[settled_at].clone()
    };
    assert!(!signed_by(&secret, &forged));

    // The delivery log, as the council's DPO reads it; not the police's to read.
    let (s, log) = api
        .get(&format!("/v1/webhooks/{hook}/deliveries"), &council)
        .await;
    assert_eq!(s, StatusCode::OK, "{log}");
    let items = log["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{log}");
    assert_eq!(items[0]["event_type"], "notice.issued");
    assert_eq!(items[0]["status"], "delivered");
    assert_eq!(items[0]["attempts"], 3);
    assert_eq!(items[0]["last_status"], 204);
    assert_eq!(items[1]["event_type"], "notice.settled");
    assert_eq!(items[1]["attempts"], 1);
    let (s, v) = api
        .get(&format!("/v1/webhooks/{hook}/deliveries"), &police)
        .await;
    problem(s, &v, StatusCode::NOT_FOUND, "not-found");

    // Housing's connection drops; it acknowledges, reconnects with Last-Event-ID and
    // the change it missed is replayed from the log.
    drop(housing_events);
    let (s, v) = api
        .post(
            "/v1/inbox/acknowledge",
            &housing,
            &json!({"notice": format!("{case}#notice-n2")}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let mut resumed = Events::open(&api, &housing, Some(&housing_id)).await;
    let (event, _, data) = resumed.next().await;
    assert_eq!(event, "notice.settled");
    assert_eq!(data["data"]["key"], format!("{case}#notice-n2"));
    assert_eq!(data["data"]["notice"]["status"], "acknowledged");

    // The metrics count the refused attempts; partners' users may not read them.
    let (s, v) = api.get("/metrics", &council).await;
    problem(s, &v, StatusCode::FORBIDDEN, "forbidden");
    let (s, text, headers) = api.call(Method::GET, "/metrics", Some(&admin), None).await;
    assert_eq!(s, StatusCode::OK);
    assert!(headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let text = text.as_str().unwrap().to_string();
    assert!(
        text.contains("isa_ledger_webhook_failed_attempts_total 2"),
        "{text}"
    );
    assert!(text.contains("isa_ledger_webhook_failed_deliveries_total 0"));
    assert!(text.contains(
        "isa_ledger_http_requests_total{method=\"POST\",route=\"/v1/commands\",status=\"201\"} 2"
    ));
    assert!(text.contains("isa_ledger_view_lag_seconds{view=\"notices\"}"));
    let batches: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("isa_ledger_append_batch_size_count "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(batches >= 4, "{text}");
    assert!(!text.contains(&admin) && !text.contains(&secret));

    // A stop while a stream is open still drains and exits.
    let status = server.stop();
    assert!(status.success(), "{status}");
    drop(resumed);
}

/// The feed across restarts: a change queued while the council's receiver is down is
/// delivered once it is up, after the service was killed; a change made just before a
/// kill is delivered after the restart; a graceful stop and start sends nothing twice.
/// The feed saves its place only with a change (or every 10,000 entries), so the
/// entries appended between changes are read again after each restart and must add
/// nothing.
pub async fn restarts(url: Option<String>) {
    let data = tempfile::tempdir().unwrap();
    let flags = ["--webhook-backoff-ms", "200", "--webhook-attempts", "20"];
    let (server, admin, mut api) = first_start(data.path(), url.as_deref(), &flags);
    let police = api.user(&admin, "police-dpo", "police", "dpo").await;
    let council = api.user(&admin, "council-dpo", "council", "dpo").await;
    let down = Arc::new(AtomicBool::new(true));
    let refusing = down.clone();
    let (hook_url, received) = receiver_refusing(move |_| refusing.load(Ordering::SeqCst)).await;
    let (s, v) = api
        .post("/v1/webhooks", &council, &json!({"url": hook_url}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let hook = v["webhook"]["id"].as_str().unwrap().to_string();

    // A notice to the council, whose receiver refuses it for now.
    let case = "case/asb-restart-0001";
    let disclosure = police_disclosure(
        case,
        "asb-restart-0001-d1",
        "2025-05-01T10:00:00Z",
        &["council"],
        json!({"given_name": "Sam", "family_name": "Restart", "date_of_birth": "1985-02-03"}),
    );
    let (s, v) = api.post("/v1/commands", &police, &disclosure).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let rectify = |at: &str, what: &str| {
        command(
            "police",
            case,
            at,
            json!({"type": "RectificationApplied", "fields": ["address"], "description": what}),
        )
    };
    let (s, v) = api
        .post(
            "/v1/commands",
            &police,
            &rectify("2025-05-02T10:00:00Z", "The address was a previous one."),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let first = format!("{case}#notice-n1");
    until("the first notice is attempted and refused", async || {
        let got = received.lock().unwrap().clone();
        got.iter().any(|r| r.answered == 500).then_some(())
    })
    .await;

    // Entries that change no notice, then the council's acknowledgement, and at once a
    // kill: the feed may not have seen the acknowledgement yet.
    for n in 0..25 {
        let breach = command(
            "police",
            &format!("breach/restart-{n}"),
            "2025-05-03T10:00:00Z",
            json!({
                "type": "BreachDetected", "became_aware_at": "2025-05-03T09:00:00Z",
                "nature": ["availability"], "data_categories": ["personal"],
                "subject_categories": ["staff"], "approximate_subjects": 1,
                "approximate_records": 1,
            }),
        );
        let (s, v) = api.post("/v1/commands", &police, &breach).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }
    let (s, v) = api
        .post("/v1/inbox/acknowledge", &council, &json!({"notice": first}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    // Refused retries back off fourfold from 200 ms; after a fifth the next would come
    // too late for this test's patience.
    let refused = received.lock().unwrap().len();
    assert!(
        refused <= 4,
        "{refused} refusals before the kill: the machine is too slow for this test's timing"
    );
    drop(server); // SIGKILL

    // Up again, the receiver too: the queued notice and the acknowledgement arrive,
    // each once, in log order.
    down.store(false, Ordering::SeqCst);
    let server = Server::start_with(data.path(), url.as_deref(), &flags);
    api.base = server.base.clone();
    let delivered = |n: usize| {
        let received = received.clone();
        async move {
            until(&format!("{n} deliveries"), async || {
                let got = taken(&received);
                (got.len() >= n).then_some(got)
            })
            .await
        }
    };
    let summary = |got: &[Received]| -> Vec<(String, String)> {
        got.iter()
            .map(|r| {
                let body: Value = serde_json::from_str(&r.body).unwrap();
                (
                    body["type"].as_str().unwrap().to_string(),
                    body["data"]["key"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    let got = delivered(2).await;
    assert_eq!(
        summary(&got),
        [
            ("notice.issued".to_string(), first.clone()),
            ("notice.settled".to_string(), first.clone()),
        ]
    );

    // A graceful stop and start, then a second rectification: its notice is the next
    // delivery. A change sent again would have been queued, and delivered, before it
    // (a webhook's deliveries go in log order), so the third delivery must be this one.
    assert!(server.stop().success());
    let server = Server::start_with(data.path(), url.as_deref(), &flags);
    api.base = server.base.clone();
    let (s, v) = api
        .post(
            "/v1/commands",
            &police,
            &rectify("2025-05-04T10:00:00Z", "The date of birth was mistyped."),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let second = format!("{case}#notice-n2");
    let got = delivered(3).await;
    assert_eq!(
        summary(&got)[2..],
        [("notice.issued".to_string(), second.clone())],
        "{:?}",
        summary(&got)
    );
    let ids: std::collections::BTreeSet<&str> = got.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids.len(), got.len(), "one webhook-id per change");

    // The delivery log agrees, once it has recorded the last answer: three
    // deliveries, each delivered.
    let log = until("the delivery log records every answer", async || {
        let (s, log) = api
            .get(&format!("/v1/webhooks/{hook}/deliveries"), &council)
            .await;
        assert_eq!(s, StatusCode::OK, "{log}");
        let items = log["items"].as_array().cloned().unwrap_or_default();
        items
            .iter()
            .all(|i| i["status"] == "delivered")
            .then_some(items)
    })
    .await;
    assert_eq!(log.len(), 3, "{log:?}");
    assert!(server.stop().success());
}
