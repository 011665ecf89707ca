//! DeepSeek's quirks on top of the OpenAI protocol (providers.md §B5).
//!
//! * Requests come from DeepSeek's allow-list. `reasoning_effort` drives thinking mode:
//!   `none` → `thinking: {type: "disabled"}`; otherwise `thinking: {type: "enabled"}` with
//!   DeepSeek's effort (`minimal|low` → `low`, `medium|high` → `high`, `xhigh` → `max`), unless
//!   the client set `thinking` itself. In thinking mode `logprobs: true` is refused (DeepSeek
//!   400s on it); `n > 1` and `json_schema` outputs are refused (DeepSeek has neither); `seed`,
//!   `user`, `parallel_tool_calls` and other OpenAI-only fields are dropped and reported.
//! * Answers pass through unchanged: `reasoning_content` (message and delta) is DeepSeek's own
//!   field and the one OpenAI clients widely read; usage sits on the finish chunk and is handled
//!   like every OpenAI-protocol stream. They are *read* for two things: a finish reason of
//!   `insufficient_system_resource` is an error (503, retryable), and the reasoning of every
//!   turn that called tools is kept in [`ReasoningCache`] under its tool-call ids.
//! * Thinking-mode tool use requires every earlier assistant tool-call turn to carry its
//!   `reasoning_content` back (400 otherwise). Plain OpenAI clients drop it, so it is restored
//!   from the cache; a turn nobody has reasoning for (history from another provider) gets `""`,
//!   which DeepSeek accepts (recorded in
//!   `fixtures/deepseek/pydantic-ai__test_deepseek_deferred_capability_with_thinking.yaml`).
//! * Keep-alive: while a request is queued DeepSeek sends `: keep-alive` SSE comments, for up to
//!   ten minutes. The SSE decoder drops them (they are comments) but counts them in
//!   [`crate::upstream::sse::SseDecoder::lines_seen`]: an idle timer must count any line as activity, a
//!   first-token timer only a translated chunk.
//! * Errors are OpenAI-shaped: 402 insufficient balance is not retried and reaches the client as
//!   `insufficient_quota`; 503 is retried; 422 invalid parameters is a 400 for the client.

mod tap;

use serde_json::{Map, Value, json};

pub use tap::{ReasoningTap, observe_response};

use super::RequestCtx;
use super::openai::dialect::{self, Built, MessageKeys};
use super::reasoning_cache::ReasoningCache;
use crate::error::ApiError;
use crate::request::present;

/// Client fields DeepSeek takes as they are.
const FIELDS: &[&str] = &[
    "stream",
    "temperature",
    "top_p",
    "stop",
    "presence_penalty",
    "frequency_penalty",
    "response_format",
    "tools",
    "tool_choice",
    "logprobs",
    "top_logprobs",
    "thinking",
];

/// Client fields this module translates itself (never reported as dropped).
const MAPPED: &[&str] = &[
    "model",
    "messages",
    "max_tokens",
    "max_completion_tokens",
    "stream_options",
    "reasoning_effort",
    "n",
];

const MESSAGE_KEYS: MessageKeys = MessageKeys {
    system: &["content", "name"],
    user: &["content", "name"],
    assistant: &[
        "content",
        "name",
        "tool_calls",
        "reasoning_content",
        "prefix",
    ],
    tool: &["content", "tool_call_id"],
};

/// The [`ReasoningCache`] key for a DeepSeek tool-call id (other adapters share the cache).
pub fn cache_key(tool_call_id: &str) -> String {
    format!("deepseek:{tool_call_id}")
}

