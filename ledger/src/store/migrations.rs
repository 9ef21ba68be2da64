//! The SQL migrations of `migrations/sqlite` and `migrations/postgres`, compiled into the
//! binary so a fresh machine needs no migration files next to it. They are applied on
//! every start; sqlx records each by version and checksum, so an edited, already-applied
//! migration is refused rather than silently diverging.

use sqlx::migrate::{Migration, MigrationType, Migrator};
use std::borrow::Cow;

/// (version, description, SQL) per backend, in order. Add new files here.
const SQLITE: &[(i64, &str, &str)] = &[(
    1,
    "ledger",
    include_str!("../../../migrations/sqlite/0001_ledger.sql"),
)];

const POSTGRES: &[(i64, &str, &str)] = &[
    (
        1,
        "ledger",
        include_str!("../../../migrations/postgres/0001_ledger.sql"),
    ),
    (
        2,
        "contents partitions",
        include_str!("../../../migrations/postgres/0002_contents_partitions.sql"),
    ),
];

/// A migrator over compiled-in `(version, description, SQL)` files (also used for the
/// views' own migrations).
pub fn migrator(files: &[(i64, &'static str, &'static str)]) -> Migrator {
    let migrations = files
        .iter()
        .map(|&(version, description, sql)| {
            Migration::new(
                version,
                Cow::Borrowed(description),
                MigrationType::Simple,
                Cow::Borrowed(sql),
                false,
            )
        })
        .collect::<Vec<_>>();
    Migrator {
        migrations: Cow::Owned(migrations),
        ..Migrator::DEFAULT
    }
}

pub fn sqlite() -> Migrator {
    migrator(SQLITE)
}

pub fn postgres() -> Migrator {
    migrator(POSTGRES)
}

/// Creates an SQLite database file readable by its owner only, if it does not exist yet:
/// SQLite gives the -wal and -shm files the database file's mode.
pub fn create_private_file(path: &std::path::Path) -> std::io::Result<()> {
    #[cfg(unix)]
    if !path.exists() {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)?;
    }
    Ok(())
}

/// The `sqlx` URL of the SQLite file at `path`, created if missing. The path is
/// percent-encoded, so spaces, `?` and `#` in directory names survive.
pub fn sqlite_url(path: &std::path::Path) -> String {
    let mut out = String::from("sqlite://");
    for b in path.to_string_lossy().bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'/' | b'.' | b'-' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out.push_str("?mode=rwc");
    out
}

/// `sql` with its `?` placeholders numbered `$1`, `$2`, … for PostgreSQL, so that the
/// stores written over `sqlx::Any` keep one text per statement.
pub fn numbered_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut n = 0;
    for c in sql.chars() {
        if c == '?' {
            n += 1;
            out.push('$');
            out.push_str(&n.to_string());
        } else {
            out.push(c);
        }
    }
    out
}
