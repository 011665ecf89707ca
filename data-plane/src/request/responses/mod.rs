//! `POST /v1/responses` bodies: validated, their earlier turns (`previous_response_id`) joined in,
//! the texts the firewall reads, and the chat form ([`to_chat`]) that translated providers and the
//! gateway's own routing, limits and records use.

mod to_chat;

pub use to_chat::{ENCRYPTED_PREFIX, call_signature, encode_state};
#[cfg(test)]
mod tests;

use serde_json::{Map, Value};

use super::parse::{chat_body, integer_in, object_with_model};
use super::{ChatRequest, Operation, present};
use crate::error::ApiError;

/// What a Responses request carries besides its chat form.
#[derive(Debug, Clone)]
pub struct ResponsesCall {
    /// The Responses body a native provider gets: earlier turns joined in, the firewall's input
    /// rules applied.
    pub native: Map<String, Value>,
    /// Why there is no faithful chat form (a hosted tool, an item only OpenAI keeps): what every
    /// translated provider answers.
    pub untranslatable: Option<ApiError>,
    /// `store` (default true): the answer is kept for `previous_response_id` and `GET`.
    pub store: bool,
    /// `include` asks for `reasoning.encrypted_content`.
    pub encrypted_reasoning: bool,
    /// The conversation as input items: the joined earlier turns, then this request's input.
    pub input: Vec<Value>,
    /// `previous_response_id` as the client sent it.
    pub previous: Option<String>,
}

/// Parses and validates a Responses body (the joining and the chat form come later).
pub fn parse_responses(bytes: &[u8]) -> Result<Map<String, Value>, ApiError> {
    let (body, _model) = object_with_model(bytes, "`model` and `input`")?;
    match present(&body, "input") {
        Some(Value::String(_)) => {}
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                if !item.is_object() {
                    return Err(ApiError::invalid(
                        format!("input[{i}]"),
                        "each input item must be an object.",
                    ));
                }
            }
        }
        Some(_) => {
            return Err(ApiError::invalid(
                "input",
                "`input` must be a string or an array of input items.",
            ));
        }
        None if present(&body, "previous_response_id").is_some() => {}
        None => {
            return Err(ApiError::invalid(
                "input",
                "Missing required parameter: `input`.",
            ));
        }
    }
    for (field, kind) in [
        ("instructions", "string"),
        ("previous_response_id", "string"),
        ("stream", "boolean"),
        ("store", "boolean"),
        ("parallel_tool_calls", "boolean"),
        ("background", "boolean"),
        ("metadata", "object"),
        ("text", "object"),
        ("reasoning", "object"),
        ("tools", "array"),
        ("include", "array"),
    ] {
        let ok = match present(&body, field) {
            None => true,
            Some(v) => match kind {
                "string" => v.is_string(),
                "boolean" => v.is_boolean(),
                "object" => v.is_object(),
                _ => v.is_array(),
            },
        };
        if !ok {
            return Err(ApiError::invalid(
                field,
                format!("`{field}` must be a {kind}."),
            ));
        }
    }
    integer_in(&body, "max_output_tokens", 16, i64::from(u32::MAX))?;
    for (field, max) in [("temperature", 2.0), ("top_p", 1.0)] {
        if let Some(v) = present(&body, field)
            && !v.as_f64().is_some_and(|x| (0.0..=max).contains(&x))
        {
            return Err(ApiError::invalid(
                field,
                format!("`{field}` must be a number between 0 and {max}."),
            ));
        }
    }
    let tools = present(&body, "tools").and_then(Value::as_array);
    for (i, tool) in tools.into_iter().flatten().enumerate() {
        let Some(kind) = tool.get("type").and_then(Value::as_str) else {
            return Err(ApiError::invalid(
                format!("tools[{i}].type"),
                "each tool needs a string `type`.",
            ));
        };
        if kind == "function" && !tool.get("name").is_some_and(Value::is_string) {
            return Err(ApiError::invalid(
                format!("tools[{i}].name"),
                format!("Missing required parameter: 'tools[{i}].name'."),
            ));
        }
    }
    if present(&body, "background") == Some(&Value::Bool(true)) {
        return Err(ApiError::unsupported_parameter(
            "background",
            "Background responses are not supported by TokenRouter; send the request without `background` (or stream it).",
        ));
    }
    if present(&body, "conversation").is_some() {
        return Err(ApiError::unsupported_parameter(
            "conversation",
            "Conversations are not supported by TokenRouter; continue with `previous_response_id`.",
        ));
    }
    Ok(body)
}

/// `previous_response_id`, when given.
pub fn previous_id(body: &Map<String, Value>) -> Option<&str> {
    present(body, "previous_response_id").and_then(Value::as_str)
}

