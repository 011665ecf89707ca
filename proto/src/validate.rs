//! Whole-configuration validation, run by the control plane before every commit and by every data
//! plane before it applies a snapshot (config content is treated as untrusted input on both sides).

use std::collections::HashSet;

use prost::Message;
use sha2::{Digest, Sha256};

use crate::v1::Snapshot;

mod firewall;
mod key_limits;

pub use firewall::{
    FIREWALL_ACTIONS, FIREWALL_DIRECTIONS, FIREWALL_REGEX_SIZE_LIMIT, MAX_FIREWALL_REGEX,
};
pub use key_limits::MAX_MODEL_LIMITS;

/// Provider kinds whose wire protocol the data plane speaks.
pub const SUPPORTED_KINDS: &[&str] = &[
    "openai",
    "mistral",
    "deepseek",
    "openai-compatible",
    "anthropic",
    "gemini",
];
/// Routing modes a rule may send requests to.
/// The firewall's built-in detectors.
pub const FIREWALL_DETECTORS: &[&str] = &[
    "email",
    "phone",
    "credit_card",
    "us_ssn",
    "iban",
    "ipv4",
    "api_key",
    "prompt_injection",
];
pub const AUTO_MODES: &[&str] = &["auto:fast", "auto:balance", "auto:cost", "auto:quality"];
/// Failure classes a fallback policy may move on after.
pub const RETRY_CLASSES: &[&str] = &["connect", "timeout", "429", "5xx", "529", "malformed"];
/// Capabilities a catalog entry may declare.
pub const CAPABILITIES: &[&str] = &[
    "tools",
    "json_mode",
    "json_schema",
    "vision",
    "logit_bias",
    "seed",
    "reasoning",
    "logprobs",
    "n",
    "embeddings",
    "dimensions",
];
/// Most targets a fallback chain may hold, and most attempts a policy may allow.
pub const MAX_CHAIN: usize = 10;

/// A configuration that cannot be served, naming the offending field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ValidationError {
    /// Path of the bad field, e.g. `providers[openai].base_url`.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

fn bad(field: impl Into<String>, message: impl Into<String>) -> ValidationError {
    ValidationError {
        field: field.into(),
        message: message.into(),
    }
}

/// Checks a resource name: 1–64 of `[a-z0-9_-]`, starting with a letter or digit.
pub fn check_name(field: &str, name: &str) -> Result<(), ValidationError> {
    if name.is_empty() {
        return Err(bad(field, "must not be empty"));
    }
    if name.len() > 64 {
        return Err(bad(field, "must be at most 64 characters"));
    }
    let valid = name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if !valid || !name.as_bytes()[0].is_ascii_alphanumeric() {
        return Err(bad(
            field,
            format!(
                "{name:?} must be lowercase letters, digits, '-' or '_', starting with a letter or digit"
            ),
        ));
    }
    Ok(())
}

/// Parses an absolute http(s) URL that names a host and carries no credentials (`credentials`
/// says what to do instead).
fn http_url(field: &str, raw: &str, credentials: &str) -> Result<url::Url, ValidationError> {
    let parsed = url::Url::parse(raw).map_err(|e| bad(field, format!("not a valid URL: {e}")))?;
    if parsed.scheme() != "http" && parsed.scheme() != "https" {
        return Err(bad(field, "scheme must be http or https"));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(bad(field, "must name a host"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(bad(
            field,
            format!("must not carry credentials; {credentials}"),
        ));
    }
    Ok(parsed)
}

/// Checks a provider base URL: absolute http(s), a host, no credentials, query or fragment.
pub fn check_base_url(field: &str, raw: &str) -> Result<(), ValidationError> {
    let parsed = http_url(field, raw, "use a credential resource")?;
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(bad(
            field,
            "must not have a query or fragment (keys never go in URLs)",
        ));
    }
    Ok(())
}

/// Checks a provider's egress override: empty, `direct`, or an http(s) proxy URL without
/// credentials (admins can read it back), path, query or fragment.
pub fn check_proxy(field: &str, raw: &str) -> Result<(), ValidationError> {
    if raw.is_empty() || raw == "direct" {
        return Ok(());
    }
    let parsed = http_url(
        field,
        raw,
        "put an authenticated proxy in the data plane's HTTPS_PROXY (admins can read this back)",
    )?;
    if parsed.path() != "/" || parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(bad(
            field,
            "must be empty, \"direct\" or scheme://host[:port] only",
        ));
    }
    Ok(())
}

