//! Builds a Gemini `generateContent` request from an OpenAI chat request, field by field from an
//! allow-list: the path (model name checked to be URL-safe; the key goes in the
//! `x-goog-api-key` header, never the URL), `contents` and `systemInstruction`, `tools` and
//! `toolConfig`, and `generationConfig`. Parameters Gemini cannot honour are refused with a 400
//! naming them; top-level fields that are neither sent nor refused are listed as dropped
//! (`parallel_tool_calls: false` among them: the answer is cut to one call instead).

use serde_json::{Map, Value, json};

use crate::error::ApiError;
use crate::providers::gemini::generation;
use crate::providers::gemini::messages::convert;
use crate::providers::gemini::schema::{is_empty_object, reduce};
use crate::providers::shared::stop_sequences;
use crate::providers::{AnswerShape, RequestCtx, UpstreamCall};
use crate::request::present;

/// Top-level client fields this adapter reads (sent in Gemini's form, or checked and refused).
const HANDLED: &[&str] = &[
    "model",
    "messages",
    "stream",
    "stream_options",
    "temperature",
    "top_p",
    "top_k",
    "max_tokens",
    "max_completion_tokens",
    "stop",
    "n",
    "seed",
    "presence_penalty",
    "frequency_penalty",
    "logprobs",
    "top_logprobs",
    "response_format",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "reasoning_effort",
    "logit_bias",
    "functions",
    "function_call",
    "modalities",
    "audio",
    "web_search_options",
];

/// Builds the upstream request for `ctx`.
pub fn build_request(ctx: &RequestCtx<'_>) -> Result<UpstreamCall, ApiError> {
    let model = path_model(ctx.model)?;
    let body = ctx.body;
    refuse_unsupported(body)?;
    let messages = body
        .get("messages")
        .and_then(Value::as_array)
        .ok_or_else(|| ApiError::invalid("messages", "`messages` must be an array."))?;
    let conversation = convert(messages, model, ctx.cache)?;
    let mut out = Map::new();
    out.insert("contents".into(), Value::Array(conversation.contents));
    if !conversation.system.is_empty() {
        out.insert(
            "systemInstruction".into(),
            json!({ "parts": conversation.system }),
        );
    }
    if let Some((tools, tool_config)) = tools(body)? {
        out.insert("tools".into(), tools);
        if let Some(config) = tool_config {
            out.insert("toolConfig".into(), config);
        }
    }
    let mut dropped: Vec<String> = body
        .keys()
        .filter(|k| !HANDLED.contains(&k.as_str()))
        .cloned()
        .collect();
    // Gemini has no switch for it and may always call several functions at once: the parameter
    // is not sent (and so reported), and the answer keeps the first call of each choice.
    let one_tool_call = present(body, "parallel_tool_calls") == Some(&Value::Bool(false));
    if one_tool_call {
        dropped.push("parallel_tool_calls".into());
    }
    let config = generation_config(body, model, &mut dropped)?;
    if !config.is_empty() {
        out.insert("generationConfig".into(), Value::Object(config));
    }
    let body_bytes = serde_json::to_vec(&out)
        .map_err(|_| ApiError::bad_request("invalid_json", "The request could not be encoded."))?;
    let method = if ctx.stream {
        "streamGenerateContent?alt=sse"
    } else {
        "generateContent"
    };
    Ok(UpstreamCall {
        path: format!("/models/{model}:{method}"),
        body: body_bytes,
        headers: Vec::new(),
        dropped,
        shape: AnswerShape {
            one_tool_call,
            ..AnswerShape::default()
        },
    })
}

/// The model name as a path segment: an optional `models/` prefix is removed, and anything but
/// letters, digits, `.`, `_` and `-` (or a `..`) is refused so the name cannot change the URL.
fn path_model(model: &str) -> Result<&str, ApiError> {
    let name = model.strip_prefix("models/").unwrap_or(model);
    let safe = !name.is_empty()
        && name.len() <= 200
        && !name.contains("..")
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if safe {
        Ok(name)
    } else {
        Err(ApiError::invalid(
            "model",
            "This is not a valid Gemini model name (letters, digits, `.`, `_` and `-` only; no `/`, `?`, `#` or `..`).",
        ))
    }
}

