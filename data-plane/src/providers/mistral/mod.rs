//! Mistral's quirks on top of the OpenAI protocol (providers.md §B4).
//!
//! Requests are built from Mistral's allow-list, because Mistral answers 422 "Extra inputs are
//! not permitted" for anything else:
//! * `seed` → `random_seed`; `max_completion_tokens` → `max_tokens`;
//! * `tool_choice: "required"` → `"any"`; `"auto"`, `"none"` and a named function
//!   (`{"type":"function","function":{"name"}}`) are Mistral's own; `parallel_tool_calls` is too;
//! * `reasoning_effort` → Mistral's adjustable reasoning (`none|minimal` → `"none"`, anything
//!   else → `"high"`); Magistral models always reason and do not take it;
//! * `stream_options` is never sent: usage comes on the finish chunk anyway, and the client still
//!   gets OpenAI's usage chunk when it asked for one;
//! * `logprobs: true` is refused (400) since Mistral returns none; `user`, `logit_bias`, `store`,
//!   `service_tier` and other OpenAI-only fields are dropped and reported in
//!   `UpstreamCall::dropped`;
//! * messages keep only the keys Mistral knows (`developer` → `system`; `refusal`,
//!   `annotations`, `reasoning_content` and the like are left out), and every tool-call id is
//!   mapped to nine alphanumerics (see [`ids`]).
//!
//! Answers are mapped back in [`answer`].

mod answer;
mod ids;

use serde_json::{Map, Value, json};

pub use answer::{StreamFix, adapt_response, needs_edit};
pub use ids::IdMap;
#[cfg(test)]
pub use ids::is_valid as is_valid_id;

use super::RequestCtx;
use super::openai::dialect::{self, Built, MessageKeys};
use crate::error::ApiError;
use crate::request::present;

/// Client fields Mistral takes as they are.
const FIELDS: &[&str] = &[
    "stream",
    "temperature",
    "top_p",
    "stop",
    "random_seed",
    "response_format",
    "tools",
    "presence_penalty",
    "frequency_penalty",
    "n",
    "safe_prompt",
    "parallel_tool_calls",
    "prediction",
    "prompt_mode",
    "metadata",
    // Not in the published request model, but accepted by api.mistral.ai (recorded in
    // `fixtures/mistral/pydantic-ai__test_mistral_history_uses_prompt_cache.yaml`).
    "prompt_cache_key",
];

/// Client fields this module translates itself (never reported as dropped).
const MAPPED: &[&str] = &[
    "model",
    "messages",
    "seed",
    "max_tokens",
    "max_completion_tokens",
    "stream_options",
    "tool_choice",
    "reasoning_effort",
];

const MESSAGE_KEYS: MessageKeys = MessageKeys {
    system: &["content"],
    user: &["content"],
    assistant: &["content", "tool_calls", "prefix"],
    tool: &["content", "tool_call_id", "name"],
};

/// Builds Mistral's request body from the client's OpenAI-shaped one.
pub fn adapt_request(ctx: &RequestCtx<'_>) -> Result<Built, ApiError> {
    let client = ctx.body;
    dialect::refuse_logprobs(client, "Mistral")?;
    let mut built = dialect::allow_list(client, FIELDS, MAPPED);
    let body = &mut built.body;
    body.insert("model".into(), Value::from(ctx.model));
    if let Some(seed) = present(client, "seed") {
        body.entry("random_seed").or_insert_with(|| seed.clone());
    }
    dialect::max_tokens(client, body);
    if let Some(choice) = present(client, "tool_choice") {
        body.insert("tool_choice".into(), tool_choice(choice));
    }
    if let Some(effort) = present(client, "reasoning_effort").and_then(Value::as_str) {
        if ctx.model.starts_with("magistral") {
            built.dropped.push("reasoning_effort".into());
        } else {
            let effort = if matches!(effort, "none" | "minimal") {
                "none"
            } else {
                "high"
            };
            body.insert("reasoning_effort".into(), Value::from(effort));
        }
    }
    body.insert("messages".into(), messages(client));
    Ok(built)
}

/// OpenAI's `tool_choice` in Mistral's words.
fn tool_choice(choice: &Value) -> Value {
    match choice {
        Value::String(s) if s == "required" => Value::from("any"),
        Value::Object(o) => match o.get("function").and_then(|f| f.get("name")) {
            Some(name) => json!({"type": "function", "function": {"name": name}}),
            None => choice.clone(),
        },
        other => other.clone(),
    }
}

/// The conversation with Mistral's message keys and tool-call ids.
fn messages(client: &Map<String, Value>) -> Value {
    let Some(list) = client.get("messages").and_then(Value::as_array) else {
        return Value::Array(Vec::new());
    };
    let ids = IdMap::for_messages(list);
    let out = list
        .iter()
        .map(|m| {
            let mut m = dialect::clean_message(m, &MESSAGE_KEYS);
            if let Some(Value::Array(calls)) = m.get_mut("tool_calls") {
                for call in calls.iter_mut() {
                    *call = tool_call(call);
                }
            }
            ids.apply(&mut m);
            m
        })
        .collect();
    Value::Array(out)
}

/// An assistant tool call with only the keys Mistral's `ToolCall` has.
fn tool_call(call: &Value) -> Value {
    let mut out = Map::new();
    for key in ["id", "type", "function"] {
        if let Some(v) = call.get(key).filter(|v| !v.is_null()) {
            out.insert(key.into(), v.clone());
        }
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests;
