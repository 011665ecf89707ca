//! Conformance of the DeepSeek adapter against every recorded file in `fixtures/deepseek/`:
//! streams replayed (whole and split, keep-alive comments included) and compared chunk by chunk
//! with the recording, answers passed through, errors mapped, and the thinking-mode cassette's
//! recorded requests rebuilt from what a plain OpenAI client sends (reasoning restored).

mod request;

use axum::http::HeaderMap;
use serde_json::{Value, json};

use super::cache_key;
use crate::error::UpstreamError;
use crate::providers::{Protocol, translate_response, upstream_error};
use crate::test_support::conformance::{
    assert_splits, built, lines, sse_chunks, summarize, tokens, without_nulls,
};
use crate::test_support::fixtures::{self, cassette, chunks, chunks_to_sse, ctx, replay};
use crate::upstream::sse::SseDecoder;

const P: Protocol = Protocol::DeepSeek;

/// Every file this module checks; a new fixture fails `every_fixture_is_covered` until it is.
const COVERED: &[&str] = &[
    "pydantic-ai__test_deepseek_deferred_capability_with_thinking.yaml",
    "pydantic-ai__test_deepseek_model_thinking_part.yaml",
    "pydantic-ai__test_deepseek_model_thinking_stream.yaml",
    "synthetic__http-400-reasoning-content-must-be-passed-back.json",
    "synthetic__keepalive-comments.sse",
    "vercel-ai__deepseek-json.json",
    "vercel-ai__deepseek-reasoning.chunks.txt",
    "vercel-ai__deepseek-reasoning.json",
    "vercel-ai__deepseek-text.chunks.txt",
    "vercel-ai__deepseek-text.json",
    "vercel-ai__deepseek-tool-call.chunks.txt",
    "vercel-ai__deepseek-tool-call.json",
];

#[test]
fn every_fixture_is_covered() {
    assert_eq!(fixtures::list("deepseek"), COVERED);
}

/// Replays `sse`: every recorded chunk comes out as it went in (usage moved to OpenAI's own
/// chunk), and the totals match the recording's.
fn check_stream(sse: &[u8], recorded: &[Value]) -> crate::test_support::conformance::Summary {
    let asked = replay(P, sse, true);
    assert_eq!(asked.end, Ok(true));
    assert_eq!(asked.chunks.len(), recorded.len() + 1);
    for (out, rec) in asked.chunks.iter().zip(recorded) {
        let mut rec = rec.clone();
        if rec["usage"].is_object() {
            rec.as_object_mut().unwrap().remove("usage");
        }
        assert_eq!(out, &rec);
    }
    let usage = asked.chunks.last().unwrap();
    assert_eq!(usage["choices"], json!([]));
    let summary = summarize(&asked.chunks);
    assert_eq!(summary, summarize(recorded));
    assert!(summary.usage.is_some());
    let quiet = replay(P, sse, false);
    assert_eq!(quiet.chunks.len(), recorded.len());
    assert!(quiet.chunks.iter().all(|c| !c["usage"].is_object()));
    assert_splits(P, sse);
    summary
}

/// A non-streaming answer passes byte for byte, with its usage read.
fn check_answer(answer: &Value) -> crate::telemetry::usage::Usage {
    let body = serde_json::to_vec_pretty(answer).unwrap();
    let t = translate_response(P, &body, &ctx(false)).unwrap();
    assert_eq!(t.body, body);
    let u = t.usage.unwrap();
    let (prompt, completion, _, cached, reasoning) = tokens(&answer["usage"]);
    assert_eq!(
        (
            u.prompt_tokens,
            u.completion_tokens,
            u.cached_tokens,
            u.reasoning_tokens
        ),
        (prompt, completion, cached, reasoning)
    );
    u
}

#[test]
fn text_stream() {
    let rel = "deepseek/vercel-ai__deepseek-text.chunks.txt";
    let s = check_stream(&chunks_to_sse(P, &chunks(rel)), &lines(rel));
    assert!(s.content.starts_with("## **"));
    assert_eq!(s.finish, ["length"]);
    assert_eq!(s.usage, Some((13, 400, 413, 0, 0)));
}

