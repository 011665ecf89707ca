//! Request building, mapping by mapping: path and model names, messages and media, tool calls and
//! results, tools and `tool_choice`, the parameters refused with a 400, and dropped fields.
//! `generationConfig` is tested in `gemini_config_tests`.
#![cfg(test)]

use serde_json::{Map, Value, json};

use crate::error::ApiError;
use crate::providers::RequestCtx;
use crate::providers::gemini::build_request;

/// The built path, body and dropped fields for a request to `model`.
pub(in crate::providers) fn build_for(
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
        cache: &crate::test_support::fixtures::cache(),
    })?;
    assert!(call.headers.is_empty());
    Ok((
        call.path,
        serde_json::from_slice(&call.body).unwrap(),
        call.dropped,
    ))
}

/// `extra` merged into a one-message request, built for gemini-2.5-flash.
pub(in crate::providers) fn build(extra: Value) -> Result<Value, ApiError> {
    let mut body = json!({ "model": "gemini", "messages": [{ "role": "user", "content": "hi" }] });
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    build_for("gemini-2.5-flash", false, body).map(|(_, b, _)| b)
}

pub(in crate::providers) fn param(e: ApiError) -> String {
    assert_eq!(e.status(), 400);
    e.param().unwrap().to_string()
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
    assert!(e.message().contains("data: URL"), "{}", e.message());
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

/// Two function tools, one without parameters.
pub(in crate::providers) fn tools() -> Value {
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
fn parameters_gemini_cannot_honour_are_refused() {
    for (extra, name) in [
        // `parallel_tool_calls: false` used to be refused here; it is honoured now (one call
        // per answer, see `answer_shape_tests`).
        (json!({ "logit_bias": { "50256": -100 } }), "logit_bias"),
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
            e.message().contains("not supported by Gemini"),
            "{}",
            e.message()
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
