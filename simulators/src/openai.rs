//! OpenAI Chat Completions, and the Mistral and DeepSeek dialects of it: request validation,
//! reading the conversation, and the non-streaming `chat.completion` answer.

use serde_json::{Map, Value, json};

use crate::errors::ApiError;
use crate::pipeline::Reply;
use crate::text::{self, Conversation, Decision, Finish, LastTurn, ToolMode, ToolSpec};
use crate::{Protocol, SimConfig};
use crate::{openai_checks, openai_stream};

/// Everything needed to render one answer in any of the three dialects.
pub(crate) struct Answer {
    pub protocol: Protocol,
    pub id: String,
    pub created: u64,
    pub model: String,
    pub n: usize,
    pub include_usage: bool,
    pub prompt_tokens: u64,
    pub decision: Decision,
    /// DeepSeek reasoner models: the reasoning text in word chunks.
    pub reasoning: Option<Vec<String>>,
}

impl Answer {
    /// Completion tokens of one choice (reasoning included, as DeepSeek counts it).
    pub(crate) fn choice_tokens(&self) -> u64 {
        let answer = match &self.decision {
            Decision::Text(text) => text.tokens(),
            Decision::Tool(call) => call.tokens(),
        };
        answer + self.reasoning_tokens()
    }

    pub(crate) fn reasoning_tokens(&self) -> u64 {
        self.reasoning.as_ref().map_or(0, |r| r.len() as u64)
    }

    pub(crate) fn finish_reason(&self) -> &'static str {
        match &self.decision {
            Decision::Tool(_) => "tool_calls",
            Decision::Text(text) if text.finish == Finish::Length => "length",
            Decision::Text(_) => "stop",
        }
    }

    /// A fresh tool-call id in this dialect's format.
    pub(crate) fn tool_call_id(&self) -> String {
        match self.protocol {
            Protocol::Mistral => text::random_alnum(9),
            Protocol::DeepSeek => format!("call_00_{}", text::random_alnum(24)),
            _ => format!("call_{}", text::random_alnum(24)),
        }
    }

    /// The `usage` object of this dialect, summed over all choices.
    pub(crate) fn usage(&self) -> Value {
        let completion = self.choice_tokens() * self.n as u64;
        let prompt = self.prompt_tokens;
        let total = prompt + completion;
        match self.protocol {
            Protocol::Mistral => json!({"prompt_tokens": prompt, "total_tokens": total,
                "completion_tokens": completion}),
            Protocol::DeepSeek => json!({"prompt_tokens": prompt, "completion_tokens": completion,
                "total_tokens": total, "prompt_tokens_details": {"cached_tokens": 0},
                "completion_tokens_details": {"reasoning_tokens": self.reasoning_tokens() * self.n as u64},
                "prompt_cache_hit_tokens": 0, "prompt_cache_miss_tokens": prompt}),
            _ => json!({"prompt_tokens": prompt, "completion_tokens": completion,
                "total_tokens": total,
                "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                    "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}}),
        }
    }
}

/// Answers `POST /v1/chat/completions` for the OpenAI, Mistral and DeepSeek protocols.
pub(crate) fn respond(config: &SimConfig, body: &Value) -> Result<Reply, ApiError> {
    let protocol = config.protocol;
    openai_checks::validate(config, body)?;
    let model = body["model"].as_str().unwrap_or_default().to_string();
    let conversation = conversation(body);
    let decision = text::decide(&config.name, &conversation);
    let reasoning = (protocol == Protocol::DeepSeek && model.contains("reasoner"))
        .then(|| text::reasoning(&conversation));
    let id = match protocol {
        Protocol::Mistral => uuid::Uuid::new_v4().simple().to_string(),
        Protocol::DeepSeek => uuid::Uuid::new_v4().to_string(),
        _ => format!("chatcmpl-{}", text::random_alnum(29)),
    };
    let answer = Answer {
        protocol,
        id,
        created: text::unix_now(),
        model: config.answer_model.clone().unwrap_or(model),
        n: body.get("n").and_then(Value::as_u64).unwrap_or(1) as usize,
        include_usage: body
            .pointer("/stream_options/include_usage")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        prompt_tokens: conversation.prompt_tokens,
        decision,
        reasoning,
    };
    if body.get("stream").and_then(Value::as_bool) == Some(true) {
        Ok(Reply::Stream(openai_stream::stream(&answer)))
    } else {
        Ok(Reply::Json(completion(&answer)))
    }
}

