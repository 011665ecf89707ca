//! Edge cases of the Anthropic stream machine and answer/error mapping that no recording covers:
//! held-back first chunk, broken and malformed streams, JSON mode, parallel tools, cache usage,
//! spend-limit and rate-limit errors.
#![cfg(test)]

use axum::http::HeaderMap;
use serde_json::{Value, json};

use crate::error::UpstreamError;
use crate::providers::{Flow, Protocol, stream_translator, translate_response, upstream_error};
use crate::test_support::anthropic::Collected;
use crate::test_support::fixtures::{chunks_to_sse, ctx, replay};
use crate::upstream::sse::SseEvent;

fn event(v: &Value) -> SseEvent {
    SseEvent {
        event: v["type"].as_str().map(str::to_string),
        data: v.to_string(),
    }
}

fn start() -> Value {
    json!({"type": "message_start", "message": {"id": "msg_1", "model": "claude-x", "content": [],
        "usage": {"input_tokens": 10, "cache_read_input_tokens": 100, "cache_creation_input_tokens": 5, "output_tokens": 1}}})
}

fn run(events: &[Value], include_usage: bool) -> (Collected, Vec<Value>) {
    let lines: Vec<String> = events.iter().map(Value::to_string).collect();
    let r = replay(
        Protocol::Anthropic,
        &chunks_to_sse(Protocol::Anthropic, &lines),
        include_usage,
    );
    assert_eq!(r.end, Ok(true));
    (Collected::from_chunks(&r.chunks), r.chunks)
}

fn block_start(index: u64, block: Value) -> Value {
    json!({"type": "content_block_start", "index": index, "content_block": block})
}

fn delta(index: u64, delta: Value) -> Value {
    json!({"type": "content_block_delta", "index": index, "delta": delta})
}

fn stop(index: u64) -> Value {
    json!({"type": "content_block_stop", "index": index})
}

fn end(reason: &str, output: u64) -> [Value; 2] {
    [
        json!({"type": "message_delta", "delta": {"stop_reason": reason}, "usage": {"output_tokens": output}}),
        json!({"type": "message_stop"}),
    ]
}

#[test]
fn nothing_goes_out_before_content_so_an_early_error_can_fall_back() {
    let mut t = stream_translator(Protocol::Anthropic, ctx(true));
    let mut out = Vec::new();
    assert_eq!(t.usage(), None);
    for e in [
        start(),
        json!({"type": "ping"}),
        block_start(0, json!({"type": "text", "text": ""})),
    ] {
        assert_eq!(t.event(event(&e), &mut out), Ok(Flow::More));
    }
    assert!(out.is_empty());
    assert_eq!(
        t.usage().unwrap().prompt_tokens,
        115,
        "input + cache read + cache creation"
    );
    let overloaded =
        json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}});
    let e = t.event(event(&overloaded), &mut out).unwrap_err();
    assert!(e.retryable() && out.is_empty());
    let mut t = stream_translator(Protocol::Anthropic, ctx(true));
    t.event(event(&start()), &mut out).unwrap();
    assert!(
        matches!(t.end(&mut out), Err(UpstreamError::StreamBroken(_))),
        "cut before message_stop"
    );
}

#[test]
fn malformed_events_fail_only_when_content_would_be_lost() {
    let mut t = stream_translator(Protocol::Anthropic, ctx(false));
    let mut out = Vec::new();
    t.event(event(&start()), &mut out).unwrap();
    let broken = |name: &str| SseEvent {
        event: Some(name.into()),
        data: "{\"type\": \"x\", \"unterminated".into(),
    };
    assert_eq!(t.event(broken("ping"), &mut out), Ok(Flow::More));
    assert_eq!(
        t.event(broken("some_future_event"), &mut out),
        Ok(Flow::More)
    );
    let unknown = json!({"type": "some_future_event", "payload": [1, 2]});
    assert_eq!(t.event(event(&unknown), &mut out), Ok(Flow::More));
    assert!(matches!(
        t.event(broken("content_block_delta"), &mut out),
        Err(UpstreamError::Malformed(_))
    ));
    let e = stream_translator(Protocol::Anthropic, ctx(false))
        .event(broken("error"), &mut out)
        .unwrap_err();
    assert!(matches!(e, UpstreamError::InBand { code: None, .. }));
}

