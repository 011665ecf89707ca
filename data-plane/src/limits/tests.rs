//! Limiter tests: in memory on a paused clock, and in the real Redis when
//! `TOKENROUTER_TEST_REDIS_URL` is set (`.ci/run` sets it; each test has its own key prefix).

use std::sync::Arc;
use std::time::Duration;

use tokenrouter_proto::v1::{ApiKey, Limits, ModelLimit};

use super::*;

fn key_with(limits: Limits, user: Option<Limits>, models: Vec<(&str, Limits)>) -> KeyLimits {
    KeyLimits::compile(&ApiKey {
        limits: Some(limits),
        user_limits: user,
        model_limits: models
            .into_iter()
            .map(|(m, l)| ModelLimit {
                model: m.into(),
                limits: Some(l),
            })
            .collect(),
        ..Default::default()
    })
    .unwrap()
}

fn rpm(n: u32) -> Limits {
    Limits {
        rpm: n,
        ..Default::default()
    }
}

fn demand(tokens: u64, cost_micro: i64) -> Demand {
    Demand { tokens, cost_micro }
}

async fn admit(
    l: &Limiter,
    k: &KeyLimits,
    user: Option<&str>,
    model: &str,
    d: Demand,
) -> Result<Admission, ApiError> {
    l.admit(
        &uuid::Uuid::new_v4().to_string(),
        "team",
        Some(k),
        user,
        model,
        d,
    )
    .await
}

fn memory() -> Arc<Limiter> {
    Arc::new(Limiter::in_memory(LimiterConfig::default()))
}

fn redis(prefix_tag: &str, config: impl FnOnce(&mut LimiterConfig)) -> Option<Arc<Limiter>> {
    let url = std::env::var("TOKENROUTER_TEST_REDIS_URL").ok()?;
    let mut c = LimiterConfig {
        redis_url: Some(url),
        redis_prefix: format!("trtest:{prefix_tag}:{}:", uuid::Uuid::new_v4().simple()),
        redis_timeout: Duration::from_millis(500),
        ..LimiterConfig::default()
    };
    config(&mut c);
    Some(Arc::new(Limiter::new(c).unwrap()))
}

async fn connected(l: &Arc<Limiter>) {
    if let Some(s) = &l.shared {
        s.connect().await.expect("connect to the test Redis");
    }
}

