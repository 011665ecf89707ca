//! The execution paths in process (`app(state).oneshot(...)` against simulators): fallback after a
//! failure, hedging, credential cool-downs, and one usage record per request whatever its attempts.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokenrouter_simulators::Fault;

use http_body_util::BodyExt;
use tokenrouter_simulators::{Protocol, SimConfig, Simulator};

use crate::state::DataPlaneState;
use crate::test_support::app::{Config, chat, requests_total, send, usage_records};

/// Provider `primary` (model `m`) falling back to `backup` (model `b`) under rule `r`.
async fn fallback_pair() -> (Arc<DataPlaneState>, Simulator, Simulator) {
    let mut config = Config::default();
    let primary = config.provider("primary", &["m"]).await;
    let backup = config.provider("backup", &["b"]).await;
    config.rule("r", ("primary", "m"), &[("backup", "b")], |p| {
        p.backoff_base_ms = 1;
    });
    (config.start(), primary, backup)
}

fn ask(model: &str, stream: bool) -> serde_json::Value {
    json!({"model": model, "stream": stream, "messages": [{"role": "user", "content": "hi"}]})
}

#[tokio::test]
async fn a_failed_attempt_falls_back_and_the_request_is_one_record() {
    let (state, primary, _backup) = fallback_pair().await;
    for stream in [false, true] {
        primary.push_fault(Fault::Status {
            status: 503,
            retry_after_secs: None,
        });
        let answer = chat(&state, ask("r", stream)).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert_eq!(answer.header("x-tokenrouter-provider"), "backup");
        assert_eq!(answer.header("x-tokenrouter-attempts"), "2");
        let records = usage_records(&state);
        assert_eq!(records.len(), 1, "{records:?}");
        assert_eq!(
            (
                records[0].provider.as_str(),
                records[0].attempts,
                records[0].status
            ),
            ("backup", 2, 200)
        );
        // The record tells the dashboard why and how: the routing decision, and the attempt
        // that failed (its status, never its message).
        let routing: serde_json::Value = serde_json::from_str(&records[0].routing).unwrap();
        assert_eq!(routing["mode"], records[0].routing_mode.as_str());
        let failed: serde_json::Value = serde_json::from_str(&records[0].failed_attempts).unwrap();
        assert_eq!(failed.as_array().unwrap().len(), 1, "{failed}");
        assert_eq!(
            (failed[0]["provider"].as_str(), failed[0]["error"].as_str()),
            (Some("primary"), Some("503"))
        );
        assert!(failed[0]["ms"].is_u64());
    }
    assert_eq!(requests_total(&state, "primary"), 0);
    assert_eq!(requests_total(&state, "backup"), 2);
}

#[tokio::test]
async fn every_attempt_failing_is_one_failed_record_naming_the_last() {
    let (state, primary, backup) = fallback_pair().await;
    for sim in [&primary, &backup] {
        sim.push_fault(Fault::Status {
            status: 500,
            retry_after_secs: None,
        });
    }
    let answer = chat(&state, ask("r", false)).await;
    assert_eq!(answer.status, 503, "{}", answer.body);
    assert_eq!(answer.json()["error"]["code"], "provider_unavailable");
    let records = usage_records(&state);
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(
        (
            records[0].provider.as_str(),
            records[0].attempts,
            records[0].status
        ),
        ("backup", 2, 503)
    );
    let failed: serde_json::Value = serde_json::from_str(&records[0].failed_attempts).unwrap();
    let providers: Vec<&str> = failed
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["provider"].as_str().unwrap())
        .collect();
    assert_eq!(
        providers,
        ["primary", "backup"],
        "both failures, oldest first"
    );
}

