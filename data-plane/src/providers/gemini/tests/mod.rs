//! Conformance of the Gemini answer and stream translation against every recorded answer in
//! `fixtures/gemini/`: what the client gets (content, reasoning, tool calls, finish reason,
//! usage) is checked field by field against what the recording says, whole and split at every
//! byte. Request replays are in `gemini_cassette_tests`.

mod cassette;
mod config;
mod edge;
mod request;
mod schema;

use serde_json::{Value, json};

use crate::providers::Protocol;
use crate::providers::gemini::translate_response;
use crate::test_support::fixtures::{
    self, Replay, assert_split_invariant, chunks, chunks_to_sse, ctx, replay,
};
use crate::upstream::sse::SseDecoder;

/// Every file of `fixtures/gemini/`; each is used by a test below, in `gemini_cassette_tests`
/// (recorded requests) or in `gemini_edge_tests` (the 429 body).
const COVERED: &[&str] = &[
    "pydantic-ai__test_google_model_iter_stream.yaml",
    "pydantic-ai__test_google_model_max_tokens.yaml",
    "pydantic-ai__test_google_model_thinking_part_iter.yaml",
    "pydantic-ai__test_google_streaming_tool_call_thought_signature.yaml",
    "vercel-ai__google-429-retry-info.json",
    "vercel-ai__google-reasoning.chunks.txt",
    "vercel-ai__google-reasoning.json",
    "vercel-ai__google-stream-no-args-tool-call.chunks.txt",
    "vercel-ai__google-stream-tool-call-arguments.chunks.txt",
    "vercel-ai__google-text.chunks.txt",
    "vercel-ai__google-text.json",
    "vercel-ai__google-tool-call.chunks.txt",
    "vercel-ai__google-tool-call.json",
];

#[test]
fn every_recording_is_covered() {
    assert_eq!(
        fixtures::list("gemini"),
        COVERED,
        "a new fixture needs a test"
    );
}

/// A function call: name, parsed arguments, thought signature.
type Call = (String, Value, Option<String>);

/// What an answer says, read from the recording (Gemini) or from the translation (OpenAI).
#[derive(Debug, Default, PartialEq)]
struct Answer {
    content: String,
    reasoning: String,
    calls: Vec<Call>,
    finish: Option<String>,
    /// `[prompt, completion, total, reasoning, cached]`.
    usage: Option<[u64; 5]>,
}

/// The answer a recorded Gemini stream (or a whole answer, one event) holds. Calls are the
/// parts with a name and no streamed arguments.
fn recorded(events: &[Value]) -> Answer {
    let mut answer = Answer::default();
    let mut gemini_finish = None;
    let mut called = false;
    for event in events {
        let candidate = &event["candidates"][0];
        for part in candidate["content"]["parts"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let text = part["text"].as_str().unwrap_or_default();
            if part["thought"] == true {
                answer.reasoning.push_str(text);
            } else {
                answer.content.push_str(text);
            }
            let call = &part["functionCall"];
            called |= call["name"].is_string();
            if let Some(name) = call["name"]
                .as_str()
                .filter(|_| call["willContinue"] != true)
            {
                let args = call.get("args").cloned().unwrap_or_else(|| json!({}));
                let signature = part["thoughtSignature"].as_str().map(str::to_string);
                answer.calls.push((name.to_string(), args, signature));
            }
        }
        if let Some(reason) = candidate["finishReason"].as_str() {
            gemini_finish = Some(reason.to_string());
        }
        let u = &event["usageMetadata"];
        if let Some(prompt) = u["promptTokenCount"].as_u64() {
            let n = |f: &str| u[f].as_u64().unwrap_or(0);
            let completion = n("candidatesTokenCount") + n("thoughtsTokenCount");
            let total = n("totalTokenCount");
            assert_eq!(total, prompt + completion, "the recording's own total");
            let cached = n("cachedContentTokenCount");
            let reasoning = n("thoughtsTokenCount");
            answer.usage = Some([prompt, completion, total, reasoning, cached]);
        }
    }
    answer.finish = gemini_finish.map(|r| {
        match (r.as_str(), called) {
            ("MAX_TOKENS", _) => "length",
            ("STOP", true) => "tool_calls",
            _ => "stop",
        }
        .to_string()
    });
    answer
}

