//! The HTTP error boundary: every failure a client sees, always in OpenAI's error envelope.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An error answered to an API client as `{"error":{"message","type","param","code"}}`. Built
/// only through the constructors below, one per kind of answer, so every answer of a kind has the
/// same status, type and code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    status: StatusCode,
    /// OpenAI's `type`: `invalid_request_error`, `authentication_error`, `permission_error`,
    /// `not_found_error`, `rate_limit_error`, `api_error`, `timeout_error`.
    kind: &'static str,
    code: Option<&'static str>,
    message: String,
    param: Option<String>,
    /// Seconds for a `Retry-After` header.
    retry_after: Option<u64>,
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn code(&self) -> Option<&'static str> {
        self.code
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    pub fn retry_after(&self) -> Option<u64> {
        self.retry_after
    }

    pub fn param(&self) -> Option<&str> {
        self.param.as_deref()
    }

    /// OpenAI's error `type`.
    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// The same error naming its parameter as `rename` says (the Responses API's names for a
    /// refusal about the chat form it was translated to).
    pub fn renaming_param(mut self, rename: impl FnOnce(&str) -> Option<String>) -> Self {
        if let Some(new) = self.param.as_deref().and_then(rename) {
            self.param = Some(new);
        }
        self
    }

    fn with_param(mut self, param: impl Into<String>) -> Self {
        self.param = Some(param.into());
        self
    }

    fn with_retry_after(mut self, secs: Option<u64>) -> Self {
        self.retry_after = secs;
        self
    }

    fn new(
        status: StatusCode,
        kind: &'static str,
        code: Option<&'static str>,
        message: impl Into<String>,
    ) -> Self {
        ApiError {
            status,
            kind,
            code,
            message: message.into(),
            param: None,
            retry_after: None,
        }
    }

    /// A 400 about one request field.
    pub fn invalid(param: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            Some("invalid_value"),
            message,
        )
        .with_param(param)
    }

    /// A 400 `unsupported_parameter`: the chosen provider or model cannot honour `param`.
    pub fn unsupported_parameter(param: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            Some("unsupported_parameter"),
            message,
        )
        .with_param(param)
    }

    /// A 400 `content_filter`: a firewall rule refused the input. Names the rule and the detector,
    /// never what it matched; 400 so that SDKs do not retry it.
    pub fn content_filter(rule: &str, detector: &str, param: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            Some("content_filter"),
            format!(
                "The request was blocked by firewall rule `{rule}`: the {detector} detector matched its input."
            ),
        )
        .with_param(param)
    }

    /// A 400 `context_length_exceeded` about the messages.
    pub fn context_length_exceeded(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            Some("context_length_exceeded"),
            message,
        )
        .with_param("messages")
    }

    /// A 405 for a known path.
    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "invalid_request_error",
            Some("method_not_allowed"),
            message,
        )
    }

    /// A 400 about the request as a whole.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            Some(code),
            message,
        )
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            Some("invalid_api_key"),
            message,
        )
    }

    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request_error",
            Some("request_too_large"),
            format!("The request body is larger than this gateway's limit of {limit} bytes."),
        )
    }

    pub fn model_not_found(model: &str) -> Self {
        Self::model_not_found_because(format!(
            "The model `{model}` does not exist or no configured provider serves it. \
             GET /v1/models lists the available models; pin a provider with `provider:model`."
        ))
    }

    /// A 404 `model_not_found` about the request's `model`, saying why.
    pub fn model_not_found_because(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            Some("model_not_found"),
            message,
        )
        .with_param("model")
    }

    /// A 404 `model_not_found` for `GET /v1/models/{id}` (no request field to name).
    pub fn no_such_model(id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            Some("model_not_found"),
            format!(
                "The model `{id}` does not exist or no configured provider serves it. \
                 GET /v1/models lists the available models; pin a provider with `provider:model`."
            ),
        )
    }

    /// A 404 for an `auto:*` name that is no routing mode.
    pub fn unknown_mode(mode: &str, modes: &str) -> Self {
        Self::model_not_found_because(format!(
            "Unknown routing mode `{mode}`; the modes are {modes}."
        ))
    }

    /// A 404 `model_not_found` after the provider said it does not serve `model` to our account
    /// (`detail`: what it said, already scrubbed of credentials).
    pub fn model_not_served(provider: &str, model: &str, detail: &str) -> Self {
        Self::model_not_found_because(format!(
            "Provider `{provider}` does not serve the model `{model}` to this account: {detail}"
        ))
    }

    /// A 403 (`permission_error`).
    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "permission_error",
            Some(code),
            message,
        )
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            Some("not_found"),
            message,
        )
    }

    /// A 400 for a `previous_response_id` this key has no stored response for (OpenAI's answer).
    pub fn previous_response_not_found(id: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            Some("previous_response_not_found"),
            format!("Previous response with id '{id}' not found."),
        )
        .with_param("previous_response_id")
    }

    pub fn rate_limited(message: impl Into<String>, retry_after: Option<u64>) -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limit_error",
            Some("rate_limit_exceeded"),
            message,
        )
        .with_retry_after(retry_after)
    }

    /// A 429 `insufficient_quota`: a budget is spent (no retry helps before `retry_after`).
    pub fn quota_exhausted(message: impl Into<String>, retry_after: Option<u64>) -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "insufficient_quota",
            Some("insufficient_quota"),
            message,
        )
        .with_retry_after(retry_after)
    }

    /// A 429 `insufficient_quota` passed on from a provider whose balance or quota is spent.
    pub fn upstream_quota(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limit_error",
            Some("insufficient_quota"),
            message,
        )
    }

    /// A provider's 4xx refusal of the request itself, passed on with the provider's status
    /// (422, which Mistral and DeepSeek use for invalid parameters, becomes OpenAI's 400).
    pub fn upstream_rejected(status: u16, message: impl Into<String>) -> Self {
        let status = match StatusCode::from_u16(status) {
            Ok(s) if s.is_client_error() && s != StatusCode::UNPROCESSABLE_ENTITY => s,
            _ => StatusCode::BAD_REQUEST,
        };
        Self::new(
            status,
            "invalid_request_error",
            Some("upstream_rejected"),
            message,
        )
    }

    pub fn bad_gateway(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_GATEWAY, "api_error", Some(code), message)
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "api_error",
            Some("provider_unavailable"),
            message,
        )
    }

    pub fn timeout(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::GATEWAY_TIMEOUT,
            "timeout_error",
            Some("upstream_timeout"),
            message,
        )
    }

    /// A 408: the client sent its request body too slowly (see the listener's body limits).
    pub fn request_timeout() -> Self {
        Self::new(
            StatusCode::REQUEST_TIMEOUT,
            "invalid_request_error",
            Some("request_timeout"),
            "The request body did not arrive in time.",
        )
    }

    /// A 503 `server_overloaded`: this data plane is at its connection or request cap. Retry
    /// after a second (the SDKs do, reading `Retry-After`).
    pub fn server_overloaded(what: &str) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "api_error",
            Some("server_overloaded"),
            format!("This data plane is at its limit of {what}; retry shortly."),
        )
        .with_retry_after(Some(1))
    }

    pub fn not_ready() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "api_error",
            Some("not_ready"),
            "This data plane has not received its configuration yet.",
        )
    }

    /// The envelope as a JSON value (also sent as an in-band SSE error event).
    pub fn body(&self) -> serde_json::Value {
        json!({ "error": { "message": self.message, "type": self.kind, "param": self.param, "code": self.code } })
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.kind,
            self.message
        )
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.body())).into_response();
        if self.code == Some("insufficient_quota") {
            // The OpenAI SDKs retry every 429 unless told not to; no retry refills a budget.
            response
                .headers_mut()
                .insert("x-should-retry", HeaderValue::from_static("false"));
        }
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_openai_envelope() {
        let body = ApiError::invalid("temperature", "must be between 0 and 2").body();
        assert_eq!(body["error"]["type"], "invalid_request_error");
        assert_eq!(body["error"]["param"], "temperature");
        assert_eq!(body["error"]["code"], "invalid_value");
        let r = ApiError::rate_limited("slow down", Some(3)).into_response();
        assert_eq!(r.status(), 429);
        assert_eq!(r.headers()[header::RETRY_AFTER], "3");
    }
}
