//! Converts OpenAI `messages` to Anthropic's `system` + `messages`: content parts (text, images,
//! PDFs), assistant tool calls as `tool_use` blocks, tool results merged into user turns, and the
//! signed thinking blocks an assistant tool-call turn needs when thinking is on. Tool-call ids are
//! made valid for Anthropic (see `anthropic_ids`), the same way in the call and its result.

use serde_json::{Map, Value, json};

use crate::error::ApiError;
use crate::providers::anthropic::ids::to_anthropic;
use crate::providers::reasoning_cache::ReasoningCache;
use crate::providers::shared::tool_arguments;

/// The converted conversation.
pub(in crate::providers) struct Converted {
    /// Top-level `system`: a string, or text blocks when some carry `cache_control`.
    pub system: Option<Value>,
    /// Anthropic messages, each `{role, content: [blocks]}`.
    pub messages: Vec<Value>,
}

/// Converts the (already validated) OpenAI messages. `thinking`: restore thinking blocks.
pub(in crate::providers) fn convert(
    messages: &[Value],
    thinking: bool,
    cache: &ReasoningCache,
) -> Result<Converted, ApiError> {
    let mut system = Vec::new();
    let mut out: Vec<Value> = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        let role = m.get("role").and_then(Value::as_str).unwrap_or_default();
        let content = m.get("content").unwrap_or(&Value::Null);
        match role {
            // Anthropic has one top-level system prompt: every system turn is folded into it.
            "system" | "developer" => system.extend(parts(content, i, Part::System)?),
            "user" => push_user(&mut out, parts(content, i, Part::User)?),
            "tool" => {
                let id = match m.get("tool_call_id") {
                    Some(Value::String(id)) => Value::String(to_anthropic(id).into_owned()),
                    other => other.cloned().unwrap_or(Value::Null),
                };
                let result = match content {
                    Value::Array(_) => Value::Array(parts(content, i, Part::User)?),
                    other => Value::String(other.as_str().unwrap_or_default().to_string()),
                };
                let block = json!({"type": "tool_result", "tool_use_id": id, "content": result});
                push_user(&mut out, vec![block]);
            }
            "assistant" => {
                let blocks = assistant(m, i, thinking, cache)?;
                if !blocks.is_empty() {
                    out.push(json!({"role": "assistant", "content": blocks}));
                }
            }
            _ => {
                return Err(ApiError::invalid(
                    format!("messages[{i}].role"),
                    format!("The `{role}` role is not supported by Anthropic (use `tool`)."),
                ));
            }
        }
    }
    let system = match system.as_slice() {
        [] => None,
        blocks if blocks.iter().all(|b| b.get("cache_control").is_none()) => {
            let texts: Vec<&str> = blocks.iter().filter_map(|b| b["text"].as_str()).collect();
            Some(Value::String(texts.join("\n\n")))
        }
        _ => Some(Value::Array(system)),
    };
    Ok(Converted {
        system,
        messages: out,
    })
}

/// Appends user blocks, merging into a preceding user turn: consecutive tool results must form
/// one user message, and a user turn right after them joins it (tool results first).
fn push_user(out: &mut Vec<Value>, blocks: Vec<Value>) {
    if blocks.is_empty() {
        return;
    }
    if let Some(last) = out.last_mut().filter(|m| m["role"] == "user")
        && let Some(content) = last["content"].as_array_mut()
    {
        content.extend(blocks);
        return;
    }
    out.push(json!({"role": "user", "content": blocks}));
}

#[derive(Clone, Copy, PartialEq)]
enum Part {
    System,
    User,
    Assistant,
}

