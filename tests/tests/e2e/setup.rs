//! A ready-made stack for tests: a control plane over a chosen store, an API key and one simulated
//! OpenAI-protocol provider.

use tokenrouter_proto::v1::{ApiKeyCreate, Credential, CredentialWrite, Provider, ProviderWrite};
use tokenrouter_simulators::{Protocol, SimConfig, Simulator};
use tokenrouter_tests::{Backend, ControlPlaneHandle, fresh_store};

pub const KEY: &str = "sk-test-client-key";

pub struct Stack {
    pub cp: ControlPlaneHandle,
    /// How to reopen the store (file path or schema).
    pub store_id: String,
    pub backend: Backend,
}

/// A control plane with the test API key. `None` when the backend is not available here.
pub async fn stack(backend: Backend) -> Option<Stack> {
    let (store, store_id) = fresh_store(backend).await?;
    let cp = ControlPlaneHandle::start(store, None, None).await;
    let mut admin = cp.admin().await;
    admin
        .create_api_key(ApiKeyCreate {
            name: "test".into(),
            key: KEY.into(),
            expected_version: 0,
            ..Default::default()
        })
        .await
        .expect("create key");
    Some(Stack {
        cp,
        store_id,
        backend,
    })
}

/// Starts an OpenAI-protocol simulator and registers it as provider `name` serving `models`.
pub async fn add_simulated_provider(
    cp: &ControlPlaneHandle,
    name: &str,
    models: &[&str],
) -> (Simulator, u64) {
    add_provider_with(
        cp,
        SimConfig::new(Protocol::OpenAi, name, &format!("sim-secret-{name}")),
        models,
    )
    .await
}

pub async fn add_provider_with(
    cp: &ControlPlaneHandle,
    config: SimConfig,
    models: &[&str],
) -> (Simulator, u64) {
    add_provider_full(
        cp,
        config,
        Provider {
            models: models.iter().map(|m| m.to_string()).collect(),
            ..Default::default()
        },
    )
    .await
}

/// Starts a simulator and registers it with the provider fields given in `template` (name, base
/// URL and kind are filled in from the simulator when left empty).
pub async fn add_provider_full(
    cp: &ControlPlaneHandle,
    config: SimConfig,
    template: Provider,
) -> (Simulator, u64) {
    let name = config.name.clone();
    let secret = config.api_key.clone();
    let kind = match config.protocol {
        Protocol::Anthropic => "anthropic",
        Protocol::Gemini => "gemini",
        Protocol::Mistral => "mistral",
        Protocol::DeepSeek => "deepseek",
        _ => "openai",
    };
    let sim = Simulator::start(config).await.expect("start simulator");
    let mut admin = cp.admin().await;
    let provider = Provider {
        name: name.clone(),
        kind: if template.kind.is_empty() {
            kind.into()
        } else {
            template.kind.clone()
        },
        base_url: sim.base_url(),
        ..template
    };
    admin
        .create_provider(ProviderWrite {
            provider: Some(provider),
            expected_version: 0,
        })
        .await
        .expect("create provider");
    let credential = Credential {
        name: format!("{name}-key"),
        provider: name,
        secret,
    };
    let version = admin
        .create_credential(CredentialWrite {
            credential: Some(credential),
            expected_version: 0,
        })
        .await
        .expect("create credential")
        .into_inner()
        .version;
    (sim, version)
}

pub fn user_message(text: &str) -> serde_json::Value {
    serde_json::json!([{ "role": "user", "content": text }])
}
