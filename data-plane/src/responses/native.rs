//! A Responses request to an OpenAI provider, passed through: the body as the client sent it
//! (earlier turns joined, the firewall's input rules applied, the model the plan chose), the
//! answer relayed as it came with its usage and id read on the way. Reasoning items only a
//! translated provider could read are left out of what OpenAI gets.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::object::event;
use super::store::Keep;
use crate::error::{ApiError, UpstreamError};
use crate::providers::{AnswerShape, UpstreamCall};
use crate::request::responses::{ENCRYPTED_PREFIX, ResponsesCall};
use crate::telemetry::trace::ResponseFacts;
use crate::telemetry::usage::Usage;
use crate::upstream::relay::{Flow, StreamTranslator};
use crate::upstream::sse::SseEvent;

/// The upstream call: `POST {base}/responses` with the client's body for `model`.
pub fn build(call: &ResponsesCall, model: &str) -> Result<UpstreamCall, ApiError> {
    let mut body = call.native.clone();
    body.insert("model".into(), Value::String(model.to_string()));
    if let Some(Value::Array(items)) = body.get_mut("input") {
        items.retain(|item| {
            let ours = item
                .get("encrypted_content")
                .and_then(Value::as_str)
                .is_some_and(|e| e.starts_with(ENCRYPTED_PREFIX));
            !ours
        });
        for item in items.iter_mut().filter_map(Value::as_object_mut) {
            // Ids of items another provider answered mean nothing to OpenAI; a message or a
            // function call is whole without one (its `call_id` is what links the output).
            let kind = item.get("type").and_then(Value::as_str);
            if matches!(kind, Some("message" | "function_call")) {
                item.remove("id");
            }
        }
    }
    let body = serde_json::to_vec(&body)
        .map_err(|_| ApiError::invalid("input", "The request could not be encoded."))?;
    Ok(UpstreamCall {
        path: "/responses".into(),
        body,
        headers: Vec::new(),
        dropped: Vec::new(),
        shape: AnswerShape::default(),
    })
}

/// Usage in the Responses API's names.
pub fn usage_of(usage: &Value) -> Option<Usage> {
    let n = |v: Option<&Value>| v.and_then(Value::as_u64).unwrap_or(0);
    usage.as_object()?;
    Some(Usage {
        prompt_tokens: n(usage.get("input_tokens")),
        completion_tokens: n(usage.get("output_tokens")),
        cached_tokens: n(usage.pointer("/input_tokens_details/cached_tokens")),
        reasoning_tokens: n(usage.pointer("/output_tokens_details/reasoning_tokens")),
    })
}

/// What a response object says of itself: id, model, status (as the finish reason).
pub fn facts_of(response: &Map<String, Value>) -> ResponseFacts {
    let s = |f: &str| response.get(f).and_then(Value::as_str).map(str::to_string);
    let mut facts = ResponseFacts::default();
    facts.id = s("id");
    facts.model = s("model");
    facts.finish_reason = s("status");
    facts
}

/// A whole native answer, read.
pub struct NativeAnswer {
    /// What the client gets.
    pub body: Vec<u8>,
    /// The response object (what is stored).
    pub response: Map<String, Value>,
    pub usage: Option<Usage>,
}

/// A whole native answer: the response object and its usage. The body is OpenAI's as it came,
/// unless the gateway joined earlier turns: then it names the client's `previous_response_id`
/// again (OpenAI saw none).
pub fn read_json(call: &ResponsesCall, bytes: Vec<u8>) -> Result<NativeAnswer, UpstreamError> {
    let mut response: Map<String, Value> = serde_json::from_slice(&bytes).map_err(|_| {
        UpstreamError::Malformed("answered /responses with a body that is not a JSON object".into())
    })?;
    let usage = response.get("usage").and_then(usage_of);
    let body = if restore_previous(call, &mut response) {
        serde_json::to_vec(&response).unwrap_or(bytes)
    } else {
        bytes
    };
    Ok(NativeAnswer {
        body,
        response,
        usage,
    })
}

