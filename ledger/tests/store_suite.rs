//! One suite, two backends: every scenario here runs against SQLite and against a
//! throwaway PostgreSQL database, through the real append pipeline.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use ledger::audit::{self, AuditFailure};
use ledger::entry::{Content, SignedSubmission, Submission};
use ledger::keyring::{possession_message, Custody};
use ledger::keys::SignerKey;
use ledger::merkle;
use ledger::pipeline::{
    AppendError, AppendRequest, ExpectedVersion, Ledger, PipelineConfig, Receipt,
};
use ledger::store::{AnyStore, LedgerStore, PostgresStore, SqliteStore};
use serde_json::json;
use std::path::Path;
use std::time::Duration;

const ORIGIN: &str = "test.isa-ledger/suite";

struct Fixture {
    ledger: Ledger<AnyStore>,
    police: SignerKey,
    council: SignerKey,
    _dir: tempfile::TempDir,
}

async fn open(store: AnyStore) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let key = SignerKey::from_seed(ORIGIN, [1; 32]).unwrap();
    let config = PipelineConfig {
        max_batch: 64,
        max_wait: Duration::from_millis(2),
        queue_depth: 1024,
    };
    let ledger = Ledger::init(store, key, config).await.unwrap();
    let police = SignerKey::from_seed("lancs-police", [2; 32]).unwrap();
    let council = SignerKey::from_seed("blackpool-council", [3; 32]).unwrap();
    for partner in [&police, &council] {
        register(&ledger, partner).await;
    }
    Fixture {
        ledger,
        police,
        council,
        _dir: dir,
    }
}

async fn register(ledger: &Ledger<AnyStore>, key: &SignerKey) -> Receipt {
    let possession = key.sign(&possession_message(&key.verifier().to_string(), ORIGIN));
    ledger
        .register_partner_key(key.verifier(), Custody::PartnerHeld, &possession)
        .await
        .unwrap()
}

fn request(
    key: &SignerKey,
    stream: &str,
    idem: &str,
    expected: ExpectedVersion,
    text: Option<&str>,
) -> AppendRequest {
    let content = text.map(|t| Content::new(json!({ "rationale": t })).unwrap());
    let submission = Submission {
        author: key.name().to_string(),
        content_commitment: content.as_ref().map(|c| c.commitment().unwrap().to_hex()),
        event_type: "DisclosureMade".into(),
        event_version: 1,
        idempotency_key: idem.into(),
        key_id: key.verifier().id_hex(),
        occurred_at: "2026-11-20T10:00:00Z".into(),
        origin: ORIGIN.into(),
        payload: json!({ "recipients": ["blackpool-council"], "classification": "OFFICIAL-SENSITIVE" }),
        redacts: vec![],
        stream: stream.into(),
    };
    AppendRequest {
        submission: SignedSubmission::sign(submission, key).unwrap(),
        expected,
        content,
    }
}

/// The same request with its submission changed and signed again by `key`.
fn resigned(
    mut r: AppendRequest,
    key: &SignerKey,
    change: impl FnOnce(&mut Submission),
) -> AppendRequest {
    let mut submission = r.submission.submission().clone();
    change(&mut submission);
    r.submission = SignedSubmission::sign(submission, key).unwrap();
    r
}

pub async fn concurrent_appends_are_gapless_and_receipts_verify(store: AnyStore) {
    let f = open(store).await;
    let mut tasks = Vec::new();
    for i in 0..200 {
        let ledger = f.ledger.clone();
        let key = if i % 2 == 0 {
            f.police.clone()
        } else {
            f.council.clone()
        };
        tasks.push(tokio::spawn(async move {
            let r = request(
                &key,
                &format!("case/{i}"),
                &format!("k{i}"),
                ExpectedVersion::NoStream,
                Some("why"),
            );
            (ledger.append(r).await.unwrap(), key)
        }));
    }
    let mut seqs = Vec::new();
    for t in tasks {
        let (receipt, key) = t.await.unwrap();
        receipt
            .verify(&f.ledger.ledger_verifier(), key.verifier())
            .unwrap();
        seqs.push(receipt.seq);
    }
    seqs.sort();
    // Entries 0..=2 are the genesis and two key registrations.
    assert_eq!(seqs, (3..203).collect::<Vec<u64>>());
    let (size, _) = f.ledger.latest_checkpoint().await.unwrap().unwrap();
    assert_eq!(size, 203);
}

