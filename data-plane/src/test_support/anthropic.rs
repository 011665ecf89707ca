//! Test support for the Anthropic adapter: what a recording says the answer is (computed here
//! independently of the adapter), what a translated stream adds up to, and request helpers.
#![cfg(test)]

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::providers::{RequestCtx, UpstreamCall, anthropic};

/// The answer a recording describes, in OpenAI terms.
#[derive(Debug, Default)]
pub struct Expected {
    pub text: String,
    pub reasoning: String,
    /// (id, name, arguments) per tool call, in order.
    pub tools: Vec<(String, String, String)>,
    pub finish: String,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cached_tokens: u64,
}

fn finish_of(stop_reason: &str) -> String {
    match stop_reason {
        "tool_use" => "tool_calls",
        "max_tokens" => "length",
        "refusal" => "content_filter",
        _ => "stop",
    }
    .into()
}

impl Expected {
    fn usage(&mut self, usage: &Map<String, Value>) {
        let n = |f: &str| usage.get(f).and_then(Value::as_u64).unwrap_or(0);
        self.prompt_tokens =
            n("input_tokens") + n("cache_read_input_tokens") + n("cache_creation_input_tokens");
        self.completion_tokens = n("output_tokens");
        self.cached_tokens = n("cache_read_input_tokens");
    }

    /// From a stream's events (usage fields: the last value of each wins).
    pub fn from_events(events: &[Value]) -> Expected {
        let mut e = Expected::default();
        let mut usage = Map::new();
        let mut args: BTreeMap<u64, String> = BTreeMap::new();
        let mut tools = Vec::new();
        for ev in events {
            let index = ev["index"].as_u64().unwrap_or(0);
            match ev["type"].as_str().unwrap_or_default() {
                "message_start" => usage.extend(
                    ev["message"]["usage"]
                        .as_object()
                        .cloned()
                        .unwrap_or_default(),
                ),
                "message_delta" => {
                    usage.extend(ev["usage"].as_object().cloned().unwrap_or_default());
                    if let Some(r) = ev["delta"]["stop_reason"].as_str() {
                        e.finish = finish_of(r);
                    }
                }
                "content_block_start" if ev["content_block"]["type"] == "tool_use" => {
                    let b = &ev["content_block"];
                    tools.push((
                        index,
                        b["id"].as_str().unwrap().to_string(),
                        b["name"].as_str().unwrap().to_string(),
                    ));
                }
                "content_block_delta" => {
                    let d = &ev["delta"];
                    match d["type"].as_str().unwrap_or_default() {
                        "text_delta" => e.text.push_str(d["text"].as_str().unwrap()),
                        "thinking_delta" => e.reasoning.push_str(d["thinking"].as_str().unwrap()),
                        "input_json_delta" => args
                            .entry(index)
                            .or_default()
                            .push_str(d["partial_json"].as_str().unwrap()),
                        _ => {}
                    }
                }
                _ => {}
            }
        }
        e.usage(&usage);
        e.tools = tools
            .into_iter()
            .map(|(i, id, name)| {
                let a = args
                    .remove(&i)
                    .filter(|a| !a.is_empty())
                    .unwrap_or_else(|| "{}".into());
                (id, name, a)
            })
            .collect();
        e
    }

    /// From a whole `message`.
    pub fn from_message(m: &Value) -> Expected {
        let mut e = Expected {
            finish: finish_of(m["stop_reason"].as_str().unwrap_or_default()),
            ..Default::default()
        };
        for b in m["content"].as_array().unwrap() {
            match b["type"].as_str().unwrap() {
                "text" => e.text.push_str(b["text"].as_str().unwrap()),
                "thinking" => e.reasoning.push_str(b["thinking"].as_str().unwrap()),
                "tool_use" => e.tools.push((
                    b["id"].as_str().unwrap().into(),
                    b["name"].as_str().unwrap().into(),
                    b["input"].to_string(),
                )),
                _ => {}
            }
        }
        e.usage(m["usage"].as_object().unwrap());
        e
    }
}

/// What a translated stream adds up to; building it checks the OpenAI chunk invariants.
#[derive(Debug, Default)]
pub struct Collected {
    pub content: String,
    pub reasoning: String,
    pub refusal: String,
    /// (id, name, arguments) per OpenAI tool-call index.
    pub tools: Vec<(String, String, String)>,
    /// Each tool-call index in the order it first appeared.
    pub tool_indices: Vec<u64>,
    pub finish: Option<String>,
    pub thinking_blocks: Option<Vec<Value>>,
    pub usage: Option<Value>,
}

