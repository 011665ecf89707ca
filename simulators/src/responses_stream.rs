//! Streamed Responses API answers: `event: <type>` SSE frames whose data starts with `type` and a
//! `sequence_number` counting from 0 — `response.created`, `response.in_progress`, each output
//! item's added / delta / done events, then `response.completed` (or `response.incomplete`); no
//! `[DONE]`. A mid-stream error fault ends the stream with `response.failed`.

use bytes::Bytes;
use serde_json::{Value, json};

use crate::openai_stream::ARGUMENT_FRAGMENT;
use crate::responses::{Answer, Output, output_text};
use crate::sse::{ErrorFrame, Frame, StreamReply};
use crate::text;

const MALFORMED: &[u8] = b"event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"sequence_number\":1,\"delta\":\"unterminated\n\n";

/// Collects numbered events.
struct Events {
    frames: Vec<Frame>,
    obfuscate: bool,
}

impl Events {
    fn push(&mut self, kind: &str, fields: Value) {
        let sequence = self.frames.len();
        self.frames.push(Frame {
            bytes: event(kind, sequence, &fields),
            counts: true,
        });
    }

    /// A delta event, padded with `obfuscation` as OpenAI pads them.
    fn delta(&mut self, kind: &str, mut fields: Value, delta: &str) {
        fields["delta"] = json!(delta);
        if self.obfuscate {
            let pad = 16usize.saturating_sub(delta.chars().count()).max(3);
            fields["obfuscation"] = json!(text::random_alnum(pad));
        }
        self.push(kind, fields);
    }
}

/// `event: kind` and data `{"type": kind, "sequence_number": n, ...fields}`, in that order.
fn event(kind: &str, sequence: usize, fields: &Value) -> Bytes {
    let rest = fields.to_string();
    let inner = rest
        .strip_prefix('{')
        .and_then(|r| r.strip_suffix('}'))
        .unwrap_or_default();
    let comma = if inner.is_empty() { "" } else { "," };
    Bytes::from(format!(
        "event: {kind}\ndata: {{\"type\":\"{kind}\",\"sequence_number\":{sequence}{comma}{inner}}}\n\n"
    ))
}

/// The whole event stream for `answer`.
pub(crate) fn stream(answer: Answer) -> StreamReply {
    let mut events = Events {
        frames: Vec::new(),
        obfuscate: answer.obfuscate,
    };
    let start = answer.object("in_progress", Vec::new(), Value::Null);
    events.push("response.created", json!({"response": start}));
    events.push("response.in_progress", json!({"response": start}));
    for (index, output) in answer.outputs.iter().enumerate() {
        events.push(
            "response.output_item.added",
            json!({"output_index": index, "item": output.added()}),
        );
        item_events(&mut events, index, output);
        events.push(
            "response.output_item.done",
            json!({"output_index": index, "item": output.item()}),
        );
    }
    let status = answer.final_status();
    let done = answer.object(status, answer.items(), answer.usage.clone());
    events.push(&format!("response.{status}"), json!({"response": done}));
    let failed = answer.failed();
    StreamReply {
        frames: events.frames,
        content_type: "text/event-stream; charset=utf-8",
        malformed: Bytes::from_static(MALFORMED),
        error_frame: ErrorFrame::Numbered(Box::new(move |sent| {
            event("response.failed", sent, &json!({"response": failed}))
        })),
    }
}

/// The events between an item's `added` and `done`.
fn item_events(events: &mut Events, index: usize, output: &Output) {
    let id = output.id();
    match output {
        Output::Reasoning {
            summary: Some(pieces),
            ..
        } => {
            let at = json!({"item_id": id, "output_index": index, "summary_index": 0});
            let part = |text: &str| {
                let mut fields = at.clone();
                fields["part"] = json!({"type": "summary_text", "text": text});
                fields
            };
            let full = pieces.concat();
            events.push("response.reasoning_summary_part.added", part(""));
            for piece in pieces {
                events.delta("response.reasoning_summary_text.delta", at.clone(), piece);
            }
            let mut done = at.clone();
            done["text"] = json!(full);
            events.push("response.reasoning_summary_text.done", done);
            events.push("response.reasoning_summary_part.done", part(&full));
        }
        Output::Reasoning { .. } => {}
        Output::Message { pieces, .. } => {
            let at = json!({"item_id": id, "output_index": index, "content_index": 0});
            let full = pieces.concat();
            let mut added = at.clone();
            added["part"] = output_text("");
            events.push("response.content_part.added", added);
            for piece in pieces {
                let mut delta = at.clone();
                delta["logprobs"] = json!([]);
                events.delta("response.output_text.delta", delta, piece);
            }
            let mut done = at.clone();
            done["text"] = json!(full);
            done["logprobs"] = json!([]);
            events.push("response.output_text.done", done);
            let mut part_done = at;
            part_done["part"] = output_text(&full);
            events.push("response.content_part.done", part_done);
        }
        Output::Call { arguments, .. } => {
            let at = json!({"item_id": id, "output_index": index});
            for fragment in text::fragments(arguments, ARGUMENT_FRAGMENT) {
                events.delta(
                    "response.function_call_arguments.delta",
                    at.clone(),
                    &fragment,
                );
            }
            let mut done = at;
            done["arguments"] = json!(arguments);
            events.push("response.function_call_arguments.done", done);
        }
    }
}
