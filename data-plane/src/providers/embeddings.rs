//! Embeddings calls. OpenAI-protocol providers (OpenAI, OpenAI-compatible servers, DeepSeek has
//! none) take the client's body at `/embeddings` with the model the plan chose; Mistral takes it
//! with its own name for the vector size (`output_dimension`) and without `user`. Anthropic,
//! DeepSeek and (for now) Gemini refuse, so a plan moves on to a provider that can. The answer is
//! checked to be an embeddings list and passed through, its usage and model read.

use std::borrow::Cow;

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::{Map, Value};

use crate::error::{ApiError, UpstreamError};
use crate::providers::{Protocol, Translated, UpstreamCall};
use crate::telemetry::trace::ResponseFacts;
use crate::telemetry::usage::Usage;

/// The upstream call for `body` on `model`, or why this provider cannot make it.
pub fn build(
    protocol: Protocol,
    body: &Map<String, Value>,
    model: &str,
) -> Result<UpstreamCall, ApiError> {
    let mut out = body.clone();
    out.insert("model".into(), Value::String(model.to_string()));
    let mut dropped = Vec::new();
    match protocol {
        Protocol::OpenAi | Protocol::Compatible => {}
        Protocol::Mistral => {
            if let Some(d) = out.remove("dimensions") {
                out.insert("output_dimension".into(), d);
            }
            if out.remove("user").is_some() {
                dropped.push("user".to_string());
            }
        }
        _ => {
            return Err(ApiError::unsupported_parameter(
                "model",
                format!("This provider ({protocol:?} protocol) has no embeddings API."),
            ));
        }
    }
    let body = serde_json::to_vec(&out).map_err(|_| {
        ApiError::bad_request("invalid_json", "The request could not be re-encoded.")
    })?;
    Ok(UpstreamCall {
        path: "/embeddings".into(),
        body,
        headers: Vec::new(),
        dropped,
        shape: Default::default(),
    })
}

#[derive(Deserialize)]
struct EmbeddingsPeek<'a> {
    #[serde(default)]
    data: Option<Vec<IgnoredAny>>,
    #[serde(borrow, default)]
    model: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    id: Option<Cow<'a, str>>,
    #[serde(default)]
    usage: Option<EmbeddingsUsage>,
}

#[derive(Deserialize)]
struct EmbeddingsUsage {
    #[serde(default)]
    prompt_tokens: u64,
}

/// Checks an answer is an embeddings list and reads its usage and model; the bytes go to the
/// client unchanged.
pub fn read_answer(body: Vec<u8>) -> Result<Translated, UpstreamError> {
    let malformed = || {
        UpstreamError::Malformed("answered with something that is not an embeddings list".into())
    };
    let peek: EmbeddingsPeek<'_> = serde_json::from_slice(&body).map_err(|_| malformed())?;
    if peek.data.is_none() {
        return Err(malformed());
    }
    let usage = peek.usage.map(|u| Usage {
        prompt_tokens: u.prompt_tokens,
        ..Usage::default()
    });
    let facts = ResponseFacts::of(peek.id.as_deref(), peek.model.as_deref(), None);
    Ok(Translated { body, usage, facts })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn mistral_gets_its_own_field_names_and_others_refuse() {
        let body = json!({"model": "e", "input": "x", "dimensions": 256, "user": "u"});
        let body = body.as_object().unwrap();
        let call = build(Protocol::Mistral, body, "codestral-embed").unwrap();
        let sent: Value = serde_json::from_slice(&call.body).unwrap();
        assert_eq!(
            sent,
            json!({"model": "codestral-embed", "input": "x", "output_dimension": 256})
        );
        assert_eq!(call.dropped, ["user"]);
        let call = build(Protocol::OpenAi, body, "text-embedding-3-small").unwrap();
        assert_eq!(call.path, "/embeddings");
        for protocol in [Protocol::Anthropic, Protocol::DeepSeek, Protocol::Gemini] {
            assert_eq!(
                build(protocol, body, "m").unwrap_err().status().as_u16(),
                400
            );
        }
    }

    #[test]
    fn answers_are_checked_and_read() {
        let ok = br#"{"object":"list","data":[{"index":0,"embedding":"AAAA"}],"model":"text-embedding-3-small","usage":{"prompt_tokens":7,"total_tokens":7}}"#;
        let t = read_answer(ok.to_vec()).unwrap();
        assert_eq!(t.usage.unwrap().prompt_tokens, 7);
        assert_eq!(t.facts.model.as_deref(), Some("text-embedding-3-small"));
        assert!(read_answer(br#"{"choices":[]}"#.to_vec()).is_err());
        assert!(read_answer(b"nope".to_vec()).is_err());
    }
}
