//! Who may do what: users bound to a partner and a role, their bearer tokens (kept only
//! as SHA-256 hashes), and [`decide`], the one place every endpoint asks.
//!
//! Need-to-know: a partner sees a row or an event only if it is party to it (discloser,
//! recipient, requester, holder, consulted, alerted). The views record each row's
//! parties; [`Scope::party`] is the filter every read applies.
//!
//! Storage: `access.db` (mode 0600) beside the ledger on SQLite, schema `access` on
//! PostgreSQL. Not in the log: tokens are secrets, and users are operational, not
//! protocol facts.

use crate::service::problem::ApiError;
use ledger::store::migrations::{create_private_file, migrator};
use ledger::timestamp;
use rand_core::{OsRng, RngCore};
use sha2::{Digest, Sha256};
use sqlx::any::AnyPoolOptions;
use sqlx::AnyPool;
use sqlx::{Executor, Row};
use std::path::Path;

/// What a user may do, as the protocols' roles go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Submits for its own partner; reads what its partner is party to.
    Practitioner,
    /// Everything its partner is party to, including the registers and queues.
    Dpo,
    /// Reads everything, writes nothing.
    Regulator,
    /// Users, tokens and keys; never writes a sharing event.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Practitioner => "practitioner",
            Role::Dpo => "dpo",
            Role::Regulator => "regulator",
            Role::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "practitioner" => Some(Role::Practitioner),
            "dpo" => Some(Role::Dpo),
            "regulator" => Some(Role::Regulator),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// The authenticated caller of one request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user: String,
    pub partner: String,
    pub role: Role,
    /// The token's id (not the token): what the logs and rate limits name.
    pub token_id: String,
}

