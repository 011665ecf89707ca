//! Snapshot distribution: changes reach every data plane, NACKs keep the old config, outages of the
//! control plane do not stop serving, and a data plane can start from its snapshot file.

use std::time::{Duration, Instant};

use serde_json::json;
use tokenrouter_control_plane::ControlPlane;
use tokenrouter_data_plane::CompilePolicy;
use tokenrouter_proto::v1::{
    ListDataPlanesRequest, Provider, ProviderWrite, RoutingRule, RoutingRuleWrite,
};
use tokenrouter_tests::{
    Backend, ControlPlaneHandle, DataPlaneHandle, chat, data_plane_config, master_key, reopen_store,
};

use crate::setup::{KEY, add_simulated_provider, stack, user_message};

async fn change_reaches_two_data_planes(backend: Backend) {
    let Some(stack) = stack(backend).await else {
        return eprintln!("skipped: no postgres");
    };
    let (_alpha, _) = add_simulated_provider(&stack.cp, "alpha", &["m1"]).await;
    let (_beta, version) = add_simulated_provider(&stack.cp, "beta", &["other"]).await;
    let dp1 = DataPlaneHandle::start(data_plane_config("dp1"), &stack.cp.url(), None).await;
    let dp2 = DataPlaneHandle::start(data_plane_config("dp2"), &stack.cp.url(), None).await;
    dp1.wait_for_version(version).await;
    dp2.wait_for_version(version).await;
    let http = reqwest::Client::new();
    for dp in [&dp1, &dp2] {
        let (status, body) = chat(
            &http,
            dp,
            KEY,
            json!({"model": "m1", "messages": user_message("hi")}),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["provider"], "alpha");
        assert!(
            body["choices"][0]["message"]["content"]
                .as_str()
                .unwrap()
                .contains("alpha")
        );
    }

    let mut admin = stack.cp.admin().await;
    let rule = RoutingRule {
        name: "to-beta".into(),
        match_model: "m*".into(),
        target_provider: "beta".into(),
        ..Default::default()
    };
    let written = Instant::now();
    let version = admin
        .create_routing_rule(RoutingRuleWrite {
            rule: Some(rule),
            expected_version: 0,
        })
        .await
        .unwrap()
        .into_inner()
        .version;
    dp1.wait_for_version(version).await;
    dp2.wait_for_version(version).await;
    let propagation = written.elapsed();
    assert!(propagation < Duration::from_secs(2), "took {propagation:?}");
    for dp in [&dp1, &dp2] {
        let (status, body) = chat(
            &http,
            dp,
            KEY,
            json!({"model": "m1", "messages": user_message("hi")}),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["provider"], "beta");
        assert_eq!(body["routing_mode"], "rule:to-beta");
    }

    // The control plane knows both data planes and what they serve (ACKs are asynchronous).
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let planes = admin
            .list_data_planes(ListDataPlanesRequest {})
            .await
            .unwrap()
            .into_inner();
        let ours: Vec<_> = planes
            .data_planes
            .iter()
            .filter(|p| {
                p.node_id == dp1.state.config.node_id || p.node_id == dp2.state.config.node_id
            })
            .collect();
        if ours.len() == 2
            && ours
                .iter()
                .all(|p| p.connected && p.serving_version == version)
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "data planes never reported version {version}: {planes:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn change_reaches_two_data_planes_sqlite() {
    change_reaches_two_data_planes(Backend::Sqlite).await;
}

#[tokio::test]
async fn change_reaches_two_data_planes_postgres() {
    change_reaches_two_data_planes(Backend::Postgres).await;
}

