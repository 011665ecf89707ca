//! The `stream_filter` property: a card planted in any streamed text never gets past the
//! firewall's stream filter.

use tokenrouter_data_plane::hot_path::providers::{self, Flow, Protocol, StreamTranslator};
use tokenrouter_data_plane::hot_path::sse::SseEvent;

use crate::{Rng, Verdict, check_object, ctx};

/// The card planted in every `stream_filter` input.
pub const PLANTED_CARD: &str = "4111 1111 1111 1111";

/// `stream_filter`: the input's text with a card planted in the middle, streamed as OpenAI chunks
/// cut at pseudo-random character boundaries through the provider's translator and the firewall's
/// stream filter (mask, then block): never panics, every chunk out is a JSON object, and the card
/// never reaches the client; a block ends with `finish_reason: "content_filter"`.
pub fn stream_filter(data: &[u8], split_seed: u64) -> Verdict {
    use std::sync::{Arc, Mutex};
    use tokenrouter_data_plane::hot_path::firewall::{Audit, FilteredStream, Firewall};
    use tokenrouter_proto::v1::FirewallRule;

    let text = String::from_utf8_lossy(data);
    let mut mid = text.len() / 2;
    while !text.is_char_boundary(mid) {
        mid -= 1;
    }
    let planted = format!("{} (card: {PLANTED_CARD}.) {}", &text[..mid], &text[mid..]);
    let mut rng = Rng::new(split_seed);
    let mut cuts = vec![0];
    let mut at = 0;
    while at < planted.len() {
        at = (at + 1 + rng.below(24)).min(planted.len());
        while !planted.is_char_boundary(at) {
            at += 1;
        }
        cuts.push(at);
    }
    for action in ["mask", "block"] {
        let rule = FirewallRule {
            name: "f".into(),
            detectors: vec!["credit_card".into(), "email".into()],
            action: action.into(),
            direction: "output".into(),
            ..Default::default()
        };
        let fw = Firewall::compile(&[rule]).map_err(|e| e.to_string())?;
        let inner = providers::stream_translator(Protocol::OpenAi, ctx());
        let mut stream = FilteredStream::new(
            inner,
            Arc::new(fw),
            vec![true],
            Arc::new(Mutex::new(Audit::default())),
        );
        let chunk = |delta: serde_json::Value, finish: serde_json::Value| {
            serde_json::json!({"id": "chatcmpl-x", "object": "chat.completion.chunk", "created": 1,
                "model": "m", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
            .to_string()
        };
        let mut events: Vec<String> = cuts
            .windows(2)
            .map(|w| {
                chunk(
                    serde_json::json!({"content": &planted[w[0]..w[1]]}),
                    serde_json::Value::Null,
                )
            })
            .collect();
        events.push(chunk(serde_json::json!({}), serde_json::json!("stop")));
        events.push("[DONE]".into());
        let mut out = Vec::new();
        for data in events {
            let flow = stream
                .event(SseEvent { event: None, data }, &mut out)
                .map_err(|e| format!("{e:?}"))?;
            if flow == Flow::Done {
                break;
            }
        }
        let mut client = String::new();
        let mut finish = String::new();
        for c in &out {
            check_object("a filtered chunk", c.as_bytes())?;
            let v: serde_json::Value = serde_json::from_str(c).map_err(|e| e.to_string())?;
            for choice in v["choices"].as_array().into_iter().flatten() {
                client.push_str(choice["delta"]["content"].as_str().unwrap_or(""));
                if let Some(f) = choice["finish_reason"].as_str() {
                    finish = f.to_string();
                }
            }
        }
        if client.contains(PLANTED_CARD) {
            return Err(format!("{action}: the planted card reached the client"));
        }
        if action == "block" && finish != "content_filter" {
            return Err(format!("block: ended with {finish:?}, not content_filter"));
        }
    }
    Ok(())
}
