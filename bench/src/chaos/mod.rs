//! `tokenrouter-bench chaos`: mixed load on two data planes for ten minutes while control planes,
//! the PostgreSQL link, Redis and one data plane are killed and restarted at random. Prints the
//! requests sent, answered and failed (split by whether they were in flight on a data plane being
//! killed), the usage records stored against the requests answered, and memory at start and end.

mod cast;
mod faults;
mod traffic;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use serde_json::json;
use tokenrouter_proto::v1::{ApiKeyCreate, UsageQuery};

use crate::procs::run_dir;
use crate::stack::{self, Bins};
use cast::Cast;
use faults::Event;

/// Options of the chaos run.
#[derive(Args, Debug, Clone)]
pub struct ChaosOpts {
    /// PostgreSQL the control planes share (a fresh schema is created in it).
    #[arg(long, env = "TOKENROUTER_TEST_POSTGRES_URL")]
    pub postgres: String,
    /// How long the load and the faults last.
    #[arg(long, default_value_t = 600)]
    pub secs: u64,
    /// Requests a second, all workers together.
    #[arg(long, default_value_t = 400)]
    pub rate: u32,
    #[arg(long, default_value_t = 16)]
    pub workers: usize,
    /// Seconds between faults are drawn from this range (and each fault lasts 3 to 10 s).
    #[arg(long, default_value_t = 20)]
    pub min_gap: u64,
    #[arg(long, default_value_t = 40)]
    pub max_gap: u64,
    /// Seed for the fault schedule (random when absent; printed either way).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Use the release binaries already built.
    #[arg(long)]
    pub no_build: bool,
    #[arg(long)]
    pub out: Option<std::path::PathBuf>,
}

const KEY: &str = "sk-chaos-client-0123456789abcdef";
const MODEL: &str = "gpt-4o-mini";

pub async fn run(opts: ChaosOpts) -> anyhow::Result<()> {
    let dir = run_dir(opts.out.clone())?;
    let bins = Bins::build(opts.no_build)?;
    eprintln!("run directory: {}", dir.display());
    let sim = stack::start_sim(&bins, &dir, "sim", "openai", 0)?;

    // PostgreSQL through a link the run can cut, in a schema of the run's own.
    let (pg_target, proxied) = through_proxy(&opts.postgres).await?;
    let link = tokenrouter_tests::tcp_cut::TcpCut::start(pg_target).await;
    let proxied = proxied.replace("{PORT}", &link.addr.port().to_string());
    let schema = format!("chaos_{:x}", rand::random::<u64>());
    tokenrouter_control_plane::store::PostgresStore::connect_in_schema(&proxied, Some(&schema))
        .await
        .context("creating the run's schema")?;
    let sep = if proxied.contains('?') { '&' } else { '?' };
    let store_url = format!("{proxied}{sep}options=-c%20search_path%3D{schema}");
    let master_key = format!(
        "{:016x}{:016x}{:016x}{:016x}",
        rand::random::<u64>(),
        rand::random::<u64>(),
        rand::random::<u64>(),
        rand::random::<u64>()
    );

    let mut cast = Cast::new(&bins, &dir, &store_url, &master_key)?;
    for cp in &mut cast.control_planes {
        cp.start(&dir).await?;
    }
    cast.redis.start(&dir).await?;
    let mut admin = stack::admin(cast.grpc_ports[0]).await?;
    admin
        .create_api_key(ApiKeyCreate {
            name: "chaos".into(),
            key: KEY.into(),
            ..Default::default()
        })
        .await?;
    stack::add_provider(&mut admin, "openai", "openai", &sim.base_url, &[MODEL]).await?;
    for dp in &mut cast.data_planes {
        dp.start(&dir).await?;
    }
    let targets = Arc::new(traffic::Targets {
        urls: cast
            .http_ports
            .map(|p| format!("http://127.0.0.1:{p}/v1/chat/completions")),
        key: KEY.into(),
        model: MODEL.into(),
    });
    // One request to each data plane, recorded like the rest.
    let warm_up = wait_served(&targets).await?;

    let seed = opts.seed.unwrap_or_else(rand::random);
    eprintln!(
        "chaos: {} s at {} req/s over {} workers, faults every {}-{} s, seed {seed}",
        opts.secs, opts.rate, opts.workers, opts.min_gap, opts.max_gap
    );
    let memory_start = memory(&cast);
    let started = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(traffic::Tally::default());
    let load = tokio::spawn(traffic::run(
        targets.clone(),
        opts.workers,
        opts.rate,
        started,
        stop.clone(),
        tally.clone(),
    ));
    let schedule = faults::Schedule {
        seed,
        duration: Duration::from_secs(opts.secs),
        gap: (opts.min_gap, opts.max_gap.max(opts.min_gap)),
    };
    let events = faults::play(&schedule, &mut cast, &link, &dir, started).await?;
    stop.store(true, Ordering::Relaxed);
    load.await?;
    let memory_end = memory(&cast);

    let mut dropped = Vec::new();
    for port in cast.admin_ports {
        // A data plane restarted during the run counts from its last start.
        dropped.push(
            stack::metric_sum(port, "tokenrouter_usage_dropped_total")
                .await
                .ok(),
        );
    }
    let answered = tally.answered.load(Ordering::Relaxed);
    let stored = settle_usage(cast.grpc_ports[0], answered + warm_up).await?;
    let failures = tally.failures.lock().await.clone();
    let (on_killed, unexpected): (Vec<_>, Vec<_>) = failures
        .iter()
        .partition(|f| faults::in_flight_on_a_killed_data_plane(&events, f.data_plane, f.at));
    let summary = json!({
        "seed": seed,
        "secs": opts.secs,
        "sent": tally.sent.load(Ordering::Relaxed),
        "answered": answered,
        "rerouted_after_refused_connection": tally.rerouted.load(Ordering::Relaxed),
        "failed_in_flight_on_a_killed_data_plane": on_killed.len(),
        "failed_otherwise": unexpected.len(),
        "failures_otherwise_sample": unexpected.iter().take(10).map(|f| format!("{:.1}s dp{} {}", f.at, f.data_plane + 1, f.error)).collect::<Vec<_>>(),
        "usage_stored_successes": stored.successes,
        "usage_stored_failures": stored.failures,
        "usage_missing": (answered + warm_up).saturating_sub(stored.successes),
        "usage_extra": stored.successes.saturating_sub(answered + warm_up),
        "warm_up_requests": warm_up,
        "usage_dropped_counter_per_data_plane": dropped,
        "events": events.iter().map(Event::describe).collect::<Vec<_>>(),
        "memory_start_bytes": memory_start,
        "memory_end_bytes": memory_end,
    });
    std::fs::write(dir.join("chaos.json"), serde_json::to_vec_pretty(&summary)?)?;
    print_summary(&summary, &events);
    drop(sim);
    Ok(())
}

