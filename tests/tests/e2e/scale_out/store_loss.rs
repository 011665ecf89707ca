//! A control plane whose PostgreSQL goes away: its health check says so, and it recovers.

use super::*;

/// `url` with its `host:port` replaced by `addr`, and the `host:port` it had.
fn through(url: &str, addr: std::net::SocketAddr) -> (String, std::net::SocketAddr) {
    let (scheme, rest) = url.split_once("://").unwrap();
    let (auth, rest) = match rest.rsplit_once('@') {
        Some((a, r)) => (format!("{a}@"), r),
        None => (String::new(), rest),
    };
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let host = if host.contains(':') {
        host.to_string()
    } else {
        format!("{host}:5432")
    };
    let target = host.replace("localhost", "127.0.0.1").parse().unwrap();
    (format!("{scheme}://{auth}{addr}/{path}"), target)
}

async fn health(url: &str) -> Option<i32> {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_client::HealthClient;
    let channel = tonic::transport::Endpoint::from_shared(url.to_string())
        .ok()?
        .connect()
        .await
        .ok()?;
    let mut client = HealthClient::new(channel);
    client
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .ok()
        .map(|r| r.into_inner().status)
}

/// A control plane that loses its PostgreSQL says NOT_SERVING on `grpc.health.v1`, ends its watch
/// streams and fails Admin calls with UNAVAILABLE, while its data plane keeps answering from its
/// snapshot and the usage of what it served waits; all of it comes back by itself when the
/// database does, and every request served during the outage is recorded once.
#[tokio::test]
async fn a_control_plane_that_loses_its_database_says_so_and_recovers() {
    use tokenrouter_control_plane::store::PostgresStore;
    use tonic_health::ServingStatus;
    let Some(url) = tokenrouter_control_plane::store::postgres_test_url() else {
        return;
    };
    let (_, target) = through(&url, "127.0.0.1:1".parse().unwrap());
    let cut = tokenrouter_tests::tcp_cut::TcpCut::start(target).await;
    let (proxied, _) = through(&url, cut.addr);
    let schema = format!("tr_e2e_{}", uuid::Uuid::new_v4().simple());
    let store = PostgresStore::connect_in_schema(&proxied, Some(&schema))
        .await
        .unwrap();
    let cp = ControlPlaneHandle::start(Arc::new(store), None, None).await;
    cp.admin()
        .await
        .create_api_key(ApiKeyCreate {
            name: "test".into(),
            key: KEY.into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let (_sim, version) = setup::add_simulated_provider(&cp, "sim", &["gpt-4o-mini"]).await;
    let dp = DataPlaneHandle::start(data_plane_config("dbless"), &cp.url(), None).await;
    dp.wait_for_version(version).await;
    assert_eq!(health(&cp.url()).await, Some(ServingStatus::Serving as i32));

    cut.cut();
    let deadline = Instant::now() + Duration::from_secs(10);
    while health(&cp.url()).await != Some(ServingStatus::NotServing as i32) {
        assert!(Instant::now() < deadline, "health never said NOT_SERVING");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    dp.wait_until("watch ended", |s| !s.is_connected()).await;
    let asked = Instant::now();
    let err = cp
        .admin()
        .await
        .create_api_key(ApiKeyCreate {
            name: "later".into(),
            key: "sk-later".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unavailable, "{err}");
    // Fail fast: the pool's wait and connect timeouts, not a TCP timeout of minutes.
    assert!(
        asked.elapsed() < Duration::from_secs(10),
        "Admin failed after {:?}",
        asked.elapsed()
    );
    let http = reqwest::Client::new();
    let body = json!({"model": "gpt-4o-mini", "messages": setup::user_message("still here")});
    const SERVED_DURING_OUTAGE: u64 = 5;
    for _ in 0..SERVED_DURING_OUTAGE {
        let (status, answer) = tokenrouter_tests::chat(&http, &dp, KEY, body.clone()).await;
        assert_eq!(status, 200, "the data plane serves its snapshot: {answer}");
    }

    cut.restore();
    let deadline = Instant::now() + Duration::from_secs(15);
    while health(&cp.url()).await != Some(ServingStatus::Serving as i32) {
        assert!(Instant::now() < deadline, "health never came back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    dp.wait_until("watching again", |s| s.is_connected()).await;
    let v = cp
        .admin()
        .await
        .create_api_key(ApiKeyCreate {
            name: "after".into(),
            key: "sk-after".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .version;
    dp.wait_for_version(v).await;
    let mut admin = cp.admin().await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let report = setup::usage_once(&mut admin, "provider", 1).await;
        let served: u64 = report.rows.iter().map(|r| r.requests).sum();
        assert!(served <= SERVED_DURING_OUTAGE, "recorded twice: {report:?}");
        if served == SERVED_DURING_OUTAGE {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the outage's usage never arrived: {report:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
