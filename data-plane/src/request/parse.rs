//! Parsing and validating a chat completions request: every OpenAI parameter is type- and
//! range-checked, unknown fields are kept for same-protocol passthrough.

use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::request::Caps;
use crate::request::responses::ResponsesCall;

/// Roles a message may have.
const ROLES: &[&str] = &[
    "system",
    "developer",
    "user",
    "assistant",
    "tool",
    "function",
];
const REASONING_EFFORTS: &[&str] = &["none", "minimal", "low", "medium", "high", "xhigh"];
const RESPONSE_FORMATS: &[&str] = &["text", "json_object", "json_schema"];

/// A validated request: the body (to forward) plus the facts the gateway needs.
#[derive(Debug, Clone)]
pub struct ChatRequest {
    pub body: Map<String, Value>,
    pub model: String,
    pub stream: bool,
    pub include_usage: bool,
    /// Fields parsed from a `user` that held a JSON object (recorded, never forwarded as JSON).
    pub user_metadata: Option<Map<String, Value>>,
    pub features: Features,
    /// What is asked of the provider: a chat completion, or embeddings (same routing, limits and
    /// records; another call and answer).
    pub operation: Operation,
    /// A Responses API request: its own body, beside the chat form in `body` that routing,
    /// limits, the firewall and translated providers use.
    pub responses: Option<std::sync::Arc<ResponsesCall>>,
}

/// The API operation a request is (`gen_ai.operation.name`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Operation {
    #[default]
    Chat,
    Embeddings,
    /// `POST /v1/responses`: a chat turn in the Responses API's shape.
    Responses,
}

impl Operation {
    /// Its `gen_ai.operation.name`.
    pub fn name(self) -> &'static str {
        match self {
            // The GenAI conventions have no operation of its own for the Responses API.
            Operation::Chat | Operation::Responses => "chat",
            Operation::Embeddings => "embeddings",
        }
    }
}

