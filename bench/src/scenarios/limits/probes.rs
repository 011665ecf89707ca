//! Probes of a running gateway for the `limits` scenario: the rate-limit headers each key gets,
//! the limiter's `/status`, and counts in its log.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::Value;

use super::super::chat_body;
use super::{LIMITED_KEY, MODEL, RPM};
use crate::stack::CLIENT_KEY;

/// Fails unless the limited key's answers carry `x-ratelimit-limit-requests: RPM` and the run's
/// key's carry none (so the baseline really skips the limiter). Waits for the key to be served.
pub(super) async fn check_headers(port: u16) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/v1/chat/completions");
    let body = chat_body(MODEL, false);
    for (key, expect) in [(LIMITED_KEY, Some(RPM)), (CLIENT_KEY, None)] {
        let deadline = Instant::now() + Duration::from_secs(30);
        let response = loop {
            let r = http.post(&url).bearer_auth(key).json(&body).send().await;
            match r {
                Ok(r) if r.status().is_success() => break r,
                Ok(r) if Instant::now() > deadline => {
                    let status = r.status();
                    bail!(
                        "key {}… never served: {status} {}",
                        &key[..10],
                        r.text().await.unwrap_or_default()
                    );
                }
                Err(e) if Instant::now() > deadline => {
                    return Err(e).context("the gateway did not answer");
                }
                _ => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        };
        let header = response
            .headers()
            .get("x-ratelimit-limit-requests")
            .map(|v| v.to_str().unwrap_or("?").to_string());
        match (expect, header) {
            (Some(rpm), Some(h)) if h == rpm.to_string() => {}
            (Some(rpm), Some(h)) => bail!(
                "the limited key answers x-ratelimit-limit-requests: {h}, not the configured rpm {rpm}"
            ),
            (Some(rpm), None) => bail!(
                "the limited key (rpm {rpm}) answers without x-ratelimit-limit-requests: its limits are not applied, so there is nothing to measure"
            ),
            (None, Some(h)) => bail!(
                "the baseline key answers x-ratelimit-limit-requests: {h}; it should carry no limits"
            ),
            (None, None) => {}
        }
    }
    Ok(())
}

/// The gateway's `/status` `limiter` object.
pub(super) async fn limiter_status(port: u16) -> anyhow::Result<Value> {
    let status: Value = reqwest::get(format!("http://127.0.0.1:{port}/status"))
        .await?
        .json()
        .await?;
    status
        .get("limiter")
        .cloned()
        .context("/status has no limiter")
}

/// Requests decided by the fail mode so far (Redis unreachable or slower than its timeout).
pub(super) async fn degraded_decisions(port: u16) -> anyhow::Result<u64> {
    limiter_status(port)
        .await?
        .get("degraded_decisions")
        .and_then(Value::as_u64)
        .context("/status limiter has no degraded_decisions")
}

/// Waits until the gateway's limiter counts in Redis and is connected.
pub(super) async fn wait_redis_connected(port: u16) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let status = limiter_status(port).await.ok();
        let backend = status.as_ref().and_then(|s| s.get("backend")?.as_str());
        let degraded = status.as_ref().and_then(|s| s.get("degraded")?.as_bool());
        match (backend, degraded) {
            (Some("redis"), Some(false)) => return Ok(()),
            (Some("memory"), _) => bail!("the gateway started with --redis-url counts in memory"),
            _ if Instant::now() > deadline => {
                bail!("the gateway's limiter never connected to Redis: {status:?}")
            }
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// Lines of the log at `path` containing `needle`.
pub(super) fn count_in_log(path: &std::path::Path, needle: &str) -> Option<usize> {
    let text = std::fs::read_to_string(path).ok()?;
    Some(text.lines().filter(|l| l.contains(needle)).count())
}
