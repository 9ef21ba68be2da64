//! `isa-ledger bench`: appends synthetic, partnership-shaped events through the real
//! pipeline into the configured store and prints one JSON line of figures.
//!
//! Seven partners of the kinds the protocols name each hold a custodial key. Every case
//! is a stream of request, sharing decision, disclosure and Article 19 notice, appended
//! in order with exact expected versions; each event is about 1 KB, with its rationale in
//! redactable content. Signing (as the service does for custodial partners) is inside
//! the timed region and inside each append's latency.

use crate::datadir::DataDir;
use anyhow::{bail, Context, Result};
use ledger::entry::{Content, SignedSubmission, Submission};
use ledger::keys::SignerKey;
use ledger::pipeline::{AppendRequest, ExpectedVersion, Ledger};
use ledger::store::{AnyStore, LedgerStore};
use ledger::timestamp;
use serde_json::json;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

const PARTNERS: [&str; 7] = [
    "bench-police",
    "bench-council",
    "bench-fire-rescue",
    "bench-health-board",
    "bench-probation",
    "bench-housing",
    "bench-voluntary",
];

const STEPS: [&str; 4] = [
    "InformationRequested",
    "SharingDecisionRecorded",
    "DisclosureMade",
    "NoticeIssued",
];

pub async fn run(
    dir: &DataDir,
    url: Option<&str>,
    events: u64,
    concurrency: u64,
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
    let run_id = format!("{:x}", timestamp::now_micros());

    let started = Instant::now();
    let mut writers = Vec::new();
    for writer in 0..concurrency {
        let ledger = ledger.clone();
        let keys = keys.clone();
        let run_id = run_id.clone();
        // Writer w appends events w, w + C, w + 2C, ...; whole cases stay with one writer.
        let mine = (events / concurrency) + u64::from(writer < events % concurrency);
        writers.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(mine as usize);
            for i in 0..mine {
                let n = writer + i * concurrency;
                let case = writer * 1_000_000_000 + i / STEPS.len() as u64;
                let step = i % STEPS.len() as u64;
                let begun = Instant::now();
                let request = synthetic_event(&ledger, &keys, &run_id, n, case, step)?;
                ledger.append(request).await?;
                latencies.push(begun.elapsed().as_secs_f64() * 1000.0);
            }
            anyhow::Ok(latencies)
        }));
    }
    let mut latencies = Vec::with_capacity(events as usize);
    for writer in writers {
        latencies.extend(writer.await.context("a bench writer panicked")??);
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    let percentile = |p: f64| {
        latencies[((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1]
    };
    let figures = json!({
        "store": ledger.store().backend().as_str(),
        "events": events,
        "concurrency": concurrency,
        "events_per_sec": round2(events as f64 / elapsed),
        "p50_ms": round2(percentile(0.50)),
        "p99_ms": round2(percentile(0.99)),
    });
    println!("{figures}");
    Ok(ExitCode::SUCCESS)
}

/// Average time of one Ed25519 signature over a thousand, after a warm-up.
fn signature_micros(key: &SignerKey) -> f64 {
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

/// The bench partners' current custodial keys, registering any that are missing.
async fn partner_keys(dir: &DataDir, ledger: &Ledger<AnyStore>) -> Result<Vec<SignerKey>> {
    let mut keys = Vec::new();
    for partner in PARTNERS {
        keys.push(super::keys::custodial_key(dir, ledger, partner, true).await?);
    }
    Ok(keys)
}

/// A deterministic pseudo-random number from a counter (SplitMix64).
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn synthetic_event(
    ledger: &Ledger<AnyStore>,
    keys: &[SignerKey],
    run_id: &str,
    n: u64,
    case: u64,
    step: u64,
) -> Result<AppendRequest> {
    let r = mix(n ^ case.rotate_left(17));
    let holder = &keys[(case % keys.len() as u64) as usize];
    let requester = &keys[((case + 1 + r % 6) % keys.len() as u64) as usize];
    let (author, counterpart) = if step == 0 {
        (requester, holder)
    } else {
        (holder, requester)
    };
    let subject = |k: u64| {
        format!(
            "{:016x}{:016x}",
            mix(case ^ k),
            mix(case.wrapping_mul(k + 7))
        )
    };
    let event_type = STEPS[step as usize];
    let role = ["designated-liaison-officer", "analyst", "case-worker"][(r % 3) as usize];
    let categories = &["personal", "criminal-offence", "special-category"][..=(r % 3) as usize];
    let classification = ["OFFICIAL", "OFFICIAL-SENSITIVE"][(r % 2) as usize];
    let decision = ["share", "share-in-part", "decline"][(r % 3) as usize];
    let payload = json!({
        "agreement": "csp-overarching-isp-2022/isa-07",
        "acting_user": format!("user-{:04}", r % 997),
        "acting_role": role,
        "counterpart": counterpart.name(),
        "recipients": [counterpart.name()],
        "subjects": [subject(1), subject(2)],
        "data_categories": categories,
        "purpose": "prevention and detection of crime and disorder (Crime and Disorder Act 1998 s115)",
        "lawful_basis": {"article_6": "6(1)(e)", "article_9": "9(2)(g)", "dpa_2018": "Sch 1 para 10"},
        "classification": classification,
        "channel": "secure email (CJSM)",
        "onward_sharing": "not without the originator's written permission",
        "retention": {"rule": "review after 12 months", "review_due": "2027-11-23"},
        "decision": decision,
        "request_ref": format!("REQ-{case}"),
    });
    let content = Content::new(json!({
        "rationale": format!(
            "Case {case}: the information is necessary and proportionate to manage an identified \
             risk of harm discussed at the multi-agency meeting; less intrusive means were \
             considered and rejected; the minimum necessary was shared with the named officer \
             only, under the agreement's conditions. Reference {r:x}."
        ),
    }))?;
    let submission = Submission {
        author: author.name().to_string(),
        content_commitment: Some(content.commitment()?.to_hex()),
        event_type: event_type.to_string(),
        event_version: 1,
        idempotency_key: format!("bench-{run_id}-{n}"),
        key_id: author.verifier().id_hex(),
        occurred_at: timestamp::format_micros(timestamp::now_micros()),
        origin: ledger.origin().to_string(),
        payload,
        redacts: vec![],
        stream: format!("case/{run_id}/{case}"),
    };
    let expected = if step == 0 {
        ExpectedVersion::NoStream
    } else {
        ExpectedVersion::Exact(step)
    };
    Ok(AppendRequest {
        submission: SignedSubmission::sign(submission, author)?,
        expected,
        content: Some(content),
    })
}
