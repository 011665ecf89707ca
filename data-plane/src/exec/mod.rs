//! Execution: admits the request to its key's limits, then runs the plan's attempts until one
//! answers. Between attempts it waits a jittered backoff and spends the retry budget; a policy may
//! hedge (start the next attempt while one is slow); a candidate that turns out not to serve the
//! model is skipped for free. Each request ends in exactly one usage record ([`RequestRecord`]),
//! whatever its attempts were.

mod attempt;
mod credential;
mod hedge;
mod record;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use axum::http::HeaderValue;
use axum::response::Response;
use serde_json::{Value, json};

pub use record::RequestRecord;

use attempt::{AttemptError, Shared};
use hedge::Used;

use crate::error::{ApiError, UpstreamError};
use crate::firewall::output::OutputScope;
use crate::limits::{self, Demand};
use crate::request::{ChatRequest, Operation};
use crate::routing::plan::Plan;
use crate::snapshot::runtime::KeyRt;
use crate::state::DataPlaneState;
use crate::telemetry::genai;
use crate::telemetry::trace::{self, AttemptCall};
use crate::telemetry::usage::Usage;
use crate::upstream::extensions::Extensions;

/// One request, ready to run.
pub struct Job<'a> {
    pub state: &'a Arc<DataPlaneState>,
    pub key: &'a KeyRt,
    pub request_id: &'a str,
    pub request: &'a ChatRequest,
    pub plan: &'a Plan,
    /// The firewall's output rules for this request, when any applies.
    pub output: Option<&'a OutputScope>,
}

