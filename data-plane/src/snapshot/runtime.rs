//! A snapshot compiled for serving: lookups by key hash, provider, model and rule, built once per
//! snapshot so the hot path never parses configuration.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderName, HeaderValue};
use tokenrouter_proto::v1::{FallbackPolicy, RoutingRule, Snapshot};
use tokenrouter_proto::{content_hash, validate_snapshot};

use crate::providers::Protocol;
use crate::snapshot::catalog::Catalog;
use crate::snapshot::modes::AutoMode;
use crate::snapshot::policy::{PolicyRt, RetryOn};
pub use crate::snapshot::provider::{CredentialRt, ProviderRt, Secret, TargetRt};
use crate::upstream::clients::ClientCache;
use crate::upstream::uri::private_host;

/// Total time for one upstream attempt when the provider sets none: long enough for reasoning models.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);
/// Connect timeout when the provider sets none.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Time to first streamed content when the provider sets none.
pub const DEFAULT_FIRST_TOKEN_TIMEOUT: Duration = Duration::from_secs(180);
/// Longest silence inside a stream when the provider sets none.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(300);

/// Why a snapshot cannot be served; sent back to the control plane as a NACK.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompileError {
    #[error("invalid snapshot: {0}")]
    Invalid(#[from] tokenrouter_proto::ValidationError),
    #[error("content hash mismatch: snapshot says {claimed}, content hashes to {actual}")]
    HashMismatch { claimed: String, actual: String },
    #[error("providers[{0}].kind: {1:?} is not a protocol this data plane speaks")]
    UnknownKind(String, String),
    #[error("routing_rules[{0}].mode: {1:?} is not a routing mode this data plane knows")]
    UnknownMode(String, String),
    #[error("credential {0}: the secret cannot be sent as an HTTP header")]
    BadSecret(String),
    #[error(
        "providers[{provider}].base_url: {host} is a private or loopback address, which this data plane refuses (--deny-private-upstreams)"
    )]
    PrivateUpstream { provider: String, host: String },
    #[error(transparent)]
    Firewall(#[from] crate::firewall::rules::FirewallError),
}

/// A rule condition on a request feature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tri {
    Any,
    Yes,
    No,
}

impl Tri {
    fn parse(text: &str) -> Tri {
        match text {
            "yes" => Tri::Yes,
            "no" => Tri::No,
            _ => Tri::Any,
        }
    }

    pub fn allows(self, value: bool) -> bool {
        match self {
            Tri::Any => true,
            Tri::Yes => value,
            Tri::No => !value,
        }
    }
}

/// What a matching rule does.
#[derive(Debug, Clone)]
pub enum RuleAction {
    /// Weighted targets (one target has weight 1).
    Targets(Vec<(TargetRt, u32)>),
    /// An `auto:*` mode.
    Mode(AutoMode),
    Deny,
}

/// A routing rule after compilation.
#[derive(Debug)]
pub struct RuleRt {
    pub name: String,
    pub pattern: String,
    pub api_keys: Vec<String>,
    /// (lowercase header name, glob).
    pub headers: Vec<(String, String)>,
    pub metadata: Vec<(String, String)>,
    pub has_tools: Tri,
    pub wants_json: Tri,
    pub stream: Tri,
    pub action: RuleAction,
    pub policy: Option<Arc<PolicyRt>>,
}

/// What an API key may do.
#[derive(Debug, Clone)]
pub struct KeyRt {
    pub name: String,
    pub disabled: bool,
    /// Globs of models it may use; empty allows all.
    pub allowed_models: Vec<String>,
    /// Spend control; `None` when the key has no limit.
    pub limits: Option<Arc<crate::limits::KeyLimits>>,
    /// Its requests' bodies go with their usage records (masked, capped), for the dashboard.
    pub log_bodies: bool,
}

impl KeyRt {
    /// Whether the key may use `model` (the name as requested or listed): no list allows all.
    pub fn allows(&self, model: &str) -> bool {
        self.allowed_models.is_empty()
            || self
                .allowed_models
                .iter()
                .any(|g| tokenrouter_proto::limits::glob_match(g, model))
    }
}

