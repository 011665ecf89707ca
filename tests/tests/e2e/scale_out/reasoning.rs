//! The reasoning cache shared through Redis: turn 2 of a thinking conversation on another data
//! plane.

use super::*;

/// Where turn 2 of each conversation goes.
enum Turn2 {
    /// To the other data plane.
    Elsewhere,
    /// To the same data plane, after `dying` (the data planes' Redis) has been killed.
    SameAfterRedisDies(tokenrouter_tests::own_redis::OwnRedis),
}

/// Two data planes, turn 1 of a thinking tool conversation on one and turn 2 as `turn2` says, the
/// client sending its history back as plain OpenAI messages (no reasoning state). Returns the
/// status of each provider's turn 2: (provider, status, body, what the gateway had to drop).
async fn thinking_across_data_planes(
    redis: Option<&str>,
    turn2: Turn2,
) -> Vec<(&'static str, u16, serde_json::Value, String)> {
    use tokenrouter_simulators::{Protocol, SimConfig};
    let stack = setup::stack(Backend::Sqlite).await.unwrap();
    let mut sims = Vec::new();
    let mut version = 0;
    for (protocol, name, model) in [
        (Protocol::Anthropic, "anthropic", "claude-sonnet-4-5"),
        (Protocol::Gemini, "gemini", "gemini-3-pro-preview"),
        (Protocol::DeepSeek, "deepseek", "deepseek-reasoner"),
    ] {
        let (sim, v) = setup::add_provider_with(
            &stack.cp,
            SimConfig::new(protocol, name, &format!("sim-secret-{name}")),
            &[model],
        )
        .await;
        sims.push(sim);
        version = v;
    }
    let prefix = format!("tre2e:reasoning:{}:", uuid::Uuid::new_v4().simple());
    let config = |name: &str| {
        let mut c = data_plane_config(name);
        c.limits.redis_url = redis.map(str::to_string);
        c.limits.redis_prefix = prefix.clone();
        c
    };
    let first = DataPlaneHandle::start(config("turn1"), &stack.cp.url(), None).await;
    let second = DataPlaneHandle::start(config("turn2"), &stack.cp.url(), None).await;
    first.wait_for_version(version).await;
    second.wait_for_version(version).await;
    if redis.is_some() {
        for dp in [&first, &second] {
            dp.wait_until("reasoning cache on Redis", |s| {
                s.reasoning.is_shared_connected()
            })
            .await;
        }
    }
    let second = match turn2 {
        Turn2::Elsewhere => &second,
        Turn2::SameAfterRedisDies(mut dying) => {
            dying.kill();
            &first
        }
    };
    let http = reqwest::Client::new();
    let tool = json!({"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}});
    let question = json!({"role": "user", "content": "Weather in Paris?"});
    let mut outcomes = Vec::new();
    for (provider, model) in [
        ("anthropic", "anthropic:claude-sonnet-4-5"),
        ("gemini", "gemini:gemini-3-pro-preview"),
        ("deepseek", "deepseek:deepseek-reasoner"),
    ] {
        let (status, turn) = tokenrouter_tests::chat(
            &http,
            &first,
            KEY,
            json!({"model": model, "messages": [question], "tools": [tool], "reasoning_effort": "low", "max_tokens": 4000}),
        )
        .await;
        assert_eq!(status, 200, "{turn}");
        let message = &turn["choices"][0]["message"];
        let call = &message["tool_calls"][0];
        assert!(call["id"].is_string(), "{turn}");
        // What a plain OpenAI client sends back: content and tool calls, no reasoning fields.
        let plain = json!({"role": "assistant", "content": message["content"], "tool_calls": message["tool_calls"]});
        let result =
            json!({"role": "tool", "tool_call_id": call["id"], "content": "18C and sunny"});
        let answer = http
            .post(second.url("/v1/chat/completions"))
            .bearer_auth(KEY)
            .json(&json!({"model": model, "messages": [question, plain, result], "tools": [tool], "reasoning_effort": "low", "max_tokens": 4000}))
            .send()
            .await
            .unwrap();
        let status = answer.status().as_u16();
        let dropped = answer
            .headers()
            .get("x-tokenrouter-dropped-params")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let body = answer.json().await.unwrap();
        outcomes.push((provider, status, body, dropped));
    }
    outcomes
}

/// With Redis, turn 2 on another data plane round-trips Anthropic's signed thinking and DeepSeek's
/// reasoning (the simulators check both) and Gemini's thought signature; without it, Anthropic's
/// turn 2 can only be answered by giving up thinking (`x-tokenrouter-dropped-params:
/// reasoning_effort`) and DeepSeek refuses it (400). (Gemini accepts Google's documented skip
/// signature, so its turn 2 succeeds either way.)
#[tokio::test]
async fn multi_turn_thinking_continues_on_another_data_plane_through_redis() {
    let Some(redis) = std::env::var("TOKENROUTER_TEST_REDIS_URL").ok() else {
        assert!(std::env::var_os("CI").is_none(), "CI must provide Redis");
        return eprintln!("skipped: TOKENROUTER_TEST_REDIS_URL is not set");
    };
    for (provider, status, body, dropped) in
        thinking_across_data_planes(Some(&redis), Turn2::Elsewhere).await
    {
        assert_eq!(status, 200, "{provider}: {body}");
        let text = body["choices"][0]["message"]["content"]
            .as_str()
            .unwrap_or("");
        assert!(text.contains("18C"), "{provider}: {body}");
        assert!(
            !dropped.contains("reasoning_effort"),
            "{provider} kept thinking: {dropped}"
        );
    }
    let without = thinking_across_data_planes(None, Turn2::Elsewhere).await;
    let (_, status, body, dropped) = &without[0];
    assert_eq!(*status, 200, "{body}");
    assert!(
        dropped.contains("reasoning_effort"),
        "anthropic without a shared cache loses its thinking: {dropped:?}"
    );
    let (_, status, body, _) = &without[2];
    assert_eq!(
        *status, 400,
        "deepseek refuses a tool turn without its reasoning_content: {body}"
    );
}

/// Redis dies under a running data plane: the reasoning cache falls back to memory, so a
/// conversation whose turns stay on that data plane keeps its thinking, and nothing fails.
#[tokio::test]
async fn thinking_survives_redis_dying_on_the_same_data_plane() {
    let Some(redis) = tokenrouter_tests::own_redis::OwnRedis::start() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must provide redis-server"
        );
        return eprintln!("skipped: redis-server is not installed");
    };
    let url = redis.url.clone();
    let outcomes = thinking_across_data_planes(Some(&url), Turn2::SameAfterRedisDies(redis)).await;
    for (provider, status, body, dropped) in outcomes {
        assert_eq!(status, 200, "{provider}: {body}");
        assert!(
            !dropped.contains("reasoning_effort"),
            "{provider} kept thinking from memory: {dropped}"
        );
    }
}
