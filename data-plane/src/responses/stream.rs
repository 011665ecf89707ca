//! A translated stream in the Responses API's events: wraps the chain of chat translators (the
//! provider's, then the firewall's output rules) and turns its OpenAI chunks into
//! `response.created`, `response.in_progress`, items opened, filled by deltas and closed, and
//! `response.completed` (or `response.incomplete`, or `response.failed` when the stream breaks),
//! every event under one response id. The finished response is stored when the request allows.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::object::{self, event, item_id};
use super::store::Keep;
use crate::error::{ApiError, UpstreamError};
use crate::request::responses::{ResponsesCall, call_signature, encode_state};
use crate::telemetry::usage::Usage;
use crate::upstream::relay::{Flow, StreamTranslator};
use crate::upstream::sse::SseEvent;

/// The item being streamed.
enum Open {
    Reasoning {
        id: String,
        text: String,
    },
    Message {
        id: String,
        text: String,
        refusal: bool,
    },
    Call {
        id: String,
        call_id: String,
        name: String,
        arguments: String,
        index: u64,
    },
}

/// Chat chunks in, Responses events out.
pub struct ResponsesStream {
    inner: Box<dyn StreamTranslator>,
    call: Arc<ResponsesCall>,
    keep: Option<Keep>,
    id: String,
    created_at: u64,
    model: String,
    sequence: u64,
    started: bool,
    ended: bool,
    output: Vec<Value>,
    open: Option<Open>,
    /// The provider's signed thinking blocks (Anthropic's, on the finish chunk).
    blocks: Option<Value>,
    /// Gemini's thought signatures by call id.
    signatures: Map<String, Value>,
    finish_reason: Option<String>,
    chunks: Vec<String>,
}

impl ResponsesStream {
    pub fn new(
        inner: Box<dyn StreamTranslator>,
        call: Arc<ResponsesCall>,
        keep: Option<Keep>,
        created_at: u64,
        model: &str,
    ) -> Self {
        ResponsesStream {
            inner,
            call,
            keep,
            id: object::new_id(),
            created_at,
            model: model.to_string(),
            sequence: 0,
            started: false,
            ended: false,
            output: Vec::new(),
            open: None,
            blocks: None,
            signatures: Map::new(),
            finish_reason: None,
            chunks: Vec::new(),
        }
    }

    fn emit(&mut self, out: &mut Vec<String>, kind: &str, fields: Value) {
        out.push(event(kind, self.sequence, &fields));
        self.sequence += 1;
    }

    fn response(&self, status: &str) -> Map<String, Value> {
        let mut r = object::shell(&self.call, &self.id, self.created_at, &self.model, status);
        r.insert("output".into(), Value::Array(self.output.clone()));
        r
    }

    /// The chunks the inner translators produced, as events.
    fn relay_chunks(&mut self, out: &mut Vec<String>) {
        let chunks = std::mem::take(&mut self.chunks);
        for chunk in &chunks {
            if let Ok(chunk) = serde_json::from_str::<Value>(chunk) {
                self.chunk(&chunk, out);
            }
        }
        self.chunks = chunks;
        self.chunks.clear();
    }

    fn start(&mut self, out: &mut Vec<String>) {
        if self.started {
            return;
        }
        self.started = true;
        let response = Value::Object(self.response("in_progress"));
        self.emit(out, "response.created", json!({"response": response}));
        self.emit(out, "response.in_progress", json!({"response": response}));
    }

