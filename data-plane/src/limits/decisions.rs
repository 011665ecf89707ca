//! What the limiter decided, counted for `/metrics`: refusals by the scope and the limit that
//! refused, and the decisions its fail mode made while Redis was away.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use super::FailMode;
use super::check::{Check, Exceeded, Refusal, Scope};

const SCOPES: [&str; 3] = ["key", "user", "model"];
/// As the limits are named in the configuration.
const LIMITS: [&str; 6] = [
    "rpm",
    "rpm_burst",
    "tpm",
    "tpm_request",
    "max_concurrent",
    "budget",
];
const FAIL_MODES: [&str; 3] = ["local-share", "fail-open", "fail-closed"];

/// Counters of the limiter's decisions; labels are fixed, so the series are too.
#[derive(Debug, Default)]
pub struct Decisions {
    refused: [[AtomicU64; LIMITS.len()]; SCOPES.len()],
    degraded: [AtomicU64; FAIL_MODES.len()],
}

fn limit_index(what: Exceeded) -> usize {
    match what {
        Exceeded::Requests => 0,
        Exceeded::Burst => 1,
        Exceeded::Tokens => 2,
        Exceeded::TooManyTokens => 3,
        Exceeded::Concurrency => 4,
        Exceeded::Budget => 5,
    }
}

impl Decisions {
    /// Counts a refusal of the check it names.
    pub fn refused(&self, checks: &[Check], refusal: &Refusal) {
        let scope = match checks.get(refusal.check).map(|c| &c.scope) {
            Some(Scope::Key) | None => 0,
            Some(Scope::User(_)) => 1,
            Some(Scope::Model(_)) => 2,
        };
        self.refused[scope][limit_index(refusal.what)].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a request the fail mode decided.
    pub fn degraded(&self, mode: FailMode) {
        let i = FAIL_MODES
            .iter()
            .position(|m| *m == mode.as_str())
            .unwrap_or(0);
        self.degraded[i].fetch_add(1, Ordering::Relaxed);
    }

    /// Requests the fail mode decided, all modes together.
    pub fn degraded_total(&self) -> u64 {
        self.degraded
            .iter()
            .map(|n| n.load(Ordering::Relaxed))
            .sum()
    }

    /// Appends the Prometheus text exposition.
    pub fn render(&self, out: &mut String) {
        let name = "tokenrouter_limiter_refusals_total";
        let _ = writeln!(
            out,
            "# HELP {name} Requests the limiter refused, by the scope and the limit that refused\n# TYPE {name} counter"
        );
        for (s, scope) in SCOPES.iter().enumerate() {
            for (l, limit) in LIMITS.iter().enumerate() {
                let n = self.refused[s][l].load(Ordering::Relaxed);
                let _ = writeln!(out, "{name}{{scope=\"{scope}\",limit=\"{limit}\"}} {n}");
            }
        }
        let name = "tokenrouter_limiter_degraded_decisions_total";
        let _ = writeln!(
            out,
            "# HELP {name} Requests decided by the fail mode while Redis could not answer\n# TYPE {name} counter"
        );
        for (i, mode) in FAIL_MODES.iter().enumerate() {
            let n = self.degraded[i].load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}{{fail_mode=\"{mode}\"}} {n}");
        }
    }
}
