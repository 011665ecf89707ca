//! The OpenAI protocol: a passthrough that keeps every field the provider returns, plus the quirks
//! of Mistral, DeepSeek and other compatible servers. Usage is always requested upstream and only
//! shown to the client when it asked for it. OpenAI and compatible servers get the client's body
//! as it is; Mistral and DeepSeek get one built from their allow-lists (see [`dialect`]).

pub mod dialect;
#[cfg(test)]
mod tests;

use std::borrow::Cow;

use axum::http::HeaderMap;
use serde::de::IgnoredAny;
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{
    AnswerShape, Flow, Protocol, RequestCtx, ResponseCtx, StreamTranslator, Translated,
    UpstreamCall, deepseek, mistral,
};
use crate::error::ApiError;
use crate::error::{UpstreamError, retry_after};
use crate::telemetry::usage::{OpenAiUsage, Usage};
use crate::upstream::sse::SseEvent;

/// Builds the upstream body: the client's fields with the upstream model, asking for usage.
pub fn build_request(protocol: Protocol, ctx: &RequestCtx<'_>) -> Result<UpstreamCall, ApiError> {
    let encoded = match protocol {
        Protocol::Mistral => mistral::adapt_request(ctx)
            .and_then(|b| encode(&b.body).map(|bytes| (bytes, b.dropped))),
        Protocol::DeepSeek => deepseek::adapt_request(ctx)
            .and_then(|b| encode(&b.body).map(|bytes| (bytes, b.dropped))),
        _ => {
            // Ask OpenAI for usage even when the client did not, so every request is recorded.
            let passthrough = Passthrough {
                body: ctx.body,
                model: ctx.model,
                ask_usage: ctx.stream && protocol == Protocol::OpenAi,
            };
            encode(&passthrough).map(|bytes| (bytes, Vec::new()))
        }
    };
    let (body, dropped) = encoded?;
    Ok(UpstreamCall {
        path: "/chat/completions".into(),
        body,
        headers: Vec::new(),
        dropped,
        shape: AnswerShape::default(),
    })
}

fn encode(body: &impl Serialize) -> Result<Vec<u8>, ApiError> {
    serde_json::to_vec(body)
        .map_err(|_| ApiError::bad_request("invalid_json", "The request could not be encoded."))
}

/// OpenAI itself and compatible servers get every client field, unknown ones included, with the
/// upstream model name (and `stream_options.include_usage` when asked) written in on the fly, so
/// the body is serialised straight from the parsed request without copying it.
struct Passthrough<'a> {
    body: &'a Map<String, Value>,
    model: &'a str,
    ask_usage: bool,
}

impl Serialize for Passthrough<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        let mut saw_options = false;
        map.serialize_entry("model", self.model)?;
        for (key, value) in self.body {
            match key.as_str() {
                "model" => {}
                "stream_options" if self.ask_usage => {
                    saw_options = true;
                    map.serialize_entry(key, &WithUsage(value.as_object()))?;
                }
                _ => map.serialize_entry(key, value)?,
            }
        }
        if self.ask_usage && !saw_options {
            map.serialize_entry("stream_options", &WithUsage(None))?;
        }
        map.end()
    }
}

/// A `stream_options` object with `include_usage: true`.
struct WithUsage<'a>(Option<&'a Map<String, Value>>);

impl Serialize for WithUsage<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        for (key, value) in self
            .0
            .into_iter()
            .flatten()
            .filter(|(k, _)| *k != "include_usage")
        {
            map.serialize_entry(key, value)?;
        }
        map.serialize_entry("include_usage", &true)?;
        map.end()
    }
}

#[derive(Deserialize)]
struct Peek<'a> {
    #[serde(default)]
    choices: Option<Vec<IgnoredAny>>,
    #[serde(default)]
    usage: Option<OpenAiUsage>,
    #[serde(default)]
    error: Option<IgnoredAny>,
    /// `"error"` on Mistral's flat error objects.
    #[serde(borrow, default)]
    object: Option<Cow<'a, str>>,
}

