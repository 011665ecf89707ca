//! The JSON API's shared parts: its one error type, the extractors that let a caller read or
//! write, and signing in and out. The handlers live beside it: `usage_api` (the overview,
//! breakdowns and CSV, the request log and one request) and `fleet_api` (providers, keys and
//! the configuration).

use std::sync::Arc;

use axum::Json;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::Dashboard;
use super::auth::{self, Caller, Refusal};

/// Every failure the API answers, in one shape: `{"error": {"message", "type", "code"}}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let kind = match self.status {
            StatusCode::UNAUTHORIZED => "authentication_error",
            StatusCode::FORBIDDEN => "permission_error",
            StatusCode::NOT_FOUND => "not_found_error",
            s if s.is_server_error() => "api_error",
            _ => "invalid_request_error",
        };
        let body = json!({"error": {"message": self.message, "type": kind, "code": self.code}});
        (self.status, Json(body)).into_response()
    }
}

/// An API failure.
pub fn error(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError {
        status,
        code,
        message: message.into(),
    }
}

fn refused(r: Refusal) -> ApiError {
    match r {
        Refusal::SignIn => error(
            StatusCode::UNAUTHORIZED,
            "signin_required",
            "Sign in with the admin token.",
        ),
        Refusal::Csrf => error(
            StatusCode::FORBIDDEN,
            "csrf",
            "This write needs the session's x-csrf-token header.",
        ),
        Refusal::ReadOnly => error(
            StatusCode::FORBIDDEN,
            "read_only",
            "Viewers cannot change anything.",
        ),
    }
}

/// A caller that may read (a write by method, such as signing out, still needs its CSRF token).
pub struct Reader(pub Caller);

/// A caller that may change things: an admin, with the session's CSRF token.
pub struct Writer;

impl FromRequestParts<Arc<Dashboard>> for Reader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, d: &Arc<Dashboard>) -> Result<Self, ApiError> {
        d.auth
            .check(&parts.method, &parts.headers, false)
            .map(Reader)
            .map_err(refused)
    }
}

impl FromRequestParts<Arc<Dashboard>> for Writer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, d: &Arc<Dashboard>) -> Result<Self, ApiError> {
        d.auth
            .check(&parts.method, &parts.headers, true)
            .map(|_| Writer)
            .map_err(refused)
    }
}

pub(super) fn store_failed(e: impl std::fmt::Display) -> ApiError {
    tracing::warn!(error = %e, "dashboard query failed");
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "store_unavailable",
        "The store did not answer; try again.",
    )
}

pub(super) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

pub async fn me(Reader(c): Reader) -> Result<Response, ApiError> {
    let me = json!({"auth": c.via, "user": c.user, "role": c.role.name(), "csrf": c.csrf});
    Ok(Json(me).into_response())
}

#[derive(Deserialize)]
pub struct SignIn {
    token: Option<String>,
}

pub async fn sign_in(
    State(d): State<Arc<Dashboard>>,
    Json(body): Json<SignIn>,
) -> Result<Response, ApiError> {
    if d.auth.is_open() {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "no_signin",
            "No admin token is set: the dashboard needs no sign-in.",
        ));
    }
    let (id, caller) = body
        .token
        .as_deref()
        .and_then(|t| d.auth.sign_in_with_token(t))
        .ok_or_else(|| {
            error(
                StatusCode::UNAUTHORIZED,
                "invalid_credentials",
                "That token is not the admin token.",
            )
        })?;
    let signed = json!({"user": caller.user, "role": caller.role.name(), "csrf": caller.csrf});
    let mut r = Json(signed).into_response();
    if let Ok(v) = HeaderValue::from_str(&auth::cookie(&id)) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(r)
}

pub async fn sign_out(
    State(d): State<Arc<Dashboard>>,
    _: Reader,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    d.auth.sign_out(&headers);
    let mut r = StatusCode::NO_CONTENT.into_response();
    if let Ok(v) = HeaderValue::from_str(&auth::expired_cookie()) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(r)
}
