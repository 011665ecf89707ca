//! Streamed Messages answers: `event: <type>` + `data: {...}` frames from `message_start` to
//! `message_stop`, with thinking, text and tool_use content blocks.

use bytes::Bytes;
use serde_json::{Value, json};

use crate::Protocol;
use crate::anthropic::{Answer, tool_use_id};
use crate::errors::midstream_error_frame;
use crate::openai_stream::ARGUMENT_FRAGMENT;
use crate::sse::{self, Frame, StreamReply};
use crate::text::{self, Decision};

const MALFORMED: &[u8] = b"event: content_block_delta\ndata: {\"type\": \"content_block_delta\", \
\"index\": 0, \"delta\": {\"type\": \"text_delta\", \"text\": \"unterminated\n\n";

struct Events {
    frames: Vec<Frame>,
    pinged: bool,
}

impl Events {
    fn push(&mut self, json: Value) {
        let name = json["type"].as_str().unwrap_or("unknown").to_string();
        self.frames.push(sse::event(&name, &json));
    }

    /// `content_block_start`, followed by the one `ping` real streams send after the first block.
    fn start_block(&mut self, index: usize, block: Value) {
        self.push(json!({"type": "content_block_start", "index": index, "content_block": block}));
        if !self.pinged {
            self.pinged = true;
            self.push(json!({"type": "ping"}));
        }
    }

    fn delta(&mut self, index: usize, delta: Value) {
        self.push(json!({"type": "content_block_delta", "index": index, "delta": delta}));
    }

    fn stop_block(&mut self, index: usize) {
        self.push(json!({"type": "content_block_stop", "index": index}));
    }
}

/// The whole stream for `answer`.
pub(crate) fn stream(answer: &Answer) -> StreamReply {
    let mut events = Events {
        frames: Vec::new(),
        pinged: false,
    };
    events.push(json!({"type": "message_start", "message": {
        "id": answer.id, "type": "message", "role": "assistant", "content": [],
        "model": answer.model, "stop_reason": null, "stop_sequence": null,
        "usage": answer.usage(1),
    }}));
    let mut index = 0;
    if let Some(thinking) = &answer.thinking {
        events.start_block(
            index,
            json!({"type": "thinking", "thinking": "", "signature": ""}),
        );
        for piece in thinking {
            events.delta(index, json!({"type": "thinking_delta", "thinking": piece}));
        }
        events.delta(
            index,
            json!({"type": "signature_delta", "signature": text::random_signature()}),
        );
        events.stop_block(index);
        index += 1;
    }
    match &answer.decision {
        Decision::Text(reply) => {
            events.start_block(index, json!({"type": "text", "text": ""}));
            for piece in &reply.pieces {
                events.delta(index, json!({"type": "text_delta", "text": piece}));
            }
        }
        Decision::Tool(call) => {
            events.start_block(
                index,
                json!({"type": "tool_use", "id": tool_use_id(), "name": call.name, "input": {}}),
            );
            // Real streams open with an empty fragment before the JSON arrives.
            events.delta(
                index,
                json!({"type": "input_json_delta", "partial_json": ""}),
            );
            for fragment in text::fragments(&call.arguments(), ARGUMENT_FRAGMENT) {
                events.delta(
                    index,
                    json!({"type": "input_json_delta", "partial_json": fragment}),
                );
            }
        }
    }
    events.stop_block(index);
    let (stop_reason, stop_sequence) = answer.stop_reason();
    events.push(json!({"type": "message_delta",
        "delta": {"stop_reason": stop_reason, "stop_sequence": stop_sequence},
        "usage": answer.usage(answer.output_tokens())}));
    events.push(json!({"type": "message_stop"}));
    StreamReply {
        frames: events.frames,
        content_type: "text/event-stream; charset=utf-8",
        malformed: Bytes::from_static(MALFORMED),
        error_frame: midstream_error_frame(Protocol::Anthropic).into(),
    }
}
