//! `tokenrouter-bench`: proves what TokenRouter costs on the hot path. `all` builds the release
//! binaries, starts provider simulators and `tokenrouter serve` (production stack), measures
//! TokenRouter against the simulators called directly and a bare pass-through in the same run,
//! prints one table and writes raw JSON. Load goes to 127.0.0.1 only; every loop is bounded.

mod chaos;
mod client;
mod dashboard;
mod ingest;
mod load;
mod passthrough;
mod procs;
mod report;
mod scenarios;
mod stack;

use std::process::Command;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use serde_json::json;

use scenarios::suite;
use scenarios::{Env, Opts, PACED_MODEL, SLOW_MODEL, memory, tokenrouter};

/// Command line.
#[derive(Parser, Debug)]
#[command(name = "tokenrouter-bench", about = "TokenRouter load benchmarks")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run every scenario (or those named by --only) and print the table.
    All(Opts),
    /// A closed loop against one 127.0.0.1 port, for profiling a gateway started by hand.
    #[command(hide = true)]
    Load {
        #[arg(long)]
        port: u16,
        #[arg(long, default_value = "gpt-4o-mini")]
        model: String,
        #[arg(long)]
        key: Option<String>,
        #[arg(long, default_value_t = 16)]
        conns: usize,
        #[arg(long, default_value_t = 10.0)]
        secs: f64,
        #[arg(long)]
        stream: bool,
    },
    /// Usage records a second each store takes (SQLite, and PostgreSQL with --postgres).
    Ingest {
        /// PostgreSQL URL (a fresh schema is created in it).
        #[arg(long, env = "TOKENROUTER_TEST_POSTGRES_URL")]
        postgres: Option<String>,
        /// Batches in flight at once (data planes × batches each).
        #[arg(long, default_value_t = 8)]
        writers: usize,
        #[arg(long, default_value_t = 10.0)]
        secs: f64,
    },
    /// The dashboard's API over ten million usage records (SQLite, and PostgreSQL with
    /// --postgres): the ingest rate with rollups, then p50/p95 of every page's queries.
    Dashboard {
        /// PostgreSQL URL (a fresh schema is created in it).
        #[arg(long, env = "TOKENROUTER_TEST_POSTGRES_URL")]
        postgres: Option<String>,
        #[arg(long, default_value_t = 10_000_000)]
        records: u64,
        /// Calls of each query.
        #[arg(long, default_value_t = 20)]
        runs: usize,
    },
    /// Ten minutes of mixed load while control planes, the PostgreSQL link, Redis and a data plane
    /// are killed and restarted at random (needs PostgreSQL and redis-server).
    Chaos(chaos::ChaosOpts),
    /// The bare pass-through baseline (started by `all`; not meant to be run by hand).
    #[command(hide = true)]
    Passthrough {
        #[arg(long)]
        port: u16,
        #[arg(long)]
        upstream: String,
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Cmd::Passthrough { port, upstream } => passthrough::run(port, upstream),
        Cmd::Ingest {
            postgres,
            writers,
            secs,
        } => tokio::runtime::Runtime::new()?.block_on(ingest::run(postgres, writers, secs)),
        Cmd::Dashboard {
            postgres,
            records,
            runs,
        } => tokio::runtime::Runtime::new()?.block_on(dashboard::run(postgres, records, runs)),
        Cmd::Chaos(opts) => tokio::runtime::Runtime::new()?.block_on(async {
            tokio::select! {
                result = chaos::run(opts) => result,
                _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted; child processes stopped")),
            }
        }),
        Cmd::Load {
            port,
            model,
            key,
            conns,
            secs,
            stream,
        } => {
            let target = client::Target::with_key(
                "load",
                port,
                "/v1/chat/completions",
                scenarios::chat_body(&model, stream),
                key.as_deref(),
            );
            let kind = if stream {
                load::Kind::Stream
            } else {
                load::Kind::Plain
            };
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()?;
            let result = runtime.block_on(load::closed(
                target,
                kind,
                conns,
                Duration::from_secs_f64(secs),
            ));
            println!("{}", result.to_json());
            Ok(())
        }
        Cmd::All(opts) => {
            let dir = procs::run_dir(opts.out.clone())?;
            let bins = stack::Bins::build(opts.no_build)?;
            procs::pin_self(procs::LOAD_CPU)?;
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()?;
            // On Ctrl-C the run future is dropped, and with it every child process (killed by PID).
            runtime.block_on(async {
                tokio::select! {
                    result = all(opts, dir, bins) => result,
                    _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted; child processes stopped")),
                }
            })
        }
    }
}

/// Runs one scenario; a failure is reported as a skipped row and the run goes on.
macro_rules! scenario {
    ($env:expr, $name:literal, $call:expr) => {
        if $env.opts.wants($name) {
            if let Err(e) = $env.gw.proc.check_alive() {
                $env.report
                    .skip($name, &format!("{e:#} (stopped from outside the run?)"));
            } else if let Err(e) = $call.await {
                $env.report.skip($name, &format!("failed: {e:#}"));
            }
        }
    };
}

