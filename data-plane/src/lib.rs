//! TokenRouter's data plane: the OpenAI-compatible HTTP API, fed by snapshots from the control plane
//! and swapped atomically, forwarding to providers with fallback.
//!
//! The folders follow a request's path; each imports only those below it (`.ci/run` checks):
//!
//! * `server/` — the listeners (API and admin): connection caps, timeouts, HTTP/2 limits, the
//!   per-request admission, and the drain on shutdown.
//! * `http/` — the routes (one file per endpoint family), request id and API-key layers.
//! * `request/` — parsing and validating chat completions, embeddings and Responses bodies, what it needs of a model, ids.
//! * `snapshot/` — a snapshot compiled for serving: providers, keys, rules, catalog, policies.
//! * `firewall/` — content filters: detectors, rules, the input check, answer and stream filters.
//! * `routing/` — the requested model resolved into a plan of attempts (rules, pins, `auto:*`).
//! * `limits/` — spend control: rates, concurrency leases and budgets, in memory or in Redis.
//! * `exec/` — admission, the attempt loop (backoff, retry budget, hedging, credentials), and the
//!   one usage record of each request.
//! * `responses/` — the Responses API on the chat machinery: translated answers and streams, the
//!   native OpenAI pass-through, and stored responses.
//! * `signals` — live latency, errors, headroom, breakers and cool-downs per provider and model.
//! * `upstream/` — HTTP to providers: clients, egress proxy, URIs, deadlines, SSE, the relay.
//! * `providers/` — one folder per wire protocol, each with its request, answer and stream
//!   translation and its own tests.
//! * `telemetry/` — token usage and cost, Prometheus counters, usage records, queue and spool.
//! * `control/` — background work: the snapshot watch and file, usage reporting, discovery.
//! * `error/` — the two error families: `ApiError` (clients) and `UpstreamError` (attempts).
//! * `state` — what every request and background task shares; `redis_tier` — the Redis
//!   connection the reasoning cache and stored responses share data planes through.
//! * `test_support/` — recorded traffic, conformance helpers, the app in process (tests only).
//!
//! Other crates use [`serve`], [`app`], [`admin_app`], the state and config types re-exported here, [`limits`]'
//! configuration and, for the fuzz targets and micro-benchmarks, [`hot_path`].

mod control;
mod error;
mod exec;
pub mod firewall;
mod http;
pub mod limits;
mod providers;
mod redis_tier;
mod request;
mod responses;
mod routing;
mod server;
mod signals;
mod snapshot;
pub mod state;
mod telemetry;
#[cfg(test)]
mod test_support;
mod upstream;

pub use control::usage_report::LocalUsage;
pub use control::watch::{ClientTls, WatchConfig};
pub use error::ApiError;
pub use http::{admin_app, app};
pub use opentelemetry_otlp::Protocol as OtlpProtocol;
pub use server::serve;
pub use snapshot::{CompilePolicy, Runtime};
pub use state::{DataPlaneConfig, DataPlaneState, ListenerLimits};
pub use telemetry::genai::labels::MetricLabels;
pub use telemetry::spool::{DEFAULT_MAX_BYTES as DEFAULT_SPOOL_MAX_BYTES, SpoolConfig};
pub use telemetry::trace::Tracing;
pub use telemetry::trace::export::{OtlpSettings, Pipeline as OtlpPipeline};
pub use tokenrouter_proto::sealed::MasterKey as SnapshotKey;
pub use upstream::guard::Resolver;
pub use upstream::proxy::ProxyConfig;

/// The hot-path functions the fuzz targets (`fuzz/`) and the micro-benchmarks (`benches/`) drive,
/// exactly the code a live request runs: the request parser, routing, the adapters and the relay's
/// per-read step.
pub mod hot_path {
    /// The provider adapters.
    pub mod providers {
        pub use crate::providers::reasoning_cache::ReasoningCache;
        pub use crate::providers::{
            Flow, Protocol, RequestCtx, ResponseCtx, StreamTranslator, build, stream_translator,
            translate_response, upstream_error,
        };
    }
    /// The request parser.
    pub mod request {
        pub use crate::request::parse;
    }
    /// The SSE decoder.
    pub mod sse {
        pub use crate::upstream::sse::{MAX_EVENT_BYTES, SseDecoder, SseError, SseEvent};
    }
    /// Model resolution.
    pub mod routing {
        pub use crate::routing::availability::Availability;
        pub use crate::routing::plan::RouteCtx;
        pub use crate::routing::resolve::resolve;
    }
    /// The firewall's stream filter.
    pub mod firewall {
        pub use crate::firewall::stream::FilteredStream;
        pub use crate::firewall::{Audit, Firewall};
    }
    pub use crate::signals::Signals;
    pub use crate::snapshot::runtime::KeyRt;
    pub use crate::telemetry::usage::Usage;
    pub use crate::upstream::clients::ClientCache;
    pub use crate::upstream::extensions::Extensions;
    pub use crate::upstream::relay::{translate_bytes, translate_close};
}
