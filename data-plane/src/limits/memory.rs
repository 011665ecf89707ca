//! The limiter's counters in this process: what a single data plane uses, and what each data
//! plane falls back to (with its share of every limit) while Redis is away. The same algorithms
//! as the Redis script: a sliding one-minute log for requests (exact: never more than `rpm` in
//! any 60 s), GCRA for an optional request burst, a token bucket refilled continuously for tokens
//! (`tpm` tokens of burst), a count for requests in flight, and reserved spend per budget window.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use super::check::{Check, Demand, Exceeded, Grant, Narrow, Quota, Refusal};

const MINUTE_MS: f64 = 60_000.0;

#[derive(Debug, Default)]
struct Counter {
    /// When each request of the last minute was admitted (ms, monotonic).
    log: VecDeque<u64>,
    burst_tat: f64,
    token_tat: f64,
    in_flight: u64,
    /// Spent micro-USD by window start (only the current window is kept).
    spent: Option<(i64, i64)>,
}

/// Counters by name, behind one lock held for a few hash lookups per request.
#[derive(Debug, Default)]
pub struct Memory {
    counters: Mutex<HashMap<String, Counter>>,
}

impl Memory {
    /// Checks every limit, then (only if all pass) charges them all. `share` divides each limit
    /// (1 normally; the number of data planes while Redis is away).
    pub fn admit(
        &self,
        checks: &[Check],
        demand: &Demand,
        share: u64,
        now_ms: u64,
    ) -> Result<Grant, Refusal> {
        let share = share.max(1);
        let Ok(mut counters) = self.counters.lock() else {
            return Ok(Grant::default());
        };
        let now = now_ms as f64;
        let mut grant = Grant::default();
        // Phase 1: check everything, charging nothing.
        for (i, c) in checks.iter().enumerate() {
            let r = &c.rule;
            let counter = counters.entry(c.counter.clone()).or_default();
            if r.rpm > 0 {
                let limit = (r.rpm / share).max(1);
                while counter.log.front().is_some_and(|t| *t + 60_000 <= now_ms) {
                    counter.log.pop_front();
                }
                let used = counter.log.len() as u64;
                if used >= limit {
                    let oldest = counter.log.front().copied().unwrap_or(now_ms);
                    return Err(Refusal::new(
                        i,
                        Exceeded::Requests,
                        oldest + 60_000 - now_ms,
                    ));
                }
                let reset = counter.log.front().map_or(60_000, |t| t + 60_000 - now_ms);
                grant
                    .requests
                    .narrow(Quota::new(limit, limit - used - 1, reset));
            }
            if r.rpm > 0 && r.rpm_burst > 0 {
                let t = MINUTE_MS * share as f64 / r.rpm as f64;
                let tat = counter.burst_tat.max(now) + t;
                let tolerance = t * (r.rpm_burst.max(1)) as f64;
                if tat - now > tolerance {
                    return Err(Refusal::new(
                        i,
                        Exceeded::Burst,
                        (tat - now - tolerance) as u64,
                    ));
                }
            }
            if r.tpm > 0 {
                let limit = (r.tpm / share).max(1);
                let t = MINUTE_MS / limit as f64;
                let tat = counter.token_tat.max(now) + demand.tokens as f64 * t;
                if demand.tokens > limit {
                    return Err(Refusal::new(i, Exceeded::TooManyTokens, 60_000));
                }
                if tat - now > MINUTE_MS {
                    return Err(Refusal::new(
                        i,
                        Exceeded::Tokens,
                        (tat - now - MINUTE_MS).ceil() as u64,
                    ));
                }
                let remaining = ((MINUTE_MS - (tat - now)) / t).floor().max(0.0) as u64;
                grant
                    .tokens
                    .narrow(Quota::new(limit, remaining, (tat - now).ceil() as u64));
            }
            if r.max_concurrent > 0 && counter.in_flight >= (r.max_concurrent / share).max(1) {
                return Err(Refusal::new(i, Exceeded::Concurrency, 1_000));
            }
            if let Some((budget, _)) = r.budget {
                let budget = budget / share as i64;
                let spent = match counter.spent {
                    Some((w, s)) if w == c.window_start => s,
                    _ => 0,
                };
                if spent + demand.cost_micro > budget {
                    let retry = c.window_end.map_or(0, |end| end.saturating_sub(c.unix_now));
                    return Err(Refusal::new(i, Exceeded::Budget, retry.max(0) as u64));
                }
            }
        }
        // Phase 2: every limit passed; charge them all.
        for c in checks {
            let r = &c.rule;
            let counter = counters.entry(c.counter.clone()).or_default();
            if r.rpm > 0 {
                counter.log.push_back(now_ms);
                if r.rpm_burst > 0 {
                    let t = MINUTE_MS * share as f64 / r.rpm as f64;
                    counter.burst_tat = counter.burst_tat.max(now) + t;
                }
            }
            if r.tpm > 0 {
                let t = MINUTE_MS / (r.tpm / share).max(1) as f64;
                counter.token_tat = counter.token_tat.max(now) + demand.tokens as f64 * t;
            }
            if r.max_concurrent > 0 {
                counter.in_flight += 1;
            }
            if r.budget.is_some() {
                counter.spent = Some(match counter.spent {
                    Some((w, s)) if w == c.window_start => (w, s + demand.cost_micro),
                    _ => (c.window_start, demand.cost_micro),
                });
            }
        }
        Ok(grant)
    }

    /// Reconciles a reservation with what the request really used, and ends its lease.
    pub fn settle(&self, checks: &[Check], reserved: &Demand, used: &Demand, share: u64) {
        let share = share.max(1);
        let Ok(mut counters) = self.counters.lock() else {
            return;
        };
        for c in checks {
            let Some(counter) = counters.get_mut(&c.counter) else {
                continue;
            };
            let r = &c.rule;
            if r.tpm > 0 {
                let t = MINUTE_MS / (r.tpm / share).max(1) as f64;
                counter.token_tat += (used.tokens as f64 - reserved.tokens as f64) * t;
            }
            if r.max_concurrent > 0 {
                counter.in_flight = counter.in_flight.saturating_sub(1);
            }
            if let Some((w, s)) = &mut counter.spent
                && *w == c.window_start
            {
                *s += used.cost_micro - reserved.cost_micro;
            }
        }
    }
}
