//! Streamed `chat.completion.chunk` answers for OpenAI, Mistral and DeepSeek, each with its
//! quirks: where usage goes, how tool calls arrive, keep-alive comments, `reasoning_content`.

use bytes::Bytes;
use serde_json::{Value, json};

use crate::Protocol;
use crate::errors::midstream_error_frame;
use crate::openai::Answer;
use crate::sse::{self, Frame, StreamReply};
use crate::text::{self, Decision};

/// `system_fingerprint` of OpenAI and DeepSeek answers.
pub(crate) const FINGERPRINT: &str = "fp_simulated";

/// Length (in chars) of the argument fragments a streamed tool call is split into.
pub(crate) const ARGUMENT_FRAGMENT: usize = 8;

const MALFORMED: &[u8] =
    b"data: {\"id\": \"simulated-malformed\", \"choices\": [{\"delta\": {\"content\": \"unterminated\n\n";

/// The whole stream for `answer`, as SSE frames ending in `data: [DONE]`.
pub(crate) fn stream(answer: &Answer) -> StreamReply {
    let mut frames = Vec::new();
    if answer.protocol == Protocol::DeepSeek {
        frames.push(sse::comment(": keep-alive\n\n"));
        frames.push(sse::comment(": keep-alive\n\n"));
    }
    for index in 0..answer.n {
        let last = index + 1 == answer.n;
        choice_frames(answer, index, last, &mut frames);
    }
    if answer.protocol == Protocol::OpenAi && answer.include_usage {
        frames.push(sse::data(&chunk(answer, json!([]), Some(answer.usage()))));
    }
    frames.push(sse::done());
    StreamReply {
        frames,
        content_type: "text/event-stream; charset=utf-8",
        malformed: Bytes::from_static(MALFORMED),
        error_frame: midstream_error_frame(answer.protocol).into(),
    }
}

fn choice_frames(answer: &Answer, index: usize, last: bool, frames: &mut Vec<Frame>) {
    let protocol = answer.protocol;
    let push = |frames: &mut Vec<Frame>, delta: Value| {
        frames.push(sse::data(&chunk(
            answer,
            json!([choice(index, delta, None)]),
            None,
        )));
    };
    let mut role = match protocol {
        Protocol::OpenAi => json!({"role": "assistant", "content": "", "refusal": null}),
        _ => json!({"role": "assistant", "content": ""}),
    };
    if let Some(reasoning) = &answer.reasoning {
        role = json!({"role": "assistant", "content": null, "reasoning_content": ""});
        push(frames, role.take());
        for piece in reasoning {
            push(frames, json!({"content": null, "reasoning_content": piece}));
        }
    }
    // Usage on the finish chunk for Mistral and DeepSeek (once, on the last choice).
    let finish_usage = (last && protocol != Protocol::OpenAi).then(|| answer.usage());
    match &answer.decision {
        Decision::Text(text) => {
            if !role.is_null() {
                push(frames, role);
            }
            for piece in &text.pieces {
                push(frames, json!({"content": piece}));
            }
        }
        Decision::Tool(call) if protocol == Protocol::Mistral => {
            push(frames, role);
            let delta = json!({"content": null, "tool_calls": [{"id": answer.tool_call_id(),
                "function": {"name": call.name, "arguments": call.arguments()}}]});
            let choices = json!([choice(index, delta, Some("tool_calls"))]);
            frames.push(sse::data(&chunk(answer, choices, finish_usage)));
            return;
        }
        Decision::Tool(call) => {
            let mut first = json!({"tool_calls": [{"index": 0, "id": answer.tool_call_id(),
                "type": "function", "function": {"name": call.name, "arguments": ""}}]});
            if !role.is_null() {
                first["role"] = json!("assistant");
                first["content"] = Value::Null;
                if protocol == Protocol::OpenAi {
                    first["refusal"] = Value::Null;
                }
            }
            push(frames, first);
            for fragment in text::fragments(&call.arguments(), ARGUMENT_FRAGMENT) {
                push(
                    frames,
                    json!({"tool_calls": [{"index": 0, "function": {"arguments": fragment}}]}),
                );
            }
        }
    }
    let finish_delta = match protocol {
        Protocol::OpenAi => json!({}),
        Protocol::DeepSeek if answer.reasoning.is_some() => {
            json!({"content": "", "reasoning_content": null})
        }
        _ => json!({"content": ""}),
    };
    let choices = json!([choice(index, finish_delta, Some(answer.finish_reason()))]);
    frames.push(sse::data(&chunk(answer, choices, finish_usage)));
}

/// One `chat.completion.chunk` object in this dialect.
fn chunk(answer: &Answer, choices: Value, usage: Option<Value>) -> Value {
    let mut chunk = json!({
        "id": answer.id,
        "object": "chat.completion.chunk",
        "created": answer.created,
        "model": answer.model,
        "choices": choices,
    });
    match answer.protocol {
        Protocol::OpenAi => {
            chunk["service_tier"] = json!("default");
            chunk["system_fingerprint"] = json!(FINGERPRINT);
            if answer.include_usage {
                chunk["usage"] = usage.unwrap_or(Value::Null);
            }
        }
        Protocol::DeepSeek => {
            chunk["system_fingerprint"] = json!(FINGERPRINT);
            chunk["usage"] = usage.unwrap_or(Value::Null);
        }
        _ => {
            if let Some(usage) = usage {
                chunk["usage"] = usage;
            }
        }
    }
    chunk
}

fn choice(index: usize, delta: Value, finish: Option<&str>) -> Value {
    json!({"index": index, "delta": delta, "logprobs": null, "finish_reason": finish})
}
