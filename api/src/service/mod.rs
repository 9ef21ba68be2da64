//! The HTTP service, `isa-ledger serve`: the REST API (v1) over the domain, the views
//! and the ledger, behind bearer tokens and one authorisation decision
//! ([`access::decide`]).
//!
//! [`Application::build`] opens everything and binds the port (0 picks a free one, as
//! the tests do); [`Application::run_until_stopped`] serves until the shutdown future
//! resolves, then drains: writes already accepted are committed and answered, new ones
//! get 503, and the views' follower stops last.

pub mod access;
pub mod config;
pub(crate) mod delivery;
pub(crate) mod metrics;
mod openapi;
mod oversized;
pub mod problem;
mod routes;
mod state;

use crate::datadir::DataDir;
use anyhow::{Context, Result};
use axum::extract::DefaultBodyLimit;
use axum::Router;
use state::AppState;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::net::TcpListener;

pub use config::ServeConfig;

pub struct Application {
    listener: TcpListener,
    port: u16,
    state: Arc<AppState>,
}

impl Application {
    /// Opens the log, the views and the access store of `dir` (or of the PostgreSQL
    /// database at `url`) and binds `config.listen`.
    pub async fn build(
        config: ServeConfig,
        dir: DataDir,
        url: Option<String>,
    ) -> Result<Application> {
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let port = listener.local_addr()?.port();
        let state = Arc::new(AppState::open(config, dir, url).await?);
        Ok(Application {
            listener,
            port,
            state,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Issues the first administrator's token if there are no users yet: shown once,
    /// stored only as a hash.
    pub async fn first_admin_token(&self) -> Result<Option<String>> {
        self.state.first_admin_token().await
    }

    pub async fn run_until_stopped(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<()> {
        let state = self.state.clone();
        let (stop_views, views_stopped) = tokio::sync::oneshot::channel::<()>();
        let follower = {
            let state = state.clone();
            tokio::spawn(async move {
                state
                    .projector
                    .run(async {
                        let _ = views_stopped.await;
                    })
                    .await;
            })
        };
        // The notice feed and the webhook sender stop when the server has drained.
        let (stop_delivery, delivery_stopped) = tokio::sync::watch::channel(false);
        let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|stop| *stop).await;
        };
        let feed = tokio::spawn(delivery::follow(
            state.clone(),
            stopped(delivery_stopped.clone()),
        ));
        let sender = tokio::spawn(delivery::webhooks::deliver(
            state.clone(),
            stopped(delivery_stopped),
        ));
        let draining = state.clone();
        let app = router(state.clone());
        axum::serve(self.listener, app)
            .with_graceful_shutdown(async move {
                shutdown.await;
                // From here new writes are refused; requests in flight finish.
                draining.draining.store(true, Ordering::SeqCst);
                draining.closing.send_replace(true);
                tracing::info!("shutting down: finishing requests in flight");
            })
            .await
            .context("the HTTP server failed")?;
        let _ = stop_delivery.send(true);
        let _ = feed.await;
        let _ = sender.await;
        let _ = stop_views.send(());
        let _ = follower.await;
        tracing::info!("stopped");
        Ok(())
    }
}

fn router(state: Arc<AppState>) -> Router {
    let body_limit = state.config.body_limit;
    routes::router()
        // Inside the guard: refused in shutdown, bounded by the request timeout.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            oversized::refuse_oversized,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            state::guard,
        ))
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            problem::problem_for_bare_errors,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            state::trace_request,
        ))
        .with_state(state)
}
