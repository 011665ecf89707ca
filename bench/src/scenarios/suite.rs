//! The per-route suite: the same measurements against the direct baseline, the bare pass-through
//! (when the route can have one) and TokenRouter, one after another, each gateway alone on its
//! pinned core: closed-loop throughput with CPU per request, latency at one connection and at a
//! fixed open-loop rate, and time to first token of a stream.

use std::sync::Arc;

use serde_json::json;

use super::{Opts, warm};
use crate::client::Target;
use crate::load::{self, Kind, LoadResult, ms};
use crate::procs::{CpuWindow, Proc};
use crate::report::{Report, Verdict, added, added_text, ratio, ratio_text};

/// One column of the comparison: what to call and which process does the work.
pub struct Column<'a> {
    pub plain: Arc<Target>,
    pub stream: Arc<Target>,
    pub proc: &'a Proc,
}

/// A route measured three ways.
pub struct Route<'a> {
    pub section: &'a str,
    pub direct: Column<'a>,
    pub passthrough: Option<Column<'a>>,
    pub tokenrouter: Column<'a>,
}

impl Route<'_> {
    fn columns(&self) -> [Option<&Column<'_>>; 3] {
        [
            Some(&self.direct),
            self.passthrough.as_ref(),
            Some(&self.tokenrouter),
        ]
    }
}

/// A closed loop with the worker process's CPU time measured around it.
pub struct CpuRun {
    pub load: LoadResult,
    pub cpu_s: f64,
    pub wall_s: f64,
}

impl CpuRun {
    /// CPU microseconds per successful request.
    pub fn cpu_us(&self) -> Option<f64> {
        (self.load.ok > 0).then(|| self.cpu_s * 1e6 / self.load.ok as f64)
    }
}

/// Runs a closed loop against `col` and measures its process's CPU.
pub async fn cpu_run(col: &Column<'_>, kind: Kind, opts: &Opts) -> anyhow::Result<CpuRun> {
    let target = match kind {
        Kind::Plain => &col.plain,
        Kind::Stream => &col.stream,
    };
    warm(target, kind, opts.conns).await;
    let window = CpuWindow::start(col.proc)?;
    let load = load::closed(target.clone(), kind, opts.conns, opts.point()).await;
    let (cpu_s, wall_s) = window.finish()?;
    Ok(CpuRun {
        load,
        cpu_s,
        wall_s,
    })
}

/// Runs the whole suite for `route`.
pub async fn run(route: &Route<'_>, opts: &Opts, report: &mut Report) -> anyhow::Result<()> {
    throughput(route, opts, report, Kind::Plain).await?;
    throughput(route, opts, report, Kind::Stream).await?;
    latency(route, opts, report).await;
    Ok(())
}

async fn throughput(
    route: &Route<'_>,
    opts: &Opts,
    report: &mut Report,
    kind: Kind,
) -> anyhow::Result<()> {
    let s = route.section;
    let what = if kind == Kind::Plain {
        "non-streaming"
    } else {
        "streaming"
    };
    let mut runs: [Option<CpuRun>; 3] = [None, None, None];
    for (i, col) in route.columns().into_iter().enumerate() {
        if let Some(col) = col {
            let run = cpu_run(col, kind, opts).await?;
            eprintln!(
                "[{s}] {what} {}: {:.0} req/s, {} failed, CPU {:.2} s over {:.2} s",
                col.plain.label,
                run.load.rps(),
                run.load.failed,
                run.cpu_s,
                run.wall_s
            );
            runs[i] = Some(run);
        }
    }
    let rps = runs.each_ref().map(|r| r.as_ref().map(|r| r.load.rps()));
    let cpu = runs.each_ref().map(|r| r.as_ref().and_then(CpuRun::cpu_us));
    let per_core = cpu.map(|c| c.map(|us| 1e6 / us));
    let failed: u64 = runs.iter().flatten().map(|r| r.load.failed).sum();
    report.raw(
        &format!("{s}.{what}.closed_c{}", opts.conns),
        json!(runs.each_ref().map(|r| r.as_ref().map(|r| json!({
            "load": r.load.to_json(), "cpu_s": r.cpu_s, "wall_s": r.wall_s,
            "cpu_us_per_request": r.cpu_us(), "cpu_utilisation": r.cpu_s / r.wall_s.max(1e-9),
        })))),
    );
    report.row(
        s,
        &format!(
            "{what} req/s, closed loop c={} (gateway on 1 pinned core)",
            opts.conns
        ),
        rps,
        ratio_text(ratio(rps[2], rps[1]), "pass-through"),
        "",
        if failed == 0 {
            Verdict::Info
        } else {
            Verdict::Missed
        },
    );
    let plain = kind == Kind::Plain;
    report.row(
        s,
        &format!("{what} CPU per request (µs; direct = simulator)"),
        cpu,
        ratio_text(ratio(cpu[2], cpu[1]), "pass-through"),
        if plain { "< 50 µs" } else { "" },
        match cpu[2] {
            Some(us) if plain => Verdict::from(us < 50.0),
            _ => Verdict::Info,
        },
    );
    let r = ratio(per_core[2], per_core[1]);
    report.row(
        s,
        &format!("{what} req/s per core (1 / CPU per request)"),
        per_core,
        ratio_text(r, "pass-through"),
        if plain && route.passthrough.is_some() {
            "≥ 0.7× pass-through"
        } else {
            ""
        },
        match r {
            Some(r) if plain => Verdict::from(r >= 0.7),
            _ => Verdict::Info,
        },
    );
    Ok(())
}

