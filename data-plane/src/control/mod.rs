//! The data plane's background work: the snapshot watch on the control plane (and the snapshot
//! file it persists), usage reporting, and model discovery from the providers' list endpoints.

pub mod discovery;
pub mod persist;
pub mod usage_report;
pub mod watch;
