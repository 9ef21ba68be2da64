//! `isa-ledger init`: data directory, ledger key, store, genesis entry.

use crate::datadir::DataDir;
use anyhow::{Context, Result};
use ledger::keys::SignerKey;
use ledger::pipeline::{Ledger, PipelineConfig};
use std::process::ExitCode;

pub async fn run(dir: &DataDir, url: Option<&str>, origin: &str) -> Result<ExitCode> {
    dir.create()?;
    let key = if dir.ledger_key_path().exists() {
        // A rerun after a failed first attempt keeps the key it already made.
        dir.ledger_key()?
    } else {
        let key = SignerKey::generate(origin).context("the origin must be usable as a key name")?;
        key.write_new(&dir.ledger_key_path())?;
        std::fs::write(dir.ledger_vkey_path(), format!("{}\n", key.verifier()))
            .context("writing ledger.vkey")?;
        key
    };
    if key.name() != origin {
        anyhow::bail!(
            "this data directory's ledger key is for {:?}, not {origin:?}",
            key.name()
        );
    }
    if std::env::var(crate::datadir::PARTNERSHIP_SECRET_ENV).is_err()
        && !dir.partnership_secret_path().exists()
    {
        domain::pseudonym::PartnershipSecret::generate()
            .write_new(&dir.partnership_secret_path())?;
    }
    let store = dir.open_store(url).await?;
    let ledger = Ledger::init(store, key, PipelineConfig::default()).await?;
    println!("initialised log {}", ledger.origin());
    println!("ledger verifier key: {}", ledger.ledger_verifier());
    Ok(ExitCode::SUCCESS)
}