/// What routing needs to know about a request.
#[derive(Debug, Clone, Default)]
pub struct Features {
    pub has_tools: bool,
    pub wants_json: bool,
    /// Capabilities a model must have to honour the request, and the parameter that needs each.
    pub needs: Vec<(Caps, &'static str)>,
    /// A local estimate of the prompt's tokens (about 4 bytes a token).
    pub prompt_tokens: u64,
    /// `max_completion_tokens` or `max_tokens`, when given.
    pub max_tokens: Option<u64>,
    /// An embeddings request: only embeddings models answer it (and they answer nothing else).
    pub embeddings: bool,
}

impl Features {
    fn of(body: &Map<String, Value>, raw_len: usize) -> Features {
        let mut needs = Vec::new();
        let has_tools = present(body, "tools")
            .and_then(Value::as_array)
            .is_some_and(|t| !t.is_empty());
        if has_tools {
            needs.push((Caps::TOOLS, "tools"));
        }
        let format = present(body, "response_format")
            .and_then(|f| f.get("type"))
            .and_then(Value::as_str);
        match format {
            Some("json_object") => needs.push((Caps::JSON_MODE, "response_format")),
            Some("json_schema") => needs.push((Caps::JSON_SCHEMA, "response_format")),
            _ => {}
        }
        if present(body, "logit_bias")
            .and_then(Value::as_object)
            .is_some_and(|m| !m.is_empty())
        {
            needs.push((Caps::LOGIT_BIAS, "logit_bias"));
        }
        // `seed` is best-effort even in OpenAI's API: a provider without it drops it (and says
        // so in `x-tokenrouter-dropped-params`), so it never rules a candidate out.
        if present(body, "logprobs").and_then(Value::as_bool) == Some(true) {
            needs.push((Caps::LOGPROBS, "logprobs"));
        }
        if present(body, "n")
            .and_then(Value::as_u64)
            .is_some_and(|n| n > 1)
        {
            needs.push((Caps::N, "n"));
        }
        let images = body
            .get("messages")
            .and_then(Value::as_array)
            .is_some_and(|ms| {
                ms.iter()
                    .filter_map(|m| m.get("content").and_then(Value::as_array))
                    .flatten()
                    .any(|p| p.get("type").and_then(Value::as_str) == Some("image_url"))
            });
        if images {
            needs.push((Caps::VISION, "messages"));
        }
        let max_tokens = present(body, "max_completion_tokens")
            .or_else(|| present(body, "max_tokens"))
            .and_then(Value::as_u64);
        Features {
            has_tools,
            wants_json: format.is_some_and(|f| f != "text"),
            needs,
            prompt_tokens: (raw_len / 4) as u64,
            max_tokens,
            embeddings: false,
        }
    }
}

/// Parses the raw body. Serde's messages are never echoed: they can quote the input back.
pub fn parse(bytes: &[u8]) -> Result<ChatRequest, ApiError> {
    let (body, model) = object_with_model(bytes, "`model` and `messages`")?;
    validate_messages(body.get("messages"))?;
    chat_fields(body, model, bytes.len())
}

/// A chat body built here (from a Responses request) as [`parse`] would have read it; `raw_len`
/// is the client's body size, for the token estimate.
pub(crate) fn chat_body(body: Map<String, Value>, raw_len: usize) -> Result<ChatRequest, ApiError> {
    let model = match body.get("model") {
        Some(Value::String(m)) => m.clone(),
        _ => return Err(ApiError::invalid("model", "`model` must be a string.")),
    };
    validate_messages(body.get("messages"))?;
    chat_fields(body, model, raw_len)
}

/// The body as a JSON object, and its `model`: every endpoint's first checks. `needs` names the
/// required fields for the empty-body message.
pub(crate) fn object_with_model(
    bytes: &[u8],
    needs: &str,
) -> Result<(Map<String, Value>, String), ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request(
            "empty_body",
            format!("The request body is empty; send a JSON object with {needs}."),
        ));
    }
    let value: Value = serde_json::from_slice(bytes).map_err(|e| {
        ApiError::bad_request(
            "invalid_json",
            format!(
                "The request body is not valid JSON (line {}, column {}).",
                e.line(),
                e.column()
            ),
        )
    })?;
    let Value::Object(body) = value else {
        return Err(ApiError::bad_request(
            "invalid_json",
            "The request body must be a JSON object.",
        ));
    };
    let model = match body.get("model") {
        Some(Value::String(m)) if !m.trim().is_empty() => m.clone(),
        Some(Value::String(_)) => {
            return Err(ApiError::invalid("model", "`model` must not be empty."));
        }
        Some(_) => return Err(ApiError::invalid("model", "`model` must be a string.")),
        None => {
            return Err(ApiError::invalid(
                "model",
                "Missing required parameter: `model`.",
            ));
        }
    };
    Ok((body, model))
}

