//! OpenAI `messages` to Gemini's `systemInstruction` and `contents`: system and developer
//! messages become system parts, `assistant` becomes `model`, images become `inlineData` or
//! `fileData`, assistant tool calls become `functionCall` parts (with their thought signatures
//! restored) and tool results become `functionResponse` parts in a user turn. Gemini has no call
//! ids, so each result is matched to its function *name* through the earlier assistant tool call
//! with the same id (or, failing that, the id this adapter synthesized and remembered).

use std::collections::HashMap;

use serde_json::{Value, json};

use crate::error::ApiError;
use crate::providers::gemini::{SKIP_SIGNATURE, call_key, generation, text_digest, text_key};
use crate::providers::reasoning_cache::ReasoningCache;
use crate::providers::shared::tool_arguments;

/// A conversation in Gemini's shape.
#[derive(Debug, Default)]
pub(in crate::providers) struct Conversation {
    /// `systemInstruction.parts`, from every system and developer message (position is lost).
    pub system: Vec<Value>,
    pub contents: Vec<Value>,
}

/// Converts the (already validated) OpenAI messages for `model`.
pub(in crate::providers) fn convert(
    messages: &[Value],
    model: &str,
    cache: &ReasoningCache,
) -> Result<Conversation, ApiError> {
    let mut conversation = Conversation::default();
    let mut names: HashMap<&str, &str> = HashMap::new();
    for (i, m) in messages.iter().enumerate() {
        let role = m.get("role").and_then(Value::as_str).unwrap_or_default();
        let content = m.get("content");
        match role {
            "system" | "developer" => {
                for text in texts(content, &format!("messages[{i}].content"), false)? {
                    conversation.system.push(json!({ "text": text }));
                }
            }
            "user" => {
                let parts = user_parts(content, i)?;
                push(&mut conversation.contents, "user", parts);
            }
            "assistant" => {
                let parts = assistant_parts(m, i, &mut names, cache)?;
                push(&mut conversation.contents, "model", parts);
            }
            "tool" | "function" => {
                let name = result_name(m, i, &names, cache)?;
                let text = texts(content, &format!("messages[{i}].content"), false)?.concat();
                let part = json!({ "functionResponse": { "name": name, "response": { "content": text } } });
                push(&mut conversation.contents, "user", vec![part]);
            }
            other => {
                return Err(ApiError::invalid(
                    format!("messages[{i}].role"),
                    format!("The role `{other}` is not supported by Gemini."),
                ));
            }
        }
    }
    if conversation.contents.is_empty() {
        return Err(ApiError::invalid(
            "messages",
            "Gemini needs at least one user or assistant message besides system messages.",
        ));
    }
    if generation(model).is_some_and(|(major, _)| major >= 3) {
        sign_first_calls(&mut conversation.contents);
    }
    Ok(conversation)
}

/// Appends a turn, merging it into the previous one when the role repeats (consecutive tool
/// results become one user turn, as Gemini expects).
fn push(contents: &mut Vec<Value>, role: &str, parts: Vec<Value>) {
    if parts.is_empty() {
        return;
    }
    if let Some(last) = contents.last_mut()
        && last["role"] == role
        && let Some(existing) = last["parts"].as_array_mut()
    {
        existing.extend(parts);
        return;
    }
    contents.push(json!({ "role": role, "parts": parts }));
}

/// The texts of a string or an array of `text` parts (`refusal` parts too when `refusals`).
fn texts(content: Option<&Value>, param: &str, refusals: bool) -> Result<Vec<String>, ApiError> {
    match content {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        Some(Value::Array(parts)) => parts
            .iter()
            .enumerate()
            .map(|(j, part)| {
                let kind = part["type"].as_str().unwrap_or_default();
                let field = match kind {
                    "text" => "text",
                    "refusal" if refusals => "refusal",
                    _ => {
                        return Err(ApiError::invalid(
                            format!("{param}[{j}].type"),
                            format!("`{kind}` content parts are not supported here by Gemini."),
                        ));
                    }
                };
                part[field].as_str().map(str::to_string).ok_or_else(|| {
                    ApiError::invalid(format!("{param}[{j}].{field}"), "must be a string.")
                })
            })
            .collect(),
        Some(_) => Err(ApiError::invalid(
            param,
            "must be a string or an array of content parts.",
        )),
    }
}

