//! `isa-ledger serve`: starts the HTTP service. On first start it creates what is
//! missing (data directory, ledger key, partnership secret, store), seeds the demo
//! partnership if asked, and prints the first administrator's token once.

use crate::cli::ServeArgs;
use crate::datadir::DataDir;
use crate::service::config::{Overrides, ServeConfig};
use crate::service::Application;
use anyhow::Result;
use ledger::store::LedgerStore;
use std::process::ExitCode;

pub async fn run(dir: DataDir, url: Option<String>, args: ServeArgs) -> Result<ExitCode> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(false)
        .init();
    let config = ServeConfig::load(
        Overrides {
            listen: args.listen,
            body_limit: args.body_limit,
            request_timeout: args.request_timeout,
            rate_limit: args.rate_limit,
            rate_burst: args.rate_burst,
            webhook_backoff_ms: args.webhook_backoff_ms,
            webhook_attempts: args.webhook_attempts,
            demo: args.demo,
        },
        args.config.as_deref(),
    )?;
    if !dir.ledger_key_path().exists() {
        super::init::run(&dir, url.as_deref(), &args.origin).await?;
    }
    if config.demo {
        let store = dir.open_store(url.as_deref()).await?;
        let size = store.sole_chain().await?.map_or(0, |c| c.size);
        // Only into a log that holds nothing but its genesis: never mix the demo
        // into real records.
        if size <= 1 {
            super::demo::run(&dir, url.as_deref()).await?;
        }
    }
    let app = Application::build(config, dir, url).await?;
    if let Some(token) = app.first_admin_token().await? {
        println!("administrator token (shown once; keep it safe): {token}");
    }
    println!("listening on http://127.0.0.1:{}", app.port());
    app.run_until_stopped(shutdown_signal()).await?;
    Ok(ExitCode::SUCCESS)
}

/// SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = interrupt => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = interrupt.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