/// `parse` for chat completions, continued.
fn chat_fields(
    mut body: Map<String, Value>,
    model: String,
    raw_len: usize,
) -> Result<ChatRequest, ApiError> {
    let stream = optional_bool(&body, "stream")?.unwrap_or(false);
    let include_usage = match body.get("stream_options") {
        None | Some(Value::Null) => false,
        Some(Value::Object(o)) => {
            if !stream {
                return Err(ApiError::invalid(
                    "stream_options",
                    "`stream_options` is only allowed when `stream` is true.",
                ));
            }
            match o.get("include_usage") {
                None | Some(Value::Null) => false,
                Some(Value::Bool(b)) => *b,
                Some(_) => {
                    return Err(ApiError::invalid(
                        "stream_options.include_usage",
                        "must be a boolean.",
                    ));
                }
            }
        }
        Some(_) => {
            return Err(ApiError::invalid(
                "stream_options",
                "`stream_options` must be an object.",
            ));
        }
    };
    number_in(&body, "temperature", 0.0, 2.0)?;
    number_in(&body, "top_p", 0.0, 1.0)?;
    number_in(&body, "presence_penalty", -2.0, 2.0)?;
    number_in(&body, "frequency_penalty", -2.0, 2.0)?;
    integer_in(&body, "max_tokens", 1, i64::from(u32::MAX))?;
    integer_in(&body, "max_completion_tokens", 1, i64::from(u32::MAX))?;
    integer_in(&body, "n", 1, 128)?;
    integer_in(&body, "top_logprobs", 0, 20)?;
    integer_in(&body, "seed", i64::MIN, i64::MAX)?;
    optional_bool(&body, "logprobs")?;
    optional_bool(&body, "parallel_tool_calls")?;
    optional_bool(&body, "store")?;
    validate_stop(body.get("stop"))?;
    validate_logit_bias(body.get("logit_bias"))?;
    validate_tools(&body)?;
    one_of(&body, "reasoning_effort", REASONING_EFFORTS)?;
    if let Some(rf) = present(&body, "response_format") {
        let kind = rf
            .as_object()
            .and_then(|o| o.get("type"))
            .and_then(Value::as_str);
        match kind {
            Some(k) if RESPONSE_FORMATS.contains(&k) => {}
            _ => {
                return Err(ApiError::invalid(
                    "response_format.type",
                    "must be one of `text`, `json_object`, `json_schema`.",
                ));
            }
        }
    }
    for field in ["metadata"] {
        if present(&body, field).is_some_and(|v| !v.is_object()) {
            return Err(ApiError::invalid(
                field,
                format!("`{field}` must be an object."),
            ));
        }
    }
    if present(&body, "service_tier").is_some_and(|v| !v.is_string()) {
        return Err(ApiError::invalid(
            "service_tier",
            "`service_tier` must be a string.",
        ));
    }
    let user_metadata = split_user(&mut body)?;
    let features = Features::of(&body, raw_len);
    Ok(ChatRequest {
        body,
        model,
        stream,
        include_usage,
        user_metadata,
        features,
        operation: Operation::Chat,
        responses: None,
    })
}

/// A field of the client's body that is present and not `null` (OpenAI treats `null` as absent).
pub fn present<'a>(body: &'a Map<String, Value>, field: &str) -> Option<&'a Value> {
    body.get(field).filter(|v| !v.is_null())
}

fn optional_bool(body: &Map<String, Value>, field: &str) -> Result<Option<bool>, ApiError> {
    match present(body, field) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(ApiError::invalid(
            field,
            format!("`{field}` must be a boolean."),
        )),
    }
}

fn number_in(body: &Map<String, Value>, field: &str, min: f64, max: f64) -> Result<(), ApiError> {
    match present(body, field) {
        None => Ok(()),
        Some(v) => match v.as_f64() {
            Some(x) if (min..=max).contains(&x) => Ok(()),
            Some(_) => Err(ApiError::invalid(
                field,
                format!("`{field}` must be between {min} and {max}."),
            )),
            None => Err(ApiError::invalid(
                field,
                format!("`{field}` must be a number."),
            )),
        },
    }
}

pub(super) fn integer_in(
    body: &Map<String, Value>,
    field: &str,
    min: i64,
    max: i64,
) -> Result<(), ApiError> {
    match present(body, field) {
        None => Ok(()),
        Some(v) => match v.as_i64() {
            Some(x) if (min..=max).contains(&x) => Ok(()),
            Some(_) => Err(ApiError::invalid(
                field,
                format!("`{field}` must be an integer between {min} and {max}."),
            )),
            None => Err(ApiError::invalid(
                field,
                format!("`{field}` must be an integer."),
            )),
        },
    }
}

fn one_of(body: &Map<String, Value>, field: &str, allowed: &[&str]) -> Result<(), ApiError> {
    match present(body, field) {
        None => Ok(()),
        Some(Value::String(s)) if allowed.contains(&s.as_str()) => Ok(()),
        Some(_) => Err(ApiError::invalid(
            field,
            format!("`{field}` must be one of {}.", allowed.join(", ")),
        )),
    }
}