/// Reads an OpenAI `usage` object.
fn usage_of(u: &Value) -> Option<[u64; 5]> {
    let n = |p: &str| u.pointer(p).and_then(Value::as_u64);
    Some([
        n("/prompt_tokens")?,
        n("/completion_tokens")?,
        n("/total_tokens")?,
        n("/completion_tokens_details/reasoning_tokens")?,
        n("/prompt_tokens_details/cached_tokens")?,
    ])
}

fn call_of(call: &Value) -> Call {
    let id = call["id"].as_str().unwrap();
    assert!(
        id.starts_with("call_") && id.len() > 10,
        "synthesized id {id}"
    );
    assert_eq!(call["type"], "function");
    let args = serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
    let signature = call["extra_content"]["google"]["thought_signature"]
        .as_str()
        .map(str::to_string);
    (
        call["function"]["name"].as_str().unwrap().into(),
        args,
        signature,
    )
}

/// The answer a translated stream gives the client, checking the chunk invariants on the way.
fn streamed(r: &Replay) -> Answer {
    assert_eq!(r.end, Ok(false), "Gemini streams end by closing, cleanly");
    let mut answer = Answer::default();
    let model = &r.chunks[0]["model"];
    assert_eq!(r.chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let mut ids = Vec::new();
    for (i, chunk) in r.chunks.iter().enumerate() {
        assert_eq!(chunk["object"], "chat.completion.chunk");
        assert_eq!(chunk["id"], "chatcmpl-test");
        assert_eq!(chunk["created"], 1_700_000_000);
        assert_eq!(&chunk["model"], model);
        let choices = chunk["choices"].as_array().unwrap();
        if choices.is_empty() {
            assert_eq!(i, r.chunks.len() - 1, "the usage chunk is the last");
            answer.usage = usage_of(&chunk["usage"]);
            continue;
        }
        let choice = &choices[0];
        assert_eq!(choice["index"], 0);
        let delta = &choice["delta"];
        answer.content += delta["content"].as_str().unwrap_or_default();
        answer.reasoning += delta["reasoning_content"].as_str().unwrap_or_default();
        for call in delta["tool_calls"].as_array().into_iter().flatten() {
            assert_eq!(call["index"], answer.calls.len(), "indices count calls");
            ids.push(call["id"].clone());
            answer.calls.push(call_of(call));
        }
        if let Some(reason) = choice["finish_reason"].as_str() {
            assert!(answer.finish.is_none(), "one finish chunk");
            answer.finish = Some(reason.into());
        }
    }
    ids.sort_by_key(Value::to_string);
    ids.dedup();
    assert_eq!(ids.len(), answer.calls.len(), "ids are distinct");
    answer
}

/// Whether a call carries the recorded signature that starts with `prefix`.
fn signed(call: &Call, prefix: &str) -> bool {
    call.2.as_ref().is_some_and(|s| s.starts_with(prefix))
}

/// The events of raw SSE bytes.
fn events(raw: &[u8]) -> Vec<Value> {
    let mut decoder = SseDecoder::new();
    let mut out = Vec::new();
    decoder.feed(raw, &mut out).unwrap();
    decoder.finish(&mut out).unwrap();
    out.iter()
        .map(|e| serde_json::from_str(&e.data).unwrap())
        .collect()
}

/// Replays a recorded stream every way and checks it against the recording; returns the answer.
fn check_stream(sse: &[u8], exact_calls: bool) -> Answer {
    let expected = recorded(&events(sse));
    let got = streamed(&replay(Protocol::Gemini, sse, true));
    assert_eq!(got.content, expected.content);
    assert_eq!(got.reasoning, expected.reasoning);
    assert_eq!(got.finish, expected.finish);
    assert_eq!(got.usage, expected.usage);
    if exact_calls {
        assert_eq!(got.calls, expected.calls);
    }
    let quiet = replay(Protocol::Gemini, sse, false);
    assert!(
        quiet.chunks.iter().all(|c| c["choices"] != json!([])),
        "no usage chunk unasked"
    );
    assert_split_invariant(Protocol::Gemini, sse, true);
    got
}

fn check_chunk_file(name: &str, exact_calls: bool) -> Answer {
    let lines = chunks(&format!("gemini/{name}"));
    check_stream(&chunks_to_sse(Protocol::Gemini, &lines), exact_calls)
}

#[test]
fn text_stream() {
    let got = check_chunk_file("vercel-ai__google-text.chunks.txt", true);
    assert_eq!(
        got.content,
        "There are **3** \"r\"s in strawberry.\n\nst**r**awbe**rr**y"
    );
    assert_eq!(got.finish.as_deref(), Some("stop"));
    assert_eq!(got.usage, Some([9, 23 + 185, 217, 185, 0]));
}

#[test]
fn hidden_reasoning_stream_counts_thoughts_as_output() {
    let got = check_chunk_file("vercel-ai__google-reasoning.chunks.txt", true);
    assert!(got.reasoning.is_empty(), "thoughts were not included");
    assert_eq!(got.usage, Some([9, 29 + 256, 294, 256, 0]));
}

#[test]
fn tool_call_stream() {
    let got = check_chunk_file("vercel-ai__google-tool-call.chunks.txt", true);
    assert_eq!(got.calls.len(), 1);
    assert_eq!(got.calls[0].0, "weather");
    assert_eq!(got.calls[0].1, json!({"location": "San Francisco"}));
    assert!(signed(&got.calls[0], "EqUCCqIC"));
    assert_eq!(got.finish.as_deref(), Some("tool_calls"));
}

#[test]
fn streamed_arguments_are_assembled_into_whole_calls() {
    let got = check_chunk_file(
        "vercel-ai__google-stream-tool-call-arguments.chunks.txt",
        false,
    );
    let calls: Vec<(&str, &Value)> = got.calls.iter().map(|c| (c.0.as_str(), &c.1)).collect();
    let (boston, sf) = (
        json!({"location": "Boston"}),
        json!({"location": "San Francisco"}),
    );
    assert_eq!(calls, [("getWeather", &boston), ("getWeather", &sf)]);
    assert!(signed(&got.calls[0], "CiMBjz1r"));
    assert_eq!(
        got.calls[1].2, None,
        "only the first parallel call is signed"
    );
    assert_eq!(got.finish.as_deref(), Some("tool_calls"));
    assert_eq!(got.usage, Some([26, 23 + 132, 181, 132, 0]));
}

#[test]
fn no_argument_call_then_streamed_arguments() {
    let got = check_chunk_file(
        "vercel-ai__google-stream-no-args-tool-call.chunks.txt",
        false,
    );
    assert!(got.reasoning.starts_with("**Processing User Requests**"));
    let calls: Vec<(&str, Value)> = got
        .calls
        .iter()
        .map(|c| (c.0.as_str(), c.1.clone()))
        .collect();
    assert_eq!(
        calls,
        [
            ("read_theme", json!({})),
            ("read_screen", json!({"id": "A"})),
            ("read_screen", json!({"id": "B"})),
            ("read_screen", json!({"id": "C"})),
        ]
    );
    assert!(got.calls[0].2.is_some());
    assert_eq!(got.finish.as_deref(), Some("tool_calls"));
    assert_eq!(got.usage, Some([249, 58 + 183, 490, 183, 0]));
}

/// Translates a whole answer and reads it like [`streamed`] does.
fn whole(body: &[u8]) -> (Answer, Value) {
    let t = translate_response(body, &ctx(false)).unwrap();
    let v: Value = serde_json::from_slice(&t.body).unwrap();
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["id"], "chatcmpl-test");
    let choice = &v["choices"][0];
    let message = &choice["message"];
    assert_eq!(message["role"], "assistant");
    let calls = message["tool_calls"]
        .as_array()
        .map(|c| c.iter().map(call_of).collect());
    let answer = Answer {
        content: message["content"].as_str().unwrap_or_default().into(),
        reasoning: message["reasoning_content"]
            .as_str()
            .unwrap_or_default()
            .into(),
        calls: calls.unwrap_or_default(),
        finish: choice["finish_reason"].as_str().map(str::to_string),
        usage: usage_of(&v["usage"]),
    };
    let recorded_usage = usage_of(&t.usage.unwrap().to_openai());
    assert_eq!(answer.usage, recorded_usage, "recorded usage = shown usage");
    (answer, v)
}

