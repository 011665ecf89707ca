//! Request building, mapping by mapping: path and model names, messages and media, tool calls and
//! results, tools and `tool_choice`, `generationConfig`, reasoning effort, the parameters refused
//! with a 400, and dropped fields.
#![cfg(test)]

use serde_json::{Map, Value, json};

use super::RequestCtx;
use super::gemini::build_request;
use crate::error::ApiError;

/// The built path, body and dropped fields for a request to `model`.
pub(super) fn build_for(
    model: &str,
    stream: bool,
    body: Value,
) -> Result<(String, Value, Vec<String>), ApiError> {
    let Value::Object(body) = body else {
        panic!("an object")
    };
    let call = build_request(&RequestCtx {
        body: &body,
        model,
        stream,
    })?;
    assert!(call.headers.is_empty());
    Ok((
        call.path,
        serde_json::from_slice(&call.body).unwrap(),
        call.dropped,
    ))
}

/// `extra` merged into a one-message request, built for gemini-2.5-flash.
pub(super) fn build(extra: Value) -> Result<Value, ApiError> {
    let mut body = json!({ "model": "gemini", "messages": [{ "role": "user", "content": "hi" }] });
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    build_for("gemini-2.5-flash", false, body).map(|(_, b, _)| b)
}

fn param(e: ApiError) -> String {
    assert_eq!(e.status, 400);
    e.param.unwrap()
}