/// A latency row: metric, values per column, target text, limit on the added value.
type Point = (String, [Option<f64>; 3], &'static str, Option<f64>);

async fn latency(route: &Route<'_>, opts: &Opts, report: &mut Report) {
    let s = route.section;
    let mut one: [Option<LoadResult>; 3] = [None, None, None];
    let mut open: [Option<LoadResult>; 3] = [None, None, None];
    let mut ttft: [Option<LoadResult>; 3] = [None, None, None];
    for (i, col) in route.columns().into_iter().enumerate() {
        let Some(col) = col else { continue };
        warm(&col.plain, Kind::Plain, 1).await;
        one[i] = Some(load::closed(col.plain.clone(), Kind::Plain, 1, opts.point()).await);
        open[i] =
            Some(load::open(col.plain.clone(), Kind::Plain, opts.rate, opts.point(), 64).await);
        warm(&col.stream, Kind::Stream, 1).await;
        ttft[i] = Some(load::closed(col.stream.clone(), Kind::Stream, 1, opts.point()).await);
        eprintln!("[{s}] latency points done for {}", col.plain.label);
    }
    let pick = |set: &[Option<LoadResult>; 3],
                q: f64,
                h: fn(&LoadResult) -> &hdrhistogram::Histogram<u64>| {
        set.each_ref().map(|r| r.as_ref().and_then(|r| ms(h(r), q)))
    };
    fn lat(r: &LoadResult) -> &hdrhistogram::Histogram<u64> {
        &r.latency
    }
    fn first(r: &LoadResult) -> &hdrhistogram::Histogram<u64> {
        &r.ttft
    }
    let rate = opts.rate;
    let points: [Point; 6] = [
        (
            "p50 latency at 1 connection (ms)".into(),
            pick(&one, 50.0, lat),
            "added < 0.25 ms",
            Some(0.25),
        ),
        (
            "p99 latency at 1 connection (ms)".into(),
            pick(&one, 99.0, lat),
            "added < 2 ms (DESIGN §7)",
            Some(2.0),
        ),
        (
            format!("p50 latency, open loop {rate:.0} req/s (ms)"),
            pick(&open, 50.0, lat),
            "added < 1 ms (DESIGN §7)",
            Some(1.0),
        ),
        (
            format!("p99 latency, open loop {rate:.0} req/s (ms)"),
            pick(&open, 99.0, lat),
            "added < 2 ms (DESIGN §7)",
            Some(2.0),
        ),
        (
            "p50 time to first token, 1 stream (ms)".into(),
            pick(&ttft, 50.0, first),
            "added < 0.5 ms",
            Some(0.5),
        ),
        (
            "p99 time to first token, 1 stream (ms)".into(),
            pick(&ttft, 99.0, first),
            "",
            None,
        ),
    ];
    for (metric, values, target, limit) in points {
        let d = added(values[2], values[0]);
        let mut compare = added_text(d, "ms", "direct");
        if let Some(p) = added(values[2], values[1]) {
            compare.push_str(&format!(", {p:+.3} ms vs pass-through"));
        }
        let verdict = match (limit, d) {
            (Some(l), Some(d)) => Verdict::from(d < l),
            _ => Verdict::Info,
        };
        report.row(s, &metric, values, compare, target, verdict);
    }
    let failed: u64 = [&one, &open, &ttft]
        .iter()
        .flat_map(|set| set.iter().flatten())
        .map(|r| r.failed)
        .sum();
    if failed > 0 {
        report.row(
            s,
            "failed requests in latency points",
            [None, None, Some(failed as f64)],
            String::new(),
            "0",
            Verdict::Missed,
        );
    }
    let raw = |set: &[Option<LoadResult>; 3]| {
        json!(set.each_ref().map(|r| r.as_ref().map(LoadResult::to_json)))
    };
    report.raw(&format!("{s}.latency_c1"), raw(&one));
    report.raw(&format!("{s}.latency_open_{rate:.0}"), raw(&open));
    report.raw(&format!("{s}.ttft_c1"), raw(&ttft));
}

/// Runs the suite for TokenRouter asked for `model`, against the `fast` OpenAI simulator (asked for
/// `gpt-4o-mini`) and the bare pass-through in front of it.
pub async fn run_over_fast(env: &mut super::Env, section: &str, model: &str) -> anyhow::Result<()> {
    use super::{direct, passthrough, tokenrouter};
    let route = Route {
        section,
        direct: Column {
            plain: direct(&env.fast, "gpt-4o-mini", false),
            stream: direct(&env.fast, "gpt-4o-mini", true),
            proc: &env.fast.proc,
        },
        passthrough: Some(Column {
            plain: passthrough(env, false),
            stream: passthrough(env, true),
            proc: &env.passthrough.0,
        }),
        tokenrouter: Column {
            plain: tokenrouter(env, model, false),
            stream: tokenrouter(env, model, true),
            proc: &env.gw.proc,
        },
    };
    run(&route, &env.opts, &mut env.report).await
}