/// Retries racing their originals across batches: while one batch commits the next is
/// built, so a retry sent right behind its original finds it still being committed.
pub async fn retries_racing_their_originals_append_once(store: AnyStore) {
    let f = open(store).await;
    let mut sent = 0;
    for round in 0..10 {
        let requests: Vec<AppendRequest> = (0..40)
            .map(|i| {
                request(
                    &f.police,
                    &format!("race/{i}"),
                    &format!("race-{round}-{i}"),
                    ExpectedVersion::Any,
                    Some("why"),
                )
            })
            .collect();
        sent += requests.len() as u64;
        let append = |r: AppendRequest| {
            let ledger = f.ledger.clone();
            tokio::spawn(async move { ledger.append(r).await })
        };
        let originals: Vec<_> = requests.iter().cloned().map(append).collect();
        // Let the originals be taken into a batch and handed to the store, then retry.
        for _ in 0..round {
            tokio::task::yield_now().await;
        }
        let retries: Vec<_> = requests.iter().cloned().map(append).collect();
        for (original, retry) in originals.into_iter().zip(retries) {
            let original = original.await.unwrap().unwrap();
            let retry = retry.await.unwrap().unwrap();
            assert_eq!(original, retry, "a retry returns the original's receipt");
        }
    }
    let (size, _) = f.ledger.latest_checkpoint().await.unwrap().unwrap();
    assert_eq!(size, 3 + sent, "each request was appended once");
}

