//! The output side for streams: a [`StreamTranslator`] around the provider's that holds back only
//! what a match could still be part of. Per choice, content and reasoning are released, masked, up
//! to the first offset from which some pattern could still grow into a match (one lazy DFA over
//! every pattern, run anchored from each offset of what is held until it dies), and whole when the
//! choice finishes; tool-call deltas are held until the choice finishes, then sent whole with
//! their arguments filtered. A block anywhere ends
//! the answer with `finish_reason: "content_filter"` and `[DONE]` (the upstream is then dropped),
//! and what it matched is never sent.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value, json};

use crate::error::UpstreamError;
use crate::firewall::rules::Action;
use crate::firewall::{Audit, Direction, Firewall, apply_hits, filter_text};
use crate::telemetry::usage::Usage;
use crate::upstream::relay::{Flow, StreamTranslator};
use crate::upstream::sse::SseEvent;

/// The most text held for one field of one choice: a would-be match longer than this (a custom
/// pattern without a bound, a key block of more than 64 KiB) is released from its start.
pub const MAX_HOLD: usize = 64 * 1024;

#[derive(Debug, Default)]
struct Call {
    id: Value,
    name: String,
    arguments: String,
}

#[derive(Debug, Default)]
struct ChoiceState {
    content: String,
    reasoning: String,
    calls: BTreeMap<u64, Call>,
}

/// See the module documentation.
pub struct FilteredStream {
    inner: Box<dyn StreamTranslator>,
    fw: Arc<Firewall>,
    active: Vec<bool>,
    choices: BTreeMap<u64, ChoiceState>,
    audit: Arc<Mutex<Audit>>,
    blocked: bool,
    parsed: Vec<String>,
    /// The last chunk seen, to shape the chunk that flushes what is held at the end.
    template: Option<Value>,
    prefixes: Option<crate::firewall::rules::PrefixCache>,
    include_usage: bool,
}

impl FilteredStream {
    pub fn new(
        inner: Box<dyn StreamTranslator>,
        fw: Arc<Firewall>,
        active: Vec<bool>,
        audit: Arc<Mutex<Audit>>,
    ) -> Self {
        Self::with_usage(inner, fw, active, audit, false)
    }

    /// [`FilteredStream::new`] that, when a block ends the answer early, also sends the usage
    /// chunk the client asked for (`stream_options.include_usage`) with what the provider had
    /// reported by then.
    pub fn with_usage(
        inner: Box<dyn StreamTranslator>,
        fw: Arc<Firewall>,
        active: Vec<bool>,
        audit: Arc<Mutex<Audit>>,
        include_usage: bool,
    ) -> Self {
        FilteredStream {
            inner,
            active,
            choices: BTreeMap::new(),
            audit,
            blocked: false,
            parsed: Vec::new(),
            template: None,
            prefixes: fw.prefix_cache(),
            fw,
            include_usage,
        }
    }

    /// Filters the inner translator's chunks into `out`; `true` when a block ended the answer.
    fn pass(&mut self, out: &mut Vec<String>) -> bool {
        let chunks = std::mem::take(&mut self.parsed);
        for chunk in chunks {
            if self.blocked {
                break;
            }
            let Ok(mut value) = serde_json::from_str::<Value>(&chunk) else {
                out.push(chunk);
                continue;
            };
            if value
                .get("choices")
                .is_some_and(|c| c.as_array().is_some_and(|a| !a.is_empty()))
            {
                self.template = Some(value.clone());
            }
            match self.chunk(&mut value) {
                Ok(true) => out.push(value.to_string()),
                Ok(false) => {}
                Err(()) => {
                    self.blocked = true;
                    out.push(blocked_chunk(&value).to_string());
                    if self.include_usage {
                        out.push(usage_chunk(&value, self.inner.usage()).to_string());
                    }
                }
            }
        }
        self.blocked
    }

