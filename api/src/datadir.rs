//! The data directory: where the ledger key, custodial partner keys and the SQLite
//! store live, and how the configured store is opened.
//!
//! ```text
//! isa-ledger-data/            mode 0700
//!   ledger.key                mode 0600, signs checkpoints and operator entries
//!   ledger.vkey               the matching verifier key, safe to publish
//!   ledger.db                 the SQLite store (absent with --database-url)
//!   partner-keys/NAME+ID.key  mode 0600, custodial partner keys
//!   retired-ledger-keys/ID.key  mode 0600, ledger keys replaced by `key rotate-ledger`
//!   partnership.secret        mode 0600, keys the subject pseudonyms (unless configured)
//!   views.db                  the views (deadlines, queues, registers), rebuildable from the log
//!   settings.json             optional: partner divisions, Part 3 SAR start, response days
//!   access.db                 mode 0600, `serve`'s users and token hashes (SQLite only)
//! ```

use anyhow::{bail, Context, Result};
use domain::pseudonym::PartnershipSecret;
use ledger::keys::SignerKey;
use ledger::store::{AnyStore, PostgresStore, SqliteStore};
use projections::Settings;
use std::path::{Path, PathBuf};

/// The environment variable that may carry the partnership secret instead of the file.
pub const PARTNERSHIP_SECRET_ENV: &str = "ISA_LEDGER_PARTNERSHIP_SECRET";

pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    pub fn new(root: &Path) -> DataDir {
        DataDir {
            root: root.to_path_buf(),
        }
    }

    /// Creates the directory (and the partner key folder) readable by the owner only.
    pub fn create(&self) -> Result<()> {
        for dir in [self.root.clone(), self.partner_keys()] {
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
                    .with_context(|| format!("restricting {}", dir.display()))?;
            }
        }
        Ok(())
    }

    pub fn ledger_key_path(&self) -> PathBuf {
        self.root.join("ledger.key")
    }

    pub fn partnership_secret_path(&self) -> PathBuf {
        self.root.join("partnership.secret")
    }

    /// The partnership secret: from `ISA_LEDGER_PARTNERSHIP_SECRET` (64 hex digits) if
    /// set, which every node of a PostgreSQL deployment must share, else the file.
    pub fn partnership_secret(&self) -> Result<PartnershipSecret> {
        if let Ok(text) = std::env::var(PARTNERSHIP_SECRET_ENV) {
            return Ok(PartnershipSecret::from_hex(&text, PARTNERSHIP_SECRET_ENV)?);
        }
        let path = self.partnership_secret_path();
        if !path.exists() {
            bail!(
                "no partnership secret: {} is missing and {PARTNERSHIP_SECRET_ENV} is not set (run `isa-ledger init`)",
                path.display()
            );
        }
        Ok(PartnershipSecret::read(&path)?)
    }

    pub fn ledger_vkey_path(&self) -> PathBuf {
        self.root.join("ledger.vkey")
    }

    pub fn retired_ledger_keys(&self) -> PathBuf {
        self.root.join("retired-ledger-keys")
    }

    pub fn sqlite_path(&self) -> PathBuf {
        self.root.join("ledger.db")
    }

    pub fn views_path(&self) -> PathBuf {
        self.root.join("views.db")
    }

    pub fn access_path(&self) -> PathBuf {
        self.root.join("access.db")
    }

    pub fn settings_path(&self) -> PathBuf {
        self.root.join("settings.json")
    }

    /// The settings deadlines depend on: `settings.json` if present, else the defaults.
    pub fn settings(&self) -> Result<Settings> {
        let path = self.settings_path();
        if !path.exists() {
            return Ok(Settings::default());
        }
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        Settings::parse(&text).with_context(|| format!("in {}", path.display()))
    }

    pub fn partner_keys(&self) -> PathBuf {
        self.root.join("partner-keys")
    }

    pub fn partner_key_path(&self, partner: &str, key_id: &str) -> PathBuf {
        self.partner_keys().join(format!("{partner}+{key_id}.key"))
    }

    pub fn ledger_key(&self) -> Result<SignerKey> {
        let path = self.ledger_key_path();
        if !path.exists() {
            bail!(
                "no ledger key at {}; run `isa-ledger init` first (or pass --data-dir)",
                path.display()
            );
        }
        Ok(SignerKey::read(&path)?)
    }

    /// Opens the store the flags choose: PostgreSQL with a URL, SQLite otherwise.
    pub async fn open_store(&self, database_url: Option<&str>) -> Result<AnyStore> {
        Ok(match database_url {
            Some(url) => AnyStore::Postgres(
                PostgresStore::connect(url)
                    .await
                    .context("connecting to PostgreSQL (check --database-url / DATABASE_URL)")?,
            ),
            None => AnyStore::Sqlite(
                SqliteStore::open(&self.sqlite_path())
                    .await
                    .with_context(|| format!("opening {}", self.sqlite_path().display()))?,
            ),
        })
    }
}
