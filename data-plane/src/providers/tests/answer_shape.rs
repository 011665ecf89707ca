//! The answer rules the upstream cannot be told ([`AnswerShape`]), end to end from the request
//! built to the answer translated, whole and streamed (split at every byte): JSON mode through
//! Anthropic's forced tool answers the JSON alone, and `parallel_tool_calls: false` on Gemini
//! answers one call.
#![cfg(test)]

use serde_json::{Value, json};

use crate::providers::{
    AnswerShape, Flow, Protocol, RequestCtx, UpstreamCall, build, stream_translator_shaped,
    translate_shaped,
};
use crate::test_support::anthropic::{Collected, try_build, weather_tool, with};
use crate::test_support::fixtures::{chunks, chunks_to_sse, ctx};
use crate::upstream::sse::SseDecoder;

/// The stream's chunks, fed through a translator for `shape` in the given pieces.
fn replay(protocol: Protocol, shape: AnswerShape, pieces: &[&[u8]]) -> Vec<Value> {
    let mut t = stream_translator_shaped(protocol, ctx(false), shape);
    let (mut decoder, mut events, mut out) = (SseDecoder::new(), Vec::new(), Vec::new());
    let mut done = false;
    for piece in pieces {
        decoder.feed(piece, &mut events).unwrap();
        for e in events.drain(..) {
            if !done && t.event(e, &mut out).unwrap() == Flow::Done {
                done = true;
            }
        }
    }
    decoder.finish(&mut events).unwrap();
    for e in events.drain(..) {
        if !done && t.event(e, &mut out).unwrap() == Flow::Done {
            done = true;
        }
    }
    if !done {
        t.end(&mut out).unwrap();
    }
    out.iter()
        .map(|c| serde_json::from_str(c).unwrap())
        .collect()
}

/// The whole stream's chunks, checked to be the same at every split.
fn replay_split_invariant(protocol: Protocol, shape: AnswerShape, sse: &[u8]) -> Vec<Value> {
    let whole = replay(protocol, shape, &[sse]);
    for at in 1..sse.len() {
        let split = replay(protocol, shape, &[&sse[..at], &sse[at..]]);
        assert_eq!(split, whole, "split at byte {at} changed the translation");
    }
    whole
}

fn whole(protocol: Protocol, shape: AnswerShape, answer: &Value) -> Value {
    let t = translate_shaped(
        protocol,
        answer.to_string().into_bytes(),
        &ctx(false),
        shape,
    );
    serde_json::from_slice(&t.unwrap().body).unwrap()
}

fn anthropic_sse(events: &[Value]) -> Vec<u8> {
    let lines: Vec<String> = events.iter().map(Value::to_string).collect();
    chunks_to_sse(Protocol::Anthropic, &lines)
}

/// An Anthropic stream: `text` in a text block, then a tool (`name`) with `args`, ending `stop`.
fn anthropic_events(text: &str, name: &str, args: &str, stop: &str) -> Vec<Value> {
    let mut events = vec![json!({"type": "message_start", "message": {"id": "msg_1",
        "model": "claude-x", "content": [], "usage": {"input_tokens": 5, "output_tokens": 1}}})];
    if !text.is_empty() {
        let (head, tail) = text.split_at(text.len() / 2);
        events.push(json!({"type": "content_block_start", "index": 0,
            "content_block": {"type": "text", "text": ""}}));
        for piece in [head, tail] {
            events.push(json!({"type": "content_block_delta", "index": 0,
                "delta": {"type": "text_delta", "text": piece}}));
        }
        events.push(json!({"type": "content_block_stop", "index": 0}));
    }
    if !name.is_empty() {
        events.push(json!({"type": "content_block_start", "index": 1,
            "content_block": {"type": "tool_use", "id": "toolu_1", "name": name, "input": {}}}));
        events.push(json!({"type": "content_block_delta", "index": 1,
            "delta": {"type": "input_json_delta", "partial_json": args}}));
        events.push(json!({"type": "content_block_stop", "index": 1}));
    }
    events.push(
        json!({"type": "message_delta", "delta": {"stop_reason": stop},
        "usage": {"output_tokens": 9}}),
    );
    events.push(json!({"type": "message_stop"}));
    events
}

fn anthropic_shape(request: Value) -> UpstreamCall {
    try_build(request, true).unwrap()
}

