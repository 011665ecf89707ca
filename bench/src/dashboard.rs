//! `tokenrouter-bench dashboard`: the dashboard's API over a store holding ten million usage
//! records (the default; `--records` to change it), SQLite and PostgreSQL in the same run. The
//! records span the last 30 days with a realistic shape (1,000 end users, each under one of 200
//! keys, each key using two of 20 models on 5 providers), written the way control planes write
//! them (rollups included, so the ingest rate is the real one); then every chart's and table's
//! query of each page is timed through the API itself (the router in process, sign-in by bearer
//! token), p50 and p95 over `--runs` calls.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use tokenrouter_control_plane::dashboard::{DashboardConfig, app};
use tokenrouter_control_plane::store::{PostgresStore, SqliteStore, Store};
use tokenrouter_control_plane::{ControlPlane, MasterKey};
use tokenrouter_proto::v1::admin_server::Admin;
use tokenrouter_proto::v1::{ApiKeyCreate, Limits, UsageRecord};
use tower::ServiceExt;

const BATCH: usize = 5_000;
const WRITERS: usize = 4;
const DAY_MS: i64 = 86_400_000;
const TOKEN: &str = "bench-dashboard-token";

/// Record `n` of `total`, spread evenly over the 30 days before `now`.
fn record(n: u64, total: u64, now: i64) -> UsageRecord {
    let span = 30 * DAY_MS;
    let at = now - span + (n as i64 * span) / total.max(1) as i64;
    // A cheap, fixed scramble so dimensions are spread but repeatable.
    let h = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 16;
    let user = h % 1000;
    let key = user % 200;
    let model = (key + (h >> 10) % 2 * 7) % 20;
    let stream = (h >> 12).is_multiple_of(2);
    UsageRecord {
        record_id: format!("{:012x}{n:012x}", at),
        request_id: format!("req_{n}"),
        unix_ms: at,
        api_key: format!("key-{key}"),
        provider: format!("provider-{}", model % 5),
        model: format!("model-{model}"),
        requested_model: if key.is_multiple_of(4) {
            "auto:cost".into()
        } else {
            format!("model-{model}")
        },
        status: if h.is_multiple_of(50) { 502 } else { 200 },
        prompt_tokens: 200 + h % 800,
        completion_tokens: 50 + (h >> 8) % 400,
        cached_tokens: (h >> 4) % 100,
        reasoning_tokens: 0,
        cost_usd: 0.000_4,
        latency_ms: 80 + ((h >> 20) % 4000) as u32,
        ttft_ms: if stream {
            30 + ((h >> 24) % 600) as u32
        } else {
            0
        },
        stream,
        completed: true,
        routing_mode: ["direct", "auto:cost", "rule", "pinned"][(key % 4) as usize].into(),
        attempts: 1,
        user_id: format!("user-{user}"),
        metadata_json: String::new(),
        firewall: if h.is_multiple_of(97) {
            "pii:email:mask:input:1".into()
        } else {
            String::new()
        },
        // As long as the data plane's: the mode, the chosen candidate and the reason.
        routing: format!(
            r#"{{"mode":"rule","chosen":"provider-{}/model-{model}","reason":"rule default matched"}}"#,
            model % 5
        ),
        failed_attempts: String::new(),
        request_body: String::new(),
        response_body: String::new(),
    }
}

/// Writes `total` records; records a second.
async fn fill(store: Arc<dyn Store>, total: u64, now: i64) -> anyhow::Result<f64> {
    let started = Instant::now();
    let batches = total.div_ceil(BATCH as u64);
    let mut tasks = Vec::new();
    for w in 0..WRITERS as u64 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut b = w;
            while b < batches {
                let from = b * BATCH as u64;
                let to = (from + BATCH as u64).min(total);
                let records: Vec<UsageRecord> = (from..to).map(|n| record(n, total, now)).collect();
                store.record_usage(records.into()).await?;
                b += WRITERS as u64;
            }
            anyhow::Ok(())
        }));
    }
    let mut done = 0;
    for t in tasks {
        t.await??;
        done += 1;
        eprintln!(
            "  writer {done}/{WRITERS} finished after {:.0} s",
            started.elapsed().as_secs_f64()
        );
    }
    Ok(total as f64 / started.elapsed().as_secs_f64())
}

/// p50 and p95 of `runs` GETs of `path`, in milliseconds.
async fn time(router: &axum::Router, path: &str, runs: usize) -> anyhow::Result<(f64, f64, usize)> {
    let mut ms = Vec::with_capacity(runs);
    let mut bytes = 0;
    for _ in 0..runs {
        let request = Request::get(path)
            .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
            .body(Body::empty())?;
        let started = Instant::now();
        let response = router.clone().oneshot(request).await?;
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 64 << 20).await?;
        ms.push(started.elapsed().as_secs_f64() * 1e3);
        anyhow::ensure!(
            status == StatusCode::OK,
            "{path}: {status} {}",
            String::from_utf8_lossy(&body)
        );
        bytes = body.len();
    }
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| ms[((ms.len() as f64 - 1.0) * q).round() as usize];
    Ok((at(0.5), at(0.95), bytes))
}

