//! Every recorded fixture, replayed by a simulator speaking that provider's protocol, through a
//! real data plane over HTTP: streams must come out as well-formed OpenAI chunk sequences (ending
//! in `[DONE]`, or in an in-band error for recorded failures), answers as `chat.completion`
//! objects, and recorded error bodies as OpenAI error envelopes. OpenAI's Responses recordings go
//! through `/v1/responses` and must come out event for event; its embeddings through
//! `/v1/embeddings`. Field-by-field checks of each
//! translation live next to the adapters; this proves the whole path carries them.

use std::path::PathBuf;

use serde_json::{Value, json};
use tokenrouter_proto::v1::Provider;
use tokenrouter_simulators::{Fault, Protocol, Recording, SimConfig, Simulator};
use tokenrouter_tests::{Backend, DataPlaneHandle, data_plane_config};

use crate::setup::{KEY, add_provider_full, stack, user_message};

fn fixtures(dir: &str) -> Vec<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures")
        .join(dir);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("fixtures dir")
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

/// The recordings in a fixture file: (recording, the status it was recorded with).
fn recordings(protocol: Protocol, path: &PathBuf) -> Vec<Recording> {
    let name = path.file_name().unwrap().to_string_lossy().to_string();
    let text = std::fs::read_to_string(path).unwrap();
    if name.ends_with(".chunks.txt") {
        let lines: Vec<String> = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_string)
            .collect();
        if lines[0].starts_with(r#"{"type":"response."#) {
            return vec![Recording::from_response_chunks(&lines)];
        }
        return vec![Recording::from_chunks(protocol, &lines)];
    }
    if name.ends_with(".sse") {
        return vec![Recording::sse(text.into_bytes())];
    }
    if name.ends_with(".json") {
        let body: Value = serde_json::from_str(&text).unwrap();
        // Synthetic error files name their status (`http-529-...`); recorded error bodies are 4xx.
        let status = name
            .split("http-")
            .nth(1)
            .and_then(|rest| rest.get(..3))
            .and_then(|s| s.parse().ok());
        let is_error = body.get("error").is_some()
            || body.get("object").and_then(Value::as_str) == Some("error")
            || body.get("type").and_then(Value::as_str) == Some("error");
        let status = status.unwrap_or(if is_error { 400 } else { 200 });
        return vec![Recording::json(status, text.into_bytes())];
    }
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    let mut out = Vec::new();
    for i in doc["interactions"]
        .as_sequence()
        .cloned()
        .unwrap_or_default()
    {
        let status = i["response"]["status"]["code"].as_u64().unwrap_or(200) as u16;
        if let Some(raw) = i["response"]["body"]["string"].as_str() {
            if raw.contains("data:") {
                out.push(Recording {
                    status,
                    content_type: "text/event-stream".into(),
                    body: raw.as_bytes().to_vec(),
                });
            } else if !raw.trim().is_empty() {
                out.push(Recording::json(status, raw.as_bytes().to_vec()));
            }
        } else if let Some(parsed) = i["response"].get("parsed_body") {
            let json: Value = serde_json::to_value(parsed).unwrap();
            out.push(Recording::json(status, json.to_string().into_bytes()));
        }
    }
    out
}

