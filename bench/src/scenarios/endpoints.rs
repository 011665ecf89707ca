//! Beyond chat: the gateway's CPU per request for embeddings and the Responses API (native to
//! OpenAI, and translated to Anthropic), each against chat completions to the same simulator,
//! measured in alternating rounds on the same gateway in the same run.

use std::sync::Arc;

use serde_json::json;

use super::{Env, PROMPT, chat_body, warm};
use crate::client::{Dialect, Target};
use crate::load::{self, Kind};
use crate::procs::CpuWindow;
use crate::report::{Verdict, ratio};
use crate::stack::{self, CLIENT_KEY};

const CLAUDE: &str = "claude-sonnet-4-5";
const ROUNDS: usize = 4;

/// One measured request shape.
struct Point {
    name: &'static str,
    target: Arc<Target>,
    kind: Kind,
    cpu_s: f64,
    ok: u64,
    failed: u64,
}

impl Point {
    fn new(name: &'static str, target: Arc<Target>, kind: Kind) -> Point {
        Point {
            name,
            target,
            kind,
            cpu_s: 0.0,
            ok: 0,
            failed: 0,
        }
    }

    fn cpu_us(&self) -> Option<f64> {
        (self.ok > 0).then(|| self.cpu_s * 1e6 / self.ok as f64)
    }
}

fn responses_body(model: &str, stream: bool) -> serde_json::Value {
    json!({"model": model, "input": PROMPT, "stream": stream})
}

pub async fn run(env: &mut Env) -> anyhow::Result<()> {
    let section = "beyond chat: embeddings and Responses";
    let sim = stack::start_sim(
        &env.bins,
        &env.dir,
        "sim-anthropic-endpoints",
        "anthropic",
        0,
    )?;
    let mut admin = stack::admin(env.gw.grpc_port).await?;
    stack::add_provider(
        &mut admin,
        "bench-claude",
        "anthropic",
        &sim.base_url,
        &[CLAUDE],
    )
    .await?;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let port = env.gw.http_port;
    let at = |path: &str, body: serde_json::Value| {
        Target::with_key("tokenrouter", port, path, body, Some(CLIENT_KEY))
    };
    let claude = format!("bench-claude:{CLAUDE}");
    let embeddings = json!({"model": "text-embedding-3-small", "input": [PROMPT, "a second input", "and a third"], "encoding_format": "float"});
    let mut points = [
        Point::new(
            "chat, OpenAI",
            at("/v1/chat/completions", chat_body("gpt-4o-mini", false)),
            Kind::Plain,
        ),
        Point::new(
            "embeddings, OpenAI (3 inputs)",
            at("/v1/embeddings", embeddings),
            Kind::Plain,
        ),
        Point::new(
            "responses, OpenAI native",
            at("/v1/responses", responses_body("gpt-4o-mini", false)),
            Kind::Plain,
        ),
        Point::new(
            "chat, OpenAI, streamed",
            at("/v1/chat/completions", chat_body("gpt-4o-mini", true)),
            Kind::Stream,
        ),
        Point::new(
            "responses, OpenAI native, streamed",
            at("/v1/responses", responses_body("gpt-4o-mini", true))
                .dialect(Dialect::Responses, &[]),
            Kind::Stream,
        ),
        Point::new(
            "chat, Anthropic (translated)",
            at("/v1/chat/completions", chat_body(&claude, false)),
            Kind::Plain,
        ),
        Point::new(
            "responses, Anthropic (translated)",
            at("/v1/responses", responses_body(&claude, false)),
            Kind::Plain,
        ),
        Point::new(
            "chat, Anthropic, streamed",
            at("/v1/chat/completions", chat_body(&claude, true)),
            Kind::Stream,
        ),
        Point::new(
            "responses, Anthropic, streamed",
            at("/v1/responses", responses_body(&claude, true)).dialect(Dialect::Responses, &[]),
            Kind::Stream,
        ),
    ];
    let share = env.opts.point() / 2;
    for p in &points {
        warm(&p.target, p.kind, env.opts.conns).await;
    }
    for round in 0..ROUNDS {
        // Alternate the order so no shape always runs right after another.
        let order: Vec<usize> = if round % 2 == 0 {
            (0..points.len()).collect()
        } else {
            (0..points.len()).rev().collect()
        };
        for i in order {
            let p = &mut points[i];
            let window = CpuWindow::start(&env.gw.proc)?;
            let run = load::closed(p.target.clone(), p.kind, env.opts.conns, share).await;
            let (cpu_s, _) = window.finish()?;
            p.cpu_s += cpu_s;
            p.ok += run.ok;
            p.failed += run.failed;
            eprintln!(
                "[{section}] {}: {:.1} µs/request ({} ok, {} failed)",
                p.name,
                cpu_s * 1e6 / run.ok.max(1) as f64,
                run.ok,
                run.failed
            );
        }
    }
    // Each shape against chat to the same provider in the same mode.
    let baseline = |i: usize| match i {
        1 | 2 => 0,
        4 => 3,
        6 => 5,
        8 => 7,
        _ => i,
    };
    let mut raw = serde_json::Map::new();
    for i in 0..points.len() {
        let (p, base) = (&points[i], &points[baseline(i)]);
        let r = ratio(p.cpu_us(), base.cpu_us());
        raw.insert(p.name.into(), json!({"cpu_us": p.cpu_us(), "ok": p.ok, "failed": p.failed, "vs": base.name, "ratio": r}));
        env.report.row(
            section,
            &format!(
                "CPU per request, c={}: {} (direct column = {})",
                env.opts.conns, p.name, base.name
            ),
            [base.cpu_us(), None, p.cpu_us()],
            match r {
                Some(r) if i != baseline(i) => format!("{r:.3}× chat; {} failed", p.failed),
                _ => format!("baseline; {} failed", p.failed),
            },
            "",
            Verdict::from(p.failed == 0),
        );
    }
    env.report.raw("endpoints", serde_json::Value::Object(raw));
    Ok(())
}
