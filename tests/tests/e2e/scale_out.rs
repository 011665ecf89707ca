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

#[tokio::test]
async fn losing_one_of_two_control_planes_under_load_loses_nothing() {
    let Some(stack) = setup::stack(Backend::Postgres).await else {
        return eprintln!("skipped: TOKENROUTER_TEST_POSTGRES_URL unset");
    };
    let mut cp1 = stack.cp;
    let cp2 = ControlPlaneHandle::start(
        reopen_store(Backend::Postgres, &stack.store_id).await,
        None,
        None,
    )
    .await;
    let (_sim, version) = setup::add_simulated_provider(&cp1, "sim", &["gpt-4o-mini"]).await;
    // The data planes reach cp1 through a link the test can cut, so its death is abrupt: no
    // graceful end of the watch streams, usage reports cut off mid-call.
    let link = tokenrouter_tests::tcp_cut::TcpCut::start(cp1.addr).await;
    let urls = format!("http://{},{}", link.addr, cp2.url());
    let mut dps = Vec::new();
    for i in 0..3 {
        dps.push(follower(&format!("dp{i}"), &urls, i % 2).await);
    }
    for (dp, _) in &dps {
        dp.wait_for_version(version).await;
    }

    // A write through the second copy reaches the data planes on the first by NOTIFY.
    let v = cp2
        .admin()
        .await
        .create_api_key(ApiKeyCreate {
            name: "second".into(),
            key: "sk-second".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .version;
    let started = Instant::now();
    for (dp, _) in &dps {
        dp.wait_for_version(v).await;
    }
    let across = started.elapsed();
    eprintln!("commit through cp2 served by all three data planes after {across:?}");
    assert!(across < Duration::from_millis(100), "{across:?}");

    let tally = Arc::new(Tally::default());
    let urls_http: Vec<String> = dps.iter().map(|(dp, _)| dp.url("")).collect();
    let traffic = tokio::spawn(load(urls_http, 6, 400, tally.clone()));
    tokio::time::sleep(Duration::from_millis(400)).await;
    link.cut();
    let killed = Instant::now();
    cp1.stop().await;
    let cp2_url = cp2.url();
    for (dp, watch) in &dps {
        dp.wait_until("on the surviving control plane", |s| {
            s.is_connected() && watch.current() == cp2_url
        })
        .await;
    }
    eprintln!(
        "all data planes on cp2 {:?} after cp1 stopped",
        killed.elapsed()
    );

    // A commit through the survivor is served everywhere within 100 ms.
    let v = cp2
        .admin()
        .await
        .create_api_key(ApiKeyCreate {
            name: "third".into(),
            key: "sk-third".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .version;
    let started = Instant::now();
    for (dp, _) in &dps {
        dp.wait_for_version(v).await;
    }
    let pushed = started.elapsed();
    eprintln!("commit through the survivor served by all three after {pushed:?}");
    assert!(pushed < Duration::from_millis(100), "{pushed:?}");

    // The killed copy comes back: nobody moves, nothing flaps.
    let cp1_again = ControlPlaneHandle::start(
        reopen_store(Backend::Postgres, &stack.store_id).await,
        Some(cp1.addr),
        None,
    )
    .await;
    link.restore();
    traffic.await.unwrap();
    for _ in 0..20 {
        for (dp, watch) in &dps {
            assert!(dp.state.is_connected() && watch.current() == cp2_url);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let answered = tally.answered.load(Ordering::Relaxed);
    assert_eq!(tally.failed.load(Ordering::Relaxed), 0, "no request failed");
    assert_eq!(answered, 6 * 400);
    let (records, cost) = stored(&cp2, answered).await;
    assert_eq!(records, answered, "one usage record per answered request");
    assert_eq!(cost, tally.cost_nano.load(Ordering::Relaxed));
    assert_eq!(
        cp1_again
            .cp
            .usage(UsageQuery::default())
            .await
            .unwrap()
            .rows[0]
            .requests,
        answered
    );
    for (dp, _) in &dps {
        assert_eq!(dp.state.usage.dropped(), 0);
    }
}

/// The control plane away for seconds under load, then back: the store ends with exactly one
/// record per answered request and the cost the clients were shown.
#[tokio::test]
async fn usage_waits_in_the_spool_while_the_control_plane_is_away() {
    let Some(stack) = setup::stack(Backend::Sqlite).await else {
        return;
    };
    let mut cp = stack.cp;
    let (_sim, version) = setup::add_simulated_provider(&cp, "sim", &["gpt-4o-mini"]).await;
    let (dp, _watch) = follower("spooler", &cp.url(), 0).await;
    dp.wait_for_version(version).await;
    let tally = Arc::new(Tally::default());
    let traffic = tokio::spawn(load(vec![dp.url("")], 4, 500, tally.clone()));
    tokio::time::sleep(Duration::from_millis(300)).await;
    cp.stop().await;
    dp.wait_until("usage spooled", |s| s.usage.spooled() > 0)
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let cp = ControlPlaneHandle::start(
        reopen_store(Backend::Sqlite, &stack.store_id).await,
        Some(cp.addr),
        None,
    )
    .await;
    traffic.await.unwrap();
    let answered = tally.answered.load(Ordering::Relaxed);
    assert_eq!(tally.failed.load(Ordering::Relaxed), 0);
    let (records, cost) = stored(&cp, answered).await;
    assert_eq!(records, answered);
    assert_eq!(cost, tally.cost_nano.load(Ordering::Relaxed));
    assert!(cost > 0, "the answers were priced");
    dp.wait_until("spool drained", |s| s.usage.spooled() == 0)
        .await;
    assert_eq!(dp.state.usage.dropped(), 0);
}

/// A CA, a server certificate for 127.0.0.1 and localhost, and a client certificate, made now.
struct Certs {
    ca: String,
    server: (String, String),
    client: (String, String),
}

fn certs() -> Certs {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    };
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "tokenrouter test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf = |names: Vec<String>, purpose: ExtendedKeyUsagePurpose| {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(names).unwrap();
        params.extended_key_usages = vec![purpose];
        let cert = params.signed_by(&key, &issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    };
    Certs {
        ca: ca.pem(),
        server: leaf(
            vec!["localhost".into(), "127.0.0.1".into()],
            ExtendedKeyUsagePurpose::ServerAuth,
        ),
        client: leaf(vec!["dp".into()], ExtendedKeyUsagePurpose::ClientAuth),
    }
}

/// Mutual TLS between the planes: a data plane without a client certificate receives no
/// snapshot; one with a certificate from the CA does, and its snapshot file holds no credential.
#[tokio::test]
async fn only_a_data_plane_with_a_client_certificate_receives_credentials() {
    let certs = certs();
    let (store, _) = tokenrouter_tests::fresh_store(Backend::Sqlite)
        .await
        .unwrap();
    let mut cp = ControlPlaneHandle::start_with(
        store,
        None,
        None,
        Some(tokenrouter_control_plane::ServerTls {
            cert_pem: certs.server.0.clone().into_bytes(),
            key_pem: certs.server.1.clone().into_bytes(),
            client_ca_pem: Some(certs.ca.clone().into_bytes()),
        }),
    )
    .await;
    let tls = |with_identity: bool| tokenrouter_data_plane::ClientTls {
        ca_pem: Some(certs.ca.clone().into_bytes()),
        identity_pem: with_identity.then(|| {
            (
                certs.client.0.clone().into_bytes(),
                certs.client.1.clone().into_bytes(),
            )
        }),
    };
    cp.admin_tls = Some(tls(true));
    let (_sim, version) = setup::add_simulated_provider(&cp, "sim", &["gpt-4o-mini"]).await;
    let url = cp.url();
    let mut anonymous = WatchConfig::new(&url);
    anonymous.tls = tls(false);
    let stranger = DataPlaneHandle::start_watching(data_plane_config("stranger"), anonymous).await;
    let mut trusted = WatchConfig::new(&url);
    trusted.tls = tls(true);
    let config = data_plane_config("trusted");
    let snapshot_file = config.snapshot_path.clone().unwrap();
    let member = DataPlaneHandle::start_watching(config, trusted).await;
    member.wait_for_version(version).await;
    member
        .wait_until("snapshot saved", |_| snapshot_file.exists())
        .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let saved = std::fs::read(&snapshot_file).unwrap();
    let secret = b"sim-secret-sim";
    assert!(
        !saved.windows(secret.len()).any(|w| w == secret),
        "the snapshot file is sealed"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!stranger.state.is_ready(), "no certificate, no snapshot");
    assert_eq!(stranger.state.runtime().version, 0);
}

/// A minimal HTTP CONNECT proxy on loopback; records the target of every tunnel it opened.
async fn connect_proxy() -> (String, Arc<std::sync::Mutex<Vec<String>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let tunnels = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = tunnels.clone();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if client.read_exact(&mut byte).await.is_err() {
                        return;
                    }
                    head.push(byte[0]);
                }
                let head = String::from_utf8_lossy(&head).to_string();
                let Some(target) = head
                    .strip_prefix("CONNECT ")
                    .and_then(|r| r.split(' ').next())
                else {
                    let _ = client
                        .write_all(b"HTTP/1.1 405 Method Not Allowed\r\n\r\n")
                        .await;
                    return;
                };
                let Ok(mut upstream) = tokio::net::TcpStream::connect(target).await else {
                    let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n").await;
                    return;
                };
                seen.lock().unwrap().push(target.to_string());
                let _ = client
                    .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    .await;
                let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
            });
        }
    });
    (format!("http://{addr}"), tunnels)
}

