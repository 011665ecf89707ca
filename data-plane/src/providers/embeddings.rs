//! Embeddings calls. OpenAI-protocol providers (OpenAI, OpenAI-compatible servers) take the
//! client's body at `/embeddings` with the model the plan chose; Mistral takes it with its own name
//! for the vector size (`output_dimension`) and without `user`; Gemini gets `batchEmbedContents`
//! calls of at most 100 texts each (`dimensions` as `outputDimensionality`) whose answers become
//! one OpenAI list in the input's order, base64-encoded here when the client asked. Anthropic and DeepSeek
//! have no embeddings API and refuse, so a plan moves on to a provider that can. An OpenAI-shape
//! answer is checked and passed through, its usage and model read.

use std::borrow::Cow;

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::{Map, Value};

use crate::error::{ApiError, UpstreamError};
use crate::providers::{Protocol, Translated, UpstreamCall};
use crate::telemetry::trace::ResponseFacts;
use crate::telemetry::usage::Usage;

/// The first upstream call for `body` on `model` and those to make after it, in order (none, or
/// for Gemini one per further 100 inputs), or why this provider cannot make them.
pub fn build(
    protocol: Protocol,
    body: &Map<String, Value>,
    model: &str,
) -> Result<(UpstreamCall, Vec<UpstreamCall>), ApiError> {
    let mut out = body.clone();
    out.insert("model".into(), Value::String(model.to_string()));
    let mut dropped = Vec::new();
    match protocol {
        Protocol::OpenAi | Protocol::Compatible => {}
        Protocol::Gemini => return gemini_calls(body, model),
        Protocol::Mistral => {
            if !text_only(body) {
                return Err(ApiError::unsupported_parameter(
                    "input",
                    "Mistral embeds text, not token ids.",
                ));
            }
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
    let call = UpstreamCall {
        path: "/embeddings".into(),
        body,
        headers: Vec::new(),
        dropped,
        shape: Default::default(),
    };
    Ok((call, Vec::new()))
}

/// Whether `input` is text (a string or strings), not token ids.
fn text_only(body: &Map<String, Value>) -> bool {
    match body.get("input") {
        Some(Value::String(_)) => true,
        Some(Value::Array(items)) => items.iter().all(Value::is_string),
        _ => false,
    }
}

/// Texts one Gemini `batchEmbedContents` call may carry.
pub const GEMINI_BATCH: usize = 100;

fn gemini_calls(
    body: &Map<String, Value>,
    model: &str,
) -> Result<(UpstreamCall, Vec<UpstreamCall>), ApiError> {
    let texts: Vec<&str> = match body.get("input") {
        Some(Value::String(s)) => vec![s],
        Some(Value::Array(items)) => items
            .iter()
            .map(Value::as_str)
            .collect::<Option<_>>()
            .ok_or_else(|| {
                ApiError::unsupported_parameter("input", "Gemini embeds text, not token ids.")
            })?,
        _ => Vec::new(),
    };
    let dimensions = body.get("dimensions").and_then(Value::as_u64);
    let request = |t: &&str| {
        let mut r = serde_json::json!({
            "model": format!("models/{model}"),
            "content": {"parts": [{"text": t}]},
        });
        if let Some(d) = dimensions {
            r["outputDimensionality"] = d.into();
        }
        r
    };
    let dropped = if body.contains_key("user") {
        vec!["user".to_string()]
    } else {
        Vec::new()
    };
    let mut calls = texts
        .chunks(GEMINI_BATCH)
        .map(|batch| {
            let requests: Vec<Value> = batch.iter().map(request).collect();
            let body =
                serde_json::to_vec(&serde_json::json!({ "requests": requests })).map_err(|_| {
                    ApiError::bad_request("invalid_json", "The request could not be re-encoded.")
                })?;
            Ok(UpstreamCall {
                path: format!("/models/{model}:batchEmbedContents"),
                body,
                headers: Vec::new(),
                dropped: dropped.clone(),
                shape: Default::default(),
            })
        })
        .collect::<Result<std::collections::VecDeque<_>, ApiError>>()?;
    let first = calls
        .pop_front()
        .ok_or_else(|| ApiError::invalid("input", "There is nothing to embed."))?;
    Ok((first, calls.into()))
}

#[derive(Deserialize)]
struct GeminiBatch {
    #[serde(default)]
    embeddings: Vec<GeminiEmbedding>,
}

#[derive(Deserialize)]
struct GeminiEmbedding {
    #[serde(default)]
    values: Vec<f32>,
}

/// Gemini's `batchEmbedContents` answers, in order, as one OpenAI embeddings list. Gemini
/// reports no token counts: usage is the request's own estimate.
fn gemini_answer(
    bodies: &[Vec<u8>],
    base64: bool,
    model: &str,
    prompt_estimate: u64,
) -> Result<Translated, UpstreamError> {
    use base64::Engine as _;
    let mut embeddings = Vec::new();
    for body in bodies {
        let batch: GeminiBatch = serde_json::from_slice(body).map_err(|_| {
            UpstreamError::Malformed(
                "answered with something that is not a Gemini embeddings batch".into(),
            )
        })?;
        embeddings.extend(batch.embeddings);
    }
    let data: Vec<Value> = embeddings
        .iter()
        .enumerate()
        .map(|(index, e)| {
            let embedding = if base64 {
                let bytes: Vec<u8> = e.values.iter().flat_map(|x| x.to_le_bytes()).collect();
                Value::String(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                serde_json::json!(e.values)
            };
            serde_json::json!({"object": "embedding", "index": index, "embedding": embedding})
        })
        .collect();
    let answer = serde_json::json!({
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": prompt_estimate, "total_tokens": prompt_estimate},
    });
    let body = serde_json::to_vec(&answer)
        .map_err(|_| UpstreamError::Malformed("could not be re-encoded".into()))?;
    Ok(Translated {
        body,
        usage: Some(Usage {
            prompt_tokens: prompt_estimate,
            ..Usage::default()
        }),
        facts: ResponseFacts::of(None, Some(model), None),
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

/// The client's answer from the provider's: Gemini's translated, the others checked and passed
/// through. `request` is the client's body; `prompt_estimate` its estimated tokens.
pub fn read_answer(
    protocol: Protocol,
    mut bodies: Vec<Vec<u8>>,
    request: &Map<String, Value>,
    model: &str,
    prompt_estimate: u64,
) -> Result<Translated, UpstreamError> {
    if protocol == Protocol::Gemini {
        let base64 = request.get("encoding_format").and_then(Value::as_str) == Some("base64");
        return gemini_answer(&bodies, base64, model, prompt_estimate);
    }
    if bodies.is_empty() {
        return Err(UpstreamError::Malformed("sent no answer".into()));
    }
    pass_through(bodies.swap_remove(0))
}

/// Checks an answer is an embeddings list and reads its usage and model; the bytes go to the
/// client unchanged.
fn pass_through(body: Vec<u8>) -> Result<Translated, UpstreamError> {
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
        let (call, _) = build(Protocol::Mistral, body, "codestral-embed").unwrap();
        let sent: Value = serde_json::from_slice(&call.body).unwrap();
        assert_eq!(
            sent,
            json!({"model": "codestral-embed", "input": "x", "output_dimension": 256})
        );
        assert_eq!(call.dropped, ["user"]);
        let ids = json!({"model": "e", "input": [[1, 2]]});
        let e = build(Protocol::Mistral, ids.as_object().unwrap(), "mistral-embed").unwrap_err();
        assert_eq!(e.param(), Some("input"));
        let (call, _) = build(Protocol::OpenAi, body, "text-embedding-3-small").unwrap();
        assert_eq!(call.path, "/embeddings");
        for protocol in [Protocol::Anthropic, Protocol::DeepSeek] {
            assert_eq!(
                build(protocol, body, "m").unwrap_err().status().as_u16(),
                400
            );
        }
    }

    #[test]
    fn answers_are_checked_and_read() {
        let ok = br#"{"object":"list","data":[{"index":0,"embedding":"AAAA"}],"model":"text-embedding-3-small","usage":{"prompt_tokens":7,"total_tokens":7}}"#;
        let t = pass_through(ok.to_vec()).unwrap();
        assert_eq!(t.usage.unwrap().prompt_tokens, 7);
        assert_eq!(t.facts.model.as_deref(), Some("text-embedding-3-small"));
        assert!(pass_through(br#"{"choices":[]}"#.to_vec()).is_err());
        assert!(pass_through(b"nope".to_vec()).is_err());
    }

    #[test]
    fn gemini_gets_one_batch_and_its_answer_becomes_openai_s_list() {
        let body = json!({"model": "e", "input": ["a", "b"], "dimensions": 2, "user": "u",
            "encoding_format": "base64"});
        let body = body.as_object().unwrap();
        let (call, _) = build(Protocol::Gemini, body, "gemini-embedding-001").unwrap();
        assert_eq!(call.path, "/models/gemini-embedding-001:batchEmbedContents");
        let sent: Value = serde_json::from_slice(&call.body).unwrap();
        assert_eq!(
            sent["requests"][1],
            json!({"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "b"}]},
                "outputDimensionality": 2})
        );
        assert_eq!(call.dropped, ["user"]);
        let answer = br#"{"embeddings":[{"values":[1.0,0.5]},{"values":[0.0,-1.0]}]}"#;
        // Two batches' answers make one list, indexed across them.
        let t = read_answer(
            Protocol::Gemini,
            vec![answer.to_vec(), answer.to_vec()],
            body,
            "gemini-embedding-001",
            3,
        )
        .unwrap();
        let out: Value = serde_json::from_slice(&t.body).unwrap();
        assert_eq!(out["data"][3]["index"], 3);
        use base64::Engine as _;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(out["data"][0]["embedding"].as_str().unwrap())
            .unwrap();
        assert_eq!(bytes, [1.0f32.to_le_bytes(), 0.5f32.to_le_bytes()].concat());
        assert_eq!(out["usage"]["prompt_tokens"], 3);
        let many = json!({"model": "e", "input": vec!["x"; 201]});
        let (first, rest) = build(Protocol::Gemini, many.as_object().unwrap(), "m").unwrap();
        let sizes: Vec<usize> = std::iter::once(&first)
            .chain(&rest)
            .map(|c| {
                let v: Value = serde_json::from_slice(&c.body).unwrap();
                v["requests"].as_array().unwrap().len()
            })
            .collect();
        assert_eq!(sizes, [100, 100, 1]);
        let ids = json!({"model": "e", "input": [[1, 2]]});
        assert!(build(Protocol::Gemini, ids.as_object().unwrap(), "m").is_err());
    }
}
