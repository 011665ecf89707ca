//! Calling providers: send an adapter's request with the credential header, classify failures
//! (retryable or not), and scrub secrets from whatever the provider says before a client sees it.

mod response;
pub mod stream;

pub use response::UpstreamResponse;

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode};
use bytes::Bytes;
use http_body_util::Full;

use crate::error::ApiError;
use crate::providers::{self, UpstreamCall};
use crate::runtime::{CredentialRt, ProviderRt};

/// Most bytes of an upstream error body that are read.
const MAX_ERROR_BODY: usize = 64 * 1024;
/// Most bytes of a non-streaming upstream answer.
pub const MAX_RESPONSE_BODY: usize = 64 * 1024 * 1024;

/// How one upstream attempt failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpstreamError {
    Connect(String),
    Timeout,
    /// The provider answered with an error status.
    Status {
        status: u16,
        code: Option<String>,
        message: String,
        retry_after: Option<u64>,
    },
    /// The provider reported an error inside a stream.
    InBand {
        code: Option<String>,
        message: String,
    },
    /// The provider answered 2xx with something that is not a valid answer.
    Malformed(String),
    /// A stream ended or broke (before its first event, this is retryable).
    StreamBroken(String),
    /// Not tried: every credential is cooling down or the circuit breaker is open.
    Unavailable(String),
}

/// Error codes that mean "out of money", which no retry fixes (providers.md rule 2).
fn is_quota(code: Option<&str>) -> bool {
    matches!(
        code,
        Some(
            "insufficient_quota"
                | "billing_hard_limit_reached"
                | "enforced_spend_limit_reached"
                | "insufficient_balance"
        )
    )
}

impl UpstreamError {
    /// Whether trying the next attempt may help (status and body together).
    pub fn retryable(&self) -> bool {
        match self {
            UpstreamError::Connect(_)
            | UpstreamError::Timeout
            | UpstreamError::StreamBroken(_)
            | UpstreamError::Malformed(_)
            | UpstreamError::Unavailable(_) => true,
            // OpenAI, Anthropic, and Gemini's `status` for its 500, 503 and 504.
            UpstreamError::InBand { code, .. } => matches!(
                code.as_deref(),
                Some(
                    "overloaded_error"
                        | "server_error"
                        | "api_error"
                        | "INTERNAL"
                        | "UNAVAILABLE"
                        | "DEADLINE_EXCEEDED"
                )
            ),
            UpstreamError::Status { status, code, .. } => match status {
                429 => !is_quota(code.as_deref()),
                408 | 409 | 500 | 502 | 503 | 504 | 529 => true,
                _ => false,
            },
        }
    }

    /// Whether the provider said the model does not exist or our account cannot use it: 404 from
    /// OpenAI (`model_not_found`), Anthropic (`not_found_error`) and Gemini (`NOT_FOUND`);
    /// Mistral's 400 `invalid_model`, DeepSeek's 400 "Model Not Exist", and 400/403 answers that
    /// say so in their code or message.
    pub fn is_model_missing(&self) -> bool {
        let UpstreamError::Status {
            status,
            code,
            message,
            ..
        } = self
        else {
            return false;
        };
        match status {
            404 => true,
            400 | 403 | 422 => {
                matches!(code.as_deref(), Some("model_not_found" | "invalid_model"))
                    || says_model_missing(message)
            }
            _ => false,
        }
    }

