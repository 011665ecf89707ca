//! Routes that are being built on other branches, ready to measure as soon as they land: a
//! translated provider (Anthropic Messages API behind the OpenAI API) and `auto:fast` routing.
//! Each probes first (`auto:fast` is compared with the same bare pass-through as `openai`, since
//! both end at the same simulator) and is skipped with a clear message while TokenRouter refuses it.

use serde_json::json;

use super::suite::{self, Column, Route};
use super::{Env, PROMPT};
use crate::client::{Dialect, Target};
use crate::stack::{self, CLIENT_KEY};

/// The model asked of the Anthropic simulator.
const CLAUDE: &str = "claude-sonnet-4-5";

fn anthropic_body(stream: bool) -> serde_json::Value {
    json!({
        "model": CLAUDE, "max_tokens": 256, "stream": stream,
        "messages": [{"role": "user", "content": PROMPT}],
    })
}

fn openai_body(model: &str, stream: bool) -> serde_json::Value {
    json!({
        "model": model, "max_tokens": 256, "stream": stream,
        "messages": [{"role": "user", "content": PROMPT}],
    })
}

/// Through an Anthropic provider, against the Anthropic simulator called directly.
pub async fn anthropic(env: &mut Env) -> anyhow::Result<()> {
    let s = "anthropic (translated)";
    let sim = stack::start_sim(&env.bins, &env.dir, "sim-anthropic", "anthropic", 0)?;
    let mut admin = stack::admin(env.gw.grpc_port).await?;
    match stack::add_provider(
        &mut admin,
        "bench-anthropic",
        "anthropic",
        &sim.base_url,
        &[CLAUDE],
    )
    .await
    {
        Ok(_) => {}
        Err(e) if e.code() == tonic::Code::InvalidArgument => {
            env.report.skip(s, &format!(
                "this build refuses `anthropic` providers ({}); the scenario runs once the Anthropic adapter lands in main",
                e.message()
            ));
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    }
    let model = format!("bench-anthropic:{CLAUDE}");
    if let Err(why) = probe(env, &model).await {
        env.report
            .skip(s, &format!("TokenRouter does not serve {model} yet: {why}"));
        return Ok(());
    }
    let headers: [(&'static str, &str); 2] = [
        ("x-api-key", stack::UPSTREAM_KEY),
        ("anthropic-version", "2023-06-01"),
    ];
    let direct_col = |stream: bool| {
        Target::local("direct", sim.port, "/v1/messages", anthropic_body(stream))
            .dialect(Dialect::Anthropic, &headers)
    };
    let tr = |stream: bool| {
        Target::with_key(
            "tokenrouter",
            env.gw.http_port,
            "/v1/chat/completions",
            openai_body(&model, stream),
            Some(CLIENT_KEY),
        )
    };
    let route = Route {
        section: s,
        direct: Column {
            plain: direct_col(false),
            stream: direct_col(true),
            proc: &sim.proc,
        },
        passthrough: None,
        tokenrouter: Column {
            plain: tr(false),
            stream: tr(true),
            proc: &env.gw.proc,
        },
    };
    suite::run(&route, &env.opts, &mut env.report).await
}

/// Through `auto:fast`, against the OpenAI simulator called directly.
pub async fn auto_fast(env: &mut Env) -> anyhow::Result<()> {
    let s = "auto:fast";
    match probe(env, "auto:fast").await {
        Ok(provider) => env
            .report
            .raw("auto_fast.probe", json!({ "provider": provider })),
        Err(why) => {
            env.report.skip(s, &format!("TokenRouter does not route `auto:fast` yet ({why}); the scenario runs once it lands in main"));
            return Ok(());
        }
    }
    suite::run_over_fast(env, s, "auto:fast").await
}

/// One request for `model`; the provider that answered, or why it failed.
async fn probe(env: &Env, model: &str) -> Result<String, String> {
    let url = format!("http://127.0.0.1:{}/v1/chat/completions", env.gw.http_port);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let r = reqwest::Client::new()
            .post(&url)
            .bearer_auth(CLIENT_KEY)
            .json(&openai_body(model, false))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = r.status();
        let provider = r
            .headers()
            .get("x-tokenrouter-provider")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let text = r.text().await.unwrap_or_default();
        if status.is_success() {
            return Ok(provider);
        }
        // A provider just created may take a moment to reach the data plane.
        if std::time::Instant::now() > deadline || status != reqwest::StatusCode::NOT_FOUND {
            return Err(format!(
                "{status}: {}",
                text.chars().take(200).collect::<String>()
            ));
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