/// The host:port the URL names, and the URL with it replaced by `127.0.0.1:{PORT}`.
async fn through_proxy(url: &str) -> anyhow::Result<(SocketAddr, String)> {
    let rest = url
        .split_once("://")
        .map(|(_, r)| r)
        .context("a postgres:// URL")?;
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let host_port = authority.rsplit('@').next().unwrap_or(authority);
    let with_port = if host_port.contains(':') {
        host_port.to_string()
    } else {
        format!("{host_port}:5432")
    };
    let target = tokio::net::lookup_host(&with_port)
        .await?
        .next()
        .with_context(|| format!("resolving {with_port}"))?;
    Ok((target, url.replacen(host_port, "127.0.0.1:{PORT}", 1)))
}

/// Waits until both data planes answer; returns how many requests were answered.
async fn wait_served(targets: &traffic::Targets) -> anyhow::Result<u64> {
    let http = reqwest::Client::new();
    for url in &targets.urls {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ok = http
                .post(url)
                .bearer_auth(&targets.key)
                .json(&json!({"model": targets.model, "messages": [{"role": "user", "content": "up?"}]}))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ok {
                break;
            }
            anyhow::ensure!(Instant::now() < deadline, "{url} never served");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(targets.urls.len() as u64)
}

fn memory(cast: &Cast) -> serde_json::Value {
    let mut out = serde_json::Map::new();
    for m in cast
        .control_planes
        .iter()
        .chain(&cast.data_planes)
        .chain([&cast.redis])
    {
        out.insert(m.name.clone(), json!(m.rss()));
    }
    out.into()
}

struct Stored {
    successes: u64,
    failures: u64,
}

/// Once every member is back: the usage the store holds, polled until it reaches `answered` or
/// stops growing for 15 s (at most 3 minutes).
async fn settle_usage(grpc_port: u16, answered: u64) -> anyhow::Result<Stored> {
    let mut admin = stack::admin(grpc_port).await?;
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut last = (u64::MAX, Instant::now());
    loop {
        let stored = match admin.get_usage(UsageQuery::default()).await {
            Ok(r) => {
                let rows = r.into_inner().rows;
                let requests: u64 = rows.iter().map(|r| r.requests).sum();
                let failures: u64 = rows.iter().map(|r| r.failures).sum();
                Some(Stored {
                    successes: requests - failures,
                    failures,
                })
            }
            Err(_) => None,
        };
        if let Some(s) = stored {
            if s.successes >= answered || Instant::now() > deadline {
                return Ok(s);
            }
            if s.successes != last.0 {
                last = (s.successes, Instant::now());
            } else if last.1.elapsed() > Duration::from_secs(15) {
                return Ok(s);
            }
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the store never answered GetUsage"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn print_summary(s: &serde_json::Value, events: &[Event]) {
    println!("\nchaos run: {} s, seed {}", s["secs"], s["seed"]);
    println!("faults:");
    for e in events {
        println!("  {}", e.describe());
    }
    println!(
        "requests: {} sent, {} answered, {} rerouted after a refused connection",
        s["sent"], s["answered"], s["rerouted_after_refused_connection"]
    );
    println!(
        "failed:   {} in flight on a killed data plane, {} otherwise {}",
        s["failed_in_flight_on_a_killed_data_plane"],
        s["failed_otherwise"],
        s["failures_otherwise_sample"]
    );
    println!(
        "usage:    {} stored for {} answered (+{} warm-up): {} missing, {} extra; plus {} records of failed requests",
        s["usage_stored_successes"],
        s["answered"],
        s["warm_up_requests"],
        s["usage_missing"],
        s["usage_extra"],
        s["usage_stored_failures"]
    );
    println!(
        "tokenrouter_usage_dropped_total per data plane: {}",
        s["usage_dropped_counter_per_data_plane"]
    );
    println!("memory (RSS bytes) at start: {}", s["memory_start_bytes"]);
    println!("memory (RSS bytes) at end:   {}", s["memory_end_bytes"]);
}
