//! `isa-ledger export --out DIR`.

use crate::datadir::DataDir;
use anyhow::Result;
use ledger::store::LedgerStore;
use std::path::Path;
use std::process::ExitCode;

pub async fn run(dir: &DataDir, url: Option<&str>, out: &Path) -> Result<ExitCode> {
    let ledger = super::open_ledger(dir, url).await?;
    let summary =
        ledger::export::export(ledger.store(), ledger.chain_id(), ledger.origin(), out).await?;
    println!(
        "exported {} entries and {} keys of {} ({}) to {}",
        summary.entries,
        summary.keys,
        ledger.origin(),
        ledger.store().backend().as_str(),
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}
