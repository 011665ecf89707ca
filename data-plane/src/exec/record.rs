//! The one usage record of a request and its hold on its limits, and the one place a finished
//! attempt is recorded: the live signals, the cost, the usage record and the limits' settlement,
//! for JSON answers and streams alike. Attempts that lose (a hedge, a failure before the answer
//! starts) record nothing of their own: they are counted in their request's record.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;

use crate::error::UpstreamError;
use crate::limits::{Demand, Reservation};
use crate::request::ChatRequest;
use crate::routing::plan::Attempt;
use crate::signals::{self, Outcome, headroom_from};
use crate::snapshot::catalog::ModelInfo;
use crate::snapshot::runtime::CredentialRt;
use crate::state::DataPlaneState;
use crate::telemetry::accounting::{Accounting, account};
use crate::telemetry::usage::Usage;

/// What one request will be recorded as, filled in as it goes.
#[derive(Debug, Clone)]
pub struct RequestRecord {
    pub accounting: Accounting,
    reservation: Option<Arc<Reservation>>,
    started: Instant,
    /// The request's prompt, estimated when it was parsed (tokens).
    prompt_estimate: u64,
}

impl RequestRecord {
    /// What is known before the body is read: which request, whose key, when it arrived.
    pub fn new(request_id: &str, key: &str, started: Instant) -> RequestRecord {
        RequestRecord {
            accounting: Accounting::for_request(request_id, key),
            reservation: None,
            started,
            prompt_estimate: 0,
        }
    }

    /// Adds what the firewall did (rule, detector, action, direction, count; never the text).
    pub fn add_firewall(&mut self, audit: &crate::firewall::Audit) {
        let summary = audit.summary();
        if summary.is_empty() {
            return;
        }
        let f = &mut self.accounting.firewall;
        if !f.is_empty() {
            f.push(',');
        }
        f.push_str(&summary);
    }

    /// The rules that acted on this request so far, for `x-tokenrouter-firewall`.
    pub fn firewall_rules(&self) -> String {
        let mut names: Vec<&str> = Vec::new();
        for event in self
            .accounting
            .firewall
            .split(',')
            .filter(|e| !e.is_empty())
        {
            let rule = event.split(':').next().unwrap_or_default();
            if !names.contains(&rule) {
                names.push(rule);
            }
        }
        names.join(",")
    }

    /// Adds the facts of the parsed request.
    pub fn describe(&mut self, r: &ChatRequest) {
        let a = &mut self.accounting;
        self.prompt_estimate = r.features.prompt_tokens;
        a.requested_model = r.model.clone();
        a.operation = r.operation;
        a.stream = r.stream;
        if let Some(user) = r.body.get("user").and_then(|u| u.as_str()) {
            a.user_id = user.to_string();
        }
        if let Some(m) = &r.user_metadata {
            a.metadata_json = serde_json::to_string(m).unwrap_or_default();
        }
        a.trace.set(|| {
            vec![
                opentelemetry::KeyValue::new("gen_ai.operation.name", r.operation.name()),
                opentelemetry::KeyValue::new("gen_ai.request.model", r.model.clone()),
            ]
        });
    }

    /// When the request arrived.
    pub(super) fn started(&self) -> Instant {
        self.started
    }

    pub(super) fn hold(&mut self, reservation: Option<Arc<Reservation>>) {
        self.reservation = reservation;
    }

    /// The request ended without an answer (refused, or every attempt failed) with `status`.
    pub fn close_failed(mut self, state: &DataPlaneState, status: u16) {
        self.accounting.status = status;
        self.accounting.total = self.started.elapsed();
        self.accounting.latency_ms = self.accounting.total.as_millis() as u64;
        self.close(state);
    }

    fn close(self, state: &DataPlaneState) {
        if let Some(r) = &self.reservation {
            state.limiter.settle(r, charged(&self.accounting));
        }
        account(&state.metrics, &state.usage, self.accounting);
    }
}

/// What a finished request is charged: its usage and cost (the provider's, or for a stream cut
/// before the provider reported any, what was streamed: see [`answered`]). A failed request is
/// charged nothing.
fn charged(a: &Accounting) -> Demand {
    match a.usage {
        Some(u) => Demand {
            tokens: u.prompt_tokens + u.completion_tokens,
            cost_micro: (a.cost_usd.unwrap_or(0.0) * 1e6).round() as i64,
        },
        None => Demand::default(),
    }
}

