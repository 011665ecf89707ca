//! Anthropic's event stream (`message_start` … `message_stop`) as OpenAI `chat.completion.chunk`s:
//! text, thinking (`reasoning_content`), tool calls with OpenAI's own 0-based `index`, the finish
//! chunk, the usage chunk, and in-band errors.
//! In JSON mode ([`AnswerShape::json_only`]) the content is the JSON tool's input alone (see
//! `anthropic_json_gate`).

use std::borrow::Cow;

use serde_json::Value;

use crate::error::UpstreamError;
use crate::providers::anthropic::json_gate::JsonGate;
use crate::providers::anthropic::wire::{Delta, Event, WireUsage};
use crate::providers::anthropic::{JSON_TOOL, finish_reason, refusal_text, remember_thinking};
use crate::providers::{AnswerShape, Flow, MAX_ECHOED, ResponseCtx, StreamTranslator};
use crate::telemetry::usage::Usage;
use crate::upstream::sse::SseEvent;

/// Most thinking state (thinking text, signatures, redacted data) kept per answer for the next
/// turn; beyond it, nothing is kept, and nothing more is buffered.
const MAX_KEPT_THINKING: usize = 4 * 1024 * 1024;

/// What an open content block is, by Anthropic block index.
enum Block {
    Thinking {
        thinking: String,
        signature: String,
    },
    Redacted {
        data: String,
    },
    /// A client tool call: its OpenAI `index`, and whether any argument text was sent.
    Tool {
        index: usize,
        args: bool,
    },
    /// The JSON-mode tool, whose input is streamed as content.
    Json {
        args: bool,
    },
    Other,
}

/// See the module documentation.
pub struct AnthropicStream {
    ctx: ResponseCtx,
    id: Option<String>,
    model: Option<String>,
    /// The chunk JSON up to the delta, fixed once the first chunk goes out.
    prefix: Option<String>,
    role_sent: bool,
    blocks: Vec<(usize, Block)>,
    tools: usize,
    usage: Option<WireUsage>,
    stop_reason: Option<String>,
    stop_details: Option<Value>,
    thinking: Vec<Value>,
    kept_thinking: usize,
    tool_ids: Vec<String>,
    /// Holds JSON-mode text back, drops text beside the JSON tool.
    gate: JsonGate,
    done: bool,
}

fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

impl AnthropicStream {
    /// A fresh state machine enforcing the request's [`AnswerShape`].
    pub fn shaped(ctx: ResponseCtx, shape: AnswerShape) -> Self {
        AnthropicStream {
            ctx,
            id: None,
            model: None,
            prefix: None,
            role_sent: false,
            blocks: Vec::new(),
            tools: 0,
            usage: None,
            stop_reason: None,
            stop_details: None,
            thinking: Vec::new(),
            kept_thinking: 0,
            tool_ids: Vec::new(),
            gate: JsonGate::new(shape.json_only),
            done: false,
        }
    }