/// The behaviour every backend must show, run against memory and Redis alike.
async fn exact_rates_budgets_and_slots(l: Arc<Limiter>) {
    // Requests per minute: exactly the limit, then a 429 naming it with a Retry-After.
    let k = key_with(rpm(5), None, vec![]);
    for i in 0..5 {
        let a = admit(&l, &k, None, "m", Demand::default()).await.unwrap();
        assert_eq!(a.grant.requests.unwrap().remaining, 4 - i);
    }
    let e = admit(&l, &k, None, "m", Demand::default())
        .await
        .unwrap_err();
    assert_eq!(
        (e.status().as_u16(), e.code()),
        (429, Some("rate_limit_exceeded"))
    );
    assert!(
        e.message()
            .contains("5 requests per minute for this API key"),
        "{}",
        e.message()
    );
    assert!(!e.message().contains("team"), "never names the key");
    assert!((1..=60).contains(&e.retry_after().unwrap()));

    // A refused request touches no counter: the user limit refuses, the key's count is unchanged.
    let k = key_with(rpm(10), Some(rpm(1)), vec![]);
    admit(&l, &k, Some("u1"), "m", Demand::default())
        .await
        .unwrap();
    for _ in 0..3 {
        let e = admit(&l, &k, Some("u1"), "m", Demand::default())
            .await
            .unwrap_err();
        assert!(e.message().contains("end user `u1`"), "{}", e.message());
    }
    let a = admit(&l, &k, Some("u2"), "m", Demand::default())
        .await
        .unwrap();
    assert_eq!(
        a.grant.requests.map(|q| q.remaining),
        Some(0),
        "u2's own limit is the tighter one"
    );

    // Model globs: only matching models count.
    let k = key_with(rpm(100), None, vec![("gpt-4o*", rpm(1))]);
    admit(&l, &k, None, "gpt-4o-mini", Demand::default())
        .await
        .unwrap();
    let e = admit(&l, &k, None, "gpt-4o", Demand::default())
        .await
        .unwrap_err();
    assert!(e.message().contains("models `gpt-4o*`"), "{}", e.message());
    admit(&l, &k, None, "claude-x", Demand::default())
        .await
        .unwrap();

    // Every refusal so far is counted by the scope and limit that refused.
    let mut metrics = String::new();
    l.decisions.render(&mut metrics);
    for (scope, n) in [("key", 1), ("user", 3), ("model", 1)] {
        let line =
            format!("tokenrouter_limiter_refusals_total{{scope=\"{scope}\",limit=\"rpm\"}} {n}\n");
        assert!(metrics.contains(&line), "{line} in {metrics}");
    }

    // Tokens: reserved at admission, reconciled at the end.
    let k = key_with(
        Limits {
            tpm: 1000,
            ..Default::default()
        },
        None,
        vec![],
    );
    let first = admit(&l, &k, None, "m", demand(600, 0)).await.unwrap();
    assert!(admit(&l, &k, None, "m", demand(600, 0)).await.is_err());
    l.settle(first.reservation.as_ref().unwrap(), demand(100, 0));
    settled(&l).await;
    admit(&l, &k, None, "m", demand(600, 0)).await.unwrap();
    let e = admit(&l, &k, None, "m", demand(5000, 0)).await.unwrap_err();
    assert!(
        e.message().contains("more tokens than the limit"),
        "{}",
        e.message()
    );

    // Concurrency: slots return when requests end; settling twice frees one slot only.
    let k = key_with(
        Limits {
            max_concurrent: 2,
            ..Default::default()
        },
        None,
        vec![],
    );
    let a = admit(&l, &k, None, "m", Demand::default()).await.unwrap();
    let _b = admit(&l, &k, None, "m", Demand::default()).await.unwrap();
    assert!(admit(&l, &k, None, "m", Demand::default()).await.is_err());
    l.settle(a.reservation.as_ref().unwrap(), Demand::default());
    l.settle(a.reservation.as_ref().unwrap(), Demand::default());
    settled(&l).await;
    let _c = admit(&l, &k, None, "m", Demand::default()).await.unwrap();
    assert!(admit(&l, &k, None, "m", Demand::default()).await.is_err());

    // Budgets: reservation makes concurrent requests unable to overspend.
    let k = key_with(
        Limits {
            budget_usd: 1.0,
            budget_period: "day".into(),
            ..Default::default()
        },
        None,
        vec![],
    );
    let a = admit(&l, &k, None, "m", demand(0, 600_000)).await.unwrap();
    let e = admit(&l, &k, None, "m", demand(0, 600_000))
        .await
        .unwrap_err();
    assert_eq!(
        (e.status().as_u16(), e.code()),
        (429, Some("insufficient_quota"))
    );
    assert!(
        e.message().contains("$1.00 per day") && e.message().contains("resets in"),
        "{}",
        e.message()
    );
    l.settle(a.reservation.as_ref().unwrap(), demand(0, 100_000));
    settled(&l).await;
    admit(&l, &k, None, "m", demand(0, 600_000)).await.unwrap();
}

