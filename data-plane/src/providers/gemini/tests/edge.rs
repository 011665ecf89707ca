//! The answers no recording covers: in-band and truncated streams, blocked prompts, safety and
//! malformed-call finishes, several candidates, logprobs, usage that does not add up, and the
//! mapping of Gemini error bodies (rate limit, exhausted quota, bad key, overload).
#![cfg(test)]

use axum::http::HeaderMap;
use serde_json::{Value, json};

use crate::error::UpstreamError;
use crate::providers::Protocol;
use crate::providers::gemini::{map_error, translate_response};
use crate::test_support::fixtures::{self, ctx, replay};

/// Gemini's SSE framing for a list of events.
fn sse(events: &[Value]) -> Vec<u8> {
    events
        .iter()
        .map(|e| format!("data: {e}\r\n\r\n"))
        .collect::<String>()
        .into_bytes()
}

fn text_event(text: &str, finish: Option<&str>) -> Value {
    let mut candidate =
        json!({ "content": { "role": "model", "parts": [{ "text": text }] }, "index": 0 });
    if let Some(reason) = finish {
        candidate["finishReason"] = json!(reason);
    }
    json!({ "candidates": [candidate], "modelVersion": "gemini-2.5-flash" })
}

fn whole(body: Value) -> Result<Value, UpstreamError> {
    let t = translate_response(body.to_string().as_bytes(), &ctx(false))?;
    Ok(serde_json::from_slice(&t.body).unwrap())
}

#[test]
fn a_stream_error_event_ends_the_stream_with_an_in_band_error() {
    let error = json!({ "error": { "code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE" } });
    let r = replay(
        Protocol::Gemini,
        &sse(&[text_event("Hel", None), error]),
        true,
    );
    assert_eq!(r.chunks.len(), 1, "what came before the error was relayed");
    let e = r.end.unwrap_err();
    assert_eq!(
        e,
        UpstreamError::InBand {
            code: Some("UNAVAILABLE".into()),
            message: "The model is overloaded.".into()
        }
    );
    assert!(
        e.retryable(),
        "before any byte reached the client, another attempt may serve it"
    );
}

#[test]
fn a_stream_that_closes_before_its_finish_reason_is_broken() {
    for events in [vec![text_event("Hel", None)], vec![]] {
        let r = replay(Protocol::Gemini, &sse(&events), true);
        assert!(
            matches!(r.end, Err(UpstreamError::StreamBroken(_))),
            "{r:?}"
        );
        assert!(
            r.chunks.iter().all(|c| c["choices"] != json!([])),
            "no usage chunk"
        );
    }
    let bad =
        b"data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"unterminated\r\n\r\n";
    assert!(matches!(
        replay(Protocol::Gemini, bad, true).end,
        Err(UpstreamError::Malformed(_))
    ));
}

#[test]
fn a_blocked_prompt_is_a_content_filter_refusal() {
    let blocked = json!({ "promptFeedback": { "blockReason": "PROHIBITED_CONTENT" },
        "usageMetadata": { "promptTokenCount": 7, "totalTokenCount": 7 }, "modelVersion": "gemini-2.5-flash" });
    let v = whole(blocked.clone()).unwrap();
    let choice = &v["choices"][0];
    assert_eq!(choice["finish_reason"], "content_filter");
    assert!(choice["message"]["content"].is_null());
    assert!(
        choice["message"]["refusal"]
            .as_str()
            .unwrap()
            .contains("PROHIBITED_CONTENT")
    );
    assert_eq!(v["usage"]["prompt_tokens"], 7);
    let r = replay(Protocol::Gemini, &sse(&[blocked]), true);
    assert_eq!(r.end, Ok(false));
    assert_eq!(r.chunks[0]["choices"][0]["delta"]["role"], "assistant");
    assert!(r.chunks[0]["choices"][0]["delta"]["refusal"].is_string());
    assert_eq!(r.chunks[1]["choices"][0]["finish_reason"], "content_filter");
    assert_eq!(r.chunks[2]["usage"]["prompt_tokens"], 7);
}

