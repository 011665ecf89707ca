//! Model resolution: turns the requested model into an ordered list of attempts using the key's
//! allowed models, routing rules, `auto:*` modes, `provider:model` pins and the models providers
//! serve, after removing candidates that cannot honour the request.

use std::sync::Arc;

use rand::Rng;
use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::routing::auto;
pub use crate::routing::plan::{Attempt, Plan, RouteCtx, Routing, attempt, check_one};
use crate::snapshot::modes::AutoMode;
use crate::snapshot::policy::PolicyRt;
use crate::snapshot::runtime::{ProviderRt, RuleAction, RuleRt, Runtime, TargetRt};

/// Resolves the request's model into a plan.
pub fn resolve(ctx: &RouteCtx<'_>) -> Result<Plan, ApiError> {
    let requested = ctx.request.model.as_str();
    if !ctx.key.allows(requested) {
        return Err(ApiError::forbidden(
            "model_not_allowed",
            format!("This API key may not use the model `{requested}`."),
        ));
    }
    if let Some(rule) = ctx
        .rt
        .rules_for(&ctx.request.model)
        .find(|r| rule_matches(r, ctx))
    {
        let mode = format!("rule:{}", rule.name);
        return match &rule.action {
            RuleAction::Deny => Err(ApiError::forbidden(
                "request_denied",
                format!("Routing rule `{}` refuses this request.", rule.name),
            )),
            RuleAction::Mode(m) => auto::plan(ctx, *m, &mode),
            RuleAction::Targets(targets) => {
                let mut ordered = weighted_order(targets);
                if let Some(p) = &rule.policy {
                    ordered.extend(p.chain.iter().cloned());
                }
                let policy = rule
                    .policy
                    .clone()
                    .unwrap_or_else(|| Arc::new(PolicyRt::default_for(ordered.len())));
                fixed_plan(ctx, ordered, policy, mode, "matched a routing rule")
            }
        };
    }
    if requested.starts_with("auto:") {
        let Some(m) = AutoMode::parse(requested) else {
            return Err(ApiError::unknown_mode(requested, &auto::mode_names()));
        };
        return auto::plan(ctx, m, requested);
    }
    if let Some((provider, model)) = split_pinned(ctx.rt, requested) {
        let attempt = attempt(
            ctx.rt,
            &TargetRt {
                provider,
                model: model.to_string(),
            },
            requested,
        );
        check_one(&attempt, &ctx.request.features)?;
        let routing = Routing {
            mode: "pinned".into(),
            chosen: attempt.label(),
            runners_up: Vec::new(),
            reason: "provider named in the model".into(),
        };
        return Ok(Plan {
            attempts: vec![attempt],
            policy: Arc::new(PolicyRt::default_for(1)),
            routing,
            pinned: true,
        });
    }
    if let Some((kind, providers, model)) = split_kind(ctx.rt, requested) {
        let targets: Vec<TargetRt> = providers
            .iter()
            .map(|p| TargetRt {
                provider: p.clone(),
                model: model.to_string(),
            })
            .collect();
        let policy = Arc::new(PolicyRt::default_for(targets.len()));
        let reason = format!("providers of kind `{kind}`, by name");
        return fixed_plan(ctx, targets, policy, "kind".into(), &reason);
    }
    if let Some(providers) = ctx.rt.models.get(requested) {
        let targets = providers
            .iter()
            .map(|p| TargetRt {
                provider: p.clone(),
                model: String::new(),
            })
            .collect();
        let policy = Arc::new(PolicyRt::default_for(providers.len()));
        return fixed_plan(
            ctx,
            targets,
            policy,
            "direct".into(),
            "providers serving this model, by name",
        );
    }
    Err(not_found(ctx.rt, requested))
}

/// A 404 that says what exists: the configured providers when the name looks pinned.
fn not_found(rt: &Runtime, requested: &str) -> ApiError {
    if let Some((prefix, _)) = requested.split_once([':', '/']) {
        let mut names: Vec<&str> = rt.providers.keys().map(String::as_str).collect();
        names.sort_unstable();
        return ApiError::model_not_found_because(format!(
            "No provider is named `{prefix}`, none is of kind `{prefix}`, and no configured provider \
             serves a model `{requested}`. Providers: {}. GET /v1/models lists every model; pin one \
             with `provider:model` or `kind:model`.",
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        ));
    }
    ApiError::model_not_found(requested)
}