/// Reads the conversation of an OpenAI-style request.
pub(crate) fn conversation(body: &Value) -> Conversation {
    let messages = body["messages"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let last = match messages.last() {
        Some(message) => {
            let content = text::content_text(&message["content"]);
            match message["role"].as_str() {
                Some("user") => LastTurn::User(content),
                Some("tool") | Some("function") => LastTurn::ToolResult(content),
                _ => LastTurn::Other,
            }
        }
        None => LastTurn::Other,
    };
    let tools = body["tools"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|tool| {
            let function = tool.get("function")?;
            Some(ToolSpec {
                name: function.get("name")?.as_str()?.to_string(),
                schema: function.get("parameters").cloned().unwrap_or(Value::Null),
            })
        })
        .collect();
    let mode = match &body["tool_choice"] {
        Value::String(choice) if choice == "none" => ToolMode::None,
        Value::String(choice) if choice == "required" || choice == "any" => ToolMode::Required,
        Value::Object(choice) => match choice
            .get("function")
            .and_then(|f| f.get("name"))
            .and_then(Value::as_str)
        {
            Some(name) => ToolMode::Named(name.to_string()),
            None => ToolMode::Auto,
        },
        _ => ToolMode::Auto,
    };
    let stops = match &body["stop"] {
        Value::String(stop) => vec![stop.clone()],
        Value::Array(stops) => stops
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    };
    Conversation {
        last,
        prompt_tokens: messages
            .iter()
            .map(|m| text::text_words(&m["content"]))
            .sum(),
        tools,
        mode,
        max_tokens: body["max_completion_tokens"]
            .as_u64()
            .or_else(|| body["max_tokens"].as_u64()),
        stops,
        json: match body
            .pointer("/response_format/type")
            .and_then(Value::as_str)
        {
            Some("json_object") => Some(Value::Null),
            Some("json_schema") => Some(
                body.pointer("/response_format/json_schema/schema")
                    .cloned()
                    .unwrap_or(Value::Null),
            ),
            _ => None,
        },
    }
}

/// The non-streaming `chat.completion` body.
fn completion(answer: &Answer) -> Value {
    let choices: Vec<Value> = (0..answer.n).map(|index| choice(answer, index)).collect();
    let mut body = json!({
        "id": answer.id,
        "object": "chat.completion",
        "created": answer.created,
        "model": answer.model,
        "choices": choices,
        "usage": answer.usage(),
    });
    match answer.protocol {
        Protocol::OpenAi => {
            body["service_tier"] = json!("default");
            body["system_fingerprint"] = json!(openai_stream::FINGERPRINT);
        }
        Protocol::DeepSeek => body["system_fingerprint"] = json!(openai_stream::FINGERPRINT),
        _ => {}
    }
    body
}

fn choice(answer: &Answer, index: usize) -> Value {
    let mut message = Map::new();
    message.insert("role".into(), json!("assistant"));
    match &answer.decision {
        Decision::Text(text) => {
            message.insert("content".into(), json!(text.text()));
        }
        Decision::Tool(call) => {
            let mut tool_call = json!({"id": answer.tool_call_id(),
                "function": {"name": call.name, "arguments": call.arguments()}});
            match answer.protocol {
                Protocol::Mistral => {}
                Protocol::DeepSeek => {
                    message.insert("content".into(), json!(""));
                    tool_call["index"] = json!(0);
                    tool_call["type"] = json!("function");
                }
                _ => {
                    message.insert("content".into(), Value::Null);
                    tool_call["type"] = json!("function");
                }
            }
            message.insert("tool_calls".into(), json!([tool_call]));
        }
    }
    if let Some(reasoning) = &answer.reasoning {
        message.insert("reasoning_content".into(), json!(reasoning.concat()));
    }
    if answer.protocol == Protocol::OpenAi {
        message.insert("refusal".into(), Value::Null);
        message.insert("annotations".into(), json!([]));
    }
    let mut choice = json!({"index": index, "message": message,
        "finish_reason": answer.finish_reason()});
    if answer.protocol != Protocol::Mistral {
        choice["logprobs"] = Value::Null;
    }
    choice
}
