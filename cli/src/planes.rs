//! `serve` (both planes in one process), `control-plane` and `data-plane`: parse, bind, run.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use tokenrouter_control_plane::{ControlPlane, MasterKey, store};
use tokenrouter_data_plane::limits::{FailMode, LimiterConfig};
use tokenrouter_data_plane::{
    CompilePolicy, DataPlaneConfig, DataPlaneState, OtlpPipeline, OtlpSettings, SnapshotKey,
    SpoolConfig, Tracing, WatchConfig,
};
use tokenrouter_data_plane::{LocalUsage, MetricLabels};
use tokio::net::TcpListener;

/// Where the control plane keeps its store and key file.
#[derive(clap::Args, Debug, Clone)]
pub struct StoreArgs {
    /// Directory for the SQLite store, the master key file and the snapshot file.
    #[arg(long, env = "TOKENROUTER_DATA_DIR", default_value_os_t = default_data_dir())]
    pub data_dir: PathBuf,
    /// Store URL: `sqlite://PATH` or `postgres://...` (default: SQLite in the data directory).
    #[arg(long, env = "TOKENROUTER_STORE", hide_env_values = true)]
    pub store: Option<String>,
}

/// HTTP side options.
#[derive(clap::Args, Debug, Clone)]
pub struct HttpArgs {
    /// Address of the OpenAI-compatible HTTP API.
    #[arg(long, env = "TOKENROUTER_HTTP_ADDR", default_value = "127.0.0.1:8080")]
    pub http_addr: SocketAddr,
    /// Largest request body accepted, in bytes (larger ones get 413).
    #[arg(long, env = "TOKENROUTER_MAX_BODY_BYTES", default_value_t = tokenrouter_data_plane::state::DEFAULT_MAX_BODY_BYTES)]
    pub max_body_bytes: usize,
    /// SSRF guard: refuse providers whose host is, or resolves to, a loopback, private or
    /// link-local address (checked at every new connection, which goes to the checked address).
    #[arg(long, env = "TOKENROUTER_DENY_PRIVATE_UPSTREAMS")]
    pub deny_private_upstreams: bool,
    /// Optional labels of the GenAI metrics on `/metrics`, comma-separated: `key` (the API key's
    /// name) and `user` (the end user, at most 1,000 distinct values). Off by default: each
    /// multiplies the number of series.
    #[arg(long, env = "TOKENROUTER_METRICS_LABELS", default_value = "", value_parser = MetricLabels::parse)]
    pub metrics_labels: MetricLabels,
    /// How long stored Responses API answers are kept for `previous_response_id` and
    /// `GET /v1/responses/{id}` (in Redis when `--redis-url` is set, else in memory, at most
    /// 10,000 there).
    #[arg(long, env = "TOKENROUTER_RESPONSES_TTL", default_value = "30d", value_parser = crate::listener_args::parse_duration)]
    pub responses_ttl: std::time::Duration,
    #[command(flatten)]
    pub limits: LimitArgs,
    #[command(flatten)]
    pub listener: crate::listener_args::ListenerArgs,
}

/// Where the limiter keeps its counters (spend control).
#[derive(clap::Args, Debug, Clone)]
pub struct LimitArgs {
    /// Redis for limits shared by several data planes (`redis://host:6379/0`); without it each
    /// data plane counts in memory.
    #[arg(long, env = "TOKENROUTER_REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,
    /// What to do while Redis cannot be reached: `local-share` (each data plane enforces its share
    /// of every limit), `fail-open` (admit) or `fail-closed` (refuse with 503).
    #[arg(long, env = "TOKENROUTER_REDIS_FAIL_MODE", default_value = "local-share", value_parser = ["local-share", "fail-open", "fail-closed"])]
    pub redis_fail_mode: String,
    /// Longest wait for one Redis call before the fail mode decides, in milliseconds.
    #[arg(long, env = "TOKENROUTER_REDIS_TIMEOUT_MS", default_value_t = 5)]
    pub redis_timeout_ms: u64,
    /// Prefix of the limiter's Redis keys.
    #[arg(long, env = "TOKENROUTER_REDIS_PREFIX", default_value = "tokenrouter:")]
    pub redis_prefix: String,
    /// Lease of a request in flight for concurrency limits, in seconds (renewed while it runs; a
    /// crashed data plane's slots free themselves after it).
    #[arg(long, env = "TOKENROUTER_LEASE_TTL_SECS", default_value_t = 30)]
    pub lease_ttl_secs: u64,
}