/// What a request wants to do; [`decide`] allows or refuses it.
#[derive(Debug, Clone, Copy)]
pub enum Action<'a> {
    /// Record a domain command acting for `partner`.
    Submit { partner: &'a str },
    /// Read rows of a view.
    ReadView { view: &'a str },
    /// The deadlines across the views.
    ReadDeadlines,
    /// Checkpoints and proofs: hashes only, no content.
    ReadProofs,
    /// Entries themselves, the export and the tiles.
    ReadEntries,
    /// Users and tokens.
    Administer,
    /// Register or stop `partner`'s webhooks.
    ManageWebhooks { partner: &'a str },
    /// `partner`'s webhooks and their delivery log.
    ReadDeliveries { partner: &'a str },
    /// The service's Prometheus metrics (counts and timings, no casework).
    ReadMetrics,
}

/// What an allowed request may see.
#[derive(Debug, Clone)]
pub struct Scope {
    /// Only what this partner is party to; `None` for everything (the regulator).
    pub party: Option<String>,
}

/// Views a practitioner works from; the other views are registers and queues, for DPOs.
const CASEWORK_VIEWS: &[&str] = &["disclosures", "notices", "consents", "agreements"];

/// The one authorisation decision, for every endpoint.
pub fn decide(caller: &Caller, action: Action<'_>) -> Result<Scope, ApiError> {
    let own = Scope {
        party: Some(caller.partner.clone()),
    };
    let all = Scope { party: None };
    let refuse = |why: String| Err(ApiError::Forbidden(why));
    match (caller.role, action) {
        (Role::Practitioner | Role::Dpo, Action::Submit { partner }) => {
            if partner == caller.partner {
                Ok(own)
            } else {
                refuse(format!(
                    "{} acts for {}, not for {partner}",
                    caller.user, caller.partner
                ))
            }
        }
        (Role::Regulator, Action::Submit { .. }) => {
            refuse("a regulator reads everything and writes nothing".into())
        }
        (Role::Admin, Action::Submit { .. }) => refuse(
            "an administrator manages users, tokens and keys but records no sharing event".into(),
        ),
        (Role::Practitioner, Action::ReadView { view }) => {
            if CASEWORK_VIEWS.contains(&view) {
                Ok(own)
            } else {
                refuse(format!(
                    "the {view} view is a register for DPOs; practitioners read {}",
                    CASEWORK_VIEWS.join(", ")
                ))
            }
        }
        (Role::Dpo, Action::ReadView { .. } | Action::ReadDeadlines) => Ok(own),
        (Role::Practitioner, Action::ReadDeadlines) => Ok(own),
        (Role::Regulator, Action::ReadView { .. } | Action::ReadDeadlines) => Ok(all),
        (Role::Admin, Action::ReadView { .. } | Action::ReadDeadlines) => {
            refuse("an administrator does not read partners' casework".into())
        }
        (_, Action::ReadProofs) => Ok(all),
        (Role::Regulator, Action::ReadEntries) => Ok(all),
        (_, Action::ReadEntries) => refuse(
            "entries carry every partner's events: only a regulator reads the whole log".into(),
        ),
        (Role::Admin, Action::Administer) => Ok(all),
        (_, Action::Administer) => refuse("only an administrator manages users and tokens".into()),
        (Role::Dpo, Action::ManageWebhooks { partner } | Action::ReadDeliveries { partner }) => {
            if partner == caller.partner {
                Ok(own)
            } else {
                refuse(format!(
                    "{} is {}'s DPO, not {partner}'s",
                    caller.user, caller.partner
                ))
            }
        }
        (Role::Admin, Action::ManageWebhooks { .. } | Action::ReadDeliveries { .. }) => Ok(all),
        (Role::Regulator, Action::ReadDeliveries { .. }) => Ok(all),
        (_, Action::ManageWebhooks { .. } | Action::ReadDeliveries { .. }) => {
            refuse("a partner's webhooks are set up by its DPO (or the administrator)".into())
        }
        (Role::Admin | Role::Regulator, Action::ReadMetrics) => Ok(all),
        (_, Action::ReadMetrics) => refuse("metrics are for the operator and the regulator".into()),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    #[error(transparent)]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("cannot create {0}: {1}")]
    File(String, std::io::Error),
    #[error("there is already a user called {0:?}")]
    UserExists(String),
    #[error("there is no user called {0:?}")]
    NoUser(String),
    #[error("there is no token {0:?}")]
    NoToken(String),
    #[error("the random number generator failed: {0}")]
    Random(String),
}

impl From<AccessError> for ApiError {
    fn from(e: AccessError) -> ApiError {
        match e {
            AccessError::UserExists(_) => ApiError::Conflict(e.to_string()),
            AccessError::NoUser(_) | AccessError::NoToken(_) => ApiError::NotFound(e.to_string()),
            other => ApiError::internal(other),
        }
    }
}

/// What a token may be used for.
#[derive(Debug, Clone, Copy)]
enum TokenScope {
    Api,
    Calendar,
}

impl TokenScope {
    fn as_str(self) -> &'static str {
        match self {
            TokenScope::Api => "api",
            TokenScope::Calendar => "calendar",
        }
    }

    fn prefix(self) -> &'static str {
        match self {
            TokenScope::Api => "isa_",
            TokenScope::Calendar => "isacal_",
        }
    }
}

/// A token as issued: shown once, never stored.
pub struct IssuedToken {
    pub id: String,
    pub token: String,
}

/// Users and token hashes.
#[derive(Clone)]
pub struct AccessDb {
    pool: AnyPool,
    postgres: bool,
}

const SQLITE_MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "users and tokens",
        include_str!("../../../migrations/access-sqlite/0001_users_tokens.sql"),
    ),
    (
        2,
        "notice delivery",
        include_str!("../../../migrations/access-sqlite/0002_notice_delivery.sql"),
    ),
    (
        3,
        "calendar tokens",
        include_str!("../../../migrations/access-sqlite/0003_calendar_tokens.sql"),
    ),
];
const POSTGRES_MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "users and tokens",
        include_str!("../../../migrations/access-postgres/0001_users_tokens.sql"),
    ),
    (
        2,
        "notice delivery",
        include_str!("../../../migrations/access-postgres/0002_notice_delivery.sql"),
    ),
    (
        3,
        "calendar tokens",
        include_str!("../../../migrations/access-postgres/0003_calendar_tokens.sql"),
    ),
];

impl AccessDb {
    pub async fn sqlite(path: &Path) -> Result<AccessDb, AccessError> {
        sqlx::any::install_default_drivers();
        create_private_file(path).map_err(|e| AccessError::File(path.display().to_string(), e))?;
        let url = ledger::store::migrations::sqlite_url(path);
        let pool = AnyPoolOptions::new()
            .max_connections(2)
            .after_connect(|conn, _| {
                Box::pin(async move {
                    conn.execute(
                        "PRAGMA busy_timeout = 30000; PRAGMA journal_mode = WAL; \
                         PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;",
                    )
                    .await?;
                    Ok(())
                })
            })
            .connect(&url)
            .await?;
        migrator(SQLITE_MIGRATIONS).run(&pool).await?;
        Ok(AccessDb {
            pool,
            postgres: false,
        })
    }

