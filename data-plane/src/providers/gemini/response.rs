//! A Gemini `GenerateContentResponse` in OpenAI's terms: the per-candidate state machine shared
//! by whole answers and streams (text, `thought` text as `reasoning_content`, function calls with
//! synthesized ids, Vertex's streamed `partialArgs`, thought signatures), finish reasons, blocked
//! prompts, and the non-streaming `chat.completion`.

use std::sync::Arc;

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::error::UpstreamError;
use crate::providers::gemini::args::apply_partial;
use crate::providers::gemini::wire::{
    FunctionCall, GenerateResponse, Part, UsageMetadata, logprobs,
};
use crate::providers::gemini::{call_id, hex_digest, remember_call, text_key};
use crate::providers::reasoning_cache::ReasoningCache;
use crate::providers::{AnswerShape, ResponseCtx, Translated};

/// A complete function call, ready for the client.
#[derive(Debug, Clone)]
pub(in crate::providers) struct ToolCall {
    /// OpenAI's `index` of the call within its choice.
    pub index: u32,
    pub id: String,
    pub name: String,
    pub arguments: String,
    pub signature: Option<String>,
}

impl ToolCall {
    /// The OpenAI tool call (with `index` in stream deltas); the signature rides along in
    /// `extra_content.google.thought_signature`, as Google's OpenAI-compatible endpoint does.
    pub fn to_openai(&self, with_index: bool) -> Value {
        let mut call = json!({
            "id": self.id, "type": "function",
            "function": { "name": self.name, "arguments": self.arguments },
        });
        if with_index {
            call["index"] = self.index.into();
        }
        if let Some(signature) = &self.signature {
            call["extra_content"] = json!({ "google": { "thought_signature": signature } });
        }
        call
    }
}

/// What one candidate produced from some parts.
#[derive(Debug, Default)]
pub(in crate::providers) struct Delta {
    pub content: String,
    pub reasoning: String,
    pub calls: Vec<ToolCall>,
}

impl Delta {
    /// Whether the parts produced nothing for the client.
    pub fn is_empty(&self) -> bool {
        self.content.is_empty() && self.reasoning.is_empty() && self.calls.is_empty()
    }
}

/// A function call whose arguments are still streaming in.
pub(in crate::providers) struct Pending {
    name: String,
    pub args: Value,
    signature: Option<String>,
    /// Argument bytes received so far (bounded).
    pub size: usize,
}

/// The state of one candidate (OpenAI choice) across the parts of an answer or a stream.
pub(in crate::providers) struct CandidateState {
    pub index: u32,
    /// Tool calls completed so far (the next call's OpenAI `index`).
    pub calls: u32,
    pending: Option<Pending>,
    /// Digest of the answer text, the key of a signature Gemini put on text.
    text: Sha256,
    text_len: usize,
    text_signature: Option<String>,
    /// The role delta went out (streams).
    pub started: bool,
    pub finished: bool,
    /// `parallel_tool_calls: false`: calls after the first are left out.
    one_call: bool,
    /// Where calls and signatures are remembered for the next turn.
    cache: Arc<ReasoningCache>,
}

impl CandidateState {
    /// The state of candidate `index` before its first part.
    pub fn new(index: u32, cache: Arc<ReasoningCache>) -> Self {
        CandidateState {
            cache,
            index,
            calls: 0,
            pending: None,
            text: Sha256::new(),
            text_len: 0,
            text_signature: None,
            started: false,
            finished: false,
            one_call: false,
        }
    }

    /// The state of candidate `index`, keeping only its first call if `one_call`.
    pub fn shaped(index: u32, one_call: bool, cache: Arc<ReasoningCache>) -> Self {
        CandidateState {
            one_call,
            ..CandidateState::new(index, cache)
        }
    }

