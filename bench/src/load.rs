//! Load shapes: a closed loop (N connections, each sending the next request when the last one
//! answered), an open loop at a fixed rate (latency measured from each request's intended send
//! time, so a stall is charged to every request it delays), and closed-loop streams. Every loop
//! stops at its deadline or its request cap, whichever comes first.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde_json::{Value, json};

use crate::client::{Conn, Target};

/// Most requests any one loop sends, whatever its duration.
pub const MAX_REQUESTS: u64 = 5_000_000;

/// A latency histogram in microseconds (1 µs to 10 min, 3 significant digits).
pub fn histogram() -> Histogram<u64> {
    // Constant, valid bounds: this cannot fail.
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds")
}

/// Records `d` into `h`, saturating at its bounds.
pub fn record(h: &mut Histogram<u64>, d: Duration) {
    h.saturating_record(d.as_micros().max(1) as u64);
}

/// What one loop measured.
#[derive(Debug, Clone)]
pub struct LoadResult {
    pub ok: u64,
    pub failed: u64,
    pub wall: Duration,
    /// Request latency (closed loop: from send; open loop: from the intended send time).
    pub latency: Histogram<u64>,
    /// Streams only: time to first content.
    pub ttft: Histogram<u64>,
    /// Streams only: gaps between consecutive content events.
    pub gap: Histogram<u64>,
    /// First few failure messages, for the log.
    pub errors: Vec<String>,
}

impl LoadResult {
    fn new() -> Self {
        LoadResult {
            ok: 0,
            failed: 0,
            wall: Duration::ZERO,
            latency: histogram(),
            ttft: histogram(),
            gap: histogram(),
            errors: Vec::new(),
        }
    }

    fn merge(&mut self, other: LoadResult) {
        self.ok += other.ok;
        self.failed += other.failed;
        let _ = self.latency.add(&other.latency);
        let _ = self.ttft.add(&other.ttft);
        let _ = self.gap.add(&other.gap);
        for e in other.errors {
            if self.errors.len() < 5 {
                self.errors.push(e);
            }
        }
    }

    fn fail(&mut self, e: anyhow::Error) {
        self.failed += 1;
        if self.errors.len() < 5 {
            self.errors.push(format!("{e:#}"));
        }
    }

    /// Successful requests per second.
    pub fn rps(&self) -> f64 {
        self.ok as f64 / self.wall.as_secs_f64().max(1e-9)
    }

    /// A summary for the raw JSON.
    pub fn to_json(&self) -> Value {
        json!({
            "ok": self.ok, "failed": self.failed, "wall_s": self.wall.as_secs_f64(),
            "rps": self.rps(), "latency_us": summary(&self.latency),
            "ttft_us": summary(&self.ttft), "gap_us": summary(&self.gap), "errors": self.errors,
        })
    }
}

/// Percentile `q` (0–100) in milliseconds, or `None` when empty.
pub fn ms(h: &Histogram<u64>, q: f64) -> Option<f64> {
    (!h.is_empty()).then(|| h.value_at_quantile(q / 100.0) as f64 / 1000.0)
}

/// Count and percentiles of a histogram, in microseconds.
pub fn summary(h: &Histogram<u64>) -> Value {
    if h.is_empty() {
        return Value::Null;
    }
    json!({
        "count": h.len(), "mean": h.mean(), "p50": h.value_at_quantile(0.5),
        "p90": h.value_at_quantile(0.9), "p99": h.value_at_quantile(0.99),
        "p999": h.value_at_quantile(0.999), "max": h.max(),
    })
}

/// What a worker does with one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Plain,
    Stream,
}

/// One request on `conn` (reconnecting when needed), recorded into `out`.
async fn one(
    conn: &mut Option<Conn>,
    target: &Target,
    kind: Kind,
    from: Instant,
    out: &mut LoadResult,
) {
    if conn.as_ref().is_none_or(|c| !c.is_usable()) {
        match Conn::open(target.addr).await {
            Ok(c) => *conn = Some(c),
            Err(e) => {
                out.fail(e);
                tokio::time::sleep(Duration::from_millis(10)).await;
                return;
            }
        }
    }
    let Some(c) = conn.as_mut() else { return };
    match kind {
        Kind::Plain => match c.call(target).await {
            Ok(_) => {
                out.ok += 1;
                record(&mut out.latency, from.elapsed());
            }
            Err(e) => {
                *conn = None;
                out.fail(e);
            }
        },
        Kind::Stream => match c.stream(target).await {
            Ok(t) => {
                out.ok += 1;
                record(&mut out.latency, from.elapsed());
                if let Some(ttft) = t.ttft {
                    record(&mut out.ttft, ttft);
                }
                for pair in t.content_at.windows(2) {
                    record(&mut out.gap, pair[1].saturating_sub(pair[0]));
                }
            }
            Err(e) => {
                *conn = None;
                out.fail(e);
            }
        },
    }
}

/// `conns` connections, each sending back to back until `duration` has passed.
pub async fn closed(
    target: Arc<Target>,
    kind: Kind,
    conns: usize,
    duration: Duration,
) -> LoadResult {
    let start = Instant::now();
    let deadline = start + duration;
    let sent = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..conns.max(1) {
        let (target, sent) = (target.clone(), sent.clone());
        tasks.push(tokio::spawn(async move {
            let mut out = LoadResult::new();
            let mut conn = None;
            while Instant::now() < deadline && sent.fetch_add(1, Ordering::Relaxed) < MAX_REQUESTS {
                one(&mut conn, &target, kind, Instant::now(), &mut out).await;
            }
            out
        }));
    }
    gather(tasks, start).await
}

/// `rate` requests per second for `duration`, spread over `workers` connections; each request's
/// latency counts from when it should have been sent.
pub async fn open(
    target: Arc<Target>,
    kind: Kind,
    rate: f64,
    duration: Duration,
    workers: usize,
) -> LoadResult {
    let start = Instant::now();
    let total = ((rate * duration.as_secs_f64()) as u64).min(MAX_REQUESTS);
    let period = Duration::from_secs_f64(1.0 / rate.max(1e-3));
    let next = Arc::new(AtomicU64::new(0));
    let hard_stop = start + duration + Duration::from_secs(30);
    let mut tasks = Vec::new();
    for _ in 0..workers.max(1) {
        let (target, next) = (target.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut out = LoadResult::new();
            let mut conn = None;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total || Instant::now() > hard_stop {
                    break;
                }
                let intended = start + period.mul_f64(i as f64);
                tokio::time::sleep_until(intended.into()).await;
                one(&mut conn, &target, kind, intended, &mut out).await;
            }
            out
        }));
    }
    gather(tasks, start).await
}

async fn gather(tasks: Vec<tokio::task::JoinHandle<LoadResult>>, start: Instant) -> LoadResult {
    let mut all = LoadResult::new();
    for t in tasks {
        match t.await {
            Ok(r) => all.merge(r),
            Err(e) => all.fail(anyhow::anyhow!("worker panicked: {e}")),
        }
    }
    all.wall = start.elapsed();
    all
}
