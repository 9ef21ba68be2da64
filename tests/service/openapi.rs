//! The API description: OpenAPI 3.1 at `/openapi.json`, every operation documented and
//! served, every reference resolving, and its examples true: the command example is
//! accepted by the real service, and real answers carry the fields the schemas require.

use crate::support::first_start;
use reqwest::{Method, StatusCode};
use serde_json::Value;

/// Every `$ref` under `value`.
fn refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("$ref", Value::String(r)) => out.push(r.clone()),
                    _ => refs(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

/// Checks that `value` has every field `schema` requires, and the same of the items
/// of its array fields that refer to another schema.
fn conforms(spec: &Value, name: &str, value: &Value) {
    let schema = &spec["components"]["schemas"][name];
    assert!(schema.is_object(), "no schema {name}");
    for field in schema["required"].as_array().into_iter().flatten() {
        let field = field.as_str().unwrap();
        assert!(
            value.get(field).is_some(),
            "{name} requires {field}, missing from {value}"
        );
        let items = &schema["properties"][field]["items"]["$ref"];
        if let (Some(r), Some(array)) = (items.as_str(), value[field].as_array()) {
            let inner = r.trim_start_matches("#/components/schemas/");
            for item in array {
                conforms(spec, inner, item);
            }
        }
    }
}

pub async fn journey(url: Option<String>) {
    let data = tempfile::tempdir().unwrap();
    let (server, admin, api) = first_start(data.path(), url.as_deref(), &[]);
    let (s, spec, _) = api.call(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(spec["openapi"], "3.1.0");
    let schemas = spec["components"]["schemas"].as_object().unwrap();

    // Every reference resolves; every schema has an example.
    let mut all = Vec::new();
    refs(&spec, &mut all);
    assert!(!all.is_empty());
    for r in &all {
        let name = r.strip_prefix("#/components/schemas/").expect(r);
        assert!(schemas.contains_key(name), "unresolved {r}");
    }
    let derived = [
        "CaseFactCommand",
        "SarFactCommand",
        "BreachFactCommand",
        "PartnershipFactCommand",
    ];
    for name in derived {
        assert!(
            schemas.contains_key(name),
            "{name} is derived from the domain"
        );
    }
    let case_events = serde_json::to_string(&schemas["CaseFactCommand"]).unwrap();
    for event in [
        "DisclosureMade",
        "RectificationApplied",
        "NoticeAcknowledged",
    ] {
        assert!(case_events.contains(event), "{event} is documented");
    }

    // Every operation is documented, and served: a request to it never meets the
    // router's "no resource" answer.
    let ico = api.user(&admin, "ico", "ico", "regulator").await;
    let mut operations = 0;
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            operations += 1;
            for field in ["operationId", "summary", "description", "responses"] {
                assert!(op.get(field).is_some(), "{method} {path} lacks {field}");
            }
            for (status, response) in op["responses"].as_object().unwrap() {
                for (media, content) in response["content"].as_object().into_iter().flatten() {
                    if media.contains("json") {
                        assert!(
                            content.get("example").is_some(),
                            "{method} {path} {status} has no example"
                        );
                    }
                }
            }
            if op.get("requestBody").is_some() {
                let content = &op["requestBody"]["content"]["application/json"];
                assert!(
                    content.get("example").is_some(),
                    "{method} {path} request has no example"
                );
            }
            let concrete = path
                .replace("{view}", "breaches")
                .replace("{file}", "checkpoint")
                .replace("{seq}", "0")
                .replace("{kind}", "validation")
                .replace(['{', '}'], "");
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            if path.ends_with("/stream") {
                // An event stream never ends: its headers say it is served.
                let r = api
                    .http
                    .request(m, format!("{}{concrete}", api.base))
                    .bearer_auth(&ico)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), StatusCode::OK, "{path}");
                continue;
            }
            let (status, body, _) = api.call(m, &concrete, Some(&ico), None).await;
            assert!(
                !body.to_string().contains("there is no resource at"),
                "{method} {path} is documented but not served: {status} {body}"
            );
        }
    }
    assert!(operations >= 30, "{operations}");

    // The command example is a real command: the service accepts it, and the answer
    // carries what `Recorded` requires.
    let police = api.user(&admin, "police-dpo", "police", "dpo").await;
    let example = &spec["paths"]["/v1/commands"]["post"]["requestBody"]["content"]
        ["application/json"]["example"];
    let (s, recorded) = api.post("/v1/commands", &police, example).await;
    assert_eq!(s, StatusCode::CREATED, "{recorded}");
    conforms(&spec, "Recorded", &recorded);
    // Real answers carry the fields their schemas require.
    let page = api
        .rows_until("/v1/views/breaches", &police, |rows| !rows.is_empty())
        .await;
    conforms(&spec, "Record", &page[0]);
    for (path, schema) in [
        ("/v1/deadlines", "Deadlines"),
        ("/v1/views", "ViewStatusList"),
        ("/v1/inbox", "Page"),
        ("/v1/ledger/proofs/inclusion/0", "InclusionProof"),
    ] {
        let (s, v) = api.get(path, &police).await;
        assert_eq!(s, StatusCode::OK, "{path}: {v}");
        conforms(&spec, schema, &v);
    }
    let (_, problem, _) = api
        .call(Method::GET, "/v1/views/nothing", Some(&police), None)
        .await;
    conforms(&spec, "Problem", &problem);

    // The readable page.
    let response = api
        .http
        .get(format!("{}/docs", api.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("default-src 'none'"));
    let html = response.text().await.unwrap();
    assert!(html.contains("/openapi.json"));
    assert!(server.stop().success());
}