    fn chunk(&mut self, chunk: &Value, out: &mut Vec<String>) {
        if !self.started {
            if let Some(m) = chunk.get("model").and_then(Value::as_str) {
                self.model = m.to_string();
            }
            self.start(out);
        }
        let Some(choice) = chunk.get("choices").and_then(|c| c.get(0)) else {
            return;
        };
        if let Some(delta) = choice.get("delta") {
            if let Some(t) = delta
                .get("reasoning_content")
                .and_then(Value::as_str)
                .filter(|t| !t.is_empty())
            {
                self.reasoning_delta(t, out);
            }
            if let Some(t) = delta
                .get("content")
                .and_then(Value::as_str)
                .filter(|t| !t.is_empty())
            {
                self.text_delta(t, false, out);
            }
            if let Some(t) = delta
                .get("refusal")
                .and_then(Value::as_str)
                .filter(|t| !t.is_empty())
            {
                self.text_delta(t, true, out);
            }
            for call in delta
                .get("tool_calls")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                self.call_delta(call, out);
            }
            if let Some(b) = delta
                .get("thinking_blocks")
                .filter(|b| b.as_array().is_some_and(|b| !b.is_empty()))
            {
                self.blocks = Some(b.clone());
            }
        }
        if let Some(f) = choice.get("finish_reason").and_then(Value::as_str) {
            self.finish_reason = Some(f.to_string());
        }
    }

    fn output_index(&self) -> usize {
        self.output.len()
    }

    fn reasoning_delta(&mut self, text: &str, out: &mut Vec<String>) {
        if !matches!(self.open, Some(Open::Reasoning { .. })) {
            self.close(out);
            let id = item_id("rs_");
            let at = self.output_index();
            self.emit(
                out,
                "response.output_item.added",
                json!({"output_index": at, "item": {"type": "reasoning", "id": id, "summary": []}}),
            );
            self.emit(out, "response.reasoning_summary_part.added", json!({"item_id": id, "output_index": at, "summary_index": 0, "part": {"type": "summary_text", "text": ""}}));
            self.open = Some(Open::Reasoning {
                id,
                text: String::new(),
            });
        }
        let at = self.output_index();
        if let Some(Open::Reasoning { id, text: all }) = &mut self.open {
            all.push_str(text);
            let id = id.clone();
            self.emit(
                out,
                "response.reasoning_summary_text.delta",
                json!({"item_id": id, "output_index": at, "summary_index": 0, "delta": text}),
            );
        }
    }

    fn text_delta(&mut self, text: &str, refusal: bool, out: &mut Vec<String>) {
        let same = matches!(&self.open, Some(Open::Message { refusal: r, .. }) if *r == refusal);
        if !same {
            self.close(out);
            let id = item_id("msg_");
            let at = self.output_index();
            self.emit(out, "response.output_item.added", json!({"output_index": at, "item": {"type": "message", "id": id, "status": "in_progress", "role": "assistant", "content": []}}));
            let part = if refusal {
                json!({"type": "refusal", "refusal": ""})
            } else {
                json!({"type": "output_text", "text": "", "annotations": [], "logprobs": []})
            };
            self.emit(
                out,
                "response.content_part.added",
                json!({"item_id": id, "output_index": at, "content_index": 0, "part": part}),
            );
            self.open = Some(Open::Message {
                id,
                text: String::new(),
                refusal,
            });
        }
        let at = self.output_index();
        if let Some(Open::Message { id, text: all, .. }) = &mut self.open {
            all.push_str(text);
            let id = id.clone();
            if refusal {
                self.emit(
                    out,
                    "response.refusal.delta",
                    json!({"item_id": id, "output_index": at, "content_index": 0, "delta": text}),
                );
            } else {
                self.emit(out, "response.output_text.delta", json!({"item_id": id, "output_index": at, "content_index": 0, "delta": text, "logprobs": []}));
            }
        }
    }

    fn call_delta(&mut self, call: &Value, out: &mut Vec<String>) {
        let index = call.get("index").and_then(Value::as_u64).unwrap_or(0);
        let f = call.get("function");
        let arguments = f
            .and_then(|f| f.get("arguments"))
            .and_then(Value::as_str)
            .unwrap_or("");
        if !matches!(&self.open, Some(Open::Call { index: i, .. }) if *i == index) {
            self.close(out);
            let id = item_id("fc_");
            let call_id = call
                .get("id")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let name = f
                .and_then(|f| f.get("name"))
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let at = self.output_index();
            let item = object::function_call_item(&id, &call_id, &name, "", "in_progress");
            self.emit(
                out,
                "response.output_item.added",
                json!({"output_index": at, "item": item}),
            );
            self.open = Some(Open::Call {
                id,
                call_id,
                name,
                arguments: String::new(),
                index,
            });
        }
        if let (Some(sig), Some(Open::Call { call_id, .. })) = (call_signature(call), &self.open) {
            self.signatures.insert(call_id.clone(), sig.clone());
        }
        if arguments.is_empty() {
            return;
        }
        let at = self.output_index();
        if let Some(Open::Call {
            id, arguments: all, ..
        }) = &mut self.open
        {
            all.push_str(arguments);
            let id = id.clone();
            self.emit(
                out,
                "response.function_call_arguments.delta",
                json!({"item_id": id, "output_index": at, "delta": arguments}),
            );
        }
    }

    /// Ends the open item with its `.done` events.
    fn close(&mut self, out: &mut Vec<String>) {
        let Some(open) = self.open.take() else {
            return;
        };
        let at = self.output_index();
        let item = match open {
            Open::Reasoning { id, text } => {
                self.emit(
                    out,
                    "response.reasoning_summary_text.done",
                    json!({"item_id": id, "output_index": at, "summary_index": 0, "text": text}),
                );
                self.emit(out, "response.reasoning_summary_part.done", json!({"item_id": id, "output_index": at, "summary_index": 0, "part": {"type": "summary_text", "text": text}}));
                object::reasoning_item(&id, &text, None)
            }
            Open::Message { id, text, refusal } => {
                let part = if refusal {
                    self.emit(out, "response.refusal.done", json!({"item_id": id, "output_index": at, "content_index": 0, "refusal": text}));
                    json!({"type": "refusal", "refusal": text})
                } else {
                    self.emit(out, "response.output_text.done", json!({"item_id": id, "output_index": at, "content_index": 0, "text": text, "logprobs": []}));
                    json!({"type": "output_text", "text": text, "annotations": [], "logprobs": []})
                };
                self.emit(
                    out,
                    "response.content_part.done",
                    json!({"item_id": id, "output_index": at, "content_index": 0, "part": part}),
                );
                let refusal = refusal.then_some(text.as_str());
                object::message_item(&id, &text, refusal, "completed")
            }
            Open::Call {
                id,
                call_id,
                name,
                arguments,
                ..
            } => {
                self.emit(out, "response.function_call_arguments.done", json!({"item_id": id, "output_index": at, "name": name, "arguments": arguments}));
                object::function_call_item(&id, &call_id, &name, &arguments, "completed")
            }
        };
        self.emit(
            out,
            "response.output_item.done",
            json!({"output_index": at, "item": item}),
        );
        self.output.push(item);
    }

    /// The stream's end: the last item closed, the finished response sent and stored.
    fn complete(&mut self, out: &mut Vec<String>) {
        if self.ended {
            return;
        }
        self.ended = true;
        self.start(out);
        self.close(out);
        if let Some(encrypted) = encode_state(self.blocks.take().as_ref(), &self.signatures) {
            let encrypted = Some(encrypted);
            match self
                .output
                .iter_mut()
                .find(|i| i.get("type") == Some(&json!("reasoning")))
            {
                Some(item) => item["encrypted_content"] = json!(encrypted),
                None => {
                    // Thinking the provider did not show (redacted): still an item to send back.
                    let at = self.output_index();
                    let item = object::reasoning_item(&item_id("rs_"), "", encrypted);
                    self.emit(
                        out,
                        "response.output_item.added",
                        json!({"output_index": at, "item": item}),
                    );
                    self.emit(
                        out,
                        "response.output_item.done",
                        json!({"output_index": at, "item": item}),
                    );
                    self.output.push(item);
                }
            }
        }
        let mut stored = self.response("completed");
        object::finish(&mut stored, self.finish_reason.as_deref());
        if let Some(u) = self.inner.usage() {
            stored.insert("usage".into(), object::usage(&u));
        }
        let client = super::answer::for_client(&stored, self.call.encrypted_reasoning);
        let kind = if client.get("status") == Some(&json!("incomplete")) {
            "response.incomplete"
        } else {
            "response.completed"
        };
        self.emit(out, kind, json!({"response": client}));
        if let Some(keep) = self.keep.take() {
            keep.put(&self.call, stored);
        }
    }
}

