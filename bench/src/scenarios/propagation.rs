//! Configuration propagation: `tokenrouter control-plane` and two `tokenrouter data-plane`
//! processes; each gRPC write is timed from the moment it is sent until both data planes report
//! the committed version on `/status`.

use std::time::{Duration, Instant};

use serde_json::json;

use super::Env;
use crate::procs::{Proc, Spawn, free_port};
use crate::report::Verdict;
use crate::stack;

/// Polls `/status` on admin port `port` until it serves `version`; returns when it did.
async fn until_serving(
    http: &reqwest::Client,
    port: u16,
    version: u64,
    deadline: Instant,
) -> Option<Instant> {
    let url = format!("http://127.0.0.1:{port}/status");
    while Instant::now() < deadline {
        if let Ok(r) = http.get(&url).send().await
            && let Ok(v) = r.json::<serde_json::Value>().await
            && v["version"].as_u64().is_some_and(|v| v >= version)
        {
            return Some(Instant::now());
        }
        tokio::time::sleep(Duration::from_micros(500)).await;
    }
    None
}

fn plane(env: &Env, name: &str, args: Vec<String>) -> anyhow::Result<Proc> {
    Proc::spawn(Spawn {
        name,
        program: &env.bins.tokenrouter,
        args,
        env: vec![("RUST_LOG", "info".into())],
        cpu: None,
        log_dir: &env.dir,
        capture_stdout: false,
    })
}

/// Times `--propagation-writes` writes to two data planes.
pub async fn run(env: &mut Env) -> anyhow::Result<()> {
    let s = "propagation";
    let grpc = free_port()?;
    let data = env.dir.join("cp-data");
    std::fs::create_dir_all(&data)?;
    let _cp = plane(
        env,
        "control-plane",
        vec![
            "control-plane".into(),
            "--data-dir".into(),
            data.display().to_string(),
            "--grpc-addr".into(),
            format!("127.0.0.1:{grpc}"),
            "--no-dashboard".into(),
        ],
    )?;
    let mut admin = stack::admin(grpc).await?;
    let version = stack::add_provider(
        &mut admin,
        "openai",
        "openai",
        &env.fast.base_url,
        &["gpt-4o-mini"],
    )
    .await?;
    let mut planes = Vec::new();
    for i in 1..=2 {
        let (port, admin_port) = (free_port()?, free_port()?);
        let mut p = plane(
            env,
            &format!("data-plane-{i}"),
            vec![
                "data-plane".into(),
                "--http-addr".into(),
                format!("127.0.0.1:{port}"),
                "--control-plane".into(),
                format!("http://127.0.0.1:{grpc}"),
                "--node-id".into(),
                format!("bench-dp-{i}"),
                "--admin-addr".into(),
                format!("127.0.0.1:{admin_port}"),
            ],
        )?;
        stack::wait_http(&mut p, port, "/readyz", Duration::from_secs(30)).await?;
        // `/status` is on the admin listener.
        planes.push((p, admin_port));
    }
    let http = reqwest::Client::new();
    for (_, port) in &planes {
        until_serving(
            &http,
            *port,
            version,
            Instant::now() + Duration::from_secs(10),
        )
        .await;
    }
    let provider = stack::get_provider(&mut admin, "openai").await?;
    let mut totals = Vec::new();
    let mut commits = Vec::new();
    let mut missing = 0;
    for n in 0..env.opts.propagation_writes.max(1) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let t0 = Instant::now();
        let version = stack::touch_provider(&mut admin, &provider, n as u64 + 1).await?;
        let committed = t0.elapsed();
        let deadline = t0 + Duration::from_secs(5);
        let (a, b) = tokio::join!(
            until_serving(&http, planes[0].1, version, deadline),
            until_serving(&http, planes[1].1, version, deadline)
        );
        match (a, b) {
            (Some(a), Some(b)) => {
                totals.push(a.max(b).duration_since(t0).as_secs_f64() * 1e3);
                commits.push(committed.as_secs_f64() * 1e3);
            }
            _ => missing += 1,
        }
    }
    let pct = |v: &[f64], q: f64| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        (!v.is_empty()).then(|| v[((v.len() - 1) as f64 * q).round() as usize])
    };
    let (p50, max) = (pct(&totals, 0.5), pct(&totals, 1.0));
    env.report.row(
        s,
        "gRPC write → served on both data planes, p50 (ms)",
        [None, None, p50],
        String::new(),
        "",
        Verdict::Info,
    );
    env.report.row(
        s,
        &format!(
            "gRPC write → served on both data planes, max of {} (ms)",
            totals.len() + missing
        ),
        [None, None, max],
        format!(
            "commit alone: p50 {:.1} ms",
            pct(&commits, 0.5).unwrap_or(f64::NAN)
        ),
        "< 100 ms",
        Verdict::from(missing == 0 && max.is_some_and(|m| m < 100.0)),
    );
    env.report.raw(
        "propagation",
        json!({ "total_ms": totals, "commit_ms": commits, "missing": missing }),
    );
    Ok(())
}