    /// What the client is told when this is the final failure.
    pub fn to_api_error(&self, provider: &str) -> ApiError {
        match self {
            UpstreamError::Connect(_) => {
                ApiError::unavailable(format!("Provider `{provider}` could not be reached."))
            }
            UpstreamError::Unavailable(why) => {
                ApiError::unavailable(format!("Provider `{provider}` {why}."))
            }
            UpstreamError::Timeout => {
                ApiError::timeout(format!("Provider `{provider}` did not answer in time."))
            }
            UpstreamError::Malformed(why) => ApiError::bad_gateway(
                "bad_upstream_response",
                format!("Provider `{provider}` {why}."),
            ),
            UpstreamError::StreamBroken(why) => ApiError::bad_gateway(
                "upstream_stream_error",
                format!("Provider `{provider}` {why}."),
            ),
            UpstreamError::InBand { message, .. } => ApiError::bad_gateway(
                "upstream_stream_error",
                format!("Provider `{provider}` reported an error mid-stream: {message}"),
            ),
            UpstreamError::Status {
                status,
                message,
                retry_after,
                code,
            } => match status {
                401 | 403 => ApiError::bad_gateway(
                    "upstream_auth_failed",
                    format!(
                        "Provider `{provider}` refused TokenRouter's credential; an operator must fix it."
                    ),
                ),
                402 => {
                    let mut e = ApiError::rate_limited(
                        format!("Provider `{provider}` has insufficient balance: {message}"),
                        None,
                    );
                    e.code = Some("insufficient_quota");
                    e
                }
                429 if is_quota(code.as_deref()) => {
                    let mut e =
                        ApiError::rate_limited(format!("Provider `{provider}`: {message}"), None);
                    e.code = Some("insufficient_quota");
                    e
                }
                429 => ApiError::rate_limited(
                    format!("Provider `{provider}` is rate limiting: {message}"),
                    *retry_after,
                ),
                400..=499 => {
                    let mut e = ApiError::bad_request(
                        "upstream_rejected",
                        format!("Provider `{provider}` rejected the request: {message}"),
                    );
                    // OpenAI answers invalid parameters with 400; Mistral and DeepSeek use 422
                    // (providers.md §B6, errors table: 400/422 → 400).
                    if *status != 422 {
                        e.status = StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_REQUEST);
                    }
                    e
                }
                _ => ApiError::unavailable(format!(
                    "Provider `{provider}` failed ({status}): {message}"
                )),
            },
        }
    }
}

/// Whether an error message says a model is unknown or out of reach ("Model Not Exist",
/// "Invalid model: x", "does not have access to model x").
fn says_model_missing(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("model")
        && [
            "not exist",
            "not found",
            "invalid model",
            "have access",
            "no access",
        ]
        .iter()
        .any(|p| m.contains(p))
}

/// Sends an adapter's request to the provider; returns the response only for a 2xx status. The
/// `timeout` covers the whole exchange, body included (see [`UpstreamResponse::chunk`]).
pub async fn send(
    provider: &ProviderRt,
    credential: Option<&CredentialRt>,
    call: UpstreamCall,
    request_id: &str,
    timeout: std::time::Duration,
) -> Result<UpstreamResponse, UpstreamError> {
    let deadline = tokio::time::Instant::now() + timeout;
    let uri = match &provider.fixed_uri {
        Some(uri) if provider.protocol.fixed_path() == Some(call.path.as_str()) => uri.clone(),
        _ => upstream_uri(&provider.base_url, &call.path)
            .ok_or_else(|| UpstreamError::Connect("has an invalid URL".into()))?,
    };
    let mut request = http::Request::post(uri)
        .body(Full::new(Bytes::from(call.body)))
        .map_err(|_| UpstreamError::Connect("has an invalid URL".into()))?;
    let headers = request.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(id) = HeaderValue::from_str(request_id) {
        headers.insert("x-request-id", id);
    }
    for (name, value) in call.headers {
        let name = http::HeaderName::from_bytes(name.as_bytes());
        let value = HeaderValue::try_from(value);
        let (Ok(name), Ok(value)) = (name, value) else {
            return Err(UpstreamError::Connect(
                "could not be sent a header the adapter formed".into(),
            ));
        };
        headers.insert(name, value);
    }
    if let Some(c) = credential {
        headers.insert(c.header.0.clone(), c.header.1.clone());
    }
    let response = match tokio::time::timeout_at(deadline, provider.client.request(request)).await {
        Err(_) => return Err(UpstreamError::Timeout),
        Ok(Err(e)) => return Err(classify_transport(&e)),
        Ok(Ok(r)) => UpstreamResponse::new(r, deadline),
    };
    if response.status().is_success() {
        return Ok(response);
    }
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = read_capped(response, MAX_ERROR_BODY)
        .await
        .unwrap_or_default();
    let mut error = providers::upstream_error(provider.protocol, status, &headers, &body);
    if let UpstreamError::Status { message, .. } = &mut error {
        *message = scrub(message, credential.map(|c| c.secret.0.as_str()))
            .chars()
            .take(2000)
            .collect();
    }
    Err(error)
}

