//! The `auto:*` modes. Candidates are every (provider, model) the catalog knows that can honour the
//! request and whose breaker is not open; they are ranked by
//! * `auto:fast` — measured time to first token (or latency), penalised by error rate and scarce
//!   rate-limit headroom; unmeasured or stale candidates are explored one request in ten;
//! * `auto:cost` — expected price of this request (prompt estimate × input price + expected output ×
//!   output price);
//! * `auto:quality` — the catalog's quality score, cheaper first on ties;
//! * `auto:balance` — 0.4 × quality + 0.3 × cheapness + 0.3 × speed, each normalised to 0–1 over the
//!   candidates (an unmeasured speed counts as 0.5).
//!
//! Candidates within 2 % of the best score share the first place at random, spreading load.

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;

use crate::error::ApiError;
use crate::routing::plan::{Attempt, Plan, RouteCtx, Routing, attempt, check_one};
use crate::signals::Stats;
use crate::snapshot::modes::AutoMode;
use crate::snapshot::policy::PolicyRt;
use crate::snapshot::runtime::TargetRt;

/// Candidates tried for one request (the best and two fallbacks).
const ATTEMPTS: usize = 3;
/// Share of `auto:fast` requests that measure an unmeasured or stale candidate.
const EXPLORE: f64 = 0.1;
/// Measurements older than this are stale.
const STALE: Duration = Duration::from_secs(300);
/// Expected output tokens when the request sets no limit.
const DEFAULT_OUTPUT: u64 = 512;

/// The modes' names, as listings and errors show them.
pub fn mode_names() -> String {
    AutoMode::ALL.map(AutoMode::name).join(", ")
}

struct Scored {
    attempt: Attempt,
    /// When its signals last changed (`None`: never measured).
    last_update: Option<tokio::time::Instant>,
    cost: f64,
    speed_ms: Option<f64>,
    score: f64,
}

/// Builds the plan for an auto mode (`label` is what the response reports as the mode).
pub fn plan(ctx: &RouteCtx<'_>, mode: AutoMode, label: &str) -> Result<Plan, ApiError> {
    let mut names: Vec<&String> = ctx.rt.providers.keys().collect();
    names.sort();
    let mut refused = None;
    let mut scored = Vec::new();
    // Candidates the provider does not serve to our account: used only when nothing else can.
    let mut unserved = Vec::new();
    let Some(mut signals) = ctx.signals.view() else {
        return Err(ApiError::unavailable("Routing signals are unavailable."));
    };
    for name in names {
        let provider = &ctx.rt.providers[name];
        for model in &provider.models {
            let a = attempt(
                ctx.rt,
                &TargetRt {
                    provider: provider.clone(),
                    model: model.clone(),
                },
                model,
            );
            if a.info.is_none() {
                continue;
            }
            if let Err(e) = check_one(&a, &ctx.request.features) {
                refused.get_or_insert(e);
                continue;
            }
            if !provider.credentials.is_empty()
                && !provider
                    .credentials
                    .iter()
                    .any(|c| signals.available(&provider.name, model, &c.name))
            {
                continue;
            }
            let stats = signals.stats(&provider.name, model, "*");
            let pool = if ctx.available.serves(&provider.name, model) {
                &mut scored
            } else {
                &mut unserved
            };
            pool.push(Scored {
                cost: expected_cost(&a, ctx),
                speed_ms: stats.and_then(speed),
                last_update: stats.and_then(|s| s.last_update),
                attempt: a,
                score: 0.0,
            });
        }
    }
    drop(signals);
    if scored.is_empty() {
        scored = unserved;
    }
    if scored.is_empty() {
        return Err(refused.unwrap_or_else(|| {
            ApiError::unavailable(format!(
                "No configured model can serve `{}` right now.",
                mode.name()
            ))
        }));
    }
    let reason = rank(mode, &mut scored);
    let attempts: Vec<Attempt> = scored
        .iter()
        .take(ATTEMPTS)
        .map(|s| s.attempt.clone())
        .collect();
    let routing = Routing {
        mode: label.to_string(),
        chosen: attempts[0].label(),
        runners_up: attempts.iter().skip(1).map(Attempt::label).collect(),
        reason,
    };
    Ok(Plan {
        policy: Arc::new(PolicyRt::default_for(attempts.len())),
        attempts,
        routing,
        pinned: false,
    })
}