/// Content (a string or parts) as Anthropic blocks; empty text is left out (Anthropic rejects it).
fn parts(content: &Value, i: usize, kind: Part) -> Result<Vec<Value>, ApiError> {
    let list = match content {
        Value::Null => return Ok(Vec::new()),
        Value::String(s) if s.is_empty() => return Ok(Vec::new()),
        Value::String(s) => return Ok(vec![json!({"type": "text", "text": s})]),
        Value::Array(list) => list,
        _ => {
            return Err(ApiError::invalid(
                format!("messages[{i}].content"),
                "must be a string or parts.",
            ));
        }
    };
    let mut blocks = Vec::with_capacity(list.len());
    for (j, part) in list.iter().enumerate() {
        let param = format!("messages[{i}].content[{j}]");
        let kind_name = part.get("type").and_then(Value::as_str).unwrap_or_default();
        let mut block = match (kind_name, kind) {
            ("text", _) | ("refusal", Part::Assistant) => {
                let field = if kind_name == "text" {
                    "text"
                } else {
                    "refusal"
                };
                match part.get(field).and_then(Value::as_str) {
                    Some("") => continue,
                    Some(text) => json!({"type": "text", "text": text}),
                    None => {
                        return Err(ApiError::invalid(
                            param,
                            format!("needs a string `{field}`."),
                        ));
                    }
                }
            }
            ("image_url", Part::User) => image(part, &param)?,
            ("file", Part::User) => document(part, &param)?,
            (other, _) => {
                return Err(ApiError::invalid(
                    format!("{param}.type"),
                    format!("Content parts of type `{other}` here are not supported by Anthropic."),
                ));
            }
        };
        if let Some(cache) = cache_control(part) {
            block["cache_control"] = cache;
        }
        blocks.push(block);
    }
    Ok(blocks)
}

/// A client's prompt-caching marker on a part, reduced to the fields Anthropic knows.
fn cache_control(part: &Value) -> Option<Value> {
    let c = part.get("cache_control")?.as_object()?;
    let mut out = Map::new();
    out.insert("type".into(), c.get("type")?.clone());
    if let Some(ttl) = c.get("ttl").filter(|t| t.is_string()) {
        out.insert("ttl".into(), ttl.clone());
    }
    Some(Value::Object(out))
}

/// `data:<media type>;base64,<data>` split into its media type and data.
fn data_url(url: &str) -> Option<(&str, &str)> {
    let rest = url.strip_prefix("data:")?;
    let (meta, data) = rest.split_once(',')?;
    let media = meta.strip_suffix(";base64")?;
    Some((media, data))
}

fn image(part: &Value, param: &str) -> Result<Value, ApiError> {
    let url = part
        .get("image_url")
        .and_then(|i| i.get("url").or(Some(i)))
        .and_then(Value::as_str)
        .unwrap_or_default();
    if let Some((media, data)) = data_url(url) {
        // A common mislabel of JPEG that Anthropic would refuse.
        let media = if media == "image/jpg" {
            "image/jpeg"
        } else {
            media
        };
        if !["image/jpeg", "image/png", "image/gif", "image/webp"].contains(&media) {
            return Err(ApiError::invalid(
                format!("{param}.image_url.url"),
                format!(
                    "Images of type `{media}` are not supported by Anthropic (jpeg, png, gif, webp)."
                ),
            ));
        }
        return Ok(
            json!({"type": "image", "source": {"type": "base64", "media_type": media, "data": data}}),
        );
    }
    if url.starts_with("https://") || url.starts_with("http://") {
        return Ok(json!({"type": "image", "source": {"type": "url", "url": url}}));
    }
    Err(ApiError::invalid(
        format!("{param}.image_url.url"),
        "must be an http(s) URL or a base64 `data:` URL.",
    ))
}

/// A `file` part holding a base64 PDF becomes a document block; uploaded file ids mean nothing to
/// Anthropic.
fn document(part: &Value, param: &str) -> Result<Value, ApiError> {
    let data = part
        .pointer("/file/file_data")
        .and_then(Value::as_str)
        .unwrap_or_default();
    match data_url(data) {
        Some(("application/pdf", data)) => Ok(json!({"type": "document",
            "source": {"type": "base64", "media_type": "application/pdf", "data": data}})),
        _ => Err(ApiError::invalid(
            format!("{param}.file"),
            "Only PDF files sent inline as a base64 `file_data` URL are supported by Anthropic.",
        )),
    }
}

