//! `serve --demo` as a newcomer runs it: the documented model names (`kind:model` prefixes, auto
//! modes with JSON mode) answer through the real `serve` path on loopback ports.

use std::time::Duration;

use clap::Parser;
use serde_json::{Value, json};

use crate::{Cli, Command};

struct Demo {
    base: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

async fn start_demo() -> Demo {
    let dir = std::env::temp_dir().join(format!("tr-demo-{}", uuid::Uuid::new_v4().simple()));
    let dir = dir.to_str().expect("utf-8 temp dir").to_string();
    let cli = Cli::try_parse_from(["tokenrouter", "serve", "--demo", "--data-dir", &dir])
        .expect("serve --demo parses");
    let Command::Serve(args) = cli.command else {
        panic!("not serve")
    };
    let grpc = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let admin = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", http.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(crate::planes::serve_on(
        args,
        grpc,
        http,
        admin,
        None,
        async {
            let _ = stopped.await;
        },
    ));
    let client = reqwest::Client::new();
    for _ in 0..400 {
        if let Ok(r) = client.get(format!("{base}/readyz")).send().await
            && r.status() == 200
        {
            return Demo {
                base,
                stop: Some(stop),
                task,
            };
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("serve --demo never became ready");
}

impl Demo {
    async fn chat(&self, body: Value) -> (u16, Option<String>, Value) {
        let r = reqwest::Client::new()
            .post(format!("{}/v1/chat/completions", self.base))
            .bearer_auth(crate::bootstrap::DEMO_API_KEY)
            .json(&body)
            .send()
            .await
            .expect("chat");
        let status = r.status().as_u16();
        let provider = r
            .headers()
            .get("x-tokenrouter-provider")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        (status, provider, r.json().await.unwrap_or(Value::Null))
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(Duration::from_secs(15), self.task)
            .await
            .expect("serve stops")
            .expect("task")
            .expect("serve ends cleanly");
    }
}

fn hello() -> Value {
    json!([{"role": "user", "content": "Hello through TokenRouter"}])
}

#[tokio::test]
async fn documented_names_answer_under_serve_demo() {
    let demo = start_demo().await;
    // The README's and providers' documented prefixes resolve by kind: the demo providers are
    // called demo-anthropic, demo-openai, ...
    for (model, provider) in [
        ("anthropic:claude-3-5-sonnet-20241022", "demo-anthropic"),
        ("anthropic:claude-sonnet-4-5", "demo-anthropic"),
        ("openai:gpt-4o", "demo-openai"),
        ("gemini:gemini-2.5-flash", "demo-gemini"),
        ("mistral:mistral-small-latest", "demo-mistral"),
        ("deepseek:deepseek-chat", "demo-deepseek"),
        ("demo-openai:gpt-4o-mini", "demo-openai"),
    ] {
        let (status, served_by, body) = demo
            .chat(json!({"model": model, "messages": hello()}))
            .await;
        assert_eq!(status, 200, "{model}: {body}");
        assert_eq!(served_by.as_deref(), Some(provider), "{model}");
        assert!(
            body["choices"][0]["message"]["content"]
                .as_str()
                .is_some_and(|c| c.contains("Hello through TokenRouter")),
            "{model}: {body}"
        );
    }
    let (status, _, body) = demo
        .chat(json!({"model": "auto:balance", "messages": hello(),
            "response_format": {"type": "json_object"}}))
        .await;
    assert_eq!(status, 200, "{body}");
    let content = body["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(
        serde_json::from_str::<Value>(content).is_ok_and(|v| v.is_object()),
        "JSON mode answers a JSON object: {content}"
    );
    let (status, _, body) = demo
        .chat(json!({"model": "bedrock:claude", "messages": hello()}))
        .await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["code"], "model_not_found");

    let models: Value = reqwest::Client::new()
        .get(format!("{}/v1/models", demo.base))
        .bearer_auth(crate::bootstrap::DEMO_API_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let entry = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == "anthropic:claude-sonnet-4-5")
        .expect("kind prefixes are listed");
    assert_eq!(entry["resolves_to"], json!(["demo-anthropic"]));
    demo.stop().await;
}

/// The demo serves embeddings and the Responses API out of the box, as the README says.
#[tokio::test]
async fn the_demo_serves_embeddings_and_responses() {
    let demo = start_demo().await;
    let http = reqwest::Client::new();
    let post = |path: &str, body: Value| {
        http.post(format!("{}{path}", demo.base))
            .bearer_auth(crate::bootstrap::DEMO_API_KEY)
            .json(&body)
            .send()
    };
    for model in [
        "text-embedding-3-small",
        "gemini-embedding-001",
        "mistral-embed",
    ] {
        let r = post(
            "/v1/embeddings",
            json!({"model": model, "input": ["a", "b"], "encoding_format": "float"}),
        )
        .await
        .unwrap();
        assert_eq!(r.status(), 200, "{model}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(
            body["data"].as_array().map(Vec::len),
            Some(2),
            "{model}: {body}"
        );
    }
    for model in ["gpt-4o-mini", "claude-haiku-4-5", "gemini-2.5-flash"] {
        let r = post(
            "/v1/responses",
            json!({"model": model, "input": "Hello through TokenRouter"}),
        )
        .await
        .unwrap();
        assert_eq!(r.status(), 200, "{model}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["object"], "response", "{model}: {body}");
        assert!(
            body["output"]
                .to_string()
                .contains("Hello through TokenRouter"),
            "{model}: {body}"
        );
    }
    demo.stop().await;
}
