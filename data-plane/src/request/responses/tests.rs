//! Responses bodies: validation, joining earlier turns, the firewall's texts, and the chat form.

use serde_json::{Value, json};

use super::*;

fn request(body: Value) -> ChatRequest {
    let bytes = serde_json::to_vec(&body).unwrap();
    let native = parse_responses(&bytes).unwrap();
    let input = input_items(&native);
    into_request(native, input, None, bytes.len()).unwrap()
}

fn refused(body: Value) -> ApiError {
    parse_responses(&serde_json::to_vec(&body).unwrap()).unwrap_err()
}

#[test]
fn a_string_input_with_instructions_is_a_system_and_a_user_message() {
    let r = request(
        json!({"model": "m", "input": "Hi", "instructions": "Be brief.", "max_output_tokens": 50, "stream": true}),
    );
    assert_eq!(r.operation, Operation::Responses);
    assert!(r.stream && r.include_usage);
    assert_eq!(
        r.body["messages"],
        json!([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}])
    );
    assert_eq!(r.body["max_completion_tokens"], json!(50));
    assert_eq!(r.body["stream_options"], json!({"include_usage": true}));
    assert_eq!(r.features.max_tokens, Some(50));
    let call = r.responses.unwrap();
    assert!(call.store && call.untranslatable.is_none());
}

