//! Provider calls through an egress proxy: the environment's, a provider's own, or none.

use super::*;

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