    /// Answer text, through the JSON-mode gate.
    fn text(&mut self, out: &mut Vec<String>, text: &str) {
        if let Some(text) = self.gate.admit(text) {
            self.push(out, &format!(r#""content":{}"#, quote(&text)), None);
        }
    }

    /// Sends the text the gate held (a client tool call or the end came, not the JSON).
    fn release(&mut self, out: &mut Vec<String>) {
        if let Some(held) = self.gate.release() {
            self.push(out, &format!(r#""content":{}"#, quote(&held)), None);
        }
    }

    /// `"id":…,"object":…,"created":…,"model":…` of every chunk.
    fn head(&self) -> String {
        let id = self.id.as_deref().unwrap_or(&self.ctx.id);
        let model = self.model.as_deref().unwrap_or(&self.ctx.model);
        format!(
            r#""id":{},"object":"chat.completion.chunk","created":{},"model":{}"#,
            quote(id),
            self.ctx.created,
            quote(model)
        )
    }

    /// Emits one chunk whose delta holds `fields` (JSON members without braces); the first chunk
    /// also carries the role.
    fn push(&mut self, out: &mut Vec<String>, fields: &str, finish: Option<&str>) {
        if self.prefix.is_none() {
            self.prefix = Some(format!(
                r#"{{{},"choices":[{{"index":0,"delta":{{"#,
                self.head()
            ));
        }
        let prefix = self.prefix.as_deref().unwrap_or_default();
        let mut chunk = String::with_capacity(prefix.len() + fields.len() + 64);
        chunk.push_str(prefix);
        if !self.role_sent {
            self.role_sent = true;
            chunk.push_str(r#""role":"assistant""#);
            if !fields.is_empty() {
                chunk.push(',');
            }
        }
        chunk.push_str(fields);
        chunk.push_str(r#"},"logprobs":null,"finish_reason":"#);
        match finish {
            Some(f) => chunk.push_str(&quote(f)),
            None => chunk.push_str("null"),
        }
        chunk.push_str("}]}");
        out.push(chunk);
    }

    fn block(&mut self, index: Option<usize>) -> Option<&mut Block> {
        let index = index?;
        self.blocks
            .iter_mut()
            .find(|(i, _)| *i == index)
            .map(|(_, b)| b)
    }

    fn keep_thinking(&mut self, text: &str) -> bool {
        self.kept_thinking += text.len();
        self.kept_thinking <= MAX_KEPT_THINKING
    }

    fn start_block(&mut self, index: Option<usize>, block: Option<Value>, out: &mut Vec<String>) {
        let block = block.unwrap_or(Value::Null);
        let text = |f: &str| {
            block
                .get(f)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let state = match block.get("type").and_then(Value::as_str) {
            Some("text") => {
                let t = text("text");
                if !t.is_empty() {
                    self.text(out, &t);
                }
                Block::Other
            }
            Some("thinking") => {
                let t = text("thinking");
                let signature = text("signature");
                let keep = self.keep_thinking(&t) & self.keep_thinking(&signature);
                if !t.is_empty() {
                    self.push(out, &format!(r#""reasoning_content":{}"#, quote(&t)), None);
                }
                if keep {
                    Block::Thinking {
                        thinking: t,
                        signature,
                    }
                } else {
                    Block::Thinking {
                        thinking: String::new(),
                        signature: String::new(),
                    }
                }
            }
            Some("redacted_thinking") => {
                let data = text("data");
                let keep = self.keep_thinking(&data);
                Block::Redacted {
                    data: if keep { data } else { String::new() },
                }
            }
            Some("tool_use") if text("name") == JSON_TOOL => {
                self.gate.json_started();
                Block::Json { args: false }
            }
            Some("tool_use") => {
                self.release(out);
                let (id, name) = (text("id"), text("name"));
                let index = self.tools;
                self.tools += 1;
                let fields = format!(
                    r#""tool_calls":[{{"index":{index},"id":{},"type":"function","function":{{"name":{},"arguments":""}}}}]"#,
                    quote(&id),
                    quote(&name)
                );
                self.push(out, &fields, None);
                self.tool_ids.push(id);
                Block::Tool { index, args: false }
            }
            // Server tool blocks and block types added later carry nothing for the client.
            _ => Block::Other,
        };
        if let Some(index) = index {
            self.blocks.push((index, state));
        }
    }

    fn delta(&mut self, index: Option<usize>, delta: Delta<'_>, out: &mut Vec<String>) {
        fn piece(v: Option<Cow<'_, str>>) -> Option<Cow<'_, str>> {
            v.filter(|s| !s.is_empty())
        }
        match delta.kind.as_deref() {
            Some("text_delta") => {
                if let Some(t) = piece(delta.text) {
                    self.text(out, &t);
                }
            }
            Some("thinking_delta") => {
                let Some(t) = piece(delta.thinking) else {
                    return;
                };
                self.push(out, &format!(r#""reasoning_content":{}"#, quote(&t)), None);
                let keep = self.keep_thinking(&t);
                if let Some(Block::Thinking { thinking, .. }) = self.block(index)
                    && keep
                {
                    thinking.push_str(&t);
                }
            }
            Some("signature_delta") => {
                let Some(s) = piece(delta.signature) else {
                    return;
                };
                // Signatures count against the same budget: unbounded, they were buffered
                // without limit.
                let keep = self.keep_thinking(&s);
                if let Some(Block::Thinking { signature, .. }) = self.block(index)
                    && keep
                {
                    signature.push_str(&s);
                }
            }
            Some("input_json_delta") => {
                let Some(fragment) = piece(delta.partial_json) else {
                    return;
                };
                let fields = match self.block(index) {
                    Some(Block::Tool { index, args }) => {
                        *args = true;
                        format!(
                            r#""tool_calls":[{{"index":{index},"function":{{"arguments":{}}}}}]"#,
                            quote(&fragment)
                        )
                    }
                    Some(Block::Json { args }) => {
                        *args = true;
                        format!(r#""content":{}"#, quote(&fragment))
                    }
                    _ => return,
                };
                self.push(out, &fields, None);
            }
            // citations_delta and delta types added later.
            _ => {}
        }
    }

    fn stop_block(&mut self, index: Option<usize>, out: &mut Vec<String>) {
        let Some(pos) = index.and_then(|i| self.blocks.iter().position(|(b, _)| *b == i)) else {
            return;
        };
        let (_, block) = self.blocks.swap_remove(pos);
        match block {
            // A tool without arguments still owes the client a valid JSON object.
            Block::Tool { index, args: false } => self.push(
                out,
                &format!(r#""tool_calls":[{{"index":{index},"function":{{"arguments":"{{}}"}}}}]"#),
                None,
            ),
            Block::Json { args: false } => self.push(out, r#""content":"{}""#, None),
            Block::Thinking { thinking, signature } => self.thinking.push(
                serde_json::json!({"type": "thinking", "thinking": thinking, "signature": signature}),
            ),
            Block::Redacted { data } => self
                .thinking
                .push(serde_json::json!({"type": "redacted_thinking", "data": data})),
            _ => {}
        }
    }

    /// `message_stop`: the finish chunk (with the thinking blocks to send back next turn), then
    /// the usage chunk if the client asked for it.
    fn finish(&mut self, out: &mut Vec<String>) {
        self.release(out);
        let complete = self.kept_thinking <= MAX_KEPT_THINKING;
        let mut fields = String::new();
        if self.stop_reason.as_deref() == Some("refusal") {
            let text = refusal_text(self.stop_details.as_ref());
            fields = format!(r#""refusal":{}"#, quote(&text));
        }
        if complete && !self.thinking.is_empty() {
            if !fields.is_empty() {
                fields.push(',');
            }
            fields.push_str(r#""thinking_blocks":"#);
            fields.push_str(&Value::Array(self.thinking.clone()).to_string());
        }
        let reason = finish_reason(self.stop_reason.as_deref(), self.tools > 0);
        self.push(out, &fields, Some(reason));
        if self.ctx.include_usage {
            let usage = self.usage.unwrap_or_default().to_usage().to_openai();
            out.push(format!(
                r#"{{{},"choices":[],"usage":{usage}}}"#,
                self.head()
            ));
        }
        if complete {
            remember_thinking(&self.ctx.cache, &self.thinking, &self.tool_ids);
        }
        self.done = true;
    }
}

/// The event types whose loss would corrupt the answer.
const CONTENT_EVENTS: &[&str] = &[
    "message_start",
    "content_block_start",
    "content_block_delta",
    "content_block_stop",
    "message_delta",
    "message_stop",
];

impl StreamTranslator for AnthropicStream {
    fn event(&mut self, event: SseEvent, out: &mut Vec<String>) -> Result<Flow, UpstreamError> {
        if self.done {
            return Ok(Flow::Done);
        }
        let data = event.data.trim();
        if data.is_empty() {
            return Ok(Flow::More);
        }
        let parsed = match serde_json::from_str::<Event<'_>>(data) {
            Ok(e) => e,
            // A broken ping or unknown event loses nothing; a broken content event would.
            Err(_) => match event.event.as_deref() {
                Some("error") => {
                    return Err(UpstreamError::InBand {
                        code: None,
                        message: "failed mid-stream".into(),
                    });
                }
                Some(name) if CONTENT_EVENTS.contains(&name) => {
                    return Err(UpstreamError::Malformed(format!(
                        "sent a malformed `{name}` stream event"
                    )));
                }
                _ => return Ok(Flow::More),
            },
        };
        match parsed.kind.as_ref() {
            "message_start" => {
                if let Some(head) = parsed.message {
                    let fits = |s: &String| s.len() <= MAX_ECHOED;
                    self.id = head.id.filter(fits).or(self.id.take());
                    self.model = head.model.filter(fits).or(self.model.take());
                    if let Some(u) = head.usage {
                        self.usage.get_or_insert_default().update(&u);
                    }
                }
            }
            "content_block_start" => self.start_block(parsed.index, parsed.content_block, out),
            "content_block_delta" => {
                if let Some(delta) = parsed.delta {
                    self.delta(parsed.index, delta, out);
                }
            }
            "content_block_stop" => self.stop_block(parsed.index, out),
            "message_delta" => {
                if let Some(delta) = parsed.delta {
                    if delta.stop_reason.is_some() {
                        self.stop_reason = delta.stop_reason;
                    }
                    if delta.stop_details.is_some() {
                        self.stop_details = delta.stop_details;
                    }
                }
                if let Some(u) = parsed.usage {
                    self.usage.get_or_insert_default().update(&u);
                }
            }
            "message_stop" => {
                self.finish(out);
                return Ok(Flow::Done);
            }
            "error" => {
                let (code, message) = match parsed.error {
                    Some(e) => (e.code(), e.message),
                    None => (None, None),
                };
                return Err(UpstreamError::InBand {
                    code,
                    message: message.unwrap_or_else(|| "failed mid-stream".into()),
                });
            }
            // ping, and event types added later.
            _ => {}
        }
        Ok(Flow::More)
    }

    fn end(&mut self, _out: &mut Vec<String>) -> Result<(), UpstreamError> {
        if self.done {
            Ok(())
        } else {
            Err(UpstreamError::StreamBroken(
                "ended the stream before `message_stop`".into(),
            ))
        }
    }

    fn usage(&self) -> Option<Usage> {
        self.usage.map(WireUsage::to_usage)
    }
}