#[test]
fn items_become_one_assistant_turn_and_tool_messages() {
    let blocks = json!([{"type": "thinking", "thinking": "t", "signature": "sig"}]);
    let r = request(json!({
        "model": "m",
        "input": [
            {"role": "user", "content": [{"type": "input_text", "text": "Weather?"}, {"type": "input_image", "image_url": "data:image/png;base64,AA", "detail": "low"}]},
            {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "thinking"}], "encrypted_content": encode_state(Some(&blocks), &json!({"call_2": "sig2"}).as_object().unwrap().clone()).unwrap()},
            {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "get", "arguments": "{\"c\":1}"},
            {"type": "function_call", "call_id": "call_2", "name": "get", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "call_1", "output": "sunny"},
            {"type": "function_call_output", "call_id": "call_2", "output": [{"type": "input_text", "text": "rain"}]},
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Sunny."}]},
        ],
        "tools": [{"type": "function", "name": "get", "description": "d", "parameters": {"type": "object"}, "strict": true}],
        "tool_choice": {"type": "function", "name": "get"},
        "text": {"format": {"type": "json_schema", "name": "w", "schema": {"type": "object"}, "strict": true}},
        "reasoning": {"effort": "low", "summary": "auto"},
    }));
    let messages = r.body["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 5, "{messages:#?}");
    assert_eq!(
        messages[0]["content"][1],
        json!({"type": "image_url", "image_url": {"url": "data:image/png;base64,AA", "detail": "low"}})
    );
    assert_eq!(messages[1]["role"], "assistant");
    assert_eq!(messages[1]["reasoning_content"], "thinking");
    assert_eq!(
        messages[1]["thinking_blocks"], blocks,
        "our encrypted content carries the signed blocks back"
    );
    assert_eq!(messages[1]["tool_calls"].as_array().unwrap().len(), 2);
    assert_eq!(
        messages[1]["tool_calls"][1]["extra_content"],
        json!({"google": {"thought_signature": "sig2"}}),
        "Gemini's signature goes back on its call"
    );
    assert_eq!(
        messages[1]["tool_calls"][0],
        json!({"id": "call_1", "type": "function", "function": {"name": "get", "arguments": "{\"c\":1}"}})
    );
    assert_eq!(
        messages[2],
        json!({"role": "tool", "tool_call_id": "call_1", "content": "sunny"})
    );
    assert_eq!(messages[3]["content"], "rain");
    assert_eq!(
        messages[4],
        json!({"role": "assistant", "content": "Sunny."})
    );
    assert_eq!(
        r.body["tools"][0],
        json!({"type": "function", "function": {"name": "get", "description": "d", "parameters": {"type": "object"}, "strict": true}})
    );
    assert_eq!(
        r.body["tool_choice"],
        json!({"type": "function", "function": {"name": "get"}})
    );
    assert_eq!(
        r.body["response_format"],
        json!({"type": "json_schema", "json_schema": {"name": "w", "schema": {"type": "object"}, "strict": true}})
    );
    assert_eq!(r.body["reasoning_effort"], "low");
    assert!(r.features.has_tools && r.features.wants_json);
}

#[test]
fn what_chat_cannot_say_is_reported_not_dropped() {
    for (body, param) in [
        (
            json!({"model": "m", "input": "x", "tools": [{"type": "web_search"}]}),
            "tools[0].type",
        ),
        (
            json!({"model": "m", "input": [{"type": "item_reference", "id": "msg_1"}, {"role": "user", "content": "x"}]}),
            "input[0].type",
        ),
        (
            json!({"model": "m", "input": [{"role": "user", "content": [{"type": "input_image", "file_id": "file-1"}]}]}),
            "input[0].content[0].file_id",
        ),
        (
            json!({"model": "m", "input": "x", "text": {"format": {"type": "grammar"}}}),
            "text.format.type",
        ),
        (
            json!({"model": "m", "input": "x", "prompt": {"id": "pmpt_1"}}),
            "prompt",
        ),
        (
            json!({"model": "m", "input": "x", "max_tool_calls": 2}),
            "max_tool_calls",
        ),
    ] {
        let call = request(body).responses.unwrap();
        let e = call.untranslatable.clone().expect("untranslatable");
        assert_eq!(e.code(), Some("unsupported_parameter"));
        assert_eq!(e.param(), Some(param));
    }
    // An id this gateway never stored: only OpenAI itself might know it.
    let bytes = br#"{"model":"m","input":"x","previous_response_id":"resp_x"}"#;
    let native = parse_responses(bytes).unwrap();
    let input = input_items(&native);
    let r = into_request(native, input, Some("resp_x".into()), bytes.len()).unwrap();
    let e = r.responses.unwrap().untranslatable.clone().unwrap();
    assert_eq!(e.code(), Some("previous_response_not_found"));
}

#[test]
fn bad_bodies_get_a_400_naming_the_field() {
    for (body, param) in [
        (json!({"model": "m"}), "input"),
        (json!({"model": "m", "input": 3}), "input"),
        (json!({"model": "m", "input": [1]}), "input[0]"),
        (
            json!({"model": "m", "input": "x", "max_output_tokens": 3}),
            "max_output_tokens",
        ),
        (
            json!({"model": "m", "input": "x", "temperature": 3}),
            "temperature",
        ),
        (
            json!({"model": "m", "input": "x", "stream": "yes"}),
            "stream",
        ),
        (
            json!({"model": "m", "input": "x", "tools": [{"type": "function", "function": {"name": "f"}}]}),
            "tools[0].name",
        ),
        (
            json!({"model": "m", "input": "x", "background": true}),
            "background",
        ),
        (json!({"input": "x"}), "model"),
    ] {
        let e = refused(body.clone());
        assert_eq!(e.status(), 400, "{body}");
        assert_eq!(e.param(), Some(param), "{body}");
    }
}

#[test]
fn earlier_turns_come_first_and_every_text_is_seen() {
    let mut native = parse_responses(br#"{"model":"m","input":"next","previous_response_id":"resp_1","instructions":"sys","tools":[{"type":"function","name":"f","description":"desc"}]}"#).unwrap();
    join_earlier(
        &mut native,
        vec![
            json!({"role": "user", "content": "first"}),
            json!({"type": "function_call", "call_id": "c", "name": "f", "arguments": "{\"a\":1}"}),
            json!({"type": "function_call_output", "call_id": "c", "output": "out"}),
        ],
    );
    assert!(!native.contains_key("previous_response_id"));
    let items = input_items(&native);
    assert_eq!(items.len(), 4);
    assert_eq!(items[3]["content"], "next");
    let mut seen: Vec<String> = texts(&mut native).into_iter().map(|s| s.clone()).collect();
    seen.sort();
    assert_eq!(seen, ["desc", "first", "next", "out", "sys", "{\"a\":1}"]);
}

#[test]
fn chat_parameter_names_become_the_responses_ones() {
    for (chat, responses) in [
        ("response_format.type", Some("text.format.type")),
        ("max_tokens", Some("max_output_tokens")),
        ("reasoning_effort", Some("reasoning.effort")),
        ("messages[2].content", Some("input")),
        ("tools[1].function.parameters", Some("tools[1].parameters")),
        ("temperature", None),
    ] {
        assert_eq!(responses_param(chat).as_deref(), responses, "{chat}");
    }
}
