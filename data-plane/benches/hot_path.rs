//! Micro-benchmarks of the data plane's hot functions (criterion; `cargo bench -p
//! tokenrouter-data-plane`, never part of the test command): request parse and validation,
//! OpenAI passthrough and Anthropic translation per request and per stream chunk, routing with
//! 1,000 models and 10,000 rules, and compiling a snapshot with 10,000 rules.

use std::hint::black_box;

use axum::http::HeaderMap;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use serde_json::json;
use tokenrouter_data_plane::hot_path::providers::{
    self, Protocol, ReasoningCache, RequestCtx, ResponseCtx,
};
use tokenrouter_data_plane::hot_path::routing::{self as route, Availability, RouteCtx};
use tokenrouter_data_plane::hot_path::sse::SseDecoder;
use tokenrouter_data_plane::hot_path::{ClientCache, Extensions, KeyRt, Signals, request};
use tokenrouter_data_plane::{CompilePolicy, Runtime};
use tokenrouter_proto::content_hash;
use tokenrouter_proto::v1::{Credential, Provider, RoutingRule, Snapshot};

const PROMPT: &str = "Say hello. This is a benchmark request from the TokenRouter load generator, \
    measuring how much time and memory the gateway adds on top of a simulated upstream provider.";

fn request_body(stream: bool) -> Vec<u8> {
    json!({
        "model": "gpt-4o-mini", "stream": stream, "temperature": 0.7, "max_tokens": 256,
        "messages": [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": PROMPT},
        ],
    })
    .to_string()
    .into_bytes()
}

fn response_body() -> Vec<u8> {
    json!({
        "id": "chatcmpl-abc123", "object": "chat.completion", "created": 1_700_000_000,
        "model": "gpt-4o-mini", "system_fingerprint": "fp_simulated",
        "choices": [{"index": 0, "finish_reason": "stop", "logprobs": null,
            "message": {"role": "assistant", "content": format!("[simulated] You said: {PROMPT}"), "refusal": null}}],
        "usage": {"prompt_tokens": 40, "completion_tokens": 45, "total_tokens": 85},
    })
    .to_string()
    .into_bytes()
}

fn chunk_frame() -> Vec<u8> {
    let chunk = json!({
        "id": "chatcmpl-abc123", "object": "chat.completion.chunk", "created": 1_700_000_000,
        "model": "gpt-4o-mini", "system_fingerprint": "fp_simulated",
        "choices": [{"index": 0, "delta": {"content": " benchmark"}, "logprobs": null, "finish_reason": null}],
    });
    format!("data: {chunk}\n\n").into_bytes()
}

fn ctx() -> ResponseCtx {
    ResponseCtx {
        id: "chatcmpl-x".into(),
        created: 1_700_000_000,
        model: "gpt-4o-mini".into(),
        include_usage: false,
        cache: Default::default(),
    }
}

fn parse(c: &mut Criterion) {
    let body = request_body(false);
    c.bench_function("request::parse (2 messages, 4 params)", |b| {
        b.iter(|| request::parse(black_box(&body)).map(|r| r.stream))
    });
}

fn translate(c: &mut Criterion) {
    let body = request_body(false);
    let parsed = request::parse(&body).expect("valid request");
    let cache = ReasoningCache::default();
    let ext = Extensions::new("openai", "direct", "req_0123456789abcdef0123456789abcdef");
    c.bench_function("openai: build upstream request", |b| {
        b.iter(|| {
            let ctx = RequestCtx {
                body: &parsed.body,
                model: "gpt-4o-mini",
                stream: false,
                cache: &cache,
            };
            providers::build(Protocol::OpenAi, black_box(&ctx)).map(|call| call.body.len())
        })
    });
    let answer = response_body();
    let rctx = ctx();
    c.bench_function("openai: translate answer + splice extensions", |b| {
        b.iter(|| {
            let t = providers::translate_response(Protocol::OpenAi, black_box(&answer), &rctx)
                .expect("valid answer");
            let mut out = Vec::with_capacity(t.body.len() + 160);
            ext.splice_into(&t.body, 12, &mut out);
            out.len()
        })
    });
    let frame = chunk_frame();
    let mut translator = providers::stream_translator(Protocol::OpenAi, ctx());
    let mut decoder = SseDecoder::new();
    c.bench_function(
        "openai: stream chunk (SSE decode + translate + splice)",
        |b| {
            b.iter(|| {
                let mut events = Vec::new();
                let _ = decoder.feed(black_box(&frame), &mut events);
                let mut chunks = Vec::new();
                for event in events {
                    let _ = translator.event(event, &mut chunks);
                }
                let mut out = Vec::new();
                for chunk in &chunks {
                    out.extend_from_slice(b"data: ");
                    ext.splice_into(chunk.as_bytes(), 12, &mut out);
                    out.extend_from_slice(b"\n\n");
                }
                out.len()
            })
        },
    );
}