fn validate_messages(messages: Option<&Value>) -> Result<(), ApiError> {
    let list = match messages {
        Some(Value::Array(list)) if !list.is_empty() => list,
        Some(Value::Array(_)) => {
            return Err(ApiError::invalid(
                "messages",
                "`messages` must contain at least one message.",
            ));
        }
        Some(_) => {
            return Err(ApiError::invalid(
                "messages",
                "`messages` must be an array.",
            ));
        }
        None => {
            return Err(ApiError::invalid(
                "messages",
                "Missing required parameter: `messages`.",
            ));
        }
    };
    for (i, m) in list.iter().enumerate() {
        let Some(m) = m.as_object() else {
            return Err(ApiError::invalid(
                format!("messages[{i}]"),
                "each message must be an object.",
            ));
        };
        let role = m.get("role").and_then(Value::as_str);
        if !role.is_some_and(|r| ROLES.contains(&r)) {
            return Err(ApiError::invalid(
                format!("messages[{i}].role"),
                format!("must be one of {}.", ROLES.join(", ")),
            ));
        }
        match m.get("content") {
            None | Some(Value::Null) if role == Some("assistant") => {}
            Some(Value::String(_)) => {}
            Some(Value::Array(parts)) => {
                for (j, p) in parts.iter().enumerate() {
                    if !p.get("type").is_some_and(Value::is_string) {
                        return Err(ApiError::invalid(
                            format!("messages[{i}].content[{j}].type"),
                            "each content part needs a string `type`.",
                        ));
                    }
                }
            }
            _ => {
                return Err(ApiError::invalid(
                    format!("messages[{i}].content"),
                    "must be a string or an array of content parts.",
                ));
            }
        }
        if role == Some("tool") && !m.get("tool_call_id").is_some_and(Value::is_string) {
            return Err(ApiError::invalid(
                format!("messages[{i}].tool_call_id"),
                "tool messages need a string `tool_call_id`.",
            ));
        }
    }
    Ok(())
}

fn validate_stop(stop: Option<&Value>) -> Result<(), ApiError> {
    match stop {
        None | Some(Value::Null) | Some(Value::String(_)) => Ok(()),
        Some(Value::Array(list)) if list.len() <= 4 && list.iter().all(Value::is_string) => Ok(()),
        Some(_) => Err(ApiError::invalid(
            "stop",
            "`stop` must be a string or an array of at most 4 strings.",
        )),
    }
}

fn validate_logit_bias(bias: Option<&Value>) -> Result<(), ApiError> {
    match bias {
        None | Some(Value::Null) => Ok(()),
        Some(Value::Object(map)) => {
            for (token, v) in map {
                if token.parse::<u64>().is_err()
                    || !v.as_f64().is_some_and(|x| (-100.0..=100.0).contains(&x))
                {
                    return Err(ApiError::invalid(
                        "logit_bias",
                        "keys must be token ids and values between -100 and 100.",
                    ));
                }
            }
            Ok(())
        }
        Some(_) => Err(ApiError::invalid(
            "logit_bias",
            "`logit_bias` must be an object.",
        )),
    }
}

fn validate_tools(body: &Map<String, Value>) -> Result<(), ApiError> {
    if let Some(tools) = present(body, "tools") {
        let Some(list) = tools.as_array() else {
            return Err(ApiError::invalid("tools", "`tools` must be an array."));
        };
        for (i, t) in list.iter().enumerate() {
            let name = t
                .get("function")
                .and_then(|f| f.get("name"))
                .and_then(Value::as_str);
            if t.get("type").and_then(Value::as_str) != Some("function")
                || name.is_none_or(str::is_empty)
            {
                return Err(ApiError::invalid(
                    format!("tools[{i}]"),
                    "each tool must be {\"type\": \"function\", \"function\": {\"name\": ...}}.",
                ));
            }
        }
    }
    match present(body, "tool_choice") {
        None => Ok(()),
        Some(Value::String(s)) if ["none", "auto", "required"].contains(&s.as_str()) => Ok(()),
        Some(Value::Object(o))
            if o.get("function")
                .and_then(|f| f.get("name"))
                .is_some_and(Value::is_string) =>
        {
            Ok(())
        }
        Some(_) => Err(ApiError::invalid(
            "tool_choice",
            "must be `none`, `auto`, `required` or {\"type\":\"function\",\"function\":{\"name\":...}}.",
        )),
    }
}

