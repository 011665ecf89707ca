//! OpenAI's Responses API (`POST /v1/responses`): the request is read into the chat simulator's
//! conversation (so both endpoints answer alike), `previous_response_id` is resolved from the
//! simulator's memory, and the answer is the `response` object with its output items (a reasoning
//! item for reasoning models, then a message or a function call). `responses_stream` streams it.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use crate::errors::ApiError;
use crate::pipeline::Reply;
use crate::state::SimState;
use crate::text::{self, Decision, Finish};
use crate::{openai, responses_checks, responses_stream};

/// Length of the hex part of response and item ids (`resp_`, `msg_`, `fc_`, `rs_`), as OpenAI's.
const ID_HEX: usize = 50;

/// One output item of an answer.
pub(crate) enum Output {
    Reasoning {
        id: String,
        /// The summary in word chunks, when `reasoning.summary` asked for one.
        summary: Option<Vec<String>>,
        /// Present when `include` asks for `reasoning.encrypted_content`.
        encrypted: Option<String>,
    },
    Message {
        id: String,
        pieces: Vec<String>,
        /// False when `max_output_tokens` cut the text.
        complete: bool,
    },
    Call {
        id: String,
        call_id: String,
        name: String,
        arguments: String,
    },
}

impl Output {
    /// The item as `response.output_item.added` announces it.
    pub(crate) fn added(&self) -> Value {
        match self {
            Output::Reasoning { .. } => self.reasoning_item(json!([])),
            Output::Message { id, .. } => json!({"id": id, "type": "message",
                "status": "in_progress", "content": [], "role": "assistant"}),
            Output::Call {
                id, call_id, name, ..
            } => json!({"id": id, "type": "function_call", "status": "in_progress",
                "arguments": "", "call_id": call_id, "name": name}),
        }
    }

    /// The finished item, as in `output` and `response.output_item.done`.
    pub(crate) fn item(&self) -> Value {
        match self {
            Output::Reasoning { summary, .. } => {
                let parts: Vec<Value> = summary
                    .iter()
                    .map(|pieces| json!({"type": "summary_text", "text": pieces.concat()}))
                    .collect();
                self.reasoning_item(Value::Array(parts))
            }
            Output::Message {
                id,
                pieces,
                complete,
            } => json!({"id": id, "type": "message",
                "status": if *complete { "completed" } else { "incomplete" },
                "content": [output_text(&pieces.concat())], "role": "assistant"}),
            Output::Call {
                id,
                call_id,
                name,
                arguments,
            } => json!({"id": id, "type": "function_call", "status": "completed",
                "arguments": arguments, "call_id": call_id, "name": name}),
        }
    }

    fn reasoning_item(&self, summary: Value) -> Value {
        let mut item = json!({"id": self.id(), "type": "reasoning", "summary": summary});
        if let Output::Reasoning {
            encrypted: Some(content),
            ..
        } = self
        {
            item["encrypted_content"] = json!(content);
        }
        item
    }

    pub(crate) fn id(&self) -> &str {
        match self {
            Output::Reasoning { id, .. } | Output::Message { id, .. } | Output::Call { id, .. } => {
                id
            }
        }
    }
}

/// An `output_text` content part.
pub(crate) fn output_text(text: &str) -> Value {
    json!({"type": "output_text", "annotations": [], "logprobs": [], "text": text})
}

/// Everything needed to render one answer, plain or streamed.
pub(crate) struct Answer {
    pub id: String,
    pub created_at: u64,
    pub outputs: Vec<Output>,
    /// `max_output_tokens` ended the answer early.
    pub incomplete: bool,
    pub usage: Value,
    /// The request settings the response object echoes (`model`, `tools`, `temperature`, ...).
    pub settings: Map<String, Value>,
    /// Streamed deltas carry an `obfuscation` padding field (`stream_options.include_obfuscation`).
    pub obfuscate: bool,
}

