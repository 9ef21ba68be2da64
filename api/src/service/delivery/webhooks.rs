//! Webhooks: a partner's DPO registers an address, and every notice change for that
//! partner is POSTed to it, signed per the Standard Webhooks specification
//! (<https://www.standardwebhooks.com/>): headers `webhook-id` (the same on every
//! attempt), `webhook-timestamp` (Unix seconds) and `webhook-signature`
//! (`v1,` + base64 HMAC-SHA256 of `ID.TIMESTAMP.BODY` under the `whsec_` secret).
//!
//! Deliveries to one webhook go strictly in log order: the next waits until the one
//! before it is delivered or given up. A failed attempt is retried after the configured
//! backoff, four times longer each time; after the last attempt the delivery is marked
//! failed (counted in the metrics) and the queue moves on. Every attempt's outcome is
//! in the delivery log, which the partner's DPO reads.
//!
//! The queue lives beside users and tokens (`access.db`, or schema `access`).

use super::{now_text, NoticeChange};
use crate::service::access::AccessDb;
use crate::service::problem::ApiError;
use crate::service::state::AppState;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use hmac::{Hmac, Mac};
use ledger::timestamp;
use rand_core::{OsRng, RngCore};
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::{AnyPool, Row};
use std::sync::Arc;
use std::time::Duration;

/// How long one attempt may take before it counts as failed.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// The longest wait between attempts, however many there have been.
const BACKOFF_CAP: Duration = Duration::from_secs(24 * 3600);

/// A registered webhook, without its secret.
#[derive(Debug, Clone, Serialize)]
pub struct Webhook {
    pub id: String,
    pub partner: String,
    pub url: String,
    pub created_by: String,
    pub created_at: String,
    pub disabled_at: Option<String>,
}

/// One delivery as the delivery log shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Delivery {
    pub id: String,
    pub webhook: String,
    pub seq: u64,
    pub idx: u32,
    pub event_type: String,
    pub notice: String,
    /// pending, delivered or failed.
    pub status: String,
    pub attempts: u32,
    pub next_attempt_at: Option<String>,
    pub last_attempt_at: Option<String>,
    /// The receiver's HTTP status on the last attempt, if it answered.
    pub last_status: Option<u16>,
    /// Why the last attempt failed (never the address or the secret).
    pub last_error: Option<String>,
    pub delivered_at: Option<String>,
    pub created_at: String,
}

pub struct WebhookDb {
    pool: AnyPool,
    access: AccessDb,
}

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    #[error("the random number generator failed: {0}")]
    Random(String),
}

impl From<WebhookError> for ApiError {
    fn from(e: WebhookError) -> ApiError {
        ApiError::internal(e)
    }
}

fn random_hex(bytes: usize) -> Result<String, WebhookError> {
    let mut random = vec![0u8; bytes];
    OsRng
        .try_fill_bytes(&mut random)
        .map_err(|e| WebhookError::Random(e.to_string()))?;
    Ok(hex::encode(random))
}

impl WebhookDb {
    pub fn new(access: &AccessDb) -> WebhookDb {
        WebhookDb {
            pool: access.pool().clone(),
            access: access.clone(),
        }
    }

    fn sql(&self, sql: &str) -> String {
        self.access.sql(sql)
    }

    /// The next entry the feed reads, once it has started.
    pub async fn feed_position(&self) -> Result<Option<u64>, WebhookError> {
        let row = sqlx::query("SELECT next_seq FROM notice_feed WHERE id = 1")
            .fetch_optional(&self.pool)
            .await?;
        Ok(row
            .map(|r| r.try_get::<i64, _>(0).map(|n| n as u64))
            .transpose()?)
    }

