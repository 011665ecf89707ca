//! OpenAI Responses API (`/v1/responses`): plain and streamed answers, function calls, reasoning
//! items, `max_output_tokens`, `previous_response_id`. Errors and faults are in
//! `responses_errors`, conformance with recordings in `responses_fixtures`.

use serde_json::{Value, json};

use super::*;

pub(crate) const PATH: &str = "/responses";
const ANSWER: &str = "[simulated sim] You said: hello there world";

/// Flat Responses function tools (not chat's nested `function` shape).
pub(crate) fn weather_tools() -> Value {
    json!([{"type": "function", "name": "get_weather", "description": "Weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"},
        "days": {"type": "integer"}}, "required": ["city", "days"]}},
        {"type": "function", "name": "get_time", "parameters": {"type": "object",
        "properties": {"zone": {"type": "string"}}, "required": ["zone"]}},
        {"type": "web_search"}])
}

/// POSTs a non-streamed request; status and body.
pub(crate) async fn create(sim: &Simulator, body: &Value) -> (u16, Value) {
    let response = post(sim, PATH, body).await;
    (response.status().as_u16(), response.json().await.unwrap())
}

/// POSTs a streamed request and returns its events' data, after checking the framing: an
/// `event:` line naming the data's `type`, `type` first in the data, sequence numbers from 0,
/// one response id throughout, no `[DONE]`.
pub(crate) async fn events(sim: &Simulator, body: &Value) -> Vec<Value> {
    let response = post(sim, PATH, body).await;
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap();
    assert!(content_type.starts_with("text/event-stream"));
    let text = response.text().await.unwrap();
    assert!(!text.contains("[DONE]"));
    let events = parse_sse(&text, "\n\n");
    let mut id = None;
    for (n, event) in events.iter().enumerate() {
        let data = event.json();
        assert_eq!(
            event.name.as_deref(),
            data["type"].as_str(),
            "{}",
            event.data
        );
        assert!(event.data.starts_with("{\"type\":"), "{}", event.data);
        assert_eq!(data["sequence_number"], n, "{}", event.data);
        if let Some(response_id) = data["response"]["id"].as_str() {
            assert_eq!(*id.get_or_insert(response_id.to_string()), response_id);
        }
    }
    events.iter().map(Event::json).collect()
}

fn types(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["type"].as_str().unwrap()).collect()
}

pub(crate) fn hello() -> Value {
    json!({"model": "gpt-4o", "instructions": "be brief", "input": "hello there world"})
}

fn id_ok(id: &Value, prefix: &str) -> bool {
    let id = id.as_str().unwrap_or_default();
    id.strip_prefix(prefix).is_some_and(|hex| {
        hex.len() == 50
            && hex
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    })
}

#[tokio::test]
async fn plain_answer_has_the_openai_shape() {
    let mut config = SimConfig::new(Protocol::OpenAi, "sim", KEY);
    config.answer_model = Some("gpt-4o-2024-08-06".into());
    let sim = Simulator::start(config).await.unwrap();
    let (status, body) = create(&sim, &hello()).await;
    assert_eq!(status, 200, "{body}");
    assert!(id_ok(&body["id"], "resp_"), "{}", body["id"]);
    assert_eq!(body["object"], "response");
    assert_eq!(body["status"], "completed");
    assert_eq!(body["model"], "gpt-4o-2024-08-06");
    assert_eq!(body["instructions"], "be brief");
    assert_eq!(body["incomplete_details"], Value::Null);
    assert_eq!(body["error"], Value::Null);
    assert_eq!(body["reasoning"], json!({"effort": null, "summary": null}));
    assert_eq!(body["text"]["format"], json!({"type": "text"}));
    assert_eq!(body["tools"], json!([]));
    assert_eq!(
        (body["store"].clone(), body["top_p"].clone()),
        (json!(true), json!(1.0))
    );
    let output = body["output"].as_array().unwrap();
    assert_eq!(output.len(), 1);
    let message = &output[0];
    assert!(id_ok(&message["id"], "msg_"));
    assert_eq!(message["type"], "message");
    assert_eq!(message["status"], "completed");
    assert_eq!(message["role"], "assistant");
    assert_eq!(message["content"][0]["type"], "output_text");
    assert_eq!(message["content"][0]["text"], ANSWER);
    assert_eq!(message["content"][0]["annotations"], json!([]));
    assert_eq!(
        body["usage"],
        json!({"input_tokens": 5, "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": 7, "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": 12})
    );
    let recorded = &sim.requests()[0];
    assert_eq!(recorded.path, "/v1/responses");
    assert_eq!(recorded.body, hello());
}

