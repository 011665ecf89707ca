//! `GET /v1/models` and `GET /v1/models/{id}` in OpenAI's list format: the `auto:*` modes, bare
//! model names, `provider:model` for every configured provider and `kind:model` for every kind
//! prefix that resolves by kind (no provider has its name; `resolves_to` lists the providers it
//! tries, in order), with capabilities and prices where the catalog knows them.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Extension, Path};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::http::middleware::Authed;
use crate::routing::resolve::KIND_PREFIXES;
use crate::snapshot::modes::AutoMode;
use crate::snapshot::runtime::Runtime;

/// Every model id this runtime can serve, with its listing entry.
fn catalog(rt: &Runtime) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    let entry = |id: &str, provider: &str, kind: &str, model: &str| {
        let mut v = json!({ "id": id, "object": "model", "created": 0, "owned_by": provider });
        if let Some(info) = rt.catalog.get(kind, model) {
            v["capabilities"] = json!(info.caps.names());
            v["context_window"] = json!(info.context_window);
            v["max_output_tokens"] = json!(info.max_output);
            v["pricing"] = json!({
                "input_per_mtok": info.input_price,
                "output_per_mtok": info.output_price,
                "cached_input_per_mtok": info.cached_input_price,
            });
            v["quality"] = json!(info.quality);
        }
        v
    };
    for mode in AutoMode::ALL.map(AutoMode::name) {
        out.insert(
            mode.to_string(),
            json!({ "id": mode, "object": "model", "created": 0, "owned_by": "tokenrouter" }),
        );
    }
    for (model, providers) in &rt.models {
        if let Some(first) = providers.first() {
            out.insert(model.clone(), entry(model, &first.name, &first.kind, model));
        }
    }
    for p in rt.providers.values() {
        for m in &p.models {
            let id = format!("{}:{m}", p.name);
            out.insert(id.clone(), entry(&id, &p.name, &p.kind, m));
        }
    }
    for kind in KIND_PREFIXES {
        let Some(providers) = rt.by_kind.get(kind) else {
            continue;
        };
        if rt.providers.contains_key(kind) {
            continue;
        }
        for p in providers {
            for m in &p.models {
                let id = format!("{kind}:{m}");
                let serving: Vec<&str> = providers
                    .iter()
                    .filter(|q| q.models.contains(m))
                    .map(|q| q.name.as_str())
                    .collect();
                let mut v = entry(&id, kind, kind, m);
                v["resolves_to"] = json!(serving);
                out.insert(id, v);
            }
        }
    }
    out
}

fn visible(authed: &Authed, id: &str) -> bool {
    authed.key.allows(id)
}

pub async fn list(Extension(authed): Extension<Authed>) -> Json<Value> {
    let data: Vec<Value> = catalog(&authed.runtime)
        .into_iter()
        .filter(|(id, _)| visible(&authed, id))
        .map(|(_, v)| v)
        .collect();
    Json(json!({ "object": "list", "data": data }))
}

pub async fn get(Extension(authed): Extension<Authed>, Path(id): Path<String>) -> Response {
    match catalog(&authed.runtime)
        .remove(&id)
        .filter(|_| visible(&authed, &id))
    {
        Some(entry) => Json(entry).into_response(),
        None => ApiError::no_such_model(&id).into_response(),
    }
}