#[tokio::test]
async fn a_refused_snapshot_keeps_the_old_config_and_shows_on_the_control_plane() {
    let stack = stack(Backend::Sqlite).await.unwrap();
    let mut admin = stack.cp.admin().await;
    let public = Provider {
        name: "public".into(),
        kind: "openai".into(),
        base_url: "https://api.example.com/v1".into(),
        models: vec!["m1".into()],
        ..Default::default()
    };
    let v1 = admin
        .create_provider(ProviderWrite {
            provider: Some(public),
            expected_version: 0,
        })
        .await
        .unwrap()
        .into_inner()
        .version;
    let normal = DataPlaneHandle::start(data_plane_config("normal"), &stack.cp.url(), None).await;
    let mut strict_config = data_plane_config("strict");
    strict_config.compile = CompilePolicy {
        deny_private_upstreams: true,
    };
    let strict = DataPlaneHandle::start(strict_config, &stack.cp.url(), None).await;
    normal.wait_for_version(v1).await;
    strict.wait_for_version(v1).await;

    let (_sim, v2) = add_simulated_provider(&stack.cp, "local", &["m2"]).await;
    normal.wait_for_version(v2).await;
    strict
        .wait_until("a NACK", |s| {
            s.last_nack().is_some_and(|n| n.version >= v2 - 1)
        })
        .await;
    assert_eq!(
        strict.state.runtime().version,
        v1,
        "the strict data plane keeps serving the old snapshot"
    );
    let status: serde_json::Value = reqwest::get(strict.admin_url("/status"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        status["last_nack"]["error"]
            .as_str()
            .unwrap()
            .contains("private"),
        "{status}"
    );
    assert_eq!(status["version"], v1);
    // The old config still answers requests (the provider is unreachable, but the key and model resolve).
    let (code, _) = chat(
        &reqwest::Client::new(),
        &strict,
        KEY,
        json!({"model": "m2", "messages": user_message("x")}),
    )
    .await;
    assert_eq!(code, 404, "m2 is unknown in the old snapshot");

    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let planes = admin
            .list_data_planes(ListDataPlanesRequest {})
            .await
            .unwrap()
            .into_inner();
        let entry = planes
            .data_planes
            .iter()
            .find(|p| p.node_id == strict.state.config.node_id)
            .cloned();
        if let Some(p) = entry.filter(|p| p.rejected_version == v2 && p.serving_version == v1) {
            assert!(p.last_error.contains("private"), "{p:?}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the NACK never showed on the control plane: {planes:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn data_planes_keep_serving_through_a_control_plane_outage_and_resync() {
    let mut stack = stack(Backend::Sqlite).await.unwrap();
    let (_alpha, _) = add_simulated_provider(&stack.cp, "alpha", &["m1"]).await;
    let (_beta, v1) = add_simulated_provider(&stack.cp, "beta", &["m2"]).await;
    let dp = DataPlaneHandle::start(data_plane_config("dp"), &stack.cp.url(), None).await;
    dp.wait_for_version(v1).await;
    let addr = stack.cp.addr;
    stack.cp.stop().await;
    dp.wait_until("disconnected", |s| !s.is_connected()).await;

    let http = reqwest::Client::new();
    let (status, body) = chat(
        &http,
        &dp,
        KEY,
        json!({"model": "m1", "messages": user_message("still there?")}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let ready = reqwest::get(dp.url("/readyz")).await.unwrap().status();
    assert_eq!(ready, 200, "readiness is a latch");

    // While it is down, another copy commits a change to the shared store.
    let other = ControlPlane::open(
        reopen_store(stack.backend, &stack.store_id).await,
        master_key(),
    )
    .await
    .unwrap();
    let rule = RoutingRule {
        name: "m1-to-beta".into(),
        match_model: "m1".into(),
        target_provider: "beta".into(),
        ..Default::default()
    };
    let v2 = other.create(rule, 0).await.unwrap();
    assert_eq!(v2, v1 + 1);

    let restarted = ControlPlaneHandle::start(
        reopen_store(stack.backend, &stack.store_id).await,
        Some(addr),
        None,
    )
    .await;
    assert_eq!(
        restarted.cp.snapshot().version,
        v2,
        "a restart keeps the version"
    );
    dp.wait_for_version(v2).await;
    assert!(dp.state.is_connected());
    let (status, body) = chat(
        &http,
        &dp,
        KEY,
        json!({"model": "m1", "messages": user_message("and now?")}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["provider"], "beta");
}

#[tokio::test]
async fn a_data_plane_starts_from_its_snapshot_file_while_the_control_plane_is_down() {
    let mut stack = stack(Backend::Sqlite).await.unwrap();
    let (_alpha, version) = add_simulated_provider(&stack.cp, "alpha", &["m1"]).await;
    let config = data_plane_config("first");
    let path = config.snapshot_path.clone().unwrap();
    let first = DataPlaneHandle::start(config, &stack.cp.url(), None).await;
    first.wait_for_version(version).await;
    first
        .wait_until("snapshot file written", |_| path.exists())
        .await;
    let url = stack.cp.url();
    stack.cp.stop().await;
    drop(first);

    let mut config = data_plane_config("second");
    config.snapshot_path = Some(path);
    let second = DataPlaneHandle::start(config, &url, None).await;
    second.wait_for_version(version).await;
    assert!(!second.state.is_connected());
    let (status, body) = chat(
        &reqwest::Client::new(),
        &second,
        KEY,
        json!({"model": "m1", "messages": user_message("hi")}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["provider"], "alpha");
}
