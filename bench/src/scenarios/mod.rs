//! The scenarios of a run, and what they share: the options, the started processes, and the
//! per-route suite (throughput and CPU per request, latency at one connection and at a fixed rate,
//! time to first token) that compares TokenRouter with the baselines measured in the same run.

pub mod endpoints;
pub mod limits;
pub mod memory;
pub mod otlp;
pub mod propagation;
pub mod streaming;
pub mod suite;
pub mod swaps;
pub mod translated;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::client::Target;
use crate::load::{self, Kind};
use crate::procs::Proc;
use crate::report::Report;
use crate::stack::{Bins, CLIENT_KEY, Gateway, Sim};

/// What a run does and for how long.
#[derive(Debug, Clone, clap::Args)]
pub struct Opts {
    /// Seconds per measured point.
    #[arg(long, default_value_t = 8.0)]
    pub secs: f64,
    /// Connections of the closed-loop throughput points.
    #[arg(long, default_value_t = 16)]
    pub conns: usize,
    /// Requests per second of the open-loop latency point.
    #[arg(long, default_value_t = 1000.0)]
    pub rate: f64,
    /// Concurrent streams of the memory point.
    #[arg(long, default_value_t = 1000)]
    pub streams: usize,
    /// Length of the soak in seconds.
    #[arg(long, default_value_t = 600)]
    pub soak_secs: u64,
    /// Non-streaming requests per second during the soak (16 streams run beside them).
    #[arg(long, default_value_t = 300.0)]
    pub soak_rate: f64,
    /// Seconds of load for each phase (steady, then swapping every 100 ms) of the swap point.
    #[arg(long, default_value_t = 10.0)]
    pub swap_secs: f64,
    /// Writes timed by the propagation point.
    #[arg(long, default_value_t = 30)]
    pub propagation_writes: usize,
    /// Redis for the `limits` scenario's second gateway (`--redis-url` of `tokenrouter serve`; its
    /// keys get a prefix of their own and are deleted afterwards).
    #[arg(long, default_value = "redis://127.0.0.1:6379/0")]
    pub redis_url: String,
    /// Run only these scenarios (comma-separated): openai, streaming, memory, soak, swaps,
    /// propagation, anthropic, auto, endpoints, limits, otlp. Default: all.
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// Share of requests the `otlp` scenario's exporting gateway samples: below 1 it runs with
    /// `OTEL_TRACES_SAMPLER=parentbased_traceidratio` and this as `OTEL_TRACES_SAMPLER_ARG`.
    #[arg(long, default_value_t = 1.0)]
    pub otlp_sample_ratio: f64,
    /// Use the release binaries already built instead of running cargo build first.
    #[arg(long)]
    pub no_build: bool,
    /// Directory for results.json, table.md and the processes' logs (default: a new temp dir).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

impl Opts {
    /// Whether scenario `name` is selected.
    pub fn wants(&self, name: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|o| o == name)
    }

    /// One measured point's duration.
    pub fn point(&self) -> Duration {
        Duration::from_secs_f64(self.secs.max(0.5))
    }
}

/// Everything started for a run.
pub struct Env {
    pub opts: Opts,
    pub dir: PathBuf,
    pub bins: Bins,
    /// OpenAI simulator, no pause between chunks (throughput, latency, TTFT).
    pub fast: Sim,
    /// OpenAI simulator with [`PACED_MS`] between chunks (inter-chunk gaps, swaps).
    pub paced: Sim,
    /// OpenAI simulator with [`SLOW_MS`] between chunks (many long-lived open streams).
    pub slow: Sim,
    pub gw: Gateway,
    /// The bare pass-through in front of `fast`.
    pub passthrough: (Proc, u16),
    pub report: Report,
}

/// The order of alternating rounds of an A/B comparison (0: the baseline, 1: the variant): each
/// half mirrors the other, so a linear drift of the machine's speed falls on both alike.
pub const ORDER: [usize; 8] = [0, 1, 1, 0, 1, 0, 0, 1];

/// Pause between chunks of the paced simulator.
pub const PACED_MS: u64 = 20;
/// Pause between chunks of the slow simulator.
pub const SLOW_MS: u64 = 250;
/// The model TokenRouter serves from the paced simulator (provider `paced`).
pub const PACED_MODEL: &str = "bench-paced";
/// The model TokenRouter serves from the slow simulator (provider `slow`).
pub const SLOW_MODEL: &str = "bench-slow";

/// The prompt of every request: about 40 words, so a streamed answer has about 45 content chunks.
pub const PROMPT: &str = "Say hello. This is a benchmark request from the TokenRouter load generator, \
    measuring how much time and memory the gateway adds on top of a simulated upstream provider \
    that answers at once, one small word chunk after another, over a loopback connection here.";

/// An OpenAI chat body for `model`.
pub fn chat_body(model: &str, stream: bool) -> serde_json::Value {
    serde_json::json!({
        "model": model,
        "stream": stream,
        "messages": [{"role": "user", "content": PROMPT}],
    })
}

/// Targets for TokenRouter's chat endpoint (with the client key).
pub fn tokenrouter(env: &Env, model: &str, stream: bool) -> Arc<Target> {
    Target::with_key(
        "tokenrouter",
        env.gw.http_port,
        "/v1/chat/completions",
        chat_body(model, stream),
        Some(CLIENT_KEY),
    )
}

/// Targets for the bare pass-through in front of the `fast` simulator.
pub fn passthrough(env: &Env, stream: bool) -> Arc<Target> {
    Target::local(
        "pass-through",
        env.passthrough.1,
        "/v1/chat/completions",
        chat_body("gpt-4o-mini", stream),
    )
}

/// Targets for a simulator called directly.
pub fn direct(sim: &Sim, model: &str, stream: bool) -> Arc<Target> {
    Target::local(
        "direct",
        sim.port,
        "/v1/chat/completions",
        chat_body(model, stream),
    )
}

/// A short unmeasured closed loop so pools, caches and the allocator are warm.
pub async fn warm(target: &Arc<Target>, kind: Kind, conns: usize) {
    let _ = load::closed(target.clone(), kind, conns, Duration::from_millis(1000)).await;
}
