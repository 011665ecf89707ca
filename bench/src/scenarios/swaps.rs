//! Snapshot swaps under load: the same mixed load (non-streaming requests plus long streams that
//! stay in flight across many swaps) first steady, then while a gRPC Admin client commits a real
//! configuration change every 100 ms. No request may fail, and p99 must not move.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;

use super::{Env, PACED_MODEL, tokenrouter};
use crate::load::{self, Kind, LoadResult, ms};
use crate::report::{Verdict, ratio, ratio_text};
use crate::stack;

/// Time between two Admin writes.
const SWAP_EVERY: Duration = Duration::from_millis(100);
/// Streams kept running (each lasts about a second, so each spans about ten swaps).
const STREAMS: usize = 8;

async fn phase(env: &Env, duration: Duration) -> anyhow::Result<(LoadResult, LoadResult)> {
    let conns = (env.opts.conns / 2).max(1);
    let plain = tokio::spawn(load::closed(
        tokenrouter(env, "gpt-4o-mini", false),
        Kind::Plain,
        conns,
        duration,
    ));
    let streams = tokio::spawn(load::closed(
        tokenrouter(env, PACED_MODEL, true),
        Kind::Stream,
        STREAMS,
        duration,
    ));
    Ok((plain.await?, streams.await?))
}

/// Runs the steady and the swapping phase and reports failures and p99.
pub async fn run(env: &mut Env) -> anyhow::Result<()> {
    let s = "snapshot swaps";
    let duration = Duration::from_secs_f64(env.opts.swap_secs.max(2.0));
    let mut admin = stack::admin(env.gw.grpc_port).await?;
    let providers = [
        stack::get_provider(&mut admin, "openai").await?,
        stack::get_provider(&mut admin, "paced").await?,
    ];
    let version_before = serving_version(env.gw.admin_port).await?;
    let (steady_plain, steady_streams) = phase(env, duration).await?;
    eprintln!(
        "[swaps] steady: {} requests, {} streams, {} failed",
        steady_plain.ok,
        steady_streams.ok,
        steady_plain.failed + steady_streams.failed
    );

    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(SWAP_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let (mut writes, mut errors, mut slowest) = (0u64, 0u64, Duration::ZERO);
            let deadline = Instant::now() + duration + Duration::from_secs(5);
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                tick.tick().await;
                let t0 = Instant::now();
                let p = &providers[(writes % 2) as usize];
                match stack::touch_provider(&mut admin, p, writes).await {
                    Ok(_) => writes += 1,
                    Err(e) => {
                        errors += 1;
                        writes += 1;
                        eprintln!("[swaps] write failed: {e:#}");
                    }
                }
                slowest = slowest.max(t0.elapsed());
            }
            (writes, errors, slowest)
        })
    };
    let (swap_plain, swap_streams) = phase(env, duration).await?;
    stop.store(true, Ordering::Relaxed);
    let (writes, write_errors, slowest) = writer.await?;
    let version_after = serving_version(env.gw.admin_port).await?;
    let served = version_after.saturating_sub(version_before);
    eprintln!(
        "[swaps] swapping: {} requests, {} streams, {} failed; {writes} writes, versions {version_before} → {version_after}",
        swap_plain.ok,
        swap_streams.ok,
        swap_plain.failed + swap_streams.failed
    );

    let failed = swap_plain.failed + swap_streams.failed;
    let total = swap_plain.ok + swap_streams.ok + failed;
    env.report.row(
        s,
        &format!(
            "failed requests during {writes} swaps (of {total}, {} in-flight streams)",
            swap_streams.ok + swap_streams.failed
        ),
        [None, None, Some(failed as f64)],
        format!(
            "steady phase: {} failed",
            steady_plain.failed + steady_streams.failed
        ),
        "0",
        Verdict::from(failed == 0 && served > 0 && write_errors == 0),
    );
    let p99 = [
        ms(&steady_plain.latency, 99.0),
        ms(&swap_plain.latency, 99.0),
    ];
    let moved_ok = match p99 {
        [Some(a), Some(b)] => b <= a * 1.25 + 0.5,
        _ => false,
    };
    env.report.row(
        s,
        "non-streaming p99, steady (ms)",
        [None, None, p99[0]],
        String::new(),
        "",
        Verdict::Info,
    );
    env.report.row(
        s,
        "non-streaming p99, swapping every 100 ms (ms)",
        [None, None, p99[1]],
        ratio_text(ratio(p99[1], p99[0]), "steady"),
        "≈ steady (≤ 1.25× + 0.5 ms)",
        Verdict::from(moved_ok),
    );
    env.report.row(
        s,
        "snapshot versions served during the swap phase",
        [None, None, Some(served as f64)],
        format!(
            "{writes} writes, slowest {:.1} ms",
            slowest.as_secs_f64() * 1e3
        ),
        "",
        Verdict::Info,
    );
    env.report.raw(
        "swaps",
        json!({
            "steady": { "plain": steady_plain.to_json(), "streams": steady_streams.to_json() },
            "swapping": { "plain": swap_plain.to_json(), "streams": swap_streams.to_json() },
            "writes": writes, "write_errors": write_errors, "versions_served": served,
            "slowest_write_ms": slowest.as_secs_f64() * 1e3,
        }),
    );
    Ok(())
}

/// The snapshot version a data plane serves (its `/status`).
/// The snapshot version on the admin listener at `port`.
pub async fn serving_version(port: u16) -> anyhow::Result<u64> {
    let url = format!("http://127.0.0.1:{port}/status");
    let status: serde_json::Value = reqwest::get(url).await?.json().await?;
    status["version"]
        .as_u64()
        .ok_or_else(|| anyhow::anyhow!("/status has no version"))
}