/// A `user` holding a JSON object is metadata: keep it aside and forward only a plain identifier.
pub(super) fn split_user(
    body: &mut Map<String, Value>,
) -> Result<Option<Map<String, Value>>, ApiError> {
    let text = match present(body, "user") {
        None => return Ok(None),
        Some(Value::String(s)) => s,
        Some(_) => return Err(ApiError::invalid("user", "`user` must be a string.")),
    };
    if !text.trim_start().starts_with('{') {
        return Ok(None);
    }
    let Ok(Value::Object(meta)) = serde_json::from_str::<Value>(text) else {
        return Ok(None);
    };
    match meta.get("user_id") {
        Some(Value::String(id)) => body.insert("user".into(), Value::String(id.clone())),
        Some(id @ Value::Number(_)) => body.insert("user".into(), Value::String(id.to_string())),
        _ => body.remove("user"),
    };
    Ok(Some(meta))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(body: &str) -> ApiError {
        parse(body.as_bytes()).unwrap_err()
    }

    #[test]
    fn accepts_a_full_request_and_keeps_unknown_fields() {
        let r = parse(
            br#"{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"stream":true,
            "stream_options":{"include_usage":true},"temperature":0.5,"stop":["a"],"x_custom":1,
            "user":"{\"user_id\":\"u1\",\"task\":\"t\"}"}"#,
        )
        .unwrap();
        assert!(r.stream && r.include_usage);
        assert_eq!(r.body["x_custom"], 1);
        assert_eq!(r.body["user"], "u1");
        assert_eq!(r.user_metadata.unwrap()["task"], "t");
    }

    #[test]
    fn names_the_offending_parameter() {
        assert_eq!(err("").code(), Some("empty_body"));
        assert_eq!(err("{nope").code(), Some("invalid_json"));
        assert_eq!(err(r#"{"messages":[]}"#).param(), Some("model"));
        assert_eq!(
            err(r#"{"model":"m","messages":[]}"#).param(),
            Some("messages")
        );
        let base = r#""model":"m","messages":[{"role":"user","content":"x"}]"#;
        for (extra, param) in [
            (r#""temperature":3"#, "temperature"),
            (r#""top_p":"x""#, "top_p"),
            (r#""n":0"#, "n"),
            (r#""stream":"yes""#, "stream"),
            (
                r#""stream_options":{"include_usage":true}"#,
                "stream_options",
            ),
            (r#""stop":["a","b","c","d","e"]"#, "stop"),
            (
                r#""response_format":{"type":"yaml"}"#,
                "response_format.type",
            ),
            (r#""tools":[{"type":"function"}]"#, "tools[0]"),
            (r#""logit_bias":{"x":1}"#, "logit_bias"),
        ] {
            let e = err(&format!("{{{base},{extra}}}"));
            assert_eq!(e.param(), Some(param), "{extra}");
            assert_eq!(e.status(), 400);
        }
        assert_eq!(
            err(r#"{"model":"m","messages":[{"role":"robot","content":"x"}]}"#).param(),
            Some("messages[0].role")
        );
    }

    /// `seed` is best-effort: it never makes routing refuse a model (adapters drop it instead),
    /// while parameters whose absence changes the answer still do.
    #[test]
    fn seed_is_not_a_routing_need() {
        let r = parse(
            br#"{"model":"m","messages":[{"role":"user","content":"x"}],"seed":7,"logprobs":true}"#,
        )
        .unwrap();
        let needs: Vec<&str> = r.features.needs.iter().map(|(_, p)| *p).collect();
        assert_eq!(needs, ["logprobs"]);
        assert!(!r.features.needs.iter().any(|(c, _)| *c == Caps::SEED));
        assert_eq!(
            r.body["seed"], 7,
            "still forwarded to providers that take it"
        );
    }

    #[test]
    fn never_echoes_the_input() {
        let e = err(
            r#"{"model":"m","messages":[{"role":"user","content":"sk-secret-canary"}], broken"#,
        );
        assert!(!e.message().contains("canary"));
    }
}
