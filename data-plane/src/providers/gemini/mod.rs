//! The Gemini adapter (`generateContent` / `streamGenerateContent?alt=sse`): the entry points the
//! provider dispatch calls, error mapping, and the state shared by the request and answer sides.
//!
//! The work is split by direction: `gemini_request` (top-level parameters, tools, generation
//! config), `gemini_messages` (OpenAI messages to `contents`), `gemini_schema` (JSON Schema to
//! Gemini's OpenAPI subset), `gemini_wire` (the answer's wire types, usage, logprobs),
//! `gemini_response` (one answer, and the per-candidate state machine shared with streams),
//! `gemini_args` (Vertex's streamed function-call arguments) and `gemini_stream` (SSE events to
//! chunks). Tests: `gemini_tests` (every recorded answer and stream), `gemini_cassette_tests`
//! (recorded requests, signature round trips), `gemini_request_tests`, `gemini_config_tests`,
//! `gemini_schema_tests`, `gemini_edge_tests` (unrecorded answers, error bodies).
//!
//! Thought signatures: Gemini returns opaque `thoughtSignature`s that must come back on the next
//! turn (Gemini 3 refuses function calls without them). Every answered function call gets a
//! synthesized id (`call_...`, Gemini has none) and the call's name and signature are stored in
//! [`ReasoningCache`] under that id; a signature on text is stored under a digest of the answer's
//! text. The answer also shows a function call's signature to the client the way Google's own
//! OpenAI-compatible endpoint does, as `tool_calls[].extra_content.google.thought_signature`; a
//! client that sends that field back needs no cache (several gateway replicas, restarts).

mod args;
mod messages;
mod request;
mod response;
mod schema;
mod stream;
#[cfg(test)]
mod tests;
mod wire;

use axum::http::HeaderMap;
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::reasoning_cache::ReasoningCache;
use crate::error::{UpstreamError, retry_after};

pub use request::build_request;
pub use response::{translate_response, translate_shaped};
pub use stream::GeminiStream;

/// The signature Google documents for function calls whose real signature is lost (history
/// written by another provider or an old client); Gemini 3 accepts it instead of refusing.
pub(super) const SKIP_SIGNATURE: &str = "skip_thought_signature_validator";

/// Cache key of a synthesized function-call id: `{"name", "signature"}`.
pub(super) fn call_key(id: &str) -> String {
    format!("gemini/call/{id}")
}

/// Cache key of the signature Gemini put on a text answer, by the text's digest.
pub(super) fn text_key(digest: &str) -> String {
    format!("gemini/text/{digest}")
}

/// Hex SHA-256 of a finished digest.
pub(super) fn hex_digest(hasher: Sha256) -> String {
    hex::encode(hasher.finalize())
}

/// Hex SHA-256 of an answer's text (the key its signature is stored under).
pub(super) fn text_digest(text: &str) -> String {
    hex_digest(Sha256::new_with_prefix(text.as_bytes()))
}

/// A tool-call id, unique per answer (`seed` is the gateway's `chatcmpl-...` id) and stable for a
/// given answer, so a replayed stream gives the same ids whatever its split.
pub(super) fn call_id(seed: &str, candidate: u32, n: u32) -> String {
    let digest = hex_digest(Sha256::new_with_prefix(format!("{seed}/{candidate}/{n}")));
    format!("call_{}", &digest[..24])
}

/// Remembers a function call this adapter answered, for the next turn.
pub(super) fn remember_call(cache: &ReasoningCache, id: &str, name: &str, signature: Option<&str>) {
    cache.put(
        &call_key(id),
        json!({ "name": name, "signature": signature }),
    );
}

/// The model generation from its name (`gemini-2.5-flash` → (2, 5), `gemini-3-pro` → (3, 0)).
pub(super) fn generation(model: &str) -> Option<(u32, u32)> {
    let rest = model.strip_prefix("gemini-")?;
    let version: &str = rest.split('-').next()?;
    let mut numbers = version.split('.');
    let major = numbers.next()?.parse().ok()?;
    let minor = numbers.next().map_or(Some(0), |m| m.parse().ok())?;
    Some((major, minor))
}