/// Redis settles in a background task; give it time.
async fn settled(l: &Limiter) {
    if l.shared.is_some() {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn memory_is_exact() {
    exact_rates_budgets_and_slots(memory()).await;
}

#[tokio::test]
async fn redis_is_exact() {
    let Some(l) = redis("exact", |_| {}) else {
        eprintln!("TOKENROUTER_TEST_REDIS_URL unset: Redis limiter test skipped");
        return;
    };
    connected(&l).await;
    exact_rates_budgets_and_slots(l.clone()).await;
    assert_eq!(
        l.status()["degraded_decisions"],
        0,
        "every decision came from Redis"
    );
}

#[tokio::test(start_paused = true)]
async fn the_minute_window_slides() {
    let l = memory();
    let k = key_with(rpm(2), None, vec![]);
    admit(&l, &k, None, "m", Demand::default()).await.unwrap();
    tokio::time::advance(Duration::from_secs(30)).await;
    admit(&l, &k, None, "m", Demand::default()).await.unwrap();
    let e = admit(&l, &k, None, "m", Demand::default())
        .await
        .unwrap_err();
    assert_eq!(
        e.retry_after(),
        Some(30),
        "the first request leaves the window in 30 s"
    );
    tokio::time::advance(Duration::from_secs(31)).await;
    admit(&l, &k, None, "m", Demand::default()).await.unwrap();
    assert!(admit(&l, &k, None, "m", Demand::default()).await.is_err());
}

#[tokio::test(start_paused = true)]
async fn a_burst_limit_spaces_requests() {
    let l = memory();
    let k = key_with(
        Limits {
            rpm: 60,
            rpm_burst: 2,
            ..Default::default()
        },
        None,
        vec![],
    );
    admit(&l, &k, None, "m", Demand::default()).await.unwrap();
    admit(&l, &k, None, "m", Demand::default()).await.unwrap();
    let e = admit(&l, &k, None, "m", Demand::default())
        .await
        .unwrap_err();
    assert!(e.message().contains("burst of 2"), "{}", e.message());
    tokio::time::advance(Duration::from_secs(1)).await;
    admit(&l, &k, None, "m", Demand::default()).await.unwrap();
}

#[tokio::test]
async fn keys_without_limits_are_not_counted() {
    let l = memory();
    let a = l
        .admit("r", "k", None, None, "m", Demand::default())
        .await
        .unwrap();
    assert!(a.reservation.is_none() && a.grant == Grant::default());
}

/// A Redis nobody listens on: port 1 on loopback refuses at once.
fn unreachable_redis(mode: FailMode) -> Arc<Limiter> {
    Arc::new(
        Limiter::new(LimiterConfig {
            redis_url: Some("redis://127.0.0.1:1/0".into()),
            fail_mode: mode,
            ..LimiterConfig::default()
        })
        .unwrap(),
    )
}

#[tokio::test]
async fn redis_away_uses_the_fail_mode() {
    let k = key_with(rpm(4), None, vec![]);
    let open = unreachable_redis(FailMode::FailOpen);
    for _ in 0..10 {
        admit(&open, &k, None, "m", Demand::default())
            .await
            .unwrap();
    }
    assert!(open.is_degraded());
    let closed = unreachable_redis(FailMode::FailClosed);
    let e = admit(&closed, &k, None, "m", Demand::default())
        .await
        .unwrap_err();
    assert_eq!(e.status().as_u16(), 503);
    let share = unreachable_redis(FailMode::LocalShare);
    share.set_peers(2);
    admit(&share, &k, None, "m", Demand::default())
        .await
        .unwrap();
    admit(&share, &k, None, "m", Demand::default())
        .await
        .unwrap();
    let e = admit(&share, &k, None, "m", Demand::default())
        .await
        .unwrap_err();
    assert_eq!(e.status().as_u16(), 429, "a share of 4 / 2 data planes");
    assert_eq!(share.status()["degraded"], true);
}

#[tokio::test]
async fn redis_leases_expire_when_not_renewed() {
    let Some(l) = redis("lease", |c| c.lease_ttl = Duration::from_millis(300)) else {
        return;
    };
    connected(&l).await;
    let k = key_with(
        Limits {
            max_concurrent: 1,
            ..Default::default()
        },
        None,
        vec![],
    );
    let _held = admit(&l, &k, None, "m", Demand::default()).await.unwrap();
    assert!(admit(&l, &k, None, "m", Demand::default()).await.is_err());
    // The holder's data plane "crashed": nobody renews; the slot frees itself after the TTL.
    tokio::time::sleep(Duration::from_millis(400)).await;
    admit(&l, &k, None, "m", Demand::default()).await.unwrap();
    assert_eq!(l.status()["degraded_decisions"], 0);
}