#[test]
fn paths_never_carry_the_key_and_model_names_stay_in_their_segment() {
    let body = json!({ "messages": [{ "role": "user", "content": "hi" }] });
    let (path, ..) = build_for("gemini-2.5-flash", false, body.clone()).unwrap();
    assert_eq!(path, "/models/gemini-2.5-flash:generateContent");
    let (path, ..) = build_for("models/gemini-2.5-flash", true, body.clone()).unwrap();
    assert_eq!(
        path,
        "/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    );
    for bad in [
        "a/b",
        "a?key=x",
        "a#b",
        "..",
        "gemini..x",
        "gemini 2",
        "x%2F",
        "",
        "models/",
    ] {
        let e = build_for(bad, false, body.clone()).unwrap_err();
        assert_eq!(param(e), "model", "{bad}");
    }
}

#[test]
fn messages_become_system_instruction_and_contents() {
    let body = build(json!({ "messages": [
        { "role": "system", "content": "Be brief." },
        { "role": "developer", "content": [{ "type": "text", "text": "Use French." }] },
        { "role": "user", "content": [
            { "type": "text", "text": "What is this?" },
            { "type": "image_url", "image_url": { "url": "data:image/png;base64,iVBOR" } },
            { "type": "image_url", "image_url": { "url": "https://x.test/cat.JPG?size=2", "detail": "low" } },
            { "type": "input_audio", "input_audio": { "data": "UklG", "format": "wav" } },
            { "type": "file", "file": { "file_data": "data:application/pdf;base64,JVBE", "filename": "a.pdf" } },
        ] },
        { "role": "assistant", "content": "A cat.", "name": "bot" },
        { "role": "user", "content": "Thanks" },
    ] }))
    .unwrap();
    assert_eq!(
        body["systemInstruction"],
        json!({ "parts": [{ "text": "Be brief." }, { "text": "Use French." }] })
    );
    assert_eq!(
        body["contents"],
        json!([
            { "role": "user", "parts": [
                { "text": "What is this?" },
                { "inlineData": { "mimeType": "image/png", "data": "iVBOR" } },
                { "fileData": { "mimeType": "image/jpeg", "fileUri": "https://x.test/cat.JPG?size=2" } },
                { "inlineData": { "mimeType": "audio/wav", "data": "UklG" } },
                { "inlineData": { "mimeType": "application/pdf", "data": "JVBE" } },
            ] },
            { "role": "model", "parts": [{ "text": "A cat." }] },
            { "role": "user", "parts": [{ "text": "Thanks" }] },
        ])
    );
}

#[test]
fn media_gemini_cannot_take_is_refused_clearly() {
    let part = |p: Value| build(json!({ "messages": [{ "role": "user", "content": [p] }] }));
    let url = |u: &str| part(json!({ "type": "image_url", "image_url": { "url": u } }));
    let e = url("https://x.test/image").unwrap_err();
    assert!(e.message.contains("data: URL"), "{}", e.message);
    assert_eq!(param(e), "messages[0].content[0].image_url.url");
    assert_eq!(
        param(url("ftp://x.test/a.png").unwrap_err()),
        "messages[0].content[0].image_url.url"
    );
    assert_eq!(
        param(url("data:image/png,raw").unwrap_err()),
        "messages[0].content[0].image_url.url"
    );
    let file = part(json!({ "type": "file", "file": { "file_id": "file-1" } })).unwrap_err();
    assert_eq!(param(file), "messages[0].content[0].file");
    let odd = part(json!({ "type": "video", "video": {} })).unwrap_err();
    assert_eq!(param(odd), "messages[0].content[0].type");
    let only_system = build(json!({ "messages": [{ "role": "system", "content": "x" }] }));
    assert_eq!(param(only_system.unwrap_err()), "messages");
}

#[test]
fn tool_results_are_matched_to_names_and_grouped_in_one_user_turn() {
    let body = build(json!({ "messages": [
        { "role": "user", "content": "Weather in Paris and Rome?" },
        { "role": "assistant", "content": null, "tool_calls": [
            { "id": "c1", "type": "function", "function": { "name": "weather", "arguments": "{\"city\":\"Paris\"}" } },
            { "id": "c2", "type": "function", "function": { "name": "time", "arguments": "" } },
        ] },
        { "role": "tool", "tool_call_id": "c2", "content": [{ "type": "text", "text": "noon" }] },
        { "role": "tool", "tool_call_id": "c1", "content": "sunny" },
        { "role": "user", "content": "And tomorrow?" },
    ] }))
    .unwrap();
    assert_eq!(
        body["contents"][1],
        json!({ "role": "model", "parts": [
        { "functionCall": { "name": "weather", "args": { "city": "Paris" } } },
        { "functionCall": { "name": "time", "args": {} } },
    ] })
    );
    assert_eq!(
        body["contents"][2],
        json!({ "role": "user", "parts": [
        { "functionResponse": { "name": "time", "response": { "content": "noon" } } },
        { "functionResponse": { "name": "weather", "response": { "content": "sunny" } } },
        { "text": "And tomorrow?" },
    ] })
    );
    assert_eq!(body["contents"].as_array().unwrap().len(), 3);
}

#[test]
fn bad_tool_history_is_refused() {
    let call = |args: &str| {
        json!({ "messages": [
        { "role": "user", "content": "x" },
        { "role": "assistant", "tool_calls": [{ "id": "c1", "type": "function", "function": { "name": "f", "arguments": args } }] },
    ] })
    };
    for args in ["{not json", "[1, 2]", "\"text\""] {
        let e = build(call(args)).unwrap_err();
        assert_eq!(
            param(e),
            "messages[1].tool_calls[0].function.arguments",
            "{args}"
        );
    }
    let orphan = build(json!({ "messages": [
        { "role": "user", "content": "x" },
        { "role": "tool", "tool_call_id": "call_never_seen", "content": "r" },
    ] }));
    assert_eq!(param(orphan.unwrap_err()), "messages[1].tool_call_id");
}

fn tools() -> Value {
    json!([
        { "type": "function", "function": { "name": "weather", "description": "Weather now.",
          "parameters": { "type": "object", "properties": { "city": { "type": "string" } }, "required": ["city"],
                          "additionalProperties": false, "$schema": "http://json-schema.org/draft-07/schema#" } } },
        { "type": "function", "function": { "name": "now", "parameters": { "type": "object", "properties": {} } } },
    ])
}

#[test]
fn tools_and_tool_choice() {
    let body = build(json!({ "tools": tools() })).unwrap();
    assert_eq!(
        body["tools"],
        json!([{ "functionDeclarations": [
        { "name": "weather", "description": "Weather now.", "parameters": {
            "type": "OBJECT", "properties": { "city": { "type": "STRING" } }, "required": ["city"] } },
        { "name": "now" },
    ] }])
    );
    assert!(body.get("toolConfig").is_none());
    for (choice, config) in [
        (json!("auto"), json!({ "mode": "AUTO" })),
        (json!("none"), json!({ "mode": "NONE" })),
        (json!("required"), json!({ "mode": "ANY" })),
        (
            json!({ "type": "function", "function": { "name": "now" } }),
            json!({ "mode": "ANY", "allowedFunctionNames": ["now"] }),
        ),
    ] {
        let body = build(json!({ "tools": tools(), "tool_choice": choice })).unwrap();
        assert_eq!(body["toolConfig"]["functionCallingConfig"], config);
    }
    let unknown = json!({ "type": "function", "function": { "name": "nope" } });
    let e = build(json!({ "tools": tools(), "tool_choice": unknown })).unwrap_err();
    assert_eq!(param(e), "tool_choice");
    let scalar = json!([{ "type": "function", "function": { "name": "f", "parameters": { "type": "string" } } }]);
    assert_eq!(
        param(build(json!({ "tools": scalar })).unwrap_err()),
        "tools[0].function.parameters"
    );
    assert!(
        build(json!({ "tools": [] }))
            .unwrap()
            .get("tools")
            .is_none()
    );
}

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
    assert_eq!(
        param(build(json!({ "seed": 1_i64 << 40 })).unwrap_err()),
        "seed"
    );
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
fn parameters_gemini_cannot_honour_are_refused() {
    for (extra, name) in [
        (json!({ "logit_bias": { "50256": -100 } }), "logit_bias"),
        (
            json!({ "parallel_tool_calls": false }),
            "parallel_tool_calls",
        ),
        (json!({ "functions": [{ "name": "f" }] }), "functions"),
        (json!({ "function_call": "auto" }), "function_call"),
        (json!({ "modalities": ["text", "audio"] }), "modalities"),
        (
            json!({ "audio": { "voice": "alloy", "format": "wav" } }),
            "modalities",
        ),
        (json!({ "web_search_options": {} }), "web_search_options"),
    ] {
        let e = build(extra).unwrap_err();
        assert!(
            e.message.contains("not supported by Gemini"),
            "{}",
            e.message
        );
        assert_eq!(param(e), name);
    }
}

#[test]
fn unsent_fields_are_listed_as_dropped() {
    let body = json!({ "model": "m", "messages": [{ "role": "user", "content": "x" }], "user": "u1",
        "store": true, "metadata": { "a": "b" }, "x_custom": 1, "temperature": 1, "stream": true,
        "stream_options": { "include_usage": true } });
    let (_, built, mut dropped) = build_for("gemini-2.5-flash", true, body).unwrap();
    dropped.sort();
    assert_eq!(dropped, ["metadata", "store", "user", "x_custom"]);
    let keys: Map<String, Value> = built.as_object().unwrap().clone();
    let mut keys: Vec<&String> = keys.keys().collect();
    keys.sort();
    assert_eq!(
        keys,
        ["contents", "generationConfig"],
        "only Gemini fields go upstream"
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