fn check_whole(recording: &Value) -> (Answer, Value) {
    let (got, v) = whole(&serde_json::to_vec(recording).unwrap());
    assert_eq!(got, recorded(std::slice::from_ref(recording)));
    assert_eq!(v["model"], recording["modelVersion"]);
    (got, v)
}

#[test]
fn whole_answers_match_their_recordings() {
    let (text, _) = check_whole(&fixtures::json("gemini/vercel-ai__google-text.json"));
    assert_eq!(text.usage, Some([9, 28 + 244, 281, 244, 0]));
    let (reasoning, _) = check_whole(&fixtures::json("gemini/vercel-ai__google-reasoning.json"));
    assert_eq!(reasoning.finish.as_deref(), Some("stop"));
    let (call, v) = check_whole(&fixtures::json("gemini/vercel-ai__google-tool-call.json"));
    assert_eq!(call.finish.as_deref(), Some("tool_calls"));
    assert_eq!(call.usage, Some([29, 15 + 893, 937, 893, 0]));
    assert!(
        v["choices"][0]["message"]["content"].is_null(),
        "no text, only a call"
    );
}

/// Checks every interaction of a cassette with a recorded raw stream; returns their answers.
fn check_cassette(name: &str) -> Vec<Answer> {
    let interactions = fixtures::cassette(&format!("gemini/{name}"));
    assert!(!interactions.is_empty());
    interactions
        .iter()
        .map(|i| {
            assert_eq!(i.status, 200);
            let raw = i.raw.as_deref().unwrap();
            assert!(raw.contains("\r\n\r\n"), "real CRLF framing");
            check_stream(raw.as_bytes(), true)
        })
        .collect()
}

