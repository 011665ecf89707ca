//! A Responses request in chat completions form, for every provider but a native OpenAI one:
//! `instructions` become the system message, input items become messages (function calls join
//! the assistant turn, their outputs become tool messages, reasoning items ride on the assistant
//! turn they precede), function tools are nested as chat tools, `text.format` becomes
//! `response_format`. What chat cannot say (hosted tools, OpenAI's stored items, files by id) is
//! reported, never dropped: a translated provider answers it with a 400.

use base64::Engine as _;
use serde_json::{Map, Value, json};

use crate::error::ApiError;

/// The prefix of the `encrypted_content` TokenRouter writes for translated reasoning: the
/// provider's own state for the next turn as base64url JSON — Anthropic's signed thinking blocks
/// (`thinking_blocks`) and Gemini's thought signatures by call id (`thought_signatures`).
pub const ENCRYPTED_PREFIX: &str = "trr1.";

/// Fields that are echoed or handled by the gateway and have no chat counterpart to send.
const GATEWAY_FIELDS: [&str; 7] = [
    "input",
    "store",
    "metadata",
    "include",
    "previous_response_id",
    "truncation",
    "stream_options",
];

/// Fields copied to the chat body under the same name.
const SAME_NAME: [&str; 7] = [
    "model",
    "temperature",
    "top_p",
    "user",
    "parallel_tool_calls",
    "service_tier",
    "safety_identifier",
];

/// The chat body, and the first thing it could not carry.
pub(super) fn convert(
    native: &Map<String, Value>,
    input: &[Value],
) -> (Map<String, Value>, Option<ApiError>) {
    let mut b = Builder::default();
    let mut chat = Map::new();
    for (field, value) in native {
        if value.is_null() {
            continue;
        }
        match field.as_str() {
            f if SAME_NAME.contains(&f) => {
                chat.insert(field.clone(), value.clone());
            }
            f if GATEWAY_FIELDS.contains(&f) => {}
            "instructions" => {}
            "prompt_cache_key" => {
                chat.insert(field.clone(), value.clone());
            }
            "stream" => {
                chat.insert("stream".into(), value.clone());
                if value == &Value::Bool(true) {
                    chat.insert("stream_options".into(), json!({"include_usage": true}));
                }
            }
            "max_output_tokens" => {
                chat.insert("max_completion_tokens".into(), value.clone());
            }
            "top_logprobs" => {
                chat.insert("logprobs".into(), Value::Bool(true));
                chat.insert("top_logprobs".into(), value.clone());
            }
            "tools" => {
                let tools = value.as_array().map(|t| b.tools(t)).unwrap_or_default();
                if !tools.is_empty() {
                    chat.insert("tools".into(), Value::Array(tools));
                }
            }
            "tool_choice" => {
                if let Some(choice) = b.tool_choice(value) {
                    chat.insert("tool_choice".into(), choice);
                }
            }
            "text" => b.text(value, &mut chat),
            "reasoning" => {
                if let Some(effort) = value.get("effort").filter(|e| e.is_string()) {
                    chat.insert("reasoning_effort".into(), effort.clone());
                }
            }
            _ => b.problem(
                field,
                format!("`{field}` has no equivalent on this provider (it is translated from the Responses API to chat completions)."),
            ),
        }
    }
    if let Some(Value::String(instructions)) = native.get("instructions") {
        b.messages
            .push(json!({"role": "system", "content": instructions}));
    }
    // Signatures first: a stream's carrier item follows the calls it signs.
    for item in input
        .iter()
        .filter(|i| i.get("type") == Some(&json!("reasoning")))
    {
        let state = item
            .get("encrypted_content")
            .and_then(Value::as_str)
            .and_then(decode_state);
        if let Some(Value::Object(sigs)) = state.and_then(|mut s| s.remove("thought_signatures")) {
            b.signatures.extend(sigs);
        }
    }
    for (i, item) in input.iter().enumerate() {
        b.item(i, item);
    }
    b.flush();
    chat.insert("messages".into(), Value::Array(b.messages));
    (chat, b.problem)
}

#[derive(Default)]
struct Builder {
    messages: Vec<Value>,
    /// The assistant turn being assembled (its text, then its tool calls).
    assistant: Option<Map<String, Value>>,
    /// A reasoning item waiting for the assistant turn it belongs to: summary text and the
    /// provider's blocks when TokenRouter wrote them.
    reasoning: Option<(String, Option<Value>)>,
    /// Gemini thought signatures by call id, from the reasoning items seen so far.
    signatures: Map<String, Value>,
    problem: Option<ApiError>,
}

impl Builder {
    fn problem(&mut self, param: impl Into<String>, message: impl Into<String>) {
        if self.problem.is_none() {
            self.problem = Some(ApiError::unsupported_parameter(param, message));
        }
    }

    fn flush(&mut self) {
        if let Some(m) = self.assistant.take() {
            self.messages.push(Value::Object(m));
        }
    }

