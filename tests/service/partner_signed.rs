//! A partner that holds its own key: the administrator registers its public key, the
//! service then refuses to sign for it, and its submissions are prepared by the
//! service, signed by the partner and recorded only with a signature that verifies.

use crate::support::{command, first_start, problem, Api};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use ledger::entry::submission_message;
use ledger::hash::Hash;
use ledger::keyring::possession_message;
use ledger::keys::SignerKey;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

async fn tree_size(api: &Api, token: &str) -> u64 {
    let (s, v, _) = api
        .call(Method::GET, "/v1/ledger/checkpoint", Some(token), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v.as_str().unwrap().lines().nth(1).unwrap().parse().unwrap()
}

/// Signs every prepared entry's `sign` bytes with `key`.
fn signatures(prepared: &Value, key: &SignerKey) -> Value {
    let sigs: Vec<String> = prepared["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let message = BASE64.decode(e["sign"].as_str().unwrap()).unwrap();
            BASE64.encode(key.sign(&message).to_bytes())
        })
        .collect();
    json!({ "signatures": sigs })
}

pub async fn journey(url: Option<String>) {
    let data = tempfile::tempdir().unwrap();
    let (server, admin, api) = first_start(data.path(), url.as_deref(), &[]);
    let police = api.user(&admin, "police-dpo", "police", "dpo").await;
    let council = api.user(&admin, "council-dpo", "council", "dpo").await;
    let ico = api.user(&admin, "ico", "ico", "regulator").await;

    // The police force takes custody of its own key. The proof of possession binds the
    // key to this log's origin (the checkpoint's first line).
    let (_, checkpoint, _) = api
        .call(Method::GET, "/v1/ledger/checkpoint", Some(&ico), None)
        .await;
    let origin = checkpoint
        .as_str()
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_string();
    let key = SignerKey::generate("police").unwrap();
    let public = key.verifier().to_string();
    let possession = BASE64.encode(key.sign(&possession_message(&public, &origin)).to_bytes());
    let impostor = SignerKey::generate("police").unwrap();
    let wrong = BASE64.encode(
        impostor
            .sign(&possession_message(&public, &origin))
            .to_bytes(),
    );
    let path = "/v1/admin/partners/police/keys";
    let (s, v) = api
        .post(
            path,
            &admin,
            &json!({"public_key": public, "possession": wrong}),
        )
        .await;
    problem(s, &v, StatusCode::BAD_REQUEST, "validation");
    assert_eq!(v["field"], "possession", "{v}");
    let (s, v) = api
        .post(
            path,
            &police,
            &json!({"public_key": public, "possession": possession}),
        )
        .await;
    problem(s, &v, StatusCode::FORBIDDEN, "forbidden");
    let (s, v) = api
        .post(
            path,
            &admin,
            &json!({"public_key": public, "possession": possession}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["key_id"], key.verifier().id_hex());
    assert!(
        v["replaces"].is_string(),
        "the custodial key is rotated out: {v}"
    );

    // The service no longer signs for the police.
    let breach = command(
        "police",
        "breach/br-signed-1",
        "2025-10-01T10:00:00Z",
        json!({
            "type": "BreachDetected", "became_aware_at": "2025-10-01T09:00:00Z",
            "nature": ["confidentiality"], "data_categories": ["personal"], "subject_categories": ["victims"],
            "approximate_subjects": 1, "approximate_records": 1,
            "description": "A letter went to the wrong address.",
        }),
    );
    let (s, v) = api.post("/v1/commands", &police, &breach).await;
    problem(s, &v, StatusCode::BAD_REQUEST, "validation");
    assert!(
        v["detail"]
            .as_str()
            .unwrap()
            .contains("/v1/commands/prepare"),
        "{v}"
    );

    // Prepared: decided by the rules, nothing recorded yet, and the bytes to sign are
    // the domain-separated hash of the submission's canonical form.
    let before = tree_size(&api, &ico).await;
    let (s, prepared) = api.post("/v1/commands/prepare", &police, &breach).await;
    assert_eq!(s, StatusCode::OK, "{prepared}");
    let entries = prepared["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{prepared}");
    let entry = &entries[0];
    assert_eq!(entry["submission"]["author"], "police");
    assert_eq!(entry["submission"]["key_id"], key.verifier().id_hex());
    assert_eq!(entry["submission"]["event_type"], "BreachDetected");
    let canonical = BASE64.decode(entry["canonical"].as_str().unwrap()).unwrap();
    let parsed: Value = serde_json::from_slice(&canonical).unwrap();
    assert_eq!(parsed, entry["submission"]);
    let hash = Hash::of(&canonical);
    assert_eq!(entry["submission_hash"], hash.to_hex());
    assert_eq!(
        BASE64.decode(entry["sign"].as_str().unwrap()).unwrap(),
        submission_message(&hash)
    );
    assert!(
        !entry["submission"].to_string().contains("wrong address"),
        "narrative stays in the redactable content: {entry}"
    );
    assert_eq!(tree_size(&api, &ico).await, before);
    let commit = prepared["commit"].as_str().unwrap().to_string();

    // Bad input is refused at preparation, as for any submission.
    let mut wrong_kind = breach.clone();
    wrong_kind["nature"] = json!(["no-such-nature"]);
    let (s, v) = api.post("/v1/commands/prepare", &police, &wrong_kind).await;
    problem(s, &v, StatusCode::BAD_REQUEST, "validation");

    // Bad signatures write nothing; the prepared command waits to be signed again.
    let (s, v) = api
        .post(&commit, &police, &signatures(&prepared, &impostor))
        .await;
    problem(s, &v, StatusCode::UNPROCESSABLE_ENTITY, "bad-signature");
    let (s, v) = api
        .post(
            &commit,
            &police,
            &json!({"signatures": ["bm90IGEgc2lnbmF0dXJl"]}),
        )
        .await;
    problem(s, &v, StatusCode::BAD_REQUEST, "validation");
    assert_eq!(v["field"], "signatures[0]");
    let (s, v) = api.post(&commit, &police, &json!({"signatures": []})).await;
    problem(s, &v, StatusCode::BAD_REQUEST, "validation");
    // Another partner cannot sign it in the police's name.
    let (s, v) = api
        .post(&commit, &council, &signatures(&prepared, &key))
        .await;
    problem(s, &v, StatusCode::FORBIDDEN, "forbidden");
    assert_eq!(tree_size(&api, &ico).await, before);

    // Signed by the police's key: recorded, with a receipt naming that key.
    let (s, v) = api
        .post(&commit, &police, &signatures(&prepared, &key))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let receipt = &v["receipts"][0];
    assert_eq!(
        receipt["entry"]["submission"]["key_id"],
        key.verifier().id_hex()
    );
    assert_eq!(receipt["seq"].as_u64().unwrap(), before);
    assert_eq!(tree_size(&api, &ico).await, before + 1);
    // Once only.
    let (s, v) = api
        .post(&commit, &police, &signatures(&prepared, &key))
        .await;
    problem(s, &v, StatusCode::NOT_FOUND, "not-found");

    // A second preparation of the same stream after it moved: the first one, if
    // committed late, is a conflict, never a double record.
    let followup = command(
        "police",
        "breach/br-signed-1",
        "2025-10-01T12:00:00Z",
        json!({"type": "BreachAssessed", "risk": "no-risk", "rationale": "Letter retrieved unopened."}),
    );
    let (s, first) = api.post("/v1/commands/prepare", &police, &followup).await;
    assert_eq!(s, StatusCode::OK, "{first}");
    let (s, second) = api.post("/v1/commands/prepare", &police, &followup).await;
    assert_eq!(s, StatusCode::OK, "{second}");
    let (s, v) = api
        .post(
            second["commit"].as_str().unwrap(),
            &police,
            &signatures(&second, &key),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, v) = api
        .post(
            first["commit"].as_str().unwrap(),
            &police,
            &signatures(&first, &key),
        )
        .await;
    problem(s, &v, StatusCode::CONFLICT, "conflict");
    assert_eq!(tree_size(&api, &ico).await, before + 2);

    // A retried preparation under an Idempotency-Key, once recorded, answers with the
    // receipts of what was recorded.
    let mut third = breach.clone();
    third["stream"] = json!("breach/br-signed-3");
    let prepare_once = |body: Value| {
        let request = api
            .http
            .post(format!("{}/v1/commands/prepare", api.base))
            .bearer_auth(&police)
            .header("Idempotency-Key", "police-breach-3")
            .json(&body);
        async move {
            let r = request.send().await.unwrap();
            (r.status(), r.json::<Value>().await.unwrap())
        }
    };
    let (s, prepared) = prepare_once(third.clone()).await;
    assert_eq!(s, StatusCode::OK, "{prepared}");
    let (s, recorded) = api
        .post(
            prepared["commit"].as_str().unwrap(),
            &police,
            &signatures(&prepared, &key),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{recorded}");
    let (s, again) = prepare_once(third).await;
    assert_eq!(s, StatusCode::OK, "{again}");
    assert_eq!(
        again["receipts"][0]["seq"], recorded["receipts"][0]["seq"],
        "{again}"
    );
    assert!(again.get("entries").is_none());
    assert_eq!(tree_size(&api, &ico).await, before + 3);

    // The log exported over HTTP verifies offline, the partner-held key's entries with it.
    let export = tempfile::tempdir().unwrap();
    api.export_and_verify(&ico, export.path()).await;
    assert!(server.stop().success());
}
