//! Anthropic Messages API: request validation (incl. thinking round-trip rules), reading the
//! conversation, and the non-streaming `message` answer.

use serde_json::{Value, json};

use crate::errors::ApiError;
use crate::pipeline::Reply;
use crate::text::{self, Conversation, Decision, Finish, LastTurn, ToolMode, ToolSpec};
use crate::{SimConfig, anthropic_stream};

const FIELDS: &[&str] = &[
    "model",
    "messages",
    "max_tokens",
    "system",
    "metadata",
    "stop_sequences",
    "stream",
    "temperature",
    "top_k",
    "top_p",
    "tools",
    "tool_choice",
    "thinking",
    "service_tier",
    "container",
    "mcp_servers",
    "context_management",
];

/// Everything needed to render one Messages answer.
pub(crate) struct Answer {
    pub id: String,
    pub model: String,
    pub input_tokens: u64,
    pub thinking: Option<Vec<String>>,
    pub decision: Decision,
}

impl Answer {
    pub(crate) fn output_tokens(&self) -> u64 {
        let thinking = self.thinking.as_ref().map_or(0, |t| t.len() as u64);
        thinking
            + match &self.decision {
                Decision::Text(answer) => answer.tokens(),
                Decision::Tool(call) => call.tokens(),
            }
    }

    pub(crate) fn stop_reason(&self) -> (&'static str, Value) {
        match &self.decision {
            Decision::Tool(_) => ("tool_use", Value::Null),
            Decision::Text(answer) => match &answer.finish {
                Finish::Stop => ("end_turn", Value::Null),
                Finish::Length => ("max_tokens", Value::Null),
                Finish::StopSequence(stop) => ("stop_sequence", json!(stop)),
            },
        }
    }

    pub(crate) fn usage(&self, output_tokens: u64) -> Value {
        json!({"input_tokens": self.input_tokens, "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0, "output_tokens": output_tokens,
            "service_tier": "standard"})
    }
}

/// A fresh `toolu_...` id.
pub(crate) fn tool_use_id() -> String {
    format!("toolu_01{}", text::random_alnum(22))
}

/// Answers `POST /v1/messages`.
pub(crate) fn respond(config: &SimConfig, body: &Value) -> Result<Reply, ApiError> {
    validate(config, body)?;
    let conversation = conversation(body);
    let thinking = (body.pointer("/thinking/type").and_then(Value::as_str) == Some("enabled"))
        .then(|| text::reasoning(&conversation));
    let answer = Answer {
        id: format!("msg_01{}", text::random_alnum(22)),
        model: config
            .answer_model
            .clone()
            .unwrap_or_else(|| body["model"].as_str().unwrap_or_default().to_string()),
        input_tokens: conversation.prompt_tokens,
        thinking,
        decision: text::decide(&config.name, &conversation),
    };
    if body.get("stream").and_then(Value::as_bool) == Some(true) {
        Ok(Reply::Stream(anthropic_stream::stream(&answer)))
    } else {
        Ok(Reply::Json(message(&answer)))
    }
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(400, message)
}

fn validate(config: &SimConfig, body: &Value) -> Result<(), ApiError> {
    let Some(fields) = body.as_object() else {
        return Err(invalid("The request body must be a JSON object."));
    };
    if config.strict_fields
        && let Some(unknown) = fields.keys().find(|k| !FIELDS.contains(&k.as_str()))
    {
        return Err(invalid(format!(
            "{unknown}: Extra inputs are not permitted"
        )));
    }
    if fields.get("model").and_then(Value::as_str).is_none() {
        return Err(invalid("model: Field required"));
    }
    let Some(max_tokens) = fields.get("max_tokens").and_then(Value::as_u64) else {
        return Err(invalid("max_tokens: Field required"));
    };
    let Some(messages) = fields.get("messages").and_then(Value::as_array) else {
        return Err(invalid("messages: Field required"));
    };
    if messages.is_empty() {
        return Err(invalid("messages: at least one message is required"));
    }
    for (i, message) in messages.iter().enumerate() {
        let role = message.get("role").and_then(Value::as_str);
        if !matches!(role, Some("user") | Some("assistant")) {
            return Err(invalid(format!(
                "messages.{i}.role: Input should be 'user' or 'assistant'"
            )));
        }
        if config.strict_fields {
            let keys = message.as_object().into_iter().flat_map(|m| m.keys());
            if let Some(extra) = keys.into_iter().find(|k| *k != "role" && *k != "content") {
                return Err(invalid(format!(
                    "messages.{i}.{extra}: Extra inputs are not permitted"
                )));
            }
        }
    }
    if body.pointer("/thinking/type").and_then(Value::as_str) == Some("enabled") {
        let budget = body
            .pointer("/thinking/budget_tokens")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        if budget < 1024 {
            return Err(invalid(
                "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024",
            ));
        }
        if budget >= max_tokens {
            return Err(invalid(
                "`max_tokens` must be greater than `thinking.budget_tokens`.",
            ));
        }
        check_thinking_round_trip(messages)?;
    }
    Ok(())
}

