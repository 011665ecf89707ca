//! Hedging: when a policy hedges, the next attempt starts alongside one that has not answered
//! after a delay (the policy's floor, or the learned p90 time to first token when that is later),
//! and whichever answers first wins; the other is dropped, which cancels its upstream request.

use std::future::Future;
use std::time::Duration;

use crate::routing::plan::Plan;
use crate::signals;
use crate::state::DataPlaneState;

/// When to start the attempt after `index` alongside it, if the policy hedges.
pub(super) fn delay(state: &DataPlaneState, plan: &Plan, index: usize) -> Option<Duration> {
    let floor = plan.policy.hedge_after?;
    if index + 1 >= plan.attempts.len() {
        return None;
    }
    if !plan.policy.hedge_learned {
        return Some(floor);
    }
    let a = &plan.attempts[index];
    let learned = state
        .signals
        .get(&signals::key(&a.provider.name, &a.model, "*"))
        .ttft_percentile(90.0);
    Some(learned.map_or(floor, |ms| floor.max(Duration::from_secs_f64(ms / 1000.0))))
}

/// Runs `first`; if it has not finished after `delay`, starts `second` too and keeps whichever
/// succeeds first (or the other's result when one fails). Returns the result and which attempt
/// produced it (0 or 1); both were used once `second` started.
pub(super) async fn race<F, T, E>(
    first: F,
    delay: Duration,
    second: impl FnOnce() -> F,
) -> (Result<T, E>, Used)
where
    F: Future<Output = Result<T, E>>,
{
    tokio::pin!(first);
    tokio::select! {
        result = &mut first => return (result, Used::One),
        () = tokio::time::sleep(delay) => {}
    }
    let second = second();
    tokio::pin!(second);
    tokio::select! {
        result = &mut first => match result {
            Ok(r) => (Ok(r), Used::Both { winner: 0 }),
            Err(_) => (second.await, Used::Both { winner: 1 }),
        },
        result = &mut second => match result {
            Ok(r) => (Ok(r), Used::Both { winner: 1 }),
            Err(_) => (first.await, Used::Both { winner: 0 }),
        },
    }
}

/// How many attempts a step of the loop used, and which one's result it kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Used {
    One,
    Both { winner: usize },
}

impl Used {
    pub(super) fn count(self) -> usize {
        match self {
            Used::One => 1,
            Used::Both { .. } => 2,
        }
    }

    pub(super) fn winner(self) -> usize {
        match self {
            Used::One => 0,
            Used::Both { winner } => winner,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn after(ms: u64, result: Result<u8, u8>) -> Result<u8, u8> {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        result
    }

    #[tokio::test(start_paused = true)]
    async fn a_fast_first_attempt_never_starts_the_second() {
        let mut started = false;
        let (r, used) = race(after(10, Ok(1)), Duration::from_millis(100), || {
            started = true;
            after(1, Ok(2))
        })
        .await;
        assert_eq!((r, used), (Ok(1), Used::One));
        assert!(!started);
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_first_attempt_loses_to_the_hedge() {
        let (r, used) = race(after(1000, Ok(1)), Duration::from_millis(100), || {
            after(10, Ok(2))
        })
        .await;
        assert_eq!((r, used), (Ok(2), Used::Both { winner: 1 }));
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_hedge_waits_for_the_first() {
        let (r, used) = race(after(300, Ok(1)), Duration::from_millis(100), || {
            after(10, Err(2))
        })
        .await;
        assert_eq!((r, used), (Ok(1), Used::Both { winner: 0 }));
    }
}
