//! Mistral answers in OpenAI's shape. Magistral (and `reasoning_effort: "high"`) answers carry
//! `content` as an array of `{type:"thinking", thinking:[{type:"text",text}]}` and
//! `{type:"text",text}` parts: they become `reasoning_content` (DeepSeek's widely understood
//! field) and a string `content`. Tool calls lack `type`, and streamed ones `index` (each call
//! arrives whole in one delta): both are added. `model_length` becomes `length`; `error` ends
//! the answer as a failure. Usage already comes in OpenAI's shape, on the finish chunk.

use serde_json::{Map, Value};

use crate::error::UpstreamError;
use crate::providers::Translated;
use crate::telemetry::usage::Usage;

/// Maps a non-streaming answer; bytes that need no edit are returned as they came.
pub fn adapt_response(body: &[u8], usage: Option<Usage>) -> Result<Translated, UpstreamError> {
    let Ok(Value::Object(mut answer)) = serde_json::from_slice::<Value>(body) else {
        return Err(UpstreamError::Malformed(
            "answered with something that is not a chat completion".into(),
        ));
    };
    let mut changed = false;
    if let Some(Value::Array(choices)) = answer.get_mut("choices") {
        for choice in choices {
            if finish_reason(choice).map_err(|()| {
                UpstreamError::Malformed("ended its answer with finish_reason `error`".into())
            })? {
                changed = true;
            }
            if let Some(message) = choice.get_mut("message") {
                changed |= split_content(message, false);
                changed |= type_tool_calls(message);
            }
        }
    }
    let body = if changed {
        serde_json::to_vec(&answer)
            .map_err(|_| UpstreamError::Malformed("sent an answer that cannot be encoded".into()))?
    } else {
        body.to_vec()
    };
    Ok(Translated {
        body,
        usage,
        facts: Default::default(),
    })
}

/// Whether a streamed chunk may need [`StreamFix::edit`]; every other chunk is relayed byte for
/// byte. A false positive (the words inside generated text) only costs one needless edit.
pub fn needs_edit(data: &str) -> bool {
    data.contains("\"tool_calls\"")
        || data.contains("\"content\":[")
        || data.contains("\"content\": [")
        || data.contains("\"model_length\"")
        || data.contains("\"error\"")
}

/// Stream state: how many tool calls each choice has announced, to number the next one.
#[derive(Debug, Default)]
pub struct StreamFix {
    /// `(choice index, next tool-call index)`.
    next: Vec<(u64, u64)>,
}

impl StreamFix {
    /// Edits one chunk in place; `Err` when Mistral finished the answer with an error.
    pub fn edit(&mut self, chunk: &mut Map<String, Value>) -> Result<(), UpstreamError> {
        let Some(Value::Array(choices)) = chunk.get_mut("choices") else {
            return Ok(());
        };
        for choice in choices {
            finish_reason(choice).map_err(|()| UpstreamError::InBand {
                code: Some("server_error".into()),
                message: "Mistral ended the answer with finish_reason `error`".into(),
            })?;
            let index = choice.get("index").and_then(Value::as_u64).unwrap_or(0);
            if let Some(delta) = choice.get_mut("delta") {
                split_content(delta, true);
                self.index_tool_calls(index, delta);
            }
        }
        Ok(())
    }

    fn index_tool_calls(&mut self, choice: u64, delta: &mut Value) {
        let Some(Value::Array(calls)) = delta.get_mut("tool_calls") else {
            return;
        };
        let next = match self.next.iter().position(|(c, _)| *c == choice) {
            Some(i) => &mut self.next[i].1,
            None => {
                self.next.push((choice, 0));
                let last = self.next.len() - 1;
                &mut self.next[last].1
            }
        };
        for call in calls {
            let Some(call) = call.as_object_mut() else {
                continue;
            };
            // Saturating: an upstream index can be anything, up to `u64::MAX`.
            match call.get("index").and_then(Value::as_u64) {
                Some(i) => *next = (*next).max(i.saturating_add(1)),
                None => {
                    let starts = call.contains_key("id")
                        || call
                            .get("function")
                            .is_some_and(|f| f.get("name").is_some());
                    // A fragment without id or name continues the latest call.
                    if starts || *next == 0 {
                        *next = next.saturating_add(1);
                    }
                    call.insert("index".into(), Value::from(next.saturating_sub(1)));
                }
            }
            if call.contains_key("id") && !call.contains_key("type") {
                call.insert("type".into(), Value::from("function"));
            }
        }
    }
}

/// `model_length` → `length`; `Err` for `error`. `Ok(true)` when the choice was edited.
fn finish_reason(choice: &mut Value) -> Result<bool, ()> {
    match choice.get("finish_reason").and_then(Value::as_str) {
        Some("model_length") => {
            choice["finish_reason"] = Value::from("length");
            Ok(true)
        }
        Some("error") => Err(()),
        _ => Ok(false),
    }
}

/// Turns a content-parts array into `content` + `reasoning_content`. In a delta, a chunk with
/// only thinking carries no `content`; in a message, no text at all is `null`.
fn split_content(message: &mut Value, delta: bool) -> bool {
    let Some(fields) = message.as_object_mut() else {
        return false;
    };
    let Some(Value::Array(parts)) = fields.get("content") else {
        return false;
    };
    let (text, reasoning) = split_parts(parts);
    match text {
        Some(text) => fields.insert("content".into(), Value::from(text)),
        None if delta => fields.remove("content"),
        None => fields.insert("content".into(), Value::Null),
    };
    if let Some(reasoning) = reasoning {
        fields.insert("reasoning_content".into(), Value::from(reasoning));
    }
    true
}

/// The answer text and the reasoning text of Mistral's content parts. Other parts (references,
/// images) have no place in an OpenAI message and are left out.
fn split_parts(parts: &[Value]) -> (Option<String>, Option<String>) {
    let (mut text, mut reasoning): (Option<String>, Option<String>) = (None, None);
    for part in parts {
        match part.get("type").and_then(Value::as_str) {
            Some("text") => text
                .get_or_insert_with(String::new)
                .push_str(part.get("text").and_then(Value::as_str).unwrap_or("")),
            Some("thinking") => {
                let out = reasoning.get_or_insert_with(String::new);
                match part.get("thinking") {
                    Some(Value::String(s)) => out.push_str(s),
                    Some(Value::Array(inner)) => {
                        for p in inner {
                            out.push_str(p.get("text").and_then(Value::as_str).unwrap_or(""));
                        }
                    }
                    _ => {}
                }
            }
            _ => tracing::debug!("left out a Mistral content part OpenAI has no place for"),
        }
    }
    (text, reasoning)
}

/// Adds the `type` Mistral leaves out of tool calls, and the `content: null` OpenAI always has.
fn type_tool_calls(message: &mut Value) -> bool {
    let Some(fields) = message.as_object_mut() else {
        return false;
    };
    let mut changed = false;
    if let Some(Value::Array(calls)) = fields.get_mut("tool_calls") {
        for call in calls.iter_mut().filter_map(Value::as_object_mut) {
            if !call.contains_key("type") {
                call.insert("type".into(), Value::from("function"));
                changed = true;
            }
        }
        if !fields.contains_key("content") {
            fields.insert("content".into(), Value::Null);
            changed = true;
        }
    }
    changed
}
