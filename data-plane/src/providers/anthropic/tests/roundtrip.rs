//! Multi-turn conformance: the recorded tool-use cassettes are replayed turn by turn through the
//! adapter the way an OpenAI client drives it (answer → history → next request), and each rebuilt
//! request must equal what was recorded, thinking signatures included.
#![cfg(test)]

use serde_json::{Value, json};

use crate::providers::anthropic::tests::check_message;
use crate::providers::{Protocol, translate_response};
use crate::test_support::anthropic::{Collected, build, normalise_messages};
use crate::test_support::fixtures::{self, ctx, replay};

/// The OpenAI assistant message a client would append to its history for a recorded answer.
fn assistant_message(recorded: &Value) -> Value {
    let t = translate_response(
        Protocol::Anthropic,
        recorded.to_string().as_bytes(),
        &ctx(false),
    )
    .unwrap();
    let out: Value = serde_json::from_slice(&t.body).unwrap();
    out["choices"][0]["message"].clone()
}

/// OpenAI tool messages for the recorded `tool_result` blocks of a request's last turn.
fn tool_messages(recorded_request: &Value) -> Vec<Value> {
    let last = recorded_request["messages"]
        .as_array()
        .unwrap()
        .last()
        .unwrap();
    last["content"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| json!({"role": "tool", "tool_call_id": b["tool_use_id"], "content": b["content"]}))
        .collect()
}

#[test]
fn recorded_parallel_tool_calls_replay_turn_by_turn() {
    let turns = fixtures::cassette("anthropic/pydantic-ai__test_multiple_parallel_tool_calls.yaml");
    let first = turns[0].request.as_ref().unwrap();
    let system = json!({"role": "system", "content": first["system"]});
    let user = json!({"role": "user", "content": first["messages"][0]["content"][0]["text"]});
    let tool = &first["tools"][0];
    let tools = json!([{"type": "function", "function": {"name": tool["name"],
        "description": tool["description"], "parameters": tool["input_schema"]}}]);
    let request = json!({"model": "claude-haiku-4-5", "max_tokens": 4096, "tools": tools,
        "tool_choice": "auto", "messages": [system, user]});
    let (ours, _) = build(request.clone(), false);
    for field in [
        "model",
        "max_tokens",
        "system",
        "tools",
        "tool_choice",
        "stream",
    ] {
        assert_eq!(ours[field], first[field], "{field}");
    }
    assert_eq!(
        normalise_messages(&ours["messages"]),
        normalise_messages(&first["messages"])
    );

    let answer = turns[0].response.as_ref().unwrap();
    check_message(answer, "parallel tool calls");
    let assistant = assistant_message(answer);
    assert_eq!(assistant["tool_calls"].as_array().unwrap().len(), 4);
    assert_eq!(
        assistant["tool_calls"][1]["function"]["arguments"],
        r#"{"name":"Bob"}"#
    );

    let second = turns[1].request.as_ref().unwrap();
    let mut history = request["messages"].as_array().unwrap().clone();
    history.push(assistant);
    history.extend(tool_messages(second));
    let mut next = request.clone();
    next["messages"] = Value::Array(history);
    let (ours, _) = build(next, false);
    assert_eq!(
        normalise_messages(&ours["messages"]),
        normalise_messages(&second["messages"]),
        "four tool messages become one user turn of tool_result blocks"
    );
    assert_eq!(ours["system"], second["system"]);
    check_message(
        turns[1].response.as_ref().unwrap(),
        "answer after the tool results",
    );
}