async fn replay_all(protocol: Protocol, kind: &str, dir: &str) {
    let stack = stack(Backend::Sqlite).await.unwrap();
    let mut config = SimConfig::new(protocol, kind, "k-replay");
    config.strict_fields = false;
    let template = Provider {
        models: vec!["m".into()],
        ..Default::default()
    };
    let (sim, version): (Simulator, u64) = add_provider_full(&stack.cp, config, template).await;
    let dp = DataPlaneHandle::start(data_plane_config("replay"), &stack.cp.url(), None).await;
    dp.wait_for_version(version).await;
    let http = reqwest::Client::new();
    let mut replayed = 0;
    for path in fixtures(dir) {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        for recording in recordings(protocol, &path) {
            let stream = recording.content_type.starts_with("text/event-stream");
            let failed = recording.status >= 400;
            let recorded = String::from_utf8_lossy(&recording.body).to_string();
            if recorded.contains(r#""type":"response."#)
                || recorded.contains(r#""object":"response""#)
            {
                sim.push_fault(Fault::Replay(recording));
                replay_response(&http, &dp, kind, &name, stream, &recorded).await;
                replayed += 1;
                continue;
            }
            if recorded.contains(r#""object":"list""#) && recorded.contains("embedding") {
                sim.push_fault(Fault::Replay(recording));
                let body = json!({"model": format!("{kind}:m"), "input": "replay", "encoding_format": "float"});
                let r = http
                    .post(dp.url("/v1/embeddings"))
                    .bearer_auth(KEY)
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200, "{name}");
                let answer: Value = r.json().await.unwrap();
                let recorded: Value = serde_json::from_str(&recorded).unwrap();
                assert_eq!(answer["data"], recorded["data"], "{name}: passed through");
                replayed += 1;
                continue;
            }
            sim.push_fault(Fault::Replay(recording));
            let body = json!({"model": format!("{kind}:m"), "stream": stream, "messages": user_message("replay"), "max_tokens": 100});
            let response = http
                .post(dp.url("/v1/chat/completions"))
                .bearer_auth(KEY)
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            let text = response.text().await.unwrap();
            replayed += 1;
            if failed {
                assert!(
                    status >= 400,
                    "{name}: a recorded failure must fail: {status} {text}"
                );
                let error: Value = serde_json::from_str(&text)
                    .unwrap_or_else(|_| panic!("{name}: not JSON: {text}"));
                assert!(
                    error["error"]["message"].is_string() && error["error"]["type"].is_string(),
                    "{name}: {error}"
                );
                continue;
            }
            if !stream {
                if status == 200 {
                    let answer: Value = serde_json::from_str(&text).unwrap();
                    assert_eq!(answer["object"], "chat.completion", "{name}: {answer}");
                    assert!(
                        answer["choices"].is_array() && answer["provider"] == kind,
                        "{name}: {answer}"
                    );
                } else {
                    let error: Value = serde_json::from_str(&text)
                        .unwrap_or_else(|_| panic!("{name}: not JSON: {text}"));
                    assert!(error["error"]["code"].is_string(), "{name}: {error}");
                }
                continue;
            }
            assert_eq!(status, 200, "{name}: {text}");
            let events: Vec<&str> = text
                .split("\n\n")
                .filter_map(|e| e.strip_prefix("data: "))
                .collect();
            let last = *events
                .last()
                .unwrap_or_else(|| panic!("{name}: empty stream"));
            let chunks: Vec<Value> = events
                .iter()
                .filter(|e| **e != "[DONE]")
                .map(|e| {
                    serde_json::from_str(e).unwrap_or_else(|_| panic!("{name}: bad chunk {e}"))
                })
                .collect();
            if last != "[DONE]" {
                let error = chunks.last().unwrap();
                assert!(
                    error["error"]["code"].is_string(),
                    "{name}: a stream must end in [DONE] or an error: {error}"
                );
                continue;
            }
            assert!(!chunks.is_empty(), "{name}");
            let id = &chunks[0]["id"];
            for c in &chunks {
                assert_eq!(c["object"], "chat.completion.chunk", "{name}: {c}");
                assert_eq!(&c["id"], id, "{name}: one id per stream");
                assert_eq!(c["provider"], kind, "{name}");
            }
        }
    }
    assert!(replayed >= 5, "{dir}: only {replayed} recordings");
}

/// A recorded Responses answer through `/v1/responses` to an OpenAI provider: passed through
/// natively, every event (up to the first terminal one) as recorded, in order, named by its
/// `event:` line, with no `[DONE]`.
async fn replay_response(
    http: &reqwest::Client,
    dp: &DataPlaneHandle,
    kind: &str,
    name: &str,
    stream: bool,
    recorded: &str,
) {
    let body = json!({"model": format!("{kind}:m"), "stream": stream, "input": "replay"});
    let r = http
        .post(dp.url("/v1/responses"))
        .bearer_auth(KEY)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{name}");
    let text = r.text().await.unwrap();
    if !stream {
        let answer: Value = serde_json::from_str(&text).unwrap();
        let recorded: Value = serde_json::from_str(recorded).unwrap();
        assert_eq!(answer["id"], recorded["id"], "{name}");
        assert_eq!(answer["output"], recorded["output"], "{name}");
        assert_eq!(answer["provider"], kind, "{name}");
        return;
    }
    let data = |sse: &str| -> Vec<Value> {
        sse.lines()
            .filter_map(|l| l.strip_prefix("data: "))
            .map(|d| serde_json::from_str(d).unwrap_or_else(|_| panic!("{name}: bad event {d}")))
            .collect()
    };
    let mut expected = Vec::new();
    for e in data(recorded) {
        let kind = e["type"].as_str().unwrap_or("").to_string();
        expected.push(e);
        if [
            "response.completed",
            "response.incomplete",
            "response.failed",
            "error",
        ]
        .contains(&kind.as_str())
        {
            break;
        }
    }
    let got = data(&text);
    assert!(!text.contains("[DONE]"), "{name}");
    assert_eq!(got, expected, "{name}: every event as recorded");
    let names: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("event: "))
        .collect();
    assert_eq!(names.len(), got.len(), "{name}");
    assert!(
        got.iter().zip(&names).all(|(e, n)| e["type"] == *n),
        "{name}"
    );
}

#[tokio::test]
async fn openai_recordings_replay_end_to_end() {
    replay_all(Protocol::OpenAi, "openai", "openai").await;
}

#[tokio::test]
async fn anthropic_recordings_replay_end_to_end() {
    replay_all(Protocol::Anthropic, "anthropic", "anthropic").await;
}

#[tokio::test]
async fn gemini_recordings_replay_end_to_end() {
    replay_all(Protocol::Gemini, "gemini", "gemini").await;
}

#[tokio::test]
async fn mistral_recordings_replay_end_to_end() {
    replay_all(Protocol::Mistral, "mistral", "mistral").await;
}

#[tokio::test]
async fn deepseek_recordings_replay_end_to_end() {
    replay_all(Protocol::DeepSeek, "deepseek", "deepseek").await;
}