/// Everything one snapshot says, compiled. Immutable; swapped whole.
#[derive(Debug, Default)]
pub struct Runtime {
    pub version: u64,
    pub epoch: String,
    pub content_hash: String,
    pub providers: HashMap<String, Arc<ProviderRt>>,
    /// Bare model name → enabled providers serving it, by provider name.
    pub models: HashMap<String, Vec<Arc<ProviderRt>>>,
    /// Provider kind (`openai`, `anthropic`, ...) → enabled providers of that kind, by name: what a
    /// `kind:model` prefix resolves to when no provider is named like the kind.
    pub by_kind: HashMap<String, Vec<Arc<ProviderRt>>>,
    /// The keys, found by what a request presents.
    pub api_keys: super::keys::ApiKeys,
    /// In priority order.
    pub rules: Vec<RuleRt>,
    /// Indices into `rules` of rules whose pattern is an exact name, by that name (ascending).
    pub exact_rules: HashMap<String, Vec<usize>>,
    /// Indices into `rules` of rules whose pattern is `prefix*` (one star, at the end), by prefix
    /// (ascending).
    pub prefix_rules: HashMap<String, Vec<usize>>,
    /// The distinct prefix lengths (bytes) in `prefix_rules`, ascending.
    pub prefix_lens: Vec<usize>,
    /// Indices into `rules` of the other rules with a `*` (ascending).
    pub glob_rules: Vec<usize>,
    pub catalog: Catalog,
    /// The content filters, compiled.
    pub firewall: Arc<crate::firewall::Firewall>,
}

/// What the data plane accepts beyond the snapshot's own validity.
#[derive(Debug, Clone, Copy, Default)]
pub struct CompilePolicy {
    /// Refuse providers whose base URL is a loopback, private or link-local address literal.
    pub deny_private_upstreams: bool,
}

fn millis_or(ms: u32, default: Duration) -> Duration {
    if ms == 0 {
        default
    } else {
        Duration::from_millis(u64::from(ms))
    }
}

