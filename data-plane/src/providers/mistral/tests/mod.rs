//! Conformance of the Mistral adapter against every recorded file in `fixtures/mistral/`: streams
//! replayed (whole and split) and checked field by field against the recording, answers and
//! errors translated, and the cassettes' recorded requests rebuilt from OpenAI requests.

mod request;

use axum::http::HeaderMap;
use serde_json::{Value, json};

use crate::error::UpstreamError;
use crate::providers::{Protocol, StreamTranslator, stream_translator, translate_response};
use crate::test_support::conformance::{
    Call, Summary, assert_splits, built, lines, sse_chunks, summarize, tokens, without_nulls,
};
use crate::test_support::fixtures::{self, cassette, chunks, chunks_to_sse, ctx, replay};
use crate::upstream::sse::SseEvent;

const P: Protocol = Protocol::Mistral;

/// Every file this module checks; a new fixture fails `every_fixture_is_covered` until it is.
const COVERED: &[&str] = &[
    "pydantic-ai__test_mistral_history_uses_prompt_cache.yaml",
    "pydantic-ai__test_mistral_model_thinking_part_iter.yaml",
    "synthetic__http-400-invalid-tool-call-id.json",
    "vercel-ai__mistral-reasoning.chunks.txt",
    "vercel-ai__mistral-reasoning.json",
    "vercel-ai__mistral-text.chunks.txt",
    "vercel-ai__mistral-text.json",
    "vercel-ai__mistral-tool-call.chunks.txt",
    "vercel-ai__mistral-tool-call.json",
];

#[test]
fn every_fixture_is_covered() {
    assert_eq!(fixtures::list("mistral"), COVERED);
}

/// What a Mistral recording says, read without the adapter: content parts split into thinking
/// and text, tool calls numbered in the order they arrive.
fn expected(recorded: &[Value]) -> Summary {
    let mut s = Summary::default();
    for chunk in recorded {
        if chunk["usage"].is_object() {
            s.usage = Some(tokens(&chunk["usage"]));
        }
        let choice = &chunk["choices"][0];
        match &choice["delta"]["content"] {
            Value::String(text) => s.content.push_str(text),
            Value::Array(parts) => {
                for part in parts {
                    if part["type"] == "text" {
                        s.content.push_str(part["text"].as_str().unwrap());
                    }
                    for inner in part["thinking"].as_array().into_iter().flatten() {
                        s.reasoning.push_str(inner["text"].as_str().unwrap());
                    }
                }
            }
            _ => {}
        }
        for call in choice["delta"]["tool_calls"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let f = &call["function"];
            let index = s.calls.len() as u64;
            s.calls.insert(
                index,
                Call {
                    id: call["id"].as_str().unwrap().into(),
                    kind: "function".into(),
                    name: f["name"].as_str().unwrap().into(),
                    arguments: f["arguments"].as_str().unwrap().into(),
                },
            );
        }
        if let Some(f) = choice["finish_reason"].as_str() {
            s.finish.push(f.replace("model_length", "length"));
        }
    }
    s
}

/// Replays `sse` with and without the usage chunk and checks it against `recorded`.
fn check_stream(sse: &[u8], recorded: &[Value]) -> Summary {
    let asked = replay(P, sse, true);
    assert_eq!(asked.end, Ok(true));
    let summary = summarize(&asked.chunks);
    assert_eq!(summary, expected(recorded));
    let last = asked.chunks.last().unwrap();
    assert_eq!(last["choices"], json!([]), "OpenAI's separate usage chunk");
    for chunk in &asked.chunks {
        assert_eq!(chunk["id"], recorded[0]["id"]);
        assert_eq!(chunk["model"], recorded[0]["model"]);
    }
    let quiet = replay(P, sse, false);
    assert_eq!(quiet.end, Ok(true));
    assert!(quiet.chunks.iter().all(|c| c.get("usage").is_none()));
    assert_eq!(
        summarize(&quiet.chunks),
        Summary {
            usage: None,
            ..expected(recorded)
        }
    );
    assert_splits(P, sse);
    summary
}

