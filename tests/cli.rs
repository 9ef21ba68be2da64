//! Black-box tests of the real `isa-ledger` binary: init, key management, bench, export
//! and verify, on SQLite and on a throwaway PostgreSQL database, including exports that
//! were tampered with after the fact.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::path::Path;
use std::process::{Command, Output};

fn isa_ledger(data_dir: &Path, url: Option<&str>, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_isa-ledger"));
    cmd.arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env_remove("DATABASE_URL");
    if let Some(url) = url {
        cmd.arg("--database-url").arg(url);
    }
    cmd.output().expect("run isa-ledger")
}

fn ok(out: &Output) -> String {
    testkit::succeeded(out)
}

fn run_scenario(url: Option<&str>) {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let export = tmp.path().join("export");
    let export_s = export.to_str().unwrap();

    ok(&isa_ledger(
        &data,
        url,
        &["init", "--origin", "test.example/csp"],
    ));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(data.join("ledger.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "the ledger key must be private");
        if url.is_none() {
            let db = std::fs::metadata(data.join("ledger.db")).unwrap();
            assert_eq!(
                db.permissions().mode() & 0o777,
                0o600,
                "the store holds personal data"
            );
        }
    }
    // A second init refuses to start another log over the first.
    assert!(
        !isa_ledger(&data, url, &["init", "--origin", "test.example/csp"])
            .status
            .success()
    );

    let bench = ok(&isa_ledger(
        &data,
        url,
        &["bench", "--events", "300", "--concurrency", "16"],
    ));
    let figures: serde_json::Value =
        serde_json::from_str(bench.trim().lines().last().unwrap()).unwrap();
    assert_eq!(
        figures["store"],
        if url.is_some() { "postgres" } else { "sqlite" }
    );
    assert_eq!(figures["events"], 300);
    assert_eq!(figures["concurrency"], 16);
    assert!(figures["events_per_sec"].as_f64().unwrap() > 0.0);
    assert!(figures["p99_ms"].as_f64().unwrap() >= figures["p50_ms"].as_f64().unwrap());

    ok(&isa_ledger(&data, url, &["key", "rotate", "bench-police"]));
    let listed = ok(&isa_ledger(&data, url, &["key", "list"]));
    assert_eq!(
        listed
            .lines()
            .filter(|l| l.starts_with("bench-police "))
            .count(),
        2
    );
    let secret = std::fs::read_to_string(data.join("ledger.key")).unwrap();
    assert!(
        !listed.contains(secret.trim()),
        "no private key is ever printed"
    );

    ok(&isa_ledger(&data, url, &["export", "--out", export_s]));
    let checkpoint = std::fs::read_to_string(export.join("checkpoint")).unwrap();
    let old_vkey = std::fs::read_to_string(export.join("ledger.vkey")).unwrap();
    assert!(checkpoint.starts_with("test.example/csp\n"));
    let verified = ok(&isa_ledger(&data, None, &["verify", export_s]));
    assert!(verified.starts_with("OK: "), "{verified}");
    let kept = tmp.path().join("kept-checkpoint");
    std::fs::write(&kept, &checkpoint).unwrap();

    // A new ledger key, more entries, then verify the new export against the kept
    // checkpoint (which the old key signed).
    ok(&isa_ledger(&data, url, &["key", "rotate-ledger"]));
    ok(&isa_ledger(
        &data,
        url,
        &["bench", "--events", "50", "--concurrency", "4"],
    ));
    ok(&isa_ledger(&data, url, &["export", "--out", export_s]));
    let verified = ok(&isa_ledger(
        &data,
        None,
        &[
            "verify",
            export_s,
            "--trusted-checkpoint",
            kept.to_str().unwrap(),
        ],
    ));
    assert!(
        verified.contains("consistent with the trusted checkpoint"),
        "{verified}"
    );
    let new_vkey = std::fs::read_to_string(export.join("ledger.vkey")).unwrap();
    assert_ne!(new_vkey, old_vkey, "the export carries the new ledger key");
    assert_eq!(
        new_vkey,
        std::fs::read_to_string(data.join("ledger.vkey")).unwrap()
    );

    // One byte changed in the export: exit 1, naming the entry.
    let entries = std::fs::read_to_string(export.join("entries.jsonl")).unwrap();
    let mut lines: Vec<String> = entries.lines().map(String::from).collect();
    assert!(lines[42].contains("-user-0001"), "{}", lines[42]);
    lines[42] = lines[42].replacen("-user-0001", "-user-0002", 1);
    std::fs::write(export.join("entries.jsonl"), lines.join("\n") + "\n").unwrap();
    let failed = isa_ledger(&data, None, &["verify", export_s]);
    assert_eq!(failed.status.code(), Some(1));
    let text = String::from_utf8_lossy(&failed.stdout);
    assert!(text.contains("first failing sequence number: 42"), "{text}");
}

#[test]
fn init_bench_export_verify_on_sqlite() {
    run_scenario(None);
}

#[test]
fn init_bench_export_verify_on_postgres() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let Some(url) = runtime.block_on(testkit::postgres_url()) else {
        return;
    };
    run_scenario(Some(&url));
}

