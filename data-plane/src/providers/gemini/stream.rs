//! The Gemini streaming state machine: `streamGenerateContent?alt=sse` events to OpenAI
//! `chat.completion.chunk`s. Each event is a whole `GenerateContentResponse` holding the next
//! parts of each candidate; there is no terminator, the upstream closing the connection is the
//! normal end and is only clean if every candidate has had its `finishReason`. Function calls go
//! out whole (id, name and complete arguments in one delta); `usageMetadata` is cumulative, so the
//! last one counts and becomes the `choices: []` usage chunk when the client asked for it.

use serde::Serialize;
use serde_json::Value;

use crate::error::UpstreamError;
use crate::providers::gemini::in_band_error;
use crate::providers::gemini::response::{CandidateState, Delta, block_reason, blocked_text};
use crate::providers::gemini::wire::{Candidate, GenerateResponse, UsageMetadata, logprobs};
use crate::providers::{AnswerShape, Flow, MAX_ECHOED, ResponseCtx, StreamTranslator};
use crate::telemetry::usage::Usage;
use crate::upstream::sse::SseEvent;

/// Most candidates (OpenAI `n`) one stream may carry.
const MAX_CANDIDATES: usize = 128;

/// See the module documentation.
pub struct GeminiStream {
    ctx: ResponseCtx,
    /// The `model` of every chunk: the first event's `modelVersion`, else the requested model.
    model: Option<String>,
    candidates: Vec<CandidateState>,
    usage: Option<Usage>,
    shape: AnswerShape,
}

/// An OpenAI `chat.completion.chunk`, serialised without building a JSON tree.
#[derive(Serialize)]
struct Chunk<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: &'a [Choice<'a>],
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<Value>,
}

#[derive(Serialize)]
struct Choice<'a> {
    index: u32,
    delta: DeltaOut<'a>,
    logprobs: Value,
    finish_reason: Option<&'static str>,
}

#[derive(Serialize, Default)]
struct DeltaOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_content: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    refusal: Option<&'a str>,
}

impl<'a> DeltaOut<'a> {
    /// The delta for what a candidate produced; the first one carries the role (and an empty
    /// `content` when it has nothing else, as OpenAI's first chunk does).
    fn of(delta: &'a Delta, first: bool) -> Self {
        let text = |s: &'a String| (!s.is_empty()).then_some(s.as_str());
        DeltaOut {
            role: first.then_some("assistant"),
            content: if first && delta.is_empty() {
                Some("")
            } else {
                text(&delta.content)
            },
            reasoning_content: text(&delta.reasoning),
            tool_calls: delta.calls.iter().map(|c| c.to_openai(true)).collect(),
            refusal: None,
        }
    }
}

impl GeminiStream {
    /// A fresh translator for one stream.
    #[cfg(test)]
    pub fn new(ctx: ResponseCtx) -> Self {
        Self::shaped(ctx, AnswerShape::default())
    }

    /// A fresh translator enforcing the request's [`AnswerShape`] (one tool call).
    pub fn shaped(ctx: ResponseCtx, shape: AnswerShape) -> Self {
        GeminiStream {
            ctx,
            model: None,
            candidates: Vec::new(),
            usage: None,
            shape,
        }
    }

