//! `isa-ledger verify DIR [--trusted-checkpoint FILE]`: the offline audit, with a
//! progress bar on a terminal and plain progress lines otherwise.

use anyhow::{Context, Result};
use ledger::audit::{self, Progress};
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

struct Reporter {
    total: u64,
    terminal: bool,
    last_line: u64,
}

impl Progress for Reporter {
    fn total(&mut self, entries: u64) {
        self.total = entries;
    }

    fn advanced(&mut self, verified: u64) {
        let total = self.total.max(1);
        let mut err = std::io::stderr();
        if self.terminal {
            let filled = (verified * 40 / total) as usize;
            let _ = write!(
                err,
                "\r[{}{}] {verified}/{} entries",
                "#".repeat(filled.min(40)),
                " ".repeat(40 - filled.min(40)),
                self.total
            );
            let _ = err.flush();
        } else if verified == self.total || verified >= self.last_line + total.div_ceil(10) {
            self.last_line = verified;
            let _ = writeln!(err, "verified {verified} of {} entries", self.total);
        }
    }
}

pub fn run(dir: &Path, trusted: Option<&Path>) -> Result<ExitCode> {
    let trusted_text = trusted
        .map(|p| std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display())))
        .transpose()?;
    let mut reporter = Reporter {
        total: 0,
        terminal: std::io::stderr().is_terminal(),
        last_line: 0,
    };
    let started = Instant::now();
    let result = audit::verify_export(dir, trusted_text.as_deref(), &mut reporter);
    if reporter.terminal {
        eprintln!();
    }
    let seconds = started.elapsed().as_secs_f64();
    match result {
        Ok(report) => {
            println!(
                "OK: {} entries of {} verified in {seconds:.2} s ({:.0} entries/s)",
                report.entries,
                report.origin,
                report.entries as f64 / seconds.max(1e-9)
            );
            println!(
                "  root {} matches the checkpoint signed by {}",
                report.root.to_base64(),
                report.ledger_key
            );
            println!(
                "  hash chain, canonical form, {} keys and every author signature hold",
                report.keys
            );
            if report.redacted > 0 {
                println!("  {} entries have had their redactable content removed, each by a later logged entry", report.redacted);
            }
            if let Some(size) = report.consistent_with {
                println!("  consistent with the trusted checkpoint of {size} entries (RFC 9162 consistency proof verified)");
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(failure) => {
            println!("FAILED: {failure}");
            if let Some(seq) = failure.seq {
                println!("  first failing sequence number: {seq}");
            }
            Ok(ExitCode::from(1))
        }
    }
}
