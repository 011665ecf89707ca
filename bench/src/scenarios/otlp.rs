//! `otlp`: what trace export costs per request. The run's gateway (export off) against a second
//! `serve` exporting every span over OTLP/gRPC to a collector in this process, in alternating
//! rounds (so a drift of the machine's speed falls on both): CPU per request in a closed loop at
//! `--conns`, and p50 at one connection, non-streaming, from the `fast` simulator. Both gateways
//! share the pinned gateway core; the idle one costs nothing meanwhile.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokenrouter_tests::otlp::OtlpReceiver;

use super::{Env, ORDER, chat_body, warm};
use crate::client::Target;
use crate::load::{self, Kind, histogram, ms};
use crate::procs::CpuWindow;
use crate::report::{Verdict, added, ratio};
use crate::stack::{self, CLIENT_KEY, Gateway};

/// The target: CPU added per request with export on.
const CPU_TARGET: f64 = 1.05;
const MODEL: &str = "gpt-4o-mini";

#[derive(Default)]
struct Side {
    cpu_s: f64,
    ok: u64,
    failed: u64,
    rounds_cpu_us: Vec<f64>,
    one: Option<hdrhistogram::Histogram<u64>>,
}

impl Side {
    fn cpu_us(&self) -> Option<f64> {
        (self.ok > 0).then(|| self.cpu_s * 1e6 / self.ok as f64)
    }
}

pub async fn run(env: &mut Env) -> anyhow::Result<()> {
    let section = if env.opts.otlp_sample_ratio < 1.0 {
        "otlp: trace export, sampled"
    } else {
        "otlp: trace export"
    };
    let collector = OtlpReceiver::start().await;
    let sampled = env.opts.otlp_sample_ratio.clamp(0.0, 1.0);
    let mut vars = vec![
        (
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("http://{}", collector.grpc),
        ),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc".to_string()),
        ("OTEL_SERVICE_NAME", "tokenrouter-bench".to_string()),
        // The collector shares the load generator's core: a queue deeper than the default 2048
        // rides out its pauses, so the spans measured are the spans exported.
        ("OTEL_BSP_MAX_QUEUE_SIZE", "16384".to_string()),
    ];
    if sampled < 1.0 {
        vars.push(("OTEL_TRACES_SAMPLER", "parentbased_traceidratio".into()));
        vars.push(("OTEL_TRACES_SAMPLER_ARG", sampled.to_string()));
    }
    let on = stack::start_tokenrouter_env(
        &env.bins,
        &env.dir,
        &env.fast,
        "tokenrouter-serve-otlp",
        &[],
        &vars,
    )
    .await?;
    let gateways: [&Gateway; 2] = [&env.gw, &on];
    let targets = gateways.map(|g| {
        Target::with_key(
            "otlp",
            g.http_port,
            "/v1/chat/completions",
            chat_body(MODEL, false),
            Some(CLIENT_KEY),
        )
    });
    let mut sides = [Side::default(), Side::default()];
    let half = env.opts.point() / 2;
    for k in ORDER {
        let (gw, target): (&Gateway, &Arc<Target>) = (gateways[k], &targets[k]);
        warm(target, Kind::Plain, env.opts.conns).await;
        let window = CpuWindow::start(&gw.proc)?;
        let run = load::closed(target.clone(), Kind::Plain, env.opts.conns, half).await;
        let (cpu_s, _) = window.finish()?;
        let one = load::closed(target.clone(), Kind::Plain, 1, half).await;
        let side = &mut sides[k];
        side.cpu_s += cpu_s;
        side.ok += run.ok;
        side.failed += run.failed + one.failed;
        side.rounds_cpu_us
            .extend((run.ok > 0).then(|| cpu_s * 1e6 / run.ok as f64));
        side.one
            .get_or_insert_with(histogram)
            .add(&one.latency)
            .ok();
        eprintln!(
            "[{section}] export {}: c={} CPU {:.1} µs/request; c=1 p50 {} ms",
            if k == 0 { "off" } else { "on" },
            env.opts.conns,
            cpu_s * 1e6 / run.ok.max(1) as f64,
            ms(&one.latency, 50.0).map_or("?".into(), |m| format!("{m:.3}")),
        );
    }
    // Let the last batch go out before counting what arrived.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let received = collector.spans().len() as f64;
    let dropped = stack::metric_sum(on.admin_port, "tokenrouter_otel_spans_dropped_total{")
        .await
        .ok();
    let [off_side, on_side] = &sides;
    let cpu = [off_side.cpu_us(), None, on_side.cpu_us()];
    let r = ratio(cpu[2], cpu[0]);
    env.report.row(
        section,
        &format!(
            "CPU per request, closed loop c={} (µs; direct column = same build, export off)",
            env.opts.conns
        ),
        cpu,
        match (added(cpu[2], cpu[0]), r) {
            (Some(d), Some(r)) => format!(
                "{d:+.2} µs ({r:.3}×) with export on; rounds on {:?} off {:?}",
                on_side
                    .rounds_cpu_us
                    .iter()
                    .map(|v| v.round())
                    .collect::<Vec<_>>(),
                off_side
                    .rounds_cpu_us
                    .iter()
                    .map(|v| v.round())
                    .collect::<Vec<_>>()
            ),
            _ => String::new(),
        },
        "< 1.05×",
        r.map_or(Verdict::Info, |r| Verdict::from(r < CPU_TARGET)),
    );
    let p50 = |s: &Side| s.one.as_ref().and_then(|h| ms(h, 50.0));
    let lat = [p50(off_side), None, p50(on_side)];
    env.report.row(
        section,
        "p50 at 1 connection (ms; direct column = export off)",
        lat,
        added(lat[2], lat[0])
            .map(|d| format!("{d:+.3} ms with export on"))
            .unwrap_or_default(),
        "",
        Verdict::Info,
    );
    let requests = (on_side.ok + on_side.failed) as f64;
    env.report.row(
        section,
        "spans received by the collector / dropped (export on)",
        [Some(received), None, dropped],
        format!(
            "{requests:.0} requests measured, plus warm-ups; 2 spans a sampled request, {sampled} sampled"
        ),
        "0 dropped",
        Verdict::from(dropped == Some(0.0)),
    );
    env.report.raw(
        "otlp",
        json!({
            "cpu_us_off": cpu[0], "cpu_us_on": cpu[2], "ratio": r,
            "p50_ms_off": lat[0], "p50_ms_on": lat[2],
            "rounds_cpu_us_off": off_side.rounds_cpu_us, "rounds_cpu_us_on": on_side.rounds_cpu_us,
            "failed": [off_side.failed, on_side.failed], "sample_ratio": sampled,
            "spans_received": received, "spans_dropped": dropped,
        }),
    );
    Ok(())
}