#[test]
fn reasoning_stream_passes_reasoning_content() {
    let rel = "deepseek/vercel-ai__deepseek-reasoning.chunks.txt";
    let s = check_stream(&chunks_to_sse(P, &chunks(rel)), &lines(rel));
    assert!(s.reasoning.starts_with("We need"));
    assert!(!s.content.is_empty());
    assert_eq!(s.usage, Some((18, 219, 237, 0, 205)));
}

#[test]
fn tool_call_stream_keeps_its_reasoning_for_the_next_turn() {
    let rel = "deepseek/vercel-ai__deepseek-tool-call.chunks.txt";
    let s = check_stream(&chunks_to_sse(P, &chunks(rel)), &lines(rel));
    let call = &s.calls[&0];
    assert_eq!(call.id, "call_00_ioIn7yN9p1ZOMNpDLwd4MgAF");
    assert_eq!(call.name, "weather");
    assert!(serde_json::from_str::<Value>(&call.arguments).is_ok());
    assert_eq!(s.finish, ["tool_calls"]);
    assert_eq!(s.usage, Some((339, 83, 422, 320, 39)));
    assert_eq!(
        crate::test_support::fixtures::cache().get(&cache_key(&call.id)),
        Some(Value::from(s.reasoning.clone()))
    );
    // The next turn, as an OpenAI client sends it, gets the reasoning back.
    let client = json!({"model":"deepseek-reasoner","messages":[
        {"role":"user","content":"weather in SF?"},
        {"role":"assistant","content":"","tool_calls":[{"id":call.id,"type":"function",
            "function":{"name":"weather","arguments":call.arguments}}]},
        {"role":"tool","tool_call_id":call.id,"content":"{\"temp\":7}"}]});
    let (body, _) = built(P, &client, "deepseek-reasoner");
    assert_eq!(
        body["messages"][1]["reasoning_content"],
        s.reasoning.as_str()
    );
}

#[test]
fn keepalive_comments_are_tolerated_and_counted() {
    let sse = fixtures::text("deepseek/synthetic__keepalive-comments.sse");
    let r = replay(P, sse.as_bytes(), true);
    assert_eq!(r.end, Ok(true));
    let s = summarize(&r.chunks);
    assert_eq!(s.content, "## **");
    assert_eq!(r.chunks.len(), 3, "comments add no chunk");
    assert_splits(P, sse.as_bytes());
    // Comments reach no translator, but the decoder reports them as activity (idle timer).
    let mut decoder = SseDecoder::new();
    let mut events = Vec::new();
    decoder.feed(b": keep-alive\n\n", &mut events).unwrap();
    assert!(events.is_empty());
    assert_eq!(decoder.lines_seen, 2);
    decoder.feed(sse.as_bytes(), &mut events).unwrap();
    assert_eq!(events.len(), 4);
    assert_eq!(decoder.lines_seen, 2 + sse.lines().count() as u64);
}

#[test]
fn non_streaming_answers_pass_through() {
    for (rel, reasoning) in [
        ("deepseek/vercel-ai__deepseek-text.json", false),
        ("deepseek/vercel-ai__deepseek-reasoning.json", true),
        ("deepseek/vercel-ai__deepseek-json.json", true),
    ] {
        let answer = fixtures::json(rel);
        let u = check_answer(&answer);
        assert_eq!(u.reasoning_tokens > 0, reasoning, "{rel}");
    }
}

#[test]
fn tool_call_answer_keeps_its_reasoning() {
    let answer = fixtures::json("deepseek/vercel-ai__deepseek-tool-call.json");
    let u = check_answer(&answer);
    assert_eq!((u.cached_tokens, u.reasoning_tokens), (320, 48));
    let message = &answer["choices"][0]["message"];
    let id = message["tool_calls"][0]["id"].as_str().unwrap();
    assert_eq!(
        crate::test_support::fixtures::cache().get(&cache_key(id)),
        Some(message["reasoning_content"].clone())
    );
}

#[test]
fn recorded_thinking_stream_and_its_request() {
    let i = &cassette("deepseek/pydantic-ai__test_deepseek_model_thinking_stream.yaml")[0];
    let raw = i.raw.as_deref().unwrap().as_bytes();
    let s = check_stream(raw, &sse_chunks(raw));
    assert!(
        s.reasoning
            .starts_with("Hmm, the user just said \"Hello\".")
    );
    assert_eq!(s.usage, Some((6, 212, 218, 0, 198)));
    let request = i.request.clone().unwrap();
    let (body, dropped) = built(P, &request, "deepseek-reasoner");
    assert_eq!(body, request);
    assert!(dropped.is_empty());
}

