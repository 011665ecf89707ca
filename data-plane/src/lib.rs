//! TokenRouter's data plane: the OpenAI-compatible HTTP API, fed by snapshots from the control plane
//! and swapped atomically, forwarding to providers with fallback.

pub mod accounting;
pub mod auto;
pub mod availability;
pub mod catalog;
pub mod clients;
pub mod discovery;
pub mod error;
pub mod extensions;
#[cfg(test)]
pub mod fixtures;
pub mod ids;
pub mod limits;
pub mod metrics;
pub mod middleware;
pub mod persist;
pub mod plan;
pub mod policy;
pub mod provider_rt;
pub mod providers;
pub mod request;
pub mod route;
pub mod routes;
pub mod runtime;
pub mod signals;
pub mod sse;
pub mod state;
pub mod upstream;
pub mod upstream_error;
pub mod upstream_guard;
pub mod usage;
pub mod usage_queue;
pub mod usage_report;
pub mod watch;

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use tokio::net::TcpListener;

pub use error::ApiError;
pub use runtime::{CompilePolicy, Runtime};
pub use state::{DataPlaneConfig, DataPlaneState};
pub use watch::WatchConfig;

/// The HTTP application, testable without a network.
pub fn app(state: Arc<DataPlaneState>) -> Router {
    let api = Router::new()
        .route("/v1/chat/completions", post(routes::chat::completions))
        .route("/v1/models", get(routes::models::list))
        .route("/v1/models/{*id}", get(routes::models::get))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::authenticate,
        ));
    Router::new()
        .merge(api)
        .route("/livez", get(routes::health::livez))
        .route("/readyz", get(routes::health::readyz))
        .route("/status", get(routes::health::status))
        .route("/metrics", get(routes::health::metrics))
        .fallback(routes::unknown_route)
        .method_not_allowed_fallback(routes::wrong_method)
        .layer(axum::middleware::from_fn(middleware::request_id))
        .with_state(state)
}

/// Serves the API on `listener` until `shutdown` completes, while a background task keeps the
/// snapshot in sync with the control plane (when `watch` is given).
pub async fn serve(
    listener: TcpListener,
    state: Arc<DataPlaneState>,
    watch: Option<WatchConfig>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    watch::start_from_file(&state);
    let reporter = watch
        .clone()
        .map(|w| tokio::spawn(usage_report::run(state.clone(), w)));
    let watcher = watch.map(|w| tokio::spawn(watch::run(state.clone(), w)));
    let discovery = tokio::spawn(discovery::run(state.clone()));
    let limiter = tokio::spawn(state.limiter.clone().run());
    // Without TCP_NODELAY, Nagle holds each small SSE chunk written after the response head until
    // the client ACKs (its delayed ACK: ~40 ms), which added ~45 ms to time-to-first-token.
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
    });
    let state_for_shutdown = state.clone();
    let result = axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown)
        .await;
    if let Some(task) = watcher {
        task.abort();
    }
    discovery.abort();
    limiter.abort();
    // Usage of the requests just served is still queued: deliver it before going.
    state_for_shutdown.usage.stop();
    if let Some(task) = reporter
        && tokio::time::timeout(usage_report::FINAL_FLUSH, task)
            .await
            .is_err()
    {
        tracing::warn!("gave up delivering usage records at shutdown");
    }
    result
}
