//! Error responses in each provider's own body shape, for faults, auth failures and bad requests.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{Value, json};

use crate::Protocol;
use crate::text::random_alnum;

/// A specific error the simulator answers with.
pub(crate) struct ApiError {
    pub status: u16,
    pub message: String,
    /// OpenAI `type`, Anthropic `error.type`, Gemini `status`; derived from the status if None.
    pub kind: Option<&'static str>,
    /// OpenAI `code`.
    pub code: Option<&'static str>,
    pub param: Option<String>,
    pub retry_after_secs: Option<u64>,
    /// A body to send verbatim instead of the protocol's standard shape.
    pub raw: Option<Box<Value>>,
}

impl ApiError {
    pub(crate) fn new(status: u16, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            kind: None,
            code: None,
            param: None,
            retry_after_secs: None,
            raw: None,
        }
    }

    pub(crate) fn kind(mut self, kind: &'static str) -> ApiError {
        self.kind = Some(kind);
        self
    }

    pub(crate) fn code(mut self, code: &'static str) -> ApiError {
        self.code = Some(code);
        self
    }

    pub(crate) fn param(mut self, param: &str) -> ApiError {
        self.param = Some(param.to_string());
        self
    }

    /// Sends `body` as is (for errors whose recorded shape differs from the usual one).
    pub(crate) fn raw(mut self, body: Value) -> ApiError {
        self.raw = Some(Box::new(body));
        self
    }

    /// The default error a provider sends for `status` (what [`crate::Fault::Status`] uses).
    pub(crate) fn for_status(
        protocol: Protocol,
        status: u16,
        retry_after_secs: Option<u64>,
    ) -> ApiError {
        let message = match (protocol, status) {
            (Protocol::Anthropic, 529) => "Overloaded",
            (Protocol::Gemini, 429) => "You exceeded your current quota, please check your plan.",
            (Protocol::Gemini, 503) => "The model is overloaded. Please try again later.",
            (_, 429) => "Rate limit reached for requests. Please try again later.",
            (_, 401) => "Incorrect API key provided.",
            (_, 402) => "Insufficient Balance",
            (_, 404) => "The model does not exist or you do not have access to it.",
            (_, 500) => "The server had an error while processing your request. Sorry about that!",
            (_, 502..=504) => "The engine is currently overloaded, please try again later.",
            _ => "Simulated error.",
        };
        let mut error = ApiError::new(status, message);
        error.retry_after_secs = retry_after_secs;
        if protocol.is_openai_like() && status == 429 {
            error = error.kind("requests").code("rate_limit_exceeded");
        }
        error
    }

    /// What each provider answers for a model that does not exist or the account cannot use
    /// (`shared/docs/providers.md`; Mistral and DeepSeek answer 400, not 404).
    pub(crate) fn unknown_model(protocol: Protocol, model: &str) -> ApiError {
        match protocol {
            Protocol::Anthropic => ApiError::new(404, format!("model: {model}")),
            Protocol::Gemini => ApiError::new(
                404,
                format!(
                    "models/{model} is not found for API version v1beta, or is not supported for \
                     generateContent. Call ListModels to see the list of available models and their \
                     supported methods."
                ),
            ),
            Protocol::Mistral => ApiError::new(400, "Invalid model").raw(json!({
                "object": "error", "message": format!("Invalid model: {model}"),
                "type": "invalid_model", "param": null, "code": "1500"
            })),
            Protocol::DeepSeek => ApiError::new(400, "Model Not Exist")
                .kind("invalid_request_error")
                .code("invalid_request_error"),
            Protocol::OpenAi => ApiError::new(
                404,
                format!("The model `{model}` does not exist or you do not have access to it."),
            )
            .code("model_not_found"),
        }
    }

    /// The not-retryable quota error of each provider ([`crate::Fault::InsufficientQuota`]).
    pub(crate) fn insufficient_quota(protocol: Protocol) -> ApiError {
        match protocol {
            Protocol::Anthropic => ApiError::new(
                429,
                "You have reached your specified workspace API usage limits.",
            )
            .kind("rate_limit_error")
            .code("enforced_spend_limit_reached"),
            Protocol::Gemini => ApiError::new(
                429,
                "You exceeded your current quota, please check your plan and billing details.",
            ),
            _ => ApiError::new(
                429,
                "You exceeded your current quota, please check your plan and billing details.",
            )
            .kind("insufficient_quota")
            .code("insufficient_quota"),
        }
    }

    /// Renders the error in `protocol`'s body shape.
    pub(crate) fn into_response_for(mut self, protocol: Protocol) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let request_id = format!("req_{}", random_alnum(24));
        let body = match (self.raw.take(), protocol) {
            (Some(raw), _) => *raw,
            (None, Protocol::Anthropic) => anthropic_body(&self, &request_id),
            (None, Protocol::Gemini) => gemini_body(&self),
            (None, _) => openai_body(&self),
        };
        let mut response = (
            status,
            [(header::CONTENT_TYPE, "application/json")],
            Bytes::from(body.to_string()),
        )
            .into_response();
        if protocol == Protocol::Anthropic
            && let Ok(id) = HeaderValue::from_str(&request_id)
        {
            response.headers_mut().insert("request-id", id);
        }
        if let Some(secs) = self.retry_after_secs {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

fn openai_body(error: &ApiError) -> Value {
    let kind = error.kind.unwrap_or(match error.status {
        401 | 400 | 403 | 404 | 409 | 413 | 422 => "invalid_request_error",
        429 => "requests",
        _ => "server_error",
    });
    let code = error.code.or(match error.status {
        401 => Some("invalid_api_key"),
        404 => Some("model_not_found"),
        _ => None,
    });
    json!({"error": {
        "message": error.message,
        "type": kind,
        "param": error.param,
        "code": code,
    }})
}

fn anthropic_body(error: &ApiError, request_id: &str) -> Value {
    let kind = error.kind.unwrap_or(match error.status {
        400 | 422 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        529 | 503 => "overloaded_error",
        _ => "api_error",
    });
    let mut inner = json!({"type": kind, "message": error.message});
    if let Some(code) = error.code {
        inner["details"] = json!({"error_code": code});
    }
    json!({"type": "error", "error": inner, "request_id": request_id})
}

/// Gemini's `status` string for an HTTP status.
pub(crate) fn gemini_status(status: u16) -> &'static str {
    match status {
        400 | 422 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ABORTED",
        429 => "RESOURCE_EXHAUSTED",
        499 => "CANCELLED",
        501 => "UNIMPLEMENTED",
        503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        _ => "INTERNAL",
    }
}

