//! `isa-ledger deadlines`, `rebuild` and `views`: the projections from the command line.
//! Each brings the views up to the head of the log before answering (a view built by
//! older logic or under other settings is rebuilt first), so what they print is current.

use crate::datadir::DataDir;
use anyhow::{anyhow, bail, Context, Result};
use deadlines::{london, Day};
use ledger::store::{AnyStore, LedgerStore};
use ledger::timestamp::{self, Micros};
use projections::query::{self, DueItem};
use projections::{Pace, Projector, ViewDb};
use std::process::ExitCode;

/// Opens the views of the data directory's log (SQLite `views.db`, or schema `views` of
/// the PostgreSQL database).
pub async fn open_projector(
    dir: &DataDir,
    url: Option<&str>,
    pace: Pace,
) -> Result<Projector<AnyStore>> {
    let store = dir.open_store(url).await?;
    let chain = store.sole_chain().await?.ok_or_else(|| {
        anyhow!("there is no log here yet: run `isa-ledger init` first (or pass --data-dir)")
    })?;
    let views = match url {
        Some(url) => ViewDb::postgres(url).await?,
        None => ViewDb::sqlite(&dir.views_path())
            .await
            .with_context(|| format!("opening {}", dir.views_path().display()))?,
    };
    Ok(Projector::open(store, &chain.origin, views, dir.settings()?, pace).await?)
}

/// `--at`: an RFC 3339 instant, or a date meaning its first moment in London.
fn parse_at(text: &str) -> Result<Micros> {
    if let Some(at) = timestamp::parse_utc(text) {
        return Ok(at);
    }
    let day = Day::parse(text).ok_or_else(|| {
        anyhow!("--at {text:?} is neither an RFC 3339 instant (2025-07-10T12:00:00Z) nor a date (2025-07-10)")
    })?;
    // London midnight: UTC midnight less the offset in force then (clocks change at 01:00 UTC).
    let utc_midnight = day.0 * 86_400_000_000;
    Ok(utc_midnight - london::offset(utc_midnight))
}

pub async fn deadlines(
    dir: &DataDir,
    url: Option<&str>,
    at: Option<&str>,
    partner: Option<&str>,
    json: bool,
) -> Result<ExitCode> {
    let now = match at {
        Some(text) => parse_at(text)?,
        None => timestamp::now_micros(),
    };
    let projector = open_projector(dir, url, Pace::default()).await?;
    projector.catch_up().await?;
    let items = query::deadlines(projector.db(), projector.chain_id(), partner, now).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&items)?);
        return Ok(ExitCode::SUCCESS);
    }
    let overdue = items.iter().filter(|i| i.overdue).count();
    println!(
        "{} open deadline{} at {} ({overdue} overdue){}",
        items.len(),
        if items.len() == 1 { "" } else { "s" },
        london::long(now),
        partner.map(|p| format!(" for {p}")).unwrap_or_default()
    );
    if items.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    print_table(&items);
    Ok(ExitCode::SUCCESS)
}

fn print_table(items: &[DueItem]) {
    let header = ["DUE", "WHEN", "PARTNER", "ACTION", "ITEM"];
    let rows: Vec<[String; 5]> = items
        .iter()
        .map(|i| {
            [
                i.due.clone(),
                when(i),
                i.partner.clone().unwrap_or_default(),
                i.action.clone(),
                i.key.clone(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; 5]| {
        let mut out = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<w$}  "));
            }
        }
        out
    };
    println!("{}", line(header));
    for (row, item) in rows.iter().zip(items) {
        println!("{}", line([&row[0], &row[1], &row[2], &row[3], &row[4]]));
        if !item.explanation.is_empty() {
            println!("    {}", item.explanation);
        }
    }
}

/// "overdue by 3 days", "in 5 h", "in 12 days".
fn when(item: &DueItem) -> String {
    let s = item.seconds_left.unsigned_abs();
    let span = if s >= 2 * 86_400 {
        format!("{} days", s / 86_400)
    } else if s >= 3_600 {
        format!("{} h", s / 3_600)
    } else {
        format!("{} min", s / 60)
    };
    if item.overdue {
        format!("overdue by {span}")
    } else {
        format!("in {span}")
    }
}

pub async fn rebuild(dir: &DataDir, url: Option<&str>, view: Option<&str>) -> Result<ExitCode> {
    let projector = open_projector(dir, url, Pace::default()).await?;
    let started = std::time::Instant::now();
    let rebuilt = match view {
        Some(name) => vec![projector.rebuild(name).await?],
        None => projector.rebuild_all().await?,
    };
    let seconds = started.elapsed().as_secs_f64();
    let entries = rebuilt.first().map_or(0, |r| r.entries);
    for r in &rebuilt {
        println!("rebuilt {:<12} {:>8} rows", r.view, r.rows);
    }
    println!(
        "{} view{} from {entries} entries in {seconds:.2} s ({:.0} entries/s)",
        rebuilt.len(),
        if rebuilt.len() == 1 { "" } else { "s" },
        entries as f64 / seconds.max(1e-9)
    );
    // The views are in; what is left is tidying the views database's WAL.
    let tidying = std::time::Instant::now();
    projector.fold_wal().await?;
    if url.is_none() {
        println!(
            "views.db: write-ahead log folded into the file in {:.2} s",
            tidying.elapsed().as_secs_f64()
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn status(dir: &DataDir, url: Option<&str>, json: bool) -> Result<ExitCode> {
    let projector = open_projector(dir, url, Pace::default()).await?;
    let status = projector.status().await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&status)?);
    } else {
        println!(
            "{:<12} {:>9} {:>9} {:>9} {:>9}  STATE",
            "VIEW", "NEXT", "LOG", "BEHIND", "LAG s"
        );
        for s in &status {
            let state = match (&s.stopped, s.stale) {
                (Some(why), _) => format!("STOPPED: {why}"),
                (None, true) => "stale: rebuilt on next catch-up".to_string(),
                (None, false) if s.behind == 0 => "caught up".to_string(),
                (None, false) => "catching up".to_string(),
            };
            println!(
                "{:<12} {:>9} {:>9} {:>9} {:>9.1}  {state}",
                s.view, s.next_seq, s.log_size, s.behind, s.lag_seconds
            );
        }
    }
    if status.iter().any(|s| s.stopped.is_some()) {
        bail!("a view has stopped; the log needs attention (see above), then `isa-ledger rebuild`");
    }
    Ok(ExitCode::SUCCESS)
}
