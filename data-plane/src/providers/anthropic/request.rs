//! Builds the Anthropic `POST /messages` body from a validated OpenAI chat request: top-level
//! parameters, thinking, tools and JSON mode (messages are converted in `anthropic_messages`).

use serde_json::{Map, Value, json};

use crate::error::ApiError;
use crate::providers::anthropic::messages::{self, Converted};
use crate::providers::anthropic::tools::{add_tools, json_mode};
use crate::providers::anthropic::{API_VERSION, DEFAULT_MAX_TOKENS};
use crate::providers::shared::stop_sequences;
use crate::providers::{AnswerShape, RequestCtx, UpstreamCall};
use crate::request::present;

/// Client fields this adapter sends (translated) or honours; everything else non-null that is
/// neither here nor refused is reported as dropped.
const HANDLED: &[&str] = &[
    "model",
    "messages",
    "max_tokens",
    "max_completion_tokens",
    "temperature",
    "top_p",
    "top_k",
    "stop",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "user",
    "safety_identifier",
    "response_format",
    "reasoning_effort",
    "stream",
    "stream_options",
    // Refused unless neutral (see `refuse_unsupported`); a neutral value is honoured.
    "logit_bias",
    "logprobs",
    "top_logprobs",
    "n",
    "presence_penalty",
    "frequency_penalty",
    "audio",
    "modalities",
    "functions",
    "function_call",
    "web_search_options",
];

/// The least thinking budget Anthropic accepts.
const MIN_BUDGET: u64 = 1024;

/// Builds the upstream call (see the `anthropic` module documentation for the choices made).
pub(in crate::providers) fn build(ctx: &RequestCtx<'_>) -> Result<UpstreamCall, ApiError> {
    let body = ctx.body;
    refuse_unsupported(body)?;
    let mut dropped: Vec<String> = body
        .iter()
        .filter(|(k, v)| !v.is_null() && !HANDLED.contains(&k.as_str()))
        .map(|(k, _)| k.clone())
        .collect();
    let effort = effort_budget(body)?;
    let messages = body
        .get("messages")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let Converted {
        system,
        mut messages,
    } = messages::convert(messages, effort.is_some(), ctx.cache)?;
    let mut budget = effort;
    if budget.is_some() && !messages::final_tool_turn_has_thinking(&messages) {
        // Anthropic requires the final tool-use turn to start with its signed thinking; without it
        // (history from another provider, an expired cache entry) answer without thinking.
        messages::strip_thinking(&mut messages);
        budget = None;
        dropped.push("reasoning_effort".into());
    }
    let json_mode = json_mode(body)?;
    if budget.is_some() {
        check_thinking_compatible(body, json_mode.is_some())?;
    }

    let mut out = Map::new();
    out.insert("model".into(), Value::String(ctx.model.to_string()));
    let (max_tokens, budget) = token_limits(body, budget)?;
    out.insert("max_tokens".into(), json!(max_tokens));
    if let Some(system) = system {
        out.insert("system".into(), system);
    }
    out.insert("messages".into(), Value::Array(messages));
    if let Some(budget) = budget {
        out.insert(
            "thinking".into(),
            json!({"type": "enabled", "budget_tokens": budget}),
        );
    }
    if let Some(t) = present(body, "temperature").and_then(Value::as_f64) {
        out.insert("temperature".into(), json!(t.clamp(0.0, 1.0)));
    }
    if let Some(p) = present(body, "top_p") {
        out.insert("top_p".into(), p.clone());
    }
    if let Some(k) = present(body, "top_k") {
        if k.as_u64().is_none_or(|k| k == 0) {
            return Err(ApiError::invalid(
                "top_k",
                "`top_k` must be a positive integer.",
            ));
        }
        out.insert("top_k".into(), k.clone());
    }
    if let Some(stops) = stop_sequences(body) {
        out.insert("stop_sequences".into(), stops);
    }
    let shape = AnswerShape {
        json_only: json_mode.is_some(),
        ..AnswerShape::default()
    };
    add_tools(body, json_mode, &mut out, &mut dropped)?;
    let user = present(body, "user").or_else(|| present(body, "safety_identifier"));
    if let Some(Value::String(user)) = user {
        out.insert("metadata".into(), json!({"user_id": user}));
    }
    out.insert("stream".into(), Value::Bool(ctx.stream));

    let body = serde_json::to_vec(&Value::Object(out))
        .map_err(|_| ApiError::bad_request("invalid_json", "The request could not be encoded."))?;
    Ok(UpstreamCall {
        path: "/messages".into(),
        body,
        headers: vec![("anthropic-version", API_VERSION.to_string())],
        dropped,
        shape,
    })
}

fn unsupported(param: &str, what: &str) -> ApiError {
    ApiError::invalid(param, format!("{what} is not supported by Anthropic."))
}