impl StreamTranslator for ResponsesStream {
    fn event(&mut self, event: SseEvent, out: &mut Vec<String>) -> Result<Flow, UpstreamError> {
        if self.ended {
            return Ok(Flow::Done);
        }
        let flow = self.inner.event(event, &mut self.chunks);
        self.relay_chunks(out);
        if flow.as_ref().is_ok_and(|f| *f == Flow::Done) {
            self.complete(out);
        }
        flow
    }

    fn end(&mut self, out: &mut Vec<String>) -> Result<(), UpstreamError> {
        if self.ended {
            return Ok(());
        }
        let ended = self.inner.end(&mut self.chunks);
        self.relay_chunks(out);
        if ended.is_ok() {
            self.complete(out);
        }
        ended
    }

    fn usage(&self) -> Option<Usage> {
        self.inner.usage()
    }

    fn failed(&mut self, error: &ApiError, out: &mut Vec<String>) -> bool {
        if self.ended {
            return true;
        }
        self.ended = true;
        self.start(out);
        self.close(out);
        let mut response = self.response("failed");
        response.insert(
            "error".into(),
            json!({"code": error.code().unwrap_or("server_error"), "message": error.message()}),
        );
        if let Some(u) = self.inner.usage() {
            response.insert("usage".into(), object::usage(&u));
        }
        self.emit(out, "response.failed", json!({"response": response}));
        true
    }
}
