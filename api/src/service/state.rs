//! What every request shares: the domain, the views, the access store, custodial keys;
//! and the layers every request passes: request ids and logs, the timeout, draining,
//! and authentication with its per-token rate limit.

use super::access::{AccessDb, Caller, Role};
use super::config::ServeConfig;
use super::problem::ApiError;
use crate::datadir::DataDir;
use anyhow::{anyhow, Context, Result};
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use domain::reference::Reference;
use domain::service::Domain;
use ledger::keyring::{Custody, KeyRecord};
use ledger::keys::SignerKey;
use ledger::pipeline::{Ledger, PipelineConfig};
use ledger::store::{AnyStore, LedgerStore};
use projections::{Pace, Projector, ViewDb};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct AppState {
    pub config: ServeConfig,
    pub dir: DataDir,
    pub domain: Domain<AnyStore>,
    pub projector: Projector<AnyStore>,
    pub access: AccessDb,
    /// Set once shutdown begins: writes are refused from then on.
    pub draining: AtomicBool,
    /// Set with `draining`: ends open event streams, which would otherwise hold the
    /// server open.
    pub closing: tokio::sync::watch::Sender<bool>,
    /// New notice changes, for open event streams.
    pub feed: super::delivery::Feed,
    pub webhooks: super::delivery::webhooks::WebhookDb,
    pub metrics: super::metrics::Metrics,
    signers: Mutex<HashMap<String, Arc<SignerKey>>>,
    prepared: Mutex<HashMap<String, super::routes::Waiting>>,
    callers: Mutex<HashMap<String, (Caller, Instant)>>,
    buckets: Mutex<HashMap<String, Bucket>>,
}

/// How long an authenticated token is trusted without asking the store again. Revoking
/// through this service forgets it at once; through another node, within this time.
const CALLER_TTL: Duration = Duration::from_secs(10);

impl AppState {
    pub async fn open(config: ServeConfig, dir: DataDir, url: Option<String>) -> Result<AppState> {
        let key = dir.ledger_key()?;
        let store = dir.open_store(url.as_deref()).await?;
        let ledger = Ledger::open(store, key, PipelineConfig::default()).await?;
        let domain = Domain::new(
            ledger,
            Arc::new(Reference::shipped()?),
            dir.partnership_secret()?,
        )
        .with_settings(dir.settings()?);
        let projector = open_projector(&dir, url.as_deref()).await?;
        let access = match url.as_deref() {
            Some(url) => AccessDb::postgres(url).await?,
            None => AccessDb::sqlite(&dir.access_path())
                .await
                .with_context(|| format!("opening {}", dir.access_path().display()))?,
        };
        let webhooks = super::delivery::webhooks::WebhookDb::new(&access);
        Ok(AppState {
            config,
            dir,
            domain,
            projector,
            access,
            draining: AtomicBool::new(false),
            closing: tokio::sync::watch::channel(false).0,
            feed: super::delivery::Feed::default(),
            webhooks,
            metrics: super::metrics::Metrics::default(),
            signers: Mutex::new(HashMap::new()),
            prepared: Mutex::new(HashMap::new()),
            callers: Mutex::new(HashMap::new()),
            buckets: Mutex::new(HashMap::new()),
        })
    }

    pub fn ledger(&self) -> &Ledger<AnyStore> {
        self.domain.ledger()
    }

    pub async fn first_admin_token(&self) -> Result<Option<String>> {
        if self.access.has_users().await? {
            return Ok(None);
        }
        self.access
            .create_user("admin", "operator", Role::Admin)
            .await?;
        let issued = self.access.issue_token("admin", "first start").await?;
        Ok(Some(issued.token))
    }

    /// `partner`'s current key record; a partner with none cannot act.
    pub fn current_key(&self, partner: &str) -> Result<KeyRecord, ApiError> {
        self.ledger().current_key(partner).ok_or_else(|| {
            ApiError::validation(
                "by.partner",
                format!("{partner} has no current key registered; an administrator registers one"),
            )
        })
    }

    /// The custodial key that signs for `partner`: read once, and again after the
    /// partner's key is rotated.
    pub async fn signer(&self, partner: &str) -> Result<Arc<SignerKey>, ApiError> {
        let current = self.current_key(partner)?;
        match current.custody {
            Custody::PartnerHeld => {
                return Err(ApiError::validation(
                    "by.partner",
                    format!("{partner} holds its own key, so this service cannot sign for it: POST the command to /v1/commands/prepare, sign each entry and POST the signatures to the address it gives"),
                ))
            }
            Custody::Custodial => {
                if let Some(key) = lock(&self.signers)
                    .get(partner)
                    .filter(|k| k.verifier().id_hex() == current.key_id)
                {
                    return Ok(key.clone());
                }
            }
        }
        let key = crate::commands::keys::custodial_key(&self.dir, self.ledger(), partner, false)
            .await
            .map_err(|e| ApiError::Forbidden(format!("cannot sign for {partner}: {e}")))?;
        let key = Arc::new(key);
        lock(&self.signers).insert(partner.to_string(), key.clone());
        Ok(key)
    }

