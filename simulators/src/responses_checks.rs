//! Request validation for OpenAI's Responses API (`POST /v1/responses`): allowed fields and their
//! types, input items, function tools in the flat Responses shape, `tool_choice`, `text.format`
//! and `reasoning`, answered with the messages, params and codes OpenAI uses.

use serde_json::{Map, Value};

use crate::SimConfig;
use crate::errors::ApiError;

/// Top-level fields of `responses.create`.
const FIELDS: &[&str] = &[
    "model",
    "input",
    "instructions",
    "tools",
    "tool_choice",
    "text",
    "reasoning",
    "max_output_tokens",
    "max_tool_calls",
    "temperature",
    "top_p",
    "top_logprobs",
    "stream",
    "stream_options",
    "store",
    "previous_response_id",
    "conversation",
    "metadata",
    "user",
    "safety_identifier",
    "prompt_cache_key",
    "prompt_cache_retention",
    "parallel_tool_calls",
    "include",
    "background",
    "service_tier",
    "truncation",
    "prompt",
];

#[derive(Clone, Copy)]
enum Kind {
    Str,
    Bool,
    Int,
    Num,
    Obj,
    Arr,
    StrOrArr,
    StrOrObj,
}

/// The JSON type each field must have (`null` counts as absent).
const TYPES: &[(&str, Kind)] = &[
    ("input", Kind::StrOrArr),
    ("instructions", Kind::Str),
    ("tools", Kind::Arr),
    ("tool_choice", Kind::StrOrObj),
    ("text", Kind::Obj),
    ("reasoning", Kind::Obj),
    ("max_output_tokens", Kind::Int),
    ("max_tool_calls", Kind::Int),
    ("temperature", Kind::Num),
    ("top_p", Kind::Num),
    ("top_logprobs", Kind::Int),
    ("stream", Kind::Bool),
    ("stream_options", Kind::Obj),
    ("store", Kind::Bool),
    ("previous_response_id", Kind::Str),
    ("metadata", Kind::Obj),
    ("user", Kind::Str),
    ("safety_identifier", Kind::Str),
    ("prompt_cache_key", Kind::Str),
    ("parallel_tool_calls", Kind::Bool),
    ("include", Kind::Arr),
    ("background", Kind::Bool),
    ("service_tier", Kind::Str),
    ("truncation", Kind::Str),
];

const ROLES: &[&str] = &["user", "assistant", "system", "developer"];
const USER_PARTS: &[&str] = &[
    "input_text",
    "input_image",
    "input_file",
    "input_audio",
    "output_text",
];
const ASSISTANT_PARTS: &[&str] = &["output_text", "refusal"];
/// Input item types besides the four checked in detail (hosted tools' calls and outputs).
const OTHER_ITEMS: &[&str] = &[
    "item_reference",
    "web_search_call",
    "file_search_call",
    "computer_call",
    "computer_call_output",
    "image_generation_call",
    "code_interpreter_call",
    "local_shell_call",
    "local_shell_call_output",
    "shell_call",
    "shell_call_output",
    "apply_patch_call",
    "apply_patch_call_output",
    "mcp_list_tools",
    "mcp_approval_request",
    "mcp_approval_response",
    "mcp_call",
    "custom_tool_call",
    "custom_tool_call_output",
    "compaction",
];

