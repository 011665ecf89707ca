//! First-start configuration for `serve`: providers from `<NAME>_API_KEY` variables, the bootstrap
//! API key, and the demo simulators.

use std::sync::Arc;

use anyhow::Context;
use tokenrouter_control_plane::{ControlPlane, ControlPlaneError, api_key_record};
use tokenrouter_proto::normalize_base_url;
use tokenrouter_proto::v1::{Credential, Provider};
use tokenrouter_simulators::{Protocol, SimConfig, Simulator};

/// The key `serve --demo` accepts when `TOKENROUTER_API_KEY` is not set.
pub const DEMO_API_KEY: &str = "sk-tokenrouter-demo";

/// A provider TokenRouter can create from environment variables: (name and kind, variable prefix,
/// official base URL). Each serves every catalog model of its kind until an operator lists models.
const OFFICIAL: &[(&str, &str, &str)] = &[
    ("openai", "OPENAI", "https://api.openai.com/v1"),
    ("anthropic", "ANTHROPIC", "https://api.anthropic.com/v1"),
    (
        "gemini",
        "GEMINI",
        "https://generativelanguage.googleapis.com/v1beta",
    ),
    ("mistral", "MISTRAL", "https://api.mistral.ai/v1"),
    ("deepseek", "DEEPSEEK", "https://api.deepseek.com/v1"),
];

/// Creates or updates a resource so that it equals `item`.
async fn upsert<R: tokenrouter_control_plane::resources::Resource + PartialEq>(
    cp: &ControlPlane,
    item: R,
    current: Option<&R>,
) -> anyhow::Result<()> {
    match current {
        Some(existing) if *existing == item => Ok(()),
        Some(_) => cp.update(item, 0).await.map(drop).map_err(Into::into),
        None => match cp.create(item.clone(), 0).await {
            Err(ControlPlaneError::AlreadyExists { .. }) => {
                cp.update(item, 0).await.map(drop).map_err(Into::into)
            }
            other => other.map(drop).map_err(Into::into),
        },
    }
}

/// Registers a provider with its credential (when `secret` is given), keeping both up to date.
async fn register(
    cp: &ControlPlane,
    provider: Provider,
    secret: Option<String>,
) -> anyhow::Result<()> {
    let snapshot = cp.snapshot();
    let existing = snapshot.providers.iter().find(|p| p.name == provider.name);
    // A provider an operator already changed over gRPC keeps its models and timeouts.
    let wanted = match existing {
        Some(p) => Provider {
            base_url: provider.base_url.clone(),
            ..p.clone()
        },
        None => provider.clone(),
    };
    upsert(cp, wanted, existing)
        .await
        .with_context(|| format!("registering provider {}", provider.name))?;
    if let Some(secret) = secret {
        let name = format!("{}-env", provider.name);
        let credential = Credential {
            name: name.clone(),
            provider: provider.name.clone(),
            secret,
        };
        let snapshot = cp.snapshot();
        let current = snapshot.credentials.iter().find(|c| c.name == name);
        upsert(cp, credential, current)
            .await
            .with_context(|| format!("registering the credential of {}", provider.name))?;
    }
    Ok(())
}

/// Creates a provider for every `<NAME>_API_KEY` that is set (base URL from `<NAME>_BASE_URL`).
pub async fn providers_from_env(cp: &ControlPlane) -> anyhow::Result<()> {
    providers_from(cp, |name| std::env::var(name).ok()).await
}

/// [`providers_from_env`] over any variable lookup, so tests need not touch the process environment.
/// `<NAME>_BASE_URL` may be in the provider SDK's own convention (`https://api.anthropic.com`,
/// without `/v1`) or include the version path; it is normalised before it is compared with the
/// stored provider, so a restart with the same variables writes nothing.
async fn providers_from(
    cp: &ControlPlane,
    var: impl Fn(&str) -> Option<String>,
) -> anyhow::Result<()> {
    for (name, env, official_url) in OFFICIAL {
        let secret = var(&format!("{env}_API_KEY")).unwrap_or_default();
        if secret.trim().is_empty() {
            continue;
        }
        let url_var = format!("{env}_BASE_URL");
        let raw_url = var(&url_var).unwrap_or_else(|| official_url.to_string());
        let base_url = normalize_base_url(&url_var, name, &raw_url)?;
        let provider = Provider {
            name: name.to_string(),
            kind: name.to_string(),
            base_url,
            ..Default::default()
        };
        register(cp, provider, Some(secret.trim().to_string())).await?;
        tracing::info!(provider = name, "provider configured from {env}_API_KEY");
    }
    Ok(())
}

