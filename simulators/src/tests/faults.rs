//! Every fault kind, the fault queue vs the sticky fault, cancel counting and shutdown.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::*;
use crate::Fault;

const PATH: &str = "/chat/completions";

fn request(stream: bool) -> Value {
    json!({"model": "gpt-4o", "stream": stream,
        "messages": [{"role": "user", "content": "one two three four five"}]})
}

#[tokio::test]
async fn status_fault_applies_once_with_retry_after() {
    let sim = start(Protocol::OpenAi).await;
    sim.push_fault(Fault::Status {
        status: 429,
        retry_after_secs: Some(7),
    });
    let response = post(&sim, PATH, &request(false)).await;
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "7");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limit_exceeded");
    assert_eq!(post(&sim, PATH, &request(false)).await.status(), 200);
}

#[tokio::test]
async fn queue_takes_precedence_over_sticky_fault_until_cleared() {
    let sim = start(Protocol::OpenAi).await;
    sim.set_fault(Some(Fault::Status {
        status: 503,
        retry_after_secs: None,
    }));
    sim.push_fault(Fault::InsufficientQuota);
    let first = post(&sim, PATH, &request(false)).await;
    assert_eq!(first.status(), 429);
    let body: Value = first.json().await.unwrap();
    assert_eq!(body["error"]["code"], "insufficient_quota");
    assert_eq!(body["error"]["type"], "insufficient_quota");
    assert_eq!(post(&sim, PATH, &request(false)).await.status(), 503);
    assert_eq!(post(&sim, PATH, &request(false)).await.status(), 503);
    sim.set_fault(None);
    assert_eq!(post(&sim, PATH, &request(false)).await.status(), 200);
}

