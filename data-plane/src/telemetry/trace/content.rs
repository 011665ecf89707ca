//! Message content on attempt spans, only when the operator opts in
//! (`OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true`) and only after the firewall:
//! `gen_ai.input.messages` from the request as it was sent (input rules applied) and
//! `gen_ai.output.messages` from the answer as the client got it (output rules applied), in the
//! GenAI conventions' JSON shape (`role`, `parts` of `text`, `tool_call`, `tool_call_response`,
//! `reasoning`). Text is cut at [`MAX_PART`] per part and [`MAX_TOTAL`] per attribute; images and
//! other media are named by their type, never copied.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

/// Longest text kept of one part, in bytes (cut on a character boundary).
pub const MAX_PART: usize = 16 * 1024;
/// Most text kept in one attribute, in bytes; later parts are left out.
pub const MAX_TOTAL: usize = 64 * 1024;

fn cut(text: &str, budget: &mut usize) -> String {
    let limit = MAX_PART.min(*budget);
    let mut end = text.len().min(limit);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    *budget -= end;
    text[..end].to_string()
}

/// The parts of an OpenAI message `content` (a string, or an array of typed parts).
fn content_parts(content: Option<&Value>, budget: &mut usize, out: &mut Vec<Value>) {
    match content {
        Some(Value::String(text)) if !text.is_empty() => {
            out.push(json!({"type": "text", "content": cut(text, budget)}));
        }
        Some(Value::Array(parts)) => {
            for part in parts {
                let kind = part.get("type").and_then(Value::as_str).unwrap_or("");
                match (kind, part.get("text").and_then(Value::as_str)) {
                    ("text", Some(text)) => {
                        out.push(json!({"type": "text", "content": cut(text, budget)}));
                    }
                    ("", _) => {}
                    (other, _) => out.push(json!({ "type": other })),
                }
            }
        }
        _ => {}
    }
}

/// Tool-call arguments as an object when they are JSON, else as the text they are.
fn arguments(text: &str, budget: &mut usize) -> Value {
    match serde_json::from_str::<Value>(text) {
        Ok(v @ Value::Object(_)) if text.len() <= (*budget).min(MAX_PART) => {
            *budget -= text.len();
            v
        }
        _ => Value::String(cut(text, budget)),
    }
}

fn tool_call_parts(calls: Option<&Value>, budget: &mut usize, out: &mut Vec<Value>) {
    for call in calls.and_then(Value::as_array).into_iter().flatten() {
        let function = call.get("function");
        let name = function.and_then(|f| f.get("name")).and_then(Value::as_str);
        let args = function
            .and_then(|f| f.get("arguments"))
            .and_then(Value::as_str)
            .unwrap_or("");
        out.push(json!({
            "type": "tool_call",
            "id": call.get("id").and_then(Value::as_str),
            "name": name.unwrap_or(""),
            "arguments": arguments(args, budget),
        }));
    }
}

/// `gen_ai.input.messages` of a chat request's body (system messages included, in order).
pub fn input_messages(body: &Map<String, Value>) -> Option<String> {
    let messages = body.get("messages")?.as_array()?;
    let mut budget = MAX_TOTAL;
    let mut out = Vec::with_capacity(messages.len());
    for m in messages {
        let role = m.get("role").and_then(Value::as_str).unwrap_or("user");
        let mut parts = Vec::new();
        if role == "tool" {
            let mut text = Vec::new();
            content_parts(m.get("content"), &mut budget, &mut text);
            let response: Vec<&str> = text
                .iter()
                .filter_map(|p| p.get("content").and_then(Value::as_str))
                .collect();
            parts.push(json!({
                "type": "tool_call_response",
                "id": m.get("tool_call_id").and_then(Value::as_str),
                "response": response.concat(),
            }));
        } else {
            content_parts(m.get("content"), &mut budget, &mut parts);
            tool_call_parts(m.get("tool_calls"), &mut budget, &mut parts);
        }
        out.push(json!({"role": role, "parts": parts}));
        if budget == 0 {
            break;
        }
    }
    serde_json::to_string(&out).ok()
}

/// `gen_ai.output.messages` of a whole `chat.completion` (one message per choice).
pub fn output_messages(body: &[u8]) -> Option<String> {
    let answer: Value = serde_json::from_slice(body).ok()?;
    let mut budget = MAX_TOTAL;
    let mut out = Vec::new();
    for choice in answer.get("choices")?.as_array()? {
        let message = choice.get("message");
        let mut parts = Vec::new();
        if let Some(r) = message
            .and_then(|m| m.get("reasoning_content"))
            .and_then(Value::as_str)
        {
            parts.push(json!({"type": "reasoning", "content": cut(r, &mut budget)}));
        }
        content_parts(
            message.and_then(|m| m.get("content")),
            &mut budget,
            &mut parts,
        );
        tool_call_parts(
            message.and_then(|m| m.get("tool_calls")),
            &mut budget,
            &mut parts,
        );
        out.push(json!({
            "role": "assistant",
            "parts": parts,
            "finish_reason": choice.get("finish_reason").and_then(Value::as_str).unwrap_or(""),
        }));
    }
    serde_json::to_string(&out).ok()
}