fn user_parts(content: Option<&Value>, i: usize) -> Result<Vec<Value>, ApiError> {
    let param = format!("messages[{i}].content");
    let Some(Value::Array(parts)) = content else {
        let text = texts(content, &param, false)?.concat();
        return Ok(vec![json!({ "text": text })]);
    };
    parts
        .iter()
        .enumerate()
        .map(|(j, part)| {
            let param = format!("{param}[{j}]");
            match part["type"].as_str().unwrap_or_default() {
                "text" => match part["text"].as_str() {
                    Some(text) => Ok(json!({ "text": text })),
                    None => Err(ApiError::invalid(format!("{param}.text"), "must be a string.")),
                },
                "image_url" => {
                    let url = part["image_url"]["url"]
                        .as_str()
                        .or_else(|| part["image_url"].as_str());
                    match url {
                        Some(url) => media_part(url, &format!("{param}.image_url.url")),
                        None => Err(ApiError::invalid(
                            format!("{param}.image_url.url"),
                            "must be a string.",
                        )),
                    }
                }
                "input_audio" => {
                    let audio = &part["input_audio"];
                    let mime = match audio["format"].as_str() {
                        Some("wav") => "audio/wav",
                        Some("mp3") => "audio/mp3",
                        _ => {
                            return Err(ApiError::invalid(
                                format!("{param}.input_audio.format"),
                                "must be `wav` or `mp3`.",
                            ));
                        }
                    };
                    match audio["data"].as_str() {
                        Some(data) => Ok(json!({ "inlineData": { "mimeType": mime, "data": data } })),
                        None => Err(ApiError::invalid(
                            format!("{param}.input_audio.data"),
                            "must be a base64 string.",
                        )),
                    }
                }
                "file" => match part["file"]["file_data"].as_str() {
                    Some(data) if data.starts_with("data:") => {
                        media_part(data, &format!("{param}.file.file_data"))
                    }
                    _ => Err(ApiError::invalid(
                        format!("{param}.file"),
                        "Gemini takes files only inline, as a `file_data` data: URL; `file_id` is not supported by Gemini.",
                    )),
                },
                other => Err(ApiError::invalid(
                    format!("{param}.type"),
                    format!("`{other}` content parts are not supported by Gemini."),
                )),
            }
        })
        .collect()
}

/// An image or file by URL: `data:` URLs are sent inline, http(s) URLs by reference with a
/// media type guessed from the extension (Gemini requires one).
fn media_part(url: &str, param: &str) -> Result<Value, ApiError> {
    if let Some(rest) = url.strip_prefix("data:") {
        let (meta, data) = rest.split_once(',').unwrap_or((rest, ""));
        let mime = meta.strip_suffix(";base64").unwrap_or_default();
        if mime.is_empty() || data.is_empty() {
            return Err(ApiError::invalid(
                param,
                "a data: URL must look like `data:<media type>;base64,<data>`.",
            ));
        }
        return Ok(json!({ "inlineData": { "mimeType": mime, "data": data } }));
    }
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return Err(ApiError::invalid(
            param,
            "must be an http(s) URL or a base64 data: URL.",
        ));
    }
    let path = url.split(['?', '#']).next().unwrap_or_default();
    let extension = path
        .rsplit_once('.')
        .map(|(_, ext)| ext.to_ascii_lowercase())
        .unwrap_or_default();
    let mime = match extension.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "webp" => "image/webp",
        "gif" => "image/gif",
        "heic" => "image/heic",
        "heif" => "image/heif",
        "pdf" => "application/pdf",
        _ => {
            return Err(ApiError::invalid(
                param,
                "Gemini needs the media type of a linked file and it cannot be told from this URL \
                 (no .png/.jpg/.jpeg/.webp/.gif/.heic/.heif/.pdf extension); send it as a base64 data: URL.",
            ));
        }
    };
    Ok(json!({ "fileData": { "mimeType": mime, "fileUri": url } }))
}