    pub async fn postgres(url: &str) -> Result<AccessDb, AccessError> {
        sqlx::any::install_default_drivers();
        let pool = AnyPoolOptions::new()
            .max_connections(2)
            .after_connect(|conn, _| {
                Box::pin(async move {
                    conn.execute("SET search_path TO access").await?;
                    Ok(())
                })
            })
            .connect(url)
            .await?;
        sqlx::query("CREATE SCHEMA IF NOT EXISTS access")
            .execute(&pool)
            .await?;
        migrator(POSTGRES_MIGRATIONS).run(&pool).await?;
        Ok(AccessDb {
            pool,
            postgres: true,
        })
    }

    /// The pool, for the other stores kept beside users and tokens (notice delivery).
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// `sql` with `?` placeholders as this database wants them.
    pub fn sql(&self, sql: &str) -> String {
        if self.postgres {
            ledger::store::migrations::numbered_placeholders(sql)
        } else {
            sql.to_string()
        }
    }

    pub async fn has_users(&self) -> Result<bool, AccessError> {
        let row = sqlx::query("SELECT COUNT(*) FROM users")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get::<i64, _>(0)? > 0)
    }

    pub async fn create_user(
        &self,
        name: &str,
        partner: &str,
        role: Role,
    ) -> Result<(), AccessError> {
        let done = sqlx::query(&self.sql(
            "INSERT INTO users (name, partner, role, created_at) VALUES (?, ?, ?, ?) \
             ON CONFLICT (name) DO NOTHING",
        ))
        .bind(name.to_string())
        .bind(partner.to_string())
        .bind(role.as_str())
        .bind(now())
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(AccessError::UserExists(name.to_string()));
        }
        Ok(())
    }

    /// Issues a new API token for `user`; only its hash is kept.
    pub async fn issue_token(&self, user: &str, label: &str) -> Result<IssuedToken, AccessError> {
        self.issue(user, label, TokenScope::Api).await
    }

    /// Issues a calendar-feed token for `user`: it reads that user's deadlines as
    /// iCalendar and nothing else.
    pub async fn issue_calendar_token(&self, user: &str) -> Result<IssuedToken, AccessError> {
        self.issue(user, "calendar feed", TokenScope::Calendar)
            .await
    }

    async fn issue(
        &self,
        user: &str,
        label: &str,
        scope: TokenScope,
    ) -> Result<IssuedToken, AccessError> {
        let exists = sqlx::query(&self.sql("SELECT 1 FROM users WHERE name = ?"))
            .bind(user.to_string())
            .fetch_optional(&self.pool)
            .await?;
        if exists.is_none() {
            return Err(AccessError::NoUser(user.to_string()));
        }
        let mut secret = [0u8; 32];
        OsRng
            .try_fill_bytes(&mut secret)
            .map_err(|e| AccessError::Random(e.to_string()))?;
        let token = format!("{}{}", scope.prefix(), hex::encode(secret));
        let id = format!(
            "tok_{}",
            &hex::encode(Sha256::digest(token.as_bytes()))[..12]
        );
        sqlx::query(&self.sql(
            "INSERT INTO tokens (id, hash, user_name, label, created_at, scope) \
             VALUES (?, ?, ?, ?, ?, ?)",
        ))
        .bind(id.clone())
        .bind(token_hash(&token))
        .bind(user.to_string())
        .bind(label.to_string())
        .bind(now())
        .bind(scope.as_str())
        .execute(&self.pool)
        .await?;
        Ok(IssuedToken { id, token })
    }

    /// Revokes `user`'s own calendar token `id`.
    pub async fn revoke_calendar_token(&self, user: &str, id: &str) -> Result<(), AccessError> {
        let done = sqlx::query(&self.sql(
            "UPDATE tokens SET revoked_at = ? WHERE id = ? AND user_name = ? \
             AND scope = 'calendar' AND revoked_at IS NULL",
        ))
        .bind(now())
        .bind(id.to_string())
        .bind(user.to_string())
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(AccessError::NoToken(id.to_string()));
        }
        Ok(())
    }

    pub async fn revoke_token(&self, id: &str) -> Result<(), AccessError> {
        let done = sqlx::query(
            &self.sql("UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL"),
        )
        .bind(now())
        .bind(id.to_string())
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(AccessError::NoToken(id.to_string()));
        }
        Ok(())
    }

    /// The caller a presented API token belongs to, if it is live.
    pub async fn authenticate(&self, token: &str) -> Result<Option<Caller>, AccessError> {
        self.authenticate_as(token, TokenScope::Api).await
    }

    /// The caller a calendar-feed token belongs to, if it is live.
    pub async fn authenticate_calendar(&self, token: &str) -> Result<Option<Caller>, AccessError> {
        self.authenticate_as(token, TokenScope::Calendar).await
    }

    async fn authenticate_as(
        &self,
        token: &str,
        scope: TokenScope,
    ) -> Result<Option<Caller>, AccessError> {
        let row = sqlx::query(&self.sql(
            "SELECT t.id, u.name, u.partner, u.role FROM tokens t \
             JOIN users u ON u.name = t.user_name \
             WHERE t.hash = ? AND t.revoked_at IS NULL AND t.scope = ?",
        ))
        .bind(token_hash(token))
        .bind(scope.as_str())
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let role: String = row.try_get(3)?;
        let Some(role) = Role::parse(&role) else {
            return Ok(None);
        };
        Ok(Some(Caller {
            token_id: row.try_get(0)?,
            user: row.try_get(1)?,
            partner: row.try_get(2)?,
            role,
        }))
    }

    /// Claims `key` for a request whose body hashes to `body_hash`: true if the key is
    /// new or was first used for the same body, false if it was used for another.
    pub async fn claim_idempotency_key(
        &self,
        partner: &str,
        key: &str,
        body_hash: &str,
    ) -> Result<bool, AccessError> {
        sqlx::query(&self.sql(
            "INSERT INTO idempotency_keys (partner, key, body_hash, created_at) \
             VALUES (?, ?, ?, ?) ON CONFLICT (partner, key) DO NOTHING",
        ))
        .bind(partner.to_string())
        .bind(key.to_string())
        .bind(body_hash.to_string())
        .bind(now())
        .execute(&self.pool)
        .await?;
        let row = sqlx::query(
            &self.sql("SELECT body_hash FROM idempotency_keys WHERE partner = ? AND key = ?"),
        )
        .bind(partner.to_string())
        .bind(key.to_string())
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get::<String, _>(0)? == body_hash)
    }

    pub async fn ping(&self) -> Result<(), AccessError> {
        sqlx::query("SELECT 1").fetch_one(&self.pool).await?;
        Ok(())
    }
}