fn check_kind(field: &str, kind: &str) -> Result<(), ValidationError> {
    if SUPPORTED_KINDS.contains(&kind) {
        return Ok(());
    }
    Err(bad(
        field,
        format!(
            "unknown provider kind {kind:?} (supported: {})",
            SUPPORTED_KINDS.join(", ")
        ),
    ))
}

fn check_model_name(field: &str, model: &str) -> Result<(), ValidationError> {
    if model.is_empty() || model.len() > 256 {
        return Err(bad(field, "model names must be 1 to 256 characters"));
    }
    if model.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(bad(
            field,
            "model names must not contain whitespace or control characters",
        ));
    }
    Ok(())
}

fn unique<'a>(
    seen: &mut HashSet<&'a str>,
    field: String,
    name: &'a str,
) -> Result<(), ValidationError> {
    if seen.insert(name) {
        Ok(())
    } else {
        Err(bad(field, format!("duplicate name {name:?}")))
    }
}

/// Validates every resource and every reference between them.
pub fn validate_snapshot(s: &Snapshot) -> Result<(), ValidationError> {
    let mut providers = HashSet::new();
    for p in &s.providers {
        check_name("providers[].name", &p.name)?;
        let at = |f: &str| format!("providers[{}].{f}", p.name);
        unique(&mut providers, at("name"), &p.name)?;
        check_kind(&at("kind"), &p.kind)?;
        check_base_url(&at("base_url"), &p.base_url)?;
        check_proxy(&at("proxy"), &p.proxy)?;
        let mut models = HashSet::new();
        for m in &p.models {
            check_model_name(&at("models"), m)?;
            unique(&mut models, at("models"), m)?;
        }
    }
    let provider_exists = |field: String, name: &str| {
        if providers.contains(name) {
            Ok(())
        } else if name.is_empty() {
            Err(bad(field, "must name a provider"))
        } else {
            Err(bad(field, format!("provider {name:?} does not exist")))
        }
    };

    let mut credentials = HashSet::new();
    for c in &s.credentials {
        check_name("credentials[].name", &c.name)?;
        let at = |f: &str| format!("credentials[{}].{f}", c.name);
        unique(&mut credentials, at("name"), &c.name)?;
        provider_exists(at("provider"), &c.provider)?;
        if c.secret.len() > 8192 || c.secret.chars().any(|ch| ch.is_control()) {
            return Err(bad(
                at("secret"),
                "must be at most 8192 characters with no control characters",
            ));
        }
    }

    let mut keys = HashSet::new();
    let mut hashes = HashSet::new();
    for k in &s.api_keys {
        check_name("api_keys[].name", &k.name)?;
        let at = |f: &str| format!("api_keys[{}].{f}", k.name);
        unique(&mut keys, at("name"), &k.name)?;
        if k.sha256.len() != 64
            || !k
                .sha256
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(bad(at("sha256"), "must be 64 lowercase hex characters"));
        }
        if !hashes.insert(k.sha256.as_str()) {
            return Err(bad(at("sha256"), "another API key has the same value"));
        }
        for m in &k.allowed_models {
            check_model_name(&at("allowed_models"), m)?;
        }
        key_limits::check(&format!("api_keys[{}]", k.name), k)?;
    }

    let mut entries = HashSet::new();
    let mut pairs = HashSet::new();
    for m in &s.models {
        check_name("models[].name", &m.name)?;
        let at = |f: &str| format!("models[{}].{f}", m.name);
        unique(&mut entries, at("name"), &m.name)?;
        if !SUPPORTED_KINDS.contains(&m.kind.as_str()) {
            return Err(bad(
                at("kind"),
                format!("must be one of {}", SUPPORTED_KINDS.join(", ")),
            ));
        }
        check_model_name(&at("model"), &m.model)?;
        if !pairs.insert((m.kind.as_str(), m.model.as_str())) {
            return Err(bad(
                at("model"),
                "another entry has the same kind and model",
            ));
        }
        for (field, price) in [
            ("input_per_mtok", m.input_per_mtok),
            ("output_per_mtok", m.output_per_mtok),
            ("cached_input_per_mtok", m.cached_input_per_mtok),
        ] {
            if !price.is_finite() || !(0.0..=100_000.0).contains(&price) {
                return Err(bad(
                    at(field),
                    "must be a price between 0 and 100000 USD per million tokens",
                ));
            }
        }
        for c in &m.capabilities {
            if !CAPABILITIES.contains(&c.as_str()) {
                return Err(bad(
                    at("capabilities"),
                    format!("{c:?} is not one of {}", CAPABILITIES.join(", ")),
                ));
            }
        }
        if m.quality > 100 {
            return Err(bad(at("quality"), "must be between 0 and 100"));
        }
    }

    let mut policies = HashSet::new();
    for p in &s.fallback_policies {
        check_name("fallback_policies[].name", &p.name)?;
        let at = |f: &str| format!("fallback_policies[{}].{f}", p.name);
        unique(&mut policies, at("name"), &p.name)?;
        if p.chain.is_empty() {
            return Err(bad(at("chain"), "must name at least one target"));
        }
        if p.chain.len() > MAX_CHAIN || p.max_attempts as usize > MAX_CHAIN + 1 {
            return Err(bad(
                at("chain"),
                format!("at most {MAX_CHAIN} targets and {} attempts", MAX_CHAIN + 1),
            ));
        }
        for class in &p.retry_on {
            if !RETRY_CLASSES.contains(&class.as_str()) {
                return Err(bad(
                    at("retry_on"),
                    format!("{class:?} is not one of {}", RETRY_CLASSES.join(", ")),
                ));
            }
        }
        if p.backoff_base_ms > 60_000 || p.backoff_cap_ms > 600_000 || p.hedge_after_ms > 600_000 {
            return Err(bad(
                at("backoff_base_ms"),
                "backoff base at most 60000 ms, cap and hedge delay at most 600000 ms",
            ));
        }
        for t in &p.chain {
            provider_exists(at("chain[].provider"), &t.provider)?;
            if !t.model.is_empty() {
                check_model_name(&at("chain[].model"), &t.model)?;
            }
        }
    }

    let mut rules = HashSet::new();
    for r in &s.routing_rules {
        check_name("routing_rules[].name", &r.name)?;
        let at = |f: &str| format!("routing_rules[{}].{f}", r.name);
        unique(&mut rules, at("name"), &r.name)?;
        check_model_name(&at("match_model"), &r.match_model)?;
        let chosen = [
            !r.target_provider.is_empty() || r.targets.is_empty() && r.mode.is_empty() && !r.deny,
            !r.targets.is_empty(),
            !r.mode.is_empty(),
            r.deny,
        ];
        if chosen.iter().filter(|c| **c).count() != 1 {
            return Err(bad(
                at("target_provider"),
                "a rule needs exactly one of target_provider, targets, mode or deny",
            ));
        }
        if !r.target_provider.is_empty() || chosen[0] {
            provider_exists(at("target_provider"), &r.target_provider)?;
        }
        if !r.target_model.is_empty() {
            check_model_name(&at("target_model"), &r.target_model)?;
        }
        for t in &r.targets {
            provider_exists(at("targets[].provider"), &t.provider)?;
            if t.weight == 0 || t.weight > 1_000_000 {
                return Err(bad(at("targets[].weight"), "must be between 1 and 1000000"));
            }
            if !t.model.is_empty() {
                check_model_name(&at("targets[].model"), &t.model)?;
            }
        }
        if !r.mode.is_empty() && !AUTO_MODES.contains(&r.mode.as_str()) {
            return Err(bad(
                at("mode"),
                format!("must be one of {}", AUTO_MODES.join(", ")),
            ));
        }
        for (field, value) in [
            ("match_has_tools", &r.match_has_tools),
            ("match_wants_json", &r.match_wants_json),
            ("match_stream", &r.match_stream),
        ] {
            if !["", "yes", "no"].contains(&value.as_str()) {
                return Err(bad(at(field), "must be empty, \"yes\" or \"no\""));
            }
        }
        for k in &r.match_api_keys {
            if !keys.contains(k.as_str()) {
                return Err(bad(
                    at("match_api_keys"),
                    format!("API key {k:?} does not exist"),
                ));
            }
        }
        for g in r.match_headers.iter().chain(&r.match_metadata) {
            if g.key.is_empty() || g.key.len() > 128 || g.glob.len() > 1024 {
                return Err(bad(
                    at("match_headers"),
                    "keys must be 1 to 128 characters and globs at most 1024",
                ));
            }
        }
        if !r.fallback_policy.is_empty() && !policies.contains(r.fallback_policy.as_str()) {
            return Err(bad(
                at("fallback_policy"),
                format!("fallback policy {:?} does not exist", r.fallback_policy),
            ));
        }
    }

    let mut firewall = HashSet::new();
    for r in &s.firewall_rules {
        check_name("firewall_rules[].name", &r.name)?;
        let at = |f: &str| format!("firewall_rules[{}].{f}", r.name);
        unique(&mut firewall, at("name"), &r.name)?;
        firewall::check(r, &at)?;
        for k in &r.match_api_keys {
            if !keys.contains(k.as_str()) {
                return Err(bad(
                    at("match_api_keys"),
                    format!("API key {k:?} does not exist"),
                ));
            }
        }
    }
    Ok(())
}

