//! Accounts that cannot use every catalog model: discovery from each provider's list endpoint keeps
//! auto modes, bare names and kind prefixes on models the account serves; an upstream "model not
//! found" takes a (provider, model) out of routing for a while; only a pinned model surfaces it.
//! Also `kind:model` prefixes resolving to every provider of the kind.

use serde_json::{Value, json};
use tokenrouter_proto::v1::*;
use tokenrouter_simulators::{Fault, Protocol, SimConfig, Simulator};
use tokenrouter_tests::{Backend, DataPlaneHandle, chat, data_plane_config};

use crate::setup::{KEY, Stack, add_provider_full, stack, user_message};

/// A simulator for an account that may use only `models` (others get the provider's own
/// "model not found"), registered as provider `name` serving every catalog model of its kind.
async fn limited_account(
    stack: &Stack,
    protocol: Protocol,
    name: &str,
    models: &[&str],
    lists_models: bool,
) -> (Simulator, u64) {
    let mut config = SimConfig::new(protocol, name, &format!("secret-{name}"));
    config.models = models.iter().map(|m| m.to_string()).collect();
    config.serves_only_listed = true;
    config.lists_models = lists_models;
    add_provider_full(&stack.cp, config, Provider::default()).await
}

fn generated_models(sim: &Simulator) -> Vec<String> {
    sim.requests()
        .iter()
        .map(|r| match r.body["model"].as_str() {
            Some(m) => m.to_string(),
            None => r.path.clone(),
        })
        .collect()
}

#[tokio::test]
async fn auto_modes_and_bare_names_use_only_models_the_account_serves() {
    let stack = stack(Backend::Sqlite).await.unwrap();
    let (openai, _) = limited_account(
        &stack,
        Protocol::OpenAi,
        "acct-openai",
        &["gpt-4o-mini"],
        true,
    )
    .await;
    let (anthropic, version) = limited_account(
        &stack,
        Protocol::Anthropic,
        "acct-anthropic",
        &["claude-haiku-4-5-20251001"],
        true,
    )
    .await;
    let dp = DataPlaneHandle::start(data_plane_config("dp"), &stack.cp.url(), None).await;
    dp.wait_for_version(version).await;
    dp.wait_until("both lists discovered", |s| {
        s.availability.listing("acct-openai").is_some()
            && s.availability.listing("acct-anthropic").is_some()
    })
    .await;
    assert!(openai.list_count() >= 1 && anthropic.list_count() >= 1);
    let http = reqwest::Client::new();
    for mode in ["auto:fast", "auto:balance", "auto:cost", "auto:quality"] {
        for _ in 0..4 {
            let (status, body) = chat(
                &http,
                &dp,
                KEY,
                json!({"model": mode, "messages": user_message("hi")}),
            )
            .await;
            assert_eq!(status, 200, "{mode}: {body}");
            let chosen = body["routing"]["chosen"].as_str().unwrap();
            assert!(
                chosen == "acct-openai:gpt-4o-mini" || chosen == "acct-anthropic:claude-haiku-4-5",
                "{mode} chose {chosen}"
            );
        }
    }
    // A bare catalog name both kinds could serve only in name: the one provider serving it answers.
    let (status, body) = chat(
        &http,
        &dp,
        KEY,
        json!({"model": "claude-haiku-4-5", "messages": user_message("hi")}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // Nothing was ever sent for a model the accounts lack.
    for m in generated_models(&openai) {
        assert_eq!(m, "gpt-4o-mini");
    }
    for m in generated_models(&anthropic) {
        assert_eq!(m, "claude-haiku-4-5");
    }

    // A model the client pinned is tried, and the provider's 404 names it.
    let (status, body) = chat(
        &http,
        &dp,
        KEY,
        json!({"model": "acct-openai:gpt-4o", "messages": user_message("hi")}),
    )
    .await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["code"], "model_not_found");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("gpt-4o"),
        "{body}"
    );
    // So is a kind prefix no provider of the kind serves.
    let (status, body) = chat(
        &http,
        &dp,
        KEY,
        json!({"model": "anthropic:claude-opus-4-1", "messages": user_message("hi")}),
    )
    .await;
    assert_eq!(status, 404, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("claude-opus-4-1"),
        "{body}"
    );
}

