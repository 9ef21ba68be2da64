//! `isa-ledger demo`: seeds the demo partnership (`domain::demo`) into the configured
//! store through the same path as `append`, so a newcomer sees a populated log at once.
//! Each step has a fixed idempotency key: running it again records nothing twice.

use crate::datadir::DataDir;
use anyhow::{Context, Result};
use domain::demo;
use domain::reference::Reference;
use domain::service::Domain;
use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;

pub async fn run(dir: &DataDir, url: Option<&str>) -> Result<ExitCode> {
    let ledger = super::open_ledger(dir, url).await?;
    let mut signers = BTreeMap::new();
    for (partner, _, _) in demo::PARTNERS {
        signers.insert(
            partner,
            super::keys::custodial_key(dir, &ledger, partner, true).await?,
        );
    }
    let domain = Domain::new(
        ledger,
        Arc::new(Reference::shipped()?),
        dir.partnership_secret()?,
    )
    .with_settings(dir.settings()?);
    let mut recorded: BTreeMap<String, usize> = BTreeMap::new();
    let mut last_seq = 0;
    let script = demo::script();
    let steps = script.len();
    for (i, step) in script.into_iter().enumerate() {
        let signer = signers
            .get(step.partner)
            .with_context(|| format!("demo step {i}: no key for {}", step.partner))?;
        let stream = step.command["stream"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let submitted = domain
            .submit(step.command, signer, &format!("demo-{i:03}"))
            .await
            .with_context(|| format!("demo step {i} ({stream}) was not recorded"))?;
        for event in submitted.events {
            *recorded.entry(event).or_default() += 1;
        }
        if let Some(r) = submitted.receipts.last() {
            last_seq = last_seq.max(r.seq);
        }
    }
    println!("demo partnership recorded: {steps} commands, up to entry {last_seq}");
    for (event, n) in recorded {
        println!("  {n:>3} {event}");
    }
    Ok(ExitCode::SUCCESS)
}
