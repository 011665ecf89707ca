//! The operator dashboard, served by the control plane over HTTP (`--dashboard-addr`): the
//! single-page app in `control-plane/dashboard/`, embedded in the binary (no Node at run time, no
//! CDN), and the JSON API under `/api/` that the page and scripts use. It reads rollups for its
//! charts and tables and pages of records for its log, every query bounded in time and rows, and
//! runs the retention pruning. It shares the control plane's store and never touches the data
//! planes' traffic.

#[cfg(test)]
mod accounts_tests;
mod api;
mod assets;
pub mod auth;
mod fleet_api;
mod keys_api;
mod query;
pub mod retention;
#[cfg(test)]
mod tests;
mod usage_api;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post, put};

use crate::AdminService;
use crate::state::ControlPlane;
use crate::store::Store;

/// How the dashboard is set up.
#[derive(Debug, Clone, Default)]
pub struct DashboardConfig {
    /// The admin token (`TOKENROUTER_ADMIN_TOKEN`): sign-in with it; none means open, on
    /// loopback only.
    pub admin_token: Option<String>,
}

/// What every dashboard handler shares.
pub struct Dashboard {
    pub(crate) cp: Arc<ControlPlane>,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) admin: AdminService,
    pub(crate) auth: auth::Auth,
}

/// The dashboard's HTTP application.
pub fn app(cp: Arc<ControlPlane>, config: DashboardConfig) -> Router {
    let dashboard = Arc::new(Dashboard {
        store: cp.store(),
        admin: AdminService::new(cp.clone()),
        cp,
        auth: auth::Auth::new(config.admin_token),
    });
    Router::new()
        .route("/api/me", get(api::me))
        .route("/api/session", post(api::sign_in).delete(api::sign_out))
        .route("/api/overview", get(usage_api::overview))
        .route("/api/breakdown", get(usage_api::breakdown))
        .route("/api/requests", get(usage_api::requests))
        .route("/api/requests/{id}", get(usage_api::request))
        .route("/api/providers", get(fleet_api::providers))
        .route("/api/keys", get(keys_api::keys).post(keys_api::create_key))
        .route("/api/keys/{name}/disable", post(keys_api::disable_key))
        .route("/api/keys/{name}/enable", post(keys_api::enable_key))
        .route("/api/keys/{name}/limits", put(keys_api::set_limits))
        .route("/api/keys/{name}/log-bodies", put(keys_api::set_log_bodies))
        .route("/api/config", get(fleet_api::config))
        .fallback(assets::serve)
        .layer(axum::extract::DefaultBodyLimit::max(64 * 1024))
        .with_state(dashboard)
}

/// Serves the dashboard on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    cp: Arc<ControlPlane>,
    config: DashboardConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app(cp, config))
        .with_graceful_shutdown(shutdown)
        .await
}
