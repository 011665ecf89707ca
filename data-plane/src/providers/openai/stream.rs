//! An OpenAI-protocol stream: chunks relayed as they come, usage noted, the usage-only chunk shown
//! only to clients that asked for it, in-band errors ended with an error.

use serde::Deserialize;
use serde_json::Value;

use crate::error::UpstreamError;
use crate::providers::{Flow, Protocol, ResponseCtx, StreamTranslator, deepseek, mistral};
use crate::telemetry::usage::Usage;
use crate::upstream::sse::SseEvent;

use super::error::in_band_error;
use super::response::Peek;

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