/// Awaits every future, in order (a small stand-in for `futures::future::join_all`).
async fn futures_join_all<F>(futures: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

/// A fixture whose ledger is stale: a second writer on the same store has appended one
/// entry since, so the fixture's next batch will find the head moved.
async fn stale(store: AnyStore) -> Fixture {
    let f = open(store.clone()).await;
    let key = SignerKey::from_seed(ORIGIN, [1; 32]).unwrap();
    let other = Ledger::open(store, key, PipelineConfig::default())
        .await
        .unwrap();
    other
        .append(request(&f.police, "o/1", "o1", ExpectedVersion::Any, None))
        .await
        .unwrap();
    f
}

/// A stale writer with many appends in flight: its first batch is refused, and so is
/// the batch it built on top; it reloads, and retries then land once, without gaps.
pub async fn a_failed_batch_fails_the_batch_built_on_it(store: AnyStore) {
    let f = stale(store).await;
    let requests: Vec<AppendRequest> = (0..200)
        .map(|i| {
            request(
                &f.council,
                &format!("s/{i}"),
                &format!("stale-{i}"),
                ExpectedVersion::Any,
                None,
            )
        })
        .collect();
    let results = futures_join_all(requests.iter().cloned().map({
        let ledger = f.ledger.clone();
        move |r| {
            let ledger = ledger.clone();
            async move { ledger.append(r).await }
        }
    }))
    .await;
    let refused = results
        .iter()
        .filter(|r| matches!(r, Err(AppendError::NotCommitted(_))))
        .count();
    assert!(refused >= 1, "the stale batch must be refused");
    for (r, result) in requests.into_iter().zip(results) {
        match result {
            Ok(_) => {}
            Err(AppendError::NotCommitted(_)) => {
                f.ledger.append(r).await.unwrap();
            }
            Err(other) => panic!("unexpected refusal: {other}"),
        }
    }
    let out = tempfile::tempdir().unwrap();
    export(&f, out.path()).await;
    let report = audit::verify_export(out.path(), None, &mut ()).unwrap();
    assert_eq!(report.entries, 3 + 1 + 200);
}

/// A refusal that rested on an entry of a batch that then failed is not final: the
/// caller is told nothing was written, and a retry is decided afresh.
pub async fn refusals_in_a_failed_batch_are_not_final(store: AnyStore) {
    let f = stale(store).await;
    let x = request(&f.police, "dup", "x", ExpectedVersion::NoStream, None);
    let y = request(&f.council, "dup", "y", ExpectedVersion::NoStream, None);
    let (rx, ry) = tokio::join!(f.ledger.append(x.clone()), f.ledger.append(y.clone()));
    for r in [&rx, &ry] {
        assert!(matches!(r, Err(AppendError::NotCommitted(_))), "{r:?}");
    }
    // Retried, one opens the stream and the other is refused, now for real.
    let rx = f.ledger.append(x).await;
    let ry = f.ledger.append(y).await;
    assert!(rx.is_ok(), "{rx:?}");
    assert!(
        matches!(
            ry,
            Err(AppendError::WrongExpectedVersion {
                actual: Some(1),
                ..
            })
        ),
        "{ry:?}"
    );
}

/// The start-up loads see the log as of the head just read, not what another writer
/// appended after it.
pub async fn start_up_loads_stop_at_the_head_read(store: AnyStore) {
    let f = open(store.clone()).await;
    let first = f
        .ledger
        .append(request(
            &f.police,
            "h/1",
            "h1",
            ExpectedVersion::NoStream,
            None,
        ))
        .await
        .unwrap();
    f.ledger
        .append(request(
            &f.police,
            "h/1",
            "h2",
            ExpectedVersion::Exact(1),
            None,
        ))
        .await
        .unwrap();
    f.ledger
        .append(request(
            &f.police,
            "h/2",
            "h3",
            ExpectedVersion::NoStream,
            None,
        ))
        .await
        .unwrap();
    let chain = f.ledger.chain_id();
    let below = first.seq + 1;
    let streams = store.all_stream_versions(chain, below).await.unwrap();
    assert_eq!(
        streams["h/1"].version, 1,
        "the second entry of h/1 is past the head"
    );
    assert!(!streams.contains_key("h/2"), "h/2 was opened past the head");
    let mut seqs = Vec::new();
    store
        .all_idempotency_digests(chain, below, &mut |seq, _| seqs.push(seq))
        .await
        .unwrap();
    seqs.sort();
    assert_eq!(seqs, (0..below).collect::<Vec<u64>>());
}

pub async fn a_second_writer_is_detected_and_nothing_is_lost(store: AnyStore) {
    let f = open(store.clone()).await;
    let key = SignerKey::from_seed(ORIGIN, [1; 32]).unwrap();
    let other = Ledger::open(store, key, PipelineConfig::default())
        .await
        .unwrap();
    let first = f
        .ledger
        .append(request(&f.police, "w/1", "w1", ExpectedVersion::Any, None))
        .await
        .unwrap();
    // The second writer's view is stale: its batch must be refused, not interleaved.
    let stale = other
        .append(request(&f.police, "w/2", "w2", ExpectedVersion::Any, None))
        .await;
    assert!(
        matches!(stale, Err(AppendError::NotCommitted(_))),
        "{stale:?}"
    );
    // It reloads the head and goes on; the log stays gapless and verifiable.
    let retried = other
        .append(request(&f.police, "w/2", "w2", ExpectedVersion::Any, None))
        .await
        .unwrap();
    assert_eq!(retried.seq, first.seq + 1);
    // A key the first writer used after the second one last loaded its keys: the
    // second writer must find it (no unique index in the store would catch a duplicate).
    let w3 = request(&f.police, "w/3", "w3", ExpectedVersion::Any, None);
    let late = append_retrying(&f.ledger, w3.clone()).await;
    let again = append_retrying(&other, w3).await;
    assert_eq!(again, late, "replayed, not appended twice");
    let out = tempfile::tempdir().unwrap();
    export(&f, out.path()).await;
    let report = audit::verify_export(out.path(), None, &mut ()).unwrap();
    assert_eq!(report.entries, late.seq + 1);
}

/// Appends, retrying once if another writer had moved the head (as a client would).
async fn append_retrying(ledger: &Ledger<AnyStore>, r: AppendRequest) -> Receipt {
    match ledger.append(r.clone()).await {
        Err(AppendError::NotCommitted(_)) => ledger.append(r).await.unwrap(),
        other => other.unwrap(),
    }
}

pub async fn expected_versions_are_enforced(store: AnyStore) {
    let f = open(store).await;
    let first = f
        .ledger
        .append(request(
            &f.police,
            "case/a",
            "a1",
            ExpectedVersion::NoStream,
            None,
        ))
        .await
        .unwrap();
    let again = f
        .ledger
        .append(request(
            &f.police,
            "case/a",
            "a2",
            ExpectedVersion::NoStream,
            None,
        ))
        .await;
    assert!(
        matches!(
            again,
            Err(AppendError::WrongExpectedVersion {
                actual: Some(1),
                ..
            })
        ),
        "{again:?}"
    );
    let stale = f
        .ledger
        .append(request(
            &f.police,
            "case/a",
            "a3",
            ExpectedVersion::Exact(0),
            None,
        ))
        .await;
    assert!(matches!(
        stale,
        Err(AppendError::WrongExpectedVersion { .. })
    ));
    let next = f
        .ledger
        .append(request(
            &f.police,
            "case/a",
            "a4",
            ExpectedVersion::Exact(1),
            None,
        ))
        .await
        .unwrap();
    assert_eq!(next.seq, first.seq + 1);
    let any = f
        .ledger
        .append(request(
            &f.council,
            "case/a",
            "a5",
            ExpectedVersion::Any,
            None,
        ))
        .await
        .unwrap();
    assert_eq!(any.seq, next.seq + 1);
}

/// The events of one command go in together: consecutive entries, each checked against
/// the stream as the one before leaves it; one refusal and none is written.
pub async fn a_unit_is_recorded_whole_or_not_at_all(store: AnyStore) {
    let f = open(store).await;
    let size_before = f.ledger.latest_checkpoint().await.unwrap().unwrap().0;
    let refused = f
        .ledger
        .append_all(vec![
            request(
                &f.police,
                "case/u",
                "u1",
                ExpectedVersion::NoStream,
                Some("first"),
            ),
            request(&f.police, "case/u", "u1#1", ExpectedVersion::Exact(1), None),
            // Wrong: the first two leave the stream at version 2.
            request(&f.police, "case/u", "u1#2", ExpectedVersion::Exact(1), None),
        ])
        .await;
    assert!(
        matches!(
            refused,
            Err(AppendError::WrongExpectedVersion {
                actual: Some(2),
                ..
            })
        ),
        "the refusal names the submission that failed: {refused:?}"
    );
    assert_eq!(
        f.ledger.stream_position("case/u").await.unwrap(),
        None,
        "nothing of the refused unit is left in the stream"
    );
    // Nothing written: the log's next entry (from an unrelated append) takes the next
    // sequence number.
    let other = f
        .ledger
        .append(request(
            &f.council,
            "case/v",
            "v1",
            ExpectedVersion::NoStream,
            None,
        ))
        .await
        .unwrap();
    assert_eq!(other.seq, size_before);
    // The same keys can be used once the unit is right: they were never taken.
    let receipts = f
        .ledger
        .append_all(vec![
            request(
                &f.police,
                "case/u",
                "u1",
                ExpectedVersion::NoStream,
                Some("first"),
            ),
            request(&f.police, "case/u", "u1#1", ExpectedVersion::Exact(1), None),
            request(&f.police, "case/u", "u1#2", ExpectedVersion::Exact(2), None),
        ])
        .await
        .unwrap();
    let seqs: Vec<u64> = receipts.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, vec![other.seq + 1, other.seq + 2, other.seq + 3]);
    assert!(receipts.iter().all(|r| r.tree_size == other.seq + 4));
    let position = f.ledger.stream_position("case/u").await.unwrap().unwrap();
    assert_eq!(position.version, 3);
    assert_eq!(f.ledger.read_stream("case/u").await.unwrap().len(), 3);
}