#[test]
fn finish_reasons() {
    for (gemini, openai) in [
        ("STOP", "stop"),
        ("MAX_TOKENS", "length"),
        ("SAFETY", "content_filter"),
        ("RECITATION", "content_filter"),
        ("BLOCKLIST", "content_filter"),
        ("PROHIBITED_CONTENT", "content_filter"),
        ("SPII", "content_filter"),
        ("IMAGE_SAFETY", "content_filter"),
        ("OTHER", "stop"),
        ("LANGUAGE", "stop"),
    ] {
        let v = whole(text_event("x", Some(gemini))).unwrap();
        assert_eq!(v["choices"][0]["finish_reason"], openai, "{gemini}");
        let r = replay(
            Protocol::Gemini,
            &sse(&[text_event("x", Some(gemini))]),
            false,
        );
        assert_eq!(
            r.chunks.last().unwrap()["choices"][0]["finish_reason"],
            openai
        );
    }
    let malformed = text_event("", Some("MALFORMED_FUNCTION_CALL"));
    assert!(
        matches!(whole(malformed.clone()), Err(UpstreamError::Malformed(m)) if m.contains("MALFORMED_FUNCTION_CALL"))
    );
    assert!(matches!(
        replay(Protocol::Gemini, &sse(&[malformed]), true).end,
        Err(UpstreamError::Malformed(_))
    ));
    assert!(matches!(
        whole(json!({ "candidates": [] })),
        Err(UpstreamError::Malformed(_))
    ));
    assert!(matches!(
        whole(json!({ "error": { "code": 500 } })),
        Err(UpstreamError::Malformed(_))
    ));
}

#[test]
fn several_candidates_are_several_choices() {
    let call = json!({ "functionCall": { "name": "f", "args": { "a": 1 } } });
    let answer = json!({ "candidates": [
        { "content": { "parts": [{ "text": "one" }] }, "finishReason": "STOP" },
        { "content": { "parts": [call] }, "finishReason": "STOP", "index": 1 },
    ] });
    let v = whole(answer).unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "one");
    assert_eq!(v["choices"][1]["index"], 1);
    assert_eq!(v["choices"][1]["finish_reason"], "tool_calls");
    assert_eq!(
        v["choices"][1]["message"]["tool_calls"][0]["function"]["arguments"],
        "{\"a\":1}"
    );
    assert_ne!(v["choices"][1]["message"]["tool_calls"][0]["id"], "");
    let part = |i: u32, text: &str, finish: bool| {
        let mut c = json!({ "content": { "parts": [{ "text": text }] }, "index": i });
        if finish {
            c["finishReason"] = json!("STOP");
        }
        json!({ "candidates": [c] })
    };
    let events = [part(0, "a", false), part(1, "b", false), part(0, "c", true)];
    let r = replay(Protocol::Gemini, &sse(&events), true);
    assert!(
        matches!(r.end, Err(UpstreamError::StreamBroken(_))),
        "candidate 1 never finished"
    );
    let r = replay(
        Protocol::Gemini,
        &sse(&[&events[..], &[part(1, "d", true)]].concat()),
        true,
    );
    assert_eq!(r.end, Ok(false));
    let text = |i: u64| -> String {
        r.chunks
            .iter()
            .filter(|c| c["choices"][0]["index"] == i)
            .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
            .collect()
    };
    assert_eq!((text(0), text(1)), ("ac".into(), "bd".into()));
}

#[test]
fn logprobs_are_mapped() {
    let mut answer = text_event("Hi", Some("STOP"));
    answer["candidates"][0]["logprobsResult"] = json!({
        "topCandidates": [{ "candidates": [{ "token": "Hi", "logProbability": -0.1 }, { "token": "Hey", "logProbability": -2.5 }] }],
        "chosenCandidates": [{ "token": "Hi", "logProbability": -0.1 }],
    });
    let v = whole(answer.clone()).unwrap();
    let content = &v["choices"][0]["logprobs"]["content"][0];
    assert_eq!(content["token"], "Hi");
    assert_eq!(content["logprob"], -0.1);
    assert_eq!(content["bytes"], json!([72, 105]));
    assert_eq!(content["top_logprobs"][1]["token"], "Hey");
    let r = replay(Protocol::Gemini, &sse(&[answer]), false);
    assert_eq!(
        r.chunks[0]["choices"][0]["logprobs"]["content"][0]["token"],
        "Hi"
    );
}