fn unsupported(param: &str, what: &str) -> ApiError {
    ApiError::invalid(param, format!("{what} is not supported by Gemini."))
}

/// Parameters whose meaning Gemini cannot reproduce: refusing beats silently answering otherwise.
fn refuse_unsupported(body: &Map<String, Value>) -> Result<(), ApiError> {
    if present(body, "logit_bias").is_some_and(|b| b.as_object().is_none_or(|m| !m.is_empty())) {
        return Err(unsupported("logit_bias", "`logit_bias`"));
    }
    for field in ["functions", "function_call"] {
        if present(body, field).is_some() {
            return Err(unsupported(
                field,
                &format!("The deprecated `{field}` parameter (use `tools` and `tool_choice`)"),
            ));
        }
    }
    if present(body, "audio").is_some()
        || present(body, "modalities")
            .and_then(Value::as_array)
            .is_some_and(|m| m.iter().any(|m| m != "text"))
    {
        return Err(unsupported("modalities", "Output other than text"));
    }
    if present(body, "web_search_options").is_some() {
        return Err(unsupported("web_search_options", "`web_search_options`"));
    }
    Ok(())
}

/// `tools` → `functionDeclarations`; `tool_choice` → `toolConfig.functionCallingConfig`.
fn tools(body: &Map<String, Value>) -> Result<Option<(Value, Option<Value>)>, ApiError> {
    let list = match present(body, "tools").and_then(Value::as_array) {
        Some(list) if !list.is_empty() => list,
        _ => return Ok(None),
    };
    let mut declarations = Vec::with_capacity(list.len());
    let mut names = Vec::with_capacity(list.len());
    for (i, tool) in list.iter().enumerate() {
        let function = &tool["function"];
        let name = function["name"].as_str().unwrap_or_default();
        let mut declaration = json!({ "name": name });
        if let Some(description) = function["description"].as_str() {
            declaration["description"] = Value::String(description.into());
        }
        if let Some(parameters) = function.get("parameters").filter(|p| !p.is_null()) {
            let param = format!("tools[{i}].function.parameters");
            let reduced = reduce(parameters, &param)?;
            if reduced.get("type").is_some_and(|t| t != "OBJECT") {
                return Err(ApiError::invalid(
                    param,
                    "Gemini function parameters must be an object schema.",
                ));
            }
            if !is_empty_object(&reduced) {
                declaration["parameters"] = reduced;
            }
        }
        names.push(name);
        declarations.push(declaration);
    }
    let mode = match present(body, "tool_choice") {
        None => None,
        Some(Value::String(choice)) => Some(match choice.as_str() {
            "none" => json!({ "mode": "NONE" }),
            "required" => json!({ "mode": "ANY" }),
            _ => json!({ "mode": "AUTO" }),
        }),
        Some(choice) => {
            let name = choice["function"]["name"].as_str().unwrap_or_default();
            if !names.contains(&name) {
                return Err(ApiError::invalid(
                    "tool_choice",
                    format!("`tool_choice` names the function `{name}`, which is not in `tools`."),
                ));
            }
            Some(json!({ "mode": "ANY", "allowedFunctionNames": [name] }))
        }
    };
    let tool_config = mode.map(|m| json!({ "functionCallingConfig": m }));
    Ok(Some((
        json!([{ "functionDeclarations": declarations }]),
        tool_config,
    )))
}

