//! `isa-ledger append --as PARTNER`: one domain command, decided and recorded, so the
//! domain is usable before the HTTP service exists. A refusal prints what refused it
//! (the rule's id, and what would satisfy it) and exits 2; nothing is written.

use crate::datadir::DataDir;
use anyhow::{Context, Result};
use domain::reference::Reference;
use domain::service::{Domain, SubmitError};
use ledger::pipeline::AppendError;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

pub async fn run(
    dir: &DataDir,
    url: Option<&str>,
    partner: &str,
    file: Option<&Path>,
    idempotency_key: Option<String>,
) -> Result<ExitCode> {
    let text = match file {
        Some(path) if path != Path::new("-") => {
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?
        }
        _ => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("reading the command from stdin")?;
            text
        }
    };
    let command: Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("refused: the command is not JSON: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    // The same command retried (same bytes) gets the same key, so it is recorded once.
    let key = idempotency_key.unwrap_or_else(|| {
        format!(
            "cli-{}",
            &hex::encode(Sha256::digest(text.trim().as_bytes()))[..32]
        )
    });
    let ledger = super::open_ledger(dir, url).await?;
    let signer = super::keys::custodial_key(dir, &ledger, partner, false).await?;
    let domain = Domain::new(
        ledger,
        Arc::new(Reference::shipped()?),
        dir.partnership_secret()?,
    )
    .with_settings(dir.settings()?);
    match domain.submit(command, &signer, &key).await {
        Ok(submitted) => {
            let receipts: Vec<Value> = submitted.receipts.iter().map(|r| r.to_json()).collect();
            println!(
                "{}",
                json!({
                    "stream": submitted.stream,
                    "events": submitted.events,
                    "receipts": receipts,
                })
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(SubmitError::Refused(refusal)) => {
            eprintln!("refused: {refusal}");
            if let Some(rule) = refusal.rule_id() {
                eprintln!("rule: {rule}");
            }
            Ok(ExitCode::from(2))
        }
        Err(SubmitError::Ledger(AppendError::WrongExpectedVersion { stream, .. })) => {
            eprintln!(
                "conflict: stream {stream} changed while the command was decided; run it again"
            );
            Ok(ExitCode::from(3))
        }
        Err(other) => Err(other.into()),
    }
}
