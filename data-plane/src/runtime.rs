//! A snapshot compiled for serving: lookups by key hash, provider and model, built once per snapshot
//! so the hot path never parses configuration.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderName, HeaderValue};
use tokenrouter_proto::v1::Snapshot;
use tokenrouter_proto::{content_hash, validate_snapshot};

use crate::clients::ClientCache;
use crate::providers::Protocol;

/// Total time for one upstream attempt when the provider sets none: long enough for reasoning models.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);
/// Connect timeout when the provider sets none.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a snapshot cannot be served; sent back to the control plane as a NACK.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompileError {
    #[error("invalid snapshot: {0}")]
    Invalid(#[from] tokenrouter_proto::ValidationError),
    #[error("content hash mismatch: snapshot says {claimed}, content hashes to {actual}")]
    HashMismatch { claimed: String, actual: String },
    #[error("providers[{0}].kind: {1:?} is not a protocol this data plane speaks")]
    UnknownKind(String, String),
    #[error("credential {0}: the secret cannot be sent as an HTTP header")]
    BadSecret(String),
    #[error(
        "providers[{provider}].base_url: {host} is a private or loopback address, which this data plane refuses (--deny-private-upstreams)"
    )]
    PrivateUpstream { provider: String, host: String },
}

/// One provider, ready to be called.
#[derive(Debug)]
pub struct ProviderRt {
    pub name: String,
    pub kind: String,
    pub protocol: Protocol,
    /// The base URL without a trailing slash; adapters append their paths.
    pub base_url: String,
    pub models: Vec<String>,
    /// The credential header (name, value), the value marked sensitive so it never shows in debug
    /// output; the raw secret is kept only to scrub it from provider error text.
    pub auth: Option<(HeaderName, HeaderValue)>,
    pub secret: Option<Secret>,
    pub timeout: Duration,
    pub client: reqwest::Client,
}

/// A provider secret; `Debug` never shows it.
#[derive(Clone)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// One step of a fallback chain after compilation.
#[derive(Debug, Clone)]
pub struct TargetRt {
    pub provider: Arc<ProviderRt>,
    /// Empty keeps the requested model.
    pub model: String,
}

/// A routing rule after compilation.
#[derive(Debug)]
pub struct RuleRt {
    pub name: String,
    pub pattern: String,
    pub target: TargetRt,
    pub fallback: Vec<TargetRt>,
    pub max_attempts: usize,
}

/// What an API key may do; for now, whether it is enabled.
#[derive(Debug, Clone)]
pub struct KeyRt {
    pub name: String,
    pub disabled: bool,
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
    /// SHA-256 of the key → key.
    pub api_keys: HashMap<[u8; 32], KeyRt>,
    /// In priority order.
    pub rules: Vec<RuleRt>,
}

/// What the data plane accepts beyond the snapshot's own validity.
#[derive(Debug, Clone, Copy, Default)]
pub struct CompilePolicy {
    /// Refuse providers whose base URL is a loopback, private or link-local address literal.
    pub deny_private_upstreams: bool,
}

impl Runtime {
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
        let mut providers = HashMap::new();
        for p in &s.providers {
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
            let credential = s.credentials.iter().find(|c| c.provider == p.name);
            let auth = match credential {
                Some(c) => {
                    let (name, value) = protocol.auth_header(&c.secret);
                    let mut value = HeaderValue::try_from(value)
                        .map_err(|_| CompileError::BadSecret(c.name.clone()))?;
                    value.set_sensitive(true);
                    Some((HeaderName::from_static(name), value))
                }
                None => None,
            };
            let connect = millis_or(p.connect_timeout_ms, DEFAULT_CONNECT_TIMEOUT);
            let rt = ProviderRt {
                name: p.name.clone(),
                kind: p.kind.clone(),
                protocol,
                base_url: p.base_url.trim_end_matches('/').to_string(),
                models: p.models.clone(),
                auth,
                secret: credential.map(|c| Secret(c.secret.clone())),
                timeout: millis_or(p.timeout_ms, DEFAULT_TIMEOUT),
                client: clients.get(connect),
            };
            if !p.disabled {
                providers.insert(p.name.clone(), Arc::new(rt));
            }
        }
        let mut models: HashMap<String, Vec<Arc<ProviderRt>>> = HashMap::new();
        let mut names: Vec<&String> = providers.keys().collect();
        names.sort();
        for name in names {
            let p = &providers[name];
            for m in &p.models {
                models.entry(m.clone()).or_default().push(p.clone());
            }
        }
        let api_keys = s
            .api_keys
            .iter()
            .filter_map(|k| {
                let digest: [u8; 32] = hex::decode(&k.sha256).ok()?.try_into().ok()?;
                Some((
                    digest,
                    KeyRt {
                        name: k.name.clone(),
                        disabled: k.disabled,
                    },
                ))
            })
            .collect();
        let target = |provider: &str, model: &str| {
            providers.get(provider).map(|p| TargetRt {
                provider: p.clone(),
                model: model.to_string(),
            })
        };
        let mut ordered: Vec<_> = s.routing_rules.iter().collect();
        ordered.sort_by(|a, b| (a.priority, &a.name).cmp(&(b.priority, &b.name)));
        let mut rules = Vec::new();
        for r in ordered {
            // A rule whose target is disabled is skipped, so requests fall through to the next one.
            let Some(first) = target(&r.target_provider, &r.target_model) else {
                continue;
            };
            let policy = s
                .fallback_policies
                .iter()
                .find(|p| p.name == r.fallback_policy);
            let fallback: Vec<TargetRt> = policy
                .map(|p| {
                    p.chain
                        .iter()
                        .filter_map(|t| target(&t.provider, &t.model))
                        .collect()
                })
                .unwrap_or_default();
            let max_attempts = match policy.map(|p| p.max_attempts as usize) {
                Some(0) | None => 1 + fallback.len(),
                Some(n) => n,
            };
            rules.push(RuleRt {
                name: r.name.clone(),
                pattern: r.match_model.clone(),
                target: first,
                fallback,
                max_attempts,
            });
        }
        Ok(Runtime {
            version: s.version,
            epoch: s.epoch.clone(),
            content_hash: s.content_hash.clone(),
            providers,
            models,
            api_keys,
            rules,
        })
    }
}

fn millis_or(ms: u32, default: Duration) -> Duration {
    if ms == 0 {
        default
    } else {
        Duration::from_millis(u64::from(ms))
    }
}

/// The host of `url` when it is `localhost` or an IP literal that is not publicly routable.
fn private_host(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    let host = parsed.host()?;
    let private = match host {
        url::Host::Domain(d) => d.eq_ignore_ascii_case("localhost") || d.ends_with(".localhost"),
        url::Host::Ipv4(ip) => is_private(IpAddr::V4(ip)),
        url::Host::Ipv6(ip) => is_private(IpAddr::V6(ip)),
    };
    private.then(|| host.to_string())
}

fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || (a == 100 && (64..128).contains(&b)) // carrier-grade NAT
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_private(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_private_upstreams() {
        for url in [
            "http://127.0.0.1:8000/v1",
            "http://10.1.2.3/v1",
            "http://localhost/v1",
            "http://[::1]/v1",
            "http://[::ffff:192.168.0.1]/v1",
            "http://169.254.169.254/",
        ] {
            assert!(private_host(url).is_some(), "{url}");
        }
        for url in ["https://api.openai.com/v1", "http://8.8.8.8/v1"] {
            assert!(private_host(url).is_none(), "{url}");
        }
    }
}