/// Puts the client's `previous_response_id` back on a response OpenAI answered to the joined
/// conversation; whether anything changed.
fn restore_previous(call: &ResponsesCall, response: &mut Map<String, Value>) -> bool {
    match &call.previous {
        Some(id) if !call.native.contains_key("previous_response_id") => {
            response.insert("previous_response_id".into(), Value::String(id.clone()));
            true
        }
        _ => false,
    }
}

/// A native stream: every event passed on as it came; the terminal one's usage read and its
/// response stored.
pub struct NativeStream {
    call: Arc<ResponsesCall>,
    keep: Option<Keep>,
    usage: Option<Usage>,
    /// The last `sequence_number` seen, so an event of ours follows on.
    sequence: u64,
    /// The upstream sent an `error` event (already passed on).
    errored: bool,
    done: bool,
}

impl NativeStream {
    pub fn new(call: Arc<ResponsesCall>, keep: Option<Keep>) -> Self {
        NativeStream {
            call,
            keep,
            usage: None,
            sequence: 0,
            errored: false,
            done: false,
        }
    }
}

const TERMINAL: [&str; 3] = [
    "response.completed",
    "response.incomplete",
    "response.failed",
];

impl StreamTranslator for NativeStream {
    fn event(&mut self, event: SseEvent, out: &mut Vec<String>) -> Result<Flow, UpstreamError> {
        if self.done {
            return Ok(Flow::Done);
        }
        let data = event.data.trim();
        if data.is_empty() || data == "[DONE]" {
            return Ok(Flow::More);
        }
        let Ok(Value::Object(parsed)) = serde_json::from_str::<Value>(data) else {
            return Err(UpstreamError::Malformed(
                "sent an event that is not a JSON object".into(),
            ));
        };
        if let Some(n) = parsed.get("sequence_number").and_then(Value::as_u64) {
            self.sequence = n;
        }
        let mut parsed = parsed;
        let kind = parsed
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let kind = kind.as_str();
        let restored = match parsed.get_mut("response") {
            Some(Value::Object(response)) => restore_previous(&self.call, response),
            _ => false,
        };
        if restored {
            let mut rest = parsed.clone();
            rest.remove("type");
            rest.remove("sequence_number");
            out.push(super::object::event(
                kind,
                self.sequence,
                &Value::Object(rest),
            ));
        } else {
            out.push(data.to_string());
        }
        if kind == "error" {
            self.errored = true;
            let text = |f: &str| parsed.get(f).and_then(Value::as_str).map(str::to_string);
            return Err(UpstreamError::InBand {
                code: text("code"),
                message: text("message").unwrap_or_default(),
            });
        }
        if TERMINAL.contains(&kind) {
            self.done = true;
            if let Some(Value::Object(response)) = parsed.get("response") {
                self.usage = response.get("usage").and_then(usage_of);
                if kind != "response.failed"
                    && let Some(keep) = self.keep.take()
                {
                    keep.put(&self.call, response.clone());
                }
            }
            return Ok(Flow::Done);
        }
        Ok(Flow::More)
    }

    fn end(&mut self, _out: &mut Vec<String>) -> Result<(), UpstreamError> {
        if self.done {
            Ok(())
        } else {
            Err(UpstreamError::StreamBroken(
                "closed the stream before response.completed".into(),
            ))
        }
    }

    fn usage(&self) -> Option<Usage> {
        self.usage
    }

    fn failed(&mut self, error: &ApiError, out: &mut Vec<String>) -> bool {
        if !self.errored {
            let fields = json!({
                "code": error.code().unwrap_or("server_error"),
                "message": error.message(),
                "param": Value::Null,
            });
            out.push(event("error", self.sequence + 1, &fields));
        }
        true
    }
}