impl Runtime {
    /// Rules that could match `model`, in priority order: the exact-name ones for it, the `prefix*`
    /// ones whose prefix it starts with, and the other glob rules. A large rule set costs a few
    /// lookups plus the general globs, not a full scan.
    pub fn rules_for<'a>(&'a self, model: &str) -> impl Iterator<Item = &'a RuleRt> + 'a {
        let mut picked: Vec<usize> = Vec::new();
        if let Some(exact) = self.exact_rules.get(model) {
            picked.extend_from_slice(exact);
        }
        for &len in &self.prefix_lens {
            let Some(prefix) = model.get(..len) else {
                // Longer than the model, or not on a character boundary: no rule can match.
                continue;
            };
            if let Some(rules) = self.prefix_rules.get(prefix) {
                picked.extend_from_slice(rules);
            }
        }
        picked.extend_from_slice(&self.glob_rules);
        picked.sort_unstable();
        picked.into_iter().filter_map(|i| self.rules.get(i))
    }

    /// Validates a snapshot as untrusted input and compiles it.
    pub fn compile(
        s: &Snapshot,
        policy: CompilePolicy,
        clients: &ClientCache,
    ) -> Result<Runtime, CompileError> {
        validate_snapshot(s)?;
        let actual = content_hash(s);
        if actual != s.content_hash {
            return Err(CompileError::HashMismatch {
                claimed: s.content_hash.clone(),
                actual,
            });
        }
        let catalog = Catalog::build(&s.models);
        let mut providers = HashMap::new();
        for p in s.providers.iter().filter(|p| !p.disabled) {
            if policy.deny_private_upstreams
                && let Some(host) = private_host(&p.base_url)
            {
                return Err(CompileError::PrivateUpstream {
                    provider: p.name.clone(),
                    host,
                });
            }
            let protocol = Protocol::from_kind(&p.kind)
                .ok_or_else(|| CompileError::UnknownKind(p.name.clone(), p.kind.clone()))?;
            let mut credentials = Vec::new();
            for c in s.credentials.iter().filter(|c| c.provider == p.name) {
                let (name, value) = protocol.auth_header(&c.secret);
                let mut value = HeaderValue::try_from(value)
                    .map_err(|_| CompileError::BadSecret(c.name.clone()))?;
                value.set_sensitive(true);
                credentials.push(CredentialRt {
                    name: c.name.clone(),
                    header: (HeaderName::from_static(name), value),
                    secret: Secret(c.secret.clone()),
                });
            }
            let models = if p.models.is_empty() {
                catalog.models_of(&p.kind)
            } else {
                p.models.clone()
            };
            let rt = ProviderRt {
                name: p.name.clone(),
                kind: p.kind.clone(),
                protocol,
                base_url: p.base_url.trim_end_matches('/').to_string(),
                server: url::Url::parse(&p.base_url)
                    .ok()
                    .and_then(|u| Some((u.host_str()?.to_string(), u.port_or_known_default()?))),
                fixed_uri: protocol.fixed_path().and_then(|path| {
                    crate::upstream::uri::upstream_uri(p.base_url.trim_end_matches('/'), path)
                }),
                models,
                credentials,
                timeout: millis_or(p.timeout_ms, DEFAULT_TIMEOUT),
                first_token_timeout: millis_or(
                    p.first_token_timeout_ms,
                    DEFAULT_FIRST_TOKEN_TIMEOUT,
                ),
                idle_timeout: millis_or(p.idle_timeout_ms, DEFAULT_IDLE_TIMEOUT),
                client: clients.get(
                    millis_or(p.connect_timeout_ms, DEFAULT_CONNECT_TIMEOUT),
                    &p.proxy,
                ),
            };
            providers.insert(p.name.clone(), Arc::new(rt));
        }
        let mut models: HashMap<String, Vec<Arc<ProviderRt>>> = HashMap::new();
        let mut names: Vec<&String> = providers.keys().collect();
        names.sort();
        let mut by_kind: HashMap<String, Vec<Arc<ProviderRt>>> = HashMap::new();
        for name in names {
            let p = &providers[name];
            for m in &p.models {
                models.entry(m.clone()).or_default().push(p.clone());
            }
            by_kind.entry(p.kind.clone()).or_default().push(p.clone());
        }
        let api_keys = s
            .api_keys
            .iter()
            .filter_map(|k| {
                let digest: [u8; 32] = hex::decode(&k.sha256).ok()?.try_into().ok()?;
                Some((
                    digest,
                    Arc::new(KeyRt {
                        name: k.name.clone(),
                        disabled: k.disabled,
                        allowed_models: k.allowed_models.clone(),
                        limits: crate::limits::KeyLimits::compile(k).map(Arc::new),
                        log_bodies: k.log_bodies,
                    }),
                ))
            })
            .collect();
        let target = |provider: &str, model: &str| {
            providers.get(provider).map(|p| TargetRt {
                provider: p.clone(),
                model: model.to_string(),
            })
        };
        let policies: HashMap<&str, Arc<PolicyRt>> = s
            .fallback_policies
            .iter()
            .map(|p| (p.name.as_str(), Arc::new(compile_policy(p, &target))))
            .collect();
        let mut ordered: Vec<&RoutingRule> = s.routing_rules.iter().collect();
        ordered.sort_by(|a, b| (a.priority, &a.name).cmp(&(b.priority, &b.name)));
        let mut rules = Vec::new();
        for r in ordered {
            let action = if r.deny {
                RuleAction::Deny
            } else if !r.mode.is_empty() {
                RuleAction::Mode(
                    AutoMode::parse(&r.mode)
                        .ok_or_else(|| CompileError::UnknownMode(r.name.clone(), r.mode.clone()))?,
                )
            } else if !r.targets.is_empty() {
                RuleAction::Targets(
                    r.targets
                        .iter()
                        .filter_map(|t| Some((target(&t.provider, &t.model)?, t.weight)))
                        .collect(),
                )
            } else {
                RuleAction::Targets(
                    target(&r.target_provider, &r.target_model)
                        .map(|t| (t, 1))
                        .into_iter()
                        .collect(),
                )
            };
            // A rule whose every target is disabled is skipped, so requests fall through.
            if matches!(&action, RuleAction::Targets(t) if t.is_empty()) {
                continue;
            }
            rules.push(RuleRt {
                name: r.name.clone(),
                pattern: r.match_model.clone(),
                api_keys: r.match_api_keys.clone(),
                headers: r
                    .match_headers
                    .iter()
                    .map(|g| (g.key.to_ascii_lowercase(), g.glob.clone()))
                    .collect(),
                metadata: r
                    .match_metadata
                    .iter()
                    .map(|g| (g.key.clone(), g.glob.clone()))
                    .collect(),
                has_tools: Tri::parse(&r.match_has_tools),
                wants_json: Tri::parse(&r.match_wants_json),
                stream: Tri::parse(&r.match_stream),
                action,
                policy: policies.get(r.fallback_policy.as_str()).cloned(),
            });
        }
        let mut exact_rules: HashMap<String, Vec<usize>> = HashMap::new();
        let mut prefix_rules: HashMap<String, Vec<usize>> = HashMap::new();
        let mut glob_rules = Vec::new();
        for (i, r) in rules.iter().enumerate() {
            match r.pattern.split_once('*') {
                None => exact_rules.entry(r.pattern.clone()).or_default().push(i),
                Some((prefix, "")) => prefix_rules.entry(prefix.to_string()).or_default().push(i),
                Some(_) => glob_rules.push(i),
            }
        }
        let mut prefix_lens: Vec<usize> = prefix_rules.keys().map(String::len).collect();
        prefix_lens.sort_unstable();
        prefix_lens.dedup();
        Ok(Runtime {
            version: s.version,
            epoch: s.epoch.clone(),
            content_hash: s.content_hash.clone(),
            providers,
            models,
            by_kind,
            api_keys: super::keys::ApiKeys::new(api_keys),
            exact_rules,
            prefix_rules,
            prefix_lens,
            glob_rules,
            rules,
            catalog,
            firewall: Arc::new(crate::firewall::Firewall::compile(&s.firewall_rules)?),
        })
    }
}