/// Bytes of text per token when a token count must be estimated from text (OpenAI's rule of
/// thumb for English; rounded up, so a cut stream is not charged less than it used).
const BYTES_PER_TOKEN: u64 = 4;

/// The (provider, model, credential) one attempt runs on, as the live signals know it.
#[derive(Debug, Clone)]
pub(super) struct Target {
    /// The credential's own signals (cool-downs, breaker).
    credential: String,
    /// Every credential of the (provider, model) together (what routing ranks).
    aggregate: String,
    info: Option<Arc<ModelInfo>>,
}

impl Target {
    pub(super) fn new(attempt: &Attempt, credential: Option<&CredentialRt>) -> Target {
        let name = credential.map_or("", |c| c.name.as_str());
        Target {
            credential: signals::key(&attempt.provider.name, &attempt.model, name),
            aggregate: signals::key(&attempt.provider.name, &attempt.model, "*"),
            info: attempt.info.clone(),
        }
    }

    /// The provider's rate-limit headers on an answer.
    pub(super) fn headroom(&self, state: &DataPlaneState, headers: &HeaderMap) {
        if let Some(h) = headroom_from(headers) {
            state.signals.headroom(&self.credential, h);
            state.signals.headroom(&self.aggregate, h);
        }
    }

    /// A failed attempt, handed back: 429s cool the credential down, outages count against the
    /// breaker, refusals of the request itself count for nothing.
    pub(super) fn failed(&self, state: &DataPlaneState, e: UpstreamError) -> UpstreamError {
        match &e {
            UpstreamError::Status {
                status: 429,
                retry_after,
                ..
            } => state.signals.cool_down(
                &self.credential,
                Duration::from_secs(retry_after.unwrap_or(1).min(600)),
            ),
            UpstreamError::Status { status, .. } if *status < 500 && *status != 408 => {}
            UpstreamError::Unavailable(_) => {}
            _ => {
                state.signals.failure(&self.credential);
                state.signals.error(&self.aggregate);
            }
        }
        e
    }

    /// What an answer costs at the model's catalog prices (unknown model: not priced).
    pub(super) fn cost(&self, usage: Option<&Usage>) -> Option<f64> {
        self.info.as_ref().zip(usage).map(|(i, u)| i.cost(u))
    }
}

/// How an answered attempt ended.
#[derive(Debug, Clone)]
pub(super) struct Answered {
    pub usage: Option<Usage>,
    /// The model the answer names (`gen_ai.response.model`).
    pub response_model: Option<String>,
    /// The whole answer reached the client (a stream: up to `[DONE]`).
    pub completed: bool,
    /// From sending the request to the end of the answer.
    pub latency: Duration,
    /// From sending the request to the first streamed chunk.
    pub ttft: Option<Duration>,
    /// Bytes of generated text a stream sent the client (0 for JSON answers).
    pub streamed_text: u64,
}

/// Records the attempt that answered the request: its request's one usage record, the limits'
/// settlement, and (when the answer completed) the live signals routing learns from.
pub(super) fn answered(
    state: &DataPlaneState,
    target: &Target,
    mut record: RequestRecord,
    done: Answered,
) {
    // A stream the client cut before the provider reported usage is charged (and recorded) for
    // what it was sent: the prompt estimate and the streamed text in tokens, rounded up.
    let usage = done.usage.or_else(|| {
        (!done.completed).then_some(Usage {
            prompt_tokens: record.prompt_estimate,
            completion_tokens: done.streamed_text.div_ceil(BYTES_PER_TOKEN),
            ..Usage::default()
        })
    });
    let a = &mut record.accounting;
    a.status = 200;
    a.usage = usage;
    a.cost_usd = target.cost(usage.as_ref());
    a.total = record.started.elapsed();
    a.latency_ms = a.total.as_millis() as u64;
    a.ttft_ms = done.ttft.map(|t| t.as_millis() as u64);
    a.upstream = Some(done.latency);
    a.upstream_ttft = done.ttft;
    a.completed = done.completed;
    a.response_model = done.response_model.unwrap_or_default();
    if done.completed {
        let outcome = Outcome {
            latency: done.latency,
            ttft: done.ttft,
            output_tokens: usage.map_or(0, |u| u.completion_tokens),
        };
        state.signals.success(&target.credential, outcome);
        state.signals.success(&target.aggregate, outcome);
    }
    record.close(state);
}