#[test]
fn verify_explains_a_missing_export() {
    let tmp = tempfile::tempdir().unwrap();
    let out = isa_ledger(
        tmp.path(),
        None,
        &["verify", tmp.path().join("nothing").to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("cannot read"));
}

#[test]
fn commands_before_init_say_what_to_do() {
    let tmp = tempfile::tempdir().unwrap();
    let out = isa_ledger(&tmp.path().join("none"), None, &["export", "--out", "x"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("isa-ledger init"));
}

/// `due` works one deadline out by hand: the sentence by default, JSON on request, and a
/// specific message (exit 2) for input it cannot use. It needs no data directory.
#[test]
fn due_works_a_deadline_out_by_hand() {
    let nowhere = Path::new("/nonexistent/isa-ledger-data");
    let sentence = ok(&isa_ledger(
        nowhere,
        None,
        &["due", "sar", "--from", "2025-01-01"],
    ));
    assert_eq!(
        sentence.trim(),
        "due Mon 3 Feb 2025: one month from Wed 1 Jan 2025 is Sat 1 Feb 2025, which is not a working day, moved to the next working day in England and Wales"
    );
    let json: serde_json::Value = serde_json::from_str(&ok(&isa_ledger(
        nowhere,
        None,
        &["due", "breach", "--from", "2026-03-27T16:30:00Z", "--json"],
    )))
    .unwrap();
    assert_eq!(json["rule"], "breach");
    assert_eq!(json["due"], "2026-03-30T16:30:00Z");
    assert_eq!(json["rule_version"], "deadline-rules/1");
    assert!(json["calendar_version"]
        .as_str()
        .unwrap()
        .starts_with("uk-bank-holidays/"));
    assert!(json["explanation"].as_str().unwrap().contains("17:30 BST"));
    let scotland = ok(&isa_ledger(
        nowhere,
        None,
        &[
            "due",
            "sar",
            "--from",
            "2025-12-02",
            "--division",
            "scotland",
            "--paused",
            "2025-12-05..2025-12-05",
            "--json",
        ],
    ));
    let scotland: serde_json::Value = serde_json::from_str(&scotland).unwrap();
    // 2 Jan + 1 paused day is Sat 3 Jan; Mon 5 Jan.
    assert_eq!(scotland["due"], "2026-01-05");
    for (args, says) in [
        (vec!["due", "sar", "--from", "2025-02-30"], "is not a date"),
        (
            vec!["due", "fortnight", "--from", "2025-01-01"],
            "one of breach, sar",
        ),
        (vec!["due", "breach", "--from", "2025-01-01"], "RFC 3339"),
        (
            vec!["due", "sar", "--from", "2025-01-01", "--division", "wales"],
            "england-and-wales",
        ),
        (
            vec![
                "due",
                "sar",
                "--from",
                "2025-01-01",
                "--paused",
                "2025-01-05",
            ],
            "FROM..TO",
        ),
        (
            vec!["due", "foi", "--from", "2025-01-01", "--extended"],
            "only applies",
        ),
        (vec!["due", "sar", "--from", "2040-01-01"], "covers 2018"),
    ] {
        let out = isa_ledger(nowhere, None, &args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
}