    /// Rewrites one chunk in place; `Ok(false)` when nothing of it is left to send.
    fn chunk(&mut self, value: &mut Value) -> Result<bool, ()> {
        let Some(choices) = value.get_mut("choices").and_then(Value::as_array_mut) else {
            return Ok(true);
        };
        if choices.is_empty() {
            return Ok(true); // the usage chunk
        }
        let mut keep = false;
        for choice in choices.iter_mut() {
            let index = choice.get("index").and_then(Value::as_u64).unwrap_or(0);
            let finished = choice.get("finish_reason").is_some_and(|f| !f.is_null());
            let state = self.choices.entry(index).or_default();
            let delta = choice.get_mut("delta").and_then(Value::as_object_mut);
            let mut released = Map::new();
            if let Some(delta) = delta {
                if let Some(Value::String(t)) = delta.remove("content") {
                    state.content.push_str(&t);
                }
                if let Some(Value::String(t)) = delta.remove("reasoning_content") {
                    state.reasoning.push_str(&t);
                }
                if let Some(Value::Array(calls)) = delta.remove("tool_calls") {
                    for c in calls {
                        let n = c.get("index").and_then(Value::as_u64).unwrap_or(0);
                        let call = state.calls.entry(n).or_default();
                        if let Some(id) = c.get("id").filter(|i| !i.is_null()) {
                            call.id = id.clone();
                        }
                        if let Some(name) = c.pointer("/function/name").and_then(Value::as_str) {
                            call.name.push_str(name);
                        }
                        if let Some(a) = c.pointer("/function/arguments").and_then(Value::as_str) {
                            call.arguments.push_str(a);
                        }
                    }
                }
                released = std::mem::take(delta);
            }
            let mut audit = self.audit.lock().map_err(|_| ())?;
            for (field, held) in [
                ("content", &mut state.content),
                ("reasoning_content", &mut state.reasoning),
            ] {
                let text = release(
                    &self.fw,
                    &self.active,
                    held,
                    finished,
                    self.prefixes.as_mut(),
                    &mut audit,
                )?;
                if !text.is_empty() {
                    released.insert(field.into(), Value::String(text));
                }
            }
            if finished && !state.calls.is_empty() {
                let mut calls = Vec::new();
                for (n, call) in std::mem::take(&mut state.calls) {
                    let mut arguments = call.arguments;
                    filter_text(
                        &self.fw,
                        &self.active,
                        Direction::Output,
                        &mut arguments,
                        &mut audit,
                    )
                    .map_err(|_| ())?;
                    calls.push(json!({"index": n, "id": call.id, "type": "function",
                        "function": {"name": call.name, "arguments": arguments}}));
                }
                released.insert("tool_calls".into(), Value::Array(calls));
            }
            keep |= finished || !released.is_empty();
            choice["delta"] = Value::Object(released);
        }
        Ok(keep || value.get("usage").is_some_and(|u| !u.is_null()))
    }
}

impl FilteredStream {
    /// Sends what is still held (a stream that ended without finishing a choice), filtered.
    fn flush(&mut self, out: &mut Vec<String>) {
        let Some(template) = self.template.clone() else {
            return;
        };
        let Ok(mut audit) = self.audit.lock() else {
            return;
        };
        let mut choices = Vec::new();
        for (index, state) in std::mem::take(&mut self.choices) {
            let mut delta = Map::new();
            for (field, mut held) in [
                ("content", state.content),
                ("reasoning_content", state.reasoning),
            ] {
                match release(&self.fw, &self.active, &mut held, true, None, &mut audit) {
                    Ok(text) if !text.is_empty() => {
                        delta.insert(field.into(), Value::String(text));
                    }
                    Ok(_) => {}
                    Err(()) => {
                        self.blocked = true;
                        out.push(blocked_chunk(&template).to_string());
                        return;
                    }
                }
            }
            if !delta.is_empty() {
                choices.push(json!({"index": index, "delta": delta, "finish_reason": null}));
            }
        }
        if !choices.is_empty() {
            let mut chunk = template;
            chunk["choices"] = Value::Array(choices);
            if let Some(m) = chunk.as_object_mut() {
                m.remove("usage");
            }
            // Before the usage chunk and [DONE], which the inner translator already queued.
            let at = out
                .iter()
                .position(|c| c.contains("\"choices\":[]"))
                .unwrap_or(out.len());
            out.insert(at, chunk.to_string());
        }
    }
}