#[test]
fn recorded_thinking_answer_and_its_request() {
    let i = &cassette("deepseek/pydantic-ai__test_deepseek_model_thinking_part.yaml")[0];
    let u = check_answer(i.response.as_ref().unwrap());
    assert_eq!((u.prompt_tokens, u.reasoning_tokens), (12, 415));
    let request = i.request.clone().unwrap();
    let (body, dropped) = built(P, &request, "deepseek-reasoner");
    let mut expected = request.clone();
    expected.as_object_mut().unwrap().remove("n");
    assert_eq!(body, expected, "`n: 1` is DeepSeek's only choice count");
    assert!(dropped.is_empty());
}

#[test]
fn thinking_tool_turns_get_their_reasoning_back() {
    let interactions =
        cassette("deepseek/pydantic-ai__test_deepseek_deferred_capability_with_thinking.yaml");
    assert_eq!(interactions.len(), 3);
    for i in &interactions {
        check_answer(i.response.as_ref().unwrap());
    }
    for i in &interactions {
        let recorded = i.request.clone().unwrap();
        // What an OpenAI client keeps of the history: no `reasoning_content`.
        let mut client = recorded.clone();
        for m in client["messages"].as_array_mut().unwrap() {
            m.as_object_mut().unwrap().remove("reasoning_content");
        }
        let (body, dropped) = built(P, &client, "deepseek-reasoner");
        assert_eq!(without_nulls(&body), without_nulls(&recorded));
        assert!(dropped.is_empty());
    }
}

#[test]
fn the_missing_reasoning_error_maps_to_a_400() {
    let body =
        fixtures::text("deepseek/synthetic__http-400-reasoning-content-must-be-passed-back.json");
    let e = upstream_error(P, 400, &HeaderMap::new(), body.as_bytes());
    assert!(
        matches!(&e, UpstreamError::Status { status: 400, message, .. }
        if message.contains("`reasoning_content` in the thinking mode must be passed back"))
    );
    assert!(!e.retryable());
    assert_eq!(e.to_api_error("deepseek").status(), 400);
}

#[test]
fn errors_balance_overload_and_invalid_parameters() {
    let error = |status: u16, message: &str, code: &str| {
        let body =
            json!({"error":{"message":message,"type":"unknown_error","param":null,"code":code}});
        upstream_error(P, status, &HeaderMap::new(), body.to_string().as_bytes())
    };
    let balance = error(402, "Insufficient Balance", "invalid_request_error");
    assert!(!balance.retryable());
    assert_eq!(
        balance.to_api_error("deepseek").code(),
        Some("insufficient_quota")
    );
    assert!(error(503, "Server overloaded", "insufficient_system_resource").retryable());
    let invalid = error(422, "Invalid parameters", "invalid_request_error");
    assert!(!invalid.retryable());
    assert_eq!(invalid.to_api_error("deepseek").status(), 400);
}

#[test]
fn insufficient_system_resource_finish_is_a_retryable_503() {
    let chunk = json!({"id":"x","object":"chat.completion.chunk","created":1,"model":"deepseek-chat",
        "choices":[{"index":0,"delta":{"content":""},"logprobs":null,
            "finish_reason":"insufficient_system_resource"}],
        "usage":{"prompt_tokens":5,"completion_tokens":0,"total_tokens":5}});
    let r = replay(P, &chunks_to_sse(P, &[chunk.to_string()]), true);
    let Err(e) = r.end else { panic!("{r:?}") };
    assert!(matches!(e, UpstreamError::Status { status: 503, .. }));
    assert!(e.retryable());
    let answer = json!({"id":"x","object":"chat.completion","created":1,"model":"deepseek-chat",
        "choices":[{"index":0,"message":{"role":"assistant","content":""},
            "finish_reason":"insufficient_system_resource"}]});
    let e = translate_response(P, answer.to_string().as_bytes(), &ctx(false)).unwrap_err();
    assert!(e.retryable());
}
