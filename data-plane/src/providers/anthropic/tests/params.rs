//! Request building for Anthropic, the parameters: sampling, tools and `tool_choice`, JSON mode,
//! `reasoning_effort`, the parameters refused with a 400 naming them, and the dropped-field report.
#![cfg(test)]

use serde_json::json;

use crate::test_support::anthropic::{ANTHROPIC_FIELDS, build, refused, weather_tool, with};

#[test]
fn sampling_parameters_map_and_temperature_is_clamped() {
    let (body, _) = build(
        with(
            json!({"temperature": 1.7, "top_p": 0.8, "stop": "END", "max_tokens": 300, "user": "u-42"}),
        ),
        false,
    );
    assert_eq!(body["temperature"], 1.0);
    assert_eq!(body["top_p"], 0.8);
    assert_eq!(body["stop_sequences"], json!(["END"]));
    assert_eq!(body["max_tokens"], 300);
    assert_eq!(body["metadata"], json!({"user_id": "u-42"}));
    let (body, _) = build(
        with(
            json!({"temperature": 0.2, "stop": ["a", "b"], "max_tokens": 300, "max_completion_tokens": 500, "top_k": 40}),
        ),
        false,
    );
    assert_eq!(body["temperature"], 0.2);
    assert_eq!(body["stop_sequences"], json!(["a", "b"]));
    assert_eq!(body["max_tokens"], 500, "max_completion_tokens wins");
    assert_eq!(body["top_k"], 40);
    let (body, _) = build(
        with(json!({"user": r#"{"user_id": "u-7", "team": "x"}"#})),
        false,
    );
    assert_eq!(body["metadata"]["user_id"], "u-7");
}

#[test]
fn tools_and_tool_choice_map() {
    let tools = json!([weather_tool(), {"type": "function", "function": {"name": "ping"}}]);
    let (body, _) = build(with(json!({"tools": tools})), false);
    assert_eq!(
        body["tools"],
        json!([
            {"name": "weather", "description": "Weather now", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}},
            {"name": "ping", "input_schema": {"type": "object", "properties": {}}},
        ])
    );
    assert!(
        body.get("tool_choice").is_none(),
        "auto is Anthropic's default"
    );
    for (choice, expected) in [
        (json!("auto"), json!({"type": "auto"})),
        (json!("none"), json!({"type": "none"})),
        (json!("required"), json!({"type": "any"})),
        (
            json!({"type": "function", "function": {"name": "ping"}}),
            json!({"type": "tool", "name": "ping"}),
        ),
    ] {
        let (body, _) = build(with(json!({"tools": tools, "tool_choice": choice})), false);
        assert_eq!(body["tool_choice"], expected, "{choice}");
    }
    let (body, _) = build(
        with(json!({"tools": tools, "parallel_tool_calls": false})),
        false,
    );
    assert_eq!(
        body["tool_choice"],
        json!({"type": "auto", "disable_parallel_tool_use": true})
    );
    let (body, _) = build(
        with(json!({"tools": tools, "tool_choice": "required", "parallel_tool_calls": false})),
        false,
    );
    assert_eq!(
        body["tool_choice"],
        json!({"type": "any", "disable_parallel_tool_use": true})
    );
    let (body, call) = build(
        with(json!({"tool_choice": "auto", "parallel_tool_calls": true})),
        false,
    );
    assert!(body.get("tool_choice").is_none());
    assert_eq!(
        call.dropped,
        vec!["tool_choice", "parallel_tool_calls"],
        "meaningless without tools"
    );
}

#[test]
fn json_mode_is_a_forced_tool() {
    let (body, _) = build(
        with(json!({"response_format": {"type": "json_object"}})),
        false,
    );
    assert_eq!(body["tools"][0]["name"], "json_response");
    assert_eq!(body["tools"][0]["input_schema"], json!({"type": "object"}));
    assert_eq!(
        body["tool_choice"],
        json!({"type": "tool", "name": "json_response"})
    );
    let schema =
        json!({"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]});
    let format = json!({"type": "json_schema", "json_schema": {"name": "count", "schema": schema}});
    let (body, _) = build(with(json!({"response_format": format})), false);
    assert_eq!(body["tools"][0]["input_schema"], schema);
    let (body, _) = build(
        with(json!({"response_format": format, "tools": [weather_tool()]})),
        false,
    );
    assert_eq!(body["tools"].as_array().unwrap().len(), 2);
    assert_eq!(
        body["tool_choice"],
        json!({"type": "any"}),
        "a client tool or the JSON answer"
    );
    let (body, _) = build(
        with(json!({"response_format": format, "tools": [weather_tool()], "tool_choice": "none"})),
        false,
    );
    assert_eq!(
        body["tool_choice"],
        json!({"type": "tool", "name": "json_response"})
    );
    let (body, _) = build(with(json!({"response_format": {"type": "text"}})), false);
    assert!(body.get("tools").is_none());
    let array =
        json!({"type": "json_schema", "json_schema": {"name": "l", "schema": {"type": "array"}}});
    assert_eq!(
        refused(with(json!({"response_format": array}))).0,
        "response_format.json_schema.schema"
    );
    let clash = json!([{"type": "function", "function": {"name": "json_response"}}]);
    assert_eq!(
        refused(with(json!({"tools": clash}))).0,
        "tools[0].function.name"
    );
}

#[test]
fn reasoning_effort_becomes_a_thinking_budget() {
    for (effort, budget) in [
        ("minimal", 1024),
        ("low", 2048),
        ("medium", 8192),
        ("high", 16384),
        ("xhigh", 24576),
    ] {
        let (body, _) = build(with(json!({"reasoning_effort": effort})), false);
        assert_eq!(
            body["thinking"],
            json!({"type": "enabled", "budget_tokens": budget}),
            "{effort}"
        );
        assert_eq!(
            body["max_tokens"],
            budget + 4096,
            "{effort}: room for the answer"
        );
    }
    let (body, _) = build(
        with(json!({"reasoning_effort": "high", "max_completion_tokens": 6000})),
        false,
    );
    assert_eq!(body["max_tokens"], 6000);
    assert_eq!(
        body["thinking"]["budget_tokens"], 3000,
        "half the limit stays for the answer"
    );
    let (body, _) = build(
        with(json!({"reasoning_effort": "medium", "max_tokens": 1500})),
        false,
    );
    assert_eq!(
        body["thinking"]["budget_tokens"], 1024,
        "never below Anthropic's minimum"
    );
    assert_eq!(
        refused(with(json!({"reasoning_effort": "low", "max_tokens": 1024}))).0,
        "max_tokens"
    );
    let (body, _) = build(with(json!({"reasoning_effort": "none"})), false);
    assert!(body.get("thinking").is_none());
    let (body, _) = build(
        with(json!({"reasoning_effort": "low", "temperature": 1, "top_p": 0.97})),
        false,
    );
    assert_eq!(body["temperature"], 1.0);
    for (extra, param) in [
        (json!({"temperature": 0.5}), "temperature"),
        (json!({"top_p": 0.5}), "top_p"),
        (json!({"top_k": 5}), "top_k"),
        (
            json!({"tools": [weather_tool()], "tool_choice": "required"}),
            "tool_choice",
        ),
        (
            json!({"response_format": {"type": "json_object"}}),
            "response_format",
        ),
    ] {
        let mut r = with(extra);
        r["reasoning_effort"] = json!("low");
        assert_eq!(refused(r).0, param);
    }
}

#[test]
fn parameters_anthropic_cannot_honour_are_refused_by_name() {
    for (extra, param) in [
        (json!({"logit_bias": {"50256": -100}}), "logit_bias"),
        (json!({"logprobs": true}), "logprobs"),
        (json!({"logprobs": true, "top_logprobs": 3}), "logprobs"),
        (json!({"top_logprobs": 3}), "top_logprobs"),
        (json!({"n": 2}), "n"),
        (json!({"presence_penalty": 0.5}), "presence_penalty"),
        (json!({"frequency_penalty": -1}), "frequency_penalty"),
        (
            json!({"audio": {"voice": "alloy", "format": "mp3"}}),
            "audio",
        ),
        (json!({"modalities": ["text", "audio"]}), "modalities"),
        (json!({"functions": [{"name": "f"}]}), "functions"),
        (json!({"function_call": "auto"}), "function_call"),
        (json!({"web_search_options": {}}), "web_search_options"),
    ] {
        let (got, message) = refused(with(extra.clone()));
        assert_eq!(got, param, "{extra}");
        assert!(
            message.ends_with("is not supported by Anthropic."),
            "{message}"
        );
    }
    let neutral = json!({"n": 1, "logprobs": false, "top_logprobs": 0, "presence_penalty": 0,
        "frequency_penalty": 0.0, "logit_bias": {}, "modalities": ["text"], "seed": null});
    let (_, call) = build(with(neutral), false);
    assert!(
        call.dropped.is_empty(),
        "neutral values are honoured, not dropped"
    );
}

/// `seed` is best-effort in OpenAI's own API: Anthropic has none, so it is dropped and reported
/// (it used to be refused with a 400).
#[test]
fn seed_is_dropped_and_reported_not_refused() {
    let (body, call) = build(with(json!({"seed": 7, "temperature": 0.5})), false);
    assert!(body.get("seed").is_none(), "{body}");
    assert_eq!(body["temperature"], 0.5);
    assert_eq!(call.dropped, vec!["seed"]);
    let (_, call) = build(with(json!({"seed": 7})), true);
    assert_eq!(call.dropped, vec!["seed"], "streamed alike");
}

#[test]
fn unsent_fields_are_reported_and_only_anthropic_fields_are_sent() {
    let kitchen_sink = with(
        json!({"store": true, "metadata": {"a": "b"}, "service_tier": "auto",
        "x_custom": 1, "prediction": {"type": "content", "content": "x"}, "stream_options": {"include_usage": true},
        "stream": true, "temperature": 0.3, "top_p": 0.9, "stop": ["x"], "user": "u", "tools": [weather_tool()],
        "tool_choice": "auto", "parallel_tool_calls": false, "max_tokens": 100, "unused_null": null,
        "messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "hi", "name": "ann"}]}),
    );
    let (body, call) = build(kitchen_sink, true);
    let mut dropped = call.dropped.clone();
    dropped.sort();
    assert_eq!(
        dropped,
        vec![
            "metadata",
            "prediction",
            "service_tier",
            "store",
            "x_custom"
        ]
    );
    for key in body.as_object().unwrap().keys() {
        assert!(
            ANTHROPIC_FIELDS.contains(&key.as_str()),
            "{key} is not an Anthropic field"
        );
    }
    for m in body["messages"].as_array().unwrap() {
        let keys: Vec<&String> = m.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            vec!["content", "role"],
            "no OpenAI-only message fields (name)"
        );
    }
}