/// (provider, model): the tie-break order, compared without building labels.
fn candidate_name(s: &Scored) -> (&str, &str) {
    (&s.attempt.provider.name, &s.attempt.model)
}

fn expected_cost(a: &Attempt, ctx: &RouteCtx<'_>) -> f64 {
    let Some(info) = &a.info else { return f64::MAX };
    let f = &ctx.request.features;
    let output = f
        .max_tokens
        .unwrap_or(DEFAULT_OUTPUT.min(u64::from(info.max_output.max(1))));
    (f.prompt_tokens as f64 * info.input_price + output as f64 * info.output_price) / 1e6
}

/// Milliseconds the candidate is expected to take to start answering, adjusted for errors and headroom.
fn speed(s: &Stats) -> Option<f64> {
    let base = s.ttft_ms.or(s.latency_ms)?;
    let headroom = s.headroom.map_or(1.0, |h| h.max(0.1));
    Some(base * (1.0 + 4.0 * s.error_rate) / headroom)
}

fn normalise(values: impl Iterator<Item = Option<f64>> + Clone) -> impl Fn(Option<f64>) -> f64 {
    let known = values.flatten();
    let (lo, hi) = known.fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
    move |v| match v {
        Some(v) if hi > lo => (v - lo) / (hi - lo),
        Some(_) => 0.0,
        None => 0.5,
    }
}

/// Sorts best first (higher score) and returns why the first won.
fn rank(mode: AutoMode, scored: &mut [Scored]) -> String {
    match mode {
        AutoMode::Cost => scored.iter_mut().for_each(|s| s.score = -s.cost),
        AutoMode::Quality => scored.iter_mut().for_each(|s| {
            s.score = f64::from(s.attempt.info.as_ref().map_or(0, |i| i.quality)) - s.cost * 1e-6
        }),
        AutoMode::Fast => scored
            .iter_mut()
            .for_each(|s| s.score = s.speed_ms.map_or(f64::MIN, |ms| -ms)),
        _ => {
            let cost_n = normalise(
                scored
                    .iter()
                    .map(|s| Some(s.cost))
                    .collect::<Vec<_>>()
                    .into_iter(),
            );
            let speed_n = normalise(
                scored
                    .iter()
                    .map(|s| s.speed_ms)
                    .collect::<Vec<_>>()
                    .into_iter(),
            );
            for s in scored.iter_mut() {
                let quality = f64::from(s.attempt.info.as_ref().map_or(0, |i| i.quality)) / 100.0;
                s.score = 0.4 * quality
                    + 0.3 * (1.0 - cost_n(Some(s.cost)))
                    + 0.3 * (1.0 - speed_n(s.speed_ms));
            }
        }
    }
    scored.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| candidate_name(a).cmp(&candidate_name(b)))
    });
    let mut rng = rand::rng();
    if mode == AutoMode::Fast {
        let explorable: Vec<usize> = (0..scored.len())
            .filter(|i| {
                scored[*i].speed_ms.is_none()
                    || scored[*i].last_update.is_none_or(|t| t.elapsed() > STALE)
            })
            .collect();
        if !explorable.is_empty() && (scored[0].speed_ms.is_none() || rng.random_bool(EXPLORE)) {
            let pick = explorable[rng.random_range(0..explorable.len())];
            scored.swap(0, pick);
            return "exploring a candidate that has not been measured recently".into();
        }
    }
    // Near-ties share the first place so equal candidates share the load.
    let best = scored[0].score;
    let tolerance = best.abs() * 0.02 + f64::EPSILON;
    let tied = scored
        .iter()
        .take_while(|s| (best - s.score).abs() <= tolerance)
        .count();
    if tied > 1 {
        scored.swap(0, rng.random_range(0..tied));
    }
    let first = &scored[0];
    match mode {
        AutoMode::Cost => format!("lowest expected price (${:.6})", first.cost),
        AutoMode::Quality => format!(
            "highest quality score ({})",
            first.attempt.info.as_ref().map_or(0, |i| i.quality)
        ),
        AutoMode::Fast => format!(
            "fastest measured start ({:.0} ms)",
            first.speed_ms.unwrap_or_default()
        ),
        _ => format!(
            "best blend of quality, price and speed ({:.2})",
            first.score
        ),
    }
}
