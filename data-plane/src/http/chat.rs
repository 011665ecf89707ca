//! `POST /v1/chat/completions`: parse and validate, resolve the model into a plan, run its attempts
//! (backoff, retry budget, breakers, credential cool-downs, optional hedging) until one answers, and
//! relay the answer (JSON or SSE) with TokenRouter's extension fields.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::http::middleware::{Authed, RequestId};
use crate::providers::{self, RequestCtx, ResponseCtx};
use crate::request::{self, ChatRequest};
use crate::routing::resolve::{self, Attempt, Plan, RouteCtx};
use crate::signals::{self, Admission, Outcome, headroom_from};
use crate::state::DataPlaneState;
use crate::telemetry::accounting::{Accounting, account};
use crate::upstream::extensions::Extensions;
use crate::upstream::relay::{Relay, RelayTimeouts};
use crate::upstream::{self, UpstreamError};

pub async fn completions(
    State(state): State<Arc<DataPlaneState>>,
    Extension(authed): Extension<Authed>,
    Extension(RequestId(request_id)): Extension<RequestId>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let mut accounting = Accounting::for_request(&request_id, &authed.key.name);
    // Boxed: the attempt machinery is a large future, and axum moves the handler's future several
    // times through its layers; a pointer moves for free, kilobytes of state do not.
    match Box::pin(handle(
        &state,
        &authed,
        &request_id,
        &headers,
        body,
        &mut accounting,
    ))
    .await
    {
        Ok(response) => response,
        Err(e) => {
            accounting.status = e.status.as_u16();
            accounting.latency_ms = authed.started.elapsed().as_millis() as u64;
            account(&state, accounting);
            e.into_response()
        }
    }
}

async fn handle(
    state: &Arc<DataPlaneState>,
    authed: &Authed,
    request_id: &str,
    headers: &HeaderMap,
    body: Body,
    accounting: &mut Accounting,
) -> Result<Response, ApiError> {
    check_content_type(headers)?;
    let limit = state.config.max_body_bytes;
    let bytes = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| ApiError::payload_too_large(limit))?;
    let request = request::parse(&bytes)?;
    accounting.describe(&request);
    let plan = resolve::resolve(&RouteCtx {
        rt: &authed.runtime,
        signals: &state.signals,
        key: &authed.key,
        headers,
        request: &request,
        available: &state.availability.view(),
    })?;
    accounting.routing_mode = plan.routing.mode.clone();
    let admission = state
        .limiter
        .admit(
            request_id,
            &authed.key.name,
            authed.key.limits.as_deref(),
            request.body.get("user").and_then(|u| u.as_str()),
            &request.model,
            limits_demand(&request, &plan),
        )
        .await?;
    accounting.reservation = admission.reservation.clone();
    state.retry_budget.request();
    let base = &*accounting;
    let routing = serde_json::to_string(&plan.routing).unwrap_or_default();
    let shared = Shared {
        state,
        request: &request,
        routing: &routing,
        started: authed.started,
    };
    let run = |index: usize| {
        let attempt = &plan.attempts[index];
        let ext = Extensions::new(&attempt.provider.name, &plan.routing.mode, request_id);
        let last = index + 1 == plan.attempts.len();
        let mut record = base.clone();
        record.attempts = index as u32 + 1;
        Box::pin(try_attempt(&shared, attempt, ext, last, record))
    };
    let mut last: Option<(String, UpstreamError)> = None;
    // (index, attempts made) of the last failed attempt, for the record of a failed request.
    let mut last_failed: Option<(usize, u32)> = None;
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
        let (result, used, winner) = match hedge_delay(state, &plan, index) {
            Some(delay) => hedged(run(index), delay, || run(index + 1)).await,
            None => (run(index).await, 1, 0),
        };
        match result {
            Ok(mut response) => {
                let h = response.headers_mut();
                h.insert(
                    "x-tokenrouter-attempts",
                    HeaderValue::from(index + winner + 1),
                );
                if let Ok(v) = HeaderValue::from_str(&plan.attempts[index + winner].provider.name) {
                    h.insert("x-tokenrouter-provider", v);
                }
                if let Ok(v) = HeaderValue::from_str(&routing) {
                    h.insert("x-tokenrouter-routing", v);
                }
                crate::limits::headers(&admission.grant, h);
                return Ok(response);
            }
            Err(AttemptError::Refused(e)) => return Err(e),
            Err(AttemptError::Upstream(e)) => {
                let failed = &plan.attempts[index + winner];
                let provider = failed.provider.name.clone();
                last_failed = Some((index + winner, (index + winner + 1) as u32));
                tracing::debug!(%request_id, %provider, attempt = index + 1, error = ?e, "upstream attempt failed");
                skipping_unserved = e.is_model_missing();
                if skipping_unserved {
                    state
                        .availability
                        .mark_missing(&failed.provider.name, &failed.model);
                }
                let moves_on =
                    plan.policy.retry_on.moves_on(&e) || (skipping_unserved && !plan.pinned);
                last = Some((provider, e));
                if !moves_on {
                    break;
                }
            }
        }
        index += used;
    }
    if let Some((failed, attempts)) = last_failed {
        accounting.provider = plan.attempts[failed].provider.name.clone();
        accounting.model = plan.attempts[failed].model.clone();
        accounting.attempts = attempts;
    }
    Err(match last {
        Some((provider, e)) if e.is_model_missing() => {
            let model = last_failed.map_or("", |(i, _)| plan.attempts[i].model.as_str());
            let detail = match &e {
                UpstreamError::Status { message, .. } => message.as_str(),
                _ => "",
            };
            ApiError::model_not_served(&provider, model, detail)
        }
        Some((provider, e)) => e.to_api_error(&provider),
        None => ApiError::unavailable("No provider is available for this model."),
    })
}

