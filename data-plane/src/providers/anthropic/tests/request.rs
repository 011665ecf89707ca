//! Request building for Anthropic, the conversation: system prompt, content parts, tool calls
//! and results, and thinking blocks sent back by the client.
#![cfg(test)]

use serde_json::{Value, json};

use crate::test_support::anthropic::{build, refused, tool_call, weather_tool, with};

#[test]
fn builds_the_call_with_version_header_and_defaults() {
    let (body, call) = build(with(json!({})), true);
    assert_eq!(call.path, "/messages");
    assert_eq!(
        call.headers,
        vec![("anthropic-version", "2023-06-01".to_string())]
    );
    assert!(call.dropped.is_empty());
    assert_eq!(body["model"], "claude-x");
    assert_eq!(body["max_tokens"], 4096);
    assert_eq!(body["stream"], true);
    assert_eq!(
        body["messages"],
        json!([{"role": "user", "content": [{"type": "text", "text": "hi"}]}])
    );
    assert!(body.get("system").is_none() && body.get("tools").is_none());
}

#[test]
fn system_and_developer_messages_become_the_system_prompt() {
    let (body, _) = build(
        with(json!({"messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "hi"},
            {"role": "developer", "content": [{"type": "text", "text": "Use French."}]},
        ]})),
        false,
    );
    assert_eq!(body["system"], "Be brief.\n\nUse French.");
    assert_eq!(body["messages"].as_array().unwrap().len(), 1);
    let (body, _) = build(
        with(json!({"messages": [
            {"role": "system", "content": [{"type": "text", "text": "Long rules", "cache_control": {"type": "ephemeral", "x": 1}}]},
            {"role": "user", "content": "hi"},
        ]})),
        false,
    );
    assert_eq!(
        body["system"],
        json!([{"type": "text", "text": "Long rules", "cache_control": {"type": "ephemeral"}}])
    );
}

