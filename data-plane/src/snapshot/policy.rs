//! Fallback policy mechanics: which failures move on, exponential backoff with full jitter, and a
//! retry budget so a provider outage cannot multiply the load on the next one.

use std::sync::Mutex;
use std::time::Duration;

use rand::Rng;
use tokio::time::Instant;

use crate::error::UpstreamError;
use crate::snapshot::provider::TargetRt;

pub const DEFAULT_BACKOFF_BASE: Duration = Duration::from_millis(25);
pub const DEFAULT_BACKOFF_CAP: Duration = Duration::from_millis(1000);
/// Longest a request waits for a cooling credential's `Retry-After` before moving on.
pub const MAX_RETRY_AFTER_WAIT: Duration = Duration::from_secs(10);

/// A class of failure a fallback policy may move on after (`retry_on`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryClass {
    Connect,
    Timeout,
    RateLimit,
    Server,
    Overloaded,
    Malformed,
}

impl RetryClass {
    pub const ALL: [RetryClass; 6] = [
        RetryClass::Connect,
        RetryClass::Timeout,
        RetryClass::RateLimit,
        RetryClass::Server,
        RetryClass::Overloaded,
        RetryClass::Malformed,
    ];

    /// From its name in a policy (`connect`, `timeout`, `429`, `5xx`, `529`, `malformed`).
    pub fn parse(name: &str) -> Option<RetryClass> {
        RetryClass::ALL.into_iter().find(|c| c.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            RetryClass::Connect => "connect",
            RetryClass::Timeout => "timeout",
            RetryClass::RateLimit => "429",
            RetryClass::Server => "5xx",
            RetryClass::Overloaded => "529",
            RetryClass::Malformed => "malformed",
        }
    }

    fn bit(self) -> u8 {
        1 << self as u8
    }

    /// The class of a retryable failure (`None`: not a failure any class names).
    fn of(e: &UpstreamError) -> Option<RetryClass> {
        Some(match e {
            UpstreamError::Connect(_) => RetryClass::Connect,
            UpstreamError::Timeout => RetryClass::Timeout,
            UpstreamError::Malformed(_) | UpstreamError::StreamBroken(_) => RetryClass::Malformed,
            UpstreamError::InBand { .. } => RetryClass::Overloaded,
            UpstreamError::Status { status: 429, .. } => RetryClass::RateLimit,
            UpstreamError::Status { status: 529, .. } => RetryClass::Overloaded,
            UpstreamError::Status { .. } => RetryClass::Server,
            UpstreamError::Unavailable(_) => return None,
        })
    }
}

/// The failure classes a policy moves on after (a set of [`RetryClass`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryOn(u8);

impl RetryOn {
    pub const ALL: RetryOn = RetryOn(0x3f);

    /// From the proto's names (validated before compilation); empty means all.
    pub fn parse(names: &[String]) -> RetryOn {
        if names.is_empty() {
            return RetryOn::ALL;
        }
        RetryOn(
            names
                .iter()
                .filter_map(|n| RetryClass::parse(n))
                .fold(0, |acc, c| acc | c.bit()),
        )
    }

    /// Whether this failure moves on: it must be retryable at all (never a 400-class refusal or an
    /// exhausted quota) and of a class the policy names. A candidate that is unavailable (cooling
    /// down, breaker open) is always passed over.
    pub fn moves_on(self, e: &UpstreamError) -> bool {
        if !e.retryable() {
            return false;
        }
        RetryClass::of(e).is_none_or(|c| self.0 & c.bit() != 0)
    }
}

/// Exponential backoff with jitter: a random delay between `floor` and `base · 2^step`, at most
/// `cap` (full jitter when `floor` is zero). Fallback attempts and the snapshot watch both use it.
pub fn jittered_backoff(base: Duration, cap: Duration, step: u32, floor: Duration) -> Duration {
    let ceiling = base.saturating_mul(1u32 << step.min(20)).min(cap);
    let (low, high) = (
        floor.min(ceiling).as_millis() as u64,
        ceiling.as_millis() as u64,
    );
    Duration::from_millis(rand::rng().random_range(low..=high))
}

