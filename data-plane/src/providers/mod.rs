//! Provider adapters, one per wire protocol. Each builds the upstream request from an allow-list of
//! fields, maps the answer back to OpenAI's shape, and runs a streaming state machine from upstream
//! SSE events to OpenAI chunks. The OpenAI protocol (and Mistral, DeepSeek, compatible servers) is a
//! passthrough with per-provider quirks.

pub mod anthropic;
pub mod deepseek;
pub mod embeddings;
pub mod gemini;
pub mod mistral;
pub mod openai;
pub mod reasoning_cache;
mod shared;
#[cfg(test)]
mod tests;

use axum::http::HeaderMap;
use serde_json::{Map, Value};

use std::sync::Arc;

use crate::error::ApiError;
use crate::error::UpstreamError;
use crate::providers::reasoning_cache::ReasoningCache;
use crate::telemetry::trace::ResponseFacts;
use crate::telemetry::usage::Usage;
pub use crate::upstream::relay::{Flow, StreamTranslator};

/// The wire protocol (and quirks) of a provider, from its `kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    OpenAi,
    Mistral,
    DeepSeek,
    Compatible,
    Anthropic,
    Gemini,
}

impl Protocol {
    pub const ALL: [Protocol; 6] = [
        Protocol::OpenAi,
        Protocol::Mistral,
        Protocol::DeepSeek,
        Protocol::Compatible,
        Protocol::Anthropic,
        Protocol::Gemini,
    ];

    /// From a provider's `kind`, once, when the snapshot is compiled.
    pub fn from_kind(kind: &str) -> Option<Protocol> {
        Some(match kind {
            "openai" => Protocol::OpenAi,
            "mistral" => Protocol::Mistral,
            "deepseek" => Protocol::DeepSeek,
            "openai-compatible" => Protocol::Compatible,
            "anthropic" => Protocol::Anthropic,
            "gemini" => Protocol::Gemini,
            _ => return None,
        })
    }

    /// Whether the provider speaks OpenAI's chat completions protocol (unknown fields pass through).
    pub fn is_openai_like(self) -> bool {
        !matches!(self, Protocol::Anthropic | Protocol::Gemini)
    }

    /// The request path when it does not depend on the model (Gemini's does).
    pub fn fixed_path(self) -> Option<&'static str> {
        match self {
            Protocol::Anthropic => Some("/messages"),
            Protocol::Gemini => None,
            _ => Some("/chat/completions"),
        }
    }

    /// The header that carries the credential and how its value is formed.
    pub fn auth_header(self, secret: &str) -> (&'static str, String) {
        match self {
            Protocol::Anthropic => ("x-api-key", secret.to_string()),
            Protocol::Gemini => ("x-goog-api-key", secret.to_string()),
            _ => ("authorization", format!("Bearer {secret}")),
        }
    }
}

/// What an adapter needs to build one upstream request.
#[derive(Debug)]
pub struct RequestCtx<'a> {
    /// The validated client body (OpenAI shape, unknown fields included).
    pub body: &'a Map<String, Value>,
    /// The model name to send upstream.
    pub model: &'a str,
    pub stream: bool,
    /// What earlier answers left for later turns (thinking blocks, signatures, reasoning).
    pub cache: &'a ReasoningCache,
}

/// One upstream HTTP request, relative to the provider's base URL.
#[derive(Debug, Clone, PartialEq)]
pub struct UpstreamCall {
    /// Appended to the base URL, e.g. `/chat/completions` or `/models/x:streamGenerateContent?alt=sse`.
    pub path: String,
    pub body: Vec<u8>,
    /// Extra headers besides the credential and content type (e.g. `anthropic-version`).
    pub headers: Vec<(&'static str, String)>,
    /// Top-level client fields that were not sent (reported to the client in a header).
    pub dropped: Vec<String>,
    /// What the answer translators must enforce because the upstream could not be told.
    pub shape: AnswerShape,
}

/// Rules for the answer that the adapter could not send upstream, decided from the client's
/// request when it is built and enforced when the answer is translated: pass
/// [`UpstreamCall::shape`] to [`translate_shaped`] and [`stream_translator_shaped`]. The default
/// asks for nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AnswerShape {
    /// `parallel_tool_calls: false` on a provider without that switch (Gemini): every choice
    /// keeps its first tool call only.
    pub one_tool_call: bool,
    /// JSON mode answered through a forced tool (Anthropic): the content is the tool's input
    /// alone, so a stream holds text back until it knows whether the JSON tool follows. (A whole
    /// answer shows the JSON tool, so it is enforced there with or without this flag.)
    pub json_only: bool,
}

