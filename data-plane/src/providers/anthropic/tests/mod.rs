//! Conformance of the Anthropic adapter against every recorded file in `fixtures/anthropic/`:
//! streams replayed whole and split at every byte, whole answers, error bodies, and the cassettes'
//! recorded requests rebuilt from equivalent OpenAI requests.

mod params;
mod request;
mod roundtrip;
mod stream;

use axum::http::HeaderMap;
use serde_json::{Value, json};

use crate::error::UpstreamError;
use crate::providers::{Protocol, translate_response, upstream_error};
use crate::test_support::anthropic::{
    Collected, Expected, build, events_of_raw_sse, normalise_messages,
};
use crate::test_support::fixtures::{
    self, assert_split_invariant, chunks, chunks_to_sse, ctx, replay,
};

const DIR: &str = "anthropic";

/// Every file in `fixtures/anthropic/` and the test that covers it: a new recording fails here
/// until it gets a conformance test.
const COVERED: &[&str] = &[
    "pydantic-ai__test_anthropic_count_tokens_error.yaml",
    "pydantic-ai__test_anthropic_explicit_effort_xhigh_unsupported_model_errors.yaml",
    "pydantic-ai__test_anthropic_model_thinking_part_stream.yaml",
    "pydantic-ai__test_anthropic_tool_with_thinking.yaml",
    "pydantic-ai__test_multiple_parallel_tool_calls.yaml",
    "synthetic__http-529-overloaded.json",
    "synthetic__midstream-overloaded-error.sse",
    "vercel-ai__anthropic-clear-thinking.1.chunks.txt",
    "vercel-ai__anthropic-json-tool.1.chunks.txt",
    "vercel-ai__anthropic-json-tool.1.json",
    "vercel-ai__anthropic-message-delta-input-tokens.chunks.txt",
    "vercel-ai__anthropic-refusal.chunks.txt",
    "vercel-ai__anthropic-refusal.json",
    "vercel-ai__anthropic-text.chunks.txt",
    "vercel-ai__anthropic-text.json",
    "vercel-ai__anthropic-tool-no-args.chunks.txt",
    "vercel-ai__anthropic-tool-no-args.json",
];

#[test]
fn every_fixture_has_a_conformance_test() {
    assert_eq!(fixtures::list(DIR), COVERED);
}

/// Replays a stream (whole, with and without the usage chunk, and split at every byte) and checks
/// it against what the recorded events say, field by field.
fn check_stream(sse: &[u8], events: &[Value], what: &str) {
    let expected = Expected::from_events(events);
    let with_usage = replay(Protocol::Anthropic, sse, true);
    assert_eq!(with_usage.end, Ok(true), "{what}: ends with message_stop");
    let got = Collected::from_chunks(&with_usage.chunks);
    got.assert_matches(&expected, what);
    let usage = got.usage.as_ref().expect("a usage chunk was asked for");
    assert_eq!(usage["prompt_tokens"], expected.prompt_tokens, "{what}");
    assert_eq!(
        usage["completion_tokens"], expected.completion_tokens,
        "{what}"
    );
    assert_eq!(
        usage["prompt_tokens_details"]["cached_tokens"], expected.cached_tokens,
        "{what}"
    );
    assert_eq!(
        usage["total_tokens"],
        expected.prompt_tokens + expected.completion_tokens,
        "{what}"
    );
    let without = replay(Protocol::Anthropic, sse, false);
    assert!(
        Collected::from_chunks(&without.chunks).usage.is_none(),
        "{what}"
    );
    assert_eq!(without.chunks.len() + 1, with_usage.chunks.len(), "{what}");
    assert_split_invariant(Protocol::Anthropic, sse, true);
}

#[test]
fn recorded_chunk_streams_translate_field_by_field() {
    for name in COVERED.iter().filter(|n| n.ends_with(".chunks.txt")) {
        let lines = chunks(&format!("{DIR}/{name}"));
        let events: Vec<Value> = lines
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        check_stream(&chunks_to_sse(Protocol::Anthropic, &lines), &events, name);
    }
}