pub async fn idempotent_retries_return_the_original_receipt(store: AnyStore) {
    let f = open(store).await;
    let r = request(
        &f.police,
        "case/i",
        "same-key",
        ExpectedVersion::NoStream,
        Some("x"),
    );
    let first = f.ledger.append(r.clone()).await.unwrap();
    // More entries, so a newer checkpoint exists when the retry comes.
    f.ledger
        .append(request(
            &f.police,
            "case/j",
            "other",
            ExpectedVersion::Any,
            None,
        ))
        .await
        .unwrap();
    let retry = f.ledger.append(r.clone()).await.unwrap();
    assert_eq!(retry, first, "a retry returns the very same receipt");
    let (size, _) = f.ledger.latest_checkpoint().await.unwrap().unwrap();
    assert_eq!(size, first.seq + 2, "the retry wrote nothing");
    let changed = request(
        &f.police,
        "case/i",
        "same-key",
        ExpectedVersion::Any,
        Some("different"),
    );
    let refused = f.ledger.append(changed).await;
    assert!(
        matches!(refused, Err(AppendError::IdempotencyKeyReused { seq, .. }) if seq == first.seq)
    );
    // Two identical submissions in flight at once: one entry, two equal receipts.
    let twin = request(&f.council, "case/t", "twin", ExpectedVersion::Any, None);
    let (a, b) = tokio::join!(f.ledger.append(twin.clone()), f.ledger.append(twin));
    assert_eq!(a.unwrap().seq, b.unwrap().seq);

    // After a restart the keys and stream versions come back from the store.
    let key = SignerKey::from_seed(ORIGIN, [1; 32]).unwrap();
    let reopened = Ledger::open(f.ledger.store().clone(), key, PipelineConfig::default())
        .await
        .unwrap();
    assert_eq!(reopened.append(r).await.unwrap(), first);
    let refused = reopened
        .append(request(
            &f.police,
            "case/i",
            "same-key",
            ExpectedVersion::Any,
            Some("different"),
        ))
        .await;
    assert!(matches!(
        refused,
        Err(AppendError::IdempotencyKeyReused { .. })
    ));
    let next = reopened
        .append(request(
            &f.police,
            "case/i",
            "after-restart",
            ExpectedVersion::Exact(1),
            None,
        ))
        .await
        .unwrap();
    assert!(next.seq > first.seq);
}

