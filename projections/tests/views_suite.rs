//! The views against the demo partnership, on SQLite and on a throwaway PostgreSQL
//! database: what each view says, that a rebuild yields identical rows, that a gap or a
//! hash mismatch in the log stops a projection, and that changed settings rebuild.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use domain::demo;
use domain::pseudonym::PartnershipSecret;
use domain::reference::Reference;
use domain::service::Domain;
use ledger::keyring::{possession_message, Custody};
use ledger::keys::SignerKey;
use ledger::pipeline::{Ledger, PipelineConfig};
use ledger::store::LedgerStore;
use ledger::store::{AnyStore, PostgresStore, SqliteStore};
use ledger::timestamp;
use projections::query::{self, Record};
use projections::views::notices;
use projections::{Filter, Pace, ProjectionError, Projector, Settings, ViewDb};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

const ORIGIN: &str = "test.isa-ledger/views";

/// Where the log and the views live.
enum Backend {
    Sqlite(tempfile::TempDir),
    Postgres(String),
}

pub struct Fixture {
    store: AnyStore,
    backend: Backend,
    domain: Domain<AnyStore>,
    signers: BTreeMap<&'static str, SignerKey>,
}

impl Fixture {
    async fn views(&self) -> ViewDb {
        match &self.backend {
            Backend::Sqlite(dir) => ViewDb::sqlite(&dir.path().join("views.db")).await.unwrap(),
            Backend::Postgres(url) => ViewDb::postgres(url).await.unwrap(),
        }
    }

    async fn projector(&self, settings: Settings, pace: Pace) -> Projector<AnyStore> {
        Projector::open(
            self.store.clone(),
            ORIGIN,
            self.views().await,
            settings,
            pace,
        )
        .await
        .unwrap()
    }

    /// The names of the indexes in the views' database.
    async fn index_names(&self) -> std::collections::BTreeSet<String> {
        match &self.backend {
            Backend::Sqlite(dir) => {
                let pool = sqlx::SqlitePool::connect_with(
                    sqlx::sqlite::SqliteConnectOptions::new().filename(dir.path().join("views.db")),
                )
                .await
                .unwrap();
                sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'index'")
                    .fetch_all(&pool)
                    .await
                    .unwrap()
                    .into_iter()
                    .collect()
            }
            Backend::Postgres(url) => {
                let pool = sqlx::PgPool::connect(url).await.unwrap();
                sqlx::query_scalar(
                    "SELECT indexname::text FROM pg_indexes WHERE schemaname = 'views'",
                )
                .fetch_all(&pool)
                .await
                .unwrap()
                .into_iter()
                .collect()
            }
        }
    }

    /// Runs the demo script's commands in `steps`.
    async fn demo(&self, steps: std::ops::Range<usize>) {
        for (i, step) in demo::script().into_iter().enumerate() {
            if !steps.contains(&i) {
                continue;
            }
            self.domain
                .submit(
                    step.command,
                    &self.signers[step.partner],
                    &format!("demo-{i:03}"),
                )
                .await
                .unwrap_or_else(|e| panic!("demo step {i}: {e}"));
        }
    }
}

async fn fixture(store: AnyStore, backend: Backend) -> Fixture {
    let key = SignerKey::from_seed(ORIGIN, [1; 32]).unwrap();
    let config = PipelineConfig {
        max_batch: 64,
        max_wait: Duration::from_millis(1),
        queue_depth: 1024,
    };
    let ledger = Ledger::init(store.clone(), key, config).await.unwrap();
    let mut signers = BTreeMap::new();
    for (i, (partner, _, _)) in demo::PARTNERS.into_iter().enumerate() {
        let key = SignerKey::from_seed(partner, [10 + i as u8; 32]).unwrap();
        let possession = key.sign(&possession_message(&key.verifier().to_string(), ORIGIN));
        ledger
            .register_partner_key(key.verifier(), Custody::PartnerHeld, &possession)
            .await
            .unwrap();
        signers.insert(partner, key);
    }
    let domain = Domain::new(
        ledger,
        Arc::new(Reference::shipped().unwrap()),
        PartnershipSecret::from_bytes([7; 32]),
    );
    Fixture {
        store,
        backend,
        domain,
        signers,
    }
}

