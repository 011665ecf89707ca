//! What the data plane reports about finished requests: token usage read from answers, the
//! Prometheus counters, the usage record of each request and the queue it waits in.

pub mod accounting;
pub mod clock;
pub mod metrics;
pub mod usage;
pub mod usage_queue;
