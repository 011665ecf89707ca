//! DeepSeek request mapping: `reasoning_effort` to thinking mode, the allow-list and what it
//! reports, refusals, message cleaning, and the `reasoning_content` round trip through the
//! gateway for clients that drop it.

use serde_json::{Value, json};

use crate::providers::{Protocol, translate_response};
use crate::test_support::conformance::{built, refused};
use crate::test_support::fixtures::ctx;

const P: Protocol = Protocol::DeepSeek;

fn with(extra: Value) -> Value {
    let mut body = json!({"model":"deepseek","messages":[{"role":"user","content":"hi"}]});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    body
}

#[test]
fn reasoning_effort_drives_thinking_mode() {
    for (effort, thinking, sent) in [
        ("none", "disabled", None),
        ("minimal", "enabled", Some("low")),
        ("low", "enabled", Some("low")),
        ("medium", "enabled", Some("high")),
        ("high", "enabled", Some("high")),
        ("xhigh", "enabled", Some("max")),
    ] {
        let (body, dropped) = built(
            P,
            &with(json!({"reasoning_effort": effort})),
            "deepseek-chat",
        );
        assert_eq!(body["thinking"], json!({"type": thinking}), "{effort}");
        assert_eq!(body["reasoning_effort"].as_str(), sent, "{effort}");
        assert!(dropped.is_empty());
    }
    // The client's own `thinking` (OpenAI SDK `extra_body`) wins.
    let client = with(json!({"thinking":{"type":"disabled"},"reasoning_effort":"none"}));
    let (body, dropped) = built(P, &client, "deepseek-v4-flash");
    assert_eq!(body["thinking"], json!({"type":"disabled"}));
    assert_eq!(dropped, ["reasoning_effort"]);
    let (body, _) = built(P, &with(json!({})), "deepseek-reasoner");
    assert!(body.get("thinking").is_none() && body.get("reasoning_effort").is_none());
}

#[test]
fn openai_only_fields_are_dropped_and_reported() {
    let client = with(
        json!({"seed": 3, "user": "u", "parallel_tool_calls": false, "n": 1,
        "logit_bias": {"1": 1}, "max_completion_tokens": 99, "stream": true,
        "stream_options": {"include_usage": false}, "temperature": 0.1, "x_custom": true}),
    );
    let (body, mut dropped) = built(P, &client, "deepseek-chat");
    dropped.sort();
    assert_eq!(
        dropped,
        [
            "logit_bias",
            "parallel_tool_calls",
            "seed",
            "user",
            "x_custom"
        ]
    );
    assert_eq!(body["max_tokens"], 99);
    assert_eq!(body["temperature"], 0.1);
    assert_eq!(body["stream_options"], json!({"include_usage": true}));
    assert!(body.get("n").is_none());
}

#[test]
fn what_cannot_be_honoured_is_refused() {
    let e = refused(P, &with(json!({"n": 2})), "deepseek-chat");
    assert_eq!(e.param(), Some("n"));
    let schema = json!({"type":"json_schema","json_schema":{"name":"x","schema":{}}});
    let e = refused(
        P,
        &with(json!({"response_format": schema})),
        "deepseek-chat",
    );
    assert_eq!(e.param(), Some("response_format.type"));
    let e = refused(P, &with(json!({"logprobs": true})), "deepseek-reasoner");
    assert_eq!((e.status().as_u16(), e.param()), (400, Some("logprobs")));
    // Outside thinking mode DeepSeek has log probabilities.
    let (body, _) = built(
        P,
        &with(json!({"logprobs": true, "top_logprobs": 3})),
        "deepseek-chat",
    );
    assert_eq!(
        (&body["logprobs"], &body["top_logprobs"]),
        (&json!(true), &json!(3))
    );
}

#[test]
fn messages_keep_only_deepseeks_keys() {
    let client = json!({"model":"m","messages":[
        {"role":"developer","content":[{"type":"text","text":"Be"},{"type":"text","text":"brief."}]},
        {"role":"user","content":"hi","name":"ann"},
        {"role":"assistant","content":"hello","refusal":null,"annotations":[],"audio":null}]});
    let (body, _) = built(P, &client, "deepseek-chat");
    assert_eq!(
        body["messages"],
        json!([{"role":"system","content":"Be\nbrief."},{"role":"user","content":"hi","name":"ann"},
            {"role":"assistant","content":"hello"}])
    );
}

/// A thinking-mode answer that calls a tool, with a fresh id.
fn answer_with_call(id: &str, reasoning: &str) -> Value {
    json!({"id":"a","object":"chat.completion","created":1,"model":"deepseek-reasoner",
        "choices":[{"index":0,"finish_reason":"tool_calls","logprobs":null,"message":{
            "role":"assistant","content":"","reasoning_content":reasoning,
            "tool_calls":[{"index":0,"id":id,"type":"function",
                "function":{"name":"roll","arguments":"{}"}}]}}],
        "usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7}})
}

/// The next request as an OpenAI client sends it: the call kept, its reasoning dropped.
fn next_turn(id: &str, reasoning: Option<&str>) -> Value {
    let mut call = json!({"role":"assistant","content":null,"tool_calls":[{"id":id,
        "type":"function","function":{"name":"roll","arguments":"{}"}}]});
    if let Some(r) = reasoning {
        call["reasoning_content"] = json!(r);
    }
    json!({"model":"m","messages":[{"role":"user","content":"roll"}, call,
        {"role":"tool","tool_call_id":id,"content":"4"}]})
}

#[test]
fn reasoning_content_round_trips_through_the_gateway() {
    let id = format!("call_00_{}", uuid::Uuid::new_v4().simple());
    let answer = answer_with_call(&id, "I should roll the die.");
    let t = translate_response(P, answer.to_string().as_bytes(), &ctx(false)).unwrap();
    let passed: Value = serde_json::from_slice(&t.body).unwrap();
    assert_eq!(passed, answer, "the client sees the answer unchanged");
    let (body, _) = built(P, &next_turn(&id, None), "deepseek-reasoner");
    assert_eq!(
        body["messages"][1]["reasoning_content"],
        "I should roll the die."
    );
    // What the client sent itself is kept.
    let (body, _) = built(P, &next_turn(&id, Some("my own")), "deepseek-reasoner");
    assert_eq!(body["messages"][1]["reasoning_content"], "my own");
}

#[test]
fn unknown_reasoning_is_empty_in_thinking_mode_and_absent_otherwise() {
    let id = format!("call_{}", uuid::Uuid::new_v4().simple());
    let (body, _) = built(P, &next_turn(&id, None), "deepseek-reasoner");
    assert_eq!(body["messages"][1]["reasoning_content"], "");
    let (body, _) = built(P, &next_turn(&id, None), "deepseek-chat");
    assert!(body["messages"][1].get("reasoning_content").is_none());
    // Turns without tool calls are left alone.
    let (body, _) = built(P, &with(json!({})), "deepseek-reasoner");
    assert!(body["messages"][0].get("reasoning_content").is_none());
}
