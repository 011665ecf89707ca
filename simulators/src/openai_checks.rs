//! Request validation for the OpenAI, Mistral and DeepSeek dialects: allowed fields, roles,
//! and the provider-specific rules a gateway must respect (Mistral tool-call ids, DeepSeek
//! `reasoning_content` round trip, `max_completion_tokens` on OpenAI reasoning models).

use serde_json::{Value, json};

use crate::errors::ApiError;
use crate::{Protocol, SimConfig};

const OPENAI_FIELDS: &[&str] = &[
    "model",
    "messages",
    "stream",
    "stream_options",
    "temperature",
    "top_p",
    "n",
    "max_tokens",
    "max_completion_tokens",
    "stop",
    "presence_penalty",
    "frequency_penalty",
    "logit_bias",
    "logprobs",
    "top_logprobs",
    "seed",
    "response_format",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "user",
    "reasoning_effort",
    "service_tier",
    "store",
    "metadata",
    "modalities",
    "audio",
    "prediction",
    "web_search_options",
    "functions",
    "function_call",
    "verbosity",
    "prompt_cache_key",
    "safety_identifier",
];

const MISTRAL_FIELDS: &[&str] = &[
    "model",
    "messages",
    "stream",
    "temperature",
    "top_p",
    "max_tokens",
    "stop",
    "random_seed",
    "response_format",
    "tools",
    "tool_choice",
    "presence_penalty",
    "frequency_penalty",
    "n",
    "safe_prompt",
    "parallel_tool_calls",
    "prediction",
    "prompt_mode",
    "reasoning_effort",
    "metadata",
];

const ROLES: &[&str] = &[
    "system",
    "developer",
    "user",
    "assistant",
    "tool",
    "function",
];

pub(crate) fn validate(config: &SimConfig, body: &Value) -> Result<(), ApiError> {
    let protocol = config.protocol;
    let Some(fields) = body.as_object() else {
        return Err(ApiError::new(
            400,
            "The request body must be a JSON object.",
        ));
    };
    if config.strict_fields {
        let allowed = match protocol {
            Protocol::Mistral => Some(MISTRAL_FIELDS),
            Protocol::OpenAi => Some(OPENAI_FIELDS),
            _ => None,
        };
        if let Some(unknown) =
            allowed.and_then(|a| fields.keys().find(|k| !a.contains(&k.as_str())))
        {
            return Err(if protocol == Protocol::Mistral {
                ApiError::new(
                    422,
                    format!("body.{unknown}: Extra inputs are not permitted"),
                )
                .code("extra_forbidden")
            } else {
                ApiError::new(
                    400,
                    format!("Unrecognized request argument supplied: {unknown}"),
                )
            });
        }
    }
    let model = fields.get("model").and_then(Value::as_str).unwrap_or("");
    if model.is_empty() {
        return Err(ApiError::new(400, "you must provide a model parameter").param("model"));
    }
    let messages = match fields.get("messages").and_then(Value::as_array) {
        Some(messages) if !messages.is_empty() => messages,
        _ => {
            return Err(ApiError::new(400, "[] is too short - 'messages'").param("messages"));
        }
    };
    for (i, message) in messages.iter().enumerate() {
        let role = message.get("role").and_then(Value::as_str).unwrap_or("");
        if !ROLES.contains(&role) {
            return Err(
                ApiError::new(400, format!("Invalid value for 'messages[{i}].role'."))
                    .param(&format!("messages[{i}].role")),
            );
        }
    }
    if let Some(n) = fields.get("n")
        && !n.as_u64().is_some_and(|n| (1..=128).contains(&n))
    {
        return Err(ApiError::new(400, "n must be an integer between 1 and 128.").param("n"));
    }
    if protocol == Protocol::OpenAi
        && fields.contains_key("max_tokens")
        && ["o1", "o3", "o4", "gpt-5"]
            .iter()
            .any(|p| model.starts_with(p))
    {
        return Err(ApiError::new(
            400,
            "Unsupported parameter: 'max_tokens' is not supported with this model. Use \
             'max_completion_tokens' instead.",
        )
        .param("max_tokens")
        .code("unsupported_parameter"));
    }
    match protocol {
        Protocol::Mistral => check_mistral_ids(messages),
        Protocol::DeepSeek if model.contains("reasoner") => check_reasoning_passed_back(messages),
        _ => Ok(()),
    }
}

/// Mistral only accepts 9-character alphanumeric tool-call ids (error 3280 otherwise).
fn check_mistral_ids(messages: &[Value]) -> Result<(), ApiError> {
    let valid = |id: &str| id.len() == 9 && id.bytes().all(|b| b.is_ascii_alphanumeric());
    let ids = messages.iter().flat_map(|message| {
        let call_ids = message
            .get("tool_calls")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|call| call.get("id").and_then(Value::as_str));
        call_ids.chain(message.get("tool_call_id").and_then(Value::as_str))
    });
    for id in ids {
        if !valid(id) {
            let message =
                format!("Tool call id was {id} but must be a-z, A-Z, 0-9, with a length of 9.");
            return Err(
                ApiError::new(400, message.clone()).raw(json!({"object": "error",
                "message": message, "type": "invalid_function_call", "param": null,
                "code": "3280"})),
            );
        }
    }
    Ok(())
}

/// DeepSeek thinking mode: assistant turns with tool calls must carry their reasoning back.
fn check_reasoning_passed_back(messages: &[Value]) -> Result<(), ApiError> {
    let missing = messages.iter().any(|message| {
        message.get("role").and_then(Value::as_str) == Some("assistant")
            && message
                .get("tool_calls")
                .and_then(Value::as_array)
                .is_some_and(|calls| !calls.is_empty())
            && message
                .get("reasoning_content")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
    });
    if missing {
        let message =
            "The `reasoning_content` in the thinking mode must be passed back to the API.";
        return Err(ApiError::new(400, message).code("invalid_request_error"));
    }
    Ok(())
}
