//! Deterministic answers: what the simulated model says, word chunks, token counts, tool-call
//! arguments generated from JSON schemas, and random ids in each provider's format.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

/// Longest quote of the user's text (in chars) an answer contains.
const QUOTE_CHARS: usize = 200;

/// The turn the simulated model answers.
pub(crate) enum LastTurn {
    /// The last message is from the user; its text.
    User(String),
    /// The last message carries tool results; their text.
    ToolResult(String),
    /// Anything else (empty conversation, assistant prefill).
    Other,
}

/// Whether and which tool the request lets the model call.
#[derive(PartialEq, Eq)]
pub(crate) enum ToolMode {
    Auto,
    None,
    Required,
    Named(String),
}

/// A tool offered by the request: name and JSON schema of its arguments.
pub(crate) struct ToolSpec {
    pub name: String,
    pub schema: Value,
}

/// A protocol-neutral summary of a request, built by each protocol module.
pub(crate) struct Conversation {
    pub last: LastTurn,
    pub prompt_tokens: u64,
    pub tools: Vec<ToolSpec>,
    pub mode: ToolMode,
    pub max_tokens: Option<u64>,
    pub stops: Vec<String>,
    /// JSON output requested: `Some(Null)` for any JSON object, `Some(schema)` for a schema.
    pub json: Option<Value>,
}

/// Why a text answer ended.
#[derive(Clone, PartialEq, Eq, Debug)]
pub(crate) enum Finish {
    Stop,
    Length,
    StopSequence(String),
}

/// A text answer split into word chunks; the chunks concatenate to the full text.
pub(crate) struct TextAnswer {
    pub pieces: Vec<String>,
    pub finish: Finish,
}

impl TextAnswer {
    pub(crate) fn text(&self) -> String {
        self.pieces.concat()
    }

    pub(crate) fn tokens(&self) -> u64 {
        self.pieces.len() as u64
    }
}

/// A tool call the simulated model makes.
pub(crate) struct ToolCall {
    pub name: String,
    pub args: Value,
}

impl ToolCall {
    pub(crate) fn arguments(&self) -> String {
        self.args.to_string()
    }

    pub(crate) fn tokens(&self) -> u64 {
        words(&self.arguments()).max(1)
    }
}

/// What the simulated model does.
pub(crate) enum Decision {
    Text(TextAnswer),
    Tool(ToolCall),
}

/// Decides the answer: a call to the first (or named) tool when tools are offered and the user
/// spoke last, otherwise a text that quotes the user's text or the tool result.
pub(crate) fn decide(sim_name: &str, conversation: &Conversation) -> Decision {
    if let LastTurn::User(_) = conversation.last
        && !conversation.tools.is_empty()
        && conversation.mode != ToolMode::None
    {
        let wanted = match &conversation.mode {
            ToolMode::Named(name) => name.as_str(),
            _ => conversation.tools[0].name.as_str(),
        };
        let args = conversation
            .tools
            .iter()
            .find(|tool| tool.name == wanted)
            .map(|tool| args_for_schema(&tool.schema))
            .unwrap_or_else(|| Value::Object(Map::new()));
        return Decision::Tool(ToolCall {
            name: wanted.to_string(),
            args,
        });
    }
    if let (Some(schema), LastTurn::User(text)) = (&conversation.json, &conversation.last) {
        let object = match schema {
            Value::Null => {
                serde_json::json!({ "simulated": sim_name, "you_said": truncate_chars(text, QUOTE_CHARS) })
            }
            schema => args_for_schema(schema),
        };
        return Decision::Text(TextAnswer {
            pieces: pieces(&object.to_string()),
            finish: Finish::Stop,
        });
    }
    let full = match &conversation.last {
        LastTurn::User(text) => {
            format!(
                "[simulated {sim_name}] You said: {}",
                truncate_chars(text, QUOTE_CHARS)
            )
        }
        LastTurn::ToolResult(text) => format!(
            "[simulated {sim_name}] Tool result: {}",
            truncate_chars(text, QUOTE_CHARS)
        ),
        LastTurn::Other => format!("[simulated {sim_name}] There is no user message to answer."),
    };
    Decision::Text(limit(&full, &conversation.stops, conversation.max_tokens))
}