#[tokio::test]
async fn without_a_list_endpoint_a_model_not_found_moves_on_and_is_remembered() {
    let stack = stack(Backend::Sqlite).await.unwrap();
    let mut admin = stack.cp.admin().await;
    for (model, quality) in [("best-m", 95), ("good-m", 90), ("ok-m", 50)] {
        admin
            .create_model(ModelWrite {
                model: Some(ModelEntry {
                    name: model.into(),
                    kind: "openai".into(),
                    model: model.into(),
                    input_per_mtok: 1.0,
                    output_per_mtok: 1.0,
                    context_window: 100_000,
                    max_output: 4096,
                    quality,
                    quality_source: "test".into(),
                    ..Default::default()
                }),
                expected_version: 0,
            })
            .await
            .unwrap();
    }
    let mut config = SimConfig::new(Protocol::OpenAi, "nolist", "secret-nolist");
    config.models = vec!["ok-m".into()];
    config.serves_only_listed = true;
    config.lists_models = false;
    let (sim, version) = add_provider_full(
        &stack.cp,
        config,
        Provider {
            models: vec!["best-m".into(), "good-m".into(), "ok-m".into()],
            ..Default::default()
        },
    )
    .await;
    let dp = DataPlaneHandle::start(data_plane_config("dp"), &stack.cp.url(), None).await;
    dp.wait_for_version(version).await;
    let http = reqwest::Client::new();
    let ask = |model: &str| json!({"model": model, "messages": user_message("hi")});
    // auto:quality ranks best-m, good-m, ok-m: the first two are "not found", the third answers.
    let (status, body) = chat(&http, &dp, KEY, ask("auto:quality")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(generated_models(&sim), ["best-m", "good-m", "ok-m"]);
    assert!(
        dp.state.availability.listing("nolist").is_none(),
        "the list endpoint is a 404"
    );
    // Remembered: the next request goes straight to the model that answers.
    let (status, body) = chat(&http, &dp, KEY, ask("auto:quality")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["routing"]["chosen"], "nolist:ok-m");
    assert_eq!(sim.request_count(), 4);
    // A pinned request still reaches the provider and gets its 404, named.
    let (status, body) = chat(&http, &dp, KEY, ask("nolist:best-m")).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["code"], "model_not_found");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("best-m")
    );
    assert_eq!(sim.request_count(), 5);
}

#[tokio::test]
async fn model_not_found_moves_down_a_bare_name_for_each_providers_error_shape() {
    // Mistral and DeepSeek say "no such model" with a 400, Anthropic and Gemini with a 404.
    for (protocol, model) in [
        (Protocol::Mistral, "mistral-small-latest"),
        (Protocol::DeepSeek, "deepseek-chat"),
        (Protocol::Anthropic, "claude-haiku-4-5"),
        (Protocol::Gemini, "gemini-2.5-flash"),
    ] {
        let stack = stack(Backend::Sqlite).await.unwrap();
        let mut lacking = SimConfig::new(protocol, "a-lacking", "secret-a");
        lacking.models = vec!["other-model".into()];
        lacking.serves_only_listed = true;
        lacking.lists_models = false;
        let only = |m: &str| Provider {
            models: vec![m.to_string()],
            ..Default::default()
        };
        let (first, _) = add_provider_full(&stack.cp, lacking, only(model)).await;
        let (second, version) = add_provider_full(
            &stack.cp,
            SimConfig::new(protocol, "b-serving", "secret-b"),
            only(model),
        )
        .await;
        let dp = DataPlaneHandle::start(data_plane_config("dp"), &stack.cp.url(), None).await;
        dp.wait_for_version(version).await;
        let (status, body) = chat(
            &reqwest::Client::new(),
            &dp,
            KEY,
            json!({"model": model, "messages": user_message("hi")}),
        )
        .await;
        assert_eq!(status, 200, "{protocol:?}: {body}");
        assert_eq!(body["provider"], "b-serving", "{protocol:?}");
        assert_eq!(
            (first.request_count(), second.request_count()),
            (1, 1),
            "{protocol:?}"
        );
    }
}

#[tokio::test]
async fn kind_prefixes_reach_every_provider_of_the_kind_and_names_win() {
    let stack = stack(Backend::Sqlite).await.unwrap();
    let (eu, _) = add_provider_full(
        &stack.cp,
        SimConfig::new(Protocol::Anthropic, "anthropic-eu", "secret-eu"),
        Provider::default(),
    )
    .await;
    let (_us, _) = add_provider_full(
        &stack.cp,
        SimConfig::new(Protocol::Anthropic, "anthropic-us", "secret-us"),
        Provider::default(),
    )
    .await;
    // A provider *named* openai (of another kind) wins over the kind.
    let (_named, version) = add_provider_full(
        &stack.cp,
        SimConfig::new(Protocol::OpenAi, "openai", "secret-named"),
        Provider {
            kind: "openai-compatible".into(),
            ..Default::default()
        },
    )
    .await;
    let dp = DataPlaneHandle::start(data_plane_config("dp"), &stack.cp.url(), None).await;
    dp.wait_for_version(version).await;
    let http = reqwest::Client::new();
    let ask = |model: &str| json!({"model": model, "messages": user_message("hi")});
    let (status, body) = chat(&http, &dp, KEY, ask("anthropic:claude-sonnet-4-5")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["provider"], "anthropic-eu", "name order");
    assert_eq!(body["routing"]["mode"], "kind");
    // The first of the kind fails: the next one answers, as for a bare name.
    eu.push_fault(Fault::Status {
        status: 503,
        retry_after_secs: None,
    });
    let (status, body) = chat(&http, &dp, KEY, ask("anthropic/claude-sonnet-4-5")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["provider"], "anthropic-us");
    let (status, body) = chat(&http, &dp, KEY, ask("openai:gpt-4o")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["provider"].as_str(), body["routing"]["mode"].as_str()),
        (Some("openai"), Some("pinned"))
    );

    let models: Value = http
        .get(dp.url("/v1/models"))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["id"].as_str())
        .collect();
    let entry = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == "anthropic:claude-sonnet-4-5")
        .expect("listed");
    assert_eq!(
        entry["resolves_to"],
        json!(["anthropic-eu", "anthropic-us"])
    );
    assert!(
        !ids.iter()
            .any(|id| id.starts_with("openai:") && !id.starts_with("openai:gpt")),
        "{ids:?}"
    );
}