#[tokio::test]
async fn delay_first_byte_waits_before_headers() {
    let sim = start(Protocol::OpenAi).await;
    sim.push_fault(Fault::DelayFirstByte(Duration::from_millis(200)));
    let started = Instant::now();
    let response = post(&sim, PATH, &request(true)).await;
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn stall_keeps_the_stream_open_and_counts_the_cancel() {
    let sim = start(Protocol::OpenAi).await;
    sim.push_fault(Fault::StallAfterChunks(2));
    let mut response = post(&sim, PATH, &request(true)).await;
    let (text, open) = read_events(&mut response, "\n\n", 3, Duration::from_millis(300)).await;
    assert!(open, "connection must stay open");
    assert_eq!(text.matches("\n\n").count(), 2);
    assert_eq!(sim.cancelled_count(), 0);
    drop(response);
    assert!(eventually(|| sim.cancelled_count() == 1).await);
}

#[tokio::test]
async fn cut_drops_the_connection_without_done() {
    let sim = start(Protocol::OpenAi).await;
    sim.push_fault(Fault::CutAfterChunks(3));
    let mut response = post(&sim, PATH, &request(true)).await;
    let (text, open) = read_events(&mut response, "\n\n", 100, Duration::from_secs(5)).await;
    assert!(!open, "stream must end");
    assert_eq!(text.matches("\n\n").count(), 3);
    assert!(!text.contains("[DONE]"));
    assert!(
        response.chunk().await.is_err() || text.matches("data:").count() == 3,
        "the body ends with an error"
    );
    assert_eq!(sim.cancelled_count(), 0, "a deliberate cut is not a cancel");

    sim.push_fault(Fault::CutAfterChunks(0));
    let response = post(&sim, PATH, &request(false)).await;
    assert_eq!(response.status(), 200);
    assert!(response.bytes().await.is_err(), "non-streaming body is cut");
}

#[tokio::test]
async fn malformed_chunk_follows_the_first_chunk_then_stream_continues() {
    let sim = start(Protocol::OpenAi).await;
    sim.push_fault(Fault::MalformedChunk);
    let text = post(&sim, PATH, &request(true)).await.text().await.unwrap();
    let events: Vec<&str> = text.split("\n\n").filter(|e| !e.is_empty()).collect();
    assert!(serde_json::from_str::<Value>(&events[0][6..]).is_ok());
    assert!(serde_json::from_str::<Value>(&events[1][6..]).is_err());
    assert!(serde_json::from_str::<Value>(&events[2][6..]).is_ok());
    assert_eq!(*events.last().unwrap(), "data: [DONE]");
}

#[tokio::test]
async fn garbage_is_a_200_that_is_not_json() {
    let sim = start(Protocol::OpenAi).await;
    sim.push_fault(Fault::Garbage);
    let response = post(&sim, PATH, &request(false)).await;
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    assert!(serde_json::from_str::<Value>(&text).is_err());
}

#[tokio::test]
async fn error_after_chunks_sends_an_in_band_error_and_no_done() {
    let sim = start(Protocol::OpenAi).await;
    sim.push_fault(Fault::ErrorAfterChunks(2));
    let text = post(&sim, PATH, &request(true)).await.text().await.unwrap();
    let events = parse_sse(&text, "\n\n");
    assert_eq!(events.len(), 3);
    assert_eq!(events[2].json()["error"]["type"], "server_error");
}

#[tokio::test]
async fn client_leaving_during_first_byte_delay_is_a_cancel() {
    let sim = start(Protocol::OpenAi).await;
    sim.push_fault(Fault::DelayFirstByte(Duration::from_secs(30)));
    let url = format!("{}{PATH}", sim.base_url());
    let pending = tokio::spawn(async move {
        client()
            .post(url)
            .header("authorization", format!("Bearer {KEY}"))
            .json(&request(true))
            .send()
            .await
    });
    assert!(eventually(|| sim.request_count() == 1).await);
    pending.abort();
    assert!(eventually(|| sim.cancelled_count() == 1).await);
}

#[tokio::test]
async fn chunk_interval_spaces_chunks_and_latency_delays_headers() {
    let mut config = SimConfig::new(Protocol::OpenAi, "sim", "");
    config.chunk_interval = Duration::from_millis(20);
    config.fixed_latency = Duration::from_millis(100);
    let sim = Simulator::start(config).await.unwrap();
    let started = Instant::now();
    let response = post_with(&sim, PATH, &request(true), Vec::new()).await;
    assert!(started.elapsed() >= Duration::from_millis(100));
    response.text().await.unwrap();
    // 1 role + 9 words + finish + [DONE] = 12 chunks, 11 gaps.
    assert!(started.elapsed() >= Duration::from_millis(100 + 11 * 20));
}

#[tokio::test]
async fn shutdown_ends_stalled_streams_and_stops_listening() {
    let sim = start(Protocol::OpenAi).await;
    sim.set_fault(Some(Fault::StallAfterChunks(1)));
    let mut response = post(&sim, PATH, &request(true)).await;
    let (_, open) = read_events(&mut response, "\n\n", 1, Duration::from_secs(2)).await;
    assert!(open);
    let addr = sim.addr();
    sim.shutdown();
    let rest = tokio::time::timeout(Duration::from_secs(2), response.text()).await;
    assert!(rest.is_ok(), "stalled stream must end on shutdown");
    let mut refused = false;
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(addr).await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(refused, "listener must be closed");
}

#[tokio::test]
async fn model_listing_does_not_consume_faults() {
    let sim = start(Protocol::OpenAi).await;
    sim.push_fault(Fault::Status {
        status: 500,
        retry_after_secs: None,
    });
    let models = client()
        .get(format!("{}/models", sim.base_url()))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(models.status(), 200);
    assert_eq!(post(&sim, PATH, &request(false)).await.status(), 500);
    assert_eq!(sim.request_count(), 1, "listings are counted apart");
    assert_eq!(sim.list_count(), 1);
}

#[tokio::test]
async fn app_answers_without_a_network() {
    use tower::ServiceExt;
    let state = crate::SimState::new(SimConfig::new(Protocol::OpenAi, "sim", ""));
    let http_request = axum::http::Request::post("/v1/chat/completions")
        .header("content-type", "application/json")
        .body(axum::body::Body::from(request(false).to_string()))
        .unwrap();
    let response = crate::app(state.clone())
        .oneshot(http_request)
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let body: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    assert_eq!(state.requests().len(), 1);
    assert_eq!(state.cancelled_count(), 0);
}
