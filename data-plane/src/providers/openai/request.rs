//! The request to an OpenAI-protocol upstream: the client's body as it is (usage asked for), or
//! one built from a dialect's allow-list (Mistral, DeepSeek).

use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};
use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::providers::{AnswerShape, Protocol, RequestCtx, UpstreamCall, deepseek, mistral};

/// Builds the upstream body: the client's fields with the upstream model, asking for usage.
pub fn build_request(protocol: Protocol, ctx: &RequestCtx<'_>) -> Result<UpstreamCall, ApiError> {
    let encoded = match protocol {
        Protocol::Mistral => mistral::adapt_request(ctx)
            .and_then(|b| encode(&b.body).map(|bytes| (bytes, b.dropped))),
        Protocol::DeepSeek => deepseek::adapt_request(ctx)
            .and_then(|b| encode(&b.body).map(|bytes| (bytes, b.dropped))),
        _ => {
            // Ask OpenAI for usage even when the client did not, so every request is recorded.
            let passthrough = Passthrough {
                body: ctx.body,
                model: ctx.model,
                ask_usage: ctx.stream && protocol == Protocol::OpenAi,
            };
            encode(&passthrough).map(|bytes| (bytes, Vec::new()))
        }
    };
    let (body, dropped) = encoded?;
    Ok(UpstreamCall {
        path: "/chat/completions".into(),
        body,
        headers: Vec::new(),
        dropped,
        shape: AnswerShape::default(),
    })
}

fn encode(body: &impl Serialize) -> Result<Vec<u8>, ApiError> {
    serde_json::to_vec(body)
        .map_err(|_| ApiError::bad_request("invalid_json", "The request could not be encoded."))
}

/// OpenAI itself and compatible servers get every client field, unknown ones included, with the
/// upstream model name (and `stream_options.include_usage` when asked) written in on the fly, so
/// the body is serialised straight from the parsed request without copying it.
struct Passthrough<'a> {
    body: &'a Map<String, Value>,
    model: &'a str,
    ask_usage: bool,
}

impl Serialize for Passthrough<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        let mut saw_options = false;
        map.serialize_entry("model", self.model)?;
        for (key, value) in self.body {
            match key.as_str() {
                "model" => {}
                "stream_options" if self.ask_usage => {
                    saw_options = true;
                    map.serialize_entry(key, &WithUsage(value.as_object()))?;
                }
                _ => map.serialize_entry(key, value)?,
            }
        }
        if self.ask_usage && !saw_options {
            map.serialize_entry("stream_options", &WithUsage(None))?;
        }
        map.end()
    }
}

/// A `stream_options` object with `include_usage: true`.
struct WithUsage<'a>(Option<&'a Map<String, Value>>);

impl Serialize for WithUsage<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        for (key, value) in self
            .0
            .into_iter()
            .flatten()
            .filter(|(k, _)| *k != "include_usage")
        {
            map.serialize_entry(key, value)?;
        }
        map.serialize_entry("include_usage", &true)?;
        map.end()
    }
}
