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
use super::auth::{self, Caller, Refusal, Role};

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
            "Sign in with the admin token or as a dashboard user.",
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

/// The caller of a request, with a dashboard user's role as the store has it now: a removed
/// user's sessions end, a changed role applies at once (on every control-plane copy alike).
async fn caller(parts: &Parts, d: &Dashboard, write: bool) -> Result<Caller, ApiError> {
    let mut caller = d
        .auth
        .check(&parts.method, &parts.headers, write)
        .map_err(refused)?;
    if caller.account {
        let stored = d
            .store
            .dashboard_user(caller.user.clone())
            .await
            .map_err(store_failed)?;
        let role = stored.and_then(|u| Role::parse(&u.role));
        d.auth.refresh_account(&caller.user, role);
        caller.role = role.ok_or_else(|| refused(Refusal::SignIn))?;
    }
    Ok(caller)
}

impl FromRequestParts<Arc<Dashboard>> for Reader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, d: &Arc<Dashboard>) -> Result<Self, ApiError> {
        caller(parts, d, false).await.map(Reader)
    }
}

impl FromRequestParts<Arc<Dashboard>> for Writer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, d: &Arc<Dashboard>) -> Result<Self, ApiError> {
        match caller(parts, d, true).await?.role {
            Role::Admin => Ok(Writer),
            Role::Viewer => Err(refused(Refusal::ReadOnly)),
        }
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
    user: Option<String>,
    password: Option<String>,
}

/// Signs in dashboard user `name`: its stored argon2id hash must match, and a name with too many
/// failures in a row waits a minute (whether or not it exists, so names cannot be probed).
async fn sign_in_as_user(
    d: &Dashboard,
    name: &str,
    password: &str,
) -> Result<(String, Caller), ApiError> {
    let wrong = || {
        error(
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
            "Wrong user or password.",
        )
    };
    if d.auth.locked_out(name) {
        return Err(error(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_attempts",
            format!(
                "Too many failed sign-ins for this user; wait {} seconds.",
                auth::LOCKOUT.as_secs()
            ),
        ));
    }
    if password.len() > crate::passwords::MAX_LEN || name.len() > 64 {
        return Err(wrong());
    }
    let stored = d
        .store
        .dashboard_user(name.to_string())
        .await
        .map_err(store_failed)?;
    let role = stored.as_ref().and_then(|u| Role::parse(&u.role));
    let hash = stored.map(|u| u.password_hash);
    let ok = crate::passwords::verify(password.to_string(), hash).await && role.is_some();
    d.auth.signed_in(name, ok);
    match role {
        Some(role) if ok => Ok(d.auth.open_session(name, role, true)),
        _ => {
            tracing::info!(user = %name, "a dashboard sign-in failed");
            Err(wrong())
        }
    }
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
    let (id, caller) = match (&body.token, &body.user, &body.password) {
        (Some(t), None, None) => d.auth.sign_in_with_token(t).ok_or_else(|| {
            error(
                StatusCode::UNAUTHORIZED,
                "invalid_credentials",
                "That token is not the admin token.",
            )
        })?,
        (None, Some(user), Some(password)) => sign_in_as_user(&d, user, password).await?,
        _ => {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "Send {\"token\"} or {\"user\", \"password\"}.",
            ));
        }
    };
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
