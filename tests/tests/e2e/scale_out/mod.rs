//! Several control planes on one PostgreSQL database, several data planes following them: a
//! control plane lost under load costs no request and no usage record; commits reach every data
//! plane whichever control plane it is on; usage survives an outage exactly.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use tokenrouter_data_plane::{SpoolConfig, WatchConfig};
use tokenrouter_proto::v1::{ApiKeyCreate, UsageQuery};
use tokenrouter_tests::{
    Backend, ControlPlaneHandle, DataPlaneHandle, data_plane_config, reopen_store,
};

use crate::setup::{self, KEY};

mod crash;
mod egress;
mod failover;
mod reasoning;
mod store_loss;
mod tls;

/// What the clients saw: answers, failures, and the cost the answers reported.
#[derive(Default)]
struct Tally {
    answered: AtomicU64,
    failed: AtomicU64,
    /// Cost shown to clients, in nano-dollars (summed exactly).
    cost_nano: AtomicU64,
}

/// `workers` clients sending `each` requests round-robin over `dps`.
async fn load(dps: Vec<String>, workers: usize, each: usize, tally: Arc<Tally>) {
    let http = reqwest::Client::new();
    let mut tasks = Vec::new();
    for w in 0..workers {
        let (http, dps, tally) = (http.clone(), dps.clone(), tally.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..each {
                let url = &dps[(w + i) % dps.len()];
                let sent = http
                    .post(format!("{url}/v1/chat/completions"))
                    .bearer_auth(KEY)
                    .json(&json!({"model": "gpt-4o-mini", "messages": setup::user_message("count me")}))
                    .send()
                    .await;
                let body = match sent {
                    Ok(r) if r.status().is_success() => r.json::<serde_json::Value>().await.ok(),
                    _ => None,
                };
                match body {
                    Some(body) => {
                        let cost = body["cost_usd"].as_f64().unwrap_or(0.0);
                        tally
                            .cost_nano
                            .fetch_add((cost * 1e9).round() as u64, Ordering::Relaxed);
                        tally.answered.fetch_add(1, Ordering::Relaxed);
                    }
                    None => {
                        tally.failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

/// Waits until the store holds `expected` records and returns (records, cost in nano-dollars).
async fn stored(cp: &ControlPlaneHandle, expected: u64) -> (u64, u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let report = cp.cp.usage(UsageQuery::default()).await.unwrap();
        let (n, cost) = report
            .rows
            .first()
            .map_or((0, 0.0), |r| (r.requests, r.cost_usd));
        if n >= expected || Instant::now() > deadline {
            return (n, (cost * 1e9).round() as u64);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn spool_dir() -> SpoolConfig {
    SpoolConfig {
        dir: std::env::temp_dir().join(format!("tr-spool-{}", uuid::Uuid::new_v4().simple())),
        max_bytes: tokenrouter_data_plane::DEFAULT_SPOOL_MAX_BYTES,
    }
}

/// A data plane following `urls`, starting on the `first`-th.
async fn follower(name: &str, urls: &str, first: usize) -> (DataPlaneHandle, WatchConfig) {
    let watch = WatchConfig::new(urls);
    watch.active.store(first, Ordering::Relaxed);
    let mut config = data_plane_config(name);
    config.usage_spool = Some(spool_dir());
    (
        DataPlaneHandle::start_watching(config, watch.clone()).await,
        watch,
    )
}

/// Writes an API key through `cp` and returns how long after the commit returned every data plane
/// served it.
async fn served_after_commit(
    cp: &ControlPlaneHandle,
    dps: &[(DataPlaneHandle, WatchConfig)],
    name: &str,
) -> Duration {
    let version = cp
        .admin()
        .await
        .create_api_key(ApiKeyCreate {
            name: name.into(),
            key: format!("sk-{name}"),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .version;
    let started = Instant::now();
    for (dp, _) in dps {
        dp.wait_for_version(version).await;
    }
    started.elapsed()
}