/// Checks a `responses.create` body the way OpenAI does, first error wins.
pub(crate) fn validate(config: &SimConfig, body: &Value) -> Result<(), ApiError> {
    let Some(fields) = body.as_object() else {
        return Err(ApiError::new(
            400,
            "The request body must be a JSON object.",
        ));
    };
    if config.strict_fields {
        check_known(fields, FIELDS, "")?;
    }
    match fields.get("model") {
        None | Some(Value::Null) => return Err(missing("model")),
        Some(Value::String(model)) if model.is_empty() => return Err(missing("model")),
        Some(Value::String(_)) => {}
        Some(other) => return Err(invalid_type("model", "a string", other)),
    }
    for (name, kind) in TYPES {
        if let Some(value) = fields.get(*name).filter(|v| !v.is_null()) {
            check_kind(name, *kind, value)?;
        }
    }
    match fields.get("input") {
        None | Some(Value::Null) => return Err(missing("input")),
        Some(Value::Array(items)) if items.is_empty() => {
            return Err(ApiError::new(
                400,
                "Invalid 'input': empty array. Expected an array with minimum length 1, but got \
                 an empty array instead.",
            )
            .param("input")
            .code("empty_array"));
        }
        Some(Value::Array(items)) => check_items(items, config.strict_fields)?,
        _ => {}
    }
    if let Some(tools) = fields.get("tools").and_then(Value::as_array) {
        check_tools(tools)?;
    }
    check_tool_choice(&body["tool_choice"])?;
    check_text(&body["text"])?;
    check_reasoning(&body["reasoning"])?;
    if let Some(include) = fields.get("include").and_then(Value::as_array) {
        for (i, value) in include.iter().enumerate() {
            if !value.is_string() {
                return Err(invalid_type(&format!("include[{i}]"), "a string", value));
            }
        }
    }
    Ok(())
}

/// Every `function_call_output` must answer a `function_call` earlier in the conversation.
pub(crate) fn check_call_outputs(items: &[Value]) -> Result<(), ApiError> {
    let mut calls: Vec<&str> = Vec::new();
    for item in items {
        let call_id = item["call_id"].as_str().unwrap_or_default();
        match item["type"].as_str() {
            Some("function_call") => calls.push(call_id),
            Some("function_call_output") if !calls.contains(&call_id) => {
                return Err(ApiError::new(
                    400,
                    format!("No tool call found for function call output with call_id {call_id}."),
                )
                .param("input"));
            }
            _ => {}
        }
    }
    Ok(())
}

fn check_items(items: &[Value], strict: bool) -> Result<(), ApiError> {
    for (i, item) in items.iter().enumerate() {
        let at = format!("input[{i}]");
        let Some(fields) = item.as_object() else {
            return Err(invalid_type(&at, "an object", item));
        };
        let kind = match fields.get("type") {
            Some(Value::String(kind)) => kind.as_str(),
            None | Some(Value::Null) if fields.contains_key("role") => "message",
            None | Some(Value::Null) => return Err(missing(&format!("{at}.type"))),
            Some(other) => return Err(invalid_type(&format!("{at}.type"), "a string", other)),
        };
        let allowed: &[&str] = match kind {
            "message" => {
                check_message(&at, fields)?;
                &["type", "role", "content", "id", "status"]
            }
            "function_call" => {
                for name in ["call_id", "name", "arguments"] {
                    require_string(&at, fields, name)?;
                }
                &["type", "id", "call_id", "name", "arguments", "status"]
            }
            "function_call_output" => {
                require_string(&at, fields, "call_id")?;
                match fields.get("output") {
                    Some(Value::String(_) | Value::Array(_)) => {}
                    None | Some(Value::Null) => return Err(missing(&format!("{at}.output"))),
                    Some(other) => {
                        let param = format!("{at}.output");
                        return Err(invalid_type(&param, "a string or an array", other));
                    }
                }
                &["type", "id", "call_id", "output", "status"]
            }
            "reasoning" => {
                if !fields.get("summary").is_some_and(Value::is_array) {
                    return Err(missing(&format!("{at}.summary")));
                }
                &["type", "id", "summary", "content", "encrypted_content"]
            }
            other if OTHER_ITEMS.contains(&other) => continue,
            other => {
                let mut supported = vec!["message", "function_call", "function_call_output"];
                supported.push("reasoning");
                supported.extend_from_slice(OTHER_ITEMS);
                return Err(invalid_value(&format!("{at}.type"), other, &supported));
            }
        };
        if strict {
            check_known(fields, allowed, &at)?;
        }
    }
    Ok(())
}

