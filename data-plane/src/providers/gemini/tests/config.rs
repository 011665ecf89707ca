//! `generationConfig` from OpenAI's sampling, length, format and reasoning parameters, and the
//! allow-list: a request using every mapping sends only names Gemini knows.
#![cfg(test)]

use serde_json::{Value, json};

use crate::providers::gemini::tests::request::{build, build_for, param, tools};

#[test]
fn generation_config() {
    let body = build(json!({
        "temperature": 0.3, "top_p": 0.9, "top_k": 40, "max_tokens": 10, "max_completion_tokens": 20,
        "stop": "END", "n": 2, "seed": 7, "presence_penalty": 0.5, "frequency_penalty": -0.5,
        "logprobs": true, "top_logprobs": 3, "response_format": { "type": "json_object" },
        "stream": false, "stream_options": null, "parallel_tool_calls": true, "logit_bias": {},
    }))
    .unwrap();
    assert_eq!(
        body["generationConfig"],
        json!({
            "temperature": 0.3, "topP": 0.9, "topK": 40, "maxOutputTokens": 20, "stopSequences": ["END"],
            "candidateCount": 2, "seed": 7, "presencePenalty": 0.5, "frequencyPenalty": -0.5,
            "responseLogprobs": true, "logprobs": 3, "responseMimeType": "application/json",
        })
    );
    let plain = build(json!({ "n": 1, "stop": ["a", "b"], "max_tokens": 5 })).unwrap();
    assert_eq!(
        plain["generationConfig"],
        json!({ "stopSequences": ["a", "b"], "maxOutputTokens": 5 })
    );
    // Best-effort in OpenAI's API: a seed Gemini cannot take is dropped and reported, not refused.
    let body = json!({ "messages": [{ "role": "user", "content": "x" }], "seed": 1_i64 << 40 });
    let (_, wide, dropped) = build_for("gemini-2.5-flash", false, body).unwrap();
    assert!(wide.get("generationConfig").is_none(), "{wide}");
    assert_eq!(dropped, ["seed"]);
    assert_eq!(param(build(json!({ "top_k": 0 })).unwrap_err()), "top_k");
    assert!(build(json!({})).unwrap().get("generationConfig").is_none());
}

#[test]
fn reasoning_effort_becomes_a_budget_or_a_level() {
    let thinking = |model: &str, effort: &str| {
        let body =
            json!({ "messages": [{ "role": "user", "content": "x" }], "reasoning_effort": effort });
        build_for(model, false, body)
            .map(|(_, b, _)| b["generationConfig"]["thinkingConfig"].clone())
    };
    let budget = |b: i64, include: bool| json!({ "thinkingBudget": b, "includeThoughts": include });
    let level = |l: &str, include: bool| json!({ "thinkingLevel": l, "includeThoughts": include });
    assert_eq!(
        thinking("gemini-2.5-flash", "none").unwrap(),
        budget(0, false)
    );
    assert_eq!(
        thinking("gemini-2.5-pro", "none").unwrap(),
        budget(128, false)
    );
    assert_eq!(
        thinking("gemini-2.5-flash", "low").unwrap(),
        budget(1024, true)
    );
    assert_eq!(
        thinking("gemini-2.5-flash-lite", "high").unwrap(),
        budget(24576, true)
    );
    assert_eq!(
        thinking("gemini-2.5-flash", "xhigh").unwrap(),
        budget(24576, true)
    );
    assert_eq!(
        thinking("gemini-2.5-pro", "xhigh").unwrap(),
        budget(32768, true)
    );
    assert_eq!(
        thinking("gemini-3-pro-preview", "minimal").unwrap(),
        level("low", true)
    );
    assert_eq!(
        thinking("gemini-3-pro-preview", "medium").unwrap(),
        level("high", true)
    );
    assert_eq!(
        thinking("gemini-3.1-pro-preview", "high").unwrap(),
        level("high", true)
    );
    assert_eq!(
        thinking("gemini-3-flash-preview", "none").unwrap(),
        level("minimal", false)
    );
    assert_eq!(
        thinking("gemini-3-flash-preview", "medium").unwrap(),
        level("medium", true)
    );
    assert_eq!(
        param(thinking("gemini-2.0-flash", "low").unwrap_err()),
        "reasoning_effort"
    );
}

#[test]
fn only_fields_gemini_knows_go_upstream() {
    // Gemini answers unknown names with 400 INVALID_ARGUMENT ("Unknown name ...").
    const TOP: &[&str] = &[
        "contents",
        "systemInstruction",
        "tools",
        "toolConfig",
        "generationConfig",
    ];
    const CONFIG: &[&str] = &[
        "temperature",
        "topP",
        "topK",
        "maxOutputTokens",
        "stopSequences",
        "candidateCount",
        "seed",
        "presencePenalty",
        "frequencyPenalty",
        "responseLogprobs",
        "logprobs",
        "responseMimeType",
        "responseSchema",
        "thinkingConfig",
    ];
    let schema = json!({ "type": "object", "properties": { "a": { "type": "string" } }, "additionalProperties": false });
    let body = build(json!({
        "messages": [{ "role": "system", "content": "s" }, { "role": "user", "content": "u", "name": "me" }],
        "tools": tools(), "tool_choice": "required", "temperature": 1, "top_p": 1, "top_k": 3, "n": 2,
        "max_completion_tokens": 9, "stop": ["x"], "seed": 1, "presence_penalty": 0, "frequency_penalty": 0,
        "logprobs": true, "top_logprobs": 2, "reasoning_effort": "low", "user": "u", "service_tier": "auto",
        "response_format": { "type": "json_schema", "json_schema": { "name": "n", "strict": true, "schema": schema } },
    }))
    .unwrap();
    let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert!(
        keys(&body).iter().all(|k| TOP.contains(&k.as_str())),
        "{:?}",
        keys(&body)
    );
    let config = &body["generationConfig"];
    assert_eq!(
        keys(config).len(),
        CONFIG.len(),
        "every mapped parameter is there"
    );
    assert!(keys(config).iter().all(|k| CONFIG.contains(&k.as_str())));
    assert_eq!(
        config["responseSchema"],
        json!({ "type": "OBJECT", "properties": { "a": { "type": "STRING" } } })
    );
    assert_eq!(
        keys(&body["contents"][0]),
        ["parts", "role"],
        "no OpenAI `name`"
    );
}
