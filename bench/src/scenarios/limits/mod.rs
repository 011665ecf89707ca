//! `limits`: what spend control costs per request. A key with limits that never refuse (rpm, tpm,
//! max_concurrent and a daily budget, all far above what the run can send) against a key without
//! limits (which skips the limiter), back to back on the same gateway: closed-loop CPU per request
//! and latency at one connection, non-streaming, from the `fast` simulator. First on the run's
//! `tokenrouter serve` (counters in memory), then on a second `serve` counting in Redis
//! (`--redis-url`, a prefix of its own), which also shows Redis's own CPU and script calls.
//!
//! Each key is measured in four rounds in the order of [`ORDER`], so a drift of the machine's
//! speed during the scenario falls on both alike; the figures sum the rounds. Through Redis it
//! also counts the script calls per request (one at admission and one at completion expected),
//! the requests the fail mode decided (Redis slower than the gateway's 5 ms timeout) and the
//! reservations the gateway logged as not settled.

mod probes;
mod redis;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use tokenrouter_proto::v1::Limits;

use super::{Env, ORDER, Opts, chat_body, warm};
use crate::client::Target;
use crate::load::{self, Kind, LoadResult, histogram, ms};
use crate::procs::CpuWindow;
use crate::report::{Report, Verdict, added, fmt, ratio};
use crate::stack::{self, CLIENT_KEY, Gateway};
use probes::{
    check_headers, count_in_log, degraded_decisions, limiter_status, wait_redis_connected,
};
use redis::{RedisServer, unique_prefix};

/// The key carrying limits (the run's [`CLIENT_KEY`] carries none).
pub const LIMITED_KEY: &str = "sk-bench-limited-0123456789abcdef";
/// Its name in the control plane.
const LIMITED_NAME: &str = "bench-limited";
/// Requests per minute: about half of `u32::MAX`, never reached.
const RPM: u32 = u32::MAX / 2;
/// Tokens per minute (each request reserves ~4,150 until it ends).
const TPM: u64 = 1_000_000_000_000;
/// Requests in flight.
const MAX_CONCURRENT: u32 = 100_000;
/// USD per day.
const BUDGET_USD: f64 = 1e9;
/// The model asked for (served by provider `openai`, the env bootstrap's, at the fast simulator).
const MODEL: &str = "gpt-4o-mini";
/// The Redis gateway's process name (and log file).
const GATEWAY_NAME: &str = "tokenrouter-serve-redis";
/// What the data plane logs when a reservation's settle failed three times.
const UNSETTLED: &str = "could not settle a reservation in Redis";
/// Issue 12's target for the in-memory limiter: CPU added per request.
const MEMORY_CPU_TARGET_US: f64 = 3.0;
/// Issue 12's target through Redis: added p50 at one connection.
const REDIS_P50_TARGET_MS: f64 = 0.3;

/// The limits of [`LIMITED_KEY`]: every kind set, none ever refusing in a run.
pub fn never_refusing() -> Limits {
    Limits {
        rpm: RPM,
        tpm: TPM,
        max_concurrent: MAX_CONCURRENT,
        budget_usd: BUDGET_USD,
        budget_period: "day".into(),
        rpm_burst: 0,
    }
}

/// Runs both halves: in memory on the run's gateway, then through Redis on a second gateway.
pub async fn run(env: &mut Env) -> anyhow::Result<()> {
    let section = "limits: in memory";
    let mut admin = stack::admin(env.gw.grpc_port).await?;
    stack::create_limited_key(&mut admin, LIMITED_NAME, LIMITED_KEY, never_refusing()).await?;
    check_headers(env.gw.http_port).await?;
    let sides = measure(&env.gw, &env.opts, None, section).await?;
    let status = limiter_status(env.gw.admin_port).await.ok();
    rows(&mut env.report, &env.opts, section, &sides, Backend::Memory);
    env.report.raw(
        "limits.memory",
        json!({ "sides": sides.each_ref().map(Side::to_json), "limiter": status }),
    );

    let url = env.opts.redis_url.clone();
    let redis = match RedisServer::probe(&url) {
        Ok(r) => r,
        Err(e) => {
            env.report.skip(
                "limits: Redis",
                &format!("no Redis to measure against at {url}: {e:#}"),
            );
            return Ok(());
        }
    };
    let prefix = unique_prefix();
    eprintln!("[limits: Redis] starting a second gateway on {url} with prefix {prefix}");
    let result = redis_half(env, &redis, &prefix).await;
    redis.forget(&prefix);
    result
}

