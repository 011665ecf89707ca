//! What routing produces and both its strategies (rules and pins in `route`, the `auto:*` modes
//! in `auto`) build on: one upstream attempt, the plan of attempts for a request, how it was
//! routed, what resolution looks at, and the capability check of one candidate.

use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderMap;

use crate::error::ApiError;
use crate::request::Caps;
use crate::request::{ChatRequest, Features};
use crate::routing::availability::View;
use crate::signals::Signals;
use crate::snapshot::catalog::ModelInfo;
use crate::snapshot::policy::PolicyRt;
use crate::snapshot::runtime::{KeyRt, ProviderRt, Runtime, TargetRt};

/// One upstream try.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub provider: Arc<ProviderRt>,
    /// The model name sent upstream.
    pub model: String,
    /// Catalog facts, when the catalog knows the model.
    pub info: Option<Arc<ModelInfo>>,
    pub timeouts: Timeouts,
}

/// How long one attempt may take: the model's own timeouts (catalog) over its provider's.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// The whole exchange, body included.
    pub total: Duration,
    /// From sending the request to the first streamed token (answer headers included).
    pub first_token: Duration,
    /// Between two reads of a stream.
    pub idle: Duration,
}

impl Timeouts {
    fn of(provider: &ProviderRt, info: Option<&ModelInfo>) -> Timeouts {
        Timeouts {
            total: info.and_then(|i| i.timeout).unwrap_or(provider.timeout),
            first_token: info
                .and_then(|i| i.first_token_timeout)
                .unwrap_or(provider.first_token_timeout),
            idle: info
                .and_then(|i| i.idle_timeout)
                .unwrap_or(provider.idle_timeout),
        }
    }
}

impl Attempt {
    pub fn label(&self) -> String {
        format!("{}:{}", self.provider.name, self.model)
    }
}

/// How a request was routed, for the client to see.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Routing {
    pub mode: String,
    pub chosen: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub runners_up: Vec<String>,
    pub reason: String,
}

/// The attempts for one request, the policy that governs them, and why.
#[derive(Debug, Clone)]
pub struct Plan {
    pub attempts: Vec<Attempt>,
    pub policy: Arc<PolicyRt>,
    pub routing: Routing,
    /// The client named the provider (`provider:model`): a "model not found" answer is final.
    /// Otherwise routing chose the candidates, and one that does not serve the model is skipped.
    pub pinned: bool,
}

/// Everything resolution looks at.
pub struct RouteCtx<'a> {
    pub rt: &'a Runtime,
    pub signals: &'a Signals,
    pub key: &'a KeyRt,
    pub headers: &'a HeaderMap,
    pub request: &'a ChatRequest,
    /// What providers really serve (discovered lists, recent "model not found" answers).
    pub available: &'a View,
}

pub fn attempt(rt: &Runtime, target: &TargetRt, requested: &str) -> Attempt {
    let model = if target.model.is_empty() {
        requested.to_string()
    } else {
        target.model.clone()
    };
    let info = rt.catalog.get(&target.provider.kind, &model).cloned();
    Attempt {
        timeouts: Timeouts::of(&target.provider, info.as_deref()),
        provider: target.provider.clone(),
        model,
        info,
    }
}

/// Refuses an attempt whose catalog entry lacks a capability the request needs, or whose context
/// window the request cannot fit. Unknown models are given the benefit of the doubt.
pub fn check_one(a: &Attempt, f: &Features) -> Result<(), ApiError> {
    let Some(info) = &a.info else { return Ok(()) };
    let embeds = info.caps.contains(Caps::EMBEDDINGS);
    if embeds != f.embeddings {
        let message = if embeds {
            format!(
                "`{}` is an embeddings model; call /v1/embeddings with it.",
                a.model
            )
        } else {
            format!(
                "`{}` is not an embeddings model; /v1/embeddings needs one (for example text-embedding-3-small).",
                a.model
            )
        };
        return Err(ApiError::invalid("model", message));
    }
    if let Some((_, param)) = f.needs.iter().find(|(cap, _)| !info.caps.contains(*cap)) {
        return Err(ApiError::unsupported_parameter(
            *param,
            format!(
                "`{param}` is not supported by provider `{}` for model `{}`.",
                a.provider.name, a.model
            ),
        ));
    }
    let wanted = f.prompt_tokens + f.max_tokens.unwrap_or(0);
    if info.context_window > 0 && wanted > u64::from(info.context_window) {
        return Err(ApiError::context_length_exceeded(format!(
            "About {wanted} tokens do not fit the {} token context window of `{}`.",
            info.context_window, a.model
        )));
    }
    Ok(())
}
