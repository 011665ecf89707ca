//! `GET` and `DELETE /v1/responses/{id}`: a stored response, for the key that made it (any other
//! key, or an expired or unstored id, gets OpenAI's 404).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Extension, Path, State};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::http::middleware::Authed;
use crate::state::DataPlaneState;

fn not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("Response with id '{id}' not found."))
}

pub async fn get(
    State(state): State<Arc<DataPlaneState>>,
    Extension(authed): Extension<Authed>,
    Path(id): Path<String>,
) -> Response {
    match state.responses.get(&id, &authed.key.name).await {
        Some(stored) => Json(Value::Object(stored.response.clone())).into_response(),
        None => not_found(&id).into_response(),
    }
}

pub async fn delete(
    State(state): State<Arc<DataPlaneState>>,
    Extension(authed): Extension<Authed>,
    Path(id): Path<String>,
) -> Response {
    if state.responses.delete(&id, &authed.key.name).await {
        Json(json!({"id": id, "object": "response", "deleted": true})).into_response()
    } else {
        not_found(&id).into_response()
    }
}