#[tokio::test]
async fn streamed_answer_sends_the_event_sequence() {
    let sim = start(Protocol::OpenAi).await;
    let mut request = hello();
    request["stream"] = json!(true);
    let events = events(&sim, &request).await;
    let mut expected = vec![
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ];
    expected.extend(["response.output_text.delta"; 7]);
    expected.extend([
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]);
    assert_eq!(types(&events), expected);
    let created = &events[0]["response"];
    assert_eq!(created["status"], "in_progress");
    assert_eq!(created["output"], json!([]));
    assert_eq!(created["usage"], Value::Null);
    let item = &events[2]["item"];
    assert_eq!(item["status"], "in_progress");
    assert_eq!(item["content"], json!([]));
    assert_eq!(events[3]["part"]["text"], "");
    let item_id = &item["id"];
    let text: String = events[4..11]
        .iter()
        .inspect(|d| assert!(d["item_id"] == *item_id && d["output_index"] == 0))
        .inspect(|d| assert!(d["content_index"] == 0 && d["logprobs"] == json!([])))
        .map(|d| d["delta"].as_str().unwrap())
        .collect();
    assert_eq!(text, ANSWER);
    assert_eq!(events[11]["text"], ANSWER);
    assert_eq!(events[12]["part"]["text"], ANSWER);
    assert_eq!(events[13]["item"]["status"], "completed");
    let done = &events[14]["response"];
    assert_eq!(done["status"], "completed");
    assert_eq!(done["output"][0]["content"][0]["text"], ANSWER);
    assert_eq!(done["usage"]["output_tokens"], 7);
}

#[tokio::test]
async fn input_items_are_read_like_chat_messages() {
    let sim = start(Protocol::OpenAi).await;
    let request = json!({"model": "gpt-4o", "input": [
        {"role": "developer", "content": "be brief"},
        {"type": "message", "role": "user", "content": [
            {"type": "input_text", "text": "look at"},
            {"type": "input_image", "image_url": "data:image/png;base64,AAAA"}]},
        {"role": "assistant", "content": [{"type": "output_text", "text": "ok"}]},
        {"role": "user", "content": [{"type": "input_text", "text": "and this"}]}]});
    let (status, body) = create(&sim, &request).await;
    assert_eq!(status, 200, "{body}");
    let text = &body["output"][0]["content"][0]["text"];
    assert_eq!(text, "[simulated sim] You said: and this");
    assert_eq!(body["usage"]["input_tokens"], 7);
}

