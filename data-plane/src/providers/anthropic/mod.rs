//! The Anthropic Messages adapter: the entry points `providers` calls, plus what the request,
//! response and stream halves share (usage, stop reasons, the thinking-state cache).
//!
//! Design choices (see `shared/docs/providers.md` §B2 and §B6 for the wire formats):
//! * **Allow-list.** The upstream body is built field by field; OpenAI parameters Anthropic cannot
//!   honour (`logit_bias`, `logprobs`, `top_logprobs`, `n > 1`, non-zero penalties, audio, legacy
//!   `functions`, `web_search_options`) are refused with a 400 naming the parameter; neutral
//!   values (`n: 1`, `logprobs: false`, a penalty of 0) are accepted. Any other top-level field that
//!   is not sent is listed in `UpstreamCall::dropped`, `seed` included (best-effort in OpenAI's
//!   own API, so its absence does not change what the answer means).
//! * **`max_tokens`** is required by Anthropic: `max_completion_tokens`, else `max_tokens`, else
//!   [`DEFAULT_MAX_TOKENS`] (plus the thinking budget when thinking is on, so the answer keeps room).
//! * **`temperature`** is clamped to Anthropic's range 0–1: OpenAI allows up to 2, and the nearest
//!   value Anthropic honours is 1. Refusing would end a whole fallback chain over a sampling hint.
//! * **`reasoning_effort`** becomes `thinking: {type: enabled, budget_tokens}` with a budget per
//!   effort (minimal 1024 … xhigh 24576), capped at half of a client-given `max_tokens` but never
//!   below Anthropic's minimum of 1024. With thinking on, Anthropic rejects `temperature` ≠ 1,
//!   `top_p` < 0.95, `top_k` and forced tool use, so those get a 400 here.
//! * **JSON mode** (`response_format` `json_object`/`json_schema`) is a forced tool named
//!   [`JSON_TOOL`] whose `input_schema` is the requested schema; its input alone comes back as the
//!   message `content` (a JSON string) with `finish_reason: stop` (text the model wrote beside it
//!   is dropped; a stream told `AnswerShape::json_only` holds text back until it knows). The name is reserved: a client
//!   tool may not use it. JSON mode cannot be combined with thinking (forced tool use).
//! * **Thinking state.** Answers expose thinking text as `reasoning_content` and the blocks with
//!   their signatures as `thinking_blocks` (LiteLLM's field: Anthropic's own block shapes; in a
//!   stream, all of them at once on the finish chunk's delta, so SDK delta accumulators that
//!   merge lists by `index` never see the field twice). The blocks are also kept in the [`ReasoningCache`] under the answer's tool-use ids. On a later
//!   request with thinking on, an assistant turn with `tool_calls` gets its blocks back: from its
//!   own `thinking_blocks` field if the client sent it, else from the cache. If the final assistant
//!   turn with tool calls still has none (e.g. it came from another provider), thinking is turned
//!   off for that request and `reasoning_effort` is reported as dropped, instead of a 400.
//! * **Streams** hold the first chunk back until there is content, so an `overloaded_error` that
//!   arrives right after `message_start` can still fall back to the next provider.

mod ids;
mod json_gate;
mod messages;
mod request;
mod response;
pub(crate) mod stream;
#[cfg(test)]
mod tests;
mod tools;
mod wire;

use axum::http::HeaderMap;
use serde_json::Value;

use super::reasoning_cache::ReasoningCache;
use super::{RequestCtx, ResponseCtx, Translated, UpstreamCall};
use crate::error::ApiError;
use crate::error::UpstreamError;

pub use stream::AnthropicStream;

/// The `anthropic-version` header every request carries.
pub const API_VERSION: &str = "2023-06-01";
/// `max_tokens` when the client sets none (every Claude model can produce this much).
pub const DEFAULT_MAX_TOKENS: u64 = 4096;
/// The tool that carries JSON-mode answers (reserved: client tools may not use this name).
pub const JSON_TOOL: &str = "json_response";

/// Builds the `POST /messages` request from an OpenAI chat request.
pub fn build_request(ctx: &RequestCtx<'_>) -> Result<UpstreamCall, ApiError> {
    request::build(ctx)
}

/// Maps a Messages answer to OpenAI's `chat.completion`.
pub fn translate_response(body: &[u8], ctx: &ResponseCtx) -> Result<Translated, UpstreamError> {
    response::translate(body, ctx)
}

/// Maps an Anthropic error answer (`{"type":"error","error":{"type","message"}}`).
pub fn map_error(status: u16, headers: &HeaderMap, body: &[u8]) -> UpstreamError {
    response::map_error(status, headers, body)
}

/// OpenAI's `finish_reason` for a `stop_reason`. `tool_calls` only if a real tool was called:
/// a JSON-mode answer ends with `tool_use` upstream but is plain content for the client.
pub(super) fn finish_reason(stop_reason: Option<&str>, called_tools: bool) -> &'static str {
    match stop_reason {
        Some("max_tokens" | "model_context_window_exceeded") => "length",
        Some("tool_use") if called_tools => "tool_calls",
        Some("refusal") => "content_filter",
        // end_turn, stop_sequence, pause_turn, a JSON-mode tool_use, and reasons added later.
        _ => "stop",
    }
}

/// What the client is told when Anthropic refused and gave no explanation.
pub(super) const REFUSAL_FALLBACK: &str = "The model declined to answer this request.";

/// The refusal text of a `refusal` stop: Anthropic's explanation when it gave one.
pub(super) fn refusal_text(stop_details: Option<&Value>) -> String {
    stop_details
        .and_then(|d| d.get("explanation"))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .unwrap_or(REFUSAL_FALLBACK)
        .to_string()
}

/// Keeps an answer's thinking blocks (signatures included) under each of its tool-use ids, so the
/// next request of the tool loop can send them back even if the client dropped them.
pub(super) fn remember_thinking(cache: &ReasoningCache, blocks: &[Value], tool_ids: &[String]) {
    if blocks.is_empty() {
        return;
    }
    cache.put_many(tool_ids, Value::Array(blocks.to_vec()));
}

/// The thinking text of thinking blocks, joined.
pub(super) fn reasoning_text(blocks: &[Value]) -> Option<String> {
    let text: String = blocks
        .iter()
        .filter_map(|b| b.get("thinking").and_then(Value::as_str))
        .collect();
    (!text.is_empty()).then_some(text)
}