impl LimitArgs {
    fn config(&self) -> anyhow::Result<LimiterConfig> {
        if let Some(url) = &self.redis_url {
            tokenrouter_data_plane::limits::Limiter::check_redis_url(url)
                .map_err(anyhow::Error::msg)?;
        }
        Ok(LimiterConfig {
            redis_url: self.redis_url.clone(),
            redis_prefix: self.redis_prefix.clone(),
            fail_mode: FailMode::parse(&self.redis_fail_mode).unwrap_or_default(),
            redis_timeout: std::time::Duration::from_millis(self.redis_timeout_ms.max(1)),
            lease_ttl: std::time::Duration::from_secs(self.lease_ttl_secs.max(1)),
        })
    }
}

#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub http: HttpArgs,
    /// Address of the gRPC admin and discovery API.
    #[arg(long, env = "TOKENROUTER_GRPC_ADDR", default_value = "127.0.0.1:50051")]
    pub grpc_addr: SocketAddr,
    /// Serve gRPC on a non-loopback address without an admin token (anyone who reaches it can
    /// change the configuration and read every provider credential). Logged at every start.
    #[arg(long, env = "TOKENROUTER_ALLOW_UNAUTHENTICATED")]
    pub allow_unauthenticated: bool,
    /// Largest size of the usage spool (in the data directory), in bytes; past it the oldest
    /// records are dropped and counted.
    #[arg(long, env = "TOKENROUTER_USAGE_SPOOL_MAX_BYTES", default_value_t = tokenrouter_data_plane::DEFAULT_SPOOL_MAX_BYTES)]
    pub usage_spool_max_bytes: u64,
    /// Also run local provider simulators and register them, so it works with no keys and no network.
    #[arg(long)]
    pub demo: bool,
    #[command(flatten)]
    pub dashboard: crate::dashboard_args::DashboardArgs,
}

#[derive(clap::Args, Debug)]
pub struct ControlPlaneArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    #[arg(long, env = "TOKENROUTER_GRPC_ADDR", default_value = "127.0.0.1:50051")]
    pub grpc_addr: SocketAddr,
    /// Serve gRPC on a non-loopback address with neither an admin token nor mutual TLS (anyone
    /// who reaches it can change the configuration and read every provider credential). Logged
    /// at every start.
    #[arg(long, env = "TOKENROUTER_ALLOW_UNAUTHENTICATED")]
    pub allow_unauthenticated: bool,
    /// Serve gRPC over TLS with this certificate chain (PEM); needs `--tls-key`.
    #[arg(long, env = "TOKENROUTER_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The TLS certificate's private key (PEM).
    #[arg(long, env = "TOKENROUTER_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Mutual TLS: accept only clients (data planes, the CLI) whose certificate chains to this CA
    /// (PEM), so only real data planes receive credentials. Needs `--tls-cert`.
    #[arg(long, env = "TOKENROUTER_TLS_CLIENT_CA", requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,
    #[command(flatten)]
    pub dashboard: crate::dashboard_args::DashboardArgs,
}

impl ControlPlaneArgs {
    fn tls(&self) -> anyhow::Result<Option<tokenrouter_control_plane::ServerTls>> {
        let read =
            |p: &PathBuf| std::fs::read(p).with_context(|| format!("reading {}", p.display()));
        let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) else {
            return Ok(None);
        };
        Ok(Some(tokenrouter_control_plane::ServerTls {
            cert_pem: read(cert)?,
            key_pem: read(key)?,
            client_ca_pem: self.tls_client_ca.as_ref().map(read).transpose()?,
        }))
    }
}

#[derive(clap::Args, Debug)]
pub struct DataPlaneArgs {
    #[command(flatten)]
    pub http: HttpArgs,
    /// File keeping the last applied snapshot (sealed with AES-256-GCM), to start while the
    /// control plane is down.
    #[arg(long, env = "TOKENROUTER_SNAPSHOT_FILE")]
    pub snapshot_file: Option<PathBuf>,
    /// Directory where usage records wait while no control plane takes them (default: in the
    /// data directory, one per node id).
    #[arg(long, env = "TOKENROUTER_USAGE_SPOOL_DIR")]
    pub usage_spool_dir: Option<PathBuf>,
    /// Largest size of the usage spool, in bytes; past it the oldest records are dropped and
    /// counted (`tokenrouter_usage_dropped_total`).
    #[arg(long, env = "TOKENROUTER_USAGE_SPOOL_MAX_BYTES", default_value_t = tokenrouter_data_plane::DEFAULT_SPOOL_MAX_BYTES)]
    pub usage_spool_max_bytes: u64,
    /// Stable id reported to the control plane (default: derived from the host name and HTTP address).
    #[arg(long, env = "TOKENROUTER_NODE_ID")]
    pub node_id: Option<String>,
}