impl Answer {
    /// `completed`, or `incomplete` when `max_output_tokens` cut the answer.
    pub(crate) fn final_status(&self) -> &'static str {
        if self.incomplete {
            "incomplete"
        } else {
            "completed"
        }
    }

    /// The finished output items.
    pub(crate) fn items(&self) -> Vec<Value> {
        self.outputs.iter().map(Output::item).collect()
    }

    /// The `response` object in `status`, with `output` and `usage` as given.
    pub(crate) fn object(&self, status: &str, output: Vec<Value>, usage: Value) -> Value {
        let mut object = self.settings.clone();
        let done = matches!(status, "completed" | "incomplete");
        let mut set = |key: &str, value: Value| {
            object.insert(key.to_string(), value);
        };
        set("id", json!(self.id));
        set("object", json!("response"));
        set("created_at", json!(self.created_at));
        set("status", json!(status));
        set("completed_at", json!(done.then(text::unix_now)));
        set("error", Value::Null);
        set(
            "incomplete_details",
            if status == "incomplete" {
                json!({"reason": "max_output_tokens"})
            } else {
                Value::Null
            },
        );
        set("output", Value::Array(output));
        set("usage", usage);
        if done || status == "failed" {
            // The tier that served; requests ask for `auto` by default.
            let served = self
                .settings
                .get("service_tier")
                .and_then(Value::as_str)
                .filter(|tier| ["flex", "priority", "scale"].contains(tier))
                .unwrap_or("default");
            set("service_tier", json!(served));
        }
        Value::Object(object)
    }

    /// The `response.failed` object OpenAI ends a stream with when generation breaks.
    pub(crate) fn failed(&self) -> Value {
        let mut object = self.object("failed", Vec::new(), Value::Null);
        object["error"] = json!({"code": "server_error", "message": format!(
            "An error occurred while processing your request. You can retry your request, or \
             contact us through our help center at help.openai.com if the error persists. Please \
             include the request ID req_{} in your message.", text::random_hex(32))});
        object
    }
}

/// Answers `POST /v1/responses` (OpenAI protocol only).
pub(crate) fn respond(state: &Arc<SimState>, body: &Value) -> Result<Reply, ApiError> {
    let config = state.config();
    responses_checks::validate(config, body)?;
    let context = match body["previous_response_id"].as_str() {
        Some(id) => state.stored_response(id).ok_or_else(|| {
            ApiError::new(400, format!("Previous response with id '{id}' not found."))
                .param("previous_response_id")
                .code("previous_response_not_found")
        })?,
        None => Arc::new(Vec::new()),
    };
    let mut items: Vec<Value> = context.iter().cloned().collect();
    items.extend(input_items(&body["input"]));
    responses_checks::check_call_outputs(&items)?;

    let model = body["model"].as_str().unwrap_or_default();
    let mut conversation = openai::conversation(&chat_request(body, &items));
    let reasoning = reasons(model, body).then(|| text::reasoning(&conversation));
    let reasoning_tokens = reasoning.as_ref().map_or(0, |r| r.len() as u64);
    // Reasoning counts against `max_output_tokens`, as it does at OpenAI.
    conversation.max_tokens = conversation
        .max_tokens
        .map(|max| max.saturating_sub(reasoning_tokens));
    let decision = text::decide(&config.name, &conversation);

    let mut outputs = Vec::new();
    if let Some(pieces) = reasoning {
        let summary = body.pointer("/reasoning/summary").and_then(Value::as_str);
        let include = body["include"].as_array().into_iter().flatten();
        let encrypted = include
            .filter_map(Value::as_str)
            .any(|i| i == "reasoning.encrypted_content");
        outputs.push(Output::Reasoning {
            id: new_id("rs"),
            summary: summary.map(|_| pieces),
            encrypted: encrypted.then(|| format!("gAAAAAB{}", text::random_alnum(160))),
        });
    }
    let (answer_tokens, incomplete) = match decision {
        Decision::Text(answer) => {
            let incomplete = answer.finish == Finish::Length;
            let tokens = answer.tokens();
            if !answer.pieces.is_empty() {
                outputs.push(Output::Message {
                    id: new_id("msg"),
                    pieces: answer.pieces,
                    complete: !incomplete,
                });
            }
            (tokens, incomplete)
        }
        Decision::Tool(call) => {
            outputs.push(Output::Call {
                id: new_id("fc"),
                call_id: format!("call_{}", text::random_alnum(24)),
                name: call.name.clone(),
                arguments: call.arguments(),
            });
            (call.tokens(), false)
        }
    };
    let input_tokens = conversation.prompt_tokens;
    let output_tokens = answer_tokens + reasoning_tokens;
    let answer = Answer {
        id: new_id("resp"),
        created_at: text::unix_now(),
        outputs,
        incomplete,
        usage: json!({"input_tokens": input_tokens,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": output_tokens,
            "output_tokens_details": {"reasoning_tokens": reasoning_tokens},
            "total_tokens": input_tokens + output_tokens}),
        settings: settings(body, config.answer_model.as_deref()),
        obfuscate: body
            .pointer("/stream_options/include_obfuscation")
            .and_then(Value::as_bool)
            .unwrap_or(true),
    };
    if body["store"].as_bool() != Some(false) {
        items.extend(answer.items());
        state.store_response(&answer.id, items);
    }
    if body["stream"].as_bool() == Some(true) {
        Ok(Reply::Stream(responses_stream::stream(answer)))
    } else {
        let mut object = answer.object(answer.final_status(), answer.items(), answer.usage.clone());
        object["billing"] = json!({"payer": "developer"});
        Ok(Reply::Json(object))
    }
}