/// Stores the bootstrap API key's hash. Returns the key to print when it was generated here.
pub async fn api_key(
    cp: &ControlPlane,
    from_env: Option<String>,
    demo: bool,
) -> anyhow::Result<Option<String>> {
    let snapshot = cp.snapshot();
    let existing = snapshot.api_keys.iter().find(|k| k.name == "bootstrap");
    let (key, generated) = match (from_env, demo) {
        (Some(k), _) => (k, false),
        (None, true) => (DEMO_API_KEY.to_string(), true),
        (None, false) if existing.is_some() => return Ok(None),
        (None, false) => (format!("sk-tr-{}", uuid::Uuid::new_v4().simple()), true),
    };
    upsert(cp, api_key_record("bootstrap", &key), existing)
        .await
        .context("storing the bootstrap API key")?;
    Ok(generated.then_some(key))
}

/// Starts local simulators for all five wire protocols and registers them as providers
/// `demo-openai`, `demo-anthropic`, `demo-gemini`, `demo-mistral` and `demo-deepseek`. The
/// simulators live as long as the returned handles.
pub async fn demo(cp: &ControlPlane) -> anyhow::Result<Vec<Arc<Simulator>>> {
    let specs: [(Protocol, &str, &str, &[&str]); 5] = [
        (
            Protocol::OpenAi,
            "demo-openai",
            "openai",
            &["gpt-4o-mini", "gpt-4o", "text-embedding-3-small"],
        ),
        (
            Protocol::Anthropic,
            "demo-anthropic",
            "anthropic",
            &["claude-sonnet-4-5", "claude-haiku-4-5"],
        ),
        (
            Protocol::Gemini,
            "demo-gemini",
            "gemini",
            &["gemini-2.5-flash", "gemini-2.5-pro", "gemini-embedding-001"],
        ),
        (
            Protocol::Mistral,
            "demo-mistral",
            "mistral",
            &["mistral-small-latest", "mistral-embed"],
        ),
        (
            Protocol::DeepSeek,
            "demo-deepseek",
            "deepseek",
            &["deepseek-chat", "deepseek-reasoner"],
        ),
    ];
    let mut sims = Vec::new();
    for (protocol, name, kind, models) in specs {
        let secret = format!("sim-{}", uuid::Uuid::new_v4().simple());
        let sim = Simulator::start(SimConfig::new(protocol, name, &secret))
            .await
            .context("starting a demo simulator")?;
        let provider = Provider {
            name: name.into(),
            kind: kind.into(),
            base_url: sim.base_url(),
            models: models.iter().map(|m| m.to_string()).collect(),
            ..Default::default()
        };
        register(cp, provider, Some(secret)).await?;
        tracing::info!(provider = name, url = %sim.base_url(), "demo simulator running");
        sims.push(Arc::new(sim));
    }
    Ok(sims)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use tokenrouter_control_plane::MasterKey;
    use tokenrouter_control_plane::store::SqliteStore;

    use super::*;

    async fn control_plane() -> Arc<ControlPlane> {
        let path = std::env::temp_dir().join(format!(
            "tr-bootstrap-{}/config.db",
            uuid::Uuid::new_v4().simple()
        ));
        let store = SqliteStore::open(&path).await.unwrap();
        ControlPlane::open(Arc::new(store), MasterKey::from_bytes(&[7; 32]))
            .await
            .unwrap()
    }

    /// (variable prefix, the SDK's own base URL, the stored form).
    const FORMS: &[(&str, &str, &str)] = &[
        (
            "OPENAI",
            "https://api.openai.com",
            "https://api.openai.com/v1",
        ),
        (
            "ANTHROPIC",
            "https://api.anthropic.com",
            "https://api.anthropic.com/v1",
        ),
        (
            "GEMINI",
            "https://generativelanguage.googleapis.com",
            "https://generativelanguage.googleapis.com/v1beta",
        ),
        (
            "MISTRAL",
            "https://api.mistral.ai",
            "https://api.mistral.ai/v1",
        ),
        (
            "DEEPSEEK",
            "https://api.deepseek.com",
            "https://api.deepseek.com/v1",
        ),
    ];

    fn env_with(urls: impl Fn(&str, &str) -> String) -> HashMap<String, String> {
        let mut env = HashMap::new();
        for (prefix, sdk, full) in FORMS {
            env.insert(format!("{prefix}_API_KEY"), format!("k-{prefix}"));
            env.insert(format!("{prefix}_BASE_URL"), urls(sdk, full));
        }
        env
    }

    fn stored_urls(cp: &ControlPlane) -> Vec<(String, String)> {
        let snapshot = cp.snapshot();
        let mut urls: Vec<_> = snapshot
            .providers
            .iter()
            .map(|p| (p.name.clone(), p.base_url.clone()))
            .collect();
        urls.sort();
        urls
    }

    fn expected() -> Vec<(String, String)> {
        let mut urls: Vec<_> = FORMS
            .iter()
            .map(|(prefix, _, full)| (prefix.to_lowercase(), full.to_string()))
            .collect();
        urls.sort();
        urls
    }

    #[tokio::test]
    async fn base_urls_in_either_convention_are_stored_normalised() {
        for (label, env) in [
            ("sdk", env_with(|sdk, _| sdk.to_string())),
            ("sdk/", env_with(|sdk, _| format!("{sdk}/"))),
            ("full", env_with(|_, full| full.to_string())),
            ("full/", env_with(|_, full| format!("{full}/"))),
        ] {
            let cp = control_plane().await;
            providers_from(&cp, |name| env.get(name).cloned())
                .await
                .unwrap();
            assert_eq!(stored_urls(&cp), expected(), "{label}");
        }
    }

    #[tokio::test]
    async fn a_restart_with_the_same_variables_writes_nothing() {
        let cp = control_plane().await;
        let env = env_with(|sdk, _| format!("{sdk}/"));
        providers_from(&cp, |name| env.get(name).cloned())
            .await
            .unwrap();
        let version = cp.snapshot().version;
        providers_from(&cp, |name| env.get(name).cloned())
            .await
            .unwrap();
        assert_eq!(cp.snapshot().version, version);

        // Switching to the other convention for the same server is no change either.
        let env = env_with(|_, full| full.to_string());
        providers_from(&cp, |name| env.get(name).cloned())
            .await
            .unwrap();
        assert_eq!(cp.snapshot().version, version);
    }

    #[tokio::test]
    async fn official_urls_are_used_when_no_base_url_is_set() {
        let cp = control_plane().await;
        let env: HashMap<String, String> = FORMS
            .iter()
            .map(|(prefix, _, _)| (format!("{prefix}_API_KEY"), "k".to_string()))
            .collect();
        providers_from(&cp, |name| env.get(name).cloned())
            .await
            .unwrap();
        assert_eq!(stored_urls(&cp), expected());
    }

    #[tokio::test]
    async fn a_bad_base_url_names_its_variable() {
        let cp = control_plane().await;
        let env = HashMap::from([
            ("ANTHROPIC_API_KEY".to_string(), "k".to_string()),
            (
                "ANTHROPIC_BASE_URL".to_string(),
                "api.anthropic.com".to_string(),
            ),
        ]);
        let err = providers_from(&cp, |name| env.get(name).cloned())
            .await
            .unwrap_err();
        assert!(err.to_string().starts_with("ANTHROPIC_BASE_URL: "), "{err}");
        assert!(cp.snapshot().providers.is_empty());
    }
}