fn default_data_dir() -> PathBuf {
    match std::env::var_os("XDG_DATA_HOME").or_else(|| std::env::var_os("HOME")) {
        Some(base) if std::env::var_os("XDG_DATA_HOME").is_some() => {
            PathBuf::from(base).join("tokenrouter")
        }
        Some(home) => PathBuf::from(home).join(".local/share/tokenrouter"),
        None => PathBuf::from(".tokenrouter"),
    }
}

fn admin_token() -> Option<String> {
    std::env::var("TOKENROUTER_ADMIN_TOKEN")
        .ok()
        .filter(|t| !t.is_empty())
}

async fn open_control_plane(args: &StoreArgs) -> anyhow::Result<Arc<ControlPlane>> {
    let key = match std::env::var("TOKENROUTER_MASTER_KEY") {
        Ok(text) => MasterKey::parse(&text).context("TOKENROUTER_MASTER_KEY")?,
        Err(_) => MasterKey::load_or_create(&args.data_dir.join("master.key"))?,
    };
    let url = args.store.clone().unwrap_or_else(|| {
        format!(
            "sqlite://{}",
            args.data_dir.join("tokenrouter.db").display()
        )
    });
    let store = store::open(&url).await.context("opening the store")?;
    Ok(ControlPlane::open(store, key).await?)
}

/// Refuses a gRPC listener anyone on the network could use to rewrite the configuration and
/// watch every credential go by: a non-loopback address needs an admin token or mutual TLS,
/// unless the operator says otherwise (`--allow-unauthenticated`, logged as a warning).
fn check_exposure(
    addr: SocketAddr,
    token: bool,
    mutual_tls: bool,
    allow_unauthenticated: bool,
) -> anyhow::Result<()> {
    if addr.ip().is_loopback() || token || mutual_tls {
        return Ok(());
    }
    if allow_unauthenticated {
        tracing::warn!(%addr, "gRPC serves a non-loopback address without an admin token or mutual TLS (--allow-unauthenticated): anyone who reaches it can change the configuration and read provider credentials");
        return Ok(());
    }
    anyhow::bail!(
        "refusing to serve gRPC on {addr} without authentication: anyone who reaches it could change the configuration and read every provider credential. Set TOKENROUTER_ADMIN_TOKEN, or use mutual TLS (--tls-cert, --tls-key, --tls-client-ca), or bind to 127.0.0.1; --allow-unauthenticated overrides this"
    )
}

/// Binds the admin listener, warning when it is reachable from other machines: `/status` and
/// `/metrics` name keys, providers and breakers, and have no authentication of their own.
async fn bind_admin(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    if !addr.ip().is_loopback() {
        tracing::warn!(%addr, "the admin listener (/metrics, /status) is on a non-loopback address: keep it on a network only operators and scrapers reach");
    }
    bind(addr, "the admin endpoints").await
}

async fn bind(addr: SocketAddr, what: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} for {what}"))
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { () = ctrl_c => {}, () = term => {} }
    tracing::info!("shutting down");
}

/// Where a data plane keeps what it must not lose: its snapshot file and its usage spool.
struct Keep {
    snapshot_path: Option<PathBuf>,
    spool: SpoolConfig,
}

/// `TOKENROUTER_SNAPSHOT_KEY`, when set (else a key file beside the snapshot file is used).
fn snapshot_key() -> anyhow::Result<Option<SnapshotKey>> {
    match std::env::var("TOKENROUTER_SNAPSHOT_KEY") {
        Ok(text) if !text.is_empty() => Ok(Some(
            SnapshotKey::parse(&text).context("TOKENROUTER_SNAPSHOT_KEY")?,
        )),
        _ => Ok(None),
    }
}

/// OTLP trace export as the standard `OTEL_*` variables ask (off when no endpoint is set), named
/// `default_service` unless `OTEL_SERVICE_NAME` says otherwise.
fn start_tracing(default_service: &str) -> anyhow::Result<Option<OtlpPipeline>> {
    let Some(settings) = OtlpSettings::from_env(default_service) else {
        return Ok(None);
    };
    let pipeline = OtlpPipeline::start(&settings)?;
    tracing::info!("exporting traces over OTLP (OTEL_EXPORTER_OTLP_*)");
    Ok(Some(pipeline))
}

/// Exports the spans still queued before the process ends.
async fn stop_tracing(pipeline: Option<OtlpPipeline>) {
    if let Some(p) = pipeline {
        p.flush(std::time::Duration::from_secs(5)).await;
    }
}