    /// The assistant turn to add to, opened (with any waiting reasoning) when there is none.
    fn assistant(&mut self) -> &mut Map<String, Value> {
        let reasoning = self.reasoning.take();
        self.assistant.get_or_insert_with(|| {
            let mut m = Map::new();
            m.insert("role".into(), json!("assistant"));
            m.insert("content".into(), Value::Null);
            if let Some((text, blocks)) = reasoning {
                if !text.is_empty() {
                    m.insert("reasoning_content".into(), Value::String(text));
                }
                if let Some(blocks) = blocks {
                    m.insert("thinking_blocks".into(), blocks);
                }
            }
            m
        })
    }

    fn item(&mut self, i: usize, item: &Value) {
        let kind = item
            .get("type")
            .and_then(Value::as_str)
            .or_else(|| item.get("role").map(|_| "message"));
        match kind {
            Some("message") => self.message(i, item),
            Some("function_call") => {
                let mut call = json!({
                    "id": item.get("call_id").cloned().unwrap_or(Value::Null),
                    "type": "function",
                    "function": {
                        "name": item.get("name").cloned().unwrap_or(Value::Null),
                        "arguments": item.get("arguments").cloned().unwrap_or(json!("{}")),
                    },
                });
                let signature = item
                    .get("call_id")
                    .and_then(Value::as_str)
                    .and_then(|id| self.signatures.get(id));
                if let Some(signature) = signature {
                    call["extra_content"] = json!({"google": {"thought_signature": signature}});
                }
                let m = self.assistant();
                let calls = m.entry("tool_calls").or_insert_with(|| json!([]));
                if let Value::Array(calls) = calls {
                    calls.push(call);
                }
            }
            Some("function_call_output") => {
                self.flush();
                let output = match item.get("output") {
                    Some(Value::String(s)) => Value::String(s.clone()),
                    Some(Value::Array(parts)) => Value::String(joined_text(parts)),
                    _ => Value::String(String::new()),
                };
                self.messages.push(json!({
                    "role": "tool",
                    "tool_call_id": item.get("call_id").cloned().unwrap_or(Value::Null),
                    "content": output,
                }));
            }
            Some("reasoning") => {
                self.flush();
                let summary = item
                    .get("summary")
                    .and_then(Value::as_array)
                    .map(|s| joined_text(s))
                    .unwrap_or_default();
                let state = item
                    .get("encrypted_content")
                    .and_then(Value::as_str)
                    .and_then(decode_state);
                let blocks = state
                    .and_then(|mut s| s.remove("thinking_blocks"))
                    .filter(Value::is_array);
                self.reasoning = Some((summary, blocks));
            }
            Some(other) => self.problem(
                format!("input[{i}].type"),
                format!("Input items of type `{other}` are kept by OpenAI and cannot be sent to this provider."),
            ),
            None => self.problem(format!("input[{i}].type"), "Each input item needs a `type` or a `role`."),
        }
    }

