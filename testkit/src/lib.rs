//! Test support shared by the suites: a throwaway PostgreSQL cluster per test process,
//! started from the machine's own PostgreSQL binaries (`initdb`, `pg_ctl`; run as the
//! `postgres` user when we are root), and a fresh database per test.
//!
//! With `DATABASE_URL` set, that server is used instead. Where no PostgreSQL is
//! installed, [`postgres_url`] returns `None` after a loud notice, unless
//! `ISA_LEDGER_REQUIRE_POSTGRES=1` (CI sets it), which turns the skip into a failure.
#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used, clippy::expect_used)] // test support: failing loudly is the point

use sqlx::Connection;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

/// Where the server is: an admin URL without a database name.
static SERVER: OnceLock<Option<String>> = OnceLock::new();
static COUNTER: AtomicU32 = AtomicU32::new(0);

fn find_binary(name: &str) -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    let mut candidates: Vec<PathBuf> = on_path.into_iter().map(|d| d.join(name)).collect();
    if let Ok(dirs) = std::fs::read_dir("/usr/lib/postgresql") {
        let mut versions: Vec<PathBuf> = dirs.filter_map(|d| d.ok()).map(|d| d.path()).collect();
        versions.sort();
        versions.reverse();
        candidates.extend(versions.into_iter().map(|v| v.join("bin").join(name)));
    }
    candidates.into_iter().find(|p| p.is_file())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Runs a PostgreSQL tool, as the `postgres` user when we are root (initdb refuses root).
fn run_pg(tool: &Path, args: &[&str]) -> Result<(), String> {
    let mut cmd = if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(tool);
        c
    } else {
        Command::new(tool)
    };
    let out = cmd
        .args(args)
        .output()
        .map_err(|e| format!("{}: {e}", tool.display()))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{} {:?} failed: {}{}",
            tool.display(),
            args,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free local port")
}

fn start_cluster() -> Result<String, String> {
    let initdb = find_binary("initdb").ok_or("initdb not found")?;
    let pg_ctl = find_binary("pg_ctl").ok_or("pg_ctl not found")?;
    let dir = std::env::temp_dir().join(format!(
        "isa-ledger-pg-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    if is_root() {
        let ok = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(&dir)
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !ok {
            return Err("could not chown the cluster directory to postgres".into());
        }
    }
    let data = dir.join("data");
    let data_s = data.to_string_lossy().to_string();
    run_pg(
        &initdb,
        &[
            "-D",
            &data_s,
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
            "-E",
            "UTF8",
        ],
    )?;
    let port = free_port();
    let opts = format!(
        "-p {port} -c listen_addresses=127.0.0.1 -k {} -c fsync=off -c synchronous_commit=off -c full_page_writes=off",
        dir.display()
    );
    let log = dir.join("log").to_string_lossy().to_string();
    run_pg(
        &pg_ctl,
        &["-D", &data_s, "-o", &opts, "-l", &log, "-w", "start"],
    )?;
    // Stop and remove the cluster when this test process exits, however it exits.
    let watchdog = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 1; done; {stop} ; rm -rf '{dir}'",
        pid = std::process::id(),
        stop = if is_root() {
            format!(
                "runuser -u postgres -- '{}' -D '{data_s}' -m immediate stop",
                pg_ctl.display()
            )
        } else {
            format!("'{}' -D '{data_s}' -m immediate stop", pg_ctl.display())
        },
        dir = dir.display()
    );
    Command::new("sh")
        .args(["-c", &watchdog])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    Ok(format!("postgres://postgres@127.0.0.1:{port}"))
}

fn server() -> Option<String> {
    SERVER
        .get_or_init(|| {
            if let Ok(url) = std::env::var("DATABASE_URL") {
                // Use the given server; per-test databases are created beside its own.
                let base = match url.rfind('/') {
                    Some(i) if i > "postgres://".len() => url[..i].to_string(),
                    _ => url,
                };
                return Some(base);
            }
            match start_cluster() {
                Ok(url) => Some(url),
                Err(why) => {
                    let required = std::env::var("ISA_LEDGER_REQUIRE_POSTGRES").is_ok_and(|v| v == "1");
                    if required {
                        panic!("PostgreSQL is required (ISA_LEDGER_REQUIRE_POSTGRES=1) but could not start: {why}");
                    }
                    eprintln!();
                    eprintln!("!!! ============================================================ !!!");
                    eprintln!("!!! SKIPPING POSTGRESQL TESTS: no throwaway cluster could start:");
                    eprintln!("!!!   {why}");
                    eprintln!("!!! Install PostgreSQL (initdb, pg_ctl) or set DATABASE_URL.");
                    eprintln!("!!! ============================================================ !!!");
                    None
                }
            }
        })
        .clone()
}

/// A URL to a fresh, empty database, or `None` (after a loud notice) without PostgreSQL.
pub async fn postgres_url() -> Option<String> {
    let base = tokio::task::spawn_blocking(server)
        .await
        .expect("cluster start panicked")?;
    let name = format!(
        "isa_test_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    );
    let mut admin = sqlx::PgConnection::connect(&format!("{base}/postgres"))
        .await
        .expect("connect to the test PostgreSQL server");
    let create = format!("CREATE DATABASE {name}");
    sqlx::query(&create)
        .execute(&mut admin)
        .await
        .expect("create a test database");
    Some(format!("{base}/{name}"))
}

/// The stdout of a command that must have succeeded; otherwise fails showing both
/// streams.
pub fn succeeded(out: &std::process::Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "failed: {}\nstdout: {stdout}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}