#[test]
fn json_mode_requests_ask_for_the_json_alone() {
    for format in [
        json!({"type": "json_object"}),
        json!({"type": "json_schema",
        "json_schema": {"name": "n", "schema": {"type": "object"}}}),
    ] {
        let call = anthropic_shape(with(json!({"response_format": format})));
        assert!(call.shape.json_only, "{format}");
        assert!(!call.shape.one_tool_call);
    }
    assert_eq!(
        anthropic_shape(with(json!({}))).shape,
        AnswerShape::default()
    );
}

#[test]
fn json_mode_drops_the_text_before_the_json_tool_plain_and_streamed() {
    let answer = json!({"type": "message", "id": "msg_j", "model": "claude-x", "role": "assistant",
        "content": [{"type": "text", "text": "Here is the JSON you asked for:"},
            {"type": "tool_use", "id": "toolu_j", "name": "json_response", "input": {"n": 3}}],
        "stop_reason": "tool_use", "usage": {"input_tokens": 3, "output_tokens": 4}});
    let shape = anthropic_shape(with(json!({"response_format": {"type": "json_object"}}))).shape;
    // A whole answer shows the JSON tool: the text is dropped with or without the shape.
    for s in [shape, AnswerShape::default()] {
        let out = whole(Protocol::Anthropic, s, &answer);
        let content = out["choices"][0]["message"]["content"].as_str().unwrap();
        assert_eq!(
            serde_json::from_str::<Value>(content).unwrap(),
            json!({"n": 3})
        );
        assert_eq!(out["choices"][0]["finish_reason"], "stop");
    }
    let events = anthropic_events(
        "Here is the JSON:",
        "json_response",
        "{\"n\": 3}",
        "tool_use",
    );
    let got = Collected::from_chunks(&replay_split_invariant(
        Protocol::Anthropic,
        shape,
        &anthropic_sse(&events),
    ));
    assert_eq!(got.content, "{\"n\": 3}", "only the JSON, valid as a whole");
    assert!(got.tools.is_empty());
    assert_eq!(got.finish.as_deref(), Some("stop"));
}

#[test]
fn json_mode_streams_still_send_text_that_no_json_tool_follows() {
    let shape = AnswerShape {
        json_only: true,
        ..AnswerShape::default()
    };
    // No JSON tool at all: the held text is the answer, sent before the finish chunk.
    let text_only = anthropic_events("plain words", "", "", "end_turn");
    let got = Collected::from_chunks(&replay_split_invariant(
        Protocol::Anthropic,
        shape,
        &anthropic_sse(&text_only),
    ));
    assert_eq!(got.content, "plain words");
    assert_eq!(got.finish.as_deref(), Some("stop"));
    // A client tool instead of the JSON tool: the text goes out before the call, as unshaped.
    let tool = anthropic_events("Checking.", "weather", "{\"city\":\"Oslo\"}", "tool_use");
    let shaped = Collected::from_chunks(&replay(
        Protocol::Anthropic,
        shape,
        &[&anthropic_sse(&tool)],
    ));
    let plain = Collected::from_chunks(&replay(
        Protocol::Anthropic,
        AnswerShape::default(),
        &[&anthropic_sse(&tool)],
    ));
    assert_eq!(
        (shaped.content.as_str(), plain.content.as_str()),
        ("Checking.", "Checking.")
    );
    assert_eq!(shaped.tools, plain.tools);
    assert_eq!(shaped.finish.as_deref(), Some("tool_calls"));
}

#[test]
fn text_after_the_json_tool_is_dropped_in_every_stream() {
    let mut events = anthropic_events("", "json_response", "{}", "tool_use");
    let at = events.len() - 2;
    events.splice(at..at, [
        json!({"type": "content_block_start", "index": 2, "content_block": {"type": "text", "text": "Done."}}),
        json!({"type": "content_block_stop", "index": 2}),
    ]);
    let got = Collected::from_chunks(&replay(
        Protocol::Anthropic,
        AnswerShape::default(),
        &[&anthropic_sse(&events)],
    ));
    assert_eq!(got.content, "{}");
}

fn gemini_call(name: &str, city: &str) -> Value {
    json!({"functionCall": {"name": name, "args": {"city": city}}})
}

fn gemini_answer(parts: Vec<Value>) -> Value {
    json!({"candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": "STOP",
        "index": 0}], "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 7,
        "totalTokenCount": 12}, "modelVersion": "gemini-2.5-flash"})
}