/// This request's `input` as a list of items (a string is one user message).
pub fn input_items(body: &Map<String, Value>) -> Vec<Value> {
    match present(body, "input") {
        Some(Value::String(s)) => vec![serde_json::json!({
            "type": "message",
            "role": "user",
            "content": s,
        })],
        Some(Value::Array(items)) => items.clone(),
        _ => Vec::new(),
    }
}

/// Puts the earlier turns (a stored response's input and output items) before this request's
/// input; the provider then needs no `previous_response_id`.
pub fn join_earlier(body: &mut Map<String, Value>, mut earlier: Vec<Value>) {
    earlier.extend(input_items(body));
    body.insert("input".into(), Value::Array(earlier));
    body.remove("previous_response_id");
}

/// Every text the request carries to the provider, for the firewall's input rules: the
/// instructions, each message's text, tool-call arguments and outputs, and the tools'
/// descriptions.
pub fn texts(body: &mut Map<String, Value>) -> Vec<&mut String> {
    let mut out = Vec::new();
    for (field, value) in body.iter_mut() {
        match (field.as_str(), value) {
            ("instructions" | "input", Value::String(s)) => out.push(s),
            ("input", Value::Array(items)) => {
                for item in items.iter_mut().filter_map(Value::as_object_mut) {
                    item_texts(item, &mut out);
                }
            }
            ("tools", Value::Array(tools)) => {
                for tool in tools.iter_mut().filter_map(Value::as_object_mut) {
                    if let Some(Value::String(s)) = tool.get_mut("description") {
                        out.push(s);
                    }
                }
            }
            _ => {}
        }
    }
    out
}

fn item_texts<'a>(item: &'a mut Map<String, Value>, out: &mut Vec<&'a mut String>) {
    for (field, value) in item.iter_mut() {
        match (field.as_str(), value) {
            ("content" | "output" | "arguments", Value::String(s)) => out.push(s),
            ("content" | "output" | "summary", Value::Array(parts)) => {
                for part in parts.iter_mut().filter_map(Value::as_object_mut) {
                    if let Some(Value::String(s)) = part.get_mut("text") {
                        out.push(s);
                    }
                }
            }
            _ => {}
        }
    }
}

/// The Responses API's name for a parameter of the chat form (for a translated provider's
/// refusal): `response_format` is `text.format`, `messages[..]` is `input`, and so on.
pub fn responses_param(chat: &str) -> Option<String> {
    let (head, rest) = chat.split_at(chat.find(['.', '[']).unwrap_or(chat.len()));
    let renamed = match head {
        "response_format" => "text.format".to_string(),
        "max_tokens" | "max_completion_tokens" => "max_output_tokens".to_string(),
        "reasoning_effort" => "reasoning.effort".to_string(),
        "messages" => return Some("input".to_string()),
        "tools" => return Some(chat.replace(".function.", ".")),
        "tool_choice" => return Some("tool_choice".to_string()),
        _ => return None,
    };
    Some(format!("{renamed}{rest}"))
}

/// The request, ready to route: its chat form in `body`, the Responses body beside it. `raw_len`
/// is the client's body size (the token estimate).
pub fn into_request(
    native: Map<String, Value>,
    input: Vec<Value>,
    previous: Option<String>,
    raw_len: usize,
) -> Result<ChatRequest, ApiError> {
    let stream = present(&native, "stream") == Some(&Value::Bool(true));
    let (mut chat, mut untranslatable) = to_chat::convert(&native, &input);
    if let Some(id) = &previous
        && native.contains_key("previous_response_id")
    {
        // Not stored here (OpenAI may still hold it): only a native provider can continue it.
        untranslatable = Some(ApiError::previous_response_not_found(id));
    }
    if untranslatable.is_some()
        && chat
            .get("messages")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty)
    {
        // Only a native provider can answer; routing still needs a conversation to look at.
        chat.insert(
            "messages".into(),
            serde_json::json!([{"role": "user", "content": ""}]),
        );
    }
    let mut request = chat_body(chat, raw_len)?;
    request.operation = Operation::Responses;
    request.stream = stream;
    // A translated stream's `response.completed` carries usage, so the chat translators must
    // report it.
    request.include_usage = true;
    let store = present(&native, "store") != Some(&Value::Bool(false));
    let encrypted_reasoning = present(&native, "include")
        .and_then(Value::as_array)
        .is_some_and(|i| i.iter().any(|v| v == "reasoning.encrypted_content"));
    request.responses = Some(std::sync::Arc::new(ResponsesCall {
        native,
        untranslatable,
        store,
        encrypted_reasoning,
        input,
        previous,
    }));
    Ok(request)
}
