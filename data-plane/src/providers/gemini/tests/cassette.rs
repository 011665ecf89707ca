//! Recorded requests replayed the other way: every request in the `fixtures/gemini/` cassettes is
//! rewritten as the equivalent OpenAI request, built with the adapter, and compared with what
//! was really sent (path, contents, system instruction, tools, generation config, thought
//! signatures). Also the thought-signature round trips on recorded Gemini 3 answers: through the
//! cache, with the signature the client sends back itself, on text, and the placeholder for
//! history from elsewhere; and a tool result whose call was trimmed from the history.
#![cfg(test)]

use serde_json::{Map, Value, json};

use crate::providers::gemini::tests::request::{build, build_for};
use crate::providers::gemini::{GeminiStream, SKIP_SIGNATURE, build_request, translate_response};
use crate::providers::{RequestCtx, ResponseCtx, StreamTranslator};
use crate::test_support::fixtures::{self, Interaction};
use crate::upstream::sse::SseDecoder;

const CASSETTES: &[&str] = &[
    "pydantic-ai__test_google_model_iter_stream.yaml",
    "pydantic-ai__test_google_model_max_tokens.yaml",
    "pydantic-ai__test_google_model_thinking_part_iter.yaml",
    "pydantic-ai__test_google_streaming_tool_call_thought_signature.yaml",
];

/// A schema with Gemini's upper-case types turned back into JSON Schema.
fn json_schema(schema: &Value) -> Value {
    match schema {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| match (k.as_str(), v) {
                    ("type", Value::String(t)) => (k.clone(), json!(t.to_lowercase())),
                    _ => (k.clone(), json_schema(v)),
                })
                .collect(),
        ),
        Value::Array(list) => Value::Array(list.iter().map(json_schema).collect()),
        other => other.clone(),
    }
}

/// The OpenAI request a client would send for a recorded Gemini request. With `signatures`, the
/// client sends thought signatures back itself (`extra_content.google.thought_signature`).
fn openai_request(recorded: &Value, signatures: bool) -> Map<String, Value> {
    let mut messages = Vec::new();
    for part in recorded["systemInstruction"]["parts"]
        .as_array()
        .into_iter()
        .flatten()
    {
        messages.push(json!({ "role": "system", "content": part["text"] }));
    }
    for content in recorded["contents"].as_array().unwrap() {
        let parts = content["parts"].as_array().unwrap();
        let text: String = parts.iter().filter_map(|p| p["text"].as_str()).collect();
        if content["role"] == "model" {
            let calls: Vec<Value> = parts
                .iter()
                .filter(|p| p.get("functionCall").is_some())
                .map(|p| {
                    let call = &p["functionCall"];
                    let mut tool_call = json!({ "id": call["id"], "type": "function",
                        "function": { "name": call["name"], "arguments": call["args"].to_string() } });
                    if let Some(signature) = p.get("thoughtSignature").filter(|_| signatures) {
                        tool_call["extra_content"] = json!({ "google": { "thought_signature": signature } });
                    }
                    tool_call
                })
                .collect();
            messages.push(json!({ "role": "assistant", "content": text, "tool_calls": calls }));
            continue;
        }
        if !text.is_empty() {
            messages.push(json!({ "role": "user", "content": text }));
        }
        for result in parts.iter().filter_map(|p| p.get("functionResponse")) {
            let content = &result["response"]["return_value"];
            messages
                .push(json!({ "role": "tool", "tool_call_id": result["id"], "content": content }));
        }
    }
    let mut body = Map::new();
    body.insert("messages".into(), Value::Array(messages));
    let declarations = recorded["tools"][0]["functionDeclarations"].as_array();
    let tools: Vec<Value> = declarations
        .into_iter()
        .flatten()
        .map(|d| {
            let parameters = d.get("parameters_json_schema").cloned();
            let parameters = parameters.unwrap_or_else(|| json_schema(&d["parameters"]));
            json!({ "type": "function", "function": {
                "name": d["name"], "description": d["description"], "parameters": parameters } })
        })
        .collect();
    if !tools.is_empty() {
        body.insert("tools".into(), Value::Array(tools));
    }
    let config = &recorded["generationConfig"];
    if let Some(max) = config.get("maxOutputTokens") {
        body.insert("max_tokens".into(), max.clone());
    }
    let thinking = &config["thinkingConfig"];
    if thinking["thinking_budget"] == 0 {
        body.insert("reasoning_effort".into(), json!("none"));
    } else if thinking["includeThoughts"] == true {
        body.insert("reasoning_effort".into(), json!("medium"));
    }
    if config.get("responseModalities").is_some() {
        body.insert("modalities".into(), json!(["text"]));
    }
    body
}