/// The simulated reasoning text for providers that show thinking.
pub(crate) fn reasoning(conversation: &Conversation) -> Vec<String> {
    let what = match conversation.last {
        LastTurn::User(_) => "the user's message",
        LastTurn::ToolResult(_) => "the tool result",
        LastTurn::Other => "the conversation",
    };
    pieces(&format!(
        "Simulated reasoning: I read {what} ({} prompt words) and reply deterministically.",
        conversation.prompt_tokens
    ))
}

/// Cuts `text` at the first stop sequence, then to at most `max_tokens` words.
fn limit(text: &str, stops: &[String], max_tokens: Option<u64>) -> TextAnswer {
    let mut cut = text;
    let mut finish = Finish::Stop;
    let first_stop = stops
        .iter()
        .filter(|stop| !stop.is_empty())
        .filter_map(|stop| text.find(stop.as_str()).map(|at| (at, stop)))
        .min_by_key(|(at, _)| *at);
    if let Some((at, stop)) = first_stop {
        cut = &text[..at];
        finish = Finish::StopSequence(stop.clone());
    }
    let mut pieces = pieces(cut);
    if let Some(max) = max_tokens {
        let max = usize::try_from(max).unwrap_or(usize::MAX);
        if pieces.len() > max {
            pieces.truncate(max);
            finish = Finish::Length;
        }
    }
    TextAnswer { pieces, finish }
}

/// Splits text into one piece per word, each with the whitespace before it, so the pieces
/// concatenate back to the original (trailing whitespace joins the last piece).
pub(crate) fn pieces(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut current = String::new();
    let mut in_word = false;
    for ch in text.chars() {
        let space = ch.is_whitespace();
        if space && in_word {
            out.push(std::mem::take(&mut current));
        }
        in_word = !space;
        current.push(ch);
    }
    if !current.is_empty() {
        match out.last_mut() {
            Some(last) if current.chars().all(char::is_whitespace) => last.push_str(&current),
            _ => out.push(current),
        }
    }
    out
}

/// Splits `text` into pieces of at most `size` chars (streamed tool-call arguments).
pub(crate) fn fragments(text: &str, size: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    chars
        .chunks(size.max(1))
        .map(|piece| piece.iter().collect())
        .collect()
}

/// Whitespace-separated word count: the simulator's token count.
pub(crate) fn words(text: &str) -> u64 {
    text.split_whitespace().count() as u64
}

/// Word count of the text inside a message structure: strings, and the `text`, `content`,
/// `parts`, `thinking` fields of objects (OpenAI parts, Anthropic blocks, Gemini parts).
pub(crate) fn text_words(value: &Value) -> u64 {
    match value {
        Value::String(text) => words(text),
        Value::Array(items) => items.iter().map(text_words).sum(),
        Value::Object(map) => ["text", "content", "parts", "thinking"]
            .iter()
            .filter_map(|key| map.get(*key))
            .map(text_words)
            .sum(),
        _ => 0,
    }
}

/// The text of a message content: a string, or the `text` of its parts joined by newlines.
pub(crate) fn content_text(content: &Value) -> String {
    match content {
        Value::String(text) => text.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|part| match part {
                Value::String(text) => Some(text.clone()),
                Value::Object(_) => part
                    .get("text")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .or_else(|| part.get("content").map(content_text)),
                _ => None,
            })
            .collect::<Vec<_>>()
            .join("\n"),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The first `max` chars of `text`.
pub(crate) fn truncate_chars(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((at, _)) => &text[..at],
        None => text,
    }
}