/// Admits the request and runs its plan. On `Err` the caller closes `record` with the error's
/// status; on `Ok` the answering attempt has closed (a JSON answer) or will close (a stream) it.
pub async fn execute(job: Job<'_>, record: &mut RequestRecord) -> Result<Response, ApiError> {
    let Job {
        state,
        key,
        request_id,
        request,
        plan,
        output,
    } = job;
    record.accounting.routing_mode = plan.routing.mode.clone();
    let user = request.body.get("user").and_then(|u| u.as_str());
    let admission = state
        .limiter
        .admit(
            request_id,
            &key.name,
            key.limits.as_deref(),
            user,
            &request.model,
            demand(request, plan),
        )
        .await?;
    record.hold(admission.reservation.clone());
    state.retry_budget.request();
    // Built once: the usage record keeps it, and each answer's header borrows it from there.
    record.accounting.routing = serde_json::to_string(&plan.routing).unwrap_or_default();
    let captures_content = record.accounting.trace.captures_content();
    // The body as sent (the firewall's input rules have already masked it), for the attempt
    // spans and the body log, read once for both.
    let mut input_messages = (captures_content || key.log_bodies)
        .then(|| trace::content::input_messages(&request.body))
        .flatten();
    if key.log_bodies {
        let logged = if captures_content {
            input_messages.clone()
        } else {
            input_messages.take()
        };
        record.accounting.request_body = logged.unwrap_or_default();
    }
    let base = &*record;
    let shared = Shared {
        state,
        request,
        routing: &base.accounting.routing,
        started: base.started(),
        output,
        captures_content,
        logs_bodies: key.log_bodies,
        key: &key.name,
    };
    let request_attributes = if base.accounting.trace.is_recording() {
        trace::request_attributes(&request.body, request.features.max_tokens)
    } else {
        Vec::new()
    };
    let run = |index: usize, hedge: bool, failures: &[Value]| {
        let a = &plan.attempts[index];
        let ext = Extensions::new(&a.provider.name, &plan.routing.mode, request_id);
        let last = index + 1 == plan.attempts.len();
        let mut record = base.clone();
        record.accounting.attempts = index as u32 + 1;
        if !failures.is_empty() {
            record.accounting.failed_attempts = Value::from(failures).to_string();
        }
        let span = record.accounting.trace.attempt(AttemptCall {
            operation: request.operation.name(),
            provider: &a.provider.name,
            provider_name: genai::provider_name(&a.provider.kind),
            server: &a.provider.server,
            model: &a.model,
            number: index + 1,
            hedge,
            request: &request_attributes,
            input_messages: input_messages.as_deref(),
        });
        Box::pin(attempt::run(&shared, a, ext, last, record, span))
    };
    // The last failure: which attempt, and what it was.
    let mut failed: Option<(usize, UpstreamError)> = None;
    // The failures so far, for the usage record (what the dashboard's request detail shows).
    let mut failures: Vec<Value> = Vec::new();
    let mut index = 0;
    // Moving past a candidate that does not serve the model is not a retry: no backoff, no budget.
    let mut skipping_unserved = false;
    while index < plan.attempts.len() {
        if index > 0 && !skipping_unserved {
            if !state.retry_budget.try_retry() {
                tracing::debug!(%request_id, "retry budget spent; not trying further providers");
                break;
            }
            tokio::time::sleep(plan.policy.backoff(index as u32)).await;
        }
        let (result, used) = match hedge::delay(state, plan, index) {
            Some(delay) => {
                let raced = hedge::race(run(index, false, &failures), delay, || {
                    run(index + 1, true, &failures)
                })
                .await;
                if matches!(raced.1, Used::Both { .. }) {
                    state.metrics.count_hedge();
                }
                raced
            }
            None => (run(index, false, &failures).await, Used::One),
        };
        let at = index + used.winner();
        match result {
            Ok(mut response) => {
                let h = response.headers_mut();
                h.insert("x-tokenrouter-attempts", HeaderValue::from(at + 1));
                if let Ok(v) = HeaderValue::from_str(&plan.attempts[at].provider.name) {
                    h.insert("x-tokenrouter-provider", v);
                }
                if let Ok(v) = HeaderValue::from_str(shared.routing) {
                    h.insert("x-tokenrouter-routing", v);
                }
                limits::headers(&admission.grant, h);
                return Ok(response);
            }
            Err(AttemptError::Refused(e)) => return Err(e),
            Err(AttemptError::Upstream(e)) => {
                let a = &plan.attempts[at];
                tracing::debug!(%request_id, provider = %a.provider.name, attempt = at + 1, error = ?e, "upstream attempt failed");
                skipping_unserved = e.is_model_missing();
                if skipping_unserved {
                    state.availability.mark_missing(&a.provider.name, &a.model);
                }
                let moves_on =
                    plan.policy.retry_on.moves_on(&e) || (skipping_unserved && !plan.pinned);
                failures.push(json!({"provider": a.provider.name, "model": a.model,
                    "error": e.kind(), "ms": record.started().elapsed().as_millis() as u64}));
                failed = Some((at, e));
                if !moves_on {
                    break;
                }
            }
        }
        index += used.count();
    }
    let Some((at, e)) = failed else {
        return Err(ApiError::unavailable(
            "No provider is available for this model.",
        ));
    };
    let a = &plan.attempts[at];
    record.accounting.provider = a.provider.name.clone();
    record.accounting.provider_name = genai::provider_name(&a.provider.kind);
    record.accounting.model = a.model.clone();
    record.accounting.attempts = at as u32 + 1;
    record.accounting.failed_attempts = Value::from(failures).to_string();
    Err(match &e {
        UpstreamError::Status { message, .. } if e.is_model_missing() => {
            ApiError::model_not_served(&a.provider.name, &a.model, message)
        }
        _ if e.is_model_missing() => ApiError::model_not_served(&a.provider.name, &a.model, ""),
        _ => e.to_api_error(&a.provider.name),
    })
}

/// What the request reserves of its limits: the prompt estimate plus `max_tokens` (or the
/// default cap, within the model's own), priced at the dearest attempt of the plan.
fn demand(request: &ChatRequest, plan: &Plan) -> Demand {
    let f = &request.features;
    let mut tokens = 0;
    let mut cost: f64 = 0.0;
    for a in &plan.attempts {
        let cap = a.info.as_ref().map_or(limits::DEFAULT_OUTPUT_CAP, |i| {
            limits::DEFAULT_OUTPUT_CAP.min(u64::from(i.max_output.max(1)))
        });
        // Embeddings produce no tokens of their own.
        let output = match request.operation {
            Operation::Chat | Operation::Responses => f.max_tokens.unwrap_or(cap),
            Operation::Embeddings => 0,
        };
        tokens = tokens.max(f.prompt_tokens + output);
        if let Some(i) = &a.info {
            let usage = Usage {
                prompt_tokens: f.prompt_tokens,
                completion_tokens: output,
                ..Usage::default()
            };
            cost = cost.max(i.cost(&usage));
        }
    }
    Demand {
        tokens,
        cost_micro: (cost * 1e6).ceil() as i64,
    }
}