    fn serialise(&self, choices: &[Choice<'_>], usage: Option<Value>) -> String {
        let chunk = Chunk {
            id: &self.ctx.id,
            object: "chat.completion.chunk",
            created: self.ctx.created,
            model: self.model.as_deref().unwrap_or(&self.ctx.model),
            choices,
            usage,
        };
        // Strings, numbers and string-keyed objects only: encoding cannot fail.
        serde_json::to_string(&chunk).unwrap_or_default()
    }

    /// One chunk with one choice.
    fn chunk(&self, index: u32, delta: DeltaOut<'_>, finish: Option<&'static str>) -> String {
        let choice = Choice {
            index,
            delta,
            logprobs: Value::Null,
            finish_reason: finish,
        };
        self.serialise(std::slice::from_ref(&choice), None)
    }

    /// The state of candidate `index`, created on first sight.
    fn slot(&mut self, index: u32) -> Result<usize, UpstreamError> {
        if let Some(at) = self.candidates.iter().position(|c| c.index == index) {
            return Ok(at);
        }
        if self.candidates.len() >= MAX_CANDIDATES {
            return Err(UpstreamError::Malformed(format!(
                "streamed more than {MAX_CANDIDATES} candidates"
            )));
        }
        self.candidates.push(CandidateState::shaped(
            index,
            self.shape.one_tool_call,
            self.ctx.cache.clone(),
        ));
        Ok(self.candidates.len() - 1)
    }

    /// A prompt Gemini refused outright: an empty refusal answer with `content_filter`.
    fn blocked(&mut self, reason: &str, out: &mut Vec<String>) -> Result<(), UpstreamError> {
        let at = self.slot(0)?;
        let state = &mut self.candidates[at];
        if state.finished {
            return Ok(());
        }
        state.finished = true;
        let first = !state.started;
        state.started = true;
        let text = blocked_text(reason);
        let delta = DeltaOut {
            role: first.then_some("assistant"),
            refusal: Some(&text),
            ..DeltaOut::default()
        };
        out.push(self.chunk(0, delta, None));
        out.push(self.chunk(0, DeltaOut::default(), Some("content_filter")));
        Ok(())
    }

    fn candidate(
        &mut self,
        position: usize,
        candidate: Candidate,
        out: &mut Vec<String>,
    ) -> Result<(), UpstreamError> {
        let index = candidate.index.unwrap_or(position as u32);
        let at = self.slot(index)?;
        let seed = &self.ctx.id;
        let state = &mut self.candidates[at];
        if state.finished {
            tracing::debug!("ignored Gemini parts after the candidate finished");
            return Ok(());
        }
        let mut delta = Delta::default();
        let parts = candidate.content.map(|c| c.parts).unwrap_or_default();
        state.absorb(parts, seed, &mut delta)?;
        let finish = match candidate.finish_reason.as_deref() {
            Some(reason) => Some(state.finish(reason, seed, &mut delta)?),
            None => None,
        };
        let first = !state.started;
        state.started = true;
        let logprobs = logprobs(candidate.logprobs_result.as_ref());
        if first || !delta.is_empty() || !logprobs.is_null() {
            let choice = Choice {
                index,
                delta: DeltaOut::of(&delta, first),
                logprobs,
                finish_reason: None,
            };
            out.push(self.serialise(std::slice::from_ref(&choice), None));
        }
        if let Some(reason) = finish {
            out.push(self.chunk(index, DeltaOut::default(), Some(reason)));
        }
        Ok(())
    }
}

impl StreamTranslator for GeminiStream {
    fn event(&mut self, event: SseEvent, out: &mut Vec<String>) -> Result<Flow, UpstreamError> {
        let data = event.data.trim();
        if data.is_empty() {
            return Ok(Flow::More);
        }
        let response: GenerateResponse = serde_json::from_str(data).map_err(|_| {
            UpstreamError::Malformed("sent a stream event that is not a Gemini answer".into())
        })?;
        if response.error.is_some() {
            return Err(in_band_error(data));
        }
        if self.model.is_none() {
            // Fixed by the first event, so every chunk names the same model; a long one is not
            // echoed, since every chunk would repeat it (see `MAX_ECHOED`).
            self.model = Some(match &response.model_version {
                Some(m) if m.len() <= MAX_ECHOED => m.clone(),
                _ => self.ctx.model.clone(),
            });
        }
        if let Some(usage) = response
            .usage_metadata
            .as_ref()
            .and_then(UsageMetadata::to_usage)
        {
            self.usage = Some(usage);
        }
        if let Some(reason) = block_reason(&response) {
            self.blocked(reason, out)?;
            return Ok(Flow::More);
        }
        for (position, candidate) in response.candidates.into_iter().enumerate() {
            self.candidate(position, candidate, out)?;
        }
        Ok(Flow::More)
    }

    fn end(&mut self, out: &mut Vec<String>) -> Result<(), UpstreamError> {
        if self.candidates.is_empty() || self.candidates.iter().any(|c| !c.finished) {
            return Err(UpstreamError::StreamBroken(
                "closed the stream before finishing its answer".into(),
            ));
        }
        if self.ctx.include_usage
            && let Some(usage) = self.usage
        {
            out.push(self.serialise(&[], Some(usage.to_openai())));
        }
        Ok(())
    }

    fn usage(&self) -> Option<Usage> {
        self.usage
    }
}
