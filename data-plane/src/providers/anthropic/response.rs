//! Maps Anthropic answers to OpenAI's shape: a whole `message` to a `chat.completion`, and an
//! error body to an [`UpstreamError`] whose code says whether retrying can help.

use axum::http::HeaderMap;
use serde_json::{Map, Value, json};

use crate::error::{UpstreamError, retry_after};
use crate::providers::anthropic::wire::{Block, ErrorEnvelope, Message};
use crate::providers::anthropic::{
    JSON_TOOL, finish_reason, reasoning_text, refusal_text, remember_thinking,
};
use crate::providers::{ResponseCtx, Translated};
use crate::telemetry::trace::ResponseFacts;

fn malformed() -> UpstreamError {
    UpstreamError::Malformed("answered with something that is not a Messages answer".into())
}

/// Maps a Messages answer to a `chat.completion` (see the `anthropic` module documentation).
pub(in crate::providers) fn translate(
    body: &[u8],
    ctx: &ResponseCtx,
) -> Result<Translated, UpstreamError> {
    let message: Message = serde_json::from_slice(body).map_err(|_| malformed())?;
    if message.kind != "message" {
        return Err(malformed());
    }
    let mut text = String::new();
    let mut thinking = Vec::new();
    let mut tool_calls = Vec::new();
    let mut tool_ids = Vec::new();
    let mut json: Option<String> = None;
    for block in message.content {
        match block {
            Block::Text { text: t } => text.push_str(&t),
            Block::Thinking {
                thinking: t,
                signature,
            } => thinking.push(json!({"type": "thinking", "thinking": t, "signature": signature})),
            Block::RedactedThinking { data } => {
                thinking.push(json!({"type": "redacted_thinking", "data": data}))
            }
            // JSON mode: the forced tool's input is the answer.
            Block::ToolUse { name, input, .. } if name == JSON_TOOL => {
                json.get_or_insert_with(String::new)
                    .push_str(&input.to_string());
            }
            Block::ToolUse { id, name, input } => {
                let arguments = match &input {
                    Value::Object(o) if !o.is_empty() => input.to_string(),
                    _ => "{}".to_string(),
                };
                tool_calls.push(json!({"id": id, "type": "function",
                    "function": {"name": name, "arguments": arguments}}));
                tool_ids.push(id);
            }
            Block::Other => {}
        }
    }
    if let Some(json) = json {
        // The content must be the JSON alone: text the model wrote beside the tool is dropped.
        text = json;
    }
    remember_thinking(&ctx.cache, &thinking, &tool_ids);
    let stop = message.stop_reason.as_deref();
    let refused = stop == Some("refusal");
    let mut msg = Map::new();
    msg.insert("role".into(), json!("assistant"));
    msg.insert(
        "content".into(),
        if text.is_empty() {
            Value::Null
        } else {
            Value::String(text)
        },
    );
    msg.insert(
        "refusal".into(),
        if refused {
            Value::String(refusal_text(message.stop_details.as_ref()))
        } else {
            Value::Null
        },
    );
    let called = !tool_calls.is_empty();
    if called {
        msg.insert("tool_calls".into(), Value::Array(tool_calls));
    }
    if let Some(reasoning) = reasoning_text(&thinking) {
        msg.insert("reasoning_content".into(), Value::String(reasoning));
    }
    if !thinking.is_empty() {
        msg.insert("thinking_blocks".into(), Value::Array(thinking));
    }
    let usage = message.usage.to_usage();
    let model = message.model.unwrap_or_else(|| ctx.model.clone());
    let id = message.id.unwrap_or_else(|| ctx.id.clone());
    let finish = finish_reason(stop, called);
    let facts = ResponseFacts::of(Some(&id), Some(&model), Some(finish));
    let completion = json!({
        "id": id,
        "object": "chat.completion",
        "created": ctx.created,
        "model": model,
        "choices": [{
            "index": 0,
            "message": msg,
            "logprobs": null,
            "finish_reason": finish,
        }],
        "usage": usage.to_openai(),
    });
    let body = serde_json::to_vec(&completion).map_err(|_| malformed())?;
    Ok(Translated {
        body,
        usage: Some(usage),
        facts,
    })
}

/// Maps an error status and body. The message is Anthropic's (it never quotes the key; the
/// upstream layer scrubs it regardless); an unreadable body gives the status alone.
pub(in crate::providers) fn map_error(
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
) -> UpstreamError {
    let parsed = serde_json::from_slice::<ErrorEnvelope>(body)
        .ok()
        .map(|e| e.error);
    let (code, message) = match parsed {
        Some(e) => (e.code(), e.message),
        None => (None, None),
    };
    UpstreamError::Status {
        status,
        code,
        message: message.unwrap_or_else(|| format!("HTTP {status}")),
        retry_after: retry_after(headers),
    }
}
