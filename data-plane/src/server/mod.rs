//! Running a data plane: the API listener (the public port: `/v1/...`, `/livez`, `/readyz`) and
//! the admin listener (`/metrics`, `/status`), each with the connection hygiene of
//! [`ListenerLimits`](crate::state::ListenerLimits), the background tasks, and the drain that
//! lets a rolling deploy lose nothing: not ready, stop accepting, finish what is in flight, flush
//! usage, exit.

mod admission;
mod cancels;
mod client_ip;
mod listener;

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::control;
use crate::control::watch::WatchConfig;
use crate::http;
use crate::server::admission::Admission;
use crate::state::DataPlaneState;
use crate::telemetry::connections::ConnectionStats;

/// Serves the API on `api` (and `/metrics`, `/status` on `admin`) until `shutdown` completes, while
/// a background task keeps the snapshot in sync with the control plane (when `watch` is given).
/// Then drains: `/readyz` answers 503, `api` stops accepting, requests and streams in flight
/// finish (up to the configured drain timeout), usage is delivered, and it returns.
pub async fn serve(
    api: TcpListener,
    admin: Option<TcpListener>,
    state: Arc<DataPlaneState>,
    watch: Option<WatchConfig>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    control::watch::start_from_file(&state);
    let reporter = watch
        .clone()
        .map(|w| tokio::spawn(control::usage_report::run(state.clone(), w)));
    let watcher = watch.map(|w| tokio::spawn(control::watch::run(state.clone(), w)));
    let discovery = tokio::spawn(control::discovery::run(state.clone()));
    let limiter = tokio::spawn(state.limiter.clone().run());
    let reasoning = tokio::spawn(state.reasoning.clone().connect());
    let responses = tokio::spawn(state.responses.clone().connect());

    let limits = state.config.listener.clone();
    let drain_timeout = state.config.drain_timeout;
    let (drain, draining) = tokio::sync::watch::channel(false);
    let api_task = tokio::spawn(listener::run(
        api,
        http::app(state.clone()),
        Admission::new(limits.clone(), state.connections.clone()),
        draining,
        drain_timeout,
    ));
    // The admin listener outlives the drain, so the last scrape still sees it.
    let (stop_admin, admin_stopped) = tokio::sync::watch::channel(false);
    let admin_task = admin.map(|admin| {
        tokio::spawn(listener::run(
            admin,
            http::admin_app(state.clone()),
            Admission::new(limits, Arc::new(ConnectionStats::default())),
            admin_stopped,
            std::time::Duration::from_secs(1),
        ))
    });

    shutdown.await;
    tracing::info!(timeout = ?drain_timeout, "draining: not ready, no new connections, finishing requests in flight");
    state.start_draining();
    let _ = drain.send(true);
    let left = api_task.await.unwrap_or(0);
    if left > 0 {
        tracing::warn!(
            connections = left,
            "closed connections still busy at the drain timeout"
        );
    }
    if let Some(task) = watcher {
        task.abort();
    }
    discovery.abort();
    limiter.abort();
    reasoning.abort();
    responses.abort();
    // Usage of the requests just served is still queued: deliver it before going.
    state.usage.stop();
    if let Some(task) = reporter
        && tokio::time::timeout(control::usage_report::FINAL_FLUSH, task)
            .await
            .is_err()
    {
        tracing::warn!("gave up delivering usage records at shutdown");
    }
    let _ = stop_admin.send(true);
    if let Some(task) = admin_task {
        let _ = task.await;
    }
    Ok(())
}
