//! `isa-ledger bench --http URL`: load on a running service, as partners' systems would
//! put it: `concurrency` clients, each POSTing one domain command after another to
//! `/v1/commands` (a breach detected, each on a stream of its own), over kept-alive
//! connections. Reports appends/s, latency percentiles and every non-201 answer.

use anyhow::{bail, Context, Result};
use serde_json::json;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub async fn run(
    base: &str,
    token: Option<&str>,
    partner: &str,
    events: u64,
    concurrency: u64,
) -> Result<ExitCode> {
    let Some(token) = token else {
        bail!("--http needs --token (or ISA_LEDGER_TOKEN): a practitioner's or DPO's token of {partner}");
    };
    if events == 0 || concurrency == 0 {
        bail!("--events and --concurrency must be at least 1");
    }
    let calibration = ledger::keys::SignerKey::from_seed("calibration", [7; 32])
        .map(|key| super::bench::signature_micros(&key))?;
    eprintln!(
        "calibration: one Ed25519 signature takes {calibration:.1} µs on one core now (issue 2 quotes about 26 µs)"
    );
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency as usize)
        .timeout(Duration::from_secs(30))
        .build()?;
    let url = format!("{}/v1/commands", base.trim_end_matches('/'));
    // A run tag keeps streams of different runs apart.
    let run = format!("{:x}", ledger::timestamp::now_micros());
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut clients = Vec::new();
    for _ in 0..concurrency {
        let (client, url, token, run, next, partner) = (
            client.clone(),
            url.clone(),
            token.to_string(),
            run.clone(),
            next.clone(),
            partner.to_string(),
        );
        clients.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors: Vec<String> = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= events {
                    break;
                }
                let command = json!({
                    "stream": format!("breach/bench-{run}-{i}"),
                    "by": {"partner": partner, "user": "bench", "role": "data-protection-officer"},
                    "at": "2025-10-01T10:00:00Z",
                    "type": "BreachDetected",
                    "became_aware_at": "2025-10-01T09:00:00Z",
                    "nature": ["availability"], "data_categories": ["personal"],
                    "subject_categories": ["staff"],
                    "approximate_subjects": 1, "approximate_records": 1,
                });
                let sent = Instant::now();
                let answer = client
                    .post(&url)
                    .bearer_auth(&token)
                    .header("content-type", "application/json")
                    .body(command.to_string())
                    .send()
                    .await;
                match answer {
                    Ok(r) if r.status().as_u16() == 201 => {
                        // Read the receipts: the request is done when they arrive.
                        let _ = r.bytes().await;
                        latencies.push(sent.elapsed());
                    }
                    Ok(r) => {
                        let status = r.status();
                        let body = r.text().await.unwrap_or_default();
                        errors.push(format!(
                            "{status}: {}",
                            body.chars().take(200).collect::<String>()
                        ));
                    }
                    Err(e) => errors.push(format!("request failed: {e}")),
                }
            }
            (latencies, errors)
        }));
    }
    let mut latencies = Vec::new();
    let mut errors = Vec::new();
    for c in clients {
        let (l, e) = c.await.context("a client task failed")?;
        latencies.extend(l);
        errors.extend(e);
    }
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p).ceil() as usize).saturating_sub(1))
            .map_or(0.0, |d| d.as_secs_f64() * 1e3)
    };
    println!(
        "{} appends over HTTP in {:.2} s: {:.0} appends/s at {concurrency} clients",
        latencies.len(),
        elapsed.as_secs_f64(),
        latencies.len() as f64 / elapsed.as_secs_f64()
    );
    println!(
        "latency ms: p50 {:.1}, p90 {:.1}, p99 {:.1}, max {:.1}",
        pct(0.50),
        pct(0.90),
        pct(0.99),
        pct(1.0)
    );
    println!("errors: {}", errors.len());
    for e in errors.iter().take(5) {
        println!("  {e}");
    }
    Ok(if errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