#[test]
fn raw_stream_tool_round_trips() {
    let answers = check_cassette("pydantic-ai__test_google_model_iter_stream.yaml");
    assert_eq!(answers[0].calls[0].0, "get_capital");
    assert_eq!(answers[1].calls[0].1, json!({"city": "Paris"}));
    assert_eq!(answers[2].content, "The temperature in Paris is 30°C.\n");
    // usageMetadata is cumulative: the last event's counts win over the first one's 169.
    assert_eq!(answers[2].usage, Some([79, 12, 91, 0, 0]));
}

#[test]
fn raw_stream_with_thoughts() {
    let answers = check_cassette("pydantic-ai__test_google_model_thinking_part_iter.yaml");
    assert!(
        answers[0]
            .reasoning
            .starts_with("**Clarifying User Goals**")
    );
    assert!(answers[0].content.starts_with("This is a great question!"));
    assert_eq!(answers[0].usage, Some([34, 469 + 787, 1290, 787, 0]));
}

#[test]
fn raw_stream_with_signed_call() {
    let answers =
        check_cassette("pydantic-ai__test_google_streaming_tool_call_thought_signature.yaml");
    assert_eq!(answers[0].calls[0].0, "get_country");
    assert!(answers[0].calls[0].2.is_some());
    assert_eq!(answers[0].finish.as_deref(), Some("tool_calls"));
    assert_eq!(answers[1].content, "The capital of Mexico is Mexico City.");
}

#[test]
fn max_tokens_answer() {
    let interactions = fixtures::cassette("gemini/pydantic-ai__test_google_model_max_tokens.yaml");
    let (got, _) = check_whole(interactions[0].response.as_ref().unwrap());
    assert_eq!(got.content, "The capital of France is");
    assert_eq!(got.finish.as_deref(), Some("length"));
    assert_eq!(got.usage, Some([15, 5, 20, 0, 0]));
}
