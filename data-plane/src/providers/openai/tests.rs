//! Conformance of the OpenAI-protocol passthrough against recorded OpenAI traffic.

use serde_json::Value;

use crate::providers::{Protocol, translate_response};
use crate::test_support::fixtures::{
    self, assert_split_invariant, chunks, chunks_to_sse, content_of, ctx, replay,
};

#[test]
fn non_streaming_answers_pass_through_unchanged() {
    let body = fixtures::text("openai/vercel-ai__openai-text.json");
    let t = translate_response(Protocol::OpenAi, body.as_bytes(), &ctx(false)).unwrap();
    let original: Value = serde_json::from_str(&body).unwrap();
    let passed: Value = serde_json::from_slice(&t.body).unwrap();
    assert_eq!(original, passed);
    assert_eq!(
        t.usage.unwrap().prompt_tokens,
        original["usage"]["prompt_tokens"].as_u64().unwrap()
    );
}

#[test]
fn streams_keep_every_field_and_strip_usage_unless_asked() {
    let lines = chunks("openai/vercel-ai__openai-text.chunks.txt");
    let sse = chunks_to_sse(Protocol::OpenAi, &lines);
    let asked = replay(Protocol::OpenAi, &sse, true);
    assert_eq!(asked.end, Ok(true));
    let expected: String = lines
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|c| {
            c["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_string)
        })
        .collect();
    assert_eq!(content_of(&asked.chunks), expected);
    assert!(
        asked.chunks.iter().any(|c| c.get("obfuscation").is_some()),
        "new fields survive"
    );
    assert!(asked.chunks.last().unwrap()["usage"].is_object());
    let not_asked = replay(Protocol::OpenAi, &sse, false);
    assert!(
        not_asked
            .chunks
            .iter()
            .all(|c| c.get("usage").is_none_or(Value::is_null))
    );
    assert_eq!(content_of(&not_asked.chunks), expected);
}

#[test]
fn azure_filter_results_survive() {
    let lines = chunks("openai/vercel-ai__azure-model-router.1.chunks.txt");
    let r = replay(
        Protocol::OpenAi,
        &chunks_to_sse(Protocol::OpenAi, &lines),
        true,
    );
    assert_eq!(r.end, Ok(true));
    assert!(r.chunks[0].get("prompt_filter_results").is_some());
}

#[test]
fn recorded_raw_streams_are_split_invariant() {
    for rel in ["openai/pydantic-ai__test_run_stream_sync_streams_real_model.yaml"] {
        for i in fixtures::cassette(rel)
            .into_iter()
            .filter(|i| i.raw.as_deref().is_some_and(|r| r.contains("data:")))
        {
            let raw = i.raw.unwrap();
            assert_split_invariant(Protocol::OpenAi, raw.as_bytes(), true);
            let r = replay(Protocol::OpenAi, raw.as_bytes(), true);
            assert_eq!(r.end, Ok(true), "{rel}");
        }
    }
    let midstream = fixtures::text("openai/synthetic__midstream-error.sse");
    assert!(
        replay(Protocol::OpenAi, midstream.as_bytes(), true)
            .end
            .is_err()
    );
}

/// Found by fuzzing (`response_openai`, `response_deepseek`): a body with bytes that are not
/// UTF-8 inside a string the passthrough does not read went to the client as it was, which is
/// not JSON text.
#[test]
fn non_utf8_answers_are_malformed_not_passed_through() {
    let body = b"{\"choices\":[{\"message\":{\"content\":\"caf\xe9\"}}]}";
    for protocol in [Protocol::OpenAi, Protocol::DeepSeek, Protocol::Mistral] {
        let result = translate_response(protocol, body, &ctx(false));
        assert!(
            matches!(result, Err(crate::error::UpstreamError::Malformed(_))),
            "{protocol:?}"
        );
    }
    let fine = "{\"choices\":[{\"message\":{\"content\":\"café\"}}]}";
    assert!(translate_response(Protocol::OpenAi, fine.as_bytes(), &ctx(false)).is_ok());
}

/// Found by fuzzing (`stream_mistral`): a chunk padded with a vertical tab, a form feed or a
/// Unicode space passed the check (trimmed with `str::trim`) and was relayed untrimmed, which is
/// not JSON. Such a chunk is now dropped like any other malformed event; JSON's own whitespace
/// around a chunk is still fine.
#[test]
fn chunks_padded_with_non_json_whitespace_are_not_relayed() {
    let chunk = r#"{"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"x"}}]}"#;
    for protocol in [Protocol::OpenAi, Protocol::Mistral, Protocol::DeepSeek] {
        for padded in [
            format!("{chunk}\u{b}"),
            format!("\u{c}{chunk}"),
            format!("\u{a0}{chunk}"),
        ] {
            let sse = format!("data: {padded}\n\ndata: [DONE]\n\n");
            let r = replay(protocol, sse.as_bytes(), false);
            assert_eq!(r.end, Ok(true));
            assert!(r.chunks.is_empty(), "{protocol:?} relayed {padded:?}");
        }
        let sse = format!("data:  {chunk} \t\n\ndata: [DONE]\n\n");
        let r = replay(protocol, sse.as_bytes(), false);
        assert_eq!(content_of(&r.chunks), "x", "{protocol:?}");
    }
}