/// `base_url` + `path` as a request URI: parsed as a URL first, which normalises what a URI would
/// refuse (an international host name, characters to percent-encode).
pub fn upstream_uri(base_url: &str, path: &str) -> Option<http::Uri> {
    let url = url::Url::parse(&format!("{base_url}{path}")).ok()?;
    http::Uri::try_from(url.as_str()).ok()
}

/// Maps a transport failure without quoting it (the text can be long and is not for clients).
fn classify_transport(e: &hyper_util::client::legacy::Error) -> UpstreamError {
    tracing::debug!(error = ?e, "upstream request failed");
    if e.is_connect() {
        UpstreamError::Connect("connection failed".into())
    } else {
        UpstreamError::Connect("request failed".into())
    }
}

/// Spare capacity [`read_capped`] leaves for the extension fields (`routing` included).
const SPLICE_HEADROOM: usize = 1024;

/// Reads a response body up to `limit` bytes.
pub async fn read_capped(
    mut response: UpstreamResponse,
    limit: usize,
) -> Result<Vec<u8>, UpstreamError> {
    let expected = response.content_length().unwrap_or(0).min(limit as u64) as usize;
    // Room for the extension fields spliced in afterwards, so that does not reallocate.
    let mut out = Vec::with_capacity(expected + SPLICE_HEADROOM);
    while let Some(chunk) = response.chunk().await? {
        if out.len() + chunk.len() > limit {
            return Err(UpstreamError::Malformed(format!(
                "sent an answer larger than {limit} bytes"
            )));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// `Retry-After` in whole seconds, from `retry-after` (seconds) or `retry-after-ms`.
pub fn retry_after(headers: &axum::http::HeaderMap) -> Option<u64> {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(secs) = text("retry-after").and_then(|v| v.trim().parse::<f64>().ok()) {
        return Some(secs.max(0.0).ceil() as u64);
    }
    text("retry-after-ms")
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|ms| {
            Duration::from_millis(ms.max(0.0) as u64)
                .as_secs_f64()
                .ceil() as u64
        })
}

/// Removes our credential and anything shaped like an API key from provider text.
pub fn scrub(text: &str, secret: Option<&str>) -> String {
    let mut out = text.to_string();
    if let Some(secret) = secret.filter(|s| s.len() >= 4) {
        out = out.replace(secret, "[redacted]");
    }
    let mut result = String::with_capacity(out.len());
    for (i, word) in out.split(' ').enumerate() {
        if i > 0 {
            result.push(' ');
        }
        let looks_like_key = ["sk-", "AIza", "key-", "sk_"]
            .iter()
            .any(|p| word.starts_with(p))
            && word.len() > 12;
        result.push_str(if looks_like_key { "[redacted]" } else { word });
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_retryable_failures() {
        let status = |status, code: Option<&str>| UpstreamError::Status {
            status,
            code: code.map(Into::into),
            message: String::new(),
            retry_after: None,
        };
        assert!(status(429, None).retryable());
        assert!(!status(429, Some("insufficient_quota")).retryable());
        assert!(!status(429, Some("enforced_spend_limit_reached")).retryable());
        assert!(!status(402, None).retryable());
        assert!(status(503, None).retryable());
        assert!(status(529, None).retryable());
        assert!(!status(400, None).retryable());
        assert!(!status(401, None).retryable());
        assert!(UpstreamError::Timeout.retryable());
        let in_band = |code: &str| UpstreamError::InBand {
            code: Some(code.into()),
            message: String::new(),
        };
        assert!(in_band("overloaded_error").retryable());
        assert!(in_band("UNAVAILABLE").retryable());
        assert!(!in_band("INVALID_ARGUMENT").retryable());
        assert_eq!(status(401, None).to_api_error("p").status, 502);
        assert_eq!(
            status(402, None).to_api_error("p").code,
            Some("insufficient_quota")
        );
        assert_eq!(UpstreamError::Timeout.to_api_error("p").status, 504);
        assert_eq!(status(422, None).to_api_error("p").status, 400);
        assert_eq!(status(404, None).to_api_error("p").status, 404);
    }

    #[test]
    fn scrubs_credentials() {
        let text = scrub(
            "Incorrect API key provided: sk-proj-abcdefghijklmnop. Also mysecretvalue here",
            Some("mysecretvalue"),
        );
        assert!(!text.contains("abcdefghijklmnop"));
        assert!(!text.contains("mysecretvalue"));
    }
}
