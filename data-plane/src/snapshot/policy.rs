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

/// Failure classes a policy moves on after, as bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryOn(u8);

impl RetryOn {
    pub const CONNECT: u8 = 1;
    pub const TIMEOUT: u8 = 1 << 1;
    pub const RATE_LIMIT: u8 = 1 << 2;
    pub const SERVER: u8 = 1 << 3;
    pub const OVERLOADED: u8 = 1 << 4;
    pub const MALFORMED: u8 = 1 << 5;
    pub const ALL: RetryOn = RetryOn(0x3f);

    /// From the proto's names; empty means all.
    pub fn parse(names: &[String]) -> RetryOn {
        if names.is_empty() {
            return RetryOn::ALL;
        }
        RetryOn(names.iter().fold(0, |acc, n| {
            acc | match n.as_str() {
                "connect" => Self::CONNECT,
                "timeout" => Self::TIMEOUT,
                "429" => Self::RATE_LIMIT,
                "5xx" => Self::SERVER,
                "529" => Self::OVERLOADED,
                "malformed" => Self::MALFORMED,
                _ => 0,
            }
        }))
    }

    /// Whether this failure moves on: it must be retryable at all (never a 400-class refusal or an
    /// exhausted quota) and of a class the policy names.
    pub fn moves_on(self, e: &UpstreamError) -> bool {
        if !e.retryable() {
            return false;
        }
        let class = match e {
            UpstreamError::Connect(_) => Self::CONNECT,
            UpstreamError::Timeout => Self::TIMEOUT,
            UpstreamError::Malformed(_) | UpstreamError::StreamBroken(_) => Self::MALFORMED,
            UpstreamError::InBand { .. } => Self::OVERLOADED,
            UpstreamError::Status { status: 429, .. } => Self::RATE_LIMIT,
            UpstreamError::Status { status: 529, .. } => Self::OVERLOADED,
            UpstreamError::Status { .. } => Self::SERVER,
            UpstreamError::Unavailable(_) => return true,
        };
        self.0 & class != 0
    }
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
        let ceiling = self
            .backoff_base
            .saturating_mul(1u32 << retry.saturating_sub(1).min(20))
            .min(self.backoff_cap);
        let millis = ceiling.as_millis() as u64;
        if millis == 0 {
            Duration::ZERO
        } else {
            Duration::from_millis(rand::rng().random_range(0..=millis))
        }
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
