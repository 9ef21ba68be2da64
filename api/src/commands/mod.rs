//! One module per command; `run` dispatches.

mod append;
mod bench;
mod bench_http;
mod demo;
mod due;
mod export;
mod init;
pub(crate) mod keys;
mod serve;
mod verify;
mod views;

use crate::cli::{Cli, Command};
use crate::datadir::DataDir;
use anyhow::Result;
use ledger::pipeline::{Ledger, PipelineConfig};
use ledger::store::AnyStore;
use std::process::ExitCode;

pub async fn run(cli: Cli) -> Result<ExitCode> {
    let dir = DataDir::new(&cli.data_dir);
    let url = cli.database_url.as_deref();
    match cli.command {
        Command::Init { origin } => init::run(&dir, url, &origin).await,
        Command::Key(command) => keys::run(&dir, url, command).await,
        Command::Export { out } => export::run(&dir, url, &out).await,
        Command::Verify {
            dir: export_dir,
            trusted_checkpoint,
        } => verify::run(&export_dir, trusted_checkpoint.as_deref()),
        Command::Append {
            partner,
            file,
            idempotency_key,
        } => append::run(&dir, url, &partner, file.as_deref(), idempotency_key).await,
        Command::Demo => demo::run(&dir, url).await,
        Command::Due {
            rule,
            from,
            division,
            identity_received,
            fee_received,
            paused,
            extended,
            part3_day_after,
            json,
        } => due::run(due::Request {
            rule,
            from,
            division,
            identity_received,
            fee_received,
            paused,
            extended,
            part3_day_after,
            json,
        }),
        Command::Bench {
            events,
            concurrency,
            http: Some(base),
            token,
            partner,
            ..
        } => bench_http::run(&base, token.as_deref(), &partner, events, concurrency).await,
        Command::Bench {
            events,
            concurrency,
            follow,
            ..
        } => bench::run(&dir, url, events, concurrency, follow).await,
        Command::Deadlines { at, partner, json } => {
            views::deadlines(&dir, url, at.as_deref(), partner.as_deref(), json).await
        }
        Command::Rebuild { view } => views::rebuild(&dir, url, view.as_deref()).await,
        Command::Views { json } => views::status(&dir, url, json).await,
        Command::Serve(args) => serve::run(dir, cli.database_url, args).await,
    }
}

/// Opens the configured store and the log the data directory's ledger key names.
async fn open_ledger(dir: &DataDir, url: Option<&str>) -> Result<Ledger<AnyStore>> {
    let key = dir.ledger_key()?;
    let store = dir.open_store(url).await?;
    Ok(Ledger::open(store, key, PipelineConfig::default()).await?)
}