fn data_plane_state(
    http: &HttpArgs,
    node_id: String,
    keep: Keep,
    local_usage: Option<LocalUsage>,
    tracing: Option<&OtlpPipeline>,
) -> anyhow::Result<Arc<DataPlaneState>> {
    Ok(DataPlaneState::new(DataPlaneConfig {
        node_id,
        snapshot_path: keep.snapshot_path,
        snapshot_key: snapshot_key()?,
        usage_spool: Some(keep.spool),
        proxy: tokenrouter_data_plane::ProxyConfig::from_env(),
        max_body_bytes: http.max_body_bytes,
        compile: CompilePolicy {
            deny_private_upstreams: http.deny_private_upstreams,
        },
        local_usage,
        limits: http.limits.config()?,
        listener: http.listener.limits(),
        drain_timeout: http.listener.drain_timeout,
        resolver: http.listener.resolver()?,
        tracing: tracing.map(Tracing::from_pipeline),
        metric_labels: http.metrics_labels,
        responses_ttl: http.responses_ttl,
        ..DataPlaneConfig::default()
    }))
}

/// Both planes in one process with the embedded store.
pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    check_exposure(
        args.grpc_addr,
        admin_token().is_some(),
        false,
        args.allow_unauthenticated,
    )?;
    let grpc = bind(args.grpc_addr, "gRPC").await?;
    let http = bind(args.http.http_addr, "HTTP").await?;
    let admin = bind_admin(args.http.listener.admin_addr).await?;
    let dashboard = args.dashboard.bind(admin_token().is_some()).await?;
    serve_on(args, grpc, http, admin, dashboard, shutdown_signal()).await
}

/// [`serve`] on listeners already bound, until `shutdown` completes (tests bind `127.0.0.1:0`).
pub async fn serve_on(
    args: ServeArgs,
    grpc: TcpListener,
    http: TcpListener,
    admin: TcpListener,
    dashboard: Option<TcpListener>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let grpc_addr = grpc.local_addr()?;
    let http_addr = http.local_addr()?;
    let admin_addr = admin.local_addr()?;
    let cp = open_control_plane(&args.store).await?;
    let otlp = start_tracing("tokenrouter")?;
    if let Some(p) = &otlp {
        cp.traces.set(p.tracer("tokenrouter-control-plane"));
    }
    crate::bootstrap::providers_from_env(&cp).await?;
    let _simulators = if args.demo {
        crate::bootstrap::demo(&cp).await?
    } else {
        Vec::new()
    };
    let env_key = std::env::var("TOKENROUTER_API_KEY")
        .ok()
        .filter(|k| !k.is_empty());
    let printed_key = crate::bootstrap::api_key(&cp, env_key, args.demo).await?;
    let token = admin_token();
    let (stop_grpc, grpc_stopped) = tokio::sync::oneshot::channel::<()>();
    let grpc_task = tokio::spawn(tokenrouter_control_plane::serve(
        grpc,
        cp.clone(),
        token.clone(),
        async {
            let _ = grpc_stopped.await;
        },
    ));
    // One process: usage goes straight to the store instead of through loopback gRPC.
    let usage_cp = cp.clone();
    let local_usage = LocalUsage(Arc::new(move |records| {
        let cp = usage_cp.clone();
        Box::pin(async move { cp.record_usage(records).await.map_err(|e| e.to_string()) })
    }));
    let keep = Keep {
        snapshot_path: Some(args.store.data_dir.join("snapshot.pb")),
        spool: SpoolConfig {
            dir: args.store.data_dir.join("usage-spool"),
            max_bytes: args.usage_spool_max_bytes,
        },
    };
    let state = data_plane_state(
        &args.http,
        "serve-local".into(),
        keep,
        Some(local_usage),
        otlp.as_ref(),
    )?;
    let dashboard = dashboard
        .map(|l| args.dashboard.start(l, cp.clone(), token.clone()))
        .transpose()?;
    let watch = WatchConfig::new(&format!("http://{grpc_addr}")).with_token(token.clone());
    eprintln!("TokenRouter is running.");
    eprintln!("  OpenAI-compatible API: http://{http_addr}/v1");
    eprintln!("  gRPC admin API:        http://{grpc_addr}");
    eprintln!("  Metrics and status:    http://{admin_addr}/metrics, /status");
    if let Some(d) = &dashboard {
        let signin = if token.is_some() {
            "sign in with TOKENROUTER_ADMIN_TOKEN"
        } else {
            "no admin token set: loopback only, no sign-in"
        };
        eprintln!("  Dashboard:             http://{}/ ({signin})", d.addr);
    }
    if let Some(key) = printed_key {
        eprintln!(
            "  API key:               {key}{}",
            if args.demo {
                " (demo key)"
            } else {
                "  (shown once; keep it)"
            }
        );
    }
    if args.demo {
        eprintln!(
            "  Demo providers (simulated answers): demo-openai, demo-anthropic, demo-gemini, demo-mistral, demo-deepseek; try gpt-4o-mini, anthropic:claude-sonnet-4-5 or auto:cost"
        );
    }
    let served =
        tokenrouter_data_plane::serve(http, Some(admin), state, Some(watch), shutdown).await;
    if let Some(d) = dashboard {
        d.stop().await;
    }
    let _ = stop_grpc.send(());
    let _ = grpc_task.await;
    stop_tracing(otlp).await;
    Ok(served?)
}

