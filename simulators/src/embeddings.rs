//! Embeddings as each provider serves them: OpenAI's and Mistral's `POST /v1/embeddings`
//! (string, string array or token arrays; `encoding_format` float or base64; OpenAI's
//! `dimensions` for the text-embedding-3 models, Mistral's `output_dimension` for codestral-embed)
//! and Gemini's `models/{model}:embedContent` / `:batchEmbedContents` (`outputDimensionality`, at
//! most 100 requests a batch). Vectors are deterministic: the same text always gets the same
//! vector, so a test can tell inputs apart and check their order.

use base64::Engine as _;
use serde_json::{Value, json};

use crate::errors::ApiError;
use crate::pipeline::Reply;
use crate::text;
use crate::{Protocol, SimConfig};

/// Inputs one OpenAI request may carry.
const MAX_INPUTS: usize = 2048;
/// Requests one Gemini batch may carry.
const MAX_GEMINI_BATCH: usize = 100;

/// A model's full vector length, and whether it can be shortened on request.
fn model_dims(protocol: Protocol, model: &str) -> (usize, bool) {
    match model {
        "text-embedding-3-small" => (1536, true),
        "text-embedding-3-large" => (3072, true),
        "text-embedding-ada-002" => (1536, false),
        "mistral-embed" => (1024, false),
        "codestral-embed" | "codestral-embed-2505" => (1536, true),
        "gemini-embedding-001" => (3072, true),
        "text-embedding-004" => (768, true),
        _ => match protocol {
            Protocol::Mistral => (1024, false),
            Protocol::Gemini => (768, true),
            _ => (1536, true),
        },
    }
}

