//! OpenAI-protocol error bodies (also Mistral's and DeepSeek's) as an [`UpstreamError`].

use axum::http::HeaderMap;
use serde::Deserialize;
use serde_json::Value;

use crate::error::{UpstreamError, retry_after};

#[derive(Deserialize)]
struct ErrorEnvelope {
    error: ErrorBody,
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    code: Option<Value>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
}

fn parse_error(body: &[u8]) -> (Option<String>, Option<String>) {
    let Ok(envelope) = serde_json::from_slice::<ErrorEnvelope>(body) else {
        return (None, None);
    };
    let e = envelope.error;
    let code = match e.code {
        Some(Value::String(s)) => Some(s),
        _ => e.kind,
    };
    (code, e.message)
}

/// An in-band `{"error": ...}` (or Mistral's flat `{"object":"error",...}`) stream event.
pub(super) fn in_band_error(data: &str) -> UpstreamError {
    let (code, message) = error_fields(data.as_bytes());
    UpstreamError::InBand {
        code,
        message: message.unwrap_or_else(|| "failed mid-stream".into()),
    }
}

/// Maps an OpenAI-style error answer (DeepSeek's too), Mistral's flat
/// `{"object":"error","message","type","code"}` (whose `message` is an object with `detail` for
/// validation errors) and a bare FastAPI-style `{"detail":[...]}`.
pub fn map_error(status: u16, headers: &HeaderMap, body: &[u8]) -> UpstreamError {
    let (code, message) = error_fields(body);
    UpstreamError::Status {
        status,
        code,
        message: message.unwrap_or_else(|| format!("HTTP {status}")),
        retry_after: retry_after(headers),
    }
}

/// The code and message of any of the error shapes [`map_error`] reads.
fn error_fields(body: &[u8]) -> (Option<String>, Option<String>) {
    let (code, message) = parse_error(body);
    if message.is_some() {
        return (code, message);
    }
    let Ok(Value::Object(o)) = serde_json::from_slice::<Value>(body) else {
        return (code, None);
    };
    let message = match o.get("message") {
        Some(Value::String(m)) => Some(m.clone()),
        Some(Value::Object(m)) => m.get("detail").and_then(render_detail),
        _ => o.get("detail").and_then(render_detail),
    };
    let code = o.get("type").and_then(Value::as_str).map(str::to_string);
    (code, message)
}

/// Validation details (`[{loc, msg, input}]`) as `body.user: Extra inputs are not permitted`,
/// leaving out `input`: it quotes what the client sent, which can be a secret.
fn render_detail(detail: &Value) -> Option<String> {
    let items = match detail {
        Value::String(s) => return Some(s.clone()),
        Value::Array(items) => items,
        _ => return None,
    };
    let rendered: Vec<String> = items
        .iter()
        .filter_map(|item| {
            let msg = item.get("msg")?.as_str()?;
            let loc: Vec<String> = item
                .get("loc")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|p| p.as_str().map_or_else(|| p.to_string(), str::to_string))
                .collect();
            Some(if loc.is_empty() {
                msg.to_string()
            } else {
                format!("{}: {msg}", loc.join("."))
            })
        })
        .collect();
    (!rendered.is_empty()).then(|| rendered.join("; "))
}
