//! Answers for requests no route takes: unknown paths and wrong methods, in OpenAI's envelope.

use axum::response::IntoResponse;

use crate::error::ApiError;

/// Any unknown path, in OpenAI's envelope.
pub async fn unknown_route(uri: axum::http::Uri) -> impl IntoResponse {
    ApiError::not_found(format!(
        "Unknown request URL: {}. See /v1/chat/completions and /v1/models.",
        uri.path()
    ))
}

/// A known path with the wrong method.
pub async fn wrong_method(method: axum::http::Method, uri: axum::http::Uri) -> impl IntoResponse {
    ApiError::method_not_allowed(format!("{method} is not allowed on {}.", uri.path()))
}