/// A 400 for every parameter Anthropic cannot honour, unless its value changes nothing. `seed` is
/// not among them: it is best-effort in OpenAI's own API, so it is dropped (and reported) instead.
fn refuse_unsupported(body: &Map<String, Value>) -> Result<(), ApiError> {
    let nonzero = |f: &str| present(body, f).is_some_and(|v| v.as_f64() != Some(0.0));
    let checks: [(&str, bool, &str); 11] = [
        (
            "logit_bias",
            present(body, "logit_bias")
                .is_some_and(|v| v.as_object().is_none_or(|m| !m.is_empty())),
            "`logit_bias`",
        ),
        (
            "logprobs",
            present(body, "logprobs").is_some_and(|v| v != &Value::Bool(false)),
            "`logprobs`",
        ),
        ("top_logprobs", nonzero("top_logprobs"), "`top_logprobs`"),
        (
            "n",
            present(body, "n").is_some_and(|v| v.as_u64() != Some(1)),
            "`n` other than 1",
        ),
        (
            "presence_penalty",
            nonzero("presence_penalty"),
            "`presence_penalty`",
        ),
        (
            "frequency_penalty",
            nonzero("frequency_penalty"),
            "`frequency_penalty`",
        ),
        ("audio", present(body, "audio").is_some(), "Audio output"),
        (
            "modalities",
            present(body, "modalities").is_some_and(|v| {
                v.as_array()
                    .is_none_or(|l| l.iter().any(|m| m.as_str() != Some("text")))
            }),
            "An output modality other than text",
        ),
        (
            "functions",
            present(body, "functions").is_some(),
            "The legacy `functions` parameter (use `tools`)",
        ),
        (
            "function_call",
            present(body, "function_call").is_some(),
            "The legacy `function_call` parameter (use `tool_choice`)",
        ),
        (
            "web_search_options",
            present(body, "web_search_options").is_some(),
            "`web_search_options`",
        ),
    ];
    match checks.iter().find(|(_, refused, _)| *refused) {
        Some((param, _, what)) => Err(unsupported(param, what)),
        None => Ok(()),
    }
}

/// The thinking budget the client's `reasoning_effort` asks for (`None`: no thinking).
fn effort_budget(body: &Map<String, Value>) -> Result<Option<u64>, ApiError> {
    Ok(
        match present(body, "reasoning_effort").and_then(Value::as_str) {
            None | Some("none") => None,
            Some("minimal") => Some(MIN_BUDGET),
            Some("low") => Some(2048),
            Some("medium") => Some(8192),
            Some("high") => Some(16_384),
            Some("xhigh") => Some(24_576),
            Some(_) => {
                return Err(ApiError::invalid(
                    "reasoning_effort",
                    "`reasoning_effort` must be one of none, minimal, low, medium, high, xhigh.",
                ));
            }
        },
    )
}

/// `max_tokens` and the thinking budget actually sent (budget < max_tokens, budget >= 1024).
fn token_limits(
    body: &Map<String, Value>,
    budget: Option<u64>,
) -> Result<(u64, Option<u64>), ApiError> {
    let (param, client) = ["max_completion_tokens", "max_tokens"]
        .into_iter()
        .find_map(|p| present(body, p).and_then(Value::as_u64).map(|v| (p, v)))
        .map_or(("max_tokens", None), |(p, v)| (p, Some(v)));
    Ok(match (client, budget) {
        (Some(max), None) => (max, None),
        (None, None) => (DEFAULT_MAX_TOKENS, None),
        (None, Some(budget)) => (budget + DEFAULT_MAX_TOKENS, Some(budget)),
        (Some(max), Some(_)) if max <= MIN_BUDGET => {
            return Err(ApiError::invalid(
                param,
                format!(
                    "With `reasoning_effort`, `{param}` must be greater than {MIN_BUDGET}: \
                     Anthropic's thinking budget is at least {MIN_BUDGET} tokens and must stay \
                     below the output limit."
                ),
            ));
        }
        // Leave at least half of the client's limit for the answer itself.
        (Some(max), Some(budget)) => (max, Some(budget.min((max / 2).max(MIN_BUDGET)))),
    })
}

/// Anthropic's rules for requests with thinking on.
fn check_thinking_compatible(body: &Map<String, Value>, json_mode: bool) -> Result<(), ApiError> {
    let with = "together with `reasoning_effort`";
    if present(body, "temperature").is_some_and(|t| t.as_f64() != Some(1.0)) {
        return Err(unsupported(
            "temperature",
            &format!("`temperature` other than 1 {with}"),
        ));
    }
    if present(body, "top_p").is_some_and(|p| p.as_f64().is_none_or(|p| p < 0.95)) {
        return Err(unsupported("top_p", &format!("`top_p` below 0.95 {with}")));
    }
    if present(body, "top_k").is_some() {
        return Err(unsupported("top_k", &format!("`top_k` {with}")));
    }
    let forced = match present(body, "tool_choice") {
        Some(Value::String(s)) => s == "required",
        Some(_) => true,
        None => false,
    };
    if forced && present(body, "tools").is_some() {
        return Err(unsupported(
            "tool_choice",
            &format!("Forced tool use {with}"),
        ));
    }
    if json_mode {
        return Err(unsupported(
            "response_format",
            &format!("JSON mode (answered through a forced tool) {with}"),
        ));
    }
    Ok(())
}