/// What is stored for a token: its SHA-256, hex. Tokens carry 256 random bits, so a
/// plain hash (no salt, no stretching) cannot be reversed or guessed.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn now() -> String {
    timestamp::format_micros(timestamp::now_micros())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(role: Role) -> Caller {
        Caller {
            user: "u".into(),
            partner: "police".into(),
            role,
            token_id: "tok".into(),
        }
    }

    #[test]
    fn the_decision_matrix_holds() {
        use Role::*;
        let submit_own = Action::Submit { partner: "police" };
        let submit_other = Action::Submit { partner: "council" };
        let register = Action::ReadView { view: "breaches" };
        let casework = Action::ReadView {
            view: "disclosures",
        };
        // (role, action, allowed, sees everything)
        let cases: &[(Role, Action<'_>, bool, bool)] = &[
            (Practitioner, submit_own, true, false),
            (Practitioner, submit_other, false, false),
            (Practitioner, casework, true, false),
            (Practitioner, register, false, false),
            (Practitioner, Action::ReadEntries, false, false),
            (Practitioner, Action::Administer, false, false),
            (Dpo, submit_own, true, false),
            (Dpo, submit_other, false, false),
            (Dpo, register, true, false),
            (Dpo, Action::ReadDeadlines, true, false),
            (Dpo, Action::ReadEntries, false, false),
            (Regulator, submit_own, false, false),
            (Regulator, register, true, true),
            (Regulator, Action::ReadEntries, true, true),
            (Regulator, Action::Administer, false, false),
            (Admin, submit_own, false, false),
            (Admin, casework, false, false),
            (Admin, Action::Administer, true, true),
            (Admin, Action::ReadProofs, true, true),
            (
                Dpo,
                Action::ManageWebhooks { partner: "police" },
                true,
                false,
            ),
            (
                Dpo,
                Action::ManageWebhooks { partner: "council" },
                false,
                false,
            ),
            (
                Practitioner,
                Action::ManageWebhooks { partner: "police" },
                false,
                false,
            ),
            (
                Regulator,
                Action::ManageWebhooks { partner: "police" },
                false,
                false,
            ),
            (
                Regulator,
                Action::ReadDeliveries { partner: "police" },
                true,
                true,
            ),
            (
                Admin,
                Action::ManageWebhooks { partner: "police" },
                true,
                true,
            ),
            (
                Dpo,
                Action::ReadDeliveries { partner: "council" },
                false,
                false,
            ),
            (Dpo, Action::ReadMetrics, false, false),
            (Admin, Action::ReadMetrics, true, true),
        ];
        for (role, action, allowed, everything) in cases {
            let got = decide(&caller(*role), *action);
            assert_eq!(got.is_ok(), *allowed, "{role:?} {action:?}");
            if let Ok(scope) = got {
                assert_eq!(scope.party.is_none(), *everything, "{role:?} {action:?}");
            }
        }
    }
}
