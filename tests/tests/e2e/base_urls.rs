//! Provider base URLs in either convention: the SDK's own (`http://HOST`, no version path) and the
//! full one (`http://HOST/v1`, `/v1beta` for Gemini) both reach the upstream's real paths through a
//! data plane, and the control plane stores and returns the normalised form.

use serde_json::json;
use tokenrouter_proto::v1::{Credential, CredentialWrite, ListRequest, Provider, ProviderWrite};
use tokenrouter_simulators::{Protocol, SimConfig, Simulator};
use tokenrouter_tests::{Backend, DataPlaneHandle, chat, data_plane_config};

use crate::setup::{KEY, stack, user_message};

/// (protocol, provider kind, a model it serves, the path the upstream must see).
const KINDS: &[(Protocol, &str, &str, &str)] = &[
    (
        Protocol::OpenAi,
        "openai",
        "gpt-4o-mini",
        "/v1/chat/completions",
    ),
    (
        Protocol::Anthropic,
        "anthropic",
        "claude-sonnet-4-5",
        "/v1/messages",
    ),
    (
        Protocol::Gemini,
        "gemini",
        "gemini-2.5-flash",
        "/v1beta/models/gemini-2.5-flash:generateContent",
    ),
    (
        Protocol::Mistral,
        "mistral",
        "mistral-small-latest",
        "/v1/chat/completions",
    ),
    (
        Protocol::DeepSeek,
        "deepseek",
        "deepseek-chat",
        "/v1/chat/completions",
    ),
];

/// The URL forms an operator may type for a simulator: the SDK's bare host (with and without a
/// trailing `/`) and the full form with the version path (with a trailing `/`).
fn forms(sim: &Simulator) -> [(&'static str, String); 3] {
    [
        ("bare", format!("http://{}", sim.addr())),
        ("bare-slash", format!("http://{}/", sim.addr())),
        ("full-slash", format!("{}/", sim.base_url())),
    ]
}

#[tokio::test]
async fn every_provider_answers_with_the_bare_and_the_full_base_url() {
    let stack = stack(Backend::Sqlite).await.unwrap();
    let mut admin = stack.cp.admin().await;
    let mut sims = Vec::new();
    let mut version = 0;
    for (protocol, kind, model, _) in KINDS {
        let secret = format!("k-{kind}");
        let sim = Simulator::start(SimConfig::new(*protocol, kind, &secret))
            .await
            .expect("start simulator");
        for (form, base_url) in forms(&sim) {
            let name = format!("{kind}-{form}");
            let provider = Provider {
                name: name.clone(),
                kind: kind.to_string(),
                base_url,
                models: vec![model.to_string()],
                ..Default::default()
            };
            admin
                .create_provider(ProviderWrite {
                    provider: Some(provider),
                    expected_version: 0,
                })
                .await
                .unwrap_or_else(|e| panic!("create {name}: {e}"));
            let credential = Credential {
                name: format!("{name}-key"),
                provider: name,
                secret: secret.clone(),
            };
            version = admin
                .create_credential(CredentialWrite {
                    credential: Some(credential),
                    expected_version: 0,
                })
                .await
                .expect("create credential")
                .into_inner()
                .version;
        }
        sims.push(sim);
    }

    // The control plane returns every form normalised to the simulator's versioned base URL.
    let listed = admin
        .list_providers(ListRequest {})
        .await
        .unwrap()
        .into_inner()
        .providers;
    for ((_, kind, _, _), sim) in KINDS.iter().zip(&sims) {
        for (form, _) in forms(sim) {
            let name = format!("{kind}-{form}");
            let stored = listed.iter().find(|p| p.name == name).expect("listed");
            assert_eq!(stored.base_url, sim.base_url(), "{name}");
        }
    }

    let dp = DataPlaneHandle::start(data_plane_config("base-urls"), &stack.cp.url(), None).await;
    dp.wait_for_version(version).await;
    let http = reqwest::Client::new();
    for ((_, kind, model, path), sim) in KINDS.iter().zip(&sims) {
        for (form, _) in forms(sim) {
            let name = format!("{kind}-{form}");
            let before = sim.requests().len();
            let body =
                json!({"model": format!("{name}:{model}"), "messages": user_message("hi there")});
            let (status, answer) = chat(&http, &dp, KEY, body).await;
            assert_eq!(status, 200, "{name}: {answer}");
            assert_eq!(answer["provider"], name.as_str(), "{answer}");
            assert_eq!(answer["object"], "chat.completion", "{answer}");
            let seen = sim.requests();
            assert_eq!(seen.len(), before + 1, "{name} reached its simulator once");
            assert_eq!(seen[before].path, *path, "{name}");
        }
    }
}

#[tokio::test]
async fn updates_store_the_normalised_base_url_too() {
    let stack = stack(Backend::Sqlite).await.unwrap();
    let mut admin = stack.cp.admin().await;
    let put = |kind: &str, base_url: &str| ProviderWrite {
        provider: Some(Provider {
            name: "p".into(),
            kind: kind.into(),
            base_url: base_url.into(),
            ..Default::default()
        }),
        expected_version: 0,
    };
    let stored = |providers: Vec<Provider>| providers[0].base_url.clone();
    admin
        .create_provider(put("anthropic", "https://api.anthropic.com/v1"))
        .await
        .unwrap();
    for (kind, typed, expected) in [
        (
            "anthropic",
            "https://api.anthropic.com/",
            "https://api.anthropic.com/v1",
        ),
        (
            "gemini",
            "https://generativelanguage.googleapis.com",
            "https://generativelanguage.googleapis.com/v1beta",
        ),
        (
            "gemini",
            "https://proxy.example/v1/",
            "https://proxy.example/v1",
        ),
        (
            "mistral",
            "https://api.mistral.ai",
            "https://api.mistral.ai/v1",
        ),
        (
            "deepseek",
            "https://api.deepseek.com/v1/",
            "https://api.deepseek.com/v1",
        ),
        (
            "openai",
            "https://api.openai.com",
            "https://api.openai.com/v1",
        ),
        // An unknown server's layout is not guessed: only the trailing `/` goes.
        (
            "openai-compatible",
            "http://127.0.0.1:11434/",
            "http://127.0.0.1:11434",
        ),
    ] {
        admin.update_provider(put(kind, typed)).await.unwrap();
        let listed = admin
            .list_providers(ListRequest {})
            .await
            .unwrap()
            .into_inner();
        assert_eq!(stored(listed.providers), expected, "{kind} {typed}");
        // The snapshot data planes receive carries the same form.
        assert_eq!(stack.cp.cp.snapshot().providers[0].base_url, expected);
    }
}