/// The first candidate opens its stream and then sends nothing; the hedge answers. The loser is
/// cancelled and is part of its request's record, not a request of its own.
#[tokio::test]
async fn a_hedge_wins_over_a_silent_stream_and_the_loser_is_not_a_request() {
    let mut config = Config::default();
    let slow = config.provider("slow", &["x"]).await;
    let _quick = config.provider("quick", &["y"]).await;
    config.rule("h", ("slow", "x"), &[("quick", "y")], |p| {
        p.hedge_after_ms = 50;
    });
    let state = config.start();
    for _ in 0..2 {
        slow.push_fault(Fault::StallAfterChunks(0));
        let answer = chat(&state, ask("h", true)).await;
        assert_eq!(answer.status, 200);
        assert_eq!(answer.header("x-tokenrouter-provider"), "quick");
        assert_eq!(answer.header("x-tokenrouter-attempts"), "2");
        assert!(answer.body.ends_with("data: [DONE]\n\n"), "{}", answer.body);
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while slow.cancelled_count() < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "losers not cancelled"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let records = usage_records(&state);
    let providers: Vec<&str> = records.iter().map(|r| r.provider.as_str()).collect();
    assert_eq!(providers, ["quick", "quick"], "{records:?}");
    assert_eq!(requests_total(&state, "slow"), 0);
    assert_eq!(requests_total(&state, "quick"), 2);
}

/// A 429 with `Retry-After` cools the credential down: the next request does not ask the
/// provider at all (no backoff, no retry budget spent on it) and goes straight to the fallback.
#[tokio::test]
async fn a_rate_limited_credential_rests_for_its_retry_after() {
    let (state, primary, backup) = fallback_pair().await;
    primary.push_fault(Fault::Status {
        status: 429,
        retry_after_secs: Some(60),
    });
    for _ in 0..3 {
        let answer = chat(&state, ask("r", false)).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert_eq!(answer.header("x-tokenrouter-provider"), "backup");
    }
    assert_eq!(primary.requests().len(), 1, "asked while cooling down");
    assert_eq!(backup.requests().len(), 3);
    assert_eq!(usage_records(&state).len(), 3);
}

/// A refusal by the adapter is final: no fallback, and the record says 400.
#[tokio::test]
async fn a_request_refused_before_any_attempt_is_one_record() {
    let mut config = Config::default();
    let _p = config.provider("primary", &["m"]).await;
    let state = config.start();
    let answer = chat(&state, json!({"model": "m", "messages": "not a list"})).await;
    assert_eq!(answer.status, 400, "{}", answer.body);
    let records = usage_records(&state);
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!((records[0].status, records[0].attempts), (400, 0));
}

/// A stream the client cuts before the provider reports usage is recorded (and charged) for what
/// it was sent: the prompt estimate and the streamed text, not nothing and not the reservation.
#[tokio::test]
async fn a_stream_cut_by_the_client_is_charged_for_what_was_streamed() {
    let mut config = Config::default();
    let mut sim = SimConfig::new(Protocol::OpenAi, "talker", "sim-secret-talker");
    sim.chunk_interval = Duration::from_millis(50);
    let talker = config.provider_with(sim, &["m"]).await;
    let state = config.start();
    let words = "one two three four five six seven eight nine ten eleven twelve";
    let response = send(
        &state,
        json!({"model": "m", "stream": true, "messages": [{"role": "user", "content": words}]}),
    )
    .await;
    assert_eq!(response.status(), 200);
    let mut body = response.into_body();
    let mut seen = String::new();
    // Past the role chunk (empty content): a few words have been streamed.
    while seen.matches("\"content\":\"").count() < 3 {
        let frame = body.frame().await.expect("a frame").expect("no error");
        if let Ok(data) = frame.into_data() {
            seen.push_str(&String::from_utf8_lossy(&data));
        }
    }
    drop(body);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let records = loop {
        let records = usage_records(&state);
        if !records.is_empty() {
            break records;
        }
        assert!(tokio::time::Instant::now() < deadline, "no usage record");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(records.len(), 1, "{records:?}");
    let r = &records[0];
    assert_eq!((r.status, r.completed), (200, false), "{r:?}");
    assert!(r.prompt_tokens > 0, "the prompt is charged: {r:?}");
    assert!(
        r.completion_tokens >= 1,
        "what was streamed is charged: {r:?}"
    );
    assert!(
        r.completion_tokens < 50,
        "not more than was streamed: {r:?}"
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while talker.cancelled_count() < 1 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "upstream not cancelled"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
