//! Spend control: requests and tokens per minute, requests in flight and USD budgets, for a key,
//! for each end user under it and for model globs under it. Every applicable limit must pass.
//!
//! * `config` compiles a key's limits from the snapshot; `check` turns one request into its
//!   checks and answers (grant with the most restrictive quotas, or a refusal naming the limit).
//! * `memory` keeps counters in this process (one data plane); `shared` keeps them in Redis
//!   (several), one atomic script call at admission and one at the end.
//! * Admission reserves the prompt estimate plus `max_tokens` (or [`DEFAULT_OUTPUT_CAP`]) and its
//!   price; settling reconciles with the real usage. A refused request touches no counter.
//! * `decisions` counts refusals (by scope and limit) and fail-mode decisions for `/metrics`.
//! * Redis away: the configured [`FailMode`]; `local-share` enforces each limit divided by the
//!   number of data planes the control plane sees. Redis is skipped for [`RETRY_REDIS_AFTER`]
//!   after a failed call, so no request waits on it more than once per interval.

mod check;
mod config;
mod decisions;
mod memory;
mod shared;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use check::{Demand, Grant, Quota};
pub use config::KeyLimits;

use check::Check;
use memory::Memory;
use shared::Shared;

use crate::error::ApiError;

/// Output tokens reserved when a request sets no `max_tokens` (capped by the model's own limit).
pub const DEFAULT_OUTPUT_CAP: u64 = 4096;
/// After a failed Redis call, how long requests use the fail mode before Redis is tried again.
pub const RETRY_REDIS_AFTER: Duration = Duration::from_secs(1);

/// What a data plane does while Redis cannot be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FailMode {
    /// Admit everything (limits are not enforced).
    FailOpen,
    /// Refuse every limited request with 503.
    FailClosed,
    /// Enforce each limit divided by the number of data planes, in memory.
    #[default]
    LocalShare,
}

impl FailMode {
    pub fn parse(text: &str) -> Option<FailMode> {
        Some(match text {
            "fail-open" => FailMode::FailOpen,
            "fail-closed" => FailMode::FailClosed,
            "local-share" => FailMode::LocalShare,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            FailMode::FailOpen => "fail-open",
            FailMode::FailClosed => "fail-closed",
            FailMode::LocalShare => "local-share",
        }
    }
}

/// How the limiter is set up.
#[derive(Debug, Clone)]
pub struct LimiterConfig {
    /// Shared counters in Redis (several data planes); `None` keeps them in memory.
    pub redis_url: Option<String>,
    /// Prefix of every Redis key (lets tests and deployments share one Redis).
    pub redis_prefix: String,
    pub fail_mode: FailMode,
    /// Longest wait for one Redis call.
    pub redis_timeout: Duration,
    /// Lease of a request in flight; renewed while it runs, so a crashed data plane's slots free
    /// themselves after it.
    pub lease_ttl: Duration,
}

impl Default for LimiterConfig {
    fn default() -> Self {
        LimiterConfig {
            redis_url: None,
            redis_prefix: "tokenrouter:".into(),
            fail_mode: FailMode::default(),
            redis_timeout: Duration::from_millis(5),
            lease_ttl: Duration::from_secs(30),
        }
    }
}

/// Where a reservation was made, so it is settled in the same place.
#[derive(Debug)]
enum Backend {
    Memory { share: u64 },
    Redis { windows: Vec<i64> },
}

/// An admitted request's hold on its limits, settled once when the request ends.
#[derive(Debug)]
pub struct Reservation {
    id: String,
    checks: Vec<Check>,
    reserved: Demand,
    backend: Backend,
    settled: AtomicBool,
}

/// The outcome of admission for a request that may proceed.
#[derive(Debug, Default)]
pub struct Admission {
    /// `None` when no limit applies (or fail-open let it through).
    pub reservation: Option<Arc<Reservation>>,
    pub grant: Grant,
}

/// The data plane's limiter.
#[derive(Debug)]
pub struct Limiter {
    config: LimiterConfig,
    memory: Memory,
    shared: Option<Shared>,
    /// Data planes the control plane sees, for `local-share` (at least 1).
    peers: AtomicU64,
    /// Monotonic ms before which Redis is not tried (after a failure).
    skip_redis_until: AtomicU64,
    /// Refusals, and requests decided by the fail mode because Redis could not answer.
    pub decisions: decisions::Decisions,
    epoch: tokio::time::Instant,
    /// Redis reservations with leases, renewed while in flight.
    live: Mutex<HashMap<String, Arc<Reservation>>>,
}

impl Limiter {
    /// A limiter; with a Redis URL it starts unconnected ([`Limiter::run`] connects).
    pub fn new(config: LimiterConfig) -> Result<Limiter, String> {
        let shared = match &config.redis_url {
            Some(url) => Some(
                Shared::new(
                    url,
                    &config.redis_prefix,
                    config.redis_timeout,
                    config.lease_ttl,
                )
                .map_err(|e| format!("invalid Redis URL: {e}"))?,
            ),
            None => None,
        };
        Ok(Limiter {
            shared,
            ..Limiter::in_memory(config)
        })
    }

