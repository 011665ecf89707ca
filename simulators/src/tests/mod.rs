//! Tests against real started simulators over HTTP (reqwest), plus shared helpers.

mod anthropic;
mod embeddings;
mod faults;
mod gemini;
mod openai;
mod quirks;
mod responses;
mod responses_errors;
mod responses_fixtures;

use std::time::Duration;

use serde_json::Value;

use crate::{Protocol, SimConfig, Simulator};

pub(crate) const KEY: &str = "sk-test-key";

pub(crate) async fn start(protocol: Protocol) -> Simulator {
    Simulator::start(SimConfig::new(protocol, "sim", KEY))
        .await
        .unwrap()
}

pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// The auth headers of `protocol` with key `key`.
pub(crate) fn auth(protocol: Protocol, key: &str) -> Vec<(&'static str, String)> {
    match protocol {
        Protocol::Anthropic => vec![
            ("x-api-key", key.to_string()),
            ("anthropic-version", "2023-06-01".to_string()),
        ],
        Protocol::Gemini => vec![("x-goog-api-key", key.to_string())],
        _ => vec![("authorization", format!("Bearer {key}"))],
    }
}

/// POSTs `body` to `base_url + path` with the right credentials.
pub(crate) async fn post(sim: &Simulator, path: &str, body: &Value) -> reqwest::Response {
    post_with(sim, path, body, auth(sim.state().config().protocol, KEY)).await
}

pub(crate) async fn post_with(
    sim: &Simulator,
    path: &str,
    body: &Value,
    headers: Vec<(&'static str, String)>,
) -> reqwest::Response {
    let mut request = client()
        .post(format!("{}{path}", sim.base_url()))
        .json(body);
    for (name, value) in headers {
        request = request.header(name, value);
    }
    request.send().await.unwrap()
}

/// One SSE event: its `event:` name (if any) and its data.
#[derive(Debug)]
pub(crate) struct Event {
    pub name: Option<String>,
    pub data: String,
}

impl Event {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.data).unwrap()
    }
}

/// Splits an SSE body into events, checking every event ends with `separator`.
pub(crate) fn parse_sse(text: &str, separator: &str) -> Vec<Event> {
    assert!(
        text.ends_with(separator),
        "stream must end with a separator"
    );
    text.split(separator)
        .filter(|block| !block.is_empty())
        .filter(|block| !block.starts_with(':'))
        .map(|block| {
            let mut name = None;
            let mut data = String::new();
            for line in block.split(&separator[..separator.len() / 2]) {
                if let Some(value) = line.strip_prefix("event: ") {
                    name = Some(value.to_string());
                } else if let Some(value) = line.strip_prefix("data: ") {
                    data.push_str(value);
                } else {
                    panic!("unexpected SSE line {line:?}");
                }
            }
            Event { name, data }
        })
        .collect()
}

/// Reads body chunks until `count` complete events (by separator) arrived or `wait` passed.
pub(crate) async fn read_events(
    response: &mut reqwest::Response,
    separator: &str,
    count: usize,
    wait: Duration,
) -> (String, bool) {
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + wait;
    while text.matches(separator).count() < count {
        match tokio::time::timeout_at(deadline, response.chunk()).await {
            Ok(Ok(Some(chunk))) => text.push_str(std::str::from_utf8(&chunk).unwrap()),
            Ok(Ok(None)) | Ok(Err(_)) => return (text, false),
            Err(_) => return (text, true),
        }
    }
    (text, true)
}

/// Polls `check` until it holds or two seconds pass.
pub(crate) async fn eventually(check: impl Fn() -> bool) -> bool {
    for _ in 0..200 {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    check()
}