/// Checks the answer is a JSON object and reads its usage; the bytes go to the client unchanged.
/// The body must be UTF-8 (JSON text is, RFC 8259 §8.1): parsing into [`Peek`] skips the strings
/// it ignores without looking at their bytes, so it would pass anything inside them through.
pub fn translate_response(
    protocol: Protocol,
    body: &[u8],
    ctx: &ResponseCtx,
) -> Result<Translated, UpstreamError> {
    let trimmed = body.trim_ascii();
    let text = std::str::from_utf8(trimmed).map_err(|_| malformed())?;
    let peek: Peek = match trimmed.first() {
        Some(b'{') => serde_json::from_str(text).map_err(|_| malformed())?,
        _ => return Err(malformed()),
    };
    if peek.choices.is_none() {
        return Err(malformed());
    }
    let usage = peek.usage.map(Usage::from);
    match protocol {
        Protocol::Mistral => return mistral::adapt_response(trimmed, usage),
        Protocol::DeepSeek => deepseek::observe_response(trimmed, &ctx.cache)?,
        _ => {}
    }
    Ok(Translated {
        body: trimmed.to_vec(),
        usage,
    })
}

/// The OpenAI passthrough of an owned answer: checked and read like [`translate_response`], then
/// returned without copying.
pub fn pass_through(body: Vec<u8>) -> Result<Translated, UpstreamError> {
    let trimmed = body.trim_ascii();
    if trimmed.first() != Some(&b'{') {
        return Err(malformed());
    }
    let peek: Peek = serde_json::from_slice(trimmed).map_err(|_| malformed())?;
    if peek.choices.is_none() {
        return Err(malformed());
    }
    let usage = peek.usage.map(Usage::from);
    Ok(Translated { body, usage })
}

fn malformed() -> UpstreamError {
    UpstreamError::Malformed("answered with something that is not a chat completion".into())
}

/// Relays OpenAI-protocol chunks, editing only the few that need it.
pub struct OpenAiStream {
    protocol: Protocol,
    ctx: ResponseCtx,
    usage: Option<Usage>,
    /// Usage that arrived on a chunk with choices (Mistral, DeepSeek) and still owes the client
    /// OpenAI's separate usage chunk.
    owed_usage_chunk: bool,
    /// `id`, `created`, `model` of the stream, for a synthesised usage chunk.
    head: Option<(Value, Value, Value)>,
    /// Mistral: content parts, tool-call indices, finish reasons.
    mistral: mistral::StreamFix,
    /// DeepSeek: reasoning kept for the next turn, resource errors.
    deepseek: deepseek::ReasoningTap,
}

impl OpenAiStream {
    pub fn new(protocol: Protocol, ctx: ResponseCtx) -> Self {
        OpenAiStream {
            protocol,
            ctx,
            usage: None,
            owed_usage_chunk: false,
            head: None,
            mistral: Default::default(),
            deepseek: Default::default(),
        }
    }

    fn usage_chunk(&self) -> Option<String> {
        let usage = self.usage?;
        let (id, created, model) = self.head.clone()?;
        let chunk = serde_json::json!({
            "id": id, "object": "chat.completion.chunk", "created": created, "model": model,
            "choices": [], "usage": usage.to_openai(),
        });
        Some(chunk.to_string())
    }
}

impl StreamTranslator for OpenAiStream {
    fn event(&mut self, event: SseEvent, out: &mut Vec<String>) -> Result<Flow, UpstreamError> {
        // JSON's whitespace only: `str::trim` also strips what JSON does not allow around a value
        // (form feed, vertical tab, Unicode spaces), and the untrimmed event is what is relayed.
        let data = event
            .data
            .trim_matches(|c| matches!(c, ' ' | '\t' | '\n' | '\r'));
        if data == "[DONE]" {
            if self.owed_usage_chunk && self.ctx.include_usage {
                out.extend(self.usage_chunk());
            }
            return Ok(Flow::Done);
        }
        if !data.starts_with('{') {
            tracing::debug!("dropped a non-JSON upstream stream event");
            return Ok(Flow::More);
        }
        let Ok(peek) = serde_json::from_str::<Peek>(data) else {
            tracing::debug!("dropped a malformed upstream stream event");
            return Ok(Flow::More);
        };
        if peek.error.is_some()
            || (peek.choices.is_none() && peek.object.as_deref() == Some("error"))
        {
            return Err(in_band_error(data));
        }
        let usage_only = peek.choices.as_ref().is_some_and(Vec::is_empty);
        let needs_edit = self.protocol == Protocol::Mistral && mistral::needs_edit(data);
        let has_usage = peek.usage.is_some();
        if let Some(u) = peek.usage {
            self.usage = Some(Usage::from(u));
        }
        if self.protocol == Protocol::DeepSeek {
            self.deepseek.observe(data, &self.ctx.cache)?;
        }
        if usage_only {
            self.owed_usage_chunk = false;
            if self.ctx.include_usage {
                out.push(event.data);
            }
            return Ok(Flow::More);
        }
        if !has_usage && !needs_edit {
            if self.head.is_none() {
                self.remember_head(data);
            }
            out.push(event.data);
            return Ok(Flow::More);
        }
        // Rare chunks (usage on a finish chunk, Mistral's tool calls and content parts) are
        // edited as JSON.
        let Ok(Value::Object(mut chunk)) = serde_json::from_str::<Value>(data) else {
            return Ok(Flow::More);
        };
        if self.head.is_none() {
            self.remember_head(data);
        }
        if has_usage {
            chunk.remove("usage");
            self.owed_usage_chunk = true;
        }
        if needs_edit {
            self.mistral.edit(&mut chunk)?;
        }
        out.push(Value::Object(chunk).to_string());
        Ok(Flow::More)
    }