/// An assistant turn: [thinking blocks] + text + `tool_use` blocks.
fn assistant(
    m: &Value,
    i: usize,
    thinking: bool,
    cache: &ReasoningCache,
) -> Result<Vec<Value>, ApiError> {
    let content = m.get("content").unwrap_or(&Value::Null);
    let text = parts(content, i, Part::Assistant)?;
    let calls = m
        .get("tool_calls")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let mut uses = Vec::with_capacity(calls.len());
    for (k, call) in calls.iter().enumerate() {
        let param = format!("messages[{i}].tool_calls[{k}]");
        let id = call.get("id").and_then(Value::as_str);
        let name = call.pointer("/function/name").and_then(Value::as_str);
        let (Some(id), Some(name)) = (id, name) else {
            return Err(ApiError::invalid(
                param,
                "each tool call needs a string `id` and `function.name`.",
            ));
        };
        let arguments = call
            .pointer("/function/arguments")
            .and_then(Value::as_str)
            .unwrap_or("");
        // Anthropic wants the arguments as an object; an empty string means "no arguments".
        let input = tool_arguments(
            arguments,
            &param,
            ": Anthropic needs the arguments as an object.",
        )?;
        let id = to_anthropic(id);
        uses.push(json!({"type": "tool_use", "id": id, "name": name, "input": input}));
    }
    let mut blocks = Vec::new();
    if thinking && !uses.is_empty() {
        blocks = thinking_blocks(m, i, calls, cache)?;
    }
    blocks.extend(text);
    blocks.extend(uses);
    Ok(blocks)
}

/// The signed thinking blocks of a tool-call turn: sent back by the client in `thinking_blocks`,
/// else remembered from when we answered it.
fn thinking_blocks(
    m: &Value,
    i: usize,
    calls: &[Value],
    cache: &ReasoningCache,
) -> Result<Vec<Value>, ApiError> {
    if let Some(sent) = m.get("thinking_blocks").filter(|v| !v.is_null()) {
        let list = sent.as_array().map(Vec::as_slice).unwrap_or(&[]);
        let mut blocks = Vec::with_capacity(list.len());
        for (k, b) in list.iter().enumerate() {
            let text = |f: &str| b.get(f).and_then(Value::as_str);
            blocks.push(
                match (
                    text("type"),
                    text("thinking"),
                    text("signature"),
                    text("data"),
                ) {
                    (Some("thinking"), Some(t), Some(s), _) => {
                        json!({"type": "thinking", "thinking": t, "signature": s})
                    }
                    (Some("redacted_thinking"), _, _, Some(d)) => {
                        json!({"type": "redacted_thinking", "data": d})
                    }
                    _ => {
                        return Err(ApiError::invalid(
                            format!("messages[{i}].thinking_blocks[{k}]"),
                            "must be {\"type\":\"thinking\",\"thinking\",\"signature\"} or \
                         {\"type\":\"redacted_thinking\",\"data\"} as Anthropic returned it.",
                        ));
                    }
                },
            );
        }
        return Ok(blocks);
    }
    let cached = calls
        .iter()
        .filter_map(|c| c.get("id").and_then(Value::as_str))
        .find_map(|id| cache.get(id));
    Ok(match cached {
        Some(Value::Array(blocks)) => blocks,
        _ => Vec::new(),
    })
}

fn is_thinking(block: &Value) -> bool {
    matches!(
        block["type"].as_str(),
        Some("thinking" | "redacted_thinking")
    )
}

/// Whether the last assistant turn, if it calls tools, starts with a thinking block: Anthropic
/// refuses a thinking request whose tool loop lost its signed thinking.
pub(in crate::providers) fn final_tool_turn_has_thinking(messages: &[Value]) -> bool {
    let Some(last) = messages.iter().rev().find(|m| m["role"] == "assistant") else {
        return true;
    };
    let blocks = last["content"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    !blocks.iter().any(|b| b["type"] == "tool_use") || blocks.first().is_some_and(is_thinking)
}

/// Removes every thinking block (for a request that ends up without thinking).
pub(in crate::providers) fn strip_thinking(messages: &mut [Value]) {
    for m in messages {
        if let Some(blocks) = m["content"].as_array_mut() {
            blocks.retain(|b| !is_thinking(b));
        }
    }
}