fn check_message(at: &str, fields: &Map<String, Value>) -> Result<(), ApiError> {
    let role = match fields.get("role") {
        Some(Value::String(role)) => role.as_str(),
        None | Some(Value::Null) => return Err(missing(&format!("{at}.role"))),
        Some(other) => return Err(invalid_type(&format!("{at}.role"), "a string", other)),
    };
    if !ROLES.contains(&role) {
        return Err(invalid_value(&format!("{at}.role"), role, ROLES));
    }
    let parts = match fields.get("content") {
        Some(Value::String(_)) => return Ok(()),
        Some(Value::Array(parts)) => parts,
        None | Some(Value::Null) => return Err(missing(&format!("{at}.content"))),
        Some(other) => {
            let param = format!("{at}.content");
            return Err(invalid_type(&param, "a string or an array", other));
        }
    };
    let supported = if role == "assistant" {
        ASSISTANT_PARTS
    } else {
        USER_PARTS
    };
    for (j, part) in parts.iter().enumerate() {
        let here = format!("{at}.content[{j}]");
        let kind = match part.get("type") {
            Some(Value::String(kind)) => kind.as_str(),
            _ => return Err(missing(&format!("{here}.type"))),
        };
        if !supported.contains(&kind) {
            return Err(invalid_value(&here, kind, supported));
        }
        if matches!(kind, "input_text" | "output_text") && !part["text"].is_string() {
            return Err(missing(&format!("{here}.text")));
        }
    }
    Ok(())
}

fn check_tools(tools: &[Value]) -> Result<(), ApiError> {
    for (i, tool) in tools.iter().enumerate() {
        let at = format!("tools[{i}]");
        let kind = match tool.get("type") {
            Some(Value::String(kind)) => kind.as_str(),
            Some(other) => return Err(invalid_type(&format!("{at}.type"), "a string", other)),
            None if tool.is_object() => return Err(missing(&format!("{at}.type"))),
            None => return Err(invalid_type(&at, "an object", tool)),
        };
        if kind != "function" {
            // Hosted tools (web_search, file_search, ...) are accepted and never called.
            continue;
        }
        // Chat's nested `{"type": "function", "function": {...}}` shape lands here.
        match tool.get("name") {
            Some(Value::String(_)) => {}
            None | Some(Value::Null) => return Err(missing(&format!("{at}.name"))),
            Some(other) => return Err(invalid_type(&format!("{at}.name"), "a string", other)),
        }
        if let Some(parameters) = tool.get("parameters").filter(|p| !p.is_null())
            && !parameters.is_object()
        {
            let param = format!("{at}.parameters");
            return Err(invalid_type(&param, "an object", parameters));
        }
    }
    Ok(())
}

fn check_tool_choice(choice: &Value) -> Result<(), ApiError> {
    match choice {
        Value::String(mode) if !["auto", "none", "required"].contains(&mode.as_str()) => Err(
            invalid_value("tool_choice", mode, &["none", "auto", "required"]),
        ),
        Value::Object(choice) if choice.get("type").and_then(Value::as_str) == Some("function") => {
            match choice.get("name") {
                Some(Value::String(_)) => Ok(()),
                _ => Err(missing("tool_choice.name")),
            }
        }
        _ => Ok(()),
    }
}

fn check_text(text: &Value) -> Result<(), ApiError> {
    if let Some(verbosity) = text.get("verbosity").and_then(Value::as_str)
        && !["low", "medium", "high"].contains(&verbosity)
    {
        let supported = ["low", "medium", "high"];
        return Err(invalid_value("text.verbosity", verbosity, &supported));
    }
    let format = &text["format"];
    if format.is_null() {
        return Ok(());
    }
    let kind = format["type"].as_str().unwrap_or_default();
    match kind {
        "text" | "json_object" => Ok(()),
        "json_schema" => {
            if !format["name"].is_string() {
                return Err(missing("text.format.name"));
            }
            if !format["schema"].is_object() {
                return Err(missing("text.format.schema"));
            }
            Ok(())
        }
        "" => Err(missing("text.format.type")),
        other => Err(invalid_value(
            "text.format.type",
            other,
            &["text", "json_object", "json_schema"],
        )),
    }
}

