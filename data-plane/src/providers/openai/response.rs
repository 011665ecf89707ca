//! A whole OpenAI-protocol answer: checked to be a JSON object and passed through, its usage read.

use std::borrow::Cow;

use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::error::UpstreamError;
use crate::providers::{Protocol, ResponseCtx, Translated, deepseek, mistral};
use crate::telemetry::trace::ResponseFacts;
use crate::telemetry::usage::{OpenAiUsage, Usage};

#[derive(Deserialize)]
pub(super) struct Peek<'a> {
    #[serde(borrow, default)]
    pub(super) choices: Option<Vec<ChoicePeek<'a>>>,
    #[serde(default)]
    pub(super) usage: Option<OpenAiUsage>,
    #[serde(default)]
    pub(super) error: Option<IgnoredAny>,
    /// `"error"` on Mistral's flat error objects.
    #[serde(borrow, default)]
    pub(super) object: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub(super) model: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub(super) id: Option<Cow<'a, str>>,
}

/// A choice as [`Peek`] reads it: why it finished, its message skipped.
#[derive(Deserialize)]
pub(super) struct ChoicePeek<'a> {
    #[serde(borrow, default)]
    finish_reason: Option<Cow<'a, str>>,
    #[allow(dead_code)]
    #[serde(default)]
    message: Option<IgnoredAny>,
}

impl Peek<'_> {
    /// The answer's id, model and first finish reason.
    fn facts(&self) -> ResponseFacts {
        let finish = self
            .choices
            .iter()
            .flatten()
            .find_map(|c| c.finish_reason.as_deref());
        ResponseFacts::of(self.id.as_deref(), self.model.as_deref(), finish)
    }
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
    let facts = peek.facts();
    let usage = peek.usage.map(Usage::from);
    match protocol {
        Protocol::Mistral => {
            return mistral::adapt_response(trimmed, usage).map(|t| Translated { facts, ..t });
        }
        Protocol::DeepSeek => deepseek::observe_response(trimmed, &ctx.cache)?,
        _ => {}
    }
    Ok(Translated {
        body: trimmed.to_vec(),
        usage,
        facts,
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
    let facts = peek.facts();
    let usage = peek.usage.map(Usage::from);
    Ok(Translated { body, usage, facts })
}

fn malformed() -> UpstreamError {
    UpstreamError::Malformed("answered with something that is not a chat completion".into())
}