/// The Redis half: its own `serve` (the first one idles meanwhile), the same key, the same loops.
async fn redis_half(env: &mut Env, redis: &RedisServer, prefix: &str) -> anyhow::Result<()> {
    let section = "limits: Redis";
    let extra = [
        "--redis-url".to_string(),
        redis.url.clone(),
        "--redis-prefix".to_string(),
        prefix.to_string(),
    ];
    let gw =
        stack::start_tokenrouter_with(&env.bins, &env.dir, &env.fast, GATEWAY_NAME, &extra).await?;
    let mut admin = stack::admin(gw.grpc_port).await?;
    stack::create_limited_key(&mut admin, LIMITED_NAME, LIMITED_KEY, never_refusing()).await?;
    wait_redis_connected(gw.admin_port).await?;
    check_headers(gw.http_port).await?;
    let sides = measure(&gw, &env.opts, Some(redis), section).await?;
    let status = limiter_status(gw.admin_port).await.ok();
    rows(&mut env.report, &env.opts, section, &sides, Backend::Redis);
    // A settle is retried in the background (3 tries, 100 ms apart) before the gateway gives up
    // and logs it; let the last ones finish.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let unsettled = count_in_log(&env.dir.join(format!("{GATEWAY_NAME}.log")), UNSETTLED);
    let limited = sides[1].closed.ok + sides[1].one.ok;
    env.report.row(
        section,
        "reservations the gateway could not settle in Redis (its log)",
        [None, None, unsettled.map(|n| n as f64)],
        format!("{limited} limited requests measured, plus warm-ups"),
        "0",
        unsettled.map_or(Verdict::Info, |n| Verdict::from(n == 0)),
    );
    env.report.raw(
        "limits.redis",
        json!({
            "sides": sides.each_ref().map(Side::to_json), "limiter": status,
            "redis_pid": redis.pid, "unsettled_in_log": unsettled,
            "redis_prefix": prefix,
        }),
    );
    Ok(())
}

/// Where the measured gateway keeps its counters.
#[derive(Clone, Copy)]
enum Backend {
    Memory,
    Redis,
}

/// One load shape's figures for one key, summed over its rounds.
struct Phase {
    /// Gateway CPU, answered and failed requests, wall time.
    cpu_s: f64,
    ok: u64,
    failed: u64,
    wall_s: f64,
    /// Redis server CPU and script calls (EVALSHA + EVAL) over the same windows (whole server);
    /// `None` when they could not be read.
    redis_cpu_s: Option<f64>,
    scripts: Option<u64>,
    /// Requests the limiter's fail mode decided (Redis slower than its timeout, or away).
    degraded: u64,
    latency: Histogram<u64>,
    /// CPU µs per request and p50 ms of each round (the noise, in the table and the raw JSON).
    round_cpu_us: Vec<f64>,
    round_p50_ms: Vec<f64>,
    errors: Vec<String>,
}

impl Phase {
    fn new() -> Phase {
        Phase {
            cpu_s: 0.0,
            ok: 0,
            failed: 0,
            wall_s: 0.0,
            redis_cpu_s: Some(0.0),
            scripts: Some(0),
            degraded: 0,
            latency: histogram(),
            round_cpu_us: Vec::new(),
            round_p50_ms: Vec::new(),
            errors: Vec::new(),
        }
    }

    fn per_request(&self, total: Option<f64>) -> Option<f64> {
        (self.ok > 0).then(|| total.map(|t| t / self.ok as f64))?
    }

    fn cpu_us(&self) -> Option<f64> {
        self.per_request(Some(self.cpu_s * 1e6))
    }

    fn rps(&self) -> Option<f64> {
        (self.wall_s > 0.0).then(|| self.ok as f64 / self.wall_s)
    }

    fn redis_cpu_us(&self) -> Option<f64> {
        self.per_request(self.redis_cpu_s.map(|s| s * 1e6))
    }

    fn scripts_per_request(&self) -> Option<f64> {
        self.per_request(self.scripts.map(|s| s as f64))
    }

    fn p(&self, q: f64) -> Option<f64> {
        ms(&self.latency, q)
    }

    fn to_json(&self) -> Value {
        json!({
            "ok": self.ok, "failed": self.failed, "wall_s": self.wall_s,
            "gateway_cpu_s": self.cpu_s, "cpu_us_per_request": self.cpu_us(), "rps": self.rps(),
            "round_cpu_us_per_request": self.round_cpu_us, "round_p50_ms": self.round_p50_ms,
            "redis_cpu_s": self.redis_cpu_s, "redis_cpu_us_per_request": self.redis_cpu_us(),
            "redis_script_calls": self.scripts, "redis_scripts_per_request": self.scripts_per_request(),
            "fail_mode_decisions": self.degraded, "latency_us": load::summary(&self.latency),
            "errors": self.errors,
        })
    }