async fn sqlite() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("ledger.db"))
        .await
        .unwrap();
    fixture(AnyStore::Sqlite(store), Backend::Sqlite(dir)).await
}

async fn postgres() -> Option<Fixture> {
    let url = testkit::postgres_url().await?;
    let store = PostgresStore::connect(&url).await.unwrap();
    Some(fixture(AnyStore::Postgres(store), Backend::Postgres(url)).await)
}

fn at(text: &str) -> i64 {
    timestamp::parse_utc(text).unwrap()
}

async fn rows(p: &Projector<AnyStore>, view: &str, now: &str) -> BTreeMap<String, Record> {
    let filter = Filter {
        limit: 1000,
        ..Filter::default()
    };
    query::read(p.db(), p.chain_id(), view, &filter, at(now))
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.key.clone(), r))
        .collect()
}

fn field<'a>(record: &'a Record, path: &str) -> &'a Value {
    record.row.pointer(path).unwrap_or(&Value::Null)
}

async fn dumps(p: &Projector<AnyStore>) -> BTreeMap<&'static str, Vec<String>> {
    let mut out = BTreeMap::new();
    for name in p.view_names() {
        out.insert(name, p.dump(name).await.unwrap());
    }
    out
}

pub async fn the_demo_partnership_reads_correctly_in_every_view(f: Fixture) {
    f.demo(0..usize::MAX).await;
    let p = f.projector(Settings::default(), Pace::default()).await;
    assert!(p.catch_up().await.unwrap() > 50);
    let now = "2025-07-10T12:00:00Z";

    // The notice feed decodes only the entries `may_change` picks from their bytes:
    // every entry that changes a notice row must be among them.
    let entries = f.store.entries(p.chain_id(), 0, 10_000).await.unwrap();
    let mut changing_types = std::collections::BTreeSet::new();
    for entry in &entries {
        let (logged, _) = projections::logged::decode_entry(entry).unwrap();
        if !notices::changed_keys(&logged).is_empty() {
            assert!(
                notices::may_change(&entry.bytes),
                "entry {} changes notices but its bytes were passed over",
                entry.seq
            );
            let text = String::from_utf8_lossy(&entry.bytes).into_owned();
            let at = text.find("\"event_type\":\"").unwrap() + 14;
            changing_types.insert(text[at..].split('"').next().unwrap().to_string());
        }
    }
    // The demo has some of them; the list names only real event types (a typo would
    // pass the check above and drop notices of that type).
    assert!(changing_types.len() >= 7, "{changing_types:?}");
    for name in notices::CHANGING_EVENT_TYPES {
        let fact = serde_json::json!({ "type": name });
        let known = |e: serde_json::Error| !e.to_string().contains("unknown variant");
        assert!(
            serde_json::from_value::<domain::case::CaseFact>(fact.clone())
                .map_or_else(known, |_| true)
                || serde_json::from_value::<domain::breach::BreachFact>(fact.clone())
                    .map_or_else(known, |_| true)
                || serde_json::from_value::<domain::sar::SarFact>(fact)
                    .map_or_else(known, |_| true),
            "{name} is not an event type of the catalogue"
        );
    }

    let breaches = rows(&p, "breaches", now).await;
    let b1 = &breaches["breach/br-2025-0001"];
    assert_eq!(b1.status, "reported");
    assert_eq!(field(b1, "/deadline/due"), "2025-05-08T09:30:00Z");
    assert_eq!(field(b1, "/ico_reports/0/late"), false);
    assert_eq!(field(b1, "/risk"), "risk");
    assert_eq!(
        b1.parties.iter().collect::<Vec<_>>(),
        ["council", "housing", "police"]
    );
    let b2 = &breaches["breach/br-2025-0002"];
    assert_eq!(field(b2, "/deadline/due"), "2025-06-09T16:00:00Z");
    assert_eq!(field(b2, "/ico_reports/0/late"), true);
    assert!(field(b2, "/ico_reports/0/reasons_for_delay_entry").is_u64());
    assert_eq!(field(b2, "/subjects_notified/hours_after_aware"), 114.0);

    let sars = rows(&p, "sars", now).await;
    let sar = &sars["sar/sar-2025-0001"];
    // Identity arrived on 2 April, so the month runs from then.
    assert_eq!(field(sar, "/deadline/due"), "2025-05-02");
    assert_eq!(sar.status, "responded");
    assert_eq!(field(sar, "/consultations/0/answer"), "release-redacted");
    assert!(sar.parties.contains("police"));

    // FOI counts a bank holiday anywhere in the UK: 14 July 2025 in Northern Ireland.
    let foi = rows(&p, "foi", now).await;
    assert_eq!(foi["foi/foi-2025-0001"].due.as_deref(), Some("2025-07-30"));
    assert_eq!(foi["foi/foi-2025-0001"].status, "open");

    let complaints = rows(&p, "complaints", now).await;
    let c = &complaints["complaint/cmp-2025-0001"];
    assert_eq!(field(c, "/deadline/due"), "2025-08-01");
    assert_eq!(c.status, "acknowledged");

    let retention = rows(&p, "retention", "2026-03-01T12:00:00Z").await;
    let police = &retention["case/asb-2025-0001#police"];
    assert_eq!(police.due.as_deref(), Some("2026-01-21"));
    assert_eq!(police.status, "overdue");
    let council = &retention["case/asb-2025-0001#council"];
    assert_eq!(
        (council.status.as_str(), council.due.as_deref()),
        ("kept", Some("2026-07-22"))
    );
    assert_eq!(retention["case/asb-2025-0006#council"].status, "disposed");
    assert_eq!(
        retention["case/asb-2025-0006#fire-rescue"].due.as_deref(),
        Some("2026-01-10")
    );

    let notices = rows(&p, "notices", now).await;
    let n = |k: &str| &notices[k];
    assert_eq!(n("case/asb-2025-0005#notice-n1").status, "acknowledged");
    assert_eq!(n("case/asb-2025-0005#notice-n2").status, "acknowledged");
    let probation = n("case/asb-2025-0005#notice-n3");
    assert_eq!(probation.partner.as_deref(), Some("probation"));
    // Ten working days from Thu 20 March 2025.
    assert_eq!(probation.due.as_deref(), Some("2025-04-03"));
    assert_eq!(probation.status, "overdue");
    assert_eq!(n("breach/br-2025-0001#alert-police").status, "alerted");
    assert_eq!(n("sar/sar-2025-0001#consult-police").status, "answered");
    assert!(
        !notices.contains_key("case/asb-2025-0005"),
        "bookkeeping rows are not listed"
    );

    let register = rows(&p, "disclosures", now).await;
    let d1 = &register["case/asb-2025-0001#disclosure-asb-2025-0001-d1"];
    assert_eq!(field(d1, "/decision/decision"), "share-in-part");
    assert_eq!(field(d1, "/decision/decided_by"), "police-inspector-0042");
    assert!(field(d1, "/decision/rationale_entry").is_u64());
    assert!(field(d1, "/without_consent_reason_entry").is_u64());
    assert_eq!(field(d1, "/by/user"), "police-dpo-01");
    assert_eq!(register["case/asb-2025-0002#request"].status, "declined");
    let probation_register = query::read(
        p.db(),
        p.chain_id(),
        "disclosures",
        &Filter {
            party: Some("probation".into()),
            limit: 100,
            ..Filter::default()
        },
        at(now),
    )
    .await
    .unwrap();
    assert_eq!(
        probation_register
            .iter()
            .map(|r| r.key.as_str())
            .collect::<Vec<_>>(),
        ["case/asb-2025-0005#disclosure-asb-2025-0005-d1"],
        "probation is party only to the disclosure it received"
    );

    let consents = rows(&p, "consents", now).await;
    assert_eq!(consents["consent/c-2025-0001"].status, "live");
    assert_eq!(consents["consent/c-2025-0002"].status, "withdrawn");

    let agreements = rows(&p, "agreements", now).await;
    let isa = &agreements["csp-isa-asb-2025"];
    // The voluntary body signed the protocol, not the ISA; it attends under a declaration.
    assert_eq!(field(isa, "/signatories").as_array().unwrap().len(), 6);
    assert!(!isa.parties.contains("voluntary"));
    assert_eq!(
        field(isa, "/liaison_officers/police/officer"),
        "police-dlo-01"
    );
    assert_eq!(field(isa, "/next_review/due"), "2026-01-06");
    assert_eq!(field(isa, "/meetings/0/meeting"), "asb-panel-2025-01");
    assert_eq!(isa.status, "active");

    // The deadlines list: soonest first, each with the sentence that explains it.
    let due = query::deadlines(p.db(), p.chain_id(), Some("council"), at(now))
        .await
        .unwrap();
    assert!(!due.is_empty());
    assert!(due
        .windows(2)
        .all(|w| w[0].seconds_left <= w[1].seconds_left));
    assert!(due.iter().all(|d| d.partner.as_deref() == Some("council")));
    let foi_item = due.iter().find(|d| d.view == "foi").unwrap();
    assert!(
        foi_item.explanation.contains("Wed 30 Jul 2025"),
        "{}",
        foi_item.explanation
    );

    // No view holds the free text of an entry (it is redactable, views are not).
    for (view, lines) in dumps(&p).await {
        for text in [
            "injunction",
            "Call-outs",
            "laptop",
            "Third-party details",
            "backups on 9 June",
        ] {
            assert!(
                !lines.iter().any(|l| l.contains(text)),
                "view {view} holds free text {text:?}"
            );
        }
    }
}

