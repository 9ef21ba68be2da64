//! `isa-ledger`: the command-line tool. Thin glue: parse the command line, run the
//! command, turn its error into a message and an exit code.
#![forbid(unsafe_code)]
// The API description's schemas are one large `json!` literal (service/openapi.rs).
#![recursion_limit = "512"]

mod cli;
mod commands;
mod datadir;
mod service;

use clap::Parser;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let args = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        // The sequencer is woken from outside the runtime (the SQLite writer thread) or
        // by I/O (PostgreSQL); under load, workers busy with signing would otherwise
        // look at the queue those wakes land in only every 31 tasks, and at I/O every
        // 61, holding up every caller in the next batch.
        .global_queue_interval(4)
        .event_interval(8)
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("isa-ledger: cannot start the async runtime: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    match runtime.block_on(commands::run(args)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("isa-ledger: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}