#[test]
fn recorded_thinking_tool_loop_gets_its_signature_back() {
    let turns = fixtures::cassette("anthropic/pydantic-ai__test_anthropic_tool_with_thinking.yaml");
    let first = turns[0].request.as_ref().unwrap();
    let tool = &first["tools"][0];
    let request = json!({"model": "claude-sonnet-4-0", "max_tokens": 4096, "reasoning_effort": "low",
        "tool_choice": "auto", "messages": [{"role": "user", "content": first["messages"][0]["content"][0]["text"]}],
        "tools": [{"type": "function", "function": {"name": tool["name"], "description": "",
            "parameters": tool["input_schema"]}}]});
    let (ours, _) = build(request.clone(), false);
    for field in ["model", "max_tokens", "tools", "tool_choice", "stream"] {
        assert_eq!(ours[field], first[field], "{field}");
    }
    assert_eq!(ours["thinking"]["type"], first["thinking"]["type"]);
    let budget = ours["thinking"]["budget_tokens"].as_u64().unwrap();
    assert!(
        (1024..4096).contains(&budget),
        "a valid budget ({budget}; pydantic-ai chose 3000)"
    );
    assert_eq!(
        normalise_messages(&ours["messages"]),
        normalise_messages(&first["messages"])
    );

    let answer = turns[0].response.as_ref().unwrap();
    check_message(answer, "thinking + tool_use");
    let assistant = assistant_message(answer);
    assert_eq!(
        assistant["thinking_blocks"][0], answer["content"][0],
        "signed block, verbatim"
    );
    assert_eq!(assistant["tool_calls"][0]["function"]["arguments"], "{}");

    let second = turns[1].request.as_ref().unwrap();
    let next_with = |assistant: Value| {
        let mut next = request.clone();
        let history = next["messages"].as_array_mut().unwrap();
        history.push(assistant);
        history.extend(tool_messages(second));
        build(next, false)
    };
    // A client that keeps the whole message sends the blocks back itself.
    let (ours, call) = next_with(assistant.clone());
    assert_eq!(
        normalise_messages(&ours["messages"]),
        normalise_messages(&second["messages"])
    );
    assert!(call.dropped.is_empty());
    // A plain OpenAI client keeps only role, content and tool_calls: the cache restores them.
    let plain = json!({"role": "assistant", "content": assistant["content"],
        "tool_calls": assistant["tool_calls"]});
    let (ours, _) = next_with(plain);
    assert_eq!(
        normalise_messages(&ours["messages"]),
        normalise_messages(&second["messages"])
    );
    assert_eq!(ours["thinking"]["type"], "enabled");
    check_message(
        turns[1].response.as_ref().unwrap(),
        "answer after the tool result",
    );
}

#[test]
fn a_tool_turn_without_its_thinking_turns_thinking_off() {
    let request = json!({"model": "m", "reasoning_effort": "high", "messages": [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": null, "tool_calls": [{"id": "toolu_unknown_to_cache",
            "type": "function", "function": {"name": "w", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "toolu_unknown_to_cache", "content": "sunny"}],
        "tools": [{"type": "function", "function": {"name": "w"}}]});
    let (ours, call) = build(request, false);
    assert!(
        ours.get("thinking").is_none(),
        "Anthropic would refuse the request otherwise"
    );
    assert_eq!(call.dropped, vec!["reasoning_effort"]);
    assert_eq!(ours["max_tokens"], 4096);
    assert_eq!(ours["messages"][1]["content"][0]["type"], "tool_use");
}

#[test]
fn streamed_thinking_is_cached_for_the_next_turn() {
    let events = [
        json!({"type": "message_start", "message": {"id": "msg_s", "model": "claude-x", "usage": {"input_tokens": 5, "output_tokens": 1}}}),
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": "", "signature": ""}}),
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "Need the "}}),
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "weather."}}),
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "SIG-stream"}}),
        json!({"type": "content_block_stop", "index": 0}),
        json!({"type": "content_block_start", "index": 1, "content_block": {"type": "redacted_thinking", "data": "OPAQUE"}}),
        json!({"type": "content_block_stop", "index": 1}),
        json!({"type": "content_block_start", "index": 2, "content_block": {"type": "tool_use", "id": "toolu_streamed_1", "name": "w", "input": {}}}),
        json!({"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": "{\"city\": \"Paris\"}"}}),
        json!({"type": "content_block_stop", "index": 2}),
        json!({"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 30}}),
        json!({"type": "message_stop"}),
    ];
    let lines: Vec<String> = events.iter().map(Value::to_string).collect();
    let r = replay(
        Protocol::Anthropic,
        &fixtures::chunks_to_sse(Protocol::Anthropic, &lines),
        false,
    );
    let got = Collected::from_chunks(&r.chunks);
    assert_eq!(got.reasoning, "Need the weather.");
    let blocks = got.thinking_blocks.unwrap();
    assert_eq!(
        blocks[0],
        json!({"type": "thinking", "thinking": "Need the weather.", "signature": "SIG-stream"})
    );
    assert_eq!(
        blocks[1],
        json!({"type": "redacted_thinking", "data": "OPAQUE"})
    );

    let (ours, _) = build(
        json!({"model": "m", "reasoning_effort": "low", "messages": [
            {"role": "user", "content": "weather?"},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "toolu_streamed_1", "type": "function",
                "function": {"name": "w", "arguments": got.tools[0].2}}]},
            {"role": "tool", "tool_call_id": "toolu_streamed_1", "content": "sunny"}],
            "tools": [{"type": "function", "function": {"name": "w"}}]}),
        true,
    );
    let content = &ours["messages"][1]["content"];
    assert_eq!(content[0], blocks[0]);
    assert_eq!(content[1], blocks[1]);
    assert_eq!(content[2]["input"], json!({"city": "Paris"}));
    assert_eq!(
        ours["thinking"],
        json!({"type": "enabled", "budget_tokens": 2048})
    );
}
