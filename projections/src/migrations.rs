//! The views database's migrations (`migrations/views-sqlite`, `migrations/views-postgres`),
//! compiled into the binary. On PostgreSQL they run with `search_path` set to `views`,
//! so their bookkeeping table is the views schema's own, apart from the ledger's.

use ledger::store::migrations::migrator;
use sqlx::migrate::Migrator;

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

pub fn sqlite() -> Migrator {
    migrator(SQLITE)
}

pub fn postgres() -> Migrator {
    migrator(POSTGRES)
}
