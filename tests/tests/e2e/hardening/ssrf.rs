//! `--deny-private-upstreams` against names: a provider host that resolves to loopback, the cloud
//! metadata address or a private range is refused at connect time, whatever the name looks like.

use std::net::IpAddr;

use tokenrouter_data_plane::{CompilePolicy, Resolver};
use tokenrouter_proto::v1::{Provider, ProviderWrite};

use super::*;

/// Registers provider `name` at `base_url` for model `model`; the new version.
async fn add(stack: &setup::Stack, name: &str, base_url: &str, model: &str) -> u64 {
    stack
        .cp
        .admin()
        .await
        .create_provider(ProviderWrite {
            provider: Some(Provider {
                name: name.into(),
                kind: "openai".into(),
                base_url: base_url.into(),
                models: vec![model.into()],
                ..Default::default()
            }),
            expected_version: 0,
        })
        .await
        .unwrap()
        .into_inner()
        .version
}

/// Names pinned (as a DNS answer would) to 127.0.0.1, 169.254.169.254 and a public+private pair
/// are refused under the guard; the same loopback name is served without it, so the refusal is
/// the guard's.
#[tokio::test]
async fn names_resolving_to_private_addresses_are_refused() {
    let stack = setup::stack(tokenrouter_tests::Backend::Sqlite)
        .await
        .unwrap();
    // Not registered under its 127.0.0.1 URL: the guard would refuse that literal outright.
    let sim = tokenrouter_simulators::Simulator::start(tokenrouter_simulators::SimConfig::new(
        tokenrouter_simulators::Protocol::OpenAi,
        "sim",
        "",
    ))
    .await
    .unwrap();
    let port = url::Url::parse(&sim.base_url()).unwrap().port().unwrap();
    let loopback: IpAddr = "127.0.0.1".parse().unwrap();
    let resolver = Resolver::default()
        .pin("rebound.example", vec![loopback])
        .pin("metadata.example", vec!["169.254.169.254".parse().unwrap()])
        .pin(
            "mixed.example",
            vec![
                "93.184.216.34".parse().unwrap(),
                "10.0.0.7".parse().unwrap(),
            ],
        );
    add(
        &stack,
        "rebound",
        &format!("http://rebound.example:{port}/v1"),
        "m-rebound",
    )
    .await;
    add(
        &stack,
        "metadata",
        &format!("http://metadata.example:{port}/v1"),
        "m-metadata",
    )
    .await;
    let version = add(
        &stack,
        "mixed",
        &format!("http://mixed.example:{port}/v1"),
        "m-mixed",
    )
    .await;

    let guarded = DataPlaneConfig {
        compile: CompilePolicy {
            deny_private_upstreams: true,
        },
        resolver: resolver.clone(),
        ..data_plane_config("ssrf-guarded")
    };
    let open = DataPlaneConfig {
        resolver,
        ..data_plane_config("ssrf-open")
    };
    let guarded = DataPlaneHandle::start(guarded, &stack.cp.url(), None).await;
    let open = DataPlaneHandle::start(open, &stack.cp.url(), None).await;
    guarded.wait_for_version(version).await;
    open.wait_for_version(version).await;
    let http = reqwest::Client::new();
    let ask = |model: &str| json!({"model": model, "messages": setup::user_message("hi")});
    let before = sim.requests().len();
    for model in ["m-rebound", "m-metadata", "m-mixed"] {
        let (status, body) = tokenrouter_tests::chat(&http, &guarded, KEY, ask(model)).await;
        assert!(
            status >= 500 && status != 200,
            "{model} refused under the guard: {status} {body}"
        );
        assert!(
            !body.to_string().contains("169.254") && !body.to_string().contains("127.0.0.1"),
            "the answer names no address: {body}"
        );
    }
    assert_eq!(
        sim.requests().len(),
        before,
        "nothing reached the simulator"
    );
    let (status, body) = tokenrouter_tests::chat(&http, &open, KEY, ask("m-rebound")).await;
    assert_eq!(
        status, 200,
        "without the guard the pinned name is served: {body}"
    );
    assert_eq!(sim.requests().len(), before + 1);
}
