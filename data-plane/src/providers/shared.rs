//! Helpers the translating adapters (Anthropic, Gemini) share: OpenAI's `stop` as a list, and a
//! tool call's `arguments` string as the JSON object those providers take.

use serde_json::{Map, Value, json};

use crate::error::ApiError;
use crate::request::present;

/// OpenAI's `stop` (one string or a list) as a list of stop sequences; `None` when unset or empty.
pub(crate) fn stop_sequences(body: &Map<String, Value>) -> Option<Value> {
    match present(body, "stop") {
        Some(Value::String(s)) => Some(json!([s])),
        Some(Value::Array(list)) if !list.is_empty() => Some(Value::Array(list.clone())),
        _ => None,
    }
}

/// A tool call's `arguments` (a JSON object encoded as a string; empty means none) as the object
/// `provider` takes; anything else is the client's 400 naming `param`.
pub(crate) fn tool_arguments(arguments: &str, param: &str, why: &str) -> Result<Value, ApiError> {
    if arguments.trim().is_empty() {
        return Ok(Value::Object(Map::new()));
    }
    match serde_json::from_str::<Value>(arguments) {
        Ok(v @ Value::Object(_)) => Ok(v),
        _ => Err(ApiError::invalid(
            format!("{param}.function.arguments"),
            format!("must be a JSON object encoded as a string{why}"),
        )),
    }
}
