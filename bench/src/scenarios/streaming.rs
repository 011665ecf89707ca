//! Chunks forwarded as they arrive: streams from a simulator that pauses between chunks, called
//! directly and through TokenRouter; the gaps between content events the client sees must match
//! the upstream's pacing (a buffering gateway would deliver chunks in bursts, gaps near zero).

use std::time::Duration;

use serde_json::json;

use super::{Env, PACED_MODEL, PACED_MS, direct, tokenrouter, warm};
use crate::load::{self, Kind, LoadResult, ms};
use crate::report::{Verdict, added, added_text};

/// Streams running at once while the gaps are measured.
const STREAMS: usize = 4;

/// Share of gaps shorter than half the upstream pause (chunks that arrived bunched together).
fn bunched(r: &LoadResult) -> Option<f64> {
    let h = &r.gap;
    if h.is_empty() {
        return None;
    }
    let half = PACED_MS * 1000 / 2;
    let below: u64 = h
        .iter_recorded()
        .filter(|v| v.value_iterated_to() < half)
        .map(|v| v.count_at_value())
        .sum();
    Some(below as f64 / h.len() as f64)
}

/// Measures inter-chunk gaps direct and through TokenRouter.
pub async fn run(env: &mut Env) -> anyhow::Result<()> {
    let s = "openai: streaming";
    let duration = env.opts.point().max(Duration::from_secs(3));
    let targets = [
        direct(&env.paced, PACED_MODEL, true),
        tokenrouter(env, PACED_MODEL, true),
    ];
    let mut results = Vec::new();
    for t in &targets {
        warm(t, Kind::Stream, 1).await;
        let r = load::closed(t.clone(), Kind::Stream, STREAMS, duration).await;
        eprintln!("[{s}] {}: {} streams, {} failed", t.label, r.ok, r.failed);
        results.push(r);
    }
    let (d, g) = (&results[0], &results[1]);
    let gap = |q: f64| [ms(&d.gap, q), None, ms(&g.gap, q)];
    for (q, label) in [(50.0, "p50"), (99.0, "p99")] {
        let v = gap(q);
        let diff = added(v[2], v[0]);
        let verdict = match (q == 50.0, diff) {
            (true, Some(x)) => Verdict::from(x.abs() < 0.5),
            _ => Verdict::Info,
        };
        report_row(
            env,
            s,
            &format!("{label} gap between content chunks, upstream pause {PACED_MS} ms (ms)"),
            v,
            added_text(diff, "ms", "direct"),
            if q == 50.0 { "added < 0.5 ms" } else { "" },
            verdict,
        );
    }
    let (bd, bg) = (bunched(d), bunched(g));
    let forwarded = match (bd, bg) {
        (Some(a), Some(b)) => Verdict::from(b <= a + 0.01),
        _ => Verdict::Missed,
    };
    report_row(
        env,
        s,
        &format!(
            "share of chunks arriving < {} ms after the previous one",
            PACED_MS / 2
        ),
        [bd, None, bg],
        "as they arrive when ≈ direct".into(),
        "no buffering",
        forwarded,
    );
    let failed = d.failed + g.failed;
    if failed > 0 {
        report_row(
            env,
            s,
            "failed streams",
            [Some(d.failed as f64), None, Some(g.failed as f64)],
            String::new(),
            "0",
            Verdict::Missed,
        );
    }
    env.report.raw(
        "openai.streaming_gaps",
        json!({
            "upstream_pause_ms": PACED_MS, "streams": STREAMS,
            "direct": d.to_json(), "tokenrouter": g.to_json(),
        }),
    );
    Ok(())
}

fn report_row(
    env: &mut Env,
    s: &str,
    metric: &str,
    values: [Option<f64>; 3],
    compare: String,
    target: &str,
    verdict: Verdict,
) {
    env.report.row(s, metric, values, compare, target, verdict);
}
