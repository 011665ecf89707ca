//! What the data plane reports about finished requests: token usage read from answers, the
//! Prometheus counters, the usage record of each request, the queue it waits in and the spool it
//! waits in while no control plane takes it; what its listener holds and refuses; and the traces
//! it exports over OTLP.

pub mod accounting;
pub mod clock;
pub mod connections;
pub mod genai;
pub mod journal;
pub mod metrics;
pub mod spool;
pub mod trace;
pub mod usage;
pub mod usage_queue;