#[test]
fn usage_never_undercounts_the_billed_total() {
    let mut answer = text_event("x", Some("STOP"));
    answer["usageMetadata"] = json!({ "promptTokenCount": 10, "candidatesTokenCount": 5,
        "cachedContentTokenCount": 4, "toolUsePromptTokenCount": 2, "totalTokenCount": 30 });
    let t = translate_response(answer.to_string().as_bytes(), &ctx(false)).unwrap();
    let u = t.usage.unwrap();
    assert_eq!(
        (
            u.prompt_tokens,
            u.completion_tokens,
            u.cached_tokens,
            u.reasoning_tokens
        ),
        (12, 18, 4, 0)
    );
}

/// Found by fuzzing (`stream_gemini`, `response_gemini`): absurd token counts overflowed the
/// sums (a panic with overflow checks, a wrapped count without).
#[test]
fn absurd_token_counts_saturate() {
    let mut answer = text_event("x", Some("STOP"));
    answer["usageMetadata"] = json!({ "promptTokenCount": 7, "totalTokenCount": 5,
        "candidatesTokenCount": u64::MAX, "thoughtsTokenCount": 5 });
    let t = translate_response(answer.to_string().as_bytes(), &ctx(false)).unwrap();
    assert_eq!(t.usage.unwrap().completion_tokens, u64::MAX);
    answer["usageMetadata"] = json!({ "promptTokenCount": u64::MAX,
        "toolUsePromptTokenCount": 3, "totalTokenCount": 9 });
    let r = replay(Protocol::Gemini, &sse(&[answer]), true);
    assert_eq!(r.end, Ok(false));
    assert_eq!(r.chunks.last().unwrap()["usage"]["prompt_tokens"], u64::MAX);
}

fn error(status: u16, body: Value) -> UpstreamError {
    map_error(status, &HeaderMap::new(), body.to_string().as_bytes())
}

fn code(e: &UpstreamError) -> Option<&str> {
    match e {
        UpstreamError::Status { code, .. } => code.as_deref(),
        _ => None,
    }
}

#[test]
fn rate_limits_retry_and_exhausted_quotas_do_not() {
    let body = fixtures::text("gemini/vercel-ai__google-429-retry-info.json");
    let e = map_error(429, &HeaderMap::new(), body.as_bytes());
    assert_eq!(
        e,
        UpstreamError::Status {
            status: 429,
            code: Some("RESOURCE_EXHAUSTED".into()),
            message: "You exceeded your current quota, please check your plan.".into(),
            retry_after: Some(35),
        }
    );
    assert!(e.retryable());
    assert_eq!(e.to_api_error("gemini").retry_after(), Some(35));
    let quota = |message: &str, quota_id: &str| {
        json!({ "error": { "code": 429, "status": "RESOURCE_EXHAUSTED",
        "message": message, "details": [{ "@type": "type.googleapis.com/google.rpc.QuotaFailure",
        "violations": [{ "quotaId": quota_id }] }] } })
    };
    let billing = error(
        429,
        quota(
            "You exceeded your current quota, please check your plan and billing details.",
            "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
        ),
    );
    assert_eq!(code(&billing), Some("insufficient_quota"));
    assert!(!billing.retryable());
    assert_eq!(
        billing.to_api_error("gemini").code(),
        Some("insufficient_quota")
    );
    let daily = error(
        429,
        quota(
            "Quota exceeded.",
            "GenerateRequestsPerDayPerProjectPerModel-FreeTier",
        ),
    );
    assert!(!daily.retryable());
    let plain = error(
        429,
        quota(
            "You exceeded your current quota, please check your plan.",
            "PerMinute",
        ),
    );
    assert!(
        plain.retryable(),
        "a rate limit without billing words is retried"
    );
    let mut headers = HeaderMap::new();
    headers.insert("retry-after", "7".parse().unwrap());
    let body = quota(
        "You exceeded your current quota, please check your plan and billing details.",
        "PerMinute",
    );
    let hinted = map_error(429, &headers, body.to_string().as_bytes());
    assert!(hinted.retryable(), "a Retry-After says it will pass");
    assert!(matches!(
        hinted,
        UpstreamError::Status {
            retry_after: Some(7),
            ..
        }
    ));
}