/// What the request reserves of its limits: the prompt estimate plus `max_tokens` (or the
/// default cap, within the model's own), priced at the dearest attempt of the plan.
fn limits_demand(request: &ChatRequest, plan: &Plan) -> crate::limits::Demand {
    let f = &request.features;
    let mut tokens = 0;
    let mut cost: f64 = 0.0;
    for a in &plan.attempts {
        let cap = a
            .info
            .as_ref()
            .map_or(crate::limits::DEFAULT_OUTPUT_CAP, |i| {
                crate::limits::DEFAULT_OUTPUT_CAP.min(u64::from(i.max_output.max(1)))
            });
        let output = f.max_tokens.unwrap_or(cap);
        tokens = tokens.max(f.prompt_tokens + output);
        if let Some(i) = &a.info {
            cost = cost.max(
                (f.prompt_tokens as f64 * i.input_price + output as f64 * i.output_price) / 1e6,
            );
        }
    }
    crate::limits::Demand {
        tokens,
        cost_micro: (cost * 1e6).ceil() as i64,
    }
}

/// When to start the next attempt alongside this one, if the policy hedges.
fn hedge_delay(state: &DataPlaneState, plan: &Plan, index: usize) -> Option<Duration> {
    let floor = plan.policy.hedge_after?;
    if index + 1 >= plan.attempts.len() {
        return None;
    }
    if !plan.policy.hedge_learned {
        return Some(floor);
    }
    let a = &plan.attempts[index];
    let learned = state
        .signals
        .get(&signals::key(&a.provider.name, &a.model, "*"))
        .ttft_percentile(90.0);
    Some(learned.map_or(floor, |ms| floor.max(Duration::from_secs_f64(ms / 1000.0))))
}

/// Runs `first`; if it has not answered after `delay`, starts `second` too and keeps whichever
/// answers first (the other is dropped, which cancels its upstream request). Returns the result,
/// how many attempts were used and which one produced the result (0 or 1).
async fn hedged<F>(
    first: F,
    delay: Duration,
    second: impl FnOnce() -> F,
) -> (Result<Response, AttemptError>, usize, usize)
where
    F: std::future::Future<Output = Result<Response, AttemptError>>,
{
    tokio::pin!(first);
    tokio::select! {
        result = &mut first => return (result, 1, 0),
        () = tokio::time::sleep(delay) => {}
    }
    let second = second();
    tokio::pin!(second);
    tokio::select! {
        result = &mut first => match result {
            Ok(r) => (Ok(r), 2, 0),
            Err(_) => (second.await, 2, 1),
        },
        result = &mut second => match result {
            Ok(r) => (Ok(r), 2, 1),
            Err(_) => (first.await, 2, 0),
        },
    }
}

fn check_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let ok = match headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    {
        None => true,
        Some(ct) => ct
            .split(';')
            .next()
            .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json")),
    };
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "invalid_content_type",
            "Content-Type must be application/json.",
        ))
    }
}