/// Arguments for a tool: one value per required property (string → "example", number and
/// integer → 1, boolean → true, enum → its first value, nested objects recursively).
pub(crate) fn args_for_schema(schema: &Value) -> Value {
    let mut args = Map::new();
    let properties = schema.get("properties");
    if let Some(required) = schema.get("required").and_then(Value::as_array) {
        for name in required.iter().filter_map(Value::as_str) {
            let property = properties.and_then(|p| p.get(name));
            args.insert(name.to_string(), value_for(property));
        }
    }
    Value::Object(args)
}

fn value_for(property: Option<&Value>) -> Value {
    let Some(property) = property else {
        return Value::String("example".into());
    };
    if let Some(first) = property
        .get("enum")
        .and_then(Value::as_array)
        .and_then(|e| e.first())
    {
        return first.clone();
    }
    let kind = match property.get("type") {
        Some(Value::String(kind)) => kind.to_ascii_lowercase(),
        Some(Value::Array(kinds)) => kinds
            .iter()
            .filter_map(Value::as_str)
            .find(|kind| !kind.eq_ignore_ascii_case("null"))
            .unwrap_or("string")
            .to_ascii_lowercase(),
        _ => "string".to_string(),
    };
    match kind.as_str() {
        "number" | "integer" => Value::from(1),
        "boolean" => Value::Bool(true),
        "array" => Value::Array(Vec::new()),
        "object" => args_for_schema(property),
        "null" => Value::Null,
        _ => Value::String("example".into()),
    }
}

const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const BASE64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn random_from(alphabet: &[u8], len: usize) -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..len)
        .map(|_| char::from(alphabet[rng.random_range(0..alphabet.len())]))
        .collect()
}

/// `len` random ASCII letters and digits.
pub(crate) fn random_alnum(len: usize) -> String {
    random_from(ALNUM, len)
}

/// `len` random lowercase hex digits (OpenAI Responses ids: `resp_`, `msg_`, `fc_`, `rs_`).
pub(crate) fn random_hex(len: usize) -> String {
    random_from(b"0123456789abcdef", len)
}

/// A random string that looks like base64 (for thinking and thought signatures).
pub(crate) fn random_signature() -> String {
    random_from(BASE64, 96)
}

/// Seconds since the Unix epoch.
pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pieces_round_trip_and_count_words() {
        for text in ["hello  world\n again ", "  lead", "one", "", "a b"] {
            let split = pieces(text);
            assert_eq!(split.concat(), text);
            assert_eq!(split.len() as u64, words(text), "{text:?}");
        }
    }

    #[test]
    fn limit_applies_stop_then_max_tokens() {
        let answer = limit("one two three four", &["three".into()], None);
        assert_eq!(answer.text(), "one two ");
        assert_eq!(answer.finish, Finish::StopSequence("three".into()));
        let answer = limit("one two three four", &[], Some(2));
        assert_eq!(answer.text(), "one two");
        assert_eq!(answer.finish, Finish::Length);
    }

    #[test]
    fn args_follow_required_properties() {
        let schema = json!({"type": "object", "properties": {
            "city": {"type": "string"}, "days": {"type": "integer"}, "hot": {"type": "BOOLEAN"},
            "unit": {"type": "string", "enum": ["c", "f"]}, "opt": {"type": "string"}},
            "required": ["city", "days", "hot", "unit"]});
        assert_eq!(
            args_for_schema(&schema),
            json!({"city": "example", "days": 1, "hot": true, "unit": "c"})
        );
    }

    #[test]
    fn quote_is_truncated_to_200_chars() {
        let conversation = Conversation {
            last: LastTurn::User("é".repeat(300)),
            prompt_tokens: 1,
            tools: Vec::new(),
            mode: ToolMode::Auto,
            max_tokens: None,
            stops: Vec::new(),
            json: None,
        };
        let Decision::Text(answer) = decide("x", &conversation) else {
            panic!("expected text");
        };
        assert_eq!(
            answer.text(),
            format!("[simulated x] You said: {}", "é".repeat(200))
        );
    }
}