#[test]
fn text_stream() {
    let rel = "mistral/vercel-ai__mistral-text.chunks.txt";
    let s = check_stream(&chunks_to_sse(P, &chunks(rel)), &lines(rel));
    assert_eq!(s.content, "Hello, world! This is a test response.");
    assert_eq!(s.finish, ["stop"]);
    assert_eq!(s.usage, Some((13, 8, 21, 0, 0)));
}

#[test]
fn tool_call_stream_gets_index_and_type() {
    let rel = "mistral/vercel-ai__mistral-tool-call.chunks.txt";
    let s = check_stream(&chunks_to_sse(P, &chunks(rel)), &lines(rel));
    let call = &s.calls[&0];
    assert_eq!(call.id, "gSIMJiOkT", "Mistral's own id is kept");
    assert_eq!(call.name, "weather");
    assert_eq!(call.arguments, r#"{"location": "San Francisco"}"#);
    assert_eq!(s.finish, ["tool_calls"]);
    assert_eq!(s.usage, Some((124, 22, 146, 0, 0)));
}

#[test]
fn reasoning_stream_becomes_reasoning_content() {
    let rel = "mistral/vercel-ai__mistral-reasoning.chunks.txt";
    let s = check_stream(&chunks_to_sse(P, &chunks(rel)), &lines(rel));
    assert_eq!(
        s.reasoning,
        "The user is asking for 2+2. This is basic arithmetic. 2+2=4."
    );
    assert_eq!(s.content, "2 + 2 = 4");
    assert_eq!(s.usage, Some((10, 46, 56, 0, 0)));
}

#[test]
fn recorded_magistral_stream_and_its_request() {
    let rel = "mistral/pydantic-ai__test_mistral_model_thinking_part_iter.yaml";
    let interactions = cassette(rel);
    assert_eq!(interactions.len(), 1);
    let i = &interactions[0];
    let raw = i.raw.as_deref().unwrap().as_bytes();
    let s = check_stream(raw, &sse_chunks(raw));
    assert!(
        s.reasoning
            .starts_with("Okay, the user is asking how to cross the street.")
    );
    assert!(!s.content.is_empty() && !s.content.contains("\"thinking\""));
    assert_eq!(s.usage, Some((10, 232, 242, 0, 0)));
    // The recorded request is what an OpenAI client sends for it, too.
    let request = i.request.clone().unwrap();
    let (body, dropped) = built(P, &request, "magistral-medium-latest");
    assert_eq!(body, request);
    assert!(dropped.is_empty());
}

#[test]
fn ordinary_chunks_are_relayed_byte_for_byte() {
    let mut t: Box<dyn StreamTranslator> = stream_translator(P, ctx(true));
    let line = &chunks("mistral/vercel-ai__mistral-text.chunks.txt")[1];
    let mut out = Vec::new();
    let event = SseEvent {
        event: None,
        data: line.clone(),
    };
    t.event(event, &mut out).unwrap();
    assert_eq!(out, std::slice::from_ref(line));
}

#[test]
fn parallel_tool_calls_are_numbered_per_choice() {
    let call = |id: &str| json!({"id": id, "function": {"name": "f", "arguments": "{}"}});
    let chunk = |choice: u64, calls: Vec<Value>, finish: Value| {
        json!({"id":"x","object":"chat.completion.chunk","created":1,"model":"m",
            "choices":[{"index":choice,"delta":{"content":null,"tool_calls":calls},
            "finish_reason":finish}]})
        .to_string()
    };
    let sse = chunks_to_sse(
        P,
        &[
            chunk(0, vec![call("aaaaaaaa1"), call("aaaaaaaa2")], Value::Null),
            chunk(1, vec![call("bbbbbbbb1")], Value::Null),
            chunk(0, vec![call("aaaaaaaa3")], json!("tool_calls")),
        ],
    );
    let r = replay(P, &sse, false);
    let numbered: Vec<(u64, u64, String)> = r
        .chunks
        .iter()
        .flat_map(|c| {
            let choice = c["choices"][0]["index"].as_u64().unwrap();
            let calls = c["choices"][0]["delta"]["tool_calls"].as_array().unwrap();
            calls.iter().map(move |t| {
                assert_eq!(t["type"], "function");
                let id = t["id"].as_str().unwrap().to_string();
                (choice, t["index"].as_u64().unwrap(), id)
            })
        })
        .collect();
    let expected = [
        (0, 0, "aaaaaaaa1"),
        (0, 1, "aaaaaaaa2"),
        (1, 0, "bbbbbbbb1"),
        (0, 2, "aaaaaaaa3"),
    ];
    let expected: Vec<(u64, u64, String)> = expected
        .iter()
        .map(|(c, i, id)| (*c, *i, id.to_string()))
        .collect();
    assert_eq!(numbered, expected);
}

/// Found by fuzzing (`stream_mistral`): a tool call whose `index` is `u64::MAX` overflowed the
/// numbering of the next call (a panic with overflow checks).
#[test]
fn an_absurd_tool_call_index_does_not_overflow() {
    let chunk = |calls: Value| {
        json!({"id":"x","object":"chat.completion.chunk","created":1,"model":"m",
            "choices":[{"index":0,"delta":{"tool_calls":calls},"finish_reason":null}]})
        .to_string()
    };
    let sse = chunks_to_sse(
        P,
        &[
            chunk(json!([{"index": u64::MAX, "id": "aaaaaaaa1"}])),
            chunk(json!([{"id": "aaaaaaaa2", "function": {"name": "f"}}])),
            chunk(json!([{"function": {"arguments": "{}"}}])),
        ],
    );
    let r = replay(P, &sse, false);
    assert_eq!(r.end, Ok(true));
    let indices: Vec<u64> = r
        .chunks
        .iter()
        .map(|c| {
            c["choices"][0]["delta"]["tool_calls"][0]["index"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(indices, [u64::MAX, u64::MAX - 1, u64::MAX - 1]);
}

#[test]
fn finish_reasons_model_length_and_error() {
    let chunk = |finish: &str| {
        json!({"id":"x","object":"chat.completion.chunk","created":1,"model":"m",
            "choices":[{"index":0,"delta":{"content":""},"finish_reason":finish}]})
        .to_string()
    };
    let sse = chunks_to_sse(P, &[chunk("model_length")]);
    assert_eq!(summarize(&replay(P, &sse, false).chunks).finish, ["length"]);
    let r = replay(P, &chunks_to_sse(P, &[chunk("error")]), false);
    assert!(matches!(r.end, Err(UpstreamError::InBand { .. })));
    let flat = r#"{"object":"error","message":"Service unavailable","type":"internal_error","code":"1000"}"#;
    let r = replay(P, &chunks_to_sse(P, &[flat.to_string()]), false);
    assert!(r.chunks.is_empty(), "{r:?}");
    assert!(matches!(r.end, Err(UpstreamError::InBand { code, message })
        if code.as_deref() == Some("internal_error") && message == "Service unavailable"));
}

#[test]
fn text_answer_passes_unchanged() {
    let body = fixtures::text("mistral/vercel-ai__mistral-text.json");
    let t = translate_response(P, body.as_bytes(), &ctx(false)).unwrap();
    assert_eq!(t.body, body.trim().as_bytes(), "no re-serialisation");
    let u = t.usage.unwrap();
    assert_eq!((u.prompt_tokens, u.completion_tokens), (13, 434));
}

#[test]
fn tool_call_answer_gets_type_and_null_content() {
    let body = fixtures::text("mistral/vercel-ai__mistral-tool-call.json");
    let recorded: Value = serde_json::from_str(&body).unwrap();
    let t = translate_response(P, body.as_bytes(), &ctx(false)).unwrap();
    let answer: Value = serde_json::from_slice(&t.body).unwrap();
    let message = &answer["choices"][0]["message"];
    assert_eq!(message["content"], Value::Null);
    assert_eq!(
        message["tool_calls"],
        json!([{"id":"gSIMJiOkT","type":"function",
            "function":{"name":"weather","arguments":"{\"location\": \"San Francisco\"}"}}])
    );
    assert_eq!(answer["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(answer["id"], recorded["id"]);
    assert_eq!(answer["usage"], recorded["usage"]);
    assert_eq!(t.usage.unwrap().completion_tokens, 22);
}

#[test]
fn reasoning_answer_splits_its_content_parts() {
    let body = fixtures::text("mistral/vercel-ai__mistral-reasoning.json");
    let t = translate_response(P, body.as_bytes(), &ctx(false)).unwrap();
    let answer: Value = serde_json::from_slice(&t.body).unwrap();
    let message = &answer["choices"][0]["message"];
    assert_eq!(message["content"], "2 + 2 = 4");
    assert_eq!(
        message["reasoning_content"],
        "The user is asking for 2+2. This is basic arithmetic. 2+2=4."
    );
    assert_eq!(t.usage.unwrap().prompt_tokens, 10);
}

#[test]
fn invalid_tool_call_id_error_maps_and_cannot_happen() {
    let body = fixtures::text("mistral/synthetic__http-400-invalid-tool-call-id.json");
    let e = crate::providers::upstream_error(P, 400, &HeaderMap::new(), body.as_bytes());
    let UpstreamError::Status {
        status,
        code,
        message,
        ..
    } = &e
    else {
        panic!("{e:?}")
    };
    assert_eq!(
        (*status, code.as_deref()),
        (400, Some("invalid_function_call"))
    );
    assert!(message.contains("Tool call id was call_0fypS1hVX"));
    assert!(!e.retryable());
    assert_eq!(e.to_api_error("mistral").status(), 400);
    // The id that caused it is mapped before it reaches Mistral.
    let client = json!({"model":"m","messages":[
        {"role":"user","content":"weather?"},
        {"role":"assistant","content":null,"tool_calls":[{"id":"call_0fypS1hVX","type":"function",
            "function":{"name":"weather","arguments":"{}"}}]},
        {"role":"tool","tool_call_id":"call_0fypS1hVX","content":"sunny"}]});
    let (body, _) = built(P, &client, "mistral-small-latest");
    let id = body["messages"][1]["tool_calls"][0]["id"].as_str().unwrap();
    assert!(super::is_valid_id(id), "{id}");
    assert_eq!(body["messages"][2]["tool_call_id"], id);
}

#[test]
fn recorded_history_cassette_answers_and_requests() {
    let rel = "mistral/pydantic-ai__test_mistral_history_uses_prompt_cache.yaml";
    let interactions = cassette(rel);
    assert_eq!(interactions.len(), 2);
    for (i, cached) in interactions.iter().zip([0, 224]) {
        let response = i.response.clone().unwrap();
        let body = response.to_string();
        let t = translate_response(P, body.as_bytes(), &ctx(false)).unwrap();
        assert_eq!(serde_json::from_slice::<Value>(&t.body).unwrap(), response);
        assert_eq!(t.usage.unwrap().cached_tokens, cached);
        // Replayed as it was recorded, the request is rebuilt as it was sent.
        let request = i.request.clone().unwrap();
        let (body, dropped) = built(P, &request, "mistral-large-latest");
        assert_eq!(without_nulls(&body), without_nulls(&request));
        assert!(dropped.is_empty(), "{dropped:?}");
    }
    // The second turn as an OpenAI SDK sends it: the answer appended as it came back.
    let recorded = interactions[1].request.clone().unwrap();
    let m = recorded["messages"].as_array().unwrap();
    let client = json!({"model":"mistral-large-latest","n":1,"top_p":1.0,"stream":false,
        "prompt_cache_key":"pydantic-ai-test-mistral-history-cache","user":"u-1","seed":7,
        "max_completion_tokens":50,"messages":[m[0], m[1],
            {"role":"assistant","content":"cache probe one.","refusal":null,"annotations":[]},
            m[3]]});
    let (body, dropped) = built(P, &client, "mistral-large-latest");
    assert_eq!(dropped, ["user"]);
    for key in ["model", "n", "top_p", "stream", "prompt_cache_key"] {
        assert_eq!(body[key], recorded[key], "{key}");
    }
    assert_eq!(
        (&body["random_seed"], &body["max_tokens"]),
        (&json!(7), &json!(50))
    );
    let sent = body["messages"].as_array().unwrap();
    assert_eq!(sent.len(), m.len());
    for (s, r) in sent.iter().zip(m) {
        assert_eq!(s["role"], r["role"]);
        let text = r["content"][0]["text"].as_str().or(r["content"].as_str());
        assert_eq!(s["content"].as_str(), text);
    }
}
