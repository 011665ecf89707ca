//! Compatibility with the official OpenAI Python SDK: `tests/python/compat.py` drives a live data
//! plane (chat, streaming, tool calls, the error on a bad key, extension fields).

use std::path::Path;

use tokenrouter_proto::v1::Provider;
use tokenrouter_simulators::{Protocol, SimConfig};
use tokenrouter_tests::{Backend, DataPlaneHandle, data_plane_config};

use crate::setup::{KEY, SdkStack, add_provider_full, run_script, stack};

/// The Python with the `openai` package: `TOKENROUTER_TEST_PYTHON`, else the repo's `.venv`.
pub(crate) fn python() -> Option<std::path::PathBuf> {
    if let Some(p) = std::env::var_os("TOKENROUTER_TEST_PYTHON") {
        return Some(p.into());
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    if venv.exists() {
        return Some(venv);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI must provide the OpenAI SDK: run scripts/test"
    );
    None
}

#[tokio::test]
async fn the_official_openai_python_sdk_works_unchanged() {
    let Some(python) = python() else {
        return eprintln!("skipped: no .venv with the openai package (run scripts/test)");
    };
    let sdk = SdkStack::start("py").await;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/compat.py");
    run_script(
        &python,
        &[&script],
        sdk.script_env(),
        "all compatibility checks passed",
    )
    .await;
    sdk.assert_every_parameter_forwarded();
}

#[tokio::test]
async fn the_openai_sdk_reaches_every_translated_provider() {
    let Some(python) = python() else {
        return eprintln!("skipped: no .venv with the openai package (run scripts/test)");
    };
    let stack = stack(Backend::Sqlite).await.unwrap();
    let mut version = 0;
    let mut sims = Vec::new();
    for (protocol, name, model) in [
        (Protocol::Anthropic, "anthropic", "claude-sonnet-4-5"),
        (Protocol::Mistral, "mistral", "mistral-small-latest"),
        (Protocol::DeepSeek, "deepseek", "deepseek-reasoner"),
        (Protocol::Gemini, "gemini", "gemini-3-pro-preview"),
    ] {
        let (sim, v) = add_provider_full(
            &stack.cp,
            SimConfig::new(protocol, name, &format!("k-{name}")),
            Provider {
                models: vec![model.into()],
                ..Default::default()
            },
        )
        .await;
        sims.push(sim);
        version = v;
    }
    let dp = DataPlaneHandle::start(data_plane_config("providers"), &stack.cp.url(), None).await;
    dp.wait_for_version(version).await;
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("python/providers.py");
    let output = tokio::process::Command::new(python)
        .arg(script)
        .env("TOKENROUTER_BASE_URL", dp.url("/v1"))
        .env("TOKENROUTER_API_KEY", KEY)
        .env("TOKENROUTER_MODELS", "anthropic:claude-sonnet-4-5+thinking,mistral:mistral-small-latest,deepseek:deepseek-reasoner+thinking,gemini:gemini-3-pro-preview+thinking")
        .output()
        .await
        .expect("run python");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "providers.py failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stdout.contains("all provider checks passed"), "{stdout}");
}

#[tokio::test]
async fn the_openai_python_sdk_understands_our_limits() {
    use tokenrouter_proto::v1::{ApiKeyCreate, Limits, ModelEntry, ModelWrite};
    let Some(python) = python() else {
        return eprintln!("skipped: no .venv with the openai package (run scripts/test)");
    };
    let stack = stack(Backend::Sqlite).await.unwrap();
    let mut admin = stack.cp.admin().await;
    admin
        .create_model(ModelWrite {
            model: Some(ModelEntry {
                name: "priced".into(),
                kind: "openai".into(),
                model: "priced".into(),
                input_per_mtok: 100.0,
                output_per_mtok: 100.0,
                context_window: 100_000,
                max_output: 4096,
                quality: 50,
                quality_source: "test".into(),
                ..Default::default()
            }),
            expected_version: 0,
        })
        .await
        .unwrap();
    let keys = [
        (
            "rpm",
            Limits {
                rpm: 3,
                ..Default::default()
            },
        ),
        (
            "slot",
            Limits {
                max_concurrent: 1,
                ..Default::default()
            },
        ),
        (
            "budget",
            Limits {
                budget_usd: 0.0001,
                budget_period: "month".into(),
                ..Default::default()
            },
        ),
    ];
    for (name, limits) in &keys {
        admin
            .create_api_key(ApiKeyCreate {
                name: name.to_string(),
                key: format!("sk-test-{name}-limited-0001"),
                limits: Some(limits.clone()),
                ..Default::default()
            })
            .await
            .unwrap();
    }
    let mut config = SimConfig::new(Protocol::OpenAi, "p", "k-p");
    config.chunk_interval = std::time::Duration::from_millis(250);
    let (_sim, version) = add_provider_full(
        &stack.cp,
        config,
        Provider {
            models: vec!["priced".into()],
            ..Default::default()
        },
    )
    .await;
    let dp = DataPlaneHandle::start(data_plane_config("limits"), &stack.cp.url(), None).await;
    dp.wait_for_version(version).await;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/limits.py");
    let env = [
        ("TOKENROUTER_BASE_URL", dp.url("/v1")),
        ("TOKENROUTER_MODEL", "priced".to_string()),
        (
            "TOKENROUTER_RPM_KEY",
            "sk-test-rpm-limited-0001".to_string(),
        ),
        (
            "TOKENROUTER_SLOT_KEY",
            "sk-test-slot-limited-0001".to_string(),
        ),
        (
            "TOKENROUTER_BUDGET_KEY",
            "sk-test-budget-limited-0001".to_string(),
        ),
    ];
    run_script(&python, &[&script], env, "all limit checks passed").await;
}

#[tokio::test]
async fn the_openai_python_sdk_sees_the_firewall() {
    use tokenrouter_proto::v1::{ApiKeyCreate, FirewallRule, FirewallRuleWrite};
    let Some(python) = python() else {
        return eprintln!("skipped: no .venv with the openai package (run scripts/test)");
    };
    let stack = stack(Backend::Sqlite).await.unwrap();
    let mut admin = stack.cp.admin().await;
    for name in ["masked", "blocked"] {
        admin
            .create_api_key(ApiKeyCreate {
                name: name.into(),
                key: format!("sk-test-fw-{name}-0001"),
                ..Default::default()
            })
            .await
            .unwrap();
    }
    let rule =
        |name: &str, detector: &str, action: &str, direction: &str, key: &str| FirewallRule {
            name: name.into(),
            detectors: vec![detector.into()],
            action: action.into(),
            direction: direction.into(),
            match_api_keys: vec![key.into()],
            ..Default::default()
        };
    for r in [
        rule("no-secrets", "api_key", "block", "input", "masked"),
        rule("emails", "email", "mask", "input", "masked"),
        rule("cards-masked", "credit_card", "mask", "output", "masked"),
        rule("cards-blocked", "credit_card", "block", "output", "blocked"),
    ] {
        admin
            .create_firewall_rule(FirewallRuleWrite {
                rule: Some(r),
                expected_version: 0,
            })
            .await
            .unwrap();
    }
    let (_sim, version) = add_provider_full(
        &stack.cp,
        SimConfig::new(Protocol::OpenAi, "p", "k-p"),
        Provider {
            models: vec!["gpt-4o-mini".into()],
            ..Default::default()
        },
    )
    .await;
    let dp = DataPlaneHandle::start(data_plane_config("fw-sdk"), &stack.cp.url(), None).await;
    dp.wait_for_version(version).await;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/firewall.py");
    let env = [
        ("TOKENROUTER_BASE_URL", dp.url("/v1")),
        ("TOKENROUTER_MODEL", "gpt-4o-mini".to_string()),
        ("TOKENROUTER_MASK_KEY", "sk-test-fw-masked-0001".to_string()),
        (
            "TOKENROUTER_BLOCK_KEY",
            "sk-test-fw-blocked-0001".to_string(),
        ),
    ];
    run_script(&python, &[&script], env, "all firewall checks passed").await;
}