fn gemini_shape(parallel: Option<bool>) -> UpstreamCall {
    let mut request = json!({"model": "gemini-2.5-flash", "tools": [weather_tool()],
        "messages": [{"role": "user", "content": "Oslo and Rome?"}]});
    if let Some(p) = parallel {
        request["parallel_tool_calls"] = json!(p);
    }
    let Value::Object(body) = request else {
        unreachable!()
    };
    let ctx = RequestCtx {
        body: &body,
        model: "gemini-2.5-flash",
        stream: true,
        cache: &crate::test_support::fixtures::cache(),
    };
    build(Protocol::Gemini, &ctx).unwrap()
}

/// The (name, arguments) of every tool call in a streamed answer, and its finish reason.
fn streamed_calls(chunks: &[Value]) -> (Vec<(String, Value)>, Option<String>) {
    let mut calls = Vec::new();
    let mut finish = None;
    for c in chunks {
        let choice = &c["choices"][0];
        for call in choice["delta"]["tool_calls"]
            .as_array()
            .into_iter()
            .flatten()
        {
            assert_eq!(call["index"], calls.len(), "indices count up from 0");
            let args = call["function"]["arguments"].as_str().unwrap();
            calls.push((
                call["function"]["name"].as_str().unwrap().to_string(),
                serde_json::from_str(args).unwrap(),
            ));
        }
        if let Some(f) = choice["finish_reason"].as_str() {
            finish = Some(f.to_string());
        }
    }
    (calls, finish)
}

#[test]
fn gemini_takes_parallel_tool_calls_false_and_reports_it() {
    let call = gemini_shape(Some(false));
    assert!(call.shape.one_tool_call);
    assert_eq!(
        call.dropped,
        ["parallel_tool_calls"],
        "Gemini has no such switch"
    );
    let sent: Value = serde_json::from_slice(&call.body).unwrap();
    assert!(sent.get("parallel_tool_calls").is_none(), "{sent}");
    for parallel in [None, Some(true)] {
        let call = gemini_shape(parallel);
        assert_eq!(call.shape, AnswerShape::default(), "{parallel:?}");
        assert!(call.dropped.is_empty(), "true is Gemini's own behaviour");
    }
}

#[test]
fn gemini_answers_keep_the_first_call_only_plain_and_streamed() {
    let shape = gemini_shape(Some(false)).shape;
    let answer = gemini_answer(vec![
        json!({"text": "Let me check."}),
        gemini_call("weather", "Oslo"),
        gemini_call("weather", "Rome"),
    ]);
    let out = whole(Protocol::Gemini, shape, &answer);
    let message = &out["choices"][0]["message"];
    let calls = message["tool_calls"].as_array().unwrap();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0]["function"]["arguments"], "{\"city\":\"Oslo\"}");
    assert_eq!(message["content"], "Let me check.", "text is kept");
    assert_eq!(out["choices"][0]["finish_reason"], "tool_calls");
    let unshaped = whole(Protocol::Gemini, AnswerShape::default(), &answer);
    assert_eq!(
        unshaped["choices"][0]["message"]["tool_calls"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // Streamed: the calls in separate events, then the finish reason alone.
    let events = [
        gemini_answer(vec![gemini_call("weather", "Oslo")]),
        gemini_answer(vec![gemini_call("weather", "Rome")]),
        gemini_answer(vec![]),
    ];
    let mut events = events.to_vec();
    for e in &mut events[..2] {
        e["candidates"][0]
            .as_object_mut()
            .unwrap()
            .remove("finishReason");
    }
    let lines: Vec<String> = events.iter().map(Value::to_string).collect();
    let sse = chunks_to_sse(Protocol::Gemini, &lines);
    let (calls, finish) = streamed_calls(&replay_split_invariant(Protocol::Gemini, shape, &sse));
    assert_eq!(calls, [("weather".to_string(), json!({"city": "Oslo"}))]);
    assert_eq!(finish.as_deref(), Some("tool_calls"));
    let (all, _) = streamed_calls(&replay(Protocol::Gemini, AnswerShape::default(), &[&sse]));
    assert_eq!(all.len(), 2);
}

#[test]
fn recorded_parallel_calls_with_streamed_arguments_keep_the_first() {
    let lines = chunks("gemini/vercel-ai__google-stream-tool-call-arguments.chunks.txt");
    let sse = chunks_to_sse(Protocol::Gemini, &lines);
    let shape = AnswerShape {
        one_tool_call: true,
        ..AnswerShape::default()
    };
    let (calls, finish) = streamed_calls(&replay(Protocol::Gemini, shape, &[&sse]));
    assert_eq!(
        calls,
        [("getWeather".to_string(), json!({"location": "Boston"}))]
    );
    assert_eq!(finish.as_deref(), Some("tool_calls"));
}