/// `prefix_` and 50 hex digits.
fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", text::random_hex(ID_HEX))
}

/// Whether the answer starts with a reasoning item: `o1`/`o3`/`o4`... and `gpt-5*` models, or any
/// model when `reasoning` is given, unless its effort is `none`.
fn reasons(model: &str, body: &Value) -> bool {
    if body.pointer("/reasoning/effort").and_then(Value::as_str) == Some("none") {
        return false;
    }
    body["reasoning"].is_object() || reasoning_model(model)
}

fn reasoning_model(model: &str) -> bool {
    let o_series = model
        .strip_prefix('o')
        .and_then(|rest| rest.chars().next())
        .is_some_and(|c| c.is_ascii_digit());
    o_series || model.starts_with("gpt-5")
}

/// The input as items: a string is one user message.
fn input_items(input: &Value) -> Vec<Value> {
    match input {
        Value::String(text) => vec![json!({"type": "message", "role": "user", "content": text})],
        Value::Array(items) => items.clone(),
        _ => Vec::new(),
    }
}

/// The conversation as a Chat Completions request, which `openai::conversation` reads: items as
/// messages, flat function tools nested under `function`, `text.format` as `response_format`.
fn chat_request(body: &Value, items: &[Value]) -> Value {
    let mut messages = Vec::new();
    if let Some(instructions) = body["instructions"].as_str() {
        messages.push(json!({"role": "system", "content": instructions}));
    }
    messages.extend(items.iter().filter_map(chat_message));
    let tools: Vec<Value> = body["tools"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|tool| tool["type"] == "function")
        .map(|tool| {
            json!({"type": "function", "function": {"name": tool["name"],
            "parameters": tool["parameters"]}})
        })
        .collect();
    let tool_choice = match &body["tool_choice"] {
        Value::Object(choice) if choice.get("type") == Some(&json!("function")) => {
            json!({"type": "function", "function": {"name": choice.get("name")}})
        }
        Value::String(mode) => json!(mode),
        _ => json!("auto"),
    };
    let format = &body["text"]["format"];
    let response_format = match format["type"].as_str() {
        Some("json_object") => json!({"type": "json_object"}),
        Some("json_schema") => {
            json!({"type": "json_schema", "json_schema": {"schema": format["schema"]}})
        }
        _ => Value::Null,
    };
    json!({"messages": messages, "tools": tools, "tool_choice": tool_choice,
        "max_completion_tokens": body["max_output_tokens"], "response_format": response_format})
}