/// One streamed choice, put back together.
#[derive(Debug, Default)]
struct StreamedChoice {
    reasoning: String,
    text: String,
    /// By the delta's `index`: id, name, arguments so far.
    calls: BTreeMap<u64, (String, String, String)>,
    finish_reason: String,
}

/// The answer of a stream, gathered from its chunks (as the client got them) up to
/// [`MAX_TOTAL`] bytes of text.
#[derive(Debug, Default)]
pub struct StreamCapture {
    choices: BTreeMap<u64, StreamedChoice>,
    kept: usize,
}

impl StreamCapture {
    pub fn absorb(&mut self, chunk: &str) {
        let Ok(v) = serde_json::from_str::<Value>(chunk) else {
            return;
        };
        for choice in v
            .get("choices")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let index = choice.get("index").and_then(Value::as_u64).unwrap_or(0);
            let c = self.choices.entry(index).or_default();
            if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
                c.finish_reason = reason.to_string();
            }
            let Some(delta) = choice.get("delta") else {
                continue;
            };
            let room = |kept: &mut usize, piece: &str| -> usize {
                let mut end = piece.len().min(MAX_TOTAL.saturating_sub(*kept));
                while !piece.is_char_boundary(end) {
                    end -= 1;
                }
                *kept += end;
                end
            };
            for (field, into) in [
                ("reasoning_content", &mut c.reasoning),
                ("content", &mut c.text),
            ] {
                if let Some(piece) = delta.get(field).and_then(Value::as_str) {
                    let end = room(&mut self.kept, piece);
                    into.push_str(&piece[..end]);
                }
            }
            for call in delta
                .get("tool_calls")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let at = call.get("index").and_then(Value::as_u64).unwrap_or(0);
                let (id, name, args) = c.calls.entry(at).or_default();
                if let Some(v) = call.get("id").and_then(Value::as_str) {
                    *id = v.to_string();
                }
                let function = call.get("function");
                if let Some(v) = function.and_then(|f| f.get("name")).and_then(Value::as_str) {
                    name.push_str(v);
                }
                if let Some(v) = function
                    .and_then(|f| f.get("arguments"))
                    .and_then(Value::as_str)
                {
                    let end = room(&mut self.kept, v);
                    args.push_str(&v[..end]);
                }
            }
        }
    }

    /// `gen_ai.output.messages` of what was gathered.
    pub fn messages(&self) -> Option<String> {
        let mut budget = MAX_TOTAL;
        let out: Vec<Value> = self
            .choices
            .values()
            .map(|c| {
                let mut parts = Vec::new();
                if !c.reasoning.is_empty() {
                    parts.push(
                        json!({"type": "reasoning", "content": cut(&c.reasoning, &mut budget)}),
                    );
                }
                if !c.text.is_empty() {
                    parts.push(json!({"type": "text", "content": cut(&c.text, &mut budget)}));
                }
                for (id, name, args) in c.calls.values() {
                    parts.push(json!({"type": "tool_call", "id": id, "name": name,
                        "arguments": arguments(args, &mut budget)}));
                }
                json!({"role": "assistant", "parts": parts, "finish_reason": c.finish_reason})
            })
            .collect();
        serde_json::to_string(&out).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_messages_take_the_conventions_shape() {
        let body = json!({"messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": [{"type": "text", "text": "hi"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function",
                "function": {"name": "f", "arguments": "{\"x\":1}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "42"},
        ]});
        let text = input_messages(body.as_object().unwrap()).unwrap();
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            v,
            json!([
                {"role": "system", "parts": [{"type": "text", "content": "be brief"}]},
                {"role": "user", "parts": [{"type": "text", "content": "hi"}, {"type": "image_url"}]},
                {"role": "assistant", "parts": [{"type": "tool_call", "id": "c1", "name": "f", "arguments": {"x": 1}}]},
                {"role": "tool", "parts": [{"type": "tool_call_response", "id": "c1", "response": "42"}]},
            ])
        );
        assert!(!text.contains("AAAA"), "media is never copied");
    }

    #[test]
    fn a_stream_is_put_back_together() {
        let mut c = StreamCapture::default();
        for chunk in [
            r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":"Hel"}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"content":"lo"}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c1","function":{"name":"f","arguments":"{\"a\""}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":":2}"}}]},"finish_reason":"tool_calls"}]}"#,
        ] {
            c.absorb(chunk);
        }
        let v: Value = serde_json::from_str(&c.messages().unwrap()).unwrap();
        assert_eq!(
            v,
            json!([{"role": "assistant", "parts": [
                {"type": "text", "content": "Hello"},
                {"type": "tool_call", "id": "c1", "name": "f", "arguments": {"a": 2}}],
                "finish_reason": "tool_calls"}])
        );
    }

    #[test]
    fn long_text_is_cut() {
        let body = json!({"messages": [{"role": "user", "content": "é".repeat(MAX_PART)}]});
        let text = input_messages(body.as_object().unwrap()).unwrap();
        assert!(text.len() < MAX_PART + 100);
        let mut c = StreamCapture::default();
        let piece = "x".repeat(1000);
        for _ in 0..200 {
            c.absorb(&json!({"choices":[{"index":0,"delta":{"content": piece}}]}).to_string());
        }
        assert!(c.messages().unwrap().len() < MAX_TOTAL);
    }
}
