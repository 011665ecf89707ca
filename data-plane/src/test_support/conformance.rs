//! Test support for the OpenAI-protocol dialects: what a stream of OpenAI chunks adds up to
//! (checked strictly: every tool-call fragment has an `index`, `content` is never an array),
//! stream splitting that stays fast on 100 KB recordings, and requests run through parsing and
//! the adapter as the gateway would.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::providers::{Protocol, RequestCtx, build};
use crate::test_support::fixtures::{assert_split_invariant, replay, replay_pieces};

/// One tool call of a stream, fragments joined.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Call {
    pub id: String,
    pub kind: String,
    pub name: String,
    pub arguments: String,
}

/// Token counts of a stream: prompt, completion, total, cached prompt, reasoning.
pub type Tokens = (u64, u64, u64, u64, u64);

/// What the first choice of a stream says, all chunks taken together.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    pub content: String,
    pub reasoning: String,
    /// By `index`.
    pub calls: BTreeMap<u64, Call>,
    pub finish: Vec<String>,
    pub usage: Option<Tokens>,
}

/// The counts in an OpenAI (or DeepSeek) `usage` object.
pub fn tokens(u: &Value) -> Tokens {
    let n = |v: &Value| v.as_u64().unwrap_or(0);
    let cached = u["prompt_tokens_details"]["cached_tokens"]
        .as_u64()
        .or(u["prompt_cache_hit_tokens"].as_u64())
        .unwrap_or(0);
    (
        n(&u["prompt_tokens"]),
        n(&u["completion_tokens"]),
        n(&u["total_tokens"]),
        cached,
        n(&u["completion_tokens_details"]["reasoning_tokens"]),
    )
}

/// Adds up OpenAI chunks, asserting the shape OpenAI clients rely on.
pub fn summarize(chunks: &[Value]) -> Summary {
    let mut s = Summary::default();
    for chunk in chunks {
        if chunk["usage"].is_object() {
            s.usage = Some(tokens(&chunk["usage"]));
        }
        let Some(choice) = chunk["choices"].as_array().and_then(|c| c.first()) else {
            continue;
        };
        let delta = &choice["delta"];
        assert!(
            delta["content"].is_null() || delta["content"].is_string(),
            "content must be a string: {chunk}"
        );
        s.content.push_str(delta["content"].as_str().unwrap_or(""));
        s.reasoning
            .push_str(delta["reasoning_content"].as_str().unwrap_or(""));
        for call in delta["tool_calls"].as_array().into_iter().flatten() {
            let index = call["index"]
                .as_u64()
                .unwrap_or_else(|| panic!("tool call without index: {chunk}"));
            let first = !s.calls.contains_key(&index);
            let c = s.calls.entry(index).or_default();
            if first {
                assert_eq!(
                    call["type"], "function",
                    "first fragment has a type: {chunk}"
                );
                assert!(call["id"].is_string(), "first fragment has an id: {chunk}");
            }
            if let Some(id) = call["id"].as_str() {
                c.id = id.into();
            }
            if let Some(kind) = call["type"].as_str() {
                c.kind = kind.into();
            }
            if let Some(name) = call["function"]["name"].as_str() {
                c.name.push_str(name);
            }
            c.arguments
                .push_str(call["function"]["arguments"].as_str().unwrap_or(""));
        }
        if let Some(f) = choice["finish_reason"].as_str() {
            s.finish.push(f.into());
        }
    }
    s
}

/// Split invariance: at every byte for small streams; for big ones (debug builds make a replay
/// of a 100 KB stream cost milliseconds), in pieces of several sizes (1 byte at a time puts a
/// boundary everywhere at once), at every byte of the first 100 and at a hundred points through
/// the rest.
pub fn assert_splits(protocol: Protocol, bytes: &[u8]) {
    for include_usage in [true, false] {
        if bytes.len() <= 12_000 {
            assert_split_invariant(protocol, bytes, include_usage);
            continue;
        }
        let whole = replay(protocol, bytes, include_usage);
        for size in [1, 2, 3, 7, 64, 1000] {
            let pieces: Vec<&[u8]> = bytes.chunks(size).collect();
            assert_eq!(
                replay_pieces(protocol, &pieces, include_usage),
                whole,
                "pieces of {size}"
            );
        }
        if !include_usage {
            continue;
        }
        let stride = bytes.len() / 100;
        for at in (1..100).chain((100..bytes.len()).step_by(stride)) {
            let split = replay_pieces(protocol, &[&bytes[..at], &bytes[at..]], include_usage);
            assert_eq!(split, whole, "split at byte {at}");
        }
    }
}

/// Runs a client body through request parsing and the adapter; the upstream body and the
/// dropped fields.
pub fn built(protocol: Protocol, client: &Value, model: &str) -> (Value, Vec<String>) {
    let request = crate::request::parse(client.to_string().as_bytes()).expect("valid request");
    let call = build(
        protocol,
        &RequestCtx {
            body: &request.body,
            model,
            stream: request.stream,
            cache: &crate::test_support::fixtures::cache(),
        },
    )
    .expect("request accepted");
    (
        serde_json::from_slice(&call.body).expect("JSON body"),
        call.dropped,
    )
}

/// The adapter's refusal of a client body.
pub fn refused(protocol: Protocol, client: &Value, model: &str) -> crate::error::ApiError {
    let request = crate::request::parse(client.to_string().as_bytes()).expect("valid request");
    build(
        protocol,
        &RequestCtx {
            body: &request.body,
            model,
            stream: request.stream,
            cache: &crate::test_support::fixtures::cache(),
        },
    )
    .expect_err("request refused")
}

/// `value` without its `null` fields, recursively (what an allow-list builder never sends).
pub fn without_nulls(value: &Value) -> Value {
    match value {
        Value::Object(o) => Value::Object(
            o.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), without_nulls(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(without_nulls).collect()),
        other => other.clone(),
    }
}

/// The JSON chunks of a raw recorded SSE stream (`[DONE]` and comments left out), decoded
/// independently of any translator.
pub fn sse_chunks(raw: &[u8]) -> Vec<Value> {
    let mut decoder = crate::upstream::sse::SseDecoder::new();
    let mut events = Vec::new();
    decoder.feed(raw, &mut events).expect("valid SSE");
    decoder.finish(&mut events).expect("valid SSE");
    events
        .iter()
        .filter(|e| e.data.trim() != "[DONE]")
        .map(|e| serde_json::from_str(&e.data).expect("JSON chunk"))
        .collect()
}

/// The JSON values of a `*.chunks.txt` recording.
pub fn lines(rel: &str) -> Vec<Value> {
    crate::test_support::fixtures::chunks(rel)
        .iter()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect()
}