impl Collected {
    pub fn from_chunks(chunks: &[Value]) -> Collected {
        let mut c = Collected::default();
        let Some(first) = chunks.first() else {
            return c;
        };
        let mut roles = 0;
        for (n, chunk) in chunks.iter().enumerate() {
            assert_eq!(chunk["object"], "chat.completion.chunk");
            for f in ["id", "created", "model"] {
                assert_eq!(chunk[f], first[f], "every chunk has the same {f}");
            }
            let choices = chunk["choices"].as_array().expect("choices");
            if choices.is_empty() {
                assert_eq!(n, chunks.len() - 1, "the usage chunk comes last");
                c.usage = Some(chunk["usage"].clone());
                continue;
            }
            assert_eq!(c.finish, None, "nothing follows the finish chunk but usage");
            let choice = &choices[0];
            assert_eq!(choice["index"], 0);
            let delta = &choice["delta"];
            if delta.get("role").is_some() {
                assert_eq!(delta["role"], "assistant");
                assert_eq!(n, 0, "the role comes in the first delta");
                roles += 1;
            }
            let text = |f: &str| delta[f].as_str().unwrap_or_default().to_string();
            c.content += &text("content");
            c.reasoning += &text("reasoning_content");
            c.refusal += &text("refusal");
            for call in delta["tool_calls"].as_array().into_iter().flatten() {
                let i = call["index"].as_u64().expect("tool call index");
                if !c.tool_indices.contains(&i) {
                    assert_eq!(i as usize, c.tools.len(), "indices count up from 0");
                    assert!(call["id"].is_string() && call["function"]["name"].is_string());
                    assert_eq!(
                        call["function"]["arguments"], "",
                        "the first delta has empty arguments"
                    );
                    c.tool_indices.push(i);
                    c.tools.push((
                        call["id"].as_str().unwrap().into(),
                        call["function"]["name"].as_str().unwrap().into(),
                        String::new(),
                    ));
                }
                c.tools[i as usize].2 += call["function"]["arguments"].as_str().unwrap_or_default();
            }
            if let Some(blocks) = delta["thinking_blocks"].as_array() {
                c.thinking_blocks = Some(blocks.clone());
            }
            c.finish = choice["finish_reason"].as_str().map(str::to_string);
        }
        assert_eq!(roles, 1, "exactly one delta carries the role");
        c
    }

    pub fn assert_matches(&self, e: &Expected, what: &str) {
        assert_eq!(self.content, e.text, "{what}: content");
        assert_eq!(self.reasoning, e.reasoning, "{what}: reasoning");
        assert_eq!(
            self.finish.as_deref(),
            Some(e.finish.as_str()),
            "{what}: finish_reason"
        );
        assert_eq!(self.tools.len(), e.tools.len(), "{what}: tool calls");
        for (got, want) in self.tools.iter().zip(&e.tools) {
            assert_eq!(
                (&got.0, &got.1),
                (&want.0, &want.1),
                "{what}: tool id and name"
            );
            let parsed: Value = serde_json::from_str(&got.2).expect("arguments are JSON");
            assert_eq!(
                parsed,
                serde_json::from_str::<Value>(&want.2).unwrap(),
                "{what}: arguments"
            );
        }
    }
}

/// The JSON payloads of raw Anthropic SSE text (each `data:` line).
pub fn events_of_raw_sse(raw: &str) -> Vec<Value> {
    raw.lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .map(|d| serde_json::from_str(d.trim()).expect("recorded event JSON"))
        .collect()
}

/// Validates an OpenAI request as the gateway does, then builds the Anthropic call for it.
pub fn build(openai: Value, stream: bool) -> (Value, UpstreamCall) {
    let call = try_build(openai, stream).unwrap_or_else(|e| panic!("refused: {e:?}"));
    (serde_json::from_slice(&call.body).unwrap(), call)
}

/// Like [`build`], returning the adapter's refusal.
pub fn try_build(openai: Value, stream: bool) -> Result<UpstreamCall, crate::error::ApiError> {
    let request = crate::request::parse(openai.to_string().as_bytes())?;
    anthropic::build_request(&RequestCtx {
        body: &request.body,
        model: &request.model,
        stream,
        cache: &crate::test_support::fixtures::cache(),
    })
}

/// Messages in one comparable shape: string content as one text block, `is_error: false` left out.
pub fn normalise_messages(messages: &Value) -> Value {
    let mut messages = messages.clone();
    for m in messages.as_array_mut().unwrap() {
        if let Some(text) = m["content"].as_str().map(str::to_string) {
            m["content"] = serde_json::json!([{"type": "text", "text": text}]);
        }
        for b in m["content"].as_array_mut().unwrap() {
            if b["is_error"] == false {
                b.as_object_mut().unwrap().remove("is_error");
            }
        }
    }
    messages
}

pub const ANTHROPIC_FIELDS: &[&str] = &[
    "model",
    "messages",
    "max_tokens",
    "system",
    "metadata",
    "stop_sequences",
    "stream",
    "temperature",
    "top_k",
    "top_p",
    "tools",
    "tool_choice",
    "thinking",
];

pub fn with(extra: Value) -> Value {
    let mut r = json!({"model": "claude-x", "messages": [{"role": "user", "content": "hi"}]});
    for (k, v) in extra.as_object().unwrap() {
        r[k] = v.clone();
    }
    r
}

pub fn refused(request: Value) -> (String, String) {
    let e = try_build(request, false).expect_err("should be refused");
    assert_eq!(e.status(), 400);
    (
        e.param().unwrap_or_default().to_string(),
        e.message().to_string(),
    )
}

pub fn tool_call(id: &str, args: &str) -> Value {
    json!({"id": id, "type": "function", "function": {"name": "lookup", "arguments": args}})
}

pub fn weather_tool() -> Value {
    json!({"type": "function", "function": {"name": "weather", "description": "Weather now",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}, "strict": true}})
}