    /// Starts the feed at `next_seq`, unless another process already has.
    pub async fn start_feed(&self, next_seq: u64) -> Result<(), WebhookError> {
        sqlx::query(&self.sql(
            "INSERT INTO notice_feed (id, next_seq) VALUES (1, ?) ON CONFLICT (id) DO NOTHING",
        ))
        .bind(next_seq as i64)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Queues `changes` (those of entries `from..to`) for every webhook whose partner
    /// they concern, and moves the feed from `from` to `to`, in one transaction. Returns
    /// how many deliveries were queued; `None` if another process had moved the feed
    /// from `from` already (it queues them).
    pub async fn queue(
        &self,
        changes: &[NoticeChange],
        from: u64,
        to: u64,
    ) -> Result<Option<u64>, WebhookError> {
        let mut tx = self.pool.begin().await?;
        let moved = sqlx::query(
            &self.sql("UPDATE notice_feed SET next_seq = ? WHERE id = 1 AND next_seq = ?"),
        )
        .bind(to as i64)
        .bind(from as i64)
        .execute(&mut *tx)
        .await?;
        if moved.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(None);
        }
        let hooks = sqlx::query("SELECT id, partner FROM webhooks WHERE disabled_at IS NULL")
            .fetch_all(&mut *tx)
            .await?;
        let hooks: Vec<(String, String)> = hooks
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect::<Result<_, sqlx::Error>>()?;
        let now = now_text();
        let due = timestamp::now_micros();
        let mut queued = 0;
        for change in changes {
            let payload = change.payload().to_string();
            for (hook, partner) in &hooks {
                if !change.concerns(partner) {
                    continue;
                }
                // Derived, so a message has one id wherever it is queued from.
                let id = format!(
                    "msg_{}",
                    &hex::encode(Sha256::digest(format!(
                        "{hook}\n{}\n{}",
                        change.seq, change.idx
                    )))[..32]
                );
                sqlx::query(&self.sql(
                    "INSERT INTO webhook_deliveries (id, webhook, seq, idx, event_type, notice, \
                     payload, status, attempts, next_attempt_at, created_at) \
                     VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?) \
                     ON CONFLICT (webhook, seq, idx) DO NOTHING",
                ))
                .bind(id)
                .bind(hook.clone())
                .bind(change.seq as i64)
                .bind(i64::from(change.idx))
                .bind(change.event_type)
                .bind(change.key.clone())
                .bind(payload.clone())
                .bind(due)
                .bind(now.clone())
                .execute(&mut *tx)
                .await?;
                queued += 1;
            }
        }
        tx.commit().await?;
        Ok(Some(queued))
    }

    /// Registers a webhook; returns it and its signing secret (shown this once).
    pub async fn create(
        &self,
        partner: &str,
        url: &str,
        by: &str,
    ) -> Result<(Webhook, String), WebhookError> {
        let id = format!("wh_{}", random_hex(8)?);
        let mut raw = [0u8; 32];
        OsRng
            .try_fill_bytes(&mut raw)
            .map_err(|e| WebhookError::Random(e.to_string()))?;
        let secret = format!("whsec_{}", BASE64.encode(raw));
        let now = now_text();
        sqlx::query(&self.sql(
            "INSERT INTO webhooks (id, partner, url, secret, created_by, created_at) \
             VALUES (?, ?, ?, ?, ?, ?)",
        ))
        .bind(id.clone())
        .bind(partner.to_string())
        .bind(url.to_string())
        .bind(secret.clone())
        .bind(by.to_string())
        .bind(now.clone())
        .execute(&self.pool)
        .await?;
        Ok((
            Webhook {
                id,
                partner: partner.to_string(),
                url: url.to_string(),
                created_by: by.to_string(),
                created_at: now,
                disabled_at: None,
            },
            secret,
        ))
    }

    /// Webhooks, all or one partner's.
    pub async fn list(&self, partner: Option<&str>) -> Result<Vec<Webhook>, WebhookError> {
        self.select("partner", partner).await
    }

    pub async fn get(&self, id: &str) -> Result<Option<Webhook>, WebhookError> {
        Ok(self.select("id", Some(id)).await?.pop())
    }