    fn end(&mut self, _out: &mut Vec<String>) -> Result<(), UpstreamError> {
        Err(UpstreamError::StreamBroken(
            "ended the stream without finishing it".into(),
        ))
    }

    fn usage(&self) -> Option<Usage> {
        self.usage
    }
}

impl OpenAiStream {
    fn remember_head(&mut self, data: &str) {
        #[derive(Deserialize)]
        struct Head {
            #[serde(default)]
            id: Value,
            #[serde(default)]
            created: Value,
            #[serde(default)]
            model: Value,
        }
        if let Ok(h) = serde_json::from_str::<Head>(data) {
            self.head = Some((h.id, h.created, h.model));
        }
    }
}

#[derive(Deserialize)]
struct ErrorEnvelope {
    error: ErrorBody,
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    code: Option<Value>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
}

fn parse_error(body: &[u8]) -> (Option<String>, Option<String>) {
    let Ok(envelope) = serde_json::from_slice::<ErrorEnvelope>(body) else {
        return (None, None);
    };
    let e = envelope.error;
    let code = match e.code {
        Some(Value::String(s)) => Some(s),
        _ => e.kind,
    };
    (code, e.message)
}

/// An in-band `{"error": ...}` (or Mistral's flat `{"object":"error",...}`) stream event.
fn in_band_error(data: &str) -> UpstreamError {
    let (code, message) = error_fields(data.as_bytes());
    UpstreamError::InBand {
        code,
        message: message.unwrap_or_else(|| "failed mid-stream".into()),
    }
}

/// Maps an OpenAI-style error answer (DeepSeek's too), Mistral's flat
/// `{"object":"error","message","type","code"}` (whose `message` is an object with `detail` for
/// validation errors) and a bare FastAPI-style `{"detail":[...]}`.
pub fn map_error(status: u16, headers: &HeaderMap, body: &[u8]) -> UpstreamError {
    let (code, message) = error_fields(body);
    UpstreamError::Status {
        status,
        code,
        message: message.unwrap_or_else(|| format!("HTTP {status}")),
        retry_after: retry_after(headers),
    }
}

/// The code and message of any of the error shapes [`map_error`] reads.
fn error_fields(body: &[u8]) -> (Option<String>, Option<String>) {
    let (code, message) = parse_error(body);
    if message.is_some() {
        return (code, message);
    }
    let Ok(Value::Object(o)) = serde_json::from_slice::<Value>(body) else {
        return (code, None);
    };
    let message = match o.get("message") {
        Some(Value::String(m)) => Some(m.clone()),
        Some(Value::Object(m)) => m.get("detail").and_then(render_detail),
        _ => o.get("detail").and_then(render_detail),
    };
    let code = o.get("type").and_then(Value::as_str).map(str::to_string);
    (code, message)
}

/// Validation details (`[{loc, msg, input}]`) as `body.user: Extra inputs are not permitted`,
/// leaving out `input`: it quotes what the client sent, which can be a secret.
fn render_detail(detail: &Value) -> Option<String> {
    let items = match detail {
        Value::String(s) => return Some(s.clone()),
        Value::Array(items) => items,
        _ => return None,
    };
    let rendered: Vec<String> = items
        .iter()
        .filter_map(|item| {
            let msg = item.get("msg")?.as_str()?;
            let loc: Vec<String> = item
                .get("loc")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|p| p.as_str().map_or_else(|| p.to_string(), str::to_string))
                .collect();
            Some(if loc.is_empty() {
                msg.to_string()
            } else {
                format!("{}: {msg}", loc.join("."))
            })
        })
        .collect();
    (!rendered.is_empty()).then(|| rendered.join("; "))
}
