//! Compatibility with the official OpenAI Python SDK: `tests/python/compat.py` drives a live data
//! plane (chat, streaming, tool calls, the error on a bad key, extension fields).

use tokenrouter_tests::{Backend, DataPlaneHandle, data_plane_config};

use std::time::Duration;

use tokenrouter_proto::v1::{ApiKeyCreate, Provider, ProviderWrite};
use tokenrouter_simulators::{Fault, Protocol, SimConfig};

use crate::setup::{KEY, add_provider_full, add_provider_with, add_simulated_provider, stack};

/// The Python with the `openai` package: `TOKENROUTER_TEST_PYTHON`, else the repo's `.venv`.
fn python() -> Option<std::path::PathBuf> {
    if let Some(p) = std::env::var_os("TOKENROUTER_TEST_PYTHON") {
        return Some(p.into());
    }
    let venv = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
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
    let stack = stack(Backend::Sqlite).await.unwrap();
    let (alpha, _) = add_simulated_provider(&stack.cp, "alpha", &["gpt-4o-mini"]).await;
    let mut loose = SimConfig::new(Protocol::OpenAi, "loose", "k-loose");
    loose.strict_fields = false;
    let (loose, _) = add_provider_with(&stack.cp, loose, &["loose-m"]).await;
    let (ratelimited, _) = add_simulated_provider(&stack.cp, "ratelimited", &["m"]).await;
    ratelimited.set_fault(Some(Fault::Status {
        status: 429,
        retry_after_secs: Some(3),
    }));
    let (garbage, _) = add_simulated_provider(&stack.cp, "garbage", &["m"]).await;
    garbage.set_fault(Some(Fault::Garbage));
    let (midstream, _) = add_simulated_provider(&stack.cp, "midstream", &["m"]).await;
    midstream.set_fault(Some(Fault::ErrorAfterChunks(2)));
    let sleepy_provider = Provider {
        models: vec!["m".into()],
        timeout_ms: 500,
        ..Default::default()
    };
    let (sleepy, _) = add_provider_full(
        &stack.cp,
        SimConfig::new(Protocol::OpenAi, "sleepy", "k-sleepy"),
        sleepy_provider,
    )
    .await;
    sleepy.set_fault(Some(Fault::DelayFirstByte(Duration::from_secs(5))));
    let mut admin = stack.cp.admin().await;
    let down = Provider {
        name: "down".into(),
        kind: "openai".into(),
        base_url: "http://127.0.0.1:1/v1".into(),
        models: vec!["m".into()],
        ..Default::default()
    };
    admin
        .create_provider(ProviderWrite {
            provider: Some(down),
            expected_version: 0,
        })
        .await
        .unwrap();
    let limited = ApiKeyCreate {
        name: "limited".into(),
        key: "sk-limited-python".into(),
        allowed_models: vec!["gpt-4o-mini".into()],
        ..Default::default()
    };
    let version = admin
        .create_api_key(limited)
        .await
        .unwrap()
        .into_inner()
        .version;

    let mut config = data_plane_config("py");
    config.max_body_bytes = 256 * 1024;
    let dp = DataPlaneHandle::start(config, &stack.cp.url(), None).await;
    dp.wait_for_version(version).await;
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("python/compat.py");
    let output = tokio::process::Command::new(python)
        .arg(script)
        .env("TOKENROUTER_BASE_URL", dp.url("/v1"))
        .env("TOKENROUTER_API_KEY", KEY)
        .env("TOKENROUTER_LIMITED_KEY", "sk-limited-python")
        .env("TOKENROUTER_MODEL", "gpt-4o-mini")
        .output()
        .await
        .expect("run python");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "compat.py failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        stdout.contains("all compatibility checks passed"),
        "{stdout}"
    );

    // What the providers received: every parameter forwarded, unknown fields passed through to an
    // OpenAI-protocol provider, and `user` metadata reduced to a plain id.
    let everything = alpha
        .requests()
        .into_iter()
        .find(|r| r.body.get("seed").is_some())
        .expect("the all-parameters request");
    for field in [
        "temperature",
        "top_p",
        "max_completion_tokens",
        "stop",
        "presence_penalty",
        "frequency_penalty",
        "logit_bias",
        "seed",
        "n",
        "logprobs",
        "top_logprobs",
        "metadata",
        "service_tier",
        "parallel_tool_calls",
        "reasoning_effort",
    ] {
        assert!(
            everything.body.get(field).is_some(),
            "{field} was not forwarded: {}",
            everything.body
        );
    }
    assert_eq!(everything.body["user"], "u-1");
    let custom = loose
        .requests()
        .into_iter()
        .find(|r| r.body.get("x_custom_flag").is_some());
    assert!(
        custom.is_some_and(|r| r.body["x_custom_flag"] == true),
        "unknown fields reach OpenAI-protocol providers"
    );
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
