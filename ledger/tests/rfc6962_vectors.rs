//! Every RFC 6962 / RFC 9162 proof vector from transparency-dev/merkle (copied under
//! tests/vectors/rfc6962 with its licence) must verify exactly when `wantErr` is false.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use ledger::merkle::{verify_consistency, verify_inclusion};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn vector_files(kind: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/vectors/rfc6962")
        .join(kind);
    let mut files = Vec::new();
    let mut dirs = vec![root];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "json") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

fn bytes(v: &Value, field: &str) -> Vec<u8> {
    BASE64.decode(v[field].as_str().unwrap()).unwrap()
}

fn proof(v: &Value) -> Vec<Vec<u8>> {
    match &v["proof"] {
        Value::Null => vec![],
        Value::Array(items) => items
            .iter()
            .map(|p| BASE64.decode(p.as_str().unwrap()).unwrap())
            .collect(),
        other => panic!("unexpected proof {other}"),
    }
}

fn load(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[test]
fn every_inclusion_vector() {
    let files = vector_files("inclusion");
    assert!(files.len() > 50, "vectors missing: {}", files.len());
    for path in files {
        let v = load(&path);
        let got = verify_inclusion(
            v["leafIdx"].as_u64().unwrap(),
            v["treeSize"].as_u64().unwrap(),
            &bytes(&v, "leafHash"),
            &proof(&v),
            &bytes(&v, "root"),
        );
        let want_err = v["wantErr"].as_bool().unwrap();
        assert_eq!(got.is_err(), want_err, "{}: {got:?}", path.display());
    }
}

#[test]
fn every_consistency_vector() {
    let files = vector_files("consistency");
    assert!(files.len() > 50, "vectors missing: {}", files.len());
    for path in files {
        let v = load(&path);
        let got = verify_consistency(
            v["size1"].as_u64().unwrap(),
            v["size2"].as_u64().unwrap(),
            &proof(&v),
            &bytes(&v, "root1"),
            &bytes(&v, "root2"),
        );
        let want_err = v["wantErr"].as_bool().unwrap();
        assert_eq!(got.is_err(), want_err, "{}: {got:?}", path.display());
    }
}
