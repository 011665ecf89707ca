//! What a listener is holding and what it turned away: open connections, requests in flight, and
//! refusals by cause, shown on `/metrics`.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Why a listener turned a client away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The open-connection cap.
    Connections,
    /// The in-flight request cap.
    Requests,
    /// The per-client-address cap.
    ClientIp,
}

/// Counters of one listener.
#[derive(Debug, Default)]
pub struct ConnectionStats {
    pub open: AtomicUsize,
    pub in_flight: AtomicUsize,
    refused_connections: AtomicU64,
    refused_requests: AtomicU64,
    refused_client_ip: AtomicU64,
    pub accept_errors: AtomicU64,
    /// Connections closed for cancelling too many requests (rapid reset).
    pub rapid_resets: AtomicU64,
}

impl ConnectionStats {
    pub fn refused(&self, why: Refusal) {
        let counter = match why {
            Refusal::Connections => &self.refused_connections,
            Refusal::Requests => &self.refused_requests,
            Refusal::ClientIp => &self.refused_client_ip,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Prometheus text for these counters.
    pub fn render(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "# HELP tokenrouter_connections_open Client connections open on the API listener\n# TYPE tokenrouter_connections_open gauge\ntokenrouter_connections_open {}",
            self.open.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP tokenrouter_requests_in_flight API requests being served (streams until their last byte)\n# TYPE tokenrouter_requests_in_flight gauge\ntokenrouter_requests_in_flight {}",
            self.in_flight.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP tokenrouter_overload_refusals_total Clients answered 503 server_overloaded, by the cap they hit\n# TYPE tokenrouter_overload_refusals_total counter"
        );
        for (cap, counter) in [
            ("connections", &self.refused_connections),
            ("requests", &self.refused_requests),
            ("client_ip", &self.refused_client_ip),
        ] {
            let _ = writeln!(
                out,
                "tokenrouter_overload_refusals_total{{cap=\"{cap}\"}} {}",
                counter.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP tokenrouter_accept_errors_total Failed accepts on the API listener (e.g. out of file descriptors)\n# TYPE tokenrouter_accept_errors_total counter\ntokenrouter_accept_errors_total {}",
            self.accept_errors.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP tokenrouter_rapid_reset_closes_total Connections closed for cancelling too many requests (HTTP/2 rapid reset)\n# TYPE tokenrouter_rapid_reset_closes_total counter\ntokenrouter_rapid_reset_closes_total {}",
            self.rapid_resets.load(Ordering::Relaxed)
        );
    }
}
