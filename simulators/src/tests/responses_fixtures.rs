//! Responses API conformance against recorded OpenAI traffic (`fixtures/openai/vercel-ai__*`):
//! the simulator's streams have the recorded event sequence and carry every field the recorded
//! events carry; its plain body and its `response.failed` carry every recorded field.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use super::responses::{create, events, weather_tools};
use super::*;
use crate::Fault;

const TEXT_STREAM: &str =
    include_str!("../../../fixtures/openai/vercel-ai__openai-pdf-input-file.1.chunks.txt");
const TEXT_BODY: &str =
    include_str!("../../../fixtures/openai/vercel-ai__openai-pdf-input-file.1.json");
const REASONING_STREAMS: &str = include_str!(
    "../../../fixtures/openai/vercel-ai__openai-reasoning-encrypted-content.1.chunks.txt"
);
const FAILED_STREAM: &str =
    include_str!("../../../fixtures/openai/vercel-ai__openai-error.1.chunks.txt");

/// The recorded streams of a chunk file (some files hold several, one after the other).
fn recorded_streams(text: &str) -> Vec<Vec<Value>> {
    let mut streams = vec![Vec::new()];
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let event: Value = serde_json::from_str(line).unwrap();
        if event["type"] == "response.created" && !streams[streams.len() - 1].is_empty() {
            streams.push(Vec::new());
        }
        streams.last_mut().unwrap().push(event);
    }
    streams
}

/// An event's type, with the item type for `output_item` events.
fn label(event: &Value) -> String {
    let kind = event["type"].as_str().unwrap().to_string();
    match event["item"]["type"].as_str() {
        Some(item) => format!("{kind}({item})"),
        None => kind,
    }
}

/// The event labels with runs of the same label (delta events) collapsed to one.
fn shape(events: &[Value]) -> Vec<String> {
    let mut labels: Vec<String> = events.iter().map(label).collect();
    labels.dedup();
    labels
}

/// Every field path in `value` (`a.b`, arrays as `a[]`), leaving out what echoes the request's
/// own tool definitions.
fn paths(value: &Value, at: &str, out: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                let here = format!("{at}.{key}");
                out.insert(here.clone());
                if key != "tools" {
                    paths(inner, &here, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| paths(i, &format!("{at}[]"), out)),
        _ => {}
    }
}

/// Field paths per event label, over all events with that label.
fn fields_by_label(events: &[Value]) -> BTreeMap<String, BTreeSet<String>> {
    let mut fields: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for event in events {
        paths(event, "", fields.entry(label(event)).or_default());
    }
    fields
}

/// Asserts the recorded and simulated streams have the same shape, and that every field the
/// recording's events carry is in the simulator's events of the same label.
fn assert_conforms(recorded: &[Value], ours: &[Value]) {
    assert_eq!(shape(ours), shape(recorded), "event sequence");
    let ours = fields_by_label(ours);
    for (label, recorded) in fields_by_label(recorded) {
        let missing: Vec<&String> = recorded.difference(&ours[&label]).collect();
        assert!(missing.is_empty(), "{label} lacks {missing:?}");
    }
}

#[tokio::test]
async fn text_stream_has_the_recorded_events_and_fields() {
    let recorded = &recorded_streams(TEXT_STREAM)[0];
    let sim = start(Protocol::OpenAi).await;
    let ours = events(
        &sim,
        &json!({"model": "gpt-4.1-nano", "input": "hello there world", "stream": true}),
    )
    .await;
    assert_conforms(recorded, &ours);
    // Field order too: `type` first, as in the recording's data lines.
    assert!(
        TEXT_STREAM
            .lines()
            .all(|line| line.starts_with("{\"type\":"))
    );
}

#[tokio::test]
async fn reasoning_then_call_stream_has_the_recorded_events_and_fields() {
    let streams = recorded_streams(REASONING_STREAMS);
    let sim = start(Protocol::OpenAi).await;
    // The recording's first answer: a reasoning item with a summary and encrypted content, then
    // a function call.
    let request = json!({"model": "gpt-5.1-codex-max", "stream": true, "store": false,
        "input": "what is 12 plus 7?", "tools": weather_tools(),
        "reasoning": {"effort": "high", "summary": "detailed"},
        "include": ["reasoning.encrypted_content"]});
    let ours = events(&sim, &request).await;
    assert_conforms(&streams[0], &ours);
    // Its second answer: a function call alone.
    let request = json!({"model": "gpt-4.1", "stream": true, "input": "what is 19 times 3?",
        "tools": weather_tools()});
    assert_conforms(&streams[1], &events(&sim, &request).await);
    // Its last answer: text after the tool results.
    let last = streams.last().unwrap();
    let request = json!({"model": "gpt-4.1", "stream": true, "input": "the result?"});
    assert_conforms(last, &events(&sim, &request).await);
}

#[tokio::test]
async fn plain_body_has_every_recorded_field() {
    let recorded: Value = serde_json::from_str(TEXT_BODY).unwrap();
    let sim = start(Protocol::OpenAi).await;
    let (status, ours) = create(&sim, &json!({"model": "gpt-4.1-nano", "input": "hi"})).await;
    assert_eq!(status, 200);
    let (mut want, mut have) = (BTreeSet::new(), BTreeSet::new());
    paths(&recorded, "", &mut want);
    paths(&ours, "", &mut have);
    let missing: Vec<&String> = want.difference(&have).collect();
    assert!(missing.is_empty(), "body lacks {missing:?}");
    let top = |v: &Value| {
        v.as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect::<BTreeSet<_>>()
    };
    assert!(top(&recorded).is_subset(&top(&ours)));
}

#[tokio::test]
async fn failed_stream_carries_the_recorded_failure_fields() {
    let recorded = &recorded_streams(FAILED_STREAM)[0];
    let sim = start(Protocol::OpenAi).await;
    sim.push_fault(Fault::ErrorAfterChunks(2));
    let ours = events(
        &sim,
        &json!({"model": "gpt-5-nano", "input": "hi", "stream": true}),
    )
    .await;
    let labels: Vec<String> = ours.iter().map(label).collect();
    assert_eq!(
        labels,
        [
            "response.created",
            "response.in_progress",
            "response.failed"
        ]
    );
    let recorded_failed = recorded.iter().find(|e| e["type"] == "response.failed");
    let (mut want, mut have) = (BTreeSet::new(), BTreeSet::new());
    paths(recorded_failed.unwrap(), "", &mut want);
    paths(&ours[2], "", &mut have);
    let missing: Vec<&String> = want.difference(&have).collect();
    assert!(missing.is_empty(), "response.failed lacks {missing:?}");
    let failed = &ours[2]["response"];
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["error"]["code"], "server_error");
    assert_eq!(failed["id"], ours[0]["response"]["id"]);
}

#[tokio::test]
async fn recorded_stream_replays_with_its_event_lines() {
    let lines: Vec<String> = TEXT_STREAM.lines().map(str::to_string).collect();
    let sim = start(Protocol::OpenAi).await;
    sim.push_fault(Fault::Replay(crate::Recording::from_response_chunks(
        &lines,
    )));
    let text = post(
        &sim,
        "/responses",
        &json!({"model": "gpt-4.1-nano", "input": "x"}),
    )
    .await
    .text()
    .await
    .unwrap();
    let replayed = parse_sse(&text, "\n\n");
    assert_eq!(replayed.len(), lines.len());
    for (event, line) in replayed.iter().zip(&lines) {
        assert_eq!(&event.data, line);
        assert_eq!(event.name.as_deref(), event.json()["type"].as_str());
    }
}
