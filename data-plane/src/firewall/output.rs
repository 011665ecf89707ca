//! The output side for whole answers: every choice's content, reasoning and tool-call arguments go
//! through the output rules before the client sees them. A block ends that choice with
//! `finish_reason: "content_filter"` (as Azure OpenAI does) and sends none of its text.

use std::sync::{Arc, Mutex};

use serde_json::Value;

use crate::firewall::stream::FilteredStream;
use crate::firewall::{Audit, Direction, Firewall, active, filter_text};
use crate::upstream::relay::StreamTranslator;

/// The output rules that apply to one request.
#[derive(Debug, Clone)]
pub struct OutputScope {
    pub fw: Arc<Firewall>,
    pub active: Vec<bool>,
}

impl OutputScope {
    /// `None` when no output rule applies to this key and model.
    pub fn of(fw: &Arc<Firewall>, key: &str, model: &str) -> Option<Self> {
        active(fw, Direction::Output, key, model).map(|active| OutputScope {
            fw: fw.clone(),
            active,
        })
    }

    /// `translator` with the output rules applied to what it produces.
    pub fn stream(
        &self,
        translator: Box<dyn StreamTranslator>,
        audit: Arc<Mutex<Audit>>,
        include_usage: bool,
    ) -> Box<dyn StreamTranslator> {
        Box::new(FilteredStream::with_usage(
            translator,
            self.fw.clone(),
            self.active.clone(),
            audit,
            include_usage,
        ))
    }

    /// Filters a chat completion (OpenAI JSON); returns the new body when anything changed.
    pub fn filter_answer(&self, body: &[u8], audit: &mut Audit) -> Option<Vec<u8>> {
        let mut answer: Value = serde_json::from_slice(body).ok()?;
        let mut changed = false;
        for choice in answer
            .get_mut("choices")
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            let before = audit.events.iter().map(|e| e.count).sum::<u32>();
            let Some(message) = choice.get_mut("message") else {
                continue;
            };
            if self.filter_message(message, audit).is_err() {
                if let Some(m) = message.as_object_mut() {
                    m.insert("content".into(), Value::String(String::new()));
                    m.remove("tool_calls");
                    m.remove("reasoning_content");
                    m.remove("reasoning_details");
                }
                choice["finish_reason"] = Value::String("content_filter".into());
                changed = true;
            } else if audit.events.iter().map(|e| e.count).sum::<u32>() != before {
                changed = true;
            }
        }
        changed.then(|| serde_json::to_vec(&answer).ok()).flatten()
    }

    fn filter_message(&self, message: &mut Value, audit: &mut Audit) -> Result<(), ()> {
        let mut each = |v: Option<&mut Value>| -> Result<(), ()> {
            if let Some(Value::String(s)) = v {
                filter_text(&self.fw, &self.active, Direction::Output, s, audit).map_err(|_| ())?;
            }
            Ok(())
        };
        each(message.get_mut("content"))?;
        each(message.get_mut("reasoning_content"))?;
        if let Some(Value::Array(calls)) = message.get_mut("tool_calls") {
            for call in calls.iter_mut() {
                each(call.pointer_mut("/function/arguments"))?;
            }
        }
        Ok(())
    }
}
