//! `isa-ledger bench`: submits domain commands through the real path (pseudonymising,
//! replaying the case, checking the rules, signing, the append pipeline) into the
//! configured store and prints one JSON line of figures.
//!
//! Seven partners of the kinds the protocols name each hold a custodial key and have
//! signed one agreement (set up before the clock starts). Every case is a stream of four
//! commands: a request, the holder's decision, the disclosure, and a rectification, which
//! records the rectification and the Article 19 notice to the recipient; so five events
//! from four commands, each about 0.5–1.5 KB, free text in redactable content. Signing
//! (as the service does for custodial partners) is inside the timed region. Latency is
//! per command; the rate counts events.

use crate::datadir::DataDir;
use anyhow::{bail, Context, Result};
use domain::reference::Reference;
use domain::service::Domain;
use ledger::keys::SignerKey;
use ledger::pipeline::Ledger;
use ledger::store::{AnyStore, LedgerStore};
use ledger::timestamp;
use serde_json::{json, Value};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

const PARTNERS: [(&str, &str); 7] = [
    ("bench-police", "responsible-authority"),
    ("bench-council", "responsible-authority"),
    ("bench-fire-rescue", "responsible-authority"),
    ("bench-health-board", "responsible-authority"),
    ("bench-probation", "responsible-authority"),
    ("bench-housing", "co-operating-body"),
    ("bench-voluntary", "co-operating-body"),
];

const AGREEMENT: &str = "bench-csp-isa";
const PURPOSE: &str = "prevention and detection of crime and disorder";

