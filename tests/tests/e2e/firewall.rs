//! The firewall end to end: rules written over gRPC, applied by a data plane to what goes to the
//! simulated provider and to what comes back, JSON and streamed (the simulator echoes the prompt,
//! so a planted secret comes back split across chunks), recorded without the text.

use serde_json::json;
use tokenrouter_proto::v1::{FirewallRule, FirewallRuleWrite, UsageQuery};
use tokenrouter_tests::{Backend, DataPlaneHandle, data_plane_config};

use crate::setup::{self, KEY};

const CARD: &str = "4111 1111 1111 1111";

async fn rule(
    stack: &setup::Stack,
    name: &str,
    detectors: &[&str],
    action: &str,
    direction: &str,
) -> u64 {
    stack
        .cp
        .admin()
        .await
        .create_firewall_rule(FirewallRuleWrite {
            rule: Some(FirewallRule {
                name: name.into(),
                detectors: detectors.iter().map(|d| d.to_string()).collect(),
                action: action.into(),
                direction: direction.into(),
                ..Default::default()
            }),
            expected_version: 0,
        })
        .await
        .expect("create rule")
        .into_inner()
        .version
}

async fn stream_text(http: &reqwest::Client, dp: &DataPlaneHandle, text: &str) -> String {
    http.post(dp.url("/v1/chat/completions"))
        .bearer_auth(KEY)
        .json(
            &json!({"model": "gpt-4o-mini", "stream": true, "messages": setup::user_message(text)}),
        )
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The text a stream generated (its content deltas joined): what the firewall must have
/// filtered. Random ids elsewhere in the frames may hold any digits.
fn generated(sse: &str) -> String {
    sse.lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str::<serde_json::Value>(d).ok())
        .filter_map(|v| {
            v["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_string)
        })
        .collect()
}

#[tokio::test]
async fn rules_block_and_mask_input_and_output_plain_and_streamed() {
    let stack = setup::stack(Backend::Sqlite).await.unwrap();
    let (_sim, _) = setup::add_simulated_provider(&stack.cp, "sim", &["gpt-4o-mini"]).await;
    rule(&stack, "no-secrets", &["api_key"], "block", "input").await;
    rule(&stack, "emails", &["email"], "mask", "input").await;
    let version = rule(&stack, "cards-out", &["credit_card"], "mask", "output").await;
    let dp = DataPlaneHandle::start(data_plane_config("fw"), &stack.cp.url(), None).await;
    dp.wait_for_version(version).await;
    let http = reqwest::Client::new();
    let ask = |text: &str| json!({"model": "gpt-4o-mini", "messages": setup::user_message(text)});

    // Blocked input: 400 content_filter naming the rule, never the secret.
    let secret = "sk-proj-abcdefghijklmnopqrstuvwxyz0123";
    let answer = http
        .post(dp.url("/v1/chat/completions"))
        .bearer_auth(KEY)
        .json(&ask(&format!("use {secret}")))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 400);
    assert_eq!(answer.headers()["x-tokenrouter-firewall"], "no-secrets");
    let body: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(body["error"]["code"], "content_filter");
    assert_eq!(body["error"]["param"], "messages");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no-secrets")
    );
    assert!(!body.to_string().contains(secret));

    // Masked input: the provider (which echoes) only ever saw the placeholder.
    let (status, body) =
        tokenrouter_tests::chat(&http, &dp, KEY, ask("mail jane@example.com")).await;
    assert_eq!(status, 200, "{body}");
    let content = body["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(
        content.contains("[EMAIL_1]") && !content.contains("jane@"),
        "{content}"
    );

    // Masked output, JSON and streamed (the card is split across the simulator's chunks).
    let (_, body) = tokenrouter_tests::chat(&http, &dp, KEY, ask(&format!("card {CARD} ok"))).await;
    let content = body["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(
        content.contains("[CREDIT_CARD_1]") && !content.contains("4111"),
        "{content}"
    );
    let streamed = stream_text(&http, &dp, &format!("card {CARD} ok")).await;
    let text = generated(&streamed);
    assert!(
        !text.contains("4111") && !text.contains("1111"),
        "{streamed}"
    );
    assert!(
        text.contains("[CREDIT_CARD_1]") && streamed.trim_end().ends_with("data: [DONE]"),
        "{streamed}"
    );

    // Recorded without the text.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let report = stack
            .cp
            .cp
            .usage(UsageQuery {
                recent: 10,
                ..Default::default()
            })
            .await
            .unwrap();
        let summaries: Vec<&str> = report.recent.iter().map(|r| r.firewall.as_str()).collect();
        if summaries
            .iter()
            .any(|s| s.starts_with("no-secrets:api_key:block:input:1"))
            && summaries
                .iter()
                .any(|s| s.contains("cards-out:credit_card:mask:output:1"))
        {
            assert!(
                report
                    .recent
                    .iter()
                    .all(|r| !format!("{r:?}").contains("4111"))
            );
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{summaries:?}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let metrics = dp.metrics().await;
    assert!(
        metrics.contains(r#"tokenrouter_firewall_matches_total{rule="cards-out",detector="credit_card",action="mask",direction="output"} 2"#),
        "{metrics}"
    );
    assert!(metrics.contains(r#"tokenrouter_firewall_matches_total{rule="no-secrets",detector="api_key",action="block",direction="input"} 1"#));
    assert!(!metrics.contains("4111") && !metrics.contains("jane@"));
}

#[tokio::test]
async fn a_blocked_answer_ends_with_content_filter_and_sends_none_of_it() {
    let stack = setup::stack(Backend::Sqlite).await.unwrap();
    let (_sim, _) = setup::add_simulated_provider(&stack.cp, "sim", &["gpt-4o-mini"]).await;
    let version = rule(&stack, "no-cards-out", &["credit_card"], "block", "output").await;
    let dp = DataPlaneHandle::start(data_plane_config("fw-block"), &stack.cp.url(), None).await;
    dp.wait_for_version(version).await;
    let http = reqwest::Client::new();
    let (status, body) = tokenrouter_tests::chat(
        &http,
        &dp,
        KEY,
        json!({"model": "gpt-4o-mini", "messages": setup::user_message(&format!("card {CARD}"))}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["choices"][0]["finish_reason"], "content_filter");
    assert!(!body.to_string().contains("4111"));
    let streamed = stream_text(&http, &dp, &format!("my card is {CARD} thanks")).await;
    assert!(!generated(&streamed).contains("4111"), "{streamed}");
    assert!(
        streamed.contains("\"finish_reason\":\"content_filter\""),
        "{streamed}"
    );
    assert!(streamed.trim_end().ends_with("data: [DONE]"), "{streamed}");
}