    /// Adds parts of this candidate; `seed` (the response id) makes tool-call ids.
    pub fn absorb(
        &mut self,
        parts: Vec<Part>,
        seed: &str,
        delta: &mut Delta,
    ) -> Result<(), UpstreamError> {
        for part in parts {
            if let Some(call) = part.function_call {
                self.call(call, part.thought_signature, seed, delta)?;
                continue;
            }
            if part.thought_signature.is_some() {
                self.text_signature = part.thought_signature;
            }
            match part.text {
                Some(text) if part.thought => delta.reasoning.push_str(&text),
                Some(text) => {
                    self.text.update(text.as_bytes());
                    self.text_len += text.len();
                    delta.content.push_str(&text);
                }
                None => tracing::debug!("ignored a Gemini part that is neither text nor a call"),
            }
        }
        Ok(())
    }

    fn call(
        &mut self,
        call: FunctionCall,
        signature: Option<String>,
        seed: &str,
        delta: &mut Delta,
    ) -> Result<(), UpstreamError> {
        if let Some(name) = call.name {
            self.flush(seed, delta);
            let args = match call.args {
                Some(args @ Value::Object(_)) => args,
                _ => Value::Object(Map::new()),
            };
            self.pending = Some(Pending {
                name,
                args,
                signature,
                size: 0,
            });
        } else if let (Some(pending), Some(signature)) = (self.pending.as_mut(), signature) {
            pending.signature.get_or_insert(signature);
        }
        if !call.partial_args.is_empty() {
            let Some(pending) = self.pending.as_mut() else {
                return Err(UpstreamError::Malformed(
                    "streamed function-call arguments without a function call".into(),
                ));
            };
            for arg in call.partial_args {
                apply_partial(pending, arg)?;
            }
        }
        if !call.will_continue {
            self.flush(seed, delta);
        }
        Ok(())
    }

    /// Completes the pending call, if any.
    fn flush(&mut self, seed: &str, delta: &mut Delta) {
        let Some(pending) = self.pending.take() else {
            return;
        };
        if self.one_call && self.calls > 0 {
            // The client asked for one call at most: later ones are left out (not remembered
            // either, since the client never sees their ids).
            tracing::debug!("left out a Gemini function call after the first");
            return;
        }
        let index = self.calls;
        let id = call_id(seed, self.index, index);
        self.calls += 1;
        remember_call(
            &self.cache,
            &id,
            &pending.name,
            pending.signature.as_deref(),
        );
        delta.calls.push(ToolCall {
            index,
            id,
            name: pending.name,
            arguments: pending.args.to_string(),
            signature: pending.signature,
        });
    }

    /// The candidate ended with Gemini's `reason`: completes a pending call, stores a signature
    /// Gemini put on the text, and gives OpenAI's `finish_reason`.
    pub fn finish(
        &mut self,
        reason: &str,
        seed: &str,
        delta: &mut Delta,
    ) -> Result<&'static str, UpstreamError> {
        self.flush(seed, delta);
        self.finished = true;
        if let Some(signature) = self.text_signature.take()
            && self.text_len > 0
        {
            let digest = hex_digest(std::mem::take(&mut self.text));
            self.cache
                .put(&text_key(&digest), json!({ "signature": signature }));
        }
        finish_reason(reason, self.calls > 0)
    }
}

/// Gemini's `finishReason` in OpenAI's terms. An unusable function call is an error: answering
/// `stop` with nothing in it would hide the failure.
pub(in crate::providers) fn finish_reason(
    reason: &str,
    called: bool,
) -> Result<&'static str, UpstreamError> {
    const FILTERS: &[&str] = &["SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED", "SPII"];
    match reason {
        "MAX_TOKENS" => Ok("length"),
        "MALFORMED_FUNCTION_CALL" | "UNEXPECTED_TOOL_CALL" | "TOO_MANY_TOOL_CALLS" => {
            Err(UpstreamError::Malformed(format!(
                "ended its answer with `{reason}` (the model produced an unusable function call)"
            )))
        }
        r if FILTERS.iter().any(|f| r.contains(f)) => Ok("content_filter"),
        _ if called => Ok("tool_calls"),
        _ => Ok("stop"),
    }
}

