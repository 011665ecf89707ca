//! `GET /v1/models` and `GET /v1/models/{id}` in OpenAI's list format: bare model names and
//! `provider:model` for every configured provider.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Extension, Path};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::middleware::Authed;
use crate::runtime::Runtime;

fn model_entry(id: &str, owned_by: &str) -> Value {
    json!({ "id": id, "object": "model", "created": 0, "owned_by": owned_by })
}

/// Every model id this runtime can serve, with the provider that owns it.
fn catalog(rt: &Runtime) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (model, providers) in &rt.models {
        if let Some(first) = providers.first() {
            out.insert(model.clone(), first.name.clone());
        }
    }
    for p in rt.providers.values() {
        for m in &p.models {
            out.insert(format!("{}:{m}", p.name), p.name.clone());
        }
    }
    out
}

pub async fn list(Extension(authed): Extension<Authed>) -> Json<Value> {
    let data: Vec<Value> = catalog(&authed.runtime)
        .iter()
        .map(|(id, owner)| model_entry(id, owner))
        .collect();
    Json(json!({ "object": "list", "data": data }))
}

pub async fn get(Extension(authed): Extension<Authed>, Path(id): Path<String>) -> Response {
    match catalog(&authed.runtime).get(&id) {
        Some(owner) => Json(model_entry(&id, owner)).into_response(),
        None => {
            let mut e = ApiError::model_not_found(&id);
            e.param = None;
            e.into_response()
        }
    }
}
