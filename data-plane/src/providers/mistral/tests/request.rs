//! Mistral request mapping: renamed and translated fields, the allow-list and what it reports,
//! refusals, and tool-call ids kept consistent across the turns of one conversation. Also checks
//! that OpenAI's own passthrough is untouched by the dialect work, and error-body mapping.

use axum::http::HeaderMap;
use serde_json::{Value, json};

use crate::error::UpstreamError;
use crate::providers::mistral::is_valid_id;
use crate::providers::{Protocol, upstream_error};
use crate::test_support::conformance::{built, refused};

const P: Protocol = Protocol::Mistral;
const MODEL: &str = "mistral-small-latest";

/// What the strict Mistral simulator accepts at the top level (simulators/src/openai_checks.rs),
/// plus `prompt_cache_key`, which api.mistral.ai was recorded accepting.
const MISTRAL_FIELDS: &[&str] = &[
    "model",
    "messages",
    "stream",
    "temperature",
    "top_p",
    "max_tokens",
    "stop",
    "random_seed",
    "response_format",
    "tools",
    "tool_choice",
    "presence_penalty",
    "frequency_penalty",
    "n",
    "safe_prompt",
    "parallel_tool_calls",
    "prediction",
    "prompt_mode",
    "reasoning_effort",
    "metadata",
    "prompt_cache_key",
];

fn user(text: &str) -> Value {
    json!({"role":"user","content":text})
}

fn with(extra: Value) -> Value {
    let mut body = json!({"model":"mistral-small","messages":[user("hi")]});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    body
}

#[test]
fn seed_becomes_random_seed() {
    let (body, dropped) = built(P, &with(json!({"seed": 42})), MODEL);
    assert_eq!(body["random_seed"], 42);
    assert!(body.get("seed").is_none());
    assert!(dropped.is_empty());
}

#[test]
fn tool_choice_in_mistrals_words() {
    let tools =
        json!([{"type":"function","function":{"name":"weather","parameters":{"type":"object"}}}]);
    for (choice, sent) in [
        (json!("required"), json!("any")),
        (json!("auto"), json!("auto")),
        (json!("none"), json!("none")),
        (
            json!({"type":"function","function":{"name":"weather"}}),
            json!({"type":"function","function":{"name":"weather"}}),
        ),
    ] {
        let client =
            with(json!({"tools": tools, "tool_choice": choice, "parallel_tool_calls": false}));
        let (body, dropped) = built(P, &client, MODEL);
        assert_eq!(body["tool_choice"], sent);
        assert_eq!(body["tools"], tools);
        assert_eq!(body["parallel_tool_calls"], false);
        assert!(dropped.is_empty());
    }
}

#[test]
fn openai_only_fields_are_dropped_and_reported() {
    let client = with(json!({
        "user": "u-1", "logit_bias": {"50256": -100}, "store": true, "service_tier": "auto",
        "logprobs": false, "top_logprobs": null, "max_completion_tokens": 64, "temperature": 0.3,
        "stream": true, "stream_options": {"include_usage": true}, "x_custom": 1,
    }));
    let (body, mut dropped) = built(P, &client, MODEL);
    dropped.sort();
    assert_eq!(
        dropped,
        [
            "logit_bias",
            "logprobs",
            "service_tier",
            "store",
            "user",
            "x_custom"
        ]
    );
    assert_eq!(body["max_tokens"], 64);
    assert_eq!(body["temperature"], 0.3);
    assert_eq!(body["stream"], true);
    for key in body.as_object().unwrap().keys() {
        assert!(
            MISTRAL_FIELDS.contains(&key.as_str()),
            "{key} would get a 422"
        );
    }
}

#[test]
fn what_cannot_be_honoured_is_refused() {
    let e = refused(
        P,
        &with(json!({"logprobs": true, "top_logprobs": 2})),
        MODEL,
    );
    assert_eq!((e.status().as_u16(), e.param()), (400, Some("logprobs")));
}

#[test]
fn reasoning_effort_maps_to_adjustable_reasoning() {
    for (effort, sent) in [
        ("none", "none"),
        ("minimal", "none"),
        ("low", "high"),
        ("high", "high"),
    ] {
        let (body, dropped) = built(P, &with(json!({"reasoning_effort": effort})), MODEL);
        assert_eq!(body["reasoning_effort"], sent, "{effort}");
        assert!(dropped.is_empty());
    }
    let client = with(json!({"reasoning_effort": "high"}));
    let (body, dropped) = built(P, &client, "magistral-medium-latest");
    assert!(
        body.get("reasoning_effort").is_none(),
        "Magistral always reasons"
    );
    assert_eq!(dropped, ["reasoning_effort"]);
}