pub async fn a_rebuild_yields_identical_rows(f: Fixture) {
    let small = Pace {
        live_batch: 3,
        rebuild_batch: 7,
        poll: Duration::from_millis(10),
    };
    let p = f.projector(Settings::default(), small).await;
    // Follow the log as it grows, a few entries at a time.
    for chunk in [0..10, 10..25, 25..40, 40..usize::MAX] {
        f.demo(chunk).await;
        p.catch_up().await.unwrap();
    }
    let followed = dumps(&p).await;
    assert!(followed.values().all(|lines| !lines.is_empty()));
    let rebuilt = p.rebuild_all().await.unwrap();
    assert_eq!(rebuilt.len(), p.view_names().len());
    assert_eq!(
        dumps(&p).await,
        followed,
        "a rebuild from entry 0 gives the same rows"
    );
    let status = p.status().await.unwrap();
    assert!(
        status
            .iter()
            .all(|s| s.behind == 0 && s.stopped.is_none() && !s.stale),
        "{status:?}"
    );
    // The rebuilt views are served through their query indexes, under the live names
    // (on PostgreSQL they were built on the shadows and renamed in the swap).
    let indexes = f.index_names().await;
    for view in p.view_names() {
        for index in [
            "_by_due",
            "_by_partner",
            "_by_subject",
            "_parties_by_partner",
        ] {
            let name = format!("view_{view}{index}");
            assert!(indexes.contains(&name), "{name} missing: {indexes:?}");
        }
    }
    assert!(
        !indexes.iter().any(|i| i.contains("__shadow")),
        "an index is left under a shadow's name: {indexes:?}"
    );
}

