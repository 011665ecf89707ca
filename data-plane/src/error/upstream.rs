//! How an upstream attempt failed, whether trying the next one may help, and what the client is
//! told; shared by the adapters (which map provider errors), the upstream client and the fallback
//! policy, so it imports nothing of theirs.

use std::time::Duration;

use crate::error::ApiError;

/// How one upstream attempt failed. The texts are for operators' logs (already scrubbed of
/// credentials); what a client sees is [`UpstreamError::to_api_error`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpstreamError {
    #[error("the provider could not be reached: {0}")]
    Connect(String),
    #[error("the provider did not answer in time")]
    Timeout,
    /// The provider answered with an error status.
    #[error("the provider answered {status}: {message}")]
    Status {
        status: u16,
        code: Option<String>,
        message: String,
        retry_after: Option<u64>,
    },
    /// The provider reported an error inside a stream.
    #[error("the provider reported an error in its stream: {message}")]
    InBand {
        code: Option<String>,
        message: String,
    },
    /// The provider answered 2xx with something that is not a valid answer.
    #[error("the provider sent a malformed answer: {0}")]
    Malformed(String),
    /// A stream ended or broke (before its first event, this is retryable).
    #[error("the provider's stream broke: {0}")]
    StreamBroken(String),
    /// Not tried: every credential is cooling down or the circuit breaker is open.
    #[error("the provider was not tried: {0}")]
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
    /// A low-cardinality name of what went wrong (`error.type` in telemetry): the HTTP status for
    /// an error answer, else the failure's kind.
    pub fn kind(&self) -> String {
        match self {
            UpstreamError::Connect(_) => "connect".into(),
            UpstreamError::Timeout => "timeout".into(),
            UpstreamError::Status { status, .. } => status.to_string(),
            UpstreamError::InBand { .. } => "in_band".into(),
            UpstreamError::Malformed(_) => "malformed".into(),
            UpstreamError::StreamBroken(_) => "stream_broken".into(),
            UpstreamError::Unavailable(_) => "unavailable".into(),
        }
    }

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
                402 => ApiError::upstream_quota(format!(
                    "Provider `{provider}` has insufficient balance: {message}"
                )),
                429 if is_quota(code.as_deref()) => {
                    ApiError::upstream_quota(format!("Provider `{provider}`: {message}"))
                }
                429 => ApiError::rate_limited(
                    format!("Provider `{provider}` is rate limiting: {message}"),
                    *retry_after,
                ),
                // OpenAI answers invalid parameters with 400; Mistral and DeepSeek use 422
                // (providers.md §B6, errors table: 400/422 → 400).
                400..=499 => ApiError::upstream_rejected(
                    *status,
                    format!("Provider `{provider}` rejected the request: {message}"),
                ),
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