/// Builds DeepSeek's request body from the client's OpenAI-shaped one.
pub fn adapt_request(ctx: &RequestCtx<'_>) -> Result<Built, ApiError> {
    let client = ctx.body;
    let effort = present(client, "reasoning_effort").and_then(Value::as_str);
    let explicit = present(client, "thinking")
        .and_then(|t| t.get("type"))
        .and_then(Value::as_str);
    let thinking = match (explicit, effort) {
        (Some(kind), _) => kind != "disabled",
        (None, Some(effort)) => effort != "none",
        // `deepseek-chat` is the non-thinking alias; reasoner and newer models think by default.
        (None, None) => !ctx.model.contains("deepseek-chat"),
    };
    if thinking {
        dialect::refuse_logprobs(client, "DeepSeek in thinking mode")?;
    }
    refuse_unsupported(client)?;
    let mut built = dialect::allow_list(client, FIELDS, MAPPED);
    let body = &mut built.body;
    body.insert("model".into(), Value::from(ctx.model));
    dialect::max_tokens(client, body);
    if ctx.stream {
        // Asked for even when the client did not, so every request is recorded.
        body.insert("stream_options".into(), json!({"include_usage": true}));
    }
    match (effort, explicit) {
        (None, _) => {}
        (Some("none"), None) => {
            body.insert("thinking".into(), json!({"type": "disabled"}));
        }
        (Some("none"), Some(_)) => built.dropped.push("reasoning_effort".into()),
        (Some(effort), explicit) => {
            let effort = match effort {
                "minimal" | "low" => "low",
                "xhigh" => "max",
                _ => "high",
            };
            body.insert("reasoning_effort".into(), Value::from(effort));
            if explicit.is_none() {
                body.insert("thinking".into(), json!({"type": "enabled"}));
            }
        }
    }
    body.insert("messages".into(), messages(client, thinking, ctx.cache));
    Ok(built)
}

/// Refuses what DeepSeek cannot honour and a client would notice the lack of.
fn refuse_unsupported(client: &Map<String, Value>) -> Result<(), ApiError> {
    if present(client, "n")
        .and_then(Value::as_u64)
        .is_some_and(|n| n > 1)
    {
        return Err(ApiError::invalid(
            "n",
            "DeepSeek answers with one choice per request; send `n: 1` or route to another provider.",
        ));
    }
    let format = present(client, "response_format")
        .and_then(|f| f.get("type"))
        .and_then(Value::as_str);
    if format == Some("json_schema") {
        return Err(ApiError::invalid(
            "response_format.type",
            "DeepSeek supports `text` and `json_object` outputs, not `json_schema`.",
        ));
    }
    Ok(())
}

/// The conversation with DeepSeek's message keys, text-only part arrays as plain strings, and
/// each assistant tool-call turn's reasoning restored.
fn messages(client: &Map<String, Value>, thinking: bool, cache: &ReasoningCache) -> Value {
    let Some(list) = client.get("messages").and_then(Value::as_array) else {
        return Value::Array(Vec::new());
    };
    let out = list
        .iter()
        .map(|m| {
            let mut m = dialect::clean_message(m, &MESSAGE_KEYS);
            if let Value::Object(fields) = &mut m {
                let text = match fields.get("content") {
                    Some(Value::Array(parts)) => dialect::text_only(parts),
                    _ => None,
                };
                if let Some(text) = text {
                    fields.insert("content".into(), Value::from(text));
                }
                restore_reasoning(fields, thinking, cache);
            }
            m
        })
        .collect();
    Value::Array(out)
}

/// Puts back the `reasoning_content` of an assistant tool-call turn that came without it.
fn restore_reasoning(message: &mut Map<String, Value>, thinking: bool, cache: &ReasoningCache) {
    if message.get("role").and_then(Value::as_str) != Some("assistant") {
        return;
    }
    let Some(Value::Array(calls)) = message.get("tool_calls") else {
        return;
    };
    if calls.is_empty()
        || message
            .get("reasoning_content")
            .and_then(Value::as_str)
            .is_some_and(|r| !r.is_empty())
    {
        return;
    }
    let cached = calls
        .iter()
        .filter_map(|c| c.get("id").and_then(Value::as_str))
        .find_map(|id| cache.get(&cache_key(id)));
    match cached {
        Some(reasoning) => {
            message.insert("reasoning_content".into(), reasoning);
        }
        None if thinking && !message.contains_key("reasoning_content") => {
            message.insert("reasoning_content".into(), Value::from(""));
        }
        None => {}
    }
}

#[cfg(test)]
mod tests;
