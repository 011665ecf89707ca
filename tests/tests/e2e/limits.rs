//! Spend control end to end: limits that hold across data planes sharing the machine's Redis
//! (`TOKENROUTER_TEST_REDIS_URL`, a key prefix per test), budgets that concurrent requests cannot
//! overspend, concurrency slots that return when a data plane dies, and each fail mode when a
//! Redis of the test's own goes away.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokenrouter_data_plane::DataPlaneConfig;
use tokenrouter_data_plane::limits::{FailMode, LimiterConfig};
use tokenrouter_proto::v1::*;
use tokenrouter_simulators::{Protocol, SimConfig, Simulator};
use tokenrouter_tests::killable::Killable;
use tokenrouter_tests::own_redis::OwnRedis;
use tokenrouter_tests::{Backend, DataPlaneHandle, data_plane_config};

use crate::setup::{Stack, add_provider_full, stack, user_message};

const LIMITED: &str = "sk-test-limited-key-0001";

fn redis_url() -> Option<String> {
    let url = std::env::var("TOKENROUTER_TEST_REDIS_URL").ok();
    if url.is_none() {
        assert!(std::env::var_os("CI").is_none(), "CI must provide Redis");
        eprintln!("skipped: TOKENROUTER_TEST_REDIS_URL is not set");
    }
    url
}

fn limited(
    name: &str,
    url: &str,
    prefix: &str,
    configure: impl FnOnce(&mut LimiterConfig),
) -> DataPlaneConfig {
    let mut limits = LimiterConfig {
        redis_url: Some(url.to_string()),
        redis_prefix: prefix.to_string(),
        redis_timeout: Duration::from_secs(2),
        ..LimiterConfig::default()
    };
    configure(&mut limits);
    DataPlaneConfig {
        limits,
        ..data_plane_config(name)
    }
}

fn prefix(test: &str) -> String {
    format!("tre2e:{test}:{}:", uuid::Uuid::new_v4().simple())
}

/// A control plane with one simulated provider serving `m1` (priced in the catalog) and a key.
async fn limited_stack(limits: Limits) -> (Stack, Simulator, u64) {
    limited_stack_with(limits, |_| {}).await
}

async fn limited_stack_with(
    limits: Limits,
    sim: impl FnOnce(&mut SimConfig),
) -> (Stack, Simulator, u64) {
    let stack = stack(Backend::Sqlite).await.unwrap();
    let mut admin = stack.cp.admin().await;
    admin
        .create_model(ModelWrite {
            model: Some(ModelEntry {
                name: "m1".into(),
                kind: "openai".into(),
                model: "m1".into(),
                input_per_mtok: 1000.0,
                output_per_mtok: 1000.0,
                context_window: 100_000,
                max_output: 4096,
                quality: 50,
                quality_source: "test".into(),
                ..Default::default()
            }),
            expected_version: 0,
        })
        .await
        .unwrap();
    admin
        .create_api_key(ApiKeyCreate {
            name: "limited".into(),
            key: LIMITED.into(),
            limits: Some(limits),
            ..Default::default()
        })
        .await
        .expect("create a limited key");
    let mut config = SimConfig::new(Protocol::OpenAi, "p", "secret-p");
    sim(&mut config);
    let (sim, version) = add_provider_full(
        &stack.cp,
        config,
        Provider {
            models: vec!["m1".into()],
            ..Default::default()
        },
    )
    .await;
    (stack, sim, version)
}

async fn ask(
    http: &reqwest::Client,
    url: String,
    body: Value,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let r = http
        .post(url)
        .bearer_auth(LIMITED)
        .json(&body)
        .send()
        .await
        .expect("send");
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    (status, headers, r.json().await.unwrap_or(Value::Null))
}

fn hello() -> Value {
    json!({"model": "m1", "messages": user_message("hi"), "max_tokens": 20})
}