/// The page's queries: (page, what, path).
fn queries(now: i64, deep_cursor: &str) -> Vec<(&'static str, String, String)> {
    let range = |days: f64| format!("from={}&to={now}", now - (days * DAY_MS as f64) as i64);
    let mut q = Vec::new();
    for (label, days, by) in [
        ("last hour, by provider", 1.0 / 24.0, "provider"),
        ("last day, by provider", 1.0, "provider"),
        ("last week, by key", 7.0, "key"),
        ("last month, by user", 30.0, "user"),
        ("last month, by model", 30.0, "model"),
    ] {
        q.push((
            "overview",
            label.to_string(),
            format!("/api/overview?{}&by={by}", range(days)),
        ));
    }
    for by in [
        "provider",
        "model",
        "requested_model",
        "key",
        "user",
        "routing_mode",
    ] {
        q.push((
            "breakdown",
            format!("last month, by {by}"),
            format!("/api/breakdown?{}&by={by}", range(30.0)),
        ));
    }
    q.push((
        "breakdown",
        "last month, by user, CSV".into(),
        format!("/api/breakdown?{}&by=user&format=csv", range(30.0)),
    ));
    q.push((
        "request log",
        "last month, first page".into(),
        format!("/api/requests?{}&limit=50", range(30.0)),
    ));
    q.push((
        "request log",
        "a key's errors, last month".into(),
        format!(
            "/api/requests?{}&key=key-17&status=error&limit=50",
            range(30.0)
        ),
    ));
    q.push((
        "request log",
        "a user's masked requests".into(),
        format!(
            "/api/requests?{}&user=user-42&firewall=mask&limit=50",
            range(30.0)
        ),
    ));
    q.push((
        "request log",
        "page 200 (by cursor)".into(),
        format!(
            "/api/requests?{}&limit=50&cursor={deep_cursor}",
            range(30.0)
        ),
    ));
    q
}

async fn measure(
    name: &str,
    store: Arc<dyn Store>,
    total: u64,
    runs: usize,
) -> anyhow::Result<Vec<(String, f64, f64)>> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as i64;
    eprintln!("{name}: writing {total} records");
    let rate = fill(store.clone(), total, now).await?;
    println!("{name}: {total} records written at {rate:.0} records/s (rollups included)");
    let cp = ControlPlane::open(store, MasterKey::from_bytes(&[9; 32])).await?;
    // The 200 keys the records name, half with a daily budget and half with a monthly one, so
    // the keys page reads each key's use in both windows.
    let admin = tokenrouter_control_plane::AdminService::new(cp.clone());
    for k in 0..200 {
        let limits = Limits {
            rpm: 600,
            budget_usd: 100.0,
            budget_period: if k % 2 == 0 { "day" } else { "month" }.into(),
            ..Default::default()
        };
        let create = ApiKeyCreate {
            name: format!("key-{k}"),
            limits: Some(limits),
            ..Default::default()
        };
        admin
            .create_api_key(tonic::Request::new(create))
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    let router = app(
        cp,
        DashboardConfig {
            admin_token: Some(TOKEN.into()),
        },
    );
    // A cursor 200 pages back, as a user paging through would hold.
    let deep = record(total.saturating_sub(200 * 50 + 1), total, now);
    let cursor = format!("{}.{}", deep.unix_ms, deep.record_id);
    let detail = format!("/api/requests/{}", record(total / 2, total, now).record_id);
    let mut rows = Vec::new();
    let mut all = queries(now, &cursor);
    all.push(("request", "one request".into(), detail));
    all.push((
        "keys",
        "200 keys, use and budgets".into(),
        "/api/keys".into(),
    ));
    all.push((
        "providers",
        "every data plane".into(),
        "/api/providers".into(),
    ));
    for (page, what, path) in all {
        let (p50, p95, bytes) = time(&router, &path, runs).await?;
        println!(
            "  {name:8} {page:12} {what:32} p50 {p50:7.1} ms  p95 {p95:7.1} ms  ({bytes} bytes)"
        );
        rows.push((format!("{page}: {what}"), p50, p95));
    }
    Ok(rows)
}

/// Fills a fresh SQLite file and (with `postgres`) a fresh schema, and times every query.
pub async fn run(postgres: Option<String>, records: u64, runs: usize) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("tr-dash-bench-{}", std::process::id()));
    let sqlite: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.join("usage.db")).await?);
    let lite = measure("sqlite", sqlite, records, runs).await?;
    let pg = match &postgres {
        Some(url) => {
            let schema = format!("tr_dash_bench_{}", std::process::id());
            let store: Arc<dyn Store> =
                Arc::new(PostgresStore::connect_in_schema(url, Some(&schema)).await?);
            Some(measure("postgres", store, records, runs).await?)
        }
        None => None,
    };
    let worst = |rows: &[(String, f64, f64)]| rows.iter().map(|r| r.2).fold(0.0, f64::max);
    println!(
        "\nslowest p95: sqlite {:.1} ms (target < 800 ms)",
        worst(&lite)
    );
    if let Some(pg) = &pg {
        println!(
            "slowest p95: postgres {:.1} ms (target < 300 ms)",
            worst(pg)
        );
    }
    let _ = std::fs::remove_dir_all(dir);
    Ok(())
}