#[test]
fn recorded_edge_cases_come_out_right() {
    let run = |name: &str| {
        let lines = chunks(&format!("{DIR}/vercel-ai__anthropic-{name}.chunks.txt"));
        Collected::from_chunks(
            &replay(
                Protocol::Anthropic,
                &chunks_to_sse(Protocol::Anthropic, &lines),
                true,
            )
            .chunks,
        )
    };
    let no_args = run("tool-no-args");
    assert_eq!(
        no_args.tools[0].2, "{}",
        "a no-argument tool gets an empty object"
    );
    assert_eq!(no_args.tools[0].0, "toolu_01QE1WLsSVp5hy5Q3GmGTmjP");
    assert_eq!(no_args.finish.as_deref(), Some("tool_calls"));
    let json_tool = run("json-tool.1");
    assert_eq!(
        json_tool.tool_indices,
        vec![0],
        "OpenAI index, not Anthropic's block index"
    );
    let later = run("message-delta-input-tokens");
    assert_eq!(
        later.usage.unwrap()["prompt_tokens"],
        61,
        "message_delta's input_tokens win"
    );
    let refusal = run("refusal");
    assert_eq!(refusal.finish.as_deref(), Some("content_filter"));
    assert!(refusal.refusal.contains("violative cyber content"));
    let thinking = run("clear-thinking.1");
    assert!(
        thinking
            .reasoning
            .starts_with("The previous result was 925.")
    );
    assert_eq!(thinking.content, "925 ÷ 5 = 185");
    let blocks = thinking
        .thinking_blocks
        .expect("the signed block goes back to the client");
    assert!(
        blocks[0]["signature"]
            .as_str()
            .unwrap()
            .starts_with("EvQBCkYICxgCKkAx")
    );
}

