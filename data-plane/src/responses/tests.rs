//! Responses answers built from chat ones: whole answers, translated streams (one id, ordered
//! sequence numbers, items opened and closed, usage, failure), and the native pass-through.

use std::sync::Arc;

use serde_json::{Value, json};

use super::answer::{for_client, from_chat};
use super::native::NativeStream;
use super::stream::ResponsesStream;
use crate::error::ApiError;
use crate::providers::{Protocol, ResponseCtx, stream_translator};
use crate::request::responses::{
    ResponsesCall, encode_state, input_items, into_request, parse_responses,
};
use crate::telemetry::usage::Usage;
use crate::upstream::relay::{Flow, StreamTranslator};
use crate::upstream::sse::SseEvent;

fn call(body: Value) -> Arc<ResponsesCall> {
    let bytes = serde_json::to_vec(&body).unwrap();
    let native = parse_responses(&bytes).unwrap();
    let input = input_items(&native);
    into_request(native, input, None, bytes.len())
        .unwrap()
        .responses
        .unwrap()
}

fn data(d: &str) -> SseEvent {
    SseEvent {
        event: None,
        data: d.into(),
    }
}

fn events(out: &[String]) -> Vec<Value> {
    out.iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect()
}

#[test]
fn a_completion_with_reasoning_and_calls_becomes_items() {
    let blocks = json!([{"type": "thinking", "thinking": "hmm", "signature": "s1"}]);
    let chat = json!({
        "id": "chatcmpl-1", "object": "chat.completion", "model": "claude-x",
        "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
            "role": "assistant", "content": "Let me look.", "reasoning_content": "hmm", "thinking_blocks": blocks,
            "tool_calls": [{"id": "toolu_1", "type": "function", "function": {"name": "get", "arguments": "{\"c\":1}"}}]}}],
    });
    let usage = Usage {
        prompt_tokens: 10,
        completion_tokens: 5,
        cached_tokens: 2,
        reasoning_tokens: 3,
    };
    let c =
        call(json!({"model": "claude", "input": "hi", "instructions": "sys", "temperature": 0.5}));
    let stored = from_chat(chat.to_string().as_bytes(), &c, "resp_1", 7, Some(&usage)).unwrap();
    assert_eq!(stored["id"], "resp_1");
    assert_eq!(stored["status"], "completed");
    assert_eq!(stored["model"], "claude-x");
    assert_eq!(stored["instructions"], "sys");
    assert_eq!(stored["temperature"], 0.5);
    let output = stored["output"].as_array().unwrap();
    assert_eq!(output.len(), 3);
    assert_eq!(output[0]["type"], "reasoning");
    assert_eq!(output[0]["summary"][0]["text"], "hmm");
    assert_eq!(
        output[0]["encrypted_content"],
        encode_state(Some(&blocks), &serde_json::Map::new()).unwrap()
    );
    assert_eq!(output[1]["content"][0]["text"], "Let me look.");
    assert_eq!(output[2]["call_id"], "toolu_1");
    assert_eq!(output[2]["arguments"], "{\"c\":1}");
    assert_eq!(
        stored["usage"],
        json!({"input_tokens": 10, "input_tokens_details": {"cached_tokens": 2}, "output_tokens": 5, "output_tokens_details": {"reasoning_tokens": 3}, "total_tokens": 15})
    );
    let client = for_client(&stored, false);
    assert!(
        client["output"][0].get("encrypted_content").is_none(),
        "only when `include` asks"
    );
    assert_eq!(
        for_client(&stored, true)["output"][0]["encrypted_content"],
        output[0]["encrypted_content"]
    );

    let cut = json!({"model": "m", "choices": [{"finish_reason": "length", "message": {"content": "par"}}]});
    let r = from_chat(cut.to_string().as_bytes(), &c, "resp_2", 7, None).unwrap();
    assert_eq!(r["status"], "incomplete");
    assert_eq!(
        r["incomplete_details"],
        json!({"reason": "max_output_tokens"})
    );
}