#[tokio::test]
async fn an_rpm_limit_is_exact_across_three_data_planes() {
    let Some(url) = redis_url() else { return };
    let (stack, _sim, version) = limited_stack(Limits {
        rpm: 60,
        ..Default::default()
    })
    .await;
    let p = prefix("rpm");
    let mut dps = Vec::new();
    for i in 0..3 {
        let dp = DataPlaneHandle::start(
            limited(&format!("dp{i}"), &url, &p, |_| {}),
            &stack.cp.url(),
            None,
        )
        .await;
        dp.wait_for_version(version).await;
        dp.wait_until("connected to Redis", |s| !s.limiter.is_degraded())
            .await;
        dps.push(dp);
    }
    let http = reqwest::Client::new();
    let requests = (0..300).map(|i| ask(&http, dps[i % 3].url("/v1/chat/completions"), hello()));
    let answers = futures::future::join_all(requests).await;
    let ok = answers.iter().filter(|(s, _, _)| *s == 200).count();
    let refused: Vec<_> = answers.iter().filter(|(s, _, _)| *s == 429).collect();
    assert_eq!(
        (ok, refused.len()),
        (60, 240),
        "exactly the limit across all three"
    );
    for (_, headers, body) in &refused {
        assert_eq!(body["error"]["code"], "rate_limit_exceeded");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("60 requests per minute")
        );
        assert!(!body.to_string().contains(LIMITED));
        let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=60).contains(&retry));
    }
    let (_, headers, _) = answers.iter().find(|(s, _, _)| *s == 200).unwrap();
    assert_eq!(headers["x-ratelimit-limit-requests"], "60");
    assert!(headers.contains_key("x-ratelimit-remaining-requests"));
    assert!(
        headers["x-ratelimit-reset-requests"]
            .to_str()
            .unwrap()
            .ends_with('s')
    );
    let mut counted = 0;
    for dp in &dps {
        assert_eq!(dp.state.limiter.status()["degraded_decisions"], 0);
        let metrics = dp.metrics().await;
        let line = metrics
            .lines()
            .find(|l| {
                l.starts_with("tokenrouter_limiter_refusals_total{scope=\"key\",limit=\"rpm\"}")
            })
            .unwrap_or_else(|| panic!("refusal counter in {metrics}"));
        counted += line.rsplit(' ').next().unwrap().parse::<u64>().unwrap();
    }
    assert_eq!(
        counted, 240,
        "every refusal counted once, by the limit that refused"
    );
}

