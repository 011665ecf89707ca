//! A translated answer as a Responses object: the chat completion the provider's translator made
//! (after the firewall's output rules) becomes reasoning, message and function-call items, its
//! finish reason the status, its usage the Responses usage.

use serde_json::{Map, Value};

use super::object::{self, item_id};
use crate::request::responses::{ResponsesCall, call_signature, encode_state};
use crate::telemetry::usage::Usage;

/// The response for a chat completion `chat`, with every item's provider state (the stored form);
/// [`for_client`] takes out what the client did not ask for.
pub fn from_chat(
    chat: &[u8],
    call: &ResponsesCall,
    id: &str,
    created_at: u64,
    usage: Option<&Usage>,
) -> Option<Map<String, Value>> {
    let chat: Value = serde_json::from_slice(chat).ok()?;
    let choice = chat.get("choices")?.get(0)?;
    let message = choice.get("message")?;
    let model = chat.get("model").and_then(Value::as_str).unwrap_or("");
    let mut response = object::shell(call, id, created_at, model, "completed");
    let mut output = Vec::new();
    let reasoning = message
        .get("reasoning_content")
        .and_then(Value::as_str)
        .unwrap_or("");
    let calls = message.get("tool_calls").and_then(Value::as_array);
    let mut signatures = Map::new();
    for c in calls.into_iter().flatten() {
        if let (Some(id), Some(sig)) = (c.get("id").and_then(Value::as_str), call_signature(c)) {
            signatures.insert(id.to_string(), sig.clone());
        }
    }
    let encrypted = encode_state(message.get("thinking_blocks"), &signatures);
    if !reasoning.is_empty() || encrypted.is_some() {
        output.push(object::reasoning_item(
            &item_id("rs_"),
            reasoning,
            encrypted,
        ));
    }
    let text = message.get("content").and_then(Value::as_str).unwrap_or("");
    let refusal = message.get("refusal").and_then(Value::as_str);
    if !text.is_empty() || refusal.is_some() {
        output.push(object::message_item(
            &item_id("msg_"),
            text,
            refusal,
            "completed",
        ));
    }
    for c in calls.into_iter().flatten() {
        let f = c.get("function");
        let field = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or("").to_string();
        output.push(object::function_call_item(
            &item_id("fc_"),
            &field(c.get("id")),
            &field(f.and_then(|f| f.get("name"))),
            &field(f.and_then(|f| f.get("arguments"))),
            "completed",
        ));
    }
    response.insert("output".into(), Value::Array(output));
    object::finish(
        &mut response,
        choice.get("finish_reason").and_then(Value::as_str),
    );
    if let Some(u) = usage {
        response.insert("usage".into(), object::usage(u));
    }
    Some(response)
}

/// The response as the client gets it: reasoning items keep `encrypted_content` only when the
/// request's `include` asked for it.
pub fn for_client(stored: &Map<String, Value>, encrypted_reasoning: bool) -> Map<String, Value> {
    let mut response = stored.clone();
    if !encrypted_reasoning && let Some(Value::Array(items)) = response.get_mut("output") {
        for item in items.iter_mut().filter_map(Value::as_object_mut) {
            item.remove("encrypted_content");
        }
    }
    response
}