pub async fn proofs_hold_for_any_entry_and_any_two_sizes(store: AnyStore) {
    let f = open(store).await;
    let mut checkpoints = Vec::new();
    for i in 0..37 {
        let r = f
            .ledger
            .append(request(
                &f.police,
                &format!("p/{i}"),
                &format!("p{i}"),
                ExpectedVersion::Any,
                None,
            ))
            .await
            .unwrap();
        checkpoints.push((r.tree_size, f.ledger.root(r.tree_size).await.unwrap()));
    }
    for &(size, root) in &checkpoints {
        for seq in (0..size).step_by(3) {
            let receipt = f.ledger.receipt_for(seq).await.unwrap();
            let proof = f.ledger.inclusion_proof(seq, size).await.unwrap();
            let leaf = ledger::entry::entry_leaf(&receipt.entry_hash);
            merkle::verify_inclusion(seq, size, &leaf.0, &proof, &root.0).unwrap();
        }
        for &(old, old_root) in checkpoints.iter().filter(|c| c.0 <= size) {
            let proof = f.ledger.consistency_proof(old, size).await.unwrap();
            merkle::verify_consistency(old, size, &proof, &old_root.0, &root.0).unwrap();
        }
    }
    let beyond = f.ledger.inclusion_proof(0, 10_000).await;
    assert!(beyond.is_err(), "no proof for a tree that does not exist");
}

pub async fn key_revocation_and_rotation_are_enforced(store: AnyStore) {
    let f = open(store).await;
    f.ledger
        .append(request(&f.police, "k/1", "k1", ExpectedVersion::Any, None))
        .await
        .unwrap();
    let police_id = f.police.verifier().id_hex();
    f.ledger
        .revoke_partner_key("lancs-police", &police_id, "device lost")
        .await
        .unwrap();
    let refused = f
        .ledger
        .append(request(&f.police, "k/1", "k2", ExpectedVersion::Any, None))
        .await;
    assert!(matches!(refused, Err(AppendError::Key(_))), "{refused:?}");
    let council_new = SignerKey::from_seed("blackpool-council", [9; 32]).unwrap();
    let possession = council_new.sign(&possession_message(
        &council_new.verifier().to_string(),
        ORIGIN,
    ));
    f.ledger
        .rotate_partner_key(
            &f.council.verifier().id_hex(),
            council_new.verifier(),
            Custody::Custodial,
            &possession,
        )
        .await
        .unwrap();
    let old = f
        .ledger
        .append(request(&f.council, "k/2", "k3", ExpectedVersion::Any, None))
        .await;
    assert!(matches!(old, Err(AppendError::Key(_))));
    f.ledger
        .append(request(
            &council_new,
            "k/2",
            "k4",
            ExpectedVersion::Any,
            None,
        ))
        .await
        .unwrap();
    // A partner cannot write operator events.
    let forged = resigned(
        request(&council_new, "k/3", "k5", ExpectedVersion::Any, None),
        &council_new,
        |s| s.event_type = "PartnerKeyRevoked".into(),
    );
    let r = f.ledger.append(forged).await;
    assert!(matches!(r, Err(AppendError::Key(_))));
    let out = tempfile::tempdir().unwrap();
    export(&f, out.path()).await;
    let report = audit::verify_export(out.path(), None, &mut ()).unwrap();
    assert_eq!(report.keys, 4);
}

pub async fn ledger_key_rotation_hands_over_checkpoint_signing(store: AnyStore) {
    let f = open(store).await;
    f.ledger
        .append(request(&f.police, "l/1", "l1", ExpectedVersion::Any, None))
        .await
        .unwrap();
    let before = f.ledger.latest_checkpoint().await.unwrap().unwrap().1;
    let old = f.ledger.ledger_verifier();
    let incoming = SignerKey::from_seed(ORIGIN, [42; 32]).unwrap();
    let rotation = f.ledger.rotate_ledger_key(incoming.clone()).await.unwrap();
    // The rotation entry is signed by the outgoing key; its batch's checkpoint already
    // by the incoming one.
    rotation.verify(&incoming.verifier().clone(), &old).unwrap();
    assert_eq!(f.ledger.ledger_verifier(), *incoming.verifier());
    f.ledger
        .append(request(&f.police, "l/1", "l2", ExpectedVersion::Any, None))
        .await
        .unwrap();
    let out = tempfile::tempdir().unwrap();
    export(&f, out.path()).await;
    let vkey = std::fs::read_to_string(out.path().join("ledger.vkey")).unwrap();
    assert_eq!(vkey.trim_end(), incoming.verifier().to_string());
    // An auditor who kept a checkpoint signed by the old key still gets consistency.
    let report = audit::verify_export(out.path(), Some(&before), &mut ()).unwrap();
    assert!(report.consistent_with.is_some());
    // A wrong-named key is refused before anything is written.
    let wrong = SignerKey::from_seed("another.example/log", [43; 32]).unwrap();
    assert!(f.ledger.rotate_ledger_key(wrong).await.is_err());
}

async fn export(f: &Fixture, out: &Path) {
    ledger::export::export(f.ledger.store(), f.ledger.chain_id(), ORIGIN, out)
        .await
        .unwrap();
}

/// The files a store keeps its rows in, as they are on disk now.
enum Disk<'a> {
    /// The SQLite database file (and its WAL beside it).
    Sqlite(&'a Path),
    /// The PostgreSQL database's directory under the cluster's `base/`.
    Postgres,
}