/// Lowercase hex SHA-256 over the configuration content (version, epoch and hash excluded).
pub fn content_hash(s: &Snapshot) -> String {
    let content = Snapshot {
        version: 0,
        epoch: String::new(),
        content_hash: String::new(),
        ..s.clone()
    };
    hex::encode(Sha256::digest(content.encode_to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v1::{Credential, FallbackPolicy, FallbackTarget, Provider, RoutingRule};

    fn provider(name: &str) -> Provider {
        Provider {
            name: name.into(),
            kind: "openai".into(),
            base_url: "https://api.openai.com/v1".into(),
            models: vec!["gpt-4o".into()],
            ..Default::default()
        }
    }

    #[test]
    fn accepts_a_consistent_config() {
        let s = Snapshot {
            providers: vec![provider("openai"), provider("backup")],
            credentials: vec![Credential {
                name: "k".into(),
                provider: "openai".into(),
                secret: "sk".into(),
            }],
            fallback_policies: vec![FallbackPolicy {
                name: "p".into(),
                chain: vec![FallbackTarget {
                    provider: "backup".into(),
                    model: String::new(),
                }],
                max_attempts: 0,
                ..Default::default()
            }],
            routing_rules: vec![RoutingRule {
                name: "r".into(),
                match_model: "gpt-*".into(),
                target_provider: "openai".into(),
                fallback_policy: "p".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        assert_eq!(validate_snapshot(&s), Ok(()));
    }

    #[test]
    fn names_the_bad_field() {
        let mut p = provider("openai");
        p.base_url = "ftp://x".into();
        let err = validate_snapshot(&Snapshot {
            providers: vec![p],
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(err.field, "providers[openai].base_url");

        let s = Snapshot {
            providers: vec![provider("a"), provider("a")],
            ..Default::default()
        };
        assert!(
            validate_snapshot(&s)
                .unwrap_err()
                .message
                .contains("duplicate")
        );

        let s = Snapshot {
            routing_rules: vec![RoutingRule {
                name: "r".into(),
                match_model: "*".into(),
                target_provider: "gone".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        assert_eq!(
            validate_snapshot(&s).unwrap_err().field,
            "routing_rules[r].target_provider"
        );

        let s = Snapshot {
            providers: vec![provider("a")],
            fallback_policies: vec![FallbackPolicy {
                name: "p".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        assert_eq!(
            validate_snapshot(&s).unwrap_err().field,
            "fallback_policies[p].chain"
        );
    }

    #[test]
    fn refuses_keys_in_urls_and_unknown_kinds() {
        let mut p = provider("g");
        p.base_url = "https://example.com/v1?key=abc".into();
        assert!(check_base_url("f", &p.base_url).is_err());
        p.base_url = "https://user:pw@example.com".into();
        assert!(check_base_url("f", &p.base_url).is_err());
        for ok in [
            "",
            "direct",
            "http://proxy.internal:3128",
            "https://10.0.0.1:8443/",
        ] {
            assert!(check_proxy("f", ok).is_ok(), "{ok}");
        }
        for bad in [
            "socks5://p:1080",
            "http://u:pw@p:3128",
            "http://p:3128/path",
            "nearby",
        ] {
            assert!(check_proxy("f", bad).is_err(), "{bad}");
        }
        let mut p = provider("g");
        p.kind = "bedrock".into();
        let err = validate_snapshot(&Snapshot {
            providers: vec![p],
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.message.contains("unknown provider kind"));
    }

    #[test]
    fn hash_ignores_version_and_epoch() {
        let a = Snapshot {
            providers: vec![provider("a")],
            version: 1,
            epoch: "x".into(),
            ..Default::default()
        };
        let b = Snapshot {
            version: 9,
            epoch: "y".into(),
            ..a.clone()
        };
        assert_eq!(content_hash(&a), content_hash(&b));
        let c = Snapshot {
            providers: vec![provider("b")],
            ..a.clone()
        };
        assert_ne!(content_hash(&a), content_hash(&c));
    }
}