/// Provider calls go through the egress proxy when one is set, directly for NO_PROXY hosts, and as
/// each provider's `proxy` field says when it overrides the environment.
#[tokio::test]
async fn provider_calls_tunnel_through_the_egress_proxy_unless_no_proxy_covers_them() {
    use tokenrouter_proto::v1::Provider;
    use tokenrouter_simulators::{Protocol, SimConfig};
    let Some(stack) = setup::stack(Backend::Sqlite).await else {
        return;
    };
    let (proxy, tunnels) = connect_proxy().await;
    let mut sims = Vec::new();
    let mut version = 0;
    for (name, egress) in [
        ("envsim", ""),
        ("directsim", "direct"),
        ("pinnedsim", proxy.as_str()),
    ] {
        let (sim, v) = setup::add_provider_full(
            &stack.cp,
            SimConfig::new(Protocol::OpenAi, name, &format!("sim-secret-{name}")),
            Provider {
                models: vec!["gpt-4o-mini".into()],
                proxy: egress.into(),
                ..Default::default()
            },
        )
        .await;
        sims.push((name, sim.base_url(), sim));
        version = v;
    }
    let port_of = |name: &str| {
        let url = &sims.iter().find(|(n, _, _)| *n == name).unwrap().1;
        url.rsplit(':')
            .next()
            .unwrap()
            .split('/')
            .next()
            .unwrap()
            .to_string()
    };
    let tunnelled = |name: &str| {
        let port = port_of(name);
        tunnels
            .lock()
            .unwrap()
            .iter()
            .any(|t| t.ends_with(&format!(":{port}")))
    };
    let http = reqwest::Client::new();
    let ask = |provider: &str| json!({"model": format!("{provider}:gpt-4o-mini"), "messages": setup::user_message("via the proxy?")});

    // The environment says: everything through the proxy.
    let mut config = data_plane_config("proxied");
    config.proxy = tokenrouter_data_plane::ProxyConfig {
        http: Some(proxy.clone()),
        https: Some(proxy.clone()),
        no_proxy: None,
    };
    let proxied = DataPlaneHandle::start(config, &stack.cp.url(), None).await;
    proxied.wait_for_version(version).await;
    for provider in ["envsim", "directsim"] {
        let (status, answer) = tokenrouter_tests::chat(&http, &proxied, KEY, ask(provider)).await;
        assert_eq!(status, 200, "{answer}");
    }
    assert!(tunnelled("envsim"), "the environment's proxy was used");
    assert!(!tunnelled("directsim"), "a provider set to direct never is");

    // No proxy in the environment, NO_PROXY covering loopback: only the pinned provider tunnels.
    let before = tunnels.lock().unwrap().len();
    let mut config = data_plane_config("direct");
    config.proxy = tokenrouter_data_plane::ProxyConfig {
        http: Some(proxy.clone()),
        https: Some(proxy.clone()),
        no_proxy: Some("localhost,127.0.0.1".into()),
    };
    let direct = DataPlaneHandle::start(config, &stack.cp.url(), None).await;
    direct.wait_for_version(version).await;
    let (status, answer) = tokenrouter_tests::chat(&http, &direct, KEY, ask("envsim")).await;
    assert_eq!(status, 200, "{answer}");
    let (status, answer) = tokenrouter_tests::chat(&http, &direct, KEY, ask("pinnedsim")).await;
    assert_eq!(status, 200, "{answer}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let after: Vec<String> = tunnels.lock().unwrap()[before..].to_vec();
    let pinned = format!(":{}", port_of("pinnedsim"));
    assert!(after.iter().any(|t| t.ends_with(&pinned)), "{after:?}");
    assert!(
        after.iter().all(|t| t.ends_with(&pinned)),
        "NO_PROXY hosts are dialled directly: {after:?}"
    );
}

/// Two data planes, turn 1 of a thinking tool conversation on one and turn 2 on the other, the
/// client sending its history back as plain OpenAI messages (no reasoning state). Returns the
/// status of each provider's turn 2: (provider, status, body, what the gateway had to drop).
async fn thinking_across_data_planes(
    redis: Option<&str>,
) -> Vec<(&'static str, u16, serde_json::Value, String)> {
    use tokenrouter_simulators::{Protocol, SimConfig};
    let stack = setup::stack(Backend::Sqlite).await.unwrap();
    let mut sims = Vec::new();
    let mut version = 0;
    for (protocol, name, model) in [
        (Protocol::Anthropic, "anthropic", "claude-sonnet-4-5"),
        (Protocol::Gemini, "gemini", "gemini-3-pro-preview"),
        (Protocol::DeepSeek, "deepseek", "deepseek-reasoner"),
    ] {
        let (sim, v) = setup::add_provider_with(
            &stack.cp,
            SimConfig::new(protocol, name, &format!("sim-secret-{name}")),
            &[model],
        )
        .await;
        sims.push(sim);
        version = v;
    }
    let prefix = format!("tre2e:reasoning:{}:", uuid::Uuid::new_v4().simple());
    let config = |name: &str| {
        let mut c = data_plane_config(name);
        c.limits.redis_url = redis.map(str::to_string);
        c.limits.redis_prefix = prefix.clone();
        c
    };
    let first = DataPlaneHandle::start(config("turn1"), &stack.cp.url(), None).await;
    let second = DataPlaneHandle::start(config("turn2"), &stack.cp.url(), None).await;
    first.wait_for_version(version).await;
    second.wait_for_version(version).await;
    if redis.is_some() {
        for dp in [&first, &second] {
            dp.wait_until("reasoning cache on Redis", |s| {
                s.reasoning.is_shared_connected()
            })
            .await;
        }
    }
    let http = reqwest::Client::new();
    let tool = json!({"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}});
    let question = json!({"role": "user", "content": "Weather in Paris?"});
    let mut outcomes = Vec::new();
    for (provider, model) in [
        ("anthropic", "anthropic:claude-sonnet-4-5"),
        ("gemini", "gemini:gemini-3-pro-preview"),
        ("deepseek", "deepseek:deepseek-reasoner"),
    ] {
        let (status, turn) = tokenrouter_tests::chat(
            &http,
            &first,
            KEY,
            json!({"model": model, "messages": [question], "tools": [tool], "reasoning_effort": "low", "max_tokens": 4000}),
        )
        .await;
        assert_eq!(status, 200, "{turn}");
        let message = &turn["choices"][0]["message"];
        let call = &message["tool_calls"][0];
        assert!(call["id"].is_string(), "{turn}");
        // What a plain OpenAI client sends back: content and tool calls, no reasoning fields.
        let plain = json!({"role": "assistant", "content": message["content"], "tool_calls": message["tool_calls"]});
        let result =
            json!({"role": "tool", "tool_call_id": call["id"], "content": "18C and sunny"});
        let answer = http
            .post(second.url("/v1/chat/completions"))
            .bearer_auth(KEY)
            .json(&json!({"model": model, "messages": [question, plain, result], "tools": [tool], "reasoning_effort": "low", "max_tokens": 4000}))
            .send()
            .await
            .unwrap();
        let status = answer.status().as_u16();
        let dropped = answer
            .headers()
            .get("x-tokenrouter-dropped-params")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let body = answer.json().await.unwrap();
        outcomes.push((provider, status, body, dropped));
    }
    outcomes
}

/// With Redis, turn 2 on another data plane round-trips Anthropic's signed thinking and DeepSeek's
/// reasoning (the simulators check both) and Gemini's thought signature; without it, Anthropic's
/// turn 2 can only be answered by giving up thinking (`x-tokenrouter-dropped-params:
/// reasoning_effort`) and DeepSeek refuses it (400). (Gemini accepts Google's documented skip
/// signature, so its turn 2 succeeds either way.)
#[tokio::test]
async fn multi_turn_thinking_continues_on_another_data_plane_through_redis() {
    let Some(redis) = std::env::var("TOKENROUTER_TEST_REDIS_URL").ok() else {
        assert!(std::env::var_os("CI").is_none(), "CI must provide Redis");
        return eprintln!("skipped: TOKENROUTER_TEST_REDIS_URL is not set");
    };
    for (provider, status, body, dropped) in thinking_across_data_planes(Some(&redis)).await {
        assert_eq!(status, 200, "{provider}: {body}");
        let text = body["choices"][0]["message"]["content"]
            .as_str()
            .unwrap_or("");
        assert!(text.contains("18C"), "{provider}: {body}");
        assert!(
            !dropped.contains("reasoning_effort"),
            "{provider} kept thinking: {dropped}"
        );
    }
    let without = thinking_across_data_planes(None).await;
    let (_, status, body, dropped) = &without[0];
    assert_eq!(*status, 200, "{body}");
    assert!(
        dropped.contains("reasoning_effort"),
        "anthropic without a shared cache loses its thinking: {dropped:?}"
    );
    let (_, status, body, _) = &without[2];
    assert_eq!(
        *status, 400,
        "deepseek refuses a tool turn without its reasoning_content: {body}"
    );
}

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
/// snapshot; all of it comes back by itself when the database does.
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
    let http = reqwest::Client::new();
    let body = json!({"model": "gpt-4o-mini", "messages": setup::user_message("still here")});
    let (status, answer) = tokenrouter_tests::chat(&http, &dp, KEY, body.clone()).await;
    assert_eq!(status, 200, "the data plane serves its snapshot: {answer}");

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
}
