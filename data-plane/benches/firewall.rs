//! What the firewall costs (criterion; `cargo bench -p tokenrouter-data-plane --bench firewall`,
//! never part of the test command): the input check with every built-in detector on 1 KiB and
//! 32 KiB prompts, beside parsing the same request without it; and a 200-chunk stream through the
//! OpenAI translator with and without the stream filter.

use std::hint::black_box;
use std::sync::{Arc, Mutex};

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;
use tokenrouter_data_plane::firewall::{self, Audit, Firewall};
use tokenrouter_data_plane::hot_path::firewall::FilteredStream;
use tokenrouter_data_plane::hot_path::providers::{
    self, Flow, Protocol, ReasoningCache, ResponseCtx, StreamTranslator,
};
use tokenrouter_data_plane::hot_path::request;
use tokenrouter_data_plane::hot_path::sse::SseEvent;
use tokenrouter_proto::v1::FirewallRule;
use tokenrouter_proto::validate::FIREWALL_DETECTORS;

/// Ordinary prose with numbers, dates, versions and ids in it (what detectors must look at and
/// let pass), and no secret: the common case.
const PROSE: &str = "On 2024-03-15 the team shipped version 4.2.1 of the billing service to 3 \
    regions; order 1234567 was reprocessed, latency fell from 180 ms to 95 ms, and ticket \
    OPS-8812 tracks the follow-up. Please summarise the incident for the weekly report. ";

fn prompt(bytes: usize) -> Vec<u8> {
    let text: String = PROSE.chars().cycle().take(bytes).collect();
    json!({"model": "gpt-4o-mini", "messages": [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": text},
    ]})
    .to_string()
    .into_bytes()
}

fn all_detectors(action: &str, direction: &str) -> Firewall {
    Firewall::compile(&[FirewallRule {
        name: "everything".into(),
        detectors: FIREWALL_DETECTORS.iter().map(|d| d.to_string()).collect(),
        action: action.into(),
        direction: direction.into(),
        ..Default::default()
    }])
    .expect("compile")
}

fn input(c: &mut Criterion) {
    let fw = all_detectors("mask", "input");
    for (label, size) in [("1 KiB", 1024), ("32 KiB", 32 * 1024)] {
        let body = prompt(size);
        c.bench_function(&format!("parse, {label} prompt, no firewall"), |b| {
            b.iter(|| black_box(request::parse(black_box(&body)).expect("parse")))
        });
        c.bench_function(
            &format!("parse + firewall input, {label} prompt, every detector"),
            |b| {
                b.iter(|| {
                    let mut req = request::parse(black_box(&body)).expect("parse");
                    let mut audit = Audit::default();
                    firewall::input::check(&fw, "k", "gpt-4o-mini", &mut req.body, &mut audit)
                        .expect("passes");
                    black_box(req)
                })
            },
        );
    }
}

fn ctx() -> ResponseCtx {
    ResponseCtx {
        id: "chatcmpl-bench".into(),
        created: 1_700_000_000,
        model: "gpt-4o-mini".into(),
        include_usage: false,
        cache: Arc::new(ReasoningCache::default()),
    }
}

fn events() -> Vec<String> {
    let words: Vec<&str> = PROSE.split_inclusive(' ').collect();
    let mut out: Vec<String> = (0..200)
        .map(|i| {
            json!({"id": "chatcmpl-x", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini",
                "choices": [{"index": 0, "delta": {"content": words[i % words.len()]}, "finish_reason": null}]})
            .to_string()
        })
        .collect();
    out.push(
        json!({"id": "chatcmpl-x", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini",
            "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        .to_string(),
    );
    out.push("[DONE]".into());
    out
}

fn drive(mut t: Box<dyn StreamTranslator>, events: &[String]) -> usize {
    let mut out = Vec::new();
    for data in events {
        let e = SseEvent {
            event: None,
            data: data.clone(),
        };
        if t.event(e, &mut out).expect("event") == Flow::Done {
            break;
        }
    }
    out.len()
}

fn stream(c: &mut Criterion) {
    let fw = Arc::new(all_detectors("mask", "output"));
    let events = events();
    c.bench_function("stream, 200 chunks, no firewall", |b| {
        b.iter(|| {
            black_box(drive(
                providers::stream_translator(Protocol::OpenAi, ctx()),
                &events,
            ))
        })
    });
    c.bench_function("stream, 200 chunks, firewall output, every detector", |b| {
        b.iter(|| {
            let inner = providers::stream_translator(Protocol::OpenAi, ctx());
            let filtered = FilteredStream::new(
                inner,
                fw.clone(),
                vec![true],
                Arc::new(Mutex::new(Audit::default())),
            );
            black_box(drive(Box::new(filtered), &events))
        })
    });
}

criterion_group!(benches, input, stream);
criterion_main!(benches);