pub async fn a_gap_or_a_hash_mismatch_stops_the_projection(f: Fixture) {
    f.demo(0..usize::MAX).await;
    tamper(&f.store, &UNLOCK).await;
    // Entry 24's bytes change, so entry 25 no longer names its hash; entry 40 is gone.
    tamper(
        &f.store,
        &[
            "UPDATE entries SET entry = CAST(REPLACE(CAST(entry AS TEXT), '\"v\":1}', '\"v\":1 }') AS BLOB) WHERE seq = 24",
            "DELETE FROM contents WHERE seq = 40",
            "DELETE FROM entries WHERE seq = 40",
        ],
    )
    .await;
    let p = f.projector(Settings::default(), Pace::default()).await;
    match p.catch_up().await {
        Err(ProjectionError::Stopped { seq, why, .. }) => {
            assert_eq!(seq, 25, "{why}");
            assert!(why.contains("predecessor's hash"), "{why}");
        }
        other => panic!("expected a stop, got {other:?}"),
    }
    let status = p.status().await.unwrap();
    assert!(status.iter().all(|s| s.next_seq == 25), "{status:?}");
    assert!(status.iter().all(|s| s
        .stopped
        .as_deref()
        .is_some_and(|w| w.starts_with("entry 25"))));
    // Stopped views are not fed again, and a rebuild stops at the same place.
    assert_eq!(p.catch_up().await.unwrap(), 0);
    assert!(matches!(
        p.rebuild("breaches").await,
        Err(ProjectionError::Stopped { seq: 25, .. })
    ));

    // Repair entry 24; the rebuild now runs into the gap at 40.
    tamper(
        &f.store,
        &["UPDATE entries SET entry = CAST(REPLACE(CAST(entry AS TEXT), '\"v\":1 }', '\"v\":1}') AS BLOB) WHERE seq = 24"],
    )
    .await;
    match p.rebuild("breaches").await {
        Err(ProjectionError::Stopped { seq, why, .. }) => {
            assert_eq!(seq, 40);
            assert!(why.contains("missing"), "{why}");
        }
        other => panic!("expected a stop at the gap, got {other:?}"),
    }
}