#[tokio::test]
async fn flat_function_tools_are_called_then_results_quoted() {
    let sim = start(Protocol::OpenAi).await;
    let mut request = hello();
    request["tools"] = weather_tools();
    let (_, body) = create(&sim, &request).await;
    let call = &body["output"][0];
    assert_eq!(call["type"], "function_call");
    assert!(id_ok(&call["id"], "fc_"));
    let call_id = call["call_id"].as_str().unwrap();
    assert!(
        call_id.starts_with("call_") && call_id.len() == 29,
        "{call_id}"
    );
    assert_eq!(call["name"], "get_weather");
    assert_eq!(call["status"], "completed");
    let args: Value = serde_json::from_str(call["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(args, json!({"city": "example", "days": 1}));
    assert_eq!(body["tools"][0]["strict"], true);
    assert_eq!(body["tools"][1]["description"], Value::Null);
    assert_eq!(body["tools"][2], json!({"type": "web_search"}));

    request["tool_choice"] = json!({"type": "function", "name": "get_time"});
    let (_, body) = create(&sim, &request).await;
    assert_eq!(body["output"][0]["name"], "get_time");
    request["tool_choice"] = json!("none");
    let (_, body) = create(&sim, &request).await;
    assert_eq!(body["output"][0]["type"], "message");

    request["tool_choice"] = json!("auto");
    request["input"] = json!([{"role": "user", "content": "weather?"},
        {"type": "function_call", "call_id": call_id, "name": "get_weather", "arguments": "{}"},
        {"type": "function_call_output", "call_id": call_id, "output": "sunny, 21C"}]);
    let (status, body) = create(&sim, &request).await;
    assert_eq!(status, 200, "{body}");
    let text = &body["output"][0]["content"][0]["text"];
    assert_eq!(text, "[simulated sim] Tool result: sunny, 21C");
}

#[tokio::test]
async fn streamed_function_call_sends_argument_deltas() {
    let sim = start(Protocol::OpenAi).await;
    let mut request = hello();
    request["tools"] = weather_tools();
    request["stream"] = json!(true);
    let events = events(&sim, &request).await;
    let added = &events[2]["item"];
    assert_eq!(added["type"], "function_call");
    assert_eq!(added["arguments"], "");
    assert_eq!(added["status"], "in_progress");
    let deltas: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "response.function_call_arguments.delta")
        .collect();
    assert!(deltas.len() > 1, "arguments come in several deltas");
    assert!(deltas.iter().all(|d| d["item_id"] == added["id"]));
    let arguments: String = deltas
        .iter()
        .map(|d| d["delta"].as_str().unwrap())
        .collect();
    let done = events.len() - 3;
    assert_eq!(
        events[done]["type"],
        "response.function_call_arguments.done"
    );
    assert_eq!(events[done]["arguments"], arguments);
    assert_eq!(events[done + 1]["item"]["arguments"], arguments);
    assert_eq!(events[done + 1]["item"]["call_id"], added["call_id"]);
    assert_eq!(events[done + 2]["type"], "response.completed");
}

#[tokio::test]
async fn reasoning_models_answer_with_a_reasoning_item_first() {
    let sim = start(Protocol::OpenAi).await;
    let request = json!({"model": "o3-mini", "input": "hello there world"});
    let (_, body) = create(&sim, &request).await;
    let reasoning = &body["output"][0];
    assert!(id_ok(&reasoning["id"], "rs_"));
    assert_eq!(reasoning["type"], "reasoning");
    assert_eq!(reasoning["summary"], json!([]));
    assert!(reasoning.get("encrypted_content").is_none());
    assert_eq!(body["output"][1]["content"][0]["text"], ANSWER);
    assert_eq!(body["reasoning"]["effort"], "medium");
    let usage = &body["usage"];
    let thought = usage["output_tokens_details"]["reasoning_tokens"]
        .as_u64()
        .unwrap();
    assert!(thought > 0);
    assert_eq!(usage["output_tokens"], 7 + thought);

    let request = json!({"model": "gpt-4o", "input": "hi", "store": false,
        "reasoning": {"effort": "low", "summary": "auto"},
        "include": ["reasoning.encrypted_content"]});
    let (_, body) = create(&sim, &request).await;
    let reasoning = &body["output"][0];
    let encrypted = reasoning["encrypted_content"].as_str().unwrap();
    assert!(encrypted.starts_with("gAAAAA"));
    assert_eq!(reasoning["summary"][0]["type"], "summary_text");
    assert!(
        reasoning["summary"][0]["text"]
            .as_str()
            .unwrap()
            .contains("reasoning")
    );

    // A reasoning item handed back is accepted; effort `none` means no reasoning item.
    let request = json!({"model": "gpt-5.1", "reasoning": {"effort": "none"}, "input": [
        {"type": "reasoning", "id": reasoning["id"], "summary": [],
            "encrypted_content": encrypted},
        {"role": "user", "content": "again"}]});
    let (status, body) = create(&sim, &request).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["output"][0]["type"], "message");
}

