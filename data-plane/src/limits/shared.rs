//! The limiter's counters in Redis, shared by every data plane: one script call (`script.lua`)
//! admits a request against all its limits, one settles it, and a background task renews the
//! leases of requests still in flight. Every call is bounded by a short timeout; the caller falls
//! back to its fail mode when a call fails.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::OnceCell;

use super::check::{Check, Demand, Exceeded, Grant, Quota, Refusal};

const SCRIPT: &str = include_str!("script.lua");

/// Why a Redis call did not answer.
#[derive(Debug, thiserror::Error)]
pub enum SharedError {
    #[error("not connected to Redis yet")]
    NotConnected,
    #[error("Redis did not answer within {0:?}")]
    Timeout(Duration),
    #[error("Redis call failed: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("unexpected answer from the limiter script")]
    Answer,
}

/// A connection (re-established by the manager) and the script.
pub struct Shared {
    client: redis::Client,
    conn: OnceCell<ConnectionManager>,
    script: redis::Script,
    prefix: String,
    timeout: Duration,
    lease_ttl: Duration,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("prefix", &self.prefix)
            .field("connected", &self.conn.initialized())
            .finish_non_exhaustive()
    }
}

/// What Redis admitted: the grant and the budget window each check was charged to.
pub struct Admitted {
    pub grant: Grant,
    pub windows: Vec<i64>,
}

impl Shared {
    /// A limiter on `url` (not connected until [`Shared::connect`] succeeds).
    pub fn new(
        url: &str,
        prefix: &str,
        timeout: Duration,
        lease_ttl: Duration,
    ) -> Result<Shared, SharedError> {
        Ok(Shared {
            client: redis::Client::open(url)?,
            conn: OnceCell::new(),
            script: redis::Script::new(SCRIPT),
            prefix: prefix.to_string(),
            timeout,
            lease_ttl,
        })
    }

    /// Connects once (the manager reconnects by itself afterwards); retried by the caller.
    pub async fn connect(&self) -> Result<(), SharedError> {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(self.timeout.max(Duration::from_millis(50))))
            .set_number_of_retries(1);
        let conn = ConnectionManager::new_with_config(self.client.clone(), config).await?;
        let _ = self.conn.set(conn);
        Ok(())
    }

    pub fn is_connected(&self) -> bool {
        self.conn.initialized()
    }

    /// The script call for `phase` over the checks' counters, with the common arguments.
    fn invocation(&self, phase: &str, id: &str, checks: &[Check]) -> redis::ScriptInvocation<'_> {
        let mut invocation = self.script.prepare_invoke();
        for c in checks {
            invocation.key(format!("{}{}", self.prefix, c.counter));
        }
        invocation
            .arg(phase)
            .arg(id)
            .arg(self.lease_ttl.as_millis() as i64);
        invocation
    }

    async fn run(&self, invocation: redis::ScriptInvocation<'_>) -> Result<Vec<i64>, SharedError> {
        let mut conn = self.conn.get().cloned().ok_or(SharedError::NotConnected)?;
        tokio::time::timeout(self.timeout, invocation.invoke_async(&mut conn))
            .await
            .map_err(|_| SharedError::Timeout(self.timeout))?
            .map_err(SharedError::from)
    }

    /// Admits against every check in one round trip.
    pub async fn admit(
        &self,
        id: &str,
        checks: &[Check],
        demand: &Demand,
    ) -> Result<Result<Admitted, Refusal>, SharedError> {
        let mut invocation = self.invocation("admit", id, checks);
        invocation.arg(demand.tokens).arg(demand.cost_micro);
        for c in checks {
            let r = &c.rule;
            let (budget, period) = r.budget.map_or((0, "-"), |(b, p)| (b, period_code(p)));
            invocation
                .arg(r.rpm)
                .arg(r.rpm_burst)
                .arg(r.tpm)
                .arg(r.max_concurrent)
                .arg(budget)
                .arg(period);
        }
        let answer = self.run(invocation).await?;
        match answer.as_slice() {
            [1, rl, rr, rs, tl, tr, ts, windows @ ..] if windows.len() == checks.len() => {
                let quota = |l: i64, r: i64, s: i64| {
                    (l >= 0).then(|| Quota::new(l as u64, r.max(0) as u64, s.max(0) as u64))
                };
                Ok(Ok(Admitted {
                    grant: Grant {
                        requests: quota(*rl, *rr, *rs),
                        tokens: quota(*tl, *tr, *ts),
                    },
                    windows: windows.to_vec(),
                }))
            }
            [0, check, what, retry] => {
                let what = match what {
                    1 => Exceeded::Requests,
                    2 => Exceeded::Burst,
                    3 => Exceeded::Tokens,
                    4 => Exceeded::TooManyTokens,
                    5 => Exceeded::Concurrency,
                    _ => Exceeded::Budget,
                };
                Ok(Err(Refusal::new(
                    (*check - 1).max(0) as usize,
                    what,
                    (*retry).max(0) as u64,
                )))
            }
            _ => Err(SharedError::Answer),
        }
    }

    /// Reconciles a reservation and ends its leases, in one round trip.
    pub async fn settle(
        &self,
        id: &str,
        checks: &[Check],
        windows: &[i64],
        reserved: &Demand,
        used: &Demand,
    ) -> Result<(), SharedError> {
        let mut invocation = self.invocation("settle", id, checks);
        invocation
            .arg(used.tokens as i64 - reserved.tokens as i64)
            .arg(used.cost_micro - reserved.cost_micro);
        for (i, c) in checks.iter().enumerate() {
            invocation
                .arg(c.rule.tpm)
                .arg(c.rule.max_concurrent)
                .arg(windows.get(i).copied().unwrap_or(-1));
        }
        self.run(invocation).await.map(drop)
    }

    /// Extends the leases of a request still in flight.
    pub async fn renew(&self, id: &str, checks: &[Check]) -> Result<(), SharedError> {
        let mut invocation = self.invocation("renew", id, checks);
        for c in checks {
            invocation.arg(c.rule.max_concurrent);
        }
        self.run(invocation).await.map(drop)
    }

    pub fn lease_ttl(&self) -> Duration {
        self.lease_ttl
    }
}

fn period_code(p: tokenrouter_proto::limits::BudgetPeriod) -> &'static str {
    use tokenrouter_proto::limits::BudgetPeriod;
    match p {
        BudgetPeriod::Day => "d",
        BudgetPeriod::Week => "w",
        BudgetPeriod::Month => "m",
        BudgetPeriod::Total => "t",
    }
}