#[test]
fn parallel_tool_calls_get_openai_indices_and_usage_sums_cache_tokens() {
    let mut events = vec![
        start(),
        block_start(0, json!({"type": "text", "text": ""})),
        delta(0, json!({"type": "text_delta", "text": "Checking both."})),
        stop(0),
        block_start(
            1,
            json!({"type": "tool_use", "id": "toolu_a", "name": "w", "input": {}}),
        ),
        block_start(
            2,
            json!({"type": "tool_use", "id": "toolu_b", "name": "w", "input": {}}),
        ),
        delta(
            2,
            json!({"type": "input_json_delta", "partial_json": "{\"city\":"}),
        ),
        delta(
            1,
            json!({"type": "input_json_delta", "partial_json": "{\"city\": \"Oslo\"}"}),
        ),
        delta(
            2,
            json!({"type": "input_json_delta", "partial_json": " \"Rome\"}"}),
        ),
        stop(1),
        stop(2),
    ];
    events.extend(end("tool_use", 40));
    let (got, chunks) = run(&events, true);
    assert_eq!(got.tool_indices, vec![0, 1]);
    assert_eq!(
        got.tools[0],
        ("toolu_a".into(), "w".into(), "{\"city\": \"Oslo\"}".into())
    );
    assert_eq!(got.tools[1].2, "{\"city\": \"Rome\"}");
    assert_eq!(got.finish.as_deref(), Some("tool_calls"));
    assert_eq!(chunks[0]["id"], "msg_1");
    assert_eq!(chunks[0]["model"], "claude-x");
    assert_eq!(chunks[0]["created"], 1_700_000_000);
    let usage = got.usage.unwrap();
    assert_eq!(usage["prompt_tokens"], 115);
    assert_eq!(usage["prompt_tokens_details"]["cached_tokens"], 100);
    assert_eq!(usage["completion_tokens"], 40);
    assert_eq!(usage["total_tokens"], 155);
}

#[test]
fn json_mode_answers_come_back_as_content() {
    let mut events = vec![
        start(),
        block_start(
            0,
            json!({"type": "tool_use", "id": "toolu_j", "name": "json_response", "input": {}}),
        ),
        delta(0, json!({"type": "input_json_delta", "partial_json": ""})),
        delta(
            0,
            json!({"type": "input_json_delta", "partial_json": "{\"n\": "}),
        ),
        delta(0, json!({"type": "input_json_delta", "partial_json": "3}"})),
        stop(0),
    ];
    events.extend(end("tool_use", 9));
    let (got, _) = run(&events, false);
    assert_eq!(got.content, "{\"n\": 3}");
    assert!(got.tools.is_empty());
    assert_eq!(got.finish.as_deref(), Some("stop"));

    let answer = json!({"type": "message", "id": "msg_j", "model": "claude-x", "role": "assistant",
        "content": [{"type": "tool_use", "id": "toolu_j", "name": "json_response", "input": {"n": 3}}],
        "stop_reason": "tool_use", "usage": {"input_tokens": 3, "output_tokens": 4}});
    let t = translate_response(
        Protocol::Anthropic,
        answer.to_string().as_bytes(),
        &ctx(false),
    )
    .unwrap();
    let out: Value = serde_json::from_slice(&t.body).unwrap();
    assert_eq!(out["choices"][0]["message"]["content"], "{\"n\":3}");
    assert!(out["choices"][0]["message"].get("tool_calls").is_none());
    assert_eq!(out["choices"][0]["finish_reason"], "stop");
}

#[test]
fn stop_reasons_map_to_finish_reasons() {
    for (reason, finish) in [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("pause_turn", "stop"),
        ("max_tokens", "length"),
        ("model_context_window_exceeded", "length"),
        ("refusal", "content_filter"),
    ] {
        let mut events = vec![
            start(),
            block_start(0, json!({"type": "text", "text": ""})),
            delta(0, json!({"type": "text_delta", "text": "x"})),
            stop(0),
        ];
        events.extend(end(reason, 2));
        assert_eq!(
            run(&events, false).0.finish.as_deref(),
            Some(finish),
            "{reason}"
        );
        let answer = json!({"type": "message", "id": "m", "model": "c", "content": [{"type": "text", "text": "x"}],
            "stop_reason": reason, "usage": {"input_tokens": 1, "output_tokens": 1}});
        let t = translate_response(
            Protocol::Anthropic,
            answer.to_string().as_bytes(),
            &ctx(false),
        )
        .unwrap();
        let out: Value = serde_json::from_slice(&t.body).unwrap();
        assert_eq!(out["choices"][0]["finish_reason"], finish, "{reason}");
        let refusal = &out["choices"][0]["message"]["refusal"];
        assert_eq!(refusal.is_string(), reason == "refusal", "{reason}");
    }
}

#[test]
fn answers_that_are_not_messages_are_malformed() {
    for body in [
        &b"not json"[..],
        br#"{"type":"error","error":{"type":"api_error","message":"x"}}"#,
        b"[]",
    ] {
        let e = translate_response(Protocol::Anthropic, body, &ctx(false)).unwrap_err();
        assert!(matches!(e, UpstreamError::Malformed(_)));
    }
}

