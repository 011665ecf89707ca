//! Anthropic's wire types: the `message` answer, stream events, `usage` and error bodies, read
//! with serde (unknown fields ignored, strings borrowed from the event where possible).

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::Value;

use crate::telemetry::usage::Usage;

/// `usage.output_tokens_details`, when Anthropic breaks the output down.
#[derive(Debug, Deserialize, Default, Clone, Copy, PartialEq, Eq)]
pub(in crate::providers) struct OutputDetails {
    #[serde(default)]
    pub thinking_tokens: Option<u64>,
}

/// Anthropic's `usage`. Every field is optional because stream events carry subsets of it.
#[derive(Debug, Deserialize, Default, Clone, Copy, PartialEq, Eq)]
pub(in crate::providers) struct WireUsage {
    #[serde(default)]
    pub input_tokens: Option<u64>,
    #[serde(default)]
    pub output_tokens: Option<u64>,
    #[serde(default)]
    pub cache_creation_input_tokens: Option<u64>,
    #[serde(default)]
    pub cache_read_input_tokens: Option<u64>,
    #[serde(default)]
    pub output_tokens_details: Option<OutputDetails>,
}

impl WireUsage {
    /// Streams report cumulative usage: each field's latest value wins.
    pub fn update(&mut self, newer: &WireUsage) {
        let keep = |old: &mut Option<u64>, new: Option<u64>| {
            if new.is_some() {
                *old = new;
            }
        };
        keep(&mut self.input_tokens, newer.input_tokens);
        keep(&mut self.output_tokens, newer.output_tokens);
        keep(
            &mut self.cache_creation_input_tokens,
            newer.cache_creation_input_tokens,
        );
        keep(
            &mut self.cache_read_input_tokens,
            newer.cache_read_input_tokens,
        );
        if newer.output_tokens_details.is_some() {
            self.output_tokens_details = newer.output_tokens_details;
        }
    }

    /// In OpenAI's terms: Anthropic's `input_tokens` excludes cache reads and writes. The sum
    /// saturates: counts come from the upstream, and an absurd one must not panic or wrap.
    pub fn to_usage(self) -> Usage {
        let cache_read = self.cache_read_input_tokens.unwrap_or(0);
        Usage {
            prompt_tokens: self
                .input_tokens
                .unwrap_or(0)
                .saturating_add(cache_read)
                .saturating_add(self.cache_creation_input_tokens.unwrap_or(0)),
            completion_tokens: self.output_tokens.unwrap_or(0),
            cached_tokens: cache_read,
            reasoning_tokens: self
                .output_tokens_details
                .and_then(|d| d.thinking_tokens)
                .unwrap_or(0),
        }
    }
}

/// A content block of a `message`.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(in crate::providers) enum Block {
    Text {
        text: String,
    },
    Thinking {
        thinking: String,
        #[serde(default)]
        signature: String,
    },
    RedactedThinking {
        data: String,
    },
    ToolUse {
        id: String,
        name: String,
        #[serde(default)]
        input: Value,
    },
    /// Server tool blocks, citations' companions and block types added later.
    #[serde(other)]
    Other,
}

/// A whole non-streaming answer (`type: message`).
#[derive(Deserialize)]
pub(in crate::providers) struct Message {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub content: Vec<Block>,
    #[serde(default)]
    pub stop_reason: Option<String>,
    #[serde(default)]
    pub stop_details: Option<Value>,
    #[serde(default)]
    pub usage: WireUsage,
}

/// Any stream event: the fields of every event type, each optional.
#[derive(Deserialize)]
pub(in crate::providers) struct Event<'a> {
    #[serde(rename = "type", borrow)]
    pub kind: Cow<'a, str>,
    #[serde(default)]
    pub index: Option<usize>,
    #[serde(default, borrow)]
    pub delta: Option<Delta<'a>>,
    #[serde(default)]
    pub content_block: Option<Value>,
    #[serde(default)]
    pub message: Option<Head>,
    #[serde(default)]
    pub usage: Option<WireUsage>,
    #[serde(default)]
    pub error: Option<ErrorBody>,
}

/// A `content_block_delta.delta` or a `message_delta.delta`.
#[derive(Deserialize)]
pub(in crate::providers) struct Delta<'a> {
    #[serde(rename = "type", default, borrow)]
    pub kind: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub text: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub thinking: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub signature: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub partial_json: Option<Cow<'a, str>>,
    #[serde(default)]
    pub stop_reason: Option<String>,
    #[serde(default)]
    pub stop_details: Option<Value>,
}

/// The `message` of `message_start`.
#[derive(Deserialize)]
pub(in crate::providers) struct Head {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub usage: Option<WireUsage>,
}

/// An error answer: `{"type":"error","error":{...},"request_id"}`.
#[derive(Deserialize)]
pub(in crate::providers) struct ErrorEnvelope {
    pub error: ErrorBody,
}

/// Anthropic's `error` object (also the payload of an in-band `error` stream event).
#[derive(Deserialize)]
pub(in crate::providers) struct ErrorBody {
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub details: Option<Value>,
}

impl ErrorBody {
    /// The code the retry logic reads: `error.type`, except a spend-limit 429, recognised by
    /// `error.details.error_code`, which no retry can fix.
    pub fn code(&self) -> Option<String> {
        let detail = self
            .details
            .as_ref()
            .and_then(|d| d.get("error_code"))
            .and_then(Value::as_str);
        match detail {
            Some(c @ "enforced_spend_limit_reached") => Some(c.to_string()),
            _ => self.kind.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by fuzzing (`stream_anthropic`, `response_anthropic`): the prompt-token sum
    /// overflowed (a panic with overflow checks, a wrapped count without).
    #[test]
    fn absurd_counts_saturate() {
        let usage: WireUsage = serde_json::from_str(
            r#"{"input_tokens":9,"cache_read_input_tokens":18446744073709551615,"cache_creation_input_tokens":1}"#,
        )
        .unwrap();
        let u = usage.to_usage();
        assert_eq!(u.prompt_tokens, u64::MAX);
        assert_eq!(u.cached_tokens, u64::MAX);
    }
}