fn translated(chunks: &[&str]) -> (Vec<Value>, Result<Flow, crate::error::UpstreamError>) {
    let ctx = ResponseCtx {
        id: "chatcmpl-t".into(),
        created: 1,
        model: "m".into(),
        include_usage: true,
        cache: Default::default(),
    };
    let inner = stream_translator(Protocol::OpenAi, ctx);
    let mut s = ResponsesStream::new(
        inner,
        call(json!({"model": "m", "input": "hi", "stream": true})),
        None,
        5,
        "m",
    );
    let mut out = Vec::new();
    let mut flow = Ok(Flow::More);
    for c in chunks {
        flow = s.event(data(c), &mut out);
    }
    (events(&out), flow)
}

fn check_sequence(events: &[Value]) -> String {
    let id = events[0]["response"]["id"].as_str().unwrap().to_string();
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e["sequence_number"], i as u64, "{e}");
        if let Some(r) = e.get("response") {
            assert_eq!(r["id"], id.as_str(), "one response id across all events");
        }
    }
    id
}

#[test]
fn a_text_stream_is_the_responses_event_sequence() {
    let (ev, flow) = translated(&[
        r#"{"id":"c","object":"chat.completion.chunk","model":"m-1","choices":[{"index":0,"delta":{"role":"assistant","content":"Hel"}}]}"#,
        r#"{"id":"c","object":"chat.completion.chunk","model":"m-1","choices":[{"index":0,"delta":{"content":"lo"},"finish_reason":"stop"}]}"#,
        r#"{"id":"c","object":"chat.completion.chunk","model":"m-1","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}"#,
        "[DONE]",
    ]);
    assert_eq!(flow, Ok(Flow::Done));
    let kinds: Vec<&str> = ev.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.completed",
        ]
    );
    check_sequence(&ev);
    let done = &ev[9]["response"];
    assert_eq!(done["status"], "completed");
    assert_eq!(done["model"], "m-1");
    assert_eq!(done["output"][0]["content"][0]["text"], "Hello");
    assert_eq!(done["usage"]["total_tokens"], 5);
    assert_eq!(ev[4]["item_id"], ev[2]["item"]["id"]);
}

#[test]
fn a_tool_call_stream_has_argument_deltas() {
    let (ev, _) = translated(&[
        r#"{"id":"c","model":"m","choices":[{"index":0,"delta":{"role":"assistant","tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"get","arguments":""}}]}}]}"#,
        r#"{"id":"c","model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"c\""}}]}}]}"#,
        r#"{"id":"c","model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":":1}"}}]},"finish_reason":"tool_calls"}]}"#,
        "[DONE]",
    ]);
    let kinds: Vec<&str> = ev.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds[2..],
        [
            "response.output_item.added",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.done",
            "response.output_item.done",
            "response.completed",
        ]
    );
    assert_eq!(ev[5]["arguments"], "{\"c\":1}");
    let item = &ev[7]["response"]["output"][0];
    assert_eq!(
        (
            item["call_id"].as_str(),
            item["name"].as_str(),
            item["status"].as_str()
        ),
        (Some("call_1"), Some("get"), Some("completed"))
    );
}