/// With thinking on, the last assistant turn of a tool loop must start with its thinking block,
/// signature included, exactly as the API returned it.
fn check_thinking_round_trip(messages: &[Value]) -> Result<(), ApiError> {
    let Some((i, message)) = messages
        .iter()
        .enumerate()
        .rev()
        .find(|(_, m)| m["role"] == "assistant")
    else {
        return Ok(());
    };
    let Some(blocks) = message["content"].as_array() else {
        return Ok(());
    };
    if !blocks.iter().any(|b| b["type"] == "tool_use") {
        return Ok(());
    }
    let first = &blocks[0];
    match first["type"].as_str() {
        Some("thinking") if first["signature"].as_str().is_some_and(|s| !s.is_empty()) => Ok(()),
        Some("thinking") => Err(invalid(format!(
            "messages.{i}.content.0.thinking.signature: Field required"
        ))),
        Some("redacted_thinking") => Ok(()),
        other => Err(invalid(format!(
            "messages.{i}.content.0.type: Expected `thinking` or `redacted_thinking`, but found \
             `{}`. When `thinking` is enabled, a final `assistant` message must start with a \
             thinking block (preceding the last set of `tool_use` and `tool_result` blocks).",
            other.unwrap_or("text")
        ))),
    }
}

/// Reads the conversation of a Messages request.
fn conversation(body: &Value) -> Conversation {
    let messages = body["messages"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let last = match messages.last() {
        Some(message) if message["role"] == "user" => {
            let results: Vec<String> = message["content"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|block| block["type"] == "tool_result")
                .map(|block| text::content_text(&block["content"]))
                .collect();
            if results.is_empty() {
                LastTurn::User(text::content_text(&message["content"]))
            } else {
                LastTurn::ToolResult(results.join("\n"))
            }
        }
        _ => LastTurn::Other,
    };
    let tools = body["tools"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|tool| {
            Some(ToolSpec {
                name: tool.get("name")?.as_str()?.to_string(),
                schema: tool.get("input_schema").cloned().unwrap_or(Value::Null),
            })
        })
        .collect();
    let mode = match body.pointer("/tool_choice/type").and_then(Value::as_str) {
        Some("none") => ToolMode::None,
        Some("any") => ToolMode::Required,
        Some("tool") => match body.pointer("/tool_choice/name").and_then(Value::as_str) {
            Some(name) => ToolMode::Named(name.to_string()),
            None => ToolMode::Required,
        },
        _ => ToolMode::Auto,
    };
    Conversation {
        last,
        prompt_tokens: text::text_words(&body["system"])
            + messages
                .iter()
                .map(|m| text::text_words(&m["content"]))
                .sum::<u64>(),
        tools,
        mode,
        max_tokens: body["max_tokens"].as_u64(),
        stops: body["stop_sequences"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        json: None,
    }
}

/// The non-streaming `message` body.
fn message(answer: &Answer) -> Value {
    let mut content = Vec::new();
    if let Some(thinking) = &answer.thinking {
        content.push(json!({"type": "thinking", "thinking": thinking.concat(),
            "signature": text::random_signature()}));
    }
    match &answer.decision {
        Decision::Text(reply) => content.push(json!({"type": "text", "text": reply.text()})),
        Decision::Tool(call) => content.push(json!({"type": "tool_use", "id": tool_use_id(),
            "name": call.name, "input": call.args})),
    }
    let (stop_reason, stop_sequence) = answer.stop_reason();
    json!({
        "id": answer.id,
        "type": "message",
        "role": "assistant",
        "model": answer.model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": stop_sequence,
        "usage": answer.usage(answer.output_tokens()),
    })
}