fn gemini_body(error: &ApiError) -> Value {
    let mut inner = json!({
        "code": error.status,
        "message": error.message,
        "status": error.kind.unwrap_or(gemini_status(error.status)),
    });
    if error.status == 429 {
        let mut details = vec![json!({
            "@type": "type.googleapis.com/google.rpc.QuotaFailure",
            "violations": [{"quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier"}],
        })];
        if let Some(secs) = error.retry_after_secs {
            details.push(json!({
                "@type": "type.googleapis.com/google.rpc.RetryInfo",
                "retryDelay": format!("{secs}s"),
            }));
        }
        inner["details"] = Value::Array(details);
    }
    json!({"error": inner})
}

/// The in-band error event a provider sends after a 200 stream has started.
pub(crate) fn midstream_error_frame(protocol: Protocol) -> Bytes {
    let text = match protocol {
        Protocol::Anthropic => concat!(
            "event: error\n",
            "data: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n"
        ),
        Protocol::Gemini => concat!(
            "data: {\"error\":{\"code\":503,\"message\":\"The model is overloaded. Please try again later.\",",
            "\"status\":\"UNAVAILABLE\"}}\r\n\r\n"
        ),
        _ => concat!(
            "data: {\"error\":{\"message\":\"The server had an error while processing your request. ",
            "Sorry about that!\",\"type\":\"server_error\",\"param\":null,\"code\":null}}\n\n"
        ),
    };
    Bytes::from_static(text.as_bytes())
}