/// Signatures compare equal in either base64 alphabet (the recorder re-encoded them URL-safe).
fn signature(part: &Value) -> Option<String> {
    part["thoughtSignature"]
        .as_str()
        .map(|s| s.replace('-', "+").replace('_', "/"))
}

/// Builds the OpenAI equivalent of `interaction`'s request and compares it with the recording.
fn assert_equivalent(interaction: &Interaction, body: &Map<String, Value>) -> Value {
    let recorded = interaction.request.as_ref().unwrap();
    let target = interaction.uri.split("/v1beta/models/").nth(1).unwrap();
    let (model, method) = target.split_once(':').unwrap();
    let stream = method.starts_with("streamGenerateContent");
    let call = build_request(&RequestCtx {
        body,
        model,
        stream,
        cache: &crate::test_support::fixtures::cache(),
    })
    .unwrap();
    assert_eq!(
        format!("/v1beta{}", call.path),
        interaction.uri.split_once(".com").unwrap().1
    );
    assert!(!call.path.contains("key="), "never a key in the URL");
    let built: Value = serde_json::from_slice(&call.body).unwrap();
    let (ours, theirs) = (
        built["contents"].as_array().unwrap(),
        recorded["contents"].as_array().unwrap(),
    );
    assert_eq!(ours.len(), theirs.len(), "{}", interaction.uri);
    for (ours, theirs) in ours.iter().zip(theirs) {
        assert_eq!(ours["role"], theirs["role"]);
        let (ours, theirs) = (
            ours["parts"].as_array().unwrap(),
            theirs["parts"].as_array().unwrap(),
        );
        assert_eq!(ours.len(), theirs.len());
        for (ours, theirs) in ours.iter().zip(theirs) {
            assert_eq!(ours.get("text"), theirs.get("text"));
            assert_eq!(ours["functionCall"]["name"], theirs["functionCall"]["name"]);
            assert_eq!(ours["functionCall"]["args"], theirs["functionCall"]["args"]);
            let (result, recorded_result) =
                (&ours["functionResponse"], &theirs["functionResponse"]);
            assert_eq!(result["name"], recorded_result["name"]);
            assert_eq!(
                result["response"]["content"],
                recorded_result["response"]["return_value"]
            );
            assert_eq!(
                signature(ours),
                signature(theirs),
                "thought signature survives"
            );
        }
    }
    let texts = |v: &Value| -> Vec<Value> {
        let parts = v["systemInstruction"]["parts"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        parts.iter().map(|p| p["text"].clone()).collect()
    };
    assert_eq!(texts(&built), texts(recorded));
    let declarations = |v: &Value| v["tools"][0]["functionDeclarations"].as_array().cloned();
    for (ours, theirs) in declarations(&built)
        .into_iter()
        .flatten()
        .zip(declarations(recorded).unwrap_or_default())
    {
        assert_eq!(
            (&ours["name"], &ours["description"]),
            (&theirs["name"], &theirs["description"])
        );
        let empty = theirs.get("parameters_json_schema").is_some()
            || theirs["parameters"]["properties"] == json!({});
        let expected = if empty {
            &Value::Null
        } else {
            &theirs["parameters"]
        };
        assert_eq!(
            &ours["parameters"], expected,
            "schema of {}",
            theirs["name"]
        );
    }
    let (ours, theirs) = (&built["generationConfig"], &recorded["generationConfig"]);
    assert_eq!(ours["maxOutputTokens"], theirs["maxOutputTokens"]);
    if let Some(budget) = theirs["thinkingConfig"].get("thinking_budget") {
        assert_eq!(&ours["thinkingConfig"]["thinkingBudget"], budget);
    }
    if let Some(include) = theirs["thinkingConfig"].get("includeThoughts") {
        assert_eq!(&ours["thinkingConfig"]["includeThoughts"], include);
    }
    built
}

#[test]
fn recorded_requests_are_rebuilt_from_openai_equivalents() {
    let mut requests = 0;
    for name in CASSETTES {
        for interaction in fixtures::cassette(&format!("gemini/{name}")) {
            let recorded = interaction.request.as_ref().unwrap();
            // The client sends signatures back itself; cache-free.
            assert_equivalent(&interaction, &openai_request(recorded, true));
            requests += 1;
        }
    }
    assert_eq!(requests, 7, "every recorded request was replayed");
}

/// Streams raw bytes through a fresh translator with its own response id.
fn stream_with(ctx: ResponseCtx, raw: &[u8]) -> Vec<Value> {
    let mut translator = GeminiStream::new(ctx);
    let (mut decoder, mut events, mut out) = (SseDecoder::new(), Vec::new(), Vec::new());
    decoder.feed(raw, &mut events).unwrap();
    decoder.finish(&mut events).unwrap();
    for event in events {
        translator.event(event, &mut out).unwrap();
    }
    translator.end(&mut out).unwrap();
    out.iter()
        .map(|c| serde_json::from_str(c).unwrap())
        .collect()
}

/// A response context with an id no other test uses (the cache is process-wide).
fn unique_ctx() -> ResponseCtx {
    ResponseCtx {
        id: format!("chatcmpl-{}", uuid::Uuid::new_v4().simple()),
        ..fixtures::ctx(true)
    }
}

#[test]
fn thought_signature_round_trip_through_the_cache() {
    let interactions = fixtures::cassette(
        "gemini/pydantic-ai__test_google_streaming_tool_call_thought_signature.yaml",
    );
    // Turn 1: Gemini 3 answers with a signed call; the client only sees an id.
    let chunks = stream_with(
        unique_ctx(),
        interactions[0].raw.as_deref().unwrap().as_bytes(),
    );
    let call = chunks
        .iter()
        .find_map(|c| {
            c["choices"][0]["delta"]["tool_calls"][0]
                .as_object()
                .cloned()
        })
        .unwrap();
    let id = call["id"].as_str().unwrap();
    // Turn 2: the client sends the history back in plain OpenAI form, without the signature.
    let recorded_id =
        interactions[1].request.as_ref().unwrap()["contents"][1]["parts"][0]["functionCall"]["id"]
            .as_str()
            .unwrap()
            .to_string();
    let body = openai_request(interactions[1].request.as_ref().unwrap(), false);
    let body: Map<String, Value> =
        serde_json::from_str(&Value::Object(body).to_string().replace(&recorded_id, id)).unwrap();
    let messages = body["messages"].as_array().unwrap();
    assert!(messages[1]["tool_calls"][0].get("extra_content").is_none());
    // The recorded request (what pydantic-ai really sent) carries the same signature.
    assert_equivalent(&interactions[1], &body);
}

#[test]
fn a_trimmed_history_finds_the_function_name_in_the_cache() {
    let answer = fixtures::text("gemini/vercel-ai__google-tool-call.json");
    let translated = translate_response(answer.as_bytes(), &unique_ctx()).unwrap();
    let v: Value = serde_json::from_slice(&translated.body).unwrap();
    let id = v["choices"][0]["message"]["tool_calls"][0]["id"]
        .as_str()
        .unwrap();
    let body = build(json!({ "messages": [
        { "role": "user", "content": "x" },
        { "role": "tool", "tool_call_id": id, "content": "18°C" },
    ] }))
    .unwrap();
    assert_eq!(
        body["contents"][0]["parts"][1]["functionResponse"]["name"],
        "weather"
    );
}

/// A conversation with one tool call and its result.
fn history(call: Value) -> Value {
    let id = call["id"].clone();
    json!({ "messages": [
        { "role": "user", "content": "Weather?" },
        { "role": "assistant", "content": null, "tool_calls": [call] },
        { "role": "tool", "tool_call_id": id, "content": "sunny" },
    ] })
}

#[test]
fn thought_signatures_come_back_on_the_next_turn() {
    let answer = fixtures::json("gemini/vercel-ai__google-tool-call.json");
    let signature = answer["candidates"][0]["content"]["parts"][0]["thoughtSignature"].clone();
    let translated = translate_response(answer.to_string().as_bytes(), &unique_ctx()).unwrap();
    let v: Value = serde_json::from_slice(&translated.body).unwrap();
    let mut call = v["choices"][0]["message"]["tool_calls"][0].clone();
    assert_eq!(
        call["extra_content"]["google"]["thought_signature"], signature,
        "shown to the client"
    );
    let signed = |body: Value| {
        let (_, b, _) = build_for("gemini-3-pro-preview", false, body).unwrap();
        assert_eq!(
            b["contents"][2]["parts"][0]["functionResponse"]["name"],
            "weather"
        );
        b["contents"][1]["parts"][0]["thoughtSignature"].clone()
    };
    // The client sends it back itself.
    assert_eq!(signed(history(call.clone())), signature);
    // A plain OpenAI client drops the extra field: the cache restores it.
    call.as_object_mut().unwrap().remove("extra_content");
    assert_eq!(signed(history(call)), signature);
    // History from elsewhere has no signature: Gemini 3 gets the documented placeholder.
    let foreign = history(
        json!({ "id": "x", "type": "function", "function": { "name": "weather", "arguments": "{}" } }),
    );
    assert_eq!(signed(foreign.clone()), SKIP_SIGNATURE);
    let (_, older, _) = build_for("gemini-2.5-flash", false, foreign).unwrap();
    assert!(
        older["contents"][1]["parts"][0]
            .get("thoughtSignature")
            .is_none()
    );
}

#[test]
fn a_signature_on_text_comes_back_with_the_same_text() {
    let answer = fixtures::json("gemini/vercel-ai__google-text.json");
    let part = &answer["candidates"][0]["content"]["parts"][0];
    let translated = translate_response(answer.to_string().as_bytes(), &unique_ctx()).unwrap();
    let v: Value = serde_json::from_slice(&translated.body).unwrap();
    let text = v["choices"][0]["message"]["content"].clone();
    assert_eq!(text, part["text"]);
    let body = build(json!({ "messages": [
        { "role": "user", "content": "How many r?" },
        { "role": "assistant", "content": text },
        { "role": "user", "content": "Sure?" },
    ] }))
    .unwrap();
    assert_eq!(
        body["contents"][1]["parts"][0]["thoughtSignature"],
        part["thoughtSignature"]
    );
    let edited = build(json!({ "messages": [
        { "role": "user", "content": "How many r?" },
        { "role": "assistant", "content": "Edited." },
    ] }))
    .unwrap();
    assert!(
        edited["contents"][1]["parts"][0]
            .get("thoughtSignature")
            .is_none()
    );
}

#[test]
fn a_streamed_signature_on_text_comes_back_too() {
    // The signature arrives on an empty text part after the text, in the finishing event.
    let lines = fixtures::chunks("gemini/vercel-ai__google-text.chunks.txt");
    let sse = fixtures::chunks_to_sse(crate::providers::Protocol::Gemini, &lines);
    let chunks = stream_with(unique_ctx(), &sse);
    let text = fixtures::content_of(&chunks);
    let last: Value = serde_json::from_str(lines.last().unwrap()).unwrap();
    let signature = &last["candidates"][0]["content"]["parts"][0]["thoughtSignature"];
    assert!(signature.is_string());
    let body = build(json!({ "messages": [
        { "role": "user", "content": "How many r?" },
        { "role": "assistant", "content": [{ "type": "text", "text": text }] },
        { "role": "user", "content": "Sure?" },
    ] }))
    .unwrap();
    assert_eq!(
        &body["contents"][1]["parts"][0]["thoughtSignature"],
        signature
    );
}