#[test]
fn other_errors_keep_gemini_status_as_the_code() {
    let overloaded = error(
        503,
        json!({ "error": { "code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE" } }),
    );
    assert_eq!(code(&overloaded), Some("UNAVAILABLE"));
    assert!(overloaded.retryable());
    let bad_key = error(
        400,
        json!({ "error": { "code": 400, "message": "API key not valid. Please pass a valid API key.",
        "status": "INVALID_ARGUMENT", "details": [{ "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        "reason": "API_KEY_INVALID", "domain": "googleapis.com" }] } }),
    );
    assert!(matches!(bad_key, UpstreamError::Status { status: 401, .. }));
    assert_eq!(
        bad_key.to_api_error("gemini").status(),
        502,
        "our credential, not the client's request"
    );
    let unknown_field = error(
        400,
        json!({ "error": { "code": 400, "status": "INVALID_ARGUMENT",
        "message": "Invalid JSON payload received. Unknown name \"foo\": Cannot find field." } }),
    );
    assert!(!unknown_field.retryable());
    assert_eq!(unknown_field.to_api_error("gemini").status(), 400);
    let array = map_error(
        500,
        &HeaderMap::new(),
        br#"[{"error": {"code": 500, "message": "Internal error", "status": "INTERNAL"}}]"#,
    );
    assert_eq!(code(&array), Some("INTERNAL"));
    let html = map_error(502, &HeaderMap::new(), b"<html>Bad Gateway</html>");
    assert_eq!(
        html,
        UpstreamError::Status {
            status: 502,
            code: None,
            message: "HTTP 502".into(),
            retry_after: None
        }
    );
}

/// Found by reading the Gemini adapter while fuzzing it: a streamed argument path of thousands of
/// steps (`$.a.a.a…`, well within the 1 MiB argument budget) built a value nested as deep, whose
/// serialisation overflowed the stack and aborted the whole process. Paths are now limited.
#[test]
fn streamed_argument_paths_are_limited_in_depth() {
    let call = |path: &str, more: bool| {
        json!({ "candidates": [{ "content": { "role": "model", "parts": [{ "functionCall": {
            "partialArgs": [{ "jsonPath": path, "stringValue": "x" }], "willContinue": more } }] },
            "index": 0 }] })
    };
    let start = json!({ "candidates": [{ "content": { "role": "model", "parts": [{
        "functionCall": { "name": "f", "willContinue": true } }] }, "index": 0 }] });
    let stop = json!({ "candidates": [{ "content": { "role": "model", "parts": [] },
        "finishReason": "STOP", "index": 0 }] });

    let deep = format!("${}", ".a".repeat(100_000));
    let r = replay(
        Protocol::Gemini,
        &sse(&[start.clone(), call(&deep, false), stop.clone()]),
        false,
    );
    assert!(
        matches!(r.end, Err(UpstreamError::Malformed(_))),
        "{:?}",
        r.end
    );

    let ok = format!("${}", ".a".repeat(64));
    let r = replay(
        Protocol::Gemini,
        &sse(&[start, call(&ok, false), stop]),
        false,
    );
    assert_eq!(r.end, Ok(false));
    let args = r
        .chunks
        .iter()
        .find_map(|c| c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"].as_str())
        .unwrap();
    assert!(args.starts_with(r#"{"a":{"a":"#), "{args}");
}

/// As for Anthropic: a long `modelVersion` is not repeated on every chunk.
#[test]
fn a_long_model_version_is_not_echoed_on_every_chunk() {
    let mut first = text_event("a", None);
    first["modelVersion"] = json!("g".repeat(10_000));
    let r = replay(
        Protocol::Gemini,
        &sse(&[first, text_event("b", Some("STOP"))]),
        false,
    );
    assert_eq!(r.end, Ok(false));
    assert!(
        r.chunks.iter().all(|c| c["model"] == "test-model"),
        "{:?}",
        r.chunks[0]
    );
}