#[derive(Deserialize)]
struct ErrorEnvelope {
    error: ErrorBody,
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    details: Vec<Value>,
}

/// The `error` object of a Gemini error body (also the JSON-array form `[{"error": ...}]`).
fn parse_error(body: &[u8]) -> Option<ErrorBody> {
    let body = body.trim_ascii();
    if body.first() == Some(&b'[') {
        let list: Vec<ErrorEnvelope> = serde_json::from_slice(body).ok()?;
        return list.into_iter().next().map(|e| e.error);
    }
    serde_json::from_slice::<ErrorEnvelope>(body)
        .ok()
        .map(|e| e.error)
}

/// `RetryInfo.retryDelay` (`"34.4s"`) in whole seconds, rounded up.
fn retry_delay(details: &[Value]) -> Option<u64> {
    let delay = details
        .iter()
        .filter(|d| {
            d["@type"]
                .as_str()
                .is_some_and(|t| t.ends_with("RetryInfo"))
        })
        .find_map(|d| d["retryDelay"].as_str())?;
    let seconds: f64 = delay.trim().strip_suffix('s')?.parse().ok()?;
    Some(seconds.max(0.0).ceil() as u64)
}

/// Whether a detail of the given type has a string field matching `test`.
fn detail_has(details: &[Value], kind: &str, test: impl Fn(&Value) -> bool) -> bool {
    details
        .iter()
        .filter(|d| d["@type"].as_str().is_some_and(|t| t.ends_with(kind)))
        .any(test)
}

/// Maps a Gemini error answer. `code` is Gemini's `status` string (`RESOURCE_EXHAUSTED`,
/// `INVALID_ARGUMENT`, ...) with two classifications on top:
/// * a 429 that is an exhausted quota rather than a rate limit (no `RetryInfo` and no
///   `Retry-After` while the message points at billing, or a per-day quota in `QuotaFailure`)
///   gets `insufficient_quota`, which the retry classifier does not retry;
/// * Gemini answers a bad API key with 400 `INVALID_ARGUMENT` + `ErrorInfo.reason
///   API_KEY_INVALID`; that is reported as 401 so the client hears "our credential" and not
///   "your request".
pub fn map_error(status: u16, headers: &HeaderMap, body: &[u8]) -> UpstreamError {
    let Some(error) = parse_error(body) else {
        return UpstreamError::Status {
            status,
            code: None,
            message: format!("HTTP {status}"),
            retry_after: retry_after(headers),
        };
    };
    let message = error
        .message
        .filter(|m| !m.trim().is_empty())
        .unwrap_or_else(|| format!("HTTP {status}"));
    let delay = retry_delay(&error.details);
    let retry_after = delay.or_else(|| retry_after(headers));
    let mut code = error.status;
    let mut status = status;
    if status == 429 {
        let per_day = detail_has(&error.details, "QuotaFailure", |d| {
            d["violations"].as_array().is_some_and(|v| {
                v.iter()
                    .any(|v| v["quotaId"].as_str().is_some_and(|q| q.contains("PerDay")))
            })
        });
        let billing = message.to_ascii_lowercase().contains("billing");
        if per_day || (billing && retry_after.is_none()) {
            code = Some("insufficient_quota".into());
        }
    }
    let bad_key = detail_has(&error.details, "ErrorInfo", |d| {
        d["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("API_KEY_"))
    });
    if status == 400 && bad_key {
        status = 401;
    }
    UpstreamError::Status {
        status,
        code,
        message,
        retry_after,
    }
}

/// An in-band `{"error": ...}` stream event.
pub(super) fn in_band_error(data: &str) -> UpstreamError {
    let error = parse_error(data.as_bytes());
    UpstreamError::InBand {
        code: error.as_ref().and_then(|e| e.status.clone()),
        message: error
            .and_then(|e| e.message)
            .unwrap_or_else(|| "failed mid-stream".into()),
    }
}