/// Why one attempt did not produce an answer.
enum AttemptError {
    /// The adapter refused the request (e.g. a parameter this provider cannot honour).
    Refused(ApiError),
    Upstream(UpstreamError),
}

impl From<UpstreamError> for AttemptError {
    fn from(e: UpstreamError) -> Self {
        AttemptError::Upstream(e)
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Picks the credential to use: the first admitted one, starting at a random place so several
/// credentials share the load. `Ok(None)` when the provider needs none.
async fn pick_credential(
    state: &DataPlaneState,
    attempt: &Attempt,
    last: bool,
) -> Result<Option<usize>, UpstreamError> {
    let creds = &attempt.provider.credentials;
    if creds.is_empty() {
        return Ok(None);
    }
    let start = rand::random_range(0..creds.len());
    for round in 0..2 {
        for offset in 0..creds.len() {
            let i = (start + offset) % creds.len();
            let key = signals::key(&attempt.provider.name, &attempt.model, &creds[i].name);
            if state.signals.admit(&key) != Admission::Refused {
                return Ok(Some(i));
            }
        }
        // The last option may wait out a short Retry-After rather than fail at once.
        let wait = creds
            .iter()
            .filter_map(|c| {
                state.signals.cooling_for(&signals::key(
                    &attempt.provider.name,
                    &attempt.model,
                    &c.name,
                ))
            })
            .min();
        match wait {
            Some(w) if last && round == 0 && w <= crate::snapshot::policy::MAX_RETRY_AFTER_WAIT => {
                tokio::time::sleep(w).await
            }
            _ => break,
        }
    }
    Err(UpstreamError::Unavailable(
        "is cooling down after rate limits or has an open circuit breaker".into(),
    ))
}

/// Updates the live signals after a failed attempt: 429s cool the credential down, outages count
/// against the breaker, refusals of the request itself count for nothing.
fn record_failure(state: &DataPlaneState, key: &str, aggregate: &str, e: &UpstreamError) {
    match e {
        UpstreamError::Status {
            status: 429,
            retry_after,
            ..
        } => {
            state
                .signals
                .cool_down(key, Duration::from_secs(retry_after.unwrap_or(1).min(600)));
        }
        UpstreamError::Status { status, .. } if *status < 500 && *status != 408 => {}
        UpstreamError::Unavailable(_) => {}
        _ => {
            state.signals.failure(key);
            state.signals.error(aggregate);
        }
    }
}

/// What every attempt of one request shares.
struct Shared<'a> {
    state: &'a Arc<DataPlaneState>,
    request: &'a ChatRequest,
    /// The `routing` object as JSON.
    routing: &'a str,
    started: std::time::Instant,
}

async fn try_attempt(
    shared: &Shared<'_>,
    attempt: &Attempt,
    ext: Extensions,
    last: bool,
    mut record: Accounting,
) -> Result<Response, AttemptError> {
    let Shared {
        state,
        request,
        routing,
        started,
    } = *shared;
    record.provider = attempt.provider.name.clone();
    record.model = attempt.model.clone();
    record.status = 200;
    let provider = &attempt.provider;
    let call = providers::build(
        provider.protocol,
        &RequestCtx {
            body: &request.body,
            model: &attempt.model,
            stream: request.stream,
        },
    )
    .map_err(AttemptError::Refused)?;
    let dropped = (!call.dropped.is_empty()).then(|| call.dropped.join(","));
    let shape = call.shape;
    let credential = pick_credential(state, attempt, last).await?;
    let credential = credential.map(|i| &provider.credentials[i]);
    let key = signals::key(
        &provider.name,
        &attempt.model,
        credential.map_or("", |c| c.name.as_str()),
    );
    let aggregate = signals::key(&provider.name, &attempt.model, "*");
    let ctx = ResponseCtx {
        id: crate::request::ids::prefixed_hex("chatcmpl-"),
        created: unix_now(),
        model: attempt.model.clone(),
        include_usage: request.include_usage,
    };
    // A stream's first-token timer starts when the request is sent: a provider that is slow to
    // even answer with headers is as late as one that answers and then says nothing.
    let sent_at = std::time::Instant::now();
    // A model's own timeouts (catalog) override its provider's.
    let info = attempt.info.as_deref();
    let first_token_timeout = info
        .and_then(|i| i.first_token_timeout)
        .unwrap_or(provider.first_token_timeout);
    let idle_timeout = info
        .and_then(|i| i.idle_timeout)
        .unwrap_or(provider.idle_timeout);
    let total_timeout = info.and_then(|i| i.timeout).unwrap_or(provider.timeout);
    let sending = upstream::send(provider, credential, call, &ext.request_id, total_timeout);
    let sent = if request.stream {
        tokio::time::timeout(first_token_timeout, sending)
            .await
            .unwrap_or(Err(UpstreamError::Timeout))
    } else {
        sending.await
    };
    let response = match sent {
        Ok(r) => r,
        Err(e) => {
            record_failure(state, &key, &aggregate, &e);
            return Err(e.into());
        }
    };
    if let Some(h) = headroom_from(response.headers()) {
        state.signals.headroom(&key, h);
        state.signals.headroom(&aggregate, h);
    }
    let mut answer = if request.stream {
        let translator = providers::stream_translator_shaped(provider.protocol, ctx, shape);
        let timeouts = RelayTimeouts {
            first_token: first_token_timeout.saturating_sub(sent_at.elapsed()),
            idle: idle_timeout,
            client_stall: state.config.client_stall_timeout,
        };
        let finish_state = state.clone();
        let info = attempt.info.clone();
        let (cred_key, agg_key) = (key.clone(), aggregate.clone());
        let ttft = std::sync::Arc::new(std::sync::Mutex::new(None));
        let ttft_seen = ttft.clone();
        let on_finish = Box::new(
            move |usage: Option<crate::telemetry::usage::Usage>, completed: bool| {
                let latency = sent_at.elapsed();
                let ttft: Option<std::time::Duration> = ttft_seen.lock().ok().and_then(|t| *t);
                record.usage = usage;
                record.cost_usd = info.as_ref().zip(usage.as_ref()).map(|(i, u)| i.cost(u));
                record.latency_ms = started.elapsed().as_millis() as u64;
                record.ttft_ms = ttft.map(|t| t.as_millis() as u64);
                record.completed = completed;
                account(&finish_state, record);
                if completed {
                    let outcome = Outcome {
                        latency,
                        ttft,
                        output_tokens: usage.map_or(0, |u| u.completion_tokens),
                    };
                    finish_state.signals.success(&cred_key, outcome);
                    finish_state.signals.success(&agg_key, outcome);
                }
            },
        );
        let relay = match Relay::open(
            response,
            translator,
            ext,
            started,
            timeouts,
            attempt.info.clone(),
            on_finish,
        )
        .await
        {
            Ok(relay) => relay,
            Err(e) => {
                record_failure(state, &key, &aggregate, &e);
                return Err(e.into());
            }
        };
        if let Ok(mut t) = ttft.lock() {
            *t = Some(sent_at.elapsed());
        }
        Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, "text/event-stream")
            .header(header::CACHE_CONTROL, "no-cache")
            .body(relay.into_body())
            .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
    } else {
        let translated = async {
            let bytes = upstream::read_capped(response, upstream::MAX_RESPONSE_BODY).await?;
            providers::translate_shaped(provider.protocol, bytes, &ctx, shape)
        }
        .await;
        let translated = match translated {
            Ok(t) => t,
            Err(e) => {
                record_failure(state, &key, &aggregate, &e);
                return Err(e.into());
            }
        };
        let outcome = Outcome {
            latency: sent_at.elapsed(),
            ttft: None,
            output_tokens: translated.usage.map_or(0, |u| u.completion_tokens),
        };
        state.signals.success(&key, outcome);
        state.signals.success(&aggregate, outcome);
        let latency_ms = started.elapsed().as_millis() as u64;
        let cost = attempt
            .info
            .as_ref()
            .zip(translated.usage.as_ref())
            .map(|(i, u)| i.cost(u));
        let mut extra = String::with_capacity(routing.len() + 40);
        extra.push_str("\"routing\":");
        extra.push_str(routing);
        if let Some(cost) = cost {
            let _ = write!(extra, ",\"cost_usd\":{cost}");
        }
        record.usage = translated.usage;
        record.cost_usd = cost;
        record.latency_ms = latency_ms;
        record.completed = true;
        account(state, record);
        let mut out = translated.body;
        ext.splice_in_place(&mut out, latency_ms, &extra);
        Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(out))
            .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
    };
    if let Some(v) = dropped.and_then(|d| HeaderValue::from_str(&d).ok()) {
        answer
            .headers_mut()
            .insert("x-tokenrouter-dropped-params", v);
    }
    Ok(answer)
}