    /// Webhooks whose `column` is `value` (all of them for `None`), by id.
    async fn select(
        &self,
        column: &'static str,
        value: Option<&str>,
    ) -> Result<Vec<Webhook>, WebhookError> {
        let sql = "SELECT id, partner, url, created_by, created_at, disabled_at FROM webhooks";
        let rows = match value {
            Some(v) => {
                sqlx::query(&self.sql(&format!("{sql} WHERE {column} = ? ORDER BY id")))
                    .bind(v.to_string())
                    .fetch_all(&self.pool)
                    .await?
            }
            None => {
                sqlx::query(&format!("{sql} ORDER BY id"))
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        let webhooks: Result<Vec<Webhook>, sqlx::Error> = rows
            .iter()
            .map(|r| {
                Ok(Webhook {
                    id: r.try_get(0)?,
                    partner: r.try_get(1)?,
                    url: r.try_get(2)?,
                    created_by: r.try_get(3)?,
                    created_at: r.try_get(4)?,
                    disabled_at: r.try_get(5)?,
                })
            })
            .collect();
        Ok(webhooks?)
    }

    /// Stops deliveries to a webhook; its delivery log stays.
    pub async fn disable(&self, id: &str) -> Result<(), WebhookError> {
        sqlx::query(
            &self.sql("UPDATE webhooks SET disabled_at = ? WHERE id = ? AND disabled_at IS NULL"),
        )
        .bind(now_text())
        .bind(id.to_string())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A webhook's delivery log in order, after `(seq, idx)`.
    pub async fn deliveries(
        &self,
        webhook: &str,
        after: Option<(u64, u32)>,
        limit: u32,
    ) -> Result<Vec<Delivery>, WebhookError> {
        let (seq, idx) = after.map_or((-1, -1), |(s, i)| (s as i64, i64::from(i)));
        let rows = sqlx::query(&self.sql(
            "SELECT id, webhook, seq, idx, event_type, notice, status, attempts, \
             next_attempt_at, last_attempt_at, last_status, last_error, delivered_at, created_at \
             FROM webhook_deliveries WHERE webhook = ? AND (seq > ? OR (seq = ? AND idx > ?)) \
             ORDER BY seq, idx LIMIT ?",
        ))
        .bind(webhook.to_string())
        .bind(seq)
        .bind(seq)
        .bind(idx)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(delivery).collect::<Result<_, _>>()?)
    }

    /// The first delivery still pending for each enabled webhook, with the webhook's
    /// address, secret and payload: what the sender works on next.
    async fn heads(&self) -> Result<Vec<Head>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT d.id, d.webhook, d.seq, d.idx, d.payload, d.attempts, d.next_attempt_at, \
             w.url, w.secret FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook \
             WHERE d.status = 'pending' AND w.disabled_at IS NULL AND NOT EXISTS ( \
               SELECT 1 FROM webhook_deliveries e WHERE e.webhook = d.webhook \
               AND e.status = 'pending' AND (e.seq < d.seq OR (e.seq = d.seq AND e.idx < d.idx)))",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Head {
                    id: r.try_get(0)?,
                    webhook: r.try_get(1)?,
                    payload: r.try_get(4)?,
                    attempts: r.try_get::<i64, _>(5)? as u32,
                    next_attempt_at: r.try_get(6)?,
                    url: r.try_get(7)?,
                    secret: r.try_get(8)?,
                })
            })
            .collect()
    }

    async fn record(&self, head: &Head, outcome: &Outcome) -> Result<(), sqlx::Error> {
        sqlx::query(&self.sql(
            "UPDATE webhook_deliveries SET status = ?, attempts = ?, next_attempt_at = ?, \
             last_attempt_at = ?, last_status = ?, last_error = ?, delivered_at = ? WHERE id = ?",
        ))
        .bind(outcome.status)
        .bind(i64::from(head.attempts + 1))
        .bind(outcome.next_attempt_at)
        .bind(now_text())
        .bind(outcome.http_status.map(i64::from))
        .bind(outcome.error.clone())
        .bind((outcome.status == "delivered").then(now_text))
        .bind(head.id.clone())
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

fn delivery(r: &sqlx::any::AnyRow) -> Result<Delivery, sqlx::Error> {
    let status: String = r.try_get(6)?;
    let next: i64 = r.try_get(8)?;
    Ok(Delivery {
        id: r.try_get(0)?,
        webhook: r.try_get(1)?,
        seq: r.try_get::<i64, _>(2)? as u64,
        idx: r.try_get::<i64, _>(3)? as u32,
        event_type: r.try_get(4)?,
        notice: r.try_get(5)?,
        next_attempt_at: (status == "pending").then(|| timestamp::format_micros(next)),
        status,
        attempts: r.try_get::<i64, _>(7)? as u32,
        last_attempt_at: r.try_get(9)?,
        last_status: r.try_get::<Option<i64>, _>(10)?.map(|s| s as u16),
        last_error: r.try_get(11)?,
        delivered_at: r.try_get(12)?,
        created_at: r.try_get(13)?,
    })
}

/// A delivery to attempt, with where and how to send it.
struct Head {
    id: String,
    webhook: String,
    payload: String,
    attempts: u32,
    next_attempt_at: i64,
    url: String,
    secret: String,
}

struct Outcome {
    status: &'static str,
    next_attempt_at: i64,
    http_status: Option<u16>,
    error: Option<String>,
}

/// The `webhook-signature` value for one message: `v1,` and the base64 HMAC-SHA256 of
/// `ID.TIMESTAMP.BODY` keyed with the secret's bytes (base64 after `whsec_`).
pub fn signature(secret: &str, id: &str, timestamp: i64, body: &str) -> Option<String> {
    let key = BASE64.decode(secret.strip_prefix("whsec_")?).ok()?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).ok()?;
    mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
    Some(format!("v1,{}", BASE64.encode(mac.finalize().into_bytes())))
}

/// The wait before attempt `attempts + 1`, after `attempts` failed ones.
fn backoff(base: Duration, attempts: u32) -> Duration {
    let factor = 4u32.saturating_pow(attempts.saturating_sub(1));
    base.saturating_mul(factor).min(BACKOFF_CAP)
}

