//! Memory: resident size at idle, with many concurrent open streams (per-stream cost, against the
//! bare pass-through), and over a soak under steady mixed load (no growth allowed).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;

use super::{Env, PACED_MODEL, SLOW_MODEL, tokenrouter};
use crate::client::{Conn, Target};
use crate::load::{self, Kind};
use crate::procs::Proc;
use crate::report::{Verdict, ratio, ratio_text};
use crate::stack;

const MIB: f64 = 1024.0 * 1024.0;

/// Idle RSS of TokenRouter and the pass-through, before any measured load.
pub fn idle(env: &mut Env) -> anyhow::Result<()> {
    let tr = env.gw.proc.rss_bytes()? as f64 / MIB;
    let pt = env.passthrough.0.rss_bytes()? as f64 / MIB;
    env.report.row(
        "memory",
        "idle RSS after start (MB)",
        [None, Some(pt), Some(tr)],
        ratio_text(ratio(Some(tr), Some(pt)), "pass-through"),
        "< 20 MB",
        Verdict::from(tr < 20.0),
    );
    env.report.raw(
        "memory.idle_rss_mib",
        json!({ "passthrough": pt, "tokenrouter": tr }),
    );
    Ok(())
}

/// Opens `n` streams against `target` at once, waits until every one has sent content, and returns
/// (RSS before, highest RSS while all were open, streams that failed, seconds until all were open).
async fn hold(
    proc: &Proc,
    target: Arc<Target>,
    n: usize,
) -> anyhow::Result<(u64, u64, usize, f64)> {
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = proc.rss_bytes()?;
    let open = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(n);
    for _ in 0..n {
        let (target, open, failed) = (target.clone(), open.clone(), failed.clone());
        tasks.push(tokio::spawn(async move {
            let outcome = match Conn::open(target.addr).await {
                Ok(mut c) => c.stream_signal(&target, Some(&open)).await.map(drop),
                Err(e) => Err(e),
            };
            if outcome.is_err() {
                failed.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let deadline = started + Duration::from_secs(60);
    while open.load(Ordering::Relaxed) + failed.load(Ordering::Relaxed) < n
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let ramp = started.elapsed().as_secs_f64();
    let mut peak = proc.rss_bytes()?;
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        peak = peak.max(proc.rss_bytes()?);
    }
    for t in tasks {
        let _ = t.await;
    }
    Ok((before, peak, failed.load(Ordering::Relaxed), ramp))
}

/// RSS with `--streams` concurrent streams open through TokenRouter and through the pass-through.
pub async fn streams(env: &mut Env) -> anyhow::Result<()> {
    let n = env.opts.streams;
    let (pt, pt_port) = stack::start_passthrough(&env.bins, &env.dir, &env.slow).await?;
    let pt_target = Target::local(
        "pass-through",
        pt_port,
        "/v1/chat/completions",
        super::chat_body(SLOW_MODEL, true),
    );
    let tr_target = tokenrouter(env, SLOW_MODEL, true);
    let mut per_stream = [None, None, None];
    let mut raw = Vec::new();
    let mut failures = 0;
    for (i, proc, target) in [(1, &pt, pt_target), (2, &env.gw.proc, tr_target)] {
        let (before, peak, failed, ramp) = hold(proc, target, n).await?;
        let kib = (peak.saturating_sub(before)) as f64 / 1024.0 / n as f64;
        eprintln!(
            "[memory] {} streams via {}: RSS {:.1} → {:.1} MB, {failed} failed, all open after {ramp:.1} s",
            n,
            proc.name,
            before as f64 / MIB,
            peak as f64 / MIB
        );
        per_stream[i] = Some(kib);
        failures += failed;
        raw.push(json!({ "process": proc.name, "rss_before": before, "rss_peak": peak, "failed": failed, "ramp_s": ramp, "kib_per_stream": kib }));
    }
    drop(pt);
    env.report.row(
        "memory",
        &format!("RSS per open stream, {n} concurrent (KiB)"),
        per_stream,
        ratio_text(ratio(per_stream[2], per_stream[1]), "pass-through"),
        "< 32 KiB",
        Verdict::from(per_stream[2].is_some_and(|k| k < 32.0) && failures == 0),
    );
    if failures > 0 {
        env.report.row(
            "memory",
            "failed streams while holding them open",
            [None, None, Some(failures as f64)],
            String::new(),
            "0",
            Verdict::Missed,
        );
    }
    env.report.raw("memory.concurrent_streams", json!(raw));
    Ok(())
}

/// Steady mixed load for `--soak-secs`: RSS sampled throughout must not grow.
pub async fn soak(env: &mut Env) -> anyhow::Result<()> {
    let secs = env.opts.soak_secs.max(10);
    let duration = Duration::from_secs(secs);
    eprintln!(
        "[soak] {secs} s at {:.0} req/s plus 16 streams...",
        env.opts.soak_rate
    );
    let plain = load::open(
        tokenrouter(env, "gpt-4o-mini", false),
        Kind::Plain,
        env.opts.soak_rate,
        duration,
        64,
    );
    let streams = load::closed(
        tokenrouter(env, PACED_MODEL, true),
        Kind::Stream,
        16,
        duration,
    );
    let plain = tokio::spawn(plain);
    let streams = tokio::spawn(streams);
    let step = Duration::from_secs_f64((secs as f64 / 60.0).max(1.0));
    let started = Instant::now();
    let mut samples: Vec<(f64, f64)> = Vec::new();
    while started.elapsed() < duration {
        samples.push((
            started.elapsed().as_secs_f64(),
            env.gw.proc.rss_bytes()? as f64 / MIB,
        ));
        tokio::time::sleep(step).await;
    }
    let (plain, streams) = (plain.await?, streams.await?);
    samples.push((
        started.elapsed().as_secs_f64(),
        env.gw.proc.rss_bytes()? as f64 / MIB,
    ));
    let window = |from: f64, to: f64| {
        let v: Vec<f64> = samples
            .iter()
            .filter(|(t, _)| *t >= from * secs as f64 && *t <= to * secs as f64)
            .map(|s| s.1)
            .collect();
        (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
    };
    let (early, late) = (window(0.2, 0.3), window(0.9, 1.01));
    let growth = match (early, late) {
        (Some(e), Some(l)) => Some(l - e),
        _ => None,
    };
    let flat = growth.is_some_and(|g| g <= (1.0f64).max(early.unwrap_or(0.0) * 0.02));
    env.report.row(
        "soak",
        "RSS at 20–30% of the soak (MB)",
        [None, None, early],
        String::new(),
        "",
        Verdict::Info,
    );
    env.report.row(
        "soak",
        &format!("RSS in the last 10% of a {secs} s soak (MB)"),
        [None, None, late],
        String::new(),
        "",
        Verdict::Info,
    );
    env.report.row(
        "soak",
        "RSS growth over the soak (MB)",
        [None, None, growth],
        String::new(),
        "no growth (≤ max(1 MB, 2%))",
        Verdict::from(flat),
    );
    let failed = plain.failed + streams.failed;
    env.report.row(
        "soak",
        &format!(
            "failed requests during the soak (of {})",
            plain.ok + streams.ok + failed
        ),
        [None, None, Some(failed as f64)],
        String::new(),
        "0 failed",
        Verdict::from(failed == 0),
    );
    env.report.raw(
        "soak",
        json!({
            "secs": secs, "rate": env.opts.soak_rate, "rss_mib_samples": samples,
            "plain": plain.to_json(), "streams": streams.to_json(),
        }),
    );
    Ok(())
}
