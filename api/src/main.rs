//! `isa-ledger`: the command-line tool. Thin glue: parse the command line, run the
//! command, turn its error into a message and an exit code.
#![forbid(unsafe_code)]

mod cli;
mod commands;
mod datadir;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let args = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
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