    /// Keeps a prepared command for its partner to sign; expired ones are dropped first,
    /// and at the limit the one expiring soonest.
    pub fn hold_prepared(&self, id: String, waiting: super::routes::Waiting) {
        let mut held = lock(&self.prepared);
        let now = Instant::now();
        held.retain(|_, w| w.expires > now);
        if held.len() >= super::routes::PREPARED_LIMIT {
            if let Some(oldest) = held
                .iter()
                .min_by_key(|(_, w)| w.expires)
                .map(|(id, _)| id.clone())
            {
                held.remove(&oldest);
            }
        }
        held.insert(id, waiting);
    }

    /// Takes a prepared command out while it is being committed, if it has not expired.
    pub fn take_prepared(&self, id: &str) -> Option<super::routes::Waiting> {
        lock(&self.prepared)
            .remove(id)
            .filter(|w| w.expires > Instant::now())
    }

    pub fn forget_callers(&self) {
        lock(&self.callers).clear();
    }

    async fn authenticate(&self, token: &str) -> Result<Caller, ApiError> {
        let hash = super::access::token_hash(token);
        if let Some((caller, at)) = lock(&self.callers).get(&hash) {
            if at.elapsed() < CALLER_TTL {
                return Ok(caller.clone());
            }
        }
        let caller = self
            .access
            .authenticate(token)
            .await?
            .ok_or(ApiError::Unauthenticated)?;
        lock(&self.callers).insert(hash, (caller.clone(), Instant::now()));
        Ok(caller)
    }

    /// The caller a calendar-feed token belongs to, admitted by its rate limit.
    pub async fn calendar_caller(&self, token: &str) -> Result<Caller, ApiError> {
        let caller = self
            .access
            .authenticate_calendar(token)
            .await?
            .ok_or(ApiError::Unauthenticated)?;
        self.admit(&caller.token_id)?;
        tracing::Span::current().record("token", caller.token_id.as_str());
        Ok(caller)
    }

    /// Takes one request from the token's bucket.
    fn admit(&self, token_id: &str) -> Result<(), ApiError> {
        let rate = f64::from(self.config.rate_limit);
        let burst = f64::from(self.config.rate_burst);
        let mut buckets = lock(&self.buckets);
        let bucket = buckets.entry(token_id.to_string()).or_insert(Bucket {
            tokens: burst,
            at: Instant::now(),
        });
        let now = Instant::now();
        bucket.tokens =
            (bucket.tokens + now.duration_since(bucket.at).as_secs_f64() * rate).min(burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(ApiError::RateLimited {
                retry_after: ((1.0 - bucket.tokens) / rate).ceil().max(1.0) as u64,
            })
        }
    }
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// A poisoned lock only means another request panicked while holding it; the maps
/// hold caches whose entries are each whole, so carry on with them.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

async fn open_projector(dir: &DataDir, url: Option<&str>) -> Result<Projector<AnyStore>> {
    let store = dir.open_store(url).await?;
    let chain = store
        .sole_chain()
        .await?
        .ok_or_else(|| anyhow!("there is no log here yet"))?;
    let views = match url {
        Some(url) => ViewDb::postgres(url).await?,
        None => ViewDb::sqlite(&dir.views_path()).await?,
    };
    Ok(Projector::open(
        store,
        &chain.origin,
        views,
        dir.settings()?,
        Pace::default(),
    )
    .await?)
}

impl FromRequestParts<Arc<AppState>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Caller, ApiError> {
        let header = parts
            .headers
            .get(header::AUTHORIZATION)
            .ok_or(ApiError::Unauthenticated)?;
        let token = header
            .to_str()
            .ok()
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(ApiError::Unauthenticated)?;
        let caller = state.authenticate(token).await?;
        state.admit(&caller.token_id)?;
        // The token's id (never the token) goes into the request's log line.
        tracing::Span::current().record("token", caller.token_id.as_str());
        Ok(caller)
    }
}

/// Refuses writes once draining, and bounds every request's time.
pub async fn guard(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let writes = !matches!(*request.method(), Method::GET | Method::HEAD);
    if writes && state.draining.load(Ordering::SeqCst) {
        return ApiError::Unavailable(
            "the service is shutting down; retry with the same Idempotency-Key".into(),
        )
        .into_response();
    }
    match tokio::time::timeout(state.config.request_timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::Unavailable(format!(
            "the request took longer than {} s and was abandoned; a write may still have been recorded, so retry with the same Idempotency-Key",
            state.config.request_timeout.as_secs()
        ))
        .into_response(),
    }
}

static REQUEST_IDS: AtomicU64 = AtomicU64::new(1);

/// Gives each request an id (echoed as `X-Request-Id`), logs it (method, route, status,
/// time, token id; never the token, the query string or the body) and counts it in the
/// metrics by route template.
pub async fn trace_request(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let id = format!(
        "req-{:x}-{}",
        std::process::id(),
        REQUEST_IDS.fetch_add(1, Ordering::Relaxed)
    );
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or_else(
            || request.uri().path().to_string(),
            |p| p.as_str().to_string(),
        );
    let method = request.method().clone();
    let span = tracing::info_span!("request", id = %id, %method, route = %route, token = tracing::field::Empty);
    let started = Instant::now();
    let mut response = {
        use tracing::Instrument;
        next.run(request).instrument(span.clone()).await
    };
    let status = response.status().as_u16();
    state
        .metrics
        .observe(method.as_str(), &route, status, started.elapsed());
    span.in_scope(|| {
        tracing::info!(
            status,
            ms = started.elapsed().as_secs_f64() * 1e3,
            "handled"
        );
    });
    if let Ok(v) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", v);
    }
    response
}