    fn message(&mut self, i: usize, item: &Value) {
        let role = item.get("role").and_then(Value::as_str).unwrap_or("user");
        let content = item.get("content");
        if role == "assistant" {
            let text = match content {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Array(parts)) => joined_text(parts),
                _ => String::new(),
            };
            if self
                .assistant
                .as_ref()
                .is_some_and(|m| m.contains_key("tool_calls"))
            {
                self.flush();
            }
            let m = self.assistant();
            let joined = match m.get("content").and_then(Value::as_str) {
                Some(before) => format!("{before}{text}"),
                None => text,
            };
            m.insert("content".into(), Value::String(joined));
            return;
        }
        self.flush();
        let content = match content {
            Some(Value::String(s)) => Value::String(s.clone()),
            Some(Value::Array(parts)) => Value::Array(
                parts
                    .iter()
                    .enumerate()
                    .filter_map(|(j, p)| self.part(i, j, p))
                    .collect(),
            ),
            _ => Value::String(String::new()),
        };
        let role = if role == "developer" || role == "system" {
            role
        } else {
            "user"
        };
        self.messages
            .push(json!({"role": role, "content": content}));
    }

    /// One content part of a user, system or developer message in chat's form.
    fn part(&mut self, i: usize, j: usize, part: &Value) -> Option<Value> {
        let at = || format!("input[{i}].content[{j}]");
        match part.get("type").and_then(Value::as_str) {
            Some("input_text" | "output_text" | "text") => Some(
                json!({"type": "text", "text": part.get("text").cloned().unwrap_or(json!(""))}),
            ),
            Some("input_image") => match part.get("image_url").and_then(Value::as_str) {
                Some(url) => {
                    let mut image = json!({"url": url});
                    if let Some(detail) = part.get("detail").filter(|d| d.is_string()) {
                        image["detail"] = detail.clone();
                    }
                    Some(json!({"type": "image_url", "image_url": image}))
                }
                None => {
                    self.problem(format!("{}.file_id", at()), "Images by file id are kept by OpenAI; send the image as a URL or a data URL.");
                    None
                }
            },
            Some("input_file") => match part.get("file_data") {
                Some(data) => {
                    let mut file = json!({"file_data": data});
                    if let Some(name) = part.get("filename") {
                        file["filename"] = name.clone();
                    }
                    Some(json!({"type": "file", "file": file}))
                }
                None => {
                    self.problem(
                        format!("{}.file_id", at()),
                        "Files by id or URL are kept by OpenAI; send the file as `file_data`.",
                    );
                    None
                }
            },
            Some(other) => {
                self.problem(
                    format!("{}.type", at()),
                    format!("Content parts of type `{other}` cannot be sent to this provider."),
                );
                None
            }
            None => {
                self.problem(
                    format!("{}.type", at()),
                    "Each content part needs a `type`.",
                );
                None
            }
        }
    }

    fn tools(&mut self, tools: &[Value]) -> Vec<Value> {
        let mut out = Vec::new();
        for (i, tool) in tools.iter().enumerate() {
            match tool.get("type").and_then(Value::as_str) {
                Some("function") => {
                    let mut function = Map::new();
                    for field in ["name", "description", "parameters", "strict"] {
                        if let Some(v) = tool.get(field).filter(|v| !v.is_null()) {
                            function.insert(field.into(), v.clone());
                        }
                    }
                    out.push(json!({"type": "function", "function": function}));
                }
                Some(kind) => self.problem(
                    format!("tools[{i}].type"),
                    format!("`{kind}` is a tool OpenAI hosts; this provider cannot run it. Use function tools, or route the request to an OpenAI provider."),
                ),
                None => self.problem(format!("tools[{i}].type"), "Each tool needs a `type`."),
            }
        }
        out
    }

    fn tool_choice(&mut self, choice: &Value) -> Option<Value> {
        match choice {
            Value::String(_) => Some(choice.clone()),
            Value::Object(o) if o.get("type").and_then(Value::as_str) == Some("function") => Some(
                json!({"type": "function", "function": {"name": o.get("name").cloned().unwrap_or(Value::Null)}}),
            ),
            _ => {
                self.problem(
                    "tool_choice",
                    "This `tool_choice` names a tool OpenAI hosts; this provider cannot run it.",
                );
                None
            }
        }
    }

    fn text(&mut self, text: &Value, chat: &mut Map<String, Value>) {
        if let Some(v) = text.get("verbosity").filter(|v| v.is_string()) {
            chat.insert("verbosity".into(), v.clone());
        }
        let Some(format) = text.get("format").filter(|f| !f.is_null()) else {
            return;
        };
        match format.get("type").and_then(Value::as_str) {
            Some("text") => {}
            Some("json_object") => {
                chat.insert("response_format".into(), json!({"type": "json_object"}));
            }
            Some("json_schema") => {
                let mut schema = Map::new();
                for field in ["name", "schema", "strict", "description"] {
                    if let Some(v) = format.get(field).filter(|v| !v.is_null()) {
                        schema.insert(field.into(), v.clone());
                    }
                }
                chat.insert("response_format".into(), json!({"type": "json_schema", "json_schema": schema}));
            }
            _ => self.problem("text.format.type", "`text.format.type` must be `text`, `json_object` or `json_schema` on this provider."),
        }
    }
}

/// The text of content parts (`input_text`, `output_text`, `summary_text`, `refusal`), joined.
fn joined_text(parts: &[Value]) -> String {
    parts
        .iter()
        .filter_map(|p| {
            p.get("text")
                .or_else(|| p.get("refusal"))
                .and_then(Value::as_str)
        })
        .collect()
}

/// The provider state inside an `encrypted_content` TokenRouter wrote; `None` for anything else
/// (OpenAI's own, which only OpenAI can read).
fn decode_state(encrypted: &str) -> Option<Map<String, Value>> {
    let data = encrypted.strip_prefix(ENCRYPTED_PREFIX)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(data)
        .ok()?;
    match serde_json::from_slice::<Value>(&bytes).ok()? {
        Value::Object(state) => Some(state),
        _ => None,
    }
}

/// The `encrypted_content` that carries a translated answer's provider state (Anthropic's
/// thinking blocks, Gemini's thought signatures by call id); `None` when there is none.
pub fn encode_state(blocks: Option<&Value>, signatures: &Map<String, Value>) -> Option<String> {
    let blocks = blocks.filter(|b| b.as_array().is_some_and(|b| !b.is_empty()));
    if blocks.is_none() && signatures.is_empty() {
        return None;
    }
    let mut state = Map::new();
    if let Some(b) = blocks {
        state.insert("thinking_blocks".into(), b.clone());
    }
    if !signatures.is_empty() {
        state.insert(
            "thought_signatures".into(),
            Value::Object(signatures.clone()),
        );
    }
    let data =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Value::Object(state).to_string());
    Some(format!("{ENCRYPTED_PREFIX}{data}"))
}

/// A Gemini thought signature on a chat tool call (`extra_content.google.thought_signature`).
pub fn call_signature(call: &Value) -> Option<&Value> {
    call.pointer("/extra_content/google/thought_signature")
        .filter(|s| s.is_string())
}
