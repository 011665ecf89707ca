//! The pieces every Responses answer is made of: the response object with the request's settings
//! echoed, output items, usage, the status a chat finish reason means, and events with `type` and
//! `sequence_number` first, as OpenAI writes them.

use serde_json::{Map, Value, json};

use crate::request::ids;
use crate::request::responses::ResponsesCall;
use crate::telemetry::usage::Usage;

/// A response id (`resp_` and 32 hex digits).
pub fn new_id() -> String {
    ids::prefixed_hex("resp_")
}

/// An output item id with its kind's prefix (`msg_`, `fc_`, `rs_`).
pub(super) fn item_id(prefix: &str) -> String {
    ids::prefixed_hex(prefix)
}

/// The response object for `call` with no output yet: the request's settings as OpenAI echoes
/// them, defaults where the client gave none.
pub(super) fn shell(
    call: &ResponsesCall,
    id: &str,
    created_at: u64,
    model: &str,
    status: &str,
) -> Map<String, Value> {
    let n = &call.native;
    let echo = |field: &str, default: Value| {
        n.get(field)
            .filter(|v| !v.is_null())
            .cloned()
            .unwrap_or(default)
    };
    let mut r = Map::new();
    r.insert("id".into(), json!(id));
    r.insert("object".into(), json!("response"));
    r.insert("created_at".into(), json!(created_at));
    r.insert("status".into(), json!(status));
    r.insert("background".into(), json!(false));
    r.insert("error".into(), Value::Null);
    r.insert("incomplete_details".into(), Value::Null);
    r.insert("instructions".into(), echo("instructions", Value::Null));
    r.insert(
        "max_output_tokens".into(),
        echo("max_output_tokens", Value::Null),
    );
    r.insert("max_tool_calls".into(), echo("max_tool_calls", Value::Null));
    r.insert("model".into(), json!(model));
    r.insert("output".into(), json!([]));
    r.insert(
        "parallel_tool_calls".into(),
        echo("parallel_tool_calls", json!(true)),
    );
    r.insert(
        "previous_response_id".into(),
        call.previous.clone().map_or(Value::Null, Value::String),
    );
    let reasoning = n.get("reasoning").and_then(Value::as_object);
    r.insert(
        "reasoning".into(),
        json!({
            "effort": reasoning.and_then(|o| o.get("effort")).cloned().unwrap_or(Value::Null),
            "summary": reasoning.and_then(|o| o.get("summary")).cloned().unwrap_or(Value::Null),
        }),
    );
    r.insert(
        "service_tier".into(),
        echo("service_tier", json!("default")),
    );
    r.insert("store".into(), json!(call.store));
    r.insert("temperature".into(), echo("temperature", json!(1.0)));
    r.insert(
        "text".into(),
        echo("text", json!({"format": {"type": "text"}})),
    );
    r.insert("tool_choice".into(), echo("tool_choice", json!("auto")));
    r.insert("tools".into(), echo("tools", json!([])));
    r.insert("top_logprobs".into(), echo("top_logprobs", json!(0)));
    r.insert("top_p".into(), echo("top_p", json!(1.0)));
    r.insert("truncation".into(), echo("truncation", json!("disabled")));
    r.insert("usage".into(), Value::Null);
    r.insert("user".into(), echo("user", Value::Null));
    r.insert("metadata".into(), echo("metadata", json!({})));
    r
}

/// Sets `status` and `incomplete_details` from a chat finish reason.
pub(super) fn finish(response: &mut Map<String, Value>, finish_reason: Option<&str>) {
    let (status, reason) = match finish_reason {
        Some("length") => ("incomplete", Some("max_output_tokens")),
        Some("content_filter") => ("incomplete", Some("content_filter")),
        _ => ("completed", None),
    };
    response.insert("status".into(), json!(status));
    if let Some(reason) = reason {
        response.insert("incomplete_details".into(), json!({"reason": reason}));
    }
}

/// Usage in the Responses API's names.
pub(super) fn usage(u: &Usage) -> Value {
    json!({
        "input_tokens": u.prompt_tokens,
        "input_tokens_details": {"cached_tokens": u.cached_tokens},
        "output_tokens": u.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
        "total_tokens": u.prompt_tokens + u.completion_tokens,
    })
}

/// A reasoning item: its summary text, and the provider's blocks as `encrypted_content`.
pub(super) fn reasoning_item(id: &str, text: &str, encrypted: Option<String>) -> Value {
    let summary = if text.is_empty() {
        json!([])
    } else {
        json!([{"type": "summary_text", "text": text}])
    };
    let mut item = json!({"type": "reasoning", "id": id, "summary": summary});
    if let Some(e) = encrypted {
        item["encrypted_content"] = json!(e);
    }
    item
}

/// An assistant message item (`output_text`, or a `refusal`).
pub(super) fn message_item(id: &str, text: &str, refusal: Option<&str>, status: &str) -> Value {
    let content = match refusal {
        Some(r) => json!([{"type": "refusal", "refusal": r}]),
        None => json!([{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]),
    };
    json!({"type": "message", "id": id, "status": status, "role": "assistant", "content": content})
}

/// A function call item.
pub(super) fn function_call_item(
    id: &str,
    call_id: &str,
    name: &str,
    arguments: &str,
    status: &str,
) -> Value {
    json!({
        "type": "function_call",
        "id": id,
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
        "status": status,
    })
}

/// One event's JSON: `type` and `sequence_number` first, then `fields` (an object).
pub fn event(kind: &str, sequence: u64, fields: &Value) -> String {
    let rest = fields.to_string();
    let inner = rest
        .strip_prefix('{')
        .and_then(|r| r.strip_suffix('}'))
        .unwrap_or("");
    let mut out = String::with_capacity(inner.len() + kind.len() + 40);
    out.push_str("{\"type\":");
    out.push_str(&Value::String(kind.into()).to_string());
    out.push_str(",\"sequence_number\":");
    out.push_str(&sequence.to_string());
    if !inner.is_empty() {
        out.push(',');
        out.push_str(inner);
    }
    out.push('}');
    out
}