/// The part of `held` that can go now, masked; the rest stays held. `Err` on a block.
fn release(
    fw: &Firewall,
    active: &[bool],
    held: &mut String,
    finished: bool,
    prefixes: Option<&mut crate::firewall::rules::PrefixCache>,
    audit: &mut Audit,
) -> Result<String, ()> {
    if held.is_empty() {
        return Ok(String::new());
    }
    let hits = fw.scan(held, active);
    if hits
        .iter()
        .any(|h| fw.rules[fw.patterns[h.pattern].rule].action == Action::Block)
    {
        let mut copy = held.clone();
        // Counted for the record; the text itself goes nowhere.
        let _ = apply_hits(fw, Direction::Output, &mut copy, &hits, audit);
        return Err(());
    }
    let mut safe = if finished {
        held.len()
    } else {
        fw.earliest_live(prefixes, held)
            .max(held.len().saturating_sub(MAX_HOLD))
    };
    if !finished {
        // Never through a match (half a card would not be a card any more), nor a match that
        // reaches the end and may still grow (an email's domain, a longer card).
        for h in &hits {
            if h.end > safe || h.end >= held.len() {
                safe = safe.min(h.start);
            }
        }
    }
    while !held.is_char_boundary(safe) {
        safe -= 1;
    }
    let rest = held.split_off(safe);
    let mut out = std::mem::replace(held, rest);
    let released: Vec<_> = hits.into_iter().filter(|h| h.end <= safe).collect();
    apply_hits(fw, Direction::Output, &mut out, &released, audit).map_err(|_| ())?;
    Ok(out)
}

/// The usage chunk of a blocked answer: what the provider reported so far (zeros if nothing).
fn usage_chunk(template: &Value, usage: Option<Usage>) -> Value {
    let u = usage.unwrap_or_default();
    let mut chunk = template.clone();
    chunk["choices"] = json!([]);
    chunk["usage"] = json!({
        "prompt_tokens": u.prompt_tokens,
        "completion_tokens": u.completion_tokens,
        "total_tokens": u.prompt_tokens.saturating_add(u.completion_tokens),
    });
    chunk
}

/// The chunk that ends a blocked answer: every choice it carried, finished by the filter.
fn blocked_chunk(template: &Value) -> Value {
    let mut chunk = template.clone();
    if let Some(choices) = chunk.get_mut("choices").and_then(Value::as_array_mut) {
        for c in choices.iter_mut() {
            c["delta"] = json!({});
            c["finish_reason"] = json!("content_filter");
        }
    }
    if let Some(m) = chunk.as_object_mut() {
        m.remove("usage");
    }
    chunk
}

impl Drop for FilteredStream {
    fn drop(&mut self) {
        if let Some(cache) = self.prefixes.take() {
            self.fw.return_prefix_cache(cache);
        }
    }
}

impl StreamTranslator for FilteredStream {
    fn event(&mut self, event: SseEvent, out: &mut Vec<String>) -> Result<Flow, UpstreamError> {
        if self.blocked {
            return Ok(Flow::Done);
        }
        let flow = self.inner.event(event, &mut self.parsed)?;
        if self.pass(out) {
            return Ok(Flow::Done);
        }
        if flow == Flow::Done {
            self.flush(out);
        }
        Ok(flow)
    }

    fn end(&mut self, out: &mut Vec<String>) -> Result<(), UpstreamError> {
        if self.blocked {
            return Ok(());
        }
        let ended = self.inner.end(&mut self.parsed);
        if !self.pass(out) {
            self.flush(out);
        }
        ended
    }

    fn usage(&self) -> Option<Usage> {
        self.inner.usage()
    }
}