/// `generationConfig` from the sampling, length, format and reasoning parameters (a `seed` Gemini
/// cannot take is added to `dropped`).
fn generation_config(
    body: &Map<String, Value>,
    model: &str,
    dropped: &mut Vec<String>,
) -> Result<Map<String, Value>, ApiError> {
    let mut config = Map::new();
    let mut copy = |from: &str, to: &str| {
        if let Some(v) = present(body, from) {
            config.insert(to.into(), v.clone());
        }
    };
    copy("temperature", "temperature");
    copy("top_p", "topP");
    copy("presence_penalty", "presencePenalty");
    copy("frequency_penalty", "frequencyPenalty");
    if let Some(k) = present(body, "top_k") {
        if k.as_u64().is_none_or(|k| k < 1) {
            return Err(ApiError::invalid(
                "top_k",
                "`top_k` must be a positive integer.",
            ));
        }
        config.insert("topK".into(), k.clone());
    }
    if let Some(max) =
        present(body, "max_completion_tokens").or_else(|| present(body, "max_tokens"))
    {
        config.insert("maxOutputTokens".into(), max.clone());
    }
    if let Some(stops) = stop_sequences(body) {
        config.insert("stopSequences".into(), stops);
    }
    if let Some(n) = present(body, "n")
        .and_then(Value::as_u64)
        .filter(|n| *n != 1)
    {
        config.insert("candidateCount".into(), n.into());
    }
    if let Some(seed) = present(body, "seed") {
        // Gemini's seed is 32-bit; a larger one is dropped like a seed on a provider without any
        // (best-effort in OpenAI's own API, so not worth a refusal).
        match seed.as_i64().and_then(|s| i32::try_from(s).ok()) {
            Some(seed) => {
                config.insert("seed".into(), seed.into());
            }
            None => dropped.push("seed".into()),
        }
    }
    if present(body, "logprobs") == Some(&Value::Bool(true)) {
        config.insert("responseLogprobs".into(), true.into());
        if let Some(top) = present(body, "top_logprobs")
            .and_then(Value::as_u64)
            .filter(|n| *n > 0)
        {
            config.insert("logprobs".into(), top.into());
        }
    }
    if let Some(format) = present(body, "response_format") {
        match format["type"].as_str() {
            Some("json_object") => {
                config.insert("responseMimeType".into(), "application/json".into());
            }
            Some("json_schema") => {
                let param = "response_format.json_schema.schema";
                let schema = format
                    .pointer("/json_schema/schema")
                    .ok_or_else(|| ApiError::invalid(param, "`json_schema` needs a `schema`."))?;
                config.insert("responseMimeType".into(), "application/json".into());
                config.insert("responseSchema".into(), reduce(schema, param)?);
            }
            _ => {}
        }
    }
    if let Some(effort) = present(body, "reasoning_effort").and_then(Value::as_str) {
        config.insert("thinkingConfig".into(), thinking(effort, model)?);
    }
    Ok(config)
}

/// `reasoning_effort` → `thinkingConfig`: Gemini 3 takes a `thinkingLevel` (Pro knows `low` and
/// `high`, Flash also `minimal` and `medium`), Gemini 2.5 a token `thinkingBudget` (Pro cannot
/// turn thinking off: 128 is its least). Thoughts are included unless the effort is `none`.
fn thinking(effort: &str, model: &str) -> Result<Value, ApiError> {
    let flash = model.contains("flash");
    let include = effort != "none";
    match generation(model) {
        Some((major, _)) if major >= 3 => {
            let level = match (effort, flash) {
                ("none" | "minimal", true) => "minimal",
                ("medium", true) => "medium",
                ("none" | "minimal" | "low", _) => "low",
                _ => "high",
            };
            Ok(json!({ "thinkingLevel": level, "includeThoughts": include }))
        }
        Some((2, 5)) | None => {
            let budget = match effort {
                "none" if flash => 0,
                "none" => 128,
                "minimal" => 512,
                "low" => 1024,
                "medium" => 8192,
                "high" => 24576,
                _ if flash => 24576,
                _ => 32768,
            };
            Ok(json!({ "thinkingBudget": budget, "includeThoughts": include }))
        }
        Some(_) => Err(ApiError::invalid(
            "reasoning_effort",
            format!(
                "`reasoning_effort` is not supported by the Gemini model `{model}` (it does not think)."
            ),
        )),
    }
}
