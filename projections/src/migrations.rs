//! The views database's migrations (`migrations/views-sqlite`, `migrations/views-postgres`),
//! compiled into the binary. On PostgreSQL they run with `search_path` set to `views`,
//! so their bookkeeping table is the views schema's own, apart from the ledger's.

use sqlx::migrate::{Migration, MigrationType, Migrator};
use std::borrow::Cow;

const SQLITE: &[(i64, &str, &str)] = &[(
    1,
    "checkpoints",
    include_str!("../../migrations/views-sqlite/0001_checkpoints.sql"),
)];

const POSTGRES: &[(i64, &str, &str)] = &[(
    1,
    "checkpoints",
    include_str!("../../migrations/views-postgres/0001_checkpoints.sql"),
)];

fn migrator(files: &[(i64, &'static str, &'static str)]) -> Migrator {
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
