//! Tools for Anthropic: OpenAI function tools as `tools`, `tool_choice` and
//! `parallel_tool_calls`, and JSON mode as a forced tool (see the `anthropic` module docs).

use serde_json::{Map, Value, json};

use crate::error::ApiError;
use crate::providers::anthropic::JSON_TOOL;
use crate::request::present;

/// The `input_schema` of the JSON-mode tool, if the client asked for JSON.
pub(in crate::providers) fn json_mode(
    body: &Map<String, Value>,
) -> Result<Option<Value>, ApiError> {
    let Some(format) = present(body, "response_format") else {
        return Ok(None);
    };
    match format.get("type").and_then(Value::as_str) {
        Some("json_object") => Ok(Some(json!({"type": "object"}))),
        Some("json_schema") => {
            let schema = format.pointer("/json_schema/schema");
            match schema {
                None | Some(Value::Null) => Ok(Some(json!({"type": "object"}))),
                Some(Value::Object(s)) if s.get("type").is_none_or(|t| t == "object") => {
                    let mut s = s.clone();
                    s.insert("type".into(), Value::String("object".into()));
                    Ok(Some(Value::Object(s)))
                }
                Some(_) => Err(ApiError::invalid(
                    "response_format.json_schema.schema",
                    "Anthropic answers JSON through a tool, whose input must be a JSON object: \
                     the schema must describe an object.",
                )),
            }
        }
        _ => Ok(None),
    }
}

/// `tools` and `tool_choice`, with the JSON-mode tool when asked for.
pub(in crate::providers) fn add_tools(
    body: &Map<String, Value>,
    json_schema: Option<Value>,
    out: &mut Map<String, Value>,
    dropped: &mut Vec<String>,
) -> Result<(), ApiError> {
    let mut tools = Vec::new();
    for (i, tool) in present(body, "tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        tools.push(tool_definition(i, tool)?);
    }
    let client_tools = !tools.is_empty();
    let no_parallel = present(body, "parallel_tool_calls") == Some(&Value::Bool(false));
    let mut choice = match present(body, "tool_choice") {
        Some(Value::String(s)) if s == "none" => json!({"type": "none"}),
        Some(Value::String(s)) if s == "required" => json!({"type": "any"}),
        Some(Value::Object(o)) => {
            let name = o.get("function").and_then(|f| f.get("name")).cloned();
            json!({"type": "tool", "name": name})
        }
        _ => json!({"type": "auto"}),
    };
    if let Some(schema) = json_schema {
        tools.push(json!({
            "name": JSON_TOOL,
            "description": "Give your whole answer to the user as this tool's input: \
                            a JSON value matching the input schema.",
            "input_schema": schema,
        }));
        choice = match choice["type"].as_str() {
            // The answer may be a call of a client tool or the JSON answer, but never free text.
            Some("auto" | "any") if client_tools => json!({"type": "any"}),
            Some("tool") => choice,
            _ => json!({"type": "tool", "name": JSON_TOOL}),
        };
    } else if !client_tools {
        for field in ["tool_choice", "parallel_tool_calls"] {
            if present(body, field).is_some() {
                dropped.push(field.into());
            }
        }
        return Ok(());
    }
    if no_parallel && choice["type"] != "none" {
        choice["disable_parallel_tool_use"] = Value::Bool(true);
    }
    let explicit = present(body, "tool_choice").is_some();
    if explicit || choice["type"] != "auto" || no_parallel {
        out.insert("tool_choice".into(), choice);
    }
    out.insert("tools".into(), Value::Array(tools));
    Ok(())
}

/// One OpenAI function tool as an Anthropic tool (`strict` has no Anthropic counterpart).
fn tool_definition(i: usize, tool: &Value) -> Result<Value, ApiError> {
    let function = tool.get("function").unwrap_or(&Value::Null);
    let name = function
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if name == JSON_TOOL {
        return Err(ApiError::invalid(
            format!("tools[{i}].function.name"),
            format!("`{JSON_TOOL}` is reserved for JSON mode on Anthropic; rename the tool."),
        ));
    }
    let schema = match function.get("parameters") {
        None | Some(Value::Null) => json!({"type": "object", "properties": {}}),
        Some(Value::Object(p)) => {
            let mut p = p.clone();
            p.entry("type")
                .or_insert_with(|| Value::String("object".into()));
            Value::Object(p)
        }
        Some(_) => {
            return Err(ApiError::invalid(
                format!("tools[{i}].function.parameters"),
                "`parameters` must be a JSON Schema object.",
            ));
        }
    };
    let mut out = json!({"name": name, "input_schema": schema});
    if let Some(d) = function.get("description").filter(|d| d.is_string()) {
        out["description"] = d.clone();
    }
    Ok(out)
}
