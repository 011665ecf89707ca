//! Shared request building for the OpenAI dialects that refuse or misread OpenAI's extras
//! (Mistral, DeepSeek): the upstream body is built from an allow-list, every client field left
//! out is reported, and messages keep only the keys the dialect accepts.

use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::request::present;

/// The upstream body being built and the top-level client fields that were not sent.
#[derive(Debug, Default)]
pub struct Built {
    /// The upstream body.
    pub body: Map<String, Value>,
    /// Client fields not sent, for `UpstreamCall::dropped`.
    pub dropped: Vec<String>,
}

/// Copies the client's non-null `allowed` fields. Every other non-null field is reported as
/// dropped unless it is in `mapped` (the dialect translates those itself). `null` means "not
/// set", so nulls are neither sent nor reported.
pub fn allow_list(client: &Map<String, Value>, allowed: &[&str], mapped: &[&str]) -> Built {
    let mut built = Built::default();
    for (key, value) in client {
        if value.is_null() {
            continue;
        }
        if allowed.contains(&key.as_str()) {
            built.body.insert(key.clone(), value.clone());
        } else if !mapped.contains(&key.as_str()) {
            built.dropped.push(key.clone());
        }
    }
    built
}

/// `max_completion_tokens` (OpenAI's newer name) becomes `max_tokens`; with both, the smaller wins.
pub fn max_tokens(client: &Map<String, Value>, body: &mut Map<String, Value>) {
    let newer = present(client, "max_completion_tokens").and_then(Value::as_u64);
    let older = present(client, "max_tokens").and_then(Value::as_u64);
    if let Some(n) = match (newer, older) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    } {
        body.insert("max_tokens".into(), Value::from(n));
    }
}

/// Refuses `logprobs: true`: a client that asks for log probabilities reads them, and the
/// dialect would silently answer without them. (`false` is dropped and reported as usual.)
pub fn refuse_logprobs(client: &Map<String, Value>, provider: &str) -> Result<(), ApiError> {
    if present(client, "logprobs") == Some(&Value::Bool(true)) {
        return Err(ApiError::invalid(
            "logprobs",
            format!(
                "{provider} does not return log probabilities; remove `logprobs` or route to \
                 another provider."
            ),
        ));
    }
    Ok(())
}

/// The keys a message of each role may carry upstream.
#[derive(Debug, Clone, Copy)]
pub struct MessageKeys {
    /// For `system` (and `developer`) messages.
    pub system: &'static [&'static str],
    /// For `user` messages.
    pub user: &'static [&'static str],
    /// For `assistant` messages.
    pub assistant: &'static [&'static str],
    /// For `tool` messages.
    pub tool: &'static [&'static str],
}

/// A copy of `message` with only the keys its role allows (nulls dropped); `developer` becomes
/// `system`, since neither dialect knows OpenAI's newer role name. Unknown roles keep every key
/// and are left to the provider to judge.
pub fn clean_message(message: &Value, keys: &MessageKeys) -> Value {
    let Some(fields) = message.as_object() else {
        return message.clone();
    };
    let role = fields.get("role").and_then(Value::as_str).unwrap_or("");
    let allowed = match role {
        "system" | "developer" => keys.system,
        "user" => keys.user,
        "assistant" => keys.assistant,
        "tool" => keys.tool,
        _ => return message.clone(),
    };
    let mut out = Map::new();
    for (key, value) in fields {
        if key == "role" {
            let role = if role == "developer" { "system" } else { role };
            out.insert("role".into(), Value::from(role));
        } else if !value.is_null() && allowed.contains(&key.as_str()) {
            out.insert(key.clone(), value.clone());
        }
    }
    // An assistant turn with only tool calls still needs its (empty) content.
    if role == "assistant" && !out.contains_key("content") {
        out.insert("content".into(), Value::Null);
    }
    Value::Object(out)
}

/// The text of a content array made only of `text` parts, joined by newlines; `None` when a part
/// is something else (an image, audio) and the array must stay as it is.
pub fn text_only(parts: &[Value]) -> Option<String> {
    let mut texts = Vec::with_capacity(parts.len());
    for part in parts {
        if part.get("type").and_then(Value::as_str) != Some("text") {
            return None;
        }
        texts.push(part.get("text").and_then(Value::as_str)?);
    }
    Some(texts.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn allow_list_reports_what_it_leaves_out() {
        let client = json!({"model":"m","temperature":0.2,"user":"u","seed":1,"store":null});
        let built = allow_list(
            client.as_object().unwrap(),
            &["temperature"],
            &["model", "seed"],
        );
        assert_eq!(Value::Object(built.body), json!({"temperature":0.2}));
        assert_eq!(built.dropped, vec!["user".to_string()]);
    }

    #[test]
    fn messages_keep_only_their_roles_keys() {
        const KEYS: MessageKeys = MessageKeys {
            system: &["content"],
            user: &["content"],
            assistant: &["content", "tool_calls"],
            tool: &["content", "tool_call_id"],
        };
        let m = clean_message(
            &json!({"role":"developer","content":"be brief","name":"x"}),
            &KEYS,
        );
        assert_eq!(m, json!({"role":"system","content":"be brief"}));
        let m = clean_message(
            &json!({"role":"assistant","refusal":null,"annotations":[],"tool_calls":[]}),
            &KEYS,
        );
        assert_eq!(
            m,
            json!({"role":"assistant","tool_calls":[],"content":null})
        );
        assert_eq!(
            text_only(&[
                json!({"type":"text","text":"a"}),
                json!({"type":"text","text":"b"})
            ]),
            Some("a\nb".into())
        );
        assert_eq!(text_only(&[json!({"type":"image_url"})]), None);
    }
}