/// One input item as a chat message; reasoning items and hosted tools' calls have none.
fn chat_message(item: &Value) -> Option<Value> {
    let kind = match item["type"].as_str() {
        Some(kind) => kind,
        None if item.get("role").is_some() => "message",
        None => return None,
    };
    match kind {
        "message" => Some(json!({"role": item["role"], "content": item["content"]})),
        "function_call" => Some(json!({"role": "assistant", "content": null,
            "tool_calls": [{"id": item["call_id"], "type": "function",
                "function": {"name": item["name"], "arguments": item["arguments"]}}]})),
        kind if kind.ends_with("_output") => Some(json!({"role": "tool",
            "tool_call_id": item["call_id"], "content": item["output"]})),
        _ => None,
    }
}

/// The request settings a response object echoes, with OpenAI's defaults.
fn settings(body: &Value, answer_model: Option<&str>) -> Map<String, Value> {
    let given = |key: &str, default: Value| match body.get(key) {
        Some(value) if !value.is_null() => value.clone(),
        _ => default,
    };
    let model = body["model"].as_str().unwrap_or_default();
    let tools: Vec<Value> = body["tools"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|tool| {
            if tool["type"] != "function" {
                return tool.clone();
            }
            let field = |key: &str, default: Value| match tool.get(key) {
                Some(value) if !value.is_null() => value.clone(),
                _ => default,
            };
            json!({"type": "function", "description": field("description", Value::Null),
                "name": tool["name"], "parameters": field("parameters", Value::Null),
                "strict": field("strict", json!(true))})
        })
        .collect();
    let effort = body
        .pointer("/reasoning/effort")
        .cloned()
        .filter(|e| !e.is_null())
        .unwrap_or_else(|| json!(reasoning_model(model).then_some("medium")));
    let summary = body
        .pointer("/reasoning/summary")
        .cloned()
        .unwrap_or(Value::Null);
    let text = json!({
        "format": body.pointer("/text/format").cloned().filter(|f| !f.is_null())
            .unwrap_or_else(|| json!({"type": "text"})),
        "verbosity": body.pointer("/text/verbosity").cloned().filter(|v| !v.is_null())
            .unwrap_or_else(|| json!("medium")),
    });
    let mut settings = Map::new();
    for (key, value) in [
        ("background", given("background", json!(false))),
        ("frequency_penalty", json!(0.0)),
        ("instructions", given("instructions", Value::Null)),
        ("max_output_tokens", given("max_output_tokens", Value::Null)),
        ("max_tool_calls", given("max_tool_calls", Value::Null)),
        ("metadata", given("metadata", json!({}))),
        ("model", json!(answer_model.unwrap_or(model))),
        (
            "parallel_tool_calls",
            given("parallel_tool_calls", json!(true)),
        ),
        ("presence_penalty", json!(0.0)),
        (
            "previous_response_id",
            given("previous_response_id", Value::Null),
        ),
        ("prompt_cache_key", given("prompt_cache_key", Value::Null)),
        (
            "prompt_cache_retention",
            given("prompt_cache_retention", Value::Null),
        ),
        ("reasoning", json!({"effort": effort, "summary": summary})),
        ("safety_identifier", given("safety_identifier", Value::Null)),
        ("service_tier", given("service_tier", json!("auto"))),
        ("store", given("store", json!(true))),
        ("temperature", given("temperature", json!(1.0))),
        ("text", text),
        ("tool_choice", given("tool_choice", json!("auto"))),
        ("tools", Value::Array(tools)),
        ("top_logprobs", given("top_logprobs", json!(0))),
        ("top_p", given("top_p", json!(1.0))),
        ("truncation", given("truncation", json!("disabled"))),
        ("user", given("user", Value::Null)),
    ] {
        settings.insert(key.to_string(), value);
    }
    settings
}