#[test]
fn messages_keep_only_mistrals_keys() {
    let client = json!({"model":"m","messages":[
        {"role":"developer","content":"Be brief."},
        {"role":"user","content":"hi","name":"ann"},
        {"role":"assistant","content":"hello","refusal":null,"annotations":[],
            "reasoning_content":"greet back","audio":null},
        user("bye")]});
    let (body, _) = built(P, &client, MODEL);
    assert_eq!(
        body["messages"],
        json!([{"role":"system","content":"Be brief."},{"role":"user","content":"hi"},
            {"role":"assistant","content":"hello"},{"role":"user","content":"bye"}])
    );
}

/// One turn's assistant call and its tool result, as an OpenAI client keeps them.
fn call_and_result(id: &str, name: &str) -> [Value; 2] {
    [
        json!({"role":"assistant","content":null,"tool_calls":[{"id":id,"type":"function",
            "function":{"name":name,"arguments":"{}"}}],"refusal":null}),
        json!({"role":"tool","tool_call_id":id,"content":"ok"}),
    ]
}

#[test]
fn tool_call_ids_are_consistent_across_a_conversation() {
    let [a1, r1] = call_and_result("call_Xk2dPq9sLm3NvB7wQe4RtY6u", "roll_dice");
    // Turn 2 brings back turn 1 plus a call Mistral itself made (kept as is) and a foreign one.
    let [a2, r2] = call_and_result("gSIMJiOkT", "weather");
    let [a3, r3] = call_and_result("toolu_01A09q90qw90lq917835lq9", "get_name");
    let turn1 = json!({"model":"m","messages":[user("roll"), a1, r1]});
    let turn2 =
        json!({"model":"m","messages":[user("roll"), a1, r1, user("again"), a2, r2, a3, r3]});
    let (first, _) = built(P, &turn1, MODEL);
    let (second, _) = built(P, &turn2, MODEL);
    let ids = |body: &Value| -> Vec<(String, String)> {
        let m = body["messages"].as_array().unwrap();
        m.iter()
            .enumerate()
            .filter(|(_, m)| m["role"] == "assistant")
            .map(|(i, a)| {
                let call = a["tool_calls"][0]["id"].as_str().unwrap().to_string();
                let result = m[i + 1]["tool_call_id"].as_str().unwrap().to_string();
                (call, result)
            })
            .collect()
    };
    let (first, second) = (ids(&first), ids(&second));
    assert_eq!(first[0], second[0], "turn 1's id is the same in turn 2");
    for (call, result) in &second {
        assert!(is_valid_id(call), "{call}");
        assert_eq!(call, result, "a call and its result keep meeting");
    }
    assert_eq!(second[1].0, "gSIMJiOkT", "Mistral's own id round-trips");
    assert_ne!(second[0].0, second[2].0);
    assert_eq!(
        second[0].0,
        crate::providers::mistral::ids::to_mistral("call_Xk2dPq9sLm3NvB7wQe4RtY6u")
    );
}

#[test]
fn openai_passthrough_is_untouched() {
    let client = json!({"model":"gpt-4o","messages":[user("hi")],"seed":1,"user":"u",
        "logit_bias":{"1":2},"stream":true,"x_custom":{"a":1},"tool_choice":"required"});
    let (body, dropped) = built(Protocol::OpenAi, &client, "gpt-4o-2024");
    let mut expected = client.clone();
    expected["model"] = json!("gpt-4o-2024");
    expected["stream_options"] = json!({"include_usage": true});
    assert_eq!(body, expected);
    assert!(dropped.is_empty());
    let (body, _) = built(Protocol::Compatible, &client, "local");
    assert!(body.get("stream_options").is_none());
    assert_eq!(body["x_custom"], client["x_custom"]);
}

#[test]
fn validation_errors_are_named_without_echoing_input() {
    let body = json!({"object":"error","message":{"detail":[{"type":"extra_forbidden",
        "loc":["body","user"],"msg":"Extra inputs are not permitted","input":"sk-secret"}]},
        "type":"invalid_request_error","param":null,"code":null});
    let e = upstream_error(P, 422, &HeaderMap::new(), body.to_string().as_bytes());
    let UpstreamError::Status { message, code, .. } = &e else {
        panic!("{e:?}")
    };
    assert_eq!(message, "body.user: Extra inputs are not permitted");
    assert_eq!(code.as_deref(), Some("invalid_request_error"));
    assert!(!e.retryable());
    let api = e.to_api_error("mistral");
    assert_eq!(
        (api.status().as_u16(), api.kind()),
        (400, "invalid_request_error")
    );
    let fastapi =
        json!({"detail":[{"loc":["body","messages",0,"role"],"msg":"Input should be 'user'"}]});
    let e = upstream_error(P, 422, &HeaderMap::new(), fastapi.to_string().as_bytes());
    assert!(matches!(e, UpstreamError::Status { message, .. }
        if message == "body.messages.0.role: Input should be 'user'"));
    let limited = json!({"object":"error","message":"Requests rate limit exceeded",
        "type":"rate_limited","param":null,"code":"1300"});
    let e = upstream_error(P, 429, &HeaderMap::new(), limited.to_string().as_bytes());
    assert!(e.retryable());
}