/// A fallback policy after compilation.
#[derive(Debug, Clone)]
pub struct PolicyRt {
    pub name: String,
    pub chain: Vec<TargetRt>,
    pub max_attempts: usize,
    pub retry_on: RetryOn,
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
    pub hedge_after: Option<Duration>,
    pub hedge_learned: bool,
}

impl PolicyRt {
    /// The policy used when no rule names one: every retryable failure moves on.
    pub fn default_for(attempts: usize) -> PolicyRt {
        PolicyRt {
            name: String::new(),
            chain: Vec::new(),
            max_attempts: attempts.max(1),
            retry_on: RetryOn::ALL,
            backoff_base: DEFAULT_BACKOFF_BASE,
            backoff_cap: DEFAULT_BACKOFF_CAP,
            hedge_after: None,
            hedge_learned: false,
        }
    }

    /// Full jitter: a random delay up to `min(cap, base * 2^retry)` before retry number `retry` (1-based).
    pub fn backoff(&self, retry: u32) -> Duration {
        jittered_backoff(
            self.backoff_base,
            self.backoff_cap,
            retry.saturating_sub(1),
            Duration::ZERO,
        )
    }
}

/// Retries allowed: 20 % of requests over a 10 s window, and at least 10 per second.
#[derive(Debug)]
pub struct RetryBudget {
    window: Mutex<(Instant, u64, u64)>,
}

impl Default for RetryBudget {
    fn default() -> Self {
        RetryBudget {
            window: Mutex::new((Instant::now(), 0, 0)),
        }
    }
}

const BUDGET_WINDOW: Duration = Duration::from_secs(10);
const BUDGET_RATIO: f64 = 0.2;
const BUDGET_MIN_PER_SEC: u64 = 10;

impl RetryBudget {
    fn roll(w: &mut (Instant, u64, u64)) {
        if w.0.elapsed() >= BUDGET_WINDOW {
            *w = (Instant::now(), 0, 0);
        }
    }

    /// Counts a request.
    pub fn request(&self) {
        if let Ok(mut w) = self.window.lock() {
            Self::roll(&mut w);
            w.1 += 1;
        }
    }

    /// Takes one retry from the budget; false when it is spent.
    pub fn try_retry(&self) -> bool {
        let Ok(mut w) = self.window.lock() else {
            return true;
        };
        Self::roll(&mut w);
        let allowed =
            ((w.1 as f64 * BUDGET_RATIO) as u64).max(BUDGET_MIN_PER_SEC * BUDGET_WINDOW.as_secs());
        if w.2 < allowed {
            w.2 += 1;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_move_on_only_for_named_retryable_classes() {
        let only_5xx = RetryOn::parse(&["5xx".into()]);
        let status = |s| UpstreamError::Status {
            status: s,
            code: None,
            message: String::new(),
            retry_after: None,
        };
        assert!(only_5xx.moves_on(&status(503)));
        assert!(!only_5xx.moves_on(&status(429)));
        assert!(!only_5xx.moves_on(&UpstreamError::Timeout));
        assert!(
            !RetryOn::ALL.moves_on(&status(400)),
            "400-class errors never move on"
        );
        assert!(RetryOn::ALL.moves_on(&UpstreamError::Timeout));
    }

    #[test]
    fn backoff_is_jittered_and_capped() {
        let p = PolicyRt::default_for(3);
        for retry in 1..30 {
            assert!(p.backoff(retry) <= DEFAULT_BACKOFF_CAP);
        }
        assert!(p.backoff(1) <= DEFAULT_BACKOFF_BASE);
    }

    #[tokio::test(start_paused = true)]
    async fn the_retry_budget_caps_retries_and_refills() {
        let b = RetryBudget::default();
        let allowed = (0..1000).filter(|_| b.try_retry()).count();
        assert_eq!(allowed as u64, BUDGET_MIN_PER_SEC * BUDGET_WINDOW.as_secs());
        for _ in 0..2000 {
            b.request();
        }
        assert!(b.try_retry(), "more traffic, more budget");
        tokio::time::advance(BUDGET_WINDOW).await;
        assert!(b.try_retry());
    }
}