async fn all(opts: Opts, dir: std::path::PathBuf, bins: stack::Bins) -> anyhow::Result<()> {
    eprintln!("run directory: {}", dir.display());
    let fast = stack::start_sim(&bins, &dir, "sim-fast", "openai", 0)?;
    let paced = stack::start_sim(&bins, &dir, "sim-paced", "openai", scenarios::PACED_MS)?;
    let slow = stack::start_sim(&bins, &dir, "sim-slow", "openai", scenarios::SLOW_MS)?;
    let gw = stack::start_tokenrouter(&bins, &dir, &fast).await?;
    let mut admin = stack::admin(gw.grpc_port).await?;
    stack::add_provider(
        &mut admin,
        "paced",
        "openai",
        &paced.base_url,
        &[PACED_MODEL],
    )
    .await?;
    stack::add_provider(&mut admin, "slow", "openai", &slow.base_url, &[SLOW_MODEL]).await?;
    let passthrough = stack::start_passthrough(&bins, &dir, &fast).await?;
    let mut env = Env {
        opts,
        dir,
        bins,
        fast,
        paced,
        slow,
        gw,
        passthrough,
        report: Default::default(),
    };
    wait_served(&env, &["gpt-4o-mini", PACED_MODEL, SLOW_MODEL]).await?;
    let started = std::time::SystemTime::now();

    if env.opts.wants("memory") {
        memory::idle(&mut env)?;
    }
    scenario!(env, "openai", openai(&mut env));
    scenario!(env, "streaming", scenarios::streaming::run(&mut env));
    scenario!(env, "anthropic", scenarios::translated::anthropic(&mut env));
    scenario!(env, "auto", scenarios::translated::auto_fast(&mut env));
    scenario!(env, "endpoints", scenarios::endpoints::run(&mut env));
    scenario!(env, "memory", memory::streams(&mut env));
    scenario!(env, "swaps", scenarios::swaps::run(&mut env));
    scenario!(env, "propagation", scenarios::propagation::run(&mut env));
    scenario!(env, "soak", memory::soak(&mut env));
    // A second gateway exporting traces to a collector in this process.
    scenario!(env, "otlp", scenarios::otlp::run(&mut env));
    // Last: it adds a limited key to the gateway and a second gateway on Redis.
    scenario!(env, "limits", scenarios::limits::run(&mut env));

    // Proof that usage recording was on.
    let recorded = stack::metric_sum(env.gw.admin_port, "tokenrouter_requests_total{")
        .await
        .ok()
        .map(|n| n as u64);
    env.report.raw("metrics.requests_recorded", json!(recorded));
    let table = env.report.table();
    let meta = meta(&env, started);
    env.report.write(&env.dir, meta.clone())?;
    println!("\n{}\n", meta["summary"].as_str().unwrap_or_default());
    println!("{table}");
    println!(
        "usage recorded on /metrics: {} requests",
        recorded.map_or("?".into(), |r| r.to_string())
    );
    println!("raw JSON: {}", env.dir.join("results.json").display());
    Ok(())
}

/// TokenRouter on the OpenAI simulator, against it directly and the bare pass-through.
async fn openai(env: &mut Env) -> anyhow::Result<()> {
    suite::run_over_fast(env, "openai", "gpt-4o-mini").await
}

/// Waits until TokenRouter answers 200 for each model (providers added over gRPC arrive by watch).
async fn wait_served(env: &Env, models: &[&str]) -> anyhow::Result<()> {
    for model in models {
        let target = tokenrouter(env, model, false);
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let mut conn = client::Conn::open(target.addr).await?;
            match conn.call(&target).await {
                Ok(_) => break,
                Err(e) if std::time::Instant::now() > deadline => {
                    return Err(e).with_context(|| format!("TokenRouter never served {model}"));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }
    Ok(())
}

fn sh(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

/// When, where and on what this run measured.
fn meta(env: &Env, started: std::time::SystemTime) -> serde_json::Value {
    let date = sh("date", &["-u", "+%Y-%m-%dT%H:%M:%SZ"]);
    let commit = sh("git", &["rev-parse", "--short", "HEAD"]);
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let secs = started.elapsed().map(|d| d.as_secs()).unwrap_or(0);
    json!({
        "date": date, "commit": commit, "cpu": cpu, "nproc": sh("nproc", &[]),
        "loadavg_at_end": load.trim(), "duration_s": secs,
        "opts": format!("{:?}", env.opts),
        "summary": format!("TokenRouter benchmark {date} (commit {commit}, {cpu}); gateway pinned to CPU {}, simulators and load on CPU {}; load average at end {}; {secs} s",
            procs::GATEWAY_CPU, procs::LOAD_CPU, load.split(' ').take(3).collect::<Vec<_>>().join(" ")),
    })
}
