//! Reads DeepSeek answers without changing them: keeps the reasoning of each turn that called
//! tools in the [`ReasoningCache`] (under every tool-call id of the turn), and turns the finish
//! reason `insufficient_system_resource` into a retryable 503. Chunks are parsed into borrowed
//! typed views, never into a `Value`, and relayed byte for byte by the caller.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::Value;

use super::cache_key;
use crate::error::UpstreamError;
use crate::providers::reasoning_cache::ReasoningCache;

/// Most reasoning bytes kept per turn; a longer reasoning is not cached (bounded buffering).
const MAX_REASONING: usize = 1024 * 1024;

#[derive(Deserialize)]
struct Answer<'a> {
    #[serde(borrow, default)]
    choices: Option<Vec<Choice<'a>>>,
}

#[derive(Deserialize)]
struct Choice<'a> {
    #[serde(default)]
    index: u64,
    #[serde(borrow, default)]
    finish_reason: Option<Cow<'a, str>>,
    /// `message` in an answer, `delta` in a chunk.
    #[serde(borrow, default, alias = "delta")]
    message: Option<Message<'a>>,
}

#[derive(Deserialize)]
struct Message<'a> {
    #[serde(borrow, default)]
    reasoning_content: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    tool_calls: Option<Vec<Call<'a>>>,
}

#[derive(Deserialize)]
struct Call<'a> {
    #[serde(borrow, default)]
    id: Option<Cow<'a, str>>,
}

fn insufficient_resources() -> UpstreamError {
    UpstreamError::Status {
        status: 503,
        code: Some("insufficient_system_resource".into()),
        message: "DeepSeek interrupted the answer for lack of inference resources".into(),
        retry_after: None,
    }
}

fn store(cache: &ReasoningCache, ids: &[String], reasoning: &str) {
    if reasoning.is_empty() {
        return;
    }
    cache.put_many(ids.iter().map(|id| cache_key(id)), Value::from(reasoning));
}

/// Reads a non-streaming answer (already known to be a chat completion).
pub fn observe_response(body: &[u8], cache: &ReasoningCache) -> Result<(), UpstreamError> {
    let Ok(answer) = serde_json::from_slice::<Answer<'_>>(body) else {
        return Ok(());
    };
    for choice in answer.choices.unwrap_or_default() {
        if choice.finish_reason.as_deref() == Some("insufficient_system_resource") {
            return Err(insufficient_resources());
        }
        let Some(message) = choice.message else {
            continue;
        };
        let ids: Vec<String> = message
            .tool_calls
            .unwrap_or_default()
            .into_iter()
            .filter_map(|c| c.id.map(Cow::into_owned))
            .collect();
        store(
            cache,
            &ids,
            message.reasoning_content.as_deref().unwrap_or(""),
        );
    }
    Ok(())
}

/// One choice's turn so far.
#[derive(Debug, Default)]
struct Turn {
    index: u64,
    reasoning: String,
    ids: Vec<String>,
    overflow: bool,
}

/// Follows a stream: reasoning fragments and tool-call ids per choice, stored when the choice
/// finishes.
#[derive(Debug, Default)]
pub struct ReasoningTap {
    turns: Vec<Turn>,
}

impl ReasoningTap {
    /// Reads one chunk's JSON; `Err` when DeepSeek gave up for lack of resources.
    pub fn observe(&mut self, data: &str, cache: &ReasoningCache) -> Result<(), UpstreamError> {
        let Ok(chunk) = serde_json::from_str::<Answer<'_>>(data) else {
            return Ok(());
        };
        for choice in chunk.choices.unwrap_or_default() {
            let turn = self.turn(choice.index);
            if let Some(delta) = &choice.message {
                if let Some(piece) = delta.reasoning_content.as_deref() {
                    if turn.reasoning.len() + piece.len() > MAX_REASONING {
                        turn.overflow = true;
                    } else {
                        turn.reasoning.push_str(piece);
                    }
                }
                for call in delta.tool_calls.iter().flatten() {
                    if let Some(id) = call.id.as_deref().filter(|id| !id.is_empty()) {
                        turn.ids.push(id.to_string());
                    }
                }
            }
            match choice.finish_reason.as_deref() {
                None => {}
                Some("insufficient_system_resource") => return Err(insufficient_resources()),
                Some(_) => {
                    if let Some(at) = self.turns.iter().position(|t| t.index == choice.index) {
                        let turn = self.turns.swap_remove(at);
                        if !turn.overflow {
                            store(cache, &turn.ids, &turn.reasoning);
                        }
                    }
                }
            }
        }
        Ok(())
    }

    fn turn(&mut self, index: u64) -> &mut Turn {
        let at = match self.turns.iter().position(|t| t.index == index) {
            Some(at) => at,
            None => {
                self.turns.push(Turn {
                    index,
                    ..Turn::default()
                });
                self.turns.len() - 1
            }
        };
        &mut self.turns[at]
    }
}
