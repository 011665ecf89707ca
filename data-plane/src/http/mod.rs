//! The HTTP surface: the API's routes (one file per endpoint family), the layers every request
//! passes (request id, API-key authentication), the answers for paths no route takes, and the
//! admin listener's operator endpoints.

mod chat;
mod fallback;
mod health;
pub(crate) mod middleware;
mod models;
mod responses;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};

use crate::state::DataPlaneState;

/// The HTTP application, testable without a network.
pub fn app(state: Arc<DataPlaneState>) -> Router {
    let api = Router::new()
        .route("/v1/chat/completions", post(chat::answer))
        .route("/v1/embeddings", post(chat::answer))
        .route("/v1/responses", post(chat::answer))
        .route(
            "/v1/responses/{id}",
            get(responses::get).delete(responses::delete),
        )
        .route("/v1/models", get(models::list))
        .route("/v1/models/{*id}", get(models::get))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::authenticate,
        ));
    Router::new()
        .merge(api)
        .route("/livez", get(health::livez))
        .route("/readyz", get(health::readyz))
        .fallback(fallback::unknown_route)
        .method_not_allowed_fallback(fallback::wrong_method)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::request_id,
        ))
        .with_state(state)
}

/// The admin listener's application (`--admin-addr`, loopback by default): what operators and
/// Prometheus read, kept off the public port.
pub fn admin_app(state: Arc<DataPlaneState>) -> Router {
    Router::new()
        .route("/metrics", get(health::metrics))
        .route("/status", get(health::status))
        .route("/livez", get(health::livez))
        .route("/readyz", get(health::readyz))
        .fallback(fallback::unknown_route)
        .method_not_allowed_fallback(fallback::wrong_method)
        .with_state(state)
}
