//! The bare pass-through baseline (`tokenrouter-bench passthrough`): the least a Rust gateway hop
//! on the same stack as TokenRouter (axum + reqwest + tokio) must do — parse the JSON body, set the
//! upstream model, re-serialise, forward with a credential, and relay the answer's bytes as they
//! come. No auth, routing, validation, metrics or fallback. Same idea as peer-bench's miniproxy.

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::serve::ListenerExt;

struct Upstream {
    client: reqwest::Client,
    url: String,
}

async fn chat(State(up): State<Arc<Upstream>>, body: Bytes) -> Response {
    let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return (StatusCode::BAD_REQUEST, "invalid json").into_response();
    };
    if let Some(model) = value.get_mut("model") {
        let name = model.as_str().unwrap_or_default().to_string();
        *model = serde_json::Value::String(name);
    }
    let Ok(out) = serde_json::to_vec(&value) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let sent = up
        .client
        .post(&up.url)
        .header("content-type", "application/json")
        .header("authorization", "Bearer sk-bench-upstream")
        .body(out)
        .send()
        .await;
    match sent {
        Ok(r) => {
            let status = r.status();
            let content_type = r
                .headers()
                .get("content-type")
                .cloned()
                .unwrap_or(HeaderValue::from_static("application/json"));
            let mut response = Response::new(Body::from_stream(r.bytes_stream()));
            *response.status_mut() = status;
            response.headers_mut().insert("content-type", content_type);
            response
        }
        Err(_) => StatusCode::BAD_GATEWAY.into_response(),
    }
}

/// Serves the pass-through on `127.0.0.1:port` in front of `upstream` (a `.../v1` base URL) on
/// one worker thread, until killed.
pub fn run(port: u16, upstream: String) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let client = reqwest::Client::builder()
            .tcp_nodelay(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let state = Arc::new(Upstream {
            client,
            url: format!("{}/chat/completions", upstream.trim_end_matches('/')),
        });
        let app = Router::new()
            .route("/v1/chat/completions", post(chat))
            .with_state(state);
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await?
            .tap_io(|tcp| {
                let _ = tcp.set_nodelay(true);
            });
        axum::serve(listener, app).await?;
        Ok(())
    })
}
