//! TokenRouter's data plane: the OpenAI-compatible HTTP API, fed by snapshots from the control plane
//! and swapped atomically, forwarding to providers with fallback.

pub mod accounting;
pub mod auto;
pub mod catalog;
pub mod clients;
pub mod error;
pub mod extensions;
#[cfg(test)]
pub mod fixtures;
pub mod metrics;
pub mod middleware;
pub mod persist;
pub mod policy;
pub mod providers;
pub mod request;
pub mod route;
pub mod routes;
pub mod runtime;
pub mod signals;
pub mod sse;
pub mod state;
pub mod upstream;
pub mod upstream_guard;
pub mod usage;
pub mod usage_report;
pub mod watch;

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
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
    let result = axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown)
        .await;
    for task in [watcher, reporter].into_iter().flatten() {
        task.abort();
    }
    result
}