pub async fn run(
    dir: &DataDir,
    url: Option<&str>,
    events: u64,
    concurrency: u64,
    follow: bool,
) -> Result<ExitCode> {
    if events == 0 || concurrency == 0 {
        bail!("--events and --concurrency must be at least 1");
    }
    let ledger = super::open_ledger(dir, url).await?;
    let keys = Arc::new(partner_keys(dir, &ledger).await?);
    // This machine's speed varies by a quarter from hour to hour (it is shared); the
    // cost of one signature right now says which kind of hour a figure comes from.
    eprintln!(
        "calibration: one Ed25519 signature takes {:.1} µs on one core now (issue 2 quotes about 26 µs)",
        signature_micros(&keys[0])
    );
    let backend = ledger.store().backend().as_str();
    let domain = Arc::new(Domain::new(
        ledger,
        Arc::new(Reference::shipped()?),
        dir.partnership_secret()?,
    ));
    set_up_partnership(&domain, &keys).await?;
    let run_id = format!("{:x}", timestamp::now_micros());
    // With --follow, the views follow the log while it grows (on the same two cores),
    // and a sampler records how far behind they are.
    let follower = if follow {
        Some(Follower::start(dir, url).await?)
    } else {
        None
    };

    let started = Instant::now();
    let mut writers = Vec::new();
    for writer in 0..concurrency {
        let domain = domain.clone();
        let keys = keys.clone();
        let run_id = run_id.clone();
        // Each writer works through its own cases until it has appended its share.
        let share = (events / concurrency) + u64::from(writer < events % concurrency);
        writers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut appended = 0u64;
            let mut n = 0u64;
            while appended < share {
                let case = writer * 1_000_000_000 + n / 4;
                // A rectification records two events; when only one is left to make
                // the share exact, the holder's retention review (one event) goes instead.
                let step = if n % 4 == 3 && share - appended == 1 {
                    4
                } else {
                    n % 4
                };
                let (partner, command) = case_command(&run_id, case, step);
                let begun = Instant::now();
                let key = format!("bench-{run_id}-{writer}-{n}");
                let submitted = domain
                    .submit(command, &keys[partner], &key)
                    .await
                    .with_context(|| format!("bench command {n} of writer {writer}"))?;
                latencies.push(begun.elapsed().as_secs_f64() * 1000.0);
                appended += submitted.receipts.len() as u64;
                n += 1;
            }
            anyhow::Ok((latencies, appended))
        }));
    }
    let mut latencies = Vec::new();
    let mut appended = 0;
    for writer in writers {
        let (l, a) = writer.await.context("a bench writer panicked")??;
        latencies.extend(l);
        appended += a;
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    let percentile = |p: f64| {
        latencies[((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1]
    };
    let mut figures = json!({
        "store": backend,
        "events": appended,
        "concurrency": concurrency,
        "events_per_sec": round2(appended as f64 / elapsed),
        "p50_ms": round2(percentile(0.50)),
        "p99_ms": round2(percentile(0.99)),
    });
    if let Some(follower) = follower {
        let lag = follower.finish().await?;
        figures["views_max_lag_s"] = json!(round2(lag.max_lag));
        figures["views_p99_lag_s"] = json!(round2(lag.p99_lag));
        figures["views_max_behind"] = json!(lag.max_behind);
        figures["views_caught_up_after_s"] = json!(round2(lag.drain));
    }
    println!("{figures}");
    Ok(ExitCode::SUCCESS)
}

/// The bench partners' current custodial keys, registering any that are missing.
async fn partner_keys(dir: &DataDir, ledger: &Ledger<AnyStore>) -> Result<Vec<SignerKey>> {
    let mut keys = Vec::new();
    for (partner, _) in PARTNERS {
        keys.push(super::keys::custodial_key(dir, ledger, partner, true).await?);
    }
    Ok(keys)
}

fn command(partner: &str, stream: &str, fact: Value) -> Value {
    let mut c = json!({
        "stream": stream,
        "by": {"partner": partner, "user": format!("{partner}-user-0001"), "role": "designated-liaison-officer"},
        "at": timestamp::format_micros(timestamp::now_micros()),
    });
    if let (Some(c), Value::Object(f)) = (c.as_object_mut(), fact) {
        c.extend(f);
    }
    c
}

/// Registers the partners and their agreement, once per data directory (fixed
/// idempotency keys make a rerun replay them).
async fn set_up_partnership(domain: &Domain<AnyStore>, keys: &[SignerKey]) -> Result<()> {
    let lead = PARTNERS[0].0;
    let mut steps = Vec::new();
    for (partner, kind) in PARTNERS {
        steps.push((0, json!({"type": "PartnerRegistered", "partner": partner, "organisation": partner,
            "kind": kind, "ico_registration": "Z0000000", "dpo_contact": format!("dpo@{partner}.example")})));
    }
    steps.push((0, json!({"type": "AgreementAdopted", "agreement": AGREEMENT, "kind": "isa",
        "title": "Bench ISA", "purposes": [PURPOSE],
        "lawful_bases": ["uk-gdpr-6-1-e", "uk-gdpr-9-2-g", "dpa-2018-sch-1-para-10"],
        "gateways": ["cda-1998-s115"], "data_categories": ["personal", "criminal-offence", "special-category"],
        "retention": [{"data_category": "personal", "review_after_months": 12}],
        "review_interval_months": 12})));
    for (i, (partner, _)) in PARTNERS.iter().enumerate() {
        steps.push((
            i,
            json!({"type": "AgreementSigned", "agreement": AGREEMENT,
            "signatory": partner, "signed_as": "head of service"}),
        ));
    }
    for (n, (signer, fact)) in steps.into_iter().enumerate() {
        let partner = PARTNERS[signer].0;
        let mut c = command(partner, "partnership", fact);
        // A fixed time too, so a rerun's commands are the same and replay.
        c["at"] = json!("2025-01-06T09:00:00Z");
        domain
            .submit(c, &keys[signer], &format!("bench-setup-{n}"))
            .await
            .with_context(|| {
                format!("setting up the bench partnership (as {lead}); run the bench in a data directory of its own")
            })?;
    }
    Ok(())
}

/// The `step`th command of a case (0 request, 1 decision, 2 disclosure, 3
/// rectification, or 4 a retention review in its place), and the index of the partner
/// that submits it.
fn case_command(run_id: &str, case: u64, step: u64) -> (usize, Value) {
    let r = mix(case);
    let holder = (case % 7) as usize;
    let requester = ((case + 1 + r % 6) % 7) as usize;
    let (holder_name, requester_name) = (PARTNERS[holder].0, PARTNERS[requester].0);
    let stream = format!("case/b{run_id}-{case}");
    let subject = |k: u64| {
        let z = mix(case ^ k);
        json!({
            "given_name": (["Alex", "Sam", "Jo", "Chris", "Robin"][(z % 5) as usize]),
            "family_name": format!("Bench{:x}", z >> 20),
            "date_of_birth": format!("{}-{:02}-{:02}", 1950 + z % 60, 1 + (z >> 8) % 12, 1 + (z >> 16) % 28),
            "postcode": format!("NS{} {}AB", 1 + z % 20, z % 10),
        })
    };
    let categories = &["personal", "criminal-offence"][..=(r % 2) as usize];
    let fact = match step {
        0 => json!({
            "type": "InformationRequested", "agreement": AGREEMENT, "requester": requester_name,
            "holder": holder_name, "subjects": [subject(1), subject(2)], "data_categories": categories,
            "purpose": PURPOSE, "lawful_bases": ["uk-gdpr-6-1-e", "dpa-2018-sch-1-para-10"],
            "gateways": ["cda-1998-s115"],
            "description": format!("Case {case}: history of incidents at the address, to assess the risk \
                to neighbours before the multi-agency meeting. Reference {r:x}."),
        }),
        1 => json!({
            "type": "SharingDecisionRecorded", "decision": (["share", "share-in-part"][(r % 2) as usize]),
            "decided_by": format!("{holder_name}-inspector-{:04}", r % 997),
            "necessary": true, "proportionate": true, "minimum_necessary": true,
            "rationale": format!("Case {case}: the information is necessary and proportionate to manage \
                an identified risk of harm; less intrusive means were considered and rejected; only the \
                minimum necessary is shared with the named officer. Reference {r:x}."),
        }),
        2 => json!({
            "type": "DisclosureMade", "disclosure": format!("d{case}"), "agreement": AGREEMENT,
            "recipients": [requester_name], "subjects": [subject(1), subject(2)],
            "data_categories": categories, "purpose": PURPOSE,
            "classification": (["OFFICIAL", "OFFICIAL-SENSITIVE"][(r % 2) as usize]),
            "channel": "secure email (CJSM)",
            "lawful_bases": ["uk-gdpr-6-1-e", "dpa-2018-sch-1-para-10"], "gateways": ["cda-1998-s115"],
            "without_consent_decided_by": format!("{holder_name}-inspector-{:04}", r % 997),
            "without_consent_reason": "Seeking consent would prejudice the prevention and detection of crime.",
            "onward_sharing": "not-without-permission", "review_after_months": 12,
        }),
        4 => json!({
            "type": "RetentionReviewed", "outcome": "keep", "next_review_due": "2027-01-31",
            "reason": format!("Case {case}: proceedings are still open."),
        }),
        _ => json!({
            "type": "RectificationApplied", "fields": ["address"],
            "description": format!("Case {case}: the address disclosed was a previous one."),
        }),
    };
    (
        holder_if(step, holder, requester),
        command(
            if step == 0 {
                requester_name
            } else {
                holder_name
            },
            &stream,
            fact,
        ),
    )
}

fn holder_if(step: u64, holder: usize, requester: usize) -> usize {
    if step == 0 {
        requester
    } else {
        holder
    }
}

/// Average time of one Ed25519 signature over a thousand, after a warm-up.
/// How long one Ed25519 signature takes on one core now: this machine's speed varies
/// by a quarter or more from hour to hour (it is shared), and every figure is printed
/// with this one so that figures from different hours can be compared.
pub(super) fn signature_micros(key: &SignerKey) -> f64 {
    let message = [7u8; 64];
    for _ in 0..200 {
        std::hint::black_box(key.sign(&message));
    }
    let started = Instant::now();
    for _ in 0..1000 {
        std::hint::black_box(key.sign(std::hint::black_box(&message)));
    }
    started.elapsed().as_secs_f64() * 1e6 / 1000.0
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// A deterministic pseudo-random number from a counter (SplitMix64).
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The views following the log during a bench, and a sampler of their lag.
struct Follower {
    projector: Arc<projections::Projector<AnyStore>>,
    stop: tokio::sync::watch::Sender<bool>,
    runner: tokio::task::JoinHandle<()>,
    sampler: tokio::task::JoinHandle<Result<(Vec<f64>, u64)>>,
}

struct Lag {
    max_lag: f64,
    p99_lag: f64,
    max_behind: u64,
    /// Seconds from the last append to every view being caught up.
    drain: f64,
}

/// How often the sampler asks the views where they stand.
const LAG_SAMPLE: std::time::Duration = std::time::Duration::from_millis(100);

impl Follower {
    async fn start(dir: &DataDir, url: Option<&str>) -> Result<Follower> {
        let pace = projections::Pace {
            poll: std::time::Duration::from_millis(20),
            ..projections::Pace::default()
        };
        let projector = Arc::new(super::views::open_projector(dir, url, pace).await?);
        // Whatever the log held before this run is taken before the clock starts.
        projector.catch_up().await?;
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let runner = {
            let projector = projector.clone();
            let mut stopped = stopped.clone();
            tokio::spawn(async move {
                projector
                    .run(async move {
                        let _ = stopped.wait_for(|s| *s).await;
                    })
                    .await
            })
        };
        let sampler = {
            let projector = projector.clone();
            let stopped = stopped.clone();
            tokio::spawn(async move {
                let mut lags = Vec::new();
                let mut max_behind = 0;
                while !*stopped.borrow() {
                    let status = projector.status().await?;
                    lags.push(status.iter().map(|s| s.lag_seconds).fold(0.0, f64::max));
                    max_behind = max_behind.max(status.iter().map(|s| s.behind).max().unwrap_or(0));
                    tokio::time::sleep(LAG_SAMPLE).await;
                }
                anyhow::Ok((lags, max_behind))
            })
        };
        Ok(Follower {
            projector,
            stop,
            runner,
            sampler,
        })
    }

    async fn finish(self) -> Result<Lag> {
        let appended = Instant::now();
        loop {
            let status = self.projector.status().await?;
            if let Some(stopped) = status.iter().find_map(|s| s.stopped.clone()) {
                bail!("a view stopped during the bench: {stopped}");
            }
            if status.iter().all(|s| s.behind == 0) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        let drain = appended.elapsed().as_secs_f64();
        let _ = self.stop.send(true);
        let _ = self.runner.await;
        let (mut lags, max_behind) = self.sampler.await.context("the lag sampler panicked")??;
        lags.sort_by(f64::total_cmp);
        let at = |p: f64| {
            lags.get(((lags.len() as f64 * p).ceil() as usize).saturating_sub(1))
                .copied()
                .unwrap_or(0.0)
        };
        Ok(Lag {
            max_lag: at(1.0),
            p99_lag: at(0.99),
            max_behind,
            drain,
        })
    }
}