/// The control plane alone.
pub async fn control_plane(args: ControlPlaneArgs) -> anyhow::Result<()> {
    let tls = args.tls()?;
    check_exposure(
        args.grpc_addr,
        admin_token().is_some(),
        tls.as_ref().is_some_and(|t| t.client_ca_pem.is_some()),
        args.allow_unauthenticated,
    )?;
    let cp = open_control_plane(&args.store).await?;
    let otlp = start_tracing("tokenrouter-control-plane")?;
    if let Some(p) = &otlp {
        cp.traces.set(p.tracer("tokenrouter-control-plane"));
    }
    let grpc = bind(args.grpc_addr, "gRPC").await?;
    let dashboard = match args.dashboard.bind(admin_token().is_some()).await? {
        Some(l) => Some(args.dashboard.start(l, cp.clone(), admin_token())?),
        None => None,
    };
    tracing::info!(addr = %args.grpc_addr, tls = tls.is_some(), mutual_tls = tls.as_ref().is_some_and(|t| t.client_ca_pem.is_some()), dashboard = ?dashboard.as_ref().map(|d| d.addr), "control plane listening");
    let served =
        tokenrouter_control_plane::serve_with(grpc, cp, admin_token(), tls, shutdown_signal())
            .await;
    if let Some(d) = dashboard {
        d.stop().await;
    }
    stop_tracing(otlp).await;
    Ok(served?)
}

/// One data plane, fed by the control planes `connection` lists (tried in turn).
pub async fn data_plane(
    args: DataPlaneArgs,
    connection: &crate::admin::Connection,
) -> anyhow::Result<()> {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "dp".into());
    let node_id = args
        .node_id
        .clone()
        .unwrap_or_else(|| format!("{host}-{}", args.http.http_addr.port()));
    let keep = Keep {
        snapshot_path: args.snapshot_file.clone(),
        spool: SpoolConfig {
            dir: args
                .usage_spool_dir
                .clone()
                .unwrap_or_else(|| default_data_dir().join("usage-spool").join(&node_id)),
            max_bytes: args.usage_spool_max_bytes,
        },
    };
    let otlp = start_tracing("tokenrouter-data-plane")?;
    let state = data_plane_state(&args.http, node_id, keep, None, otlp.as_ref())?;
    let mut watch = WatchConfig::new(&connection.control_plane).with_token(admin_token());
    watch.tls = connection.client_tls()?;
    if watch.control_planes.is_empty() {
        anyhow::bail!("--control-plane: give at least one control plane URL");
    }
    let http = bind(args.http.http_addr, "HTTP").await?;
    let admin = bind_admin(args.http.listener.admin_addr).await?;
    tracing::info!(addr = %args.http.http_addr, admin = %args.http.listener.admin_addr, control_planes = ?watch.control_planes, "data plane listening");
    let served =
        tokenrouter_data_plane::serve(http, Some(admin), state, Some(watch), shutdown_signal())
            .await;
    stop_tracing(otlp).await;
    Ok(served?)
}

#[cfg(test)]
mod tests {
    use super::check_exposure;

    #[test]
    fn a_public_grpc_port_needs_a_token_or_mutual_tls() {
        let public = "0.0.0.0:50051".parse().unwrap();
        let local = "127.0.0.1:50051".parse().unwrap();
        assert!(check_exposure(local, false, false, false).is_ok());
        assert!(check_exposure("[::1]:50051".parse().unwrap(), false, false, false).is_ok());
        let refused = check_exposure(public, false, false, false)
            .unwrap_err()
            .to_string();
        assert!(
            refused.contains("TOKENROUTER_ADMIN_TOKEN")
                && refused.contains("--allow-unauthenticated"),
            "{refused}"
        );
        assert!(check_exposure(public, true, false, false).is_ok());
        assert!(check_exposure(public, false, true, false).is_ok());
        assert!(check_exposure(public, false, false, true).is_ok());
    }
}