    /// One round: `conns` connections for `secs`, with the gateway's (and Redis's) CPU, script
    /// calls and fail-mode decisions counted around it.
    async fn round(
        &mut self,
        gw: &Gateway,
        redis: Option<&RedisServer>,
        target: &Arc<Target>,
        conns: usize,
        secs: Duration,
    ) -> anyhow::Result<LoadResult> {
        warm(target, Kind::Plain, conns).await;
        let degraded_before = degraded_decisions(gw.admin_port).await?;
        let redis_before = redis.map(RedisServer::sample);
        let window = CpuWindow::start(&gw.proc)?;
        let run = load::closed(target.clone(), Kind::Plain, conns, secs).await;
        let (cpu_s, wall_s) = window.finish()?;
        let redis_after = redis.map(RedisServer::sample);
        self.degraded += degraded_decisions(gw.admin_port)
            .await?
            .saturating_sub(degraded_before);
        let (a, b) = (redis_before, redis_after);
        let cpu = a
            .zip(b)
            .and_then(|(a, b)| Some(b.cpu?.saturating_sub(a.cpu?)));
        let scripts = a
            .zip(b)
            .and_then(|(a, b)| Some(b.scripts?.saturating_sub(a.scripts?)));
        self.redis_cpu_s = self.redis_cpu_s.zip(cpu).map(|(s, c)| s + c.as_secs_f64());
        self.scripts = self.scripts.zip(scripts).map(|(s, c)| s + c);
        self.cpu_s += cpu_s;
        self.ok += run.ok;
        self.failed += run.failed;
        self.wall_s += wall_s;
        self.round_cpu_us
            .extend((run.ok > 0).then(|| cpu_s * 1e6 / run.ok as f64));
        self.round_p50_ms.extend(ms(&run.latency, 50.0));
        self.latency
            .add(&run.latency)
            .context("merging latency histograms")?;
        self.errors.extend(run.errors.iter().take(3).cloned());
        Ok(run)
    }
}

/// One key's measurements: a closed loop at `--conns` and one at one connection.
struct Side {
    label: &'static str,
    plain: Arc<Target>,
    closed: Phase,
    one: Phase,
}

impl Side {
    fn new(label: &'static str, port: u16, key: &str) -> Side {
        Side {
            label,
            plain: Target::with_key(
                label,
                port,
                "/v1/chat/completions",
                chat_body(MODEL, false),
                Some(key),
            ),
            closed: Phase::new(),
            one: Phase::new(),
        }
    }

    fn to_json(&self) -> Value {
        json!({ "key": self.label, "closed": self.closed.to_json(), "c1": self.one.to_json() })
    }
}

/// Both keys on `gw`, rounds in [`ORDER`], each half a point (`--secs` / 2) at `--conns` then
/// half a point at one connection.
async fn measure(
    gw: &Gateway,
    opts: &Opts,
    redis: Option<&RedisServer>,
    section: &str,
) -> anyhow::Result<[Side; 2]> {
    let mut sides = [
        Side::new("no limits", gw.http_port, CLIENT_KEY),
        Side::new("limits", gw.http_port, LIMITED_KEY),
    ];
    let half = opts.point() / 2;
    for k in ORDER {
        let side = &mut sides[k];
        let target = side.plain.clone();
        let run = side
            .closed
            .round(gw, redis, &target, opts.conns, half)
            .await?;
        let one = side.one.round(gw, redis, &target, 1, half).await?;
        eprintln!(
            "[{section}] {}: c={} {:.0} req/s, CPU {} µs/request, {} failed; c=1 p50 {} ms, CPU {} µs/request, {} failed",
            side.label,
            opts.conns,
            run.rps(),
            side.closed
                .round_cpu_us
                .last()
                .map_or("?".into(), |u| format!("{u:.1}")),
            run.failed,
            ms(&one.latency, 50.0).map_or("?".into(), |m| format!("{m:.3}")),
            side.one
                .round_cpu_us
                .last()
                .map_or("?".into(), |u| format!("{u:.1}")),
            one.failed,
        );
    }
    Ok(sides)
}

/// `lo–hi` of a round series.
fn spread(v: &[f64], digits: usize) -> String {
    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if v.is_empty() {
        String::new()
    } else {
        format!("{lo:.digits$}–{hi:.digits$}")
    }
}

