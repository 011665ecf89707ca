//! A data plane on the open internet: slow and abusive clients, caps, operator endpoints off the
//! public port, the drain of a rolling deploy, the SSRF guard against names that resolve to
//! private addresses; and stores that cannot write.

use std::time::{Duration, Instant};

use serde_json::json;
use tokenrouter_data_plane::{DataPlaneConfig, ListenerLimits};
use tokenrouter_tests::{DataPlaneHandle, data_plane_config};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use crate::setup::{self, KEY};

mod drain;
mod listener;
mod ssrf;
mod stores;

/// A stack (SQLite store, the test key, provider `sim` serving gpt-4o-mini) and a data plane with
/// `limits`, serving it.
async fn stack_with(
    limits: ListenerLimits,
    sim: tokenrouter_simulators::SimConfig,
) -> (
    setup::Stack,
    tokenrouter_simulators::Simulator,
    DataPlaneHandle,
) {
    let stack = setup::stack(tokenrouter_tests::Backend::Sqlite)
        .await
        .unwrap();
    let (sim, version) = setup::add_provider_with(&stack.cp, sim, &["gpt-4o-mini"]).await;
    let config = DataPlaneConfig {
        listener: limits,
        ..data_plane_config("hardening")
    };
    let dp = DataPlaneHandle::start(config, &stack.cp.url(), None).await;
    dp.wait_for_version(version).await;
    (stack, sim, dp)
}

fn sim_config() -> tokenrouter_simulators::SimConfig {
    tokenrouter_simulators::SimConfig::new(
        tokenrouter_simulators::Protocol::OpenAi,
        "sim",
        "sim-secret",
    )
}

/// One chat completion with a fresh connection; its status.
async fn chat_status(dp: &DataPlaneHandle) -> u16 {
    let http = reqwest::Client::new();
    let body = json!({"model": "gpt-4o-mini", "messages": setup::user_message("hi")});
    tokenrouter_tests::chat(&http, dp, KEY, body).await.0
}

/// Reads what the server sends until it closes (or `limit` passes): the bytes and whether it closed.
async fn read_until_closed(tcp: &mut TcpStream, limit: Duration) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, tcp.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (out, true),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Err(_) => return (out, false),
        }
    }
}
