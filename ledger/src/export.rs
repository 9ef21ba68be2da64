//! Writes the export an auditor verifies offline (docs/ledger-format.md, "Export"):
//!
//! - `entries.jsonl`: one JCS line per entry, in sequence order, content included unless
//!   redacted;
//! - `checkpoint`: the latest signed checkpoint; the export holds exactly the entries it
//!   covers, even while appends continue;
//! - `ledger.vkey`: the ledger's current verifier key;
//! - `keys.jsonl`: every key with its validity range, one JCS line each.

use crate::canonical;
use crate::entry;
use crate::keyring::{Keyring, OPERATOR_EVENTS};
use crate::store::{LedgerStore, StoreError};
use std::io::{BufWriter, Write};
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("writing {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the log has no checkpoint yet; run `isa-ledger init` first")]
    Empty,
    #[error("stored entry {0} is corrupt: {1}")]
    Corrupt(u64, String),
}

/// What was exported.
#[derive(Debug, Clone, Copy)]
pub struct ExportSummary {
    pub entries: u64,
    pub keys: usize,
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> ExportError + '_ {
    move |source| ExportError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// True if the entry may be a key event; a cheap filter so only those are parsed.
fn may_be_key_event(bytes: &[u8]) -> bool {
    OPERATOR_EVENTS.iter().any(|name| {
        let needle = format!("\"event_type\":\"{name}\"");
        bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
    })
}

/// Exports chain `chain_id` (whose origin is `origin`) into `dir` (created if missing).
/// `keys.jsonl` and `ledger.vkey` are derived from the exported entries themselves, so
/// they describe exactly the log the checkpoint covers.
pub async fn export<S: LedgerStore>(
    store: &S,
    chain_id: i64,
    origin: &str,
    dir: &Path,
) -> Result<ExportSummary, ExportError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let path = dir.join("entries.jsonl");
    let file = std::fs::File::create(&path).map_err(io(&path))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let mut written = 0u64;
    let mut keyring = Keyring::new(origin);
    // Whatever the store holds is written as it is, gaps included: judging it is the
    // auditor's job, and a tampered store must still export so it can be caught.
    let mut sink = |stored: crate::store::StoredEntry| -> Result<(), String> {
        if may_be_key_event(&stored.bytes) {
            if let Ok(parsed) = serde_json::from_slice::<entry::Entry>(&stored.bytes) {
                // A key event that does not apply is reported by `verify`, not here.
                let _ = keyring.apply(stored.seq, &parsed.submission);
            }
        }
        let line = entry::export_line(&stored.bytes, stored.content.as_ref())
            .map_err(|e| format!("stored entry {} is corrupt: {e}", stored.seq))?;
        out.write_all(&line)
            .and_then(|()| out.write_all(b"\n"))
            .map_err(|e| format!("writing {}: {e}", path.display()))?;
        written += 1;
        Ok(())
    };
    let (size, note) = store
        .snapshot(chain_id, &mut sink)
        .await?
        .ok_or(ExportError::Empty)?;
    out.flush().map_err(io(&path))?;

    let keys = keyring.records().count();
    let (lines, ledger_key) = render_keys(&keyring, size)?;
    let path = dir.join("keys.jsonl");
    std::fs::write(&path, lines).map_err(io(&path))?;
    let path = dir.join("checkpoint");
    std::fs::write(&path, note).map_err(io(&path))?;
    let path = dir.join("ledger.vkey");
    std::fs::write(&path, format!("{ledger_key}\n")).map_err(io(&path))?;
    Ok(ExportSummary {
        entries: written,
        keys,
    })
}

/// `keys.jsonl` (one JCS line per key with its validity) and the ledger verifier key
/// for a log of `size` entries, as the keyring built from those entries has them.
fn render_keys(keyring: &Keyring, size: u64) -> Result<(Vec<u8>, String), ExportError> {
    let ledger_key = keyring
        .ledger_key_for(size)
        .ok_or_else(|| ExportError::Corrupt(0, "no ledger key is registered".into()))?;
    let mut lines = Vec::new();
    for record in keyring.records() {
        let value = serde_json::to_value(record)
            .map_err(|e| ExportError::Corrupt(record.from_seq, e.to_string()))?;
        canonical::write_canonical(&value, &mut lines)
            .map_err(|e| ExportError::Corrupt(record.from_seq, e.to_string()))?;
        lines.push(b'\n');
    }
    Ok((lines, ledger_key.to_string()))
}

/// Entries read per page by [`keys_at`] and by streaming exports.
pub const EXPORT_PAGE: u32 = 1000;

/// The export's `keys.jsonl` and `ledger.vkey` (with its newline) for the first `size`
/// entries of chain `chain_id`: what the HTTP service serves beside a streamed
/// `entries.jsonl`, so that the three describe the same log.
pub async fn keys_at<S: LedgerStore>(
    store: &S,
    chain_id: i64,
    origin: &str,
    size: u64,
) -> Result<(Vec<u8>, String), ExportError> {
    let mut keyring = Keyring::new(origin);
    let mut from = 0;
    while from < size {
        let page = store
            .entries(chain_id, from, EXPORT_PAGE.min((size - from) as u32))
            .await?;
        let Some(last) = page.last() else { break };
        from = last.seq + 1;
        for stored in page.iter().filter(|e| may_be_key_event(&e.bytes)) {
            if let Ok(parsed) = serde_json::from_slice::<entry::Entry>(&stored.bytes) {
                let _ = keyring.apply(stored.seq, &parsed.submission);
            }
        }
    }
    let (lines, key) = render_keys(&keyring, size)?;
    Ok((lines, format!("{key}\n")))
}