/// Sends queued deliveries until `stop` resolves.
pub async fn deliver(state: Arc<AppState>, stop: impl std::future::Future<Output = ()>) {
    tokio::pin!(stop);
    let client = match reqwest::Client::builder()
        .timeout(ATTEMPT_TIMEOUT)
        .user_agent(concat!("isa-ledger/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(client) => client,
        Err(e) => {
            tracing::error!(error = %e, "webhooks: no HTTP client; nothing will be delivered");
            return;
        }
    };
    loop {
        let wait = match round(&state, &client).await {
            Ok(wait) => wait,
            Err(e) => {
                tracing::error!(error = %e, "webhooks: will retry");
                Duration::from_secs(1)
            }
        };
        tokio::select! {
            _ = &mut stop => return,
            _ = state.feed.queued.notified() => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// Attempts every webhook's next due delivery, the webhooks side by side; returns how
/// long until the next one falls due (at most a second).
async fn round(state: &AppState, client: &reqwest::Client) -> Result<Duration, sqlx::Error> {
    let mut soonest = Duration::from_secs(1);
    loop {
        let now = timestamp::now_micros();
        let heads = state.webhooks.heads().await?;
        let (due, later): (Vec<Head>, Vec<Head>) =
            heads.into_iter().partition(|h| h.next_attempt_at <= now);
        for h in &later {
            let wait = Duration::from_micros((h.next_attempt_at - now).max(0) as u64);
            soonest = soonest.min(wait);
        }
        if due.is_empty() {
            return Ok(soonest);
        }
        let attempts = due.iter().map(|head| attempt(state, client, head));
        for result in futures_util::future::join_all(attempts).await {
            result?;
        }
    }
}

async fn attempt(
    state: &AppState,
    client: &reqwest::Client,
    head: &Head,
) -> Result<(), sqlx::Error> {
    let sent_at = timestamp::now_micros() / 1_000_000;
    let result = match signature(&head.secret, &head.id, sent_at, &head.payload) {
        None => Err((None, "the webhook's secret is unreadable".to_string())),
        Some(signature) => {
            let response = client
                .post(&head.url)
                .header("content-type", "application/json")
                .header("webhook-id", &head.id)
                .header("webhook-timestamp", sent_at.to_string())
                .header("webhook-signature", signature)
                .body(head.payload.clone())
                .send()
                .await;
            match response {
                Ok(r) if r.status().is_success() => Ok(r.status().as_u16()),
                Ok(r) => Err((
                    Some(r.status().as_u16()),
                    format!("the receiver answered {}", r.status()),
                )),
                // reqwest's own text names the URL, which may hold a credential.
                Err(e) if e.is_timeout() => Err((
                    None,
                    format!("no answer within {} s", ATTEMPT_TIMEOUT.as_secs()),
                )),
                Err(e) if e.is_connect() => Err((None, "could not connect".to_string())),
                Err(_) => Err((None, "the request failed".to_string())),
            }
        }
    };
    let config = &state.config;
    let attempts = head.attempts + 1;
    let outcome = match result {
        Ok(status) => Outcome {
            status: "delivered",
            next_attempt_at: 0,
            http_status: Some(status),
            error: None,
        },
        Err((http_status, error)) => {
            state.metrics.webhook_failed_attempts.inc();
            let last = attempts >= config.webhook_attempts;
            if last {
                state.metrics.webhook_failed_deliveries.inc();
            }
            tracing::warn!(webhook = %head.webhook, delivery = %head.id, attempts, %error, gave_up = last, "webhook attempt failed");
            Outcome {
                status: if last { "failed" } else { "pending" },
                next_attempt_at: timestamp::now_micros()
                    + backoff(config.webhook_backoff, attempts).as_micros() as i64,
                http_status,
                error: Some(error),
            }
        }
    };
    state.webhooks.record(head, &outcome).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_follow_the_standard_webhooks_example() {
        // The specification's own example (standard-webhooks, spec/standard-webhooks.md).
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = r#"{"test": 2432232314}"#;
        let got = signature(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body).unwrap();
        assert_eq!(got, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        assert!(signature("not-a-secret", "m", 1, body).is_none());
    }

    #[test]
    fn retries_wait_four_times_longer_each_time_up_to_a_day() {
        let base = Duration::from_secs(5);
        let waits: Vec<u64> = (1..=4).map(|a| backoff(base, a).as_secs()).collect();
        assert_eq!(waits, [5, 20, 80, 320]);
        assert_eq!(backoff(base, 30), BACKOFF_CAP);
    }
}