/// A stored signature, or `None`.
fn cached_signature(cache: &ReasoningCache, key: &str) -> Option<Value> {
    cache
        .get(key)
        .and_then(|v| v.get("signature").filter(|s| s.is_string()).cloned())
}

fn assistant_parts<'a>(
    m: &'a Value,
    i: usize,
    names: &mut HashMap<&'a str, &'a str>,
    cache: &ReasoningCache,
) -> Result<Vec<Value>, ApiError> {
    let mut parts = Vec::new();
    let text = texts(m.get("content"), &format!("messages[{i}].content"), true)?.concat();
    if !text.is_empty() {
        let mut part = json!({ "text": text });
        if let Some(signature) = cached_signature(cache, &text_key(&text_digest(&text))) {
            part["thoughtSignature"] = signature;
        }
        parts.push(part);
    }
    let calls = match m.get("tool_calls") {
        None | Some(Value::Null) => &[][..],
        Some(Value::Array(calls)) => calls.as_slice(),
        Some(_) => {
            return Err(ApiError::invalid(
                format!("messages[{i}].tool_calls"),
                "must be an array.",
            ));
        }
    };
    for (j, call) in calls.iter().enumerate() {
        let param = format!("messages[{i}].tool_calls[{j}]");
        let (Some(id), Some(name)) = (call["id"].as_str(), call["function"]["name"].as_str())
        else {
            return Err(ApiError::invalid(
                param,
                "each tool call needs a string `id` and `function.name`.",
            ));
        };
        names.insert(id, name);
        let arguments = call["function"]["arguments"].as_str().unwrap_or_default();
        let args = tool_arguments(
            arguments,
            &param,
            " (Gemini takes function arguments as an object).",
        )?;
        let mut part = json!({ "functionCall": { "name": name, "args": args } });
        let sent = call
            .pointer("/extra_content/google/thought_signature")
            .filter(|s| s.is_string())
            .cloned();
        if let Some(signature) = sent.or_else(|| cached_signature(cache, &call_key(id))) {
            part["thoughtSignature"] = signature;
        }
        parts.push(part);
    }
    Ok(parts)
}

/// The function name a tool result answers.
fn result_name(
    m: &Value,
    i: usize,
    names: &HashMap<&str, &str>,
    cache: &ReasoningCache,
) -> Result<String, ApiError> {
    if m["role"] == "function" {
        return m["name"].as_str().map(str::to_string).ok_or_else(|| {
            ApiError::invalid(
                format!("messages[{i}].name"),
                "function messages need a `name`.",
            )
        });
    }
    let id = m["tool_call_id"].as_str().unwrap_or_default();
    if let Some(name) = names.get(id) {
        return Ok((*name).to_string());
    }
    cache
        .get(&call_key(id))
        .and_then(|v| v["name"].as_str().map(str::to_string))
        .ok_or_else(|| {
            ApiError::invalid(
                format!("messages[{i}].tool_call_id"),
                format!(
                    "Gemini needs the function name of every tool result, and no earlier assistant \
                     message has a tool call with the id `{id}`."
                ),
            )
        })
}

/// Gemini 3 refuses a model turn whose first function call has no signature; history from
/// elsewhere gets the documented placeholder instead.
fn sign_first_calls(contents: &mut [Value]) {
    for content in contents.iter_mut().filter(|c| c["role"] == "model") {
        let Some(parts) = content["parts"].as_array_mut() else {
            continue;
        };
        if let Some(first) = parts.iter_mut().find(|p| p.get("functionCall").is_some())
            && first.get("thoughtSignature").is_none()
        {
            first["thoughtSignature"] = Value::String(SKIP_SIGNATURE.into());
        }
    }
}