fn compile_policy(
    p: &FallbackPolicy,
    target: &impl Fn(&str, &str) -> Option<TargetRt>,
) -> PolicyRt {
    let chain: Vec<TargetRt> = p
        .chain
        .iter()
        .filter_map(|t| target(&t.provider, &t.model))
        .collect();
    PolicyRt {
        name: p.name.clone(),
        max_attempts: if p.max_attempts == 0 {
            1 + chain.len()
        } else {
            p.max_attempts as usize
        },
        chain,
        retry_on: RetryOn::parse(&p.retry_on),
        backoff_base: millis_or(
            p.backoff_base_ms,
            crate::snapshot::policy::DEFAULT_BACKOFF_BASE,
        ),
        backoff_cap: millis_or(
            p.backoff_cap_ms,
            crate::snapshot::policy::DEFAULT_BACKOFF_CAP,
        ),
        hedge_after: (p.hedge_after_ms > 0)
            .then(|| Duration::from_millis(u64::from(p.hedge_after_ms))),
        hedge_learned: p.hedge_learned,
    }
}

#[cfg(test)]
mod tests {
    use tokenrouter_proto::v1::Provider;

    use super::*;

    #[test]
    fn rules_for_merges_exact_and_glob_rules_in_priority_order() {
        let rule = |name: &str, priority: i32, pattern: &str| RoutingRule {
            name: name.into(),
            priority,
            match_model: pattern.into(),
            target_provider: "p".into(),
            ..Default::default()
        };
        let mut s = Snapshot {
            providers: vec![Provider {
                name: "p".into(),
                kind: "openai".into(),
                base_url: "https://example.com/v1".into(),
                ..Default::default()
            }],
            routing_rules: vec![
                rule("exact-late", 3, "m"),
                rule("glob-x", 0, "x*"),
                rule("exact-early", 2, "m"),
                rule("other", 1, "n"),
                rule("glob-all", 1, "*"),
            ],
            ..Default::default()
        };
        s.content_hash = content_hash(&s);
        let rt = Runtime::compile(&s, CompilePolicy::default(), &ClientCache::default()).unwrap();
        let names: Vec<&str> = rt.rules_for("m").map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["glob-all", "exact-early", "exact-late"]);
        let names: Vec<&str> = rt.rules_for("xm").map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["glob-x", "glob-all"]);
        let names: Vec<&str> = rt.rules_for("zzz").map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["glob-all"]);
    }

    /// The index only skips rules that cannot match: for every model, the matching rules it
    /// yields are exactly those a scan of every rule finds, in the same order.
    #[test]
    fn rules_for_finds_what_a_full_scan_finds() {
        let patterns = [
            "gpt-4o*",
            "gpt-*",
            "gpt-4o-mini",
            "*",
            "*-mini",
            "claude-*-4*",
            "gpt-4o",
            "é*",
            "éa*",
            "",
            "gpt-4o-mini*",
            "g*",
            "*mini*",
        ];
        let mut s = Snapshot {
            providers: vec![Provider {
                name: "p".into(),
                kind: "openai".into(),
                base_url: "https://example.com/v1".into(),
                ..Default::default()
            }],
            routing_rules: patterns
                .iter()
                .enumerate()
                .filter(|(_, p)| !p.is_empty())
                .map(|(i, p)| RoutingRule {
                    name: format!("r{i}"),
                    priority: (i % 4) as i32,
                    match_model: p.to_string(),
                    target_provider: "p".into(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        s.content_hash = content_hash(&s);
        let rt = Runtime::compile(&s, CompilePolicy::default(), &ClientCache::default()).unwrap();
        for model in [
            "gpt-4o-mini",
            "gpt-4o",
            "gpt-4",
            "g",
            "",
            "claude-sonnet-4-5",
            "é",
            "éa",
            "ée",
            "x-mini",
        ] {
            let indexed: Vec<&str> = rt
                .rules_for(model)
                .filter(|r| tokenrouter_proto::limits::glob_match(&r.pattern, model))
                .map(|r| r.name.as_str())
                .collect();
            let scanned: Vec<&str> = rt
                .rules
                .iter()
                .filter(|r| tokenrouter_proto::limits::glob_match(&r.pattern, model))
                .map(|r| r.name.as_str())
                .collect();
            assert_eq!(indexed, scanned, "model {model:?}");
        }
    }
}