/// What an adapter needs to shape answers.
#[derive(Debug, Clone)]
pub struct ResponseCtx {
    /// `chatcmpl-...` id used when the provider's answer has none that fits.
    pub id: String,
    /// Unix seconds for `created`.
    pub created: u64,
    /// The upstream model name (used when the provider's answer does not name one).
    pub model: String,
    /// Whether the client asked for the usage chunk (`stream_options.include_usage`).
    pub include_usage: bool,
    /// Where answers leave what a later turn must send back (the data plane's own cache).
    pub cache: Arc<ReasoningCache>,
}

/// A translated non-streaming answer: OpenAI `chat.completion` JSON bytes and the usage in it.
#[derive(Debug, Clone)]
pub struct Translated {
    pub body: Vec<u8>,
    pub usage: Option<Usage>,
    /// The answer's id, model (`gen_ai.response.model`) and first finish reason, as read or
    /// written by the translator.
    pub facts: ResponseFacts,
}

/// Longest upstream message id or model name a stream translator echoes on every chunk; a longer
/// one is replaced by the gateway's own. Each chunk repeats it, so its size would multiply by the
/// number of chunks (a few kilobytes of name and thousands of one-token deltas make gigabytes).
pub(crate) const MAX_ECHOED: usize = 256;

/// Builds the upstream request.
pub fn build(protocol: Protocol, ctx: &RequestCtx<'_>) -> Result<UpstreamCall, ApiError> {
    match protocol {
        Protocol::Anthropic => anthropic::build_request(ctx),
        Protocol::Gemini => gemini::build_request(ctx),
        _ => openai::build_request(protocol, ctx),
    }
}

/// Maps a 2xx non-streaming body to OpenAI's `chat.completion`.
pub fn translate_response(
    protocol: Protocol,
    body: &[u8],
    ctx: &ResponseCtx,
) -> Result<Translated, UpstreamError> {
    match protocol {
        Protocol::Anthropic => anthropic::translate_response(body, ctx),
        Protocol::Gemini => gemini::translate_response(body, ctx),
        _ => openai::translate_response(protocol, body, ctx),
    }
}

/// Like [`translate_response`], taking the upstream bytes (an OpenAI answer that needs no change
/// is handed back as it came, without a copy) and enforcing the request's [`AnswerShape`].
pub fn translate_shaped(
    protocol: Protocol,
    body: Vec<u8>,
    ctx: &ResponseCtx,
    shape: AnswerShape,
) -> Result<Translated, UpstreamError> {
    match protocol {
        Protocol::OpenAi | Protocol::Compatible => openai::pass_through(body),
        Protocol::Gemini => gemini::translate_shaped(&body, ctx, shape),
        _ => translate_response(protocol, &body, ctx),
    }
}

/// A fresh streaming state machine.
pub fn stream_translator(protocol: Protocol, ctx: ResponseCtx) -> Box<dyn StreamTranslator> {
    stream_translator_shaped(protocol, ctx, AnswerShape::default())
}

/// A fresh streaming state machine enforcing the request's [`AnswerShape`].
pub fn stream_translator_shaped(
    protocol: Protocol,
    ctx: ResponseCtx,
    shape: AnswerShape,
) -> Box<dyn StreamTranslator> {
    match protocol {
        Protocol::Anthropic => Box::new(anthropic::AnthropicStream::shaped(ctx, shape)),
        Protocol::Gemini => Box::new(gemini::GeminiStream::shaped(ctx, shape)),
        _ => Box::new(openai::OpenAiStream::new(protocol, ctx)),
    }
}

/// Maps an error status and body (read up to 64 KiB) to an [`UpstreamError`].
pub fn upstream_error(
    protocol: Protocol,
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
) -> UpstreamError {
    match protocol {
        Protocol::Anthropic => anthropic::map_error(status, headers, body),
        Protocol::Gemini => gemini::map_error(status, headers, body),
        _ => openai::map_error(status, headers, body),
    }
}