#[test]
fn a_broken_stream_ends_in_response_failed() {
    let ctx = ResponseCtx {
        id: "chatcmpl-t".into(),
        created: 1,
        model: "m".into(),
        include_usage: true,
        cache: Default::default(),
    };
    let mut s = ResponsesStream::new(
        stream_translator(Protocol::OpenAi, ctx),
        call(json!({"model": "m", "input": "hi"})),
        None,
        5,
        "m",
    );
    let mut out = Vec::new();
    s.event(
        data(r#"{"id":"c","model":"m","choices":[{"index":0,"delta":{"content":"Hi"}}]}"#),
        &mut out,
    )
    .unwrap();
    assert!(s.failed(
        &ApiError::bad_gateway("upstream_error", "the stream broke"),
        &mut out
    ));
    let ev = events(&out);
    check_sequence(&ev);
    let last = ev.last().unwrap();
    assert_eq!(last["type"], "response.failed");
    assert_eq!(last["response"]["status"], "failed");
    assert_eq!(last["response"]["error"]["code"], "upstream_error");
    assert_eq!(
        last["response"]["output"][0]["content"][0]["text"], "Hi",
        "what was sent is kept"
    );
}

#[test]
fn a_native_stream_passes_through_and_reads_usage() {
    let mut s = NativeStream::new(call(json!({"model": "m", "input": "hi"})), None);
    let mut out = Vec::new();
    assert_eq!(
        s.event(
            data(r#"{"type":"response.created","sequence_number":0,"response":{"id":"resp_9"}}"#),
            &mut out
        ),
        Ok(Flow::More)
    );
    let done = r#"{"type":"response.completed","sequence_number":1,"response":{"id":"resp_9","usage":{"input_tokens":4,"output_tokens":6,"output_tokens_details":{"reasoning_tokens":2}}}}"#;
    assert_eq!(s.event(data(done), &mut out), Ok(Flow::Done));
    assert_eq!(out[1], done, "passed on byte for byte");
    assert_eq!(
        s.usage(),
        Some(Usage {
            prompt_tokens: 4,
            completion_tokens: 6,
            cached_tokens: 0,
            reasoning_tokens: 2
        })
    );
    let mut cut = NativeStream::new(call(json!({"model": "m", "input": "hi"})), None);
    assert!(
        cut.end(&mut out).is_err(),
        "a stream without its terminal event is broken"
    );
}

#[test]
fn events_put_type_and_sequence_first() {
    assert_eq!(
        super::object::event("response.x", 3, &json!({"a": 1})),
        r#"{"type":"response.x","sequence_number":3,"a":1}"#
    );
    assert_eq!(
        super::object::event("e", 0, &json!({})),
        r#"{"type":"e","sequence_number":0}"#
    );
}

#[test]
fn gemini_signatures_ride_in_encrypted_content() {
    let chat = json!({"model": "gemini-3-pro", "choices": [{"finish_reason": "tool_calls", "message": {"role": "assistant", "content": null,
        "tool_calls": [{"id": "call_a", "type": "function", "function": {"name": "f", "arguments": "{}"},
            "extra_content": {"google": {"thought_signature": "c2ln"}}}]}}]});
    let c = call(json!({"model": "g", "input": "hi"}));
    let stored = from_chat(chat.to_string().as_bytes(), &c, "resp_3", 1, None).unwrap();
    let output = stored["output"].as_array().unwrap();
    assert_eq!(
        output[0]["type"], "reasoning",
        "a reasoning item to carry the signature"
    );
    let mut sigs = serde_json::Map::new();
    sigs.insert("call_a".into(), json!("c2ln"));
    assert_eq!(
        output[0]["encrypted_content"],
        encode_state(None, &sigs).unwrap()
    );
    assert_eq!(output[1]["call_id"], "call_a");
}

#[test]
fn a_streamed_gemini_call_keeps_its_signature() {
    let (ev, _) = translated(&[
        r#"{"id":"c","model":"m","choices":[{"index":0,"delta":{"role":"assistant","tool_calls":[{"index":0,"id":"call_g","type":"function","function":{"name":"get","arguments":"{}"},"extra_content":{"google":{"thought_signature":"c2ln"}}}]},"finish_reason":"tool_calls"}]}"#,
        "[DONE]",
    ]);
    let done = &ev.last().unwrap()["response"];
    // The signature arrived with the call: its carrier comes after it (output indexes are final).
    assert_eq!(done["output"][0]["type"], "function_call", "{done}");
    let reasoning = &done["output"][1];
    assert_eq!(reasoning["type"], "reasoning");
    assert!(
        reasoning.get("encrypted_content").is_none(),
        "only when `include` asks"
    );
}

/// Ids are random per stream; the rest must not depend on how the bytes were split.
fn normalized(events: &[Value]) -> String {
    let mut text = serde_json::to_string(events).unwrap();
    for prefix in ["resp_", "msg_", "fc_", "rs_"] {
        while let Some(at) = text.find(&format!("\"{prefix}")) {
            let start = at + 1 + prefix.len();
            let end = start + text[start..].find('"').unwrap();
            text.replace_range(at + 1..end, "ID");
        }
    }
    text
}

/// Every recorded stream of every translated provider, as Responses events: the invariants
/// (one id, sequence from 0, items opened before their deltas and closed before the end, one
/// terminal event) hold, and splitting the upstream bytes anywhere changes nothing.
#[test]
fn recorded_streams_of_every_provider_are_valid_responses_streams_whatever_the_split() {
    use crate::test_support::fixtures::{chunks, chunks_to_sse, ctx, list};
    use crate::upstream::relay::{translate_bytes, translate_close};
    use crate::upstream::sse::SseDecoder;
    let run = |protocol: Protocol, pieces: &[&[u8]]| -> Vec<Value> {
        let inner = stream_translator(protocol, ctx(true));
        let mut s = ResponsesStream::new(
            inner,
            call(json!({"model": "m", "input": "hi", "stream": true})),
            None,
            5,
            "m",
        );
        let mut decoder = SseDecoder::new();
        let mut out = Vec::new();
        let mut flow = Ok(Flow::More);
        for p in pieces {
            flow = translate_bytes(&mut decoder, &mut s, p, &mut out);
            if flow != Ok(Flow::More) {
                break;
            }
        }
        match flow {
            Ok(Flow::More) => {
                if let Err(e) = translate_close(&mut decoder, &mut s, &mut out) {
                    s.failed(&e.to_api_error("p"), &mut out);
                }
            }
            Ok(Flow::Done) => {}
            Err(e) => {
                s.failed(&e.to_api_error("p"), &mut out);
            }
        }
        events(&out)
    };
    let mut checked = 0;
    for (protocol, dir) in [
        (Protocol::Anthropic, "anthropic"),
        (Protocol::Gemini, "gemini"),
        (Protocol::Mistral, "mistral"),
        (Protocol::DeepSeek, "deepseek"),
        (Protocol::OpenAi, "openai"),
    ] {
        for name in list(dir).into_iter().filter(|n| n.ends_with(".chunks.txt")) {
            let lines = chunks(&format!("{dir}/{name}"));
            if lines[0].starts_with(r#"{"type":"response."#) {
                continue; // OpenAI's own Responses recordings: passed through, not translated.
            }
            let sse = chunks_to_sse(protocol, &lines);
            let whole = run(protocol, &[&sse]);
            assert!(!whole.is_empty(), "{name}");
            check_sequence(&whole);
            let kinds: Vec<&str> = whole.iter().map(|e| e["type"].as_str().unwrap()).collect();
            assert_eq!(
                kinds[..2],
                ["response.created", "response.in_progress"],
                "{name}"
            );
            let last = *kinds.last().unwrap();
            assert!(
                [
                    "response.completed",
                    "response.incomplete",
                    "response.failed"
                ]
                .contains(&last),
                "{name}: {last}"
            );
            assert_eq!(
                kinds
                    .iter()
                    .filter(|k| k.ends_with("completed")
                        || k.ends_with("incomplete")
                        || k.ends_with("failed"))
                    .count(),
                1,
                "{name}"
            );
            let mut open: Option<&str> = None;
            for e in &whole {
                match e["type"].as_str().unwrap() {
                    "response.output_item.added" => {
                        assert!(open.is_none(), "{name}: items never overlap");
                        open = e["item"]["id"].as_str();
                    }
                    "response.output_item.done" => {
                        assert_eq!(open, e["item"]["id"].as_str(), "{name}");
                        open = None;
                    }
                    k if k.ends_with(".delta") => {
                        assert_eq!(open, e["item_id"].as_str(), "{name}: {k}")
                    }
                    _ => {}
                }
            }
            assert!(open.is_none(), "{name}: every item closed");
            let expected = normalized(&whole);
            let step = (sse.len() / 41).max(1);
            for at in (1..sse.len()).step_by(step) {
                let split = run(protocol, &[&sse[..at], &sse[at..]]);
                assert_eq!(normalized(&split), expected, "{name}: split at {at}");
            }
            checked += 1;
        }
    }
    assert!(checked >= 8, "only {checked} recordings");
}
