//! The data plane's shared state: the current runtime behind `ArcSwap`, readiness and sync status.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use tokenrouter_proto::v1::Snapshot;

use crate::limits::Limiter;
use crate::providers::reasoning_cache::ReasoningCache;
use crate::responses::store::ResponseStore;
use crate::routing::availability::Availability;
use crate::signals::Signals;
use crate::snapshot::policy::RetryBudget;
use crate::snapshot::runtime::{CompileError, CompilePolicy, Runtime};
use crate::telemetry::connections::ConnectionStats;
use crate::telemetry::metrics::Metrics;
use crate::telemetry::usage_queue::UsageReporter;
use crate::upstream::clients::ClientCache;
use crate::upstream::guard::Guard;

/// Default request body limit (bytes).
pub const DEFAULT_MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// What one listener allows its clients: timeouts, HTTP/2 limits and caps. Every field is a flag
/// of `data-plane` and `serve`; the defaults are what [`Default`] gives.
#[derive(Debug, Clone)]
pub struct ListenerLimits {
    /// A request head (request line and headers) must arrive within this long; HTTP/1.1 also times
    /// the wait for the next request on a kept-alive connection with it (hyper starts the timer
    /// when it starts waiting for a head). Default 10 s.
    pub header_read_timeout: Duration,
    /// A request body must arrive within this long. Default 60 s.
    pub body_read_timeout: Duration,
    /// After the first [`BODY_RATE_GRACE`], a body must keep arriving at this many bytes per
    /// second on average (0: no minimum). Default 1024.
    pub body_min_bytes_per_sec: u64,
    /// A connection with no request in flight for this long is closed. Default 60 s.
    pub keep_alive_timeout: Duration,
    /// HTTP/2: streams one connection may have open at once. Default 128.
    pub h2_max_concurrent_streams: u32,
    /// Largest request head: HTTP/2 header list, HTTP/1.1 read buffer (past it: 431). Default 64 KiB.
    pub max_header_bytes: u32,
    /// HTTP/2 rapid-reset protection: streams a client may open and reset before the server has
    /// taken them; past it the connection is closed with `ENHANCE_YOUR_CALM`. Default 20.
    pub h2_max_pending_resets: usize,
    /// Open connections on the listener; past it a new one gets a 503 `server_overloaded` and is
    /// closed. Default 10,000.
    pub max_connections: usize,
    /// Requests in flight (streams until their last byte); past it: 503 `server_overloaded` with
    /// `Retry-After`. Default 10,000.
    pub max_requests: usize,
    /// Open connections from one client address (0: no cap). Behind a trusted proxy, the client's
    /// requests in flight, counted by its `X-Forwarded-For` address. Default 0.
    pub max_connections_per_ip: usize,
    /// Peers whose `X-Forwarded-For` is believed (a load balancer's addresses). Default none.
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

/// How long a body may take before [`ListenerLimits::body_min_bytes_per_sec`] applies.
pub const BODY_RATE_GRACE: Duration = Duration::from_secs(5);

impl Default for ListenerLimits {
    fn default() -> Self {
        ListenerLimits {
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(60),
            body_min_bytes_per_sec: 1024,
            keep_alive_timeout: Duration::from_secs(60),
            h2_max_concurrent_streams: 128,
            max_header_bytes: 64 * 1024,
            h2_max_pending_resets: 20,
            max_connections: 10_000,
            max_requests: 10_000,
            max_connections_per_ip: 0,
            trusted_proxies: Vec::new(),
        }
    }
}

/// How a data plane is set up.
#[derive(Debug, Clone)]
pub struct DataPlaneConfig {
    /// Stable id reported to the control plane.
    pub node_id: String,
    /// Where the last applied snapshot is kept (None: not persisted), sealed with AES-256-GCM.
    pub snapshot_path: Option<PathBuf>,
    /// The key sealing the snapshot file (`TOKENROUTER_SNAPSHOT_KEY`); without one, a random key
    /// is kept beside the file (`<file>.key`, owner-only).
    pub snapshot_key: Option<tokenrouter_proto::sealed::MasterKey>,
    /// The egress proxy for provider calls (`HTTPS_PROXY`, `HTTP_PROXY`, `NO_PROXY`).
    pub proxy: crate::upstream::proxy::ProxyConfig,
    /// Where usage records wait while no control plane takes them (None: memory only).
    pub usage_spool: Option<crate::telemetry::spool::SpoolConfig>,
    pub max_body_bytes: usize,
    pub compile: CompilePolicy,
    /// A streaming client that accepts nothing for this long is disconnected (and the upstream cancelled).
    pub client_stall_timeout: std::time::Duration,
    /// Set when the control plane shares the process: usage is stored directly, not over gRPC.
    pub local_usage: Option<crate::telemetry::usage_queue::LocalUsage>,
    /// Spend control: where counters live and what happens when Redis is away.
    pub limits: crate::limits::LimiterConfig,
    /// What the API listener allows its clients (the admin listener uses the same).
    pub listener: ListenerLimits,
    /// How long a stopping data plane lets requests in flight finish. Default 30 s.
    pub drain_timeout: Duration,
    /// Host names pinned to addresses (`--resolve`); others go to the system resolver.
    pub resolver: crate::upstream::guard::Resolver,
    /// Where request spans go (OTLP), when export is on.
    pub tracing: Option<crate::telemetry::trace::Tracing>,
    /// The optional labels of the GenAI metrics (key, end user): off unless asked for.
    pub metric_labels: crate::telemetry::genai::labels::MetricLabels,
    /// How long stored Responses API answers are kept (`--responses-ttl`).
    pub responses_ttl: Duration,
}

impl Default for DataPlaneConfig {
    fn default() -> Self {
        DataPlaneConfig {
            node_id: format!("dp-{}", uuid::Uuid::new_v4().simple()),
            snapshot_path: None,
            snapshot_key: None,
            usage_spool: None,
            proxy: crate::upstream::proxy::ProxyConfig::default(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            compile: CompilePolicy::default(),
            client_stall_timeout: std::time::Duration::from_secs(60),
            local_usage: None,
            limits: crate::limits::LimiterConfig::default(),
            listener: ListenerLimits::default(),
            drain_timeout: Duration::from_secs(30),
            resolver: crate::upstream::guard::Resolver::default(),
            tracing: None,
            metric_labels: Default::default(),
            responses_ttl: crate::responses::store::DEFAULT_TTL,
        }
    }
}

/// The last snapshot this data plane refused.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Nack {
    pub version: u64,
    pub error: String,
}

/// Shared by every request handler and the watch client.
#[derive(Debug)]
pub struct DataPlaneState {
    pub config: DataPlaneConfig,
    runtime: ArcSwap<Runtime>,
    ready: AtomicBool,
    draining: AtomicBool,
    connected: AtomicBool,
    last_nack: Mutex<Option<Nack>>,
    pub(crate) clients: ClientCache,
    pub metrics: Metrics,
    /// The API listener's connections, requests in flight and refusals.
    pub connections: Arc<ConnectionStats>,
    pub signals: Signals,
    pub retry_budget: RetryBudget,
    pub usage: UsageReporter,
    /// Rate, concurrency and budget limits.
    pub limiter: Arc<Limiter>,
    /// What providers really serve (discovery, upstream "model not found").
    pub availability: Availability,
    /// What answers left for later turns of their conversations (thinking blocks, signatures,
    /// reasoning), this data plane's own.
    pub reasoning: Arc<ReasoningCache>,
    /// Stored Responses API answers (`previous_response_id`, `GET`, `DELETE`): in Redis too when
    /// the limiter has one.
    pub responses: Arc<ResponseStore>,
    /// The version of each snapshot applied, for tasks that follow configuration changes.
    applied: tokio::sync::watch::Sender<u64>,
    /// When the current snapshot was swapped in (Unix milliseconds; 0 before the first).
    applied_at_ms: std::sync::atomic::AtomicU64,
}

impl DataPlaneState {
    /// The state for `config`. An invalid Redis URL (the CLI checks it first) is logged and the
    /// limiter counts in memory.
    pub fn new(config: DataPlaneConfig) -> Arc<Self> {
        let clients = ClientCache::new(
            config.proxy.clone(),
            Guard::new(
                config.resolver.clone(),
                config.compile.deny_private_upstreams,
            ),
        );
        // Shared through the limiter's Redis when there is one, so any data plane can continue a
        // conversation another one started.
        let reasoning = match &config.limits.redis_url {
            Some(url) => ReasoningCache::with_redis(
                url,
                &format!("{}reasoning:", config.limits.redis_prefix),
            )
            .unwrap_or_else(|e| {
                tracing::error!(error = %e, "reasoning cache: Redis URL refused; memory only");
                ReasoningCache::default()
            }),
            None => ReasoningCache::default(),
        };
        let ttl = config.responses_ttl;
        let responses = match &config.limits.redis_url {
            Some(url) => ResponseStore::with_redis(
                url,
                &format!("{}responses:", config.limits.redis_prefix),
                ttl,
            )
            .unwrap_or_else(|e| {
                tracing::error!(error = %e, "response store: Redis URL refused; memory only");
                ResponseStore::in_memory(ttl)
            }),
            None => ResponseStore::in_memory(ttl),
        };
        let limiter = Limiter::new(config.limits.clone()).unwrap_or_else(|e| {
            tracing::error!(error = %e, "limiter configuration refused; counting in memory");
            Limiter::in_memory(config.limits.clone())
        });
        let metrics = Metrics::with_labels(config.metric_labels);
        Arc::new(DataPlaneState {
            limiter: Arc::new(limiter),
            config,
            runtime: ArcSwap::from_pointee(Runtime::default()),
            ready: AtomicBool::new(false),
            draining: AtomicBool::new(false),
            connected: AtomicBool::new(false),
            last_nack: Mutex::new(None),
            clients,
            metrics,
            connections: Arc::default(),
            signals: Signals::default(),
            retry_budget: RetryBudget::default(),
            usage: UsageReporter::default(),
            availability: Availability::default(),
            reasoning: Arc::new(reasoning),
            responses: Arc::new(responses),
            applied: tokio::sync::watch::Sender::new(0),
            applied_at_ms: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// The runtime to use for one whole request.
    pub fn runtime(&self) -> Arc<Runtime> {
        self.runtime.load_full()
    }

    /// Compiles `snapshot` (fallible) and swaps it in (infallible). On error the old one keeps serving.
    pub fn apply(&self, snapshot: &Snapshot) -> Result<(), CompileError> {
        let current = self.runtime.load();
        if self.is_ready()
            && current.version == snapshot.version
            && current.content_hash == snapshot.content_hash
        {
            return Ok(());
        }
        // Control planes sharing a store share its epoch: one that lags (it has not heard of the
        // latest commit yet) must not take a data plane back to an older configuration.
        if self.is_ready() && current.epoch == snapshot.epoch && snapshot.version < current.version
        {
            tracing::debug!(
                offered = snapshot.version,
                serving = current.version,
                "ignored an older snapshot"
            );
            return Ok(());
        }
        match Runtime::compile(snapshot, self.config.compile, &self.clients) {
            Ok(runtime) => {
                self.runtime.store(Arc::new(runtime));
                self.ready.store(true, Ordering::Release);
                self.applied.send_replace(snapshot.version);
                self.applied_at_ms.store(
                    crate::telemetry::clock::unix_millis().max(0) as u64,
                    Ordering::Release,
                );
                tracing::info!(version = snapshot.version, "serving a new snapshot");
                Ok(())
            }
            Err(e) => {
                if let Ok(mut nack) = self.last_nack.lock() {
                    *nack = Some(Nack {
                        version: snapshot.version,
                        error: e.to_string(),
                    });
                }
                tracing::warn!(version = snapshot.version, error = %e, "refused a snapshot; keeping the current one");
                Err(e)
            }
        }
    }

    /// How long the current snapshot has been served (`None` before the first).
    pub fn snapshot_age(&self) -> Option<std::time::Duration> {
        let at = self.applied_at_ms.load(Ordering::Acquire);
        (at > 0).then(|| {
            let now = crate::telemetry::clock::unix_millis().max(0) as u64;
            std::time::Duration::from_millis(now.saturating_sub(at))
        })
    }

    /// Changes each time a snapshot is applied (its value: the version).
    pub fn snapshots_applied(&self) -> tokio::sync::watch::Receiver<u64> {
        self.applied.subscribe()
    }

    /// Ready latches on after the first applied snapshot and never turns off.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Set once a shutdown has begun: `/readyz` answers 503 so load balancers move on.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    pub(crate) fn start_draining(&self) {
        self.draining.store(true, Ordering::Release);
    }

    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    pub(crate) fn set_connected(&self, connected: bool) {
        self.connected.store(connected, Ordering::Relaxed);
    }

    pub fn last_nack(&self) -> Option<Nack> {
        self.last_nack.lock().ok().and_then(|n| n.clone())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// Two data planes in one process keep their own reasoning caches.
    #[test]
    fn states_do_not_share_the_reasoning_cache() {
        let a = DataPlaneState::new(DataPlaneConfig::default());
        let b = DataPlaneState::new(DataPlaneConfig::default());
        a.reasoning.put("call_1", json!("thinking"));
        assert_eq!(a.reasoning.get("call_1"), Some(json!("thinking")));
        assert_eq!(b.reasoning.get("call_1"), None);
    }
}