/// Why Gemini blocked the prompt, when it answered with no candidate because of it.
pub(in crate::providers) fn block_reason(response: &GenerateResponse) -> Option<&str> {
    response
        .prompt_feedback
        .as_ref()?
        .block_reason
        .as_deref()
        .filter(|_| response.candidates.is_empty())
}

/// The refusal text shown for a blocked prompt.
pub(in crate::providers) fn blocked_text(reason: &str) -> String {
    format!("Gemini blocked the prompt ({reason}).")
}

fn message(delta: Delta) -> Value {
    let content = if delta.content.is_empty() && !delta.calls.is_empty() {
        Value::Null
    } else {
        Value::String(delta.content)
    };
    let mut message = json!({ "role": "assistant", "content": content, "refusal": null });
    if !delta.reasoning.is_empty() {
        message["reasoning_content"] = Value::String(delta.reasoning);
    }
    if !delta.calls.is_empty() {
        let calls: Vec<Value> = delta.calls.iter().map(|c| c.to_openai(false)).collect();
        message["tool_calls"] = Value::Array(calls);
    }
    message
}

fn malformed(why: &str) -> UpstreamError {
    UpstreamError::Malformed(why.into())
}

/// Maps a non-streaming answer to OpenAI's `chat.completion`.
pub fn translate_response(body: &[u8], ctx: &ResponseCtx) -> Result<Translated, UpstreamError> {
    translate_shaped(body, ctx, AnswerShape::default())
}

/// Like [`translate_response`], enforcing the request's [`AnswerShape`] (one tool call).
pub fn translate_shaped(
    body: &[u8],
    ctx: &ResponseCtx,
    shape: AnswerShape,
) -> Result<Translated, UpstreamError> {
    let response: GenerateResponse = serde_json::from_slice(body.trim_ascii())
        .map_err(|_| malformed("answered with something that is not a Gemini answer"))?;
    if response.error.is_some() {
        return Err(malformed("answered with an error instead of an answer"));
    }
    let usage = response
        .usage_metadata
        .as_ref()
        .and_then(UsageMetadata::to_usage);
    let mut choices = Vec::with_capacity(response.candidates.len().max(1));
    if let Some(reason) = block_reason(&response) {
        let message =
            json!({ "role": "assistant", "content": null, "refusal": blocked_text(reason) });
        choices.push(json!({ "index": 0, "message": message, "logprobs": null, "finish_reason": "content_filter" }));
    } else if response.candidates.is_empty() {
        return Err(malformed("answered without any candidate"));
    }
    for (position, candidate) in response.candidates.into_iter().enumerate() {
        let index = candidate.index.unwrap_or(position as u32);
        let mut state = CandidateState::shaped(index, shape.one_tool_call, ctx.cache.clone());
        let mut delta = Delta::default();
        let parts = candidate.content.map(|c| c.parts).unwrap_or_default();
        state.absorb(parts, &ctx.id, &mut delta)?;
        let reason = candidate.finish_reason.as_deref().unwrap_or("STOP");
        let finish = state.finish(reason, &ctx.id, &mut delta)?;
        choices.push(json!({
            "index": index, "message": message(delta),
            "logprobs": logprobs(candidate.logprobs_result.as_ref()), "finish_reason": finish,
        }));
    }
    let model = response.model_version.unwrap_or_else(|| ctx.model.clone());
    let first_finish = choices
        .first()
        .and_then(|c| c["finish_reason"].as_str().map(str::to_string));
    let facts = crate::telemetry::trace::ResponseFacts::of(
        Some(&ctx.id),
        Some(&model),
        first_finish.as_deref(),
    );
    let mut out = json!({
        "id": ctx.id, "object": "chat.completion", "created": ctx.created, "model": model,
        "choices": choices,
    });
    if let Some(usage) = usage {
        out["usage"] = usage.to_openai();
    }
    let body = serde_json::to_vec(&out).map_err(|_| malformed("could not be re-encoded"))?;
    Ok(Translated { body, usage, facts })
}
