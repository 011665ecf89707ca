//! The secret canary: a provider key that must never appear in a log line (at any level), a
//! metric, a status page, an error body or an admin read, whatever goes wrong.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::json;
use tokenrouter_proto::v1::{
    Credential, CredentialWrite, GetSnapshotRequest, ListRequest, Provider,
};
use tokenrouter_simulators::{Fault, Protocol, SimConfig};
use tokenrouter_tests::{Backend, DataPlaneHandle, chat, data_plane_config};

use crate::setup::{KEY, add_provider_full, stack, user_message};

const CANARY: &str = "sk-canary-7c1e0f3b9d2a4e6f8a0b1c2d";

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut b) = self.0.lock() {
            b.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Every log line of the test binary, at trace level, from the first call on.
fn logs() -> &'static Captured {
    static LOGS: OnceLock<Captured> = OnceLock::new();
    LOGS.get_or_init(|| {
        let captured = Captured::default();
        let writer = captured.clone();
        let _ = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || writer.clone())
            .try_init();
        captured
    })
}

#[tokio::test]
async fn the_provider_key_never_leaks() {
    let logs = logs();
    let stack = stack(Backend::Sqlite).await.unwrap();
    // The simulator wants a different key, so every call fails with a 401 that quotes ours back.
    let config = SimConfig::new(Protocol::OpenAi, "leaky", "sk-the-right-key-000000000000");
    let (sim, _) = add_provider_full(
        &stack.cp,
        config,
        Provider {
            models: vec!["m".into()],
            ..Default::default()
        },
    )
    .await;
    let mut admin = stack.cp.admin().await;
    let credential = Credential {
        name: "leaky-key".into(),
        provider: "leaky".into(),
        secret: CANARY.into(),
    };
    let version = admin
        .update_credential(CredentialWrite {
            credential: Some(credential),
            expected_version: 0,
        })
        .await
        .unwrap()
        .into_inner()
        .version;
    let dp = DataPlaneHandle::start(data_plane_config("canary"), &stack.cp.url(), None).await;
    dp.wait_for_version(version).await;
    let http = reqwest::Client::new();
    let mut bodies = String::new();
    for stream in [false, true] {
        let (_, body) = chat(
            &http,
            &dp,
            KEY,
            json!({"model": "m", "stream": stream, "messages": user_message("x")}),
        )
        .await;
        bodies.push_str(&body.to_string());
    }
    // Also fail in other ways: garbage, a cut stream, an in-band error.
    admin
        .update_credential(CredentialWrite {
            credential: Some(Credential {
                name: "leaky-key".into(),
                provider: "leaky".into(),
                secret: "sk-the-right-key-000000000000".into(),
            }),
            expected_version: 0,
        })
        .await
        .unwrap();
    for fault in [
        Fault::Garbage,
        Fault::CutAfterChunks(1),
        Fault::ErrorAfterChunks(1),
    ] {
        sim.push_fault(fault);
        let response = http
            .post(dp.url("/v1/chat/completions"))
            .bearer_auth(KEY)
            .json(&json!({"model": "leaky:m", "stream": true, "messages": user_message("x")}))
            .send()
            .await
            .unwrap();
        bodies.push_str(&response.text().await.unwrap());
    }
    assert!(
        sim.requests()
            .iter()
            .any(|r| r.header("authorization") == Some(&format!("Bearer {CANARY}"))),
        "the canary was really used upstream"
    );
    let status = reqwest::get(dp.admin_url("/status"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let metrics = dp.metrics().await;
    let snapshot = format!(
        "{:?}",
        admin
            .get_snapshot(GetSnapshotRequest {})
            .await
            .unwrap()
            .into_inner()
    );
    let listed = format!(
        "{:?}",
        admin
            .list_credentials(ListRequest {})
            .await
            .unwrap()
            .into_inner()
    );
    let state = format!("{:?}", dp.state.runtime());
    for (what, text) in [
        ("error bodies", &bodies),
        ("/status", &status),
        ("/metrics", &metrics),
        ("GetSnapshot", &snapshot),
        ("ListCredentials", &listed),
        ("runtime Debug", &state),
    ] {
        assert!(
            !text.contains(CANARY) && !text.contains("canary-7c1e"),
            "the canary leaked into {what}: {text}"
        );
    }
    let logged = String::from_utf8_lossy(&logs.0.lock().unwrap()).to_string();
    assert!(!logged.is_empty(), "logs were captured");
    assert!(
        !logged.contains("canary-7c1e"),
        "the canary leaked into the logs"
    );
}