#[test]
fn rate_limits_retry_but_the_spend_limit_does_not() {
    let mut headers = HeaderMap::new();
    headers.insert("retry-after", "12".parse().unwrap());
    let rate = br#"{"type":"error","error":{"type":"rate_limit_error","message":"Your account has hit a rate limit."}}"#;
    let e = upstream_error(Protocol::Anthropic, 429, &headers, rate);
    assert!(e.retryable());
    assert!(
        matches!(&e, UpstreamError::Status { retry_after: Some(12), code: Some(c), .. } if c == "rate_limit_error")
    );
    assert_eq!(e.to_api_error("claude").retry_after(), Some(12));

    let spend = br#"{"type":"error","error":{"type":"rate_limit_error","message":"You have reached your specified workspace API usage limits.","details":{"error_code":"enforced_spend_limit_reached"}},"request_id":"req_1"}"#;
    let e = upstream_error(Protocol::Anthropic, 429, &HeaderMap::new(), spend);
    assert!(
        matches!(&e, UpstreamError::Status { code: Some(c), .. } if c == "enforced_spend_limit_reached")
    );
    assert!(!e.retryable());
    assert_eq!(e.to_api_error("claude").code(), Some("insufficient_quota"));

    let html = b"<html><body>413 Request Entity Too Large</body></html>";
    let e = upstream_error(Protocol::Anthropic, 413, &HeaderMap::new(), html);
    assert_eq!(
        e,
        UpstreamError::Status {
            status: 413,
            code: None,
            message: "HTTP 413".into(),
            retry_after: None
        }
    );
    let auth = br#"{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}"#;
    let e = upstream_error(Protocol::Anthropic, 401, &HeaderMap::new(), auth);
    assert!(!e.retryable());
    assert_eq!(e.to_api_error("claude").status(), 502);
}

/// Found by reading the stream machine while writing its fuzz target: signature deltas (and redacted thinking) were
/// buffered without limit, outside the budget that bounds thinking text. Past the budget the
/// blocks are neither kept nor sent back, like over-long thinking text.
#[test]
fn signatures_count_against_the_thinking_budget() {
    let mut t = stream_translator(Protocol::Anthropic, ctx(false));
    let mut out = Vec::new();
    let big = "s".repeat(3 * 1024 * 1024);
    let mut events = vec![
        start(),
        block_start(0, json!({"type": "thinking", "thinking": ""})),
        delta(0, json!({"type": "thinking_delta", "thinking": "hmm"})),
    ];
    for _ in 0..2 {
        events.push(delta(
            0,
            json!({"type": "signature_delta", "signature": big}),
        ));
    }
    events.push(stop(0));
    events.extend(end("end_turn", 3));
    for e in &events {
        if t.event(event(e), &mut out).unwrap() == Flow::Done {
            break;
        }
    }
    let finish: Value = serde_json::from_str(out.last().unwrap()).unwrap();
    assert_eq!(finish["choices"][0]["finish_reason"], "stop");
    assert!(
        finish["choices"][0]["delta"]
            .get("thinking_blocks")
            .is_none(),
        "{}",
        out.last().unwrap().chars().take(200).collect::<String>()
    );

    // Under the budget the same stream keeps its blocks.
    let mut t = stream_translator(Protocol::Anthropic, ctx(false));
    let mut out = Vec::new();
    events[3] = delta(0, json!({"type": "signature_delta", "signature": "sig"}));
    events.remove(4);
    for e in &events {
        t.event(event(e), &mut out).unwrap();
    }
    let finish: Value = serde_json::from_str(out.last().unwrap()).unwrap();
    assert_eq!(
        finish["choices"][0]["delta"]["thinking_blocks"],
        json!([{"type": "thinking", "thinking": "hmm", "signature": "sig"}])
    );
}

/// Found by reading the stream machines while adding an output bound to their fuzz targets: the
/// message id and model of `message_start` are repeated on every chunk, so a long one multiplied
/// by the number of deltas (gigabytes queued from one read of tiny deltas). Long ones are
/// replaced by the gateway's own.
#[test]
fn long_upstream_ids_and_models_are_not_echoed_on_every_chunk() {
    let long = "m".repeat(10_000);
    let start = json!({"type": "message_start", "message": {"id": long, "model": long}});
    let mut events = vec![start, block_start(0, json!({"type": "text", "text": ""}))];
    for _ in 0..3 {
        events.push(delta(0, json!({"type": "text_delta", "text": "x"})));
    }
    events.push(stop(0));
    events.extend(end("end_turn", 3));
    let (_, chunks) = run(&events, false);
    assert_eq!(chunks.len(), 4);
    for c in &chunks {
        assert_eq!(c["id"], "chatcmpl-test");
        assert_eq!(c["model"], "test-model");
    }
    let ok = "claude-x".to_string();
    let start = json!({"type": "message_start", "message": {"id": "msg_1", "model": ok}});
    events[0] = start;
    let (_, chunks) = run(&events, false);
    assert_eq!(chunks[0]["model"], "claude-x");
    assert_eq!(chunks[0]["id"], "msg_1");
}