/// The files on disk that hold `text`. On PostgreSQL a checkpoint first writes every
/// changed page out of shared memory into the table files, so what is searched is what
/// the server holds (its WAL apart, see `docs/operations.md`).
async fn files_holding(store: &AnyStore, disk: &Disk<'_>, text: &str) -> Vec<String> {
    let files: Vec<std::path::PathBuf> = match (disk, store) {
        (Disk::Sqlite(file), _) => ["", "-wal"]
            .iter()
            .map(|suffix| format!("{}{suffix}", file.display()).into())
            .collect(),
        (Disk::Postgres, AnyStore::Postgres(pg)) => {
            sqlx::query("CHECKPOINT").execute(pg.pool()).await.unwrap();
            let (data_dir, db): (String, sqlx::postgres::types::Oid) = sqlx::query_as(
                "SELECT current_setting('data_directory'), oid FROM pg_database \
                 WHERE datname = current_database()",
            )
            .fetch_one(pg.pool())
            .await
            .unwrap();
            let dir = Path::new(&data_dir).join("base").join(db.0.to_string());
            std::fs::read_dir(&dir)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
                .map(|f| f.unwrap().path())
                .collect()
        }
        (Disk::Postgres, _) => unreachable!("a PostgreSQL disk needs a PostgreSQL store"),
    };
    files
        .into_iter()
        .filter(|path| {
            std::fs::read(path)
                .is_ok_and(|bytes| bytes.windows(text.len()).any(|w| w == text.as_bytes()))
        })
        .map(|path| path.display().to_string())
        .collect()
}

/// The views and the notice feed read pages without content: the same entries, in the
/// same order, from the same place, with no redactable text.
async fn pages_of_entries_come_with_or_without_their_content(store: AnyStore) {
    let f = open(store).await;
    let mut with_text = Vec::new();
    for i in 0..6 {
        let text = (i % 2 == 0).then_some("Seen at 12 Acacia Avenue");
        let receipt = f
            .ledger
            .append(request(
                &f.police,
                "r/1",
                &format!("p{i}"),
                ExpectedVersion::Any,
                text,
            ))
            .await
            .unwrap();
        if text.is_some() {
            with_text.push(receipt.seq);
        }
    }
    let store = f.ledger.store();
    let chain = f.ledger.chain_id();
    let full = store.entries(chain, 0, 100).await.unwrap();
    let bare = store.bare_entries(chain, 0, 100).await.unwrap();
    assert_eq!(full.len(), bare.len());
    for (full, bare) in full.iter().zip(&bare) {
        assert_eq!((full.seq, &full.bytes), (bare.seq, &bare.bytes));
        assert!(
            bare.content.is_none(),
            "entry {} came with content",
            bare.seq
        );
        assert_eq!(full.content.is_some(), with_text.contains(&full.seq));
    }
    let page: Vec<u64> = store
        .bare_entries(chain, with_text[0], 3)
        .await
        .unwrap()
        .iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(page, [with_text[0], with_text[0] + 1, with_text[0] + 2]);
    let last = bare.last().unwrap().seq;
    assert!(store
        .bare_entries(chain, last + 1, 10)
        .await
        .unwrap()
        .is_empty());
}

async fn redaction_removes_content_and_the_log_still_verifies(store: AnyStore, disk: Disk<'_>) {
    let f = open(store).await;
    let secret = "Named person at 12 Acacia Avenue";
    let target = f
        .ledger
        .append(request(
            &f.police,
            "r/1",
            "r1",
            ExpectedVersion::Any,
            Some(secret),
        ))
        .await
        .unwrap();
    let erase = resigned(
        request(&f.police, "r/1", "r2", ExpectedVersion::Any, None),
        &f.police,
        |s| {
            s.event_type = "ErasureApplied".into();
            s.redacts = vec![target.seq];
        },
    );
    // Only the author (or the operator) may redact.
    let council_id = f.council.verifier().id_hex();
    let foreign = resigned(erase.clone(), &f.council, |s| {
        s.author = "blackpool-council".into();
        s.key_id = council_id;
        s.idempotency_key = "r3".into();
    });
    assert!(matches!(
        f.ledger.append(foreign).await,
        Err(AppendError::Redaction { .. })
    ));
    // The check below can fail: before the erasure, the content is in the files.
    assert!(
        !files_holding(f.ledger.store(), &disk, secret)
            .await
            .is_empty(),
        "the content should be on disk before it is erased"
    );
    f.ledger.append(erase).await.unwrap();
    let out = tempfile::tempdir().unwrap();
    export(&f, out.path()).await;
    let report = audit::verify_export(out.path(), None, &mut ()).unwrap();
    assert_eq!(report.redacted, 1);
    let exported = std::fs::read_to_string(out.path().join("entries.jsonl")).unwrap();
    assert!(!exported.contains("Acacia"));
    let holding = files_holding(f.ledger.store(), &disk, secret).await;
    assert!(holding.is_empty(), "redacted content still in {holding:?}");
}

