//! The C2SP tlog-tiles read API, used as a standard client would: the checkpoint, the
//! level-0 tiles (full and partial) hashed up to the checkpoint's root, a level-1 tile
//! checked against the leaves beneath it, and an entry bundle whose entries are the
//! hashes of the entries the log serves.

use crate::support::{command, first_start, problem, Api};
use ledger::hash::Hash;
use ledger::merkle::{leaf_hash, Frontier};
use reqwest::StatusCode;
use serde_json::json;

async fn fetch(
    api: &Api,
    token: &str,
    path: &str,
) -> (StatusCode, Vec<u8>, reqwest::header::HeaderMap) {
    let r = api
        .http
        .get(format!("{}{path}", api.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let headers = r.headers().clone();
    (status, r.bytes().await.unwrap().to_vec(), headers)
}

fn hashes(bytes: &[u8]) -> Vec<Hash> {
    assert_eq!(bytes.len() % 32, 0);
    bytes
        .chunks(32)
        .map(|c| Hash::from_slice(c).unwrap())
        .collect()
}

fn root_of(leaves: &[Hash]) -> Hash {
    let mut frontier = Frontier::new();
    for leaf in leaves {
        frontier.push(*leaf, |_, _| {});
    }
    frontier.root()
}

pub async fn journey(url: Option<String>) {
    let data = tempfile::tempdir().unwrap();
    let (server, admin, api) = first_start(data.path(), url.as_deref(), &[]);
    let police = api.user(&admin, "police-dpo", "police", "dpo").await;
    let ico = api.user(&admin, "ico", "ico", "regulator").await;
    // Enough entries for a full tile and the first node of level 1.
    for i in 0..260 {
        let breach = command(
            "police",
            &format!("breach/br-tile-{i}"),
            "2025-10-01T10:00:00Z",
            json!({"type": "BreachDetected", "became_aware_at": "2025-10-01T09:00:00Z",
                   "nature": ["availability"], "data_categories": ["personal"], "subject_categories": ["staff"],
                   "approximate_subjects": 1, "approximate_records": 1}),
        );
        let (s, v) = api.post("/v1/commands", &police, &breach).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }

    let (s, note, _) = fetch(&api, &police, "/tlog/checkpoint").await;
    assert_eq!(s, StatusCode::OK);
    let note = String::from_utf8(note).unwrap();
    let mut lines = note.lines();
    let _origin = lines.next().unwrap();
    let size: u64 = lines.next().unwrap().parse().unwrap();
    let root = Hash::from_base64(lines.next().unwrap()).unwrap();
    assert!(size > 256, "{size}");

    // Level 0: every leaf, from full tiles and the partial one at the edge.
    let mut leaves = Vec::new();
    for n in 0..size / 256 {
        let (s, body, headers) = fetch(&api, &police, &format!("/tlog/tile/0/{n:03}")).await;
        assert_eq!(s, StatusCode::OK);
        assert!(headers["cache-control"]
            .to_str()
            .unwrap()
            .contains("immutable"));
        assert_eq!(body.len(), 256 * 32);
        leaves.extend(hashes(&body));
    }
    let rest = size % 256;
    let (s, body, _) = fetch(
        &api,
        &police,
        &format!("/tlog/tile/0/{:03}.p/{rest}", size / 256),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    leaves.extend(hashes(&body));
    assert_eq!(leaves.len() as u64, size);
    assert_eq!(
        root_of(&leaves),
        root,
        "the tiles hash to the checkpoint's root"
    );

    // Level 1: the node above the first 256 leaves.
    let (s, body, _) = fetch(&api, &police, "/tlog/tile/1/000.p/1").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(hashes(&body), [root_of(&leaves[..256])]);

    // An entry bundle: each entry is the 32-byte entry hash its leaf is made from, and
    // the hash of the entry the log serves.
    let (s, bundle, _) = fetch(&api, &police, "/tlog/tile/entries/000").await;
    assert_eq!(s, StatusCode::OK);
    let mut entries = Vec::new();
    let mut at = 0;
    while at < bundle.len() {
        let len = u16::from_be_bytes([bundle[at], bundle[at + 1]]) as usize;
        entries.push(bundle[at + 2..at + 2 + len].to_vec());
        at += 2 + len;
    }
    assert_eq!(entries.len(), 256);
    for (entry, leaf) in entries.iter().zip(&leaves) {
        assert_eq!(leaf_hash(entry), *leaf);
    }
    let (_, served) = api.get("/v1/ledger/entries?from=0&limit=3", &ico).await;
    for (i, line) in served["entries"].as_array().unwrap().iter().enumerate() {
        let bytes = ledger::canonical::to_canonical(&line["entry"]).unwrap();
        assert_eq!(Hash::of(&bytes).0.to_vec(), entries[i], "entry {i}");
    }

    // Beyond the tree, or not a tile path: 404 problems. Hashes only, but still behind
    // a token.
    let (s, body, _) = fetch(
        &api,
        &police,
        &format!("/tlog/tile/0/{:03}", size / 256 + 1),
    )
    .await;
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    problem(s, &v, StatusCode::NOT_FOUND, "not-found");
    let (s, body, _) = fetch(&api, &police, "/tlog/tile/0/1").await;
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    problem(s, &v, StatusCode::NOT_FOUND, "not-found");
    let r = api
        .http
        .get(format!("{}/tlog/tile/0/000", api.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(server.stop().success());
}