fn check_reasoning(reasoning: &Value) -> Result<(), ApiError> {
    let efforts = ["none", "minimal", "low", "medium", "high", "xhigh"];
    if let Some(effort) = reasoning.get("effort").and_then(Value::as_str)
        && !efforts.contains(&effort)
    {
        return Err(invalid_value("reasoning.effort", effort, &efforts));
    }
    let summaries = ["auto", "concise", "detailed"];
    if let Some(summary) = reasoning.get("summary").and_then(Value::as_str)
        && !summaries.contains(&summary)
    {
        return Err(invalid_value("reasoning.summary", summary, &summaries));
    }
    Ok(())
}

fn check_kind(name: &str, kind: Kind, value: &Value) -> Result<(), ApiError> {
    let (ok, expected) = match kind {
        Kind::Str => (value.is_string(), "a string"),
        Kind::Bool => (value.is_boolean(), "a boolean"),
        Kind::Int => (value.is_u64() || value.is_i64(), "an integer"),
        Kind::Num => (value.is_number(), "a decimal"),
        Kind::Obj => (value.is_object(), "an object"),
        Kind::Arr => (value.is_array(), "an array"),
        Kind::StrOrArr => (
            value.is_string() || value.is_array(),
            "one of a string or an array of input items",
        ),
        Kind::StrOrObj => (
            value.is_string() || value.is_object(),
            "one of a string or an object",
        ),
    };
    if ok {
        Ok(())
    } else {
        Err(invalid_type(name, expected, value))
    }
}

fn check_known(fields: &Map<String, Value>, allowed: &[&str], at: &str) -> Result<(), ApiError> {
    match fields.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(unknown) if at.is_empty() => Err(unknown_parameter(unknown)),
        Some(unknown) => Err(unknown_parameter(&format!("{at}.{unknown}"))),
        None => Ok(()),
    }
}

fn require_string(at: &str, fields: &Map<String, Value>, name: &str) -> Result<(), ApiError> {
    let param = format!("{at}.{name}");
    match fields.get(name) {
        Some(Value::String(_)) => Ok(()),
        None | Some(Value::Null) => Err(missing(&param)),
        Some(other) => Err(invalid_type(&param, "a string", other)),
    }
}

fn unknown_parameter(param: &str) -> ApiError {
    ApiError::new(400, format!("Unknown parameter: '{param}'."))
        .param(param)
        .code("unknown_parameter")
}

fn missing(param: &str) -> ApiError {
    ApiError::new(400, format!("Missing required parameter: '{param}'."))
        .param(param)
        .code("missing_required_parameter")
}

fn invalid_type(param: &str, expected: &str, got: &Value) -> ApiError {
    let got = match got {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_f64() => "a decimal",
        Value::Number(_) => "an integer",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    };
    let message =
        format!("Invalid type for '{param}': expected {expected}, but got {got} instead.");
    ApiError::new(400, message)
        .param(param)
        .code("invalid_type")
}

fn invalid_value(param: &str, value: &str, supported: &[&str]) -> ApiError {
    let quoted: Vec<String> = supported.iter().map(|s| format!("'{s}'")).collect();
    let list = match quoted.as_slice() {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] if rest.len() == 1 => format!("{} and {last}", rest[0]),
        [rest @ .., last] => format!("{}, and {last}", rest.join(", ")),
    };
    ApiError::new(
        400,
        format!("Invalid value: '{value}'. Supported values are: {list}."),
    )
    .param(param)
    .code("invalid_value")
}