/// The table rows of one backend: the baseline (the key without limits, same gateway) in the
/// `direct` column, the limited key in the `TokenRouter` column.
fn rows(report: &mut Report, opts: &Opts, section: &str, sides: &[Side; 2], backend: Backend) {
    let [none, limited] = sides;
    let redis = matches!(backend, Backend::Redis);
    let c = opts.conns;
    for ((n, l), shape) in [
        (
            (&none.closed, &limited.closed),
            format!("closed loop c={c}"),
        ),
        ((&none.one, &limited.one), "1 connection".to_string()),
    ] {
        let cpu = [n.cpu_us(), None, l.cpu_us()];
        let d = added(cpu[2], cpu[0]);
        let compare = match (d, ratio(cpu[2], cpu[0])) {
            (Some(d), Some(r)) => format!(
                "{d:+.2} µs ({r:.3}×) vs no limits; rounds {} vs {}",
                spread(&l.round_cpu_us, 1),
                spread(&n.round_cpu_us, 1)
            ),
            _ => String::new(),
        };
        // Issue 12's CPU target is for the in-memory limiter, at the suite's concurrency.
        let (target, verdict) = match (redis, shape.starts_with("closed"), d) {
            (false, true, Some(d)) => ("added < 3 µs", Verdict::from(d < MEMORY_CPU_TARGET_US)),
            _ => ("", Verdict::Info),
        };
        report.row(
            section,
            &format!(
                "CPU per request, {shape} (µs; direct column = same gateway, key without limits)"
            ),
            cpu,
            compare,
            target,
            verdict,
        );
        if redis {
            let degraded = l.degraded + n.degraded;
            report.row(
                section,
                &format!(
                    "requests the fail mode decided, {shape} (Redis slower than its 5 ms timeout)"
                ),
                [Some(n.degraded as f64), None, Some(l.degraded as f64)],
                format!("of {} limited requests", l.ok + l.failed),
                "0",
                Verdict::from(degraded == 0),
            );
        }
    }

    let rps = [none.closed.rps(), None, limited.closed.rps()];
    report.row(
        section,
        &format!("req/s, closed loop c={c} (gateway on 1 pinned core)"),
        rps,
        ratio(rps[2], rps[0])
            .map(|r| format!("{r:.3}× no limits"))
            .unwrap_or_default(),
        "",
        Verdict::Info,
    );

    for (q, name) in [(50.0, "p50"), (99.0, "p99")] {
        let v = [none.one.p(q), None, limited.one.p(q)];
        let d = added(v[2], v[0]);
        let mut compare = d
            .map(|d| format!("{d:+.3} ms vs no limits"))
            .unwrap_or_default();
        if q == 50.0 && d.is_some() {
            compare.push_str(&format!(
                "; rounds {} vs {}",
                spread(&limited.one.round_p50_ms, 3),
                spread(&none.one.round_p50_ms, 3)
            ));
        }
        let (target, verdict) = match (redis, q == 50.0, d) {
            (true, true, Some(d)) => ("added < 0.3 ms", Verdict::from(d < REDIS_P50_TARGET_MS)),
            _ => ("", Verdict::Info),
        };
        report.row(
            section,
            &format!("{name} latency at 1 connection (ms)"),
            v,
            compare,
            target,
            verdict,
        );
    }

    if redis {
        for ((n, l), shape) in [
            ((&none.one, &limited.one), "1 connection".to_string()),
            (
                (&none.closed, &limited.closed),
                format!("closed loop c={c}"),
            ),
        ] {
            let calls = [n.scripts_per_request(), None, l.scripts_per_request()];
            // Other clients of the same Redis would show in the baseline (which makes no calls).
            let clean = calls[0].is_some_and(|c| c < 0.05) && l.degraded == 0;
            let at_one = shape.starts_with('1');
            report.row(
                section,
                &format!("Redis script calls per request, {shape} (EVALSHA, whole server)"),
                calls,
                if calls[0].is_some_and(|c| c >= 0.05) {
                    format!(
                        "other clients used Redis meanwhile (baseline {})",
                        fmt(calls[0])
                    )
                } else if l.degraded > 0 {
                    "some requests skipped Redis (fail mode)".into()
                } else {
                    "expected: 1 at admission + 1 at completion".into()
                },
                if at_one {
                    "2 (one round trip each way)"
                } else {
                    ""
                },
                match calls[2] {
                    Some(c) if clean && at_one => Verdict::from((c - 2.0).abs() < 0.05),
                    _ => Verdict::Info,
                },
            );
            let rcpu = [n.redis_cpu_us(), None, l.redis_cpu_us()];
            report.row(
                section,
                &format!("Redis server CPU per request, {shape} (µs, whole server)"),
                rcpu,
                added(rcpu[2], rcpu[0])
                    .map(|d| format!("{d:+.2} µs vs no limits"))
                    .unwrap_or_default(),
                "",
                Verdict::Info,
            );
        }
    }

    let failed = |s: &Side| s.closed.failed + s.one.failed;
    if failed(none) + failed(limited) > 0 {
        let first = [&none.closed, &none.one, &limited.closed, &limited.one]
            .into_iter()
            .flat_map(|p| p.errors.iter())
            .next();
        report.row(
            section,
            "failed requests",
            [
                Some(failed(none) as f64),
                None,
                Some(failed(limited) as f64),
            ],
            first.cloned().unwrap_or_default(),
            "0",
            Verdict::Missed,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_fit_their_types() {
        let l = never_refusing();
        assert!(l.rpm > 1_000_000_000);
        assert!(!l.is_unlimited());
    }
}