/// Concurrent requests against a budget: what the clients were charged exceeds the budget by at
/// most one request's reconciliation, in memory and through Redis across two data planes.
#[tokio::test]
async fn concurrent_requests_cannot_overspend_a_budget() {
    let budget = 0.5;
    let limits = Limits {
        budget_usd: budget,
        budget_period: "day".into(),
        ..Default::default()
    };
    let mut setups: Vec<Vec<DataPlaneConfig>> = vec![vec![data_plane_config("mem")]];
    if let Some(url) = redis_url() {
        let p = prefix("budget");
        setups.push(vec![
            limited("r0", &url, &p, |_| {}),
            limited("r1", &url, &p, |_| {}),
        ]);
    }
    for configs in setups {
        let (stack, _sim, version) = limited_stack(limits.clone()).await;
        let mut dps = Vec::new();
        for c in configs {
            let dp = DataPlaneHandle::start(c, &stack.cp.url(), None).await;
            dp.wait_for_version(version).await;
            dps.push(dp);
        }
        let http = reqwest::Client::new();
        let requests = (0..40).map(|i| {
            ask(
                &http,
                dps[i % dps.len()].url("/v1/chat/completions"),
                hello(),
            )
        });
        let answers = futures::future::join_all(requests).await;
        let costs: Vec<f64> = answers
            .iter()
            .filter(|(s, _, _)| *s == 200)
            .map(|(_, _, b)| b["cost_usd"].as_f64().unwrap())
            .collect();
        let spent: f64 = costs.iter().sum();
        let largest = costs.iter().cloned().fold(0.0, f64::max);
        let quota: Vec<_> = answers.iter().filter(|(s, _, _)| *s == 429).collect();
        assert!(
            !costs.is_empty() && !quota.is_empty(),
            "some answered, some refused: {} / {}",
            costs.len(),
            quota.len()
        );
        assert!(spent <= budget + largest, "spent {spent} of {budget}");
        for (_, headers, body) in quota {
            assert_eq!(body["error"]["code"], "insufficient_quota");
            assert_eq!(headers["x-should-retry"], "false");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_slots_return_when_a_data_plane_dies_mid_request() {
    let Some(url) = redis_url() else { return };
    let (stack, _sim, version) = limited_stack_with(
        Limits {
            max_concurrent: 1,
            ..Default::default()
        },
        |c| c.chunk_interval = Duration::from_millis(700),
    )
    .await;
    let p = prefix("lease");
    let ttl = |c: &mut LimiterConfig| c.lease_ttl = Duration::from_secs(1);
    let mut doomed = Killable::start(limited("doomed", &url, &p, ttl), &stack.cp);
    let survivor =
        DataPlaneHandle::start(limited("survivor", &url, &p, ttl), &stack.cp.url(), None).await;
    survivor.wait_for_version(version).await;
    let http = reqwest::Client::new();
    let chat = format!("{}/v1/chat/completions", doomed.url);
    // The doomed data plane serves a slow stream, holding the key's one slot.
    let mut stream_body = hello();
    stream_body["stream"] = json!(true);
    stream_body["max_tokens"] = json!(200);
    let mut held = None;
    for _ in 0..200 {
        if let Ok(r) = http
            .post(&chat)
            .bearer_auth(LIMITED)
            .json(&stream_body)
            .send()
            .await
            && r.status() == 200
        {
            held = Some(r);
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let held = held.expect("the doomed data plane streams");
    let (status, _, body) = ask(&http, survivor.url("/v1/chat/completions"), hello()).await;
    assert_eq!(status, 429, "the slot is taken: {body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("1 requests at once")
    );
    doomed.kill();
    drop(held);
    // Nobody renews the dead data plane's lease: the slot is free again after its TTL.
    let started = Instant::now();
    loop {
        let (status, _, _) = ask(&http, survivor.url("/v1/chat/completions"), hello()).await;
        if status == 200 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the lease never expired"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn each_fail_mode_does_what_it_says_when_redis_dies() {
    if redis_url().is_none() {
        return;
    }
    let Some(mut redis) = OwnRedis::start() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must have redis-server"
        );
        return eprintln!("skipped: cannot start redis-server");
    };
    let (stack, _sim, version) = limited_stack(Limits {
        rpm: 4,
        ..Default::default()
    })
    .await;
    let p = prefix("modes");
    // A debug build on a loaded 2-core machine can take more than the 5 ms default for a live
    // Redis; the dead one below refuses at once, and the silent one is the timeout's own test.
    let timeout = |c: &mut LimiterConfig, mode| {
        c.redis_timeout = Duration::from_millis(200);
        c.fail_mode = mode;
    };
    let mut dps = Vec::new();
    for (name, mode) in [
        ("open", FailMode::FailOpen),
        ("closed", FailMode::FailClosed),
        ("share", FailMode::LocalShare),
    ] {
        let dp = DataPlaneHandle::start(
            limited(name, &redis.url, &format!("{p}{name}:"), |c| {
                timeout(c, mode)
            }),
            &stack.cp.url(),
            None,
        )
        .await;
        dp.wait_for_version(version).await;
        dp.wait_until("connected to Redis", |s| !s.limiter.is_degraded())
            .await;
        dps.push(dp);
    }
    dps[2]
        .wait_until("sees three data planes", |s| {
            s.limiter.status()["data_planes"] == 3
        })
        .await;
    let http = reqwest::Client::new();
    // While Redis answers, each data plane enforces the shared limit.
    for dp in &dps {
        for _ in 0..4 {
            assert_eq!(
                ask(&http, dp.url("/v1/chat/completions"), hello()).await.0,
                200
            );
        }
        assert_eq!(
            ask(&http, dp.url("/v1/chat/completions"), hello()).await.0,
            429
        );
    }
    redis.kill();
    let timed = |dp: &DataPlaneHandle| {
        let http = http.clone();
        let url = dp.url("/v1/chat/completions");
        async move {
            let started = Instant::now();
            let (status, _, _) = ask(&http, url, hello()).await;
            (status, started.elapsed())
        }
    };
    // fail-open admits everything; fail-closed refuses with 503; local-share allows 4 / 3 = 1.
    let mut slowest = Duration::ZERO;
    for _ in 0..6 {
        let (status, took) = timed(&dps[0]).await;
        assert_eq!(status, 200);
        slowest = slowest.max(took);
        let (status, took) = timed(&dps[1]).await;
        assert_eq!(status, 503);
        slowest = slowest.max(took);
    }
    let mut shared = Vec::new();
    for _ in 0..3 {
        let (status, took) = timed(&dps[2]).await;
        shared.push(status);
        slowest = slowest.max(took);
    }
    assert_eq!(
        shared,
        [200, 429, 429],
        "local-share: its third of the limit"
    );
    assert!(
        slowest < Duration::from_millis(500),
        "no request waits on a dead Redis: {slowest:?}"
    );
    for dp in &dps {
        assert_eq!(dp.state.limiter.status()["degraded"], true);
    }
    let metrics = dps[2].metrics().await;
    assert!(
        metrics.contains("tokenrouter_limiter_degraded 1"),
        "{metrics}"
    );
    assert!(
        metrics
            .contains("tokenrouter_limiter_degraded_decisions_total{fail_mode=\"local-share\"} 3"),
        "{metrics}"
    );
}

/// A Redis that accepts connections and never answers: only the timeout can end a call.
#[tokio::test]
async fn a_silent_redis_costs_no_more_than_the_timeout() {
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("redis://{}/0", silent.local_addr().unwrap());
    let held = tokio::spawn(async move {
        let mut sockets = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            sockets.push(socket);
        }
    });
    let (stack, _sim, version) = limited_stack(Limits {
        rpm: 1000,
        ..Default::default()
    })
    .await;
    let config = limited("silent", &url, &prefix("silent"), |c| {
        c.redis_timeout = Duration::from_millis(20);
        c.fail_mode = FailMode::FailOpen;
    });
    let dp = DataPlaneHandle::start(config, &stack.cp.url(), None).await;
    dp.wait_for_version(version).await;
    let http = reqwest::Client::new();
    let mut slowest = Duration::ZERO;
    for _ in 0..20 {
        let started = Instant::now();
        let (status, _, body) = ask(&http, dp.url("/v1/chat/completions"), hello()).await;
        assert_eq!(status, 200, "{body}");
        slowest = slowest.max(started.elapsed());
    }
    assert!(slowest < Duration::from_millis(400), "{slowest:?}");
    assert_eq!(dp.state.limiter.status()["degraded"], true);
    held.abort();
}