fn anthropic_answer() -> Vec<u8> {
    json!({
        "id": "msg_01abc", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
        "content": [{"type": "text", "text": format!("[simulated] You said: {PROMPT}")}],
        "stop_reason": "end_turn", "stop_sequence": null,
        "usage": {"input_tokens": 40, "output_tokens": 45},
    })
    .to_string()
    .into_bytes()
}

fn anthropic_event(kind: &str, data: serde_json::Value) -> Vec<u8> {
    format!("event: {kind}\ndata: {data}\n\n").into_bytes()
}

fn translate_anthropic(c: &mut Criterion) {
    let body = request_body(false);
    let parsed = request::parse(&body).expect("valid request");
    let cache = ReasoningCache::default();
    let ext = Extensions::new(
        "anthropic",
        "pinned",
        "req_0123456789abcdef0123456789abcdef",
    );
    c.bench_function("anthropic: build upstream request", |b| {
        b.iter(|| {
            let ctx = RequestCtx {
                body: &parsed.body,
                model: "claude-sonnet-4-5",
                stream: false,
                cache: &cache,
            };
            providers::build(Protocol::Anthropic, black_box(&ctx)).map(|call| call.body.len())
        })
    });
    let answer = anthropic_answer();
    let rctx = ctx();
    c.bench_function("anthropic: translate answer + splice extensions", |b| {
        b.iter(|| {
            let t = providers::translate_response(Protocol::Anthropic, black_box(&answer), &rctx)
                .expect("valid answer");
            let mut out = Vec::with_capacity(t.body.len() + 160);
            ext.splice_into(&t.body, 12, &mut out);
            out.len()
        })
    });
    let mut translator = providers::stream_translator(Protocol::Anthropic, ctx());
    let mut decoder = SseDecoder::new();
    let mut primed = Vec::new();
    let head = [
        anthropic_event(
            "message_start",
            json!({"type": "message_start", "message": {"id": "msg_01abc",
            "model": "claude-sonnet-4-5", "content": [], "usage": {"input_tokens": 40, "output_tokens": 1}}}),
        ),
        anthropic_event(
            "content_block_start",
            json!({"type": "content_block_start", "index": 0,
            "content_block": {"type": "text", "text": ""}}),
        ),
    ];
    for frame in &head {
        let mut events = Vec::new();
        let _ = decoder.feed(frame, &mut events);
        for event in events {
            let _ = translator.event(event, &mut primed);
        }
    }
    let frame = anthropic_event(
        "content_block_delta",
        json!({"type": "content_block_delta", "index": 0,
        "delta": {"type": "text_delta", "text": " benchmark"}}),
    );
    c.bench_function(
        "anthropic: stream chunk (SSE decode + translate + splice)",
        |b| {
            b.iter(|| {
                let mut events = Vec::new();
                let _ = decoder.feed(black_box(&frame), &mut events);
                let mut chunks = Vec::new();
                for event in events {
                    let _ = translator.event(event, &mut chunks);
                }
                let mut out = Vec::new();
                for chunk in &chunks {
                    out.extend_from_slice(b"data: ");
                    ext.splice_into(chunk.as_bytes(), 12, &mut out);
                    out.extend_from_slice(b"\n\n");
                }
                out.len()
            })
        },
    );
}

