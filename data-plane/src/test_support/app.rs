//! The HTTP app in process, for tests of the execution paths: a data plane state with a snapshot
//! of simulated providers applied, requests sent with `app(state).oneshot(...)` (no socket on our
//! side), and what the request left behind (its usage records, its metrics).

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokenrouter_proto::content_hash;
use tokenrouter_proto::v1::{
    ApiKey, Credential, FallbackPolicy, FallbackTarget, Provider, RoutingRule, Snapshot,
    UsageRecord,
};
use tokenrouter_simulators::{Protocol, SimConfig, Simulator};
use tower::ServiceExt;

use crate::state::{DataPlaneConfig, DataPlaneState};

/// The API key requests carry.
pub const KEY: &str = "sk-tr-in-process-test-key";

/// A snapshot under construction.
#[derive(Default)]
pub struct Config {
    snapshot: Snapshot,
}

impl Config {
    /// An OpenAI-protocol simulator registered as provider `name` serving `models`, with one
    /// credential (the simulator checks it).
    pub async fn provider(&mut self, name: &str, models: &[&str]) -> Simulator {
        let secret = format!("sim-secret-{name}");
        self.provider_with(SimConfig::new(Protocol::OpenAi, name, &secret), models)
            .await
    }

    /// Like [`Config::provider`], with the simulator configured by `sim` (its name and key are
    /// the provider's and its credential's).
    pub async fn provider_with(&mut self, sim: SimConfig, models: &[&str]) -> Simulator {
        let (name, secret) = (sim.name.clone(), sim.api_key.clone());
        let name = name.as_str();
        let sim = Simulator::start(sim).await.expect("start simulator");
        self.snapshot.providers.push(Provider {
            name: name.into(),
            kind: "openai".into(),
            base_url: sim.base_url(),
            models: models.iter().map(|m| m.to_string()).collect(),
            ..Default::default()
        });
        self.snapshot.credentials.push(Credential {
            name: format!("{name}-key"),
            provider: name.into(),
            secret,
        });
        sim
    }

    /// A rule sending `model` to `provider:target`, then along `chain` under a policy whose
    /// fields `policy` sets.
    pub fn rule(
        &mut self,
        model: &str,
        (provider, target): (&str, &str),
        chain: &[(&str, &str)],
        policy: impl FnOnce(&mut FallbackPolicy),
    ) {
        let mut p = FallbackPolicy {
            name: format!("{model}-policy"),
            chain: chain
                .iter()
                .map(|(provider, model)| FallbackTarget {
                    provider: provider.to_string(),
                    model: model.to_string(),
                })
                .collect(),
            ..Default::default()
        };
        policy(&mut p);
        self.snapshot.routing_rules.push(RoutingRule {
            name: model.into(),
            match_model: model.into(),
            target_provider: provider.into(),
            target_model: target.into(),
            fallback_policy: p.name.clone(),
            ..Default::default()
        });
        self.snapshot.fallback_policies.push(p);
    }

    /// The data plane with this configuration applied.
    pub fn start(mut self) -> Arc<DataPlaneState> {
        self.snapshot.version = 1;
        self.snapshot.api_keys.push(ApiKey {
            name: "test".into(),
            sha256: hex::encode(Sha256::digest(KEY.as_bytes())),
            ..Default::default()
        });
        self.snapshot.content_hash = content_hash(&self.snapshot);
        let state = DataPlaneState::new(DataPlaneConfig::default());
        state.apply(&self.snapshot).expect("snapshot compiles");
        state
    }
}

/// An answer, body read to its end.
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).expect("a JSON body")
    }
}

/// `POST /v1/chat/completions` with `body`, through the whole app; the body is not read.
pub async fn send(state: &Arc<DataPlaneState>, body: Value) -> axum::response::Response {
    let request = Request::post("/v1/chat/completions")
        .header("authorization", format!("Bearer {KEY}"))
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .expect("a request");
    crate::http::app(state.clone())
        .oneshot(request)
        .await
        .expect("the app answers")
}

/// `POST /v1/chat/completions` with `body`, through the whole app, read to its end.
pub async fn chat(state: &Arc<DataPlaneState>, body: Value) -> Answer {
    let (parts, body) = send(state, body).await.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .expect("the body");
    Answer {
        status: parts.status,
        headers: parts.headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

/// The usage records queued so far (taken: a second call returns only newer ones).
pub fn usage_records(state: &DataPlaneState) -> Vec<UsageRecord> {
    let mut rx = state.usage.rx.lock().expect("usage queue");
    let rx = rx.as_mut().expect("no reporter took the queue");
    let mut out = Vec::new();
    while let Ok(r) = rx.try_recv() {
        out.push(r);
    }
    out
}

/// `tokenrouter_requests_total` for `provider`, summed over its statuses and models.
pub fn requests_total(state: &DataPlaneState, provider: &str) -> u64 {
    let needle = format!("provider=\"{provider}\"");
    state
        .metrics
        .render()
        .lines()
        .filter(|l| l.starts_with("tokenrouter_requests_total{") && l.contains(&needle))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}
