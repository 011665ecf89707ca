//! `tokenrouter-bench ingest`: how many usage records a second each store takes, written the way
//! control planes write them (1,000-record batches, several in flight), SQLite and PostgreSQL in
//! the same run. Each backend gets a fresh file or schema; nothing else runs meanwhile.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokenrouter_control_plane::store::{PostgresStore, SqliteStore, Store};
use tokenrouter_proto::v1::UsageRecord;

/// Records a batch carries (what a data plane sends).
const BATCH: usize = 1_000;

fn batch(writer: usize, n: u64) -> Arc<[UsageRecord]> {
    (0..BATCH)
        .map(|i| UsageRecord {
            // Time-ordered like the data plane's (12 hex digits of time, then the rest).
            record_id: format!(
                "{:012x}{writer:04x}{n:010x}{i:06x}",
                1_700_000_000_000u64 + n
            ),
            request_id: format!("req_{writer}_{n}_{i}"),
            unix_ms: 1_700_000_000_000 + n as i64,
            api_key: "bench".into(),
            provider: "openai".into(),
            model: "gpt-4o-mini".into(),
            requested_model: "gpt-4o-mini".into(),
            status: 200,
            prompt_tokens: 12,
            completion_tokens: 30,
            cost_usd: 0.000_02,
            latency_ms: 40,
            completed: true,
            routing_mode: "pinned".into(),
            attempts: 1,
            ..Default::default()
        })
        .collect()
}

/// Records a second `store` took over `secs` with `writers` batches in flight.
async fn measure(store: Arc<dyn Store>, writers: usize, secs: f64) -> anyhow::Result<f64> {
    let stored = Arc::new(AtomicU64::new(0));
    let until = Instant::now() + Duration::from_secs_f64(secs);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..writers {
        let (store, stored) = (store.clone(), stored.clone());
        tasks.push(tokio::spawn(async move {
            let mut n = 0;
            while Instant::now() < until {
                store.record_usage(batch(w, n)).await?;
                stored.fetch_add(BATCH as u64, Ordering::Relaxed);
                n += 1;
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(stored.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64())
}

/// Prints records/s for SQLite and (when `postgres` is given) PostgreSQL.
pub async fn run(postgres: Option<String>, writers: usize, secs: f64) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("tr-ingest-{}", std::process::id()));
    let sqlite: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.join("usage.db")).await?);
    let sqlite_rate = measure(sqlite, writers, secs).await?;
    println!("usage ingest, {BATCH}-record batches, {writers} in flight, {secs} s each");
    println!("  sqlite     {:>10.0} records/s", sqlite_rate);
    if let Some(url) = postgres {
        let schema = format!("tr_ingest_{}", std::process::id());
        let pg: Arc<dyn Store> =
            Arc::new(PostgresStore::connect_in_schema(&url, Some(&schema)).await?);
        let pg_rate = measure(pg, writers, secs).await?;
        println!(
            "  postgres   {:>10.0} records/s  ({:.2}x sqlite)",
            pg_rate,
            pg_rate / sqlite_rate
        );
    }
    let _ = std::fs::remove_dir_all(dir);
    Ok(())
}