pub async fn changed_settings_rebuild_the_views(f: Fixture) {
    f.demo(0..usize::MAX).await;
    let p = f.projector(Settings::default(), Pace::default()).await;
    p.catch_up().await.unwrap();
    let now = "2025-07-10T12:00:00Z";
    let before = rows(&p, "notices", now).await;
    let key = "case/asb-2025-0005#notice-n3";
    assert_eq!(
        field(&before[key], "/response/inputs/division"),
        "england-and-wales"
    );

    let scottish =
        Settings::parse(r#"{"divisions": {"probation": "scotland"}, "response_working_days": 5}"#)
            .unwrap();
    let p = f.projector(scottish, Pace::default()).await;
    assert!(p.status().await.unwrap().iter().all(|s| s.stale));
    p.catch_up().await.unwrap();
    assert!(p.status().await.unwrap().iter().all(|s| !s.stale));
    let after = rows(&p, "notices", now).await;
    assert_eq!(field(&after[key], "/response/inputs/division"), "scotland");
    // Five working days from Thu 20 March 2025.
    assert_eq!(after[key].due.as_deref(), Some("2025-03-27"));
}

pub async fn lag_is_visible_and_caught_up(f: Fixture) {
    f.demo(0..20).await;
    let p = f.projector(Settings::default(), Pace::default()).await;
    p.catch_up().await.unwrap();
    f.demo(20..usize::MAX).await;
    let status = p.status().await.unwrap();
    assert!(
        status.iter().all(|s| s.behind > 0 && s.lag_seconds >= 0.0),
        "{status:?}"
    );
    p.catch_up().await.unwrap();
    let status = p.status().await.unwrap();
    assert!(
        status.iter().all(|s| s.behind == 0 && s.lag_seconds == 0.0),
        "{status:?}"
    );
}

const UNLOCK: [&str; 2] = [
    "DROP TRIGGER entries_are_append_only_update",
    "DROP TRIGGER entries_are_append_only_delete",
];

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
                    .replace(") AS BLOB)", "), 'UTF8')");
                sqlx::query(&sql).execute(s.pool()).await.unwrap();
            }
        }
    }
}

macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod on_sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::sqlite().await).await;
                }
            )*
        }
        mod on_postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(f) = super::postgres().await else { return };
                    super::$name(f).await;
                }
            )*
        }
    };
}

both_backends!(
    the_demo_partnership_reads_correctly_in_every_view,
    a_rebuild_yields_identical_rows,
    a_gap_or_a_hash_mismatch_stops_the_projection,
    changed_settings_rebuild_the_views,
    lag_is_visible_and_caught_up,
);
