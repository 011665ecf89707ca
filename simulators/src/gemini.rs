//! Gemini `generateContent` / `streamGenerateContent`: path parsing, request validation
//! (incl. the Gemini 3 thought-signature rule), reading the conversation, and answers.

use bytes::Bytes;
use serde_json::{Value, json};

use crate::errors::{ApiError, midstream_error_frame};
use crate::pipeline::Reply;
use crate::sse::{self, Frame, StreamReply};
use crate::text::{self, Conversation, Decision, Finish, LastTurn, ToolMode, ToolSpec};
use crate::{Protocol, SimConfig};

const FIELDS: &[&str] = &[
    "contents",
    "systemInstruction",
    "system_instruction",
    "tools",
    "toolConfig",
    "tool_config",
    "generationConfig",
    "generation_config",
    "safetySettings",
    "safety_settings",
    "cachedContent",
    "cached_content",
    "labels",
];

const MALFORMED_SSE: &[u8] =
    b"data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"unterminated\r\n\r\n";

/// Everything needed to render one Gemini answer.
struct Answer {
    model: String,
    response_id: String,
    prompt_tokens: u64,
    thoughts: Option<Vec<String>>,
    signature_on_call: bool,
    decision: Decision,
}

impl Answer {
    fn finish_reason(&self) -> &'static str {
        match &self.decision {
            Decision::Text(reply) if reply.finish == Finish::Length => "MAX_TOKENS",
            _ => "STOP",
        }
    }

    fn usage(&self, candidates: u64, thoughts: u64) -> Value {
        let mut usage = json!({"promptTokenCount": self.prompt_tokens,
            "candidatesTokenCount": candidates,
            "totalTokenCount": self.prompt_tokens + candidates + thoughts,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": self.prompt_tokens}]});
        if thoughts > 0 {
            usage["thoughtsTokenCount"] = json!(thoughts);
        }
        usage
    }

    /// One `GenerateContentResponse` holding `parts`.
    fn response(&self, parts: Vec<Value>, finish: bool, usage: Value) -> Value {
        let mut candidate = json!({"content": {"parts": parts, "role": "model"}, "index": 0});
        if finish {
            candidate["finishReason"] = json!(self.finish_reason());
        }
        json!({"candidates": [candidate], "usageMetadata": usage,
            "modelVersion": self.model, "responseId": self.response_id})
    }

    fn call_part(&self) -> Option<Value> {
        let Decision::Tool(call) = &self.decision else {
            return None;
        };
        let mut part = json!({"functionCall": {"name": call.name, "args": call.args}});
        if self.signature_on_call {
            part["thoughtSignature"] = json!(text::random_signature());
        }
        Some(part)
    }
}

/// Answers `POST /v1beta/models/{model}:{generateContent|streamGenerateContent}`.
pub(crate) fn respond(
    config: &SimConfig,
    path: &str,
    query: Option<&str>,
    body: &Value,
) -> Result<Reply, ApiError> {
    let target = path.strip_prefix("/v1beta/models/").unwrap_or_default();
    let (model, stream) = match target.rsplit_once(':') {
        Some((model, method @ ("embedContent" | "batchEmbedContents"))) if !model.is_empty() => {
            return crate::embeddings::respond_gemini(model, method == "batchEmbedContents", body);
        }
        Some((model, "generateContent")) if !model.is_empty() => (model, false),
        Some((model, "streamGenerateContent")) if !model.is_empty() => (model, true),
        _ => {
            return Err(ApiError::new(
                404,
                format!("Method not found for path {path}."),
            ));
        }
    };
    validate(config, model, body)?;
    let conversation = conversation(body);
    let include_thoughts = body
        .pointer("/generationConfig/thinkingConfig/includeThoughts")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let answer = Answer {
        model: model.to_string(),
        response_id: text::random_alnum(22),
        prompt_tokens: conversation.prompt_tokens,
        thoughts: include_thoughts.then(|| text::reasoning(&conversation)),
        signature_on_call: include_thoughts || model.starts_with("gemini-3"),
        decision: text::decide(&config.name, &conversation),
    };
    if !stream {
        return Ok(Reply::Json(whole(&answer)));
    }
    let sse = query.is_some_and(|q| q.split('&').any(|pair| pair == "alt=sse"));
    Ok(Reply::Stream(chunks(&answer, sse)))
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(400, message)
}

fn validate(config: &SimConfig, model: &str, body: &Value) -> Result<(), ApiError> {
    let Some(fields) = body.as_object() else {
        return Err(invalid(
            "Invalid JSON payload received. Expected an object.",
        ));
    };
    if config.strict_fields
        && let Some(unknown) = fields.keys().find(|k| !FIELDS.contains(&k.as_str()))
    {
        return Err(invalid(format!(
            "Invalid JSON payload received. Unknown name \"{unknown}\": Cannot find field."
        )));
    }
    let contents = match fields.get("contents").and_then(Value::as_array) {
        Some(contents) if !contents.is_empty() => contents,
        _ => {
            return Err(invalid(
                "* GenerateContentRequest.contents: contents is not specified",
            ));
        }
    };
    for (i, content) in contents.iter().enumerate() {
        match content.get("role").and_then(Value::as_str) {
            None | Some("user") | Some("model") | Some("function") => {}
            Some(role) => {
                return Err(invalid(format!(
                    "Please use a valid role: user, model. (contents[{i}].role = {role})"
                )));
            }
        }
        if !content.get("parts").is_some_and(Value::is_array) {
            return Err(invalid(format!(
                "* GenerateContentRequest.contents[{i}].parts: contents.parts must not be empty."
            )));
        }
    }
    if model.starts_with("gemini-3") {
        check_thought_signatures(contents)?;
    }
    Ok(())
}

/// Gemini 3: the first function call of every model turn must carry its `thoughtSignature`.
fn check_thought_signatures(contents: &[Value]) -> Result<(), ApiError> {
    for (i, content) in contents.iter().enumerate() {
        if content["role"] != "model" {
            continue;
        }
        let parts = content["parts"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let first_call = parts.iter().find(|part| part.get("functionCall").is_some());
        if let Some(part) = first_call {
            let signed = part["thoughtSignature"]
                .as_str()
                .is_some_and(|s| !s.is_empty());
            if !signed {
                let name = part["functionCall"]["name"].as_str().unwrap_or("");
                return Err(invalid(format!(
                    "Function call is missing a thought_signature in functionCall parts. This is \
                     required for tools to work correctly. Additional data, function call \
                     `default_api:{name}`, position {}. Please refer to \
                     https://ai.google.dev/gemini-api/docs/thought-signatures for more details.",
                    i + 1
                )));
            }
        }
    }
    Ok(())
}

/// Reads the conversation of a generateContent request.
fn conversation(body: &Value) -> Conversation {
    let contents = body["contents"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let last = match contents.last() {
        Some(content) if content["role"] != "model" => {
            let parts = content["parts"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or(&[]);
            let results: Vec<String> = parts
                .iter()
                .filter_map(|part| part.get("functionResponse"))
                .map(|result| match result.pointer("/response/content") {
                    Some(Value::String(text)) => text.clone(),
                    _ => result["response"].to_string(),
                })
                .collect();
            if results.is_empty() {
                LastTurn::User(text::content_text(&content["parts"]))
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
        .filter_map(|tool| tool["functionDeclarations"].as_array())
        .flatten()
        .filter_map(|declaration| {
            let schema = declaration
                .get("parameters")
                .or_else(|| declaration.get("parametersJsonSchema"));
            Some(ToolSpec {
                name: declaration.get("name")?.as_str()?.to_string(),
                schema: schema.cloned().unwrap_or(Value::Null),
            })
        })
        .collect();
    let calling = body.pointer("/toolConfig/functionCallingConfig");
    let mode = match calling.and_then(|c| c["mode"].as_str()) {
        Some("NONE") => ToolMode::None,
        Some("ANY") => match calling.and_then(|c| c.pointer("/allowedFunctionNames/0")) {
            Some(Value::String(name)) => ToolMode::Named(name.clone()),
            _ => ToolMode::Required,
        },
        _ => ToolMode::Auto,
    };
    let generation = &body["generationConfig"];
    Conversation {
        last,
        prompt_tokens: text::text_words(&body["systemInstruction"])
            + contents.iter().map(text::text_words).sum::<u64>(),
        tools,
        mode,
        max_tokens: generation["maxOutputTokens"].as_u64(),
        json: (generation["responseMimeType"] == "application/json").then(|| {
            generation
                .get("responseSchema")
                .or_else(|| generation.get("responseJsonSchema"))
                .cloned()
                .unwrap_or(Value::Null)
        }),
        stops: generation["stopSequences"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
    }
}

fn answer_tokens(answer: &Answer) -> u64 {
    match &answer.decision {
        Decision::Text(reply) => reply.tokens(),
        Decision::Tool(call) => call.tokens(),
    }
}

/// The non-streaming `GenerateContentResponse`.
fn whole(answer: &Answer) -> Value {
    let mut parts = Vec::new();
    if let Some(thoughts) = &answer.thoughts {
        parts.push(json!({"text": thoughts.concat(), "thought": true}));
    }
    match &answer.decision {
        Decision::Text(reply) => parts.push(json!({"text": reply.text()})),
        Decision::Tool(_) => parts.extend(answer.call_part()),
    }
    let thoughts = answer.thoughts.as_ref().map_or(0, |t| t.len() as u64);
    answer.response(parts, true, answer.usage(answer_tokens(answer), thoughts))
}

/// The streamed answer: SSE `data:` events with CRLF framing, or one JSON array without
/// `alt=sse`. Usage is cumulative on every chunk; the last one has the finish reason.
fn chunks(answer: &Answer, sse: bool) -> StreamReply {
    let mut responses = Vec::new();
    let mut thoughts = 0;
    for piece in answer.thoughts.iter().flatten() {
        thoughts += 1;
        let part = json!({"text": piece, "thought": true});
        responses.push(answer.response(vec![part], false, answer.usage(0, thoughts)));
    }
    match &answer.decision {
        Decision::Text(reply) => {
            let count = reply.pieces.len();
            for (i, piece) in reply.pieces.iter().enumerate() {
                let usage = answer.usage(i as u64 + 1, thoughts);
                let part = json!({"text": piece});
                responses.push(answer.response(vec![part], i + 1 == count, usage));
            }
            if count == 0 {
                let part = json!({"text": ""});
                responses.push(answer.response(vec![part], true, answer.usage(0, thoughts)));
            }
        }
        Decision::Tool(_) => {
            let usage = answer.usage(answer_tokens(answer), thoughts);
            let parts = answer.call_part().into_iter().collect();
            responses.push(answer.response(parts, true, usage));
        }
    }
    if sse {
        return StreamReply {
            frames: responses.iter().map(sse::data_crlf).collect(),
            content_type: "text/event-stream",
            malformed: Bytes::from_static(MALFORMED_SSE),
            error_frame: midstream_error_frame(Protocol::Gemini).into(),
        };
    }
    let mut frames: Vec<Frame> = responses
        .iter()
        .enumerate()
        .map(|(i, response)| Frame {
            bytes: Bytes::from(format!("{}{response}", if i == 0 { "[" } else { ",\r\n" })),
            counts: true,
        })
        .collect();
    // The closing bracket is not a chunk of its own.
    frames.push(Frame {
        bytes: Bytes::from_static(b"]"),
        counts: false,
    });
    StreamReply {
        frames,
        content_type: "application/json; charset=UTF-8",
        malformed: Bytes::from_static(b",\r\n{\"candidates\": [unterminated"),
        error_frame: Bytes::from_static(
            b",\r\n{\"error\": {\"code\": 503, \"message\": \"The model is overloaded.\", \"status\": \"UNAVAILABLE\"}}]",
        )
        .into(),
    }
}
