//! `POST /v1/embeddings` end to end: the official OpenAI Python and Node SDKs against a data plane
//! in front of OpenAI, Mistral and Gemini simulators (`tests/python/embeddings.py`,
//! `tests/node/embeddings.mjs`), fallback past a failing
//! provider, the firewall's input rules on the inputs, a provider without embeddings refused, and
//! the GenAI metrics under `gen_ai_operation_name="embeddings"`.

use serde_json::{Value, json};
use tokenrouter_proto::v1::Provider;
use tokenrouter_simulators::{Fault, Protocol, SimConfig};
use tokenrouter_tests::{Backend, DataPlaneHandle, data_plane_config};

use crate::python::python;
use crate::setup::{KEY, add_mask_rule, add_provider_full, run_script, stack};

fn serving(models: &[&str]) -> Provider {
    Provider {
        models: models.iter().map(|m| m.to_string()).collect(),
        ..Default::default()
    }
}

#[tokio::test]
async fn embeddings_route_fall_back_and_pass_the_firewall() {
    let stack = stack(Backend::Sqlite).await.unwrap();
    let models = ["text-embedding-3-small", "text-embedding-ada-002"];
    let (sim, _) = add_provider_full(
        &stack.cp,
        SimConfig::new(Protocol::OpenAi, "sim", "k-sim"),
        serving(&models),
    )
    .await;
    let (sim2, _) = add_provider_full(
        &stack.cp,
        SimConfig::new(Protocol::OpenAi, "sim2", "k-sim2"),
        serving(&models),
    )
    .await;
    let (mistral, _) = add_provider_full(
        &stack.cp,
        SimConfig::new(Protocol::Mistral, "mis", "k-mis"),
        serving(&["codestral-embed"]),
    )
    .await;
    let (gemini, _) = add_provider_full(
        &stack.cp,
        SimConfig::new(Protocol::Gemini, "gem", "k-gem"),
        serving(&["gemini-embedding-001"]),
    )
    .await;
    let (_claude, _) = add_provider_full(
        &stack.cp,
        SimConfig::new(Protocol::Anthropic, "claude", "k-claude"),
        serving(&["claude-sonnet-4-5"]),
    )
    .await;
    let version = add_mask_rule(&stack.cp, "emails", "email", "input").await;
    let dp = DataPlaneHandle::start(data_plane_config("embeddings"), &stack.cp.url(), None).await;
    dp.wait_for_version(version).await;

    let mut ran = false;
    if let Some(python) = python() {
        ran = true;
        let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("python/embeddings.py");
        run_script(
            &python,
            &[&script],
            [
                ("TOKENROUTER_BASE_URL", dp.url("/v1")),
                ("TOKENROUTER_API_KEY", KEY.to_string()),
            ],
            "all embeddings checks passed",
        )
        .await;
    }
    if let Some(node) = crate::node::node() {
        ran = true;
        let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("node/embeddings.mjs");
        run_script(
            &node,
            &[&script],
            [
                ("TOKENROUTER_BASE_URL", dp.url("/v1")),
                ("TOKENROUTER_API_KEY", KEY.to_string()),
            ],
            "all embeddings checks passed",
        )
        .await;
    }
    if ran {
        let sent = mistral.requests();
        let last = &sent.last().expect("Mistral was asked").body;
        assert_eq!(last["output_dimension"], 128);
        assert!(last.get("dimensions").is_none());
        let asked = gemini.requests();
        let batch = asked
            .iter()
            .find(|r| r.path.ends_with(":batchEmbedContents"))
            .expect("Gemini got a batch");
        assert_eq!(batch.body["requests"][1]["outputDimensionality"], 768);
    }

    let http = reqwest::Client::new();
    let ask = |body: Value| {
        http.post(dp.url("/v1/embeddings"))
            .bearer_auth(KEY)
            .json(&body)
            .send()
    };
    // The first provider (by name) answers 500: the plan moves on, as for chat.
    sim.push_fault(Fault::Status {
        status: 500,
        retry_after_secs: None,
    });
    let before = sim2.request_count();
    let r = ask(json!({"model": "text-embedding-3-small",
        "input": ["write to jane@example.com"], "encoding_format": "float"}))
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-tokenrouter-provider"], "sim2");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["data"][0]["embedding"].as_array().unwrap().len(), 1536);
    assert_eq!(sim2.request_count(), before + 1);
    // The firewall masked the input before it left.
    let sent = sim2.requests().last().unwrap().body.clone();
    let input = sent["input"][0].as_str().unwrap();
    assert!(
        input.contains("[EMAIL_1]") && !input.contains("jane@"),
        "{input}"
    );

    // More inputs than one Gemini batch takes: several calls, one list in the input's order.
    let calls_before = gemini.request_count();
    let inputs: Vec<String> = (0..150).map(|i| format!("text {i}")).collect();
    let r = ask(json!({"model": "gem:gemini-embedding-001", "input": inputs,
        "encoding_format": "float", "dimensions": 8}))
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    let data = body["data"].as_array().unwrap();
    assert_eq!(data.len(), 150);
    assert!(data.iter().enumerate().all(|(i, d)| d["index"] == i));
    assert_eq!(gemini.request_count(), calls_before + 2, "100 + 50");
    // The 101st vector is the one Gemini gave the 101st text (the second batch's first).
    let alone = ask(
        json!({"model": "gem:gemini-embedding-001", "input": "text 100",
        "encoding_format": "float", "dimensions": 8}),
    )
    .await
    .unwrap()
    .json::<Value>()
    .await
    .unwrap();
    assert_eq!(data[100]["embedding"], alone["data"][0]["embedding"]);

    // A provider without embeddings is refused with a clear 400, not sent anything.
    let r = ask(json!({"model": "claude-sonnet-4-5", "input": "x"}))
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let err: Value = r.json().await.unwrap();
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("is not an embeddings model"),
        "{err}"
    );

    let metrics = dp.metrics().await;
    assert!(
        metrics.lines().any(|l| l.starts_with(
            "gen_ai_client_token_usage_count{gen_ai_operation_name=\"embeddings\",gen_ai_provider_name=\"openai\",gen_ai_request_model=\"text-embedding-3-small\""
        )),
        "{metrics}"
    );
}