/// A whole recorded answer against its translation.
pub(in crate::providers) fn check_message(recorded: &Value, what: &str) {
    let t = translate_response(
        Protocol::Anthropic,
        recorded.to_string().as_bytes(),
        &ctx(false),
    )
    .unwrap_or_else(|e| panic!("{what}: {e:?}"));
    let out: Value = serde_json::from_slice(&t.body).unwrap();
    let expected = Expected::from_message(recorded);
    assert_eq!(out["object"], "chat.completion", "{what}");
    assert_eq!(out["id"], recorded["id"], "{what}");
    assert_eq!(out["model"], recorded["model"], "{what}");
    let choice = &out["choices"][0];
    let message = &choice["message"];
    assert_eq!(message["role"], "assistant", "{what}");
    let content = message["content"].as_str().unwrap_or_default();
    assert_eq!(content, expected.text, "{what}");
    assert_eq!(
        message["content"].is_null(),
        expected.text.is_empty(),
        "{what}"
    );
    assert_eq!(choice["finish_reason"], expected.finish, "{what}");
    let calls = message["tool_calls"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(calls.len(), expected.tools.len(), "{what}");
    for (call, (id, name, args)) in calls.iter().zip(&expected.tools) {
        assert_eq!(call["id"], *id, "{what}");
        assert_eq!(call["type"], "function", "{what}");
        assert_eq!(call["function"]["name"], *name, "{what}");
        let got: Value =
            serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
        let want: Value = serde_json::from_str(args).unwrap();
        assert_eq!(got, want, "{what}: arguments");
    }
    assert_eq!(
        message["reasoning_content"].as_str().unwrap_or_default(),
        expected.reasoning
    );
    let usage = t.usage.unwrap();
    assert_eq!(usage.prompt_tokens, expected.prompt_tokens, "{what}");
    assert_eq!(
        usage.completion_tokens, expected.completion_tokens,
        "{what}"
    );
    assert_eq!(usage.cached_tokens, expected.cached_tokens, "{what}");
    assert_eq!(
        out["usage"]["prompt_tokens"], expected.prompt_tokens,
        "{what}"
    );
    assert_eq!(
        out["usage"]["completion_tokens"], expected.completion_tokens,
        "{what}"
    );
}

#[test]
fn recorded_whole_answers_translate_field_by_field() {
    for name in COVERED
        .iter()
        .filter(|n| n.starts_with("vercel-ai") && n.ends_with(".json"))
    {
        check_message(&fixtures::json(&format!("{DIR}/{name}")), name);
    }
    let refusal = fixtures::json(&format!("{DIR}/vercel-ai__anthropic-refusal.json"));
    let t = translate_response(
        Protocol::Anthropic,
        refusal.to_string().as_bytes(),
        &ctx(false),
    )
    .unwrap();
    let out: Value = serde_json::from_slice(&t.body).unwrap();
    assert!(
        out["choices"][0]["message"]["refusal"]
            .as_str()
            .unwrap()
            .contains("Usage Policy")
    );
}

#[test]
fn recorded_error_bodies_keep_their_type_and_retry_class() {
    let cases = [
        (
            "pydantic-ai__test_anthropic_count_tokens_error.yaml",
            404,
            "not_found_error",
            false,
        ),
        (
            "pydantic-ai__test_anthropic_explicit_effort_xhigh_unsupported_model_errors.yaml",
            400,
            "invalid_request_error",
            false,
        ),
    ];
    for (name, status, code, retryable) in cases {
        let recorded = &fixtures::cassette(&format!("{DIR}/{name}"))[0];
        assert_eq!(recorded.status, status);
        let body = recorded.response.as_ref().unwrap();
        let e = upstream_error(
            Protocol::Anthropic,
            status,
            &HeaderMap::new(),
            body.to_string().as_bytes(),
        );
        let UpstreamError::Status {
            code: c, message, ..
        } = &e
        else {
            panic!("{e:?}")
        };
        assert_eq!(c.as_deref(), Some(code), "{name}");
        assert_eq!(
            message,
            body["error"]["message"].as_str().unwrap(),
            "{name}"
        );
        assert_eq!(e.retryable(), retryable, "{name}");
    }
    let mut headers = HeaderMap::new();
    headers.insert("retry-after", "7".parse().unwrap());
    let body = fixtures::text(&format!("{DIR}/synthetic__http-529-overloaded.json"));
    let e = upstream_error(Protocol::Anthropic, 529, &headers, body.as_bytes());
    assert_eq!(
        e,
        UpstreamError::Status {
            status: 529,
            code: Some("overloaded_error".into()),
            message: "Overloaded".into(),
            retry_after: Some(7),
        }
    );
    assert!(e.retryable());
    assert_eq!(e.to_api_error("claude").status(), 503);
}

#[test]
fn recorded_midstream_error_ends_the_stream_in_band() {
    let sse = fixtures::text(&format!("{DIR}/synthetic__midstream-overloaded-error.sse"));
    let r = replay(Protocol::Anthropic, sse.as_bytes(), true);
    assert_eq!(Collected::from_chunks(&r.chunks).content, "Partial answer");
    let Err(e) = &r.end else {
        panic!("{:?}", r.end)
    };
    assert_eq!(
        *e,
        UpstreamError::InBand {
            code: Some("overloaded_error".into()),
            message: "Overloaded".into()
        }
    );
    assert!(
        e.retryable(),
        "before the first byte, an overloaded stream may fall back"
    );
    assert_split_invariant(Protocol::Anthropic, sse.as_bytes(), true);
}

#[test]
fn recorded_thinking_stream_cassette_replays_both_ways() {
    let rel = format!("{DIR}/pydantic-ai__test_anthropic_model_thinking_part_stream.yaml");
    let recorded = &fixtures::cassette(&rel)[0];
    let raw = recorded.raw.as_deref().unwrap();
    check_stream(raw.as_bytes(), &events_of_raw_sse(raw), "thinking cassette");
    let got = Collected::from_chunks(&replay(Protocol::Anthropic, raw.as_bytes(), true).chunks);
    assert!(
        got.reasoning
            .starts_with("This is a straightforward question about pedestrian safety")
    );
    assert!(
        got.content
            .starts_with("Here are the basic steps for safely crossing the street:")
    );

    let sent = recorded.request.as_ref().unwrap();
    let (ours, call) = build(
        json!({"model": "claude-sonnet-4-0", "max_tokens": 4096, "stream": true,
            "reasoning_effort": "minimal",
            "messages": [{"role": "user", "content": "How do I cross the street?"}]}),
        true,
    );
    for field in ["model", "max_tokens", "stream", "thinking"] {
        assert_eq!(ours[field], sent[field], "{field}");
    }
    assert_eq!(
        normalise_messages(&ours["messages"]),
        normalise_messages(&sent["messages"])
    );
    assert!(call.dropped.is_empty());
}

#[test]
fn recorded_error_cassettes_requests_rebuild() {
    let xhigh = &fixtures::cassette(&format!(
        "{DIR}/pydantic-ai__test_anthropic_explicit_effort_xhigh_unsupported_model_errors.yaml"
    ))[0];
    let sent = xhigh.request.as_ref().unwrap();
    let (ours, _) = build(
        json!({"model": "claude-opus-4-6", "max_tokens": 4096,
            "messages": [{"role": "user", "content": "What is 2+2?"}]}),
        false,
    );
    // `output_config.effort` is Anthropic's newer effort knob; this adapter maps
    // `reasoning_effort` to a thinking budget instead, so only the rest is comparable.
    for field in ["model", "max_tokens", "stream"] {
        assert_eq!(ours[field], sent[field], "{field}");
    }
    assert_eq!(
        normalise_messages(&ours["messages"]),
        normalise_messages(&sent["messages"])
    );
    // The count_tokens cassette hit another endpoint; its messages are still built the same way.
    let count = &fixtures::cassette(&format!(
        "{DIR}/pydantic-ai__test_anthropic_count_tokens_error.yaml"
    ))[0];
    let sent = count.request.as_ref().unwrap();
    let (ours, _) = build(
        json!({"model": "claude-does-not-exist", "messages": [{"role": "user", "content": "hello"}]}),
        false,
    );
    assert_eq!(ours["model"], sent["model"]);
    assert_eq!(
        normalise_messages(&ours["messages"]),
        normalise_messages(&sent["messages"])
    );
}