/// A plan over fixed targets: capability filtering, then the policy's attempt cap.
fn fixed_plan(
    ctx: &RouteCtx<'_>,
    targets: Vec<TargetRt>,
    policy: Arc<PolicyRt>,
    mode: String,
    reason: &str,
) -> Result<Plan, ApiError> {
    let requested = ctx.request.model.as_str();
    let all: Vec<Attempt> = targets
        .iter()
        .map(|t| attempt(ctx.rt, t, requested))
        .collect();
    let mut first_refusal = None;
    let capable: Vec<Attempt> = all
        .into_iter()
        .filter(|a| match check_one(a, &ctx.request.features) {
            Ok(()) => true,
            Err(e) => {
                first_refusal.get_or_insert(e);
                false
            }
        })
        .collect();
    // Candidates known not to serve the model go last rather than away: when no other can answer,
    // the provider's own "not found" is the honest reply.
    let (mut attempts, unserved): (Vec<Attempt>, Vec<Attempt>) = capable
        .into_iter()
        .partition(|a| ctx.available.serves(&a.provider.name, &a.model));
    if attempts.is_empty() {
        attempts = unserved;
    }
    attempts.truncate(policy.max_attempts.max(1));
    let Some(first) = attempts.first() else {
        return Err(first_refusal.unwrap_or_else(|| not_found(ctx.rt, requested)));
    };
    let routing = Routing {
        mode,
        chosen: first.label(),
        runners_up: attempts
            .iter()
            .skip(1)
            .take(3)
            .map(Attempt::label)
            .collect(),
        reason: reason.into(),
    };
    Ok(Plan {
        attempts,
        policy,
        routing,
        pinned: false,
    })
}

fn rule_matches(r: &RuleRt, ctx: &RouteCtx<'_>) -> bool {
    let f = &ctx.request.features;
    glob_match(&r.pattern, &ctx.request.model)
        && (r.api_keys.is_empty() || r.api_keys.contains(&ctx.key.name))
        && r.has_tools.allows(f.has_tools)
        && r.wants_json.allows(f.wants_json)
        && r.stream.allows(ctx.request.stream)
        && r.headers.iter().all(|(name, glob)| {
            ctx.headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| glob_match(glob, v))
        })
        && r.metadata.iter().all(|(key, glob)| {
            metadata_value(ctx.request.user_metadata.as_ref(), key)
                .is_some_and(|v| glob_match(glob, &v))
        })
}

fn metadata_value(meta: Option<&Map<String, Value>>, key: &str) -> Option<String> {
    match meta?.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

/// Targets ordered by a weighted draw for the first place, then by weight.
fn weighted_order(targets: &[(TargetRt, u32)]) -> Vec<TargetRt> {
    let total: u64 = targets.iter().map(|(_, w)| u64::from(*w)).sum();
    let mut ticket = if total > 0 {
        rand::rng().random_range(0..total)
    } else {
        0
    };
    let mut first = 0;
    for (i, (_, w)) in targets.iter().enumerate() {
        if ticket < u64::from(*w) {
            first = i;
            break;
        }
        ticket -= u64::from(*w);
    }
    let mut rest: Vec<usize> = (0..targets.len()).filter(|i| *i != first).collect();
    rest.sort_by_key(|i| std::cmp::Reverse(targets[*i].1));
    std::iter::once(first)
        .chain(rest)
        .filter_map(|i| targets.get(i).map(|(t, _)| t.clone()))
        .collect()
}

/// `provider:model` or `provider/model` where `provider` names a configured provider. Other names
/// with `:` or `/` (Ollama's `llama3:8b`, `meta-llama/...`) stay bare model names.
fn split_pinned<'a>(rt: &Runtime, requested: &'a str) -> Option<(Arc<ProviderRt>, &'a str)> {
    let (prefix, model) = requested.split_once([':', '/'])?;
    let provider = rt.providers.get(prefix)?;
    (!model.is_empty()).then(|| (provider.clone(), model))
}

/// The provider kinds a documented prefix (`anthropic:claude-...`) names.
pub const KIND_PREFIXES: [&str; 5] = ["openai", "anthropic", "gemini", "mistral", "deepseek"];

/// `kind:model` or `kind/model` where `kind` is one of [`KIND_PREFIXES`] and some provider is of
/// that kind (checked after provider names, which win).
fn split_kind<'r, 'a>(
    rt: &'r Runtime,
    requested: &'a str,
) -> Option<(&'a str, &'r [Arc<ProviderRt>], &'a str)> {
    let (prefix, model) = requested.split_once([':', '/'])?;
    if model.is_empty() || !KIND_PREFIXES.contains(&prefix) {
        return None;
    }
    let providers = rt.by_kind.get(prefix)?;
    (!providers.is_empty()).then_some((prefix, providers.as_slice(), model))
}

/// Whole-string match where `*` stands for any run of characters (shared with the control plane's
/// `keys show`, so both planes read a glob alike).
use tokenrouter_proto::limits::glob_match;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_whole_names() {
        assert!(glob_match("*", "anything"));
        assert!(glob_match("gpt-4*", "gpt-4o"));
        assert!(!glob_match("gpt-4*", "xgpt-4o"));
        assert!(glob_match("*mini", "gpt-4o-mini"));
        assert!(glob_match("a*b*c", "aXbYc"));
        assert!(!glob_match("a*b*c", "aXbY"));
        assert!(glob_match("exact", "exact"));
        assert!(!glob_match("exact", "exactly"));
        assert!(!glob_match("ab*ba", "aba"));
    }
}