/// Raw SQL an attacker with database access could run, per backend.
async fn tamper(store: &AnyStore, statements: &[&str]) {
    match store {
        AnyStore::Sqlite(s) => {
            for sql in statements {
                sqlx::query(sql).execute(s.pool()).await.unwrap();
            }
        }
        AnyStore::Postgres(s) => {
            for sql in statements {
                let sql = sql
                    .replace(
                        "DROP TRIGGER entries_are_append_only_update",
                        "ALTER TABLE entries DISABLE TRIGGER entries_are_append_only",
                    )
                    .replace("DROP TRIGGER entries_are_append_only_delete", "SELECT 1")
                    .replace(
                        "CAST(REPLACE(CAST(entry AS TEXT),",
                        "convert_to(replace(convert_from(entry, 'UTF8'),",
                    )
                    .replace(
                        "CAST(REPLACE(CAST(body AS TEXT),",
                        "convert_to(replace(convert_from(body, 'UTF8'),",
                    )
                    .replace(") AS BLOB)", "), 'UTF8')");
                sqlx::query(&sql).execute(s.pool()).await.unwrap();
            }
        }
    }
}

const UNLOCK: [&str; 2] = [
    "DROP TRIGGER entries_are_append_only_update",
    "DROP TRIGGER entries_are_append_only_delete",
];

async fn failure_after(f: &Fixture, statements: &[&str]) -> AuditFailure {
    tamper(f.ledger.store(), &UNLOCK).await;
    tamper(f.ledger.store(), statements).await;
    let out = tempfile::tempdir().unwrap();
    export(f, out.path()).await;
    audit::verify_export(out.path(), None, &mut ()).unwrap_err()
}

async fn filled(store: AnyStore) -> Fixture {
    let f = open(store).await;
    for i in 0..20 {
        f.ledger
            .append(request(
                &f.police,
                &format!("t/{i}"),
                &format!("t{i}"),
                ExpectedVersion::Any,
                Some("because"),
            ))
            .await
            .unwrap();
    }
    f
}

pub async fn tampering_is_caught_and_named(fresh: impl AsyncFn() -> AnyStore) {
    // A byte of the payload (inside what the partner signed).
    let f = filled(fresh().await).await;
    let e = failure_after(&f, &["UPDATE entries SET entry = CAST(REPLACE(CAST(entry AS TEXT), 'OFFICIAL-SENSITIVE', 'OFFICIAL-SENSITIVF') AS BLOB) WHERE seq = 10"]).await;
    assert_eq!(e.seq, Some(10), "{e}");
    // A byte of recorded_at (outside the signature): the next entry's link breaks.
    let f = filled(fresh().await).await;
    let e = failure_after(&f, &["UPDATE entries SET entry = CAST(REPLACE(CAST(entry AS TEXT), '\"recorded_at\":\"2', '\"recorded_at\":\"1') AS BLOB) WHERE seq = 7"]).await;
    assert!(e.seq == Some(7) || e.seq == Some(8), "{e}");
    assert!(e.to_string().contains("entry 7"), "{e}");
    // A byte of redactable content.
    let f = filled(fresh().await).await;
    let e = failure_after(&f, &["UPDATE contents SET body = CAST(REPLACE(CAST(body AS TEXT), 'because', 'becausf') AS BLOB) WHERE seq = 12"]).await;
    assert_eq!(e.seq, Some(12), "{e}");
    // A deleted entry.
    let f = filled(fresh().await).await;
    let e = failure_after(
        &f,
        &[
            "DELETE FROM contents WHERE seq = 5",
            "DELETE FROM entries WHERE seq = 5",
        ],
    )
    .await;
    assert_eq!(e.seq, Some(5), "{e}");
    // Two entries swapped.
    let f = filled(fresh().await).await;
    let e = failure_after(
        &f,
        &[
            "DELETE FROM contents WHERE seq IN (4, 9)",
            "UPDATE entries SET seq = 1000000 WHERE seq = 4",
            "UPDATE entries SET seq = 4 WHERE seq = 9",
            "UPDATE entries SET seq = 9 WHERE seq = 1000000",
        ],
    )
    .await;
    assert_eq!(e.seq, Some(4), "{e}");
    // The log truncated (the head row too), checkpoints left alone.
    let f = filled(fresh().await).await;
    let e = failure_after(
        &f,
        &[
            "DELETE FROM contents WHERE seq >= 15",
            "DELETE FROM entries WHERE seq >= 15",
        ],
    )
    .await;
    assert_eq!(e.seq, Some(15), "{e}");
}

