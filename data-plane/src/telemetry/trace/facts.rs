//! What an OpenAI-format answer says of itself (its id, the model that answered, why it
//! finished), read from the translated answer or stream chunks: the model for the metrics, all
//! of it (and the captured content, when the operator opts in) for the attempt's span.

use std::borrow::Cow;

use serde::Deserialize;
use serde::de::IgnoredAny;

use super::Answer;
use crate::telemetry::usage::Usage;

/// Longest id, model or finish reason kept (a provider's value is not ours to trust).
const MAX_FACT: usize = 256;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ResponseFacts {
    pub id: Option<String>,
    pub model: Option<String>,
    pub finish_reason: Option<String>,
    /// `gen_ai.output.messages`, when content is captured.
    pub output_messages: Option<String>,
    /// The first chunk has been read (it names the answer, or nothing will).
    head_read: bool,
}

#[derive(Deserialize)]
struct Head<'a> {
    #[serde(borrow, default)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    model: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    choices: Vec<Choice<'a>>,
}

#[derive(Deserialize)]
struct Choice<'a> {
    #[serde(borrow, default)]
    finish_reason: Option<Cow<'a, str>>,
    #[allow(dead_code)]
    #[serde(default)]
    message: Option<IgnoredAny>,
}

fn kept(s: Option<Cow<'_, str>>) -> Option<String> {
    s.filter(|s| !s.is_empty() && s.len() <= MAX_FACT)
        .map(Cow::into_owned)
}

impl ResponseFacts {
    /// What a translator read or wrote of its answer (each value kept only when present and at
    /// most 256 bytes long).
    pub fn of(id: Option<&str>, model: Option<&str>, finish_reason: Option<&str>) -> ResponseFacts {
        ResponseFacts {
            id: kept(id.map(Cow::Borrowed)),
            model: kept(model.map(Cow::Borrowed)),
            finish_reason: kept(finish_reason.map(Cow::Borrowed)),
            ..ResponseFacts::default()
        }
    }

    /// Reads a whole `chat.completion` (anything unreadable reads as nothing).
    pub fn read(body: &[u8]) -> ResponseFacts {
        let Ok(head) = serde_json::from_slice::<Head<'_>>(body) else {
            return ResponseFacts::default();
        };
        ResponseFacts {
            id: kept(head.id),
            model: kept(head.model),
            finish_reason: kept(head.choices.into_iter().find_map(|c| c.finish_reason)),
            ..ResponseFacts::default()
        }
    }

    /// Takes in one `chat.completion.chunk`: the first names the answer, a later one its finish
    /// reason. Later chunks are only looked at when `finish_reasons` is asked for, and then only
    /// scanned for the finish-reason field.
    pub fn absorb_chunk(&mut self, chunk: &str, finish_reasons: bool) {
        let first = !self.head_read;
        let finishes = finish_reasons && chunk.contains("\"finish_reason\":\"");
        if !first && !finishes {
            return;
        }
        self.head_read = true;
        let read = ResponseFacts::read(chunk.as_bytes());
        if first {
            self.id = read.id;
            self.model = read.model;
        }
        if read.finish_reason.is_some() {
            self.finish_reason = read.finish_reason;
        }
    }

    /// The span's view of the answer.
    pub fn answer(&self, usage: Option<Usage>, incomplete: bool) -> Answer<'_> {
        Answer {
            usage,
            response_id: self.id.as_deref(),
            response_model: self.model.as_deref(),
            finish_reason: self.finish_reason.as_deref(),
            output_messages: self.output_messages.as_deref(),
            incomplete,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_completion_names_itself() {
        let f = ResponseFacts::read(
            br#"{"id":"chatcmpl-1","model":"gpt-4o-2024-08-06","choices":[{"index":0,"message":{"content":"hi"},"finish_reason":"stop"}]}"#,
        );
        assert_eq!(f.id.as_deref(), Some("chatcmpl-1"));
        assert_eq!(f.model.as_deref(), Some("gpt-4o-2024-08-06"));
        assert_eq!(f.finish_reason.as_deref(), Some("stop"));
    }

    #[test]
    fn a_stream_names_itself_first_and_finishes_last() {
        let mut f = ResponseFacts::default();
        f.absorb_chunk(
            r#"{"id":"c1","model":"m","choices":[{"delta":{"role":"assistant"},"finish_reason":null}]}"#,
            true,
        );
        f.absorb_chunk(
            r#"{"id":"c1","model":"m","choices":[{"delta":{"content":"x"},"finish_reason":null}]}"#,
            true,
        );
        assert_eq!(f.finish_reason, None);
        f.absorb_chunk(
            r#"{"id":"c1","model":"m","choices":[{"delta":{},"finish_reason":"length"}]}"#,
            true,
        );
        assert_eq!(
            (f.id.as_deref(), f.model.as_deref()),
            (Some("c1"), Some("m"))
        );
        assert_eq!(f.finish_reason.as_deref(), Some("length"));
    }

    /// For the metrics alone only the first chunk is read.
    #[test]
    fn without_finish_reasons_only_the_head_is_read() {
        let mut f = ResponseFacts::default();
        f.absorb_chunk(r#"{"id":"c1","model":"m","choices":[]}"#, false);
        f.absorb_chunk(
            r#"{"id":"c2","model":"n","choices":[{"delta":{},"finish_reason":"stop"}]}"#,
            false,
        );
        assert_eq!(f.model.as_deref(), Some("m"));
        assert_eq!(f.finish_reason, None);
    }

    #[test]
    fn garbage_and_huge_values_read_as_nothing() {
        assert_eq!(ResponseFacts::read(b"not json"), ResponseFacts::default());
        let long = format!(r#"{{"id":"{}","choices":[]}}"#, "x".repeat(1000));
        assert_eq!(ResponseFacts::read(long.as_bytes()).id, None);
    }
}
