//! The dashboard's options (`serve` and `control-plane`) and starting it beside the gRPC server:
//! its listener (refused off loopback without an admin token), the app, and retention pruning.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokenrouter_control_plane::ControlPlane;
use tokenrouter_control_plane::dashboard::{self, DashboardConfig, retention};
use tokio::net::TcpListener;

use crate::listener_args::parse_duration;

/// Dashboard options.
#[derive(clap::Args, Debug, Clone)]
pub struct DashboardArgs {
    /// Address of the dashboard (the web page and its JSON API under /api/). Without an admin
    /// token it must be a loopback address.
    #[arg(
        long,
        env = "TOKENROUTER_DASHBOARD_ADDR",
        default_value = "127.0.0.1:8090"
    )]
    pub dashboard_addr: SocketAddr,
    /// Do not serve the dashboard.
    #[arg(long, env = "TOKENROUTER_NO_DASHBOARD")]
    pub no_dashboard: bool,
    /// How long usage records are kept (their rollups: minutes as long, hours and days a year).
    #[arg(long, env = "TOKENROUTER_USAGE_RETENTION", default_value = "30d", value_parser = parse_duration)]
    pub usage_retention: Duration,
    /// How long the bodies of keys that log them (`keys log-bodies NAME on`) are kept.
    #[arg(long, env = "TOKENROUTER_BODY_RETENTION", default_value = "7d", value_parser = parse_duration)]
    pub body_retention: Duration,
}

/// A running dashboard: its address and how to stop it.
pub struct Running {
    pub addr: SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    pruning: tokio::task::JoinHandle<()>,
}

impl Running {
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
        self.pruning.abort();
    }
}

impl DashboardArgs {
    /// Binds the dashboard's listener (unless it is off), refusing a non-loopback one without
    /// an admin token: the page can create keys and shows every request.
    pub async fn bind(&self, token: bool) -> anyhow::Result<Option<TcpListener>> {
        if self.no_dashboard {
            return Ok(None);
        }
        let addr = self.dashboard_addr;
        if !addr.ip().is_loopback() && !token {
            anyhow::bail!(
                "refusing to serve the dashboard on {addr} without an admin token: anyone who reaches it could read every request and create API keys. Set TOKENROUTER_ADMIN_TOKEN, or bind it to 127.0.0.1, or pass --no-dashboard"
            );
        }
        Ok(Some(TcpListener::bind(addr).await.with_context(|| {
            format!("binding the dashboard to {addr}")
        })?))
    }

    /// Starts the dashboard on `listener` and the retention pruning.
    pub fn start(
        &self,
        listener: TcpListener,
        cp: Arc<ControlPlane>,
        admin_token: Option<String>,
    ) -> anyhow::Result<Running> {
        let addr = listener.local_addr()?;
        let keep = retention::Retention {
            records: self.usage_retention,
            minute_rollups: self.usage_retention,
            bodies: self.body_retention,
            ..retention::Retention::default()
        };
        let pruning = tokio::spawn(retention::run(cp.store(), keep));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(dashboard::serve(
            listener,
            cp,
            DashboardConfig { admin_token },
            async {
                let _ = stopped.await;
            },
        ));
        Ok(Running {
            addr,
            stop,
            task,
            pruning,
        })
    }
}