pub async fn older_forged_and_trusted_checkpoints(store: AnyStore) {
    let f = filled(store).await;
    let out = tempfile::tempdir().unwrap();
    export(&f, out.path()).await;
    let older = f
        .ledger
        .store()
        .checkpoint(f.ledger.chain_id(), 10)
        .await
        .unwrap()
        .unwrap();
    let latest = std::fs::read_to_string(out.path().join("checkpoint")).unwrap();
    // Consistent with an older trusted checkpoint.
    let report = audit::verify_export(out.path(), Some(&older), &mut ()).unwrap();
    assert_eq!(report.consistent_with, Some(10));
    // An older checkpoint presented as the latest.
    std::fs::write(out.path().join("checkpoint"), &older).unwrap();
    let e = audit::verify_export(out.path(), None, &mut ()).unwrap_err();
    assert_eq!(e.seq, Some(10), "{e}");
    // A forged checkpoint: the root changed, or signed by another key.
    let forged = latest.replacen(
        &latest.lines().nth(2).unwrap().to_string(),
        &ledger::hash::Hash::of(b"x").to_base64(),
        1,
    );
    std::fs::write(out.path().join("checkpoint"), &forged).unwrap();
    let e = audit::verify_export(out.path(), None, &mut ()).unwrap_err();
    assert_eq!(e.seq, Some(22), "{e}");
    let other = SignerKey::from_seed(ORIGIN, [7; 32]).unwrap();
    let body = ledger::checkpoint::Checkpoint::parse_body(&latest[..=latest.find("\n\n").unwrap()])
        .unwrap();
    std::fs::write(out.path().join("checkpoint"), body.sign(&other).to_string()).unwrap();
    let e = audit::verify_export(out.path(), None, &mut ()).unwrap_err();
    assert_eq!(e.seq, Some(22), "{e}");
    // A trusted checkpoint newer than the export: a rollback.
    std::fs::write(out.path().join("checkpoint"), &older).unwrap();
    let trimmed = std::fs::read_to_string(out.path().join("entries.jsonl")).unwrap();
    let first_ten: String = trimmed.lines().take(10).map(|l| format!("{l}\n")).collect();
    std::fs::write(out.path().join("entries.jsonl"), first_ten).unwrap();
    let e = audit::verify_export(out.path(), Some(&latest), &mut ()).unwrap_err();
    assert_eq!(e.seq, Some(10), "{e}");
}

async fn sqlite() -> (AnyStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("ledger.db"))
        .await
        .unwrap();
    (AnyStore::Sqlite(store), dir)
}

async fn postgres() -> Option<AnyStore> {
    let url = testkit::postgres_url().await?;
    Some(AnyStore::Postgres(
        PostgresStore::connect(&url).await.unwrap(),
    ))
}

macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod on_sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let (store, _dir) = super::sqlite().await;
                    super::$name(store).await;
                }
            )*
        }
        mod on_postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(store) = super::postgres().await else { return };
                    super::$name(store).await;
                }
            )*
        }
    };
}

both_backends!(
    concurrent_appends_are_gapless_and_receipts_verify,
    retries_racing_their_originals_append_once,
    a_failed_batch_fails_the_batch_built_on_it,
    refusals_in_a_failed_batch_are_not_final,
    start_up_loads_stop_at_the_head_read,
    a_second_writer_is_detected_and_nothing_is_lost,
    expected_versions_are_enforced,
    a_unit_is_recorded_whole_or_not_at_all,
    idempotent_retries_return_the_original_receipt,
    proofs_hold_for_any_entry_and_any_two_sizes,
    key_revocation_and_rotation_are_enforced,
    ledger_key_rotation_hands_over_checkpoint_signing,
    older_forged_and_trusted_checkpoints,
    pages_of_entries_come_with_or_without_their_content,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redaction_on_sqlite_erases_the_bytes_from_the_database_file() {
    let (store, dir) = sqlite().await;
    let file = dir.path().join("ledger.db");
    redaction_removes_content_and_the_log_still_verifies(store, Disk::Sqlite(&file)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redaction_on_postgres_erases_the_bytes_from_the_table_files() {
    let Some(store) = postgres().await else {
        return;
    };
    redaction_removes_content_and_the_log_still_verifies(store, Disk::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampering_on_sqlite() {
    let dirs = std::sync::Mutex::new(Vec::new());
    let fresh = async || {
        let (store, dir) = sqlite().await;
        dirs.lock().unwrap().push(dir);
        store
    };
    tampering_is_caught_and_named(fresh).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampering_on_postgres() {
    if postgres().await.is_none() {
        return;
    }
    let fresh = async || postgres().await.unwrap();
    tampering_is_caught_and_named(fresh).await;
}