    /// A limiter counting in this process only, whatever `config` says about Redis.
    pub fn in_memory(config: LimiterConfig) -> Limiter {
        Limiter {
            config,
            memory: Memory::default(),
            shared: None,
            peers: AtomicU64::new(1),
            skip_redis_until: AtomicU64::new(0),
            decisions: decisions::Decisions::default(),
            epoch: tokio::time::Instant::now(),
            live: Mutex::new(HashMap::new()),
        }
    }

    /// Checks a Redis URL the way [`Limiter::new`] will read it.
    pub fn check_redis_url(url: &str) -> Result<(), String> {
        redis::Client::open(url)
            .map(drop)
            .map_err(|e| format!("invalid Redis URL: {e}"))
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Sets how many data planes share the limits (from the control plane).
    pub fn set_peers(&self, n: u64) {
        self.peers.store(n.max(1), Ordering::Relaxed);
    }

    /// Whether decisions currently come from the fail mode instead of Redis.
    pub fn is_degraded(&self) -> bool {
        self.shared.as_ref().is_some_and(|s| {
            !s.is_connected() || self.now_ms() < self.skip_redis_until.load(Ordering::Relaxed)
        })
    }

    /// Admits a request of `key` (by name) with `limits` for `user` and the requested `model`,
    /// reserving `demand`; a refusal is the client's 429 (or 503 when failing closed).
    pub async fn admit(
        &self,
        request_id: &str,
        key: &str,
        limits: Option<&KeyLimits>,
        user: Option<&str>,
        model: &str,
        demand: Demand,
    ) -> Result<Admission, ApiError> {
        let Some(limits) = limits else {
            return Ok(Admission::default());
        };
        let unix_now = crate::telemetry::clock::unix_millis();
        let checks = check::checks(key, limits, user, model, unix_now);
        if checks.is_empty() {
            return Ok(Admission::default());
        }
        if let Some(shared) = &self.shared
            && !self.is_degraded()
        {
            match shared.admit(request_id, &checks, &demand).await {
                Ok(Ok(admitted)) => {
                    let leases = checks.iter().any(|c| c.rule.max_concurrent > 0);
                    let reservation = Arc::new(Reservation {
                        id: request_id.to_string(),
                        checks,
                        reserved: demand,
                        backend: Backend::Redis {
                            windows: admitted.windows,
                        },
                        settled: AtomicBool::new(false),
                    });
                    if leases && let Ok(mut live) = self.live.lock() {
                        live.insert(reservation.id.clone(), reservation.clone());
                    }
                    return Ok(Admission {
                        reservation: Some(reservation),
                        grant: admitted.grant,
                    });
                }
                Ok(Err(refusal)) => {
                    self.decisions.refused(&checks, &refusal);
                    return Err(refusal.to_api_error(&checks));
                }
                Err(e) => {
                    self.skip_redis_until.store(
                        self.now_ms() + RETRY_REDIS_AFTER.as_millis() as u64,
                        Ordering::Relaxed,
                    );
                    tracing::warn!(error = %e, mode = self.config.fail_mode.as_str(), "the limiter cannot reach Redis; using its fail mode");
                }
            }
        }
        let share = if self.shared.is_some() {
            self.decisions.degraded(self.config.fail_mode);
            match self.config.fail_mode {
                FailMode::FailOpen => return Ok(Admission::default()),
                FailMode::FailClosed => {
                    return Err(ApiError::unavailable(
                        "The rate limiter's shared store is unavailable and this gateway fails closed; retry shortly.",
                    ));
                }
                FailMode::LocalShare => self.peers.load(Ordering::Relaxed),
            }
        } else {
            1
        };
        match self.memory.admit(&checks, &demand, share, self.now_ms()) {
            Ok(grant) => Ok(Admission {
                reservation: Some(Arc::new(Reservation {
                    id: request_id.to_string(),
                    checks,
                    reserved: demand,
                    backend: Backend::Memory { share },
                    settled: AtomicBool::new(false),
                })),
                grant,
            }),
            Err(refusal) => {
                self.decisions.refused(&checks, &refusal);
                Err(refusal.to_api_error(&checks))
            }
        }
    }

    /// Reconciles a reservation with what the request used and frees its slot. Only the first
    /// call for a reservation counts.
    pub fn settle(self: &Arc<Self>, r: &Arc<Reservation>, used: Demand) {
        if r.settled.swap(true, Ordering::AcqRel) {
            return;
        }
        match &r.backend {
            Backend::Memory { share } => self.memory.settle(&r.checks, &r.reserved, &used, *share),
            Backend::Redis { .. } => {
                if let Ok(mut live) = self.live.lock() {
                    live.remove(&r.id);
                }
                let limiter = self.clone();
                let r = r.clone();
                tokio::spawn(async move {
                    let (Some(shared), Backend::Redis { windows }) = (&limiter.shared, &r.backend)
                    else {
                        return;
                    };
                    // A slower bound than admission: nobody waits on it, and a lost settle
                    // leaves a lease until its TTL and the reservation charged.
                    for _ in 0..3 {
                        match shared
                            .settle(&r.id, &r.checks, windows, &r.reserved, &used)
                            .await
                        {
                            Ok(()) => return,
                            Err(e) => {
                                tracing::debug!(error = %e, "settling a reservation failed; retrying")
                            }
                        }
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    tracing::warn!(
                        "could not settle a reservation in Redis; its lease expires by itself"
                    );
                });
            }
        }
    }

    /// Connects to Redis (retrying) and renews the leases of requests in flight, until dropped.
    pub async fn run(self: Arc<Self>) {
        let Some(shared) = &self.shared else { return };
        let renew_every = (shared.lease_ttl() / 3).max(Duration::from_millis(100));
        let mut next_renewal = tokio::time::Instant::now() + renew_every;
        loop {
            if !shared.is_connected()
                && let Err(e) = shared.connect().await
            {
                tracing::warn!(error = %e, "cannot connect to Redis for the limiter; retrying");
            }
            if tokio::time::Instant::now() >= next_renewal {
                next_renewal += renew_every;
                let live: Vec<Arc<Reservation>> = self
                    .live
                    .lock()
                    .map(|l| l.values().cloned().collect())
                    .unwrap_or_default();
                for r in live {
                    if let Err(e) = shared.renew(&r.id, &r.checks).await {
                        tracing::debug!(error = %e, "renewing a lease failed");
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(200).min(renew_every)).await;
        }
    }

    /// For `/status`.
    pub fn status(&self) -> serde_json::Value {
        serde_json::json!({
            "backend": if self.shared.is_some() { "redis" } else { "memory" },
            "fail_mode": self.config.fail_mode.as_str(),
            "degraded": self.is_degraded(),
            "degraded_decisions": self.decisions.degraded_total(),
            "data_planes": self.peers.load(Ordering::Relaxed),
        })
    }
}

/// OpenAI's `x-ratelimit-*` headers for the most restrictive request and token limits. The names
/// are static: formatting and parsing them per request cost ~11k instructions.
pub fn headers(grant: &Grant, h: &mut axum::http::HeaderMap) {
    use axum::http::{HeaderName, HeaderValue};
    use tokenrouter_proto::limits::format_reset;
    const NAMES: [[&str; 3]; 2] = [
        [
            "x-ratelimit-limit-requests",
            "x-ratelimit-remaining-requests",
            "x-ratelimit-reset-requests",
        ],
        [
            "x-ratelimit-limit-tokens",
            "x-ratelimit-remaining-tokens",
            "x-ratelimit-reset-tokens",
        ],
    ];
    for (quota, [limit, remaining, reset]) in [grant.requests, grant.tokens].into_iter().zip(NAMES)
    {
        let Some(q) = quota else { continue };
        h.insert(HeaderName::from_static(limit), HeaderValue::from(q.limit));
        h.insert(
            HeaderName::from_static(remaining),
            HeaderValue::from(q.remaining),
        );
        if let Ok(v) = HeaderValue::try_from(format_reset(Duration::from_millis(q.reset_ms))) {
            h.insert(HeaderName::from_static(reset), v);
        }
    }
}