/// 10 providers serving 1,000 models between them, and `rules` routing rules that match none of
/// the benchmarked model names.
fn big_snapshot(rules: usize) -> Snapshot {
    let providers: Vec<Provider> = (0..10)
        .map(|p| Provider {
            name: format!("provider-{p}"),
            kind: "openai".into(),
            base_url: format!("https://p{p}.example.com/v1"),
            models: (0..100).map(|m| format!("model-{p}-{m}")).collect(),
            ..Default::default()
        })
        .collect();
    let credentials = (0..10)
        .map(|p| Credential {
            name: format!("key-{p}"),
            provider: format!("provider-{p}"),
            secret: format!("sk-secret-{p}"),
        })
        .collect();
    let routing_rules = (0..rules)
        .map(|r| RoutingRule {
            name: format!("rule-{r}"),
            priority: r as i32,
            match_model: format!("team-{r}-*"),
            target_provider: format!("provider-{}", r % 10),
            ..Default::default()
        })
        .collect();
    let mut s = Snapshot {
        version: 1,
        epoch: "bench".into(),
        providers,
        credentials,
        routing_rules,
        ..Default::default()
    };
    s.content_hash = content_hash(&s);
    s
}

fn routing(c: &mut Criterion) {
    let clients = ClientCache::default();
    let rt = Runtime::compile(&big_snapshot(10_000), CompilePolicy::default(), &clients)
        .expect("valid snapshot");
    let signals = Signals::default();
    let key = KeyRt {
        name: "bench".into(),
        disabled: false,
        allowed_models: Vec::new(),
        limits: None,
        log_bodies: false,
    };
    let headers = HeaderMap::new();
    let cases = [
        ("none match (catalog hit)", "model-7-42"),
        ("first matches", "team-0-gpt"),
        ("none match, pinned provider:model", "provider-3:model-3-1"),
    ];
    for (what, model) in cases {
        let mut body = request_body(false);
        body = String::from_utf8_lossy(&body)
            .replace("gpt-4o-mini", model)
            .into_bytes();
        let request = request::parse(&body).expect("valid request");
        let available = Availability::default().view();
        let ctx = RouteCtx {
            rt: &rt,
            signals: &signals,
            key: &key,
            headers: &headers,
            request: &request,
            available: &available,
        };
        c.bench_function(&format!("route::resolve, 10,000 rules, {what}"), |b| {
            b.iter(|| route::resolve(black_box(&ctx)).map(|p| p.attempts.len()))
        });
    }
}

/// Authenticating a request's key among 1,000: hashing it as every request used to, against the
/// snapshot's lookup of a key it has already seen.
fn authenticate(c: &mut Criterion) {
    use sha2::{Digest, Sha256};
    let presented: Vec<String> = (0..1_000)
        .map(|i| format!("sk-tr-bench-{i:04}-0123456789abcdef0123456789abcdef"))
        .collect();
    let mut s = big_snapshot(0);
    s.api_keys = presented
        .iter()
        .enumerate()
        .map(|(i, k)| tokenrouter_proto::v1::ApiKey {
            name: format!("key-{i}"),
            sha256: hex::encode(Sha256::digest(k.as_bytes())),
            ..Default::default()
        })
        .collect();
    s.content_hash = content_hash(&s);
    let rt = Runtime::compile(&s, CompilePolicy::default(), &ClientCache::default())
        .expect("valid snapshot");
    let by_digest: std::collections::HashMap<[u8; 32], usize> = presented
        .iter()
        .enumerate()
        .map(|(i, k)| (Sha256::digest(k.as_bytes()).into(), i))
        .collect();
    let key = &presented[421];
    c.bench_function("authenticate, 1,000 keys: SHA-256 then map (before)", |b| {
        b.iter(|| {
            let digest: [u8; 32] = Sha256::digest(black_box(key).as_bytes()).into();
            by_digest.get(&digest).copied()
        })
    });
    assert!(rt.api_keys.find(key).is_some());
    c.bench_function("authenticate, 1,000 keys: ApiKeys::find, key seen", |b| {
        b.iter(|| rt.api_keys.find(black_box(key)).map(|k| k.disabled))
    });
}

fn compile(c: &mut Criterion) {
    let snapshot = big_snapshot(10_000);
    let clients = ClientCache::default();
    let mut group = c.benchmark_group("snapshot");
    group.sample_size(10);
    group.bench_function("Runtime::compile, 10,000 rules, 1,000 models", |b| {
        b.iter_batched(
            || snapshot.clone(),
            |s| Runtime::compile(&s, CompilePolicy::default(), &clients).map(|rt| rt.rules.len()),
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(
    benches,
    parse,
    translate,
    translate_anthropic,
    routing,
    authenticate,
    compile
);
criterion_main!(benches);