#[tokio::test]
async fn streamed_reasoning_summary_events() {
    let sim = start(Protocol::OpenAi).await;
    let request = json!({"model": "gpt-5", "input": "hi", "stream": true,
        "reasoning": {"summary": "detailed"}});
    let events = events(&sim, &request).await;
    assert_eq!(events[2]["item"]["type"], "reasoning");
    assert_eq!(events[2]["item"]["summary"], json!([]));
    assert_eq!(events[3]["type"], "response.reasoning_summary_part.added");
    let summary: String = events
        .iter()
        .filter(|e| e["type"] == "response.reasoning_summary_text.delta")
        .map(|e| e["delta"].as_str().unwrap())
        .collect();
    let done = events
        .iter()
        .position(|e| e["type"] == "response.output_item.done");
    let reasoning_done = &events[done.unwrap()]["item"];
    assert_eq!(reasoning_done["summary"][0]["text"], summary);
    let last = events.last().unwrap();
    assert_eq!(last["response"]["output"][0]["type"], "reasoning");
    assert_eq!(last["response"]["output"][1]["type"], "message");
}

#[tokio::test]
async fn max_output_tokens_makes_the_answer_incomplete() {
    let sim = start(Protocol::OpenAi).await;
    let mut request = hello();
    request["max_output_tokens"] = json!(3);
    let (_, body) = create(&sim, &request).await;
    assert_eq!(body["status"], "incomplete");
    assert_eq!(
        body["incomplete_details"],
        json!({"reason": "max_output_tokens"})
    );
    assert_eq!(body["output"][0]["status"], "incomplete");
    assert_eq!(
        body["output"][0]["content"][0]["text"],
        "[simulated sim] You"
    );
    assert_eq!(body["usage"]["output_tokens"], 3);
    request["stream"] = json!(true);
    let events = events(&sim, &request).await;
    let last = events.last().unwrap();
    assert_eq!(last["type"], "response.incomplete");
    assert_eq!(last["response"]["status"], "incomplete");
}

#[tokio::test]
async fn previous_response_id_continues_stored_conversations() {
    let sim = start(Protocol::OpenAi).await;
    let mut request = hello();
    request["tools"] = weather_tools();
    let (_, first) = create(&sim, &request).await;
    let call_id = first["output"][0]["call_id"].clone();
    let follow_up = json!({"model": "gpt-4o", "previous_response_id": first["id"],
        "input": [{"type": "function_call_output", "call_id": call_id, "output": "sunny"}]});
    let (status, second) = create(&sim, &follow_up).await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(second["previous_response_id"], first["id"]);
    let text = &second["output"][0]["content"][0]["text"];
    assert_eq!(text, "[simulated sim] Tool result: sunny");
    // The remembered user turn counts as input again (instructions do not carry over).
    assert_eq!(second["usage"]["input_tokens"], 3 + 1);

    let chained = json!({"model": "gpt-4o", "previous_response_id": second["id"],
        "input": "thanks a lot"});
    let (_, third) = create(&sim, &chained).await;
    // 3 user words, 1 tool-result word, 5 words of the second answer, 3 new words.
    assert_eq!(third["usage"]["input_tokens"], 3 + 1 + 5 + 3);

    let unknown = json!({"model": "gpt-4o", "previous_response_id": "resp_nope", "input": "x"});
    let (status, body) = create(&sim, &unknown).await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        json!({"error": {"message": "Previous response with id 'resp_nope' not found.",
            "type": "invalid_request_error", "param": "previous_response_id",
            "code": "previous_response_not_found"}})
    );
    let unstored = json!({"model": "gpt-4o", "input": "x", "store": false});
    let (_, body) = create(&sim, &unstored).await;
    let after = json!({"model": "gpt-4o", "input": "y", "previous_response_id": body["id"]});
    assert_eq!(create(&sim, &after).await.0, 400);
}