/// The full, unit-length vector of `text`: a xorshift stream seeded by the text's FNV-1a hash.
fn vector(text: &str, dims: usize) -> Vec<f32> {
    let mut seed: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.as_bytes() {
        seed = (seed ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
    }
    let mut state = seed | 1;
    let mut v: Vec<f32> = (0..dims)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect();
    normalize(&mut v);
    v
}

fn normalize(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
}

/// Little-endian float32 bytes in base64, as OpenAI's `encoding_format: "base64"` returns them.
fn base64_of(v: &[f32]) -> String {
    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn invalid(message: impl Into<String>, param: &str) -> ApiError {
    ApiError::new(400, message)
        .kind("invalid_request_error")
        .param(param)
}

/// The texts of an OpenAI-shape `input` (a token array stands for its numbers joined), and the
/// tokens they count for.
fn inputs(input: Option<&Value>, tokens_allowed: bool) -> Result<Vec<(String, u64)>, ApiError> {
    let bad = || {
        invalid(
            "'$.input' is invalid. Please check the API reference.",
            "input",
        )
    };
    let text = |s: &str| -> Result<(String, u64), ApiError> {
        if s.is_empty() {
            return Err(bad());
        }
        Ok((s.to_string(), text::words(s).max(1)))
    };
    let tokens = |t: &[Value]| -> Result<(String, u64), ApiError> {
        if !tokens_allowed || t.is_empty() || !t.iter().all(|n| n.as_u64().is_some()) {
            return Err(bad());
        }
        let joined: Vec<String> = t.iter().map(Value::to_string).collect();
        Ok((joined.join(" "), t.len() as u64))
    };
    let all = match input {
        Some(Value::String(s)) => vec![text(s)?],
        Some(Value::Array(items)) if items.is_empty() => return Err(bad()),
        Some(Value::Array(items)) if items.iter().all(Value::is_u64) => vec![tokens(items)?],
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| match item {
                Value::String(s) => text(s),
                Value::Array(t) => tokens(t),
                _ => Err(bad()),
            })
            .collect::<Result<_, _>>()?,
        _ => return Err(bad()),
    };
    if all.len() > MAX_INPUTS {
        return Err(invalid(
            format!(
                "Invalid 'input': array too long. Expected an array with maximum length {MAX_INPUTS}, but got an array with length {} instead.",
                all.len()
            ),
            "input",
        ));
    }
    Ok(all)
}

/// Answers `POST /v1/embeddings` for OpenAI and Mistral.
pub(crate) fn respond_openai(config: &SimConfig, body: &Value) -> Result<Reply, ApiError> {
    let protocol = config.protocol;
    let mistral = protocol == Protocol::Mistral;
    let (size_field, known): (&str, &[&str]) = if mistral {
        (
            "output_dimension",
            &[
                "model",
                "input",
                "output_dimension",
                "output_dtype",
                "encoding_format",
            ],
        )
    } else {
        (
            "dimensions",
            &["model", "input", "encoding_format", "dimensions", "user"],
        )
    };
    if config.strict_fields
        && let Some(extra) = body
            .as_object()
            .and_then(|o| o.keys().find(|k| !known.contains(&k.as_str())))
    {
        return Err(if mistral {
            ApiError::new(422, format!("Extra inputs are not permitted: body.{extra}"))
        } else {
            invalid(
                format!("Unrecognized request argument supplied: {extra}"),
                extra,
            )
        });
    }
    let model = body["model"].as_str().unwrap_or_default();
    if model.is_empty() {
        return Err(invalid("you must provide a model parameter", "model"));
    }
    let texts = inputs(body.get("input"), !mistral)?;
    let (full, shortens) = model_dims(protocol, model);
    let dims = match body.get(size_field) {
        None | Some(Value::Null) => full,
        Some(_) if !shortens => {
            return Err(invalid(
                "This model does not support specifying dimensions.",
                size_field,
            ));
        }
        Some(v) => match v.as_u64() {
            Some(n) if (1..=full as u64).contains(&n) => n as usize,
            _ => {
                return Err(invalid(
                    format!("Invalid value for '{size_field}': must be between 1 and {full}."),
                    size_field,
                ));
            }
        },
    };
    let base64 = match body.get("encoding_format").and_then(Value::as_str) {
        None | Some("float") => false,
        Some("base64") => true,
        Some(other) => {
            return Err(invalid(
                format!(
                    "Invalid value for 'encoding_format': '{other}'. Supported values are: 'float' and 'base64'."
                ),
                "encoding_format",
            ));
        }
    };
    let mut tokens = 0;
    let data: Vec<Value> = texts
        .iter()
        .enumerate()
        .map(|(index, (t, n))| {
            tokens += n;
            let mut v = vector(t, full);
            v.truncate(dims);
            normalize(&mut v);
            let embedding = if base64 {
                Value::String(base64_of(&v))
            } else {
                json!(v)
            };
            json!({"object": "embedding", "index": index, "embedding": embedding})
        })
        .collect();
    let mut answer = json!({
        "object": "list",
        "data": data,
        "model": config.answer_model.as_deref().unwrap_or(model),
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    });
    if mistral {
        answer["id"] = json!(uuid::Uuid::new_v4().simple().to_string());
        answer["usage"]["completion_tokens"] = json!(0);
    }
    Ok(Reply::Json(answer))
}

/// One Gemini `EmbedContentRequest`: its text and `outputDimensionality`.
fn gemini_one(model: &str, request: &Value) -> Result<Value, ApiError> {
    let parts = request
        .pointer("/content/parts")
        .and_then(Value::as_array)
        .filter(|p| !p.is_empty())
        .ok_or_else(|| {
            ApiError::new(
                400,
                "* EmbedContentRequest.content: contents is not specified",
            )
        })?;
    let text: String = parts
        .iter()
        .filter_map(|p| p.get("text").and_then(Value::as_str))
        .collect::<Vec<_>>()
        .join("");
    let (full, _) = model_dims(Protocol::Gemini, model);
    let mut v = vector(&text, full);
    if let Some(n) = request.get("outputDimensionality").and_then(Value::as_u64) {
        if n == 0 || n as usize > full {
            return Err(ApiError::new(
                400,
                format!(
                    "* EmbedContentRequest.output_dimensionality: must be between 1 and {full}"
                ),
            ));
        }
        // A shortened Gemini vector is the full one cut (not normalized again).
        v.truncate(n as usize);
    }
    Ok(json!({ "values": v }))
}

/// Answers `models/{model}:embedContent` and `:batchEmbedContents`.
pub(crate) fn respond_gemini(model: &str, batch: bool, body: &Value) -> Result<Reply, ApiError> {
    if !batch {
        return Ok(Reply::Json(
            json!({ "embedding": gemini_one(model, body)? }),
        ));
    }
    let requests = body
        .get("requests")
        .and_then(Value::as_array)
        .filter(|r| !r.is_empty())
        .ok_or_else(|| {
            ApiError::new(
                400,
                "* BatchEmbedContentsRequest.requests: requests is not specified",
            )
        })?;
    if requests.len() > MAX_GEMINI_BATCH {
        return Err(ApiError::new(
            400,
            format!(
                "* BatchEmbedContentsRequest.requests: at most {MAX_GEMINI_BATCH} requests can be in one batch"
            ),
        ));
    }
    let mut embeddings = Vec::with_capacity(requests.len());
    for r in requests {
        let named = r.get("model").and_then(Value::as_str).unwrap_or_default();
        if named.strip_prefix("models/") != Some(model) {
            return Err(ApiError::new(
                400,
                format!(
                    "Model in the request ({named}) does not match the model of the batch (models/{model})."
                ),
            ));
        }
        embeddings.push(gemini_one(model, r)?);
    }
    Ok(Reply::Json(json!({ "embeddings": embeddings })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_are_deterministic_unit_length_and_distinct() {
        let a = vector("hello", 64);
        assert_eq!(a, vector("hello", 64));
        assert_ne!(a, vector("hellp", 64));
        let norm: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4);
    }

    #[test]
    fn base64_is_little_endian_float32() {
        let encoded = base64_of(&[1.0, -2.0]);
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .unwrap();
        assert_eq!(
            bytes,
            [1.0f32.to_le_bytes(), (-2.0f32).to_le_bytes()].concat()
        );
    }
}