#[test]
fn content_parts_map_to_blocks() {
    let (body, _) = build(
        with(json!({"messages": [{"role": "user", "content": [
            {"type": "text", "text": "What is this?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "high"}},
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
        {"type": "image_url", "image_url": {"url": "data:image/jpg;base64,/9j/4AAQ"}},
            {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBERi0=", "filename": "a.pdf"}},
            {"type": "text", "text": ""},
        ]}]})),
        false,
    );
    assert_eq!(
        body["messages"][0]["content"],
        json!([
            {"type": "text", "text": "What is this?"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
            {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
            {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/4AAQ"}},
            {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="}},
        ])
    );
    let part = |p: Value| {
        refused(with(
            json!({"messages": [{"role": "user", "content": [p]}]}),
        ))
    };
    assert_eq!(
        part(json!({"type": "input_audio", "input_audio": {"data": "x", "format": "wav"}})).0,
        "messages[0].content[0].type"
    );
    assert_eq!(
        part(json!({"type": "image_url", "image_url": {"url": "data:image/tiff;base64,AA=="}})).0,
        "messages[0].content[0].image_url.url"
    );
    assert_eq!(
        part(json!({"type": "image_url", "image_url": {"url": "ftp://x/y.png"}})).0,
        "messages[0].content[0].image_url.url"
    );
    assert_eq!(
        part(json!({"type": "file", "file": {"file_id": "file-abc"}})).0,
        "messages[0].content[0].file"
    );
    let (param, message) = refused(with(
        json!({"messages": [{"role": "function", "name": "f", "content": "x"}]}),
    ));
    assert_eq!(param, "messages[0].role");
    assert!(message.contains("not supported by Anthropic"));
}

#[test]
fn tool_calls_and_results_map_to_blocks() {
    let (body, _) = build(
        with(json!({"messages": [
            {"role": "user", "content": "Look up a and b"},
            {"role": "assistant", "content": "Looking.", "name": "bot", "tool_calls": [tool_call("call_1", r#"{"q":"a"}"#), tool_call("call_2", "")]},
            {"role": "tool", "tool_call_id": "call_1", "content": "A"},
            {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "B"}]},
            {"role": "user", "content": "Thanks"},
        ]})),
        false,
    );
    let messages = body["messages"].as_array().unwrap();
    assert_eq!(
        messages.len(),
        3,
        "tool results and the next user turn form one user message"
    );
    assert_eq!(
        messages[1],
        json!({"role": "assistant", "content": [
            {"type": "text", "text": "Looking."},
            {"type": "tool_use", "id": "call_1", "name": "lookup", "input": {"q": "a"}},
            {"type": "tool_use", "id": "call_2", "name": "lookup", "input": {}},
        ]})
    );
    assert_eq!(
        messages[2]["content"],
        json!([
            {"type": "tool_result", "tool_use_id": "call_1", "content": "A"},
            {"type": "tool_result", "tool_use_id": "call_2", "content": [{"type": "text", "text": "B"}]},
            {"type": "text", "text": "Thanks"},
        ])
    );
    for bad in ["{not json", "[1,2]"] {
        let (param, message) = refused(with(json!({"messages": [
            {"role": "user", "content": "x"},
            {"role": "assistant", "content": null, "tool_calls": [tool_call("call_1", bad)]},
        ]})));
        assert_eq!(
            param, "messages[1].tool_calls[0].function.arguments",
            "{bad}"
        );
        assert!(!message.contains(bad), "the input is not echoed");
    }
}

#[test]
fn thinking_blocks_sent_back_by_the_client_are_checked_and_used_only_with_thinking() {
    let history = |blocks: Value, effort: Option<&str>| {
        let mut r = with(json!({"tools": [weather_tool()], "messages": [
            {"role": "user", "content": "weather?"},
            {"role": "assistant", "content": null, "thinking_blocks": blocks, "reasoning_content": "hmm",
                "tool_calls": [tool_call("toolu_client_sent", "{}")]},
            {"role": "tool", "tool_call_id": "toolu_client_sent", "content": "sunny"}]}));
        if let Some(e) = effort {
            r["reasoning_effort"] = json!(e);
        }
        r
    };
    let signed = json!([{"type": "thinking", "thinking": "t", "signature": "S"}, {"type": "redacted_thinking", "data": "D"}]);
    let (body, _) = build(history(signed.clone(), Some("low")), false);
    assert_eq!(body["messages"][1]["content"][0], signed[0]);
    assert_eq!(body["messages"][1]["content"][1], signed[1]);
    let (body, _) = build(history(signed, None), false);
    assert_eq!(
        body["messages"][1]["content"][0]["type"], "tool_use",
        "not sent without thinking"
    );
    let unsigned = json!([{"type": "thinking", "thinking": "t"}]);
    assert_eq!(
        refused(history(unsigned, Some("low"))).0,
        "messages[1].thinking_blocks[0]"
    );
}

/// Ids another provider issued, or a client made up, must match `^[a-zA-Z0-9_-]+$`: each one maps
/// to the same valid id in the assistant turn and in its result, on every turn, plain and streamed.
#[test]
fn foreign_tool_call_ids_are_made_valid_consistently() {
    let conversation = |extra_turn: bool| {
        let mut messages = vec![
            json!({"role": "user", "content": "a and b"}),
            json!({"role": "assistant", "content": null, "tool_calls": [
                tool_call("functions.lookup:0", "{}"), tool_call("call_ok-1", "{}")]}),
            json!({"role": "tool", "tool_call_id": "functions.lookup:0", "content": "A"}),
            json!({"role": "tool", "tool_call_id": "call_ok-1", "content": "B"}),
        ];
        if extra_turn {
            messages.push(json!({"role": "assistant", "content": null,
                "tool_calls": [tool_call("a b", "{}")]}));
            messages.push(json!({"role": "tool", "tool_call_id": "a b", "content": "C"}));
        }
        with(json!({ "messages": messages }))
    };
    let valid = |id: &Value| {
        let id = id.as_str().unwrap();
        !id.is_empty()
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    };
    let mut first_turn_ids = None;
    for (extra_turn, stream) in [(false, false), (false, true), (true, false), (true, true)] {
        let (body, _) = build(conversation(extra_turn), stream);
        let m = &body["messages"];
        let (call, result) = (
            &m[1]["content"][0]["id"],
            &m[2]["content"][0]["tool_use_id"],
        );
        assert!(valid(call), "{call}");
        assert_eq!(call, result, "the call and its result agree");
        assert_eq!(m[1]["content"][1]["id"], "call_ok-1", "a valid id is kept");
        assert_eq!(m[2]["content"][1]["tool_use_id"], "call_ok-1");
        let ids = (call.clone(), result.clone());
        assert_eq!(
            first_turn_ids.get_or_insert(ids.clone()),
            &ids,
            "stable as it grows"
        );
        if extra_turn {
            let (call, result) = (
                &m[3]["content"][0]["id"],
                &m[4]["content"][0]["tool_use_id"],
            );
            assert!(valid(call) && call == result, "{call} {result}");
        }
    }
}
