//! The single-page app's files, embedded at build time from `control-plane/dashboard/`, served
//! with their content types and headers that keep the page to its own origin (CSP, no framing,
//! no sniffing). Unknown paths get the page itself, so its hash routes work from a bookmark.

use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

macro_rules! asset {
    ($path:literal) => {
        (
            $path,
            include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/dashboard/", $path)).as_slice(),
        )
    };
}

/// Every file of the app, by path.
const FILES: &[(&str, &[u8])] = &[
    asset!("index.html"),
    asset!("style.css"),
    asset!("api.js"),
    asset!("app.js"),
    asset!("charts.js"),
    asset!("ui.js"),
    asset!("views.js"),
    asset!("views-admin.js"),
    asset!("vendor/uPlot.iife.min.js"),
    asset!("vendor/uPlot.min.css"),
    asset!("vendor/LICENSE"),
];

const CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; \
    connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        _ => "text/plain; charset=utf-8",
    }
}

pub async fn serve(uri: Uri) -> Response {
    let path = uri.path().trim_start_matches('/');
    if path.starts_with("api/") {
        return super::api::error(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("No API at /{path}."),
        )
        .into_response();
    }
    let path = if path.is_empty() { "index.html" } else { path };
    let (path, body) = FILES
        .iter()
        .find(|(p, _)| *p == path)
        .copied()
        .unwrap_or(FILES[0]);
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(path)),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}
